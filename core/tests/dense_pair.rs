//! `DensePair` trains to the bits of the tuple it is: every epoch's report (loss, data loss,
//! penalties, metric sums) and every weight, compared with `to_bits`, against the plain
//! `(Dense, Dense)` tuple on a tile of one and on tiles of five — with and without the fused
//! paths (ReLU or not, few or many inputs, inputs wider than the hidden layer, exact zeros in
//! the inputs, no bias, activity regularizers, kernel and bias regularizers), every loss kind,
//! SGD, momentum and Adam, in file order and shuffled; and the same errors on bad input.

use microfit_core::layer::pair::DensePair;
use microfit_core::optim::{AnyOptimizer, Momentum, Sgd};
use microfit_core::params::Params;
use microfit_core::prelude::*;
use microfit_core::train::{EpochReport, Trainable};

fn report_bits(r: &EpochReport) -> Vec<u64> {
    let mut v = vec![
        u64::from(r.loss.to_bits()),
        u64::from(r.data_loss.to_bits()),
        u64::from(r.penalties.overflow.to_bits()),
        u64::from(r.metrics.samples),
        u64::from(r.metrics.correct),
        u64::from(r.metrics.sq_err.to_bits()),
        u64::from(r.metrics.abs_err.to_bits()),
        u64::from(r.steps),
    ];
    for e in r.penalties.entries() {
        v.push((u64::from(e.layer) << 40) | ((e.kind as u64) << 32) | u64::from(e.value.to_bits()));
    }
    v
}

fn weight_bits<P: Params>(p: &P) -> Vec<u32> {
    (0..p.tensor_count())
        .flat_map(|i| p.tensor(i).iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Opt {
    Sgd,
    Momentum,
    Adam,
}

fn make_opt<P: Params>(o: Opt, p: &P) -> AnyOptimizer<P> {
    match o {
        Opt::Sgd => AnyOptimizer::Sgd(Sgd::new(0.05).unwrap()),
        Opt::Momentum => AnyOptimizer::Momentum(Momentum::new(0.05, 0.9, true, p).unwrap()),
        Opt::Adam => AnyOptimizer::Adam(Adam::new(0.02, p).unwrap()),
    }
}

/// Three epochs and an evaluation: every report's bits and the final weights' bits.
fn run<M: Trainable>(
    model: M,
    opt: Opt,
    loss: Loss,
    data: &Samples<'_>,
    order: Option<&[u32]>,
) -> (Vec<Vec<u64>>, Vec<u32>) {
    let o = make_opt(opt, model.params());
    let mut t = Trainer::new(model, o, loss);
    let mut reps = Vec::new();
    for _ in 0..3 {
        reps.push(report_bits(&t.fit_epoch(data, 6, order).unwrap()));
    }
    reps.push(report_bits(&t.evaluate(data, 4).unwrap()));
    (reps, weight_bits(t.model.params()))
}

/// Inputs: 20 samples in [-1, 1), with exact zeros every `zero_every` values (0: none).
fn inputs(n_in: usize, zero_every: usize) -> Vec<f32> {
    let mut rng = Rng::new(3);
    (0..20 * n_in)
        .map(|i| {
            if zero_every > 0 && i % zero_every == 1 {
                0.0
            } else {
                rng.uniform(-1.0, 1.0)
            }
        })
        .collect()
}

/// The pair and the tuple of `layers`, on a tile of one and on tiles of five, agree.
fn agree<const IN: usize, const H: usize, const O: usize>(
    what: &str,
    layers: (Dense<IN, H>, Dense<H, O>),
    loss: Loss,
    zero_every: usize,
) {
    let x = inputs(IN, zero_every);
    let classes: Vec<u32> = (0..20u32).map(|i| (i * 5 + 1) % O as u32).collect();
    let mut rng = Rng::new(9);
    let dense: Vec<f32> = match loss {
        Loss::MeanSquaredError => (0..20 * O).map(|_| rng.uniform(-1.0, 1.0)).collect(),
        Loss::BinaryCrossentropy { .. } => (0..20 * O)
            .map(|_| f32::from(rng.next_u32().is_multiple_of(2)))
            .collect(),
        _ => (0..20 * O)
            .map(|i| f32::from(classes[i / O] as usize == i % O))
            .collect(),
    };
    let targets = match loss {
        Loss::SparseCategoricalCrossentropy { .. } => Targets::Classes(&classes),
        _ => Targets::Dense {
            values: &dense,
            width: O,
        },
    };
    let data = Samples::new(&x, IN, targets).unwrap();
    let mut shuffled: Vec<u32> = (0..20).collect();
    Rng::new(4).shuffle(&mut shuffled);
    let init = Network::new(layers, 11).unwrap().params;
    for opt in [Opt::Sgd, Opt::Momentum, Opt::Adam] {
        for order in [None, Some(&shuffled[..])] {
            let ctx = format!("{what}, {loss:?}, {opt:?}, shuffled {}", order.is_some());
            let pair = Network::with_params(DensePair::new(layers), init.clone());
            let want = run(pair, opt, loss, &data, order);
            let tuple = Network::with_params(layers, init.clone());
            assert_eq!(
                run(tuple, opt, loss, &data, order),
                want,
                "{ctx}: tuple, tile 1"
            );
            let pair5 = Network::<_, 5>::with_params_tiled(DensePair::new(layers), init.clone());
            assert_eq!(
                run(pair5, opt, loss, &data, order),
                want,
                "{ctx}: pair, tile 5"
            );
            let tuple5 = Network::<_, 5>::with_params_tiled(layers, init.clone());
            assert_eq!(
                run(tuple5, opt, loss, &data, order),
                want,
                "{ctx}: tuple, tile 5"
            );
        }
    }
}

fn losses() -> [(Loss, Activation); 6] {
    [
        (
            Loss::SparseCategoricalCrossentropy { from_logits: false },
            Activation::Softmax,
        ),
        (
            Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            Activation::Softmax,
        ),
        (
            Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.1,
            },
            Activation::Softmax,
        ),
        (
            Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            Activation::Sigmoid,
        ),
        (
            Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.2,
            },
            Activation::Sigmoid,
        ),
        (Loss::MeanSquaredError, Activation::Linear),
    ]
}

