//! Training that resumes after a reset (feature `persist`): the workload's model with an
//! optimizer whose state can be restored, a checkpoint after every epoch
//! ([`crate::persist`]), and the app that resumes from the last one.
//!
//! The model is [`crate::train`]'s (same layers, loss and Adam hyperparameters, the chip's
//! square root), with the core's [`Adam`] in place of `ChipAdam`: `Adam` lets the slots and the
//! step count be set (`m_mut`, `v_mut`, `set_iterations`), and it is stepped with the same
//! constant configuration (`Adam::step_with_config`), so the bits are the same as the firmware's
//! plain run (tested below, and on QEMU by `tests/tests/persist_qemu.rs`).

use embedded_storage::nor_flash::NorFlash;
use microfit_core::layer::constant::Const;
use microfit_core::optim::{Adam, Optimizer};
use microfit_core::params::{Params, ZeroParams};
use microfit_core::prelude::*;
use microfit_core::train::EpochReport;

use crate::persist::{Checkpoints, ParamSets, PersistError, Progress};
use crate::train::{ADAM, LOSS, Layers, ONE_MINUS, Weights};

/// Keras Adam with the workload's constant hyperparameters ([`ADAM`], [`ONE_MINUS`]) and the
/// chip's square root, as `crate::train::ChipAdam`, over the core's [`Adam`] (restorable).
#[derive(Clone, Debug)]
pub struct ResumableAdam<P>(pub Adam<P>);

impl<P: Params> Optimizer<P> for ResumableAdam<P> {
    const SLOTS: usize = 2;
    #[inline]
    fn step(&mut self, w: &mut P, g: &mut P) {
        self.0
            .step_with_config(&ADAM, ONE_MINUS, w, g, crate::fpu::sqrt);
    }
    fn iterations(&self) -> u32 {
        self.0.iterations()
    }
    fn reset(&mut self) {
        Optimizer::reset(&mut self.0);
    }
}

/// The workload's model and a restorable Adam: a [`ParamSets`] of three sets — the weights,
/// Adam's `m`, Adam's `v`.
#[derive(Clone, Debug)]
pub struct Resumable<const I: usize, const H: usize, const O: usize, const L2B: u32> {
    /// Weights, gradients, activation buffers.
    pub net: Network<Layers<I, H, O, L2B>>,
    /// Adam and its slots.
    pub opt: ResumableAdam<Weights<I, H, O>>,
}

impl<const I: usize, const H: usize, const O: usize, const L2B: u32> ParamSets
    for Resumable<I, H, O, L2B>
{
    type P = Weights<I, H, O>;
    fn sets(&self) -> usize {
        3
    }
    fn set(&self, i: usize) -> &Self::P {
        match i {
            0 => &self.net.params,
            1 => self.opt.0.m(),
            _ => self.opt.0.v(),
        }
    }
    fn set_mut(&mut self, i: usize) -> &mut Self::P {
        match i {
            0 => &mut self.net.params,
            1 => self.opt.0.m_mut(),
            _ => self.opt.0.v_mut(),
        }
    }
}

/// Bytes of the checkpoint buffer for the workload `Resumable<I, H, O, _>`.
pub const fn buffer_len<const I: usize, const H: usize, const O: usize>() -> usize {
    crate::persist::buffer_len(3, <Weights<I, H, O> as ZeroParams>::LEN)
}

impl<const I: usize, const H: usize, const O: usize, const L2B: u32> Resumable<I, H, O, L2B> {
    /// Zero weights and a fresh Adam with [`ADAM`].
    pub fn zeroed() -> Self {
        Resumable {
            net: Network::with_params(Const::new(), ZeroParams::zeroed()),
            opt: ResumableAdam(Adam::new_unchecked(ADAM)),
        }
    }

    /// Checks [`ADAM`], resets the optimizer and loads the initial weights: a fresh start.
    ///
    /// # Errors
    /// Invalid hyperparameters (`Error::InvalidHyperparameter`).
    pub fn start(
        &mut self,
        kernel0: &[[f32; H]; I],
        bias0: &[f32; H],
        kernel1: &[[f32; O]; H],
        bias1: &[f32; O],
    ) -> Result<(), Error> {
        ADAM.validate()?;
        Optimizer::reset(&mut self.opt);
        let w = &mut self.net.params;
        w.0.kernel
            .as_flattened_mut()
            .copy_from_slice(kernel0.as_flattened());
        w.0.bias.copy_from_slice(bias0);
        w.1.kernel
            .as_flattened_mut()
            .copy_from_slice(kernel1.as_flattened());
        w.1.bias.copy_from_slice(bias1);
        Ok(())
    }

