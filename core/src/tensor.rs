//! Fixed-size tensors: plain nested `f32` arrays whose shapes are const generics.
//!
//! A layer's input and output *types* are these arrays (`[f32; N]` for Dense,
//! `[[[f32; C]; W]; H]` for a 2-D feature map), so composing two layers whose shapes do not
//! agree is a type error. Kernels see them as flat row-major slices through [`Tensor`].

/// A fixed-size, row-major `f32` tensor.
///
/// ```
/// use microfit_core::tensor::Tensor;
/// let mut t = <[[f32; 3]; 2] as Tensor>::zeroed();
/// Tensor::as_mut_slice(&mut t)[4] = 1.0;
/// assert_eq!(t[1][1], 1.0f32);
/// assert_eq!(<[[f32; 3]; 2] as Tensor>::LEN, 6);
/// ```
pub trait Tensor: Sized + Clone + core::fmt::Debug {
    /// Number of `f32` elements.
    const LEN: usize;
    /// A tensor of zeros.
    fn zeroed() -> Self;
    /// The elements in row-major order.
    fn as_slice(&self) -> &[f32];
    /// The elements in row-major order, mutable.
    fn as_mut_slice(&mut self) -> &mut [f32];
    /// The whole rows of `Self` held by a flat row-major slice (a trailing partial row is not
    /// included).
    fn rows(flat: &[f32]) -> &[Self];
    /// [`Tensor::rows`], mutable.
    fn rows_mut(flat: &mut [f32]) -> &mut [Self];
    /// Rows of `Self` seen as one flat row-major slice.
    fn flat(rows: &[Self]) -> &[f32];
    /// [`Tensor::flat`], mutable.
    fn flat_mut(rows: &mut [Self]) -> &mut [f32];
}

impl<const N: usize> Tensor for [f32; N] {
    const LEN: usize = N;
    #[inline]
    fn zeroed() -> Self {
        [0.0; N]
    }
    #[inline]
    fn as_slice(&self) -> &[f32] {
        self
    }
    #[inline]
    fn as_mut_slice(&mut self) -> &mut [f32] {
        self
    }
    #[inline]
    fn rows(flat: &[f32]) -> &[Self] {
        flat.as_chunks::<N>().0
    }
    #[inline]
    fn rows_mut(flat: &mut [f32]) -> &mut [Self] {
        flat.as_chunks_mut::<N>().0
    }
    #[inline]
    fn flat(rows: &[Self]) -> &[f32] {
        rows.as_flattened()
    }
    #[inline]
    fn flat_mut(rows: &mut [Self]) -> &mut [f32] {
        rows.as_flattened_mut()
    }
}

impl<const A: usize, const B: usize> Tensor for [[f32; B]; A] {
    const LEN: usize = A * B;
    #[inline]
    fn zeroed() -> Self {
        [[0.0; B]; A]
    }
    #[inline]
    fn as_slice(&self) -> &[f32] {
        self.as_flattened()
    }
    #[inline]
    fn as_mut_slice(&mut self) -> &mut [f32] {
        self.as_flattened_mut()
    }
    #[inline]
    fn rows(flat: &[f32]) -> &[Self] {
        flat.as_chunks::<B>().0.as_chunks::<A>().0
    }
    #[inline]
    fn rows_mut(flat: &mut [f32]) -> &mut [Self] {
        flat.as_chunks_mut::<B>().0.as_chunks_mut::<A>().0
    }
    #[inline]
    fn flat(rows: &[Self]) -> &[f32] {
        rows.as_flattened().as_flattened()
    }
    #[inline]
    fn flat_mut(rows: &mut [Self]) -> &mut [f32] {
        rows.as_flattened_mut().as_flattened_mut()
    }
}

impl<const A: usize, const B: usize, const C: usize> Tensor for [[[f32; C]; B]; A] {
    const LEN: usize = A * B * C;
    #[inline]
    fn zeroed() -> Self {
        [[[0.0; C]; B]; A]
    }
    #[inline]
    fn as_slice(&self) -> &[f32] {
        self.as_flattened().as_flattened()
    }
    #[inline]
    fn as_mut_slice(&mut self) -> &mut [f32] {
        self.as_flattened_mut().as_flattened_mut()
    }
    #[inline]
    fn rows(flat: &[f32]) -> &[Self] {
        flat.as_chunks::<C>()
            .0
            .as_chunks::<B>()
            .0
            .as_chunks::<A>()
            .0
    }
    #[inline]
    fn rows_mut(flat: &mut [f32]) -> &mut [Self] {
        flat.as_chunks_mut::<C>()
            .0
            .as_chunks_mut::<B>()
            .0
            .as_chunks_mut::<A>()
            .0
    }
    #[inline]
    fn flat(rows: &[Self]) -> &[f32] {
        rows.as_flattened().as_flattened().as_flattened()
    }
    #[inline]
    fn flat_mut(rows: &mut [Self]) -> &mut [f32] {
        rows.as_flattened_mut()
            .as_flattened_mut()
            .as_flattened_mut()
    }
}

