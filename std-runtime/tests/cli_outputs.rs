//! What the CLI writes: plots (valid, sized, not blank PNG; well-formed SVG), model files
//! (corruption gives a clear error), the firmware export (bit-exact round trip), sweeps,
//! evaluate/predict, and the help text.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use microfit::export::{BlobKind, read_blob};
use microfit::modelfile::ModelFile;
use predicates::prelude::*;

fn microfit() -> Command {
    Command::cargo_bin("microfit").unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Trains iris for a few epochs into `dir/name`.
fn trained(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let epochs: &[&str] = if extra.contains(&"--epochs") {
        &[]
    } else {
        &["--epochs", "4"]
    };
    microfit()
        .args(["train", "--quiet", "--out"])
        .arg(&out)
        .args(epochs)
        .args(extra)
        .assert()
        .success();
    out
}

/// Decodes a PNG: (width, height, number of distinct pixel values).
fn png_info(path: &Path) -> (u32, u32, usize) {
    let f = std::fs::File::open(path).unwrap();
    let mut reader = png::Decoder::new(f).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let distinct: std::collections::HashSet<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    (info.width, info.height, distinct.len())
}

/// A small XML well-formedness check: tags balance and the root is `<svg width=.. height=..>`.
fn svg_size(path: &Path) -> (u32, u32) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut stack: Vec<String> = Vec::new();
    let mut root: Option<String> = None;
    let mut rest = text.as_str();
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        if rest.starts_with("<?") || rest.starts_with("<!--") {
            let end = if rest.starts_with("<?") { "?>" } else { "-->" };
            let j = rest.find(end).expect("unterminated declaration or comment");
            rest = &rest[j + end.len()..];
            continue;
        }
        let j = rest.find('>').expect("unterminated tag");
        let tag = &rest[1..j];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "{}: mismatched </{name}>",
                path.display()
            );
        } else {
            let name = tag
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_string();
            if root.is_none() {
                root = Some(tag.to_string());
            }
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        rest = &rest[j + 1..];
    }
    assert!(stack.is_empty(), "{}: unclosed {stack:?}", path.display());
    let root = root.unwrap();
    assert!(root.starts_with("svg "), "root element {root}");
    let attr = |name: &str| -> u32 {
        let k = root.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        root[k..].split('"').next().unwrap().parse().unwrap()
    };
    (attr("width"), attr("height"))
}

