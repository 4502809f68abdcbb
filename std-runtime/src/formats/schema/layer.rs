//! [`LayerSpec`]: one layer of a model, the schema's form of every layer kind. Its serde form
//! is a `[[layers]]` table of the TOML spec (`type = "conv2d"`, `filters = 8`,
//! `kernel_size = 3`, `activation = "relu"`, `kernel_regularizer = { l2 = 1e-3 }`, ...).
//!
//! A weighted layer's [`DenseConfig`] (the core's config of Dense and the convolutions) is
//! flattened into its table by [`weighted`]: the one place that lists its keys.

use microfit_core::activation::Activation;
use microfit_core::constraint::Constraint;
use microfit_core::kernels::conv::{ConvGeometry, Padding};
use microfit_core::layer::dense::DenseConfig;
use microfit_core::layer::dropout::DropoutConfig;
use microfit_core::layer::noise::GaussianNoiseConfig;
use microfit_core::regularizer::Reg;
use serde::{Deserialize, Serialize};

use super::model_spec::{SpecError, spec_err};
use super::values::sizes;

/// One layer of a model described at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LayerSpec {
    /// Keras `Dense(units, ...)`.
    Dense {
        /// Output size.
        units: usize,
        /// Activation, bias, regularizers, initializers.
        #[serde(flatten, with = "weighted")]
        config: DenseConfig<Reg>,
    },
    /// Keras `Conv1D(filters, kernel_size, strides, padding, dilation_rate, ...)` on `(w, cin)`.
    #[serde(rename = "conv1d")]
    Conv1D {
        /// Output channels.
        filters: usize,
        /// Kernel size per spatial axis (one value is used for every axis).
        #[serde(deserialize_with = "sizes::deserialize")]
        kernel_size: Vec<usize>,
        /// Strides per axis (empty: 1; one value: every axis).
        #[serde(
            default,
            deserialize_with = "sizes::deserialize",
            skip_serializing_if = "Vec::is_empty"
        )]
        strides: Vec<usize>,
        /// `valid` (default) or `same`.
        #[serde(default)]
        padding: Padding,
        /// Dilation per axis (empty: 1; one value: every axis).
        #[serde(
            default,
            deserialize_with = "sizes::deserialize",
            skip_serializing_if = "Vec::is_empty"
        )]
        dilation_rate: Vec<usize>,
        /// Activation, bias, regularizers, initializers.
        #[serde(flatten, with = "weighted")]
        config: DenseConfig<Reg>,
    },
    /// Keras `Conv2D(...)` on `(h, w, cin)`; fields as [`LayerSpec::Conv1D`].
    #[serde(rename = "conv2d")]
    Conv2D {
        /// Output channels.
        filters: usize,
        /// Kernel size per spatial axis (one value is used for every axis).
        #[serde(deserialize_with = "sizes::deserialize")]
        kernel_size: Vec<usize>,
        /// Strides per axis (empty: 1; one value: every axis).
        #[serde(
            default,
            deserialize_with = "sizes::deserialize",
            skip_serializing_if = "Vec::is_empty"
        )]
        strides: Vec<usize>,
        /// `valid` (default) or `same`.
        #[serde(default)]
        padding: Padding,
        /// Dilation per axis (empty: 1; one value: every axis).
        #[serde(
            default,
            deserialize_with = "sizes::deserialize",
            skip_serializing_if = "Vec::is_empty"
        )]
        dilation_rate: Vec<usize>,
        /// Activation, bias, regularizers, initializers.
        #[serde(flatten, with = "weighted")]
        config: DenseConfig<Reg>,
    },
    /// Keras `Conv3D(...)` on `(d, h, w, cin)`; fields as [`LayerSpec::Conv1D`].
    #[serde(rename = "conv3d")]
    Conv3D {
        /// Output channels.
        filters: usize,
        /// Kernel size per spatial axis (one value is used for every axis).
        #[serde(deserialize_with = "sizes::deserialize")]
        kernel_size: Vec<usize>,
        /// Strides per axis (empty: 1; one value: every axis).
        #[serde(
            default,
            deserialize_with = "sizes::deserialize",
            skip_serializing_if = "Vec::is_empty"
        )]
        strides: Vec<usize>,
        /// `valid` (default) or `same`.
        #[serde(default)]
        padding: Padding,
        /// Dilation per axis (empty: 1; one value: every axis).
        #[serde(
            default,
            deserialize_with = "sizes::deserialize",
            skip_serializing_if = "Vec::is_empty"
        )]
        dilation_rate: Vec<usize>,
        /// Activation, bias, regularizers, initializers.
        #[serde(flatten, with = "weighted")]
        config: DenseConfig<Reg>,
    },
    /// Keras `MaxPooling1D/2D/3D(pool_size, strides, padding)`: the rank is `pool_size.len()`.
    MaxPooling {
        /// Window size per spatial axis.
        #[serde(deserialize_with = "sizes::deserialize")]
        pool_size: Vec<usize>,
        /// Strides per axis (`None`: the pool size, as Keras).
        #[serde(
            default,
            deserialize_with = "sizes::option::deserialize",
            skip_serializing_if = "Option::is_none"
        )]
        strides: Option<Vec<usize>>,
        /// `valid` (default) or `same`.
        #[serde(default)]
        padding: Padding,
    },
    /// Keras `AveragePooling1D/2D/3D(pool_size, strides, padding)`: the rank is `pool_size.len()`.
    AveragePooling {
        /// Window size per spatial axis.
        #[serde(deserialize_with = "sizes::deserialize")]
        pool_size: Vec<usize>,
        /// Strides per axis (`None`: the pool size, as Keras).
        #[serde(
            default,
            deserialize_with = "sizes::option::deserialize",
            skip_serializing_if = "Option::is_none"
        )]
        strides: Option<Vec<usize>>,
        /// `valid` (default) or `same`.
        #[serde(default)]
        padding: Padding,
    },
    /// Keras `Flatten()` (row-major over `(…, h, w, c)`).
    Flatten,
    /// Keras `Dropout(rate, seed)`: inverted dropout in training, identity in inference.
    Dropout {
        /// Fraction dropped, in `[0, 1)`.
        rate: f32,
        /// The layer's own seed (`None`: the model's generator).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    },
    /// Keras `GaussianNoise(stddev, seed)`: `x + N(0, stddev²)` in training, identity in
    /// inference (`microfit_core::layer::noise`).
    GaussianNoise {
        /// Standard deviation, in `[0, 1]`.
        stddev: f32,
        /// The layer's own seed (`None`: the model's generator).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    },
    /// Keras `GaussianDropout(rate, seed)`: `x · N(1, rate/(1 − rate))` in training.
    GaussianDropout {
        /// Rate, in `[0, 1)`.
        rate: f32,
        /// The layer's own seed (`None`: the model's generator).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    },
    /// Keras `AlphaDropout(rate, seed)` (for SELU networks).
    AlphaDropout {
        /// Rate, in `[0, 1)`.
        rate: f32,
        /// The layer's own seed (`None`: the model's generator).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    },
    /// Keras `SpatialDropout1D(rate, seed)` on `(steps, channels)`: whole channels dropped.
    #[serde(rename = "spatial_dropout1d")]
    SpatialDropout1D {
        /// Rate, in `[0, 1)`.
        rate: f32,
        /// The layer's own seed (`None`: the model's generator).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    },
    /// Keras `SpatialDropout2D(rate, seed)` on `(h, w, channels)`.
    #[serde(rename = "spatial_dropout2d")]
    SpatialDropout2D {
        /// Rate, in `[0, 1)`.
        rate: f32,
        /// The layer's own seed (`None`: the model's generator).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    },
    /// Keras `SpatialDropout3D(rate, seed)` on `(d, h, w, channels)`.
    #[serde(rename = "spatial_dropout3d")]
    SpatialDropout3D {
        /// Rate, in `[0, 1)`.
        rate: f32,
        /// The layer's own seed (`None`: the model's generator).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    },
    /// Keras `ActivityRegularization(l1, l2)`: the identity, with the activity penalty
    /// `L1L2(l1, l2)` on its output (÷ batch size).
    ActivityRegularization {
        /// L1 factor.
        #[serde(default)]
        l1: f32,
        /// L2 factor.
        #[serde(default)]
        l2: f32,
    },
}

/// What a layer without weights that draws noise or adds a penalty needs at run time: the
/// core's config of its kind ([`LayerSpec::noise`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseKind {
    /// `Dropout`.
    Dropout(DropoutConfig),
    /// `GaussianNoise`.
    GaussianNoise(GaussianNoiseConfig),
    /// `GaussianDropout`.
    GaussianDropout(DropoutConfig),
    /// `AlphaDropout`.
    AlphaDropout(DropoutConfig),
    /// `SpatialDropout1D/2D/3D` with this many channels (the last axis).
    Spatial(DropoutConfig, usize),
    /// `ActivityRegularization(l1, l2)` as `L1L2(l1, l2)`.
    ActivityRegularization(Reg),
}

/// The fields of a convolution of any rank ([`LayerSpec::conv_fields`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvFields<'a> {
    /// Spatial axes: 1, 2 or 3.
    pub rank: usize,
    /// Output channels.
    pub filters: usize,
    /// Kernel size per spatial axis (one value: every axis).
    pub kernel_size: &'a [usize],
    /// Strides (empty: 1).
    pub strides: &'a [usize],
    /// `valid` or `same`.
    pub padding: Padding,
    /// Dilation (empty: 1).
    pub dilation_rate: &'a [usize],
    /// Activation, bias, regularizers, initializers.
    pub config: &'a DenseConfig<Reg>,
}

impl LayerSpec {
    /// The fields of a `Conv1D`, `Conv2D` or `Conv3D` layer (`None` for other layers).
    pub fn conv_fields(&self) -> Option<ConvFields<'_>> {
        let (rank, filters, kernel_size, strides, padding, dilation_rate, config) = match self {
            LayerSpec::Conv1D {
                filters,
                kernel_size,
                strides,
                padding,
                dilation_rate,
                config,
            } => (
                1,
                filters,
                kernel_size,
                strides,
                padding,
                dilation_rate,
                config,
            ),
            LayerSpec::Conv2D {
                filters,
                kernel_size,
                strides,
                padding,
                dilation_rate,
                config,
            } => (
                2,
                filters,
                kernel_size,
                strides,
                padding,
                dilation_rate,
                config,
            ),
            LayerSpec::Conv3D {
                filters,
                kernel_size,
                strides,
                padding,
                dilation_rate,
                config,
            } => (
                3,
                filters,
                kernel_size,
                strides,
                padding,
                dilation_rate,
                config,
            ),
            _ => return None,
        };
        Some(ConvFields {
            rank,
            filters: *filters,
            kernel_size,
            strides,
            padding: *padding,
            dilation_rate,
            config,
        })
    }

    /// `Dense(units, activation)` with Keras defaults.
    pub fn dense(units: usize, activation: Activation) -> Self {
        LayerSpec::Dense {
            units,
            config: DenseConfig::new(activation),
        }
    }

    /// `Conv1D(filters, kernel_size, activation)` with Keras defaults (stride 1, valid).
    pub fn conv1d(filters: usize, kernel_size: usize, activation: Activation) -> Self {
        let config = DenseConfig::new(activation);
        Self::conv_of_rank(1, filters, vec![kernel_size], config)
    }

    /// `Conv2D(filters, (kh, kw), activation)` with Keras defaults (stride 1, valid).
    pub fn conv2d(filters: usize, kernel_size: [usize; 2], activation: Activation) -> Self {
        let config = DenseConfig::new(activation);
        Self::conv_of_rank(2, filters, kernel_size.to_vec(), config)
    }

    /// `Conv3D(filters, (kd, kh, kw), activation)` with Keras defaults (stride 1, valid).
    pub fn conv3d(filters: usize, kernel_size: [usize; 3], activation: Activation) -> Self {
        let config = DenseConfig::new(activation);
        Self::conv_of_rank(3, filters, kernel_size.to_vec(), config)
    }

    /// `Conv{rank}D(filters, kernel_size)` with `config` (stride 1, valid); `None` unless
    /// `rank` is 1, 2 or 3.
    pub fn conv(
        rank: usize,
        filters: usize,
        kernel_size: Vec<usize>,
        config: DenseConfig<Reg>,
    ) -> Option<Self> {
        (1..=3)
            .contains(&rank)
            .then(|| Self::conv_of_rank(rank, filters, kernel_size, config))
    }

    /// [`LayerSpec::conv`] for a rank of 1, 2 or 3 (3 for any other).
    fn conv_of_rank(
        rank: usize,
        filters: usize,
        kernel_size: Vec<usize>,
        config: DenseConfig<Reg>,
    ) -> Self {
        let (strides, padding, dilation_rate) = (Vec::new(), Padding::Valid, Vec::new());
        match rank {
            1 => LayerSpec::Conv1D {
                filters,
                kernel_size,
                strides,
                padding,
                dilation_rate,
                config,
            },
            2 => LayerSpec::Conv2D {
                filters,
                kernel_size,
                strides,
                padding,
                dilation_rate,
                config,
            },
            _ => LayerSpec::Conv3D {
                filters,
                kernel_size,
                strides,
                padding,
                dilation_rate,
                config,
            },
        }
    }

    /// `MaxPooling{n}D(pool_size)` (strides = pool size, valid), `n = pool_size.len()`.
    pub fn max_pooling(pool_size: &[usize]) -> Self {
        LayerSpec::MaxPooling {
            pool_size: pool_size.to_vec(),
            strides: None,
            padding: Padding::Valid,
        }
    }

    /// `AveragePooling{n}D(pool_size)` (strides = pool size, valid), `n = pool_size.len()`.
    pub fn average_pooling(pool_size: &[usize]) -> Self {
        LayerSpec::AveragePooling {
            pool_size: pool_size.to_vec(),
            strides: None,
            padding: Padding::Valid,
        }
    }

    /// `Dropout(rate)` drawing from the model's generator.
    pub fn dropout(rate: f32) -> Self {
        LayerSpec::Dropout { rate, seed: None }
    }

    /// Sets Keras `trainable` of a layer with weights (ignored by others): `false` freezes it
    /// (no gradient, no optimizer slot, no kernel or bias penalty; see
    /// [`ModelSpec::freeze_first`](super::ModelSpec::freeze_first)).
    pub fn with_trainable(mut self, trainable: bool) -> Self {
        if let Some(c) = self.dense_config_mut() {
            c.trainable = trainable;
        }
        self
    }

    /// Sets the kernel constraint of a layer with weights (ignored by others).
    pub fn with_kernel_constraint(mut self, c: Constraint) -> Self {
        if let Some(cfg) = self.dense_config_mut() {
            cfg.kernel_constraint = Some(c);
        }
        self
    }

    /// Sets the bias constraint of a layer with weights (ignored by others).
    pub fn with_bias_constraint(mut self, c: Constraint) -> Self {
        if let Some(cfg) = self.dense_config_mut() {
            cfg.bias_constraint = Some(c);
        }
        self
    }

    /// The noise or regularization layer this spec describes, for an input of shape `shape`
    /// (`None` for other layers). Its values are checked by
    /// [`ModelSpec::shapes`](super::ModelSpec::shapes).
    pub fn noise(&self, shape: &[usize]) -> Option<NoiseKind> {
        let d = |rate: f32, seed: Option<u64>| DropoutConfig { rate, seed };
        let channels = shape.last().copied().unwrap_or(1);
        Some(match *self {
            LayerSpec::Dropout { rate, seed } => NoiseKind::Dropout(d(rate, seed)),
            LayerSpec::GaussianNoise { stddev, seed } => {
                NoiseKind::GaussianNoise(GaussianNoiseConfig { stddev, seed })
            }
            LayerSpec::GaussianDropout { rate, seed } => NoiseKind::GaussianDropout(d(rate, seed)),
            LayerSpec::AlphaDropout { rate, seed } => NoiseKind::AlphaDropout(d(rate, seed)),
            LayerSpec::SpatialDropout1D { rate, seed }
            | LayerSpec::SpatialDropout2D { rate, seed }
            | LayerSpec::SpatialDropout3D { rate, seed } => {
                NoiseKind::Spatial(d(rate, seed), channels)
            }
            // Not `Reg::l1l2`, which panics on a bad factor: the validation reports it.
            LayerSpec::ActivityRegularization { l1, l2 } => {
                NoiseKind::ActivityRegularization(Reg::L1L2 { l1, l2 })
            }
            _ => return None,
        })
    }

    /// The spatial rank a spatial dropout layer needs (its input has one more axis, the
    /// channels): 1, 2 or 3 (`None` for other layers).
    pub fn spatial_rank(&self) -> Option<usize> {
        match self {
            LayerSpec::SpatialDropout1D { .. } => Some(1),
            LayerSpec::SpatialDropout2D { .. } => Some(2),
            LayerSpec::SpatialDropout3D { .. } => Some(3),
            _ => None,
        }
    }

    /// Sets the strides of a conv or pooling layer (ignored by others).
    pub fn with_strides(mut self, s: &[usize]) -> Self {
        match &mut self {
            LayerSpec::Conv1D { strides, .. }
            | LayerSpec::Conv2D { strides, .. }
            | LayerSpec::Conv3D { strides, .. } => {
                *strides = s.to_vec();
            }
            LayerSpec::MaxPooling { strides, .. } | LayerSpec::AveragePooling { strides, .. } => {
                *strides = Some(s.to_vec());
            }
            _ => {}
        }
        self
    }

    /// Sets the padding of a conv or pooling layer (ignored by others).
    pub fn with_padding(mut self, p: Padding) -> Self {
        match &mut self {
            LayerSpec::Conv1D { padding, .. }
            | LayerSpec::Conv2D { padding, .. }
            | LayerSpec::Conv3D { padding, .. }
            | LayerSpec::MaxPooling { padding, .. }
            | LayerSpec::AveragePooling { padding, .. } => *padding = p,
            _ => {}
        }
        self
    }

    /// Sets the dilation rate of a conv layer (ignored by others).
    pub fn with_dilation_rate(mut self, d: &[usize]) -> Self {
        if let LayerSpec::Conv1D { dilation_rate, .. }
        | LayerSpec::Conv2D { dilation_rate, .. }
        | LayerSpec::Conv3D { dilation_rate, .. } = &mut self
        {
            *dilation_rate = d.to_vec();
        }
        self
    }

    /// The geometry of a conv or pooling layer on an input of shape `in_shape`
    /// (`None` for other layers).
    ///
    /// # Errors
    /// A [`SpecError`] naming `layers[i].<field>`.
    pub fn geometry(
        &self,
        i: usize,
        in_shape: &[usize],
    ) -> Result<Option<ConvGeometry>, SpecError> {
        let field = |f: &str| format!("layers[{i}].{f}");
        let (rank, filters, kernel, strides, dilation, padding, is_pool) = match self {
            LayerSpec::MaxPooling {
                pool_size,
                strides,
                padding,
            }
            | LayerSpec::AveragePooling {
                pool_size,
                strides,
                padding,
            } => (
                pool_size.len(),
                0,
                &pool_size[..],
                strides.as_deref(),
                None,
                *padding,
                true,
            ),
            _ => match self.conv_fields() {
                Some(c) => (
                    c.rank,
                    c.filters,
                    c.kernel_size,
                    Some(c.strides),
                    Some(c.dilation_rate),
                    c.padding,
                    false,
                ),
                None => return Ok(None),
            },
        };
        let kname = if is_pool { "pool_size" } else { "kernel_size" };
        if !(1..=3).contains(&rank) {
            return Err(spec_err(field(kname), "a pooling window has 1 to 3 axes"));
        }
        if in_shape.len() != rank + 1 {
            return Err(spec_err(
                format!("layers[{i}]"),
                format!(
                    "{} needs an input of {} axes (spatial axes and channels, channels last), got shape {in_shape:?}",
                    self.kind(),
                    rank + 1
                ),
            ));
        }
        let per_axis = |v: &[usize], default: usize, name: &str| -> Result<Vec<usize>, SpecError> {
            match v.len() {
                0 => Ok(vec![default; rank]),
                1 => Ok(vec![v[0]; rank]),
                n if n == rank => Ok(v.to_vec()),
                n => Err(spec_err(
                    field(name),
                    format!("has {n} values, the layer has {rank} spatial axes"),
                )),
            }
        };
        let k = per_axis(kernel, 0, kname)?;
        if kernel.is_empty() {
            return Err(spec_err(field(kname), "must be given"));
        }
        let s = match strides {
            Some(s) => per_axis(s, 1, "strides")?,
            None => k.clone(),
        };
        let channels = in_shape[rank];
        let g = if is_pool {
            ConvGeometry::pool(&in_shape[..rank], &k, &s, padding, channels)
        } else {
            let d = per_axis(dilation.unwrap_or_default(), 1, "dilation_rate")?;
            ConvGeometry::new(&in_shape[..rank], &k, &s, &d, padding, channels, filters)
        };
        g.map(Some).map_err(|e| match e {
            microfit_core::Error::InvalidHyperparameter { name, reason } => {
                spec_err(field(name), reason.as_str())
            }
            e => spec_err(format!("layers[{i}]"), e.to_string()),
        })
    }

    /// Sets the kernel regularizer (Dense and conv layers; ignored by others).
    pub fn with_kernel_regularizer(mut self, r: Reg) -> Self {
        if let Some(c) = self.dense_config_mut() {
            c.kernel_regularizer = Some(r);
        }
        self
    }

    /// Sets the bias regularizer.
    pub fn with_bias_regularizer(mut self, r: Reg) -> Self {
        if let Some(c) = self.dense_config_mut() {
            c.bias_regularizer = Some(r);
        }
        self
    }

    /// Sets the activity regularizer.
    pub fn with_activity_regularizer(mut self, r: Reg) -> Self {
        if let Some(c) = self.dense_config_mut() {
            c.activity_regularizer = Some(r);
        }
        self
    }

    /// The shared config (activation, regularizers, ...) of a layer that has weights.
    pub fn dense_config(&self) -> Option<&DenseConfig<Reg>> {
        match self {
            LayerSpec::Dense { config, .. }
            | LayerSpec::Conv1D { config, .. }
            | LayerSpec::Conv2D { config, .. }
            | LayerSpec::Conv3D { config, .. } => Some(config),
            _ => None,
        }
    }

    /// Mutable access to [`LayerSpec::dense_config`].
    pub fn dense_config_mut(&mut self) -> Option<&mut DenseConfig<Reg>> {
        match self {
            LayerSpec::Dense { config, .. }
            | LayerSpec::Conv1D { config, .. }
            | LayerSpec::Conv2D { config, .. }
            | LayerSpec::Conv3D { config, .. } => Some(config),
            _ => None,
        }
    }

    /// Keras-style kind name used in variable names (`"dense"`, `"conv2d"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Dense { .. } => "dense",
            LayerSpec::Conv1D { .. } => "conv1d",
            LayerSpec::Conv2D { .. } => "conv2d",
            LayerSpec::Conv3D { .. } => "conv3d",
            LayerSpec::MaxPooling { pool_size, .. } => match pool_size.len() {
                1 => "max_pooling1d",
                3 => "max_pooling3d",
                _ => "max_pooling2d",
            },
            LayerSpec::AveragePooling { pool_size, .. } => match pool_size.len() {
                1 => "average_pooling1d",
                3 => "average_pooling3d",
                _ => "average_pooling2d",
            },
            LayerSpec::Flatten => "flatten",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::GaussianNoise { .. } => "gaussian_noise",
            LayerSpec::GaussianDropout { .. } => "gaussian_dropout",
            LayerSpec::AlphaDropout { .. } => "alpha_dropout",
            LayerSpec::SpatialDropout1D { .. } => "spatial_dropout1d",
            LayerSpec::SpatialDropout2D { .. } => "spatial_dropout2d",
            LayerSpec::SpatialDropout3D { .. } => "spatial_dropout3d",
            LayerSpec::ActivityRegularization { .. } => "activity_regularization",
        }
    }
}

/// The serde form of a weighted layer's [`DenseConfig`], flattened into its layer table:
/// `activation` (with `negative_slope` for `leaky_relu`), `use_bias`, the three regularizers,
/// the two initializers, the two constraints and `trainable`, under Keras' names; Keras' defaults are left out when writing. An
/// option added to [`DenseConfig`] gets its key here.
pub mod weighted {
    use microfit_core::constraint::Constraint;
    use microfit_core::init::Initializer;
    use microfit_core::layer::dense::DenseConfig;
    use microfit_core::regularizer::Reg;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::super::values::{
        ConstraintForm, InitForm, RegForm, activation_from, activation_to, join_field,
    };

    #[derive(Serialize, Deserialize)]
    struct Form {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        negative_slope: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        use_bias: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kernel_regularizer: Option<RegForm>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias_regularizer: Option<RegForm>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activity_regularizer: Option<RegForm>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kernel_initializer: Option<InitForm>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias_initializer: Option<InitForm>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kernel_constraint: Option<ConstraintForm>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias_constraint: Option<ConstraintForm>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trainable: Option<bool>,
    }

    /// Writes the config (Keras' defaults left out, the activation always written).
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(c: &DenseConfig<Reg>, s: S) -> Result<S::Ok, S::Error> {
        let (activation, negative_slope) = activation_to(c.activation);
        let init = |i: Initializer, default: Initializer| (i != default).then(|| i.into());
        Form {
            activation: Some(activation),
            negative_slope,
            use_bias: (!c.use_bias).then_some(false),
            kernel_regularizer: c.kernel_regularizer.as_ref().map(RegForm::from),
            bias_regularizer: c.bias_regularizer.as_ref().map(RegForm::from),
            activity_regularizer: c.activity_regularizer.as_ref().map(RegForm::from),
            kernel_initializer: init(c.kernel_initializer, Initializer::GlorotUniform),
            bias_initializer: init(c.bias_initializer, Initializer::Zeros),
            kernel_constraint: c.kernel_constraint.as_ref().map(ConstraintForm::from),
            bias_constraint: c.bias_constraint.as_ref().map(ConstraintForm::from),
            trainable: (!c.trainable).then_some(false),
        }
        .serialize(s)
    }

    /// Reads the config (missing keys: Keras' defaults).
    ///
    /// # Errors
    /// A value of the wrong type or an unknown name, as `"<key>: <reason>"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DenseConfig<Reg>, D::Error> {
        let f = Form::deserialize(d)?;
        let at = |key: &'static str| move |e: String| D::Error::custom(join_field(key, &e));
        let activation =
            activation_from(f.activation.as_deref(), f.negative_slope).map_err(D::Error::custom)?;
        let mut c = DenseConfig::new(activation);
        c.use_bias = f.use_bias.unwrap_or(true);
        let reg = |r: Option<RegForm>, key| r.map(Reg::try_from).transpose().map_err(at(key));
        c.kernel_regularizer = reg(f.kernel_regularizer, "kernel_regularizer")?;
        c.bias_regularizer = reg(f.bias_regularizer, "bias_regularizer")?;
        c.activity_regularizer = reg(f.activity_regularizer, "activity_regularizer")?;
        let init = |i: Option<InitForm>, key, default| {
            i.map_or(Ok(default), |i| Initializer::try_from(i).map_err(at(key)))
        };
        c.kernel_initializer = init(
            f.kernel_initializer,
            "kernel_initializer",
            Initializer::GlorotUniform,
        )?;
        c.bias_initializer = init(f.bias_initializer, "bias_initializer", Initializer::Zeros)?;
        let constraint = |c: Option<ConstraintForm>, key| {
            c.map(Constraint::try_from).transpose().map_err(at(key))
        };
        c.kernel_constraint = constraint(f.kernel_constraint, "kernel_constraint")?;
        c.bias_constraint = constraint(f.bias_constraint, "bias_constraint")?;
        c.trainable = f.trainable.unwrap_or(true);
        Ok(c)
    }
}
