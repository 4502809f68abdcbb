//! `MFW1` blobs: a round trip into a typed network's parameters (Dense and Conv2D layers), a
//! single damaged byte anywhere (every byte, two different flips) and a cut at every length all
//! answer `Error::CorruptBlob`, and weights of another shape are refused without touching the
//! network.

use microfit_core::blob::{self, Axis, Blob, BlobSpec, Kind, LayerRecord, TrainingFlags};
use microfit_core::params::Params;
use microfit_core::prelude::*;
use microfit_core::zoo::{self, TinyCnn};

type W1 = (Dense<4, 16>, Dense<16, 3>);

fn w1() -> Network<W1> {
    Network::new(
        (
            Dense::new(Activation::Relu),
            Dense::new(Activation::Softmax),
        ),
        42,
    )
    .unwrap()
}

const K0: &[u32] = &[4, 16];
const B0: &[u32] = &[16];
const K1: &[u32] = &[16, 3];
const B1: &[u32] = &[3];
const SHAPES0: &[&[u32]] = &[K0, B0];
const SHAPES1: &[&[u32]] = &[K1, B1];

fn w1_blob(params: &impl Params) -> Vec<u8> {
    let layers = [
        LayerRecord::dense(Activation::Relu, true, 16, SHAPES0),
        LayerRecord::dense(Activation::Softmax, true, 3, SHAPES1),
    ];
    w1_blob_of(&layers, params)
}