#[test]
fn plots_are_valid_sized_and_not_blank() {
    let tmp = tempfile::tempdir().unwrap();
    let out = trained(tmp.path(), "plots", &["--hidden", "8,4"]);
    for (stem, w, h) in [
        ("loss", 900, 560),
        ("accuracy", 900, 560),
        ("weights", 900, 60 + 2 * 320),
    ] {
        let (pw, ph, colors) = png_info(&out.join(format!("{stem}.png")));
        assert_eq!((pw, ph), (w, h), "{stem}.png size");
        assert!(colors > 10, "{stem}.png has only {colors} distinct colors");
        assert_eq!(
            svg_size(&out.join(format!("{stem}.svg"))),
            (w, h),
            "{stem}.svg size"
        );
    }
    // A regression run plots R² instead of the accuracy (the MSE is the loss plot).
    let csv = tmp.path().join("reg.csv");
    let mut text = String::from("x1,x2,y\n");
    for i in 0..40 {
        let x = f64::from(i) / 10.0;
        text.push_str(&format!("{x},{},{}\n", x * x, 3.0 * x + 0.5));
    }
    std::fs::write(&csv, text).unwrap();
    let reg = tmp.path().join("reg");
    microfit()
        .args(["train", "--quiet", "--epochs", "3", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&reg)
        .assert()
        .success();
    let (_, _, colors) = png_info(&reg.join("r2.png"));
    assert!(colors > 10);
    assert!(!reg.join("mse.png").exists());
    let h = std::fs::read_to_string(reg.join("history.json")).unwrap();
    assert!(
        h.contains("\"mse\"") && h.contains("\"val_mae\"") && !h.contains("accuracy"),
        "{h}"
    );
}

#[test]
fn a_corrupt_model_file_gives_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = trained(tmp.path(), "m", &[]);
    let good = std::fs::read(out.join("model.mfit")).unwrap();
    let bad = tmp.path().join("bad.mfit");
    let run = |bytes: &[u8], want: &str| {
        std::fs::write(&bad, bytes).unwrap();
        microfit()
            .args(["evaluate", "--model"])
            .arg(&bad)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("bad.mfit: "))
            .stderr(predicate::str::contains(want))
            .stderr(predicate::str::contains("panicked").not());
    };
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    run(&flipped, "CRC32 mismatch");
    run(&good[..good.len() - 7], "the file is truncated or corrupt");
    let mut magic = good.clone();
    magic[0] = b'X';
    run(&magic, "not a microfit model file");
    run(b"", "not a microfit model file");
    let mut version = good.clone();
    version[4] = 9;
    run(&version, "format version 9 is not supported");
    // The good file still evaluates.
    microfit()
        .args(["evaluate", "--model"])
        .arg(out.join("model.mfit"))
        .args(["--data", "iris"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Confusion matrix"));
}

#[test]
fn firmware_export_round_trips_bit_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let out = trained(tmp.path(), "m", &["--hidden", "6,5"]);
    let model = ModelFile::load(&out.join("model.mfit")).unwrap();
    let fw = tmp.path().join("fw");
    microfit()
        .args([
            "export",
            "--target",
            "firmware",
            "--with-data",
            "iris",
            "--model",
        ])
        .arg(out.join("model.mfit"))
        .arg("--out")
        .arg(&fw)
        .assert()
        .success()
        .stdout(predicate::str::contains("CRC32 checked"))
        .stdout(predicate::str::contains("MICROFIT_FW_WORKLOAD="));
    // Three Dense layers: the firmware trains any model, so a workload file for it too.
    let w: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fw.join("workload.json")).unwrap()).unwrap();
    let units: Vec<u64> = w["model"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["units"].as_u64().unwrap())
        .collect();
    assert_eq!(units, [6, 5, 3]);
    assert_eq!(
        w["initial_weights"]["dense_2/kernel"]["shape"],
        serde_json::json!([5, 3])
    );
    let blob = std::fs::read(fw.join("model.bin")).unwrap();
    let b = read_blob(&blob).unwrap();
    assert_eq!(b.layers.len(), 3);
    assert_eq!(b.input_shape, [4]);
    assert_eq!((b.input_len, b.output_len, b.n_classes), (4, 3, 3));
    assert_eq!(b.tensors.len(), model.weights.tensors.len());
    for (x, y) in b.tensors.iter().zip(&model.weights.tensors) {
        assert_eq!(bits(x), bits(y));
    }
    for (l, shapes) in b.layers.iter().zip([
        [[4u32, 6].to_vec(), vec![6]],
        [vec![6, 5], vec![5]],
        [vec![5, 3], vec![3]],
    ]) {
        assert_eq!(l.tensor_shapes, shapes);
    }
    assert_eq!(bits(&b.scaler_offset), bits(&model.scaler.offset));
    assert_eq!(bits(&b.scaler_scale), bits(&model.scaler.scale));
    // Every byte matters: a flip anywhere is caught, and a cut blob too.
    for i in (0..blob.len()).step_by(7) {
        let mut c = blob.clone();
        c[i] ^= 0x01;
        assert!(read_blob(&c).is_err(), "flip at byte {i}");
    }
    assert!(
        read_blob(&blob[..blob.len() - 1])
            .unwrap_err()
            .to_string()
            .contains("CRC32")
    );
    // model.rs holds the same bits as literals, and the dataset.
    let src = std::fs::read_to_string(fw.join("model.rs")).unwrap();
    let values = literal_floats(&src, "pub const DENSE_1_KERNEL: [[f32; 5]; 6] = [");
    assert_eq!(
        bits(&values),
        bits(model.weights.get("dense_1/kernel").unwrap())
    );
    assert!(src.contains("pub const X: [[f32; 4]; 150] = ["));
    assert!(src.contains("pub const Y: [u32; 150] = [0, 0,"));
    assert!(src.contains(
        "pub const CLASS_NAMES: [&str; 3] = [\"setosa\", \"versicolor\", \"virginica\"];"
    ));
}

