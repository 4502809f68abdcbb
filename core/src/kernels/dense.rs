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
//! `-0` because it starts at `+0`); with non-finite weights it keeps `0·∞` out of the sum.
//! These are the per-sample kernels (one sample: a microcontroller's tile of one); a tile of
//! several samples runs the products of [`super::gemm`], which take the zero terms along only
//! where that cannot change a bit, so both give the same bits in every case.

/// `z = x·W (+ b)`; `x.len() = in`, `z.len() = out`, `w.len() = in·out`.
///
/// ```
/// use microfit_core::kernels::dense::forward;
/// let mut z = [0.0; 2];
/// forward(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], Some(&[0.5, 0.5]), &mut z);
/// assert_eq!(z, [7.5, 10.5]);
/// ```
///
/// Wide layers are summed [`BLOCK`] outputs at a time (each block's sums stay in registers
/// over all the inputs), then the remaining outputs: every `z_j` still receives its terms in
/// the order above.
#[inline]
pub fn forward(x: &[f32], w: &[f32], b: Option<&[f32]>, z: &mut [f32]) {
    let out = z.len();
    if out == 0 {
        return;
    }
    let rows = || x.iter().zip(w.chunks_exact(out));
    let (blocks, tail) = z.as_chunks_mut::<BLOCK>();
    for (k, zb) in blocks.iter_mut().enumerate() {
        let j0 = k * BLOCK;
        let mut acc = [0.0f32; BLOCK];
        for (&xi, row) in rows() {
            if xi == 0.0 {
                continue;
            }
            for (a, &wij) in acc.iter_mut().zip(row.iter().skip(j0)) {
                *a += xi * wij;
            }
        }
        if let Some(b) = b {
            for (a, &bj) in acc.iter_mut().zip(b.iter().skip(j0)) {
                *a += bj;
            }
        }
        *zb = acc;
    }
    let j0 = out - tail.len();
    tail.fill(0.0);
    for (&xi, row) in rows() {
        if xi == 0.0 {
            continue;
        }
        for (zj, &wij) in tail.iter_mut().zip(row.iter().skip(j0)) {
            *zj += xi * wij;
        }
    }
    if let Some(b) = b {
        for (zj, &bj) in tail.iter_mut().zip(b.iter().skip(j0)) {
            *zj += bj;
        }
    }
}

/// Outputs whose sums (or gradients) the per-sample kernels keep in registers at once: a
/// Cortex-M4F has 32 single-precision registers.
pub const BLOCK: usize = 16;

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
        None => add_rows(x, dz, gw),
    }
    if let Some(gb) = gb {
        for (g, &dj) in gb.iter_mut().zip(dz) {
            *g += dj;
        }
    }
}

