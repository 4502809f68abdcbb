//! Adam and AdamW exactly as Keras computes them.
//!
//! ```text
//! t     = iterations + 1
//! alpha = lr · sqrt(1 - β2^t) / (1 - β1^t)        (β^t = powf(β, t) in f32)
//! m    += (g - m) · (1 - β1)                       (1 - β: see keras_one_minus)
//! v    += (g² - v) · (1 - β2)
//! w    -= (m · alpha) / (sqrt(v) + ε)              (ε = 1e-7, outside the sqrt, uncorrected v)
//! ```
//! This is not PyTorch's `m̂ / (sqrt(v̂) + ε)`. AdamW is the same update after Keras'
//! decoupled weight decay `w -= w·wd·lr` (default `wd = 0.004`).

use super::schedule::{LearningRate, Schedule};
use super::{Common, Optimizer};
use crate::backend::Backend;
use crate::error::{Error, check_non_negative, check_unit_interval};
use crate::params::{Params, ZeroParams};
use crate::regularizer::SumSqs;

/// Adam hyperparameters (Keras defaults in [`AdamConfig::default`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdamConfig {
    /// Learning rate or schedule (default 0.001).
    pub learning_rate: Schedule,
    /// β1 in [0, 1) (default 0.9).
    pub beta_1: f32,
    /// β2 in [0, 1) (default 0.999).
    pub beta_2: f32,
    /// ε ≥ 0 (default 1e-7).
    pub epsilon: f32,
    /// Clipping and weight decay.
    pub common: Common,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            learning_rate: Schedule::Constant(0.001),
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            common: Common::default(),
        }
    }
}

impl AdamConfig {
    /// Checks every value.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a bad rate, β outside `[0, 1)`, negative ε, ...
    pub fn validate(&self) -> Result<(), Error> {
        self.learning_rate.validate()?;
        check_unit_interval("beta_1", self.beta_1)?;
        check_unit_interval("beta_2", self.beta_2)?;
        check_non_negative("epsilon", self.epsilon)?;
        self.common.validate()
    }
}

/// Adam with its two slots `m` and `v` stored as parameter sets of type `P`.
///
/// ```
/// use microfit_core::backend::Portable;
/// use microfit_core::optim::{Adam, Optimizer};
/// use microfit_core::layer::dense::DenseParams;
/// use microfit_core::params::ZeroParams;
/// let mut w = DenseParams::<1, 1>::zeroed();
/// let mut g = DenseParams::<1, 1>::zeroed();
/// g.kernel[0][0] = 0.5;
/// let mut opt = Adam::new(0.01, &w)?;
/// opt.step::<Portable>(&mut w, &mut g);
/// // First step: m = 0.05, v = 0.00025, alpha = 0.01·sqrt(0.001)/0.1 → w ≈ -0.01.
/// assert!((w.kernel[0][0] + 0.01).abs() < 1e-6);
/// # Ok::<(), microfit_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Adam<P> {
    /// Hyperparameters.
    pub config: AdamConfig,
    state: AdamState<P>,
    one_minus: OneMinusCache,
}

/// What Adam changes while it trains — the slots `m` and `v` and the step count `t` — without
/// its hyperparameters: `2 · PARAMS · 4 + 4` bytes. [`Adam`] is this plus its [`AdamConfig`];
/// a firmware whose hyperparameters are constants keeps only this in RAM and steps it with
/// [`AdamState::step`] (the very update of [`Adam`]).
///
/// ```
/// use microfit_core::backend::Portable;
/// use microfit_core::optim::adam::{AdamConfig, AdamState, keras_one_minus};
/// use microfit_core::layer::dense::DenseParams;
/// use microfit_core::params::ZeroParams;
/// let config = AdamConfig::default();
/// let one_minus = (keras_one_minus(config.beta_1), keras_one_minus(config.beta_2));
/// let mut state = AdamState::<DenseParams<1, 1>>::zeroed();
/// let (mut w, mut g) = (DenseParams::<1, 1>::zeroed(), DenseParams::<1, 1>::zeroed());
/// g.kernel[0][0] = 0.5;
/// state.step::<Portable>(&config, one_minus, &mut w, &mut g);
/// assert_eq!(state.iterations(), 1);
/// // alpha = 0.001·sqrt(0.001)/0.1, m = 0.05, v = 0.00025: w ≈ -0.001.
/// assert!((w.kernel[0][0] + 0.001).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AdamState<P> {
    m: P,
    v: P,
    t: u32,
}

