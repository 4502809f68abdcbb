//! The one error type of the core: small, `Copy`, no strings in it.

use core::fmt;

/// A fieldless enum of fixed messages (`as_str`, `Display`; `defmt` prints the variant's
/// name): one byte in an [`Error`] where a `&'static str` took eight on a 32-bit chip.
macro_rules! messages {
    (
        $(#[$m:meta])*
        pub enum $name:ident { $($v:ident => $text:literal,)+ }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[non_exhaustive]
        pub enum $name {
            $(#[doc = $text] $v,)+
        }

        impl $name {
            /// The message (what [`Display`](fmt::Display) writes).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

messages! {
    /// Why a hyperparameter was rejected ([`Error::InvalidHyperparameter`]).
    ///
    /// ```
    /// use microfit_core::error::Reason;
    /// assert_eq!(Reason::NonNegative.to_string(), "must be finite and >= 0");
    /// ```
    pub enum Reason {
        NonNegative => "must be finite and >= 0",
        Positive => "must be finite and > 0",
        Finite => "must be finite",
        AtLeastOne => "must be > 0",
        UnitInterval => "must be in [0, 1]",
        UnitIntervalOpenTop => "must be in [0, 1)",
        UnitIntervalOpen => "must be in (0, 1)",
        AtLeastMinValue => "must be finite and >= min_value",
        IntegerOrNone => "must be an integer >= 1 or None",
        NoSuchAxis => "names an axis the variable does not have",
        EmptyTile => "a tile holds at least one sample",
        FrozenTyped => "a typed layer is frozen with layer::frozen::Frozen, not trainable = false",
        TwoClipNorms => "only one of clipnorm and global_clipnorm can be set",
        PlainSubstrings => "var_names are matched as plain substrings: no regular expressions",
        SpatialAxes => "a convolution has 1 to 3 spatial axes",
        OnePerAxis => "needs one value per spatial axis",
        NoChannels => "the channel count must be > 0",
        EmptySpatial => "spatial sizes must be > 0",
        StridedDilation => "strides > 1 together with dilation_rate > 1 is not supported (as in Keras)",
        KernelTooLarge => "the (dilated) kernel is larger than the input",
        SizeOverflow => "size overflows usize",
    }
}

messages! {
    /// What a length was checked for ([`Error::ShapeMismatch`]).
    pub enum ShapeOf {
        Input => "input",
        Inputs => "inputs",
        Target => "target",
        Targets => "targets",
        SampleWeights => "sample weights",
        SampleIndex => "sample index",
        SampleRow => "sample row",
        WeightTensor => "weight tensor",
        WeightTensors => "weight tensors",
        WeightCount => "weight count",
        ScalerOffsets => "scaler offsets",
        ScalerMultipliers => "scaler multipliers",
        BlobBuffer => "blob buffer",
        BlobLength => "blob length",
        LayerCount => "layer count",
        InputRank => "input rank",
        InputLength => "input length",
        SpatialAxes => "spatial axes",
        LayerTensors => "tensors of a layer",
        TensorRank => "tensor rank",
    }
}

messages! {
    /// What is wrong with a serialized blob ([`Error::CorruptBlob`], [`crate::blob`]).
    pub enum BlobFault {
        Magic => "not an MFW1 blob (magic)",
        Version => "unsupported version",
        Checksum => "CRC32 mismatch",
        TruncatedHeader => "truncated header",
        TruncatedInputShape => "truncated input shape",
        TruncatedLayerRecord => "truncated layer record",
        TruncatedLayerGeometry => "truncated layer geometry",
        TruncatedTensorShape => "truncated tensor shape",
        TruncatedScaler => "truncated scaler",
        TruncatedWeights => "truncated weights",
        Task => "task is neither 0 nor 1",
        InputShapeLength => "the input shape does not hold input_len values",
        LayerKind => "unknown layer kind",
        Activation => "unknown activation",
        LayerFlags => "unknown layer flags (bits 4 to 7)",
        TooManyAxes => "more than 3 spatial axes",
        OutputLength => "the last layer's output length is not output_len",
        ScalerLength => "the scaler's length is not input_len",
        WeightCount => "the weight count disagrees with the tensor shapes",
        WeightsLength => "the weights are not as long as their count",
    }
}

/// What went wrong, without allocation.
///
/// Every fallible operation of the core returns this enum. It is `Copy` and carries only
/// numbers, a parameter's `&'static str` name and small enums of fixed messages ([`Reason`],
/// [`ShapeOf`], [`BlobFault`]): 12 bytes on a 32-bit chip, where a `Result<(), Error>` is
/// part of the training step's stack. It can be logged with `defmt` on a microcontroller or
/// turned into a rich message by the std runtime.
///
/// ```
/// use microfit_core::{Error, error::Reason, regularizer::Reg};
/// assert_eq!(Reg::try_l2(-1.0), Err(Error::InvalidHyperparameter { name: "l2", reason: Reason::NonNegative }));
/// assert_eq!(
///     Reg::try_l2(-1.0).unwrap_err().to_string(),
///     "invalid hyperparameter `l2`: must be finite and >= 0"
/// );
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
        reason: Reason,
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
        /// What was checked (the input, the targets, the sample weights, ...).
        what: ShapeOf,
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
        reason: BlobFault,
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
            reason: Reason::NonNegative,
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
            reason: Reason::Positive,
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
            reason: Reason::UnitIntervalOpenTop,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Result<(), Error>` sits in the training step's frame and its caller's: 12 bytes on a
    /// 32-bit chip (tag and a one-byte message beside a fat `&str` or two `u32`s).
    #[test]
    fn twelve_bytes_on_32_bit() {
        if cfg!(target_pointer_width = "32") {
            assert_eq!(core::mem::size_of::<Result<(), Error>>(), 12);
        } else {
            assert_eq!(core::mem::size_of::<Result<(), Error>>(), 24);
        }
    }
}
