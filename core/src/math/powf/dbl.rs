//! Exact IEEE double arithmetic on integers, for the handful of `f64` operations of `exp2`:
//! round-to-nearest-even products and sums of finite doubles, bit for bit what an FPU (or the
//! compiler's soft-float routines) computes, in a few hundred bytes of code — so a Cortex-M
//! needs none of the `f64` routines. Subnormal doubles never occur here (`|r| ≥ 2^-180`).

/// A finite double `±m·2^e`: `m = 0` (zero) or `m ∈ [2^52, 2^53)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dbl {
    pub(super) neg: bool,
    pub(super) m: u64,
    pub(super) e: i32,
}

/// The full product of two `u64`, from four 32×32→64 multiplies (one `umull` each on Armv7-M;
/// a `u128` multiply would be a library call on 32-bit targets).
#[inline(always)]
pub(super) fn mul_wide(a: u64, b: u64) -> u128 {
    let (a0, a1) = (a & 0xffff_ffff, a >> 32);
    let (b0, b1) = (b & 0xffff_ffff, b >> 32);
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p00 = a0 * b0;
    let mid = (p00 >> 32) + (p01 & 0xffff_ffff) + (p10 & 0xffff_ffff);
    let hi = a1 * b1 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    (u128::from(hi) << 64) | u128::from((p00 & 0xffff_ffff) | (mid << 32))
}

impl Dbl {
    pub(super) const ZERO: Dbl = Dbl {
        neg: false,
        m: 0,
        e: 0,
    };

    /// A normal (or zero) `f64`, read from its bits (no floating-point operation).
    pub(super) const fn from_bits(bits: u64) -> Dbl {
        if bits << 1 == 0 {
            return Dbl::ZERO;
        }
        Dbl::from_normal_bits(bits)
    }

    /// A normal `f64`, read from its bits. (No test for zero: on an `f64` that came from a
    /// bit cast, the compiler would turn it into a floating-point comparison — a library call
    /// on a microcontroller.)
    pub(super) const fn from_normal_bits(bits: u64) -> Dbl {
        Dbl {
            neg: bits >> 63 != 0,
            m: (bits & ((1 << 52) - 1)) | (1 << 52),
            e: ((bits >> 52) & 0x7ff) as i32 - 1075,
        }
    }

    /// `±(v + sticky)·2^e` rounded to 53 significant bits, ties to even: `sticky` stands for
    /// non-zero bits below `v`'s last one (`v ≠ 0`, or `v = 0` for zero).
    #[inline(never)]
    pub(super) fn round(neg: bool, v: u64, sticky: bool, e: i32) -> Dbl {
        if v == 0 {
            return Dbl::ZERO;
        }
        let lz = v.leading_zeros();
        let v = v << lz; // top bit at 63: 53 bits kept, 11 below
        let mut m = v >> 11;
        let rem = v & 0x7ff;
        if rem > 0x400 || (rem == 0x400 && (sticky || m & 1 == 1)) {
            m += 1;
        }
        let mut e = e + 11 - lz as i32;
        if m == 1 << 53 {
            m >>= 1;
            e += 1;
        }
        Dbl { neg, m, e }
    }

    /// `self · o`, rounded.
    #[inline(never)]
    pub(super) fn mul(self, o: Dbl) -> Dbl {
        if self.m == 0 || o.m == 0 {
            return Dbl::ZERO;
        }
        // m·m' ∈ [2^104, 2^106): its top 64 bits and whether any bit below them is set.
        let p = mul_wide(self.m, o.m);
        let (hi, lo) = ((p >> 64) as u64, p as u64);
        let s = 64 - hi.leading_zeros(); // 41 or 42
        let v = (hi << (64 - s)) | (lo >> s);
        Dbl::round(
            self.neg != o.neg,
            v,
            lo << (64 - s) != 0,
            self.e + o.e + s as i32,
        )
    }

