//! Fine-tuning on the chip (issue 12): W2 trained on the host, then its last layer fine-tuned on
//! the Cortex-M4F with the first layer frozen — its weights constants in flash — and a `MaxNorm`
//! constraint on the last kernel, bit for bit with the host.
//!
//! * `firmware/data/w2_frozen.json` is what [`fine_tune_workload`] writes from
//!   `firmware/data/w2.json`: W2 trained on the host for its 50 epochs (the core, as the firmware
//!   trains it), its weights as the initial weights, `"frozen_layers": 1` and
//!   `"kernel_constraint": MaxNorm(...)` (the keys `microfit export` writes for such a model
//!   in phase B). The test checks the file is exactly that (`MICROFIT_WRITE_FINE_TUNE=1`
//!   rewrites it).
//! * The firmware (feature `w2-frozen`) fine-tunes it under QEMU; the host fine-tunes the same
//!   file with the typed core (`Frozen` first layer): every epoch's bits and the final weights
//!   agree.
//!
//! Skips loudly without `qemu-system-arm` or the target, unless `MICROFIT_REQUIRE_QEMU=1`.

use std::path::PathBuf;
use std::time::Duration;

use microfit::core::layer::dense::DenseParams;
use microfit::core::layer::frozen::Frozen;
use microfit::core::params::weights_hash;
use microfit::core::prelude::*;
use microfit_tests::qemu::{EpochLine, M4F, require_qemu};
use serde_json::{Value, json};

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/data"))
}

fn read(name: &str) -> Value {
    let p = data_dir().join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .expect("json")
}

