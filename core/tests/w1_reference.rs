//! W1 (iris 4→16 relu→3 softmax, Adam 0.01, batch 10, 50 epochs) against the NumPy
//! reference `shared/workloads/reference.py`:
//! `reference.py w1.json` → final loss 0.042604, accuracy 0.986667;
//! `reference.py w1.json --l2 0.001` → 0.049420, 0.980000;
//! `reference.py w1.json [--l2 0.001] --epochs 3 --curve` → the loss of each of the first three
//! epochs (the first 45 steps, every one with Keras' `β^t`) and the evaluation after them.
//! (The reference's NumPy `pow` may differ from TensorFlow's by an ULP: hence `1e-4`.)

use microfit_core::layer::dense::DenseParams;
use microfit_core::prelude::*;
use serde_json::Value;

type W1 = (Dense<4, 16>, Dense<16, 3>);

fn workload() -> Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/data/w1.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("w1.json")).expect("json")
}

fn floats(v: &Value) -> Vec<f32> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn dense<const I: usize, const O: usize>(k: &Value, b: &Value) -> DenseParams<I, O> {
    let mut p = DenseParams::<I, O>::zeroed();
    p.tensor_mut(0).copy_from_slice(&floats(k));
    p.tensor_mut(1).copy_from_slice(&floats(b));
    p
}

fn run(l2: Option<f32>) -> (f32, f32) {
    run_epochs(l2, 50).1
}

/// The loss of each epoch and the final evaluation `(loss, accuracy)` after `epochs` epochs.
fn run_epochs(l2: Option<f32>, epochs: usize) -> (Vec<f32>, (f32, f32)) {
    let w = workload();
    let x = floats(&w["x"]);
    let y: Vec<u32> = w["labels"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let iw = &w["initial_weights"];
    let params = (
        dense::<4, 16>(&iw["dense_0/kernel"], &iw["dense_0/bias"]),
        dense::<16, 3>(&iw["dense_1/kernel"], &iw["dense_1/bias"]),
    );
    let mut l0 = Dense::<4, 16>::new(Activation::Relu);
    let mut l1 = Dense::<16, 3>::new(Activation::Softmax);
    if let Some(l2) = l2 {
        l0 = l0.kernel_regularizer(Reg::l2(l2));
        l1 = l1.kernel_regularizer(Reg::l2(l2));
    }
    let net: Network<W1> = Network::with_params((l0, l1), params);
    let opt = Adam::new(0.01, &net.params).unwrap();
    let mut tr = Trainer::new(
        net,
        opt,
        Loss::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
    );
    let data = Samples::new(&x, 4, Targets::Classes(&y)).unwrap();
    let mut losses = Vec::new();
    for _ in 0..epochs {
        losses.push(tr.fit_epoch(&data, 10, None).unwrap().loss);
    }
    let ev = tr.evaluate(&data, 150).unwrap();
    (losses, (ev.data_loss, ev.metrics.accuracy()))
}

#[test]
fn w1_first_three_epochs_match_reference_step_by_step() {
    for (l2, curve, (loss, acc)) in [
        (None, [1.168532, 0.578391, 0.389166], (0.341393, 0.853333)),
        (
            Some(1e-3),
            [1.179634, 0.591428, 0.405136],
            (0.343193, 0.853333),
        ),
    ] {
        let (got, (l, a)) = run_epochs(l2, 3);
        for (e, (g, want)) in got.iter().zip(curve).enumerate() {
            assert!(
                (g - want).abs() < 1e-4,
                "l2 {l2:?} epoch {}: {g} vs {want}",
                e + 1
            );
        }
        assert!(
            (l - loss).abs() < 1e-4,
            "l2 {l2:?}: loss after 45 steps {l}"
        );
        assert!(
            (a - acc).abs() < 1e-4,
            "l2 {l2:?}: accuracy after 45 steps {a}"
        );
    }
}

#[test]
fn w1_without_penalty_matches_reference() {
    let (loss, acc) = run(None);
    assert!((loss - 0.042604).abs() < 1e-4, "loss {loss}");
    assert!((acc - 0.986667).abs() < 1e-4, "acc {acc}");
}

#[test]
fn w1_with_kernel_l2_matches_reference() {
    let (loss, acc) = run(Some(1e-3));
    assert!((loss - 0.049420).abs() < 1e-4, "loss {loss}");
    assert!((acc - 0.98).abs() < 1e-4, "acc {acc}");
}
