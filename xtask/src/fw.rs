//! Building the firmware, running it under QEMU, decoding its defmt log.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the firmware runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Cortex-M4F, `thumbv7em-none-eabihf`, QEMU `mps2-an386`.
    M4f,
    /// Cortex-M0, `thumbv6m-none-eabi`, QEMU `microbit`.
    M0,
}

impl Arch {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "m4f" | "m4" | "thumbv7em-none-eabihf" | "mps2-an386" => Ok(Self::M4f),
            "m0" | "thumbv6m-none-eabi" | "microbit" => Ok(Self::M0),
            _ => Err(format!("unknown target {s:?} (m4f or m0)")),
        }
    }
    pub fn triple(self) -> &'static str {
        match self {
            Self::M4f => "thumbv7em-none-eabihf",
            Self::M0 => "thumbv6m-none-eabi",
        }
    }
    pub fn machine(self) -> &'static str {
        match self {
            Self::M4f => "mps2-an386",
            Self::M0 => "microbit",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::M4f => "M4F",
            Self::M0 => "M0",
        }
    }
}

/// QEMU arguments for a machine (`microbit` has a fixed CPU).
pub fn machine_args(machine: &str) -> Vec<String> {
    let mut a = vec!["-machine".to_string(), machine.to_string()];
    if machine.starts_with("mps2") {
        a.extend(["-cpu".to_string(), "cortex-m4".to_string()]);
    }
    for s in [
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
    ] {
        a.push(s.to_string());
    }
    a
}

/// The workspace root (the xtask lives in `<root>/xtask`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_path_buf()
}

/// The workspace target directory (honours `CARGO_TARGET_DIR` and `build.target-dir`).
pub fn target_dir() -> Result<PathBuf, String> {
    let out = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root())
        .stderr(Stdio::inherit())
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

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// `cargo build -p microfit-firmware --target T --profile fw --no-default-features --features F`
/// in the workspace (same target dir, so dependencies are shared), then copies the ELF to
/// `<target>/microfit-fw/<name>.elf` (every variant is built to the same path).
pub fn build(arch: Arch, features: &[&str], name: &str) -> Result<PathBuf, String> {
    let feats = features.join(",");
    eprintln!(
        "xtask: building firmware {name} ({}, features {feats})",
        arch.triple()
    );
    let status = Command::new(cargo())
        .args([
            "build",
            "-q",
            "-p",
            "microfit-firmware",
            "--target",
            arch.triple(),
            "--profile",
            "fw",
        ])
        .args(["--no-default-features", "--features", &feats])
        .current_dir(root())
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build of the firmware ({name}) failed"));
    }
    let tdir = target_dir()?;
    let built = tdir
        .join(arch.triple())
        .join("fw")
        .join("microfit-firmware");
    let dir = tdir.join("microfit-fw");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dest = dir.join(format!("{name}.elf"));
    std::fs::copy(&built, &dest).map_err(|e| format!("copy {}: {e}", built.display()))?;
    Ok(dest)
}

/// `qemu-system-arm`, from `QEMU_SYSTEM_ARM` or the `PATH`.
pub fn qemu_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("QEMU_SYSTEM_ARM") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("QEMU_SYSTEM_ARM={} is not a file", p.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("qemu-system-arm"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "qemu-system-arm not found (apt-get install -y --no-install-recommends qemu-system-arm)"
                .into()
        })
}

/// The result of one QEMU run.
#[derive(Debug)]
pub struct Run {
    /// QEMU's exit code (`None` when killed after the timeout).
    pub code: Option<i32>,
    /// Raw stdout (defmt frames).
    pub stdout: Vec<u8>,
    pub timed_out: bool,
}

