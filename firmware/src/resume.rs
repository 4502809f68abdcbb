//! Training that resumes after a reset (feature `persist`): the firmware's own model
//! ([`crate::train::Model`]: the core's engine, the same code and bits as a plain run) with a
//! checkpoint after every epoch ([`crate::persist`]: the weights, the optimizer's slots — Adam's
//! `m` and `v`, momentum's velocity — its step count and the epoch), and the app that resumes
//! from the last one.

use embedded_storage::nor_flash::NorFlash;
use microfit_core::optim::Optimizer;
use microfit_core::params::ZeroParams;

use crate::persist::{Checkpoints, ParamSets, PersistError, Progress};
use crate::train::{ChipOptimizer, Model, Opt};
use crate::workload as wl;

/// A checkpoint of [`Model`] is its weights and its optimizer's slot sets.
impl ParamSets for Model {
    type P = wl::Params;
    fn sets(&self) -> usize {
        1 + Opt::SLOT_SETS
    }
    fn set(&self, i: usize) -> &Self::P {
        match i {
            0 => &self.net.params,
            _ => self.opt.slot(i - 1).unwrap_or(&self.net.params),
        }
    }
    fn set_mut(&mut self, i: usize) -> &mut Self::P {
        match i {
            0 => &mut self.net.params,
            _ => match self.opt.slot_mut(i - 1) {
                Some(s) => s,
                None => &mut self.net.params,
            },
        }
    }
}

/// Bytes of the checkpoint buffer of the workload's [`Model`].
pub const BUFFER_LEN: usize =
    crate::persist::buffer_len(1 + Opt::SLOT_SETS, <wl::Params as ZeroParams>::LEN);

/// Stores the state of `model` after `epoch` finished epochs (replacing the previous
/// checkpoint).
///
/// # Errors
/// Flash errors.
pub fn save<F: NorFlash>(
    model: &Model,
    store: &mut Checkpoints<F>,
    buffer: &mut [u8],
    epoch: u32,
) -> Result<(), PersistError<F::Error>> {
    let progress = Progress {
        epoch,
        iterations: model.opt.iterations(),
    };
    store.save(buffer, progress, model)
}

/// Restores the last checkpoint into `model`, if any: the epochs it had finished.
///
/// # Errors
/// Flash errors or a checkpoint of another model; the state is then untouched.
pub fn resume<F: NorFlash>(
    model: &mut Model,
    store: &mut Checkpoints<F>,
    buffer: &mut [u8],
) -> Result<Option<Progress>, PersistError<F::Error>> {
    let found = store.load(buffer, model)?;
    if let Some(p) = found {
        model.opt.set_iterations(p.iterations);
    }
    Ok(found)
}

#[cfg(target_os = "none")]
pub use app::{State, run};

#[cfg(target_os = "none")]
mod app {
    use defmt::info;
    use embedded_hal::digital::OutputPin;
    use embedded_storage::nor_flash::NorFlash;

    use crate::app::{log_epoch, log_epoch_error, log_result, log_trained, start};
    use crate::measure::{StackUsage, icount_mark};
    use crate::persist::Checkpoints;
    use crate::train::{Model, evaluate, train_epoch, weights_hash};
    use crate::workload as wl;
    use microfit_core::train::EpochReport;

    /// The workload's model (what a checkpoint holds).
    pub type State = Model;

