//! The `microfit` command line: `train`, `evaluate`, `predict`, `sweep`, `export`, `summary`.
//!
//! Exit codes: [`EXIT_OK`] (0), [`EXIT_ERROR`] (1: bad data, spec, model file, I/O),
//! [`EXIT_USAGE`] (2: bad command line, from clap), [`EXIT_DIVERGED`] (3: training stopped on a
//! NaN/infinite loss; what was trained up to the last good epoch is still written),
//! [`out::EXIT_BROKEN_PIPE`] (141: stdout was closed, e.g. by `| head -1`; nothing is printed).

use std::ffi::OsString;
use std::fmt;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use microfit_core::loss::Loss;
use microfit_core::optim::schedule::{ExponentialDecay, Schedule};

use crate::data::{ScalerKind, TaskKind};
use crate::formats::KerasModel;
use crate::model::{ModelSpec, VecParams};
use crate::modelfile::{ModelFile, OptimizerState};
use crate::spec::{
    DataConfig, EarlyStopping, ModelOverrides, OptimizerConfig, OptimizerKind, SpecFile,
    SplitConfig,
};
use crate::train_run::RunError;

pub mod evaluate;
pub mod export;
pub mod out;
pub mod progress;
pub mod run_dir;
pub mod summary;
pub mod sweep;
pub mod train;

/// Success.
pub const EXIT_OK: u8 = 0;
/// A runtime error: bad data, spec, model file, or I/O.
pub const EXIT_ERROR: u8 = 1;
/// A command-line usage error (clap's code).
pub const EXIT_USAGE: u8 = 2;
/// Training stopped because a loss or gradient became NaN or infinite (TerminateOnNaN).
pub const EXIT_DIVERGED: u8 = 3;

const ABOUT: &str =
    "Keras-style training with regularizers for tiny networks, and export to microcontrollers.";

const AFTER_HELP: &str = "\
Examples:
  microfit                                      train on the bundled iris set with the defaults
  microfit train --data wine --epochs 50 --l2 1e-3 --out runs/wine
  microfit train --data my.csv --label species --hidden 32,16 --early-stopping 10
  microfit train --data houses.csv --label price --task regression --drop id
  microfit train --spec spec.toml               model, optimizer and training from a TOML spec
  microfit train --keras-config config.json     a Keras Sequential config (get_config / .keras)
  microfit train --out runs/wine --resume       continue an interrupted run from its checkpoint
  microfit summary --spec spec.toml             Keras model.summary(): layers, params, memory
  microfit evaluate --model runs/wine/model.mfit --data wine
  microfit predict --model runs/wine/model.mfit --data new.csv --out preds.csv
  microfit sweep --data digits --l2 1e-5,1e-4,1e-3,1e-2 --epochs 30 --folds 5
  microfit export --model runs/wine/model.mfit --target firmware --out fw/ --with-data wine
  microfit export --model runs/wine/model.mfit --format keras --out wine.keras
  microfit predict --model model.keras --data x.csv --raw   Keras model.predict (any --model: .mfit or .keras)
  microfit train --model model.keras --data d.csv --no-shuffle --scale none --validation-split 0
                                                keras fit(shuffle=False) from the file's weights and optimizer state

Data: bundled datasets iris, digits, wine, breast_cancer, or a CSV path (`,` `;` or tab
separated; a header row is detected). The label is the last column unless --label names it;
--features / --drop choose the feature columns by name. The task is detected from the label
column (text or at most 100 distinct integers: classification; other numbers: regression) and
the first line of output says what was chosen and why; --task overrides it. Regression reports
MSE, RMSE, MAE and R². A model remembers its feature names: evaluate and predict pick the
columns by name from any CSV with a header.

Run folders: a run is written to <out>.partial/ and replaces <out> only when it has a model to
show; a failed run leaves <out> untouched and says where its partial files are.

