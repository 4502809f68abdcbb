//! Training: one step on a mini-batch, epochs, evaluation, and their reports.
//!
//! # The engine
//! One trainer for every model: typed [`crate::Network`]s and the std runtime's models built at
//! run time implement [`Trainable`], and everything here — the input checks, the loss over a
//! tile, the epoch driver, the evaluation — is written once, generic over the [`Backend`] that
//! runs it (the firmware's, the host's vectorized one, or the portable default).
//!
//! # The training step
//! [`train_step`] does, for a batch of `B` samples:
//! 1. checks every input (and dense target) is finite — else [`Error::NonFiniteInput`];
//! 2. zeroes the gradients, then **tile by tile** (`model.tile()` samples at a time; one on a
//!    microcontroller): forward (activity penalty values of each sample), loss and
//!    `∂loss/∂output · 1/B` (the fused softmax/sigmoid + cross-entropy path when Keras would
//!    take it, reusing the forward pass's probabilities: [`Loss::tile_value_grad`]), backward
//!    accumulating into the gradients. Every sum over samples runs in sample order, so the tile
//!    size never changes a bit; memory grows with the tile, not with `B`;
//! 3. `data_loss = Σ loss / B`; activity penalties `Σ_s reg(y_s) / B`; weight penalties on the
//!    current weights with their gradients; `total = data_loss + Σ penalties` (Keras sums them
//!    once per batch, and reports the total);
//! 4. if the total or any gradient is NaN/∞ returns [`Error::NonFiniteLoss`] /
//!    [`Error::NonFiniteGradient`] **without touching the weights or the optimizer state**;
//! 5. the optimizer update, then the model's weight constraints ([`Trainable::apply_constraints`],
//!    Keras' `kernel_constraint`/`bias_constraint`, in Keras' order).
//!
//! With sample weights ([`Samples::with_sample_weights`], Keras' `sample_weight`; a
//! `class_weight` is one) each sample's loss and gradient are multiplied by its weight and the
//! data loss stays `Σ wᵢ·lossᵢ / B`.
//!
//! A batch given as a list of indices ([`Rows::Indices`], a shuffled order) runs one sample per
//! tile (rows are not contiguous); the std runtime permutes its data once per epoch instead and
//! trains on contiguous ranges.
//!
//! # Panic contract
//! A training step, an epoch and an evaluation never panic, whatever the values in the data
//! (NaN, ±∞, huge or tiny numbers) and whatever the labels: every shape is checked against the
//! model before any work ([`Error::ShapeMismatch`]), labels are checked against the number of
//! outputs ([`Error::LabelOutOfRange`]), and all indexing inside the kernels is bounded by the
//! fixed sizes of the layers. Integer arithmetic cannot overflow for batches below 2³² samples.
//! This is tested with NaN/∞ inputs and random labels (`tests/no_panic.rs`).

use core::marker::PhantomData;

use crate::activation::Activation;
use crate::backend::{Backend, Portable};
use crate::error::Error;
use crate::layer::{LossIo, MAX_PENALTIES, Penalties, PenaltyList};
use crate::loss::{Loss, Target, argmax};
use crate::optim::Optimizer;
use crate::params::Params;
use crate::regularizer::SumSqs;

/// What a training step needs from a model; implemented by typed [`crate::Network`]s and by
/// the std runtime's models built at run time, so both run the very same step.
///
/// A model processes a *tile* of up to [`Trainable::tile`] samples at once: a forward pass of
/// the tile, then the loss writes each sample's output gradient into [`Trainable::loss_io`]'s
/// buffer, then the backward pass of the same tile accumulates into the gradients in sample
/// order.
pub trait Trainable {
    /// Weights (and gradients) storage.
    type Params: Params;
    /// Samples per tile (at least 1).
    fn tile(&self) -> usize;
    /// Flattened input length.
    fn input_len(&self) -> usize;
    /// Flattened output length.
    fn output_len(&self) -> usize;
    /// The weights.
    fn params(&self) -> &Self::Params;
    /// The weights, mutable.
    fn params_mut(&mut self) -> &mut Self::Params;
    /// Weights and gradients together.
    fn weights_and_grads(&mut self) -> (&mut Self::Params, &mut Self::Params);
    /// Forward pass of `x` (whole rows of [`Trainable::input_len`], checked, at most
    /// [`Trainable::tile`] of them); each sample's activity penalties (undivided) into `pen`
    /// when given.
    fn forward_tile<B: Backend>(&mut self, x: &[f32], training: bool, pen: Option<&mut Penalties>);
    /// The last layer's activation.
    fn output_activation(&self) -> Activation;
    /// The outputs of the last forward pass, the last layer's logits if kept, and the
    /// output-gradient buffer (see [`LossIo`]).
    fn loss_io(&mut self) -> LossIo<'_>;
    /// Backward pass of the tile of the last forward pass (`x` the same rows) from the
    /// output-gradient buffer.
    fn backward_tile<B: Backend>(&mut self, x: &[f32], dy_is_pre: bool, inv_batch: f32);
    /// Weight penalties into `pen`, gradients added when `with_grads`.
    fn weight_penalties<B: Backend>(&mut self, with_grads: bool, pen: &mut Penalties);
    /// [`Trainable::weight_penalties`] with gradients, taking the `Σw²` of L2 penalties from
    /// the last optimizer update where `sq` holds them and asking for them there
    /// ([`Layer::weight_penalties_sq`](crate::layer::Layer::weight_penalties_sq), [`SumSqs`]):
    /// the same bits. The default ignores `sq`: always correct.
    #[inline]
    fn weight_penalties_sq<B: Backend>(&mut self, pen: &mut Penalties, sq: &mut SumSqs) {
        let _ = sq;
        self.weight_penalties::<B>(true, pen);
    }
    /// Sets every gradient to 0 (as a training step does first, through its backend's
    /// [`Backend::zero`] on the tensors of [`Trainable::weights_and_grads`]).
    fn zero_grads(&mut self);
    /// False when the model has no activity regularizer (see
    /// [`Layer::has_activity_regularizer`](crate::layer::Layer::has_activity_regularizer));
    /// the default, `true`, is always correct.
    fn has_activity_penalties(&self) -> bool {
        true
    }
    /// Applies the weight constraints (Keras `kernel_constraint` / `bias_constraint`); the
    /// training step calls it right after each optimizer update, as Keras does. The default
    /// does nothing.
    #[inline]
    fn apply_constraints(&mut self) {}
}