fn floats(v: &Value) -> Vec<f32> {
    v["data"]
        .as_array()
        .expect("tensor data")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn tensor(shape: &[usize], data: &[f32]) -> Value {
    json!({"shape": shape, "data": data.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()})
}

fn dense<const I: usize, const O: usize>(w: &Value, name: &str) -> DenseParams<I, O> {
    let mut p = DenseParams::<I, O>::zeroed();
    p.tensor_mut(0)
        .copy_from_slice(&floats(&w[format!("{name}/kernel")]));
    p.tensor_mut(1)
        .copy_from_slice(&floats(&w[format!("{name}/bias")]));
    p
}

fn adam(tr: &Value) -> microfit::core::optim::AdamConfig {
    microfit::core::optim::AdamConfig {
        learning_rate: (tr["learning_rate"].as_f64().unwrap() as f32).into(),
        beta_1: tr["beta_1"].as_f64().unwrap() as f32,
        beta_2: tr["beta_2"].as_f64().unwrap() as f32,
        epsilon: tr["epsilon"].as_f64().unwrap() as f32,
        ..Default::default()
    }
}

fn samples(w: &Value) -> (Vec<f32>, Vec<u32>) {
    let y = w["labels"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    (floats(&w["x"]), y)
}

const CCE: Loss = Loss::CategoricalCrossentropy {
    from_logits: false,
    label_smoothing: 0.0,
};

/// Epochs of fine-tuning.
const FINE_TUNE_EPOCHS: u64 = 20;

/// The fine-tuning workload: W2 trained on the host, then the keys of a frozen first layer and
/// a `MaxNorm` on the last kernel, whose `max_value` (one decimal, below the largest column
/// norm) makes it bite.
fn fine_tune_workload() -> Value {
    let w2 = read("w2.json");
    let tr = &w2["training"];
    let iw = &w2["initial_weights"];
    type W2 = (Dense<64, 32>, Dense<32, 10>);
    let net: Network<W2> = Network::with_params(
        (
            Dense::new(Activation::Relu),
            Dense::new(Activation::Softmax),
        ),
        (dense(iw, "dense_0"), dense(iw, "dense_1")),
    );
    let opt = Adam::with_config(adam(tr), &net.params).unwrap();
    let mut t = Trainer::new(net, opt, CCE);
    let (x, y) = samples(&w2);
    let data = Samples::new(&x, 64, Targets::Classes(&y)).unwrap();
    for _ in 0..tr["epochs"].as_u64().unwrap() {
        t.fit_epoch(&data, tr["batch_size"].as_u64().unwrap() as usize, None)
            .unwrap();
    }
    let (a, b) = &t.model.params;
    let k1 = b.kernel.as_flattened();
    let largest = (0..10)
        .map(|j| (0..32).map(|i| k1[i * 10 + j].powi(2)).sum::<f32>().sqrt())
        .fold(0.0f32, f32::max);
    let max_value = (f64::from(largest) * 0.9 * 10.0).floor() / 10.0;
    let mut w = w2.clone();
    w["name"] = json!("W2-frozen");
    w["initial_weights"] = json!({
        "dense_0/kernel": tensor(&[64, 32], a.kernel.as_flattened()),
        "dense_0/bias": tensor(&[32], &a.bias),
        "dense_1/kernel": tensor(&[32, 10], k1),
        "dense_1/bias": tensor(&[10], &b.bias),
    });
    w["frozen_layers"] = json!(1);
    w["kernel_constraint"] =
        json!({"class_name": "MaxNorm", "config": {"max_value": max_value, "axis": 0}});
    w["training"]["epochs"] = json!(FINE_TUNE_EPOCHS);
    w["description"] = json!(format!(
        "W2 (first 200 digits, 64 -> 32 relu -> 10 softmax) trained on the host for {} epochs \
         (tests/tests/firmware_finetune.rs), then fine-tuned on the chip: dense_0 frozen (its \
         weights constants in flash), MaxNorm({max_value}, axis=0) on dense_1/kernel, {} epochs.",
        tr["epochs"], FINE_TUNE_EPOCHS
    ));
    w
}

#[test]
fn the_bundled_fine_tuning_workload_is_w2_trained_on_the_host() {
    let want = fine_tune_workload();
    let path = data_dir().join("w2_frozen.json");
    if std::env::var_os("MICROFIT_WRITE_FINE_TUNE").is_some() {
        std::fs::write(&path, serde_json::to_string(&want).unwrap()).unwrap();
    }
    let got = read("w2_frozen.json");
    assert!(
        got == want,
        "{} is not what the generator writes (MICROFIT_WRITE_FINE_TUNE=1 rewrites it)",
        path.display()
    );
    let c = &got["kernel_constraint"]["config"];
    assert!(c["max_value"].as_f64().unwrap() > 0.0);
}

/// The host's fine-tuning of the file: the typed core with the first layer `Frozen` (its
/// weights borrowed), `MaxNorm` on the last kernel.
fn host_fine_tune(w: &Value) -> (Vec<EpochLine>, f32, u64, f32) {
    let tr = &w["training"];
    let iw = &w["initial_weights"];
    let frozen: DenseParams<64, 32> = dense(iw, "dense_0");
    let c = &w["kernel_constraint"]["config"];
    let max_norm = Constraint::max_norm(
        c["max_value"].as_f64().unwrap() as f32,
        Axes::one(c["axis"].as_i64().unwrap() as i8),
    );
    type M<'w> = (Frozen<'w, Dense<64, 32>>, Dense<32, 10>);
    let layers: M<'_> = (
        Frozen::new(Dense::new(Activation::Relu), &frozen),
        Dense::new(Activation::Softmax).kernel_constraint(max_norm),
    );
    let net = Network::with_params(layers, ((), dense(iw, "dense_1")));
    let opt = Adam::with_config(adam(tr), &net.params).unwrap();
    let mut t = Trainer::new(net, opt, CCE);
    let (x, y) = samples(w);
    let data = Samples::new(&x, 64, Targets::Classes(&y)).unwrap();
    let mut epochs = Vec::new();
    for e in 1..=tr["epochs"].as_u64().unwrap() as u32 {
        let r = t
            .fit_epoch(&data, tr["batch_size"].as_u64().unwrap() as usize, None)
            .unwrap();
        epochs.push(EpochLine {
            epoch: e,
            data_loss: r.data_loss,
            loss: r.loss,
            accuracy: r.metrics.accuracy(),
        });
    }
    let ev = t.evaluate(&data, y.len()).unwrap();
    // The constraint holds after every update.
    let k = t.model.params.1.kernel.as_flattened();
    let largest = (0..10)
        .map(|j| (0..32).map(|i| k[i * 10 + j].powi(2)).sum::<f32>().sqrt())
        .fold(0.0f32, f32::max);
    (epochs, ev.data_loss, weights_hash(&t.model.params), largest)
}

#[test]
fn w2_frozen_first_layer_fine_tunes_on_the_cortex_m4f_bit_for_bit() -> Result<(), String> {
    let w = read("w2_frozen.json");
    let (host, eval, hash, largest) = host_fine_tune(&w);
    let max = w["kernel_constraint"]["config"]["max_value"]
        .as_f64()
        .unwrap() as f32;
    assert!(
        largest <= max * (1.0 + 1e-6),
        "MaxNorm: column norm {largest} > {max}"
    );
    let Some(qemu) = require_qemu(M4F)? else {
        return Ok(());
    };
    let fw = qemu.build_and_run(&["qemu", "w2-frozen"], Duration::from_secs(300))?;
    if fw.exit_code() != Some(0) {
        return Err(format!(
            "firmware exit {:?}\n{}",
            fw.exit_code(),
            fw.transcript()
        ));
    }
    assert_eq!(fw.log.workload.as_deref(), Some("W2-frozen"));
    let bits = |e: &[EpochLine]| {
        e.iter()
            .map(|l| {
                (
                    l.epoch,
                    l.data_loss.to_bits(),
                    l.loss.to_bits(),
                    l.accuracy.to_bits(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&fw.log.epochs), bits(&host), "per-epoch bits differ");
    assert_eq!(
        fw.log.eval_data_loss.map(f32::to_bits),
        Some(eval.to_bits())
    );
    assert_eq!(fw.log.weights_hash, Some(hash), "final weights differ");
    Ok(())
}
