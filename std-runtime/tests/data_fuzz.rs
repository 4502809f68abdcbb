//! The CSV parser never panics: arbitrary bytes, CSV-like noise, mutated real files, and the
//! saved corpus in `fuzz-corpus/csv/`.
//!
//! Corpus naming: `ok_*` files must load with the default options, `err_*` files must fail
//! (with the variant listed in [`expected_error`] when there is one), any other file only has
//! to return without panicking. Every file is also parsed with a few other option sets.

use std::path::PathBuf;

use microfit::data::{
    Bundled, DataError, Dataset, LabelColumn, LoadOptions, TaskKind, parse_csv_bytes,
};
use proptest::prelude::*;

/// Parses and, on success, checks the invariants every loaded dataset must satisfy.
fn parse_and_check(bytes: &[u8], opts: &LoadOptions) -> Result<Dataset, DataError> {
    let result = parse_csv_bytes("fuzz.csv", bytes, opts);
    match &result {
        Ok(d) => {
            d.validate().expect("a loaded dataset is consistent");
            assert!(d.n_samples() >= 1);
            assert!(d.n_features() >= 1);
            if let Some(max) = d.class_counts().iter().max() {
                assert!(*max >= 1);
            }
        }
        Err(e) => {
            // Every error can be displayed.
            assert!(!e.to_string().is_empty());
        }
    }
    result
}

fn option_sets() -> Vec<LoadOptions> {
    vec![
        LoadOptions::default(),
        LoadOptions::default()
            .with_label(LabelColumn::Index(0))
            .with_header(Some(false)),
        LoadOptions::default().with_label(LabelColumn::Name("label".into())),
        LoadOptions::default()
            .with_task(TaskKind::Regression)
            .with_header(Some(true)),
        LoadOptions::default()
            .with_task(TaskKind::Classification)
            .with_delimiter(b';'),
    ]
}

fn arb_options() -> impl Strategy<Value = LoadOptions> {
    let label = prop_oneof![
        Just(LabelColumn::Last),
        (0usize..6).prop_map(LabelColumn::Index),
        prop::sample::select(vec!["a", "label", "class", "", "x y"])
            .prop_map(|s| LabelColumn::Name(s.to_owned())),
    ];
    let header = prop::sample::select(vec![None, Some(true), Some(false)]);
    let task = prop::sample::select(vec![
        TaskKind::Auto,
        TaskKind::Classification,
        TaskKind::Regression,
    ]);
    let delimiter = prop_oneof![
        4 => Just(b','),
        1 => prop::sample::select(vec![b';', b'\t', b'"', b'\n']),
        1 => any::<u8>(),
    ];
    (label, header, task, delimiter).prop_map(|(label, has_header, task, delimiter)| LoadOptions {
        label,
        has_header,
        task,
        delimiter,
        ..LoadOptions::default()
    })
}

/// Bytes drawn mostly from the characters that matter to the parser.
fn csv_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let alphabet = b"0123456789.,,,,-+eE\"\n\n\r ;\tabcnaif\xff\xc3\xa9\xef\xbb\xbf".to_vec();
    prop::collection::vec(prop::sample::select(alphabet), 0..400)
}

/// A mutation: at position `pos` (modulo the length), 0 = replace, 1 = insert, 2 = delete,
/// 3 = duplicate a run of bytes.
fn mutations() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), 0u8..4, any::<u8>()), 1..12)
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(pos, op, byte) in edits {
        let len = bytes.len();
        match op {
            0 if len > 0 => bytes[pos % len] = byte,
            1 => bytes.insert(pos % (len + 1), byte),
            2 if len > 0 => {
                bytes.remove(pos % len);
            }
            3 if len > 0 => {
                let start = pos % len;
                let end = (start + usize::from(byte % 32)).min(len);
                let run = bytes[start..end].to_vec();
                bytes.splice(start..start, run);
            }
            _ => {}
        }
    }
    bytes
}

/// The first `lines` lines of a bundled dataset.
fn head(b: Bundled, lines: usize) -> Vec<u8> {
    let text: String = b.csv_text().split_inclusive('\n').take(lines).collect();
    text.into_bytes()
}

// 256 cases per property by default; set `PROPTEST_CASES` for a longer run.
proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), opts in arb_options()) {
        let _ = parse_and_check(&bytes, &opts);
    }

    #[test]
    fn csv_like_noise_never_panics(bytes in csv_like_bytes(), opts in arb_options()) {
        let _ = parse_and_check(&bytes, &opts);
    }

    #[test]
    fn mutated_real_files_never_panic(
        which in prop::sample::select(Bundled::ALL.to_vec()),
        lines in 1usize..25,
        edits in mutations(),
        opts in arb_options(),
    ) {
        let bytes = mutate(head(which, lines), &edits);
        let _ = parse_and_check(&bytes, &opts);
    }

    #[test]
    fn unmutated_heads_load(which in prop::sample::select(Bundled::ALL.to_vec()), lines in 2usize..25) {
        let d = parse_and_check(&head(which, lines), &LoadOptions::default());
        prop_assert!(d.is_ok(), "{:?}", d.err());
        prop_assert_eq!(d.map(|d| d.n_samples()).unwrap_or(0), lines - 1);
    }
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz-corpus")
        .join("csv")
}

/// The error variant an `err_*` corpus file must produce, by file stem.
fn expected_error(stem: &str, err: &DataError) -> bool {
    match stem {
        "err_empty" => matches!(err, DataError::EmptyFile { .. }),
        "err_header_only" => matches!(err, DataError::NoDataRows { .. }),
        "err_ragged" => matches!(
            err,
            DataError::RaggedRow {
                line: 3,
                expected: 3,
                found: 2,
                ..
            }
        ),
        "err_non_numeric" => {
            matches!(err, DataError::NonNumeric { at, .. } if at.line == 3 && at.column == 2)
        }
        "err_nan_inf" => {
            matches!(err, DataError::NonFinite { at, .. } if at.line == 2 && at.column == 2)
        }
        "err_invalid_utf8" => {
            matches!(err, DataError::InvalidUtf8 { at, .. } if at.line == 3 && at.column == 2)
        }
        _ => true,
    }
}

#[test]
fn corpus_replays_without_panicking() {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("fuzz-corpus/csv exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    assert!(entries.len() >= 5, "corpus too small: {entries:?}");
    for path in entries {
        let bytes = std::fs::read(&path).expect("readable corpus file");
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        for opts in option_sets() {
            let _ = parse_and_check(&bytes, &opts);
        }
        let result = parse_and_check(&bytes, &LoadOptions::default());
        if stem.starts_with("ok_") {
            assert!(result.is_ok(), "{stem}: {:?}", result.err());
        } else if stem.starts_with("err_") {
            match result {
                Ok(d) => panic!("{stem} loaded: {d:?}"),
                Err(e) => assert!(expected_error(&stem, &e), "{stem}: unexpected error {e:?}"),
            }
        }
    }
}
