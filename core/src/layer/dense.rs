//! `Dense<IN, OUT>`: `y = activation(x·W + b)`, with Keras' three regularizers.
//!
//! ```
//! use microfit_core::prelude::*;
//! let layer = Dense::<4, 16>::new(Activation::Relu)
//!     .kernel_regularizer(Reg::l2(1e-3))
//!     .bias_regularizer(Reg::l1(1e-4))
//!     .activity_regularizer(Reg::l1l2(0.0, 1e-5));
//! assert_eq!(layer.config.activation, Activation::Relu);
//! ```
//!
//! The math is in [`forward`] and [`backward`] over the flat rows of a tile; the typed layer
//! and models built at run time both call them.

use super::{
    BackwardCtx, ForwardCtx, Layer, LayerInfo, LossIo, Penalties, PenaltyKind, WeightedCache,
};
use crate::activation::Activation;
use crate::backend::Backend;
use crate::constraint::Constraint;
use crate::error::Error;
use crate::init::Initializer;
use crate::kernels;
use crate::kernels::gemm::{MatMul, MatMulAtAcc, MatMulBt};
use crate::params::{Params, ZeroParams};
use crate::regularizer::{Reg, Regularizer, SumSqs};
use crate::rng::Rng;

/// Everything of a Dense layer except its sizes: shared by the typed [`Dense`] and by models
/// built at run time.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DenseConfig<R = Reg> {
    /// Activation (Keras `activation`).
    pub activation: Activation,
    /// Keras `use_bias`. When false the bias stays 0 and gets no gradient.
    pub use_bias: bool,
    /// Keras `kernel_regularizer`.
    pub kernel_regularizer: Option<R>,
    /// Keras `bias_regularizer`.
    pub bias_regularizer: Option<R>,
    /// Keras `activity_regularizer` (on the output, divided by the batch size).
    pub activity_regularizer: Option<R>,
    /// Keras `kernel_initializer` (default Glorot uniform).
    pub kernel_initializer: Initializer,
    /// Keras `bias_initializer` (default zeros).
    pub bias_initializer: Initializer,
    /// Keras `kernel_constraint`, applied right after each optimizer update.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub kernel_constraint: Option<Constraint>,
    /// Keras `bias_constraint`, applied right after each optimizer update.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub bias_constraint: Option<Constraint>,
    /// Keras `trainable` (default true). A model built at run time keeps a layer with
    /// `trainable: false` out of training (no gradient, no optimizer slot, no kernel or bias
    /// penalty; its activity penalty stays, as in Keras 3). A typed network freezes a layer
    /// with [`Frozen`](super::frozen::Frozen) instead, which also takes its weights out of the
    /// training memory; it refuses `trainable: false` ([`Layer::validate`]).
    #[cfg_attr(
        feature = "serde",
        serde(default = "yes", skip_serializing_if = "is_true")
    )]
    pub trainable: bool,
}

/// `true` (serde's default for `trainable`).
#[cfg(feature = "serde")]
fn yes() -> bool {
    true
}

/// Whether a `trainable` flag is the default (not written out).
#[cfg(feature = "serde")]
fn is_true(b: &bool) -> bool {
    *b
}

impl<R> DenseConfig<R> {
    /// Keras defaults with the given activation.
    pub const fn new(activation: Activation) -> Self {
        DenseConfig {
            activation,
            use_bias: true,
            kernel_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_constraint: None,
            bias_constraint: None,
            trainable: true,
        }
    }

    /// Checks the constraints against a kernel of rank `kernel_rank`, and that the layer is
    /// trainable (a typed layer is frozen with [`Frozen`](super::frozen::Frozen)).
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] naming the constraint's bad value, or `trainable`.
    pub fn validate_typed(&self, kernel_rank: usize) -> Result<(), Error> {
        if let Some(c) = &self.kernel_constraint {
            c.validate(kernel_rank)?;
        }
        if let Some(c) = &self.bias_constraint {
            c.validate(1)?;
        }
        if !self.trainable {
            return Err(Error::InvalidHyperparameter {
                name: "trainable",
                reason: crate::error::Reason::FrozenTyped,
            });
        }
        Ok(())
    }

    /// Applies `kernel_constraint` and `bias_constraint` to a kernel of shape `kernel_shape`
    /// (Keras layout) and its bias (Keras: right after each optimizer update).
    #[inline]
    pub fn apply_constraints(&self, kernel: &mut [f32], kernel_shape: &[usize], bias: &mut [f32]) {
        if let Some(c) = &self.kernel_constraint {
            c.apply(kernel, kernel_shape);
        }
        if let Some(c) = &self.bias_constraint {
            let n = bias.len();
            c.apply(bias, &[n]);
        }
    }
}