/// Targets of a sample set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Targets<'a> {
    /// One class index per sample.
    Classes(&'a [u32]),
    /// A dense row of `width` values per sample (one-hot, probabilities, regression).
    Dense {
        /// Row-major values, `n · width`.
        values: &'a [f32],
        /// Values per sample.
        width: usize,
    },
}

/// A borrowed sample set: inputs row-major and their targets.
///
/// ```
/// use microfit_core::train::{Samples, Targets};
/// let x = [0.0f32, 1.0, 2.0, 3.0];
/// let y = [0u32, 1];
/// let s = Samples::new(&x, 2, Targets::Classes(&y))?;
/// assert_eq!(s.len(), 2);
/// assert_eq!(s.input(1), &[2.0, 3.0]);
/// # Ok::<(), microfit_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Samples<'a> {
    x: &'a [f32],
    n_in: usize,
    n: usize,
    targets: Targets<'a>,
    weights: Option<&'a [f32]>,
}

impl<'a> Samples<'a> {
    /// Checks that `x` holds whole rows of `n_in` values and that there is one target per row.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the lengths disagree.
    ///
    /// `const`: a firmware's sample set in flash is a `static`, checked when it is built.
    pub const fn new(x: &'a [f32], n_in: usize, targets: Targets<'a>) -> Result<Self, Error> {
        let n = match x.len().checked_div(n_in) {
            Some(n) => n,
            None => 0,
        };
        if n_in == 0 || n * n_in != x.len() {
            return Err(Error::ShapeMismatch {
                what: crate::error::ShapeOf::Inputs,
                expected: (n * if n_in == 0 { 1 } else { n_in }) as u32,
                found: x.len() as u32,
            });
        }
        let tn = match targets {
            Targets::Classes(c) => c.len(),
            Targets::Dense { values, width } => {
                if width == 0 || values.len() % width != 0 {
                    return Err(Error::ShapeMismatch {
                        what: crate::error::ShapeOf::Targets,
                        expected: (n * width) as u32,
                        found: values.len() as u32,
                    });
                }
                values.len() / width
            }
        };
        if tn != n {
            return Err(Error::ShapeMismatch {
                what: crate::error::ShapeOf::Targets,
                expected: n as u32,
                found: tn as u32,
            });
        }
        Ok(Samples {
            x,
            n_in,
            n,
            targets,
            weights: None,
        })
    }

    /// The same samples with Keras' `sample_weight`, one per sample: each sample's loss and its
    /// gradient are multiplied by its weight, and the batch's data loss stays Keras'
    /// `sum_over_batch_size`, `Σ wᵢ·lossᵢ / B` (not divided by `Σ wᵢ`). Penalties are not
    /// weighted. A Keras `class_weight` is the sample weight `class_weight[yᵢ]`.
    ///
    /// ```
    /// use microfit_core::train::{Samples, Targets};
    /// let s = Samples::new(&[0.0, 1.0], 1, Targets::Classes(&[0, 1]))?.with_sample_weights(&[1.0, 3.0])?;
    /// assert_eq!(s.weight(1), 3.0);
    /// # Ok::<(), microfit_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless there is one weight per sample;
    /// [`Error::InvalidHyperparameter`] for a negative, NaN or infinite weight.
    pub fn with_sample_weights(mut self, w: &'a [f32]) -> Result<Self, Error> {
        if w.len() != self.n {
            return Err(Error::ShapeMismatch {
                what: crate::error::ShapeOf::SampleWeights,
                expected: self.n as u32,
                found: w.len() as u32,
            });
        }
        if !w.iter().all(|v| v.is_finite() && *v >= 0.0) {
            return Err(Error::InvalidHyperparameter {
                name: "sample_weight",
                reason: crate::error::Reason::NonNegative,
            });
        }
        self.weights = Some(w);
        Ok(self)
    }

