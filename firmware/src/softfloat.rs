//! IEEE 754 single-precision arithmetic in integer operations, tuned for the Cortex-M0: add,
//! subtract, multiply, divide and the comparisons, on the bits of `f32`s.
//!
//! A Cortex-M0 has no FPU, so every `f32` operation calls a run-time routine (`__aeabi_fadd`,
//! `__aeabi_fmul`, ...). compiler-builtins' generic routines spend about 60 instructions per
//! addition and 90 per multiplication there (its 48-bit product goes through `__aeabi_lmul`, a
//! full 64 × 64 multiplication). These compute the same results in fewer: a fast path for normal
//! numbers, the 24 × 24-bit product from four 12 × 12-bit multiplications (`muls` keeps only the
//! low 32 bits of a product), no calls. [`crate::aeabi`] installs them as the `__aeabi_*`
//! symbols of `thumbv6m` builds.
//!
//! Every result is the correctly rounded IEEE 754 one (round to nearest, ties to even; subnormal
//! inputs and results; ±0; ±∞), so the bits are the same as an FPU's and the host's. NaN results
//! follow compiler-builtins exactly (a NaN operand comes back quieted, `a`'s first — without its
//! sign for an addition, with it for a product or a quotient; an invalid operation gives
//! `0x7fc0_0000`), so that nothing the firmware prints can differ from a build without these
//! routines. Tests: the host checks them against its own IEEE arithmetic on
//! millions of pairs (`cargo test -p microfit-firmware`); the `softfloat-check` firmware checks
//! them against compiler-builtins itself on the Cortex-M0 under QEMU
//! (`tests/tests/softfloat_m0.rs`).
//!
//! ```
//! use microfit_firmware::softfloat::{add, mul};
//! let (a, b) = (0.1f32, 0.2f32);
//! assert_eq!(add(a.to_bits(), b.to_bits()), (a + b).to_bits());
//! assert_eq!(mul(a.to_bits(), b.to_bits()), (a * b).to_bits());
//! ```

const SIGN: u32 = 0x8000_0000;
const INF: u32 = 0x7f80_0000;
const QUIET: u32 = 0x0040_0000;
/// The NaN of an invalid operation (∞ − ∞, 0 · ∞, 0 / 0, ∞ / ∞), as compiler-builtins returns it.
const QNAN: u32 = 0x7fc0_0000;

/// `a + b`.
#[inline(always)]
pub fn add(a: u32, b: u32) -> u32 {
    let (aa, ba) = (a & !SIGN, b & !SIGN);
    // Zero, infinity or NaN on either side (`x - 1` wraps for zero).
    if aa.wrapping_sub(1) >= INF - 1 || ba.wrapping_sub(1) >= INF - 1 {
        return add_special(a, b);
    }
    // |x| ≥ |y|: the result has x's sign.
    let (x, y, xa, ya) = if ba > aa {
        (b, a, ba, aa)
    } else {
        (a, b, aa, ba)
    };
    let (mut ex, ey) = (xa >> 23, ya >> 23);
    // Significands with the leading bit at bit 30 and 7 bits below the last place (round bit
    // and sticky bits); a subnormal counts as exponent 1 without the leading bit.
    let mx = unpack7(xa, ex);
    let my = unpack7(ya, ey);
    ex = ex.max(1);
    let d = ex - ey.max(1);
    // y aligned to x, the bits shifted out kept as a sticky bit.
    let my = if d == 0 {
        my
    } else if d < 31 {
        (my >> d) | u32::from(my << (32 - d) != 0)
    } else {
        1
    };
    let mut s;
    if (x ^ y) & SIGN == 0 {
        s = mx + my;
        if s >= 1 << 31 {
            s = (s >> 1) | (s & 1);
            ex += 1;
            if ex >= 255 {
                return (x & SIGN) | INF;
            }
        }
    } else {
        s = mx - my;
        if s == 0 {
            return 0; // x - x = +0 when rounding to nearest
        }
        if s < 1 << 30 {
            // Cancellation: bring the leading bit back to bit 30, but not below exponent 1
            // (the result is then subnormal).
            let n = (leading_zeros(s) - 1).min(ex - 1);
            s <<= n;
            ex -= n;
        }
    }
    round_pack(x & SIGN, ex, s)
}

