//! `x^y` in `f32` exactly as TensorFlow computes it, hence as Keras' Adam/AdamW computes `β^t`.
//!
//! Keras 3 evaluates `ops.power(β, t)` on float32 scalars. On TensorFlow (x86-64, glibc) that is
//! glibc's `powf`: the ARM *optimized-routines* algorithm (also in musl ≥ 1.1.20), with every
//! result that lands in the subnormal range flushed to zero, because TensorFlow runs its kernels
//! in flush-to-zero mode. [`powf`] is that algorithm, written from its description:
//!
//! ```text
//! x = 2^k · z,  z ∈ [0x3f330000, 2·0x3f330000) as f32 bits   (z ≈ [0.70, 1.40))
//! log2 x = k + log2 c_i + log1p(r)/ln 2,   r = z·(1/c_i) − 1,  c_i the centre of z's 1/16 subinterval
//! log1p(r)/ln 2 ≈ A0 r⁵ + A1 r⁴ + A2 r³ + A3 r² + A4 r        (degree 5, in f64)
//! y·log2 x = k'/32 + s,  |s| ≤ 1/64,   k' = round(32 · y·log2 x)
//! 2^(y·log2 x) = 2^(k'/32) · (C0 s³ + C1 s² + C2 s + 1)         (2^(j/32) from a 32-entry table)
//! result = f32(that double), then ±0 if it is subnormal (flush to zero)
//! ```
//!
//! Everything between the f32 input and the f32 output is IEEE double arithmetic, evaluated in
//! one fixed order with no fused multiply-add (Rust never fuses), so every target computes the
//! same bits — on a Cortex-M0 or M4F through the compiler's soft-float `f64` routines. The
//! 16-entry `log2` table, the 32-entry `exp2` table and the two polynomials are the published
//! constants of that algorithm (glibc `e_powf_log2_data.c`, `e_exp2f_data.c`; musl
//! `powf_data.c`, `exp2f_data.c`; ARM optimized-routines `math/`), written below as bit patterns
//! with the hexadecimal float of the source next to each. Its error is ≤ 0.82 ULP before the
//! final rounding. This is **not** `libm::powf` (the older FreeBSD algorithm, which gives
//! `0.9³ = 0x3f3a9fbe` where Keras has `0x3f3a9fbd`), nor correctly rounded `pow`.
//!
//! Checked against Keras 3.15.1 / TensorFlow 2.21: every one of the 19,800 values of
//! `adam_power_k3.json` (six β, every `t` up to 3,000 and 300 larger `t` up to 10⁶) bit for bit,
//! on the host and on a Cortex-M4F and a Cortex-M0 under QEMU (`tests/tests/powf_on_chip.rs`).
//!
//! Inputs whose bits are subnormal are handled as glibc does (normalised first); TensorFlow's
//! "denormals are zero" input mode is not modelled (no Keras optimizer raises a subnormal β).

