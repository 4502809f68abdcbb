//! `MaxPooling1D/2D/3D` and `AveragePooling1D/2D/3D` (Keras, channels last): no weights; the
//! cache is the outputs and their gradients.
//!
//! The math is [`crate::kernels::pool`] over a [`ConvGeometry`] (the convolution's windows).
//! Sizes are const generics as for the conv layers: input, pool size, **output** (checked at
//! build time against [`conv_out`](crate::kernels::conv::conv_out)), then padding marker and
//! strides (Keras defaults: `Valid`, strides = pool size).
//!
//! Max pooling keeps **no argmax indices**: its backward scans each window of the input again
//! (ties go to the first maximal element in row-major window order), so a pooling layer
//! costs no memory beyond the input and output the model keeps anyway.
//!
//! ```
//! use microfit_core::prelude::*;
//! // Keras MaxPooling2D(2) on (6, 6, 8) → (3, 3, 8); AveragePooling1D(3, strides=2) on (7, 4) → (3, 4).
//! type M = MaxPooling2D<6, 6, 8, 2, 2, 3, 3>;
//! type A = AveragePooling1D<7, 4, 3, 3, Valid, 2>;
//! assert_eq!(M::GEOMETRY.out_len(), 72);
//! assert_eq!(A::GEOMETRY.output(), [1, 1, 3]);
//! let _ = (M::new(), A::new());
//! ```

use core::marker::PhantomData;

use super::conv::{Declared, PaddingMode, Valid, checked_geometry};
use super::{BackwardCtx, ForwardCtx, Layer, PlainCache};
use crate::backend::Backend;
use crate::kernels::conv::ConvGeometry;
use crate::kernels::pool;
use crate::rng::Rng;
use crate::tensor::Tensor;

mod sealed {
    pub trait Sealed {}
}

