//! `cargo xtask` (alias in .cargo/config.toml): developer tasks for microfit's firmware.
//!
//! ```text
//! cargo xtask fw-bench [--json] [--no-m0] [--only w1-m4f,w2-l2-m4f,...] [--prof N]
//!                                           build + run every workload under QEMU, report
//!                                           instructions/sample, flash, RAM, stack, loss, panics;
//!                                           --prof N adds the N costliest symbols per variant
//! cargo xtask fw-run [--target m4f|m0] [--workload w1|w2] [--l2] [--timeout S]
//!                                           build + run one workload, print the decoded log
//! cargo xtask qemu-run [--machine M] [--timeout S] ELF
//!                                           run an ELF, print its decoded defmt log, exit with
//!                                           QEMU's code (the firmware's cargo `runner`)
//! ```
//! The defmt log is decoded in-process with the `defmt-decoder` crate (no `defmt-print`).
//! Needs `qemu-system-arm` (Debian: `apt-get install qemu-system-arm`), the rustup targets
//! `thumbv7em-none-eabihf` (and `thumbv6m-none-eabi` for the M0 row) and `gcc` (for the
//! instruction-counting QEMU plugin in tools/qemu-icount, built into the target dir).

mod bench;
mod elf;
mod fw;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage:
  cargo xtask fw-bench [--json] [--no-m0] [--only w1-m4f,w1-l2-m4f,w2-m4f,w2-l2-m4f,w1-m0] [--prof N]
  cargo xtask fw-run [--target m4f|m0] [--workload w1|w2] [--l2] [--timeout SECONDS]
  cargo xtask qemu-run [--machine mps2-an386|microbit] [--timeout SECONDS] ELF";

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
fn qemu_run(args: &[String]) -> Result<ExitCode, String> {
    let (mut machine, mut timeout, mut elf) = (None, Duration::from_secs(120), None);
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--machine" => machine = Some(value(args, &mut i, "--machine")?.to_string()),
            "--timeout" => timeout = seconds(value(args, &mut i, "--timeout")?)?,
            a if elf.is_none() && !a.starts_with('-') => elf = Some(PathBuf::from(a)),
            a => return Err(format!("qemu-run: unexpected argument {a:?}")),
        }
        i += 1;
    }
    let elf = elf.ok_or("qemu-run: no ELF given")?;
    let bytes = std::fs::read(&elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let parsed = elf::Elf::parse(&bytes)?;
    // The blackpill build links at 0x0800_0000 and logs over RTT: it needs a probe, not QEMU.
    if parsed.symbol("_SEGGER_RTT").is_some() {
        return Err("this ELF logs over RTT (feature `blackpill`): flash it with `probe-rs run --chip STM32F411CEUx ELF`".into());
    }
    let machine = match machine {
        Some(m) => m,
        // EF_ARM_ABI_FLOAT_HARD in e_flags: the thumbv7em-none-eabihf build.
        None if u32::from_le_bytes([bytes[36], bytes[37], bytes[38], bytes[39]]) & 0x400 != 0 => {
            "mps2-an386".into()
        }
        None => "microbit".into(),
    };
    let run = fw::run_qemu(&machine, &elf, &[], timeout)?;
    for line in fw::decode_defmt(&bytes, &run.stdout)? {
        println!("{line}");
    }
    if run.timed_out {
        eprintln!("xtask: QEMU killed after {timeout:?}");
        return Ok(ExitCode::from(124));
    }
    let code = run.code.unwrap_or(1);
    if code != 0 {
        eprintln!("xtask: QEMU exited with {code}");
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Builds one workload and runs it.
fn fw_run(args: &[String]) -> Result<ExitCode, String> {
    let (mut arch, mut workload, mut l2, mut timeout) = (
        fw::Arch::M4f,
        "w1".to_string(),
        false,
        Duration::from_secs(120),
    );
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--target" => arch = fw::Arch::parse(value(args, &mut i, "--target")?)?,
            "--workload" => workload = value(args, &mut i, "--workload")?.to_lowercase(),
            "--l2" => l2 = true,
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
    let name = format!(
        "{workload}{}-{}",
        if l2 { "-l2" } else { "" },
        arch.label().to_lowercase()
    );
    let elf = fw::build(arch, &features, &name)?;
    let mut rargs = vec!["--machine".to_string(), arch.machine().to_string()];
    rargs.extend(["--timeout".to_string(), timeout.as_secs_f64().to_string()]);
    rargs.push(elf.display().to_string());
    qemu_run(&rargs)
}
