//! The tiny CNN on the bundled digits (8×8×1 images, pixels / 16):
//! Conv2D 3×3×8 relu (kernel L2 1e-4) → MaxPooling2D 2 → Flatten → Dense 10 softmax,
//! Adam(1e-3), batch 32, sparse categorical crossentropy, seeded stratified 80/20 split,
//! a seeded shuffle each epoch (Keras' `fit(shuffle=True)`).
//!
//! * `tiny_cnn_reaches_95_percent_on_digits`: the typed model (`zoo::TinyCnn`) reaches ≥ 95 %
//!   validation accuracy within [`MAX_EPOCHS`] epochs.
//! * `typed_and_runtime_cnn_train_to_identical_bits`: the same CNN (plus a Dropout layer, active
//!   in training) built at run time from a `ModelSpec` trains to the same bits as the typed one.
//! * `runtime_cnn_spec`: shapes, Keras-style names, weight shapes and the errors of bad specs.

use microfit::core::kernels::conv::Padding;
use microfit::core::layer::PenaltyKind;
use microfit::core::params::weights_hash;
use microfit::core::prelude::*;
use microfit::core::zoo;
use microfit::data::{Bundled, SplitSpec, epoch_order, split};
use microfit::model::{LayerSpec, ModelSpec};
use microfit_tests::golden::{same_bits, same_penalties};

/// The number of epochs within which the CNN must reach 95 % validation accuracy. Measured:
/// first ≥ 95 % after epoch 33 (0.9526), 0.9554 after epoch 40 (same bits on every target:
/// the data order, the split and the initial weights are all seeded).
const MAX_EPOCHS: usize = 40;
const SEED: u64 = 42;

struct Digits {
    train_x: Vec<f32>,
    train_y: Vec<u32>,
    val_x: Vec<f32>,
    val_y: Vec<u32>,
}

fn digits() -> Digits {
    let ds = Bundled::Digits.load().expect("bundled digits");
    assert_eq!(
        (ds.n_samples(), ds.n_features(), ds.n_classes()),
        (1797, 64, 10)
    );
    let parts = split(
        &ds,
        SplitSpec {
            validation: 0.2,
            test: 0.0,
            seed: SEED,
            stratify: true,
        },
    )
    .expect("split");
    let xy = |d: &microfit::data::Dataset| {
        // Pixels are integers 0..=16; the host workload scales them by 1/16.
        let x: Vec<f32> = d.features.iter().map(|v| v / 16.0).collect();
        let y: Vec<u32> = (0..d.n_samples())
            .map(|i| d.label(i).expect("class"))
            .collect();
        (x, y)
    };
    let (train_x, train_y) = xy(&parts.train);
    let (val_x, val_y) = xy(parts.validation.as_ref().expect("validation part"));
    Digits {
        train_x,
        train_y,
        val_x,
        val_y,
    }
}

fn order(n: usize, epoch: usize) -> Vec<u32> {
    epoch_order(n, SEED, epoch as u64)
        .into_iter()
        .map(|i| i as u32)
        .collect()
}

#[test]
fn tiny_cnn_reaches_95_percent_on_digits() {
    let d = digits();
    assert_eq!(d.val_y.len(), 359, "20 % of 1797, rounded");
    let train = Samples::new(&d.train_x, 64, Targets::Classes(&d.train_y)).expect("train");
    let val = Samples::new(&d.val_x, 64, Targets::Classes(&d.val_y)).expect("val");
    let net = zoo::tiny_cnn(SEED).expect("net");
    let adam = Adam::new(1e-3, &net.params).expect("adam");
    let mut tr = Trainer::new(
        net,
        adam,
        Loss::SparseCategoricalCrossentropy { from_logits: false },
    );
    let mut reached = None;
    let mut last = 0.0;
    let mut accs = Vec::new();
    for epoch in 0..MAX_EPOCHS {
        let o = order(train.len(), epoch);
        let fit = tr.fit_epoch(&train, 32, Some(&o)).expect("epoch");
        // Keras' loss: data loss + the kernel L2 penalty of the conv layer.
        assert!(
            (fit.loss - fit.data_loss - fit.penalties.get(0, PenaltyKind::Kernel)).abs() < 1e-5
        );
        let ev = tr.evaluate(&val, 359).expect("evaluate");
        last = ev.metrics.accuracy();
        println!(
            "epoch {:2}: train loss {:.4} acc {:.4} | val loss {:.4} acc {:.4}",
            epoch + 1,
            fit.loss,
            fit.metrics.accuracy(),
            ev.loss,
            last
        );
        accs.push(last);
        if reached.is_none() && last >= 0.95 {
            reached = Some(epoch + 1);
        }
    }
    println!(
        "tiny CNN: >= 95 % validation accuracy after {reached:?} epochs; after {MAX_EPOCHS}: {last:.4}"
    );
    assert!(
        reached.is_some(),
        "validation accuracy {last} < 0.95 after {MAX_EPOCHS} epochs"
    );
    // And it stays there: the mean of the last five epochs.
    let tail = accs[accs.len() - 5..].iter().sum::<f32>() / 5.0;
    assert!(
        tail >= 0.95,
        "mean validation accuracy of the last 5 epochs {tail} < 0.95"
    );
}

