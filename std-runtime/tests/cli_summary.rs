//! Keras habits (issue 13, item 12): `microfit summary` (model.summary() with regularizers,
//! and the training memory, checked against the core's compile-time counts), precision,
//! recall, F1 and the confusion matrix in the report, and `--save-best-only`.

mod common;
use common::*;

use microfit::core::layer::dense::Dense;
use microfit::core::model::Network;
use microfit::core::zoo::TinyCnn;
use microfit::modelfile::ModelFile;

/// The byte count of the `total` memory line: `  total  6.23 KB  (6376 B)`.
fn total_bytes(summary: &str) -> usize {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .unwrap();
    let inner = &line[line.rfind('(').unwrap() + 1..line.rfind(" B)").unwrap()];
    inner.parse().unwrap()
}

#[test]
fn summary_prints_keras_table_with_regularizers() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("cnn.toml");
    std::fs::write(
        &spec,
        "input_shape = [8, 8, 1]\n[data]\nsource = \"digits\"\n\
         [[layers]]\ntype = \"conv2d\"\nfilters = 4\nkernel_size = 3\npadding = \"same\"\n\
         activation = \"relu\"\nkernel_regularizer = { l2 = 1e-3 }\n\
         [[layers]]\ntype = \"max_pooling\"\npool_size = [2, 2]\n\
         [[layers]]\ntype = \"flatten\"\n\
         [[layers]]\ntype = \"dropout\"\nrate = 0.1\n\
         [[layers]]\ntype = \"dense\"\nunits = 10\nactivation = \"softmax\"\n\
         activity_regularizer = { l1 = 1e-4 }\n",
    )
    .unwrap();
    let s = stdout(microfit().args(["summary", "--spec"]).arg(&spec));
    let row = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(&format!("│ {name} ")))
            .unwrap_or_else(|| panic!("no row {name}:\n{s}"))
            .split('│')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // Hand-derived: conv 3·3·1·4 + 4 = 40, dense 64·10 + 10 = 650.
    assert_eq!(
        row("conv2d (Conv2D)"),
        [
            "conv2d (Conv2D)",
            "(None, 8, 8, 4)",
            "40",
            "kernel L2(0.001)"
        ]
    );
    assert_eq!(
        row("max_pooling2d (MaxPooling2D)"),
        ["max_pooling2d (MaxPooling2D)", "(None, 4, 4, 4)", "0", "-"]
    );
    assert_eq!(row("flatten (Flatten)")[1], "(None, 64)");
    assert_eq!(row("dropout (Dropout)")[1], "(None, 64)");
    assert_eq!(
        row("dense (Dense)"),
        ["dense (Dense)", "(None, 10)", "650", "activity L1(0.0001)"]
    );
    assert!(s.starts_with("Model: \"sequential\"\n┏"), "{s}");
    assert!(s.contains(" Total params: 690 (2.70 KB)\n"), "{s}");
    assert!(s.contains(" Trainable params: 690 (2.70 KB)\n"), "{s}");
}

/// The memory is the core's: `Network::PARAMS` and `Network::ACTIVATION_FLOATS` of the same
/// typed model, with weights, gradients and Adam's two slots.
#[test]
fn summary_memory_matches_the_core_counts() {
    let tmp = tempfile::tempdir().unwrap();
    // zoo::TinyCnn as a spec.
    let spec = tmp.path().join("tiny.toml");
    std::fs::write(
        &spec,
        "input_shape = [8, 8, 1]\n[data]\nsource = \"digits\"\n\
         [[layers]]\ntype = \"conv2d\"\nfilters = 8\nkernel_size = 3\nactivation = \"relu\"\n\
         [[layers]]\ntype = \"max_pooling\"\npool_size = [2, 2]\n\
         [[layers]]\ntype = \"flatten\"\n\
         [[layers]]\ntype = \"dense\"\nunits = 10\nactivation = \"softmax\"\n",
    )
    .unwrap();
    let s = stdout(microfit().args(["summary", "--spec"]).arg(&spec));
    let p = Network::<TinyCnn>::PARAMS;
    let a = Network::<TinyCnn>::ACTIVATION_FLOATS;
    assert_eq!(total_bytes(&s), 4 * (2 * p + 2 * p + a), "{s}");
    // The default iris model (W1), from the flags alone.
    type W1 = (Dense<4, 16>, Dense<16, 3>);
    let s = stdout(microfit().args(["summary", "--hidden", "16"]));
    let (p, a) = (Network::<W1>::PARAMS, Network::<W1>::ACTIVATION_FLOATS);
    assert_eq!(total_bytes(&s), 4 * (4 * p + a), "{s}");
    // SGD keeps no slot.
    let s = stdout(microfit().args(["summary", "--hidden", "16", "--optimizer", "sgd"]));
    assert_eq!(total_bytes(&s), 4 * (2 * p + a), "{s}");
}

