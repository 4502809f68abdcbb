//! The one firmware harness: build `microfit-firmware` for an emulated board, run it under QEMU,
//! decode its defmt log in-process and parse the lines the training app prints. Used by
//! `cargo xtask` (`fw-bench`, `fw-run`, the `qemu-run` cargo runner) and by the workspace's
//! firmware tests (`microfit_tests::qemu` re-exports it).
//!
//! ```no_run
//! use std::time::Duration;
//! use xtask::harness::{require_qemu, M4F};
//! # fn main() -> Result<(), String> {
//! let Some(qemu) = require_qemu(M4F)? else { return Ok(()) }; // skipped loudly
//! let run = qemu.build_and_run(&["qemu", "w1"], Duration::from_secs(120))?;
//! assert_eq!(run.exit_code(), Some(0));
//! assert_eq!(run.log.epochs.len(), 50);
//! # Ok(()) }
//! ```
//!
//! * The firmware is built by a nested `cargo build -p microfit-firmware --target T --profile fw
//!   --no-default-features --features F` in the workspace root, so it shares the workspace's
//!   target dir (dependencies are compiled once) and `.cargo/config.toml` (`DEFMT_LOG`). Every
//!   variant lands on the same path, so the ELF is copied to `<target>/microfit-fw/` right away.
//! * Missing tools are not failures unless `MICROFIT_REQUIRE_QEMU=1` (CI sets it): without the
//!   board's QEMU or its rustup target, [`require_qemu`] prints a loud banner on stderr and
//!   returns `Ok(None)`.
//! * The log format is the one of `firmware/src/app.rs`: numbers for a person, and beside them
//!   `f32` values as `f32::to_bits` in hex so that they compare bit for bit.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// An emulated board: the Rust target, the QEMU system emulator and machine that run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Board {
    /// Short name: `M4F`, `M0`, `RV32` (the `cpu` key of `fw-bench --json`).
    pub label: &'static str,
    /// Rust target triple.
    pub target: &'static str,
    /// QEMU system emulator (`qemu-system-arm`, `qemu-system-riscv32`).
    pub qemu: &'static str,
    /// Environment variable naming that emulator's binary instead of the `PATH`'s.
    pub qemu_env: &'static str,
    /// Debian package that has the emulator.
    pub apt: &'static str,
    /// `-machine`.
    pub machine: &'static str,
    /// `-cpu` (none: the machine's own).
    pub cpu: Option<&'static str>,
    /// Further machine arguments (`-bios none` for RISC-V `virt`: no OpenSBI, jump to the ELF).
    pub machine_args: &'static [&'static str],
}

/// Cortex-M4F: `thumbv7em-none-eabihf` on QEMU `mps2-an386`.
pub const M4F: Board = Board {
    label: "M4F",
    target: "thumbv7em-none-eabihf",
    qemu: "qemu-system-arm",
    qemu_env: "QEMU_SYSTEM_ARM",
    apt: "qemu-system-arm",
    machine: "mps2-an386",
    cpu: Some("cortex-m4"),
    machine_args: &[],
};

/// Cortex-M0 (no FPU, soft float): `thumbv6m-none-eabi` on QEMU `microbit`.
pub const M0: Board = Board {
    label: "M0",
    target: "thumbv6m-none-eabi",
    qemu: "qemu-system-arm",
    qemu_env: "QEMU_SYSTEM_ARM",
    apt: "qemu-system-arm",
    machine: "microbit",
    cpu: None,
    machine_args: &[],
};

/// RISC-V RV32IMAC (no FPU, soft float): `riscv32imac-unknown-none-elf` on QEMU `virt`
/// (`-bios none`: QEMU jumps straight to the ELF's entry).
pub const RV32: Board = Board {
    label: "RV32",
    target: "riscv32imac-unknown-none-elf",
    qemu: "qemu-system-riscv32",
    qemu_env: "QEMU_SYSTEM_RISCV32",
    apt: "qemu-system-misc",
    machine: "virt",
    cpu: None,
    machine_args: &["-bios", "none"],
};

/// Every emulated board.
pub const BOARDS: [Board; 3] = [M4F, M0, RV32];

