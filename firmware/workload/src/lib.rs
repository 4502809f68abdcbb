//! The firmware's **workload file** — a model, its initial weights, its optimizer, loss and
//! schedule, and the data it trains on — and the typed Rust module generated from it.
//!
//! `firmware/build.rs` reads one workload file (`data/w1.json`, `data/w2.json`, or the file
//! named by `MICROFIT_FW_WORKLOAD`), checks it ([`Workload::parse`]), refuses a model that does
//! not fit the chip ([`Memory`]) and writes [`generate`]'s module: the model as a
//! `microfit_core` typed network whose configuration is a compile-time constant, its initial
//! weights and the data as `static`s in flash, the loss, the optimizer with its
//! hyperparameters, the batch size and the epochs. The firmware trains it with the core's
//! engine and has no code of its own for any architecture.
//!
//! # The format
//! JSON, a superset of the original W1/W2 files (`firmware/data/w1.json` parses unchanged).
//! Tensors are `{"shape": [...], "data": [...]}`, row-major, every number read as an `f32`.
//!
//! ```text
//! {
//!   "name": "W1",
//!   "x": tensor [n, ...input shape]         inputs, already scaled
//!   "input_shape": [8, 8, 1]                optional: the sample shape when x is [n, values]
//!   "labels": tensor [n]                    class indices (classification), or
//!   "y": tensor [n, outputs]                dense targets (regression, one-hot, binary)
//!   "classes": 3                            with labels: the number of classes
//!   "model": [ layer, ... ]                 Keras order, see below
//!   "initial_weights": {                    one entry per tensor: "<kind>_<k>/kernel|bias",
//!     "dense_0/kernel": tensor [in, out],   <k> counting the layers of that kind from 0
//!     "dense_0/bias": tensor [out], ...     (conv kernels [k…, cin, filters])
//!   },
//!   "training": {
//!     "optimizer": "adam" | "adamw" | "sgd",
//!     "learning_rate": 0.01 | {"exponential_decay": {"initial_learning_rate": 0.1,
//!                      "decay_steps": 100, "decay_rate": 0.5, "staircase": false}},
//!     "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,     (adam, adamw; Keras' defaults)
//!     "weight_decay": 0.004,                               (adamw)
//!     "momentum": 0.0, "nesterov": false,                  (sgd)
//!     "clipvalue": …, "clipnorm": …, "global_clipnorm": …, (optional)
//!     "loss": "categorical_crossentropy" | "sparse_categorical_crossentropy" |
//!             "binary_crossentropy" | "mean_squared_error" | "mean_absolute_error",
//!     "from_logits": false, "label_smoothing": 0.0,          (the cross-entropies)
//!     "batch_size": 10, "epochs": 50,
//!     "shuffle": false                                      (batches in file order)
//!   },
//!   "kernel_l2": 0.001,                     optional: L2 on every Dense kernel without one
//!   "frozen_layers": 1,                     optional: the first n layers frozen
//!   "kernel_constraint": {...},             optional: the last weighted layer's kernel constraint
//!   "min_accuracy": 0.95                    optional: what a successful run reaches (default
//!                                           0.95 with a categorical cross-entropy, else none)
//! }
//! ```
//!
//! Layers (`"layer"`):
//! * `"dense"`: `units`, `activation` (`linear`, `relu`, `sigmoid`, `tanh`, `softmax`,
//!   `leaky_relu` with `"alpha"`), `use_bias` (true), `kernel_regularizer`, `bias_regularizer`,
//!   `activity_regularizer`: `{"l2": f}`, `{"l1": f}`, `{"l1": a, "l2": b}`,
//!   `{"orthogonal": f, "mode": "rows"|"columns"}`; `trainable` (true; false: the layer is
//!   frozen, its weights a `static` in flash, out of the training state); `kernel_constraint`,
//!   `bias_constraint` in Keras' form: `{"class_name": "MaxNorm" | "MinMaxNorm" | "UnitNorm" |
//!   "NonNeg", "config": {"max_value", "min_value", "rate", "axis"}}` (Keras' defaults);
//! * `"conv1d"`, `"conv2d"`, `"conv3d"`: `filters`, `kernel_size`, `strides` (1),
//!   `padding` (`"valid"`/`"same"`), `dilation_rate` (1), and Dense's keys;
//! * `"max_pooling1d|2d|3d"`, `"average_pooling1d|2d|3d"`: `pool_size`, `strides` (the pool
//!   size), `padding`;
//! * `"flatten"`; `"dropout"`: `rate`, `seed` (optional).
//!
//! ```
//! let w = microfit_workload::Workload::parse(r#"{
//!     "name": "tiny", "x": {"shape": [2, 2], "data": [0.5, 1, -1, 2]},
//!     "labels": {"shape": [2], "data": [0, 1]}, "classes": 2,
//!     "model": [{"layer": "dense", "units": 2, "activation": "softmax"}],
//!     "initial_weights": {"dense_0/kernel": {"shape": [2, 2], "data": [1, 0, 0, 1]},
//!                         "dense_0/bias": {"shape": [2], "data": [0, 0]}},
//!     "training": {"optimizer": "sgd", "learning_rate": 0.1, "loss": "categorical_crossentropy",
//!                  "batch_size": 2, "epochs": 1}}"#).unwrap();
//! assert_eq!(w.params(), 6);
//! let src = microfit_workload::generate(&w, &Default::default()).unwrap();
//! assert!(src.contains("pub const EPOCHS: u32 = 1;"));
//! ```

