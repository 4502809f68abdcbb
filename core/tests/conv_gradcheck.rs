//! Convolution and pooling against independent references:
//!
//! * forward outputs against a naive `f64` reference written here from the definition
//!   (gather form with signed indices, Keras' padding formulas re-derived below), for 1-D, 2-D
//!   and 3-D, valid/same, strides 1–3 (including strides that do not divide the input),
//!   dilation, non-square kernels;
//! * every gradient (input, kernel, bias, through the activation, the activity regularizer and
//!   the weight regularizers) against central finite differences of the forward pass;
//! * max and average pooling the same way (inputs are distinct values spaced 0.01 apart, so no
//!   max switches within the finite-difference step);
//! * the whole training step of a small CNN (conv → average pooling → flatten → dense softmax,
//!   every regularizer on) against finite differences of its total loss.

use microfit_core::activation::Activation;
use microfit_core::kernels::conv::{ConvGeometry, Padding};
use microfit_core::kernels::pool;
use microfit_core::layer::dense::{DenseConfig, WeightedBackward, WeightedForward};
use microfit_core::layer::{BackwardCtx, ForwardCtx, PenaltyList, conv};
use microfit_core::prelude::*;
use microfit_core::train::compute_gradients;

/// One convolution configuration.
#[derive(Debug, Clone)]
struct Cfg {
    input: Vec<usize>,
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilation: Vec<usize>,
    padding: Padding,
    cin: usize,
    cout: usize,
}

fn cfg(
    input: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilation: &[usize],
    padding: Padding,
    cin: usize,
    cout: usize,
) -> Cfg {
    Cfg {
        input: input.to_vec(),
        kernel: kernel.to_vec(),
        strides: strides.to_vec(),
        dilation: dilation.to_vec(),
        padding,
        cin,
        cout,
    }
}

/// Every configuration checked (each with valid and same padding).
fn configs() -> Vec<Cfg> {
    let mut v = Vec::new();
    for p in [Padding::Valid, Padding::Same] {
        // 1-D: strides 1, 2, 3 (7 − 3 = 4 is not a multiple of 3), dilation 2, kernel 1.
        for s in [1, 2, 3] {
            v.push(cfg(&[7], &[3], &[s], &[1], p, 2, 3));
        }
        v.push(cfg(&[8], &[3], &[1], &[2], p, 2, 2));
        v.push(cfg(&[5], &[1], &[2], &[1], p, 3, 2));
        v.push(cfg(&[4], &[4], &[1], &[1], p, 1, 2));
        // 2-D: non-square kernels, strides that do not divide, per-axis strides, dilation.
        for s in [[1, 1], [2, 2], [3, 2], [2, 3]] {
            v.push(cfg(&[6, 5], &[3, 2], &s, &[1, 1], p, 2, 2));
        }
        v.push(cfg(&[7, 6], &[2, 3], &[1, 1], &[2, 1], p, 1, 3));
        v.push(cfg(&[8, 8], &[3, 3], &[1, 1], &[1, 1], p, 1, 4));
        // 3-D.
        for s in [[1, 1, 1], [2, 2, 2], [3, 1, 2]] {
            v.push(cfg(&[4, 4, 3], &[2, 2, 2], &s, &[1, 1, 1], p, 2, 2));
        }
        v.push(cfg(&[5, 4, 4], &[3, 2, 1], &[1, 2, 1], &[1, 1, 1], p, 1, 2));
        v.push(cfg(&[5, 5, 3], &[2, 2, 2], &[1, 1, 1], &[2, 1, 1], p, 1, 2));
    }
    v
}

/// Keras' output size and padding before, re-derived (SEMANTICS.md §4), in signed arithmetic.
fn keras_axis(n: usize, k: usize, s: usize, d: usize, p: Padding) -> (usize, i64) {
    let (n, k, s, d) = (n as i64, k as i64, s as i64, d as i64);
    let ke = (k - 1) * d + 1;
    match p {
        Padding::Valid => (((n - ke) / s + 1) as usize, 0),
        Padding::Same => {
            let out = (n + s - 1) / s;
            let total = ((out - 1) * s + ke - n).max(0);
            (out as usize, total / 2)
        }
    }
}

fn geometry(c: &Cfg) -> ConvGeometry {
    ConvGeometry::new(
        &c.input,
        &c.kernel,
        &c.strides,
        &c.dilation,
        c.padding,
        c.cin,
        c.cout,
    )
    .expect("valid config")
}

