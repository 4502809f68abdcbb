//! `Layer` for tuples of 2 to 10 layers, written once in [`tuple_layer!`] (dfdx's
//! `tuple_impls!` pattern: one macro, every arity, every method).
//!
//! A tuple `(L0, …, Ln)` is a layer whose input is `L0`'s and whose output is `Ln`'s; each
//! member's input type must be the previous member's output type (a shape mismatch is a type
//! error). Its cache is its members' caches, `(L0::Cache<T>, …, Ln::Cache<T>)`: member `i`
//! reads its input from member `i − 1`'s outputs and writes its input gradient into member
//! `i − 1`'s output gradients, so every intermediate activation and its gradient is kept once,
//! in the model, and the memory is a compile-time number. Its generator slot
//! ([`Layer::Rng`]) is its members' joined ([`RngSlot::Join`]): a generator when one of them
//! draws, nothing otherwise.

use super::{BackwardCtx, ForwardCtx, Layer, LayerInfo, LossIo, Penalties};
use crate::activation::Activation;
use crate::backend::Backend;
use crate::params::Params;
use crate::regularizer::SumSqs;
use crate::rng::{Rng, RngSlot};

/// The index of the first leaf layer of member `i`, from the members' leaf counts.
#[inline(always)]
const fn offset(layers: &[usize], i: usize) -> usize {
    let mut s = 0;
    let mut k = 0;
    while k < i && k < layers.len() {
        s += layers[k];
        k += 1;
    }
    s
}

/// Whether members `0..=i` are all frozen ([`Layer::FROZEN`]).
#[inline(always)]
const fn frozen_prefix(frozen: &[bool], i: usize) -> bool {
    let mut k = 0;
    while k <= i && k < frozen.len() {
        if !frozen[k] {
            return false;
        }
        k += 1;
    }
    true
}

/// The generator slot of members with the slots `$R, …` ([`RngSlot::Join`], from the last).
macro_rules! rng_join {
    ($R:ty) => { $R };
    ($R:ty, $($rest:ty),+) => { <$R as RngSlot>::Join<rng_join!($($rest),+)> };
}