#![forbid(unsafe_code)]

mod generate;
mod memory;
mod parse;

pub use generate::{Options, generate};
pub use memory::{CODE_BYTES, Memory, STACK_BYTES};

use std::path::Path;

/// A parsed and checked workload (see the [crate docs](crate)).
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Name (printed by the firmware).
    pub name: String,
    /// The shape of one input sample.
    pub input_shape: Vec<usize>,
    /// The inputs, `samples × input values`.
    pub x: Vec<f32>,
    /// Number of samples.
    pub samples: usize,
    /// The targets.
    pub targets: Targets,
    /// The layers, with their output shapes.
    pub layers: Vec<Layer>,
    /// Every weight tensor in Keras variable order (each layer's kernel, then its bias).
    pub weights: Vec<Tensor>,
    /// Optimizer, loss, batch size, epochs.
    pub training: Training,
    /// The final accuracy a run must reach to count as a success (the firmware's exit code and
    /// LED): the file's `min_accuracy`, by default 0.95 with a categorical cross-entropy and
    /// none otherwise (a run that trains without error succeeds).
    pub min_accuracy: Option<f32>,
}

/// A named tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// `<kind>_<k>/kernel` or `.../bias`.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// The targets of the samples.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Class indices and the number of classes.
    Classes {
        /// One label per sample.
        labels: Vec<u32>,
        /// Number of classes.
        classes: usize,
    },
    /// Dense targets, `samples × width`.
    Dense {
        /// Values.
        values: Vec<f32>,
        /// Values per sample.
        width: usize,
    },
}

/// An activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `linear`.
    Linear,
    /// `relu`.
    Relu,
    /// `sigmoid`.
    Sigmoid,
    /// `tanh`.
    Tanh,
    /// `softmax`.
    Softmax,
    /// `leaky_relu` with its negative slope.
    LeakyRelu(f32),
}

/// A regularizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reg {
    /// `L1(l1)`.
    L1(f32),
    /// `L2(l2)`.
    L2(f32),
    /// `L1L2(l1, l2)`.
    L1L2(f32, f32),
    /// `OrthogonalRegularizer(factor, mode)`; `true` for rows.
    Orthogonal(f32, bool),
}

/// The regularizers of a layer with weights.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Regs {
    /// `kernel_regularizer`.
    pub kernel: Option<Reg>,
    /// `bias_regularizer`.
    pub bias: Option<Reg>,
    /// `activity_regularizer`.
    pub activity: Option<Reg>,
}

