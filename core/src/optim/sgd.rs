//! SGD, with and without momentum (Keras `SGD`).

use super::schedule::{LearningRate, Schedule};
use super::{Common, Optimizer};
use crate::backend::Backend;
use crate::error::{Error, check_positive};
use crate::params::Params;
use crate::regularizer::SumSqs;

/// Plain SGD: `w -= lr·g`. No state beyond the iteration counter.
///
/// ```
/// use microfit_core::backend::Portable;
/// use microfit_core::optim::{Optimizer, Sgd};
/// use microfit_core::layer::dense::DenseParams;
/// use microfit_core::params::{Params, ZeroParams};
/// let mut w = DenseParams::<1, 1>::zeroed();
/// let mut g = DenseParams::<1, 1>::zeroed();
/// g.kernel[0][0] = 2.0;
/// let mut opt = Sgd::new(0.1)?;
/// opt.step::<Portable>(&mut w, &mut g);
/// assert_eq!(w.kernel[0][0], -0.2);
/// # Ok::<(), microfit_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Sgd {
    /// Learning rate (schedule).
    pub learning_rate: Schedule,
    /// Clipping and weight decay.
    pub common: Common,
    t: u32,
}

impl Sgd {
    /// `SGD(learning_rate)`.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a non-finite or non-positive rate.
    pub fn new(learning_rate: impl Into<Schedule>) -> Result<Self, Error> {
        Self::with(learning_rate.into(), Common::default())
    }

    /// With schedule and common settings.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for an invalid value.
    pub fn with(learning_rate: Schedule, common: Common) -> Result<Self, Error> {
        learning_rate.validate()?;
        common.validate()?;
        Ok(Sgd {
            learning_rate,
            common,
            t: 0,
        })
    }

    /// Sets the iteration counter.
    pub fn set_iterations(&mut self, t: u32) {
        self.t = t;
    }
}

/// `w -= lr·g` on one tensor.
#[inline]
pub fn sgd_update(w: &mut [f32], g: &[f32], lr: f32) {
    for (wi, &gi) in w.iter_mut().zip(g) {
        *wi -= gi * lr;
    }
}

/// Keras momentum update on one tensor: `m = m·μ - g·lr`; `w += m·μ - g·lr` (Nesterov) or `w += m`.
#[inline]
pub fn momentum_update(w: &mut [f32], g: &[f32], m: &mut [f32], lr: f32, mu: f32, nesterov: bool) {
    if nesterov {
        for ((wi, &gi), mi) in w.iter_mut().zip(g).zip(m) {
            *mi = *mi * mu - gi * lr;
            *wi += *mi * mu - gi * lr;
        }
    } else {
        for ((wi, &gi), mi) in w.iter_mut().zip(g).zip(m) {
            *mi = *mi * mu - gi * lr;
            *wi += *mi;
        }
    }
}

/// [`sgd_update`], returning `Σw²` of the updated weights with
/// [`crate::kernels::reduce::sum_sq`]'s bits (its eight partial sums in its order).
///
/// ```
/// use microfit_core::kernels::reduce::sum_sq;
/// use microfit_core::optim::sgd::{sgd_update, sgd_update_sq};
/// let g: [f32; 11] = core::array::from_fn(|i| i as f32 - 4.0);
/// let (mut a, mut b) = ([0.5f32; 11], [0.5f32; 11]);
/// sgd_update(&mut a, &g, 0.1);
/// let s = sgd_update_sq(&mut b, &g, 0.1);
/// assert_eq!((a, s.to_bits()), (b, sum_sq(&a).to_bits()));
/// ```
#[inline]
pub fn sgd_update_sq(w: &mut [f32], g: &[f32], lr: f32) -> f32 {
    use crate::kernels::reduce::{LANES, SQ_BLOCK, add_sq, combine};
    let mut s = [0.0f32; LANES];
    if g.len() != w.len() {
        sgd_update(w, g, lr);
        add_sq(&mut s, w);
        return combine(&s);
    }
    // Block by block, as `adam::update_sq`.
    let (wc, wt) = w.as_chunks_mut::<SQ_BLOCK>();
    let (gc, gt) = g.as_chunks::<SQ_BLOCK>();
    for (w, g) in wc.iter_mut().zip(gc) {
        sgd_update(w, g, lr);
        add_sq(&mut s, w);
    }
    sgd_update(wt, gt, lr);
    add_sq(&mut s, wt);
    combine(&s)
}

