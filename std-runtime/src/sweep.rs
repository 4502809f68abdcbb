//! Regularization sweeps: one model per strength λ, trained in parallel with `rayon`.
//!
//! λ becomes the kernel L1 or L2 factor of every layer with weights (replacing the spec's
//! kernel regularizers, as `train --l1/--l2` does); everything else comes from the spec.
//!
//! Every run uses the same seed, so the same split, the same initial weights and the same batch
//! order: the only difference between runs is λ, and the results do not depend on the number of
//! threads or on scheduling (each run is sequential and deterministic).
//!
//! The best λ is chosen by the validation **data** loss (the cross-entropy or MSE without the
//! penalty): Keras' `val_loss` includes the penalty, which grows with λ by construction, so it
//! would not compare strengths on the same footing. Both are in the results.

use rayon::prelude::*;

use crate::data::Dataset;
use crate::history::History;
use crate::model::ModelSpec;
use crate::plot::SweepPoint;
use crate::report::num;
use crate::spec::{ModelOverrides, SpecFile};
use crate::train_run::{FinalMetrics, RunError, Silent, StopReason, final_metrics, prepare, train};

/// What is swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepParam {
    /// The kernel L1 factor of every layer.
    KernelL1,
    /// The kernel L2 factor of every layer.
    KernelL2,
}

impl SweepParam {
    /// `kernel L1` / `kernel L2`.
    pub fn label(self) -> &'static str {
        match self {
            SweepParam::KernelL1 => "kernel L1",
            SweepParam::KernelL2 => "kernel L2",
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct SweepResult {
    /// The strength.
    pub lambda: f32,
    /// Epochs trained.
    pub epochs_done: u32,
    /// Why the run ended.
    pub stop: StopReason,
    /// Final Keras-style evaluation on every part.
    pub metrics: FinalMetrics,
    /// The run's history.
    pub history: History,
}

/// Trains one model per value of `param` (see the module docs); results in the order of
/// `values`.
///
/// # Errors
/// The first run's [`RunError`] (a bad spec, data, ...). A run whose loss becomes NaN is not an
/// error: its result says so in `stop` and holds the last good epoch's model.
#[allow(clippy::too_many_arguments)] // the sweep's settings; folded into a struct by the CLI work
pub fn run_sweep(
    spec: &SpecFile,
    spec_name: &str,
    model: Option<&ModelSpec>,
    dataset: &Dataset,
    overrides: &ModelOverrides,
    param: SweepParam,
    values: &[f32],
    on_done: &(dyn Fn(&SweepResult) + Sync),
) -> Result<Vec<SweepResult>, RunError> {
    let shape = crate::train_run::data_shape(dataset);
    values
        .par_iter()
        .map(|&lambda| {
            let mut o = overrides.clone();
            match param {
                SweepParam::KernelL1 => o.l1 = Some(lambda),
                SweepParam::KernelL2 => o.l2 = Some(lambda),
            }
            let cfg = spec.resolve(spec_name, &shape, model.cloned(), &o)?;
            let data = prepare(dataset, &cfg)?;
            let out = train(&cfg, &data, None, None, &mut Silent)?;
            let mut m = out.model;
            let metrics = final_metrics(&mut m, &cfg, &data).map_err(|e| RunError::Training {
                epoch: out.progress.epochs_done,
                source: e,
            })?;
            let r = SweepResult {
                lambda,
                epochs_done: out.progress.epochs_done,
                stop: out.stop,
                metrics,
                history: out.progress.history,
            };
            on_done(&r);
            Ok(r)
        })
        .collect()
}

/// Index of the run with the lowest finite validation data loss.
pub fn best(results: &[SweepResult]) -> Option<usize> {
    results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.metrics.validation.as_ref().map(|v| (i, v.data_loss)))
        .filter(|(_, l)| l.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// The points of the sweep plot.
pub fn points(results: &[SweepResult], classification: bool) -> Vec<SweepPoint> {
    let metric = |r: &crate::core::train::EpochReport| {
        if classification {
            r.metrics.accuracy()
        } else {
            r.metrics.mse()
        }
    };
    results
        .iter()
        .map(|r| {
            let v = r.metrics.validation.as_ref();
            SweepPoint {
                lambda: r.lambda,
                train_metric: metric(&r.metrics.train),
                val_metric: v.map_or(f32::NAN, metric),
                train_loss: r.metrics.train.data_loss,
                val_loss: v.map_or(f32::NAN, |v| v.data_loss),
            }
        })
        .collect()
}

/// `sweep.csv`: one row per λ.
pub fn to_csv(results: &[SweepResult], classification: bool) -> String {
    let m = if classification { "accuracy" } else { "mse" };
    let mut s = format!(
        "lambda,train_loss,train_data_loss,train_penalty,train_{m},val_loss,val_data_loss,val_{m},epochs,stop\n"
    );
    let metric = |r: &crate::core::train::EpochReport| {
        if classification {
            r.metrics.accuracy()
        } else {
            r.metrics.mse()
        }
    };
    for r in results {
        let t = &r.metrics.train;
        let (vl, vd, vm) = r
            .metrics
            .validation
            .as_ref()
            .map_or((f32::NAN, f32::NAN, f32::NAN), |v| {
                (v.loss, v.data_loss, metric(v))
            });
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            r.lambda,
            t.loss,
            t.data_loss,
            t.penalties.total(),
            metric(t),
            vl,
            vd,
            vm,
            r.epochs_done,
            r.stop.tag()
        ));
    }
    s
}

/// The results as a text table.
pub fn to_table(results: &[SweepResult], param: SweepParam, classification: bool) -> String {
    let m = if classification { "acc" } else { "mse" };
    let metric = |r: &crate::core::train::EpochReport| {
        if classification {
            format!("{:.2}%", 100.0 * r.metrics.accuracy())
        } else {
            num(r.metrics.mse())
        }
    };
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let t = &r.metrics.train;
            let mut row = vec![
                format!("{}", r.lambda),
                num(t.loss),
                num(t.data_loss),
                metric(t),
            ];
            match &r.metrics.validation {
                Some(v) => row.extend([num(v.loss), num(v.data_loss), metric(v)]),
                None => row.extend(["-".into(), "-".into(), "-".into()]),
            }
            row.push(r.epochs_done.to_string());
            row.push(r.stop.tag().to_string());
            row
        })
        .collect();
    let lam = format!("λ ({})", param.label());
    let h_tm = format!("train {m}");
    let h_vm = format!("val {m}");
    crate::report::table(
        &[
            &lam,
            "train loss",
            "train data loss",
            &h_tm,
            "val loss",
            "val data loss",
            &h_vm,
            "epochs",
            "stop",
        ],
        &rows,
    )
}
