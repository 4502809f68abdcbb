//! A firmware workload file trained on the host by the core's engine, through the std
//! runtime's model built at run time (`microfit::model::Sequential`) — a second path from the
//! same file, independent of the typed module `microfit-workload` generates for the chip: the
//! two must give the same bits.

use std::path::Path;

use microfit::core::backend::Portable;
use microfit::core::constraint::{Axes, Constraint};
use microfit::core::layer::conv::Padding;
use microfit::core::optim::schedule::{ExponentialDecay, Schedule as CoreSchedule};
use microfit::core::optim::{AnyOptimizer, Clip, Common};
use microfit::core::params::{Params, weights_hash};
use microfit::core::prelude::*;
use microfit::data::{Dataset, ScalerKind, Target};
use microfit::formats::schema::{
    DataConfig, OptimizerConfig, OptimizerKind, SplitConfig, TrainConfig,
};
use microfit::model::{LayerSpec, ModelSpec, Sequential, VecParams};
use microfit_workload::{
    Activation as A, Constraint as C, LayerKind, Loss as L, Optimizer as O, Reg as R,
    Schedule as S, Targets as T, Workload,
};

use crate::qemu::EpochLine;

/// A host run: every epoch's line, the final full-data evaluation and the weights' hash.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRun {
    /// The epochs, in order.
    pub epochs: Vec<EpochLine>,
    /// The evaluation's data loss.
    pub eval_loss: f32,
    /// The evaluation's loss (data loss + penalties).
    pub eval_total_loss: f32,
    /// FNV-1a 64 of the final weights' bits.
    pub hash: u64,
}

fn activation(a: A) -> Activation {
    match a {
        A::Linear => Activation::Linear,
        A::Relu => Activation::Relu,
        A::Sigmoid => Activation::Sigmoid,
        A::Tanh => Activation::Tanh,
        A::Softmax => Activation::Softmax,
        A::LeakyRelu(s) => Activation::LeakyRelu(s),
    }
}

fn reg(r: R) -> Reg {
    match r {
        R::L1(f) => Reg::L1 { l1: f },
        R::L2(f) => Reg::L2 { l2: f },
        R::L1L2(a, b) => Reg::L1L2 { l1: a, l2: b },
        R::Orthogonal(f, rows) => Reg::Orthogonal {
            factor: f,
            mode: if rows {
                OrthoMode::Rows
            } else {
                OrthoMode::Columns
            },
        },
    }
}

fn constraint(c: &C) -> Constraint {
    match c {
        C::MaxNorm { max_value, axis } => Constraint::max_norm(*max_value, Axes::list(axis)),
        C::MinMaxNorm {
            min_value,
            max_value,
            rate,
            axis,
        } => Constraint::min_max_norm(*min_value, *max_value, *rate, Axes::list(axis)),
        C::NonNeg => Constraint::NonNeg,
        C::UnitNorm { axis } => Constraint::unit_norm(Axes::list(axis)),
    }
}

fn padding(same: bool) -> Padding {
    if same { Padding::Same } else { Padding::Valid }
}

/// The workload's model as a run-time spec.
pub fn spec(w: &Workload) -> ModelSpec {
    let layers = w
        .layers
        .iter()
        .map(|l| {
            let mut s = match &l.kind {
                LayerKind::Dense(d) => LayerSpec::dense(l.output[0], activation(d.activation)),
                LayerKind::Conv {
                    w: d,
                    filters,
                    kernel,
                    strides,
                    dilation,
                    same,
                } => {
                    let a = activation(d.activation);
                    let s = match kernel.len() {
                        1 => LayerSpec::conv1d(*filters, kernel[0], a),
                        2 => LayerSpec::conv2d(*filters, [kernel[0], kernel[1]], a),
                        _ => LayerSpec::conv3d(*filters, [kernel[0], kernel[1], kernel[2]], a),
                    };
                    s.with_strides(strides)
                        .with_dilation_rate(dilation)
                        .with_padding(padding(*same))
                }
                LayerKind::Pool {
                    max,
                    pool,
                    strides,
                    same,
                } => {
                    let s = if *max {
                        LayerSpec::max_pooling(pool)
                    } else {
                        LayerSpec::average_pooling(pool)
                    };
                    s.with_strides(strides).with_padding(padding(*same))
                }
                LayerKind::Flatten => LayerSpec::Flatten,
                LayerKind::Dropout { rate, seed } => LayerSpec::Dropout {
                    rate: *rate,
                    seed: *seed,
                },
            };
            if let (Some(d), Some(c)) = (l.weighted(), s.dense_config_mut()) {
                c.use_bias = d.use_bias;
                c.kernel_regularizer = d.regs.kernel.map(reg);
                c.bias_regularizer = d.regs.bias.map(reg);
                c.activity_regularizer = d.regs.activity.map(reg);
                c.trainable = d.trainable;
                c.kernel_constraint = d.kernel_constraint.as_ref().map(constraint);
                c.bias_constraint = d.bias_constraint.as_ref().map(constraint);
            }
            s
        })
        .collect();
    ModelSpec {
        input_shape: w.input_shape.clone(),
        layers,
    }
}

