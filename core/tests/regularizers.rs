//! Regularizers against hand derivations (SEMANTICS.md §1): `tf.nn.l2_loss` equivalence,
//! `sign(±0) = 0` for L1, the skipped zero-factor terms of L1L2, the orthogonal penalty and its
//! gradient on small matrices worked out by hand, and the rejection of invalid factors.

use microfit_core::Error;
use microfit_core::regularizer::{OrthoMode, Reg, Regularizer};
use proptest::prelude::*;

fn grad(r: &Reg, w: &[f32], cols: usize) -> Vec<f32> {
    let mut g = vec![0.0; w.len()];
    r.add_grad(w, cols, &mut g, 1.0);
    g
}

/// `tf.nn.l2_loss(w) = Σw²/2`, so `λ·l2_loss(w)` is `L2(λ/2)`: worked example with exact values.
#[test]
fn l2_loss_equivalence_by_hand() {
    let w = [3.0f32, -1.0, 0.5, 2.0];
    // Σw² = 9 + 1 + 0.25 + 4 = 14.25; l2_loss = 7.125; λ = 0.5 → 3.5625.
    let r = Reg::from_l2_loss(0.5);
    assert_eq!(r, Reg::L2 { l2: 0.25 });
    assert_eq!(r.penalty(&w, 4), 3.5625);
    // d/dw λ·Σw²/2 = λ·w.
    assert_eq!(grad(&r, &w, 4), [1.5, -0.5, 0.25, 1.0]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// For any weights and λ: `Reg::from_l2_loss(λ)` gives `λ·(Σw²/2)` and `λ·w` to the bit
    /// (halving is exact, so `(λ/2)·S` and `λ·(S/2)` round the same real number once).
    #[test]
    fn l2_loss_equivalence(w in prop::collection::vec(-100.0f32..100.0, 1..20), lambda in 1e-4f32..10.0) {
        let r = Reg::from_l2_loss(lambda);
        // Σw² in the core's documented order: eight interleaved partial sums, combined pairwise.
        let mut p = [0.0f32; 8];
        for (i, v) in w.iter().enumerate() {
            p[i % 8] += v * v;
        }
        let s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
        let l2_loss = s / 2.0;
        prop_assert_eq!(r.penalty(&w, w.len()).to_bits(), (lambda * l2_loss).to_bits());
        let g = grad(&r, &w, w.len());
        for (gi, wi) in g.iter().zip(&w) {
            // The gradient buffer starts at +0, so `0 + λ·w` (`+0` for `w = -0`).
            prop_assert_eq!(gi.to_bits(), (0.0 + lambda * wi).to_bits());
        }
    }

    /// L1L2 with one zero factor is exactly the other regularizer (the zero term is skipped).
    #[test]
    fn l1l2_with_a_zero_factor_is_the_other_term(w in prop::collection::vec(-10.0f32..10.0, 1..20), f in 1e-4f32..1.0) {
        let n = w.len();
        prop_assert_eq!(Reg::l1l2(f, 0.0).penalty(&w, n).to_bits(), Reg::l1(f).penalty(&w, n).to_bits());
        prop_assert_eq!(Reg::l1l2(0.0, f).penalty(&w, n).to_bits(), Reg::l2(f).penalty(&w, n).to_bits());
        let bits = |g: Vec<f32>| g.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(grad(&Reg::l1l2(f, 0.0), &w, n)), bits(grad(&Reg::l1(f), &w, n)));
        prop_assert_eq!(bits(grad(&Reg::l1l2(0.0, f), &w, n)), bits(grad(&Reg::l2(f), &w, n)));
    }
}

/// `d|x|/dx = sign(x)` with `sign(±0) = 0` (TF's AbsGrad): an exact 0 gets no push.
#[test]
fn l1_gradient_at_plus_and_minus_zero_is_zero() {
    let w = [0.0f32, -0.0, 1e-30, -1e-30, 2.0, -2.0];
    assert_eq!(grad(&Reg::l1(0.3), &w, 6), [0.0, 0.0, 0.3, -0.3, 0.3, -0.3]);
    // Through L1L2 as well, where the L2 part is 2·l2·0 = 0.
    assert_eq!(grad(&Reg::l1l2(0.3, 0.5), &[0.0, -0.0], 2), [0.0, 0.0]);
    // The penalty of ±0 is 0.
    assert_eq!(Reg::l1(0.3).penalty(&[0.0, -0.0], 2), 0.0);
}

/// A zero factor skips its term entirely, which is observable where the term would overflow:
/// `0 · ∞` would be NaN.
#[test]
fn l1l2_zero_factor_skips_its_term() {
    let big = [1e30f32, -1e30];
    // Σw² overflows to ∞ in f32; l2 = 0 must not turn it into NaN.
    assert_eq!(Reg::l1l2(0.01, 0.0).penalty(&big, 2), 0.01 * 2e30);
    assert!(Reg::l1l2(0.01, 1e-3).penalty(&big, 2).is_infinite());
    // Both zero: the penalty is 0 even on infinite weights (Keras starts from 0.0 and adds nothing).
    assert_eq!(
        Reg::l1l2(0.0, 0.0).penalty(&[f32::INFINITY, f32::NEG_INFINITY], 2),
        0.0
    );
    assert_eq!(grad(&Reg::l1l2(0.0, 0.0), &[f32::INFINITY], 1), [0.0]);
    // l1 = 0 skips the L1 term, so its gradient does not see the sign at all.
    assert_eq!(grad(&Reg::l1l2(0.0, 0.5), &[-4.0], 1), [-4.0]);
}

