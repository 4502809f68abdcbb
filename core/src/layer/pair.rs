//! [`DensePair`]: two Dense layers run as one on a microcontroller's tile of one sample.
//!
//! `DensePair<IN, H, OUT>` *is* the model `(Dense<IN, H>, Dense<H, OUT>)` — the same
//! parameters (Keras variable order), the same results to the bit — with two differences:
//!
//! * a tile of one sample, when the first layer has a ReLU, runs as one layer:
//!   - **forward** (at most 8 inputs): each hidden unit is computed, activated and added into
//!     the second layer's sums at once ([`kernels::dense::relu_pair_forward`]);
//!   - **backward** (the first layer of a training step): one pass over the hidden units that
//!     the ReLU left on, each with the second layer's row and the first layer's column
//!     ([`kernels::dense::relu_pair_backward`]);
//! * its cache ([`PairCache`]) keeps of the first layer only its outputs: not their gradients,
//!   which live only during a backward pass, nor its pre-activations, which no activation's
//!   backward pass reads but leaky ReLU's (W1: 128 B less RAM).
//!
//! Every other case — tiles of several samples, other activations, an input gradient wanted,
//! an activity regularizer on the first layer — runs the tuple's code (`Dense`'s own), with the
//! first layer's pre-activations and output gradients in temporaries on the stack; leaky
//! ReLU's pre-activations are recomputed for its backward pass with the forward pass' kernel
//! (the weights have not changed since: the same bits). The typical microcontroller MLP (W1:
//! iris 4 → 16 relu → 3 softmax) spends about a third fewer instructions in its forward and
//! backward passes this way.
//!
//! ```
//! use microfit_core::layer::pair::DensePair;
//! use microfit_core::prelude::*;
//! let layers = (Dense::<4, 16>::new(Activation::Relu), Dense::<16, 3>::new(Activation::Softmax));
//! let pair = Network::new(DensePair::new(layers), 7)?;
//! let plain = Network::new(layers, 7)?;
//! assert_eq!(pair.params, plain.params);
//! # Ok::<(), microfit_core::Error>(())
//! ```

use super::dense::{Dense, output_backward, pre_activations};
use super::{BackwardCtx, ForwardCtx, Layer, LayerInfo, LossIo, Penalties, WeightedCache};
use crate::activation::Activation;
use crate::backend::Backend;
use crate::kernels;
use crate::regularizer::{Reg, Regularizer};
use crate::rng::Rng;
use crate::tensor::{Tile, Zeroed};

/// `(Dense<IN, H, R>, Dense<H, OUT, R>)` with a fused per-sample path (see the
/// [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DensePair<const IN: usize, const H: usize, const OUT: usize, R = Reg> {
    /// The two layers.
    pub layers: (Dense<IN, H, R>, Dense<H, OUT, R>),
}

impl<const IN: usize, const H: usize, const OUT: usize, R> DensePair<IN, H, OUT, R> {
    /// The pair of these two layers.
    pub const fn new(layers: (Dense<IN, H, R>, Dense<H, OUT, R>)) -> Self {
        DensePair { layers }
    }
}

/// What a [`DensePair`] keeps for a tile of `T` samples (see the [module docs](self)): the
/// first layer's outputs and the second layer's cache — `T · (H + 3 · OUT)` floats, where the
/// tuple keeps `3 · T · (H + OUT)`.
#[derive(Debug, Clone, PartialEq)]
pub struct PairCache<const H: usize, const OUT: usize, const T: usize> {
    /// The first layer's outputs (the second's inputs).
    pub hidden: Tile<[f32; H], T>,
    /// The second layer's cache.
    pub second: WeightedCache<[f32; OUT], T>,
}

impl<const H: usize, const OUT: usize, const T: usize> Zeroed for PairCache<H, OUT, T> {
    const FLOATS: usize = T * H + 3 * T * OUT;
    fn zeroed() -> Self {
        PairCache {
            hidden: Zeroed::zeroed(),
            second: Zeroed::zeroed(),
        }
    }
}

/// The tuple the pair is.
type Pair<const IN: usize, const H: usize, const OUT: usize, R> =
    (Dense<IN, H, R>, Dense<H, OUT, R>);

