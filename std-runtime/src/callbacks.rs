//! Keras callbacks that steer training from the host: [`ReduceLROnPlateau`] (the learning
//! rate of any optimizer with a constant rate, through [`LearningRateControl`]), and Keras'
//! `class_weight` / `sample_weight` ([`class_weights`], [`sample_weights`]), including
//! scikit-learn's `balanced` class weights.
//!
//! ```
//! use microfit::callbacks::{ReduceLROnPlateau, LearningRateControl};
//! use microfit::core::optim::{AnyOptimizer, Sgd};
//! use microfit::model::VecParams;
//! let mut opt: AnyOptimizer<VecParams> = AnyOptimizer::Sgd(Sgd::new(0.1)?);
//! let cb = ReduceLROnPlateau { monitor: "loss".into(), patience: 1, factor: 0.5, ..Default::default() };
//! let mut st = cb.start();
//! for loss in [1.0, 1.5, 2.0] {
//!     cb.on_epoch_end(&mut st, &[("loss".into(), loss)], &mut opt)?;
//! }
//! assert_eq!(opt.learning_rate()?, 0.025); // reduced after epochs 2 and 3
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use microfit_core::loss::Target;
use microfit_core::math::keras_decimal;
use microfit_core::optim::schedule::Schedule;
use microfit_core::optim::{AnyOptimizer, Ema};
use microfit_core::params::Params;
use microfit_core::train::Samples;
use serde::{Deserialize, Serialize};

/// Why a callback could not do its work.
#[derive(Debug, Clone, PartialEq)]
pub enum CallbackError {
    /// The optimizer's learning rate is a schedule: Keras refuses to set it too.
    ScheduledLearningRate,
    /// A setting out of Keras' range (`name`: why).
    Invalid {
        /// The setting.
        name: &'static str,
        /// Why.
        reason: &'static str,
    },
}

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallbackError::ScheduledLearningRate => f.write_str(
                "the optimizer's learning rate is a schedule; ReduceLROnPlateau needs a constant \
                 learning rate (Keras refuses to set a scheduled one)",
            ),
            CallbackError::Invalid { name, reason } => write!(f, "{name}: {reason}"),
        }
    }
}

impl std::error::Error for CallbackError {}

/// An optimizer whose (constant) learning rate a callback can read and set (Keras
/// `optimizer.learning_rate`).
pub trait LearningRateControl {
    /// The current learning rate.
    ///
    /// # Errors
    /// [`CallbackError::ScheduledLearningRate`] for a schedule.
    fn learning_rate(&self) -> Result<f32, CallbackError>;
    /// Sets it.
    ///
    /// # Errors
    /// [`CallbackError::ScheduledLearningRate`] for a schedule.
    fn set_learning_rate(&mut self, lr: f32) -> Result<(), CallbackError>;
}

/// The constant of a schedule.
fn constant(s: &Schedule) -> Result<f32, CallbackError> {
    match s {
        Schedule::Constant(lr) => Ok(*lr),
        _ => Err(CallbackError::ScheduledLearningRate),
    }
}

impl<P: Params> LearningRateControl for AnyOptimizer<P> {
    fn learning_rate(&self) -> Result<f32, CallbackError> {
        constant(match self {
            AnyOptimizer::Sgd(o) => &o.learning_rate,
            AnyOptimizer::Momentum(o) => &o.learning_rate,
            AnyOptimizer::Adam(o) => &o.config.learning_rate,
        })
    }

    fn set_learning_rate(&mut self, lr: f32) -> Result<(), CallbackError> {
        let s = match self {
            AnyOptimizer::Sgd(o) => &mut o.learning_rate,
            AnyOptimizer::Momentum(o) => &mut o.learning_rate,
            AnyOptimizer::Adam(o) => &mut o.config.learning_rate,
        };
        constant(s)?;
        *s = Schedule::Constant(lr);
        Ok(())
    }
}

impl<O: LearningRateControl, P> LearningRateControl for Ema<O, P> {
    fn learning_rate(&self) -> Result<f32, CallbackError> {
        self.inner.learning_rate()
    }
    fn set_learning_rate(&mut self, lr: f32) -> Result<(), CallbackError> {
        self.inner.set_learning_rate(lr)
    }
}

/// Whether the monitored value should go down or up (Keras `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// From the monitored name: up for accuracies (`accuracy`, `acc`, `auc`, `val_…` of
    /// them), down otherwise (losses, errors).
    #[default]
    Auto,
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

