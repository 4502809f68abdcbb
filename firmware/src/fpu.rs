//! The square root of the chip: `vsqrt.f32` on a Cortex-M4F, libm's elsewhere.
//!
//! `libm::sqrtf` is software on `thumbv7em-none-eabihf` (about 50 instructions a call; Adam takes
//! one per parameter and step). The FPU's `vsqrt.f32` is IEEE 754's correctly rounded square
//! root, as is libm's, so both return the same bits for every input (NaN payloads aside, and Adam
//! only takes roots of `v ≥ 0`). Inline `asm!` with FP registers needs an unstable feature on
//! Rust 1.95, so the instruction sits in a 2-instruction out-of-line function written with
//! `global_asm!` (hard-float ABI: argument and result in `s0`).

#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
core::arch::global_asm!(
    ".section .text.microfit_vsqrt,\"ax\",%progbits",
    ".global microfit_vsqrt",
    ".type microfit_vsqrt,%function",
    ".p2align 1",
    ".thumb",
    ".fpu fpv4-sp-d16",
    ".thumb_func",
    "microfit_vsqrt:",
    "vsqrt.f32 s0, s0",
    "bx lr",
    ".size microfit_vsqrt, . - microfit_vsqrt",
);

#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
unsafe extern "C" {
    // SAFETY (of declaring it `safe`): the function above reads `s0`, writes `s0` and returns,
    // as the AAPCS-VFP calling convention of `extern "C" fn(f32) -> f32` expects; it touches no
    // memory and no other register.
    safe fn microfit_vsqrt(x: f32) -> f32;
}

/// Correctly rounded square root: the FPU's `vsqrt.f32` on a Cortex-M4F (hard-float target),
/// [`microfit_core::math::sqrt`] (libm) elsewhere. Same bits either way: `tests/tests/host_vs_firmware.rs`
/// checks every epoch and the final weights of the M4F run against the host's libm run.
#[inline(always)]
pub fn sqrt(x: f32) -> f32 {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    {
        microfit_vsqrt(x)
    }
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
    {
        microfit_core::math::sqrt(x)
    }
}

/// The chip's backend for the core's engine: the core's portable code with this module's
/// square root ([`sqrt`], the FPU's `vsqrt.f32` on a Cortex-M4F). Same bits as
/// `microfit_core::backend::Portable`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chip;

impl microfit_core::backend::Backend for Chip {
    #[inline(always)]
    fn sqrt(x: f32) -> f32 {
        sqrt(x)
    }
}
