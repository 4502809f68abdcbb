//! One engine, one set of bits: a typed `Network` and the run-time `Sequential`, a tile of one
//! sample (a microcontroller's, on the portable backend) and tiles of several (on the host
//! backend at each of its vector levels), train to identical bits — every epoch's loss, data
//! loss, named penalties and metric sums, and every final weight, compared with `to_bits` —
//! over every layer kind (Dense, Conv1D/2D/3D with `same` padding and strides, max and average
//! pooling, Flatten, two Dropout layers), activation, loss (probabilities and logits),
//! optimizer (SGD, momentum, Nesterov, Adam, AdamW, clipping, a decaying schedule) and
//! regularizer (L1, L2, L1L2, orthogonal, activity), in file order and shuffled — and the
//! regularization toolbox: weight constraints, label smoothing, the noise layers and
//! `ActivityRegularization`, frozen layers (typed `Frozen` against `trainable: false`), EMA
//! (with `finalize_variable_values`), `exclude_from_weight_decay` and sample weights.

use microfit::core::layer::Layer;
use microfit::core::layer::frozen::Frozen;
use microfit::core::layer::noise::{
    ActivityRegularization, AlphaDropout, GaussianDropout, GaussianNoise, SpatialDropout1D,
    SpatialDropout2D, SpatialDropout3D,
};
use microfit::core::optim::schedule::{ExponentialDecay, Schedule};
use microfit::core::optim::{
    Adam, AdamConfig, AnyOptimizer, Clip, Ema, EmaConfig, ExcludeFromWeightDecay, Momentum,
    Optimizer, Sgd,
};
use microfit::core::params::Params;
use microfit::core::prelude::*;
use microfit::core::regularizer::SumSqs;
use microfit::core::train::{EpochReport, Trainable};
use microfit::fit::Shuffled;
use microfit::host::{AtMost, Host, HostAt};
use microfit::model::{LayerSpec, ModelSpec, Sequential};

/// The optimizers compared.
#[derive(Debug, Clone, Copy)]
enum Opt {
    Sgd,
    Momentum,
    Nesterov,
    Adam,
    AdamW,
    AdamClipnorm,
    SgdClipvalue,
    AdamGlobalClipDecay,
    /// Adam with `use_ema` (momentum 0.9, weights overwritten every 4 updates).
    AdamEma,
    /// SGD-momentum with `use_ema` (momentum 0.5), finalized at the end only.
    MomentumEma,
    /// AdamW with `exclude_from_weight_decay(var_names=["bias"])`.
    AdamWExcludeBias,
}

const OPTS: [Opt; 8] = [
    Opt::Sgd,
    Opt::Momentum,
    Opt::Nesterov,
    Opt::Adam,
    Opt::AdamW,
    Opt::AdamClipnorm,
    Opt::SgdClipvalue,
    Opt::AdamGlobalClipDecay,
];

/// An optimizer of the test: one of [`AnyOptimizer`], or one with an EMA.
#[derive(Debug, Clone)]
enum TestOpt<P: Params> {
    Plain(AnyOptimizer<P>),
    Ema(Ema<AnyOptimizer<P>, P>),
}

impl<P: Params> Optimizer<P> for TestOpt<P> {
    const SLOTS: usize = 3;
    fn step<B: Backend>(&mut self, w: &mut P, g: &mut P) {
        match self {
            TestOpt::Plain(o) => o.step::<B>(w, g),
            TestOpt::Ema(o) => o.step::<B>(w, g),
        }
    }
    // The plain optimizers compute the L2 penalties' sums in their updates on the host
    // backend (`Backend::FOLD_SUM_SQ`); an EMA takes the default (no sums).
    fn step_sq<B: Backend>(&mut self, w: &mut P, g: &mut P, sq: &mut SumSqs) {
        match self {
            TestOpt::Plain(o) => o.step_sq::<B>(w, g, sq),
            TestOpt::Ema(o) => o.step_sq::<B>(w, g, sq),
        }
    }
    fn iterations(&self) -> u32 {
        match self {
            TestOpt::Plain(o) => o.iterations(),
            TestOpt::Ema(o) => o.iterations(),
        }
    }
    fn reset(&mut self) {
        match self {
            TestOpt::Plain(o) => o.reset(),
            TestOpt::Ema(o) => o.reset(),
        }
    }
    fn finalize_variable_values(&self, w: &mut P) {
        match self {
            TestOpt::Plain(o) => o.finalize_variable_values(w),
            TestOpt::Ema(o) => o.finalize_variable_values(w),
        }
    }
}

fn make_opt<P: Params>(o: Opt, p: &P) -> TestOpt<P> {
    let ema = |inner, momentum, every| {
        let cfg = EmaConfig {
            ema_momentum: momentum,
            ema_overwrite_frequency: every,
        };
        TestOpt::Ema(Ema::new(inner, cfg, p).unwrap())
    };
    match o {
        Opt::AdamEma => ema(make_any(Opt::Adam, p), 0.9, Some(4)),
        Opt::MomentumEma => ema(make_any(Opt::Momentum, p), 0.5, None),
        o => TestOpt::Plain(make_any(o, p)),
    }
}