    /// The sample weights, if any ([`Samples::with_sample_weights`]).
    pub fn sample_weights(&self) -> Option<&'a [f32]> {
        self.weights
    }

    /// The weight of sample `i` (1 without sample weights, or out of range).
    #[inline]
    pub fn weight(&self, i: usize) -> f32 {
        self.weights.and_then(|w| w.get(i).copied()).unwrap_or(1.0)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True if there are no samples.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Values per input row.
    pub fn input_len(&self) -> usize {
        self.n_in
    }

    /// The targets.
    pub fn targets(&self) -> Targets<'a> {
        self.targets
    }

    /// Input row `i` (empty if out of range).
    pub fn input(&self, i: usize) -> &'a [f32] {
        self.x
            .get(i * self.n_in..(i + 1) * self.n_in)
            .unwrap_or(&[])
    }

    /// The input rows `a..b`, one after the other (empty if out of range).
    pub fn inputs(&self, a: usize, b: usize) -> &'a [f32] {
        self.x
            .get(a.saturating_mul(self.n_in)..b.saturating_mul(self.n_in))
            .unwrap_or(&[])
    }

    /// True when the inputs (and dense targets) of samples `a..b` are finite (false when the
    /// range is out of bounds), tested by the backend `B`.
    fn block_is_finite<B: Backend>(&self, a: usize, b: usize) -> bool {
        let finite = |v: &[f32], w: usize| {
            v.get(a.saturating_mul(w)..b.saturating_mul(w))
                .is_some_and(B::data_finite)
        };
        finite(self.x, self.n_in)
            && match self.targets {
                Targets::Classes(_) => true,
                Targets::Dense { values, width } => finite(values, width),
            }
    }

    /// Target of sample `i` (class 0 / empty row if out of range).
    pub fn target(&self, i: usize) -> Target<'a> {
        match self.targets {
            Targets::Classes(c) => Target::Class(c.get(i).copied().unwrap_or(0)),
            Targets::Dense { values, width } => {
                Target::Dense(values.get(i * width..(i + 1) * width).unwrap_or(&[]))
            }
        }
    }
}

/// Which samples form a batch: a contiguous range or a list of indices (shuffled order).
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    /// Samples `start..end`.
    Range(usize, usize),
    /// These sample indices.
    Indices(&'a [u32]),
}

impl Rows<'_> {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match *self {
            Rows::Range(a, b) => b.saturating_sub(a),
            Rows::Indices(i) => i.len(),
        }
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The `k`-th sample index.
    #[inline]
    pub fn get(&self, k: usize) -> usize {
        match *self {
            Rows::Range(a, _) => a + k,
            Rows::Indices(i) => i.get(k).copied().unwrap_or(0) as usize,
        }
    }
}

/// Per-batch metric sums (accuracy for classification, squared/absolute error otherwise: the
/// training step and the evaluation leave `sq_err` and `abs_err` at 0 for classification
/// losses).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MetricSums {
    /// Samples counted.
    pub samples: u32,
    /// Correctly classified samples (argmax for several outputs, `> 0.5` for one).
    pub correct: u32,
    /// Σ over samples of the mean squared error of the outputs.
    pub sq_err: f32,
    /// Σ over samples of the mean absolute error of the outputs.
    pub abs_err: f32,
}

impl MetricSums {
    /// Adds one sample's output and target (accuracy and errors).
    pub fn add(&mut self, out: &[f32], t: Target<'_>) {
        self.add_sample(out, t, true);
    }

    /// Adds one sample's output and target; the squared and absolute errors only when
    /// `errors` (the training step and the evaluation pass `!loss.is_classification()`: they
    /// are the metrics of regression losses, and cost two divisions per sample).
    ///
    /// ```
    /// use microfit_core::{loss::Target, train::MetricSums};
    /// let mut m = MetricSums::default();
    /// m.add_sample(&[0.1, 0.9], Target::Class(1), false);
    /// assert_eq!((m.samples, m.correct, m.sq_err), (1, 1, 0.0));
    /// ```
    #[inline]
    pub fn add_sample(&mut self, out: &[f32], t: Target<'_>, errors: bool) {
        self.samples += 1;
        let hit = if out.len() == 1 {
            (out[0] > 0.5) == (t.at(0) > 0.5)
        } else {
            argmax(out) == t.class()
        };
        if hit {
            self.correct += 1;
        }
        if !errors {
            return;
        }
        let d = out.len().max(1) as f32;
        let (mut sq, mut ab) = (0.0f32, 0.0f32);
        for (j, &o) in out.iter().enumerate() {
            let e = t.at(j) - o;
            sq += e * e;
            ab += crate::math::abs(e);
        }
        self.sq_err += sq / d;
        self.abs_err += ab / d;
    }

