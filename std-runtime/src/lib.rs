//! # microfit (std runtime)
//!
//! Re-exports [`microfit_core`] as [`core`] and adds what needs an operating system:
//! datasets ([`data`]), models described at run time ([`model`]), the `microfit` CLI, reports,
//! plots and export to firmware. Keras interop: configs in [`keras`], real `.keras` files
//! (architecture, weights, optimizer state) in [`formats`]. Training on the host: [`fit`] (the
//! core's engine on the vectorized backend), [`callbacks`] (`ReduceLROnPlateau`,
//! `class_weight` / `sample_weight`), [`train_run`] (the CLI's run: files, resume, early
//! stopping).

pub use microfit_core as core;

pub mod callbacks;
pub mod data;
pub mod fit;
pub mod host;
pub mod keras;
pub mod limits;
pub mod model;

// The `microfit` CLI and what it writes.
pub mod cli;
pub mod export;
pub mod formats;
pub mod history;
pub mod modelfile;
pub mod plot;
pub mod report;
pub mod spec;
pub mod summary;
pub mod sweep;
pub mod train_run;
