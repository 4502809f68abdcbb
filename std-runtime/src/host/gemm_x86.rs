//! AVX-512 versions of the three tile products of `microfit_core::kernels::gemm`, with the
//! same bits: each output element is the per-sample kernels' sum, term after term in their
//! order, one `mul` then one `add` (never fused).
//!
//! **How.** A *lane* is one output row computed in registers (one or two 16-float vectors,
//! `W`): a row of `c` for [`matmul`] and [`matmul_bt`], a row of the weight gradient (one
//! input feature) for [`matmul_at_acc`]. Each lane has its own list of *steps* — the terms of
//! its sum that are not zero: the nonzero inputs of its row (forward), the samples whose input
//! feature is nonzero (weight gradient) — as a bit mask, walked lowest bit first, so the terms
//! come in the per-sample order and the zero terms are skipped (`tzcnt` per step, no
//! data-dependent branch). Four lanes run side by side (`G`): four to eight independent
//! chains of additions, enough to keep both 512-bit ports busy. The lanes of a group take the
//! same number of steps: a lane with fewer nonzero terms also takes its first few zero terms,
//! each of which adds `±0` and so changes no sum (the sums never hold `-0`: see below), in
//! whatever place it comes. For the weight gradient the lanes are ordered by their number of
//! steps first, so that the four lanes of a group have about as many (input features of images
//! are often always 0, or never). The rows of `b` the steps read are first copied to an aligned
//! panel, padded to whole vectors (plain aligned loads in the loop; `b`'s own rows may straddle
//! cache lines, and masked loads that do are slow).
//!
//! **When zero terms may be skipped** (as in the portable kernels, see their module docs): a
//! skipped term is `0·w = ±0` when `w` is finite, and adding `±0` to a sum leaves it as it is
//! unless the sum is `-0` — which a sum started at `+0` never is in round-to-nearest.
//! So: [`matmul`] and [`matmul_bt`] need every weight finite; [`matmul_at_acc`] needs every
//! `dz` finite and no `-0` among the accumulators. Otherwise (and for shapes these kernels do
//! not cover) they call the portable kernels, which fall back to the per-sample ones.
//!
//! # Safety
//! Each function here is compiled for AVX-512 (`#[target_feature]`): [`super`] calls it only
//! after `level()` reported AVX-512. The raw reads (vector loads and broadcasts) are at the
//! steps of a [`Steps`], whose masks only ever hold indices inside the caller's slices (built
//! from the slices' lengths by [`nonzero_bits`], [`column_bits`] and [`Steps::new`]).

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use microfit_core::kernels::gemm::{self, MatMul, MatMulAtAcc, MatMulBt};

/// Lanes per group.
const G: usize = 4;
/// Steps per block (bits of a mask).
const KB: usize = 64;
/// Columns of a lane at most (two vectors).
const NB: usize = 32;
/// Samples per block of the weight gradient (bits of a column mask).
const SB: usize = 32;
/// Input features per block of the weight gradient (column masks on the stack).
const FB: usize = 256;

