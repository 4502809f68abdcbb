//! Losses with Keras semantics, per sample, with their gradients.
//!
//! Each function returns the **per-sample** loss; Keras' `sum_over_batch_size` reduction
//! (the mean over the batch) is applied by the training step, which also passes
//! `scale = 1 / batch_size` so the gradient written here is already that of the mean.
//!
//! | Keras | per-sample value | gradient |
//! |---|---|---|
//! | `mean_squared_error` | `mean_j (y_j - p_j)²` | `2 (p - y) / D` |
//! | `mean_absolute_error` | `mean_j |y_j - p_j|` | `sign(p - y) / D` |
//! | `binary_crossentropy` | `mean_j -(y log q + (1-y) log(1-q))`, `q = clip(p, ε, 1-ε)` | `(-(y/q) + (1-y)/(1-q)) / D` inside the clip, 0 outside |
//! | ... `from_logits` | `mean_j max(z,0) - z y + log1p(e^-|z|)` | `(σ(z) - y) / D` |
//! | `categorical_crossentropy` | `-Σ y log clip(p / Σp)` | through the normalisation and clip |
//! | ... `from_logits` | `Σ_j y_j (lse(z) - z_j)` | `softmax(z) Σy - y` |
//! | `sparse_categorical_crossentropy` | `log Σ clip(p) - log clip(p)_k` | `[ε ≤ p ≤ 1-ε] (1/Σc - δ_k / c_k)` |
//! | ... `from_logits` | `lse(z) - z_k` | `softmax(z) - onehot(k)` |
//!
//! `ε = 1e-7`. **Cached logits**: when the model's last activation is softmax (for CCE and
//! SCCE) or sigmoid (for BCE), Keras silently uses the logits formula; the training step does
//! the same through [`Loss::fuses_with`], so `softmax([40, -40, 0])` with label 1 costs 80.0,
//! not 16.118.

use crate::activation::{Activation, sigmoid};
use crate::backend::Backend;
use crate::error::Error;
use crate::layer::LossIo;
use crate::math;

/// Keras' `backend.epsilon()` as float32.
pub const EPSILON: f32 = 1e-7;

/// The target of one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target<'a> {
    /// A dense target vector (one-hot rows, probabilities, regression values, binary labels).
    Dense(&'a [f32]),
    /// A class index (sparse label); dense losses see it as a one-hot row.
    Class(u32),
}

impl Target<'_> {
    /// Element `j` of the (dense or implicit one-hot) target.
    #[inline]
    pub fn at(&self, j: usize) -> f32 {
        match *self {
            Target::Dense(t) => t.get(j).copied().unwrap_or(0.0),
            Target::Class(k) => {
                if k as usize == j {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// Index of the target class: the label, or the argmax of a dense row.
    pub fn class(&self) -> usize {
        match *self {
            Target::Class(k) => k as usize,
            Target::Dense(t) => argmax(t),
        }
    }
}

/// A sample's target as a loss reads it: the target itself ([`Target`]) or Keras' smoothed
/// labels ([`Smoothed`]). The loss functions are generic over it, so a loss without label
/// smoothing runs (and links) exactly the code it ran before smoothing existed.
trait TargetRow: Copy {
    /// Element `j`.
    fn at(&self, j: usize) -> f32;
    /// The class label of a sparse target (the one-hot fast path), if it is one.
    fn label(&self) -> Option<u32>;
    /// The values of a dense target, if it is one.
    fn values(&self) -> Option<&[f32]>;
    /// The class index (a label, or the argmax of a dense row).
    fn class(&self) -> usize;
}

impl TargetRow for Target<'_> {
    #[inline(always)]
    fn at(&self, j: usize) -> f32 {
        Target::at(self, j)
    }
    #[inline(always)]
    fn label(&self) -> Option<u32> {
        match *self {
            Target::Class(k) => Some(k),
            Target::Dense(_) => None,
        }
    }
    #[inline(always)]
    fn values(&self) -> Option<&[f32]> {
        match *self {
            Target::Dense(t) => Some(t),
            Target::Class(_) => None,
        }
    }
    #[inline(always)]
    fn class(&self) -> usize {
        Target::class(self)
    }
}

/// Keras' label smoothing of a target: element `j` is `y_j·a + b` in float32
/// ([`Loss::smoothing`]).
#[derive(Debug, Clone, Copy)]
struct Smoothed<'a> {
    t: Target<'a>,
    a: f32,
    b: f32,
}

impl TargetRow for Smoothed<'_> {
    #[inline]
    fn at(&self, j: usize) -> f32 {
        self.t.at(j) * self.a + self.b
    }
    fn label(&self) -> Option<u32> {
        None
    }
    fn values(&self) -> Option<&[f32]> {
        None
    }
    fn class(&self) -> usize {
        self.t.class()
    }
}

