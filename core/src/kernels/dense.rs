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
/// `dx = W·dz` (summed over `j` in increasing order) when `dx` is given. `x`, `dx` and the rows
/// of `W` and `gW` have the layer's sizes (rows beyond the shortest are not visited).
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
    match dx {
        // One pass over the rows of `W`: `dx_i`, then row `i` of `gW`.
        Some(dx) => {
            let rows = w.chunks_exact(out).zip(gw.chunks_exact_mut(out));
            for ((dxi, &xi), (row, grow)) in dx.iter_mut().zip(x).zip(rows) {
                let mut s = 0.0f32;
                for (&wij, &dj) in row.iter().zip(dz) {
                    s += wij * dj;
                }
                *dxi = s;
                add_row(grow, xi, dz);
            }
        }
        None => {
            for (&xi, grow) in x.iter().zip(gw.chunks_exact_mut(out)) {
                add_row(grow, xi, dz);
            }
        }
    }
    if let Some(gb) = gb {
        for (g, &dj) in gb.iter_mut().zip(dz) {
            *g += dj;
        }
    }
}

/// Row `i` of `gW`: `g_j += x_i·dz_j`, nothing when `x_i == 0` (the documented skip).
#[inline(always)]
fn add_row(grow: &mut [f32], xi: f32, dz: &[f32]) {
    if xi != 0.0 {
        for (g, &dj) in grow.iter_mut().zip(dz) {
            *g += xi * dj;
        }
    }
}

/// [`backward`]'s weight and bias gradients (no `dx`) for the **first layer of a training
/// step**, column by column: outputs with `dz_j == 0` (inactive ReLU units) are skipped, zero
/// inputs are not.
///
/// The same bits as [`backward`] when every `x_i` is finite and no accumulator holds `-0` —
/// which is what a training step guarantees for its first layer (the inputs are checked
/// finite before any work; the gradients start at `+0`, and sums started at `+0` never become
/// `-0`): a skipped or added term is then `x_i·0 = ±0` or `0·dz_j = ±0`, and `g + ±0 = g`.
/// Only when some `dz_j` is NaN or infinite (a step that then fails with
/// `Error::NonFiniteGradient` without an update) can `gW`'s bits differ: `0·∞` is added here.
///
/// `x.len()` must be `gw.len() / dz.len()` (the layer's input size): a shorter `x` accumulates
/// nothing (the training step has rejected such a shape before). With fixed sizes the compiler
/// then keeps `x` in registers for every column.
///
/// ```
/// use microfit_core::kernels::dense::{backward, backward_columns};
/// let (x, dz) = ([1.0, 0.0, -2.0], [0.5, 0.0]);
/// let (mut g1, mut b1) = ([0.0; 6], [0.0; 2]);
/// let (mut g2, mut b2) = ([0.0; 6], [0.0; 2]);
/// backward(&x, &[0.0; 6], &dz, &mut g1, Some(&mut b1), None);
/// backward_columns(&x, &dz, &mut g2, Some(&mut b2), None);
/// assert_eq!((g1, b1), (g2, b2));
/// assert_eq!(g2, [0.5, 0.0, 0.0, 0.0, -1.0, 0.0]);
/// ```
///
/// With `relu_y = Some(y)` the ReLU's backward pass is folded in: `dz` is the gradient with
/// respect to the layer's *output* `y = relu(z)`, and the columns where `y_j <= 0` are skipped
/// — exactly the columns ReLU's backward would have set to `0` (a NaN `y_j` keeps its column,
/// as there). One pass over the outputs instead of two.
#[inline]
pub fn backward_columns(
    x: &[f32],
    dz: &[f32],
    gw: &mut [f32],
    gb: Option<&mut [f32]>,
    relu_y: Option<&[f32]>,
) {
    let out = dz.len();
    if out == 0 {
        return;
    }
    let Some(x) = x.get(..gw.len() / out) else {
        return;
    };
    // ReLU's derivative is 0 where its output is <= 0 (a NaN output keeps its gradient).
    let relu_zero = |j: usize| relu_y.is_some_and(|y| y.get(j).is_some_and(|&v| v <= 0.0));
    let active = |j: usize, dj: f32| dj != 0.0 && !relu_zero(j);
    match gb {
        Some(gb) => {
            for ((j, &dj), gbj) in dz.iter().enumerate().zip(gb) {
                if active(j, dj) {
                    *gbj += dj;
                    add_column(x, dj, gw, out, j);
                }
            }
        }
        None => {
            for (j, &dj) in dz.iter().enumerate() {
                if active(j, dj) {
                    add_column(x, dj, gw, out, j);
                }
            }
        }
    }
}

/// Column `j` of the row-major `gw` (rows of `out`): `gw[i][j] += x_i·d`.
#[inline(always)]
fn add_column(x: &[f32], d: f32, gw: &mut [f32], out: usize, j: usize) {
    for (&xi, row) in x.iter().zip(gw.chunks_exact_mut(out)) {
        if let Some(g) = row.get_mut(j) {
            *g += xi * d;
        }
    }
}

/// Bit `j` set iff `block[j] != 0` (`block.len() <= 64`): vector compares for a full block
/// of 64, a short loop for a partial one.
#[inline(always)]
fn nonzero_mask(block: &[f32]) -> u64 {
    if let Ok(full) = <&[f32; 64]>::try_from(block) {
        let mut m = 0u64;
        for (j, &v) in full.iter().enumerate() {
            m |= u64::from(v != 0.0) << j;
        }
        m
    } else {
        let mut m = 0u64;
        for (j, &v) in block.iter().enumerate().take(64) {
            m |= u64::from(v != 0.0) << j;
        }
        m
    }
}