    /// Adds the first `rows` rows of `y` (rows of `width` outputs) with their targets, in order
    /// (see [`MetricSums::add_sample`]).
    #[inline]
    pub fn add_rows<'t>(
        &mut self,
        y: &[f32],
        width: usize,
        rows: usize,
        target: impl Fn(usize) -> Target<'t>,
        errors: bool,
    ) {
        for (r, out) in y.chunks_exact(width.max(1)).take(rows).enumerate() {
            self.add_sample(out, target(r), errors);
        }
    }

    /// Accumulates another set of sums.
    pub fn merge(&mut self, o: &MetricSums) {
        self.samples += o.samples;
        self.correct += o.correct;
        self.sq_err += o.sq_err;
        self.abs_err += o.abs_err;
    }

    /// `correct / samples` (0 when empty).
    pub fn accuracy(&self) -> f32 {
        if self.samples == 0 {
            0.0
        } else {
            self.correct as f32 / self.samples as f32
        }
    }

    /// Mean squared error metric.
    pub fn mse(&self) -> f32 {
        if self.samples == 0 {
            0.0
        } else {
            self.sq_err / self.samples as f32
        }
    }

    /// Mean absolute error metric.
    pub fn mae(&self) -> f32 {
        if self.samples == 0 {
            0.0
        } else {
            self.abs_err / self.samples as f32
        }
    }
}

/// The report of one training step (all values computed before the update). `N` named
/// penalties at most, as [`EpochReport`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepReport<const N: usize = MAX_PENALTIES> {
    /// Mean data loss over the batch.
    pub data_loss: f32,
    /// Named penalties (activity already divided by the batch size).
    pub penalties: PenaltyList<N>,
    /// `data_loss + Σ penalties`: the loss Keras reports and differentiates.
    pub total_loss: f32,
    /// Metric sums over the batch.
    pub metrics: MetricSums,
}

#[inline(never)]
fn check_batch<B: Backend, M: Trainable>(
    model: &M,
    samples: &Samples<'_>,
    rows: Rows<'_>,
) -> Result<(), Error> {
    if rows.is_empty() {
        return Err(Error::EmptyBatch);
    }
    if samples.input_len() != model.input_len() {
        return Err(Error::ShapeMismatch {
            what: crate::error::ShapeOf::Input,
            expected: model.input_len() as u32,
            found: samples.input_len() as u32,
        });
    }
    // A contiguous batch whose rows all exist is checked as one block of inputs (and dense
    // targets); anything else, or a block with a NaN/∞, goes through the row-by-row loop below,
    // which finds the first error in row order.
    if let Rows::Range(a, b) = rows
        && b <= samples.len()
        && samples.block_is_finite::<B>(a, b)
    {
        return Ok(());
    }
    for k in 0..rows.len() {
        check_row::<B>(samples, rows, k)?;
    }
    Ok(())
}

/// Row `k` of `rows` exists and its input (and dense target) is finite. Only runs when the
/// block check of [`check_batch`] failed; never inlined, so that the loop above is one small
/// copy rather than one per kind of rows and targets (0.5 KB of a microcontroller's flash).
#[inline(never)]
fn check_row<B: Backend>(samples: &Samples<'_>, rows: Rows<'_>, k: usize) -> Result<(), Error> {
    let i = rows.get(k);
    if i >= samples.len() {
        return Err(Error::ShapeMismatch {
            what: crate::error::ShapeOf::SampleIndex,
            expected: samples.len() as u32,
            found: i as u32,
        });
    }
    let bad_t = match samples.target(i) {
        Target::Dense(t) => !B::data_finite(t),
        Target::Class(_) => false,
    };
    if bad_t || !B::data_finite(samples.input(i)) {
        return Err(Error::NonFiniteInput { sample: k as u32 });
    }
    Ok(())
}

/// The input rows of the next tile of a batch, from its `k`-th sample: a contiguous range gives
/// up to `tile` rows, an index list one row. Returns the rows and their count.
#[inline]
fn next_tile<'a>(
    samples: &Samples<'a>,
    rows: Rows<'_>,
    k: usize,
    tile: usize,
) -> (&'a [f32], usize) {
    if tile <= 1 {
        // A microcontroller's tile: one row, wherever it is (a constant count, so the loops
        // over the tile's rows below vanish).
        return (samples.input(rows.get(k)), 1);
    }
    match rows {
        Rows::Range(a, b) => {
            let m = b.saturating_sub(a).saturating_sub(k).min(tile.max(1));
            (samples.inputs(a + k, a + k + m), m)
        }
        Rows::Indices(_) => (samples.input(rows.get(k)), 1),
    }
}

