//! `microfit train`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{
    CliError, CommonArgs, EXIT_DIVERGED, EXIT_OK, ensure_dir, interactive, non_negative_f32,
    write_text,
};
use crate::history::{json_f32, json_object, json_string};
use crate::modelfile::ModelFile;
use crate::report;
use crate::spec::{DataShape, OptimizerKind, TrainConfig, scaling_name};
use crate::train_run::{
    self, EpochObserver, FileBase, PreparedData, StopReason, TrainOutcome, data_shape,
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
    /// Kernel L1 factor on every layer (replaces the spec's kernel regularizers)
    #[arg(long, value_name = "X", value_parser = non_negative_f32, allow_hyphen_values = true)]
    pub l1: Option<f32>,
    /// Kernel L2 factor on every layer (replaces the spec's kernel regularizers) [default model: 1e-3]
    #[arg(long, value_name = "X", value_parser = non_negative_f32, allow_hyphen_values = true)]
    pub l2: Option<f32>,
    /// Output directory [default: microfit-out]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue from DIR/checkpoint.mfit (same spec and data; --epochs may raise the total)
    #[arg(long)]
    pub resume: bool,
    /// No progress bar and no report on stdout (files are still written)
    #[arg(long)]
    pub quiet: bool,
    /// One JSON object per epoch on stdout, then a summary object (no progress bar, no table)
    #[arg(long)]
    pub json: bool,
}

/// Progress bar and JSON lines.
struct Ui {
    bar: Option<ProgressBar>,
    json: bool,
    quiet: bool,
}

fn row_summary(row: &[(String, f32)]) -> String {
    let pick = [
        "loss",
        "accuracy",
        "mse",
        "val_loss",
        "val_accuracy",
        "val_mse",
    ];
    row.iter()
        .filter(|(k, _)| pick.contains(&k.as_str()))
        .map(|(k, v)| format!("{} {}", k.replace("accuracy", "acc"), report::num(*v)))
        .collect::<Vec<_>>()
        .join(" · ")
}

impl EpochObserver for Ui {
    fn on_start(&mut self, first: u32, total: u32) {
        if let Some(b) = &self.bar {
            b.set_length(u64::from(total));
            b.set_position(u64::from(first));
            b.reset_eta();
        }
    }

    fn on_epoch(&mut self, epoch: u32, total: u32, row: &[(String, f32)]) {
        if self.json {
            let mut pairs = vec![
                ("event".to_string(), json_string("epoch")),
                ("epoch".to_string(), (epoch + 1).to_string()),
                ("epochs".to_string(), total.to_string()),
            ];
            pairs.extend(row.iter().map(|(k, v)| (k.clone(), json_f32(*v))));
            println!("{}", json_object(&pairs));
        }
        if let Some(b) = &self.bar {
            b.set_position(u64::from(epoch + 1));
            b.set_message(row_summary(row));
        }
    }

    fn on_event(&mut self, message: &str) {
        if self.json {
            println!(
                "{}",
                json_object(&[
                    ("event".into(), json_string("message")),
                    ("message".into(), json_string(message)),
                ])
            );
        } else if let Some(b) = &self.bar {
            b.println(message);
        } else if !self.quiet {
            eprintln!("{message}");
        }
    }
}

