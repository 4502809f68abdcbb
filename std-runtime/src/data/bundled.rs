//! Datasets compiled into the binary.
//!
//! The CSV files in `std-runtime/datasets/` are embedded with `include_str!`, so examples, tests
//! and benchmarks work without any file at run time. Their sources and licences are in
//! `std-runtime/datasets/PROVENANCE.md` (all CC BY 4.0, from the UCI Machine Learning
//! Repository via scikit-learn).

use std::fmt;
use std::str::FromStr;

use super::load::{LoadOptions, TaskKind, load_csv, parse_csv_bytes};
use super::{DataError, Dataset};

/// A dataset bundled with the binary. All are classification tasks with the class in the last
/// column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bundled {
    /// Fisher's iris: 150 samples × 4 features, 3 classes (setosa, versicolor, virginica),
    /// sorted by class.
    Iris,
    /// Optical handwritten digits: 1797 samples × 64 features (8×8 images, integers 0..=16),
    /// 10 classes (`0`..`9`, class index = digit).
    Digits,
    /// Wine recognition: 178 samples × 13 features, 3 classes (class_0..class_2), sorted by
    /// class.
    Wine,
    /// Breast Cancer Wisconsin (Diagnostic): 569 samples × 30 features, 2 classes (malignant,
    /// benign).
    BreastCancer,
}

impl Bundled {
    /// Every bundled dataset, in a fixed order.
    pub const ALL: [Bundled; 4] = [
        Bundled::Iris,
        Bundled::Digits,
        Bundled::Wine,
        Bundled::BreastCancer,
    ];

    /// Every bundled dataset, in a fixed order.
    pub fn all() -> &'static [Bundled] {
        &Self::ALL
    }

    /// The dataset's name: `"iris"`, `"digits"`, `"wine"` or `"breast_cancer"`.
    pub fn name(self) -> &'static str {
        match self {
            Bundled::Iris => "iris",
            Bundled::Digits => "digits",
            Bundled::Wine => "wine",
            Bundled::BreastCancer => "breast_cancer",
        }
    }

    /// The dataset's CSV file name (used in error messages), e.g. `"iris.csv"`.
    pub fn file_name(self) -> &'static str {
        match self {
            Bundled::Iris => "iris.csv",
            Bundled::Digits => "digits.csv",
            Bundled::Wine => "wine.csv",
            Bundled::BreastCancer => "breast_cancer.csv",
        }
    }

    /// The dataset for `name`, ignoring case and surrounding whitespace, and treating `-` and
    /// ` ` like `_` (so `"Breast-Cancer"` works); a trailing `.csv` is not accepted, as that
    /// names a file. `None` for any other name.
    pub fn from_name(name: &str) -> Option<Bundled> {
        let key: String = name
            .trim()
            .chars()
            .map(|c| match c {
                '-' | ' ' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        Self::ALL.into_iter().find(|b| b.name() == key)
    }

    /// The embedded CSV text.
    pub fn csv_text(self) -> &'static str {
        match self {
            Bundled::Iris => include_str!("../../datasets/iris.csv"),
            Bundled::Digits => include_str!("../../datasets/digits.csv"),
            Bundled::Wine => include_str!("../../datasets/wine.csv"),
            Bundled::BreastCancer => include_str!("../../datasets/breast_cancer.csv"),
        }
    }

    /// Parses the embedded CSV into a [`Dataset`] named [`name()`](Self::name).
    ///
    /// # Errors
    /// None in practice (the embedded files are checked by the tests); any [`DataError`] of
    /// [`parse_csv_bytes`] is passed on rather than panicking.
    pub fn load(self) -> Result<Dataset, DataError> {
        self.load_with(&LoadOptions::default())
    }

    /// As [`load`](Self::load), with the label and the feature columns of `opts`
    /// ([`LoadOptions::label`], [`features`](LoadOptions::features),
    /// [`drop`](LoadOptions::drop)) and its task when it is not `Auto` (the header and the
    /// delimiter are known).
    ///
    /// # Errors
    /// As [`parse_csv_bytes`] (an unknown column name, ...).
    pub fn load_with(self, opts: &LoadOptions) -> Result<Dataset, DataError> {
        let mut opts = opts.clone().with_header(Some(true)).with_delimiter(b',');
        if opts.task == TaskKind::Auto {
            opts.task = TaskKind::Classification;
        }
        let mut data = parse_csv_bytes(self.file_name(), self.csv_text().as_bytes(), &opts)?;
        data.name = self.name().to_owned();
        Ok(data)
    }
}

impl fmt::Display for Bundled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown bundled dataset name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBundled(pub String);

impl fmt::Display for UnknownBundled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown bundled dataset {:?}; known: ", self.0)?;
        for (k, b) in Bundled::ALL.iter().enumerate() {
            if k > 0 {
                f.write_str(", ")?;
            }
            f.write_str(b.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownBundled {}

impl FromStr for Bundled {
    type Err = UnknownBundled;

    /// As [`Bundled::from_name`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bundled::from_name(s).ok_or_else(|| UnknownBundled(s.to_owned()))
    }
}

/// Loads `source`: a bundled dataset if it is one of their names (see
/// [`Bundled::from_name`]), otherwise the CSV file at that path with the default
/// [`LoadOptions`].
///
/// # Errors
/// As [`Bundled::load`] or [`load_csv`].
pub fn load_source(source: &str) -> Result<Dataset, DataError> {
    load_source_with(source, &LoadOptions::default())
}

/// As [`load_source`], reading a file with `opts` (a bundled dataset takes only the column
/// choice and task of `opts`, see [`Bundled::load_with`]).
///
/// # Errors
/// As [`Bundled::load_with`] or [`load_csv`].
pub fn load_source_with(source: &str, opts: &LoadOptions) -> Result<Dataset, DataError> {
    match Bundled::from_name(source) {
        Some(bundled) => bundled.load_with(opts),
        None => load_csv(source, opts),
    }
}

/// The bytes of `source` (a bundled dataset's embedded CSV, or the file at that path) and the
/// name to use in messages, with the options that read it (a bundled dataset has a header and
/// commas).
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read.
pub fn source_bytes(
    source: &str,
    opts: &LoadOptions,
) -> Result<(String, std::borrow::Cow<'static, [u8]>, LoadOptions), DataError> {
    match Bundled::from_name(source) {
        Some(b) => Ok((
            b.file_name().to_owned(),
            std::borrow::Cow::Borrowed(b.csv_text().as_bytes()),
            opts.clone().with_header(Some(true)).with_delimiter(b','),
        )),
        None => std::fs::read(source)
            .map(|bytes| {
                (
                    source.to_owned(),
                    std::borrow::Cow::Owned(bytes),
                    opts.clone(),
                )
            })
            .map_err(|e| DataError::Io {
                path: source.into(),
                source: e,
            }),
    }
}
