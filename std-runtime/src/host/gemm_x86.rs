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
//! chains of additions, enough to keep both 512-bit ports busy. A lane whose steps have run
//! out while the others go on repeats a *spare* step: one whose input is `±0`, so that it adds
//! `±0`, which changes no sum (the sums never hold `-0`: see below). For the weight gradient
//! the lanes are ordered by their number of steps first, so that the four lanes of a group
//! have about as many (input features of images are often always 0, or never).
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
//! by [`nonzero_bits`] and [`column_bits`] from the slices' lengths).

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use microfit_core::kernels::gemm::{self, MatMul, MatMulAtAcc, MatMulBt};

/// Lanes per group.
const G: usize = 4;
/// Steps per block (bits of a mask).
const KB: usize = 64;
/// Columns of a lane (two vectors).
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

/// The steps of one group of [`G`] lanes over one block of up to [`KB`] steps.
///
/// Invariant (what makes the reads of [`run`] sound): for each lane `l` and each bit `p` of
/// `mask[l]` or `spare[l]`, the value `val[l] + voff(p)` (`voff(p) = p` when `CONTIG`, else
/// `voff[p]`) and the vector rows `b + boff[p] + 16·w` under the lane masks lie inside the
/// caller's slices.
struct Steps<'t> {
    /// Where each lane's step values start.
    val: [*const f32; G],
    /// The value offset of each step (unless `CONTIG`).
    voff: &'t [usize; KB],
    /// The rows of `b`.
    b: *const f32,
    /// The offset of each step's row of `b`.
    boff: &'t [usize; KB],
    /// Each lane's steps (bit `p`: step `p`).
    mask: [u64; G],
    /// Each lane's spare step (one bit, its value `±0`), taken once its steps ran out.
    spare: [u64; G],
    /// Steps to run: the most steps of a lane.
    steps: usize,
}

/// Runs a group: `acc[l][w] += value(l, p) · b[p][16w..16w + 16]` for each lane `l` and each
/// of its steps `p` in increasing order (then its spare step until the group is done).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn run<const W: usize, const CONTIG: bool, const FULL: bool>(
    acc: &mut [[__m512; W]; G],
    s: &Steps<'_>,
    lanes: [__mmask16; 2],
) {
    let mut mask = s.mask;
    let mut a = *acc;
    for _ in 0..s.steps {
        for l in 0..G {
            let p = next_step(&mut mask[l], s.spare[l]);
            // SAFETY: `p < 64` (the index of a bit of a nonzero `u64`).
            let (vo, bo) = unsafe {
                let vo = if CONTIG { p } else { *s.voff.get_unchecked(p) };
                (vo, *s.boff.get_unchecked(p))
            };
            let row = s.b.wrapping_add(bo);
            // SAFETY: `p` is a bit of `mask[l]` or `spare[l]`: inside the slices (`Steps`).
            let v = unsafe { _mm512_set1_ps(*s.val[l].wrapping_add(vo)) };
            for w in 0..W {
                let at = row.wrapping_add(16 * w);
                // SAFETY: as above; the lanes past the row's end are masked off (a masked load
                // is much slower than a plain one when it straddles two cache lines: plain
                // loads where all 16 lanes are there).
                let y = unsafe {
                    if FULL || w + 1 < W {
                        _mm512_loadu_ps(at)
                    } else {
                        _mm512_maskz_loadu_ps(lanes[w], at)
                    }
                };
                a[l][w] = _mm512_add_ps(a[l][w], _mm512_mul_ps(v, y));
            }
        }
    }
    *acc = a;
}