/// A weight constraint (Keras `kernel_constraint` / `bias_constraint`), applied right after
/// each optimizer update.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// `MaxNorm(max_value, axis)`.
    MaxNorm {
        /// The largest norm.
        max_value: f32,
        /// Keras `axis`.
        axis: Vec<i8>,
    },
    /// `MinMaxNorm(min_value, max_value, rate, axis)`.
    MinMaxNorm {
        /// The smallest norm.
        min_value: f32,
        /// The largest norm.
        max_value: f32,
        /// How far towards the interval.
        rate: f32,
        /// Keras `axis`.
        axis: Vec<i8>,
    },
    /// `NonNeg()`.
    NonNeg,
    /// `UnitNorm(axis)`.
    UnitNorm {
        /// Keras `axis`.
        axis: Vec<i8>,
    },
}

/// What a weighted layer (Dense, conv) holds besides its sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct Weighted {
    /// Activation.
    pub activation: Activation,
    /// `use_bias`.
    pub use_bias: bool,
    /// Regularizers.
    pub regs: Regs,
    /// `trainable` (Keras; default true). A frozen layer's weights stay a `static` in flash,
    /// out of the training state (the core's `Frozen`); its kernel and bias penalties are
    /// dropped (Keras 3), its activity penalty kept.
    pub trainable: bool,
    /// `kernel_constraint`.
    pub kernel_constraint: Option<Constraint>,
    /// `bias_constraint`.
    pub bias_constraint: Option<Constraint>,
}

/// One layer and its input and output shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// What it is.
    pub kind: LayerKind,
    /// Its input shape.
    pub input: Vec<usize>,
    /// Its output shape.
    pub output: Vec<usize>,
}

/// Layer kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerKind {
    /// `Dense(units)` on a flat input.
    Dense(Weighted),
    /// `Conv1D/2D/3D`.
    Conv {
        /// Weighted-layer settings.
        w: Weighted,
        /// Filters.
        filters: usize,
        /// Kernel size per spatial axis.
        kernel: Vec<usize>,
        /// Strides.
        strides: Vec<usize>,
        /// Dilation rates.
        dilation: Vec<usize>,
        /// `padding="same"`.
        same: bool,
    },
    /// Max or average pooling.
    Pool {
        /// Max (`true`) or average.
        max: bool,
        /// Pool size per spatial axis.
        pool: Vec<usize>,
        /// Strides.
        strides: Vec<usize>,
        /// `padding="same"`.
        same: bool,
    },
    /// `Flatten`.
    Flatten,
    /// `Dropout(rate, seed)`.
    Dropout {
        /// Rate.
        rate: f32,
        /// Its own generator's seed, if any.
        seed: Option<u64>,
    },
}

impl Layer {
    /// The Keras kind name used in weight names (`dense`, `conv2d`, …).
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            LayerKind::Dense(_) => "dense",
            LayerKind::Conv { kernel, .. } => match kernel.len() {
                1 => "conv1d",
                2 => "conv2d",
                _ => "conv3d",
            },
            LayerKind::Pool { max: true, .. } => "max_pooling",
            LayerKind::Pool { .. } => "average_pooling",
            LayerKind::Flatten => "flatten",
            LayerKind::Dropout { .. } => "dropout",
        }
    }

    /// The shapes of its weight tensors (kernel, then bias when used).
    pub fn weight_shapes(&self) -> Vec<Vec<usize>> {
        match &self.kind {
            LayerKind::Dense(w) => {
                let (i, o) = (
                    self.input.iter().product(),
                    *self.output.last().unwrap_or(&0),
                );
                let mut v = vec![vec![i, o]];
                if w.use_bias {
                    v.push(vec![o]);
                }
                v
            }
            LayerKind::Conv {
                w, filters, kernel, ..
            } => {
                let mut k = kernel.clone();
                k.push(*self.input.last().unwrap_or(&0));
                k.push(*filters);
                let mut v = vec![k];
                if w.use_bias {
                    v.push(vec![*filters]);
                }
                v
            }
            _ => Vec::new(),
        }
    }

    /// The weighted-layer settings of a Dense or conv layer.
    pub fn weighted(&self) -> Option<&Weighted> {
        match &self.kind {
            LayerKind::Dense(w) | LayerKind::Conv { w, .. } => Some(w),
            _ => None,
        }
    }
}

