//! `microfit evaluate` and `microfit predict`.
//!
//! A model remembers its feature names, their order and its label column. A CSV with a header
//! is matched **by name**: the model's feature columns are picked wherever they are, extra
//! columns are ignored, and missing ones are an error naming them. A file without a header
//! must have the model's number of feature columns (plus the label column where it was during
//! training), and a note says that the columns were matched by position.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use microfit_core::activation::Activation;
use microfit_core::train::Trainable;

use super::out::{line, note, text};
use super::{CliError, EXIT_OK, write_text};
use crate::data::{
    DataError, Dataset, LabelColumn, LoadOptions, Target, TaskKind, first_record, parse_csv_bytes,
    parse_features_bytes, source_bytes,
};
use crate::history::{json_f32, json_object, json_string};
use crate::model::Sequential;
use crate::modelfile::{DataInfo, ModelFile};
use crate::report::{self, ClassReport, confusion_matrix, predicted_class};
use crate::spec::{TrainConfig, parse_label_column};
use crate::train_run::{SampleSet, evaluate_set};

/// `microfit evaluate` flags.
#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// The trained model (model.mfit, or a .keras file: features by position, classes 0, 1, …)
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Dataset: a bundled name or a CSV path; columns are matched to the model's by header
    /// name [default: the data the model was trained on]
    #[arg(long, value_name = "NAME|PATH.csv")]
    pub data: Option<String>,
    /// Label column of the CSV file: a header name, a 0-based index, or `last` [default: the
    /// model's label column name]
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
    /// The trained model (model.mfit, or a .keras file: features by position, classes 0, 1, …)
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// CSV file of features (columns matched to the model's by header name; the label column,
    /// when present, adds an error summary), or a bundled dataset name
    #[arg(long, value_name = "PATH.csv|NAME")]
    pub data: String,
    /// Label column, when the file has one: a header name, a 0-based index, or `last`
    #[arg(long, value_name = "COL")]
    pub label: Option<String>,
    /// Write the predictions to this CSV file instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write exactly the model's outputs, one row per sample, no header (Keras model.predict)
    #[arg(long)]
    pub raw: bool,
}

/// A loaded model with its file.
struct Loaded {
    file: ModelFile,
    cfg: TrainConfig,
    model: Sequential,
}

fn load_model(path: &Path) -> Result<Loaded, CliError> {
    let file = ModelFile::open(path)?;
    let (cfg, model) = file.build_model(path)?;
    Ok(Loaded { file, cfg, model })
}

/// Whether the label column must be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Labels {
    Required,
    IfPresent,
    /// The label column is left out if there, and not read.
    Ignored,
}

/// The model's columns read from a file (features unscaled).
struct ModelInput {
    /// The features, the model's columns in its order, row-major.
    x: Vec<f32>,
    /// The whole dataset, when the file has the label column (classes mapped to the model's).
    labelled: Option<Dataset>,
}