/// The fused paths: a ReLU hidden layer, few inputs (fused forward and backward), with and
/// without zeros in the inputs, with and without biases and regularizers.
#[test]
fn fused_relu_pair_has_the_tuples_bits() {
    for (loss, out) in losses() {
        for zero_every in [0, 3] {
            let plain = (
                Dense::<4, 16>::new(Activation::Relu),
                Dense::<16, 3>::new(out),
            );
            agree("relu 4-16-3", plain, loss, zero_every);
            let regularized = (
                Dense::<4, 16>::new(Activation::Relu)
                    .kernel_regularizer(Reg::l2(1e-2))
                    .bias_regularizer(Reg::l1(1e-3)),
                Dense::<16, 3>::new(out)
                    .kernel_regularizer(Reg::l1l2(1e-3, 1e-2))
                    .activity_regularizer(Reg::l2(1e-3)),
            );
            agree("relu 4-16-3, regularized", regularized, loss, zero_every);
            let no_bias = (
                Dense::<4, 16>::new(Activation::Relu).use_bias(false),
                Dense::<16, 3>::new(out).use_bias(false),
            );
            agree("relu 4-16-3, no bias", no_bias, loss, zero_every);
        }
    }
}

/// The tuple's paths inside the pair: an activity regularizer on the ReLU layer (forward
/// fused, backward not), more inputs than registers (backward fused only), inputs wider than
/// the hidden layer (forward and backward not fused), other hidden activations — leaky ReLU,
/// whose backward pass reads the pre-activations the pair does not keep (recomputed), with a
/// negative slope too, where the outputs' signs would not tell them.
#[test]
fn unfused_cases_have_the_tuples_bits() {
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let out = Activation::Softmax;
    let activity = (
        Dense::<4, 8>::new(Activation::Relu).activity_regularizer(Reg::l1(1e-2)),
        Dense::<8, 3>::new(out),
    );
    agree("relu with activity regularizer", activity, loss, 0);
    agree(
        "relu 12-16-3",
        (
            Dense::<12, 16>::new(Activation::Relu),
            Dense::<16, 3>::new(out),
        ),
        loss,
        5,
    );
    agree(
        "relu 20-8-3",
        (
            Dense::<20, 8>::new(Activation::Relu),
            Dense::<8, 3>::new(out),
        ),
        loss,
        4,
    );
    for slope in [0.2, -0.5] {
        agree(
            "leaky relu 4-8-3, activity regularizer",
            (
                Dense::<4, 8>::new(Activation::LeakyRelu(slope))
                    .activity_regularizer(Reg::l2(1e-2)),
                Dense::<8, 3>::new(out),
            ),
            loss,
            3,
        );
    }
    agree(
        "tanh 4-8-3",
        (
            Dense::<4, 8>::new(Activation::Tanh),
            Dense::<8, 3>::new(out),
        ),
        loss,
        0,
    );
}

