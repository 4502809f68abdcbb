//! The regularization toolbox (issue 12) in models built at run time: a checkpoint of a model
//! with every noise layer resumes to the bits of an uninterrupted run (each layer's generator
//! is part of it); frozen layers keep their weights, have no optimizer slot and no kernel
//! penalty; the specs are checked with errors naming the field.

use microfit::core::constraint::{Axes, Constraint};
use microfit::core::layer::PenaltyKind;
use microfit::core::optim::{Adam, AnyOptimizer, Optimizer};
use microfit::core::params::Params;
use microfit::core::prelude::*;
use microfit::core::rng::Rng;
use microfit::fit::HostTrainer;
use microfit::model::{LayerSpec, ModelSpec, Sequential};
use microfit::modelfile::OptimizerState;

/// Conv1D → SpatialDropout1D → Flatten → Dense → GaussianNoise → GaussianDropout →
/// AlphaDropout → Dropout → ActivityRegularization → Dense.
fn noisy_spec() -> ModelSpec {
    ModelSpec {
        input_shape: vec![6, 2],
        layers: vec![
            LayerSpec::conv1d(3, 2, Activation::Relu),
            LayerSpec::SpatialDropout1D {
                rate: 0.3,
                seed: None,
            },
            LayerSpec::Flatten,
            LayerSpec::dense(8, Activation::Tanh),
            LayerSpec::GaussianNoise {
                stddev: 0.2,
                seed: None,
            },
            LayerSpec::GaussianDropout {
                rate: 0.2,
                seed: Some(4),
            },
            LayerSpec::AlphaDropout {
                rate: 0.1,
                seed: None,
            },
            LayerSpec::dropout(0.2),
            LayerSpec::ActivityRegularization { l1: 0.01, l2: 0.0 },
            LayerSpec::dense(3, Activation::Softmax),
        ],
    }
}

fn data() -> (Vec<f32>, Vec<u32>) {
    let mut r = Rng::new(8);
    let x = (0..30 * 12).map(|_| r.uniform(-1.0, 1.0)).collect();
    let y = (0..30).map(|i| i % 3).collect();
    (x, y)
}