/// Forward pass of a tile of `n` samples (`x`: `n × in`, `z` and `y`: `n × out`):
/// `z = x·W + b`, `y = activation(z)`; the activity penalty of each row into
/// `ctx.penalties` when it is given. One sample runs the per-sample kernel
/// ([`kernels::dense::forward`]), several the tile kernel ([`Backend::matmul`]): the same bits.
#[inline(always)]
pub fn forward<B: Backend, R: Regularizer>(
    cfg: &DenseConfig<R>,
    io: WeightedForward<'_>,
    ctx: &mut ForwardCtx<'_>,
) {
    let WeightedForward {
        kernel,
        bias,
        x,
        z,
        y,
    } = io;
    let out = bias.len();
    let n = pre_activations::<B>(kernel, cfg.use_bias.then_some(bias), x, z, out);
    if n == 1 {
        cfg.activation.forward(z, y);
    } else {
        cfg.activation.forward_groups::<B>(out, z, y);
    }
    super::activity_penalties(cfg.activity_regularizer.as_ref(), y, out, out, ctx);
}

/// `z = x·W + b` of a tile of `n` samples (`x`: `n × in`, `z`: `n × out`), the first step of
/// [`forward`] (one sample: the per-sample kernel, several: [`Backend::matmul`]); returns `n`.
/// Also what [`DensePair`](super::pair::DensePair) recomputes for the backward pass of a
/// first layer whose activation needs its pre-activations (leaky ReLU): the same bits.
#[inline(always)]
pub(crate) fn pre_activations<B: Backend>(
    kernel: &[f32],
    bias: Option<&[f32]>,
    x: &[f32],
    z: &mut [f32],
    out: usize,
) -> usize {
    let n = z.len().checked_div(out).unwrap_or(0);
    if n == 1 {
        kernels::dense::forward(x, kernel, bias, z);
    } else {
        let k = x.len().checked_div(n).unwrap_or(0);
        B::matmul(MatMul {
            a: x,
            b: kernel,
            bias,
            c: z,
            rows: n,
            k,
            m: out,
        });
    }
    n
}

/// What the forward pass of a layer with a kernel and a bias works on, for a tile of `n`
/// samples (flat rows): the weights, the tile's inputs, and where its pre-activations and
/// outputs go.
#[derive(Debug)]
pub struct WeightedForward<'a> {
    /// The kernel.
    pub kernel: &'a [f32],
    /// The bias.
    pub bias: &'a [f32],
    /// The inputs, `n` rows.
    pub x: &'a [f32],
    /// The pre-activations, `n` rows (written).
    pub z: &'a mut [f32],
    /// The outputs, `n` rows (written).
    pub y: &'a mut [f32],
}

/// What the backward pass of a layer with a kernel and a bias works on, for a tile of `n`
/// samples (flat rows): the weights, their gradients, the tile's inputs, outputs,
/// pre-activations (used as scratch) and output gradients, and where the input gradients go.
#[derive(Debug)]
pub struct WeightedBackward<'a> {
    /// The kernel.
    pub kernel: &'a [f32],
    /// Its gradient (accumulated into).
    pub grad_kernel: &'a mut [f32],
    /// The bias' gradient (accumulated into).
    pub grad_bias: &'a mut [f32],
    /// The inputs, `n` rows.
    pub x: &'a [f32],
    /// The outputs, `n` rows.
    pub y: &'a [f32],
    /// The pre-activations, `n` rows (scratch afterwards).
    pub z: &'a mut [f32],
    /// `∂L/∂y` (or `∂L/∂z` when `ctx.dy_is_pre`), `n` rows; `∂L/∂z` afterwards.
    pub dy: &'a mut [f32],
    /// Where `∂L/∂x` goes, `n` rows, when wanted.
    pub dx: Option<&'a mut [f32]>,
}

