//! One format: the core's `MFW1` reader reads the std runtime's `microfit export` blob (a
//! Conv2D → max pooling → Flatten → Dropout → Dense model, padding and strides included) and
//! gives back every field and every weight bit, and the core's writer, given the same records,
//! writes the very same bytes. The same for every record kind and setting the export writes
//! (conv of 1 to 3 axes, both poolings, every identity layer as kind 6, frozen layers and
//! constraints as flag bits 1 to 3), checked against the models' own settings.

use microfit::core::Activation;
use microfit::core::blob::{self, Axis, Blob, BlobSpec, Kind, LayerRecord, TrainingFlags};
use microfit::core::constraint::{Axes, Constraint};
use microfit::core::layer::conv::Padding;
use microfit::data::{Scaler, ScalerKind};
use microfit::export::{BlobKind, ExportInput, FirmwareBlob, read_blob, write_blob};
use microfit::model::{LayerSpec, ModelSpec, Sequential, VecParams};

#[test]
fn core_reads_and_writes_the_exported_blob() {
    let spec = ModelSpec {
        input_shape: vec![8, 8, 1],
        layers: vec![
            LayerSpec::conv2d(4, [3, 3], Activation::Relu)
                .with_padding(Padding::Same)
                .with_strides(&[2, 1]),
            LayerSpec::max_pooling(&[2, 2]),
            LayerSpec::Flatten,
            LayerSpec::dropout(0.25),
            LayerSpec::dense(5, Activation::LeakyRelu(0.2)),
            LayerSpec::dense(3, Activation::Softmax),
        ],
    };
    let model = spec.build(5).unwrap();
    let scaler = Scaler {
        kind: ScalerKind::Standardize,
        offset: (0..64).map(|i| i as f32 * 0.25).collect(),
        scale: (0..64).map(|i| 1.0 / (1.0 + i as f32)).collect(),
    };
    let classes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let features: Vec<String> = (0..64).map(|i| format!("f{i}")).collect();
    let input = ExportInput {
        spec: &spec,
        weights: &model.params,
        layer_names: &model.layer_names,
        scaler: &scaler,
        class_names: &classes,
        feature_names: &features,
        classification: true,
    };
    let bytes = write_blob(&input).unwrap();
    let std_blob = read_blob(&bytes).unwrap();

    // The core reads what the std runtime wrote.
    let b = Blob::parse(&bytes).unwrap();
    assert_eq!(b.input_shape().collect::<Vec<_>>(), std_blob.input_shape);
    assert_eq!(
        (
            b.input_len(),
            b.output_len(),
            b.n_classes(),
            b.classification()
        ),
        (64, 3, 3, true)
    );
    let views: Vec<_> = b.layers().collect();
    assert_eq!(views.len(), std_blob.layers.len());
    for (v, l) in views.iter().zip(&std_blob.layers) {
        assert_eq!(v.kind as u8, l.kind as u8);
        assert_eq!(
            blob::activation_code(v.activation),
            (l.activation, l.act_param)
        );
        assert_eq!((v.use_bias, v.output_len), (l.use_bias, l.output_len));
        assert_eq!(usize::from(v.spatial), l.axes.len());
        for (k, a) in l.axes.iter().enumerate() {
            let c = v.axis(k).unwrap();
            assert_eq!(
                [
                    c.kernel,
                    c.stride,
                    c.dilation,
                    c.pad_before,
                    c.pad_after,
                    c.input,
                    c.output
                ],
                [
                    a.kernel,
                    a.stride,
                    a.dilation,
                    a.pad_before,
                    a.pad_after,
                    a.input,
                    a.output
                ]
            );
        }
        assert_eq!(usize::from(v.tensors), l.tensor_shapes.len());
        for (t, s) in l.tensor_shapes.iter().enumerate() {
            let n: u64 = s.iter().map(|&d| u64::from(d)).product();
            assert_eq!(v.tensor_len(t), Some((n, s.len() as u8)));
        }
    }
    assert_eq!(views[0].kind, Kind::Conv);
    assert_eq!(std_blob.layers[0].kind, BlobKind::Conv);
    let weights: Vec<u32> = b.weights().map(f32::to_bits).collect();
    let want: Vec<u32> = model
        .params
        .tensors
        .iter()
        .flatten()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(weights, want);
    for i in 0..64 {
        let (o, s) = b.scaler(i).unwrap();
        assert_eq!(
            (o.to_bits(), s.to_bits()),
            (scaler.offset[i].to_bits(), scaler.scale[i].to_bits())
        );
    }

    // The core writes the same bytes from the same records.
    assert_eq!(core_writes(&std_blob, &model.params, &scaler), bytes);
}

