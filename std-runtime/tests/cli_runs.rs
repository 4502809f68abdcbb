//! Runs as transactions and the streams (issue 13, items 2, 3, 4 and 6; issue 10, item 6):
//! a failed run leaves the previous one untouched, a closed stdout ends the program quietly,
//! progress is one line per epoch without a terminal, `history.csv` grows per epoch, and
//! `--resume` takes the command line that started the run.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use microfit::modelfile::ModelFile;
use predicates::prelude::*;

fn bin() -> StdCommand {
    StdCommand::new(env!("CARGO_BIN_EXE_microfit"))
}

/// A regression CSV: `y = 3·x1 − 2·x2 + 0.5` on 60 rows.
fn regression_csv(dir: &Path) -> PathBuf {
    let path = dir.join("reg.csv");
    let mut text = String::from("x1,x2,y\n");
    for i in 0..60 {
        let (a, b) = (f64::from(i % 7) / 3.0, f64::from(i % 11) / 5.0);
        text.push_str(&format!("{a},{b},{}\n", 3.0 * a - 2.0 * b + 0.5));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Item 2: a run that stops on NaN before any good epoch leaves the folder it was pointed at
/// exactly as it was, and says where the partial run is.
#[test]
fn a_failed_run_leaves_the_previous_run_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("good");
    train_quiet(&out, &["--epochs", "3"]);
    let before = folder_bytes(&out);
    assert!(before.contains_key("model.mfit"));
    microfit()
        .args(["train", "--data", "iris", "--l2", "1e30", "--out"])
        .arg(&out)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("TerminateOnNaN"))
        .stderr(predicate::str::contains(format!(
            "{} is unchanged, the partial run is in {}",
            out.display(),
            partial(&out).display()
        )));
    assert_unchanged(&out, &before, "a failed run");
    assert!(partial(&out).join("spec.toml").is_file());
}

/// Item 2: a new run replaces the old folder as a whole: nothing of a regression run stays
/// beside a classification run written over it.
#[test]
fn a_run_replaces_the_whole_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let csv = regression_csv(tmp.path());
    train_quiet(&out, &["--epochs", "2", "--data", csv.to_str().unwrap()]);
    assert!(out.join("r2.png").is_file());
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    train_quiet(&out, &["--epochs", "2", "--data", "iris"]);
    let files: Vec<String> = folder_bytes(&out).into_keys().collect();
    for stale in ["r2.png", "r2.svg", "mse.png", "notes.txt"] {
        assert!(
            !files.contains(&stale.to_string()),
            "{stale} left: {files:?}"
        );
    }
    assert!(files.contains(&"accuracy.png".to_string()));
    assert!(!partial(&out).exists(), "the partial folder became --out");
    // A folder that is not a run is never replaced.
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("thesis.tex"), "…").unwrap();
    microfit()
        .args(["train", "--epochs", "1", "--out"])
        .arg(&mine)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("holds files but no microfit run"));
    assert!(mine.join("thesis.tex").is_file());
}

/// A write end of a pipe whose read end is already closed.
fn closed_stdout() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

