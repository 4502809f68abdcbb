//! [`Frozen`]: a layer with `trainable = False` (Keras), its weights borrowed — from flash on a
//! microcontroller — and out of the training state.
//!
//! A frozen layer computes exactly what the layer computes (the same code, the same bits) from
//! weights it does not own: `&'w L::Params`, e.g. a `static` of weights trained on a host. Its
//! own [`Layer::Params`] is `()`, so a network that freezes a layer has **no weights, no
//! gradients and no optimizer slots** for it: fine-tuning the last layers of a network costs
//! the RAM of those layers only (`Network::PARAMS` counts the trainable weights).
//!
//! As in Keras 3 (checked with 3.15):
//! * the optimizer never sees its weights (no update, no weight decay, no EMA) and its
//!   constraints are not applied (Keras applies them to trainable variables only);
//! * the loss drops its kernel and bias penalties ([`Layer::weight_penalties`] adds nothing) but
//!   keeps its activity penalty, computed in the forward pass as for any layer.
//!
//! The backward pass: a frozen layer at the start of the network — or a run of frozen layers
//! there, `(Frozen<A>, Frozen<B>, C)` or `(Frozen<(A, B)>, C)` — needs none (no trainable
//! weight comes before it), and the network skips it. A frozen layer after a trainable one
//! passes the gradient through to it: it runs the layer's backward pass into a scratch
//! gradient of the layer's size on the stack, which is then dropped.
//!
//! ```
//! use microfit_core::prelude::*;
//! use microfit_core::layer::dense::DenseParams;
//! use microfit_core::layer::frozen::Frozen;
//! use microfit_core::params::ZeroParams;
//!
//! // Weights trained elsewhere, as a constant (in flash on a microcontroller).
//! static FEATURES: DenseParams<4, 8> = DenseParams { kernel: [[0.1; 8]; 4], bias: [0.0; 8] };
//! type M<'w> = (Frozen<'w, Dense<4, 8>>, Dense<8, 3>);
//! let layers: M = (Frozen::new(Dense::new(Activation::Relu), &FEATURES), Dense::new(Activation::Softmax));
//! let net = Network::new(layers, 1)?;
//! assert_eq!(Network::<M>::PARAMS, 8 * 3 + 3); // only the last layer trains
//! # let _ = net;
//! # Ok::<(), microfit_core::Error>(())
//! ```

use core::fmt;

use super::{BackwardCtx, ForwardCtx, Layer, LayerInfo, LossIo, Penalties};
use crate::activation::Activation;
use crate::backend::Backend;
use crate::params::ZeroParams;
use crate::rng::Rng;

/// The layer `L` frozen with the weights `weights` (Keras `layer.trainable = False`); see the
/// [module docs](self).
pub struct Frozen<'w, L: Layer> {
    /// The layer's configuration.
    pub layer: L,
    /// Its weights (not trained).
    pub weights: &'w L::Params,
}

impl<'w, L: Layer> Frozen<'w, L> {
    /// `layer` with the weights `weights`, frozen.
    pub const fn new(layer: L, weights: &'w L::Params) -> Self {
        Frozen { layer, weights }
    }
}

impl<L: Layer + Clone> Clone for Frozen<'_, L> {
    fn clone(&self) -> Self {
        Frozen {
            layer: self.layer.clone(),
            weights: self.weights,
        }
    }
}

impl<L: Layer + Copy> Copy for Frozen<'_, L> {}

impl<L: Layer + fmt::Debug> fmt::Debug for Frozen<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frozen")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

impl<L: Layer> Layer for Frozen<'_, L> {
    type Input = L::Input;
    type Output = L::Output;
    type Params = ();
    type Cache<const T: usize> = L::Cache<T>;
    type Rng = L::Rng;
    const LAYERS: usize = L::LAYERS;
    const FROZEN: bool = true;

    /// Draws the layer's initial weights — and drops them: the generator then stands where it
    /// stands after the layer's initialization in an unfrozen network (and in a model built at
    /// run time, which initializes frozen layers as Keras does), so the layers after it get
    /// the same initial weights. The draws go through a temporary of the layer's size on the
    /// stack, once, in `Network::new` (`Network::with_params` draws nothing).
    fn init(&self, _p: &mut (), rng: &mut Rng) {
        let mut scratch = <L::Params as ZeroParams>::zeroed();
        self.layer.init(&mut scratch, rng);
    }

    #[inline]
    fn forward<B: Backend, const T: usize>(
        &self,
        _p: &(),
        x: &[Self::Input],
        cache: &mut Self::Cache<T>,
        ctx: &mut ForwardCtx<'_>,
    ) {
        self.layer.forward::<B, T>(self.weights, x, cache, ctx);
    }

    #[inline]
    fn backward<B: Backend, const T: usize>(
        &self,
        _p: &(),
        _g: &mut (),
        x: &[Self::Input],
        cache: &mut Self::Cache<T>,
        dx: Option<&mut [Self::Input]>,
        ctx: &BackwardCtx,
    ) {
        // Nothing before this layer trains: no gradient to pass on.
        let Some(dx) = dx else {
            return;
        };
        let mut scratch = <L::Params as ZeroParams>::zeroed();
        self.layer
            .backward::<B, T>(self.weights, &mut scratch, x, cache, Some(dx), ctx);
    }

    #[inline]
    fn outputs<const T: usize>(
        cache: &mut Self::Cache<T>,
    ) -> (&[Self::Output], &mut [Self::Output]) {
        L::outputs(cache)
    }

    #[inline]
    fn output_rows<const T: usize>(cache: &Self::Cache<T>) -> &[Self::Output] {
        L::output_rows(cache)
    }

    #[inline]
    fn loss_io<'c, const T: usize>(&self, cache: &'c mut Self::Cache<T>) -> LossIo<'c> {
        self.layer.loss_io(cache)
    }

    /// Keras 3 drops a frozen layer's kernel and bias penalties from the loss.
    fn weight_penalties<B: Backend>(
        &self,
        _p: &(),
        _g: Option<&mut ()>,
        _layer: usize,
        _pen: &mut Penalties,
    ) {
    }

    fn output_activation(&self) -> Activation {
        self.layer.output_activation()
    }

    /// Its layers, with no trainable scalars.
    fn describe(&self, first: usize, f: &mut dyn FnMut(usize, LayerInfo)) {
        self.layer.describe(first, &mut |i, info| {
            f(i, LayerInfo { params: 0, ..info });
        });
    }

    fn has_activity_regularizer(&self) -> bool {
        self.layer.has_activity_regularizer()
    }
}
