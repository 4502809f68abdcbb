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
//! **How**: one micro-kernel (`micro`): `MR = 4` rows × `NR = 16` columns of independent
//! sums in four named accumulators (registers) while the reduction index runs in order. Its
//! four row values per step come from a small transposed copy of four rows of `a` on the stack,
//! its 16 column values straight from the rows of `b` — or, at the right edge and for `bᵀ`,
//! from a zero-padded copy (a padding lane computes its own zeros and is never stored). The
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
/// Reduction steps per block (the copies on the stack: `KC · (MR + NR)` floats).
const KC: usize = 32;

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

/// `NR` zeros.
static ZEROS: [f32; NR] = [0.0; NR];

/// The micro-kernel: `acc[r] += x[r]·y` lane by lane for each step `(x, y)`, in order, the four
/// accumulators named so they stay in registers.
#[inline(always)]
fn micro<'y>(acc: &mut [[f32; NR]; MR], steps: impl Iterator<Item = ([f32; MR], &'y [f32; NR])>) {
    let [mut a0, mut a1, mut a2, mut a3] = *acc;
    for (x, y) in steps {
        let y = *y;
        for l in 0..NR {
            a0[l] += x[0] * y[l];
            a1[l] += x[1] * y[l];
            a2[l] += x[2] * y[l];
            a3[l] += x[3] * y[l];
        }
    }
    *acc = [a0, a1, a2, a3];
}

/// `row[j0..j0 + NR]` when all those lanes exist.
#[inline(always)]
fn whole(row: &[f32], j0: usize) -> Option<&[f32; NR]> {
    row.get(j0..).and_then(<[f32]>::first_chunk::<NR>)
}

