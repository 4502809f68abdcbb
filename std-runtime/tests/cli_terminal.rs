//! `microfit train` in a real (pseudo-)terminal (issue 13, "Done when"): the progress bar runs,
//! one line per epoch stays on the screen, and the final report appears; piped, the same run
//! prints one line per epoch.

#![cfg(unix)]

use std::process::Command;

#[test]
fn a_terminal_run_keeps_a_line_per_epoch_and_ends_with_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_microfit"));
    cmd.args(["train", "--data", "wine", "--epochs", "6", "--out"])
        .arg(tmp.path().join("run"))
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "160");
    let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).unwrap();
    p.exp_string("task: classification").unwrap();
    let mut screen = String::new();
    for e in 1..=6 {
        screen.push_str(&p.exp_string(&format!("Epoch {e}/6 - ")).unwrap());
        p.exp_string("val_accuracy: ").unwrap();
    }
    // The progress bar was drawn (and cleared) between the kept lines.
    assert!(
        screen.contains("/6 [") && screen.contains(" eta "),
        "{screen:?}"
    );
    p.exp_string("Metrics (Keras evaluate").unwrap();
    p.exp_string("Classification report, validation").unwrap();
    p.exp_string("The report is").unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(!rest.contains("panicked"), "{rest}");
    let status = p.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::wait::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
    assert!(tmp.path().join("run").join("model.mfit").is_file());
}

#[test]
fn a_piped_run_prints_exactly_one_line_per_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_microfit"))
        .args(["train", "--data", "wine", "--epochs", "6", "--out"])
        .arg(tmp.path().join("run"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("Epoch ")).collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(!text.contains('\r'), "no progress bar when piped");
}