/// [`momentum_update`], returning `Σw²` of the updated weights with
/// [`crate::kernels::reduce::sum_sq`]'s bits.
///
/// ```
/// use microfit_core::kernels::reduce::sum_sq;
/// use microfit_core::optim::sgd::{momentum_update, momentum_update_sq};
/// let g: [f32; 11] = core::array::from_fn(|i| i as f32 - 4.0);
/// for nesterov in [false, true] {
///     let (mut a, mut ma, mut b, mut mb) = ([0.5f32; 11], [0.2f32; 11], [0.5f32; 11], [0.2f32; 11]);
///     momentum_update(&mut a, &g, &mut ma, 0.1, 0.9, nesterov);
///     let s = momentum_update_sq(&mut b, &g, &mut mb, 0.1, 0.9, nesterov);
///     assert_eq!((a, ma, s.to_bits()), (b, mb, sum_sq(&a).to_bits()));
/// }
/// ```
#[inline]
pub fn momentum_update_sq(
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    lr: f32,
    mu: f32,
    nesterov: bool,
) -> f32 {
    use crate::kernels::reduce::{LANES, SQ_BLOCK, add_sq, combine};
    let mut s = [0.0f32; LANES];
    if g.len() != w.len() || m.len() != w.len() {
        momentum_update(w, g, m, lr, mu, nesterov);
        add_sq(&mut s, w);
        return combine(&s);
    }
    // Block by block, as `adam::update_sq`.
    let (wc, wt) = w.as_chunks_mut::<SQ_BLOCK>();
    let (gc, gt) = g.as_chunks::<SQ_BLOCK>();
    let (mc, mt) = m.as_chunks_mut::<SQ_BLOCK>();
    for ((w, g), m) in wc.iter_mut().zip(gc).zip(mc) {
        momentum_update(w, g, m, lr, mu, nesterov);
        add_sq(&mut s, w);
    }
    momentum_update(wt, gt, mt, lr, mu, nesterov);
    add_sq(&mut s, wt);
    combine(&s)
}

impl<P: Params> Optimizer<P> for Sgd {
    const SLOTS: usize = 0;
    fn step<B: Backend>(&mut self, w: &mut P, g: &mut P) {
        let lr = self.learning_rate.at(self.t);
        self.common.before_update(w, g, lr);
        for i in 0..w.tensor_count() {
            B::sgd_update(w.tensor_mut(i), g.tensor(i), lr);
        }
        self.t = self.t.wrapping_add(1);
    }
    fn step_sq<B: Backend>(&mut self, w: &mut P, g: &mut P, sq: &mut SumSqs) {
        sq.invalidate();
        let lr = self.learning_rate.at(self.t);
        self.common.before_update(w, g, lr);
        for i in 0..w.tensor_count() {
            if sq.wants(i) {
                sq.set(i, B::sgd_update_sq(w.tensor_mut(i), g.tensor(i), lr));
            } else {
                B::sgd_update(w.tensor_mut(i), g.tensor(i), lr);
            }
        }
        self.t = self.t.wrapping_add(1);
    }
    fn iterations(&self) -> u32 {
        self.t
    }
    fn reset(&mut self) {
        self.t = 0;
    }
}

