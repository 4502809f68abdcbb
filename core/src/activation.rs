//! Activations (Keras names), forward and backward over slices.
//!
//! | Keras | here | `y = f(z)` | `dz = f'(z) ⊙ dy` |
//! |---|---|---|---|
//! | `linear` | [`Activation::Linear`] | `z` | `dy` |
//! | `relu` | [`Activation::Relu`] | `max(z, 0)` | `dy · [y > 0]` |
//! | `sigmoid` | [`Activation::Sigmoid`] | `1 / (1 + e^-z)` | `dy · y (1 - y)` |
//! | `tanh` | [`Activation::Tanh`] | `tanh z` | `dy · (1 - y²)` |
//! | `softmax` | [`Activation::Softmax`] | `e^(z-max) / Σ e^(z-max)` | `y ⊙ (dy - Σ y·dy)` |
//! | `leaky_relu` | [`Activation::LeakyRelu`] | `z` if `z > 0` else `α z` | `dy` or `α dy` |
//!
//! Softmax acts on the whole slice (the last axis); the others act elementwise.

use crate::backend::Backend;
use crate::math;

/// An activation function.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Activation {
    /// Identity (Keras `linear`, the default).
    #[default]
    Linear,
    /// `max(z, 0)`.
    Relu,
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Softmax over the last axis.
    Softmax,
    /// Leaky ReLU with negative slope `alpha` (Keras `leaky_relu` default 0.2).
    LeakyRelu(f32),
}