/// Which pooling: [`Max`] or [`Average`].
pub trait PoolKind: sealed::Sealed {
    /// Keras kind names for 1-D, 2-D and 3-D (`"max_pooling2d"`, ...).
    const KINDS: [&'static str; 3];
    /// Keras class names for 1-D, 2-D and 3-D (`"MaxPooling2D"`, ...).
    const CLASSES: [&'static str; 3];
    /// Forward pass of one sample.
    fn forward(g: &ConvGeometry, x: &[f32], y: &mut [f32]);
    /// Backward pass of one sample: writes `dx` from `dy`.
    fn backward(g: &ConvGeometry, x: &[f32], dy: &[f32], dx: &mut [f32]);
}

/// Max pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Max;

/// Average pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Average;

impl sealed::Sealed for Max {}
impl sealed::Sealed for Average {}

impl PoolKind for Max {
    const KINDS: [&'static str; 3] = ["max_pooling1d", "max_pooling2d", "max_pooling3d"];
    const CLASSES: [&'static str; 3] = ["MaxPooling1D", "MaxPooling2D", "MaxPooling3D"];
    #[inline]
    fn forward(g: &ConvGeometry, x: &[f32], y: &mut [f32]) {
        pool::max_forward(g, x, y);
    }
    #[inline]
    fn backward(g: &ConvGeometry, x: &[f32], dy: &[f32], dx: &mut [f32]) {
        pool::max_backward(g, x, dy, dx);
    }
}

impl PoolKind for Average {
    const KINDS: [&'static str; 3] = [
        "average_pooling1d",
        "average_pooling2d",
        "average_pooling3d",
    ];
    const CLASSES: [&'static str; 3] = ["AveragePooling1D", "AveragePooling2D", "AveragePooling3D"];
    #[inline]
    fn forward(g: &ConvGeometry, x: &[f32], y: &mut [f32]) {
        pool::avg_forward(g, x, y);
    }
    #[inline]
    fn backward(g: &ConvGeometry, _x: &[f32], dy: &[f32], dx: &mut [f32]) {
        pool::avg_backward(g, dy, dx);
    }
}

/// Forward pass of a tile's rows (flat: `g.in_len()` inputs and `g.out_len()` outputs per
/// sample), sample after sample; shared with models built at run time.
#[inline]
pub fn forward_rows<K: PoolKind>(g: &ConvGeometry, x: &[f32], y: &mut [f32]) {
    let (il, ol) = (g.in_len().max(1), g.out_len().max(1));
    for (xr, yr) in x.chunks_exact(il).zip(y.chunks_exact_mut(ol)) {
        K::forward(g, xr, yr);
    }
}

/// Backward pass of a tile's rows (see [`forward_rows`]): writes `dx` from `dy`.
#[inline]
pub fn backward_rows<K: PoolKind>(g: &ConvGeometry, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (il, ol) = (g.in_len().max(1), g.out_len().max(1));
    for ((xr, dr), dxr) in x
        .chunks_exact(il)
        .zip(dy.chunks_exact(ol))
        .zip(dx.chunks_exact_mut(il))
    {
        K::backward(g, xr, dr, dxr);
    }
}

macro_rules! pool_layer_body {
    ($rank:literal) => {
        type Cache<const T: usize> = PlainCache<Self::Output, (), T>;
        type Rng = $crate::rng::NoRng;
        super::plain_layer_methods!(K::KINDS[$rank - 1]);

        fn init(&self, _p: &mut (), _rng: &mut Rng) {
            let _ = Self::GEOMETRY;
        }

        #[inline]
        fn forward<B: Backend, const T: usize>(
            &self,
            _p: &(),
            x: &[Self::Input],
            cache: &mut Self::Cache<T>,
            _ctx: &mut ForwardCtx<'_>,
        ) {
            for (xr, yr) in x.iter().zip(cache.out.y.0.iter_mut()) {
                K::forward(
                    &Self::GEOMETRY,
                    Tensor::as_slice(xr),
                    Tensor::as_mut_slice(yr),
                );
            }
        }

        #[inline]
        fn backward<B: Backend, const T: usize>(
            &self,
            _p: &(),
            _g: &mut (),
            x: &[Self::Input],
            cache: &mut Self::Cache<T>,
            dx: Option<&mut [Self::Input]>,
            _ctx: &BackwardCtx,
        ) {
            if let Some(dx) = dx {
                backward_rows::<K>(
                    &Self::GEOMETRY,
                    <Self::Input as Tensor>::flat(x),
                    <Self::Output as Tensor>::flat(&cache.out.dy.0),
                    <Self::Input as Tensor>::flat_mut(dx),
                );
            }
        }
    };
}

/// 1-D pooling (`K` = [`Max`] or [`Average`]) of a `(W, C)` input with window `PW`, output
/// `(OW, C)`; `OW` is checked at build time. Use the aliases [`MaxPooling1D`] and
/// [`AveragePooling1D`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pooling1D<
    K,
    const W: usize,
    const C: usize,
    const PW: usize,
    const OW: usize,
    P = Valid,
    const SW: usize = PW,
> {
    _kind: PhantomData<(K, P)>,
}

/// 2-D pooling of an `(H, W, C)` input with window `(PH, PW)`, output `(OH, OW, C)`. Use the
/// aliases [`MaxPooling2D`] and [`AveragePooling2D`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pooling2D<
    K,
    const H: usize,
    const W: usize,
    const C: usize,
    const PH: usize,
    const PW: usize,
    const OH: usize,
    const OW: usize,
    P = Valid,
    const SH: usize = PH,
    const SW: usize = PW,
> {
    _kind: PhantomData<(K, P)>,
}

/// 3-D pooling of a `(D, H, W, C)` input with window `(PD, PH, PW)`, output `(OD, OH, OW, C)`.
/// Use the aliases [`MaxPooling3D`] and [`AveragePooling3D`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pooling3D<
    K,
    const D: usize,
    const H: usize,
    const W: usize,
    const C: usize,
    const PD: usize,
    const PH: usize,
    const PW: usize,
    const OD: usize,
    const OH: usize,
    const OW: usize,
    P = Valid,
    const SD: usize = PD,
    const SH: usize = PH,
    const SW: usize = PW,
> {
    _kind: PhantomData<(K, P)>,
}

/// Keras `MaxPooling1D(PW, strides=SW, padding=P)`.
pub type MaxPooling1D<
    const W: usize,
    const C: usize,
    const PW: usize,
    const OW: usize,
    P = Valid,
    const SW: usize = PW,
> = Pooling1D<Max, W, C, PW, OW, P, SW>;
/// Keras `AveragePooling1D(PW, strides=SW, padding=P)`.
pub type AveragePooling1D<
    const W: usize,
    const C: usize,
    const PW: usize,
    const OW: usize,
    P = Valid,
    const SW: usize = PW,
> = Pooling1D<Average, W, C, PW, OW, P, SW>;
/// Keras `MaxPooling2D((PH, PW), strides=(SH, SW), padding=P)`.
pub type MaxPooling2D<
    const H: usize,
    const W: usize,
    const C: usize,
    const PH: usize,
    const PW: usize,
    const OH: usize,
    const OW: usize,
    P = Valid,
    const SH: usize = PH,
    const SW: usize = PW,
> = Pooling2D<Max, H, W, C, PH, PW, OH, OW, P, SH, SW>;
/// Keras `AveragePooling2D((PH, PW), strides=(SH, SW), padding=P)`.
pub type AveragePooling2D<
    const H: usize,
    const W: usize,
    const C: usize,
    const PH: usize,
    const PW: usize,
    const OH: usize,
    const OW: usize,
    P = Valid,
    const SH: usize = PH,
    const SW: usize = PW,
> = Pooling2D<Average, H, W, C, PH, PW, OH, OW, P, SH, SW>;
/// Keras `MaxPooling3D((PD, PH, PW), strides, padding)`.
pub type MaxPooling3D<
    const D: usize,
    const H: usize,
    const W: usize,
    const C: usize,
    const PD: usize,
    const PH: usize,
    const PW: usize,
    const OD: usize,
    const OH: usize,
    const OW: usize,
    P = Valid,
    const SD: usize = PD,
    const SH: usize = PH,
    const SW: usize = PW,
> = Pooling3D<Max, D, H, W, C, PD, PH, PW, OD, OH, OW, P, SD, SH, SW>;
/// Keras `AveragePooling3D((PD, PH, PW), strides, padding)`.
pub type AveragePooling3D<
    const D: usize,
    const H: usize,
    const W: usize,
    const C: usize,
    const PD: usize,
    const PH: usize,
    const PW: usize,
    const OD: usize,
    const OH: usize,
    const OW: usize,
    P = Valid,
    const SD: usize = PD,
    const SH: usize = PH,
    const SW: usize = PW,
> = Pooling3D<Average, D, H, W, C, PD, PH, PW, OD, OH, OW, P, SD, SH, SW>;

impl<
    K: PoolKind,
    const W: usize,
    const C: usize,
    const PW: usize,
    const OW: usize,
    P: PaddingMode,
    const SW: usize,
> Pooling1D<K, W, C, PW, OW, P, SW>
{
    /// The checked geometry (a wrong `OW` fails the build here).
    pub const GEOMETRY: ConvGeometry = checked_geometry(Declared {
        layer: K::CLASSES[0],
        input: &[W],
        kernel: &[PW],
        strides: &[SW],
        dilation: &[1],
        padding: P::PADDING,
        in_channels: C,
        filters: C,
        declared: &[OW],
        pool: true,
    });

    /// The layer (it has no options besides its type).
    pub const fn new() -> Self {
        let _ = Self::GEOMETRY;
        Pooling1D { _kind: PhantomData }
    }
}

impl<
    K: PoolKind,
    const W: usize,
    const C: usize,
    const PW: usize,
    const OW: usize,
    P: PaddingMode,
    const SW: usize,
> Layer for Pooling1D<K, W, C, PW, OW, P, SW>
{
    type Input = [[f32; C]; W];
    type Output = [[f32; C]; OW];
    pool_layer_body!(1);
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
> Pooling2D<K, H, W, C, PH, PW, OH, OW, P, SH, SW>
{
    /// The checked geometry (a wrong `OH`/`OW` fails the build here).
    pub const GEOMETRY: ConvGeometry = checked_geometry(Declared {
        layer: K::CLASSES[1],
        input: &[H, W],
        kernel: &[PH, PW],
        strides: &[SH, SW],
        dilation: &[1, 1],
        padding: P::PADDING,
        in_channels: C,
        filters: C,
        declared: &[OH, OW],
        pool: true,
    });

    /// The layer (it has no options besides its type).
    pub const fn new() -> Self {
        let _ = Self::GEOMETRY;
        Pooling2D { _kind: PhantomData }
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
> Layer for Pooling2D<K, H, W, C, PH, PW, OH, OW, P, SH, SW>
{
    type Input = [[[f32; C]; W]; H];
    type Output = [[[f32; C]; OW]; OH];
    pool_layer_body!(2);
}

impl<
    K: PoolKind,
    const D: usize,
    const H: usize,
    const W: usize,
    const C: usize,
    const PD: usize,
    const PH: usize,
    const PW: usize,
    const OD: usize,
    const OH: usize,
    const OW: usize,
    P: PaddingMode,
    const SD: usize,
    const SH: usize,
    const SW: usize,
> Pooling3D<K, D, H, W, C, PD, PH, PW, OD, OH, OW, P, SD, SH, SW>
{
    /// The checked geometry (a wrong output size fails the build here).
    pub const GEOMETRY: ConvGeometry = checked_geometry(Declared {
        layer: K::CLASSES[2],
        input: &[D, H, W],
        kernel: &[PD, PH, PW],
        strides: &[SD, SH, SW],
        dilation: &[1, 1, 1],
        padding: P::PADDING,
        in_channels: C,
        filters: C,
        declared: &[OD, OH, OW],
        pool: true,
    });

    /// The layer (it has no options besides its type).
    pub const fn new() -> Self {
        let _ = Self::GEOMETRY;
        Pooling3D { _kind: PhantomData }
    }
}

impl<
    K: PoolKind,
    const D: usize,
    const H: usize,
    const W: usize,
    const C: usize,
    const PD: usize,
    const PH: usize,
    const PW: usize,
    const OD: usize,
    const OH: usize,
    const OW: usize,
    P: PaddingMode,
    const SD: usize,
    const SH: usize,
    const SW: usize,
> Layer for Pooling3D<K, D, H, W, C, PD, PH, PW, OD, OH, OW, P, SD, SH, SW>
{
    type Input = [[[[f32; C]; W]; H]; D];
    type Output = [[[[f32; C]; OW]; OH]; OD];
    pool_layer_body!(3);
}
