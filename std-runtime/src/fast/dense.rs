//! [`BatchLayer`] for [`Dense`]: the core's `layer::dense::{forward, backward}` applied to a
//! tile of samples, with the batched kernels of [`microfit_core::kernels::dense`].

use super::BatchLayer;
use super::exp::exp_into;
use microfit_core::activation::{Activation, max_of};
use microfit_core::kernels::dense as k;
use microfit_core::layer::dense::{self, Dense, DenseConfig, DenseParams};
use microfit_core::layer::{BackwardCtx, ForwardCtx, MAX_PENALTIES, Penalties, PenaltyKind};
use microfit_core::regularizer::{Reg, Regularizer};
use std::any::Any;

/// The batch cache of a `Dense<IN, OUT>`: pre-activations of the tile, the transposed kernel
/// (for the input gradient) and the fused weight penalty.
#[derive(Debug, Clone)]
pub struct DenseTile<const IN: usize, const OUT: usize, const B: usize> {
    z: Box<[[f32; OUT]; B]>,
    scratch: Box<[[f32; OUT]; B]>,
    /// Padded copies of the kernel, bias and outputs (narrow layers).
    pad: Vec<f32>,
    /// Padded copies of the output gradients and the kernel gradient (narrow layers).
    pad_bw: Vec<f32>,
    wt: Box<[[f32; IN]; OUT]>,
    /// The next backward pass is the last tile of a step.
    last: bool,
    /// `Σw²` of the kernel (index order), summed by the last tile's backward pass.
    kernel_sq: Option<f32>,
    /// How far the last tile's forward pass got with that sum: `(terms, partial sum)`.
    kernel_sq_part: (usize, f32),
    /// This step may report a bound of the kernel penalty instead of its value.
    defer: bool,
    /// The kernels whose penalty values were deferred, one after the other: the first
    /// `snap_len` values (the vector keeps its length between epochs: no clearing, no
    /// zero-filling).
    snapshots: Vec<f32>,
    snap_len: usize,
    /// Per step of the epoch: the snapshot whose penalty was deferred, if any.
    slots: Vec<Option<usize>>,
}

/// `dst_r[..OUT] = src_r`; the padding lanes are left as they are (zero from the allocation,
/// see the callers). A row built whole on the stack would be read back with wider loads than
/// its stores (a store-forwarding stall per row).
#[inline(always)]
fn pad_rows<const OUT: usize, const P: usize>(src: &[[f32; OUT]], dst: &mut [[f32; P]]) {
    for (d, s) in dst.iter_mut().zip(src) {
        if let Some(d) = d.get_mut(..OUT) {
            d.copy_from_slice(s);
        }
    }
}

/// [`k::forward_rows`] with the rows padded to `P` lanes (a multiple of the vector width):
/// the same additions on the `OUT` real lanes (the padding lanes compute their own zeros), in
/// full vectors instead of a vector and a scalar tail.
fn forward_padded<const IN: usize, const OUT: usize, const P: usize>(
    x: &[[f32; IN]],
    w: &[[f32; OUT]; IN],
    b: Option<&[f32; OUT]>,
    z: &mut [[f32; OUT]],
    pad: &mut Vec<f32>,
) {
    let n = x.len().min(z.len());
    // The padding lanes of the kernel and bias rows are zero from the allocation and never
    // written; the output rows are written whole by the kernel.
    let need = IN * P + P + n * P;
    if pad.len() < need {
        pad.resize(need, 0.0);
    }
    let (wp, rest) = pad.split_at_mut(IN * P);
    let (bp, zp) = rest.split_at_mut(P);
    pad_rows(w, wp.as_chunks_mut::<P>().0);
    if let Some(b) = b {
        bp[..OUT].copy_from_slice(b);
    }
    let (Ok(wp), Ok(bp)) = (
        <&[[f32; P]; IN]>::try_from(wp.as_chunks::<P>().0),
        <&[f32; P]>::try_from(&*bp),
    ) else {
        return k::forward_rows(x, w, b, z);
    };
    let zp = &mut zp.as_chunks_mut::<P>().0[..n];
    k::forward_rows(&x[..n], wp, b.map(|_| bp), zp);
    for (zr, zpr) in z.iter_mut().zip(zp.iter()) {
        zr.copy_from_slice(&zpr[..OUT]);
    }
}

