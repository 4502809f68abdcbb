//! Layers and their composition.
//!
//! A layer is a small config value (activation, regularizers, ...) whose input and output
//! are fixed-size [`Tensor`] types. Its weights live in a separate [`Layer::Params`] set, so
//! gradients and optimizer slots can be parameter sets of the same type. A model is a tuple
//! of layers: `(Dense<4, 16>, Dense<16, 3>)` is itself a [`Layer`] whose input is the first
//! layer's and whose output is the last one's; one layer's output type must be the next
//! layer's input type, so a shape mismatch is a compile error:
//!
//! **Tiles.** A layer's forward and backward passes run over a *tile* of `n ≤ T` samples at
//! once, `T` a compile-time constant of the network ([`Network<L, T>`](crate::Network)): a
//! microcontroller uses `T = 1` (per-sample code, memory independent of the batch), a host a
//! tile of, say, 32 (the batched kernels of [`crate::kernels::gemm`]). Every accumulation over
//! samples runs in sample order either way, so the tile size never changes a bit. Each layer
//! keeps, in its [`Layer::Cache`], what it needs for a tile: its outputs `y` and their
//! gradients `dy` ([`Outputs`]), plus e.g. the pre-activations `z`; a tuple's cache is its
//! members' caches, so every activation and its gradient is stored once and the memory is a
//! compile-time number ([`Zeroed::FLOATS`]).
//!
//! ```compile_fail
//! use microfit_core::prelude::*;
//! // 16 outputs feed a layer that expects 8 inputs: does not compile.
//! let _ = Network::new((Dense::<4, 16>::new(Activation::Relu), Dense::<8, 3>::new(Activation::Softmax)), 0);
//! ```
//!
//! The per-layer math is in plain functions over flat slices of a tile (e.g.
//! [`dense::forward`], [`dense::backward`]), shared with models built at run time, and generic
//! over the [`Backend`] that runs them.
//!
//! [`constant::Const`] turns a layer (or a whole tuple) given as a `const` into a zero-sized
//! layer: for firmware whose model is fixed when it is built.

pub mod constant;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod flatten;
pub mod frozen;
pub mod noise;
pub mod pair;
pub mod pool;

use crate::activation::Activation;
use crate::backend::Backend;
use crate::params::ZeroParams;
use crate::regularizer::{Regularizer, SumSqs};
use crate::rng::{Rng, RngSlot};
use crate::tensor::{Tensor, Tile, Zeroed};

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
/// [`PenaltyList<N>`] (`Penalties<[PenaltyEntry; N]>`) holds at most `N` named entries
/// (`8·N + 8` bytes); `Penalties` (`Penalties<[PenaltyEntry]>`) is any of them behind a
/// reference — what the layers and the training step write into, whatever the capacity. A
/// report sized for its model (`EpochReport<2>`, `StepReport<2>` for two regularized
/// kernels, `<0>` for none) keeps a microcontroller's stack small; further entries are summed
/// into [`Penalties::overflow`], still part of the total.
///
/// ```
/// use microfit_core::layer::{PenaltyKind, PenaltyList};
/// let mut p = PenaltyList::<1>::new();
/// p.add(0, PenaltyKind::Kernel, 0.5);
/// p.add(1, PenaltyKind::Kernel, 0.25); // no room: into `overflow`
/// assert_eq!((p.entries().len(), p.overflow, p.total()), (1, 0.25, 0.75));
/// ```
#[derive(Clone)]
pub struct Penalties<E: ?Sized = [PenaltyEntry]> {
    /// Entries in use: `entries[..len]`.
    len: usize,
    /// Sum of the penalties that did not fit.
    pub overflow: f32,
    /// Room for the entries (last: the unsized field of a `Penalties`).
    entries: E,
}

/// Room for `N` named penalties ([`Penalties`]; [`MAX_PENALTIES`] by default).
pub type PenaltyList<const N: usize = MAX_PENALTIES> = Penalties<[PenaltyEntry; N]>;

impl PenaltyEntry {
    /// `(layer, kind)` as one number, in the same order.
    #[inline(always)]
    fn key(&self) -> u32 {
        (u32::from(self.layer) << 8) | self.kind as u32
    }

