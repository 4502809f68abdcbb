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

unsafe extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

/// Scans up from `_stack_end` for the first word that is no longer the paint pattern.
pub fn stack_usage() -> StackUsage {
    let bottom = (&raw const _stack_end) as usize;
    let top = (&raw const _stack_start) as usize;
    let mut p = bottom;
    while p < top {
        // SAFETY: `bottom..top` is the stack region cortex-m-rt reserved in RAM (word-aligned, its
        // link.x asserts it); reading it volatile never aliases a Rust reference.
        let w = unsafe { core::ptr::read_volatile(p as *const u32) };
        if w != 0xCCCC_CCCC {
            break;
        }
        p += 4;
    }
    StackUsage {
        peak_bytes: (top - p) as u32,
        size_bytes: (top - bottom) as u32,
    }
}