/// Index of the largest value (first one on ties; 0 for an empty slice).
///
/// ```
/// assert_eq!(microfit_core::loss::argmax(&[0.1, 0.7, 0.2]), 1);
/// ```
pub fn argmax(v: &[f32]) -> usize {
    // The scan `if x > m { m = x; best = i }`; a long row in two halves (the right half's pick
    // wins only when strictly larger: the scan's index, with two shorter chains).
    if v.len() <= crate::activation::SPLIT_ROWS {
        return first_max(v).1;
    }
    let h = v.len() / 2;
    let (a, b) = v.split_at(h);
    let ((m1, a1, _), (m2, a2, _)) = (first_max(a), first_max(b));
    if m2 > m1 { a2 + h } else { a1 }
}

/// A loss function (Keras names and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Loss {
    /// `mean_squared_error`.
    MeanSquaredError,
    /// `mean_absolute_error`.
    MeanAbsoluteError,
    /// `binary_crossentropy`.
    BinaryCrossentropy {
        /// Predictions are logits.
        from_logits: bool,
        /// Keras `label_smoothing` in `[0, 1]`: targets become `y·(1 − ls) + ls/2` (0: none).
        #[cfg_attr(feature = "serde", serde(default))]
        label_smoothing: f32,
    },
    /// `categorical_crossentropy`.
    CategoricalCrossentropy {
        /// Predictions are logits.
        from_logits: bool,
        /// Keras `label_smoothing` in `[0, 1]`: targets become `y·(1 − ls) + ls/classes`
        /// (0: none).
        #[cfg_attr(feature = "serde", serde(default))]
        label_smoothing: f32,
    },
    /// `sparse_categorical_crossentropy`.
    SparseCategoricalCrossentropy {
        /// Predictions are logits.
        from_logits: bool,
    },
}

