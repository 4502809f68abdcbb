//! `microfit train` end to end: every bundled dataset, a user CSV, every bad CSV case, a bad
//! spec, resume after a killed run, TerminateOnNaN, early stopping, JSON lines and the
//! no-argument default run.

mod common;
use common::*;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use microfit::modelfile::{ModelFile, ModelFileError};
use predicates::prelude::*;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn trains_on_every_bundled_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, classes) in [
        ("iris", 3),
        ("digits", 10),
        ("wine", 3),
        ("breast_cancer", 2),
    ] {
        let out = tmp.path().join(name);
        microfit()
            .args(["train", "--data", name, "--epochs", "2", "--out"])
            .arg(&out)
            .assert()
            .success()
            .stdout(predicate::str::contains("Metrics (Keras evaluate"))
            .stdout(predicate::str::contains("dense/kernel"));
        let h = history(&out);
        assert_eq!(h.epochs(), 2, "{name}");
        for key in [
            "loss",
            "accuracy",
            "data_loss",
            "dense/kernel_penalty",
            "val_loss",
            "val_accuracy",
        ] {
            let v = h
                .get(key)
                .unwrap_or_else(|| panic!("{name}: no {key} in {:?}", h.keys()));
            assert!(v.iter().all(|x| x.is_finite()), "{name} {key} {v:?}");
        }
        // Keras: the reported loss is the data loss plus the penalties.
        let (loss, data) = (h.get("loss").unwrap(), h.get("data_loss").unwrap());
        let pen: Vec<f32> = (0..2)
            .map(|e| {
                h.keys()
                    .iter()
                    .filter(|k| !k.starts_with("val_") && k.ends_with("_penalty"))
                    .map(|k| h.get(k).unwrap()[e])
                    .sum()
            })
            .collect();
        for e in 0..2 {
            assert!(
                (loss[e] - (data[e] + pen[e])).abs() <= 1e-5 * loss[e].abs().max(1.0),
                "{name} epoch {e}"
            );
        }
        let m = ModelFile::load(&out.join("model.mfit")).unwrap();
        assert_eq!(m.data.class_names.len(), classes, "{name}");
        assert_eq!(m.progress.epochs_done, 2);
        for f in [
            "checkpoint.mfit",
            "spec.toml",
            "model.keras.json",
            "history.csv",
            "report.txt",
            "loss.png",
        ] {
            assert!(out.join(f).is_file(), "{name}: {f} missing");
        }
    }
}

#[test]
fn trains_on_a_user_csv_with_string_labels_then_predicts_class_names() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("animals.csv");
    let mut text = String::from("weight,ears,species,height\n");
    for i in 0..60 {
        let (sp, w, h) = match i % 3 {
            0 => ("cat", 4.0, 25.0),
            1 => ("dog", 20.0, 55.0),
            _ => ("mouse", 0.02, 5.0),
        };
        let j = f64::from(i) * 0.01;
        text.push_str(&format!("{},{},{sp},{}\n", w + j, 2, h - j));
    }
    std::fs::write(&csv, text).unwrap();
    let out = tmp.path().join("out");
    microfit()
        .args([
            "train", "--label", "species", "--epochs", "30", "--lr", "0.05", "--data",
        ])
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("3 classes (cat, dog, mouse)"));
    let m = ModelFile::load(&out.join("model.mfit")).unwrap();
    assert_eq!(m.data.class_names, ["cat", "dog", "mouse"]);
    assert_eq!(m.data.feature_names, ["weight", "ears", "height"]);
    // Features only (no label column), with a header: predictions are class names.
    let feats = tmp.path().join("new.csv");
    std::fs::write(
        &feats,
        "weight,ears,height\n4.1,2,24.9\n19.5,2,54\n0.03,2,5.1\n",
    )
    .unwrap();
    let pred = microfit()
        .args(["predict", "--model"])
        .arg(out.join("model.mfit"))
        .arg("--data")
        .arg(&feats)
        .assert()
        .success()
        .stderr(predicate::str::contains("classes: cat, dog, mouse"))
        .get_output()
        .stdout
        .clone();
    let pred = String::from_utf8(pred).unwrap();
    let lines: Vec<&str> = pred.lines().collect();
    assert_eq!(lines[0], "row,predicted,p_cat,p_dog,p_mouse");
    assert!(lines[1].starts_with("0,cat,"), "{pred}");
    assert!(lines[2].starts_with("1,dog,"), "{pred}");
    assert!(lines[3].starts_with("2,mouse,"), "{pred}");
    // A bad features file names the file, line and column.
    std::fs::write(&feats, "weight,ears,height\n4.1,2,24.9\n19.5,x,54\n").unwrap();
    microfit()
        .args(["predict", "--model"])
        .arg(out.join("model.mfit"))
        .arg("--data")
        .arg(&feats)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "new.csv:line 3, column 2 (\"ears\"): \"x\" is not a number",
        ));
}

