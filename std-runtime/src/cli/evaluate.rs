//! `microfit evaluate` and `microfit predict`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use microfit_core::activation::Activation;
use microfit_core::loss::argmax;
use microfit_core::train::Trainable;

use super::{CliError, EXIT_OK, write_text};
use crate::data::{
    Bundled, DataError, Dataset, LoadOptions, Location, MAX_FIELD_TEXT, Target, TaskKind,
    load_source_with,
};
use crate::history::{json_f32, json_object, json_string};
use crate::model::Sequential;
use crate::modelfile::ModelFile;
use crate::report;
use crate::spec::{TrainConfig, parse_label_column};
use crate::train_run::{SampleSet, evaluate_set};

/// `microfit evaluate` flags.
#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// The trained model (model.mfit)
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Dataset: a bundled name or a CSV path [default: the data the model was trained on]
    #[arg(long, value_name = "NAME|PATH.csv")]
    pub data: Option<String>,
    /// Label column of the CSV file: a header name, a 0-based index, or `last`
    #[arg(long, value_name = "COL")]
    pub label: Option<String>,
    /// Evaluation batch size (only matters for activity penalties) [default: the training batch size]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,
    /// Print one JSON object instead of the table
    #[arg(long)]
    pub json: bool,
}

/// `microfit predict` flags.
#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// The trained model (model.mfit)
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// CSV file of features (optionally with the label column), or a bundled dataset name
    #[arg(long, value_name = "PATH.csv|NAME")]
    pub data: String,
    /// Label column, when the file has one: a header name, a 0-based index, or `last`
    #[arg(long, value_name = "COL")]
    pub label: Option<String>,
    /// Write the predictions to this CSV file instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// A loaded model with its file.
struct Loaded {
    file: ModelFile,
    cfg: TrainConfig,
    model: Sequential,
}

fn load_model(path: &Path) -> Result<Loaded, CliError> {
    let file = ModelFile::load(path)?;
    let (cfg, model) = file.build_model(path)?;
    Ok(Loaded { file, cfg, model })
}

