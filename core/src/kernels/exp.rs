//! `e^x` and `ln x` with the bits of libm's `expf` and `logf` (the core's [`crate::math::exp`]
//! and [`crate::math::ln`] without `fast-math`), written without branches so that a loop over
//! a slice vectorizes: the std runtime's `Host` backend uses them for the softmax and the
//! cross-entropy of a tile.
//!
//! libm 0.2's `expf` is FreeBSD's single-precision algorithm: reduce `x = k·ln2 + r` with a
//! two-part `ln2`, a degree-2 rational approximation of `e^r`, then `scalbnf(y, k)`. Every
//! branch of it is taken here as a lane-wise selection of values computed for all lanes; each
//! value is computed with the same operations in the same order, so the result is the same
//! float. The test `exp_matches_libm_on_every_f32` checks all 2³² inputs (opt-in, ~70 s in
//! release: `cargo test --release -p microfit-core --lib kernels::exp -- --ignored`); a dense stride of
//! about a million inputs and the neighbourhoods of every branch point run with every `cargo test`.
//!
//! [`exp`] and [`ln`] pick them when the core's `fast-math` feature is off (then `math::exp`
//! *is* libm's `expf`) and `math::exp`/`math::ln` otherwise.

// libm's constants, by their bits.
const LN2_HI: f32 = f32::from_bits(0x3f31_7200); // 6.9314575195e-01
const LN2_LO: f32 = f32::from_bits(0x35bf_be8e); // 1.4286067653e-06
const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b); // 1.4426950216e+00
const P1: f32 = f32::from_bits(0x3e2a_aa8f); // 1.6666625440e-1 = 0xaaaa8f.0p-26
const P2: f32 = f32::from_bits(0xbb35_5215); // -2.7667332906e-3 = -0xb55215.0p-32

/// `1.5·2^23`: adding it to a float below `2^22` in magnitude rounds it to an integer.
const ROUND: f32 = 12_582_912.0;

/// `v` truncated toward zero, for `|v| < 2^22` (the nearest integer, moved one step toward
/// zero when it overshot).
#[inline(always)]
fn trunc_small(v: f32) -> f32 {
    let r = (v + ROUND) - ROUND;
    if v >= 0.0 {
        if r > v { r - 1.0 } else { r }
    } else if r < v {
        r + 1.0
    } else {
        r
    }
}

/// The integer value of an integral float `|kf| < 2^22`, read from the bits of `kf + 1.5·2^23`.
#[inline(always)]
fn int_small(kf: f32) -> i32 {
    ((kf + ROUND).to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32)
}

/// `2^n` for `-126 <= n <= 127`.
#[inline(always)]
fn pow2(n: i32) -> f32 {
    f32::from_bits((n.wrapping_add(0x7f) as u32) << 23)
}

/// `e^x`, bit-identical to `libm::expf` (0.2.x), branch-free.
#[inline(always)]
pub fn expf(x: f32) -> f32 {
    let bits = x.to_bits();
    let sign = bits & 0x8000_0000;
    let neg = sign != 0;
    let hx = bits & 0x7fff_ffff;
    // Every lane whose result comes from the polynomial below has |x| < 103.98; the others
    // (NaN, ±∞, overflow, underflow) are replaced at the end, so they compute with x = 0 and
    // every intermediate value stays small and finite.
    let xs = if hx < 0x42d0_0000 { x } else { 0.0 };
    // Argument reduction, all three of libm's cases computed with one formula: k = 0 gives
    // hi = x - 0·LN2_HI = x and lo = 0·LN2_LO = +0, which is libm's small-|x| branch exactly.
    // libm: k = (INV_LN2·x ± 0.5) as i32 (truncation) for |x| > 1.5·ln2, ±1 for |x| > 0.5·ln2,
    // else 0. `as i32` saturates, which the compiler does not vectorize; `trunc_small` is the
    // same truncation for |v| < 2^22 (here |v| < 151).
    let half = f32::from_bits(0x3f00_0000 | sign); // ±0.5
    let one = f32::from_bits(0x3f80_0000 | sign); // ±1
    let k_big = trunc_small(INV_LN2 * xs + half);
    let kf = if hx > 0x3f85_1592 {
        k_big
    } else if hx > 0x3eb1_7218 {
        one
    } else {
        0.0
    };
    let k = int_small(kf);
    let hi = xs - kf * LN2_HI;
    let lo = kf * LN2_LO;
    let r = hi - lo;
    let rr = r * r;
    let c = r - rr * (P1 + rr * P2);
    let y = 1.0 + (r * c / (2.0 - c) - lo + hi);
    // libm returns scalbnf(y, k) (y itself for k = 0): y·2^k with one rounding, at the end
    // (y·2^127·2 for k = 128, y·2^-102·2^(k+102) below -126). Splitting 2^k into two powers
    // in the normal range, 2^a·2^b, gives that same single rounding: y·2^a is exact (y is
    // near 1 and a >= -75), only the second product can round or overflow.
    let a = k >> 1;
    let mut out = (y * pow2(a)) * pow2(k - a);
    // libm's early returns, in reverse order of precedence.
    if hx <= 0x3900_0000 {
        out = 1.0 + x; // |x| <= 2^-14
    }
    if neg && hx >= 0x42cf_f1b5 {
        out = 0.0; // x <= -103.972084: underflow
    }
    if !neg && hx >= 0x42b1_7218 {
        out = x * f32::from_bits(0x7f00_0000); // x >= 88.722839: overflow (+∞ stays +∞)
    }
    if hx > 0x7f80_0000 {
        out = x; // NaN
    }
    out
}

