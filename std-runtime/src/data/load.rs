//! CSV loading.
//!
//! A file is read whole into memory and parsed with the `csv` crate; every field is checked, and
//! the first problem found is returned as a [`DataError`] naming the file, the 1-based line and
//! column, and the column's header name when there is a header.
//!
//! Accepted input: any delimiter byte (`,` by default), quoted fields (RFC 4180), `\n` or `\r\n`
//! line ends, blank or whitespace-only lines (skipped), a leading UTF-8 byte-order mark (skipped),
//! and whitespace around fields (trimmed). Feature fields must parse as finite `f32` numbers
//! (`1`, `-2.5`, `3e-4`, …); `nan`, `inf` and values beyond the `f32` range are rejected.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{DataError, Location, truncate_text};
use super::{Dataset, Target};

/// Largest number of distinct integer labels for which [`TaskKind::Auto`] still picks
/// classification (more distinct integers are taken as a regression target).
pub const MAX_AUTO_CLASSES: usize = 100;

/// Which column of a CSV file holds the label (the target); every other column is a feature.
///
/// Serializes with serde as `"last"`, `{"index": 3}` or `{"name": "class"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelColumn {
    /// The last column (the default, as in the bundled datasets).
    #[default]
    Last,
    /// The column at this 0-based index (`Index(0)` is the first column, which error messages
    /// call "column 1").
    Index(usize),
    /// The column with this header name (needs a header row). An exact match is preferred; a
    /// case-insensitive match is accepted when it is the only one.
    Name(String),
}

impl fmt::Display for LabelColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelColumn::Last => f.write_str("the last column"),
            LabelColumn::Index(i) => write!(f, "column index {i}"),
            LabelColumn::Name(name) => write!(f, "column {name:?}"),
        }
    }
}

/// Whether the label column holds classes or regression values.
///
/// Serializes with serde as `"auto"`, `"classification"` or `"regression"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Classification if the label column has any non-numeric value, or if all its values are
    /// integers with at most [`MAX_AUTO_CLASSES`] distinct values; regression otherwise.
    #[default]
    Auto,
    /// Always classification (any label text is a class name).
    Classification,
    /// Always regression (every label must be a finite number).
    Regression,
}

/// How to read a CSV file. `LoadOptions::default()` reads the label from the last column,
/// uses every other column as a feature, auto-detects the header row and the task, and splits
/// fields at commas (or at `;` / tabs when the first line has no comma but one of those).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Which column holds the label.
    pub label: LabelColumn,
    /// Whether the first row is a header: `Some(true)` / `Some(false)` to say so, `None` to
    /// detect it (the first row is a header when one of its feature fields is not a number).
    /// A [`LabelColumn::Name`] implies a header unless this is `Some(false)`, which is an error.
    pub has_header: Option<bool>,
    /// Classification, regression, or automatic choice.
    pub task: TaskKind,
    /// The field delimiter byte (`b','` by default; `b';'` and `b'\t'` are common too).
    pub delimiter: u8,
    /// With the `,` delimiter: when the first line holds no comma but a `;` or a tab, split
    /// at that instead (default `true`).
    pub detect_delimiter: bool,
    /// The feature columns, in this order (header names, or 0-based indices); `None` (the
    /// default) takes every column except the label and [`drop`](Self::drop).
    pub features: Option<Vec<String>>,
    /// Columns left out of the features (header names or 0-based indices), e.g. an ID column.
    pub drop: Vec<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            label: LabelColumn::Last,
            has_header: None,
            task: TaskKind::Auto,
            delimiter: b',',
            detect_delimiter: true,
            features: None,
            drop: Vec::new(),
        }
    }
}

impl LoadOptions {
    /// The default options (see the type's documentation).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the label column.
    pub fn with_label(mut self, label: LabelColumn) -> Self {
        self.label = label;
        self
    }

    /// Sets whether the first row is a header (`None` = detect).
    pub fn with_header(mut self, has_header: Option<bool>) -> Self {
        self.has_header = has_header;
        self
    }

    /// Sets the task kind.
    pub fn with_task(mut self, task: TaskKind) -> Self {
        self.task = task;
        self
    }

