//! `microfit sweep`.

use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{CliError, CommonArgs, EXIT_OK, ensure_dir, interactive, parse_list, write_text};
use crate::history::{json_f32, json_object, json_string};
use crate::sweep::{SweepParam, best, points, run_sweep, to_csv, to_table};
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
    /// Output directory [default: microfit-sweep]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print only the best λ
    #[arg(long)]
    pub quiet: bool,
    /// One JSON object per run, then a summary object
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
    let (mut spec, name) = super::spec_with_flags(&a.common)?;
    let model = match &a.common.keras_config {
        Some(p) => Some(super::keras_model(p, &mut spec, &a.common)?),
        None => None,
    };
    let dataset = load_dataset(&spec.data_config(&name)?)?;
    let overrides = super::overrides(&a.common, None, None);
    // Check the spec once (and that there is a validation set) before starting the runs.
    let cfg = spec.resolve(&name, &data_shape(&dataset), model.clone(), &overrides)?;
    if cfg.split.validation == 0.0 {
        return Err(CliError::usage(
            "a sweep compares strengths on the validation set: give --validation-split > 0",
        ));
    }
    let classification = dataset.is_classification();
    ensure_dir(&out)?;
    let bar = (!a.quiet && !a.json && interactive()).then(|| {
        let b =
            ProgressBar::with_draw_target(Some(values.len() as u64), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("runs {pos}/{len} [{bar:30.cyan/blue}] {elapsed_precise}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let json = a.json;
    let on_done = |r: &crate::sweep::SweepResult| {
        if let Some(b) = &bar {
            b.inc(1);
        }
        if json {
            let v = r.metrics.validation.as_ref();
            println!(
                "{}",
                json_object(&[
                    ("event".into(), json_string("run")),
                    ("lambda".into(), json_f32(r.lambda)),
                    ("train_loss".into(), json_f32(r.metrics.train.loss)),
                    (
                        "train_data_loss".into(),
                        json_f32(r.metrics.train.data_loss)
                    ),
                    ("val_loss".into(), json_f32(v.map_or(f32::NAN, |v| v.loss))),
                    (
                        "val_data_loss".into(),
                        json_f32(v.map_or(f32::NAN, |v| v.data_loss))
                    ),
                    ("epochs".into(), r.epochs_done.to_string()),
                    ("stop".into(), json_string(r.stop.tag())),
                ])
            );
        }
    };
    let results = run_sweep(
        &spec,
        &name,
        model.as_ref(),
        &dataset,
        &overrides,
        param,
        &values,
        &on_done,
    )?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    write_text(&out.join("sweep.csv"), &to_csv(&results, classification))?;
    let metric = if classification { "accuracy" } else { "mse" };
    crate::plot::plot_sweep(
        &points(&results, classification),
        param.label(),
        metric,
        &out,
    )?;
    let table = to_table(&results, param, classification);
    let best_i = best(&results);
    let best_line = match best_i {
        Some(i) => {
            let r = &results[i];
            let v = r.metrics.validation.as_ref();
            format!(
                "best λ ({}) by validation data loss: {} (val data loss {}, val {metric} {})",
                param.label(),
                r.lambda,
                v.map_or_else(|| "-".into(), |v| crate::report::num(v.data_loss)),
                v.map_or_else(
                    || "-".into(),
                    |v| if classification {
                        format!("{:.2}%", 100.0 * v.metrics.accuracy())
                    } else {
                        crate::report::num(v.metrics.mse())
                    }
                ),
            )
        }
        None => "no run ended with a finite validation loss".into(),
    };
    write_text(&out.join("sweep.txt"), &format!("{table}\n{best_line}\n"))?;
    if a.json {
        println!(
            "{}",
            json_object(&[
                ("event".into(), json_string("summary")),
                ("param".into(), json_string(param.label())),
                (
                    "best_lambda".into(),
                    best_i.map_or("null".into(), |i| json_f32(results[i].lambda))
                ),
                ("out_dir".into(), json_string(&out.display().to_string())),
            ])
        );
    } else {
        if !a.quiet {
            println!("{table}");
        }
        println!("{best_line}");
        if !a.quiet {
            println!(
                "Wrote {}, {}, {} and {}.",
                out.join("sweep.csv").display(),
                out.join("sweep.txt").display(),
                out.join("sweep.png").display(),
                out.join("sweep.svg").display()
            );
        }
    }
    Ok(EXIT_OK)
}