#[test]
fn every_bad_csv_fails_with_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &[&str], &str); 5] = [
        (
            "ragged.csv",
            "a,b,label\n1,2,x\n3,4\n",
            &[],
            "ragged.csv:line 3: expected 3 fields",
        ),
        (
            "nonnum.csv",
            "a,b,label\n1,2,x\n3,zz,y\n",
            &[],
            "nonnum.csv:line 3, column 2 (\"b\"): \"zz\" is not a number",
        ),
        (
            "nan.csv",
            "a,b,label\n1,2,x\n3,NaN,y\n",
            &[],
            "nan.csv:line 3, column 2 (\"b\"): \"NaN\" is not a finite number",
        ),
        ("empty.csv", "", &[], "empty.csv: the file is empty"),
        (
            "nolabel.csv",
            "a,b,label\n1,2,x\n3,4,y\n",
            &["--label", "species"],
            "nolabel.csv: there is no label column named \"species\"",
        ),
    ];
    for (name, text, extra, want) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = tmp.path().join(format!("out-{name}"));
        microfit()
            .args(["train", "--epochs", "1", "--data"])
            .arg(&path)
            .args(extra)
            .arg("--out")
            .arg(&out)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(want))
            .stderr(predicate::str::contains("panicked").not());
        assert!(
            !out.join("model.mfit").exists(),
            "{name}: nothing should be trained"
        );
    }
    microfit()
        .args(["train", "--data", "irsi"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "irsi: no such file, and not a bundled dataset",
        ));
}

#[test]
fn bad_spec_names_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.toml");
    std::fs::write(
        &spec,
        "epochs = 2\n[[layers]]\ntype = \"dense\"\nunits = 8\nactivation = \"relu\"\n\
         [[layers]]\ntype = \"dense\"\nunits = 3\nactivation = \"softmax\"\nkernel_regularizer = { l2 = -0.001 }\n",
    )
    .unwrap();
    microfit()
        .args(["train", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(tmp.path().join("o"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "spec.toml: layers[1].kernel_regularizer.l2: must be finite and >= 0",
        ));
    std::fs::write(
        &spec,
        "epochs = 2\n[optimizer]\nname = \"adam\"\nlearnig_rate = 0.1\n",
    )
    .unwrap();
    microfit()
        .args(["train", "--spec"])
        .arg(&spec)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown field `learnig_rate`"))
        .stderr(predicate::str::contains("line 4"));
    std::fs::write(
        &spec,
        "[[layers]]\ntype = \"dense\"\nunits = 4\nactivation = \"softmax\"\n",
    )
    .unwrap();
    microfit()
        .args(["train", "--spec"])
        .arg(&spec)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "layers[0].units: the data has 3 classes, but the output layer has 4 units",
        ));
    // A good spec trains, and the spec written back is the same config.
    let out = tmp.path().join("good");
    std::fs::write(
        &spec,
        "epochs = 3\nbatch_size = 16\n[optimizer]\nname = \"sgd\"\nlearning_rate = 0.1\nmomentum = 0.9\n\
         [[layers]]\ntype = \"dense\"\nunits = 8\nactivation = \"tanh\"\nkernel_regularizer = { l1 = 1e-4, l2 = 1e-3 }\n\
         activity_regularizer = { l2 = 1e-4 }\n[[layers]]\ntype = \"dense\"\nunits = 3\nactivation = \"softmax\"\n\
         kernel_regularizer = { orthogonal = 0.01, mode = \"rows\" }\n",
    )
    .unwrap();
    microfit()
        .args(["train", "--quiet", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let written = std::fs::read_to_string(out.join("spec.toml")).unwrap();
    assert!(
        written.contains("kernel_regularizer = { l1 = 0.0001, l2 = 0.001 }"),
        "{written}"
    );
    assert!(
        written.contains("kernel_regularizer = { orthogonal = 0.01, mode = \"rows\" }"),
        "{written}"
    );
    assert!(written.contains("momentum = 0.9"), "{written}");
    let h = history(&out);
    assert!(h.get("dense/activity_penalty").is_some() && h.get("dense_1/kernel_penalty").is_some());
    // Training again from the written spec gives the same bits.
    let again = tmp.path().join("again");
    microfit()
        .args(["train", "--quiet", "--spec"])
        .arg(out.join("spec.toml"))
        .arg("--out")
        .arg(&again)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(out.join("history.json")).unwrap(),
        std::fs::read(again.join("history.json")).unwrap()
    );
}

