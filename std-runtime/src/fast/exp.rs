//! `e^x` with the bits of the core's [`microfit_core::math::exp`] (libm's `expf`), written
//! without branches so that a loop over a slice vectorizes.
//!
//! libm 0.2's `expf` is FreeBSD's single-precision algorithm: reduce `x = k·ln2 + r` with a
//! two-part `ln2`, a degree-2 rational approximation of `e^r`, then `scalbnf(y, k)`. Every
//! branch of it is taken here as a lane-wise selection of values computed for all lanes; each
//! value is computed with the same operations in the same order, so the result is the same
//! float. The test `exp_matches_libm_on_every_f32` checks all 2³² inputs (opt-in, ~70 s in
//! release: `cargo test --release -p microfit --lib fast::exp -- --ignored`); a dense stride of
//! about a million inputs and the neighbourhoods of every branch point run with every `cargo test`.
//!
//! Only valid while the core's `fast-math` feature is off (then `math::exp` *is* libm's
//! `expf`): [`exp_slice`] checks that once and falls back to `math::exp` otherwise.

// libm's constants, by their bits.
const LN2_HI: f32 = f32::from_bits(0x3f31_7200); // 6.9314575195e-01
const LN2_LO: f32 = f32::from_bits(0x35bf_be8e); // 1.4286067653e-06
const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b); // 1.4426950216e+00
const P1: f32 = f32::from_bits(0x3e2a_aa8f); // 1.6666625440e-1 = 0xaaaa8f.0p-26
const P2: f32 = f32::from_bits(0xbb35_5215); // -2.7667332906e-3 = -0xb55215.0p-32

/// `e^x`, bit-identical to `libm::expf` (0.2.x), branch-free.
#[inline(always)]
pub fn expf(x: f32) -> f32 {
    let bits = x.to_bits();
    let neg = bits >> 31 != 0;
    let hx = bits & 0x7fff_ffff;
    // Argument reduction, all three of libm's cases computed with one formula: k = 0 gives
    // hi = x - 0·LN2_HI = x and lo = 0·LN2_LO = +0, which is libm's small-|x| branch exactly.
    let half = if neg { -0.5f32 } else { 0.5 };
    let k_big = (INV_LN2 * x + half) as i32;
    let k_one = if neg { -1 } else { 1 };
    let k = if hx > 0x3f85_1592 {
        k_big
    } else if hx > 0x3eb1_7218 {
        k_one
    } else {
        0
    };
    // Lanes that reach the polynomial have k in [-150, 128]; clamping only tames the lanes
    // whose result is replaced below (NaN, ±∞, overflow, underflow).
    let k = k.clamp(-150, 128);
    let kf = k as f32;
    let hi = x - kf * LN2_HI;
    let lo = kf * LN2_LO;
    let r = hi - lo;
    let rr = r * r;
    let c = r - rr * (P1 + rr * P2);
    let y = 1.0 + (r * c / (2.0 - c) - lo + hi);
    // scalbnf(y, k) (libm's generic scalbn for f32): one pre-scale by 2^127 or 2^-102 when
    // 2^k is out of the normal range, then the multiplication by 2^n. For k = 0 both factors
    // are 1 and y is returned unchanged, as libm does.
    let (pre, n) = if k > 127 {
        (f32::from_bits(0x7f00_0000), k - 127)
    } else if k < -126 {
        (f32::from_bits(0x0c80_0000), k + 102)
    } else {
        (1.0, k)
    };
    let scale = f32::from_bits(((0x7f + n) as u32) << 23);
    let mut out = y * pre * scale;
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

/// True when the core's `math::exp` is libm's `expf` (its `fast-math` feature is off), probed
/// on a few values once per process.
pub fn core_exp_is_libm() -> bool {
    use std::sync::OnceLock;
    static SAME: OnceLock<bool> = OnceLock::new();
    *SAME.get_or_init(|| {
        [-87.5f32, -10.3, -1.7, -0.3, 0.0, 1e-5, 0.3, 0.9, 5.2, 60.1]
            .iter()
            .all(|&x| expf(x).to_bits() == microfit_core::math::exp(x).to_bits())
    })
}

/// `v = e^v` element by element, with the bits of [`microfit_core::math::exp`].
#[inline]
pub fn exp_slice(v: &mut [f32]) {
    if core_exp_is_libm() {
        for x in v {
            *x = expf(*x);
        }
    } else {
        for x in v {
            *x = microfit_core::math::exp(*x);
        }
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
            let (a, b) = (expf(x), microfit_core::math::exp(x));
            if a.to_bits() != b.to_bits() && !(a.is_nan() && b.is_nan() && a.to_bits() == x.to_bits()) {
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

    #[test]
    fn exp_matches_libm_near_the_branch_points() {
        for &b in &[0x3900_0000u32, 0x3eb1_7218, 0x3f85_1592, 0x42ae_ac50, 0x42b1_7218, 0x42cf_f1b5, 0x7f80_0000] {
            for s in [0u32, 0x8000_0000] {
                let c = u64::from(b | s);
                check_range(c.saturating_sub(5000), c + 5000, 1);
            }
        }
    }

    #[test]
    fn exp_slice_matches() {
        let mut v: Vec<f32> = (-2000..2000).map(|i| i as f32 * 0.0537).collect();
        let w: Vec<f32> = v.iter().map(|&x| microfit_core::math::exp(x)).collect();
        exp_slice(&mut v);
        assert_eq!(v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), w.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    }
}
