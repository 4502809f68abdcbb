//! microfit's training app on an Arduino Nano 33 BLE Sense (nRF52840, Cortex-M4F): trains the
//! workload from flash, the LED on P0.13 is on while it trains and blinks once a second
//! afterwards when the model reached the target accuracy. defmt over RTT:
//!
//! ```text
//! cargo build -p microfit-nano33ble --target thumbv7em-none-eabihf --profile fw
//! probe-rs run --chip nRF52840_xxAA target/thumbv7em-none-eabihf/fw/microfit-nano33ble
//! ```
//! (Built in CI; not run on hardware by us.) This file only brings up the LED and a delay; the
//! app is `microfit_firmware::app`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
mod board {
    use cortex_m_rt::entry;
    use defmt_rtt as _;
    use microfit_firmware::app;
    use microfit_firmware::measure::cortex_m_rt_stack_usage as stack_usage;
    use nrf52840_hal::{self as hal, gpio::Level, pac};
    use panic_probe as _;

    #[entry]
    fn main() -> ! {
        let (Some(p), Some(core)) = (pac::Peripherals::take(), pac::CorePeripherals::take()) else {
            defmt::panic!("peripherals taken twice");
        };
        let port0 = hal::gpio::p0::Parts::new(p.P0);
        let mut led = port0.p0_13.into_push_pull_output(Level::Low);
        let mut delay = hal::Delay::new(core.SYST);
        // The model lives in `main`'s frame (see the QEMU binary, `firmware/src/main.rs`).
        let mut state = app::State::zeroed();
        let ok = app::run(&mut led, &mut delay, &mut state, stack_usage);
        app::signal_forever(ok, &mut led, &mut delay)
    }
}