#[test]
fn summary_reads_keras_configs_and_model_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train_quiet(&out, &["--epochs", "1", "--data", "wine", "--hidden", "12"]);
    let from_model = stdout(
        microfit()
            .args(["summary", "--model"])
            .arg(out.join("model.mfit")),
    );
    let from_keras = stdout(
        microfit()
            .args(["summary", "--keras-config"])
            .arg(out.join("model.keras.json")),
    );
    assert_eq!(from_model, from_keras);
    // 13·12 + 12 and 12·3 + 3.
    assert!(
        from_model.contains("│ 168 │") || from_model.contains(" 168 │"),
        "{from_model}"
    );
    assert!(from_model.contains(" Total params: 207 "), "{from_model}");
}

/// The report's classification section, checked against `predict`'s own rows.
#[test]
fn the_report_has_precision_recall_f1_and_the_confusion_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train_quiet(
        &out,
        &["--epochs", "3", "--lr", "0.02", "--validation-split", "0"],
    );
    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    let preds = stdout(
        microfit()
            .args(["predict", "--data", "iris", "--model"])
            .arg(out.join("model.mfit")),
    );
    let names = ["setosa", "versicolor", "virginica"];
    let mut confusion = [[0u32; 3]; 3];
    for l in preds.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let p = names.iter().position(|n| *n == f[1]).unwrap();
        let t = names.iter().position(|n| *n == f[5]).unwrap();
        confusion[t][p] += 1;
    }
    let section = &report[report
        .find("Classification report, train (150 samples)")
        .unwrap()..];
    for (c, name) in names.iter().enumerate() {
        let tp = f64::from(confusion[c][c]);
        let support: u32 = confusion[c].iter().sum();
        let predicted: u32 = confusion.iter().map(|r| r[c]).sum();
        let precision = if predicted == 0 {
            0.0
        } else {
            tp / f64::from(predicted)
        };
        let recall = tp / f64::from(support);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        let want = format!("{name} {precision:.3} {recall:.3} {f1:.3} {support}");
        assert!(
            section
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == want),
            "no {want:?} in\n{section}"
        );
        let row: Vec<String> = confusion[c].iter().map(ToString::to_string).collect();
        let printed = section
            .lines()
            .skip_while(|l| !l.starts_with("Confusion matrix, train"))
            .find(|l| l.starts_with(name))
            .unwrap();
        assert_eq!(
            printed.split_whitespace().skip(1).collect::<Vec<_>>(),
            row,
            "{section}"
        );
    }
}

/// `--save-best-only`: model.mfit holds the epoch with the lowest val_loss, bit for bit the
/// model of a run stopped at that epoch; the checkpoint keeps the last epoch.
#[test]
fn save_best_only_keeps_the_best_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("best");
    let args = ["--quiet", "--data", "wine", "--lr", "0.3"];
    microfit()
        .arg("train")
        .args(args)
        .args(["--epochs", "20", "--save-best-only", "--out"])
        .arg(&out)
        .assert()
        .success();
    let val = history(&out).get("val_loss").unwrap().to_vec();
    let best = (0..val.len())
        .min_by(|&a, &b| val[a].total_cmp(&val[b]))
        .unwrap();
    assert!(
        best + 1 < val.len(),
        "the test needs a best epoch before the last: {val:?}"
    );
    let single = tmp.path().join("single");
    microfit()
        .arg("train")
        .args(args)
        .args(["--epochs", &(best + 1).to_string(), "--out"])
        .arg(&single)
        .assert()
        .success();
    same_weights(&out.join("model.mfit"), &single.join("model.mfit"));
    let a = ModelFile::load(&out.join("model.mfit")).unwrap();
    let ck = ModelFile::load(&out.join("checkpoint.mfit")).unwrap();
    assert_eq!(ck.progress.epochs_done, 20);
    assert_ne!(ck.weights, a.weights);
    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(
        report.contains(&format!("model.mfit: epoch {} (lowest val_loss", best + 1)),
        "{report}"
    );
}
