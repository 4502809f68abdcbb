//! `microfit train`.
//!
//! A run is a transaction (see [`super::run_dir`]): it is written to `<out>.partial/` —
//! `spec.toml` and `model.keras.json` first, then `checkpoint.mfit` and a line of
//! `history.csv` after every epoch — and replaces `--out` only when it has a model to show.

use std::path::{Path, PathBuf};

use clap::Args;

use super::out::{line, note};
use super::progress::{Ui, Verbosity};
use super::run_dir::RunDir;
use super::{CliError, CommonArgs, EXIT_DIVERGED, EXIT_OK, Imported, KernelArgs, write_text};
use crate::data::{Dataset, Target, TaskKind};
use crate::history::{json_object, json_string};
use crate::keras::KerasCompile;
use crate::modelfile::{ModelFile, OptimizerState, Progress};
use crate::plot::EpochMark;
use crate::report;
use crate::spec::{DataShape, TrainConfig, scaling_name};
use crate::train_run::{
    self, BestEpoch, FileBase, PreparedData, RunFiles, StopReason, TrainOutcome, data_shape,
    dataset_fingerprint, final_metrics, load_dataset, prepare,
};

/// Default output directory.
pub const DEFAULT_OUT: &str = "microfit-out";

/// `microfit train` flags.
#[derive(Debug, Clone, Default, Args)]
pub struct TrainArgs {
    /// Data, spec and training settings.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Kernel regularizer factors.
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Start from a trained model: a .keras file (its weights, optimizer state, loss and
    /// optimizer; inputs unscaled unless --scale says otherwise) or a model.mfit
    #[arg(long, value_name = "M.keras|M.mfit", conflicts_with_all = ["keras_config", "resume"])]
    pub model: Option<PathBuf>,
    /// Keep the epoch with the lowest val_loss as the model (Keras ModelCheckpoint(save_best_only=True))
    #[arg(long)]
    pub save_best_only: bool,
    /// Output directory; replaced as a whole when the run has a model [default: microfit-out]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR (its unfinished DIR.partial, or its checkpoint) with the same
    /// command line; --epochs may raise the total
    #[arg(long)]
    pub resume: bool,
    /// Progress as Keras: 0 silent, 1 progress bar, 2 one line per epoch [default: 1 in a
    /// terminal, 2 otherwise]
    #[arg(long, value_name = "0|1|2", value_parser = clap::value_parser!(u8).range(0..=2))]
    pub verbose: Option<u8>,
    /// No progress and no report on stdout (files are still written)
    #[arg(long)]
    pub quiet: bool,
    /// One JSON object per epoch on stdout, then a summary object (no progress bar, no table)
    #[arg(long)]
    pub json: bool,
}

/// Everything needed to start (or resume) training.
struct Setup {
    cfg: TrainConfig,
    data: PreparedData,
    /// The dataset as loaded (for the task line).
    dataset: Dataset,
    resume: Option<(ModelFile, Option<BestEpoch>)>,
    base: FileBase,
}

/// The configuration the command line asks for, its data, and the model it starts from.
fn config_from_flags(a: &TrainArgs) -> Result<(TrainConfig, Dataset, Option<Imported>), CliError> {
    let imported = match (&a.model, &a.common.keras_config) {
        (Some(p), _) => Some(Imported::model_file(p)?),
        (None, Some(p)) => Some(Imported::keras_config(p)?),
        (None, None) => None,
    };
    let (mut spec, name) = super::spec_with_flags(&a.common, imported.as_ref())?;
    if a.save_best_only {
        spec.save_best_only = Some(true);
    }
    let data_cfg = spec.data_config(&name)?;
    let dataset = load_dataset(&data_cfg).map_err(CliError::from_run)?;
    let shape: DataShape = data_shape(&dataset);
    let overrides = super::overrides(&a.common, a.kernel.l1, a.kernel.l2);
    let model = imported.as_ref().map(|m| m.model.clone());
    let cfg = spec.resolve(&name, &shape, model, &overrides)?;
    Ok((cfg, dataset, imported))
}

/// The state a run that starts from `m`'s weights begins in (as if resumed before its first
/// epoch): those weights, and the file's optimizer state when the run keeps its optimizer
/// (else a fresh one, with a note).
fn start_from(s: &Setup, m: &Imported) -> Result<Option<ModelFile>, CliError> {
    let Some(weights) = &m.weights else {
        return Ok(None);
    };
    let o = &s.cfg.optimizer;
    let fresh = o
        .build(weights)
        .map_err(|e| CliError::new(format!("optimizer: {e}")))?;
    let same = m
        .optimizer
        .as_ref()
        .is_some_and(|f| f.kind == o.kind && f.slot_names() == o.slot_names());
    let optimizer = match &m.state {
        Some(st) if same => st.clone(),
        Some(_) => {
            note(&format!(
                "note: the optimizer of {} is not the one this run trains with; its state is                  not used",
                m.path.display()
            ));
            OptimizerState::capture(&fresh)
        }
        None => OptimizerState::capture(&fresh),
    };
    Ok(Some(ModelFile {
        spec_toml: s.base.spec_toml.clone(),
        data: s.base.data.clone(),
        scaler: s.base.scaler.clone(),
        weights: weights.clone(),
        optimizer,
        progress: Progress::default(),
        rng: None,
        dropout_rngs: Vec::new(),
    }))
}

fn setup(
    cfg: TrainConfig,
    dataset: Dataset,
    resume: Option<(ModelFile, Option<BestEpoch>)>,
) -> Result<Setup, CliError> {
    let data = prepare(&dataset, &cfg).map_err(CliError::from_run)?;
    let base = FileBase {
        spec_toml: cfg.to_toml(),
        data: data.info.clone(),
        scaler: data.scaler.clone(),
    };
    Ok(Setup {
        cfg,
        data,
        dataset,
        resume,
        base,
    })
}

/// The fields in which two configurations differ (the number of epochs aside).
fn differences(a: &TrainConfig, b: &TrainConfig) -> Vec<&'static str> {
    let mut d = Vec::new();
    let mut check = |name, same: bool| {
        if !same {
            d.push(name);
        }
    };
    check("data", a.data == b.data);
    check("batch_size", a.batch_size == b.batch_size);
    check("seed", a.seed == b.seed);
    check("shuffle", a.shuffle == b.shuffle);
    check("loss", a.loss == b.loss);
    check("scaling", a.scaling == b.scaling);
    check("split", a.split == b.split);
    check("early_stopping", a.early_stopping == b.early_stopping);
    check("save_best_only", a.save_best == b.save_best);
    check("optimizer", a.optimizer == b.optimizer);
    check("model (layers, regularizers)", a.model == b.model);
    d
}