/// The lanes `0..n` of a 16-lane vector (`n >= 16`: all).
#[inline(always)]
fn first(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// The lane masks of a block of up to [`NB`] columns.
#[inline(always)]
fn lanes_of(width: usize) -> [__mmask16; 2] {
    [first(width), first(width.saturating_sub(16))]
}

/// Up to [`KB`] rows of up to [`NB`] columns of `b`, each row padded with zeros to `16·W`
/// floats and aligned to a cache line: the vector loads of [`run`] are plain, aligned loads
/// (a masked load, or one that straddles two cache lines, costs much more).
#[repr(align(64))]
struct Panel([MaybeUninit<f32>; KB * NB]);

impl Panel {
    /// A panel whose rows are written by the caller.
    #[inline(always)]
    fn new() -> Self {
        Panel([MaybeUninit::uninit(); KB * NB])
    }

    /// Row `p` (`p < len <= KB`) is `src[p·ld + j0..][..width]` (`width <= NB`), padded to
    /// `stride` (16 or 32) floats.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
    fn rows(
        &mut self,
        src: &[f32],
        ld: usize,
        (len, j0, width): (usize, usize, usize),
        stride: usize,
    ) {
        let lanes = lanes_of(width);
        for p in 0..len.min(KB) {
            let Some(row) = src.get(p * ld + j0..p * ld + j0 + width) else {
                continue;
            };
            for w in 0..stride.min(NB) / 16 {
                // SAFETY: the lanes under `lanes[w]` are `row[16w..width]`; the store is row `p`
                // of the panel, columns `16w..16w + 16 <= stride <= NB`, 64-byte aligned.
                unsafe {
                    let v = _mm512_maskz_loadu_ps(lanes[w], row.as_ptr().wrapping_add(16 * w));
                    _mm512_store_ps(
                        self.0.as_mut_ptr().wrapping_add(p * stride + 16 * w).cast(),
                        v,
                    );
                }
            }
        }
    }
}

/// The steps of one group of [`G`] lanes over one block of up to [`KB`] steps.
///
/// Invariant (what makes the reads of [`run`] sound): for each lane `l` and each bit `p` of
/// `mask[l]`, the value at `val[l] + voff(p)` (`voff(p) = p` when `CONTIG`, else `voff[p]`)
/// lies inside the caller's slice, and row `p` of `panel` was written; every mask has `steps`
/// bits.
struct Steps<'t> {
    /// Where each lane's step values start.
    val: [*const f32; G],
    /// The value offset of each step (unless `CONTIG`).
    voff: &'t [usize; KB],
    /// The rows of `b`, one per step.
    panel: &'t Panel,
    /// Each lane's steps (bit `p`: step `p`): its nonzero terms, and as many of its zero
    /// terms (the first ones) as it takes to make `steps`.
    mask: [u64; G],
    /// Steps of each lane.
    steps: usize,
}

impl<'t> Steps<'t> {
    /// The steps of the lanes whose step values start at `val` and whose nonzero steps are
    /// `nonzero` among the first `len` (of at most [`KB`]).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
    fn new(
        (val, voff): ([*const f32; G], &'t [usize; KB]),
        panel: &'t Panel,
        nonzero: [u64; G],
        len: usize,
    ) -> Self {
        let valid = if len >= 64 {
            u64::MAX
        } else {
            (1u64 << len) - 1
        };
        let steps = nonzero.iter().map(|m| m.count_ones()).max().unwrap_or(0);
        let mask = nonzero.map(|m| {
            // The first `steps - n` of the lane's zero terms (there are `len - n >= steps - n`).
            let missing = steps - m.count_ones();
            let take = if missing >= 64 {
                u64::MAX
            } else {
                (1u64 << missing) - 1
            };
            m | _pdep_u64(take, !m & valid)
        });
        Steps {
            val,
            voff,
            panel,
            mask,
            steps: steps as usize,
        }
    }
}

/// Runs a group: `acc[l][w] += value(l, p) · b[p][16w..16w + 16]` for each lane `l` and each
/// of its steps `p` in increasing order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn run<const W: usize, const CONTIG: bool>(acc: &mut [[__m512; W]; G], s: &Steps<'_>) {
    let mut mask = s.mask;
    let mut a = *acc;
    let panel: *const f32 = s.panel.0.as_ptr().cast();
    for _ in 0..s.steps {
        for l in 0..G {
            let p = next_step(&mut mask[l]);
            // SAFETY: `p < 64` (the index of a bit of a nonzero `u64`).
            let vo = if CONTIG {
                p
            } else {
                unsafe { *s.voff.get_unchecked(p) }
            };
            // SAFETY: `p` is a bit of `mask[l]`: its value is inside the caller's
            // slice, its panel row `p < KB` (of `16·W` floats, aligned) written (`Steps`).
            let v = unsafe { _mm512_set1_ps(*s.val[l].wrapping_add(vo)) };
            let row = panel.wrapping_add(p * 16 * W);
            for w in 0..W {
                // SAFETY: as above.
                let y = unsafe { _mm512_load_ps(row.wrapping_add(16 * w)) };
                a[l][w] = _mm512_add_ps(a[l][w], _mm512_mul_ps(v, y));
            }
        }
    }
    *acc = a;
}

