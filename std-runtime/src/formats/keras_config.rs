//! Keras interop: regularizers, `Sequential` model configs, optimizers and compile configs,
//! read and written in the JSON forms Keras 3 uses (`get_config()`, `serialize`, a `.keras`
//! file's `config.json`).
//!
//! | Keras | here |
//! |---|---|
//! | `keras.regularizers.get(identifier)` | [`regularizer_from_keras`] |
//! | `keras.regularizers.serialize(reg)` | [`regularizer_to_keras`] |
//! | `Sequential.get_config()` / `config.json` | [`spec_from_keras_config`], [`spec_to_keras_config`] |
//! | `optimizer.get_config()` / `serialize` | [`optimizer_from_keras`], [`optimizer_to_keras`] |
//! | `model.get_compile_config()` | [`KerasCompile`] |
//!
//! Every conversion goes to and from the schema ([`crate::formats::schema`]): a Keras model is
//! a [`ModelSpec`], an optimizer an [`OptimizerConfig`], a loss the core's [`Loss`].
//!
//! Keras 3 semantics are followed exactly where they are observable (the golden file
//! `regularizer_config_k3.json` records them):
//! * string identifiers are class names or their snake case (`"l1"`, `"L1"`, `"l1l2"`,
//!   `"L1L2"`, `"orthogonal_regularizer"`, ...), instantiated with no arguments: `L1()` and
//!   `L2()` have factor 0.01, `L1L2()` has 0 and 0, `OrthogonalRegularizer()` 0.01 and `"rows"`.
//!   **`"l1_l2"` is an error in Keras 3** (it was a function in tf-keras);
//! * negative, NaN and infinite factors are rejected (Keras 3 `validate_float_arg`); unknown
//!   configuration keys are rejected (Keras would fail on the unexpected keyword argument);
//! * `serialize` writes `L1` and `OrthogonalRegularizer` factors widened from float32
//!   (`0.009999999776482582`, they are stored as tensors) and `L2`/`L1L2` factors as the
//!   decimal that was given (`0.01`).
//!
//! Every error names the JSON path of the offending value:
//!
//! ```
//! use microfit::keras::spec_from_keras_config;
//! let json = r#"{"layers": [
//!   {"class_name": "InputLayer", "config": {"batch_shape": [null, 4]}},
//!   {"class_name": "Dense", "config": {"units": 3,
//!      "kernel_regularizer": {"class_name": "L2", "config": {"l2": -0.5}}}}]}"#;
//! let err = spec_from_keras_config(json).unwrap_err();
//! assert_eq!(err.to_string(), "layers[1].config.kernel_regularizer.config.l2: must be >= 0, got -0.5");
//! ```

use std::fmt;

use microfit_core::activation::Activation;
use microfit_core::constraint::Constraint;
use microfit_core::error::Error as CoreError;
use microfit_core::init::Initializer;
use microfit_core::kernels::conv::Padding;
use microfit_core::layer::dense::DenseConfig;
use microfit_core::loss::Loss;
use microfit_core::optim::schedule::{ExponentialDecay, Schedule};
use microfit_core::optim::{Clip, EmaConfig, ExcludeFromWeightDecay};
use microfit_core::regularizer::{OrthoMode, Reg};
use serde::Deserialize as _;
use serde_json::{Map, Value, json};

use super::schema::values::{ConstraintForm, relative_field};
use super::schema::{LayerSpec, ModelSpec, OptimizerConfig, OptimizerKind};

/// A Keras configuration that microfit cannot read (or a model it cannot write).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum KerasError {
    /// The text is not valid JSON.
    Json {
        /// The parser's message (with line and column).
        reason: String,
    },
    /// A value is missing, has the wrong type or is out of range.
    Invalid {
        /// JSON path of the value (`layers[1].config.kernel_regularizer.config.l2`).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A layer class that microfit does not support (yet).
    Unsupported {
        /// JSON path of the layer (`layers[3]`).
        layer: String,
        /// The layer's name (`config.name`, e.g. `"bn"`), when the config gives one.
        name: Option<String>,
        /// Its Keras class name (`"Conv2D"`, `"LSTM"`, ...).
        class_name: String,
    },
}

impl fmt::Display for KerasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KerasError::Json { reason } => write!(f, "invalid JSON: {reason}"),
            KerasError::Invalid { path, reason } => {
                let p = if path.is_empty() { "<root>" } else { path };
                write!(f, "{p}: {reason}")
            }
            KerasError::Unsupported {
                layer,
                name: Some(name),
                class_name,
            } => write!(
                f,
                "{name}: {class_name} is not supported ({layer}; microfit supports {})",
                SUPPORTED_LAYERS.join(", ")
            ),
            KerasError::Unsupported {
                layer,
                name: None,
                class_name,
            } => write!(
                f,
                "{layer}: {class_name} is not supported (microfit supports {})",
                SUPPORTED_LAYERS.join(", ")
            ),
        }
    }
}

impl std::error::Error for KerasError {}

/// Keras layer classes [`spec_from_keras_config`] reads.
pub const SUPPORTED_LAYERS: &[&str] = &[
    "InputLayer",
    "Dense",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "Flatten",
    "Dropout",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "ActivityRegularization",
];

/// A JSON path under construction (`layers[1].config.units`).
#[derive(Debug, Clone, Default)]
struct Path(String);

impl Path {
    fn key(&self, k: &str) -> Path {
        if self.0.is_empty() {
            Path(k.to_string())
        } else {
            Path(format!("{}.{k}", self.0))
        }
    }
    fn idx(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }
    fn err(&self, reason: impl Into<String>) -> KerasError {
        KerasError::Invalid {
            path: self.0.clone(),
            reason: reason.into(),
        }
    }
}

/// A short rendering of a JSON value for error messages.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let t: String = s.chars().take(57).collect();
        format!("{t}...")
    } else {
        s
    }
}

fn as_obj<'a>(v: &'a Value, p: &Path) -> Result<&'a Map<String, Value>, KerasError> {
    v.as_object()
        .ok_or_else(|| p.err(format!("expected an object, found {}", show(v))))
}

fn as_str<'a>(v: &'a Value, p: &Path) -> Result<&'a str, KerasError> {
    v.as_str()
        .ok_or_else(|| p.err(format!("expected a string, found {}", show(v))))
}

fn as_bool(v: &Value, p: &Path) -> Result<bool, KerasError> {
    v.as_bool()
        .ok_or_else(|| p.err(format!("expected true or false, found {}", show(v))))
}

/// A number as f32 (must be finite in f32).
fn as_f32(v: &Value, p: &Path) -> Result<f32, KerasError> {
    let x = v
        .as_f64()
        .filter(|_| v.is_number())
        .ok_or_else(|| p.err(format!("expected a number, found {}", show(v))))?;
    let f = x as f32;
    if f.is_finite() {
        Ok(f)
    } else {
        Err(p.err(format!("{} does not fit in float32", show(v))))
    }
}

/// A non-negative factor (Keras 3 `validate_float_arg`).
fn factor(v: &Value, p: &Path) -> Result<f32, KerasError> {
    let x = v
        .as_f64()
        .filter(|_| v.is_number())
        .ok_or_else(|| p.err(format!("expected a non-negative number, found {}", show(v))))?;
    if x < 0.0 {
        return Err(p.err(format!("must be >= 0, got {}", show(v))));
    }
    let f = x as f32;
    if !f.is_finite() {
        return Err(p.err(format!("{} does not fit in float32", show(v))));
    }
    Ok(f)
}

/// A positive integer (a size).
fn as_size(v: &Value, p: &Path) -> Result<usize, KerasError> {
    match v.as_u64() {
        Some(n) if n > 0 && n <= u32::MAX as u64 => Ok(n as usize),
        _ => {
            // Keras writes sizes as ints; accept an integral float too (2.0).
            if let Some(x) = v
                .as_f64()
                .filter(|x| x.fract() == 0.0 && *x >= 1.0 && *x <= u32::MAX as f64)
            {
                return Ok(x as usize);
            }
            Err(p.err(format!("expected a positive integer, found {}", show(v))))
        }
    }
}

/// `f32` written as the shortest decimal that reads back to it (what Keras writes for a
/// Python float that was given, e.g. `L2(0.01)` → `0.01`).
fn short_f64(x: f32) -> f64 {
    format!("{x}").parse::<f64>().unwrap_or(f64::from(x))
}

/// `f32` widened exactly (what Keras writes for a float32 tensor, e.g. `L1(0.01)` →
/// `0.009999999776482582`).
fn wide_f64(x: f32) -> f64 {
    f64::from(x)
}

fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// A class name and its (optional) config object.
type ClassConfig<'a> = (&'a str, Option<&'a Map<String, Value>>);

/// Where each spec layer came from: its Keras layer index and its declared input shape
/// (`build_config.input_shape`) with that value's path.
type Origin = Vec<(usize, Option<(Vec<usize>, Path)>)>;

/// Splits a Keras serialized object (`{"module", "class_name", "config", "registered_name"}`
/// or the legacy `{"class_name", "config"}`) into its class name and config object.
fn class_and_config<'a>(
    m: &'a Map<String, Value>,
    p: &Path,
) -> Result<ClassConfig<'a>, KerasError> {
    let class = m
        .get("class_name")
        .ok_or_else(|| p.err("missing `class_name`"))?;
    let class = as_str(class, &p.key("class_name"))?;
    for k in m.keys() {
        if !matches!(
            k.as_str(),
            "class_name"
                | "config"
                | "module"
                | "registered_name"
                | "build_config"
                | "compile_config"
        ) {
            return Err(p.key(k).err("unexpected key in a serialized Keras object"));
        }
    }
    let config = match m.get("config") {
        None | Some(Value::Null) => None,
        Some(c) => Some(as_obj(c, &p.key("config"))?),
    };
    Ok((class, config))
}

/// The value of a key `class` cannot do without.
fn required<'a>(
    cfg: &'a Map<String, Value>,
    key: &str,
    p: &Path,
    class: &str,
) -> Result<&'a Value, KerasError> {
    cfg.get(key)
        .ok_or_else(|| p.err(format!("{class} needs `{key}`")))
}

