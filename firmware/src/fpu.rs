//! The chip's backend: `vsqrt.f32` on a Cortex-M4F (libm's square root elsewhere), and on
//! the Cortex-M4F Adam's update loop in assembly.
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

// Adam's update of a tensor (`microfit_core::optim::adam::update`), on the Cortex-M4F's FPU:
//
//   m += (g - m)·c1;  v += (g·g - v)·c2;  w -= (m·alpha) / (sqrt(v) + eps)
//
// element by element with the very operations of the Rust loop, in its order (`vmla` is the
// FPU's *chained* multiply-accumulate: the product is rounded, then the sum, exactly as Rust's
// separate `*` and `+`; `vsqrt` is IEEE's correctly rounded square root), so every result has
// the same bits. What differs is how many instructions carry them: four elements of each array
// per `vldmia`/`vstmia`, the square root inline (no call), no index arithmetic — about 12
// instructions per parameter instead of 22.
//
// extern "C" fn(w: *mut f32, g: *const f32, m: *mut f32, v: *mut f32, n: u32,
//               alpha: f32, c1: f32, c2: f32, eps: f32)
// r0 = w, r1 = g, r2 = m, r3 = v, [sp] = n; s0 = alpha, s1 = c1, s2 = c2, s3 = eps.
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
core::arch::global_asm!(
    ".section .text.microfit_adam_update,\"ax\",%progbits",
    ".global microfit_adam_update",
    ".type microfit_adam_update,%function",
    ".p2align 2",
    ".thumb",
    ".fpu fpv4-sp-d16",
    ".thumb_func",
    "microfit_adam_update:",
    "push {{r4, lr}}",
    "vpush {{s16-s19}}",
    "ldr r4, [sp, #24]", // n (above the 8 + 16 bytes pushed)
    "vmov.f32 s16, s0",  // alpha
    "vmov.f32 s17, s1",  // c1 = 1 - beta_1
    "vmov.f32 s18, s2",  // c2 = 1 - beta_2
    "vmov.f32 s19, s3",  // eps
    "lsrs r12, r4, #2",  // blocks of four
    "beq 2f",
    "1:",
    "vldmia r1!, {{s0-s3}}", // g
    "vldmia r2, {{s4-s7}}",  // m
    "vsub.f32 s8, s0, s4",   // m += (g - m)·c1
    "vsub.f32 s9, s1, s5",
    "vsub.f32 s10, s2, s6",
    "vsub.f32 s11, s3, s7",
    "vmla.f32 s4, s8, s17",
    "vmla.f32 s5, s9, s17",
    "vmla.f32 s6, s10, s17",
    "vmla.f32 s7, s11, s17",
    "vstmia r2!, {{s4-s7}}",
    "vldmia r3, {{s8-s11}}", // v
    "vmul.f32 s0, s0, s0",   // v += (g·g - v)·c2
    "vmul.f32 s1, s1, s1",
    "vmul.f32 s2, s2, s2",
    "vmul.f32 s3, s3, s3",
    "vsub.f32 s0, s0, s8",
    "vsub.f32 s1, s1, s9",
    "vsub.f32 s2, s2, s10",
    "vsub.f32 s3, s3, s11",
    "vmla.f32 s8, s0, s18",
    "vmla.f32 s9, s1, s18",
    "vmla.f32 s10, s2, s18",
    "vmla.f32 s11, s3, s18",
    "vstmia r3!, {{s8-s11}}",
    "vmul.f32 s4, s4, s16", // m·alpha
    "vmul.f32 s5, s5, s16",
    "vmul.f32 s6, s6, s16",
    "vmul.f32 s7, s7, s16",
    "vsqrt.f32 s8, s8", // sqrt(v) + eps
    "vsqrt.f32 s9, s9",
    "vsqrt.f32 s10, s10",
    "vsqrt.f32 s11, s11",
    "vadd.f32 s8, s8, s19",
    "vadd.f32 s9, s9, s19",
    "vadd.f32 s10, s10, s19",
    "vadd.f32 s11, s11, s19",
    "vdiv.f32 s4, s4, s8", // (m·alpha) / (sqrt(v) + eps)
    "vdiv.f32 s5, s5, s9",
    "vdiv.f32 s6, s6, s10",
    "vdiv.f32 s7, s7, s11",
    "vldmia r0, {{s12-s15}}", // w -= …
    "vsub.f32 s12, s12, s4",
    "vsub.f32 s13, s13, s5",
    "vsub.f32 s14, s14, s6",
    "vsub.f32 s15, s15, s7",
    "vstmia r0!, {{s12-s15}}",
    "subs r12, r12, #1",
    "bne 1b",
    "2:",
    "ands r4, r4, #3", // the last 0 to 3 elements, one at a time
    "beq 4f",
    "3:",
    "vldmia r1!, {{s0}}",
    "vldr s4, [r2]",
    "vsub.f32 s8, s0, s4",
    "vmla.f32 s4, s8, s17",
    "vstmia r2!, {{s4}}",
    "vldr s8, [r3]",
    "vmul.f32 s0, s0, s0",
    "vsub.f32 s0, s0, s8",
    "vmla.f32 s8, s0, s18",
    "vstmia r3!, {{s8}}",
    "vmul.f32 s4, s4, s16",
    "vsqrt.f32 s8, s8",
    "vadd.f32 s8, s8, s19",
    "vdiv.f32 s4, s4, s8",
    "vldr s12, [r0]",
    "vsub.f32 s12, s12, s4",
    "vstmia r0!, {{s12}}",
    "subs r4, r4, #1",
    "bne 3b",
    "4:",
    "vpop {{s16-s19}}",
    "pop {{r4, pc}}",
    ".size microfit_adam_update, . - microfit_adam_update",
);

