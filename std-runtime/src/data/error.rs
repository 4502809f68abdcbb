//! Errors of the dataset layer.
//!
//! Every error that comes from a file carries the file name (as the caller gave it), and where it
//! is known the 1-based line, the 1-based column and the column's header name, so that a message
//! reads like a compiler diagnostic:
//!
//! ```text
//! iris.csv:line 12, column 3 ("petal_length"): "abc" is not a number
//! ```

use std::fmt;
use std::path::PathBuf;

use super::load::LabelColumn;

/// Longest field text (in characters) kept in an error; longer text is cut and ends with `…`.
pub const MAX_FIELD_TEXT: usize = 40;

/// Where in a CSV file something went wrong.
///
/// Displays as `file:line L, column C ("name")`; the name part is left out when the file has no
/// header row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name as the caller gave it (a path, or a bundled dataset's file name).
    pub file: String,
    /// 1-based line on which the record starts.
    pub line: u64,
    /// 1-based column (field) number.
    pub column: usize,
    /// The column's name from the header row, when the file has one.
    pub column_name: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:line {}, column {}",
            self.file, self.line, self.column
        )?;
        if let Some(name) = &self.column_name {
            write!(f, " ({name:?})")?;
        }
        Ok(())
    }
}

/// One part of a train/validation/test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SplitPart {
    /// The training set.
    Train,
    /// The validation set (used for early stopping and model selection).
    Validation,
    /// The held-out test set.
    Test,
}

impl SplitPart {
    /// The part's lower-case name: `"train"`, `"validation"` or `"test"`.
    pub fn name(self) -> &'static str {
        match self {
            SplitPart::Train => "train",
            SplitPart::Validation => "validation",
            SplitPart::Test => "test",
        }
    }
}