/// Rejects config keys outside `allowed`.
fn check_keys(
    cfg: &Map<String, Value>,
    allowed: &[&str],
    p: &Path,
    what: &str,
) -> Result<(), KerasError> {
    for k in cfg.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(p.key(k).err(format!(
                "unexpected argument for {what} (accepted: {})",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Regularizers
// ---------------------------------------------------------------------------------------------

/// Reads a regularizer the way Keras 3 `keras.regularizers.get(identifier)` does.
///
/// * `null` → `Ok(None)`;
/// * a string: a class name or its snake case (`"L1"`, `"l1"`, `"L2"`, `"l2"`, `"L1L2"`, `"l1l2"`,
///   `"OrthogonalRegularizer"`, `"orthogonal_regularizer"`), built with no arguments;
///   `"l1_l2"` is an error, as in Keras 3;
/// * a dict in the Keras 3 form `{"module", "class_name", "config", "registered_name"}` or the
///   legacy `{"class_name", "config"}`; missing config keys take the class defaults.
///
/// # Errors
/// [`KerasError::Invalid`] naming the path of the bad value: unknown identifier, unknown
/// argument, negative or out-of-range factor, bad orthogonal mode.
///
/// ```
/// use microfit::keras::regularizer_from_keras;
/// use microfit::core::regularizer::Reg;
/// use serde_json::json;
/// assert_eq!(regularizer_from_keras(&json!("l2"))?, Some(Reg::L2 { l2: 0.01 }));
/// assert_eq!(regularizer_from_keras(&json!("L1L2"))?, Some(Reg::L1L2 { l1: 0.0, l2: 0.0 }));
/// assert!(regularizer_from_keras(&json!("l1_l2")).is_err());
/// let r = regularizer_from_keras(&json!({"class_name": "L2", "config": {"l2": 0.5}}))?;
/// assert_eq!(r, Some(Reg::L2 { l2: 0.5 }));
/// # Ok::<(), microfit::keras::KerasError>(())
/// ```
pub fn regularizer_from_keras(v: &Value) -> Result<Option<Reg>, KerasError> {
    reg_at(v, &Path::default())
}

fn reg_at(v: &Value, p: &Path) -> Result<Option<Reg>, KerasError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => reg_class(s, None, p, p).map(Some),
        Value::Object(m) => {
            let (class, cfg) = class_and_config(m, p)?;
            reg_class(class, cfg, &p.key("class_name"), &p.key("config")).map(Some)
        }
        other => Err(p.err(format!(
            "expected a regularizer name, a serialized regularizer or null, found {}",
            show(other)
        ))),
    }
}

fn reg_class(
    class: &str,
    cfg: Option<&Map<String, Value>>,
    class_path: &Path,
    cfg_path: &Path,
) -> Result<Reg, KerasError> {
    let empty = Map::new();
    let cfg = cfg.unwrap_or(&empty);
    let get = |k: &str, default: f32| -> Result<f32, KerasError> {
        match cfg.get(k) {
            None => Ok(default),
            Some(v) => factor(v, &cfg_path.key(k)),
        }
    };
    let core = |e: CoreError| cfg_path.err(e.to_string());
    match class {
        "L1" | "l1" => {
            check_keys(cfg, &["l1"], cfg_path, "L1")?;
            Reg::try_l1(get("l1", Reg::DEFAULT_L1)?).map_err(core)
        }
        "L2" | "l2" => {
            check_keys(cfg, &["l2"], cfg_path, "L2")?;
            Reg::try_l2(get("l2", Reg::DEFAULT_L2)?).map_err(core)
        }
        "L1L2" | "l1l2" => {
            check_keys(cfg, &["l1", "l2"], cfg_path, "L1L2")?;
            Reg::try_l1l2(get("l1", 0.0)?, get("l2", 0.0)?).map_err(core)
        }
        "OrthogonalRegularizer" | "orthogonal_regularizer" => {
            check_keys(cfg, &["factor", "mode"], cfg_path, "OrthogonalRegularizer")?;
            let mode = match cfg.get("mode") {
                None => OrthoMode::Rows,
                Some(m) => match as_str(m, &cfg_path.key("mode"))? {
                    "rows" => OrthoMode::Rows,
                    "columns" => OrthoMode::Columns,
                    other => {
                        return Err(cfg_path
                            .key("mode")
                            .err(format!("must be \"rows\" or \"columns\", got {other:?}")));
                    }
                },
            };
            Reg::try_orthogonal(get("factor", 0.01)?, mode).map_err(core)
        }
        "Regularizer" | "regularizer" => Err(class_path.err(
            "the abstract base class `Regularizer` has no penalty; use L1, L2, L1L2 or OrthogonalRegularizer",
        )),
        other => Err(class_path.err(format!(
            "could not interpret regularizer identifier `{other}` (Keras 3 knows L1, L2, L1L2, \
             OrthogonalRegularizer and their snake_case names l1, l2, l1l2, orthogonal_regularizer; \
             `l1_l2` is not one of them)"
        ))),
    }
}

/// The Keras 3 `keras.regularizers.serialize(reg)` form:
/// `{"module": "keras.regularizers", "class_name": ..., "config": ..., "registered_name": null}`.
///
/// `L1` and `OrthogonalRegularizer` factors are written widened from float32 (Keras keeps them
/// as float32 tensors); `L2` and `L1L2` factors as the shortest decimal of the float32 (Keras
/// keeps the Python float that was given).
///
/// ```
/// use microfit::keras::regularizer_to_keras;
/// use microfit::core::regularizer::Reg;
/// use serde_json::json;
/// assert_eq!(
///     regularizer_to_keras(&Reg::L2 { l2: 0.01 }),
///     json!({"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.01}, "registered_name": null})
/// );
/// assert_eq!(regularizer_to_keras(&Reg::L1 { l1: 0.01 })["config"]["l1"], json!(0.009999999776482582));
/// ```
pub fn regularizer_to_keras(reg: &Reg) -> Value {
    let config = match *reg {
        Reg::L1 { l1 } => json!({ "l1": num(wide_f64(l1)) }),
        Reg::L2 { l2 } => json!({ "l2": num(short_f64(l2)) }),
        Reg::L1L2 { l1, l2 } => json!({ "l1": num(short_f64(l1)), "l2": num(short_f64(l2)) }),
        Reg::Orthogonal { factor, mode } => json!({
            "factor": num(wide_f64(factor)),
            "mode": match mode { OrthoMode::Rows => "rows", OrthoMode::Columns => "columns" },
        }),
        _ => json!({}),
    };
    json!({
        "module": "keras.regularizers",
        "class_name": reg.keras_class(),
        "config": config,
        "registered_name": null,
    })
}

fn reg_or_null(r: &Option<Reg>) -> Value {
    r.as_ref().map_or(Value::Null, regularizer_to_keras)
}

// ---------------------------------------------------------------------------------------------
// Activations and initializers
// ---------------------------------------------------------------------------------------------

fn activation_at(v: &Value, p: &Path) -> Result<Activation, KerasError> {
    let name = match v {
        Value::Null => return Ok(Activation::Linear),
        Value::String(s) => s.as_str(),
        // Keras 3 may serialize a built-in function as {"class_name": "function", "config": "relu", ...}.
        Value::Object(m) => match m.get("config") {
            Some(Value::String(s)) => s.as_str(),
            _ => {
                return Err(p.err(format!("expected an activation name, found {}", show(v))));
            }
        },
        other => {
            return Err(p.err(format!(
                "expected an activation name, found {}",
                show(other)
            )));
        }
    };
    Activation::from_keras_name(name).ok_or_else(|| {
        p.err(format!(
            "unsupported activation `{name}` (microfit knows linear, relu, sigmoid, tanh, softmax, leaky_relu)"
        ))
    })
}

fn activation_to_keras(a: Activation, p: &Path) -> Result<Value, KerasError> {
    match a {
        Activation::LeakyRelu(alpha) if alpha != 0.2 => Err(p.err(format!(
            "leaky_relu with negative slope {alpha} has no Keras activation string (Keras' is 0.2)"
        ))),
        other => Ok(Value::String(other.keras_name().to_string())),
    }
}

fn initializer_at(v: &Value, default: Initializer, p: &Path) -> Result<Initializer, KerasError> {
    let (class, cfg, cfg_path) = match v {
        Value::Null => return Ok(default),
        Value::String(s) => (s.as_str(), None, p.clone()),
        Value::Object(m) => {
            let (c, cfg) = class_and_config(m, p)?;
            (c, cfg, p.key("config"))
        }
        other => {
            return Err(p.err(format!(
                "expected an initializer name or object, found {}",
                show(other)
            )));
        }
    };
    let empty = Map::new();
    let cfg = cfg.unwrap_or(&empty);
    let vs_keys = ["seed", "input_axes", "output_axes"];
    let null_axes = |cfg: &Map<String, Value>| -> Result<(), KerasError> {
        for k in ["input_axes", "output_axes"] {
            if let Some(v) = cfg.get(k)
                && !v.is_null()
            {
                return Err(cfg_path.key(k).err("custom fan axes are not supported"));
            }
        }
        Ok(())
    };
    // The variance-scaling classes with their own names take a seed and the fan axes only.
    let named = match class {
        "GlorotUniform" | "glorot_uniform" => Some(Initializer::GlorotUniform),
        "GlorotNormal" | "glorot_normal" => Some(Initializer::GlorotNormal),
        "HeUniform" | "he_uniform" => Some(Initializer::HeUniform),
        "HeNormal" | "he_normal" => Some(Initializer::HeNormal),
        _ => None,
    };
    if let Some(init) = named {
        check_keys(cfg, &vs_keys, &cfg_path, class)?;
        null_axes(cfg)?;
        return Ok(init);
    }
    let init = match class {
        "VarianceScaling" | "variance_scaling" => {
            null_axes(cfg)?;
            let scale = match cfg.get("scale") {
                Some(v) => as_f32(v, &cfg_path.key("scale"))?,
                None => 1.0,
            };
            let mode = match cfg.get("mode") {
                Some(v) => as_str(v, &cfg_path.key("mode"))?,
                None => "fan_in",
            };
            let dist = match cfg.get("distribution") {
                Some(v) => as_str(v, &cfg_path.key("distribution"))?,
                None => "truncated_normal",
            };
            match (scale, mode, dist) {
                (1.0, "fan_avg", "uniform") => Initializer::GlorotUniform,
                (1.0, "fan_avg", "truncated_normal") => Initializer::GlorotNormal,
                (2.0, "fan_in", "uniform") => Initializer::HeUniform,
                (2.0, "fan_in", "truncated_normal") => Initializer::HeNormal,
                _ => {
                    return Err(cfg_path.err(format!(
                        "VarianceScaling(scale={scale}, mode={mode:?}, distribution={dist:?}) is not supported \
                         (only the Glorot and He settings)"
                    )));
                }
            }
        }
        "Zeros" | "zeros" => {
            check_keys(cfg, &[], &cfg_path, class)?;
            Initializer::Zeros
        }
        "Ones" | "ones" => {
            check_keys(cfg, &[], &cfg_path, class)?;
            Initializer::Ones
        }
        "Constant" | "constant" => {
            check_keys(cfg, &["value"], &cfg_path, class)?;
            let v = match cfg.get("value") {
                Some(v) => as_f32(v, &cfg_path.key("value"))?,
                None => 0.0,
            };
            Initializer::Constant(v)
        }
        other => {
            return Err(p.err(format!(
                "unsupported initializer `{other}` (microfit knows GlorotUniform, GlorotNormal, HeUniform, \
                 HeNormal, Zeros, Ones, Constant)"
            )));
        }
    };
    Ok(init)
}

fn initializer_to_keras(i: Initializer) -> Value {
    let vs = || json!({ "seed": null, "input_axes": null, "output_axes": null });
    let (class, config) = match i {
        Initializer::GlorotUniform => ("GlorotUniform", vs()),
        Initializer::GlorotNormal => ("GlorotNormal", vs()),
        Initializer::HeUniform => ("HeUniform", vs()),
        Initializer::HeNormal => ("HeNormal", vs()),
        Initializer::Zeros => ("Zeros", json!({})),
        Initializer::Ones => ("Ones", json!({})),
        Initializer::Constant(v) => ("Constant", json!({ "value": num(short_f64(v)) })),
    };
    json!({
        "module": "keras.initializers",
        "class_name": class,
        "config": config,
        "registered_name": null,
    })
}

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

fn dtype_policy() -> Value {
    json!({
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": { "name": "float32" },
        "registered_name": null,
    })
}

/// Accepts `"float32"`, a `DTypePolicy` object for float32, or null.
fn check_dtype(v: &Value, p: &Path) -> Result<(), KerasError> {
    let name = match v {
        Value::Null => return Ok(()),
        Value::String(s) => s.as_str(),
        Value::Object(m) => match m
            .get("config")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
        {
            Some(s) => s,
            None => return Err(p.err(format!("unrecognised dtype policy {}", show(v)))),
        },
        other => return Err(p.err(format!("unrecognised dtype {}", show(other)))),
    };
    if name == "float32" {
        Ok(())
    } else {
        Err(p.err(format!(
            "dtype `{name}` is not supported (microfit trains in float32)"
        )))
    }
}

/// A `[null, d1, d2, ...]` batch shape → `[d1, d2, ...]`.
fn batch_shape(v: &Value, p: &Path) -> Result<Vec<usize>, KerasError> {
    let a = v.as_array().ok_or_else(|| {
        p.err(format!(
            "expected a shape like [null, 4], found {}",
            show(v)
        ))
    })?;
    if a.len() < 2 {
        return Err(p.err(format!(
            "expected a batch shape like [null, 4], found {}",
            show(v)
        )));
    }
    if !(a[0].is_null() || a[0].is_u64()) {
        return Err(p.idx(0).err(format!(
            "expected null or a batch size, found {}",
            show(&a[0])
        )));
    }
    a[1..]
        .iter()
        .enumerate()
        .map(|(i, d)| as_size(d, &p.idx(i + 1)))
        .collect()
}

/// Optimizer, loss and metrics of a `.keras` file's `compile_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasCompile {
    /// The loss (`None` if not compiled with one).
    pub loss: Option<Loss>,
    /// The optimizer (`None` if absent).
    pub optimizer: Option<OptimizerConfig>,
    /// Metric names, as given (`"accuracy"`, ...).
    pub metrics: Vec<String>,
}

/// Reads a Keras `Sequential` configuration: either `model.get_config()` (an object with
/// `layers`) or a `.keras` file's `config.json` (`{"class_name": "Sequential", "config": ...,
/// "compile_config": ...}`); the compile configuration, when present, is returned too.
///
/// The input shape comes from an `InputLayer` (`batch_shape`, or tf-keras' `batch_input_shape`),
/// a first layer's `batch_input_shape`, its `build_config.input_shape` or the model's
/// `build_input_shape`. Dense layers read `units`, `activation`, `use_bias`, the three
/// regularizers and the kernel/bias initializers; `Conv1D/2D/3D` also `filters`, `kernel_size`,
/// `strides`, `padding`, `dilation_rate` (channels last, `groups = 1`); `MaxPooling*D` and
/// `AveragePooling*D` `pool_size`, `strides`, `padding`; `Flatten`; `Dropout` `rate` and `seed`.
/// Keras' defaults read back as the [`LayerSpec`] builders' (all-ones strides and dilations as
/// empty lists, pooling strides equal to the pool size as `None`). `build_config.input_shape`,
/// when given, must agree with the computed shapes.
///
/// # Errors
/// [`KerasError::Json`] for invalid JSON, [`KerasError::Unsupported`] for a layer class not in
/// [`SUPPORTED_LAYERS`], [`KerasError::Invalid`] naming the path of any other problem.
///
/// ```
/// use microfit::keras::spec_from_keras_config;
/// use microfit::model::LayerSpec;
/// let json = r#"{"layers": [
///   {"class_name": "InputLayer", "config": {"batch_shape": [null, 4]}},
///   {"class_name": "Dense", "config": {"units": 3, "activation": "softmax",
///      "kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.01}}}}]}"#;
/// let (spec, compile) = spec_from_keras_config(json)?;
/// assert_eq!(spec.input_shape, vec![4]);
/// assert!(matches!(spec.layers[0], LayerSpec::Dense { units: 3, .. }));
/// assert!(compile.is_none());
/// # Ok::<(), microfit::keras::KerasError>(())
/// ```
pub fn spec_from_keras_config(json: &str) -> Result<(ModelSpec, Option<KerasCompile>), KerasError> {
    let v: Value = serde_json::from_str(json).map_err(|e| KerasError::Json {
        reason: e.to_string(),
    })?;
    spec_from_keras_value(&v)
}

/// [`spec_from_keras_config`] on an already parsed JSON value.
///
/// # Errors
/// As [`spec_from_keras_config`].
pub fn spec_from_keras_value(v: &Value) -> Result<(ModelSpec, Option<KerasCompile>), KerasError> {
    let root = Path::default();
    let m = as_obj(v, &root)?;
    let (cfg, cfg_path, compile) = if m.contains_key("layers") {
        (m, root.clone(), None)
    } else if m.contains_key("class_name") {
        let class = as_str(&m["class_name"], &root.key("class_name"))?;
        if class != "Sequential" {
            return Err(root.key("class_name").err(format!(
                "only Sequential models are supported, found `{class}`"
            )));
        }
        let cp = root.key("config");
        let cfg = as_obj(m.get("config").unwrap_or(&Value::Null), &cp)?;
        let compile = match m.get("compile_config") {
            None | Some(Value::Null) => None,
            Some(c) => Some(compile_at(c, &root.key("compile_config"))?),
        };
        (cfg, cp, compile)
    } else {
        return Err(root.err(
            "expected a Sequential config (an object with `layers`) or a serialized model \
             (`class_name` and `config`)",
        ));
    };
    if let Some(d) = cfg.get("dtype") {
        check_dtype(d, &cfg_path.key("dtype"))?;
    }
    let model_trainable = match cfg.get("trainable") {
        Some(t) => as_bool(t, &cfg_path.key("trainable"))?,
        None => true,
    };
    let lp = cfg_path.key("layers");
    let layers = cfg
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| lp.err("expected a list of layers"))?;

    let mut input_shape: Option<Vec<usize>> = None;
    let mut specs: Vec<LayerSpec> = Vec::new();
    // Keras index of each spec layer, and its declared input shape (build_config), if any.
    let mut origin: Origin = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let p = lp.idx(i);
        let lm = as_obj(l, &p)?;
        let (class, lcfg) = class_and_config(lm, &p)?;
        let empty = Map::new();
        let lcfg = lcfg.unwrap_or(&empty);
        let cp = p.key("config");
        if class == "InputLayer" {
            if !specs.is_empty() || input_shape.is_some() {
                return Err(p.err("an InputLayer must be the first layer"));
            }
            input_shape = Some(input_layer_shape(lcfg, &cp)?);
            continue;
        }
        if let Some(d) = lcfg.get("dtype") {
            check_dtype(d, &cp.key("dtype"))?;
        }
        if input_shape.is_none()
            && specs.is_empty()
            && let Some(s) = lcfg
                .get("batch_input_shape")
                .or_else(|| lcfg.get("batch_shape"))
        {
            let key = if lcfg.contains_key("batch_input_shape") {
                "batch_input_shape"
            } else {
                "batch_shape"
            };
            input_shape = Some(batch_shape(s, &cp.key(key))?);
        }
        let declared = match lm.get("build_config").and_then(|b| b.get("input_shape")) {
            Some(s) if !s.is_null() => {
                let bp = p.key("build_config").key("input_shape");
                Some((batch_shape(s, &bp)?, bp))
            }
            _ => None,
        };
        if input_shape.is_none() && specs.is_empty() {
            input_shape = declared.as_ref().map(|d| d.0.clone());
        }
        let spec = layer_from_keras(class, lcfg, &cp, &p)?;
        specs.push(spec);
        origin.push((i, declared));
    }
    if input_shape.is_none()
        && let Some(s) = cfg.get("build_input_shape").filter(|s| !s.is_null())
    {
        input_shape = Some(batch_shape(s, &cfg_path.key("build_input_shape"))?);
    }
    let input_shape = input_shape.ok_or_else(|| {
        lp.err("the input shape is unknown: no InputLayer, batch_input_shape, build_config or build_input_shape")
    })?;
    let mut spec = ModelSpec {
        input_shape,
        layers: specs,
    };
    if !model_trainable {
        // Keras `model.trainable = False`: every layer is frozen.
        spec.freeze_first(spec.layers.len());
    }
    // Validate with the spec's own checks, translating its paths to Keras paths.
    let shapes = spec.shapes().map_err(|e| {
        let path = translate_spec_path(&e.field, &origin, &lp);
        KerasError::Invalid {
            path,
            reason: e.reason,
        }
    })?;
    let mut prev = spec.input_shape.clone();
    for (k, (_, declared)) in origin.iter().enumerate() {
        if let Some((d, bp)) = declared
            && *d != prev
        {
            return Err(bp.err(format!(
                "declares input shape {d:?}, but the previous layer gives {prev:?}"
            )));
        }
        prev = shapes[k].clone();
    }
    Ok((spec, compile))
}