/// Loads `source` with the model's task, checks the features and maps the class names onto the
/// model's class indices; the features are left unscaled.
///
/// # Errors
/// The data cannot be loaded, has the wrong number of features, or a class the model does not know.
pub(crate) fn load_raw_for_model(
    file: &ModelFile,
    source: &str,
    label: Option<&str>,
) -> Result<Dataset, CliError> {
    let info = &file.data;
    let task = if info.classification {
        TaskKind::Classification
    } else {
        TaskKind::Regression
    };
    let label = label.or(if source == info.source {
        info.label.as_deref()
    } else {
        None
    });
    let opts = LoadOptions::default()
        .with_label(parse_label_column(label))
        .with_task(task);
    let mut d = load_source_with(source, &opts)?;
    let n = info.feature_names.len();
    if d.n_features() != n {
        return Err(CliError::new(format!(
            "{source}: the data has {} feature columns, the model expects {n} ({})",
            d.n_features(),
            info.feature_names.join(", ")
        )));
    }
    if let Target::Classes {
        labels,
        class_names,
    } = &d.target
    {
        let map: Vec<u32> = class_names
            .iter()
            .map(|c| {
                info.class_names
                    .iter()
                    .position(|m| m == c)
                    .map(|i| i as u32)
                    .ok_or_else(|| {
                        CliError::new(format!(
                            "{source}: class {c:?} is not one of the model's classes ({})",
                            info.class_names.join(", ")
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        let labels = labels.iter().map(|&x| map[x as usize]).collect();
        d.target = Target::Classes {
            labels,
            class_names: info.class_names.clone(),
        };
    }
    Ok(d)
}

/// [`load_raw_for_model`], then the model's scaler.
fn load_for_model(l: &Loaded, source: &str, label: Option<&str>) -> Result<Dataset, CliError> {
    let mut d = load_raw_for_model(&l.file, source, label)?;
    l.file.scaler.transform(&mut d)?;
    Ok(d)
}

/// Runs `microfit evaluate`.
///
/// # Errors
/// A [`CliError`] for a bad model file or data.
pub fn run_evaluate(a: &EvaluateArgs) -> Result<u8, CliError> {
    let mut l = load_model(&a.model)?;
    let source = a.data.clone().unwrap_or_else(|| l.file.data.source.clone());
    let d = load_for_model(&l, &source, a.label.as_deref())?;
    let n_out = l.model.output_len();
    let set = SampleSet::new(&d, l.cfg.loss, n_out);
    let bs = a.batch_size.unwrap_or(l.cfg.batch_size);
    let r = evaluate_set(&mut l.model, l.cfg.loss, &set, bs)?;
    let classification = l.file.data.classification;
    // Confusion matrix (rows: true class, columns: predicted).
    let k = l.file.data.class_names.len();
    let mut confusion = vec![vec![0u32; k]; k];
    if classification {
        for (i, &y) in set.classes.iter().enumerate() {
            let out = l.model.predict(d.row(i))?;
            let p = predicted_class(out);
            if let (Some(row), true) = (confusion.get_mut(y as usize), p < k) {
                row[p] += 1;
            }
        }
        // One-unit binary models use dense 0/1 targets.
        for (i, &y) in set.dense.iter().enumerate() {
            let out = l.model.predict(d.row(i))?;
            let p = predicted_class(out);
            let y = y as usize;
            if y < k && p < k {
                confusion[y][p] += 1;
            }
        }
    }
    if a.json {
        let mut pairs = vec![
            (
                "model".to_string(),
                json_string(&a.model.display().to_string()),
            ),
            ("data".to_string(), json_string(&source)),
            ("samples".to_string(), r.metrics.samples.to_string()),
            ("loss".to_string(), json_f32(r.loss)),
            ("data_loss".to_string(), json_f32(r.data_loss)),
            ("penalty".to_string(), json_f32(r.penalties.total())),
        ];
        if classification {
            pairs.push(("accuracy".into(), json_f32(r.metrics.accuracy())));
            pairs.push((
                "class_names".into(),
                serde_json::to_string(&l.file.data.class_names).unwrap_or_default(),
            ));
            pairs.push((
                "confusion".into(),
                serde_json::to_string(&confusion).unwrap_or_default(),
            ));
        } else {
            pairs.push(("mse".into(), json_f32(r.metrics.mse())));
            pairs.push(("mae".into(), json_f32(r.metrics.mae())));
        }
        println!("{}", json_object(&pairs));
        return Ok(EXIT_OK);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model {} on {source}: {} samples",
        a.model.display(),
        r.metrics.samples
    );
    let _ = writeln!(
        s,
        "loss       {}  (data loss {} + penalties {})",
        report::num(r.loss),
        report::num(r.data_loss),
        report::num(r.penalties.total())
    );
    if classification {
        let _ = writeln!(s, "accuracy   {:.2}%", 100.0 * r.metrics.accuracy());
        let _ = writeln!(
            s,
            "\nConfusion matrix (rows: true class, columns: predicted)"
        );
        let names = &l.file.data.class_names;
        let mut headers: Vec<&str> = vec!["true \\ predicted"];
        headers.extend(names.iter().map(String::as_str));
        let rows: Vec<Vec<String>> = confusion
            .iter()
            .zip(names)
            .map(|(row, n)| {
                let mut r = vec![n.clone()];
                r.extend(row.iter().map(ToString::to_string));
                r
            })
            .collect();
        s.push_str(&report::table(&headers, &rows));
    } else {
        let _ = writeln!(s, "mse        {}", report::num(r.metrics.mse()));
        let _ = writeln!(s, "mae        {}", report::num(r.metrics.mae()));
    }
    print!("{s}");
    Ok(EXIT_OK)
}

/// Class predicted from an output row (argmax, or `> 0.5` for one sigmoid unit).
fn predicted_class(out: &[f32]) -> usize {
    if out.len() == 1 {
        usize::from(out[0] > 0.5)
    } else {
        argmax(out)
    }
}

/// The first record's number of fields, if any.
fn first_record_len(bytes: &[u8]) -> Option<usize> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    r.byte_records()
        .filter_map(Result::ok)
        .find(|rec| {
            !(rec.is_empty() || rec.len() == 1 && rec[0].iter().all(u8::is_ascii_whitespace))
        })
        .map(|rec| rec.len())
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_FIELD_TEXT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Reads a CSV of features only (`n` columns, optional header), with the data layer's errors.
fn read_features(file: &str, bytes: &[u8], n: usize) -> Result<Vec<f32>, DataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut header: Option<Vec<String>> = None;
    let mut out = Vec::new();
    let mut first = true;
    let mut records = 0usize;
    for rec in r.byte_records() {
        let rec = rec.map_err(|e| DataError::Malformed {
            file: file.to_string(),
            line: e.position().map(|p| p.line()),
            message: e.to_string(),
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        if rec.is_empty() || (rec.len() == 1 && rec[0].is_empty()) {
            continue;
        }
        records += 1;
        let text: Vec<String> = rec
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        if first {
            first = false;
            if text.iter().any(|t| t.parse::<f32>().is_err()) {
                if text.len() != n {
                    return Err(DataError::RaggedRow {
                        file: file.to_string(),
                        line,
                        expected: n,
                        found: text.len(),
                    });
                }
                header = Some(text);
                continue;
            }
        }
        if text.len() != n {
            return Err(DataError::RaggedRow {
                file: file.to_string(),
                line,
                expected: n,
                found: text.len(),
            });
        }
        for (j, t) in text.iter().enumerate() {
            let at = Location {
                file: file.to_string(),
                line,
                column: j + 1,
                column_name: header.as_ref().and_then(|h| h.get(j).cloned()),
            };
            if t.is_empty() {
                return Err(DataError::EmptyField { at });
            }
            let v: f32 = t.parse().map_err(|_| DataError::NonNumeric {
                at: at.clone(),
                text: cut(t),
            })?;
            if !v.is_finite() {
                return Err(DataError::NonFinite { at, text: cut(t) });
            }
            out.push(v);
        }
    }
    if records == 0 {
        return Err(DataError::EmptyFile {
            file: file.to_string(),
        });
    }
    if out.is_empty() {
        return Err(DataError::NoDataRows {
            file: file.to_string(),
        });
    }
    Ok(out)
}

/// Runs `microfit predict`.
///
/// # Errors
/// A [`CliError`] for a bad model file or data.
pub fn run_predict(a: &PredictArgs) -> Result<u8, CliError> {
    let mut l = load_model(&a.model)?;
    let info = l.file.data.clone();
    let n = info.feature_names.len();
    // Features, and the true labels when the data has them.
    let (x, actual): (Vec<f32>, Option<Vec<String>>) = if Bundled::from_name(&a.data).is_some() {
        let d = load_for_model(&l, &a.data, a.label.as_deref())?;
        let names: Vec<String> = (0..d.n_samples()).map(|i| label_text(&d, i)).collect();
        (d.features.clone(), Some(names))
    } else {
        let bytes = std::fs::read(&a.data)
            .map_err(|e| CliError::new(format!("{}: cannot read: {e}", a.data)))?;
        match first_record_len(&bytes) {
            Some(k) if k == n && a.label.is_none() => {
                let mut x = read_features(&a.data, &bytes, n)?;
                for row in x.chunks_exact_mut(n) {
                    l.file.scaler.transform_row(row)?;
                }
                (x, None)
            }
            Some(k) if k == n + 1 || a.label.is_some() => {
                let d = load_for_model(&l, &a.data, a.label.as_deref())?;
                let names: Vec<String> = (0..d.n_samples()).map(|i| label_text(&d, i)).collect();
                (d.features.clone(), Some(names))
            }
            Some(k) => {
                return Err(CliError::new(format!(
                    "{}: the file has {k} columns; the model expects {n} feature columns ({}), or {} with a label column",
                    a.data,
                    info.feature_names.join(", "),
                    n + 1
                )));
            }
            None => {
                return Err(CliError::from(DataError::EmptyFile {
                    file: a.data.clone(),
                }));
            }
        }
    };
    let classification = info.classification;
    let one_unit_binary = classification && l.model.output_len() == 1;
    let mut csv = String::from("row,predicted");
    if classification {
        for c in &info.class_names {
            csv.push(',');
            csv.push_str(&csv_field(&format!("p_{c}")));
        }
    }
    if actual.is_some() {
        csv.push_str(",actual");
    }
    csv.push('\n');
    let mut correct = 0usize;
    let rows = x.len() / n.max(1);
    for i in 0..rows {
        let out = l.model.predict(&x[i * n..(i + 1) * n])?.to_vec();
        let pred = if classification {
            let p = predicted_class(&out);
            info.class_names
                .get(p)
                .cloned()
                .unwrap_or_else(|| p.to_string())
        } else {
            format!("{}", out[0])
        };
        let _ = write!(csv, "{i},{}", csv_field(&pred));
        if classification {
            let probs: Vec<f32> = if one_unit_binary {
                vec![1.0 - out[0], out[0]]
            } else {
                out.clone()
            };
            for p in probs {
                let _ = write!(csv, ",{p}");
            }
        }
        if let Some(act) = &actual {
            let _ = write!(csv, ",{}", csv_field(&act[i]));
            if classification && act[i] == pred {
                correct += 1;
            }
        }
        csv.push('\n');
    }
    let output_is_probability = matches!(
        l.model.output_activation(),
        Activation::Softmax | Activation::Sigmoid
    );
    match &a.out {
        Some(p) => {
            write_text(p, &csv)?;
            eprintln!("wrote {rows} predictions to {}", p.display());
        }
        None => print!("{csv}"),
    }
    if classification {
        eprintln!("classes: {}", info.class_names.join(", "));
        if !output_is_probability {
            eprintln!(
                "note: the model's output layer is not softmax/sigmoid, so the p_ columns are raw outputs"
            );
        }
        if actual.is_some() && rows > 0 {
            eprintln!(
                "accuracy against the label column: {:.2}% ({correct}/{rows})",
                100.0 * correct as f64 / rows as f64
            );
        }
    }
    Ok(EXIT_OK)
}

fn label_text(d: &Dataset, i: usize) -> String {
    match &d.target {
        Target::Classes {
            labels,
            class_names,
        } => class_names
            .get(labels[i] as usize)
            .cloned()
            .unwrap_or_default(),
        Target::Regression { values } => format!("{}", values[i]),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
