//! One math, two front doors: a typed `Network` and a `Sequential` built at run time from a
//! spec train W1 (with every kind of regularizer switched on) to the same bits.

use microfit::core::prelude::*;
use microfit::model::{LayerSpec, ModelSpec};
use microfit_tests::golden::{same_bits, same_penalties};

type Net = (Dense<4, 16>, Dense<16, 3>);

fn w1() -> (Vec<f32>, Vec<u32>) {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/data/w1.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let x = v["x"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_f64().unwrap() as f32)
        .collect();
    let y = v["labels"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_u64().unwrap() as u32)
        .collect();
    (x, y)
}

#[test]
fn typed_and_runtime_models_train_to_identical_bits() {
    let (x, y) = w1();
    let data = Samples::new(&x, 4, Targets::Classes(&y)).unwrap();
    let k = Reg::l2(1e-3);
    let b = Reg::l1(1e-4);
    let a = Reg::l1l2(1e-5, 1e-4);
    let typed: Network<Net> = Network::new(
        (
            Dense::new(Activation::Relu)
                .kernel_regularizer(k)
                .bias_regularizer(b)
                .activity_regularizer(a),
            Dense::new(Activation::Softmax)
                .kernel_regularizer(k)
                .activity_regularizer(a),
        ),
        7,
    )
    .unwrap();
    let spec = ModelSpec {
        input_shape: vec![4],
        layers: vec![
            LayerSpec::dense(16, Activation::Relu)
                .with_kernel_regularizer(k)
                .with_bias_regularizer(b)
                .with_activity_regularizer(a),
            LayerSpec::dense(3, Activation::Softmax)
                .with_kernel_regularizer(k)
                .with_activity_regularizer(a),
        ],
    };
    let rt = spec.build(7).unwrap();
    // Same seed → same initial weights.
    for i in 0..4 {
        if let Err(e) = same_bits(
            &format!("initial tensor {i}"),
            typed.params.tensor(i),
            rt.params.tensor(i),
        ) {
            panic!("{e}");
        }
    }
    let ot = Adam::new(0.01, &typed.params).unwrap();
    let or = Adam::new(0.01, &rt.params).unwrap();
    let loss = Loss::CategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    let mut tt = Trainer::new(typed, ot, loss);
    let mut tr = Trainer::new(rt, or, loss);
    for epoch in 0..20 {
        let a = tt.fit_epoch(&data, 10, None).unwrap();
        let b = tr.fit_epoch(&data, 10, None).unwrap();
        assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "epoch {epoch} loss");
        if let Err(e) = same_penalties(&format!("epoch {epoch}"), &a.penalties, &b.penalties) {
            panic!("{e}");
        }
    }
    assert!(tt.model.params.tensor_count() == 4);
    for i in 0..4 {
        let (p, q) = (tt.model.params.tensor(i), tr.model.params.tensor(i));
        assert!(
            p.iter().zip(q).all(|(a, b)| a.to_bits() == b.to_bits()),
            "tensor {i}"
        );
    }
    assert_eq!(
        microfit::core::params::weights_hash(&tt.model.params),
        microfit::core::params::weights_hash(&tr.model.params)
    );
}
