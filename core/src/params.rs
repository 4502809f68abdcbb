//! Parameter sets: the one visitor through which optimizers, regularizers, initializers and
//! serialization reach every weight.
//!
//! A parameter set is an ordered list of flat `f32` tensors (Keras variable order: for each
//! layer its kernel, then its bias). Typed layers store them in fixed arrays; the std
//! runtime stores them in `Vec`s. Gradients and optimizer slots are parameter sets of the
//! same type, so an optimizer walks weights, gradients and slots in lock step by index.

/// An ordered list of flat `f32` tensors.
///
/// ```
/// use microfit_core::params::{Params, ZeroParams};
/// use microfit_core::layer::dense::DenseParams;
/// let mut p = DenseParams::<2, 3>::zeroed();
/// p.tensor_mut(0)[0] = 1.0; // kernel[0][0]
/// assert_eq!(p.tensor_count(), 2);
/// assert_eq!(p.len(), 9);
/// assert_eq!(p.kernel[0][0], 1.0);
/// ```
pub trait Params: Clone {
    /// How many tensors.
    fn tensor_count(&self) -> usize;
    /// Tensor `i` (`i < tensor_count()`; out-of-range indices give an empty slice).
    fn tensor(&self, i: usize) -> &[f32];
    /// Tensor `i`, mutable (out-of-range indices give an empty slice).
    fn tensor_mut(&mut self, i: usize) -> &mut [f32];
    /// Total number of scalars.
    fn len(&self) -> usize {
        (0..self.tensor_count()).map(|i| self.tensor(i).len()).sum()
    }
    /// True if there are no scalars.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sets every scalar to `v`.
    fn fill(&mut self, v: f32) {
        for i in 0..self.tensor_count() {
            self.tensor_mut(i).fill(v);
        }
    }
    /// Copies all values from `other` (same structure); extra values are ignored.
    fn copy_from(&mut self, other: &Self) {
        for i in 0..self.tensor_count() {
            let src = other.tensor(i);
            let dst = self.tensor_mut(i);
            let n = dst.len().min(src.len());
            dst[..n].copy_from_slice(&src[..n]);
        }
    }
    /// Index of the first tensor holding a NaN or infinity, if any.
    fn first_non_finite(&self) -> Option<usize> {
        (0..self.tensor_count()).find(|&i| !crate::math::all_finite_inline(self.tensor(i)))
    }
    /// The Keras variable name of tensor `i` (`kernel` or `bias`: every layer with weights
    /// holds its kernel then its bias, so even tensors are kernels). A storage that knows its
    /// names may give the full path (`dense_1/bias`). Used by
    /// [`crate::optim::ExcludeFromWeightDecay`].
    fn variable_name(&self, i: usize) -> &str {
        if i.is_multiple_of(2) {
            "kernel"
        } else {
            "bias"
        }
    }
}

/// Fixed-size parameter sets can be created zero-filled.
pub trait ZeroParams: Params {
    /// Number of scalars, known at compile time.
    const LEN: usize;
    /// All-zero parameters.
    fn zeroed() -> Self;
}

impl Params for () {
    fn tensor_count(&self) -> usize {
        0
    }
    fn tensor(&self, _i: usize) -> &[f32] {
        &[]
    }
    fn tensor_mut(&mut self, _i: usize) -> &mut [f32] {
        &mut []
    }
}

impl ZeroParams for () {
    const LEN: usize = 0;
    fn zeroed() -> Self {}
}

macro_rules! params_tuples {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: Params),+> Params for ($($name,)+) {
            fn tensor_count(&self) -> usize {
                0 $(+ self.$idx.tensor_count())+
            }
            #[allow(unused_assignments)]
            fn tensor(&self, mut i: usize) -> &[f32] {
                $(
                    let n = self.$idx.tensor_count();
                    if i < n {
                        return self.$idx.tensor(i);
                    }
                    i -= n;
                )+
                &[]
            }
            #[allow(unused_assignments)]
            fn tensor_mut(&mut self, mut i: usize) -> &mut [f32] {
                $(
                    let n = self.$idx.tensor_count();
                    if i < n {
                        return self.$idx.tensor_mut(i);
                    }
                    i -= n;
                )+
                &mut []
            }
        }
        impl<$($name: ZeroParams),+> ZeroParams for ($($name,)+) {
            const LEN: usize = 0 $(+ $name::LEN)+;
            fn zeroed() -> Self {
                ($($name::zeroed(),)+)
            }
        }
    };
}
params_tuples!(A 0);
params_tuples!(A 0, B 1);
params_tuples!(A 0, B 1, C 2);
params_tuples!(A 0, B 1, C 2, D 3);
params_tuples!(A 0, B 1, C 2, D 3, E 4);
params_tuples!(A 0, B 1, C 2, D 3, E 4, F 5);
params_tuples!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
params_tuples!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
params_tuples!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
params_tuples!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
params_tuples!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
params_tuples!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

/// FNV-1a 64-bit hash over the little-endian bytes of every scalar, in tensor order.
///
/// The host and the firmware print this to prove they ended with identical weights.
///
/// ```
/// use microfit_core::params::{weights_hash, ZeroParams};
/// use microfit_core::layer::dense::DenseParams;
/// let p = DenseParams::<1, 1>::zeroed();
/// assert_eq!(weights_hash(&p), weights_hash(&p.clone()));
/// ```
pub fn weights_hash<P: Params>(p: &P) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for i in 0..p.tensor_count() {
        h = fnv1a_f32(h, p.tensor(i));
    }
    h
}

/// The FNV-1a steps of [`weights_hash`] over one tensor. Out of line: one copy of the loop
/// instead of one per tensor of every parameter type (firmware size; it runs once).
#[inline(never)]
fn fnv1a_f32(mut h: u64, v: &[f32]) -> u64 {
    for x in v {
        h = fnv1a_bytes(h, x.to_bits().to_le_bytes());
    }
    h
}

/// Four FNV-1a steps (one `f32`), out of line so that the tensor loop is not unrolled into
/// copies of the 64-bit multiplications.
#[inline(never)]
fn fnv1a_bytes(mut h: u64, bytes: [u8; 4]) -> u64 {
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
