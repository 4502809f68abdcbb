//! Training traces (one record per step or epoch) and their bit-for-bit comparison.

use microfit::core::backend::Portable;
use microfit::core::layer::{Penalties, PenaltyKind};
use microfit::core::loss::Loss;
use microfit::core::optim::AnyOptimizer;
use microfit::core::train::{
    EpochReport, MetricSums, Rows, Samples, StepReport, Trainable, Trainer, train_step,
};

use super::tensor::tensors;

/// What one training step gave (all before the update except `*_after`).
#[derive(Debug, Clone)]
pub struct StepTrace {
    /// Outputs of the batch, row-major.
    pub y_pred: Vec<f32>,
    /// Last-layer pre-activations of the batch, row-major.
    pub logits: Vec<f32>,
    /// The step's report (losses and penalties).
    pub report: StepReport,
    /// The gradients the optimizer received.
    pub grads: Vec<Vec<f32>>,
    /// Weights after the update.
    pub weights_after: Vec<Vec<f32>>,
    /// Optimizer slots after the update, by Keras name (`momentum`, `m`, `v`).
    pub slots_after: Vec<(String, Vec<Vec<f32>>)>,
}

/// Runs one [`train_step`] per entry of `batches`, recording everything.
///
/// # Panics
/// If a step fails.
pub fn trace_steps<M: Trainable>(
    model: &mut M,
    opt: &mut AnyOptimizer<M::Params>,
    loss: Loss,
    samples: &Samples<'_>,
    batches: &[Rows<'_>],
) -> Vec<StepTrace> {
    let mut out = Vec::new();
    for rows in batches {
        let mut y_pred = Vec::new();
        let mut logits = Vec::new();
        for k in 0..rows.len() {
            let (y, z) = forward_one(model, samples.input(rows.get(k)), true);
            y_pred.extend_from_slice(&y);
            logits.extend_from_slice(&z.unwrap_or_default());
        }
        let report = train_step::<Portable, _, _>(model, opt, loss, samples, *rows)
            .unwrap_or_else(|e| panic!("train_step: {e}"));
        let grads = {
            let (_, g) = model.weights_and_grads();
            tensors(&*g)
        };
        let weights_after = tensors(model.params());
        let slots_after = ["momentum", "m", "v"]
            .iter()
            .filter_map(|n| opt.slot(n).map(|p| (n.to_string(), tensors(p))))
            .collect();
        out.push(StepTrace {
            y_pred,
            logits,
            report,
            grads,
            weights_after,
            slots_after,
        });
    }
    out
}

/// What `fit` gave: one report and the weights after each epoch.
#[derive(Debug, Clone)]
pub struct FitTrace {
    /// `fit_epoch` reports.
    pub epochs: Vec<EpochReport>,
    /// Weights after each epoch.
    pub weights: Vec<Vec<Vec<f32>>>,
}

/// `epochs` calls of [`Trainer::fit_epoch`] in file order (`shuffle=False`).
///
/// # Panics
/// If an epoch fails.
pub fn fit_trace<M: Trainable>(
    model: M,
    opt: AnyOptimizer<M::Params>,
    loss: Loss,
    samples: &Samples<'_>,
    batch_size: usize,
    epochs: usize,
) -> FitTrace {
    let mut tr = Trainer::new(model, opt, loss);
    let mut t = FitTrace {
        epochs: Vec::new(),
        weights: Vec::new(),
    };
    for _ in 0..epochs {
        let r = tr
            .fit_epoch(samples, batch_size, None)
            .unwrap_or_else(|e| panic!("fit_epoch: {e}"));
        t.epochs.push(r);
        t.weights.push(tensors(tr.model.params()));
    }
    t
}

/// Consecutive batches of `batch_size` over `n` samples, `epochs` times (`shuffle=False`).
pub fn batches(n: usize, batch_size: usize, epochs: usize) -> Vec<Rows<'static>> {
    let mut v = Vec::new();
    for _ in 0..epochs {
        let mut s = 0;
        while s < n {
            let e = (s + batch_size).min(n);
            v.push(Rows::Range(s, e));
            s = e;
        }
    }
    v
}

/// `Err` naming the first value whose bits differ.
pub fn same_bits(what: &str, a: &[f32], b: &[f32]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{what}: {} values vs {}", a.len(), b.len()));
    }
    match a
        .iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
    {
        None => Ok(()),
        Some(i) => Err(format!("{what}[{i}]: {:e} vs {:e}", a[i], b[i])),
    }
}

