//! The training math of the firmware: **microfit-core itself** — a typed
//! `Network<(Dense<I, H>, Dense<H, O>)>` with optional kernel L2, Keras Adam and the core's
//! `Trainer` — fed from the workload arrays in flash. The host runs the very same code
//! (`tests/tests/host_vs_firmware.rs` compares every epoch's bits), so nothing here
//! re-implements any math.

use microfit_core::layer::dense::DenseParams;
use microfit_core::optim::AdamConfig;
use microfit_core::optim::schedule::Schedule;
use microfit_core::prelude::*;
use microfit_core::train::EpochReport;

/// The layers of a workload: Dense(I→H, relu) → Dense(H→O, softmax).
pub type Layers<const I: usize, const H: usize, const O: usize> = (Dense<I, H>, Dense<H, O>);
/// Its weights (Keras variable order: dense_0 kernel, bias, dense_1 kernel, bias).
pub type Weights<const I: usize, const H: usize, const O: usize> =
    (DenseParams<I, H>, DenseParams<H, O>);
/// Model, Adam state and loss: everything training changes (`4 · PARAMS · 4` B + activations).
pub type Model<const I: usize, const H: usize, const O: usize> =
    Trainer<Network<Layers<I, H, O>>, Adam<Weights<I, H, O>>>;

/// Hyperparameters of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper {
    /// Adam learning rate.
    pub learning_rate: f32,
    /// Adam beta_1.
    pub beta_1: f32,
    /// Adam beta_2.
    pub beta_2: f32,
    /// Adam epsilon.
    pub epsilon: f32,
    /// Kernel L2 factor on both kernels (`0.0` = no regularizer).
    pub l2: f32,
    /// Mini-batch size (the last partial batch is kept).
    pub batch_size: usize,
}

/// The layers with the workload's regularizer.
pub fn layers<const I: usize, const H: usize, const O: usize>(l2: f32) -> Layers<I, H, O> {
    let mut a = Dense::new(Activation::Relu);
    let mut b = Dense::new(Activation::Softmax);
    if l2 > 0.0 {
        a = a.kernel_regularizer(Reg::L2 { l2 });
        b = b.kernel_regularizer(Reg::L2 { l2 });
    }
    (a, b)
}

/// Builds the model in `slot` from the initial weights, in place: the model is created with
/// zero weights (which the compiler writes straight into `slot` with a memset) and the initial
/// weights are then copied from flash into it, so no second copy of the model passes through
/// the stack.
///
/// # Errors
/// Invalid hyperparameters (`Error::InvalidHyperparameter`).
pub fn build_in<'a, const I: usize, const H: usize, const O: usize>(
    slot: &'a mut Option<Model<I, H, O>>,
    hp: &Hyper,
    kernel0: &[[f32; H]; I],
    bias0: &[f32; H],
    kernel1: &[[f32; O]; H],
    bias1: &[f32; O],
) -> Result<&'a mut Model<I, H, O>, Error> {
    let net = Network::with_params(layers(hp.l2), <Weights<I, H, O> as ZeroParams>::zeroed());
    let adam = Adam::with_config(
        AdamConfig {
            learning_rate: Schedule::Constant(hp.learning_rate),
            beta_1: hp.beta_1,
            beta_2: hp.beta_2,
            epsilon: hp.epsilon,
            ..AdamConfig::default()
        },
        &net.params,
    )?;
    let m = slot.insert(Trainer::new(
        net,
        adam,
        Loss::CategoricalCrossentropy { from_logits: false },
    ));
    let w = &mut m.model.params;
    w.0.kernel.copy_from_slice(kernel0);
    w.0.bias.copy_from_slice(bias0);
    w.1.kernel.copy_from_slice(kernel1);
    w.1.bias.copy_from_slice(bias1);
    Ok(m)
}

/// One epoch over `x`/`labels` in file order, mini-batches of `batch_size`.
///
/// # Errors
/// Shape, label and non-finite errors of the core's training step.
#[inline(never)]
pub fn train_epoch<const I: usize, const H: usize, const O: usize>(
    model: &mut Model<I, H, O>,
    x: &[[f32; I]],
    labels: &[u32],
    batch_size: usize,
) -> Result<EpochReport, Error> {
    let data = Samples::new(x.as_flattened(), I, Targets::Classes(labels))?;
    model.fit_epoch(&data, batch_size, None)
}

/// Full-data evaluation (one batch: the activity-free penalties are those of the weights).
///
/// # Errors
/// Shape and label errors.
pub fn evaluate<const I: usize, const H: usize, const O: usize>(
    model: &mut Model<I, H, O>,
    x: &[[f32; I]],
    labels: &[u32],
) -> Result<EpochReport, Error> {
    let data = Samples::new(x.as_flattened(), I, Targets::Classes(labels))?;
    model.evaluate(&data, x.len())
}

/// FNV-1a 64 of the weights' bits in Keras variable order (`microfit_core::params::weights_hash`).
pub fn weights_hash<const I: usize, const H: usize, const O: usize>(model: &Model<I, H, O>) -> u64 {
    microfit_core::params::weights_hash(&model.model.params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload as wl;

    fn hyper(l2: f32) -> Hyper {
        Hyper {
            learning_rate: wl::LEARNING_RATE,
            beta_1: wl::BETA_1,
            beta_2: wl::BETA_2,
            epsilon: wl::EPSILON,
            l2,
            batch_size: wl::BATCH_SIZE,
        }
    }

    fn run(l2: f32) -> (EpochReport, u64) {
        let mut slot = Box::new(None);
        let m = build_in(
            &mut slot,
            &hyper(l2),
            &wl::MICROFIT_INIT_DENSE_0_KERNEL,
            &wl::MICROFIT_INIT_DENSE_0_BIAS,
            &wl::MICROFIT_INIT_DENSE_1_KERNEL,
            &wl::MICROFIT_INIT_DENSE_1_BIAS,
        )
        .unwrap();
        for _ in 0..wl::EPOCHS {
            train_epoch(m, &wl::MICROFIT_DATASET_X, &wl::MICROFIT_DATASET_LABELS, wl::BATCH_SIZE)
                .unwrap();
        }
        let ev = evaluate(m, &wl::MICROFIT_DATASET_X, &wl::MICROFIT_DATASET_LABELS).unwrap();
        (ev, weights_hash(m))
    }

    /// Final figures of `reference.py` (NumPy float32): W1 0.042604 / 0.986667 (L2 1e-3:
    /// 0.049420 / 0.98); W2 0.252740 / 0.97 (L2 1e-4: 0.241892 / 0.97).
    #[test]
    fn matches_reference_py() {
        let (l2, want_loss, want_acc) = match (wl::NAME, cfg!(feature = "l2")) {
            ("W1", false) => (0.0, 0.042604, 0.986667),
            ("W1", true) => (1e-3, 0.049420, 0.98),
            ("W2", false) => (0.0, 0.252740, 0.97),
            (_, _) => (1e-4, 0.241892, 0.97),
        };
        let (ev, _) = run(l2);
        assert!((ev.data_loss - want_loss).abs() < 1e-4, "loss {}", ev.data_loss);
        assert!((ev.metrics.accuracy() - want_acc).abs() < 1e-5, "acc {}", ev.metrics.accuracy());
    }

    #[test]
    fn deterministic() {
        let (a, ha) = run(0.0);
        let (b, hb) = run(0.0);
        assert_eq!((a, ha), (b, hb));
    }
}
