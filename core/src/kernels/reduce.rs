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
    add_by(&mut s, v, f);
    combine(&s)
}

/// `s[i mod 8] += f(v_i)` in increasing `i`: the partial sums of the [module docs](self).
#[inline(always)]
fn add_by(s: &mut [f32; LANES], v: &[f32], f: impl Fn(f32) -> f32) {
    // The sums in a local array (registers: one vector), lane by lane over whole chunks.
    let mut t = *s;
    let (chunks, tail) = v.as_chunks::<LANES>();
    for c in chunks {
        for j in 0..LANES {
            t[j] += f(c[j]);
        }
    }
    for (a, &x) in t.iter_mut().zip(tail) {
        *a += f(x);
    }
    *s = t;
}

/// Adds `v_i²` to the partial sums `s` (element `i` into `s[i mod 8]`): [`sum_sq`] of a tensor
/// is `combine` of `add_sq` over its pieces in order, each piece but the last a multiple of
/// [`LANES`] long (an optimizer's update folds the sum into its blocks this way).
///
/// ```
/// use microfit_core::kernels::reduce::{LANES, add_sq, combine, sum_sq};
/// let v: [f32; 21] = core::array::from_fn(|i| i as f32 - 7.5);
/// let mut s = [0.0f32; LANES];
/// add_sq(&mut s, &v[..16]);
/// add_sq(&mut s, &v[16..]);
/// assert_eq!(combine(&s).to_bits(), sum_sq(&v).to_bits());
/// ```
#[inline(always)]
pub fn add_sq(s: &mut [f32; LANES], v: &[f32]) {
    add_by(s, v, |x| x * x);
}

/// The partial sums combined: `((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))`.
#[inline(always)]
pub fn combine(s: &[f32; LANES]) -> f32 {
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

/// Elements an optimizer updates before it adds their squares to the partial sums
/// ([`add_sq`]): a multiple of [`LANES`], small enough to stay in registers and L1 — the
/// additions' chain then overlaps the next block's update.
pub const SQ_BLOCK: usize = 64;

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