/// `a - b` (= `a + (-b)`, as compiler-builtins computes it, NaN signs included).
#[inline(always)]
pub fn sub(a: u32, b: u32) -> u32 {
    add(a, b ^ SIGN)
}

/// The significand of a finite `|x|` with exponent field `e`, leading bit at bit 30, 7 bits
/// below the last place.
#[inline(always)]
fn unpack7(xa: u32, e: u32) -> u32 {
    if e != 0 {
        ((xa << 8) | SIGN) >> 1
    } else {
        xa << 7
    }
}

/// Packs sign, exponent `e ≥ 1` and a significand `s` with its leading bit at bit 30 (or below
/// for a subnormal result, then `e = 1`) and 7 extra bits, rounded to nearest, ties to even. The
/// leading bit is added into the exponent field (`(e - 1) << 23` plus a significand of `2²³…`),
/// so a subnormal (no leading bit) gets exponent 0, and a rounding carry moves into the
/// exponent, up to ∞.
#[inline(always)]
fn round_pack(sign: u32, e: u32, s: u32) -> u32 {
    let r = sign | (((e - 1) << 23) + (s >> 7));
    let g = s & 0x7f;
    if g > 0x40 || (g == 0x40 && r & 1 != 0) {
        r + 1
    } else {
        r
    }
}

/// Number of leading zero bits of `x > 0`, in five steps (the Cortex-M0 has no `clz`).
#[inline(always)]
fn leading_zeros(mut x: u32) -> u32 {
    let mut n = 0;
    if x < 1 << 16 {
        n += 16;
        x <<= 16;
    }
    if x < 1 << 24 {
        n += 8;
        x <<= 8;
    }
    if x < 1 << 28 {
        n += 4;
        x <<= 4;
    }
    if x < 1 << 30 {
        n += 2;
        x <<= 2;
    }
    if x < 1 << 31 {
        n += 1;
    }
    n
}

/// [`add`] when an operand is zero, infinite or NaN (compiler-builtins' rules; its addition
/// returns a NaN operand's magnitude, quieted: the sign is dropped).
#[inline(never)]
fn add_special(a: u32, b: u32) -> u32 {
    let (aa, ba) = (a & !SIGN, b & !SIGN);
    if aa > INF {
        aa | QUIET
    } else if ba > INF {
        ba | QUIET
    } else if aa == INF {
        if a ^ b == SIGN { QNAN } else { a }
    } else if ba == INF {
        b
    } else if aa == 0 {
        if ba == 0 { a & b } else { b }
    } else {
        a
    }
}

/// `a · b`.
#[inline(always)]
pub fn mul(a: u32, b: u32) -> u32 {
    let (ea, eb) = ((a >> 23) & 0xff, (b >> 23) & 0xff);
    // Zero, subnormal, infinity or NaN on either side.
    if ea.wrapping_sub(1) >= 254 || eb.wrapping_sub(1) >= 254 {
        return mul_special(a, b);
    }
    let sign = (a ^ b) & SIGN;
    mul_normal(
        sign,
        (ea + eb) as i32,
        (a & 0x7f_ffff) | 0x80_0000,
        (b & 0x7f_ffff) | 0x80_0000,
    )
}

/// The product of two significands in `[2²³, 2²⁴)` as `(high, low)`: `ma · mb = high · 2²⁴ +
/// low`, `low < 2²⁴`. Four 12 × 12-bit products, each fits in 32 bits (`muls`).
#[inline(always)]
fn mul24(ma: u32, mb: u32) -> (u32, u32) {
    let (a1, a0) = (ma >> 12, ma & 0xfff);
    let (b1, b0) = (mb >> 12, mb & 0xfff);
    let mid = a1 * b0 + a0 * b1; // < 2²⁵
    let t = a0 * b0 + ((mid & 0xfff) << 12); // < 2²⁵
    (a1 * b1 + (mid >> 12) + (t >> 24), t & 0xff_ffff)
}

