//! The TOML training spec: the model, the optimizer, the loss and the training settings in one
//! file, with Keras' names.
//!
//! ```toml
//! epochs = 100
//! batch_size = 32
//! seed = 42
//! loss = "sparse_categorical_crossentropy"
//! scaling = "standardize"            # or "minmax", "none"
//!
//! [data]                             # optional; `--data` / `--label` override it
//! source = "iris"                    # a bundled dataset or a CSV path
//! label = "species"                  # header name, 0-based index, or "last"
//!
//! [split]
//! validation = 0.2
//! test = 0.0
//! stratify = true
//!
//! [early_stopping]                   # optional (Keras EarlyStopping on val_loss)
//! patience = 10
//! min_delta = 0.0
//! restore_best_weights = true
//!
//! [optimizer]
//! name = "adam"                      # "sgd", "adam" or "adamw"
//! learning_rate = 0.01
//! # momentum, nesterov, beta_1, beta_2, epsilon, weight_decay,
//! # clipnorm, clipvalue, global_clipnorm,
//! # schedule = { type = "exponential_decay", decay_steps = 100, decay_rate = 0.9, staircase = false }
//!
//! [[layers]]
//! type = "dense"
//! units = 16
//! activation = "relu"
//! kernel_regularizer = { l2 = 1e-3 }               # { l1 = 1e-4, l2 = 1e-3 }, { orthogonal = 0.01, mode = "rows" }
//!
//! [[layers]]
//! type = "dense"
//! units = 3
//! activation = "softmax"
//! ```
//!
//! Every table rejects unknown keys, and every value is checked with an error that names the
//! file and the field: `spec.toml: layers[1].kernel_regularizer.l2: must be finite and >= 0`.
//!
//! A [`SpecFile`] is what the file says (every field optional); [`SpecFile::resolve`] fills the
//! defaults, builds the model for the data's shape and checks everything, giving a
//! [`TrainConfig`]. [`TrainConfig::to_spec_file`] and [`TrainConfig::to_toml`] go back, so the
//! spec actually used can be written next to the results and read again to the same config.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use microfit_core::activation::Activation;
use microfit_core::init::Initializer;
use microfit_core::layer::dense::DenseConfig;
use microfit_core::loss::Loss;
use microfit_core::optim::clip::Clip;
use microfit_core::optim::schedule::{ExponentialDecay, Schedule};
use microfit_core::optim::{Adam, AdamConfig, AnyOptimizer, Common, Momentum, Sgd};
use microfit_core::params::Params;
use microfit_core::regularizer::{OrthoMode, Reg};
use serde::{Deserialize, Serialize};

use crate::data::{LabelColumn, ScalerKind, TaskKind};
use crate::model::{LayerSpec, ModelSpec};

/// Default number of epochs.
pub const DEFAULT_EPOCHS: u32 = 100;
/// Default mini-batch size (Keras' default; tiny sets simply get a last partial batch).
pub const DEFAULT_BATCH_SIZE: u32 = 32;
/// Default seed of the weights, the split and the shuffles.
pub const DEFAULT_SEED: u64 = 42;
/// Default learning rate (Adam).
pub const DEFAULT_LEARNING_RATE: f32 = 0.01;
/// Default kernel L2 factor of the generated model: "a sensible regularized default".
pub const DEFAULT_KERNEL_L2: f32 = 1e-3;
/// Default hidden layer sizes of the generated model.
pub const DEFAULT_HIDDEN: &[usize] = &[16];
/// Default validation fraction.
pub const DEFAULT_VALIDATION: f32 = 0.2;
/// Default bundled dataset.
pub const DEFAULT_DATA: &str = "iris";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// An invalid spec: the file, the field (`layers[1].kernel_regularizer.l2`) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    /// The file the spec came from (or a description such as `command line`).
    pub file: String,
    /// The field path; empty when the problem is the file as a whole (a TOML syntax error).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file, self.field, self.reason)
        }
    }
}

impl std::error::Error for SpecError {}

/// Builds [`SpecError`]s for one file.
#[derive(Debug, Clone)]
struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: impl Into<String>, reason: impl Into<String>) -> SpecError {
        SpecError {
            file: self.file.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A finite `f32` that is `>= 0`.
    fn non_negative(&self, field: &str, v: f64) -> Result<f32, SpecError> {
        let x = v as f32;
        if x.is_finite() && x >= 0.0 {
            Ok(x)
        } else {
            Err(self.err(field, format!("must be finite and >= 0 (got {v})")))
        }
    }

    /// A finite `f32` that is `> 0`.
    fn positive(&self, field: &str, v: f64) -> Result<f32, SpecError> {
        let x = v as f32;
        if x.is_finite() && x > 0.0 {
            Ok(x)
        } else {
            Err(self.err(field, format!("must be finite and > 0 (got {v})")))
        }
    }
}

/// Converts a core hyperparameter error into a spec error under `prefix`.
fn core_err(ctx: &Ctx<'_>, prefix: &str, e: microfit_core::Error) -> SpecError {
    match e {
        microfit_core::Error::InvalidHyperparameter { name, reason } => {
            ctx.err(format!("{prefix}.{name}"), reason)
        }
        other => ctx.err(prefix, other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// The file as written
// ---------------------------------------------------------------------------------------------

/// A training spec as written in TOML: every field optional (missing ones get defaults).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    /// Number of epochs (default [`DEFAULT_EPOCHS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u32>,
    /// Mini-batch size (default [`DEFAULT_BATCH_SIZE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// Seed of the weights, the split and the shuffles (default [`DEFAULT_SEED`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Keras loss name (`"sparse_categorical_crossentropy"`, `"mse"`, ...) or
    /// `{ name = "...", from_logits = true }`; default from the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossToml>,
    /// Feature scaling: `"standardize"` (default), `"minmax"` or `"none"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<String>,
    /// Input shape without the batch axis (default: `[number of features]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<Vec<usize>>,
    /// Where the data comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataToml>,
    /// Train/validation/test split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitToml>,
    /// Early stopping (none by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStoppingToml>,
    /// Keras `ModelCheckpoint(save_best_only=True)`: the model file keeps the epoch with the
    /// lowest `val_loss` (`loss` without a validation split), not the last one (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_best_only: Option<bool>,
    /// The optimizer (default Adam, learning rate [`DEFAULT_LEARNING_RATE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<OptimizerToml>,
    /// The layers, input to output. Missing: the default model (hidden Dense relu layers with
    /// kernel L2, then the output layer for the task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerToml>>,
}

/// A loss: its Keras name, or a table with `from_logits`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LossToml {
    /// `loss = "mse"`.
    Name(String),
    /// `loss = { name = "categorical_crossentropy", from_logits = true }`.
    Table {
        /// Keras name.
        name: String,
        /// Whether the model outputs logits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_logits: Option<bool>,
    },
}

/// `[data]`: the dataset.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataToml {
    /// A bundled dataset name (`iris`, `digits`, `wine`, `breast_cancer`) or a CSV path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The label column: a header name, a 0-based index, or `"last"` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `"auto"` (default), `"classification"` or `"regression"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The feature columns, in order (header names or 0-based indices); default: every column
    /// except the label and `drop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Columns that are not features (an ID column, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<Vec<String>>,
}

/// `[split]`: validation and test fractions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitToml {
    /// Validation fraction in `[0, 1)` (default 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<f64>,
    /// Test fraction in `[0, 1)` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<f64>,
    /// Keep the class proportions in every part (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stratify: Option<bool>,
}

/// `[early_stopping]`: Keras `EarlyStopping`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingToml {
    /// Epochs without improvement before stopping.
    pub patience: u32,
    /// `"val_loss"` (default when there is a validation set) or `"loss"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<String>,
    /// Smallest decrease that counts as an improvement (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_delta: Option<f64>,
    /// Go back to the best epoch's weights when stopping (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_best_weights: Option<bool>,
}