#[test]
fn resume_after_a_killed_run_continues_to_the_same_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    // The checkpoint of a killed run is whole (atomic writes).
    let m = killed_run(&out, &[], 3);
    let k = m.progress.epochs_done;
    assert!((3..100_000).contains(&k));
    assert_eq!(m.progress.history.epochs(), k as usize);
    assert!(!m.progress.finished);
    assert_eq!(m.optimizer.slots.len(), 2, "Adam's m and v");
    assert!(m.optimizer.iterations > 0);
    let total = k + 4;
    microfit()
        .args(["train", "--resume", "--epochs", &total.to_string(), "--out"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("resumed after epoch {k}")));
    let resumed = history(&out);
    assert_eq!(resumed.epochs(), total as usize, "history continues");
    // An uninterrupted run of as many epochs ends with the very same history and weights.
    same_as_straight_run(&out, &tmp.path().join("straight"), &[], total);
    // Resume refuses a command line that asks for another spec, and needs a checkpoint.
    microfit()
        .args(["train", "--resume", "--lr", "0.1", "--out"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--resume: this command line asks for another optimizer than the run",
        ));
    microfit()
        .args(["train", "--resume", "--out"])
        .arg(tmp.path().join("nothing"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no checkpoint to resume from"));
}

#[test]
fn a_diverging_run_exits_3_and_keeps_the_last_good_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("div");
    microfit()
        .args([
            "train",
            "--optimizer",
            "sgd",
            "--lr",
            "1e6",
            "--epochs",
            "50",
            "--out",
        ])
        .arg(&out)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("NaN or infinite"))
        .stderr(predicate::str::contains("TerminateOnNaN"));
    let ck = ModelFile::load(&out.join("checkpoint.mfit")).unwrap();
    let m = ModelFile::load(&out.join("model.mfit")).unwrap();
    let h = history(&out);
    assert!(h.epochs() < 50);
    assert_eq!(ck.progress.epochs_done as usize, h.epochs());
    assert_eq!(
        m.weights, ck.weights,
        "model.mfit is the last good checkpoint's model"
    );
    for f in ["loss.png", "weights.svg", "report.txt", "history.csv"] {
        assert!(out.join(f).is_file(), "{f}");
    }
}

#[test]
fn early_stopping_stops_after_patience_and_restores_the_best_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("es");
    microfit()
        .args([
            "train",
            "--lr",
            "0.3",
            "--epochs",
            "300",
            "--early-stopping",
            "3",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("early stopping"))
        .stderr(predicate::str::contains(
            "Restoring model weights from the end of the best epoch",
        ));
    let h = history(&out);
    let val = h.get("val_loss").unwrap();
    assert!(h.epochs() < 300);
    let best = (0..val.len())
        .min_by(|&a, &b| val[a].total_cmp(&val[b]))
        .unwrap();
    assert_eq!(
        h.epochs(),
        best + 1 + 3,
        "stopped `patience` epochs after the best one"
    );
    let m = ModelFile::load(&out.join("model.mfit")).unwrap();
    let es = m.progress.early_stopping.unwrap();
    assert_eq!(es.best_epoch as usize, best);
    assert_eq!(
        m.weights.tensors,
        es.best_weights.unwrap(),
        "best weights restored"
    );
    // The plots mark it (issue 13, item 7).
    let label = format!("best epoch {} (weights", best + 1);
    for plot in ["loss.svg", "accuracy.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(svg.contains(&label), "{plot}: no {label:?}");
    }
}

