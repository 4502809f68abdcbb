//! Per-feature scaling whose statistics travel with a model to the firmware.

use serde::{Deserialize, Serialize};

use super::{DataError, Dataset};

/// How features are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalerKind {
    /// No scaling: `offset = 0`, `scale = 1`.
    #[default]
    None,
    /// Zero mean, unit variance: `offset = mean`, `scale = 1 / std` with the population standard
    /// deviation (divisor `n`, as Keras' `Normalization` layer and scikit-learn's
    /// `StandardScaler` use).
    Standardize,
    /// Onto `[0, 1]`: `offset = min`, `scale = 1 / (max - min)`.
    MinMax,
}

/// Fitted per-feature scaling statistics.
///
/// A feature `x` is scaled as
///
/// ```text
/// x' = (x - offset[j]) * scale[j]
/// ```
///
/// `scale` stores the **multiplier** (`1 / std` or `1 / (max - min)`), not the divisor, so the
/// firmware does one subtraction and one multiplication per feature and never divides. A
/// constant column (zero spread, or a spread so small that its reciprocal is not a finite `f32`)
/// gets `scale = 1`, so it becomes `x - offset` (0 on the training data) instead of a division
/// by zero.
///
/// The statistics serialize with serde (`{"kind":"standardize","offset":[..],"scale":[..]}` in
/// JSON), to be stored with a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// How the statistics were fitted.
    pub kind: ScalerKind,
    /// Subtracted from each feature (one entry per feature).
    pub offset: Vec<f32>,
    /// Multiplies each feature after the subtraction (one entry per feature).
    pub scale: Vec<f32>,
}

impl Scaler {
    /// The scaler that leaves `n_features` features unchanged (`kind` [`ScalerKind::None`]).
    pub fn identity(n_features: usize) -> Scaler {
        Scaler {
            kind: ScalerKind::None,
            offset: vec![0.0; n_features],
            scale: vec![1.0; n_features],
        }
    }

    /// Fits the statistics of `kind` on `data`'s features (accumulated in `f64`).
    ///
    /// A dataset without samples gives the identity statistics.
    pub fn fit(data: &Dataset, kind: ScalerKind) -> Scaler {
        let d = data.n_features();
        let n = data.n_samples();
        if n == 0 || d == 0 || data.features.len() / d < n {
            return Scaler {
                kind,
                ..Scaler::identity(d)
            };
        }
        let rows = || data.features.chunks_exact(d).take(n);
        let (offset, spread): (Vec<f64>, Vec<f64>) = match kind {
            ScalerKind::None => (vec![0.0; d], vec![1.0; d]),
            ScalerKind::Standardize => {
                let mut mean = vec![0.0f64; d];
                for row in rows() {
                    for (m, &x) in mean.iter_mut().zip(row) {
                        *m += f64::from(x);
                    }
                }
                for m in &mut mean {
                    *m /= n as f64;
                }
                let mut var = vec![0.0f64; d];
                for row in rows() {
                    for ((v, &m), &x) in var.iter_mut().zip(&mean).zip(row) {
                        let dev = f64::from(x) - m;
                        *v += dev * dev;
                    }
                }
                let std = var.iter().map(|v| (v / n as f64).sqrt()).collect();
                (mean, std)
            }
            ScalerKind::MinMax => {
                let mut min = vec![f64::INFINITY; d];
                let mut max = vec![f64::NEG_INFINITY; d];
                for row in rows() {
                    for j in 0..d {
                        let x = f64::from(row[j]);
                        min[j] = min[j].min(x);
                        max[j] = max[j].max(x);
                    }
                }
                let range = min.iter().zip(&max).map(|(lo, hi)| hi - lo).collect();
                (min, range)
            }
        };
        Scaler {
            kind,
            offset: offset.iter().map(|&o| o as f32).collect(),
            scale: spread.iter().map(|&s| multiplier(s)).collect(),
        }
    }

