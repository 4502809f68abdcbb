//! The board-agnostic training app: trains the selected workload from flash, drives an LED
//! (on while training, blinking on success) and logs through defmt.
//!
//! Log format (one defmt `info!` frame per line; the `u32`s are `f32::to_bits`, for bit-exact
//! comparison with a host run; `{=u32:x}` prints lowercase hex):
//! ```text
//! start workload=W1 l2=3a83126f params=131 samples=150 epochs=50 batch=10
//! epoch 1 data_loss=3f8a… penalty=0 acc=0.5          (× EPOCHS)
//! trained samples=7500 steps=750 regions=50
//! eval data_loss=3d2e… penalty=… acc=0.98666... correct=148 n=150
//! weights_hash=0123456789abcdef
//! stack peak_bytes=452 size_bytes=129000
//! result acc=0.98666... ok=true
//! ```
//! `cargo xtask fw-bench` and `tests/src/qemu.rs` parse these lines.

use defmt::info;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;

use microfit_core::optim::Optimizer;
use microfit_core::train::EpochReport;

use crate::measure::{icount_mark, stack_usage};
use crate::train::{Model, evaluate, train_epoch, weights_hash};
use crate::workload as wl;

/// Parameters of the selected workload.
pub const PARAMS: usize =
    wl::INPUTS * wl::HIDDEN + wl::HIDDEN + wl::HIDDEN * wl::CLASSES + wl::CLASSES;

/// Kernel L2 factor: feature `l2` turns it on (1e-3 for W1, 1e-4 for W2); otherwise the
/// workload's own (`KERNEL_L2`: 0 for the bundled ones, the model's for an exported one).
pub const L2: f32 = match (cfg!(feature = "l2"), cfg!(feature = "w2")) {
    (false, _) => wl::KERNEL_L2,
    (true, false) => 1e-3,
    (true, true) => 1e-4,
};

/// The model and optimizer state of the selected workload (`16 · PARAMS` bytes and the
/// activations: it lives in `main`'s frame, see `main.rs`).
pub type State = Model<{ wl::INPUTS }, { wl::HIDDEN }, { wl::CLASSES }, { L2.to_bits() }>;

/// Final full-data accuracy the run must reach for `run` to return `true`.
pub const MIN_ACCURACY: f32 = 0.95;

/// Trains the workload from its initial weights, logging as described in the module docs;
/// returns whether the final accuracy reached [`MIN_ACCURACY`]. The LED is on while training,
/// then blinks three times on success and stays off on failure. A training error (bad data or
/// divergence) is logged and ends the run with `false`.
///
/// The three phases are separate functions that are never inlined, so their frames (epoch
/// report, evaluation report, log arguments) are not on the stack at the same time: the stack
/// is part of the RAM budget.
pub fn run<P: OutputPin, D: DelayNs>(led: &mut P, delay: &mut D, state: &mut State) -> bool {
    if !start(state) {
        return false;
    }
    let _ = led.set_high();
    let trained = train(state);
    let _ = led.set_low();
    let Some(trained) = trained else {
        return false;
    };
    let ok = finish(state, trained);
    if ok {
        blink(led, delay, 3);
    }
    ok
}

/// Loads the initial weights and logs the `start` line; false for invalid hyperparameters.
#[inline(never)]
fn start(model: &mut State) -> bool {
    if let Err(e) = model.load(
        &wl::MICROFIT_INIT_DENSE_0_KERNEL,
        &wl::MICROFIT_INIT_DENSE_0_BIAS,
        &wl::MICROFIT_INIT_DENSE_1_KERNEL,
        &wl::MICROFIT_INIT_DENSE_1_BIAS,
    ) {
        defmt::error!("invalid hyperparameters: {}", e);
        return false;
    }
    info!(
        "start workload={=str} l2={=u32:x} params={=u32} samples={=u32} epochs={=u32} batch={=u32}",
        wl::NAME,
        L2.to_bits(),
        PARAMS as u32,
        wl::SAMPLES as u32,
        wl::EPOCHS,
        wl::BATCH_SIZE as u32
    );
    true
}

/// Every epoch, each one a measured region, with its `epoch` line; the samples trained, or
/// `None` after logging a training error.
#[inline(never)]
fn train(model: &mut State) -> Option<u32> {
    let mut trained = 0_u32;
    // Room for the model's named penalties only (`EpochReport<12>` would take 80 B more).
    let mut r = EpochReport::<{ crate::train::penalties(L2.to_bits()) }>::default();
    for epoch in 1..=wl::EPOCHS {
        // Measured region: training only (see `measure::icount_mark`).
        icount_mark();
        let done = train_epoch(
            model,
            &wl::MICROFIT_DATASET_X,
            &wl::MICROFIT_DATASET_LABELS,
            wl::BATCH_SIZE,
            &mut r,
        );
        icount_mark();
        if let Err(e) = done {
            defmt::error!("epoch {=u32}: {}", epoch, e);
            return None;
        }
        trained += r.metrics.samples;
        log_epoch(epoch, &r);
    }
    info!(
        "trained samples={=u32} steps={=u32} regions={=u32}",
        trained,
        model.opt.iterations(),
        wl::EPOCHS
    );
    Some(trained)
}

/// The `epoch` line. Never inlined: its formatting temporaries then take stack only while it
/// logs, not in [`train`]'s frame, which is on the stack during every training step.
#[inline(never)]
fn log_epoch<const N: usize>(epoch: u32, r: &EpochReport<N>) {
    info!(
        "epoch {=u32} data_loss={=u32:x} penalty={=u32:x} acc={=f32}",
        epoch,
        r.data_loss.to_bits(),
        r.penalties.total().to_bits(),
        r.metrics.accuracy()
    );
}

/// The full-data evaluation, the weights' hash, the stack peak and the `result` line; whether
/// the accuracy reached [`MIN_ACCURACY`].
#[inline(never)]
fn finish(model: &mut State, trained: u32) -> bool {
    let ev = match evaluate(model, &wl::MICROFIT_DATASET_X, &wl::MICROFIT_DATASET_LABELS) {
        Ok(ev) => ev,
        Err(e) => {
            defmt::error!("evaluation: {}", e);
            return false;
        }
    };
    let acc = ev.metrics.accuracy();
    info!(
        "eval data_loss={=u32:x} penalty={=u32:x} acc={=f32} correct={=u32} n={=u32}",
        ev.data_loss.to_bits(),
        ev.penalties.total().to_bits(),
        acc,
        ev.metrics.correct,
        wl::SAMPLES as u32
    );
    let _ = trained;
    info!("weights_hash={=u64:x}", weights_hash(model));
    let stack = stack_usage();
    info!(
        "stack peak_bytes={=u32} size_bytes={=u32}",
        stack.peak_bytes, stack.size_bytes
    );
    let ok = acc >= MIN_ACCURACY;
    info!("result acc={=f32} ok={=bool}", acc, ok);
    ok
}

/// Blinks the LED `times` times (200 ms period).
pub fn blink<P: OutputPin, D: DelayNs>(led: &mut P, delay: &mut D, times: u32) {
    for _ in 0..times {
        let _ = led.set_high();
        delay.delay_ms(100);
        let _ = led.set_low();
        delay.delay_ms(100);
    }
}