    /// Sets the field delimiter byte (and turns off the `;` / tab detection).
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self.detect_delimiter = false;
        self
    }

    /// Keeps only these feature columns, in this order (header names or 0-based indices).
    pub fn with_features(mut self, features: Option<Vec<String>>) -> Self {
        self.features = features;
        self
    }

    /// Leaves these columns out of the features (header names or 0-based indices).
    pub fn with_drop(mut self, drop: Vec<String>) -> Self {
        self.drop = drop;
        self
    }
}

/// Loads a CSV file from `path`.
///
/// Error messages and the dataset's [`name`](Dataset::name) use the path as given.
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read, or any error of [`parse_csv_bytes`].
pub fn load_csv(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_csv_bytes(&path.display().to_string(), &bytes, opts)
}

/// Loads CSV data from `reader`, using `name` in error messages and as the dataset's name.
///
/// # Errors
/// [`DataError::Io`] (with `name` as the path) if reading fails, or any error of
/// [`parse_csv_bytes`].
pub fn load_csv_reader(
    name: &str,
    mut reader: impl Read,
    opts: &LoadOptions,
) -> Result<Dataset, DataError> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|source| DataError::Io {
            path: name.into(),
            source,
        })?;
    parse_csv_bytes(name, &bytes, opts)
}

/// Parses CSV data held in memory, using `name` in error messages and as the dataset's name.
///
/// Never panics, whatever the bytes.
///
/// # Errors
/// The first problem found, in file order: [`DataError::EmptyFile`], [`DataError::InvalidUtf8`],
/// [`DataError::DuplicateColumn`], [`DataError::UnknownLabelColumn`],
/// [`DataError::UnknownColumn`], [`DataError::NoFeatureColumns`], [`DataError::RaggedRow`],
/// [`DataError::EmptyField`], [`DataError::NonNumeric`], [`DataError::NonFinite`],
/// [`DataError::NoDataRows`] or [`DataError::Malformed`].
pub fn parse_csv_bytes(name: &str, bytes: &[u8], opts: &LoadOptions) -> Result<Dataset, DataError> {
    let t = read_table(name, bytes, opts, true)?;
    let target = t.rows.resolve_target(opts.task)?;
    Ok(Dataset {
        name: name.into(),
        features: t.rows.features,
        feature_names: t.feature_names,
        target_name: t.target_name,
        target,
    })
}

/// Feature columns read without a label column (data to predict on).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureTable {
    /// The file name as given.
    pub name: String,
    /// The features, row-major.
    pub features: Vec<f32>,
    /// One name per feature column (header names, or `feature_0`, … without a header).
    pub feature_names: Vec<String>,
    /// Whether the first row was a header.
    pub has_header: bool,
}

impl FeatureTable {
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.features.len() / self.feature_names.len().max(1)
    }
}

/// Parses CSV data that has no label column: every column (or [`LoadOptions::features`], minus
/// [`LoadOptions::drop`]) is a feature; [`LoadOptions::label`] and `task` are not used.
///
/// # Errors
/// As [`parse_csv_bytes`].
pub fn parse_features_bytes(
    name: &str,
    bytes: &[u8],
    opts: &LoadOptions,
) -> Result<FeatureTable, DataError> {
    let t = read_table(name, bytes, opts, false)?;
    Ok(FeatureTable {
        name: name.into(),
        features: t.rows.features,
        feature_names: t.feature_names,
        has_header: t.has_header,
    })
}

/// The first record of CSV data (trimmed fields), with the delimiter `opts` would use; `None`
/// when the data holds no record.
///
/// # Errors
/// [`DataError::Malformed`], [`DataError::InvalidUtf8`].
pub fn first_record(
    name: &str,
    bytes: &[u8],
    opts: &LoadOptions,
) -> Result<Option<Vec<String>>, DataError> {
    let mut reader = csv_reader(bytes, opts);
    let mut record = csv::ByteRecord::new();
    if !read_record(name, &mut reader, &mut record)? {
        return Ok(None);
    }
    decode_record(name, &record, record_line(&record), None).map(Some)
}

