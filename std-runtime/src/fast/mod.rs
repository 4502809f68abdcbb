//! The batched host path: the core's training step, computed a batch at a time, with the same
//! bits.
//!
//! The core trains sample by sample ([`microfit_core::train::train_step`]): memory does not grow
//! with the batch, which is what a microcontroller needs. On a host the same step is faster a
//! batch at a time: each layer runs over all the samples of a batch before the next layer
//! (weights stay in registers and L1, the loops are longer), the softmax and the cross-entropy
//! evaluate their `exp`s for the whole batch in one vectorized loop ([`exp`]), Adam's square
//! roots are vector instructions, and the checks are vector reductions.
//!
//! **Same bits.** Nothing here changes an operation or its order; it only changes which
//! *independent* operations run next to each other:
//! * a layer's output for a sample depends only on that sample, so computing all samples of
//!   layer 1 before layer 2 changes no value;
//! * every accumulation over samples (weight and bias gradients, activity penalties, the data
//!   loss, the metrics) still runs in sample order (see [`microfit_core::kernels::dense`] for
//!   the kernels' orders, shared with the per-sample kernels);
//! * [`exp::expf`] is libm's `expf` written without branches, checked on all 2³² inputs;
//! * `f32::sqrt` and libm's `sqrtf` are both the correctly rounded IEEE square root.
//!
//! So [`BatchTrainer`] and the core's [`Trainer`](microfit_core::Trainer) end every step with
//! identical weights, optimizer state and reports; `tests/fast_identity.rs` checks this on the
//! host workloads and on W1 with every regularizer. The one documented difference: with two
//! or more dropout layers the per-sample path draws their random numbers sample by sample, a
//! batch would draw them layer by layer — so no dropout layer implements [`BatchLayer`] (a
//! model with dropout trains with the core's per-sample [`Trainer`](microfit_core::Trainer)).
//!
//! ```
//! use microfit::core::prelude::*;
//! use microfit::fast::{BatchNetwork, BatchTrainer};
//!
//! type W1 = (Dense<4, 16>, Dense<16, 3>);
//! let layers: W1 = (
//!     Dense::new(Activation::Relu).kernel_regularizer(Reg::l2(1e-3)),
//!     Dense::new(Activation::Softmax),
//! );
//! let typed = Network::new(layers, 42)?;
//! let fast = BatchNetwork::<W1, 8>::with_params(layers, typed.params.clone());
//! let loss = Loss::CategoricalCrossentropy { from_logits: false };
//! let mut a = Trainer::new(typed, Adam::new(0.01, &fast.params)?, loss);
//! let mut b = BatchTrainer::new(fast, Adam::new(0.01, &a.model.params)?, loss);
//! let x = [[5.1f32, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]];
//! let data = Samples::new(x.as_flattened(), 4, Targets::Classes(&[0, 1, 2]))?;
//! for _ in 0..3 {
//!     assert_eq!(a.fit_epoch(&data, 2, None)?, b.fit_epoch(&data, 2, None)?);
//! }
//! assert_eq!(a.model.params, b.model.params);
//! # Ok::<(), microfit::core::Error>(())
//! ```

mod conv;
mod dense;
pub mod exp;
mod loss;
mod tuple;

use microfit_core::activation::Activation;
use microfit_core::error::Error;
use microfit_core::layer::{BackwardCtx, ForwardCtx, Layer, Penalties, PenaltyKind};
use microfit_core::loss::{Loss, Target};
use microfit_core::optim::{Adam, AnyOptimizer, Momentum, Optimizer, Sgd};
use microfit_core::params::{Params, ZeroParams};
use microfit_core::rng::Rng;
use microfit_core::tensor::Tensor;
use microfit_core::train::{EpochReport, MetricSums, Rows, Samples, StepReport, Trainable};

/// A [`Layer`] that can also run a whole batch of samples at once, with the bits of running
/// them one by one.
///
/// `B` is the number of sample rows kept (the tile size); any batch size is processed in
/// tiles of at most `B` samples, in order.
pub trait BatchLayer<const B: usize>: Layer {
    /// What backprop keeps for a tile of samples.
    type BatchCache;

    /// A zeroed cache.
    fn new_batch_cache(&self) -> Self::BatchCache;