/// Forward + loss + backward for every sample of the batch, tile by tile, then penalties.
/// Shared by [`train_step`] and by tests that need the gradients without an update.
///
/// # Errors
/// See [`train_step`].
pub fn compute_gradients<B: Backend, M: Trainable>(
    model: &mut M,
    loss: Loss,
    samples: &Samples<'_>,
    rows: Rows<'_>,
) -> Result<StepReport, Error> {
    let mut report = StepReport::default();
    compute_gradients_into::<B, M, MAX_PENALTIES>(model, loss, samples, rows, &mut report, None)?;
    Ok(report)
}

/// [`compute_gradients`] writing its report into `report` (no report is copied around: on a
/// microcontroller the reports are a good part of the stack).
fn compute_gradients_into<B: Backend, M: Trainable, const N: usize>(
    model: &mut M,
    loss: Loss,
    samples: &Samples<'_>,
    rows: Rows<'_>,
    report: &mut StepReport<N>,
    sq: Option<&mut SumSqs>,
) -> Result<(), Error> {
    check_batch::<B, M>(model, samples, rows)?;
    let b = rows.len();
    let inv_b = 1.0 / b as f32;
    let fused = loss.fuses_with(model.output_activation());
    let errors = !loss.is_classification();
    let (tile, width) = (model.tile(), model.output_len());
    // The gradients start at +0 (`Trainable::zero_grads`, by the backend).
    let (_, grads) = model.weights_and_grads();
    for i in 0..grads.tensor_count() {
        B::zero(grads.tensor_mut(i));
    }
    report.penalties.clear();
    report.metrics = MetricSums::default();
    let mut data_sum = 0.0f32;
    let mut k = 0;
    while k < b {
        let (x, m) = next_tile(samples, rows, k, tile);
        model.forward_tile::<B>(x, true, Some(&mut report.penalties));
        let io = model.loss_io();
        let target = |r: usize| samples.target(rows.get(k + r));
        report.metrics.add_rows(io.y, width, m, target, errors);
        let pre = match samples.weights {
            None => loss.tile_value_grad::<B>(io, m, fused, target, Some(inv_b), &mut data_sum)?,
            Some(_) => {
                let weight = |r: usize| samples.weight(rows.get(k + r));
                let scale = Some(inv_b);
                loss.weighted_tile_value_grad::<B>(
                    io,
                    m,
                    fused,
                    target,
                    weight,
                    scale,
                    &mut data_sum,
                )?
            }
        };
        model.backward_tile::<B>(x, pre, inv_b);
        k += m;
    }
    report.data_loss = data_sum / b as f32;
    // Keras divides a batch's activity penalties by its size. The forward passes add activity
    // penalties only, so all of the list is theirs here, the overflow too (a report without
    // room for them: `StepReport<0>`).
    report.penalties.scale(inv_b);
    match sq {
        Some(sq) => model.weight_penalties_sq::<B>(&mut report.penalties, sq),
        None => model.weight_penalties::<B>(true, &mut report.penalties),
    }
    report.total_loss = report.data_loss + report.penalties.total();
    Ok(())
}

/// One training step on the samples `rows` of `samples` (see the module docs).
///
/// # Errors
/// [`Error::EmptyBatch`], [`Error::ShapeMismatch`], [`Error::NonFiniteInput`],
/// [`Error::LabelOutOfRange`], [`Error::IncompatibleLoss`] before any update;
/// [`Error::NonFiniteLoss`] / [`Error::NonFiniteGradient`] with weights and optimizer state
/// left as they were.
pub fn train_step<B: Backend, M: Trainable, O: Optimizer<M::Params>>(
    model: &mut M,
    optimizer: &mut O,
    loss: Loss,
    samples: &Samples<'_>,
    rows: Rows<'_>,
) -> Result<StepReport, Error> {
    let mut report = StepReport::default();
    let r = &mut report;
    train_step_into::<B, M, O, MAX_PENALTIES>(model, optimizer, loss, samples, rows, r, None)?;
    Ok(report)
}

