//! `mlp_fit_*.json`: the MLP of `keras_model_config` (the loss from the file, or the Keras class
//! its description names), `fit` (history per epoch, batch-end running means, weights after
//! each epoch, final weights) through `Trainer::fit_epoch`; the eager replay's per-step losses
//! and named penalties through `train_step` reports; `custom_loop_l2_loss` with `L2(λ/2)` on
//! every kernel and bias.

use microfit::core::loss::Loss;
use microfit::core::regularizer::Reg;
use microfit::core::train::{Rows, Samples};
use microfit::keras::{optimizer_from_keras, spec_from_keras_value};
use microfit::model::ModelSpec;
use microfit::spec::OptimizerConfig;
use serde_json::Value;

use super::check::{Checker, FIT, FWD};
use super::named::{check_named, check_reg_losses};
use super::tensor::{
    build_with, floats, labels, layer_order, loss_in_text, num, samples_of, shape,
    weights_in_order, without_regularizers,
};
use super::trace::{FitTrace, StepTrace, batches, fit_trace, same_bits, trace_steps};

/// `mlp_fit_k3.json`, built from the file.
#[derive(Debug, Clone)]
pub struct MlpFit {
    /// The model, from `keras_model_config`.
    pub spec: ModelSpec,
    /// The same network with `L2(λ/2)` on every kernel and bias and no other regularizer
    /// (`custom_loop_l2_loss`, optional in the schema).
    pub l2_loss_spec: Option<ModelSpec>,
    /// `custom_loop_l2_loss.lambda`.
    pub lambda: Option<f32>,
    /// Keras layer names in order.
    pub layers: Vec<String>,
    /// The loss.
    pub loss: Loss,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// Initial weights in model order.
    pub initial: Vec<Vec<f32>>,
    /// Inputs.
    pub x: Vec<f32>,
    /// One-hot targets (empty for a sparse loss).
    pub y: Vec<f32>,
    /// Class labels (a sparse loss).
    pub classes: Vec<u32>,
    /// Classes.
    pub width: usize,
    /// `fit(batch_size=...)`.
    pub batch_size: usize,
    /// `fit(epochs=...)`.
    pub epochs: usize,
    /// The file.
    pub json: Value,
}

impl MlpFit {
    /// The training samples (one-hot targets).
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
    pub fn n(&self) -> usize {
        self.x.len() / self.spec.input_shape.iter().product::<usize>()
    }
    /// The batches of the whole fit, in order.
    pub fn batches(&self) -> Vec<Rows<'static>> {
        batches(self.n(), self.batch_size, self.epochs)
    }
}

/// Reads `mlp_fit_k3.json`.
pub fn mlp_fit(v: &Value) -> MlpFit {
    let kc = &v["keras_model_config"];
    let (spec, _) = spec_from_keras_value(kc).unwrap_or_else(|e| panic!("keras_model_config: {e}"));
    let layers = layer_order(&v["initial_weights"], Some(kc));
    let lambda = v["custom_loop_l2_loss"]["lambda"]
        .as_f64()
        .map(|l| l as f32);
    let l2_loss_spec = lambda.map(|lambda| {
        let mut s = without_regularizers(&spec);
        for l in &mut s.layers {
            if let Some(c) = l.dense_config_mut() {
                c.kernel_regularizer = Some(Reg::from_l2_loss(lambda));
                c.bias_regularizer = Some(Reg::from_l2_loss(lambda));
            }
        }
        s
    });
    let loss = match v.get("loss") {
        Some(l) => microfit::keras::loss_from_keras(l).unwrap_or_else(|e| panic!("loss: {e}")),
        None => loss_in_text(v["meta"]["description"].as_str().expect("meta.description")),
    };
    let sparse = matches!(loss, Loss::SparseCategoricalCrossentropy { .. });
    let width = match (sparse, v.get("y_onehot")) {
        (false, Some(y)) => *shape(y).last().expect("y_onehot"),
        _ => spec
            .shapes()
            .expect("shapes")
            .last()
            .map_or(1, |s| s.iter().product()),
    };
    let optimizer =
        optimizer_from_keras(&v["optimizer"]).unwrap_or_else(|e| panic!("optimizer: {e}"));
    MlpFit {
        initial: weights_in_order(&layers, &v["initial_weights"]),
        spec,
        l2_loss_spec,
        lambda,
        layers,
        loss,
        optimizer,
        x: floats(&v["x"]),
        y: if sparse {
            Vec::new()
        } else {
            floats(&v["y_onehot"])
        },
        classes: if sparse {
            labels(&v["labels"])
        } else {
            Vec::new()
        },
        width,
        batch_size: v["batch_size"].as_u64().expect("batch_size") as usize,
        epochs: v["epochs"].as_u64().expect("epochs") as usize,
        json: v.clone(),
    }
}