    /// `self + o`, rounded (an exact zero is `+0`, as in round-to-nearest).
    #[inline(never)]
    pub(super) fn add(self, o: Dbl) -> Dbl {
        if self.m == 0 {
            return o;
        }
        if o.m == 0 {
            return self;
        }
        let (a, b) = if self.e >= o.e { (self, o) } else { (o, self) };
        // Significands 10 bits up (10 guard bits); the smaller one's bits shifted out stick to
        // its last bit: when any is lost (d ≥ 2) the sum keeps at least 61 bits, so the sticky
        // bit lies below the rounding position and the rounding is that of the exact sum.
        let wa = a.m << 10;
        let d = (a.e - b.e) as u32;
        let wb = if d >= 64 {
            1
        } else {
            let full = b.m << 10;
            let s = full >> d;
            s | u64::from((s << d) != full)
        };
        let (sum, neg) = if a.neg == b.neg {
            (wa + wb, a.neg)
        } else if wa >= wb {
            (wa - wb, a.neg)
        } else {
            (wb - wa, b.neg)
        };
        Dbl::round(neg, sum, false, a.e - 10)
    }

    /// This double converted to f32 (ties to even), with a result in the subnormal range flushed
    /// to ±0 as TensorFlow does; a value that rounds up to the smallest normal float stays.
    /// Always inlined: out of line, the fast path (`fast::fast_only`, Adam's `β^t` on every
    /// step) passed the `Dbl` through its frame and called it, 72 → 40 bytes of a
    /// microcontroller's stack at the deepest point of a step (W1 on a Cortex-M4F).
    #[inline(always)]
    pub(super) fn to_f32_flushed(self) -> f32 {
        let sign = (self.neg as u32) << 31;
        if self.m == 0 {
            return f32::from_bits(sign);
        }
        let exp = self.e + 52; // value in [2^exp, 2^(exp+1))
        if exp < -126 {
            // Rounded at 2^-149 it is 2^-126 exactly when at least 2^-126 − 2^-150 (a tie goes
            // to the even 2^-126); anything else is subnormal or 0: flushed.
            let min_normal = exp == -127 && self.m >= (1 << 53) - (1 << 29);
            return f32::from_bits(sign | if min_normal { 0x0080_0000 } else { 0 });
        }
        let mut q = (self.m >> 29) as u32;
        let rem = self.m & ((1 << 29) - 1);
        if rem > 1 << 28 || (rem == 1 << 28 && q & 1 == 1) {
            q += 1;
        }
        let mut exp = exp;
        if q == 1 << 24 {
            q >>= 1;
            exp += 1;
        }
        if exp > 127 {
            return f32::from_bits(sign | 0x7f80_0000);
        }
        f32::from_bits(sign | (((exp + 127) as u32) << 23) | (q & 0x007f_ffff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(v: f64) -> Dbl {
        Dbl::from_bits(v.to_bits())
    }

    impl Dbl {
        fn to_bits(self) -> u64 {
            if self.m == 0 {
                return 0;
            }
            (u64::from(self.neg) << 63)
                | (((self.e + 1075) as u64) << 52)
                | (self.m & ((1 << 52) - 1))
        }
    }

    fn rnd(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn agrees_with_the_hardware() {
        let mut st = 0x1234_5678_9abc_def1u64;
        for i in 0..200_000 {
            // Finite doubles of moderate exponents (products and sums stay normal).
            let mk = |st: &mut u64| {
                let b = rnd(st);
                let exp = 1023 - 60 + (b >> 52) % 120;
                f64::from_bits((b & 0x800f_ffff_ffff_ffff) | (exp << 52))
            };
            let (a, b) = (mk(&mut st), mk(&mut st));
            let b = if i % 7 == 0 { -a * 0.75 } else { b }; // cancellations
            assert_eq!(d(a).mul(d(b)).to_bits(), (a * b).to_bits(), "{a:e} * {b:e}");
            assert_eq!(d(a).add(d(b)).to_bits(), (a + b).to_bits(), "{a:e} + {b:e}");
            assert_eq!(
                d(a).to_f32_flushed().to_bits(),
                (a as f32).to_bits(),
                "{a:e} as f32"
            );
        }
        assert_eq!(d(1.0).add(d(-1.0)), Dbl::ZERO);
        assert_eq!(d(0.0).add(d(2.5)).to_bits(), 2.5f64.to_bits());
        // Subnormal f32 results are flushed; 2^-126 - 2^-150 rounds up to the smallest normal.
        assert_eq!(d(1e-40).to_f32_flushed().to_bits(), 0);
        let just_below = f64::from(f32::MIN_POSITIVE) * (1.0 - 2f64.powi(-24));
        assert_eq!(d(just_below).to_f32_flushed(), f32::MIN_POSITIVE);
        let below = f64::from(f32::MIN_POSITIVE) * (1.0 - 2f64.powi(-23));
        assert_eq!(d(below).to_f32_flushed().to_bits(), 0);
    }
}
