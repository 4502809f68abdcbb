//! The TOML training spec: the model, the optimizer, the loss and the training settings in one
//! file, with Keras' names. It is the schema's ([`super::schema`]) own serde form, every
//! setting optional:
//!
//! ```toml
//! epochs = 100
//! batch_size = 32
//! seed = 42
//! shuffle = true                     # false: every epoch in the order of the data
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
//! Every table rejects unknown keys (a layer rejects the keys its type does not use), and every
//! value is checked with an error that names the file and the field:
//! `spec.toml: layers[1].kernel_regularizer.l2: must be finite and >= 0`.
//!
//! A [`SpecFile`] is what the file says; [`SpecFile::resolve`] fills the defaults, builds the
//! model for the data's shape and checks everything, giving a [`TrainConfig`].
//! [`TrainConfig::to_spec_file`] and [`TrainConfig::to_toml`] go back, so the spec actually used
//! can be written next to the results and read again to the same config.

use std::fmt;
use std::path::Path;

use microfit_core::activation::Activation;
use microfit_core::loss::Loss;
use microfit_core::regularizer::Reg;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

pub use super::schema::values::LOSS_NAMES;
use super::schema::values::{join_field, loss, relative_field};
pub use super::schema::{
    DEFAULT_BATCH_SIZE, DEFAULT_DATA, DEFAULT_EPOCHS, DEFAULT_HIDDEN, DEFAULT_KERNEL_L2,
    DEFAULT_LEARNING_RATE, DEFAULT_SEED, DEFAULT_VALIDATION, DataConfig, EarlyStopping,
    OptimizerConfig, OptimizerKind, SplitConfig, TrainConfig, parse_label_column, parse_scaling,
    scaling_name,
};
use super::schema::{LayerSpec, ModelSpec, training::scaling};
use crate::data::ScalerKind;

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

    /// A schema validation error under this file.
    fn schema(&self, e: super::schema::SpecError) -> SpecError {
        self.err(e.field, e.reason)
    }
}

// ---------------------------------------------------------------------------------------------
// The file as written
// ---------------------------------------------------------------------------------------------

/// A training spec as written in TOML: every setting optional (missing ones get defaults).
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
    /// Shuffle before every epoch (default true; Keras `fit(shuffle=...)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle: Option<bool>,
    /// Keras loss name (`"sparse_categorical_crossentropy"`, `"mse"`, ...) or
    /// `{ name = "...", from_logits = true }`; default from the task.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "loss::option::serialize",
        deserialize_with = "fields::loss"
    )]
    pub loss: Option<Loss>,
    /// Feature scaling: `"standardize"` (default), `"minmax"` or `"none"`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "scaling::serialize",
        deserialize_with = "fields::scaling"
    )]
    pub scaling: Option<ScalerKind>,
    /// Input shape without the batch axis (default: `[number of features]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<Vec<usize>>,
    /// Where the data comes from (`[data]`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "fields::data"
    )]
    pub data: Option<DataConfig>,
    /// Train/validation/test split (`[split]`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "fields::split"
    )]
    pub split: Option<SplitConfig>,
    /// Early stopping (`[early_stopping]`; none by default).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "fields::early_stopping"
    )]
    pub early_stopping: Option<EarlyStopping>,
    /// Keras `ModelCheckpoint(save_best_only=True)`: the model file keeps the epoch with the
    /// lowest `val_loss` (`loss` without a validation split), not the last one (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_best_only: Option<bool>,
    /// The optimizer (`[optimizer]`; default Adam, learning rate [`DEFAULT_LEARNING_RATE`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "fields::optimizer"
    )]
    pub optimizer: Option<OptimizerConfig>,
    /// The layers (`[[layers]]`), input to output. Missing: the default model (hidden Dense relu
    /// layers with kernel L2, then the output layer for the task).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "fields::layers"
    )]
    pub layers: Option<Vec<LayerSpec>>,
}

