//! Dense (fully connected) kernels over flat row-major slices.
//!
//! Layout as Keras: kernel `W` is `(in, out)` row-major, `z = x·W + b`.
//!
//! # The one summation order (every target, every path)
//! * **Forward** `z_j = ((0 + x_0 W_0j) + x_1 W_1j + …) + b_j`: for each output `j`, the
//!   products are summed over `i` in increasing order starting from `+0`, and the bias is added
//!   last. Terms with `x_i == 0` (inactive ReLU units, blank pixels) are skipped.
//! * **Input gradient** `dx_i = (0 + W_i0 dz_0) + W_i1 dz_1 + …`, over `j` in increasing order.
//! * **Weight gradients** of a batch accumulate sample by sample, in sample order:
//!   `gW_ij = ((gW_ij + x_i⁽⁰⁾ dz_j⁽⁰⁾) + x_i⁽¹⁾ dz_j⁽¹⁾) + …` (terms with `x_i == 0` skipped),
//!   `gb_j = (gb_j + dz_j⁽⁰⁾) + dz_j⁽¹⁾ + …`.
//!
//! Every product and every sum is a separate IEEE operation (Rust never fuses `a*b+c`, LLVM
//! never reorders float sums), so these orders are what runs on a Cortex-M and on x86 alike.
//! They leave a lot of parallelism to the compiler: the sums of *different* outputs are
//! independent, so the inner loops run over `j` (contiguous rows of `W`) and vectorize, while
//! each `z_j` keeps its sequential order.
//!
//! Skipping `x_i == 0` is exact for finite weights (`z + (±0) = z`, and `z` never becomes
//! `-0` because it starts at `+0`); with non-finite weights it keeps `0·∞` out of the sum. Both
//! the per-sample kernels ([`forward`], [`backward`]: one sample, used by the typed layers and
//! on microcontrollers) and the batched kernels ([`forward_rows`], [`backward_rows`]: several
//! samples, const sizes, used by the host's batched path) skip the same terms, so they give the
//! same bits in every case. The per-sample kernels skip with a branch (cheap on an in-order
//! core); the batched ones turn the nonzero pattern into bit masks with vector compares and
//! loop over the set bits ([`for_each_nonzero`]): no mispredicted branch on a host CPU.

/// `z = x·W (+ b)`; `x.len() = in`, `z.len() = out`, `w.len() = in·out`.
///
/// ```
/// use microfit_core::kernels::dense::forward;
/// let mut z = [0.0; 2];
/// forward(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], Some(&[0.5, 0.5]), &mut z);
/// assert_eq!(z, [7.5, 10.5]);
/// ```
#[inline]
pub fn forward(x: &[f32], w: &[f32], b: Option<&[f32]>, z: &mut [f32]) {
    let out = z.len();
    z.fill(0.0);
    if out == 0 {
        return;
    }
    for (&xi, row) in x.iter().zip(w.chunks_exact(out)) {
        if xi == 0.0 {
            continue;
        }
        for (zj, &wij) in z.iter_mut().zip(row) {
            *zj += xi * wij;
        }
    }
    if let Some(b) = b {
        for (zj, &bj) in z.iter_mut().zip(b) {
            *zj += bj;
        }
    }
}

/// Accumulates the gradients of one sample: `gW += xᵀ·dz`, `gb += dz`, and writes
/// `dx = W·dz` (summed over `j` in increasing order) when `dx` is given.
///
/// ```
/// use microfit_core::kernels::dense::backward;
/// let (mut gw, mut gb, mut dx) = ([0.0; 4], [0.0; 2], [0.0; 2]);
/// backward(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], &[1.0, -1.0], &mut gw, Some(&mut gb), Some(&mut dx));
/// assert_eq!(gw, [1.0, -1.0, 2.0, -2.0]);
/// assert_eq!(gb, [1.0, -1.0]);
/// assert_eq!(dx, [-1.0, -1.0]);
/// ```
#[inline]
pub fn backward(
    x: &[f32],
    w: &[f32],
    dz: &[f32],
    gw: &mut [f32],
    gb: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
) {
    let out = dz.len();
    if out == 0 {
        return;
    }
    if let Some(dx) = dx {
        for (dxi, row) in dx.iter_mut().zip(w.chunks_exact(out)) {
            let mut s = 0.0f32;
            for (&wij, &dj) in row.iter().zip(dz) {
                s += wij * dj;
            }
            *dxi = s;
        }
    }
    for (&xi, grow) in x.iter().zip(gw.chunks_exact_mut(out)) {
        if xi == 0.0 {
            continue;
        }
        for (g, &dj) in grow.iter_mut().zip(dz) {
            *g += xi * dj;
        }
    }
    if let Some(gb) = gb {
        for (g, &dj) in gb.iter_mut().zip(dz) {
            *g += dj;
        }
    }
}

