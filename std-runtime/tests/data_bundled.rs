//! The bundled datasets match `datasets/PROVENANCE.md` and the CSV files they embed.

use std::path::PathBuf;

use microfit::data::{Bundled, DataError, LoadOptions, load_csv, load_source};

fn datasets_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("datasets")
}

/// One row of the table in PROVENANCE.md.
#[derive(Debug)]
struct Documented {
    file: String,
    rows: usize,
    features: usize,
    classes: usize,
    class_list: String,
}

/// Reads the `| file | rows × features | classes | …` table of PROVENANCE.md.
fn provenance() -> Vec<Documented> {
    let text = std::fs::read_to_string(datasets_dir().join("PROVENANCE.md")).unwrap();
    let mut rows = Vec::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // ["", "`iris.csv`", "150 × 4", "3 (setosa, …)", source, licence, ""]
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let file = cells[1].trim_matches('`').to_owned();
        let mut shape = cells[2].split('×').map(str::trim);
        let rows_n = shape.next().unwrap().parse().unwrap();
        let features: usize = shape
            .next()
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let (count, list) = cells[3].split_once(' ').unwrap();
        rows.push(Documented {
            file,
            rows: rows_n,
            features,
            classes: count.parse().unwrap(),
            class_list: list.to_owned(),
        });
    }
    rows
}

#[test]
fn provenance_documents_every_bundled_dataset() {
    let doc = provenance();
    assert_eq!(doc.len(), Bundled::ALL.len(), "{doc:?}");
    for b in Bundled::all() {
        assert!(
            doc.iter().any(|d| d.file == b.file_name()),
            "{b} missing from PROVENANCE.md"
        );
    }
}

#[test]
fn bundled_shapes_match_provenance() {
    for doc in provenance() {
        let b = Bundled::ALL
            .into_iter()
            .find(|b| b.file_name() == doc.file)
            .unwrap_or_else(|| panic!("no bundled dataset for {}", doc.file));
        let d = b.load().unwrap();
        assert_eq!(d.name, b.name());
        assert_eq!(
            (d.n_samples(), d.n_features(), d.n_classes()),
            (doc.rows, doc.features, doc.classes),
            "{}",
            doc.file
        );
        assert_eq!(d.features.len(), d.n_samples() * d.n_features());
        assert!(d.features.iter().all(|v| v.is_finite()));
        d.validate().unwrap();
        // Every class has samples.
        assert!(d.class_counts().iter().all(|&c| c > 0), "{}", doc.file);
        // The class names listed in the doc (when listed by name) are the classes, in order.
        let listed: Vec<&str> = doc
            .class_list
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .map(str::trim)
            .collect();
        if listed.len() == doc.classes {
            assert_eq!(d.class_names(), listed, "{}", doc.file);
        }
    }
}

#[test]
fn bundled_shapes_and_class_counts() {
    // Counted from the CSV files (`awk -F, '{print $NF}' | sort | uniq -c`).
    /// (dataset, samples, features, class names, samples per class)
    type Expected = (
        Bundled,
        usize,
        usize,
        &'static [&'static str],
        &'static [usize],
    );
    let expect: [Expected; 4] = [
        (
            Bundled::Iris,
            150,
            4,
            &["setosa", "versicolor", "virginica"],
            &[50, 50, 50],
        ),
        (
            Bundled::Digits,
            1797,
            64,
            &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            &[178, 182, 177, 183, 181, 182, 181, 179, 174, 180],
        ),
        (
            Bundled::Wine,
            178,
            13,
            &["class_0", "class_1", "class_2"],
            &[59, 71, 48],
        ),
        (
            Bundled::BreastCancer,
            569,
            30,
            &["malignant", "benign"],
            &[212, 357],
        ),
    ];
    for (b, n, d, names, counts) in expect {
        let data = b.load().unwrap();
        assert_eq!((data.n_samples(), data.n_features()), (n, d), "{b}");
        assert_eq!(data.class_names(), names, "{b}");
        assert_eq!(data.class_counts(), counts, "{b}");
        assert_eq!(data.target_name, "class");
    }
}