/// The best epoch stored in `dir/model.mfit` by an earlier `--save-best-only` run.
fn best_so_far(dir: &Path, monitor: &str) -> Option<BestEpoch> {
    let f = ModelFile::load(&dir.join("model.mfit")).ok()?;
    let epoch = f.progress.epochs_done.checked_sub(1)?;
    let value = f.progress.history.last(monitor)?;
    Some(BestEpoch {
        monitor: monitor.to_string(),
        epoch,
        value,
        weights: f.weights.tensors,
    })
}

fn resume_setup(a: &TrainArgs, run: &RunDir) -> Result<Setup, CliError> {
    let from_partial = run.partial.join("checkpoint.mfit").exists();
    let source = if from_partial { &run.partial } else { &run.out };
    let ckpt = source.join("checkpoint.mfit");
    if !ckpt.exists() {
        return Err(CliError::new(format!(
            "{}: no checkpoint to resume from (train without --resume first, with --out {})",
            run.out.join("checkpoint.mfit").display(),
            run.out.display()
        )));
    }
    let mut file = ModelFile::load(&ckpt)?;
    let stored = file.config(&ckpt)?;
    let mut cfg = stored.clone();
    if a.common.any_setting() || a.kernel.any() || a.save_best_only {
        // The command line that started the run: it must ask for the same configuration.
        let (asked, _, _) = config_from_flags(a)?;
        let diff = differences(&asked, &stored);
        if !diff.is_empty() {
            return Err(CliError::usage(format!(
                "--resume: this command line asks for another {} than the run in {} was started \
                 with (see its spec.toml); give the original command line (only --epochs may \
                 change), or just --resume --out {}",
                diff.join(", "),
                source.display(),
                run.out.display()
            )));
        }
    }
    if let Some(e) = a.common.epochs {
        if e < file.progress.epochs_done {
            return Err(CliError::usage(format!(
                "--epochs {e}: the checkpoint already has {} epochs; give a larger total to train more",
                file.progress.epochs_done
            )));
        }
        cfg.epochs = e;
    }
    let early_stopped = file
        .progress
        .early_stopping
        .as_ref()
        .is_some_and(|s| s.stopped_epoch.is_some());
    file.progress.finished = early_stopped || file.progress.epochs_done >= cfg.epochs;
    let dataset = load_dataset(&cfg.data).map_err(CliError::from_run)?;
    if dataset_fingerprint(&dataset) != file.data.fingerprint {
        return Err(CliError::new(format!(
            "{}: the data {:?} is not the data this checkpoint was trained on (fingerprint mismatch); cannot resume",
            ckpt.display(),
            cfg.data.source
        )));
    }
    let best = cfg
        .save_best
        .as_deref()
        .and_then(|m| best_so_far(source, m));
    let s = setup(cfg, dataset, Some((file.clone(), best)))?;
    if s.data.scaler != file.scaler {
        return Err(CliError::new(format!(
            "{}: the scaler fitted now differs from the stored one; cannot resume",
            ckpt.display()
        )));
    }
    if !from_partial {
        // Continue a finished run in a fresh partial folder; its best model so far goes along.
        run.begin()?;
        if s.cfg.save_best.is_some() && source.join("model.mfit").exists() {
            std::fs::copy(source.join("model.mfit"), run.partial.join("model.mfit"))
                .map_err(|e| CliError::new(format!("{}: {e}", run.partial.display())))?;
        }
    }
    Ok(s)
}