fn schedule(s: S) -> CoreSchedule {
    match s {
        S::Constant(lr) => CoreSchedule::Constant(lr),
        S::Exponential {
            initial,
            decay_steps,
            decay_rate,
            staircase,
        } => CoreSchedule::Exponential(
            ExponentialDecay::new(initial, decay_steps, decay_rate, staircase).unwrap(),
        ),
    }
}

/// The workload's optimizer as the schema's configuration.
pub fn optimizer_config(w: &Workload) -> OptimizerConfig {
    let t = &w.training;
    let mut c = OptimizerConfig::new(OptimizerKind::Sgd, schedule(t.schedule));
    c.common = Common {
        weight_decay: None,
        clip: Clip {
            clipvalue: t.clip.value,
            clipnorm: t.clip.norm,
            global_clipnorm: t.clip.global_norm,
        },
        ..Common::default()
    };
    match t.optimizer {
        O::Adam {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
        } => {
            c.kind = if weight_decay.is_some() {
                OptimizerKind::AdamW
            } else {
                OptimizerKind::Adam
            };
            (c.beta_1, c.beta_2, c.epsilon) = (beta_1, beta_2, epsilon);
            c.common.weight_decay = weight_decay;
        }
        O::Sgd { momentum, nesterov } => (c.momentum, c.nesterov) = (momentum, nesterov),
    }
    c
}

/// The workload's optimizer, fresh.
pub fn optimizer<P: Params>(w: &Workload, like: &P) -> AnyOptimizer<P> {
    optimizer_config(w).build(like).unwrap()
}

/// The workload as the schema's training configuration (batches in file order), its
/// initial weights and its data: what `microfit export --target firmware` starts from.
pub fn train_config(w: &Workload) -> (TrainConfig, VecParams, VecParams, Dataset) {
    let cfg = TrainConfig {
        data: DataConfig::default(),
        epochs: w.training.epochs,
        batch_size: w.training.batch_size as u32,
        seed: 0,
        shuffle: false,
        loss: loss(w),
        scaling: ScalerKind::None,
        split: SplitConfig::default(),
        early_stopping: None,
        save_best: None,
        optimizer: optimizer_config(w),
        model: spec(w),
        class_weight: None,
        reduce_lr_on_plateau: None,
    };
    // The trainable layers' tensors and the frozen layers', each in Keras order.
    let (mut params, mut frozen) = (VecParams::default(), VecParams::default());
    let mut tensors = w.weights.iter();
    for l in &w.layers {
        let Some(d) = l.weighted() else { continue };
        for _ in l.weight_shapes() {
            let t = tensors.next().expect("a tensor per weight");
            let store = if d.trainable {
                &mut params
            } else {
                &mut frozen
            };
            store.names.push(t.name.clone());
            store.shapes.push(t.shape.clone());
            store.tensors.push(t.data.clone());
        }
    }
    let target = match &w.targets {
        T::Classes { labels, classes } => Target::Classes {
            labels: labels.clone(),
            class_names: (0..*classes).map(|c| c.to_string()).collect(),
        },
        T::Dense { values, .. } => Target::Regression {
            values: values.clone(),
        },
    };
    let data = Dataset {
        name: w.name.clone(),
        features: w.x.clone(),
        feature_names: (0..w.input_len()).map(|j| format!("x{j}")).collect(),
        target_name: "y".into(),
        target,
    };
    (cfg, params, frozen, data)
}

