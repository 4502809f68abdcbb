//! One format: the core's `MFW1` reader reads the std runtime's `microfit export` blob (a
//! Conv2D → max pooling → Flatten → Dropout → Dense model, padding and strides included) and
//! gives back every field and every weight bit, and the core's writer, given the same records,
//! writes the very same bytes.

use microfit::core::Activation;
use microfit::core::blob::{self, Axis, Blob, BlobSpec, Kind, LayerRecord};
use microfit::core::layer::conv::Padding;
use microfit::data::{Scaler, ScalerKind};
use microfit::export::{BlobKind, ExportInput, read_blob, write_blob};
use microfit::model::{LayerSpec, ModelSpec};

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
    let axes: Vec<Vec<Axis>> = std_blob
        .layers
        .iter()
        .map(|l| {
            l.axes
                .iter()
                .map(|a| Axis {
                    kernel: a.kernel,
                    stride: a.stride,
                    dilation: a.dilation,
                    pad_before: a.pad_before,
                    pad_after: a.pad_after,
                    input: a.input,
                    output: a.output,
                })
                .collect()
        })
        .collect();
    let shapes: Vec<Vec<&[u32]>> = std_blob
        .layers
        .iter()
        .map(|l| l.tensor_shapes.iter().map(Vec::as_slice).collect())
        .collect();
    let records: Vec<LayerRecord<'_>> = std_blob
        .layers
        .iter()
        .zip(&axes)
        .zip(&shapes)
        .map(|((l, a), s)| LayerRecord {
            kind: Kind::from_code(l.kind as u8).unwrap(),
            activation: blob::activation_from_code(l.activation, l.act_param).unwrap(),
            use_bias: l.use_bias,
            output_len: l.output_len,
            axes: a,
            channels: (l.in_channels, l.out_channels),
            tensor_shapes: s,
        })
        .collect();
    let core_spec = BlobSpec {
        input_shape: &std_blob.input_shape,
        classification: std_blob.classification,
        n_classes: std_blob.n_classes,
        layers: &records,
        scaler_offset: &scaler.offset,
        scaler_scale: &scaler.scale,
    };
    let mut ours = Vec::new();
    blob::write(&core_spec, &model.params, &mut |b: &[u8]| {
        ours.extend_from_slice(b)
    })
    .unwrap();
    assert_eq!(ours, bytes);
}
