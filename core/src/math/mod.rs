//! Scalar math used by every kernel, routed to one implementation.
//!
//! By default all transcendental functions come from [`libm`] (a port of musl's libm:
//! `sqrtf` is correctly rounded, `expf`/`logf` are within 1 ULP). Because the same Rust code
//! runs on every target, a host and a microcontroller compute **the same bits**.
//!
//! With the opt-in `fast-math` feature, `exp`, `ln` and `tanh` come from [`micromath`]
//! instead. Its documented accuracy is far lower (micromath quotes about 1e-3 relative
//! error for `exp`/`ln`), and training then no longer matches Keras or the host bit for
//! bit; `sqrt` stays on libm so that Adam keeps its exact denominator.
//!
//! `powf` (Adam's `β^t`, `ExponentialDecay`'s `rate^p`) is TensorFlow's own algorithm, not
//! libm's: see [`powf`](mod@powf).
//!
//! Note: the calls below are written as free functions on purpose. With `std` in the crate
//! graph, `x.sqrt()` would silently resolve to std's inherent method on the host while the
//! MCU ran the libm one; calling `libm::sqrtf` explicitly keeps both identical.
//!
//! [`micromath`]: https://docs.rs/micromath

pub mod powf;
pub mod reduce;

pub use powf::powf;

/// `e^x`.
///
/// ```
/// assert_eq!(microfit_core::math::exp(0.0), 1.0);
/// ```
#[inline]
pub fn exp(x: f32) -> f32 {
    #[cfg(feature = "fast-math")]
    {
        micromath::F32Ext::exp(x)
    }
    #[cfg(not(feature = "fast-math"))]
    {
        // libm's `expf(±0)` is `1 + x = 1`: the same value without the call (a softmax takes
        // one `e^0` per sample, at its maximum).
        if x == 0.0 {
            return 1.0;
        }
        libm::expf(x)
    }
}

/// Natural logarithm.
///
/// ```
/// assert_eq!(microfit_core::math::ln(1.0), 0.0);
/// ```
#[inline]
pub fn ln(x: f32) -> f32 {
    #[cfg(feature = "fast-math")]
    {
        micromath::F32Ext::ln(x)
    }
    #[cfg(not(feature = "fast-math"))]
    {
        libm::logf(x)
    }
}

/// `ln(1 + x)`, accurate for small `x`.
///
/// ```
/// assert_eq!(microfit_core::math::ln_1p(0.0), 0.0);
/// ```
#[inline]
pub fn ln_1p(x: f32) -> f32 {
    libm::log1pf(x)
}

/// Square root (always libm: correctly rounded, identical to a hardware `vsqrt`).
///
/// ```
/// assert_eq!(microfit_core::math::sqrt(4.0), 2.0);
/// ```
#[inline]
pub fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

/// Hyperbolic tangent.
///
/// ```
/// assert_eq!(microfit_core::math::tanh(0.0), 0.0);
/// ```
#[inline]
pub fn tanh(x: f32) -> f32 {
    #[cfg(feature = "fast-math")]
    {
        let e = micromath::F32Ext::exp(2.0 * x);
        if e.is_infinite() {
            1.0
        } else {
            (e - 1.0) / (e + 1.0)
        }
    }
    #[cfg(not(feature = "fast-math"))]
    {
        libm::tanhf(x)
    }
}

/// The Python float a Keras user wrote for the f32 `x`: the shortest decimal with at most 15
/// fractional digits that rounds to `x`, as the nearest f64 (`0.2f32` → `0.2`), or `x` itself
/// when there is none (or `x` is not positive). Keras computes some constants from that float
/// in double precision before casting to float32 — `1 - β` in Adam, `1 / global_clipnorm` — so
/// matching it to the bit needs the decimal, not the f32. Exact f64 arithmetic: the same bits on
/// every target; a `const fn`, so a compile-time `x` costs nothing at run time.
///
/// ```
/// use microfit_core::math::keras_decimal;
/// assert_eq!(keras_decimal(0.2), 0.2f64);
/// assert_ne!(0.2f32 as f64, 0.2f64);
/// assert_eq!(keras_decimal(5.0), 5.0);
/// assert_eq!((1.0 / keras_decimal(0.3)) as f32, (1.0 / 0.3f64) as f32);
/// ```
pub const fn keras_decimal(x: f32) -> f64 {
    let b = x as f64;
    if b.is_nan() || b <= 0.0 || b >= 1e15 {
        return b;
    }
    let mut scale = 1.0f64;
    let mut k = 0;
    while k <= 15 {
        let v = b * scale;
        if v >= 4.5e15 {
            break;
        }
        // 10^k and n < 2^53 are exact doubles, so n / 10^k is the f64 nearest the decimal.
        let t = v as u64 as f64;
        let n = if v - t >= 0.5 { t + 1.0 } else { t };
        let d = n / scale;
        if d as f32 == x {
            return d;
        }
        scale *= 10.0;
        k += 1;
    }
    b
}

/// Largest integer `<= x`.
///
/// ```
/// assert_eq!(microfit_core::math::floor(2.5), 2.0);
/// ```
#[inline]
pub fn floor(x: f32) -> f32 {
    libm::floorf(x)
}

/// `|x|` (bit operation, no libm call).
///
/// ```
/// assert_eq!(microfit_core::math::abs(-2.0), 2.0);
/// ```
#[inline]
pub fn abs(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0x7fff_ffff)
}

/// Keras/TF `sign`: -1, 0 or 1, with `sign(±0) = 0` (so an L1 penalty does not push an exact 0).
///
/// ```
/// use microfit_core::math::sign;
/// assert_eq!((sign(-0.0), sign(0.0), sign(1e-30), sign(-3.0)), (0.0, 0.0, 1.0, -1.0));
/// ```
#[inline]
pub fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// True when no value of `v` is NaN or ±∞.
///
/// On a hard-float Arm (Cortex-M4F) this is `Σ v·0` (one load and one multiply-accumulate per
/// value: `∞·0` and `NaN·0` are NaN, any finite `v·0` is ±0, and a NaN stays in the sum);
/// elsewhere (soft float, hosts) an integer test of the exponent bits. Same answer either way.
///
/// ```
/// use microfit_core::math::all_finite;
/// assert!(all_finite(&[1.0, -0.0, f32::MAX]));
/// assert!(!all_finite(&[1.0, f32::INFINITY]));
/// assert!(!all_finite(&[f32::NAN]));
/// ```
///
/// Never inlined (one copy of the loop; the training step calls it a few times per batch).
/// [`all_finite_inline`] is the same test for hot fixed-size callers.
#[inline(never)]
pub fn all_finite(v: &[f32]) -> bool {
    all_finite_inline(v)
}

/// [`all_finite`], inlined (a fixed-size caller gets it unrolled: the gradient check of every
/// training step).
#[inline]
pub fn all_finite_inline(v: &[f32]) -> bool {
    if cfg!(all(target_arch = "arm", target_abi = "eabihf")) {
        let mut acc = 0.0f32;
        for &x in v {
            acc += x * 0.0;
        }
        !acc.is_nan()
    } else {
        let mut bad = 0u32;
        for x in v {
            bad |= u32::from(x.to_bits() & 0x7f80_0000 == 0x7f80_0000);
        }
        bad == 0
    }
}