    /// An unused slot.
    const EMPTY: PenaltyEntry = PenaltyEntry {
        layer: 0,
        kind: PenaltyKind::Activity,
        value: 0.0,
    };
}

impl<const N: usize> PenaltyList<N> {
    /// No penalties.
    pub const fn new() -> Self {
        Penalties {
            len: 0,
            overflow: 0.0,
            entries: [PenaltyEntry::EMPTY; N],
        }
    }
}

impl<const N: usize> Default for PenaltyList<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> core::ops::Deref for PenaltyList<N> {
    type Target = Penalties;
    #[inline(always)]
    fn deref(&self) -> &Penalties {
        self
    }
}

impl<const N: usize> core::ops::DerefMut for PenaltyList<N> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Penalties {
        self
    }
}

impl PartialEq for Penalties {
    /// The same entries and the same overflow (the unused room is not compared).
    fn eq(&self, other: &Self) -> bool {
        self.entries() == other.entries() && self.overflow == other.overflow
    }
}

impl<const N: usize> PartialEq for PenaltyList<N> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl core::fmt::Debug for Penalties {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Penalties")
            .field("entries", &self.entries())
            .field("overflow", &self.overflow)
            .finish()
    }
}

impl<const N: usize> core::fmt::Debug for PenaltyList<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

impl Penalties {
    /// The entries in use, mutable.
    #[inline(always)]
    fn live_mut(&mut self) -> &mut [PenaltyEntry] {
        // `min`: the compiler then knows that no loop over the entries runs more than the
        // capacity's times (a report sized for its model: 0, 1 or 2 rounds, no unrolled loop).
        let n = self.len.min(self.entries.len());
        self.entries.get_mut(..n).unwrap_or(&mut [])
    }

    /// Adds `value` to the entry `(layer, kind)`, creating it in order.
    #[inline(never)]
    pub fn add(&mut self, layer: usize, kind: PenaltyKind, value: f32) {
        let e = PenaltyEntry {
            layer: layer as u16,
            kind,
            value,
        };
        let key = e.key();
        // Two small loops whatever the capacity (the firmware's flash, issue 14): the entry
        // itself, else a new one at the end (no room: its value into the overflow), moved
        // down to its place by swaps (no `memmove`: 1.5 KB of flash on a Cortex-M).
        if let Some(l) = self.live_mut().iter_mut().find(|l| l.key() == key) {
            l.value += value;
            return;
        }
        if self.len >= self.entries.len() {
            self.overflow += value;
            return;
        }
        self.push(e);
        let live = self.live_mut();
        for i in (1..live.len()).rev() {
            match live.get_mut(i - 1..=i) {
                Some([a, b]) if a.key() > key => core::mem::swap(a, b),
                _ => break,
            }
        }
    }

    /// Appends `e` when there is room, else adds its value to the overflow.
    #[inline(always)]
    fn push(&mut self, e: PenaltyEntry) {
        match self.entries.get_mut(self.len) {
            Some(slot) => {
                *slot = e;
                self.len += 1;
            }
            None => self.overflow += e.value,
        }
    }

    /// The entries in order.
    #[inline(always)]
    pub fn entries(&self) -> &[PenaltyEntry] {
        let n = self.len.min(self.entries.len());
        self.entries.get(..n).unwrap_or(&[])
    }

    /// The value of one entry (0 if absent).
    pub fn get(&self, layer: usize, kind: PenaltyKind) -> f32 {
        self.entries()
            .iter()
            .find(|e| e.layer as usize == layer && e.kind == kind)
            .map_or(0.0, |e| e.value)
    }

    /// Sum of all penalties, in order.
    ///
    /// Out of line when there is room for entries: one copy for the training step, the
    /// evaluation and the logs (a firmware's flash); a list with no room (`PenaltyList<0>`)
    /// keeps its `0 + overflow` inline.
    #[inline(always)]
    pub fn total(&self) -> f32 {
        if self.entries.is_empty() {
            0.0 + self.overflow
        } else {
            self.sum()
        }
    }

    /// [`Penalties::total`]: the entries from `+0` in order, then the overflow.
    #[inline(never)]
    fn sum(&self) -> f32 {
        let mut s = 0.0f32;
        for e in self.entries() {
            s += e.value;
        }
        s + self.overflow
    }

