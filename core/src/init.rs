//! Weight initializers with Keras' fans, driven by the seeded [`Rng`].
//!
//! | Keras | here | distribution |
//! |---|---|---|
//! | `GlorotUniform` (default kernel) | [`Initializer::GlorotUniform`] | `U(-l, l)`, `l = sqrt(6 / (fan_in + fan_out))` |
//! | `GlorotNormal` | [`Initializer::GlorotNormal`] | truncated normal, `σ = sqrt(2 / (fan_in + fan_out)) / 0.8796…` |
//! | `HeUniform` | [`Initializer::HeUniform`] | `U(-l, l)`, `l = sqrt(6 / fan_in)` |
//! | `HeNormal` | [`Initializer::HeNormal`] | truncated normal, `σ = sqrt(2 / fan_in) / 0.8796…` |
//! | `Zeros` (default bias), `Ones`, `Constant(v)` | same names | constant |
//!
//! Fans follow Keras' `compute_fans`: rank 2 `(in, out)` → `(in, out)`; rank > 2 →
//! receptive field `rf = prod(shape[..-2])`, `(shape[-2]·rf, shape[-1]·rf)`; rank 1 → `(n, n)`.

use crate::rng::Rng;

/// `(fan_in, fan_out)` of a kernel shape, as Keras computes them.
///
/// ```
/// use microfit_core::init::fans;
/// assert_eq!(fans(&[4, 3]), (4, 3));          // Dense
/// assert_eq!(fans(&[3, 3, 2, 8]), (18, 72)); // Conv2D (kh, kw, cin, cout)
/// assert_eq!(fans(&[5]), (5, 5));
/// ```
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape.len() {
        0 => (1, 1),
        1 => (shape[0], shape[0]),
        2 => (shape[0], shape[1]),
        n => {
            let rf: usize = shape[..n - 2].iter().product();
            (shape[n - 2] * rf, shape[n - 1] * rf)
        }
    }
}

/// A weight initializer (Keras names).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Initializer {
    /// Glorot/Xavier uniform (Keras' default kernel initializer).
    GlorotUniform,
    /// Glorot/Xavier truncated normal.
    GlorotNormal,
    /// He uniform.
    HeUniform,
    /// He truncated normal.
    HeNormal,
    /// All zeros (Keras' default bias initializer).
    Zeros,
    /// All ones.
    Ones,
    /// A constant value.
    Constant(f32),
}

/// `1 / 0.87962566103423978`: Keras' correction for a normal truncated at ±2σ.
const TRUNC_STD: f32 = 0.879_625_7;

impl Initializer {
    /// The Glorot uniform limit `sqrt(6 / (fan_in + fan_out))`.
    ///
    /// ```
    /// use microfit_core::init::Initializer;
    /// assert_eq!(Initializer::glorot_limit(4, 2), 1.0);
    /// ```
    pub fn glorot_limit(fan_in: usize, fan_out: usize) -> f32 {
        libm::sqrtf(6.0 / ((fan_in + fan_out).max(1) as f32))
    }

    /// Fills `w` (a tensor of the given Keras `shape`) from `rng`.
    ///
    /// ```
    /// use microfit_core::{init::Initializer, rng::Rng};
    /// let mut w = [0.0f32; 12];
    /// Initializer::GlorotUniform.fill(&mut w, &[4, 3], &mut Rng::new(7));
    /// let l = Initializer::glorot_limit(4, 3);
    /// assert!(w.iter().all(|v| v.abs() <= l));
    /// ```
    pub fn fill(&self, w: &mut [f32], shape: &[usize], rng: &mut Rng) {
        let (fi, fo) = fans(shape);
        match *self {
            Initializer::GlorotUniform => {
                let l = Self::glorot_limit(fi, fo);
                w.iter_mut().for_each(|v| *v = rng.uniform(-l, l));
            }
            Initializer::HeUniform => {
                let l = libm::sqrtf(6.0 / (fi.max(1) as f32));
                w.iter_mut().for_each(|v| *v = rng.uniform(-l, l));
            }
            Initializer::GlorotNormal => {
                let s = libm::sqrtf(2.0 / ((fi + fo).max(1) as f32)) / TRUNC_STD;
                w.iter_mut().for_each(|v| *v = truncated_normal(rng) * s);
            }
            Initializer::HeNormal => {
                let s = libm::sqrtf(2.0 / (fi.max(1) as f32)) / TRUNC_STD;
                w.iter_mut().for_each(|v| *v = truncated_normal(rng) * s);
            }
            Initializer::Zeros => w.fill(0.0),
            Initializer::Ones => w.fill(1.0),
            Initializer::Constant(c) => w.fill(c),
        }
    }
}

/// A standard normal sample re-drawn until it lies within ±2.
fn truncated_normal(rng: &mut Rng) -> f32 {
    loop {
        let z = rng.normal();
        if (-2.0..=2.0).contains(&z) {
            return z;
        }
    }
}
