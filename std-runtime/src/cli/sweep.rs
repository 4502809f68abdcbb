//! `microfit sweep`.
//!
//! Like a training run, a sweep is a transaction: it is written to `<out>.partial/` and
//! replaces `--out` when every run is done.

use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::out::line;
use super::run_dir::RunDir;
use super::{CliError, CommonArgs, EXIT_OK, interactive, parse_list, write_text};
use crate::history::{json_f32, json_object, json_string};
use crate::report::g;
use crate::sweep::{
    SweepOptions, SweepParam, best, metric_key, points, run_sweep, to_csv, to_table,
};
use crate::train_run::{data_shape, load_dataset};

/// Default output directory of a sweep.
pub const DEFAULT_SWEEP_OUT: &str = "microfit-sweep";
/// Strengths swept when neither `--l1` nor `--l2` is given.
pub const DEFAULT_L2_SWEEP: [f32; 6] = [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];

/// A list of strengths (a newtype so clap takes one comma-separated value).
#[derive(Debug, Clone, PartialEq)]
pub struct Lambdas(pub Vec<f32>);

fn lambdas(s: &str) -> Result<Lambdas, String> {
    parse_list(s).map(Lambdas)
}

/// `microfit sweep` flags.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Data, spec and training settings (as for `train`).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Kernel L2 strengths to compare, comma-separated [default: 0,1e-5,1e-4,1e-3,1e-2,1e-1]
    #[arg(long, value_name = "LIST", value_parser = lambdas)]
    pub l2: Option<Lambdas>,
    /// Kernel L1 strengths to compare, comma-separated (instead of --l2)
    #[arg(long, value_name = "LIST", value_parser = lambdas)]
    pub l1: Option<Lambdas>,
    /// K-fold cross-validation: train each λ K times, each fold the validation set once, and
    /// judge it by the mean (instead of --validation-split)
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(2..))]
    pub folds: Option<u32>,
    /// Output directory; replaced as a whole when the sweep is done [default: microfit-sweep]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print only the best λ
    #[arg(long)]
    pub quiet: bool,
    /// One JSON object per λ, then a summary object
    #[arg(long)]
    pub json: bool,
}

