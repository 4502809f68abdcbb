//! Build script of `microfit-firmware`.
//!
//! 1. Always (host and target): reads the selected workload file — `data/w1.json` or
//!    `data/w2.json` (feature `w2` wins over the default `w1`), or the file named by
//!    `MICROFIT_FW_WORKLOAD` — with `microfit-workload` (the format is documented there), checks
//!    that it fits the chip (QEMU builds: the machine's RAM and flash; any build:
//!    `MICROFIT_FW_RAM` / `MICROFIT_FW_FLASH` bytes when set) and writes its Rust module to
//!    `$OUT_DIR/workload.rs`: the typed model with its configuration as a constant, the
//!    initial weights and the dataset as `static`s in flash (fixed symbol names, so `cargo
//!    xtask fw-bench` can read their sizes), the loss, the optimizer and its hyperparameters,
//!    the batch size and the epochs. Every number reads back to the same `f32` bits. Feature
//!    `l2` puts an L2 kernel regularizer on every Dense layer (1e-3 for W1, 1e-4 for W2).
//!    `cfg(microfit_optimizer = "adam" | "momentum" | "sgd")` tells the firmware which
//!    optimizer type to train with.
//! 2. Only for `target_os = "none"` with feature `qemu` (the QEMU binary): puts the machine's
//!    `memory.x` into `$OUT_DIR` and passes `-Tlink.x` / `-Tdefmt.x` to the linker (link args
//!    live here, not in `.cargo/config.toml`, so they apply whatever directory cargo is started
//!    from). The boards' crates in `boards/` link their own images.

use std::env;
use std::fs;
use std::path::PathBuf;

