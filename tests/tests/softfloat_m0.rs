//! The firmware's Cortex-M0 floating-point routines (`firmware/src/aeabi.rs`: Thumb-1 assembly
//! for add, subtract, multiply and divide, Rust for the rest) against compiler-builtins' own on
//! the M0 itself under QEMU: the `softfloat-check` firmware runs both on 2 million operand pairs
//! biased towards edge cases (ties, cancellation, subnormals, overflow, zeros, infinities, NaNs)
//! through the four operations and the six comparisons, and every result must be the same bits.
//! (`firmware/src/softfloat.rs`'s unit tests check the same routines against the host's IEEE
//! arithmetic; `firmware_smoke.rs` and `host_vs_firmware.rs` check W1's bits on the M0.)
//!
//! Skips loudly without `qemu-system-arm` or the target, unless `MICROFIT_REQUIRE_QEMU=1`.

use std::time::Duration;

use microfit_tests::qemu::{M0, require_qemu};

#[test]
fn m0_float_routines_match_compiler_builtins_bit_for_bit() -> Result<(), String> {
    let Some(qemu) = require_qemu(M0)? else {
        return Ok(());
    };
    let run = qemu.build_and_run(&["qemu", "w1", "softfloat-check"], Duration::from_secs(300))?;
    let summary = run
        .lines
        .iter()
        .find(|l| l.contains("softfloat-check pairs="))
        .ok_or_else(|| format!("no summary line\n{}", run.transcript()))?;
    assert!(
        summary.ends_with("pairs=2000000 mismatches=0"),
        "{summary}\n{}",
        run.transcript()
    );
    assert_eq!(run.exit_code(), Some(0), "{}", run.transcript());
    Ok(())
}
