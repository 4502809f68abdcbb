//! Weights that survive a reset, on the emulated Cortex-M4F: the `persist` firmware saves a
//! checkpoint (weights, Adam's `m`, `v` and step count, the epoch) after every epoch with
//! sequential-storage, and with `persist-reset-test` resets the chip (SYSRESETREQ) after epochs
//! 20 and 40. QEMU's `mps2-an386` has no flash — its code memory is RAM — but keeps RAM across
//! a system reset, so the checkpoints sit in a NOR flash simulated in that RAM
//! (`firmware/src/main.rs`, `ram_nor`). Three boots make one run, and it must end with the bits of
//! an uninterrupted run: every epoch's line and the final weights.
//!
//! Power cuts at every single flash write step are tested on the host, on a simulated NOR flash
//! (`firmware/src/resume.rs`, `cargo test -p microfit-firmware --release --features persist`).
//!
//! Skips loudly without `qemu-system-arm` or the target, unless `MICROFIT_REQUIRE_QEMU=1`.

use std::time::Duration;

use microfit_tests::qemu::{M4F, require_qemu};

#[test]
fn w1_resumes_after_two_resets_with_the_bits_of_an_uninterrupted_run() -> Result<(), String> {
    let Some(qemu) = require_qemu(M4F)? else {
        return Ok(());
    };
    let timeout = Duration::from_secs(120);
    let reset = qemu.build_and_run(&["qemu", "w1", "persist", "persist-reset-test"], timeout)?;
    let plain = qemu.build_and_run(&["qemu", "w1"], timeout)?;
    let t = reset.transcript();
    assert_eq!(reset.exit_code(), Some(0), "{t}");
    let starts = reset.lines.iter().filter(|l| l.contains(" start ")).count();
    assert_eq!(starts, 3, "three boots\n{t}");
    let resumes: Vec<&str> = reset
        .lines
        .iter()
        .filter_map(|l| l.strip_prefix("INFO resume "))
        .collect();
    assert_eq!(
        resumes,
        ["none", "epoch=20 steps=300", "epoch=40 steps=600"],
        "{t}"
    );
    let epochs: Vec<u32> = reset.log.epochs.iter().map(|e| e.epoch).collect();
    assert_eq!(epochs, (1..=50).collect::<Vec<_>>(), "each epoch once\n{t}");
    assert_eq!(reset.log.epochs, plain.log.epochs, "per-epoch bits");
    assert_eq!(
        reset.log.eval_data_loss.map(f32::to_bits),
        plain.log.eval_data_loss.map(f32::to_bits)
    );
    assert!(plain.log.weights_hash.is_some());
    assert_eq!(
        reset.log.weights_hash, plain.log.weights_hash,
        "final weights"
    );
    Ok(())
}
