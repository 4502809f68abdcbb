//! The three matrix products of a Dense layer over a tile of samples, with run-time sizes
//! (typed and run-time models call the very same code), in the **per-sample kernels' order**
//! ([`super::dense`]): a tile computes exactly what sample-after-sample would.
//!
//! | product | is | order of each sum |
//! |---|---|---|
//! | [`matmul`] `c = a·b (+ bias)` | forward `z = x·W + b` | over `p` increasing from `+0`, bias last |
//! | [`matmul_bt`] `c = a·bᵀ` | input gradient `dx = dz·Wᵀ` | over `j` increasing from `+0` |
//! | [`matmul_at_acc`] `c += aᵀ·b` | weight gradient `gW += xᵀ·dz` | over the rows (samples) in order |
//!
//! The per-sample kernels skip the terms whose input is 0 (`x_i == 0`). Here they are taken
//! along when that cannot change a bit — a skipped term would be `±0`, and adding `±0` to a sum
//! that is not `-0` leaves it unchanged (sums started at `+0` never become `-0` in
//! round-to-nearest): [`matmul`] when every weight is finite, [`matmul_at_acc`] when every
//! `dz` is finite and no accumulator holds `-0`. Otherwise they fall back to the per-sample
//! kernels row by row.
//!
//! **How**: one micro-kernel, `MR = 4` rows × `NR = 16` columns of independent sums kept in
//! registers while the reduction index runs in order, fed by small packed panels on the stack
//! (zero-padded at the edges: a padding lane computes its own zeros and is never stored). The
//! compiler vectorizes the 16 columns with whatever vector unit it is allowed to use — SSE2 by
//! default, AVX2 or AVX-512 in the std runtime's `Host` backend. No multiply is ever fused with
//! an add, so the bits are the same on every target.
//!
//! ```
//! use microfit_core::kernels::gemm::{matmul, MatMul};
//! use microfit_core::kernels::dense::forward;
//! let (x, w, b) = ([1.0, 0.0, 2.0, 0.5, -1.0, 0.25], [1.0, 2.0, 3.0, 4.0, 0.5, -1.0], [0.5, 0.5]);
//! let mut z = [0.0; 4];
//! matmul(MatMul { a: &x, b: &w, bias: Some(&b), c: &mut z, rows: 2, k: 3, m: 2 });
//! let mut z1 = [0.0; 2];
//! forward(&x[3..], &w, Some(&b), &mut z1);
//! assert_eq!(z[2..], z1);
//! ```

use super::dense;

/// Rows of a micro-kernel block.
const MR: usize = 4;
/// Columns of a micro-kernel block (16 lanes: two AVX2 vectors, one AVX-512 vector).
const NR: usize = 16;
/// Reduction steps per packed panel (the panels live on the stack: `KC · (MR + NR)` floats).
const KC: usize = 256;

/// `c = a·b (+ bias)`: `a` is `rows × k`, `b` is `k × m`, `c` is `rows × m`, all row-major.
#[derive(Debug)]
pub struct MatMul<'a> {
    /// `rows × k`.
    pub a: &'a [f32],
    /// `k × m`.
    pub b: &'a [f32],
    /// `m` values added last, when given.
    pub bias: Option<&'a [f32]>,
    /// `rows × m`, overwritten.
    pub c: &'a mut [f32],
    /// Rows of `a` and `c`.
    pub rows: usize,
    /// Columns of `a`, rows of `b`.
    pub k: usize,
    /// Columns of `b` and `c`.
    pub m: usize,
}

/// `c = a·bᵀ`: `a` is `rows × m`, `b` is `k × m`, `c` is `rows × k`.
#[derive(Debug)]
pub struct MatMulBt<'a> {
    /// `rows × m` (the output gradients `dz`).
    pub a: &'a [f32],
    /// `k × m` (the kernel `W`).
    pub b: &'a [f32],
    /// `rows × k`, overwritten (the input gradients `dx`).
    pub c: &'a mut [f32],
    /// Rows of `a` and `c`.
    pub rows: usize,
    /// Rows of `b`, columns of `c`.
    pub k: usize,
    /// Columns of `a` and `b`.
    pub m: usize,
}

/// `c += aᵀ·b`: `a` is `rows × k`, `b` is `rows × m`, `c` is `k × m`.
#[derive(Debug)]
pub struct MatMulAtAcc<'a> {
    /// `rows × k` (the inputs `x`).
    pub a: &'a [f32],
    /// `rows × m` (the output gradients `dz`).
    pub b: &'a [f32],
    /// `k × m`, accumulated into (the weight gradient `gW`).
    pub c: &'a mut [f32],
    /// Rows of `a` and `b` (samples).
    pub rows: usize,
    /// Columns of `a`, rows of `c`.
    pub k: usize,
    /// Columns of `b` and `c`.
    pub m: usize,
}

