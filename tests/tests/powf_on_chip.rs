//! Keras' `β^t` on the chip: the `powf-check` firmware image (`firmware/src/powf_check.rs`)
//! computes `microfit_core::math::powf` on a Cortex-M4F (QEMU `mps2-an386`) and a Cortex-M0
//! (QEMU `microbit`, soft float) for the entries of the golden folder's `adam_power` file(s),
//! and every result must have the file's bits: for each `β`, the steps `t = 1..=n` that the file
//! lists without a gap are compared through a 64-bit FNV-1a hash of all their bits, every other
//! `t` one by one. The expected bits stay on the host; only `(β, t)` go into the image
//! (`MICROFIT_POWF_SAMPLE`). With the shipped file that is all 19,800 entries.
//!
//! Skips loudly without `qemu-system-arm` or the target, unless `MICROFIT_REQUIRE_QEMU=1`.

use std::collections::BTreeMap;
use std::time::Duration;

use microfit_tests::golden::{self, Kind, PowEntry};
use microfit_tests::qemu::{Board, M0, M4F, field, require_qemu};

/// Every entry of every `adam_power` file of the golden folder.
fn entries() -> Vec<PowEntry> {
    let dir = golden::golden_dir();
    let mut out = Vec::new();
    for p in golden::list(&dir).expect("golden folder").files {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let v = golden::read_json(&p).unwrap_or_else(|e| panic!("{e}"));
        if golden::kind_of(&name, &v) == Ok(Kind::AdamPower) {
            out.extend(golden::pow_entries(&v));
        }
    }
    out
}

/// The 64-bit FNV-1a of `bits`, one `u32` word per step (as `powf_check.rs`).
fn fnv(bits: impl Iterator<Item = u32>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bits {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// What the chip must print: per `β` the hash of `t = 1..=n` (`n` the gap-free run from 1) and
/// the bits of every other entry.
struct Plan {
    sample: String,
    hashes: BTreeMap<u32, (u32, u64)>,
    singles: BTreeMap<(u32, u32), u32>,
    total: usize,
}

fn plan(entries: &[PowEntry]) -> Plan {
    let mut by_beta: BTreeMap<u32, BTreeMap<u32, u32>> = BTreeMap::new();
    for e in entries {
        by_beta
            .entry(e.beta.to_bits())
            .or_default()
            .insert(e.t, e.bits);
    }
    let (mut items, mut hashes, mut singles) = (Vec::new(), BTreeMap::new(), BTreeMap::new());
    for (beta, ts) in &by_beta {
        let mut n = 0u32;
        while ts.contains_key(&(n + 1)) {
            n += 1;
        }
        if n > 0 {
            items.push(format!("H:{beta:x}:{n}"));
            hashes.insert(*beta, (n, fnv((1..=n).map(|t| ts[&t]))));
        }
        for (&t, &bits) in ts.range(n + 1..) {
            items.push(format!("{beta:x}:{t}"));
            singles.insert((*beta, t), bits);
        }
    }
    Plan {
        sample: items.join(","),
        hashes,
        singles,
        total: by_beta.values().map(BTreeMap::len).sum(),
    }
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("hex {s:?}"))
}

fn check_on(board: Board) -> Result<(), String> {
    let entries = entries();
    if entries.is_empty() {
        assert!(
            !golden::is_default_dir(),
            "the shipped golden folder has no adam_power file"
        );
        eprintln!(
            "*** SKIPPED powf on chip: no adam_power file in {}",
            golden::golden_dir().display()
        );
        return Ok(());
    }
    let Some(qemu) = require_qemu(board)? else {
        return Ok(());
    };
    let p = plan(&entries);
    let run = qemu.build_and_run_with(
        &["qemu", "w1", "powf-check"],
        None,
        &[("MICROFIT_POWF_SAMPLE", &p.sample)],
        Duration::from_secs(300),
    )?;
    if run.exit_code() != Some(0) {
        return Err(format!(
            "powf-check on {} exited {:?}\n{}",
            board.machine,
            run.exit_code(),
            run.transcript()
        ));
    }
    let (mut hashed, mut single, mut computed) = (0usize, 0usize, None);
    for line in &run.lines {
        let msg = line.split_once(' ').map_or(line.as_str(), |x| x.1);
        let beta = field(msg, "beta").map(|b| hex(b) as u32);
        if msg.starts_with("powf_hash ") {
            let (beta, n, h) = (
                beta.expect("beta"),
                field(msg, "n")
                    .and_then(|n| n.parse::<u32>().ok())
                    .expect("n"),
                hex(field(msg, "fnv").expect("fnv")),
            );
            assert_eq!(
                p.hashes.get(&beta),
                Some(&(n, h)),
                "{}: β = {} (bits {beta:#x}), t = 1..={n}: the chip's hash of the bits differs \
                 from the file's",
                board.machine,
                f32::from_bits(beta)
            );
            hashed += n as usize;
        } else if msg.starts_with("powf ") {
            let beta = beta.expect("beta");
            let t: u32 = field(msg, "t").and_then(|t| t.parse().ok()).expect("t");
            let bits = hex(field(msg, "bits").expect("bits")) as u32;
            assert_eq!(
                p.singles.get(&(beta, t)).copied(),
                Some(bits),
                "{}: β = {} (bits {beta:#x}), t = {t}: the chip gives {bits:#010x}",
                board.machine,
                f32::from_bits(beta)
            );
            single += 1;
        } else if msg.starts_with("powf_done ") {
            computed = field(msg, "n").and_then(|n| n.parse::<usize>().ok());
        }
    }
    assert_eq!(
        hashed,
        p.hashes.values().map(|(n, _)| *n as usize).sum::<usize>()
    );
    assert_eq!(single, p.singles.len(), "{}", run.transcript());
    assert_eq!(computed, Some(p.total));
    println!(
        "powf on {} ({}): {} entries of the adam_power file(s) reproduced bit for bit \
         ({hashed} through per-β hashes of t = 1..n, {single} one by one)",
        board.machine, board.target, p.total
    );
    Ok(())
}

#[test]
fn keras_beta_power_on_cortex_m4f() -> Result<(), String> {
    check_on(M4F)
}

#[test]
fn keras_beta_power_on_cortex_m0() -> Result<(), String> {
    check_on(M0)
}