fn cnn_spec(dropout: f32) -> ModelSpec {
    ModelSpec {
        input_shape: vec![8, 8, 1],
        layers: vec![
            LayerSpec::conv2d(8, [3, 3], Activation::Relu).with_kernel_regularizer(Reg::l2(1e-4)),
            LayerSpec::max_pooling(&[2, 2]),
            LayerSpec::Flatten,
            LayerSpec::dropout(dropout),
            LayerSpec::dense(10, Activation::Softmax),
        ],
    }
}

type WithDropout = (
    Conv2D<8, 8, 1, 8, 3, 3, 6, 6>,
    MaxPooling2D<6, 6, 8, 2, 2, 3, 3>,
    Flatten<[[[f32; 8]; 3]; 3], 72>,
    Dropout<[f32; 72]>,
    Dense<72, 10>,
);

#[test]
fn typed_and_runtime_cnn_train_to_identical_bits() {
    let d = digits();
    let n = 320;
    let train =
        Samples::new(&d.train_x[..n * 64], 64, Targets::Classes(&d.train_y[..n])).expect("train");
    let typed: Network<WithDropout> = Network::new(
        (
            Conv2D::new(Activation::Relu).kernel_regularizer(Reg::l2(1e-4)),
            MaxPooling2D::new(),
            Flatten::new(),
            Dropout::new(0.25),
            Dense::new(Activation::Softmax),
        ),
        7,
    )
    .expect("typed");
    let rt = cnn_spec(0.25).build(7).expect("runtime");
    assert_eq!(rt.param_count(), Network::<WithDropout>::PARAMS);
    for i in 0..4 {
        if let Err(e) = same_bits(
            &format!("initial tensor {i}"),
            typed.params.tensor(i),
            rt.params.tensor(i),
        ) {
            panic!("{e}");
        }
    }
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let (ot, or) = (
        Adam::new(1e-3, &typed.params).expect("adam"),
        Adam::new(1e-3, &rt.params).expect("adam"),
    );
    let (mut tt, mut tr) = (Trainer::new(typed, ot, loss), Trainer::new(rt, or, loss));
    for epoch in 0..2 {
        let o = order(n, epoch);
        let a = tt.fit_epoch(&train, 32, Some(&o)).expect("typed epoch");
        let b = tr.fit_epoch(&train, 32, Some(&o)).expect("runtime epoch");
        assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "epoch {epoch} loss");
        if let Err(e) = same_penalties(&format!("epoch {epoch}"), &a.penalties, &b.penalties) {
            panic!("{e}");
        }
        let (ea, eb) = (
            tt.evaluate(&train, 64).expect("eval"),
            tr.evaluate(&train, 64).expect("eval"),
        );
        assert_eq!(
            ea.loss.to_bits(),
            eb.loss.to_bits(),
            "epoch {epoch} evaluation"
        );
    }
    assert_eq!(
        weights_hash(&tt.model.params),
        weights_hash(&tr.model.params)
    );
    // The dropout really was active in training (evaluation is deterministic).
    let e1 = tt.evaluate(&train, 64).expect("eval").loss;
    let e2 = tt.evaluate(&train, 64).expect("eval").loss;
    assert_eq!(e1.to_bits(), e2.to_bits());
    let o = order(n, 0);
    let with_dropout_first = {
        let t: Network<WithDropout> = Network::new(
            (
                Conv2D::new(Activation::Relu).kernel_regularizer(Reg::l2(1e-4)),
                MaxPooling2D::new(),
                Flatten::new(),
                Dropout::new(0.25),
                Dense::new(Activation::Softmax),
            ),
            7,
        )
        .expect("typed");
        let a = Adam::new(1e-3, &t.params).expect("adam");
        Trainer::new(t, a, loss)
            .fit_epoch(&train, 32, Some(&o))
            .expect("epoch")
            .loss
    };
    // The same network without the Dropout layer (same seed, same initial weights).
    let plain = zoo::tiny_cnn(7).expect("net");
    let a = Adam::new(1e-3, &plain.params).expect("adam");
    let without = Trainer::new(plain, a, loss)
        .fit_epoch(&train, 32, Some(&o))
        .expect("epoch")
        .loss;
    assert_ne!(
        with_dropout_first.to_bits(),
        without.to_bits(),
        "dropout changed nothing in training"
    );
}