fn make_any<P: Params>(o: Opt, p: &P) -> AnyOptimizer<P> {
    match o {
        Opt::AdamWExcludeBias => {
            let mut c = AdamConfig {
                learning_rate: 0.02.into(),
                ..AdamConfig::default()
            };
            c.common.weight_decay = Some(0.1);
            c.common.exclude_from_weight_decay =
                ExcludeFromWeightDecay::from_var_names(&["bias"]).unwrap();
            AnyOptimizer::Adam(Adam::with_config(c, p).unwrap())
        }
        Opt::AdamEma | Opt::MomentumEma => unreachable!("built by make_opt"),
        Opt::Sgd => AnyOptimizer::Sgd(Sgd::new(0.05).unwrap()),
        Opt::Momentum => AnyOptimizer::Momentum(Momentum::new(0.05, 0.9, false, p).unwrap()),
        Opt::Nesterov => AnyOptimizer::Momentum(Momentum::new(0.05, 0.9, true, p).unwrap()),
        Opt::Adam => AnyOptimizer::Adam(Adam::new(0.01, p).unwrap()),
        Opt::AdamW => AnyOptimizer::Adam(Adam::adamw(0.01, 0.004, p).unwrap()),
        Opt::AdamClipnorm => {
            let mut c = AdamConfig {
                learning_rate: 0.01.into(),
                ..AdamConfig::default()
            };
            c.common.clip = Clip {
                clipnorm: Some(0.1),
                ..Clip::default()
            };
            AnyOptimizer::Adam(Adam::with_config(c, p).unwrap())
        }
        Opt::SgdClipvalue => {
            let mut s = Sgd::new(0.05).unwrap();
            s.common.clip = Clip {
                clipvalue: Some(0.02),
                ..Clip::default()
            };
            AnyOptimizer::Sgd(s)
        }
        Opt::AdamGlobalClipDecay => {
            let mut c = AdamConfig {
                learning_rate: Schedule::Exponential(
                    ExponentialDecay::new(0.02, 2, 0.5, false).unwrap(),
                ),
                ..AdamConfig::default()
            };
            c.common.clip = Clip {
                global_clipnorm: Some(0.5),
                ..Clip::default()
            };
            AnyOptimizer::Adam(Adam::with_config(c, p).unwrap())
        }
    }
}

/// Every bit of an epoch report.
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

