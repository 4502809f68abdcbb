//! Weight constraints (Keras `kernel_constraint` / `bias_constraint`), applied to a variable
//! right after each optimizer update, exactly as Keras' `BaseOptimizer.apply` does.
//!
//! | Keras | here | result |
//! |---|---|---|
//! | `MaxNorm(max_value=2, axis=0)` | [`Constraint::MaxNorm`] | `w · (clip(n, 0, max) / (ε + n))` |
//! | `MinMaxNorm(min_value=0, max_value=1, rate=1, axis=0)` | [`Constraint::MinMaxNorm`] | `w · ((rate·clip(n, min, max) + (1 − rate)·n) / (ε + n))` |
//! | `NonNeg()` | [`Constraint::NonNeg`] | `max(w, 0)` |
//! | `UnitNorm(axis=0)` | [`Constraint::UnitNorm`] | `w / (ε + n)` |
//!
//! `n = sqrt(Σ w²)` over the constraint's [`Axes`] (Keras `axis`, an int or a list, negative
//! from the end), one norm per index of the other axes; `ε = 1e-7` (Keras' `epsilon()`). The
//! axes are those of the Keras layout: a Dense kernel is `(in, out)`, so `axis=0` constrains
//! each output unit's incoming weights; a Conv2D kernel is `(kh, kw, cin, out)`, so
//! `axis=[0, 1, 2]` constrains each filter.
//!
//! **Same bits as Keras.** The `Σ w²` are summed in TensorFlow's order (Eigen's reductions on
//! a CPU, determined against TensorFlow 2.21 `reduce_sum` for every layout below and checked by
//! `constraints_k3.json`): TensorFlow first drops the axes of size 1 and merges neighbouring
//! axes that are both reduced or both kept, then
//! * everything reduced, or only trailing axes reduced (each row of a Dense kernel with
//!   `axis=1`, a bias): [`crate::math::reduce::tf_sum_by`] over each group;
//! * only leading axes reduced (`axis=0` of a Dense kernel, `[0, 1, 2]` of a Conv2D kernel),
//!   `R` rows of `K` kept values: with `R ≥ 16`, the columns of whole 8-float packets
//!   (`j < K/8·8`) in four interleaved accumulators over `R/4·4` rows, `((a0 + a1) + a2) + a3`,
//!   then the remaining rows one by one; every other column one row after the other;
//! * reduced axes on both sides of a kept one with the last axis reduced: each group gathered
//!   in order and summed as `tf_sum_by`; with the last axis kept (e.g. `axis=[0, 2]` of a rank-3
//!   kernel): one value after the other, which may differ from TensorFlow in the last bit.
//!
//! ```
//! use microfit_core::constraint::{Axes, Constraint};
//! // MaxNorm(1.0, axis=0) on a Dense kernel (2 inputs, 2 outputs): column 0 has norm 5.
//! let mut w = [3.0f32, 0.1, 4.0, 0.2];
//! Constraint::max_norm(1.0, Axes::one(0)).apply(&mut w, &[2, 2]);
//! assert!((w[0] - 0.6).abs() < 1e-6 && (w[2] - 0.8).abs() < 1e-6);
//! assert_eq!(w[1], 0.1 * (0.223_606_8f32 / (1e-7 + 0.223_606_8)));
//! ```

use crate::error::Error;
use crate::math;
use crate::math::reduce::tf_sum_by;

/// Keras' `backend.epsilon()` in the divisor of the norm constraints.
pub const EPSILON: f32 = 1e-7;

/// Most axes of a constrained variable (a Conv3D kernel has 5).
const MAX_AXES: usize = 5;