/// Whether the model's feature names were made up (`feature_0`, …: trained without a header).
fn generated_names(info: &DataInfo) -> bool {
    info.feature_names
        .iter()
        .enumerate()
        .all(|(j, n)| *n == format!("feature_{j}"))
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the model's feature columns (by name with a header, by position without) and the label
/// column if there (see the module docs).
fn read_for_model(
    info: &DataInfo,
    source: &str,
    label: Option<&str>,
    labels: Labels,
) -> Result<ModelInput, CliError> {
    let task = if info.classification {
        TaskKind::Classification
    } else {
        TaskKind::Regression
    };
    let (name, bytes, opts) = source_bytes(source, &LoadOptions::default().with_task(task))?;
    let first = first_record(&name, &bytes, &opts)?
        .ok_or_else(|| CliError::from(DataError::EmptyFile { file: name.clone() }))?;
    let names = &info.feature_names;
    let n = names.len();
    let by_name = !generated_names(info) && names.iter().all(|f| first.contains(f));
    let load = |opts: &LoadOptions, with_label: bool| -> Result<ModelInput, CliError> {
        if with_label {
            let d = parse_csv_bytes(&name, &bytes, opts)?;
            Ok(ModelInput {
                x: d.features.clone(),
                labelled: match labels {
                    Labels::Ignored => None,
                    _ => Some(map_classes(info, &name, d)?),
                },
            })
        } else {
            let t = parse_features_bytes(&name, &bytes, opts)?;
            Ok(ModelInput {
                x: t.features,
                labelled: None,
            })
        }
    };
    if by_name {
        let label_name = label.map_or_else(|| info.target_name.clone(), str::to_string);
        let column = parse_label_column(Some(&label_name));
        let present = match &column {
            LabelColumn::Name(l) => first.iter().any(|f| f == l),
            LabelColumn::Index(i) => *i < first.len(),
            LabelColumn::Last => true,
        };
        let opts = opts
            .clone()
            .with_header(Some(true))
            .with_features(Some(names.clone()))
            .with_label(column);
        if present {
            return load(&opts, true);
        }
        if labels == Labels::Required {
            return Err(CliError::new(format!(
                "{name}: there is no label column {label_name:?} (the column the model was trained \
                 to predict), so there is nothing to compare the predictions with; the file has \
                 {}. Name the label column with --label, or use `microfit predict` for data \
                 without labels",
                quoted(&first)
            )));
        }
        return load(&opts, false);
    }
    // Not every feature name is there: a header naming other columns, or no header at all.
    let label_at = |len: usize| match label
        .map(|l| parse_label_column(Some(l)))
        .or_else(|| info.label.as_deref().map(|l| parse_label_column(Some(l))))
    {
        Some(LabelColumn::Index(i)) if i < len => i,
        _ => len.saturating_sub(1),
    };
    let numeric = |skip: Option<usize>| {
        first
            .iter()
            .enumerate()
            .all(|(c, f)| Some(c) == skip || f.parse::<f32>().is_ok())
    };
    let with_label = first.len() == n + 1;
    let headerless = numeric(None) || (with_label && numeric(Some(label_at(first.len()))));
    let header = !headerless;
    if header && !generated_names(info) {
        let missing: Vec<String> = names
            .iter()
            .filter(|f| !first.contains(f))
            .cloned()
            .collect();
        return Err(CliError::new(format!(
            "{name}: the header does not name every feature of the model: {} missing (the file \
             has {}; the model was trained on {})",
            quoted(&missing),
            quoted(&first),
            quoted(names)
        )));
    }
    if first.len() != n && !with_label {
        return Err(CliError::new(format!(
            "{name}: the file has {} columns and {}; matched by position, the model needs its \
             {n} feature columns ({}){}",
            first.len(),
            if header {
                "a header that does not name the model's features"
            } else {
                "no header"
            },
            names.join(", "),
            if labels == Labels::Required {
                " and the label column".to_string()
            } else {
                format!(", or {} with the label column", n + 1)
            }
        )));
    }
    if !with_label && labels == Labels::Required {
        return Err(CliError::new(format!(
            "{name}: the file has the model's {n} feature columns but no label column, so there \
             is nothing to compare the predictions with; use `microfit predict` for data \
             without labels"
        )));
    }
    note(&format!(
        "note: {name} {}; its columns were matched to the model's features by position ({})",
        if header {
            "has a header but the model does not name its features (trained without a header, or a .keras model)"
        } else {
            "has no header row"
        },
        names.join(", ")
    ));
    let opts = opts.clone().with_header(Some(header));
    let opts = if with_label {
        opts.with_label(LabelColumn::Index(label_at(first.len())))
    } else {
        opts
    };
    load(&opts, with_label)
}

/// Maps the class names of `d` onto the model's class indices.
fn map_classes(info: &DataInfo, source: &str, mut d: Dataset) -> Result<Dataset, CliError> {
    if let Target::Classes {
        labels,
        class_names,
    } = &d.target
    {
        let number = |s: &str| s.trim().parse::<f64>().ok();
        // A model that does not name its classes (a `.keras` model: `0`, `1`, …) and a file
        // that names them in words: the file's classes in their order.
        let unnamed = info
            .class_names
            .iter()
            .enumerate()
            .all(|(i, c)| *c == i.to_string());
        if unnamed
            && class_names.len() <= info.class_names.len()
            && class_names.iter().any(|c| number(c).is_none())
        {
            note(&format!(
                "note: the model does not name its classes; the classes of {source} ({}) are its \
                 classes 0, 1, … in that order",
                class_names.join(", ")
            ));
            d.target = Target::Classes {
                labels: labels.clone(),
                class_names: info.class_names.clone(),
            };
            d.feature_names.clone_from(&info.feature_names);
            return Ok(d);
        }
        let map: Vec<u32> = class_names
            .iter()
            .map(|c| {
                info.class_names
                    .iter()
                    .position(|m| m == c)
                    // A class written as a number is the model's class of that number (`1.0`
                    // is class `1` of a `.keras` model).
                    .or_else(|| {
                        let v = number(c)?;
                        info.class_names.iter().position(|m| number(m) == Some(v))
                    })
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
    d.feature_names.clone_from(&info.feature_names);
    Ok(d)
}

/// Loads `source` for the model in `file`, with its label column: the model's feature columns
/// (by name, see the module docs), classes mapped onto the model's; features unscaled.
///
/// # Errors
/// The data cannot be loaded, lacks a feature or the label column, or has a class the model
/// does not know.
pub(crate) fn load_raw_for_model(
    file: &ModelFile,
    source: &str,
    label: Option<&str>,
) -> Result<Dataset, CliError> {
    let input = read_for_model(&file.data, source, label, Labels::Required)?;
    input
        .labelled
        .ok_or_else(|| CliError::new(format!("{source}: no label column")))
}

/// The value of a report's metric for people: `92.00%` or a number.
fn metric_text(key: &str, v: f32) -> String {
    if key == "accuracy" {
        format!("{:.2}%", 100.0 * v)
    } else {
        report::num(v)
    }
}

/// Runs `microfit evaluate`.
///
/// # Errors
/// A [`CliError`] for a bad model file or data.
pub fn run_evaluate(a: &EvaluateArgs) -> Result<u8, CliError> {
    let mut l = load_model(&a.model)?;
    let source = match &a.data {
        Some(d) => d.clone(),
        None if l.file.data.source.is_empty() => {
            return Err(CliError::usage(format!(
                "{} does not say what data it was trained on: give --data",
                a.model.display()
            )));
        }
        None => l.file.data.source.clone(),
    };
    let mut d = load_raw_for_model(&l.file, &source, a.label.as_deref())?;
    l.file.scaler.transform(&mut d)?;
    let n_out = l.model.output_len();
    let set = SampleSet::new(&d, l.cfg.loss, n_out);
    let bs = a.batch_size.unwrap_or(l.cfg.batch_size);
    let r = evaluate_set(&mut l.model, l.cfg.loss, &set, bs)?;
    let metrics = set.task.metrics(&r);
    let names = &l.file.data.class_names;
    let classes = if set.task.is_classification() {
        let c = confusion_matrix(&mut l.model, &set, names.len())?;
        Some(ClassReport::from_confusion("data", names, c))
    } else {
        None
    };
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
        for (k, v) in &metrics {
            pairs.push(((*k).to_string(), json_f32(*v)));
        }
        if let Some(c) = &classes {
            pairs.push((
                "class_names".into(),
                serde_json::to_string(names).unwrap_or_default(),
            ));
            pairs.push((
                "confusion".into(),
                serde_json::to_string(&c.confusion).unwrap_or_default(),
            ));
            pairs.push((
                "classes".into(),
                serde_json::to_string(&c.classes).unwrap_or_default(),
            ));
        }
        line(&json_object(&pairs))?;
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
    for (k, v) in &metrics {
        let _ = writeln!(s, "{k:<10} {}", metric_text(k, *v));
    }
    if let Some(c) = &classes {
        let _ = writeln!(s);
        s.push_str(&c.to_text());
    }
    text(&s)?;
    Ok(EXIT_OK)
}

/// Runs `microfit predict`.
///
/// # Errors
/// A [`CliError`] for a bad model file or data.
pub fn run_predict(a: &PredictArgs) -> Result<u8, CliError> {
    let mut l = load_model(&a.model)?;
    let info = l.file.data.clone();
    let n = info.feature_names.len();
    let labels = if a.raw {
        Labels::Ignored
    } else {
        Labels::IfPresent
    };
    let input = read_for_model(&info, &a.data, a.label.as_deref(), labels)?;
    let mut x = input.x;
    for row in x.chunks_exact_mut(n.max(1)) {
        l.file.scaler.transform_row(row)?;
    }
    if a.raw {
        return write_raw(&mut l.model, &x, a.out.as_deref());
    }
    let actual: Option<Vec<String>> = input
        .labelled
        .as_ref()
        .map(|d| (0..d.n_samples()).map(|i| label_text(d, i)).collect());
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
            note(&format!("wrote {rows} predictions to {}", p.display()));
        }
        None => text(&csv)?,
    }
    if classification {
        note(&format!("classes: {}", info.class_names.join(", ")));
        if !output_is_probability {
            note(
                "note: the model's output layer is not softmax/sigmoid, so the p_ columns are raw outputs",
            );
        }
        if actual.is_some() && rows > 0 {
            note(&format!(
                "accuracy against the label column: {:.2}% ({correct}/{rows})",
                100.0 * correct as f64 / rows as f64
            ));
        }
    } else if let Some(mut d) = input.labelled {
        // Regression with targets: the errors, as `evaluate` computes them.
        l.file.scaler.transform(&mut d)?;
        let set = SampleSet::new(&d, l.cfg.loss, l.model.output_len());
        let r = evaluate_set(&mut l.model, l.cfg.loss, &set, l.cfg.batch_size)?;
        let errors: Vec<String> = set
            .task
            .metrics(&r)
            .iter()
            .map(|(k, v)| format!("{k} {}", report::num(*v)))
            .collect();
        note(&format!(
            "against the target column {:?} ({rows} rows): {}",
            info.target_name,
            errors.join(", ")
        ));
    }
    Ok(EXIT_OK)
}

/// `predict --raw`: the model's outputs, one CSV row per sample, no header.
fn write_raw(model: &mut Sequential, x: &[f32], out: Option<&Path>) -> Result<u8, CliError> {
    let y = model.predict_rows(x)?;
    let width = model.output_len().max(1);
    let mut csv = String::with_capacity(y.len() * 12);
    for row in y.chunks(width) {
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                csv.push(',');
            }
            let _ = write!(csv, "{v}");
        }
        csv.push('\n');
    }
    match out {
        Some(p) => {
            write_text(p, &csv)?;
            note(&format!(
                "wrote {} rows of {width} outputs to {}",
                y.len() / width,
                p.display()
            ));
        }
        None => text(&csv)?,
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
