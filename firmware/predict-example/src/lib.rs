//! A separate `no_std` crate that predicts with a trained model: it links `microfit-core` and a
//! model module — generated here by `build.rs` from a workload file with `microfit-workload`
//! (the firmware's generator) — and calls the core's forward pass with the weights left where
//! they are: a `static` in flash, read through a reference. Only the activations take RAM
//! ([`ACTIVATION_BYTES`]).
//!
//! ```
//! // Iris (z-scored features): the bundled W1's initial weights, so any class may come out;
//! // the output is a probability distribution either way.
//! let (class, p) = microfit_predict_example::classify(&[-0.9, 1.0, -1.3, -1.3]);
//! assert!(class < 3);
//! assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
//! ```
//!
//! On a microcontroller (no std, no allocator, no `unsafe`):
//! `cargo build -p microfit-predict-example --target thumbv6m-none-eabi`.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The generated model module: `Layers`, `Params`, `WEIGHTS` (a `static`), `predictor()`.
#[allow(missing_docs, clippy::all)]
pub mod model {
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}

use microfit_core::predict::Predictor;

/// Bytes of RAM a prediction uses: the activations of one sample (the weights stay in flash).
pub const ACTIVATION_BYTES: usize = 4 * Predictor::<model::Layers>::ACTIVATION_FLOATS;

/// The class of one sample and the model's outputs (class probabilities).
pub fn classify(x: &[f32; model::INPUTS]) -> (usize, [f32; model::OUTPUTS]) {
    let mut p = model::predictor();
    let (class, y) = p.classify(x);
    (class, *y)
}
