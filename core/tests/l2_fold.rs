//! The L2 penalties' `Σw²` taken from the optimizer's update loop (`Backend::FOLD_SUM_SQ`,
//! `regularizer::SumSqs`) change no bit: a backend that folds them trains to the very bits of
//! the portable backend, which computes every penalty in a pass of its own — every epoch's
//! loss, data loss and named penalties, and every weight, compared with `to_bits`. Over typed
//! `L2` and `Reg::L2` kernels and biases, L1L2 and L1 next to them (their own path), kernel and
//! bias constraints (rewritten after the update: no sum may be taken from it), SGD, momentum,
//! Nesterov, Adam, AdamW with clipping, an EMA (no sums), weights set between epochs, and
//! batches that do not divide the data.
//!
//! And the sums themselves: the update kernels' `Σw²` against a plain sum in the documented
//! order (element `i` into partial sum `i mod 8`, combined pairwise), written out here.

use microfit_core::backend::{Backend, Portable};
use microfit_core::optim::adam::{Update, update_sq};
use microfit_core::optim::sgd::{momentum_update_sq, sgd_update_sq};
use microfit_core::optim::{Adam, AdamConfig, AnyOptimizer, Clip, Ema, EmaConfig, Momentum, Sgd};
use microfit_core::params::Params;
use microfit_core::prelude::*;
use microfit_core::regularizer::L2;
use microfit_core::train::{EpochReport, Trainable};

/// The portable backend, folding the L2 sums into the updates.
struct Fold;

impl Backend for Fold {
    const FOLD_SUM_SQ: bool = true;
}

/// `Σ v²` in the order the core documents (kernels::reduce), written out.
fn sum_sq_by_hand(v: &[f32]) -> f32 {
    let mut p = [0.0f32; 8];
    for (i, x) in v.iter().enumerate() {
        p[i % 8] += x * x;
    }
    ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))
}

fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

#[test]
fn update_sums_are_sum_sq_of_the_new_weights() {
    for n in [0, 1, 7, 8, 9, 16, 23, 64, 100] {
        let g = values(n, 1);
        let (mut w, mut m, mut v) = (values(n, 2), values(n, 3), values(n, 4));
        for x in &mut v {
            *x = x.abs();
        }
        let s = update_sq::<Portable>(Update {
            w: &mut w,
            g: &g,
            m: &mut m,
            v: &mut v,
            alpha: 0.01,
            one_minus_b1: 0.1,
            one_minus_b2: 0.001,
            epsilon: 1e-7,
        });
        assert_eq!(s.to_bits(), sum_sq_by_hand(&w).to_bits(), "adam, n = {n}");
        let s = sgd_update_sq(&mut w, &g, 0.05);
        assert_eq!(s.to_bits(), sum_sq_by_hand(&w).to_bits(), "sgd, n = {n}");
        for nesterov in [false, true] {
            let s = momentum_update_sq(&mut w, &g, &mut m, 0.05, 0.9, nesterov);
            assert_eq!(
                s.to_bits(),
                sum_sq_by_hand(&w).to_bits(),
                "momentum, n = {n}"
            );
        }
    }
    // Slots of another length than the weights: the plain update, then the sum of all of `w`.
    let g = values(5, 5);
    let mut w = values(9, 6);
    let s = sgd_update_sq(&mut w, &g, 0.05);
    assert_eq!(s.to_bits(), sum_sq_by_hand(&w).to_bits());
}

fn report_bits<const N: usize>(r: &EpochReport<N>) -> Vec<u32> {
    let mut v = vec![r.loss.to_bits(), r.data_loss.to_bits(), r.metrics.correct];
    for e in r.penalties.entries() {
        v.extend([e.layer as u32, e.kind as u32, e.value.to_bits()]);
    }
    v.push(r.penalties.overflow.to_bits());
    v
}

