//! The typed conv, pooling, flatten and dropout layers: Keras semantics checked by hand
//! derivation and against the Keras golden initializers file.

use microfit_core::kernels::conv::{self as kconv, ConvGeometry};
use microfit_core::layer::conv::ConvParams;
use microfit_core::layer::dropout::{self, DropoutConfig, DropoutState};
use microfit_core::layer::{LayerInfo, PenaltyKind};
use microfit_core::prelude::*;
use microfit_core::regularizer::Regularizer;
use microfit_core::tensor::Tensor;
use microfit_core::train::compute_gradients;
use serde_json::Value;

fn golden(file: &str) -> Value {
    let dir = std::env::var("MICROFIT_GOLDEN_DIR").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden").to_string()
    });
    let p = format!("{dir}/{file}");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}")))
        .expect("json")
}

/// Largest |w| over many initializations of one layer's kernel.
fn max_abs_kernel<L: Layer>(layer: &L) -> f32 {
    let mut m = 0.0f32;
    for seed in 0..300 {
        let mut p = L::Params::zeroed();
        layer.init(&mut p, &mut Rng::new(seed));
        m = p.tensor(0).iter().fold(m, |a, &w| a.max(w.abs()));
    }
    m
}

/// Keras `initializers_k3.json` records the Glorot limit of conv kernels with Keras' fans
/// (`fan_in = k·cin`, `fan_out = k·filters`); our typed layers draw within exactly that limit
/// (and come within 1 % of it over 300 draws, so the limit is not smaller either).
#[test]
fn conv_glorot_uniform_uses_keras_conv_fans() {
    let v = golden("initializers_k3.json");
    let limit = |shape: &[u64]| -> f32 {
        v["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .find(|c| {
                c["shape"]
                    .as_array()
                    .expect("shape")
                    .iter()
                    .map(|d| d.as_u64().expect("dim"))
                    .eq(shape.iter().copied())
            })
            .unwrap_or_else(|| panic!("no case for {shape:?}"))["glorot_uniform_limit"]
            .as_f64()
            .expect("limit") as f32
    };
    let cases: [(f32, f32); 4] = [
        (
            limit(&[3, 2, 3]),
            max_abs_kernel(&Conv1D::<7, 2, 3, 3, 5>::new(Activation::Linear)),
        ),
        (
            limit(&[3, 2, 2, 2]),
            max_abs_kernel(&Conv2D::<6, 5, 2, 2, 3, 2, 4, 4>::new(Activation::Linear)),
        ),
        (
            limit(&[3, 3, 1, 4]),
            max_abs_kernel(&Conv2D::<8, 8, 1, 4, 3, 3, 6, 6>::new(Activation::Linear)),
        ),
        (
            limit(&[2, 2, 2, 2, 2]),
            max_abs_kernel(&Conv3D::<4, 4, 3, 2, 2, 2, 2, 2, 3, 3, 2>::new(
                Activation::Linear,
            )),
        ),
    ];
    for (i, (l, m)) in cases.iter().enumerate() {
        assert!(*m <= *l, "case {i}: draw {m} beyond the Keras limit {l}");
        assert!(
            *m >= 0.99 * *l,
            "case {i}: largest draw {m} well inside the Keras limit {l}: wrong fans?"
        );
    }
}

#[test]
fn conv2d_forward_by_hand() {
    // 3×3×1 input, 2×2 kernel, 2 filters, valid: out 2×2×2.
    type L = Conv2D<3, 3, 1, 2, 2, 2, 2, 2>;
    let mut p = ConvParams::<[[[[f32; 2]; 1]; 2]; 2], 2>::zeroed();
    // Filter 0 sums the window; filter 1 takes top-left minus bottom-right.
    for kh in 0..2 {
        for kw in 0..2 {
            p.kernel[kh][kw][0][0] = 1.0;
        }
    }
    p.kernel[0][0][0][1] = 1.0;
    p.kernel[1][1][0][1] = -1.0;
    p.bias = [0.5, 0.0];
    let mut net = Network::with_params(L::new(Activation::Linear), p);
    let x = [
        [[1.0], [2.0], [3.0]],
        [[4.0], [5.0], [6.0]],
        [[7.0], [8.0], [9.0]],
    ];
    let y = *net.predict(&x);
    // Windows: [1 2;4 5] [2 3;5 6] [4 5;7 8] [5 6;8 9].
    assert_eq!(
        y,
        [[[12.5, -4.0], [16.5, -4.0]], [[24.5, -4.0], [28.5, -4.0]]]
    );
}

