//! The Cortex-M0's floating-point run-time routines: the ARM EABI symbols the compiler calls for
//! `f32` arithmetic on `thumbv6m` (`__aeabi_fadd`, `__aeabi_fmul`, ...), in place of
//! compiler-builtins' generic ones. Only on `thumbv6m` builds (`build.rs` sets
//! `microfit_m0_float`): targets with an FPU never call them.
//!
//! * `__aeabi_fadd`, `__aeabi_fsub`, `__aeabi_fmul` and `__aeabi_fdiv`: Thumb-1 assembly for two
//!   normal operands with a normal result — the case that matters for speed — (about 43, 56 and
//!   150 instructions, against about 90, 122 and 170 for compiler-builtins' routines on the M0,
//!   whose products go through the 64-bit `__aeabi_lmul`), and for `x + 0`; every other case
//!   (zeros, subnormals, infinities, NaNs, overflow, underflow) branches to
//!   [`crate::softfloat`]'s complete Rust routines.
//! * the comparisons: [`crate::softfloat`] as it is.
//!
//! The linker takes these definitions first and so never pulls compiler-builtins' versions of the
//! same symbols from its archive. The bits are the same as compiler-builtins' (correct IEEE 754
//! rounding, and its NaN rules): the `softfloat-check` firmware compares both on millions of
//! pairs on the M0 under QEMU (`tests/tests/softfloat_m0.rs`), and W1's weights hash on the M0 is
//! the host's.

use crate::softfloat as sf;

