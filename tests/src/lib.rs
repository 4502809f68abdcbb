//! Cross-crate test helpers.
pub mod golden;
pub mod keras_files;
pub mod qemu;
pub mod workload;