/// [`nonzero_mask`] of a full block of 64 (a constant-size loop the compiler vectorizes).
#[inline(always)]
fn mask64(block: &[f32; 64]) -> u64 {
    let mut m = 0u64;
    for (j, &v) in block.iter().enumerate() {
        m |= u64::from(v != 0.0) << j;
    }
    m
}

/// [`nonzero_mask`] of a whole row of at most 64 entries (constant-size loop).
#[inline(always)]
fn mask_row<const N: usize>(x: &[f32; N]) -> u64 {
    let mut m = 0u64;
    for (j, &v) in x.iter().enumerate() {
        m |= u64::from(v != 0.0) << (j & 63);
    }
    m
}

/// Bit `j` set iff `x_j != 0` in some row of `xs` (rows of at most 64 entries): the bits of the
/// rows OR-ed (vector ORs), then one mask of the result (`±0` have no bit but the sign).
#[inline(always)]
fn union_mask<const N: usize>(xs: &[[f32; N]]) -> u64 {
    let mut acc = [0u32; N];
    for r in xs {
        for (a, &v) in acc.iter_mut().zip(r) {
            *a |= v.to_bits();
        }
    }
    let mut m = 0u64;
    for (j, &a) in acc.iter().enumerate() {
        m |= u64::from(a & 0x7fff_ffff != 0) << (j & 63);
    }
    m
}

/// Pops the lowest set bit of `m`: its index.
#[inline(always)]
fn pop(m: &mut u64) -> usize {
    let j = m.trailing_zeros() as usize;
    *m &= m.wrapping_sub(1);
    j
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
pub fn for_each_nonzero(x: &[f32], mut f: impl FnMut(usize, f32)) {
    for (k, block) in x.chunks(64).enumerate() {
        let mut m = nonzero_mask(block);
        while m != 0 {
            let j = pop(&mut m);
            if let Some(&v) = block.get(j) {
                f(64 * k + j, v);
            }
        }
    }
}

/// `acc += x·row` (the products `x·w_j`, each added to its own sum).
#[inline(always)]
fn axpy<const OUT: usize>(acc: &mut [f32; OUT], x: f32, row: &[f32; OUT]) {
    for (a, &w) in acc.iter_mut().zip(row) {
        *a += x * w;
    }
}

/// Rows of a kernel: `[[f32; OUT]; IN]` (constant size: the index is clamped, which never
/// changes an in-range index and lets the compiler drop the bounds check) or `[[f32; OUT]]`.
trait KernelRows<const OUT: usize> {
    /// `acc += x·W_i` (nothing when row `i` does not exist).
    fn axpy_row(&self, acc: &mut [f32; OUT], x: f32, i: usize);
}

impl<const IN: usize, const OUT: usize> KernelRows<OUT> for [[f32; OUT]; IN] {
    #[inline(always)]
    fn axpy_row(&self, acc: &mut [f32; OUT], x: f32, i: usize) {
        if IN > 0 {
            axpy(acc, x, &self[i.min(IN - 1)]);
        }
    }
}

impl<const OUT: usize> KernelRows<OUT> for [[f32; OUT]] {
    #[inline(always)]
    fn axpy_row(&self, acc: &mut [f32; OUT], x: f32, i: usize) {
        if let Some(row) = self.get(i) {
            axpy(acc, x, row);
        }
    }
}

/// `acc += x·W_i`.
#[inline(always)]
fn axpy_row<const OUT: usize, W: KernelRows<OUT> + ?Sized>(
    acc: &mut [f32; OUT],
    x: f32,
    w: &W,
    i: usize,
) {
    w.axpy_row(acc, x, i);
}

/// Two samples' nonzero inputs of one block of 64 (offset `base`), interleaved: `a0 += x0_i·W_i`
/// over the set bits of `m0`, `a1 += x1_i·W_i` over those of `m1`, each in increasing order;
/// `tick()` once per step of the loop.
#[inline(always)]
fn forward_two_block<const OUT: usize, W: KernelRows<OUT> + ?Sized>(
    (b0, mut m0): (&[f32], u64),
    (b1, mut m1): (&[f32], u64),
    base: usize,
    w: &W,
    a0: &mut [f32; OUT],
    a1: &mut [f32; OUT],
    tick: &mut impl FnMut(),
) {
    while m0 != 0 && m1 != 0 {
        let (j0, j1) = (pop(&mut m0), pop(&mut m1));
        let v0 = b0.get(j0).copied().unwrap_or(0.0);
        let v1 = b1.get(j1).copied().unwrap_or(0.0);
        axpy_row(a0, v0, w, base + j0);
        axpy_row(a1, v1, w, base + j1);
        tick();
    }
    while m0 != 0 {
        let j0 = pop(&mut m0);
        axpy_row(a0, b0.get(j0).copied().unwrap_or(0.0), w, base + j0);
        tick();
    }
    while m1 != 0 {
        let j1 = pop(&mut m1);
        axpy_row(a1, b1.get(j1).copied().unwrap_or(0.0), w, base + j1);
        tick();
    }
}

/// `acc + b` when there is a bias.
#[inline(always)]
fn add_bias<const OUT: usize>(acc: &mut [f32; OUT], b: Option<&[f32; OUT]>) {
    if let Some(b) = b {
        for (a, &bj) in acc.iter_mut().zip(b) {
            *a += bj;
        }
    }
}

/// Batched forward pass: `z_b = x_b·W (+ b)` for every sample row `b`, with exactly the
/// order of [`forward`] (see the module docs), so each row's bits equal a [`forward`] call.
///
/// `w` is `[in][out]`; `x.len()` rows are computed (`z` must have at least as many). Two
/// samples are computed side by side (two independent chains of additions in flight).
///
/// ```
/// use microfit_core::kernels::dense::{forward, forward_rows};
/// let w = [[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]];
/// let x = [[1.0, 0.0, 2.0], [0.0, -1.0, 0.25], [0.0, 0.0, 1.0]];
/// let mut z = [[0.0; 2]; 3];
/// forward_rows(&x, &w, Some(&[0.5, 0.5]), &mut z);
/// for (xr, zr) in x.iter().zip(&z) {
///     let mut z1 = [0.0; 2];
///     forward(xr, w.as_flattened(), Some(&[0.5, 0.5]), &mut z1);
///     assert_eq!(*zr, z1);
/// }
/// assert_eq!(z[0], [2.5, 0.5]);
/// ```
#[inline(never)]
pub fn forward_rows<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    w: &[[f32; OUT]; IN],
    b: Option<&[f32; OUT]>,
    z: &mut [[f32; OUT]],
) {
    forward_rows_ticking(x, w, b, z, &mut || {});
}

