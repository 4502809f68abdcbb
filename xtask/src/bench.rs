//! `cargo xtask fw-bench`: every workload on the emulated chip, measured.
//!
//! * instructions: tools/qemu-icount counts guest instructions exactly between calls of the
//!   firmware's `icount_mark` (called right before and after each epoch's training, so the
//!   defmt logging between epochs is not counted). Per sample = (Σ regions - 4 per region for
//!   the marker call) / samples trained (from the log).
//! * flash = text + data, static RAM = data + bss (Berkeley sizes, what `size` prints), read
//!   from the ELF; "dataset" = the `MICROFIT_DATASET_X` + `MICROFIT_DATASET_LABELS` (or
//!   `MICROFIT_DATASET_Y`) symbols (the initial weights, `MICROFIT_WEIGHTS`, stay in "without
//!   dataset").
//! * peak stack: the firmware's painted-stack readout (log line `stack peak_bytes=`).
//! * final loss/accuracy: the firmware's full-data evaluation after training (`eval` line).
//! * panic sites: branches into panic entry points (`core::panicking::*` and core's other
//!   out-of-line panic helpers, see `elf::is_panic_entry`) from code reachable from `train_epoch`,
//!   following direct calls and tail branches; indirect calls are counted separately.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use serde_json::json;

use xtask::elf::{Elf, panic_sites};
use xtask::harness::{self, Board, M0, M4F, Qemu, RV32};

/// Instructions the marker call itself adds to each measured region (tools/qemu-icount/README.md):
/// on Thumb the marker's body (`push`, `mov`, `pop`) and the next `bl icount_mark`; on RISC-V
/// its `ret` and the next call, `auipc ra` + `jalr` (rust-lld does not relax the calls here).
fn marker_overhead(board: Board) -> u64 {
    if board == RV32 { 3 } else { 4 }
}

struct Variant {
    name: &'static str,
    arch: Board,
    features: &'static [&'static str],
    l2: f64,
    /// A workload file of `firmware/data/` instead of the bundled W1/W2 the features select.
    workload: Option<&'static str>,
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "W1",
        arch: M4F,
        features: &["qemu", "w1"],
        l2: 0.0,
        workload: None,
    },
    Variant {
        name: "W1+L2",
        arch: M4F,
        features: &["qemu", "w1", "l2"],
        l2: 1e-3,
        workload: None,
    },
    Variant {
        name: "W2",
        arch: M4F,
        features: &["qemu", "w2"],
        l2: 0.0,
        workload: None,
    },
    Variant {
        name: "W2+L2",
        arch: M4F,
        features: &["qemu", "w2", "l2"],
        l2: 1e-4,
        workload: None,
    },
    // Fine-tuning (issue 12): W2 trained on the host, its first layer frozen (weights in flash),
    // MaxNorm on the last kernel (`firmware/data/w2_frozen.json`).
    Variant {
        name: "W2-frozen",
        arch: M4F,
        features: &["qemu", "w2-frozen"],
        l2: 0.0,
        workload: None,
    },
    Variant {
        name: "W1",
        arch: M0,
        features: &["qemu", "w1"],
        l2: 0.0,
        workload: None,
    },
    Variant {
        name: "W1",
        arch: RV32,
        features: &["qemu", "w1"],
        l2: 0.0,
        workload: None,
    },
    Variant {
        name: "CNN",
        arch: M4F,
        features: &["qemu"],
        l2: 0.0,
        workload: Some("cnn.json"),
    },
    Variant {
        name: "MSE",
        arch: M4F,
        features: &["qemu"],
        l2: 0.0,
        workload: Some("regression.json"),
    },
    Variant {
        name: "SGD-M",
        arch: M4F,
        features: &["qemu"],
        l2: 0.0,
        workload: Some("sgd_momentum.json"),
    },
];