/// [`train_step`] writing its report into `report`; with `sq` (an epoch on a backend that
/// [folds](Backend::FOLD_SUM_SQ)), the L2 penalties' `Σw²` come from the last update, which
/// computes those of the next step ([`SumSqs`]).
fn train_step_into<B: Backend, M: Trainable, O: Optimizer<M::Params>, const N: usize>(
    model: &mut M,
    optimizer: &mut O,
    loss: Loss,
    samples: &Samples<'_>,
    rows: Rows<'_>,
    report: &mut StepReport<N>,
    mut sq: Option<&mut SumSqs>,
) -> Result<(), Error> {
    compute_gradients_into::<B, M, N>(model, loss, samples, rows, report, sq.as_deref_mut())?;
    if !report.total_loss.is_finite() {
        return Err(Error::NonFiniteLoss);
    }
    let (w, g) = model.weights_and_grads();
    if let Some(t) = (0..g.tensor_count()).find(|&i| !B::all_finite(g.tensor(i))) {
        return Err(Error::NonFiniteGradient { tensor: t as u16 });
    }
    match sq {
        Some(sq) => optimizer.step_sq::<B>(w, g, sq),
        None => optimizer.step::<B>(w, g),
    }
    // A constraint rewrites only tensors whose sums no layer asks for.
    model.apply_constraints();
    Ok(())
}

/// One epoch of `model` in mini-batches of `batch_size` (see [`Trainer::fit_epoch`], which
/// calls this with its own model, optimizer and loss). A firmware whose loss is a constant
/// calls it directly: the compiler then keeps only that loss's code.
///
/// # Errors
/// The first step error; the steps before it have been applied.
pub fn fit_epoch<B: Backend, M: Trainable, O: Optimizer<M::Params>>(
    model: &mut M,
    optimizer: &mut O,
    loss: Loss,
    samples: &Samples<'_>,
    batch_size: usize,
    order: Option<&[u32]>,
) -> Result<EpochReport, Error> {
    let mut rep = EpochReport::default();
    fit_epoch_into::<B, M, O, MAX_PENALTIES>(
        model, optimizer, loss, samples, batch_size, order, &mut rep,
    )?;
    Ok(rep)
}

/// [`fit_epoch`] writing its report into `report` (overwritten): no report is returned by
/// value, so a microcontroller keeps a single one on its stack for the whole training, sized
/// for its model's named penalties (`EpochReport<N>`, see [`Penalties`]).
///
/// ```
/// use microfit_core::prelude::*;
/// use microfit_core::backend::Portable;
/// use microfit_core::train::{EpochReport, fit_epoch_into};
/// let mut net = Network::new((Dense::<2, 4>::new(Activation::Relu), Dense::<4, 2>::new(Activation::Softmax)), 1)?;
/// let mut opt = Adam::new(0.01, &net.params)?;
/// let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
/// let data = Samples::new(&[0.0, 1.0, 1.0, 0.0], 2, Targets::Classes(&[0, 1]))?;
/// // `EpochReport` is `EpochReport<MAX_PENALTIES>`; `EpochReport<2>` keeps two named penalties.
/// let mut rep: EpochReport = EpochReport::default();
/// for _ in 0..3 {
///     fit_epoch_into::<Portable, _, _, _>(&mut net, &mut opt, loss, &data, 2, None, &mut rep)?;
/// }
/// assert_eq!(rep.steps, 1);
/// # Ok::<(), microfit_core::Error>(())
/// ```
///
/// # Errors
/// As [`fit_epoch`]; `report` then holds the steps before the error (not averaged).
pub fn fit_epoch_into<B: Backend, M: Trainable, O: Optimizer<M::Params>, const N: usize>(
    model: &mut M,
    optimizer: &mut O,
    loss: Loss,
    samples: &Samples<'_>,
    batch_size: usize,
    order: Option<&[u32]>,
    report: &mut EpochReport<N>,
) -> Result<(), Error> {
    let n = order.map_or(samples.len(), |o| o.len());
    let bs = batch_size.max(1);
    report.clear();
    let mut step = StepReport::<N>::default();
    // The L2 penalties' sums from the updates (on a backend that folds them): empty at the
    // start of every epoch, so nothing that wrote the weights before it is ever missed.
    let mut sums = if B::FOLD_SUM_SQ {
        Some(SumSqs::new())
    } else {
        None
    };
    let mut start = 0;
    while start < n {
        let end = n.min(start.saturating_add(bs));
        let rows = match order {
            Some(o) => Rows::Indices(o.get(start..end).unwrap_or(&[])),
            None => Rows::Range(start, end),
        };
        let sq = if B::FOLD_SUM_SQ { sums.as_mut() } else { None };
        train_step_into::<B, M, O, N>(model, optimizer, loss, samples, rows, &mut step, sq)?;
        report.add(&step, end - start);
        start = end;
    }
    report.finish();
    Ok(())
}

/// Keras-style report of an epoch (or an evaluation): batch-size-weighted means of the
/// per-batch values. `N` named penalties at most (see [`Penalties`]): a microcontroller
/// whose model has two regularized kernels keeps an `EpochReport<2>` (80 bytes less stack).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport<const N: usize = MAX_PENALTIES> {
    /// Mean total loss (`history['loss']`).
    pub loss: f32,
    /// Mean data loss.
    pub data_loss: f32,
    /// Mean named penalties.
    pub penalties: PenaltyList<N>,
    /// Metric sums.
    pub metrics: MetricSums,
    /// Steps taken.
    pub steps: u32,
}

