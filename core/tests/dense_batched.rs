//! The tile kernels of `kernels::gemm` (`matmul`, `matmul_bt`, `matmul_at_acc`) give the bits of
//! the per-sample kernels (`forward`, `backward`) called sample after sample, on random data
//! full of zeros, `-0`, NaN and infinities, for sizes below, at and above the micro-kernel's
//! 4 × 16 block and the 256-step panels, and sample counts below, at and above them.

use microfit_core::kernels::dense::{backward, forward};
use microfit_core::kernels::gemm::{
    MatMul, MatMulAtAcc, MatMulBt, matmul, matmul_at_acc, matmul_bt,
};
/// xorshift64*: deterministic test data without a dependency.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Mostly ordinary values, often exact zeros (both signs), sometimes NaN/∞ when `special`.
    fn value(&mut self, special: bool) -> f32 {
        let r = self.next();
        match r % 16 {
            0..=5 => 0.0,
            6 => -0.0,
            7 if special => [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][(r >> 8) as usize % 3],
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

fn check(n: usize, k: usize, m: usize, seed: u64, special: bool) {
    let mut g = Gen(seed);
    let x: Vec<f32> = (0..n * k).map(|_| g.value(special)).collect();
    let dz: Vec<f32> = (0..n * m).map(|_| g.value(special)).collect();
    let w: Vec<f32> = (0..k * m).map(|_| g.value(special)).collect();
    let b: Vec<f32> = (0..m).map(|_| g.value(false)).collect();
    let ctx = format!("k={k} m={m} n={n} seed={seed} special={special}");

    // Forward: every row equals a per-sample call.
    let mut z = vec![7.0f32; n * m];
    matmul(MatMul {
        a: &x,
        b: &w,
        bias: Some(&b),
        c: &mut z,
        rows: n,
        k,
        m,
    });
    for s in 0..n {
        let mut z1 = vec![0.0f32; m];
        forward(&x[s * k..(s + 1) * k], &w, Some(&b), &mut z1);
        assert_eq!(
            bits(&z[s * m..(s + 1) * m]),
            bits(&z1),
            "matmul row {s} {ctx}"
        );
    }

    // Backward: the input gradient of each row, and the weight gradient accumulated sample
    // after sample onto nonzero starting values and from zero.
    let g0: Vec<f32> = (0..k * m).map(|_| g.value(false)).collect();
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
        matmul_at_acc(MatMulAtAcc {
            a: &x,
            b: &dz,
            c: &mut gw,
            rows: n,
            k,
            m,
        });
        assert_eq!(bits(&gw), bits(&gw1), "matmul_at_acc {ctx}");
        let mut dx = vec![3.0f32; n * k];
        matmul_bt(MatMulBt {
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

fn all_sizes(n: usize, seed: u64, special: bool) {
    for (k, m) in [
        (3, 2),
        (4, 16),
        (16, 3),
        (32, 10),
        (64, 32),
        (70, 5),
        (72, 10),
        (130, 17),
        (300, 33),
    ] {
        check(n, k, m, seed, special);
    }
}

#[test]
fn tile_kernels_equal_per_sample_kernels() {
    for (i, n) in [1usize, 2, 3, 4, 5, 8, 31, 32, 64, 65, 70, 257]
        .into_iter()
        .enumerate()
    {
        all_sizes(n, 0x9e37_79b9_7f4a_7c15 ^ i as u64, false);
    }
}

#[test]
fn tile_kernels_equal_per_sample_kernels_with_nan_and_infinity() {
    for (i, n) in [1usize, 2, 5, 32, 66, 260].into_iter().enumerate() {
        all_sizes(n, 0xdead_beef ^ (i as u64) << 7, true);
    }
}
