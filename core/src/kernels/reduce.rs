//! Sums over a tensor in the core's one order: eight interleaved partial sums.
//!
//! `Σ v²` and `Σ |v|` (the L2 and L1 penalties) are reductions, and a float sum's value depends
//! on its order. One order is used on every target: element `i` goes into partial sum `i mod 8`
//! (each partial sum in increasing `i` from `+0`), then the partial sums are combined as
//! `((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))`. Eight independent chains of additions
//! instead of one: a vector unit runs them side by side (one AVX2 register, two SSE2
//! registers), and a microcontroller pays the same number of additions plus seven.
//!
//! ```
//! use microfit_core::kernels::reduce::sum_sq;
//! let v: [f32; 10] = core::array::from_fn(|i| i as f32);
//! // lanes 0..8 hold i², then 8² and 9² join lanes 0 and 1
//! let s = [0.0 + 64.0, 1.0 + 81.0, 4.0, 9.0, 16.0, 25.0, 36.0, 49.0];
//! assert_eq!(sum_sq(&v), ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])));
//! ```

use crate::math;

/// Lanes of the interleaved sums.
pub const LANES: usize = 8;

/// `Σ f(v_i)` in the order of the [module docs](self).
#[inline(always)]
fn sum_by(v: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut s = [0.0f32; LANES];
    let (chunks, tail) = v.as_chunks::<LANES>();
    for c in chunks {
        for (a, &x) in s.iter_mut().zip(c) {
            *a += f(x);
        }
    }
    for (a, &x) in s.iter_mut().zip(tail) {
        *a += f(x);
    }
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

/// `Σ v²` (the L2 penalty's sum).
#[inline(always)]
pub fn sum_sq(v: &[f32]) -> f32 {
    sum_by(v, |x| x * x)
}

/// `Σ |v|` (the L1 penalty's sum).
#[inline(always)]
pub fn sum_abs(v: &[f32]) -> f32 {
    sum_by(v, math::abs)
}