impl<const N: usize> Default for EpochReport<N> {
    fn default() -> Self {
        EpochReport {
            loss: 0.0,
            data_loss: 0.0,
            penalties: PenaltyList::new(),
            metrics: MetricSums::default(),
            steps: 0,
        }
    }
}

impl<const N: usize> EpochReport<N> {
    fn clear(&mut self) {
        self.loss = 0.0;
        self.data_loss = 0.0;
        self.penalties.clear();
        self.metrics = MetricSums::default();
        self.steps = 0;
    }

    /// Adds a step's report (out of line when there are penalties: one copy for the
    /// training and the evaluation, the firmware's flash).
    fn add(&mut self, r: &StepReport<N>, n: usize) {
        if N == 0 {
            self.add_step(r, n);
        } else {
            self.add_outlined(r, n);
        }
    }

    #[inline(never)]
    fn add_outlined(&mut self, r: &StepReport<N>, n: usize) {
        self.add_step(r, n);
    }

    fn add_step(&mut self, r: &StepReport<N>, n: usize) {
        let w = n as f32;
        self.loss += r.total_loss * w;
        self.data_loss += r.data_loss * w;
        self.penalties.add_weighted(&r.penalties, w);
        self.metrics.merge(&r.metrics);
        self.steps += 1;
    }
    /// The means from the sums (out of line when there are penalties, as [`EpochReport::add`]).
    fn finish(&mut self) {
        if N == 0 {
            self.finish_means();
        } else {
            self.finish_outlined();
        }
    }

    #[inline(never)]
    fn finish_outlined(&mut self) {
        self.finish_means();
    }

    #[inline(always)]
    fn finish_means(&mut self) {
        let n = self.metrics.samples.max(1) as f32;
        self.loss /= n;
        self.data_loss /= n;
        self.penalties.scale(1.0 / n);
    }
}

/// A model, its optimizer and its loss: `fit`-style training on the backend `B` (the core's
/// [`Portable`] by default; the std runtime trains on its vectorized `Host` backend).
///
/// ```
/// use microfit_core::prelude::*;
/// let net = Network::new((Dense::<2, 4>::new(Activation::Relu), Dense::<4, 2>::new(Activation::Softmax)), 1)?;
/// let opt = Adam::new(0.01, &net.params)?;
/// let mut tr = Trainer::new(net, opt, Loss::SparseCategoricalCrossentropy { from_logits: false });
/// let x = [0.0f32, 1.0, 1.0, 0.0];
/// let y = [0u32, 1];
/// let data = Samples::new(&x, 2, Targets::Classes(&y))?;
/// let rep = tr.fit_epoch(&data, 2, None)?;
/// assert!(rep.loss.is_finite());
/// # Ok::<(), microfit_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Trainer<M: Trainable, O, B = Portable> {
    /// The model.
    pub model: M,
    /// The optimizer (with its state).
    pub optimizer: O,
    /// The loss.
    pub loss: Loss,
    backend: PhantomData<fn() -> B>,
}

impl<M: Trainable, O: Optimizer<M::Params>> Trainer<M, O> {
    /// Bundles a model, an optimizer and a loss, trained on the portable backend.
    pub fn new(model: M, optimizer: O, loss: Loss) -> Self {
        Self::with_backend(model, optimizer, loss)
    }
}

impl<M: Trainable, O: Optimizer<M::Params>, B: Backend> Trainer<M, O, B> {
    /// Bundles a model, an optimizer and a loss, trained on the backend `B`
    /// (`Trainer::<_, _, MyBackend>::with_backend(…)`).
    pub fn with_backend(model: M, optimizer: O, loss: Loss) -> Self {
        Trainer {
            model,
            optimizer,
            loss,
            backend: PhantomData,
        }
    }

    /// One step on `rows`.
    ///
    /// # Errors
    /// See [`train_step`].
    pub fn step(&mut self, samples: &Samples<'_>, rows: Rows<'_>) -> Result<StepReport, Error> {
        train_step::<B, M, O>(
            &mut self.model,
            &mut self.optimizer,
            self.loss,
            samples,
            rows,
        )
    }

    /// One epoch in mini-batches of `batch_size` (the last partial batch is a normal step),
    /// in file order or in the given `order` (e.g. shuffled with [`crate::rng::Rng::shuffle`]).
    ///
    /// # Errors
    /// The first step error; the steps before it have been applied.
    pub fn fit_epoch(
        &mut self,
        samples: &Samples<'_>,
        batch_size: usize,
        order: Option<&[u32]>,
    ) -> Result<EpochReport, Error> {
        fit_epoch::<B, M, O>(
            &mut self.model,
            &mut self.optimizer,
            self.loss,
            samples,
            batch_size,
            order,
        )
    }

