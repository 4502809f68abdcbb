//! Shape errors that must fail `cargo build` with a message naming the expected size.
//!
//! On stable Rust the output size of a conv or pooling layer is written into its type and
//! checked by a `const` assertion against `conv_out` (see `layer::conv`); `Flatten`'s length
//! likewise. Those are post-monomorphization errors, which `cargo check` does not report, so
//! this test has a passing case too: with one, trybuild runs `cargo build` for every case (it
//! uses `cargo check` only when all cases are `compile_fail`). The expected compiler output is
//! in `tests/ui/*.stderr` (regenerate with `TRYBUILD=overwrite` after reading the diff).

#[test]
fn wrong_shapes_fail_to_build() {
    let t = trybuild::TestCases::new();
    // Right sizes build and run (and make trybuild really build the other cases).
    t.pass("tests/ui/right_sizes.rs");
    // Conv2D 8×8, kernel 3, valid → 6×6; the type says 7.
    t.compile_fail("tests/ui/conv2d_wrong_output.rs");
    // Conv1D 7, kernel 3, stride 2, same → 4; the type says 3.
    t.compile_fail("tests/ui/conv1d_same_stride_wrong_output.rs");
    // MaxPooling2D(2) on 6×6 → 3×3; the type says 2×3.
    t.compile_fail("tests/ui/maxpool_wrong_output.rs");
    // A 5-wide kernel on a 4-wide valid input: no window fits.
    t.compile_fail("tests/ui/conv_kernel_too_large.rs");
    // Flatten of 3×3×8 = 72 values declared as 64.
    t.compile_fail("tests/ui/flatten_wrong_len.rs");
    // Layers whose shapes do not chain: an ordinary type error.
    t.compile_fail("tests/ui/layers_do_not_chain.rs");
}