/// Calls `f(i, x_i)` for every `x_i != 0` in increasing `i`, without a data-dependent branch
/// per entry: the nonzero pattern of each block of 64 entries becomes a bit mask (vector
/// compares), then the loop runs over the set bits.
///
/// ```
/// use microfit_core::kernels::dense::for_each_nonzero;
/// let mut seen = Vec::new();
/// for_each_nonzero(&[0.0, 2.0, -0.0, 3.0, f32::NAN], |i, v| seen.push((i, v.to_bits())));
/// assert_eq!(seen, [(1, 2.0f32.to_bits()), (3, 3.0f32.to_bits()), (4, f32::NAN.to_bits())]);
/// ```
#[inline(always)]
pub fn for_each_nonzero<const N: usize>(x: &[f32; N], mut f: impl FnMut(usize, f32)) {
    let (blocks, rest) = x.as_chunks::<64>();
    let mut base = 0usize;
    for block in blocks {
        let mut m = 0u64;
        for (j, &v) in block.iter().enumerate() {
            m |= u64::from(v != 0.0) << j;
        }
        while m != 0 {
            let j = m.trailing_zeros() as usize;
            m &= m - 1;
            f(base + j, block[j & 63]);
        }
        base += 64;
    }
    let mut m = 0u64;
    for (j, &v) in rest.iter().enumerate() {
        m |= u64::from(v != 0.0) << j;
    }
    while m != 0 {
        let j = m.trailing_zeros() as usize;
        m &= m - 1;
        if let Some(&v) = rest.get(j) {
            f(base + j, v);
        }
    }
}

/// `z = x·W (+ b)` for one sample, over its nonzero inputs: the order of [`forward`].
#[inline(always)]
fn forward_one<const IN: usize, const OUT: usize>(
    x: &[f32; IN],
    w: &[[f32; OUT]; IN],
    b: Option<&[f32; OUT]>,
    z: &mut [f32; OUT],
) {
    let mut acc = [0.0f32; OUT];
    for_each_nonzero(x, |i, xi| {
        let row = &w[i.min(IN.saturating_sub(1))];
        for (a, &wij) in acc.iter_mut().zip(row) {
            *a += xi * wij;
        }
    });
    if let Some(b) = b {
        for (a, &bj) in acc.iter_mut().zip(b) {
            *a += bj;
        }
    }
    *z = acc;
}

/// `gW[i] += x_i·dz` for the nonzero inputs of one sample.
#[inline(always)]
fn grad_one<const IN: usize, const OUT: usize>(x: &[f32; IN], dz: &[f32; OUT], gw: &mut [[f32; OUT]; IN]) {
    for_each_nonzero(x, |i, xi| {
        let grow = &mut gw[i.min(IN.saturating_sub(1))];
        for (g, &dj) in grow.iter_mut().zip(dz) {
            *g += xi * dj;
        }
    });
}

