//! The training math of the firmware: **microfit-core itself** — a typed
//! `Network<(Dense<I, H>, Dense<H, O>)>` with optional kernel L2, Keras Adam and the core's
//! `fit_epoch` — fed from the workload arrays in flash. The host runs the very same code
//! (`tests/tests/host_vs_firmware.rs` compares every epoch's bits), so nothing here
//! re-implements any math.
//!
//! What is the chip's own, all bit-identical to the host's run:
//! * the model, the loss and Adam's hyperparameters are compile-time constants
//!   ([`Mlp`] through `microfit_core::layer::constant`, [`LOSS`], [`ADAM`]): the compiler keeps
//!   only the code they use (no other activation, regularizer, loss, schedule or clipping);
//! * Adam's `1 - β` are evaluated at compile time ([`ONE_MINUS`]), so no double-precision code
//!   is linked;
//! * the core's engine runs on the chip's backend ([`Chip`]: the FPU's square root).

use microfit_core::layer::constant::{Const, ConstLayer};
use microfit_core::layer::dense::DenseParams;
use microfit_core::layer::pair::DensePair;
use microfit_core::optim::adam::keras_one_minus;
use microfit_core::optim::schedule::Schedule;
use microfit_core::optim::{AdamConfig, AdamState, Clip, Common};
use microfit_core::params::Params;
use microfit_core::prelude::*;
use microfit_core::regularizer::L2;
use microfit_core::train::EpochReport;

use crate::fpu::Chip;
use crate::workload as wl;

/// The model of a workload as a compile-time constant (see `microfit_core::layer::constant`):
/// Dense(I→H, relu) → Dense(H→O, softmax), with kernel L2 `f32::from_bits(L2B)` on both
/// kernels when `L2B != 0` (an `f32` cannot be a const generic, its bits can). The compiler
/// sees the activations and the regularizer, so only their code is linked, and the layer
/// configuration takes no RAM.
#[derive(Debug)]
pub struct Mlp<const I: usize, const H: usize, const O: usize, const L2B: u32>;

/// `Dense::new(activation)` with kernel L2 `f32::from_bits(l2_bits)` unless the bits are 0.
/// The regularizer type is the core's typed [`L2`] (Keras' `L2`, the same code as `Reg::L2`):
/// only its code is linked.
const fn dense<const I: usize, const O: usize>(
    activation: Activation,
    l2_bits: u32,
) -> Dense<I, O, L2> {
    let mut d = Dense::new(activation);
    if l2_bits != 0 {
        d.config.kernel_regularizer = Some(L2 {
            l2: f32::from_bits(l2_bits),
        });
    }
    d
}

impl<const I: usize, const H: usize, const O: usize, const L2B: u32> ConstLayer
    for Mlp<I, H, O, L2B>
{
    type Layer = DensePair<I, H, O, L2>;
    const LAYER: Self::Layer = DensePair::new((
        dense(Activation::Relu, L2B),
        dense(Activation::Softmax, L2B),
    ));
}

/// Named penalties of [`Mlp`] with kernel L2 `L2B`: one per kernel, or none (the size of the
/// epoch report's penalty list: `EpochReport<{ penalties(L2B) }>`).
pub const fn penalties(l2_bits: u32) -> usize {
    if l2_bits == 0 { 0 } else { 2 }
}

/// The layers (zero-sized: the configuration is [`Mlp`]'s constant).
pub type Layers<const I: usize, const H: usize, const O: usize, const L2B: u32> =
    Const<Mlp<I, H, O, L2B>>;
/// Its weights (Keras variable order: dense_0 kernel, bias, dense_1 kernel, bias).
pub type Weights<const I: usize, const H: usize, const O: usize> =
    (DenseParams<I, H>, DenseParams<H, O>);

/// The loss of every workload (with the softmax output, Keras takes the cached-logits path).
pub const LOSS: Loss = Loss::CategoricalCrossentropy { from_logits: false };

/// Adam's hyperparameters of the selected workload; Keras' defaults otherwise (no clipping,
/// no weight decay).
pub const ADAM: AdamConfig = AdamConfig {
    learning_rate: Schedule::Constant(wl::LEARNING_RATE),
    beta_1: wl::BETA_1,
    beta_2: wl::BETA_2,
    epsilon: wl::EPSILON,
    common: Common {
        weight_decay: None,
        clip: Clip {
            clipvalue: None,
            clipnorm: None,
            global_clipnorm: None,
        },
    },
};

