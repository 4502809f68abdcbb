//! [`BatchLayer`] for the 2-D convolution, pooling and flatten layers.
//!
//! * `Conv2D` with `valid` padding: the core's convolution is, output position by output
//!   position, the dense kernel applied to the patch of that position (taps in row-major
//!   kernel order, input channels inside, zero inputs skipped, bias last; the kernel gradient
//!   summed position by position): so the tile's patches are laid out one after the other
//!   (im2col) and the batched dense kernels run over them, with the order of
//!   `kernels::conv::{forward, backward}`. `same` padding falls back to the per-sample code.
//! * `MaxPooling2D` with `valid` padding: the core's window scan (row-major, a later tap
//!   replaces the maximum only when strictly greater) vectorized over the channels.
//! * Everything else (average pooling, `same` padding, flatten): the core's per-sample
//!   `Layer::forward`/`Layer::backward`, sample after sample.

use std::any::TypeId;

use super::BatchLayer;
use microfit_core::activation::Activation;
use microfit_core::kernels::conv::Padding;
use microfit_core::kernels::dense as k;
use microfit_core::layer::conv::{Conv2D, PaddingMode, activation_backward, activation_forward};
use microfit_core::layer::flatten::Flatten;
use microfit_core::layer::pool::{Max, PoolKind, Pooling2D};
use microfit_core::layer::{BackwardCtx, ForwardCtx, Layer, PenaltyKind};
use microfit_core::regularizer::Regularizer;
use microfit_core::tensor::Tensor;

/// Forward of every row with the layer's per-sample code.
#[inline]
fn forward_each<L: Layer>(
    l: &L,
    p: &L::Params,
    x: &[L::Input],
    y: &mut [L::Output],
    caches: &mut [L::Cache],
    ctx: &mut ForwardCtx<'_>,
) {
    for ((xr, yr), c) in x.iter().zip(y.iter_mut()).zip(caches.iter_mut()) {
        l.forward(p, xr.as_slice(), yr.as_mut_slice(), c, ctx);
    }
}

/// Backward of every row, in sample order, with the layer's per-sample code.
#[inline]
fn backward_each<L: Layer>(
    l: &L,
    p: &L::Params,
    g: &mut L::Params,
    x: &[L::Input],
    y: &[L::Output],
    caches: &mut [L::Cache],
    d: &mut [L::Output],
    d_is_pre: bool,
    mut dx: Option<&mut [L::Input]>,
    ctx: &mut BackwardCtx<'_>,
) {
    for s in 0..x.len() {
        let dxs = dx.as_deref_mut().map(|dx| dx[s].as_mut_slice());
        l.backward(
            p,
            g,
            x[s].as_slice(),
            y[s].as_slice(),
            &mut caches[s],
            d[s].as_mut_slice(),
            d_is_pre,
            dxs,
            ctx,
        );
    }
}

/// The batch cache of a `Conv2D`: the tile's pre-activations and its patches (im2col).
#[derive(Debug, Clone)]
pub struct ConvTile<const OH: usize, const OW: usize, const F: usize, const B: usize> {
    z: Box<[[[[f32; F]; OW]; OH]; B]>,
    patches: Vec<f32>,
}

impl<
    const H: usize,
    const W: usize,
    const CIN: usize,
    const FILTERS: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
    P: PaddingMode,
    const SH: usize,
    const SW: usize,
    const DH: usize,
    const DW: usize,
    R: Regularizer,
    const B: usize,
