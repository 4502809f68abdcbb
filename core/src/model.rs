//! [`Network`]: a typed model (a [`Layer`], usually a tuple of layers) with its weights,
//! gradients and the buffers of a tile of `T` samples, all fixed-size.
//!
//! `T` is the number of samples each layer processes at once. A microcontroller uses the
//! default, `T = 1`: per-sample code, and the activation memory of one sample whatever the
//! batch size. A host uses a tile of, say, 32: each layer runs over 32 samples before the
//! next (weights stay in cache, the loops are long and vectorize). The tile size never changes
//! a bit of the result (every sum over samples runs in sample order either way).
//!
//! ```
//! use microfit_core::prelude::*;
//! type W1 = (Dense<4, 16>, Dense<16, 3>);
//! let net: Network<W1> = Network::new(
//!     (Dense::new(Activation::Relu).kernel_regularizer(Reg::l2(1e-3)), Dense::new(Activation::Softmax)),
//!     42,
//! )?;
//! assert_eq!(Network::<W1>::PARAMS, 4 * 16 + 16 + 16 * 3 + 3);
//! // Activations of a tile: each layer's pre-activations, outputs and output gradients.
//! assert_eq!(Network::<W1>::ACTIVATION_FLOATS, 3 * (16 + 3));
//! assert_eq!(Network::<W1, 32>::ACTIVATION_FLOATS, 32 * 3 * (16 + 3));
//! # let _ = net;
//! # Ok::<(), microfit_core::Error>(())
//! ```

use crate::activation::Activation;
use crate::backend::{Backend, Portable};
use crate::error::Error;
use crate::layer::{BackwardCtx, ForwardCtx, Layer, LayerInfo, LossIo, Penalties};
use crate::params::{Params, ZeroParams};
use crate::regularizer::SumSqs;
use crate::rng::{Rng, RngSlot};
use crate::tensor::{Tensor, Zeroed};
use crate::train::Trainable;

/// A typed model: layers (configuration), weights, gradients and the buffers of a tile of `T`
/// samples.
///
/// Memory (`size_of`) is `2 · PARAMS · 4 B` (weights and gradients) `+ ACTIVATION_FLOATS · 4 B`
/// plus the layer configurations and generator states — the model's generator only when a
/// layer draws random numbers ([`Layer::Rng`]); an optimizer adds `SLOTS · PARAMS · 4 B`.
#[derive(Debug, Clone)]
pub struct Network<L: Layer, const T: usize = 1> {
    /// The layers (configuration only).
    pub layers: L,
    /// The weights.
    pub params: L::Params,
    /// Gradient accumulators (same structure as the weights).
    pub grads: L::Params,
    cache: L::Cache<T>,
    /// The model's generator after the weights' initialization, when a layer draws.
    rng: L::Rng,
}

impl<L: Layer> Network<L> {
    /// Builds a network of tile 1 (a microcontroller's: one sample at a time) and initializes
    /// its weights from `seed` (Keras initializers). [`Network::new_tiled`] for other tiles.
    ///
    /// # Errors
    /// A layer setting its type cannot check ([`Layer::validate`]: a constraint's axes, ...).
    pub fn new(layers: L, seed: u64) -> Result<Self, Error> {
        Self::new_tiled(layers, seed)
    }

    /// Builds a network of tile 1 with the given weights (e.g. from a file or Keras).
    pub fn with_params(layers: L, params: L::Params) -> Self {
        Self::with_params_tiled(layers, params)
    }
}

impl<L: Layer, const T: usize> Network<L, T> {
    /// Number of trainable scalars.
    pub const PARAMS: usize = <L::Params as ZeroParams>::LEN;
    /// Number of `f32` activation values kept for a tile: each layer's outputs and their
    /// gradients, and what each keeps besides (pre-activations).
    pub const ACTIVATION_FLOATS: usize = <L::Cache<T> as Zeroed>::FLOATS;
    /// Samples per tile.
    pub const TILE: usize = T;

    /// Builds the network of tile `T` and initializes its weights from `seed` (Keras
    /// initializers): the same weights as [`Network::new`] for the same seed.
    ///
    /// ```
    /// use microfit_core::prelude::*;
    /// type M = (Dense<4, 8>, Dense<8, 2>);
    /// let layers: M = (Dense::new(Activation::Relu), Dense::new(Activation::Softmax));
    /// let one = Network::new(layers, 7)?;
    /// let tiled = Network::<M, 32>::new_tiled(layers, 7)?;
    /// assert_eq!(one.params, tiled.params);
    /// # Ok::<(), microfit_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] when `T` is 0, or for a layer setting its type cannot
    /// check ([`Layer::validate`]: a constraint's axes, ...).
    pub fn new_tiled(layers: L, seed: u64) -> Result<Self, Error> {
        if T == 0 {
            return Err(Error::InvalidHyperparameter {
                name: "tile",
                reason: crate::error::Reason::EmptyTile,
            });
        }
        layers.validate()?;
        let mut rng = Rng::new(seed);
        let mut params = L::Params::zeroed();
        layers.init(&mut params, &mut rng);
        Ok(Network {
            layers,
            params,
            grads: L::Params::zeroed(),
            cache: Zeroed::zeroed(),
            rng: RngSlot::keep(rng),
        })
    }

    /// Builds the network of tile `T` with the given weights.
    pub fn with_params_tiled(layers: L, params: L::Params) -> Self {
        Network {
            layers,
            params,
            grads: L::Params::zeroed(),
            cache: Zeroed::zeroed(),
            rng: RngSlot::keep(Rng::new(0)),
        }
    }

    /// Inference on one sample.
    pub fn predict(&mut self, x: &L::Input) -> &L::Output {
        self.infer::<Portable>(core::slice::from_ref(x));
        &L::output_rows(&self.cache)[0]
    }

