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
    // The firmware blob (inference) holds every layer's weights, the frozen one's too, with
    // its frozen bit set.
    let fw = tmp.path().join("fw");
    microfit()
        .args(["export", "--model"])
        .arg(&path)
        .arg("--out")
        .arg(&fw)
        .assert()
        .success();
    let blob = microfit::export::read_blob(&std::fs::read(fw.join("model.bin")).unwrap()).unwrap();
    let expected: Vec<&Vec<f32>> = f
        .toolbox
        .frozen
        .tensors
        .iter()
        .chain(&f.weights.tensors)
        .collect();
    assert_eq!(blob.tensors.len(), expected.len());
    for (a, b) in blob.tensors.iter().zip(expected) {
        assert!(a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
    assert!(blob.layers[0].training.frozen && !blob.layers[1].training.frozen);
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

/// `model.weights.h5` of a `.keras` file, as stored.
fn keras_store(path: &std::path::Path) -> microfit::formats::keras_weights::WeightsStore {
    let bytes = std::fs::read(path).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut h5 = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name("model.weights.h5").unwrap(), &mut h5).unwrap();
    microfit::formats::keras_weights::WeightsStore::from_bytes(&h5, "model.weights.h5").unwrap()
}

/// A stored float32 variable's bits.
fn var_bits(v: &microfit::formats::keras_weights::StoredVar) -> Vec<u32> {
    match &v.values {
        microfit::formats::keras_weights::VarValues::F32(x) => {
            x.iter().map(|f| f.to_bits()).collect()
        }
        microfit::formats::keras_weights::VarValues::Int(_) => panic!("an integer variable"),
    }
}

fn bits(t: &[f32]) -> Vec<u32> {
    t.iter().map(|v| v.to_bits()).collect()
}

/// `microfit train --model <file>` with the flags both continuations share.
fn continue_from(model: &std::path::Path, out: &std::path::Path, extra: &[&str]) {
    microfit()
        .args([
            "train", "--quiet", "--data", "iris", "--seed", "3", "--epochs", "2",
        ])
        .args(["--scale", "none", "--model"])
        .arg(model)
        .args(extra)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
}

/// `.keras` export of a model whose first layer is frozen, as Keras 3 lays it out: the frozen
/// layer's kernel and bias are in `layers/dense/vars` (bits of the model file's frozen
/// weights), its config says `trainable: false`, and the optimizer has slots only for the
/// trainable variables (Keras builds it on `model.trainable_variables`): `iterations`,
/// `learning_rate`, then `m`, `v` of `dense_1/kernel` and of `dense_1/bias` — 6 variables.
/// Training on from the `.keras` file is training on from the model file, bit for bit.
#[test]
fn keras_export_of_a_frozen_layer_keeps_its_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train(&out, &["2", "--freeze", "1", "--scale", "none"]);
    let mfit = out.join("model.mfit");
    let keras = tmp.path().join("frozen.keras");
    microfit()
        .args(["export", "--format", "keras", "--model"])
        .arg(&mfit)
        .arg("--out")
        .arg(&keras)
        .assert()
        .success();
    let f = ModelFile::load(&mfit).unwrap();
    let store = keras_store(&keras);
    let dense = &store.entries["layers/dense"].vars;
    assert_eq!(
        dense.len(),
        2,
        "the frozen layer's kernel and bias are written"
    );
    for (v, t) in dense.iter().zip(&f.toolbox.frozen.tensors) {
        assert_eq!(var_bits(v), bits(t));
    }
    let opt = &store.entries["optimizer"].vars;
    assert_eq!(
        opt.len(),
        2 + 2 * 2,
        "iterations, learning_rate, m and v of dense_1's two"
    );
    let slot = |n: &str| {
        &f.optimizer
            .slots
            .iter()
            .find(|s| s.name == n)
            .unwrap()
            .tensors
    };
    assert_eq!(var_bits(&opt[2]), bits(&slot("m")[0]));
    assert_eq!(var_bits(&opt[5]), bits(&slot("v")[1]));
    let bytes = std::fs::read(&keras).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let config: serde_json::Value =
        serde_json::from_reader(zip.by_name("config.json").unwrap()).unwrap();
    let layers = &config["config"]["layers"];
    assert_eq!(layers[1]["config"]["trainable"], false);
    assert_eq!(layers[2]["config"]["trainable"], true);
    // Read back: the same frozen bits.
    let k = microfit::formats::KerasModel::load(&keras).unwrap();
    assert_eq!(k.frozen.tensors.len(), 2);
    for (a, b) in k.frozen.tensors.iter().zip(&f.toolbox.frozen.tensors) {
        assert_eq!(bits(a), bits(b));
    }
    // Two more epochs from either file: the same bits (frozen weights, optimizer state).
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    continue_from(&mfit, &a, &[]);
    continue_from(&keras, &b, &[]);
    let (fa, fb) = (
        ModelFile::load(&a.join("model.mfit")).unwrap(),
        ModelFile::load(&b.join("model.mfit")).unwrap(),
    );
    assert_eq!(fa.toolbox.frozen.tensors, f.toolbox.frozen.tensors);
    assert_eq!(fb.toolbox.frozen.tensors, f.toolbox.frozen.tensors);
    assert_eq!(fa.weights.tensors, fb.weights.tensors);
    assert_eq!(fa.optimizer, fb.optimizer);
}

