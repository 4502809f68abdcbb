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
//! Note: the calls below are written as free functions on purpose. With `std` in the crate
//! graph, `x.sqrt()` would silently resolve to std's inherent method on the host while the
//! MCU ran the libm one; calling `libm::sqrtf` explicitly keeps both identical.
//!
//! [`micromath`]: https://docs.rs/micromath

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

/// `base^exp` in f32 (used for Adam's `beta^t`, as Keras' `ops.power`).
///
/// ```
/// assert_eq!(microfit_core::math::powf(0.5, 2.0), 0.25);
/// ```
#[inline]
pub fn powf(base: f32, exp: f32) -> f32 {
    libm::powf(base, exp)
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
