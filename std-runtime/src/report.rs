//! The end-of-training report: per layer its penalties, per weight tensor its norms and
//! sparsity, the loss and metrics on every part of the data (accuracy; or MSE, RMSE, MAE and
//! R² for regression), and for classification the per-class precision, recall and F1 with the
//! confusion matrix (as scikit-learn's `classification_report` and `confusion_matrix`).
//!
//! Penalties are those of the final weights (kernel and bias regularizers) and the mean activity
//! penalty over the training set, from the Keras-style evaluation of the final model; they are
//! the part of the reported loss that regularization adds.

use std::fmt::Write as _;

use microfit_core::layer::PenaltyKind;
use microfit_core::train::EpochReport;
use serde::Serialize;

use crate::model::Sequential;
use crate::train_run::{FinalMetrics, PreparedData, SampleSet, SetReport};

/// Magnitude under which a weight counts as "near zero" in the sparsity columns.
pub const NEAR_ZERO: f32 = 1e-3;

/// One layer of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerRow {
    /// Keras-style name (`dense`, `dense_1`).
    pub name: String,
    /// Kind (`dense`, ...).
    pub kind: String,
    /// Output shape.
    pub output_shape: Vec<usize>,
    /// Trainable scalars.
    pub params: usize,
    /// Activation (`-` for layers without one).
    pub activation: String,
    /// Kernel penalty (None without a kernel regularizer).
    pub kernel_penalty: Option<f32>,
    /// Bias penalty.
    pub bias_penalty: Option<f32>,
    /// Activity penalty (mean over the training batches).
    pub activity_penalty: Option<f32>,
}

/// One weight tensor of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorRow {
    /// Keras variable name (`dense/kernel`).
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// `Σ|w|`.
    pub l1_norm: f32,
    /// `sqrt(Σw²)`.
    pub l2_norm: f32,
    /// `max |w|`.
    pub max_abs: f32,
    /// Values exactly 0.
    pub zeros: usize,
    /// Values with `|w| < 1e-3`.
    pub near_zero: usize,
    /// Number of values.
    pub count: usize,
}

/// Loss and metrics on one part of the data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRow {
    /// `train`, `validation` or `test`.
    pub set: String,
    /// Samples.
    pub samples: u32,
    /// Keras loss (data loss + penalties).
    pub loss: f32,
    /// Data loss.
    pub data_loss: f32,
    /// Penalties.
    pub penalty: f32,
    /// Accuracy (classification).
    pub accuracy: Option<f32>,
    /// Mean squared error (regression).
    pub mse: Option<f32>,
    /// Root mean squared error (regression).
    pub rmse: Option<f32>,
    /// Mean absolute error (regression).
    pub mae: Option<f32>,
    /// Coefficient of determination `1 - MSE / var(y)` (regression).
    pub r2: Option<f32>,
}

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassRow {
    /// The class name.
    pub class: String,
    /// `TP / (TP + FP)` (0 when nothing was predicted as the class, as scikit-learn).
    pub precision: f32,
    /// `TP / (TP + FN)` (0 without samples of the class).
    pub recall: f32,
    /// `2 · precision · recall / (precision + recall)` (0 when both are 0).
    pub f1: f32,
    /// Samples of the class.
    pub support: u32,
}

/// The classification report of one part: per class, their macro and weighted averages, and
/// the confusion matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassReport {
    /// `train`, `validation` or `test`.
    pub set: String,
    /// One row per class.
    pub classes: Vec<ClassRow>,
    /// Unweighted means of precision, recall and F1 (`support` = all samples).
    pub macro_avg: ClassRow,
    /// Means weighted by support.
    pub weighted_avg: ClassRow,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u32>>,
}

