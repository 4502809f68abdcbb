//! The trained-model file (`model.mfit`, also used for `checkpoint.mfit`).
//!
//! # Format (version 4; versions 1 to 3 are still read)
//! ```text
//! offset  size  what
//! 0       4     magic b"MFIT"
//! 4       2     format version, u16 little-endian (4)
//! 6       4     payload length N, u32 little-endian
//! 10      N     payload: a postcard-encoded `ModelFile`
//! 10+N    4     CRC-32 (IEEE, as zlib/PNG) of the payload, u32 little-endian
//! ```
//! The payload holds the training spec actually used (TOML text, so the format does not depend
//! on the serde layout of the model types), the data description (source, feature and class
//! names, a fingerprint), the fitted scaler, the weights with their Keras names and shapes, the
//! optimizer state (slots and iteration count), the training progress (epochs done, history,
//! early-stopping state) and the state of the random generators — the model's and each
//! `Dropout` layer's own stream — and the toolbox's state ([`ToolboxState`]: the frozen
//! layers' weights, `ReduceLROnPlateau`'s counters and the learning rate it set), which is what
//! `--resume` needs; an EMA's averages are the optimizer slot `average`. Version 3 is the same
//! payload without its last field, version 2 (one generator for every dropout layer) without
//! its last two, version 1 without its last three.
//!
//! Files are written atomically: to a temporary file in the same directory, flushed to disk,
//! then renamed over the target, so a crash leaves either the old file or the new one.
//! Loading checks, in order: length, magic, version, payload length, CRC, decoding, and that
//! the weights fit the spec; each failure is a [`ModelFileError`] naming the file.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use microfit_core::activation::Activation;
use microfit_core::loss::Loss;
use microfit_core::optim::{AnyOptimizer, Optimizer};
use microfit_core::train::Trainable;
use serde::{Deserialize, Serialize};

use super::schema::{
    DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DataConfig, OptimizerConfig, RunOptimizer, SplitConfig,
};
use super::toml_spec::{DataShape, ModelOverrides, SpecFile};
use super::{FormatError, KerasModel};
use crate::callbacks::PlateauState;
use crate::data::Scaler;
use crate::history::History;
use crate::model::{Sequential, VecParams};

pub use super::schema::TrainConfig;

/// File magic.
pub const MAGIC: [u8; 4] = *b"MFIT";
/// Current format version (4: with the toolbox's state; versions 1 to 3 are still read).
pub const FORMAT_VERSION: u16 = 4;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 10;
/// Bytes after the payload (the CRC).
pub const TRAILER_LEN: usize = 4;

/// What the model was trained on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DataInfo {
    /// The source as given (bundled name or path).
    pub source: String,
    /// Label column as given (`None` = last).
    pub label: Option<String>,
    /// Dataset name.
    pub name: String,
    /// Feature names, in input order.
    pub feature_names: Vec<String>,
    /// Label column name.
    pub target_name: String,
    /// Class names by class index (empty for regression).
    pub class_names: Vec<String>,
    /// Classification (true) or regression.
    pub classification: bool,
    /// Samples in the whole dataset.
    pub n_samples: u64,
    /// FNV-1a hash of the whole dataset (features and targets), to refuse resuming on other data.
    pub fingerprint: u64,
}

impl DataInfo {
    /// The data shape for resolving the spec.
    pub fn shape(&self) -> DataShape {
        DataShape {
            n_features: self.feature_names.len(),
            n_classes: self.classification.then_some(self.class_names.len()),
        }
    }
}

/// One optimizer slot set (`"m"`, `"v"`, `"momentum"`), tensor by tensor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SlotState {
    /// Slot name.
    pub name: String,
    /// One tensor per weight tensor.
    pub tensors: Vec<Vec<f32>>,
}

/// Optimizer state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OptimizerState {
    /// Updates done (Keras `optimizer.iterations`).
    pub iterations: u32,
    /// The slots.
    pub slots: Vec<SlotState>,
}

impl OptimizerState {
    /// Captures an optimizer's state.
    pub fn capture(opt: &AnyOptimizer<VecParams>) -> Self {
        let slots = ["m", "v", "momentum"]
            .iter()
            .filter_map(|n| {
                opt.slot(n).map(|p| SlotState {
                    name: (*n).to_string(),
                    tensors: p.tensors.clone(),
                })
            })
            .collect();
        OptimizerState {
            iterations: opt.iterations(),
            slots,
        }
    }