/// Pops the lowest bit of `mask` (never 0): its index.
///
/// Two instructions (`tzcnt`, `blsr`) in assembly: written in Rust, the four lanes' identical
/// scalar chains are "vectorized" by LLVM into a slow vector emulation of `tzcnt`.
#[inline(always)]
fn next_step(mask: &mut u64) -> usize {
    let p: u64;
    // SAFETY: register-only arithmetic (no memory, no stack); `tzcnt` and `blsr` are BMI1,
    // which every caller's `#[target_feature]` enables (and `level` checked).
    unsafe {
        core::arch::asm!(
            "tzcnt {p}, {m}",
            "blsr {m}, {m}",
            p = out(reg) p,
            m = inout(reg) *mask,
            options(pure, nomem, nostack),
        );
    }
    p as usize
}

/// Bit `p` set iff `v[p]` is not `±0` (NaN and infinities count), for `p < v.len() <= 64`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn nonzero_bits(v: &[f32]) -> u64 {
    let magnitude = _mm512_set1_epi32(0x7fff_ffff);
    let mut m = 0u64;
    for c in 0..v.len().min(KB).div_ceil(16) {
        let k = first(v.len() - 16 * c);
        // SAFETY: the lanes under `k` are `v[16c..]`, inside `v`.
        let x = unsafe { _mm512_maskz_loadu_epi32(k, v.as_ptr().wrapping_add(16 * c).cast()) };
        m |= u64::from(_mm512_test_epi32_mask(x, magnitude)) << (16 * c);
    }
    m
}

/// `t[p] = start + p·stride` for the steps of a block.
#[inline(always)]
fn offsets(start: usize, stride: usize) -> [usize; KB] {
    core::array::from_fn(|p| start + p * stride)
}

/// The lanes of a group: `G` indices from `ids` (the last repeated to fill the group).
#[inline(always)]
fn group(ids: &[usize]) -> [usize; G] {
    let last = ids.last().copied().unwrap_or(0);
    core::array::from_fn(|l| ids.get(l).copied().unwrap_or(last))
}

/// The rows `r0..r0 + G` (the last row repeated past `rows`): a group of lanes and how many
/// are real.
#[inline(always)]
fn row_group(r0: usize, rows: usize) -> ([usize; G], usize) {
    let n = (rows - r0).min(G);
    (core::array::from_fn(|l| r0 + l.min(n - 1)), n)
}

/// Where a group's results go: lane `l` to `c[rows[l]·ldc + j0..]`, `width` columns, for the
/// first `n` lanes (the others repeat a lane).
#[derive(Clone, Copy)]
struct Out {
    rows: [usize; G],
    n: usize,
    ldc: usize,
    j0: usize,
    width: usize,
}

/// Stores `acc` (plus `bias`, when given) where `out` says.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn store<const W: usize>(
    c: &mut [f32],
    o: Out,
    acc: &[[__m512; W]; G],
    bias: Option<&[__m512; 2]>,
) {
    let lanes = lanes_of(o.width);
    for l in 0..o.n.min(G) {
        let at = o.rows[l] * o.ldc + o.j0;
        let Some(dst) = c.get_mut(at..at + o.width) else {
            continue;
        };
        for w in 0..W {
            let v = match bias {
                Some(b) => _mm512_add_ps(acc[l][w], b[w]),
                None => acc[l][w],
            };
            // SAFETY: the lanes under `lanes[w]` are `dst[16w..width]`.
            unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr().wrapping_add(16 * w), lanes[w], v) };
        }
    }
}