/// Row-major strides of a shape.
fn row_major(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        st[a] = st[a + 1] * shape[a + 1];
    }
    st
}

/// Multi-index of flat `i` in `shape`.
fn unflatten(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for a in (0..shape.len()).rev() {
        idx[a] = i % shape[a];
        i /= shape[a];
    }
    idx
}

/// The naive reference: `z[o, co] = b[co] + Σ_{t, ci} x[o·s + t·d − pad, ci] · W[t, ci, co]`, in f64.
fn reference_conv(c: &Cfg, x: &[f32], w: &[f32], b: &[f32]) -> (Vec<usize>, Vec<f64>) {
    let r = c.input.len();
    let axes: Vec<(usize, i64)> = (0..r)
        .map(|a| {
            keras_axis(
                c.input[a],
                c.kernel[a],
                c.strides[a],
                c.dilation[a],
                c.padding,
            )
        })
        .collect();
    let out: Vec<usize> = axes.iter().map(|a| a.0).collect();
    let mut xs = c.input.clone();
    xs.push(c.cin);
    let mut ws = c.kernel.clone();
    ws.extend([c.cin, c.cout]);
    let (xst, wst) = (row_major(&xs), row_major(&ws));
    let positions: usize = out.iter().product();
    let taps: usize = c.kernel.iter().product();
    let mut z = vec![0.0f64; positions * c.cout];
    for o in 0..positions {
        let oi = unflatten(o, &out);
        for co in 0..c.cout {
            let mut s = f64::from(b[co]);
            'tap: for t in 0..taps {
                let ti = unflatten(t, &c.kernel);
                let mut xoff = 0usize;
                for a in 0..r {
                    let pos = (oi[a] * c.strides[a] + ti[a] * c.dilation[a]) as i64 - axes[a].1;
                    if pos < 0 || pos >= c.input[a] as i64 {
                        continue 'tap;
                    }
                    xoff += pos as usize * xst[a];
                }
                let mut woff = 0usize;
                for a in 0..r {
                    woff += ti[a] * wst[a];
                }
                for ci in 0..c.cin {
                    s += f64::from(x[xoff + ci]) * f64::from(w[woff + ci * c.cout + co]);
                }
            }
            z[o * c.cout + co] = s;
        }
    }
    (out, z)
}

fn random(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(lo, hi)).collect()
}

/// `max |a − e| − tol(e)` style check; returns the largest error seen.
fn assert_close(what: &str, got: &[f64], expected: &[f64], rtol: f64, atol: f64) -> f64 {
    assert_eq!(got.len(), expected.len(), "{what}: lengths");
    let mut worst = 0.0f64;
    for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
        let err = (g - e).abs();
        assert!(
            err <= atol + rtol * e.abs(),
            "{what}[{i}]: got {g}, expected {e} (err {err:e})"
        );
        worst = worst.max(err);
    }
    worst
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

#[test]
fn forward_matches_naive_reference_and_keras_sizes() {
    let mut rng = Rng::new(11);
    let cfgs = configs();
    assert_eq!(cfgs.len(), 34);
    for c in &cfgs {
        let g = geometry(c);
        let r = c.input.len();
        let out: Vec<usize> = (0..r)
            .map(|a| {
                keras_axis(
                    c.input[a],
                    c.kernel[a],
                    c.strides[a],
                    c.dilation[a],
                    c.padding,
                )
                .0
            })
            .collect();
        assert_eq!(&g.output()[3 - r..], &out[..], "{c:?}: output size");
        for a in 0..r {
            let (_, pb) = keras_axis(
                c.input[a],
                c.kernel[a],
                c.strides[a],
                c.dilation[a],
                c.padding,
            );
            assert_eq!(g.pads(3 - r + a).0 as i64, pb, "{c:?}: pad_before axis {a}");
        }
        let x = random(&mut rng, g.in_len(), -1.0, 1.0);
        let w = random(&mut rng, g.kernel_len(), -1.0, 1.0);
        let b = random(&mut rng, c.cout, -0.5, 0.5);
        let mut z = vec![f32::NAN; g.out_len()];
        microfit_core::kernels::conv::forward(&g, &x, &w, Some(&b), &mut z);
        let (_, zr) = reference_conv(c, &x, &w, &b);
        assert_close(&format!("{c:?}: z"), &to64(&z), &zr, 1e-5, 1e-6);
    }
}