/// Every bit of every weight.
fn weight_bits<P: Params>(p: &P) -> Vec<u32> {
    (0..p.tensor_count())
        .flat_map(|i| p.tensor(i).iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

/// A sample set: 24 samples of `n_in` inputs, targets for `loss` with `n_out` outputs.
struct Data {
    x: Vec<f32>,
    classes: Vec<u32>,
    dense: Vec<f32>,
    n_in: usize,
    n_out: usize,
    sparse: bool,
    /// Keras `sample_weight`, when the run uses them.
    weights: Option<Vec<f32>>,
}

impl Data {
    fn new(n_in: usize, n_out: usize, loss: Loss) -> Self {
        let n = 24;
        let mut rng = Rng::new(17);
        // Mostly values in [-1, 1), some exact zeros (the kernels' zero-skipping paths).
        let x = (0..n * n_in)
            .map(|i| {
                if i % 7 == 3 {
                    0.0
                } else {
                    rng.uniform(-1.0, 1.0)
                }
            })
            .collect();
        let classes: Vec<u32> = (0..n as u32).map(|i| (i * 7 + 1) % n_out as u32).collect();
        let regression = matches!(loss, Loss::MeanSquaredError | Loss::MeanAbsoluteError);
        let binary = matches!(loss, Loss::BinaryCrossentropy { .. });
        let dense = (0..n * n_out)
            .map(|i| {
                if regression {
                    rng.uniform(-2.0, 2.0)
                } else if binary {
                    f32::from(rng.next_u32().is_multiple_of(2))
                } else {
                    f32::from(classes[i / n_out] as usize == i % n_out)
                }
            })
            .collect();
        Data {
            x,
            classes,
            dense,
            n_in,
            n_out,
            sparse: matches!(loss, Loss::SparseCategoricalCrossentropy { .. }),
            weights: None,
        }
    }

    /// The same data with sample weights (0, fractions, integers, one large).
    fn weighted(mut self) -> Self {
        let n = self.x.len() / self.n_in;
        self.weights = Some(
            (0..n)
                .map(|i| [1.0, 0.0, 2.5, 0.25, 1.0, 7.0][i % 6])
                .collect(),
        );
        self
    }

    fn samples(&self) -> Samples<'_> {
        let t = if self.sparse {
            Targets::Classes(&self.classes)
        } else {
            Targets::Dense {
                values: &self.dense,
                width: self.n_out,
            }
        };
        let s = Samples::new(&self.x, self.n_in, t).unwrap();
        match &self.weights {
            Some(w) => s.with_sample_weights(w).unwrap(),
            None => s,
        }
    }
}

/// Trains `epochs` epochs of one model and returns each epoch's report bits and the final
/// weight bits.
fn train<M: Trainable, B: Backend>(
    model: M,
    opt: Opt,
    loss: Loss,
    data: &Samples<'_>,
    order: Option<&[u32]>,
    tiled: bool,
) -> (Vec<Vec<u64>>, Vec<u32>) {
    let o = make_opt(opt, model.params());
    let mut t = Trainer::<M, _, B>::with_backend(model, o, loss);
    let mut scratch = Shuffled::default();
    let mut reps = Vec::new();
    for _ in 0..3 {
        let r = match order {
            // Shuffled on tiles: gathered first, as the runtime trains.
            Some(order) if tiled => {
                let gathered = scratch.gather(data, order).unwrap();
                t.fit_epoch(&gathered, 10, None).unwrap()
            }
            _ => t.fit_epoch(data, 10, order).unwrap(),
        };
        reps.push(report_bits(&r));
    }
    // An evaluation too (Keras `evaluate`: activity and weight penalties included).
    reps.push(report_bits(&t.evaluate(data, 7).unwrap()));
    // Keras `fit` ends with `finalize_variable_values` (an EMA's averages become the weights).
    t.finalize_variable_values();
    (reps, weight_bits(t.model.params()))
}

/// Trains `layers` (typed) and `spec` (the same model at run time) six ways and asserts they
/// agree bit for bit.
fn six_ways<L: Layer + Clone>(what: &str, layers: L, spec: &ModelSpec, loss: Loss, opt: Opt) {
    six_ways_with(what, layers, spec, loss, opt, &[], false);
}

/// [`six_ways`] with the run-time model's frozen weights set from `frozen` (by name), and
/// sample weights when `weighted`.
fn six_ways_with<L: Layer + Clone>(
    what: &str,
    layers: L,
    spec: &ModelSpec,
    loss: Loss,
    opt: Opt,
    frozen: &[(String, Vec<f32>)],
    weighted: bool,
) {
    let init = Network::new(layers.clone(), 7).unwrap().params;
    let with_init = |tile: usize| -> Sequential {
        let mut m = spec.build(7).unwrap();
        assert_eq!(
            m.params.tensor_count(),
            init.tensor_count(),
            "{what}: trainable tensors"
        );
        for i in 0..m.params.tensor_count() {
            m.params.tensor_mut(i).copy_from_slice(init.tensor(i));
        }
        m.set_weights(frozen).unwrap();
        m.set_tile(tile);
        // `Network::with_params` starts its generator at `Rng::new(0)`: the same here.
        m.set_rng(Rng::new(0));
        m
    };
    let n_in = <L::Input as microfit::core::tensor::Tensor>::LEN;
    let n_out = <L::Output as microfit::core::tensor::Tensor>::LEN;
    let d = Data::new(n_in, n_out, loss);
    let d = if weighted { d.weighted() } else { d };
    let data = d.samples();
    let mut shuffled: Vec<u32> = (0..data.len() as u32).collect();
    Rng::new(5).shuffle(&mut shuffled);
    for order in [None, Some(&shuffled[..])] {
        let ctx = format!("{what}, {loss:?}, {opt:?}, shuffled: {}", order.is_some());
        let typed1 = Network::with_params(layers.clone(), init.clone());
        let reference = train::<_, Portable>(typed1, opt, loss, &data, order, false);
        let typed8 = Network::<L, 8>::with_params_tiled(layers.clone(), init.clone());
        let runs = [
            (
                "typed, tile 8, host",
                train::<_, Host>(typed8.clone(), opt, loss, &data, order, true),
            ),
            (
                "typed, tile 8, host baseline",
                train::<_, HostAt<AtMost<0>>>(typed8, opt, loss, &data, order, true),
            ),
            (
                "run-time, tile 1",
                train::<_, Portable>(with_init(1), opt, loss, &data, order, false),
            ),
            (
                "run-time, tile 5, host AVX2",
                train::<_, HostAt<AtMost<1>>>(with_init(5), opt, loss, &data, order, true),
            ),
            (
                "run-time, tile 32, host",
                train::<_, Host>(with_init(32), opt, loss, &data, order, true),
            ),
        ];
        for (name, run) in runs {
            for (e, (a, b)) in reference.0.iter().zip(&run.0).enumerate() {
                assert_eq!(
                    a, b,
                    "{ctx}: {name}: epoch {e} report differs from typed tile 1"
                );
            }
            assert_eq!(
                reference.1, run.1,
                "{ctx}: {name}: final weights differ from typed tile 1"
            );
        }
    }
}

/// (loss, the output layer's activation) pairs: every loss, probabilities and logits.
fn losses() -> Vec<(Loss, Activation)> {
    vec![
        (Loss::MeanSquaredError, Activation::Linear),
        (Loss::MeanAbsoluteError, Activation::Tanh),
        (
            Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            Activation::Sigmoid,
        ),
        (
            Loss::BinaryCrossentropy {
                from_logits: true,
                label_smoothing: 0.0,
            },
            Activation::Linear,
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
                from_logits: true,
                label_smoothing: 0.0,
            },
            Activation::Linear,
        ),
        (
            Loss::SparseCategoricalCrossentropy { from_logits: false },
            Activation::Softmax,
        ),
        (
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            Activation::Linear,
        ),
    ]
}

const HIDDEN_ACTIVATIONS: [Activation; 6] = [
    Activation::Relu,
    Activation::Linear,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::LeakyRelu(0.1),
    Activation::Softmax,
];