/// `.keras` export of a model trained with `--ema`: Keras 3's base optimizer `build` creates
/// `<variable>_average` for every trainable variable before Adam's `m`, `v`, so
/// `optimizer/vars` is `iterations`, `learning_rate`, the 4 averages, then `m`, `v` of each
/// of the 4 variables (2 + 4 + 8 = 14). The averages and weights survive the round trip bit
/// for bit, and training on from the `.keras` file is training on from the model file.
#[test]
fn keras_export_with_ema_keeps_the_averages() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train(&out, &["2", "--ema", "0.9", "--scale", "none"]);
    let mfit = out.join("model.mfit");
    let keras = tmp.path().join("ema.keras");
    microfit()
        .args(["export", "--format", "keras", "--model"])
        .arg(&mfit)
        .arg("--out")
        .arg(&keras)
        .assert()
        .success();
    let f = ModelFile::load(&mfit).unwrap();
    let average = &f
        .optimizer
        .slots
        .iter()
        .find(|s| s.name == "average")
        .expect("the model file holds the averages")
        .tensors;
    let opt = &keras_store(&keras).entries["optimizer"].vars;
    assert_eq!(opt.len(), 14);
    for (i, a) in average.iter().enumerate() {
        assert_eq!(var_bits(&opt[2 + i]), bits(a), "average of variable {i}");
    }
    let m = &f
        .optimizer
        .slots
        .iter()
        .find(|s| s.name == "m")
        .unwrap()
        .tensors;
    assert_eq!(var_bits(&opt[6]), bits(&m[0]), "m of dense/kernel follows");
    let k = microfit::formats::KerasModel::load(&keras).unwrap();
    assert_eq!(k.weights.tensors, f.weights.tensors);
    let st = k.optimizer_state.as_ref().unwrap();
    let back = &st
        .slots
        .iter()
        .find(|s| s.name == "average")
        .unwrap()
        .tensors;
    for (a, b) in back.iter().zip(average) {
        assert_eq!(bits(a), bits(b));
    }
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    continue_from(&mfit, &a, &[]);
    continue_from(&keras, &b, &[]);
    let (fa, fb) = (
        ModelFile::load(&a.join("model.mfit")).unwrap(),
        ModelFile::load(&b.join("model.mfit")).unwrap(),
    );
    assert!(fb.optimizer.slots.iter().any(|s| s.name == "average"));
    assert_eq!(fa.weights.tensors, fb.weights.tensors);
    assert_eq!(fa.optimizer, fb.optimizer);
}

/// Six hand-made samples, three classes `x`, `y`, `z` (indices 0, 1, 2 in sorted order), and
/// the same features with the imbalanced labels `x y z x x x`.
const TINY: &str =
    "a,b,label\n0.5,1.0,x\n-1.0,0.3,y\n0.2,-0.7,z\n1.5,0.1,x\n-0.4,-1.2,y\n0.9,0.8,z\n";