/// Loads what [`store`] stores (without bias).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn load<const W: usize>(c: &[f32], o: Out) -> [[__m512; W]; G] {
    let lanes = lanes_of(o.width);
    let mut acc = [[_mm512_setzero_ps(); W]; G];
    for l in 0..G {
        let at = o.rows[l] * o.ldc + o.j0;
        if let Some(s) = c.get(at..at + o.width) {
            for w in 0..W {
                // SAFETY: the lanes under `lanes[w]` are `s[16w..width]`.
                acc[l][w] =
                    unsafe { _mm512_maskz_loadu_ps(lanes[w], s.as_ptr().wrapping_add(16 * w)) };
            }
        }
    }
    acc
}

/// `bias[j0..j0 + width]` as vectors (lanes past `width` zero).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn bias_of(bias: &[f32], j0: usize, width: usize) -> [__m512; 2] {
    let lanes = lanes_of(width);
    let mut v = [_mm512_setzero_ps(); 2];
    if let Some(b) = bias.get(j0..j0 + width) {
        for w in 0..2 {
            // SAFETY: the lanes under `lanes[w]` are `b[16w..width]`.
            v[w] = unsafe { _mm512_maskz_loadu_ps(lanes[w], b.as_ptr().wrapping_add(16 * w)) };
        }
    }
    v
}

/// The panel stride (floats per row) for a block of `width` columns: one or two vectors.
#[inline(always)]
fn stride(width: usize) -> usize {
    if width > 16 { 32 } else { 16 }
}

/// Runs a group with one or two vectors per lane (as `o.width` needs, matching the panel's
/// stride): from zero (`start`) or from what `c` holds, into `c` (plus `bias` when given).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn run_group<const CONTIG: bool>(
    c: &mut [f32],
    o: Out,
    s: &Steps<'_>,
    (start, bias): (bool, Option<&[__m512; 2]>),
) {
    if o.width > 16 {
        let mut acc = if start {
            [[_mm512_setzero_ps(); 2]; G]
        } else {
            load::<2>(c, o)
        };
        run::<2, CONTIG>(&mut acc, s);
        store::<2>(c, o, &acc, bias);
    } else {
        let mut acc = if start {
            [[_mm512_setzero_ps(); 1]; G]
        } else {
            load::<1>(c, o)
        };
        run::<1, CONTIG>(&mut acc, s);
        store::<1>(c, o, &acc, bias);
    }
}

/// Most rows of `b` ([`matmul`]) or of `c` ([`matmul_at_acc`]), or terms of [`matmul_bt`], a
/// small product keeps in registers (`matmul` and `matmul_at_acc` take up to twice as many:
/// the rest beside them, or a second pass).
const SMALL_K: usize = 16;

/// Whether a product of `k` terms into `m` columns takes the small-shape kernels: a lane is
/// one vector and the `k` rows of `b` (or of `c`) fit in registers. There the dense loop,
/// every term taken, costs less than finding the nonzero ones (a conv layer's patches:
/// `k = taps · cin`, `m = filters`).
#[inline(always)]
fn small(k: usize, m: usize) -> bool {
    (1..=SMALL_K).contains(&k) && (1..=16).contains(&m)
}

