//! Model files written by an earlier microfit (commit 8b6687f, format version 3, before the
//! configuration schema moved to `formats/`; see `fixtures/model_files/README.md`): today's
//! microfit reads them to the same configuration and the same numbers, and continues an old run
//! to the bits the old version gets without the interruption. (Format versions 1 and 2 are
//! checked in `formats::model_file`'s unit tests.)

mod common;

use std::path::{Path, PathBuf};

use common::{microfit, stdout};
use microfit::modelfile::ModelFile;
use microfit::spec::SpecFile;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/model_files"
    ))
}

/// `(run, the data it was trained on)`.
const RUNS: [(&str, &str); 3] = [("cnn", "digits"), ("reg", "iris"), ("iris", "iris")];

fn bits(t: &[Vec<f32>]) -> Vec<Vec<u32>> {
    t.iter()
        .map(|x| x.iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn old_model_files_read_to_the_same_numbers() {
    for (run, data) in RUNS {
        let dir = fixtures().join(run);
        for file in ["model.mfit", "checkpoint.mfit"] {
            let path = dir.join(file);
            let f = ModelFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let (cfg, model) = f.build_model(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                bits(&model.params.tensors),
                bits(&f.weights.tensors),
                "{run}"
            );
            // The spec.toml the old version wrote resolves to the same configuration.
            let spec = SpecFile::load(&dir.join("spec.toml")).unwrap();
            let again = spec
                .resolve(
                    "spec.toml",
                    &f.data.shape(),
                    None,
                    &microfit::spec::ModelOverrides::default(),
                )
                .unwrap();
            assert_eq!(again, cfg, "{run}/{file}");
        }
        // evaluate: every number the old version printed.
        let old: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("evaluate.json")).unwrap())
                .unwrap();
        let new: Value = serde_json::from_str(&stdout(
            microfit()
                .args(["evaluate", "--json", "--model"])
                .arg(dir.join("model.mfit")),
        ))
        .unwrap();
        for (k, v) in old.as_object().unwrap() {
            if k != "model" {
                assert_eq!(&new[k], v, "{run}: evaluate {k}");
            }
        }
        // predict: the first rows, as text.
        let want = std::fs::read_to_string(dir.join("predict_head.csv")).unwrap();
        let got = stdout(
            microfit()
                .args(["predict", "--data", data, "--model"])
                .arg(dir.join("model.mfit")),
        );
        let got: Vec<&str> = got.lines().take(want.lines().count()).collect();
        assert_eq!(got, want.lines().collect::<Vec<_>>(), "{run}: predict");
    }
}

/// The old `iris` run (5 epochs) resumed to 7 epochs ends with the bits of the old version's
/// uninterrupted 7-epoch run.
#[test]
fn an_old_run_resumes_to_the_uninterrupted_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("iris");
    std::fs::create_dir(&run).unwrap();
    let src = fixtures().join("iris");
    for f in ["model.mfit", "checkpoint.mfit", "spec.toml"] {
        std::fs::copy(src.join(f), run.join(f)).unwrap();
    }
    microfit()
        .args(["train", "--quiet", "--resume", "--epochs", "7", "--out"])
        .arg(&run)
        .assert()
        .success();
    let load = |p: &Path| ModelFile::load(p).unwrap_or_else(|e| panic!("{e}"));
    let resumed = load(&run.join("model.mfit"));
    let straight = load(&src.join("model_7_epochs.mfit"));
    assert_eq!(
        bits(&resumed.weights.tensors),
        bits(&straight.weights.tensors)
    );
    // Every epoch's numbers, as printed (the shortest text of each f32: the same bits).
    assert_eq!(
        resumed.progress.history.to_json(),
        straight.progress.history.to_json()
    );
}