/// Reading the file's values through the schema's serde forms, with the error of a value
/// placed under its key (`loss: unknown loss "hinge"`, `optimizer.name: ...`,
/// `layers[0].units: not used by a flatten layer`). Serde's own errors (an unknown key, a
/// value of the wrong type) keep the place the TOML parser gives them (line and column).
mod fields {
    use super::*;

    /// Serde's own messages, which the parser places at the key or value itself.
    const SERDE: [&str; 7] = [
        "unknown field",
        "missing field",
        "duplicate field",
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
    ];

    fn under<'de, D: Deserializer<'de>, T>(
        key: &str,
        d: D,
        read: impl FnOnce(D) -> Result<T, D::Error>,
    ) -> Result<Option<T>, D::Error> {
        read(d).map(Some).map_err(|e| {
            let msg = e.to_string();
            if SERDE.iter().any(|s| msg.starts_with(s)) {
                e
            } else {
                D::Error::custom(join_field(key, &msg))
            }
        })
    }

    pub fn loss<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Loss>, D::Error> {
        under("loss", d, super::loss::deserialize)
    }

    pub fn scaling<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ScalerKind>, D::Error> {
        under("scaling", d, super::scaling::deserialize).map(Option::flatten)
    }

    pub fn data<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DataConfig>, D::Error> {
        under("data", d, DataConfig::deserialize)
    }

    pub fn split<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SplitConfig>, D::Error> {
        under("split", d, SplitConfig::deserialize)
    }

    pub fn early_stopping<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<EarlyStopping>, D::Error> {
        under("early_stopping", d, EarlyStopping::deserialize)
    }

    pub fn optimizer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OptimizerConfig>, D::Error> {
        under("optimizer", d, OptimizerConfig::deserialize)
    }