/// `[optimizer]`: Keras optimizer arguments.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerToml {
    /// `"adam"` (default), `"adamw"` or `"sgd"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Learning rate (default [`DEFAULT_LEARNING_RATE`]); the initial one with a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    /// SGD momentum in `[0, 1]` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    /// SGD Nesterov momentum (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nesterov: Option<bool>,
    /// Adam β1 (default 0.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta_1: Option<f64>,
    /// Adam β2 (default 0.999).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta_2: Option<f64>,
    /// Adam ε (default 1e-7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// Decoupled weight decay (AdamW default 0.004; none otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// Per-tensor gradient norm limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipnorm: Option<f64>,
    /// Element-wise gradient limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipvalue: Option<f64>,
    /// Global gradient norm limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_clipnorm: Option<f64>,
    /// Learning-rate schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleToml>,
}

/// A learning-rate schedule: `{ type = "exponential_decay", decay_steps, decay_rate, staircase }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleToml {
    /// `"exponential_decay"` (the only one so far; `staircase = true` is step decay).
    #[serde(rename = "type")]
    pub kind: String,
    /// Steps per decay period.
    pub decay_steps: u32,
    /// Factor per period.
    pub decay_rate: f64,
    /// Floor the exponent (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staircase: Option<bool>,
}

/// A regularizer: `{ l2 = 1e-3 }`, `{ l1 = 1e-4 }`, `{ l1 = 1e-4, l2 = 1e-3 }` or
/// `{ orthogonal = 0.01, mode = "rows" }`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegToml {
    /// L1 factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l1: Option<f64>,
    /// L2 factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2: Option<f64>,
    /// Orthogonal regularizer factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orthogonal: Option<f64>,
    /// `"rows"` (default) or `"columns"`, with `orthogonal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// An initializer: a Keras name (`"glorot_uniform"`, `"he_normal"`, `"zeros"`, ...) or
/// `{ constant = 0.1 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InitToml {
    /// A name.
    Name(String),
    /// A constant.
    Constant {
        /// The value.
        constant: f64,
    },
}

/// One `[[layers]]` entry. Fields that a layer type does not use are rejected.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerToml {
    /// Layer type: `"dense"` (and the other layer types of [`crate::model::LayerSpec`]).
    #[serde(rename = "type")]
    pub kind: String,
    /// Output units (Dense).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<usize>,
    /// Activation name (default `"linear"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<String>,
    /// Slope of `leaky_relu` for negative inputs (default 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_slope: Option<f64>,
    /// Whether the layer has a bias (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_bias: Option<bool>,
    /// Keras `kernel_regularizer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_regularizer: Option<RegToml>,
    /// Keras `bias_regularizer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_regularizer: Option<RegToml>,
    /// Keras `activity_regularizer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_regularizer: Option<RegToml>,
    /// Keras `kernel_initializer` (default `"glorot_uniform"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_initializer: Option<InitToml>,
    /// Keras `bias_initializer` (default `"zeros"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_initializer: Option<InitToml>,
    /// Conv filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<usize>,
    /// Conv kernel size (a number or a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_size: Option<toml::Value>,
    /// Conv/pool strides (a number or a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strides: Option<toml::Value>,
    /// `"valid"` or `"same"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<String>,
    /// Pooling window (a number or a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<toml::Value>,
    /// Conv dilation (a number or a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dilation_rate: Option<toml::Value>,
    /// Dropout rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Dropout seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// The resolved configuration
// ---------------------------------------------------------------------------------------------

/// Which optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Keras `SGD` (with momentum when `momentum > 0`).
    Sgd,
    /// Keras `Adam`.
    Adam,
    /// Keras `AdamW`.
    AdamW,
}

impl OptimizerKind {
    /// `"sgd"`, `"adam"` or `"adamw"`.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }

    /// Parses a name (case-insensitive).
    pub fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sgd" => Some(OptimizerKind::Sgd),
            "adam" => Some(OptimizerKind::Adam),
            "adamw" => Some(OptimizerKind::AdamW),
            _ => None,
        }
    }
}

/// A checked optimizer configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerConfig {
    /// Which optimizer.
    pub kind: OptimizerKind,
    /// Learning rate or schedule.
    pub learning_rate: Schedule,
    /// SGD momentum.
    pub momentum: f32,
    /// SGD Nesterov.
    pub nesterov: bool,
    /// Adam β1.
    pub beta_1: f32,
    /// Adam β2.
    pub beta_2: f32,
    /// Adam ε.
    pub epsilon: f32,
    /// Weight decay and clipping.
    pub common: Common,
}

impl OptimizerConfig {
    /// Adam with `learning_rate` and Keras' other defaults.
    pub fn adam(learning_rate: f32) -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Adam,
            learning_rate: Schedule::Constant(learning_rate),
            momentum: 0.0,
            nesterov: false,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            common: Common::default(),
        }
    }

    /// The optimizer for parameters shaped like `like`, with fresh state.
    ///
    /// # Errors
    /// A core [`microfit_core::Error::InvalidHyperparameter`] for a bad value.
    pub fn build<P: Params>(&self, like: &P) -> Result<AnyOptimizer<P>, microfit_core::Error> {
        Ok(match self.kind {
            OptimizerKind::Sgd if self.momentum > 0.0 || self.nesterov => {
                AnyOptimizer::Momentum(Momentum::with(
                    self.learning_rate,
                    self.momentum,
                    self.nesterov,
                    self.common,
                    like,
                )?)
            }
            OptimizerKind::Sgd => AnyOptimizer::Sgd(Sgd::with(self.learning_rate, self.common)?),
            OptimizerKind::Adam | OptimizerKind::AdamW => AnyOptimizer::Adam(Adam::with_config(
                AdamConfig {
                    learning_rate: self.learning_rate,
                    beta_1: self.beta_1,
                    beta_2: self.beta_2,
                    epsilon: self.epsilon,
                    common: self.common,
                },
                like,
            )?),
        })
    }

    /// The initial learning rate.
    pub fn initial_learning_rate(&self) -> f32 {
        match self.learning_rate {
            Schedule::Constant(lr) => lr,
            Schedule::Exponential(e) => e.initial_learning_rate,
        }
    }
}

/// Keras `EarlyStopping` settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EarlyStopping {
    /// Epochs without improvement before stopping.
    pub patience: u32,
    /// Monitor `val_loss` (true) or `loss` (false).
    pub monitor_val: bool,
    /// Smallest decrease that counts as an improvement.
    pub min_delta: f32,
    /// Restore the best weights when stopping.
    pub restore_best_weights: bool,
}

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct DataConfig {
    /// Bundled name or CSV path.
    pub source: String,
    /// Label column as written (`None` = last).
    pub label: Option<String>,
    /// Task kind.
    pub task: TaskKind,
    /// Feature columns in order (`None`: every column but the label and `drop`).
    pub features: Option<Vec<String>>,
    /// Columns left out.
    pub drop: Vec<String>,
}

impl DataConfig {
    /// The loader's label column.
    pub fn label_column(&self) -> LabelColumn {
        parse_label_column(self.label.as_deref())
    }

    /// The loader's options: label, task and feature columns.
    pub fn load_options(&self) -> crate::data::LoadOptions {
        crate::data::LoadOptions::default()
            .with_label(self.label_column())
            .with_task(self.task)
            .with_features(self.features.clone())
            .with_drop(self.drop.clone())
    }
}

/// `None`/`"last"` → last column, a number → 0-based index, anything else → header name.
pub fn parse_label_column(label: Option<&str>) -> LabelColumn {
    match label.map(str::trim) {
        None | Some("") | Some("last") => LabelColumn::Last,
        Some(s) => match s.parse::<usize>() {
            Ok(i) => LabelColumn::Index(i),
            Err(_) => LabelColumn::Name(s.to_string()),
        },
    }
}

/// Train/validation/test fractions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitConfig {
    /// Validation fraction.
    pub validation: f32,
    /// Test fraction.
    pub test: f32,
    /// Stratified by class.
    pub stratify: bool,
}