/// Runs `elf` on `machine` with extra QEMU arguments, killing QEMU after `timeout`.
pub fn run_qemu(
    machine: &str,
    elf: &Path,
    extra: &[String],
    timeout: Duration,
) -> Result<Run, String> {
    let mut child = Command::new(qemu_binary()?)
        .args(machine_args(machine))
        .arg("-kernel")
        .arg(elf)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("qemu-system-arm: {e}"))?;
    let mut out = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let (code, timed_out) = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break (st.code(), false);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = reader.join().map_err(|_| "stdout reader panicked")?;
    Ok(Run {
        code,
        stdout,
        timed_out,
    })
}

/// Decodes defmt frames with the table in `elf`; each line is `LEVEL message`.
pub fn decode_defmt(elf: &[u8], bytes: &[u8]) -> Result<Vec<String>, String> {
    let table = defmt_decoder::Table::parse(elf)
        .map_err(|e| format!("defmt table: {e}"))?
        .ok_or("the ELF has no .defmt section")?;
    let mut dec = table.new_stream_decoder();
    dec.received(bytes);
    let mut lines = Vec::new();
    loop {
        match dec.decode() {
            Ok(frame) => {
                let level = frame
                    .level()
                    .map(|l| l.as_str().to_uppercase())
                    .unwrap_or_else(|| "PRINT".into());
                lines.push(format!("{level} {}", frame.display_message()));
            }
            Err(defmt_decoder::DecodeError::UnexpectedEof) => break,
            Err(defmt_decoder::DecodeError::Malformed) => {
                if table.encoding().can_recover() {
                    lines.push("ERROR (malformed defmt frame skipped)".into());
                    continue;
                }
                return Err("malformed defmt data".into());
            }
        }
    }
    Ok(lines)
}

/// What the firmware logged (see firmware/src/app.rs for the format).
#[derive(Debug, Default, Clone)]
pub struct Log {
    /// (epoch, data_loss, penalty, accuracy) per epoch line.
    pub epochs: Vec<(u32, f32, f32, f32)>,
    pub samples_trained: Option<u64>,
    pub regions: Option<u64>,
    pub eval_data_loss: Option<f32>,
    pub eval_penalty: Option<f32>,
    pub eval_acc: Option<f32>,
    pub weights_hash: Option<u64>,
    pub peak_stack: Option<u64>,
    pub result_ok: Option<bool>,
    pub errors: Vec<String>,
}

/// `key=value` of a line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

fn bits(s: &str) -> Option<f32> {
    hex(s)
        .and_then(|v| u32::try_from(v).ok())
        .map(f32::from_bits)
}

impl Log {
    pub fn parse(lines: &[String]) -> Self {
        let mut log = Log::default();
        for l in lines {
            let (level, msg) = l.split_once(' ').unwrap_or((l, ""));
            if level == "ERROR" {
                log.errors.push(msg.to_string());
            }
            if let Some(rest) = msg.strip_prefix("epoch ") {
                let e = rest.split_whitespace().next().and_then(|s| s.parse().ok());
                let d = field(msg, "data_loss").and_then(bits);
                let p = field(msg, "penalty").and_then(bits);
                let a = field(msg, "acc").and_then(|s| s.parse().ok());
                if let (Some(e), Some(d), Some(p), Some(a)) = (e, d, p, a) {
                    log.epochs.push((e, d, p, a));
                }
            } else if msg.starts_with("trained ") {
                log.samples_trained = field(msg, "samples").and_then(|s| s.parse().ok());
                log.regions = field(msg, "regions").and_then(|s| s.parse().ok());
            } else if msg.starts_with("eval ") {
                log.eval_data_loss = field(msg, "data_loss").and_then(bits);
                log.eval_penalty = field(msg, "penalty").and_then(bits);
                log.eval_acc = field(msg, "acc").and_then(|s| s.parse().ok());
            } else if msg.starts_with("weights_hash=") {
                log.weights_hash = field(msg, "weights_hash").and_then(hex);
            } else if msg.starts_with("stack ") {
                log.peak_stack = field(msg, "peak_bytes").and_then(|s| s.parse().ok());
            } else if msg.starts_with("result ") {
                log.result_ok = field(msg, "ok").and_then(|s| s.parse().ok());
            }
        }
        log
    }
}
