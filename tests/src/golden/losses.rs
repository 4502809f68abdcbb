//! `losses_*.json`: every BCE/CCE/SCCE/MSE case — elementwise and per-sample values, the
//! reduced loss as the mean of the per-sample values, the gradients of the reduced loss with
//! respect to `y_pred` ([`Loss::value_grad`] with `scale = 1/B`) — and the cached-logits
//! shortcut through [`Loss::fused_value_grad`], row by row and averaged over the batch as
//! Keras' `sum_over_batch_size` does. A tensor of any rank is rows of its last axis.

use microfit::core::activation::Activation;
use microfit::core::loss::{Loss, Target};
use serde_json::Value;

use super::check::{Checker, FWD};
use super::tensor::{floats, labels, num, shape};

/// Targets of a case: dense rows (`y_true`) or class labels.
enum Truth {
    Dense(Vec<f32>),
    Classes(Vec<u32>),
}

impl Truth {
    fn row(&self, r: usize, d: usize) -> Target<'_> {
        match self {
            Truth::Dense(y) => Target::Dense(&y[r * d..(r + 1) * d]),
            Truth::Classes(c) => Target::Class(c[r]),
        }
    }
}

/// Rows and row length of a tensor: the last axis, and the product of the others.
fn rows(t: &Value) -> (usize, usize) {
    let sh = shape(t);
    let d = *sh.last().unwrap_or(&1);
    (sh.iter().rev().skip(1).product(), d)
}

/// The loss value and gradient `d loss / d y_pred` of `loss` over `rows` rows of `d`:
/// per-row values, and the gradient of their mean.
fn per_row(
    loss: Loss,
    p: &[f32],
    truth: &Truth,
    (b, d): (usize, usize),
    what: &str,
) -> (Vec<f32>, Vec<f32>) {
    let inv_b = 1.0 / b as f32;
    let mut per = Vec::with_capacity(b);
    let mut grad = vec![0.0f32; b * d];
    for r in 0..b {
        let l = loss
            .value_grad(
                &p[r * d..(r + 1) * d],
                truth.row(r, d),
                Some(&mut grad[r * d..(r + 1) * d]),
                inv_b,
            )
            .unwrap_or_else(|e| panic!("{what} row {r}: {e}"));
        per.push(l);
    }
    (per, grad)
}

/// The mean of per-row values, summed in order.
fn mean(v: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &x in v {
        s += x;
    }
    s / v.len() as f32
}

