//! The firmware's ways through the core give the bits of the ordinary ways: a model given as a
//! constant (`layer::constant::Const`), the typed regularizers (`regularizer::L1`, `L2`), the
//! one-pass `penalty_and_grad`, Adam's state stepped with a constant configuration
//! (`AdamState::step`) and `train::fit_epoch_into`.

use microfit_core::backend::{Backend, Portable};
use microfit_core::layer::constant::{Const, ConstLayer};
use microfit_core::optim::adam::{AdamState, keras_one_minus};
use microfit_core::optim::schedule::Schedule;
use microfit_core::optim::{AdamConfig, Clip, Common, ExcludeFromWeightDecay, Optimizer};
use microfit_core::params::weights_hash;
use microfit_core::prelude::*;
use microfit_core::regularizer::{L1, L2};
use microfit_core::train::{EpochReport, fit_epoch_into};

fn data() -> (Vec<f32>, Vec<u32>) {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..30u32 {
        let f = i as f32;
        x.extend([
            (f * 0.37).sin(),
            (f * 0.11).cos(),
            f / 30.0 - 0.5,
            ((f * 1.7).sin() * 2.0),
        ]);
        y.push(i % 3);
    }
    (x, y)
}

#[test]
fn typed_regularizers_and_one_pass_penalty_match_reg() {
    let w: Vec<f32> = (0..37).map(|i| ((i as f32) * 0.71).sin() * 3.0).collect();
    for (typed, reg) in [
        (&L2 { l2: 1e-3 } as &dyn Regularizer, Reg::l2(1e-3)),
        (&L1 { l1: 0.02 } as &dyn Regularizer, Reg::l1(0.02)),
    ] {
        assert_eq!(typed.penalty(&w, 1).to_bits(), reg.penalty(&w, 1).to_bits());
        let (mut g1, mut g2, mut g3) = (vec![0.5f32; 37], vec![0.5f32; 37], vec![0.5f32; 37]);
        typed.add_grad(&w, 1, &mut g1, 0.25);
        reg.add_grad(&w, 1, &mut g2, 0.25);
        let p = typed.penalty_and_grad(&w, 1, &mut g3, 0.25);
        assert_eq!(g1, g2);
        assert_eq!(g1, g3);
        assert_eq!(p.to_bits(), reg.penalty(&w, 1).to_bits());
        let mut g4 = vec![0.5f32; 37];
        assert_eq!(
            reg.penalty_and_grad(&w, 1, &mut g4, 0.25).to_bits(),
            p.to_bits()
        );
        assert_eq!(g4, g1);
    }
}

/// L2's one pass against the definitions, for any lengths of `w` and `g`: `l2 · Σw²` in
/// `kernels::reduce::sum_sq`'s order (eight lanes) and `g_i += (l2·(2w_i))·scale` for the values
/// that have a gradient — whole chunks of eight, a partial one, none (the penalty alone), more
/// gradients than values.
#[test]
fn l2_one_pass_matches_the_definitions_for_any_lengths() {
    use microfit_core::kernels::reduce::sum_sq;
    let r = L2 { l2: 3e-3 };
    for n in [0usize, 1, 7, 8, 9, 16, 37, 64] {
        let w: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.83).cos() * 2.5).collect();
        let want_p = 3e-3f32 * sum_sq(&w);
        assert_eq!(
            r.penalty(&w, 1).to_bits(),
            want_p.to_bits(),
            "penalty, n = {n}"
        );
        for m in [0usize, 3, 8, 11, n.saturating_sub(1), n, n + 5] {
            let mut g: Vec<f32> = (0..m).map(|i| i as f32 * 0.125 - 1.0).collect();
            let want_g: Vec<f32> = g
                .iter()
                .enumerate()
                .map(|(i, &gi)| match w.get(i) {
                    Some(&x) => gi + (3e-3f32 * (x * 2.0)) * 0.5,
                    None => gi,
                })
                .collect();
            let p = r.penalty_and_grad(&w, 1, &mut g, 0.5);
            assert_eq!(p.to_bits(), want_p.to_bits(), "penalty, n = {n}, m = {m}");
            assert_eq!(g, want_g, "gradients, n = {n}, m = {m}");
        }
    }
}

/// `Backend::l2_pass` (what a layer calls for a regularizer with a `sum_sq_factor`, e.g.
/// `Reg::L2`) against the definitions: `l2 · sum_sq(w)` and `g_i += (l2·(2w_i))·1` for the
/// values that have a gradient, bit for bit — whole blocks of eight, a partial one, none.
#[test]
fn backend_l2_pass_matches_the_definitions() {
    use microfit_core::kernels::reduce::sum_sq;
    let l2 = 7e-4f32;
    for n in [0usize, 5, 8, 24, 29, 64] {
        let w: Vec<f32> = (0..n).map(|i| ((i as f32) * 1.37).sin() * 4.0).collect();
        let want_p = l2 * sum_sq(&w);
        for m in [0usize, 8, n.saturating_sub(3), n] {
            let mut g: Vec<f32> = (0..m).map(|i| 0.75 - i as f32 * 0.0625).collect();
            let want_g: Vec<u32> = g
                .iter()
                .enumerate()
                .map(|(i, &gi)| match w.get(i) {
                    Some(&x) => (gi + (l2 * (x * 2.0)) * 1.0).to_bits(),
                    None => gi.to_bits(),
                })
                .collect();
            let p = Portable::l2_pass(&w, &mut g, l2);
            assert_eq!(p.to_bits(), want_p.to_bits(), "penalty, n = {n}, m = {m}");
            let got: Vec<u32> = g.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want_g, "gradients, n = {n}, m = {m}");
            let mut g2: Vec<f32> = (0..m).map(|i| 0.75 - i as f32 * 0.0625).collect();
            let q = Reg::l2(l2).penalty_and_grad(&w, 1, &mut g2, 1.0);
            assert_eq!(
                (q.to_bits(), g2),
                (p.to_bits(), g),
                "Reg::L2, n = {n}, m = {m}"
            );
        }
    }
}

