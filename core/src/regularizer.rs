//! Weight and activity regularizers with Keras semantics.
//!
//! | Keras | here | penalty | gradient |
//! |---|---|---|---|
//! | `L1(l1=0.01)` | [`Reg::L1`] | `l1 · Σ|w|` | `l1 · sign(w)`, `sign(±0) = 0` |
//! | `L2(l2=0.01)` | [`Reg::L2`] | `l2 · Σw²` (no ½) | `l2 · 2w` |
//! | `L1L2(l1=0, l2=0)` | [`Reg::L1L2`] | both; a zero factor skips its term | both |
//! | `OrthogonalRegularizer(factor=0.01, mode="rows")` | [`Reg::Orthogonal`] | `factor · ½ Σ_{i≠j} |P_ij| / (n(n-1)/2)`, `P = N Nᵀ` of the L2-normalised rows (or columns) | analytic |
//!
//! `tf.nn.l2_loss(w) = Σw²/2`, so a custom loop adding `λ · Σ l2_loss(w)` is exactly
//! [`Reg::L2`] with `l2 = λ/2` ([`Reg::from_l2_loss`]).
//!
//! Activity regularizers are applied to a layer's output after its activation and divided by
//! the batch size (Keras ≥ 3.14); the training step does that division.
//!
//! User-defined regularizers implement [`Regularizer`].
//!
//! ```
//! use microfit_core::regularizer::{Reg, Regularizer};
//! let r = Reg::l1l2(0.01, 0.5);
//! let w = [1.0, -2.0, 0.0];
//! assert_eq!(r.penalty(&w, 3), 0.01 * 3.0 + 0.5 * 5.0);
//! let mut g = [0.0; 3];
//! r.add_grad(&w, 3, &mut g, 1.0);
//! assert_eq!(g, [0.01 + 0.5 * 2.0, -0.01 - 0.5 * 4.0, 0.0]);
//! ```

use crate::error::{Error, check_non_negative};
use crate::math;

/// A penalty on a tensor, with its gradient.
///
/// `cols` is the size of the tensor's last axis (so rank-2 regularizers can see the matrix);
/// element-wise regularizers ignore it.
pub trait Regularizer {
    /// The penalty of `w`.
    fn penalty(&self, w: &[f32], cols: usize) -> f32;
    /// `g += scale · ∂penalty/∂w`.
    fn add_grad(&self, w: &[f32], cols: usize, g: &mut [f32], scale: f32);
    /// [`Regularizer::penalty`] and [`Regularizer::add_grad`] together (the training step
    /// needs both): the same values, possibly in one pass over `w`.
    fn penalty_and_grad(&self, w: &[f32], cols: usize, g: &mut [f32], scale: f32) -> f32 {
        let p = self.penalty(w, cols);
        self.add_grad(w, cols, g, scale);
        p
    }
    /// `Some(f)` when [`Regularizer::penalty`] is exactly `f · sum_sq(w)` ([`sum_sq`]: the same
    /// factor, the same product) and [`Regularizer::add_grad`] exactly [`l2_add_grad`] with
    /// `f`: a training step may then take `Σw²` from the optimizer's update loop that wrote
    /// `w` ([`SumSqs`]) and add the gradient alone (through its backend,
    /// [`crate::backend::Backend::l2_grad`]). The default, `None`, is always correct (the
    /// penalty is computed as usual).
    #[inline]
    fn sum_sq_factor(&self) -> Option<f32> {
        None
    }
}