/// The scalar loss of one conv sample: `Σ c_i y_i + inv_b · act(y) + kreg(W) + breg(b)`,
/// in f64 from the f32 outputs.
#[allow(clippy::too_many_arguments)]
fn conv_loss(
    cfg: &DenseConfig<Reg>,
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    coef: &[f32],
    inv_b: f32,
) -> f64 {
    let (mut z, mut y) = (vec![0.0; g.out_len()], vec![0.0; g.out_len()]);
    forward(cfg, g, w, b, x, &mut z, &mut y);
    let mut l: f64 = y
        .iter()
        .zip(coef)
        .map(|(&y, &c)| f64::from(y) * f64::from(c))
        .sum();
    if let Some(a) = &cfg.activity_regularizer {
        l += f64::from(inv_b) * f64::from(a.penalty(&y, g.filters()));
    }
    let mut pen = PenaltyList::<12>::new();
    conv::weight_penalties(cfg, g, w, b, None, 0, &mut pen);
    l + f64::from(pen.total())
}

/// One sample through `conv::forward` (inference: no activity penalties collected).
fn forward(
    cfg: &DenseConfig<Reg>,
    g: &ConvGeometry,
    w: &[f32],
    b: &[f32],
    x: &[f32],
    z: &mut [f32],
    y: &mut [f32],
) {
    let mut rng = Rng::new(0);
    let mut ctx = ForwardCtx {
        training: false,
        rng: Some(&mut rng),
        layer: 0,
        penalties: None,
    };
    let io = WeightedForward {
        kernel: w,
        bias: b,
        x,
        z,
        y,
    };
    // The run-time models' path (matrix products over patches; the direct loops have the
    // same bits: `conv_layers.rs`).
    conv::forward::<Portable, _>(cfg, g, io, &mut ctx, conv::Via::Products);
}

/// Central differences of `f` at `v` in every coordinate.
fn numeric_grad(v: &[f32], eps: f32, f: &dyn Fn(&[f32]) -> f64) -> Vec<f64> {
    let mut p = v.to_vec();
    (0..v.len())
        .map(|i| {
            let orig = p[i];
            p[i] = orig + eps;
            let hi = f(&p);
            p[i] = orig - eps;
            let lo = f(&p);
            p[i] = orig;
            (hi - lo) / (f64::from(p[i] + eps) - f64::from(p[i] - eps))
        })
        .collect()
}

#[test]
fn conv_gradients_match_finite_differences() {
    let mut rng = Rng::new(5);
    let mut worst = 0.0f64;
    for (n, c) in configs().iter().enumerate() {
        let g = geometry(c);
        // Smooth activations (tanh; softmax over the channels of each position) so that the
        // finite differences are exact to second order; smooth regularizers (L2) where the
        // values can cross 0, L1L2 on a bias kept away from 0.
        let act = if n % 3 == 2 {
            Activation::Softmax
        } else {
            Activation::Tanh
        };
        let mut cfg = DenseConfig::<Reg>::new(act);
        cfg.kernel_regularizer = Some(Reg::l2(0.05));
        cfg.bias_regularizer = Some(Reg::l1l2(0.02, 0.03));
        cfg.activity_regularizer = Some(Reg::l2(0.04));
        cfg.use_bias = n % 5 != 4;
        let x = random(&mut rng, g.in_len(), -1.0, 1.0);
        let w = random(&mut rng, g.kernel_len(), -0.6, 0.6);
        let b: Vec<f32> = (0..c.cout)
            .map(|i| if i % 2 == 0 { 0.3 } else { -0.25 })
            .collect();
        let coef = random(&mut rng, g.out_len(), -1.0, 1.0);
        let inv_b = 0.5f32;

        // Analytic gradients, exactly as the training step computes them.
        let (mut z, mut y) = (vec![0.0; g.out_len()], vec![0.0; g.out_len()]);
        forward(&cfg, &g, &w, &b, &x, &mut z, &mut y);
        let mut d = coef.clone();
        let (mut gk, mut gb, mut dx) = (
            vec![0.0; w.len()],
            vec![0.0; b.len()],
            vec![f32::NAN; x.len()],
        );
        let mut pen = PenaltyList::<12>::new();
        let ctx = BackwardCtx {
            inv_batch: inv_b,
            layer: 0,
            dy_is_pre: false,
            step_input: false,
            input_relu: false,
        };
        conv::backward::<Portable, _>(
            &cfg,
            &g,
            WeightedBackward {
                kernel: &w,
                grad_kernel: &mut gk,
                grad_bias: &mut gb,
                x: &x,
                y: &y,
                z: &mut z,
                dy: &mut d,
                dx: Some(&mut dx),
            },
            &ctx,
            conv::Via::Products,
        );
        conv::weight_penalties(&cfg, &g, &w, &b, Some((&mut gk, &mut gb)), 0, &mut pen);

        let eps = 1e-2;
        let what = format!("config {n} {c:?} {act:?} use_bias={}", cfg.use_bias);
        let nx = numeric_grad(&x, eps, &|v| conv_loss(&cfg, &g, v, &w, &b, &coef, inv_b));
        worst = worst.max(assert_close(
            &format!("{what}: dx"),
            &to64(&dx),
            &nx,
            1e-3,
            2e-4,
        ));
        let nk = numeric_grad(&w, eps, &|v| conv_loss(&cfg, &g, &x, v, &b, &coef, inv_b));
        worst = worst.max(assert_close(
            &format!("{what}: dW"),
            &to64(&gk),
            &nk,
            1e-3,
            2e-4,
        ));
        let nb = numeric_grad(&b, eps, &|v| conv_loss(&cfg, &g, &x, &w, v, &coef, inv_b));
        if cfg.use_bias {
            worst = worst.max(assert_close(
                &format!("{what}: db"),
                &to64(&gb),
                &nb,
                1e-3,
                2e-4,
            ));
        } else {
            // Without a bias Keras has no bias variable: no gradient, and b does not matter.
            assert!(
                gb.iter().all(|&v| v == 0.0),
                "{what}: bias gradient without use_bias"
            );
            assert!(
                nb.iter().all(|v| v.abs() < 1e-9),
                "{what}: bias changes the loss without use_bias"
            );
        }
    }
    println!(
        "conv finite differences: {} configurations, max abs error {worst:.3e}",
        configs().len()
    );
}