/// `Layer` for the tuple of the listed members: `[L0 0, …]` the members and their indices,
/// `first`/`last` the first and last, `pairs` each member with the next, `rev` the same pairs
/// from the last.
macro_rules! tuple_layer {
    (
        [$($L:ident $i:tt),+]
        first $F:ident $f:tt,
        last $Z:ident $z:tt,
        pairs [$(($P:ident $p:tt, $N:ident $n:tt)),+],
        rev [$(($RP:ident $rp:tt, $RN:ident $rn:tt)),+]
    ) => {
        impl<$($L: Layer),+> Layer for ($($L,)+)
        where
            $($N: Layer<Input = $P::Output>,)+
        {
            type Input = $F::Input;
            type Output = $Z::Output;
            type Params = ($($L::Params,)+);
            type Cache<const T: usize> = ($($L::Cache<T>,)+);
            type Rng = rng_join!($($L::Rng),+);
            const LAYERS: usize = 0 $(+ $L::LAYERS)+;
            const FROZEN: bool = true $(&& $L::FROZEN)+;

            fn init(&self, p: &mut Self::Params, rng: &mut Rng) {
                $(self.$i.init(&mut p.$i, rng);)+
            }

            #[inline]
            fn forward<B: Backend, const T: usize>(
                &self,
                p: &Self::Params,
                x: &[Self::Input],
                cache: &mut Self::Cache<T>,
                ctx: &mut ForwardCtx<'_>,
            ) {
                let layers = [$($L::LAYERS),+];
                let base = ctx.layer;
                let n = x.len().min(T);
                self.$f.forward::<B, T>(&p.$f, x, &mut cache.$f, ctx);
                $(
                    ctx.layer = base + offset(&layers, $n);
                    self.$n.forward::<B, T>(
                        &p.$n,
                        &<$P as Layer>::output_rows::<T>(&cache.$p)[..n],
                        &mut cache.$n,
                        ctx,
                    );
                )+
                ctx.layer = base;
            }

            #[inline]
            fn backward<B: Backend, const T: usize>(
                &self,
                p: &Self::Params,
                g: &mut Self::Params,
                x: &[Self::Input],
                cache: &mut Self::Cache<T>,
                dx: Option<&mut [Self::Input]>,
                ctx: &BackwardCtx,
            ) {
                let layers = [$($L::LAYERS),+];
                let frozen = [$($L::FROZEN),+];
                let n = x.len().min(T);
                // No input gradient wanted and members `0..=i` all frozen: nothing before
                // member `i + 1` trains, so members `0..=i` need no backward pass.
                let top = dx.is_none();
                $(
                    if !(top && frozen_prefix(&frozen, $rn)) {
                        let c = BackwardCtx {
                            layer: ctx.layer + offset(&layers, $rn),
                            step_input: false,
                            dy_is_pre: ctx.dy_is_pre && $rn == $z,
                            input_relu: self.$rp.output_activation() == Activation::Relu,
                            ..*ctx
                        };
                        let (xin, dxin) = <$RP as Layer>::outputs::<T>(&mut cache.$rp);
                        self.$rn.backward::<B, T>(
                            &p.$rn,
                            &mut g.$rn,
                            &xin[..n],
                            &mut cache.$rn,
                            Some(&mut dxin[..n]),
                            &c,
                        );
                    }
                )+
                let c = BackwardCtx {
                    dy_is_pre: false,
                    ..*ctx
                };
                self.$f.backward::<B, T>(&p.$f, &mut g.$f, x, &mut cache.$f, dx, &c);
            }

            #[inline]
            fn outputs<const T: usize>(
                cache: &mut Self::Cache<T>,
            ) -> (&[Self::Output], &mut [Self::Output]) {
                <$Z as Layer>::outputs::<T>(&mut cache.$z)
            }

            #[inline]
            fn output_rows<const T: usize>(cache: &Self::Cache<T>) -> &[Self::Output] {
                <$Z as Layer>::output_rows::<T>(&cache.$z)
            }

            #[inline]
            fn loss_io<'c, const T: usize>(&self, cache: &'c mut Self::Cache<T>) -> LossIo<'c> {
                self.$z.loss_io::<T>(&mut cache.$z)
            }

            fn weight_penalties<B: Backend>(
                &self,
                p: &Self::Params,
                g: Option<&mut Self::Params>,
                layer: usize,
                pen: &mut Penalties,
            ) {
                let layers = [$($L::LAYERS),+];
                match g {
                    Some(g) => {
                        $(self.$i.weight_penalties::<B>(
                            &p.$i,
                            Some(&mut g.$i),
                            layer + offset(&layers, $i),
                            pen,
                        );)+
                    }
                    None => {
                        $(self.$i.weight_penalties::<B>(
                            &p.$i,
                            None,
                            layer + offset(&layers, $i),
                            pen,
                        );)+
                    }
                }
            }

            fn weight_penalties_sq<B: Backend>(
                &self,
                p: &Self::Params,
                g: &mut Self::Params,
                layer: usize,
                first: usize,
                pen: &mut Penalties,
                sq: &mut SumSqs,
            ) {
                let layers = [$($L::LAYERS),+];
                let tensors = [$(p.$i.tensor_count()),+];
                $(self.$i.weight_penalties_sq::<B>(
                    &p.$i,
                    &mut g.$i,
                    layer + offset(&layers, $i),
                    first + offset(&tensors, $i),
                    pen,
                    sq,
                );)+
            }

            fn output_activation(&self) -> Activation {
                self.$z.output_activation()
            }

            fn describe(&self, first: usize, f: &mut dyn FnMut(usize, LayerInfo)) {
                let layers = [$($L::LAYERS),+];
                $(self.$i.describe(first + offset(&layers, $i), f);)+
            }

            fn has_activity_regularizer(&self) -> bool {
                false $(|| self.$i.has_activity_regularizer())+
            }

            #[inline]
            fn apply_constraints(&self, p: &mut Self::Params) {
                $(self.$i.apply_constraints(&mut p.$i);)+
            }

            fn validate(&self) -> Result<(), crate::error::Error> {
                $(self.$i.validate()?;)+
                Ok(())
            }
        }
    };
}