/// `Σw²` of weight tensors, computed by the optimizer's update loop as it writes them
/// ([`crate::optim::Optimizer::step_sq`]) for the L2 penalties of the next training step
/// ([`Regularizer::sum_sq_factor`]): the update is bound by its square roots and divisions,
/// so the squares come nearly free, and the penalty skips a pass over the weights that is
/// bound by the latency of its additions. Each sum is [`sum_sq`]'s, lane for lane (the same
/// eight partial sums in the same order), so the penalty keeps its bits.
///
/// Tensor `i` is the model's `i`-th parameter tensor ([`crate::params::Params`]); tensors
/// `0..64` take part. A sum is *valid* from the update that computed it until the next
/// update: [`SumSqs::get`] gives it only then. The training step
/// ([`crate::train::fit_epoch`] on a backend with [`crate::backend::Backend::FOLD_SUM_SQ`])
/// keeps one for an epoch and starts empty, so any write to the weights between epochs
/// (loading, resetting, setting them) is never seen through a stale sum; a layer asks only for
/// tensors that no constraint rewrites after the update.
///
/// ```
/// use microfit_core::regularizer::{SumSqs, sum_sq};
/// let mut sq = SumSqs::new();
/// sq.want(1);
/// assert!(sq.wants(1) && !sq.wants(0));
/// assert_eq!(sq.get(1), None); // no update has computed it yet
/// sq.set(1, sum_sq(&[3.0, 4.0]));
/// assert_eq!(sq.get(1), Some(25.0));
/// sq.invalidate();
/// assert_eq!(sq.get(1), None);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SumSqs {
    want: u64,
    valid: u64,
    sums: [f32; 64],
}

impl Default for SumSqs {
    fn default() -> Self {
        Self::new()
    }
}

impl SumSqs {
    /// Nothing wanted, nothing valid.
    pub const fn new() -> Self {
        SumSqs {
            want: 0,
            valid: 0,
            sums: [0.0; 64],
        }
    }

    #[inline]
    fn bit(i: usize) -> u64 {
        if i < 64 { 1 << i } else { 0 }
    }

    /// Asks the next updates for `Σw²` of tensor `i` (ignored from 64 on).
    #[inline]
    pub fn want(&mut self, i: usize) {
        self.want |= Self::bit(i);
    }

    /// True when `Σw²` of tensor `i` is wanted.
    #[inline]
    pub fn wants(&self, i: usize) -> bool {
        self.want & Self::bit(i) != 0
    }

    /// `Σw²` of tensor `i`'s current weights, when the last update computed it.
    #[inline]
    pub fn get(&self, i: usize) -> Option<f32> {
        if self.valid & Self::bit(i) != 0 {
            self.sums.get(i).copied()
        } else {
            None
        }
    }

    /// Records `s = Σw²` of tensor `i` as just written by an update (ignored from 64 on).
    #[inline]
    pub fn set(&mut self, i: usize, s: f32) {
        if let Some(slot) = self.sums.get_mut(i) {
            *slot = s;
            self.valid |= Self::bit(i);
        }
    }

    /// Forgets every sum (the weights are about to change): what an update does first.
    #[inline]
    pub fn invalidate(&mut self) {
        self.valid = 0;
    }
}

/// Orthogonal regularizer mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OrthoMode {
    /// Penalise non-orthogonal rows (Keras default).
    Rows,
    /// Penalise non-orthogonal columns.
    Columns,
}

/// The built-in regularizers (Keras classes).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Reg {
    /// `l1 · Σ|w|`.
    L1 {
        /// Factor.
        l1: f32,
    },
    /// `l2 · Σw²`.
    L2 {
        /// Factor.
        l2: f32,
    },
    /// `l1 · Σ|w| + l2 · Σw²`.
    L1L2 {
        /// L1 factor.
        l1: f32,
        /// L2 factor.
        l2: f32,
    },
    /// Orthogonality of rows or columns of a rank-2 tensor.
    Orthogonal {
        /// Factor.
        factor: f32,
        /// Rows or columns.
        mode: OrthoMode,
    },
}

impl Reg {
    /// Keras' `L1()` default factor.
    pub const DEFAULT_L1: f32 = 0.01;
    /// Keras' `L2()` default factor.
    pub const DEFAULT_L2: f32 = 0.01;

    /// `L1(l1)`. For a checked version use [`Reg::try_l1`].
    ///
    /// # Panics
    /// If `l1` is negative or not finite (at compile time when used in a `const`).
    pub const fn l1(l1: f32) -> Self {
        assert!(
            l1.is_finite() && l1 >= 0.0,
            "L1 factor must be finite and >= 0"
        );
        Reg::L1 { l1 }
    }

