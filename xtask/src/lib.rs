//! The firmware harness shared by `cargo xtask` and the workspace's firmware tests
//! (`microfit_tests::qemu` re-exports [`harness`]): build the firmware for an emulated board, run
//! it under QEMU, decode and parse its defmt log; and the ELF reader behind `fw-bench`'s sizes
//! and panic-site count.

pub mod elf;
pub mod harness;
