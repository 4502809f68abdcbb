//! The configuration schema and every file format microfit reads and writes, each a conversion
//! to and from the schema.
//!
//! | form | module | what |
//! |---|---|---|
//! | the schema | [`schema`] | [`schema::ModelSpec`], [`schema::LayerSpec`], [`schema::OptimizerConfig`], [`schema::TrainConfig`]: one form of layers, optimizers, losses and training settings |
//! | `spec.toml` | [`toml_spec`] (also `microfit::spec`) | the schema's serde form, every setting optional, resolved against the data |
//! | Keras JSON | [`keras_config`] (also `microfit::keras`) | `get_config()`, `config.json`, optimizers, losses, regularizers |
//! | `M.keras` (Keras 3) | [`keras_archive`] | the zip: `config.json` (model + compile config), `metadata.json`, `model.weights.h5`; as a [`KerasModel`] |
//! | `model.weights.h5` | [`keras_weights`] | Keras 3's variable store in HDF5 (`layers/dense/vars/0`, `optimizer/vars/<i>`), read and written in pure Rust |
//! | `model.mfit` | [`model_file`] (also `microfit::modelfile`) | a trained model: its TOML spec, weights, optimizer state, data description; [`model_file::ModelFile::open`] also reads a `.keras` file |
//! | `model.bin`, `model.rs`, `workload.json` | [`firmware`] (also `microfit::export`) | a trained model for a microcontroller |
//!
//! Errors of the `.keras` files are a [`FormatError`] naming the file, the place in it and what
//! is wrong.
//!
//! Fine-tuning a model Keras trained, and handing it back (the README's example):
//!
//! ```no_run
//! use microfit::core::train::{Samples, Targets, Trainer};
//! use microfit::formats::KerasModel;
//!
//! let k = KerasModel::load("model_trained.keras".as_ref())?;     // Sequential, compiled, fitted
//! let model = k.build(0)?;                                       // the weights Keras saved
//! let opt = k.optimizer(&model)?.expect("compiled");             // Adam m, v, iterations restored
//! let mut trainer = Trainer::new(model, opt, k.loss.expect("compiled"));
//! let (x, y) = (vec![0.0f32; 4 * 2], vec![0u32, 1]);
//! let data = Samples::new(&x, 4, Targets::Classes(&y))?;
//! trainer.fit_epoch(&data, 32, None)?;                           // step iterations + 1, as in Keras
//! KerasModel::from_trained(&trainer.model, k.optimizer.as_ref().map(|c| (c, &trainer.optimizer)), k.loss)
//!     .save("fine_tuned.keras".as_ref())?;                        // keras.saving.load_model reads it
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use keras_config::KerasError;

pub mod firmware;
pub mod keras_archive;
pub mod keras_config;
pub mod keras_weights;
pub mod model_file;
pub mod schema;
pub mod toml_spec;

pub use keras_archive::KerasModel;

/// A model file that cannot be read or written.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FormatError {
    /// The file system refused (missing file, no permission, disk full).
    Io {
        /// The file.
        file: String,
        /// The operating system's message.
        reason: String,
    },
    /// The file is damaged, or holds something microfit does not read.
    Invalid {
        /// The file.
        file: String,
        /// Where in it (`model.weights.h5: layers/dense/vars/0`).
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// The model's Keras configuration (`config.json`) is not one microfit supports.
    Keras {
        /// The file.
        file: String,
        /// The layer the error is in, as `(name, class)` (`("bn", "BatchNormalization")`).
        layer: Option<(String, String)>,
        /// The conversion's error (it names the JSON path).
        error: Box<KerasError>,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Io { file, reason } => write!(f, "{file}: {reason}"),
            FormatError::Invalid { file, at, reason } => write!(f, "{file}: {at}: {reason}"),
            FormatError::Keras { file, layer, error } => match (layer, &**error) {
                // An unsupported class names the layer itself.
                (Some(_), KerasError::Unsupported { .. }) | (None, _) => {
                    write!(f, "{file}: config.json: {error}")
                }
                (Some((name, class)), _) => {
                    write!(f, "{file}: config.json: layer `{name}` ({class}): {error}")
                }
            },
        }
    }
}

impl std::error::Error for FormatError {}

impl FormatError {
    /// An [`FormatError::Invalid`] error.
    pub(crate) fn invalid(
        file: impl Into<String>,
        at: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        FormatError::Invalid {
            file: file.into(),
            at: at.into(),
            reason: reason.into(),
        }
    }
}
