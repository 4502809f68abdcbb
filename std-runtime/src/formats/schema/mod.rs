//! The one configuration schema: a model ([`ModelSpec`] of [`LayerSpec`]s), its optimizer
//! ([`OptimizerConfig`]), its loss (the core's [`Loss`](microfit_core::loss::Loss)) and the
//! training settings ([`TrainConfig`]). Every file format is a conversion to and from these
//! types, and their serde form is the TOML spec's:
//!
//! | form | where | conversion |
//! |---|---|---|
//! | TOML training spec (`spec.toml`) | [`crate::spec`] | the schema's serde form, plus defaults and the data-dependent checks |
//! | Keras JSON (`get_config()`, `config.json`) | [`crate::keras`] | Keras' class names and keys ↔ schema |
//! | `.keras` | [`super::keras_archive`] | the Keras JSON, plus weights and optimizer slots in HDF5 |
//! | `model.mfit` | [`crate::modelfile`] | the TOML spec as text, plus weights, state and data |
//! | firmware (`model.bin`, `model.rs`, `workload.json`) | [`crate::export`] | schema → MFW1 blob |
//! | the run-time model | [`crate::model::Sequential`] | built from a [`ModelSpec`] in one place ([`ModelSpec::build`]) |
//!
//! Values are read into their types by serde and checked in one place each:
//! [`ModelSpec::shapes`] for a model (every error names the field, `layers[1].units`),
//! [`OptimizerConfig::validate`] for an optimizer; which core optimizer a configuration is,
//! is decided in [`OptimizerConfig::build`] only (Keras' rule: SGD has momentum when
//! `momentum != 0`).
//!
//! # Adding a layer kind or an option
//!
//! * **An option of Dense and the convolutions** (a field of the core's
//!   [`DenseConfig`](microfit_core::layer::dense::DenseConfig), say `kernel_constraint`): the
//!   core; its key in [`layer::weighted`] (and, for a new kind of value, its form in
//!   [`values`]); its Keras key in [`crate::keras`]'s `weighted_config` / `weighted_to_keras`.
//!   The TOML spec, the model file and the run-time model follow without a change.
//! * **A layer kind** (say `GaussianNoise { stddev, seed }`): the core's layer; a
//!   [`LayerSpec`] variant (its serde form is its TOML table: nothing else to write for the
//!   spec), its output shape in [`ModelSpec::shapes`] and its [`LayerSpec::kind`] name; its
//!   Keras class in [`crate::keras`]; its record in the firmware blob ([`crate::export`]) or an
//!   error there; the run-time model's step in [`crate::model`].
//! * **An optimizer option** (say `use_ema`): the core; a field of [`OptimizerConfig`] and its key in
//!   its `OptimizerForm`; its Keras key in [`crate::keras`].
//! * **A loss option** (say `label_smoothing`): the core's [`Loss`](microfit_core::loss::Loss);
//!   its key in [`values::loss`]; its Keras key in [`crate::keras`].
//! * **A training setting** (as `shuffle`): a field of [`TrainConfig`], its key in
//!   [`crate::spec::SpecFile`], what the training driver does with it.
//!
//! Measured (on a scratch branch): a `kernel_max_norm` option of Dense and the convolutions,
//! read and written by the TOML spec, the model file, Keras configs and `.keras` files, took
//! 3 files and 17 lines (the core's `DenseConfig`, [`layer::weighted`], the Keras conversion);
//! a `GaussianNoise { stddev, seed }` layer kind, through the same formats and the firmware
//! blob, took 5 files and 32 lines besides the core's math ([`layer`], [`model_spec`], the Keras
//! and firmware conversions, the run-time model's arm), and nothing in the TOML spec.

pub mod layer;
pub mod model_spec;
pub mod optimizer;
pub mod training;
pub mod values;

pub use layer::LayerSpec;
pub use model_spec::{ModelSpec, SpecError};
pub use optimizer::{DEFAULT_LEARNING_RATE, OptimizerConfig, OptimizerKind};
pub use training::{
    DEFAULT_BATCH_SIZE, DEFAULT_DATA, DEFAULT_EPOCHS, DEFAULT_HIDDEN, DEFAULT_KERNEL_L2,
    DEFAULT_SEED, DEFAULT_VALIDATION, DataConfig, EarlyStopping, SplitConfig, TrainConfig,
    parse_label_column, parse_scaling, scaling_name,
};
