//! The firmware binary: picks the board, hands an LED, a delay and the training state (in
//! `main`'s frame) to the board-agnostic [`microfit_firmware::app::run`].
//!
//! * `qemu` (default): `-machine mps2-an386 -cpu cortex-m4` (thumbv7em-none-eabihf) or
//!   `-machine microbit` (thumbv6m-none-eabi). defmt goes to QEMU's stdout through semihosting;
//!   the exit code is 0 when the run reached the target accuracy, 1 otherwise, and 1 on a
//!   panic or a HardFault.
//! * `blackpill`: STM32F411CE, LED on PC13 (active low), defmt over RTT
//!   (`probe-rs run --chip STM32F411CEUx ELF`).
//!
//! On the host this file compiles to an empty `main`, so `cargo build/clippy/test --workspace`
//! work without a microcontroller target.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
mod firmware {
    use cortex_m_rt::{ExceptionFrame, entry, exception};
    use microfit_firmware::app;

    #[entry]
    #[cfg_attr(feature = "powf-check", allow(unreachable_code, unused))]
    fn main() -> ! {
        #[cfg(all(feature = "powf-check", feature = "qemu"))]
        board::exit(microfit_firmware::powf_check::run()); // a test image: nothing trained
        // The model lives in `main`'s frame, which never returns: RAM = .data + .bss + this
        // stack (a `static` would sit in `.data`, costing its size in flash too). `zeroed`
        // writes it in place (see `Model::zeroed`).
        let mut state = app::State::zeroed();
        // Test-only features: both must end the QEMU run with a non-zero exit code.
        if cfg!(feature = "fault-panic") {
            panic!("feature fault-panic");
        }
        if cfg!(feature = "fault-hardfault") {
            cortex_m::asm::udf(); // UsageFault, escalated to HardFault (not enabled separately)
        }
        board::run(&mut state)
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        // Location only: formatting the message would pull `core::fmt` into the image.
        match info.location() {
            Some(l) => defmt::error!("panic at {=str}:{=u32}", l.file(), l.line()),
            None => defmt::error!("panic"),
        }
        board::fail()
    }

    #[exception]
    unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
        defmt::error!("HardFault pc={=u32:x} lr={=u32:x}", ef.pc(), ef.lr());
        board::fail()
    }

    /// The device part of the vector table (feature `qemu`, with `cortex-m-rt/device`): one
    /// entry, as no peripheral interrupt is enabled; cortex-m-rt's generic table would be 240
    /// entries (960 bytes of flash) on ARMv7-M. The linker requires at least one.
    #[cfg(all(feature = "qemu", not(feature = "blackpill")))]
    #[unsafe(link_section = ".vector_table.interrupts")]
    #[unsafe(no_mangle)]
    static __INTERRUPTS: [unsafe extern "C" fn(); 1] = [DefaultHandler];

    #[cfg(all(feature = "qemu", not(feature = "blackpill")))]
    unsafe extern "C" {
        /// cortex-m-rt's default exception handler (`DefaultHandler_` unless overridden).
        fn DefaultHandler();
    }

    #[cfg(all(feature = "qemu", not(feature = "blackpill")))]
    mod board {
        use core::convert::Infallible;

        use cortex_m_semihosting::debug;
        use defmt_semihosting as _;
        use embedded_hal::delay::DelayNs;
        use embedded_hal::digital::{ErrorType, OutputPin};
        use microfit_firmware::app;

        /// QEMU's machines have no LED we model: the app's LED calls go nowhere.
        struct NoLed;

        impl ErrorType for NoLed {
            type Error = Infallible;
        }

        impl OutputPin for NoLed {
            fn set_low(&mut self) -> Result<(), Infallible> {
                Ok(())
            }
            fn set_high(&mut self) -> Result<(), Infallible> {
                Ok(())
            }
        }

        /// No waiting under QEMU.
        struct NoDelay;

        impl DelayNs for NoDelay {
            fn delay_ns(&mut self, _ns: u32) {}
        }

        pub fn run(state: &mut app::State) -> ! {
            let ok = app::run(&mut NoLed, &mut NoDelay, state);
            exit(ok)
        }

        pub fn fail() -> ! {
            exit(false)
        }

        pub fn exit(ok: bool) -> ! {
            debug::exit(if ok {
                debug::EXIT_SUCCESS
            } else {
                debug::EXIT_FAILURE
            });
            loop {
                cortex_m::asm::wfi();
            }
        }
    }

    #[cfg(all(feature = "blackpill", not(feature = "qemu")))]
    mod board {
        use defmt_rtt as _;
        use embedded_hal::digital::{ErrorType, OutputPin};
        use microfit_firmware::app;
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

        pub fn run(state: &mut app::State) -> ! {
            let (Some(dp), Some(cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take())
            else {
                fail()
            };
            let mut rcc = dp.RCC.freeze(Config::hsi().sysclk(100.MHz()));
            let gpioc = dp.GPIOC.split(&mut rcc);
            let mut led = ActiveLow(gpioc.pc13.into_push_pull_output());
            let _ = led.set_low();
            let mut delay = cp.SYST.delay(&rcc.clocks);
            let ok = app::run(&mut led, &mut delay, state);
            loop {
                if ok {
                    app::blink(&mut led, &mut delay, 1);
                } else {
                    cortex_m::asm::wfi();
                }
            }
        }

        pub fn fail() -> ! {
            loop {
                cortex_m::asm::bkpt();
            }
        }
    }
}