tuple_layer!([L0 0, L1 1] first L0 0, last L1 1, pairs [(L0 0, L1 1)], rev [(L0 0, L1 1)]);
tuple_layer!([L0 0, L1 1, L2 2] first L0 0, last L2 2, pairs [(L0 0, L1 1), (L1 1, L2 2)], rev [(L1 1, L2 2), (L0 0, L1 1)]);
tuple_layer!([L0 0, L1 1, L2 2, L3 3] first L0 0, last L3 3, pairs [(L0 0, L1 1), (L1 1, L2 2), (L2 2, L3 3)], rev [(L2 2, L3 3), (L1 1, L2 2), (L0 0, L1 1)]);
tuple_layer!([L0 0, L1 1, L2 2, L3 3, L4 4] first L0 0, last L4 4, pairs [(L0 0, L1 1), (L1 1, L2 2), (L2 2, L3 3), (L3 3, L4 4)], rev [(L3 3, L4 4), (L2 2, L3 3), (L1 1, L2 2), (L0 0, L1 1)]);
tuple_layer!([L0 0, L1 1, L2 2, L3 3, L4 4, L5 5] first L0 0, last L5 5, pairs [(L0 0, L1 1), (L1 1, L2 2), (L2 2, L3 3), (L3 3, L4 4), (L4 4, L5 5)], rev [(L4 4, L5 5), (L3 3, L4 4), (L2 2, L3 3), (L1 1, L2 2), (L0 0, L1 1)]);
tuple_layer!([L0 0, L1 1, L2 2, L3 3, L4 4, L5 5, L6 6] first L0 0, last L6 6, pairs [(L0 0, L1 1), (L1 1, L2 2), (L2 2, L3 3), (L3 3, L4 4), (L4 4, L5 5), (L5 5, L6 6)], rev [(L5 5, L6 6), (L4 4, L5 5), (L3 3, L4 4), (L2 2, L3 3), (L1 1, L2 2), (L0 0, L1 1)]);
tuple_layer!([L0 0, L1 1, L2 2, L3 3, L4 4, L5 5, L6 6, L7 7] first L0 0, last L7 7, pairs [(L0 0, L1 1), (L1 1, L2 2), (L2 2, L3 3), (L3 3, L4 4), (L4 4, L5 5), (L5 5, L6 6), (L6 6, L7 7)], rev [(L6 6, L7 7), (L5 5, L6 6), (L4 4, L5 5), (L3 3, L4 4), (L2 2, L3 3), (L1 1, L2 2), (L0 0, L1 1)]);
tuple_layer!([L0 0, L1 1, L2 2, L3 3, L4 4, L5 5, L6 6, L7 7, L8 8] first L0 0, last L8 8, pairs [(L0 0, L1 1), (L1 1, L2 2), (L2 2, L3 3), (L3 3, L4 4), (L4 4, L5 5), (L5 5, L6 6), (L6 6, L7 7), (L7 7, L8 8)], rev [(L7 7, L8 8), (L6 6, L7 7), (L5 5, L6 6), (L4 4, L5 5), (L3 3, L4 4), (L2 2, L3 3), (L1 1, L2 2), (L0 0, L1 1)]);
tuple_layer!([L0 0, L1 1, L2 2, L3 3, L4 4, L5 5, L6 6, L7 7, L8 8, L9 9] first L0 0, last L9 9, pairs [(L0 0, L1 1), (L1 1, L2 2), (L2 2, L3 3), (L3 3, L4 4), (L4 4, L5 5), (L5 5, L6 6), (L6 6, L7 7), (L7 7, L8 8), (L8 8, L9 9)], rev [(L8 8, L9 9), (L7 7, L8 8), (L6 6, L7 7), (L5 5, L6 6), (L4 4, L5 5), (L3 3, L4 4), (L2 2, L3 3), (L1 1, L2 2), (L0 0, L1 1)]);