/// `layers[k].units` of a [`ModelSpec`] error → `layers[i].config.units` of the Keras config.
fn translate_spec_path(field: &str, origin: &Origin, lp: &Path) -> String {
    if let Some(rest) = field.strip_prefix("layers[")
        && let Some((n, tail)) = rest.split_once(']')
        && let Ok(k) = n.parse::<usize>()
        && let Some((i, _)) = origin.get(k)
    {
        let base = lp.idx(*i);
        return match tail.strip_prefix('.') {
            Some(t) => base.key("config").key(t).0,
            None => base.0,
        };
    }
    if field == "input_shape" {
        return lp.0.clone();
    }
    field.to_string()
}

fn input_layer_shape(cfg: &Map<String, Value>, p: &Path) -> Result<Vec<usize>, KerasError> {
    if let Some(d) = cfg.get("dtype") {
        check_dtype(d, &p.key("dtype"))?;
    }
    for k in ["sparse", "ragged"] {
        if let Some(v) = cfg.get(k)
            && as_bool(v, &p.key(k))?
        {
            return Err(p.key(k).err(format!("{k} inputs are not supported")));
        }
    }
    for k in ["batch_shape", "batch_input_shape"] {
        if let Some(s) = cfg.get(k) {
            return batch_shape(s, &p.key(k));
        }
    }
    if let Some(s) = cfg.get("shape").or_else(|| cfg.get("input_shape")) {
        // `Input(shape=(4,))` without the batch axis.
        let key = if cfg.contains_key("shape") {
            "shape"
        } else {
            "input_shape"
        };
        let kp = p.key(key);
        let a = s
            .as_array()
            .ok_or_else(|| kp.err(format!("expected a shape, found {}", show(s))))?;
        return a
            .iter()
            .enumerate()
            .map(|(i, d)| as_size(d, &kp.idx(i)))
            .collect();
    }
    Err(p.err("an InputLayer needs `batch_shape`"))
}

/// Keys every Keras layer config may carry.
const BASE_KEYS: &[&str] = &[
    "name",
    "trainable",
    "dtype",
    "batch_input_shape",
    "batch_shape",
];

/// Keys of the shared weighted-layer config (Dense and Conv).
const WEIGHTED_KEYS: &[&str] = &[
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "quantization_config",
    "lora_rank",
    "lora_alpha",
];