/// [`k::backward_rows`] with the weight gradient computed on rows padded to `P` lanes (see
/// [`forward_padded`]): the same additions on the `OUT` real lanes, in whole vectors; the
/// input and bias gradients as [`k::backward_rows`].
fn backward_padded<const IN: usize, const OUT: usize, const P: usize>(
    x: &[[f32; IN]],
    wt: &[[f32; IN]; OUT],
    dz: &[[f32; OUT]],
    g: &mut DenseParams<IN, OUT>,
    bias: bool,
    dx: Option<&mut [[f32; IN]]>,
    pad: &mut Vec<f32>,
) {
    let n = x.len().min(dz.len());
    if let Some(dx) = dx {
        k::input_grad_rows(wt, &dz[..n], dx);
    }
    // The padding lanes: zero from the allocation. Those of `dz` are never written; those of
    // `gW` accumulate `x·0` (`+0`, or NaN after a non-finite input), never `-0`, and are
    // never read: the real lanes get the same additions whatever they hold.
    let need = IN * P + n * P;
    if pad.len() < need {
        pad.resize(need, 0.0);
    }
    let (gp, dp) = pad.split_at_mut(IN * P);
    pad_rows(&g.kernel, gp.as_chunks_mut::<P>().0);
    let dp = &mut dp.as_chunks_mut::<P>().0[..n];
    pad_rows(&dz[..n], dp);
    let dp = &*dp;
    let Ok(gp) = <&mut [[f32; P]; IN]>::try_from(gp.as_chunks_mut::<P>().0) else {
        return k::backward_rows(x, wt, dz, &mut g.kernel, bias.then_some(&mut g.bias), None);
    };
    k::weight_grad_rows(&x[..n], dp, gp);
    for (gr, row) in g.kernel.iter_mut().zip(gp.iter()) {
        gr.copy_from_slice(&row[..OUT]);
    }
    if bias {
        k::bias_grad_rows(&dz[..n], &mut g.bias);
    }
}

/// The bias penalty of the core's `layer::dense::weight_penalties` (after the kernel's).
fn bias_penalty<R: Regularizer, const IN: usize, const OUT: usize>(
    cfg: &DenseConfig<R>,
    p: &DenseParams<IN, OUT>,
    g: &mut DenseParams<IN, OUT>,
    layer: usize,
    pen: &mut Penalties,
) {
    if cfg.use_bias
        && let Some(r) = &cfg.bias_regularizer
    {
        let value = r.penalty_and_grad(&p.bias, OUT, &mut g.bias, 1.0);
        pen.add(layer, PenaltyKind::Bias, value);
    }
}

/// An upper bound of `l2 · Σw²` as the core computes it in `f32` (each square and each of the
/// `n` additions rounded: at most `n · max w² · (1 + 2⁻²⁴)ⁿ⁺¹`), when it is far below overflow.
///
/// `bits` is the largest magnitude of the `len` weights as the largest bit pattern without the
/// sign (`max |w|.to_bits()`): an integer maximum, which vectorizes (NaN and ±∞ compare above
/// every finite value).
fn l2_bound(l2: f32, bits: u32, len: usize) -> Option<f32> {
    let max = f64::from(f32::from_bits(bits));
    let n = len as f64;
    let b = f64::from(l2) * n * max * max * 1.001 * (n * 1.2e-7).exp();
    (bits < 0x7f80_0000 && len < 1 << 20 && b < 1e36).then_some((b * 1.001 + 1e-30) as f32)
}

/// `Σv²` (in index order, from `+0`) of each block of `len` values of `v`, eight blocks side
/// by side: eight independent chains of additions instead of one at a time.
fn square_sums(v: &[f32], len: usize) -> Vec<f32> {
    if len == 0 {
        return Vec::new();
    }
    let blocks: Vec<&[f32]> = v.chunks_exact(len).collect();
    let mut sums = vec![0.0f32; blocks.len()];
    let (groups, rest) = blocks.as_chunks::<8>();
    let (sum_groups, sum_rest) = sums.as_chunks_mut::<8>();
    for (g, s) in groups.iter().zip(sum_groups.iter_mut()) {
        let [b0, b1, b2, b3, b4, b5, b6, b7] = g.map(|b| &b[..len]);
        let mut acc = [0.0f32; 8];
        for i in 0..len {
            let x = [b0[i], b1[i], b2[i], b3[i], b4[i], b5[i], b6[i], b7[i]];
            for (a, &v) in acc.iter_mut().zip(&x) {
                *a += v * v;
            }
        }
        *s = acc;
    }
    for (b, s) in rest.iter().zip(sum_rest.iter_mut()) {
        let mut acc = 0.0f32;
        for &x in b.iter() {
            acc += x * x;
        }
        *s = acc;
    }
    sums
}

