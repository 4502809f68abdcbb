//! The firmware's no-panic contract, measured: `cargo xtask fw-bench --json` builds and runs
//! every firmware variant it measures (W1, W1+L2, W2, W2+L2 on the Cortex-M4F, W1 on the
//! Cortex-M0 and on RISC-V, and whatever rows it grows) and analyses each ELF; every one must have **zero** branches into panic entry
//! points and **zero** indirect calls reachable from `train_epoch` (an indirect call is a path
//! the analysis cannot follow), and the M0 must compute the M4F's weights bit for bit.
//!
//! Skips loudly without `qemu-system-arm` or the targets, unless `MICROFIT_REQUIRE_QEMU=1`.

use std::process::{Command, Stdio};

use microfit_tests::qemu::{M0, M4F, require_qemu, workspace_root};

#[test]
fn every_firmware_build_has_no_panic_site_and_no_indirect_call() -> Result<(), String> {
    if require_qemu(M4F)?.is_none() || require_qemu(M0)?.is_none() {
        return Ok(());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["run", "-q", "-p", "xtask", "--", "fw-bench", "--json"])
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo xtask fw-bench: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo xtask fw-bench --json failed: {}",
            out.status
        ));
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("fw-bench --json printed no JSON: {e}"))?;
    let rows = doc["rows"].as_array().ok_or("fw-bench: no rows")?;
    for (workload, cpu) in [
        ("W1", "M4F"),
        ("W1+L2", "M4F"),
        ("W2", "M4F"),
        ("W2+L2", "M4F"),
        ("W2-frozen", "M4F"),
        ("W1", "M0"),
        ("W1", "RV32"),
    ] {
        assert!(
            rows.iter()
                .any(|r| r["workload"] == workload && r["cpu"] == cpu),
            "fw-bench has no {workload} row on {cpu}: {doc:#}"
        );
    }
    for r in rows {
        let name = format!("{} on {} ({})", r["workload"], r["cpu"], r["features"]);
        let panics = r["panic_call_sites"].as_u64();
        let indirect = r["indirect_calls_reachable_from_train_epoch"].as_u64();
        let reachable = r["functions_reachable_from_train_epoch"].as_u64();
        println!(
            "{name}: {panics:?} panic sites, {indirect:?} indirect calls, {reachable:?} functions \
             reachable from train_epoch, {} instructions/sample",
            r["instructions_per_sample"]
        );
        assert!(
            reachable.is_some_and(|n| n > 0),
            "{name}: the analysis found no code reachable from train_epoch"
        );
        assert_eq!(
            panics,
            Some(0),
            "{name}: panic sites {:#}",
            r["panic_call_sites_detail"]
        );
        assert_eq!(indirect, Some(0), "{name}: indirect calls");
    }
    assert_eq!(
        doc["w1_m0_weights_equal_m4f"],
        serde_json::Value::Bool(true),
        "W1 on the M0 and the M4F end with different weights"
    );
    Ok(())
}