/// Everything a training run needs, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// The dataset.
    pub data: DataConfig,
    /// Number of epochs.
    pub epochs: u32,
    /// Mini-batch size.
    pub batch_size: u32,
    /// Seed of weights, split and shuffles.
    pub seed: u64,
    /// The loss.
    pub loss: Loss,
    /// Feature scaling.
    pub scaling: ScalerKind,
    /// The split.
    pub split: SplitConfig,
    /// Early stopping, if any.
    pub early_stopping: Option<EarlyStopping>,
    /// Keep the epoch with the lowest value of this history key as the model (Keras
    /// `ModelCheckpoint(save_best_only=True)`: `val_loss`, or `loss` without validation).
    pub save_best: Option<String>,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// The model.
    pub model: ModelSpec,
}

/// The shape of the data a spec is resolved against.
#[derive(Debug, Clone, PartialEq)]
pub struct DataShape {
    /// Features per sample.
    pub n_features: usize,
    /// Classes (classification) or `None` (regression).
    pub n_classes: Option<usize>,
}

/// Command-line changes applied to the model after it is built from the spec (see
/// [`apply_regularizer_overrides`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelOverrides {
    /// Hidden sizes of the default model (only without `layers` in the spec).
    pub hidden: Option<Vec<usize>>,
    /// Kernel L1 factor for every layer with weights.
    pub l1: Option<f32>,
    /// Kernel L2 factor for every layer with weights.
    pub l2: Option<f32>,
    /// Activity L1 factor for every hidden layer.
    pub activity_l1: Option<f32>,
    /// Activity L2 factor for every hidden layer.
    pub activity_l2: Option<f32>,
}

/// Sets the kernel regularizer of every layer with weights from `l1`/`l2` (both → `L1L2`, a
/// zero factor is kept as Keras would), and the activity regularizer of every hidden layer (all
/// but the last) from `activity_l1`/`activity_l2`. `None` leaves the spec's own regularizer.
pub fn apply_regularizer_overrides(model: &mut ModelSpec, o: &ModelOverrides) {
    let kernel = reg_from_factors(o.l1, o.l2);
    let activity = reg_from_factors(o.activity_l1, o.activity_l2);
    let n = model.layers.len();
    for (i, layer) in model.layers.iter_mut().enumerate() {
        if let Some(cfg) = layer.dense_config_mut() {
            if let Some(r) = kernel {
                cfg.kernel_regularizer = r;
            }
            if let Some(r) = activity
                && i + 1 < n
            {
                cfg.activity_regularizer = r;
            }
        }
    }
}

/// The regularizer for the given factors: `None` when neither is given (keep the spec's),
/// `Some(None)` when every given factor is 0 (no regularizer), `Some(Some(reg))` otherwise.
fn reg_from_factors(l1: Option<f32>, l2: Option<f32>) -> Option<Option<Reg>> {
    match (l1, l2) {
        (None, None) => None,
        (Some(a), None) => Some((a > 0.0).then_some(Reg::L1 { l1: a })),
        (None, Some(b)) => Some((b > 0.0).then_some(Reg::L2 { l2: b })),
        (Some(a), Some(b)) => Some(match (a > 0.0, b > 0.0) {
            (false, false) => None,
            (true, false) => Some(Reg::L1 { l1: a }),
            (false, true) => Some(Reg::L2 { l2: b }),
            (true, true) => Some(Reg::L1L2 { l1: a, l2: b }),
        }),
    }
}

/// The default model for a data shape: `Dense(h, relu)` for each hidden size, then
/// `Dense(n_classes, softmax)` (classification) or `Dense(1, linear)` (regression); every
/// kernel with `L2(kernel_l2)` when it is `> 0`.
pub fn default_model(shape: &DataShape, hidden: &[usize], kernel_l2: f32) -> ModelSpec {
    let reg = (kernel_l2 > 0.0).then_some(Reg::L2 { l2: kernel_l2 });
    let mut layers = Vec::new();
    for &h in hidden {
        let mut l = LayerSpec::dense(h, Activation::Relu);
        if let Some(r) = reg {
            l = l.with_kernel_regularizer(r);
        }
        layers.push(l);
    }
    let mut out = match shape.n_classes {
        Some(k) => LayerSpec::dense(k, Activation::Softmax),
        None => LayerSpec::dense(1, Activation::Linear),
    };
    if let Some(r) = reg {
        out = out.with_kernel_regularizer(r);
    }
    layers.push(out);
    ModelSpec {
        input_shape: vec![shape.n_features],
        layers,
    }
}

impl SpecFile {
    /// Parses TOML text; `file` names the source in errors.
    ///
    /// # Errors
    /// A [`SpecError`] with the TOML parser's message (line, column, the unknown or mistyped
    /// key).
    pub fn parse(file: &str, text: &str) -> Result<SpecFile, SpecError> {
        toml::from_str(text).map_err(|e| SpecError {
            file: file.to_string(),
            field: String::new(),
            reason: e.to_string().trim_end().to_string(),
        })
    }

    /// Reads and parses a spec file.
    ///
    /// # Errors
    /// A [`SpecError`] if the file cannot be read or parsed.
    pub fn load(path: &Path) -> Result<SpecFile, SpecError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            file: file.clone(),
            field: String::new(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::parse(&file, &text)
    }

    /// The model the spec lists, when it gives both its layers and its `input_shape` (so that
    /// no data is needed to know it); `None` otherwise.
    ///
    /// # Errors
    /// A [`SpecError`] naming a bad layer field.
    pub fn listed_model(&self, file: &str) -> Result<Option<ModelSpec>, SpecError> {
        let ctx = Ctx { file };
        let (Some(input_shape), Some(layers)) = (&self.input_shape, &self.layers) else {
            return Ok(None);
        };
        let layers = layers
            .iter()
            .enumerate()
            .map(|(i, l)| layer_from_toml(&ctx, i, l))
            .collect::<Result<_, _>>()?;
        Ok(Some(ModelSpec {
            input_shape: input_shape.clone(),
            layers,
        }))
    }

