//! microfit's training app on an ESP32-C3 (RISC-V RV32IMC, no FPU): trains the workload from
//! flash, the LED on GPIO 8 (the DevKitM-1's RGB LED data pin) is driven while it trains and
//! blinks once a second afterwards when the model reached the target accuracy. defmt over the
//! USB serial/JTAG port, decoded by espflash:
//!
//! ```text
//! cd firmware/boards/esp32c3
//! cargo build --release
//! cargo run --release            # espflash flash --monitor --log-format defmt
//! ```
//! (Built in CI; not run on hardware by us.) This file only brings up the chip, the LED and a
//! delay; the app is `microfit_firmware::app`.
#![no_std]
#![no_main]

use esp_backtrace as _;
use esp_hal::delay::Delay;
use esp_hal::gpio::{Level, Output, OutputConfig};
use esp_hal::main;
use esp_println as _;
use microfit_firmware::app;
use microfit_firmware::measure::{self, StackUsage};

esp_bootloader_esp_idf::esp_app_desc!();

unsafe extern "C" {
    /// Top of the stack (esp-hal's `stack.x`).
    static _stack_start: u32;
    /// esp-hal's stack-smashing guard word, near the bottom of the stack: painting starts above.
    static __stack_chk_guard: u32;
}

/// The painted part of the stack: from above the guard word up to its top.
fn stack_bounds() -> (usize, usize) {
    (
        (&raw const __stack_chk_guard) as usize + 4,
        (&raw const _stack_start) as usize,
    )
}

fn stack_usage() -> StackUsage {
    let (bottom, top) = stack_bounds();
    measure::stack_usage(bottom, top)
}

#[main]
fn main() -> ! {
    let sp: usize;
    // SAFETY: reads the stack pointer into a register; no memory is touched.
    unsafe { core::arch::asm!("mv {}, sp", out(reg) sp, options(nomem, nostack)) };
    measure::paint_below(stack_bounds().0, sp);
    let p = esp_hal::init(esp_hal::Config::default());
    let mut led = Output::new(p.GPIO8, Level::Low, OutputConfig::default());
    let mut delay = Delay::new();
    // The model lives in `main`'s frame (see the QEMU binary, `firmware/src/main.rs`).
    let mut state = app::State::zeroed();
    let ok = app::run(&mut led, &mut delay, &mut state, stack_usage);
    app::signal_forever(ok, &mut led, &mut delay)
}
