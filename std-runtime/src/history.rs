//! Training history shaped like Keras' `History.history`: one list of per-epoch values per key.
//!
//! Keys, in this order:
//! * `loss`: the batch-size-weighted mean of the pre-update total losses of the epoch (data loss
//!   plus every penalty, as Keras reports it);
//! * `accuracy` (classification) or `mse`, `rmse`, `mae` and `r2` (regression): metrics on the
//!   pre-update outputs of each batch, as Keras computes its running training metrics
//!   (`r2 = 1 - mse / var(y)`, the variance of the targets of the same part, as Keras'
//!   `R2Score` accumulated over the epoch);
//! * `data_loss`: the loss without penalties;
//! * one key per penalty, `<layer>/<kind>_penalty` (`dense/kernel_penalty`,
//!   `dense_1/activity_penalty`, ...), with the same weighting;
//! * with a validation set, the same with a `val_` prefix (`val_loss`, `val_accuracy`,
//!   `val_data_loss`, ...), from Keras-style evaluation at the end of the epoch (weight
//!   penalties of the end-of-epoch weights and activity penalties of the validation batches are
//!   included in `val_loss`).
//!
//! ```
//! use microfit::history::History;
//! let mut h = History::default();
//! h.push_epoch(&[("loss".into(), 1.0), ("accuracy".into(), 0.5)]);
//! h.push_epoch(&[("loss".into(), 0.5), ("accuracy".into(), 0.75)]);
//! assert_eq!(h.get("loss"), Some(&[1.0, 0.5][..]));
//! assert_eq!(h.to_json(), r#"{"loss":[1.0,0.5],"accuracy":[0.5,0.75]}"#);
//! assert_eq!(History::from_json(&h.to_json()).unwrap(), h);
//! ```

use std::fmt::Write as _;

use microfit_core::layer::PenaltyKind;
use microfit_core::train::EpochReport;
use serde::{Deserialize, Serialize};

/// Per-epoch values by key, in insertion order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    keys: Vec<String>,
    values: Vec<Vec<f32>>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of epochs recorded.
    pub fn epochs(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }

    /// The keys, in order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The values of `key`, one per epoch.
    pub fn get(&self, key: &str) -> Option<&[f32]> {
        self.keys
            .iter()
            .position(|k| k == key)
            .map(|i| &self.values[i][..])
    }

    /// The last value of `key`.
    pub fn last(&self, key: &str) -> Option<f32> {
        self.get(key).and_then(|v| v.last().copied())
    }

    /// Appends one epoch. A key seen for the first time gets NaN for the earlier epochs; a
    /// known key missing from `row` gets NaN for this epoch.
    pub fn push_epoch(&mut self, row: &[(String, f32)]) {
        let n = self.epochs();
        for (k, _) in row {
            if !self.keys.contains(k) {
                self.keys.push(k.clone());
                self.values.push(vec![f32::NAN; n]);
            }
        }
        for (k, col) in self.keys.iter().zip(self.values.iter_mut()) {
            let v = row
                .iter()
                .find(|(rk, _)| rk == k)
                .map_or(f32::NAN, |(_, v)| *v);
            col.push(v);
        }
    }

    /// Keeps the first `epochs` epochs.
    pub fn truncate(&mut self, epochs: usize) {
        for col in &mut self.values {
            col.truncate(epochs);
        }
    }

    /// `{"loss": [...], "accuracy": [...], ...}` (non-finite values as `null`).
    pub fn to_json(&self) -> String {
        let mut s = String::from("{");
        for (i, (k, col)) in self.keys.iter().zip(&self.values).enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&json_string(k));
            s.push_str(":[");
            for (j, v) in col.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                s.push_str(&json_f32(*v));
            }
            s.push(']');
        }
        s.push('}');
        s
    }

    /// Parses [`to_json`](Self::to_json)'s output (`null` reads as NaN).
    ///
    /// # Errors
    /// A message if the text is not such an object or the lists differ in length.
    pub fn from_json(text: &str) -> Result<History, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let obj = v.as_object().ok_or("a history must be a JSON object")?;
        // serde_json's map is sorted; recover the file order from the text.
        let mut keys: Vec<&String> = obj.keys().collect();
        keys.sort_by_key(|k| text.find(&json_string(k)).unwrap_or(usize::MAX));
        let mut h = History::new();
        for k in keys {
            let list = obj[k.as_str()]
                .as_array()
                .ok_or_else(|| format!("history key {k:?} is not a list"))?;
            let col: Vec<f32> = list
                .iter()
                .map(|x| x.as_f64().map_or(f32::NAN, |f| f as f32))
                .collect();
            if !h.values.is_empty() && col.len() != h.epochs() {
                return Err(format!(
                    "history key {k:?} has {} values, others {}",
                    col.len(),
                    h.epochs()
                ));
            }
            h.keys.push(k.clone());
            h.values.push(col);
        }
        Ok(h)
    }

    /// CSV like Keras' `CSVLogger`: an `epoch` column (0-based) then one column per key.
    pub fn to_csv(&self) -> String {
        let mut s = self.csv_header();
        for e in 0..self.epochs() {
            s.push_str(&self.csv_row(e));
        }
        s
    }

    /// The CSV header line (with its newline).
    pub fn csv_header(&self) -> String {
        let mut s = String::from("epoch");
        for k in &self.keys {
            s.push(',');
            s.push_str(k);
        }
        s.push('\n');
        s
    }

    /// The CSV line of 0-based epoch `e` (with its newline; empty if there is no such epoch).
    pub fn csv_row(&self, e: usize) -> String {
        if e >= self.epochs() {
            return String::new();
        }
        let mut s = format!("{e}");
        for col in &self.values {
            let v = col[e];
            if v.is_finite() {
                let _ = write!(s, ",{v}");
            } else {
                s.push_str(",nan");
            }
        }
        s.push('\n');
        s
    }
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// An `f32` in JSON: its shortest decimal form, `null` when not finite.
pub fn json_f32(v: f32) -> String {
    if v.is_finite() {
        // `{:?}` keeps the `.0` of whole numbers and round-trips exactly.
        format!("{v:?}")
    } else {
        "null".into()
    }
}

