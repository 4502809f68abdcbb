//! microfit's training app on a Raspberry Pi Pico (RP2040, Cortex-M0+, no FPU): trains the
//! workload from flash with the firmware's own Cortex-M0 float routines (the bits of the host),
//! the LED on GPIO 25 is on while it trains and blinks once a second afterwards when the model
//! reached the target accuracy. defmt over RTT:
//!
//! ```text
//! cargo build -p microfit-pico --target thumbv6m-none-eabi --profile fw
//! probe-rs run --chip RP2040 target/thumbv6m-none-eabi/fw/microfit-pico
//! ```
//! (Built in CI; not run on hardware by us.) This file only brings up the clocks, the LED and
//! a delay; the app is `microfit_firmware::app`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
mod board {
    use cortex_m_rt::entry;
    use defmt_rtt as _;
    use microfit_firmware::app;
    use microfit_firmware::measure::cortex_m_rt_stack_usage as stack_usage;
    use panic_probe as _;
    use rp2040_hal::{self as hal, Clock, pac};

    /// The second-stage bootloader for the Pico's W25Q080 flash.
    #[unsafe(link_section = ".boot2")]
    #[used]
    static BOOT2: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

    /// The Pico's crystal.
    const XTAL_HZ: u32 = 12_000_000;

    #[entry]
    fn main() -> ! {
        let Some(mut pac) = pac::Peripherals::take() else {
            defmt::panic!("peripherals taken twice");
        };
        let mut watchdog = hal::Watchdog::new(pac.WATCHDOG);
        let Ok(clocks) = hal::clocks::init_clocks_and_plls(
            XTAL_HZ,
            pac.XOSC,
            pac.CLOCKS,
            pac.PLL_SYS,
            pac.PLL_USB,
            &mut pac.RESETS,
            &mut watchdog,
        ) else {
            defmt::panic!("clock setup");
        };
        let mut timer = hal::Timer::new(pac.TIMER, &mut pac.RESETS, &clocks);
        let sio = hal::Sio::new(pac.SIO);
        let pins = hal::gpio::Pins::new(
            pac.IO_BANK0,
            pac.PADS_BANK0,
            sio.gpio_bank0,
            &mut pac.RESETS,
        );
        let mut led = pins.gpio25.into_push_pull_output();
        defmt::info!("system clock {=u32} Hz", clocks.system_clock.freq().to_Hz());
        // The model lives in `main`'s frame (see the QEMU binary, `firmware/src/main.rs`).
        let mut state = app::State::zeroed();
        let ok = app::run(&mut led, &mut timer, &mut state, stack_usage);
        app::signal_forever(ok, &mut led, &mut timer)
    }
}
