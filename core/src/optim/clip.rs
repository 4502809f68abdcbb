//! Gradient clipping (Keras `clipvalue`, `clipnorm`, `global_clipnorm`).

use crate::error::{Error, check_positive};
use crate::math;
use crate::params::Params;

/// Gradient clipping settings; all `None` by default (no clipping).
///
/// * `clipvalue`: `g = clip(g, -v, v)` elementwise;
/// * `clipnorm`: each tensor scaled by `c / max(‖g‖, c)`;
/// * `global_clipnorm`: all tensors scaled by `c · min(1/‖g‖_global, 1/c)`.
///
/// Norms are summed in TensorFlow's order and the formulas are Keras' own, so a clipped update
/// matches Keras to the bit (`optimizer_long_k3.json`).
///
/// ```
/// use microfit_core::optim::clip::clip_by_norm;
/// let mut t = [3.0f32, 4.0];
/// clip_by_norm(&mut t, 1.0);
/// assert_eq!(t, [3.0 * 1.0 / 5.0, 4.0 * 1.0 / 5.0]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Clip {
    /// Elementwise clip value.
    pub clipvalue: Option<f32>,
    /// Per-tensor norm limit.
    pub clipnorm: Option<f32>,
    /// Global norm limit.
    pub global_clipnorm: Option<f32>,
}

impl Clip {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a non-positive or non-finite limit, or when
    /// both `clipnorm` and `global_clipnorm` are set (Keras rejects that too).
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(v) = self.clipvalue {
            check_positive("clipvalue", v)?;
        }
        if let Some(v) = self.clipnorm {
            check_positive("clipnorm", v)?;
        }
        if let Some(v) = self.global_clipnorm {
            check_positive("global_clipnorm", v)?;
        }
        if self.clipnorm.is_some() && self.global_clipnorm.is_some() {
            return Err(Error::InvalidHyperparameter {
                name: "clipnorm",
                reason: crate::error::Reason::TwoClipNorms,
            });
        }
        Ok(())
    }

    /// True when no clipping is set (the default).
    ///
    /// ```
    /// use microfit_core::optim::Clip;
    /// assert!(Clip::default().is_off());
    /// assert!(!Clip { clipnorm: Some(1.0), ..Clip::default() }.is_off());
    /// ```
    pub fn is_off(&self) -> bool {
        self.clipvalue.is_none() && self.clipnorm.is_none() && self.global_clipnorm.is_none()
    }

    /// Applies the clipping to every gradient tensor of `g`.
    pub fn apply<P: Params>(&self, g: &mut P) {
        if let Some(c) = self.global_clipnorm {
            // Keras `clip_by_global_norm`: `n = sqrt(sum(stack([sum(square(t)) for t])))`,
            // `scale = c · min(1/n, 1/c) + (n - n)`, `t · scale`; `1/c` in double precision on
            // the Python float, the sums in TensorFlow's order.
            let sq =
                math::reduce::tf_sum_by(g.tensor_count(), |i| math::reduce::tf_sum_sq(g.tensor(i)));
            let norm = math::sqrt(sq);
            let inv_norm = 1.0 / norm;
            let inv_c = (1.0 / math::keras_decimal(c)) as f32;
            let smaller = if inv_norm.is_nan() || inv_norm < inv_c {
                inv_norm
            } else {
                inv_c
            };
            // Keras adds `n - n`, which makes the scale NaN when the norm is not finite: the
            // gradients are finite here (checked before the update), so that is a norm whose
            // square overflowed, and NaN weights would follow. The core clips them to 0 instead
            // (what `clipnorm` does in that case, in Keras too); a finite norm is Keras' bits.
            let scale = if norm.is_finite() { c * smaller } else { 0.0 };
            for i in 0..g.tensor_count() {
                for x in g.tensor_mut(i) {
                    *x *= scale;
                }
            }
        }
        if let Some(c) = self.clipnorm {
            for i in 0..g.tensor_count() {
                clip_by_norm(g.tensor_mut(i), c);
            }
        }
        if let Some(v) = self.clipvalue {
            for i in 0..g.tensor_count() {
                // Not `f32::clamp`: its assertion links float formatting into firmware.
                for x in g.tensor_mut(i) {
                    if *x > v {
                        *x = v;
                    } else if *x < -v {
                        *x = -v;
                    }
                }
            }
        }
    }
}

/// Keras `_clip_by_norm`: `(g · c) / max(‖g‖, c)`, with `‖g‖² = sum(square(g))` summed in
/// TensorFlow's order ([`math::reduce::tf_sum_sq`]): the same bits as Keras.
pub fn clip_by_norm(g: &mut [f32], c: f32) {
    let sq = math::reduce::tf_sum_sq(g);
    let norm = if sq > 0.0 { math::sqrt(sq) } else { sq };
    let denom = if norm > c { norm } else { c };
    for x in g {
        *x = *x * c / denom;
    }
}