fn keys_of(groups: &[&[&'static str]]) -> Vec<&'static str> {
    groups.iter().flat_map(|g| g.iter().copied()).collect()
}

/// Activation, bias, regularizers and initializers of a Dense or Conv config (written back by
/// [`weighted_to_keras`]).
fn weighted_config(cfg: &Map<String, Value>, p: &Path) -> Result<DenseConfig<Reg>, KerasError> {
    let mut c: DenseConfig<Reg> = DenseConfig::new(match cfg.get("activation") {
        Some(a) => activation_at(a, &p.key("activation"))?,
        None => Activation::Linear,
    });
    if let Some(b) = cfg.get("use_bias") {
        c.use_bias = as_bool(b, &p.key("use_bias"))?;
    }
    let null = Value::Null;
    let get = |k: &str| cfg.get(k).unwrap_or(&null);
    c.kernel_regularizer = reg_at(get("kernel_regularizer"), &p.key("kernel_regularizer"))?;
    c.bias_regularizer = reg_at(get("bias_regularizer"), &p.key("bias_regularizer"))?;
    c.activity_regularizer = reg_at(get("activity_regularizer"), &p.key("activity_regularizer"))?;
    c.kernel_initializer = initializer_at(
        get("kernel_initializer"),
        Initializer::GlorotUniform,
        &p.key("kernel_initializer"),
    )?;
    c.bias_initializer = initializer_at(
        get("bias_initializer"),
        Initializer::Zeros,
        &p.key("bias_initializer"),
    )?;
    c.kernel_constraint = constraint_at(get("kernel_constraint"), &p.key("kernel_constraint"))?;
    c.bias_constraint = constraint_at(get("bias_constraint"), &p.key("bias_constraint"))?;
    if let Some(t) = cfg.get("trainable") {
        c.trainable = as_bool(t, &p.key("trainable"))?;
    }
    for k in ["quantization_config", "lora_rank"] {
        if let Some(v) = cfg.get(k)
            && !v.is_null()
        {
            return Err(p.key(k).err(format!("{k} is not supported")));
        }
    }
    Ok(c)
}

/// Writes a Dense or Conv layer's shared config (the inverse of [`weighted_config`]).
fn weighted_to_keras(
    m: &mut Map<String, Value>,
    config: &DenseConfig<Reg>,
    p: &Path,
) -> Result<(), KerasError> {
    m.insert("trainable".into(), json!(config.trainable));
    if let Some(r) = &config.activity_regularizer {
        m.insert("activity_regularizer".into(), regularizer_to_keras(r));
    }
    m.insert(
        "activation".into(),
        activation_to_keras(config.activation, &p.key("activation"))?,
    );
    m.insert("use_bias".into(), json!(config.use_bias));
    m.insert(
        "kernel_initializer".into(),
        initializer_to_keras(config.kernel_initializer),
    );
    m.insert(
        "bias_initializer".into(),
        initializer_to_keras(config.bias_initializer),
    );
    m.insert(
        "kernel_regularizer".into(),
        reg_or_null(&config.kernel_regularizer),
    );
    m.insert(
        "bias_regularizer".into(),
        reg_or_null(&config.bias_regularizer),
    );
    let constraint = |c: &Option<Constraint>| c.as_ref().map_or(Value::Null, constraint_to_keras);
    m.insert(
        "kernel_constraint".into(),
        constraint(&config.kernel_constraint),
    );
    m.insert(
        "bias_constraint".into(),
        constraint(&config.bias_constraint),
    );
    Ok(())
}

/// A Keras constraint (`{"class_name": "MaxNorm", "config": {"max_value": 2, "axis": 0}}`,
/// or its name: `"max_norm"`, `"non_neg"`) through the schema's form
/// ([`ConstraintForm`]: Keras' config keys and defaults); `null` is none.
fn constraint_at(v: &Value, p: &Path) -> Result<Option<Constraint>, KerasError> {
    let (class, cfg) = match v {
        Value::Null => return Ok(None),
        Value::String(s) => (s.as_str(), None),
        Value::Object(m) => class_and_config(m, p)?,
        other => {
            return Err(p.err(format!(
                "expected a constraint object, found {}",
                show(other)
            )));
        }
    };
    let mut form = cfg.cloned().unwrap_or_default();
    form.remove("name");
    form.insert("name".into(), json!(class));
    let form = ConstraintForm::deserialize(Value::Object(form)).map_err(|e| {
        let e = e.to_string();
        match relative_field(&e) {
            Some(k) => p.key("config").key(k).err(e[k.len() + 2..].to_string()),
            None => p.err(e),
        }
    })?;
    Constraint::try_from(form)
        .map(Some)
        .map_err(|e| match relative_field(&e) {
            Some("name") => p.key("class_name").err(e["name: ".len()..].to_string()),
            Some(k) => p.key("config").key(k).err(e[k.len() + 2..].to_string()),
            None => p.err(e),
        })
}

/// The Keras 3 serialized form of a constraint (`{"module": "keras.constraints",
/// "class_name": "MaxNorm", "config": {"max_value": 2.0, "axis": 0}}`).
pub fn constraint_to_keras(c: &Constraint) -> Value {
    let mut cfg = match serde_json::to_value(ConstraintForm::from(c)) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    cfg.remove("name");
    for v in cfg.values_mut() {
        if let Some(x) = v.as_f64()
            && !v.is_i64()
            && !v.is_u64()
        {
            *v = num(short_f64(x as f32));
        }
    }
    json!({
        "module": "keras.constraints",
        "class_name": c.keras_class(),
        "config": cfg,
        "registered_name": null,
    })
}

fn dense_from_keras(cfg: &Map<String, Value>, p: &Path) -> Result<LayerSpec, KerasError> {
    check_keys(
        cfg,
        &keys_of(&[BASE_KEYS, WEIGHTED_KEYS, &["units"]]),
        p,
        "Dense",
    )?;
    let units = as_size(required(cfg, "units", p, "Dense")?, &p.key("units"))?;
    Ok(LayerSpec::Dense {
        units,
        config: weighted_config(cfg, p)?,
    })
}

/// An int or a list of `rank` ints (Keras' `kernel_size=3` or `(3, 3)`), as a list of `rank`.
fn per_axis(v: &Value, rank: usize, p: &Path) -> Result<Vec<usize>, KerasError> {
    match v {
        Value::Array(a) => {
            if a.len() != rank {
                return Err(p.err(format!(
                    "expected {rank} values (one per spatial axis), found {}",
                    show(v)
                )));
            }
            a.iter()
                .enumerate()
                .map(|(i, d)| as_size(d, &p.idx(i)))
                .collect()
        }
        other => Ok(vec![as_size(other, p)?; rank]),
    }
}

/// `[1, 1, ...]` (Keras' default) reads as an empty list, the builders' default.
fn unless_ones(v: Vec<usize>) -> Vec<usize> {
    if v.iter().all(|&d| d == 1) {
        Vec::new()
    } else {
        v
    }
}

fn padding_at(cfg: &Map<String, Value>, p: &Path) -> Result<Padding, KerasError> {
    match cfg.get("padding") {
        None => Ok(Padding::Valid),
        Some(v) => match as_str(v, &p.key("padding"))? {
            "valid" => Ok(Padding::Valid),
            "same" => Ok(Padding::Same),
            other => Err(p.key("padding").err(format!(
                "padding `{other}` is not supported (valid or same)"
            ))),
        },
    }
}

fn channels_last(cfg: &Map<String, Value>, p: &Path) -> Result<(), KerasError> {
    match cfg.get("data_format") {
        None | Some(Value::Null) => Ok(()),
        Some(v) => match as_str(v, &p.key("data_format"))? {
            "channels_last" => Ok(()),
            other => Err(p.key("data_format").err(format!(
                "`{other}` is not supported (microfit is channels_last)"
            ))),
        },
    }
}

fn conv_from_keras(
    rank: usize,
    cfg: &Map<String, Value>,
    p: &Path,
) -> Result<LayerSpec, KerasError> {
    let class = ["Conv1D", "Conv2D", "Conv3D"][rank - 1];
    let conv_keys: &[&str] = &[
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "data_format",
        "dilation_rate",
        "groups",
    ];
    check_keys(
        cfg,
        &keys_of(&[BASE_KEYS, WEIGHTED_KEYS, conv_keys]),
        p,
        class,
    )?;
    channels_last(cfg, p)?;
    let filters = as_size(required(cfg, "filters", p, class)?, &p.key("filters"))?;
    let kernel_size = per_axis(
        required(cfg, "kernel_size", p, class)?,
        rank,
        &p.key("kernel_size"),
    )?;
    let strides = match cfg.get("strides") {
        None => Vec::new(),
        Some(v) => unless_ones(per_axis(v, rank, &p.key("strides"))?),
    };
    let dilation_rate = match cfg.get("dilation_rate") {
        None => Vec::new(),
        Some(v) => unless_ones(per_axis(v, rank, &p.key("dilation_rate"))?),
    };
    if let Some(g) = cfg.get("groups")
        && as_size(g, &p.key("groups"))? != 1
    {
        return Err(p
            .key("groups")
            .err("grouped convolutions are not supported"));
    }
    let padding = padding_at(cfg, p)?;
    let config = weighted_config(cfg, p)?;
    let conv = LayerSpec::conv(rank, filters, kernel_size, config)
        .ok_or_else(|| p.err(format!("{rank} spatial axes")))?;
    Ok(conv
        .with_strides(&strides)
        .with_padding(padding)
        .with_dilation_rate(&dilation_rate))
}

fn pool_from_keras(
    rank: usize,
    max: bool,
    cfg: &Map<String, Value>,
    p: &Path,
) -> Result<LayerSpec, KerasError> {
    let class = format!("{}Pooling{rank}D", if max { "Max" } else { "Average" });
    check_keys(
        cfg,
        &keys_of(&[
            BASE_KEYS,
            &["pool_size", "strides", "padding", "data_format"],
        ]),
        p,
        &class,
    )?;
    channels_last(cfg, p)?;
    let pool_size = match cfg.get("pool_size") {
        Some(v) => per_axis(v, rank, &p.key("pool_size"))?,
        None => vec![2; rank],
    };
    // Keras writes `strides` equal to `pool_size` when none was given: read that as the default.
    let strides = match cfg.get("strides") {
        None | Some(Value::Null) => None,
        Some(v) => Some(per_axis(v, rank, &p.key("strides"))?).filter(|s| *s != pool_size),
    };
    let padding = padding_at(cfg, p)?;
    Ok(if max {
        LayerSpec::MaxPooling {
            pool_size,
            strides,
            padding,
        }
    } else {
        LayerSpec::AveragePooling {
            pool_size,
            strides,
            padding,
        }
    })
}

fn flatten_from_keras(cfg: &Map<String, Value>, p: &Path) -> Result<LayerSpec, KerasError> {
    check_keys(cfg, &keys_of(&[BASE_KEYS, &["data_format"]]), p, "Flatten")?;
    channels_last(cfg, p)?;
    Ok(LayerSpec::Flatten)
}

fn dropout_from_keras(cfg: &Map<String, Value>, p: &Path) -> Result<LayerSpec, KerasError> {
    check_keys(
        cfg,
        &keys_of(&[BASE_KEYS, &["rate", "seed", "noise_shape"]]),
        p,
        "Dropout",
    )?;
    let rate = as_f32(required(cfg, "rate", p, "Dropout")?, &p.key("rate"))?;
    let seed = match cfg.get("seed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            p.key("seed").err(format!(
                "expected a non-negative integer, found {}",
                show(v)
            ))
        })?),
    };
    if cfg.get("noise_shape").is_some_and(|v| !v.is_null()) {
        return Err(p.key("noise_shape").err("noise_shape is not supported"));
    }
    Ok(LayerSpec::Dropout { rate, seed })
}

/// `GaussianNoise(stddev, seed)`, `GaussianDropout`/`AlphaDropout`/`SpatialDropout1D/2D/3D`
/// `(rate, seed)` (AlphaDropout's `noise_shape` must be null).
fn noise_from_keras(
    class: &str,
    cfg: &Map<String, Value>,
    p: &Path,
) -> Result<LayerSpec, KerasError> {
    let arg = if class == "GaussianNoise" {
        "stddev"
    } else {
        "rate"
    };
    check_keys(
        cfg,
        &keys_of(&[BASE_KEYS, &[arg, "seed", "noise_shape", "data_format"]]),
        p,
        class,
    )?;
    channels_last(cfg, p)?;
    if cfg.get("noise_shape").is_some_and(|v| !v.is_null()) {
        return Err(p.key("noise_shape").err("noise_shape is not supported"));
    }
    let x = as_f32(required(cfg, arg, p, class)?, &p.key(arg))?;
    let seed = match cfg.get("seed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            p.key("seed").err(format!(
                "expected a non-negative integer, found {}",
                show(v)
            ))
        })?),
    };
    Ok(match class {
        "GaussianNoise" => LayerSpec::GaussianNoise { stddev: x, seed },
        "GaussianDropout" => LayerSpec::GaussianDropout { rate: x, seed },
        "AlphaDropout" => LayerSpec::AlphaDropout { rate: x, seed },
        "SpatialDropout1D" => LayerSpec::SpatialDropout1D { rate: x, seed },
        "SpatialDropout2D" => LayerSpec::SpatialDropout2D { rate: x, seed },
        _ => LayerSpec::SpatialDropout3D { rate: x, seed },
    })
}

/// Reads one Keras layer (anything but `InputLayer`) into a [`LayerSpec`].
fn layer_from_keras(
    class: &str,
    cfg: &Map<String, Value>,
    p: &Path,
    layer: &Path,
) -> Result<LayerSpec, KerasError> {
    match class {
        "Dense" => dense_from_keras(cfg, p),
        "Conv1D" | "Convolution1D" => conv_from_keras(1, cfg, p),
        "Conv2D" | "Convolution2D" => conv_from_keras(2, cfg, p),
        "Conv3D" | "Convolution3D" => conv_from_keras(3, cfg, p),
        "MaxPooling1D" | "MaxPool1D" => pool_from_keras(1, true, cfg, p),
        "MaxPooling2D" | "MaxPool2D" => pool_from_keras(2, true, cfg, p),
        "MaxPooling3D" | "MaxPool3D" => pool_from_keras(3, true, cfg, p),
        "AveragePooling1D" | "AvgPool1D" => pool_from_keras(1, false, cfg, p),
        "AveragePooling2D" | "AvgPool2D" => pool_from_keras(2, false, cfg, p),
        "AveragePooling3D" | "AvgPool3D" => pool_from_keras(3, false, cfg, p),
        "Flatten" => flatten_from_keras(cfg, p),
        "Dropout" => dropout_from_keras(cfg, p),
        "GaussianNoise" | "GaussianDropout" | "AlphaDropout" | "SpatialDropout1D"
        | "SpatialDropout2D" | "SpatialDropout3D" => noise_from_keras(class, cfg, p),
        "ActivityRegularization" => {
            check_keys(cfg, &keys_of(&[BASE_KEYS, &["l1", "l2"]]), p, class)?;
            let f = |k: &str| cfg.get(k).map_or(Ok(0.0), |v| as_f32(v, &p.key(k)));
            Ok(LayerSpec::ActivityRegularization {
                l1: f("l1")?,
                l2: f("l2")?,
            })
        }
        other => Err(KerasError::Unsupported {
            layer: layer.0.clone(),
            name: cfg.get("name").and_then(Value::as_str).map(str::to_string),
            class_name: other.to_string(),
        }),
    }
}

