//! Host and firmware agree to the bit: the Cortex-M4F builds of W1 and W2 (each with and
//! without kernel L2) run under QEMU, their defmt logs are decoded in-process, and the same
//! workload is trained on the host with the same core from `firmware/data/w1.json` /
//! `w2.json` (read here, independently of the firmware's build script). Every epoch's data
//! loss, loss (data loss + penalties: Keras' `loss`) and accuracy (`to_bits`), the final evaluation loss and the hash of the bits
//! of every final weight must be identical.
//!
//! Skips loudly without `qemu-system-arm` or the target, unless `MICROFIT_REQUIRE_QEMU=1`.

use std::path::Path;
use std::time::Duration;

use microfit::core::layer::dense::DenseParams;
use microfit::core::params::weights_hash;
use microfit::core::prelude::*;
use microfit_tests::qemu::{Board, EpochLine, M0, M4F, RV32, require_qemu};

struct HostRun {
    epochs: Vec<EpochLine>,
    eval_loss: f32,
    hash: u64,
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v["data"]
        .as_array()
        .expect("tensor data")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn dense<const I: usize, const O: usize>(w: &serde_json::Value, name: &str) -> DenseParams<I, O> {
    let mut p = DenseParams::<I, O>::zeroed();
    p.tensor_mut(0)
        .copy_from_slice(&floats(&w[format!("{name}/kernel")]));
    p.tensor_mut(1)
        .copy_from_slice(&floats(&w[format!("{name}/bias")]));
    p
}

/// The bundled workload `name` (`w1`: 4 → 16 relu → 3 softmax; `w2`: 64 → 32 relu → 10
/// softmax) trained on the host with kernel L2 `l2`.
fn host_bundled(name: &str, l2: f32) -> HostRun {
    let path = format!(
        "{}/../firmware/data/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    match name {
        "w1" => host_run::<4, 16, 3>(Path::new(&path), Some(l2)),
        "w2" => host_run::<64, 32, 10>(Path::new(&path), Some(l2)),
        other => panic!("no workload {other}"),
    }
}

/// Trains the workload file `path` (`I → H relu → O softmax`) on the host with the core, with
/// kernel L2 `l2`, or the file's `kernel_l2` when `None`.
fn host_run<const I: usize, const H: usize, const O: usize>(
    path: &Path,
    l2: Option<f32>,
) -> HostRun {
    let w: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .expect("json");
    let l2 = l2.unwrap_or_else(|| w["kernel_l2"].as_f64().unwrap_or(0.0) as f32);
    let x = floats(&w["x"]);
    let y: Vec<u32> = w["labels"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let tr = &w["training"];
    let iw = &w["initial_weights"];
    let mut a = Dense::<I, H>::new(Activation::Relu);
    let mut b = Dense::<H, O>::new(Activation::Softmax);
    if l2 > 0.0 {
        a = a.kernel_regularizer(Reg::l2(l2));
        b = b.kernel_regularizer(Reg::l2(l2));
    }
    let net: Network<(Dense<I, H>, Dense<H, O>)> =
        Network::with_params((a, b), (dense(iw, "dense_0"), dense(iw, "dense_1")));
    let opt = Adam::with_config(
        microfit::core::optim::AdamConfig {
            learning_rate: (tr["learning_rate"].as_f64().unwrap() as f32).into(),
            beta_1: tr["beta_1"].as_f64().unwrap() as f32,
            beta_2: tr["beta_2"].as_f64().unwrap() as f32,
            epsilon: tr["epsilon"].as_f64().unwrap() as f32,
            ..Default::default()
        },
        &net.params,
    )
    .unwrap();
    let mut t = Trainer::new(
        net,
        opt,
        Loss::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
    );
    let data = Samples::new(&x, I, Targets::Classes(&y)).unwrap();
    let batch = tr["batch_size"].as_u64().unwrap() as usize;
    let mut epochs = Vec::new();
    for e in 1..=tr["epochs"].as_u64().unwrap() as u32 {
        let r = t.fit_epoch(&data, batch, None).unwrap();
        epochs.push(EpochLine {
            epoch: e,
            data_loss: r.data_loss,
            loss: r.loss,
            accuracy: r.metrics.accuracy(),
        });
    }
    let ev = t.evaluate(&data, x.len() / I).unwrap();
    HostRun {
        epochs,
        eval_loss: ev.data_loss,
        hash: weights_hash(&t.model.params),
    }
}

fn bits(e: &[EpochLine]) -> Vec<(u32, u32, u32, u32)> {
    e.iter()
        .map(|l| {
            (
                l.epoch,
                l.data_loss.to_bits(),
                l.loss.to_bits(),
                l.accuracy.to_bits(),
            )
        })
        .collect()
}

fn compare(board: Board, features: &[&str], l2: f32) -> Result<(), String> {
    let Some(qemu) = require_qemu(board)? else {
        return Ok(());
    };
    let workload = if features.contains(&"w2") { "w2" } else { "w1" };
    let fw = qemu.build_and_run(features, Duration::from_secs(300))?;
    if fw.exit_code() != Some(0) {
        return Err(format!(
            "firmware exit {:?}\n{}",
            fw.exit_code(),
            fw.transcript()
        ));
    }
    assert_eq!(
        fw.log.workload.as_deref(),
        Some(workload.to_uppercase().as_str())
    );
    same_bits(&fw, &host_bundled(workload, l2));
    Ok(())
}

fn same_bits(fw: &microfit_tests::qemu::FirmwareRun, host: &HostRun) {
    assert_eq!(
        fw.log.epochs.len(),
        host.epochs.len(),
        "{}",
        fw.transcript()
    );
    assert_eq!(
        bits(&fw.log.epochs),
        bits(&host.epochs),
        "per-epoch bits differ (epoch, data_loss, loss, accuracy)"
    );
    assert_eq!(
        fw.log.eval_data_loss.map(f32::to_bits),
        Some(host.eval_loss.to_bits())
    );
    assert_eq!(
        fw.log.weights_hash,
        Some(host.hash),
        "final weights differ: firmware {:x?} host {:x}",
        fw.log.weights_hash,
        host.hash
    );
}

#[test]
fn w1_host_and_cortex_m4f_agree_bit_for_bit() -> Result<(), String> {
    compare(M4F, &["qemu", "w1"], 0.0)
}

#[test]
fn w1_with_l2_host_and_cortex_m4f_agree_bit_for_bit() -> Result<(), String> {
    compare(M4F, &["qemu", "w1", "l2"], 1e-3)
}

/// The Cortex-M0 (soft float through compiler-builtins, or the firmware's own routines on
/// thumbv6m) against the host: the same bits.
#[test]
fn w1_host_and_cortex_m0_agree_bit_for_bit() -> Result<(), String> {
    compare(M0, &["qemu", "w1"], 0.0)
}

/// The third instruction set: RISC-V RV32IMAC (QEMU `virt`, soft float) against the host.
#[test]
fn w1_host_and_riscv32_agree_bit_for_bit() -> Result<(), String> {
    compare(RV32, &["qemu", "w1"], 0.0)
}

#[test]
fn w2_host_and_cortex_m4f_agree_bit_for_bit() -> Result<(), String> {
    compare(M4F, &["qemu", "w2"], 0.0)
}

#[test]
fn w2_with_l2_host_and_cortex_m4f_agree_bit_for_bit() -> Result<(), String> {
    compare(M4F, &["qemu", "w2", "l2"], 1e-4)
}

/// `microfit train` on the host, `microfit export --target firmware --with-data`, then the
/// Cortex-M4F keeps training the exported model on the exported (scaled) data from the
/// `workload.json` the export wrote (`MICROFIT_FW_WORKLOAD`): every epoch's bits and the final
/// weights equal the host's continuation of the same file. The model is the CLI's default
/// (kernel L2 1e-3 on both Dense kernels, which the file carries to the firmware).
#[test]
fn exported_model_keeps_training_on_the_cortex_m4f_bit_for_bit() -> Result<(), String> {
    let Some(qemu) = require_qemu(M4F)? else {
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("microfit-fw-export-{}", std::process::id()));
    let (run, fw_dir) = (dir.join("run"), dir.join("fw"));
    let s = |p: &Path| p.display().to_string();
    microfit::cli::run([
        "microfit",
        "train",
        "--data",
        "iris",
        "--epochs",
        "20",
        "--hidden",
        "16",
        "--quiet",
        "--out",
        &s(&run),
    ]);
    let model = run.join("model.mfit");
    assert!(
        model.exists(),
        "microfit train wrote no {}",
        model.display()
    );
    microfit::cli::run([
        "microfit",
        "export",
        "--model",
        &s(&model),
        "--target",
        "firmware",
        "--with-data",
        "iris",
        "--fw-epochs",
        "10",
        "--out",
        &s(&fw_dir),
    ]);
    let workload = fw_dir.join("workload.json");
    assert!(
        workload.exists(),
        "microfit export wrote no {}",
        workload.display()
    );
    let w: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&workload).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    for layer in 0..2 {
        let l2 = &w["model"][layer]["kernel_regularizer"]["l2"];
        assert_eq!(l2.as_f64().map(|v| v as f32), Some(1e-3), "layer {layer}");
    }
    assert_eq!(w["training"]["epochs"], 10);

    let fw = qemu.build_and_run_from(&["qemu", "w1"], Some(&workload), Duration::from_secs(120))?;
    // The run ends with its `result` line whatever the accuracy (exit 0 only at >= 0.95).
    if fw.log.weights_hash.is_none() || !matches!(fw.exit_code(), Some(0 | 1)) {
        return Err(format!(
            "firmware exit {:?}\n{}",
            fw.exit_code(),
            fw.transcript()
        ));
    }
    assert_eq!(fw.log.workload.as_deref(), Some("exported"));
    assert_eq!(fw.log.l2.map(f32::to_bits), Some(1e-3f32.to_bits()));
    // The host continues the same file through the run-time model.
    let h = microfit_tests::workload::host_train(&workload, None);
    same_bits(
        &fw,
        &HostRun {
            epochs: h.epochs,
            eval_loss: h.eval_loss,
            hash: h.hash,
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A test workload of `firmware/data/` (written by `gen_workloads.py`) on `board` against the
/// host's run of the same file through the run-time model (`microfit_tests::workload`): every
/// epoch's data loss, loss and accuracy, the evaluation's data loss and loss, and the final
/// weights' hash, bit for bit.
fn compare_file(board: Board, name: &str) -> Result<(), String> {
    let Some(qemu) = require_qemu(board)? else {
        return Ok(());
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../firmware/data")
        .join(name);
    let fw = qemu.build_and_run_from(&["qemu"], Some(&path), Duration::from_secs(600))?;
    if fw.exit_code() != Some(0) {
        return Err(format!(
            "firmware exit {:?}\n{}",
            fw.exit_code(),
            fw.transcript()
        ));
    }
    let host = microfit_tests::workload::host_train(&path, None);
    let w = microfit_workload::Workload::load(&path)?;
    assert_eq!(fw.log.workload.as_deref(), Some(w.name.as_str()));
    assert_eq!(fw.log.epochs.len(), w.training.epochs as usize);
    assert_eq!(
        bits(&fw.log.epochs),
        bits(&host.epochs),
        "{name}: per-epoch bits differ (epoch, data_loss, loss, accuracy)\n{}",
        fw.transcript()
    );
    assert_eq!(
        (
            fw.log.eval_data_loss.map(f32::to_bits),
            fw.log.eval_loss.map(f32::to_bits)
        ),
        (
            Some(host.eval_loss.to_bits()),
            Some(host.eval_total_loss.to_bits())
        ),
        "{name}: evaluation"
    );
    assert_eq!(
        fw.log.weights_hash,
        Some(host.hash),
        "{name}: final weights"
    );
    Ok(())
}

/// The tiny digits CNN: Conv2D (kernel L2) → MaxPooling2D → Flatten → Dropout → Dense softmax,
/// Adam, sparse categorical cross-entropy.
#[test]
fn cnn_host_and_cortex_m4f_agree_bit_for_bit() -> Result<(), String> {
    compare_file(M4F, "cnn.json")
}

/// A regression MLP (kernel L2) with the mean squared error.
#[test]
fn regression_host_and_cortex_m4f_agree_bit_for_bit() -> Result<(), String> {
    compare_file(M4F, "regression.json")
}

/// SGD with Nesterov momentum, an exponentially decaying learning rate and clipnorm; tanh,
/// bias L1 and activity L2; binary cross-entropy on a sigmoid.
#[test]
fn sgd_momentum_host_and_cortex_m4f_agree_bit_for_bit() -> Result<(), String> {
    compare_file(M4F, "sgd_momentum.json")
}

/// W2 fine-tuned with its first layer frozen (its weights constants in flash) and MaxNorm on
/// the last kernel (`w2_frozen.json`, feature `w2-frozen`), against the run-time model with
/// `trainable: false` (`firmware_finetune.rs` checks it against the typed core model).
#[test]
fn w2_frozen_host_and_cortex_m4f_agree_bit_for_bit() -> Result<(), String> {
    compare_file(M4F, "w2_frozen.json")
}