/// `(1/c, log2 c)` for the 16 subintervals of `z` (glibc `__powf_log2_data.tab`).
const LOG2_TAB: [(f64, f64); 16] = [
    (b(0x3ff6_61ec_79f8_f3be), b(0xbfde_fec6_5b96_3019)), // 0x1.661ec79f8f3bep+0, -0x1.efec65b963019p-2
    (b(0x3ff5_71ed_4aaf_883d), b(0xbfdb_0b68_32d4_fca4)), // 0x1.571ed4aaf883dp+0, -0x1.b0b6832d4fca4p-2
    (b(0x3ff4_9539_f0f0_10b0), b(0xbfd7_418b_0a1f_b77b)), // 0x1.49539f0f010bp+0,  -0x1.7418b0a1fb77bp-2
    (b(0x3ff3_c995_b0b8_0385), b(0xbfd3_9de9_1a6d_cf7b)), // 0x1.3c995b0b80385p+0, -0x1.39de91a6dcf7bp-2
    (b(0x3ff3_0d19_0c88_64a5), b(0xbfd0_1d9b_f3f2_b631)), // 0x1.30d190c8864a5p+0, -0x1.01d9bf3f2b631p-2
    (b(0x3ff2_5e22_7b0b_8ea0), b(0xbfc9_7c1d_1b3b_7af0)), // 0x1.25e227b0b8eap+0,  -0x1.97c1d1b3b7afp-3
    (b(0x3ff1_bb4a_4a1a_343f), b(0xbfc2_f9e3_93af_3c9f)), // 0x1.1bb4a4a1a343fp+0, -0x1.2f9e393af3c9fp-3
    (b(0x3ff1_2358_f08a_e5ba), b(0xbfb9_60cb_bf78_8d5c)), // 0x1.12358f08ae5bap+0, -0x1.960cbbf788d5cp-4
    (b(0x3ff0_953f_4199_00a7), b(0xbfaa_6f9d_b647_5fce)), // 0x1.0953f419900a7p+0, -0x1.a6f9db6475fcep-5
    (b(0x3ff0_0000_0000_0000), b(0x0000_0000_0000_0000)), // 0x1p+0,               0x0p+0
    (b(0x3fee_608c_fd9a_47ac), b(0x3fb3_38ca_9f24_f53d)), // 0x1.e608cfd9a47acp-1, 0x1.338ca9f24f53dp-4
    (b(0x3fec_a4b3_1f02_6aa0), b(0x3fc4_76a9_5438_91ba)), // 0x1.ca4b31f026aap-1,  0x1.476a9543891bap-3
    (b(0x3feb_2036_576a_fce6), b(0x3fce_840b_4ac4_e4d2)), // 0x1.b2036576afce6p-1, 0x1.e840b4ac4e4d2p-3
    (b(0x3fe9_c2d1_63a1_aa2d), b(0x3fd4_0645_f0c6_651c)), // 0x1.9c2d163a1aa2dp-1, 0x1.40645f0c6651cp-2
    (b(0x3fe8_86e6_0378_41ed), b(0x3fd8_8e9c_2c1b_9ff8)), // 0x1.886e6037841edp-1, 0x1.88e9c2c1b9ff8p-2
    (b(0x3fe7_67dc_f553_4862), b(0x3fdc_e0a4_4eb1_7bcc)), // 0x1.767dcf5534862p-1, 0x1.ce0a44eb17bccp-2
];

/// `log1p(r)/ln 2 ≈ A0 r⁵ + A1 r⁴ + A2 r³ + A3 r² + A4 r` (glibc `__powf_log2_data.poly`).
const A: [f64; 5] = [
    b(0x3fd2_7616_c949_6e0b), // 0x1.27616c9496e0bp-2
    b(0xbfd7_1969_a075_c67a), // -0x1.71969a075c67ap-2
    b(0x3fde_c70a_6ca7_badd), // 0x1.ec70a6ca7baddp-2
    b(0xbfe7_1547_48be_f6c8), // -0x1.7154748bef6c8p-1
    b(0x3ff7_1547_652a_b82b), // 0x1.71547652ab82bp0
];

/// `bits(2^(i/32)) − (i << 47)` (glibc `__exp2f_data.tab`): adding `k << 47` to entry `k mod 32`
/// gives the bits of `2^(k/32)` for `|k| < 150·32`.
const EXP2_TAB: [u64; 32] = [
    0x3ff0_0000_0000_0000,
    0x3fef_d9b0_d315_8574,
    0x3fef_b558_6cf9_890f,
    0x3fef_9301_d012_5b51,
    0x3fef_72b8_3c7d_517b,
    0x3fef_5487_3168_b9aa,
    0x3fef_387a_6e75_6238,
    0x3fef_1e9d_f51f_dee1,
    0x3fef_06fe_0a31_b715,
    0x3fee_f1a7_373a_a9cb,
    0x3fee_dea6_4c12_3422,
    0x3fee_ce08_6061_892d,
    0x3fee_bfda_d536_2a27,
    0x3fee_b42b_569d_4f82,
    0x3fee_ab07_dd48_5429,
    0x3fee_a47e_b03a_5585,
    0x3fee_a09e_667f_3bcd,
    0x3fee_9f75_e8ec_5f74,
    0x3fee_a114_73eb_0187,
    0x3fee_a589_994c_ce13,
    0x3fee_ace5_422a_a0db,
    0x3fee_b737_b0cd_c5e5,
    0x3fee_c491_82a3_f090,
    0x3fee_d503_b23e_255d,
    0x3fee_e89f_995a_d3ad,
    0x3fee_ff76_f2fb_5e47,
    0x3fef_199b_dd85_529c,
    0x3fef_3720_dcef_9069,
    0x3fef_5818_dcfb_a487,
    0x3fef_7c97_337b_9b5f,
    0x3fef_a4af_a2a4_90da,
    0x3fef_d076_5b6e_4540,
];

