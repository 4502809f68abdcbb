//! The training settings: [`TrainConfig`] (everything a run needs, checked) and its parts, with
//! their defaults. [`DataConfig`], [`SplitConfig`] and [`EarlyStopping`] serialize as the TOML
//! spec's `[data]`, `[split]` and `[early_stopping]` tables; the file as a whole, where every
//! setting is optional, is [`crate::spec::SpecFile`].

use microfit_core::loss::Loss;
use serde::{Deserialize, Serialize};

use super::model_spec::ModelSpec;
use super::optimizer::OptimizerConfig;
use crate::data::{LabelColumn, ScalerKind, TaskKind};

/// Default number of epochs.
pub const DEFAULT_EPOCHS: u32 = 100;
/// Default mini-batch size (Keras' default; tiny sets simply get a last partial batch).
pub const DEFAULT_BATCH_SIZE: u32 = 32;
/// Default seed of the weights, the split and the shuffles.
pub const DEFAULT_SEED: u64 = 42;
/// Default kernel L2 factor of the generated model: "a sensible regularized default".
pub const DEFAULT_KERNEL_L2: f32 = 1e-3;
/// Default hidden layer sizes of the generated model.
pub const DEFAULT_HIDDEN: &[usize] = &[16];
/// Default validation fraction.
pub const DEFAULT_VALIDATION: f32 = 0.2;
/// Default bundled dataset.
pub const DEFAULT_DATA: &str = "iris";

/// Keras `EarlyStopping` settings; serialized as `[early_stopping]`
/// (`patience`, `monitor = "val_loss" | "loss"`, `min_delta`, `restore_best_weights`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// Epochs without improvement before stopping.
    pub patience: u32,
    /// Monitor `val_loss` (true, the default) or `loss` (false).
    #[serde(rename = "monitor", with = "monitor", default = "yes")]
    pub monitor_val: bool,
    /// Smallest decrease that counts as an improvement (default 0).
    #[serde(default)]
    pub min_delta: f32,
    /// Restore the best weights when stopping (default true).
    #[serde(default = "yes")]
    pub restore_best_weights: bool,
}

impl EarlyStopping {
    /// Keras' defaults with `patience`: `val_loss`, no minimum delta, best weights restored.
    pub fn new(patience: u32) -> Self {
        EarlyStopping {
            patience,
            monitor_val: true,
            min_delta: 0.0,
            restore_best_weights: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// `monitor = "val_loss"` (true) or `"loss"` (false).
mod monitor {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(val: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if *val { "val_loss" } else { "loss" })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match String::deserialize(d)?.as_str() {
            "val_loss" => Ok(true),
            "loss" => Ok(false),
            other => Err(D::Error::custom(format!(
                "monitor: unknown monitor {other:?}; expected \"val_loss\" or \"loss\""
            ))),
        }
    }
}

/// Where the data comes from; serialized as `[data]` (`source`, `label`, `task`, `features`,
/// `drop`, every key optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// A bundled dataset name (`iris`, `digits`, `wine`, `breast_cancer`) or a CSV path
    /// (default [`DEFAULT_DATA`]).
    pub source: String,
    /// The label column as written: a header name, a 0-based index, or `"last"` (`None`: last).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `"auto"` (default), `"classification"` or `"regression"`.
    #[serde(skip_serializing_if = "is_auto")]
    pub task: TaskKind,
    /// The feature columns in order (header names or 0-based indices; `None`: every column
    /// but the label and `drop`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Columns that are not features (an ID column, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

fn is_auto(t: &TaskKind) -> bool {
    *t == TaskKind::Auto
}

impl Default for DataConfig {
    /// The bundled [`DEFAULT_DATA`], label last, task detected.
    fn default() -> Self {
        DataConfig {
            source: DEFAULT_DATA.to_string(),
            label: None,
            task: TaskKind::Auto,
            features: None,
            drop: Vec::new(),
        }
    }
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

/// Train/validation/test fractions; serialized as `[split]` (`validation` default 0.2, `test`
/// default 0, `stratify` default true).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SplitConfig {
    /// Validation fraction.
    pub validation: f32,
    /// Test fraction.
    pub test: f32,
    /// Stratified by class.
    pub stratify: bool,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            validation: DEFAULT_VALIDATION,
            test: 0.0,
            stratify: true,
        }
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

/// The spec's form of an optional scaling: `scaling = "standardize" | "minmax" | "none"`.
pub mod scaling {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{ScalerKind, parse_scaling, scaling_name};

    /// Writes the scaling's name.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(k: &Option<ScalerKind>, s: S) -> Result<S::Ok, S::Error> {
        match k {
            Some(k) => s.serialize_some(scaling_name(*k)),
            None => s.serialize_none(),
        }
    }

    /// Reads a scaling's name.
    ///
    /// # Errors
    /// An unknown name.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ScalerKind>, D::Error> {
        let s = String::deserialize(d)?;
        parse_scaling(&s).map(Some).ok_or_else(|| {
            D::Error::custom(format!(
                "unknown scaling {s:?}; expected \"standardize\", \"minmax\" or \"none\""
            ))
        })
    }
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
    /// Shuffle the training samples before every epoch (Keras `fit(shuffle=True)`, the
    /// default); without, every epoch visits them in the order of the data.
    pub shuffle: bool,
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

impl TrainConfig {
    /// Values per output of the model.
    pub fn n_outputs(&self) -> usize {
        self.model
            .shapes()
            .ok()
            .and_then(|s| s.last().map(|s| s.iter().product()))
            .unwrap_or(0)
    }
}