fn weight_bits<P: Params>(p: &P) -> Vec<u32> {
    (0..p.tensor_count())
        .flat_map(|i| p.tensor(i).iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        .collect()
}

/// 37 samples of 6 inputs, 3 classes.
fn data() -> (Vec<f32>, Vec<u32>) {
    let x = values(37 * 6, 9);
    let y = (0..37).map(|i| (i * 7 % 3) as u32).collect();
    (x, y)
}

/// Trains `net` three epochs (batches of 5, then the weights scaled, then batches of 8) on the
/// backend `B`; the report bits of each epoch and the final weights.
fn run<B: Backend, M: Trainable + Clone, O: Optimizer<M::Params> + Clone>(
    net: &M,
    opt: &O,
) -> Vec<Vec<u32>> {
    let (x, y) = data();
    let s = Samples::new(&x, 6, Targets::Classes(&y)).unwrap();
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let mut t = Trainer::<M, O, B>::with_backend(net.clone(), opt.clone(), loss);
    let mut out = vec![report_bits(&t.fit_epoch(&s, 5, None).unwrap())];
    // Weights written between epochs: the next epoch must not see a sum of the old ones.
    let p = t.model.params_mut();
    for i in 0..p.tensor_count() {
        for w in p.tensor_mut(i) {
            *w *= 0.75;
        }
    }
    out.push(report_bits(&t.fit_epoch(&s, 8, None).unwrap()));
    let order: Vec<u32> = (0..37).rev().collect();
    out.push(report_bits(&t.fit_epoch(&s, 4, Some(&order)).unwrap()));
    out.push(report_bits(&t.evaluate(&s, 37).unwrap()));
    out.push(weight_bits(t.model.params()));
    out
}

fn same<M: Trainable + Clone, O: Optimizer<M::Params> + Clone>(what: &str, net: &M, opt: &O) {
    let a = run::<Portable, M, O>(net, opt);
    let b = run::<Fold, M, O>(net, opt);
    assert_eq!(a, b, "{what}");
}

fn optimizers<P: Params>(p: &P) -> Vec<(&'static str, AnyOptimizer<P>)> {
    let mut clipped = AdamConfig {
        learning_rate: 0.01.into(),
        ..AdamConfig::default()
    };
    clipped.common.clip = Clip {
        clipnorm: Some(0.5),
        ..Clip::default()
    };
    clipped.common.weight_decay = Some(0.01);
    vec![
        ("sgd", AnyOptimizer::Sgd(Sgd::new(0.1).unwrap())),
        (
            "momentum",
            AnyOptimizer::Momentum(Momentum::new(0.05, 0.9, false, p).unwrap()),
        ),
        (
            "nesterov",
            AnyOptimizer::Momentum(Momentum::new(0.05, 0.9, true, p).unwrap()),
        ),
        ("adam", AnyOptimizer::Adam(Adam::new(0.01, p).unwrap())),
        (
            "adamw clipnorm",
            AnyOptimizer::Adam(Adam::with_config(clipped, p).unwrap()),
        ),
    ]
}

#[test]
fn reg_l2_kernels_and_biases() {
    type M = (Dense<6, 9>, Dense<9, 3>);
    let layers: M = (
        Dense::new(Activation::Relu)
            .kernel_regularizer(Reg::l2(1e-2))
            .bias_regularizer(Reg::l2(1e-3)),
        Dense::new(Activation::Softmax)
            .kernel_regularizer(Reg::l1l2(1e-3, 1e-2))
            .bias_regularizer(Reg::l1(1e-3)),
    );
    let net = Network::<M, 4>::new_tiled(layers, 7).unwrap();
    for (name, opt) in optimizers(&net.params) {
        same(name, &net, &opt);
    }
}

#[test]
fn typed_l2_and_tile_of_one() {
    type M = (Dense<6, 9, L2>, Dense<9, 3, L2>);
    let layers: M = (
        Dense::new(Activation::Tanh).kernel_regularizer(L2 { l2: 1e-2 }),
        Dense::new(Activation::Softmax)
            .kernel_regularizer(L2 { l2: 1e-3 })
            .bias_regularizer(L2 { l2: 1e-2 }),
    );
    let net = Network::new(layers, 3).unwrap();
    for (name, opt) in optimizers(&net.params) {
        same(name, &net, &opt);
    }
}

/// A constraint rewrites its tensor after the update: the L2 penalty of a constrained kernel
/// or bias must be computed on the constrained weights.
#[test]
fn constraints_after_the_update() {
    type M = (Dense<6, 9>, Dense<9, 3>);
    let layers: M = (
        Dense::new(Activation::Relu)
            .kernel_regularizer(Reg::l2(1e-2))
            .kernel_constraint(Constraint::max_norm(0.5, Axes::one(0)))
            .bias_regularizer(Reg::l2(1e-2))
            .bias_constraint(Constraint::NonNeg),
        Dense::new(Activation::Softmax)
            .kernel_regularizer(Reg::l2(1e-2))
            .kernel_constraint(Constraint::unit_norm(Axes::one(-1))),
    );
    let net = Network::<M, 4>::new_tiled(layers, 5).unwrap();
    for (name, opt) in optimizers(&net.params) {
        same(name, &net, &opt);
    }
}

/// An EMA overwrites the weights after some updates: it takes no sums (the default).
#[test]
fn ema() {
    type M = (Dense<6, 9>, Dense<9, 3>);
    let layers: M = (
        Dense::new(Activation::Relu).kernel_regularizer(Reg::l2(1e-2)),
        Dense::new(Activation::Softmax).kernel_regularizer(Reg::l2(1e-2)),
    );
    let net = Network::<M, 4>::new_tiled(layers, 11).unwrap();
    let cfg = EmaConfig {
        ema_momentum: 0.9,
        ema_overwrite_frequency: Some(3),
    };
    let opt = Ema::new(Adam::new(0.01, &net.params).unwrap(), cfg, &net.params).unwrap();
    same("adam ema", &net, &opt);
}
