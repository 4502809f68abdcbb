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
//! The math is in [`forward`] and [`backward`] over slices; the typed layer and models built
//! at run time both call them.

use super::{BackwardCtx, ForwardCtx, Layer, LayerInfo, Penalties, PenaltyKind};
use crate::activation::Activation;
use crate::init::Initializer;
use crate::kernels;
use crate::params::{Params, ZeroParams};
use crate::regularizer::{Reg, Regularizer};
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
        }
    }
}

/// Forward pass of one sample: `z = x·W + b`, `y = activation(z)`.
#[inline]
pub fn forward<R>(
    cfg: &DenseConfig<R>,
    kernel: &[f32],
    bias: &[f32],
    x: &[f32],
    z: &mut [f32],
    y: &mut [f32],
) {
    kernels::dense::forward(x, kernel, cfg.use_bias.then_some(bias), z);
    cfg.activation.forward(z, y);
}

/// Backward pass of one sample (see [`Layer::backward`] for `d` and `d_is_pre`).
///
/// Order of operations: activity penalty on `y` (value summed into `ctx.penalties`,
/// gradient `· inv_batch` added to `∂L/∂y`) → activation backward → `gW += xᵀ dz`,
/// `gb += dz`, `dx = W dz`. `z` is used as scratch when the activity gradient must pass
/// through a fused output activation.
// Always inlined: out of line, its fixed sizes are lost (W1 on a Cortex-M4F: +1,300
// instructions per sample).
#[inline(always)]
pub fn backward<R: Regularizer>(
    cfg: &DenseConfig<R>,
    kernel: &[f32],
    gk: &mut [f32],
    gb: &mut [f32],
    x: &[f32],
    y: &[f32],
    z: &mut [f32],
    d: &mut [f32],
    d_is_pre: bool,
    dx: Option<&mut [f32]>,
    ctx: &mut BackwardCtx<'_>,
) {
    let out = y.len();
    if let Some(ar) = &cfg.activity_regularizer {
        ctx.penalties
            .add(ctx.layer, PenaltyKind::Activity, ar.penalty(y, out));
        if d_is_pre {
            // The loss already gave ∂L/∂z; push the activity gradient through the activation.
            z.fill(0.0);
            ar.add_grad(y, out, z, ctx.inv_batch);
            cfg.activation.backward_in_place(&[], y, z);
            for (dj, &aj) in d.iter_mut().zip(z.iter()) {
                *dj += aj;
            }
        } else {
            ar.add_grad(y, out, d, ctx.inv_batch);
        }
    }
    // The first layer of a step, with no more inputs than outputs (short columns, whose inputs
    // stay in registers): its weight gradient column by column, skipping inactive outputs, with
    // a ReLU's backward pass folded in (`backward_columns`: the same bits). A wide input (say
    // 64 pixels, many of them 0) is better served by the rows, which skip zero inputs.
    let columns = ctx.step_input && dx.is_none() && x.len() <= out;
    let fold_relu = columns && !d_is_pre && cfg.activation == Activation::Relu;
    if !d_is_pre && !fold_relu {
        cfg.activation.backward_in_place(z, y, d);
    }
    match dx {
        None if columns => {
            let relu_y = fold_relu.then_some(y);
            kernels::dense::backward_columns(x, d, gk, cfg.use_bias.then_some(gb), relu_y);
        }
        dx => kernels::dense::backward(x, kernel, d, gk, cfg.use_bias.then_some(gb), dx),
    }
}

/// Weight penalties of a Dense layer (kernel then bias), gradients added when `g` is given.
pub fn weight_penalties<R: Regularizer>(
    cfg: &DenseConfig<R>,
    kernel: &[f32],
    bias: &[f32],
    g: Option<(&mut [f32], &mut [f32])>,
    out: usize,
    layer: usize,
    pen: &mut Penalties,
) {
    let (gk, gb) = match g {
        Some((a, b)) => (Some(a), Some(b)),
        None => (None, None),
    };
    if let Some(r) = &cfg.kernel_regularizer {
        let value = match gk {
            Some(gk) => r.penalty_and_grad(kernel, out, gk, 1.0),
            None => r.penalty(kernel, out),
        };
        pen.add(layer, PenaltyKind::Kernel, value);
    }
    if cfg.use_bias
        && let Some(r) = &cfg.bias_regularizer
    {
        let value = match gb {
            Some(gb) => r.penalty_and_grad(bias, out, gb, 1.0),
            None => r.penalty(bias, out),
        };
        pen.add(layer, PenaltyKind::Bias, value);
    }
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
}

impl<const IN: usize, const OUT: usize, R: Regularizer> Layer for Dense<IN, OUT, R> {
    type Input = [f32; IN];
    type Output = [f32; OUT];
    type Params = DenseParams<IN, OUT>;
    /// The pre-activation `z`.
    type Cache = [f32; OUT];
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
    fn forward(
        &self,
        p: &Self::Params,
        x: &[f32],
        y: &mut [f32],
        cache: &mut Self::Cache,
        _ctx: &mut ForwardCtx<'_>,
    ) {
        forward(&self.config, p.kernel.as_flattened(), &p.bias, x, cache, y);
    }

    #[inline]
    fn backward(
        &self,
        p: &Self::Params,
        g: &mut Self::Params,
        x: &[f32],
        y: &[f32],
        cache: &mut Self::Cache,
        d: &mut [f32],
        d_is_pre: bool,
        dx: Option<&mut [f32]>,
        ctx: &mut BackwardCtx<'_>,
    ) {
        backward(
            &self.config,
            p.kernel.as_flattened(),
            g.kernel.as_flattened_mut(),
            &mut g.bias,
            x,
            y,
            cache,
            d,
            d_is_pre,
            dx,
            ctx,
        );
    }

    fn weight_penalties(
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
        weight_penalties(
            &self.config,
            p.kernel.as_flattened(),
            &p.bias,
            g,
            OUT,
            layer,
            pen,
        );
    }

    fn logits<'c>(&self, cache: &'c Self::Cache) -> Option<&'c [f32]> {
        Some(cache)
    }

    fn output_activation(&self) -> Activation {
        self.config.activation
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