    pub fn layers<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<LayerSpec>>, D::Error> {
        let tables = Vec::<toml::Table>::deserialize(d)?;
        tables
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                layer_from_table(t)
                    .map_err(|e| D::Error::custom(join_field(&format!("layers[{i}]"), &e)))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

/// A `[[layers]]` table as a [`LayerSpec`] (the schema's serde form), with the checks serde
/// cannot make: the layer type names a kind (any case), and every key is one its kind uses.
/// Errors are `"<key>: <reason>"`.
fn layer_from_table(mut t: toml::Table) -> Result<LayerSpec, String> {
    let kind = match t.get("type") {
        Some(toml::Value::String(s)) => s.to_ascii_lowercase(),
        Some(other) => return Err(format!("type: expected a layer type name, found {other}")),
        None => return Err("type: missing (every layer has a type: dense, conv2d, ...)".into()),
    };
    t.insert("type".into(), toml::Value::String(kind.clone()));
    let read = |t: &toml::Table| LayerSpec::deserialize(toml::Value::Table(t.clone()));
    let spec = match read(&t) {
        Ok(s) => s,
        Err(e) => {
            let msg = e.message().to_string();
            if msg.contains("unknown variant") {
                return Err(format!("type: unknown layer type {kind:?} ({msg})"));
            }
            if let Some(key) = msg
                .strip_prefix("missing field `")
                .and_then(|r| r.split('`').next())
            {
                return Err(format!("{key}: missing (a {kind} layer needs {key})"));
            }
            if relative_field(&msg).is_some() {
                return Err(msg);
            }
            // The key whose removal changes the error is the one it is about.
            let culprit = t.keys().filter(|k| *k != "type").find(|k| {
                let mut without = t.clone();
                without.remove(*k);
                read(&without).map_or_else(|e2| e2.message() != msg, |_| true)
            });
            return Err(match culprit {
                Some(k) => join_field(k, &msg),
                None => msg,
            });
        }
    };
    // A key the layer's kind does not read is accepted by serde whatever its value; a key it
    // reads refuses a value of no kind (a table with a reserved key).
    let probe = toml::Value::Table(toml::Table::from_iter([(
        "\u{1}unused".to_string(),
        toml::Value::Boolean(true),
    )]));
    for k in t.keys().filter(|k| *k != "type") {
        let mut probed = t.clone();
        probed.insert(k.clone(), probe.clone());
        if read(&probed).is_ok() {
            return Err(format!("{k}: not used by a {kind} layer"));
        }
    }
    Ok(spec)
}

// ---------------------------------------------------------------------------------------------
// Resolving
// ---------------------------------------------------------------------------------------------

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
    /// key, the field of a bad value).
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
    /// None since the layers are checked when read; kept for callers that handle a
    /// [`SpecError`].
    pub fn listed_model(&self, _file: &str) -> Result<Option<ModelSpec>, SpecError> {
        let (Some(input_shape), Some(layers)) = (&self.input_shape, &self.layers) else {
            return Ok(None);
        };
        Ok(Some(ModelSpec {
            input_shape: input_shape.clone(),
            layers: layers.clone(),
        }))
    }

    /// The data settings (source defaults to [`DEFAULT_DATA`]).
    ///
    /// # Errors
    /// None since the table is checked when read; kept for callers that handle a
    /// [`SpecError`].
    pub fn data_config(&self, _file: &str) -> Result<DataConfig, SpecError> {
        Ok(self.data.clone().unwrap_or_default())
    }

    /// The optimizer the spec names, or the default.
    pub fn optimizer_or_default(&mut self) -> &mut OptimizerConfig {
        self.optimizer.get_or_insert_with(OptimizerConfig::default)
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
        let scaling = self.scaling.unwrap_or(ScalerKind::Standardize);
        let split = self.split.unwrap_or_default();
        fraction(&ctx, "split.validation", split.validation)?;
        fraction(&ctx, "split.test", split.test)?;
        if f64::from(split.validation) + f64::from(split.test) >= 1.0 {
            return Err(ctx.err(
                "split",
                "validation + test must be < 1, leaving samples to train on",
            ));
        }
        if let Some(es) = &self.early_stopping {
            if !(es.min_delta.is_finite() && es.min_delta >= 0.0) {
                return Err(ctx.err(
                    "early_stopping.min_delta",
                    format!("must be finite and >= 0 (got {})", es.min_delta),
                ));
            }
            if es.monitor_val && split.validation == 0.0 {
                return Err(ctx.err(
                    "early_stopping",
                    "early stopping watches val_loss, which needs a validation split: give \
                     --validation-split > 0 (split.validation in a spec), or watch the training \
                     loss with monitor = \"loss\" under [early_stopping] in a spec",
                ));
            }
        }
        let save_best = self.save_best_only.unwrap_or(false).then(|| {
            if split.validation > 0.0 {
                "val_loss".to_string()
            } else {
                "loss".to_string()
            }
        });
        let optimizer = self.optimizer.clone().unwrap_or_default();
        optimizer.validate().map_err(|e| {
            let e = super::schema::model_spec::core_field("optimizer", e);
            ctx.err(optimizer_field(&e.field), e.reason)
        })?;

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
                ModelSpec {
                    input_shape: self
                        .input_shape
                        .clone()
                        .unwrap_or_else(|| vec![shape.n_features]),
                    layers: layers.clone(),
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
        let shapes = model.shapes().map_err(|e| ctx.schema(e))?;
        let last = model.layers.len() - 1;
        let out_units: usize = shapes.last().map_or(0, |s| s.iter().product());
        let loss = resolve_loss(&ctx, self.loss, shape)?;
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
            shuffle: self.shuffle.unwrap_or(true),
            loss,
            scaling,
            split,
            early_stopping: self.early_stopping,
            save_best,
            optimizer,
            model,
        })
    }
}

/// The spec's key of an optimizer argument the core names (a schedule's own arguments sit
/// under `schedule`, its initial rate is `learning_rate`).
fn optimizer_field(field: &str) -> String {
    match field {
        "optimizer.initial_learning_rate" => "optimizer.learning_rate".into(),
        "optimizer.decay_steps" | "optimizer.decay_rate" => {
            field.replace("optimizer.", "optimizer.schedule.")
        }
        f => f.to_string(),
    }
}

