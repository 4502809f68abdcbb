//! Optimizers with Keras' update formulas, over any [`Params`] storage.
//!
//! One step, in Keras' order: clip gradients (`clipvalue`, `clipnorm`, `global_clipnorm`)
//! → decoupled weight decay `w -= w·wd·lr` → the optimizer's update → `iterations += 1`.
//! State (momentum, Adam's `m` and `v`) lives in parameter sets of the same type as the
//! model's weights — fixed arrays for typed models — so its size is known at compile time.
//! [`Sgd`] without momentum has no slot at all.
//!
//! | Keras | here | slots |
//! |---|---|---|
//! | `SGD(lr)` | [`Sgd`] | 0 |
//! | `SGD(lr, momentum, nesterov)` | [`Momentum`] | 1 |
//! | `Adam(lr, beta_1, beta_2, epsilon=1e-7)` | [`Adam`] | 2 |
//! | `AdamW(lr, weight_decay=0.004)` / `Adam(weight_decay=…)` | [`Adam::adamw`] | 2 |

pub mod adam;
pub mod clip;
pub mod decay;
pub mod ema;
pub mod schedule;
pub mod sgd;

pub use adam::{Adam, AdamConfig, AdamState};
pub use clip::Clip;
pub use decay::ExcludeFromWeightDecay;
pub use ema::{Ema, EmaConfig};
pub use schedule::{ExponentialDecay, LearningRate};
pub use sgd::{Momentum, Sgd};

use crate::backend::Backend;
use crate::error::{Error, check_non_negative};
use crate::params::Params;
use crate::regularizer::SumSqs;

/// An optimizer over parameter sets of type `P`.
pub trait Optimizer<P: Params> {
    /// Number of state slots per parameter (0 for SGD, 1 for momentum, 2 for Adam).
    const SLOTS: usize;
    /// Applies one update of `w` from the gradient `g` (which may be clipped in place), its
    /// loops run by the backend `B` (the same bits on every backend).
    fn step<B: Backend>(&mut self, w: &mut P, g: &mut P);
    /// [`Optimizer::step`], and `Σw²` of each updated tensor that `sq` wants, computed in the
    /// update's own loop ([`SumSqs`]: the bits of [`crate::regularizer::sum_sq`] on the new
    /// weights), for the next step's L2 penalties. Every sum of `sq` is stale once the weights
    /// change, so an implementation invalidates them first and sets only those it computed on
    /// the weights it leaves. The default, for an optimizer that does not compute them (or
    /// writes the weights again after its update, as an EMA's overwrite does), is that and
    /// [`Optimizer::step`]: always correct.
    #[inline]
    fn step_sq<B: Backend>(&mut self, w: &mut P, g: &mut P, sq: &mut SumSqs) {
        sq.invalidate();
        self.step::<B>(w, g);
    }
    /// Updates done so far (Keras `optimizer.iterations`).
    fn iterations(&self) -> u32;
    /// Resets the state (slots to zero, `iterations` to 0), keeping the hyperparameters.
    fn reset(&mut self);
    /// Keras `finalize_variable_values`, which `fit` calls after the last epoch: with an EMA
    /// ([`Ema`]) the weights `w` become their moving averages; otherwise nothing.
    #[inline]
    fn finalize_variable_values(&self, _w: &mut P) {}
}

/// Settings shared by every optimizer (Keras base-optimizer arguments).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Common {
    /// Decoupled weight decay factor (`w -= w·wd·lr` before the update), on every tensor.
    pub weight_decay: Option<f32>,
    /// Gradient clipping.
    pub clip: Clip,
    /// Keras `exclude_from_weight_decay(var_names=…)`: variables left out of the decay.
    #[cfg_attr(feature = "serde", serde(default))]
    pub exclude_from_weight_decay: ExcludeFromWeightDecay,
}

impl Common {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a negative or non-finite value.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(wd) = self.weight_decay {
            check_non_negative("weight_decay", wd)?;
        }
        self.clip.validate()
    }

    /// Clip then weight decay, as Keras does before `update_step`.
    #[inline]
    pub(crate) fn before_update<P: Params>(&self, w: &mut P, g: &mut P, lr: f32) {
        if self.weight_decay.is_some() || !self.clip.is_off() {
            self.clip_and_decay(w, g, lr);
        }
    }

    /// The work of [`Common::before_update`], out of line: once per step, and one copy of the
    /// loops instead of one per optimizer step call site (firmware size).
    #[inline(never)]
    fn clip_and_decay<P: Params>(&self, w: &mut P, g: &mut P, lr: f32) {
        self.clip.apply(g);
        if let Some(wd) = self.weight_decay {
            for i in 0..w.tensor_count() {
                if !self.exclude_from_weight_decay.excludes(w.variable_name(i)) {
                    weight_decay(w.tensor_mut(i), wd, lr);
                }
            }
        }
    }
}