/// `2^s ≈ C0 s³ + C1 s² + C2 s + 1` for `|s| ≤ 1/64` (glibc `__exp2f_data.poly`).
const C: [f64; 3] = [
    b(0x3fac_6af8_4b91_2394), // 0x1.c6af84b912394p-5
    b(0x3fce_bfce_50fa_c4f3), // 0x1.ebfce50fac4f3p-3
    b(0x3fe6_2e42_ff0c_52d6), // 0x1.62e42ff0c52d6p-1
];

/// `0x1.8p52 / 32`: adding it rounds a double to a multiple of 1/32 and leaves `k` in the low bits.
const SHIFT: f64 = b(0x42e8_0000_0000_0000);
/// `z`'s subinterval boundary, as f32 bits (`≈ 0.6992`).
const OFF: u32 = 0x3f33_0000;
/// Added to `k` so that `k << 47` also sets the sign bit of `2^(k/32)`.
const SIGN_BIAS: u64 = 1 << (5 + 11);
/// `|y·log2 x|` at or above this (compared on the top 16 bits below the sign) may over/underflow.
const BIG: f64 = 126.0;
/// Above this `|x^y|` rounds to `> f32::MAX`.
const OVERFLOW: f64 = b(0x405f_ffff_ffd1_d571); // 0x1.fffffffd1d571p+6
/// At or below this `|x^y| < 2^-150`: zero.
const UNDERFLOW: f64 = -150.0;

mod dbl;
mod fast;

const fn b(bits: u64) -> f64 {
    f64::from_bits(bits)
}

/// `x^y` as TensorFlow's float32 `pow` (glibc / optimized-routines `powf`, subnormal results
/// flushed to ±0): see the [module documentation](self) for the formula.
///
/// IEEE special cases as C's `powf`: `x^0 = 1` and `1^y = 1` (even for NaN), `NaN` in → NaN
/// out, a negative `x` with a non-integer `y` → NaN, `(-x)^odd = -(x^odd)`, `0^-y = ∞`,
/// overflow → ±∞, underflow → ±0.
///
/// ```
/// use microfit_core::math::powf;
/// // Keras/TensorFlow's β^t for Adam's default β1 = 0.9 (adam_power_k3.json).
/// assert_eq!(powf(0.9, 3.0).to_bits(), 0x3f3a_9fbd); // libm::powf gives 0x3f3a9fbe
/// assert_eq!(powf(0.9, 4.0).to_bits(), 0x3f27_f62a);
/// assert_eq!(powf(0.5, 2.0), 0.25);
/// assert_eq!(powf(-2.0, 3.0), -8.0);
/// assert!(powf(-2.0, 0.5).is_nan());
/// // 0.9^1000 ≈ 1.7e-46 is subnormal in f32: TensorFlow flushes it to zero.
/// assert_eq!(powf(0.9, 1000.0).to_bits(), 0);
/// ```
#[inline(always)]
pub fn powf(x: f32, y: f32) -> f32 {
    let ix = x.to_bits();
    if ix.wrapping_sub(0x0080_0000) < 0x7f80_0000 - 0x0080_0000 && ix != 0x3f80_0000 {
        // A positive normal x ≠ 1 (Adam's β): log2 x in f64 — a constant the compiler folds when
        // x is one — and the rest on integers, the same bits without any run-time f64 (`fast`).
        return fast::pow_positive(ix < 0x3f80_0000, log2_inline(ix), y);
    }
    powf_f64(x, y)
}