const IMBALANCED: &str =
    "a,b,label\n0.5,1.0,x\n-1.0,0.3,y\n0.2,-0.7,z\n1.5,0.1,x\n-0.4,-1.2,x\n0.9,0.8,x\n";

/// A small trained model (`base/model.mfit`, no scaling) to start from, and the tiny CSVs.
fn tiny_start(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (tiny, imb) = (dir.join("tiny.csv"), dir.join("imb.csv"));
    std::fs::write(&tiny, TINY).unwrap();
    std::fs::write(&imb, IMBALANCED).unwrap();
    let base = dir.join("base");
    microfit()
        .args([
            "train", "--quiet", "--hidden", "4", "--epochs", "3", "--scale", "none",
        ])
        .args(["--validation-split", "0", "--data"])
        .arg(&tiny)
        .arg("--out")
        .arg(&base)
        .assert()
        .success();
    (base.join("model.mfit"), tiny)
}

/// `microfit predict --raw`: the start model's class probabilities, one row per sample.
fn probabilities(model: &std::path::Path, data: &std::path::Path) -> Vec<Vec<f64>> {
    let out = stdout(
        microfit()
            .args(["predict", "--raw", "--model"])
            .arg(model)
            .arg("--data")
            .arg(data),
    );
    out.lines()
        .map(|l| l.split(',').map(|v| v.trim().parse().unwrap()).collect())
        .collect()
}