/// A Dense MLP, 6 → 8 → 3: every loss, every optimizer, every hidden activation, every
/// regularizer (kernel L1/L2/L1L2/orthogonal, bias L1, activity L2 and L1L2).
#[test]
fn dense_every_loss_optimizer_activation_and_regularizer() {
    type M = (Dense<6, 8>, Dense<8, 3>);
    let kernel_regs = [
        Reg::l2(1e-2),
        Reg::l1(1e-2),
        Reg::l1l2(1e-3, 1e-2),
        Reg::try_orthogonal(0.05, OrthoMode::Rows).unwrap(),
    ];
    for (i, (loss, out_act)) in losses().into_iter().enumerate() {
        for (j, opt) in OPTS.into_iter().enumerate() {
            let act = HIDDEN_ACTIVATIONS[(i + j) % HIDDEN_ACTIVATIONS.len()];
            let kr = kernel_regs[(i + j) % kernel_regs.len()];
            let layers: M = (
                Dense::new(act)
                    .kernel_regularizer(kr)
                    .bias_regularizer(Reg::l1(1e-3))
                    .activity_regularizer(Reg::l2(1e-3)),
                Dense::new(out_act)
                    .kernel_regularizer(Reg::l2(1e-2))
                    .activity_regularizer(Reg::l1l2(1e-4, 1e-3)),
            );
            let spec = ModelSpec {
                input_shape: vec![6],
                layers: vec![
                    LayerSpec::dense(8, act)
                        .with_kernel_regularizer(kr)
                        .with_bias_regularizer(Reg::l1(1e-3))
                        .with_activity_regularizer(Reg::l2(1e-3)),
                    LayerSpec::dense(3, out_act)
                        .with_kernel_regularizer(Reg::l2(1e-2))
                        .with_activity_regularizer(Reg::l1l2(1e-4, 1e-3)),
                ],
            };
            six_ways(
                &format!("dense, hidden {act:?}, kernel {kr:?}"),
                layers,
                &spec,
                loss,
                opt,
            );
        }
    }
}

/// Two Dropout layers (each with its own stream: the tile size must not change the masks).
#[test]
fn two_dropout_layers() {
    type M = (
        Dense<6, 8>,
        Dropout<[f32; 8]>,
        Dense<8, 8>,
        Dropout<[f32; 8]>,
        Dense<8, 3>,
    );
    let layers: M = (
        Dense::new(Activation::Relu),
        Dropout::new(0.3),
        Dense::new(Activation::Tanh),
        Dropout::new(0.5),
        Dense::new(Activation::Softmax),
    );
    let spec = ModelSpec {
        input_shape: vec![6],
        layers: vec![
            LayerSpec::dense(8, Activation::Relu),
            LayerSpec::dropout(0.3),
            LayerSpec::dense(8, Activation::Tanh),
            LayerSpec::dropout(0.5),
            LayerSpec::dense(3, Activation::Softmax),
        ],
    };
    let loss = Loss::CategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    six_ways("two dropouts", layers, &spec, loss, Opt::Adam);
}

/// Conv2D, max pooling, flatten, dense: softmax cross-entropy and MSE.
#[test]
fn conv2d_max_pooling() {
    type M = (
        Conv2D<6, 6, 2, 3, 3, 3, 4, 4>,
        MaxPooling2D<4, 4, 3, 2, 2, 2, 2>,
        Flatten<[[[f32; 3]; 2]; 2], 12>,
        Dense<12, 3>,
    );
    for (loss, out_act) in [
        (
            Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            Activation::Softmax,
        ),
        (Loss::MeanSquaredError, Activation::Sigmoid),
    ] {
        let layers: M = (
            Conv2D::new(Activation::Relu)
                .kernel_regularizer(Reg::l2(1e-2))
                .bias_regularizer(Reg::l1(1e-3))
                .activity_regularizer(Reg::l1(1e-3)),
            MaxPooling2D::new(),
            Flatten::new(),
            Dense::new(out_act),
        );
        let spec = ModelSpec {
            input_shape: vec![6, 6, 2],
            layers: vec![
                LayerSpec::conv2d(3, [3, 3], Activation::Relu)
                    .with_kernel_regularizer(Reg::l2(1e-2))
                    .with_bias_regularizer(Reg::l1(1e-3))
                    .with_activity_regularizer(Reg::l1(1e-3)),
                LayerSpec::max_pooling(&[2, 2]),
                LayerSpec::Flatten,
                LayerSpec::dense(3, out_act),
            ],
        };
        six_ways("conv2d", layers, &spec, loss, Opt::Adam);
    }
}