/// [`matmul`] for `H + K` terms (`H` is 0 or [`SMALL_K`], `K <= SMALL_K`) into `m <= 16`
/// columns, every term taken (the weights are finite: a zero input's term is `±0` and changes
/// no sum): the rows of `b` stay in registers (or, past 16 terms, partly in the stack frame),
/// and each row of `c` is `(0 + a[r][0]·b[0]) + … + a[r][H+K-1]·b[H+K-1]`, then the bias.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn matmul_small<const H: usize, const K: usize>(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    (rows, m): (usize, usize),
) {
    let lanes = first(m);
    let load = |v: &[f32]| match v.get(..m) {
        // SAFETY: the lanes under `lanes` are `v[..m]`.
        Some(v) => unsafe { _mm512_maskz_loadu_ps(lanes, v.as_ptr()) },
        None => _mm512_setzero_ps(),
    };
    let head: [__m512; H] = core::array::from_fn(|i| load(b.get(i * m..).unwrap_or(&[])));
    let w: [__m512; K] = core::array::from_fn(|i| load(b.get((H + i) * m..).unwrap_or(&[])));
    let bias = bias.map(load);
    for (x, z) in a.chunks_exact(H + K).zip(c.chunks_exact_mut(m)).take(rows) {
        let (Some(x0), Some(x)) = (
            x.first_chunk::<H>(),
            x.get(H..).and_then(<[f32]>::first_chunk::<K>),
        ) else {
            continue;
        };
        let mut s = _mm512_setzero_ps();
        for i in 0..H {
            s = _mm512_add_ps(s, _mm512_mul_ps(_mm512_set1_ps(x0[i]), head[i]));
        }
        for i in 0..K {
            s = _mm512_add_ps(s, _mm512_mul_ps(_mm512_set1_ps(x[i]), w[i]));
        }
        if let Some(bv) = bias {
            s = _mm512_add_ps(s, bv);
        }
        // SAFETY: the lanes under `lanes` are `z[..m]` (`z` is a chunk of `m`).
        unsafe { _mm512_mask_storeu_ps(z.as_mut_ptr(), lanes, s) };
    }
}

/// [`matmul_small`] for `K <= SMALL_K` terms.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn matmul_small1<const K: usize>(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    rm: (usize, usize),
) {
    matmul_small::<0, K>(a, b, bias, c, rm);
}

/// [`matmul_small`] for `SMALL_K + K` terms (a 10-class layer on 32 hidden units).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn matmul_small2<const K: usize>(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    rm: (usize, usize),
) {
    matmul_small::<SMALL_K, K>(a, b, bias, c, rm);
}

/// [`matmul_at_acc`] for the `K <= SMALL_K` rows `f0..f0 + K` of `c` of `m <= 16` columns
/// (`a`'s rows are `lda` long), every term taken (every `dz` finite, no accumulator `-0`: a
/// zero input's term is `±0` and changes no sum): those rows of `c` stay in registers while
/// the samples run in order, each adding `a[r][i]·b[r]` to row `i`. A layer of up to
/// `2·SMALL_K` inputs takes two such passes (a 10-class layer on 32 hidden units: 1,024
/// multiply-adds, less than the zero-skipping driver's masks, sort and panel cost).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn at_acc_small<const K: usize>(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    (rows, m): (usize, usize),
    (lda, f0): (usize, usize),
) {
    let lanes = first(m);
    let Some(c) = c.get_mut(f0 * m..(f0 + K) * m) else {
        return;
    };
    // SAFETY: the lanes under `lanes` are `c[i·m..][..m]`, inside `c` (`K·m` floats).
    let mut acc: [__m512; K] = core::array::from_fn(|i| unsafe {
        _mm512_maskz_loadu_ps(lanes, c.as_ptr().wrapping_add(i * m))
    });
    for (x, d) in a.chunks(lda).zip(b.chunks_exact(m)).take(rows) {
        let Some(x) = x.get(f0..).and_then(<[f32]>::first_chunk::<K>) else {
            continue;
        };
        // SAFETY: the lanes under `lanes` are `d[..m]` (`d` is a chunk of `m`).
        let d = unsafe { _mm512_maskz_loadu_ps(lanes, d.as_ptr()) };
        for i in 0..K {
            acc[i] = _mm512_add_ps(acc[i], _mm512_mul_ps(_mm512_set1_ps(x[i]), d));
        }
    }
    for (i, v) in acc.iter().enumerate() {
        // SAFETY: as for the loads.
        unsafe { _mm512_mask_storeu_ps(c.as_mut_ptr().wrapping_add(i * m), lanes, *v) };
    }
}

