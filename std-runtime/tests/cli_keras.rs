//! Real `.keras` files (Keras 3.15.1) through the `microfit` binary, for every case folder of
//! `$MICROFIT_GOLDEN_DIR/keras_files` (default `<workspace>/../shared/golden/keras_files`;
//! folders holding a `model.keras` are discovered, none is named here) and the Keras-written
//! cases of `tests/fixtures/keras_cases`. Each folder has `data.csv` (the features exactly as
//! fed to Keras, target last), `model.keras`, `model_trained.keras` and Keras' own results in
//! `expected.json`. For each case:
//!
//! * `predict --raw` on `model.keras` equals `predict_initial`, on `model_trained.keras`
//!   `predict_after_fit` (Keras `model.predict`; rtol 1e-5);
//! * `train --model model.keras --no-shuffle --scale none --validation-split 0` with the case's
//!   batch size and epochs reproduces `history_loss` (rtol 1e-4) and `weights_after_fit`
//!   (rtol 1e-4, atol 1e-5);
//! * one more epoch from `model_trained.keras` continues Keras' optimizer: `iterations` goes on
//!   from the file's count, and where Keras wrote that epoch (`fixtures/keras/<case>.continue
//!   .json`) its loss and weights are Keras';
//! * round trip: the model microfit trained, exported with `export --format keras`, holds the
//!   same bits (weights, optimizer slots, iterations), predicts the same text, and exports to
//!   the same bytes again;
//! * `evaluate`, `summary` and `export --target firmware` take the `.keras` file too.
//!
//! `train --model` also takes a `model.mfit`, and a `.keras` model of the firmware's
//! architecture gets the firmware's training workload.
//!
//! And a `.keras` file with a layer microfit does not support fails naming the layer and its
//! class.

mod common;

use std::path::{Path, PathBuf};

use common::{microfit, stdout};
use microfit::export::read_blob;
use microfit::formats::KerasModel;
use microfit::modelfile::ModelFile;
use serde_json::Value;

/// The golden folder: `$MICROFIT_GOLDEN_DIR` or `<workspace>/../shared/golden`.
fn golden_dir() -> PathBuf {
    std::env::var_os("MICROFIT_GOLDEN_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden")),
        PathBuf::from,
    )
}

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// The subfolders of `root` holding a `model.keras`, sorted.
fn cases_in(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| {
            panic!(
                "cannot list {}: {e} (set MICROFIT_GOLDEN_DIR)",
                root.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.keras").is_file())
        .collect();
    v.sort();
    v
}

fn cases() -> Vec<PathBuf> {
    let golden = cases_in(&golden_dir().join("keras_files"));
    assert!(
        !golden.is_empty(),
        "no case folder under the golden keras_files"
    );
    let mut v = golden;
    v.extend(cases_in(&fixtures().join("keras_cases")));
    v
}

fn name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The values of a `{shape, data}` tensor (or a plain list), flattened.
fn floats(v: &Value) -> Vec<f64> {
    let data = v.get("data").unwrap_or(v);
    let mut out = Vec::new();
    fn flat(v: &Value, out: &mut Vec<f64>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
            x => out.push(x.as_f64().expect("a number")),
        }
    }
    flat(data, &mut out);
    out
}

fn fit_setting(exp: &Value, key: &str) -> usize {
    exp["meta"]["fit"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("expected.json: meta.fit.{key}")) as usize
}

/// `got` within `rtol · |want| + atol` of `want`, element by element.
fn assert_close(what: &str, got: &[f64], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} values, expected {}",
        got.len(),
        want.len()
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rtol * w.abs() + atol,
            "{what}[{i}]: {g} vs Keras {w} (rtol {rtol}, atol {atol})"
        );
    }
}