// Register use (AAPCS, soft float): the operands' bits arrive in r0 and r1, the result leaves in
// r0; r0-r3 and r12 may be clobbered, r4-r7 are saved. Numbers in the comments: `s` is the
// significand sum with its leading bit at bit 31 and 8 bits below the last place (bit 7 the round
// bit, bits 6-0 the sticky bits), `ex` the biased exponent of the larger operand `x`.
core::arch::global_asm!(
    ".syntax unified",
    ".section .text.microfit_fadd,\"ax\",%progbits",
    ".p2align 2",
    ".thumb",
    // __aeabi_fsub(a, b) = a + (-b), NaN signs included (compiler-builtins' definition).
    ".global __aeabi_fsub",
    ".type __aeabi_fsub,%function",
    ".thumb_func",
    "__aeabi_fsub:",
    "    movs r2, #1",
    "    lsls r2, r2, #31",
    "    eors r1, r2",
    // Falls through into __aeabi_fadd.
    ".global __aeabi_fadd",
    ".type __aeabi_fadd,%function",
    ".thumb_func",
    "__aeabi_fadd:",
    "    push {{r4, r5, r6, lr}}",
    "    lsls r2, r0, #1", // |a| << 1
    "    lsls r3, r1, #1", // |b| << 1
    "    mov r6, r0",      // x = a ...
    "    cmp r2, r3",
    "    bhs 1f",
    "    mov r6, r1", // ... or b when |b| > |a|
    "    eors r2, r3",
    "    eors r3, r2",
    "    eors r2, r3",
    "1:",
    "    lsrs r4, r2, #24", // ex
    "    cmp r4, #255",
    "    beq 9f",           // x is ∞ or NaN
    "    lsrs r5, r3, #24", // ey
    "    beq 10f",          // y is zero or subnormal
    "    eors r1, r0",      // sign of a ^ sign of b
    "    mov r12, r1",
    "    movs r0, #1",
    "    lsls r0, r0, #31",
    "    lsls r2, r2, #7",
    "    orrs r2, r0", // mx: leading bit at 31, 8 zero bits below
    "    lsls r3, r3, #7",
    "    orrs r3, r0",     // my
    "    subs r5, r4, r5", // d = ex - ey >= 0
    "    beq 3f",
    "    cmp r5, #8",
    "    bhi 2f",
    "    lsrs r3, r5", // d <= 8: only the zero bits below my leave
    "    b 3f",
    "2:",
    "    cmp r5, #32",
    "    bhs 8f",
    "    movs r1, #32",
    "    subs r1, r1, r5",
    "    movs r0, r3",
    "    lsls r0, r1", // the bits that leave
    "    lsrs r3, r5",
    "    subs r1, r0, #1",
    "    sbcs r0, r1", // 1 if any left, else 0
    "    orrs r3, r0", // sticky
    "3:",
    "    mov r1, r12",
    "    lsls r1, r1, #1",
    "    bcs 5f",          // signs differ: subtract
    "    adds r2, r2, r3", // s
    "    bcs 4f",          // carried out of bit 31
    // Normal sum, exponent ex: result = sign and exponent of x + fraction of s, rounded.
    "    lsrs r0, r6, #23",
    "    lsls r0, r0, #23",
    "    lsls r3, r2, #1",
    "    lsrs r3, r3, #9",
    "    adds r0, r0, r3",
    "20:", // round to nearest, ties to even, on the 8 bits of s below the last place
    "    lsls r2, r2, #24",
    "    bpl 22f", // round bit clear
    "    lsls r2, r2, #1",
    "    bne 21f", // above the tie
    "    lsls r1, r0, #31",
    "    beq 22f", // tie, even already
    "21:",
    "    adds r0, #1",
    "22:",
    "    pop {{r4, r5, r6, pc}}",
    "4:", // carry: s = (1 << 32 + s) >> 1 with the bit shifted out kept sticky, ex + 1
    "    lsls r0, r2, #31",
    "    lsrs r0, r0, #31",
    "    lsrs r2, r2, #1",
    "    orrs r2, r0",
    "    movs r0, #1",
    "    lsls r0, r0, #31",
    "    orrs r2, r0",
    "    adds r4, #1",
    "    cmp r4, #255",
    "    bne 6f",
    "    lsrs r0, r6, #31", // overflow: ±∞
    "    lsls r0, r0, #31",
    "    ldr r1, =0x7f800000",
    "    orrs r0, r1",
    "    pop {{r4, r5, r6, pc}}",
    "5:", // subtraction: s = mx - my >= 0
    "    subs r2, r2, r3",
    "    beq 7f", // x - x = +0
    "    bmi 6f", // leading bit still at 31
    "51:",        // normalize: shift left while above exponent 1
    "    cmp r4, #1",
    "    beq 6f", // subnormal result
    "    subs r4, #1",
    "    lsls r2, r2, #1",
    "    bpl 51b",
    "6:", // pack s with exponent ex (>= 1; a subnormal s has no bit 31 and ex = 1)
    "    lsrs r3, r2, #8",
    "    subs r4, #1",
    "    lsls r4, r4, #23",
    "    adds r3, r3, r4",
    "    lsrs r0, r6, #31",
    "    lsls r0, r0, #31",
    "    adds r0, r0, r3",
    "    b 20b",
    "7:",
    "    movs r0, #0",
    "    pop {{r4, r5, r6, pc}}",
    "8:", // d >= 32: y is only a sticky bit
    "    movs r3, #1",
    "    b 3b",
    "10:", // y = ±0 and x ≠ 0: x, as it is (for x = y = 0 the sign rule of the general routine)
    "    cmp r3, #0",
    "    bne 9f",
    "    cmp r2, #0",
    "    beq 9f",
    "    mov r0, r6",
    "    pop {{r4, r5, r6, pc}}",
    "9:", // zero, subnormal, ∞ or NaN operand: the complete routine, on the original bits
    "    bl microfit_fadd_general",
    "    pop {{r4, r5, r6, pc}}",
    ".ltorg",
    ".size __aeabi_fadd, . - __aeabi_fadd",
    "",
    ".section .text.microfit_fmul,\"ax\",%progbits",
    ".p2align 2",
    ".global __aeabi_fmul",
    ".type __aeabi_fmul,%function",
    ".thumb_func",
    "__aeabi_fmul:",
    "    push {{r4, r5, r6, r7, lr}}",
    "    lsls r2, r0, #1",
    "    lsrs r2, r2, #24", // ea
    "    subs r3, r2, #1",
    "    cmp r3, #253",
    "    bhi 9f", // a is zero, subnormal, ∞ or NaN
    "    lsls r3, r1, #1",
    "    lsrs r3, r3, #24", // eb
    "    subs r4, r3, #1",
    "    cmp r4, #253",
    "    bhi 9f",
    "    adds r2, r2, r3",
    "    subs r2, #126", // result exponent when the product's leading bit is at 47
    // Significands split in 12-bit halves: a = a1·2¹² + a0, b = b1·2¹² + b0.
    "    movs r7, #1",
    "    lsls r7, r7, #31",
    "    lsls r3, r0, #8",
    "    orrs r3, r7",
    "    lsrs r3, r3, #20", // a1
    "    lsls r4, r0, #20",
    "    lsrs r4, r4, #20", // a0
    "    lsls r5, r1, #8",
    "    orrs r5, r7",
    "    lsrs r5, r5, #20", // b1
    "    lsls r6, r1, #20",
    "    lsrs r6, r6, #20", // b0
    "    movs r7, r3",
    "    muls r7, r6",     // a1·b0
    "    muls r6, r4",     // a0·b0 = lo
    "    muls r4, r5",     // a0·b1
    "    muls r5, r3",     // a1·b1 = hi
    "    adds r7, r7, r4", // mid < 2²⁵
    // a·b = hi·2²⁴ + mid·2¹² + lo = h·2²⁴ + l: t = lo + (mid mod 2¹²)·2¹², h = hi + mid/2¹² + t/2²⁴
    "    lsls r4, r7, #20",
    "    lsrs r4, r4, #8",
    "    adds r6, r6, r4", // t < 2²⁵
    "    lsrs r7, r7, #12",
    "    adds r5, r5, r7",
    "    lsrs r4, r6, #24",
    "    adds r5, r5, r4", // h in [2²², 2²⁴)
    "    lsls r6, r6, #8", // l << 8: the bits below h, the first at bit 31
    "    lsrs r4, r5, #23",
    "    bne 1f",
    "    lsls r5, r5, #1", // h < 2²³: one more bit from l
    "    lsrs r4, r6, #31",
    "    orrs r5, r4",
    "    lsls r6, r6, #1",
    "    subs r2, #1",
    "1:",
    "    subs r3, r2, #1",
    "    cmp r3, #253",
    "    bhi 9f", // overflow or a subnormal result: the complete routine
    "    lsls r3, r3, #23",
    "    adds r5, r5, r3", // exponent - 1 plus the significand with its leading bit
    "    eors r0, r1",
    "    lsrs r0, r0, #31",
    "    lsls r0, r0, #31",
    "    adds r0, r0, r5",
    "    lsls r6, r6, #1", // C: round bit, Z: nothing below it
    "    bcc 3f",
    "    bne 2f",
    "    lsls r1, r0, #31",
    "    beq 3f",
    "2:",
    "    adds r0, #1",
    "3:",
    "    pop {{r4, r5, r6, r7, pc}}",
    "9:", // the complete routine, on the original bits (r0, r1 are untouched until the sign)
    "    bl microfit_fmul_general",
    "    pop {{r4, r5, r6, r7, pc}}",
    ".size __aeabi_fmul, . - __aeabi_fmul",
    "",
    ".section .text.microfit_fdiv,\"ax\",%progbits",
    ".p2align 2",
    "8:", // the complete routine (before the entry: the unrolled loop is too long to jump over)
    "    bl microfit_fdiv_general",
    "    pop {{r4, r5, r6, pc}}",
    ".global __aeabi_fdiv",
    ".type __aeabi_fdiv,%function",
    ".thumb_func",
    "__aeabi_fdiv:",
    "    push {{r4, r5, r6, lr}}",
    "    lsls r2, r0, #1",
    "    lsrs r2, r2, #24", // ea
    "    subs r3, r2, #1",
    "    cmp r3, #253",
    "    bhi 8b",
    "    lsls r3, r1, #1",
    "    lsrs r3, r3, #24", // eb
    "    subs r4, r3, #1",
    "    cmp r4, #253",
    "    bhi 8b",
    "    subs r2, r2, r3",
    "    adds r2, #127", // result exponent when ma >= mb
    "    movs r6, #1",
    "    lsls r6, r6, #31",
    "    lsls r3, r0, #8",
    "    orrs r3, r6",
    "    lsrs r3, r3, #8", // ma
    "    lsls r4, r1, #8",
    "    orrs r4, r6",
    "    lsrs r4, r4, #8", // mb
    "    cmp r3, r4",
    "    bhs 1f",
    "    adds r3, r3, r3", // ma < mb: one more bit, exponent - 1
    "    subs r2, #1",
    "1:", // remainder r3 in [mb, 2mb): 25 quotient bits, restoring division on the carry flag
    "    movs r5, #0",
    ".rept 25",
    "    cmp r3, r4", // C: r3 >= r4, the quotient bit
    "    bcc 2f",
    "    subs r3, r3, r4", // no borrow: C stays 1
    "2:",
    "    adcs r5, r5", // q = 2q + C
    "    adds r3, r3, r3",
    ".endr",
    "    subs r6, r2, #1",
    "    cmp r6, #253",
    "    bhi 9f", // overflow or a subnormal result: the complete routine
    "    lsls r6, r6, #23",
    "    eors r0, r1",
    "    lsrs r0, r0, #31",
    "    lsls r0, r0, #31",
    "    adds r0, r0, r6",
    "    lsrs r5, r5, #1", // significand with its leading bit; C: round bit
    "    bcc 3f",
    "    adds r0, r0, r5",
    "    cmp r3, #0", // remainder: sticky
    "    bne 2f",
    "    lsls r1, r0, #31",
    "    beq 4f", // tie, even already
    "2:",
    "    adds r0, #1",
    "4:",
    "    pop {{r4, r5, r6, pc}}",
    "3:",
    "    adds r0, r0, r5",
    "    pop {{r4, r5, r6, pc}}",
    "9:",
    "    bl microfit_fdiv_general",
    "    pop {{r4, r5, r6, pc}}",
    ".size __aeabi_fdiv, . - __aeabi_fdiv",
);