/// Conv1D with `same` padding and stride 2, average pooling, softmax over the channels of a
/// feature map feeding flatten, dense.
#[test]
fn conv1d_same_stride_average_pooling() {
    type M = (
        Conv1D<7, 2, 3, 3, 4, Same, 2>,
        AveragePooling1D<4, 3, 2, 2>,
        Flatten<[[f32; 3]; 2], 6>,
        Dense<6, 3>,
    );
    let layers: M = (
        Conv1D::new(Activation::Softmax).kernel_regularizer(Reg::l1l2(1e-3, 1e-2)),
        AveragePooling1D::new(),
        Flatten::new(),
        Dense::new(Activation::Softmax),
    );
    let spec = ModelSpec {
        input_shape: vec![7, 2],
        layers: vec![
            LayerSpec::conv1d(3, 3, Activation::Softmax)
                .with_strides(&[2])
                .with_padding(Padding::Same)
                .with_kernel_regularizer(Reg::l1l2(1e-3, 1e-2)),
            LayerSpec::average_pooling(&[2]),
            LayerSpec::Flatten,
            LayerSpec::dense(3, Activation::Softmax),
        ],
    };
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    six_ways("conv1d", layers, &spec, loss, Opt::Nesterov);
}

/// Conv3D, flatten, dense.
#[test]
fn conv3d() {
    type M = (
        Conv3D<3, 3, 3, 1, 2, 2, 2, 2, 2, 2, 2>,
        Flatten<[[[[f32; 2]; 2]; 2]; 2], 16>,
        Dense<16, 3>,
    );
    let layers: M = (
        Conv3D::new(Activation::Tanh).kernel_regularizer(Reg::l2(1e-2)),
        Flatten::new(),
        Dense::new(Activation::Linear),
    );
    let spec = ModelSpec {
        input_shape: vec![3, 3, 3, 1],
        layers: vec![
            LayerSpec::conv3d(2, [2, 2, 2], Activation::Tanh)
                .with_kernel_regularizer(Reg::l2(1e-2)),
            LayerSpec::Flatten,
            LayerSpec::dense(3, Activation::Linear),
        ],
    };
    six_ways("conv3d", layers, &spec, Loss::MeanAbsoluteError, Opt::AdamW);
}

/// The same errors, and no update, whatever the tile: a label out of range in the middle of a
/// batch, and non-finite inputs.
#[test]
fn same_errors_on_every_path() {
    type M = (Dense<2, 4>, Dense<4, 3>);
    let layers: M = (
        Dense::new(Activation::Relu),
        Dense::new(Activation::Softmax),
    );
    let x = [0.5f32, -1.0, 1.0, 2.0, 0.0, 0.25, 3.0, -0.5];
    let bad_label = Samples::new(&x, 2, Targets::Classes(&[0, 1, 7, 2])).unwrap();
    let x_nan = [0.5f32, -1.0, f32::NAN, 2.0, 0.0, 0.25, 3.0, -0.5];
    let nan = Samples::new(&x_nan, 2, Targets::Classes(&[0, 1, 2, 2])).unwrap();
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let init = Network::new(layers, 3).unwrap().params;
    for data in [&bad_label, &nan] {
        let mut a = Trainer::new(
            Network::with_params(layers, init.clone()),
            Sgd::new(0.1).unwrap(),
            loss,
        );
        let net = Network::<M, 4>::with_params_tiled(layers, init.clone());
        let mut b = Trainer::<_, _, Host>::with_backend(net, Sgd::new(0.1).unwrap(), loss);
        let ea = a.fit_epoch(data, 4, None).unwrap_err();
        let eb = b.fit_epoch(data, 4, None).unwrap_err();
        assert_eq!(ea, eb);
        assert_eq!(weight_bits(&a.model.params), weight_bits(&init));
        assert_eq!(weight_bits(&b.model.params), weight_bits(&init));
    }
}

// ---------------------------------------------------------------------------------------------
// The regularization toolbox (issue 12).
// ---------------------------------------------------------------------------------------------

/// Kernel and bias constraints on Dense layers: MaxNorm (axis 0), MinMaxNorm (axis 1), UnitNorm
/// (axis -1 … the last), NonNeg on a bias, with three optimizers; an L2 penalty on a
/// constrained kernel.
#[test]
fn dense_constraints() {
    type M = (Dense<6, 8>, Dense<8, 3>);
    let c0 = Constraint::max_norm(0.5, Axes::one(0));
    let c1 = Constraint::min_max_norm(0.2, 0.6, 0.7, Axes::one(1));
    let c2 = Constraint::unit_norm(Axes::one(-1));
    for (opt, ck) in [(Opt::Adam, c0), (Opt::Nesterov, c1), (Opt::AdamW, c2)] {
        let layers: M = (
            Dense::new(Activation::Relu)
                .kernel_constraint(ck)
                .bias_constraint(Constraint::NonNeg)
                .kernel_regularizer(Reg::l1(1e-2)),
            // L2 under a constraint: its penalty is taken on the constrained weights.
            Dense::new(Activation::Softmax)
                .kernel_constraint(c0)
                .kernel_regularizer(Reg::l2(1e-2)),
        );
        let spec = ModelSpec {
            input_shape: vec![6],
            layers: vec![
                LayerSpec::dense(8, Activation::Relu)
                    .with_kernel_constraint(ck)
                    .with_bias_constraint(Constraint::NonNeg)
                    .with_kernel_regularizer(Reg::l1(1e-2)),
                LayerSpec::dense(3, Activation::Softmax)
                    .with_kernel_constraint(c0)
                    .with_kernel_regularizer(Reg::l2(1e-2)),
            ],
        };
        let loss = Loss::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        };
        six_ways(
            &format!("dense constraint {ck:?}"),
            layers,
            &spec,
            loss,
            opt,
        );
    }
}