fn run_closed(cmd: &mut StdCommand) -> (Option<i32>, String) {
    let out = cmd
        .stdout(closed_stdout())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Item 3: `predict | head`, `train --json | head` and `microfit | head` end quietly with 141
/// (128 + SIGPIPE) instead of panicking, and the training run leaves `--out` as it was.
#[test]
fn a_closed_stdout_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train_quiet(&out, &["--epochs", "3"]);
    let before = folder_bytes(&out);

    let (code, err) = run_closed(
        bin()
            .args(["predict", "--data", "iris", "--model"])
            .arg(out.join("model.mfit")),
    );
    assert_eq!(code, Some(141), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );

    let (code, err) = run_closed(
        bin()
            .args(["train", "--json", "--epochs", "50", "--out"])
            .arg(&out),
    );
    assert_eq!(code, Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_unchanged(&out, &before, "train --json with a closed stdout");

    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let (code, err) = run_closed(bin().current_dir(&cwd));
    assert_eq!(code, Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!cwd.join("microfit-out").exists());
}

/// Item 4: without a terminal, one line per epoch (Keras verbose=2: epoch, time, every
/// metric); `--verbose 0` prints none.
#[test]
fn a_piped_run_prints_one_line_per_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let stdout = microfit()
        .args(["train", "--epochs", "7", "--data", "wine", "--out"])
        .arg(tmp.path().join("a"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(stdout).unwrap();
    let epochs: Vec<&str> = text.lines().filter(|l| l.starts_with("Epoch ")).collect();
    assert_eq!(epochs.len(), 7, "{text}");
    for (e, l) in epochs.iter().enumerate() {
        assert!(l.starts_with(&format!("Epoch {}/7 - ", e + 1)), "{l}");
        for key in [
            " - loss: ",
            " - accuracy: ",
            " - val_loss: ",
            " - val_accuracy: ",
        ] {
            assert!(l.contains(key), "{l} lacks {key}");
        }
        assert!(l.contains("ms - ") || l.contains("s - "), "{l}: no time");
    }
    let quiet = microfit()
        .args(["train", "--verbose", "0", "--epochs", "3", "--out"])
        .arg(tmp.path().join("b"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(!String::from_utf8(quiet).unwrap().contains("Epoch 1/3"));
}

/// Item 4: `history.csv` grows by one line per epoch while the run goes (Keras `CSVLogger`),
/// so a killed run keeps its history.
#[test]
fn history_csv_grows_while_training() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut child = bin()
        .args(["train", "--quiet", "--epochs", "100000", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let csv = partial(&out).join("history.csv");
    let start = Instant::now();
    let mut sizes = Vec::new();
    while sizes.len() < 3 {
        let rows = std::fs::read_to_string(&csv)
            .map(|t| t.lines().count().saturating_sub(1))
            .unwrap_or(0);
        if rows > 0 && sizes.last() != Some(&rows) {
            sizes.push(rows);
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{sizes:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
    // What it holds is the checkpoint's history, epoch by epoch.
    let ck = ModelFile::load(&partial(&out).join("checkpoint.mfit")).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let loss_col = header.iter().position(|h| *h == "loss").unwrap();
    let losses: Vec<f32> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(loss_col).unwrap().parse().unwrap())
        .collect();
    let want = ck.progress.history.get("loss").unwrap();
    // The checkpoint is written before the line, so a kill between the two leaves one fewer.
    assert!(
        losses.len() == want.len() || losses.len() + 1 == want.len(),
        "{} lines, {} epochs",
        losses.len(),
        want.len()
    );
    for (a, b) in losses.iter().zip(want) {
        assert_eq!(a.to_bits(), b.to_bits());
    }
}

/// Item 6: `--resume` accepts the command line that started the run (only `--epochs` grows),
/// and ends with the bits of an uninterrupted run.
#[test]
fn resume_takes_the_original_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    fn cmd(epochs: &str) -> Vec<&str> {
        vec![
            "train", "--quiet", "--data", "wine", "--hidden", "8", "--lr", "0.02", "--l2", "1e-4",
            "--seed", "7", "--epochs", epochs,
        ]
    }
    microfit()
        .args(cmd("3"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    microfit()
        .args(cmd("6"))
        .arg("--out")
        .arg(&out)
        .arg("--resume")
        .assert()
        .success();
    let straight = tmp.path().join("straight");
    microfit()
        .args(cmd("6"))
        .arg("--out")
        .arg(&straight)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(out.join("history.json")).unwrap(),
        std::fs::read(straight.join("history.json")).unwrap()
    );
    same_weights(&out.join("model.mfit"), &straight.join("model.mfit"));
    // Another setting is refused, naming what differs.
    microfit()
        .args(cmd("8").iter().map(|a| if *a == "8" { "9" } else { a }))
        .arg("--out")
        .arg(&out)
        .arg("--resume")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "asks for another model (layers, regularizers) than the run",
        ));
}

/// Issue 10, item 6: the JSON summary and `report.txt` carry the training throughput.
#[test]
fn the_run_reports_training_samples_per_second() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let stdout = microfit()
        .args([
            "train",
            "--json",
            "--epochs",
            "4",
            "--validation-split",
            "0",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(stdout).unwrap();
    let summary: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let rate = summary["train_samples_per_s"].as_f64().unwrap();
    assert!(rate > 0.0 && rate.is_finite(), "{summary}");
    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(
        report.contains("training samples/s (training steps only"),
        "{report}"
    );
}

/// Item 2: a run stopped by a NaN after good epochs has a model to show: it replaces `--out`
/// (exit 3), and with early stopping's `restore_best_weights` that model is the best epoch's.
#[test]
fn a_nan_after_good_epochs_keeps_the_best_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train_quiet(&out, &["--epochs", "2"]);
    microfit()
        .args([
            "train",
            "--quiet",
            "--optimizer",
            "sgd",
            "--lr",
            "30",
            "--epochs",
            "50",
            "--early-stopping",
            "100",
            "--out",
        ])
        .arg(&out)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("TerminateOnNaN"));
    assert!(!partial(&out).exists());
    let m = ModelFile::load(&out.join("model.mfit")).unwrap();
    let es = m.progress.early_stopping.clone().unwrap();
    assert!(m.progress.epochs_done >= 1 && m.progress.epochs_done < 50);
    assert_eq!(
        Some(&m.weights.tensors),
        es.best_weights.as_ref(),
        "best weights kept"
    );
    let val = history(&out).get("val_loss").unwrap().to_vec();
    let best = (0..val.len())
        .min_by(|&a, &b| val[a].total_cmp(&val[b]))
        .unwrap();
    assert_eq!(es.best_epoch as usize, best);
    assert!(
        best + 1 < val.len(),
        "the test needs a best epoch before the last good one: {val:?}"
    );
}