const LN2_HI_L: f32 = f32::from_bits(0x3f31_7180); // 6.9313812256e-01
const LN2_LO_L: f32 = f32::from_bits(0x3717_f7d1); // 9.0580006145e-06
const LG1: f32 = f32::from_bits(0x3f2a_aaaa); // 0.66666662693 = 0xaaaaaa.0p-24
const LG2: f32 = f32::from_bits(0x3ecc_ce13); // 0.40000972152 = 0xccce13.0p-25
const LG3: f32 = f32::from_bits(0x3e91_e9ee); // 0.28498786688 = 0x91e9ee.0p-25
const LG4: f32 = f32::from_bits(0x3e78_9e26); // 0.24279078841 = 0xf89e26.0p-26

/// `ln x`, bit-identical to `libm::logf` (0.2.x, FreeBSD's algorithm: `x = 2^k·(1+f)` with
/// `1+f` in `[√2/2, √2]`, `s = f/(2+f)`, a polynomial in `s²`), branch-free.
#[inline(always)]
pub fn lnf(x: f32) -> f32 {
    let ix0 = x.to_bits();
    let neg = ix0 >> 31 != 0;
    let zero = ix0 << 1 == 0;
    // Positive subnormals are scaled by 2^25 first, as libm does.
    let sub = ix0 < 0x0080_0000 && !zero;
    let xs = if sub {
        x * f32::from_bits(0x4c00_0000)
    } else {
        x
    };
    let k0: i32 = if sub { -25 } else { 0 };
    let ix = xs.to_bits().wrapping_add(0x3f80_0000 - 0x3f35_04f3);
    let k = k0 + ((ix >> 23) as i32) - 0x7f;
    let f = f32::from_bits((ix & 0x007f_ffff) + 0x3f35_04f3) - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * LG4);
    let t2 = z * (LG1 + w * LG3);
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let dk = k as f32;
    let mut out = s * (hfsq + r) + dk * LN2_LO_L - hfsq + f + dk * LN2_HI_L;
    // libm's early returns, in reverse order of precedence.
    if ix0 == 0x3f80_0000 {
        out = 0.0; // ln 1
    }
    if !neg && ix0 >= 0x7f80_0000 {
        out = x; // +∞, NaN
    }
    if neg {
        // ln of a negative number (or of a negative NaN): libm's `(x - x) / 0`, whose NaN
        // carries `x`'s payload when `x` is a NaN.
        #[allow(clippy::eq_op)]
        let nan = (x - x) / 0.0;
        out = nan;
    }
    if zero {
        out = -1.0 / (x * x); // ln ±0 = -∞
    }
    out
}

/// `eˣ` with the bits of [`crate::math::exp`]: [`expf`] (branch-free) when that is libm's
/// `expf`, i.e. without the `fast-math` feature; [`crate::math::exp`] otherwise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    if cfg!(feature = "fast-math") {
        crate::math::exp(x)
    } else {
        expf(x)
    }
}