Exit codes: 0 success, 1 error (bad data, spec or model file; the message names the file and
where), 2 bad command line, 3 training stopped on a NaN/infinite loss (TerminateOnNaN: the last
good epoch is kept and written), 141 stdout was closed (e.g. `| head -1`).";

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "microfit", version, about = ABOUT, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// What to do (default: `train` on iris with the defaults).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model; writes the model, checkpoints, history, plots and a report to --out.
    Train(train::TrainArgs),
    /// Evaluate a trained model on a dataset (Keras `evaluate`).
    Evaluate(evaluate::EvaluateArgs),
    /// Predict with a trained model (the stored scaler is applied).
    Predict(evaluate::PredictArgs),
    /// Train one model per regularization strength, in parallel, and plot the effect.
    Sweep(sweep::SweepArgs),
    /// Export a trained model for a microcontroller (binary blob + Rust source).
    Export(export::ExportArgs),
    /// Print a model's layers, output shapes, parameters and regularizers (Keras
    /// model.summary()) and the memory training it needs on a microcontroller.
    Summary(summary::SummaryArgs),
}

/// Tasks on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    /// Predict a class (accuracy, precision, recall, F1).
    Classification,
    /// Predict a number (MSE, RMSE, MAE, R²).
    Regression,
}

/// Losses on the command line (Keras names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossArg {
    /// Integer class labels, softmax outputs (the classification default).
    #[value(name = "sparse_categorical_crossentropy")]
    SparseCategoricalCrossentropy,
    /// One-hot class targets.
    #[value(name = "categorical_crossentropy")]
    CategoricalCrossentropy,
    /// Two classes, one sigmoid output (or two softmax outputs).
    #[value(name = "binary_crossentropy")]
    BinaryCrossentropy,
    /// Mean squared error (the regression default).
    #[value(name = "mse", alias = "mean_squared_error")]
    Mse,
    /// Mean absolute error.
    #[value(name = "mae", alias = "mean_absolute_error")]
    Mae,
}

impl LossArg {
    /// The Keras name.
    pub fn keras_name(self) -> &'static str {
        match self {
            LossArg::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
            LossArg::CategoricalCrossentropy => "categorical_crossentropy",
            LossArg::BinaryCrossentropy => "binary_crossentropy",
            LossArg::Mse => "mse",
            LossArg::Mae => "mae",
        }
    }
}

/// Optimizers on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    /// Adam.
    Adam,
    /// SGD (add momentum in a spec file).
    Sgd,
    /// AdamW (weight decay 0.004 unless the spec says otherwise).
    Adamw,
}

/// Scalings on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScaleArg {
    /// Zero mean, unit variance (fitted on the training split).
    Standardize,
    /// Onto [0, 1] (fitted on the training split).
    Minmax,
    /// No scaling.
    None,
}

