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
/// Reduction steps per packed panel (a panel lives on the stack: `KC · NR` floats).
const KC: usize = 64;

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

/// `acc[r][l] += x[r]·y[l]` for each step, in order (IEEE multiplication commutes, so the
/// operands' order in the per-sample kernels does not matter).
#[inline(always)]
fn micro<'y, const R: usize>(
    acc: &mut [[f32; NR]; R],
    steps: impl Iterator<Item = ([f32; R], &'y [f32; NR])>,
) {
    if let Ok(acc4) = <&mut [[f32; NR]; 4]>::try_from(&mut acc[..]) {
        return micro4(
            acc4,
            steps.map(|(x, y)| {
                let x4: [f32; 4] = core::array::from_fn(|r| x.get(r).copied().unwrap_or(0.0));
                (x4, y)
            }),
        );
    }
    for (x, y) in steps {
        for r in 0..R {
            let xr = x[r];
            for l in 0..NR {
                acc[r][l] += xr * y[l];
            }
        }
    }
}

/// `NR` zeros.
static ZEROS: [f32; NR] = [0.0; NR];

/// `row[j0..j0 + NR]` when all those lanes exist (zeros otherwise: never on the paths that use
/// it, which only read whole lanes).
#[inline(always)]
fn whole(row: &[f32], j0: usize) -> &[f32; NR] {
    row.get(j0..)
        .and_then(<[f32]>::first_chunk::<NR>)
        .unwrap_or(&ZEROS)
}

