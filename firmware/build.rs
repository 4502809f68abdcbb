//! Build script of `microfit-firmware`.
//!
//! 1. Always (host and target): turns the selected workload `data/w1.json` or `data/w2.json`
//!    (feature `w2` wins over the default `w1`) into `$OUT_DIR/workload.rs`: sizes and
//!    hyperparameters as `const`s, the dataset and the initial weights as `static` arrays
//!    (one copy in flash, with a fixed symbol name so `cargo xtask fw-bench` can read their
//!    sizes with `nm`). Every number is written so that it parses back to the same `f32` bits.
//! 2. Only for `target_os = "none"` with feature `qemu` (the QEMU binary): puts the machine's
//!    `memory.x` into `$OUT_DIR` and passes `-Tlink.x` / `-Tdefmt.x` to the linker (link args
//!    live here, not in `.cargo/config.toml`, so they apply whatever directory cargo is started
//!    from). The boards' crates in `boards/` link their own images.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

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

    let workload = if feature("w2-frozen") {
        "w2_frozen"
    } else if feature("w2") {
        "w2"
    } else {
        "w1"
    };
    // `MICROFIT_FW_WORKLOAD=path/workload.json` (written by `microfit export --target firmware
    // --with-data ...`) replaces the bundled workload: the board keeps training the exported
    // model on the exported data.
    println!("cargo:rerun-if-env-changed=MICROFIT_FW_WORKLOAD");
    let json_path = match env::var_os("MICROFIT_FW_WORKLOAD") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => manifest_dir.join("data").join(format!("{workload}.json")),
    };
    println!("cargo:rerun-if-changed={}", json_path.display());
    println!("cargo:rerun-if-changed=build.rs");
    let (src, frozen) = generate_workload(&json_path);
    fs::write(out_dir.join("workload.rs"), src).expect("write workload.rs");
    // A fine-tuning workload (`"frozen_layers": 1`): the firmware's `Frozen` model
    // (`src/train.rs`); other workloads compile none of it.
    println!("cargo::rustc-check-cfg=cfg(microfit_frozen)");
    if frozen {
        println!("cargo::rustc-cfg=microfit_frozen");
    }

    // thumbv6m (Cortex-M0/M0+, no FPU): the firmware's own `__aeabi_f*` routines (src/aeabi.rs).
    println!("cargo::rustc-check-cfg=cfg(microfit_m0_float)");
    if env::var("TARGET").is_ok_and(|t| t.starts_with("thumbv6m")) {
        println!("cargo::rustc-cfg=microfit_m0_float");
    }

    // The rest is for the microcontroller only.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let target = env::var("TARGET").expect("TARGET");
    // Only the QEMU binary links here; the boards' crates (boards/*) link their own images and
    // use this package as a library (`default-features = false`).
    if !feature("qemu") {
        return;
    }
    let memory = if target.starts_with("riscv32") {
        "memory-virt.x"
    } else if target.starts_with("thumbv6m") {
        "memory-microbit.x"
    } else {
        "memory-mps2-an386.x"
    };
    if feature("persist") && memory != "memory-mps2-an386.x" {
        panic!(
            "feature `persist` under QEMU runs on mps2-an386 (thumbv7em-none-eabihf): its RAM keeps the checkpoints across a reset"
        );
    }
    if memory == "memory-microbit.x" && workload != "w1" {
        panic!(
            "W2 needs about 40 KiB of RAM; QEMU's microbit (thumbv6m-none-eabi) has 16 KiB: use W1 there"
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

/// A JSON tensor `{"shape": [...], "data": [...]}`.
struct Tensor {
    shape: Vec<usize>,
    data: Vec<f64>,
}

fn tensor(v: &Value, what: &str) -> Tensor {
    let shape = v["shape"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no shape"))
        .iter()
        .map(|d| d.as_u64().unwrap_or_else(|| panic!("{what}: bad shape")) as usize)
        .collect::<Vec<_>>();
    let data = v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no data"))
        .iter()
        .map(|d| d.as_f64().unwrap_or_else(|| panic!("{what}: not a number")))
        .collect::<Vec<_>>();
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "{what}: shape and data disagree"
    );
    Tensor { shape, data }
}

/// An `f32` literal that parses back to exactly `x as f32` (Rust's `{:?}` is the shortest round trip).
fn lit(x: f64) -> String {
    let f = x as f32;
    assert!(f.is_finite(), "non-finite value {x} in the workload");
    format!("{f:?}_f32")
}

fn f32_rows(t: &Tensor, cols: usize) -> String {
    let mut s = String::from("[\n");
    for row in t.data.chunks(cols) {
        s.push_str("    [");
        for (i, &x) in row.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&lit(x));
        }
        s.push_str("],\n");
    }
    s.push(']');
    s
}

