//! Layers whose configuration is a compile-time constant: [`Const`].
//!
//! A layer value (activation, regularizers, initializers) normally lives in the model, in
//! RAM, and the code dispatches on it at run time, so every activation, every regularizer
//! and every loss path is linked into the program. When the configuration is known when the
//! program is built — a firmware training one fixed network — it can be a `const` instead:
//! [`Const<C>`] is a zero-sized layer that runs `C::LAYER` (a [`ConstLayer`]). The very same
//! layer code runs (same operations, same bits); the compiler sees the configuration, keeps
//! only the branches it takes and drops the rest (on the Cortex-M4F W1 firmware: the
//! regularizers, the activations and the losses the model does not use), and the
//! configuration takes no RAM.
//!
//! ```
//! use microfit_core::layer::constant::{Const, ConstLayer};
//! use microfit_core::prelude::*;
//!
//! struct Iris;
//! impl ConstLayer for Iris {
//!     type Layer = (Dense<4, 16>, Dense<16, 3>);
//!     const LAYER: Self::Layer = (Dense::new(Activation::Relu), Dense::new(Activation::Softmax));
//! }
//!
//! let fixed = Network::new(Const::<Iris>::new(), 42)?;
//! let plain = Network::new(Iris::LAYER, 42)?;
//! assert_eq!(fixed.params, plain.params);
//! assert_eq!(size_of::<Const<Iris>>(), 0);
//! # Ok::<(), microfit_core::Error>(())
//! ```

use core::fmt;
use core::marker::PhantomData;

use super::{BackwardCtx, ForwardCtx, Layer, LayerInfo, LossIo, Penalties};
use crate::activation::Activation;
use crate::backend::Backend;
use crate::regularizer::SumSqs;
use crate::rng::Rng;

/// A layer (or a tuple of layers) given as a constant; see [`Const`].
pub trait ConstLayer {
    /// The layer type.
    type Layer: Layer;
    /// The layer's configuration.
    const LAYER: Self::Layer;
}

/// The layer `C::LAYER` as a zero-sized [`Layer`]: same types, same parameters, same
/// results as `C::LAYER` itself (see the module docs).
pub struct Const<C>(PhantomData<fn() -> C>);

impl<C> Const<C> {
    /// The layer.
    pub const fn new() -> Self {
        Const(PhantomData)
    }
}

impl<C> Default for Const<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> Clone for Const<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Const<C> {}

impl<C> PartialEq for Const<C> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<C: ConstLayer> fmt::Debug for Const<C>
where
    C::Layer: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Const").field(&C::LAYER).finish()
    }
}

impl<C: ConstLayer> Layer for Const<C> {
    type Input = <C::Layer as Layer>::Input;
    type Output = <C::Layer as Layer>::Output;
    type Params = <C::Layer as Layer>::Params;
    type Cache<const T: usize> = <C::Layer as Layer>::Cache<T>;
    type Rng = <C::Layer as Layer>::Rng;
    const LAYERS: usize = <C::Layer as Layer>::LAYERS;
    const FROZEN: bool = <C::Layer as Layer>::FROZEN;

    fn init(&self, p: &mut Self::Params, rng: &mut Rng) {
        C::LAYER.init(p, rng);
    }

    #[inline]
    fn forward<B: Backend, const T: usize>(
        &self,
        p: &Self::Params,
        x: &[Self::Input],
        cache: &mut Self::Cache<T>,
        ctx: &mut ForwardCtx<'_>,
    ) {
        C::LAYER.forward::<B, T>(p, x, cache, ctx);
    }

    #[inline]
    fn backward<B: Backend, const T: usize>(
        &self,
        p: &Self::Params,
        g: &mut Self::Params,
        x: &[Self::Input],
        cache: &mut Self::Cache<T>,
        dx: Option<&mut [Self::Input]>,
        ctx: &BackwardCtx,
    ) {
        C::LAYER.backward::<B, T>(p, g, x, cache, dx, ctx);
    }

    #[inline]
    fn outputs<const T: usize>(
        cache: &mut Self::Cache<T>,
    ) -> (&[Self::Output], &mut [Self::Output]) {
        <C::Layer as Layer>::outputs(cache)
    }

    #[inline]
    fn output_rows<const T: usize>(cache: &Self::Cache<T>) -> &[Self::Output] {
        <C::Layer as Layer>::output_rows(cache)
    }

    #[inline]
    fn loss_io<'c, const T: usize>(&self, cache: &'c mut Self::Cache<T>) -> LossIo<'c> {
        C::LAYER.loss_io(cache)
    }

    #[inline]
    fn weight_penalties<B: Backend>(
        &self,
        p: &Self::Params,
        g: Option<&mut Self::Params>,
        layer: usize,
        pen: &mut Penalties,
    ) {
        C::LAYER.weight_penalties::<B>(p, g, layer, pen);
    }

    #[inline]
    fn weight_penalties_sq<B: Backend>(
        &self,
        p: &Self::Params,
        g: &mut Self::Params,
        layer: usize,
        first: usize,
        pen: &mut Penalties,
        sq: &mut SumSqs,
    ) {
        C::LAYER.weight_penalties_sq::<B>(p, g, layer, first, pen, sq);
    }

    #[inline]
    fn output_activation(&self) -> Activation {
        C::LAYER.output_activation()
    }

    fn describe(&self, first: usize, f: &mut dyn FnMut(usize, LayerInfo)) {
        C::LAYER.describe(first, f);
    }

    #[inline]
    fn has_activity_regularizer(&self) -> bool {
        C::LAYER.has_activity_regularizer()
    }

    #[inline]
    fn apply_constraints(&self, p: &mut Self::Params) {
        C::LAYER.apply_constraints(p);
    }

    fn validate(&self) -> Result<(), crate::error::Error> {
        C::LAYER.validate()
    }
}
