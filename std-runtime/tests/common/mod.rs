//! Helpers shared by the CLI tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use microfit::history::History;
use microfit::modelfile::ModelFile;

/// The `microfit` binary under test.
pub fn microfit() -> Command {
    Command::cargo_bin("microfit").unwrap()
}

/// The stdout of a command that must succeed.
pub fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

/// `microfit train --quiet --out <out> <extra>`, which must succeed.
pub fn train_quiet(out: &Path, extra: &[&str]) {
    microfit()
        .args(["train", "--quiet", "--out"])
        .arg(out)
        .args(extra)
        .assert()
        .success();
}

/// A run's `history.json`.
pub fn history(dir: &Path) -> History {
    History::from_json(&std::fs::read_to_string(dir.join("history.json")).unwrap()).unwrap()
}

/// `<out>.partial`, where a run is written until it has a model to show.
pub fn partial(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Every file of a folder (name → bytes).
pub fn folder_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Asserts that a folder holds exactly the files `before` recorded, byte for byte (the message
/// names the files that differ, not their bytes).
pub fn assert_unchanged(dir: &Path, before: &BTreeMap<String, Vec<u8>>, what: &str) {
    let now = folder_bytes(dir);
    let differ: Vec<&String> = now
        .keys()
        .chain(before.keys())
        .filter(|k| now.get(*k) != before.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: {} changed: {differ:?}",
        dir.display()
    );
}

/// Asserts that two model files hold the same weights, bit for bit.
pub fn same_weights(a: &Path, b: &Path) {
    let (a, b) = (ModelFile::load(a).unwrap(), ModelFile::load(b).unwrap());
    assert_eq!(a.weights.names, b.weights.names);
    for (n, (x, y)) in a
        .weights
        .names
        .iter()
        .zip(a.weights.tensors.iter().zip(&b.weights.tensors))
    {
        let (x, y): (Vec<u32>, Vec<u32>) = (
            x.iter().map(|v| v.to_bits()).collect(),
            y.iter().map(|v| v.to_bits()).collect(),
        );
        assert_eq!(x, y, "{n}");
    }
}
