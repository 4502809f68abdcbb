//! The core's fused softmax + cross-entropy (`Loss::fused_value_grad` for categorical and
//! sparse categorical cross-entropy) over a tile of samples: the same operations per sample,
//! the `exp`s of the whole tile in vectorized passes.

use super::exp::exp_slice;
use microfit_core::activation::max_of;
use microfit_core::error::Error;
use microfit_core::loss::{Loss, Target};
use microfit_core::math;
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

/// For the tile's logits `z` (`m` rows of `width`), adds each sample's loss to `data_sum` (in
/// sample order) and writes `scale · ∂loss/∂z` into the rows of `d`, with the bits of
/// `Loss::fused_value_grad`. Returns `Ok(false)` (nothing done) for losses other than the two
/// cross-entropies.
///
/// # Errors
/// The error of the first sample whose target does not fit, as the core.
pub(crate) fn fused_batch<'t, T: Tensor>(
    loss: Loss,
    z: &[f32],
    width: usize,
    target: impl Fn(usize) -> Target<'t>,
    d: &mut [T],
    scale: f32,
    scratch: &mut Vec<f32>,
    data_sum: &mut f32,
) -> Result<bool, Error> {
    let sparse = match loss {
        Loss::CategoricalCrossentropy { .. } => false,
        Loss::SparseCategoricalCrossentropy { .. } => true,
        _ => return Ok(false),
    };
    let m = d.len();
    if width == 0 || z.len() != m * width {
        return Ok(false);
    }
    for k in 0..m {
        check_target(loss, width, target(k))?;
    }
    scratch.resize(2 * m * width, 0.0);
    let (e, lse_e) = scratch.split_at_mut(m * width);
    // log_sum_exp: m = max_of(z); lse = m if m is not finite, else m + ln(Σ e^(z - m)).
    let mut maxes = [0.0f32; 64];
    let mut lses = [0.0f32; 64];
    let mut start = 0;
    while start < m {
        // Chunks of at most 64 rows keep the per-row values on the stack.
        let cnt = (m - start).min(64);
        let zc = &z[start * width..(start + cnt) * width];
        let ec = &mut e[..cnt * width];
        for r in 0..cnt {
            let zr = &zc[r * width..(r + 1) * width];
            let mx = max_of(zr);
            maxes[r] = mx;
            for (o, &v) in ec[r * width..(r + 1) * width].iter_mut().zip(zr) {
                *o = v - mx;
            }
        }
        exp_slice(ec);
        for r in 0..cnt {
            let mx = maxes[r];
            lses[r] = if !mx.is_finite() {
                mx
            } else {
                let mut s = 0.0f32;
                for &v in &ec[r * width..(r + 1) * width] {
                    s += v;
                }
                mx + math::ln(s)
            };
        }
        // Gradient exps: e^(z - lse).
        let gc = &mut lse_e[..cnt * width];
        for r in 0..cnt {
            let zr = &zc[r * width..(r + 1) * width];
            for (o, &v) in gc[r * width..(r + 1) * width].iter_mut().zip(zr) {
                *o = v - lses[r];
            }
        }
        exp_slice(gc);
        for r in 0..cnt {
            let t = target(start + r);
            let zr = &zc[r * width..(r + 1) * width];
            let er = &gc[r * width..(r + 1) * width];
            let lse = lses[r];
            let dr = d[start + r].as_mut_slice();
            if sparse {
                let kk = t.class();
                for (j, (gj, &ej)) in dr.iter_mut().zip(er).enumerate() {
                    let y = if j == kk { 1.0 } else { 0.0 };
                    *gj = (ej - y) * scale;
                }
                *data_sum += lse - zr[kk.min(width - 1)];
            } else {
                let mut s = 0.0f32;
                let mut ysum = 0.0f32;
                for (j, &zj) in zr.iter().enumerate() {
                    let y = t.at(j);
                    ysum += y;
                    if y != 0.0 {
                        s += y * (lse - zj);
                    }
                }
                for (j, (gj, &ej)) in dr.iter_mut().zip(er).enumerate() {
                    *gj = (ej * ysum - t.at(j)) * scale;
                }
                *data_sum += s;
            }
        }
        start += cnt;
    }
    Ok(true)
}
