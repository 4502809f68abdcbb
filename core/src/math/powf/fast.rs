//! `x^y` for a positive normal `x ≠ 1` from the `f64` `log2 x`, with no `f64` arithmetic: the
//! rest of the `f64` evaluation (`y·log2 x`, then `exp2`) reproduced on integers.
//!
//! * `y·log2 x` is rounded exactly as the `f64` multiply rounds it ([`Dbl`]), and so are `k`
//!   (`32·y·log2 x` rounded to an integer, ties to even) and `r = y·log2 x − k/32`.
//! * Fast path: `2^(k/32)·(1 + C2 r + C1 r² + C0 r³)` in 64-bit fixed point, within `2^-54`
//!   (relative) of the exact value of that formula, while the `f64` evaluation's four roundings
//!   keep it within `2^-51`. So when this value is farther than `2^-46` from the midpoint between
//!   two floats, both round to the same float. Otherwise (probability `2^-21` per call), or when
//!   the result is not a normal float:
//! * Exact path: the `f64` evaluation's eight operations one by one with [`Dbl`] (exact IEEE
//!   round-to-nearest-even on integers), then its conversion to f32 — the same bits, always.
//!
//! A Cortex-M4F has no `f64` hardware: the `f64` path costs ~2,600 instructions, this one ~250
//! (and `log2 x` of a constant `β` is folded by the compiler), and the firmware links none of
//! the software `f64` routines.

use super::dbl::{Dbl, mul_wide};
use super::{C, EXP2_TAB};

/// Half-width of the no-decision band around a float midpoint, in units of the last bit of the
/// 64-bit normalised result `M ∈ [2^63, 2^64)` (`2^23 / 2^63 = 2^-40` relative at most).
const MIDPOINT_MARGIN: u64 = 1 << 23;
/// Half-width of the no-decision band around a tie of `round(32·y·log2 x)`, in `2^-55` units
/// (`2^-41` of `y·log2 x`).
const TIE_MARGIN: u64 = 1 << 14;
/// `y·log2 x ≤ -126.5` (in `2^-55` units): the result is below `2^-126.5`, a subnormal that
/// TensorFlow flushes, or 0.
const FLUSHED: i64 = -(253 << 54);
/// Above this `y·log2 x` the result rounds to `> f32::MAX` (`0x1.fffffffd1d571p+6`): ∞.
const OVERFLOW: Dbl = Dbl::from_bits(0x405f_ffff_ffd1_d571);
/// At or below `-150`: 0.
const UNDERFLOW: Dbl = Dbl::from_bits(150f64.to_bits());

const C0: Dbl = Dbl::from_bits(C[0].to_bits());
const C1: Dbl = Dbl::from_bits(C[1].to_bits());
const C2: Dbl = Dbl::from_bits(C[2].to_bits());
const ONE: Dbl = Dbl::from_bits(1f64.to_bits());

/// `C0, C1, C2, 1` in Q62 (`· 2^62`, exact: checked at compile time), for Horner's rule.
const C_Q62: [u64; 4] = {
    let mut t = [1u64 << 62; 4];
    let mut i = 0;
    while i < 3 {
        let d = Dbl::from_bits(C[i].to_bits());
        let s = d.e + 62;
        assert!(!d.neg && s >= 0 && s < 10, "coefficient not exact in Q62");
        t[i] = d.m << s;
        i += 1;
    }
    t
};

/// `floor(a · b / 2^64)` for a signed `a` and an unsigned `b < 2^63`.
#[inline(always)]
fn mulhi(a: i64, b: u64) -> i64 {
    let h = (mul_wide(a as u64, b) >> 64) as u64 as i64;
    if a < 0 { h.wrapping_sub(b as i64) } else { h }
}

/// `x^y` (flushed to zero) for a positive normal `x ≠ 1` (`below_one`: `x < 1`) whose `f64`
/// `log2` is `logx`: every case as glibc's `powf` with that `x`.
#[inline(never)]
pub(super) fn pow_positive(below_one: bool, logx: f64, y: f32) -> f32 {
    match fast(logx, y) {
        Some(v) => v,
        None => exact(below_one, logx, y),
    }
}

/// [`fast`] alone, never inlined (one copy for Adam's two `β^t`): `super::powf_fast`.
#[inline(never)]
pub(super) fn fast_only(logx: f64, y: f32) -> Option<f32> {
    fast(logx, y)
}