/// The part of a weighted layer's backward pass before its kernel, for Dense and the
/// convolutions alike, on the tile's samples (rows of `row` values): each sample's activity
/// penalty gradient `· ctx.inv_batch` into `dy` (pushed through the activation when `dy`
/// already holds `∂L/∂z`), then the activation's backward pass on groups of `group` values (a
/// softmax acts on each group), unless `skip_activation` (a ReLU folded into the kernel).
/// Afterwards `dy` holds `∂L/∂z`; `z` may have been used as scratch.
#[inline(always)]
pub(crate) fn output_backward<R: Regularizer>(
    cfg: &DenseConfig<R>,
    (row, group): (usize, usize),
    y: &[f32],
    z: &mut [f32],
    dy: &mut [f32],
    ctx: &BackwardCtx,
    skip_activation: bool,
) {
    if let Some(ar) = &cfg.activity_regularizer {
        let row = row.max(1);
        for ((yr, zr), dr) in y
            .chunks_exact(row)
            .zip(z.chunks_exact_mut(row))
            .zip(dy.chunks_exact_mut(row))
        {
            if ctx.dy_is_pre {
                // The loss already gave ∂L/∂z: the activity gradient goes through the activation.
                zr.fill(0.0);
                ar.add_grad(yr, group, zr, ctx.inv_batch);
                cfg.activation.backward_groups(group, &[], yr, zr);
                for (dj, &aj) in dr.iter_mut().zip(zr.iter()) {
                    *dj += aj;
                }
            } else {
                ar.add_grad(yr, group, dr, ctx.inv_batch);
            }
        }
    }
    if !ctx.dy_is_pre && !skip_activation {
        cfg.activation.backward_groups(group, z, y, dy);
    }
}

/// Backward pass of a tile of `n` samples (see [`WeightedBackward`]).
///
/// Order of operations: activity penalty gradients into `∂L/∂y` → activation backward →
/// `dx = dz·Wᵀ`, `gW += xᵀ·dz` and `gb += dz` in sample order. One sample runs the per-sample
/// kernels (for the first layer of a step, with no more inputs than outputs, the weight
/// gradient column by column with a ReLU folded in: [`kernels::dense::backward_columns`]),
/// several the tile kernels ([`Backend::matmul_bt`], [`Backend::matmul_at_acc`]): the same
/// bits.
// Always inlined: out of line, its fixed sizes are lost (W1 on a Cortex-M4F: +1,300
// instructions per sample).
#[inline(always)]
pub fn backward<B: Backend, R: Regularizer>(
    cfg: &DenseConfig<R>,
    io: WeightedBackward<'_>,
    ctx: &BackwardCtx,
) {
    let WeightedBackward {
        kernel,
        grad_kernel: gk,
        grad_bias: gb,
        x,
        y,
        z,
        dy,
        dx,
    } = io;
    let out = gb.len();
    let n = dy.len().checked_div(out).unwrap_or(0);
    let gb = cfg.use_bias.then_some(gb);
    if n == 1 {
        // The first layer of a step, with no more inputs than outputs (short columns, whose
        // inputs stay in registers): its weight gradient column by column, skipping inactive
        // outputs, with a ReLU's backward pass folded in (`backward_columns`: the same bits). A
        // wide input (say 64 pixels, many of them 0) is better served by the rows, which skip
        // zero inputs.
        let columns = ctx.step_input && dx.is_none() && x.len() <= out;
        let fold_relu = columns && !ctx.dy_is_pre && cfg.activation == Activation::Relu;
        output_backward(cfg, (out, out), y, z, dy, ctx, fold_relu);
        match dx {
            None if columns => {
                kernels::dense::backward_columns(x, dy, gk, gb, fold_relu.then_some(y));
            }
            // The input is a ReLU's output: its rows with `x_i == 0` need no `dx_i`.
            Some(dx) if ctx.input_relu => {
                kernels::dense::backward_relu_input(x, kernel, dy, gk, gb, dx);
            }
            dx => kernels::dense::backward(x, kernel, dy, gk, gb, dx),
        }
        return;
    }
    output_backward(cfg, (out, out), y, z, dy, ctx, false);
    let k = x.len().checked_div(n).unwrap_or(0);
    if let Some(dx) = dx {
        B::matmul_bt(MatMulBt {
            a: dy,
            b: kernel,
            c: dx,
            rows: n,
            k,
            m: out,
        });
    }
    B::matmul_at_acc(MatMulAtAcc {
        a: x,
        b: dy,
        c: gk,
        rows: n,
        k,
        m: out,
    });
    if let Some(gb) = gb {
        for row in dy.chunks_exact(out) {
            for (g, &dj) in gb.iter_mut().zip(row) {
                *g += dj;
            }
        }
    }
}