impl Loss {
    /// Keras identifier.
    ///
    /// ```
    /// use microfit_core::Loss;
    /// assert_eq!(Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 }.keras_name(), "categorical_crossentropy");
    /// ```
    pub fn keras_name(&self) -> &'static str {
        match self {
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
        }
    }

    /// Parses a Keras identifier (`mse`, `mae`, `categorical_crossentropy`, ...), probabilities.
    ///
    /// ```
    /// use microfit_core::Loss;
    /// assert_eq!(Loss::from_keras_name("mse"), Some(Loss::MeanSquaredError));
    /// ```
    pub fn from_keras_name(name: &str) -> Option<Self> {
        Some(match name {
            "mse" | "mean_squared_error" | "MeanSquaredError" => Loss::MeanSquaredError,
            "mae" | "mean_absolute_error" | "MeanAbsoluteError" => Loss::MeanAbsoluteError,
            "binary_crossentropy" | "BinaryCrossentropy" => Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            "categorical_crossentropy" | "CategoricalCrossentropy" => {
                Loss::CategoricalCrossentropy {
                    from_logits: false,
                    label_smoothing: 0.0,
                }
            }
            "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
                Loss::SparseCategoricalCrossentropy { from_logits: false }
            }
            _ => return None,
        })
    }

    /// True if Keras would take the cached-logits shortcut for a model whose last
    /// activation is `act` (softmax with CCE/SCCE, sigmoid with BCE, probabilities mode).
    ///
    /// ```
    /// use microfit_core::{Activation, Loss};
    /// assert!(Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 }.fuses_with(Activation::Softmax));
    /// assert!(!Loss::MeanSquaredError.fuses_with(Activation::Softmax));
    /// ```
    pub fn fuses_with(&self, act: Activation) -> bool {
        matches!(
            (self, act),
            (
                Loss::CategoricalCrossentropy {
                    from_logits: false,
                    ..
                } | Loss::SparseCategoricalCrossentropy { from_logits: false },
                Activation::Softmax
            ) | (
                Loss::BinaryCrossentropy {
                    from_logits: false,
                    ..
                },
                Activation::Sigmoid
            )
        )
    }

    /// Keras `label_smoothing` (0 for the losses that have none).
    pub fn label_smoothing(&self) -> f32 {
        match *self {
            Loss::BinaryCrossentropy {
                label_smoothing, ..
            }
            | Loss::CategoricalCrossentropy {
                label_smoothing, ..
            } => label_smoothing,
            _ => 0.0,
        }
    }

    /// The same loss with Keras `label_smoothing = ls` (binary and categorical cross-entropy;
    /// other losses, which have none, are returned unchanged).
    ///
    /// ```
    /// use microfit_core::Loss;
    /// let l = Loss::from_keras_name("categorical_crossentropy").unwrap().with_label_smoothing(0.1);
    /// assert_eq!(l.label_smoothing(), 0.1);
    /// ```
    pub fn with_label_smoothing(mut self, ls: f32) -> Self {
        if let Loss::BinaryCrossentropy {
            label_smoothing, ..
        }
        | Loss::CategoricalCrossentropy {
            label_smoothing, ..
        } = &mut self
        {
            *label_smoothing = ls;
        }
        self
    }

    /// Checks the loss' settings.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a `label_smoothing` outside `[0, 1]` (Keras' range).
    ///
    /// ```
    /// use microfit_core::Loss;
    /// let l = Loss::BinaryCrossentropy { from_logits: true, label_smoothing: 1.5 };
    /// assert!(l.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        let ls = self.label_smoothing();
        if (0.0..=1.0).contains(&ls) {
            Ok(())
        } else {
            Err(Error::InvalidHyperparameter {
                name: "label_smoothing",
                reason: crate::error::Reason::UnitInterval,
            })
        }
    }

    /// Keras' label smoothing `(a, b)` for `classes` outputs, `None` when there is none (0):
    /// targets become `y·a + b` with `a = 1 − ls`, `b = ls/classes` (CCE) or `0.5·ls` (BCE);
    /// `1 − ls` and `0.5·ls` in double precision on the Python float, then float32, as Keras
    /// computes them.
    #[inline(always)]
    fn smoothing(&self, classes: usize) -> Option<(f32, f32)> {
        let ls = self.label_smoothing();
        // Keras: `if label_smoothing:` — 0 leaves the target as it is.
        if ls == 0.0 {
            return None;
        }
        let d = math::keras_decimal(ls);
        let a = (1.0 - d) as f32;
        Some(match self {
            Loss::BinaryCrossentropy { .. } => (a, (0.5 * d) as f32),
            _ => (a, ls / classes as f32),
        })
    }

    /// True for losses whose metric is classification accuracy.
    pub fn is_classification(&self) -> bool {
        !matches!(self, Loss::MeanSquaredError | Loss::MeanAbsoluteError)
    }

    /// Per-sample loss of prediction `pred` (probabilities, or logits when `from_logits`),
    /// writing `scale · ∂loss/∂pred` into `grad` when given.
    ///
    /// # Errors
    /// [`Error::LabelOutOfRange`] for a class label `>= pred.len()`,
    /// [`Error::ShapeMismatch`] for a dense target of the wrong length,
    /// [`Error::IncompatibleLoss`] for a dense target with a sparse loss.
    ///
    /// ```
    /// use microfit_core::{Loss, loss::Target};
    /// let l = Loss::SparseCategoricalCrossentropy { from_logits: true };
    /// let mut g = [0.0; 3];
    /// let v = l.value_grad(&[40.0, -40.0, 0.0], Target::Class(1), Some(&mut g), 1.0)?;
    /// assert_eq!(v, 80.0);
    /// # Ok::<(), microfit_core::Error>(())
    /// ```
    pub fn value_grad(
        &self,
        pred: &[f32],
        target: Target<'_>,
        grad: Option<&mut [f32]>,
        scale: f32,
    ) -> Result<f32, Error> {
        let logits = match *self {
            Loss::BinaryCrossentropy { from_logits, .. }
            | Loss::CategoricalCrossentropy { from_logits, .. }
            | Loss::SparseCategoricalCrossentropy { from_logits } => from_logits,
            _ => false,
        };
        self.compute(pred, target, grad, scale, logits)
    }

    /// Per-sample loss through the cached-logits path: `z` are the last layer's
    /// pre-activations (see [`Loss::fuses_with`]); the gradient is w.r.t. `z`.
    ///
    /// # Errors
    /// As [`Loss::value_grad`].
    pub fn fused_value_grad(
        &self,
        z: &[f32],
        target: Target<'_>,
        grad_z: Option<&mut [f32]>,
        scale: f32,
    ) -> Result<f32, Error> {
        self.compute(z, target, grad_z, scale, true)
    }

    /// [`Loss::fused_value_grad`] reusing the forward pass: `y` is the output of the last
    /// activation on `z` (`softmax(z)` for the cross-entropies, `sigmoid(z)` for binary
    /// cross-entropy), as the layer computed it. Same value and gradient bits as
    /// [`Loss::fused_value_grad`], without evaluating the `exp`s again: the softmax
    /// cross-entropy's gradient is `y·Σt - t`, and its `log Σ e^(z - max z)` is
    /// `-log(max y)` (the largest `y` is `e^0 / Σ = 1 / Σ`, rounded once).
    ///
    /// `y` must be that activation of `z`; anything else gives another gradient (no panic).
    /// For other losses (no cached-logits path) this is [`Loss::fused_value_grad`].
    ///
    /// # Errors
    /// As [`Loss::value_grad`].
    ///
    /// ```
    /// use microfit_core::{Activation, Loss, loss::Target};
    /// let l = Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 };
    /// let z = [40.0f32, -40.0, 0.0];
    /// let mut y = [0.0; 3];
    /// Activation::Softmax.forward(&z, &mut y);
    /// let (mut g1, mut g2) = ([0.0; 3], [0.0; 3]);
    /// let a = l.fused_value_grad(&z, Target::Class(1), Some(&mut g1), 1.0)?;
    /// let b = l.fused_value_grad_with_output(&z, &y, Target::Class(1), Some(&mut g2), 1.0)?;
    /// assert_eq!((a, g1), (b, g2));
    /// assert_eq!(a, 80.0); // not -log(clip(y_1)) = 16.118
    /// # Ok::<(), microfit_core::Error>(())
    /// ```
    // Always inlined: a caller with a constant loss (a firmware) keeps only that loss's branch
    // and calls `softmax_xent` directly (W1 on a Cortex-M4F: 26 instructions per sample).
    #[inline(always)]
    pub fn fused_value_grad_with_output(
        &self,
        z: &[f32],
        y: &[f32],
        target: Target<'_>,
        grad_z: Option<&mut [f32]>,
        scale: f32,
    ) -> Result<f32, Error> {
        match *self {
            Loss::CategoricalCrossentropy { .. } | Loss::SparseCategoricalCrossentropy { .. } => {
                self.check_target(z.len(), target)?;
                Ok(match self.smoothing(z.len()) {
                    None => softmax_xent(z, Some(y), target, grad_z, scale),
                    Some((a, b)) => {
                        softmax_xent(z, Some(y), Smoothed { t: target, a, b }, grad_z, scale)
                    }
                })
            }
            Loss::BinaryCrossentropy { .. } => {
                self.check_target(z.len(), target)?;
                Ok(match self.smoothing(z.len()) {
                    None => sigmoid_xent(z, Some(y), target, grad_z, scale),
                    Some((a, b)) => {
                        sigmoid_xent(z, Some(y), Smoothed { t: target, a, b }, grad_z, scale)
                    }
                })
            }
            _ => self.fused_value_grad(z, target, grad_z, scale),
        }
    }

    /// The loss of a tile's first `rows` samples (rows of `io.width` values), each added to
    /// `sum` in sample order, with `scale · ∂loss/∂(output)` written into `io.dy` when `scale`
    /// is given (training; `None` for an evaluation). Through the cached logits when `fused`
    /// ([`Loss::fuses_with`]) and the model keeps them: the gradient is then w.r.t. the logits,
    /// and the function returns `true`. Per sample this is [`Loss::fused_value_grad_with_output`]
    /// or [`Loss::value_grad`], bit for bit; a tile's cross-entropy takes its `ln`s in one bulk
    /// pass of the backend ([`Backend::ln_slice`]).
    ///
    /// # Errors
    /// As [`Loss::value_grad`], for the first sample (in order) whose target does not fit.
    pub fn tile_value_grad<'t, B: Backend>(
        &self,
        io: LossIo<'_>,
        rows: usize,
        fused: bool,
        target: impl Fn(usize) -> Target<'t>,
        scale: Option<f32>,
        sum: &mut f32,
    ) -> Result<bool, Error> {
        let LossIo {
            y,
            logits,
            dy,
            width,
        } = io;
        let w = width.max(1);
        let rows = rows.min(y.len() / w);
        let grad_scale = scale.unwrap_or(1.0);
        // Row `r` of the gradient buffer, when gradients are wanted.
        let grad_range = |r: usize| scale.map(|_| r * w..(r + 1) * w);
        match (fused, logits) {
            (true, Some(z)) => {
                let rows = rows.min(z.len() / w);
                let softmax = matches!(
                    self,
                    Loss::CategoricalCrossentropy { .. }
                        | Loss::SparseCategoricalCrossentropy { .. }
                );
                if rows > 1 && softmax {
                    let io = LossIo {
                        y,
                        logits: Some(z),
                        dy,
                        width: w,
                    };
                    self.softmax_xent_rows::<B>(io, rows, &target, scale, sum)?;
                } else {
                    for r in 0..rows {
                        let (zr, yr) = (&z[r * w..(r + 1) * w], &y[r * w..(r + 1) * w]);
                        let g = grad_range(r).and_then(|range| dy.get_mut(range));
                        *sum +=
                            self.fused_value_grad_with_output(zr, yr, target(r), g, grad_scale)?;
                    }
                }
                Ok(true)
            }
            _ => {
                for r in 0..rows {
                    let yr = &y[r * w..(r + 1) * w];
                    let g = grad_range(r).and_then(|range| dy.get_mut(range));
                    *sum += self.value_grad(yr, target(r), g, grad_scale)?;
                }
                Ok(false)
            }
        }
    }

    /// [`Loss::tile_value_grad`] with Keras' `sample_weight`: row `r`'s loss is multiplied by
    /// `weight(r)` before it is added to `sum` (`values * sample_weight`, then Keras'
    /// `sum_over_batch_size` divides by the batch size), and its gradient is written with the
    /// scale `scale · weight(r)`. Row by row, each row exactly as the unweighted call computes
    /// it (a weight of 1 gives the same bits).
    ///
    /// # Errors
    /// As [`Loss::tile_value_grad`].
    #[allow(clippy::too_many_arguments)]
    pub fn weighted_tile_value_grad<'t, B: Backend>(
        &self,
        io: LossIo<'_>,
        rows: usize,
        fused: bool,
        target: impl Fn(usize) -> Target<'t>,
        weight: impl Fn(usize) -> f32,
        scale: Option<f32>,
        sum: &mut f32,
    ) -> Result<bool, Error> {
        let LossIo {
            y,
            logits,
            dy,
            width,
        } = io;
        let w = width.max(1);
        let mut pre = false;
        for r in 0..rows.min(y.len() / w) {
            let range = r * w..(r + 1) * w;
            let (Some(yr), Some(dyr)) = (y.get(range.clone()), dy.get_mut(range.clone())) else {
                break;
            };
            let row = LossIo {
                y: yr,
                logits: logits.and_then(|z| z.get(range)),
                dy: dyr,
                width: w,
            };
            let wr = weight(r);
            let mut v = 0.0f32;
            pre = self.tile_value_grad::<B>(
                row,
                1,
                fused,
                |_| target(r),
                scale.map(|s| s * wr),
                &mut v,
            )?;
            *sum += v * wr;
        }
        Ok(pre)
    }

    /// The softmax cross-entropy of a tile's rows on their cached logits, reusing the forward
    /// pass's softmax `y` ([`softmax_xent`] row by row), the `ln`s of up to 64 rows in one bulk
    /// pass.
    fn softmax_xent_rows<'t, B: Backend>(
        &self,
        io: LossIo<'_>,
        rows: usize,
        target: &impl Fn(usize) -> Target<'t>,
        scale: Option<f32>,
        sum: &mut f32,
    ) -> Result<(), Error> {
        const CHUNK: usize = 64;
        let LossIo {
            y,
            logits,
            dy,
            width: w,
        } = io;
        let z = logits.unwrap_or(y);
        let mut maxes = [0.0f32; CHUNK];
        let mut lns = [1.0f32; CHUNK];
        let mut start = 0;
        while start < rows {
            let cnt = (rows - start).min(CHUNK);
            for r in 0..cnt {
                self.check_target(w, target(start + r))?;
                let row = start + r;
                let (m, arg) = max_and_index(&z[row * w..(row + 1) * w]);
                maxes[r] = m;
                // `y[argmax z]` is `e^0 / Σ`, the largest output.
                lns[r] = y.get(row * w + arg).copied().unwrap_or(f32::NAN);
            }
            B::ln_slice(&mut lns[..cnt]);
            for r in 0..cnt {
                let row = start + r;
                let (zr, yr) = (&z[row * w..(row + 1) * w], &y[row * w..(row + 1) * w]);
                let m = maxes[r];
                let lse = Lse {
                    m,
                    sum: 1.0,
                    lse: if m.is_finite() { m - lns[r] } else { m },
                };
                let g = match scale {
                    Some(_) => dy.get_mut(row * w..(row + 1) * w),
                    None => None,
                };
                let (t, k) = (target(row), scale.unwrap_or(1.0));
                *sum += match self.smoothing(w) {
                    None => softmax_xent_tail(zr, Some(yr), lse, t, g, k),
                    Some((a, b)) => {
                        softmax_xent_tail(zr, Some(yr), lse, Smoothed { t, a, b }, g, k)
                    }
                };
            }
            start += cnt;
        }
        Ok(())
    }

    fn check_target(&self, n: usize, target: Target<'_>) -> Result<(), Error> {
        match target {
            Target::Class(k) => {
                if (k as usize) < n {
                    Ok(())
                } else {
                    Err(Error::LabelOutOfRange {
                        label: k,
                        classes: n as u32,
                    })
                }
            }
            Target::Dense(t) => {
                if matches!(self, Loss::SparseCategoricalCrossentropy { .. }) {
                    Err(Error::IncompatibleLoss {
                        reason: "sparse_categorical_crossentropy needs class labels",
                    })
                } else if t.len() != n {
                    Err(Error::ShapeMismatch {
                        what: crate::error::ShapeOf::Target,
                        expected: n as u32,
                        found: t.len() as u32,
                    })
                } else {
                    Ok(())
                }
            }
        }
    }

    fn compute(
        &self,
        p: &[f32],
        t: Target<'_>,
        grad: Option<&mut [f32]>,
        scale: f32,
        logits: bool,
    ) -> Result<f32, Error> {
        let n = p.len();
        self.check_target(n, t)?;
        Ok(match self.smoothing(n) {
            None => self.compute_checked(p, t, grad, scale, logits),
            Some((a, b)) => self.compute_checked(p, Smoothed { t, a, b }, grad, scale, logits),
        })
    }

    /// [`Loss::compute`] on a checked target.
    fn compute_checked(
        &self,
        p: &[f32],
        t: impl TargetRow,
        grad: Option<&mut [f32]>,
        scale: f32,
        logits: bool,
    ) -> f32 {
        let n = p.len();
        let d = n.max(1) as f32;
        match (*self, logits) {
            (Loss::MeanSquaredError, _) => {
                let mut s = 0.0f32;
                for (j, &pj) in p.iter().enumerate() {
                    let e = t.at(j) - pj;
                    s += e * e;
                }
                if let Some(g) = grad {
                    for (j, (gj, &pj)) in g.iter_mut().zip(p).enumerate() {
                        *gj = (2.0 * (pj - t.at(j)) / d) * scale;
                    }
                }
                s / d
            }
            (Loss::MeanAbsoluteError, _) => {
                let mut s = 0.0f32;
                for (j, &pj) in p.iter().enumerate() {
                    s += math::abs(t.at(j) - pj);
                }
                if let Some(g) = grad {
                    for (j, (gj, &pj)) in g.iter_mut().zip(p).enumerate() {
                        *gj = (math::sign(pj - t.at(j)) / d) * scale;
                    }
                }
                s / d
            }
            (Loss::BinaryCrossentropy { .. }, true) => sigmoid_xent(p, None, t, grad, scale),
            (Loss::BinaryCrossentropy { .. }, false) => {
                let mut s = 0.0f32;
                for (j, &pj) in p.iter().enumerate() {
                    let y = t.at(j);
                    let q = clip(pj);
                    s += -(y * math::ln(q) + (1.0 - y) * math::ln(1.0 - q));
                }
                if let Some(g) = grad {
                    for (j, (gj, &pj)) in g.iter_mut().zip(p).enumerate() {
                        let y = t.at(j);
                        *gj = if in_clip(pj) {
                            ((-(y / pj) + (1.0 - y) / (1.0 - pj)) / d) * scale
                        } else {
                            0.0
                        };
                    }
                }
                s / d
            }
            (Loss::CategoricalCrossentropy { .. }, true) => softmax_xent(p, None, t, grad, scale),
            (Loss::CategoricalCrossentropy { .. }, false) => {
                let mut total = 0.0f32;
                for &pj in p {
                    total += pj;
                }
                let mut s = 0.0f32;
                for (j, &pj) in p.iter().enumerate() {
                    let y = t.at(j);
                    if y != 0.0 {
                        s += y * math::ln(clip(pj / total));
                    }
                }
                if let Some(g) = grad {
                    // dq_j = -y_j / q_j inside the clip; dp_k = (dq_k - Σ_j dq_j q_j) / total.
                    let mut dot = 0.0f32;
                    for (j, &pj) in p.iter().enumerate() {
                        let q = pj / total;
                        if in_clip(q) {
                            dot += -t.at(j) / q * q;
                        }
                    }
                    for (j, (gj, &pj)) in g.iter_mut().zip(p).enumerate() {
                        let q = pj / total;
                        let dq = if in_clip(q) { -t.at(j) / q } else { 0.0 };
                        *gj = ((dq - dot) / total) * scale;
                    }
                }
                -s
            }
            (Loss::SparseCategoricalCrossentropy { .. }, true) => {
                softmax_xent(p, None, t, grad, scale)
            }
            (Loss::SparseCategoricalCrossentropy { .. }, false) => {
                let k = t.class().min(n - 1);
                let mut csum = 0.0f32;
                for &pj in p {
                    csum += clip(pj);
                }
                let ck = clip(p[k]);
                if let Some(g) = grad {
                    for (j, (gj, &pj)) in g.iter_mut().zip(p).enumerate() {
                        *gj = if in_clip(pj) {
                            let d = if j == k { 1.0 / ck } else { 0.0 };
                            (1.0 / csum - d) * scale
                        } else {
                            0.0
                        };
                    }
                }
                math::ln(csum) - math::ln(ck)
            }
        }
    }
}