fn f32_vec(t: &Tensor) -> String {
    let items: Vec<String> = t.data.iter().map(|&x| lit(x)).collect();
    format!("[{}]", items.join(", "))
}

/// The Rust expression of a Keras constraint (`{"class_name", "config"}`) for the last layer's
/// kernel, or `None`.
fn constraint_expr(v: &Value) -> String {
    if v.is_null() {
        return "None".into();
    }
    let class = v["class_name"]
        .as_str()
        .expect("kernel_constraint.class_name");
    let cfg = &v["config"];
    let f = |k: &str, d: f64| lit(cfg.get(k).and_then(Value::as_f64).unwrap_or(d));
    let axes = match cfg.get("axis") {
        Some(Value::Array(a)) => format!(
            "microfit_core::constraint::Axes::list(&[{}])",
            a.iter()
                .map(|x| x.as_i64().expect("axis").to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(x) => format!(
            "microfit_core::constraint::Axes::one({})",
            x.as_i64().expect("axis")
        ),
        None => "microfit_core::constraint::Axes::one(0)".into(),
    };
    let c = "microfit_core::constraint::Constraint";
    let e = match class {
        "MaxNorm" => format!("{c}::max_norm({}, {axes})", f("max_value", 2.0)),
        "MinMaxNorm" => format!(
            "{c}::min_max_norm({}, {}, {}, {axes})",
            f("min_value", 0.0),
            f("max_value", 1.0),
            f("rate", 1.0)
        ),
        "UnitNorm" => format!("{c}::unit_norm({axes})"),
        "NonNeg" => format!("{c}::NonNeg"),
        other => panic!("kernel_constraint: unknown constraint {other}"),
    };
    format!("Some({e})")
}

fn generate_workload(path: &Path) -> (String, bool) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let w: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = w["name"].as_str().expect("name");
    let x = tensor(&w["x"], "x");
    let labels = tensor(&w["labels"], "labels");
    let classes = w["classes"].as_u64().expect("classes") as usize;
    let iw = &w["initial_weights"];
    let k0 = tensor(&iw["dense_0/kernel"], "dense_0/kernel");
    let b0 = tensor(&iw["dense_0/bias"], "dense_0/bias");
    let k1 = tensor(&iw["dense_1/kernel"], "dense_1/kernel");
    let b1 = tensor(&iw["dense_1/bias"], "dense_1/bias");
    let tr = &w["training"];
    let num = |k: &str| tr[k].as_f64().unwrap_or_else(|| panic!("training.{k}"));

    // Model: Dense(relu) -> Dense(softmax), the only architecture the firmware implements.
    let model = w["model"].as_array().expect("model");
    assert_eq!(model.len(), 2, "two Dense layers expected");
    assert_eq!(model[0]["activation"], "relu");
    assert_eq!(model[1]["activation"], "softmax");
    assert_eq!(tr["optimizer"], "adam");
    assert_eq!(tr["loss"], "categorical_crossentropy");
    assert_eq!(tr["shuffle"], false);

    let (n, input) = (x.shape[0], x.shape[1]);
    let hidden = k0.shape[1];
    assert_eq!(k0.shape, [input, hidden]);
    assert_eq!(b0.shape, [hidden]);
    assert_eq!(k1.shape, [hidden, classes]);
    assert_eq!(b1.shape, [classes]);
    assert_eq!(labels.shape, [n]);
    assert!(
        labels
            .data
            .iter()
            .all(|&l| l >= 0.0 && (l as usize) < classes && l.fract() == 0.0)
    );
    assert!(classes <= 256 && n <= u32::MAX as usize);

    // Kernel L2 of an exported workload (`microfit export`); the bundled ones have none (the
    // `l2` feature adds it).
    let kernel_l2 = w["kernel_l2"].as_f64().unwrap_or(0.0);
    assert!(
        kernel_l2 >= 0.0 && (kernel_l2 as f32).is_finite(),
        "kernel_l2 must be a finite number >= 0"
    );

    // Fine-tuning: the first layer frozen (its weights constants in flash), a constraint on the
    // last layer's kernel (written by `microfit export` for such a model; phase B of issue 12).
    let frozen_layers = w["frozen_layers"].as_u64().unwrap_or(0);
    assert!(
        frozen_layers <= 1,
        "frozen_layers: the firmware freezes the first layer or none"
    );
    let frozen = frozen_layers == 1;
    let constraint = constraint_expr(&w["kernel_constraint"]);

    let mut s = String::new();
    writeln!(
        s,
        "// Generated by firmware/build.rs from {}. Do not edit.",
        path.display()
    )
    .unwrap();
    writeln!(
        s,
        "/// Kernel L2 factor of the workload file (0 for the bundled W1/W2; feature `l2` sets\n/// their issue's factor instead).\npub const KERNEL_L2: f32 = {};",
        lit(kernel_l2)
    )
    .unwrap();
    writeln!(s, "/// Workload name.\npub const NAME: &str = {name:?};").unwrap();
    writeln!(
        s,
        "/// Number of training samples.\npub const SAMPLES: usize = {n};"
    )
    .unwrap();
    writeln!(s, "/// Input features.\npub const INPUTS: usize = {input};").unwrap();
    writeln!(
        s,
        "/// Units of the hidden (relu) Dense layer.\npub const HIDDEN: usize = {hidden};"
    )
    .unwrap();
    writeln!(
        s,
        "/// Classes (units of the softmax Dense layer).\npub const CLASSES: usize = {classes};"
    )
    .unwrap();
    writeln!(
        s,
        "/// Epochs.\npub const EPOCHS: u32 = {};",
        tr["epochs"].as_u64().expect("epochs")
    )
    .unwrap();
    writeln!(
        s,
        "/// Mini-batch size (last partial batch kept).\npub const BATCH_SIZE: usize = {};",
        tr["batch_size"].as_u64().expect("batch_size")
    )
    .unwrap();
    writeln!(
        s,
        "/// Adam learning rate.\npub const LEARNING_RATE: f32 = {};",
        lit(num("learning_rate"))
    )
    .unwrap();
    writeln!(
        s,
        "/// Adam beta_1.\npub const BETA_1: f32 = {};",
        lit(num("beta_1"))
    )
    .unwrap();
    writeln!(
        s,
        "/// Adam beta_2.\npub const BETA_2: f32 = {};",
        lit(num("beta_2"))
    )
    .unwrap();
    writeln!(
        s,
        "/// Adam epsilon.\npub const EPSILON: f32 = {};",
        lit(num("epsilon"))
    )
    .unwrap();
    writeln!(
        s,
        "/// Inputs, one row per sample (the dataset proper, in flash)."
    )
    .unwrap();
    writeln!(
        s,
        "#[unsafe(no_mangle)]\npub static MICROFIT_DATASET_X: [[f32; {input}]; {n}] = {};",
        f32_rows(&x, input)
    )
    .unwrap();
    let ls: Vec<String> = labels
        .data
        .iter()
        .map(|&l| (l as u32).to_string())
        .collect();
    writeln!(s, "/// Class labels.\n#[unsafe(no_mangle)]\npub static MICROFIT_DATASET_LABELS: [u32; {n}] = [{}];", ls.join(", ")).unwrap();
    writeln!(
        s,
        "/// The constraint on `dense_1/kernel`, applied after each update (a fine-tuning workload).\npub const KERNEL_CONSTRAINT_1: Option<microfit_core::constraint::Constraint> = {constraint};"
    )
    .unwrap();
    if frozen {
        writeln!(s, "/// `dense_0`, frozen: its weights, constants in flash (`microfit_core`'s `Frozen`).\n#[unsafe(no_mangle)]\npub static MICROFIT_FROZEN_DENSE_0: microfit_core::layer::dense::DenseParams<{input}, {hidden}> = microfit_core::layer::dense::DenseParams {{ kernel: {}, bias: {} }};", f32_rows(&k0, hidden), f32_vec(&b0)).unwrap();
    } else {
        writeln!(s, "/// Initial `dense_0/kernel`, `[in][out]`.\n#[unsafe(no_mangle)]\npub static MICROFIT_INIT_DENSE_0_KERNEL: [[f32; {hidden}]; {input}] = {};", f32_rows(&k0, hidden)).unwrap();
        writeln!(s, "/// Initial `dense_0/bias`.\n#[unsafe(no_mangle)]\npub static MICROFIT_INIT_DENSE_0_BIAS: [f32; {hidden}] = {};", f32_vec(&b0)).unwrap();
    }
    writeln!(s, "/// Initial `dense_1/kernel`, `[in][out]`.\n#[unsafe(no_mangle)]\npub static MICROFIT_INIT_DENSE_1_KERNEL: [[f32; {classes}]; {hidden}] = {};", f32_rows(&k1, classes)).unwrap();
    writeln!(s, "/// Initial `dense_1/bias`.\n#[unsafe(no_mangle)]\npub static MICROFIT_INIT_DENSE_1_BIAS: [f32; {classes}] = {};", f32_vec(&b1)).unwrap();
    (s, frozen)
}
