//! [`BatchLayer`] for the 2-D convolution, pooling and flatten layers: the core's per-sample
//! `Layer::forward`/`Layer::backward`, sample after sample (so trivially the same bits).

use super::BatchLayer;
use microfit_core::layer::conv::{Conv2D, PaddingMode};
use microfit_core::layer::flatten::Flatten;
use microfit_core::layer::pool::{PoolKind, Pooling2D};
use microfit_core::layer::{BackwardCtx, ForwardCtx, Layer};
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
    /// The pre-activations of the tile.
    type BatchCache = Box<[[[[f32; FILTERS]; OW]; OH]; B]>;

    fn new_batch_cache(&self) -> Self::BatchCache {
        Box::new([[[[0.0; FILTERS]; OW]; OH]; B])
    }

    fn forward_batch(
        &self,
        p: &Self::Params,
        x: &[Self::Input],
        y: &mut [Self::Output],
        cache: &mut Self::BatchCache,
        ctx: &mut ForwardCtx<'_>,
    ) {
        forward_each(self, p, x, y, &mut cache[..], ctx);
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
        backward_each(self, p, g, x, y, &mut cache[..], d, d_is_pre, dx, ctx);
    }

    fn logits_batch<'c>(&self, cache: &'c Self::BatchCache) -> Option<&'c [f32]> {
        Some(cache.as_flattened().as_flattened().as_flattened())
    }
}

impl<
    K: PoolKind,
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
        for (xr, yr) in x.iter().zip(y.iter_mut()) {
            self.forward(p, Tensor::as_slice(xr), Tensor::as_mut_slice(yr), &mut (), ctx);
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
        let mut caches = [(); B];
        backward_each(self, p, g, x, y, &mut caches[..x.len()], d, d_is_pre, dx, ctx);
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
        backward_each(self, p, g, x, y, &mut caches[..x.len()], d, d_is_pre, dx, ctx);
    }

    fn logits_batch<'c>(&self, _cache: &'c ()) -> Option<&'c [f32]> {
        None
    }
}