    /// `self += other · w` entry by entry (epoch means).
    #[inline(always)]
    pub fn add_weighted(&mut self, other: &Penalties, w: f32) {
        for e in other.entries() {
            self.add(e.layer as usize, e.kind, e.value * w);
        }
        self.overflow += other.overflow * w;
    }

    /// Multiplies every entry by `k`.
    #[inline(always)]
    pub fn scale(&mut self, k: f32) {
        for e in self.live_mut().iter_mut() {
            e.value *= k;
        }
        self.overflow *= k;
    }

    /// Removes every entry.
    #[inline(always)]
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflow = 0.0;
    }
}

/// Forward-pass context.
#[derive(Debug)]
pub struct ForwardCtx<'a> {
    /// Training mode (dropout and noise active) or inference.
    pub training: bool,
    /// The model's generator: dropout layers take their own stream from it the first time
    /// they draw ([`Rng::split`]). `None` for a model that keeps none (its layers never draw:
    /// [`Layer::Rng`] is [`NoRng`](crate::rng::NoRng)) and in inference; a drawing layer
    /// without its own seed then starts its stream at `Rng::new(0)`.
    pub rng: Option<&'a mut Rng>,
    /// Index of the current layer in the model (set by tuples before each call).
    pub layer: usize,
    /// Where the activity penalties of the tile's samples are summed (undivided), when wanted
    /// (training and evaluation; not inference).
    pub penalties: Option<&'a mut Penalties>,
}

/// Backward-pass context.
#[derive(Debug, Clone, Copy)]
pub struct BackwardCtx {
    /// `1 / batch_size` (the activity penalties' gradient scale).
    pub inv_batch: f32,
    /// Index of the current layer in the model (set by tuples before each call).
    pub layer: usize,
    /// The layer's `dy` holds `∂L/∂z` (the pre-activation gradient) rather than `∂L/∂y`: the
    /// fused softmax/sigmoid + cross-entropy path. Tuples pass it to their last member only.
    pub dy_is_pre: bool,
    /// The layer's input is the training step's input — checked finite before any work — and
    /// the gradient accumulators started at `+0` (so hold no `-0`). Set by the models for their
    /// first layer (tuples pass it to their first member only). A `Dense` layer then
    /// accumulates its weight gradient column by column, skipping inactive outputs
    /// ([`crate::kernels::dense::backward_columns`]: the same bits under exactly these
    /// conditions). `false` is always correct.
    pub step_input: bool,
    /// The layer's input is a ReLU's output (tuples set it from the previous member's
    /// [`Layer::output_activation`]): that ReLU's backward pass zeroes the input gradient
    /// wherever the input is `0`, so a layer may write `0` there instead of computing it
    /// (a `Dense` layer's per-sample path skips those rows of `dx = W·dz`:
    /// [`crate::kernels::dense::backward_relu_input`]). `false` is always correct.
    pub input_relu: bool,
}

/// A layer's outputs for a tile and their gradients: the part of every [`Layer::Cache`] that
/// the next layer (or the loss) reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs<Y, const T: usize> {
    /// The outputs `y`, one row per sample.
    pub y: Tile<Y, T>,
    /// `∂L/∂y` (or `∂L/∂z` for a fused loss), one row per sample.
    pub dy: Tile<Y, T>,
}

impl<Y: Tensor, const T: usize> Zeroed for Outputs<Y, T> {
    const FLOATS: usize = 2 * T * Y::LEN;
    fn zeroed() -> Self {
        Outputs {
            y: Zeroed::zeroed(),
            dy: Zeroed::zeroed(),
        }
    }
}

impl<Y: Tensor, const T: usize> Outputs<Y, T> {
    /// `(y, dy)` borrowed together.
    #[inline]
    pub fn split(&mut self) -> (&[Y], &mut [Y]) {
        (&self.y.0, &mut self.dy.0)
    }
}

/// What a layer without weights (pooling, flatten, dropout) keeps for a tile of `T` samples:
/// its outputs and their gradients, and its state `S` (`()`, or a dropout layer's generator).
#[derive(Debug, Clone, PartialEq)]
pub struct PlainCache<Y, S, const T: usize> {
    /// Outputs and their gradients.
    pub out: Outputs<Y, T>,
    /// The layer's state.
    pub state: S,
}