#[test]
fn same_padding_puts_the_extra_pad_at_the_end() {
    // 1-D, n = 4, k = 2, same: out 4, total pad 1 → (0, 1): the last window reads x3 and a pad.
    type L = Conv1D<4, 1, 1, 2, 4, Same>;
    assert_eq!(L::GEOMETRY.pads(2), (0, 1));
    let mut p = ConvParams::<[[[f32; 1]; 1]; 2], 1>::zeroed();
    p.kernel = [[[1.0]], [[10.0]]];
    let mut net = Network::with_params(L::new(Activation::Linear), p);
    let y = *net.predict(&[[1.0], [2.0], [3.0], [4.0]]);
    assert_eq!(y, [[21.0], [32.0], [43.0], [4.0]]);
}

#[test]
fn softmax_acts_over_the_channels_of_each_position() {
    type L = Conv1D<2, 1, 2, 1, 2>;
    let mut p = ConvParams::<[[[f32; 2]; 1]; 1], 2>::zeroed();
    p.kernel = [[[1.0, -1.0]]];
    let mut net = Network::with_params(L::new(Activation::Softmax), p);
    let y = *net.predict(&[[0.0], [3.0]]);
    assert_eq!(y[0], [0.5, 0.5]);
    assert!((y[1][0] + y[1][1] - 1.0).abs() < 1e-6);
    let e = (-6.0f32).exp();
    assert!((y[1][0] - 1.0 / (1.0 + e)).abs() < 1e-6);
}

#[test]
fn activity_penalty_is_divided_by_the_batch_only() {
    // Conv2D with activity L1(0.01): the step's activity entry must be Σ_s L1(y_s) / B, with
    // the sum over every position and channel of each sample (no division by positions).
    type L = Conv2D<4, 4, 1, 2, 2, 2, 3, 3>;
    let layer = L::new(Activation::Relu).activity_regularizer(Reg::l1(0.01));
    let mut net = Network::new(layer, 3).expect("net");
    let mut rng = Rng::new(1);
    let b = 5;
    let x: Vec<f32> = (0..b * 16).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let t = vec![0.0f32; b * 18];
    let data = Samples::new(
        &x,
        16,
        Targets::Dense {
            values: &t,
            width: 18,
        },
    )
    .expect("samples");
    let mut expected = 0.0f32;
    for s in 0..b {
        let y = net.predict_slice(data.input(s)).expect("predict").to_vec();
        expected += Reg::l1(0.01).penalty(&y, 2);
    }
    let rep = compute_gradients::<microfit_core::backend::Portable, _>(
        &mut net,
        Loss::MeanSquaredError,
        &data,
        Rows::Range(0, b),
    )
    .expect("step");
    let got = rep.penalties.get(0, PenaltyKind::Activity);
    assert!(expected > 0.0);
    assert!(
        (got - expected / b as f32).abs() <= 1e-6 * expected,
        "{got} vs {}",
        expected / b as f32
    );
}

