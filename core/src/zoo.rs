//! Ready-made typed models. They are ordinary library code, so every build of the core —
//! `thumbv6m-none-eabi` and `thumbv7em-none-eabihf` included — compiles them.
//!
//! # The tiny digits CNN
//! Keras:
//! ```text
//! Sequential([
//!     Input((8, 8, 1)),
//!     Conv2D(8, 3, activation="relu", kernel_regularizer=L2(1e-4)),   # → (6, 6, 8)
//!     MaxPooling2D(2),                                                 # → (3, 3, 8)
//!     Flatten(),                                                       # → 72
//!     Dense(10, activation="softmax"),
//! ])  # Adam(1e-3), batch 32
//! ```
//! 810 parameters (80 in the conv layer, 730 in the dense one).
//!
//! ```
//! use microfit_core::prelude::*;
//! use microfit_core::zoo::{self, TinyCnn};
//! let net = zoo::tiny_cnn(42)?;
//! assert_eq!(Network::<TinyCnn>::PARAMS, 810);
//! // Activations kept per sample: conv z and y (2·288), pooled (72), flattened (72),
//! // dense z (10), the gradients of the three intermediate outputs (288 + 72 + 72), plus the
//! // output and its gradient (2·10).
//! assert_eq!(
//!     Network::<TinyCnn>::ACTIVATION_FLOATS,
//!     2 * 288 + 72 + 72 + 10 + (288 + 72 + 72) + 2 * 10
//! );
//! let report = zoo::tiny_cnn_smoke_step(42)?;
//! assert!(report.total_loss.is_finite());
//! # let _ = net;
//! # Ok::<(), microfit_core::Error>(())
//! ```

use crate::activation::Activation;
use crate::error::Error;
use crate::layer::conv::Conv2D;
use crate::layer::dense::Dense;
use crate::layer::flatten::Flatten;
use crate::layer::pool::MaxPooling2D;
use crate::loss::Loss;
use crate::model::Network;
use crate::optim::Adam;
use crate::regularizer::Reg;
use crate::train::{Rows, Samples, StepReport, Targets, train_step};

/// The tiny digits CNN: 8×8×1 → Conv2D 3×3×8 relu → MaxPooling2D 2 → Flatten → Dense 10 softmax.
pub type TinyCnn = (
    Conv2D<8, 8, 1, 8, 3, 3, 6, 6>,
    MaxPooling2D<6, 6, 8, 2, 2, 3, 3>,
    Flatten<[[[f32; 8]; 3]; 3], 72>,
    Dense<72, 10>,
);

/// The layers of [`TinyCnn`] with their Keras settings (conv kernel L2(1e-4)).
pub fn tiny_cnn_layers() -> TinyCnn {
    (
        Conv2D::new(Activation::Relu).kernel_regularizer(Reg::l2(1e-4)),
        MaxPooling2D::new(),
        Flatten::new(),
        Dense::new(Activation::Softmax),
    )
}

/// A [`TinyCnn`] with Glorot-uniform weights drawn from `seed`.
///
/// # Errors
/// None today (see [`Network::new`]).
pub fn tiny_cnn(seed: u64) -> Result<Network<TinyCnn>, Error> {
    Network::new(tiny_cnn_layers(), seed)
}

/// Builds a [`TinyCnn`] and an `Adam(1e-3)` and takes one sparse-crossentropy training step on
/// two synthetic 8×8 images (a vertical and a horizontal bar, classes 1 and 7). Heap-free:
/// everything lives on the stack (16,184 B for the model and its optimizer, see
/// `tests/cnn_memory.rs`, plus the backward pass's temporaries).
///
/// # Errors
/// As [`train_step`] (none for these inputs).
pub fn tiny_cnn_smoke_step(seed: u64) -> Result<StepReport, Error> {
    let mut net = tiny_cnn(seed)?;
    let mut adam = Adam::new(1e-3, &net.params)?;
    let mut x = [[0.0f32; 64]; 2];
    for r in 0..8 {
        x[0][r * 8 + 3] = 1.0;
        x[1][3 * 8 + r] = 1.0;
    }
    let labels = [1u32, 7];
    let data = Samples::new(x.as_flattened(), 64, Targets::Classes(&labels))?;
    train_step::<crate::backend::Portable, _, _>(
        &mut net,
        &mut adam,
        Loss::SparseCategoricalCrossentropy { from_logits: false },
        &data,
        Rows::Range(0, 2),
    )
}