/// `row[j0..j0 + NR]`, the lanes past the end of `row` as 0.
#[inline(always)]
fn lanes(row: &[f32], j0: usize) -> [f32; NR] {
    match row.get(j0..).and_then(<[f32]>::first_chunk::<NR>) {
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

/// The hot micro-kernel: four rows of sums in four named accumulators (kept in registers) over
/// the steps `(x, y)`: `a_r += x_r·y` lane by lane, the steps in order.
#[inline(always)]
fn micro4<'y>(acc: &mut [[f32; NR]; 4], steps: impl Iterator<Item = ([f32; 4], &'y [f32; NR])>) {
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

/// Runs `f::<R>` with `R = rows` (1 to [`MR`]): the micro-kernel's row count as a constant.
macro_rules! by_rows {
    ($rows:expr, $f:ident($($arg:expr),*)) => {
        match $rows {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            _ => $f::<4>($($arg),*),
        }
    };
}

/// `R` rows of `c` (row `r` at `c[(r0 + r)·ldc ..]`), lanes `j0..j0 + NR` (the lanes past a
/// row's end are dropped): the starting sums, or zeros.
#[inline(always)]
fn load<const R: usize>(
    c: &[f32],
    (r0, ldc, j0): (usize, usize, usize),
    zero: bool,
) -> [[f32; NR]; R] {
    core::array::from_fn(|r| {
        if zero {
            [0.0; NR]
        } else {
            lanes(c.get((r0 + r) * ldc..(r0 + r + 1) * ldc).unwrap_or(&[]), j0)
        }
    })
}

/// Stores what [`load`] loaded.
#[inline(always)]
fn store<const R: usize>(
    c: &mut [f32],
    (r0, ldc, j0): (usize, usize, usize),
    acc: &[[f32; NR]; R],
) {
    for (r, a) in acc.iter().enumerate() {
        if let Some(row) = c.get_mut((r0 + r) * ldc..(r0 + r + 1) * ldc) {
            put(row, j0, a);
        }
    }
}

/// A block of [`matmul`]: rows `r0..r0 + R` of `c`, lanes `j0..`, the steps `p0..` of `b`'s
/// panel `bp`.
#[inline(always)]
fn matmul_block<const R: usize>(
    a: &[f32],
    bp: Panel<'_>,
    c: &mut [f32],
    (r0, k, m, j0, p0): (usize, usize, usize, usize, usize),
) {
    let steps = match bp {
        Panel::Rows(b) => b.len() / m.max(1),
        Panel::Packed(ys) => ys.len(),
    };
    let arows: [&[f32]; R] = core::array::from_fn(|r| {
        a.get((r0 + r) * k + p0..)
            .and_then(|s| s.get(..steps))
            .unwrap_or(&[])
    });
    let mut acc: [[f32; NR]; R] = load(c, (r0, m, j0), p0 == 0);
    if arows.iter().all(|x| x.len() == steps) {
        let x = |p: usize| -> [f32; R] { core::array::from_fn(|r| arows[r][p]) };
        match bp {
            Panel::Rows(b) => micro(
                &mut acc,
                b.chunks_exact(m)
                    .enumerate()
                    .map(|(p, row)| (x(p), whole(row, j0))),
            ),
            Panel::Packed(ys) => micro(&mut acc, ys.iter().enumerate().map(|(p, y)| (x(p), y))),
        }
    }
    store(c, (r0, m, j0), &acc);
}

/// The `NR`-lane columns of a block of steps: read in place (rows of the matrix, every lane
/// there) or packed (a zero-padded copy on the stack).
#[derive(Clone, Copy)]
enum Panel<'a> {
    /// Rows of the matrix from the block's first step (the lanes `j0..j0 + NR` all exist).
    Rows(&'a [f32]),
    /// One padded row per step.
    Packed(&'a [[f32; NR]]),
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
    let mut packed = [[0.0f32; NR]; KC];
    let mut j0 = 0;
    while j0 < m {
        let full = j0 + NR <= m;
        let mut p0 = 0;
        while p0 < k {
            let kc = KC.min(k - p0);
            let rest = b.get(p0 * m..).unwrap_or(&[]);
            if !full {
                for (y, row) in packed.iter_mut().zip(rest.chunks_exact(m)).take(kc) {
                    *y = lanes(row, j0);
                }
            }
            let panel = if full {
                Panel::Rows(rest.get(..kc * m).unwrap_or(&[]))
            } else {
                Panel::Packed(&packed[..kc])
            };
            let mut r0 = 0;
            while r0 < rows {
                let mr = MR.min(rows - r0);
                by_rows!(mr, matmul_block(a, panel, c, (r0, k, m, j0, p0)));
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
    // The panel of `bᵀ`: packed[j][l] = b[i0 + l][j0 + j].
    let mut packed = [[0.0f32; NR]; KC];
    let mut i0 = 0;
    while i0 < k {
        let mut j0 = 0;
        while j0 < m {
            let jc = KC.min(m - j0);
            for (l, brow) in b.chunks_exact(m).skip(i0).take(NR).enumerate() {
                for (y, &v) in packed.iter_mut().zip(brow.get(j0..j0 + jc).unwrap_or(&[])) {
                    y[l] = v;
                }
            }
            for l in k - i0..NR {
                for y in packed.iter_mut().take(jc) {
                    y[l] = 0.0;
                }
            }
            let mut r0 = 0;
            while r0 < rows {
                let mr = MR.min(rows - r0);
                by_rows!(mr, matmul_bt_block(a, &packed[..jc], c, (r0, k, m, i0, j0)));
                r0 += mr;
            }
            j0 += jc;
        }
        i0 += NR;
    }
}

/// A block of [`matmul_bt`]: rows `r0..r0 + R` of `c`, lanes `i0..`, the steps `j0..` packed.
#[inline(always)]
fn matmul_bt_block<const R: usize>(
    a: &[f32],
    ys: &[[f32; NR]],
    c: &mut [f32],
    (r0, k, m, i0, j0): (usize, usize, usize, usize, usize),
) {
    let arows: [&[f32]; R] = core::array::from_fn(|r| {
        a.get((r0 + r) * m + j0..)
            .and_then(|s| s.get(..ys.len()))
            .unwrap_or(&[])
    });
    let mut acc: [[f32; NR]; R] = load(c, (r0, k, i0), j0 == 0);
    if arows.iter().all(|x| x.len() == ys.len()) {
        micro(
            &mut acc,
            ys.iter()
                .enumerate()
                .map(|(j, y)| (core::array::from_fn(|r| arows[r][j]), y)),
        );
    }
    store(c, (r0, k, i0), &acc);
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
    let mut packed = [[0.0f32; NR]; KC];
    let mut r0 = 0;
    while r0 < rows {
        let rc = KC.min(rows - r0);
        let rest = b.get(r0 * m..).unwrap_or(&[]);
        let mut j0 = 0;
        while j0 < m {
            let full = j0 + NR <= m;
            if !full {
                for (y, row) in packed.iter_mut().zip(rest.chunks_exact(m)).take(rc) {
                    *y = lanes(row, j0);
                }
            }
            let panel = if full {
                Panel::Rows(rest.get(..rc * m).unwrap_or(&[]))
            } else {
                Panel::Packed(&packed[..rc])
            };
            let mut i0 = 0;
            while i0 < k {
                let mi = MR.min(k - i0);
                by_rows!(mi, matmul_at_block(a, panel, c, (r0, k, m, i0, j0)));
                i0 += mi;
            }
            j0 += NR;
        }
        r0 += rc;
    }
}

/// A block of [`matmul_at_acc`]: rows `i0..i0 + R` of `c`, lanes `j0..`, the samples of the
/// panel (from sample `r0`).
#[inline(always)]
fn matmul_at_block<const R: usize>(
    a: &[f32],
    bp: Panel<'_>,
    c: &mut [f32],
    (r0, k, m, i0, j0): (usize, usize, usize, usize, usize),
) {
    static NONE: [f32; MR] = [0.0; MR];
    let mut acc: [[f32; NR]; R] = load(c, (i0, m, j0), false);
    let rows = a.get(r0 * k..).unwrap_or(&[]).chunks_exact(k.max(1));
    let x = |row: &[f32]| -> [f32; R] {
        *row.get(i0..)
            .and_then(<[f32]>::first_chunk::<R>)
            .unwrap_or_else(|| NONE.first_chunk::<R>().unwrap_or(&[0.0; R]))
    };
    match bp {
        Panel::Rows(b) => micro(
            &mut acc,
            rows.zip(b.chunks_exact(m))
                .map(|(ar, br)| (x(ar), whole(br, j0))),
        ),
        Panel::Packed(ys) => micro(&mut acc, rows.zip(ys).map(|(ar, y)| (x(ar), y))),
    }
    store(c, (i0, m, j0), &acc);
}
