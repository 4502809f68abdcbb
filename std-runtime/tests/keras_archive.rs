//! `.keras` files that must be refused, and how: each error names the file, the place in it
//! and what is wrong (`microfit::formats`). The files Keras wrote are read in
//! `tests/tests/keras_files.rs`; here a valid file written by microfit is taken apart and one
//! thing in it is broken at a time.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

use microfit::core::activation::Activation;
use microfit::core::loss::Loss;
use microfit::core::optim::Optimizer;
use microfit::core::train::{Samples, Targets, Trainer};
use microfit::formats::keras_weights::{StoredVar, VarValues, WeightsStore};
use microfit::formats::{FormatError, KerasModel};
use microfit::model::{LayerSpec, ModelSpec};
use microfit::spec::OptimizerConfig;
use serde_json::Value;

/// A 4 → 5 relu → 3 softmax model trained 2 steps with Adam, as a `.keras` file's bytes.
fn trained_file() -> Vec<u8> {
    let spec = ModelSpec {
        input_shape: vec![4],
        layers: vec![
            LayerSpec::dense(5, Activation::Relu),
            LayerSpec::dense(3, Activation::Softmax),
        ],
    };
    let model = spec.build(3).unwrap();
    let adam = OptimizerConfig::adam(0.01);
    let opt = adam.build(&model.params).unwrap();
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let x = [0.1f32, 0.2, 0.3, 0.4, -0.5, 0.6, -0.7, 0.8];
    let y = [0u32, 2];
    let data = Samples::new(&x, 4, Targets::Classes(&y)).unwrap();
    let mut tr = Trainer::new(model, opt, loss);
    tr.fit_epoch(&data, 1, None).unwrap();
    assert_eq!(tr.optimizer.iterations(), 2);
    KerasModel::from_trained(&tr.model, Some((&adam, &tr.optimizer)), Some(loss))
        .to_bytes()
        .unwrap()
}

fn members(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        out.insert(f.name().unwrap().into_owned(), v);
    }
    out
}

