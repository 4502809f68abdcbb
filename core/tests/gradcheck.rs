//! Finite-difference gradient checks of the training step.
//!
//! The gradients come from `microfit_core::train::compute_gradients` on a typed
//! `Network<(Dense<3, 4>, Dense<4, 3>)>` (f32). The reference is an **independent naive f64
//! re-implementation** of the same Keras loss (written from SEMANTICS.md, not from the core:
//! forward pass, the four losses in both forms with Keras' clipping, the cached-logits shortcut,
//! the regularizers with activity penalties divided by the batch size), differentiated by
//! central differences in f64. Every activation, every loss (probabilities, logits and the
//! fused softmax/sigmoid path) and every regularizer as kernel, bias and activity penalty is
//! drawn by proptest.
//!
//! Kinks are avoided, not smoothed: a case is rejected when a ReLU/leaky-ReLU pre-activation, an
//! L1 argument, an MAE residual or an orthogonal inner product lies within 1e-3 of 0.
//! OrthogonalRegularizer is checked on kernels only (Keras needs a rank-2 tensor; on a batch of
//! activity outputs it would couple the samples, which microfit does not support).

use microfit_core::layer::dense::DenseParams;
use microfit_core::prelude::*;
use microfit_core::train::compute_gradients;
use proptest::prelude::*;

type Net = (Dense<3, 4>, Dense<4, 3>);
const N_IN: usize = 3;
const N_H: usize = 4;
const N_OUT: usize = 3;
const N_PARAMS: usize = N_IN * N_H + N_H + N_H * N_OUT + N_OUT;
/// Keras' epsilon as the f32 the core uses.
const EPS: f64 = 1e-7f32 as f64;
/// Distance to a kink below which a case is rejected.
const MARGIN: f64 = 1e-3;
/// Finite-difference step (f64, central differences: error ~ h²).
const H: f64 = 1e-5;

// ------------------------------------------------------------------------------------------
// Independent f64 reference
// ------------------------------------------------------------------------------------------