/// Weight penalties of a layer with a kernel and a bias (Dense, convolutions): kernel then
/// bias, gradients added when `g` is given. `cols` is the kernel's last axis (outputs).
/// [`weight_penalties_on`] on the portable backend (the same bits on every backend).
#[inline(always)]
pub fn weight_penalties<R: Regularizer>(
    cfg: &DenseConfig<R>,
    kernel: &[f32],
    bias: &[f32],
    g: Option<(&mut [f32], &mut [f32])>,
    cols: usize,
    layer: usize,
    pen: &mut Penalties,
) {
    weight_penalties_on::<crate::backend::Portable, R>(cfg, kernel, bias, g, cols, layer, pen);
}

/// [`weight_penalties`] on the backend `B`: a regularizer of the form `f · Σw²`
/// ([`Regularizer::sum_sq_factor`]) goes through [`Backend::l2_pass`] (the same bits).
#[inline(always)]
pub fn weight_penalties_on<B: Backend, R: Regularizer>(
    cfg: &DenseConfig<R>,
    kernel: &[f32],
    bias: &[f32],
    g: Option<(&mut [f32], &mut [f32])>,
    cols: usize,
    layer: usize,
    pen: &mut Penalties,
) {
    let (gk, gb) = match g {
        Some((a, b)) => (Some(a), Some(b)),
        None => (None, None),
    };
    if let Some(r) = &cfg.kernel_regularizer {
        let value = penalty_and_grad::<B, R>(r, kernel, cols, gk);
        pen.add(layer, PenaltyKind::Kernel, value);
    }
    if cfg.use_bias
        && let Some(r) = &cfg.bias_regularizer
    {
        let value = penalty_and_grad::<B, R>(r, bias, cols, gb);
        pen.add(layer, PenaltyKind::Bias, value);
    }
}

/// `r`'s penalty of `w`, and its gradient added to `g` when given (`scale` 1): through
/// [`Backend::l2_pass`] for a regularizer of the form `f · Σw²`
/// ([`Regularizer::sum_sq_factor`]: the same bits), else `r`'s own.
#[inline(always)]
fn penalty_and_grad<B: Backend, R: Regularizer>(
    r: &R,
    w: &[f32],
    cols: usize,
    g: Option<&mut [f32]>,
) -> f32 {
    match (r.sum_sq_factor(), g) {
        (Some(f), g) => B::l2_pass(w, g.unwrap_or_default(), f),
        (None, Some(g)) => r.penalty_and_grad(w, cols, g, 1.0),
        (None, None) => r.penalty(w, cols),
    }
}

/// [`weight_penalties`] with gradients, taking `Σw²` from `sq` where it can
/// ([`Layer::weight_penalties_sq`]): the kernel is the model's tensor `first`, the bias
/// `first + 1`. The same values and gradients, bit for bit.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn weight_penalties_sq<B: Backend, R: Regularizer>(
    cfg: &DenseConfig<R>,
    kernel: &[f32],
    bias: &[f32],
    (gk, gb): (&mut [f32], &mut [f32]),
    cols: usize,
    layer: usize,
    (first, sq): (usize, &mut SumSqs),
    pen: &mut Penalties,
) {
    if let Some(r) = &cfg.kernel_regularizer {
        let free = cfg.kernel_constraint.is_none();
        let value = penalty_and_grad_sq::<B, R>(r, kernel, cols, gk, free, first, sq);
        pen.add(layer, PenaltyKind::Kernel, value);
    }
    if cfg.use_bias
        && let Some(r) = &cfg.bias_regularizer
    {
        let free = cfg.bias_constraint.is_none();
        let value = penalty_and_grad_sq::<B, R>(r, bias, cols, gb, free, first + 1, sq);
        pen.add(layer, PenaltyKind::Bias, value);
    }
}

