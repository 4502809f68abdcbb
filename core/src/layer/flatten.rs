//! `Flatten`: a feature map `T` (any fixed-size tensor) seen as a vector of `N = T::LEN`
//! values, row-major over `(…, h, w, c)` exactly as Keras' `Flatten` (channels last).
//!
//! Tensors are already stored row-major, so the forward pass is a copy and the backward pass
//! copies the gradient back. On stable Rust the type cannot compute `N`, so the caller writes
//! it and a `const` assertion checks it (a wrong `N` fails `cargo build` with a message).
//!
//! ```
//! use microfit_core::prelude::*;
//! type F = Flatten<[[[f32; 8]; 3]; 3], 72>;
//! let f = F::new();
//! let mut net = Network::new(f, 0)?;
//! let mut x = [[[0.0f32; 8]; 3]; 3];
//! x[1][2][5] = 1.0; // h = 1, w = 2, c = 5
//! let y = net.predict(&x);
//! assert_eq!(y[(1 * 3 + 2) * 8 + 5], 1.0);
//! # Ok::<(), microfit_core::Error>(())
//! ```

use core::marker::PhantomData;

use super::conv::ConstMsg;
use super::{BackwardCtx, ForwardCtx, Layer, PlainCache};
use crate::backend::Backend;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// Keras `Flatten()` of a `T` into `[f32; N]` (`N` must equal `T::LEN`; checked at build time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flatten<T, const N: usize> {
    _input: PhantomData<T>,
}

/// Copies `src` into `dst` element by element (the shorter length; never panics).
///
/// ```
/// let mut d = [0.0; 2];
/// microfit_core::layer::flatten::copy(&[1.0, 2.0, 3.0], &mut d);
/// assert_eq!(d, [1.0, 2.0]);
/// ```
#[inline]
pub fn copy(src: &[f32], dst: &mut [f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s;
    }
}

impl<T: Tensor, const N: usize> Flatten<T, N> {
    const CHECK: () = {
        if T::LEN != N {
            ConstMsg::new()
                .str("Flatten: the output size must be ")
                .num(T::LEN)
                .str(" (the number of input values), but the type says ")
                .num(N)
                .panic();
        }
    };
    /// The number of values (`N`).
    pub const LEN: usize = N;

    /// The layer.
    pub const fn new() -> Self {
        let () = Self::CHECK;
        Flatten {
            _input: PhantomData,
        }
    }
}

impl<T: Tensor, const N: usize> Layer for Flatten<T, N> {
    type Input = T;
    type Output = [f32; N];
    type Cache<const TILE: usize> = PlainCache<[f32; N], (), TILE>;
    type Rng = crate::rng::NoRng;
    super::plain_layer_methods!("flatten");

    fn init(&self, _p: &mut (), _rng: &mut Rng) {
        let () = Self::CHECK;
    }

    #[inline]
    fn forward<B: Backend, const TILE: usize>(
        &self,
        _p: &(),
        x: &[T],
        cache: &mut Self::Cache<TILE>,
        _ctx: &mut ForwardCtx<'_>,
    ) {
        let () = Self::CHECK;
        copy(T::flat(x), cache.out.y.flat_mut());
    }

    #[inline]
    fn backward<B: Backend, const TILE: usize>(
        &self,
        _p: &(),
        _g: &mut (),
        _x: &[T],
        cache: &mut Self::Cache<TILE>,
        dx: Option<&mut [T]>,
        _ctx: &BackwardCtx,
    ) {
        if let Some(dx) = dx {
            copy(cache.out.dy.flat(), T::flat_mut(dx));
        }
    }
}