    /// One epoch over `x`/`labels` in file order (as `crate::train::train_epoch`).
    ///
    /// # Errors
    /// Shape, label and non-finite errors of the core's training step.
    pub fn train_epoch<const N: usize>(
        &mut self,
        x: &[[f32; I]],
        labels: &[u32],
        batch_size: usize,
        report: &mut EpochReport<N>,
    ) -> Result<(), Error> {
        let data = Samples::new(x.as_flattened(), I, Targets::Classes(labels))?;
        microfit_core::train::fit_epoch_into(
            &mut self.net,
            &mut self.opt,
            LOSS,
            &data,
            batch_size,
            None,
            report,
        )
    }

    /// Stores the state after `epoch` finished epochs (replacing the previous checkpoint).
    ///
    /// # Errors
    /// Flash errors.
    pub fn save<F: NorFlash>(
        &self,
        store: &mut Checkpoints<F>,
        buffer: &mut [u8],
        epoch: u32,
    ) -> Result<(), PersistError<F::Error>> {
        let progress = Progress {
            epoch,
            iterations: self.opt.iterations(),
        };
        store.save(buffer, progress, self)
    }

    /// Restores the last checkpoint, if any: the epochs it had finished.
    ///
    /// # Errors
    /// Flash errors or a checkpoint of another model; the state is then untouched.
    pub fn resume<F: NorFlash>(
        &mut self,
        store: &mut Checkpoints<F>,
        buffer: &mut [u8],
    ) -> Result<Option<Progress>, PersistError<F::Error>> {
        let found = store.load(buffer, self)?;
        if let Some(p) = found {
            self.opt.0.set_iterations(p.iterations);
        }
        Ok(found)
    }

    /// FNV-1a 64 of the weights (`microfit_core::params::weights_hash`).
    pub fn weights_hash(&self) -> u64 {
        microfit_core::params::weights_hash(&self.net.params)
    }
}

#[cfg(target_os = "none")]
pub use app::{State, run};

#[cfg(target_os = "none")]
mod app {
    use defmt::info;
    use embedded_hal::digital::OutputPin;
    use embedded_storage::nor_flash::NorFlash;

    use super::Resumable;
    use crate::app::{L2, log_epoch, log_result, log_start};
    use crate::measure::{StackUsage, icount_mark};
    use crate::persist::Checkpoints;
    use crate::workload as wl;
    use microfit_core::train::EpochReport;

    /// The selected workload's resumable state.
    pub type State = Resumable<{ wl::INPUTS }, { wl::HIDDEN }, { wl::CLASSES }, { L2.to_bits() }>;