    /// The app of `crate::app::run`, resuming from the last checkpoint in `store` and saving one
    /// after every epoch. `after_save(epoch)` runs after each checkpoint (a test resets the chip
    /// there). Log lines as `crate::app`'s, plus
    /// ```text
    /// resume epoch=20 steps=300          (or `resume none`)
    /// ```
    /// Returns whether the run succeeded (as `crate::app::run`); false on a flash or training
    /// error (logged).
    pub fn run<F: NorFlash, P: OutputPin>(
        led: &mut P,
        state: &mut State,
        store: &mut Checkpoints<F>,
        after_save: impl Fn(u32),
        stack_usage: fn() -> StackUsage,
    ) -> bool {
        let mut buf = [0u8; super::BUFFER_LEN];
        if !start(state) {
            return false;
        }
        let first = match super::resume(state, store, &mut buf) {
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
                let _ = state.load();
                0
            }
        };
        let _ = led.set_high();
        let mut r = EpochReport::<{ wl::PENALTIES }>::default();
        let mut trained = 0u32;
        for epoch in first + 1..=wl::EPOCHS {
            icount_mark();
            let done = train_epoch(state, &mut r);
            icount_mark();
            if let Err(e) = &done {
                log_epoch_error(epoch, e);
                return false;
            }
            trained += r.metrics.samples;
            log_epoch(epoch, &r);
            if let Err(e) = super::save(state, store, &mut buf, epoch) {
                defmt::error!("checkpoint after epoch {=u32}: {}", epoch, e);
                return false;
            }
            after_save(epoch);
        }
        let _ = led.set_low();
        log_trained(
            trained,
            microfit_core::optim::Optimizer::iterations(&state.opt),
            wl::EPOCHS - first,
        );
        let mut ev = EpochReport::<{ wl::PENALTIES }>::default();
        if let Err(e) = evaluate(state, &mut ev) {
            defmt::error!("evaluation: {}", e);
            return false;
        }
        log_result(&ev, weights_hash(state), stack_usage())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::sim::{SimError, SimFlash};
    use microfit_core::train::EpochReport;

    type W1 = Model;
    const BUF: usize = BUFFER_LEN;
    /// Epochs of the power-cut runs.
    const EPOCHS: u32 = 6;
    /// 8 pages of 2 KiB: one checkpoint (W1: 1.6 KB) per page, so every save moves to a new page
    /// and sequential-storage erases pages as it goes round.
    type Flash = SimFlash<{ 8 * 2048 }, 2048>;

    fn fresh() -> Box<W1> {
        let mut m = Box::new(W1::zeroed());
        m.load().unwrap();
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
            let resumed = resume(&mut model, &mut store, &mut buf);
            if is_cut(&resumed) {
                continue 'boot; // sequential-storage repairs as it reads: that can be cut too
            }
            let first = resumed.unwrap().map_or(0, |p| p.epoch);
            let mut r = EpochReport::<0>::default();
            for epoch in first + 1..=EPOCHS {
                crate::train::train_epoch(&mut model, &mut r).unwrap();
                let bits = r.data_loss.to_bits();
                let slot = &mut losses[epoch as usize - 1];
                assert!(
                    slot.is_none_or(|b| b == bits),
                    "epoch {epoch} rerun after a cut at {cut:?} gave other bits"
                );
                *slot = Some(bits);
                let saved = save(&model, &mut store, &mut buf, epoch);
                if is_cut(&saved) {
                    continue 'boot;
                }
                saved.unwrap();
            }
            let losses = losses.into_iter().map(|b| b.unwrap()).collect();
            return (losses, crate::train::weights_hash(&model), boots);
        }
    }

    /// Checkpointing changes nothing: the run with a checkpoint after every epoch trains
    /// exactly as a plain run of the same model (same bits after every epoch).
    #[test]
    fn checkpointed_run_trains_as_a_plain_one() {
        let mut plain = fresh();
        let mut flash = Flash::new();
        let (losses, hash, boots) = device(&mut flash, None);
        assert_eq!(boots, 1);
        let mut r = EpochReport::<0>::default();
        for want in &losses {
            crate::train::train_epoch(&mut plain, &mut r).unwrap();
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
        let before = crate::train::weights_hash(&model);
        let got = resume(&mut model, &mut store, &mut buf);
        assert_eq!(
            got,
            Err(PersistError::Mismatch {
                stored: (3, 6),
                expected: (3, 131)
            })
        );
        assert_eq!(crate::train::weights_hash(&model), before);
    }
}