/// Keras `axis` of a norm constraint: one axis or a list, negative values counting from the end
/// (`-1` is the last axis). A set of axes (the order of a list does not matter to a sum) in
/// two bytes.
///
/// ```
/// use microfit_core::constraint::Axes;
/// let a = Axes::list(&[2, 0, 1]);
/// assert_eq!(a.mask(4), Some(0b0111));
/// assert_eq!(Axes::one(-1).mask(2), Some(0b10));
/// assert_eq!(Axes::one(3).mask(2), None); // no axis 3 in a rank-2 kernel
/// let (l, n) = Axes::list(&[2, -1, 0]).to_list();
/// assert_eq!(&l[..n], &[0, 2, -1]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Axes {
    /// Bit `i`: axis `i` (0 ≤ i < 8).
    pos: u8,
    /// Bit `i`: axis `-(i + 1)`.
    neg: u8,
    /// An axis outside `-8..8` was given (never valid).
    bad: bool,
}

impl Axes {
    /// One axis (Keras `axis=a`).
    pub const fn one(a: i8) -> Self {
        Self::list(&[a])
    }

    /// A list of axes (Keras `axis=[…]`).
    pub const fn list(a: &[i8]) -> Self {
        let mut x = Axes {
            pos: 0,
            neg: 0,
            bad: false,
        };
        let mut i = 0;
        while i < a.len() {
            let v = a[i];
            if v >= 0 && v < 8 {
                x.pos |= 1 << v;
            } else if v < 0 && v >= -8 {
                x.neg |= 1 << (-(v as i16) - 1);
            } else {
                x.bad = true;
            }
            i += 1;
        }
        x
    }

    /// The axes, non-negative ones first in increasing order, then negative ones from `-1`
    /// down, and how many there are.
    pub fn to_list(&self) -> ([i8; 16], usize) {
        let mut out = [0i8; 16];
        let mut n = 0;
        for i in 0..8 {
            if self.pos & (1 << i) != 0 {
                out[n] = i as i8;
                n += 1;
            }
        }
        for i in 0..8 {
            if self.neg & (1 << i) != 0 {
                out[n] = -(i as i8) - 1;
                n += 1;
            }
        }
        (out, n)
    }

