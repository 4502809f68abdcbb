//! The batched dense kernels (`forward_rows`, `backward_rows`, their flat and "then"/"ticking"
//! variants) give the bits of the per-sample kernels (`forward`, `backward`) called sample after
//! sample, on random data full of zeros, `-0`, NaN and infinities, for sizes below, at and
//! above the 64-entry mask blocks and sample counts below, at and above the 64-row chunks.

use microfit_core::kernels::dense::{
    backward, backward_rows, backward_rows_then, bias_grad_rows, forward, forward_rows,
    forward_rows_flat, forward_rows_ticking, transpose, weight_grad_rows_flat,
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

fn check<const IN: usize, const OUT: usize>(n: usize, seed: u64, special: bool) {
    let mut g = Gen(seed);
    let x: Vec<[f32; IN]> = (0..n)
        .map(|_| core::array::from_fn(|_| g.value(special)))
        .collect();
    let dz: Vec<[f32; OUT]> = (0..n)
        .map(|_| core::array::from_fn(|_| g.value(special)))
        .collect();
    let mut w = [[0.0f32; OUT]; IN];
    for r in w.iter_mut() {
        for v in r.iter_mut() {
            *v = g.value(special);
        }
    }
    let b: [f32; OUT] = core::array::from_fn(|_| g.value(false));
    let ctx = format!("IN={IN} OUT={OUT} n={n} seed={seed} special={special}");

    // Forward: every row equals a per-sample call.
    let mut z = vec![[0.0f32; OUT]; n];
    forward_rows(&x, &w, Some(&b), &mut z);
    let mut zt = vec![[7.0f32; OUT]; n];
    let mut ticks = 0usize;
    forward_rows_ticking(&x, &w, Some(&b), &mut zt, &mut || ticks += 1);
    let mut zf = vec![[0.0f32; OUT]; n];
    forward_rows_flat(x.as_flattened(), IN, &w, Some(&b), &mut zf);
    for s in 0..n {
        let mut z1 = [0.0f32; OUT];
        forward(&x[s], w.as_flattened(), Some(&b), &mut z1);
        assert_eq!(bits(&z[s]), bits(&z1), "forward_rows row {s} {ctx}");
        assert_eq!(
            bits(&zt[s]),
            bits(&z1),
            "forward_rows_ticking row {s} {ctx}"
        );
        assert_eq!(bits(&zf[s]), bits(&z1), "forward_rows_flat row {s} {ctx}");
    }
    let nonzero = x.iter().flatten().filter(|v| **v != 0.0).count();
    assert!(
        ticks >= nonzero.div_ceil(2),
        "ticks {ticks} for {nonzero} nonzero inputs {ctx}"
    );

    // Backward: gradients accumulated sample after sample onto nonzero starting values.
    let g0: Vec<f32> = (0..IN * OUT).map(|_| g.value(false)).collect();
    let gb0: [f32; OUT] = core::array::from_fn(|_| g.value(false));
    let (mut gw1, mut gb1) = (g0.clone(), gb0);
    let mut dx1 = vec![[0.0f32; IN]; n];
    for s in 0..n {
        backward(
            &x[s],
            w.as_flattened(),
            &dz[s],
            &mut gw1,
            Some(&mut gb1),
            Some(&mut dx1[s]),
        );
    }
    let mut wt = [[0.0f32; IN]; OUT];
    transpose(&w, &mut wt);
    let mut gw = [[0.0f32; OUT]; IN];
    gw.as_flattened_mut().copy_from_slice(&g0);
    let mut gb = gb0;
    let mut dx = vec![[0.0f32; IN]; n];
    backward_rows(&x, &wt, &dz, &mut gw, Some(&mut gb), Some(&mut dx));
    assert_eq!(
        bits(gw.as_flattened()),
        bits(&gw1),
        "backward_rows gW {ctx}"
    );
    assert_eq!(bits(&gb), bits(&gb1), "backward_rows gb {ctx}");
    assert_eq!(
        bits(dx.as_flattened()),
        bits(dx1.as_flattened()),
        "backward_rows dx {ctx}"
    );

    // The flat weight gradient and the bias gradient on their own.
    let mut gwf = [[0.0f32; OUT]; IN];
    gwf.as_flattened_mut().copy_from_slice(&g0);
    weight_grad_rows_flat(x.as_flattened(), IN, &dz, &mut gwf);
    assert_eq!(
        bits(gwf.as_flattened()),
        bits(&gw1),
        "weight_grad_rows_flat {ctx}"
    );
    // From zero gradients, as a training step starts (the kernels' dense path when `dz` is
    // finite).
    let mut gz1 = vec![0.0f32; IN * OUT];
    for s in 0..n {
        backward(&x[s], w.as_flattened(), &dz[s], &mut gz1, None, None);
    }
    let mut gz = [[0.0f32; OUT]; IN];
    weight_grad_rows_flat(x.as_flattened(), IN, &dz, &mut gz);
    assert_eq!(
        bits(gz.as_flattened()),
        bits(&gz1),
        "weight_grad_rows_flat from zero {ctx}"
    );
    let mut gbf = gb0;
    bias_grad_rows(&dz, &mut gbf);
    assert_eq!(bits(&gbf), bits(&gb1), "bias_grad_rows {ctx}");

    // `finish` sees every row once, in order, after its last addition.
    let mut gwt = [[0.0f32; OUT]; IN];
    gwt.as_flattened_mut().copy_from_slice(&g0);
    let mut seen = Vec::new();
    let mut finish = |i: usize, row: &mut [f32; OUT]| {
        seen.push(i);
        for v in row.iter_mut() {
            *v += 1.0;
        }
    };
    backward_rows_then(&x, &wt, &dz, &mut gwt, None, None, Some(&mut finish));
    assert_eq!(seen, (0..IN).collect::<Vec<_>>(), "finish order {ctx}");
    let plus_one: Vec<f32> = gw1.iter().map(|v| v + 1.0).collect();
    assert_eq!(
        bits(gwt.as_flattened()),
        bits(&plus_one),
        "finish after the last addition {ctx}"
    );
}

fn all_sizes(n: usize, seed: u64, special: bool) {
    check::<3, 2>(n, seed, special);
    check::<4, 16>(n, seed, special);
    check::<16, 3>(n, seed, special);
    check::<32, 10>(n, seed, special);
    check::<64, 32>(n, seed, special);
    check::<70, 5>(n, seed, special);
    check::<72, 10>(n, seed, special);
    check::<130, 9>(n, seed, special);
}

#[test]
fn batched_kernels_equal_per_sample_kernels() {
    for (k, n) in [1usize, 2, 3, 8, 31, 32, 64, 65, 70, 129]
        .into_iter()
        .enumerate()
    {
        all_sizes(n, 0x9e37_79b9_7f4a_7c15 ^ k as u64, false);
    }
}

#[test]
fn batched_kernels_equal_per_sample_kernels_with_nan_and_infinity() {
    for (k, n) in [1usize, 2, 5, 32, 66].into_iter().enumerate() {
        all_sizes(n, 0xdead_beef ^ (k as u64) << 7, true);
    }
}