    /// Inference on up to `T` samples at once (more are ignored): their outputs.
    pub fn predict_tile<B: Backend>(&mut self, x: &[L::Input]) -> &[L::Output] {
        let n = x.len().min(T);
        self.infer::<B>(&x[..n]);
        &L::output_rows(&self.cache)[..n]
    }

    /// Inference on one sample given as a flat slice.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `x.len()` is not the input size.
    pub fn predict_slice(&mut self, x: &[f32]) -> Result<&[f32], Error> {
        if x.len() != L::Input::LEN {
            return Err(Error::ShapeMismatch {
                what: crate::error::ShapeOf::Input,
                expected: L::Input::LEN as u32,
                found: x.len() as u32,
            });
        }
        self.infer::<Portable>(L::Input::rows(x));
        Ok(L::Output::flat(&L::output_rows(&self.cache)[..1]))
    }

    fn infer<B: Backend>(&mut self, x: &[L::Input]) {
        let mut ctx = ForwardCtx {
            training: false,
            rng: self.rng.get_mut(),
            layer: 0,
            penalties: None,
        };
        self.layers
            .forward::<B, T>(&self.params, x, &mut self.cache, &mut ctx);
    }

    /// Calls `f(index, info)` for each layer.
    pub fn describe(&self, f: &mut dyn FnMut(usize, LayerInfo)) {
        self.layers.describe(0, f);
    }

    /// The model's generator (dropout layers split their streams from it): a [`Rng`] when a
    /// layer draws random numbers, else [`NoRng`](crate::rng::NoRng) ([`Layer::Rng`]).
    pub fn rng(&self) -> &L::Rng {
        &self.rng
    }

    /// [`Trainable::backward_tile`]'s work, inlined into the caller.
    #[inline(always)]
    fn backward_inline<B: Backend>(&mut self, x: &[f32], dy_is_pre: bool, inv_batch: f32) {
        let ctx = BackwardCtx {
            inv_batch,
            layer: 0,
            dy_is_pre,
            step_input: true,
            input_relu: false,
        };
        self.layers.backward::<B, T>(
            &self.params,
            &mut self.grads,
            L::Input::rows(x),
            &mut self.cache,
            None,
            &ctx,
        );
    }

    /// [`Trainable::backward_tile`]'s work, out of line.
    #[inline(never)]
    fn backward_outlined<B: Backend>(&mut self, x: &[f32], dy_is_pre: bool, inv_batch: f32) {
        self.backward_inline::<B>(x, dy_is_pre, inv_batch);
    }
}

/// Models with at most this many parameters have their backward pass inlined into the training
/// step (see [`Trainable::backward_tile`] for [`Network`]).
const INLINE_BACKWARD_PARAMS: usize = 1024;

impl<L: Layer, const T: usize> Trainable for Network<L, T> {
    type Params = L::Params;

    fn tile(&self) -> usize {
        T
    }

    fn input_len(&self) -> usize {
        L::Input::LEN
    }

    fn output_len(&self) -> usize {
        L::Output::LEN
    }

    fn params(&self) -> &L::Params {
        &self.params
    }

    fn params_mut(&mut self) -> &mut L::Params {
        &mut self.params
    }

    fn weights_and_grads(&mut self) -> (&mut L::Params, &mut L::Params) {
        (&mut self.params, &mut self.grads)
    }

    // Never inlined, as `backward_tile`.
    #[inline(never)]
    fn forward_tile<B: Backend>(&mut self, x: &[f32], training: bool, pen: Option<&mut Penalties>) {
        let mut ctx = ForwardCtx {
            training,
            rng: self.rng.get_mut(),
            layer: 0,
            penalties: pen,
        };
        self.layers
            .forward::<B, T>(&self.params, L::Input::rows(x), &mut self.cache, &mut ctx);
    }

    fn output_activation(&self) -> Activation {
        self.layers.output_activation()
    }

    fn loss_io(&mut self) -> LossIo<'_> {
        self.layers.loss_io(&mut self.cache)
    }

    #[inline]
    fn backward_tile<B: Backend>(&mut self, x: &[f32], dy_is_pre: bool, inv_batch: f32) {
        // The training step is the only caller. A small model's backward pass is inlined into
        // it (W1 on a Cortex-M4F: 18 instructions per sample and 0.4 KB of flash less); a
        // larger one's stays out of line, where its many array addresses do not stay on the
        // stack during the whole step (W2: 0.3 KB of RAM less).
        if Self::PARAMS <= INLINE_BACKWARD_PARAMS {
            self.backward_inline::<B>(x, dy_is_pre, inv_batch);
        } else {
            self.backward_outlined::<B>(x, dy_is_pre, inv_batch);
        }
    }

    fn weight_penalties<B: Backend>(&mut self, with_grads: bool, pen: &mut Penalties) {
        if with_grads {
            self.layers
                .weight_penalties::<B>(&self.params, Some(&mut self.grads), 0, pen);
        } else {
            self.layers
                .weight_penalties::<B>(&self.params, None, 0, pen);
        }
    }

    fn weight_penalties_sq<B: Backend>(&mut self, pen: &mut Penalties, sq: &mut SumSqs) {
        self.layers
            .weight_penalties_sq::<B>(&self.params, &mut self.grads, 0, 0, pen, sq);
    }

    fn zero_grads(&mut self) {
        self.grads.fill(0.0);
    }

    fn has_activity_penalties(&self) -> bool {
        self.layers.has_activity_regularizer()
    }

    #[inline]
    fn apply_constraints(&mut self) {
        self.layers.apply_constraints(&mut self.params);
    }
}