    /// Forward pass of `x.len() <= B` samples (`y.len() == x.len()`).
    fn forward_batch(
        &self,
        p: &Self::Params,
        x: &[Self::Input],
        y: &mut [Self::Output],
        cache: &mut Self::BatchCache,
        ctx: &mut ForwardCtx<'_>,
    );

    /// Backward pass of the samples of the last [`BatchLayer::forward_batch`], accumulating
    /// into `g` in sample order; `d` holds one output-gradient row per sample (see
    /// [`Layer::backward`] for `d_is_pre` and the activity penalties).
    fn backward_batch(
        &self,
        p: &Self::Params,
        g: &mut Self::Params,
        x: &[Self::Input],
        y: &[Self::Output],
        cache: &mut Self::BatchCache,
        d: &mut [Self::Output],
        d_is_pre: bool,
        dx: Option<&mut [Self::Input]>,
        ctx: &mut BackwardCtx<'_>,
    );

    /// Tells the layer whether the next forward and backward passes are the last tile of a
    /// training step (with weight gradients wanted): it may then compute its weight penalties
    /// on the way — their values in those passes, their gradients in the backward pass right
    /// after each gradient element's last addition (their place in the core's order) — and
    /// keep the values for [`BatchLayer::weight_penalties_batch`]. Default: nothing.
    fn last_tile(&self, cache: &mut Self::BatchCache, last: bool) {
        let _ = (cache, last);
    }

    /// [`Layer::weight_penalties`], or the penalties already computed by the last tile's
    /// backward pass (same values, same bits).
    fn weight_penalties_batch(
        &self,
        p: &Self::Params,
        g: Option<&mut Self::Params>,
        layer: usize,
        pen: &mut Penalties,
        cache: &mut Self::BatchCache,
    ) {
        let _ = cache;
        self.weight_penalties(p, g, layer, pen);
    }

    /// Lets the layer defer the *value* of its weight penalties for the coming
    /// [`BatchLayer::weight_penalties_batch`] (`headroom` is `Some` only inside
    /// [`BatchTrainer::fit_epoch`]). A layer that defers reports a provable upper bound instead,
    /// small enough (with `headroom`, the magnitude of everything else in the step's total loss)
    /// that the step's total loss is finite with the bound exactly when it is finite with the
    /// value; it still adds the penalty's gradient, and keeps what it needs to compute the exact
    /// value later ([`BatchLayer::take_deferred`]). Default: never defers.
    fn defer_weight_penalties(&self, cache: &mut Self::BatchCache, headroom: Option<f32>) {
        let _ = (cache, headroom);
    }

    /// The exact values of the weight penalties deferred since the last call, computed now:
    /// `f(layer, values)` with one entry per [`BatchLayer::weight_penalties_batch`] call in
    /// order, `Some(value)` for the calls that reported a bound instead of the value.
    fn take_deferred(
        &self,
        cache: &mut Self::BatchCache,
        layer: usize,
        f: &mut dyn FnMut(usize, &[Option<f32>]),
    ) {
        let _ = (cache, layer, f);
    }

    /// The last layer's pre-activation rows (`B · Output::LEN` values), if kept.
    fn logits_batch<'c>(&self, cache: &'c Self::BatchCache) -> Option<&'c [f32]>;
}

/// A typed model with weights, gradients and the buffers of a tile of `B` samples.
///
/// It is also a [`Trainable`] (one sample at a time, through the first row of the tile), so
/// the core's [`microfit_core::train::evaluate`] and per-sample step work on it unchanged.
pub struct BatchNetwork<L: BatchLayer<B>, const B: usize> {
    /// The layers (configuration only).
    pub layers: L,
    /// The weights.
    pub params: L::Params,
    /// Gradient accumulators.
    pub grads: L::Params,
    cache: L::BatchCache,
    xs: Box<[L::Input; B]>,
    out: Box<[L::Output; B]>,
    dout: Box<[L::Output; B]>,
    rng: Rng,
    /// Inside [`BatchTrainer::fit_epoch`]: layers may defer their penalty values.
    epoch_mode: bool,
}

