//! Regularization sweeps: one model per strength λ (and per fold with k-fold
//! cross-validation), trained in parallel with `rayon`.
//!
//! λ becomes the kernel L1 or L2 factor of every layer with weights (replacing the spec's
//! kernel regularizers, as `train --l1/--l2` does); everything else comes from the spec.
//!
//! Every run uses the same seed, so the same split, the same initial weights and the same batch
//! order: the only difference between runs is λ, and the results do not depend on the number of
//! threads or on scheduling (each run is sequential and deterministic).
//!
//! **How a λ is judged.** Each run keeps the weights of its epoch with the lowest validation
//! **data** loss (as `EarlyStopping(restore_best_weights=True)` or
//! `ModelCheckpoint(save_best_only=True)` would), so a loss spike in the last epoch does not
//! decide. The data loss (cross-entropy or MSE without the penalty) is used because Keras'
//! `val_loss` includes the penalty, which grows with λ by construction and would not compare
//! strengths on the same footing. With `folds = K` the data (less any test part) is cut into
//! K folds; each λ is trained K times, validated on each fold in turn, and judged by the mean
//! of the K best-epoch validation data losses. The λ with the lowest value is chosen.

use std::path::Path;

use rayon::prelude::*;

use crate::data::{Dataset, SplitSpec, kfold_indices, split};
use crate::history::History;
use crate::model::ModelSpec;
use crate::modelfile::atomic_write;
use crate::plot::SweepPoint;
use crate::report::{g, num};
use crate::spec::{ModelOverrides, SpecFile, TrainConfig};
use crate::train_run::{
    FileBase, FinalMetrics, PreparedData, RunError, SetReport, Silent, StopReason, final_metrics,
    prepare, prepare_parts, train,
};

/// The history key a sweep run is judged by.
pub const SWEEP_MONITOR: &str = "val_data_loss";

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

    /// `l1` / `l2` (the sub-folder prefix).
    pub fn key(self) -> &'static str {
        match self {
            SweepParam::KernelL1 => "l1",
            SweepParam::KernelL2 => "l2",
        }
    }

    /// The sub-folder of one λ: `l2_1e-05`.
    pub fn folder(self, lambda: f32) -> String {
        format!("{}_{}", self.key(), g(lambda))
    }
}

/// One training run of a sweep (one λ, one fold).
#[derive(Debug, Clone)]
pub struct RunResult {
    /// 0-based fold (`None` without cross-validation).
    pub fold: Option<usize>,
    /// Epochs trained.
    pub epochs_done: u32,
    /// Why the run ended.
    pub stop: StopReason,
    /// The 0-based epoch with the lowest validation data loss, whose weights are kept
    /// (`None` when no epoch had a finite one).
    pub best_epoch: Option<u32>,
    /// Keras-style evaluation of the kept weights on every part.
    pub metrics: FinalMetrics,
    /// The run's history.
    pub history: History,
}

/// Every run of one λ.
#[derive(Debug, Clone)]
pub struct SweepResult {
    /// The strength.
    pub lambda: f32,
    /// One run, or one per fold.
    pub runs: Vec<RunResult>,
}

impl SweepResult {
    /// Mean of `f` over the runs (NaN when a run has no value, or no epoch with a finite
    /// validation data loss: such a run has no model to judge).
    pub fn mean(&self, f: impl Fn(&RunResult) -> Option<f32>) -> f32 {
        let vals: Vec<f32> = self
            .runs
            .iter()
            .map(|r| r.best_epoch.and(f(r)).unwrap_or(f32::NAN))
            .collect();
        if vals.is_empty() {
            return f32::NAN;
        }
        (vals.iter().map(|&v| f64::from(v)).sum::<f64>() / vals.len() as f64) as f32
    }

    /// Mean over the runs of a validation value (`None` without validation).
    pub fn val(&self, f: impl Fn(&SetReport) -> f32) -> f32 {
        self.mean(|r| r.metrics.validation.as_ref().map(&f))
    }

    /// Mean over the runs of a training value.
    pub fn train(&self, f: impl Fn(&SetReport) -> f32) -> f32 {
        self.mean(|r| Some(f(&r.metrics.train)))
    }

    /// What the λ is judged by: the mean best-epoch validation data loss.
    pub fn score(&self) -> f32 {
        self.val(|v| v.report.data_loss)
    }