impl<Y: Tensor, S: Zeroed, const T: usize> Zeroed for PlainCache<Y, S, T> {
    const FLOATS: usize = 2 * T * Y::LEN + S::FLOATS;
    fn zeroed() -> Self {
        PlainCache {
            out: Zeroed::zeroed(),
            state: S::zeroed(),
        }
    }
}

/// The [`Layer`] methods that every layer without weights (cache: [`PlainCache`]) writes the
/// same way: no parameters, its outputs, no logits, no weight penalty, a linear output, one
/// leaf described as `$kind`, and (unless `@common` is given, for a layer that writes its own)
/// no activity regularizer.
macro_rules! plain_layer_methods {
    ($kind:expr) => {
        $crate::layer::plain_layer_methods!(@common $kind);

        fn has_activity_regularizer(&self) -> bool {
            false
        }
    };
    (@common $kind:expr) => {
        type Params = ();
        const LAYERS: usize = 1;

        fn outputs<const TILE: usize>(
            cache: &mut Self::Cache<TILE>,
        ) -> (&[Self::Output], &mut [Self::Output]) {
            cache.out.split()
        }

        fn output_rows<const TILE: usize>(cache: &Self::Cache<TILE>) -> &[Self::Output] {
            &cache.out.y.0
        }

        fn loss_io<'c, const TILE: usize>(
            &self,
            cache: &'c mut Self::Cache<TILE>,
        ) -> $crate::layer::LossIo<'c> {
            $crate::layer::LossIo {
                y: cache.out.y.flat(),
                logits: None,
                dy: cache.out.dy.flat_mut(),
                width: <Self::Output as $crate::tensor::Tensor>::LEN,
            }
        }

        fn weight_penalties<B: $crate::backend::Backend>(
            &self,
            _p: &(),
            _g: Option<&mut ()>,
            _layer: usize,
            _pen: &mut $crate::layer::Penalties,
        ) {
        }

        fn output_activation(&self) -> $crate::activation::Activation {
            $crate::activation::Activation::Linear
        }

        fn describe(&self, first: usize, f: &mut dyn FnMut(usize, $crate::layer::LayerInfo)) {
            f(
                first,
                $crate::layer::LayerInfo {
                    kind: $kind,
                    params: 0,
                    activation: $crate::activation::Activation::Linear,
                },
            );
        }
    };
}
pub(crate) use plain_layer_methods;

/// What a layer with weights (Dense, the convolutions) keeps for a tile of `T` samples:
/// pre-activations `z`, outputs and their gradients (`3 · T · Y::LEN` floats).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedCache<Y, const T: usize> {
    /// Pre-activations `z`.
    pub z: Tile<Y, T>,
    /// Outputs and their gradients.
    pub out: Outputs<Y, T>,
}

impl<Y: Tensor, const T: usize> Zeroed for WeightedCache<Y, T> {
    const FLOATS: usize = 3 * T * Y::LEN;
    fn zeroed() -> Self {
        WeightedCache {
            z: Zeroed::zeroed(),
            out: Zeroed::zeroed(),
        }
    }
}

/// What the loss of a training step reads and writes: a model's last layer's outputs, its
/// pre-activations when it keeps them (the cached-logits path), and the gradient buffer the
/// loss fills. All `T` rows, flat; a step uses the first `n`.
#[derive(Debug)]
pub struct LossIo<'a> {
    /// The outputs `y`.
    pub y: &'a [f32],
    /// The last layer's pre-activations `z`, if kept (see [`crate::Loss::fuses_with`]).
    pub logits: Option<&'a [f32]>,
    /// `∂L/∂y` (or `∂L/∂z` on the fused path), written by the loss.
    pub dy: &'a mut [f32],
    /// Values per sample (the output's length).
    pub width: usize,
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

