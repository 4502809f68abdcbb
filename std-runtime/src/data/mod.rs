//! The dataset layer: load tabular data, scale it, split it.
//!
//! * [`Dataset`] holds the features (row-major `f32`) and a [`Target`] (class labels or
//!   regression values).
//! * [`load_csv`], [`load_csv_reader`] and [`parse_csv_bytes`] read CSV files with the options in
//!   [`LoadOptions`] (which column is the label, whether there is a header, classification or
//!   regression), and report bad input as a [`DataError`] that names the file, line and column.
//! * [`Bundled`] datasets (iris, digits, wine, breast cancer) are compiled into the binary;
//!   [`load_source`] takes either one of their names or a path.
//! * [`Scaler`] fits per-feature `offset` / `scale` statistics that the firmware applies as
//!   `x' = (x - offset) * scale`.
//! * [`split`] makes seeded (optionally stratified) train/validation/test splits, and
//!   [`epoch_order`] the seeded per-epoch shuffles, both with the self-contained [`SplitMix64`]
//!   generator so that results are identical on every platform.
//!
//! ```
//! use microfit::data::{Bundled, Scaler, ScalerKind, SplitSpec, split};
//!
//! let iris = Bundled::Iris.load()?;
//! assert_eq!((iris.n_samples(), iris.n_features(), iris.n_classes()), (150, 4, 3));
//! let mut parts = split(&iris, SplitSpec { validation: 0.2, test: 0.0, seed: 7, stratify: true })?;
//! let scaler = Scaler::fit(&parts.train, ScalerKind::Standardize);
//! scaler.transform(&mut parts.train)?;
//! # Ok::<(), microfit::data::DataError>(())
//! ```

mod bundled;
mod error;
mod load;
mod rng;
mod scale;
mod split;

pub use bundled::{Bundled, UnknownBundled, load_source, load_source_with, source_bytes};
pub use error::{DataError, Location, MAX_FIELD_TEXT, SplitPart};
pub use load::{
    FeatureTable, LabelColumn, LoadOptions, MAX_AUTO_CLASSES, TaskKind, delimiter_for,
    first_record, load_csv, load_csv_reader, parse_csv_bytes, parse_features_bytes,
};
pub use rng::SplitMix64;
pub use scale::{Scaler, ScalerKind};
pub use split::{
    SplitIndices, SplitSpec, Splits, epoch_order, kfold_indices, split, split_indices,
};

/// What a dataset's samples are labelled with.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Classification: one class index per sample.
    Classes {
        /// The class index of each sample, each `< class_names.len()`.
        labels: Vec<u32>,
        /// The class names, indexed by class index.
        ///
        /// Text labels are numbered in the order of their first appearance in the file; labels
        /// that are all integers are numbered in ascending numeric order (so labels `0..K` keep
        /// their value as index) and named by their integer value (`"2"`).
        class_names: Vec<String>,
    },
    /// Regression: one target value per sample.
    Regression {
        /// The target value of each sample (all finite).
        values: Vec<f32>,
    },
}

impl Target {
    /// Number of samples the target describes.
    pub fn len(&self) -> usize {
        match self {
            Target::Classes { labels, .. } => labels.len(),
            Target::Regression { values } => values.len(),
        }
    }

    /// Whether the target describes no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a classification target.
    pub fn is_classification(&self) -> bool {
        matches!(self, Target::Classes { .. })
    }

    /// Keeps the samples at `indices`, in that order (class names are kept whole).
    fn subset(&self, indices: &[usize]) -> Target {
        match self {
            Target::Classes {
                labels,
                class_names,
            } => Target::Classes {
                labels: indices.iter().map(|&i| labels[i]).collect(),
                class_names: class_names.clone(),
            },
            Target::Regression { values } => Target::Regression {
                values: indices.iter().map(|&i| values[i]).collect(),
            },
        }
    }
}

/// A table of samples: `n_samples × n_features` features and one target per sample.
///
/// The fields are public so that code can build datasets of its own; [`Dataset::new`] checks
/// that they fit together, which every dataset returned by this module does:
/// `features.len() == n_samples() * n_features()`, `feature_names.len() == n_features()`,
/// all features finite, and every class label `< n_classes()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// A short name for messages (the bundled dataset's name, or the file name).
    pub name: String,
    /// The features, row-major: sample `i` is `features[i * n_features .. (i + 1) * n_features]`.
    pub features: Vec<f32>,
    /// One name per feature column (from the header row, or `feature_0`, `feature_1`, …).
    pub feature_names: Vec<String>,
    /// The label column's name (from the header row, or `label`).
    pub target_name: String,
    /// The labels or target values.
    pub target: Target,
}

impl Dataset {
    /// Builds a dataset and checks that its parts fit together (see the type's documentation).
    ///
    /// # Errors
    /// [`DataError::InvalidDataset`] naming the first mismatch found.
    pub fn new(
        name: impl Into<String>,
        features: Vec<f32>,
        feature_names: Vec<String>,
        target_name: impl Into<String>,
        target: Target,
    ) -> Result<Dataset, DataError> {
        let dataset = Dataset {
            name: name.into(),
            features,
            feature_names,
            target_name: target_name.into(),
            target,
        };
        dataset.validate()?;
        Ok(dataset)
    }