/// An optimizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// `SGD(learning_rate, momentum, nesterov)`.
    Sgd {
        /// Momentum (0: plain SGD).
        momentum: f32,
        /// Nesterov.
        nesterov: bool,
    },
    /// `Adam` / `AdamW`.
    Adam {
        /// β1.
        beta_1: f32,
        /// β2.
        beta_2: f32,
        /// ε.
        epsilon: f32,
        /// AdamW's decoupled weight decay.
        weight_decay: Option<f32>,
    },
}

/// A learning rate or schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// A constant rate.
    Constant(f32),
    /// Keras `ExponentialDecay`.
    Exponential {
        /// Initial learning rate.
        initial: f32,
        /// Steps per decay period.
        decay_steps: u32,
        /// Factor per period.
        decay_rate: f32,
        /// Floor the exponent.
        staircase: bool,
    },
}

/// Gradient clipping.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Clip {
    /// `clipvalue`.
    pub value: Option<f32>,
    /// `clipnorm`.
    pub norm: Option<f32>,
    /// `global_clipnorm`.
    pub global_norm: Option<f32>,
}

/// A loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// `mean_squared_error`.
    MeanSquaredError,
    /// `mean_absolute_error`.
    MeanAbsoluteError,
    /// `binary_crossentropy`.
    BinaryCrossentropy {
        /// On logits.
        from_logits: bool,
        /// Keras `label_smoothing` (0: none).
        label_smoothing: f32,
    },
    /// `categorical_crossentropy`.
    CategoricalCrossentropy {
        /// On logits.
        from_logits: bool,
        /// Keras `label_smoothing` (0: none).
        label_smoothing: f32,
    },
    /// `sparse_categorical_crossentropy`.
    SparseCategoricalCrossentropy {
        /// On logits.
        from_logits: bool,
    },
}

/// How the model trains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Training {
    /// Optimizer.
    pub optimizer: Optimizer,
    /// Learning rate.
    pub schedule: Schedule,
    /// Clipping.
    pub clip: Clip,
    /// Loss.
    pub loss: Loss,
    /// Mini-batch size (the last partial batch is kept).
    pub batch_size: usize,
    /// Epochs.
    pub epochs: u32,
}

impl Workload {
    /// Parses and checks a workload file's text.
    ///
    /// # Errors
    /// What is missing, malformed or inconsistent, naming the key.
    pub fn parse(text: &str) -> Result<Self, String> {
        parse::workload(text)
    }

    /// [`Workload::parse`] of a file.
    ///
    /// # Errors
    /// The file cannot be read, or [`Workload::parse`]'s errors (prefixed with the path).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Values per input sample.
    pub fn input_len(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// Values per output.
    pub fn output_len(&self) -> usize {
        self.layers
            .last()
            .map_or(self.input_len(), |l| l.output.iter().product())
    }

    /// Number of trainable scalars (a frozen layer's weights are not).
    pub fn params(&self) -> usize {
        self.all_params() - self.frozen_params()
    }

    /// Number of scalars of the frozen layers (`"trainable": false`: constants in flash).
    pub fn frozen_params(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| l.weighted().is_some_and(|w| !w.trainable))
            .flat_map(Layer::weight_shapes)
            .map(|s| s.iter().product::<usize>())
            .sum()
    }

    /// Number of scalars of every layer, frozen or not.
    pub fn all_params(&self) -> usize {
        self.weights.iter().map(|t| t.data.len()).sum()
    }

    /// Sets an L2 kernel regularizer of `l2` on every Dense kernel (the firmware's `l2`
    /// feature on the benchmark workloads).
    pub fn set_dense_kernel_l2(&mut self, l2: f32) {
        for l in &mut self.layers {
            if let LayerKind::Dense(w) = &mut l.kind {
                w.regs.kernel = Some(Reg::L2(l2));
            }
        }
    }
}