// `Σ v_i·0` over `n` values, eight per `vldmia`: NaN exactly when some `v_i` is NaN or ±∞
// (`∞·0` and `NaN·0` are NaN, a finite `v_i·0` is ±0), the test of
// `microfit_core::math::all_finite_inline` on this FPU. Returns 1 when all are finite.
//
// extern "C" fn(v: *const f32, n: u32) -> u32;  r0 = v, r1 = n.
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
core::arch::global_asm!(
    ".section .text.microfit_all_finite,\"ax\",%progbits",
    ".global microfit_all_finite",
    ".type microfit_all_finite,%function",
    ".p2align 2",
    ".thumb",
    ".fpu fpv4-sp-d16",
    ".thumb_func",
    "microfit_all_finite:",
    "movs r3, #0",
    "vmov s0, s1, r3, r3", // s0 = Σ = 0, s1 = 0
    "lsrs r2, r1, #3",     // blocks of eight
    "beq 2f",
    "1:",
    "vldmia r0!, {{s8-s15}}",
    "vmla.f32 s0, s8, s1",
    "vmla.f32 s0, s9, s1",
    "vmla.f32 s0, s10, s1",
    "vmla.f32 s0, s11, s1",
    "vmla.f32 s0, s12, s1",
    "vmla.f32 s0, s13, s1",
    "vmla.f32 s0, s14, s1",
    "vmla.f32 s0, s15, s1",
    "subs r2, r2, #1",
    "bne 1b",
    "2:",
    "ands r1, r1, #7",
    "beq 4f",
    "3:",
    "vldmia r0!, {{s8}}",
    "vmla.f32 s0, s8, s1",
    "subs r1, r1, #1",
    "bne 3b",
    "4:",
    "movs r0, #1",
    "vcmp.f32 s0, s0",
    "vmrs APSR_nzcv, fpscr",
    "it vs",
    "movvs r0, #0",
    "bx lr",
    ".size microfit_all_finite, . - microfit_all_finite",
);

// `v[i] = +0` for `n` values, eight per `vstmia` (a training step's gradients).
//
// extern "C" fn(v: *mut f32, n: u32);  r0 = v, r1 = n.
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
core::arch::global_asm!(
    ".section .text.microfit_zero,\"ax\",%progbits",
    ".global microfit_zero",
    ".type microfit_zero,%function",
    ".p2align 2",
    ".thumb",
    ".fpu fpv4-sp-d16",
    ".thumb_func",
    "microfit_zero:",
    "movs r3, #0",
    "vmov s8, s9, r3, r3",
    "vmov s10, s11, r3, r3",
    "vmov s12, s13, r3, r3",
    "vmov s14, s15, r3, r3",
    "lsrs r2, r1, #3",
    "beq 2f",
    "1:",
    "vstmia r0!, {{s8-s15}}",
    "subs r2, r2, #1",
    "bne 1b",
    "2:",
    "ands r1, r1, #7",
    "beq 4f",
    "3:",
    "vstmia r0!, {{s8}}",
    "subs r1, r1, #1",
    "bne 3b",
    "4:",
    "bx lr",
    ".size microfit_zero, . - microfit_zero",
);