    /// `L2(l2)`. For a checked version use [`Reg::try_l2`].
    ///
    /// # Panics
    /// If `l2` is negative or not finite (at compile time when used in a `const`).
    pub const fn l2(l2: f32) -> Self {
        assert!(
            l2.is_finite() && l2 >= 0.0,
            "L2 factor must be finite and >= 0"
        );
        Reg::L2 { l2 }
    }

    /// `L1L2(l1, l2)`.
    ///
    /// # Panics
    /// If a factor is negative or not finite.
    pub const fn l1l2(l1: f32, l2: f32) -> Self {
        assert!(
            l1.is_finite() && l1 >= 0.0 && l2.is_finite() && l2 >= 0.0,
            "L1L2 factors must be finite and >= 0"
        );
        Reg::L1L2 { l1, l2 }
    }

    /// Checked `L1(l1)`.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] if `l1` is negative, NaN or infinite (as Keras 3).
    pub fn try_l1(l1: f32) -> Result<Self, Error> {
        Ok(Reg::L1 {
            l1: check_non_negative("l1", l1)?,
        })
    }

    /// Checked `L2(l2)`.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] if `l2` is negative, NaN or infinite.
    pub fn try_l2(l2: f32) -> Result<Self, Error> {
        Ok(Reg::L2 {
            l2: check_non_negative("l2", l2)?,
        })
    }

    /// Checked `L1L2(l1, l2)`.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a negative, NaN or infinite factor.
    pub fn try_l1l2(l1: f32, l2: f32) -> Result<Self, Error> {
        Ok(Reg::L1L2 {
            l1: check_non_negative("l1", l1)?,
            l2: check_non_negative("l2", l2)?,
        })
    }

    /// Checked `OrthogonalRegularizer(factor, mode)`.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a negative, NaN or infinite factor.
    pub fn try_orthogonal(factor: f32, mode: OrthoMode) -> Result<Self, Error> {
        Ok(Reg::Orthogonal {
            factor: check_non_negative("factor", factor)?,
            mode,
        })
    }

    /// The regularizer equal to adding `lambda · tf.nn.l2_loss(w)` to the loss:
    /// `L2(lambda / 2)`.
    ///
    /// ```
    /// use microfit_core::regularizer::{Reg, Regularizer};
    /// let w = [3.0f32, -1.0];
    /// let l2_loss = w.iter().map(|v| v * v).sum::<f32>() / 2.0;
    /// assert_eq!(Reg::from_l2_loss(0.01).penalty(&w, 2), 0.01 * l2_loss);
    /// ```
    pub fn from_l2_loss(lambda: f32) -> Self {
        Reg::L2 { l2: lambda / 2.0 }
    }

    /// Checks the factors (for values built with the enum literal).
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a negative, NaN or infinite factor.
    pub fn validate(&self) -> Result<(), Error> {
        match *self {
            Reg::L1 { l1 } => check_non_negative("l1", l1).map(|_| ()),
            Reg::L2 { l2 } => check_non_negative("l2", l2).map(|_| ()),
            Reg::L1L2 { l1, l2 } => {
                check_non_negative("l1", l1)?;
                check_non_negative("l2", l2).map(|_| ())
            }
            Reg::Orthogonal { factor, .. } => check_non_negative("factor", factor).map(|_| ()),
        }
    }

    /// The Keras class name (`"L1"`, `"L2"`, `"L1L2"`, `"OrthogonalRegularizer"`).
    pub fn keras_class(&self) -> &'static str {
        match self {
            Reg::L1 { .. } => "L1",
            Reg::L2 { .. } => "L2",
            Reg::L1L2 { .. } => "L1L2",
            Reg::Orthogonal { .. } => "OrthogonalRegularizer",
        }
    }
}

/// `Σ |w|` in the core's one order ([`crate::kernels::reduce::sum_abs`]: eight interleaved
/// partial sums).
#[inline]
pub fn sum_abs(w: &[f32]) -> f32 {
    crate::kernels::reduce::sum_abs(w)
}

