//! The bit contract of the tile kernels (`matmul`, `matmul_bt`, `matmul_at_acc`), shared by the
//! core's test of its portable kernels (`dense_batched.rs`) and the runtime's test of its
//! hand-written ones (`std-runtime/tests/host_gemm.rs`, which includes this file): a tile gives
//! the bits of the per-sample kernels (`forward`, `backward`) called sample after sample, on
//! random data full of zeros, `-0`, NaN and infinities, for many sizes and zero densities.

use microfit_core::kernels::dense::{backward, forward};
use microfit_core::kernels::gemm::{MatMul, MatMulAtAcc, MatMulBt};

/// The three tile kernels under test.
#[derive(Clone, Copy)]
pub struct Kernels {
    /// `c = a·b (+ bias)`.
    pub matmul: fn(MatMul<'_>),
    /// `c = a·bᵀ`.
    pub matmul_bt: fn(MatMulBt<'_>),
    /// `c += aᵀ·b`.
    pub matmul_at_acc: fn(MatMulAtAcc<'_>),
}

/// xorshift64*: deterministic test data without a dependency.
pub struct Gen(pub u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Ordinary values, exact zeros (both signs) with probability about `zeros / 16`, and
    /// sometimes NaN/∞ when `special`.
    fn value(&mut self, special: bool, zeros: u64) -> f32 {
        let r = self.next();
        let z = zeros.min(16);
        match r % 16 {
            v if v < z => {
                if (r >> 40).is_multiple_of(6) {
                    -0.0
                } else {
                    0.0
                }
            }
            v if v == z && special => {
                [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][(r >> 8) as usize % 3]
            }
            _ => ((r >> 16) % 20_000) as f32 / 1000.0 - 10.0,
        }
    }
}

/// The bits of each value, every NaN as one canonical NaN: Rust (LLVM) does not specify which
/// NaN payload or sign an operation on NaNs returns (and the compiler may swap the operands of
/// an addition), so only "NaN" is part of the contract; every other value must match bit for bit.
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter()
        .map(|x| if x.is_nan() { 0x7fc0_0000 } else { x.to_bits() })
        .collect()
}

/// One case: `n` samples of `k` inputs and `m` outputs; `zeros` (of 16) of the inputs `x` and
/// gradients `dz` zero; NaN and infinities when `special`. Whole rows and columns of `x` are
/// zeroed or filled too (a feature that is always 0 or never, a blank sample).
pub fn check(ker: Kernels, (n, k, m): (usize, usize, usize), seed: u64, special: bool, zeros: u64) {
    let mut g = Gen(seed);
    let mut x: Vec<f32> = (0..n * k).map(|_| g.value(special, zeros)).collect();
    for i in 0..k {
        match g.next() % 8 {
            0 => (0..n).for_each(|s| x[s * k + i] = 0.0),
            1 => (0..n).for_each(|s| x[s * k + i] = 1.5 + s as f32),
            _ => {}
        }
    }
    if n > 2 {
        let s = (g.next() % n as u64) as usize;
        x[s * k..(s + 1) * k].fill(0.0);
    }
    let dz: Vec<f32> = (0..n * m).map(|_| g.value(special, zeros)).collect();
    let w: Vec<f32> = (0..k * m).map(|_| g.value(special, 6)).collect();
    let b: Vec<f32> = (0..m).map(|_| g.value(false, 6)).collect();
    let ctx = format!("k={k} m={m} n={n} seed={seed} special={special} zeros={zeros}");

    // Forward: every row equals a per-sample call.
    let mut z = vec![7.0f32; n * m];
    (ker.matmul)(MatMul {
        a: &x,
        b: &w,
        bias: Some(&b),
        c: &mut z,
        rows: n,
        k,
        m,
    });
    let mut z0 = vec![7.0f32; n * m];
    (ker.matmul)(MatMul {
        a: &x,
        b: &w,
        bias: None,
        c: &mut z0,
        rows: n,
        k,
        m,
    });
    for s in 0..n {
        let mut z1 = vec![0.0f32; m];
        forward(&x[s * k..(s + 1) * k], &w, Some(&b), &mut z1);
        let row = s * m..(s + 1) * m;
        assert_eq!(bits(&z[row.clone()]), bits(&z1), "matmul row {s} {ctx}");
        forward(&x[s * k..(s + 1) * k], &w, None, &mut z1);
        assert_eq!(bits(&z0[row]), bits(&z1), "matmul (no bias) row {s} {ctx}");
    }

    // Backward: the input gradient of each row, and the weight gradient accumulated sample
    // after sample onto nonzero starting values and from zero.
    let g0: Vec<f32> = (0..k * m).map(|_| g.value(false, 6)).collect();
    for start in [g0.clone(), vec![0.0; k * m]] {
        let mut gw1 = start.clone();
        let mut dx1 = vec![0.0f32; n * k];
        for s in 0..n {
            backward(
                &x[s * k..(s + 1) * k],
                &w,
                &dz[s * m..(s + 1) * m],
                &mut gw1,
                None,
                Some(&mut dx1[s * k..(s + 1) * k]),
            );
        }
        let mut gw = start.clone();
        (ker.matmul_at_acc)(MatMulAtAcc {
            a: &x,
            b: &dz,
            c: &mut gw,
            rows: n,
            k,
            m,
        });
        assert_eq!(bits(&gw), bits(&gw1), "matmul_at_acc {ctx}");
        let mut dx = vec![3.0f32; n * k];
        (ker.matmul_bt)(MatMulBt {
            a: &dz,
            b: &w,
            c: &mut dx,
            rows: n,
            k,
            m,
        });
        assert_eq!(bits(&dx), bits(&dx1), "matmul_bt {ctx}");
    }
}

/// Sizes below, at and above the kernels' blocks (4 rows, 16 and 32 columns, 64 steps, 32
/// samples, 256 features; 16 and 32 terms or rows kept in registers), with dense, ordinary and
/// very sparse data.
pub fn all_sizes(ker: Kernels, n: usize, seed: u64, special: bool) {
    for (k, m) in [
        (1, 1),
        (3, 2),
        (4, 16),
        (16, 3),
        (9, 8),
        (32, 10),
        (17, 16),
        (31, 12),
        (24, 1),
        (64, 32),
        (63, 31),
        (65, 33),
        (70, 5),
        (72, 10),
        (128, 48),
        (130, 17),
        (300, 33),
    ] {
        // Dense (standardized columns), ordinary and very sparse data.
        for zeros in [0, 6, 14] {
            check(ker, (n, k, m), seed ^ zeros, special, zeros);
        }
    }
}

/// Every width of a lane (1 to 40 columns) at a few sample counts.
pub fn every_width(ker: Kernels, seed: u64) {
    for m in 1..=40 {
        for (n, k) in [(3, 7), (32, 64), (33, 20)] {
            check(ker, (n, k, m), seed ^ m as u64, m % 3 == 0, 8);
        }
    }
}
