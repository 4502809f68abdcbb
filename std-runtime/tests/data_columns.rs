//! Choosing columns by name (issue 13, items 1, 8 and 10): `features` and `drop`, duplicate
//! header names, and `;` / tab separated files.

use microfit::data::{
    Bundled, DataError, LabelColumn, LoadOptions, parse_csv_bytes, parse_features_bytes,
};

const CSV: &str = "id,a,b,c,label\n1,10,20,30,x\n2,11,21,31,y\n3,12,22,32,x\n";

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

#[test]
fn features_are_taken_by_name_in_the_order_given() {
    let opts = LoadOptions::default().with_features(Some(names(&["c", "a"])));
    let d = parse_csv_bytes("t.csv", CSV.as_bytes(), &opts).unwrap();
    assert_eq!(d.feature_names, ["c", "a"]);
    assert_eq!(d.row(0), [30.0, 10.0]);
    assert_eq!(d.row(2), [32.0, 12.0]);
    assert_eq!(d.class_names(), ["x", "y"]);
}

#[test]
fn dropped_columns_are_not_features() {
    let opts = LoadOptions::default().with_drop(names(&["id"]));
    let d = parse_csv_bytes("t.csv", CSV.as_bytes(), &opts).unwrap();
    assert_eq!(d.feature_names, ["a", "b", "c"]);
    assert_eq!(d.row(1), [11.0, 21.0, 31.0]);
    // Case-insensitive when unambiguous, and 0-based indices work too.
    let opts = LoadOptions::default().with_drop(names(&["ID", "3"]));
    let d = parse_csv_bytes("t.csv", CSV.as_bytes(), &opts).unwrap();
    assert_eq!(d.feature_names, ["a", "b"]);
}

#[test]
fn unknown_columns_are_errors_that_list_the_columns() {
    let opts = LoadOptions::default().with_drop(names(&["ident"]));
    let e = parse_csv_bytes("t.csv", CSV.as_bytes(), &opts).unwrap_err();
    assert!(matches!(e, DataError::UnknownColumn { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "t.csv: there is no column \"ident\" (given as --drop); available columns: \"id\", \"a\", \
         \"b\", \"c\", \"label\""
    );
    let opts = LoadOptions::default().with_features(Some(names(&["a", "label"])));
    let e = parse_csv_bytes("t.csv", CSV.as_bytes(), &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.csv: column \"label\" cannot be a feature: it is the label column"
    );
}

#[test]
fn duplicate_header_names_are_an_error_naming_both_columns() {
    let text = "a,b,a,label\n1,2,3,x\n4,5,6,y\n";
    let e = parse_csv_bytes("dup.csv", text.as_bytes(), &LoadOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dup.csv: columns 1 and 3 are both named \"a\"; rename one so that columns can be chosen \
         by name"
    );
    // Even when the label is asked for by another name.
    let opts = LoadOptions::default().with_label(LabelColumn::Name("a".into()));
    let e = parse_csv_bytes("dup.csv", text.as_bytes(), &opts).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::DuplicateColumn {
                first: 1,
                second: 3,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn semicolon_and_tab_files_are_read() {
    for sep in [";", "\t"] {
        let text = CSV.replace(',', sep);
        let d = parse_csv_bytes("s.csv", text.as_bytes(), &LoadOptions::default()).unwrap();
        assert_eq!(d.feature_names, ["id", "a", "b", "c"], "{sep:?}");
        assert_eq!(d.row(0), [1.0, 10.0, 20.0, 30.0]);
    }
    // An explicit delimiter is used as given.
    let e = parse_csv_bytes(
        "s.csv",
        CSV.replace(',', ";").as_bytes(),
        &LoadOptions::default().with_delimiter(b','),
    )
    .unwrap_err();
    assert!(matches!(e, DataError::NoFeatureColumns { .. }), "{e:?}");
}

#[test]
fn feature_tables_have_no_label() {
    let t = parse_features_bytes("f.csv", b"a,b\n1,2\n3,4\n", &LoadOptions::default()).unwrap();
    assert_eq!((t.n_rows(), t.has_header), (2, true));
    assert_eq!(t.feature_names, ["a", "b"]);
    assert_eq!(t.features, [1.0, 2.0, 3.0, 4.0]);
    let t = parse_features_bytes("f.csv", b"1,2\n3,4\n", &LoadOptions::default()).unwrap();
    assert_eq!((t.n_rows(), t.has_header), (2, false));
    assert_eq!(t.feature_names, ["feature_0", "feature_1"]);
}

#[test]
fn bundled_datasets_take_the_column_choice() {
    let opts =
        LoadOptions::default().with_features(Some(names(&["petal_width_cm", "sepal_length_cm"])));
    let d = Bundled::Iris.load_with(&opts).unwrap();
    assert_eq!(d.feature_names, ["petal_width_cm", "sepal_length_cm"]);
    let all = Bundled::Iris.load().unwrap();
    assert_eq!(d.row(0), [all.row(0)[3], all.row(0)[0]]);
}