/// Writes a [`ModelSpec`] as Keras 3 `Sequential.get_config()` (the shape of the
/// `keras_model_config` recorded in `mlp_fit_k3.json`): an `InputLayer`, then each layer with
/// Keras' automatic names (`dense`, `dense_1`, `conv2d`, `max_pooling2d`, ...), its regularizers
/// in the [`regularizer_to_keras`] form, one value per spatial axis for kernel sizes, strides and
/// dilations, and its `build_config`.
///
/// # Errors
/// [`KerasError::Invalid`] if the spec is invalid or holds something Keras cannot express
/// (a leaky ReLU slope other than 0.2), [`KerasError::Unsupported`] for a layer kind this writer
/// does not know yet.
///
/// ```
/// use microfit::keras::{spec_from_keras_value, spec_to_keras_config};
/// use microfit::model::{LayerSpec, ModelSpec};
/// use microfit::core::prelude::*;
/// let spec = ModelSpec {
///     input_shape: vec![4],
///     layers: vec![
///         LayerSpec::dense(8, Activation::Relu).with_kernel_regularizer(Reg::l2(0.01)),
///         LayerSpec::dense(3, Activation::Softmax),
///     ],
/// };
/// let json = spec_to_keras_config(&spec)?;
/// assert_eq!(json["layers"][1]["config"]["kernel_regularizer"]["config"]["l2"], 0.01);
/// assert_eq!(spec_from_keras_value(&json)?.0, spec);
/// # Ok::<(), microfit::keras::KerasError>(())
/// ```
pub fn spec_to_keras_config(spec: &ModelSpec) -> Result<Value, KerasError> {
    let lp = Path("layers".into());
    let shapes = spec.shapes().map_err(|e| KerasError::Invalid {
        path: e.field,
        reason: e.reason,
    })?;
    let batch = |s: &[usize]| -> Value {
        let mut v = vec![Value::Null];
        v.extend(s.iter().map(|&d| json!(d)));
        Value::Array(v)
    };
    let mut layers = vec![json!({
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {
            "batch_shape": batch(&spec.input_shape),
            "dtype": "float32",
            "sparse": false,
            "ragged": false,
            "name": "input_layer",
            "optional": false,
        },
        "registered_name": null,
    })];
    let mut in_shape = spec.input_shape.clone();
    for (i, (l, name)) in spec.layers.iter().zip(spec.layer_names()).enumerate() {
        let p = lp.idx(i + 1).key("config");
        let mut m = Map::new();
        m.insert("name".into(), json!(name));
        m.insert("trainable".into(), json!(true));
        m.insert("dtype".into(), dtype_policy());
        // Keras writes one value per spatial axis; a spec may give one for all, or none.
        let expand = |v: &[usize], rank: usize, default: &[usize]| -> Value {
            match v.len() {
                0 => json!(default),
                1 => json!(vec![v[0]; rank]),
                _ => json!(v),
            }
        };
        let class: String = match l {
            LayerSpec::Dense { units, config } => {
                m.insert("units".into(), json!(units));
                weighted_to_keras(&mut m, config, &p)?;
                m.insert("quantization_config".into(), Value::Null);
                "Dense".into()
            }
            LayerSpec::Conv1D { .. } | LayerSpec::Conv2D { .. } | LayerSpec::Conv3D { .. } => {
                let c = l.conv_fields().ok_or_else(|| p.err("not a convolution"))?;
                let rank = c.rank;
                m.insert("filters".into(), json!(c.filters));
                m.insert(
                    "kernel_size".into(),
                    expand(c.kernel_size, rank, &vec![1; rank]),
                );
                m.insert("strides".into(), expand(c.strides, rank, &vec![1; rank]));
                m.insert("padding".into(), json!(c.padding.as_str()));
                m.insert("data_format".into(), json!("channels_last"));
                m.insert(
                    "dilation_rate".into(),
                    expand(c.dilation_rate, rank, &vec![1; rank]),
                );
                m.insert("groups".into(), json!(1));
                weighted_to_keras(&mut m, c.config, &p)?;
                format!("Conv{rank}D")
            }
            LayerSpec::MaxPooling {
                pool_size,
                strides,
                padding,
            }
            | LayerSpec::AveragePooling {
                pool_size,
                strides,
                padding,
            } => {
                let rank = pool_size.len();
                let pool = expand(pool_size, rank, &[]);
                m.insert("pool_size".into(), pool.clone());
                m.insert(
                    "strides".into(),
                    strides
                        .as_ref()
                        .map_or(pool, |s| expand(s, rank, &vec![1; rank])),
                );
                m.insert("padding".into(), json!(padding.as_str()));
                m.insert("data_format".into(), json!("channels_last"));
                let kind = if matches!(l, LayerSpec::MaxPooling { .. }) {
                    "Max"
                } else {
                    "Average"
                };
                format!("{kind}Pooling{rank}D")
            }
            LayerSpec::Flatten => {
                m.insert("data_format".into(), json!("channels_last"));
                "Flatten".into()
            }
            LayerSpec::Dropout { rate, seed } => {
                m.insert("rate".into(), num(short_f64(*rate)));
                m.insert("seed".into(), json!(seed));
                m.insert("noise_shape".into(), Value::Null);
                "Dropout".into()
            }
            LayerSpec::GaussianNoise { stddev, seed } => {
                m.insert("stddev".into(), num(short_f64(*stddev)));
                m.insert("seed".into(), json!(seed));
                "GaussianNoise".into()
            }
            LayerSpec::GaussianDropout { rate, seed } => {
                m.insert("rate".into(), num(short_f64(*rate)));
                m.insert("seed".into(), json!(seed));
                "GaussianDropout".into()
            }
            LayerSpec::AlphaDropout { rate, seed } => {
                m.insert("rate".into(), num(short_f64(*rate)));
                m.insert("seed".into(), json!(seed));
                m.insert("noise_shape".into(), Value::Null);
                "AlphaDropout".into()
            }
            LayerSpec::SpatialDropout1D { rate, seed }
            | LayerSpec::SpatialDropout2D { rate, seed }
            | LayerSpec::SpatialDropout3D { rate, seed } => {
                m.insert("rate".into(), num(short_f64(*rate)));
                m.insert("seed".into(), json!(seed));
                format!("SpatialDropout{}D", l.spatial_rank().unwrap_or(1))
            }
            LayerSpec::ActivityRegularization { l1, l2 } => {
                m.insert("l1".into(), num(short_f64(*l1)));
                m.insert("l2".into(), num(short_f64(*l2)));
                "ActivityRegularization".into()
            }
            #[allow(unreachable_patterns)]
            _ => {
                return Err(KerasError::Unsupported {
                    layer: lp.idx(i + 1).0,
                    name: None,
                    class_name: l.kind().to_string(),
                });
            }
        };
        let config = Value::Object(m);
        layers.push(json!({
            "module": "keras.layers",
            "class_name": class,
            "config": config,
            "registered_name": null,
            "build_config": { "input_shape": batch(&in_shape) },
        }));
        in_shape = shapes[i].clone();
    }
    Ok(json!({
        "name": "sequential",
        "trainable": true,
        "dtype": dtype_policy(),
        "layers": layers,
        "build_input_shape": batch(&spec.input_shape),
    }))
}

/// Writes a `.keras` file's `config.json`: the serialized `Sequential` with its
/// `compile_config` when given (read back by [`spec_from_keras_config`]).
///
/// # Errors
/// As [`spec_to_keras_config`].
pub fn keras_file_config(
    spec: &ModelSpec,
    compile: Option<&KerasCompile>,
) -> Result<Value, KerasError> {
    let config = spec_to_keras_config(spec)?;
    let build = config["build_input_shape"].clone();
    Ok(json!({
        "module": "keras",
        "class_name": "Sequential",
        "config": config,
        "registered_name": null,
        "build_config": { "input_shape": build },
        "compile_config": compile.map_or(Value::Null, compile_to_keras),
    }))
}

// ---------------------------------------------------------------------------------------------
// Losses, optimizers and compile configs
// ---------------------------------------------------------------------------------------------

/// Reads a Keras loss: a name (`"categorical_crossentropy"`, `"mse"`, ...) or a serialized loss
/// object (`{"class_name": "CategoricalCrossentropy", "config": {"from_logits": true, ...}}`).
///
/// # Errors
/// [`KerasError::Invalid`] for an unknown loss, label smoothing, or a reduction other than
/// `sum_over_batch_size`.
///
/// ```
/// use microfit::keras::loss_from_keras;
/// use microfit::core::Loss;
/// use serde_json::json;
/// assert_eq!(loss_from_keras(&json!("mse"))?, Loss::MeanSquaredError);
/// let l = loss_from_keras(&json!({"class_name": "BinaryCrossentropy", "config": {"from_logits": true}}))?;
/// assert_eq!(l, Loss::BinaryCrossentropy { from_logits: true, label_smoothing: 0.0 });
/// # Ok::<(), microfit::keras::KerasError>(())
/// ```
pub fn loss_from_keras(v: &Value) -> Result<Loss, KerasError> {
    loss_at(v, &Path::default())
}

fn loss_at(v: &Value, p: &Path) -> Result<Loss, KerasError> {
    let unknown = |name: &str, p: &Path| {
        p.err(format!(
            "unsupported loss `{name}` (microfit knows mean_squared_error, mean_absolute_error, \
             binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy)"
        ))
    };
    match v {
        Value::String(s) => Loss::from_keras_name(s).ok_or_else(|| unknown(s, p)),
        Value::Object(m) => {
            let (class, cfg) = class_and_config(m, p)?;
            let mut loss =
                Loss::from_keras_name(class).ok_or_else(|| unknown(class, &p.key("class_name")))?;
            let cp = p.key("config");
            if let Some(cfg) = cfg {
                for (k, val) in cfg {
                    let kp = cp.key(k);
                    match k.as_str() {
                        "name" | "dtype" | "axis" => {}
                        "reduction" => {
                            let r = as_str(val, &kp)?;
                            if r != "sum_over_batch_size" && r != "auto" {
                                return Err(kp.err(format!(
                                    "reduction `{r}` is not supported (microfit uses sum_over_batch_size)"
                                )));
                            }
                        }
                        "label_smoothing" => {
                            let ls = as_f32(val, &kp)?;
                            match loss {
                                Loss::BinaryCrossentropy { .. }
                                | Loss::CategoricalCrossentropy { .. } => {
                                    loss = loss.with_label_smoothing(ls);
                                    loss.validate().map_err(|e| kp.err(e.to_string()))?;
                                }
                                _ if ls != 0.0 => {
                                    return Err(kp.err("this loss has no label smoothing"));
                                }
                                _ => {}
                            }
                        }
                        "ignore_class" => {
                            if !val.is_null() {
                                return Err(kp.err("ignore_class is not supported"));
                            }
                        }
                        "from_logits" => {
                            let fl = as_bool(val, &kp)?;
                            match &mut loss {
                                Loss::BinaryCrossentropy { from_logits, .. }
                                | Loss::CategoricalCrossentropy { from_logits, .. }
                                | Loss::SparseCategoricalCrossentropy { from_logits } => {
                                    *from_logits = fl
                                }
                                _ => {}
                            }
                        }
                        _ => return Err(kp.err("unexpected argument for a loss")),
                    }
                }
            }
            Ok(loss)
        }
        other => Err(p.err(format!(
            "expected a loss name or object, found {}",
            show(other)
        ))),
    }
}

/// The Keras 3 serialized form of a loss (`{"module": "keras.losses", "class_name": ..., "config": ...}`).
pub fn loss_to_keras(loss: &Loss) -> Value {
    let (class, from_logits) = match *loss {
        Loss::MeanSquaredError => ("MeanSquaredError", None),
        Loss::MeanAbsoluteError => ("MeanAbsoluteError", None),
        Loss::BinaryCrossentropy { from_logits, .. } => ("BinaryCrossentropy", Some(from_logits)),
        Loss::CategoricalCrossentropy { from_logits, .. } => {
            ("CategoricalCrossentropy", Some(from_logits))
        }
        Loss::SparseCategoricalCrossentropy { from_logits } => {
            ("SparseCategoricalCrossentropy", Some(from_logits))
        }
        _ => (loss.keras_name(), None),
    };
    let mut cfg = Map::new();
    cfg.insert("name".into(), json!(loss.keras_name()));
    cfg.insert("reduction".into(), json!("sum_over_batch_size"));
    if let Some(fl) = from_logits {
        cfg.insert("from_logits".into(), json!(fl));
    }
    if let Loss::BinaryCrossentropy {
        label_smoothing, ..
    }
    | Loss::CategoricalCrossentropy {
        label_smoothing, ..
    } = *loss
    {
        cfg.insert("label_smoothing".into(), num(short_f64(label_smoothing)));
    }
    json!({ "module": "keras.losses", "class_name": class, "config": cfg, "registered_name": null })
}

/// Reads an optimizer: `{"class_name": "Adam", "config": {...}}` (Keras 3 or legacy) or a name
/// (`"adam"`); missing arguments take Keras' defaults.
///
/// ```
/// use microfit::keras::optimizer_from_keras_class;
/// use microfit::spec::OptimizerKind;
/// use serde_json::json;
/// let o = optimizer_from_keras_class("SGD", &json!({"learning_rate": 0.1, "momentum": 0.9}))?;
/// assert_eq!((o.kind, o.momentum, o.nesterov), (OptimizerKind::Sgd, 0.9, false));
/// let w = microfit::core::layer::dense::DenseParams::<2, 1>::zeroed();
/// # use microfit::core::params::ZeroParams;
/// let built = o.build(&w).unwrap();
/// assert_eq!(built.slots(), 1);
/// # Ok::<(), microfit::keras::KerasError>(())
/// ```
///
/// # Errors
/// [`KerasError::Invalid`] for an unknown optimizer or unsupported option (amsgrad, EMA,
/// gradient accumulation, loss scaling, a schedule other than `ExponentialDecay`), or a value
/// out of range, naming its path.
pub fn optimizer_from_keras(v: &Value) -> Result<OptimizerConfig, KerasError> {
    optimizer_at(v, &Path::default())
}

