//! `kernels::dense::backward_columns` — the first layer's weight gradient column by column,
//! with a ReLU's backward pass optionally folded in — gives the bits of the reference order
//! (ReLU's `backward_in_place`, then `kernels::dense::backward`) under its documented
//! conditions: finite inputs and accumulators without `-0`. Random data full of exact zeros
//! (both signs), inactive units, a NaN output now and then.

use microfit_core::Activation;
use microfit_core::kernels::dense::{backward, backward_columns};
use proptest::prelude::*;

/// Mostly ordinary values, often exact zeros of both signs.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => Just(0.0f32),
        1 => Just(-0.0f32),
        6 => -10.0f32..10.0,
    ]
}

/// Accumulators as a training step has them: no `-0`.
fn accumulator() -> impl Strategy<Value = f32> {
    prop_oneof![3 => Just(0.0f32), 7 => -10.0f32..10.0]
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check(x: &[f32], d: &[f32], y: &[f32], g0: &[f32], b0: &[f32]) {
    let out = d.len();
    let w = vec![0.0f32; x.len() * out]; // not read without `dx`
    // The reference: ReLU's backward pass, then the row-by-row kernel.
    let mut dr = d.to_vec();
    Activation::Relu.backward_in_place(&[], y, &mut dr);
    let (mut g1, mut b1) = (g0.to_vec(), b0.to_vec());
    backward(x, &w, &dr, &mut g1, Some(&mut b1), None);
    // Folded: the raw output gradient and the ReLU's output.
    let (mut g2, mut b2) = (g0.to_vec(), b0.to_vec());
    backward_columns(x, d, &mut g2, Some(&mut b2), Some(y));
    assert_eq!(bits(&g1), bits(&g2), "weight gradient (ReLU folded)");
    assert_eq!(bits(&b1), bits(&b2), "bias gradient (ReLU folded)");
    // Not folded: the gradient after the ReLU.
    let (mut g3, mut b3) = (g0.to_vec(), b0.to_vec());
    backward_columns(x, &dr, &mut g3, Some(&mut b3), None);
    assert_eq!(bits(&g1), bits(&g3), "weight gradient");
    assert_eq!(bits(&b1), bits(&b3), "bias gradient");
}

proptest! {
    #[test]
    fn w1_sized_columns_give_the_rows_bits(
        x in prop::collection::vec(value(), 4),
        d in prop::collection::vec(value(), 16),
        y in prop::collection::vec(prop_oneof![4 => Just(0.0f32), 1 => Just(f32::NAN), 5 => 0.001f32..5.0], 16),
        g0 in prop::collection::vec(accumulator(), 64),
        b0 in prop::collection::vec(accumulator(), 16),
    ) {
        check(&x, &d, &y, &g0, &b0);
    }

    #[test]
    fn odd_sizes_give_the_rows_bits(
        x in prop::collection::vec(value(), 3),
        d in prop::collection::vec(value(), 5),
        y in prop::collection::vec(prop_oneof![Just(0.0f32), -1.0f32..1.0], 5),
        g0 in prop::collection::vec(accumulator(), 15),
        b0 in prop::collection::vec(accumulator(), 5),
    ) {
        check(&x, &d, &y, &g0, &b0);
    }
}

/// A shorter input than the kernel's rows accumulates nothing (the step rejects such shapes
/// before); no panic.
#[test]
fn a_short_input_accumulates_nothing() {
    let (mut g, mut b) = ([1.0f32; 6], [1.0f32; 2]);
    backward_columns(&[1.0], &[1.0, 1.0], &mut g, Some(&mut b), None);
    assert_eq!((g, b), ([1.0; 6], [1.0; 2]));
}
