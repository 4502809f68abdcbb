//! # microfit-core
//!
//! Keras-style training with regularizers for fixed-size networks: `no_std`, no `alloc`,
//! no `unsafe`. Shapes are const generics, so a network's parameter count, its optimizer
//! state and its activation buffers are compile-time constants; the same code trains on a
//! laptop and on a Cortex-M0 and gives the same bits.
//!
//! ## A tour
//! * [`tensor`]: fixed-size tensors (`[f32; N]`, nested arrays) seen as flat slices.
//! * [`layer`]: the [`Layer`] trait, [`Dense`](layer::dense::Dense), `Conv1D/2D/3D`
//!   ([`layer::conv`]), pooling ([`layer::pool`]), [`Flatten`](layer::flatten::Flatten),
//!   [`Dropout`](layer::dropout::Dropout), the noise layers and `ActivityRegularization`
//!   ([`layer::noise`]), frozen layers ([`layer::frozen`]), and tuples of layers as models.
//! * [`constraint`]: Keras' weight constraints, applied after each optimizer update.
//! * [`zoo`]: ready-made typed models (the tiny digits CNN).
//! * [`kernels`]: the numeric kernels, written once, shared with models built at run time.
//! * [`activation`], [`loss`], [`regularizer`], [`init`]: Keras' building blocks, Keras' math.
//! * [`optim`]: SGD (momentum, Nesterov), Adam, AdamW, clipping, learning-rate schedules,
//!   `exclude_from_weight_decay`, the moving average of the weights ([`optim::Ema`]).
//! * [`model`]: [`Network`], a typed model with its weights, gradients and buffers.
//! * [`train`]: the training step (with its panic contract), epochs, evaluation, reports.
//! * [`predict`]: [`predict::Predictor`], inference with the weights left in flash (only the
//!   activations in RAM).
//! * [`blob`]: `MFW1`, a trained model's weights as bytes (checked: magic, version, lengths,
//!   CRC), read into a typed network's parameters.
//!
//! ## Example: W1 (iris 4 → 16 relu → 3 softmax, kernel L2, Adam)
//! ```
//! use microfit_core::prelude::*;
//!
//! type W1 = (Dense<4, 16>, Dense<16, 3>);
//! let net: Network<W1> = Network::new(
//!     (
//!         Dense::new(Activation::Relu).kernel_regularizer(Reg::l2(1e-3)),
//!         Dense::new(Activation::Softmax).kernel_regularizer(Reg::l2(1e-3)),
//!     ),
//!     42,
//! )?;
//! let adam = Adam::new(0.01, &net.params)?;
//! let mut trainer = Trainer::new(net, adam, Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 });
//!
//! let x = [[5.1f32, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]];
//! let y = [0u32, 1, 2];
//! let data = Samples::new(x.as_flattened(), 4, Targets::Classes(&y))?;
//! for _ in 0..5 {
//!     let epoch = trainer.fit_epoch(&data, 2, None)?;
//!     // Keras reports data loss + penalties:
//!     assert!((epoch.loss - (epoch.data_loss + epoch.penalties.total())).abs() < 1e-6);
//! }
//! // Memory is a number:
//! assert_eq!(Network::<W1>::PARAMS, 131);
//! # Ok::<(), microfit_core::Error>(())
//! ```
//!
//! ## Keras ↔ microfit
//! | Keras | microfit-core |
//! |---|---|
//! | `Dense(16, activation="relu")` | `Dense::<IN, 16>::new(Activation::Relu)` |
//! | `kernel_regularizer=L2(1e-3)` | `.kernel_regularizer(Reg::l2(1e-3))` |
//! | `bias_regularizer=L1(0.01)` | `.bias_regularizer(Reg::l1(0.01))` |
//! | `activity_regularizer=L1L2(l1, l2)` | `.activity_regularizer(Reg::l1l2(l1, l2))` |
//! | `OrthogonalRegularizer(f, mode)` | `Reg::try_orthogonal(f, OrthoMode::Rows)` |
//! | `Sequential([...])` | a tuple `(L0, L1, …)` inside [`Network`] |
//! | `SGD(lr, momentum, nesterov)` | [`optim::Sgd`] / [`optim::Momentum`] |
//! | `Adam(lr)`, `AdamW(lr, wd)` | [`optim::Adam::new`], [`optim::Adam::adamw`] |
//! | `kernel_constraint=MaxNorm(…)` | `.kernel_constraint(`[`constraint::Constraint`]`)` |
//! | `label_smoothing=0.1` | `Loss::CategoricalCrossentropy { label_smoothing: 0.1, .. }` |
//! | `GaussianNoise`, `SpatialDropout2D`, … | [`layer::noise`] |
//! | `layer.trainable = False` | [`layer::frozen::Frozen`] |
//! | `use_ema=True` | [`optim::Ema`] |
//! | `sample_weight=w` | [`train::Samples::with_sample_weights`] |
//! | `model.fit(x, y, batch_size, shuffle=False)` | [`Trainer::fit_epoch`] |
//! | `model.evaluate` | [`Trainer::evaluate`] |
//! | `history['loss']` | [`train::EpochReport::loss`] |
//!
//! ## Features
//! * `fast-math`: `exp`/`ln`/`tanh` from `micromath` (faster, approximate; see [`math`]).
//! * `defmt`: `defmt::Format` for errors and reports.
//! * `serde`: `Serialize`/`Deserialize` for configurations.
//!
//! MSRV: Rust 1.88 (edition 2024; `slice::as_chunks` in the kernels).

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod activation;
pub mod backend;
pub mod blob;
pub mod constraint;
pub mod error;
pub mod init;
pub mod kernels;
pub mod layer;
pub mod loss;
pub mod math;
pub mod model;
pub mod optim;
pub mod params;
pub mod predict;
pub mod regularizer;
pub mod rng;
pub mod tensor;
pub mod train;
pub mod zoo;

/// The README's Rust example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use activation::Activation;
pub use error::Error;
pub use layer::Layer;
pub use loss::Loss;
pub use model::Network;
pub use train::Trainer;

/// Everything needed to define and train a model.
pub mod prelude {
    pub use crate::activation::Activation;
    pub use crate::backend::{Backend, Portable};
    pub use crate::constraint::{Axes, Constraint};
    pub use crate::error::Error;
    pub use crate::init::Initializer;
    pub use crate::layer::Layer;
    pub use crate::layer::conv::{
        Conv1D, Conv2D, Conv3D, ConvGeometry, Padding, Same, Valid, conv_out,
    };
    pub use crate::layer::dense::Dense;
    pub use crate::layer::dropout::Dropout;
    pub use crate::layer::flatten::Flatten;
    pub use crate::layer::pool::{
        AveragePooling1D, AveragePooling2D, AveragePooling3D, MaxPooling1D, MaxPooling2D,
        MaxPooling3D,
    };
    pub use crate::loss::{Loss, Target};
    pub use crate::model::Network;
    pub use crate::optim::{Adam, Momentum, Optimizer, Sgd};
    pub use crate::params::{Params, ZeroParams};
    pub use crate::regularizer::{OrthoMode, Reg, Regularizer};
    pub use crate::rng::Rng;
    pub use crate::train::{Rows, Samples, Targets, Trainable, Trainer};
}