fn act64(a: Activation, z: &[f64]) -> Vec<f64> {
    match a {
        Activation::Linear => z.to_vec(),
        Activation::Relu => z.iter().map(|&v| v.max(0.0)).collect(),
        Activation::Sigmoid => z.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect(),
        Activation::Tanh => z.iter().map(|&v| v.tanh()).collect(),
        Activation::LeakyRelu(al) => z
            .iter()
            .map(|&v| if v > 0.0 { v } else { f64::from(al) * v })
            .collect(),
        Activation::Softmax => {
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = z.iter().map(|&v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        }
        other => panic!("no reference for {other:?}"),
    }
}

fn lse(z: &[f64]) -> f64 {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + z.iter().map(|&v| (v - m).exp()).sum::<f64>().ln()
}

fn clip(p: f64) -> f64 {
    p.clamp(EPS, 1.0 - EPS)
}

#[derive(Debug, Clone)]
enum T {
    Dense(Vec<f64>),
    Class(usize),
}

impl T {
    fn at(&self, j: usize) -> f64 {
        match self {
            T::Dense(v) => v[j],
            T::Class(k) => f64::from(u8::from(*k == j)),
        }
    }
}

/// Keras per-sample loss: the logits formula on `z` when Keras takes the cached-logits
/// shortcut (softmax + CCE/SCCE, sigmoid + BCE, probabilities mode), else on `y`.
fn loss64(loss: Loss, out_act: Activation, z: &[f64], y: &[f64], t: &T, kinks: &mut f64) -> f64 {
    let fused = matches!(
        (loss, out_act),
        (
            Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0
            } | Loss::SparseCategoricalCrossentropy { from_logits: false },
            Activation::Softmax
        ) | (
            Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0
            },
            Activation::Sigmoid
        )
    );
    let (p, logits) = if fused {
        (z, true)
    } else {
        (
            y,
            matches!(
                loss,
                Loss::BinaryCrossentropy {
                    from_logits: true,
                    ..
                } | Loss::CategoricalCrossentropy {
                    from_logits: true,
                    ..
                } | Loss::SparseCategoricalCrossentropy { from_logits: true }
            ),
        )
    };
    let d = p.len() as f64;
    match (loss, logits) {
        (Loss::MeanSquaredError, _) => {
            p.iter()
                .enumerate()
                .map(|(j, &v)| (t.at(j) - v).powi(2))
                .sum::<f64>()
                / d
        }
        (Loss::MeanAbsoluteError, _) => {
            for (j, &v) in p.iter().enumerate() {
                *kinks = kinks.min((t.at(j) - v).abs());
            }
            p.iter()
                .enumerate()
                .map(|(j, &v)| (t.at(j) - v).abs())
                .sum::<f64>()
                / d
        }
        (Loss::BinaryCrossentropy { .. }, true) => {
            p.iter()
                .enumerate()
                .map(|(j, &z)| z.max(0.0) - z * t.at(j) + (-z.abs()).exp().ln_1p())
                .sum::<f64>()
                / d
        }
        (Loss::BinaryCrossentropy { .. }, false) => {
            for &v in p {
                *kinks = kinks.min((v - EPS).abs()).min((v - (1.0 - EPS)).abs());
            }
            p.iter()
                .enumerate()
                .map(|(j, &v)| {
                    let q = clip(v);
                    -(t.at(j) * q.ln() + (1.0 - t.at(j)) * (1.0 - q).ln())
                })
                .sum::<f64>()
                / d
        }
        (Loss::CategoricalCrossentropy { .. }, true) => {
            let l = lse(p);
            p.iter().enumerate().map(|(j, &z)| t.at(j) * (l - z)).sum()
        }
        (Loss::CategoricalCrossentropy { .. }, false) => {
            let s: f64 = p.iter().sum();
            -p.iter()
                .enumerate()
                .map(|(j, &v)| t.at(j) * clip(v / s).ln())
                .sum::<f64>()
        }
        (Loss::SparseCategoricalCrossentropy { .. }, true) => {
            let T::Class(k) = t else {
                panic!("sparse needs a class")
            };
            lse(p) - p[*k]
        }
        (Loss::SparseCategoricalCrossentropy { .. }, false) => {
            let T::Class(k) = t else {
                panic!("sparse needs a class")
            };
            let s: f64 = p.iter().map(|&v| clip(v)).sum();
            s.ln() - clip(p[*k]).ln()
        }
        (other, _) => panic!("no reference for {other:?}"),
    }
}

/// Regularizer penalty in f64 on a `rows × cols` tensor (`cols` = last axis).
fn reg64(r: &Reg, w: &[f64], cols: usize, l1_kinks: &mut f64) -> f64 {
    let sum_abs = |w: &[f64], k: &mut f64| {
        for &v in w {
            *k = k.min(v.abs());
        }
        w.iter().map(|v| v.abs()).sum::<f64>()
    };
    let sq = |w: &[f64]| w.iter().map(|v| v * v).sum::<f64>();
    match *r {
        Reg::L1 { l1 } => f64::from(l1) * sum_abs(w, l1_kinks),
        Reg::L2 { l2 } => f64::from(l2) * sq(w),
        Reg::L1L2 { l1, l2 } => {
            let mut s = 0.0;
            if l1 != 0.0 {
                s += f64::from(l1) * sum_abs(w, l1_kinks);
            }
            if l2 != 0.0 {
                s += f64::from(l2) * sq(w);
            }
            s
        }
        Reg::Orthogonal { factor, mode } => {
            let rows = w.len() / cols;
            let vecs: Vec<Vec<f64>> = match mode {
                OrthoMode::Rows => (0..rows)
                    .map(|i| w[i * cols..(i + 1) * cols].to_vec())
                    .collect(),
                OrthoMode::Columns => (0..cols)
                    .map(|j| (0..rows).map(|i| w[i * cols + j]).collect())
                    .collect(),
            };
            // Keras 3 normalize: x · min(rsqrt(Σx²), 1/1e-7).
            let n: Vec<Vec<f64>> = vecs
                .iter()
                .map(|v| {
                    let k = (1.0 / sq(v).sqrt()).min(1e7);
                    v.iter().map(|x| x * k).collect()
                })
                .collect();
            let m = n.len();
            let mut s = 0.0;
            for i in 0..m {
                for j in 0..m {
                    if i != j {
                        let p: f64 = n[i].iter().zip(&n[j]).map(|(a, b)| a * b).sum();
                        *l1_kinks = l1_kinks.min(p.abs());
                        s += p.abs();
                    }
                }
            }
            f64::from(factor) * 0.5 * s / ((m * (m - 1)) as f64 / 2.0)
        }
        other => panic!("no reference for {other:?}"),
    }
}

