//! [`Network`]: a typed model (a [`Layer`], usually a tuple of layers) with its weights,
//! gradients and per-sample activation buffers, all fixed-size.
//!
//! ```
//! use microfit_core::prelude::*;
//! type W1 = (Dense<4, 16>, Dense<16, 3>);
//! let net: Network<W1> = Network::new(
//!     (Dense::new(Activation::Relu).kernel_regularizer(Reg::l2(1e-3)), Dense::new(Activation::Softmax)),
//!     42,
//! )?;
//! assert_eq!(Network::<W1>::PARAMS, 4 * 16 + 16 + 16 * 3 + 3);
//! # let _ = net;
//! # Ok::<(), microfit_core::Error>(())
//! ```

use crate::activation::Activation;
use crate::error::Error;
use crate::layer::{BackwardCtx, ForwardCtx, Layer, LayerInfo, Penalties};
use crate::params::{Params, ZeroParams};
use crate::rng::Rng;
use crate::tensor::{Tensor, Zeroed};
use crate::train::Trainable;

/// A typed model: layers (configuration), weights, gradients and activation buffers.
///
/// Memory (`size_of`) is `2 · PARAMS · 4 B` (weights and gradients) `+ ACTIVATION_FLOATS · 4 B`
/// plus the layer configurations and an RNG state; an optimizer adds `SLOTS · PARAMS · 4 B`.
#[derive(Debug, Clone)]
pub struct Network<L: Layer> {
    /// The layers (configuration only).
    pub layers: L,
    /// The weights.
    pub params: L::Params,
    /// Gradient accumulators (same structure as the weights).
    pub grads: L::Params,
    cache: L::Cache,
    out: L::Output,
    dout: L::Output,
    rng: Rng,
}

impl<L: Layer> Network<L> {
    /// Number of trainable scalars.
    pub const PARAMS: usize = <L::Params as ZeroParams>::LEN;
    /// Number of `f32` activation values kept per sample: the layers' caches, the intermediate
    /// outputs and their gradients (the backward pass's buffers), plus the output and its
    /// gradient.
    pub const ACTIVATION_FLOATS: usize = L::Cache::FLOATS + 2 * L::Output::LEN;

    /// Builds the network and initializes its weights from `seed` (Keras initializers).
    ///
    /// # Errors
    /// Never for built-in layers today; reserved for layer validation.
    pub fn new(layers: L, seed: u64) -> Result<Self, Error> {
        let mut rng = Rng::new(seed);
        let mut params = L::Params::zeroed();
        layers.init(&mut params, &mut rng);
        Ok(Network {
            layers,
            params,
            grads: L::Params::zeroed(),
            cache: <L::Cache as Zeroed>::zeroed(),
            out: <L::Output as Tensor>::zeroed(),
            dout: <L::Output as Tensor>::zeroed(),
            rng,
        })
    }

    /// Builds the network with the given weights (e.g. from a file or Keras).
    pub fn with_params(layers: L, params: L::Params) -> Self {
        Network {
            layers,
            params,
            grads: L::Params::zeroed(),
            cache: <L::Cache as Zeroed>::zeroed(),
            out: <L::Output as Tensor>::zeroed(),
            dout: <L::Output as Tensor>::zeroed(),
            rng: Rng::new(0),
        }
    }

    /// Inference on one sample.
    pub fn predict(&mut self, x: &L::Input) -> &L::Output {
        let mut ctx = ForwardCtx {
            training: false,
            rng: &mut self.rng,
        };
        self.layers.forward(
            &self.params,
            x.as_slice(),
            self.out.as_mut_slice(),
            &mut self.cache,
            &mut ctx,
        );
        &self.out
    }

    /// Inference on one sample given as a flat slice.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `x.len()` is not the input size.
    pub fn predict_slice(&mut self, x: &[f32]) -> Result<&[f32], Error> {
        self.check_input(x)?;
        self.forward_sample(x, false);
        Ok(self.out.as_slice())
    }

    fn check_input(&self, x: &[f32]) -> Result<(), Error> {
        if x.len() == L::Input::LEN {
            Ok(())
        } else {
            Err(Error::ShapeMismatch {
                what: "input",
                expected: L::Input::LEN as u32,
                found: x.len() as u32,
            })
        }
    }

    /// Calls `f(index, info)` for each layer.
    pub fn describe(&self, f: &mut dyn FnMut(usize, LayerInfo)) {
        self.layers.describe(0, f);
    }
}

impl<L: Layer> Trainable for Network<L> {
    type Params = L::Params;

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

    // Never inlined, as `backward_sample`.
    #[inline(never)]
    fn forward_sample(&mut self, x: &[f32], training: bool) {
        let mut ctx = ForwardCtx {
            training,
            rng: &mut self.rng,
        };
        self.layers.forward(
            &self.params,
            x,
            self.out.as_mut_slice(),
            &mut self.cache,
            &mut ctx,
        );
    }

    fn output(&self) -> &[f32] {
        self.out.as_slice()
    }

    fn output_activation(&self) -> Activation {
        self.layers.output_activation()
    }

    fn loss_io(&mut self) -> (&[f32], Option<&[f32]>, &mut [f32]) {
        (
            self.out.as_slice(),
            self.layers.logits(&self.cache),
            self.dout.as_mut_slice(),
        )
    }

    // Never inlined: the whole backward pass is one big function called once per sample;
    // inlined into the training step (its only caller when the model has no activity
    // regularizer) it costs the step registers (Cortex-M4F: +2% instructions).
    #[inline(never)]
    fn backward_sample(&mut self, x: &[f32], d_is_pre: bool, inv_batch: f32, pen: &mut Penalties) {
        let mut ctx = BackwardCtx {
            inv_batch,
            layer: 0,
            penalties: pen,
            step_input: true,
        };
        self.layers.backward(
            &self.params,
            &mut self.grads,
            x,
            self.out.as_slice(),
            &mut self.cache,
            self.dout.as_mut_slice(),
            d_is_pre,
            None,
            &mut ctx,
        );
    }

    fn weight_penalties(&mut self, with_grads: bool, pen: &mut Penalties) {
        if with_grads {
            self.layers
                .weight_penalties(&self.params, Some(&mut self.grads), 0, pen);
        } else {
            self.layers.weight_penalties(&self.params, None, 0, pen);
        }
    }

    fn zero_grads(&mut self) {
        self.grads.fill(0.0);
    }

    fn has_activity_penalties(&self) -> bool {
        self.layers.has_activity_regularizer()
    }
}