impl<P: ZeroParams> AdamState<P> {
    /// Zero slots, step 0.
    pub fn zeroed() -> Self {
        AdamState {
            m: P::zeroed(),
            v: P::zeroed(),
            t: 0,
        }
    }
}

impl<P: Params> AdamState<P> {
    /// Zero slots shaped like `like`, step 0.
    pub fn like(like: &P) -> Self {
        let mut m = like.clone();
        m.fill(0.0);
        let v = m.clone();
        AdamState { m, v, t: 0 }
    }

    /// First moments.
    pub fn m(&self) -> &P {
        &self.m
    }

    /// Second moments.
    pub fn v(&self) -> &P {
        &self.v
    }

    /// Steps taken.
    pub fn iterations(&self) -> u32 {
        self.t
    }

    /// Back to zero slots and step 0.
    pub fn reset(&mut self) {
        self.m.fill(0.0);
        self.v.fill(0.0);
        self.t = 0;
    }

    /// `m`, mutable (restoring a checkpoint).
    pub fn m_mut(&mut self) -> &mut P {
        &mut self.m
    }

    /// `v`, mutable (restoring a checkpoint).
    pub fn v_mut(&mut self) -> &mut P {
        &mut self.v
    }

    /// Sets the step count (restoring a checkpoint).
    pub fn set_iterations(&mut self, t: u32) {
        self.t = t;
    }

    /// One Keras Adam update of `w` from `g` with the hyperparameters `config` and Keras'
    /// `(1 - β1, 1 - β2)` (see [`keras_one_minus`]: a firmware evaluates them at compile time),
    /// its loops run by the backend `B` ([`Backend::adam_update`]; `B::sqrt` is the square
    /// root). `Adam`'s [`Optimizer::step`] is this with its own configuration.
    pub fn step<B: Backend>(
        &mut self,
        config: &AdamConfig,
        one_minus: (f32, f32),
        w: &mut P,
        g: &mut P,
    ) {
        self.step_with::<B>(config, one_minus, w, g, None);
    }

    /// [`AdamState::step`], computing `Σw²` of the updated tensors that `sq` wants in the
    /// update's loop ([`Backend::adam_update_sq`]; see [`Optimizer::step_sq`]).
    pub fn step_sq<B: Backend>(
        &mut self,
        config: &AdamConfig,
        one_minus: (f32, f32),
        w: &mut P,
        g: &mut P,
        sq: &mut SumSqs,
    ) {
        self.step_with::<B>(config, one_minus, w, g, Some(sq));
    }

    #[inline(always)]
    fn step_with<B: Backend>(
        &mut self,
        config: &AdamConfig,
        (one_minus_b1, one_minus_b2): (f32, f32),
        w: &mut P,
        g: &mut P,
        mut sq: Option<&mut SumSqs>,
    ) {
        let c = config;
        let lr = c.learning_rate.at(self.t);
        if let Some(sq) = sq.as_deref_mut() {
            sq.invalidate();
        }
        c.common.before_update(w, g, lr);
        let t = self.t.wrapping_add(1);
        let alpha = adam_alpha::<B>(lr, c.beta_1, c.beta_2, t);
        for i in 0..w.tensor_count() {
            let u = Update {
                w: w.tensor_mut(i),
                g: g.tensor(i),
                m: self.m.tensor_mut(i),
                v: self.v.tensor_mut(i),
                alpha,
                one_minus_b1,
                one_minus_b2,
                epsilon: c.epsilon,
            };
            match sq.as_deref_mut() {
                Some(sq) if sq.wants(i) => sq.set(i, B::adam_update_sq(u)),
                _ => B::adam_update(u),
            }
        }
        self.t = t;
    }
}

