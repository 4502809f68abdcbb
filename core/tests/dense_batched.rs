//! The core's tile kernels of `kernels::gemm` (`matmul`, `matmul_bt`, `matmul_at_acc`) give the
//! bits of the per-sample kernels (`forward`, `backward`) called sample after sample (the checks
//! are in `gemm_check`, shared with the runtime's hand-written kernels).

mod gemm_check;

use gemm_check::{Kernels, all_sizes, every_width};
use microfit_core::kernels::gemm::{matmul, matmul_at_acc, matmul_bt};

const PORTABLE: Kernels = Kernels {
    matmul,
    matmul_bt,
    matmul_at_acc,
};

#[test]
fn tile_kernels_equal_per_sample_kernels() {
    for (i, n) in [1usize, 2, 3, 4, 5, 8, 31, 32, 64, 65, 70, 257]
        .into_iter()
        .enumerate()
    {
        all_sizes(PORTABLE, n, 0x9e37_79b9_7f4a_7c15 ^ i as u64, false);
    }
}

#[test]
fn tile_kernels_equal_per_sample_kernels_with_nan_and_infinity() {
    for (i, n) in [1usize, 2, 5, 32, 66, 260].into_iter().enumerate() {
        all_sizes(PORTABLE, n, 0xdead_beef ^ (i as u64) << 7, true);
    }
}

#[test]
fn tile_kernels_equal_per_sample_kernels_at_every_width() {
    every_width(PORTABLE, 0x5eed);
}