// An L2 penalty and its gradient (`microfit_core::regularizer::L2`'s one pass, `Backend::l2_pass`)
// over `blocks` blocks of eight values, eight per `vldmia`:
//
//   s[j] += w·w  (lane j = i mod 8);   g += (2w)·l2  when g is not null;
//   result = l2 · (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)))
//
// with the core's operations in its order (`vmla` is the chained multiply-accumulate: the
// product rounded, then the sum, as Rust's `*` and `+`; `w + w` is `w · 2` exactly; the core's
// `· 1` of the gradient's scale changes no bit), so the same bits as the core's
// `L2::blocks`. Lanes in s0-s7, the block in s8-s15, the gradients in s16-s23, `l2` in s24.
//
// extern "C" fn(w: *const f32, blocks: u32, g: *mut f32 (or null), l2: f32) -> f32;
// r0 = w, r1 = blocks, r2 = g, s0 = l2; result in s0.
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
core::arch::global_asm!(
    ".section .text.microfit_l2_pass,\"ax\",%progbits",
    ".global microfit_l2_pass",
    ".type microfit_l2_pass,%function",
    ".p2align 2",
    ".thumb",
    ".fpu fpv4-sp-d16",
    ".thumb_func",
    "microfit_l2_pass:",
    "vpush {{s16-s24}}",
    "vmov.f32 s24, s0", // l2
    "movs r3, #0",
    "vmov s0, s1, r3, r3", // the lanes start at +0
    "vmov s2, s3, r3, r3",
    "vmov s4, s5, r3, r3",
    "vmov s6, s7, r3, r3",
    "cbz r1, 3f",
    "1:",
    "vldmia r0!, {{s8-s15}}", // w
    "vmla.f32 s0, s8, s8",    // s[j] += w·w
    "vmla.f32 s1, s9, s9",
    "vmla.f32 s2, s10, s10",
    "vmla.f32 s3, s11, s11",
    "vmla.f32 s4, s12, s12",
    "vmla.f32 s5, s13, s13",
    "vmla.f32 s6, s14, s14",
    "vmla.f32 s7, s15, s15",
    "cbz r2, 2f",
    "vldmia r2, {{s16-s23}}", // g
    "vadd.f32 s8, s8, s8",    // 2w
    "vadd.f32 s9, s9, s9",
    "vadd.f32 s10, s10, s10",
    "vadd.f32 s11, s11, s11",
    "vadd.f32 s12, s12, s12",
    "vadd.f32 s13, s13, s13",
    "vadd.f32 s14, s14, s14",
    "vadd.f32 s15, s15, s15",
    "vmla.f32 s16, s8, s24", // g += (2w)·l2
    "vmla.f32 s17, s9, s24",
    "vmla.f32 s18, s10, s24",
    "vmla.f32 s19, s11, s24",
    "vmla.f32 s20, s12, s24",
    "vmla.f32 s21, s13, s24",
    "vmla.f32 s22, s14, s24",
    "vmla.f32 s23, s15, s24",
    "vstmia r2!, {{s16-s23}}",
    "2:",
    "subs r1, r1, #1",
    "bne 1b",
    "3:",
    "vadd.f32 s0, s0, s1", // ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    "vadd.f32 s2, s2, s3",
    "vadd.f32 s4, s4, s5",
    "vadd.f32 s6, s6, s7",
    "vadd.f32 s0, s0, s2",
    "vadd.f32 s4, s4, s6",
    "vadd.f32 s0, s0, s4",
    "vmul.f32 s0, s24, s0", // l2 · Σ
    "vpop {{s16-s24}}",
    "bx lr",
    ".size microfit_l2_pass, . - microfit_l2_pass",
);

#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
unsafe extern "C" {
    /// The loop above: `blocks` blocks of eight values of `w`, and of `g` unless it is null.
    fn microfit_l2_pass(w: *const f32, blocks: u32, g: *mut f32, l2: f32) -> f32;

    /// The loop above: `n` zeros from `v`.
    fn microfit_zero(v: *mut f32, n: u32);

    /// The loop above: 1 when the `n` values at `v` are all finite.
    fn microfit_all_finite(v: *const f32, n: u32) -> u32;

    /// The loop above: `n` elements of `w`, `g`, `m`, `v`.
    fn microfit_adam_update(
        w: *mut f32,
        g: *const f32,
        m: *mut f32,
        v: *mut f32,
        n: u32,
        alpha: f32,
        c1: f32,
        c2: f32,
        eps: f32,
    );
}

/// The chip's backend for the core's engine: the core's portable code with this module's
/// square root ([`sqrt`], the FPU's `vsqrt.f32` on a Cortex-M4F) and, on the Cortex-M4F,
/// Adam's update loop in assembly (same operations, same order). Same bits as
/// `microfit_core::backend::Portable`: `tests/tests/host_vs_firmware.rs` compares every epoch
/// and the final weights of the chips with the host.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chip;

impl microfit_core::backend::Backend for Chip {
    #[inline(always)]
    fn sqrt(x: f32) -> f32 {
        sqrt(x)
    }

