//! # microfit (std runtime)
//!
//! Re-exports [`microfit_core`] as [`core`] and adds what needs an operating system. How the
//! parts relate:
//!
//! * **One configuration schema** ([`formats::schema`]): a model ([`model::ModelSpec`] of
//!   [`model::LayerSpec`]s), an optimizer ([`spec::OptimizerConfig`]), a loss and the training
//!   settings ([`spec::TrainConfig`]). Every file format in [`formats`] is a conversion to and
//!   from it: the TOML spec ([`spec`], the schema's own serde form), Keras configs ([`keras`]),
//!   `.keras` files ([`formats::KerasModel`]: architecture, weights, optimizer state), the
//!   trained-model file ([`modelfile`]) and the firmware export ([`export`]).
//! * **One engine**: [`model::Sequential`] is built from a [`model::ModelSpec`] and trains
//!   through the core's trainer on the [`host::Host`] backend ([`fit`]); the training driver
//!   ([`train_run`]) adds splits, shuffles, validation, callbacks and checkpoints; Keras'
//!   training callbacks and `fit` arguments beyond the core's step are in [`callbacks`]
//!   (`ReduceLROnPlateau`, `class_weight` / `sample_weight`).
//! * **The `microfit` CLI** ([`cli`]) reads data ([`data`]), writes reports, plots and history
//!   ([`report`], [`plot`], [`history`], [`summary`]) and runs sweeps ([`sweep`]).

pub use microfit_core as core;

pub mod callbacks;
pub mod data;
pub mod fit;
pub mod host;
pub mod limits;
pub mod model;

// Formats: the schema and its conversions. The old paths stay: `microfit::spec`,
// `microfit::keras`, `microfit::modelfile`, `microfit::export`.
pub mod formats;
pub use formats::firmware as export;
pub use formats::keras_config as keras;
pub use formats::model_file as modelfile;
pub use formats::toml_spec as spec;

// The `microfit` CLI and what it writes.
pub mod cli;
pub mod history;
pub mod plot;
pub mod report;
pub mod summary;
pub mod sweep;
pub mod train_run;