    /// The app of `crate::app::run`, resuming from the last checkpoint in `store` and saving one
    /// after every epoch. `after_save(epoch)` runs after each checkpoint (a test resets the chip
    /// there). Log lines as `crate::app`'s, plus
    /// ```text
    /// resume epoch=20 steps=300          (or `resume none`)
    /// ```
    /// Returns whether the final accuracy reached `crate::app::MIN_ACCURACY`; false on a flash
    /// or training error (logged).
    pub fn run<F: NorFlash, P: OutputPin>(
        led: &mut P,
        state: &mut State,
        store: &mut Checkpoints<F>,
        after_save: impl Fn(u32),
        stack_usage: fn() -> StackUsage,
    ) -> bool {
        let mut buf = [0u8; super::buffer_len::<{ wl::INPUTS }, { wl::HIDDEN }, { wl::CLASSES }>()];
        if let Err(e) = state.start(
            &wl::MICROFIT_INIT_DENSE_0_KERNEL,
            &wl::MICROFIT_INIT_DENSE_0_BIAS,
            &wl::MICROFIT_INIT_DENSE_1_KERNEL,
            &wl::MICROFIT_INIT_DENSE_1_BIAS,
        ) {
            defmt::error!("invalid hyperparameters: {}", e);
            return false;
        }
        log_start();
        let first = match state.resume(store, &mut buf) {
            Ok(Some(p)) => {
                info!("resume epoch={=u32} steps={=u32}", p.epoch, p.iterations);
                p.epoch
            }
            Ok(None) => {
                info!("resume none");
                0
            }
            Err(e) => {
                // A checkpoint of another model (or a damaged one): start over; the next save
                // replaces it.
                defmt::warn!("checkpoint not used: {}", e);
                let _ = state.start(
                    &wl::MICROFIT_INIT_DENSE_0_KERNEL,
                    &wl::MICROFIT_INIT_DENSE_0_BIAS,
                    &wl::MICROFIT_INIT_DENSE_1_KERNEL,
                    &wl::MICROFIT_INIT_DENSE_1_BIAS,
                );
                0
            }
        };
        let _ = led.set_high();
        let mut r = EpochReport::<{ crate::train::penalties(L2.to_bits()) }>::default();
        let mut trained = 0u32;
        for epoch in first + 1..=wl::EPOCHS {
            icount_mark();
            let done = state.train_epoch(
                &wl::MICROFIT_DATASET_X,
                &wl::MICROFIT_DATASET_LABELS,
                wl::BATCH_SIZE,
                &mut r,
            );
            icount_mark();
            if let Err(e) = done {
                defmt::error!("epoch {=u32}: {}", epoch, e);
                return false;
            }
            trained += r.metrics.samples;
            log_epoch(epoch, &r);
            if let Err(e) = state.save(store, &mut buf, epoch) {
                defmt::error!("checkpoint after epoch {=u32}: {}", epoch, e);
                return false;
            }
            after_save(epoch);
        }
        let _ = led.set_low();
        info!(
            "trained samples={=u32} steps={=u32} regions={=u32}",
            trained,
            microfit_core::optim::Optimizer::iterations(&state.opt),
            wl::EPOCHS - first
        );
        let ev = match microfit_core::train::evaluate(
            &mut state.net,
            crate::train::LOSS,
            &microfit_core::prelude::Samples::new(
                wl::MICROFIT_DATASET_X.as_flattened(),
                wl::INPUTS,
                microfit_core::prelude::Targets::Classes(&wl::MICROFIT_DATASET_LABELS),
            )
            .unwrap_or_else(|_| defmt::panic!("bundled dataset")),
            wl::SAMPLES,
        ) {
            Ok(ev) => ev,
            Err(e) => {
                defmt::error!("evaluation: {}", e);
                return false;
            }
        };
        log_result(&ev, state.weights_hash(), stack_usage())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::sim::{SimError, SimFlash};
    use crate::workload as wl;

    type W1 = Resumable<{ wl::INPUTS }, { wl::HIDDEN }, { wl::CLASSES }, 0>;
    const BUF: usize = buffer_len::<{ wl::INPUTS }, { wl::HIDDEN }, { wl::CLASSES }>();
    /// Epochs of the power-cut runs.
    const EPOCHS: u32 = 6;
    /// 8 pages of 2 KiB: one checkpoint (W1: 1.6 KB) per page, so every save moves to a new page
    /// and sequential-storage erases pages as it goes round.
    type Flash = SimFlash<{ 8 * 2048 }, 2048>;

    fn fresh() -> Box<W1> {
        let mut m = Box::new(W1::zeroed());
        m.start(
            &wl::MICROFIT_INIT_DENSE_0_KERNEL,
            &wl::MICROFIT_INIT_DENSE_0_BIAS,
            &wl::MICROFIT_INIT_DENSE_1_KERNEL,
            &wl::MICROFIT_INIT_DENSE_1_BIAS,
        )
        .unwrap();
        m
    }

    fn is_cut<T>(r: &Result<T, PersistError<SimError>>) -> bool {
        matches!(
            r,
            Err(PersistError::Storage(sequential_storage::Error::Storage {
                value: SimError::PowerCut,
                ..
            }))
        )
    }

    /// A device that trains `EPOCHS` epochs of W1 with a checkpoint after each, its power cut
    /// at write step `cut` (if any): it then reboots — a fresh model from the initial weights,
    /// the last checkpoint restored — and goes on. Every epoch's data-loss bits (an epoch run
    /// twice must give the same bits both times), the final weights' hash and the boots.
    fn device(flash: &mut Flash, cut: Option<u32>) -> (Vec<u32>, u64, u32) {
        if let Some(n) = cut {
            flash.cut_after(n);
        }
        let mut losses: Vec<Option<u32>> = vec![None; EPOCHS as usize];
        let mut boots = 0;
        'boot: loop {
            boots += 1;
            if flash.is_dead() {
                flash.reboot();
            }
            let mut model = fresh();
            let mut store = Checkpoints::new(&mut *flash, 0..8 * 2048).unwrap();
            let mut buf = [0u8; BUF];
            let resumed = model.resume(&mut store, &mut buf);
            if is_cut(&resumed) {
                continue 'boot; // sequential-storage repairs as it reads: that can be cut too
            }
            let first = resumed.unwrap().map_or(0, |p| p.epoch);
            let mut r = EpochReport::<0>::default();
            for epoch in first + 1..=EPOCHS {
                model
                    .train_epoch(
                        &wl::MICROFIT_DATASET_X,
                        &wl::MICROFIT_DATASET_LABELS,
                        wl::BATCH_SIZE,
                        &mut r,
                    )
                    .unwrap();
                let bits = r.data_loss.to_bits();
                let slot = &mut losses[epoch as usize - 1];
                assert!(
                    slot.is_none_or(|b| b == bits),
                    "epoch {epoch} rerun after a cut at {cut:?} gave other bits"
                );
                *slot = Some(bits);
                let saved = model.save(&mut store, &mut buf, epoch);
                if is_cut(&saved) {
                    continue 'boot;
                }
                saved.unwrap();
            }
            let losses = losses.into_iter().map(|b| b.unwrap()).collect();
            return (losses, model.weights_hash(), boots);
        }
    }