/// Reads a class name and its config (the `get_config()` dict or the keyword arguments given
/// to the constructor; missing values take Keras' defaults).
///
/// # Errors
/// As [`optimizer_from_keras`].
pub fn optimizer_from_keras_class(
    class_name: &str,
    config: &Value,
) -> Result<OptimizerConfig, KerasError> {
    let p = Path::default();
    let cfg = match config {
        Value::Null => Map::new(),
        v => as_obj(v, &p)?.clone(),
    };
    optimizer_class(class_name, &cfg, &Path("class_name".into()), &p)
}

/// The Keras class of an optimizer (`"SGD"`, `"Adam"`, `"AdamW"`).
pub fn optimizer_class_name(o: &OptimizerConfig) -> &'static str {
    match o.kind {
        OptimizerKind::Sgd => "SGD",
        OptimizerKind::Adam => "Adam",
        OptimizerKind::AdamW => "AdamW",
    }
}

/// The Keras 3 serialized form of an optimizer
/// (`{"module": "keras.optimizers", "class_name", "config", ...}`).
///
/// ```
/// use microfit::keras::{optimizer_from_keras, optimizer_to_keras};
/// use microfit::spec::OptimizerConfig;
/// let o = OptimizerConfig::adam(0.01);
/// assert_eq!(optimizer_from_keras(&optimizer_to_keras(&o))?, o);
/// # Ok::<(), microfit::keras::KerasError>(())
/// ```
pub fn optimizer_to_keras(o: &OptimizerConfig) -> Value {
    let lr = match o.learning_rate {
        Schedule::Constant(lr) => num(wide_f64(lr)),
        Schedule::Exponential(e) => json!({
            "module": "keras.optimizers.schedules",
            "class_name": "ExponentialDecay",
            "config": {
                "initial_learning_rate": num(short_f64(e.initial_learning_rate)),
                "decay_steps": e.decay_steps,
                "decay_rate": num(short_f64(e.decay_rate)),
                "staircase": e.staircase,
                "name": "ExponentialDecay",
            },
            "registered_name": null,
        }),
    };
    let opt = |v: Option<f32>| v.map_or(Value::Null, |x| num(short_f64(x)));
    let c = &o.common;
    let mut m = Map::new();
    m.insert("name".into(), json!(o.kind.name()));
    m.insert("learning_rate".into(), lr);
    m.insert("weight_decay".into(), opt(c.weight_decay));
    m.insert("clipnorm".into(), opt(c.clip.clipnorm));
    m.insert("global_clipnorm".into(), opt(c.clip.global_clipnorm));
    m.insert("clipvalue".into(), opt(c.clip.clipvalue));
    m.insert("use_ema".into(), json!(o.ema.is_some()));
    m.insert(
        "ema_momentum".into(),
        num(short_f64(o.ema.map_or(0.99, |e| e.ema_momentum))),
    );
    m.insert(
        "ema_overwrite_frequency".into(),
        json!(o.ema.and_then(|e| e.ema_overwrite_frequency)),
    );
    m.insert("loss_scale_factor".into(), Value::Null);
    m.insert("gradient_accumulation_steps".into(), Value::Null);
    match o.kind {
        OptimizerKind::Sgd => {
            m.insert("momentum".into(), num(short_f64(o.momentum)));
            m.insert("nesterov".into(), json!(o.nesterov));
        }
        OptimizerKind::Adam | OptimizerKind::AdamW => {
            m.insert("beta_1".into(), num(short_f64(o.beta_1)));
            m.insert("beta_2".into(), num(short_f64(o.beta_2)));
            m.insert("epsilon".into(), num(short_f64(o.epsilon)));
            m.insert("amsgrad".into(), json!(false));
        }
    }
    json!({
        "module": "keras.optimizers",
        "class_name": optimizer_class_name(o),
        "config": m,
        "registered_name": null,
    })
}

fn optimizer_at(v: &Value, p: &Path) -> Result<OptimizerConfig, KerasError> {
    match v {
        Value::String(s) => optimizer_class(s, &Map::new(), p, p),
        Value::Object(m) => {
            let (class, cfg) = class_and_config(m, p)?;
            let empty = Map::new();
            optimizer_class(
                class,
                cfg.unwrap_or(&empty),
                &p.key("class_name"),
                &p.key("config"),
            )
        }
        other => Err(p.err(format!(
            "expected an optimizer name or object, found {}",
            show(other)
        ))),
    }
}

fn schedule_at(v: &Value, p: &Path) -> Result<Schedule, KerasError> {
    match v {
        Value::Object(m) => {
            let (class, cfg) = class_and_config(m, p)?;
            if class != "ExponentialDecay" {
                return Err(p.key("class_name").err(format!(
                    "learning-rate schedule `{class}` is not supported (only ExponentialDecay)"
                )));
            }
            let cp = p.key("config");
            let empty = Map::new();
            let cfg = cfg.unwrap_or(&empty);
            check_keys(
                cfg,
                &[
                    "initial_learning_rate",
                    "decay_steps",
                    "decay_rate",
                    "staircase",
                    "name",
                ],
                &cp,
                "ExponentialDecay",
            )?;
            let need = |k: &str| required(cfg, k, &cp, "ExponentialDecay");
            let lr = as_f32(
                need("initial_learning_rate")?,
                &cp.key("initial_learning_rate"),
            )?;
            let steps = as_size(need("decay_steps")?, &cp.key("decay_steps"))?;
            let rate = as_f32(need("decay_rate")?, &cp.key("decay_rate"))?;
            let staircase = match cfg.get("staircase") {
                Some(s) => as_bool(s, &cp.key("staircase"))?,
                None => false,
            };
            let e = ExponentialDecay::new(lr, steps as u32, rate, staircase)
                .map_err(|e| cp.err(e.to_string()))?;
            Ok(Schedule::Exponential(e))
        }
        other => Ok(Schedule::Constant(as_f32(other, p)?)),
    }
}

fn optimizer_class(
    class: &str,
    cfg: &Map<String, Value>,
    class_path: &Path,
    p: &Path,
) -> Result<OptimizerConfig, KerasError> {
    let (kind, default_lr) = match class {
        "SGD" | "sgd" => (OptimizerKind::Sgd, 0.01f32),
        "Adam" | "adam" => (OptimizerKind::Adam, 0.001),
        "AdamW" | "adamw" => (OptimizerKind::AdamW, 0.001),
        other => {
            return Err(class_path.err(format!(
                "unsupported optimizer `{other}` (microfit knows SGD, Adam, AdamW)"
            )));
        }
    };
    let f = |k: &str| -> Result<Option<f32>, KerasError> {
        match cfg.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => as_f32(v, &p.key(k)).map(Some),
        }
    };
    let learning_rate = match cfg.get("learning_rate") {
        None | Some(Value::Null) => Schedule::Constant(default_lr),
        Some(v) => schedule_at(v, &p.key("learning_rate"))?,
    };
    let mut o = OptimizerConfig::new(kind, learning_rate);
    if cfg.contains_key("weight_decay") {
        o.common.weight_decay = f("weight_decay")?;
    }
    o.common.clip = Clip {
        clipvalue: f("clipvalue")?,
        clipnorm: f("clipnorm")?,
        global_clipnorm: f("global_clipnorm")?,
    };
    if let Some(v) = cfg.get("use_ema")
        && as_bool(v, &p.key("use_ema"))?
    {
        let mut e = EmaConfig::default();
        if let Some(m) = f("ema_momentum")? {
            e.ema_momentum = m;
        }
        e.ema_overwrite_frequency = match cfg.get("ema_overwrite_frequency") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                u32::try_from(as_size(v, &p.key("ema_overwrite_frequency"))?)
                    .map_err(|_| p.key("ema_overwrite_frequency").err("too large"))?,
            ),
        };
        o.ema = Some(e);
    }
    // Keras does not serialize `exclude_from_weight_decay` (a method call); microfit reads
    // it as the golden files write it, `{"var_names": [...]}` or a list of names.
    if let Some(v) = cfg
        .get("exclude_from_weight_decay")
        .filter(|v| !v.is_null())
    {
        let ep = p.key("exclude_from_weight_decay");
        let list = v.get("var_names").unwrap_or(v);
        let names = list
            .as_array()
            .ok_or_else(|| ep.err(format!("expected a list of names, found {}", show(v))))?
            .iter()
            .enumerate()
            .map(|(i, n)| as_str(n, &ep.idx(i)).map(str::to_string))
            .collect::<Result<Vec<_>, _>>()?;
        o.common.exclude_from_weight_decay =
            ExcludeFromWeightDecay::from_var_names(&names).map_err(|e| ep.err(e.to_string()))?;
    }
    for (k, unsupported_if) in [
        ("amsgrad", "true"),
        ("gradient_accumulation_steps", "set"),
        ("loss_scale_factor", "set"),
    ] {
        if let Some(v) = cfg.get(k) {
            let on = match unsupported_if {
                "true" => v.as_bool() == Some(true),
                _ => !v.is_null(),
            };
            if on {
                return Err(p.key(k).err(format!("`{k}` is not supported")));
            }
        }
    }
    if let Some(v) = cfg.get("decay")
        && v.as_f64().is_some_and(|d| d != 0.0)
    {
        return Err(p
            .key("decay")
            .err("the legacy `decay` argument is not supported; use a schedule"));
    }
    if kind == OptimizerKind::Sgd {
        o.momentum = f("momentum")?.unwrap_or(0.0);
        if let Some(v) = cfg.get("nesterov") {
            o.nesterov = as_bool(v, &p.key("nesterov"))?;
        }
    } else {
        o.beta_1 = f("beta_1")?.unwrap_or(o.beta_1);
        o.beta_2 = f("beta_2")?.unwrap_or(o.beta_2);
        o.epsilon = f("epsilon")?.unwrap_or(o.epsilon);
    }
    o.validate().map_err(|e| match e {
        CoreError::InvalidHyperparameter { name, reason } => {
            let at = match name {
                "initial_learning_rate" | "decay_steps" | "decay_rate" => {
                    p.key("learning_rate").key("config").key(name)
                }
                n => p.key(n),
            };
            at.err(reason.as_str())
        }
        e => p.err(e.to_string()),
    })?;
    Ok(o)
}

fn compile_at(v: &Value, p: &Path) -> Result<KerasCompile, KerasError> {
    let m = as_obj(v, p)?;
    let loss = match m.get("loss") {
        None | Some(Value::Null) => None,
        Some(l) => Some(loss_at(l, &p.key("loss"))?),
    };
    let optimizer = match m.get("optimizer") {
        None | Some(Value::Null) => None,
        Some(o) => Some(optimizer_at(o, &p.key("optimizer"))?),
    };
    if let Some(w) = m.get("loss_weights")
        && !w.is_null()
    {
        return Err(p.key("loss_weights").err("loss weights are not supported"));
    }
    let mut metrics = Vec::new();
    match m.get("metrics") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for (i, x) in a.iter().enumerate() {
                match x {
                    Value::String(s) => metrics.push(s.clone()),
                    Value::Object(o) => {
                        let name = o
                            .get("config")
                            .and_then(|c| c.get("name"))
                            .or_else(|| o.get("class_name"))
                            .and_then(Value::as_str)
                            .ok_or_else(|| p.key("metrics").idx(i).err("a metric needs a name"))?;
                        metrics.push(name.to_string());
                    }
                    other => {
                        return Err(p
                            .key("metrics")
                            .idx(i)
                            .err(format!("expected a metric name, found {}", show(other))));
                    }
                }
            }
        }
        Some(other) => {
            return Err(p
                .key("metrics")
                .err(format!("expected a list, found {}", show(other))));
        }
    }
    Ok(KerasCompile {
        loss,
        optimizer,
        metrics,
    })
}

/// Reads a `compile_config` object (`{"optimizer", "loss", "metrics", ...}`).
///
/// # Errors
/// As [`loss_from_keras`] and [`optimizer_from_keras`], with the path of the value.
pub fn compile_from_keras(v: &Value) -> Result<KerasCompile, KerasError> {
    compile_at(v, &Path::default())
}