impl Board {
    /// The board named `s`: its label (`m4f`, `m0`, `rv32`), target triple or machine.
    ///
    /// # Errors
    /// For an unknown name.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.to_lowercase();
        BOARDS
            .into_iter()
            .find(|b| {
                b.label.to_lowercase() == s
                    || b.target == s
                    || b.machine == s
                    || (b.label == "M4F" && s == "m4")
            })
            .ok_or_else(|| format!("unknown board {s:?} (m4f, m0 or rv32)"))
    }

    /// The board of an ELF: RISC-V (`e_machine` 243) or Arm, hard-float (`EF_ARM_ABI_FLOAT_HARD`
    /// in `e_flags`: the M4F build) or not (the M0).
    pub fn of_elf(bytes: &[u8]) -> Option<Self> {
        let machine = u16::from_le_bytes([*bytes.get(18)?, *bytes.get(19)?]);
        let flags = u32::from_le_bytes(bytes.get(36..40)?.try_into().ok()?);
        match machine {
            243 => Some(RV32),
            40 if flags & 0x400 != 0 => Some(M4F),
            40 => Some(M0),
            _ => None,
        }
    }

    /// QEMU's arguments for this board, up to (not including) `-kernel ELF`.
    pub fn qemu_args(&self) -> Vec<String> {
        let mut a = vec!["-machine".to_string(), self.machine.to_string()];
        if let Some(cpu) = self.cpu {
            a.extend(["-cpu".to_string(), cpu.to_string()]);
        }
        a.extend(self.machine_args.iter().map(|s| s.to_string()));
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
}

/// Environment variable that turns a missing QEMU or target into a failure.
pub const REQUIRE_ENV: &str = "MICROFIT_REQUIRE_QEMU";

/// The workspace root (the xtask lives in `<root>/xtask`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent")
        .to_path_buf()
}

/// The board's QEMU from its environment variable (if that names a file; anything else, e.g.
/// an empty value, means "no QEMU") or the `PATH`.
pub fn find_qemu(board: Board) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(board.qemu_env) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(board.qemu))
        .find(|p| p.is_file())
}

/// Whether the toolchain's sysroot has the standard library for `target`.
pub fn target_installed(target: &str) -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
}

