//! Memory is a number: the training RAM of W1 (4→16 relu→3 softmax) with Adam is
//! `params × (2 + 2 slots) × 4 B + activations × 4 B + a small constant`, known at compile time.

use core::mem::size_of;
use microfit_core::optim::AdamConfig;
use microfit_core::prelude::*;

type W1 = (Dense<4, 16>, Dense<16, 3>);
type P = <W1 as Layer>::Params;

#[test]
fn w1_parameter_and_activation_counts_are_compile_time_constants() {
    // 4·16 + 16 + 16·3 + 3, by hand.
    const PARAMS: usize = Network::<W1>::PARAMS;
    assert_eq!(PARAMS, 131);
    // Per-sample activations (a tile of one): each layer's pre-activations, outputs and their
    // gradients: z0, y0, dy0 (16 each), z1, y1, dy1 (3 each).
    const ACT: usize = Network::<W1>::ACTIVATION_FLOATS;
    assert_eq!(ACT, 16 + 16 + 3 + 16 + 3 + 3);
}

#[test]
fn w1_with_adam_training_ram_is_params_times_four_slots_plus_activations_plus_constant() {
    let weights_grads_slots = 131 * 4 * 4; // weights, gradients, Adam m and v
    assert_eq!(weights_grads_slots, 2096);
    let activations = 57 * 4;
    // The constant: layer configurations (activations, regularizers, initializers), Adam's
    // hyperparameters, its step counter and its cached `1 - β` (the betas' bits and the two
    // values), the loss. No generator: no layer of W1 draws random numbers.
    assert_eq!(size_of::<<W1 as Layer>::Rng>(), 0);
    let constant = size_of::<W1>()
        + size_of::<AdamConfig>()
        + size_of::<u32>()
        + 4 * size_of::<u32>()
        + size_of::<Loss>();
    let trainer = size_of::<Trainer<Network<W1>, Adam<P>>>();
    // Alignment padding may add at most a few bytes per struct.
    assert!(
        trainer >= weights_grads_slots + activations + constant
            && trainer <= weights_grads_slots + activations + constant + 16,
        "trainer {trainer} B vs {weights_grads_slots} + {activations} + {constant}"
    );
    assert!(constant <= 320, "the constant part is small: {constant} B");
    // SGD without momentum has no slot: two copies of the parameters only.
    let sgd = size_of::<Trainer<Network<W1>, Sgd>>();
    assert!(
        sgd < weights_grads_slots / 2 + activations + constant + 16,
        "sgd trainer {sgd} B"
    );
}