/// Everything a case needs.
#[derive(Debug, Clone)]
struct Case {
    layers: Net,
    params: Vec<f32>,
    x: Vec<f32>,
    targets: Vec<T>,
    loss: Loss,
}

/// Total Keras loss in f64 at `theta` (flat params: k1, b1, k2, b2) and the smallest distance to
/// a kink seen on the way.
fn total64(c: &Case, theta: &[f64]) -> (f64, f64) {
    let (k1, rest) = theta.split_at(N_IN * N_H);
    let (b1, rest) = rest.split_at(N_H);
    let (k2, b2) = rest.split_at(N_H * N_OUT);
    let (c1, c2) = (&c.layers.0.config, &c.layers.1.config);
    let b = c.targets.len();
    let mut kinks = f64::INFINITY;
    let (mut data, mut activity) = (0.0, 0.0);
    let dense = |x: &[f64], k: &[f64], bias: &[f64], n_out: usize, use_bias: bool| -> Vec<f64> {
        (0..n_out)
            .map(|j| {
                x.iter()
                    .enumerate()
                    .map(|(i, xi)| xi * k[i * n_out + j])
                    .sum::<f64>()
                    + if use_bias { bias[j] } else { 0.0 }
            })
            .collect()
    };
    for (s, t) in c.targets.iter().enumerate() {
        let x: Vec<f64> = c.x[s * N_IN..(s + 1) * N_IN]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let z1 = dense(&x, k1, b1, N_H, c1.use_bias);
        if matches!(c1.activation, Activation::Relu | Activation::LeakyRelu(_)) {
            z1.iter().for_each(|v| kinks = kinks.min(v.abs()));
        }
        let h = act64(c1.activation, &z1);
        let z2 = dense(&h, k2, b2, N_OUT, c2.use_bias);
        if matches!(c2.activation, Activation::Relu | Activation::LeakyRelu(_)) {
            z2.iter().for_each(|v| kinks = kinks.min(v.abs()));
        }
        let y = act64(c2.activation, &z2);
        data += loss64(c.loss, c2.activation, &z2, &y, t, &mut kinks);
        for (cfg, out) in [(c1, &h), (c2, &y)] {
            if let Some(r) = &cfg.activity_regularizer {
                // L1 on an inactive ReLU output is flat on both sides: not a kink.
                let mut k = f64::INFINITY;
                activity += reg64(r, out, out.len(), &mut k);
                if cfg.activation != Activation::Relu || out.iter().all(|v| *v != 0.0) {
                    kinks = kinks.min(k);
                } else {
                    let active: Vec<f64> = out.iter().cloned().filter(|v| *v != 0.0).collect();
                    let mut k2 = f64::INFINITY;
                    reg64(r, &active, active.len().max(1), &mut k2);
                    kinks = kinks.min(k2);
                }
            }
        }
    }
    let mut total = data / b as f64 + activity / b as f64;
    for (cfg, k, bias, n_out) in [(c1, k1, b1, N_H), (c2, k2, b2, N_OUT)] {
        if let Some(r) = &cfg.kernel_regularizer {
            total += reg64(r, k, n_out, &mut kinks);
        }
        if cfg.use_bias
            && let Some(r) = &cfg.bias_regularizer
        {
            total += reg64(r, bias, n_out, &mut kinks);
        }
    }
    (total, kinks)
}

