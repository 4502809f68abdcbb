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