/// [`forward_rows`] that calls `tick()` once per step of its inner loop (about once per
/// nonzero input of each pair of samples). A training step hangs a chain of dependent
/// additions on it — the weight penalty's `Σw²`, which must be summed in index order — so
/// that the chain's latency overlaps this kernel's work instead of running alone.
#[inline(never)]
pub fn forward_rows_ticking<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    w: &[[f32; OUT]; IN],
    b: Option<&[f32; OUT]>,
    z: &mut [[f32; OUT]],
    tick: &mut impl FnMut(),
) {
    let n = x.len().min(z.len());
    let finite = crate::math::all_finite_inline(w.as_flattened());
    if IN <= 64 && finite {
        // Groups of samples over the union of their nonzero inputs (as dense as the plain
        // loop for dense inputs, with a loop exit per group instead of per sample).
        forward_rows_union(&x[..n], w, b, &mut z[..n], tick);
        return;
    }
    // Mostly nonzero inputs (e.g. pooled or standardized features) with finite weights: the
    // plain loop, which gives the same bits (see `forward_rows_dense`) without the masks.
    // Counted in 32-bit lanes (a vector of 8 per compare), per block of 2¹⁶ values.
    let flat = x[..n].as_flattened();
    let nonzero: usize = flat
        .chunks(1 << 16)
        .map(|c| c.iter().fold(0u32, |a, &v| a + u32::from(v != 0.0)) as usize)
        .sum();
    if 4 * nonzero > 3 * flat.len() && finite {
        forward_rows_dense(flat, IN, w, b, &mut z[..n], tick);
        return;
    }
    let (xp, xr) = x[..n].as_chunks::<2>();
    let (zp, zr) = z[..n].as_chunks_mut::<2>();
    for (xs, zs) in xp.iter().zip(zp.iter_mut()) {
        let mut a0 = [0.0f32; OUT];
        let mut a1 = [0.0f32; OUT];
        if IN <= 64 {
            // One block: the masks of the whole rows, with constant-size loops.
            let (m0, m1) = (mask_row(&xs[0]), mask_row(&xs[1]));
            forward_two_block(
                (&xs[0][..], m0),
                (&xs[1][..], m1),
                0,
                w,
                &mut a0,
                &mut a1,
                tick,
            );
            add_bias(&mut a0, b);
            add_bias(&mut a1, b);
            zs[0] = a0;
            zs[1] = a1;
            continue;
        }
        let (c0, r0) = xs[0].as_chunks::<64>();
        let (c1, r1) = xs[1].as_chunks::<64>();
        for (k, (p, q)) in c0.iter().zip(c1).enumerate() {
            let (m0, m1) = (mask64(p), mask64(q));
            forward_two_block(
                (&p[..], m0),
                (&q[..], m1),
                64 * k,
                w,
                &mut a0,
                &mut a1,
                tick,
            );
        }
        if !r0.is_empty() {
            let (m0, m1) = (nonzero_mask(r0), nonzero_mask(r1));
            forward_two_block((r0, m0), (r1, m1), 64 * c0.len(), w, &mut a0, &mut a1, tick);
        }
        add_bias(&mut a0, b);
        add_bias(&mut a1, b);
        zs[0] = a0;
        zs[1] = a1;
    }
    for (xs, zs) in xr.iter().zip(zr.iter_mut()) {
        let mut acc = [0.0f32; OUT];
        for_each_nonzero(xs, |i, xi| {
            axpy_row(&mut acc, xi, w, i);
            tick();
        });
        add_bias(&mut acc, b);
        *zs = acc;
    }
}

/// `S` samples side by side over the union of their nonzero inputs (rows of at most 64
/// entries), every weight finite: `a_s += x_si·W_i` for each `i` where some `x_si != 0`, in
/// increasing `i`. The zero inputs taken along give the same bits as skipping them (see
/// [`forward_rows_dense`]); the inputs that are zero in all `S` samples are skipped. One loop
/// with one exit per group instead of one mask walk per sample. `tick()` `S / 2` times per
/// step (at least once per two nonzero inputs).
macro_rules! forward_group {
    ($name:ident, $s:literal, $(($a:ident, $i:literal)),+) => {
        #[inline(always)]
        fn $name<const IN: usize, const OUT: usize>(
            xs: &[[f32; IN]; $s],
            w: &[[f32; OUT]; IN],
            b: Option<&[f32; OUT]>,
            zs: &mut [[f32; OUT]; $s],
            tick: &mut impl FnMut(),
        ) {
            if IN == 0 || IN > 64 {
                return;
            }
            let mut m = union_mask(xs);
            $(let mut $a = [0.0f32; OUT];)+
            while m != 0 {
                let i = pop(&mut m).min(IN - 1);
                let wr: [f32; OUT] = w[i];
                $(axpy(&mut $a, xs[$i][i], &wr);)+
                for _ in 0..$s / 2 {
                    tick();
                }
            }
            $(
                add_bias(&mut $a, b);
                zs[$i] = $a;
            )+
        }
    };
}
forward_group!(forward_group2, 2, (a0, 0), (a1, 1));
forward_group!(forward_group4, 4, (a0, 0), (a1, 1), (a2, 2), (a3, 3));