fn zip_of(m: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in m {
        z.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap().into_inner()
}

/// The file with its weights store changed by `f`.
fn with_store(f: impl FnOnce(&mut WeightsStore)) -> Vec<u8> {
    let mut m = members(&trained_file());
    let mut store = WeightsStore::from_bytes(&m["model.weights.h5"], "w").unwrap();
    f(&mut store);
    m.insert("model.weights.h5".into(), store.to_bytes().unwrap());
    zip_of(&m)
}

/// The file with its config.json changed by `f`.
fn with_config(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut m = members(&trained_file());
    let mut v: Value = serde_json::from_slice(&m["config.json"]).unwrap();
    f(&mut v);
    m.insert("config.json".into(), v.to_string().into_bytes());
    zip_of(&m)
}

fn err(bytes: &[u8]) -> String {
    KerasModel::from_bytes(bytes, "m.keras")
        .unwrap_err()
        .to_string()
}

#[test]
fn a_valid_file_reads_back_and_is_written_the_same_way() {
    let bytes = trained_file();
    let k = KerasModel::from_bytes(&bytes, "m.keras").unwrap();
    assert_eq!(k.keras_version.as_deref(), Some("3.15.1"));
    assert_eq!(k.layer_names, ["dense", "dense_1"]);
    assert_eq!(k.optimizer_state.as_ref().unwrap().iterations, 2);
    assert_eq!(k.to_bytes().unwrap(), bytes);
    let names: Vec<String> = members(&bytes).into_keys().collect();
    assert_eq!(names, ["config.json", "metadata.json", "model.weights.h5"]);
    // Keras' layout of the store.
    let store = WeightsStore::from_bytes(&members(&bytes)["model.weights.h5"], "w").unwrap();
    let paths: Vec<&str> = store.entries.keys().map(String::as_str).collect();
    assert_eq!(paths, ["", "layers/dense", "layers/dense_1", "optimizer"]);
    let opt = &store.entries["optimizer"];
    assert_eq!(opt.name.as_deref(), Some("adam"));
    // iterations, learning rate, then (m, v) for each of the 4 variables.
    assert_eq!(opt.vars.len(), 2 + 2 * 4);
    assert_eq!(opt.vars[0], StoredVar::int_scalar(2));
    assert_eq!(opt.vars[1], StoredVar::f32(vec![], vec![0.01]));
    assert_eq!(opt.vars[2].shape, [4, 5]);
    assert_eq!(opt.vars[4].shape, [5]);
    // v is a running mean of squares.
    match &opt.vars[3].values {
        VarValues::F32(v) => assert!(v.iter().all(|&x| x >= 0.0) && v.iter().any(|&x| x > 0.0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn not_a_zip_or_a_missing_member_is_named() {
    assert!(err(b"PK\x03\x04 nope").starts_with("m.keras: zip: not a .keras (zip) file"));
    let mut m = members(&trained_file());
    m.remove("config.json");
    assert_eq!(
        err(&zip_of(&m)),
        "m.keras: config.json: missing from the archive"
    );
    let mut m = members(&trained_file());
    m.remove("model.weights.h5");
    assert_eq!(
        err(&zip_of(&m)),
        "m.keras: model.weights.h5: missing from the archive"
    );
    let mut m = members(&trained_file());
    m.insert("config.json".into(), b"{".to_vec());
    assert!(err(&zip_of(&m)).starts_with("m.keras: config.json: invalid JSON"));
    let mut m = members(&trained_file());
    m.insert(
        "model.weights.h5".into(),
        b"\x89HDF\r\n\x1a\nbroken".to_vec(),
    );
    assert!(
        err(&zip_of(&m)).starts_with("m.keras: model.weights.h5: /: not a readable HDF5 file"),
        "{}",
        err(&zip_of(&m))
    );
}

#[test]
fn unsupported_layers_and_options_name_the_layer_and_class() {
    let e = err(&with_config(|v| {
        v["config"]["layers"][1]["class_name"] = "LayerNormalization".into();
        v["config"]["layers"][1]["config"]["name"] = "ln".into();
    }));
    assert!(
        e.starts_with(
            "m.keras: config.json: ln: LayerNormalization is not supported (config.layers[1]"
        ),
        "{e}"
    );
    let e = err(&with_config(|v| {
        v["config"]["layers"][2]["config"]["name"] = "out".into();
        v["config"]["layers"][2]["config"]["kernel_constraint"] =
            serde_json::json!({"class_name": "RadialConstraint", "config": {}});
    }));
    assert_eq!(
        e,
        "m.keras: config.json: layer `out` (Dense): config.layers[2].config.kernel_constraint.class_name: \
         unknown constraint \"RadialConstraint\"; expected max_norm, min_max_norm, non_neg, unit_norm"
    );
}

#[test]
fn an_unsupported_optimizer_or_loss_leaves_the_model_readable_but_not_trainable() {
    let bytes = with_config(|v| {
        v["compile_config"]["optimizer"]["config"]["amsgrad"] = true.into();
    });
    let k = KerasModel::from_bytes(&bytes, "m.keras").unwrap();
    let expected =
        "m.keras: config.json: compile_config.optimizer.config.amsgrad: `amsgrad` is not supported";
    assert_eq!(k.compile_error.as_ref().unwrap().to_string(), expected);
    assert_eq!(
        (k.loss, k.optimizer.as_ref(), k.optimizer_state.as_ref()),
        (None, None, None)
    );
    let mut m = k.build(0).unwrap();
    assert_eq!(m.predict(&[0.1, 0.2, 0.3, 0.4]).unwrap().len(), 3);
    assert_eq!(k.optimizer(&m).unwrap_err().to_string(), expected);
    let k = KerasModel::from_bytes(
        &with_config(|v| v["compile_config"]["loss"] = "huber".into()),
        "m.keras",
    )
    .unwrap();
    let e = k.compile_error.unwrap().to_string();
    assert!(
        e.starts_with("m.keras: config.json: compile_config.loss: unsupported loss `huber`"),
        "{e}"
    );
}

#[test]
fn weights_that_do_not_fit_are_named() {
    let e = err(&with_store(|s| {
        s.entries.get_mut("layers/dense").unwrap().vars[0] =
            StoredVar::f32(vec![5, 4], vec![0.0; 20]);
    }));
    assert_eq!(
        e,
        "m.keras: model.weights.h5: layers/dense/vars/0: shape [5, 4], the model needs [4, 5]"
    );
    let e = err(&with_store(|s| {
        s.entries.get_mut("layers/dense_1").unwrap().vars.pop();
    }));
    assert_eq!(
        e,
        "m.keras: model.weights.h5: layers/dense_1/vars: layer `dense_1` (dense) has 2 variables, the file has 1"
    );
    let e = err(&with_store(|s| {
        s.entries.get_mut("layers/dense").unwrap().vars[1] = StoredVar {
            shape: vec![5],
            values: VarValues::Int(vec![0; 5]),
        };
    }));
    assert_eq!(
        e,
        "m.keras: model.weights.h5: layers/dense/vars/1: an integer variable, expected float32"
    );
    let e = err(&with_store(|s| {
        let extra = s.entries["layers/dense"].clone();
        s.entries.insert("layers/dense_7".into(), extra);
    }));
    assert_eq!(
        e,
        "m.keras: model.weights.h5: layers/dense_7/vars: variables of an object the model does not have"
    );
}

#[test]
fn an_optimizer_state_that_does_not_fit_is_named() {
    let e = err(&with_store(|s| {
        s.entries.get_mut("optimizer").unwrap().vars.pop();
    }));
    assert_eq!(
        e,
        "m.keras: model.weights.h5: optimizer/vars: 9 variables; Adam over the model's 4 trainable variables has 10 (or 2 before its first step)"
    );
    let e = err(&with_store(|s| {
        s.entries.get_mut("optimizer").unwrap().vars[0] = StoredVar::int_scalar(-1);
    }));
    assert_eq!(
        e,
        "m.keras: model.weights.h5: optimizer/vars/0: iterations -1 is out of range"
    );
    let e = err(&with_store(|s| {
        s.entries.get_mut("optimizer").unwrap().vars[1] = StoredVar::f32(vec![], vec![-0.5]);
    }));
    assert_eq!(
        e,
        "m.keras: model.weights.h5: optimizer/vars/1: learning rate -0.5 must be finite and > 0"
    );
    let e = err(&with_config(|v| {
        v["compile_config"]["optimizer"] = Value::Null
    }));
    assert_eq!(
        e,
        "m.keras: model.weights.h5: optimizer/vars: optimizer variables, but config.json compiles no optimizer"
    );
}

#[test]
fn a_never_fitted_optimizer_starts_fresh_and_the_stored_rate_wins() {
    // Keras writes only iterations and the learning rate before the first step.
    let bytes = with_store(|s| {
        let o = s.entries.get_mut("optimizer").unwrap();
        o.vars.truncate(2);
        o.vars[0] = StoredVar::int_scalar(0);
    });
    let k = KerasModel::from_bytes(&bytes, "m.keras").unwrap();
    assert!(k.optimizer_state.is_none());
    let m = k.build(0).unwrap();
    let opt = k.optimizer(&m).unwrap().unwrap();
    assert_eq!(opt.iterations(), 0);
    assert!(
        opt.slot("m")
            .unwrap()
            .tensors
            .iter()
            .flatten()
            .all(|&x| x == 0.0)
    );
    // A fitted file whose learning-rate variable differs from the config (a callback changed
    // it): Keras uses the variable.
    let bytes = with_store(|s| {
        s.entries.get_mut("optimizer").unwrap().vars[1] = StoredVar::f32(vec![], vec![0.125]);
    });
    let k = KerasModel::from_bytes(&bytes, "m.keras").unwrap();
    assert_eq!(
        k.optimizer.unwrap().learning_rate,
        microfit::core::optim::schedule::Schedule::Constant(0.125)
    );
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let e = KerasModel::load(std::path::Path::new("/nonexistent/m.keras")).unwrap_err();
    assert!(matches!(e, FormatError::Io { .. }));
    assert!(e.to_string().starts_with("/nonexistent/m.keras: "), "{e}");
}

/// `metadata.json` is optional (Keras writes it and never reads it back): an archive whose
/// central directory names it otherwise loads as the same model, without a Keras version.
#[test]
fn a_lost_metadata_member_is_the_same_model_without_a_version() {
    let good = trained_file();
    let name = b"metadata.json";
    let at = good
        .windows(name.len())
        .rposition(|w| w == name)
        .expect("the central directory names metadata.json");
    let mut b = good.clone();
    b[at] ^= 0x20; // "Metadata.json"
    let k = KerasModel::from_bytes(&b, "m.keras").unwrap();
    let mut expected = KerasModel::from_bytes(&good, "m.keras").unwrap();
    assert!(expected.keras_version.is_some() && k.keras_version.is_none());
    expected.keras_version = None;
    assert_eq!(k, expected);
}

mod damaged {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A damaged weights file is an error, never a panic (and never a silent success with
        /// other values: a flipped byte inside a dataset's data reads as different weights,
        /// which the zip CRC catches before this layer).
        #[test]
        fn damaged_h5_never_panics(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
            let h5 = members(&trained_file())["model.weights.h5"].clone();
            let mut b = h5.clone();
            for (i, x) in flips {
                let i = i % b.len();
                b[i] ^= x | 1;
            }
            let _ = WeightsStore::from_bytes(&b, "w");
            let _ = WeightsStore::from_bytes(&h5[..cut % h5.len()], "w");
        }

        /// A damaged archive is an error or (a flip in unused bytes) the same model. The one
        /// optional member, `metadata.json` (Keras does not read it back), may be lost to a
        /// flip in its name in the central directory: then the same model without a version.
        #[test]
        fn damaged_archive_never_panics(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let good = trained_file();
            let mut b = good.clone();
            for (i, x) in flips {
                let i = i % b.len();
                b[i] ^= x | 1;
            }
            if let Ok(k) = KerasModel::from_bytes(&b, "m.keras") {
                let mut expected = KerasModel::from_bytes(&good, "m.keras").unwrap();
                if k.keras_version.is_none() {
                    expected.keras_version = None;
                }
                prop_assert_eq!(k, expected);
            }
        }
    }
}