/// Settings shared by `train` and `sweep`: data, spec and training options. Every flag given
/// overrides the spec file, which overrides the defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonArgs {
    /// Dataset: iris, digits, wine, breast_cancer, or a CSV file [default: iris]
    #[arg(long, value_name = "NAME|PATH.csv")]
    pub data: Option<String>,
    /// Label column of a CSV file: a header name, a 0-based index, or `last` [default: last]
    #[arg(long, value_name = "COL")]
    pub label: Option<String>,
    /// Feature columns, in order, by header name (or 0-based index) [default: every column but
    /// the label]
    #[arg(long, value_name = "COLS", value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// Columns that are not features, e.g. an ID column: --drop id,date
    #[arg(long, value_name = "COLS", value_delimiter = ',')]
    pub drop: Option<Vec<String>>,
    /// Classification or regression [default: detected from the label column, and explained]
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
    /// Loss (Keras name) [default: sparse_categorical_crossentropy, or mse for regression]
    #[arg(long, value_enum)]
    pub loss: Option<LossArg>,
    /// TOML training spec (model, optimizer, loss, training settings)
    #[arg(long, value_name = "FILE.toml")]
    pub spec: Option<PathBuf>,
    /// Keras Sequential config (JSON from get_config() or a .keras file's config.json)
    #[arg(long, value_name = "FILE.json")]
    pub keras_config: Option<PathBuf>,
    /// Number of epochs [default: 100]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: Option<u32>,
    /// Mini-batch size [default: 32]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,
    /// Learning rate [default: 0.01]
    #[arg(long, value_name = "X", value_parser = positive_f32, allow_hyphen_values = true)]
    pub lr: Option<f32>,
    /// Optimizer [default: adam]
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// Activity L1 factor on every hidden layer's output
    #[arg(long, value_name = "X", value_parser = non_negative_f32, allow_hyphen_values = true)]
    pub activity_l1: Option<f32>,
    /// Activity L2 factor on every hidden layer's output
    #[arg(long, value_name = "X", value_parser = non_negative_f32, allow_hyphen_values = true)]
    pub activity_l2: Option<f32>,
    /// Hidden layer sizes of the default model, e.g. 16,8 (`none` for no hidden layer) [default: 16]
    #[arg(long, value_name = "SIZES", value_parser = parse_hidden)]
    pub hidden: Option<Hidden>,
    /// Seed of the weights, the split and the shuffles [default: 42]
    #[arg(long, value_name = "N", value_parser = seed, allow_hyphen_values = true)]
    pub seed: Option<u64>,
    /// Fraction of the data held out for validation (stratified) [default: 0.2]
    #[arg(long, value_name = "F", value_parser = fraction)]
    pub validation_split: Option<f32>,
    /// Fraction of the data held out for a final test [default: 0]
    #[arg(long, value_name = "F", value_parser = fraction)]
    pub test_split: Option<f32>,
    /// Feature scaling, fitted on the training split [default: standardize]
    #[arg(long, value_enum)]
    pub scale: Option<ScaleArg>,
    /// Stop when val_loss has not improved for PATIENCE epochs, restoring the best weights
    #[arg(long, value_name = "PATIENCE")]
    pub early_stopping: Option<u32>,
    /// Visit the training samples in the order of the data every epoch (Keras
    /// fit(shuffle=False)); with --scale none --validation-split 0 the data is used as given
    #[arg(long)]
    pub no_shuffle: bool,
}

/// The kernel regularizer flags of `train` and `summary`.
#[derive(Debug, Clone, Default, Args)]
pub struct KernelArgs {
    /// Kernel L1 factor on every layer (replaces the spec's kernel regularizers)
    #[arg(long, value_name = "X", value_parser = non_negative_f32, allow_hyphen_values = true)]
    pub l1: Option<f32>,
    /// Kernel L2 factor on every layer (replaces the spec's kernel regularizers) [default model: 1e-3]
    #[arg(long, value_name = "X", value_parser = non_negative_f32, allow_hyphen_values = true)]
    pub l2: Option<f32>,
}

impl KernelArgs {
    /// Whether either is given.
    pub fn any(&self) -> bool {
        self.l1.is_some() || self.l2.is_some()
    }
}

/// A seed: a whole number in `0..=u64::MAX`.
fn seed(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| {
        format!(
            "{s:?} is not a seed: give a whole number from 0 to {}",
            u64::MAX
        )
    })
}

impl CommonArgs {
    /// Whether any setting (anything but `--epochs`) is given.
    pub fn any_setting(&self) -> bool {
        let CommonArgs {
            data,
            label,
            features,
            drop,
            task,
            loss,
            spec,
            keras_config,
            epochs: _,
            batch_size,
            lr,
            optimizer,
            activity_l1,
            activity_l2,
            hidden,
            seed,
            validation_split,
            test_split,
            scale,
            early_stopping,
            no_shuffle,
        } = self;
        data.is_some()
            || label.is_some()
            || features.is_some()
            || drop.is_some()
            || task.is_some()
            || loss.is_some()
            || spec.is_some()
            || keras_config.is_some()
            || batch_size.is_some()
            || lr.is_some()
            || optimizer.is_some()
            || activity_l1.is_some()
            || activity_l2.is_some()
            || hidden.is_some()
            || seed.is_some()
            || validation_split.is_some()
            || test_split.is_some()
            || scale.is_some()
            || early_stopping.is_some()
            || *no_shuffle
    }
}