/// [`powf`]'s integer fast path alone: `Some(powf(x, y))` (the same bits) when it is certain
/// of the result, `None` when [`powf`] would need its exact evaluation — near the midpoint
/// between two floats (probability `2^-21` per call), for a result that is not a normal float
/// or `∞`, or for an `x` that is not positive, normal and `≠ 1`. It links none of that exact
/// evaluation: about 1.7 KB less code on a microcontroller than [`powf`].
///
/// For a firmware whose `β` and number of steps are known when it is built: if
/// [`powf_fast_covers`] holds for each `β` and every step, `powf_fast` gives every `β^t` of the
/// run. Inlined, so that `log2 x` of a constant `x` is a constant.
///
/// ```
/// use microfit_core::math::powf::{powf, powf_fast};
/// assert_eq!(powf_fast(0.9, 3.0).map(f32::to_bits), Some(powf(0.9, 3.0).to_bits()));
/// assert_eq!(powf_fast(-2.0, 3.0), None);
/// ```
#[inline(always)]
pub fn powf_fast(x: f32, y: f32) -> Option<f32> {
    let ix = x.to_bits();
    if ix.wrapping_sub(0x0080_0000) < 0x7f80_0000 - 0x0080_0000 && ix != 0x3f80_0000 {
        return fast::fast_only(log2_inline(ix), y);
    }
    None
}

/// True when [`powf_fast`]`(x, t)` is `Some` with the bits of [`powf`]`(x, t)` for every step
/// `t` in `1..=t_max` (`t` as `f32`, as Adam computes `β^t`): the check a firmware's build runs
/// on the host before it uses [`powf_fast`] for Adam's `β^t` (e.g. `β = 0.9` and `0.999` for
/// the 750 steps of W1).
///
/// ```
/// use microfit_core::math::powf::powf_fast_covers;
/// assert!(powf_fast_covers(0.9, 750) && powf_fast_covers(0.999, 750));
/// assert!(!powf_fast_covers(1.0, 1)); // x = 1 is not the fast path's
/// ```
pub fn powf_fast_covers(x: f32, t_max: u32) -> bool {
    (1..=t_max).all(|t| {
        let t = t as f32;
        powf_fast(x, t).map(f32::to_bits) == Some(powf(x, t).to_bits())
    })
}

/// The `f64` evaluation, flushed: what [`powf`] computes, at the full cost of software `f64` on
/// a microcontroller.
#[inline(never)]
fn powf_f64(x: f32, y: f32) -> f32 {
    flush_subnormal(powf_glibc(x, y))
}

/// `±0` for a subnormal `v` (keeping its sign), `v` otherwise: TensorFlow's flush-to-zero.
#[inline]
fn flush_subnormal(v: f32) -> f32 {
    let bits = v.to_bits();
    if bits & 0x7f80_0000 == 0 {
        f32::from_bits(bits & 0x8000_0000)
    } else {
        v
    }
}

/// 0 when `iy` (f32 bits) is not an integer, 1 when an odd integer, 2 when an even one.
fn checkint(iy: u32) -> u32 {
    let e = (iy >> 23) & 0xff;
    if e < 0x7f {
        return 0;
    }
    if e > 0x7f + 23 {
        return 2;
    }
    let unit = 1u32 << (0x7f + 23 - e);
    if iy & (unit - 1) != 0 {
        0
    } else if iy & unit != 0 {
        1
    } else {
        2
    }
}

/// True for ±0, ±∞ and NaN (f32 bits).
fn zero_inf_nan(i: u32) -> bool {
    i.wrapping_mul(2).wrapping_sub(1) >= 2 * 0x7f80_0000 - 1
}

/// A signalling NaN (f32 bits: exponent all ones, quiet bit clear, payload non-zero).
fn is_signaling(i: u32) -> bool {
    (i & 0x7fc0_0000) == 0x7f80_0000 && (i & 0x003f_ffff) != 0
}