/// A Conv2D kernel under UnitNorm over `[0, 1, 2]` (each filter), a Conv1D under MaxNorm over
/// `[0, 1]` with 16 filters (TensorFlow's packet order) and a Conv3D under MinMaxNorm.
#[test]
fn conv_constraints() {
    type M2 = (
        Conv2D<6, 6, 2, 3, 3, 3, 4, 4>,
        Flatten<[[[f32; 3]; 4]; 4], 48>,
        Dense<48, 3>,
    );
    let unit = Constraint::unit_norm(Axes::list(&[0, 1, 2]));
    let layers: M2 = (
        Conv2D::new(Activation::Relu).kernel_constraint(unit),
        Flatten::new(),
        Dense::new(Activation::Softmax),
    );
    let spec = ModelSpec {
        input_shape: vec![6, 6, 2],
        layers: vec![
            LayerSpec::conv2d(3, [3, 3], Activation::Relu).with_kernel_constraint(unit),
            LayerSpec::Flatten,
            LayerSpec::dense(3, Activation::Softmax),
        ],
    };
    let cce = Loss::CategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    six_ways("conv2d unit norm", layers, &spec, cce, Opt::Adam);

    type M1 = (
        Conv1D<7, 3, 16, 3, 5>,
        Flatten<[[f32; 16]; 5], 80>,
        Dense<80, 3>,
    );
    let max = Constraint::max_norm(0.3, Axes::list(&[0, 1]));
    let layers: M1 = (
        Conv1D::new(Activation::Tanh)
            .kernel_constraint(max)
            .bias_constraint(Constraint::max_norm(0.1, Axes::one(0))),
        Flatten::new(),
        Dense::new(Activation::Linear),
    );
    let spec = ModelSpec {
        input_shape: vec![7, 3],
        layers: vec![
            LayerSpec::conv1d(16, 3, Activation::Tanh)
                .with_kernel_constraint(max)
                .with_bias_constraint(Constraint::max_norm(0.1, Axes::one(0))),
            LayerSpec::Flatten,
            LayerSpec::dense(3, Activation::Linear),
        ],
    };
    six_ways(
        "conv1d max norm",
        layers,
        &spec,
        Loss::MeanSquaredError,
        Opt::Momentum,
    );

    type M3 = (
        Conv3D<3, 3, 3, 1, 2, 2, 2, 2, 2, 2, 2>,
        Flatten<[[[[f32; 2]; 2]; 2]; 2], 16>,
        Dense<16, 3>,
    );
    let mm = Constraint::min_max_norm(0.5, 0.8, 0.5, Axes::list(&[0, 1, 2, 3]));
    let layers: M3 = (
        Conv3D::new(Activation::Relu).kernel_constraint(mm),
        Flatten::new(),
        Dense::new(Activation::Linear),
    );
    let spec = ModelSpec {
        input_shape: vec![3, 3, 3, 1],
        layers: vec![
            LayerSpec::conv3d(2, [2, 2, 2], Activation::Relu).with_kernel_constraint(mm),
            LayerSpec::Flatten,
            LayerSpec::dense(3, Activation::Linear),
        ],
    };
    six_ways(
        "conv3d min-max norm",
        layers,
        &spec,
        Loss::MeanAbsoluteError,
        Opt::Adam,
    );
}

/// Label smoothing in CCE and BCE, probabilities (the cached-logits path) and logits, sparse
/// labels and dense targets.
#[test]
fn label_smoothing() {
    type M = (Dense<6, 8>, Dense<8, 3>);
    for (loss, act) in [
        (
            Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.1,
            },
            Activation::Softmax,
        ),
        (
            Loss::CategoricalCrossentropy {
                from_logits: true,
                label_smoothing: 0.2,
            },
            Activation::Linear,
        ),
        (
            Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.15,
            },
            Activation::Sigmoid,
        ),
        (
            Loss::BinaryCrossentropy {
                from_logits: true,
                label_smoothing: 0.3,
            },
            Activation::Linear,
        ),
        // Probabilities that are not a softmax: the clipped, non-fused path.
        (
            Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.1,
            },
            Activation::Sigmoid,
        ),
    ] {
        let layers: M = (Dense::new(Activation::Relu), Dense::new(act));
        let spec = ModelSpec {
            input_shape: vec![6],
            layers: vec![
                LayerSpec::dense(8, Activation::Relu),
                LayerSpec::dense(3, act),
            ],
        };
        six_ways("label smoothing", layers, &spec, loss, Opt::Adam);
    }
}