#[test]
fn json_mode_prints_one_object_per_epoch_then_a_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = microfit()
        .args([
            "train", "--json", "--epochs", "3", "--data", "wine", "--out",
        ])
        .arg(tmp.path().join("j"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(lines[0]["event"], "start");
    assert_eq!(lines[0]["task"], "classification");
    let lines = &lines[1..];
    for (e, l) in lines[..3].iter().enumerate() {
        assert_eq!(l["event"], "epoch");
        assert_eq!(l["epoch"], e + 1);
        assert!(l["loss"].as_f64().unwrap() > 0.0);
        assert!(l["val_accuracy"].as_f64().is_some());
    }
    let s = &lines[3];
    assert_eq!(s["event"], "summary");
    assert_eq!(s["epochs_done"], 3);
    assert_eq!(s["stop_reason"], "completed");
    assert_eq!(s["metrics"][1]["set"], "validation");
    assert!(
        s["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "model.mfit")
    );
}

#[test]
fn no_arguments_trains_the_default_model_on_iris() {
    let tmp = tempfile::tempdir().unwrap();
    microfit()
        .current_dir(tmp.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("bundled iris dataset"))
        .stdout(predicate::str::contains(
            "The report is microfit-out/report.txt",
        ))
        .stdout(predicate::str::contains("kernel L2(0.001)"));
    let out = tmp.path().join("microfit-out");
    let m = ModelFile::load(&out.join("model.mfit")).unwrap();
    assert_eq!(m.progress.epochs_done, 100);
    let spec = std::fs::read_to_string(out.join("spec.toml")).unwrap();
    assert!(
        spec.contains("name = \"adam\"") && spec.contains("learning_rate = 0.01"),
        "{spec}"
    );
    assert!(
        spec.contains("batch_size = 32") && spec.contains("seed = 42"),
        "{spec}"
    );
    // The default model learns iris.
    let acc = history(&out).last("val_accuracy").unwrap();
    assert!(acc >= 0.9, "validation accuracy {acc}");
}

#[test]
fn a_keras_config_trains_like_the_model_it_came_from() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    train_quiet(
        &first,
        &[
            "--epochs",
            "3",
            "--hidden",
            "7",
            "--optimizer",
            "sgd",
            "--lr",
            "0.05",
        ],
    );
    // model.keras.json carries the model and the compile config (loss, optimizer).
    let second = tmp.path().join("second");
    microfit()
        .args(["train", "--quiet", "--epochs", "3", "--keras-config"])
        .arg(first.join("model.keras.json"))
        .arg("--out")
        .arg(&second)
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(first.join("history.json")).unwrap(),
        std::fs::read_to_string(second.join("history.json")).unwrap()
    );
    let spec = std::fs::read_to_string(second.join("spec.toml")).unwrap();
    assert!(
        spec.contains("name = \"sgd\"") && spec.contains("units = 7"),
        "{spec}"
    );
    // A bad Keras config is refused with the JSON path of the problem.
    let bad = tmp.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 4]}},
           {"class_name": "Dense", "config": {"units": 3, "activation": "softmax",
            "kernel_regularizer": {"class_name": "L2", "config": {"l2": -0.5}}}}]}"#,
    )
    .unwrap();
    microfit()
        .args(["train", "--keras-config"])
        .arg(&bad)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "bad.json: layers[1].config.kernel_regularizer.config.l2: must be >= 0",
        ));
}

/// With `Dropout` the masks depend on a random generator inside the model; the checkpoint
/// keeps its state, so a killed and resumed run still ends with the bits of an uninterrupted
/// one (weights, optimizer and history).
#[test]
fn resume_with_dropout_continues_to_the_same_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("dropout.toml");
    std::fs::write(
        &spec,
        "[data]\nsource = \"iris\"\n\
         [[layers]]\ntype = \"dense\"\nunits = 16\nactivation = \"relu\"\n\
         [[layers]]\ntype = \"dropout\"\nrate = 0.3\n\
         [[layers]]\ntype = \"dense\"\nunits = 3\nactivation = \"softmax\"\n",
    )
    .unwrap();
    let spec_args = ["--spec", spec.to_str().unwrap()];
    let out = tmp.path().join("run");
    let m = killed_run(&out, &spec_args, 2);
    assert!(
        m.rng.is_some(),
        "the checkpoint keeps the dropout generator"
    );
    let total = m.progress.epochs_done + 5;
    microfit()
        .args(["train", "--resume", "--epochs", &total.to_string(), "--out"])
        .arg(&out)
        .assert()
        .success();
    let b = same_as_straight_run(&out, &tmp.path().join("straight"), &spec_args, total);
    assert_eq!(b.0.rng, b.1.rng);
}