> BatchLayer<B> for Conv2D<H, W, CIN, FILTERS, KH, KW, OH, OW, P, SH, SW, DH, DW, R>
{
    type BatchCache = ConvTile<OH, OW, FILTERS, B>;

    fn new_batch_cache(&self) -> Self::BatchCache {
        ConvTile {
            z: Box::new([[[[0.0; FILTERS]; OW]; OH]; B]),
            patches: Vec::new(),
        }
    }

    fn forward_batch(
        &self,
        p: &Self::Params,
        x: &[Self::Input],
        y: &mut [Self::Output],
        cache: &mut Self::BatchCache,
        ctx: &mut ForwardCtx<'_>,
    ) {
        let n = x.len();
        if P::PADDING != Padding::Valid {
            forward_each(self, p, x, y, &mut cache.z[..n], ctx);
            return;
        }
        let plen = KH * KW * CIN;
        let patches = &mut cache.patches;
        patches.resize(n * OH * OW * plen, 0.0);
        let mut rows = patches.chunks_exact_mut(plen);
        for xs in x {
            for oh in 0..OH {
                for ow in 0..OW {
                    let Some(row) = rows.next() else {
                        return;
                    };
                    let (taps, _) = row.as_chunks_mut::<CIN>();
                    for (t, tap) in taps.iter_mut().enumerate() {
                        let (kh, kw) = (t / KW, t % KW);
                        *tap = xs[oh * SH + kh * DH][ow * SW + kw * DW];
                    }
                }
            }
        }
        let kernel = p.kernel.as_flattened().as_flattened();
        let bias = self.config.use_bias.then_some(&p.bias);
        let z = cache.z[..n].as_flattened_mut().as_flattened_mut();
        k::forward_rows_flat(patches, plen, kernel, bias, z);
        if self.config.activation == Activation::Relu {
            // `Activation::Relu.forward` over the whole tile.
            let z = cache.z[..n].as_flattened().as_flattened().as_flattened();
            let yf = y.as_flattened_mut().as_flattened_mut().as_flattened_mut();
            for (o, &v) in yf.iter_mut().zip(z) {
                *o = if v > 0.0 { v } else { 0.0 };
            }
        } else {
            for (zs, ys) in cache.z[..n].iter().zip(y.iter_mut()) {
                activation_forward(
                    self.config.activation,
                    FILTERS,
                    Tensor::as_slice(zs),
                    Tensor::as_mut_slice(ys),
                );
            }
        }
    }

    fn backward_batch(
        &self,
        p: &Self::Params,
        g: &mut Self::Params,
        x: &[Self::Input],
        y: &[Self::Output],
        cache: &mut Self::BatchCache,
        d: &mut [Self::Output],
        d_is_pre: bool,
        dx: Option<&mut [Self::Input]>,
        ctx: &mut BackwardCtx<'_>,
    ) {
        let n = x.len();
        if P::PADDING != Padding::Valid {
            backward_each(self, p, g, x, y, &mut cache.z[..n], d, d_is_pre, dx, ctx);
            return;
        }
        let cfg = &self.config;
        let plain_relu =
            cfg.activity_regularizer.is_none() && !d_is_pre && cfg.activation == Activation::Relu;
        if plain_relu {
            // `Activation::Relu.backward_in_place` over the whole tile, as a bit mask (see the
            // dense layer).
            let yf = y.as_flattened().as_flattened().as_flattened();
            let df = d[..n]
                .as_flattened_mut()
                .as_flattened_mut()
                .as_flattened_mut();
            for (dj, &yj) in df.iter_mut().zip(yf) {
                let keep = if yj <= 0.0 { 0u32 } else { u32::MAX };
                *dj = f32::from_bits(dj.to_bits() & keep);
            }
        }
        // Otherwise the core's `layer::conv::backward` up to the kernel call, sample by sample.
        let rows = y.iter().zip(cache.z[..n].iter_mut()).zip(d.iter_mut());
        for ((ys, zs), ds) in rows.filter(|_| !plain_relu) {
            let (ys, zs, ds) = (
                Tensor::as_slice(ys),
                Tensor::as_mut_slice(zs),
                Tensor::as_mut_slice(ds),
            );
            if let Some(ar) = &cfg.activity_regularizer {
                ctx.penalties
                    .add(ctx.layer, PenaltyKind::Activity, ar.penalty(ys, FILTERS));
                if d_is_pre {
                    zs.fill(0.0);
                    ar.add_grad(ys, FILTERS, zs, ctx.inv_batch);
                    activation_backward(cfg.activation, FILTERS, &[], ys, zs);
                    for (dj, &aj) in ds.iter_mut().zip(zs.iter()) {
                        *dj += aj;
                    }
                } else {
                    ar.add_grad(ys, FILTERS, ds, ctx.inv_batch);
                }
            }
            if !d_is_pre {
                activation_backward(cfg.activation, FILTERS, zs, ys, ds);
            }
        }
        // The input gradient (only when a layer before wants it): the core's kernel, per sample.
        if let Some(dx) = dx {
            let geometry = &Self::GEOMETRY;
            let kernel = Tensor::as_slice(&p.kernel);
            for (ds, dxs) in d.iter().zip(dx.iter_mut()) {
                microfit_core::kernels::conv::backward(
                    geometry,
                    &[],
                    kernel,
                    Tensor::as_slice(ds),
                    &mut [],
                    None,
                    Some(Tensor::as_mut_slice(dxs)),
                );
            }
        }
        // Kernel and bias gradients over the patches, position after position.
        let plen = KH * KW * CIN;
        let dz = d[..n].as_flattened().as_flattened();
        let gk = g.kernel.as_flattened_mut().as_flattened_mut();
        k::weight_grad_rows_flat(&cache.patches, plen, dz, gk);
        if cfg.use_bias {
            k::bias_grad_rows(dz, &mut g.bias);
        }
    }

    fn logits_batch<'c>(&self, cache: &'c Self::BatchCache) -> Option<&'c [f32]> {
        Some(cache.z.as_flattened().as_flattened().as_flattened())
    }
}

impl<
    K: PoolKind + 'static,
    const H: usize,
    const W: usize,
    const C: usize,
    const PH: usize,
    const PW: usize,
    const OH: usize,
    const OW: usize,
    P: PaddingMode,
    const SH: usize,
    const SW: usize,
    const B: usize,