/// `(1 - β1, 1 - β2)` of [`ADAM`] as Keras computes them (`keras_one_minus`, in double
/// precision), evaluated at compile time.
pub const ONE_MINUS: (f32, f32) = (keras_one_minus(ADAM.beta_1), keras_one_minus(ADAM.beta_2));

/// The core's Keras Adam state ([`AdamState`]: `m`, `v`, `t`; the hyperparameters are the
/// constant [`ADAM`] and [`ONE_MINUS`], so they take no RAM) stepped on the chip's backend
/// ([`Chip`]: its square root): `AdamState::step`, the same bits as [`Optimizer::step`] of an
/// `Adam` built with [`ADAM`].
#[derive(Clone, Debug, PartialEq)]
pub struct ChipAdam<P> {
    /// The optimizer's slots and step count.
    pub state: AdamState<P>,
}

impl<P: Params> Optimizer<P> for ChipAdam<P> {
    const SLOTS: usize = 2;
    #[inline]
    fn step<B: Backend>(&mut self, w: &mut P, g: &mut P) {
        self.state.step::<B>(&ADAM, ONE_MINUS, w, g);
    }
    fn iterations(&self) -> u32 {
        self.state.iterations()
    }
    fn reset(&mut self) {
        self.state.reset();
    }
}

/// A fresh Adam state (zero slots, step 0). Never inlined, so that it is built straight into
/// the caller's destination (its return slot) rather than in a temporary that is then copied
/// (the compiler does not merge that temporary).
#[inline(never)]
pub fn fresh_adam<P: ZeroParams>() -> AdamState<P> {
    AdamState::zeroed()
}

/// Everything training changes: weights, gradients and activations (the network) and Adam's
/// slots: `4 · PARAMS · 4` B + activations.
#[derive(Clone, Debug)]
pub struct Model<const I: usize, const H: usize, const O: usize, const L2B: u32> {
    /// Weights, gradients, activation buffers.
    pub net: Network<Layers<I, H, O, L2B>>,
    /// Adam and its slots.
    pub opt: ChipAdam<Weights<I, H, O>>,
}

impl<const I: usize, const H: usize, const O: usize, const L2B: u32> Model<I, H, O, L2B> {
    /// The model with zero weights and a fresh Adam with [`ADAM`] (checked by [`Model::load`]).
    ///
    /// Meant to initialise a local in place (`let mut model = Model::zeroed();`): inlined into
    /// the caller, which writes the network's zeros straight into the local and passes the
    /// optimizer's place to [`fresh_adam`] as its return slot. Assembled here instead, the
    /// optimizer would pass through a temporary of its size (1 KB for W1) on the stack. (At
    /// `opt-level = 3`, the `fw` profile; other levels may still copy through the stack.)
    #[inline(always)]
    pub fn zeroed() -> Self {
        Model {
            opt: ChipAdam {
                state: fresh_adam(),
            },
            net: Network::with_params(Const::new(), ZeroParams::zeroed()),
        }
    }

    /// Checks [`ADAM`], resets the optimizer and loads the initial weights (from flash): the
    /// start of a run, in place.
    ///
    /// # Errors
    /// Invalid hyperparameters (`Error::InvalidHyperparameter`).
    pub fn load(
        &mut self,
        kernel0: &[[f32; H]; I],
        bias0: &[f32; H],
        kernel1: &[[f32; O]; H],
        bias1: &[f32; O],
    ) -> Result<(), Error> {
        ADAM.validate()?;
        self.opt.reset();
        let w = &mut self.net.params;
        copy(w.0.kernel.as_flattened_mut(), kernel0.as_flattened());
        copy(&mut w.0.bias, bias0);
        copy(w.1.kernel.as_flattened_mut(), kernel1.as_flattened());
        copy(&mut w.1.bias, bias1);
        Ok(())
    }
}

/// `dst ← src`, value by value, through `black_box` so that the compiler keeps the loop rather
/// than calling `memcpy`: it runs once per training run, and compiler-builtins' `memcpy` (with
/// `__aeabi_memcpy4`) would be 0.9 KB of flash linked for it alone. One loop, not inlined.
#[inline(never)]
fn copy(dst: &mut [f32], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = core::hint::black_box(s);
    }
}