/// `predict --raw` of `model` on `data`: the rows it printed, parsed.
fn predict_raw(model: &Path, data: &Path, out: &Path) -> Vec<Vec<f64>> {
    microfit()
        .args(["predict", "--raw", "--model"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(|v| v.parse::<f64>().expect(v)).collect())
        .collect()
}

/// `train --model <from> --no-shuffle --scale none --validation-split 0` on the case's data.
fn train_from(from: &Path, data: &Path, batch: usize, epochs: usize, out: &Path) {
    microfit()
        .args(["train", "--quiet", "--no-shuffle", "--scale", "none"])
        .args(["--validation-split", "0", "--model"])
        .arg(from)
        .arg("--data")
        .arg(data)
        .args([
            "--batch-size",
            &batch.to_string(),
            "--epochs",
            &epochs.to_string(),
        ])
        .arg("--out")
        .arg(out)
        .assert()
        .success();
}

/// `microfit export <flags> --model <model> --out <out>`, which must succeed.
fn export(flags: &[&str], model: &Path, out: &Path) -> String {
    stdout(
        microfit()
            .arg("export")
            .args(flags)
            .arg("--model")
            .arg(model)
            .arg("--out")
            .arg(out),
    )
}

/// The weights of a run's `model.mfit` by Keras variable name (`hidden/kernel`), the names
/// taken from the case's `model.keras` (same order).
fn named_weights(run: &Path, keras: &KerasModel) -> Vec<(String, Vec<f32>)> {
    let f = ModelFile::load(&run.join("model.mfit")).unwrap();
    assert_eq!(f.weights.shapes, keras.weights.shapes);
    keras
        .weights
        .names
        .iter()
        .cloned()
        .zip(f.weights.tensors)
        .collect()
}

fn check_weights(what: &str, got: &[(String, Vec<f32>)], want: &Value) {
    let want = want.as_object().expect("weights object");
    for (name, t) in want {
        let g = &got
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{what}: no variable {name}"))
            .1;
        let g: Vec<f64> = g.iter().map(|&v| f64::from(v)).collect();
        assert_close(&format!("{what}: {name}"), &g, &floats(t), 1e-4, 1e-5);
    }
}

#[test]
fn keras_files_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let all = cases();
    for dir in &all {
        let case = name(dir);
        let work = tmp.path().join(&case);
        std::fs::create_dir_all(&work).unwrap();
        let exp = json(&dir.join("expected.json"));
        let data = dir.join("data.csv");
        let rows = exp["meta"]["rows_in_predictions"]
            .as_u64()
            .unwrap_or(u64::MAX) as usize;
        let (batch, epochs) = (fit_setting(&exp, "batch_size"), fit_setting(&exp, "epochs"));

        // Keras model.predict, before and after fit.
        for (file, key) in [
            ("model.keras", "predict_initial"),
            ("model_trained.keras", "predict_after_fit"),
        ] {
            let got = predict_raw(&dir.join(file), &data, &work.join(format!("{key}.csv")));
            let n = got.len().min(rows);
            let got: Vec<f64> = got[..n].concat();
            assert_close(
                &format!("{case}: {key}"),
                &got,
                &floats(&exp[key]),
                1e-5,
                1e-7,
            );
        }

        // fit(shuffle=False) from model.keras.
        let k0 = KerasModel::load(&dir.join("model.keras")).unwrap();
        let run = work.join("fit");
        train_from(&dir.join("model.keras"), &data, batch, epochs, &run);
        let h = common::history(&run);
        let loss: Vec<f64> = h
            .get("loss")
            .unwrap()
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        assert_close(
            &format!("{case}: history_loss"),
            &loss,
            &floats(&exp["history_loss"]),
            1e-4,
            0.0,
        );
        check_weights(
            &format!("{case}: weights_after_fit"),
            &named_weights(&run, &k0),
            &exp["weights_after_fit"],
        );

        // One more epoch from model_trained.keras continues Keras' optimizer.
        let k1 = KerasModel::load(&dir.join("model_trained.keras")).unwrap();
        let it1 = k1
            .optimizer_state
            .as_ref()
            .expect("optimizer state")
            .iterations;
        let n_rows = std::fs::read_to_string(&data).unwrap().lines().count() - 1;
        let steps = n_rows.div_ceil(batch) as u32;
        assert_eq!(it1, epochs as u32 * steps, "{case}: Keras' iterations");
        let more = work.join("more");
        train_from(&dir.join("model_trained.keras"), &data, batch, 1, &more);
        let f = ModelFile::load(&more.join("model.mfit")).unwrap();
        assert_eq!(
            f.optimizer.iterations,
            it1 + steps,
            "{case}: iterations go on"
        );
        let cont = fixtures()
            .join("keras")
            .join(format!("{case}.continue.json"));
        if cont.is_file() {
            let c = json(&cont);
            assert_eq!(u64::from(it1), c["iterations_before"].as_u64().unwrap());
            let l = f64::from(common::history(&more).get("loss").unwrap()[0]);
            assert_close(
                &format!("{case}: continued loss"),
                &[l],
                &floats(&c["history_loss"]),
                1e-4,
                0.0,
            );
            check_weights(
                &format!("{case}: continued weights"),
                &named_weights(&more, &k1),
                &c["weights_after"],
            );
        }

        // Round trip: microfit's model → .keras → the same bits, predictions and bytes.
        let rt = work.join("rt.keras");
        export(&["--format", "keras"], &run.join("model.mfit"), &rt);
        let mfit = ModelFile::load(&run.join("model.mfit")).unwrap();
        let back = KerasModel::load(&rt).unwrap();
        let bits = |t: &[Vec<f32>]| -> Vec<Vec<u32>> {
            t.iter()
                .map(|x| x.iter().map(|v| v.to_bits()).collect())
                .collect()
        };
        assert_eq!(
            bits(&back.weights.tensors),
            bits(&mfit.weights.tensors),
            "{case}"
        );
        let st = back.optimizer_state.expect("state in the exported file");
        assert_eq!(st.iterations, mfit.optimizer.iterations, "{case}");
        for s in &mfit.optimizer.slots {
            let b = st.slots.iter().find(|b| b.name == s.name).expect("slot");
            assert_eq!(
                bits(&b.tensors),
                bits(&s.tensors),
                "{case}: slot {}",
                s.name
            );
        }
        assert_eq!(back.loss, k0.loss, "{case}: loss");
        let p_mfit = predict_raw(&run.join("model.mfit"), &data, &work.join("p_mfit.csv"));
        let p_keras = predict_raw(&rt, &data, &work.join("p_keras.csv"));
        assert_eq!(
            p_mfit, p_keras,
            "{case}: predictions of model.mfit and its .keras"
        );
        let rt2 = work.join("rt2.keras");
        export(&["--format", "keras"], &rt, &rt2);
        assert!(
            std::fs::read(&rt).unwrap() == std::fs::read(&rt2).unwrap(),
            "{case}: .keras → .keras is not the same bytes"
        );

        // The other commands take the .keras file as any model.
        let trained = dir.join("model_trained.keras");
        let ev = stdout(
            microfit()
                .args(["evaluate", "--json", "--model"])
                .arg(&trained)
                .arg("--data")
                .arg(&data),
        );
        let ev: Value = serde_json::from_str(&ev).unwrap();
        assert_eq!(ev["samples"].as_u64().unwrap() as usize, n_rows, "{case}");
        assert!(ev["loss"].as_f64().unwrap().is_finite(), "{case}");
        let summary = stdout(microfit().args(["summary", "--model"]).arg(&trained));
        let params: usize = k1.weights.tensors.iter().map(Vec::len).sum();
        assert!(
            summary.contains(&format!("Total params: {params}")),
            "{case}: {summary}"
        );
        let fw = work.join("fw");
        export(&["--target", "firmware"], &trained, &fw);
        let blob = read_blob(&std::fs::read(fw.join("model.bin")).unwrap()).unwrap();
        let in_blob: Vec<Vec<u32>> = bits(&blob.tensors);
        assert_eq!(
            in_blob,
            bits(&k1.weights.tensors),
            "{case}: the blob holds Keras' weights"
        );
        println!(
            "{case}: predict, fit ({epochs} epochs), continue, round trip, evaluate, summary, export: ok"
        );
    }
    println!("{} .keras cases through the CLI", all.len());
}