impl<const IN: usize, const H: usize, const OUT: usize, R: Regularizer> Layer
    for DensePair<IN, H, OUT, R>
{
    type Input = [f32; IN];
    type Output = [f32; OUT];
    type Params = <Pair<IN, H, OUT, R> as Layer>::Params;
    type Cache<const T: usize> = PairCache<H, OUT, T>;
    type Rng = crate::rng::NoRng;
    const LAYERS: usize = 2;

    fn init(&self, p: &mut Self::Params, rng: &mut Rng) {
        self.layers.init(p, rng);
    }

    // Always inlined (as `dense::forward`): out of line, a constant configuration
    // (`layer::constant`) would be read at run time and every activation linked.
    #[inline(always)]
    fn forward<B: Backend, const T: usize>(
        &self,
        p: &Self::Params,
        x: &[[f32; IN]],
        cache: &mut Self::Cache<T>,
        ctx: &mut ForwardCtx<'_>,
    ) {
        let (c0, c1) = (&self.layers.0.config, &self.layers.1.config);
        if T == 1 && IN <= 8 && c0.activation == Activation::Relu {
            let PairCache { hidden, second } = cache;
            if let (Some(x), Some(y1), Some(z2), Some(y2)) = (
                x.first(),
                hidden.0.first_mut(),
                second.z.0.first_mut(),
                second.out.y.0.first_mut(),
            ) {
                kernels::dense::relu_pair_forward(
                    x,
                    (&p.0.kernel, c0.use_bias.then_some(&p.0.bias)),
                    y1,
                    (&p.1.kernel, c1.use_bias.then_some(&p.1.bias)),
                    z2,
                );
                c1.activation.forward_groups::<B>(OUT, z2, y2);
                // The activity penalties in the tuple's order: the first layer's, then the
                // second's.
                let base = ctx.layer;
                super::activity_penalties(c0.activity_regularizer.as_ref(), y1, H, H, ctx);
                ctx.layer = base + 1;
                super::activity_penalties(c1.activity_regularizer.as_ref(), y2, OUT, OUT, ctx);
                ctx.layer = base;
                return;
            }
        }
        // The tuple's forward pass, the first layer's pre-activations in a temporary.
        let mut z1 = [[0.0; H]; T];
        let n = x.len().min(T);
        let (layer0, layer1) = &self.layers;
        layer0.forward_rows::<B, T>(&p.0, x, &mut z1, &mut cache.hidden.0, ctx);
        let base = ctx.layer;
        ctx.layer = base + 1;
        layer1.forward::<B, T>(&p.1, &cache.hidden.0[..n], &mut cache.second, ctx);
        ctx.layer = base;
    }

    #[inline(always)]
    fn backward<B: Backend, const T: usize>(
        &self,
        p: &Self::Params,
        g: &mut Self::Params,
        x: &[[f32; IN]],
        cache: &mut Self::Cache<T>,
        dx: Option<&mut [[f32; IN]]>,
        ctx: &BackwardCtx,
    ) {
        let (c0, c1) = (&self.layers.0.config, &self.layers.1.config);
        if T == 1
            && IN <= H
            && dx.is_none()
            && ctx.step_input
            && c0.activation == Activation::Relu
            && c0.activity_regularizer.is_none()
        {
            let PairCache { hidden, second } = cache;
            if let (Some(x), Some(y1), Some(y2), Some(z2), Some(dy2)) = (
                x.first(),
                hidden.0.first(),
                second.out.y.0.first(),
                second.z.0.first_mut(),
                second.out.dy.0.first_mut(),
            ) {
                // The second layer's activity gradient and activation backward, as the tuple
                // runs them: `dy2` becomes its pre-activation gradient.
                let c = BackwardCtx {
                    layer: ctx.layer + 1,
                    step_input: false,
                    input_relu: true,
                    ..*ctx
                };
                output_backward(c1, (OUT, OUT), y2, z2, dy2, &c, false);
                let (g0, g1) = g;
                kernels::dense::relu_pair_backward(
                    x,
                    y1,
                    (&mut g0.kernel, c0.use_bias.then_some(&mut g0.bias)),
                    &p.1.kernel,
                    dy2,
                    (&mut g1.kernel, c1.use_bias.then_some(&mut g1.bias)),
                );
                return;
            }
        }
        // The tuple's backward pass (the second layer, then the first), the first layer's
        // output gradients and pre-activations in temporaries: the pre-activations are
        // recomputed when its activation reads them (leaky ReLU; the weights have not changed
        // since the forward pass), and are only scratch otherwise.
        let n = x.len().min(T);
        let (layer0, layer1) = &self.layers;
        let (g0, g1) = g;
        let mut dy1 = [[0.0; H]; T];
        let c = BackwardCtx {
            layer: ctx.layer + 1,
            step_input: false,
            input_relu: c0.activation == Activation::Relu,
            ..*ctx
        };
        let (y1, second) = (&cache.hidden.0, &mut cache.second);
        layer1.backward::<B, T>(&p.1, g1, &y1[..n], second, Some(&mut dy1[..n]), &c);
        let mut z1 = [[0.0; H]; T];
        if c0.activation.needs_z() {
            pre_activations::<B>(
                p.0.kernel.as_flattened(),
                c0.use_bias.then_some(&p.0.bias[..]),
                x[..n].as_flattened(),
                z1[..n].as_flattened_mut(),
                H,
            );
        }
        let c = BackwardCtx {
            dy_is_pre: false,
            ..*ctx
        };
        layer0.backward_rows::<B, T>(&p.0, g0, x, (y1, &mut z1, &mut dy1), dx, &c);
    }

    #[inline]
    fn outputs<const T: usize>(cache: &mut Self::Cache<T>) -> (&[[f32; OUT]], &mut [[f32; OUT]]) {
        <Dense<H, OUT, R> as Layer>::outputs(&mut cache.second)
    }

    #[inline]
    fn output_rows<const T: usize>(cache: &Self::Cache<T>) -> &[[f32; OUT]] {
        <Dense<H, OUT, R> as Layer>::output_rows(&cache.second)
    }

    #[inline]
    fn loss_io<'c, const T: usize>(&self, cache: &'c mut Self::Cache<T>) -> LossIo<'c> {
        self.layers.1.loss_io(&mut cache.second)
    }

    #[inline]
    fn weight_penalties<B: Backend>(
        &self,
        p: &Self::Params,
        g: Option<&mut Self::Params>,
        layer: usize,
        pen: &mut Penalties,
    ) {
        self.layers.weight_penalties::<B>(p, g, layer, pen);
    }

    #[inline]
    fn output_activation(&self) -> Activation {
        self.layers.output_activation()
    }

    fn describe(&self, first: usize, f: &mut dyn FnMut(usize, LayerInfo)) {
        self.layers.describe(first, f);
    }

    #[inline]
    fn has_activity_regularizer(&self) -> bool {
        self.layers.has_activity_regularizer()
    }

    fn validate(&self) -> Result<(), crate::error::Error> {
        self.layers.validate()
    }

    #[inline]
    fn apply_constraints(&self, p: &mut Self::Params) {
        self.layers.apply_constraints(p);
    }
}