/// Distinct inputs `k · 0.01` in a random order: no two values of a window within 0.01.
fn distinct(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|k| (k as f32 - n as f32 / 2.0) * 0.01).collect();
    rng.shuffle(&mut v);
    v
}

/// The naive reference of pooling (f64): max or mean of the in-range window values.
fn reference_pool(c: &Cfg, x: &[f32], max: bool) -> Vec<f64> {
    let r = c.input.len();
    let axes: Vec<(usize, i64)> = (0..r)
        .map(|a| keras_axis(c.input[a], c.kernel[a], c.strides[a], 1, c.padding))
        .collect();
    let out: Vec<usize> = axes.iter().map(|a| a.0).collect();
    let mut xs = c.input.clone();
    xs.push(c.cin);
    let xst = row_major(&xs);
    let positions: usize = out.iter().product();
    let taps: usize = c.kernel.iter().product();
    let mut y = Vec::new();
    for o in 0..positions {
        let oi = unflatten(o, &out);
        for ch in 0..c.cin {
            let mut vals = Vec::new();
            'tap: for t in 0..taps {
                let ti = unflatten(t, &c.kernel);
                let mut off = ch;
                for a in 0..r {
                    let pos = (oi[a] * c.strides[a] + ti[a]) as i64 - axes[a].1;
                    if pos < 0 || pos >= c.input[a] as i64 {
                        continue 'tap;
                    }
                    off += pos as usize * xst[a];
                }
                vals.push(f64::from(x[off]));
            }
            y.push(if max {
                vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
            } else {
                vals.iter().sum::<f64>() / vals.len() as f64
            });
        }
    }
    y
}

fn pool_configs() -> Vec<Cfg> {
    let mut v = Vec::new();
    for p in [Padding::Valid, Padding::Same] {
        for (n, k, s) in [(7, 2, 2), (7, 3, 2), (8, 2, 2), (7, 3, 3), (5, 2, 1)] {
            v.push(cfg(&[n], &[k], &[s], &[1], p, 3, 3));
        }
        for (n, k, s) in [
            ([6, 6], [2, 2], [2, 2]),
            ([7, 5], [2, 3], [2, 2]),
            ([5, 5], [3, 3], [2, 1]),
            ([6, 7], [3, 2], [3, 3]),
        ] {
            v.push(cfg(&n, &k, &s, &[1, 1], p, 2, 2));
        }
        for (n, k, s) in [
            ([4, 4, 3], [2, 2, 2], [2, 2, 2]),
            ([5, 4, 3], [2, 3, 2], [2, 1, 2]),
        ] {
            v.push(cfg(&n, &k, &s, &[1, 1, 1], p, 2, 2));
        }
    }
    v
}