/// W1's blob with the records `layers`.
fn w1_blob_of(layers: &[LayerRecord<'_>], params: &impl Params) -> Vec<u8> {
    let spec = BlobSpec {
        input_shape: &[4],
        classification: true,
        n_classes: 3,
        layers,
        scaler_offset: &[5.8, 3.0, 3.7, 1.2],
        scaler_scale: &[1.2, 2.3, 0.6, 1.3],
    };
    let mut v = Vec::new();
    let n = blob::write(&spec, params, &mut |b: &[u8]| v.extend_from_slice(b)).unwrap();
    assert_eq!(n, v.len());
    v
}

fn bits<P: Params>(p: &P) -> Vec<u32> {
    (0..p.tensor_count())
        .flat_map(|i| p.tensor(i).iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

#[test]
fn round_trip_into_a_typed_network() {
    let net = w1();
    let bytes = w1_blob(&net.params);
    let b = Blob::parse(&bytes).unwrap();
    assert_eq!(
        (b.version(), b.layer_count(), b.input_len(), b.output_len()),
        (1, 2, 4, 3)
    );
    assert!(b.classification());
    assert_eq!(b.n_classes(), 3);
    assert_eq!(b.input_shape().collect::<Vec<_>>(), [4]);
    let layers: Vec<_> = b.layers().collect();
    assert_eq!(layers.len(), 2);
    assert_eq!(
        (layers[0].kind, layers[0].activation, layers[0].use_bias),
        (Kind::Dense, Activation::Relu, true)
    );
    assert_eq!(layers[1].activation, Activation::Softmax);
    assert_eq!(layers[0].tensor_len(0), Some((64, 2)));
    assert_eq!(layers[0].tensor_dim(0, 1), Some(16));
    assert_eq!(layers[1].tensor_len(1), Some((3, 1)));
    assert_eq!(layers[1].tensor_len(2), None);
    assert_eq!(b.scaler(2), Some((3.7, 0.6)));
    let mut x = [6.0f32, 3.0, 3.7, 1.2];
    b.scale_input(&mut x);
    assert_eq!(x, [(6.0 - 5.8) * 1.2, 0.0, 0.0, 0.0]);
    let mut other = Network::<W1>::new(
        (
            Dense::new(Activation::Relu),
            Dense::new(Activation::Softmax),
        ),
        7,
    )
    .unwrap();
    assert_ne!(bits(&other.params), bits(&net.params));
    b.load_params(&mut other.params).unwrap();
    assert_eq!(bits(&other.params), bits(&net.params));
    // Into a fixed buffer: the same bytes; too small a buffer is an error, not a panic.
    let mut buf = [0u8; 1024];
    let layers = [
        LayerRecord::dense(Activation::Relu, true, 16, SHAPES0),
        LayerRecord::dense(Activation::Softmax, true, 3, SHAPES1),
    ];
    let spec = BlobSpec {
        input_shape: &[4],
        classification: true,
        n_classes: 3,
        layers: &layers,
        scaler_offset: &[5.8, 3.0, 3.7, 1.2],
        scaler_scale: &[1.2, 2.3, 0.6, 1.3],
    };
    let n = blob::write_to_slice(&spec, &net.params, &mut buf).unwrap();
    assert_eq!(&buf[..n], &bytes[..]);
    assert!(blob::write_to_slice(&spec, &net.params, &mut buf[..n - 1]).is_err());
    // The checksum is zlib's CRC-32 of everything before it.
    let crc = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
    assert_eq!(crc, blob::crc32(&bytes[..bytes.len() - 4]));
}

#[test]
fn conv_layers_round_trip() {
    let net = zoo::tiny_cnn(3).unwrap();
    let axis = |input: u32, kernel: u32, stride: u32, output: u32| Axis {
        kernel,
        stride,
        dilation: 1,
        pad_before: 0,
        pad_after: 0,
        input,
        output,
    };
    let conv_axes = [axis(8, 3, 1, 6), axis(8, 3, 1, 6)];
    let pool_axes = [axis(6, 2, 2, 3), axis(6, 2, 2, 3)];
    let (ck, cb, dk, db): (&[u32], &[u32], &[u32], &[u32]) =
        (&[3, 3, 1, 8], &[8], &[72, 10], &[10]);
    let conv_shapes = [ck, cb];
    let dense_shapes = [dk, db];
    let layers = [
        LayerRecord {
            kind: Kind::Conv,
            activation: Activation::Relu,
            use_bias: true,
            training: TrainingFlags::NONE,
            output_len: 288,
            axes: &conv_axes,
            channels: (1, 8),
            tensor_shapes: &conv_shapes,
        },
        LayerRecord {
            kind: Kind::MaxPooling,
            activation: Activation::Linear,
            use_bias: false,
            training: TrainingFlags::NONE,
            output_len: 72,
            axes: &pool_axes,
            channels: (8, 8),
            tensor_shapes: &[],
        },
        LayerRecord {
            kind: Kind::Flatten,
            activation: Activation::Linear,
            use_bias: false,
            training: TrainingFlags::NONE,
            output_len: 72,
            axes: &[],
            channels: (0, 0),
            tensor_shapes: &[],
        },
        LayerRecord::dense(Activation::Softmax, true, 10, &dense_shapes),
    ];
    let spec = BlobSpec {
        input_shape: &[8, 8, 1],
        classification: true,
        n_classes: 10,
        layers: &layers,
        scaler_offset: &[0.0; 64],
        scaler_scale: &[1.0 / 16.0; 64],
    };
    let mut bytes = Vec::new();
    blob::write(&spec, &net.params, &mut |b: &[u8]| {
        bytes.extend_from_slice(b)
    })
    .unwrap();
    let b = Blob::parse(&bytes).unwrap();
    let conv = b.layers().next().unwrap();
    assert_eq!(
        (conv.kind, conv.spatial, conv.channels),
        (Kind::Conv, 2, (1, 8))
    );
    assert_eq!(conv.axis(1), Some(conv_axes[1]));
    assert_eq!(conv.axis(2), None);
    assert_eq!(conv.tensor_len(0), Some((72, 4)));
    let mut other = zoo::tiny_cnn(9).unwrap();
    b.load_params(&mut other.params).unwrap();
    assert_eq!(bits(&other.params), bits(&net.params));
    assert_eq!(Network::<TinyCnn>::PARAMS, b.weight_count());
}

#[test]
fn every_damaged_byte_and_every_cut_is_refused() {
    let net = w1();
    let bytes = w1_blob(&net.params);
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0xff] {
            let mut c = bytes.clone();
            c[i] ^= flip;
            match Blob::parse(&c) {
                Err(Error::CorruptBlob { .. }) => {}
                other => panic!("byte {i} ^ {flip:#x}: {other:?}"),
            }
        }
    }
    for len in 0..bytes.len() {
        match Blob::parse(&bytes[..len]) {
            Err(Error::CorruptBlob { offset, .. }) => assert!(offset as usize <= len),
            other => panic!("cut at {len}: {other:?}"),
        }
    }
    // A longer blob (a byte appended) breaks the checksum too.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        Blob::parse(&longer),
        Err(Error::CorruptBlob { .. })
    ));
}

