//! `optimizer_long_*.json`: many eager steps of several optimizers on one Dense model. For every
//! run and every step: the update replayed from the recorded gradients and the previous
//! recorded weights and slots (`iterations = step`) must give the recorded weights and slots
//! **bit for bit** (Adam's `β^t`: [`microfit::core::math::powf`]); and the data loss of the
//! recorded weights before the step, through the model the description names
//! (`Dense(4->3, softmax, ...) + CategoricalCrossentropy`: activation and loss from the prose,
//! sizes from the weights).
//!
//! Optimizer options microfit does not have yet ([`NOT_YET`]) are reported as "not supported
//! yet" with their runs; once `optimizer_from_keras_class` reads an option, its runs are replayed here with
//! no change (and the EMA's own records, `ema_after` and the finalized weights, are reported as
//! unchecked until a check for them is added below).

use microfit::core::activation::Activation;
use microfit::core::optim::Optimizer;
use microfit::core::train::{Rows, Samples, Targets, compute_gradients};
use microfit::keras::optimizer_from_keras_class;
use microfit::model::{LayerSpec, ModelSpec};
use serde_json::Value;

use super::check::{Checker, FWD};
use super::named::{check_named, recorded_slots};
use super::tensor::{
    activation_from_keras_name, activation_in_text, build_with, floats, layer_order, loss_in_text,
    num, set_tensors, shape, tensors, weights_in_order,
};

/// Options of `config_given` that microfit's optimizers do not have yet (issue 12), with the
/// feature's name for the report. A run using one is reported, not replayed, while
/// `optimizer_from_keras_class` rejects it.
pub const NOT_YET: [(&str, &str); 2] = [
    (
        "use_ema",
        "EMA (use_ema: ema_after, finalize_variable_values)",
    ),
    (
        "exclude_from_weight_decay",
        "AdamW exclude_from_weight_decay",
    ),
];

/// The activation of the first `Dense(...)` in a description (`Dense(4->3, softmax, ...)`), or
/// the one it names as `<name> activation`.
fn dense_activation(text: &str) -> Activation {
    if let Some(i) = text.find("Dense(") {
        let args = &text[i + 6..];
        let args = &args[..args.find(')').unwrap_or(args.len())];
        for a in args.split(',') {
            if let Some(act) = Activation::from_keras_name(a.trim()) {
                return act;
            }
        }
    }
    activation_in_text(text)
}

pub(super) fn run(c: &mut Checker, v: &Value) {
    let desc = v["meta"]["description"].as_str().unwrap_or("");
    let layers = layer_order(&v["initial_weights"], None);
    let initial = weights_in_order(&layers, &v["initial_weights"]);
    let x = floats(&v["x"]);
    let xs = shape(&v["x"]);
    let (batch, n_in) = (xs[0], xs[1..].iter().product::<usize>());
    let y = floats(&v["y_true"]);
    let width = *shape(&v["y_true"]).last().expect("y_true");
    // The model: one Dense per layer (sizes from the kernels), the activation and loss named
    // in the description; no regularizer (only the data loss is checked: the description
    // does not give the L2 factor).
    let spec = ModelSpec {
        input_shape: vec![n_in],
        layers: (0..layers.len())
            .map(|i| {
                let units = *shape(&v["initial_weights"][format!("{}/kernel", layers[i])])
                    .last()
                    .expect("kernel shape");
                let act = if i + 1 == layers.len() {
                    dense_activation(desc)
                } else {
                    activation_from_keras_name("linear")
                };
                LayerSpec::dense(units, act)
            })
            .collect(),
    };
    let loss = loss_in_text(desc);
    let samples = Samples::new(&x, n_in, Targets::Dense { values: &y, width }).expect("samples");
    let runs = v["runs"].as_array().expect("runs");
    for run in runs {
        let class = run["optimizer"].as_str().expect("optimizer");
        let cfg = &run["config_given"];
        let label = format!("{class}{cfg}");
        let steps = run["steps"].as_array().expect("steps");
        let opt_cfg = match optimizer_from_keras_class(class, cfg) {
            Ok(o) => o,
            Err(e) => {
                let missing = NOT_YET.iter().find(|(key, _)| {
                    cfg.get(*key)
                        .is_some_and(|x| !x.is_null() && *x != Value::Bool(false))
                });
                match missing {
                    Some((_, feature)) => c.unsupported(feature, 1),
                    None => c.fail(format!("{label}: {e}")),
                }
                continue;
            }
        };
        c.case();
        if steps.iter().any(|s| s.get("ema_after").is_some())
            || run.get("weights_after_finalize_variable_values").is_some()
        {
            c.unsupported("checking EMA records (ema_after, finalized weights)", 1);
        }
        let proto = build_with(&spec, &initial);
        for (i, st) in steps.iter().enumerate() {
            let what = format!("{label} step {}", i + 1);
            // The state before the update: the initial weights and zero slots, or what the
            // previous step recorded.
            let mut w = proto.params.clone();
            let mut opt = opt_cfg.build(&w).expect("optimizer");
            if i == 0 {
                set_tensors(&mut w, &initial);
            } else {
                let prev = &steps[i - 1];
                set_tensors(&mut w, &weights_in_order(&layers, &prev["weights_after"]));
                for (slot, t) in recorded_slots(&layers, &prev["slots_after"]) {
                    set_tensors(
                        opt.slot_mut(&slot)
                            .unwrap_or_else(|| panic!("{what}: no slot {slot}")),
                        &t,
                    );
                }
                opt.set_iterations(i as u32);
            }
            // The data loss of those weights.
            let mut m = build_with(&spec, &tensors(&w));
            let rep = compute_gradients::<microfit::core::backend::Portable, _>(
                &mut m,
                loss,
                &samples,
                Rows::Range(0, batch),
            )
            .unwrap_or_else(|e| panic!("{what}: {e}"));
            c.close1(
                &format!("{what}: data_loss"),
                rep.data_loss,
                num(&st["data_loss"]),
                FWD,
            );
            // The update alone, from the recorded gradients: bit for bit.
            let mut g = proto.params.clone();
            set_tensors(&mut g, &weights_in_order(&layers, &st["grads"]));
            opt.step::<microfit::core::backend::Portable>(&mut w, &mut g);
            check_named(
                c,
                &format!("{what}: weights_after"),
                &layers,
                &tensors(&w),
                &st["weights_after"],
                None,
            );
            let rec = recorded_slots(&layers, &st["slots_after"]);
            c.truth(
                &format!("{what}: {} slots, as recorded", rec.len()),
                rec.len() == opt.slots(),
            );
            for (slot, exp) in rec {
                let got = tensors(opt.slot(&slot).expect("slot"));
                for (k, (g, e)) in got.iter().zip(&exp).enumerate() {
                    c.bits(&format!("{what}: slots_after.{slot}[{k}]"), g, e);
                }
            }
        }
    }
}