/// The delimiter to split `bytes` at: [`LoadOptions::delimiter`], or `;` / tab when detection is
/// on, the delimiter is `,`, and the first non-blank line has no comma but one of those.
pub fn delimiter_for(bytes: &[u8], opts: &LoadOptions) -> u8 {
    if !opts.detect_delimiter || opts.delimiter != b',' {
        return opts.delimiter;
    }
    let line = bytes
        .split(|&b| b == b'\n')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
        .unwrap_or(&[]);
    if line.contains(&b',') {
        b','
    } else if line.contains(&b';') {
        b';'
    } else if line.contains(&b'\t') {
        b'\t'
    } else {
        b','
    }
}

/// A CSV reader of `bytes` (a leading byte-order mark skipped) with the delimiter `opts` gives.
fn csv_reader<'b>(bytes: &'b [u8], opts: &LoadOptions) -> csv::Reader<&'b [u8]> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter_for(bytes, opts))
        .from_reader(bytes)
}

/// What [`read_table`] found.
struct Table<'a> {
    has_header: bool,
    feature_names: Vec<String>,
    target_name: String,
    rows: RowParser<'a>,
}

/// Reads the whole table: the header (if any), the chosen feature columns and, when
/// `with_label`, the label column.
fn read_table<'a>(
    name: &'a str,
    bytes: &[u8],
    opts: &LoadOptions,
    with_label: bool,
) -> Result<Table<'a>, DataError> {
    let mut reader = csv_reader(bytes, opts);
    let mut record = csv::ByteRecord::new();

    if !read_record(name, &mut reader, &mut record)? {
        return Err(DataError::EmptyFile { file: name.into() });
    }
    let first_line = record_line(&record);
    let first = decode_record(name, &record, first_line, None)?;
    let n_fields = first.len();

    let (label_idx, has_header) = if with_label {
        let (i, h) = resolve_label(name, &first, opts)?;
        (Some(i), h)
    } else {
        let h = opts.has_header.unwrap_or_else(|| {
            names_columns(opts) || first.iter().any(|f| f.parse::<f32>().is_err())
        });
        (None, h)
    };
    let header: Option<Vec<String>> = has_header.then(|| first.clone());
    if let Some(h) = &header {
        check_duplicate_names(name, h)?;
    }
    let columns = feature_columns(name, &first, header.as_deref(), label_idx, opts)?;
    let feature_names = columns
        .iter()
        .enumerate()
        .map(|(j, &c)| match &header {
            Some(h) if !h[c].is_empty() => h[c].clone(),
            _ => format!("feature_{j}"),
        })
        .collect();
    let target_name = match (&header, label_idx) {
        (Some(h), Some(l)) if !h[l].is_empty() => h[l].clone(),
        _ => "label".to_owned(),
    };

    let mut rows = RowParser {
        name,
        header: header.clone(),
        columns,
        label_idx,
        features: Vec::new(),
        labels: Vec::new(),
        n_rows: 0,
    };
    if !has_header {
        rows.push(&first, first_line)?;
    }
    while read_record(name, &mut reader, &mut record)? {
        let line = record_line(&record);
        if record.len() != n_fields {
            return Err(DataError::RaggedRow {
                file: name.into(),
                line,
                expected: n_fields,
                found: record.len(),
            });
        }
        let fields = decode_record(name, &record, line, header.as_deref())?;
        rows.push(&fields, line)?;
    }
    if rows.n_rows == 0 {
        return Err(DataError::NoDataRows { file: name.into() });
    }
    Ok(Table {
        has_header,
        feature_names,
        target_name,
        rows,
    })
}

/// Two header fields with the same (non-empty) name are an error naming both columns.
fn check_duplicate_names(name: &str, header: &[String]) -> Result<(), DataError> {
    for (j, b) in header.iter().enumerate() {
        if b.is_empty() {
            continue;
        }
        if let Some(i) = header[..j].iter().position(|a| a == b) {
            return Err(DataError::DuplicateColumn {
                file: name.into(),
                name: b.clone(),
                first: i + 1,
                second: j + 1,
            });
        }
    }
    Ok(())
}