/// `a + b` for every input ([`sf::add`]): the cases the assembly leaves out.
#[unsafe(no_mangle)]
extern "aapcs" fn microfit_fadd_general(a: u32, b: u32) -> u32 {
    sf::add(a, b)
}

/// `a · b` for every input ([`sf::mul`]): the cases the assembly leaves out.
#[unsafe(no_mangle)]
extern "aapcs" fn microfit_fmul_general(a: u32, b: u32) -> u32 {
    sf::mul(a, b)
}

/// `a / b` for every input ([`sf::div`]): the cases the assembly leaves out.
#[unsafe(no_mangle)]
extern "aapcs" fn microfit_fdiv_general(a: u32, b: u32) -> u32 {
    sf::div(a, b)
}

/// `a == b` as 1 or 0 (`__aeabi_fcmpeq`).
#[unsafe(no_mangle)]
pub extern "aapcs" fn __aeabi_fcmpeq(a: f32, b: f32) -> i32 {
    i32::from(sf::eq(a.to_bits(), b.to_bits()))
}

/// `a < b` as 1 or 0 (`__aeabi_fcmplt`).
#[unsafe(no_mangle)]
pub extern "aapcs" fn __aeabi_fcmplt(a: f32, b: f32) -> i32 {
    i32::from(sf::lt(a.to_bits(), b.to_bits()))
}

/// `a <= b` as 1 or 0 (`__aeabi_fcmple`).
#[unsafe(no_mangle)]
pub extern "aapcs" fn __aeabi_fcmple(a: f32, b: f32) -> i32 {
    i32::from(sf::le(a.to_bits(), b.to_bits()))
}

/// `a > b` as 1 or 0 (`__aeabi_fcmpgt`).
#[unsafe(no_mangle)]
pub extern "aapcs" fn __aeabi_fcmpgt(a: f32, b: f32) -> i32 {
    i32::from(sf::lt(b.to_bits(), a.to_bits()))
}

/// `a >= b` as 1 or 0 (`__aeabi_fcmpge`).
#[unsafe(no_mangle)]
pub extern "aapcs" fn __aeabi_fcmpge(a: f32, b: f32) -> i32 {
    i32::from(sf::le(b.to_bits(), a.to_bits()))
}

/// 1 when `a` or `b` is NaN (`__aeabi_fcmpun`).
#[unsafe(no_mangle)]
pub extern "aapcs" fn __aeabi_fcmpun(a: f32, b: f32) -> i32 {
    i32::from(sf::is_nan(a.to_bits()) || sf::is_nan(b.to_bits()))
}