/// Runs `microfit sweep`.
///
/// # Errors
/// A [`CliError`] for bad flags, spec or data.
pub fn run(a: &SweepArgs) -> Result<u8, CliError> {
    let (param, values) = match (&a.l1, &a.l2) {
        (Some(_), Some(_)) => {
            return Err(CliError::usage(
                "give --l1 or --l2 to sweep, not both (fix the other in a spec file)",
            ));
        }
        (Some(l), None) => (SweepParam::KernelL1, l.0.clone()),
        (None, Some(l)) => (SweepParam::KernelL2, l.0.clone()),
        (None, None) => (SweepParam::KernelL2, DEFAULT_L2_SWEEP.to_vec()),
    };
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SWEEP_OUT));
    let run_dir = RunDir::new(&out)?;
    let imported = match &a.common.keras_config {
        Some(p) => Some(super::Imported::keras_config(p)?),
        None => None,
    };
    let (mut spec, name) = super::spec_with_flags(&a.common, imported.as_ref())?;
    let model = imported.map(|m| m.model);
    let dataset = load_dataset(&spec.data_config(&name)?).map_err(CliError::from_run)?;
    let overrides = super::overrides(&a.common, None, None);
    let folds = a.folds.map(|k| k as usize);
    if folds.is_some() && a.common.validation_split.is_some_and(|v| v > 0.0) {
        return Err(CliError::usage(
            "--folds makes its own validation sets; leave out --validation-split",
        ));
    }
    if folds.is_some() {
        // The folds are the validation sets.
        let sp = spec.split.get_or_insert_with(Default::default);
        sp.validation = 0.0;
    }
    // Check the spec once (and that there is a validation set) before starting the runs.
    let cfg = spec.resolve(&name, &data_shape(&dataset), model.clone(), &overrides)?;
    if folds.is_none() && cfg.split.validation == 0.0 {
        return Err(CliError::usage(
            "a sweep compares strengths on validation data: give --validation-split > 0, or \
             --folds K",
        ));
    }
    let classification = dataset.is_classification();
    run_dir.begin()?;
    let bar = (!a.quiet && !a.json && interactive()).then(|| {
        let b =
            ProgressBar::with_draw_target(Some(values.len() as u64), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("runs {pos}/{len} [{bar:30.cyan/blue}] {elapsed_precise}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let results = run_sweep(
        &spec,
        &name,
        model.as_ref(),
        &dataset,
        &overrides,
        SweepOptions {
            param,
            values: &values,
            folds,
            out: Some(&run_dir.partial),
        },
        &|_| {
            if let Some(b) = &bar {
                b.inc(1);
            }
        },
    )
    .map_err(CliError::from_run)?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let dir = &run_dir.partial;
    let metric = metric_key(classification);
    write_text(&dir.join("sweep.csv"), &to_csv(&results, classification))?;
    let best_i = best(&results);
    crate::plot::plot_sweep(
        &points(&results, classification),
        param.label(),
        metric,
        best_i.map(|i| results[i].lambda),
        dir,
    )?;
    let table = to_table(&results, param, classification);
    let judged = match folds {
        Some(k) => format!("mean over {k} folds of the best-epoch validation data loss"),
        None => "best-epoch validation data loss".to_string(),
    };
    let best_line = match best_i {
        Some(i) => {
            let r = &results[i];
            let m = r.val(|v| v.metric(metric));
            format!(
                "best λ ({}) by {judged}: {} (val data loss {}, val {metric} {}); its runs are in {}",
                param.label(),
                g(r.lambda),
                crate::report::num(r.score()),
                if classification {
                    format!("{:.2}%", 100.0 * m)
                } else {
                    crate::report::num(m)
                },
                out.join(param.folder(r.lambda)).display()
            )
        }
        None => "no run ended with a finite validation loss".into(),
    };
    write_text(&dir.join("sweep.txt"), &format!("{table}\n{best_line}\n"))?;
    run_dir.commit()?;
    if a.json {
        for r in &results {
            line(&json_object(&[
                ("event".into(), json_string("run")),
                ("lambda".into(), json_f32(r.lambda)),
                ("train_loss".into(), json_f32(r.train(|t| t.report.loss))),
                (
                    "train_data_loss".into(),
                    json_f32(r.train(|t| t.report.data_loss)),
                ),
                ("val_loss".into(), json_f32(r.val(|v| v.report.loss))),
                (
                    "val_data_loss".into(),
                    json_f32(r.val(|v| v.report.data_loss)),
                ),
                (
                    format!("val_{metric}"),
                    json_f32(r.val(|v| v.metric(metric))),
                ),
                ("best_epoch".into(), json_string(&r.best_epochs())),
                ("epochs".into(), json_string(&r.epochs())),
                ("stop".into(), json_string(&r.stops())),
                (
                    "dir".into(),
                    json_string(&out.join(param.folder(r.lambda)).display().to_string()),
                ),
            ]))?;
        }
        line(&json_object(&[
            ("event".into(), json_string("summary")),
            ("param".into(), json_string(param.label())),
            (
                "best_lambda".into(),
                best_i.map_or("null".into(), |i| json_f32(results[i].lambda)),
            ),
            ("out_dir".into(), json_string(&out.display().to_string())),
        ]))?;
    } else {
        if !a.quiet {
            line(&table)?;
        }
        line(&best_line)?;
        if !a.quiet {
            line(&format!(
                "Wrote {}, {}, {} and {}, and one folder per λ.",
                out.join("sweep.csv").display(),
                out.join("sweep.txt").display(),
                out.join("sweep.png").display(),
                out.join("sweep.svg").display()
            ))?;
        }
    }
    Ok(EXIT_OK)
}