    /// The data settings (source defaults to [`DEFAULT_DATA`]).
    ///
    /// # Errors
    /// A [`SpecError`] for an unknown task name.
    pub fn data_config(&self, file: &str) -> Result<DataConfig, SpecError> {
        let ctx = Ctx { file };
        let d = self.data.clone().unwrap_or_default();
        let task = match d.task.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("auto") => TaskKind::Auto,
            Some("classification") => TaskKind::Classification,
            Some("regression") => TaskKind::Regression,
            Some(other) => {
                return Err(ctx.err(
                    "data.task",
                    format!("unknown task {other:?}; expected \"auto\", \"classification\" or \"regression\""),
                ));
            }
        };
        Ok(DataConfig {
            source: d.source.unwrap_or_else(|| DEFAULT_DATA.to_string()),
            label: d.label,
            task,
            features: d.features,
            drop: d.drop.unwrap_or_default(),
        })
    }

    /// Fills the defaults, builds the model for `shape` (from `layers`, or the default model
    /// with `overrides.hidden`), applies the regularizer overrides and checks everything.
    ///
    /// `model` replaces the spec's `layers` when given (a model imported from a Keras config).
    ///
    /// # Errors
    /// A [`SpecError`] naming the first bad field.
    pub fn resolve(
        &self,
        file: &str,
        shape: &DataShape,
        model: Option<ModelSpec>,
        overrides: &ModelOverrides,
    ) -> Result<TrainConfig, SpecError> {
        let ctx = Ctx { file };
        let data = self.data_config(file)?;
        let epochs = self.epochs.unwrap_or(DEFAULT_EPOCHS);
        if epochs == 0 {
            return Err(ctx.err("epochs", "must be >= 1"));
        }
        let batch_size = self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        if batch_size == 0 {
            return Err(ctx.err("batch_size", "must be >= 1"));
        }
        let seed = self.seed.unwrap_or(DEFAULT_SEED);
        let scaling = match self.scaling.as_deref() {
            None => ScalerKind::Standardize,
            Some(s) => parse_scaling(s).ok_or_else(|| {
                ctx.err(
                    "scaling",
                    format!(
                        "unknown scaling {s:?}; expected \"standardize\", \"minmax\" or \"none\""
                    ),
                )
            })?,
        };
        let split = self.split.clone().unwrap_or_default();
        let validation = match split.validation {
            None => DEFAULT_VALIDATION,
            Some(v) => fraction(&ctx, "split.validation", v)?,
        };
        let test = match split.test {
            None => 0.0,
            Some(v) => fraction(&ctx, "split.test", v)?,
        };
        if f64::from(validation) + f64::from(test) >= 1.0 {
            return Err(ctx.err(
                "split",
                "validation + test must be < 1, leaving samples to train on",
            ));
        }
        let split = SplitConfig {
            validation,
            test,
            stratify: split.stratify.unwrap_or(true),
        };
        let early_stopping = match &self.early_stopping {
            None => None,
            Some(es) => {
                let monitor_val = match es.monitor.as_deref() {
                    None | Some("val_loss") => true,
                    Some("loss") => false,
                    Some(other) => {
                        return Err(ctx.err(
                            "early_stopping.monitor",
                            format!("unknown monitor {other:?}; expected \"val_loss\" or \"loss\""),
                        ));
                    }
                };
                if monitor_val && validation == 0.0 {
                    return Err(ctx.err(
                        "early_stopping",
                        "early stopping watches val_loss, which needs a validation split: give \
                         --validation-split > 0 (split.validation in a spec), or watch the training \
                         loss with monitor = \"loss\" under [early_stopping] in a spec",
                    ));
                }
                Some(EarlyStopping {
                    patience: es.patience,
                    monitor_val,
                    min_delta: match es.min_delta {
                        None => 0.0,
                        Some(v) => ctx.non_negative("early_stopping.min_delta", v)?,
                    },
                    restore_best_weights: es.restore_best_weights.unwrap_or(true),
                })
            }
        };
        let save_best = self.save_best_only.unwrap_or(false).then(|| {
            if validation > 0.0 {
                "val_loss".to_string()
            } else {
                "loss".to_string()
            }
        });
        let optimizer = resolve_optimizer(&ctx, self.optimizer.as_ref())?;

        // The model.
        let mut model = match (model, &self.layers) {
            (Some(m), _) => m,
            (None, Some(layers)) => {
                if overrides.hidden.is_some() {
                    return Err(ctx.err(
                        "layers",
                        "--hidden builds the default model; it cannot be combined with a spec that lists its layers",
                    ));
                }
                let input_shape = self
                    .input_shape
                    .clone()
                    .unwrap_or_else(|| vec![shape.n_features]);
                let mut out = Vec::with_capacity(layers.len());
                for (i, l) in layers.iter().enumerate() {
                    out.push(layer_from_toml(&ctx, i, l)?);
                }
                ModelSpec {
                    input_shape,
                    layers: out,
                }
            }
            (None, None) => {
                let hidden = overrides
                    .hidden
                    .clone()
                    .unwrap_or_else(|| DEFAULT_HIDDEN.to_vec());
                if let Some(i) = hidden.iter().position(|&h| h == 0) {
                    return Err(ctx.err(format!("hidden[{i}]"), "a hidden layer needs >= 1 unit"));
                }
                let mut m = default_model(shape, &hidden, DEFAULT_KERNEL_L2);
                if let Some(s) = &self.input_shape {
                    m.input_shape = s.clone();
                }
                m
            }
        };
        apply_regularizer_overrides(&mut model, overrides);
        let in_len: usize = model.input_shape.iter().product();
        if in_len != shape.n_features {
            return Err(ctx.err(
                "input_shape",
                format!(
                    "{:?} holds {in_len} values, but the data has {} features",
                    model.input_shape, shape.n_features
                ),
            ));
        }
        let shapes = model
            .shapes()
            .map_err(|e| ctx.err(e.field.clone(), e.reason.clone()))?;
        let last = model.layers.len() - 1;
        let out_units: usize = shapes.last().map_or(0, |s| s.iter().product());
        let loss = resolve_loss(&ctx, self.loss.as_ref(), shape)?;
        match shape.n_classes {
            Some(k) => {
                let ok = out_units == k
                    || (out_units == 1
                        && k == 2
                        && matches!(loss, Loss::BinaryCrossentropy { .. }));
                if !ok {
                    return Err(ctx.err(
                        format!("layers[{last}].units"),
                        format!(
                            "the data has {k} classes, but the output layer has {out_units} units"
                        ),
                    ));
                }
            }
            None => {
                if out_units != 1 {
                    return Err(ctx.err(
                        format!("layers[{last}].units"),
                        format!("a regression target needs 1 output unit, the output layer has {out_units}"),
                    ));
                }
            }
        }
        Ok(TrainConfig {
            data,
            epochs,
            batch_size,
            seed,
            loss,
            scaling,
            split,
            early_stopping,
            save_best,
            optimizer,
            model,
        })
    }
}

/// Parses `"standardize"`, `"minmax"` (or `"min_max"`) and `"none"`.
pub fn parse_scaling(s: &str) -> Option<ScalerKind> {
    match s.to_ascii_lowercase().as_str() {
        "standardize" | "standard" => Some(ScalerKind::Standardize),
        "minmax" | "min_max" => Some(ScalerKind::MinMax),
        "none" => Some(ScalerKind::None),
        _ => None,
    }
}

/// The spec name of a scaling.
pub fn scaling_name(k: ScalerKind) -> &'static str {
    match k {
        ScalerKind::Standardize => "standardize",
        ScalerKind::MinMax => "minmax",
        ScalerKind::None => "none",
    }
}

fn fraction(ctx: &Ctx<'_>, field: &str, v: f64) -> Result<f32, SpecError> {
    let x = v as f32;
    if x.is_finite() && (0.0..1.0).contains(&x) {
        Ok(x)
    } else {
        Err(ctx.err(field, format!("must be in [0, 1) (got {v})")))
    }
}

/// The Keras loss names the spec and `--loss` accept (each also under its Keras class name).
pub const LOSS_NAMES: [&str; 5] = [
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "mean_squared_error (mse)",
    "mean_absolute_error (mae)",
];

fn unknown_loss(name: &str) -> String {
    format!(
        "unknown loss {name:?}; supported: {}",
        LOSS_NAMES.join(", ")
    )
}

fn resolve_loss(
    ctx: &Ctx<'_>,
    loss: Option<&LossToml>,
    shape: &DataShape,
) -> Result<Loss, SpecError> {
    let loss = match loss {
        None => {
            return Ok(match shape.n_classes {
                Some(_) => Loss::SparseCategoricalCrossentropy { from_logits: false },
                None => Loss::MeanSquaredError,
            });
        }
        Some(LossToml::Name(n)) => {
            Loss::from_keras_name(n).ok_or_else(|| ctx.err("loss", unknown_loss(n)))?
        }
        Some(LossToml::Table { name, from_logits }) => {
            let l = Loss::from_keras_name(name)
                .ok_or_else(|| ctx.err("loss.name", unknown_loss(name)))?;
            match (l, from_logits.unwrap_or(false)) {
                (l, false) => l,
                (Loss::BinaryCrossentropy { .. }, true) => Loss::BinaryCrossentropy {
                    from_logits: true,
                    label_smoothing: 0.0,
                },
                (Loss::CategoricalCrossentropy { .. }, true) => Loss::CategoricalCrossentropy {
                    from_logits: true,
                    label_smoothing: 0.0,
                },
                (Loss::SparseCategoricalCrossentropy { .. }, true) => {
                    Loss::SparseCategoricalCrossentropy { from_logits: true }
                }
                (_, true) => {
                    return Err(
                        ctx.err("loss.from_logits", "only cross-entropy losses take logits")
                    );
                }
            }
        }
    };
    match (shape.n_classes, loss.is_classification()) {
        (None, true) => Err(ctx.err(
            "loss",
            format!("{} needs class labels, but the target is a regression value", loss.keras_name()),
        )),
        (Some(_), false) => Err(ctx.err(
            "loss",
            format!(
                "{} is a regression loss, but the target holds classes (use sparse_categorical_crossentropy, \
                 or --task regression / `task = \"regression\"` under [data])",
                loss.keras_name()
            ),
        )),
        _ => Ok(loss),
    }
}