/// Softmax cross-entropy on logits `z` (Keras' `from_logits` / cached-logits path, as
/// `tf.nn.softmax_cross_entropy_with_logits`): per-sample loss `Σ_j t_j (lse - z_j)` and
/// `scale · (softmax(z)·Σt - t)` into `grad` (the sparse loss is the one-hot case).
///
/// `lse = log Σ e^z = m - log(1 / Σ_j e^(z_j - m))` with `m = max z` (`m` itself when it is not
/// finite), and `softmax(z)_j = e^(z_j - m) / Σ`: exactly the operations of
/// [`Activation::Softmax`](crate::activation::softmax), whose largest output is `1 / Σ` (its
/// `e^0` is 1). With `y` (the forward pass's softmax) nothing is recomputed; without it the
/// `exp`s are evaluated (twice: no scratch memory), with the same bits. The target was checked.
// Never inlined: one copy for every caller (firmware size).
#[inline(never)]
fn softmax_xent(
    z: &[f32],
    y: Option<&[f32]>,
    t: impl TargetRow,
    grad: Option<&mut [f32]>,
    scale: f32,
) -> f32 {
    let (m, arg) = max_and_index(z);
    // Σ_j e^(z_j - m), only needed without `y`.
    let sum = match y {
        Some(_) => 1.0,
        None => {
            let mut s = 0.0f32;
            for &v in z {
                s += math::exp(v - m);
            }
            s
        }
    };
    let lse = if m.is_finite() {
        let inv_sum = match y {
            // `y[argmax z]` is `e^0 / Σ`, the largest output.
            Some(y) => y.get(arg).copied().unwrap_or(f32::NAN),
            None => 1.0 / sum,
        };
        m - math::ln(inv_sum)
    } else {
        m
    };
    softmax_xent_tail(z, y, Lse { m, sum, lse }, t, grad, scale)
}