/// The product of significands `ma`, `mb` in `[2²³, 2²⁴)` with biased exponents summing to
/// `e2` (either may be ≤ 0 for a normalized subnormal), rounded and packed.
#[inline(always)]
fn mul_normal(sign: u32, e2: i32, ma: u32, mb: u32) -> u32 {
    let (h, l) = mul24(ma, mb);
    // The product is in [2⁴⁶, 2⁴⁸): keep 24 bits (m) and the 24 below them (rest).
    let (m, rest, e) = if h >= 1 << 23 {
        (h, l, e2 - 126)
    } else {
        ((h << 1) | (l >> 23), (l << 1) & 0xff_ffff, e2 - 127)
    };
    if e >= 255 {
        return sign | INF;
    }
    if e <= 0 {
        return mul_subnormal(sign, e, m, rest);
    }
    let r = sign | ((((e - 1) as u32) << 23) + m);
    if rest > 0x80_0000 || (rest == 0x80_0000 && r & 1 != 0) {
        r + 1
    } else {
        r
    }
}

/// A product below the smallest normal: `m · 2^(e - 150)` plus `rest` below `m`'s last place,
/// shifted to exponent 1 and rounded (ties to even); ±0 when nothing is left.
#[inline(never)]
fn mul_subnormal(sign: u32, e: i32, m: u32, rest: u32) -> u32 {
    let shift = (1 - e) as u32;
    if shift > 24 {
        return sign; // below half the smallest subnormal (m < 2²⁴): rounds to zero
    }
    let q = m >> shift;
    let round = (m >> (shift - 1)) & 1 != 0;
    let sticky = m & ((1 << (shift - 1)) - 1) != 0 || rest != 0;
    let r = sign | q;
    if round && (sticky || q & 1 != 0) {
        r + 1
    } else {
        r
    }
}

/// `(exponent, significand)` of a finite non-zero `|x|`, the significand in `[2²³, 2²⁴)`; a
/// subnormal's exponent is `1 - shift` (≤ 0).
#[inline(always)]
fn normalize(xa: u32) -> (i32, u32) {
    let e = xa >> 23;
    if e != 0 {
        return (e as i32, (xa & 0x7f_ffff) | 0x80_0000);
    }
    let shift = leading_zeros(xa) - 8;
    (1 - shift as i32, xa << shift)
}

/// [`mul`] when an operand is zero, subnormal, infinite or NaN (compiler-builtins' rules).
#[inline(never)]
fn mul_special(a: u32, b: u32) -> u32 {
    let (aa, ba) = (a & !SIGN, b & !SIGN);
    let sign = (a ^ b) & SIGN;
    if aa > INF {
        return a | QUIET;
    }
    if ba > INF {
        return b | QUIET;
    }
    if aa == INF {
        return if ba != 0 { aa | sign } else { QNAN };
    }
    if ba == INF {
        return if aa != 0 { ba | sign } else { QNAN };
    }
    if aa == 0 || ba == 0 {
        return sign;
    }
    let (ea, ma) = normalize(aa);
    let (eb, mb) = normalize(ba);
    mul_normal(sign, ea + eb, ma, mb)
}

/// `a / b`.
#[inline(always)]
pub fn div(a: u32, b: u32) -> u32 {
    let (aa, ba) = (a & !SIGN, b & !SIGN);
    let sign = (a ^ b) & SIGN;
    let (ea, eb) = (aa >> 23, ba >> 23);
    if ea.wrapping_sub(1) >= 254 || eb.wrapping_sub(1) >= 254 {
        return div_special(a, b);
    }
    div_normal(
        sign,
        ea as i32 - eb as i32,
        (aa & 0x7f_ffff) | 0x80_0000,
        (ba & 0x7f_ffff) | 0x80_0000,
    )
}