/// `acc[r][l] += x[r]·y[l]` for each packed step, in order (IEEE multiplication commutes, so
/// the operands' order in the per-sample kernels does not matter).
#[inline(always)]
fn micro<const R: usize>(acc: &mut [[f32; NR]; R], xs: &[[f32; MR]], ys: &[[f32; NR]]) {
    for (x, y) in xs.iter().zip(ys) {
        for r in 0..R {
            let xr = x[r];
            for l in 0..NR {
                acc[r][l] += xr * y[l];
            }
        }
    }
}

/// Runs [`micro`] for a block of `rows <= MR` rows of `c` (row `r` at `c[(r0 + r) · ldc ..]`,
/// columns `j0..j0 + NR`): the sums start at 0 when `first`, else at `c`'s values, and are
/// stored back (the lanes past the end of a row are dropped).
#[inline(always)]
fn block(
    rows: usize,
    xs: &[[f32; MR]],
    ys: &[[f32; NR]],
    c: &mut [f32],
    (r0, ldc, j0): (usize, usize, usize),
    first: bool,
) {
    macro_rules! run {
        ($r:literal) => {{
            let mut acc: [[f32; NR]; $r] = core::array::from_fn(|r| {
                if first {
                    [0.0; NR]
                } else {
                    lanes(c.get((r0 + r) * ldc..(r0 + r + 1) * ldc).unwrap_or(&[]), j0)
                }
            });
            micro::<$r>(&mut acc, xs, ys);
            for (r, a) in acc.iter().enumerate() {
                if let Some(row) = c.get_mut((r0 + r) * ldc..(r0 + r + 1) * ldc) {
                    put(row, j0, a);
                }
            }
        }};
    }
    match rows {
        1 => run!(1),
        2 => run!(2),
        3 => run!(3),
        _ => run!(4),
    }
}

/// `out[l] = row[j0 + l]` for the lanes that exist, `0` for the others.
#[inline(always)]
fn lanes<const N: usize>(row: &[f32], j0: usize) -> [f32; N] {
    match row.get(j0..).and_then(<[f32]>::first_chunk::<N>) {
        Some(v) => *v,
        None => {
            let mut v = [0.0; N];
            for (d, &s) in v.iter_mut().zip(row.get(j0..).unwrap_or(&[])) {
                *d = s;
            }
            v
        }
    }
}

/// Writes the lanes of `v` to `dst[j0..]` (those past the end of `dst` are dropped).
#[inline(always)]
fn put(dst: &mut [f32], j0: usize, v: &[f32; NR]) {
    if let Some(d) = dst.get_mut(j0..) {
        for (d, &s) in d.iter_mut().zip(v) {
            *d = s;
        }
    }
}

/// True when some value is `-0`.
#[inline(always)]
fn has_neg_zero(v: &[f32]) -> bool {
    let mut z = false;
    for &x in v {
        z |= x.to_bits() == 0x8000_0000;
    }
    z
}

/// `c = a·b (+ bias)` ([`MatMul`]), each `c[r][j] = ((0 + a[r][0]·b[0][j]) + a[r][1]·b[1][j] +
/// …) + bias[j]`: the bits of [`dense::forward`] on each row.
///
/// # Panics
/// Never: slices shorter than the sizes say make the missing rows and columns untouched.
#[inline(always)]
pub fn matmul(mm: MatMul<'_>) {
    let MatMul {
        a,
        b,
        bias,
        c,
        rows,
        k,
        m,
    } = mm;
    if m == 0 {
        return;
    }
    let rows = rows
        .min(c.len() / m)
        .min(a.len().checked_div(k).unwrap_or(rows));
    let b = b.get(..k * m).unwrap_or(b);
    if k == 0 || !crate::math::all_finite_inline(b) {
        // Non-finite weights (or no inputs): the per-sample kernel, which skips zero inputs.
        for (x, z) in a.chunks(k.max(1)).zip(c.chunks_exact_mut(m)).take(rows) {
            dense::forward(if k == 0 { &[] } else { x }, b, bias, z);
        }
        return;
    }
    let mut xs = [[0.0f32; MR]; KC];
    let mut ys = [[0.0f32; NR]; KC];
    let mut j0 = 0;
    while j0 < m {
        let mut p0 = 0;
        while p0 < k {
            let kc = KC.min(k - p0);
            for (p, y) in ys.iter_mut().enumerate().take(kc) {
                let row = b.get((p0 + p) * m..(p0 + p + 1) * m).unwrap_or(&[]);
                *y = lanes(row, j0);
            }
            let mut r0 = 0;
            while r0 < rows {
                let mr = MR.min(rows - r0);
                for (p, x) in xs.iter_mut().enumerate().take(kc) {
                    for (r, v) in x.iter_mut().enumerate() {
                        *v = if r < mr {
                            a.get((r0 + r) * k + p0 + p).copied().unwrap_or(0.0)
                        } else {
                            0.0
                        };
                    }
                }
                block(mr, &xs[..kc], &ys[..kc], c, (r0, m, j0), p0 == 0);
                r0 += mr;
            }
            p0 += kc;
        }
        j0 += NR;
    }
    if let Some(bias) = bias {
        for row in c.chunks_exact_mut(m).take(rows) {
            for (z, &bj) in row.iter_mut().zip(bias) {
                *z += bj;
            }
        }
    }
}