/// Keras `ReduceLROnPlateau(monitor, factor, patience, mode, min_delta, cooldown, min_lr)`:
/// multiplies the learning rate by `factor` (never below `min_lr`) when the monitored value
/// has not improved by more than `min_delta` for `patience` epochs, then waits `cooldown`
/// epochs. Keras' arithmetic: the values in double precision, the new rate stored as float32.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReduceLROnPlateau {
    /// The history key watched (Keras default `val_loss`).
    pub monitor: String,
    /// Factor of each reduction, in `(0, 1)` (default 0.1).
    pub factor: f32,
    /// Epochs without improvement before a reduction (default 10).
    pub patience: u32,
    /// Lower or higher is better (default: from the name).
    pub mode: Mode,
    /// Smallest change that counts as an improvement (default 1e-4).
    pub min_delta: f32,
    /// Epochs to wait after a reduction (default 0).
    pub cooldown: u32,
    /// Lowest learning rate (default 0).
    pub min_lr: f32,
}

impl Default for ReduceLROnPlateau {
    fn default() -> Self {
        ReduceLROnPlateau {
            monitor: "val_loss".into(),
            factor: 0.1,
            patience: 10,
            mode: Mode::Auto,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
        }
    }
}

/// What [`ReduceLROnPlateau`] carries from epoch to epoch (part of a checkpoint).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PlateauState {
    /// Best value so far (`None` before the first epoch).
    pub best: Option<f64>,
    /// Epochs since the last improvement.
    pub wait: u32,
    /// Epochs of cooldown left.
    pub cooldown_counter: u32,
}

impl ReduceLROnPlateau {
    /// Checks Keras' ranges.
    ///
    /// # Errors
    /// [`CallbackError::Invalid`] for `factor ≥ 1` (Keras refuses it), a factor ≤ 0 or not
    /// finite, a negative or non-finite `min_lr` or `min_delta`.
    pub fn validate(&self) -> Result<(), CallbackError> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(CallbackError::Invalid {
                name: "factor",
                reason: "must be in (0, 1)",
            });
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0) {
            return Err(CallbackError::Invalid {
                name: "min_lr",
                reason: "must be finite and >= 0",
            });
        }
        if !self.min_delta.is_finite() {
            return Err(CallbackError::Invalid {
                name: "min_delta",
                reason: "must be finite",
            });
        }
        Ok(())
    }

    /// Keras `on_train_begin`: a fresh state.
    pub fn start(&self) -> PlateauState {
        PlateauState::default()
    }

    /// Whether higher values of the monitored key are better.
    fn maximize(&self) -> bool {
        match self.mode {
            Mode::Min => false,
            Mode::Max => true,
            Mode::Auto => {
                let name = self.monitor.strip_prefix("val_").unwrap_or(&self.monitor);
                matches!(name, "accuracy" | "acc" | "auc" | "binary_accuracy")
            }
        }
    }

    /// Keras `on_epoch_end` with the epoch's history row `logs`: may reduce `opt`'s learning
    /// rate; returns the new rate when it did. A monitored key missing from `logs` changes
    /// nothing (Keras warns).
    ///
    /// # Errors
    /// [`CallbackError::ScheduledLearningRate`] when a reduction is due and the rate is a
    /// schedule.
    pub fn on_epoch_end(
        &self,
        st: &mut PlateauState,
        logs: &[(String, f32)],
        opt: &mut impl LearningRateControl,
    ) -> Result<Option<f32>, CallbackError> {
        let Some(current) = logs
            .iter()
            .find(|(k, _)| *k == self.monitor)
            .map(|(_, v)| f64::from(*v))
        else {
            return Ok(None);
        };
        if st.cooldown_counter > 0 {
            st.cooldown_counter -= 1;
            st.wait = 0;
        }
        // Keras: `monitor_op(current - min_delta, best)`; `min_delta` is `abs`-ed.
        let delta = keras_decimal(self.min_delta.abs());
        let improved = match st.best {
            None => true,
            Some(best) if self.maximize() => current - delta > best,
            Some(best) => current - delta < best,
        };
        if improved {
            st.best = Some(current);
            st.wait = 0;
            return Ok(None);
        }
        if st.cooldown_counter > 0 {
            return Ok(None);
        }
        st.wait += 1;
        if st.wait < self.patience {
            return Ok(None);
        }
        let old = f64::from(opt.learning_rate()?);
        let min_lr = keras_decimal(self.min_lr);
        if old <= f64::from(self.min_lr) {
            return Ok(None);
        }
        let new = (old * keras_decimal(self.factor)).max(min_lr) as f32;
        opt.set_learning_rate(new)?;
        st.cooldown_counter = self.cooldown;
        st.wait = 0;
        Ok(Some(new))
    }
}