/// The 0-based column `wanted` names: an exact header name, else the only case-insensitive
/// match, else a 0-based index.
fn find_column(first: &[String], header: bool, wanted: &str) -> Option<usize> {
    let wanted = wanted.trim();
    if header {
        if let Some(c) = first.iter().position(|f| f == wanted) {
            return Some(c);
        }
        let lower = wanted.to_lowercase();
        let mut matches = first
            .iter()
            .enumerate()
            .filter(|(_, f)| f.to_lowercase() == lower);
        if let (Some((c, _)), None) = (matches.next(), matches.next()) {
            return Some(c);
        }
    }
    wanted.parse::<usize>().ok().filter(|&i| i < first.len())
}

/// The feature columns: [`LoadOptions::features`] in order, or every column except the label
/// and [`LoadOptions::drop`].
fn feature_columns(
    name: &str,
    first: &[String],
    header: Option<&[String]>,
    label_idx: Option<usize>,
    opts: &LoadOptions,
) -> Result<Vec<usize>, DataError> {
    let available = || match header {
        Some(h) => h.to_vec(),
        None => (0..first.len()).map(|i| i.to_string()).collect(),
    };
    let find = |wanted: &String, role: &'static str| {
        find_column(first, header.is_some(), wanted).ok_or_else(|| DataError::UnknownColumn {
            file: name.into(),
            requested: wanted.clone(),
            role,
            available: available(),
        })
    };
    let column_name = |c: usize| match header {
        Some(h) if !h[c].is_empty() => format!("{:?}", h[c]),
        _ => format!("{}", c + 1),
    };
    let mut dropped = Vec::with_capacity(opts.drop.len());
    for d in &opts.drop {
        dropped.push(find(d, "--drop")?);
    }
    let columns: Vec<usize> = match &opts.features {
        Some(list) => {
            let mut cols = Vec::with_capacity(list.len());
            for f in list {
                let c = find(f, "feature")?;
                if Some(c) == label_idx || cols.contains(&c) || dropped.contains(&c) {
                    let why = if Some(c) == label_idx {
                        "it is the label column"
                    } else if cols.contains(&c) {
                        "it is listed twice"
                    } else {
                        "it is also dropped"
                    };
                    return Err(DataError::InvalidColumnChoice {
                        file: name.into(),
                        reason: format!("column {} cannot be a feature: {why}", column_name(c)),
                    });
                }
                cols.push(c);
            }
            cols
        }
        None => (0..first.len())
            .filter(|c| Some(*c) != label_idx && !dropped.contains(c))
            .collect(),
    };
    if columns.is_empty() {
        return Err(DataError::NoFeatureColumns { file: name.into() });
    }
    Ok(columns)
}

/// Reads the next record, skipping lines that hold only whitespace; `Ok(false)` at the end of
/// the data.
fn read_record(
    name: &str,
    reader: &mut csv::Reader<&[u8]>,
    record: &mut csv::ByteRecord,
) -> Result<bool, DataError> {
    loop {
        let more = read_raw_record(name, reader, record)?;
        let blank = record.len() == 1 && record[0].iter().all(u8::is_ascii_whitespace);
        if !more || !blank {
            return Ok(more);
        }
    }
}

/// Reads the next record as the `csv` crate sees it.
fn read_raw_record(
    name: &str,
    reader: &mut csv::Reader<&[u8]>,
    record: &mut csv::ByteRecord,
) -> Result<bool, DataError> {
    reader.read_byte_record(record).map_err(|err| {
        let line = err.position().map(csv::Position::line);
        let message = err.to_string();
        match err.into_kind() {
            csv::ErrorKind::Io(source) => DataError::Io {
                path: name.into(),
                source,
            },
            _ => DataError::Malformed {
                file: name.into(),
                line,
                message,
            },
        }
    })
}