/// [`forward_rows_ticking`] for rows of at most 64 entries and finite weights: groups of
/// samples over the union of their nonzero inputs ([`forward_group2`], or four samples for
/// outputs of at most 16 lanes, to keep 8 vector accumulators in flight); the remaining rows
/// one by one over their own nonzero inputs.
#[inline(always)]
fn forward_rows_union<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    w: &[[f32; OUT]; IN],
    b: Option<&[f32; OUT]>,
    z: &mut [[f32; OUT]],
    tick: &mut impl FnMut(),
) {
    let n = x.len().min(z.len());
    let (x, z) = (&x[..n], &mut z[..n]);
    let done = if OUT <= 16 {
        let (xq, _) = x.as_chunks::<4>();
        let (zq, _) = z.as_chunks_mut::<4>();
        for (xs, zs) in xq.iter().zip(zq.iter_mut()) {
            forward_group4(xs, w, b, zs, tick);
        }
        4 * xq.len()
    } else {
        0
    };
    let (xp, xr) = x[done..].as_chunks::<2>();
    let (zp, zr) = z[done..].as_chunks_mut::<2>();
    for (xs, zs) in xp.iter().zip(zp.iter_mut()) {
        forward_group2(xs, w, b, zs, tick);
    }
    for (xs, zs) in xr.iter().zip(zr.iter_mut()) {
        let mut acc = [0.0f32; OUT];
        for_each_nonzero(xs, |i, xi| {
            axpy_row(&mut acc, xi, w, i);
            tick();
        });
        add_bias(&mut acc, b);
        *zs = acc;
    }
}

/// [`forward_rows`] over rows of a run-time length `in_len` stored one after the other in
/// `x` (e.g. the patches of a convolution): `z_r = x_r·W (+ b)` for
/// `min(z.len(), x.len() / in_len)` rows; `w` has `in_len` rows. Same order, same bits.
#[inline(never)]
pub fn forward_rows_flat<const OUT: usize>(
    x: &[f32],
    in_len: usize,
    w: &[[f32; OUT]],
    b: Option<&[f32; OUT]>,
    z: &mut [[f32; OUT]],
) {
    if in_len == 0 {
        for zr in z.iter_mut() {
            *zr = [0.0; OUT];
            add_bias(zr, b);
        }
        return;
    }
    let n = z.len().min(x.len() / in_len);
    if crate::math::all_finite(w.as_flattened()) {
        return forward_rows_dense(&x[..n * in_len], in_len, w, b, &mut z[..n], &mut || {});
    }
    let mut rows = x.chunks_exact(in_len);
    let mut out = z[..n].chunks_exact_mut(2);
    for zs in &mut out {
        let (Some(x0), Some(x1)) = (rows.next(), rows.next()) else {
            break;
        };
        let mut a0 = [0.0f32; OUT];
        let mut a1 = [0.0f32; OUT];
        for (k, (p, q)) in x0.chunks(64).zip(x1.chunks(64)).enumerate() {
            let (m0, m1) = (nonzero_mask(p), nonzero_mask(q));
            forward_two_block((p, m0), (q, m1), 64 * k, w, &mut a0, &mut a1, &mut || {});
        }
        add_bias(&mut a0, b);
        add_bias(&mut a1, b);
        zs[0] = a0;
        zs[1] = a1;
    }
    if let (Some(zr), Some(xr)) = (out.into_remainder().first_mut(), rows.next()) {
        let mut acc = [0.0f32; OUT];
        for_each_nonzero(xr, |i, xi| axpy_row(&mut acc, xi, w, i));
        add_bias(&mut acc, b);
        *zr = acc;
    }
}

/// [`forward_rows_flat`] when every weight is finite: the zero inputs are not skipped, which
/// gives the same bits — each of their products is `±0` and adding `±0` leaves a sum unchanged
/// (a sum that starts at `+0` is never `-0` in round-to-nearest) — and suits short or dense rows
/// (convolution patches) better than the mask loop. Two rows side by side.
#[inline(always)]
fn forward_rows_dense<const OUT: usize>(
    x: &[f32],
    in_len: usize,
    w: &[[f32; OUT]],
    b: Option<&[f32; OUT]>,
    z: &mut [[f32; OUT]],
    tick: &mut impl FnMut(),
) {
    let w = &w[..in_len.min(w.len())];
    let mut rows = x.chunks_exact(in_len);
    let mut out = z.chunks_exact_mut(2);
    for zs in &mut out {
        let (Some(x0), Some(x1)) = (rows.next(), rows.next()) else {
            break;
        };
        let mut a0 = [0.0f32; OUT];
        let mut a1 = [0.0f32; OUT];
        for ((&v0, &v1), wr) in x0.iter().zip(x1).zip(w) {
            for ((p, q), &wj) in a0.iter_mut().zip(a1.iter_mut()).zip(wr) {
                *p += v0 * wj;
                *q += v1 * wj;
            }
            tick();
        }
        add_bias(&mut a0, b);
        add_bias(&mut a1, b);
        zs[0] = a0;
        zs[1] = a1;
    }
    if let (Some(zr), Some(xr)) = (out.into_remainder().first_mut(), rows.next()) {
        let mut acc = [0.0f32; OUT];
        for (&v, wr) in xr.iter().zip(w) {
            axpy(&mut acc, v, wr);
            tick();
        }
        add_bias(&mut acc, b);
        *zr = acc;
    }
}