/// Hidden sizes (a newtype so clap does not read a list of lists).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hidden(pub Vec<usize>);

fn parse_hidden(s: &str) -> Result<Hidden, String> {
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("none") {
        return Ok(Hidden(Vec::new()));
    }
    t.split(',')
        .map(|p| match p.trim().parse::<usize>() {
            Ok(0) | Err(_) => Err(format!(
                "{p:?} is not a layer size (a positive integer); example: 16,8"
            )),
            Ok(n) => Ok(n),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Hidden)
}

fn parse_f32(s: &str) -> Result<f32, String> {
    s.trim()
        .parse::<f32>()
        .map_err(|_| format!("{s:?} is not a number"))
        .and_then(|v| {
            if v.is_finite() {
                Ok(v)
            } else {
                Err(format!("{s} is not finite"))
            }
        })
}

/// A finite number `>= 0`.
pub fn non_negative_f32(s: &str) -> Result<f32, String> {
    let v = parse_f32(s)?;
    if v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be >= 0"))
    }
}

fn positive_f32(s: &str) -> Result<f32, String> {
    let v = parse_f32(s)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be > 0"))
    }
}

fn fraction(s: &str) -> Result<f32, String> {
    let v = parse_f32(s)?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} must be in [0, 1)"))
    }
}

/// A comma-separated list of numbers `>= 0` (`1e-5,1e-4`).
pub fn parse_list(s: &str) -> Result<Vec<f32>, String> {
    let v: Vec<f32> = s
        .split(',')
        .map(non_negative_f32)
        .collect::<Result<_, _>>()?;
    if v.is_empty() {
        return Err("give at least one value".into());
    }
    Ok(v)
}

/// An error with its exit code.
#[derive(Debug, Clone, PartialEq)]
pub struct CliError {
    /// Process exit code.
    pub code: u8,
    /// Message for stderr.
    pub message: String,
}

impl CliError {
    /// stdout was closed: exit quietly with [`out::EXIT_BROKEN_PIPE`].
    pub fn broken_pipe() -> Self {
        CliError {
            code: out::EXIT_BROKEN_PIPE,
            message: String::new(),
        }
    }

    /// A training error; a closed stdout is [`CliError::broken_pipe`].
    pub fn from_run(e: RunError) -> Self {
        match e {
            RunError::Output(io) => out::stdout_error(&io),
            e => CliError::new(e.to_string()),
        }
    }

    /// A runtime error (exit code 1).
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            code: EXIT_ERROR,
            message: message.into(),
        }
    }

    /// A usage error (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError::new(e.to_string())
    }
}

/// Parses `args` (the program name first) and runs the command; returns the exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // `--help | head -1`: clap's output error is ignored, and clap does not panic.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let result = match cli.command {
        None => train::run(&train::TrainArgs::default(), true),
        Some(Command::Train(a)) => train::run(&a, false),
        Some(Command::Evaluate(a)) => evaluate::run_evaluate(&a),
        Some(Command::Predict(a)) => evaluate::run_predict(&a),
        Some(Command::Sweep(a)) => sweep::run(&a),
        Some(Command::Export(a)) => export::run(&a),
        Some(Command::Summary(a)) => summary::run(&a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if !e.message.is_empty() {
                out::note(&format!("error: {}", e.message));
            }
            ExitCode::from(e.code)
        }
    }
}