/// [`matmul_bt`] for `M <= SMALL_K` terms into `k <= 16·W` columns (`W` vectors), every term
/// taken (the weights are finite: a zero `dz`'s term is `±0` and changes no sum): the `M`
/// rows of `bᵀ` (columns of `b`) stay in registers, and each row of `c` is
/// `(0 + a[r][0]·bᵀ[0]) + … + a[r][M-1]·bᵀ[M-1]` (a 10-class layer's input gradient).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn bt_small<const M: usize, const W: usize>(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    (rows, k): (usize, usize),
) {
    let lanes = lanes_of(k);
    let Some(b) = b.get(..k * M) else {
        return;
    };
    let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let idx: [__m512i; W] = core::array::from_fn(|w| {
        let at = _mm512_add_epi32(_mm512_set1_epi32(16 * w as i32), iota);
        _mm512_mullo_epi32(at, _mm512_set1_epi32(M as i32))
    });
    // SAFETY: the lanes under `lanes[w]` read `b[i·M + j]` for `i < k`, `j < M`: inside `b`
    // (`k·M` floats; the caller checked that `k·M` fits an `i32`).
    let wt: [[__m512; W]; M] = core::array::from_fn(|j| {
        core::array::from_fn(|w| unsafe {
            _mm512_mask_i32gather_ps::<4>(
                _mm512_setzero_ps(),
                lanes[w],
                idx[w],
                b.as_ptr().wrapping_add(j),
            )
        })
    });
    for (x, z) in a.chunks_exact(M).zip(c.chunks_exact_mut(k)).take(rows) {
        let Some(x) = x.first_chunk::<M>() else {
            continue;
        };
        let mut s = [_mm512_setzero_ps(); W];
        for j in 0..M {
            let v = _mm512_set1_ps(x[j]);
            for w in 0..W {
                s[w] = _mm512_add_ps(s[w], _mm512_mul_ps(v, wt[j][w]));
            }
        }
        for w in 0..W {
            // SAFETY: the lanes under `lanes[w]` are `z[16w..][..16]` below `k` (`z` is a
            // chunk of `k`).
            unsafe { _mm512_mask_storeu_ps(z.as_mut_ptr().wrapping_add(16 * w), lanes[w], s[w]) };
        }
    }
}

/// [`bt_small`] with one vector per row of `c` (`k <= 16`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn bt_small1<const M: usize>(a: &[f32], b: &[f32], c: &mut [f32], rk: (usize, usize)) {
    bt_small::<M, 1>(a, b, c, rk);
}

/// [`bt_small`] with two vectors per row of `c` (`k <= 32`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn bt_small2<const M: usize>(a: &[f32], b: &[f32], c: &mut [f32], rk: (usize, usize)) {
    bt_small::<M, 2>(a, b, c, rk);
}

/// [`gemm::matmul`] (`c = a·b (+ bias)`) with the same bits.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
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
    let covered = m > 0
        && k > 0
        && bias.is_none_or(|b| b.len() >= m)
        && b.len() >= k * m
        && microfit_core::math::all_finite_inline(&b[..k * m]);
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
    let rows = rows.min(c.len() / m).min(a.len() / k);
    if small(k, m) {
        return by_k!(k, matmul_small1(a, b, bias, c, (rows, m)));
    }
    if k > SMALL_K && small(k - SMALL_K, m) {
        return by_k!(k - SMALL_K, matmul_small2(a, b, bias, c, (rows, m)));
    }
    let mut panel = Panel::new();
    for j0 in (0..m).step_by(NB) {
        let width = (m - j0).min(NB);
        let bias = bias.map(|b| bias_of(b, j0, width));
        for p0 in (0..k).step_by(KB) {
            let len = (k - p0).min(KB);
            panel.rows(&b[p0 * m..], m, (len, j0, width), stride(width));
            let last = p0 + len == k;
            for r0 in (0..rows).step_by(G) {
                let (lanes, n) = row_group(r0, rows);
                let mask = lanes.map(|r| nonzero_bits(&a[r * k + p0..r * k + p0 + len]));
                let val = lanes.map(|r| a[r * k + p0..].as_ptr());
                let s = Steps::new((val, &[0; KB]), &panel, mask, len);
                let o = Out {
                    rows: lanes,
                    n,
                    ldc: m,
                    j0,
                    width,
                };
                run_group::<true>(c, o, &s, (p0 == 0, bias.as_ref().filter(|_| last)));
            }
        }
    }
}