struct Mlp;
impl ConstLayer for Mlp {
    type Layer = (Dense<4, 8, L2>, Dense<8, 3, L2>);
    const LAYER: Self::Layer = {
        let mut a = Dense::new(Activation::Relu);
        a.config.kernel_regularizer = Some(L2 { l2: 1e-3 });
        let mut b = Dense::new(Activation::Softmax);
        b.config.kernel_regularizer = Some(L2 { l2: 1e-3 });
        (a, b)
    };
}

const CONFIG: AdamConfig = AdamConfig {
    learning_rate: Schedule::Constant(0.01),
    beta_1: 0.9,
    beta_2: 0.999,
    epsilon: 1e-7,
    common: Common {
        weight_decay: None,
        clip: Clip {
            clipvalue: None,
            clipnorm: None,
            global_clipnorm: None,
        },
        exclude_from_weight_decay: ExcludeFromWeightDecay::NONE,
    },
};

/// The optimizer of a firmware: constant configuration, `1 - β` evaluated at compile time.
struct ConstAdam<P>(AdamState<P>);
impl<P: microfit_core::params::Params> Optimizer<P> for ConstAdam<P> {
    const SLOTS: usize = 2;
    fn step<B: Backend>(&mut self, w: &mut P, g: &mut P) {
        const ONE_MINUS: (f32, f32) = (
            keras_one_minus(CONFIG.beta_1),
            keras_one_minus(CONFIG.beta_2),
        );
        self.0.step::<B>(&CONFIG, ONE_MINUS, w, g);
    }
    fn iterations(&self) -> u32 {
        self.0.iterations()
    }
    fn reset(&mut self) {
        self.0.reset();
    }
}

#[test]
fn constant_model_and_adam_train_with_the_same_bits() {
    let (x, y) = data();
    let samples = Samples::new(&x, 4, Targets::Classes(&y)).unwrap();
    let loss = Loss::CategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };

    // Ordinary: runtime layers with `Reg`, `Trainer`, `Adam::with_config`.
    let plain_layers = (
        Dense::<4, 8>::new(Activation::Relu).kernel_regularizer(Reg::l2(1e-3)),
        Dense::<8, 3>::new(Activation::Softmax).kernel_regularizer(Reg::l2(1e-3)),
    );
    let net = Network::new(plain_layers, 7).unwrap();
    let init = net.params.clone();
    let adam = Adam::with_config(CONFIG, &net.params).unwrap();
    let mut a = Trainer::new(net, adam, loss);

    // Firmware way: constant layers, typed L2, constant Adam, `fit_epoch_into`.
    let mut net_b = Network::with_params(Const::<Mlp>::new(), init);
    let mut opt_b = ConstAdam(AdamState::zeroed());
    let mut rb: EpochReport = EpochReport::default();

    for e in 0..5 {
        let ra = a.fit_epoch(&samples, 7, None).unwrap();
        fit_epoch_into::<Portable, _, _, _>(
            &mut net_b, &mut opt_b, loss, &samples, 7, None, &mut rb,
        )
        .unwrap();
        assert_eq!(report_bits(&ra), report_bits(&rb), "epoch {e}");
    }
    assert_eq!(weights_hash(&a.model.params), weights_hash(&net_b.params));
    // Adam's state: its step count and the bits of its slots `m` and `v`.
    assert_eq!(a.optimizer.iterations(), opt_b.0.iterations());
    assert_eq!(
        weights_hash(a.optimizer.m()),
        weights_hash(opt_b.0.m()),
        "m"
    );
    assert_eq!(
        weights_hash(a.optimizer.v()),
        weights_hash(opt_b.0.v()),
        "v"
    );
    let ea = a.evaluate(&samples, 30).unwrap();
    let eb = microfit_core::train::evaluate::<Portable, _>(&mut net_b, loss, &samples, 30).unwrap();
    assert_eq!(report_bits(&ea), report_bits(&eb));
}

/// Everything an epoch report holds, its f32 values as `to_bits`.
fn report_bits<const N: usize>(r: &EpochReport<N>) -> Vec<u64> {
    let mut v = vec![
        u64::from(r.loss.to_bits()),
        u64::from(r.data_loss.to_bits()),
        r.steps as u64,
        u64::from(r.metrics.samples),
        u64::from(r.metrics.correct),
        u64::from(r.metrics.sq_err.to_bits()),
        u64::from(r.metrics.abs_err.to_bits()),
        u64::from(r.penalties.overflow.to_bits()),
    ];
    for e in r.penalties.entries() {
        v.extend([
            u64::from(e.layer),
            e.kind as u64,
            u64::from(e.value.to_bits()),
        ]);
    }
    v
}