use microfit_core::math::powf::powf_fast_covers;
use microfit_workload::{Memory, Options, Workload};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let feature = |name: &str| {
        env::var_os(format!(
            "CARGO_FEATURE_{}",
            name.to_uppercase().replace('-', "_")
        ))
        .is_some()
    };

    // `w2-frozen`: W2 pre-trained on the host, fine-tuned with its first layer frozen (its
    // weights a `static` in flash) and MaxNorm on the last kernel (`data/w2_frozen.json`).
    let workload = if feature("w2-frozen") {
        "w2_frozen"
    } else if feature("w2") {
        "w2"
    } else {
        "w1"
    };
    // `MICROFIT_FW_WORKLOAD=path/workload.json` (e.g. written by `microfit export --target
    // firmware --with-data ...`) replaces the bundled workload.
    println!("cargo:rerun-if-env-changed=MICROFIT_FW_WORKLOAD");
    println!("cargo:rerun-if-env-changed=MICROFIT_FW_RAM");
    println!("cargo:rerun-if-env-changed=MICROFIT_FW_FLASH");
    let json_path = match env::var_os("MICROFIT_FW_WORKLOAD") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => manifest_dir.join("data").join(format!("{workload}.json")),
    };
    println!("cargo:rerun-if-changed={}", json_path.display());
    println!("cargo:rerun-if-changed=build.rs");
    let mut w = Workload::load(&json_path).unwrap_or_else(|e| panic!("{e}"));
    if feature("l2") {
        w.set_dense_kernel_l2(if workload.starts_with("w2") {
            1e-4
        } else {
            1e-3
        });
    }

    // The chip's memory: the QEMU machine's (memory-*.x), or the environment's.
    let target = env::var("TARGET").unwrap_or_default();
    let on_chip = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none");
    let memory = if target.starts_with("riscv32") {
        "memory-virt.x"
    } else if target.starts_with("thumbv6m") {
        "memory-microbit.x"
    } else {
        "memory-mps2-an386.x"
    };
    let machine = match memory {
        "memory-microbit.x" => (16 * 1024, 256 * 1024),
        _ => (128 * 1024, 512 * 1024),
    };
    let bytes = |k: &str| {
        env::var(k).ok().map(|v| {
            v.parse::<usize>()
                .unwrap_or_else(|_| panic!("{k}={v}: not a byte count"))
        })
    };
    let limits = match (bytes("MICROFIT_FW_RAM"), bytes("MICROFIT_FW_FLASH")) {
        (None, None) if on_chip && feature("qemu") => Some(machine),
        (None, None) => None,
        (ram, flash) => Some((ram.unwrap_or(usize::MAX), flash.unwrap_or(usize::MAX))),
    };
    if let Some((ram, flash)) = limits
        && let Err(e) = Memory::of(&w).check(&w.name, ram, flash)
    {
        panic!("{e} ({target}); a smaller model, fewer samples or a larger chip");
    }

    let src = microfit_workload::generate(
        &w,
        &Options {
            symbols: true,
            no_data: false,
            source: Some(json_path.display().to_string()),
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
    fs::write(out_dir.join("workload.rs"), src).expect("write workload.rs");
    let optimizer = match w.training.optimizer {
        microfit_workload::Optimizer::Adam { .. } => "adam",
        microfit_workload::Optimizer::Sgd { momentum, .. } if momentum != 0.0 => "momentum",
        microfit_workload::Optimizer::Sgd { .. } => "sgd",
    };
    println!(
        "cargo::rustc-check-cfg=cfg(microfit_optimizer, values(\"adam\", \"momentum\", \"sgd\"))"
    );
    println!("cargo::rustc-cfg=microfit_optimizer=\"{optimizer}\"");

    // Adam's `β^t`: when the integer fast path of TensorFlow's `powf` gives both `β^t` for
    // every step of the run (checked here, on the host, against the full `powf`), the chip's
    // backend uses it alone (`src/fpu.rs`) and links none of the exact evaluation.
    println!("cargo::rustc-check-cfg=cfg(microfit_powf_fast)");
    if let microfit_workload::Optimizer::Adam { beta_1, beta_2, .. } = w.training.optimizer {
        // The steps of the run: the app trains `epochs` epochs (also when it resumes from a
        // checkpoint), each of `ceil(samples / batch_size)` steps.
        let per_epoch = w.samples.div_ceil(w.training.batch_size.max(1));
        let steps =
            u32::try_from(per_epoch).map_or(u32::MAX, |n| n.saturating_mul(w.training.epochs));
        if powf_fast_covers(beta_1, steps) && powf_fast_covers(beta_2, steps) {
            println!("cargo::rustc-cfg=microfit_powf_fast");
        }
    }

    // thumbv6m (Cortex-M0/M0+, no FPU): the firmware's own `__aeabi_f*` routines (src/aeabi.rs).
    println!("cargo::rustc-check-cfg=cfg(microfit_m0_float)");
    if target.starts_with("thumbv6m") {
        println!("cargo::rustc-cfg=microfit_m0_float");
    }

    // The rest is for the microcontroller only.
    if !on_chip {
        return;
    }
    // Only the QEMU binary links here; the boards' crates (boards/*) link their own images and
    // use this package as a library (`default-features = false`).
    if !feature("qemu") {
        return;
    }
    if feature("persist") && memory != "memory-mps2-an386.x" {
        panic!(
            "feature `persist` under QEMU runs on mps2-an386 (thumbv7em-none-eabihf): its RAM keeps the checkpoints across a reset"
        );
    }
    if target.starts_with("thumb") {
        // `cortex-m-rt/device`: the firmware supplies `__INTERRUPTS` itself (one vector) and
        // there are no device interrupt handlers to provide to the linker.
        fs::write(
            out_dir.join("device.x"),
            "/* microfit-firmware (qemu): no device interrupt handlers */\n",
        )
        .expect("write device.x");
    }
    let memory_path = manifest_dir.join(memory);
    println!("cargo:rerun-if-changed={}", memory_path.display());
    fs::copy(&memory_path, out_dir.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out_dir.display());
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