    /// The reduced axes of a tensor of rank `rank` as a bit mask (bit `i`: axis `i`), or `None`
    /// when an axis is out of range or none is given (Keras raises then).
    pub fn mask(&self, rank: usize) -> Option<u8> {
        if self.bad || (self.pos == 0 && self.neg == 0) || rank > 8 {
            return None;
        }
        let mut m = self.pos;
        if rank < 8 && u16::from(m) >> rank != 0 {
            return None;
        }
        for i in 0..8 {
            if self.neg & (1 << i) != 0 {
                m |= 1 << rank.checked_sub(i + 1)?;
            }
        }
        Some(m)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Axes {
    /// Keras' form: an int for one axis, a list otherwise.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (list, n) = self.to_list();
        match &list[..n] {
            [a] => s.serialize_i8(*a),
            list => list.serialize(s),
        }
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Axes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Axes;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("an axis or a list of axes")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Axes, E> {
                i8::try_from(v)
                    .map(Axes::one)
                    .map_err(|_| E::custom("axis out of range"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Axes, E> {
                i8::try_from(v)
                    .map(Axes::one)
                    .map_err(|_| E::custom("axis out of range"))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Axes, A::Error> {
                let mut axes = Axes::list(&[]);
                while let Some(a) = seq.next_element::<i64>()? {
                    let a = i8::try_from(a)
                        .map_err(|_| serde::de::Error::custom("axis out of range"))?;
                    let one = Axes::one(a);
                    axes.pos |= one.pos;
                    axes.neg |= one.neg;
                    axes.bad |= one.bad;
                }
                Ok(axes)
            }
        }
        d.deserialize_any(V)
    }
}

/// A weight constraint (Keras class names and arguments; see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Constraint {
    /// `MaxNorm(max_value, axis)`: each norm over `axis` at most `max_value`.
    MaxNorm {
        /// The largest norm.
        max_value: f32,
        /// Keras `axis`.
        axis: Axes,
    },
    /// `MinMaxNorm(min_value, max_value, rate, axis)`: each norm moved by `rate` towards
    /// `[min_value, max_value]`.
    MinMaxNorm {
        /// The smallest norm.
        min_value: f32,
        /// The largest norm.
        max_value: f32,
        /// How far towards the interval (1: all the way).
        rate: f32,
        /// Keras `axis`.
        axis: Axes,
    },
    /// `NonNeg()`: negative weights to 0.
    NonNeg,
    /// `UnitNorm(axis)`: each norm over `axis` to 1.
    UnitNorm {
        /// Keras `axis`.
        axis: Axes,
    },
}

impl Constraint {
    /// `MaxNorm(max_value, axis)` (Keras' defaults are `2` and `axis=0`).
    pub const fn max_norm(max_value: f32, axis: Axes) -> Self {
        Constraint::MaxNorm { max_value, axis }
    }

    /// `MinMaxNorm(min_value, max_value, rate, axis)` (Keras' defaults: `0, 1, 1, axis=0`).
    pub const fn min_max_norm(min_value: f32, max_value: f32, rate: f32, axis: Axes) -> Self {
        Constraint::MinMaxNorm {
            min_value,
            max_value,
            rate,
            axis,
        }
    }

    /// `UnitNorm(axis)` (Keras' default `axis=0`).
    pub const fn unit_norm(axis: Axes) -> Self {
        Constraint::UnitNorm { axis }
    }

    /// The Keras class name.
    pub fn keras_class(&self) -> &'static str {
        match self {
            Constraint::MaxNorm { .. } => "MaxNorm",
            Constraint::MinMaxNorm { .. } => "MinMaxNorm",
            Constraint::NonNeg => "NonNeg",
            Constraint::UnitNorm { .. } => "UnitNorm",
        }
    }

    /// Checks the values, and the axes against a variable of rank `rank`.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a negative or non-finite bound, `min_value >
    /// max_value`, a `rate` outside `[0, 1]`, or an axis the variable does not have.
    ///
    /// ```
    /// use microfit_core::constraint::{Axes, Constraint};
    /// assert!(Constraint::max_norm(2.0, Axes::one(0)).validate(2).is_ok());
    /// assert!(Constraint::max_norm(2.0, Axes::list(&[0, 1, 2])).validate(2).is_err());
    /// assert!(Constraint::max_norm(-1.0, Axes::one(0)).validate(2).is_err());
    /// ```
    pub fn validate(&self, rank: usize) -> Result<(), Error> {
        let bad = |name, reason| Err(Error::InvalidHyperparameter { name, reason });
        let axis = match *self {
            Constraint::MaxNorm { max_value, axis } => {
                if !(max_value.is_finite() && max_value >= 0.0) {
                    return bad("max_value", crate::error::Reason::NonNegative);
                }
                axis
            }
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                axis,
            } => {
                if !(min_value.is_finite() && min_value >= 0.0) {
                    return bad("min_value", crate::error::Reason::NonNegative);
                }
                if !(max_value.is_finite() && max_value >= min_value) {
                    return bad("max_value", crate::error::Reason::AtLeastMinValue);
                }
                if !(0.0..=1.0).contains(&rate) {
                    return bad("rate", crate::error::Reason::UnitInterval);
                }
                axis
            }
            Constraint::NonNeg => return Ok(()),
            Constraint::UnitNorm { axis } => axis,
        };
        match axis.mask(rank) {
            Some(_) => Ok(()),
            None => bad("axis", crate::error::Reason::NoSuchAxis),
        }
    }

    /// Applies the constraint in place to a variable `w` of shape `shape` (Keras layout,
    /// row-major). A shape that does not match `w`, or an axis out of range (see
    /// [`Constraint::validate`]), leaves `w` unchanged.
    pub fn apply(&self, w: &mut [f32], shape: &[usize]) {
        match *self {
            Constraint::NonNeg => {
                // TensorFlow's `maximum(w, 0)`: -0 and negatives to +0, NaN kept.
                for v in w.iter_mut() {
                    if !(*v > 0.0 || v.is_nan()) {
                        *v = 0.0;
                    }
                }
            }
            Constraint::MaxNorm { max_value, axis } => {
                per_norm(w, shape, axis, |n| {
                    let desired = clip(n, 0.0, max_value);
                    Rescale::Times(desired / (EPSILON + n))
                });
            }
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                axis,
            } => {
                // `1 - rate` is Python's double-precision subtraction, then float32.
                let one_minus = (1.0 - math::keras_decimal(rate)) as f32;
                per_norm(w, shape, axis, |n| {
                    let desired = rate * clip(n, min_value, max_value) + one_minus * n;
                    Rescale::Times(desired / (EPSILON + n))
                });
            }
            Constraint::UnitNorm { axis } => {
                per_norm(w, shape, axis, |n| Rescale::Over(EPSILON + n));
            }
        }
    }
}