/// `dx_b = W·dz_b` for every row, from `wt = Wᵀ`: for each `i`, the sum over `j` in order;
/// two samples side by side (the input gradient of [`backward_rows`]).
#[inline]
pub fn input_grad_rows<const IN: usize, const OUT: usize>(
    wt: &[[f32; IN]; OUT],
    dz: &[[f32; OUT]],
    dx: &mut [[f32; IN]],
) {
    let n = dz.len().min(dx.len());
    let (dp, dr) = dz[..n].as_chunks::<2>();
    let (xp, xr) = dx[..n].as_chunks_mut::<2>();
    for (ds, xs) in dp.iter().zip(xp.iter_mut()) {
        let mut a0 = [0.0f32; IN];
        let mut a1 = [0.0f32; IN];
        for ((wtj, &d0), &d1) in wt.iter().zip(&ds[0]).zip(&ds[1]) {
            for ((p, q), &wij) in a0.iter_mut().zip(a1.iter_mut()).zip(wtj) {
                *p += wij * d0;
                *q += wij * d1;
            }
        }
        xs[0] = a0;
        xs[1] = a1;
    }
    for (ds, xs) in dr.iter().zip(xr.iter_mut()) {
        let mut acc = [0.0f32; IN];
        for (wtj, &dj) in wt.iter().zip(ds) {
            for (a, &wij) in acc.iter_mut().zip(wtj) {
                *a += wij * dj;
            }
        }
        *xs = acc;
    }
}

/// `wt = Wᵀ` (`[out][in]`), for [`backward_rows`]' input gradient.
#[inline]
pub fn transpose<const IN: usize, const OUT: usize>(
    w: &[[f32; OUT]; IN],
    wt: &mut [[f32; IN]; OUT],
) {
    for (i, row) in w.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            wt[j][i] = v;
        }
    }
}

/// `a += x_b·dz_b` over the set bits `b` of `m` (rows of one chunk), `x_b` the value in column
/// `col` of row `b`.
#[inline(always)]
fn grad_column<const OUT: usize>(
    a: &mut [f32; OUT],
    mut m: u64,
    x: &[f32],
    in_len: usize,
    col: usize,
    dz: &[[f32; OUT]],
    tick: &mut impl FnMut(),
) {
    while m != 0 {
        let b = pop(&mut m);
        if let (Some(&v), Some(d)) = (x.get(b * in_len + col), dz.get(b)) {
            axpy(a, v, d);
        }
        tick();
    }
}

/// `gW_i += Σ_r x_ri·dz_r` over the rows `r` of `x` (`in_len` values each, at most 64 rows),
/// in row order, skipping `x_ri == 0`: column by column of `x` (row by row of `gW`), each
/// gradient row kept in registers over the samples, two gradient rows side by side.
#[inline(always)]
fn weight_grad_chunk<const OUT: usize>(
    x: &[f32],
    in_len: usize,
    dz: &[[f32; OUT]],
    gw: &mut [[f32; OUT]],
    mut finish: Option<RowFinish<'_, OUT>>,
    tick: &mut impl FnMut(),
) {
    let n = dz.len().min(x.len() / in_len.max(1)).min(64);
    let cols = in_len.min(gw.len());
    let mut start = 0;
    while start < cols {
        let width = (cols - start).min(64);
        // masks[c]: bit r set iff x[r][start + c] != 0.
        let mut masks = [0u64; 64];
        for r in 0..n {
            let row = &x[r * in_len + start..r * in_len + start + width];
            if let Ok(full) = <&[f32; 64]>::try_from(row) {
                for (m, &v) in masks.iter_mut().zip(full) {
                    *m |= u64::from(v != 0.0) << r;
                }
            } else {
                for (m, &v) in masks.iter_mut().zip(row) {
                    *m |= u64::from(v != 0.0) << r;
                }
            }
        }
        let g = &mut gw[start..start + width];
        let mut c = 0;
        while c + 1 < width {
            let (m0, m1) = (masks[c], masks[c + 1]);
            let (col0, col1) = (start + c, start + c + 1);
            let [mut a0, mut a1] = [g[c], g[c + 1]];
            let (mut m0, mut m1) = (m0, m1);
            while m0 != 0 && m1 != 0 {
                let (b0, b1) = (pop(&mut m0), pop(&mut m1));
                if let (Some(&v0), Some(d0), Some(&v1), Some(d1)) = (
                    x.get(b0 * in_len + col0),
                    dz.get(b0),
                    x.get(b1 * in_len + col1),
                    dz.get(b1),
                ) {
                    for ((p, &e0), (q, &e1)) in a0.iter_mut().zip(d0).zip(a1.iter_mut().zip(d1)) {
                        *p += v0 * e0;
                        *q += v1 * e1;
                    }
                }
                tick();
            }
            grad_column(&mut a0, m0, x, in_len, col0, dz, tick);
            grad_column(&mut a1, m1, x, in_len, col1, dz, tick);
            if let Some(f) = finish.as_deref_mut() {
                f(col0, &mut a0);
                f(col1, &mut a1);
            }
            g[c] = a0;
            g[c + 1] = a1;
            c += 2;
        }
        if c < width {
            let mut a = g[c];
            grad_column(&mut a, masks[c], x, in_len, start + c, dz, tick);
            if let Some(f) = finish.as_deref_mut() {
                f(start + c, &mut a);
            }
            g[c] = a;
        }
        start += width;
    }
}