/// A `.keras` model of the firmware's architecture (Dense relu → Dense softmax, Adam) goes to the
/// board like any other: `export --target firmware --with-data` writes the workload the firmware
/// trains, holding the `.keras` file's weights bit for bit and Adam's settings.
#[test]
fn a_keras_model_goes_to_the_firmware() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    common::train_quiet(&run, &["--epochs", "2", "--scale", "none", "--hidden", "8"]);
    let k = tmp.path().join("m.keras");
    export(&["--format", "keras"], &run.join("model.mfit"), &k);
    let fw = tmp.path().join("fw");
    assert!(
        export(&["--target", "firmware", "--with-data", "iris"], &k, &fw).contains("workload.json")
    );
    let w = json(&fw.join("workload.json"));
    let keras = KerasModel::load(&k).unwrap();
    // The workload's numbers are the f32 widened: the same f32 bits back.
    let in_workload: Vec<u32> = floats(&w["initial_weights"]["dense_0/kernel"])
        .iter()
        .map(|&v| (v as f32).to_bits())
        .collect();
    let kernel: Vec<u32> = keras.weights.tensors[0]
        .iter()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(in_workload, kernel);
    assert_eq!(w["training"]["optimizer"], "adam");
    assert_eq!(
        w["training"]["learning_rate"].as_f64(),
        Some(f64::from(0.01f32))
    );
}