fn resolve_optimizer(
    ctx: &Ctx<'_>,
    o: Option<&OptimizerToml>,
) -> Result<OptimizerConfig, SpecError> {
    let o = o.cloned().unwrap_or_default();
    let kind = match o.name.as_deref() {
        None => OptimizerKind::Adam,
        Some(n) => OptimizerKind::from_name(n).ok_or_else(|| {
            ctx.err(
                "optimizer.name",
                format!("unknown optimizer {n:?}; expected \"sgd\", \"adam\" or \"adamw\""),
            )
        })?,
    };
    let lr = match o.learning_rate {
        None => DEFAULT_LEARNING_RATE,
        Some(v) => ctx.positive("optimizer.learning_rate", v)?,
    };
    let opt_f = |name: &str, v: Option<f64>| -> Result<Option<f32>, SpecError> {
        v.map(|v| ctx.positive(&format!("optimizer.{name}"), v))
            .transpose()
    };
    let weight_decay = match (o.weight_decay, kind) {
        (Some(v), _) => Some(ctx.non_negative("optimizer.weight_decay", v)?),
        (None, OptimizerKind::AdamW) => Some(0.004),
        (None, _) => None,
    };
    let common = Common {
        weight_decay,
        clip: Clip {
            clipvalue: opt_f("clipvalue", o.clipvalue)?,
            clipnorm: opt_f("clipnorm", o.clipnorm)?,
            global_clipnorm: opt_f("global_clipnorm", o.global_clipnorm)?,
        },
        ..Common::default()
    };
    let sgd_only = |name: &str, set: bool| -> Result<(), SpecError> {
        if set && kind != OptimizerKind::Sgd {
            Err(ctx.err(
                format!("optimizer.{name}"),
                format!("is an SGD setting, not used by {}", kind.name()),
            ))
        } else {
            Ok(())
        }
    };
    sgd_only("momentum", o.momentum.is_some())?;
    sgd_only("nesterov", o.nesterov.is_some())?;
    let adam_only = |name: &str, set: bool| -> Result<(), SpecError> {
        if set && kind == OptimizerKind::Sgd {
            Err(ctx.err(
                format!("optimizer.{name}"),
                "is an Adam setting, not used by sgd",
            ))
        } else {
            Ok(())
        }
    };
    adam_only("beta_1", o.beta_1.is_some())?;
    adam_only("beta_2", o.beta_2.is_some())?;
    adam_only("epsilon", o.epsilon.is_some())?;
    let learning_rate = match &o.schedule {
        None => Schedule::Constant(lr),
        Some(s) => {
            if s.kind != "exponential_decay" {
                return Err(ctx.err(
                    "optimizer.schedule.type",
                    format!(
                        "unknown schedule {:?}; expected \"exponential_decay\"",
                        s.kind
                    ),
                ));
            }
            let rate = ctx.positive("optimizer.schedule.decay_rate", s.decay_rate)?;
            Schedule::Exponential(
                ExponentialDecay::new(lr, s.decay_steps, rate, s.staircase.unwrap_or(false))
                    .map_err(|e| core_err(ctx, "optimizer.schedule", e))?,
            )
        }
    };
    let cfg = OptimizerConfig {
        kind,
        learning_rate,
        momentum: o.momentum.map_or(0.0, |v| v as f32),
        nesterov: o.nesterov.unwrap_or(false),
        beta_1: o.beta_1.map_or(0.9, |v| v as f32),
        beta_2: o.beta_2.map_or(0.999, |v| v as f32),
        epsilon: o.epsilon.map_or(1e-7, |v| v as f32),
        common,
    };
    // Let the core check ranges (β in [0, 1), momentum in [0, 1], clip exclusivity, ...).
    cfg.build(&()).map_err(|e| core_err(ctx, "optimizer", e))?;
    Ok(cfg)
}

// ---------------------------------------------------------------------------------------------
// Layers: TOML ↔ LayerSpec
// ---------------------------------------------------------------------------------------------

/// Parses an activation name (Keras identifiers).
fn activation_from(
    ctx: &Ctx<'_>,
    field: &str,
    name: &str,
    slope: Option<f64>,
) -> Result<Activation, SpecError> {
    let a = Activation::from_keras_name(name).ok_or_else(|| {
        ctx.err(
            field,
            format!("unknown activation {name:?}; expected linear, relu, sigmoid, tanh, softmax or leaky_relu"),
        )
    })?;
    match (a, slope) {
        (Activation::LeakyRelu(_), Some(s)) => {
            let s = s as f32;
            if !s.is_finite() {
                return Err(ctx.err(
                    field.replace("activation", "negative_slope"),
                    "must be finite",
                ));
            }
            Ok(Activation::LeakyRelu(s))
        }
        (_, Some(_)) => Err(ctx.err(
            field.replace("activation", "negative_slope"),
            "only used with activation = \"leaky_relu\"",
        )),
        (a, None) => Ok(a),
    }
}

/// Parses a regularizer table.
pub fn reg_from_toml(file: &str, field: &str, r: &RegToml) -> Result<Reg, SpecError> {
    let ctx = Ctx { file };
    let f = |k: &str| format!("{field}.{k}");
    if let Some(o) = r.orthogonal {
        if r.l1.is_some() || r.l2.is_some() {
            return Err(ctx.err(
                field,
                "orthogonal cannot be combined with l1/l2 in one regularizer",
            ));
        }
        let factor = ctx.non_negative(&f("orthogonal"), o)?;
        let mode = match r.mode.as_deref() {
            None | Some("rows") => OrthoMode::Rows,
            Some("columns") => OrthoMode::Columns,
            Some(m) => {
                return Err(ctx.err(
                    f("mode"),
                    format!("unknown mode {m:?}; expected \"rows\" or \"columns\""),
                ));
            }
        };
        return Ok(Reg::Orthogonal { factor, mode });
    }
    if r.mode.is_some() {
        return Err(ctx.err(f("mode"), "only used with orthogonal"));
    }
    let l1 = r.l1.map(|v| ctx.non_negative(&f("l1"), v)).transpose()?;
    let l2 = r.l2.map(|v| ctx.non_negative(&f("l2"), v)).transpose()?;
    match (l1, l2) {
        (Some(l1), None) => Ok(Reg::L1 { l1 }),
        (None, Some(l2)) => Ok(Reg::L2 { l2 }),
        (Some(l1), Some(l2)) => Ok(Reg::L1L2 { l1, l2 }),
        (None, None) => Err(ctx.err(
            field,
            "empty regularizer; give l1, l2 (or both), or orthogonal (e.g. { l2 = 1e-3 })",
        )),
    }
}

/// The TOML form of a regularizer.
pub fn reg_to_toml(r: &Reg) -> RegToml {
    match *r {
        Reg::L1 { l1 } => RegToml {
            l1: Some(pretty(l1)),
            ..RegToml::default()
        },
        Reg::L2 { l2 } => RegToml {
            l2: Some(pretty(l2)),
            ..RegToml::default()
        },
        Reg::L1L2 { l1, l2 } => RegToml {
            l1: Some(pretty(l1)),
            l2: Some(pretty(l2)),
            ..RegToml::default()
        },
        Reg::Orthogonal { factor, mode } => RegToml {
            orthogonal: Some(pretty(factor)),
            mode: Some(
                match mode {
                    OrthoMode::Rows => "rows",
                    OrthoMode::Columns => "columns",
                }
                .to_string(),
            ),
            ..RegToml::default()
        },
        // `Reg` is non-exhaustive; a new kind would need a TOML form.
        #[allow(unreachable_patterns)]
        _ => RegToml::default(),
    }
}

/// An `f32` as the `f64` with the same shortest decimal form (`1e-3f32` → `0.001`), so TOML
/// shows the value as written and reading it back gives the same `f32` bits.
pub fn pretty(x: f32) -> f64 {
    x.to_string().parse::<f64>().unwrap_or(f64::from(x))
}