    /// Keras `fit`'s last act after its epochs: `optimizer.finalize_variable_values(weights)`
    /// (with an [`Ema`](crate::optim::Ema), the weights become their moving averages; otherwise
    /// nothing). Call it once when training ends, as `fit` does.
    pub fn finalize_variable_values(&mut self) {
        self.optimizer
            .finalize_variable_values(self.model.params_mut());
    }

    /// Evaluates in batches of `batch_size` without updating (Keras `evaluate`: the loss includes
    /// the weight penalties and the activity penalties of each batch).
    ///
    /// # Errors
    /// Shape, label and non-finite input errors.
    pub fn evaluate(
        &mut self,
        samples: &Samples<'_>,
        batch_size: usize,
    ) -> Result<EpochReport, Error> {
        evaluate::<B, M>(&mut self.model, self.loss, samples, batch_size)
    }
}

/// Evaluation of `model` on `samples` (see [`Trainer::evaluate`]): tile by tile, forward,
/// loss, metrics; each batch's activity penalties and the weight penalties.
///
/// # Errors
/// Shape, label and non-finite input errors.
pub fn evaluate<B: Backend, M: Trainable>(
    model: &mut M,
    loss: Loss,
    samples: &Samples<'_>,
    batch_size: usize,
) -> Result<EpochReport, Error> {
    let mut rep = EpochReport::default();
    evaluate_into::<B, M, MAX_PENALTIES>(model, loss, samples, batch_size, &mut rep)?;
    Ok(rep)
}

/// [`evaluate`] writing its report into `report` (overwritten), as [`fit_epoch_into`]: no
/// report is returned by value (on a microcontroller, a copy out of the `Result` would link
/// `memcpy` and keep a second report on the stack).
///
/// ```
/// use microfit_core::prelude::*;
/// use microfit_core::backend::Portable;
/// use microfit_core::train::{EpochReport, evaluate, evaluate_into};
/// let mut net = Network::new((Dense::<2, 4>::new(Activation::Relu), Dense::<4, 2>::new(Activation::Softmax)), 1)?;
/// let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
/// let data = Samples::new(&[0.0, 1.0, 1.0, 0.0], 2, Targets::Classes(&[0, 1]))?;
/// let mut rep: EpochReport<0> = EpochReport::default();
/// evaluate_into::<Portable, _, 0>(&mut net, loss, &data, 2, &mut rep)?;
/// let full = evaluate::<Portable, _>(&mut net, loss, &data, 2)?;
/// assert_eq!(rep.data_loss.to_bits(), full.data_loss.to_bits());
/// # Ok::<(), microfit_core::Error>(())
/// ```
///
/// # Errors
/// As [`evaluate`]; `report` then holds the batches before the error (not averaged).
pub fn evaluate_into<B: Backend, M: Trainable, const N: usize>(
    model: &mut M,
    loss: Loss,
    samples: &Samples<'_>,
    batch_size: usize,
    rep: &mut EpochReport<N>,
) -> Result<(), Error> {
    let n = samples.len();
    let bs = batch_size.max(1);
    rep.clear();
    let mut r = StepReport::<N>::default();
    let activity = model.has_activity_penalties();
    let fused = loss.fuses_with(model.output_activation());
    let errors = !loss.is_classification();
    let (tile, width) = (model.tile(), model.output_len());
    let mut start = 0;
    while start < n {
        let end = n.min(start.saturating_add(bs));
        let rows = Rows::Range(start, end);
        check_batch::<B, M>(model, samples, rows)?;
        r.penalties.clear();
        r.metrics = MetricSums::default();
        let mut data_sum = 0.0f32;
        let mut k = 0;
        while k < end - start {
            let (x, m) = next_tile(samples, rows, k, tile);
            let pen: Option<&mut Penalties> = if activity {
                Some(&mut r.penalties)
            } else {
                None
            };
            model.forward_tile::<B>(x, false, pen);
            let io = model.loss_io();
            let target = |i: usize| samples.target(start + k + i);
            r.metrics.add_rows(io.y, width, m, target, errors);
            match samples.weights {
                None => loss.tile_value_grad::<B>(io, m, fused, target, None, &mut data_sum)?,
                Some(_) => {
                    let weight = |i: usize| samples.weight(start + k + i);
                    loss.weighted_tile_value_grad::<B>(
                        io,
                        m,
                        fused,
                        target,
                        weight,
                        None,
                        &mut data_sum,
                    )?
                }
            };
            k += m;
        }
        let b = (end - start) as f32;
        // The activity penalties, all of the list so far (see `compute_gradients_into`).
        r.penalties.scale(1.0 / b);
        model.weight_penalties::<B>(false, &mut r.penalties);
        r.data_loss = data_sum / b;
        r.total_loss = r.data_loss + r.penalties.total();
        rep.add(&r, end - start);
        start = end;
    }
    rep.finish();
    Ok(())
}