/// `GaussianNoise`, `GaussianDropout`, `AlphaDropout` and `ActivityRegularization` between
/// Dense layers (each noise layer on its own stream, split from the model's generator, and one
/// with its own seed).
#[test]
fn noise_layers_and_activity_regularization() {
    type M = (
        Dense<6, 8>,
        GaussianNoise<[f32; 8]>,
        Dense<8, 8>,
        GaussianDropout<[f32; 8]>,
        AlphaDropout<[f32; 8]>,
        ActivityRegularization<[f32; 8]>,
        Dense<8, 3>,
    );
    let layers: M = (
        Dense::new(Activation::Relu),
        GaussianNoise::new(0.3),
        Dense::new(Activation::Tanh),
        GaussianDropout::new(0.2).seed(11),
        AlphaDropout::new(0.1),
        ActivityRegularization::new(0.01, 0.02),
        Dense::new(Activation::Softmax),
    );
    let spec = ModelSpec {
        input_shape: vec![6],
        layers: vec![
            LayerSpec::dense(8, Activation::Relu),
            LayerSpec::GaussianNoise {
                stddev: 0.3,
                seed: None,
            },
            LayerSpec::dense(8, Activation::Tanh),
            LayerSpec::GaussianDropout {
                rate: 0.2,
                seed: Some(11),
            },
            LayerSpec::AlphaDropout {
                rate: 0.1,
                seed: None,
            },
            LayerSpec::ActivityRegularization { l1: 0.01, l2: 0.02 },
            LayerSpec::dense(3, Activation::Softmax),
        ],
    };
    for opt in [Opt::Adam, Opt::Sgd] {
        let loss = Loss::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        };
        six_ways("noise layers", layers, &spec, loss, opt);
    }
}

/// `SpatialDropout1D/2D/3D` after Conv1D/2D/3D: whole channels, the same masks whatever the tile.
#[test]
fn spatial_dropout() {
    let cce = Loss::CategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    type M1 = (
        Conv1D<7, 2, 4, 3, 5>,
        SpatialDropout1D<5, 4>,
        Flatten<[[f32; 4]; 5], 20>,
        Dense<20, 3>,
    );
    let layers: M1 = (
        Conv1D::new(Activation::Relu),
        SpatialDropout1D::new(0.4),
        Flatten::new(),
        Dense::new(Activation::Softmax),
    );
    let spec = ModelSpec {
        input_shape: vec![7, 2],
        layers: vec![
            LayerSpec::conv1d(4, 3, Activation::Relu),
            LayerSpec::SpatialDropout1D {
                rate: 0.4,
                seed: None,
            },
            LayerSpec::Flatten,
            LayerSpec::dense(3, Activation::Softmax),
        ],
    };
    six_ways("spatial dropout 1d", layers, &spec, cce, Opt::Adam);

    type M2 = (
        Conv2D<6, 6, 2, 3, 3, 3, 4, 4>,
        SpatialDropout2D<4, 4, 3>,
        Flatten<[[[f32; 3]; 4]; 4], 48>,
        Dense<48, 3>,
    );
    let layers: M2 = (
        Conv2D::new(Activation::Relu),
        SpatialDropout2D::new(0.5).seed(3),
        Flatten::new(),
        Dense::new(Activation::Softmax),
    );
    let spec = ModelSpec {
        input_shape: vec![6, 6, 2],
        layers: vec![
            LayerSpec::conv2d(3, [3, 3], Activation::Relu),
            LayerSpec::SpatialDropout2D {
                rate: 0.5,
                seed: Some(3),
            },
            LayerSpec::Flatten,
            LayerSpec::dense(3, Activation::Softmax),
        ],
    };
    six_ways("spatial dropout 2d", layers, &spec, cce, Opt::Momentum);

    type M3 = (
        Conv3D<3, 3, 3, 1, 2, 2, 2, 2, 2, 2, 2>,
        SpatialDropout3D<2, 2, 2, 2>,
        Flatten<[[[[f32; 2]; 2]; 2]; 2], 16>,
        Dense<16, 3>,
    );
    let layers: M3 = (
        Conv3D::new(Activation::Tanh),
        SpatialDropout3D::new(0.3),
        Flatten::new(),
        Dense::new(Activation::Linear),
    );
    let spec = ModelSpec {
        input_shape: vec![3, 3, 3, 1],
        layers: vec![
            LayerSpec::conv3d(2, [2, 2, 2], Activation::Tanh),
            LayerSpec::SpatialDropout3D {
                rate: 0.3,
                seed: None,
            },
            LayerSpec::Flatten,
            LayerSpec::dense(3, Activation::Linear),
        ],
    };
    six_ways(
        "spatial dropout 3d",
        layers,
        &spec,
        Loss::MeanSquaredError,
        Opt::Adam,
    );
}

/// The frozen weights of `layer` drawn by a seeded initializer, as a constant.
fn frozen_weights<L: Layer>(layer: &L, seed: u64) -> L::Params {
    let mut p = <L::Params as microfit::core::params::ZeroParams>::zeroed();
    layer.init(&mut p, &mut Rng::new(seed));
    p
}

/// The frozen weights by their run-time names.
fn named<P: Params>(p: &P, names: &[&str]) -> Vec<(String, Vec<f32>)> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), p.tensor(i).to_vec()))
        .collect()
}