/// The weight gradient of [`backward_rows`] over rows of a run-time length `in_len` stored one
/// after the other in `x` (e.g. the patches of a convolution): `gW += Σ_r x_rᵀ dz_r` in row
/// order, zero inputs skipped; `gw` has `in_len` rows. Same order, same bits as [`backward`]
/// called row after row.
#[inline(never)]
pub fn weight_grad_rows_flat<const OUT: usize>(
    x: &[f32],
    in_len: usize,
    dz: &[[f32; OUT]],
    gw: &mut [[f32; OUT]],
) {
    if in_len == 0 {
        return;
    }
    let n = dz.len().min(x.len() / in_len);
    let no_negative_zero = gw.as_flattened().iter().all(|g| g.to_bits() != 0x8000_0000);
    if crate::math::all_finite(dz[..n].as_flattened()) && no_negative_zero {
        // Zero inputs not skipped: exact when every `dz` is finite and no gradient is `-0`
        // (`-0 + +0` would give `+0`; a training step's gradients start at `+0` and sums that
        // start at `+0` never become `-0`), see `forward_rows_dense`.
        // About 10 vector registers of accumulators.
        let max = 10 / OUT.div_ceil(8).max(1);
        weight_grad_dense(&x[..n * in_len], in_len, &dz[..n], gw, max);
    } else {
        weight_grad_rows_then(x, in_len, dz, gw, None);
    }
}

/// One pass of [`weight_grad_dense`] over the `K` gradient rows `c..c + K`, each in its own
/// variable (named variables vectorize over `OUT` cleanly; an array of them does not).
macro_rules! grad_pass {
    ($name:ident, $k:literal, $(($a:ident, $v:ident, $i:literal)),+) => {
        #[inline(always)]
        fn $name<const OUT: usize>(x: &[f32], in_len: usize, dz: &[[f32; OUT]], gw: &mut [[f32; OUT]], c: usize) {
            let Some(g) = gw.get_mut(c..c + $k) else {
                return;
            };
            $(let mut $a = g[$i];)+
            for (xr, d) in x.chunks_exact(in_len).zip(dz) {
                let Some(&[$($v),+]) = xr.get(c..c + $k).and_then(|s| <&[f32; $k]>::try_from(s).ok()) else {
                    continue;
                };
                $(axpy(&mut $a, $v, d);)+
            }
            $(g[$i] = $a;)+
        }
    };
}
grad_pass!(grad_pass1, 1, (a0, v0, 0));
grad_pass!(grad_pass2, 2, (a0, v0, 0), (a1, v1, 1));
grad_pass!(grad_pass3, 3, (a0, v0, 0), (a1, v1, 1), (a2, v2, 2));
grad_pass!(
    grad_pass4,
    4,
    (a0, v0, 0),
    (a1, v1, 1),
    (a2, v2, 2),
    (a3, v3, 3)
);
grad_pass!(
    grad_pass5,
    5,
    (a0, v0, 0),
    (a1, v1, 1),
    (a2, v2, 2),
    (a3, v3, 3),
    (a4, v4, 4)
);

/// `gW_i += Σ_r x_ri·dz_r` in row order without skipping zero inputs (exact when every `dz` is
/// finite and no gradient is `-0`): a few gradient rows at a time stay in registers over all
/// the rows of `x` (up to `max` rows per pass, as many passes as needed, balanced).
#[inline(always)]
fn weight_grad_dense<const OUT: usize>(
    x: &[f32],
    in_len: usize,
    dz: &[[f32; OUT]],
    gw: &mut [[f32; OUT]],
    max: usize,
) {
    let cols = in_len.min(gw.len());
    let max = max.clamp(1, 5);
    let passes = cols.div_ceil(max);
    let mut c = 0;
    for p in 0..passes {
        // Balanced: the first passes take one column more than the last ones.
        let k = (cols - c).div_ceil(passes - p);
        match k {
            1 => grad_pass1(x, in_len, dz, gw, c),
            2 => grad_pass2(x, in_len, dz, gw, c),
            3 => grad_pass3(x, in_len, dz, gw, c),
            4 => grad_pass4(x, in_len, dz, gw, c),
            _ => grad_pass5(x, in_len, dz, gw, c),
        }
        c += k.min(5);
    }
}

/// [`weight_grad_rows_flat`], then `finish(i, row)` on every gradient row `i` (in increasing
/// `i`) right after its last addition, while the row is still in registers. A training step
/// uses it for the last rows of a batch to add the weight penalty's gradient — the last
/// addition to each element in the core's order too — and to sum the penalty itself in
/// index order; that sum's chain of dependent additions then overlaps the gradient work
/// instead of running alone afterwards.
#[inline(never)]
pub fn weight_grad_rows_then<const OUT: usize>(
    x: &[f32],
    in_len: usize,
    dz: &[[f32; OUT]],
    gw: &mut [[f32; OUT]],
    finish: Option<RowFinish<'_, OUT>>,
) {
    weight_grad_inline(x, in_len, dz, gw, finish, &mut || {});
}