/// What [`softmax_xent`] computes before its value and gradient.
#[derive(Clone, Copy)]
struct Lse {
    /// `max z`.
    m: f32,
    /// `Σ e^(z - m)` (only used without the forward pass's `y`).
    sum: f32,
    /// `log Σ e^z`.
    lse: f32,
}

/// The value and gradient of [`softmax_xent`] from its [`Lse`].
#[inline(always)]
fn softmax_xent_tail(
    z: &[f32],
    y: Option<&[f32]>,
    Lse { m, sum, lse }: Lse,
    t: impl TargetRow,
    grad: Option<&mut [f32]>,
    scale: f32,
) -> f32 {
    let (value, ysum) = match (t.label(), t.values()) {
        (Some(k), _) => (z.get(k as usize).map_or(f32::NAN, |&zk| lse - zk), 1.0f32),
        (None, Some(td)) => {
            let (mut v, mut ysum) = (0.0f32, 0.0f32);
            for (&tj, &zj) in td.iter().zip(z) {
                ysum += tj;
                if tj != 0.0 {
                    v += tj * (lse - zj);
                }
            }
            (v, ysum)
        }
        (None, None) => {
            let (mut v, mut ysum) = (0.0f32, 0.0f32);
            for (j, &zj) in z.iter().enumerate() {
                let tj = t.at(j);
                ysum += tj;
                if tj != 0.0 {
                    v += tj * (lse - zj);
                }
            }
            (v, ysum)
        }
    };
    match (grad, y) {
        // `(p_j·Σt - t_j)·scale` with the forward pass's `p`: a loop without branches per
        // element (it vectorizes), the one-hot `t_j = 1` set after.
        (Some(g), Some(y)) if y.len() == g.len() => match (t.label(), t.values()) {
            (Some(k), _) => {
                for (gj, &pj) in g.iter_mut().zip(y) {
                    *gj = (pj * ysum - 0.0) * scale;
                }
                if let (Some(gk), Some(&pk)) = (g.get_mut(k as usize), y.get(k as usize)) {
                    *gk = (pk * ysum - 1.0) * scale;
                }
            }
            (None, Some(td)) => {
                for ((gj, &pj), &tj) in g.iter_mut().zip(y).zip(td) {
                    *gj = (pj * ysum - tj) * scale;
                }
            }
            // Smoothed labels.
            (None, None) => {
                for (j, (gj, &pj)) in g.iter_mut().zip(y).enumerate() {
                    *gj = (pj * ysum - t.at(j)) * scale;
                }
            }
        },
        (Some(g), y) => {
            for (j, (gj, &zj)) in g.iter_mut().zip(z).enumerate() {
                let pj = match y {
                    Some(y) => y.get(j).copied().unwrap_or(f32::NAN),
                    None => math::exp(zj - m) / sum,
                };
                *gj = (pj * ysum - t.at(j)) * scale;
            }
        }
        (None, _) => {}
    }
    value
}

