//! `.keras` files (Keras 3): a model's architecture, weights, optimizer state and compile
//! settings, in and out.
//!
//! A `.keras` file is a zip of three members (stored, not compressed, as Keras writes them):
//!
//! | member | what | here |
//! |---|---|---|
//! | `config.json` | `{"class_name": "Sequential", "config": {...}, "compile_config": {...}}` | [`crate::keras::spec_from_keras_value`] → the schema: [`ModelSpec`], loss, [`OptimizerConfig`] |
//! | `metadata.json` | `{"keras_version": "3.15.1", "date_saved": ...}` (Keras does not read it back) | [`KerasModel::keras_version`] |
//! | `model.weights.h5` | the variables (see [`super::keras_weights`]) | [`KerasModel::weights`], [`KerasModel::optimizer_state`] |
//!
//! **Variables.** Layer `k` of the model keeps its variables under `layers/<key>/vars/<i>`,
//! where `<key>` is the class in snake case with a counter per class (`dense`, `dense_1`,
//! `conv2d`, `max_pooling2d`: the names [`ModelSpec::build`] gives), `0` the kernel and `1`
//! the bias (absent with `use_bias=False`). Keras' layout is microfit's (`(in, out)` Dense
//! kernels, `(kh, kw, cin, cout)` conv kernels), so values are copied as they are.
//!
//! **Optimizer.** `optimizer/vars/0` is `iterations`, `1` the learning rate (a variable only
//! when the rate is a constant), then, for each trainable variable in model order, its slots:
//! Adam `m`, `v`; SGD with momentum its `momentum`; plain SGD none. Loading restores them into
//! the optimizer (with the stored learning rate, which is what Keras uses after loading), so the
//! next update is step `iterations + 1`. A compiled model that was never fitted holds only
//! `iterations` and the learning rate; Keras then starts from a fresh optimizer, and so does
//! microfit.
//!
//! **Strict.** A layer class or option microfit does not support is an error naming the layer
//! and its class (`bn: BatchNormalization is not supported (config.layers[2]; ...)`), and so is
//! any stored variable the model has no place for, a missing one, or a shape that does not fit:
//! nothing is skipped silently. An optimizer or loss microfit does not have (`RMSprop`,
//! `huber`) leaves the model readable for inference and is kept as
//! [`KerasModel::compile_error`], which [`KerasModel::optimizer`] returns.
//!
//! ```
//! use microfit::core::prelude::*;
//! use microfit::formats::KerasModel;
//! use microfit::model::{LayerSpec, ModelSpec};
//! use microfit::spec::OptimizerConfig;
//! let spec = ModelSpec {
//!     input_shape: vec![4],
//!     layers: vec![LayerSpec::dense(3, Activation::Softmax)],
//! };
//! let model = spec.build(42)?;
//! let adam = OptimizerConfig::adam(0.01);
//! let state = adam.build(&model.params)?;
//! let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
//! let file = KerasModel::from_trained(&model, Some((&adam, &state)), Some(loss));
//! let back = KerasModel::from_bytes(&file.to_bytes()?, "m.keras")?;
//! assert_eq!(back.weights, model.params);
//! assert_eq!(back.loss, Some(loss));
//! let rebuilt = back.build(0)?;
//! assert_eq!(rebuilt.params.tensors, model.params.tensors);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{Cursor, Read, Write};
use std::path::Path;

use microfit_core::loss::Loss;
use microfit_core::optim::AnyOptimizer;
use microfit_core::optim::schedule::Schedule;
use serde_json::{Value, json};

use super::FormatError;
use super::keras_config::{
    KerasCompile, KerasError, compile_from_keras, keras_file_config, optimizer_class_name,
    spec_from_keras_value,
};
use super::keras_weights::{StoreEntry, StoredVar, VarValues, WeightsStore};
use super::model_file::{OptimizerState, SlotState};
use super::schema::{ModelSpec, OptimizerConfig};
use crate::model::{Sequential, VecParams};

/// The Keras version whose `.keras` layout this module writes (and was checked against).
pub const KERAS_VERSION: &str = "3.15.1";

/// Largest `config.json` / `metadata.json` read (bytes).
const MAX_JSON: u64 = 64 << 20;
/// Largest `model.weights.h5` read (bytes).
const MAX_WEIGHTS: u64 = 2 << 30;