/// The factor of an L2 kernel regularizer, when it is the built-in [`Reg::L2`].
fn l2_factor<R: 'static>(r: Option<&R>) -> Option<f32> {
    match r.and_then(|r| (r as &dyn Any).downcast_ref::<Reg>()) {
        Some(&Reg::L2 { l2 }) => Some(l2),
        _ => None,
    }
}

/// `y = softmax(z)` row by row with the core's `activation::softmax` order (max, `e^(z-m)`
/// summed in order, divisions), the `exp`s of all rows in one vectorized pass (`t` is scratch).
pub(crate) fn softmax_rows<const N: usize>(z: &[[f32; N]], y: &mut [[f32; N]], t: &mut [[f32; N]]) {
    let n = z.len().min(y.len()).min(t.len());
    for (zr, tr) in z.iter().zip(t.iter_mut()) {
        // `max_of` (NaN-propagating): without branches when the row has no NaN.
        let (m, nan) = super::loss::max_no_nan(zr);
        let m = if nan { max_of(zr) } else { m };
        for (o, &v) in tr.iter_mut().zip(zr) {
            *o = v - m;
        }
    }
    exp_into(t[..n].as_flattened(), y[..n].as_flattened_mut());
    for yr in y[..n].iter_mut() {
        let mut s = 0.0f32;
        for &e in yr.iter() {
            s += e;
        }
        for o in yr.iter_mut() {
            *o /= s;
        }
    }
}