/// glibc's `powf` before the flush to zero.
fn powf_glibc(x: f32, y: f32) -> f32 {
    let mut sign_bias = 0u64;
    let mut ix = x.to_bits();
    let iy = y.to_bits();
    if ix.wrapping_sub(0x0080_0000) >= 0x7f80_0000 - 0x0080_0000 || zero_inf_nan(iy) {
        // x < 0x1p-126, x = ±∞ or NaN, or x < 0; or y = ±0, ±∞ or NaN.
        if zero_inf_nan(iy) {
            if iy.wrapping_mul(2) == 0 {
                return if is_signaling(ix) { x + y } else { 1.0 };
            }
            if ix == 0x3f80_0000 {
                return if is_signaling(iy) { x + y } else { 1.0 };
            }
            if ix.wrapping_mul(2) > 2 * 0x7f80_0000 || iy.wrapping_mul(2) > 2 * 0x7f80_0000 {
                return x + y;
            }
            if ix.wrapping_mul(2) == 2 * 0x3f80_0000 {
                return 1.0;
            }
            if (ix.wrapping_mul(2) < 2 * 0x3f80_0000) == (iy & 0x8000_0000 == 0) {
                return 0.0; // |x| < 1 and y = +∞, or |x| > 1 and y = -∞
            }
            return y * y;
        }
        if zero_inf_nan(ix) {
            let mut x2 = x * x;
            if ix & 0x8000_0000 != 0 && checkint(iy) == 1 {
                x2 = -x2;
            }
            if iy & 0x8000_0000 != 0 {
                return 1.0 / x2; // 0^-y: ±∞ (division by zero)
            }
            return x2;
        }
        // x and y are finite and non-zero.
        if ix & 0x8000_0000 != 0 {
            match checkint(iy) {
                0 => return f32::NAN, // negative base, non-integer exponent
                1 => sign_bias = SIGN_BIAS,
                _ => {}
            }
            ix &= 0x7fff_ffff;
        }
        if ix < 0x0080_0000 {
            // Subnormal x: normalise so that the exponent becomes negative.
            ix = (f32::from_bits(ix) * 8_388_608.0).to_bits(); // · 2^23
            ix &= 0x7fff_ffff;
            ix = ix.wrapping_sub(23 << 23);
        }
    }
    let logx = log2_inline(ix);
    let ylogx = f64::from(y) * logx; // cannot overflow: y is an f32
    if ((ylogx.to_bits() >> 47) & 0xffff) >= (BIG.to_bits() >> 47) {
        // |y·log2 x| ≥ 126.
        if ylogx > OVERFLOW {
            return if sign_bias != 0 {
                f32::NEG_INFINITY
            } else {
                f32::INFINITY
            };
        }
        if ylogx <= UNDERFLOW {
            return if sign_bias != 0 { -0.0 } else { 0.0 };
        }
    }
    exp2_inline(ylogx, sign_bias)
}

/// `log2` of the positive normal f32 with bits `ix`, in f64 (`|error| ≤ 1.5e-9 · |log2 x|`).
/// Always inlined, so that a constant `x` makes it a constant.
#[inline(always)]
fn log2_inline(ix: u32) -> f64 {
    // x = 2^k z, z in [OFF, 2 OFF): the subinterval i and k come from the bits of ix - OFF.
    let tmp = ix.wrapping_sub(OFF);
    let i = ((tmp >> (23 - 4)) % 16) as usize;
    let top = tmp & 0xff80_0000;
    let iz = ix.wrapping_sub(top);
    let k = (top as i32) >> 23; // arithmetic shift: k may be negative
    let (invc, logc) = LOG2_TAB[i];
    let z = f64::from(f32::from_bits(iz));
    // log2(x) = log1p(z/c - 1)/ln2 + log2(c) + k
    let r = z * invc - 1.0;
    let y0 = logc + f64::from(k);
    // The polynomial, in the order of the reference (pipelined): same roundings, same bits.
    let r2 = r * r;
    let mut y = A[0] * r + A[1];
    let p = A[2] * r + A[3];
    let r4 = r2 * r2;
    let mut q = A[4] * r + y0;
    q += p * r2; // (p·r2 + q: addition commutes exactly)
    y = y * r4 + q;
    y
}