/// SGD with momentum μ (Keras sign convention, optional Nesterov); one slot per parameter.
///
/// ```
/// use microfit_core::backend::Portable;
/// use microfit_core::optim::{Momentum, Optimizer};
/// use microfit_core::layer::dense::DenseParams;
/// use microfit_core::params::{Params, ZeroParams};
/// let mut w = DenseParams::<1, 1>::zeroed();
/// let mut g = DenseParams::<1, 1>::zeroed();
/// let mut opt = Momentum::new(0.1, 0.9, false, &w)?;
/// g.kernel[0][0] = 1.0;
/// opt.step::<Portable>(&mut w, &mut g.clone());
/// opt.step::<Portable>(&mut w, &mut g);
/// // m1 = -0.1, w1 = -0.1; m2 = -0.09 - 0.1, w2 = -0.1 + m2
/// assert_eq!(w.kernel[0][0], -0.1f32 + (-0.1f32 * 0.9 - 0.1));
/// # Ok::<(), microfit_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Momentum<P> {
    /// Learning rate (schedule).
    pub learning_rate: Schedule,
    /// Momentum μ in [0, 1].
    pub momentum: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Clipping and weight decay.
    pub common: Common,
    m: P,
    t: u32,
}

impl<P: Params> Momentum<P> {
    /// `SGD(learning_rate, momentum, nesterov)`; `like` gives the parameter structure.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a bad rate or a momentum outside `[0, 1]`.
    pub fn new(
        learning_rate: impl Into<Schedule>,
        momentum: f32,
        nesterov: bool,
        like: &P,
    ) -> Result<Self, Error> {
        Self::with(
            learning_rate.into(),
            momentum,
            nesterov,
            Common::default(),
            like,
        )
    }

    /// With schedule and common settings.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for an invalid value.
    pub fn with(
        learning_rate: Schedule,
        momentum: f32,
        nesterov: bool,
        common: Common,
        like: &P,
    ) -> Result<Self, Error> {
        learning_rate.validate()?;
        common.validate()?;
        if !(0.0..=1.0).contains(&momentum) {
            return Err(Error::InvalidHyperparameter {
                name: "momentum",
                reason: crate::error::Reason::UnitInterval,
            });
        }
        let _ = check_positive;
        let mut m = like.clone();
        m.fill(0.0);
        Ok(Momentum {
            learning_rate,
            momentum,
            nesterov,
            common,
            m,
            t: 0,
        })
    }

    /// The momentum slot (Keras `momentum` variables).
    pub fn velocity(&self) -> &P {
        &self.m
    }

    /// The momentum slot, mutable.
    pub fn velocity_mut(&mut self) -> &mut P {
        &mut self.m
    }

    /// Sets the iteration counter.
    pub fn set_iterations(&mut self, t: u32) {
        self.t = t;
    }
}

impl<P: Params> Optimizer<P> for Momentum<P> {
    const SLOTS: usize = 1;
    fn step<B: Backend>(&mut self, w: &mut P, g: &mut P) {
        let lr = self.learning_rate.at(self.t);
        self.common.before_update(w, g, lr);
        for i in 0..w.tensor_count() {
            B::momentum_update(
                w.tensor_mut(i),
                g.tensor(i),
                self.m.tensor_mut(i),
                lr,
                self.momentum,
                self.nesterov,
            );
        }
        self.t = self.t.wrapping_add(1);
    }
    fn step_sq<B: Backend>(&mut self, w: &mut P, g: &mut P, sq: &mut SumSqs) {
        sq.invalidate();
        let lr = self.learning_rate.at(self.t);
        self.common.before_update(w, g, lr);
        for i in 0..w.tensor_count() {
            let (wi, gi, mi) = (w.tensor_mut(i), g.tensor(i), self.m.tensor_mut(i));
            let (mu, nesterov) = (self.momentum, self.nesterov);
            if sq.wants(i) {
                sq.set(i, B::momentum_update_sq(wi, gi, mi, lr, mu, nesterov));
            } else {
                B::momentum_update(wi, gi, mi, lr, mu, nesterov);
            }
        }
        self.t = self.t.wrapping_add(1);
    }
    fn iterations(&self) -> u32 {
        self.t
    }
    fn reset(&mut self) {
        self.m.fill(0.0);
        self.t = 0;
    }
}