/// [`backward`] with `dx` for an input that is a ReLU's output (`x_i >= 0`, never NaN):
/// where `x_i == 0` it writes `dx_i = 0` instead of `Σ_j W_ij dz_j`, and skips row `i` of `gW`
/// as [`backward`] does. The ReLU's backward pass sets exactly those `dx_i` to 0 (its output is
/// 0 there), so everything computed from `dx` afterwards has the bits of [`backward`]'s; a
/// sparse hidden layer pays for its active units only. `gW` and `gb` are [`backward`]'s.
///
/// ```
/// use microfit_core::kernels::dense::{backward, backward_relu_input};
/// let (x, w, dz) = ([0.0, 2.0], [1.0, 2.0, 3.0, 4.0], [1.0, -1.0]);
/// let (mut g1, mut b1, mut d1) = ([0.0; 4], [0.0; 2], [0.0; 2]);
/// let (mut g2, mut b2, mut d2) = ([0.0; 4], [0.0; 2], [0.0; 2]);
/// backward(&x, &w, &dz, &mut g1, Some(&mut b1), Some(&mut d1));
/// backward_relu_input(&x, &w, &dz, &mut g2, Some(&mut b2), &mut d2);
/// assert_eq!((g1, b1), (g2, b2));
/// assert_eq!((d1, d2), ([-1.0, -1.0], [0.0, -1.0])); // a ReLU's backward zeroes d[0]
/// ```
#[inline]
pub fn backward_relu_input(
    x: &[f32],
    w: &[f32],
    dz: &[f32],
    gw: &mut [f32],
    gb: Option<&mut [f32]>,
    dx: &mut [f32],
) {
    let out = dz.len();
    if out == 0 {
        return;
    }
    let rows = w.chunks_exact(out).zip(gw.chunks_exact_mut(out));
    for ((dxi, &xi), (row, grow)) in dx.iter_mut().zip(x).zip(rows) {
        if xi == 0.0 {
            *dxi = 0.0;
            continue;
        }
        let mut s = 0.0f32;
        for (&wij, &dj) in row.iter().zip(dz) {
            s += wij * dj;
        }
        *dxi = s;
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

/// `gW += xᵀ·dz` row by row (rows with `x_i == 0` skipped), [`BLOCK`] columns at a time (that
/// block of `dz` stays in registers over all the rows), then the remaining columns. One term
/// per accumulator: the order of the columns is free.
#[inline(always)]
fn add_rows(x: &[f32], dz: &[f32], gw: &mut [f32]) {
    let out = dz.len();
    let (blocks, tail) = dz.as_chunks::<BLOCK>();
    for (k, d) in blocks.iter().enumerate() {
        let j0 = k * BLOCK;
        let d = *d;
        for (&xi, grow) in x.iter().zip(gw.chunks_exact_mut(out)) {
            if xi != 0.0 {
                for (g, &dj) in grow.iter_mut().skip(j0).zip(&d) {
                    *g += xi * dj;
                }
            }
        }
    }
    let j0 = out - tail.len();
    for (&xi, grow) in x.iter().zip(gw.chunks_exact_mut(out)) {
        if xi != 0.0 {
            for (g, &dj) in grow.iter_mut().skip(j0).zip(tail) {
                *g += xi * dj;
            }
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

/// The forward pass of two Dense layers, the first with a ReLU, in one pass over the hidden
/// units, for one sample:
///
/// ```text
/// for each hidden unit j, in order:
///     z1_j = ((0 + x_0 W1_0j) + x_1 W1_1j) + … + b1_j      (the order of `forward`; not stored)
///     y1_j = relu(z1_j)
///     if y1_j ≠ 0:  z2 += y1_j · W2_j                       (row j of W2, skipped at 0 as in `forward`)
/// z2 += b2
/// ```
///
/// Every `z1_j` and `z2_k` is summed in [`forward`]'s order, so the bits are those of
/// [`forward`] then ReLU for the first layer and [`forward`] for the second; only the order in
/// which *different* sums are advanced changes. [`forward`] skips the terms of zero inputs;
/// here a zero input is multiplied by a row of zeros instead of its row of `W1` (chosen once per
/// sample, not tested per term), which adds `±0`: that can only change the sign of a zero sum,
/// which the ReLU maps to the same `+0`, and it keeps a non-finite weight of a zero input out
/// of the sum as the skip does. The first layer's pre-activations are not
/// stored: a ReLU's backward pass reads its output only. With a few inputs (they stay in registers)
/// and the second layer's accumulators in registers, each hidden unit is computed, activated
/// and consumed at once: no pass over the hidden layer to apply the ReLU and none to find its
/// zeros.
///
/// ```
/// use microfit_core::kernels::dense::{forward, relu_pair_forward};
/// let (x, w1, b1) = ([1.0f32, -2.0], [[1.0, 0.5], [0.25, -1.0]], [0.0, 0.5]);
/// let (w2, b2) = ([[1.0f32], [2.0]], [0.25]);
/// let (mut y1, mut z2) = ([0.0; 2], [0.0; 1]);
/// relu_pair_forward(&x, (&w1, Some(&b1)), &mut y1, (&w2, Some(&b2)), &mut z2);
/// let (mut r1, mut r2) = ([0.0; 2], [0.0; 1]);
/// forward(&x, w1.as_flattened(), Some(&b1), &mut r1);
/// let h = r1.map(|v| if v > 0.0 { v } else { 0.0 });
/// forward(&h, w2.as_flattened(), Some(&b2), &mut r2);
/// assert_eq!((y1, z2), (h, r2));
/// ```
#[inline(always)]
pub fn relu_pair_forward<const I: usize, const H: usize, const O: usize>(
    x: &[f32; I],
    (w1, b1): (&[[f32; H]; I], Option<&[f32; H]>),
    y1: &mut [f32; H],
    (w2, b2): (&[[f32; O]; H], Option<&[f32; O]>),
    z2: &mut [f32; O],
) {
    let x = *x;
    // Row i of W1, or zeros for a zero input (see above). The inputs' product is 0 or NaN
    // whenever an input is zero (and at times when none is, through underflow or `0·∞`: the
    // loop then changes nothing), so a sample with no zero input costs one test.
    let mut w1 = w1.each_ref();
    let p = x.iter().fold(1.0f32, |p, &v| p * v);
    if p == 0.0 || p.is_nan() {
        for (r, &xi) in w1.iter_mut().zip(&x) {
            if xi == 0.0 {
                *r = const { &[0.0; H] };
            }
        }
    }
    let mut acc = [0.0f32; O];
    // A fixed number of units per round (the compiler unrolls it).
    const ROUND: usize = 8;
    let mut j0 = 0;
    while j0 < H {
        for j in j0..(j0 + ROUND).min(H) {
            // `forward` starts every sum at +0: `+0 + p` is `p` except for `p = -0`, so
            // starting from the first product changes at most the sign of a zero sum, which the
            // ReLU below turns into the same `+0` (and `z1` is not stored).
            let mut terms = x.iter().zip(w1);
            let mut s = match terms.next() {
                Some((xi, row)) => xi * row[j],
                None => 0.0,
            };
            for (xi, row) in terms {
                s += xi * row[j];
            }
            if let Some(b1) = b1 {
                s += b1[j];
            }
            // ReLU (`s > 0 ? s : 0`), and the second layer's zero-input skip on the same test.
            if s > 0.0 {
                y1[j] = s;
                for (a, &w) in acc.iter_mut().zip(&w2[j]) {
                    *a += s * w;
                }
            } else {
                y1[j] = 0.0;
            }
        }
        j0 += ROUND;
    }
    if let Some(b2) = b2 {
        for (a, &b) in acc.iter_mut().zip(b2) {
            *a += b;
        }
    }
    *z2 = acc;
}

/// The weight gradients of two Dense layers, the first with a ReLU and the first layer of a
/// training step, in one pass over the hidden units, for one sample; `dz2` is the second
/// layer's pre-activation gradient, `y1` the first layer's output:
///
/// ```text
/// for each hidden unit j with y1_j ≠ 0, in order:
///     d = (0 + W2_j0 dz2_0) + W2_j1 dz2_1 + …         (the second layer's input gradient)
///     gW2_j += y1_j · dz2                              (row j; rows with y1_j = 0 skipped)
///     gb1_j += d,  gW1_·j += x · d                       (column j of the first layer)
/// gb2 += dz2
/// ```
///
/// The bits of [`backward_relu_input`] for the second layer followed by [`backward_columns`]
/// (ReLU folded in) for the first, under [`backward_columns`]' conditions — every `x_i`
/// finite and no accumulator holding `-0`, which a training step guarantees for its first
/// layer — since every accumulator receives the same terms in the same order: the hidden
/// units the ReLU switched off cost one test, and the second layer's input gradient is used
/// where it is computed instead of going through memory.
///
/// ```
/// use microfit_core::kernels::dense::{backward_columns, backward_relu_input, relu_pair_backward};
/// let (x, y1, dz2) = ([1.0f32, -2.0], [0.0f32, 1.5], [0.5f32, -0.25]);
/// let w2 = [[1.0f32, 2.0], [3.0, 4.0]];
/// let (mut gw1, mut gb1, mut gw2, mut gb2) = ([[0.0f32; 2]; 2], [0.0; 2], [[0.0f32; 2]; 2], [0.0; 2]);
/// relu_pair_backward(&x, &y1, (&mut gw1, Some(&mut gb1)), &w2, &dz2, (&mut gw2, Some(&mut gb2)));
/// let (mut rw1, mut rb1, mut rw2, mut rb2, mut d1) = ([0.0f32; 4], [0.0; 2], [0.0f32; 4], [0.0; 2], [0.0; 2]);
/// backward_relu_input(&y1, w2.as_flattened(), &dz2, &mut rw2, Some(&mut rb2), &mut d1);
/// backward_columns(&x, &d1, &mut rw1, Some(&mut rb1), Some(&y1));
/// assert_eq!((gw1.as_flattened(), gb1, gw2.as_flattened(), gb2), (&rw1[..], rb1, &rw2[..], rb2));
/// ```
#[inline(always)]
pub fn relu_pair_backward<const I: usize, const H: usize, const O: usize>(
    x: &[f32; I],
    y1: &[f32; H],
    (gw1, gb1): (&mut [[f32; H]; I], Option<&mut [f32; H]>),
    w2: &[[f32; O]; H],
    dz2: &[f32; O],
    (gw2, gb2): (&mut [[f32; O]; H], Option<&mut [f32; O]>),
) {
    let (x, dz) = (*x, *dz2);
    let mut gb1 = gb1;
    // Four units per round (a fixed count the compiler unrolls: the test of an inactive unit
    // is then a load and a branch).
    const ROUND: usize = 4;
    let mut j0 = 0;
    while j0 < H {
        for j in j0..(j0 + ROUND).min(H) {
            let h = y1[j];
            // A ReLU output is `+0` or positive: the units it switched off.
            if h <= 0.0 {
                continue;
            }
            // `backward_relu_input` starts `d` at +0; starting from the first product changes
            // at most the sign of a zero `d`, and adding `±0` or `x_i·(±0)` changes no
            // accumulator.
            let mut terms = w2[j].iter().zip(&dz);
            let mut d = match terms.next() {
                Some((&w, &dk)) => w * dk,
                None => 0.0,
            };
            for (&w, &dk) in terms {
                d += w * dk;
            }
            for (g, &dk) in gw2[j].iter_mut().zip(&dz) {
                *g += h * dk;
            }
            // `d = 0` adds `±0` (x is finite), which changes no accumulator: no test.
            if let Some(gb1) = gb1.as_deref_mut() {
                gb1[j] += d;
            }
            for (&xi, g1i) in x.iter().zip(gw1.iter_mut()) {
                g1i[j] += xi * d;
            }
        }
        j0 += ROUND;
    }
    if let Some(gb2) = gb2 {
        for (g, &dk) in gb2.iter_mut().zip(&dz) {
            *g += dk;
        }
    }
}