/// [`gemm::matmul_bt`] (`c = a·bᵀ`) with the same bits.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
pub(super) fn matmul_bt(mm: MatMulBt<'_>) {
    let MatMulBt {
        a,
        b,
        c,
        rows,
        k,
        m,
    } = mm;
    let covered = m > 0
        && k > 0
        && b.len() >= k * m
        && k * m <= i32::MAX as usize
        && microfit_core::math::all_finite_inline(&b[..k * m]);
    if !covered {
        return gemm::matmul_bt(MatMulBt {
            a,
            b,
            c,
            rows,
            k,
            m,
        });
    }
    let rows = rows.min(c.len() / k).min(a.len() / m);
    if (1..=SMALL_K).contains(&m) && k <= 16 {
        return by_k!(m, bt_small1(a, b, c, (rows, k)));
    }
    if (1..=SMALL_K).contains(&m) && k <= NB {
        return by_k!(m, bt_small2(a, b, c, (rows, k)));
    }
    let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let mut panel = Panel::new();
    for i0 in (0..k).step_by(NB) {
        let width = (k - i0).min(NB);
        let (lanes, st) = (lanes_of(width), stride(width));
        for j0 in (0..m).step_by(KB) {
            let len = (m - j0).min(KB);
            // The panel of `bᵀ`: row `j` is column `j0 + j` of `b`'s rows `i0..i0 + width`.
            let column = b[i0 * m + j0..].as_ptr();
            for j in 0..len {
                for w in 0..st / 16 {
                    let at = _mm512_add_epi32(_mm512_set1_epi32(16 * w as i32), iota);
                    let idx = _mm512_mullo_epi32(at, _mm512_set1_epi32(m as i32));
                    // SAFETY: the lanes under `lanes[w]` read `b[(i0 + i)·m + j0 + j]` for
                    // `i < width` (`i0 + width <= k`, `j0 + j < m`, `k·m` fits an `i32`); the
                    // store is panel row `j < KB`, columns `16w..16w + 16 <= st`, aligned.
                    unsafe {
                        let v = _mm512_mask_i32gather_ps::<4>(
                            _mm512_setzero_ps(),
                            lanes[w],
                            idx,
                            column.wrapping_add(j),
                        );
                        _mm512_store_ps(
                            panel.0.as_mut_ptr().wrapping_add(j * st + 16 * w).cast(),
                            v,
                        );
                    }
                }
            }
            for r0 in (0..rows).step_by(G) {
                let (lanes, n) = row_group(r0, rows);
                let mask = lanes.map(|r| nonzero_bits(&a[r * m + j0..r * m + j0 + len]));
                let val = lanes.map(|r| a[r * m + j0..].as_ptr());
                let s = Steps::new((val, &[0; KB]), &panel, mask, len);
                let o = Out {
                    rows: lanes,
                    n,
                    ldc: k,
                    j0: i0,
                    width,
                };
                run_group::<true>(c, o, &s, (j0 == 0, None));
            }
        }
    }
}