/// `r.penalty_and_grad(w, cols, g, 1.0)` for the model's tensor `i`: with `r`'s
/// `f · Σw²` form and the sum from the last update, `f · Σw²` and the gradient
/// ([`Backend::l2_grad`]) — the same bits ([`Regularizer::sum_sq_factor`]). A tensor no
/// constraint rewrites (`free`) asks the next update for its sum.
#[inline(always)]
fn penalty_and_grad_sq<B: Backend, R: Regularizer>(
    r: &R,
    w: &[f32],
    cols: usize,
    g: &mut [f32],
    free: bool,
    i: usize,
    sq: &mut SumSqs,
) -> f32 {
    if free && let Some(f) = r.sum_sq_factor() {
        sq.want(i);
        if let Some(s) = sq.get(i) {
            B::l2_grad(w, g, f, 1.0);
            return f * s;
        }
    }
    penalty_and_grad::<B, R>(r, w, cols, Some(g))
}

/// The weights of a `Dense<IN, OUT>`: kernel `(IN, OUT)` and bias `(OUT)`.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseParams<const IN: usize, const OUT: usize> {
    /// Kernel, Keras layout `[in][out]`.
    pub kernel: [[f32; OUT]; IN],
    /// Bias.
    pub bias: [f32; OUT],
}

impl<const IN: usize, const OUT: usize> Params for DenseParams<IN, OUT> {
    fn tensor_count(&self) -> usize {
        2
    }
    fn tensor(&self, i: usize) -> &[f32] {
        match i {
            0 => self.kernel.as_flattened(),
            1 => &self.bias,
            _ => &[],
        }
    }
    fn tensor_mut(&mut self, i: usize) -> &mut [f32] {
        match i {
            0 => self.kernel.as_flattened_mut(),
            1 => &mut self.bias,
            _ => &mut [],
        }
    }
}

impl<const IN: usize, const OUT: usize> ZeroParams for DenseParams<IN, OUT> {
    const LEN: usize = IN * OUT + OUT;
    fn zeroed() -> Self {
        DenseParams {
            kernel: [[0.0; OUT]; IN],
            bias: [0.0; OUT],
        }
    }
}

/// A fully connected layer with `IN` inputs and `OUT` outputs (Keras `Dense(OUT)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dense<const IN: usize, const OUT: usize, R = Reg> {
    /// Activation, bias, regularizers and initializers.
    pub config: DenseConfig<R>,
}

impl<const IN: usize, const OUT: usize, R> Dense<IN, OUT, R> {
    /// Keras defaults (`use_bias`, Glorot-uniform kernel, zero bias, no regularizer).
    pub const fn new(activation: Activation) -> Self {
        Dense {
            config: DenseConfig::new(activation),
        }
    }

    /// Sets `kernel_regularizer`.
    pub fn kernel_regularizer(mut self, r: R) -> Self {
        self.config.kernel_regularizer = Some(r);
        self
    }

    /// Sets `bias_regularizer`.
    pub fn bias_regularizer(mut self, r: R) -> Self {
        self.config.bias_regularizer = Some(r);
        self
    }

    /// Sets `activity_regularizer`.
    pub fn activity_regularizer(mut self, r: R) -> Self {
        self.config.activity_regularizer = Some(r);
        self
    }

    /// Sets `use_bias`.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.config.use_bias = use_bias;
        self
    }

    /// Sets `kernel_initializer`.
    pub fn kernel_initializer(mut self, init: Initializer) -> Self {
        self.config.kernel_initializer = init;
        self
    }

    /// Sets `bias_initializer`.
    pub fn bias_initializer(mut self, init: Initializer) -> Self {
        self.config.bias_initializer = init;
        self
    }

    /// Sets `kernel_constraint` (Keras layout `(IN, OUT)`: `axis=0` constrains each output
    /// unit's incoming weights).
    pub const fn kernel_constraint(mut self, c: Constraint) -> Self {
        self.config.kernel_constraint = Some(c);
        self
    }

    /// Sets `bias_constraint`.
    pub const fn bias_constraint(mut self, c: Constraint) -> Self {
        self.config.bias_constraint = Some(c);
        self
    }
}