#[test]
fn runtime_cnn_spec() {
    let spec = cnn_spec(0.5);
    let shapes = spec.shapes().expect("shapes");
    assert_eq!(
        shapes,
        vec![vec![6, 6, 8], vec![3, 3, 8], vec![72], vec![72], vec![10]]
    );
    let m = spec.build(1).expect("build");
    assert_eq!(
        m.layer_names,
        ["conv2d", "max_pooling2d", "flatten", "dropout", "dense"]
    );
    assert_eq!(
        m.params.names,
        ["conv2d/kernel", "conv2d/bias", "dense/kernel", "dense/bias"]
    );
    assert_eq!(
        m.params.shapes,
        vec![vec![3, 3, 1, 8], vec![8], vec![72, 10], vec![10]]
    );
    // Glorot limit with Keras' conv fans: fan_in = 3·3·1 = 9, fan_out = 3·3·8 = 72.
    let limit = (6.0f32 / 81.0).sqrt();
    assert!(m.params.tensors[0].iter().all(|w| w.abs() <= limit));
    // Strided same conv, average pooling and Conv1D/Conv3D shapes.
    let s = ModelSpec {
        input_shape: vec![7, 5, 2],
        layers: vec![
            LayerSpec::conv2d(4, [3, 2], Activation::Tanh)
                .with_strides(&[2])
                .with_padding(Padding::Same),
            LayerSpec::average_pooling(&[2, 2])
                .with_strides(&[1, 1])
                .with_padding(Padding::Same),
        ],
    };
    assert_eq!(
        s.shapes().expect("shapes"),
        vec![vec![4, 3, 4], vec![4, 3, 4]]
    );
    let s1 = ModelSpec {
        input_shape: vec![9, 3],
        layers: vec![
            LayerSpec::conv1d(2, 3, Activation::Linear).with_dilation_rate(&[2]),
            LayerSpec::Flatten,
        ],
    };
    assert_eq!(s1.shapes().expect("shapes"), vec![vec![5, 2], vec![10]]);
    let s3 = ModelSpec {
        input_shape: vec![4, 4, 3, 2],
        layers: vec![
            LayerSpec::conv3d(2, [2, 2, 2], Activation::Relu),
            LayerSpec::max_pooling(&[1, 1, 2]),
        ],
    };
    assert_eq!(
        s3.shapes().expect("shapes"),
        vec![vec![3, 3, 2, 2], vec![3, 3, 1, 2]]
    );
    assert_eq!(
        s3.build(0).expect("build").layer_names,
        ["conv3d", "max_pooling3d"]
    );

    // Bad specs are errors naming the field, never panics.
    let bad = |layers: Vec<LayerSpec>, input: Vec<usize>| {
        ModelSpec {
            input_shape: input,
            layers,
        }
        .shapes()
        .unwrap_err()
    };
    let e = bad(
        vec![LayerSpec::conv2d(8, [3, 3], Activation::Relu)],
        vec![64],
    );
    assert_eq!(e.field, "layers[0]");
    let e = bad(
        vec![LayerSpec::conv2d(8, [9, 3], Activation::Relu)],
        vec![8, 8, 1],
    );
    assert_eq!(e.field, "layers[0].kernel_size");
    let three = LayerSpec::Conv2D {
        filters: 8,
        kernel_size: vec![3, 3, 3],
        strides: vec![],
        padding: Padding::Valid,
        dilation_rate: vec![],
        config: microfit::core::layer::dense::DenseConfig::new(Activation::Relu),
    };
    let e = bad(vec![three], vec![8, 8, 1]);
    assert_eq!(e.field, "layers[0].kernel_size");
    let e = bad(
        vec![LayerSpec::conv2d(0, [3, 3], Activation::Relu)],
        vec![8, 8, 1],
    );
    assert_eq!(e.field, "layers[0].filters");
    let e = bad(
        vec![
            LayerSpec::conv2d(8, [3, 3], Activation::Relu)
                .with_strides(&[2])
                .with_dilation_rate(&[2]),
        ],
        vec![8, 8, 1],
    );
    assert_eq!(e.field, "layers[0].dilation_rate");
    let e = bad(
        vec![
            LayerSpec::conv2d(8, [3, 3], Activation::Relu)
                .with_kernel_regularizer(Reg::try_orthogonal(0.1, OrthoMode::Rows).expect("reg")),
        ],
        vec![8, 8, 1],
    );
    assert_eq!(e.field, "layers[0].kernel_regularizer");
    let e = bad(
        vec![LayerSpec::Flatten, LayerSpec::dropout(1.0)],
        vec![8, 8, 1],
    );
    assert_eq!(e.field, "layers[1].rate");
    let e = bad(vec![LayerSpec::max_pooling(&[2, 2, 2, 2])], vec![8, 8, 1]);
    assert_eq!(e.field, "layers[0].pool_size");
    let e = bad(
        vec![LayerSpec::max_pooling(&[2, 2]).with_strides(&[0])],
        vec![8, 8, 1],
    );
    assert_eq!(e.field, "layers[0].strides");
    let e = bad(vec![LayerSpec::dense(3, Activation::Relu)], vec![8, 8, 1]);
    assert_eq!(e.field, "layers[0]");
}