impl Activation {
    /// The Keras identifier (`"relu"`, `"softmax"`, ...).
    ///
    /// ```
    /// assert_eq!(microfit_core::Activation::Relu.keras_name(), "relu");
    /// ```
    pub fn keras_name(&self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::LeakyRelu(_) => "leaky_relu",
        }
    }

    /// Parses a Keras identifier; `leaky_relu` gets Keras' default slope 0.2.
    ///
    /// ```
    /// use microfit_core::Activation;
    /// assert_eq!(Activation::from_keras_name("softmax"), Some(Activation::Softmax));
    /// assert_eq!(Activation::from_keras_name("gelu"), None);
    /// ```
    pub fn from_keras_name(name: &str) -> Option<Self> {
        Some(match name {
            "linear" | "None" | "none" => Activation::Linear,
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            "leaky_relu" => Activation::LeakyRelu(0.2),
            _ => return None,
        })
    }

    /// `y = f(z)`; `z` and `y` have the same length. Softmax is over the whole slice.
    ///
    /// ```
    /// use microfit_core::Activation;
    /// let mut y = [0.0; 3];
    /// Activation::Relu.forward(&[-1.0, 0.0, 2.0], &mut y);
    /// assert_eq!(y, [0.0, 0.0, 2.0]);
    /// ```
    pub fn forward(&self, z: &[f32], y: &mut [f32]) {
        match *self {
            Activation::Linear => y.copy_from_slice_lenient(z),
            Activation::Relu => zip_map(z, y, |v| if v > 0.0 { v } else { 0.0 }),
            Activation::Sigmoid => zip_map(z, y, sigmoid),
            Activation::Tanh => zip_map(z, y, math::tanh),
            Activation::LeakyRelu(a) => zip_map(z, y, |v| if v > 0.0 { v } else { a * v }),
            Activation::Softmax => softmax(z, y),
        }
    }

    /// In place: `v = f(v)` (softmax over the slice).
    pub fn forward_in_place(&self, v: &mut [f32]) {
        match *self {
            Activation::Linear => {}
            Activation::Relu => v.iter_mut().for_each(|x| {
                if *x <= 0.0 {
                    *x = 0.0
                }
            }),
            Activation::Sigmoid => v.iter_mut().for_each(|x| *x = sigmoid(*x)),
            Activation::Tanh => v.iter_mut().for_each(|x| *x = math::tanh(*x)),
            Activation::LeakyRelu(a) => v.iter_mut().for_each(|x| {
                if *x <= 0.0 {
                    *x *= a
                }
            }),
            Activation::Softmax => softmax_in_place(v),
        }
    }

    /// In place: `d ← f'(z) ⊙ d` (`d` holds `∂L/∂y` on entry and `∂L/∂z` on return).
    /// Needs the forward output `y` (and `z` for leaky ReLU).
    ///
    /// ```
    /// use microfit_core::Activation;
    /// let mut d = [1.0, 2.0];
    /// Activation::Sigmoid.backward_in_place(&[0.0, 0.0], &[0.5, 0.5], &mut d);
    /// assert_eq!(d, [0.25, 0.5]);
    /// ```
    pub fn backward_in_place(&self, z: &[f32], y: &[f32], d: &mut [f32]) {
        match *self {
            Activation::Linear => {}
            Activation::Relu => {
                // A select, not a branch: it vectorizes (`+0` where `y <= 0`, `d` elsewhere).
                for (g, &yv) in d.iter_mut().zip(y) {
                    *g = if yv <= 0.0 { 0.0 } else { *g };
                }
            }
            Activation::Sigmoid => {
                for (g, &yv) in d.iter_mut().zip(y) {
                    *g *= yv * (1.0 - yv);
                }
            }
            Activation::Tanh => {
                for (g, &yv) in d.iter_mut().zip(y) {
                    *g *= 1.0 - yv * yv;
                }
            }
            Activation::LeakyRelu(a) => {
                for (g, &zv) in d.iter_mut().zip(z) {
                    if zv <= 0.0 {
                        *g *= a;
                    }
                }
            }
            Activation::Softmax => {
                let mut s = 0.0f32;
                for (&yv, &g) in y.iter().zip(d.iter()) {
                    s += yv * g;
                }
                for (g, &yv) in d.iter_mut().zip(y) {
                    *g = yv * (*g - s);
                }
            }
        }
    }

    /// [`Activation::forward`] on rows of `group` values (a tile of samples, or the positions
    /// of a feature map: softmax acts on each group, the others elementwise), with the
    /// backend's bulk `exp` for the softmax: the same bits as calling `forward` group by group.
    ///
    /// ```
    /// use microfit_core::{Activation, backend::Portable};
    /// let z = [1.0f32, 2.0, 3.0, -1.0, 0.0, 1.0];
    /// let (mut a, mut b) = ([0.0f32; 6], [0.0f32; 6]);
    /// Activation::Softmax.forward_groups::<Portable>(3, &z, &mut a);
    /// Activation::Softmax.forward(&z[..3], &mut b[..3]);
    /// Activation::Softmax.forward(&z[3..], &mut b[3..]);
    /// assert_eq!(a, b);
    /// ```
    #[inline]
    pub fn forward_groups<B: Backend>(&self, group: usize, z: &[f32], y: &mut [f32]) {
        match *self {
            Activation::Softmax if group > 0 => {
                // `e^(z - max)` of every group in one bulk pass, then each group's sum (in
                // order) and divisions: `softmax`'s operations.
                for (zg, yg) in z.chunks_exact(group).zip(y.chunks_exact_mut(group)) {
                    let m = max_of(zg);
                    for (o, &v) in yg.iter_mut().zip(zg) {
                        *o = v - m;
                    }
                }
                let n = z.len().min(y.len()) / group * group;
                B::exp_slice(&mut y[..n]);
                for yg in y.chunks_exact_mut(group) {
                    let mut s = 0.0f32;
                    for &e in yg.iter() {
                        s += e;
                    }
                    for o in yg.iter_mut() {
                        *o /= s;
                    }
                }
            }
            _ => self.forward(z, y),
        }
    }

    /// [`Activation::backward_in_place`] on rows of `group` values (see
    /// [`Activation::forward_groups`]).
    #[inline]
    pub fn backward_groups(&self, group: usize, z: &[f32], y: &[f32], d: &mut [f32]) {
        match *self {
            Activation::Softmax if group > 0 => {
                for (yg, dg) in y.chunks_exact(group).zip(d.chunks_exact_mut(group)) {
                    self.backward_in_place(&[], yg, dg);
                }
            }
            _ => self.backward_in_place(z, y, d),
        }
    }

    /// True if `backward` needs the pre-activation `z` (only leaky ReLU).
    pub fn needs_z(&self) -> bool {
        matches!(self, Activation::LeakyRelu(_))
    }
}

