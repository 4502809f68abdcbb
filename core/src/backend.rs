//! [`Backend`]: what a training step runs on — the scalar math (`sqrt`, `exp`, `ln`) and the
//! bulk kernels over a tile of samples — chosen by a type parameter, never by a closure or a
//! flag.
//!
//! Every training entry point ([`crate::train::fit_epoch`], [`crate::train::train_step`],
//! [`crate::train::evaluate`], [`crate::optim::Optimizer::step`], the layers' forward and
//! backward passes) takes a `B: Backend`. A backend may only change *how fast* a result is
//! computed, never the result: every method has the bits of the default implementation, which
//! is the core's portable code ([`Portable`]: `libm`, plain loops). That is what lets a
//! microcontroller and a laptop give the same bits:
//!
//! * [`Portable`] — the default: `libm` (or `micromath` with the `fast-math` feature) and the
//!   core's kernels as written. Any target.
//! * a firmware's backend — e.g. the Cortex-M4F's hardware square root (`vsqrt.f32`, correctly
//!   rounded like `libm::sqrtf`), overriding [`Backend::sqrt`] only.
//! * the std runtime's `microfit::host::Host` — the same kernels compiled for the running CPU's
//!   vector extensions (AVX2, AVX-512), picked at run time, and `exp`/`ln` written without
//!   branches ([`crate::kernels::exp`], bit-identical to `libm` on all 2³² inputs) so that loops
//!   over them vectorize.
//!
//! The bulk methods are the hot loops of a step: the three matrix products of a Dense layer
//! over a tile, the `exp`s of a softmax and the `ln`s of a cross-entropy over a tile, the
//! optimizer updates, the penalty sums, the finiteness checks and the zeroing of the
//! gradients. Their defaults call the
//! kernels in [`crate::kernels`] (each documents its one summation order).
//!
//! ```
//! use microfit_core::backend::{Backend, Portable};
//! // A backend with its own square root (here: the same libm one).
//! struct MySqrt;
//! impl Backend for MySqrt {
//!     fn sqrt(x: f32) -> f32 {
//!         libm::sqrtf(x)
//!     }
//! }
//! assert_eq!(MySqrt::sqrt(2.0).to_bits(), Portable::sqrt(2.0).to_bits());
//! ```

use crate::kernels;
use crate::math;