/// Builds the instruction-counting plugin into the target dir (again only when the source is newer).
fn build_plugin(target: &Path) -> Result<PathBuf, String> {
    let src = harness::workspace_root().join("tools/qemu-icount/icount_plugin.c");
    let out = target.join("libicount.so");
    let fresh = match (
        std::fs::metadata(&src).and_then(|m| m.modified()),
        std::fs::metadata(&out).and_then(|m| m.modified()),
    ) {
        (Ok(s), Ok(o)) => o >= s,
        _ => false,
    };
    if !fresh {
        eprintln!("xtask: building {} with gcc", out.display());
        let st = Command::new("gcc")
            .args(["-O2", "-shared", "-fPIC", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .map_err(|e| format!("gcc (needed for the QEMU plugin): {e}"))?;
        if !st.success() {
            return Err("gcc failed to build tools/qemu-icount/icount_plugin.c".into());
        }
    }
    Ok(out)
}

fn sym_size(elf: &Elf<'_>, name: &str) -> u64 {
    elf.symbol(name).map(|s| u64::from(s.size)).unwrap_or(0)
}

/// The variant's short name, e.g. `w1-l2-m4f` (also its ELF's file name).
fn file_name(v: &Variant) -> String {
    format!(
        "{}-{}",
        v.name.to_lowercase().replace('+', "-"),
        v.arch.label.to_lowercase()
    )
}

fn bench_one(
    v: &Variant,
    qemu: &Qemu,
    plugin: &Path,
    target: &Path,
    prof: usize,
) -> Result<serde_json::Value, String> {
    let file = file_name(v);
    let workload = v
        .workload
        .map(|f| harness::workspace_root().join("firmware/data").join(f));
    let elf_path = harness::build_firmware(v.arch, v.features, workload.as_deref(), Some(&file))?;
    let bytes = std::fs::read(&elf_path).map_err(|e| format!("{}: {e}", elf_path.display()))?;
    let elf = Elf::parse(&bytes)?;
    let (text, data, bss) = elf.berkeley();
    let dataset = sym_size(&elf, "MICROFIT_DATASET_X")
        + sym_size(&elf, "MICROFIT_DATASET_LABELS")
        + sym_size(&elf, "MICROFIT_DATASET_Y");
    // The trainable layers' initial weights and a frozen layer's weights (`MICROFIT_FROZEN_<i>`,
    // `i` the layer's index).
    let init = sym_size(&elf, "MICROFIT_WEIGHTS")
        + (0..10)
            .map(|i| sym_size(&elf, &format!("MICROFIT_FROZEN_{i}")))
            .sum::<u64>();
    let mark = elf
        .symbol("icount_mark")
        .ok_or("no icount_mark symbol in the ELF")?
        .value
        & !1;
    let panics = panic_sites(&elf, "train_epoch")?;

    let log_path = target
        .join("microfit-fw")
        .join(format!("{file}.icount.log"));
    let _ = std::fs::remove_file(&log_path);
    let extra = vec![
        "-plugin".to_string(),
        format!(
            "{},mark={mark:#x}{}",
            plugin.display(),
            if prof > 0 { ",prof=1" } else { "" }
        ),
        "-d".to_string(),
        "plugin".to_string(),
        "-D".to_string(),
        log_path.display().to_string(),
    ];
    eprintln!(
        "xtask: running {} on {} (QEMU {})",
        v.name, v.arch.label, v.arch.machine
    );
    let fw = qemu.run_elf(&elf_path, &extra, Duration::from_secs(600))?;
    let log = &fw.log;
    if fw.run.timed_out || fw.exit_code() != Some(0) {
        for l in &fw.lines {
            eprintln!("  {l}");
        }
        return Err(format!(
            "{} on {}: QEMU exit {:?} (timed out: {})",
            v.name,
            v.arch.label,
            fw.exit_code(),
            fw.run.timed_out
        ));
    }
    let plugin_log =
        std::fs::read_to_string(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let marks: Vec<u64> = plugin_log
        .lines()
        .filter_map(|l| l.strip_prefix("MARK "))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    let total: Option<u64> = plugin_log
        .lines()
        .find_map(|l| l.strip_prefix("TOTAL ")?.trim().parse().ok());
    if !marks.len().is_multiple_of(2) || marks.is_empty() {
        return Err(format!(
            "{}: odd or no marker hits ({})",
            v.name,
            marks.len()
        ));
    }
    let regions = marks.len() as u64 / 2;
    if log.regions.is_some_and(|r| u64::from(r) != regions) {
        return Err(format!(
            "{}: {} measured regions but the log says {:?}",
            v.name, regions, log.regions
        ));
    }
    let train_instr: u64 = marks
        .chunks(2)
        .map(|p| p[1] - p[0] - marker_overhead(v.arch))
        .sum();
    let samples = log
        .samples_trained
        .ok_or("no `trained samples=` line in the log")?;
    let stack = log
        .peak_stack_bytes
        .ok_or("no `stack peak_bytes=` line in the log")?;
    let per_sample = train_instr as f64 / samples as f64;
    // `PROF symbol N`: instructions per symbol between the first and the last marker (the
    // logging between epochs included, a few instructions per sample).
    let mut profile: Vec<(String, u64)> = plugin_log
        .lines()
        .filter_map(|l| l.strip_prefix("PROF "))
        .filter_map(|l| {
            let (sym, n) = l.rsplit_once(' ')?;
            Some((xtask::elf::demangle(sym), n.trim().parse().ok()?))
        })
        .collect();
    profile.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    profile.truncate(prof);
    Ok(json!({
        "workload": v.name,
        "cpu": v.arch.label,
        "target": v.arch.target,
        "machine": v.arch.machine,
        "features": v.features.join(","),
        "l2": v.l2,
        "epochs": log.epochs.len(),
        "samples_trained": samples,
        "instructions_training": train_instr,
        "instructions_per_sample": (per_sample * 10.0).round() / 10.0,
        "instructions_total_run": total,
        "flash_bytes": text + data,
        "flash_bytes_without_dataset": text + data - dataset,
        "dataset_bytes": dataset,
        "initial_weights_bytes": init,
        "text_bytes": text,
        "data_bytes": data,
        "bss_bytes": bss,
        "static_ram_bytes": data + bss,
        "peak_stack_bytes": stack,
        "ram_total_bytes": data + bss + u64::from(stack),
        "final_data_loss": log.eval_data_loss,
        "final_loss": log.eval_loss,
        "final_accuracy": log.eval_accuracy,
        "last_epoch_data_loss": log.epochs.last().map(|e| e.data_loss),
        "weights_hash": log.weights_hash.map(|h| format!("{h:016x}")),
        "result_ok": log.result_ok,
        "panic_call_sites": panics.total(),
        "panic_call_sites_detail": panics.sites.iter().map(|(a, b, n)| json!({"caller": a, "callee": b, "count": n})).collect::<Vec<_>>(),
        "panic_roots": panics.roots,
        "functions_reachable_from_train_epoch": panics.reachable,
        "indirect_calls_reachable_from_train_epoch": panics.indirect,
        "profile_per_sample": profile.iter().map(|(sym, n)| json!({"symbol": sym, "instructions_per_sample": (*n as f64 / samples as f64 * 10.0).round() / 10.0})).collect::<Vec<_>>(),
        "elf": elf_path.display().to_string(),
    }))
}

pub fn fw_bench(args: &[String]) -> Result<ExitCode, String> {
    let (mut as_json, mut prof, mut only) = (false, 0usize, None::<Vec<String>>);
    let (mut m0, mut rv32) = (true, true);
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--json" => as_json = true,
            "--no-m0" => m0 = false,
            "--no-rv32" => rv32 = false,
            "--prof" => {
                i += 1;
                prof = args
                    .get(i)
                    .and_then(|n| n.parse().ok())
                    .ok_or("--prof needs a number of symbols")?;
            }
            "--only" => {
                i += 1;
                let list = args
                    .get(i)
                    .ok_or("--only needs a list, e.g. w1-m4f,w2-l2-m4f")?;
                only = Some(list.split(',').map(|s| s.trim().to_lowercase()).collect());
            }
            other => return Err(format!("fw-bench: unexpected argument {other:?}")),
        }
        i += 1;
    }
    if let Some(o) = &only
        && let Some(bad) = o
            .iter()
            .find(|n| !VARIANTS.iter().any(|v| file_name(v) == **n))
    {
        let names: Vec<String> = VARIANTS.iter().map(file_name).collect();
        return Err(format!(
            "--only: unknown variant {bad:?} (one of {})",
            names.join(", ")
        ));
    }
    let wanted = |b: Board| match b.label {
        "M0" => m0,
        "RV32" => rv32,
        _ => true,
    };
    let selected =
        |v: &&Variant| only.as_ref().is_none_or(|o| o.contains(&file_name(v))) && wanted(v.arch);
    // The M4F rows are the reference: their tools must be there. An M0 or RISC-V row whose
    // emulator or target is missing is skipped with a warning.
    let mut boards: Vec<Qemu> = Vec::new();
    for b in harness::BOARDS {
        if !VARIANTS.iter().filter(selected).any(|v| v.arch == b) {
            continue;
        }
        let missing = harness::missing_tools(b);
        if missing.is_empty() {
            boards.push(Qemu::find(b)?);
        } else if b == M4F {
            return Err(format!("the M4F rows need {}", missing.join(" and ")));
        } else {
            eprintln!(
                "xtask: WARNING: skipping the {} rows: missing {}",
                b.label,
                missing.join(" and ")
            );
        }
    }
    let target = target_dir()?;
    let plugin = build_plugin(&target)?;
    let mut rows = Vec::new();
    for v in VARIANTS.iter().filter(selected) {
        if let Some(qemu) = boards.iter().find(|q| q.board == v.arch) {
            rows.push(bench_one(v, qemu, &plugin, &target, prof)?);
        }
    }
    // Every instruction set must compute the very same bits as the M4F.
    let hash = |w: &str, cpu: &str| {
        rows.iter()
            .find(|r| r["workload"] == w && r["cpu"] == cpu)
            .map(|r| r["weights_hash"].clone())
    };
    let same_as_m4f = |cpu: &str| match (hash("W1", "M4F"), hash("W1", cpu)) {
        (Some(a), Some(b)) => Some(a == b),
        _ => None,
    };
    let (m0_same, rv32_same) = (same_as_m4f("M0"), same_as_m4f("RV32"));
    if as_json {
        let doc = json!({
            "tool": "cargo xtask fw-bench",
            "qemu_machines": {
                "M4F": "mps2-an386 -cpu cortex-m4",
                "M0": "microbit",
                "RV32": "virt -bios none",
            },
            "qemu_binaries": {
                "M4F": M4F.qemu,
                "M0": M0.qemu,
                "RV32": RV32.qemu,
            },
            "profile": "fw",
            "marker_overhead_per_region": marker_overhead(M4F),
            "marker_overhead_per_region_by_cpu": {
                "M4F": marker_overhead(M4F),
                "M0": marker_overhead(M0),
                "RV32": marker_overhead(RV32),
            },
            "w1_m0_weights_equal_m4f": m0_same,
            "w1_rv32_weights_equal_m4f": rv32_same,
            "rows": rows,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        );
    } else {
        print_table(&rows);
        print_panic_details(&rows);
        if prof > 0 {
            print_profiles(&rows);
        }
        for (cpu, same) in [
            ("M0 (soft float)", m0_same),
            ("RV32 (soft float)", rv32_same),
        ] {
            if let Some(s) = same {
                println!(
                    "W1 weights hash, {cpu} vs M4F: {}",
                    if s { "identical" } else { "DIFFERENT" }
                );
            }
        }
    }
    Ok(if m0_same == Some(false) || rv32_same == Some(false) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The workspace target directory (honours `CARGO_TARGET_DIR` and `build.target-dir`).
fn target_dir() -> Result<PathBuf, String> {
    let out = Command::new(harness::cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(harness::workspace_root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err("cargo metadata failed".into());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    v["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata: no target_directory".into())
}

fn print_panic_details(rows: &[serde_json::Value]) {
    for r in rows {
        let label = format!(
            "{} {}",
            r["workload"].as_str().unwrap_or("?"),
            r["cpu"].as_str().unwrap_or("?")
        );
        let indirect = r["indirect_calls_reachable_from_train_epoch"]
            .as_u64()
            .unwrap_or(0);
        if indirect > 0 {
            println!(
                "{label}: {indirect} indirect calls reachable from train_epoch (not followed)"
            );
        }
        for p in r["panic_call_sites_detail"]
            .as_array()
            .into_iter()
            .flatten()
        {
            println!(
                "{label}: panic site {} -> {} x{}",
                p["caller"].as_str().unwrap_or("?"),
                p["callee"].as_str().unwrap_or("?"),
                p["count"]
            );
        }
    }
}

fn print_profiles(rows: &[serde_json::Value]) {
    for r in rows {
        println!(
            "\nprofile {} {} (instructions per sample, by symbol):",
            r["workload"].as_str().unwrap_or("?"),
            r["cpu"].as_str().unwrap_or("?")
        );
        for p in r["profile_per_sample"].as_array().into_iter().flatten() {
            println!(
                "  {:>9.1}  {}",
                p["instructions_per_sample"].as_f64().unwrap_or(0.0),
                p["symbol"].as_str().unwrap_or("?")
            );
        }
    }
}

fn print_table(rows: &[serde_json::Value]) {
    println!(
        "{:<7} {:<4} {:>10} {:>13} {:>7} {:>9} {:>8} {:>7} {:>6} {:>8} {:>10} {:>8} {:>6} {:<16}",
        "work",
        "cpu",
        "instr/smpl",
        "instr(train)",
        "flash",
        "flash-ds",
        "dataset",
        "ramStat",
        "stack",
        "ramTotal",
        "loss",
        "acc",
        "panic",
        "weights_hash"
    );
    for r in rows {
        let s = |k: &str| match &r[k] {
            serde_json::Value::String(v) => v.clone(),
            serde_json::Value::Null => "-".into(),
            v => v.to_string(),
        };
        let f = |k: &str| {
            r[k].as_f64()
                .map(|v| format!("{v:.6}"))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{:<7} {:<4} {:>10} {:>13} {:>7} {:>9} {:>8} {:>7} {:>6} {:>8} {:>10} {:>8} {:>6} {:<16}",
            s("workload"),
            s("cpu"),
            s("instructions_per_sample"),
            s("instructions_training"),
            s("flash_bytes"),
            s("flash_bytes_without_dataset"),
            s("dataset_bytes"),
            s("static_ram_bytes"),
            s("peak_stack_bytes"),
            s("ram_total_bytes"),
            f("final_data_loss"),
            f("final_accuracy"),
            s("panic_call_sites"),
            s("weights_hash"),
        );
    }
    println!(
        "flash = text+data, flash-ds = flash without the dataset arrays, ramStat = data+bss, ramTotal = ramStat + peak stack;"
    );
    println!(
        "instr/smpl = exact guest instructions of the training regions / samples trained (tools/qemu-icount);"
    );
    println!(
        "panic = calls of panic entry points (core::panicking::*, *_fail, unwrap_failed, ...) reachable from train_epoch."
    );
}