/// Keras' decoupled weight decay: `w = w - w·wd·lr`.
///
/// ```
/// let mut w = [2.0f32];
/// microfit_core::optim::weight_decay(&mut w, 0.5, 0.1);
/// assert_eq!(w[0], 2.0 - 2.0 * 0.5 * 0.1);
/// ```
#[inline]
pub fn weight_decay(w: &mut [f32], wd: f32, lr: f32) {
    for x in w {
        *x = *x - *x * wd * lr;
    }
}

/// An optimizer chosen at run time (std runtime, golden runner, CLI).
#[derive(Debug, Clone)]
pub enum AnyOptimizer<P: Params> {
    /// Plain SGD.
    Sgd(Sgd),
    /// SGD with momentum.
    Momentum(Momentum<P>),
    /// Adam / AdamW.
    Adam(Adam<P>),
}

impl<P: Params> AnyOptimizer<P> {
    /// Slots per parameter of the chosen optimizer.
    pub fn slots(&self) -> usize {
        match self {
            AnyOptimizer::Sgd(_) => 0,
            AnyOptimizer::Momentum(_) => 1,
            AnyOptimizer::Adam(_) => 2,
        }
    }

    /// Slot tensors by name (`"momentum"`, `"m"`, `"v"`), for inspection and tests.
    pub fn slot(&self, name: &str) -> Option<&P> {
        match (self, name) {
            (AnyOptimizer::Momentum(m), "momentum") => Some(m.velocity()),
            (AnyOptimizer::Adam(a), "m") => Some(a.m()),
            (AnyOptimizer::Adam(a), "v") => Some(a.v()),
            _ => None,
        }
    }

    /// Mutable slot tensors by name (to restore a checkpoint).
    pub fn slot_mut(&mut self, name: &str) -> Option<&mut P> {
        match (self, name) {
            (AnyOptimizer::Momentum(m), "momentum") => Some(m.velocity_mut()),
            (AnyOptimizer::Adam(a), "m") => Some(a.m_mut()),
            (AnyOptimizer::Adam(a), "v") => Some(a.v_mut()),
            _ => None,
        }
    }

    /// The settings shared by every optimizer (weight decay, clipping,
    /// `exclude_from_weight_decay`), mutable.
    pub fn common_mut(&mut self) -> &mut Common {
        match self {
            AnyOptimizer::Sgd(o) => &mut o.common,
            AnyOptimizer::Momentum(o) => &mut o.common,
            AnyOptimizer::Adam(o) => &mut o.config.common,
        }
    }

    /// Sets the iteration counter (to resume from a checkpoint).
    pub fn set_iterations(&mut self, t: u32) {
        match self {
            AnyOptimizer::Sgd(o) => o.set_iterations(t),
            AnyOptimizer::Momentum(o) => o.set_iterations(t),
            AnyOptimizer::Adam(o) => o.set_iterations(t),
        }
    }
}

impl<P: Params> Optimizer<P> for AnyOptimizer<P> {
    const SLOTS: usize = 2;
    fn step<B: Backend>(&mut self, w: &mut P, g: &mut P) {
        match self {
            AnyOptimizer::Sgd(o) => o.step::<B>(w, g),
            AnyOptimizer::Momentum(o) => o.step::<B>(w, g),
            AnyOptimizer::Adam(o) => o.step::<B>(w, g),
        }
    }
    fn step_sq<B: Backend>(&mut self, w: &mut P, g: &mut P, sq: &mut SumSqs) {
        match self {
            AnyOptimizer::Sgd(o) => o.step_sq::<B>(w, g, sq),
            AnyOptimizer::Momentum(o) => o.step_sq::<B>(w, g, sq),
            AnyOptimizer::Adam(o) => o.step_sq::<B>(w, g, sq),
        }
    }
    fn iterations(&self) -> u32 {
        match self {
            AnyOptimizer::Sgd(o) => <Sgd as Optimizer<P>>::iterations(o),
            AnyOptimizer::Momentum(o) => o.iterations(),
            AnyOptimizer::Adam(o) => o.iterations(),
        }
    }
    fn reset(&mut self) {
        match self {
            AnyOptimizer::Sgd(o) => <Sgd as Optimizer<P>>::reset(o),
            AnyOptimizer::Momentum(o) => o.reset(),
            AnyOptimizer::Adam(o) => o.reset(),
        }
    }
}