/// A layer with fixed input and output shapes, run over tiles of samples.
///
/// Implementations must not panic for any input values (NaN and infinities included): all
/// indexing is bounded by the types.
pub trait Layer {
    /// Input tensor type (one sample).
    type Input: Tensor;
    /// Output tensor type (one sample).
    type Output: Tensor;
    /// Trainable parameters (Keras variable order).
    type Params: ZeroParams;
    /// What the layer keeps for a tile of `T` samples: its [`Outputs`] and whatever backprop
    /// needs besides (pre-activations, a dropout layer's generator).
    type Cache<const T: usize>: Zeroed + Clone + core::fmt::Debug;
    /// The generator a model of this layer keeps for it ([`RngSlot`]): [`Rng`] for a layer
    /// that draws random numbers in training (dropout, noise), [`NoRng`](crate::rng::NoRng)
    /// (no bytes) for one that never does; a tuple keeps one when a member does.
    type Rng: RngSlot;
    /// Number of leaf layers (a tuple counts its members).
    const LAYERS: usize;
    /// True for a layer with no trainable weights that needs no backward pass when nothing
    /// before it trains: a [`frozen::Frozen`] layer, or a tuple of them. A network skips the
    /// backward pass of its frozen first layers.
    const FROZEN: bool = false;

    /// Fills `p` with the layer's initializers.
    fn init(&self, p: &mut Self::Params, rng: &mut Rng);

    /// Forward pass of the `n = x.len() <= T` samples of a tile into the cache's outputs;
    /// activity penalty values (undivided) into `ctx.penalties` when given.
    fn forward<B: Backend, const T: usize>(
        &self,
        p: &Self::Params,
        x: &[Self::Input],
        cache: &mut Self::Cache<T>,
        ctx: &mut ForwardCtx<'_>,
    );

    /// Backward pass of the tile of the last [`Layer::forward`] (`x` the same rows),
    /// accumulating into `g` in sample order from the cache's `dy`, which it may use as
    /// scratch; writes `∂L/∂x` into `dx` when given. Activity penalties' gradients, scaled by
    /// `ctx.inv_batch`, flow into `dy` first.
    fn backward<B: Backend, const T: usize>(
        &self,
        p: &Self::Params,
        g: &mut Self::Params,
        x: &[Self::Input],
        cache: &mut Self::Cache<T>,
        dx: Option<&mut [Self::Input]>,
        ctx: &BackwardCtx,
    );

    /// The outputs `y` and their gradients `dy` (all `T` rows).
    fn outputs<const T: usize>(
        cache: &mut Self::Cache<T>,
    ) -> (&[Self::Output], &mut [Self::Output]);

    /// The outputs of the last forward pass (all `T` rows).
    fn output_rows<const T: usize>(cache: &Self::Cache<T>) -> &[Self::Output];

    /// What the loss needs (see [`LossIo`]).
    fn loss_io<'c, const T: usize>(&self, cache: &'c mut Self::Cache<T>) -> LossIo<'c>;

    /// Adds the weight penalties of this layer (index `layer`) to `pen`, and their gradients
    /// to `g` when given.
    fn weight_penalties<B: Backend>(
        &self,
        p: &Self::Params,
        g: Option<&mut Self::Params>,
        layer: usize,
        pen: &mut Penalties,
    );

    /// [`Layer::weight_penalties`] with gradients, in a training epoch that takes the `Σw²`
    /// of L2 penalties from the optimizer's update ([`SumSqs`]): this layer's tensors are the
    /// model's tensors `first..` ([`crate::params::Params`] order). A layer may use a valid sum
    /// of `sq` for a tensor whose regularizer has a [`Regularizer::sum_sq_factor`], and ask for
    /// it ([`SumSqs::want`]) — only for a tensor that nothing but the optimizer's update
    /// rewrites (no constraint) — with the very bits of [`Layer::weight_penalties`]. The
    /// default ignores `sq`: always correct.
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
        let _ = (first, sq);
        self.weight_penalties::<B>(p, Some(g), layer, pen);
    }

    /// The activation applied to the output (the last layer's for a tuple).
    fn output_activation(&self) -> Activation;

    /// Calls `f(index, info)` for every leaf layer, starting at `first`.
    fn describe(&self, first: usize, f: &mut dyn FnMut(usize, LayerInfo));

    /// False when no layer has an activity regularizer, so an evaluation can skip collecting
    /// activity penalties. The default, `true`, is always correct.
    fn has_activity_regularizer(&self) -> bool {
        true
    }

    /// Checks the layer's settings that its type cannot (a constraint's axes against its
    /// kernel, ...); [`crate::Network::new`] calls it. The default accepts.
    ///
    /// # Errors
    /// [`crate::Error::InvalidHyperparameter`] naming the bad setting.
    fn validate(&self) -> Result<(), crate::error::Error> {
        Ok(())
    }

    /// Applies the layer's weight constraints (`kernel_constraint`, `bias_constraint`) to `p`:
    /// Keras does it right after each optimizer update ([`crate::constraint`]). The default
    /// does nothing (a layer without constraints).
    #[inline]
    fn apply_constraints(&self, _p: &mut Self::Params) {}
}