    /// Number of features the scaler was fitted on.
    pub fn n_features(&self) -> usize {
        self.offset.len()
    }

    /// Checks that `offset` and `scale` have one entry per feature and are all finite (as a
    /// scaler read from a file must be before use).
    ///
    /// # Errors
    /// [`DataError::FeatureCountMismatch`] if the lengths differ, [`DataError::InvalidDataset`]
    /// if a statistic is not finite.
    pub fn validate(&self) -> Result<(), DataError> {
        if self.offset.len() != self.scale.len() {
            return Err(DataError::FeatureCountMismatch {
                expected: self.offset.len(),
                found: self.scale.len(),
            });
        }
        if self
            .offset
            .iter()
            .chain(&self.scale)
            .any(|v| !v.is_finite())
        {
            return Err(DataError::InvalidDataset {
                dataset: "scaler".into(),
                reason: "a scaler statistic is not finite".into(),
            });
        }
        Ok(())
    }

    /// Scales one sample in place: `row[j] = (row[j] - offset[j]) * scale[j]`.
    ///
    /// # Errors
    /// [`DataError::FeatureCountMismatch`] if `row` does not have one entry per feature (or the
    /// scaler's own `offset` and `scale` lengths differ); `row` is then left unchanged.
    pub fn transform_row(&self, row: &mut [f32]) -> Result<(), DataError> {
        let d = self.n_features();
        if row.len() != d || self.scale.len() != d {
            return Err(DataError::FeatureCountMismatch {
                expected: d,
                found: if self.scale.len() != d {
                    self.scale.len()
                } else {
                    row.len()
                },
            });
        }
        for ((x, &o), &s) in row.iter_mut().zip(&self.offset).zip(&self.scale) {
            *x = (*x - o) * s;
        }
        Ok(())
    }

    /// Scales every sample of `data` in place.
    ///
    /// # Errors
    /// [`DataError::FeatureCountMismatch`] if `data` has a different number of features from
    /// the scaler (or its feature buffer does not hold whole rows); `data` is then unchanged.
    pub fn transform(&self, data: &mut Dataset) -> Result<(), DataError> {
        let d = data.n_features();
        if d != self.n_features() || self.scale.len() != d {
            return Err(DataError::FeatureCountMismatch {
                expected: self.n_features(),
                found: d,
            });
        }
        if d == 0 {
            return Ok(());
        }
        if !data.features.len().is_multiple_of(d) {
            return Err(DataError::InvalidDataset {
                dataset: data.name.clone(),
                reason: format!(
                    "{} feature values are not a whole number of rows of {d}",
                    data.features.len()
                ),
            });
        }
        for row in data.features.chunks_exact_mut(d) {
            for ((x, &o), &s) in row.iter_mut().zip(&self.offset).zip(&self.scale) {
                *x = (*x - o) * s;
            }
        }
        Ok(())
    }

    /// Undoes the scaling of one sample in place: `row[j] = row[j] / scale[j] + offset[j]`.
    ///
    /// # Errors
    /// [`DataError::FeatureCountMismatch`] as for [`transform_row`](Self::transform_row).
    pub fn inverse_transform_row(&self, row: &mut [f32]) -> Result<(), DataError> {
        let d = self.n_features();
        if row.len() != d || self.scale.len() != d {
            return Err(DataError::FeatureCountMismatch {
                expected: d,
                found: row.len(),
            });
        }
        for ((x, &o), &s) in row.iter_mut().zip(&self.offset).zip(&self.scale) {
            *x = *x / s + o;
        }
        Ok(())
    }
}

/// The multiplier `1 / spread` as an `f32`, or 1 when that is not a finite, non-zero number.
fn multiplier(spread: f64) -> f32 {
    // Also catches a NaN spread.
    if spread.is_nan() || spread <= 0.0 {
        return 1.0;
    }
    let m = (1.0 / spread) as f32;
    if m.is_finite() && m > 0.0 { m } else { 1.0 }
}