/// `Σ w²` in the core's one order ([`crate::kernels::reduce::sum_sq`]: eight interleaved
/// partial sums).
#[inline]
pub fn sum_sq(w: &[f32]) -> f32 {
    crate::kernels::reduce::sum_sq(w)
}

/// `g += (l2 · (2w)) · scale` element by element: the gradient of `l2 · Σw²` ([`L2`]'s
/// `add_grad`).
///
/// ```
/// let mut g = [1.0f32, 0.0];
/// microfit_core::regularizer::l2_add_grad(&[3.0, -1.0], &mut g, 0.5, 2.0);
/// assert_eq!(g, [1.0 + (0.5 * (3.0 * 2.0)) * 2.0, (0.5 * (-1.0 * 2.0)) * 2.0]);
/// ```
#[inline(always)]
pub fn l2_add_grad(w: &[f32], g: &mut [f32], l2: f32, scale: f32) {
    for (gi, &wi) in g.iter_mut().zip(w) {
        *gi += (l2 * (wi * 2.0)) * scale;
    }
}

/// Keras `L1(l1)` as a type of its own: the [`Reg::L1`] arm (the same code, the same bits).
/// A layer generic over its regularizer (`Dense<IN, OUT, L1>`) links only this one, where
/// [`Reg`] links every regularizer (firmware size).
///
/// ```
/// use microfit_core::regularizer::{L1, Reg, Regularizer};
/// let w = [1.0f32, -2.0, 0.0];
/// assert_eq!(L1 { l1: 0.01 }.penalty(&w, 3), Reg::l1(0.01).penalty(&w, 3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct L1 {
    /// Factor (finite, `>= 0`).
    pub l1: f32,
}

impl Regularizer for L1 {
    #[inline]
    fn penalty(&self, w: &[f32], _cols: usize) -> f32 {
        self.l1 * sum_abs(w)
    }

    #[inline]
    fn add_grad(&self, w: &[f32], _cols: usize, g: &mut [f32], scale: f32) {
        for (gi, &wi) in g.iter_mut().zip(w) {
            *gi += (self.l1 * math::sign(wi)) * scale;
        }
    }
}

/// Keras `L2(l2)` as a type of its own: the [`Reg::L2`] arm (the same code, the same bits).
/// A layer generic over its regularizer (`Dense<IN, OUT, L2>`) links only this one, where
/// [`Reg`] links every regularizer (firmware size).
///
/// ```
/// use microfit_core::regularizer::{L2, Reg, Regularizer};
/// let w = [1.0f32, -2.0, 0.0];
/// assert_eq!(L2 { l2: 0.5 }.penalty(&w, 3), Reg::l2(0.5).penalty(&w, 3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct L2 {
    /// Factor (finite, `>= 0`).
    pub l2: f32,
}

// The loops are out of line (`add_grad`, `L2::blocks`): one copy of each for every layer and
// for the evaluation, rather than an unrolled copy per call site (a firmware with L2 on two
// layers: 2 KB of flash). `penalty` and the training step's `penalty_and_grad` are one pass
// (`L2::pass`): a firmware links one loop over the weights, not two.
impl Regularizer for L2 {
    #[inline]
    fn penalty(&self, w: &[f32], _cols: usize) -> f32 {
        self.pass(w, &mut [], 1.0)
    }

    #[inline(never)]
    fn add_grad(&self, w: &[f32], _cols: usize, g: &mut [f32], scale: f32) {
        l2_add_grad(w, g, self.l2, scale);
    }

    /// One pass over `w` (`L2::pass`): the bits of `penalty` then `add_grad`.
    #[inline]
    fn penalty_and_grad(&self, w: &[f32], _cols: usize, g: &mut [f32], scale: f32) -> f32 {
        self.pass(w, g, scale)
    }

    /// `l2`: the penalty is `l2 · sum_sq(w)` (`L2::pass`'s lanes are [`sum_sq`]'s).
    #[inline]
    fn sum_sq_factor(&self) -> Option<f32> {
        Some(self.l2)
    }
}

