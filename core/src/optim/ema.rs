//! Keras' exponential moving average of the weights (`use_ema=True`, `ema_momentum`,
//! `ema_overwrite_frequency`) around any optimizer: [`Ema`].
//!
//! After each update, in Keras' order (`BaseOptimizer._backend_apply_gradients`, before the
//! constraints and before `iterations += 1`), with `t` the updates done before this one:
//! ```text
//! m       = (t != 0) · ema_momentum            (0 on the first step: the average starts at w)
//! average = m · average + (1 − m) · w          (float32, 1 − m in float32)
//! if ema_overwrite_frequency and (t + 1) % ema_overwrite_frequency == 0:  w = average
//! ```
//! At the end of training Keras' `fit` calls `finalize_variable_values`, which copies the
//! averages into the weights: [`Optimizer::finalize_variable_values`] (the std runtime's
//! training loop calls it after the last epoch). The average is one more parameter set (one
//! slot, Keras' optimizer variable `average`).
//!
//! ```
//! use microfit_core::backend::Portable;
//! use microfit_core::layer::dense::DenseParams;
//! use microfit_core::optim::{Ema, EmaConfig, Optimizer, Sgd};
//! use microfit_core::params::ZeroParams;
//! let mut w = DenseParams::<1, 1>::zeroed();
//! let mut opt = Ema::new(Sgd::new(1.0)?, EmaConfig::new(0.5), &w)?;
//! for _ in 0..2 {
//!     let mut g = DenseParams::<1, 1>::zeroed();
//!     g.kernel[0][0] = -1.0; // w: 0 → 1 → 2
//!     opt.step::<Portable>(&mut w, &mut g);
//! }
//! assert_eq!(opt.average().kernel[0][0], 0.5 * 1.0 + 0.5 * 2.0); // first step: average = w
//! opt.finalize_variable_values(&mut w);
//! assert_eq!(w.kernel[0][0], 1.5);
//! # Ok::<(), microfit_core::Error>(())
//! ```

use super::Optimizer;
use crate::backend::Backend;
use crate::error::Error;
use crate::params::{Params, ZeroParams};

/// Keras' EMA settings (`use_ema=True` is having one).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EmaConfig {
    /// Keras `ema_momentum` in `[0, 1]` (default 0.99).
    pub ema_momentum: f32,
    /// Keras `ema_overwrite_frequency`: every this many updates the weights are overwritten
    /// with their averages (`None`, the default: only at the end).
    pub ema_overwrite_frequency: Option<u32>,
}

impl Default for EmaConfig {
    fn default() -> Self {
        EmaConfig::new(0.99)
    }
}

impl EmaConfig {
    /// `use_ema=True, ema_momentum=m` (no overwrite frequency).
    pub const fn new(ema_momentum: f32) -> Self {
        EmaConfig {
            ema_momentum,
            ema_overwrite_frequency: None,
        }
    }

    /// Checks Keras' ranges.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a momentum outside `[0, 1]` or a frequency of 0.
    pub fn validate(&self) -> Result<(), Error> {
        if !(0.0..=1.0).contains(&self.ema_momentum) {
            return Err(Error::InvalidHyperparameter {
                name: "ema_momentum",
                reason: crate::error::Reason::UnitInterval,
            });
        }
        if self.ema_overwrite_frequency == Some(0) {
            return Err(Error::InvalidHyperparameter {
                name: "ema_overwrite_frequency",
                reason: crate::error::Reason::IntegerOrNone,
            });
        }
        Ok(())
    }
}

/// The optimizer `O` with Keras' moving average of the weights (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct Ema<O, P> {
    /// The optimizer that updates the weights.
    pub inner: O,
    /// The EMA settings.
    pub config: EmaConfig,
    average: P,
}

impl<O, P: Params> Ema<O, P> {
    /// `inner` with `use_ema=True`; `like` gives the parameter structure (the average starts
    /// at 0 and is the weights after the first update).
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for invalid settings ([`EmaConfig::validate`]).
    pub fn new(inner: O, config: EmaConfig, like: &P) -> Result<Self, Error> {
        config.validate()?;
        let mut average = like.clone();
        average.fill(0.0);
        Ok(Ema {
            inner,
            config,
            average,
        })
    }

    /// The moving averages (Keras' optimizer variables `average`).
    pub fn average(&self) -> &P {
        &self.average
    }

    /// The moving averages, mutable (restoring a checkpoint).
    pub fn average_mut(&mut self) -> &mut P {
        &mut self.average
    }
}

impl<O, P: ZeroParams> Ema<O, P> {
    /// [`Ema::new`] for fixed-size parameters, without the validation (a configuration already
    /// checked, e.g. a constant in firmware).
    pub fn new_unchecked(inner: O, config: EmaConfig) -> Self {
        Ema {
            inner,
            config,
            average: P::zeroed(),
        }
    }
}

/// One EMA update of the averages `avg` from the weights `w` after update number `t + 1`:
/// `m = (t != 0)·momentum`, `avg = m·avg + (1 − m)·w` (Keras' float32 operations).
#[inline]
pub fn update_average<P: Params>(avg: &mut P, w: &P, t: u32, momentum: f32) {
    let m = if t != 0 { 1.0f32 } else { 0.0f32 } * momentum;
    let one_minus = 1.0 - m;
    for i in 0..w.tensor_count() {
        for (a, &v) in avg.tensor_mut(i).iter_mut().zip(w.tensor(i)) {
            *a = m * *a + one_minus * v;
        }
    }
}

impl<P: Params, O: Optimizer<P>> Optimizer<P> for Ema<O, P> {
    const SLOTS: usize = O::SLOTS + 1;

    fn step<B: Backend>(&mut self, w: &mut P, g: &mut P) {
        let t = self.inner.iterations();
        self.inner.step::<B>(w, g);
        update_average(&mut self.average, w, t, self.config.ema_momentum);
        if let Some(f) = self.config.ema_overwrite_frequency
            && f != 0
            && t.wrapping_add(1) % f == 0
        {
            w.copy_from(&self.average);
        }
    }

    fn iterations(&self) -> u32 {
        self.inner.iterations()
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.average.fill(0.0);
    }

    /// Keras `finalize_variable_values`: the weights become their moving averages.
    fn finalize_variable_values(&self, w: &mut P) {
        w.copy_from(&self.average);
    }
}
