//! Keras model configs: the real `Model.get_config()` recorded in `mlp_fit_k3.json` read into a
//! `ModelSpec`, written back in the same shape, and round trips. The first test compares it with
//! the model the README describes for the shipped file; with `MICROFIT_GOLDEN_DIR` pointing at
//! other files (no `mlp_fit_k3.json`, or another model in it) the tests skip with a message.

use microfit::core::prelude::*;
use microfit::keras::{
    KerasCompile, keras_file_config, optimizer_from_keras, spec_from_keras_config,
    spec_from_keras_value, spec_to_keras_config,
};
use microfit::model::{LayerSpec, ModelSpec};
use microfit_tests::golden::{self, json_same};
use serde_json::Value;

/// The shipped `keras_model_config`, if the golden folder has `mlp_fit_k3.json` and `fits`.
fn real_config(test: &str, fits: impl Fn(&Value) -> Result<(), String>) -> Option<Value> {
    golden::shipped_or_skip(test, "mlp_fit_k3.json", |v| fits(&v["keras_model_config"]))
        .map(|v| v["keras_model_config"].clone())
}

/// Any `keras_model_config` that reads.
fn reads(v: &Value) -> Result<(), String> {
    spec_from_keras_value(v)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The model the README describes for mlp_fit: `4 → Dense(8, relu, d1) → Dense(3, softmax, d2)`,
/// d1 kernel L2(0.01), bias L1(0.001), activity L2(0.01); d2 kernel L2(0.01).
fn readme_mlp() -> ModelSpec {
    ModelSpec {
        input_shape: vec![4],
        layers: vec![
            LayerSpec::dense(8, Activation::Relu)
                .with_kernel_regularizer(Reg::l2(0.01))
                .with_bias_regularizer(Reg::l1(0.001))
                .with_activity_regularizer(Reg::l2(0.01)),
            LayerSpec::dense(3, Activation::Softmax).with_kernel_regularizer(Reg::l2(0.01)),
        ],
    }
}

#[test]
fn real_keras_config_reads_as_the_readme_model() {
    let Some(real) =
        real_config(
            "real_keras_config_reads_as_the_readme_model",
            |v| match spec_from_keras_value(v) {
                Ok((s, _)) if s == readme_mlp() => Ok(()),
                Ok((s, _)) => Err(format!("its model is {s:?}, not the README's")),
                Err(e) => Err(e.to_string()),
            },
        )
    else {
        return;
    };
    let (spec, compile) = spec_from_keras_value(&real).expect("keras_model_config");
    assert_eq!(spec, readme_mlp());
    assert!(compile.is_none(), "get_config() holds no compile config");
    // The same from text.
    let (spec2, _) = spec_from_keras_config(&real.to_string()).expect("text");
    assert_eq!(spec2, spec);
}

#[test]
fn written_config_has_the_shape_of_the_real_one() {
    let Some(real) = real_config("written_config_has_the_shape_of_the_real_one", reads) else {
        return;
    };
    let (spec, _) = spec_from_keras_value(&real).expect("keras_model_config");
    let mut ours = spec_to_keras_config(&spec).expect("write");
    // Only the names differ: Keras' layer names were given (d1, d2), ours are the automatic
    // ones, and the model's is Keras' session counter (`sequential`, `sequential_69`, ...).
    ours["name"] = real["name"].clone();
    let names: Vec<Value> = real["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["config"]["name"].clone())
        .collect();
    for (l, n) in ours["layers"].as_array_mut().unwrap().iter_mut().zip(names) {
        l["config"]["name"] = n;
    }
    assert!(json_same(&ours, &real), "ours:\n{ours:#}\nKeras:\n{real:#}");
}

#[test]
fn round_trips() {
    // spec → Keras JSON → spec.
    let spec = readme_mlp();
    let json = spec_to_keras_config(&spec).expect("write");
    assert_eq!(spec_from_keras_value(&json).expect("read").0, spec);

    // The real config → spec → JSON → spec is stable, and so is the JSON.
    let Some(real) = real_config("round_trips", reads) else {
        return;
    };
    let (s1, _) = spec_from_keras_value(&real).expect("read");
    let j1 = spec_to_keras_config(&s1).expect("write");
    let (s2, _) = spec_from_keras_value(&j1).expect("read back");
    assert_eq!(s1, s2);
    assert!(json_same(&spec_to_keras_config(&s2).expect("write"), &j1));

    // Every option we can express, through a .keras config.json with its compile config.
    let spec = ModelSpec {
        input_shape: vec![6],
        layers: vec![
            LayerSpec::dense(5, Activation::Tanh)
                .with_kernel_regularizer(Reg::try_orthogonal(0.5, OrthoMode::Columns).unwrap())
                .with_bias_regularizer(Reg::l1l2(0.001, 0.0))
                .with_activity_regularizer(Reg::l1(1e-4)),
            {
                let mut l = LayerSpec::dense(4, Activation::LeakyRelu(0.2));
                let c = l.dense_config_mut().unwrap();
                c.use_bias = false;
                c.kernel_initializer = microfit::core::init::Initializer::HeNormal;
                c.bias_initializer = microfit::core::init::Initializer::Constant(0.25);
                l
            },
            LayerSpec::dense(2, Activation::Sigmoid)
                .with_kernel_regularizer(Reg::try_orthogonal(0.01, OrthoMode::Rows).unwrap()),
        ],
    };
    let mlp = golden::load("mlp_fit_k3.json");
    let compile = KerasCompile {
        loss: Some(Loss::BinaryCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        }),
        optimizer: Some(optimizer_from_keras(&mlp["optimizer"]).expect("optimizer")),
        metrics: vec!["accuracy".into()],
    };
    let file = keras_file_config(&spec, Some(&compile)).expect("write");
    let (back, c) = spec_from_keras_config(&file.to_string()).expect("read");
    assert_eq!(back, spec);
    assert_eq!(c, Some(compile));
}