/// Writes a `compile_config` object as Keras 3 does.
pub fn compile_to_keras(c: &KerasCompile) -> Value {
    json!({
        "optimizer": c.optimizer.as_ref().map_or(Value::Null, optimizer_to_keras),
        "loss": c.loss.as_ref().map_or(Value::Null, loss_to_keras),
        "loss_weights": null,
        "metrics": c.metrics,
        "weighted_metrics": null,
        "run_eagerly": false,
        "steps_per_execution": 1,
        "jit_compile": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use microfit_core::activation::Activation;
    use microfit_core::optim::Common;

    fn err_of(json: &str) -> String {
        spec_from_keras_config(json).unwrap_err().to_string()
    }

    #[test]
    fn regularizer_errors_name_their_path() {
        let e =
            regularizer_from_keras(&json!({"class_name": "L1L2", "config": {"l1": 0.1, "l2": -1}}));
        assert_eq!(
            e.unwrap_err().to_string(),
            "config.l2: must be >= 0, got -1"
        );
        let e = regularizer_from_keras(&json!({"class_name": "L2", "config": {"l2": 1e300}}));
        let e = e.unwrap_err().to_string();
        assert!(
            e.starts_with("config.l2: 1e") && e.ends_with("300 does not fit in float32"),
            "{e}"
        );
        let e = regularizer_from_keras(&json!({"class_name": "L2", "config": {"l1": 0.1}}));
        assert!(
            e.unwrap_err()
                .to_string()
                .starts_with("config.l1: unexpected argument for L2")
        );
        let e = regularizer_from_keras(
            &json!({"class_name": "OrthogonalRegularizer", "config": {"mode": "diag"}}),
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "config.mode: must be \"rows\" or \"columns\", got \"diag\""
        );
        let e = regularizer_from_keras(&json!("l1_l2"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("could not interpret regularizer identifier `l1_l2`"),
            "{e}"
        );
        assert!(
            regularizer_from_keras(&json!({"class_name": "L2", "config": {"l2": "big"}})).is_err()
        );
        assert!(regularizer_from_keras(&json!(3)).is_err());
        assert!(regularizer_from_keras(&json!({"config": {}})).is_err());
        assert_eq!(regularizer_from_keras(&Value::Null), Ok(None));
        // Integers are numbers too (Keras accepts `L2(1)`).
        assert_eq!(
            regularizer_from_keras(&json!({"class_name": "L2", "config": {"l2": 1}})),
            Ok(Some(Reg::L2 { l2: 1.0 }))
        );
    }

    #[test]
    fn model_errors_name_their_path() {
        let head =
            r#"{"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 4]}},"#;
        assert_eq!(
            err_of(&format!(
                r#"{head} {{"class_name": "Dense", "config": {{"units": 0}}}}]}}"#
            )),
            "layers[1].config.units: expected a positive integer, found 0"
        );
        assert_eq!(
            err_of(&format!(
                r#"{head} {{"class_name": "Dense", "config": {{"units": 2, "activation": "gelu"}}}}]}}"#
            )),
            "layers[1].config.activation: unsupported activation `gelu` (microfit knows linear, relu, sigmoid, tanh, softmax, leaky_relu)"
        );
        let e = spec_from_keras_config(&format!(
            r#"{head} {{"class_name": "Dense", "config": {{"units": 2}}}}, {{"class_name": "LSTM", "config": {{}}}}]}}"#
        ))
        .unwrap_err();
        assert!(
            matches!(&e, KerasError::Unsupported { layer, class_name, .. } if layer == "layers[2]" && class_name == "LSTM")
        );
        assert!(
            e.to_string().starts_with(
                "layers[2]: LSTM is not supported (microfit supports InputLayer, Dense"
            )
        );
        let e = err_of(&format!(
            r#"{head} {{"class_name": "BatchNormalization", "config": {{"name": "bn"}}}}]}}"#
        ));
        assert!(
            e.starts_with("bn: BatchNormalization is not supported (layers[1]; microfit supports"),
            "{e}"
        );
        let e = err_of(
            r#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"units": 2}}]}}"#,
        );
        assert!(
            e.starts_with("config.layers: the input shape is unknown"),
            "{e}"
        );
        let e = err_of(&format!(
            r#"{head} {{"class_name": "Dense", "config": {{"units": 2}}, "build_config": {{"input_shape": [null, 5]}}}}]}}"#
        ));
        assert!(
            e.starts_with("layers[1].build_config.input_shape: declares input shape [5]"),
            "{e}"
        );
        assert!(matches!(
            spec_from_keras_config("{"),
            Err(KerasError::Json { .. })
        ));
        assert!(
            err_of(r#"{"class_name": "Functional", "config": {}}"#)
                .starts_with("class_name: only Sequential")
        );
        let e = err_of(&format!(
            r#"{head} {{"class_name": "Dense", "config": {{"units": 2, "kernel_constraint": {{"class_name": "RadialConstraint"}}}}}}]}}"#
        ));
        assert!(e.starts_with("layers[1].config.kernel_constraint"), "{e}");
        // An activity OrthogonalRegularizer is refused by the spec check, with the Keras path.
        let e = err_of(&format!(
            r#"{head} {{"class_name": "Dense", "config": {{"units": 2, "activity_regularizer": "orthogonal_regularizer"}}}}]}}"#
        ));
        assert!(
            e.starts_with("layers[1].config.activity_regularizer: "),
            "{e}"
        );
    }

    #[test]
    fn legacy_tf_keras_config_reads() {
        let json = r#"{"class_name": "Sequential", "config": {"name": "s", "layers": [
            {"class_name": "Dense", "config": {"units": 3, "activation": "tanh", "batch_input_shape": [null, 2],
             "kernel_initializer": {"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_in", "distribution": "uniform", "seed": null}},
             "bias_initializer": {"class_name": "Constant", "config": {"value": 0.5}},
             "kernel_regularizer": {"class_name": "L1L2", "config": {"l1": 0.009999999776482582, "l2": 0.0}}}}]},
            "compile_config": {"optimizer": "adamw", "loss": {"class_name": "BinaryCrossentropy", "config": {"from_logits": true, "label_smoothing": 0.0}}, "metrics": ["accuracy"]}}"#;
        let (spec, compile) = spec_from_keras_config(json).unwrap();
        assert_eq!(spec.input_shape, vec![2]);
        let LayerSpec::Dense { units, config } = &spec.layers[0] else {
            panic!()
        };
        assert_eq!(*units, 3);
        assert_eq!(config.activation, Activation::Tanh);
        assert_eq!(config.kernel_initializer, Initializer::HeUniform);
        assert_eq!(config.bias_initializer, Initializer::Constant(0.5));
        assert_eq!(
            config.kernel_regularizer,
            Some(Reg::L1L2 { l1: 0.01, l2: 0.0 })
        );
        let c = compile.unwrap();
        assert_eq!(
            c.loss,
            Some(Loss::BinaryCrossentropy {
                from_logits: true,
                label_smoothing: 0.0
            })
        );
        assert_eq!(c.metrics, vec!["accuracy".to_string()]);
        let config = c.optimizer.unwrap();
        assert_eq!(config.kind, OptimizerKind::AdamW);
        assert_eq!(config.common.weight_decay, Some(0.004));
        assert_eq!(config.learning_rate, Schedule::Constant(0.001));
    }

    #[test]
    fn file_config_round_trips_with_compile() {
        let spec = ModelSpec {
            input_shape: vec![3],
            layers: vec![
                LayerSpec::dense(5, Activation::LeakyRelu(0.2))
                    .with_bias_regularizer(Reg::L1 { l1: 0.5 })
                    .with_activity_regularizer(Reg::L1L2 { l1: 0.0, l2: 1e-4 }),
                LayerSpec::dense(2, Activation::Sigmoid).with_kernel_regularizer(Reg::Orthogonal {
                    factor: 0.1,
                    mode: OrthoMode::Columns,
                }),
            ],
        };
        let mut adam = OptimizerConfig::new(
            OptimizerKind::Adam,
            Schedule::Exponential(ExponentialDecay::new(0.01, 100, 0.5, true).unwrap()),
        );
        adam.common.clip.clipnorm = Some(1.0);
        let compile = KerasCompile {
            loss: Some(Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            }),
            optimizer: Some(adam),
            metrics: vec!["accuracy".into()],
        };
        let v = keras_file_config(&spec, Some(&compile)).unwrap();
        let (back, c) = spec_from_keras_config(&v.to_string()).unwrap();
        assert_eq!(back, spec);
        assert_eq!(c, Some(compile));
        // A slope Keras cannot write is an error, not a silent change.
        let bad = ModelSpec {
            input_shape: vec![1],
            layers: vec![LayerSpec::dense(1, Activation::LeakyRelu(0.3))],
        };
        assert_eq!(
            spec_to_keras_config(&bad).unwrap_err().to_string(),
            "layers[1].config.activation: leaky_relu with negative slope 0.3 has no Keras activation string (Keras' is 0.2)"
        );
    }

    #[test]
    fn optimizer_options_are_checked() {
        let e = optimizer_from_keras_class("Adam", &json!({"amsgrad": true})).unwrap_err();
        assert_eq!(e.to_string(), "amsgrad: `amsgrad` is not supported");
        let e = optimizer_from_keras_class("SGD", &json!({"momentum": 1.5})).unwrap_err();
        assert!(
            e.to_string().starts_with("momentum: must be in [0, 1]"),
            "{e}"
        );
        let e = optimizer_from_keras_class("RMSprop", &json!({})).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("class_name: unsupported optimizer `RMSprop`")
        );
        let e = optimizer_from_keras_class("Adam", &json!({"beta_1": 1.0})).unwrap_err();
        assert!(e.to_string().starts_with("beta_1: "), "{e}");
        let o = optimizer_from_keras_class("SGD", &Value::Null).unwrap();
        assert_eq!(
            o,
            OptimizerConfig::new(OptimizerKind::Sgd, Schedule::Constant(0.01))
        );
        assert_eq!(o.common, Common::default());
        assert_eq!(optimizer_from_keras(&optimizer_to_keras(&o)).unwrap(), o);
        // Keras' SGD rule: Nesterov without momentum is plain SGD (no slot).
        let o = optimizer_from_keras_class("SGD", &json!({"nesterov": true})).unwrap();
        assert_eq!((o.has_momentum(), o.slot_names().len()), (false, 0));
    }

    /// A small CNN written the way Keras 3 `get_config()` writes it (keys and defaults from
    /// Keras' `BaseConv`, `BasePooling`, `Flatten` and `Dropout` configs).
    #[test]
    fn keras_cnn_config_reads_and_round_trips() {
        let json = r#"{"name": "sequential", "trainable": true, "layers": [
          {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 8, 8, 1], "dtype": "float32", "sparse": false, "ragged": false, "name": "input_layer", "optional": false}, "registered_name": null},
          {"module": "keras.layers", "class_name": "Conv2D", "config": {"name": "conv2d", "trainable": true, "dtype": "float32",
             "filters": 4, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same", "data_format": "channels_last",
             "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": true,
             "kernel_initializer": {"module": "keras.initializers", "class_name": "HeUniform", "config": {"seed": null}, "registered_name": null},
             "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null},
             "kernel_regularizer": {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.001}, "registered_name": null},
             "bias_regularizer": null, "kernel_constraint": null, "bias_constraint": null},
           "registered_name": null, "build_config": {"input_shape": [null, 8, 8, 1]}},
          {"module": "keras.layers", "class_name": "MaxPooling2D", "config": {"name": "max_pooling2d", "trainable": true, "dtype": "float32",
             "pool_size": [2, 2], "padding": "valid", "strides": [2, 2], "data_format": "channels_last"}, "registered_name": null},
          {"module": "keras.layers", "class_name": "Dropout", "config": {"name": "dropout", "trainable": true, "dtype": "float32", "rate": 0.25, "seed": 7, "noise_shape": null}, "registered_name": null},
          {"module": "keras.layers", "class_name": "Flatten", "config": {"name": "flatten", "trainable": true, "dtype": "float32", "data_format": "channels_last"}, "registered_name": null},
          {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "units": 3, "activation": "softmax"}, "registered_name": null}
        ]}"#;
        let (spec, _) = spec_from_keras_config(json).unwrap();
        let mut conv = LayerSpec::conv2d(4, [3, 3], Activation::Relu)
            .with_strides(&[2, 2])
            .with_padding(Padding::Same)
            .with_kernel_regularizer(Reg::L2 { l2: 0.001 });
        conv.dense_config_mut().unwrap().kernel_initializer = Initializer::HeUniform;
        let expected = ModelSpec {
            input_shape: vec![8, 8, 1],
            layers: vec![
                conv,
                LayerSpec::max_pooling(&[2, 2]),
                LayerSpec::Dropout {
                    rate: 0.25,
                    seed: Some(7),
                },
                LayerSpec::Flatten,
                LayerSpec::dense(3, Activation::Softmax),
            ],
        };
        assert_eq!(spec, expected);
        let back = spec_to_keras_config(&spec).unwrap();
        assert_eq!(back["layers"][1]["config"]["strides"], json!([2, 2]));
        assert_eq!(back["layers"][1]["config"]["dilation_rate"], json!([1, 1]));
        assert_eq!(back["layers"][2]["class_name"], json!("MaxPooling2D"));
        assert_eq!(back["layers"][2]["config"]["strides"], json!([2, 2]));
        assert_eq!(
            back["layers"][5]["build_config"]["input_shape"],
            json!([null, 16])
        ); // 8x8 → 4x4x4 → 2x2x4
        assert_eq!(spec_from_keras_value(&back).unwrap().0, spec);

        // 1-D and 3-D, average pooling with its own strides, dilation.
        let spec = ModelSpec {
            input_shape: vec![12, 2],
            layers: vec![
                LayerSpec::conv1d(3, 3, Activation::Tanh).with_dilation_rate(&[2]),
                LayerSpec::average_pooling(&[2])
                    .with_strides(&[1])
                    .with_padding(Padding::Same),
                LayerSpec::Flatten,
                LayerSpec::dense(1, Activation::Sigmoid),
            ],
        };
        let j = spec_to_keras_config(&spec).unwrap();
        assert_eq!(j["layers"][2]["class_name"], json!("AveragePooling1D"));
        assert_eq!(spec_from_keras_value(&j).unwrap().0, spec);
        let spec = ModelSpec {
            input_shape: vec![4, 4, 3, 2],
            layers: vec![
                LayerSpec::conv3d(2, [2, 2, 2], Activation::Linear)
                    .with_kernel_regularizer(Reg::L1L2 { l1: 0.01, l2: 0.01 }),
                LayerSpec::Flatten,
                LayerSpec::dense(2, Activation::Linear),
            ],
        };
        let j = spec_to_keras_config(&spec).unwrap();
        assert_eq!(j["layers"][1]["class_name"], json!("Conv3D"));
        assert_eq!(spec_from_keras_value(&j).unwrap().0, spec);

        // What microfit cannot honour is an error with its path.
        let bad = |layer: &str| {
            let j = format!(
                r#"{{"layers": [{{"class_name": "InputLayer", "config": {{"batch_shape": [null, 8, 8, 1]}}}}, {layer}]}}"#
            );
            spec_from_keras_config(&j).unwrap_err().to_string()
        };
        let e = bad(
            r#"{"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3, "data_format": "channels_first"}}"#,
        );
        assert!(
            e.starts_with("layers[1].config.data_format: `channels_first` is not supported"),
            "{e}"
        );
        let e = bad(
            r#"{"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3, "groups": 2}}"#,
        );
        assert!(e.starts_with("layers[1].config.groups"), "{e}");
        let e =
            bad(r#"{"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": [3, 3, 3]}}"#);
        assert!(
            e.starts_with("layers[1].config.kernel_size: expected 2 values"),
            "{e}"
        );
        let e = bad(
            r#"{"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 3, "padding": "causal"}}"#,
        );
        assert!(
            e.starts_with("layers[1].config.padding: padding `causal` is not supported"),
            "{e}"
        );
        let e = bad(r#"{"class_name": "MaxPooling2D", "config": {"pool_size": [9, 9]}}"#);
        assert!(e.starts_with("layers[1]"), "{e}");
        let e = bad(
            r#"{"class_name": "Dropout", "config": {"rate": 0.5, "noise_shape": [null, 1, 1, 1]}}"#,
        );
        assert!(e.starts_with("layers[1].config.noise_shape"), "{e}");
        // An int kernel_size is one value per axis.
        let (s, _) = spec_from_keras_config(
            r#"{"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 8, 8, 1]}}, {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3, "strides": 1}}]}"#,
        )
        .unwrap();
        assert_eq!(
            s.layers[0],
            LayerSpec::conv2d(2, [3, 3], Activation::Linear)
        );
    }

    /// Every path of a valid config (model, layers, regularizers, compile config) replaced by
    /// an arbitrary value: reading returns `Ok` or an error, never panics.
    #[test]
    fn no_panic_on_any_value_anywhere() {
        use proptest::prelude::*;
        let spec = ModelSpec {
            input_shape: vec![6, 6, 1],
            layers: vec![
                LayerSpec::conv2d(2, [3, 3], Activation::Relu)
                    .with_kernel_regularizer(Reg::L2 { l2: 0.01 })
                    .with_activity_regularizer(Reg::L1L2 { l1: 0.01, l2: 0.0 }),
                LayerSpec::max_pooling(&[2, 2]),
                LayerSpec::Dropout {
                    rate: 0.5,
                    seed: None,
                },
                LayerSpec::Flatten,
                LayerSpec::dense(3, Activation::Softmax)
                    .with_kernel_regularizer(Reg::Orthogonal {
                        factor: 0.1,
                        mode: OrthoMode::Rows,
                    })
                    .with_bias_regularizer(Reg::L1 { l1: 0.1 }),
            ],
        };
        let compile = KerasCompile {
            loss: Some(Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            }),
            optimizer: Some(optimizer_from_keras_class("SGD", &json!({"momentum": 0.9})).unwrap()),
            metrics: vec!["accuracy".into()],
        };
        let base = keras_file_config(&spec, Some(&compile)).unwrap();
        assert_eq!(spec_from_keras_value(&base).unwrap().0, spec);
        // Every JSON pointer of the config.
        fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
            out.push(at.clone());
            match v {
                Value::Object(m) => m
                    .iter()
                    .for_each(|(k, x)| pointers(x, format!("{at}/{k}"), out)),
                Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .for_each(|(i, x)| pointers(x, format!("{at}/{i}"), out)),
                _ => {}
            }
        }
        let mut ptrs = Vec::new();
        pointers(&base, String::new(), &mut ptrs);
        let any_value = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            prop::num::f64::NORMAL.prop_map(|f| json!(f)),
            Just(json!(1e300)),
            Just(json!(-0.0)),
            "[a-z_0-9]{0,12}".prop_map(Value::String),
            Just(json!([])),
            Just(json!([null, 0])),
            Just(json!({})),
            Just(json!({"class_name": "L2", "config": {"l2": -1}})),
        ];
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
        runner
            .run(&(0..ptrs.len(), any_value), |(i, v)| {
                let mut cfg = base.clone();
                if let Some(slot) = cfg.pointer_mut(&ptrs[i]) {
                    *slot = v;
                }
                let _ = spec_from_keras_value(&cfg);
                let _ = spec_from_keras_config(&cfg.to_string());
                Ok(())
            })
            .unwrap();
        // And every value of the file at every path, exhaustively, for a few fixed values.
        for p in &ptrs {
            for v in [
                Value::Null,
                json!(0),
                json!(-1.5),
                json!("x"),
                json!([]),
                json!({}),
            ] {
                let mut cfg = base.clone();
                if let Some(slot) = cfg.pointer_mut(p) {
                    *slot = v;
                }
                let _ = spec_from_keras_value(&cfg);
            }
        }
    }

    /// The toolbox in Keras 3's own serialized form (`get_config()` of the layers and the
    /// compile config, hand-written from Keras' documented keys) reads to the expected spec,
    /// and the spec written back reads to the same spec.
    #[test]
    fn toolbox_keras_config_reads_and_round_trips() {
        use microfit_core::constraint::Axes;
        let json = r#"{"class_name": "Sequential", "config": {"name": "sequential", "trainable": true, "layers": [
          {"class_name": "InputLayer", "config": {"batch_shape": [null, 6, 6, 2]}},
          {"class_name": "Conv2D", "config": {"name": "conv2d", "trainable": false, "filters": 3, "kernel_size": [3, 3],
             "activation": "relu", "kernel_constraint": {"module": "keras.constraints", "class_name": "MaxNorm", "config": {"max_value": 2.0, "axis": [0, 1, 2]}, "registered_name": null},
             "bias_constraint": {"class_name": "NonNeg", "config": {}}}},
          {"class_name": "SpatialDropout2D", "config": {"name": "sd", "rate": 0.25, "seed": 3, "data_format": "channels_last"}},
          {"class_name": "Flatten", "config": {}},
          {"class_name": "GaussianNoise", "config": {"name": "gn", "stddev": 0.1, "seed": null}},
          {"class_name": "Dense", "config": {"units": 8, "activation": "tanh",
             "kernel_constraint": {"class_name": "MinMaxNorm", "config": {"min_value": 0.5, "max_value": 1.5, "rate": 0.5, "axis": 0}}}},
          {"class_name": "AlphaDropout", "config": {"rate": 0.1, "seed": 1, "noise_shape": null}},
          {"class_name": "GaussianDropout", "config": {"rate": 0.2, "seed": null}},
          {"class_name": "ActivityRegularization", "config": {"l1": 0.01, "l2": 0.001}},
          {"class_name": "Dense", "config": {"units": 3, "activation": "softmax",
             "kernel_constraint": {"class_name": "UnitNorm", "config": {"axis": 0}}}}]},
          "compile_config": {"loss": {"class_name": "CategoricalCrossentropy", "config": {"from_logits": false, "label_smoothing": 0.1}},
            "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01, "use_ema": true, "ema_momentum": 0.9, "ema_overwrite_frequency": 5}}}}"#;
        let (spec, compile) = spec_from_keras_config(json).unwrap();
        let mut conv = LayerSpec::conv(2, 3, vec![3, 3], {
            let mut c = DenseConfig::new(Activation::Relu);
            c.trainable = false;
            c.kernel_constraint = Some(Constraint::max_norm(2.0, Axes::list(&[0, 1, 2])));
            c.bias_constraint = Some(Constraint::NonNeg);
            c
        })
        .unwrap();
        conv = conv.with_strides(&[]);
        let want = ModelSpec {
            input_shape: vec![6, 6, 2],
            layers: vec![
                conv,
                LayerSpec::SpatialDropout2D {
                    rate: 0.25,
                    seed: Some(3),
                },
                LayerSpec::Flatten,
                LayerSpec::GaussianNoise {
                    stddev: 0.1,
                    seed: None,
                },
                LayerSpec::dense(8, Activation::Tanh)
                    .with_kernel_constraint(Constraint::min_max_norm(0.5, 1.5, 0.5, Axes::one(0))),
                LayerSpec::AlphaDropout {
                    rate: 0.1,
                    seed: Some(1),
                },
                LayerSpec::GaussianDropout {
                    rate: 0.2,
                    seed: None,
                },
                LayerSpec::ActivityRegularization {
                    l1: 0.01,
                    l2: 0.001,
                },
                LayerSpec::dense(3, Activation::Softmax)
                    .with_kernel_constraint(Constraint::unit_norm(Axes::one(0))),
            ],
        };
        assert_eq!(spec, want);
        let c = compile.unwrap();
        assert_eq!(
            c.loss,
            Some(Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.1
            })
        );
        let o = c.optimizer.clone().unwrap();
        assert_eq!(
            o.ema,
            Some(EmaConfig {
                ema_momentum: 0.9,
                ema_overwrite_frequency: Some(5)
            })
        );
        // Spec → Keras JSON → spec, with the compile config.
        let back = keras_file_config(&spec, Some(&c)).unwrap();
        assert_eq!(back["config"]["layers"][1]["config"]["trainable"], false);
        assert_eq!(
            back["config"]["layers"][1]["config"]["kernel_constraint"]["class_name"],
            "MaxNorm"
        );
        assert_eq!(
            back["config"]["layers"][1]["config"]["kernel_constraint"]["config"]["axis"],
            json!([0, 1, 2])
        );
        assert_eq!(
            back["compile_config"]["loss"]["config"]["label_smoothing"],
            0.1
        );
        assert_eq!(
            back["compile_config"]["optimizer"]["config"]["use_ema"],
            true
        );
        let (spec2, c2) = spec_from_keras_value(&back).unwrap();
        assert_eq!(spec2, spec);
        assert_eq!(c2.unwrap(), c);
    }

    /// The optimizer of `optimizer_long_k3.json`'s exclusion run
    /// (`exclude_from_weight_decay: {var_names: [...]}`) and `model.trainable = False`.
    #[test]
    fn exclusions_and_a_frozen_model_read() {
        let o = optimizer_from_keras_class(
            "AdamW",
            &json!({"learning_rate": 0.01, "weight_decay": 0.1, "exclude_from_weight_decay": {"var_names": ["bias"]}}),
        )
        .unwrap();
        assert!(o.common.exclude_from_weight_decay.bias);
        assert!(!o.common.exclude_from_weight_decay.kernel);
        let json = r#"{"trainable": false, "layers": [
          {"class_name": "InputLayer", "config": {"batch_shape": [null, 4]}},
          {"class_name": "Dense", "config": {"units": 3}}]}"#;
        let (spec, _) = spec_from_keras_config(json).unwrap();
        assert!(!spec.layers[0].dense_config().unwrap().trainable);
        let e = err_of(
            r#"{"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 4]}},
              {"class_name": "Dense", "config": {"units": 3, "kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 2, "bogus": 1}}}}]}"#,
        );
        assert!(
            e.contains("layers[1].config.kernel_constraint") && e.contains("bogus"),
            "{e}"
        );
    }
}