impl<L: BatchLayer<B>, const B: usize> core::fmt::Debug for BatchNetwork<L, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BatchNetwork")
            .field("tile", &B)
            .field("params", &L::Params::LEN)
            .finish_non_exhaustive()
    }
}

fn rows<T: Tensor, const B: usize>() -> Box<[T; B]> {
    Box::new(core::array::from_fn(|_| T::zeroed()))
}

impl<L: BatchLayer<B>, const B: usize> BatchNetwork<L, B> {
    /// Number of trainable scalars.
    pub const PARAMS: usize = <L::Params as ZeroParams>::LEN;

    /// Builds the network with the given weights.
    pub fn with_params(layers: L, params: L::Params) -> Self {
        assert!(B > 0, "a tile holds at least one sample");
        let cache = layers.new_batch_cache();
        BatchNetwork {
            layers,
            params,
            grads: L::Params::zeroed(),
            cache,
            xs: rows(),
            out: rows(),
            dout: rows(),
            rng: Rng::new(0),
            epoch_mode: false,
        }
    }

    /// Builds the network and initializes its weights from `seed`, as
    /// [`microfit_core::Network::new`] does (same weights for the same seed).
    pub fn new(layers: L, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut params = L::Params::zeroed();
        layers.init(&mut params, &mut rng);
        let mut n = Self::with_params(layers, params);
        n.rng = rng;
        n
    }

    /// Forward + loss + backward for every sample of `rows`, then penalties: the core's
    /// [`microfit_core::train::compute_gradients`], a tile at a time.
    ///
    /// # Errors
    /// As [`microfit_core::train::compute_gradients`].
    pub fn compute_gradients(
        &mut self,
        loss: Loss,
        samples: &Samples<'_>,
        rows: Rows<'_>,
    ) -> Result<StepReport, Error> {
        // A batch that fits in one tile is checked while it is copied into the tile (the same
        // checks in the same order, so the same first error); a larger one first, as the core.
        let one_tile = rows.len() <= B;
        if one_tile {
            self.load_checked(samples, rows)?;
        } else {
            check_batch(self, samples, rows)?;
        }
        let b = rows.len();
        let inv_b = 1.0 / b as f32;
        let fused = loss.fuses_with(self.layers.output_activation());
        let errors = !loss.is_classification();
        self.grads.fill(0.0);
        let mut pen = Penalties::new();
        let mut metrics = MetricSums::default();
        let mut data_sum = 0.0f32;
        let width = <L::Output as Tensor>::LEN;
        let mut start = 0;
        while start < b {
            let m = (b - start).min(B);
            if !one_tile {
                for k in 0..m {
                    self.xs[k]
                        .as_mut_slice()
                        .copy_from_slice(samples.input(rows.get(start + k)));
                }
            }
            // The last tile may start and finish the weight penalties on the way
            // (`BatchLayer::last_tile`).
            let last = start + m == b;
            if last {
                self.layers.last_tile(&mut self.cache, true);
            }
            let mut fctx = ForwardCtx {
                training: true,
                rng: &mut self.rng,
            };
            self.layers.forward_batch(
                &self.params,
                &self.xs[..m],
                &mut self.out[..m],
                &mut self.cache,
                &mut fctx,
            );
            let logits = self.layers.logits_batch(&self.cache);
            for k in 0..m {
                add_metrics(
                    &mut metrics,
                    self.out[k].as_slice(),
                    samples.target(rows.get(start + k)),
                    errors,
                );
            }
            let pre = match (fused, logits) {
                (true, Some(z)) => {
                    let z = &z[..m * width];
                    if !loss::fused_batch(
                        loss,
                        z,
                        width,
                        &self.out[..m],
                        |k| samples.target(rows.get(start + k)),
                        &mut self.dout[..m],
                        inv_b,
                        &mut data_sum,
                    )? {
                        for k in 0..m {
                            let t = samples.target(rows.get(start + k));
                            let zk = &z[k * width..(k + 1) * width];
                            let (o, d) = (self.out[k].as_slice(), self.dout[k].as_mut_slice());
                            data_sum +=
                                loss.fused_value_grad_with_output(zk, o, t, Some(d), inv_b)?;
                        }
                    }
                    true
                }
                _ => {
                    for k in 0..m {
                        let t = samples.target(rows.get(start + k));
                        let (o, d) = (&self.out[k], &mut self.dout[k]);
                        data_sum +=
                            loss.value_grad(o.as_slice(), t, Some(d.as_mut_slice()), inv_b)?;
                    }
                    false
                }
            };
            let mut bctx = BackwardCtx {
                inv_batch: inv_b,
                layer: 0,
                penalties: &mut pen,
                step_input: false,
            };
            self.layers.backward_batch(
                &self.params,
                &mut self.grads,
                &self.xs[..m],
                &self.out[..m],
                &mut self.cache,
                &mut self.dout[..m],
                pre,
                None,
                &mut bctx,
            );
            start += m;
        }
        let data_loss = data_sum / b as f32;
        pen.scale_kind(PenaltyKind::Activity, inv_b);
        let headroom = self.epoch_mode.then(|| {
            let others: f32 = pen.entries().iter().map(|e| e.value.abs()).sum();
            data_loss.abs() + others + pen.overflow.abs()
        });
        self.layers
            .defer_weight_penalties(&mut self.cache, headroom);
        self.layers.weight_penalties_batch(
            &self.params,
            Some(&mut self.grads),
            0,
            &mut pen,
            &mut self.cache,
        );
        self.layers.last_tile(&mut self.cache, false);
        let total_loss = data_loss + pen.total();
        Ok(StepReport {
            data_loss,
            penalties: pen,
            total_loss,
            metrics,
        })
    }
}

