//! The memory of the tiny digits CNN (`zoo::TinyCnn`: Conv2D 3×3×8 relu → MaxPooling2D 2 →
//! Flatten → Dense 10 softmax) trained with Adam, as exact byte counts, derived by hand and
//! checked against `size_of`.
//!
//! Derivation (x86-64 and 32-bit Arm alike: every field is `f32`, `u32` or an enum of them; no
//! padding appears):
//!
//! | part | count | bytes |
//! |---|---|---|
//! | weights: conv kernel 3·3·1·8 + bias 8, dense kernel 72·10 + bias 10 | 810 f32 | 3,240 |
//! | gradients (same structure) | 810 f32 | 3,240 |
//! | per-sample activations (a tile of one): conv `z` 6·6·8 and output 288, pooled 72 (max pooling stores no argmax), flattened 72, dense `z` 10 and output 10 | 740 f32 | 2,960 |
//! | the outputs' gradients in the backward pass: conv 288, pooled 72, flattened 72, dense 10 | 442 f32 | 1,768 |
//! | model RNG: none, no layer draws random numbers (`<TinyCnn as Layer>::Rng` is `NoRng`; with a dropout layer, a PCG32 state + stream: 2 u64, 16 B) | | 0 |
//! | layer configs: 2 × `DenseConfig<Reg>` (activation 8, 3 × `Option<Reg>` 12, 2 × initializer 8, `use_bias` 1, 2 × `Option<Constraint>` 16 → 93, padded to 96); pooling and flatten are zero-sized | | 192 |
//! | **`Network<TinyCnn>`** | | **11,400** |
//! | Adam slots `m`, `v` | 2·810 f32 | 6,480 |
//! | Adam config (62: lr schedule, betas, ε, weight decay, clipping, `exclude_from_weight_decay` 2 × `bool`; padded to 64) + iteration counter (4) + `1 - β` cache (2 betas' bits, 2 values: 16) | | 84 |
//! | **`Adam<Params>`** | | **6,564** |
//! | **model + optimizer** | | **17,964** |
//!
//! Each layer keeps its outputs and their gradients in its cache (the tuple's cache is its
//! members'), not on the stack of the backward pass: all of the training memory is in these
//! structs.

use core::mem::size_of;

use microfit_core::layer::conv::{Conv2D, ConvParams};
use microfit_core::layer::dense::{DenseConfig, DenseParams};
use microfit_core::optim::AdamConfig;
use microfit_core::prelude::*;
use microfit_core::tensor::Zeroed;
use microfit_core::zoo::TinyCnn;

type P = <TinyCnn as Layer>::Params;

#[test]
fn tiny_cnn_buffers_are_associated_consts() {
    type C = Conv2D<8, 8, 1, 8, 3, 3, 6, 6>;
    assert_eq!(C::PARAMS, 80);
    assert_eq!(C::CACHE_FLOATS, 288);
    assert_eq!(
        <ConvParams<[[[[f32; 8]; 1]; 3]; 3], 8> as ZeroParams>::LEN,
        80
    );
    assert_eq!(<DenseParams<72, 10> as ZeroParams>::LEN, 730);
    assert_eq!(Network::<TinyCnn>::PARAMS, 810);
    // Each layer's cache for a tile of one: conv z, y, dy 3·288; pool y, dy 2·72; flatten y, dy
    // 2·72; dense z, y, dy 3·10.
    assert_eq!(<<TinyCnn as Layer>::Cache<1> as Zeroed>::FLOATS, 740 + 442);
    assert_eq!(Network::<TinyCnn>::ACTIVATION_FLOATS, 740 + 442);
    // A tile of 32: 32 times as much.
    assert_eq!(Network::<TinyCnn, 32>::ACTIVATION_FLOATS, 32 * (740 + 442));
}

#[test]
fn tiny_cnn_with_adam_exact_bytes() {
    // The pieces.
    assert_eq!(size_of::<P>(), 810 * 4);
    assert_eq!(size_of::<<TinyCnn as Layer>::Cache<1>>(), (740 + 442) * 4);
    assert_eq!(size_of::<Rng>(), 16);
    assert_eq!(size_of::<<TinyCnn as Layer>::Rng>(), 0);
    assert_eq!(size_of::<DenseConfig<Reg>>(), 96);
    assert_eq!(size_of::<TinyCnn>(), 2 * 96);
    assert_eq!(size_of::<AdamConfig>(), 64);

    // The model: weights + gradients + activations + output and its gradient + configs (no
    // RNG: no layer draws).
    let net = size_of::<Network<TinyCnn>>();
    assert_eq!(net, 2 * 810 * 4 + (730 + 432) * 4 + 2 * 10 * 4 + 2 * 96);
    assert_eq!(net, 11_400);

    // The optimizer: two slots, its config, the iteration counter and its `1 - β` cache
    // (two betas' bits and two values, so the double-precision `keras_one_minus` runs once).
    let adam = size_of::<Adam<P>>();
    assert_eq!(adam, 2 * 810 * 4 + 64 + 4 + 16);
    assert_eq!(adam, 6_564);

    assert_eq!(net + adam, 17_964);
    println!(
        "tiny CNN: Network {net} B + Adam {adam} B = {} B",
        net + adam
    );
}
