//! Harness for firmware tests: the workspace's one firmware harness, `xtask::harness` (build
//! `microfit-firmware` for an emulated board, run it under QEMU, decode and parse its defmt log),
//! re-exported under the name the tests use. See its docs for the skip rules
//! (`MICROFIT_REQUIRE_QEMU=1` turns a missing QEMU or target into a failure).

pub use xtask::harness::*;