/// [`weight_grad_rows_then`], inlined: a caller with a constant `in_len` gets constant-size
/// loops.
#[inline(always)]
fn weight_grad_inline<const OUT: usize>(
    x: &[f32],
    in_len: usize,
    dz: &[[f32; OUT]],
    gw: &mut [[f32; OUT]],
    mut finish: Option<RowFinish<'_, OUT>>,
    tick: &mut impl FnMut(),
) {
    if in_len == 0 {
        return;
    }
    let n = dz.len().min(x.len() / in_len);
    let mut start = 0;
    loop {
        let end = (start + 64).min(n);
        let last = end == n;
        let f = if last { finish.take() } else { None };
        weight_grad_chunk(
            &x[start * in_len..end * in_len],
            in_len,
            &dz[start..end],
            gw,
            f,
            tick,
        );
        start = end;
        if last {
            break;
        }
    }
}

/// One pass of [`weight_grad_fixed`] over the gradient rows `cols` (increasing), each kept in
/// its own variable over all the samples: `gW_c += x_bc·dz_b` in sample order, zero inputs
/// *not* skipped. Returns `false` (nothing done) when one of the rows holds a `-0`, for which
/// adding a `+0` product would not be exact.
macro_rules! grad_cols {
    ($name:ident, $k:literal, $(($a:ident, $i:literal)),+) => {
        #[inline(always)]
        fn $name<const IN: usize, const OUT: usize>(
            x: &[[f32; IN]],
            dz: &[[f32; OUT]],
            gw: &mut [[f32; OUT]; IN],
            cols: &[usize],
            tick: &mut impl FnMut(),
        ) -> bool {
            let Ok(&[$($a),+]) = <&[usize; $k]>::try_from(cols) else {
                return false;
            };
            // Clamped (no change for an index in range): no bounds checks in the loop.
            $(let $a = $a.min(IN - 1);)+
            let neg_zero = [$(has_neg_zero(&gw[$a])),+];
            if neg_zero.iter().any(|&z| z) {
                return false;
            }
            let cols = [$($a),+];
            let [$(mut $a),+] = cols.map(|c| gw[c]);
            for (xr, d) in x.iter().zip(dz) {
                // A copy of the row: the compiler then loads it once, in whole vectors.
                let d: [f32; OUT] = *d;
                $(axpy(&mut $a, xr[cols[$i]], &d);)+
                tick();
            }
            $(gw[cols[$i]] = $a;)+
            true
        }
    };
}
grad_cols!(grad_cols1, 1, (a0, 0));
grad_cols!(grad_cols2, 2, (a0, 0), (a1, 1));
grad_cols!(grad_cols3, 3, (a0, 0), (a1, 1), (a2, 2));
grad_cols!(grad_cols4, 4, (a0, 0), (a1, 1), (a2, 2), (a3, 3));
grad_cols!(grad_cols5, 5, (a0, 0), (a1, 1), (a2, 2), (a3, 3), (a4, 4));

/// True when a value of `row` is `-0`.
#[inline(always)]
fn has_neg_zero<const OUT: usize>(row: &[f32; OUT]) -> bool {
    let mut z = false;
    for &v in row {
        z |= v.to_bits() == 0x8000_0000;
    }
    z
}

/// The weight gradient of [`backward_rows`] for a constant input width, when every `dz` is
/// finite: `gW_i += Σ_b x_bi·dz_b` in sample order. Rows whose input column is zero in every
/// sample get no addition at all (all their terms are skipped, as in [`backward`]); the other
/// rows take every sample's term, zero inputs included — exact because each such term is
/// `±0` (`dz` finite) and the row is not `-0` (checked per row; a row that is gets the
/// skipping loop): a sum that is not `-0` is unchanged by adding `±0` and never becomes `-0`
/// in round-to-nearest. A few rows at a time stay in registers over all the samples (no
/// bit-mask walk, no data-dependent branch). `finish` is called on every row, in increasing
/// order, after its last addition.
#[inline(always)]
fn weight_grad_fixed<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    dz: &[[f32; OUT]],
    gw: &mut [[f32; OUT]; IN],
    mut finish: Option<RowFinish<'_, OUT>>,
    tick: &mut impl FnMut(),
) {
    if IN == 0 {
        return;
    }
    let n = x.len().min(dz.len());
    let (x, dz) = (&x[..n], &dz[..n]);
    // The columns with a nonzero input in some sample: the OR of the rows' bit masks, per
    // block of 64 columns.
    let mut cols = [0usize; IN];
    let mut used = 0;
    for k in 0..IN.div_ceil(64) {
        let mut m = if IN <= 64 { union_mask(x) } else { 0 };
        if IN > 64 {
            for xr in x {
                m |= nonzero_mask(xr.get(64 * k..).unwrap_or(&[]));
            }
        }
        while m != 0 {
            if let Some(c) = cols.get_mut(used) {
                *c = 64 * k + pop(&mut m);
            }
            used += 1;
        }
    }
    let cols = &cols[..used.min(IN)];
    // About 8 vector registers of accumulators per pass, passes balanced.
    let max = (8 / OUT.div_ceil(8).max(1)).clamp(1, 5);
    let passes = cols.len().div_ceil(max);
    let mut next = 0; // the first row not finished yet
    let mut start = 0;
    for p in 0..passes {
        let k = (cols.len() - start).div_ceil(passes - p).min(max);
        let group = &cols[start..start + k];
        let done = match k {
            1 => grad_cols1(x, dz, gw, group, tick),
            2 => grad_cols2(x, dz, gw, group, tick),
            3 => grad_cols3(x, dz, gw, group, tick),
            4 => grad_cols4(x, dz, gw, group, tick),
            _ => grad_cols5(x, dz, gw, group, tick),
        };
        for &c in group {
            if !done {
                // A `-0` in the group: the skipping loop, row by row.
                if let Some(g) = gw.get_mut(c) {
                    let mut a = *g;
                    for (xr, d) in x.iter().zip(dz) {
                        let v = xr.get(c).copied().unwrap_or(0.0);
                        if v != 0.0 {
                            axpy(&mut a, v, d);
                        }
                        tick();
                    }
                    *g = a;
                }
            }
            if let Some(f) = finish.as_deref_mut() {
                // Rows before `c` without any addition, then `c`.
                for (i, row) in gw.iter_mut().enumerate().take(c + 1).skip(next) {
                    f(i, row);
                }
            }
            next = c + 1;
        }
        start += k;
    }
    if let Some(f) = finish {
        for (i, row) in gw.iter_mut().enumerate().skip(next) {
            f(i, row);
        }
    }
}