/// The history key of a penalty: `dense/kernel_penalty`.
pub fn penalty_key(layer_name: &str, kind: PenaltyKind) -> String {
    format!("{layer_name}/{}_penalty", kind.as_str())
}

/// What the metrics of a part are: classification (accuracy) or regression, with the variance
/// of the part's targets for R².
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskMetrics {
    /// Accuracy.
    Classification,
    /// MSE, RMSE, MAE and R².
    Regression {
        /// Population variance of the part's targets, `Σ(y - ȳ)² / n`.
        target_variance: f32,
    },
}

impl TaskMetrics {
    /// Whether this is classification.
    pub fn is_classification(self) -> bool {
        self == TaskMetrics::Classification
    }

    /// The metrics of a report, by history key without prefix: `accuracy`, or `mse`, `rmse`,
    /// `mae`, `r2`.
    pub fn metrics(self, r: &EpochReport) -> Vec<(&'static str, f32)> {
        match self {
            TaskMetrics::Classification => vec![("accuracy", r.metrics.accuracy())],
            TaskMetrics::Regression { target_variance } => {
                let mse = r.metrics.mse();
                vec![
                    ("mse", mse),
                    ("rmse", mse.sqrt()),
                    ("mae", r.metrics.mae()),
                    ("r2", r2(mse, target_variance)),
                ]
            }
        }
    }
}

/// The coefficient of determination `R² = 1 - MSE / var(y)` (NaN when the targets do not vary).
///
/// ```
/// assert_eq!(microfit::history::r2(0.25, 1.0), 0.75);
/// assert!(microfit::history::r2(0.0, 0.0).is_nan());
/// ```
pub fn r2(mse: f32, target_variance: f32) -> f32 {
    if target_variance > 0.0 {
        1.0 - mse / target_variance
    } else {
        f32::NAN
    }
}

/// Population variance `Σ(y - ȳ)² / n` of `values`, accumulated in `f64` (0 when empty).
pub fn variance(values: &[f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    (values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n) as f32
}

/// One epoch's (or evaluation's) values: `loss`, the metrics, `data_loss`, the penalties, all
/// with `prefix` (`""` or `"val_"`).
pub fn report_row(
    prefix: &str,
    r: &EpochReport,
    layer_names: &[String],
    task: TaskMetrics,
) -> Vec<(String, f32)> {
    let mut row = vec![(format!("{prefix}loss"), r.loss)];
    for (k, v) in task.metrics(r) {
        row.push((format!("{prefix}{k}"), v));
    }
    row.push((format!("{prefix}data_loss"), r.data_loss));
    for e in r.penalties.entries() {
        let name = layer_names
            .get(e.layer as usize)
            .cloned()
            .unwrap_or_else(|| format!("layer_{}", e.layer));
        row.push((format!("{prefix}{}", penalty_key(&name, e.kind)), e.value));
    }
    if r.penalties.overflow != 0.0 {
        row.push((format!("{prefix}other_penalty"), r.penalties.overflow));
    }
    row
}

/// The history row of one epoch: the training report, then the validation one if any.
pub fn epoch_row(
    train: (&EpochReport, TaskMetrics),
    val: Option<(&EpochReport, TaskMetrics)>,
    layer_names: &[String],
) -> Vec<(String, f32)> {
    let mut row = report_row("", train.0, layer_names, train.1);
    if let Some((v, t)) = val {
        row.extend(report_row("val_", v, layer_names, t));
    }
    row
}

/// A JSON object with its keys in the given order.
pub fn json_object(pairs: &[(String, String)]) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&json_string(k));
        s.push(':');
        s.push_str(v);
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_keys_are_backfilled_and_csv_has_epochs() {
        let mut h = History::new();
        h.push_epoch(&[("loss".into(), 2.0)]);
        h.push_epoch(&[("loss".into(), 1.0), ("val_loss".into(), 1.5)]);
        assert!(h.get("val_loss").unwrap()[0].is_nan());
        assert_eq!(h.to_csv(), "epoch,loss,val_loss\n0,2,nan\n1,1,1.5\n");
        assert_eq!(h.to_json(), r#"{"loss":[2.0,1.0],"val_loss":[null,1.5]}"#);
    }
}
