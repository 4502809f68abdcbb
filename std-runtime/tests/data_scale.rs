//! Feature scaling against hand-computed statistics.

use microfit::data::{
    Bundled, DataError, Dataset, LoadOptions, Scaler, ScalerKind, parse_csv_bytes,
};

/// Columns: `a` = 1, 2, 3, 4; `b` = 7 (constant); `c` = -1, 0, 0, 5.
fn small() -> Dataset {
    let text = "a,b,c,y\n1,7,-1,p\n2,7,0,q\n3,7,0,p\n4,7,5,q\n";
    parse_csv_bytes("small.csv", text.as_bytes(), &LoadOptions::default()).unwrap()
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

fn assert_all_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            close(g, w),
            "entry {k}: got {g}, want {w}\n got {got:?}\nwant {want:?}"
        );
    }
}

#[test]
fn standardize_matches_hand_computation() {
    let data = small();
    let s = Scaler::fit(&data, ScalerKind::Standardize);
    assert_eq!(s.kind, ScalerKind::Standardize);
    // a: mean 2.5, population variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
    // b: constant → offset 7, scale 1 (no division by zero).
    // c: mean 1, variance (4 + 1 + 1 + 16) / 4 = 5.5.
    assert_all_close(&s.offset, &[2.5, 7.0, 1.0]);
    assert_all_close(&s.scale, &[1.0 / 1.25f32.sqrt(), 1.0, 1.0 / 5.5f32.sqrt()]);

    let mut scaled = data.clone();
    s.transform(&mut scaled).unwrap();
    let inv_a = 1.0 / 1.25f32.sqrt();
    let inv_c = 1.0 / 5.5f32.sqrt();
    #[rustfmt::skip]
    let want = [
        -1.5 * inv_a, 0.0, -2.0 * inv_c,
        -0.5 * inv_a, 0.0, -inv_c,
        0.5 * inv_a, 0.0, -inv_c,
        1.5 * inv_a, 0.0, 4.0 * inv_c,
    ];
    assert_all_close(&scaled.features, &want);
    // Standardized training data: mean 0, population std 1 (constant column stays 0).
    let again = Scaler::fit(&scaled, ScalerKind::Standardize);
    for j in [0, 2] {
        assert!(again.offset[j].abs() < 1e-6);
        assert!(close(again.scale[j], 1.0), "{again:?}");
    }
    // Labels untouched.
    assert_eq!(scaled.target, data.target);
}

#[test]
fn minmax_matches_hand_computation() {
    let data = small();
    let s = Scaler::fit(&data, ScalerKind::MinMax);
    assert_all_close(&s.offset, &[1.0, 7.0, -1.0]);
    assert_all_close(&s.scale, &[1.0 / 3.0, 1.0, 1.0 / 6.0]);
    let mut scaled = data.clone();
    s.transform(&mut scaled).unwrap();
    #[rustfmt::skip]
    let want = [
        0.0, 0.0, 0.0,
        1.0 / 3.0, 0.0, 1.0 / 6.0,
        2.0 / 3.0, 0.0, 1.0 / 6.0,
        1.0, 0.0, 1.0,
    ];
    assert_all_close(&scaled.features, &want);
}

#[test]
fn none_is_the_identity() {
    let data = small();
    let s = Scaler::fit(&data, ScalerKind::None);
    assert_eq!(s, Scaler::identity(3));
    let mut same = data.clone();
    s.transform(&mut same).unwrap();
    assert_eq!(same, data);
}

#[test]
fn transform_row_is_offset_then_multiply() {
    let s = Scaler {
        kind: ScalerKind::Standardize,
        offset: vec![1.0, -2.0],
        scale: vec![0.5, 4.0],
    };
    let mut row = [3.0, 0.0];
    s.transform_row(&mut row).unwrap();
    assert_eq!(row, [(3.0 - 1.0) * 0.5, (0.0 + 2.0) * 4.0]);
    s.inverse_transform_row(&mut row).unwrap();
    assert_eq!(row, [3.0, 0.0]);

    // transform() and transform_row() agree bit for bit on a real dataset.
    let wine = Bundled::Wine.load().unwrap();
    let s = Scaler::fit(&wine, ScalerKind::Standardize);
    let mut all = wine.clone();
    s.transform(&mut all).unwrap();
    for i in 0..wine.n_samples() {
        let mut row = wine.row(i).to_vec();
        s.transform_row(&mut row).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&row), bits(all.row(i)), "row {i}");
    }
}

#[test]
fn shape_mismatches_are_errors_not_panics() {
    let s = Scaler::identity(3);
    let mut row = [1.0, 2.0];
    let err = s.transform_row(&mut row).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::FeatureCountMismatch {
                expected: 3,
                found: 2
            }
        ),
        "{err:?}"
    );
    assert_eq!(row, [1.0, 2.0]);

    let mut iris = Bundled::Iris.load().unwrap();
    let before = iris.clone();
    let err = s.transform(&mut iris).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::FeatureCountMismatch {
                expected: 3,
                found: 4
            }
        ),
        "{err:?}"
    );
    assert_eq!(iris, before);

    let broken = Scaler {
        kind: ScalerKind::MinMax,
        offset: vec![0.0; 4],
        scale: vec![1.0; 3],
    };
    assert!(broken.validate().is_err());
    assert!(broken.transform(&mut iris).is_err());
    let nan = Scaler {
        kind: ScalerKind::MinMax,
        offset: vec![f32::NAN],
        scale: vec![1.0],
    };
    assert!(nan.validate().is_err());
    assert!(Scaler::identity(2).validate().is_ok());
}

#[test]
fn tiny_spread_and_empty_data_never_divide_by_zero() {
    let text = "a,b,y\n1,1e-38,p\n1,1.0000001e-38,q\n";
    let data = parse_csv_bytes("t.csv", text.as_bytes(), &LoadOptions::default()).unwrap();
    for kind in [ScalerKind::Standardize, ScalerKind::MinMax] {
        let s = Scaler::fit(&data, kind);
        assert!(s.scale.iter().all(|v| v.is_finite() && *v > 0.0), "{s:?}");
        assert_eq!(s.scale[0], 1.0);
    }
    let empty = data.subset(&[]);
    let s = Scaler::fit(&empty, ScalerKind::Standardize);
    assert_eq!((s.offset, s.scale), (vec![0.0; 2], vec![1.0; 2]));
}

#[test]
fn serde_round_trip() {
    let s = Scaler::fit(&Bundled::Iris.load().unwrap(), ScalerKind::Standardize);
    let json = serde_json::to_string(&s).unwrap();
    assert!(
        json.starts_with(r#"{"kind":"standardize","offset":["#),
        "{json}"
    );
    let back: Scaler = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    let minmax: Scaler =
        serde_json::from_str(r#"{"kind":"min_max","offset":[1.0],"scale":[0.5]}"#).unwrap();
    assert_eq!(minmax.kind, ScalerKind::MinMax);
    let none: ScalerKind = serde_json::from_str(r#""none""#).unwrap();
    assert_eq!(none, ScalerKind::None);
}