/// The math and bulk kernels of a training step (see the [module docs](self)). Implementors
/// must keep the bits of the default methods ([`Backend::powf`]: on the inputs a build checked).
pub trait Backend: Sized + 'static {
    /// True when a training epoch ([`crate::train::fit_epoch`]) should take the `Σw²` of its L2
    /// penalties from the optimizer's update loops ([`crate::regularizer::SumSqs`],
    /// [`Backend::adam_update_sq`]) instead of a pass of their own: the same bits either way,
    /// faster where the update is bound by its square roots and divisions (a vector unit).
    /// `false` by default: the training step's code stays what it was (a microcontroller's
    /// flash and stack).
    const FOLD_SUM_SQ: bool = false;

    /// `√x`, correctly rounded (IEEE-754).
    #[inline(always)]
    fn sqrt(x: f32) -> f32 {
        math::sqrt(x)
    }

    /// `x^y` with the bits of [`math::powf()`] (TensorFlow's: Adam's `β^t`).
    ///
    /// The one method whose override may cover only some inputs: a firmware whose build has
    /// checked with [`math::powf::powf_fast_covers`] that [`math::powf::powf_fast`] gives every
    /// `β^t` of its run may return that, and NaN where it has no value (never for the inputs
    /// checked; a NaN step size fails the next step's finiteness check rather than train on other
    /// bits), and so link none of `powf`'s exact evaluation.
    #[inline(always)]
    fn powf(x: f32, y: f32) -> f32 {
        math::powf(x, y)
    }

    /// `eˣ` with the bits of [`math::exp`].
    #[inline(always)]
    fn exp(x: f32) -> f32 {
        math::exp(x)
    }

    /// `ln x` with the bits of [`math::ln`].
    #[inline(always)]
    fn ln(x: f32) -> f32 {
        math::ln(x)
    }

    /// `v[i] = exp(v[i])` for every element.
    #[inline(always)]
    fn exp_slice(v: &mut [f32]) {
        for x in v {
            *x = Self::exp(*x);
        }
    }

    /// `v[i] = ln(v[i])` for every element.
    #[inline(always)]
    fn ln_slice(v: &mut [f32]) {
        for x in v {
            *x = Self::ln(*x);
        }
    }

    /// [`kernels::gemm::matmul`]: `c = a·b (+ bias)` over `rows` rows.
    #[inline(always)]
    fn matmul(m: kernels::gemm::MatMul<'_>) {
        kernels::gemm::matmul(m);
    }

    /// [`kernels::gemm::matmul_bt`]: `c = a·bᵀ` (a Dense layer's input gradient).
    #[inline(always)]
    fn matmul_bt(m: kernels::gemm::MatMulBt<'_>) {
        kernels::gemm::matmul_bt(m);
    }

    /// [`kernels::gemm::matmul_at_acc`]: `c += aᵀ·b` (a Dense layer's weight gradient).
    #[inline(always)]
    fn matmul_at_acc(m: kernels::gemm::MatMulAtAcc<'_>) {
        kernels::gemm::matmul_at_acc(m);
    }

    /// [`kernels::reduce::sum_sq`]: `Σ v²` in the core's one order.
    #[inline(always)]
    fn sum_sq(v: &[f32]) -> f32 {
        kernels::reduce::sum_sq(v)
    }

    /// [`kernels::reduce::sum_abs`]: `Σ |v|` in the core's one order.
    #[inline(always)]
    fn sum_abs(v: &[f32]) -> f32 {
        kernels::reduce::sum_abs(v)
    }

    /// [`crate::regularizer::l2_add_grad`]: `g += (l2 · (2w)) · scale`, the gradient of an L2
    /// penalty.
    #[inline(always)]
    fn l2_grad(w: &[f32], g: &mut [f32], l2: f32, scale: f32) {
        crate::regularizer::l2_add_grad(w, g, l2, scale);
    }

    /// An L2 penalty and its gradient in one pass over `w`: `l2 · sum_sq(w)` and, for the
    /// first `g.len()` values (all of them in a training step, none for the penalty alone),
    /// `g += (l2 · (2w)) · 1` — the bits of [`crate::regularizer::L2`]'s
    /// [`penalty_and_grad`](crate::regularizer::Regularizer::penalty_and_grad) with `scale`
    /// 1, which a layer uses for any regularizer with a
    /// [`sum_sq_factor`](crate::regularizer::Regularizer::sum_sq_factor).
    #[inline(always)]
    fn l2_pass(w: &[f32], g: &mut [f32], l2: f32) -> f32 {
        use crate::regularizer::Regularizer;
        crate::regularizer::L2 { l2 }.penalty_and_grad(w, 0, g, 1.0)
    }

    /// True when no value is NaN or ±∞ ([`math::all_finite_inline`]).
    #[inline(always)]
    fn all_finite(v: &[f32]) -> bool {
        math::all_finite_inline(v)
    }

    /// [`Backend::all_finite`] of a batch's inputs or dense targets (the training step's check
    /// before any work; the gradients' check is `all_finite`): a backend whose data are
    /// constants — a firmware's dataset in flash, checked when it was built — may answer
    /// without a scan. The default scans.
    #[inline(always)]
    fn data_finite(v: &[f32]) -> bool {
        Self::all_finite(v)
    }

    /// `v[i] = 0` for every element (a training step's gradients, before its first sample).
    #[inline(always)]
    fn zero(v: &mut [f32]) {
        v.fill(0.0);
    }

    /// One Adam update of a tensor ([`crate::optim::adam::update`]).
    #[inline(always)]
    fn adam_update(u: crate::optim::adam::Update<'_>) {
        crate::optim::adam::update::<Self>(u);
    }

    /// [`Backend::adam_update`], returning `Σw²` of the updated weights with the bits of
    /// [`kernels::reduce::sum_sq`] ([`crate::optim::adam::update_sq`]).
    #[inline(always)]
    fn adam_update_sq(u: crate::optim::adam::Update<'_>) -> f32 {
        crate::optim::adam::update_sq::<Self>(u)
    }

    /// [`Backend::momentum_update`], returning `Σw²` of the updated weights
    /// ([`crate::optim::sgd::momentum_update_sq`]).
    #[inline(always)]
    fn momentum_update_sq(
        w: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        lr: f32,
        mu: f32,
        nesterov: bool,
    ) -> f32 {
        crate::optim::sgd::momentum_update_sq(w, g, m, lr, mu, nesterov)
    }

    /// [`Backend::sgd_update`], returning `Σw²` of the updated weights
    /// ([`crate::optim::sgd::sgd_update_sq`]).
    #[inline(always)]
    fn sgd_update_sq(w: &mut [f32], g: &[f32], lr: f32) -> f32 {
        crate::optim::sgd::sgd_update_sq(w, g, lr)
    }

    /// One SGD-with-momentum update of a tensor ([`crate::optim::sgd::momentum_update`]).
    #[inline(always)]
    fn momentum_update(w: &mut [f32], g: &[f32], m: &mut [f32], lr: f32, mu: f32, nesterov: bool) {
        crate::optim::sgd::momentum_update(w, g, m, lr, mu, nesterov);
    }

    /// One plain SGD update of a tensor ([`crate::optim::sgd::sgd_update`]).
    #[inline(always)]
    fn sgd_update(w: &mut [f32], g: &[f32], lr: f32) {
        crate::optim::sgd::sgd_update(w, g, lr);
    }
}

/// The core's portable backend: `libm` (or `micromath` with `fast-math`) and the kernels as
/// written, on any target. The default of [`crate::Trainer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Portable;

impl Backend for Portable {}