    /// The best epochs (1-based), `;`-separated over folds (`-` when a run has none).
    pub fn best_epochs(&self) -> String {
        self.runs
            .iter()
            .map(|r| {
                r.best_epoch
                    .map_or_else(|| "-".into(), |e| (e + 1).to_string())
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Epochs trained, `;`-separated over folds.
    pub fn epochs(&self) -> String {
        self.runs
            .iter()
            .map(|r| r.epochs_done.to_string())
            .collect::<Vec<_>>()
            .join(";")
    }

    /// The stop tags, one per distinct tag, `;`-separated.
    pub fn stops(&self) -> String {
        let mut tags: Vec<&str> = self.runs.iter().map(|r| r.stop.tag()).collect();
        tags.dedup();
        tags.join(";")
    }
}

/// The sweep's settings.
#[derive(Debug, Clone, Copy)]
pub struct SweepOptions<'a> {
    /// What is swept.
    pub param: SweepParam,
    /// The values of λ, in order.
    pub values: &'a [f32],
    /// k-fold cross-validation with this many folds (`None`: the spec's validation split).
    pub folds: Option<usize>,
    /// Where each run's files go (`<out>/l2_1e-05/` or `<out>/l2_1e-05/fold_1/`): the model of
    /// its best epoch, its history, spec and report.
    pub out: Option<&'a Path>,
}

/// The metric of the sweep's left panel: `accuracy`, or `r2` for regression.
pub fn metric_key(classification: bool) -> &'static str {
    if classification { "accuracy" } else { "r2" }
}

/// Trains one model per value of λ in `opts.values` (per fold with `opts.folds`); results in
/// their order.
///
/// # Errors
/// The first run's [`RunError`] (a bad spec, data, a file that cannot be written, ...). A run
/// whose loss becomes NaN is not an error: its result says so in `stop` and holds its best epoch.
pub fn run_sweep(
    spec: &SpecFile,
    spec_name: &str,
    model: Option<&ModelSpec>,
    dataset: &Dataset,
    overrides: &ModelOverrides,
    opts: SweepOptions<'_>,
    on_done: &(dyn Fn(&SweepResult) + Sync),
) -> Result<Vec<SweepResult>, RunError> {
    let shape = crate::train_run::data_shape(dataset);
    let config = |lambda: f32| -> Result<TrainConfig, RunError> {
        let mut o = overrides.clone();
        match opts.param {
            SweepParam::KernelL1 => o.l1 = Some(lambda),
            SweepParam::KernelL2 => o.l2 = Some(lambda),
        }
        let mut cfg = spec.resolve(spec_name, &shape, model.cloned(), &o)?;
        cfg.save_best = Some(SWEEP_MONITOR.to_string());
        Ok(cfg)
    };
    // The data of each fold (or the one split), shared by every λ.
    let base = config(opts.values.first().copied().unwrap_or(0.0))?;
    let parts: Vec<PreparedData> = match opts.folds {
        None => vec![prepare(dataset, &base)?],
        Some(k) => {
            let outer = split(
                dataset,
                SplitSpec {
                    validation: 0.0,
                    test: base.split.test,
                    seed: base.seed,
                    stratify: base.split.stratify,
                },
            )?;
            let rest = &outer.train;
            let folds = kfold_indices(rest, k, base.seed, base.split.stratify)?;
            folds
                .iter()
                .map(|val_idx| {
                    let train_idx: Vec<usize> = (0..rest.n_samples())
                        .filter(|i| val_idx.binary_search(i).is_err())
                        .collect();
                    prepare_parts(
                        dataset,
                        &base,
                        rest.subset(&train_idx),
                        Some(rest.subset(val_idx)),
                        outer.test.clone(),
                    )
                })
                .collect::<Result<_, _>>()?
        }
    };
    let jobs: Vec<(usize, usize)> = (0..opts.values.len())
        .flat_map(|v| (0..parts.len()).map(move |f| (v, f)))
        .collect();
    let runs: Vec<RunResult> = jobs
        .par_iter()
        .map(|&(v, f)| {
            let lambda = opts.values[v];
            let cfg = config(lambda)?;
            let data = &parts[f];
            let out = train(&cfg, data, None, None, &mut Silent)?;
            let mut kept = out.kept_model();
            let metrics = final_metrics(&mut kept, &cfg, data).map_err(|e| RunError::Training {
                epoch: out.progress.epochs_done,
                source: e,
            })?;
            let fold = opts.folds.map(|_| f);
            if let Some(dir) = opts.out {
                let mut dir = dir.join(opts.param.folder(lambda));
                if let Some(f) = fold {
                    dir = dir.join(format!("fold_{}", f + 1));
                }
                write_run(&dir, &cfg, data, &out, &mut kept, &metrics)?;
            }
            Ok(RunResult {
                fold,
                epochs_done: out.progress.epochs_done,
                stop: out.stop,
                best_epoch: out.best.map(|b| b.epoch),
                metrics,
                history: out.progress.history,
            })
        })
        .collect::<Result<_, RunError>>()?;
    let mut runs = runs.into_iter();
    let results: Vec<SweepResult> = opts
        .values
        .iter()
        .map(|&lambda| SweepResult {
            lambda,
            runs: runs.by_ref().take(parts.len()).collect(),
        })
        .collect();
    for r in &results {
        on_done(r);
    }
    Ok(results)
}

/// Writes one run's folder: `model.mfit` (its best epoch), `history.json`, `history.csv`,
/// `spec.toml` and `report.txt`.
fn write_run(
    dir: &Path,
    cfg: &TrainConfig,
    data: &PreparedData,
    out: &crate::train_run::TrainOutcome,
    kept: &mut crate::model::Sequential,
    metrics: &FinalMetrics,
) -> Result<(), RunError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let base = FileBase {
        spec_toml: cfg.to_toml(),
        data: data.info.clone(),
        scaler: data.scaler.clone(),
    };
    base.snapshot(kept, &out.optimizer, &out.progress, out.plateau.as_ref())
        .save(&dir.join("model.mfit"))?;
    let h = &out.progress.history;
    let report =
        crate::report::build(kept, metrics, data).map_err(|e| RunError::Other(e.to_string()))?;
    let best = out.best.as_ref().map_or_else(
        || "no epoch had a finite validation data loss".to_string(),
        |b| {
            format!(
                "kept: epoch {} (lowest {} {})",
                b.epoch + 1,
                b.monitor,
                num(b.value)
            )
        },
    );
    for (name, text) in [
        ("history.json", h.to_json()),
        ("history.csv", h.to_csv()),
        ("spec.toml", base.spec_toml.clone()),
        (
            "report.txt",
            format!(
                "epochs: {} ({}); {best}\n\n{}",
                out.progress.epochs_done,
                out.stop.describe(),
                report.to_text()
            ),
        ),
    ] {
        let p = dir.join(name);
        atomic_write(&p, text.as_bytes()).map_err(io(&p))?;
    }
    Ok(())
}

