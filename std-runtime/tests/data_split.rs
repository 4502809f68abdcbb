//! Seeded, stratified splits and per-epoch shuffles.

use std::collections::BTreeSet;

use microfit::data::{
    Bundled, DataError, Dataset, LoadOptions, SplitMix64, SplitPart, SplitSpec, Target,
    epoch_order, parse_csv_bytes, split, split_indices,
};

fn spec(validation: f32, test: f32, seed: u64, stratify: bool) -> SplitSpec {
    SplitSpec {
        validation,
        test,
        seed,
        stratify,
    }
}

/// Checks that the parts are disjoint and cover `0..n`.
fn assert_partition(n: usize, parts: &[&[usize]]) {
    let mut seen = BTreeSet::new();
    for part in parts {
        for &i in *part {
            assert!(i < n);
            assert!(seen.insert(i), "index {i} in two parts");
        }
    }
    assert_eq!(seen.len(), n);
}

#[test]
fn splitmix64_reference_vector() {
    // The reference outputs of splitmix64.c for seed 1234567.
    let mut rng = SplitMix64::new(1_234_567);
    let got: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
    assert_eq!(
        got,
        [
            6_457_827_717_110_365_317,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ]
    );
}

#[test]
fn splitmix64_helpers_stay_in_range() {
    let mut rng = SplitMix64::stream(7, 3);
    assert_eq!(rng.below(0), 0);
    let mut hist = [0usize; 6];
    for _ in 0..60_000 {
        let k = rng.below(6) as usize;
        hist[k] += 1;
        let f = rng.next_f64();
        assert!((0.0..1.0).contains(&f));
    }
    // Roughly uniform (each expected 10 000).
    assert!(
        hist.iter().all(|&h| (9_400..10_600).contains(&h)),
        "{hist:?}"
    );
}

#[test]
fn stratified_split_keeps_class_proportions() {
    let iris = Bundled::Iris.load().unwrap();
    let parts = split(&iris, spec(0.2, 0.2, 42, true)).unwrap();
    let val = parts.validation.as_ref().unwrap();
    let test = parts.test.as_ref().unwrap();
    assert_eq!(parts.train.class_counts(), [30, 30, 30]);
    assert_eq!(val.class_counts(), [10, 10, 10]);
    assert_eq!(test.class_counts(), [10, 10, 10]);
    assert_eq!(parts.train.class_names(), iris.class_names());

    // Unequal classes (wine 59/71/48) are shared out in proportion, totals as requested.
    let wine = Bundled::Wine.load().unwrap();
    let idx = split_indices(&wine, spec(0.25, 0.0, 1, true)).unwrap();
    assert_eq!(idx.validation.len(), (178.0f64 * 0.25).round() as usize);
    assert!(idx.test.is_empty());
    let val = wine.subset(&idx.validation);
    let counts = val.class_counts();
    for (c, &total) in wine.class_counts().iter().enumerate() {
        let expected = total as f64 * 0.25;
        assert!(
            (counts[c] as f64 - expected).abs() < 1.0,
            "class {c}: {counts:?}"
        );
    }
    assert_partition(178, &[&idx.train, &idx.validation, &idx.test]);

    // Digits: every class present in every part.
    let digits = Bundled::Digits.load().unwrap();
    let parts = split(&digits, spec(0.1, 0.1, 3, true)).unwrap();
    for d in [
        &parts.train,
        parts.validation.as_ref().unwrap(),
        parts.test.as_ref().unwrap(),
    ] {
        assert!(d.class_counts().iter().all(|&c| c > 0));
    }
}