/// `(1 - β1, 1 - β2)` ([`keras_one_minus`], a loop in double precision: software floating point
/// on a microcontroller) computed once for the betas they belong to, not on every step; recomputed
/// when `config` changes. A cache of a function of `config`, so it takes no part in `==`. 16 bytes:
/// the betas' bits and the two values; "not computed yet" is the key of two NaN betas
/// (`u32::MAX` bits) with NaN values, which is also what `keras_one_minus` gives for them.
#[derive(Debug, Clone, Copy)]
struct OneMinusCache {
    key: (u32, u32),
    value: (f32, f32),
}

impl Default for OneMinusCache {
    fn default() -> Self {
        OneMinusCache {
            key: (u32::MAX, u32::MAX),
            value: (f32::NAN, f32::NAN),
        }
    }
}

impl PartialEq for OneMinusCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl OneMinusCache {
    #[inline]
    fn get(&mut self, beta_1: f32, beta_2: f32) -> (f32, f32) {
        let key = (beta_1.to_bits(), beta_2.to_bits());
        if key != self.key {
            self.key = key;
            self.value = (keras_one_minus(beta_1), keras_one_minus(beta_2));
        }
        self.value
    }
}

impl<P: Params> Adam<P> {
    /// `Adam(learning_rate)` with Keras' other defaults; `like` gives the parameter structure.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a bad learning rate.
    pub fn new(learning_rate: impl Into<Schedule>, like: &P) -> Result<Self, Error> {
        Self::with_config(
            AdamConfig {
                learning_rate: learning_rate.into(),
                ..AdamConfig::default()
            },
            like,
        )
    }

    /// `AdamW(learning_rate, weight_decay)` (Keras' default `weight_decay` is 0.004).
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a bad value.
    pub fn adamw(
        learning_rate: impl Into<Schedule>,
        weight_decay: f32,
        like: &P,
    ) -> Result<Self, Error> {
        let mut c = AdamConfig {
            learning_rate: learning_rate.into(),
            ..AdamConfig::default()
        };
        c.common.weight_decay = Some(weight_decay);
        Self::with_config(c, like)
    }

    /// From a full configuration.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a bad value.
    pub fn with_config(config: AdamConfig, like: &P) -> Result<Self, Error> {
        config.validate()?;
        Ok(Adam {
            config,
            state: AdamState::like(like),
            one_minus: OneMinusCache::default(),
        })
    }

    /// First-moment slot `m`.
    pub fn m(&self) -> &P {
        &self.state.m
    }
    /// Second-moment slot `v`.
    pub fn v(&self) -> &P {
        &self.state.v
    }
    /// `m`, mutable.
    pub fn m_mut(&mut self) -> &mut P {
        &mut self.state.m
    }
    /// `v`, mutable.
    pub fn v_mut(&mut self) -> &mut P {
        &mut self.state.v
    }
    /// Sets the iteration counter.
    pub fn set_iterations(&mut self, t: u32) {
        self.state.t = t;
    }
}

impl<P: ZeroParams> Adam<P> {
    /// [`Adam::with_config`] for fixed-size parameters, without the validation: for a
    /// configuration already checked ([`AdamConfig::validate`]), e.g. a constant in firmware.
    /// Infallible and built from zeros, so the optimizer is written straight into the caller's
    /// destination (no `Result` and no slot copy passing through the stack). An invalid
    /// configuration gives NaNs or no progress, never a panic.
    ///
    /// ```
    /// use microfit_core::optim::{Adam, AdamConfig};
    /// use microfit_core::layer::dense::DenseParams;
    /// use microfit_core::params::ZeroParams;
    /// let config = AdamConfig::default();
    /// config.validate()?;
    /// let like = DenseParams::<2, 2>::zeroed();
    /// assert_eq!(Adam::new_unchecked(config), Adam::with_config(config, &like)?);
    /// # Ok::<(), microfit_core::Error>(())
    /// ```
    pub fn new_unchecked(config: AdamConfig) -> Self {
        Adam {
            config,
            state: AdamState::zeroed(),
            one_minus: OneMinusCache::default(),
        }
    }
}