#[test]
fn other_shapes_are_refused_and_leave_the_network_alone() {
    let net = w1();
    let bytes = w1_blob(&net.params);
    let b = Blob::parse(&bytes).unwrap();
    let mut wider = Network::<(Dense<4, 8>, Dense<8, 3>)>::new(
        (
            Dense::new(Activation::Relu),
            Dense::new(Activation::Softmax),
        ),
        1,
    )
    .unwrap();
    let before = bits(&wider.params);
    assert!(matches!(
        b.load_params(&mut wider.params),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!(bits(&wider.params), before);
    let mut deeper = Network::<(Dense<4, 16>, Dense<16, 3>, Dense<3, 3>)>::new(
        (
            Dense::new(Activation::Relu),
            Dense::new(Activation::Relu),
            Dense::new(Activation::Softmax),
        ),
        1,
    )
    .unwrap();
    assert!(b.load_params(&mut deeper.params).is_err());
    // Weights that do not match the records are not written.
    let layers = [LayerRecord::dense(Activation::Relu, true, 16, SHAPES0)];
    let spec = BlobSpec {
        input_shape: &[4],
        classification: false,
        n_classes: 0,
        layers: &layers,
        scaler_offset: &[0.0; 4],
        scaler_scale: &[1.0; 4],
    };
    assert!(blob::write(&spec, &net.params, &mut |_: &[u8]| {}).is_err());
}

#[test]
fn training_flags_round_trip_and_unknown_flag_bits_are_refused() {
    let net = w1();
    let frozen = TrainingFlags {
        frozen: true,
        kernel_constraint: true,
        bias_constraint: false,
    };
    let layers = [
        LayerRecord {
            training: frozen,
            ..LayerRecord::dense(Activation::Relu, true, 16, SHAPES0)
        },
        LayerRecord::dense(Activation::Softmax, true, 3, SHAPES1),
    ];
    let bytes = w1_blob_of(&layers, &net.params);
    // The first record starts after the 20-byte header and the one input axis (4 bytes): kind,
    // activation, then the flags byte: use_bias (bit 0), frozen (bit 1), kernel constraint
    // (bit 2).
    assert_eq!(bytes[24..27], [1, 1, 0b0111]);
    let b = Blob::parse(&bytes).unwrap();
    let views: Vec<_> = b.layers().collect();
    assert_eq!((views[0].training, views[0].use_bias), (frozen, true));
    assert_eq!(views[1].training, TrainingFlags::NONE);
    // The weights load whatever the training flags say.
    let mut other = w1();
    b.load_params(&mut other.params).unwrap();
    assert_eq!(bits(&other.params), bits(&net.params));
    // A flag bit the format does not define (4 to 7), under a valid checksum, is refused.
    for bit in 4..8 {
        let mut c = bytes.clone();
        c[26] |= 1 << bit;
        let body = c.len() - 4;
        let crc = blob::crc32(&c[..body]);
        c[body..].copy_from_slice(&crc.to_le_bytes());
        match Blob::parse(&c) {
            Err(Error::CorruptBlob { offset, reason }) => {
                assert_eq!(offset, 26, "bit {bit}: {reason}")
            }
            other => panic!("flag bit {bit}: {other:?}"),
        }
    }
}
