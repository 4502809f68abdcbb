//! `microfit sweep` (issue 13, item 9): each λ judged at its best validation epoch, every λ's
//! run kept in its own folder, λ printed as `%g`, and k-fold cross-validation.

mod common;
use common::*;

use std::path::Path;

use microfit::modelfile::ModelFile;
use predicates::prelude::*;

/// `sweep.csv` as (header, rows).
fn csv(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect());
    (lines.next().unwrap(), lines.collect())
}

/// (0-based epoch, value) of the lowest value.
fn argmin(v: &[f32]) -> (usize, f32) {
    v.iter()
        .copied()
        .enumerate()
        .filter(|(_, x)| x.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
}

#[test]
fn each_lambda_is_judged_at_its_best_epoch_and_kept_in_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    // A high learning rate makes the validation loss jump about, so the best epoch is
    // rarely the last.
    microfit()
        .args([
            "sweep", "--quiet", "--data", "wine", "--lr", "0.2", "--l2", "0,1e-3", "--epochs",
            "25", "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let (header, rows) = csv(&out);
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let mut best_is_not_last = false;
    for (row, folder) in rows.iter().zip(["l2_0", "l2_0.001"]) {
        let dir = out.join(folder);
        let h = history(&dir);
        let (epoch, value) = argmin(h.get("val_data_loss").unwrap());
        assert_eq!(row[col("best_epoch")], (epoch + 1).to_string(), "{folder}");
        assert_eq!(
            row[col("val_data_loss")].parse::<f32>().unwrap().to_bits(),
            value.to_bits(),
            "{folder}"
        );
        best_is_not_last |= epoch + 1 < h.epochs();
        for f in ["model.mfit", "history.csv", "spec.toml", "report.txt"] {
            assert!(dir.join(f).is_file(), "{folder}/{f}");
        }
        let m = ModelFile::load(&dir.join("model.mfit")).unwrap();
        assert_eq!(m.progress.epochs_done, 25);
        let report = std::fs::read_to_string(dir.join("report.txt")).unwrap();
        assert!(
            report.contains(&format!("kept: epoch {} (lowest val_data_loss", epoch + 1)),
            "{report}"
        );
        // The kept weights are those a plain run stopped at that epoch ends with.
        let single = tmp.path().join(format!("single-{folder}"));
        let lambda = folder.trim_start_matches("l2_");
        microfit()
            .args([
                "train", "--quiet", "--data", "wine", "--lr", "0.2", "--l2", lambda,
            ])
            .args(["--epochs", &(epoch + 1).to_string(), "--out"])
            .arg(&single)
            .assert()
            .success();
        same_weights(&dir.join("model.mfit"), &single.join("model.mfit"));
    }
    assert!(
        best_is_not_last,
        "the test needs a run whose best epoch is not the last"
    );
}

#[test]
fn lambdas_are_printed_as_percent_g() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    microfit()
        .args(["sweep", "--l2", "1e-5,1e30", "--epochs", "2", "--out"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("1e+30 "))
        .stdout(predicate::str::contains("1e-05 "))
        .stdout(predicate::str::contains("1000000000000000000000000000000").not());
    let (_, rows) = csv(&out);
    assert_eq!(rows[0][0], "1e-05");
    assert_eq!(rows[1][0], "1e+30");
    assert!(out.join("l2_1e+30").is_dir() && out.join("l2_1e-05").is_dir());
}

#[test]
fn folds_cross_validate_each_lambda() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cv");
    microfit()
        .args([
            "sweep",
            "--quiet",
            "--data",
            "iris",
            "--l2",
            "1e-4,1e-2",
            "--folds",
            "3",
            "--epochs",
            "6",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "by mean over 3 folds of the best-epoch validation data loss",
        ));
    let (header, rows) = csv(&out);
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    for (row, folder) in rows.iter().zip(["l2_0.0001", "l2_0.01"]) {
        let mut best = Vec::new();
        let mut validation = 0;
        for k in 1..=3 {
            let dir = out.join(folder).join(format!("fold_{k}"));
            best.push(argmin(history(&dir).get("val_data_loss").unwrap()).1);
            let report = std::fs::read_to_string(dir.join("report.txt")).unwrap();
            let line = report
                .lines()
                .find(|l| l.starts_with("validation "))
                .unwrap();
            validation += line
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u32>()
                .unwrap();
        }
        assert_eq!(validation, 150, "{folder}: every sample validates once");
        let mean = best.iter().map(|&v| f64::from(v)).sum::<f64>() / 3.0;
        let got: f64 = row[col("val_data_loss")].parse().unwrap();
        assert!(
            (got - mean).abs() <= 1e-6 * mean,
            "{folder}: {got} vs {mean}"
        );
        assert_eq!(row[col("best_epoch")].split(';').count(), 3);
    }
}
