//! Cross-crate test helpers.
pub mod golden;
pub mod qemu;
