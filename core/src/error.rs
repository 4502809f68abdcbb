//! The one error type of the core: small, `Copy`, no strings.

use core::fmt;

/// What went wrong, without allocation.
///
/// Every fallible operation of the core returns this enum. It is `Copy` and carries only
/// `&'static str` context, so it can be logged with `defmt` on a microcontroller or turned
/// into a rich message by the std runtime.
///
/// ```
/// use microfit_core::{Error, regularizer::Reg};
/// assert_eq!(Reg::try_l2(-1.0), Err(Error::InvalidHyperparameter { name: "l2", reason: "must be finite and >= 0" }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// A hyperparameter is outside its valid range (rejected at construction).
    InvalidHyperparameter {
        /// The Keras name of the parameter (`"learning_rate"`, `"beta_1"`, `"l2"`, ...).
        name: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The loss of a training step was NaN or infinite; the weights were left unchanged.
    NonFiniteLoss,
    /// A gradient of a training step was NaN or infinite; the weights were left unchanged.
    NonFiniteGradient {
        /// Index of the parameter tensor (in visiting order) holding the first bad value.
        tensor: u16,
    },
    /// An input or target of the batch holds a NaN or infinity (checked before any work).
    NonFiniteInput {
        /// Index of the sample within the batch.
        sample: u32,
    },
    /// An input or target slice does not have the length the model expects.
    ShapeMismatch {
        /// What was checked (`"input"`, `"target"`, `"labels"`, `"weights"`, ...).
        what: &'static str,
        /// The length the model needs.
        expected: u32,
        /// The length that was given.
        found: u32,
    },
    /// A class label is `>=` the number of outputs.
    LabelOutOfRange {
        /// The label.
        label: u32,
        /// The number of classes (model outputs).
        classes: u32,
    },
    /// A batch with no samples was given to a training step.
    EmptyBatch,
    /// The loss and the model's output do not go together (e.g. sparse labels with a
    /// regression loss).
    IncompatibleLoss {
        /// What is wrong.
        reason: &'static str,
    },
    /// A serialized blob was malformed (bad magic, version, length or checksum): see
    /// [`crate::blob`].
    CorruptBlob {
        /// Byte offset of the problem.
        offset: u32,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::InvalidHyperparameter { name, reason } => {
                write!(f, "invalid hyperparameter `{name}`: {reason}")
            }
            Error::NonFiniteLoss => {
                f.write_str("the loss is NaN or infinite; weights left as before the step")
            }
            Error::NonFiniteGradient { tensor } => write!(
                f,
                "gradient of parameter tensor {tensor} is NaN or infinite; weights left as before the step"
            ),
            Error::NonFiniteInput { sample } => {
                write!(
                    f,
                    "sample {sample} of the batch holds a NaN or infinite value"
                )
            }
            Error::ShapeMismatch {
                what,
                expected,
                found,
            } => write!(f, "{what} has length {found}, the model expects {expected}"),
            Error::LabelOutOfRange { label, classes } => {
                write!(f, "label {label} is out of range for {classes} classes")
            }
            Error::EmptyBatch => f.write_str("empty batch"),
            Error::IncompatibleLoss { reason } => write!(f, "incompatible loss: {reason}"),
            Error::CorruptBlob { offset, reason } => {
                write!(f, "corrupt weight blob at byte {offset}: {reason}")
            }
        }
    }
}

impl core::error::Error for Error {}

/// Validates a hyperparameter that must be finite and `>= 0`.
pub(crate) fn check_non_negative(name: &'static str, v: f32) -> Result<f32, Error> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            reason: "must be finite and >= 0",
        })
    }
}

/// Validates a hyperparameter that must be finite and `> 0`.
pub(crate) fn check_positive(name: &'static str, v: f32) -> Result<f32, Error> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            reason: "must be finite and > 0",
        })
    }
}

/// Validates a hyperparameter in `[0, 1)`.
pub(crate) fn check_unit_interval(name: &'static str, v: f32) -> Result<f32, Error> {
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            reason: "must be in [0, 1)",
        })
    }
}