/// What the run wrote, relative to the output directory.
fn written(metric_plot: &str, keras: bool) -> Vec<String> {
    let mut v: Vec<String> = ["model.mfit", "checkpoint.mfit", "spec.toml"]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    if keras {
        v.push("model.keras.json".into());
    }
    v.extend(
        [
            "history.json",
            "history.csv",
            "loss.png",
            "loss.svg",
            &format!("{metric_plot}.png"),
            &format!("{metric_plot}.svg"),
            "weights.png",
            "weights.svg",
            "report.txt",
        ]
        .iter()
        .map(|s| (*s).to_string()),
    );
    v
}

/// What the task is and why: the first line of a run's output.
pub fn task_line(d: &Dataset, requested: TaskKind) -> String {
    let col = &d.target_name;
    match (&d.target, requested) {
        (Target::Classes { class_names, .. }, TaskKind::Classification) => format!(
            "task: classification (--task classification): {} classes in column {col:?}",
            class_names.len()
        ),
        (Target::Regression { .. }, TaskKind::Regression) => {
            format!("task: regression (--task regression) of column {col:?}")
        }
        (Target::Classes { class_names, .. }, _) => {
            let numeric = class_names.iter().all(|c| c.parse::<f64>().is_ok());
            let why = if numeric {
                format!(
                    "holds {} distinct integers ({} to {}), at most {}",
                    class_names.len(),
                    class_names.first().map_or("", String::as_str),
                    class_names.last().map_or("", String::as_str),
                    crate::data::MAX_AUTO_CLASSES
                )
            } else {
                "holds text".to_string()
            };
            format!(
                "task: classification, {} classes, because label column {col:?} {why}; give \
                 --task regression if it is a quantity to predict",
                class_names.len()
            )
        }
        (Target::Regression { values }, _) => {
            let integers = values.iter().all(|v| v.fract() == 0.0);
            let why = if integers {
                format!(
                    "holds more than {} distinct integers",
                    crate::data::MAX_AUTO_CLASSES
                )
            } else {
                "holds numbers that are not all integers".to_string()
            };
            format!(
                "task: regression, because label column {col:?} {why}; give --task \
                 classification to treat its values as classes"
            )
        }
    }
}

