//! The QEMU firmware (feature `qemu`): hands a (no-op) LED, a (no-op) delay and the training
//! state (in `main`'s frame) to the board-agnostic [`microfit_firmware::app::run`], then ends
//! the emulation through semihosting with exit code 0 when the run reached the target accuracy,
//! 1 otherwise, and 1 on a panic, a HardFault or a RISC-V exception.
//!
//! * `thumbv7em-none-eabihf`: `qemu-system-arm -machine mps2-an386 -cpu cortex-m4` (Cortex-M4F);
//! * `thumbv6m-none-eabi`: `qemu-system-arm -machine microbit` (Cortex-M0, soft float);
//! * `riscv32imac-unknown-none-elf`: `qemu-system-riscv32 -machine virt -bios none` (RV32IMAC,
//!   soft float).
//!
//! defmt goes to QEMU's stdout through semihosting. The real boards' binaries are the crates in
//! `firmware/boards/` (embassy's layout: one thin binary per board, the app in the library).
//!
//! On the host this file compiles to an empty `main`, so `cargo build/clippy/test --workspace`
//! work without a microcontroller target.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
use defmt_semihosting as _;

/// The training state lives in `main`'s frame, which never returns: RAM = .data + .bss + this
/// stack (a `static` would sit in `.data`, costing its size in flash too). `zeroed` writes it in
/// place (see `Model::zeroed`). `#[inline(always)]`: it is `main`'s body on every architecture.
#[cfg(target_os = "none")]
#[inline(always)]
fn train_and_exit() -> ! {
    use microfit_firmware::app;
    #[cfg(all(target_arch = "arm", feature = "softfloat-check"))]
    arch::exit(microfit_firmware::softfloat_check::run());
    // A test image: computes `β^t` on the chip, nothing trained.
    #[cfg(all(feature = "powf-check", feature = "qemu"))]
    arch::exit(microfit_firmware::powf_check::run());
    #[cfg(all(target_arch = "arm", feature = "persist"))]
    arch::exit(arch::train_persistent());
    #[allow(unreachable_code)]
    let mut state = app::State::zeroed();
    // Test-only features: both must end the QEMU run with a non-zero exit code.
    if cfg!(feature = "fault-panic") {
        panic!("feature fault-panic");
    }
    if cfg!(feature = "fault-hardfault") {
        arch::undefined_instruction();
    }
    let ok = app::run(
        &mut app::NoLed,
        &mut app::NoDelay,
        &mut state,
        arch::stack_usage,
    );
    arch::exit(ok)
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // Location only: formatting the message would pull `core::fmt` into the image.
    match info.location() {
        Some(l) => defmt::error!("panic at {=str}:{=u32}", l.file(), l.line()),
        None => defmt::error!("panic"),
    }
    arch::exit(false)
}

#[cfg(all(target_os = "none", target_arch = "arm"))]
mod arch {
    use cortex_m_rt::{ExceptionFrame, entry, exception};
    use cortex_m_semihosting::debug;

    #[entry]
    fn main() -> ! {
        super::train_and_exit()
    }