/// The floats of the `pub const NAME: … = [...];` literal in a generated `model.rs`.
fn literal_floats(src: &str, decl: &str) -> Vec<f32> {
    let body = &src[src.find(decl).unwrap()..];
    let body = &body[body.find("= [").unwrap() + 3..];
    let body = &body[..body.find("];").unwrap()];
    body.split(|c: char| c == ',' || c == '[' || c == ']' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// `export --with-data` also writes `workload.json` for on-device training (here Dense relu →
/// Dense softmax, Adam, kernel L2 on both kernels): the model's weights bit for bit, the data
/// scaled with the model's scaler, its layers, regularizers and hyperparameters. (The
/// firmware training from it is tested under QEMU in `tests/tests/host_vs_firmware.rs`.)
#[test]
fn firmware_export_writes_a_workload_the_board_can_train() {
    let tmp = tempfile::tempdir().unwrap();
    let out = trained(tmp.path(), "m", &["--hidden", "8", "--l2", "0.002"]);
    let model = ModelFile::load(&out.join("model.mfit")).unwrap();
    let fw = tmp.path().join("fw");
    microfit()
        .args([
            "export",
            "--with-data",
            "iris",
            "--fw-epochs",
            "7",
            "--model",
        ])
        .arg(out.join("model.mfit"))
        .arg("--out")
        .arg(&fw)
        .assert()
        .success()
        .stdout(predicate::str::contains("MICROFIT_FW_WORKLOAD="));
    let w: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fw.join("workload.json")).unwrap()).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            // serde_json's default float parsing may be 1 ULP off in f64, never in the f32
            // the value was written from (as the firmware's build script reads it).
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    for (key, name) in [
        ("dense_0/kernel", "dense/kernel"),
        ("dense_0/bias", "dense/bias"),
        ("dense_1/kernel", "dense_1/kernel"),
        ("dense_1/bias", "dense_1/bias"),
    ] {
        assert_eq!(
            bits(&floats(&w["initial_weights"][key])),
            bits(model.weights.get(name).unwrap()),
            "{key}"
        );
    }
    assert_eq!(
        w["initial_weights"]["dense_0/kernel"]["shape"],
        serde_json::json!([4, 8])
    );
    for layer in 0..2 {
        let l2 = &w["model"][layer]["kernel_regularizer"]["l2"];
        assert_eq!(l2.as_f64().unwrap() as f32, 0.002, "layer {layer}");
    }
    assert_eq!(w["training"]["epochs"], 7);
    assert_eq!(w["training"]["optimizer"], "adam");
    assert_eq!(w["classes"], 3);
    // The inputs: model.rs's raw X through the stored scaler, (x - offset) * scale.
    let src = std::fs::read_to_string(fw.join("model.rs")).unwrap();
    let raw = literal_floats(&src, "pub const X: [[f32; 4]; 150]");
    let want: Vec<f32> = raw
        .chunks(4)
        .flat_map(|r| {
            r.iter()
                .zip(&model.scaler.offset)
                .zip(&model.scaler.scale)
                .map(|((&x, &o), &s)| (x - o) * s)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(bits(&floats(&w["x"])), bits(&want));
    let labels: Vec<u64> = w["labels"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!((labels.len(), labels[0], labels[149]), (150, 0, 2));
}

#[test]
fn sweep_writes_its_files_and_matches_single_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    microfit()
        .args([
            "sweep",
            "--data",
            "iris",
            "--l2",
            "0,1e-3,0.1",
            "--epochs",
            "5",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "best λ (kernel L2) by best-epoch validation data loss:",
        ));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        ["0", "0.001", "0.1"]
    );
    let (w, h, colors) = png_info(&out.join("sweep.png"));
    assert_eq!((w, h), (1450, 560));
    assert!(colors > 10);
    assert_eq!(svg_size(&out.join("sweep.svg")), (1450, 560));
    // Each sweep run is the same as a plain `train` with that strength (deterministic, whatever
    // the thread scheduling).
    let single = trained(tmp.path(), "single", &["--l2", "0.001", "--epochs", "5"]);
    let hist = std::fs::read_to_string(single.join("history.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&hist).unwrap();
    let last = |k: &str| v[k].as_array().unwrap().last().unwrap().as_f64().unwrap() as f32;
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let row = &rows[1];
    assert_eq!(
        row[col("val_loss")].parse::<f32>().unwrap(),
        last("val_loss")
    );
    assert_eq!(
        row[col("val_accuracy")].parse::<f32>().unwrap(),
        last("val_accuracy")
    );
    // Sweeping needs a validation set.
    microfit()
        .args(["sweep", "--validation-split", "0", "--epochs", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--validation-split > 0"));
}

#[test]
fn evaluate_and_predict_use_the_stored_scaler_and_class_names() {
    let tmp = tempfile::tempdir().unwrap();
    let out = trained(tmp.path(), "m", &["--epochs", "40"]);
    let model = out.join("model.mfit");
    let json = microfit()
        .args(["evaluate", "--json", "--data", "iris", "--model"])
        .arg(&model)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["samples"], 150);
    assert!(v["accuracy"].as_f64().unwrap() > 0.8);
    let confusion: u64 = v["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(confusion, 150);
    // Raw (unscaled) iris rows without the label: predict scales them with the stored scaler.
    let feats = tmp.path().join("rows.csv");
    std::fs::write(&feats, "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n").unwrap();
    let preds = tmp.path().join("preds.csv");
    microfit()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&feats)
        .arg("--out")
        .arg(&preds)
        .assert()
        .success()
        .stderr(predicate::str::contains("wrote 2 predictions"));
    let p = std::fs::read_to_string(&preds).unwrap();
    let lines: Vec<&str> = p.lines().collect();
    assert_eq!(lines[0], "row,predicted,p_setosa,p_versicolor,p_virginica");
    assert!(lines[1].starts_with("0,setosa,"), "{p}");
    assert!(lines[2].starts_with("1,virginica,"), "{p}");
    let probs: f32 = lines[1]
        .split(',')
        .skip(2)
        .map(|x| x.parse::<f32>().unwrap())
        .sum();
    assert!((probs - 1.0).abs() < 1e-5);
    // Data with the wrong number of columns is refused with the expected count.
    std::fs::write(&feats, "1,2\n3,4\n").unwrap();
    microfit()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&feats)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the file has 2 columns and no header; matched by position, the model needs its 4 \
             feature columns",
        ));
}

#[test]
fn help_reads_well() {
    microfit()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"))
        .stdout(predicate::str::contains("Exit codes:"))
        .stdout(predicate::str::contains("sweep"));
    microfit()
        .args(["train", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--early-stopping <PATIENCE>"))
        .stdout(predicate::str::contains("--validation-split <F>"))
        .stdout(predicate::str::contains("--keras-config <FILE.json>"));
    microfit()
        .args(["train", "--l2", "-1e-3"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("must be >= 0"));
}

#[test]
fn a_conv_spec_trains_writes_its_spec_back_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("cnn.toml");
    std::fs::write(
        &spec,
        "epochs = 1\ninput_shape = [8, 8, 1]\n[data]\nsource = \"digits\"\n\
         [[layers]]\ntype = \"conv2d\"\nfilters = 4\nkernel_size = 3\npadding = \"same\"\nactivation = \"relu\"\n\
         kernel_regularizer = { l2 = 1e-3 }\n\
         [[layers]]\ntype = \"max_pooling\"\npool_size = [2, 2]\n\
         [[layers]]\ntype = \"flatten\"\n\
         [[layers]]\ntype = \"dropout\"\nrate = 0.1\n\
         [[layers]]\ntype = \"dense\"\nunits = 10\nactivation = \"softmax\"\n",
    )
    .unwrap();
    let out = tmp.path().join("cnn");
    microfit()
        .args(["train", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("conv2d/kernel  (3, 3, 1, 4)"))
        .stdout(predicate::str::contains("max_pooling2d"));
    let written = std::fs::read_to_string(out.join("spec.toml")).unwrap();
    assert!(
        written.contains("type = \"conv2d\"\nfilters = 4\nkernel_size = [3]\npadding = \"same\""),
        "{written}"
    );
    let h = std::fs::read_to_string(out.join("history.json")).unwrap();
    assert!(h.contains("\"conv2d/kernel_penalty\""), "{h}");
    // A field a layer does not use is refused, naming it.
    std::fs::write(&spec, "[[layers]]\ntype = \"flatten\"\nunits = 3\n").unwrap();
    microfit()
        .args(["train", "--spec"])
        .arg(&spec)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "layers[0].units: not used by a flatten layer",
        ));
    let fw = tmp.path().join("fw");
    microfit()
        .args(["export", "--model"])
        .arg(out.join("model.mfit"))
        .arg("--out")
        .arg(&fw)
        .assert()
        .success();
    let b = read_blob(&std::fs::read(fw.join("model.bin")).unwrap()).unwrap();
    let kinds: Vec<BlobKind> = b.layers.iter().map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        [
            BlobKind::Conv,
            BlobKind::MaxPooling,
            BlobKind::Flatten,
            BlobKind::Dropout,
            BlobKind::Dense
        ]
    );
    let conv = &b.layers[0];
    assert_eq!(
        (conv.in_channels, conv.out_channels, conv.output_len),
        (1, 4, 8 * 8 * 4)
    );
    assert_eq!(conv.axes.len(), 2);
    assert_eq!(
        (
            conv.axes[0].kernel,
            conv.axes[0].pad_before,
            conv.axes[0].pad_after
        ),
        (3, 1, 1)
    );
    assert_eq!(b.layers[1].output_len, 4 * 4 * 4);
    let m = ModelFile::load(&out.join("model.mfit")).unwrap();
    for (x, y) in b.tensors.iter().zip(&m.weights.tensors) {
        assert_eq!(bits(x), bits(y));
    }
    let src = std::fs::read_to_string(fw.join("model.rs")).unwrap();
    assert!(
        src.contains("pub const CONV2D_KERNEL: [[[[f32; 4]; 1]; 3]; 3] = ["),
        "conv kernel in Keras layout"
    );
}