/// A feature column that numbers the rows (1, 2, 3, …): probably an ID.
fn id_like_column(d: &Dataset) -> Option<&str> {
    let n = d.n_samples();
    if n < 10 {
        return None;
    }
    (0..d.n_features()).find_map(|j| {
        let first = d.row(0)[j];
        let counts = (0..n).all(|i| d.row(i)[j] == first + i as f32);
        (counts && (first == 0.0 || first == 1.0)).then(|| d.feature_names[j].as_str())
    })
}

fn header(cfg: &TrainConfig, data: &PreparedData, outcome: &TrainOutcome, task: &str) -> String {
    let info = &data.info;
    let target = if info.classification {
        format!(
            "{} classes ({})",
            info.class_names.len(),
            info.class_names.join(", ")
        )
    } else {
        format!("regression target {:?}", info.target_name)
    };
    let mut parts = format!("{} train", data.train.len());
    if let Some(v) = &data.validation {
        parts.push_str(&format!(", {} validation", v.len()));
    }
    if let Some(t) = &data.test {
        parts.push_str(&format!(", {} test", t.len()));
    }
    let o = &cfg.optimizer;
    let opt = match o.kind {
        _ if o.has_momentum() => format!(
            "sgd(lr {}, momentum {}{})",
            o.initial_learning_rate(),
            o.momentum,
            if o.nesterov { ", nesterov" } else { "" }
        ),
        k => format!("{}(lr {})", k.name(), o.initial_learning_rate()),
    };
    let resumed = outcome
        .resumed_at
        .map_or_else(String::new, |e| format!(", resumed after epoch {e}"));
    let kept = match &outcome.best {
        Some(b) => format!(
            "\nmodel.mfit: epoch {} (lowest {} {}, --save-best-only)",
            b.epoch + 1,
            b.monitor,
            report::num(b.value)
        ),
        None => String::new(),
    };
    format!(
        "{task}\n\
         data:      {} ({} samples: {parts}), {} features ({}) → {target}, scaling {}\n\
         model:     {} ({} params)\n\
         training:  loss {}, {opt}, batch {}, seed {}\n\
         epochs:    {}/{} ({}{resumed}){kept}\n\
         speed:     {:.0} training samples/s (training steps only, this run)\n",
        info.name,
        info.n_samples,
        info.feature_names.len(),
        info.feature_names.join(", "),
        scaling_name(cfg.scaling),
        report::describe_model(&cfg.model),
        outcome.model.param_count(),
        cfg.loss.keras_name(),
        cfg.batch_size,
        cfg.seed,
        outcome.progress.epochs_done,
        cfg.epochs,
        outcome.stop.describe(),
        outcome.train_samples_per_s(),
    )
}

/// The epoch to mark on the plots: the best one kept, or the one early stopping restored.
fn epoch_mark(outcome: &TrainOutcome) -> Option<EpochMark> {
    if let Some(b) = &outcome.best {
        return Some(EpochMark {
            epoch: b.epoch,
            label: format!("best epoch {} (lowest {}; saved)", b.epoch + 1, b.monitor),
        });
    }
    match &outcome.stop {
        StopReason::EarlyStopped {
            best_epoch,
            restored,
            ..
        } => Some(EpochMark {
            epoch: *best_epoch,
            label: if *restored {
                format!("best epoch {} (weights restored)", best_epoch + 1)
            } else {
                format!("best epoch {}", best_epoch + 1)
            },
        }),
        StopReason::NonFinite {
            kept_epoch: Some(k),
            ..
        } => Some(EpochMark {
            epoch: *k,
            label: format!("epoch {} (kept after the NaN)", k + 1),
        }),
        _ => None,
    }
}