    /// Captures a run's optimizer: [`OptimizerState::capture`] of the configured optimizer,
    /// then the EMA's averages as the slot `average` (Keras' optimizer variables `average`).
    pub fn capture_run(opt: &RunOptimizer<VecParams>) -> Self {
        let mut st = Self::capture(opt.any());
        if let Some(a) = opt.average() {
            st.slots.push(SlotState {
                name: "average".into(),
                tensors: a.tensors.clone(),
            });
        }
        st
    }

    /// Writes this state into a run's optimizer (built from the same spec): the slot
    /// `average` into the EMA, the others as [`OptimizerState::restore`].
    ///
    /// # Errors
    /// As [`OptimizerState::restore`]; an `average` without `use_ema`, or none with it.
    pub fn restore_run(&self, opt: &mut RunOptimizer<VecParams>) -> Result<(), String> {
        let (avg, rest): (Vec<&SlotState>, Vec<&SlotState>) =
            self.slots.iter().partition(|s| s.name == "average");
        match (avg.first(), opt.average_mut()) {
            (Some(s), Some(a)) => {
                if a.tensors.len() != s.tensors.len()
                    || a.tensors
                        .iter()
                        .zip(&s.tensors)
                        .any(|(x, y)| x.len() != y.len())
                {
                    return Err(
                        "optimizer slot \"average\" does not fit the model's weights".into(),
                    );
                }
                a.tensors.clone_from(&s.tensors);
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err("the file holds EMA averages, but the optimizer has no use_ema".into());
            }
            (None, Some(_)) => {
                return Err("the optimizer has use_ema, but the file holds no EMA averages".into());
            }
        }
        OptimizerState {
            iterations: self.iterations,
            slots: rest.into_iter().cloned().collect(),
        }
        .restore(opt.any_mut())
    }

    /// Writes this state into `opt` (built from the same spec).
    ///
    /// # Errors
    /// A message if a slot is missing or has the wrong shape.
    pub fn restore(&self, opt: &mut AnyOptimizer<VecParams>) -> Result<(), String> {
        for s in &self.slots {
            let p = opt.slot_mut(&s.name).ok_or_else(|| {
                format!(
                    "optimizer slot {:?} does not exist for this optimizer",
                    s.name
                )
            })?;
            if p.tensors.len() != s.tensors.len()
                || p.tensors
                    .iter()
                    .zip(&s.tensors)
                    .any(|(a, b)| a.len() != b.len())
            {
                return Err(format!(
                    "optimizer slot {:?} does not fit the model's weights",
                    s.name
                ));
            }
            p.tensors.clone_from(&s.tensors);
        }
        let needed = opt.slots();
        if self.slots.len() != needed {
            return Err(format!(
                "the optimizer needs {needed} slot sets, the file has {}",
                self.slots.len()
            ));
        }
        opt.set_iterations(self.iterations);
        Ok(())
    }
}

/// Early-stopping state (Keras `EarlyStopping` attributes).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EarlyStoppingState {
    /// Best monitored value so far (`+inf` before the first epoch).
    pub best: f32,
    /// Epochs since the last improvement.
    pub wait: u32,
    /// 0-based epoch of the best value.
    pub best_epoch: u32,
    /// Weights at the best epoch (when restoring them).
    pub best_weights: Option<Vec<Vec<f32>>>,
    /// 0-based epoch at which training stopped early, if it did.
    pub stopped_epoch: Option<u32>,
}

/// How far training went.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs completed.
    pub epochs_done: u32,
    /// The history of those epochs.
    pub history: History,
    /// Early-stopping state, if early stopping is on.
    pub early_stopping: Option<EarlyStoppingState>,
    /// Training is over (all epochs, or stopped early); nothing to resume.
    pub finished: bool,
}