/// `2^xd` rounded to f32, negated when `sign_bias` is set (`|xd| < 150`).
#[inline]
fn exp2_inline(xd: f64, sign_bias: u64) -> f32 {
    // xd = k/32 + r with |r| <= 1/64: adding SHIFT rounds to a multiple of 1/32, k in the low bits.
    let mut kd = xd + SHIFT;
    let ki = kd.to_bits();
    kd -= SHIFT;
    let r = xd - kd;
    // 2^xd = 2^(k/32) · 2^r ≈ s · (C0 r³ + C1 r² + C2 r + 1)
    let t = EXP2_TAB[(ki % 32) as usize].wrapping_add(ki.wrapping_add(sign_bias) << (52 - 5));
    let s = f64::from_bits(t);
    let z = C[0] * r + C[1];
    let r2 = r * r;
    let mut y = C[2] * r + 1.0;
    y += z * r2;
    y *= s;
    y as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_cases_follow_c() {
        let nan = f32::NAN;
        let inf = f32::INFINITY;
        assert_eq!(powf(nan, 0.0), 1.0);
        assert_eq!(powf(1.0, nan), 1.0);
        assert!(powf(nan, 1.0).is_nan());
        assert!(powf(2.0, nan).is_nan());
        assert_eq!(powf(0.5, inf), 0.0);
        assert_eq!(powf(2.0, inf), inf);
        assert_eq!(powf(0.5, -inf), inf);
        assert_eq!(powf(-1.0, inf), 1.0);
        assert_eq!(powf(0.0, -1.0), inf);
        assert_eq!(powf(-0.0, -1.0), -inf);
        assert_eq!(powf(-0.0, 3.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(powf(-0.0, 2.0).to_bits(), 0);
        assert_eq!(powf(inf, -2.0), 0.0);
        assert_eq!(powf(-inf, 3.0), -inf);
        assert!(powf(-2.0, 1.5).is_nan());
        assert_eq!(powf(-2.0, 2.0), 4.0);
        assert_eq!(powf(-3.0, 3.0), -27.0);
        assert_eq!(powf(10.0, 100.0), inf);
        assert_eq!(powf(-10.0, 101.0), -inf);
        assert_eq!(powf(10.0, -100.0), 0.0);
        assert_eq!(powf(-10.0, -101.0).to_bits(), (-0.0f32).to_bits());
        // Exact powers of two and small integers.
        assert_eq!(powf(2.0, 10.0), 1024.0);
        assert_eq!(powf(4.0, 0.5), 2.0);
        assert_eq!(powf(2.0, -126.0), f32::MIN_POSITIVE);
        // 2^-127 is subnormal: flushed; plain glibc would return it.
        assert_eq!(powf_glibc(2.0, -127.0), f32::MIN_POSITIVE / 2.0);
        assert_eq!(powf(2.0, -127.0), 0.0);
        assert_eq!(powf(-2.0, -127.0).to_bits(), (-0.0f32).to_bits());
        // A subnormal base is normalised, not treated as 0.
        assert_eq!(powf(f32::from_bits(1), 0.25), powf(2.0, -149.0 / 4.0));
    }

    /// [`powf`] against the plain `f64` evaluation: `(inputs, exact-path calls)`; panics on the
    /// first disagreement.
    fn compare(inputs: impl Iterator<Item = (f32, f32)>) -> (u64, u64) {
        let before = fast::EXACT_CALLS.with(|c| c.get());
        let mut n = 0;
        for (x, y) in inputs {
            n += 1;
            let (p, d) = (powf(x, y), powf_f64(x, y));
            assert!(
                p.to_bits() == d.to_bits() || (p.is_nan() && d.is_nan()),
                "powf({x:e} = {:#010x}, {y:e} = {:#010x}): {p:e}, f64 evaluation {d:e}",
                x.to_bits(),
                y.to_bits()
            );
            if let Some(f) = powf_fast(x, y) {
                assert_eq!(f.to_bits(), d.to_bits(), "powf_fast({x:e}, {y:e})");
            }
        }
        (n, fast::EXACT_CALLS.with(|c| c.get()) - before)
    }

    /// A small deterministic generator (xorshift64*), for random inputs.
    fn bits(state: &mut u64) -> u32 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }

    fn adam_betas(t_max: u32) -> impl Iterator<Item = (f32, f32)> {
        [0.9f32, 0.999, 0.8, 0.99, 0.95, 0.9999, 0.5, 0.7]
            .into_iter()
            .flat_map(move |b| (1..=t_max).map(move |t| (b, t as f32)))
    }

    fn random_inputs(n: u32, seed: u64) -> impl Iterator<Item = (f32, f32)> {
        let mut st = seed;
        (0..n).map(move |i| {
            let x = f32::from_bits(match i % 7 {
                0 => bits(&mut st),                          // any x
                1 | 2 => 0x3f00_0000 | (bits(&mut st) >> 9), // [0.5, 1): Adam's β
                _ => bits(&mut st) & 0x7fff_ffff,            // any positive x
            });
            let y = match i % 3 {
                0 => f32::from_bits(bits(&mut st)),                    // any y
                1 => (bits(&mut st) % 2_000_000) as f32 - 1_000_000.0, // integers
                _ => f32::from_bits((bits(&mut st) & 0x807f_ffff) | 0x3f00_0000) * 64.0, // |y| < 128
            };
            (x, y)
        })
    }

    #[test]
    fn integer_evaluation_agrees_with_the_f64_evaluation() {
        // Debug builds are slow: the long run is `integer_evaluation_agrees_long` (release).
        // The exact path runs with probability 2^-21 (near a float midpoint), and when β^t is
        // within 2^-23 of 2^-126.
        let (n, exact) = compare(adam_betas(20_000));
        assert!(n == 160_000 && exact < 5, "exact path taken {exact} of {n}");
        compare(random_inputs(300_000, 0x9e37_79b9_7f4a_7c15));
    }

    /// `cargo test -p microfit-core --release --lib -- --ignored integer_evaluation_agrees_long`
    #[test]
    #[ignore = "long: 8 betas x 10^6 steps and 10^8 random inputs (release build)"]
    fn integer_evaluation_agrees_long() {
        let (n, exact) = compare(adam_betas(1_000_000));
        println!("adam betas: {n} inputs, exact path {exact}");
        let (n, exact) = compare(random_inputs(100_000_000, 42));
        println!("random: {n} inputs, exact path {exact}");
    }

    #[test]
    fn fast_path_covers_the_benchmark_runs() {
        // Keras' default betas, for the firmware's runs (W1: 750 steps) and far longer ones:
        // 0.999^6509 is the first of them that needs the exact evaluation.
        assert!(powf_fast_covers(0.9, 20_000) && powf_fast_covers(0.999, 6508));
        assert!(!powf_fast_covers(0.999, 6509));
        assert_eq!(powf_fast(0.999, 6509.0), None);
        // Outside the fast path: x = 1, x ≤ 0, subnormal x, and results that are not normal.
        assert!(!powf_fast_covers(1.0, 1) && !powf_fast_covers(-0.5, 1));
        assert!(!powf_fast_covers(f32::from_bits(1), 1) && !powf_fast_covers(2.0, 200));
        assert_eq!(powf_fast(2.0, 128.0), None); // overflow: the exact path's
        assert_eq!(powf_fast(0.5, 127.0), Some(0.0)); // 2^-127: flushed
    }

    #[test]
    fn agrees_with_libm_within_one_ulp() {
        // libm::powf is within 1 ULP of the true value and so is this one (≤ 0.82 ULP).
        for i in 0..2000u32 {
            let x = 0.01 + i as f32 * 0.0123;
            for y in [0.5f32, 1.5, 3.0, 7.25, -2.0, 17.0] {
                let a = powf(x, y);
                let b = libm::powf(x, y);
                if a.is_finite() && b.is_finite() && a.abs() >= f32::MIN_POSITIVE {
                    let d = (a.to_bits() as i64 - b.to_bits() as i64).abs();
                    assert!(d <= 1, "powf({x}, {y}) = {a:e} vs libm {b:e}");
                }
            }
        }
    }
}