impl<L: BatchLayer<B>, const B: usize> BatchNetwork<L, B> {
    /// The core's `check_batch` on a batch of at most `B` rows, copying each row into the tile
    /// and checking the copy.
    fn load_checked(&mut self, samples: &Samples<'_>, rows: Rows<'_>) -> Result<(), Error> {
        if rows.is_empty() {
            return Err(Error::EmptyBatch);
        }
        if samples.input_len() != <L::Input as Tensor>::LEN {
            return Err(Error::ShapeMismatch {
                what: "input",
                expected: <L::Input as Tensor>::LEN as u32,
                found: samples.input_len() as u32,
            });
        }
        for (k, xk) in self.xs.iter_mut().enumerate().take(rows.len()) {
            let i = rows.get(k);
            if i >= samples.len() {
                return Err(Error::ShapeMismatch {
                    what: "sample index",
                    expected: samples.len() as u32,
                    found: i as u32,
                });
            }
            let xk = xk.as_mut_slice();
            xk.copy_from_slice(samples.input(i));
            let bad_t = match samples.target(i) {
                Target::Dense(t) => !all_finite(t),
                Target::Class(_) => false,
            };
            if bad_t || !all_finite(xk) {
                return Err(Error::NonFiniteInput { sample: k as u32 });
            }
        }
        Ok(())
    }
}

/// `MetricSums::add_sample` of the core: accuracy (the output's first maximum against the
/// target class, or `> 0.5` for one output) and, when `errors`, the squared and absolute
/// errors (through the core).
#[inline]
fn add_metrics(m: &mut MetricSums, out: &[f32], t: Target<'_>, errors: bool) {
    if errors || out.len() == 1 {
        m.add_sample(out, t, errors);
        return;
    }
    let argmax = first_max_index;
    let class = match t {
        Target::Class(k) => k as usize,
        Target::Dense(v) => argmax(v),
    };
    m.samples += 1;
    if argmax(out) == class {
        m.correct += 1;
    }
}

/// The core's first maximum (`if x > mx { mx = x; best = i }` from `-∞`, NaN never taken),
/// without data-dependent branches: the maximum (`max` instructions), then the first index
/// holding it (index 0 when nothing is above `-∞`).
#[inline]
fn first_max_index(v: &[f32]) -> usize {
    if v.len() > 64 {
        return first_max_index_seq(v);
    }
    let mut mx = f32::NEG_INFINITY;
    for &x in v {
        mx = if x > mx { x } else { mx };
    }
    let mut hit = 0u64;
    for (i, &x) in v.iter().enumerate() {
        hit |= u64::from(x == mx) << (i & 63);
    }
    if mx == f32::NEG_INFINITY || hit == 0 {
        0
    } else {
        hit.trailing_zeros() as usize
    }
}