    #[exception]
    unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
        defmt::error!("HardFault pc={=u32:x} lr={=u32:x}", ef.pc(), ef.lr());
        exit(false)
    }

    /// The device part of the vector table (with `cortex-m-rt/device`): one entry, as no
    /// peripheral interrupt is enabled; cortex-m-rt's generic table would be 240 entries (960
    /// bytes of flash) on ARMv7-M. The linker requires at least one.
    #[unsafe(link_section = ".vector_table.interrupts")]
    #[unsafe(no_mangle)]
    static __INTERRUPTS: [unsafe extern "C" fn(); 1] = [DefaultHandler];

    unsafe extern "C" {
        /// cortex-m-rt's default exception handler (`DefaultHandler_` unless overridden).
        fn DefaultHandler();
    }

    /// Peak stack from cortex-m-rt's painting (feature `paint-stack`).
    pub use microfit_firmware::measure::cortex_m_rt_stack_usage as stack_usage;

    /// `udf`: a UsageFault, escalated to HardFault (not enabled separately).
    pub fn undefined_instruction() {
        cortex_m::asm::udf();
    }

    /// Feature `persist`: training with a checkpoint after every epoch in [`ram_nor::RamNor`],
    /// resuming from the last one at boot. With `persist-reset-test` the chip resets itself
    /// (SYSRESETREQ) after epochs 20 and 40: three boots make one run.
    #[cfg(feature = "persist")]
    pub fn train_persistent() -> bool {
        use microfit_firmware::persist::Checkpoints;
        use microfit_firmware::{app, resume};
        let mut flash = ram_nor::RamNor::power_on();
        let mut store = match Checkpoints::new(&mut flash, 0..ram_nor::SIZE) {
            Ok(s) => s,
            Err(e) => {
                defmt::error!("checkpoints: {}", e);
                return false;
            }
        };
        let mut state = resume::State::zeroed();
        let after_save = |epoch: u32| {
            if cfg!(feature = "persist-reset-test") && epoch.is_multiple_of(20) {
                defmt::info!("reset after epoch {=u32}", epoch);
                cortex_m::peripheral::SCB::sys_reset();
            }
        };
        resume::run(
            &mut app::NoLed,
            &mut state,
            &mut store,
            after_save,
            stack_usage,
        )
    }

    /// A NOR flash simulated in QEMU's RAM, for feature `persist` on `mps2-an386`. That machine
    /// has no flash: its code memory is 4 MiB of RAM at 0. QEMU keeps RAM across a system reset
    /// (SYSRESETREQ) and only copies the ELF's segments back, so 256 KiB at 0x0030_0000 — above
    /// the image (`memory-mps2-an386.x` ends at 512 KiB) — keep their contents across a reset, as
    /// a flash does. At power-on QEMU's RAM is zero, a real flash is erased (or holds data): a
    /// magic word right after the region tells the two apart, and the first boot erases it.
    #[cfg(feature = "persist")]
    mod ram_nor {
        use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};

        const BASE: usize = 0x0030_0000;
        /// Size of the region, in bytes: 8 erase pages.
        pub const SIZE: u32 = 256 * 1024;
        const PAGE: usize = 32 * 1024;
        const MAGIC: u32 = u32::from_le_bytes(*b"NOR!");

        /// The simulated flash (see the module docs).
        pub struct RamNor;

        fn at(offset: usize) -> *mut u8 {
            (BASE + offset) as *mut u8
        }

        impl RamNor {
            /// The flash; erased on the first boot after QEMU started.
            pub fn power_on() -> Self {
                let magic = at(SIZE as usize) as *mut u32;
                // SAFETY: `magic` and `BASE..BASE + SIZE` lie in mps2-an386's 4 MiB of code RAM
                // at 0, above everything the linker places (512 KiB, `memory-mps2-an386.x`):
                // no Rust object lives there. Word-aligned.
                unsafe {
                    if magic.read_volatile() != MAGIC {
                        for i in 0..SIZE as usize {
                            at(i).write_volatile(0xff);
                        }
                        magic.write_volatile(MAGIC);
                    }
                }
                RamNor
            }
        }

        impl ErrorType for RamNor {
            type Error = NorFlashErrorKind;
        }

        fn check(offset: u32, len: usize) -> Result<usize, NorFlashErrorKind> {
            let start = offset as usize;
            if start + len > SIZE as usize {
                return Err(NorFlashErrorKind::OutOfBounds);
            }
            Ok(start)
        }

        impl ReadNorFlash for RamNor {
            const READ_SIZE: usize = 1;
            fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
                let start = check(offset, bytes.len())?;
                for (i, b) in bytes.iter_mut().enumerate() {
                    // SAFETY: inside the region (checked above), see `power_on`.
                    *b = unsafe { at(start + i).read_volatile() };
                }
                Ok(())
            }
            fn capacity(&self) -> usize {
                SIZE as usize
            }
        }

        impl NorFlash for RamNor {
            const WRITE_SIZE: usize = 4;
            const ERASE_SIZE: usize = PAGE;
            fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
                let start = check(from, (to - from) as usize)?;
                if !(from as usize).is_multiple_of(PAGE) || !(to as usize).is_multiple_of(PAGE) {
                    return Err(NorFlashErrorKind::NotAligned);
                }
                for i in start..to as usize {
                    // SAFETY: inside the region (checked above), see `power_on`.
                    unsafe { at(i).write_volatile(0xff) };
                }
                Ok(())
            }
            fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
                let start = check(offset, bytes.len())?;
                if !start.is_multiple_of(4) || !bytes.len().is_multiple_of(4) {
                    return Err(NorFlashErrorKind::NotAligned);
                }
                for (i, &b) in bytes.iter().enumerate() {
                    // SAFETY: inside the region (checked above), see `power_on`. A NOR write
                    // only clears bits.
                    unsafe {
                        let p = at(start + i);
                        p.write_volatile(p.read_volatile() & b);
                    }
                }
                Ok(())
            }
        }
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

#[cfg(all(target_os = "none", target_arch = "riscv32"))]
mod arch {
    use microfit_firmware::measure::{self, StackUsage};
    use riscv::register::{mcause, mepc, mtval};
    use riscv_rt::{TrapFrame, entry};

    #[entry]
    fn main() -> ! {
        paint_stack();
        super::train_and_exit()
    }

    /// Every exception without its own handler (riscv-rt's `ExceptionHandler`): logged, then
    /// exit code 1.
    #[unsafe(export_name = "ExceptionHandler")]
    fn exception_handler(_frame: &TrapFrame) -> ! {
        defmt::error!(
            "exception mcause={=usize:x} mepc={=usize:x} mtval={=usize:x}",
            mcause::read().bits(),
            mepc::read(),
            mtval::read()
        );
        exit(false)
    }

    unsafe extern "C" {
        /// Top of the stack (riscv-rt).
        static _stack_start: u32;
        /// Bottom of the stack (riscv-rt's `.stack` section starts here).
        static __estack: u32;
    }

    /// riscv-rt does not paint the stack: paints it here, from its bottom up to the current
    /// stack pointer (everything below it is unused at this point).
    #[inline(always)]
    fn paint_stack() {
        let sp: usize;
        // SAFETY: reads the stack pointer into a register; no memory is touched.
        unsafe { core::arch::asm!("mv {}, sp", out(reg) sp, options(nomem, nostack)) };
        measure::paint_below((&raw const __estack) as usize, sp);
    }

    /// Peak stack from [`paint_stack`]'s painting.
    pub fn stack_usage() -> StackUsage {
        measure::stack_usage(
            (&raw const __estack) as usize,
            (&raw const _stack_start) as usize,
        )
    }

    /// `unimp`: an illegal-instruction exception.
    pub fn undefined_instruction() {
        // SAFETY: `unimp` traps (illegal instruction) into `exception_handler`, which exits.
        unsafe { core::arch::asm!("unimp") };
    }

    pub fn exit(ok: bool) -> ! {
        semihosting::process::exit(if ok { 0 } else { 1 })
    }
}