/// Runs `microfit train`; `default_run` is the no-argument invocation.
///
/// # Errors
/// A [`CliError`] for bad data, spec, checkpoint, or a file that cannot be written.
pub fn run(a: &TrainArgs, default_run: bool) -> Result<u8, CliError> {
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    let mode = Verbosity::choose(a.verbose, a.quiet, a.json);
    let text = !matches!(mode, Verbosity::Json) && !a.quiet;
    if default_run && text {
        line(
            "microfit: no command given, so training the default regularized model \
             (Dense(16, relu) → Dense(3, softmax), kernel L2 1e-3, Adam 0.01) on the bundled iris dataset.\n\
             See `microfit --help` for everything else.\n",
        )?;
    }
    let run = RunDir::new(&out)?;
    run.check_replaceable()?;
    let setup = if a.resume {
        resume_setup(a, &run)?
    } else {
        let (cfg, dataset, imported) = config_from_flags(a)?;
        let mut s = setup(cfg, dataset, None)?;
        if let Some(m) = &imported {
            s.resume = start_from(&s, m)?.map(|f| (f, None));
            if let (Some(f), false) = (&s.resume, a.quiet || a.json) {
                note(&format!(
                    "starting from the weights of {}, optimizer at iteration {}",
                    m.path.display(),
                    f.0.optimizer.iterations
                ));
            }
        }
        run.begin()?;
        s
    };
    let Setup {
        cfg,
        data,
        dataset,
        resume,
        base,
    } = setup;
    let task = task_line(&dataset, cfg.data.task);
    match mode {
        Verbosity::Json => line(&json_object(&[
            ("event".into(), json_string("start")),
            (
                "task".into(),
                json_string(if data.info.classification {
                    "classification"
                } else {
                    "regression"
                }),
            ),
            ("task_reason".into(), json_string(&task)),
            (
                "partial_dir".into(),
                json_string(&run.partial.display().to_string()),
            ),
        ]))?,
        _ if a.quiet => {}
        _ => line(&task)?,
    }
    let mut warnings: Vec<String> = Vec::new();
    if let Some(c) = id_like_column(&dataset) {
        warnings.push(format!(
            "feature column {c:?} numbers the rows (an ID?); leave it out with --drop {c}"
        ));
    }
    let dir = &run.partial;
    write_text(&dir.join("spec.toml"), &base.spec_toml)?;
    let compile = KerasCompile {
        loss: Some(cfg.loss),
        optimizer: Some(cfg.optimizer.clone()),
        metrics: vec![
            if data.info.classification {
                "accuracy"
            } else {
                "mse"
            }
            .into(),
        ],
    };
    let keras = match crate::keras::keras_file_config(&cfg.model, Some(&compile)) {
        Ok(v) => {
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            write_text(&dir.join("model.keras.json"), &text)?;
            true
        }
        Err(e) => {
            warnings.push(format!("model.keras.json not written: {e}"));
            false
        }
    };

    let mut ui = Ui::new(mode);
    let files = RunFiles { dir, base: &base };
    let resume_ref = resume.as_ref().map(|(f, b)| (f, b.clone()));
    let result = train_run::train(&cfg, &data, resume_ref, Some(files), &mut ui);
    ui.finish();
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            let e = CliError::from_run(e);
            if e.code != super::out::EXIT_BROKEN_PIPE {
                note(&format!(
                    "the unfinished run is in {}; {} is unchanged",
                    run.partial.display(),
                    run.out.display()
                ));
            }
            return Err(e);
        }
    };
    if !outcome.has_model() {
        return Err(CliError {
            code: EXIT_DIVERGED,
            message: format!(
                "training {}; {} is unchanged, the partial run is in {}",
                outcome.stop.describe(),
                run.out.display(),
                run.partial.display()
            ),
        });
    }
    let mut model = outcome.kept_model();
    let metrics = final_metrics(&mut model, &cfg, &data)?;

    // The run's files, then the switch to --out.
    let best_saved = outcome.best.is_some() && dir.join("model.mfit").exists();
    if !best_saved {
        base.snapshot(&model, &outcome.optimizer, &outcome.progress)
            .save(&dir.join("model.mfit"))?;
    }
    let history = &outcome.progress.history;
    write_text(&dir.join("history.json"), &history.to_json())?;
    write_text(&dir.join("history.csv"), &history.to_csv())?;
    let mark = epoch_mark(&outcome);
    let mut plot_error = None;
    if let Err(e) = crate::plot::plot_history(history, dir, mark.as_ref()) {
        plot_error = Some(e.to_string());
    }
    if let Err(e) = crate::plot::plot_weights(&model, dir) {
        plot_error.get_or_insert(e.to_string());
    }
    let rep = report::build(&mut model, &metrics, &data)?;
    let head = header(&cfg, &data, &outcome, &task);
    let report_text = format!("{head}\n{}", rep.to_text());
    write_text(&dir.join("report.txt"), &report_text)?;
    let files = written(crate::plot::metric_plot_key(history), keras);
    run.commit()?;

    match mode {
        Verbosity::Json => {
            let mut pairs = vec![
                ("event".to_string(), json_string("summary")),
                (
                    "out_dir".to_string(),
                    json_string(&out.display().to_string()),
                ),
                ("data".to_string(), json_string(&data.info.name)),
                (
                    "task".to_string(),
                    json_string(if data.info.classification {
                        "classification"
                    } else {
                        "regression"
                    }),
                ),
                (
                    "epochs_done".to_string(),
                    outcome.progress.epochs_done.to_string(),
                ),
                ("epochs".to_string(), cfg.epochs.to_string()),
                ("stop_reason".to_string(), json_string(outcome.stop.tag())),
                (
                    "stop_message".to_string(),
                    json_string(&outcome.stop.describe()),
                ),
                (
                    "best_epoch".to_string(),
                    mark.as_ref()
                        .map_or("null".into(), |m| (m.epoch + 1).to_string()),
                ),
                (
                    "train_samples_per_s".to_string(),
                    format!("{:.1}", outcome.train_samples_per_s()),
                ),
            ];
            if let serde_json::Value::Object(m) = rep.to_json() {
                for (k, v) in m {
                    pairs.push((k, v.to_string()));
                }
            }
            pairs.push((
                "files".to_string(),
                serde_json::to_string(&files).unwrap_or_else(|_| "[]".into()),
            ));
            line(&json_object(&pairs))?;
        }
        _ if a.quiet => {}
        _ => {
            line(&format!("\n{}", rep.to_text()))?;
            line(&head[task.len() + 1..])?;
            line(&format!(
                "Wrote to {}/: {}",
                out.display(),
                files.join(", ")
            ))?;
            line(&format!(
                "The report is {}, the plots {} and {}.",
                out.join("report.txt").display(),
                out.join("loss.png").display(),
                out.join("weights.png").display()
            ))?;
        }
    }
    for w in &warnings {
        note(&format!("warning: {w}"));
    }
    if let Some(e) = plot_error {
        return Err(CliError::new(format!("{e} (everything else was written)")));
    }
    if let StopReason::NonFinite { .. } = &outcome.stop {
        note(&format!(
            "error: training {}; that model and every file above were written to {}",
            outcome.stop.describe(),
            out.display()
        ));
        return Ok(EXIT_DIVERGED);
    }
    Ok(EXIT_OK)
}