impl ClassReport {
    /// The report of a confusion matrix (`confusion[true][predicted]`).
    ///
    /// ```
    /// use microfit::report::ClassReport;
    /// // 3 samples of a: 2 right, 1 called b; 2 samples of b: both right.
    /// let r = ClassReport::from_confusion("validation", &["a".into(), "b".into()], vec![vec![2, 1], vec![0, 2]]);
    /// assert_eq!((r.classes[0].precision, r.classes[0].recall), (1.0, 2.0 / 3.0));
    /// assert_eq!((r.classes[1].precision, r.classes[1].recall), (2.0 / 3.0, 1.0));
    /// assert_eq!(r.classes[0].f1, 0.8);
    /// ```
    pub fn from_confusion(set: &str, names: &[String], confusion: Vec<Vec<u32>>) -> ClassReport {
        let k = confusion.len();
        let total: u32 = confusion.iter().flatten().sum();
        let ratio = |a: u32, b: u32| if b == 0 { 0.0 } else { a as f32 / b as f32 };
        let classes: Vec<ClassRow> = (0..k)
            .map(|c| {
                let tp = confusion[c][c];
                let support: u32 = confusion[c].iter().sum();
                let predicted: u32 = confusion.iter().map(|row| row[c]).sum();
                let precision = ratio(tp, predicted);
                let recall = ratio(tp, support);
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassRow {
                    class: names.get(c).cloned().unwrap_or_else(|| c.to_string()),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let avg = |name: &str, weight: &dyn Fn(&ClassRow) -> f32| {
            let w: f32 = classes.iter().map(weight).sum();
            let mean = |f: fn(&ClassRow) -> f32| {
                if w > 0.0 {
                    classes.iter().map(|r| weight(r) * f(r)).sum::<f32>() / w
                } else {
                    0.0
                }
            };
            ClassRow {
                class: name.to_string(),
                precision: mean(|r| r.precision),
                recall: mean(|r| r.recall),
                f1: mean(|r| r.f1),
                support: total,
            }
        };
        let macro_avg = avg("macro avg", &|_| 1.0);
        let weighted_avg = avg("weighted avg", &|r| r.support as f32);
        ClassReport {
            set: set.to_string(),
            classes,
            macro_avg,
            weighted_avg,
            confusion,
        }
    }

    /// The report as text: the per-class table, then the confusion matrix.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let f = |v: f32| format!("{v:.3}");
        let mut rows: Vec<Vec<String>> = self
            .classes
            .iter()
            .chain([&self.macro_avg, &self.weighted_avg])
            .map(|r| {
                vec![
                    r.class.clone(),
                    f(r.precision),
                    f(r.recall),
                    f(r.f1),
                    r.support.to_string(),
                ]
            })
            .collect();
        // A blank line between the classes and the averages, as scikit-learn prints it.
        rows.insert(self.classes.len(), vec![String::new(); 5]);
        s.push_str(&table(
            &["class", "precision", "recall", "f1-score", "support"],
            &rows,
        ));
        let _ = writeln!(
            s,
            "\nConfusion matrix, {} (rows: true class, columns: predicted)",
            self.set
        );
        let names: Vec<&str> = self.classes.iter().map(|c| c.class.as_str()).collect();
        s.push_str(&confusion_table(&names, &self.confusion));
        s
    }
}

/// A confusion matrix as a text table.
pub fn confusion_table(names: &[&str], confusion: &[Vec<u32>]) -> String {
    let mut headers: Vec<&str> = vec!["true \\ predicted"];
    headers.extend(names);
    let rows: Vec<Vec<String>> = confusion
        .iter()
        .zip(names)
        .map(|(row, n)| {
            let mut r = vec![(*n).to_string()];
            r.extend(row.iter().map(ToString::to_string));
            r
        })
        .collect();
    table(&headers, &rows)
}

/// Class predicted from an output row (argmax, or `> 0.5` for one sigmoid unit).
pub fn predicted_class(out: &[f32]) -> usize {
    if out.len() == 1 {
        usize::from(out[0] > 0.5)
    } else {
        microfit_core::loss::argmax(out)
    }
}

/// The confusion matrix (`[true][predicted]`, `k` classes) of `model` on a classification part.
///
/// # Errors
/// A sample that does not fit the model.
pub fn confusion_matrix(
    model: &mut Sequential,
    set: &SampleSet,
    k: usize,
) -> Result<Vec<Vec<u32>>, crate::model::SpecError> {
    let mut confusion = vec![vec![0u32; k]; k];
    let d = set.n_features;
    for i in 0..set.len() {
        let Some(y) = set.class_of(i) else { continue };
        let p = predicted_class(model.predict(&set.x[i * d..(i + 1) * d])?);
        if y < k && p < k {
            confusion[y][p] += 1;
        }
    }
    Ok(confusion)
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Layers.
    pub layers: Vec<LayerRow>,
    /// Weight tensors.
    pub tensors: Vec<TensorRow>,
    /// Metrics per part.
    pub metrics: Vec<MetricRow>,
    /// Classification: precision, recall, F1 and the confusion matrix, on the validation and
    /// test parts (the training part when there are neither).
    pub classification: Vec<ClassReport>,
}

/// The metrics row of one evaluated part.
pub fn metric_row(set: &str, m: &SetReport) -> MetricRow {
    let r: &EpochReport = &m.report;
    let get = |k: &str| {
        m.task
            .metrics(r)
            .into_iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v)
    };
    MetricRow {
        set: set.to_string(),
        samples: r.metrics.samples,
        loss: r.loss,
        data_loss: r.data_loss,
        penalty: r.penalties.total(),
        accuracy: get("accuracy"),
        mse: get("mse"),
        rmse: get("rmse"),
        mae: get("mae"),
        r2: get("r2"),
    }
}

/// Norms and sparsity of one tensor.
pub fn tensor_row(name: &str, shape: &[usize], w: &[f32]) -> TensorRow {
    let mut l1 = 0.0f64;
    let mut l2 = 0.0f64;
    let mut max_abs = 0.0f32;
    let (mut zeros, mut near) = (0, 0);
    for &v in w {
        let a = v.abs();
        l1 += f64::from(a);
        l2 += f64::from(v) * f64::from(v);
        max_abs = max_abs.max(a);
        if v == 0.0 {
            zeros += 1;
        }
        if a < NEAR_ZERO {
            near += 1;
        }
    }
    TensorRow {
        name: name.to_string(),
        shape: shape.to_vec(),
        l1_norm: l1 as f32,
        l2_norm: l2.sqrt() as f32,
        max_abs,
        zeros,
        near_zero: near,
        count: w.len(),
    }
}

/// Builds the report of `model` from its final evaluation `m` on the parts of `data`.
///
/// # Errors
/// A sample that does not fit the model (not for data the model was trained on).
pub fn build(
    model: &mut Sequential,
    m: &FinalMetrics,
    data: &PreparedData,
) -> Result<Report, crate::model::SpecError> {
    let spec = model.spec().clone();
    let shapes = spec.shapes().unwrap_or_default();
    let pen = &m.train.report.penalties;
    let mut layers = Vec::new();
    for (i, l) in spec.layers.iter().enumerate() {
        let name = model
            .layer_names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("layer_{i}"));
        let prefix = format!("{name}/");
        let params: usize = model
            .params
            .names
            .iter()
            .zip(&model.params.tensors)
            .filter(|(n, _)| n.starts_with(&prefix))
            .map(|(_, t)| t.len())
            .sum();
        let cfg = l.dense_config();
        let has = |kind: PenaltyKind| -> bool {
            match (cfg, kind) {
                (Some(c), PenaltyKind::Kernel) => c.kernel_regularizer.is_some(),
                (Some(c), PenaltyKind::Bias) => c.use_bias && c.bias_regularizer.is_some(),
                (Some(c), PenaltyKind::Activity) => c.activity_regularizer.is_some(),
                (None, _) => pen
                    .entries()
                    .iter()
                    .any(|e| e.layer as usize == i && e.kind == kind),
            }
        };
        let get = |kind: PenaltyKind| has(kind).then(|| pen.get(i, kind));
        layers.push(LayerRow {
            name,
            kind: l.kind().to_string(),
            output_shape: shapes.get(i).cloned().unwrap_or_default(),
            params,
            activation: cfg.map_or_else(
                || "-".to_string(),
                |c| c.activation.keras_name().to_string(),
            ),
            kernel_penalty: get(PenaltyKind::Kernel),
            bias_penalty: get(PenaltyKind::Bias),
            activity_penalty: get(PenaltyKind::Activity),
        });
    }
    let tensors = model
        .params
        .names
        .iter()
        .zip(&model.params.shapes)
        .zip(&model.params.tensors)
        .map(|((n, s), t)| tensor_row(n, s, t))
        .collect();
    let mut metrics = vec![metric_row("train", &m.train)];
    if let Some(v) = &m.validation {
        metrics.push(metric_row("validation", v));
    }
    if let Some(t) = &m.test {
        metrics.push(metric_row("test", t));
    }
    let mut classification = Vec::new();
    if data.info.classification {
        let names = &data.info.class_names;
        let mut parts: Vec<(&str, &SampleSet)> = Vec::new();
        if let Some(v) = &data.validation {
            parts.push(("validation", v));
        }
        if let Some(t) = &data.test {
            parts.push(("test", t));
        }
        if parts.is_empty() {
            parts.push(("train", &data.train));
        }
        for (set, part) in parts {
            let c = confusion_matrix(model, part, names.len())?;
            classification.push(ClassReport::from_confusion(set, names, c));
        }
    }
    Ok(Report {
        layers,
        tensors,
        metrics,
        classification,
    })
}