/// Loads a checkpoint that a running (or killed) process writes: there is either none yet
/// (`None`), or a complete, CRC-valid one. Anything else (a torn or half-written file) fails.
fn poll_checkpoint(path: &Path) -> Option<ModelFile> {
    match ModelFile::load(path) {
        Ok(m) => Some(m),
        Err(ModelFileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            None
        }
        Err(e) => panic!("a reader saw a damaged checkpoint: {e}"),
    }
}

fn spawn_endless(out: &Path, extra: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_microfit"))
        .args(["train", "--quiet", "--epochs", "100000"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Starts `microfit train <extra> --epochs 100000 --out out`, kills it once its checkpoint
/// (in `out.partial`) has `epochs` epochs, and returns that checkpoint. Every poll sees no
/// checkpoint or a whole one.
fn killed_run(out: &Path, extra: &[&str], epochs: u32) -> ModelFile {
    let ckpt = partial(out).join("checkpoint.mfit");
    let mut child = spawn_endless(out, extra);
    let start = Instant::now();
    loop {
        if poll_checkpoint(&ckpt).is_some_and(|m| m.progress.epochs_done >= epochs) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint after 60 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    poll_checkpoint(&ckpt).unwrap()
}

/// The kill test: runs killed at many points (from start-up through the first epochs) leave,
/// at every poll and after the kill, either no checkpoint or a complete CRC-valid one, a
/// `history.csv` with one line per checkpointed epoch (or one fewer, when killed between the
/// two writes), and the previous run in `--out` untouched.
#[test]
fn runs_killed_at_many_points_leave_whole_files_and_the_old_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train_quiet(&out, &["--epochs", "2"]);
    let before = folder_bytes(&out);
    let ckpt = partial(&out).join("checkpoint.mfit");
    let mut seen_epochs = std::collections::BTreeSet::new();
    for k in 0..24u64 {
        let mut child = spawn_endless(&out, &["--data", "wine"]);
        let kill_at = Duration::from_millis(k * k);
        let start = Instant::now();
        while start.elapsed() < kill_at {
            let _ = poll_checkpoint(&ckpt);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let ck = poll_checkpoint(&ckpt);
        let done = ck.as_ref().map_or(0, |m| m.progress.epochs_done as usize);
        seen_epochs.insert(done);
        if let Some(m) = &ck {
            assert_eq!(m.progress.history.epochs(), done);
            // Killed between the checkpoint and the first line: no file yet.
            let csv =
                std::fs::read_to_string(partial(&out).join("history.csv")).unwrap_or_default();
            let rows = csv.lines().skip(1).filter(|l| !l.is_empty()).count();
            assert!(
                rows == done || rows + 1 == done,
                "kill {k}: history.csv has {rows} rows, the checkpoint {done} epochs"
            );
        }
        assert_unchanged(&out, &before, &format!("kill {k}"));
    }
    assert!(
        seen_epochs.len() >= 3,
        "the kills should land before, at and after the first epochs: {seen_epochs:?}"
    );
}

/// Trains `<extra>` for `total` epochs without interruption into `straight` and checks that
/// the resumed run in `out` ended with the same history, weights and optimizer state; returns
/// both final model files.
fn same_as_straight_run(
    out: &Path,
    straight: &Path,
    extra: &[&str],
    total: u32,
) -> (ModelFile, ModelFile) {
    microfit()
        .args(["train", "--quiet", "--epochs", &total.to_string()])
        .args(extra)
        .arg("--out")
        .arg(straight)
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(straight.join("history.json")).unwrap(),
        std::fs::read_to_string(out.join("history.json")).unwrap()
    );
    let a = ModelFile::load(&straight.join("model.mfit")).unwrap();
    let b = ModelFile::load(&out.join("model.mfit")).unwrap();
    for (x, y) in a.weights.tensors.iter().zip(&b.weights.tensors) {
        assert_eq!(bits(x), bits(y));
    }
    // The optimizer's state, every slot value compared with `to_bits`.
    assert_eq!(a.optimizer.iterations, b.optimizer.iterations);
    assert_eq!(a.optimizer.slots.len(), b.optimizer.slots.len());
    for (x, y) in a.optimizer.slots.iter().zip(&b.optimizer.slots) {
        assert_eq!(x.name, y.name);
        assert_eq!(x.tensors.len(), y.tensors.len());
        for (p, q) in x.tensors.iter().zip(&y.tensors) {
            assert_eq!(bits(p), bits(q), "slot {}", x.name);
        }
    }
    (a, b)
}
