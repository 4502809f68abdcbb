//! The board-agnostic training app: trains the selected workload from flash, drives an LED
//! (on while training, blinking on success) and logs through defmt.
//!
//! Log format (one defmt `info!` frame per line): numbers for a person first (the loss with
//! five decimals — Keras' loss, as `fit` and `evaluate` report it: the data loss plus the
//! penalties — and the accuracy in percent with one), then after `|` the exact values as
//! `f32::to_bits` in lowercase hex, for bit-exact comparison with a host run (`data_loss=`
//! without the penalties, `loss=` with them):
//! ```text
//! start workload=W1 l2=3a83126f params=131 samples=150 epochs=50 batch=10
//! epoch 1 loss 1.09822 acc 29.3 % | data_loss=3f8c92a0 loss=3f8c92a0 acc=3e962fc9     (× EPOCHS)
//! trained samples=7500 steps=750 regions=50
//! eval loss 0.04260 acc 98.7 % correct=148 n=150 | data_loss=3d2e81ae loss=3d2e81ae acc=3f7c9c4d
//! weights_hash=0123456789abcdef
//! stack peak_bytes=452 size_bytes=129000
//! result acc 98.7 % ok=true | acc=3f7c9c4d
//! ```
//! The readable numbers are rounded on the chip with integer arithmetic (defmt has no
//! precision for floats) and printed as integers, so no float formatting code is linked.
//! `cargo xtask fw-bench` and `tests/src/qemu.rs` parse these lines.

use defmt::info;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;

use microfit_core::optim::Optimizer;
use microfit_core::train::EpochReport;

use crate::measure::{StackUsage, icount_mark};
use crate::train::{Model, evaluate, train_epoch, weights_hash};
use crate::workload as wl;

/// The training state of the workload (the weights, gradients, activations and optimizer
/// state: it lives in `main`'s frame, see `main.rs`).
pub type State = Model;

/// Trains the workload from its initial weights, logging as described in the module docs;
/// returns whether the run succeeded: trained without error and, when the workload sets one,
/// reached its final accuracy ([`wl::MIN_ACCURACY`]). The LED is on while training, then
/// blinks three times on success and stays off on failure. A training error (bad data or
/// divergence) is logged and ends the run with `false`.
///
/// The three phases are separate functions that are never inlined, so their frames (epoch
/// report, evaluation report, log arguments) are not on the stack at the same time: the stack
/// is part of the RAM budget.
/// `stack_usage` reads the peak stack at the end (the runtime knows where its stack is, see
/// `measure::stack_usage`).
pub fn run<P: OutputPin, D: DelayNs>(
    led: &mut P,
    delay: &mut D,
    state: &mut State,
    stack_usage: fn() -> StackUsage,
) -> bool {
    if !start(state) {
        return false;
    }
    let _ = led.set_high();
    let trained = train(state);
    let _ = led.set_low();
    let Some(trained) = trained else {
        return false;
    };
    let ok = finish(state, trained, stack_usage);
    if ok {
        blink(led, delay, 3);
    }
    ok
}

/// Loads the initial weights and logs the `start` line; false for invalid hyperparameters (the
/// data were checked when the firmware was built: `train::SAMPLES`).
#[inline(never)]
pub(crate) fn start(model: &mut State) -> bool {
    if let Err(e) = model.load() {
        defmt::error!("invalid hyperparameters: {}", e);
        return false;
    }
    log_start();
    true
}

/// The `start` line: the workload and its sizes.
pub(crate) fn log_start() {
    info!(
        "start workload={=str} l2={=u32:x} params={=u32} samples={=u32} epochs={=u32} batch={=u32}",
        wl::NAME,
        wl::KERNEL_L2.to_bits(),
        wl::PARAMS as u32,
        wl::SAMPLES as u32,
        wl::EPOCHS,
        wl::BATCH_SIZE as u32
    );
}

/// Every epoch, each one a measured region, with its `epoch` line; the samples trained, or
/// `None` after logging a training error.
#[inline(never)]
fn train(model: &mut State) -> Option<u32> {
    let mut trained = 0_u32;
    // Room for the model's named penalties only (`EpochReport<12>` would take 80 B more).
    let mut r = EpochReport::<{ wl::PENALTIES }>::default();
    for epoch in 1..=wl::EPOCHS {
        // Measured region: training only (see `measure::icount_mark`).
        icount_mark();
        let done = train_epoch(model, &mut r);
        icount_mark();
        if let Err(e) = &done {
            log_epoch_error(epoch, e);
            return None;
        }
        trained += r.metrics.samples;
        log_epoch(epoch, &r);
    }
    log_trained(trained, model.opt.iterations(), wl::EPOCHS);
    Some(trained)
}

/// The `trained` line: samples, optimizer steps and measured regions. Never inlined, as
/// [`log_epoch`]: its formatting temporaries are then not in [`train`]'s frame.
#[inline(never)]
pub(crate) fn log_trained(samples: u32, steps: u32, regions: u32) {
    info!(
        "trained samples={=u32} steps={=u32} regions={=u32}",
        samples, steps, regions
    );
}