fn required() -> bool {
    matches!(
        std::env::var(REQUIRE_ENV).as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// What `board` lacks on this machine (its QEMU, its rustup target), as install hints.
pub fn missing_tools(board: Board) -> Vec<String> {
    let mut missing = Vec::new();
    if find_qemu(board).is_none() {
        missing.push(format!(
            "{} (apt-get install -y --no-install-recommends {})",
            board.qemu, board.apt
        ));
    }
    if !target_installed(board.target) {
        missing.push(format!(
            "the Rust target {0} (rustup target add {0})",
            board.target
        ));
    }
    missing
}

/// QEMU and the Rust target for `board`, if both are there.
///
/// # Errors
/// When one is missing and `MICROFIT_REQUIRE_QEMU=1`. Without that variable a missing tool is
/// reported on stderr with a loud banner and `Ok(None)` is returned: the caller skips.
pub fn require_qemu(board: Board) -> Result<Option<Qemu>, String> {
    let missing = missing_tools(board);
    match find_qemu(board) {
        Some(binary) if missing.is_empty() => Ok(Some(Qemu { binary, board })),
        _ => {
            let what = missing.join(" and ");
            if required() {
                return Err(format!(
                    "{REQUIRE_ENV}=1 but this firmware test needs {what}"
                ));
            }
            let bar = "!".repeat(100);
            // Straight to the process's stderr: libtest captures `eprintln!`, not this.
            let _ = writeln!(
                std::io::stderr(),
                "\n{bar}\n!!! SKIPPED firmware test on {} ({}): missing {what}.\n!!! Nothing was checked. Set {REQUIRE_ENV}=1 to make this a failure.\n{bar}\n",
                board.machine,
                board.target
            );
            Ok(None)
        }
    }
}

/// `cargo`, as the running cargo names itself.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Serializes build + copy: every feature set of the firmware is built to the same path.
static BUILD_LOCK: Mutex<()> = Mutex::new(());
static COPY_SEQ: AtomicU32 = AtomicU32::new(0);

/// Builds the firmware for `board` with exactly `features` (no default features), with
/// `MICROFIT_FW_WORKLOAD=workload` when given (the firmware then trains that workload file, a
/// `microfit export` output, instead of its bundled one), and returns a private copy of the ELF:
/// `<target>/microfit-fw/<name>.elf` (`name` defaults to the board and the features). The copy
/// is renamed into place, so a QEMU still reading an older copy keeps it.
///
/// # Errors
/// If cargo fails or reports no executable.
pub fn build_firmware(
    board: Board,
    features: &[&str],
    workload: Option<&Path>,
    name: Option<&str>,
) -> Result<PathBuf, String> {
    build_firmware_with(board, features, workload, name, &[])
}

/// [`build_firmware`] with extra environment variables for the build (e.g. the compiled-in
/// sample of the `powf-check` image).
///
/// # Errors
/// If cargo fails or reports no executable.
pub fn build_firmware_with(
    board: Board,
    features: &[&str],
    workload: Option<&Path>,
    name: Option<&str>,
    env: &[(&str, &str)],
) -> Result<PathBuf, String> {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let feats = features.join(",");
    let mut cmd = Command::new(cargo());
    match workload {
        Some(w) => cmd.env("MICROFIT_FW_WORKLOAD", w),
        None => cmd.env_remove("MICROFIT_FW_WORKLOAD"),
    };
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .current_dir(workspace_root())
        .args([
            "build",
            "-q",
            "-p",
            "microfit-firmware",
            "--target",
            board.target,
            "--profile",
            "fw",
        ])
        .args([
            "--no-default-features",
            "--features",
            &feats,
            "--message-format",
            "json-render-diagnostics",
        ])
        // Flags meant for the host build (coverage, sanitizers) must not reach the firmware.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo build of the firmware: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build -p microfit-firmware --target {} --features {feats} failed",
            board.target
        ));
    }
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["reason"] == "compiler-artifact" && v["target"]["name"] == "microfit-firmware"
        })
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .ok_or("cargo reported no microfit-firmware executable")?;
    // <target>/<triple>/fw/microfit-firmware -> <target>/microfit-fw/<name>.elf
    let dir = exe
        .ancestors()
        .nth(3)
        .ok_or("unexpected executable path")?
        .join("microfit-fw");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = match name {
        Some(n) => format!("{n}.elf"),
        None => format!(
            "test-{}-{}{}.elf",
            board.label.to_lowercase(),
            features.join("-"),
            if workload.is_some() { "-exported" } else { "" }
        ),
    };
    let tmp = dir.join(format!(
        "{name}.{}-{}",
        std::process::id(),
        COPY_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::copy(&exe, &tmp).map_err(|e| format!("copy {}: {e}", exe.display()))?;
    let dest = dir.join(name);
    std::fs::rename(&tmp, &dest).map_err(|e| format!("rename to {}: {e}", dest.display()))?;
    Ok(dest)
}

/// A usable QEMU for one board.
#[derive(Debug, Clone)]
pub struct Qemu {
    /// Path of the board's QEMU system emulator.
    pub binary: PathBuf,
    /// The board it emulates.
    pub board: Board,
}

/// The outcome of one QEMU run.
#[derive(Debug, Clone)]
pub struct QemuRun {
    /// QEMU's exit code (`None` if it was killed).
    pub exit_code: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Everything the guest wrote to stdout (defmt frames through semihosting).
    pub stdout: Vec<u8>,
    /// QEMU's own stderr.
    pub stderr: String,
}

/// A firmware build run under QEMU, its log decoded and parsed.
#[derive(Debug, Clone)]
pub struct FirmwareRun {
    /// The ELF that ran (a copy under `<target>/microfit-fw/`).
    pub elf: PathBuf,
    /// The raw run.
    pub run: QemuRun,
    /// Decoded defmt lines, `LEVEL message`.
    pub lines: Vec<String>,
    /// The parsed log.
    pub log: FirmwareLog,
}

impl FirmwareRun {
    /// QEMU's exit code.
    pub fn exit_code(&self) -> Option<i32> {
        self.run.exit_code
    }

    /// The decoded log as one string (for assertion messages).
    pub fn transcript(&self) -> String {
        self.lines.join("\n")
    }
}

impl Qemu {
    /// This board's QEMU, or an error naming what is missing (for `cargo xtask`, which does not
    /// skip).
    ///
    /// # Errors
    /// When the emulator is not installed.
    pub fn find(board: Board) -> Result<Self, String> {
        find_qemu(board)
            .map(|binary| Qemu { binary, board })
            .ok_or_else(|| {
                format!(
                    "{} not found (apt-get install -y --no-install-recommends {}, or set {})",
                    board.qemu, board.apt, board.qemu_env
                )
            })
    }

    /// [`build_firmware`] for this board, named after the board and the features.
    ///
    /// # Errors
    /// If the build fails.
    pub fn build_firmware(&self, features: &[&str]) -> Result<PathBuf, String> {
        build_firmware(self.board, features, None, None)
    }

    /// Runs `elf` on this board with extra QEMU arguments (e.g. a `-plugin`), killing QEMU
    /// after `timeout`.
    ///
    /// # Errors
    /// If QEMU cannot be started.
    pub fn run_with(
        &self,
        elf: &Path,
        extra: &[String],
        timeout: Duration,
    ) -> Result<QemuRun, String> {
        let mut child = Command::new(&self.binary)
            .args(self.board.qemu_args())
            .arg("-kernel")
            .arg(elf)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", self.binary.display()))?;
        let mut out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let out_thread = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = out.read_to_end(&mut b);
            b
        });
        let err_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let start = Instant::now();
        let (exit_code, timed_out) = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break (status.code(), false);
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                break (None, true);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = out_thread.join().unwrap_or_default();
        let stderr = err_thread.join().unwrap_or_default();
        Ok(QemuRun {
            exit_code,
            timed_out,
            stdout,
            stderr,
        })
    }

    /// Runs `elf` on this board, killing QEMU after `timeout`.
    ///
    /// # Errors
    /// If QEMU cannot be started.
    pub fn run(&self, elf: &Path, timeout: Duration) -> Result<QemuRun, String> {
        self.run_with(elf, &[], timeout)
    }

    /// Runs `elf` with extra QEMU arguments, then decodes and parses its log.
    ///
    /// # Errors
    /// If QEMU cannot be started or the defmt stream cannot be decoded (a non-zero exit is not
    /// an error here: check [`FirmwareRun::exit_code`]).
    pub fn run_elf(
        &self,
        elf: &Path,
        extra: &[String],
        timeout: Duration,
    ) -> Result<FirmwareRun, String> {
        let run = self.run_with(elf, extra, timeout)?;
        let bytes = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
        let lines = decode_defmt(&bytes, &run.stdout)?;
        let log = FirmwareLog::parse(&lines);
        Ok(FirmwareRun {
            elf: elf.to_path_buf(),
            run,
            lines,
            log,
        })
    }

    /// [`build_firmware`](Self::build_firmware) and [`run_elf`](Self::run_elf) in one go.
    ///
    /// # Errors
    /// If the build, the start of QEMU or the defmt decoding fails.
    pub fn build_and_run(
        &self,
        features: &[&str],
        timeout: Duration,
    ) -> Result<FirmwareRun, String> {
        self.build_and_run_from(features, None, timeout)
    }

    /// [`Qemu::build_and_run`] of the firmware built from the workload file `workload` (see
    /// [`build_firmware`]).
    ///
    /// # Errors
    /// As [`Qemu::build_and_run`].
    pub fn build_and_run_from(
        &self,
        features: &[&str],
        workload: Option<&Path>,
        timeout: Duration,
    ) -> Result<FirmwareRun, String> {
        self.build_and_run_with(features, workload, &[], timeout)
    }

    /// [`Qemu::build_and_run_from`] with [`build_firmware_with`]'s extra build environment.
    ///
    /// # Errors
    /// As [`Qemu::build_and_run`].
    pub fn build_and_run_with(
        &self,
        features: &[&str],
        workload: Option<&Path>,
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<FirmwareRun, String> {
        let elf = build_firmware_with(self.board, features, workload, None, env)?;
        self.run_elf(&elf, &[], timeout)
    }
}

