//! The regularization toolbox (issue 12) in the typed core: frozen layers out of the training
//! memory and out of the weight penalties, sample weights in the loss, EMA's first step,
//! constraints after the update. (Bit-for-bit agreement with Keras: the golden runner; with the
//! run-time front door: `std-runtime/tests/engine_identity.rs`.)

use core::mem::size_of;

use microfit_core::layer::PenaltyKind;
use microfit_core::layer::constant::{Const, ConstLayer};
use microfit_core::layer::dense::DenseParams;
use microfit_core::layer::frozen::Frozen;
use microfit_core::optim::{Ema, EmaConfig};
use microfit_core::params::{Params, ZeroParams};
use microfit_core::prelude::*;
use microfit_core::train::{Rows, compute_gradients};

/// W2's network: 64 → 32 relu → 10 softmax.
type W2 = (Dense<64, 32>, Dense<32, 10>);
/// W2 with its first layer frozen (weights borrowed from flash).
type W2Frozen = (Frozen<'static, Dense<64, 32>>, Dense<32, 10>);

static W2_FIRST: DenseParams<64, 32> = DenseParams {
    kernel: [[0.01; 32]; 64],
    bias: [0.0; 32],
};

/// W2 fine-tuned with its first layer frozen, as a firmware writes it: the configuration and
/// the frozen weights are constants.
struct W2FineTune;
impl ConstLayer for W2FineTune {
    type Layer = W2Frozen;
    const LAYER: W2Frozen = (
        Frozen::new(Dense::new(Activation::Relu), &W2_FIRST),
        Dense::new(Activation::Softmax).kernel_constraint(Constraint::max_norm(1.0, Axes::one(0))),
    );
}

#[test]
fn a_frozen_layer_is_gone_from_the_training_memory() {
    // Trainable scalars: the last layer only, 32·10 + 10 (full W2: 64·32 + 32 + 330).
    assert_eq!(Network::<W2>::PARAMS, 2410);
    assert_eq!(Network::<W2Frozen>::PARAMS, 330);
    // Activations are the same (the frozen layer still runs): z, y, dy of 32 and of 10.
    assert_eq!(Network::<W2Frozen>::ACTIVATION_FLOATS, 3 * 32 + 3 * 10);
    assert_eq!(
        Network::<W2Frozen>::ACTIVATION_FLOATS,
        Network::<W2>::ACTIVATION_FLOATS
    );

    // Weights, gradients, Adam's m and v of the trainable weights + activations, by hand; the
    // configurations are constants (`Const`: zero bytes), the frozen weights a `static`.
    type P = <Const<W2FineTune> as Layer>::Params;
    let activations = (3 * 32 + 3 * 10) * 4;
    let frozen = size_of::<Trainer<Network<Const<W2FineTune>>, Adam<P>>>();
    let expected = 330 * 4 * 4 + activations;
    // The rest: the model's generator (16), Adam's config (64), step count (4) and `1 − β`
    // cache (16), the loss (8), padding.
    assert!(
        frozen >= expected && frozen <= expected + 16 + 64 + 4 + 16 + 8 + 8,
        "frozen W2 trainer {frozen} B, {expected} B of weights, slots and activations"
    );
    struct W2Full;
    impl ConstLayer for W2Full {
        type Layer = W2;
        const LAYER: W2 = (
            Dense::new(Activation::Relu),
            Dense::new(Activation::Softmax),
        );
    }
    type Q = <Const<W2Full> as Layer>::Params;
    let full = size_of::<Trainer<Network<Const<W2Full>>, Adam<Q>>>();
    assert_eq!(full - frozen, (2410 - 330) * 4 * 4);
    // Below 40 % of full training (14 % here).
    assert!(frozen * 100 < full * 40, "{frozen} B vs {full} B");
    // The frozen weights are not in the training state at all: a frozen layer's `Params` is
    // `()`, and the network holds a reference (none at all with `Const`).
    assert_eq!(
        size_of::<<Frozen<'static, Dense<64, 32>> as Layer>::Params>(),
        0
    );
    assert_eq!(size_of::<Const<W2FineTune>>(), 0);
}

/// Keras 3 drops a frozen layer's kernel and bias penalties and keeps its activity penalty
/// (checked with Keras 3.15: `layer.trainable = False` leaves `model.losses` with the frozen
/// layer's activity loss and the other layers' weight losses).
#[test]
fn a_frozen_layer_keeps_its_activity_penalty_only() {
    let first = Dense::<3, 4>::new(Activation::Tanh)
        .kernel_regularizer(Reg::l2(0.1))
        .bias_regularizer(Reg::l1(0.2))
        .activity_regularizer(Reg::l1(0.01));
    let last = Dense::<4, 2>::new(Activation::Softmax).kernel_regularizer(Reg::l2(0.1));
    let full = Network::new((first, last), 5).unwrap();
    let w0 = full.params.0.clone();
    let mut frozen =
        Network::with_params((Frozen::new(first, &w0), last), ((), full.params.1.clone()));
    let mut unfrozen = Network::with_params((first, last), full.params.clone());
    let x = [0.5f32, -1.0, 2.0, 1.0, 0.0, -0.5];
    let data = Samples::new(&x, 3, Targets::Classes(&[0, 1])).unwrap();
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let a = compute_gradients::<Portable, _>(&mut frozen, loss, &data, Rows::Range(0, 2)).unwrap();
    let b =
        compute_gradients::<Portable, _>(&mut unfrozen, loss, &data, Rows::Range(0, 2)).unwrap();
    let kinds: Vec<_> = a
        .penalties
        .entries()
        .iter()
        .map(|e| (e.layer, e.kind))
        .collect();
    assert_eq!(
        kinds,
        [(0, PenaltyKind::Activity), (1, PenaltyKind::Kernel)]
    );
    // The same forward pass: the same data loss and activity penalty; the total differs by
    // exactly the dropped kernel and bias penalties.
    assert_eq!(a.data_loss.to_bits(), b.data_loss.to_bits());
    for (l, k) in [(0, PenaltyKind::Activity), (1, PenaltyKind::Kernel)] {
        assert_eq!(
            a.penalties.get(l, k).to_bits(),
            b.penalties.get(l, k).to_bits()
        );
    }
    let dropped = b.penalties.get(0, PenaltyKind::Kernel) + b.penalties.get(0, PenaltyKind::Bias);
    assert!(dropped > 0.0);
    assert!(((b.total_loss - a.total_loss) - dropped).abs() <= 1e-6 * b.total_loss);
    // The last layer's gradients are those of the unfrozen network.
    for i in 0..2 {
        assert_eq!(frozen.grads.1.tensor(i), unfrozen.grads.1.tensor(i));
    }
    // Training never moves the frozen weights (they are borrowed), and moves the rest.
    let mut t = Trainer::new(frozen, Sgd::new(0.5).unwrap(), loss);
    let before = t.model.params.1.clone();
    t.fit_epoch(&data, 2, None).unwrap();
    assert_eq!(t.model.layers.0.weights, &w0);
    assert_ne!(t.model.params.1, before);
}

/// A typed layer cannot be "frozen" by its config: `Frozen` does it.
#[test]
fn trainable_false_on_a_typed_layer_is_refused() {
    let mut d = Dense::<2, 2>::new(Activation::Relu);
    d.config.trainable = false;
    let e = Network::new(d, 0).unwrap_err();
    assert!(e.to_string().contains("trainable"), "{e}");
    // And a constraint naming an axis the kernel does not have.
    let d = Dense::<2, 2>::new(Activation::Relu)
        .kernel_constraint(Constraint::unit_norm(Axes::list(&[0, 1, 2])));
    assert!(Network::new(d, 0).is_err());
}

/// The data loss and gradients with `sample_weight`: Keras' `Σ wᵢ·lossᵢ / B`.
#[test]
fn sample_weights_weight_each_sample_over_the_batch_size() {
    let layers = (
        Dense::<3, 5>::new(Activation::Relu),
        Dense::<5, 3>::new(Activation::Softmax),
    );
    let net = Network::new(layers, 11).unwrap();
    let x = [
        0.5f32, -1.0, 2.0, 1.0, 0.0, -0.5, 0.25, 0.75, -2.0, 1.5, 1.5, 0.1,
    ];
    let y = [0u32, 1, 2, 1];
    let loss = Loss::CategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.1,
    };
    let plain = Samples::new(&x, 3, Targets::Classes(&y)).unwrap();
    let grads = |w: Option<&[f32]>| {
        let mut m = net.clone();
        let s = match w {
            Some(w) => plain.with_sample_weights(w).unwrap(),
            None => plain,
        };
        let r = compute_gradients::<Portable, _>(&mut m, loss, &s, Rows::Range(0, 4)).unwrap();
        (r.data_loss, m.grads)
    };
    let (l1, g1) = grads(None);
    // Weights of 1: the very same bits.
    let (l, g) = grads(Some(&[1.0; 4]));
    assert_eq!((l.to_bits(), &g), (l1.to_bits(), &g1));
    // Weights of 2: twice the loss and the gradients, exactly (a power of two).
    let (l, g) = grads(Some(&[2.0; 4]));
    assert_eq!(l, 2.0 * l1);
    for i in 0..g.tensor_count() {
        for (a, b) in g.tensor(i).iter().zip(g1.tensor(i)) {
            assert_eq!(*a, 2.0 * b);
        }
    }
    // A weight of 0 drops the sample from the sum but not from the batch size: the loss is
    // (Σ of the other samples' losses) / 4, by hand from each sample's own loss.
    let one = |i: usize| {
        let mut m = net.clone();
        let s = Samples::new(&x[3 * i..3 * i + 3], 3, Targets::Classes(&y[i..=i])).unwrap();
        compute_gradients::<Portable, _>(&mut m, loss, &s, Rows::Range(0, 1))
            .unwrap()
            .data_loss
    };
    let (l, _) = grads(Some(&[1.0, 0.0, 3.0, 0.5]));
    let want = (one(0) + 3.0 * one(2) + 0.5 * one(3)) / 4.0;
    assert!((l - want).abs() <= 1e-6 * want, "{l} vs {want}");
    // Bad weights are refused.
    assert!(plain.with_sample_weights(&[1.0; 3]).is_err());
    assert!(plain.with_sample_weights(&[1.0, -1.0, 1.0, 1.0]).is_err());
    assert!(
        plain
            .with_sample_weights(&[1.0, f32::NAN, 1.0, 1.0])
            .is_err()
    );
}

/// EMA: the first step's average is the updated weights; `finalize_variable_values` copies
/// the averages; an overwrite frequency copies them every `n` steps.
#[test]
fn ema_first_step_and_overwrite() {
    let mut w = DenseParams::<2, 1>::zeroed();
    let g = DenseParams::<2, 1> {
        kernel: [[1.0], [-2.0]],
        bias: [0.5],
    };
    let cfg = EmaConfig {
        ema_momentum: 0.9,
        ema_overwrite_frequency: Some(3),
    };
    let mut opt = Ema::new(Sgd::new(0.1).unwrap(), cfg, &w).unwrap();
    opt.step::<Portable>(&mut w, &mut g.clone());
    assert_eq!(opt.average(), &w);
    let after_one = w.clone();
    opt.step::<Portable>(&mut w, &mut g.clone());
    let k = 0.9f32 * after_one.kernel[0][0] + (1.0 - 0.9f32) * w.kernel[0][0];
    assert_eq!(opt.average().kernel[0][0], k);
    // Step 3: the weights are overwritten with the averages.
    opt.step::<Portable>(&mut w, &mut g.clone());
    assert_eq!(&w, opt.average());
    assert!(EmaConfig::new(1.5).validate().is_err());
}
