//! The tile products of `microfit_core::kernels::gemm` for small shapes, in plain Rust for
//! `Host`'s baseline and AVX2 levels (AVX-512 has its own, `gemm_x86`): a product of at most
//! [`SMALL_K`] terms into exactly [`N`] columns (a conv layer's patches times its kernel:
//! `k = taps · cin`, 8 filters) keeps the `k` rows of `b` (or of `c`) in registers, one vector
//! of `N` lanes each, and takes every term. The core's kernels work in blocks of 16 columns and
//! 4 rows, which at 8 columns and 9 rows compute more than twice the sums they keep.
//!
//! Same bits as the core's kernels: each sum runs over its terms in their order, one `mul`
//! then one `add` (Rust never fuses), and a term whose input is 0 is taken only where that
//! cannot change a bit — the core's own conditions (every weight finite for [`matmul`]; every
//! `dz` finite and no accumulator `-0` for [`matmul_at_acc`]), checked here; otherwise, and for
//! other shapes, the core's kernels run.

use microfit_core::kernels::gemm::{self, MatMul, MatMulAtAcc};

/// Most rows of `b` (or of `c`) kept in registers.
const SMALL_K: usize = 16;
/// Columns of the small kernels (one AVX2 vector, two SSE2 ones).
const N: usize = 8;

/// True when some value is `-0`.
#[inline(always)]
fn has_neg_zero(v: &[f32]) -> bool {
    v.iter()
        .fold(false, |z, x| z | (x.to_bits() == 0x8000_0000))
}

/// [`gemm::matmul`] (`c = a·b (+ bias)`) with the same bits.
#[inline(always)]
pub(super) fn matmul(mm: MatMul<'_>) {
    let MatMul {
        a,
        b,
        bias,
        c,
        rows,
        k,
        m,
    } = mm;
    let covered = m == N
        && (1..=SMALL_K).contains(&k)
        && bias.is_none_or(|b| b.len() >= N)
        && b.len() >= k * N
        && microfit_core::math::all_finite_inline(&b[..k * N]);
    if !covered {
        return gemm::matmul(MatMul {
            a,
            b,
            bias,
            c,
            rows,
            k,
            m,
        });
    }
    by_k!(k, matmul_small(a, b, bias, c, rows));
}

/// [`matmul`] for `K` terms: each row of `c` is `(0 + a[r][0]·b[0]) + … + a[r][K-1]·b[K-1]`,
/// then the bias.
#[inline(always)]
fn matmul_small<const K: usize>(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    rows: usize,
) {
    let row = |v: &[f32]| v.first_chunk::<N>().copied().unwrap_or([0.0; N]);
    let w: [[f32; N]; K] = core::array::from_fn(|i| row(b.get(i * N..).unwrap_or(&[])));
    let bias = bias.map(row);
    for (x, z) in a.chunks_exact(K).zip(c.chunks_exact_mut(N)).take(rows) {
        let (Some(x), Some(z)) = (x.first_chunk::<K>(), z.first_chunk_mut::<N>()) else {
            continue;
        };
        let mut s = [0.0f32; N];
        for i in 0..K {
            for l in 0..N {
                s[l] += x[i] * w[i][l];
            }
        }
        if let Some(bv) = bias {
            for l in 0..N {
                s[l] += bv[l];
            }
        }
        *z = s;
    }
}

/// [`gemm::matmul_at_acc`] (`c += aᵀ·b`) with the same bits.
#[inline(always)]
pub(super) fn matmul_at_acc(mm: MatMulAtAcc<'_>) {
    let MatMulAtAcc {
        a,
        b,
        c,
        rows,
        k,
        m,
    } = mm;
    let rows_in = rows.min(a.len() / k.max(1)).min(b.len() / m.max(1));
    let covered = m == N
        && (1..=SMALL_K).contains(&k)
        && c.len() >= k * N
        && microfit_core::math::all_finite_inline(&b[..rows_in * N])
        && !has_neg_zero(&c[..k * N]);
    if !covered {
        return gemm::matmul_at_acc(MatMulAtAcc {
            a,
            b,
            c,
            rows,
            k,
            m,
        });
    }
    by_k!(k, at_acc_small(a, b, c, rows_in));
}

/// [`matmul_at_acc`] for `K` rows of `c`: the samples in order, each adding `a[r][i]·b[r]` to
/// row `i`.
#[inline(always)]
fn at_acc_small<const K: usize>(a: &[f32], b: &[f32], c: &mut [f32], rows: usize) {
    let Some(c) = c.get_mut(..K * N) else {
        return;
    };
    let mut acc: [[f32; N]; K] = core::array::from_fn(|i| {
        c.get(i * N..)
            .and_then(<[f32]>::first_chunk::<N>)
            .copied()
            .unwrap_or([0.0; N])
    });
    for (x, d) in a.chunks_exact(K).zip(b.chunks_exact(N)).take(rows) {
        let (Some(x), Some(d)) = (x.first_chunk::<K>(), d.first_chunk::<N>()) else {
            continue;
        };
        for i in 0..K {
            for l in 0..N {
                acc[i][l] += x[i] * d[l];
            }
        }
    }
    for (dst, v) in c.chunks_exact_mut(N).zip(&acc) {
        dst.copy_from_slice(v);
    }
}