/// The `f64` evaluation from `y·log2 x` on, one rounding at a time with [`Dbl`] (exact), and
/// glibc's special cases for `y`. Never inlined: its frame is on the stack only in the rare
/// calls that need it.
#[inline(never)]
fn exact(below_one: bool, logx: f64, y: f32) -> f32 {
    #[cfg(test)]
    EXACT_CALLS.with(|c| c.set(c.get() + 1));
    let iy = y.to_bits();
    let ay = iy & 0x7fff_ffff;
    if ay == 0 {
        return 1.0;
    }
    if ay >= 0x7f80_0000 {
        if ay > 0x7f80_0000 {
            return y + y; // NaN
        }
        // y = ±∞: 0 when |x| < 1 and y = +∞ or |x| > 1 and y = -∞, else +∞.
        return if below_one == (iy >> 31 == 0) {
            0.0
        } else {
            f32::INFINITY
        };
    }
    // y·log2 x, rounded as the f64 multiply rounds it.
    let yneg = iy >> 31 != 0;
    let ydbl = if ay < 0x0080_0000 {
        Dbl::round(yneg, u64::from(ay), false, -149) // subnormal y
    } else {
        Dbl {
            neg: yneg,
            m: u64::from((ay & 0x007f_ffff) | 0x0080_0000) << 29,
            e: ((ay >> 23) as i32) - 150 - 29,
        }
    };
    let yl = ydbl.mul(Dbl::from_normal_bits(logx.to_bits()));
    let above = |a: Dbl, b: Dbl| (a.e, a.m) > (b.e, b.m); // |a| > |b|, both non-zero
    if !yl.neg && above(yl, OVERFLOW) {
        return f32::INFINITY;
    }
    if yl.neg && !above(UNDERFLOW, yl) {
        return 0.0;
    }
    let (k, r) = split_k(yl);
    exact_exp2(k, r)
}