/// Keras' `class_weight` argument, or scikit-learn's `balanced` recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    /// `compute_class_weight("balanced", classes=np.unique(y), y=y)`: class `c` weighs
    /// `n / (k · count(c))`, `k` the number of classes present.
    Balanced,
    /// One weight per class index (a class not listed weighs 1, as in Keras).
    Given(Vec<(u32, f32)>),
}

/// The class index Keras' `class_weight` reads from a target: the label, the argmax of a
/// one-hot row, or a single value rounded (binary targets).
fn class_of(t: Target<'_>) -> usize {
    match t {
        Target::Dense([v]) => v.round().max(0.0) as usize,
        t => t.class(),
    }
}

/// The weight of each class index `0..` up to the largest class seen (`w[c]`, 1 for a class
/// with no weight). `balanced` in double precision, then float32.
///
/// ```
/// use microfit::callbacks::{ClassWeight, class_weights};
/// use microfit::core::train::{Samples, Targets};
/// let y = [0u32, 0, 0, 1, 2, 2];
/// let s = Samples::new(&[0.0; 6], 1, Targets::Classes(&y))?;
/// // 6 samples, 3 classes: 6 / (3 · 3), 6 / (3 · 1), 6 / (3 · 2).
/// assert_eq!(class_weights(&ClassWeight::Balanced, &s), [2.0 / 3.0, 2.0, 1.0]);
/// # Ok::<(), microfit::core::Error>(())
/// ```
pub fn class_weights(cw: &ClassWeight, samples: &Samples<'_>) -> Vec<f32> {
    let classes: Vec<usize> = (0..samples.len())
        .map(|i| class_of(samples.target(i)))
        .collect();
    let n_classes = classes.iter().max().map_or(0, |m| m + 1);
    match cw {
        ClassWeight::Balanced => {
            let mut count = vec![0usize; n_classes];
            for &c in &classes {
                count[c] += 1;
            }
            let present = count.iter().filter(|&&c| c > 0).count().max(1);
            let n = classes.len() as f64;
            count
                .iter()
                .map(|&c| {
                    if c == 0 {
                        1.0
                    } else {
                        (n / (present as f64 * c as f64)) as f32
                    }
                })
                .collect()
        }
        ClassWeight::Given(list) => {
            let top = list
                .iter()
                .map(|(c, _)| *c as usize + 1)
                .max()
                .unwrap_or(0)
                .max(n_classes);
            let mut w = vec![1.0f32; top];
            for &(c, v) in list {
                w[c as usize] = v;
            }
            w
        }
    }
}