/// Decodes the defmt frames in `stream` with the table of `elf`; one `LEVEL message` line per
/// frame (level `PRINT` for `println!`).
///
/// # Errors
/// If the ELF has no defmt table or the stream is corrupt beyond recovery.
pub fn decode_defmt(elf: &[u8], stream: &[u8]) -> Result<Vec<String>, String> {
    let table = defmt_decoder::Table::parse(elf)
        .map_err(|e| format!("defmt table: {e}"))?
        .ok_or("the ELF has no .defmt section")?;
    let mut decoder = table.new_stream_decoder();
    decoder.received(stream);
    let mut lines = Vec::new();
    loop {
        match decoder.decode() {
            Ok(frame) => {
                let level = frame
                    .level()
                    .map(|l| l.as_str().to_uppercase())
                    .unwrap_or_else(|| "PRINT".into());
                lines.push(format!("{level} {}", frame.display_message()));
            }
            Err(defmt_decoder::DecodeError::UnexpectedEof) => return Ok(lines),
            Err(defmt_decoder::DecodeError::Malformed) if table.encoding().can_recover() => {
                lines.push("ERROR <malformed defmt frame skipped>".into());
            }
            Err(defmt_decoder::DecodeError::Malformed) => {
                return Err("malformed defmt stream".into());
            }
        }
    }
}