pub fn same_tensors(what: &str, a: &[Vec<f32>], b: &[Vec<f32>]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{what}: {} tensors vs {}", a.len(), b.len()));
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        same_bits(&format!("{what}[{i}]"), x, y)?;
    }
    Ok(())
}

/// `Err` unless two sets of named penalties are the same, values compared with `to_bits`.
///
/// # Errors
/// As described.
pub fn same_penalties(what: &str, a: &Penalties, b: &Penalties) -> Result<(), String> {
    let key = |p: &Penalties| -> Vec<(u16, PenaltyKind, u32)> {
        p.entries()
            .iter()
            .map(|e| (e.layer, e.kind, e.value.to_bits()))
            .collect()
    };
    if key(a) != key(b) || a.overflow.to_bits() != b.overflow.to_bits() {
        return Err(format!("{what}: penalties {a:?} vs {b:?}"));
    }
    Ok(())
}

/// `Err` unless two metric sums are the same, their f32 sums compared with `to_bits`.
pub fn same_metrics(what: &str, a: &MetricSums, b: &MetricSums) -> Result<(), String> {
    let key = |m: &MetricSums| {
        (
            m.samples,
            m.correct,
            m.sq_err.to_bits(),
            m.abs_err.to_bits(),
        )
    };
    if key(a) != key(b) {
        return Err(format!("{what}: metrics {a:?} vs {b:?}"));
    }
    Ok(())
}

/// `Err` describing the first difference between two step reports, bit for bit.
pub fn same_report(what: &str, a: &StepReport, b: &StepReport) -> Result<(), String> {
    same_bits(&format!("{what}.data_loss"), &[a.data_loss], &[b.data_loss])?;
    same_bits(
        &format!("{what}.total_loss"),
        &[a.total_loss],
        &[b.total_loss],
    )?;
    same_penalties(what, &a.penalties, &b.penalties)?;
    same_metrics(what, &a.metrics, &b.metrics)?;
    Ok(())
}

/// `Err` describing the first difference between two traces, bit for bit.
pub fn same_trace(what: &str, a: &[StepTrace], b: &[StepTrace]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{what}: {} steps vs {}", a.len(), b.len()));
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let w = format!("{what} step {i}");
        same_bits(&format!("{w}.y_pred"), &x.y_pred, &y.y_pred)?;
        same_bits(&format!("{w}.logits"), &x.logits, &y.logits)?;
        same_report(&w, &x.report, &y.report)?;
        same_tensors(&format!("{w}.grads"), &x.grads, &y.grads)?;
        same_tensors(
            &format!("{w}.weights_after"),
            &x.weights_after,
            &y.weights_after,
        )?;
        if x.slots_after.len() != y.slots_after.len() {
            return Err(format!("{w}: slot sets differ"));
        }
        for ((n1, t1), (n2, t2)) in x.slots_after.iter().zip(&y.slots_after) {
            if n1 != n2 {
                return Err(format!("{w}: slot {n1} vs {n2}"));
            }
            same_tensors(&format!("{w}.slots_after.{n1}"), t1, t2)?;
        }
    }
    Ok(())
}

/// `Err` describing the first difference between two fits, bit for bit.
pub fn same_fit(what: &str, a: &FitTrace, b: &FitTrace) -> Result<(), String> {
    if a.epochs.len() != b.epochs.len() {
        return Err(format!(
            "{what}: {} epochs vs {}",
            a.epochs.len(),
            b.epochs.len()
        ));
    }
    for (e, (x, y)) in a.epochs.iter().zip(&b.epochs).enumerate() {
        let w = format!("{what} epoch {e}");
        same_bits(&format!("{w}.loss"), &[x.loss], &[y.loss])?;
        same_bits(&format!("{w}.data_loss"), &[x.data_loss], &[y.data_loss])?;
        same_penalties(&w, &x.penalties, &y.penalties)?;
        same_metrics(&w, &x.metrics, &y.metrics)?;
        if x.steps != y.steps {
            return Err(format!("{w}: {} steps vs {}", x.steps, y.steps));
        }
        same_tensors(&format!("{w}.weights"), &a.weights[e], &b.weights[e])?;
    }
    Ok(())
}

/// One sample through `model` (a tile of one, on the portable backend): its outputs and, when
/// the last layer keeps them, its pre-activations.
pub fn forward_one<M: Trainable>(
    m: &mut M,
    x: &[f32],
    training: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let width = m.output_len();
    m.forward_tile::<Portable>(x, training, None);
    let io = m.loss_io();
    let y = io.y.get(..width).unwrap_or(io.y).to_vec();
    let z = io.logits.map(|z| z.get(..width).unwrap_or(z).to_vec());
    (y, z)
}