    /// The resumable model trains exactly as the firmware's plain one (`crate::train::Model`
    /// with `ChipAdam`): same bits after every epoch.
    #[test]
    fn resumable_model_trains_as_the_plain_one() {
        let mut plain = Box::new(crate::train::Model::<
            { wl::INPUTS },
            { wl::HIDDEN },
            { wl::CLASSES },
            0,
        >::zeroed());
        plain
            .load(
                &wl::MICROFIT_INIT_DENSE_0_KERNEL,
                &wl::MICROFIT_INIT_DENSE_0_BIAS,
                &wl::MICROFIT_INIT_DENSE_1_KERNEL,
                &wl::MICROFIT_INIT_DENSE_1_BIAS,
            )
            .unwrap();
        let mut flash = Flash::new();
        let (losses, hash, boots) = device(&mut flash, None);
        assert_eq!(boots, 1);
        let mut r = EpochReport::<0>::default();
        for want in &losses {
            crate::train::train_epoch(
                &mut plain,
                &wl::MICROFIT_DATASET_X,
                &wl::MICROFIT_DATASET_LABELS,
                wl::BATCH_SIZE,
                &mut r,
            )
            .unwrap();
            assert_eq!(r.data_loss.to_bits(), *want);
        }
        assert_eq!(crate::train::weights_hash(&plain), hash);
    }

    /// A power cut at every single write step (word write or page erase) of a 6-epoch run with
    /// a checkpoint per epoch: after the reboot, training resumes from the last complete
    /// checkpoint and ends with every epoch's bits and the final weights of the uninterrupted
    /// run.
    #[test]
    fn power_cut_at_every_write_step_resumes_with_the_same_bits() {
        let mut flash = Flash::new();
        let (losses, hash, _) = device(&mut flash, None);
        let steps = flash.steps;
        assert!(steps > 2000, "{steps} write steps");
        for cut in 1..=steps {
            let mut flash = Flash::new();
            let (l, h, boots) = device(&mut flash, Some(cut));
            assert_eq!((&l, h), (&losses, hash), "power cut at write step {cut}");
            assert_eq!(boots, 2, "cut at {cut}: one reboot");
        }
    }

    /// A checkpoint of another model is refused with the shapes, and the state is untouched.
    #[test]
    fn checkpoint_of_another_model_is_refused() {
        let mut flash = Flash::new();
        let mut store = Checkpoints::new(&mut flash, 0..8 * 2048).unwrap();
        let mut buf = [0u8; BUF];
        let other: [microfit_core::layer::dense::DenseParams<2, 2>; 3] =
            core::array::from_fn(|_| ZeroParams::zeroed());
        store
            .save(
                &mut buf,
                Progress {
                    epoch: 1,
                    iterations: 1,
                },
                &other,
            )
            .unwrap();
        let mut model = fresh();
        let before = model.weights_hash();
        let got = model.resume(&mut store, &mut buf);
        assert_eq!(
            got,
            Err(PersistError::Mismatch {
                stored: (3, 6),
                expected: (3, 131)
            })
        );
        assert_eq!(model.weights_hash(), before);
    }
}