/// [`first_max_index`] as the core writes it.
fn first_max_index_seq(v: &[f32]) -> usize {
    let (mut best, mut mx) = (0, f32::NEG_INFINITY);
    for (i, &x) in v.iter().enumerate() {
        if x > mx {
            mx = x;
            best = i;
        }
    }
    best
}

/// The core's `check_batch` (same checks, same errors, same order).
fn check_batch<M: Trainable>(
    model: &M,
    samples: &Samples<'_>,
    rows: Rows<'_>,
) -> Result<(), Error> {
    if rows.is_empty() {
        return Err(Error::EmptyBatch);
    }
    if samples.input_len() != model.input_len() {
        return Err(Error::ShapeMismatch {
            what: "input",
            expected: model.input_len() as u32,
            found: samples.input_len() as u32,
        });
    }
    for k in 0..rows.len() {
        let i = rows.get(k);
        if i >= samples.len() {
            return Err(Error::ShapeMismatch {
                what: "sample index",
                expected: samples.len() as u32,
                found: i as u32,
            });
        }
        let bad_t = match samples.target(i) {
            Target::Dense(t) => !all_finite(t),
            Target::Class(_) => false,
        };
        if bad_t || !all_finite(samples.input(i)) {
            return Err(Error::NonFiniteInput { sample: k as u32 });
        }
    }
    Ok(())
}

/// True when no value is NaN or ±∞ (a vectorizable reduction over the exponent bits).
#[inline]
pub fn all_finite(v: &[f32]) -> bool {
    let mut bad = 0u32;
    for x in v {
        bad |= u32::from(x.to_bits() & 0x7f80_0000 == 0x7f80_0000);
    }
    bad == 0
}

/// [`Params::first_non_finite`] with a vectorized scan.
pub fn first_non_finite<P: Params>(p: &P) -> Option<usize> {
    (0..p.tensor_count()).find(|&i| !all_finite(p.tensor(i)))
}

impl<L: BatchLayer<B>, const B: usize> Trainable for BatchNetwork<L, B> {
    type Params = L::Params;

    fn input_len(&self) -> usize {
        L::Input::LEN
    }

    fn output_len(&self) -> usize {
        L::Output::LEN
    }

    fn params(&self) -> &L::Params {
        &self.params
    }

    fn params_mut(&mut self) -> &mut L::Params {
        &mut self.params
    }

    fn weights_and_grads(&mut self) -> (&mut L::Params, &mut L::Params) {
        (&mut self.params, &mut self.grads)
    }

    fn forward_sample(&mut self, x: &[f32], training: bool) {
        self.layers.last_tile(&mut self.cache, false);
        self.xs[0].as_mut_slice().copy_from_slice(x);
        let mut ctx = ForwardCtx {
            training,
            rng: &mut self.rng,
        };
        self.layers.forward_batch(
            &self.params,
            &self.xs[..1],
            &mut self.out[..1],
            &mut self.cache,
            &mut ctx,
        );
    }

    fn output(&self) -> &[f32] {
        self.out[0].as_slice()
    }

    fn output_activation(&self) -> Activation {
        self.layers.output_activation()
    }

    fn loss_io(&mut self) -> (&[f32], Option<&[f32]>, &mut [f32]) {
        let w = <L::Output as Tensor>::LEN;
        (
            self.out[0].as_slice(),
            self.layers.logits_batch(&self.cache).map(|z| &z[..w]),
            self.dout[0].as_mut_slice(),
        )
    }

    fn backward_sample(&mut self, _x: &[f32], d_is_pre: bool, inv_batch: f32, pen: &mut Penalties) {
        // The input of the last forward sample is still in the first row of the tile. (The
        // core passes an empty `x` when it only wants the activity penalties; the gradient
        // accumulated here is then discarded by the next `zero_grads`, as in the core.)
        self.layers.last_tile(&mut self.cache, false);
        let mut ctx = BackwardCtx {
            inv_batch,
            layer: 0,
            penalties: pen,
            step_input: false,
        };
        self.layers.backward_batch(
            &self.params,
            &mut self.grads,
            &self.xs[..1],
            &self.out[..1],
            &mut self.cache,
            &mut self.dout[..1],
            d_is_pre,
            None,
            &mut ctx,
        );
    }