impl<const IN: usize, const OUT: usize, R: Regularizer + 'static, const B: usize> BatchLayer<B>
    for Dense<IN, OUT, R>
{
    type BatchCache = DenseTile<IN, OUT, B>;

    fn new_batch_cache(&self) -> Self::BatchCache {
        DenseTile {
            z: Box::new([[0.0; OUT]; B]),
            scratch: Box::new([[0.0; OUT]; B]),
            pad: Vec::new(),
            pad_bw: Vec::new(),
            wt: Box::new([[0.0; IN]; OUT]),
            last: false,
            kernel_sq: None,
            kernel_sq_part: (0, 0.0),
            defer: false,
            snapshots: Vec::new(),
            snap_len: 0,
            slots: Vec::new(),
        }
    }

    #[inline]
    fn forward_batch(
        &self,
        p: &Self::Params,
        x: &[[f32; IN]],
        y: &mut [[f32; OUT]],
        cache: &mut Self::BatchCache,
        _ctx: &mut ForwardCtx<'_>,
    ) {
        let n = x.len();
        let z = &mut cache.z[..n];
        let b = self.config.use_bias.then_some(&p.bias);
        if cache.last
            && !cache.defer
            && l2_factor(self.config.kernel_regularizer.as_ref()).is_some()
        {
            // The last tile of a step: start the L2 penalty's `Σw²` (index order) here, one
            // term per step of the kernel's loop, so that its chain of dependent additions
            // overlaps the forward pass; the backward pass finishes it.
            let w = p.kernel.as_flattened();
            let (mut terms, mut sum) = (0usize, 0.0f32);
            k::forward_rows_ticking(x, &p.kernel, b, z, &mut || {
                if let Some(&v) = w.get(terms) {
                    sum += v * v;
                    terms += 1;
                }
            });
            cache.kernel_sq_part = (terms, sum);
        } else if (1..8).contains(&OUT) {
            forward_padded::<IN, OUT, 8>(x, &p.kernel, b, z, &mut cache.pad);
        } else if (9..16).contains(&OUT) {
            forward_padded::<IN, OUT, 16>(x, &p.kernel, b, z, &mut cache.pad);
        } else {
            k::forward_rows(x, &p.kernel, b, z);
        }
        match self.config.activation {
            Activation::Softmax => softmax_rows(z, y, &mut cache.scratch[..n]),
            Activation::Relu => {
                // `Activation::Relu.forward`: `if z > 0 { z } else { 0 }`, over the whole tile.
                for (o, &v) in y[..n].as_flattened_mut().iter_mut().zip(z.as_flattened()) {
                    *o = if v > 0.0 { v } else { 0.0 };
                }
            }
            act => {
                for (zr, yr) in z.iter().zip(y.iter_mut()) {
                    act.forward(zr, yr);
                }
            }
        }
    }

    #[inline]
    fn backward_batch(
        &self,
        p: &DenseParams<IN, OUT>,
        g: &mut DenseParams<IN, OUT>,
        x: &[[f32; IN]],
        y: &[[f32; OUT]],
        cache: &mut Self::BatchCache,
        d: &mut [[f32; OUT]],
        d_is_pre: bool,
        dx: Option<&mut [[f32; IN]]>,
        ctx: &mut BackwardCtx<'_>,
    ) {
        let cfg = &self.config;
        let n = x.len();
        let relu =
            cfg.activity_regularizer.is_none() && !d_is_pre && cfg.activation == Activation::Relu;
        if relu {
            // `Activation::Relu.backward_in_place`: `if y <= 0 { d = 0 }`, over the whole tile,
            // as a bit mask (+0 where y <= 0, d unchanged elsewhere), written to the scratch
            // rows: in place, the compiler turns it into masked stores, which are slow on Zen.
            let out = cache.scratch[..n].as_flattened_mut();
            for ((o, &dj), &yj) in out
                .iter_mut()
                .zip(d[..n].as_flattened())
                .zip(y.as_flattened())
            {
                let keep = if yj <= 0.0 { 0u32 } else { u32::MAX };
                *o = f32::from_bits(dj.to_bits() & keep);
            }
        } else {
            self.activation_backward_rows(y, &mut cache.z[..n], &mut d[..n], d_is_pre, ctx);
        }
        let dz: &[[f32; OUT]] = if relu { &cache.scratch[..n] } else { &d[..n] };
        if dx.is_some() {
            k::transpose(&p.kernel, &mut cache.wt);
        }
        let gb = cfg.use_bias.then_some(&mut g.bias);
        let l2 = l2_factor(cfg.kernel_regularizer.as_ref()).filter(|_| cache.last && !cache.defer);
        if let Some(l2) = l2 {
            // The last tile: right after each gradient row's last addition, add the L2
            // gradient `(l2·(w·2))·1` (as `Reg::L2`'s `penalty_and_grad` does after the
            // backward pass); meanwhile go on with `Σw²` in index order (`l2 · Σw²` is the
            // penalty), one term per step of the kernel's loop, from where the forward pass
            // stopped; the terms left are summed at the end.
            let (mut terms, mut sq) = cache.kernel_sq_part;
            let w = &p.kernel;
            let wf = w.as_flattened();
            let mut finish = |i: usize, row: &mut [f32; OUT]| {
                if let Some(wr) = w.get(i) {
                    for (gj, &wij) in row.iter_mut().zip(wr) {
                        *gj += (l2 * (wij * 2.0)) * 1.0;
                    }
                }
            };
            let mut tick = || {
                if let Some(&v) = wf.get(terms) {
                    sq += v * v;
                    terms += 1;
                }
            };
            k::backward_rows_ticking(
                x,
                &cache.wt,
                dz,
                &mut g.kernel,
                gb,
                dx,
                Some(&mut finish),
                &mut tick,
            );
            for &v in wf.get(terms..).unwrap_or(&[]) {
                sq += v * v;
            }
            cache.kernel_sq = Some(sq);
        } else if (1..8).contains(&OUT) {
            backward_padded::<IN, OUT, 8>(x, &cache.wt, dz, g, cfg.use_bias, dx, &mut cache.pad_bw);
        } else if (9..16).contains(&OUT) {
            backward_padded::<IN, OUT, 16>(
                x,
                &cache.wt,
                dz,
                g,
                cfg.use_bias,
                dx,
                &mut cache.pad_bw,
            );
        } else {
            k::backward_rows(x, &cache.wt, dz, &mut g.kernel, gb, dx);
        }
    }

    fn last_tile(&self, cache: &mut Self::BatchCache, last: bool) {
        cache.last = last;
        cache.kernel_sq = None;
        cache.kernel_sq_part = (0, 0.0);
    }

    fn weight_penalties_batch(
        &self,
        p: &DenseParams<IN, OUT>,
        g: Option<&mut DenseParams<IN, OUT>>,
        layer: usize,
        pen: &mut Penalties,
        cache: &mut Self::BatchCache,
    ) {
        let cfg = &self.config;
        let room = pen.entries().len() + 2 < MAX_PENALTIES;
        match (
            l2_factor(cfg.kernel_regularizer.as_ref()),
            cache.kernel_sq.take(),
            g,
        ) {
            (Some(l2), Some(sq), Some(g)) => {
                // Kernel: value summed and gradient added by the last tile's passes.
                pen.add(layer, PenaltyKind::Kernel, l2 * sq);
                bias_penalty(cfg, p, g, layer, pen);
            }
            (Some(l2), None, Some(g)) if cache.defer && room => {
                // Inside an epoch: the gradient `(l2·(w·2))·1` now, the value `l2·Σw²` (index
                // order) after the last step, from a copy of the kernel; meanwhile a bound.
                // One pass over the kernel: the gradient, the copy and the largest magnitude.
                let w = p.kernel.as_flattened();
                let (start, end) = (cache.snap_len, cache.snap_len + w.len());
                if cache.snapshots.len() < end {
                    cache.snapshots.resize(end, 0.0);
                }
                let snap = &mut cache.snapshots[start..end];
                let mut bits = 0u32;
                for ((gi, &wi), si) in g.kernel.as_flattened_mut().iter_mut().zip(w).zip(snap) {
                    *gi += (l2 * (wi * 2.0)) * 1.0;
                    *si = wi;
                    bits = bits.max(wi.to_bits() & 0x7fff_ffff);
                }
                match l2_bound(l2, bits, w.len()) {
                    Some(bound) => {
                        let k = start / w.len().max(1);
                        if let Some(slot) = cache.slots.last_mut() {
                            *slot = Some(k);
                        }
                        cache.snap_len = end;
                        pen.add(layer, PenaltyKind::Kernel, bound);
                    }
                    None => {
                        let mut sq = 0.0f32;
                        for &wi in w {
                            sq += wi * wi;
                        }
                        pen.add(layer, PenaltyKind::Kernel, l2 * sq);
                    }
                }
                bias_penalty(cfg, p, g, layer, pen);
            }
            (_, _, g) => {
                let g = g.map(|g| (g.kernel.as_flattened_mut(), &mut g.bias[..]));
                dense::weight_penalties(cfg, p.kernel.as_flattened(), &p.bias, g, OUT, layer, pen);
            }
        }
    }

    fn defer_weight_penalties(&self, cache: &mut Self::BatchCache, headroom: Option<f32>) {
        // Defer only while everything else in the step's total stays far below overflow. Every
        // step of an epoch takes a slot; `weight_penalties_batch` fills it when it defers.
        cache.defer = headroom.is_some_and(|h| h < 1e36);
        if headroom.is_some() {
            cache.slots.push(None);
        }
    }

    fn take_deferred(
        &self,
        cache: &mut Self::BatchCache,
        layer: usize,
        f: &mut dyn FnMut(usize, &[Option<f32>]),
    ) {
        cache.defer = false;
        let l2 = l2_factor(self.config.kernel_regularizer.as_ref());
        let snaps = cache.snapshots.get(..cache.snap_len).unwrap_or(&[]);
        let sums = square_sums(snaps, IN * OUT);
        let values: Vec<Option<f32>> = cache
            .slots
            .iter()
            .map(|s| match (s, l2) {
                (Some(k), Some(l2)) => sums.get(*k).map(|&sq| l2 * sq),
                _ => None,
            })
            .collect();
        cache.slots.clear();
        cache.snap_len = 0;
        if values.iter().any(Option::is_some) {
            f(layer, &values);
        }
    }

    fn logits_batch<'c>(&self, cache: &'c Self::BatchCache) -> Option<&'c [f32]> {
        Some(cache.z.as_flattened())
    }
}