/// One epoch from `model` on `data` as a single batch (all 6 samples, no validation split):
/// Keras reports the loss of that batch, computed before its update, i.e. at the start
/// model's weights. Returns the history's `data_loss` (the loss without the L2 penalties).
fn first_epoch_data_loss(
    model: &std::path::Path,
    data: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> f64 {
    microfit()
        .args(["train", "--quiet", "--epochs", "1", "--batch-size", "64"])
        .args(["--validation-split", "0", "--model"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .args(extra)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
    f64::from(history(out).get("data_loss").unwrap()[0])
}

/// `--label-smoothing 0.2`: the first epoch's loss is Keras' smoothed categorical
/// cross-entropy at the start model's predictions `p` (from `predict --raw`), the targets
/// `y·(1−F) + F/K` with F = 0.2, K = 3:
/// `mean_i −Σ_c ((1−F)·y_ic + F/K)·ln p_ic` (NumPy: `-(ys*np.log(p)).sum(1).mean()` gives
/// 1.16088 here), not the plain `mean_i −ln p_i,y_i` (1.17386).
#[test]
fn label_smoothing_reports_the_smoothed_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let (start, tiny) = tiny_start(tmp.path());
    let p = probabilities(&start, &tiny);
    let labels = [0usize, 1, 2, 0, 1, 2];
    let (f, k) = (0.2f64, 3.0f64);
    let n = labels.len() as f64;
    let smoothed: f64 = labels
        .iter()
        .zip(&p)
        .map(|(&y, row)| {
            -row.iter()
                .enumerate()
                .map(|(c, &pc)| {
                    let t = if c == y { 1.0 } else { 0.0 };
                    (t * (1.0 - f) + f / k) * pc.ln()
                })
                .sum::<f64>()
        })
        .sum::<f64>()
        / n;
    let plain: f64 = labels.iter().zip(&p).map(|(&y, r)| -r[y].ln()).sum::<f64>() / n;
    let got = first_epoch_data_loss(
        &start,
        &tiny,
        &tmp.path().join("ls"),
        &["--label-smoothing", "0.2"],
    );
    assert!(
        (got - smoothed).abs() < 2e-6,
        "loss {got}, smoothed formula {smoothed}, plain {plain}"
    );
    assert!((smoothed - plain).abs() > 1e-2, "the case tells them apart");
}

/// `--class-weight balanced` on labels `x y z x x x`: scikit-learn's
/// `n_samples / (n_classes · count_c)` = 6/(3·4) = 0.5 for `x`, 6/(3·1) = 2 for `y` and `z`,
/// said in the report and the JSON summary; the first epoch's loss is Keras' weighted loss
/// `Σ_i w_i·(−ln p_i,y_i) / n` at the start model's predictions (balanced weights sum to n, so
/// dividing by Σw would give the same), 1.16296 here against the unweighted 1.14964; and the
/// trained weights differ from an unweighted run's.
#[test]
fn class_weight_balanced_is_reported_and_weighs_the_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let (start, _) = tiny_start(tmp.path());
    let imb = tmp.path().join("imb.csv");
    let p = probabilities(&start, &imb);
    let labels = [0usize, 1, 2, 0, 0, 0];
    let w = [0.5f64, 2.0, 2.0];
    let n = labels.len() as f64;
    let weighted: f64 = labels
        .iter()
        .zip(&p)
        .map(|(&y, r)| -w[y] * r[y].ln())
        .sum::<f64>()
        / n;
    let plain: f64 = labels.iter().zip(&p).map(|(&y, r)| -r[y].ln()).sum::<f64>() / n;
    let cw = tmp.path().join("cw");
    let got = first_epoch_data_loss(&start, &imb, &cw, &["--class-weight", "balanced"]);
    assert!(
        (got - weighted).abs() < 2e-6,
        "loss {got}, weighted formula {weighted}, plain {plain}"
    );
    let unweighted = tmp.path().join("plain");
    let got_plain = first_epoch_data_loss(&start, &imb, &unweighted, &[]);
    assert!((got_plain - plain).abs() < 2e-6, "{got_plain} vs {plain}");
    let (a, b) = (
        ModelFile::load(&cw.join("model.mfit")).unwrap(),
        ModelFile::load(&unweighted.join("model.mfit")).unwrap(),
    );
    assert_ne!(
        a.weights.tensors, b.weights.tensors,
        "the weighting changes training"
    );
    let report = std::fs::read_to_string(cw.join("report.txt")).unwrap();
    assert!(
        report.contains(
            "class_weight: balanced, n_samples / (n_classes · count): x 0.5000, y 2.000, z 2.000"
        ),
        "{report}"
    );
    // The JSON summary: Keras' class_weight dict, by class name.
    let out = stdout(
        microfit()
            .args([
                "train",
                "--json",
                "--epochs",
                "1",
                "--validation-split",
                "0",
                "--model",
            ])
            .arg(&start)
            .arg("--data")
            .arg(&imb)
            .args(["--class-weight", "balanced", "--out"])
            .arg(tmp.path().join("json")),
    );
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(
        summary["class_weight"],
        serde_json::json!({"x": 0.5, "y": 2.0, "z": 2.0})
    );
}

/// With `--reduce-lr-on-plateau`, history.csv has Keras' `learning_rate` column: the rate
/// each epoch trained with (Keras' callback logs it before it may reduce it), starting at
/// `--lr` and halving (`--plateau-factor 0.5`) after each plateau; without it, no column.
#[test]
fn plateau_adds_the_learning_rate_to_the_history() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train(
        &out,
        &[
            "6",
            "--lr",
            "0.5",
            "--reduce-lr-on-plateau",
            "--plateau-patience",
            "1",
            "--plateau-factor",
            "0.5",
        ],
    );
    let csv = std::fs::read_to_string(out.join("history.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "learning_rate")
        .expect("a learning_rate column");
    let lrs: Vec<f32> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect();
    assert_eq!(lrs.len(), 6);
    assert_eq!(lrs[0], 0.5);
    for w in lrs.windows(2) {
        assert!(w[1] == w[0] || w[1] == w[0] * 0.5, "{lrs:?}");
    }
    assert!(lrs[5] < 0.5, "the rate was reduced: {lrs:?}");
    let plain = tmp.path().join("plain");
    train(&plain, &["2"]);
    let csv = std::fs::read_to_string(plain.join("history.csv")).unwrap();
    assert!(!csv.lines().next().unwrap().contains("learning_rate"));
}
