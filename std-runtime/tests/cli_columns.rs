//! Columns by name (issue 13, items 1 and 8): `evaluate` and `predict` pick the model's
//! feature columns by header name, `--drop` / `--features` choose them for training, duplicate
//! header names and single-class files are errors.

mod common;
use common::*;

use std::path::{Path, PathBuf};

use microfit::modelfile::ModelFile;
use predicates::prelude::*;

/// The bundled iris CSV with its columns in another order: label first, then the features
/// reversed, and an extra column the model never saw.
fn shuffled_iris(dir: &Path) -> PathBuf {
    let text = microfit::data::Bundled::Iris.csv_text();
    let mut out = String::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(',').collect();
        let extra = if out.is_empty() { "notes" } else { "x" };
        out.push_str(&format!(
            "{},{},{},{},{},{extra}\n",
            f[4], f[3], f[2], f[1], f[0]
        ));
    }
    let path = dir.join("shuffled.csv");
    std::fs::write(&path, out).unwrap();
    path
}

fn accuracy(model: &Path, data: &str) -> f64 {
    let out = microfit()
        .args(["evaluate", "--json", "--model"])
        .arg(model)
        .args(["--data", data])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    v["accuracy"].as_f64().unwrap()
}

/// Item 1: the same data with its columns reordered (and one extra) evaluates to the same
/// accuracy, to the bit.
#[test]
fn evaluate_matches_columns_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    train_quiet(&out, &["--epochs", "30"]);
    let model = out.join("model.mfit");
    let plain = accuracy(&model, "iris");
    let shuffled = shuffled_iris(tmp.path());
    let reordered = accuracy(&model, shuffled.to_str().unwrap());
    assert!(plain > 0.8, "{plain}");
    assert_eq!(
        plain.to_bits(),
        reordered.to_bits(),
        "{plain} vs {reordered}"
    );
    // Two feature columns swapped, nothing else: still the same.
    let swapped = tmp.path().join("swapped.csv");
    let text: String = microfit::data::Bundled::Iris
        .csv_text()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{},{},{},{}\n", f[2], f[1], f[0], f[3], f[4])
        })
        .collect();
    std::fs::write(&swapped, text).unwrap();
    let after_swap = accuracy(&model, swapped.to_str().unwrap());
    assert_eq!(
        plain.to_bits(),
        after_swap.to_bits(),
        "{plain} vs {after_swap}"
    );
}

/// Item 1: `predict` refuses a header that does not name the model's features, naming the
/// missing ones; a headerless file is matched by position and says so.
#[test]
fn predict_names_missing_columns_and_says_when_it_matched_by_position() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    train_quiet(&out, &["--epochs", "5"]);
    let model = out.join("model.mfit");
    let xyz = tmp.path().join("xyz.csv");
    std::fs::write(&xyz, "x,y,z\n1,2,3\n").unwrap();
    microfit()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&xyz)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the header does not name every feature of the model: \"sepal_length_cm\", \
             \"sepal_width_cm\", \"petal_length_cm\", \"petal_width_cm\" missing",
        ));
    let raw = tmp.path().join("raw.csv");
    std::fs::write(&raw, "5.1,3.5,1.4,0.2\n").unwrap();
    microfit()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&raw)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "has no header row; its columns were matched to the model's features by position",
        ));
    // Only some of the features by name, in another order: picked by name.
    let named = tmp.path().join("named.csv");
    std::fs::write(
        &named,
        "petal_width_cm,id,sepal_length_cm,petal_length_cm,sepal_width_cm\n0.2,9,5.1,1.4,3.5\n",
    )
    .unwrap();
    let by_name = microfit()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&named)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let by_position = microfit()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&raw)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(by_name, by_position);
}

/// Item 8: `--drop` leaves an ID column out (and the model remembers the features it has);
/// `--features` picks columns in order; a column that counts rows is pointed out.
#[test]
fn drop_and_features_choose_the_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("with_id.csv");
    let mut text = String::from("id,a,b,label\n");
    for i in 0..40 {
        let a = f64::from(i % 5);
        text.push_str(&format!("{},{a},{},{}\n", i + 1, 10.0 - a, i % 2));
    }
    std::fs::write(&csv, text).unwrap();
    let out = tmp.path().join("dropped");
    microfit()
        .args(["train", "--epochs", "2", "--drop", "id", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("numbers the rows").not());
    let m = ModelFile::load(&out.join("model.mfit")).unwrap();
    assert_eq!(m.data.feature_names, ["a", "b"]);
    let out = tmp.path().join("chosen");
    microfit()
        .args([
            "train",
            "--quiet",
            "--epochs",
            "2",
            "--features",
            "b,a",
            "--data",
        ])
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let m = ModelFile::load(&out.join("model.mfit")).unwrap();
    assert_eq!(m.data.feature_names, ["b", "a"]);
    assert!(
        std::fs::read_to_string(out.join("spec.toml"))
            .unwrap()
            .contains("features = [\"b\", \"a\"]")
    );
    // Without --drop, the ID column is trained on, and the warning says so.
    microfit()
        .args(["train", "--quiet", "--epochs", "1", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(tmp.path().join("with_id"))
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "feature column \"id\" numbers the rows (an ID?); leave it out with --drop id",
        ));
}

/// Item 8: duplicate header names are an error naming both columns; a file with a single
/// class is refused rather than trained to "100 %".
#[test]
fn duplicate_names_and_a_single_class_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dup = tmp.path().join("dup.csv");
    std::fs::write(&dup, "a,b,a,label\n1,2,3,x\n4,5,6,y\n7,8,9,x\n").unwrap();
    microfit()
        .args(["train", "--epochs", "1", "--label", "a", "--data"])
        .arg(&dup)
        .arg("--out")
        .arg(tmp.path().join("o1"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "dup.csv: columns 1 and 3 are both named \"a\"",
        ));
    let one = tmp.path().join("one.csv");
    let mut text = String::from("a,b,label\n");
    for i in 0..20 {
        text.push_str(&format!("{i},{},yes\n", i * 2));
    }
    std::fs::write(&one, text).unwrap();
    microfit()
        .args(["train", "--epochs", "1", "--data"])
        .arg(&one)
        .arg("--out")
        .arg(tmp.path().join("o2"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the label column \"label\" holds a single class (\"yes\")",
        ));
}
