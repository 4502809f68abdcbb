//! The core's fused softmax + cross-entropy over a tile of samples:
//! `Loss::fused_value_grad_with_output` (categorical and sparse categorical cross-entropy on
//! the cached logits, reusing the forward pass's softmax) sample after sample, the same
//! operations in the same order, without the per-call dispatch.

use super::exp::ln_into;
use microfit_core::error::Error;
use microfit_core::loss::{Loss, Target};
use microfit_core::tensor::Tensor;

/// The core's `Loss::check_target` for the two cross-entropies handled here.
fn check_target(loss: Loss, n: usize, t: Target<'_>) -> Result<(), Error> {
    match t {
        Target::Class(k) => {
            if (k as usize) < n {
                Ok(())
            } else {
                Err(Error::LabelOutOfRange {
                    label: k,
                    classes: n as u32,
                })
            }
        }
        Target::Dense(v) => {
            if matches!(loss, Loss::SparseCategoricalCrossentropy { .. }) {
                Err(Error::IncompatibleLoss {
                    reason: "sparse_categorical_crossentropy needs class labels",
                })
            } else if v.len() != n {
                Err(Error::ShapeMismatch {
                    what: "target",
                    expected: n as u32,
                    found: v.len() as u32,
                })
            } else {
                Ok(())
            }
        }
    }
}

/// The core's `max_and_index`: `activation::max_of` and where it was found.
///
/// Without data-dependent branches when the row has no NaN (the usual case): the running
/// maximum `if v > m { v } else { m }` (one `max` instruction per value; the same value as the
/// core's loop, which takes `v` only when it is strictly greater), then the first index
/// holding a value equal to it — where the core's loop took it last. With a NaN, the core's
/// loop.
#[inline]
pub(crate) fn max_and_index(z: &[f32]) -> (f32, usize) {
    let (m, nan) = max_no_nan(z);
    if nan || z.len() > 64 {
        return max_and_index_seq(z);
    }
    let mut hit = 0u64;
    for (j, &v) in z.iter().enumerate() {
        hit |= u64::from(v == m) << (j & 63);
    }
    (
        m,
        if hit == 0 {
            0
        } else {
            hit.trailing_zeros() as usize
        },
    )
}

/// `(if v > m { v } else { m }` over `z` from `-∞`, whether `z` holds a NaN`)`.
#[inline(always)]
pub(crate) fn max_no_nan(z: &[f32]) -> (f32, bool) {
    let mut m = f32::NEG_INFINITY;
    let mut nan = false;
    for &v in z {
        m = if v > m { v } else { m };
        nan |= v.is_nan();
    }
    (m, nan)
}

/// The core's `max_and_index`, as written there.
#[inline(never)]
fn max_and_index_seq(z: &[f32]) -> (f32, usize) {
    let mut m = f32::NEG_INFINITY;
    let mut arg = 0;
    for (j, &v) in z.iter().enumerate() {
        if v > m || v.is_nan() {
            m = v;
            arg = j;
        }
    }
    (m, arg)
}

/// For the tile's logits `z` (`m` rows of `width`) and the forward pass's outputs `y` (the
/// softmax of each row), adds each sample's loss to `data_sum` (in sample order) and writes
/// `scale · ∂loss/∂z` into the rows of `d`: the core's `softmax_xent(z, Some(y), …)` (`lse = m −
/// ln(y[argmax z])`, gradient `y·Σt − t`), the logarithms of the tile in one vectorized pass. Returns `Ok(false)` (nothing done) for losses other
/// than the two cross-entropies.
///
/// # Errors
/// The error of the first sample whose target does not fit, as the core.
pub(crate) fn fused_batch<'t, T: Tensor>(
    loss: Loss,
    z: &[f32],
    width: usize,
    y: &[T],
    target: impl Fn(usize) -> Target<'t>,
    d: &mut [T],
    scale: f32,
    data_sum: &mut f32,
) -> Result<bool, Error> {
    if !matches!(
        loss,
        Loss::CategoricalCrossentropy { .. } | Loss::SparseCategoricalCrossentropy { .. }
    ) {
        return Ok(false);
    }
    let m = d.len();
    if width == 0 || z.len() != m * width || y.len() != m {
        return Ok(false);
    }
    for k in 0..m {
        check_target(loss, width, target(k))?;
    }
    // Per row: the max and its index; then `ln y[argmax]` of up to 64 rows in one vectorized
    // pass (the core's `math::ln`, bit for bit); then the loss and gradient of each row.
    let mut maxes = [0.0f32; 64];
    let mut args = [0usize; 64];
    let mut ins = [1.0f32; 64];
    let mut lns = [0.0f32; 64];
    let mut start = 0;
    while start < m {
        let cnt = (m - start).min(64);
        for r in 0..cnt {
            let zr = &z[(start + r) * width..(start + r + 1) * width];
            let (mx, arg) = max_and_index(zr);
            maxes[r] = mx;
            args[r] = arg;
            ins[r] = y[start + r]
                .as_slice()
                .get(arg)
                .copied()
                .unwrap_or(f32::NAN);
        }
        ln_into(&ins[..cnt], &mut lns[..cnt]);
        for r in 0..cnt {
            let row = start + r;
            let (zr, yr) = (&z[row * width..(row + 1) * width], y[row].as_slice());
            let dr = d[row].as_mut_slice();
            let t = target(row);
            let mx = maxes[r];
            let lse = if mx.is_finite() { mx - lns[r] } else { mx };
            let (value, ysum) = match t {
                Target::Class(k) => (zr.get(k as usize).map_or(f32::NAN, |&zk| lse - zk), 1.0f32),
                Target::Dense(td) => {
                    let (mut v, mut ysum) = (0.0f32, 0.0f32);
                    for (&tj, &zj) in td.iter().zip(zr) {
                        ysum += tj;
                        if tj != 0.0 {
                            v += tj * (lse - zj);
                        }
                    }
                    (v, ysum)
                }
            };
            match t {
                Target::Class(k) => {
                    let k = k as usize;
                    for (j, (gj, &pj)) in dr.iter_mut().zip(yr).enumerate() {
                        let tj = if j == k { 1.0 } else { 0.0 };
                        *gj = (pj * ysum - tj) * scale;
                    }
                }
                Target::Dense(_) => {
                    for (j, (gj, &pj)) in dr.iter_mut().zip(yr).enumerate() {
                        *gj = (pj * ysum - t.at(j)) * scale;
                    }
                }
            }
            *data_sum += value;
        }
        start += cnt;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::{max_and_index, max_and_index_seq};

    const SPECIAL: [f32; 9] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        2.5,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
    ];

    #[test]
    fn max_and_index_is_the_cores() {
        let key = |(m, i): (f32, usize)| (m.to_bits(), i);
        assert_eq!(key(max_and_index(&[])), key(max_and_index_seq(&[])));
        for a in SPECIAL {
            for b in SPECIAL {
                for c in SPECIAL {
                    for z in [[a, b, c, -1.0], [-1.0, a, b, c], [a, a, b, c]] {
                        assert_eq!(key(max_and_index(&z)), key(max_and_index_seq(&z)), "{z:?}");
                    }
                }
            }
        }
    }
}