const CONFIG: &str = "config.json";
const METADATA: &str = "metadata.json";
const WEIGHTS: &str = "model.weights.h5";

/// A Keras model as microfit reads and writes it: the model, its weights, its compile settings
/// and its optimizer's state.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasModel {
    /// The architecture.
    pub spec: ModelSpec,
    /// Each layer's Keras name (`config.name`: `"hidden"`, `"out"`), one per `spec.layers`.
    pub layer_names: Vec<String>,
    /// The weights in [`Sequential`] order (every layer's kernel then bias), named
    /// `<layer name>/kernel`, `<layer name>/bias` after [`KerasModel::layer_names`]; a layer
    /// without bias keeps a zero bias here (Keras stores none).
    pub weights: VecParams,
    /// The compiled loss.
    pub loss: Option<Loss>,
    /// The compiled optimizer (its learning rate is the stored one when the file has it).
    pub optimizer: Option<OptimizerConfig>,
    /// The compiled metrics (names as written).
    pub metrics: Vec<String>,
    /// The optimizer's variables (iterations, slots in [`Sequential`] order), when the file
    /// holds a fitted optimizer.
    pub optimizer_state: Option<OptimizerState>,
    /// `metadata.json`'s `keras_version`, when read from a file.
    pub keras_version: Option<String>,
    /// Why the file's `compile_config` cannot be used (an optimizer or loss microfit does not
    /// have, e.g. `RMSprop`): the architecture and weights are still read, so the model can
    /// predict and be evaluated with another loss, but `loss`, `optimizer` and
    /// `optimizer_state` are empty and [`KerasModel::optimizer`] returns this error, so
    /// training from the file reports it instead of starting another optimizer silently.
    pub compile_error: Option<FormatError>,
}

/// For each spec layer, its Keras variables (`vars/0`, `vars/1`, ...) as indices into the
/// [`Sequential`] parameters: `[kernel, bias]`, `[kernel]` without bias, `[]` without weights.
fn keras_variables(spec: &ModelSpec, params: &VecParams, keys: &[String]) -> Vec<Vec<usize>> {
    spec.layers
        .iter()
        .zip(keys)
        .map(|(l, key)| {
            let Some(cfg) = l.dense_config() else {
                return Vec::new();
            };
            let bias = params
                .index_of(&format!("{key}/bias"))
                .filter(|_| cfg.use_bias);
            params
                .index_of(&format!("{key}/kernel"))
                .into_iter()
                .chain(bias)
                .collect()
        })
        .collect()
}

impl KerasModel {
    /// Reads a `.keras` file.
    ///
    /// # Errors
    /// [`FormatError::Io`] if the file cannot be read; otherwise as [`KerasModel::from_bytes`].
    pub fn load(path: &Path) -> Result<Self, FormatError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| FormatError::Io {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        Self::from_bytes(&bytes, &file)
    }

