//! Messages a new user meets (issue 13, item 10) and size limits (item 11).

mod common;
use common::*;

use predicates::prelude::*;

#[test]
fn a_negative_seed_says_what_a_seed_is() {
    let tmp = tempfile::tempdir().unwrap();
    microfit()
        .current_dir(tmp.path())
        .args(["train", "--seed=-1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "\"-1\" is not a seed: give a whole number from 0 to 18446744073709551615",
        ))
        .stderr(predicate::str::contains("invalid digit").not());
}

#[test]
fn semicolon_and_tab_separated_files_train() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, sep) in [("semi.csv", ";"), ("tab.tsv", "\t")] {
        let path = tmp.path().join(name);
        let mut text = format!("a{sep}b{sep}label\n");
        for i in 0..30 {
            text.push_str(&format!(
                "{i}{sep}{}{sep}{}\n",
                30 - i,
                if i < 15 { "x" } else { "y" }
            ));
        }
        std::fs::write(&path, text).unwrap();
        microfit()
            .args(["train", "--quiet", "--epochs", "1", "--data"])
            .arg(&path)
            .arg("--out")
            .arg(tmp.path().join(name).with_extension("out"))
            .assert()
            .success();
        let report = std::fs::read_to_string(
            tmp.path()
                .join(name)
                .with_extension("out")
                .join("report.txt"),
        )
        .unwrap();
        assert!(
            report.contains("2 features (a, b) → 2 classes (x, y)"),
            "{report}"
        );
    }
}

#[test]
fn an_unknown_loss_lists_the_supported_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.toml");
    std::fs::write(&spec, "loss = \"hinge\"\n").unwrap();
    microfit()
        .args(["train", "--spec"])
        .arg(&spec)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "loss: unknown loss \"hinge\"; supported: sparse_categorical_crossentropy, \
             categorical_crossentropy, binary_crossentropy, mean_squared_error (mse), \
             mean_absolute_error (mae)",
        ));
}

#[test]
fn evaluate_without_the_label_column_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    train_quiet(&out, &["--epochs", "2"]);
    let feats = tmp.path().join("features.csv");
    std::fs::write(
        &feats,
        "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm\n5.1,3.5,1.4,0.2\n",
    )
    .unwrap();
    microfit()
        .args(["evaluate", "--model"])
        .arg(out.join("model.mfit"))
        .arg("--data")
        .arg(&feats)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "there is no label column \"class\" (the column the model was trained to predict)",
        ))
        .stderr(predicate::str::contains("use `microfit predict`"))
        .stderr(predicate::str::contains("feature columns").not());
}

#[test]
fn early_stopping_without_validation_names_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    microfit()
        .current_dir(tmp.path())
        .args(["train", "--early-stopping", "5", "--validation-split", "0"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "early stopping watches val_loss, which needs a validation split: give \
             --validation-split > 0",
        ));
}

/// Item 11: sizes are checked (with `checked_mul`, against a documented maximum) before
/// anything is allocated, and the error names the layer.
#[test]
fn oversized_models_are_refused_before_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    microfit()
        .current_dir(tmp.path())
        .args(["train", "--hidden", "3000000000000", "--epochs", "1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "layers[0].units: 3000000000000 units: a layer's output is limited to 16777216 \
             values (microfit::limits::MAX_VALUES)",
        ));
    microfit()
        .current_dir(tmp.path())
        .args(["train", "--hidden", "5000,5000", "--epochs", "1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "layers[1]: dense on 5000 inputs brings the model to more than 16777216 parameters \
             (microfit::limits::MAX_PARAMS)",
        ));
    let spec = tmp.path().join("cnn.toml");
    std::fs::write(
        &spec,
        "input_shape = [8, 8, 1]\n[data]\nsource = \"digits\"\n\
         [[layers]]\ntype = \"conv2d\"\nfilters = 100000000\nkernel_size = 3\n\
         [[layers]]\ntype = \"flatten\"\n\
         [[layers]]\ntype = \"dense\"\nunits = 10\nactivation = \"softmax\"\n",
    )
    .unwrap();
    for cmd in ["train", "summary"] {
        microfit()
            .current_dir(tmp.path())
            .args([cmd, "--spec"])
            .arg(&spec)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("layers[0]"))
            .stderr(predicate::str::contains("microfit::limits::MAX_"));
    }
}