    fn weight_penalties(&mut self, with_grads: bool, pen: &mut Penalties) {
        self.layers.defer_weight_penalties(&mut self.cache, None);
        if with_grads {
            self.layers.weight_penalties_batch(
                &self.params,
                Some(&mut self.grads),
                0,
                pen,
                &mut self.cache,
            );
        } else {
            self.layers
                .weight_penalties_batch(&self.params, None, 0, pen, &mut self.cache);
        }
    }

    fn zero_grads(&mut self) {
        self.grads.fill(0.0);
    }
}

/// An optimizer step for the host: the same bits as [`Optimizer::step`], faster where the
/// core's portable code cannot vectorize (Adam's libm `sqrtf` is inline assembly; std's
/// `f32::sqrt` is the same correctly rounded square root as a vector instruction).
pub trait HostOptimizer<P: Params>: Optimizer<P> {
    /// One update, bit-identical to [`Optimizer::step`].
    fn step_host(&mut self, w: &mut P, g: &mut P) {
        self.step(w, g);
    }
}

impl<P: Params> HostOptimizer<P> for Adam<P> {
    fn step_host(&mut self, w: &mut P, g: &mut P) {
        self.step_with(w, g, f32::sqrt);
    }
}

impl<P: Params> HostOptimizer<P> for Momentum<P> {}

impl<P: Params> HostOptimizer<P> for Sgd {}

impl<P: Params> HostOptimizer<P> for AnyOptimizer<P> {
    fn step_host(&mut self, w: &mut P, g: &mut P) {
        match self {
            AnyOptimizer::Adam(a) => a.step_with(w, g, f32::sqrt),
            other => other.step(w, g),
        }
    }
}

/// [`microfit_core::Trainer`] over a [`BatchNetwork`]: the same steps, epochs and reports.
#[derive(Debug)]
pub struct BatchTrainer<L: BatchLayer<B>, O, const B: usize> {
    /// The model.
    pub model: BatchNetwork<L, B>,
    /// The optimizer (with its state).
    pub optimizer: O,
    /// The loss.
    pub loss: Loss,
    /// The step reports of an epoch (kept to reuse the allocation).
    reports: Vec<(StepReport, usize)>,
}

impl<L: BatchLayer<B>, O: HostOptimizer<L::Params>, const B: usize> BatchTrainer<L, O, B> {
    /// Bundles a model, an optimizer and a loss.
    pub fn new(model: BatchNetwork<L, B>, optimizer: O, loss: Loss) -> Self {
        BatchTrainer {
            model,
            optimizer,
            loss,
            reports: Vec::new(),
        }
    }

    /// One step on `rows`: [`microfit_core::train::train_step`], same checks, same errors.
    ///
    /// # Errors
    /// As [`microfit_core::train::train_step`].
    pub fn step(&mut self, samples: &Samples<'_>, rows: Rows<'_>) -> Result<StepReport, Error> {
        let mut report = self.model.compute_gradients(self.loss, samples, rows)?;
        let in_range = report.total_loss.abs() < 1e37; // false for NaN too
        if self.model.epoch_mode && !in_range {
            // Far from the usual range, the bounds a layer may report inside an epoch (see
            // `BatchLayer::defer_weight_penalties`) could decide `NonFiniteLoss` differently
            // from the values: take the exact weight penalties now (the core's code, values
            // only; the gradients are already in).
            let mut exact = Penalties::new();
            for e in report.penalties.entries() {
                if e.kind == PenaltyKind::Activity {
                    exact.add(e.layer as usize, e.kind, e.value);
                }
            }
            self.model
                .layers
                .weight_penalties(&self.model.params, None, 0, &mut exact);
            report.total_loss = report.data_loss + exact.total();
            report.penalties = exact;
        }
        if !report.total_loss.is_finite() {
            return Err(Error::NonFiniteLoss);
        }
        if let Some(t) = first_non_finite(&self.model.grads) {
            return Err(Error::NonFiniteGradient { tensor: t as u16 });
        }
        self.optimizer
            .step_host(&mut self.model.params, &mut self.model.grads);
        Ok(report)
    }