fn bits<P: Params>(p: &P) -> Vec<u32> {
    (0..p.tensor_count())
        .flat_map(|i| p.tensor(i).iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

#[test]
fn a_checkpoint_resumes_every_noise_layer_bit_for_bit() {
    let (x, y) = data();
    let samples = Samples::new(&x, 12, Targets::Classes(&y)).unwrap();
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let fresh = || {
        let m = noisy_spec().build(3).unwrap();
        let o = AnyOptimizer::Adam(Adam::new(0.01, &m.params).unwrap());
        HostTrainer::with_backend(m, o, loss)
    };
    // Uninterrupted: 4 epochs.
    let mut a = fresh();
    let mut reports = Vec::new();
    for _ in 0..4 {
        reports.push(a.fit_epoch(&samples, 7, None).unwrap().loss.to_bits());
    }
    // Interrupted after 2: the checkpoint is what a model file holds.
    let mut b = fresh();
    for _ in 0..2 {
        b.fit_epoch(&samples, 7, None).unwrap();
    }
    let (weights, opt, rng, gens) = (
        b.model.params.clone(),
        OptimizerState::capture(&b.optimizer),
        b.model.rng().to_parts(),
        b.model.dropout_generators(),
    );
    // Every noise layer has drawn, so each has a generator in the checkpoint.
    assert_eq!(gens.iter().filter(|g| g.is_some()).count(), 5, "{gens:?}");
    let mut c = fresh();
    c.model.params = weights;
    opt.restore(&mut c.optimizer).unwrap();
    c.model.set_rng(Rng::from_parts(rng));
    c.model.set_dropout_generators(&gens);
    let mut resumed = Vec::new();
    for _ in 0..2 {
        resumed.push(c.fit_epoch(&samples, 7, None).unwrap().loss.to_bits());
    }
    assert_eq!(resumed, reports[2..]);
    assert_eq!(bits(&c.model.params), bits(&a.model.params));
    // Without the generators the noise differs.
    let mut d = fresh();
    d.model.params = b.model.params.clone();
    OptimizerState::capture(&b.optimizer)
        .restore(&mut d.optimizer)
        .unwrap();
    d.model.set_rng(Rng::from_parts(rng));
    d.fit_epoch(&samples, 7, None).unwrap();
    assert_ne!(bits(&d.model.params), bits(&c_after_one(&b, &samples)));
}

/// `b`'s state trained one more epoch with its generators (the reference of the last check).
fn c_after_one(
    b: &HostTrainer<Sequential, AnyOptimizer<microfit::model::VecParams>>,
    samples: &Samples<'_>,
) -> microfit::model::VecParams {
    let mut c = b.clone();
    c.fit_epoch(samples, 7, None).unwrap();
    c.model.params
}

#[test]
fn frozen_layers_have_no_slots_no_update_and_no_weight_penalty() {
    let mut spec = ModelSpec {
        input_shape: vec![4],
        layers: vec![
            LayerSpec::dense(6, Activation::Relu)
                .with_kernel_regularizer(Reg::l2(0.1))
                .with_activity_regularizer(Reg::l1(0.01)),
            LayerSpec::dense(5, Activation::Relu).with_kernel_regularizer(Reg::l2(0.1)),
            LayerSpec::dense(3, Activation::Softmax)
                .with_kernel_regularizer(Reg::l2(0.1))
                .with_kernel_constraint(Constraint::max_norm(0.5, Axes::one(0))),
        ],
    };
    spec.freeze_first(2);
    let m = spec.build(1).unwrap();
    assert_eq!(m.params.names, ["dense_2/kernel", "dense_2/bias"]);
    assert_eq!(
        m.frozen.names,
        [
            "dense/kernel",
            "dense/bias",
            "dense_1/kernel",
            "dense_1/bias"
        ]
    );
    let all: Vec<&str> = m.weights().iter().map(|(n, _)| *n).collect();
    assert_eq!(all.len(), 6);
    assert_eq!(all[0], "dense/kernel");
    let frozen_before = m.frozen.clone();
    let opt = AnyOptimizer::Adam(Adam::new(0.05, &m.params).unwrap());
    // Adam's slots cover the trainable weights only.
    assert_eq!(opt.slot("m").unwrap().len(), 5 * 3 + 3);
    let (x, y) = data();
    let samples = Samples::new(&x[..30 * 4], 4, Targets::Classes(&y)).unwrap();
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let mut t = HostTrainer::with_backend(m, opt, loss);
    let rep = t.fit_epoch(&samples, 10, None).unwrap();
    // Keras 3: the frozen layers' kernel penalties are dropped, the activity penalty kept.
    let kinds: Vec<_> = rep
        .penalties
        .entries()
        .iter()
        .map(|e| (e.layer, e.kind))
        .collect();
    assert_eq!(
        kinds,
        [(0, PenaltyKind::Activity), (2, PenaltyKind::Kernel)]
    );
    assert_eq!(t.model.frozen, frozen_before);
    assert!(t.optimizer.iterations() > 0);
    // The constraint holds on the trainable kernel.
    let k = &t.model.params.tensors[0];
    for j in 0..3 {
        let n: f32 = (0..5).map(|i| k[i * 3 + j] * k[i * 3 + j]).sum();
        assert!(n.sqrt() <= 0.5 * (1.0 + 1e-6));
    }
    // Frozen weights are set by name like any other.
    let mut m = t.model.clone();
    m.set_weights(&[("dense/bias".into(), vec![1.0; 6])])
        .unwrap();
    assert_eq!(m.frozen.tensors[1], vec![1.0; 6]);
    let before = t.model.clone().predict(&x[..4]).unwrap().to_vec();
    assert_ne!(m.predict(&x[..4]).unwrap(), &before[..]);
}

#[test]
fn specs_name_the_bad_field() {
    let bad = |l: LayerSpec, input: Vec<usize>| {
        ModelSpec {
            input_shape: input,
            layers: vec![l],
        }
        .build(0)
        .unwrap_err()
        .to_string()
    };
    let e = bad(
        LayerSpec::GaussianNoise {
            stddev: 1.5,
            seed: None,
        },
        vec![3],
    );
    assert!(e.contains("layers[0].stddev"), "{e}");
    let e = bad(
        LayerSpec::SpatialDropout2D {
            rate: 0.5,
            seed: None,
        },
        vec![3],
    );
    assert!(e.contains("needs an input of 3 axes"), "{e}");
    let e = bad(
        LayerSpec::AlphaDropout {
            rate: 1.0,
            seed: None,
        },
        vec![3],
    );
    assert!(e.contains("layers[0].rate"), "{e}");
    let e = bad(
        LayerSpec::dense(2, Activation::Relu)
            .with_kernel_constraint(Constraint::unit_norm(Axes::list(&[0, 1, 2]))),
        vec![3],
    );
    assert!(e.contains("layers[0].kernel_constraint"), "{e}");
    let e = bad(
        LayerSpec::ActivityRegularization { l1: -1.0, l2: 0.0 },
        vec![3],
    );
    assert!(e.contains("layers[0]"), "{e}");
}

/// A spec with the toolbox round-trips through serde in the schema's text form (TOML; JSON
/// through serde's buffered internally-tagged enums breaks on builds where another crate turns
/// on `serde_json/arbitrary_precision`, as `defmt-decoder` does in this workspace), and a spec
/// written before it (no constraint, no `trainable`) still reads.
#[test]
fn specs_round_trip_through_serde() {
    let mut spec = noisy_spec();
    spec.layers[0] = LayerSpec::conv1d(3, 2, Activation::Relu)
        .with_kernel_constraint(Constraint::unit_norm(Axes::list(&[0, 1])))
        .with_trainable(false);
    spec.layers[3] = LayerSpec::dense(8, Activation::Tanh)
        .with_kernel_constraint(Constraint::min_max_norm(0.1, 0.9, 0.5, Axes::one(-1)))
        .with_bias_constraint(Constraint::NonNeg);
    let text = toml::to_string(&spec).unwrap();
    let back: ModelSpec = toml::from_str(&text).unwrap();
    assert_eq!(back, spec);
    assert!(text.contains("trainable = false"), "{text}");
    // Before the toolbox: no constraint, no `trainable` keys.
    let old = "input_shape = [4]\n[[layers]]\ntype = \"dense\"\nunits = 3\nactivation = \"relu\"\n";
    let m: ModelSpec = toml::from_str(old).unwrap();
    let c = m.layers[0].dense_config().unwrap();
    assert!(c.trainable && c.kernel_constraint.is_none());
    // The unchanged spec writes no toolbox key.
    let plain = toml::to_string(&m).unwrap();
    assert!(
        !plain.contains("trainable") && !plain.contains("constraint"),
        "{plain}"
    );
}