#[test]
fn pooling_matches_reference_and_finite_differences() {
    let mut rng = Rng::new(9);
    for c in pool_configs() {
        let g = ConvGeometry::pool(&c.input, &c.kernel, &c.strides, c.padding, c.cin)
            .expect("pool geometry");
        for max in [true, false] {
            let what = format!("{} {c:?}", if max { "max" } else { "average" });
            let x = distinct(&mut rng, g.in_len());
            let mut y = vec![f32::NAN; g.out_len()];
            if max {
                pool::max_forward(&g, &x, &mut y);
            } else {
                pool::avg_forward(&g, &x, &mut y);
            }
            assert_close(
                &format!("{what}: y"),
                &to64(&y),
                &reference_pool(&c, &x, max),
                1e-6,
                1e-7,
            );
            let coef = random(&mut rng, g.out_len(), -1.0, 1.0);
            let mut dx = vec![f32::NAN; x.len()];
            if max {
                pool::max_backward(&g, &x, &coef, &mut dx);
            } else {
                pool::avg_backward(&g, &coef, &mut dx);
            }
            let loss = |v: &[f32]| -> f64 {
                let mut y = vec![0.0; g.out_len()];
                if max {
                    pool::max_forward(&g, v, &mut y);
                } else {
                    pool::avg_forward(&g, v, &mut y);
                }
                y.iter()
                    .zip(&coef)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum()
            };
            let nx = numeric_grad(&x, 1e-3, &loss);
            assert_close(&format!("{what}: dx"), &to64(&dx), &nx, 1e-3, 1e-4);
        }
    }
}

type Small = (
    Conv2D<7, 6, 2, 3, 3, 2, 4, 3, Same, 2, 2>,
    AveragePooling2D<4, 3, 3, 2, 2, 4, 2, Same, 1, 2>,
    Flatten<[[[f32; 3]; 2]; 4], 24>,
    Dense<24, 4>,
);

#[test]
fn training_step_gradients_match_finite_differences_of_the_total_loss() {
    let layers: Small = (
        Conv2D::new(Activation::Tanh)
            .kernel_regularizer(Reg::l2(0.01))
            .bias_regularizer(Reg::l2(0.02))
            .activity_regularizer(Reg::l2(0.03)),
        AveragePooling2D::new(),
        Flatten::new(),
        Dense::new(Activation::Softmax)
            .kernel_regularizer(Reg::l2(0.01))
            .activity_regularizer(Reg::l2(0.01)),
    );
    let mut net = Network::new(layers, 3).expect("network");
    let mut rng = Rng::new(21);
    // Non-zero biases so that every term is exercised.
    for v in net
        .params
        .0
        .bias
        .iter_mut()
        .chain(net.params.3.bias.iter_mut())
    {
        *v = rng.uniform(-0.2, 0.2);
    }
    let b = 3;
    let x = random(&mut rng, b * 84, -1.0, 1.0);
    let y = [0u32, 3, 1];
    let data = Samples::new(&x, 84, Targets::Classes(&y)).expect("samples");
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let rep = compute_gradients::<microfit_core::backend::Portable, _>(
        &mut net,
        loss,
        &data,
        Rows::Range(0, b),
    )
    .expect("gradients");
    assert!(
        rep.penalties
            .get(0, microfit_core::layer::PenaltyKind::Activity)
            > 0.0
    );
    let analytic = net.grads.clone();
    let base = net.params.clone();
    let eps = 1e-2f32;
    let mut checked = 0;
    let mut worst = 0.0f64;
    for t in 0..base.tensor_count() {
        for i in 0..base.tensor(t).len() {
            let mut total = |delta: f32| -> f64 {
                net.params = base.clone();
                net.params.tensor_mut(t)[i] += delta;
                f64::from(
                    compute_gradients::<microfit_core::backend::Portable, _>(
                        &mut net,
                        loss,
                        &data,
                        Rows::Range(0, b),
                    )
                    .expect("step")
                    .total_loss,
                )
            };
            let num = (total(eps) - total(-eps)) / (2.0 * f64::from(eps));
            let a = f64::from(analytic.tensor(t)[i]);
            let err = (a - num).abs();
            assert!(
                err <= 1e-4 + 1e-2 * num.abs(),
                "tensor {t}[{i}]: analytic {a}, numeric {num}"
            );
            worst = worst.max(err);
            checked += 1;
        }
    }
    assert_eq!(checked, Network::<Small>::PARAMS);
    println!("training step finite differences: {checked} parameters, max abs error {worst:.3e}");
}