/// `ln x` with the bits of [`crate::math::ln`]: [`lnf`] (branch-free) when that is libm's
/// `logf`, i.e. without the `fast-math` feature; [`crate::math::ln`] otherwise.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    if cfg!(feature = "fast-math") {
        crate::math::ln(x)
    } else {
        lnf(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_range(start: u64, end: u64, step: u64) {
        let mut bad = 0u32;
        let mut i = start;
        while i < end {
            let x = f32::from_bits(i as u32);
            let (a, b) = (expf(x), libm::expf(x));
            if a.to_bits() != b.to_bits()
                && !(a.is_nan() && b.is_nan() && a.to_bits() == x.to_bits())
            {
                if bad < 10 {
                    eprintln!("x={x:e} ({:#x}) ours={a:e} libm={b:e}", x.to_bits());
                }
                bad += 1;
            }
            i += step;
        }
        assert_eq!(bad, 0, "mismatches");
    }

    #[test]
    fn truncation_helpers() {
        for i in -4_000_000..4_000_000i32 {
            let v = i as f32 * 0.25 + 0.125;
            assert_eq!(trunc_small(v), v as i32 as f32, "{v}");
            assert_eq!(int_small(i as f32), i);
        }
        for v in [
            0.0f32,
            -0.0,
            0.5,
            -0.5,
            0.49999997,
            -0.49999997,
            150.99998,
            -150.99998,
        ] {
            assert_eq!(trunc_small(v), v as i32 as f32, "{v}");
        }
    }

    #[test]
    fn exp_matches_libm_on_a_dense_stride() {
        // Every 4099th bit pattern: about a million inputs over every binade of both signs.
        check_range(0, 1 << 32, 4099);
    }

    /// All 2³² inputs: about 70 s in a release build, so opt-in:
    /// `cargo test --release -p microfit --lib fast::exp -- --ignored`.
    #[test]
    #[ignore = "exhaustive (2^32 inputs): run in release with --ignored"]
    fn exp_matches_libm_on_every_f32() {
        check_range(0, 1 << 32, 1);
    }

    #[test]
    #[allow(clippy::excessive_precision)]
    fn constants_are_libms() {
        assert_eq!(LN2_HI, 6.9314575195e-01);
        assert_eq!(LN2_LO, 1.4286067653e-06);
        assert_eq!(INV_LN2, 1.4426950216e+00);
        assert_eq!(P1, 1.6666625440e-1);
        assert_eq!(P2, -2.7667332906e-3);
    }

    fn check_ln_range(start: u64, end: u64, step: u64) {
        let mut bad = 0u32;
        let mut i = start;
        while i < end {
            let x = f32::from_bits(i as u32);
            let (a, b) = (lnf(x), libm::logf(x));
            if a.to_bits() != b.to_bits() {
                if bad < 10 {
                    eprintln!(
                        "ln x={x:e} ({:#x}) ours={a:e} ({:#x}) libm={b:e} ({:#x})",
                        x.to_bits(),
                        a.to_bits(),
                        b.to_bits()
                    );
                }
                bad += 1;
            }
            i += step;
        }
        assert_eq!(bad, 0, "mismatches");
    }

    #[test]
    #[cfg(not(feature = "fast-math"))]
    fn ln_matches_libm_on_a_dense_stride_and_near_the_branch_points() {
        check_ln_range(0, 1 << 32, 4099);
        for &b in &[
            0u32,
            0x0080_0000,
            0x3f35_04f3,
            0x3f80_0000,
            0x7f80_0000,
            0x8000_0000,
            0xff80_0000,
        ] {
            let c = u64::from(b);
            check_ln_range(c.saturating_sub(3000), (c + 3000).min(1 << 32), 1);
        }
        let v: Vec<f32> = (1..3000).map(|i| i as f32 * 0.731).collect();
        assert!(
            v.iter()
                .all(|&x| ln(x).to_bits() == libm::logf(x).to_bits())
        );
    }

    /// All 2³² inputs of `lnf`: opt-in like the `exp` one.
    #[test]
    #[ignore = "exhaustive (2^32 inputs): run in release with --ignored"]
    fn ln_matches_libm_on_every_f32() {
        check_ln_range(0, 1 << 32, 1);
    }

    #[test]
    fn exp_matches_libm_near_the_branch_points() {
        for &b in &[
            0x3900_0000u32,
            0x3eb1_7218,
            0x3f85_1592,
            0x42ae_ac50,
            0x42b1_7218,
            0x42cf_f1b5,
            0x7f80_0000,
        ] {
            for s in [0u32, 0x8000_0000] {
                let c = u64::from(b | s);
                check_range(c.saturating_sub(5000), c + 5000, 1);
            }
        }
    }

    #[test]
    #[cfg(not(feature = "fast-math"))]
    fn exp_slice_matches() {
        let mut v: Vec<f32> = (-2000..2000).map(|i| i as f32 * 0.0537).collect();
        let w: Vec<f32> = v.iter().map(|&x| libm::expf(x)).collect();
        for x in v.iter_mut() {
            *x = exp(*x);
        }
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            w.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}