/// Everything in a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// The training spec used (TOML).
    pub spec_toml: String,
    /// The data.
    pub data: DataInfo,
    /// The scaler fitted on the training split.
    pub scaler: Scaler,
    /// The weights (Keras names, shapes and order).
    pub weights: VecParams,
    /// The optimizer state.
    pub optimizer: OptimizerState,
    /// Training progress.
    pub progress: Progress,
    /// The state of the `Dropout` layers' random generator after the last epoch
    /// (`Rng::to_parts`), so that a resumed run draws the masks an uninterrupted one would.
    /// `None` in version-1 files (written before it was kept).
    pub rng: Option<[u64; 2]>,
    /// Each layer's dropout generator once it has drawn
    /// (`Sequential::dropout_generators`); empty in files before version 3.
    pub dropout_rngs: Vec<Option<[u64; 2]>>,
    /// The toolbox's state (empty in files before version 4).
    pub toolbox: ToolboxState,
}

/// What the regularization toolbox adds to a model file (version 4).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ToolboxState {
    /// The frozen layers' weights (`trainable = false`; Keras `non_trainable_weights`), which
    /// [`ModelFile::weights`] (the trainable ones) leaves out.
    pub frozen: VecParams,
    /// `ReduceLROnPlateau`'s counters after the last epoch.
    pub plateau: Option<PlateauState>,
    /// The learning rate `ReduceLROnPlateau` last set (`None`: the spec's).
    pub learning_rate: Option<f32>,
}

/// A version-1 file: everything but the generator state. Each later version appended fields,
/// and postcard writes a struct as its fields one after the other, so each older layout is the
/// one before it plus its new fields, and reads into the current one through the next.
#[derive(Deserialize)]
struct ModelFileV1 {
    spec_toml: String,
    data: DataInfo,
    scaler: Scaler,
    weights: VecParams,
    optimizer: OptimizerState,
    progress: Progress,
}

/// A version-2 file: version 1 and the model's generator.
#[derive(Deserialize)]
struct ModelFileV2 {
    v1: ModelFileV1,
    rng: Option<[u64; 2]>,
}

/// A version-3 file: version 2 and the dropout layers' generators (everything but the
/// toolbox's state).
#[derive(Deserialize)]
struct ModelFileV3 {
    v2: ModelFileV2,
    dropout_rngs: Vec<Option<[u64; 2]>>,
}

impl From<ModelFileV1> for ModelFileV2 {
    fn from(v1: ModelFileV1) -> Self {
        ModelFileV2 { v1, rng: None }
    }
}

impl From<ModelFileV2> for ModelFileV3 {
    fn from(v2: ModelFileV2) -> Self {
        ModelFileV3 {
            v2,
            dropout_rngs: Vec::new(),
        }
    }
}

impl From<ModelFileV3> for ModelFile {
    fn from(f: ModelFileV3) -> Self {
        let ModelFileV3 {
            v2: ModelFileV2 { v1, rng },
            dropout_rngs,
        } = f;
        ModelFile {
            spec_toml: v1.spec_toml,
            data: v1.data,
            scaler: v1.scaler,
            weights: v1.weights,
            optimizer: v1.optimizer,
            progress: v1.progress,
            rng,
            dropout_rngs,
            toolbox: ToolboxState::default(),
        }
    }
}

/// A model file that cannot be read or used.
#[derive(Debug)]
#[non_exhaustive]
pub enum ModelFileError {
    /// Reading or writing failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Shorter than a header and a trailer.
    TooShort {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// Not a microfit model file.
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first bytes found.
        found: [u8; 4],
    },
    /// Written by a newer (or unknown) format version.
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Version found.
        found: u16,
    },
    /// The payload length in the header does not match the file (truncated or padded file).
    LengthMismatch {
        /// The file.
        path: PathBuf,
        /// Payload length in the header.
        header: u64,
        /// Payload bytes actually present.
        actual: u64,
    },
    /// The checksum does not match: the file is corrupt.
    Crc {
        /// The file.
        path: PathBuf,
        /// CRC stored in the file.
        stored: u32,
        /// CRC of the payload read.
        computed: u32,
    },
    /// The payload does not decode.
    Decode {
        /// The file.
        path: PathBuf,
        /// Decoder message.
        message: String,
    },
    /// The contents are inconsistent (weights that do not fit the spec, a bad spec, ...).
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A `.keras` file that cannot be read (the error names the file and the place in it).
    Keras(FormatError),
}

