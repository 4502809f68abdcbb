//! The optimizer updates that also return `Σw²` of the weights they write
//! (`microfit_core::optim::adam::update_sq` and the SGD ones), for AVX2 ([`avx2`]) and
//! AVX-512 ([`avx512`]), with the same bits: the update is the core's loop, block by block
//! (`microfit_core::kernels::reduce::SQ_BLOCK` elements, compiled for the level), and each block's
//! squares go into the eight partial sums of `microfit_core::kernels::reduce::sum_sq` as one
//! 8-lane vector — element `i` into lane `i mod 8`, one `mul` then one `add` (never fused) —
//! in element order; the rest (under a block) and the final combination are the core's scalar
//! code. The compiler does not keep those eight sums in one register by itself once the update
//! has written the block (it falls back to scalar code), hence these few intrinsics.
//!
//! # Safety
//! Each function here is compiled for AVX2 or AVX-512 (`#[target_feature]`): [`super`] calls
//! them only after `level()` reported that level. The only raw accesses are 8-float loads and stores
//! of whole `[f32; 8]` arrays.

use core::arch::x86_64::*;

use microfit_core::kernels::reduce::{LANES, SQ_BLOCK, add_sq, combine};
use microfit_core::optim::adam::{self, Update};
use microfit_core::optim::sgd;

use super::Host;

/// The functions of this module compiled for the features `$features`.
macro_rules! level {
    ($features:literal) => {
        /// `s[j] += v[8k + j]²` for every chunk `k` of a block, in order.
        #[target_feature(enable = $features)]
        #[inline]
        fn add_block(s: __m256, w: &[f32; SQ_BLOCK]) -> __m256 {
            let mut s = s;
            for c in w.as_chunks::<LANES>().0 {
                // SAFETY: `c` is 8 floats.
                let x = unsafe { _mm256_loadu_ps(c.as_ptr()) };
                s = _mm256_add_ps(s, _mm256_mul_ps(x, x));
            }
            s
        }

        /// The partial sums `s`, then the rest `tail` (its element `j` into lane `j`, as
        /// `sum_sq`'s tail: the rest starts at a multiple of 8), combined.
        #[target_feature(enable = $features)]
        #[inline]
        fn finish(s: __m256, tail: &[f32]) -> f32 {
            let mut lanes = [0.0f32; LANES];
            // SAFETY: `lanes` is 8 floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), s) };
            add_sq(&mut lanes, tail);
            combine(&lanes)
        }

        /// `microfit_core::optim::adam::update_sq` (the same bits).
        #[target_feature(enable = $features)]
        pub(in crate::host) fn adam_update_sq(u: Update<'_>) -> f32 {
            let n = u.w.len();
            if u.g.len() != n || u.m.len() != n || u.v.len() != n {
                return adam::update_sq::<Host>(u);
            }
            let Update {
                w,
                g,
                m,
                v,
                alpha,
                one_minus_b1,
                one_minus_b2,
                epsilon,
            } = u;
            let (wc, wt) = w.as_chunks_mut::<SQ_BLOCK>();
            let (gc, gt) = g.as_chunks::<SQ_BLOCK>();
            let (mc, mt) = m.as_chunks_mut::<SQ_BLOCK>();
            let (vc, vt) = v.as_chunks_mut::<SQ_BLOCK>();
            let mut s = _mm256_setzero_ps();
            for (((w, g), m), v) in wc.iter_mut().zip(gc).zip(mc).zip(vc) {
                adam::update::<Host>(Update {
                    w,
                    g,
                    m,
                    v,
                    alpha,
                    one_minus_b1,
                    one_minus_b2,
                    epsilon,
                });
                s = add_block(s, w);
            }
            adam::update::<Host>(Update {
                w: &mut *wt,
                g: gt,
                m: mt,
                v: vt,
                alpha,
                one_minus_b1,
                one_minus_b2,
                epsilon,
            });
            finish(s, wt)
        }

        /// `microfit_core::optim::sgd::momentum_update_sq` (the same bits).
        #[target_feature(enable = $features)]
        pub(in crate::host) fn momentum_update_sq(
            w: &mut [f32],
            g: &[f32],
            m: &mut [f32],
            lr: f32,
            mu: f32,
            nesterov: bool,
        ) -> f32 {
            if g.len() != w.len() || m.len() != w.len() {
                return sgd::momentum_update_sq(w, g, m, lr, mu, nesterov);
            }
            let (wc, wt) = w.as_chunks_mut::<SQ_BLOCK>();
            let (gc, gt) = g.as_chunks::<SQ_BLOCK>();
            let (mc, mt) = m.as_chunks_mut::<SQ_BLOCK>();
            let mut s = _mm256_setzero_ps();
            for ((w, g), m) in wc.iter_mut().zip(gc).zip(mc) {
                sgd::momentum_update(w, g, m, lr, mu, nesterov);
                s = add_block(s, w);
            }
            sgd::momentum_update(wt, gt, mt, lr, mu, nesterov);
            finish(s, wt)
        }

        /// `microfit_core::optim::sgd::sgd_update_sq` (the same bits).
        #[target_feature(enable = $features)]
        pub(in crate::host) fn sgd_update_sq(w: &mut [f32], g: &[f32], lr: f32) -> f32 {
            if g.len() != w.len() {
                return sgd::sgd_update_sq(w, g, lr);
            }
            let (wc, wt) = w.as_chunks_mut::<SQ_BLOCK>();
            let (gc, gt) = g.as_chunks::<SQ_BLOCK>();
            let mut s = _mm256_setzero_ps();
            for (w, g) in wc.iter_mut().zip(gc) {
                sgd::sgd_update(w, g, lr);
                s = add_block(s, w);
            }
            sgd::sgd_update(wt, gt, lr);
            finish(s, wt)
        }
    };
}

/// For AVX2.
pub(super) mod avx2 {
    use super::*;
    level!("avx2,fma,bmi1,bmi2,lzcnt,popcnt");
}

/// For AVX-512.
pub(super) mod avx512 {
    use super::*;
    level!("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt");
}
