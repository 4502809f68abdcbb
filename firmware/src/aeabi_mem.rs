//! `__aeabi_memclr8` as `__aeabi_memclr4` (ARM builds): a region aligned to 8 bytes is aligned
//! to 4, so one routine serves both. The compiler calls the 8-byte variant where it knows the
//! destination 8-aligned — the weights that `main` zeroes in place, in a frame the ARM ABI keeps
//! 8-aligned — and the 4-byte one elsewhere; compiler-builtins' two routines were 174 B of flash
//! each. The linker takes this definition first and so never pulls compiler-builtins' version
//! from its archive (as [`crate::aeabi`]'s on the Cortex-M0).

unsafe extern "C" {
    /// compiler-builtins' `memset(dest, 0, n)` for a 4-aligned `dest` and any `n`.
    fn __aeabi_memclr4(dest: *mut u8, n: usize);
}

/// `memset(dest, 0, n)` for an 8-aligned `dest`: [`__aeabi_memclr4`].
///
/// # Safety
/// `dest` is valid for writes of `n` bytes and 8-aligned (the ARM run-time ABI's contract).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memclr8(dest: *mut u8, n: usize) {
    // SAFETY: 8-aligned is 4-aligned; the caller's contract is the callee's.
    unsafe { __aeabi_memclr4(dest, n) }
}