/// A tile's rows of `OUT` values: a layer's pre-activations, outputs or output gradients.
type Rows<const OUT: usize, const T: usize> = [[f32; OUT]; T];

impl<const IN: usize, const OUT: usize, R: Regularizer> Dense<IN, OUT, R> {
    /// [`Layer::forward`] with the pre-activations `z` and the outputs `y` of the tile given
    /// apart: a cache's, or a [`DensePair`](super::pair::DensePair)'s hidden outputs and a
    /// temporary.
    #[inline(always)]
    pub(crate) fn forward_rows<B: Backend, const T: usize>(
        &self,
        p: &DenseParams<IN, OUT>,
        x: &[[f32; IN]],
        z: &mut Rows<OUT, T>,
        y: &mut Rows<OUT, T>,
        ctx: &mut ForwardCtx<'_>,
    ) {
        let (kernel, bias) = (p.kernel.as_flattened(), &p.bias);
        if T == 1 {
            // A microcontroller's tile of one: every length below is a constant.
            let (z, y) = (z.first_mut(), y.first_mut());
            if let (Some(x), Some(z), Some(y)) = (x.first(), z, y) {
                let io = WeightedForward {
                    kernel,
                    bias,
                    x,
                    z,
                    y,
                };
                forward::<B, R>(&self.config, io, ctx);
            }
            return;
        }
        let n = x.len().min(T);
        let io = WeightedForward {
            kernel,
            bias,
            x: x[..n].as_flattened(),
            z: z[..n].as_flattened_mut(),
            y: y[..n].as_flattened_mut(),
        };
        forward::<B, R>(&self.config, io, ctx);
    }

    /// [`Layer::backward`] with the tile's outputs `y`, pre-activations `z` (scratch) and
    /// output gradients `dy` given apart (see [`Dense::forward_rows`]).
    #[inline(always)]
    pub(crate) fn backward_rows<B: Backend, const T: usize>(
        &self,
        p: &DenseParams<IN, OUT>,
        g: &mut DenseParams<IN, OUT>,
        x: &[[f32; IN]],
        (y, z, dy): (&Rows<OUT, T>, &mut Rows<OUT, T>, &mut Rows<OUT, T>),
        dx: Option<&mut [[f32; IN]]>,
        ctx: &BackwardCtx,
    ) {
        let (kernel, grad_kernel) = (p.kernel.as_flattened(), g.kernel.as_flattened_mut());
        if T == 1 {
            // A microcontroller's tile of one: every length below is a constant.
            let (y, z) = (y.first(), z.first_mut());
            if let (Some(x), Some(y), Some(z), Some(dy)) = (x.first(), y, z, dy.first_mut()) {
                let io = WeightedBackward {
                    kernel,
                    grad_kernel,
                    grad_bias: &mut g.bias,
                    x,
                    y,
                    z,
                    dy,
                    dx: dx.and_then(|d| d.first_mut()).map(|d| &mut d[..]),
                };
                backward::<B, R>(&self.config, io, ctx);
            }
            return;
        }
        let n = x.len().min(T);
        let io = WeightedBackward {
            kernel,
            grad_kernel,
            grad_bias: &mut g.bias,
            x: x[..n].as_flattened(),
            y: y[..n].as_flattened(),
            z: z[..n].as_flattened_mut(),
            dy: dy[..n].as_flattened_mut(),
            dx: dx.map(|d| d.as_flattened_mut()),
        };
        backward::<B, R>(&self.config, io, ctx);
    }
}

impl<const IN: usize, const OUT: usize, R: Regularizer> Layer for Dense<IN, OUT, R> {
    type Input = [f32; IN];
    type Output = [f32; OUT];
    type Params = DenseParams<IN, OUT>;
    type Cache<const T: usize> = WeightedCache<[f32; OUT], T>;
    type Rng = crate::rng::NoRng;
    const LAYERS: usize = 1;

