//! Layers and their composition.
//!
//! A layer is a small config value (activation, regularizers, ...) whose input and output
//! are fixed-size [`Tensor`] types. Its weights live in a separate [`Layer::Params`] set, so
//! gradients and optimizer slots can be parameter sets of the same type. A model is a tuple
//! of layers: `(Dense<4, 16>, Dense<16, 3>)` is itself a [`Layer`] whose input is the first
//! layer's and whose output is the last one's; one layer's output type must be the next
//! layer's input type, so a shape mismatch is a compile error:
//!
//! ```compile_fail
//! use microfit_core::prelude::*;
//! // 16 outputs feed a layer that expects 8 inputs: does not compile.
//! let _ = Network::new((Dense::<4, 16>::new(Activation::Relu), Dense::<8, 3>::new(Activation::Softmax)), 0);
//! ```
//!
//! The per-layer math is in plain functions over slices (e.g. [`dense::forward`],
//! [`dense::backward`]) shared with models built at run time.
//!
//! [`constant::Const`] turns a layer (or a whole tuple) given as a `const` into a zero-sized
//! layer: for firmware whose model is fixed when it is built.

pub mod constant;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod flatten;
pub mod pool;

use crate::activation::Activation;
use crate::params::ZeroParams;
use crate::rng::Rng;
use crate::tensor::{Tensor, Zeroed};

/// Which penalty of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PenaltyKind {
    /// Activity regularizer (on the layer output, divided by the batch size).
    Activity,
    /// Kernel regularizer.
    Kernel,
    /// Bias regularizer.
    Bias,
}

impl PenaltyKind {
    /// The Keras key suffix (`"activity"`, `"kernel"`, `"bias"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            PenaltyKind::Activity => "activity",
            PenaltyKind::Kernel => "kernel",
            PenaltyKind::Bias => "bias",
        }
    }
}

/// One named penalty value: `layer` is the layer's index in the model.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PenaltyEntry {
    /// Index of the layer in the model (0-based, in order).
    pub layer: u16,
    /// Which penalty.
    pub kind: PenaltyKind,
    /// Its value.
    pub value: f32,
}

/// Maximum number of named penalties kept per report (further ones are summed into
/// [`Penalties::overflow`], still part of the total).
pub const MAX_PENALTIES: usize = 12;

/// The penalties of a step or epoch, by layer and kind, in Keras order
/// (for each layer: activity, kernel, bias).
///
/// At most `N` named entries (`8·N + 8` bytes); the layers write into the default capacity,
/// [`MAX_PENALTIES`]. A smaller `N` is for an epoch report on a microcontroller that knows how
/// many penalties its model has (`EpochReport<2>` for two regularized kernels): further
/// entries are summed into [`Penalties::overflow`], still part of the total.
///
/// ```
/// use microfit_core::layer::{Penalties, PenaltyKind};
/// let mut p = Penalties::<1>::new();
/// p.add(0, PenaltyKind::Kernel, 0.5);
/// p.add(1, PenaltyKind::Kernel, 0.25); // no room: into `overflow`
/// assert_eq!((p.entries().len(), p.overflow, p.total()), (1, 0.25, 0.75));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Penalties<const N: usize = MAX_PENALTIES> {
    entries: heapless::Vec<PenaltyEntry, N>,
    /// Sum of the penalties that did not fit.
    pub overflow: f32,
}

impl<const N: usize> Default for Penalties<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Penalties<N> {
    /// No penalties.
    pub const fn new() -> Self {
        Penalties {
            entries: heapless::Vec::new(),
            overflow: 0.0,
        }
    }

    /// Adds `value` to the entry `(layer, kind)`, creating it in order.
    pub fn add(&mut self, layer: usize, kind: PenaltyKind, value: f32) {
        let key = (layer as u16, kind);
        match self
            .entries
            .binary_search_by(|e| (e.layer, e.kind).cmp(&key))
        {
            Ok(i) => {
                if let Some(e) = self.entries.get_mut(i) {
                    e.value += value;
                }
            }
            Err(i) => {
                let e = PenaltyEntry {
                    layer: key.0,
                    kind,
                    value,
                };
                if self.entries.push(e).is_err() {
                    self.overflow += value;
                    return;
                }
                // Shift entries `i..` up by one, `e` into `i` (a dozen entries at most: a pass
                // of swaps rather than `insert`'s `memmove`, 1.5 KB of flash on a Cortex-M; no
                // indexing, so no bounds check).
                let mut carry = e;
                for slot in self.entries.iter_mut().skip(i) {
                    core::mem::swap(slot, &mut carry);
                }
            }
        }
    }

    /// The entries in order.
    pub fn entries(&self) -> &[PenaltyEntry] {
        &self.entries
    }

    /// The value of one entry (0 if absent).
    pub fn get(&self, layer: usize, kind: PenaltyKind) -> f32 {
        self.entries
            .iter()
            .find(|e| e.layer as usize == layer && e.kind == kind)
            .map_or(0.0, |e| e.value)
    }