/// `c = a·bᵀ` ([`MatMulBt`]), each `c[r][i] = (0 + b[i][0]·a[r][0]) + b[i][1]·a[r][1] + …`:
/// the bits of [`dense::backward`]'s input gradient on each row.
///
/// # Panics
/// Never (see [`matmul`]).
#[inline(always)]
pub fn matmul_bt(mm: MatMulBt<'_>) {
    let MatMulBt {
        a,
        b,
        c,
        rows,
        k,
        m,
    } = mm;
    if k == 0 {
        return;
    }
    let rows = rows.min(c.len() / k);
    if m == 0 {
        for v in c.iter_mut().take(rows * k) {
            *v = 0.0;
        }
        return;
    }
    let rows = rows.min(a.len() / m);
    let mut xs = [[0.0f32; MR]; KC];
    let mut ys = [[0.0f32; NR]; KC];
    let mut i0 = 0;
    while i0 < k {
        let mut j0 = 0;
        while j0 < m {
            let jc = KC.min(m - j0);
            // The panel of `bᵀ`: ys[j][l] = b[i0 + l][j0 + j].
            for (j, y) in ys.iter_mut().enumerate().take(jc) {
                for (l, v) in y.iter_mut().enumerate() {
                    *v = b.get((i0 + l) * m + j0 + j).copied().unwrap_or(0.0);
                    if i0 + l >= k {
                        *v = 0.0;
                    }
                }
            }
            let mut r0 = 0;
            while r0 < rows {
                let mr = MR.min(rows - r0);
                for (j, x) in xs.iter_mut().enumerate().take(jc) {
                    for (r, v) in x.iter_mut().enumerate() {
                        *v = if r < mr {
                            a.get((r0 + r) * m + j0 + j).copied().unwrap_or(0.0)
                        } else {
                            0.0
                        };
                    }
                }
                block(mr, &xs[..jc], &ys[..jc], c, (r0, k, i0), j0 == 0);
                r0 += mr;
            }
            j0 += jc;
        }
        i0 += NR;
    }
}

/// `c += aᵀ·b` ([`MatMulAtAcc`]), each `c[i][j] += a[r][i]·b[r][j]` for the rows `r` in
/// order: the bits of [`dense::backward`]'s weight gradient called row after row.
///
/// # Panics
/// Never (see [`matmul`]).
#[inline(always)]
pub fn matmul_at_acc(mm: MatMulAtAcc<'_>) {
    let MatMulAtAcc {
        a,
        b,
        c,
        rows,
        k,
        m,
    } = mm;
    if k == 0 || m == 0 {
        return;
    }
    let rows = rows.min(a.len() / k).min(b.len() / m);
    let c = match c.get_mut(..k * m) {
        Some(c) => c,
        None => return,
    };
    let b = &b[..rows * m];
    if !crate::math::all_finite_inline(b) || has_neg_zero(c) {
        // The per-sample kernel, row after row: it skips zero inputs.
        for (x, dz) in a.chunks_exact(k).zip(b.chunks_exact(m)).take(rows) {
            dense::backward(x, &[], dz, c, None, None);
        }
        return;
    }
    let mut xs = [[0.0f32; MR]; KC];
    let mut ys = [[0.0f32; NR]; KC];
    let mut r0 = 0;
    while r0 < rows {
        let rc = KC.min(rows - r0);
        let mut j0 = 0;
        while j0 < m {
            for (r, y) in ys.iter_mut().enumerate().take(rc) {
                *y = lanes(b.get((r0 + r) * m..(r0 + r + 1) * m).unwrap_or(&[]), j0);
            }
            let mut i0 = 0;
            while i0 < k {
                let mi = MR.min(k - i0);
                for (r, x) in xs.iter_mut().enumerate().take(rc) {
                    let row = a.get((r0 + r) * k..(r0 + r + 1) * k).unwrap_or(&[]);
                    *x = lanes(row, i0);
                    for v in x.iter_mut().skip(mi) {
                        *v = 0.0;
                    }
                }
                block(mi, &xs[..rc], &ys[..rc], c, (i0, m, j0), false);
                i0 += mi;
            }
            j0 += NR;
        }
        r0 += rc;
    }
}