    /// Adam's `β^t` from TensorFlow's `powf` (`microfit_core::math::powf`) without its exact
    /// evaluation, when `build.rs` has checked on the host that the integer fast path gives
    /// both of the workload's `β^t` for every step of the run (`cfg(microfit_powf_fast)`,
    /// `powf_fast_covers`): the same bits, 1.7 KB less flash. NaN for any other input (none
    /// in the run; the next step's finiteness check would stop training).
    #[cfg(microfit_powf_fast)]
    #[inline(always)]
    fn powf(x: f32, y: f32) -> f32 {
        microfit_core::math::powf::powf_fast(x, y).unwrap_or(f32::NAN)
    }

    /// True when a batch's inputs (or dense targets) are all finite. The workload's inputs are
    /// a `static` in flash that `build.rs` checked (`microfit-workload` refuses a non-finite
    /// value) and that never changes: a slice of them is known finite without a scan (the
    /// training step's check of every batch). Anything else is scanned (`all_finite`).
    ///
    /// Only here, not in `all_finite`: the gradients' check would compare their addresses with
    /// the dataset's too, which the compiler cannot decide — it kept four flags in the epoch's
    /// frame (16 B of W1's stack).
    #[inline(always)]
    fn data_finite(v: &[f32]) -> bool {
        let data = crate::workload::X.as_flattened().as_ptr_range();
        let p = v.as_ptr_range();
        (p.start >= data.start && p.end <= data.end) || Self::all_finite(v)
    }

    /// True when no value is NaN or ±∞: eight values per `vldmia` on a Cortex-M4F.
    #[inline(always)]
    fn all_finite(v: &[f32]) -> bool {
        #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
        {
            // SAFETY: `v` is valid for `v.len()` values; the function reads exactly those,
            // uses only the caller-saved r0-r3, s0, s1, s8-s15 and returns.
            unsafe { microfit_all_finite(v.as_ptr(), v.len() as u32) != 0 }
        }
        #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
        {
            microfit_core::math::all_finite_inline(v)
        }
    }

    /// On a Cortex-M4F, a tensor of whole blocks of eight (every Dense kernel of W1 and W2;
    /// a layer's sizes are constants, so the test is made when the firmware is built) with
    /// all its gradients or none goes through the loop in assembly above; anything else
    /// through the core's (`L2`'s pass). The same bits either way.
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    #[inline(always)]
    fn l2_pass(w: &[f32], g: &mut [f32], l2: f32) -> f32 {
        if !w.len().is_multiple_of(8) || (!g.is_empty() && g.len() < w.len()) {
            use microfit_core::regularizer::Regularizer;
            return microfit_core::regularizer::L2 { l2 }.penalty_and_grad(w, 0, g, 1.0);
        }
        let gp = if g.is_empty() {
            core::ptr::null_mut()
        } else {
            g.as_mut_ptr()
        };
        // SAFETY: `w` is valid for its `w.len()` values, read in `w.len() / 8` whole blocks;
        // `g`, when not null, is exclusively borrowed and holds at least `w.len()` values, of
        // which the function reads and writes the first `w.len()`. It follows the AAPCS-VFP
        // (saves the s16-s24 it uses; r0-r3, s0-s15 are the caller's to lose) and touches
        // nothing else.
        unsafe { microfit_l2_pass(w.as_ptr(), (w.len() / 8) as u32, gp, l2) }
    }

    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    #[inline(always)]
    fn zero(v: &mut [f32]) {
        // SAFETY: `v` is valid and exclusively borrowed for `v.len()` values; the function
        // writes exactly those and uses only the caller-saved r0-r3 and s8-s15.
        unsafe { microfit_zero(v.as_mut_ptr(), v.len() as u32) }
    }

    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    #[inline(always)]
    fn adam_update(u: microfit_core::optim::adam::Update<'_>) {
        let n = u.w.len().min(u.g.len()).min(u.m.len()).min(u.v.len());
        // SAFETY: the four pointers are valid for `n` elements (the shortest slice), `w`, `m`
        // and `v` exclusively borrowed, `g` shared and not aliased by them (Rust's borrows);
        // the function reads and writes exactly those `n` elements of each, follows the
        // AAPCS-VFP (saves the r4, lr and s16-s19 it uses) and touches nothing else.
        unsafe {
            microfit_adam_update(
                u.w.as_mut_ptr(),
                u.g.as_ptr(),
                u.m.as_mut_ptr(),
                u.v.as_mut_ptr(),
                n as u32,
                u.alpha,
                u.one_minus_b1,
                u.one_minus_b2,
                u.epsilon,
            );
        }
    }
}