/// Index of the λ with the lowest finite score ([`SweepResult::score`]).
pub fn best(results: &[SweepResult]) -> Option<usize> {
    results
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r.score()))
        .filter(|(_, l)| l.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// The points of the sweep plot.
pub fn points(results: &[SweepResult], classification: bool) -> Vec<SweepPoint> {
    let m = metric_key(classification);
    results
        .iter()
        .map(|r| SweepPoint {
            lambda: r.lambda,
            train_metric: r.train(|s| s.metric(m)),
            val_metric: r.val(|s| s.metric(m)),
            train_loss: r.train(|s| s.report.data_loss),
            val_loss: r.val(|s| s.report.data_loss),
        })
        .collect()
}

/// `sweep.csv`: one row per λ (means over the folds with cross-validation).
pub fn to_csv(results: &[SweepResult], classification: bool) -> String {
    let m = metric_key(classification);
    let mut s = format!(
        "lambda,train_loss,train_data_loss,train_penalty,train_{m},val_loss,val_data_loss,val_{m},best_epoch,epochs,stop\n"
    );
    for r in results {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            g(r.lambda),
            r.train(|t| t.report.loss),
            r.train(|t| t.report.data_loss),
            r.train(|t| t.report.penalties.total()),
            r.train(|t| t.metric(m)),
            r.val(|v| v.report.loss),
            r.val(|v| v.report.data_loss),
            r.val(|v| v.metric(m)),
            r.best_epochs(),
            r.epochs(),
            r.stops()
        ));
    }
    s
}

/// The results as a text table.
pub fn to_table(results: &[SweepResult], param: SweepParam, classification: bool) -> String {
    let key = metric_key(classification);
    let m = if classification { "acc" } else { "r2" };
    let metric = |v: f32| {
        if !v.is_finite() {
            "-".to_string()
        } else if classification {
            format!("{:.2}%", 100.0 * v)
        } else {
            num(v)
        }
    };
    let num = |v: f32| if v.is_finite() { num(v) } else { "-".into() };
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                g(r.lambda),
                num(r.train(|t| t.report.loss)),
                num(r.train(|t| t.report.data_loss)),
                metric(r.train(|t| t.metric(key))),
                num(r.val(|v| v.report.loss)),
                num(r.val(|v| v.report.data_loss)),
                metric(r.val(|v| v.metric(key))),
                r.best_epochs(),
                r.epochs(),
                r.stops(),
            ]
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
            "best epoch",
            "epochs",
            "stop",
        ],
        &rows,
    )
}