impl L2 {
    /// `l2 · Σw²` — each square into [`sum_sq`]'s eight lanes, the same bits — and, for the
    /// first `g.len()` values of `w` (all of them in a training step, none for the penalty
    /// alone), `g += (l2·(2w))·scale`, [`Regularizer::add_grad`]'s bits: the penalty and its
    /// gradient in one pass over `w`, eight values at a time.
    ///
    /// Inlined: the whole blocks go to one out-of-line loop ([`L2::blocks`]), and what a
    /// tensor's length leaves over — a last partial block, gradients of a partial block — is
    /// handled here, where a layer's constant sizes remove it (a firmware's Dense kernels of
    /// 64 and 48 values link the block loop alone: issue 14's flash).
    #[inline(always)]
    fn pass(&self, w: &[f32], g: &mut [f32], scale: f32) -> f32 {
        const LANES: usize = crate::kernels::reduce::LANES;
        let (wc, wt) = w.as_chunks::<LANES>();
        // The blocks whose eight gradients are all wanted, then the gradients left.
        let k = (g.len() / LANES).min(wc.len());
        let (gk, g_rest) = match g.split_at_mut_checked(k * LANES) {
            Some(parts) => parts,
            None => (&mut [][..], &mut [][..]),
        };
        // The last partial block padded with zeros: a `+0` square leaves a lane's bits as
        // they were (a lane is `+0`, a sum of squares or NaN, never `-0`).
        let mut last = [0.0f32; LANES];
        for (d, &x) in last.iter_mut().zip(wt) {
            *d = x;
        }
        let last = (!wt.is_empty()).then_some(&last);
        let p = self.blocks(wc, gk.as_chunks_mut::<LANES>().0, last, scale);
        if !g_rest.is_empty()
            && let Some(w_rest) = w.get(k * LANES..)
            && !w_rest.is_empty()
        {
            self.add_grad(w_rest, 0, g_rest, scale);
        }
        p
    }

    /// [`L2::pass`] over whole blocks: the squares of `w`'s blocks and then of `last` into the
    /// eight lanes, `g`'s blocks (the first `g.len()` of `w`'s) `+= (l2·(2w))·scale`;
    /// `l2 ·` the lanes combined. One copy for every layer, the training and the evaluation.
    #[inline(never)]
    fn blocks(
        &self,
        w: &[[f32; 8]],
        g: &mut [[f32; 8]],
        last: Option<&[f32; 8]>,
        scale: f32,
    ) -> f32 {
        let mut s = [0.0f32; 8];
        let mut g = g.iter_mut();
        for c in w {
            // An empty opaque step: LLVM then keeps the loop rolled (a Cortex-M target unrolls
            // a loop without calls; two copies of this body are 0.5 KB of flash).
            core::hint::black_box(());
            for (a, &x) in s.iter_mut().zip(c) {
                *a += x * x;
            }
            if let Some(gc) = g.next() {
                for (gi, &x) in gc.iter_mut().zip(c) {
                    *gi += (self.l2 * (x * 2.0)) * scale;
                }
            }
        }
        if let Some(c) = last {
            for (a, &x) in s.iter_mut().zip(c) {
                *a += x * x;
            }
        }
        self.l2 * crate::kernels::reduce::combine(&s)
    }
}

impl Regularizer for Reg {
    fn penalty(&self, w: &[f32], cols: usize) -> f32 {
        match *self {
            Reg::L1 { l1 } => L1 { l1 }.penalty(w, cols),
            Reg::L2 { l2 } => L2 { l2 }.penalty(w, cols),
            Reg::L1L2 { l1, l2 } => {
                let mut r = 0.0f32;
                if l1 != 0.0 {
                    r += l1 * sum_abs(w);
                }
                if l2 != 0.0 {
                    r += l2 * sum_sq(w);
                }
                r
            }
            Reg::Orthogonal { factor, mode } => orthogonal(factor, mode, w, cols, None, 0.0),
        }
    }