/// Keras' step size at step `t` (1-based): `lr · sqrt(1 - β2^t) / (1 - β1^t)`, with `β^t` as
/// Keras computes it in `f32` ([`Backend::powf`]) and `B::sqrt`.
///
/// ```
/// use microfit_core::backend::Portable;
/// use microfit_core::optim::adam::adam_alpha;
/// let a = adam_alpha::<Portable>(0.01, 0.9, 0.999, 1);
/// assert!((a - 0.01 * (1.0f32 - 0.999).sqrt() / (1.0 - 0.9)).abs() < 1e-6);
/// ```
#[inline]
pub fn adam_alpha<B: Backend>(lr: f32, beta_1: f32, beta_2: f32, t: u32) -> f32 {
    let tf = t as f32;
    let b1p = B::powf(beta_1, tf);
    let b2p = B::powf(beta_2, tf);
    lr * B::sqrt(1.0 - b2p) / (1.0 - b1p)
}

/// `1 - beta` exactly as Keras' `update_step` computes it: `1 - self.beta_1` is evaluated in
/// double precision on the Python float that was given, then cast to float32.
///
/// The f32 `beta` reads back to that float as its shortest decimal (`0.9`, `0.999`), so the
/// decimal is recovered (the fewest fractional digits `k <= 15` whose nearest f64 casts back to
/// `beta`), `1 - d` is taken in f64 and rounded once to f32. This matters: `1.0f32 - 0.9f32` is
/// 3 ulps above Keras' `0.1f32`, and `1.0f32 - 0.999f32` is 1.3e-5 relative away from `0.001f32`,
/// so `m` and `v` would not match Keras bit for bit. Pure integer-exact f64 arithmetic: the same
/// bits on every target. Outside `(0, 1)` (or with no short decimal) it is `1.0 - beta` in f32.
///
/// ```
/// use microfit_core::optim::adam::keras_one_minus;
/// assert_eq!(keras_one_minus(0.9), 0.1);
/// assert_eq!(keras_one_minus(0.999), 0.001);
/// assert_ne!(1.0f32 - 0.9f32, 0.1); // the f32 subtraction Keras does not do
/// assert_eq!(keras_one_minus(0.0), 1.0);
/// ```
///
/// A `const fn`: a firmware with compile-time betas evaluates it at compile time (see
/// [`AdamState::step`]) and links no double-precision code.
pub const fn keras_one_minus(beta: f32) -> f32 {
    let b = beta as f64;
    if b > 0.0 && b < 1.0 {
        let mut scale = 1.0f64;
        let mut k = 0;
        while k < 15 {
            // 10^k and n < 10^15 are exact doubles, so n / 10^k is the f64 nearest the decimal.
            scale *= 10.0;
            let d = round_positive(b * scale) / scale;
            if d as f32 == beta {
                return (1.0 - d) as f32;
            }
            k += 1;
        }
    }
    1.0 - beta
}

/// `libm::round` (half away from zero) for `0 <= x < 2^63`, as a `const fn`: `x - trunc(x)` is
/// exact (it is the fraction bits of `x`), so the comparison with 0.5 decides exactly.
const fn round_positive(x: f64) -> f64 {
    let t = x as u64 as f64;
    if x - t >= 0.5 { t + 1.0 } else { t }
}

/// The arguments of one Adam update of a tensor ([`update`]).
#[derive(Debug)]
pub struct Update<'a> {
    /// The weights.
    pub w: &'a mut [f32],
    /// Their gradient.
    pub g: &'a [f32],
    /// The first-moment slot.
    pub m: &'a mut [f32],
    /// The second-moment slot.
    pub v: &'a mut [f32],
    /// The step size ([`adam_alpha`]).
    pub alpha: f32,
    /// `1 - β1` (see [`keras_one_minus`]).
    pub one_minus_b1: f32,
    /// `1 - β2`.
    pub one_minus_b2: f32,
    /// `ε`.
    pub epsilon: f32,
}

