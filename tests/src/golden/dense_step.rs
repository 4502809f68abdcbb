//! `dense_step_*.json`: one Dense layer (from `meta.layer`: units, input size, the three
//! regularizers) per activation/loss case: the forward pass at init (pre-activation, output,
//! data loss, named penalties, undivided activity penalty, total, gradients of the total and of
//! the data loss alone); for every optimizer run every recorded step (outputs, losses,
//! gradients, weights and slots after each update) and the `fit` history; and each update
//! replayed from the recorded weights, slots and gradients, which must be bit-exact.

use microfit::core::loss::Loss;
use microfit::core::optim::Optimizer;
use microfit::core::regularizer::Regularizer;
use microfit::core::train::{Rows, Samples, compute_gradients};
use microfit::keras::{optimizer_from_keras_class, spec_from_keras_value};
use microfit::model::ModelSpec;
use microfit::spec::OptimizerConfig;
use serde_json::{Value, json};

use super::check::{Checker, FWD};
use super::named::{check_named, check_reg_losses, recorded_slots};
use super::tensor::{
    build_with, floats, labels, layer_order, num, samples_of, set_tensors, shape, tensors,
    weights_in_order, without_regularizers,
};
use super::trace::{StepTrace, trace_steps};

/// One optimizer run of a dense_step case.
#[derive(Debug, Clone)]
pub struct OptimizerRun {
    /// `SGD{"learning_rate": 0.1, ...}` (for messages).
    pub label: String,
    /// The optimizer, from `config_given`.
    pub optimizer: OptimizerConfig,
    /// The recorded steps.
    pub steps: Vec<Value>,
    /// `fit_check.history_loss` (optional in the schema).
    pub history_loss: Option<Vec<f64>>,
}

/// One activation/loss case of `dense_step_k3.json`, built from the file.
#[derive(Debug, Clone)]
pub struct DenseStepCase {
    /// `linear+mse`, ...
    pub label: String,
    /// The model, built from `meta.layer` and the case's activation through `microfit::keras`.
    pub spec: ModelSpec,
    /// The loss.
    pub loss: Loss,
    /// Keras layer names in order.
    pub layers: Vec<String>,
    /// Initial weights in model order.
    pub initial: Vec<Vec<f32>>,
    /// Inputs, row-major.
    pub x: Vec<f32>,
    /// Targets, row-major (empty for a sparse loss).
    pub y: Vec<f32>,
    /// Class labels (a sparse loss).
    pub classes: Vec<u32>,
    /// Outputs per sample.
    pub width: usize,
    /// The recorded case.
    pub json: Value,
    /// The optimizer runs.
    pub runs: Vec<OptimizerRun>,
}

impl DenseStepCase {
    /// The samples of the case.
    pub fn samples(&self) -> Samples<'_> {
        samples_of(
            &self.x,
            &self.spec.input_shape,
            &self.y,
            &self.classes,
            self.width,
        )
    }
    /// Number of samples.
    pub fn batch(&self) -> usize {
        self.x.len() / self.spec.input_shape.iter().product::<usize>()
    }
}

/// Reads every case of `dense_step_k3.json` (the model comes from `meta.layer`: units, input
/// size and the three regularizer configs, read through `microfit::keras`).
pub fn dense_step_cases(v: &Value) -> Vec<DenseStepCase> {
    let ml = &v["meta"]["layer"];
    let layers = layer_order(&v["initial_weights"], None);
    let initial = weights_in_order(&layers, &v["initial_weights"]);
    let x = floats(&v["x"]);
    let mut out = Vec::new();
    for case in v["cases"].as_array().expect("cases") {
        let act = case["activation"].as_str().expect("activation");
        let cfg = json!({"layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [null, ml["input_dim"]]}},
            {"class_name": "Dense", "config": {
                "name": layers[0], "units": ml["units"], "activation": act,
                "kernel_regularizer": ml["kernel_regularizer"],
                "bias_regularizer": ml["bias_regularizer"],
                "activity_regularizer": ml["activity_regularizer"]}}]});
        let (spec, _) =
            spec_from_keras_value(&cfg).unwrap_or_else(|e| panic!("dense_step model: {e}"));
        let loss_name = case["loss"].as_str().expect("loss");
        let loss =
            Loss::from_keras_name(loss_name).unwrap_or_else(|| panic!("unknown loss {loss_name}"));
        let sparse = matches!(loss, Loss::SparseCategoricalCrossentropy { .. });
        let (y, classes) = if sparse {
            (Vec::new(), labels(&case["y_true"]))
        } else {
            (floats(&case["y_true"]), Vec::new())
        };
        let width = if sparse {
            ml["units"].as_u64().expect("units") as usize
        } else {
            *shape(&case["y_true"]).last().expect("y_true shape")
        };
        let runs = case["optimizer_runs"]
            .as_array()
            .expect("optimizer_runs")
            .iter()
            .map(|r| {
                let class = r["optimizer"].as_str().expect("optimizer");
                let optimizer = optimizer_from_keras_class(class, &r["config_given"])
                    .unwrap_or_else(|e| panic!("{class} {}: {e}", r["config_given"]));
                let effective = optimizer_from_keras_class(class, &r["config_effective"])
                    .unwrap_or_else(|e| panic!("{class} {}: {e}", r["config_effective"]));
                assert_eq!(
                    optimizer, effective,
                    "{class}: config_given and config_effective disagree"
                );
                OptimizerRun {
                    label: format!("{class}{}", r["config_given"]),
                    optimizer,
                    steps: r["steps"].as_array().expect("steps").clone(),
                    history_loss: r["fit_check"]["history_loss"]
                        .as_array()
                        .map(|a| a.iter().map(num).collect()),
                }
            })
            .collect();
        out.push(DenseStepCase {
            label: format!("{act}+{loss_name}"),
            spec,
            loss,
            layers: layers.clone(),
            initial: initial.clone(),
            x: x.clone(),
            y,
            classes,
            width,
            json: case.clone(),
            runs,
        });
    }
    out
}