/// One `epoch` line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochLine {
    /// Epoch number, from 1.
    pub epoch: u32,
    /// Batch-size-weighted mean of the pre-update batch data losses.
    pub data_loss: f32,
    /// Same for the total loss (data loss + regularization penalties: Keras' `loss`).
    pub loss: f32,
    /// Running accuracy of the epoch.
    pub accuracy: f32,
}

/// The lines of the firmware's log (see `firmware/src/app.rs`), parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirmwareLog {
    /// `start workload=`.
    pub workload: Option<String>,
    /// `start l2=` (bits).
    pub l2: Option<f32>,
    /// `epoch N ... data_loss= loss= acc=`, in order.
    pub epochs: Vec<EpochLine>,
    /// `trained samples=`.
    pub samples_trained: Option<u32>,
    /// `trained regions=`: measured regions (one per epoch).
    pub regions: Option<u32>,
    /// `eval data_loss=`.
    pub eval_data_loss: Option<f32>,
    /// `eval loss=` (data loss + penalties).
    pub eval_loss: Option<f32>,
    /// `eval acc=`.
    pub eval_accuracy: Option<f32>,
    /// `weights_hash=`.
    pub weights_hash: Option<u64>,
    /// `stack peak_bytes=`.
    pub peak_stack_bytes: Option<u32>,
    /// `result acc=`.
    pub result_accuracy: Option<f32>,
    /// `result ok=`.
    pub result_ok: Option<bool>,
    /// Messages logged at ERROR level (panics, HardFaults).
    pub errors: Vec<String>,
}

/// The value of `key=value` in a line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