impl fmt::Display for SplitPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong while loading, checking, scaling or splitting a dataset.
///
/// No function of the dataset layer panics on bad input data; it returns one of these instead.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be opened or read.
    Io {
        /// The path (or reader name) that failed.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A field is not valid UTF-8.
    InvalidUtf8 {
        /// Where the field is.
        at: Location,
        /// Offset of the first bad byte inside the field.
        valid_up_to: usize,
    },
    /// The file holds no records at all (empty, or only blank lines).
    EmptyFile {
        /// The file name.
        file: String,
    },
    /// The file has a header row but no data rows.
    NoDataRows {
        /// The file name.
        file: String,
    },
    /// A row has a different number of fields from the first row.
    RaggedRow {
        /// The file name.
        file: String,
        /// 1-based line on which the row starts.
        line: u64,
        /// Number of fields of the first row (the header, if any).
        expected: usize,
        /// Number of fields found on this row.
        found: usize,
    },
    /// A field that must be a number is empty (a missing value).
    EmptyField {
        /// Where the field is.
        at: Location,
    },
    /// A field that must be a number does not parse as one.
    NonNumeric {
        /// Where the field is.
        at: Location,
        /// The field's text, cut to [`MAX_FIELD_TEXT`] characters.
        text: String,
    },
    /// A field parses as a number, but as NaN, an infinity, or a value beyond the `f32` range.
    NonFinite {
        /// Where the field is.
        at: Location,
        /// The field's text, cut to [`MAX_FIELD_TEXT`] characters.
        text: String,
    },
    /// The label column asked for does not exist.
    UnknownLabelColumn {
        /// The file name.
        file: String,
        /// The label column that was asked for.
        requested: LabelColumn,
        /// The available columns: header names, or `"0"`, `"1"`, … (0-based indices) when the
        /// file has no header row.
        available: Vec<String>,
    },
    /// Every column is the label column: no features are left.
    NoFeatureColumns {
        /// The file name.
        file: String,
    },
    /// Two header fields have the same name, so a column cannot be chosen by name.
    DuplicateColumn {
        /// The file name.
        file: String,
        /// The repeated name.
        name: String,
        /// 1-based column of its first use.
        first: usize,
        /// 1-based column of its second use.
        second: usize,
    },
    /// A feature or dropped column asked for does not exist.
    UnknownColumn {
        /// The file name.
        file: String,
        /// The name (or index) asked for.
        requested: String,
        /// What it was asked for as (`feature`, `--drop`).
        role: &'static str,
        /// The available columns: header names, or 0-based indices without a header.
        available: Vec<String>,
    },
    /// The chosen columns do not fit together (a feature that is also the label, listed twice, …).
    InvalidColumnChoice {
        /// The file name.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The CSV reader reported a syntax error that fits no other variant.
    Malformed {
        /// The file name.
        file: String,
        /// 1-based line, when known.
        line: Option<u64>,
        /// The reader's message.
        message: String,
    },
    /// A dataset's parts do not fit together (feature count, sample count, label range).
    InvalidDataset {
        /// The dataset's name.
        dataset: String,
        /// What is wrong.
        reason: String,
    },
    /// A row or dataset has a different number of features from the one expected (e.g. by a
    /// fitted [`Scaler`](super::Scaler)).
    FeatureCountMismatch {
        /// Number of features expected.
        expected: usize,
        /// Number of features found.
        found: usize,
    },
    /// A [`SplitSpec`](super::SplitSpec) is not usable (fractions negative, NaN, or summing to 1
    /// or more).
    InvalidSplitSpec {
        /// What is wrong.
        reason: String,
    },
    /// A class has too few samples to put at least one in every non-empty part of a stratified
    /// split.
    EmptyClassInSplit {
        /// The dataset's name.
        dataset: String,
        /// The class's name.
        class: String,
        /// Number of samples of that class in the dataset.
        samples: usize,
        /// The part that would be left without a sample of the class.
        part: SplitPart,
        /// Number of non-empty parts (each needs at least one sample of every class).
        parts: usize,
    },
    /// The dataset has too few samples for the requested split.
    TooFewSamples {
        /// The dataset's name.
        dataset: String,
        /// Number of samples in the dataset.
        available: usize,
        /// Number of samples needed (one per non-empty part).
        needed: usize,
    },
}

/// Cuts `text` to [`MAX_FIELD_TEXT`] characters (on a character boundary), appending `…` when
/// anything was cut.
pub(crate) fn truncate_text(text: &str) -> String {
    match text.char_indices().nth(MAX_FIELD_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `; available columns: "a", "b"` (nothing when there are none).
fn write_available(f: &mut fmt::Formatter<'_>, available: &[String]) -> fmt::Result {
    if available.is_empty() {
        return Ok(());
    }
    write!(f, "; available columns: ")?;
    for (k, col) in available.iter().enumerate() {
        if k > 0 {
            write!(f, ", ")?;
        }
        write!(f, "{col:?}")?;
    }
    Ok(())
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Io { path, source } => {
                write!(f, "{}: cannot read: {source}", path.display())
            }
            DataError::InvalidUtf8 { at, valid_up_to } => write!(
                f,
                "{at}: invalid UTF-8 (bad byte at offset {valid_up_to} of the field)"
            ),
            DataError::EmptyFile { file } => write!(f, "{file}: the file is empty"),
            DataError::NoDataRows { file } => {
                write!(f, "{file}: the file has a header row but no data rows")
            }
            DataError::RaggedRow {
                file,
                line,
                expected,
                found,
            } => write!(
                f,
                "{file}:line {line}: expected {expected} fields (as on the first row), found {found}"
            ),
            DataError::EmptyField { at } => write!(f, "{at}: empty field (missing value)"),
            DataError::NonNumeric { at, text } => write!(f, "{at}: {text:?} is not a number"),
            DataError::NonFinite { at, text } => write!(
                f,
                "{at}: {text:?} is not a finite number (NaN, infinity, or beyond the f32 range)"
            ),
            DataError::UnknownLabelColumn {
                file,
                requested,
                available,
            } => {
                match requested {
                    LabelColumn::Last => write!(f, "{file}: the file has no columns")?,
                    LabelColumn::Index(i) => write!(
                        f,
                        "{file}: label column index {i} is out of range (0-based; the file has {} columns)",
                        available.len()
                    )?,
                    LabelColumn::Name(name) => {
                        write!(f, "{file}: there is no label column named {name:?}")?
                    }
                }
                write_available(f, available)
            }
            DataError::NoFeatureColumns { file } => write!(
                f,
                "{file}: no feature columns are left besides the label (if the file is separated \
                 by something other than ',', ';' or tabs, convert it to commas)"
            ),
            DataError::DuplicateColumn {
                file,
                name,
                first,
                second,
            } => write!(
                f,
                "{file}: columns {first} and {second} are both named {name:?}; rename one so that \
                 columns can be chosen by name"
            ),
            DataError::UnknownColumn {
                file,
                requested,
                role,
                available,
            } => {
                write!(
                    f,
                    "{file}: there is no column {requested:?} (given as {role})"
                )?;
                write_available(f, available)
            }
            DataError::InvalidColumnChoice { file, reason } => write!(f, "{file}: {reason}"),
            DataError::Malformed {
                file,
                line,
                message,
            } => match line {
                Some(line) => write!(f, "{file}:line {line}: malformed CSV: {message}"),
                None => write!(f, "{file}: malformed CSV: {message}"),
            },
            DataError::InvalidDataset { dataset, reason } => {
                write!(f, "dataset {dataset:?}: {reason}")
            }
            DataError::FeatureCountMismatch { expected, found } => {
                write!(f, "expected {expected} features, found {found}")
            }
            DataError::InvalidSplitSpec { reason } => write!(f, "invalid split: {reason}"),
            DataError::EmptyClassInSplit {
                dataset,
                class,
                samples,
                part,
                parts,
            } => write!(
                f,
                "dataset {dataset:?}: class {class:?} has {samples} sample(s), too few to put at \
                 least one in each of the {parts} parts of a stratified split (the {part} set \
                 would have none); lower the split fractions, disable stratification, or add \
                 samples"
            ),
            DataError::TooFewSamples {
                dataset,
                available,
                needed,
            } => write!(
                f,
                "dataset {dataset:?}: {available} sample(s) are too few for the requested split \
                 (at least {needed} needed, one per part)"
            ),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