    fn init(&self, p: &mut Self::Params, rng: &mut Rng) {
        self.config
            .kernel_initializer
            .fill(p.kernel.as_flattened_mut(), &[IN, OUT], rng);
        self.config.bias_initializer.fill(&mut p.bias, &[OUT], rng);
        if !self.config.use_bias {
            p.bias = [0.0; OUT];
        }
    }

    #[inline]
    fn forward<B: Backend, const T: usize>(
        &self,
        p: &Self::Params,
        x: &[[f32; IN]],
        cache: &mut Self::Cache<T>,
        ctx: &mut ForwardCtx<'_>,
    ) {
        self.forward_rows::<B, T>(p, x, &mut cache.z.0, &mut cache.out.y.0, ctx);
    }

    #[inline]
    fn backward<B: Backend, const T: usize>(
        &self,
        p: &Self::Params,
        g: &mut Self::Params,
        x: &[[f32; IN]],
        cache: &mut Self::Cache<T>,
        dx: Option<&mut [[f32; IN]]>,
        ctx: &BackwardCtx,
    ) {
        let (z, out) = (&mut cache.z.0, &mut cache.out);
        self.backward_rows::<B, T>(p, g, x, (&out.y.0, z, &mut out.dy.0), dx, ctx);
    }

    fn outputs<const T: usize>(cache: &mut Self::Cache<T>) -> (&[[f32; OUT]], &mut [[f32; OUT]]) {
        cache.out.split()
    }

    fn output_rows<const T: usize>(cache: &Self::Cache<T>) -> &[[f32; OUT]] {
        &cache.out.y.0
    }

    fn loss_io<'c, const T: usize>(&self, cache: &'c mut Self::Cache<T>) -> LossIo<'c> {
        LossIo {
            y: cache.out.y.flat(),
            logits: Some(cache.z.flat()),
            dy: cache.out.dy.flat_mut(),
            width: OUT,
        }
    }

    // Always inlined (as `forward`): out of line, a constant configuration (`layer::constant`)
    // would be read at run time and every regularizer of `R` linked.
    #[inline(always)]
    fn weight_penalties<B: Backend>(
        &self,
        p: &Self::Params,
        g: Option<&mut Self::Params>,
        layer: usize,
        pen: &mut Penalties,
    ) {
        if self.config.kernel_regularizer.is_none() && self.config.bias_regularizer.is_none() {
            // Nothing to add; a constant configuration (`layer::constant`) drops the call.
            return;
        }
        let g = g.map(|g| (g.kernel.as_flattened_mut(), &mut g.bias[..]));
        weight_penalties_on::<B, R>(
            &self.config,
            p.kernel.as_flattened(),
            &p.bias,
            g,
            OUT,
            layer,
            pen,
        );
    }

    fn weight_penalties_sq<B: Backend>(
        &self,
        p: &Self::Params,
        g: &mut Self::Params,
        layer: usize,
        first: usize,
        pen: &mut Penalties,
        sq: &mut SumSqs,
    ) {
        if self.config.kernel_regularizer.is_none() && self.config.bias_regularizer.is_none() {
            return;
        }
        weight_penalties_sq::<B, R>(
            &self.config,
            p.kernel.as_flattened(),
            &p.bias,
            (g.kernel.as_flattened_mut(), &mut g.bias[..]),
            OUT,
            layer,
            (first, sq),
            pen,
        );
    }

    fn output_activation(&self) -> Activation {
        self.config.activation
    }

    #[inline]
    fn apply_constraints(&self, p: &mut Self::Params) {
        self.config
            .apply_constraints(p.kernel.as_flattened_mut(), &[IN, OUT], &mut p.bias);
    }

    fn validate(&self) -> Result<(), Error> {
        self.config.validate_typed(2)
    }

    fn has_activity_regularizer(&self) -> bool {
        self.config.activity_regularizer.is_some()
    }

    fn describe(&self, first: usize, f: &mut dyn FnMut(usize, LayerInfo)) {
        f(
            first,
            LayerInfo {
                kind: "dense",
                params: IN * OUT + if self.config.use_bias { OUT } else { 0 },
                activation: self.config.activation,
            },
        );
    }
}