/// The 1-based line on which `record` starts.
fn record_line(record: &csv::ByteRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

/// Decodes every field of `record` as trimmed UTF-8 text.
fn decode_record(
    name: &str,
    record: &csv::ByteRecord,
    line: u64,
    header: Option<&[String]>,
) -> Result<Vec<String>, DataError> {
    record
        .iter()
        .enumerate()
        .map(|(c, raw)| match std::str::from_utf8(raw) {
            Ok(text) => Ok(text.trim().to_owned()),
            Err(e) => Err(DataError::InvalidUtf8 {
                at: location(name, line, c, header),
                valid_up_to: e.valid_up_to(),
            }),
        })
        .collect()
}

/// The location of 0-based column `c` on `line`.
fn location(name: &str, line: u64, c: usize, header: Option<&[String]>) -> Location {
    Location {
        file: name.into(),
        line,
        column: c + 1,
        column_name: header.and_then(|h| h.get(c)).cloned(),
    }
}

/// Works out the label column's index and whether the first row is a header.
fn resolve_label(
    name: &str,
    first: &[String],
    opts: &LoadOptions,
) -> Result<(usize, bool), DataError> {
    let n = first.len();
    let indices = || (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
    let any_non_numeric = |skip: Option<usize>| {
        first
            .iter()
            .enumerate()
            .any(|(c, f)| Some(c) != skip && f.parse::<f32>().is_err())
    };
    match &opts.label {
        LabelColumn::Name(wanted) => {
            if opts.has_header == Some(false) {
                return Err(DataError::UnknownLabelColumn {
                    file: name.into(),
                    requested: opts.label.clone(),
                    available: indices(),
                });
            }
            let wanted = wanted.trim();
            let exact = first.iter().position(|f| f == wanted);
            let found = exact.or_else(|| {
                let mut matches = first
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.to_lowercase() == wanted.to_lowercase());
                match (matches.next(), matches.next()) {
                    (Some((c, _)), None) => Some(c),
                    _ => None,
                }
            });
            match found {
                Some(c) => Ok((c, true)),
                None => Err(DataError::UnknownLabelColumn {
                    file: name.into(),
                    requested: opts.label.clone(),
                    available: first.to_vec(),
                }),
            }
        }
        LabelColumn::Last | LabelColumn::Index(_) => {
            let idx = match opts.label {
                LabelColumn::Index(i) => i,
                _ => n.saturating_sub(1),
            };
            if idx >= n {
                let header = opts.has_header.unwrap_or_else(|| any_non_numeric(None));
                return Err(DataError::UnknownLabelColumn {
                    file: name.into(),
                    requested: opts.label.clone(),
                    available: if header { first.to_vec() } else { indices() },
                });
            }
            let header = opts
                .has_header
                .unwrap_or_else(|| names_columns(opts) || any_non_numeric(Some(idx)));
            Ok((idx, header))
        }
    }
}

/// Whether the feature choice names a column by a header name (so the file needs a header).
fn names_columns(opts: &LoadOptions) -> bool {
    opts.features
        .iter()
        .flatten()
        .chain(&opts.drop)
        .any(|c| c.trim().parse::<usize>().is_err())
}

/// Accumulates the data rows.
struct RowParser<'a> {
    name: &'a str,
    header: Option<Vec<String>>,
    /// The feature columns, in feature order.
    columns: Vec<usize>,
    label_idx: Option<usize>,
    features: Vec<f32>,
    /// The label text of each row and the line it is on.
    labels: Vec<(String, u64)>,
    n_rows: usize,
}

