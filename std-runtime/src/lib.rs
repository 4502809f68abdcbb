//! # microfit (std runtime)
//!
//! Re-exports [`microfit_core`] as [`core`] and adds what needs an operating system:
//! datasets ([`data`]), models described at run time ([`model`]), the `microfit` CLI, reports,
//! plots and export to firmware.

pub use microfit_core as core;

pub mod data;
pub mod model;