impl<const A: usize, const B: usize, const C: usize, const D: usize> Tensor
    for [[[[f32; D]; C]; B]; A]
{
    const LEN: usize = A * B * C * D;
    #[inline]
    fn zeroed() -> Self {
        [[[[0.0; D]; C]; B]; A]
    }
    #[inline]
    fn as_slice(&self) -> &[f32] {
        self.as_flattened().as_flattened().as_flattened()
    }
    #[inline]
    fn as_mut_slice(&mut self) -> &mut [f32] {
        self.as_flattened_mut()
            .as_flattened_mut()
            .as_flattened_mut()
    }
    #[inline]
    fn rows(flat: &[f32]) -> &[Self] {
        flat.as_chunks::<D>()
            .0
            .as_chunks::<C>()
            .0
            .as_chunks::<B>()
            .0
            .as_chunks::<A>()
            .0
    }
    #[inline]
    fn rows_mut(flat: &mut [f32]) -> &mut [Self] {
        flat.as_chunks_mut::<D>()
            .0
            .as_chunks_mut::<C>()
            .0
            .as_chunks_mut::<B>()
            .0
            .as_chunks_mut::<A>()
            .0
    }
    #[inline]
    fn flat(rows: &[Self]) -> &[f32] {
        rows.as_flattened()
            .as_flattened()
            .as_flattened()
            .as_flattened()
    }
    #[inline]
    fn flat_mut(rows: &mut [Self]) -> &mut [f32] {
        rows.as_flattened_mut()
            .as_flattened_mut()
            .as_flattened_mut()
            .as_flattened_mut()
    }
}

/// Storage that can be created zero-filled (per-sample caches of layers and tuples of them).
///
/// ```
/// use microfit_core::tensor::Zeroed;
/// let c: ([f32; 2], ()) = Zeroed::zeroed();
/// assert_eq!(c.0, [0.0; 2]);
/// ```
pub trait Zeroed: Sized {
    /// Number of `f32` values held (for the memory budget).
    const FLOATS: usize;
    /// Zero-filled storage.
    fn zeroed() -> Self;
}

impl Zeroed for () {
    const FLOATS: usize = 0;
    fn zeroed() -> Self {}
}

impl<T: Tensor> Zeroed for T {
    const FLOATS: usize = T::LEN;
    fn zeroed() -> Self {
        <T as Tensor>::zeroed()
    }
}

macro_rules! zeroed_tuples {
    ($($name:ident),+) => {
        impl<$($name: Zeroed),+> Zeroed for ($($name,)+) {
            const FLOATS: usize = 0 $(+ $name::FLOATS)+;
            fn zeroed() -> Self {
                ($($name::zeroed(),)+)
            }
        }
    };
}
zeroed_tuples!(A);
zeroed_tuples!(A, B);
zeroed_tuples!(A, B, C);
zeroed_tuples!(A, B, C, D);
zeroed_tuples!(A, B, C, D, E);
zeroed_tuples!(A, B, C, D, E, F);
zeroed_tuples!(A, B, C, D, E, F, G);
zeroed_tuples!(A, B, C, D, E, F, G, H);
zeroed_tuples!(A, B, C, D, E, F, G, H, I);
zeroed_tuples!(A, B, C, D, E, F, G, H, I, J);
zeroed_tuples!(A, B, C, D, E, F, G, H, I, J, K);
zeroed_tuples!(A, B, C, D, E, F, G, H, I, J, K, L);

/// `T` rows of a tensor `X`: a layer's values (or gradients) for a tile of `T` samples, one
/// after the other in memory (`[X; T]`). A typed network of tile `T` keeps, for each layer,
/// its outputs and their gradients as `Tile`s; a microcontroller uses `T = 1`.
///
/// ```
/// use microfit_core::tensor::{Tile, Zeroed};
/// let t: Tile<[f32; 3], 2> = Zeroed::zeroed();
/// assert_eq!(t.flat().len(), 6);
/// assert_eq!(<Tile<[f32; 3], 2> as Zeroed>::FLOATS, 6);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Tile<X, const T: usize>(pub [X; T]);

impl<X: Tensor, const T: usize> Tile<X, T> {
    /// The rows.
    #[inline]
    pub fn rows(&self) -> &[X] {
        &self.0
    }
    /// The rows, mutable.
    #[inline]
    pub fn rows_mut(&mut self) -> &mut [X] {
        &mut self.0
    }
    /// All rows as one flat slice.
    #[inline]
    pub fn flat(&self) -> &[f32] {
        X::flat(&self.0)
    }
    /// All rows as one flat slice, mutable.
    #[inline]
    pub fn flat_mut(&mut self) -> &mut [f32] {
        X::flat_mut(&mut self.0)
    }
}

impl<X: Tensor, const T: usize> Zeroed for Tile<X, T> {
    const FLOATS: usize = T * X::LEN;
    #[inline]
    fn zeroed() -> Self {
        Tile(core::array::from_fn(|_| X::zeroed()))
    }
}
