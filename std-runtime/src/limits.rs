//! Size limits of models described at run time (a TOML spec, a Keras config, `--hidden`).
//!
//! [`crate::model::ModelSpec::shapes`] checks every layer against these limits with
//! `checked_mul` before anything is allocated, and names the layer that is too large, so that
//! `--hidden 100000000` is an error message rather than a multi-gigabyte allocation.
//!
//! A microcontroller holds kilobytes; these limits are far above anything it can train and
//! only stop sizes that no machine would allocate by intent.

/// Largest number of trainable parameters of a model: 2^24 (16,777,216), 64 MiB of `f32`
/// weights, 256 MiB to train with Adam (weights, gradients and two slots).
pub const MAX_PARAMS: usize = 1 << 24;

/// Largest number of values in the input or in one layer's output: 2^24 (16,777,216).
pub const MAX_VALUES: usize = 1 << 24;

/// The product of `dims`, or `None` on overflow.
pub fn product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}