/// A frozen first layer (typed `Frozen` with borrowed weights, run-time `trainable: false`)
/// with an activity regularizer and a kernel L2 (Keras 3 keeps the activity penalty, drops the
/// kernel's), a frozen layer after a trainable one (the gradient passes through it), every
/// optimizer.
#[test]
fn frozen_layers() {
    let first = Dense::<6, 8>::new(Activation::Relu)
        .kernel_regularizer(Reg::l2(0.1))
        .activity_regularizer(Reg::l1(1e-2));
    let w0 = frozen_weights(&first, 9);
    type M<'w> = (Frozen<'w, Dense<6, 8>>, Dense<8, 3>);
    let spec = ModelSpec {
        input_shape: vec![6],
        layers: vec![
            LayerSpec::dense(8, Activation::Relu)
                .with_kernel_regularizer(Reg::l2(0.1))
                .with_activity_regularizer(Reg::l1(1e-2))
                .with_trainable(false),
            LayerSpec::dense(3, Activation::Softmax).with_kernel_regularizer(Reg::l2(1e-2)),
        ],
    };
    let cce = Loss::CategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    for opt in OPTS {
        let layers: M<'_> = (
            Frozen::new(first, &w0),
            Dense::new(Activation::Softmax).kernel_regularizer(Reg::l2(1e-2)),
        );
        let frozen = named(&w0, &["dense/kernel", "dense/bias"]);
        six_ways_with("frozen first", layers, &spec, cce, opt, &frozen, false);
    }

    // Trainable, frozen, trainable: the middle layer passes the gradient on.
    let mid = Dense::<8, 8>::new(Activation::Tanh).activity_regularizer(Reg::l2(1e-2));
    let w1 = frozen_weights(&mid, 4);
    type N<'w> = (Dense<6, 8>, Frozen<'w, Dense<8, 8>>, Dense<8, 3>);
    let layers: N<'_> = (
        Dense::new(Activation::Relu),
        Frozen::new(mid, &w1),
        Dense::new(Activation::Softmax),
    );
    let spec = ModelSpec {
        input_shape: vec![6],
        layers: vec![
            LayerSpec::dense(8, Activation::Relu),
            LayerSpec::dense(8, Activation::Tanh)
                .with_activity_regularizer(Reg::l2(1e-2))
                .with_trainable(false),
            LayerSpec::dense(3, Activation::Softmax),
        ],
    };
    let frozen = named(&w1, &["dense_1/kernel", "dense_1/bias"]);
    six_ways_with(
        "frozen middle",
        layers,
        &spec,
        cce,
        Opt::Adam,
        &frozen,
        false,
    );

    // A frozen tuple of two layers, then dropout: the typed network skips the frozen prefix.
    let pair = (
        Dense::<6, 8>::new(Activation::Relu),
        Dense::<8, 8>::new(Activation::Relu),
    );
    let wp = frozen_weights(&pair, 2);
    type P<'w> = (
        Frozen<'w, (Dense<6, 8>, Dense<8, 8>)>,
        Dropout<[f32; 8]>,
        Dense<8, 3>,
    );
    let layers: P<'_> = (
        Frozen::new(pair, &wp),
        Dropout::new(0.25),
        Dense::new(Activation::Softmax),
    );
    let mut spec = ModelSpec {
        input_shape: vec![6],
        layers: vec![
            LayerSpec::dense(8, Activation::Relu),
            LayerSpec::dense(8, Activation::Relu),
            LayerSpec::dropout(0.25),
            LayerSpec::dense(3, Activation::Softmax),
        ],
    };
    spec.freeze_first(2);
    let frozen = named(
        &wp,
        &[
            "dense/kernel",
            "dense/bias",
            "dense_1/kernel",
            "dense_1/bias",
        ],
    );
    six_ways_with(
        "frozen pair",
        layers,
        &spec,
        cce,
        Opt::Momentum,
        &frozen,
        false,
    );
}

/// EMA (with and without overwrite frequency, finalized at the end), AdamW excluding the
/// biases from weight decay.
#[test]
fn ema_and_exclude_from_weight_decay() {
    type M = (Dense<6, 8>, Dense<8, 3>);
    for opt in [Opt::AdamEma, Opt::MomentumEma, Opt::AdamWExcludeBias] {
        let layers: M = (
            Dense::new(Activation::Relu).bias_regularizer(Reg::l2(1e-2)),
            Dense::new(Activation::Softmax),
        );
        let spec = ModelSpec {
            input_shape: vec![6],
            layers: vec![
                LayerSpec::dense(8, Activation::Relu).with_bias_regularizer(Reg::l2(1e-2)),
                LayerSpec::dense(3, Activation::Softmax),
            ],
        };
        let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
        six_ways("ema / exclude", layers, &spec, loss, opt);
    }
}

/// Sample weights (Keras `sample_weight`; a class weight is one), every loss.
#[test]
fn sample_weights() {
    type M = (Dense<6, 8>, Dense<8, 3>);
    for (loss, act) in losses().into_iter().chain([(
        Loss::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.1,
        },
        Activation::Softmax,
    )]) {
        let layers: M = (
            Dense::new(Activation::Relu).activity_regularizer(Reg::l2(1e-3)),
            Dense::new(act),
        );
        let spec = ModelSpec {
            input_shape: vec![6],
            layers: vec![
                LayerSpec::dense(8, Activation::Relu).with_activity_regularizer(Reg::l2(1e-3)),
                LayerSpec::dense(3, act),
            ],
        };
        six_ways_with("sample weights", layers, &spec, loss, Opt::Adam, &[], true);
    }
}