/// The quotient of significands `ma`, `mb` in `[2²³, 2²⁴)` with biased exponent difference
/// `de`, rounded and packed: 25 quotient bits by restoring division, the remainder as sticky.
#[inline(never)]
fn div_normal(sign: u32, de: i32, ma: u32, mb: u32) -> u32 {
    let (mut r, mut e) = (ma, de + 127);
    if r < mb {
        r <<= 1;
        e -= 1;
    }
    // r / mb in [1, 2): 25 bits of it (24 and the round bit).
    let mut q = 0u32;
    for _ in 0..25 {
        q <<= 1;
        if r >= mb {
            r -= mb;
            q |= 1;
        }
        r <<= 1;
    }
    if e >= 255 {
        return sign | INF;
    }
    // q = m · 2 + round bit, m in [2²³, 2²⁴).
    let (m, round, sticky) = (q >> 1, q & 1 != 0, r != 0);
    if e <= 0 {
        // Subnormal: m · 2^(e - 150) plus (round, sticky) below it, as in `mul_subnormal`.
        let rest = if round { 0x80_0000 } else { 0 } | u32::from(sticky);
        return mul_subnormal(sign, e, m, rest);
    }
    let r = sign | ((((e - 1) as u32) << 23) + m);
    if round && (sticky || r & 1 != 0) {
        r + 1
    } else {
        r
    }
}

/// [`div`] when an operand is zero, subnormal, infinite or NaN (compiler-builtins' rules).
#[inline(never)]
fn div_special(a: u32, b: u32) -> u32 {
    let (aa, ba) = (a & !SIGN, b & !SIGN);
    let sign = (a ^ b) & SIGN;
    if aa > INF {
        return a | QUIET;
    }
    if ba > INF {
        return b | QUIET;
    }
    if aa == INF {
        return if ba == INF { QNAN } else { aa | sign };
    }
    if ba == INF {
        return sign;
    }
    if aa == 0 {
        return if ba == 0 { QNAN } else { sign };
    }
    if ba == 0 {
        return INF | sign;
    }
    let (ea, ma) = normalize(aa);
    let (eb, mb) = normalize(ba);
    div_normal(sign, ea - eb, ma, mb)
}

/// Whether `x` is a NaN.
#[inline(always)]
pub fn is_nan(x: u32) -> bool {
    x << 1 > INF << 1
}

/// `a == b` (false when either is NaN; `-0 == +0`).
#[inline(always)]
pub fn eq(a: u32, b: u32) -> bool {
    !is_nan(a) && !is_nan(b) && (a == b || (a | b) << 1 == 0)
}

/// `a < b` (false when either is NaN).
#[inline(always)]
pub fn lt(a: u32, b: u32) -> bool {
    if is_nan(a) || is_nan(b) || (a | b) << 1 == 0 {
        return false;
    }
    if a & b & SIGN != 0 {
        a > b // both negative: the larger magnitude is the smaller number
    } else {
        (a as i32) < (b as i32)
    }
}

/// `a <= b` (false when either is NaN).
#[inline(always)]
pub fn le(a: u32, b: u32) -> bool {
    lt(a, b) || eq(a, b)
}

/// Reproducible operand bits for checking these routines (xorshift), biased towards the cases
/// that break float code: nearby exponents (cancellation, ties), subnormals, tiny and huge
/// exponents, zeros, infinities and NaNs. The host tests and the `softfloat-check` firmware draw
/// the same sequence.
#[derive(Debug, Clone)]
pub struct Operands(u64);

impl Operands {
    /// The sequence of `seed` (not 0).
    pub const fn new(seed: u64) -> Self {
        Operands(seed)
    }

    /// 32 random bits.
    pub fn bits(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }

    /// The bits of a random `f32`, biased as described above.
    pub fn float(&mut self) -> u32 {
        let r = self.bits();
        let sign = r & SIGN;
        match self.bits() % 16 {
            0 => sign | (r & 0x7f_ffff),                             // subnormal
            1 => sign | ((self.bits() % 4) << 23) | (r & 0x7f_ffff), // tiny
            2 => sign | ((251 + self.bits() % 4) << 23) | (r & 0x7f_ffff), // huge
            3 => [0, SIGN, INF, INF | SIGN, QNAN, 0x7f80_0001, 0xffc0_1234][r as usize % 7],
            4 => sign | (127 << 23) | (r & 0xf), // near 1 with few bits: ties
            5..=9 => sign | ((120 + self.bits() % 16) << 23) | (r & 0x7f_ffff), // ML range
            _ => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our result must be the host's IEEE result, bit for bit; when the host says NaN, a NaN.
    fn check(op: &str, a: u32, b: u32, ours: u32, host: f32) {
        if host.is_nan() {
            assert!(
                is_nan(ours),
                "{op}({a:#010x}, {b:#010x}) = {ours:#010x}, host NaN"
            );
        } else {
            assert_eq!(
                ours,
                host.to_bits(),
                "{op}({a:#010x}, {b:#010x}) = {ours:#010x}, host {:#010x}",
                host.to_bits()
            );
        }
    }

    fn all_ops(a: u32, b: u32) {
        let (x, y) = (f32::from_bits(a), f32::from_bits(b));
        check("add", a, b, add(a, b), x + y);
        check("sub", a, b, sub(a, b), x - y);
        check("mul", a, b, mul(a, b), x * y);
        check("div", a, b, div(a, b), x / y);
        assert_eq!(eq(a, b), x == y, "eq({a:#010x}, {b:#010x})");
        assert_eq!(lt(a, b), x < y, "lt({a:#010x}, {b:#010x})");
        assert_eq!(le(a, b), x <= y, "le({a:#010x}, {b:#010x})");
        assert_eq!(is_nan(a), x.is_nan());
    }

    /// 4 million random pairs (biased towards edge cases) against the host's IEEE arithmetic.
    #[test]
    fn random_pairs_match_ieee() {
        let mut rng = Operands::new(0x9e37_79b9_7f4a_7c15);
        for _ in 0..4_000_000 {
            let (a, b) = (rng.float(), rng.float());
            all_ops(a, b);
        }
    }

    /// Every pair of a list of edge values: zeros, the smallest and largest subnormals and
    /// normals, one and its neighbours, infinities, NaNs.
    #[test]
    fn edge_pairs_match_ieee() {
        let mut edges = vec![
            0,
            1,
            2,
            3,
            0x7f_ffff,
            0x80_0000,
            0x80_0001,
            0xff_ffff,
            0x3f80_0000,
            0x3f80_0001,
            0x3f7f_ffff,
            0x4000_0000,
            0x3f00_0000,
            0x7f7f_ffff,
            0x7f7f_fffe,
            0x7f00_0000,
            INF,
            QNAN,
            0x7f80_0001,
            0x0040_0000,
            0x3400_0000,
            0x3380_0000,
            0x4b00_0000,
            0x4b80_0000,
            0x1f80_0000,
            0x5f80_0000,
            0x2000_0000,
            0x6000_0000,
        ];
        edges.extend(edges.clone().iter().map(|e| e | SIGN));
        for &a in &edges {
            for &b in &edges {
                all_ops(a, b);
            }
        }
    }

    /// NaN results follow compiler-builtins' rules (as the `softfloat-check` firmware observed
    /// them on the M0): the first NaN operand quieted, with its payload; without its sign for a
    /// sum, with it for a product or a quotient; `0x7fc00000` for an invalid operation.
    #[test]
    fn nan_results_follow_compiler_builtins() {
        let (n1, n2) = (0x7f80_0001, 0xff80_0002);
        let one = 0x3f80_0000;
        assert_eq!(add(n1, n2), n1 | QUIET);
        assert_eq!(add(one, n2), (n2 & !SIGN) | QUIET);
        assert_eq!(sub(one, n1), n1 | QUIET);
        assert_eq!(add(INF, INF | SIGN), QNAN);
        assert_eq!(sub(INF, INF), QNAN);
        assert_eq!(mul(n2, n1), n2 | QUIET);
        assert_eq!(mul(INF, 0), QNAN);
        assert_eq!(mul(0, INF | SIGN), QNAN);
        assert_eq!(div(0, 0), QNAN);
        assert_eq!(div(INF, INF), QNAN);
        assert_eq!(div(one, n1), n1 | QUIET);
    }
}