/// The bytes the core's writer writes from the records the std runtime read (`b`), with the
/// weights `params` and the scaler `scaler`.
fn core_writes(b: &FirmwareBlob, params: &VecParams, scaler: &Scaler) -> Vec<u8> {
    let shapes: Vec<Vec<&[u32]>> = b
        .layers
        .iter()
        .map(|l| l.tensor_shapes.iter().map(Vec::as_slice).collect())
        .collect();
    let records: Vec<LayerRecord<'_>> = b
        .layers
        .iter()
        .zip(&shapes)
        .map(|(l, s)| LayerRecord {
            kind: l.kind,
            activation: blob::activation_from_code(l.activation, l.act_param).unwrap(),
            use_bias: l.use_bias,
            training: l.training,
            output_len: l.output_len,
            axes: &l.axes,
            channels: (l.in_channels, l.out_channels),
            tensor_shapes: s,
        })
        .collect();
    let core_spec = BlobSpec {
        input_shape: &b.input_shape,
        classification: b.classification,
        n_classes: b.n_classes,
        layers: &records,
        scaler_offset: &scaler.offset,
        scaler_scale: &scaler.scale,
    };
    let mut ours = Vec::new();
    blob::write(&core_spec, params, &mut |b: &[u8]| {
        ours.extend_from_slice(b)
    })
    .unwrap();
    ours
}

/// Models with every record kind and setting the export writes: conv of 1, 2 and 3 spatial
/// axes (dilation, `same` padding, strides), both poolings, Flatten, Dropout, every noise layer
/// and ActivityRegularization (kind 6), Dense with every activation, without bias, frozen, with
/// kernel and bias constraints; regression and classification.
fn every_kind_models() -> Vec<(ModelSpec, bool, usize)> {
    vec![
        (
            ModelSpec {
                input_shape: vec![16, 2],
                layers: vec![
                    LayerSpec::conv1d(3, 3, Activation::Relu).with_dilation_rate(&[2]),
                    LayerSpec::max_pooling(&[2]),
                    LayerSpec::average_pooling(&[2]).with_padding(Padding::Same),
                    LayerSpec::SpatialDropout1D {
                        rate: 0.1,
                        seed: Some(3),
                    },
                    LayerSpec::GaussianNoise {
                        stddev: 0.1,
                        seed: None,
                    },
                    LayerSpec::Flatten,
                    LayerSpec::dense(4, Activation::Tanh)
                        .with_kernel_constraint(Constraint::max_norm(2.0, Axes::one(0))),
                    LayerSpec::dense(2, Activation::Sigmoid).with_trainable(false),
                    LayerSpec::dense(1, Activation::Linear)
                        .with_bias_constraint(Constraint::NonNeg)
                        .with_kernel_constraint(Constraint::NonNeg),
                ],
            },
            false,
            0,
        ),
        (
            ModelSpec {
                input_shape: vec![6, 6, 2],
                layers: vec![
                    LayerSpec::conv2d(3, [3, 3], Activation::LeakyRelu(0.3))
                        .with_padding(Padding::Same)
                        .with_strides(&[2, 1]),
                    LayerSpec::SpatialDropout2D {
                        rate: 0.2,
                        seed: None,
                    },
                    LayerSpec::average_pooling(&[2, 2]),
                    LayerSpec::GaussianDropout {
                        rate: 0.2,
                        seed: None,
                    },
                    LayerSpec::AlphaDropout {
                        rate: 0.1,
                        seed: None,
                    },
                    LayerSpec::ActivityRegularization { l1: 0.01, l2: 0.0 },
                    LayerSpec::Flatten,
                    LayerSpec::dropout(0.5),
                    LayerSpec::dense(3, Activation::Softmax),
                ],
            },
            true,
            3,
        ),
        (
            ModelSpec {
                input_shape: vec![4, 4, 4, 1],
                layers: vec![
                    LayerSpec::conv3d(2, [2, 2, 2], Activation::Linear),
                    LayerSpec::max_pooling(&[1, 3, 3]),
                    LayerSpec::SpatialDropout3D {
                        rate: 0.3,
                        seed: None,
                    },
                    LayerSpec::Flatten,
                    LayerSpec::dense(5, Activation::Relu).with_trainable(false),
                    LayerSpec::dense(2, Activation::Softmax),
                ],
            },
            true,
            2,
        ),
        (
            ModelSpec {
                input_shape: vec![3],
                layers: vec![
                    {
                        let mut d = LayerSpec::dense(2, Activation::Sigmoid);
                        if let Some(c) = d.dense_config_mut() {
                            c.use_bias = false;
                        }
                        d
                    },
                    LayerSpec::dense(1, Activation::Sigmoid),
                ],
            },
            true,
            2,
        ),
    ]
}

