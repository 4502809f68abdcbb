//! The `Host` backend's tile products (hand-written AVX-512 kernels where the CPU has it, the
//! core's portable kernels compiled for AVX2 and the baseline otherwise) give the bits of the
//! per-sample kernels, at every level this CPU supports (the checks are the core's:
//! `core/tests/gemm_check`).

#[path = "../../core/tests/gemm_check/mod.rs"]
mod gemm_check;

use gemm_check::{Kernels, all_sizes, every_width};
use microfit::host::{AtMost, HostAt, detected};
use microfit_core::backend::Backend;

fn kernels<B: Backend>() -> Kernels {
    Kernels {
        matmul: B::matmul,
        matmul_bt: B::matmul_bt,
        matmul_at_acc: B::matmul_at_acc,
    }
}

fn levels() -> [(&'static str, Kernels); 3] {
    [
        ("baseline", kernels::<HostAt<AtMost<0>>>()),
        ("avx2", kernels::<HostAt<AtMost<1>>>()),
        ("avx512", kernels::<HostAt<AtMost<2>>>()),
    ]
}

#[test]
fn host_tile_kernels_equal_per_sample_kernels() {
    eprintln!("CPU level: {}", detected().name());
    for (name, ker) in levels() {
        for (i, n) in [2usize, 3, 4, 5, 31, 32, 33, 64, 65, 100]
            .into_iter()
            .enumerate()
        {
            eprintln!("{name} n={n}");
            all_sizes(ker, n, 0x9e37_79b9_7f4a_7c15 ^ i as u64, false);
            all_sizes(ker, n, 0xdead_beef ^ (i as u64) << 7, true);
        }
    }
}

#[test]
fn host_tile_kernels_equal_per_sample_kernels_at_every_width() {
    for (_, ker) in levels() {
        every_width(ker, 0x5eed);
    }
}
