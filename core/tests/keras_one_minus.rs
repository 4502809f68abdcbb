//! `keras_one_minus` is a `const fn` (so a firmware evaluates it at compile time); its own
//! `round` must give exactly the bits of the previous `libm::round`-based version.

use microfit_core::optim::adam::keras_one_minus;

/// The version before the `const fn` rewrite, with `libm::round`.
fn reference(beta: f32) -> f32 {
    let b = f64::from(beta);
    if b > 0.0 && b < 1.0 {
        let mut scale = 1.0f64;
        for _ in 0..15 {
            scale *= 10.0;
            let d = libm::round(b * scale) / scale;
            if d as f32 == beta {
                return (1.0 - d) as f32;
            }
        }
    }
    1.0 - beta
}

#[test]
fn same_bits_as_the_libm_round_version() {
    // Every 1009th f32 in [0, 1], the usual decimals, and the edges.
    let mut n = 0u32;
    let mut bits = 0u32;
    while bits <= 1.0f32.to_bits() {
        let b = f32::from_bits(bits);
        assert_eq!(
            keras_one_minus(b).to_bits(),
            reference(b).to_bits(),
            "beta {b:e}"
        );
        bits += 1009;
        n += 1;
    }
    for k in 1..100_000u32 {
        let b = k as f32 / 100_000.0;
        assert_eq!(
            keras_one_minus(b).to_bits(),
            reference(b).to_bits(),
            "beta {b}"
        );
    }
    for b in [
        0.0f32,
        -0.0,
        0.5,
        0.9,
        0.99,
        0.999,
        0.9999,
        0.95,
        1.0,
        -0.5,
        2.0,
        f32::NAN,
        f32::INFINITY,
    ] {
        assert_eq!(
            keras_one_minus(b).to_bits(),
            reference(b).to_bits(),
            "beta {b}"
        );
    }
    assert!(n > 1_000_000);
}

#[test]
fn evaluates_at_compile_time() {
    const ONE_MINUS: (f32, f32) = (keras_one_minus(0.9), keras_one_minus(0.999));
    assert_eq!(ONE_MINUS, (0.1, 0.001));
}