/// Logistic sigmoid `1 / (1 + e^-z)`.
///
/// ```
/// assert_eq!(microfit_core::activation::sigmoid(0.0), 0.5);
/// ```
#[inline]
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + math::exp(-z))
}

/// Numerically stable softmax of `z` into `y`.
///
/// ```
/// let mut y = [0.0; 2];
/// microfit_core::activation::softmax(&[1000.0, 1000.0], &mut y);
/// assert_eq!(y, [0.5, 0.5]);
/// ```
pub fn softmax(z: &[f32], y: &mut [f32]) {
    let m = max_of(z);
    let mut s = 0.0f32;
    for (o, &v) in y.iter_mut().zip(z) {
        let e = math::exp(v - m);
        *o = e;
        s += e;
    }
    for o in y.iter_mut() {
        *o /= s;
    }
}

fn softmax_in_place(v: &mut [f32]) {
    let m = max_of(v);
    let mut s = 0.0f32;
    for o in v.iter_mut() {
        let e = math::exp(*o - m);
        *o = e;
        s += e;
    }
    for o in v.iter_mut() {
        *o /= s;
    }
}

/// Maximum of a slice (NaN-propagating, `-inf` for an empty slice): the value of the scan
/// `m = if v > m || v.is_nan() { v } else { m }` from `-inf` — the last NaN when there is
/// one, else the first of the largest values (which matters for `±0`).
///
/// A row longer than [`SPLIT_ROWS`] is scanned as two halves whose results are combined with
/// the same rule: the right half's pick wins exactly when the whole scan would have ended on
/// it (it is a NaN, or larger than everything on the left), so the value is the scan's, bit
/// for bit, with two independent chains of comparisons instead of one (a softmax row of ten
/// classes: 5 + 1 steps of latency instead of 10).
///
/// ```
/// use microfit_core::activation::max_of;
/// assert_eq!(max_of(&[1.0, 3.0, -2.0, 3.0, 0.5, 2.0]), 3.0);
/// assert_eq!(max_of(&[-0.0, 0.0, -1.0, -5.0, -0.0]).to_bits(), (-0.0f32).to_bits());
/// assert!(max_of(&[1.0, f32::NAN, 2.0, 0.0, 7.0]).is_nan());
/// ```
#[inline]
pub fn max_of(z: &[f32]) -> f32 {
    if z.len() <= SPLIT_ROWS {
        return max_scan(z);
    }
    let (a, b) = z.split_at(z.len() / 2);
    pick_max(max_scan(a), max_scan(b))
}

/// Rows up to this long are scanned in one chain (a microcontroller's few classes: the
/// shortest code); longer ones in two halves ([`max_of`]).
pub const SPLIT_ROWS: usize = 4;

/// The scan of [`max_of`] over one run.
#[inline(always)]
fn max_scan(z: &[f32]) -> f32 {
    let mut m = f32::NEG_INFINITY;
    for &v in z {
        m = pick_max(m, v);
    }
    m
}

/// One step of [`max_of`]'s scan: `v` replaces `m` when larger or NaN.
#[inline(always)]
fn pick_max(m: f32, v: f32) -> f32 {
    if v > m || v.is_nan() { v } else { m }
}

/// `log Σ e^z`, stable.
///
/// ```
/// let v = microfit_core::activation::log_sum_exp(&[0.0, 0.0]);
/// assert!((v - 2f32.ln()).abs() < 1e-7);
/// ```
pub fn log_sum_exp(z: &[f32]) -> f32 {
    let m = max_of(z);
    if !m.is_finite() {
        return m;
    }
    let mut s = 0.0f32;
    for &v in z {
        s += math::exp(v - m);
    }
    m + math::ln(s)
}

#[inline]
fn zip_map(z: &[f32], y: &mut [f32], f: impl Fn(f32) -> f32) {
    for (o, &v) in y.iter_mut().zip(z) {
        *o = f(v);
    }
}

trait CopyLenient {
    fn copy_from_slice_lenient(&mut self, src: &[f32]);
}
impl CopyLenient for [f32] {
    #[inline]
    fn copy_from_slice_lenient(&mut self, src: &[f32]) {
        for (d, &s) in self.iter_mut().zip(src) {
            *d = s;
        }
    }
}