fn init_from_toml(ctx: &Ctx<'_>, field: &str, i: &InitToml) -> Result<Initializer, SpecError> {
    match i {
        InitToml::Constant { constant } => {
            let c = *constant as f32;
            if !c.is_finite() {
                return Err(ctx.err(format!("{field}.constant"), "must be finite"));
            }
            Ok(Initializer::Constant(c))
        }
        InitToml::Name(n) => Ok(match n.to_ascii_lowercase().as_str() {
            "glorot_uniform" | "glorotuniform" => Initializer::GlorotUniform,
            "glorot_normal" | "glorotnormal" => Initializer::GlorotNormal,
            "he_uniform" | "heuniform" => Initializer::HeUniform,
            "he_normal" | "henormal" => Initializer::HeNormal,
            "zeros" => Initializer::Zeros,
            "ones" => Initializer::Ones,
            _ => {
                return Err(ctx.err(
                    field,
                    format!(
                        "unknown initializer {n:?}; expected glorot_uniform, glorot_normal, he_uniform, he_normal, \
                         zeros, ones or {{ constant = x }}"
                    ),
                ));
            }
        }),
    }
}

fn init_to_toml(i: &Initializer) -> InitToml {
    let name = match i {
        Initializer::GlorotUniform => "glorot_uniform",
        Initializer::GlorotNormal => "glorot_normal",
        Initializer::HeUniform => "he_uniform",
        Initializer::HeNormal => "he_normal",
        Initializer::Zeros => "zeros",
        Initializer::Ones => "ones",
        Initializer::Constant(c) => {
            return InitToml::Constant {
                constant: pretty(*c),
            };
        }
    };
    InitToml::Name(name.to_string())
}

/// The config of a weighted layer from its TOML fields.
fn config_from_toml(ctx: &Ctx<'_>, p: &str, l: &LayerToml) -> Result<DenseConfig<Reg>, SpecError> {
    let activation = match &l.activation {
        Some(a) => activation_from(ctx, &format!("{p}.activation"), a, l.negative_slope)?,
        None => {
            if l.negative_slope.is_some() {
                return Err(ctx.err(
                    format!("{p}.negative_slope"),
                    "only used with activation = \"leaky_relu\"",
                ));
            }
            Activation::Linear
        }
    };
    let mut c = DenseConfig::new(activation);
    c.use_bias = l.use_bias.unwrap_or(true);
    let reg = |name: &str, r: &Option<RegToml>| -> Result<Option<Reg>, SpecError> {
        r.as_ref()
            .map(|r| reg_from_toml(ctx.file, &format!("{p}.{name}"), r))
            .transpose()
    };
    c.kernel_regularizer = reg("kernel_regularizer", &l.kernel_regularizer)?;
    c.bias_regularizer = reg("bias_regularizer", &l.bias_regularizer)?;
    c.activity_regularizer = reg("activity_regularizer", &l.activity_regularizer)?;
    if let Some(i) = &l.kernel_initializer {
        c.kernel_initializer = init_from_toml(ctx, &format!("{p}.kernel_initializer"), i)?;
    }
    if let Some(i) = &l.bias_initializer {
        c.bias_initializer = init_from_toml(ctx, &format!("{p}.bias_initializer"), i)?;
    }
    Ok(c)
}

/// The TOML fields of a weighted layer's config (Keras defaults left out).
fn config_to_toml(c: &DenseConfig<Reg>, l: &mut LayerToml) {
    l.activation = Some(c.activation.keras_name().to_string());
    if let Activation::LeakyRelu(s) = c.activation {
        l.negative_slope = Some(pretty(s));
    }
    if !c.use_bias {
        l.use_bias = Some(false);
    }
    l.kernel_regularizer = c.kernel_regularizer.as_ref().map(reg_to_toml);
    l.bias_regularizer = c.bias_regularizer.as_ref().map(reg_to_toml);
    l.activity_regularizer = c.activity_regularizer.as_ref().map(reg_to_toml);
    if c.kernel_initializer != Initializer::GlorotUniform {
        l.kernel_initializer = Some(init_to_toml(&c.kernel_initializer));
    }
    if c.bias_initializer != Initializer::Zeros {
        l.bias_initializer = Some(init_to_toml(&c.bias_initializer));
    }
}

/// The keys of [`DenseConfig`] in a layer's serde form.
const CONFIG_KEYS: [&str; 7] = [
    "activation",
    "use_bias",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_initializer",
    "bias_initializer",
];

/// Converts `layers[i]` of the file into a [`LayerSpec`].
fn layer_from_toml(ctx: &Ctx<'_>, i: usize, l: &LayerToml) -> Result<LayerSpec, SpecError> {
    let p = format!("layers[{i}]");
    let kind = l.kind.to_ascii_lowercase();
    if kind == "dense" {
        let units = l
            .units
            .ok_or_else(|| ctx.err(format!("{p}.units"), "missing (a dense layer needs units)"))?;
        if units == 0 {
            return Err(ctx.err(format!("{p}.units"), "must be >= 1"));
        }
        for (name, set) in [
            ("filters", l.filters.is_some()),
            ("kernel_size", l.kernel_size.is_some()),
            ("strides", l.strides.is_some()),
            ("padding", l.padding.is_some()),
            ("pool_size", l.pool_size.is_some()),
            ("dilation_rate", l.dilation_rate.is_some()),
            ("rate", l.rate.is_some()),
            ("seed", l.seed.is_some()),
        ] {
            if set {
                return Err(ctx.err(format!("{p}.{name}"), "not used by a dense layer"));
            }
        }
        let config = config_from_toml(ctx, &p, l)?;
        return Ok(LayerSpec::Dense { units, config });
    }
    // Any other layer type goes through the model's serde form, so every `LayerSpec` variant
    // works without this module knowing it: the config fields are converted to their serde
    // form, the rest is passed as written, and the result is converted back to check that
    // nothing the file sets was ignored.
    // TOML values are the intermediate form (not `serde_json::Value`: with serde_json's
    // `arbitrary_precision`, which another crate of the workspace switches on, its numbers
    // would not convert).
    let mut map = toml::map::Map::new();
    map.insert("type".into(), toml::Value::String(kind.clone()));
    let config = config_from_toml(ctx, &p, l)?;
    if let Ok(toml::Value::Table(cfg)) = toml::Value::try_from(config) {
        map.extend(cfg);
    }
    // Sizes may be written as one number (`kernel_size = 3`) or a list (`[3, 3]`).
    let list = |v: &Option<toml::Value>| -> Option<toml::Value> {
        v.clone().map(|v| match v {
            toml::Value::Integer(_) => toml::Value::Array(vec![v]),
            v => v,
        })
    };
    let extra = [
        ("units", l.units.map(|u| toml::Value::Integer(u as i64))),
        ("filters", l.filters.map(|u| toml::Value::Integer(u as i64))),
        ("kernel_size", list(&l.kernel_size)),
        ("strides", list(&l.strides)),
        ("padding", l.padding.clone().map(toml::Value::String)),
        ("pool_size", list(&l.pool_size)),
        ("dilation_rate", list(&l.dilation_rate)),
        ("rate", l.rate.map(toml::Value::Float)),
        ("seed", l.seed.map(|s| toml::Value::Integer(s as i64))),
    ];
    for (k, v) in extra {
        if let Some(v) = v {
            map.insert(k.to_string(), v);
        }
    }
    let spec: LayerSpec = toml::Value::Table(map)
        .try_into()
        .map_err(|e: toml::de::Error| {
            let msg = e.message().to_string();
            if msg.contains("unknown variant") {
                ctx.err(
                    format!("{p}.type"),
                    format!("unknown layer type {:?} ({msg})", l.kind),
                )
            } else {
                ctx.err(p.clone(), msg)
            }
        })?;
    // Everything the file set must survive the round trip.
    let back = layer_to_toml(&spec);
    let lost = |name: &str, set: bool, kept: bool| -> Result<(), SpecError> {
        if set && !kept {
            Err(ctx.err(format!("{p}.{name}"), format!("not used by a {kind} layer")))
        } else {
            Ok(())
        }
    };
    let has_cfg = spec.dense_config().is_some();
    // An empty list is the default and is not written back.
    let given = |v: &Option<toml::Value>| match v {
        Some(toml::Value::Array(a)) => !a.is_empty(),
        v => v.is_some(),
    };
    lost("units", l.units.is_some(), back.units.is_some())?;
    lost("filters", l.filters.is_some(), back.filters.is_some())?;
    lost(
        "kernel_size",
        given(&l.kernel_size),
        back.kernel_size.is_some(),
    )?;
    lost("strides", given(&l.strides), back.strides.is_some())?;
    lost("padding", l.padding.is_some(), back.padding.is_some())?;
    lost("pool_size", given(&l.pool_size), back.pool_size.is_some())?;
    lost(
        "dilation_rate",
        given(&l.dilation_rate),
        back.dilation_rate.is_some(),
    )?;
    lost("rate", l.rate.is_some(), back.rate.is_some())?;
    lost("seed", l.seed.is_some(), back.seed.is_some())?;
    for (name, set) in [
        ("activation", l.activation.is_some()),
        ("negative_slope", l.negative_slope.is_some()),
        ("use_bias", l.use_bias.is_some()),
        ("kernel_regularizer", l.kernel_regularizer.is_some()),
        ("bias_regularizer", l.bias_regularizer.is_some()),
        ("activity_regularizer", l.activity_regularizer.is_some()),
        ("kernel_initializer", l.kernel_initializer.is_some()),
        ("bias_initializer", l.bias_initializer.is_some()),
    ] {
        lost(name, set, has_cfg)?;
    }
    Ok(spec)
}

