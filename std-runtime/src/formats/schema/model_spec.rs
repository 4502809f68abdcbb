//! [`ModelSpec`]: a model's input shape and layers, and the one validation of the schema's
//! models ([`ModelSpec::shapes`]): every error names the field (`layers[1].kernel_regularizer.l2`).

use std::fmt;

use microfit_core::layer::dense::DenseConfig;
use microfit_core::regularizer::Reg;
use serde::{Deserialize, Serialize};

use super::layer::{LayerSpec, NoiseKind};

/// A model: input shape (without the batch axis) and its layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Input shape, e.g. `[4]` or `[8, 8, 1]` (channels last).
    pub input_shape: Vec<usize>,
    /// The layers in order.
    pub layers: Vec<LayerSpec>,
}

/// An invalid model description.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    /// Where (`"layers[1].units"`, `"input_shape"`, ...).
    pub field: String,
    /// Why.
    pub reason: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for SpecError {}

/// A [`SpecError`].
pub(crate) fn spec_err(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A core error about a value under `prefix`: a hyperparameter's own name is appended
/// (`layers[1].kernel_regularizer` + `l2`).
pub(crate) fn core_field(prefix: &str, e: microfit_core::Error) -> SpecError {
    match e {
        microfit_core::Error::InvalidHyperparameter { name, reason } => {
            spec_err(format!("{prefix}.{name}"), reason.as_str())
        }
        e => spec_err(prefix, e.to_string()),
    }
}

/// Checks a weighted layer's regularizers: their factors, and an `OrthogonalRegularizer` only on
/// a Dense kernel or bias (Keras takes rank-2 tensors only, so not on a convolution; as an
/// activity regularizer it would couple the samples of a batch).
fn validate_weighted(i: usize, config: &DenseConfig<Reg>, conv: bool) -> Result<(), SpecError> {
    for (name, r) in [
        ("kernel_regularizer", &config.kernel_regularizer),
        ("bias_regularizer", &config.bias_regularizer),
        ("activity_regularizer", &config.activity_regularizer),
    ] {
        let Some(r) = r else { continue };
        let field = format!("layers[{i}].{name}");
        r.validate().map_err(|e| core_field(&field, e))?;
        if let Reg::Orthogonal { .. } = r {
            if conv {
                return Err(spec_err(
                    field,
                    "OrthogonalRegularizer needs a rank-2 tensor (Keras rejects it on conv layers)",
                ));
            }
            if name == "activity_regularizer" {
                return Err(spec_err(
                    field,
                    "OrthogonalRegularizer couples the samples of a batch; it is supported on kernels only",
                ));
            }
        }
    }
    Ok(())
}

/// Checks a weighted layer's constraints against its kernel of rank `rank` (Keras axes).
fn validate_constraints(i: usize, config: &DenseConfig<Reg>, rank: usize) -> Result<(), SpecError> {
    for (name, c, r) in [
        ("kernel_constraint", &config.kernel_constraint, rank),
        ("bias_constraint", &config.bias_constraint, 1),
    ] {
        if let Some(c) = c {
            c.validate(r)
                .map_err(|e| core_field(&format!("layers[{i}].{name}"), e))?;
        }
    }
    Ok(())
}

/// Checks a noise or regularization layer's settings (Keras' ranges) and, for spatial
/// dropout, the rank of its input.
fn validate_noise(i: usize, l: &LayerSpec, shape: &[usize]) -> Result<(), SpecError> {
    let at = format!("layers[{i}]");
    if let Some(r) = l.spatial_rank()
        && shape.len() != r + 1
    {
        return Err(spec_err(
            at,
            format!(
                "{} needs an input of {} axes (positions and channels, channels last), got shape {shape:?}",
                l.kind(),
                r + 1
            ),
        ));
    }
    match l.noise(shape) {
        Some(
            NoiseKind::Dropout(c)
            | NoiseKind::GaussianDropout(c)
            | NoiseKind::AlphaDropout(c)
            | NoiseKind::Spatial(c, _),
        ) => c.validate(),
        Some(NoiseKind::GaussianNoise(c)) => c.validate(),
        Some(NoiseKind::ActivityRegularization(r)) => r.validate(),
        None => Ok(()),
    }
    .map_err(|e| core_field(&at, e))
}

impl ModelSpec {
    /// Freezes the first `n` layers (Keras `for l in model.layers[:n]: l.trainable = False`):
    /// those with weights get `trainable = false` (fine-tuning the rest).
    ///
    /// ```
    /// use microfit::model::{LayerSpec, ModelSpec};
    /// use microfit::core::prelude::*;
    /// let mut spec = ModelSpec {
    ///     input_shape: vec![4],
    ///     layers: vec![LayerSpec::dense(8, Activation::Relu), LayerSpec::dense(3, Activation::Softmax)],
    /// };
    /// spec.freeze_first(1);
    /// let m = spec.build(0)?;
    /// assert_eq!(m.param_count(), 8 * 3 + 3); // trainable weights only
    /// assert_eq!(m.frozen.len(), 4 * 8 + 8);
    /// # Ok::<(), microfit::model::SpecError>(())
    /// ```
    pub fn freeze_first(&mut self, n: usize) {
        for l in self.layers.iter_mut().take(n) {
            if let Some(c) = l.dense_config_mut() {
                c.trainable = false;
            }
        }
    }

    /// Keras' automatic name of every layer: its [`LayerSpec::kind`], then `_1`, `_2`, … for
    /// the second, third, … of a kind (`dense`, `dense_1`, `conv2d`, `max_pooling2d`); the
    /// run-time model's variables are named after them (`dense_1/kernel`).
    pub fn layer_names(&self) -> Vec<String> {
        let mut counts: std::collections::HashMap<&'static str, usize> = Default::default();
        self.layers
            .iter()
            .map(|l| {
                let kind = l.kind();
                let c = counts.entry(kind).or_insert(0);
                let name = if *c == 0 {
                    kind.to_string()
                } else {
                    format!("{kind}_{c}")
                };
                *c += 1;
                name
            })
            .collect()
    }

    /// Output shape of every layer (checks sizes).
    ///
    /// # Errors
    /// A [`SpecError`] naming the field.
    pub fn shapes(&self) -> Result<Vec<Vec<usize>>, SpecError> {
        use crate::limits::{MAX_PARAMS, MAX_VALUES, product};
        if self.input_shape.is_empty() || self.input_shape.contains(&0) {
            return Err(spec_err("input_shape", "must be non-empty with sizes > 0"));
        }
        if product(&self.input_shape).is_none_or(|n| n > MAX_VALUES) {
            return Err(spec_err(
                "input_shape",
                format!(
                    "{:?} holds more than {MAX_VALUES} values (microfit::limits::MAX_VALUES)",
                    self.input_shape
                ),
            ));
        }
        if self.layers.is_empty() {
            return Err(spec_err("layers", "a model needs at least one layer"));
        }
        let mut shape = self.input_shape.clone();
        let mut out: Vec<Vec<usize>> = Vec::new();
        let mut total_params = 0usize;
        for (i, l) in self.layers.iter().enumerate() {
            let in_len = product(&shape).unwrap_or(usize::MAX);
            shape = match l {
                LayerSpec::Dense { units, config } => {
                    if *units == 0 {
                        return Err(spec_err(format!("layers[{i}].units"), "must be > 0"));
                    }
                    if *units > MAX_VALUES {
                        return Err(spec_err(
                            format!("layers[{i}].units"),
                            format!(
                                "{units} units: a layer's output is limited to {MAX_VALUES} values \
                                 (microfit::limits::MAX_VALUES)"
                            ),
                        ));
                    }
                    if shape.len() != 1 {
                        return Err(spec_err(
                            format!("layers[{i}]"),
                            format!(
                                "Dense needs a flat input, got shape {shape:?} (add a Flatten layer)"
                            ),
                        ));
                    }
                    validate_weighted(i, config, false)?;
                    validate_constraints(i, config, 2)?;
                    vec![*units]
                }
                LayerSpec::Conv1D {
                    filters, config, ..
                }
                | LayerSpec::Conv2D {
                    filters, config, ..
                }
                | LayerSpec::Conv3D {
                    filters, config, ..
                } => {
                    if *filters == 0 {
                        return Err(spec_err(format!("layers[{i}].filters"), "must be > 0"));
                    }
                    validate_weighted(i, config, true)?;
                    let g = l
                        .geometry(i, &shape)?
                        .ok_or_else(|| spec_err(format!("layers[{i}]"), "no geometry"))?;
                    validate_constraints(i, config, g.dims() + 2)?;
                    let mut s: Vec<usize> = g.output()[3 - g.dims()..].to_vec();
                    s.push(g.filters());
                    s
                }
                LayerSpec::MaxPooling { .. } | LayerSpec::AveragePooling { .. } => {
                    let g = l
                        .geometry(i, &shape)?
                        .ok_or_else(|| spec_err(format!("layers[{i}]"), "no geometry"))?;
                    let mut s: Vec<usize> = g.output()[3 - g.dims()..].to_vec();
                    s.push(g.filters());
                    s
                }
                LayerSpec::Flatten => vec![shape.iter().product()],
                LayerSpec::Dropout { .. }
                | LayerSpec::GaussianNoise { .. }
                | LayerSpec::GaussianDropout { .. }
                | LayerSpec::AlphaDropout { .. }
                | LayerSpec::SpatialDropout1D { .. }
                | LayerSpec::SpatialDropout2D { .. }
                | LayerSpec::SpatialDropout3D { .. }
                | LayerSpec::ActivityRegularization { .. } => {
                    validate_noise(i, l, &shape)?;
                    shape.clone()
                }
            };
            let out_len = product(&shape);
            if out_len.is_none_or(|n| n > MAX_VALUES) {
                return Err(spec_err(
                    format!("layers[{i}]"),
                    format!(
                        "{} output of shape {shape:?} holds more than {MAX_VALUES} values \
                         (microfit::limits::MAX_VALUES)",
                        l.kind()
                    ),
                ));
            }
            // Weights: a kernel of `in · out` (Dense) or `taps · cin · filters` (conv), a bias.
            let params = match l {
                LayerSpec::Dense { units, .. } => in_len
                    .checked_mul(*units)
                    .and_then(|k| k.checked_add(*units)),
                LayerSpec::Conv1D { filters, .. }
                | LayerSpec::Conv2D { filters, .. }
                | LayerSpec::Conv3D { filters, .. } => l
                    .geometry(
                        i,
                        out.last()
                            .map_or(&self.input_shape[..], |s: &Vec<usize>| &s[..]),
                    )?
                    .and_then(|g| g.taps().checked_mul(g.in_channels()))
                    .and_then(|k| k.checked_mul(*filters))
                    .and_then(|k| k.checked_add(*filters)),
                _ => Some(0),
            };
            total_params = match params.and_then(|p| total_params.checked_add(p)) {
                Some(t) if t <= MAX_PARAMS => t,
                _ => {
                    return Err(spec_err(
                        format!("layers[{i}]"),
                        format!(
                            "{} on {in_len} inputs brings the model to more than {MAX_PARAMS} \
                             parameters (microfit::limits::MAX_PARAMS)",
                            l.kind()
                        ),
                    ));
                }
            };
            out.push(shape.clone());
        }
        Ok(out)
    }
}
