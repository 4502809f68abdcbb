//! The build script of the Cortex-M board crates (`blackpill`, `pico`, `nano33ble`; each names
//! it with `build = "../cortex-m-link.rs"`): puts the board's `memory.x` next to cortex-m-rt's
//! `link.x` and defmt's `defmt.x` and passes both to the linker. Nothing to do on the host (the
//! binaries are stubs there).

use std::{env, fs, path::PathBuf};

fn main() {
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let memory = dir.join("memory.x");
    fs::copy(&memory, out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rerun-if-changed={}", memory.display());
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