/// Keras' conversion of `class_weight` to `sample_weight`: each sample weighs its class'
/// weight ([`class_weights`]). Give the result to
/// [`Samples::with_sample_weights`](microfit_core::train::Samples::with_sample_weights).
pub fn sample_weights(cw: &ClassWeight, samples: &Samples<'_>) -> Vec<f32> {
    let w = class_weights(cw, samples);
    (0..samples.len())
        .map(|i| w.get(class_of(samples.target(i))).copied().unwrap_or(1.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use microfit_core::optim::Sgd;
    use microfit_core::train::Targets;

    /// Keras 3.15's own `ReduceLROnPlateau` on the same history (float32 values), SGD(0.1), the
    /// rates it set as float32 bits:
    /// ```python
    /// cb = keras.callbacks.ReduceLROnPlateau(**kw); cb.set_model(m); cb.on_train_begin()
    /// for e, v in enumerate(vals):
    ///     v = float(np.float32(v)); cb.on_epoch_end(e, {"loss": v, "val_loss": v, "accuracy": v})
    ///     lrs.append(float(np.float32(m.optimizer.learning_rate.numpy())))
    /// ```
    #[test]
    fn the_learning_rates_keras_sets() {
        let vals = [
            1.0f32, 0.9, 0.95, 0.95, 0.91, 0.92, 0.93, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6,
            0.6, 0.6,
        ];
        let cases: [(ReduceLROnPlateau, [u32; 18]); 3] = [
            (
                ReduceLROnPlateau {
                    monitor: "loss".into(),
                    factor: 0.5,
                    patience: 2,
                    min_delta: 0.01,
                    cooldown: 1,
                    min_lr: 0.01,
                    mode: Mode::Auto,
                },
                [
                    0x3dcccccd, 0x3dcccccd, 0x3dcccccd, 0x3d4ccccd, 0x3d4ccccd, 0x3ccccccd,
                    0x3ccccccd, 0x3ccccccd, 0x3ccccccd, 0x3c4ccccd, 0x3c4ccccd, 0x3c23d70a,
                    0x3c23d70a, 0x3c23d70a, 0x3c23d70a, 0x3c23d70a, 0x3c23d70a, 0x3c23d70a,
                ],
            ),
            (
                ReduceLROnPlateau {
                    monitor: "val_loss".into(),
                    factor: 0.3,
                    patience: 1,
                    min_delta: 0.0,
                    cooldown: 0,
                    min_lr: 0.0,
                    mode: Mode::Auto,
                },
                [
                    0x3dcccccd, 0x3dcccccd, 0x3cf5c290, 0x3c1374bd, 0x3b30f27c, 0x3a54562e,
                    0x397ecdd1, 0x397ecdd1, 0x3898e1e4, 0x37b77578, 0x36dc2690, 0x36041723,
                    0x351e822a, 0x343e35cc, 0x3364408e, 0x3288f388, 0x31a45770, 0x30c535ba,
                ],
            ),
            (
                ReduceLROnPlateau {
                    monitor: "accuracy".into(),
                    factor: 0.2,
                    patience: 3,
                    min_delta: 0.05,
                    cooldown: 2,
                    min_lr: 0.001,
                    mode: Mode::Max,
                },
                [
                    0x3dcccccd, 0x3dcccccd, 0x3dcccccd, 0x3ca3d70a, 0x3ca3d70a, 0x3ca3d70a,
                    0x3ca3d70a, 0x3b83126e, 0x3b83126e, 0x3b83126e, 0x3b83126e, 0x3a83126f,
                    0x3a83126f, 0x3a83126f, 0x3a83126f, 0x3a83126f, 0x3a83126f, 0x3a83126f,
                ],
            ),
        ];
        for (cb, want) in cases {
            let mut opt: AnyOptimizer<()> = AnyOptimizer::Sgd(Sgd::new(0.1).unwrap());
            let mut st = cb.start();
            for (e, (&v, &w)) in vals.iter().zip(&want).enumerate() {
                let logs = [
                    ("loss".to_string(), v),
                    ("val_loss".to_string(), v),
                    ("accuracy".to_string(), v),
                ];
                cb.on_epoch_end(&mut st, &logs, &mut opt).unwrap();
                let lr = opt.learning_rate().unwrap();
                assert_eq!(lr.to_bits(), w, "{} epoch {e}: {lr}", cb.monitor);
            }
        }
    }

    #[test]
    fn a_schedule_cannot_be_reduced() {
        use microfit_core::optim::ExponentialDecay;
        let sched = Schedule::Exponential(ExponentialDecay::new(0.1, 10, 0.5, false).unwrap());
        let mut opt: AnyOptimizer<()> =
            AnyOptimizer::Sgd(Sgd::with(sched, Default::default()).unwrap());
        let cb = ReduceLROnPlateau {
            monitor: "loss".into(),
            patience: 1,
            ..Default::default()
        };
        let mut st = cb.start();
        cb.on_epoch_end(&mut st, &[("loss".to_string(), 1.0f32)], &mut opt)
            .unwrap();
        let e = cb
            .on_epoch_end(&mut st, &[("loss".to_string(), 2.0f32)], &mut opt)
            .unwrap_err();
        assert_eq!(e, CallbackError::ScheduledLearningRate);
        assert!(
            ReduceLROnPlateau {
                factor: 1.0,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn class_weights_from_labels_one_hot_and_binary_targets() {
        // Sparse labels, class 3 absent: weight 1 (Keras' default); 3 classes present.
        let y = [0u32, 0, 1, 4, 4, 4];
        let s = Samples::new(&[0.0; 6], 1, Targets::Classes(&y)).unwrap();
        let w = class_weights(&ClassWeight::Balanced, &s);
        assert_eq!(w, [1.0, 2.0, 1.0, 1.0, (6.0f64 / 9.0) as f32]);
        assert_eq!(
            sample_weights(&ClassWeight::Balanced, &s),
            [1.0, 1.0, 2.0, w[4], w[4], w[4]]
        );
        // One-hot rows: the argmax; a given weight for class 1 only.
        let onehot = [1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0];
        let s = Samples::new(
            &[0.0; 3],
            1,
            Targets::Dense {
                values: &onehot,
                width: 2,
            },
        )
        .unwrap();
        assert_eq!(
            sample_weights(&ClassWeight::Given(vec![(1, 5.0)]), &s),
            [1.0, 5.0, 5.0]
        );
        // Binary targets (one value per sample): rounded, as Keras.
        let b = [0.0f32, 1.0, 1.0, 1.0];
        let s = Samples::new(
            &[0.0; 4],
            1,
            Targets::Dense {
                values: &b,
                width: 1,
            },
        )
        .unwrap();
        assert_eq!(
            sample_weights(&ClassWeight::Balanced, &s),
            [2.0, 4.0 / 6.0, 4.0 / 6.0, 4.0 / 6.0].map(|v: f64| v as f32)
        );
    }
}