/// [`max_of`](crate::activation::max_of) and the index it was found at (the first maximum
/// when it is finite, which is the only case the index is used in).
#[inline]
fn max_and_index(z: &[f32]) -> (f32, usize) {
    // Without a NaN the NaN test changes nothing: one pass with `>` alone, and `Σ v·0` (NaN
    // when some `v` is NaN or ±∞) decides whether the full test must run. A long row in two
    // halves, combined as `max_of` does (the same first maximum and index).
    let (m, arg, probe) = if z.len() <= crate::activation::SPLIT_ROWS {
        first_max(z)
    } else {
        let h = z.len() / 2;
        let (a, b) = z.split_at(h);
        let ((m1, a1, p1), (m2, a2, p2)) = (first_max(a), first_max(b));
        if m2 > m1 {
            (m2, a2 + h, p1 + p2)
        } else {
            (m1, a1, p1 + p2)
        }
    };
    if !probe.is_nan() {
        return (m, arg);
    }
    let (mut m, mut arg) = (f32::NEG_INFINITY, 0);
    for (j, &v) in z.iter().enumerate() {
        if v > m || v.is_nan() {
            m = v;
            arg = j;
        }
    }
    (m, arg)
}

/// The first maximum of `z` by `>` (NaNs never win), its index, and `Σ v·0` (NaN exactly when
/// some `v` is NaN or ±∞).
#[inline(always)]
fn first_max(z: &[f32]) -> (f32, usize, f32) {
    let (mut m, mut arg, mut probe) = (f32::NEG_INFINITY, 0, 0.0f32);
    for (j, &v) in z.iter().enumerate() {
        if v > m {
            m = v;
            arg = j;
        }
        probe += v * 0.0;
    }
    (m, arg, probe)
}