    /// Sum of all penalties, in order.
    pub fn total(&self) -> f32 {
        let mut s = 0.0f32;
        for e in &self.entries {
            s += e.value;
        }
        s + self.overflow
    }

    /// Multiplies the entries of one kind by `k` (the training step divides the activity
    /// entries by the batch size; the std runtime's batched step does the same).
    pub fn scale_kind(&mut self, kind: PenaltyKind, k: f32) {
        for e in self.entries.iter_mut().filter(|e| e.kind == kind) {
            e.value *= k;
        }
    }

    /// `self += other · w` entry by entry (epoch means).
    pub fn add_weighted<const M: usize>(&mut self, other: &Penalties<M>, w: f32) {
        for e in &other.entries {
            self.add(e.layer as usize, e.kind, e.value * w);
        }
        self.overflow += other.overflow * w;
    }

    /// Multiplies every entry by `k`.
    pub fn scale(&mut self, k: f32) {
        for e in self.entries.iter_mut() {
            e.value *= k;
        }
        self.overflow *= k;
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.overflow = 0.0;
    }
}

/// Forward-pass context.
#[derive(Debug)]
pub struct ForwardCtx<'a> {
    /// Training mode (dropout active) or inference.
    pub training: bool,
    /// Random numbers for dropout.
    pub rng: &'a mut Rng,
}

/// Backward-pass context.
#[derive(Debug)]
pub struct BackwardCtx<'a> {
    /// `1 / batch_size` (activity penalties' gradient scale).
    pub inv_batch: f32,
    /// Index of the current layer in the model (set by the tuple before each call).
    pub layer: usize,
    /// Where activity penalties are summed (undivided; the step divides by the batch size).
    pub penalties: &'a mut Penalties,
    /// The layer's input is the training step's input — checked finite before any work — and
    /// the gradient accumulators started at `+0` (so hold no `-0`). Set by
    /// [`Network`](crate::model::Network) for its first layer (tuples pass it to their first
    /// element only). A `Dense` layer then accumulates its weight gradient column by column,
    /// skipping inactive outputs ([`crate::kernels::dense::backward_columns`]: the same bits
    /// under exactly these conditions). `false` is always correct.
    pub step_input: bool,
}

/// Static description of a layer, for reports and model summaries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerInfo {
    /// Keras class-style kind (`"dense"`, `"conv2d"`, `"max_pooling2d"`, `"flatten"`, ...).
    pub kind: &'static str,
    /// Number of trainable scalars.
    pub params: usize,
    /// Output activation.
    pub activation: Activation,
}

/// A layer with fixed input and output shapes.
///
/// Implementations must not panic for any input values (NaN and infinities included):
/// all indexing is bounded by the types.
pub trait Layer {
    /// Input tensor type.
    type Input: Tensor;
    /// Output tensor type.
    type Output: Tensor;
    /// Trainable parameters (Keras variable order).
    type Params: ZeroParams;
    /// What backprop keeps per sample besides the input and output (e.g. pre-activations).
    type Cache: Zeroed;
    /// Number of leaf layers (a tuple counts its members).
    const LAYERS: usize;

    /// Fills `p` with the layer's initializers.
    fn init(&self, p: &mut Self::Params, rng: &mut Rng);

    /// Forward pass of one sample: `x.len() == Input::LEN`, `y.len() == Output::LEN`.
    fn forward(
        &self,
        p: &Self::Params,
        x: &[f32],
        y: &mut [f32],
        cache: &mut Self::Cache,
        ctx: &mut ForwardCtx<'_>,
    );

    /// Backward pass of one sample, accumulating into `g`.
    ///
    /// `d` holds `∂L/∂y` (or `∂L/∂z`, the pre-activation gradient, when `d_is_pre`: the
    /// fused softmax/sigmoid + cross-entropy path); it is used as scratch. `dx` receives
    /// `∂L/∂x` when given. Activity penalties are added to `ctx.penalties` (undivided) and their
    /// gradient, scaled by `ctx.inv_batch`, flows into `d`.
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
    );

    /// Adds the weight penalties of this layer (index `layer`) to `pen`, and their
    /// gradients to `g` when given.
    fn weight_penalties(
        &self,
        p: &Self::Params,
        g: Option<&mut Self::Params>,
        layer: usize,
        pen: &mut Penalties,
    );

    /// The last layer's pre-activation values, if this layer keeps them (for the fused loss).
    fn logits<'c>(&self, cache: &'c Self::Cache) -> Option<&'c [f32]>;

    /// The activation applied to the output (the last layer's for a tuple).
    fn output_activation(&self) -> Activation;

    /// Calls `f(index, info)` for every leaf layer, starting at `first`.
    fn describe(&self, first: usize, f: &mut dyn FnMut(usize, LayerInfo));

    /// False when no layer has an activity regularizer, so an evaluation can skip the
    /// backward pass that only collects activity penalties. The default, `true`, is always
    /// correct (that pass then adds nothing).
    fn has_activity_regularizer(&self) -> bool {
        true
    }
}

mod tuple;
