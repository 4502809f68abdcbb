//! microfit's training app on an STM32F411CE "Black Pill": trains the workload from flash, the
//! LED on PC13 (active low) is on while it trains and blinks once a second afterwards when the
//! model reached the target accuracy. defmt over RTT:
//!
//! ```text
//! cargo build -p microfit-blackpill --target thumbv7em-none-eabihf --profile fw
//! probe-rs run --chip STM32F411CEUx target/thumbv7em-none-eabihf/fw/microfit-blackpill
//! ```
//! The app itself (`microfit_firmware::app`) is the one the QEMU tests run: this file only
//! brings up the clock, the LED and a delay (embassy's layout: one thin binary per board).
//!
//! Feature `persist`: a checkpoint after every epoch in the chip's own flash (sectors 6 and 7,
//! through stm32f4xx-hal's `NorFlash` driver); after a reset or a power cut, training resumes
//! from the last one (`microfit_firmware::resume`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
mod board {
    use cortex_m_rt::entry;
    use defmt_rtt as _;
    use embedded_hal::digital::{ErrorType, OutputPin};
    use microfit_firmware::app;
    use microfit_firmware::measure::cortex_m_rt_stack_usage as stack_usage;
    use panic_probe as _;
    use stm32f4xx_hal::{pac, prelude::*, rcc::Config};

    /// The Black Pill's LED lights when PC13 is low.
    struct ActiveLow<P>(P);

    impl<P: OutputPin> ErrorType for ActiveLow<P> {
        type Error = P::Error;
    }

    impl<P: OutputPin> OutputPin for ActiveLow<P> {
        fn set_low(&mut self) -> Result<(), P::Error> {
            self.0.set_high()
        }
        fn set_high(&mut self) -> Result<(), P::Error> {
            self.0.set_low()
        }
    }

    /// Feature `persist`: the resumable app over the chip's flash.
    #[cfg(feature = "persist")]
    mod persist {
        use embedded_hal::digital::OutputPin;
        use microfit_firmware::persist::Checkpoints;
        use microfit_firmware::resume;
        use stm32f4xx_hal::flash::{FlashExt, LockedFlash};
        use stm32f4xx_hal::pac::FLASH;

        /// Sectors 6 and 7 (offsets from the start of the flash; two 128 KiB erase pages, the
        /// driver's `ERASE_SIZE`).
        const RANGE: core::ops::Range<u32> = 0x4_0000..0x8_0000;

        pub fn train<P: OutputPin>(flash: FLASH, led: &mut P) -> bool {
            let mut flash = LockedFlash::new(flash);
            let mut unlocked = flash.unlocked();
            let mut store = match Checkpoints::new(&mut unlocked, RANGE) {
                Ok(s) => s,
                Err(e) => {
                    defmt::error!("checkpoints: {}", e);
                    return false;
                }
            };
            let mut state = resume::State::zeroed();
            resume::run(led, &mut state, &mut store, |_| {}, super::stack_usage)
        }
    }

    #[entry]
    fn main() -> ! {
        let (Some(dp), Some(cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
            defmt::panic!("peripherals taken twice");
        };
        let mut rcc = dp.RCC.freeze(Config::hsi().sysclk(100.MHz()));
        let gpioc = dp.GPIOC.split(&mut rcc);
        let mut led = ActiveLow(gpioc.pc13.into_push_pull_output());
        let _ = led.set_low();
        let mut delay = cp.SYST.delay(&rcc.clocks);
        // The model lives in `main`'s frame (see the QEMU binary, `firmware/src/main.rs`).
        #[cfg(not(feature = "persist"))]
        let ok = {
            let mut state = app::State::zeroed();
            app::run(&mut led, &mut delay, &mut state, stack_usage)
        };
        #[cfg(feature = "persist")]
        let ok = persist::train(dp.FLASH, &mut led);
        app::signal_forever(ok, &mut led, &mut delay)
    }
}