/// Bad input gives the tuple's error, at the same sample.
#[test]
fn same_errors() {
    let layers = (
        Dense::<4, 16>::new(Activation::Relu),
        Dense::<16, 3>::new(Activation::Softmax),
    );
    let mut x = inputs(4, 0);
    x[4 * 7 + 2] = f32::NAN;
    let labels: Vec<u32> = (0..20).map(|i| i % 3).collect();
    let data = Samples::new(&x, 4, Targets::Classes(&labels)).unwrap();
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let pair = Network::new(DensePair::new(layers), 1).unwrap();
    let tuple = Network::new(layers, 1).unwrap();
    let (ap, at) = (
        Adam::new(0.01, &pair.params).unwrap(),
        Adam::new(0.01, &tuple.params).unwrap(),
    );
    let e1 = Trainer::new(pair, ap, loss)
        .fit_epoch(&data, 5, None)
        .unwrap_err();
    let e2 = Trainer::new(tuple, at, loss)
        .fit_epoch(&data, 5, None)
        .unwrap_err();
    assert_eq!(e1, e2);
}

/// The fused forward kernel on zero inputs: their rows of `W1` stay out of the sums even when
/// they hold `∞` or NaN (as `forward` skips them), `-0` is a zero input, and inputs whose
/// product underflows to 0 (none of them zero) keep their rows.
#[test]
fn fused_forward_keeps_zero_inputs_out() {
    use microfit_core::kernels::dense::{forward, relu_pair_forward};
    // By hand: z1 = (2·1 + 0.5, 2·(-1) + 0.5) = (2.5, -1.5), y1 = (2.5, 0), z2 = 2.5·2 + 1.
    let w1 = [[f32::INFINITY, f32::NAN], [1.0, -1.0]];
    let (w2, b2) = ([[2.0f32], [3.0]], [1.0f32]);
    for zero in [0.0f32, -0.0] {
        let (mut y1, mut z2) = ([9.0; 2], [9.0; 1]);
        relu_pair_forward(
            &[zero, 2.0],
            (&w1, Some(&[0.5; 2])),
            &mut y1,
            (&w2, Some(&b2)),
            &mut z2,
        );
        assert_eq!((y1, z2), ([2.5, 0.0], [6.0]), "zero input {zero:?}");
    }
    // Against `forward`, ReLU, `forward`: zeros and non-finite weights in several rows, tiny
    // inputs (product 0), an infinite input (product NaN with a zero).
    let w1: [[f32; 3]; 4] = [
        [f32::INFINITY, 1.0, f32::NAN],
        [0.5, -2.0, 1.5],
        [f32::NEG_INFINITY, 3.0, -1.0],
        [-0.25, 0.75, 2.0],
    ];
    let (b1, w2, b2) = (
        [0.1f32, -0.2, 0.3],
        [[1.0f32, -1.0], [0.5, 2.0], [-3.0, 0.25]],
        [0.0f32, -0.5],
    );
    let cases: [[f32; 4]; 5] = [
        [0.0, 1.0, -0.0, 2.0],
        [0.0, 1e-30, 0.0, 1e-30],
        [3.0, 1e-30, 1.0, 1e-30],
        [0.0, f32::INFINITY, 0.0, 1.0],
        [1.0, -1.0, 0.5, 0.0],
    ];
    for x in cases {
        let (mut y1, mut z2) = ([9.0; 3], [9.0; 2]);
        relu_pair_forward(&x, (&w1, Some(&b1)), &mut y1, (&w2, Some(&b2)), &mut z2);
        let (mut r1, mut r2) = ([0.0; 3], [0.0; 2]);
        forward(&x, w1.as_flattened(), Some(&b1), &mut r1);
        let h = r1.map(|v| if v > 0.0 { v } else { 0.0 });
        forward(&h, w2.as_flattened(), Some(&b2), &mut r2);
        assert_eq!(y1.map(f32::to_bits), h.map(f32::to_bits), "y1, x = {x:?}");
        assert_eq!(z2.map(f32::to_bits), r2.map(f32::to_bits), "z2, x = {x:?}");
    }
}