    /// Checks that the dataset's parts fit together (see the type's documentation).
    ///
    /// # Errors
    /// [`DataError::InvalidDataset`] naming the first mismatch found.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |reason: String| {
            Err(DataError::InvalidDataset {
                dataset: self.name.clone(),
                reason,
            })
        };
        let n = self.n_samples();
        let d = self.n_features();
        if n.checked_mul(d) != Some(self.features.len()) {
            return bad(format!(
                "{} feature values do not make {n} samples × {d} features",
                self.features.len()
            ));
        }
        if let Some(pos) = self.features.iter().position(|v| !v.is_finite()) {
            return bad(format!(
                "feature {} of sample {} is not finite",
                pos % d.max(1),
                pos / d.max(1)
            ));
        }
        match &self.target {
            Target::Classes {
                labels,
                class_names,
            } => {
                if let Some((i, l)) = labels
                    .iter()
                    .enumerate()
                    .find(|&(_, &l)| l as usize >= class_names.len())
                {
                    return bad(format!(
                        "sample {i} has class {l}, but there are only {} classes",
                        class_names.len()
                    ));
                }
            }
            Target::Regression { values } => {
                if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                    return bad(format!("the target value of sample {i} is not finite"));
                }
            }
        }
        Ok(())
    }

    /// Number of samples (rows).
    pub fn n_samples(&self) -> usize {
        self.target.len()
    }

    /// Number of features (columns other than the label).
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Number of classes, or 0 for a regression dataset.
    pub fn n_classes(&self) -> usize {
        match &self.target {
            Target::Classes { class_names, .. } => class_names.len(),
            Target::Regression { .. } => 0,
        }
    }

    /// Number of network outputs the target needs: the number of classes, or 1 for regression.
    pub fn n_outputs(&self) -> usize {
        match &self.target {
            Target::Classes { class_names, .. } => class_names.len(),
            Target::Regression { .. } => 1,
        }
    }

    /// Whether the dataset is labelled with classes.
    pub fn is_classification(&self) -> bool {
        self.target.is_classification()
    }

    /// The features of sample `i`.
    ///
    /// # Panics
    /// If `i >= n_samples()` (like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.n_features();
        &self.features[i * d..(i + 1) * d]
    }

    /// The class index of sample `i`, or `None` for a regression dataset.
    ///
    /// # Panics
    /// If `i >= n_samples()`.
    pub fn label(&self, i: usize) -> Option<u32> {
        match &self.target {
            Target::Classes { labels, .. } => Some(labels[i]),
            Target::Regression { .. } => None,
        }
    }

    /// The training target of sample `i`, written into `out` (which should have
    /// [`n_outputs()`](Self::n_outputs) entries).
    ///
    /// For classification `out` is set to the one-hot vector of the sample's class (all zeros,
    /// a 1 at the class index). For regression `out[0]` is the target value and any further
    /// entries are zeroed. Entries that do not fit in `out` are dropped.
    ///
    /// # Panics
    /// If `i >= n_samples()`.
    pub fn one_hot(&self, i: usize, out: &mut [f32]) {
        out.fill(0.0);
        match &self.target {
            Target::Classes { labels, .. } => {
                if let Some(slot) = out.get_mut(labels[i] as usize) {
                    *slot = 1.0;
                }
            }
            Target::Regression { values } => {
                if let Some(slot) = out.first_mut() {
                    *slot = values[i];
                }
            }
        }
    }

    /// The name of class `idx`, or `None` if there is no such class (or the dataset is a
    /// regression one).
    pub fn class_name(&self, idx: usize) -> Option<&str> {
        match &self.target {
            Target::Classes { class_names, .. } => class_names.get(idx).map(String::as_str),
            Target::Regression { .. } => None,
        }
    }

    /// All class names (empty for a regression dataset).
    pub fn class_names(&self) -> &[String] {
        match &self.target {
            Target::Classes { class_names, .. } => class_names,
            Target::Regression { .. } => &[],
        }
    }

    /// Number of samples of each class (empty for a regression dataset).
    pub fn class_counts(&self) -> Vec<usize> {
        match &self.target {
            Target::Classes {
                labels,
                class_names,
            } => {
                let mut counts = vec![0; class_names.len()];
                for &l in labels {
                    if let Some(c) = counts.get_mut(l as usize) {
                        *c += 1;
                    }
                }
                counts
            }
            Target::Regression { .. } => Vec::new(),
        }
    }

    /// A new dataset with the samples at `indices`, in that order (an index may repeat).
    ///
    /// The class names, feature names and name are kept, so class indices mean the same in
    /// the subset as in `self`.
    ///
    /// # Panics
    /// If an index is `>= n_samples()`.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let d = self.n_features();
        let mut features = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            features.extend_from_slice(self.row(i));
        }
        Dataset {
            name: self.name.clone(),
            features,
            feature_names: self.feature_names.clone(),
            target_name: self.target_name.clone(),
            target: self.target.subset(indices),
        }
    }
}
