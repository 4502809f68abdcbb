//! Learning-rate schedules (Keras `LearningRateSchedule`), evaluated at `iterations`.

use crate::error::{Error, check_positive};
use crate::math;

/// A learning rate as a function of the optimizer's `iterations` (updates done before this one).
///
/// A plain `f32` is a constant schedule.
///
/// ```
/// use microfit_core::optim::LearningRate;
/// assert_eq!(0.01f32.at(1000), 0.01);
/// ```
pub trait LearningRate {
    /// Learning rate for the update that follows `iterations` previous updates.
    fn at(&self, iterations: u32) -> f32;
}

impl LearningRate for f32 {
    #[inline]
    fn at(&self, _iterations: u32) -> f32 {
        *self
    }
}

/// Keras `ExponentialDecay`: `lr · rate^(step / decay_steps)`; with `staircase` the exponent is
/// floored, which is "step decay".
///
/// ```
/// use microfit_core::optim::{ExponentialDecay, LearningRate};
/// let s = ExponentialDecay::new(0.1, 10, 0.5, true)?;
/// assert_eq!(s.at(9), 0.1);
/// assert_eq!(s.at(10), 0.05);
/// # Ok::<(), microfit_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ExponentialDecay {
    /// Initial learning rate.
    pub initial_learning_rate: f32,
    /// Steps per decay period.
    pub decay_steps: u32,
    /// Factor per period.
    pub decay_rate: f32,
    /// Floor the exponent (step decay).
    pub staircase: bool,
}

impl ExponentialDecay {
    /// Checked constructor.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a non-positive learning rate, zero `decay_steps`
    /// or a non-positive `decay_rate`.
    pub fn new(lr: f32, decay_steps: u32, decay_rate: f32, staircase: bool) -> Result<Self, Error> {
        check_positive("initial_learning_rate", lr)?;
        check_positive("decay_rate", decay_rate)?;
        if decay_steps == 0 {
            return Err(Error::InvalidHyperparameter {
                name: "decay_steps",
                reason: crate::error::Reason::AtLeastOne,
            });
        }
        Ok(ExponentialDecay {
            initial_learning_rate: lr,
            decay_steps,
            decay_rate,
            staircase,
        })
    }
}

impl LearningRate for ExponentialDecay {
    fn at(&self, iterations: u32) -> f32 {
        let mut p = iterations as f32 / self.decay_steps.max(1) as f32;
        if self.staircase {
            p = math::floor(p);
        }
        self.initial_learning_rate * math::powf(self.decay_rate, p)
    }
}

/// A schedule chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Schedule {
    /// A constant rate.
    Constant(f32),
    /// Exponential or step decay.
    Exponential(ExponentialDecay),
}

impl Schedule {
    /// Checks the rate.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a non-finite or non-positive rate.
    pub fn validate(&self) -> Result<(), Error> {
        match *self {
            Schedule::Constant(lr) => check_positive("learning_rate", lr).map(|_| ()),
            Schedule::Exponential(e) => ExponentialDecay::new(
                e.initial_learning_rate,
                e.decay_steps,
                e.decay_rate,
                e.staircase,
            )
            .map(|_| ()),
        }
    }
}

impl LearningRate for Schedule {
    fn at(&self, iterations: u32) -> f32 {
        match self {
            Schedule::Constant(lr) => *lr,
            Schedule::Exponential(e) => e.at(iterations),
        }
    }
}

impl From<f32> for Schedule {
    fn from(lr: f32) -> Self {
        Schedule::Constant(lr)
    }
}