#[test]
fn digits_labels_are_the_digits() {
    let d = Bundled::Digits.load().unwrap();
    let text = Bundled::Digits.csv_text();
    for (i, line) in text.lines().skip(1).enumerate() {
        let digit: u32 = line.trim().rsplit(',').next().unwrap().parse().unwrap();
        assert_eq!(d.label(i), Some(digit), "row {i}");
    }
    assert_eq!(d.feature_names[0], "pixel_0_0");
    assert_eq!(d.feature_names[63], "pixel_7_7");
    assert!(
        d.features
            .iter()
            .all(|&v| (0.0..=16.0).contains(&v) && v.fract() == 0.0)
    );
}

#[test]
fn first_rows_match_the_files() {
    let iris = Bundled::Iris.load().unwrap();
    assert_eq!(
        iris.feature_names,
        [
            "sepal_length_cm",
            "sepal_width_cm",
            "petal_length_cm",
            "petal_width_cm"
        ]
    );
    assert_eq!(iris.row(0), [5.1, 3.5, 1.4, 0.2]);
    assert_eq!(
        iris.class_name(iris.label(0).unwrap() as usize),
        Some("setosa")
    );
    let wine = Bundled::Wine.load().unwrap();
    assert_eq!(wine.row(0)[12], 1065.0);
    let bc = Bundled::BreastCancer.load().unwrap();
    assert_eq!(bc.row(0)[0], 17.99);
    assert_eq!(bc.label(0), Some(0)); // malignant
}

#[test]
fn embedded_text_is_the_shipped_file_and_loads_the_same() {
    for b in Bundled::all() {
        let path = datasets_dir().join(b.file_name());
        let on_disk = std::fs::read_to_string(&path).unwrap();
        assert_eq!(b.csv_text(), on_disk, "{b}");
        let mut from_file = load_csv(&path, &LoadOptions::default()).unwrap();
        from_file.name = b.name().into();
        assert_eq!(from_file, b.load().unwrap(), "{b}");
    }
}

#[test]
fn names_parse_case_insensitively() {
    for b in Bundled::all() {
        assert_eq!(Bundled::from_name(b.name()), Some(*b));
        assert_eq!(Bundled::from_name(&b.name().to_uppercase()), Some(*b));
        assert_eq!(b.name().parse::<Bundled>().unwrap(), *b);
        assert_eq!(b.to_string(), b.name());
    }
    assert_eq!(
        Bundled::from_name("breast-cancer"),
        Some(Bundled::BreastCancer)
    );
    assert_eq!(
        Bundled::from_name(" Breast_Cancer "),
        Some(Bundled::BreastCancer)
    );
    assert_eq!(Bundled::from_name("IRIS"), Some(Bundled::Iris));
    assert_eq!(Bundled::from_name("iris.csv"), None);
    assert_eq!(Bundled::from_name("mnist"), None);
    let err = "mnist".parse::<Bundled>().unwrap_err();
    assert!(
        err.to_string()
            .contains("iris, digits, wine, breast_cancer")
    );
}

#[test]
fn load_source_takes_names_or_paths() {
    assert_eq!(load_source("Iris").unwrap(), Bundled::Iris.load().unwrap());
    assert_eq!(load_source("breast-cancer").unwrap().n_samples(), 569);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.csv");
    std::fs::write(&path, "a,b\n1,x\n2,y\n").unwrap();
    let d = load_source(path.to_str().unwrap()).unwrap();
    assert_eq!(d.n_samples(), 2);

    let missing = dir.path().join("nope.csv");
    let err = load_source(missing.to_str().unwrap()).unwrap_err();
    assert!(
        matches!(&err, DataError::Io { path, .. } if *path == missing),
        "{err:?}"
    );
}