/// Our f32 gradients vs f64 central differences; `Err` on the first mismatch, `Ok(false)` if
/// the case sits too close to a kink.
fn check(c: &Case) -> Result<bool, TestCaseError> {
    let theta: Vec<f64> = c.params.iter().map(|&v| f64::from(v)).collect();
    let (l0, kinks) = total64(c, &theta);
    if kinks < MARGIN || !l0.is_finite() {
        return Ok(false);
    }
    // Ours.
    let mut p = <(DenseParams<N_IN, N_H>, DenseParams<N_H, N_OUT>)>::zeroed();
    let mut off = 0;
    for i in 0..p.tensor_count() {
        let t = p.tensor_mut(i);
        let n = t.len();
        t.copy_from_slice(&c.params[off..off + n]);
        off += n;
    }
    let mut net = Network::with_params(c.layers, p);
    let b = c.targets.len();
    let dense: Vec<f32>;
    let classes: Vec<u32>;
    let targets = match &c.targets[0] {
        T::Class(_) => {
            classes = c
                .targets
                .iter()
                .map(|t| if let T::Class(k) = t { *k as u32 } else { 0 })
                .collect();
            Targets::Classes(&classes)
        }
        T::Dense(_) => {
            dense = c
                .targets
                .iter()
                .flat_map(|t| {
                    if let T::Dense(v) = t {
                        v.iter().map(|&x| x as f32).collect()
                    } else {
                        vec![]
                    }
                })
                .collect();
            Targets::Dense {
                values: &dense,
                width: N_OUT,
            }
        }
    };
    let samples = Samples::new(&c.x[..b * N_IN], N_IN, targets).expect("samples");
    let rep = compute_gradients::<microfit_core::backend::Portable, _>(
        &mut net,
        c.loss,
        &samples,
        Rows::Range(0, b),
    )
    .expect("compute_gradients");
    prop_assert!(
        (f64::from(rep.total_loss) - l0).abs() <= 1e-5 * l0.abs().max(1.0),
        "loss {} vs f64 reference {l0}",
        rep.total_loss
    );
    let mut ours = Vec::new();
    for i in 0..net.grads.tensor_count() {
        ours.extend_from_slice(net.grads.tensor(i));
    }
    // Central differences.
    let mut fd = vec![0.0f64; N_PARAMS];
    for (i, g) in fd.iter_mut().enumerate() {
        let mut tp = theta.clone();
        tp[i] += H;
        let (lp, kp) = total64(c, &tp);
        tp[i] -= 2.0 * H;
        let (lm, km) = total64(c, &tp);
        if kp.min(km) < MARGIN / 2.0 {
            return Ok(false);
        }
        *g = (lp - lm) / (2.0 * H);
    }
    let scale = fd.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (&g, &f)) in ours.iter().zip(&fd).enumerate() {
        let err = (f64::from(g) - f).abs();
        prop_assert!(
            err <= 1e-6 * scale + 1e-5 * f.abs(),
            "param {i}: ours {g:e}, finite differences {f:e} (err {err:.2e}, scale {scale:.2e})\n{c:#?}"
        );
    }
    Ok(true)
}

// ------------------------------------------------------------------------------------------
// Strategies
// ------------------------------------------------------------------------------------------

/// Weights with |w| in [0.05, 1]: away from the L1 kink.
fn weight() -> impl Strategy<Value = f32> {
    (0.05f32..1.0, any::<bool>()).prop_map(|(m, s)| if s { m } else { -m })
}

fn hidden_activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Linear),
        Just(Activation::Relu),
        Just(Activation::Sigmoid),
        Just(Activation::Tanh),
        Just(Activation::Softmax),
        (0.01f32..0.5).prop_map(Activation::LeakyRelu),
    ]
}

/// Output activation and loss, covering every loss in both forms and the fused paths.
fn output() -> impl Strategy<Value = (Activation, Loss)> {
    prop_oneof![
        Just((Activation::Linear, Loss::MeanSquaredError)),
        Just((Activation::Tanh, Loss::MeanSquaredError)),
        Just((Activation::Relu, Loss::MeanSquaredError)),
        (0.01f32..0.5).prop_map(|a| (Activation::LeakyRelu(a), Loss::MeanSquaredError)),
        Just((Activation::Linear, Loss::MeanAbsoluteError)),
        // Fused (cached logits): sigmoid + BCE, softmax + CCE, softmax + SCCE.
        Just((
            Activation::Sigmoid,
            Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0
            }
        )),
        Just((
            Activation::Softmax,
            Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0
            }
        )),
        Just((
            Activation::Softmax,
            Loss::SparseCategoricalCrossentropy { from_logits: false }
        )),
        // Logits forms.
        Just((
            Activation::Linear,
            Loss::BinaryCrossentropy {
                from_logits: true,
                label_smoothing: 0.0
            }
        )),
        Just((
            Activation::Linear,
            Loss::CategoricalCrossentropy {
                from_logits: true,
                label_smoothing: 0.0
            }
        )),
        Just((
            Activation::Linear,
            Loss::SparseCategoricalCrossentropy { from_logits: true }
        )),
        // Probability forms that do not fuse (clip, renormalisation).
        Just((
            Activation::Softmax,
            Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0
            }
        )),
        Just((
            Activation::Sigmoid,
            Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0
            }
        )),
        Just((
            Activation::Sigmoid,
            Loss::SparseCategoricalCrossentropy { from_logits: false }
        )),
    ]
}