/// The TOML form of a layer (Keras defaults left out).
pub fn layer_to_toml(spec: &LayerSpec) -> LayerToml {
    let mut l = LayerToml {
        kind: spec.kind().to_string(),
        ..LayerToml::default()
    };
    if let Some(c) = spec.dense_config() {
        config_to_toml(c, &mut l);
    }
    // The other fields through the serde form (works for every variant).
    if let Ok(toml::Value::Table(map)) = toml::Value::try_from(spec) {
        if let Some(t) = map.get("type").and_then(|t| t.as_str()) {
            l.kind = t.to_string();
        }
        for (k, v) in &map {
            let empty = v.as_array().is_some_and(Vec::is_empty);
            if k == "type" || CONFIG_KEYS.contains(&k.as_str()) || empty {
                continue;
            }
            let uint = |v: &toml::Value| v.as_integer().and_then(|i| u64::try_from(i).ok());
            match k.as_str() {
                "units" => l.units = uint(v).map(|u| u as usize),
                "filters" => l.filters = uint(v).map(|u| u as usize),
                "kernel_size" => l.kernel_size = Some(v.clone()),
                "strides" => l.strides = Some(v.clone()),
                "padding" => {
                    l.padding = v
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| Some(v.to_string()))
                }
                "pool_size" => l.pool_size = Some(v.clone()),
                "dilation_rate" => l.dilation_rate = Some(v.clone()),
                "rate" => l.rate = v.as_float().map(|r| pretty(r as f32)),
                "seed" => l.seed = uint(v),
                _ => {}
            }
        }
    }
    l
}

// ---------------------------------------------------------------------------------------------
// Back to TOML
// ---------------------------------------------------------------------------------------------

fn loss_to_toml(loss: &Loss) -> LossToml {
    let from_logits = match loss {
        Loss::BinaryCrossentropy { from_logits, .. }
        | Loss::CategoricalCrossentropy { from_logits, .. }
        | Loss::SparseCategoricalCrossentropy { from_logits } => *from_logits,
        _ => false,
    };
    if from_logits {
        LossToml::Table {
            name: loss.keras_name().to_string(),
            from_logits: Some(true),
        }
    } else {
        LossToml::Name(loss.keras_name().to_string())
    }
}

impl TrainConfig {
    /// The spec file that resolves to this configuration (every setting written out).
    pub fn to_spec_file(&self) -> SpecFile {
        let o = &self.optimizer;
        let (lr, schedule) = match o.learning_rate {
            Schedule::Constant(lr) => (lr, None),
            Schedule::Exponential(e) => (
                e.initial_learning_rate,
                Some(ScheduleToml {
                    kind: "exponential_decay".into(),
                    decay_steps: e.decay_steps,
                    decay_rate: pretty(e.decay_rate),
                    staircase: Some(e.staircase),
                }),
            ),
        };
        let sgd = o.kind == OptimizerKind::Sgd;
        let weight_decay = match (o.kind, o.common.weight_decay) {
            (OptimizerKind::AdamW, Some(0.004)) => None,
            (_, w) => w.map(pretty),
        };
        let optimizer = OptimizerToml {
            name: Some(o.kind.name().to_string()),
            learning_rate: Some(pretty(lr)),
            momentum: (sgd && o.momentum != 0.0).then(|| pretty(o.momentum)),
            nesterov: (sgd && o.nesterov).then_some(true),
            beta_1: (!sgd).then(|| pretty(o.beta_1)),
            beta_2: (!sgd).then(|| pretty(o.beta_2)),
            epsilon: (!sgd).then(|| pretty(o.epsilon)),
            weight_decay,
            clipnorm: o.common.clip.clipnorm.map(pretty),
            clipvalue: o.common.clip.clipvalue.map(pretty),
            global_clipnorm: o.common.clip.global_clipnorm.map(pretty),
            schedule,
        };
        SpecFile {
            epochs: Some(self.epochs),
            batch_size: Some(self.batch_size),
            seed: Some(self.seed),
            loss: Some(loss_to_toml(&self.loss)),
            scaling: Some(scaling_name(self.scaling).to_string()),
            input_shape: Some(self.model.input_shape.clone()),
            data: Some(DataToml {
                source: Some(self.data.source.clone()),
                label: self.data.label.clone(),
                task: match self.data.task {
                    TaskKind::Auto => None,
                    TaskKind::Classification => Some("classification".into()),
                    TaskKind::Regression => Some("regression".into()),
                },
                features: self.data.features.clone(),
                drop: (!self.data.drop.is_empty()).then(|| self.data.drop.clone()),
            }),
            split: Some(SplitToml {
                validation: Some(pretty(self.split.validation)),
                test: Some(pretty(self.split.test)),
                stratify: Some(self.split.stratify),
            }),
            early_stopping: self.early_stopping.map(|e| EarlyStoppingToml {
                patience: e.patience,
                monitor: Some(if e.monitor_val { "val_loss" } else { "loss" }.to_string()),
                min_delta: Some(pretty(e.min_delta)),
                restore_best_weights: Some(e.restore_best_weights),
            }),
            save_best_only: self.save_best.is_some().then_some(true),
            optimizer: Some(optimizer),
            layers: Some(self.model.layers.iter().map(layer_to_toml).collect()),
        }
    }

    /// The spec as TOML text (with a header comment), readable by [`SpecFile::parse`].
    pub fn to_toml(&self) -> String {
        let mut s = String::from(
            "# microfit training spec: the settings actually used by this run.\n\
             # Train again with: microfit train --spec spec.toml\n\n",
        );
        s.push_str(&spec_file_to_toml(&self.to_spec_file()));
        s
    }

    /// The data shape this config was resolved for (from the model's input and output).
    pub fn n_outputs(&self) -> usize {
        self.model
            .shapes()
            .ok()
            .and_then(|s| s.last().map(|s| s.iter().product()))
            .unwrap_or(0)
    }
}

/// Writes a spec file as friendly TOML: plain keys first, then `[tables]` whose nested tables
/// are inline (`kernel_regularizer = { l2 = 0.001 }`), then `[[layers]]`.
pub fn spec_file_to_toml(spec: &SpecFile) -> String {
    let value = match toml::Value::try_from(spec) {
        Ok(toml::Value::Table(t)) => t,
        _ => return String::new(),
    };
    let mut out = String::new();
    let mut tables: Vec<(&String, &toml::map::Map<String, toml::Value>)> = Vec::new();
    let mut arrays: Vec<(&String, &Vec<toml::Value>)> = Vec::new();
    // Keep a stable, readable order: the struct's field order for plain keys.
    let ordered: BTreeMap<usize, (&String, &toml::Value)> =
        value.iter().map(|(k, v)| (field_rank(k), (k, v))).collect();
    for (k, v) in ordered.values() {
        match v {
            toml::Value::Table(t) => tables.push((k, t)),
            toml::Value::Array(a) if a.iter().all(|x| x.is_table()) && !a.is_empty() => {
                arrays.push((k, a))
            }
            v => out.push_str(&format!("{} = {}\n", key(k), inline(v))),
        }
    }
    for (k, t) in tables {
        out.push_str(&format!("\n[{}]\n", key(k)));
        let mut fields: Vec<(&String, &toml::Value)> = t.iter().collect();
        fields.sort_by_key(|(k, _)| table_field_rank(k));
        for (k2, v2) in fields {
            out.push_str(&format!("{} = {}\n", key(k2), inline(v2)));
        }
    }
    for (k, a) in arrays {
        for item in a {
            out.push_str(&format!("\n[[{}]]\n", key(k)));
            if let toml::Value::Table(t) = item {
                let mut fields: Vec<(&String, &toml::Value)> = t.iter().collect();
                fields.sort_by_key(|(k, _)| layer_field_rank(k));
                for (k2, v2) in fields {
                    out.push_str(&format!("{} = {}\n", key(k2), inline(v2)));
                }
            }
        }
    }
    out
}