impl RowParser<'_> {
    /// Parses one row's features and keeps its label text.
    fn push(&mut self, fields: &[String], line: u64) -> Result<(), DataError> {
        for &c in &self.columns {
            let text = &fields[c];
            let value = parse_number(text).map_err(|kind| self.error(kind, line, c, text))?;
            self.features.push(value);
        }
        if let Some(l) = self.label_idx {
            let label = &fields[l];
            if label.is_empty() {
                return Err(self.error(NumberError::Empty, line, l, label));
            }
            self.labels.push((label.clone(), line));
        }
        self.n_rows += 1;
        Ok(())
    }

    /// The label column (0 when there is none; only used in errors about labels).
    fn label_column(&self) -> usize {
        self.label_idx.unwrap_or(0)
    }

    /// Builds the error for field `text` at 0-based column `c` of `line`.
    fn error(&self, kind: NumberError, line: u64, c: usize, text: &str) -> DataError {
        let at = location(self.name, line, c, self.header.as_deref());
        match kind {
            NumberError::Empty => DataError::EmptyField { at },
            NumberError::NotANumber => DataError::NonNumeric {
                at,
                text: truncate_text(text),
            },
            NumberError::NotFinite => DataError::NonFinite {
                at,
                text: truncate_text(text),
            },
        }
    }

    /// Turns the label texts into a classification or regression target.
    fn resolve_target(&self, task: TaskKind) -> Result<Target, DataError> {
        let numeric: Option<Vec<f64>> = self
            .labels
            .iter()
            .map(|(text, _)| text.parse::<f64>().ok())
            .collect();
        let integers: Option<Vec<i64>> = numeric
            .as_ref()
            .and_then(|values| values.iter().map(|&v| as_integer(v)).collect());
        match task {
            TaskKind::Regression => self.regression(),
            TaskKind::Classification => match integers {
                Some(ints) => self.integer_classes(&ints),
                None => self.text_classes(),
            },
            TaskKind::Auto => match (numeric, integers) {
                (None, _) => self.text_classes(),
                (Some(_), Some(ints)) if distinct_at_most(&ints, MAX_AUTO_CLASSES) => {
                    self.integer_classes(&ints)
                }
                (Some(_), _) => self.regression(),
            },
        }
    }

    /// Every label must be a finite `f32`.
    fn regression(&self) -> Result<Target, DataError> {
        let values = self
            .labels
            .iter()
            .map(|(text, line)| {
                parse_number(text)
                    .map_err(|kind| self.error(kind, *line, self.label_column(), text))
            })
            .collect::<Result<Vec<f32>, DataError>>()?;
        Ok(Target::Regression { values })
    }

    /// Integer labels, numbered in ascending numeric order and named by their value.
    fn integer_classes(&self, ints: &[i64]) -> Result<Target, DataError> {
        let mut index: BTreeMap<i64, u32> = ints.iter().map(|&v| (v, 0)).collect();
        for (k, slot) in index.values_mut().enumerate() {
            *slot = self.class_index(k)?;
        }
        let class_names = index.keys().map(|v| v.to_string()).collect();
        let labels = ints
            .iter()
            .map(|v| index.get(v).copied().unwrap_or(0))
            .collect();
        Ok(Target::Classes {
            labels,
            class_names,
        })
    }

    /// Text labels, numbered in order of first appearance.
    fn text_classes(&self) -> Result<Target, DataError> {
        let mut index: HashMap<&str, u32> = HashMap::new();
        let mut class_names = Vec::new();
        let mut labels = Vec::with_capacity(self.labels.len());
        for (text, _) in &self.labels {
            let class = match index.get(text.as_str()) {
                Some(&class) => class,
                None => {
                    let class = self.class_index(class_names.len())?;
                    index.insert(text, class);
                    class_names.push(text.clone());
                    class
                }
            };
            labels.push(class);
        }
        Ok(Target::Classes {
            labels,
            class_names,
        })
    }

    /// Converts a class count to a `u32` class index.
    fn class_index(&self, k: usize) -> Result<u32, DataError> {
        u32::try_from(k).map_err(|_| DataError::InvalidDataset {
            dataset: self.name.into(),
            reason: "more than 2^32 classes".into(),
        })
    }
}

/// Why a field is not a usable number.
#[derive(Debug, Clone, Copy)]
enum NumberError {
    Empty,
    NotANumber,
    NotFinite,
}

/// Parses a trimmed field as a finite `f32`.
fn parse_number(text: &str) -> Result<f32, NumberError> {
    if text.is_empty() {
        return Err(NumberError::Empty);
    }
    match text.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(NumberError::NotFinite),
        Err(_) => Err(NumberError::NotANumber),
    }
}

/// `v` as an integer, if it is a whole number that `f64` represents exactly.
fn as_integer(v: f64) -> Option<i64> {
    const LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    (v.is_finite() && v.fract() == 0.0 && v.abs() <= LIMIT).then_some(v as i64)
}

/// Whether `values` has at most `max` distinct values.
fn distinct_at_most(values: &[i64], max: usize) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    for &v in values {
        seen.insert(v);
        if seen.len() > max {
            return false;
        }
    }
    true
}