/// One Adam update of a tensor, element by element in Keras' order:
/// `m += (g - m)·(1 - β1)`, `v += (g² - v)·(1 - β2)`, `w -= (m·α) / (B::sqrt(v) + ε)`.
///
/// ```
/// use microfit_core::backend::Portable;
/// use microfit_core::optim::adam::{update, Update};
/// let (mut w, mut m, mut v) = ([1.0f32], [0.0f32], [0.0f32]);
/// update::<Portable>(Update { w: &mut w, g: &[0.5], m: &mut m, v: &mut v, alpha: 0.1, one_minus_b1: 0.1, one_minus_b2: 0.001, epsilon: 1e-7 });
/// assert_eq!(m, [0.05]);
/// assert_eq!(w[0], 1.0 - (0.05f32 * 0.1) / ((0.25f32 * 0.001).sqrt() + 1e-7));
/// ```
#[inline(always)]
pub fn update<B: Backend>(u: Update<'_>) {
    let Update {
        w,
        g,
        m,
        v,
        alpha,
        one_minus_b1,
        one_minus_b2,
        epsilon,
    } = u;
    for (((wi, &gi), mi), vi) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let m1 = *mi + (gi - *mi) * one_minus_b1;
        let v1 = *vi + (gi * gi - *vi) * one_minus_b2;
        *mi = m1;
        *vi = v1;
        *wi -= (m1 * alpha) / (B::sqrt(v1) + epsilon);
    }
}

/// [`update`], returning `Σw²` of the updated weights: each new `w` squared into
/// [`crate::kernels::reduce::sum_sq`]'s eight partial sums in the same order (element `i` into
/// sum `i mod 8`, combined the same way), so the result has `sum_sq(w)`'s bits after the update.
///
/// ```
/// use microfit_core::backend::Portable;
/// use microfit_core::kernels::reduce::sum_sq;
/// use microfit_core::optim::adam::{update, update_sq, Update};
/// let g: [f32; 11] = core::array::from_fn(|i| i as f32 * 0.3 - 1.0);
/// let (mut w1, mut m1, mut v1) = ([0.5f32; 11], [0.1f32; 11], [0.2f32; 11]);
/// let (mut w2, mut m2, mut v2) = (w1, m1, v1);
/// update::<Portable>(Update { w: &mut w1, g: &g, m: &mut m1, v: &mut v1, alpha: 0.1, one_minus_b1: 0.1, one_minus_b2: 0.001, epsilon: 1e-7 });
/// let s = update_sq::<Portable>(Update { w: &mut w2, g: &g, m: &mut m2, v: &mut v2, alpha: 0.1, one_minus_b1: 0.1, one_minus_b2: 0.001, epsilon: 1e-7 });
/// assert_eq!((w1, m1, v1), (w2, m2, v2));
/// assert_eq!(s.to_bits(), sum_sq(&w1).to_bits());
/// ```
#[inline(always)]
pub fn update_sq<B: Backend>(u: Update<'_>) -> f32 {
    // The update, then the squares of the whole tensor (`sum_sq`, in element order). Not
    // block by block (each block's squares right after its update, as it was): reading back,
    // in pieces, the vectors just stored waits for the stores on some cores (AMD Zen 4, 2,048
    // weights: 1,080 ns block by block, 800 ns in two passes; the update alone 590 ns).
    update::<B>(Update { w: &mut *u.w, ..u });
    crate::kernels::reduce::sum_sq(u.w)
}

impl<P: Params> Adam<P> {
    /// The slots and step count.
    pub fn state(&self) -> &AdamState<P> {
        &self.state
    }
}

impl<P: Params> Optimizer<P> for Adam<P> {
    const SLOTS: usize = 2;
    fn step<B: Backend>(&mut self, w: &mut P, g: &mut P) {
        let one_minus = self.one_minus.get(self.config.beta_1, self.config.beta_2);
        let config = self.config;
        self.state.step::<B>(&config, one_minus, w, g);
    }
    fn step_sq<B: Backend>(&mut self, w: &mut P, g: &mut P, sq: &mut SumSqs) {
        let one_minus = self.one_minus.get(self.config.beta_1, self.config.beta_2);
        let config = self.config;
        self.state.step_sq::<B>(&config, one_minus, w, g, sq);
    }
    fn iterations(&self) -> u32 {
        self.state.t
    }
    fn reset(&mut self) {
        self.state.reset();
    }
}