/// The activity penalty of each of a tile's rows (`y`: rows of `width` values, a regularizer
/// seeing `cols` columns per row) added to `ctx.penalties` when it is given, in sample order.
#[inline]
pub fn activity_penalties<R: Regularizer>(
    reg: Option<&R>,
    y: &[f32],
    width: usize,
    cols: usize,
    ctx: &mut ForwardCtx<'_>,
) {
    if let (Some(r), Some(pen)) = (reg, ctx.penalties.as_deref_mut()) {
        for row in y.chunks_exact(width.max(1)) {
            pen.add(ctx.layer, PenaltyKind::Activity, r.penalty(row, cols));
        }
    }
}

mod tuple;

#[cfg(test)]
mod penalty_tests {
    use super::{Penalties, PenaltyKind, PenaltyList};

    fn keys(p: &Penalties) -> Vec<(u16, PenaltyKind, f32)> {
        p.entries()
            .iter()
            .map(|e| (e.layer, e.kind, e.value))
            .collect()
    }

    #[test]
    fn entries_stay_in_keras_order_whatever_the_capacity() {
        use PenaltyKind::{Activity, Bias, Kernel};
        // The training step's order: activity entries in the forward pass, then the weights'.
        let adds = [
            (1, Activity, 0.5),
            (3, Activity, 0.25),
            (1, Activity, 0.5),
            (0, Kernel, 2.0),
            (1, Bias, 4.0),
            (1, Kernel, 8.0),
            (3, Kernel, 16.0),
            (0, Bias, 32.0),
        ];
        let mut big = PenaltyList::<12>::new();
        let mut small = PenaltyList::<2>::new();
        let mut none = PenaltyList::<0>::new();
        for (l, k, v) in adds {
            big.add(l, k, v);
            small.add(l, k, v);
            none.add(l, k, v);
        }
        let want = vec![
            (0, Kernel, 2.0),
            (0, Bias, 32.0),
            (1, Activity, 1.0),
            (1, Kernel, 8.0),
            (1, Bias, 4.0),
            (3, Activity, 0.25),
            (3, Kernel, 16.0),
        ];
        assert_eq!(keys(&big), want);
        assert_eq!(big.overflow, 0.0);
        assert_eq!(big.total(), 63.25);
        // Room for two: the first two created stay (values still added to), the rest overflow.
        assert_eq!(keys(&small), vec![(1, Activity, 1.0), (3, Activity, 0.25)]);
        assert_eq!(small.overflow, 2.0 + 4.0 + 8.0 + 16.0 + 32.0);
        assert_eq!((keys(&none), none.overflow), (vec![], 63.25));
    }

    #[test]
    fn a_cleared_list_compares_equal_to_a_new_one() {
        let mut p = PenaltyList::<3>::new();
        p.add(0, PenaltyKind::Kernel, 1.0);
        p.clear();
        assert_eq!(p, PenaltyList::<3>::new());
        p.add(2, PenaltyKind::Bias, 1.5);
        let mut q = PenaltyList::<3>::new();
        q.add(2, PenaltyKind::Bias, 1.5);
        assert_eq!(p, q);
        // Epoch means: `self += other · w`, then `· k`.
        let mut e = PenaltyList::<1>::new();
        e.add_weighted(&p, 2.0);
        e.add_weighted(&q, 2.0);
        e.scale(0.25);
        assert_eq!(keys(&e), vec![(2, PenaltyKind::Bias, 1.5)]);
    }
}
