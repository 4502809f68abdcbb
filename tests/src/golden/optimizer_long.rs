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
use microfit::core::optim::{AnyOptimizer, Ema, EmaConfig, ExcludeFromWeightDecay, Optimizer};
use microfit::core::params::Params;
use microfit::core::train::{Rows, Samples, Targets, compute_gradients};
use microfit::formats::schema::OptimizerConfig;
use microfit::keras::optimizer_from_keras_class;
use microfit::model::{LayerSpec, ModelSpec};
use serde_json::Value;

use super::check::{Checker, FWD};
use super::named::{check_named, recorded_slots};
use super::tensor::{
    activation_from_keras_name, activation_in_text, build_with, floats, layer_order, loss_in_text,
    num, set_tensors, shape, tensors, weights_in_order,
};

/// Options of `config_given` that microfit's optimizers do not have yet, with the feature's
/// name for the report. A run using one is reported, not replayed. (None today: EMA and
/// `exclude_from_weight_decay` are read by `FileOptimizer`.)
pub const NOT_YET: [(&str, &str); 0] = [];

/// The optimizer a run's `class_name` and `config_given` describe: Keras' own options through
/// [`optimizer_from_keras_class`], then `exclude_from_weight_decay: {var_names: [...]}` and `use_ema`,
/// `ema_momentum`, `ema_overwrite_frequency` (Keras 3 defaults: 0.99, none), which the
/// optimizer config of a `.keras` file does not carry (phase B of issue 12 reads them there).
pub struct FileOptimizer {
    opt: OptimizerConfig,
    exclude: ExcludeFromWeightDecay,
    ema: Option<EmaConfig>,
}

impl FileOptimizer {
    /// Parses a run's optimizer.
    ///
    /// # Errors
    /// An option microfit does not read, or a bad value.
    pub fn parse(class: &str, cfg: &Value) -> Result<Self, String> {
        let mut plain = cfg.clone();
        let obj = plain
            .as_object_mut()
            .ok_or("config_given is not an object")?;
        let exclude = match obj.remove("exclude_from_weight_decay") {
            Some(Value::Object(e)) => {
                let names: Vec<String> = e
                    .get("var_names")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|n| n.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                ExcludeFromWeightDecay::from_var_names(&names).map_err(|e| e.to_string())?
            }
            Some(Value::Null) | None => ExcludeFromWeightDecay::default(),
            Some(other) => return Err(format!("exclude_from_weight_decay: {other}")),
        };
        let use_ema = obj
            .remove("use_ema")
            .is_some_and(|u| u == Value::Bool(true));
        let momentum = obj.remove("ema_momentum").and_then(|m| m.as_f64());
        let every = obj
            .remove("ema_overwrite_frequency")
            .and_then(|m| m.as_u64());
        let ema = use_ema.then(|| EmaConfig {
            ema_momentum: momentum.unwrap_or(0.99) as f32,
            ema_overwrite_frequency: every.map(|f| f as u32),
        });
        let opt = optimizer_from_keras_class(class, &plain).map_err(|e| e.to_string())?;
        Ok(FileOptimizer { opt, exclude, ema })
    }

    /// Whether the run keeps moving averages.
    pub fn has_ema(&self) -> bool {
        self.ema.is_some()
    }

    /// The optimizer for parameters shaped like `w`: Keras' optimizer, with its EMA when
    /// the run uses one.
    ///
    /// # Panics
    /// On an invalid configuration.
    pub fn build<P: Params>(&self, w: &P) -> Ema<AnyOptimizer<P>, P> {
        let mut o = self.opt.build(w).expect("optimizer");
        o.common_mut().exclude_from_weight_decay = self.exclude;
        // Without `use_ema` the wrapper is never stepped: the runner steps `inner`.
        Ema::new(o, self.ema.unwrap_or_default(), w).expect("EMA")
    }
}

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
        let opt_cfg = match FileOptimizer::parse(class, cfg) {
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
        let proto = build_with(&spec, &initial);
        for (i, st) in steps.iter().enumerate() {
            let what = format!("{label} step {}", i + 1);
            // The state before the update: the initial weights and zero slots, or what the
            // previous step recorded.
            let mut w = proto.params.clone();
            let mut opt = opt_cfg.build(&w);
            let ema = opt_cfg.has_ema();
            if i == 0 {
                set_tensors(&mut w, &initial);
            } else {
                let prev = &steps[i - 1];
                set_tensors(&mut w, &weights_in_order(&layers, &prev["weights_after"]));
                for (slot, t) in recorded_slots(&layers, &prev["slots_after"]) {
                    set_tensors(
                        opt.inner
                            .slot_mut(&slot)
                            .unwrap_or_else(|| panic!("{what}: no slot {slot}")),
                        &t,
                    );
                }
                opt.inner.set_iterations(i as u32);
                if ema {
                    let prev = prev
                        .get("ema_after")
                        .expect("ema_after of the previous step");
                    set_tensors(opt.average_mut(), &weights_in_order(&layers, prev));
                }
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
            // The update (Keras' EMA after it, in `Ema::step`), from the recorded gradients.
            if ema {
                opt.step::<microfit::core::backend::Portable>(&mut w, &mut g);
                check_named(
                    c,
                    &format!("{what}: ema_after"),
                    &layers,
                    &tensors(opt.average()),
                    &st["ema_after"],
                    None,
                );
                // `finalize_variable_values` at the end of `fit`: the last averages.
                if i + 1 == steps.len()
                    && let Some(fin) = c.optional(run, "weights_after_finalize_variable_values", "")
                {
                    let mut fw = w.clone();
                    opt.finalize_variable_values(&mut fw);
                    let what = format!("{label}: finalize_variable_values");
                    check_named(c, &what, &layers, &tensors(&fw), fin, None);
                }
            } else {
                opt.inner
                    .step::<microfit::core::backend::Portable>(&mut w, &mut g);
            }
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
                rec.len() == opt.inner.slots(),
            );
            for (slot, exp) in rec {
                let got = tensors(opt.inner.slot(&slot).expect("slot"));
                for (k, (g, e)) in got.iter().zip(&exp).enumerate() {
                    c.bits(&format!("{what}: slots_after.{slot}[{k}]"), g, e);
                }
            }
        }
    }
}