fn hex_u64(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// An `f32` from its bits in hex (`3d401a7d`).
pub fn f32_bits(s: &str) -> Option<f32> {
    hex_u64(s)
        .and_then(|v| u32::try_from(v).ok())
        .map(f32::from_bits)
}

impl FirmwareLog {
    /// Parses decoded `LEVEL message` lines; unknown lines are ignored.
    pub fn parse(lines: &[String]) -> Self {
        let mut log = Self::default();
        for line in lines {
            let (level, msg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            if level == "ERROR" {
                log.errors.push(msg.to_string());
            }
            let word = msg.split_whitespace().next().unwrap_or("");
            let num = |key: &str| field(msg, key).and_then(|s| s.parse().ok());
            match word {
                "start" => {
                    log.workload = field(msg, "workload").map(str::to_string);
                    log.l2 = field(msg, "l2").and_then(f32_bits);
                }
                "epoch" => {
                    let epoch = msg.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                    let data_loss = field(msg, "data_loss").and_then(f32_bits);
                    let loss = field(msg, "loss").and_then(f32_bits);
                    let accuracy = field(msg, "acc").and_then(f32_bits);
                    if let (Some(epoch), Some(data_loss), Some(loss), Some(accuracy)) =
                        (epoch, data_loss, loss, accuracy)
                    {
                        log.epochs.push(EpochLine {
                            epoch,
                            data_loss,
                            loss,
                            accuracy,
                        });
                    }
                }
                "trained" => {
                    log.samples_trained = num("samples");
                    log.regions = num("regions");
                }
                "eval" => {
                    log.eval_data_loss = field(msg, "data_loss").and_then(f32_bits);
                    log.eval_loss = field(msg, "loss").and_then(f32_bits);
                    log.eval_accuracy = field(msg, "acc").and_then(f32_bits);
                }
                "stack" => log.peak_stack_bytes = num("peak_bytes"),
                "result" => {
                    log.result_accuracy = field(msg, "acc").and_then(f32_bits);
                    log.result_ok = field(msg, "ok").and_then(|s| s.parse().ok());
                }
                _ if word.starts_with("weights_hash=") => {
                    log.weights_hash = field(msg, "weights_hash").and_then(hex_u64)
                }
                _ => {}
            }
        }
        log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_firmware_log() {
        let lines: Vec<String> = [
            "INFO start workload=W1 l2=3a83126f params=131 samples=150 epochs=50 batch=10",
            "INFO epoch 1 loss 1.09822 acc 29.3 % | data_loss=3f8c92a0 loss=3f8c92a0 acc=3e962fc9",
            "INFO epoch 2 loss 0.57837 acc 70.0 % | data_loss=3f14116c loss=3f1d70a4 acc=3f333333",
            "INFO trained samples=7500 steps=750 regions=50",
            "INFO eval loss 0.04260 acc 98.7 % correct=148 n=150 | data_loss=3d2e81ae loss=3d2e81ae acc=3f7c9c4d",
            "INFO weights_hash=2405b3e6dfc45ebd",
            "INFO stack peak_bytes=960 size_bytes=128956",
            "INFO result acc 98.7 % ok=true | acc=3f7c9c4d",
            "ERROR panic at src/train.rs:1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let log = FirmwareLog::parse(&lines);
        assert_eq!(log.workload.as_deref(), Some("W1"));
        assert_eq!(log.l2, Some(1e-3));
        assert_eq!(log.epochs.len(), 2);
        assert_eq!(
            log.epochs[1],
            EpochLine {
                epoch: 2,
                data_loss: f32::from_bits(0x3f14116c),
                loss: 0.615,
                accuracy: 0.7
            }
        );
        assert_eq!((log.samples_trained, log.regions), (Some(7500), Some(50)));
        assert_eq!(log.eval_data_loss, Some(f32::from_bits(0x3d2e81ae)));
        assert_eq!(log.eval_loss, Some(f32::from_bits(0x3d2e81ae)));
        assert_eq!(log.eval_accuracy, Some(f32::from_bits(0x3f7c9c4d)));
        assert_eq!(log.weights_hash, Some(0x2405_b3e6_dfc4_5ebd));
        assert_eq!(log.peak_stack_bytes, Some(960));
        assert_eq!(
            (log.result_accuracy, log.result_ok),
            (Some(f32::from_bits(0x3f7c9c4d)), Some(true))
        );
        assert_eq!(log.errors, ["panic at src/train.rs:1"]);
    }

    #[test]
    fn boards_by_name_and_elf_header() {
        assert_eq!(Board::parse("m4f"), Ok(M4F));
        assert_eq!(Board::parse("thumbv6m-none-eabi"), Ok(M0));
        assert_eq!(Board::parse("RV32"), Ok(RV32));
        assert!(Board::parse("avr").is_err());
        let mut header = [0u8; 40];
        header[18] = 243;
        assert_eq!(Board::of_elf(&header), Some(RV32));
        header[18] = 40;
        assert_eq!(Board::of_elf(&header), Some(M0));
        header[37] = 0x04;
        assert_eq!(Board::of_elf(&header), Some(M4F));
    }
}