    /// Reads a `.keras` file from its bytes; `file` names it in errors.
    ///
    /// # Errors
    /// [`FormatError::Keras`] for a configuration microfit does not support (naming the layer
    /// and its class), [`FormatError::Invalid`] for anything else: not a zip, a missing member,
    /// invalid JSON, a variable missing, left over or of the wrong shape, an optimizer whose
    /// variables do not match the compiled optimizer.
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<Self, FormatError> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            FormatError::invalid(file, "zip", format!("not a .keras (zip) file: {e}"))
        })?;
        let config_text = member(&mut zip, file, CONFIG, MAX_JSON)?
            .ok_or_else(|| FormatError::invalid(file, CONFIG, "missing from the archive"))?;
        let config: Value = serde_json::from_slice(&config_text)
            .map_err(|e| FormatError::invalid(file, CONFIG, format!("invalid JSON: {e}")))?;
        let keras_version = match member(&mut zip, file, METADATA, MAX_JSON)? {
            None => None,
            Some(m) => {
                let v: Value = serde_json::from_slice(&m).map_err(|e| {
                    FormatError::invalid(file, METADATA, format!("invalid JSON: {e}"))
                })?;
                v.get("keras_version")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }
        };
        let weights_bytes = member(&mut zip, file, WEIGHTS, MAX_WEIGHTS)?
            .ok_or_else(|| FormatError::invalid(file, WEIGHTS, "missing from the archive"))?;

        let (spec, compile, compile_error) = read_config(&config, file)?;
        let KerasCompile {
            loss,
            optimizer,
            metrics,
        } = compile;
        let mut optimizer = optimizer;
        let model = spec.build(0).map_err(|e| {
            FormatError::invalid(file, CONFIG, format!("{}: {}", e.field, e.reason))
        })?;
        let keys = &model.layer_names;
        let layer_names = keras_layer_names(&config, keys);

        let wfile = format!("{file}: {WEIGHTS}");
        let mut store = WeightsStore::from_bytes(&weights_bytes, &wfile)?;
        let vars = keras_variables(&spec, &model.params, keys);
        let mut weights = model.params.clone();
        for (k, key) in keys.iter().enumerate() {
            let path = format!("layers/{key}");
            let entry = store.entries.remove(&path).unwrap_or_default();
            if entry.vars.len() != vars[k].len() {
                return Err(FormatError::invalid(
                    &wfile,
                    format!("{path}/vars"),
                    format!(
                        "layer `{}` ({}) has {} variables, the file has {}",
                        layer_names[k],
                        spec.layers[k].kind(),
                        vars[k].len(),
                        entry.vars.len()
                    ),
                ));
            }
            for (i, (&p, var)) in vars[k].iter().zip(&entry.vars).enumerate() {
                weights.tensors[p] =
                    f32_values(var, &weights.shapes[p], &wfile, &format!("{path}/vars/{i}"))?;
            }
            // Named after the Keras layer (`hidden/kernel`), as Keras names its variables.
            for part in ["kernel", "bias"] {
                if let Some(i) = weights.index_of(&format!("{key}/{part}")) {
                    weights.names[i] = format!("{}/{part}", layer_names[k]);
                }
            }
        }

        let opt_entry = store.entries.remove("optimizer");
        let optimizer_state = match (&mut optimizer, opt_entry) {
            (_, None) => None,
            // The optimizer's variables belong to the optimizer microfit cannot build.
            (None, Some(_)) if compile_error.is_some() => None,
            (None, Some(e)) if e.vars.is_empty() => None,
            (None, Some(_)) => {
                return Err(FormatError::invalid(
                    &wfile,
                    "optimizer/vars",
                    "optimizer variables, but config.json compiles no optimizer",
                ));
            }
            (Some(o), Some(e)) => read_optimizer(o, &e, &vars.concat(), &weights, &wfile)?,
        };
        if let Some((path, _)) = store.entries.iter().find(|(_, e)| !e.vars.is_empty()) {
            return Err(FormatError::invalid(
                &wfile,
                format!("{path}/vars"),
                "variables of an object the model does not have",
            ));
        }
        Ok(KerasModel {
            spec,
            layer_names,
            weights,
            loss,
            optimizer,
            metrics,
            optimizer_state,
            keras_version,
            compile_error,
        })
    }

    /// The model with these weights. `seed` only seeds the `Dropout` layers' generator.
    ///
    /// # Errors
    /// [`FormatError::Invalid`] if the weights do not fit the spec (a hand-edited
    /// [`KerasModel`]).
    pub fn build(&self, seed: u64) -> Result<Sequential, FormatError> {
        let mut m = self
            .spec
            .build(seed)
            .map_err(|e| FormatError::invalid("model", &e.field, e.reason))?;
        if m.params.shapes != self.weights.shapes {
            return Err(FormatError::invalid(
                "model",
                "weights",
                format!(
                    "shapes {:?} do not fit the model's {:?}",
                    self.weights.shapes, m.params.shapes
                ),
            ));
        }
        m.params.tensors.clone_from(&self.weights.tensors);
        Ok(m)
    }

    /// The compiled optimizer for `model` (built by [`KerasModel::build`]), with the file's
    /// state restored when it has one (iterations, Adam `m` and `v`, SGD momentum), so the
    /// next update continues where Keras stopped. `None` if the model was not compiled with
    /// an optimizer.
    ///
    /// # Errors
    /// [`KerasModel::compile_error`] when the file's optimizer or loss is not one microfit
    /// has; [`FormatError::Invalid`] if a hyperparameter is out of range or the state does not
    /// fit `model`.
    pub fn optimizer(
        &self,
        model: &Sequential,
    ) -> Result<Option<AnyOptimizer<VecParams>>, FormatError> {
        if let Some(e) = &self.compile_error {
            return Err(e.clone());
        }
        let Some(config) = &self.optimizer else {
            return Ok(None);
        };
        let mut opt = config
            .build(&model.params)
            .map_err(|e| FormatError::invalid("model", "optimizer", e.to_string()))?;
        if let Some(state) = &self.optimizer_state {
            state
                .restore(&mut opt)
                .map_err(|e| FormatError::invalid("model", "optimizer", e))?;
        }
        Ok(Some(opt))
    }

    /// A trained model as a `.keras` model: its spec, weights and layer names, and, when given,
    /// its optimizer (configuration and state) and loss.
    pub fn from_trained(
        model: &Sequential,
        optimizer: Option<(&OptimizerConfig, &AnyOptimizer<VecParams>)>,
        loss: Option<Loss>,
    ) -> Self {
        KerasModel {
            spec: model.spec().clone(),
            layer_names: model.layer_names.clone(),
            weights: model.params.clone(),
            loss,
            optimizer: optimizer.map(|(c, _)| c.clone()),
            metrics: Vec::new(),
            optimizer_state: optimizer.map(|(_, o)| OptimizerState::capture(o)),
            keras_version: None,
            compile_error: None,
        }
    }

    /// Writes the `.keras` file atomically (see [`crate::modelfile::atomic_write`]).
    ///
    /// # Errors
    /// As [`KerasModel::to_bytes`], and [`FormatError::Io`].
    pub fn save(&self, path: &Path) -> Result<(), FormatError> {
        let bytes = self.to_bytes()?;
        crate::modelfile::atomic_write(path, &bytes).map_err(|e| FormatError::Io {
            file: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// The `.keras` file's bytes: `metadata.json`, `config.json` and `model.weights.h5`,
    /// stored (as Keras writes them); the same model gives the same bytes.
    ///
    /// # Errors
    /// [`FormatError::Keras`] if the spec holds something Keras cannot express,
    /// [`FormatError::Invalid`] if the weights, names or optimizer state do not fit the spec.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        let file = "model";
        let compile = KerasCompile {
            loss: self.loss,
            optimizer: self.optimizer.clone(),
            metrics: self.metrics.clone(),
        };
        let keras_err = |error: KerasError| FormatError::Keras {
            file: file.to_string(),
            layer: None,
            error: Box::new(error),
        };
        let mut config = keras_file_config(&self.spec, Some(&compile)).map_err(keras_err)?;
        if self.layer_names.len() != self.spec.layers.len() {
            return Err(FormatError::invalid(
                file,
                "layer_names",
                format!(
                    "{} names for {} layers",
                    self.layer_names.len(),
                    self.spec.layers.len()
                ),
            ));
        }
        if let Some(layers) = config["config"]["layers"].as_array_mut() {
            // layers[0] is the InputLayer.
            for (l, name) in layers.iter_mut().skip(1).zip(&self.layer_names) {
                l["config"]["name"] = json!(name);
            }
        }
        let model = self.build(0)?;
        let keys = &model.layer_names;
        let vars = keras_variables(&self.spec, &model.params, keys);

        let mut store = WeightsStore::default();
        store.entries.insert(
            String::new(),
            StoreEntry {
                name: Some("sequential".into()),
                vars: Vec::new(),
            },
        );
        let var = |p: usize, values: &[f32]| {
            StoredVar::f32(self.weights.shapes[p].clone(), values.to_vec())
        };
        for (k, key) in keys.iter().enumerate() {
            let vs = vars[k]
                .iter()
                .map(|&p| var(p, &self.weights.tensors[p]))
                .collect();
            store.entries.insert(
                format!("layers/{key}"),
                StoreEntry {
                    name: Some(self.layer_names[k].clone()),
                    vars: vs,
                },
            );
        }
        if let Some(o) = &self.optimizer {
            let mut vs = vec![StoredVar::int_scalar(
                self.optimizer_state
                    .as_ref()
                    .map_or(0, |s| i64::from(s.iterations)),
            )];
            if let Schedule::Constant(lr) = o.learning_rate {
                vs.push(StoredVar::f32(Vec::new(), vec![lr]));
            }
            if let Some(state) = &self.optimizer_state {
                let names = o.slot_names();
                let slots: Vec<&SlotState> = names
                    .iter()
                    .map(|n| {
                        state.slots.iter().find(|s| s.name == *n).ok_or_else(|| {
                            FormatError::invalid(
                                file,
                                "optimizer",
                                format!("no `{n}` slot in the state"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?;
                for p in vars.concat() {
                    for s in &slots {
                        let t = s
                            .tensors
                            .get(p)
                            .filter(|t| t.len() == self.weights.tensors[p].len())
                            .ok_or_else(|| {
                                FormatError::invalid(
                                    file,
                                    "optimizer",
                                    format!("slot `{}` does not fit the weights", s.name),
                                )
                            })?;
                        vs.push(var(p, t));
                    }
                }
            }
            store.entries.insert(
                "optimizer".into(),
                StoreEntry {
                    name: Some(o.kind.name().into()),
                    vars: vs,
                },
            );
        }
        let weights = store.to_bytes()?;
        let metadata = json!({
            "keras_version": KERAS_VERSION,
            "saved_by": format!("microfit {}", env!("CARGO_PKG_VERSION")),
        });

        let zerr = |e: zip::result::ZipError| FormatError::invalid(file, "zip", e.to_string());
        let ioerr = |e: std::io::Error| FormatError::invalid(file, "zip", e.to_string());
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in [
            (METADATA, metadata.to_string().into_bytes()),
            (CONFIG, config.to_string().into_bytes()),
            (WEIGHTS, weights),
        ] {
            zip.start_file(name, opts).map_err(zerr)?;
            zip.write_all(&bytes).map_err(ioerr)?;
        }
        Ok(zip.finish().map_err(zerr)?.into_inner())
    }
}

/// `config.json` → the model, its compile settings, and why those cannot be used, if so (read
/// on their own: a compile config microfit cannot use leaves the model readable).
fn read_config(
    config: &Value,
    file: &str,
) -> Result<(ModelSpec, KerasCompile, Option<FormatError>), FormatError> {
    let mut model_config = config.clone();
    let compile_config = model_config
        .as_object_mut()
        .and_then(|m| m.remove("compile_config"))
        .filter(|c| !c.is_null());
    let (spec, _) = spec_from_keras_value(&model_config).map_err(|error| FormatError::Keras {
        file: file.to_string(),
        layer: layer_of_error(config, &error),
        error: Box::new(error),
    })?;
    let none = KerasCompile {
        loss: None,
        optimizer: None,
        metrics: Vec::new(),
    };
    Ok(match compile_config.as_ref().map(compile_from_keras) {
        None => (spec, none, None),
        Some(Ok(c)) => (spec, c, None),
        Some(Err(e)) => (
            spec,
            none,
            Some(FormatError::Keras {
                file: file.to_string(),
                layer: None,
                error: Box::new(under_compile_config(e)),
            }),
        ),
    })
}

/// One zip member's bytes (`None` if absent), refusing one larger than `max`.
fn member(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    file: &str,
    name: &str,
    max: u64,
) -> Result<Option<Vec<u8>>, FormatError> {
    let mut f = match zip.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(FormatError::invalid(file, name, e.to_string())),
    };
    if f.size() > max {
        return Err(FormatError::invalid(
            file,
            name,
            format!("{} bytes, more than the {max} microfit reads", f.size()),
        ));
    }
    // The declared size is only a hint: read at most `max + 1` bytes and check.
    let mut out = Vec::with_capacity(f.size().min(1 << 20) as usize);
    f.by_ref()
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| FormatError::invalid(file, name, e.to_string()))?;
    if out.len() as u64 > max {
        return Err(FormatError::invalid(
            file,
            name,
            format!("more than the {max} bytes microfit reads"),
        ));
    }
    Ok(Some(out))
}

/// A `compile_config` error with its path under `compile_config`.
fn under_compile_config(e: KerasError) -> KerasError {
    match e {
        KerasError::Invalid { path, reason } => KerasError::Invalid {
            path: if path.is_empty() {
                "compile_config".into()
            } else {
                format!("compile_config.{path}")
            },
            reason,
        },
        other => other,
    }
}

/// The Keras layers of a config (without the `InputLayer`).
fn config_layers(config: &Value) -> Vec<&Value> {
    config
        .get("config")
        .unwrap_or(config)
        .get("layers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|l| l.get("class_name").and_then(Value::as_str) != Some("InputLayer"))
                .collect()
        })
        .unwrap_or_default()
}

/// Each layer's `config.name` (the class key when a layer has none).
fn keras_layer_names(config: &Value, keys: &[String]) -> Vec<String> {
    let layers = config_layers(config);
    keys.iter()
        .enumerate()
        .map(|(k, key)| {
            layers
                .get(k)
                .and_then(|l| l["config"]["name"].as_str())
                .map_or_else(|| key.clone(), str::to_string)
        })
        .collect()
}

/// `(name, class)` of the layer a conversion error is in (its path starts `config.layers[i]`).
fn layer_of_error(config: &Value, e: &KerasError) -> Option<(String, String)> {
    let path = match e {
        KerasError::Invalid { path, .. } => path,
        KerasError::Unsupported { layer, .. } => layer,
        _ => return None,
    };
    let rest = path
        .strip_prefix("config.layers[")
        .or_else(|| path.strip_prefix("layers["))?;
    let i: usize = rest.split(']').next()?.parse().ok()?;
    let l = config
        .get("config")
        .unwrap_or(config)
        .get("layers")?
        .get(i)?;
    let class = l.get("class_name")?.as_str()?.to_string();
    let name = l["config"]["name"]
        .as_str()
        .map_or_else(|| format!("layers[{i}]"), str::to_string);
    Some((name, class))
}

/// A float32 variable of exactly `shape`.
fn f32_values(
    v: &StoredVar,
    shape: &[usize],
    file: &str,
    at: &str,
) -> Result<Vec<f32>, FormatError> {
    match &v.values {
        VarValues::F32(x) if v.shape == shape => Ok(x.clone()),
        VarValues::F32(_) => Err(FormatError::invalid(
            file,
            at,
            format!("shape {:?}, the model needs {shape:?}", v.shape),
        )),
        VarValues::Int(_) => Err(FormatError::invalid(
            file,
            at,
            "an integer variable, expected float32",
        )),
    }
}

/// The optimizer's variables → its state; `o`'s constant learning rate becomes the stored one.
fn read_optimizer(
    o: &mut OptimizerConfig,
    e: &StoreEntry,
    trainable: &[usize],
    weights: &VecParams,
    file: &str,
) -> Result<Option<OptimizerState>, FormatError> {
    let lr_var = matches!(o.learning_rate, Schedule::Constant(_));
    let names = o.slot_names();
    let head = 1 + usize::from(lr_var);
    let full = head + names.len() * trainable.len();
    let at = |i: usize| format!("optimizer/vars/{i}");
    if e.vars.len() != full {
        if e.vars.len() == head {
            // Compiled, never fitted: Keras skips these and starts fresh.
            return Ok(None);
        }
        return Err(FormatError::invalid(
            file,
            "optimizer/vars",
            format!(
                "{} variables; {} over the model's {} trainable variables has {full} (or {head} before its first step)",
                e.vars.len(),
                optimizer_class_name(o),
                trainable.len()
            ),
        ));
    }
    let iterations = match &e.vars[0] {
        StoredVar {
            shape,
            values: VarValues::Int(v),
        } if shape.is_empty() && v.len() == 1 => u32::try_from(v[0]).map_err(|_| {
            FormatError::invalid(file, at(0), format!("iterations {} is out of range", v[0]))
        })?,
        _ => {
            return Err(FormatError::invalid(
                file,
                at(0),
                "iterations must be an integer scalar",
            ));
        }
    };
    if lr_var {
        let lr = f32_values(&e.vars[1], &[], file, &at(1))?[0];
        if !(lr.is_finite() && lr > 0.0) {
            return Err(FormatError::invalid(
                file,
                at(1),
                format!("learning rate {lr} must be finite and > 0"),
            ));
        }
        o.learning_rate = Schedule::Constant(lr);
    }
    let mut slots: Vec<SlotState> = names
        .iter()
        .map(|n| SlotState {
            name: (*n).to_string(),
            tensors: weights.tensors.iter().map(|t| vec![0.0; t.len()]).collect(),
        })
        .collect();
    let mut i = head;
    for &p in trainable {
        for s in &mut slots {
            s.tensors[p] = f32_values(&e.vars[i], &weights.shapes[p], file, &at(i))?;
            i += 1;
        }
    }
    Ok(Some(OptimizerState { iterations, slots }))
}