/// Sigmoid binary cross-entropy on logits `z` (Keras' `from_logits` / cached-logits path):
/// `mean_j max(z,0) - z t + log1p(e^-|z|)` and `scale · (σ(z) - t) / D` into `grad`, `σ(z)`
/// from `y` (the forward pass's sigmoid: the same function, so the same bits) when given. The
/// target was checked.
fn sigmoid_xent(
    z: &[f32],
    y: Option<&[f32]>,
    t: impl TargetRow,
    grad: Option<&mut [f32]>,
    scale: f32,
) -> f32 {
    let d = z.len().max(1) as f32;
    let mut s = 0.0f32;
    for (j, &zj) in z.iter().enumerate() {
        let tj = t.at(j);
        let relu = if zj > 0.0 { zj } else { 0.0 };
        s += relu - zj * tj + math::ln_1p(math::exp(-math::abs(zj)));
    }
    if let Some(g) = grad {
        for (j, (gj, &zj)) in g.iter_mut().zip(z).enumerate() {
            let p = match y {
                Some(y) => y.get(j).copied().unwrap_or(f32::NAN),
                None => sigmoid(zj),
            };
            *gj = ((p - t.at(j)) / d) * scale;
        }
    }
    s / d
}

/// `clip_by_value(p, ε, 1-ε)`. Written out instead of `f32::clamp`, whose `min <= max`
/// assertion would link `core::fmt`'s float formatting (~26 KB) into firmware.
#[inline]
#[allow(clippy::manual_clamp)]
fn clip(p: f32) -> f32 {
    if p < EPSILON {
        EPSILON
    } else if p > 1.0 - EPSILON {
        1.0 - EPSILON
    } else {
        p
    }
}

