//! Measurement hooks: the instruction-count marker and the painted-stack readout.

/// Marker for `tools/qemu-icount`: the plugin records the running instruction count each time
/// this function's first instruction executes (`MARK k N` in its log). The app calls it right
/// before and right after each epoch's training, so region `i` = `MARK[2i+1] - MARK[2i]` is
/// training only (the defmt logging between epochs is outside). A call costs 4 instructions.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icount_mark() {
    // Opaque to the optimizer: the calls are kept and the function is not merged with another.
    core::hint::black_box(());
}

/// Stack use measured from cortex-m-rt's painting (feature `paint-stack`: every word from
/// `_stack_end` up to `_stack_start` is `0xCCCC_CCCC` at reset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackUsage {
    /// Deepest stack reached so far, in bytes (interrupt and exception frames included).
    pub peak_bytes: u32,
    /// Room reserved for the stack (`_stack_start - _stack_end`), in bytes.
    pub size_bytes: u32,
}

/// Word every stack location holds until it is first used (cortex-m-rt's `paint-stack`).
pub const PAINT: u32 = 0xCCCC_CCCC;

/// Stack use measured from its painting: scans up from `bottom` (the lowest stack address) to
/// `top` (the initial stack pointer) for the first word that is no longer [`PAINT`].
///
/// `bottom..top` must be the stack region the runtime reserved in RAM, word-aligned, painted
/// with [`PAINT`] at reset (cortex-m-rt's `paint-stack`) or by [`paint_below`].
pub fn stack_usage(bottom: usize, top: usize) -> StackUsage {
    let mut p = bottom;
    while p < top {
        // SAFETY: `bottom..top` is the stack region the runtime reserved in RAM (word-aligned,
        // see above); reading it volatile never aliases a Rust reference.
        let w = unsafe { core::ptr::read_volatile(p as *const u32) };
        if w != PAINT {
            break;
        }
        p += 4;
    }
    StackUsage {
        peak_bytes: (top - p) as u32,
        size_bytes: (top - bottom) as u32,
    }
}

/// Paints the unused stack `bottom..sp` with [`PAINT`] (for runtimes that do not, e.g.
/// riscv-rt). `sp` must be the current stack pointer read by the caller's own frame, `bottom`
/// the lowest address of the stack region: nothing lives below the stack pointer.
#[inline(always)]
pub fn paint_below(bottom: usize, sp: usize) {
    let mut p = bottom;
    while p + 4 <= sp {
        // SAFETY: `bottom..sp` is stack memory below the stack pointer: reserved for the
        // stack, word-aligned, and holding no live value (interrupts are off at this point).
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// The stack use of a cortex-m-rt program (its `_stack_end` .. `_stack_start` region, painted at
/// reset with feature `paint-stack`): what the Arm binaries pass to `app::run`.
#[cfg(target_arch = "arm")]
pub fn cortex_m_rt_stack_usage() -> StackUsage {
    unsafe extern "C" {
        /// Top of the stack (cortex-m-rt's link.x).
        static _stack_start: u32;
        /// Bottom of the stack (cortex-m-rt's link.x).
        static _stack_end: u32;
    }
    stack_usage(
        (&raw const _stack_end) as usize,
        (&raw const _stack_start) as usize,
    )
}