/// Bit `s` of `out[i]` set iff `a[s0 + s][f0 + i]` is not `±0`, for the `sc <= 32` samples
/// from `s0` and the `fc <= FB` features from `f0` (rows of `a` of `k`, `f0 + fc <= k`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn column_bits(
    out: &mut [u32; FB],
    a: &[f32],
    k: usize,
    (s0, sc): (usize, usize),
    (f0, fc): (usize, usize),
) {
    let (sc, fc) = (sc.min(SB), fc.min(FB));
    let Some(block) = a.get(s0 * k..(s0 + sc) * k).filter(|_| f0 + fc <= k) else {
        return;
    };
    let magnitude = _mm512_set1_epi32(0x7fff_ffff);
    for c in 0..fc.div_ceil(16) {
        let kf = first(fc - 16 * c);
        let mut bits = _mm512_setzero_si512();
        let col = block.as_ptr().wrapping_add(f0 + 16 * c);
        for s in 0..sc {
            // SAFETY: the lanes under `kf` are `a[s0 + s][f0 + 16c..][..16]`, inside `block`
            // (`s < sc`, `f0 + fc <= k`).
            let x = unsafe { _mm512_maskz_loadu_epi32(kf, col.wrapping_add(s * k).cast()) };
            let t = _mm512_mask_test_epi32_mask(kf, x, magnitude);
            bits = _mm512_mask_or_epi32(bits, t, bits, _mm512_set1_epi32(1 << s));
        }
        // SAFETY: `out[16c..16c + 16]` is inside `out` (`16c < fc <= FB`, `FB % 16 == 0`).
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().wrapping_add(16 * c).cast(), bits) };
    }
}

/// True when some value is `-0`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn has_neg_zero(v: &[f32]) -> bool {
    let neg_zero = _mm512_set1_epi32(i32::MIN);
    let mut found: __mmask16 = 0;
    for c in 0..v.len().div_ceil(16) {
        let k = first(v.len() - 16 * c);
        // SAFETY: the lanes under `k` are `v[16c..]`, inside `v`.
        let x = unsafe { _mm512_maskz_loadu_epi32(k, v.as_ptr().wrapping_add(16 * c).cast()) };
        found |= _mm512_mask_cmpeq_epi32_mask(k, x, neg_zero);
    }
    found != 0
}

/// [`gemm::matmul_at_acc`] (`c += aᵀ·b`) with the same bits.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
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
    let covered = m > 0
        && k > 0
        && c.len() >= k * m
        && microfit_core::math::all_finite_inline(&b[..rows_in * m])
        && !has_neg_zero(&c[..k * m]);
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
    let rows = rows_in;
    if (1..=2 * SMALL_K).contains(&k) && (1..=16).contains(&m) {
        // `c`'s rows in registers, at most `SMALL_K` at a time.
        for f0 in (0..k).step_by(SMALL_K) {
            by_k!(k - f0, at_acc_small(a, b, c, (rows, m), (k, f0)));
        }
        return;
    }
    let mut panel = Panel::new();
    let mut bits = [0u32; FB];
    for s0 in (0..rows).step_by(SB) {
        let sc = (rows - s0).min(SB);
        let voff = offsets(s0 * k, k);
        for f0 in (0..k).step_by(FB) {
            let fc = (k - f0).min(FB);
            column_bits(&mut bits, a, k, (s0, sc), (f0, fc));
            // The features with steps, fewest steps first (a counting sort), so that the
            // lanes of a group have about as many steps.
            let mut start = [0usize; SB + 2];
            for &m in &bits[..fc] {
                start[m.count_ones() as usize + 1] += 1;
            }
            for n in 1..start.len() {
                start[n] += start[n - 1];
            }
            let skip = start[1];
            let mut order = [0usize; FB];
            for (i, &m) in bits[..fc].iter().enumerate() {
                let n = m.count_ones() as usize;
                order[start[n]] = f0 + i;
                start[n] += 1;
            }
            for j0 in (0..m).step_by(NB) {
                let width = (m - j0).min(NB);
                panel.rows(&b[s0 * m..], m, (sc, j0, width), stride(width));
                for ids in order[skip..fc].chunks(G) {
                    let lanes = group(ids);
                    let mask = lanes.map(|i| u64::from(bits[i - f0]));
                    let val = lanes.map(|i| a[i..].as_ptr());
                    let s = Steps::new((val, &voff), &panel, mask, sc);
                    let o = Out {
                        rows: lanes,
                        n: ids.len(),
                        ldc: m,
                        j0,
                        width,
                    };
                    run_group::<false>(c, o, &s, (false, None));
                }
            }
        }
    }
}