/// The core's `layer::dense::backward` up to the kernel call (activity penalty, its gradient,
/// the activation's backward), sample by sample.
trait ActivationRows<const OUT: usize> {
    fn activation_backward_rows(
        &self,
        y: &[[f32; OUT]],
        z: &mut [[f32; OUT]],
        d: &mut [[f32; OUT]],
        d_is_pre: bool,
        ctx: &mut BackwardCtx<'_>,
    );
}

impl<const IN: usize, const OUT: usize, R: Regularizer> ActivationRows<OUT> for Dense<IN, OUT, R> {
    fn activation_backward_rows(
        &self,
        y: &[[f32; OUT]],
        z: &mut [[f32; OUT]],
        d: &mut [[f32; OUT]],
        d_is_pre: bool,
        ctx: &mut BackwardCtx<'_>,
    ) {
        let cfg = &self.config;
        for ((yr, zr), dr) in y.iter().zip(z.iter_mut()).zip(d.iter_mut()) {
            if let Some(ar) = &cfg.activity_regularizer {
                ctx.penalties
                    .add(ctx.layer, PenaltyKind::Activity, ar.penalty(yr, OUT));
                if d_is_pre {
                    zr.fill(0.0);
                    ar.add_grad(yr, OUT, zr, ctx.inv_batch);
                    cfg.activation.backward_in_place(&[], yr, zr);
                    for (dj, &aj) in dr.iter_mut().zip(zr.iter()) {
                        *dj += aj;
                    }
                } else {
                    ar.add_grad(yr, OUT, dr, ctx.inv_batch);
                }
            }
            if !d_is_pre {
                cfg.activation.backward_in_place(zr, yr, dr);
            }
        }
    }
}