/// Pops the lowest bit of `mask` (never 0): its index; `mask` becomes `spare` once empty.
///
/// Three instructions (`tzcnt`, `blsr`, `cmovz`) in assembly: written in Rust, the four lanes'
/// identical scalar chains are "vectorized" by LLVM into a slow vector emulation of `tzcnt`.
#[inline(always)]
fn next_step(mask: &mut u64, spare: u64) -> usize {
    let p: u64;
    // SAFETY: register-only arithmetic (no memory, no stack); `tzcnt` and `blsr` are BMI1,
    // which every caller's `#[target_feature]` enables (and `level` checked).
    unsafe {
        core::arch::asm!(
            "tzcnt {p}, {m}",
            "blsr {m}, {m}",
            "cmovz {m}, {s}",
            p = out(reg) p,
            m = inout(reg) *mask,
            s = in(reg) spare,
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

/// A lane's spare step: the lowest of the first `len` steps not in `mask` (its value is `±0`);
/// step 0 when there is none (the lane then has `len` steps, the most any lane can have, and
/// never runs out before its group is done).
#[inline(always)]
fn spare(mask: u64, len: usize) -> u64 {
    let valid = if len >= 64 {
        u64::MAX
    } else {
        (1u64 << len) - 1
    };
    let zeros = !mask & valid;
    if zeros == 0 {
        1
    } else {
        zeros & zeros.wrapping_neg()
    }
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

/// Stores `acc`'s lanes `0..n` into the rows of `c` at `rows[l]·ldc + j0` (columns under
/// `lanes`), after adding `bias` when given.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn store<const W: usize>(
    c: &mut [f32],
    (rows, n, ldc, j0): ([usize; G], usize, usize, usize),
    acc: &[[__m512; W]; G],
    lanes: [__mmask16; 2],
    bias: Option<&[__m512; 2]>,
) {
    let width = lanes[0].count_ones() as usize + lanes[1].count_ones() as usize;
    for l in 0..n.min(G) {
        let Some(dst) = c.get_mut(rows[l] * ldc + j0..rows[l] * ldc + j0 + width) else {
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
fn load<const W: usize>(
    c: &[f32],
    (rows, ldc, j0): ([usize; G], usize, usize),
    lanes: [__mmask16; 2],
) -> [[__m512; W]; G] {
    let width = lanes[0].count_ones() as usize + lanes[1].count_ones() as usize;
    let mut acc = [[_mm512_setzero_ps(); W]; G];
    for l in 0..G {
        if let Some(s) = c.get(rows[l] * ldc + j0..rows[l] * ldc + j0 + width) {
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

/// Runs a group with one or two vectors per lane, as `width` needs: from zero (`start`) or
/// from what `c` holds, into `c` (plus `bias` when given).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn run_group<const CONTIG: bool>(
    c: &mut [f32],
    out: ([usize; G], usize, usize, usize),
    s: &Steps<'_>,
    width: usize,
    (start, bias): (bool, Option<&[__m512; 2]>),
) {
    let lanes = lanes_of(width);
    let (rows, _, ldc, j0) = out;
    if width > 16 {
        let mut acc = if start {
            [[_mm512_setzero_ps(); 2]; G]
        } else {
            load::<2>(c, (rows, ldc, j0), lanes)
        };
        if width == 32 {
            run::<2, CONTIG, true>(&mut acc, s, lanes);
        } else {
            run::<2, CONTIG, false>(&mut acc, s, lanes);
        }
        store::<2>(c, out, &acc, lanes, bias);
    } else {
        let mut acc = if start {
            [[_mm512_setzero_ps(); 1]; G]
        } else {
            load::<1>(c, (rows, ldc, j0), lanes)
        };
        if width == 16 {
            run::<1, CONTIG, true>(&mut acc, s, lanes);
        } else {
            run::<1, CONTIG, false>(&mut acc, s, lanes);
        }
        store::<1>(c, out, &acc, lanes, bias);
    }
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
    for j0 in (0..m).step_by(NB) {
        let width = (m - j0).min(NB);
        let first_block = offsets(j0, m);
        let bias = bias.map(|b| bias_of(b, j0, width));
        for r0 in (0..rows).step_by(G) {
            let n = (rows - r0).min(G);
            let lanes = group(&core::array::from_fn::<usize, G, _>(|l| r0 + l)[..n]);
            for p0 in (0..k).step_by(KB) {
                let len = (k - p0).min(KB);
                let later;
                let boff = if p0 == 0 {
                    &first_block
                } else {
                    later = offsets(p0 * m + j0, m);
                    &later
                };
                let mask = lanes.map(|r| nonzero_bits(&a[r * k + p0..r * k + p0 + len]));
                let spares = mask.map(|m| spare(m, len));
                let s = Steps {
                    val: lanes.map(|r| a[r * k + p0..].as_ptr()),
                    voff: boff,
                    b: b.as_ptr(),
                    boff,
                    mask: core::array::from_fn(|l| if mask[l] == 0 { spares[l] } else { mask[l] }),
                    spare: spares,
                    steps: mask.iter().map(|m| m.count_ones()).max().unwrap_or(0) as usize,
                };
                let last = p0 + len == k;
                let out = (lanes, n, m, j0);
                run_group::<true>(c, out, &s, width, (p0 == 0, bias.as_ref().filter(|_| last)));
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
    // The panel of `bᵀ` for a block of steps `j0..j0 + len` and columns `i0..i0 + width`:
    // `panel[j][i] = b[i0 + i][j0 + j]`, rows of `NB`.
    let mut panel = Panel([MaybeUninit::<f32>::uninit(); KB * NB]);
    let boff = offsets(0, NB);
    for i0 in (0..k).step_by(NB) {
        let width = (k - i0).min(NB);
        let lanes = lanes_of(width);
        for j0 in (0..m).step_by(KB) {
            let len = (m - j0).min(KB);
            // Row `j` of the panel is column `j0 + j` of `b`'s rows `i0..i0 + width`.
            let column = b[i0 * m + j0..].as_ptr();
            for j in 0..len {
                for w in 0..2 {
                    let idx = _mm512_mullo_epi32(
                        _mm512_add_epi32(
                            _mm512_set1_epi32(16 * w as i32),
                            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                        ),
                        _mm512_set1_epi32(m as i32),
                    );
                    // SAFETY: the lanes under `lanes[w]` read `b[(i0 + i)·m + j0 + j]` for
                    // `i < width` (`i0 + width <= k`, `j0 + j < m`), and write panel row `j < KB`,
                    // columns `< width <= NB`.
                    unsafe {
                        let v = _mm512_mask_i32gather_ps::<4>(
                            _mm512_setzero_ps(),
                            lanes[w],
                            idx,
                            column.wrapping_add(j),
                        );
                        _mm512_mask_storeu_ps(
                            panel.0.as_mut_ptr().wrapping_add(j * NB + 16 * w).cast(),
                            lanes[w],
                            v,
                        );
                    }
                }
            }
            for r0 in (0..rows).step_by(G) {
                let n = (rows - r0).min(G);
                let lanes = group(&core::array::from_fn::<usize, G, _>(|l| r0 + l)[..n]);
                let mut mask = [0u64; G];
                let mut spares = [0u64; G];
                for l in 0..G {
                    mask[l] = nonzero_bits(&a[lanes[l] * m + j0..lanes[l] * m + j0 + len]);
                    spares[l] = spare(mask[l], len);
                }
                let steps = mask.iter().map(|m| m.count_ones()).max().unwrap_or(0) as usize;
                let s = Steps {
                    val: lanes.map(|r| a[r * m + j0..].as_ptr()),
                    voff: &boff,
                    b: panel.0.as_ptr().cast(),
                    boff: &boff,
                    mask: core::array::from_fn(|l| if mask[l] == 0 { spares[l] } else { mask[l] }),
                    spare: spares,
                    steps,
                };
                run_group::<true>(c, (lanes, n, k, i0), &s, width, (j0 == 0, None));
            }
        }
    }
}

/// A panel of `KB` rows of `NB` floats, aligned to cache lines.
#[repr(align(64))]
struct Panel([MaybeUninit<f32>; KB * NB]);

/// Bit `s` of `masks[i]` set iff `a[s0 + s][f0 + i]` is not `±0`, for the `sc <= 32` samples
/// from `s0` and the `fc <= FB` features from `f0` (rows of `a` of `k`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn column_bits(
    a: &[f32],
    k: usize,
    (s0, sc): (usize, usize),
    (f0, fc): (usize, usize),
) -> [u32; FB] {
    let magnitude = _mm512_set1_epi32(0x7fff_ffff);
    let mut out = [0u32; FB];
    for c in 0..fc.div_ceil(16) {
        let kf = first(fc - 16 * c);
        let mut bits = _mm512_setzero_si512();
        for s in 0..sc.min(SB) {
            let Some(row) = a.get((s0 + s) * k + f0 + 16 * c..(s0 + s + 1) * k) else {
                continue;
            };
            // SAFETY: the lanes under `kf` are `row[..16]` (`f0 + fc <= k`).
            let x = unsafe { _mm512_maskz_loadu_epi32(kf, row.as_ptr().cast()) };
            let t = _mm512_mask_test_epi32_mask(kf, x, magnitude);
            bits = _mm512_mask_or_epi32(bits, t, bits, _mm512_set1_epi32(1 << s));
        }
        // SAFETY: `out[16c..16c + 16]` is inside `out` (`16c < fc <= FB`, `FB % 16 == 0`).
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().wrapping_add(16 * c).cast(), bits) };
    }
    out
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
    for s0 in (0..rows).step_by(SB) {
        let sc = (rows - s0).min(SB);
        let voff = offsets(s0 * k, k);
        for f0 in (0..k).step_by(FB) {
            let fc = (k - f0).min(FB);
            let bits = column_bits(a, k, (s0, sc), (f0, fc));
            // The features with steps, fewest steps first (a counting sort).
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
                let boff = offsets(s0 * m + j0, m);
                for ids in order[skip..fc].chunks(G) {
                    let lanes = group(ids);
                    let mask: [u64; G] = lanes.map(|i| u64::from(bits[i - f0]));
                    let spares = mask.map(|m| spare(m, sc));
                    let steps = mask.iter().map(|m| m.count_ones()).max().unwrap_or(0) as usize;
                    let s =
                        Steps {
                            val: lanes.map(|i| a[i..].as_ptr()),
                            voff: &voff,
                            b: b.as_ptr(),
                            boff: &boff,
                            mask: core::array::from_fn(|l| {
                                if mask[l] == 0 { spares[l] } else { mask[l] }
                            }),
                            spare: spares,
                            steps,
                        };
                    let out = (lanes, ids.len(), m, j0);
                    run_group::<false>(c, out, &s, width, (false, None));
                }
            }
        }
    }
}
