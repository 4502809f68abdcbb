//! Regression is a first-class task (issue 13, item 5): `--task` and `--loss`, the detection
//! explained on the first line, and MSE, RMSE, MAE and R² wherever classification shows the
//! accuracy (progress, report, history, plots, `evaluate`, `predict`).

mod common;
use common::*;

use std::path::{Path, PathBuf};

use predicates::prelude::*;

/// A "diabetes-like" file: an integer score 0–5 that is really a quantity.
fn scores(dir: &Path) -> PathBuf {
    let path = dir.join("scores.csv");
    let mut text = String::from("age,bmi,score\n");
    for i in 0..120 {
        let age = f64::from(20 + (i * 7) % 50);
        let bmi = f64::from(18 + (i * 5) % 20);
        let score = ((age - 20.0) / 50.0 * 3.0 + (bmi - 18.0) / 20.0 * 3.0).round();
        text.push_str(&format!("{age},{bmi},{score}\n"));
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn help_documents_regression_and_the_new_flags() {
    let help = microfit()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(help).unwrap();
    for want in [
        "regression",
        "--task",
        "R²",
        "summary",
        "--features / --drop",
        "<out>.partial",
    ] {
        assert!(help.contains(want), "--help lacks {want:?}");
    }
    let train = microfit()
        .args(["train", "--help"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let train = String::from_utf8(train).unwrap();
    for want in [
        "--task <TASK>",
        "--loss <LOSS>",
        "--drop <COLS>",
        "--features <COLS>",
        "--verbose <0|1|2>",
        "--save-best-only",
        "- mse:                             Mean squared error",
    ] {
        assert!(train.contains(want), "train --help lacks {want:?}");
    }
}

#[test]
fn the_first_line_says_which_task_and_why() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = scores(tmp.path());
    let out = microfit()
        .args(["train", "--epochs", "1", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(tmp.path().join("a"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let first = String::from_utf8(out)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        first,
        "task: classification, 6 classes, because label column \"score\" holds 6 distinct \
         integers (0 to 5), at most 100; give --task regression if it is a quantity to predict"
    );
    let out = microfit()
        .args(["train", "--epochs", "1", "--task", "regression", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(tmp.path().join("b"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("task: regression (--task regression) of column \"score\""),
        "{text}"
    );
}

/// MSE, RMSE, MAE and R² in the progress lines, the history, the report, `evaluate` and
/// `predict`; R² checked against the predictions themselves.
#[test]
fn regression_reports_mse_rmse_mae_and_r2_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = scores(tmp.path());
    let out = tmp.path().join("reg");
    let stdout = microfit()
        .args([
            "train",
            "--epochs",
            "40",
            "--task",
            "regression",
            "--loss",
            "mae",
            "--lr",
            "0.05",
            "--data",
        ])
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(stdout).unwrap();
    let epoch1 = stdout
        .lines()
        .find(|l| l.starts_with("Epoch 1/40"))
        .unwrap();
    for key in ["mse: ", "rmse: ", "mae: ", "r2: ", "val_r2: ", "val_mae: "] {
        assert!(epoch1.contains(key), "{epoch1}");
    }
    let spec = std::fs::read_to_string(out.join("spec.toml")).unwrap();
    assert!(spec.contains("loss = \"mean_absolute_error\""), "{spec}");
    assert!(spec.contains("task = \"regression\""), "{spec}");
    let h = std::fs::read_to_string(out.join("history.json")).unwrap();
    for key in ["\"rmse\"", "\"r2\"", "\"val_rmse\"", "\"val_r2\""] {
        assert!(h.contains(key), "{h}");
    }
    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(
        report.contains("mse   rmse    mae      r2")
            || report.contains("rmse") && report.contains("r2"),
        "{report}"
    );
    assert!(out.join("r2.png").is_file());

    // evaluate --json on the whole file, and predict's own rows.
    let model = out.join("model.mfit");
    let eval = microfit()
        .args(["evaluate", "--json", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&csv)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&eval).unwrap();
    let (mse, rmse, mae, r2) = (
        v["mse"].as_f64().unwrap(),
        v["rmse"].as_f64().unwrap(),
        v["mae"].as_f64().unwrap(),
        v["r2"].as_f64().unwrap(),
    );
    assert!((rmse - mse.sqrt()).abs() <= 1e-5 * rmse.max(1.0));
    let pred = microfit()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&csv)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "against the target column \"score\" (120 rows): mse ",
        ))
        .stderr(predicate::str::contains(", r2 "))
        .get_output()
        .stdout
        .clone();
    let pred = String::from_utf8(pred).unwrap();
    let rows: Vec<(f64, f64)> = pred
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    let n = rows.len() as f64;
    let mean = rows.iter().map(|r| r.1).sum::<f64>() / n;
    let sse: f64 = rows.iter().map(|(p, y)| (y - p).powi(2)).sum();
    let sst: f64 = rows.iter().map(|(_, y)| (y - mean).powi(2)).sum();
    let abs: f64 = rows.iter().map(|(p, y)| (y - p).abs()).sum();
    assert!(
        (mse - sse / n).abs() <= 1e-4 * mse.max(1e-3),
        "{mse} vs {}",
        sse / n
    );
    assert!(
        (mae - abs / n).abs() <= 1e-4 * mae.max(1e-3),
        "{mae} vs {}",
        abs / n
    );
    let want_r2 = 1.0 - sse / sst;
    assert!((r2 - want_r2).abs() <= 1e-4, "{r2} vs {want_r2}");
    assert!(want_r2 > 0.5, "the model should fit: R² {want_r2}");
}