/// A regularizer in words: `L2(0.001)`, `L1L2(0.0001, 0.001)`, `Orthogonal(0.01, rows)`.
pub fn describe_reg(r: &microfit_core::regularizer::Reg) -> String {
    use microfit_core::regularizer::{OrthoMode, Reg};
    match r {
        Reg::L1 { l1 } => format!("L1({l1})"),
        Reg::L2 { l2 } => format!("L2({l2})"),
        Reg::L1L2 { l1, l2 } => format!("L1L2({l1}, {l2})"),
        Reg::Orthogonal { factor, mode } => format!(
            "Orthogonal({factor}, {})",
            if *mode == OrthoMode::Rows {
                "rows"
            } else {
                "columns"
            }
        ),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// A one-line model summary: `4 → dense(16, relu, kernel L2(0.001)) → dense(3, softmax)`.
pub fn describe_model(spec: &crate::model::ModelSpec) -> String {
    let shapes = spec.shapes().unwrap_or_default();
    let dims = |s: &[usize]| {
        s.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("×")
    };
    let mut parts = vec![dims(&spec.input_shape)];
    for (i, l) in spec.layers.iter().enumerate() {
        let mut inner = vec![shapes.get(i).map_or_else(String::new, |s| dims(s))];
        if let Some(c) = l.dense_config() {
            inner.push(c.activation.keras_name().to_string());
            for (what, r) in [
                ("kernel", &c.kernel_regularizer),
                ("bias", &c.bias_regularizer),
                ("activity", &c.activity_regularizer),
            ] {
                if let Some(r) = r {
                    inner.push(format!("{what} {}", describe_reg(r)));
                }
            }
        }
        parts.push(format!("{}({})", l.kind(), inner.join(", ")));
    }
    parts.join(" → ")
}

/// Formats a table with aligned columns (first column left-aligned, the others right-aligned).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate().take(n) {
            let pad = w[i].saturating_sub(c.chars().count());
            if i == 0 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str("  ");
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(&headers.iter().map(|h| (*h).to_string()).collect::<Vec<_>>());
    out.push('\n');
    out.push_str(
        &w.iter()
            .map(|&k| "-".repeat(k))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// `x` in C's `%g` layout with the shortest digits that read back as the same `f32`: plain from
/// 1e-4 up to 1e6 (`0.001`, `250`), scientific otherwise with a signed exponent of at least two
/// digits (`1e-05`, `1e+30`, `1.5e-07`).
///
/// ```
/// use microfit::report::g;
/// assert_eq!([g(0.0), g(1e-3), g(1e-4), g(1e-5), g(2.5e-7), g(123456.0), g(1e30)],
///            ["0", "0.001", "0.0001", "1e-05", "2.5e-07", "123456", "1e+30"]);
/// ```
pub fn g(x: f32) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let e = format!("{x:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{x}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    }
}

/// A number for a table: 4 significant digits, scientific when small or large.
pub fn num(v: f32) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.3e}")
    } else {
        let digits = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.digits$}")
    }
}