#[test]
fn split_is_deterministic_per_seed() {
    let iris = Bundled::Iris.load().unwrap();
    for stratify in [true, false] {
        let a = split_indices(&iris, spec(0.2, 0.1, 9, stratify)).unwrap();
        let b = split_indices(&iris, spec(0.2, 0.1, 9, stratify)).unwrap();
        let c = split_indices(&iris, spec(0.2, 0.1, 10, stratify)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_partition(150, &[&a.train, &a.validation, &a.test]);
        assert_eq!(
            (a.validation.len(), a.test.len(), a.train.len()),
            (30, 15, 105)
        );
    }
}

#[test]
fn split_output_is_pinned() {
    // Pins the exact algorithm so a change (which would change every published result) is seen.
    let text = "x,y\n0,a\n1,a\n2,a\n3,a\n4,a\n5,b\n6,b\n7,b\n8,b\n9,b\n";
    let d = parse_csv_bytes("t.csv", text.as_bytes(), &LoadOptions::default()).unwrap();
    let s = split_indices(&d, spec(0.2, 0.2, 1234, true)).unwrap();
    let again = split_indices(&d, spec(0.2, 0.2, 1234, true)).unwrap();
    assert_eq!(s, again);
    assert_eq!(s.validation.len(), 2);
    assert_eq!(s.test.len(), 2);
    let class = |i: &usize| i / 5;
    assert_eq!(
        s.validation.iter().map(class).collect::<BTreeSet<_>>(),
        BTreeSet::from([0, 1])
    );
    assert_eq!(
        s.test.iter().map(class).collect::<BTreeSet<_>>(),
        BTreeSet::from([0, 1])
    );
    assert_eq!(epoch_order(10, 42, 0), [8, 2, 6, 3, 4, 0, 9, 5, 1, 7]);
}

#[test]
fn parts_shuffle_classes_together() {
    let iris = Bundled::Iris.load().unwrap();
    let parts = split(&iris, spec(0.2, 0.0, 5, true)).unwrap();
    let labels: Vec<u32> = (0..parts.train.n_samples())
        .map(|i| parts.train.label(i).unwrap())
        .collect();
    let mut sorted = labels.clone();
    sorted.sort_unstable();
    assert_ne!(labels, sorted, "training set still sorted by class");
}

#[test]
fn no_validation_or_test_gives_none() {
    let iris = Bundled::Iris.load().unwrap();
    let parts = split(&iris, spec(0.0, 0.0, 1, true)).unwrap();
    assert_eq!(parts.train.n_samples(), 150);
    assert!(parts.validation.is_none() && parts.test.is_none());
    let parts = split(&iris, spec(0.0, 0.3, 1, false)).unwrap();
    assert!(parts.validation.is_none());
    assert_eq!(parts.test.unwrap().n_samples(), 45);
}

#[test]
fn tiny_fraction_still_gets_one_sample() {
    let iris = Bundled::Iris.load().unwrap();
    let idx = split_indices(&iris, spec(0.001, 0.0, 1, false)).unwrap();
    assert_eq!(idx.validation.len(), 1);
    let idx = split_indices(&iris, spec(0.001, 0.0, 1, true)).unwrap();
    // Stratified: one per class.
    assert_eq!(idx.validation.len(), 3);
}

#[test]
fn class_too_small_for_stratification_is_named() {
    let text = "x,y\n1,big\n2,big\n3,big\n4,big\n5,big\n6,big\n7,rare\n8,rare\n";
    let d = parse_csv_bytes("t.csv", text.as_bytes(), &LoadOptions::default()).unwrap();
    let err = split(&d, spec(0.2, 0.2, 0, true)).unwrap_err();
    match &err {
        DataError::EmptyClassInSplit {
            dataset,
            class,
            samples,
            part,
            parts,
        } => {
            assert_eq!(dataset, "t.csv");
            assert_eq!(class, "rare");
            assert_eq!((*samples, *parts), (2, 3));
            assert_eq!(*part, SplitPart::Test);
        }
        other => panic!("wrong variant: {other:?}"),
    }
    assert!(err.to_string().contains("\"rare\""));
    // Two parts are fine for a class of two; so is not stratifying.
    let s = split(&d, spec(0.2, 0.0, 0, true)).unwrap();
    assert_eq!(s.validation.unwrap().class_counts(), [1, 1]);
    assert_eq!(s.train.class_counts(), [5, 1]);
    assert!(split(&d, spec(0.2, 0.2, 0, false)).is_ok());
}

#[test]
fn too_few_samples() {
    let d = parse_csv_bytes("t.csv", b"x,y\n1,0.5\n2,0.7\n", &LoadOptions::default()).unwrap();
    let err = split(&d, spec(0.3, 0.3, 0, false)).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::TooFewSamples {
                available: 2,
                needed: 3,
                ..
            }
        ),
        "{err:?}"
    );
    let empty = d.subset(&[]);
    let err = split(&empty, spec(0.0, 0.0, 0, true)).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::TooFewSamples {
                available: 0,
                needed: 1,
                ..
            }
        ),
        "{err:?}"
    );
    // Two samples, one held out: the training set keeps one.
    let s = split(&d, spec(0.9, 0.0, 0, false)).unwrap();
    assert_eq!(
        (s.train.n_samples(), s.validation.unwrap().n_samples()),
        (1, 1)
    );
}

