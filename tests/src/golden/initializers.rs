//! `initializers_*.json`: fans and Glorot limits for every shape, draws within the limit, and
//! the Dense default initializers.

use microfit::core::activation::Activation;
use microfit::core::init::{Initializer, fans};
use microfit::core::params::Params;
use microfit::core::rng::Rng;
use microfit::keras::spec_from_keras_value;
use microfit::model::LayerSpec;
use serde_json::{Value, json};

use super::check::{Checker, Tol};
use super::tensor::{floats, num};

pub(super) fn run(c: &mut Checker, v: &Value) {
    let cases = c
        .optional(v, "cases", "")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for case in &cases {
        c.case();
        let sh: Vec<usize> = case["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().expect("dim") as usize)
            .collect();
        let (fi, fo) = fans(&sh);
        c.truth(
            &format!(
                "fans({sh:?}) = ({fi}, {fo}) vs ({}, {})",
                case["fan_in"], case["fan_out"]
            ),
            fi as u64 == case["fan_in"].as_u64().expect("fan_in")
                && fo as u64 == case["fan_out"].as_u64().expect("fan_out"),
        );
        let limit = Initializer::glorot_limit(fi, fo);
        let expected = num(&case["glorot_uniform_limit"]);
        c.close1(
            &format!("glorot_limit{sh:?}"),
            limit,
            expected,
            Tol {
                rtol: 1e-6,
                atol: 0.0,
            },
        );
        let n: usize = sh.iter().product();
        let mut w = vec![0.0f32; n];
        Initializer::GlorotUniform.fill(&mut w, &sh, &mut Rng::new(n as u64));
        let l32 = expected as f32;
        c.truth(
            &format!("GlorotUniform{sh:?} draws within ±{l32}"),
            w.iter().all(|x| x.abs() <= l32),
        );
        c.truth(
            &format!("Keras' own draws for {sh:?} lie within our limit"),
            num(&case["sample_min"]) >= -f64::from(limit)
                && num(&case["sample_max"]) <= f64::from(limit),
        );
    }
    let Some(d) = c.optional(v, "dense_defaults", "") else {
        return;
    };
    c.case();
    let ks = &d["kernel_shape"];
    let (n_in, units) = (ks[0].as_u64().expect("in"), ks[1].as_u64().expect("out"));
    // A Keras Dense config that names the recorded default initializers ...
    let cfg = json!({"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, n_in]}},
        {"class_name": "Dense", "config": {"units": units,
            "kernel_initializer": {"class_name": d["kernel_initializer"], "config": {}},
            "bias_initializer": {"class_name": d["bias_initializer"], "config": {}}}}]});
    let (spec, _) = spec_from_keras_value(&cfg).unwrap_or_else(|e| panic!("dense_defaults: {e}"));
    let parsed = spec.layers[0].dense_config().expect("dense").to_owned();
    // ... gives our defaults.
    let ours = LayerSpec::dense(units as usize, Activation::Linear);
    let ours = ours.dense_config().expect("dense");
    c.truth(
        "Dense default initializers are Keras' (GlorotUniform kernel, Zeros bias)",
        parsed.kernel_initializer == ours.kernel_initializer
            && parsed.bias_initializer == ours.bias_initializer,
    );
    let m = spec.build(3).expect("build");
    c.bits(
        "Dense default bias",
        m.params.tensor(1),
        &floats(&d["bias"]),
    );
}