/// Keras' running mean of the step totals within an epoch, weighted by the batch sizes.
#[derive(Debug, Default)]
struct RunningMean {
    sum: f32,
    n: f32,
}

impl RunningMean {
    /// Adds step `t` (restarting at an epoch's first step) and returns the mean so far.
    fn add(&mut self, restart: bool, t: &StepTrace, width: usize) -> f32 {
        if restart {
            *self = RunningMean::default();
        }
        let n = t.y_pred.len() as f32 / width as f32;
        self.sum += t.report.total_loss * n;
        self.n += n;
        self.sum / self.n
    }
}

/// Runtime `fit` of the regularized MLP.
pub fn mlp_runtime_fit(m: &MlpFit) -> FitTrace {
    let model = build_with(&m.spec, &m.initial);
    let opt = m.optimizer.build(&model.params).expect("optimizer");
    fit_trace(model, opt, m.loss, &m.samples(), m.batch_size, m.epochs)
}

/// Runtime eager replay (one `train_step` per batch) of `spec` (the regularized model or the
/// `l2_loss` one).
pub fn mlp_runtime_replay(m: &MlpFit, spec: &ModelSpec) -> Vec<StepTrace> {
    let mut model = build_with(spec, &m.initial);
    let mut opt = m.optimizer.build(&model.params).expect("optimizer");
    trace_steps(&mut model, &mut opt, m.loss, &m.samples(), &m.batches())
}

pub(super) fn run(c: &mut Checker, v: &Value) {
    let m = mlp_fit(v);
    let tol_at = |step: usize| if step == 0 { FWD } else { FIT };

    // fit()
    c.case();
    let fit = mlp_runtime_fit(&m);
    let fj = &v["fit"];
    for (e, r) in fit.epochs.iter().enumerate() {
        c.close1(
            &format!("fit epoch {e}: history loss"),
            r.loss,
            num(&fj["history_loss_per_epoch"][e]),
            FIT,
        );
        check_named(
            c,
            &format!("fit epoch {e}: weights"),
            &m.layers,
            &fit.weights[e],
            &fj["weights_after_each_epoch"][e],
            Some(FIT),
        );
    }
    c.truth("fit: epochs run", fit.epochs.len() == m.epochs);
    check_named(
        c,
        "fit: final_weights",
        &m.layers,
        fit.weights.last().expect("an epoch"),
        &fj["final_weights"],
        Some(FIT),
    );

    // Eager replay: one train_step per batch.
    let steps = mlp_runtime_replay(&m, &m.spec);
    let nb = steps.len() / m.epochs.max(1);
    let logs: Vec<f64> = c
        .optional(fj, "batch_end_logs_loss", "fit.")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(num).collect())
        .unwrap_or_default();
    if !logs.is_empty() {
        c.truth("fit: one batch-end log per step", steps.len() == logs.len());
    }
    let Some(rj) = c.optional(v, "eager_replay_of_fit", "") else {
        return custom_loop(c, v, &m, nb);
    };
    c.case();
    c.truth(
        "eager replay: step count",
        steps.len() == rj["steps"].as_array().map_or(0, Vec::len),
    );
    let mut running = RunningMean::default();
    for (i, (t, st)) in steps
        .iter()
        .zip(rj["steps"].as_array().expect("steps"))
        .enumerate()
    {
        let what = format!(
            "eager step {i} (epoch {}, batch {})",
            st["epoch"], st["batch"]
        );
        c.close1(
            &format!("{what}: data_loss"),
            t.report.data_loss,
            num(&st["data_loss"]),
            tol_at(i),
        );
        check_reg_losses(
            c,
            &what,
            &m.layers,
            &t.report,
            &st["reg_losses"],
            tol_at(i).rtol,
        );
        c.close1(
            &format!("{what}: total_loss"),
            t.report.total_loss,
            num(&st["total_loss"]),
            tol_at(i),
        );
        // Keras' batch-end logs: running batch-size-weighted mean within the epoch.
        let mean = running.add(i % nb == 0, t, m.width);
        if let Some(&l) = logs.get(i) {
            c.close1(&format!("{what}: batch-end logs loss"), mean, l, tol_at(i));
        }
        if i % nb == nb - 1 {
            let e = i / nb;
            if let Some(x) = rj["epoch_mean_of_step_total_loss"].get(e) {
                c.close1(
                    &format!("eager epoch {e}: mean of step totals"),
                    mean,
                    num(x),
                    FIT,
                );
            }
            c.truth(
                &format!("eager epoch {e}: same bits as fit_epoch's report"),
                (mean).to_bits() == fit.epochs[e].loss.to_bits(),
            );
        }
    }
    let last = &steps.last().expect("a step").weights_after;
    check_named(
        c,
        "eager replay: final_weights",
        &m.layers,
        last,
        &rj["final_weights"],
        Some(FIT),
    );
    c.truth(
        "eager replay ends with the same bits as fit_epoch (to_bits, every weight)",
        last.iter()
            .zip(fit.weights.last().expect("an epoch"))
            .all(|(a, b)| same_bits("", a, b).is_ok()),
    );
    if rj.get("epoch_mean_of_step_total_loss").is_none() {
        c.absent("eager_replay_of_fit.epoch_mean_of_step_total_loss");
    }
    custom_loop(c, v, &m, nb);
}