/// True when stdout and stderr are terminals (progress bars, not lines).
pub fn interactive() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// A model a run takes from a file: `--keras-config` (a Keras config: the architecture and its
/// compile settings) or `train --model` (a `.keras` or `model.mfit` file: also its weights and
/// its optimizer's state).
#[derive(Debug, Clone)]
pub struct Imported {
    /// The file.
    pub path: PathBuf,
    /// The architecture.
    pub model: ModelSpec,
    /// The compiled loss, if any.
    pub loss: Option<Loss>,
    /// The compiled optimizer, if any.
    pub optimizer: Option<OptimizerConfig>,
    /// The scaling the model's inputs had (a `.keras` model takes them as they are).
    pub scaling: Option<ScalerKind>,
    /// The weights (named as [`ModelSpec::build`] names them), when the file has them.
    pub weights: Option<VecParams>,
    /// The optimizer's state (slots and iterations), when the file has one.
    pub state: Option<OptimizerState>,
}

impl Imported {
    /// Reads a Keras config (`--keras-config`).
    ///
    /// # Errors
    /// The file cannot be read or is not a supported Keras config (the error names the JSON
    /// path).
    pub fn keras_config(path: &Path) -> Result<Imported, CliError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
        let (model, compile) = crate::keras::spec_from_keras_config(&text)
            .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
        let (loss, optimizer) = compile.map_or((None, None), |c| (c.loss, c.optimizer));
        Ok(Imported {
            path: path.to_path_buf(),
            model,
            loss,
            optimizer,
            scaling: None,
            weights: None,
            state: None,
        })
    }

    /// Reads a trained model to start from (`train --model`): a `.keras` file (its weights,
    /// compile settings and optimizer state, inputs unscaled) or a `model.mfit` (its weights,
    /// loss, optimizer and state, and its scaling).
    ///
    /// # Errors
    /// The file cannot be read, or its optimizer or loss is not one microfit has.
    pub fn model_file(path: &Path) -> Result<Imported, CliError> {
        let is_keras = std::fs::read(path)
            .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?
            .starts_with(b"PK\x03\x04");
        if is_keras {
            let k = KerasModel::load(path)?;
            let model = k.build(0)?;
            // An optimizer or loss microfit does not have is an error here: training would
            // silently use another one.
            let state = k.optimizer(&model)?.map(|o| OptimizerState::capture(&o));
            Ok(Imported {
                path: path.to_path_buf(),
                model: k.spec.clone(),
                loss: k.loss,
                optimizer: k.optimizer.clone(),
                scaling: Some(ScalerKind::None),
                weights: Some(model.params),
                state,
            })
        } else {
            let file = ModelFile::load(path)?;
            let (cfg, model) = file.build_model(path)?;
            Ok(Imported {
                path: path.to_path_buf(),
                model: cfg.model,
                loss: Some(cfg.loss),
                optimizer: Some(cfg.optimizer),
                scaling: Some(cfg.scaling),
                weights: Some(model.params),
                state: Some(file.optimizer),
            })
        }
    }
}