/// A training error in epoch `epoch` (`epoch 3: ...`). Never inlined, as [`log_trained`].
#[inline(never)]
pub(crate) fn log_epoch_error(epoch: u32, e: &microfit_core::Error) {
    defmt::error!("epoch {=u32}: {}", epoch, e);
}

/// The `epoch` line. Never inlined: its formatting temporaries then take stack only while it
/// logs, not in [`train`]'s frame, which is on the stack during every training step.
#[inline(never)]
pub(crate) fn log_epoch<const N: usize>(epoch: u32, r: &EpochReport<N>) {
    let [loss, frac, pct, tenth] = readable(r.loss, r.metrics.correct, r.metrics.samples);
    info!(
        "epoch {=u32} loss {=u32}.{=u32:05} acc {=u32}.{=u32} % | data_loss={=u32:x} loss={=u32:x} acc={=u32:x}",
        epoch,
        loss,
        frac,
        pct,
        tenth,
        r.data_loss.to_bits(),
        r.loss.to_bits(),
        r.metrics.accuracy().to_bits()
    );
}

/// A loss and an accuracy for a person, in integers (defmt has no precision for floats, and
/// integer arguments link no float formatting): `[int, decimals, percent, tenths]` with
/// `loss ≥ 0` rounded to five decimals and `correct / n` in percent rounded to one decimal,
/// printed `{int}.{decimals:05}` and `{percent}.{tenths} %`: `(0.047004, 148, 150) →
/// [0, 4700, 98, 7]`, i.e. `0.04700` and `98.7 %`. The loss saturates at `u32::MAX / 10⁵` (NaN
/// gives 0): the hex bits printed beside it say what it was. Out of line: one copy for every line.
#[inline(never)]
fn readable(loss: f32, correct: u32, n: u32) -> [u32; 4] {
    let l = (loss * 100_000.0 + 0.5) as u32;
    let tenths = (correct * 1000 + n / 2) / n.max(1);
    [l / 100_000, l % 100_000, tenths / 10, tenths % 10]
}

/// The full-data evaluation, the weights' hash, the stack peak and the `result` line; whether
/// the run succeeded.
#[inline(never)]
fn finish(model: &mut State, trained: u32, stack_usage: fn() -> StackUsage) -> bool {
    let _ = trained;
    // Written in place (a report moved out of a `Result` is a copy on the stack), with room for
    // the model's named penalties only, as in `train`.
    let mut ev = EpochReport::<{ wl::PENALTIES }>::default();
    // Matched by reference: moving the error out of the `Result` was the firmware's only
    // `memcpy` call (an 18-byte copy that linked 0.9 KB of compiler-builtins).
    let result = evaluate(model, &mut ev);
    match &result {
        Ok(()) => log_result(&ev, weights_hash(model), stack_usage()),
        Err(e) => {
            defmt::error!("evaluation: {}", e);
            false
        }
    }
}

/// The `eval`, `weights_hash`, `stack` and `result` lines of the full-data evaluation `ev`;
/// whether the run succeeded: a finite loss and, when the workload sets one, its accuracy
/// reached [`wl::MIN_ACCURACY`].
pub(crate) fn log_result<const N: usize>(
    ev: &EpochReport<N>,
    hash: u64,
    stack: StackUsage,
) -> bool {
    let acc = ev.metrics.accuracy();
    let [loss, frac, pct, tenth] = readable(ev.loss, ev.metrics.correct, ev.metrics.samples);
    info!(
        "eval loss {=u32}.{=u32:05} acc {=u32}.{=u32} % correct={=u32} n={=u32} | data_loss={=u32:x} loss={=u32:x} acc={=u32:x}",
        loss,
        frac,
        pct,
        tenth,
        ev.metrics.correct,
        wl::SAMPLES as u32,
        ev.data_loss.to_bits(),
        ev.loss.to_bits(),
        acc.to_bits()
    );
    info!("weights_hash={=u64:x}", hash);
    info!(
        "stack peak_bytes={=u32} size_bytes={=u32}",
        stack.peak_bytes, stack.size_bytes
    );
    let ok = ev.data_loss.is_finite() && wl::MIN_ACCURACY.is_none_or(|min| acc >= min);
    info!(
        "result acc {=u32}.{=u32} % ok={=bool} | acc={=u32:x}",
        pct,
        tenth,
        ok,
        acc.to_bits()
    );
    ok
}

/// What a board does once [`run`] returned `ok`: blinks the LED once a second when the model
/// reached the target accuracy, keeps it off otherwise.
pub fn signal_forever<P: OutputPin, D: DelayNs>(ok: bool, led: &mut P, delay: &mut D) -> ! {
    loop {
        if ok {
            blink(led, delay, 1);
        } else {
            let _ = led.set_low();
        }
        delay.delay_ms(800);
    }
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

/// An LED that is not there (QEMU's machines model none): every call does nothing.
#[derive(Debug)]
pub struct NoLed;

impl embedded_hal::digital::ErrorType for NoLed {
    type Error = core::convert::Infallible;
}

impl OutputPin for NoLed {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// No waiting (under QEMU).
#[derive(Debug)]
pub struct NoDelay;

impl DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}