/// `clip_by_value` passes the gradient where `ε ≤ p ≤ 1-ε` (boundaries included).
#[inline]
fn in_clip(p: f32) -> bool {
    (EPSILON..=1.0 - EPSILON).contains(&p)
}

#[cfg(test)]
mod row_max_tests {
    use super::{argmax, max_and_index};
    use crate::activation::max_of;

    /// The one-chain scans the split forms must equal.
    fn scans(z: &[f32]) -> (f32, usize, usize) {
        let (mut m, mut arg) = (f32::NEG_INFINITY, 0);
        for (j, &v) in z.iter().enumerate() {
            if v > m || v.is_nan() {
                m = v;
                arg = j;
            }
        }
        let (mut m2, mut best) = (f32::NEG_INFINITY, 0);
        for (i, &x) in z.iter().enumerate() {
            if x > m2 {
                m2 = x;
                best = i;
            }
        }
        (m, arg, best)
    }

    /// Rows of 0 to 13 values drawn from ±0, ±∞, two NaN payloads and ties: `max_of`,
    /// `max_and_index` and `argmax` give the scans' bits and indices.
    #[test]
    fn split_rows_give_the_scans_results() {
        let alphabet = [
            f32::NEG_INFINITY,
            -1.0,
            -0.0,
            0.0,
            1.0,
            2.0,
            f32::INFINITY,
            f32::from_bits(0x7fc0_0001),
            f32::from_bits(0xffc0_0002),
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..40_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 14) as usize;
            let mut row = [0.0f32; 13];
            let mut s = state;
            for v in row.iter_mut().take(len) {
                // Mostly finite values, a NaN or infinity now and then.
                let k = (s % 23) as usize;
                *v = alphabet[if k < 14 {
                    1 + k % 5
                } else {
                    k % alphabet.len()
                }];
                s /= 23;
            }
            let z = &row[..len];
            let (m, arg, best) = scans(z);
            assert_eq!(max_of(z).to_bits(), m.to_bits(), "{z:?}");
            let (m2, arg2) = max_and_index(z);
            assert_eq!(m2.to_bits(), m.to_bits(), "{z:?}");
            if m.is_finite() {
                assert_eq!(arg2, arg, "{z:?}");
            }
            assert_eq!(argmax(z), best, "{z:?}");
        }
    }
}
