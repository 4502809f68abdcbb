//! `cargo xtask` (alias in .cargo/config.toml): developer tasks for microfit's firmware.
//!
//! ```text
//! cargo xtask fw-bench [--json] [--no-m0] [--no-rv32] [--only w1-m4f,w2-l2-m4f,...] [--prof N]
//!                                           build + run every workload under QEMU, report
//!                                           instructions/sample, flash, RAM, stack, loss, panics;
//!                                           --prof N adds the N costliest symbols per variant
//! cargo xtask fw-run [--target m4f|m0|rv32] [--workload w1|w2] [--l2] [--features F,..] [--timeout S]
//!                                           build + run one workload, print the decoded log
//! cargo xtask qemu-run [--machine M] [--timeout S] ELF
//!                                           run an ELF, print its decoded defmt log, exit with
//!                                           QEMU's code (the firmware's cargo `runner`)
//! ```
//! The defmt log is decoded in-process with the `defmt-decoder` crate (no `defmt-print`), by the
//! harness the firmware tests use too (`xtask::harness`). Needs `qemu-system-arm` (Debian:
//! `qemu-system-arm`) and `qemu-system-riscv32` (Debian: `qemu-system-misc`), the rustup targets
//! `thumbv7em-none-eabihf`, `thumbv6m-none-eabi` and `riscv32imac-unknown-none-elf`, and `gcc`
//! (for the instruction-counting QEMU plugin in tools/qemu-icount, built into the target dir).

mod bench;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use xtask::elf;
use xtask::harness::{self, Board, Qemu};

const USAGE: &str = "usage:
  cargo xtask fw-bench [--json] [--no-m0] [--no-rv32] [--only w1-m4f,w1-l2-m4f,w2-m4f,w2-l2-m4f,w2-frozen-m4f,w1-m0,w1-rv32,cnn-m4f,mse-m4f,sgd-m-m4f] [--prof N]
  cargo xtask fw-run [--target m4f|m0|rv32] [--workload w1|w2] [--l2] [--features F,..] [--timeout SECONDS]
  cargo xtask qemu-run [--machine mps2-an386|microbit|virt] [--timeout SECONDS] ELF";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("fw-bench") => bench::fw_bench(&args[1..]),
        Some("fw-run") => fw_run(&args[1..]),
        Some("qemu-run") => qemu_run(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown task {other:?}\n{USAGE}")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn value<'a>(args: &'a [String], i: &mut usize, flag: &str) -> Result<&'a str, String> {
    *i += 1;
    args.get(*i)
        .map(String::as_str)
        .ok_or_else(|| format!("{flag} needs a value"))
}

fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .map(Duration::from_secs_f64)
        .map_err(|_| format!("bad timeout {s:?}"))
}

/// Runs an ELF under QEMU and prints the decoded log; exits with QEMU's code (124 on timeout).
/// The board comes from `--machine` or from the ELF's header (RISC-V, Arm hard-float or not).
fn qemu_run(args: &[String]) -> Result<ExitCode, String> {
    let (mut board, mut timeout, mut elf) = (None, Duration::from_secs(120), None);
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--machine" => board = Some(Board::parse(value(args, &mut i, "--machine")?)?),
            "--timeout" => timeout = seconds(value(args, &mut i, "--timeout")?)?,
            a if elf.is_none() && !a.starts_with('-') => elf = Some(PathBuf::from(a)),
            a => return Err(format!("qemu-run: unexpected argument {a:?}")),
        }
        i += 1;
    }
    let elf = elf.ok_or("qemu-run: no ELF given")?;
    let bytes = std::fs::read(&elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let parsed = elf::Elf::parse(&bytes)?;
    // The Black Pill build links at 0x0800_0000 and logs over RTT: it needs a probe, not QEMU.
    if parsed.symbol("_SEGGER_RTT").is_some() {
        return Err("this ELF logs over RTT (a board build): flash it with `probe-rs run --chip CHIP ELF` (see firmware/README.md)".into());
    }
    let board = match board {
        Some(b) => b,
        None => Board::of_elf(&bytes).ok_or("qemu-run: neither an Arm nor a RISC-V ELF")?,
    };
    let run = Qemu::find(board)?.run_elf(&elf, &[], timeout)?;
    for line in &run.lines {
        println!("{line}");
    }
    eprint!("{}", run.run.stderr);
    if run.run.timed_out {
        eprintln!("xtask: QEMU killed after {timeout:?}");
        return Ok(ExitCode::from(124));
    }
    let code = run.exit_code().unwrap_or(1);
    if code != 0 {
        eprintln!("xtask: QEMU exited with {code}");
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Builds one workload and runs it.
fn fw_run(args: &[String]) -> Result<ExitCode, String> {
    let (mut board, mut workload, mut l2, mut timeout) = (
        harness::M4F,
        "w1".to_string(),
        false,
        Duration::from_secs(120),
    );
    let mut more: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--target" => board = Board::parse(value(args, &mut i, "--target")?)?,
            "--workload" => workload = value(args, &mut i, "--workload")?.to_lowercase(),
            "--l2" => l2 = true,
            "--features" => more.extend(
                value(args, &mut i, "--features")?
                    .split(',')
                    .map(str::to_string),
            ),
            "--timeout" => timeout = seconds(value(args, &mut i, "--timeout")?)?,
            a => return Err(format!("fw-run: unexpected argument {a:?}")),
        }
        i += 1;
    }
    if workload != "w1" && workload != "w2" {
        return Err(format!("fw-run: unknown workload {workload:?} (w1 or w2)"));
    }
    let mut features = vec!["qemu", workload.as_str()];
    if l2 {
        features.push("l2");
    }
    features.extend(more.iter().map(String::as_str));
    let name = format!(
        "{workload}{}-{}",
        if l2 { "-l2" } else { "" },
        board.label.to_lowercase()
    );
    let elf = harness::build_firmware(board, &features, None, Some(&name))?;
    let mut rargs = vec!["--machine".to_string(), board.label.to_string()];
    rargs.extend(["--timeout".to_string(), timeout.as_secs_f64().to_string()]);
    rargs.push(elf.display().to_string());
    qemu_run(&rargs)
}