/// `row[j0..j0 + NR]`, the lanes past the end of `row` as 0.
#[inline(always)]
fn lanes(row: &[f32], j0: usize) -> [f32; NR] {
    match whole(row, j0) {
        Some(v) => *v,
        None => {
            let mut v = [0.0; NR];
            for (d, &s) in v.iter_mut().zip(row.get(j0..).unwrap_or(&[])) {
                *d = s;
            }
            v
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

/// The accumulators of up to [`MR`] rows of `c` (row `r` at `c[(r0 + r)·ldc ..]`, `rows` of
/// them), lanes `j0..j0 + NR`: their values, or zeros (`zero`, and the rows past `rows`).
#[inline(always)]
fn load(
    c: &[f32],
    (r0, rows, ldc, j0): (usize, usize, usize, usize),
    zero: bool,
) -> [[f32; NR]; MR] {
    let row = |r: usize| -> [f32; NR] {
        if zero || r >= rows {
            [0.0; NR]
        } else {
            lanes(c.get((r0 + r) * ldc..(r0 + r + 1) * ldc).unwrap_or(&[]), j0)
        }
    };
    [row(0), row(1), row(2), row(3)]
}

/// Stores what [`load`] loaded (the lanes past a row's end and the rows past `rows` dropped).
#[inline(always)]
fn store(c: &mut [f32], (r0, rows, ldc, j0): (usize, usize, usize, usize), acc: &[[f32; NR]; MR]) {
    for (r, a) in acc.iter().enumerate().take(rows) {
        let dst = c.get_mut((r0 + r) * ldc..(r0 + r + 1) * ldc);
        if let Some(d) = dst.and_then(|d| d.get_mut(j0..)) {
            match d.first_chunk_mut::<NR>() {
                Some(d) => *d = *a,
                None => {
                    for (d, &s) in d.iter_mut().zip(a) {
                        *d = s;
                    }
                }
            }
        }
    }
}

/// The values of [`MR`] rows of `a` (rows of `lda`, from `r0`; rows past `rows` read as 0),
/// columns `p0..p0 + kc`, one column (step) at a time, read in place.
#[inline(always)]
fn columns(
    a: &[f32],
    (r0, rows, lda, p0, kc): (usize, usize, usize, usize, usize),
) -> impl Iterator<Item = [f32; MR]> + '_ {
    static NONE: [f32; KC] = [0.0; KC];
    let row = |r: usize| -> &[f32] {
        let found = a.get((r0 + r) * lda + p0..).and_then(|s| s.get(..kc));
        match found {
            Some(s) if r < rows => s,
            _ => NONE.get(..kc).unwrap_or(&[]),
        }
    };
    let (x0, x1, x2, x3) = (row(0), row(1), row(2), row(3));
    x0.iter()
        .zip(x1)
        .zip(x2)
        .zip(x3)
        .map(|(((&v0, &v1), &v2), &v3)| [v0, v1, v2, v3])
}

/// The lanes `j0..j0 + NR` of up to [`KC`] rows of a matrix (rows of `ld`), zero-padded.
#[inline(always)]
fn panel(rows: &[f32], ld: usize, j0: usize) -> [[f32; NR]; KC] {
    let mut ys = [[0.0f32; NR]; KC];
    for (y, row) in ys.iter_mut().zip(rows.chunks_exact(ld.max(1))) {
        if let Some(src) = row.get(j0..) {
            for (d, &v) in y.iter_mut().zip(src) {
                *d = v;
            }
        }
    }
    ys
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
    let full_blocks = m / NR;
    for p0 in (0..k).step_by(KC) {
        let kc = KC.min(k - p0);
        let brows = b.get(p0 * m..(p0 + kc) * m).unwrap_or(&[]);
        let tail = (m % NR != 0).then(|| panel(brows, m, full_blocks * NR));
        for r0 in (0..rows).step_by(MR) {
            let mr = MR.min(rows - r0);
            let at = (r0, mr, k, p0, kc);
            for jb in 0..full_blocks {
                let j0 = jb * NR;
                let ys = brows
                    .chunks_exact(m)
                    .map(|row| whole(row, j0).unwrap_or(&ZEROS));
                let mut acc = load(c, (r0, mr, m, j0), p0 == 0);

                micro(&mut acc, columns(a, at).zip(ys));

                store(c, (r0, mr, m, j0), &acc);
            }
            if let Some(ys) = &tail {
                let j0 = full_blocks * NR;
                let mut acc = load(c, (r0, mr, m, j0), p0 == 0);

                micro(&mut acc, columns(a, at).zip(ys));

                store(c, (r0, mr, m, j0), &acc);
            }
        }
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
    for i0 in (0..k).step_by(NR) {
        for j0 in (0..m).step_by(KC) {
            let jc = KC.min(m - j0);
            // The panel of `bᵀ`: ys[j][l] = b[i0 + l][j0 + j].
            let mut ys = [[0.0f32; NR]; KC];
            for l in 0..NR.min(k - i0) {
                let row = b.get((i0 + l) * m + j0..).and_then(|s| s.get(..jc));
                for (y, &v) in ys.iter_mut().zip(row.unwrap_or(&[])) {
                    y[l] = v;
                }
            }
            for r0 in (0..rows).step_by(MR) {
                let mr = MR.min(rows - r0);
                let at = (r0, mr, m, j0, jc);
                let mut acc = load(c, (r0, mr, k, i0), j0 == 0);

                micro(&mut acc, columns(a, at).zip(&ys));

                store(c, (r0, mr, k, i0), &acc);
            }
        }
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
    let full_blocks = m / NR;
    for s0 in (0..rows).step_by(KC) {
        let sc = KC.min(rows - s0);
        let brows = b.get(s0 * m..(s0 + sc) * m).unwrap_or(&[]);
        let arows = a.get(s0 * k..(s0 + sc) * k).unwrap_or(&[]);
        let tail = (m % NR != 0).then(|| panel(brows, m, full_blocks * NR));
        for i0 in (0..k).step_by(MR) {
            let mi = MR.min(k - i0);
            let at = (i0, mi, m, full_blocks);
            // The inputs `a[s][i0..i0 + MR]` of the samples, in place: four at once (the check
            // is decided outside the loop), or a short last group padded with zeros, whose sums
            // are never stored.
            if i0 + MR <= k {
                static NONE: [f32; MR] = [0.0; MR];
                let xs = || {
                    arows.chunks_exact(k).map(move |row| {
                        *row.get(i0..i0 + MR)
                            .and_then(<[f32]>::first_chunk::<MR>)
                            .unwrap_or(&NONE)
                    })
                };
                at_blocks(xs, c, brows, tail.as_ref(), at);
            } else {
                let xs = || {
                    arows.chunks_exact(k).map(move |row| {
                        core::array::from_fn(|i| row.get(i0 + i).copied().unwrap_or(0.0))
                    })
                };
                at_blocks(xs, c, brows, tail.as_ref(), at);
            }
        }
    }
}

/// The blocks of rows `i0..i0 + mi` of [`matmul_at_acc`]'s `c`: the full lanes read from `b`'s
/// rows in place, the last partial lanes from the padded `tail`; `xs()` the samples' inputs.
#[inline(always)]
fn at_blocks<X: Iterator<Item = [f32; MR]>>(
    xs: impl Fn() -> X,
    c: &mut [f32],
    brows: &[f32],
    tail: Option<&[[f32; NR]; KC]>,
    (i0, mi, m, full_blocks): (usize, usize, usize, usize),
) {
    for jb in 0..full_blocks {
        let j0 = jb * NR;
        let ys = brows
            .chunks_exact(m)
            .map(|row| whole(row, j0).unwrap_or(&ZEROS));
        let mut acc = load(c, (i0, mi, m, j0), false);
        micro(&mut acc, xs().zip(ys));
        store(c, (i0, mi, m, j0), &acc);
    }
    if let Some(ys) = tail {
        let j0 = full_blocks * NR;
        let mut acc = load(c, (i0, mi, m, j0), false);
        micro(&mut acc, xs().zip(ys));
        store(c, (i0, mi, m, j0), &acc);
    }
}