#[test]
fn max_pooling_by_hand_ties_go_to_the_first_element() {
    type M = MaxPooling2D<2, 4, 1, 2, 2, 1, 2>;
    let mut net = Network::new(M::new(), 0).expect("net");
    let x = [[[1.0], [5.0], [7.0], [7.0]], [[5.0], [2.0], [7.0], [7.0]]];
    assert_eq!(*net.predict(&x), [[[5.0], [7.0]]]);
    // Backward: the gradient goes to the first maximal element of each window (row-major).
    let xs = x.as_slice().as_flattened().as_flattened();
    let g = M::GEOMETRY;
    let mut dx = [9.0f32; 8];
    microfit_core::kernels::pool::max_backward(&g, xs, &[1.0, 2.0], &mut dx);
    assert_eq!(dx, [0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn average_pooling_same_excludes_the_padding() {
    // AveragePooling1D(2, strides 2, same) on 3 values: windows [x0, x1], [x2, pad].
    type A = AveragePooling1D<3, 2, 2, 2, Same>;
    let mut net = Network::new(A::new(), 0).expect("net");
    let y = *net.predict(&[[1.0, 10.0], [3.0, 20.0], [5.0, 40.0]]);
    assert_eq!(y, [[2.0, 15.0], [5.0, 40.0]]);
}

#[test]
fn flatten_is_row_major_over_h_w_c() {
    type F = Flatten<[[[f32; 2]; 3]; 2], 12>;
    let mut net = Network::new(F::new(), 0).expect("net");
    let mut x = [[[0.0f32; 2]; 3]; 2];
    for h in 0..2 {
        for w in 0..3 {
            for c in 0..2 {
                x[h][w][c] = (100 * h + 10 * w + c) as f32;
            }
        }
    }
    let y = *net.predict(&x);
    assert_eq!(
        y,
        [
            0.0, 1.0, 10.0, 11.0, 20.0, 21.0, 100.0, 101.0, 110.0, 111.0, 120.0, 121.0
        ]
    );
}

#[test]
fn dropout_inverted_scaling_training_only() {
    let cfg = DropoutConfig {
        rate: 0.25,
        seed: Some(99),
    };
    let n = 20_000;
    let x: Vec<f32> = (0..n).map(|i| 1.0 + (i % 7) as f32).collect();
    let mut y = vec![0.0f32; n];
    let mut st = DropoutState::new();
    let mut model_rng = Rng::new(0);
    // Inference: the identity, no draws.
    dropout::forward(&cfg, &mut st, &x, &mut y, false, Some(&mut model_rng));
    assert_eq!(y, x);
    let mut dx = vec![0.0f32; n];
    dropout::backward(&cfg, &st, &x, &mut dx);
    assert_eq!(dx, x);
    // Training: each value is 0 or x / (1 − rate); about 75 % are kept.
    dropout::forward(&cfg, &mut st, &x, &mut y, true, Some(&mut model_rng));
    let scale = 1.0f32 / 0.75;
    let mut kept = 0;
    for (&a, &b) in x.iter().zip(&y) {
        if b != 0.0 {
            assert_eq!(b, a * scale);
            kept += 1;
        }
    }
    let frac = kept as f64 / n as f64;
    assert!((frac - 0.75).abs() < 0.015, "kept fraction {frac}");
    // The mean is preserved in expectation.
    let (sx, sy): (f64, f64) = (
        x.iter().map(|&v| f64::from(v)).sum(),
        y.iter().map(|&v| f64::from(v)).sum(),
    );
    assert!((sy / sx - 1.0).abs() < 0.02);
    // Backward uses the same mask: d/dx of Σ c·y is c·scale where kept, 0 where dropped.
    let d: Vec<f32> = (0..n).map(|i| (i % 5) as f32 - 2.0).collect();
    dropout::backward(&cfg, &st, &d, &mut dx);
    for i in 0..n {
        let expect = if y[i] != 0.0 { d[i] * scale } else { 0.0 };
        assert_eq!(dx[i], expect, "element {i}");
    }
    // The layer's own seed: a fresh state with the same seed draws the same mask, whatever the
    // model's generator.
    let mut st2 = DropoutState::new();
    let mut y2 = vec![0.0f32; n];
    dropout::forward(
        &cfg,
        &mut st2,
        &x,
        &mut y2,
        true,
        Some(&mut Rng::new(12345)),
    );
    let mut st3 = DropoutState::new();
    let mut y3 = vec![0.0f32; n];
    dropout::forward(&cfg, &mut st3, &x, &mut y3, true, Some(&mut Rng::new(1)));
    assert_eq!(y2, y3);
    // A second call draws a new mask.
    dropout::forward(&cfg, &mut st3, &x, &mut y3, true, Some(&mut Rng::new(1)));
    assert_ne!(y2, y3);
    // Rate 0 is the identity in training too, without consuming random numbers.
    let zero = DropoutConfig {
        rate: 0.0,
        seed: None,
    };
    let before = model_rng.clone();
    dropout::forward(&zero, &mut st, &x, &mut y, true, Some(&mut model_rng));
    assert_eq!(y, x);
    assert_eq!(model_rng, before);
}

#[test]
fn dropout_rate_is_validated() {
    assert!(Dropout::<[f32; 3]>::try_new(0.0).is_ok());
    assert!(Dropout::<[f32; 3]>::try_new(0.999).is_ok());
    for bad in [1.0, -0.1, f32::NAN, f32::INFINITY] {
        assert_eq!(
            Dropout::<[f32; 3]>::try_new(bad).err(),
            Some(Error::InvalidHyperparameter {
                name: "rate",
                reason: microfit_core::error::Reason::UnitIntervalOpenTop
            }),
            "{bad}"
        );
    }
}

#[test]
fn describe_names_the_layers_like_keras() {
    let net = microfit_core::zoo::tiny_cnn(0).expect("net");
    let mut seen: Vec<(usize, LayerInfo)> = Vec::new();
    net.describe(&mut |i, info| seen.push((i, info)));
    let kinds: Vec<&str> = seen.iter().map(|(_, i)| i.kind).collect();
    assert_eq!(kinds, ["conv2d", "max_pooling2d", "flatten", "dense"]);
    let params: Vec<usize> = seen.iter().map(|(_, i)| i.params).collect();
    assert_eq!(params, [80, 0, 0, 730]);
    let mut k = Vec::new();
    Conv1D::<5, 1, 1, 2, 4>::new(Activation::Relu)
        .use_bias(false)
        .describe(0, &mut |_, i| k.push((i.kind, i.params)));
    Conv3D::<2, 2, 2, 1, 1, 1, 1, 1, 2, 2, 2>::new(Activation::Relu)
        .describe(0, &mut |_, i| k.push((i.kind, i.params)));
    AveragePooling3D::<2, 2, 2, 1, 2, 2, 2, 1, 1, 1>::new()
        .describe(0, &mut |_, i| k.push((i.kind, i.params)));
    MaxPooling1D::<4, 1, 2, 2>::new().describe(0, &mut |_, i| k.push((i.kind, i.params)));
    Dropout::<[f32; 4]>::new(0.1).describe(0, &mut |_, i| k.push((i.kind, i.params)));
    assert_eq!(
        k,
        [
            ("conv1d", 2),
            ("conv3d", 2),
            ("average_pooling3d", 0),
            ("max_pooling1d", 0),
            ("dropout", 0)
        ]
    );
}

#[test]
fn use_bias_false_keeps_the_bias_at_zero() {
    type L = Conv1D<5, 2, 3, 2, 4>;
    let layer = L::new(Activation::Linear)
        .use_bias(false)
        .bias_initializer(Initializer::Ones);
    let mut net = Network::new(layer, 1).expect("net");
    assert_eq!(net.params.bias, [0.0; 3]);
    let x = [1.0f32; 10];
    let t = [0.5f32; 12];
    let data = Samples::new(
        &x,
        10,
        Targets::Dense {
            values: &t,
            width: 12,
        },
    )
    .expect("samples");
    compute_gradients::<microfit_core::backend::Portable, _>(
        &mut net,
        Loss::MeanSquaredError,
        &data,
        Rows::Range(0, 1),
    )
    .expect("step");
    assert_eq!(net.grads.bias, [0.0; 3]);
}

#[test]
fn bad_values_never_panic() {
    // NaN and infinite inputs are rejected before any work; NaN weights give a loss error.
    let mut net = microfit_core::zoo::tiny_cnn(0).expect("net");
    let mut adam = Adam::new(1e-3, &net.params).expect("adam");
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let mut x = vec![0.5f32; 128];
    x[70] = f32::NAN;
    let y = [1u32, 2];
    let data = Samples::new(&x, 64, Targets::Classes(&y)).expect("samples");
    let e = microfit_core::train::train_step::<microfit_core::backend::Portable, _, _>(
        &mut net,
        &mut adam,
        loss,
        &data,
        Rows::Range(0, 2),
    );
    assert_eq!(e.err(), Some(Error::NonFiniteInput { sample: 1 }));
    x[70] = 0.5;
    let data = Samples::new(&x, 64, Targets::Classes(&y)).expect("samples");
    let before = net.params.clone();
    net.params.0.kernel[1][1][0][3] = f32::NAN;
    let nan_params = net.params.clone();
    let e = microfit_core::train::train_step::<microfit_core::backend::Portable, _, _>(
        &mut net,
        &mut adam,
        loss,
        &data,
        Rows::Range(0, 2),
    );
    assert!(
        matches!(
            e,
            Err(Error::NonFiniteLoss) | Err(Error::NonFiniteGradient { .. })
        ),
        "{e:?}"
    );
    assert_eq!(
        format!("{:?}", net.params),
        format!("{nan_params:?}"),
        "weights untouched"
    );
    net.params = before;
    net.params.0.kernel[0][0][0][0] = f32::INFINITY;
    let _ = microfit_core::train::train_step::<microfit_core::backend::Portable, _, _>(
        &mut net,
        &mut adam,
        loss,
        &data,
        Rows::Range(0, 2),
    );
    // Label out of range.
    let bad = [1u32, 10];
    let data = Samples::new(&x, 64, Targets::Classes(&bad)).expect("samples");
    assert!(
        microfit_core::train::train_step::<microfit_core::backend::Portable, _, _>(
            &mut net,
            &mut adam,
            loss,
            &data,
            Rows::Range(0, 2)
        )
        .is_err()
    );

    // The kernels with slices of the wrong lengths write zeros or skip, and never panic.
    let g = ConvGeometry::new(
        &[6, 5],
        &[3, 2],
        &[2, 2],
        &[1, 1],
        kconv::Padding::Same,
        2,
        2,
    )
    .expect("geometry");
    let mut z = [7.0f32; 18];
    kconv::forward(&g, &[1.0; 59], &[1.0; 24], None, &mut z);
    assert_eq!(z, [0.0; 18]);
    let mut dx = [7.0f32; 60];
    let mut gk = [0.0f32; 24];
    kconv::backward(
        &g,
        &[],
        &[1.0; 24],
        &[1.0; 18],
        &mut gk,
        None,
        Some(&mut dx),
    );
    assert!(
        gk.iter().all(|&v| v == 0.0),
        "no kernel gradient without the input"
    );
    assert!(
        dx.iter().any(|&v| v != 0.0),
        "the input gradient does not need x"
    );
    kconv::backward(
        &g,
        &[1.0; 60],
        &[1.0; 24],
        &[1.0; 17],
        &mut gk,
        None,
        Some(&mut dx),
    );
    assert_eq!(dx, [0.0; 60]);
    let mut short = [0.0f32; 3];
    kconv::forward(
        &g,
        &[f32::NAN; 60],
        &[f32::INFINITY; 24],
        Some(&[f32::NAN; 2]),
        &mut short,
    );
    let mut y = [0.0f32; 18];
    kconv::forward(
        &g,
        &[f32::NAN; 60],
        &[f32::INFINITY; 24],
        Some(&[f32::NAN; 2]),
        &mut y,
    );
    let pg = ConvGeometry::pool(&[6, 5], &[2, 2], &[2, 2], kconv::Padding::Valid, 2).expect("pool");
    let mut py = [1.0f32; 12];
    microfit_core::kernels::pool::max_forward(&pg, &[f32::NAN; 60], &mut py);
    microfit_core::kernels::pool::max_backward(&pg, &[f32::NAN; 60], &[1.0; 12], &mut [0.0; 60]);
    microfit_core::kernels::pool::max_backward(&pg, &[1.0; 3], &[1.0; 12], &mut [0.0; 60]);
    microfit_core::kernels::pool::avg_backward(&pg, &[1.0; 11], &mut [0.0; 60]);
    // Invalid geometries are errors, not panics.
    for r in [
        ConvGeometry::new(&[], &[], &[], &[], kconv::Padding::Valid, 1, 1),
        ConvGeometry::new(
            &[4, 4, 4, 4],
            &[1, 1, 1, 1],
            &[1, 1, 1, 1],
            &[1, 1, 1, 1],
            kconv::Padding::Valid,
            1,
            1,
        ),
        ConvGeometry::new(&[4], &[5], &[1], &[1], kconv::Padding::Valid, 1, 1),
        ConvGeometry::new(&[4], &[0], &[1], &[1], kconv::Padding::Valid, 1, 1),
        ConvGeometry::new(&[4], &[2], &[0], &[1], kconv::Padding::Valid, 1, 1),
        ConvGeometry::new(&[4], &[2], &[2], &[2], kconv::Padding::Valid, 1, 1),
        ConvGeometry::new(&[4], &[2], &[1], &[1], kconv::Padding::Valid, 0, 1),
        ConvGeometry::new(
            &[usize::MAX, 2],
            &[1, 1],
            &[1, 1],
            &[1, 1],
            kconv::Padding::Same,
            3,
            1,
        ),
    ] {
        assert!(r.is_err(), "{r:?}");
    }
    // A huge kernel with same padding still works (the padding covers it).
    let big =
        ConvGeometry::new(&[3], &[1000], &[1], &[1], kconv::Padding::Same, 1, 1).expect("same");
    let mut y = [0.0f32; 3];
    kconv::forward(&big, &[1.0, 2.0, 3.0], &[1.0; 1000], None, &mut y);
    assert_eq!(y, [6.0; 3]);
}

#[test]
fn tensor_of_a_conv3d_kernel_is_flat_row_major() {
    let mut k = <[[[[[f32; 3]; 2]; 2]; 2]; 2] as Tensor>::zeroed();
    k[1][0][1][1][2] = 1.0;
    let flat = Tensor::as_slice(&k);
    assert_eq!(flat.len(), 48);
    // Index (1, 0, 1, 1, 2) in shape (2, 2, 2, 2, 3): (((1·2 + 0)·2 + 1)·2 + 1)·3 + 2 = 35.
    assert_eq!(flat.iter().position(|&v| v == 1.0), Some(35));
}

/// A tile's convolution as matrix products over its patches (`Via::Products`, the run-time
/// models' path) gives the bits of the per-sample direct loops (`Via::Direct`), forward and
/// backward: `same` padding, strides, dilation, 1-D to 3-D, zero and `-0` inputs, a non-finite
/// weight and a `-0` already in the kernel gradient (the products' fallback conditions).
#[test]
fn conv_products_have_the_direct_bits() {
    use microfit_core::backend::Portable;
    use microfit_core::layer::conv::{self as lconv, Via};
    use microfit_core::layer::dense::{DenseConfig, WeightedBackward, WeightedForward};
    use microfit_core::layer::{BackwardCtx, ForwardCtx};
    type Case<'a> = (
        &'a [usize],
        &'a [usize],
        &'a [usize],
        &'a [usize],
        kconv::Padding,
        usize,
        usize,
    );
    let cases: [Case<'_>; 11] = [
        (
            &[8, 8],
            &[3, 3],
            &[1, 1],
            &[1, 1],
            kconv::Padding::Valid,
            1,
            8,
        ),
        (
            &[7, 6],
            &[3, 2],
            &[2, 1],
            &[1, 1],
            kconv::Padding::Same,
            3,
            5,
        ),
        (&[9], &[3], &[1], &[2], kconv::Padding::Same, 2, 4),
        (&[10], &[4], &[3], &[1], kconv::Padding::Valid, 4, 17),
        (
            &[4, 5, 3],
            &[2, 3, 2],
            &[1, 2, 1],
            &[1, 1, 1],
            kconv::Padding::Same,
            2,
            3,
        ),
        // Windows inside the input are gathered run by run (a kernel row at a time, or a
        // tap at a time when dilated); the cut ones tap by tap.
        (
            &[9, 8],
            &[3, 3],
            &[1, 1],
            &[2, 2],
            kconv::Padding::Same,
            3,
            4,
        ),
        (
            &[6, 7],
            &[3, 3],
            &[1, 1],
            &[1, 1],
            kconv::Padding::Valid,
            8,
            6,
        ),
        (
            &[6, 6],
            &[5, 3],
            &[1, 1],
            &[1, 1],
            kconv::Padding::Same,
            1,
            3,
        ),
        (
            &[4, 6, 5],
            &[2, 2, 2],
            &[1, 1, 1],
            &[1, 2, 1],
            kconv::Padding::Valid,
            2,
            3,
        ),
        // More runs per window (35) than the gathering keeps in its table.
        (
            &[12, 16],
            &[5, 7],
            &[1, 1],
            &[1, 2],
            kconv::Padding::Valid,
            1,
            2,
        ),
        (
            &[12, 16],
            &[5, 7],
            &[1, 1],
            &[1, 2],
            kconv::Padding::Same,
            2,
            3,
        ),
    ];
    let mut rng = Rng::new(7);
    for (ci, &(input, kernel, strides, dilation, padding, cin, filters)) in cases.iter().enumerate()
    {
        let g = ConvGeometry::new(input, kernel, strides, dilation, padding, cin, filters).unwrap();
        let n = 5;
        let draw = |rng: &mut Rng, len: usize, zeros: bool| -> Vec<f32> {
            (0..len)
                .map(|i| {
                    let v = rng.uniform(-1.0, 1.0);
                    match (zeros, i % 5) {
                        (true, 0) => 0.0,
                        (true, 3) => -0.0,
                        _ => v,
                    }
                })
                .collect()
        };
        for variant in 0..3 {
            let x = draw(&mut rng, n * g.in_len(), true);
            let mut k = draw(&mut rng, g.kernel_len(), false);
            if variant == 1 {
                k[1] = f32::INFINITY;
            }
            let b = draw(&mut rng, filters, false);
            let dz = draw(&mut rng, n * g.out_len(), true);
            let mut gk0 = draw(&mut rng, g.kernel_len(), false);
            if variant == 2 {
                gk0[0] = -0.0;
            }
            // 0: direct; 1: products; 2: products with the tile's patches kept from the
            // forward pass for the backward pass; 3: with a buffer too short for them.
            let run = |way: usize| {
                let patch_len = n * g.positions() * g.taps() * cin;
                let mut cache = vec![f32::NAN; if way == 3 { patch_len - 1 } else { patch_len }];
                fn via(way: usize, cache: &mut [f32]) -> Via<'_> {
                    match way {
                        0 => Via::Direct,
                        1 => Via::Products,
                        _ => Via::Patches(cache),
                    }
                }
                let cfg: DenseConfig = DenseConfig::new(Activation::Linear);
                let (mut z, mut y) = (vec![0.0; dz.len()], vec![0.0; dz.len()]);
                let mut r = Rng::new(0);
                let mut ctx = ForwardCtx {
                    training: true,
                    rng: Some(&mut r),
                    layer: 0,
                    penalties: None,
                };
                let io = WeightedForward {
                    kernel: &k,
                    bias: &b,
                    x: &x,
                    z: &mut z,
                    y: &mut y,
                };
                lconv::forward::<Portable, Reg>(&cfg, &g, io, &mut ctx, via(way, &mut cache));
                let (mut gk, mut gb, mut dx) =
                    (gk0.clone(), vec![0.5; filters], vec![9.0; x.len()]);
                let mut d = dz.clone();
                let bctx = BackwardCtx {
                    inv_batch: 0.2,
                    layer: 0,
                    dy_is_pre: false,
                    step_input: false,
                    input_relu: false,
                };
                let io = WeightedBackward {
                    kernel: &k,
                    grad_kernel: &mut gk,
                    grad_bias: &mut gb,
                    x: &x,
                    y: &y,
                    z: &mut z.clone(),
                    dy: &mut d,
                    dx: Some(&mut dx),
                };
                lconv::backward::<Portable, Reg>(&cfg, &g, io, &bctx, via(way, &mut cache));
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                (bits(&z), bits(&gk), bits(&gb), bits(&dx))
            };
            let direct = run(0);
            for way in 1..4 {
                assert_eq!(direct, run(way), "case {ci} variant {variant} way {way}");
            }
        }
    }
}
