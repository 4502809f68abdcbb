//! `microfit train`'s toolbox flags (issue 12, phase B): each changes the run as Keras would,
//! and a resumed run with EMA and ReduceLROnPlateau ends with the bits of an uninterrupted one.

mod common;
use common::*;

use microfit::modelfile::ModelFile;

fn train(out: &std::path::Path, extra: &[&str]) {
    microfit()
        .args([
            "train", "--quiet", "--data", "iris", "--hidden", "8", "--seed", "3", "--epochs",
        ])
        .args(extra)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
}

/// `--freeze 1`: the first layer's weights are bit for bit the initial ones (the model of the
/// stored spec built from the run's seed, before any step), and the second layer trained.
#[test]
fn freeze_keeps_the_first_layer_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train(&out, &["4", "--freeze", "1"]);
    let path = out.join("model.mfit");
    let f = ModelFile::load(&path).unwrap();
    let cfg = f.config(&path).unwrap();
    let initial = cfg.model.build(cfg.seed).unwrap();
    assert_eq!(f.toolbox.frozen.names, ["dense/kernel", "dense/bias"]);
    for (a, b) in f.toolbox.frozen.tensors.iter().zip(&initial.frozen.tensors) {
        assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
    assert_eq!(f.weights.names, ["dense_1/kernel", "dense_1/bias"]);
    assert_ne!(
        f.weights.tensors[0], initial.params.tensors[0],
        "the last layer trains"
    );
    // `summary` of the run counts them like Keras.
    microfit()
        .args(["summary", "--model"])
        .arg(&path)
        .assert()
        .success()
        .stdout(predicates::str::contains("Trainable params: 27"))
        .stdout(predicates::str::contains("Non-trainable params: 40"));
}

/// `--max-norm 0.5`: every column of every kernel (the weights into one unit, Keras'
/// `MaxNorm(axis=0)`) has a norm of at most 0.5 after training.
#[test]
fn max_norm_bounds_every_kernel_column() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train(&out, &["5", "--lr", "0.1", "--max-norm", "0.5"]);
    let f = ModelFile::load(&out.join("model.mfit")).unwrap();
    let mut largest = 0.0f64;
    for ((name, shape), t) in f
        .weights
        .names
        .iter()
        .zip(&f.weights.shapes)
        .zip(&f.weights.tensors)
    {
        if !name.ends_with("kernel") {
            continue;
        }
        let (rows, cols) = (shape[0], shape[1]);
        for j in 0..cols {
            let n: f64 = (0..rows)
                .map(|i| f64::from(t[i * cols + j]).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(n <= 0.5 + 1e-6, "{name} column {j}: norm {n}");
            largest = largest.max(n);
        }
    }
    // The constraint bites: without it the columns grow past 0.5 at this rate.
    assert!(largest > 0.49, "largest column norm {largest}");
}

/// An interrupted run with `--ema` and `--reduce-lr-on-plateau`, resumed, ends with the bits
/// (weights, EMA averages, history) of the uninterrupted run.
#[test]
fn resume_with_ema_and_plateau_is_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let flags = [
        "--ema",
        "0.9",
        "--reduce-lr-on-plateau",
        "--plateau-patience",
        "1",
        "--plateau-factor",
        "0.5",
        "--lr",
        "0.05",
    ];
    let out = tmp.path().join("run");
    let mut first = vec!["3"];
    first.extend(flags);
    train(&out, &first);
    let mut again = vec!["12"];
    again.extend(flags);
    microfit()
        .args([
            "train", "--quiet", "--data", "iris", "--hidden", "8", "--seed", "3", "--epochs",
        ])
        .args(&again)
        .arg("--out")
        .arg(&out)
        .arg("--resume")
        .assert()
        .success();
    let straight = tmp.path().join("straight");
    train(&straight, &again);
    assert_eq!(
        std::fs::read(out.join("history.json")).unwrap(),
        std::fs::read(straight.join("history.json")).unwrap()
    );
    let a = ModelFile::load(&out.join("model.mfit")).unwrap();
    let b = ModelFile::load(&straight.join("model.mfit")).unwrap();
    assert_eq!(a.weights, b.weights);
    assert_eq!(a.optimizer, b.optimizer);
    assert_eq!(a.toolbox, b.toolbox);
    assert!(a.optimizer.slots.iter().any(|s| s.name == "average"));
    let lr = b.toolbox.learning_rate.unwrap();
    assert!(lr < 0.05, "the plateau never reduced the rate ({lr})");
    // The report says the saved weights are the averages.
    let report = std::fs::read_to_string(straight.join("report.txt")).unwrap();
    assert!(
        report.contains("model.mfit holds the moving averages"),
        "{report}"
    );
}