/// TensorFlow's `clip_by_value` (NaN stays NaN). Not `f32::clamp`: its assertion would link
/// float formatting into firmware.
#[inline]
#[allow(clippy::manual_clamp)]
fn clip(x: f32, lo: f32, hi: f32) -> f32 {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// What a norm constraint does to the values of one group: `w · f` or `w / d` (Keras writes
/// `UnitNorm` as a division, the others as a product: different bits).
#[derive(Clone, Copy)]
enum Rescale {
    Times(f32),
    Over(f32),
}

/// A tensor's shape after TensorFlow's simplification for a reduction: axes of size 1 dropped,
/// neighbouring axes with the same status (reduced or kept) merged. At most 5 blocks.
#[derive(Clone, Copy)]
struct Layout {
    /// Block sizes, outermost first.
    size: [usize; MAX_AXES],
    /// Whether each block is reduced.
    reduced: [bool; MAX_AXES],
    /// Number of blocks.
    n: usize,
}

impl Layout {
    fn new(shape: &[usize], mask: u8) -> Self {
        let mut l = Layout {
            size: [1; MAX_AXES],
            reduced: [false; MAX_AXES],
            n: 0,
        };
        for (i, &d) in shape.iter().enumerate().take(MAX_AXES) {
            if d == 1 {
                continue;
            }
            let r = mask & (1 << i) != 0;
            if l.n > 0 && l.reduced[l.n - 1] == r {
                l.size[l.n - 1] *= d;
            } else {
                l.size[l.n] = d;
                l.reduced[l.n] = r;
                l.n += 1;
            }
        }
        l
    }

    /// Product of the reduced (`true`) or kept (`false`) blocks.
    fn count(&self, reduced: bool) -> usize {
        (0..self.n)
            .filter(|&b| self.reduced[b] == reduced)
            .map(|b| self.size[b])
            .product()
    }

    /// The flat index of element `r` (row-major over the reduced blocks) of group `g`
    /// (row-major over the kept blocks).
    fn offset(&self, mut g: usize, mut r: usize) -> usize {
        let mut idx = [0usize; MAX_AXES];
        for b in (0..self.n).rev() {
            let s = self.size[b].max(1);
            let src = if self.reduced[b] { &mut r } else { &mut g };
            idx[b] = *src % s;
            *src /= s;
        }
        let mut flat = 0;
        for b in 0..self.n {
            flat = flat * self.size[b] + idx[b];
        }
        flat
    }
}

/// For each group of values sharing the indices of the axes *not* in `axis`: its norm
/// `sqrt(Σ w²)` (summed in TensorFlow's order, see the module docs), then `rescale(norm)`
/// applied to each of its values.
fn per_norm(w: &mut [f32], shape: &[usize], axis: Axes, rescale: impl Fn(f32) -> Rescale) {
    let Some(mask) = axis.mask(shape.len()) else {
        return;
    };
    if shape.len() > MAX_AXES || shape.iter().product::<usize>() != w.len() || w.is_empty() {
        return;
    }
    let l = Layout::new(shape, mask);
    let (rows, groups) = (l.count(true), l.count(false));
    let apply = |w: &mut [f32], at: &dyn Fn(usize) -> usize, sq: f32| {
        let k = rescale(math::sqrt(sq));
        for r in 0..rows {
            if let Some(v) = w.get_mut(at(r)) {
                *v = match k {
                    Rescale::Times(f) => *v * f,
                    Rescale::Over(d) => *v / d,
                };
            }
        }
    };
    let sq = |w: &[f32], i: usize| w.get(i).map_or(0.0, |&v| v * v);
    let leading = l.n == 2 && l.reduced[0] && !l.reduced[1];
    let last_reduced = l.n > 0 && l.reduced[l.n - 1];
    if leading {
        // `rows × groups`, reduced over the rows (Eigen's outer reduction).
        let packets = if rows >= 16 { groups / 8 * 8 } else { 0 };
        for j in 0..groups {
            let s = if j < packets {
                outer_packet_sum(rows, |r| sq(w, r * groups + j))
            } else {
                sequential_sum(rows, |r| sq(w, r * groups + j))
            };
            apply(w, &|r| r * groups + j, s);
        }
    } else if last_reduced {
        // Each group's values gathered in order, summed as TensorFlow's inner reduction.
        for g in 0..groups {
            let s = tf_sum_by(rows, |r| sq(w, l.offset(g, r)));
            apply(w, &|r| l.offset(g, r), s);
        }
    } else {
        for g in 0..groups {
            let s = sequential_sum(rows, |r| sq(w, l.offset(g, r)));
            apply(w, &|r| l.offset(g, r), s);
        }
    }
}

/// `((0 + f(0)) + f(1)) + …`.
fn sequential_sum(n: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut s = 0.0f32;
    for i in 0..n {
        s += f(i);
    }
    s
}

/// A packet column of Eigen's outer reduction: four accumulators over rows `i % 4` for the
/// first `n/4·4` rows, `((a0 + a1) + a2) + a3`, then the remaining rows in order.
fn outer_packet_sum(n: usize, f: impl Fn(usize) -> f32) -> f32 {
    let m = n / 4 * 4;
    let mut a = [0.0f32; 4];
    let mut i = 0;
    while i < m {
        a[0] += f(i);
        a[1] += f(i + 1);
        a[2] += f(i + 2);
        a[3] += f(i + 3);
        i += 4;
    }
    let mut s = ((a[0] + a[1]) + a[2]) + a[3];
    for i in m..n {
        s += f(i);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_merge_and_drop_unit_axes() {
        let l = Layout::new(&[3, 3, 1, 2], 0b0111);
        assert_eq!((l.n, l.size[0], l.size[1]), (2, 9, 2));
        assert!(l.reduced[0] && !l.reduced[1]);
        let l = Layout::new(&[2, 3, 4], 0b101);
        assert_eq!(l.n, 3);
        // Element (1, 2, 3) is group 2 (the kept axis), reduced index 1·4 + 3.
        assert_eq!(l.offset(2, 7), 12 + 2 * 4 + 3);
    }

    #[test]
    fn unit_norm_divides_and_nonneg_clears_negative_zero() {
        let mut w = [3.0f32, 4.0];
        Constraint::unit_norm(Axes::one(0)).apply(&mut w, &[2]);
        assert_eq!(w, [3.0 / (1e-7 + 5.0), 4.0 / (1e-7 + 5.0)]);
        let mut v = [-0.0f32, -1.0, 2.0, f32::NAN];
        Constraint::NonNeg.apply(&mut v, &[4]);
        assert_eq!(v[0].to_bits(), 0);
        assert_eq!(v[1].to_bits(), 0);
        assert_eq!(v[2], 2.0);
        assert!(v[3].is_nan());
    }

    #[test]
    fn a_mismatched_shape_is_left_alone() {
        let mut w = [3.0f32, 4.0, 5.0];
        Constraint::max_norm(1.0, Axes::one(0)).apply(&mut w, &[2, 2]);
        assert_eq!(w, [3.0, 4.0, 5.0]);
        Constraint::max_norm(1.0, Axes::one(4)).apply(&mut w, &[3]);
        assert_eq!(w, [3.0, 4.0, 5.0]);
    }
}