/// The spec file from `--spec` (or an empty one), with what `imported` says that the spec file
/// does not (loss, optimizer, scaling), then every flag of `a` applied.
///
/// # Errors
/// The spec file cannot be read or parsed; `--hidden` with an imported model.
pub fn spec_with_flags(
    a: &CommonArgs,
    imported: Option<&Imported>,
) -> Result<(SpecFile, String), CliError> {
    let (mut spec, name) = match &a.spec {
        Some(p) => (SpecFile::load(p)?, p.display().to_string()),
        None => (SpecFile::default(), "command line".to_string()),
    };
    if let Some(m) = imported {
        if a.hidden.is_some() {
            return Err(CliError::usage(format!(
                "--hidden builds the default model; it cannot be combined with the model of {}",
                m.path.display()
            )));
        }
        spec.loss = spec.loss.or(m.loss);
        spec.scaling = spec.scaling.or(m.scaling);
        if spec.optimizer.is_none() {
            spec.optimizer.clone_from(&m.optimizer);
        }
    }
    if a.data.is_some()
        || a.label.is_some()
        || a.task.is_some()
        || a.features.is_some()
        || a.drop.is_some()
    {
        let d = spec.data.get_or_insert_with(DataConfig::default);
        if let Some(s) = &a.data {
            if d.source != *s {
                // A new data source does not inherit the spec's columns.
                d.label = None;
                d.features = None;
                d.drop = Vec::new();
            }
            d.source.clone_from(s);
        }
        if let Some(l) = &a.label {
            d.label = Some(l.clone());
        }
        if let Some(t) = a.task {
            d.task = match t {
                TaskArg::Classification => TaskKind::Classification,
                TaskArg::Regression => TaskKind::Regression,
            };
        }
        if let Some(f) = &a.features {
            d.features = Some(f.clone());
        }
        if let Some(f) = &a.drop {
            d.drop.clone_from(f);
        }
    }
    if let Some(l) = a.loss {
        spec.loss = Loss::from_keras_name(l.keras_name());
    }
    if let Some(e) = a.epochs {
        spec.epochs = Some(e);
    }
    if let Some(b) = a.batch_size {
        spec.batch_size = Some(b);
    }
    if let Some(s) = a.seed {
        spec.seed = Some(s);
    }
    if a.no_shuffle {
        spec.shuffle = Some(false);
    }
    if let Some(s) = a.scale {
        spec.scaling = Some(match s {
            ScaleArg::Standardize => ScalerKind::Standardize,
            ScaleArg::Minmax => ScalerKind::MinMax,
            ScaleArg::None => ScalerKind::None,
        });
    }
    if a.validation_split.is_some() || a.test_split.is_some() {
        let sp = spec.split.get_or_insert_with(SplitConfig::default);
        if let Some(v) = a.validation_split {
            sp.validation = v;
        }
        if let Some(t) = a.test_split {
            sp.test = t;
        }
    }
    if let Some(p) = a.early_stopping {
        spec.early_stopping
            .get_or_insert_with(|| EarlyStopping::new(p))
            .patience = p;
    }
    if a.optimizer.is_some() || a.lr.is_some() {
        let o = spec.optimizer_or_default();
        if let Some(k) = a.optimizer {
            let kind = match k {
                OptimizerArg::Adam => OptimizerKind::Adam,
                OptimizerArg::Sgd => OptimizerKind::Sgd,
                OptimizerArg::Adamw => OptimizerKind::AdamW,
            };
            if o.kind != kind {
                // Another optimizer: the spec's optimizer-specific settings no longer apply.
                let mut other = OptimizerConfig::new(kind, o.learning_rate);
                other.common.clip = o.common.clip;
                *o = other;
            }
        }
        if let Some(lr) = a.lr {
            o.learning_rate = match o.learning_rate {
                Schedule::Constant(_) => Schedule::Constant(lr),
                Schedule::Exponential(e) => Schedule::Exponential(ExponentialDecay {
                    initial_learning_rate: lr,
                    ..e
                }),
            };
        }
    }
    Ok((spec, name))
}

/// The model overrides of the flags (`--hidden`, activity factors) plus kernel factors.
pub fn overrides(a: &CommonArgs, l1: Option<f32>, l2: Option<f32>) -> ModelOverrides {
    ModelOverrides {
        hidden: a.hidden.clone().map(|h| h.0),
        l1,
        l2,
        activity_l1: a.activity_l1,
        activity_l2: a.activity_l2,
    }
}

/// Creates `dir` (and its parents).
///
/// # Errors
/// The I/O error, naming the directory.
pub fn ensure_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::new(format!(
            "{}: cannot create the directory: {e}",
            dir.display()
        ))
    })
}

/// Writes a text file atomically.
///
/// # Errors
/// The I/O error, naming the file.
pub fn write_text(path: &Path, text: &str) -> Result<(), CliError> {
    crate::modelfile::atomic_write(path, text.as_bytes())
        .map_err(|e| CliError::new(format!("{}: {e}", path.display())))
}