/// A value on one line; inline tables keep a readable key order (`{ l1 = .., l2 = .. }`,
/// `{ orthogonal = .., mode = .. }`, `{ type = .., decay_steps = .., ... }`).
fn inline(v: &toml::Value) -> String {
    const ORDER: [&str; 10] = [
        "name",
        "type",
        "l1",
        "l2",
        "orthogonal",
        "mode",
        "decay_steps",
        "decay_rate",
        "staircase",
        "constant",
    ];
    match v {
        toml::Value::Table(t) => {
            let mut fields: Vec<(&String, &toml::Value)> = t.iter().collect();
            fields.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
            let inner: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            format!("{{ {} }}", inner.join(", "))
        }
        toml::Value::Array(a) if a.iter().any(toml::Value::is_table) => {
            let inner: Vec<String> = a.iter().map(inline).collect();
            format!("[{}]", inner.join(", "))
        }
        v => v.to_string(),
    }
}

fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml::Value::String(k.to_string()).to_string()
    }
}

fn field_rank(k: &str) -> usize {
    const ORDER: [&str; 11] = [
        "epochs",
        "batch_size",
        "seed",
        "loss",
        "scaling",
        "input_shape",
        "data",
        "split",
        "early_stopping",
        "optimizer",
        "layers",
    ];
    ORDER.iter().position(|o| *o == k).unwrap_or(ORDER.len())
}

fn table_field_rank(k: &str) -> usize {
    const ORDER: [&str; 20] = [
        "source",
        "label",
        "task",
        "validation",
        "test",
        "stratify",
        "patience",
        "monitor",
        "min_delta",
        "restore_best_weights",
        "name",
        "learning_rate",
        "momentum",
        "nesterov",
        "beta_1",
        "beta_2",
        "epsilon",
        "weight_decay",
        "clipnorm",
        "clipvalue",
    ];
    ORDER.iter().position(|o| *o == k).unwrap_or(ORDER.len())
}

fn layer_field_rank(k: &str) -> usize {
    const ORDER: [&str; 18] = [
        "type",
        "units",
        "filters",
        "kernel_size",
        "pool_size",
        "strides",
        "padding",
        "dilation_rate",
        "rate",
        "seed",
        "activation",
        "negative_slope",
        "use_bias",
        "kernel_regularizer",
        "bias_regularizer",
        "activity_regularizer",
        "kernel_initializer",
        "bias_initializer",
    ];
    ORDER.iter().position(|o| *o == k).unwrap_or(ORDER.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iris() -> DataShape {
        DataShape {
            n_features: 4,
            n_classes: Some(3),
        }
    }

    #[test]
    fn friendly_spec_parses_and_round_trips() {
        let text = r#"
epochs = 7
batch_size = 10
loss = "sparse_categorical_crossentropy"
scaling = "minmax"
[split]
validation = 0.25
[early_stopping]
patience = 3
[optimizer]
name = "sgd"
learning_rate = 0.05
momentum = 0.9
nesterov = true
clipnorm = 1.0
schedule = { type = "exponential_decay", decay_steps = 10, decay_rate = 0.5, staircase = true }
[[layers]]
type = "dense"
units = 8
activation = "leaky_relu"
negative_slope = 0.1
kernel_regularizer = { l1 = 1e-4, l2 = 1e-3 }
bias_regularizer = { l1 = 0.01 }
activity_regularizer = { l2 = 1e-5 }
kernel_initializer = "he_normal"
[[layers]]
type = "dense"
units = 3
activation = "softmax"
kernel_regularizer = { orthogonal = 0.01, mode = "columns" }
bias_initializer = { constant = 0.5 }
"#;
        let f = SpecFile::parse("t.toml", text).unwrap();
        let c = f
            .resolve("t.toml", &iris(), None, &ModelOverrides::default())
            .unwrap();
        assert_eq!(c.epochs, 7);
        assert_eq!(c.scaling, ScalerKind::MinMax);
        assert_eq!(c.optimizer.kind, OptimizerKind::Sgd);
        let LayerSpec::Dense { config, .. } = &c.model.layers[0] else {
            panic!()
        };
        assert_eq!(
            config.kernel_regularizer,
            Some(Reg::L1L2 { l1: 1e-4, l2: 1e-3 })
        );
        assert_eq!(config.activation, Activation::LeakyRelu(0.1));
        let text2 = c.to_toml();
        let f2 = SpecFile::parse("t2.toml", &text2).unwrap();
        let c2 = f2
            .resolve("t2.toml", &iris(), None, &ModelOverrides::default())
            .unwrap();
        assert_eq!(c, c2, "{text2}");
        assert!(
            text2.contains("kernel_regularizer = { l1 = 0.0001, l2 = 0.001 }"),
            "{text2}"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let bad = |text: &str| {
            SpecFile::parse("spec.toml", text)
                .and_then(|f| f.resolve("spec.toml", &iris(), None, &ModelOverrides::default()))
                .unwrap_err()
                .to_string()
        };
        let e = bad(
            "[[layers]]\ntype = \"dense\"\nunits = 4\n[[layers]]\ntype = \"dense\"\nunits = 3\nkernel_regularizer = { l2 = -1.0 }\n",
        );
        assert!(
            e.starts_with("spec.toml: layers[1].kernel_regularizer.l2: must be finite and >= 0"),
            "{e}"
        );
        let e = bad("[[layers]]\ntype = \"dense\"\nunits = 4\nkernel_regularizer = { l3 = 1.0 }\n");
        assert!(e.contains("unknown field `l3`"), "{e}");
        let e = bad("epochz = 3\n");
        assert!(e.contains("unknown field `epochz`"), "{e}");
        let e = bad("[[layers]]\ntype = \"dense\"\nunits = 4\n");
        assert!(e.contains("layers[0].units: the data has 3 classes"), "{e}");
        let e = bad("[optimizer]\nname = \"adam\"\nbeta_1 = 1.5\n");
        assert!(e.contains("optimizer.beta_1"), "{e}");
        let e = bad("[[layers]]\ntype = \"dense\"\nunits = 3\nactivation = \"gelu\"\n");
        assert!(
            e.contains("layers[0].activation: unknown activation"),
            "{e}"
        );
        let e = bad("[[layers]]\ntype = \"transformer\"\nunits = 3\n");
        assert!(e.contains("layers[0].type"), "{e}");
    }

    #[test]
    fn overrides_set_kernel_and_activity_regularizers() {
        let f = SpecFile::default();
        let o = ModelOverrides {
            hidden: Some(vec![8, 4]),
            l1: Some(1e-4),
            l2: Some(0.0),
            activity_l2: Some(1e-3),
            ..ModelOverrides::default()
        };
        let c = f.resolve("cli", &iris(), None, &o).unwrap();
        assert_eq!(c.model.layers.len(), 3);
        for (i, l) in c.model.layers.iter().enumerate() {
            let cfg = l.dense_config().unwrap();
            assert_eq!(cfg.kernel_regularizer, Some(Reg::L1 { l1: 1e-4 }));
            let want = (i < 2).then_some(Reg::L2 { l2: 1e-3 });
            assert_eq!(cfg.activity_regularizer, want);
        }
    }
}