/// One epoch over `x`/`labels` in file order, mini-batches of `batch_size`, its report in
/// `report`: the core's `fit_epoch_into` with the constant [`LOSS`]. `N`: the named penalties
/// the report keeps ([`penalties`] is enough for [`Mlp`]).
///
/// # Errors
/// Shape, label and non-finite errors of the core's training step.
#[inline(never)]
pub fn train_epoch<
    const I: usize,
    const H: usize,
    const O: usize,
    const L2B: u32,
    const N: usize,
>(
    model: &mut Model<I, H, O, L2B>,
    x: &[[f32; I]],
    labels: &[u32],
    batch_size: usize,
    report: &mut EpochReport<N>,
) -> Result<(), Error> {
    let data = Samples::new(x.as_flattened(), I, Targets::Classes(labels))?;
    microfit_core::train::fit_epoch_into::<Chip, _, _, N>(
        &mut model.net,
        &mut model.opt,
        LOSS,
        &data,
        batch_size,
        None,
        report,
    )
}

/// Full-data evaluation (one batch: the activity-free penalties are those of the weights).
///
/// # Errors
/// Shape and label errors.
pub fn evaluate<const I: usize, const H: usize, const O: usize, const L2B: u32>(
    model: &mut Model<I, H, O, L2B>,
    x: &[[f32; I]],
    labels: &[u32],
) -> Result<EpochReport, Error> {
    let data = Samples::new(x.as_flattened(), I, Targets::Classes(labels))?;
    microfit_core::train::evaluate::<Chip, _>(&mut model.net, LOSS, &data, x.len())
}

/// FNV-1a 64 of the weights' bits in Keras variable order (`microfit_core::params::weights_hash`).
pub fn weights_hash<const I: usize, const H: usize, const O: usize, const L2B: u32>(
    model: &Model<I, H, O, L2B>,
) -> u64 {
    microfit_core::params::weights_hash(&model.net.params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<const L2B: u32>() -> (EpochReport, u64) {
        let mut model =
            Box::new(Model::<{ wl::INPUTS }, { wl::HIDDEN }, { wl::CLASSES }, L2B>::zeroed());
        let m = &mut *model;
        m.load(
            &wl::MICROFIT_INIT_DENSE_0_KERNEL,
            &wl::MICROFIT_INIT_DENSE_0_BIAS,
            &wl::MICROFIT_INIT_DENSE_1_KERNEL,
            &wl::MICROFIT_INIT_DENSE_1_BIAS,
        )
        .unwrap();
        let mut rep = EpochReport::<2>::default();
        for _ in 0..wl::EPOCHS {
            train_epoch(
                m,
                &wl::MICROFIT_DATASET_X,
                &wl::MICROFIT_DATASET_LABELS,
                wl::BATCH_SIZE,
                &mut rep,
            )
            .unwrap();
        }
        let ev = evaluate(m, &wl::MICROFIT_DATASET_X, &wl::MICROFIT_DATASET_LABELS).unwrap();
        (ev, weights_hash(m))
    }

    /// Kernel L2 of the workload: 1e-3 for W1, 1e-4 for W2 (`app::L2`).
    const L2_BITS: u32 = if cfg!(feature = "w2") {
        1e-4f32
    } else {
        1e-3f32
    }
    .to_bits();

    /// Final figures of `reference.py` (NumPy float32): W1 0.042604 / 0.986667 (L2 1e-3:
    /// 0.049420 / 0.98); W2 0.252740 / 0.97 (L2 1e-4: 0.241892 / 0.97).
    #[test]
    fn matches_reference_py() {
        let (plain, with_l2) = match wl::NAME {
            "W1" => ((0.042604, 0.986667), (0.049420, 0.98)),
            _ => ((0.252740, 0.97), (0.241892, 0.97)),
        };
        for ((ev, _), (want_loss, want_acc)) in [(run::<0>(), plain), (run::<L2_BITS>(), with_l2)] {
            assert!(
                (ev.data_loss - want_loss).abs() < 1e-4,
                "loss {}",
                ev.data_loss
            );
            assert!(
                (ev.metrics.accuracy() - want_acc).abs() < 1e-5,
                "acc {}",
                ev.metrics.accuracy()
            );
        }
    }

    #[test]
    fn deterministic() {
        let (a, ha) = run::<L2_BITS>();
        let (b, hb) = run::<L2_BITS>();
        assert_eq!((a, ha), (b, hb));
    }
}