impl Ui {
    fn new(quiet: bool, json: bool) -> Ui {
        let bar = (!quiet && !json && interactive()).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "epoch {pos:>4}/{len} [{bar:30.cyan/blue}] {elapsed_precise} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Ui { bar, json, quiet }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

/// Everything needed to start (or resume) training.
struct Setup {
    cfg: TrainConfig,
    data: PreparedData,
    resume: Option<ModelFile>,
    base: FileBase,
}

fn fresh_setup(a: &TrainArgs) -> Result<Setup, CliError> {
    let (mut spec, name) = super::spec_with_flags(&a.common)?;
    let model = match &a.common.keras_config {
        Some(p) => Some(super::keras_model(p, &mut spec, &a.common)?),
        None => None,
    };
    let data_cfg = spec.data_config(&name)?;
    let dataset = load_dataset(&data_cfg)?;
    let shape: DataShape = data_shape(&dataset);
    let overrides = super::overrides(&a.common, a.l1, a.l2);
    let cfg = spec.resolve(&name, &shape, model, &overrides)?;
    let data = prepare(&dataset, &cfg)?;
    let base = FileBase {
        spec_toml: cfg.to_toml(),
        data: data.info.clone(),
        scaler: data.scaler.clone(),
    };
    Ok(Setup {
        cfg,
        data,
        resume: None,
        base,
    })
}

fn resume_setup(a: &TrainArgs, out: &Path) -> Result<Setup, CliError> {
    let c = &a.common;
    let conflicting = [
        ("--data", c.data.is_some()),
        ("--label", c.label.is_some()),
        ("--spec", c.spec.is_some()),
        ("--keras-config", c.keras_config.is_some()),
        ("--batch-size", c.batch_size.is_some()),
        ("--lr", c.lr.is_some()),
        ("--optimizer", c.optimizer.is_some()),
        ("--l1", a.l1.is_some()),
        ("--l2", a.l2.is_some()),
        ("--activity-l1", c.activity_l1.is_some()),
        ("--activity-l2", c.activity_l2.is_some()),
        ("--hidden", c.hidden.is_some()),
        ("--seed", c.seed.is_some()),
        ("--validation-split", c.validation_split.is_some()),
        ("--test-split", c.test_split.is_some()),
        ("--scale", c.scale.is_some()),
        ("--early-stopping", c.early_stopping.is_some()),
    ];
    let given: Vec<&str> = conflicting
        .iter()
        .filter(|(_, s)| *s)
        .map(|(n, _)| *n)
        .collect();
    if !given.is_empty() {
        return Err(CliError::usage(format!(
            "--resume continues with the spec stored in the checkpoint; {} cannot be changed (only --epochs can)",
            given.join(", ")
        )));
    }
    let ckpt = out.join("checkpoint.mfit");
    if !ckpt.exists() {
        return Err(CliError::new(format!(
            "{}: no checkpoint to resume from (train without --resume first, with --out {})",
            ckpt.display(),
            out.display()
        )));
    }
    let mut file = ModelFile::load(&ckpt)?;
    let mut cfg = file.config(&ckpt)?;
    if let Some(e) = c.epochs {
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
    let dataset = load_dataset(&cfg.data)?;
    if dataset_fingerprint(&dataset) != file.data.fingerprint {
        return Err(CliError::new(format!(
            "{}: the data {:?} is not the data this checkpoint was trained on (fingerprint mismatch); cannot resume",
            ckpt.display(),
            cfg.data.source
        )));
    }
    let data = prepare(&dataset, &cfg)?;
    if data.scaler != file.scaler {
        return Err(CliError::new(format!(
            "{}: the scaler fitted now differs from the stored one; cannot resume",
            ckpt.display()
        )));
    }
    let base = FileBase {
        spec_toml: cfg.to_toml(),
        data: data.info.clone(),
        scaler: data.scaler.clone(),
    };
    Ok(Setup {
        cfg,
        data,
        resume: Some(file),
        base,
    })
}

/// What the run wrote, relative to the output directory.
fn written(classification: bool, keras: bool) -> Vec<String> {
    let metric = if classification { "accuracy" } else { "mse" };
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
            &format!("{metric}.png"),
            &format!("{metric}.svg"),
            "weights.png",
            "weights.svg",
            "report.txt",
        ]
        .iter()
        .map(|s| (*s).to_string()),
    );
    v
}

fn header(cfg: &TrainConfig, data: &PreparedData, outcome: &TrainOutcome) -> String {
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
        OptimizerKind::Sgd if o.momentum > 0.0 => format!(
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
    format!(
        "data:      {} ({} samples: {parts}), {} features → {target}, scaling {}\n\
         model:     {} ({} params)\n\
         training:  loss {}, {opt}, batch {}, seed {}\n\
         epochs:    {}/{} ({}{resumed})\n",
        info.name,
        info.n_samples,
        info.feature_names.len(),
        scaling_name(cfg.scaling),
        report::describe_model(&cfg.model),
        outcome.model.param_count(),
        cfg.loss.keras_name(),
        cfg.batch_size,
        cfg.seed,
        outcome.progress.epochs_done,
        cfg.epochs,
        outcome.stop.describe(),
    )
}

/// Runs `microfit train`; `default_run` is the no-argument invocation.
///
/// # Errors
/// A [`CliError`] for bad data, spec, checkpoint, or a file that cannot be written.
pub fn run(a: &TrainArgs, default_run: bool) -> Result<u8, CliError> {
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    if default_run && !a.quiet {
        println!(
            "microfit: no command given, so training the default regularized model \
             (Dense(16, relu) → Dense(3, softmax), kernel L2 1e-3, Adam 0.01) on the bundled iris dataset.\n\
             See `microfit --help` for everything else.\n"
        );
    }
    let setup = if a.resume {
        resume_setup(a, &out)?
    } else {
        fresh_setup(a)?
    };
    ensure_dir(&out)?;
    let Setup {
        cfg,
        data,
        resume,
        base,
    } = setup;
    let classification = data.info.classification;
    write_text(&out.join("spec.toml"), &base.spec_toml)?;
    let mut warnings: Vec<String> = Vec::new();
    let keras = match crate::keras::keras_file_config(
        &cfg.model,
        Some(&super::keras_compile(
            &cfg.optimizer,
            cfg.loss,
            classification,
        )),
    ) {
        Ok(v) => {
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            write_text(&out.join("model.keras.json"), &text)?;
            true
        }
        Err(e) => {
            warnings.push(format!("model.keras.json not written: {e}"));
            false
        }
    };

    let ckpt = out.join("checkpoint.mfit");
    let mut ui = Ui::new(a.quiet, a.json);
    let result = train_run::train(&cfg, &data, resume.as_ref(), Some((&ckpt, &base)), &mut ui);
    ui.finish();
    let outcome = result?;
    let mut model = outcome.model.clone();
    let metrics = final_metrics(&mut model, &cfg, &data)?;

    // Write everything that was trained, whatever the stop reason.
    base.snapshot(&model, &outcome.optimizer, &outcome.progress)
        .save(&out.join("model.mfit"))?;
    let history = &outcome.progress.history;
    write_text(&out.join("history.json"), &history.to_json())?;
    write_text(&out.join("history.csv"), &history.to_csv())?;
    let mut plot_error = None;
    if let Err(e) = crate::plot::plot_history(history, &out) {
        plot_error = Some(e.to_string());
    }
    if let Err(e) = crate::plot::plot_weights(&model, &out) {
        plot_error.get_or_insert(e.to_string());
    }
    let rep = report::build(&model, &metrics, classification);
    let head = header(&cfg, &data, &outcome);
    let text = format!("{head}\n{}", rep.to_text());
    write_text(&out.join("report.txt"), &text)?;
    let files = written(classification, keras);

    if a.json {
        let mut pairs = vec![
            ("event".to_string(), json_string("summary")),
            (
                "out_dir".to_string(),
                json_string(&out.display().to_string()),
            ),
            ("data".to_string(), json_string(&data.info.name)),
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
        println!("{}", json_object(&pairs));
    } else if !a.quiet {
        println!("{text}");
        println!("Wrote to {}/: {}", out.display(), files.join(", "));
        println!(
            "The report is {}, the plots {} and {}.",
            out.join("report.txt").display(),
            out.join("loss.png").display(),
            out.join("weights.png").display()
        );
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if let Some(e) = plot_error {
        return Err(CliError::new(format!("{e} (everything else was written)")));
    }
    if let StopReason::NonFinite { .. } = &outcome.stop {
        eprintln!(
            "error: training {}; the checkpoint {} keeps the last good epoch and every file above was written",
            outcome.stop.describe(),
            ckpt.display()
        );
        return Ok(EXIT_DIVERGED);
    }
    Ok(EXIT_OK)
}
