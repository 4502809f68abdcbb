//! Sums in TensorFlow's order, for results that must match Keras bit for bit.
//!
//! TensorFlow's `reduce_sum` on a CPU is Eigen's tensor reduction with 8-float packets (AVX):
//!
//! ```text
//! n > 8·1024:  split at a packet boundary near the middle (counted from the tensor's start),
//!              sum = (0 + sum(left)) + sum(right)                        (a tree of halves)
//! otherwise:   four packet accumulators a0..a3 over blocks of 32 values (a0 += x[j..j+8],
//!              a1 += x[j+8..j+16], ...), then a0 += a1, a0 += a2, a0 += a3;
//!              a0 += each further whole packet; t = (((0 + x[k]) + x[k+1]) + ...) over the tail;
//!              sum = t + (((a0[0]+a0[4]) + (a0[2]+a0[6])) + ((a0[1]+a0[5]) + (a0[3]+a0[7])))
//! ```
//!
//! Keras' `clipnorm` (`sum(square(g))` per tensor) and `global_clipnorm` (the same per tensor,
//! then the sum of those sums) go through it, so the clipped gradient — and the update — match
//! Keras to the bit only when the norm is summed in this order ([`tf_sum_sq`]). Checked against
//! TensorFlow 2.21's `reduce_sum` for every size up to 200 and sizes up to 50,000, and by the
//! clipped runs of `optimizer_long_k3.json`.

/// Values per packet (AVX: 8 floats).
const P: usize = 8;
/// Above `P · LEAF` values the reduction splits in two.
const LEAF: usize = 1024;

/// The sum of `f(0), ..., f(n-1)` in TensorFlow's order (see the module docs).
///
/// ```
/// use microfit_core::math::reduce::tf_sum_by;
/// let x = [1.0f32, 2.0, 3.0];
/// assert_eq!(tf_sum_by(3, |i| x[i]), 6.0);
/// ```
pub fn tf_sum_by(n: usize, f: impl Fn(usize) -> f32 + Copy) -> f32 {
    tree(0, n, f)
}

/// `Σ x²` in TensorFlow's order: `reduce_sum(square(x))`.
///
/// ```
/// use microfit_core::math::reduce::tf_sum_sq;
/// assert_eq!(tf_sum_sq(&[3.0, 4.0]), 25.0);
/// ```
pub fn tf_sum_sq(x: &[f32]) -> f32 {
    // `i < x.len()` always: `get` only spares the bounds check's panic path (firmware).
    tf_sum_by(x.len(), |i| x.get(i).map_or(0.0, |&v| v * v))
}

fn tree(first: usize, n: usize, f: impl Fn(usize) -> f32 + Copy) -> f32 {
    if n > P * LEAF {
        let split = P * (first + n.div_ceil(2)).div_ceil(P);
        let left = (split - first).min(n);
        let mut acc = 0.0f32;
        acc += tree(first, left, f);
        if left < n {
            acc += tree(split, n - left, f);
        }
        return acc;
    }
    inner(first, n, f)
}

fn packet(acc: &mut [f32; P], at: usize, f: impl Fn(usize) -> f32) {
    for (l, a) in acc.iter_mut().enumerate() {
        *a += f(at + l);
    }
}

fn inner(first: usize, n: usize, f: impl Fn(usize) -> f32 + Copy) -> f32 {
    let mut a0 = [0.0f32; P];
    let mut start = 0;
    if n >= 4 * P {
        let (mut a1, mut a2, mut a3) = ([0.0f32; P], [0.0f32; P], [0.0f32; P]);
        let v4 = n / (4 * P) * (4 * P);
        let mut j = 0;
        while j < v4 {
            packet(&mut a0, first + j, f);
            packet(&mut a1, first + j + P, f);
            packet(&mut a2, first + j + 2 * P, f);
            packet(&mut a3, first + j + 3 * P, f);
            j += 4 * P;
        }
        for other in [a1, a2, a3] {
            for (a, o) in a0.iter_mut().zip(other) {
                *a += o;
            }
        }
        start = v4;
    }
    if start + P <= n {
        let v = n / P * P;
        let mut j = start;
        while j < v {
            packet(&mut a0, first + j, f);
            j += P;
        }
        start = v;
    }
    let mut tail = 0.0f32;
    for j in start..n {
        tail += f(first + j);
    }
    let h = [a0[0] + a0[4], a0[1] + a0[5], a0[2] + a0[6], a0[3] + a0[7]];
    tail + ((h[0] + h[2]) + (h[1] + h[3]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values whose f32 sums depend on the order.
    fn values(n: usize) -> impl Fn(usize) -> f32 + Copy {
        move |i| {
            let v = (i as f32 * 0.618_034 + n as f32 * 0.1).sin() * 10f32.powi((i % 7) as i32 - 3);
            v * v
        }
    }

    #[test]
    fn small_sums_are_sequential_plus_packets() {
        // Fewer than 8 values: the tail only, then + 0.
        let x = [1e8f32, 1.0, -1e8, 1.0];
        assert_eq!(tf_sum_by(4, |i| x[i]), ((1e8f32 + 1.0) - 1e8) + 1.0);
        // 12 values: one packet (lanes paired 0+4, 2+6, 1+5, 3+7) and a tail of 4.
        let f = values(12);
        let p: Vec<f32> = (0..8).map(f).collect();
        let tail = ((f(8) + f(9)) + f(10)) + f(11);
        let want = tail + (((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7])));
        assert_eq!(tf_sum_by(12, f).to_bits(), want.to_bits());
    }

    #[test]
    fn large_sums_split_and_stay_close_to_the_exact_sum() {
        for n in [31, 32, 33, 100, 8192, 8193, 20_000] {
            let f = values(n);
            let exact: f64 = (0..n).map(|i| f64::from(f(i))).sum();
            let s = f64::from(tf_sum_by(n, f));
            assert!((s - exact).abs() <= 1e-5 * exact, "n = {n}: {s} vs {exact}");
        }
    }
}