#[test]
fn invalid_specs() {
    let iris = Bundled::Iris.load().unwrap();
    for (v, t) in [
        (-0.1, 0.0),
        (1.0, 0.0),
        (0.0, f32::NAN),
        (0.6, 0.4),
        (0.7, 0.5),
        (f32::INFINITY, 0.0),
    ] {
        let err = split(&iris, spec(v, t, 0, true)).unwrap_err();
        assert!(
            matches!(err, DataError::InvalidSplitSpec { .. }),
            "{v} {t}: {err:?}"
        );
    }
}

#[test]
fn regression_split_ignores_stratify() {
    let mut text = String::from("x,y\n");
    for i in 0..50 {
        text.push_str(&format!("{i},{}.5\n", i * 3));
    }
    let d = parse_csv_bytes("r.csv", text.as_bytes(), &LoadOptions::default()).unwrap();
    assert!(matches!(d.target, Target::Regression { .. }));
    let a = split_indices(&d, spec(0.2, 0.2, 8, true)).unwrap();
    let b = split_indices(&d, spec(0.2, 0.2, 8, false)).unwrap();
    assert_eq!(a, b);
    assert_partition(50, &[&a.train, &a.validation, &a.test]);
    let parts = split(&d, spec(0.2, 0.2, 8, true)).unwrap();
    // Rows stay with their targets.
    for part in [
        &parts.train,
        parts.validation.as_ref().unwrap(),
        parts.test.as_ref().unwrap(),
    ] {
        let Target::Regression { values } = &part.target else {
            unreachable!()
        };
        for (i, v) in values.iter().enumerate() {
            assert_eq!(*v, part.row(i)[0] * 3.0 + 0.5);
        }
    }
}

#[test]
fn stratify_with_class_absent_from_data() {
    // Class names kept by `subset` even when a class has no samples left.
    let iris = Bundled::Iris.load().unwrap();
    let two_classes: Vec<usize> = (0..100).collect();
    let d: Dataset = iris.subset(&two_classes);
    assert_eq!(d.class_counts(), [50, 50, 0]);
    let parts = split(&d, spec(0.2, 0.0, 0, true)).unwrap();
    assert_eq!(parts.validation.unwrap().class_counts(), [10, 10, 0]);
}

#[test]
fn epoch_order_is_a_seeded_permutation() {
    let a = epoch_order(100, 7, 0);
    assert_eq!(
        a.iter().copied().collect::<BTreeSet<_>>(),
        (0..100).collect()
    );
    assert_eq!(a, epoch_order(100, 7, 0));
    assert_ne!(a, epoch_order(100, 7, 1));
    assert_ne!(a, epoch_order(100, 8, 0));
    assert_ne!(a, (0..100).collect::<Vec<_>>());
    assert!(epoch_order(0, 1, 2).is_empty());
    assert_eq!(epoch_order(1, 1, 2), [0]);
}

#[test]
fn split_spec_serde() {
    let s: SplitSpec = serde_json::from_str(r#"{"validation": 0.1, "seed": 5}"#).unwrap();
    assert_eq!(s, spec(0.1, 0.0, 5, true));
    let back: SplitSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
}