/// `custom_loop_l2_loss`: loss + λ Σ tf.nn.l2_loss(v) ≡ L2(λ/2) on every kernel and bias.
fn custom_loop(c: &mut Checker, v: &Value, m: &MlpFit, nb: usize) {
    let tol_at = |step: usize| if step == 0 { FWD } else { FIT };
    let (Some(cj), Some(spec), Some(lambda)) = (
        c.optional(v, "custom_loop_l2_loss", ""),
        m.l2_loss_spec.as_ref(),
        m.lambda,
    ) else {
        return;
    };
    c.case();
    let steps = mlp_runtime_replay(m, spec);
    c.truth(
        "custom loop: step count",
        steps.len() == cj["steps"].as_array().map_or(0, Vec::len),
    );
    let mut running = RunningMean::default();
    for (i, (t, st)) in steps
        .iter()
        .zip(cj["steps"].as_array().expect("steps"))
        .enumerate()
    {
        let what = format!("custom loop step {i}");
        c.close1(
            &format!("{what}: data_loss"),
            t.report.data_loss,
            num(&st["data_loss"]),
            tol_at(i),
        );
        c.penalty_with(
            tol_at(i).rtol,
            &format!("{what}: λ·Σ l2_loss"),
            t.report.penalties.total(),
            f64::from(lambda) * num(&st["sum_l2_loss"]),
            None,
        );
        c.close1(
            &format!("{what}: total_loss"),
            t.report.total_loss,
            num(&st["total_loss"]),
            tol_at(i),
        );
        let mean = running.add(i % nb == 0, t, m.width);
        if i % nb == nb - 1 {
            let e = i / nb;
            if let Some(x) = cj["epoch_mean_of_step_total_loss"].get(e) {
                c.close1(
                    &format!("custom loop epoch {e}: mean of step totals"),
                    mean,
                    num(x),
                    FIT,
                );
            }
            if let Some(x) = cj["equivalence_check"]["history_loss_per_epoch"].get(e) {
                c.close1(
                    &format!("custom loop epoch {e}: fit() with L2(λ/2) history"),
                    mean,
                    num(x),
                    FIT,
                );
            }
        }
    }
    check_named(
        c,
        "custom loop: final_weights",
        &m.layers,
        &steps.last().expect("a step").weights_after,
        &cj["final_weights"],
        Some(FIT),
    );
    if cj.get("equivalence_check").is_none() {
        c.absent("custom_loop_l2_loss.equivalence_check");
    }
}