> BatchLayer<B> for Pooling2D<K, H, W, C, PH, PW, OH, OW, P, SH, SW>
{
    type BatchCache = ();

    fn new_batch_cache(&self) -> Self::BatchCache {}

    fn forward_batch(
        &self,
        p: &Self::Params,
        x: &[Self::Input],
        y: &mut [Self::Output],
        _cache: &mut (),
        ctx: &mut ForwardCtx<'_>,
    ) {
        if TypeId::of::<K>() != TypeId::of::<Max>() || P::PADDING != Padding::Valid || PH * PW == 0
        {
            for (xr, yr) in x.iter().zip(y.iter_mut()) {
                self.forward(
                    p,
                    Tensor::as_slice(xr),
                    Tensor::as_mut_slice(yr),
                    &mut (),
                    ctx,
                );
            }
            return;
        }
        // `kernels::pool::max_forward`: the first tap, then `if x > y { y = x }` in row-major
        // window order.
        for (xs, ys) in x.iter().zip(y.iter_mut()) {
            for oh in 0..OH {
                for ow in 0..OW {
                    let mut m = xs[oh * SH][ow * SW];
                    for kh in 0..PH {
                        for kw in 0..PW {
                            if kh + kw == 0 {
                                continue;
                            }
                            let v = &xs[oh * SH + kh][ow * SW + kw];
                            for (mc, &vc) in m.iter_mut().zip(v) {
                                if vc > *mc {
                                    *mc = vc;
                                }
                            }
                        }
                    }
                    ys[oh][ow] = m;
                }
            }
        }
    }

    fn backward_batch(
        &self,
        p: &Self::Params,
        g: &mut Self::Params,
        x: &[Self::Input],
        y: &[Self::Output],
        _cache: &mut (),
        d: &mut [Self::Output],
        d_is_pre: bool,
        dx: Option<&mut [Self::Input]>,
        ctx: &mut BackwardCtx<'_>,
    ) {
        if TypeId::of::<K>() != TypeId::of::<Max>() || P::PADDING != Padding::Valid || PH * PW == 0
        {
            let mut caches = [(); B];
            backward_each(
                self,
                p,
                g,
                x,
                y,
                &mut caches[..x.len()],
                d,
                d_is_pre,
                dx,
                ctx,
            );
            return;
        }
        let Some(dx) = dx else {
            return;
        };
        // `kernels::pool::max_backward`: dx is zeroed, then for each output position in order
        // each channel's gradient is added to the first maximal tap of its window. Adding
        // `+0` to the other taps changes nothing (dx never holds `-0`: it starts at `+0`).
        for ((xs, ds), dxs) in x.iter().zip(d.iter()).zip(dx.iter_mut()) {
            *dxs = [[[0.0; C]; W]; H];
            for oh in 0..OH {
                for ow in 0..OW {
                    let mut best = xs[oh * SH][ow * SW];
                    let mut at = [0u32; C];
                    for kh in 0..PH {
                        for kw in 0..PW {
                            if kh + kw == 0 {
                                continue;
                            }
                            let t = (kh * PW + kw) as u32;
                            let v = &xs[oh * SH + kh][ow * SW + kw];
                            for ((bc, ac), &vc) in best.iter_mut().zip(at.iter_mut()).zip(v) {
                                if vc > *bc {
                                    *bc = vc;
                                    *ac = t;
                                }
                            }
                        }
                    }
                    let dy = &ds[oh][ow];
                    for kh in 0..PH {
                        for kw in 0..PW {
                            let t = (kh * PW + kw) as u32;
                            let dxr = &mut dxs[oh * SH + kh][ow * SW + kw];
                            for ((o, &ac), &dc) in dxr.iter_mut().zip(&at).zip(dy) {
                                *o += if ac == t { dc } else { 0.0 };
                            }
                        }
                    }
                }
            }
        }
    }

    fn logits_batch<'c>(&self, _cache: &'c ()) -> Option<&'c [f32]> {
        None
    }
}

impl<T: Tensor, const N: usize, const B: usize> BatchLayer<B> for Flatten<T, N> {
    type BatchCache = ();

    fn new_batch_cache(&self) -> Self::BatchCache {}

    fn forward_batch(
        &self,
        p: &Self::Params,
        x: &[T],
        y: &mut [[f32; N]],
        _cache: &mut (),
        ctx: &mut ForwardCtx<'_>,
    ) {
        for (xr, yr) in x.iter().zip(y.iter_mut()) {
            self.forward(p, xr.as_slice(), yr, &mut (), ctx);
        }
    }

    fn backward_batch(
        &self,
        p: &Self::Params,
        g: &mut Self::Params,
        x: &[T],
        y: &[[f32; N]],
        _cache: &mut (),
        d: &mut [[f32; N]],
        d_is_pre: bool,
        dx: Option<&mut [T]>,
        ctx: &mut BackwardCtx<'_>,
    ) {
        let mut caches = [(); B];
        backward_each(
            self,
            p,
            g,
            x,
            y,
            &mut caches[..x.len()],
            d,
            d_is_pre,
            dx,
            ctx,
        );
    }

    fn logits_batch<'c>(&self, _cache: &'c ()) -> Option<&'c [f32]> {
        None
    }
}