/// Batched forward pass: `z_b = x_b·W (+ b)` for every sample row `b`, with exactly the
/// order of [`forward`] (see the module docs), so each row's bits equal a [`forward`] call.
///
/// `w` is `[in][out]`; `x.len()` rows are computed (`z` must have at least as many).
///
/// ```
/// use microfit_core::kernels::dense::{forward, forward_rows};
/// let w = [[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]];
/// let x = [[1.0, 0.0, 2.0], [0.0, -1.0, 0.25]];
/// let mut z = [[0.0; 2]; 2];
/// forward_rows(&x, &w, Some(&[0.5, 0.5]), &mut z);
/// let mut z1 = [0.0; 2];
/// forward(&x[1], w.as_flattened(), Some(&[0.5, 0.5]), &mut z1);
/// assert_eq!(z[1], z1);
/// assert_eq!(z[0], [2.5, 0.5]);
/// ```
#[inline]
pub fn forward_rows<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    w: &[[f32; OUT]; IN],
    b: Option<&[f32; OUT]>,
    z: &mut [[f32; OUT]],
) {
    for (xb, zb) in x.iter().zip(z.iter_mut()) {
        forward_one(xb, w, b, zb);
    }
}

/// `dx_b = W·dz_b` for every row, from `wt = Wᵀ`: for each `i`, the sum over `j` in order.
#[inline]
fn input_grad_rows<const IN: usize, const OUT: usize>(wt: &[[f32; IN]; OUT], dz: &[[f32; OUT]], dx: &mut [[f32; IN]]) {
    for (dzb, dxb) in dz.iter().zip(dx.iter_mut()) {
        let mut acc = [0.0f32; IN];
        for (&dj, wtj) in dzb.iter().zip(wt) {
            for (a, &wij) in acc.iter_mut().zip(wtj) {
                *a += wij * dj;
            }
        }
        *dxb = acc;
    }
}

/// `wt = Wᵀ` (`[out][in]`), for [`backward_rows`]' input gradient.
#[inline]
pub fn transpose<const IN: usize, const OUT: usize>(w: &[[f32; OUT]; IN], wt: &mut [[f32; IN]; OUT]) {
    for (i, row) in w.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            wt[j][i] = v;
        }
    }
}

/// Batched backward pass over `dz.len()` samples, with exactly the order of [`backward`]
/// called sample after sample (see the module docs): `gW += Σ_b x_bᵀ dz_b`, `gb += Σ_b dz_b`
/// (sample order), and `dx_b = W·dz_b` when `dx` is given, computed from the transposed
/// kernel `wt` (`[out][in]`, see [`transpose`]) so the sums over `j` run side by side for all
/// `i`.
///
/// ```
/// use microfit_core::kernels::dense::{backward, backward_rows, transpose};
/// let w = [[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]];
/// let x = [[1.0, 0.0, 2.0], [0.0, -1.0, 0.25]];
/// let dz = [[0.5, -1.0], [2.0, 0.25]];
/// let mut wt = [[0.0; 3]; 2];
/// transpose(&w, &mut wt);
/// let (mut gw, mut gb, mut dx) = ([[0.0; 2]; 3], [0.0; 2], [[0.0; 3]; 2]);
/// backward_rows(&x, &wt, &dz, &mut gw, Some(&mut gb), Some(&mut dx));
/// let (mut gw1, mut gb1, mut dx1) = ([0.0; 6], [0.0; 2], [0.0; 3]);
/// backward(&x[0], w.as_flattened(), &dz[0], &mut gw1, Some(&mut gb1), None);
/// backward(&x[1], w.as_flattened(), &dz[1], &mut gw1, Some(&mut gb1), Some(&mut dx1));
/// assert_eq!((gw.as_flattened(), gb, dx[1]), (&gw1[..], gb1, dx1));
/// ```
#[inline]
pub fn backward_rows<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    wt: &[[f32; IN]; OUT],
    dz: &[[f32; OUT]],
    gw: &mut [[f32; OUT]; IN],
    gb: Option<&mut [f32; OUT]>,
    dx: Option<&mut [[f32; IN]]>,
) {
    if let Some(dx) = dx {
        input_grad_rows(wt, dz, dx);
    }
    for (xb, dzb) in x.iter().zip(dz) {
        grad_one(xb, dzb, gw);
    }
    if let Some(gb) = gb {
        for dzb in dz {
            for (g, &dj) in gb.iter_mut().zip(dzb) {
                *g += dj;
            }
        }
    }
}