    /// One epoch, as [`microfit_core::Trainer::fit_epoch`].
    ///
    /// # Errors
    /// The first step error; the steps before it have been applied.
    pub fn fit_epoch(
        &mut self,
        samples: &Samples<'_>,
        batch_size: usize,
        order: Option<&[u32]>,
    ) -> Result<EpochReport, Error> {
        // Epoch mode: a step may report a provable bound of a weight penalty (which decides
        // `NonFiniteLoss` exactly as the value would); the exact values — the same sums in the
        // same order — are computed after the last step, many steps' sums side by side (one
        // such sum alone is a chain of dependent additions: W1's kernel L2 is 2,048 of them).
        // The step reports are then completed and summed in order, as the core does.
        let model = &mut self.model;
        model
            .layers
            .take_deferred(&mut model.cache, 0, &mut |_, _| {});
        model.epoch_mode = true;
        let n = order.map_or(samples.len(), |o| o.len());
        let bs = batch_size.max(1);
        let mut reports = std::mem::take(&mut self.reports);
        reports.clear();
        let mut start = 0;
        let mut result = Ok(());
        while start < n {
            let end = (start + bs).min(n);
            let rows = match order {
                Some(o) => Rows::Indices(&o[start..end]),
                None => Rows::Range(start, end),
            };
            match self.step(samples, rows) {
                Ok(r) => reports.push((r, end - start)),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            start = end;
        }
        let model = &mut self.model;
        model.epoch_mode = false;
        model
            .layers
            .take_deferred(&mut model.cache, 0, &mut |layer, values| {
                for ((r, _), v) in reports.iter_mut().zip(values) {
                    if let Some(v) = *v {
                        set_penalty(&mut r.penalties, layer, PenaltyKind::Kernel, v);
                        r.total_loss = r.data_loss + r.penalties.total();
                    }
                }
            });
        let mut rep = EpochReport::default();
        result.map(|()| {
            for (r, n) in &reports {
                epoch_add(&mut rep, r, *n);
            }
            epoch_finish(&mut rep);
            self.reports = reports;
            rep
        })
    }

    /// Evaluation, as [`microfit_core::Trainer::evaluate`] (it is the core's code).
    ///
    /// # Errors
    /// Shape, label and non-finite input errors.
    pub fn evaluate(
        &mut self,
        samples: &Samples<'_>,
        batch_size: usize,
    ) -> Result<EpochReport, Error> {
        microfit_core::train::evaluate(&mut self.model, self.loss, samples, batch_size)
    }
}

/// Sets the value of the entry `(layer, kind)` (the entries rebuilt in order, each value as it
/// was but this one).
fn set_penalty(p: &mut Penalties, layer: usize, kind: PenaltyKind, value: f32) {
    let mut q = Penalties::new();
    for e in p.entries() {
        let v = if e.layer as usize == layer && e.kind == kind {
            value
        } else {
            e.value
        };
        q.add(e.layer as usize, e.kind, v);
    }
    q.overflow = p.overflow;
    *p = q;
}

/// `EpochReport::add` of the core (batch-size-weighted sums).
fn epoch_add(rep: &mut EpochReport, r: &StepReport, n: usize) {
    let w = n as f32;
    rep.loss += r.total_loss * w;
    rep.data_loss += r.data_loss * w;
    rep.penalties.add_weighted(&r.penalties, w);
    rep.metrics.merge(&r.metrics);
    rep.steps += 1;
}

/// `EpochReport::finish` of the core (means).
fn epoch_finish(rep: &mut EpochReport) {
    let n = rep.metrics.samples.max(1) as f32;
    rep.loss /= n;
    rep.data_loss /= n;
    rep.penalties.scale(1.0 / n);
}

#[cfg(test)]
mod tests {
    use super::{first_max_index, first_max_index_seq};

    const SPECIAL: [f32; 9] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        2.5,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
    ];

    #[test]
    fn first_max_index_is_the_cores() {
        assert_eq!(first_max_index(&[]), 0);
        for a in SPECIAL {
            for b in SPECIAL {
                for c in SPECIAL {
                    for z in [[a, b, c, 1.0], [1.0, a, b, c], [a, a, b, c]] {
                        assert_eq!(first_max_index(&z), first_max_index_seq(&z), "{z:?}");
                    }
                }
            }
        }
    }
}