/// L1 and L2 values and gradients by hand.
#[test]
fn l1_and_l2_by_hand() {
    let w = [1.5f32, -2.0, 0.0, 0.25];
    // L1: 0.1·(1.5 + 2 + 0 + 0.25) = 0.375.
    assert_eq!(Reg::l1(0.1).penalty(&w, 4), 0.1 * 3.75);
    // L2 (no ½): 0.5·(2.25 + 4 + 0 + 0.0625) = 3.15625.
    assert_eq!(Reg::l2(0.5).penalty(&w, 4), 3.15625);
    assert_eq!(grad(&Reg::l2(0.5), &w, 4), [1.5, -2.0, 0.0, 0.25]);
    // `scale` multiplies the gradient (activity penalties use 1/B).
    let mut g = [1.0f32; 4];
    Reg::l2(0.5).add_grad(&w, 4, &mut g, 0.5);
    assert_eq!(g, [1.75, 0.0, 1.0, 1.125]);
}

/// OrthogonalRegularizer: `factor · ½ Σ_{i≠j} |P_ij| / (n(n-1)/2)`, `P = N Nᵀ`.
#[test]
fn orthogonal_by_hand() {
    let f = 0.1f32;
    let rows = Reg::try_orthogonal(f, OrthoMode::Rows).unwrap();
    let cols = Reg::try_orthogonal(f, OrthoMode::Columns).unwrap();
    // Orthonormal rows: no penalty, no gradient.
    let eye = [1.0f32, 0.0, 0.0, 1.0];
    assert_eq!(rows.penalty(&eye, 2), 0.0);
    assert_eq!(grad(&rows, &eye, 2), [0.0; 4]);
    // Rows x1 = (2, 0), x2 = (1, 1): N1 = (1, 0), N2 = (1, 1)/√2, P12 = P21 = 1/√2, n = 2, one pair:
    // penalty = f·½·(2/√2)/1 = f/√2.
    let w = [2.0f32, 0.0, 1.0, 1.0];
    let s = core::f32::consts::FRAC_1_SQRT_2;
    assert!((rows.penalty(&w, 2) - f * s).abs() < 1e-7);
    // d penalty/dx_i = f·sign(P)·(N_j - P·N_i)/|x_i|:
    //   x1: f·((1/√2, 1/√2) - (1/√2)(1, 0))/2 = f·(0, 1/(2√2));
    //   x2: f·((1, 0) - (1/√2)(1/√2, 1/√2))/√2 = f·(1/2, -1/2)/√2.
    let g = grad(&rows, &w, 2);
    let expected = [0.0, f * s / 2.0, f * s / 2.0, -f * s / 2.0];
    for (a, b) in g.iter().zip(expected) {
        assert!((a - b).abs() < 1e-7, "{g:?} vs {expected:?}");
    }
    // Columns of a matrix are the rows of its transpose: [[2, 1], [0, 1]].
    let wt = [2.0f32, 1.0, 0.0, 1.0];
    assert_eq!(cols.penalty(&wt, 2), rows.penalty(&w, 2));
    let gt = grad(&cols, &wt, 2);
    assert_eq!([gt[0], gt[2], gt[1], gt[3]], [g[0], g[1], g[2], g[3]]);
    // Two identical rows: P = 1, penalty = f; the gradient is tangential and 0 here.
    let same = [0.6f32, 0.8, 0.6, 0.8];
    assert!((rows.penalty(&same, 2) - f).abs() < 1e-7);
    assert!(grad(&rows, &same, 2).iter().all(|v| v.abs() < 1e-7));
    // A zero row: Keras' normalize clamps rsqrt(0) to 1/ε, the row stays 0, nothing is NaN.
    let z = [0.0f32, 0.0, 1.0, 0.0];
    assert_eq!(rows.penalty(&z, 2), 0.0);
    assert_eq!(grad(&rows, &z, 2), [0.0; 4]);
}

/// Negative, NaN and infinite factors are rejected (Keras 3 `validate_float_arg`); 0 is allowed.
#[test]
fn invalid_factors_are_rejected() {
    let bad = [-1.0f32, -1e-30, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
    let err = |name| {
        Err(Error::InvalidHyperparameter {
            name,
            reason: microfit_core::error::Reason::NonNegative,
        })
    };
    for b in bad {
        assert_eq!(Reg::try_l1(b), err("l1"), "l1 = {b}");
        assert_eq!(Reg::try_l2(b), err("l2"), "l2 = {b}");
        assert_eq!(Reg::try_l1l2(b, 0.1), err("l1"), "l1 = {b}");
        assert_eq!(Reg::try_l1l2(0.1, b), err("l2"), "l2 = {b}");
        assert_eq!(
            Reg::try_orthogonal(b, OrthoMode::Rows),
            err("factor"),
            "factor = {b}"
        );
        // Values built with the enum literal are caught by `validate`.
        assert!(Reg::L2 { l2: b }.validate().is_err());
        assert!(Reg::L1L2 { l1: 0.0, l2: b }.validate().is_err());
        assert!(
            Reg::Orthogonal {
                factor: b,
                mode: OrthoMode::Columns
            }
            .validate()
            .is_err()
        );
    }
    assert_eq!(Reg::try_l1(0.0), Ok(Reg::L1 { l1: 0.0 }));
    assert_eq!(Reg::try_l1l2(0.0, 0.0), Ok(Reg::L1L2 { l1: 0.0, l2: 0.0 }));
    assert_eq!(
        Reg::try_orthogonal(0.0, OrthoMode::Columns),
        Ok(Reg::Orthogonal {
            factor: 0.0,
            mode: OrthoMode::Columns
        })
    );
    assert!(Reg::L1 { l1: 0.5 }.validate().is_ok());
}