/// Elementwise regularizers (any position) and, for kernels, orthogonal ones.
fn reg(kernel: bool) -> BoxedStrategy<Option<Reg>> {
    let f = 0.001f32..0.3;
    let mut options = vec![
        Just(None).boxed(),
        f.clone().prop_map(|l1| Some(Reg::l1(l1))).boxed(),
        f.clone().prop_map(|l2| Some(Reg::l2(l2))).boxed(),
        (f.clone(), f.clone())
            .prop_map(|(a, b)| Some(Reg::l1l2(a, b)))
            .boxed(),
        f.clone().prop_map(|l2| Some(Reg::l1l2(0.0, l2))).boxed(),
    ];
    if kernel {
        options.push(
            f.clone()
                .prop_map(|k| Some(Reg::try_orthogonal(k, OrthoMode::Rows).unwrap()))
                .boxed(),
        );
        options.push(
            f.prop_map(|k| Some(Reg::try_orthogonal(k, OrthoMode::Columns).unwrap()))
                .boxed(),
        );
    }
    proptest::strategy::Union::new(options).boxed()
}

prop_compose! {
    fn case(with_regs: bool)(
        h_act in hidden_activation(),
        (o_act, loss) in output(),
        params in prop::collection::vec(weight(), N_PARAMS),
        x in prop::collection::vec(-1.0f32..1.0, 4 * N_IN),
        b in 1usize..=4,
        dense in prop::collection::vec(0.0f32..1.0, 4 * N_OUT),
        labels in prop::collection::vec(0usize..N_OUT, 4),
        regs in prop::collection::vec((reg(true), reg(false), reg(false)), 2),
        use_bias in prop::collection::vec(prop::bool::weighted(0.85), 2),
    ) -> Case {
        let mut l0 = Dense::<N_IN, N_H>::new(h_act).use_bias(use_bias[0]);
        let mut l1 = Dense::<N_H, N_OUT>::new(o_act).use_bias(use_bias[1]);
        if with_regs {
            l0.config.kernel_regularizer = regs[0].0;
            l0.config.bias_regularizer = regs[0].1;
            l0.config.activity_regularizer = regs[0].2;
            l1.config.kernel_regularizer = regs[1].0;
            l1.config.bias_regularizer = regs[1].1;
            l1.config.activity_regularizer = regs[1].2;
        }
        let targets = (0..b)
            .map(|s| match loss {
                Loss::SparseCategoricalCrossentropy { .. } => T::Class(labels[s]),
                Loss::MeanSquaredError | Loss::MeanAbsoluteError => {
                    T::Dense(dense[s * N_OUT..(s + 1) * N_OUT].iter().map(|&v| f64::from(v * 2.0 - 1.0) as f32 as f64).collect())
                }
                _ => T::Dense(dense[s * N_OUT..(s + 1) * N_OUT].iter().map(|&v| f64::from(v)).collect()),
            })
            .collect();
        Case { layers: (l0, l1), params, x, targets, loss }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, max_global_rejects: 4096, ..ProptestConfig::default() })]

    /// Every hidden activation × every output activation/loss pair, no regularizer.
    #[test]
    fn activations_and_losses_match_finite_differences(c in case(false)) {
        prop_assume!(check(&c)?);
    }

    /// The same with random kernel, bias and activity regularizers on both layers (L1, L2,
    /// L1L2 with and without a zero factor, orthogonal rows/columns on kernels), including an
    /// activity regularizer on a fused softmax/sigmoid output.
    #[test]
    fn regularizers_match_finite_differences(c in case(true)) {
        prop_assume!(check(&c)?);
    }
}