/// The runtime trace of one optimizer run of a dense_step case (2 steps on the same batch,
/// or as many as the file records).
pub fn dense_step_runtime_trace(case: &DenseStepCase, run: &OptimizerRun) -> Vec<StepTrace> {
    let mut m = build_with(&case.spec, &case.initial);
    let mut opt = run.optimizer.build(&m.params).expect("optimizer");
    let b = case.batch();
    let rows = vec![Rows::Range(0, b); run.steps.len()];
    trace_steps(&mut m, &mut opt, case.loss, &case.samples(), &rows)
}

pub(super) fn run(c: &mut Checker, v: &Value) {
    for case in dense_step_cases(v) {
        c.case();
        let f = &case.json["forward_at_init"];
        let name = format!("{}: forward_at_init", case.label);
        let b = case.batch();
        if let Some(bs) = c.optional(f, "batch_size", "forward_at_init.") {
            c.truth(
                &format!("{name}: batch_size"),
                bs.as_u64() == Some(b as u64),
            );
        }
        // Forward and gradients at the initial weights.
        let mut m = build_with(&case.spec, &case.initial);
        let samples = case.samples();
        let (mut y, mut z) = (Vec::new(), Vec::new());
        for i in 0..b {
            let (out, logits) = super::forward_one(&mut m, samples.input(i), true);
            y.extend_from_slice(&out);
            z.extend_from_slice(&logits.expect("a Dense layer keeps its pre-activations"));
        }
        c.close32(
            &format!("{name}: pre_activation"),
            &z,
            &floats(&f["pre_activation"]),
            FWD,
        );
        c.close32(&format!("{name}: y_pred"), &y, &floats(&f["y_pred"]), FWD);
        let rep = compute_gradients::<microfit::core::backend::Portable, _>(
            &mut m,
            case.loss,
            &samples,
            Rows::Range(0, b),
        )
        .expect("compute_gradients");
        c.close1(
            &format!("{name}: data_loss"),
            rep.data_loss,
            num(&f["data_loss"]),
            FWD,
        );
        check_reg_losses(c, &name, &case.layers, &rep, &f["reg_losses"], FWD.rtol);
        if let Some(ar) = case.spec.layers[0]
            .dense_config()
            .and_then(|d| d.activity_regularizer)
        {
            let mut undivided = 0.0f32;
            for row in y.chunks(case.width) {
                undivided += ar.penalty(row, case.width);
            }
            if let Some(e) = c.optional(f, "activity_loss_undivided", "forward_at_init.") {
                c.penalty(
                    &format!("{name}: activity_loss_undivided"),
                    undivided,
                    num(e),
                    None,
                );
            }
        }
        c.close1(
            &format!("{name}: total_loss"),
            rep.total_loss,
            num(&f["total_loss"]),
            FWD,
        );
        check_named(
            c,
            &format!("{name}: grads_total"),
            &case.layers,
            &tensors(&m.grads),
            &f["grads_total"],
            Some(FWD),
        );
        let mut plain = build_with(&without_regularizers(&case.spec), &case.initial);
        let rep0 = compute_gradients::<microfit::core::backend::Portable, _>(
            &mut plain,
            case.loss,
            &samples,
            Rows::Range(0, b),
        )
        .expect("compute_gradients");
        c.truth(
            &format!("{name}: no penalties without regularizers"),
            rep0.penalties.entries().is_empty(),
        );
        check_named(
            c,
            &format!("{name}: grads_data_loss_only"),
            &case.layers,
            &tensors(&plain.grads),
            &f["grads_data_loss_only"],
            Some(FWD),
        );

        for run in &case.runs {
            c.case();
            if run.history_loss.is_none() {
                c.absent("optimizer_runs[].fit_check.history_loss");
            }
            let name = format!("{} {}", case.label, run.label);
            let trace = dense_step_runtime_trace(&case, run);
            for (i, (st, t)) in run.steps.iter().zip(&trace).enumerate() {
                let what = format!("{name} step {}", i + 1);
                c.close32(
                    &format!("{what}: y_pred"),
                    &t.y_pred,
                    &floats(&st["y_pred"]),
                    FWD,
                );
                c.close1(
                    &format!("{what}: data_loss"),
                    t.report.data_loss,
                    num(&st["data_loss"]),
                    FWD,
                );
                check_reg_losses(
                    c,
                    &what,
                    &case.layers,
                    &t.report,
                    &st["reg_losses"],
                    FWD.rtol,
                );
                c.close1(
                    &format!("{what}: total_loss"),
                    t.report.total_loss,
                    num(&st["total_loss"]),
                    FWD,
                );
                if let Some(h) = run.history_loss.as_ref().and_then(|h| h.get(i)) {
                    c.close1(
                        &format!("{what}: fit history_loss"),
                        t.report.total_loss,
                        *h,
                        FWD,
                    );
                }
                check_named(
                    c,
                    &format!("{what}: grads"),
                    &case.layers,
                    &t.grads,
                    &st["grads"],
                    Some(FWD),
                );
                check_named(
                    c,
                    &format!("{what}: weights_after"),
                    &case.layers,
                    &t.weights_after,
                    &st["weights_after"],
                    Some(FWD),
                );
                let rec = recorded_slots(&case.layers, &st["slots_after"]);
                c.truth(
                    &format!(
                        "{what}: slot names {:?} vs {:?}",
                        rec.keys().collect::<Vec<_>>(),
                        t.slots_after.iter().map(|s| &s.0).collect::<Vec<_>>()
                    ),
                    rec.len() == t.slots_after.len()
                        && t.slots_after.iter().all(|(n, _)| rec.contains_key(n)),
                );
                for (slot, got) in &t.slots_after {
                    if let Some(exp) = rec.get(slot) {
                        for (k, (g, e)) in got.iter().zip(exp).enumerate() {
                            c.close32(&format!("{what}: slots_after.{slot}[{k}]"), g, e, FWD);
                        }
                    }
                }
            }
            c.truth(
                &format!("{name}: {} steps recorded and run", run.steps.len()),
                trace.len() == run.steps.len(),
            );

            // The update alone, from Keras' own weights, slots and gradients: bit-exact.
            let proto = build_with(&case.spec, &case.initial).params;
            for (i, st) in run.steps.iter().enumerate() {
                let what = format!("{name} step {} from recorded grads", i + 1);
                let mut w = proto.clone();
                let mut opt = run.optimizer.build(&w).expect("optimizer");
                if i == 0 {
                    set_tensors(&mut w, &case.initial);
                } else {
                    let prev = &run.steps[i - 1];
                    set_tensors(
                        &mut w,
                        &weights_in_order(&case.layers, &prev["weights_after"]),
                    );
                    for (slot, t) in recorded_slots(&case.layers, &prev["slots_after"]) {
                        set_tensors(opt.slot_mut(&slot).expect("slot"), &t);
                    }
                    opt.set_iterations(i as u32);
                }
                let mut g = proto.clone();
                set_tensors(&mut g, &weights_in_order(&case.layers, &st["grads"]));
                opt.step::<microfit::core::backend::Portable>(&mut w, &mut g);
                check_named(
                    c,
                    &format!("{what}: weights_after"),
                    &case.layers,
                    &tensors(&w),
                    &st["weights_after"],
                    None,
                );
                for (slot, exp) in recorded_slots(&case.layers, &st["slots_after"]) {
                    let got = tensors(opt.slot(&slot).expect("slot"));
                    for (k, (g, e)) in got.iter().zip(&exp).enumerate() {
                        c.bits(&format!("{what}: slots_after.{slot}[{k}]"), g, e);
                    }
                }
            }
        }
    }
}
