//! CSV loading: options, label mapping, and every kind of bad input with its line and column.

use std::io::{self, Read};

use microfit::data::{
    DataError, Dataset, LabelColumn, LoadOptions, Location, MAX_FIELD_TEXT, Target, TaskKind,
    load_csv, load_csv_reader, parse_csv_bytes,
};

fn parse(text: &str) -> Result<Dataset, DataError> {
    parse_csv_bytes("t.csv", text.as_bytes(), &LoadOptions::default())
}

fn parse_with(text: &str, opts: &LoadOptions) -> Result<Dataset, DataError> {
    parse_csv_bytes("t.csv", text.as_bytes(), opts)
}

fn loc(line: u64, column: usize, name: Option<&str>) -> Location {
    Location {
        file: "t.csv".into(),
        line,
        column,
        column_name: name.map(str::to_owned),
    }
}

/// An iris-like file with `bad` as petal_length on line 12.
fn iris_like(bad: &str) -> String {
    let mut text = String::from("sepal_length,sepal_width,petal_length,petal_width,species\n");
    for line in 2..=14 {
        let petal = if line == 12 { bad } else { "1.4" };
        text.push_str(&format!("5.1,3.5,{petal},0.2,setosa\n"));
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Good input

#[test]
fn header_features_and_string_classes_in_order_of_appearance() {
    let d = parse("a,b,kind\n1,2,dog\n3,4,cat\n5,6,dog\n7,8,bird\n").unwrap();
    assert_eq!(d.name, "t.csv");
    assert_eq!(d.feature_names, ["a", "b"]);
    assert_eq!(d.target_name, "kind");
    assert_eq!((d.n_samples(), d.n_features(), d.n_classes()), (4, 2, 3));
    assert_eq!(d.features, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    assert_eq!(
        d.target,
        Target::Classes {
            labels: vec![0, 1, 0, 2],
            class_names: vec!["dog".into(), "cat".into(), "bird".into()],
        }
    );
    assert_eq!(d.row(1), [3.0, 4.0]);
    assert_eq!(d.class_name(2), Some("bird"));
    assert_eq!(d.class_name(3), None);
    assert_eq!(d.class_counts(), [2, 1, 1]);
    d.validate().unwrap();
}

#[test]
fn integer_labels_keep_their_numeric_order() {
    let d = parse("x,y\n0.5,2\n1.5,0\n2.5,10\n3.5,1\n4.5,2.0\n").unwrap();
    // Sorted numerically (10 after 2), "2.0" is the same class as "2".
    assert_eq!(d.class_names(), ["0", "1", "2", "10"]);
    assert_eq!(d.label(0), Some(2));
    assert_eq!(d.label(1), Some(0));
    assert_eq!(d.label(2), Some(3));
    assert_eq!(d.label(3), Some(1));
    assert_eq!(d.label(4), Some(2));

    // Labels 0..K-1 map to themselves, whatever order they first appear in.
    let d = parse("x,y\n1,2\n1,1\n1,0\n").unwrap();
    assert_eq!(d.class_names(), ["0", "1", "2"]);
    assert_eq!(
        d.target,
        Target::Classes {
            labels: vec![2, 1, 0],
            class_names: d.class_names().to_vec()
        }
    );
}

#[test]
fn auto_task_picks_regression_for_fractional_or_many_distinct_labels() {
    let d = parse("x,y\n1,0.5\n2,1.25\n3,-7\n").unwrap();
    assert_eq!(
        d.target,
        Target::Regression {
            values: vec![0.5, 1.25, -7.0]
        }
    );
    assert_eq!((d.n_classes(), d.n_outputs()), (0, 1));

    let mut text = String::from("x,y\n");
    for i in 0..101 {
        text.push_str(&format!("{i},{i}\n"));
    }
    assert!(matches!(
        parse(&text).unwrap().target,
        Target::Regression { .. }
    ));
    let text100: String = text.lines().take(101).map(|l| format!("{l}\n")).collect();
    assert_eq!(parse(&text100).unwrap().n_classes(), 100);

    // Any non-numeric label makes it classification.
    let d = parse("x,y\n1,0.5\n2,abc\n").unwrap();
    assert_eq!(d.class_names(), ["0.5", "abc"]);
}

#[test]
fn forced_task_kinds() {
    let class = LoadOptions::default().with_task(TaskKind::Classification);
    let d = parse_with("x,y\n1,0.5\n2,1.5\n3,0.5\n", &class).unwrap();
    assert_eq!(d.class_names(), ["0.5", "1.5"]);
    assert_eq!(d.class_counts(), [2, 1]);

    let reg = LoadOptions::default().with_task(TaskKind::Regression);
    let d = parse_with("x,y\n1,0\n2,1\n", &reg).unwrap();
    assert_eq!(
        d.target,
        Target::Regression {
            values: vec![0.0, 1.0]
        }
    );
}

#[test]
fn header_auto_detection() {
    // All numeric: no header, generated names, the first row is data.
    let d = parse("1,2,0\n3,4,1\n").unwrap();
    assert_eq!(d.n_samples(), 2);
    assert_eq!(d.feature_names, ["feature_0", "feature_1"]);
    assert_eq!(d.target_name, "label");
    // A non-numeric label on the first row alone does not make a header.
    let d = parse("1,2,cat\n3,4,dog\n").unwrap();
    assert_eq!(d.n_samples(), 2);
    // Forced header on an all-numeric first row.
    let d = parse_with(
        "1,2,0\n3,4,1\n",
        &LoadOptions::default().with_header(Some(true)),
    )
    .unwrap();
    assert_eq!(d.n_samples(), 1);
    assert_eq!(d.feature_names, ["1", "2"]);
}

#[test]
fn label_column_by_index_and_name() {
    let text = "Species,a,b\ncat,1,2\ndog,3,4\n";
    let by_index = LoadOptions::default().with_label(LabelColumn::Index(0));
    let d = parse_with(text, &by_index).unwrap();
    assert_eq!(d.feature_names, ["a", "b"]);
    assert_eq!(d.features, [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(d.class_names(), ["cat", "dog"]);

    let by_name = LoadOptions::default().with_label(LabelColumn::Name("species".into()));
    assert_eq!(parse_with(text, &by_name).unwrap(), d);
    let exact = LoadOptions::default().with_label(LabelColumn::Name("Species".into()));
    assert_eq!(parse_with(text, &exact).unwrap(), d);
}

#[test]
fn tolerated_syntax() {
    let expected = parse("a,b\n1,2\n3,4\n").unwrap();
    for text in [
        "a,b\r\n1,2\r\n3,4\r\n",
        "\u{feff}a,b\n1,2\n3,4",
        "a,b\n\n1,2\n   \n3,4\n\n",
        "\"a\",\"b\"\n\"1\", 2 \n  3  ,\"4\"\n",
    ] {
        assert_eq!(parse(text).unwrap(), expected, "{text:?}");
    }
    let semi = LoadOptions::default().with_delimiter(b';');
    assert_eq!(parse_with("a;b\n1;2\n3;4\n", &semi).unwrap(), expected);
    let d = parse("a,b\n1e-3,x\n-2.5E2,y\n+4,x\n").unwrap();
    assert_eq!(d.features, [1e-3, -250.0, 4.0]);
}

#[test]
fn reader_and_file_loading() {
    let text = "a,b\n1,x\n2,y\n";
    let d = load_csv_reader("mem.csv", text.as_bytes(), &LoadOptions::default()).unwrap();
    assert_eq!(d.name, "mem.csv");
    assert_eq!(d.n_samples(), 2);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.csv");
    std::fs::write(&path, text).unwrap();
    let f = load_csv(&path, &LoadOptions::default()).unwrap();
    assert_eq!(f.features, d.features);
    assert_eq!(f.target, d.target);
    assert_eq!(f.name, path.display().to_string());
}

#[test]
fn dataset_helpers() {
    let d = parse("a,b,c\n1,2,x\n3,4,y\n5,6,z\n").unwrap();
    let mut out = [9.0; 3];
    d.one_hot(1, &mut out);
    assert_eq!(out, [0.0, 1.0, 0.0]);
    let mut short = [9.0; 1];
    d.one_hot(2, &mut short); // does not fit: all zeros, no panic
    assert_eq!(short, [0.0]);

    let s = d.subset(&[2, 0, 2]);
    assert_eq!(s.features, [5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
    assert_eq!(s.class_names(), d.class_names());
    assert_eq!(s.label(0), Some(2));
    assert_eq!(s.n_classes(), 3);

    let r = parse("a,b\n1,0.5\n2,1.5\n").unwrap();
    let mut out = [9.0; 2];
    r.one_hot(1, &mut out);
    assert_eq!(out, [1.5, 0.0]);
    assert_eq!(r.class_name(0), None);
    assert!(r.class_counts().is_empty());
}

#[test]
fn dataset_new_checks_shapes() {
    let target = Target::Classes {
        labels: vec![0, 1],
        class_names: vec!["a".into(), "b".into()],
    };
    let names = vec!["f".to_string(), "g".to_string()];
    assert!(Dataset::new("ok", vec![1.0; 4], names.clone(), "y", target.clone()).is_ok());
    for (features, target) in [
        (vec![1.0; 3], target.clone()),
        (vec![1.0, f32::NAN, 1.0, 1.0], target.clone()),
        (
            vec![1.0; 4],
            Target::Classes {
                labels: vec![0, 2],
                class_names: vec!["a".into(), "b".into()],
            },
        ),
        (
            vec![1.0; 4],
            Target::Regression {
                values: vec![0.0, f32::INFINITY],
            },
        ),
    ] {
        let err = Dataset::new("bad", features, names.clone(), "y", target).unwrap_err();
        assert!(
            matches!(err, DataError::InvalidDataset { ref dataset, .. } if dataset == "bad"),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: the right variant, line and column

#[test]
fn non_numeric_field_message_matches_the_documented_form() {
    let err = parse_csv_bytes(
        "iris.csv",
        iris_like("abc").as_bytes(),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"iris.csv:line 12, column 3 ("petal_length"): "abc" is not a number"#
    );
    match err {
        DataError::NonNumeric { at, text } => {
            assert_eq!((at.line, at.column), (12, 3));
            assert_eq!(at.column_name.as_deref(), Some("petal_length"));
            assert_eq!(text, "abc");
        }
        other => panic!("wrong variant: {other:?}"),
    }
}

#[test]
fn non_numeric_without_header_has_no_column_name() {
    let err = parse("1,2,a\n3,x,b\n").unwrap_err();
    match err {
        DataError::NonNumeric { at, text } => {
            assert_eq!(at, loc(2, 2, None));
            assert_eq!(text, "x");
        }
        other => panic!("wrong variant: {other:?}"),
    }
}

#[test]
fn long_field_text_is_truncated() {
    let long = "z".repeat(500);
    let err = parse(&iris_like(&long)).unwrap_err();
    let DataError::NonNumeric { text, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(text.chars().count(), MAX_FIELD_TEXT + 1);
    assert!(text.ends_with('…'));
    assert!(err.to_string().len() < 200);
    // Multi-byte characters are cut on a character boundary.
    let err = parse(&iris_like(&"é".repeat(100))).unwrap_err();
    let DataError::NonNumeric { text, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(text.chars().count(), MAX_FIELD_TEXT + 1);
}

#[test]
fn nan_and_infinity_are_rejected() {
    for bad in ["nan", "NaN", "inf", "-inf", "infinity", "1e39", "-3.5e38"] {
        let err = parse(&iris_like(bad)).unwrap_err();
        match &err {
            DataError::NonFinite { at, text } => {
                assert_eq!(*at, loc(12, 3, Some("petal_length")), "{bad}");
                assert_eq!(text, bad);
            }
            other => panic!("{bad}: wrong variant: {other:?}"),
        }
        assert!(err.to_string().contains("not a finite number"));
    }
    // In a regression label too.
    let err = parse("x,y\n1,0.5\n2,nan\n").unwrap_err();
    assert!(
        matches!(err, DataError::NonFinite { ref at, .. } if *at == loc(3, 2, Some("y"))),
        "{err:?}"
    );
}

#[test]
fn empty_fields_are_missing_values() {
    let err = parse(&iris_like("")).unwrap_err();
    assert!(
        matches!(err, DataError::EmptyField { ref at } if *at == loc(12, 3, Some("petal_length"))),
        "{err:?}"
    );
    assert!(err.to_string().contains("empty field"));
    let err = parse("a,b,c\n1,2,x\n3,4,\n").unwrap_err();
    assert!(
        matches!(err, DataError::EmptyField { ref at } if *at == loc(3, 3, Some("c"))),
        "{err:?}"
    );
}

#[test]
fn ragged_rows() {
    let err = parse("a,b,c\n1,2,x\n1,2,x\n1,2\n").unwrap_err();
    match err {
        DataError::RaggedRow {
            file,
            line,
            expected,
            found,
        } => {
            assert_eq!((file.as_str(), line, expected, found), ("t.csv", 4, 3, 2));
        }
        other => panic!("wrong variant: {other:?}"),
    }
    let err = parse("a,b,c\n1,2,x,9\n").unwrap_err();
    assert!(
        matches!(
            err,
            DataError::RaggedRow {
                line: 2,
                expected: 3,
                found: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "t.csv:line 2: expected 3 fields (as on the first row), found 4"
    );
    // A quoted field spanning lines: the line of the record's start is reported.
    let err = parse("a,b,c\n1,\"2\n\",x\n5,6\n").unwrap_err();
    assert!(
        matches!(err, DataError::RaggedRow { line: 4, .. }),
        "{err:?}"
    );
}

#[test]
fn empty_file_and_header_only() {
    for text in ["", "\n\n", "  \r\n", "\u{feff}"] {
        let err = parse(text).unwrap_err();
        assert!(
            matches!(err, DataError::EmptyFile { ref file } if file == "t.csv"),
            "{text:?}: {err:?}"
        );
    }
    let err = parse("a,b,c\n").unwrap_err();
    assert!(matches!(err, DataError::NoDataRows { .. }), "{err:?}");
    assert!(err.to_string().contains("no data rows"));
}

#[test]
fn unknown_label_column() {
    let text = "a,b,c\n1,2,x\n";
    let err = parse_with(
        text,
        &LoadOptions::default().with_label(LabelColumn::Name("class".into())),
    )
    .unwrap_err();
    match &err {
        DataError::UnknownLabelColumn {
            file,
            requested,
            available,
        } => {
            assert_eq!(file, "t.csv");
            assert_eq!(*requested, LabelColumn::Name("class".into()));
            assert_eq!(*available, ["a", "b", "c"]);
        }
        other => panic!("wrong variant: {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        r#"t.csv: there is no label column named "class"; available columns: "a", "b", "c""#
    );

    let err = parse_with(
        text,
        &LoadOptions::default().with_label(LabelColumn::Index(3)),
    )
    .unwrap_err();
    assert!(
        matches!(&err, DataError::UnknownLabelColumn { requested: LabelColumn::Index(3), available, .. } if available.len() == 3),
        "{err:?}"
    );
    assert!(err.to_string().contains("index 3 is out of range"));

    // Without a header, a name cannot be found; the indices are listed instead.
    let opts = LoadOptions::default()
        .with_label(LabelColumn::Name("a".into()))
        .with_header(Some(false));
    let err = parse_with("1,2,3\n", &opts).unwrap_err();
    assert!(
        matches!(&err, DataError::UnknownLabelColumn { available, .. } if *available == ["0", "1", "2"]),
        "{err:?}"
    );
}

#[test]
fn only_a_label_column() {
    let err = parse("y\na\nb\n").unwrap_err();
    assert!(matches!(err, DataError::NoFeatureColumns { .. }), "{err:?}");
}

#[test]
fn non_numeric_regression_label() {
    let opts = LoadOptions::default().with_task(TaskKind::Regression);
    let err = parse_with("x,y\n1,2\n2,three\n", &opts).unwrap_err();
    assert!(
        matches!(&err, DataError::NonNumeric { at, text } if *at == loc(3, 2, Some("y")) && text == "three"),
        "{err:?}"
    );
}

#[test]
fn empty_label_is_a_missing_value() {
    let err = parse("x,y\n1,cat\n2,\n").unwrap_err();
    assert!(
        matches!(&err, DataError::EmptyField { at } if *at == loc(3, 2, Some("y"))),
        "{err:?}"
    );
}

#[test]
fn invalid_utf8() {
    let bytes = b"a,b,c\n1,2,x\n3,\xff4,y\n";
    let err = parse_csv_bytes("t.csv", bytes, &LoadOptions::default()).unwrap_err();
    match &err {
        DataError::InvalidUtf8 { at, valid_up_to } => {
            assert_eq!(*at, loc(3, 2, Some("b")));
            assert_eq!(*valid_up_to, 0);
        }
        other => panic!("wrong variant: {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("t.csv:line 3, column 2 (\"b\"): invalid UTF-8")
    );
    // In the header row: no column name yet.
    let err = parse_csv_bytes("t.csv", b"a,\xc3(,c\n1,2,3\n", &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DataError::InvalidUtf8 { at, valid_up_to: 0 } if *at == loc(1, 2, None)),
        "{err:?}"
    );
}

#[test]
fn io_errors_carry_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.csv");
    let err = load_csv(&path, &LoadOptions::default()).unwrap_err();
    match &err {
        DataError::Io { path: p, source } => {
            assert_eq!(p, &path);
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("wrong variant: {other:?}"),
    }
    assert!(err.to_string().contains("missing.csv"));
    assert!(std::error::Error::source(&err).is_some());

    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
    let err = load_csv_reader("stream", Failing, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DataError::Io { path, .. } if path.to_str() == Some("stream")),
        "{err:?}"
    );
    assert!(err.to_string().contains("disk on fire"));
}

#[test]
fn errors_are_std_errors() {
    fn takes_error(_: &dyn std::error::Error) {}
    let err = parse("").unwrap_err();
    takes_error(&err);
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
    assert!(!boxed.to_string().is_empty());
}

#[test]
fn option_enums_serde() {
    let label: LabelColumn = serde_json::from_str(r#"{"name": "class"}"#).unwrap();
    assert_eq!(label, LabelColumn::Name("class".into()));
    let label: LabelColumn = serde_json::from_str(r#"{"index": 2}"#).unwrap();
    assert_eq!(label, LabelColumn::Index(2));
    let label: LabelColumn = serde_json::from_str(r#""last""#).unwrap();
    assert_eq!(label, LabelColumn::Last);
    let task: TaskKind = serde_json::from_str(r#""regression""#).unwrap();
    assert_eq!(task, TaskKind::Regression);
}