/// Every output/loss pair is exercised deterministically once (proptest draws at random),
/// with every regularizer kind in place, at a fixed point away from kinks.
#[test]
fn every_loss_and_regularizer_at_a_fixed_point() {
    let outputs = [
        (Activation::Linear, Loss::MeanSquaredError),
        (Activation::Tanh, Loss::MeanSquaredError),
        (Activation::LeakyRelu(0.2), Loss::MeanSquaredError),
        (Activation::Linear, Loss::MeanAbsoluteError),
        (
            Activation::Sigmoid,
            Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
        ),
        (
            Activation::Softmax,
            Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
        ),
        (
            Activation::Softmax,
            Loss::SparseCategoricalCrossentropy { from_logits: false },
        ),
        (
            Activation::Linear,
            Loss::BinaryCrossentropy {
                from_logits: true,
                label_smoothing: 0.0,
            },
        ),
        (
            Activation::Linear,
            Loss::CategoricalCrossentropy {
                from_logits: true,
                label_smoothing: 0.0,
            },
        ),
        (
            Activation::Linear,
            Loss::SparseCategoricalCrossentropy { from_logits: true },
        ),
        (
            Activation::Softmax,
            Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
        ),
        (
            Activation::Sigmoid,
            Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
        ),
        (
            Activation::Sigmoid,
            Loss::SparseCategoricalCrossentropy { from_logits: false },
        ),
    ];
    let hidden = [
        Activation::Linear,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
        Activation::LeakyRelu(0.1),
    ];
    let regs = [
        (
            Some(Reg::l2(0.05)),
            Some(Reg::l1(0.02)),
            Some(Reg::l1l2(0.01, 0.02)),
        ),
        (
            Some(Reg::try_orthogonal(0.1, OrthoMode::Rows).unwrap()),
            Some(Reg::l2(0.1)),
            Some(Reg::l1(0.03)),
        ),
        (
            Some(Reg::try_orthogonal(0.2, OrthoMode::Columns).unwrap()),
            Some(Reg::l1l2(0.0, 0.1)),
            Some(Reg::l2(0.05)),
        ),
    ];
    // Fixed, kink-free values (checked by `check`, which reports `false` near a kink).
    let params: Vec<f32> = (0..N_PARAMS)
        .map(|i| ((i * 37 % 19) as f32 / 19.0 - 0.5) * 1.6 + if i % 2 == 0 { 0.13 } else { -0.11 })
        .collect();
    let x: Vec<f32> = (0..4 * N_IN)
        .map(|i| ((i * 7 % 11) as f32 / 11.0 - 0.45) * 1.8)
        .collect();
    let mut checked = 0;
    for (oi, &(o_act, loss)) in outputs.iter().enumerate() {
        for (hi, &h_act) in hidden.iter().enumerate() {
            let r = regs[(oi + hi) % regs.len()];
            let mut l0 = Dense::<N_IN, N_H>::new(h_act);
            let mut l1 = Dense::<N_H, N_OUT>::new(o_act);
            (
                l0.config.kernel_regularizer,
                l0.config.bias_regularizer,
                l0.config.activity_regularizer,
            ) = r;
            (
                l1.config.kernel_regularizer,
                l1.config.bias_regularizer,
                l1.config.activity_regularizer,
            ) = r;
            let targets = (0..3)
                .map(|s| match loss {
                    Loss::SparseCategoricalCrossentropy { .. } => T::Class((s + oi) % N_OUT),
                    _ => T::Dense(
                        (0..N_OUT)
                            .map(|j| f64::from(((s * 3 + j + oi) % 5) as f32 / 5.0 + 0.1))
                            .collect(),
                    ),
                })
                .collect();
            let c = Case {
                layers: (l0, l1),
                params: params.clone(),
                x: x.clone(),
                targets,
                loss,
            };
            if check(&c).unwrap_or_else(|e| panic!("{o_act:?} {loss:?} hidden {h_act:?}: {e}")) {
                checked += 1;
            }
        }
    }
    // Most combinations must actually be checked (not skipped near a kink).
    assert!(
        checked >= outputs.len() * hidden.len() * 3 / 4,
        "only {checked} combinations were away from kinks"
    );
}
