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
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
mod board {
    use cortex_m_rt::entry;
    use defmt_rtt as _;
    use embedded_hal::digital::{ErrorType, OutputPin};
    use microfit_firmware::app;
    use microfit_firmware::measure::{self, StackUsage};
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

    unsafe extern "C" {
        /// Top and bottom of the stack (cortex-m-rt; painted at reset, feature `paint-stack`).
        static _stack_start: u32;
        static _stack_end: u32;
    }

    fn stack_usage() -> StackUsage {
        measure::stack_usage(
            (&raw const _stack_end) as usize,
            (&raw const _stack_start) as usize,
        )
    }

    #[entry]
    fn main() -> ! {
        // The model lives in `main`'s frame (see the QEMU binary, `firmware/src/main.rs`).
        let mut state = app::State::zeroed();
        let (Some(dp), Some(cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
            defmt::panic!("peripherals taken twice");
        };
        let mut rcc = dp.RCC.freeze(Config::hsi().sysclk(100.MHz()));
        let gpioc = dp.GPIOC.split(&mut rcc);
        let mut led = ActiveLow(gpioc.pc13.into_push_pull_output());
        let _ = led.set_low();
        let mut delay = cp.SYST.delay(&rcc.clocks);
        let ok = app::run(&mut led, &mut delay, &mut state, stack_usage);
        loop {
            if ok {
                app::blink(&mut led, &mut delay, 1);
                delay.delay_ms(800_u32);
            } else {
                cortex_m::asm::wfi();
            }
        }
    }
}