/// The export's input for `spec` (built with `seed`), as `microfit export` gives it.
fn exported(
    spec: &ModelSpec,
    classification: bool,
    classes: usize,
    seed: u64,
) -> (Vec<u8>, Sequential, Scaler) {
    let model = spec.build(seed).unwrap();
    let n: usize = spec.input_shape.iter().product();
    let scaler = Scaler {
        kind: ScalerKind::Standardize,
        offset: (0..n).map(|i| i as f32 * 0.5 - 1.0).collect(),
        scale: (0..n).map(|i| 1.0 / (2.0 + i as f32)).collect(),
    };
    let class_names: Vec<String> = (0..classes).map(|i| format!("c{i}")).collect();
    let features: Vec<String> = (0..n).map(|i| format!("f{i}")).collect();
    let input = ExportInput {
        spec,
        weights: &model.params,
        layer_names: &model.layer_names,
        scaler: &scaler,
        class_names: &class_names,
        feature_names: &features,
        classification,
    };
    let bytes = write_blob(&input).unwrap();
    (bytes, model, scaler)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn every_record_kind_reads_back_through_the_core_with_every_field() {
    use Kind::{AveragePooling as Avg, Conv, Dense, Dropout, Flatten, MaxPooling as Max};
    let none = TrainingFlags::NONE;
    let frozen = TrainingFlags {
        frozen: true,
        ..none
    };
    let kernel = TrainingFlags {
        kernel_constraint: true,
        ..none
    };
    let both = TrainingFlags {
        kernel_constraint: true,
        bias_constraint: true,
        ..none
    };
    // What each model's layers must be in the blob: kind, flags, use_bias (from the specs above).
    let want: [&[(Kind, TrainingFlags, bool)]; 4] = [
        &[
            (Conv, none, true),
            (Max, none, false),
            (Avg, none, false),
            (Dropout, none, false),
            (Dropout, none, false),
            (Flatten, none, false),
            (Dense, kernel, true),
            (Dense, frozen, true),
            (Dense, both, true),
        ],
        &[
            (Conv, none, true),
            (Dropout, none, false),
            (Avg, none, false),
            (Dropout, none, false),
            (Dropout, none, false),
            (Dropout, none, false),
            (Flatten, none, false),
            (Dropout, none, false),
            (Dense, none, true),
        ],
        &[
            (Conv, none, true),
            (Max, none, false),
            (Dropout, none, false),
            (Flatten, none, false),
            (Dense, frozen, true),
            (Dense, none, true),
        ],
        &[(Dense, none, false), (Dense, none, true)],
    ];
    let models = every_kind_models();
    assert_eq!(models.len(), want.len());
    for (m, ((spec, classification, classes), want)) in models.iter().zip(want).enumerate() {
        let (bytes, model, scaler) = exported(spec, *classification, *classes, 11 + m as u64);
        let std_blob = read_blob(&bytes).unwrap();
        let b = Blob::parse(&bytes).unwrap();

        // The header, against the model and against the std reading.
        let n_in: usize = spec.input_shape.iter().product();
        let shape: Vec<u32> = spec.input_shape.iter().map(|&d| d as u32).collect();
        assert_eq!(b.input_shape().collect::<Vec<_>>(), shape, "model {m}");
        assert_eq!(std_blob.input_shape, shape, "model {m}");
        assert_eq!((b.version(), std_blob.version), (1, 1));
        assert_eq!((b.input_len(), std_blob.input_len as usize), (n_in, n_in));
        let out = b.output_len();
        assert_eq!(out, std_blob.output_len as usize);
        assert_eq!(
            out,
            spec.shapes()
                .unwrap()
                .last()
                .unwrap()
                .iter()
                .product::<usize>()
        );
        assert_eq!(
            (b.classification(), b.n_classes()),
            (*classification, *classes)
        );
        assert_eq!(
            (std_blob.classification, usize::from(std_blob.n_classes)),
            (*classification, *classes)
        );

        // Every layer record, field by field.
        let views: Vec<_> = b.layers().collect();
        assert_eq!(views.len(), want.len(), "model {m}");
        assert_eq!(std_blob.layers.len(), want.len(), "model {m}");
        for (i, ((v, l), &(kind, training, use_bias))) in
            views.iter().zip(&std_blob.layers).zip(want).enumerate()
        {
            let at = format!("model {m} layer {i}");
            assert_eq!((v.kind, l.kind), (kind, kind), "{at}");
            assert_eq!((v.training, l.training), (training, training), "{at}");
            assert_eq!((v.use_bias, l.use_bias), (use_bias, use_bias), "{at}");
            let spec_act = spec.layers[i]
                .dense_config()
                .map_or(Activation::Linear, |c| c.activation);
            assert_eq!(v.activation, spec_act, "{at}");
            assert_eq!(
                blob::activation_code(v.activation),
                (l.activation, l.act_param),
                "{at}"
            );
            assert_eq!(v.output_len, l.output_len, "{at}");
            assert_eq!(
                v.output_len as usize,
                spec.shapes().unwrap()[i].iter().product::<usize>(),
                "{at}"
            );
            assert_eq!(usize::from(v.spatial), l.axes.len(), "{at}");
            for (k, a) in l.axes.iter().enumerate() {
                assert_eq!(v.axis(k), Some(*a), "{at} axis {k}");
            }
            assert_eq!(v.axis(l.axes.len()), None, "{at}");
            assert_eq!(v.channels, (l.in_channels, l.out_channels), "{at}");
            assert_eq!(usize::from(v.tensors), l.tensor_shapes.len(), "{at}");
            for (t, s) in l.tensor_shapes.iter().enumerate() {
                let n: u64 = s.iter().map(|&d| u64::from(d)).product();
                assert_eq!(v.tensor_len(t), Some((n, s.len() as u8)), "{at}");
                for (d, &size) in s.iter().enumerate() {
                    assert_eq!(v.tensor_dim(t, d), Some(size), "{at}");
                }
            }
        }

        // The weights (the trainable tensors, as `microfit export` writes them) and the scaler.
        let weights: Vec<u32> = b.weights().map(f32::to_bits).collect();
        let want_weights: Vec<u32> = model.params.tensors.iter().flat_map(|t| bits(t)).collect();
        assert_eq!(weights, want_weights, "model {m}");
        assert_eq!(std_blob.tensors.len(), model.params.tensors.len());
        for (a, w) in std_blob.tensors.iter().zip(&model.params.tensors) {
            assert_eq!(bits(a), bits(w), "model {m}");
        }
        for i in 0..n_in {
            let (o, s) = b.scaler(i).unwrap();
            assert_eq!(
                (o.to_bits(), s.to_bits()),
                (scaler.offset[i].to_bits(), scaler.scale[i].to_bits())
            );
        }
        assert_eq!(bits(&std_blob.scaler_offset), bits(&scaler.offset));
        assert_eq!(bits(&std_blob.scaler_scale), bits(&scaler.scale));
        // And the core's writer, given those records, writes the very bytes.
        assert_eq!(
            core_writes(&std_blob, &model.params, &scaler),
            bytes,
            "model {m}"
        );
    }

    // The geometry, derived by hand. Conv1D k=3, dilation 2 over 16 steps, `valid`: 16 − 4 = 12
    // outputs; max pooling 2 → 6; average pooling 2 `same` → 3 (no padding needed).
    let (bytes, _, _) = exported(&models[0].0, false, 0, 11);
    let b = read_blob(&bytes).unwrap();
    let axis = |kernel, stride, dilation, pad_before, pad_after, input, output| Axis {
        kernel,
        stride,
        dilation,
        pad_before,
        pad_after,
        input,
        output,
    };
    assert_eq!(b.layers[0].axes, [axis(3, 1, 2, 0, 0, 16, 12)]);
    assert_eq!((b.layers[0].in_channels, b.layers[0].out_channels), (2, 3));
    assert_eq!(b.layers[1].axes, [axis(2, 2, 1, 0, 0, 12, 6)]);
    assert_eq!(b.layers[2].axes, [axis(2, 2, 1, 0, 0, 6, 3)]);
    assert_eq!(b.layers[0].tensor_shapes, [vec![3, 2, 3], vec![3]]);
    // Conv2D k=3, `same`, strides (2, 1) over 6 × 6: rows ⌈6/2⌉ = 3 with (3−1)·2 + 3 − 6 = 1 row
    // of padding, after; columns 6 with 2, one each side.
    let (bytes, _, _) = exported(&models[1].0, true, 3, 12);
    let b = read_blob(&bytes).unwrap();
    assert_eq!(
        b.layers[0].axes,
        [axis(3, 2, 1, 0, 1, 6, 3), axis(3, 1, 1, 1, 1, 6, 6)]
    );
    assert_eq!(b.layers[0].output_len, 3 * 6 * 3);
    assert_eq!(
        blob::activation_code(Activation::LeakyRelu(0.3)),
        (b.layers[0].activation, b.layers[0].act_param)
    );
}