impl fmt::Display for ModelFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelFileError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ModelFileError::TooShort { path, len } => write!(
                f,
                "{}: not a microfit model file: only {len} bytes (a model file has at least {})",
                path.display(),
                HEADER_LEN + TRAILER_LEN
            ),
            ModelFileError::BadMagic { path, found } => write!(
                f,
                "{}: not a microfit model file: starts with {:?}, expected \"MFIT\"",
                path.display(),
                String::from_utf8_lossy(found)
            ),
            ModelFileError::UnsupportedVersion { path, found } => write!(
                f,
                "{}: model file format version {found} is not supported (this microfit reads versions 1 to {FORMAT_VERSION})",
                path.display()
            ),
            ModelFileError::LengthMismatch {
                path,
                header,
                actual,
            } => write!(
                f,
                "{}: the header announces a {header}-byte payload but {actual} bytes are present: the file is truncated or corrupt",
                path.display()
            ),
            ModelFileError::Crc {
                path,
                stored,
                computed,
            } => write!(
                f,
                "{}: CRC32 mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupt",
                path.display()
            ),
            ModelFileError::Decode { path, message } => write!(
                f,
                "{}: the payload does not decode ({message}): the file is corrupt or from another version",
                path.display()
            ),
            ModelFileError::Invalid { path, reason } => write!(f, "{}: {reason}", path.display()),
            ModelFileError::Keras(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ModelFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ModelFileError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl ModelFile {
    /// Encodes the file: header, postcard payload, CRC.
    ///
    /// # Errors
    /// A message if encoding fails (it does not for valid values).
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let payload = postcard::to_stdvec(self).map_err(|e| e.to_string())?;
        let len = u32::try_from(payload.len())
            .map_err(|_| "model too large for the format (4 GiB)".to_string())?;
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + TRAILER_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        Ok(out)
    }

    /// Decodes and checks a file's bytes; `path` names it in errors.
    ///
    /// # Errors
    /// See [`ModelFileError`]; never panics, whatever the bytes.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<ModelFile, ModelFileError> {
        let p = || path.to_path_buf();
        if bytes.len() < HEADER_LEN + TRAILER_LEN {
            return Err(ModelFileError::TooShort {
                path: p(),
                len: bytes.len(),
            });
        }
        let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if magic != MAGIC {
            return Err(ModelFileError::BadMagic {
                path: p(),
                found: magic,
            });
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if !(1..=FORMAT_VERSION).contains(&version) {
            return Err(ModelFileError::UnsupportedVersion {
                path: p(),
                found: version,
            });
        }
        let header = u64::from(u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]));
        let actual = (bytes.len() - HEADER_LEN - TRAILER_LEN) as u64;
        if header != actual {
            return Err(ModelFileError::LengthMismatch {
                path: p(),
                header,
                actual,
            });
        }
        let payload = &bytes[HEADER_LEN..bytes.len() - TRAILER_LEN];
        let t = &bytes[bytes.len() - TRAILER_LEN..];
        let stored = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let computed = crc32fast::hash(payload);
        if stored != computed {
            return Err(ModelFileError::Crc {
                path: p(),
                stored,
                computed,
            });
        }
        let decode = |e: postcard::Error| ModelFileError::Decode {
            path: p(),
            message: e.to_string(),
        };
        let file: ModelFile = if version == 1 {
            let v1 = postcard::from_bytes::<ModelFileV1>(payload).map_err(decode)?;
            ModelFileV3::from(ModelFileV2::from(v1)).into()
        } else if version == 2 {
            let v2 = postcard::from_bytes::<ModelFileV2>(payload).map_err(decode)?;
            ModelFileV3::from(v2).into()
        } else if version == 3 {
            postcard::from_bytes::<ModelFileV3>(payload)
                .map_err(decode)?
                .into()
        } else {
            postcard::from_bytes(payload).map_err(decode)?
        };
        file.check()
            .map_err(|reason| ModelFileError::Invalid { path: p(), reason })?;
        Ok(file)
    }

    /// Reads and checks a model file.
    ///
    /// # Errors
    /// See [`ModelFileError`].
    pub fn load(path: &Path) -> Result<ModelFile, ModelFileError> {
        let bytes = std::fs::read(path).map_err(|source| ModelFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// Writes the file atomically (temporary file in the same directory, then rename).
    ///
    /// # Errors
    /// [`ModelFileError::Io`].
    pub fn save(&self, path: &Path) -> Result<(), ModelFileError> {
        let bytes = self.to_bytes().map_err(|reason| ModelFileError::Invalid {
            path: path.to_path_buf(),
            reason,
        })?;
        atomic_write(path, &bytes).map_err(|source| ModelFileError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Consistency checks done after decoding.
    fn check(&self) -> Result<(), String> {
        let w = &self.weights;
        if w.names.len() != w.tensors.len() || w.shapes.len() != w.tensors.len() {
            return Err("the weight names, shapes and tensors do not line up".into());
        }
        for ((n, s), t) in w.names.iter().zip(&w.shapes).zip(&w.tensors) {
            let size = s.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if size != Some(t.len()) {
                return Err(format!(
                    "weight {n:?} has {} values but shape {s:?}",
                    t.len()
                ));
            }
            if t.iter().any(|v| !v.is_finite()) {
                return Err(format!("weight {n:?} holds a NaN or infinite value"));
            }
        }
        let d = self.data.feature_names.len();
        if self.scaler.offset.len() != d || self.scaler.scale.len() != d {
            return Err(format!(
                "the scaler has {} offsets and {} scales for {d} features",
                self.scaler.offset.len(),
                self.scaler.scale.len()
            ));
        }
        if self
            .scaler
            .offset
            .iter()
            .chain(&self.scaler.scale)
            .any(|v| !v.is_finite())
        {
            return Err("a scaler statistic is not finite".into());
        }
        Ok(())
    }

    /// The training configuration stored in the file.
    ///
    /// # Errors
    /// [`ModelFileError::Invalid`] if the stored spec does not resolve.
    pub fn config(&self, path: &Path) -> Result<TrainConfig, ModelFileError> {
        let name = format!("{} (stored spec)", path.display());
        SpecFile::parse(&name, &self.spec_toml)
            .and_then(|s| s.resolve(&name, &self.data.shape(), None, &ModelOverrides::default()))
            .map_err(|e| ModelFileError::Invalid {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
    }

    /// Builds the model of the stored spec and loads the stored weights into it.
    ///
    /// # Errors
    /// [`ModelFileError::Invalid`] if the weights do not fit the spec.
    pub fn build_model(&self, path: &Path) -> Result<(TrainConfig, Sequential), ModelFileError> {
        let cfg = self.config(path)?;
        let invalid = |reason: String| ModelFileError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let mut model = cfg
            .model
            .build(cfg.seed)
            .map_err(|e| invalid(e.to_string()))?;
        let expected = &model.params;
        if expected.names != self.weights.names || expected.shapes != self.weights.shapes {
            return Err(invalid(format!(
                "the stored weights ({}) do not fit the stored spec ({})",
                describe(&self.weights),
                describe(expected)
            )));
        }
        model.params.tensors.clone_from(&self.weights.tensors);
        self.toolbox.restore_frozen(&mut model).map_err(invalid)?;
        Ok((cfg, model))
    }
}

impl ToolboxState {
    /// Loads the stored frozen weights into `model` (a file without them, written before
    /// version 4 or from a model without frozen layers, keeps the model's initial ones).
    ///
    /// # Errors
    /// Frozen weights that do not fit the model's frozen layers.
    pub fn restore_frozen(&self, model: &mut Sequential) -> Result<(), String> {
        if self.frozen.names.is_empty() {
            return Ok(());
        }
        let expected = &model.frozen;
        if expected.names != self.frozen.names || expected.shapes != self.frozen.shapes {
            return Err(format!(
                "the stored frozen weights ({}) do not fit the stored spec ({})",
                describe(&self.frozen),
                describe(expected)
            ));
        }
        model.frozen.tensors.clone_from(&self.frozen.tensors);
        Ok(())
    }
}

/// The first bytes of a zip archive, which a `.keras` file is.
const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";

impl ModelFile {
    /// Reads a model file, or a `.keras` file (told apart by their first bytes) as the model
    /// file [`ModelFile::from_keras`] makes of it, so every command that takes a model takes
    /// either.
    ///
    /// # Errors
    /// As [`ModelFile::load`], or [`ModelFileError::Keras`] for a `.keras` file.
    pub fn open(path: &Path) -> Result<ModelFile, ModelFileError> {
        let bytes = std::fs::read(path).map_err(|source| ModelFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if bytes.starts_with(&ZIP_MAGIC) {
            let k = KerasModel::from_bytes(&bytes, &path.display().to_string())
                .map_err(ModelFileError::Keras)?;
            Self::from_keras(&k).map_err(ModelFileError::Keras)
        } else {
            Self::from_bytes(path, &bytes)
        }
    }

    /// A `.keras` model as a model file: its architecture, weights, loss and optimizer (the
    /// optimizer's state too, when the file has one; Keras' optimizer or loss when microfit
    /// has it, else Adam and the loss its output suggests, for inference), and what a `.keras`
    /// file does not say about the data: features `feature_0`, `feature_1`, … matched by
    /// position, classes `0`, `1`, … (a cross-entropy loss) or a regression target, no scaling
    /// (Keras models take their inputs as they are).
    ///
    /// # Errors
    /// [`FormatError::Invalid`] if the weights or the optimizer state do not fit the model.
    pub fn from_keras(k: &KerasModel) -> Result<ModelFile, FormatError> {
        let model = k.build(0)?;
        let n_out = model.output_len();
        let loss = k
            .loss
            .unwrap_or_else(|| default_loss(model.output_activation(), n_out));
        let (optimizer, state) = match k.run_optimizer(&model) {
            Ok(Some(opt)) => (k.optimizer.clone().unwrap_or_default(), Some(opt)),
            Ok(None) | Err(_) => (OptimizerConfig::default(), None),
        };
        let state = match state {
            Some(s) => s,
            None => optimizer
                .build_run(&model.params)
                .map_err(|e| FormatError::invalid("model", "optimizer", e.to_string()))?,
        };
        let classification = loss.is_classification();
        let n_classes = match loss {
            Loss::BinaryCrossentropy { .. } if n_out == 1 => 2,
            _ if classification => n_out,
            _ => 0,
        };
        let n_in: usize = k.spec.input_shape.iter().product();
        let cfg = TrainConfig {
            data: DataConfig {
                source: String::new(),
                ..DataConfig::default()
            },
            epochs: DEFAULT_EPOCHS,
            batch_size: DEFAULT_BATCH_SIZE,
            seed: 0,
            shuffle: true,
            loss,
            scaling: crate::data::ScalerKind::None,
            split: SplitConfig {
                validation: 0.0,
                ..SplitConfig::default()
            },
            early_stopping: None,
            save_best: None,
            optimizer,
            model: k.spec.clone(),
            class_weight: None,
            reduce_lr_on_plateau: None,
        };
        Ok(ModelFile {
            spec_toml: cfg.to_toml(),
            data: DataInfo {
                source: String::new(),
                label: None,
                name: "keras".into(),
                feature_names: (0..n_in).map(|j| format!("feature_{j}")).collect(),
                target_name: "label".into(),
                class_names: (0..n_classes).map(|c| c.to_string()).collect(),
                classification,
                n_samples: 0,
                fingerprint: 0,
            },
            scaler: Scaler::identity(n_in),
            weights: model.params.clone(),
            optimizer: OptimizerState::capture_run(&state),
            progress: Progress::default(),
            rng: None,
            dropout_rngs: Vec::new(),
            toolbox: ToolboxState {
                frozen: model.frozen.clone(),
                ..ToolboxState::default()
            },
        })
    }
}

/// The loss a model without one is evaluated with: cross-entropy after a softmax (sparse) or a
/// sigmoid (binary), the squared error otherwise.
fn default_loss(output: Activation, outputs: usize) -> Loss {
    match output {
        Activation::Softmax => Loss::SparseCategoricalCrossentropy { from_logits: false },
        Activation::Sigmoid if outputs == 1 => Loss::BinaryCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
        _ => Loss::MeanSquaredError,
    }
}

fn describe(p: &VecParams) -> String {
    p.names
        .iter()
        .zip(&p.shapes)
        .map(|(n, s)| format!("{n} {s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// FNV-1a 64 over a dataset's features and targets (bit patterns), for resume checks.
pub fn fingerprint(features: &[f32], labels: &[u32], values: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: [u8; 4]| {
        for b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for v in features {
        eat(v.to_bits().to_le_bytes());
    }
    for l in labels {
        eat(l.to_le_bytes());
    }
    for v in values {
        eat(v.to_bits().to_le_bytes());
    }
    h
}

/// Writes `bytes` to `path` atomically: a temporary file next to it, flushed with `fsync`, then
/// renamed over `path` (the temporary file is removed if anything fails). A reader, a killed
/// process or a power cut sees the old file or the complete new one, never a mix (the directory
/// itself is not fsynced, so after a power cut the rename may not have happened yet).
///
/// # Errors
/// The I/O error.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_corruption_is_an_error_never_a_panic() {
        let f = ModelFile {
            spec_toml: "epochs = 1\n".into(),
            data: DataInfo::default(),
            scaler: Scaler::identity(0),
            weights: VecParams::default(),
            optimizer: OptimizerState::default(),
            progress: Progress::default(),
            rng: None,
            dropout_rngs: vec![None, Some([3, 5])],
            toolbox: ToolboxState::default(),
        };
        let bytes = f.to_bytes().unwrap();
        let p = Path::new("m.mfit");
        assert_eq!(ModelFile::from_bytes(p, &bytes).unwrap(), f);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(ModelFile::from_bytes(p, &b).is_err(), "flip at {i}");
        }
        for n in 0..bytes.len() {
            assert!(ModelFile::from_bytes(p, &bytes[..n]).is_err());
        }
        let mut b = bytes.clone();
        let last = HEADER_LEN + 3;
        b[last] ^= 1;
        let e = ModelFile::from_bytes(p, &b).unwrap_err().to_string();
        assert!(e.contains("CRC32 mismatch"), "{e}");
    }

    /// Files of versions 1 and 2 (the payload without its last field(s), which postcard writes
    /// last: `None` is one zero byte, an empty vector one zero byte) still load; version 3 keeps
    /// every generator.
    #[test]
    fn older_versions_load_and_version_3_keeps_the_generators() {
        let mut f = ModelFile {
            spec_toml: "epochs = 1\n".into(),
            data: DataInfo::default(),
            scaler: Scaler::identity(0),
            weights: VecParams::default(),
            optimizer: OptimizerState::default(),
            progress: Progress::default(),
            rng: None,
            dropout_rngs: Vec::new(),
            toolbox: ToolboxState::default(),
        };
        let v4 = f.to_bytes().unwrap();
        let toolbox_len = postcard::to_stdvec(&ToolboxState::default()).unwrap().len();
        let full = &v4[HEADER_LEN..v4.len() - TRAILER_LEN];
        let payload = &full[..full.len() - toolbox_len];
        assert_eq!(
            &payload[payload.len() - 2..],
            &[0, 0],
            "None, then an empty vector"
        );
        let with_version = |version: u16, p: &[u8]| {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&version.to_le_bytes());
            b.extend_from_slice(&(p.len() as u32).to_le_bytes());
            b.extend_from_slice(p);
            b.extend_from_slice(&crc32fast::hash(p).to_le_bytes());
            b
        };
        let p = Path::new("old.mfit");
        let v1 = with_version(1, &payload[..payload.len() - 2]);
        let v2 = with_version(2, &payload[..payload.len() - 1]);
        let v3 = with_version(3, payload);
        assert_eq!(ModelFile::from_bytes(p, &v1).unwrap(), f);
        assert_eq!(ModelFile::from_bytes(p, &v2).unwrap(), f);
        assert_eq!(ModelFile::from_bytes(p, &v3).unwrap(), f);
        f.rng = Some([u64::MAX - 1, 0x1234_5678_9abc_def1]);
        f.dropout_rngs = vec![None, Some([7, 9])];
        let back = ModelFile::from_bytes(p, &f.to_bytes().unwrap()).unwrap();
        assert_eq!((back.rng, &back.dropout_rngs), (f.rng, &f.dropout_rngs));
        f.toolbox.plateau = Some(PlateauState {
            best: Some(0.5),
            wait: 2,
            cooldown_counter: 1,
        });
        f.toolbox.learning_rate = Some(0.001);
        let back = ModelFile::from_bytes(p, &f.to_bytes().unwrap()).unwrap();
        assert_eq!(back.toolbox, f.toolbox);
        let mut v5 = f.to_bytes().unwrap();
        v5[4] = 5;
        let e = ModelFile::from_bytes(p, &v5).unwrap_err().to_string();
        assert!(e.contains("version 5 is not supported"), "{e}");
    }
}