fn fraction(ctx: &Ctx<'_>, field: &str, x: f32) -> Result<(), SpecError> {
    if x.is_finite() && (0.0..1.0).contains(&x) {
        Ok(())
    } else {
        Err(ctx.err(field, format!("must be in [0, 1) (got {x})")))
    }
}

/// The spec's loss, or the task's default; checked against the task.
fn resolve_loss(ctx: &Ctx<'_>, loss: Option<Loss>, shape: &DataShape) -> Result<Loss, SpecError> {
    let Some(loss) = loss else {
        return Ok(match shape.n_classes {
            Some(_) => Loss::SparseCategoricalCrossentropy { from_logits: false },
            None => Loss::MeanSquaredError,
        });
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

// ---------------------------------------------------------------------------------------------
// Back to TOML
// ---------------------------------------------------------------------------------------------

impl TrainConfig {
    /// The spec file that resolves to this configuration (every setting written out).
    pub fn to_spec_file(&self) -> SpecFile {
        SpecFile {
            epochs: Some(self.epochs),
            batch_size: Some(self.batch_size),
            seed: Some(self.seed),
            shuffle: (!self.shuffle).then_some(false),
            loss: Some(self.loss),
            scaling: Some(self.scaling),
            input_shape: Some(self.model.input_shape.clone()),
            data: Some(self.data.clone()),
            split: Some(self.split),
            early_stopping: self.early_stopping,
            save_best_only: self.save_best.is_some().then_some(true),
            optimizer: Some(self.optimizer.clone()),
            layers: Some(self.model.layers.clone()),
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
}

/// Writes a spec file as friendly TOML: plain keys first, then `[tables]` whose nested tables
/// are inline (`kernel_regularizer = { l2 = 0.001 }`), then `[[layers]]`; keys in the order of
/// the schema's fields, every number as the shortest decimal of its `f32` (`0.001`, read back
/// to the same bits).
pub fn spec_file_to_toml(spec: &SpecFile) -> String {
    let value = match toml::Value::try_from(spec) {
        Ok(toml::Value::Table(t)) => t,
        _ => return String::new(),
    };
    let mut out = String::new();
    let mut tables: Vec<(&String, &toml::Table)> = Vec::new();
    let mut arrays: Vec<(&String, &Vec<toml::Value>)> = Vec::new();
    for (k, v) in &value {
        match v {
            toml::Value::Table(t) => tables.push((k, t)),
            toml::Value::Array(a) if a.iter().all(toml::Value::is_table) && !a.is_empty() => {
                arrays.push((k, a))
            }
            v => out.push_str(&format!("{} = {}\n", key(k), inline(v))),
        }
    }
    let fields = |t: &toml::Table, out: &mut String| {
        for (k, v) in t {
            out.push_str(&format!("{} = {}\n", key(k), inline(v)));
        }
    };
    for (k, t) in tables {
        out.push_str(&format!("\n[{}]\n", key(k)));
        fields(t, &mut out);
    }
    for (k, a) in arrays {
        for item in a {
            out.push_str(&format!("\n[[{}]]\n", key(k)));
            if let toml::Value::Table(t) = item {
                fields(t, &mut out);
            }
        }
    }
    out
}

/// A value on one line (inline tables and arrays); a float as the shortest decimal of the
/// `f32` it widens (every number of the schema is an `f32`).
fn inline(v: &toml::Value) -> String {
    match v {
        toml::Value::Table(t) => {
            let inner: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            format!("{{ {} }}", inner.join(", "))
        }
        toml::Value::Array(a) => {
            let inner: Vec<String> = a.iter().map(inline).collect();
            format!("[{}]", inner.join(", "))
        }
        toml::Value::Float(x) => toml::Value::Float(pretty(*x as f32)).to_string(),
        v => v.to_string(),
    }
}

/// An `f32` as the `f64` with the same shortest decimal form (`1e-3f32` → `0.001`), so TOML
/// shows the value as written and reading it back gives the same `f32` bits.
pub fn pretty(x: f32) -> f64 {
    x.to_string().parse::<f64>().unwrap_or(f64::from(x))
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

#[cfg(test)]
mod tests {
    use super::*;
    use microfit_core::init::Initializer;

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
        assert_eq!(config.kernel_initializer, Initializer::HeNormal);
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
        assert!(
            text2.contains("\n[[layers]]\ntype = \"dense\"\nunits = 8\nactivation = \"leaky_relu\"\nnegative_slope = 0.1\n"),
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
        let e = bad("[optimizer]\nname = \"adam\"\nmomentum = 0.5\n");
        assert!(e.contains("optimizer.momentum: is an SGD setting"), "{e}");
        let e = bad("[optimizer]\nname = \"rmsprop\"\n");
        assert!(e.contains("optimizer.name: unknown optimizer"), "{e}");
        let e = bad("[[layers]]\ntype = \"dense\"\nunits = 3\nactivation = \"gelu\"\n");
        assert!(
            e.contains("layers[0].activation: unknown activation"),
            "{e}"
        );
        let e = bad("[[layers]]\ntype = \"transformer\"\nunits = 3\n");
        assert!(e.contains("layers[0].type"), "{e}");
        let e = bad("[[layers]]\ntype = \"dense\"\nunits = \"three\"\n");
        assert!(e.contains("layers[0].units: invalid type"), "{e}");
        let e = bad("[[layers]]\ntype = \"dense\"\nactivation = \"relu\"\n");
        assert!(e.contains("layers[0].units: missing"), "{e}");
        let e = bad("[[layers]]\ntype = \"flatten\"\nunits = 3\n");
        assert!(
            e.contains("layers[0].units: not used by a flatten layer"),
            "{e}"
        );
        let e = bad("[[layers]]\ntype = \"dense\"\nunits = 3\nnegative_slope = 0.1\n");
        assert!(
            e.contains("layers[0].negative_slope: only used with"),
            "{e}"
        );
        let e = bad(
            "[[layers]]\ntype = \"dense\"\nunits = 3\nkernel_regularizer = { orthogonal = 0.1, mode = \"diag\" }\n",
        );
        assert!(
            e.contains("layers[0].kernel_regularizer.mode: unknown mode"),
            "{e}"
        );
        let e = bad("loss = \"hinge\"\n");
        assert!(
            e.contains("loss: unknown loss \"hinge\"; supported:"),
            "{e}"
        );
        let e = bad("scaling = \"log\"\n");
        assert!(e.contains("scaling: unknown scaling"), "{e}");
        let e = bad("[early_stopping]\npatience = 2\nmonitor = \"acc\"\n");
        assert!(e.contains("early_stopping.monitor: unknown monitor"), "{e}");
        let e = bad("[split]\nvalidation = 1.5\n");
        assert!(e.contains("split.validation: must be in [0, 1)"), "{e}");
    }

    #[test]
    fn a_layer_type_in_any_case_and_sizes_as_one_number() {
        let f = SpecFile::parse(
            "s",
            "input_shape = [6, 6, 1]\n[[layers]]\ntype = \"Conv2D\"\nfilters = 2\nkernel_size = 3\nstrides = [2, 2]\n\
             [[layers]]\ntype = \"max_pooling\"\npool_size = 2\n[[layers]]\ntype = \"flatten\"\n\
             [[layers]]\ntype = \"dense\"\nunits = 3\nactivation = \"softmax\"\n",
        )
        .unwrap();
        let layers = f.layers.unwrap();
        assert!(matches!(
            &layers[0],
            LayerSpec::Conv2D { filters: 2, kernel_size, strides, .. } if kernel_size == &[3] && strides == &[2, 2]
        ));
        assert!(
            matches!(&layers[1], LayerSpec::MaxPooling { pool_size, strides: None, .. } if pool_size == &[2])
        );
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