/// `train --model` takes a `model.mfit` too: 2 epochs, then 1 more from that model file, end
/// with the bits of 3 epochs in one run (the weights and the optimizer's state go on).
#[test]
fn train_from_a_model_file_continues_its_optimizer() {
    let tmp = tempfile::tempdir().unwrap();
    let flags = [
        "--no-shuffle",
        "--scale",
        "none",
        "--validation-split",
        "0",
        "--batch-size",
        "16",
        "--optimizer",
        "adam",
    ];
    let run = |out: &Path, epochs: &str, from: Option<&Path>| {
        let mut c = microfit();
        c.args(["train", "--quiet", "--epochs", epochs])
            .args(flags)
            .arg("--out")
            .arg(out);
        if let Some(m) = from {
            c.arg("--model").arg(m);
        }
        c.assert().success();
        ModelFile::load(&out.join("model.mfit")).unwrap()
    };
    let straight = run(&tmp.path().join("three"), "3", None);
    let two = run(&tmp.path().join("two"), "2", None);
    let more = run(
        &tmp.path().join("more"),
        "1",
        Some(&tmp.path().join("two").join("model.mfit")),
    );
    let bits = |f: &ModelFile| -> Vec<Vec<u32>> {
        f.weights
            .tensors
            .iter()
            .map(|t| t.iter().map(|v| v.to_bits()).collect())
            .collect()
    };
    assert_ne!(bits(&two), bits(&straight));
    assert_eq!(bits(&more), bits(&straight));
    assert_eq!(more.optimizer.iterations, straight.optimizer.iterations);
}

/// A layer microfit does not have: every command that reads the model says which, and its
/// class, and nothing else is written.
#[test]
fn an_unsupported_layer_is_named() {
    let bn = fixtures().join("keras").join("batchnorm.keras");
    let z = zip::ZipArchive::new(std::fs::File::open(&bn).unwrap());
    let mut z = z.unwrap();
    let config: Value = serde_json::from_reader(z.by_name("config.json").unwrap()).unwrap();
    let layer = config["config"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["class_name"] == "BatchNormalization")
        .expect("a BatchNormalization layer");
    let want = format!(
        "{}: BatchNormalization is not supported",
        layer["config"]["name"].as_str().unwrap()
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    for args in [
        vec!["predict", "--raw", "--data", "iris", "--out", o],
        vec!["evaluate", "--data", "iris"],
        vec!["summary"],
        vec!["export", "--format", "keras", "--out", o],
        vec!["export", "--target", "firmware", "--out", o],
        vec!["train", "--data", "iris", "--epochs", "1", "--out", o],
    ] {
        microfit()
            .args(&args)
            .arg("--model")
            .arg(&bn)
            .assert()
            .code(1)
            .stderr(predicates::str::contains(want.as_str()));
        assert!(!out.exists(), "{args:?} wrote {o}");
    }
}