fn opt(v: Option<f32>) -> String {
    v.map_or_else(|| "-".into(), num)
}

fn shape(s: &[usize]) -> String {
    format!(
        "({})",
        s.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn pct(k: usize, n: usize) -> String {
    if n == 0 {
        "0".into()
    } else {
        format!("{k} ({:.1}%)", 100.0 * k as f64 / n as f64)
    }
}

impl Report {
    /// The report as text tables.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Layers (penalties at the final weights; activity: mean over the training set)"
        );
        let rows: Vec<Vec<String>> = self
            .layers
            .iter()
            .map(|l| {
                vec![
                    l.name.clone(),
                    l.kind.clone(),
                    shape(&l.output_shape),
                    l.params.to_string(),
                    l.activation.clone(),
                    opt(l.kernel_penalty),
                    opt(l.bias_penalty),
                    opt(l.activity_penalty),
                ]
            })
            .collect();
        s.push_str(&table(
            &[
                "layer",
                "type",
                "output",
                "params",
                "activation",
                "kernel pen.",
                "bias pen.",
                "activity pen.",
            ],
            &rows,
        ));
        let _ = writeln!(
            s,
            "\nWeights (sparsity: exact zeros, and |w| < {NEAR_ZERO})"
        );
        let rows: Vec<Vec<String>> = self
            .tensors
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    shape(&t.shape),
                    num(t.l1_norm),
                    num(t.l2_norm),
                    num(t.max_abs),
                    pct(t.zeros, t.count),
                    pct(t.near_zero, t.count),
                ]
            })
            .collect();
        s.push_str(&table(
            &[
                "tensor", "shape", "L1 norm", "L2 norm", "max |w|", "zeros", "|w|<1e-3",
            ],
            &rows,
        ));
        let classification = self.metrics.first().is_some_and(|m| m.accuracy.is_some());
        let _ = writeln!(
            s,
            "\nMetrics (Keras evaluate: loss = data loss + penalties)"
        );
        let rows: Vec<Vec<String>> = self
            .metrics
            .iter()
            .map(|m| {
                let mut r = vec![
                    m.set.clone(),
                    m.samples.to_string(),
                    num(m.loss),
                    num(m.data_loss),
                    num(m.penalty),
                ];
                if classification {
                    r.push(
                        m.accuracy
                            .map_or_else(|| "-".into(), |a| format!("{:.2}%", 100.0 * a)),
                    );
                } else {
                    r.extend([opt(m.mse), opt(m.rmse), opt(m.mae), opt(m.r2)]);
                }
                r
            })
            .collect();
        let mut headers = vec!["set", "samples", "loss", "data loss", "penalty"];
        if classification {
            headers.push("accuracy");
        } else {
            headers.extend(["mse", "rmse", "mae", "r2"]);
        }
        s.push_str(&table(&headers, &rows));
        for c in &self.classification {
            let n: u32 = c.confusion.iter().flatten().sum();
            let _ = writeln!(s, "\nClassification report, {} ({n} samples)", c.set);
            s.push_str(&c.to_text());
        }
        s
    }

    /// The report as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparsity_counts_exact_and_near_zeros() {
        let r = tensor_row("t", &[4], &[0.0, -0.0, 5e-4, 2.0]);
        assert_eq!((r.zeros, r.near_zero, r.count), (2, 3, 4));
        assert_eq!(r.l1_norm, 2.0005);
        assert_eq!(r.max_abs, 2.0);
    }

    #[test]
    fn tables_align() {
        let t = table(&["a", "bb"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "a    bb\n---  --\nxyz   1\n");
    }
}
