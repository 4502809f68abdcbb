//! [`BatchLayer`] for [`Dense`]: the core's `layer::dense::{forward, backward}` applied to a
//! tile of samples, with the batched kernels of [`microfit_core::kernels::dense`].

use super::BatchLayer;
use super::exp::exp_slice;
use microfit_core::activation::{Activation, max_of};
use microfit_core::kernels::dense as k;
use microfit_core::layer::dense::{self, Dense, DenseParams};
use microfit_core::layer::{BackwardCtx, ForwardCtx, PenaltyKind, Penalties};
use microfit_core::regularizer::{Reg, Regularizer};
use std::any::Any;

/// The batch cache of a `Dense<IN, OUT>`: pre-activations of the tile, the transposed kernel
/// (for the input gradient) and the fused weight penalty.
#[derive(Debug, Clone)]
pub struct DenseTile<const IN: usize, const OUT: usize, const B: usize> {
    z: Box<[[f32; OUT]; B]>,
    wt: Box<[[f32; IN]; OUT]>,
    /// The next backward pass is the last tile of a step.
    last: bool,
    /// `Σw²` of the kernel (index order), summed by the last tile's backward pass.
    kernel_sq: Option<f32>,
}

/// The factor of an L2 kernel regularizer, when it is the built-in [`Reg::L2`].
fn l2_factor<R: 'static>(r: Option<&R>) -> Option<f32> {
    match r.and_then(|r| (r as &dyn Any).downcast_ref::<Reg>()) {
        Some(&Reg::L2 { l2 }) => Some(l2),
        _ => None,
    }
}

/// `y = softmax(z)` row by row with the core's `activation::softmax` order (max, `e^(z-m)`
/// summed in order, divisions), the `exp`s of all rows in one vectorized pass.
pub(crate) fn softmax_rows<const N: usize>(z: &[[f32; N]], y: &mut [[f32; N]]) {
    let n = z.len();
    for (zr, yr) in z.iter().zip(y.iter_mut()) {
        let m = max_of(zr);
        for (o, &v) in yr.iter_mut().zip(zr) {
            *o = v - m;
        }
    }
    exp_slice(y[..n].as_flattened_mut());
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
            wt: Box::new([[0.0; IN]; OUT]),
            last: false,
            kernel_sq: None,
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
        k::forward_rows(x, &p.kernel, b, z);
        match self.config.activation {
            Activation::Softmax => softmax_rows(z, y),
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
        // The core's `layer::dense::backward` up to the kernel call, sample by sample.
        for ((yr, zr), dr) in y.iter().zip(cache.z[..n].iter_mut()).zip(d.iter_mut()) {
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
        if dx.is_some() {
            k::transpose(&p.kernel, &mut cache.wt);
        }
        let gb = cfg.use_bias.then_some(&mut g.bias);
        let l2 = l2_factor(cfg.kernel_regularizer.as_ref()).filter(|_| cache.last && std::env::var_os("NOFUSE").is_none());
        if let Some(l2) = l2 {
            // The last tile: right after each gradient row's last addition, add the L2
            // gradient `(l2·(w·2))·1` (as `Reg::L2::add_grad` does after the backward pass) and
            // sum `Σw²` in index order (as `Reg::L2::penalty`).
            let mut sq = 0.0f32;
            let w = &p.kernel;
            let mut finish = |i: usize, row: &mut [f32; OUT]| {
                if let Some(wr) = w.get(i) {
                    for &wij in wr {
                        sq += wij * wij;
                    }
                    for (gj, &wij) in row.iter_mut().zip(wr) {
                        *gj += (l2 * (wij * 2.0)) * 1.0;
                    }
                }
            };
            k::backward_rows_then(x, &cache.wt, &d[..n], &mut g.kernel, gb, dx, Some(&mut finish));
            cache.kernel_sq = Some(sq);
        } else {
            k::backward_rows(x, &cache.wt, &d[..n], &mut g.kernel, gb, dx);
        }
    }

    fn last_tile(&self, cache: &mut Self::BatchCache, last: bool) {
        cache.last = last;
        cache.kernel_sq = None;
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
        match (l2_factor(cfg.kernel_regularizer.as_ref()), cache.kernel_sq.take(), g) {
            (Some(l2), Some(sq), Some(g)) => {
                // Kernel: value summed and gradient added by the last tile's backward pass.
                pen.add(layer, PenaltyKind::Kernel, l2 * sq);
                // Then the bias, as the core's `layer::dense::weight_penalties`.
                if cfg.use_bias {
                    if let Some(r) = &cfg.bias_regularizer {
                        pen.add(layer, PenaltyKind::Bias, r.penalty(&p.bias, OUT));
                        r.add_grad(&p.bias, OUT, &mut g.bias, 1.0);
                    }
                }
            }
            (_, _, g) => {
                let g = g.map(|g| (g.kernel.as_flattened_mut(), &mut g.bias[..]));
                dense::weight_penalties(cfg, p.kernel.as_flattened(), &p.bias, g, OUT, layer, pen);
            }
        }
    }


    fn logits_batch<'c>(&self, cache: &'c Self::BatchCache) -> Option<&'c [f32]> {
        Some(cache.z.as_flattened())
    }
}