pub(super) fn run(c: &mut Checker, v: &Value) {
    let groups = [
        ("binary_crossentropy", "per_sample_mean_last_axis"),
        ("categorical_crossentropy", "per_sample"),
        ("sparse_categorical_crossentropy", "per_sample"),
        ("mean_squared_error", "per_sample"),
    ];
    for (key, per_key) in groups {
        let Some(cases) = c.optional(v, key, "") else {
            continue;
        };
        for (ci, case) in cases
            .as_array()
            .unwrap_or_else(|| panic!("{key} is not a list"))
            .iter()
            .enumerate()
        {
            c.case();
            let fl = if key == "mean_squared_error" {
                false
            } else {
                match c.optional(case, "from_logits", &format!("{key}[].")) {
                    Some(b) => b.as_bool().expect("from_logits"),
                    None => false, // Keras' default
                }
            };
            let loss = match key {
                "binary_crossentropy" => Loss::BinaryCrossentropy {
                    from_logits: fl,
                    label_smoothing: 0.0,
                },
                "categorical_crossentropy" => Loss::CategoricalCrossentropy {
                    from_logits: fl,
                    label_smoothing: 0.0,
                },
                "sparse_categorical_crossentropy" => {
                    Loss::SparseCategoricalCrossentropy { from_logits: fl }
                }
                _ => Loss::MeanSquaredError,
            };
            let name = format!("{key}[{ci}] from_logits={fl}");
            let (b, d) = rows(&case["y_pred"]);
            let p = floats(&case["y_pred"]);
            let truth = if key.starts_with("sparse") {
                Truth::Classes(labels(&case["labels"]))
            } else {
                Truth::Dense(floats(&case["y_true"]))
            };
            let (per, grad) = per_row(loss, &p, &truth, (b, d), &name);
            c.close32(
                &format!("{name}: {per_key}"),
                &per,
                &floats(&case[per_key]),
                FWD,
            );
            c.close1(
                &format!("{name}: reduced (mean of per-sample)"),
                mean(&per),
                num(&case["reduced_sum_over_batch_size"]),
                FWD,
            );
            c.close32(
                &format!("{name}: d reduced / d y_pred"),
                &grad,
                &floats(&case["grad_reduced_wrt_y_pred"]),
                FWD,
            );
            if key != "binary_crossentropy" {
                continue;
            }
            let (Some(el), Some(gel), Truth::Dense(y)) = (
                c.optional(case, "elementwise", "binary_crossentropy[]."),
                c.optional(
                    case,
                    "grad_sum_elementwise_wrt_y_pred",
                    "binary_crossentropy[].",
                ),
                &truth,
            ) else {
                continue;
            };
            // One element at a time: the per-sample mean of a single element.
            let mut e = Vec::new();
            let mut ge = vec![0.0f32; b * d];
            for i in 0..b * d {
                let t = [y[i]];
                e.push(
                    loss.value_grad(
                        &p[i..i + 1],
                        Target::Dense(&t),
                        Some(&mut ge[i..i + 1]),
                        1.0,
                    )
                    .unwrap_or_else(|err| panic!("{name} element {i}: {err}")),
                );
            }
            c.close32(&format!("{name}: elementwise"), &e, &floats(el), FWD);
            c.close32(
                &format!("{name}: d sum(elementwise) / d y_pred"),
                &ge,
                &floats(gel),
                FWD,
            );
        }
    }
    // Cached logits: a library sigmoid/softmax output makes Keras use the logits formula, row
    // by row, then the mean over the batch.
    let Some(s) = c.optional(v, "cached_logits_shortcut", "") else {
        return;
    };
    for (key, logits_key, y_key, fused_key, plain_key, act) in [
        (
            "bce",
            "logits_bce",
            "y_true_bce",
            "bce_on_library_sigmoid_output",
            "bce_on_plain_probability_tensor",
            Activation::Sigmoid,
        ),
        (
            "cce",
            "logits_cce",
            "y_true_cce",
            "cce_on_library_softmax_output",
            "cce_on_plain_probability_tensor",
            Activation::Softmax,
        ),
        (
            "scce",
            "logits_cce",
            "labels_scce",
            "scce_on_library_softmax_output",
            "scce_on_plain_probability_tensor",
            Activation::Softmax,
        ),
    ] {
        let what = "cached_logits_shortcut.";
        let (Some(zj), Some(yj)) = (c.optional(s, logits_key, what), c.optional(s, y_key, what))
        else {
            continue;
        };
        c.case();
        let loss = match key {
            "bce" => Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            "cce" => Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            _ => Loss::SparseCategoricalCrossentropy { from_logits: false },
        };
        let (b, d) = rows(zj);
        let z = floats(zj);
        let truth = if key == "scce" {
            Truth::Classes(labels(yj))
        } else {
            Truth::Dense(floats(yj))
        };
        c.truth(
            &format!("{key}: {loss:?} fuses with {act:?}"),
            loss.fuses_with(act),
        );
        let mut fused = Vec::new();
        let mut plain = Vec::new();
        let mut prob = vec![0.0f32; d];
        for r in 0..b {
            let zr = &z[r * d..(r + 1) * d];
            fused.push(
                loss.fused_value_grad(zr, truth.row(r, d), None, 1.0)
                    .unwrap_or_else(|e| panic!("{key} row {r}: {e}")),
            );
            act.forward(zr, &mut prob);
            plain.push(
                loss.value_grad(&prob, truth.row(r, d), None, 1.0)
                    .unwrap_or_else(|e| panic!("{key} row {r}: {e}")),
            );
        }
        if let Some(e) = c.optional(s, fused_key, what) {
            c.close1(&format!("{what}{fused_key}"), mean(&fused), num(e), FWD);
        }
        if let Some(e) = c.optional(s, plain_key, what) {
            c.close1(&format!("{what}{plain_key}"), mean(&plain), num(e), FWD);
        }
    }
}
