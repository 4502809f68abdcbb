//! The three host workloads of `WORKLOAD.md` (this directory): data, initial weights, layers
//! and hyperparameters. Shared source (`#[path]`-included) by `examples/host_workloads.rs`,
//! `benches/training.rs` and `tests/engine_identity.rs`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use microfit::core::layer::conv::ConvParams;
use microfit::core::layer::dense::DenseParams;
use microfit::core::prelude::*;

/// Where the CSV files are.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/host_data")
}

/// A headerless numeric CSV as rows.
pub fn read_csv(path: &Path) -> Vec<Vec<f32>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .map(|v| v.trim().parse::<f32>().expect("number"))
                .collect()
        })
        .collect()
}

/// A data file: features row-major and class labels (last column).
#[derive(Debug, Clone)]
pub struct Data {
    /// `n · width` features.
    pub x: Vec<f32>,
    /// `n` labels.
    pub y: Vec<u32>,
    /// Features per row.
    pub width: usize,
}

impl Data {
    /// Reads `name` from [`data_dir`].
    pub fn read(name: &str) -> Self {
        let rows = read_csv(&data_dir().join(name));
        let width = rows[0].len() - 1;
        let mut x = Vec::with_capacity(rows.len() * width);
        let mut y = Vec::with_capacity(rows.len());
        for r in &rows {
            assert_eq!(r.len(), width + 1, "{name}: ragged row");
            x.extend_from_slice(&r[..width]);
            y.push(r[width] as u32);
        }
        Data { x, y, width }
    }

    /// The sample set.
    pub fn samples(&self) -> Samples<'_> {
        Samples::new(&self.x, self.width, Targets::Classes(&self.y)).expect("samples")
    }
}

/// An initial kernel (`rows × cols`, Keras layout) from `init/`.
pub fn read_kernel(name: &str, rows: usize, cols: usize) -> Vec<f32> {
    let r = read_csv(&data_dir().join("init").join(name));
    assert_eq!(r.len(), rows, "{name}: rows");
    assert!(r.iter().all(|row| row.len() == cols), "{name}: cols");
    r.concat()
}

fn dense_params<const I: usize, const O: usize>(name: &str) -> DenseParams<I, O> {
    let mut p = DenseParams::<I, O>::zeroed();
    p.tensor_mut(0).copy_from_slice(&read_kernel(name, I, O));
    p
}

/// The loss of all three models (class labels, softmax output: Keras' cached-logits path).
pub const LOSS: Loss = Loss::CategoricalCrossentropy {
    from_logits: false,
    label_smoothing: 0.0,
};

/// Model A: digits MLP 64 → 32 ReLU (kernel L2 1e-4) → 10 softmax; Adam 1e-3, batch 32, 20 epochs.
pub type ModelA = (Dense<64, 32>, Dense<32, 10>);
/// Batch size and epochs of model A.
pub const A_BATCH: usize = 32;
/// Epochs of model A.
pub const A_EPOCHS: usize = 20;

/// Model A's layers.
pub fn a_layers() -> ModelA {
    (
        Dense::new(Activation::Relu).kernel_regularizer(Reg::l2(1e-4)),
        Dense::new(Activation::Softmax),
    )
}

/// Model A's initial weights.
pub fn a_init() -> <ModelA as Layer>::Params {
    (
        dense_params("A_dense1_kernel.csv"),
        dense_params("A_dense2_kernel.csv"),
    )
}

/// Model A's optimizer.
pub fn a_opt<P: Params>(p: &P) -> Adam<P> {
    Adam::new(1e-3, p).expect("adam")
}

/// Model B: iris MLP 4 → 16 ReLU (kernel L2 1e-3) → 3 softmax; SGD 0.05 momentum 0.9, batch 8, 200 epochs.
pub type ModelB = (Dense<4, 16>, Dense<16, 3>);
/// Batch size of model B.
pub const B_BATCH: usize = 8;
/// Epochs of model B.
pub const B_EPOCHS: usize = 200;

/// Model B's layers.
pub fn b_layers() -> ModelB {
    (
        Dense::new(Activation::Relu).kernel_regularizer(Reg::l2(1e-3)),
        Dense::new(Activation::Softmax),
    )
}