    fn add_grad(&self, w: &[f32], cols: usize, g: &mut [f32], scale: f32) {
        match *self {
            Reg::L1 { l1 } => L1 { l1 }.add_grad(w, cols, g, scale),
            Reg::L2 { l2 } => L2 { l2 }.add_grad(w, cols, g, scale),
            Reg::L1L2 { l1, l2 } => {
                for (gi, &wi) in g.iter_mut().zip(w) {
                    let mut d = 0.0f32;
                    if l1 != 0.0 {
                        d = l1 * math::sign(wi);
                    }
                    if l2 != 0.0 {
                        d += l2 * (wi * 2.0);
                    }
                    *gi += d * scale;
                }
            }
            Reg::Orthogonal { factor, mode } => {
                orthogonal(factor, mode, w, cols, Some(g), scale);
            }
        }
    }

    /// `l2` for [`Reg::L2`] (its penalty is `L2 { l2 }`'s, `l2 · sum_sq(w)`); the others keep
    /// their own path.
    #[inline]
    fn sum_sq_factor(&self) -> Option<f32> {
        match *self {
            Reg::L2 { l2 } => Some(l2),
            _ => None,
        }
    }
}

/// Keras' `normalize`: `x · min(rsqrt(Σx²), 1/ε)` with `ε = 1e-7`. Returns (multiplier, clamped).
fn inv_norm(sq: f32) -> (f32, bool) {
    let r = 1.0 / math::sqrt(sq);
    if r.is_nan() || r > 1e7 {
        (1e7, true)
    } else {
        (r, false)
    }
}

/// Orthogonal penalty (and gradient when `g` is given) without scratch memory:
/// every inner product is recomputed, `O(n² m)` for `n` vectors of length `m`.
fn orthogonal(
    factor: f32,
    mode: OrthoMode,
    w: &[f32],
    cols: usize,
    mut g: Option<&mut [f32]>,
    scale: f32,
) -> f32 {
    let cols = cols.max(1);
    let rows = w.len() / cols;
    let (n, m) = match mode {
        OrthoMode::Rows => (rows, cols),
        OrthoMode::Columns => (cols, rows),
    };
    if n < 2 {
        return 0.0;
    }
    let at = |v: usize, e: usize| -> usize {
        match mode {
            OrthoMode::Rows => v * cols + e,
            OrthoMode::Columns => e * cols + v,
        }
    };
    // Every index is below `rows · cols ≤ w.len()`: `get` only spares the bounds checks' panic
    // paths (firmware).
    let wv = |v: usize, e: usize| w.get(at(v, e)).copied().unwrap_or(0.0);
    let norm_of = |v: usize| -> (f32, bool) {
        let mut s = 0.0f32;
        for e in 0..m {
            let x = wv(v, e);
            s += x * x;
        }
        inv_norm(s)
    };
    let pairs = (n * (n - 1)) as f32 / 2.0;
    let c = factor * 0.5 / pairs;
    let mut total = 0.0f32;
    for i in 0..n {
        let (ri, clamped_i) = norm_of(i);
        let mut abs_sum = 0.0f32;
        for j in 0..n {
            if j == i {
                continue;
            }
            let (rj, _) = norm_of(j);
            let mut dot = 0.0f32;
            for e in 0..m {
                dot += wv(i, e) * wv(j, e);
            }
            let p = dot * ri * rj;
            abs_sum += math::abs(p);
            if let Some(g) = g.as_deref_mut() {
                // dN_i += 2c·sign(P_ij)·N_j, and dx_i = dN_i · r_i (minus the radial part below).
                let k = 2.0 * c * math::sign(p) * ri * rj * scale;
                for e in 0..m {
                    if let Some(gi) = g.get_mut(at(i, e)) {
                        *gi += k * wv(j, e);
                    }
                }
            }
        }
        total += abs_sum;
        if let Some(g) = g.as_deref_mut()
            && !clamped_i
        {
            // Remove the radial component: N_i·dN_i = 2c·Σ_j |P_ij|.
            let k = 2.0 * c * abs_sum * ri * ri * scale;
            for e in 0..m {
                if let Some(gi) = g.get_mut(at(i, e)) {
                    *gi -= k * wv(i, e);
                }
            }
        }
    }
    c * total
}