#[cfg(test)]
std::thread_local! {
    /// Calls of [`exact_exp2`] on this thread (tests: how often the fast path gave up).
    pub(super) static EXACT_CALLS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// `k = round(32·v)` (ties to even, as adding `0x1.8p52/32` in `f64` does) and `r = v − k/32`,
/// exactly (`|v| < 150`).
fn split_k(v: Dbl) -> (i64, Dbl) {
    // 32·v = ±m·2^(e+5): f fractional bits.
    let f = -(v.e + 5);
    if f <= 0 {
        let k = (v.m << -f) as i64;
        return (if v.neg { -k } else { k }, Dbl::ZERO);
    }
    if f > 60 {
        return (0, v); // |32·v| < 2^-7
    }
    let mut q = v.m >> f;
    let rem = v.m & ((1 << f) - 1);
    let half = 1u64 << (f - 1);
    if rem > half || (rem == half && q & 1 == 1) {
        q += 1;
    }
    // r = ±(m − q·2^f)·2^e, exact.
    let diff = v.m as i64 - (q << f) as i64;
    let r = Dbl::round(v.neg != (diff < 0), diff.unsigned_abs(), false, v.e);
    let k = q as i64;
    (if v.neg { -k } else { k }, r)
}

/// `2^(k/32)` as the `f64` evaluation has it: `bits(2^((k mod 32)/32)) + (k div 32) << 52`.
fn scale(k: i64) -> Dbl {
    Dbl::from_normal_bits(EXP2_TAB[(k & 31) as usize].wrapping_add((k as u64) << 47))
}

/// The `f64` evaluation of `2^(k/32)·(1 + C2 r + C1 r² + C0 r³)` and its conversion to f32, one
/// rounding at a time, as `exp2_inline` does it.
fn exact_exp2(k: i64, r: Dbl) -> f32 {
    let z = C0.mul(r).add(C1);
    let r2 = r.mul(r);
    let y = C2.mul(r).add(ONE);
    let y = z.mul(r2).add(y);
    y.mul(scale(k)).to_f32_flushed()
}

/// `2^(y·log2 x)` in fixed point, when the f32 the `f64` evaluation rounds to is certain (see
/// the module docs); `None` otherwise (and for a zero, subnormal, infinite or NaN `y`).
#[inline(always)]
fn fast(logx: f64, y: f32) -> Option<f32> {
    let iy = y.to_bits();
    let ay = iy & 0x7fff_ffff;
    if !(0x0080_0000..0x7f80_0000).contains(&ay) {
        return None;
    }
    // |y·log2 x| = m·2^e, m ∈ [2^63, 2^64), truncated: log2 x's significand (shifted to 64
    // bits) times y's (shifted to 32 bits), upper 64 bits of the 96.
    let l = Dbl::from_normal_bits(logx.to_bits()); // log2 x ≠ 0 (x ≠ 1)
    let a = l.m << 11;
    let my = u64::from(((ay & 0x007f_ffff) | 0x0080_0000) << 8);
    let p = (a >> 32) * my + (((a & 0xffff_ffff) * my) >> 32);
    let lz = p.leading_zeros() as i32; // 0 or 1
    let m = p << lz;
    let e = l.e - 11 + ((ay >> 23) as i32 - 158) + 32 - lz;
    let negative = l.neg != (iy >> 31 != 0);
    // In Q55 (2^-55 units) if |y·log2 x| < 128 (e ≤ -57).
    if e > -57 {
        // |y·log2 x| ≥ 128: flushed to 0 when negative; overflow is the exact path's.
        return if negative { Some(0.0) } else { None };
    }
    let sh = -(e + 55);
    let mag = if sh < 64 { (m >> sh) as i64 } else { 0 };
    let xd = if negative { -mag } else { mag };
    if xd <= FLUSHED {
        return Some(0.0);
    }
    // k = round(32·xd); within 2^-41 of a tie (the f64 product may lie on the other side) the
    // exact path decides.
    let frac = xd & ((1 << 50) - 1);
    if frac.abs_diff(1 << 49) <= TIE_MARGIN {
        return None;
    }
    let k = (xd + (1 << 49)) >> 50;
    let r = (xd - (k << 50)) << 9; // Q64, |r| ≤ 1/64
    // 1 + C2 r + C1 r² + C0 r³ in Q62 (≈ 1; every partial sum is positive).
    let mut poly = C_Q62[0];
    for &c in &C_Q62[1..] {
        poly = (c as i64 + mulhi(r, poly)) as u64;
    }
    // 2^((k mod 32)/32) = (m·2^11)·2^-63 and poly·2^-62 = (poly·2)·2^-63:
    // result = mres·2^((k div 32) − 62), mres ∈ [2^61.9, 2^64).
    let sc = scale(k & 31);
    let mres = (mul_wide(sc.m << 11, poly << 1) >> 64) as u64;
    let lz = mres.leading_zeros() as i32;
    let mres = mres << lz;
    let e = (k >> 5) as i32 - 62 - lz; // result = mres·2^e
    if e <= -126 - 64 {
        // Below 2^-126: flushed to 0 — unless within 2^-23 of 2^-126, where it may round up to
        // 2^-126 (the exact path decides).
        return if e < -126 - 64 || mres < u64::MAX - (1 << 41) {
            Some(0.0)
        } else {
            None
        };
    }
    // Unless too close to a midpoint to be sure, the f64 evaluation rounds to the same float.
    let low = mres & ((1 << 40) - 1);
    if low.abs_diff(1 << 39) <= MIDPOINT_MARGIN {
        return None;
    }
    Some(
        Dbl {
            neg: false,
            m: mres >> 11,
            e: e + 11,
        }
        .to_f32_flushed(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::{exp2_inline, flush_subnormal};
    use super::*;

    /// Both paths against the `f64` `exp2_inline` for `y·log2 x` anywhere in `(-150, 128)`,
    /// including multiples of 1/64 (ties for `k`) and values near them.
    #[test]
    fn both_paths_agree_with_the_f64_exp2() {
        let mut st = 0x0123_4567_89ab_cdefu64;
        let mut fast_n = 0;
        for i in 0..300_000u32 {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            let u = (st >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
            let xd = match i % 4 {
                0 => -150.0 + 278.0 * u,
                1 => (((-150.0 + 278.0 * u) * 64.0) as i64) as f64 / 64.0, // k ties
                2 => (((-150.0 + 278.0 * u) * 64.0) as i64) as f64 / 64.0 + 1e-13 * (u - 0.5),
                _ => (u - 0.5) * 2f64.powi(-(i as i32 % 60)), // near 0
            };
            let want = flush_subnormal(exp2_inline(xd, 0));
            let (k, r) = split_k(Dbl::from_bits(xd.to_bits()));
            let exact = exact_exp2(k, r);
            assert_eq!(exact.to_bits(), want.to_bits(), "exact path, 2^{xd:e}");
            // The fast path with y = 1: log2 x = xd.
            if xd == 0.0 {
                continue;
            }
            if let Some(f) = fast(xd, 1.0) {
                fast_n += 1;
                assert_eq!(f.to_bits(), want.to_bits(), "fast path, 2^{xd:e}");
            }
        }
        assert!(fast_n > 200_000, "fast path taken {fast_n} times");
    }
}