/// What [`weight_grad_rows_then`] calls on each finished gradient row: `(row index, row)`.
pub type RowFinish<'a, const OUT: usize> = &'a mut dyn FnMut(usize, &mut [f32; OUT]);

/// `gb += dz_r` for every row, in row order.
#[inline]
pub fn bias_grad_rows<const OUT: usize>(dz: &[[f32; OUT]], gb: &mut [f32; OUT]) {
    for dzb in dz {
        for (g, &dj) in gb.iter_mut().zip(dzb) {
            *g += dj;
        }
    }
}

/// Batched backward pass over `dz.len()` samples, with exactly the order of [`backward`]
/// called sample after sample (see the module docs): `gW += Σ_b x_bᵀ dz_b`, `gb += Σ_b dz_b`
/// (sample order), and `dx_b = W·dz_b` when `dx` is given, computed from the transposed
/// kernel `wt` (`[out][in]`, see [`transpose`]) so the sums over `j` run side by side for all
/// `i`. The weight gradient runs row by row (each row's sum over the samples stays in
/// registers), which gives every element the same sequence of additions as sample by sample.
///
/// ```
/// use microfit_core::kernels::dense::{backward, backward_rows, transpose};
/// let w = [[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]];
/// let x = [[1.0, 0.0, 2.0], [0.0, -1.0, 0.25], [3.0, 0.5, 0.0]];
/// let dz = [[0.5, -1.0], [2.0, 0.25], [-1.5, 0.75]];
/// let mut wt = [[0.0; 3]; 2];
/// transpose(&w, &mut wt);
/// let (mut gw, mut gb, mut dx) = ([[0.0; 2]; 3], [0.0; 2], [[0.0; 3]; 3]);
/// backward_rows(&x, &wt, &dz, &mut gw, Some(&mut gb), Some(&mut dx));
/// let (mut gw1, mut gb1) = ([0.0; 6], [0.0; 2]);
/// for s in 0..3 {
///     let mut dx1 = [0.0; 3];
///     backward(&x[s], w.as_flattened(), &dz[s], &mut gw1, Some(&mut gb1), Some(&mut dx1));
///     assert_eq!(dx[s], dx1);
/// }
/// assert_eq!((gw.as_flattened(), gb), (&gw1[..], gb1));
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
    backward_rows_ticking(x, wt, dz, gw, gb, dx, None, &mut || {});
}

/// The weight gradient of [`backward_rows`] alone: `gW += Σ_b x_bᵀ dz_b` in sample order,
/// zero inputs skipped (same bits as [`backward`] called sample after sample). A caller may
/// pad the rows of `dz` and `gW` with zero lanes (e.g. 10 outputs to 16, whole vectors): the
/// real lanes get exactly the same additions.
#[inline(never)]
pub fn weight_grad_rows<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    dz: &[[f32; OUT]],
    gw: &mut [[f32; OUT]; IN],
) {
    let n = x.len().min(dz.len());
    if crate::math::all_finite_inline(dz[..n].as_flattened()) {
        weight_grad_fixed(&x[..n], &dz[..n], gw, None, &mut || {});
    } else {
        weight_grad_inline(x[..n].as_flattened(), IN, &dz[..n], gw, None, &mut || {});
    }
}

/// [`backward_rows`], with `finish` called on each weight-gradient row after its last
/// addition (see [`weight_grad_rows_then`]).
#[inline]
pub fn backward_rows_then<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    wt: &[[f32; IN]; OUT],
    dz: &[[f32; OUT]],
    gw: &mut [[f32; OUT]; IN],
    gb: Option<&mut [f32; OUT]>,
    dx: Option<&mut [[f32; IN]]>,
    finish: Option<RowFinish<'_, OUT>>,
) {
    backward_rows_ticking(x, wt, dz, gw, gb, dx, finish, &mut || {});
}

/// [`backward_rows_then`] that also calls `tick()` once per step of the weight gradient's inner
/// loop (see [`forward_rows_ticking`]: a caller hangs a chain of dependent additions on it).
#[inline(never)]
pub fn backward_rows_ticking<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    wt: &[[f32; IN]; OUT],
    dz: &[[f32; OUT]],
    gw: &mut [[f32; OUT]; IN],
    gb: Option<&mut [f32; OUT]>,
    dx: Option<&mut [[f32; IN]]>,
    finish: Option<RowFinish<'_, OUT>>,
    tick: &mut impl FnMut(),
) {
    let n = x.len().min(dz.len());
    if let Some(dx) = dx {
        input_grad_rows(wt, &dz[..n], dx);
    }
    if crate::math::all_finite_inline(dz[..n].as_flattened()) {
        weight_grad_fixed(&x[..n], &dz[..n], gw, finish, tick);
    } else {
        weight_grad_inline(x[..n].as_flattened(), IN, &dz[..n], gw, finish, tick);
    }
    if let Some(gb) = gb {
        bias_grad_rows(&dz[..n], gb);
    }
}