/// Model B's initial weights.
pub fn b_init() -> <ModelB as Layer>::Params {
    (
        dense_params("B_dense1_kernel.csv"),
        dense_params("B_dense2_kernel.csv"),
    )
}

/// Model B's optimizer.
pub fn b_opt<P: Params>(p: &P) -> Momentum<P> {
    Momentum::new(0.05, 0.9, false, p).expect("sgd")
}

/// Model C: digits CNN, 8×8×1 → Conv2D 3×3×8 valid ReLU (kernel L2 1e-4) → MaxPool 2×2 →
/// Flatten 72 → Dense 10 softmax; Adam 1e-3, batch 32, 5 epochs.
pub type ModelC = (
    Conv2D<8, 8, 1, 8, 3, 3, 6, 6>,
    MaxPooling2D<6, 6, 8, 2, 2, 3, 3>,
    Flatten<[[[f32; 8]; 3]; 3], 72>,
    Dense<72, 10>,
);
/// Batch size of model C.
pub const C_BATCH: usize = 32;
/// Epochs of model C.
pub const C_EPOCHS: usize = 5;

/// Model C's layers.
pub fn c_layers() -> ModelC {
    (
        Conv2D::new(Activation::Relu).kernel_regularizer(Reg::l2(1e-4)),
        MaxPooling2D::new(),
        Flatten::new(),
        Dense::new(Activation::Softmax),
    )
}

/// Model C's initial weights (the conv kernel file is Keras HWIO `[(kh, kw, in), out]`, the
/// dense kernel's rows follow Keras' Flatten order of the `(3, 3, 8)` map: both are exactly
/// the row-major layouts of the typed layers).
pub fn c_init() -> <ModelC as Layer>::Params {
    let mut conv = ConvParams::<[[[[f32; 8]; 1]; 3]; 3], 8>::zeroed();
    conv.tensor_mut(0)
        .copy_from_slice(&read_kernel("C_conv_kernel.csv", 9, 8));
    (conv, (), (), dense_params("C_dense_kernel.csv"))
}

/// Model C's optimizer.
pub fn c_opt<P: Params>(p: &P) -> Adam<P> {
    Adam::new(1e-3, p).expect("adam")
}

/// The run-time form of a workload's model: its [`ModelSpec`](microfit::model::ModelSpec)
/// built into a `Sequential` with the typed model's initial weights (same names, same order).
pub fn sequential(
    spec: microfit::model::ModelSpec,
    init: &impl Params,
) -> microfit::model::Sequential {
    let mut m = spec.build(0).expect("spec");
    for i in 0..m.params.tensor_count() {
        m.params.tensor_mut(i).copy_from_slice(init.tensor(i));
    }
    m
}

/// Model A as a run-time spec.
pub fn a_spec() -> microfit::model::ModelSpec {
    use microfit::model::{LayerSpec, ModelSpec};
    ModelSpec {
        input_shape: vec![64],
        layers: vec![
            LayerSpec::dense(32, Activation::Relu).with_kernel_regularizer(Reg::l2(1e-4)),
            LayerSpec::dense(10, Activation::Softmax),
        ],
    }
}

/// Model B as a run-time spec.
pub fn b_spec() -> microfit::model::ModelSpec {
    use microfit::model::{LayerSpec, ModelSpec};
    ModelSpec {
        input_shape: vec![4],
        layers: vec![
            LayerSpec::dense(16, Activation::Relu).with_kernel_regularizer(Reg::l2(1e-3)),
            LayerSpec::dense(3, Activation::Softmax),
        ],
    }
}

/// Model C as a run-time spec.
pub fn c_spec() -> microfit::model::ModelSpec {
    use microfit::model::{LayerSpec, ModelSpec};
    ModelSpec {
        input_shape: vec![8, 8, 1],
        layers: vec![
            LayerSpec::conv2d(8, [3, 3], Activation::Relu).with_kernel_regularizer(Reg::l2(1e-4)),
            LayerSpec::max_pooling(&[2, 2]),
            LayerSpec::Flatten,
            LayerSpec::dense(10, Activation::Softmax),
        ],
    }
}