/// The workload's loss.
pub fn loss(w: &Workload) -> Loss {
    match w.training.loss {
        L::MeanSquaredError => Loss::MeanSquaredError,
        L::MeanAbsoluteError => Loss::MeanAbsoluteError,
        L::BinaryCrossentropy {
            from_logits,
            label_smoothing,
        } => Loss::BinaryCrossentropy {
            from_logits,
            label_smoothing,
        },
        L::CategoricalCrossentropy {
            from_logits,
            label_smoothing,
        } => Loss::CategoricalCrossentropy {
            from_logits,
            label_smoothing,
        },
        L::SparseCategoricalCrossentropy { from_logits } => {
            Loss::SparseCategoricalCrossentropy { from_logits }
        }
    }
}

/// The workload's model with its initial weights, on a tile of `tile` samples; its generator
/// as a typed network's built with its weights (`Rng::new(0)`).
pub fn model(w: &Workload, tile: usize) -> Sequential {
    let mut m = spec(w).build(0).expect("the workload's model");
    // The file's tensors in Keras order: a frozen layer's to the model's frozen weights, the
    // others to its trainable weights.
    let mut tensors = w.weights.iter();
    let (mut trainable, mut frozen) = (0, 0);
    for l in &w.layers {
        let Some(d) = l.weighted() else { continue };
        for _ in l.weight_shapes() {
            let t = tensors.next().expect("a tensor per weight");
            if d.trainable {
                m.params.tensor_mut(trainable).copy_from_slice(&t.data);
                trainable += 1;
            } else {
                m.frozen.tensors[frozen].copy_from_slice(&t.data);
                frozen += 1;
            }
        }
    }
    assert_eq!(
        (trainable, frozen),
        (m.params.tensor_count(), m.frozen.tensors.len())
    );
    m.set_tile(tile);
    m.set_rng(Rng::new(0));
    m
}

/// Trains the workload file `path` on the host (the firmware's feature `l2` is `l2`: an L2
/// kernel regularizer on every Dense layer): every epoch, then a full-data evaluation.
pub fn host_train(path: &Path, l2: Option<f32>) -> HostRun {
    let mut w = Workload::load(path).unwrap_or_else(|e| panic!("{e}"));
    if let Some(l2) = l2 {
        w.set_dense_kernel_l2(l2);
    }
    let targets = match &w.targets {
        T::Classes { labels, .. } => Targets::Classes(labels),
        T::Dense { values, width } => Targets::Dense {
            values,
            width: *width,
        },
    };
    let data = Samples::new(&w.x, w.input_len(), targets).unwrap();
    let m = model(&w, 1);
    let opt = optimizer(&w, &m.params);
    let mut t = Trainer::<_, _, Portable>::with_backend(m, opt, loss(&w));
    let mut epochs = Vec::new();
    for e in 1..=w.training.epochs {
        let r = t
            .fit_epoch(&data, w.training.batch_size, None)
            .unwrap_or_else(|err| panic!("{}: epoch {e}: {err}", w.name));
        epochs.push(EpochLine {
            epoch: e,
            data_loss: r.data_loss,
            loss: r.loss,
            accuracy: r.metrics.accuracy(),
        });
    }
    let ev = t.evaluate(&data, w.samples).unwrap();
    HostRun {
        epochs,
        eval_loss: ev.data_loss,
        eval_total_loss: ev.loss,
        hash: weights_hash(&t.model.params),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../firmware/data")
            .join(name)
    }

    /// The bundled W1 trained through this path reaches `reference.py`'s figures.
    #[test]
    fn w1_matches_reference_py() {
        let r = host_train(&file("w1.json"), None);
        assert!((r.eval_loss - 0.042604).abs() < 1e-4, "{}", r.eval_loss);
        let r = host_train(&file("w1.json"), Some(1e-3));
        assert!((r.eval_loss - 0.049420).abs() < 1e-4, "{}", r.eval_loss);
    }

    /// The test workloads train (and print their figures for the firmware's docs).
    #[test]
    fn test_workloads_train() {
        for name in ["cnn.json", "regression.json", "sgd_momentum.json"] {
            let r = host_train(&file(name), None);
            let last = r.epochs.last().unwrap();
            eprintln!(
                "{name}: loss {} -> {}, acc {} -> {}, eval loss {}",
                r.epochs[0].data_loss,
                last.data_loss,
                r.epochs[0].accuracy,
                last.accuracy,
                r.eval_loss
            );
            assert!(
                last.data_loss < r.epochs[0].data_loss,
                "{name} did not learn"
            );
        }
    }
}
