//! `MFW1`: a trained model's weights (and what a device needs to use them) as bytes — the one
//! definition of the format, written by the std runtime's `microfit export` and read here, on
//! any target, from flash or a radio packet, without allocation.
//!
//! # Layout (version 1; every integer and float little-endian)
//! ```text
//! magic        4 bytes  b"MFW1"
//! version      u16      1
//! layer_count  u16      L
//! input_len    u32      values per input sample (after flattening)
//! output_len   u32      values per output
//! input_rank   u8       R
//! task         u8       0 regression, 1 classification
//! n_classes    u16      0 for regression
//! input_shape  u32 × R  channels last; their product is input_len
//! L layer records:
//!   kind        u8   1 dense, 2 conv, 3 max pooling, 4 average pooling, 5 flatten, 6 dropout
//!                    (dropout, the noise layers and ActivityRegularization: the identity at
//!                    inference)
//!   activation  u8   0 linear, 1 relu, 2 sigmoid, 3 tanh, 4 softmax, 5 leaky_relu (0 if none)
//!   flags       u8   bit 0: use_bias; bits 1 to 3: training-only settings (TrainingFlags:
//!                    frozen, a kernel constraint, a bias constraint; inference ignores them);
//!                    bits 4 to 7: 0
//!   spatial     u8   S ≤ 3: spatial axes of a conv or pooling layer (0 otherwise)
//!   act_param   f32  leaky_relu's negative slope (0 otherwise)
//!   output_len  u32  values out of the layer; the last layer's is output_len
//!   S × 7 u32        per spatial axis: kernel (or pool) size, stride, dilation, pad before,
//!                    pad after, input size, output size
//!   if S > 0: in_channels u32, out_channels u32
//!   tensors     u8   T
//!   T × (rank u8, rank × u32)   the shapes of the layer's tensors (kernel, then bias)
//! scaler       u32 n (= input_len), f32 × n offsets, f32 × n scales: x' = (x − offset) · scale
//! weights      u32 count (= Σ of the tensor sizes), f32 × count: every tensor in Keras
//!              variable order, row-major (Dense kernel [in][out], conv kernel [k…][cin][cout])
//! crc32        u32      CRC-32 (IEEE 802.3, as zlib's `crc32`) of every byte before it
//! ```
//!
//! [`Blob::parse`] checks all of it — magic, version, the CRC, every length against the bytes
//! there are and against each other — before anything is read, and answers
//! [`Error::CorruptBlob`] (with the byte offset) for anything else: a damaged or truncated blob
//! is never half-loaded. [`write()`] is the writer (the std runtime's export calls it).
//!
//! ```
//! use microfit_core::blob::{self, Blob, BlobSpec, Kind, LayerRecord};
//! use microfit_core::prelude::*;
//!
//! type W1 = (Dense<4, 16>, Dense<16, 3>);
//! let net: Network<W1> = Network::new(
//!     (Dense::new(Activation::Relu), Dense::new(Activation::Softmax)),
//!     42,
//! )?;
//! // The tensor shapes of each layer (kernel, bias), Keras layout.
//! let (hidden, out): ([&[u32]; 2], [&[u32]; 2]) = ([&[4, 16], &[16]], [&[16, 3], &[3]]);
//! let layers = [
//!     LayerRecord::dense(Activation::Relu, true, 16, &hidden),
//!     LayerRecord::dense(Activation::Softmax, true, 3, &out),
//! ];
//! let spec = BlobSpec {
//!     input_shape: &[4],
//!     classification: true,
//!     n_classes: 3,
//!     layers: &layers,
//!     scaler_offset: &[0.0; 4],
//!     scaler_scale: &[1.0; 4],
//! };
//! let mut bytes = [0u8; 1024];
//! let n = blob::write_to_slice(&spec, &net.params, &mut bytes)?;
//!
//! // On the device: check everything, then load the weights into a network of that type.
//! let blob = Blob::parse(&bytes[..n])?;
//! assert_eq!((blob.input_len(), blob.output_len(), blob.layer_count()), (4, 3, 2));
//! let mut on_device: Network<W1> = Network::new(
//!     (Dense::new(Activation::Relu), Dense::new(Activation::Softmax)),
//!     0,
//! )?;
//! blob.load_params(&mut on_device.params)?;
//! assert_eq!(on_device.params, net.params);
//! assert!(Blob::parse(&bytes[..n - 1]).is_err()); // truncated
//! # Ok::<(), microfit_core::Error>(())
//! ```

use crate::activation::Activation;
use crate::error::{BlobFault, Error, ShapeOf};
use crate::params::Params;

/// The first four bytes of a blob.
pub const MAGIC: [u8; 4] = *b"MFW1";
/// The format version this module reads and writes.
pub const VERSION: u16 = 1;
/// Bytes before the input shape: magic, version, layer count, input and output lengths, input
/// rank, task, class count.
const HEADER: usize = 4 + 2 + 2 + 4 + 4 + 1 + 1 + 2;

/// Layer kinds (the record's `kind` byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kind {
    /// `Dense`.
    Dense = 1,
    /// `Conv1D`, `Conv2D`, `Conv3D` (the number of spatial axes tells which).
    Conv = 2,
    /// Max pooling.
    MaxPooling = 3,
    /// Average pooling.
    AveragePooling = 4,
    /// `Flatten` (the identity on the row-major buffer).
    Flatten = 5,
    /// `Dropout` (the identity at inference); also every layer that is the identity at inference
    /// (the noise layers, `ActivityRegularization`), as the std runtime's export writes them.
    Dropout = 6,
}

impl Kind {
    /// The kind of a record's byte.
    pub fn from_code(b: u8) -> Option<Self> {
        Some(match b {
            1 => Kind::Dense,
            2 => Kind::Conv,
            3 => Kind::MaxPooling,
            4 => Kind::AveragePooling,
            5 => Kind::Flatten,
            6 => Kind::Dropout,
            _ => return None,
        })
    }
}

/// An activation's `(code, parameter)` in a record.
///
/// ```
/// use microfit_core::{Activation, blob};
/// assert_eq!(blob::activation_code(Activation::LeakyRelu(0.2)), (5, 0.2));
/// assert_eq!(blob::activation_from_code(5, 0.2), Some(Activation::LeakyRelu(0.2)));
/// ```
pub fn activation_code(a: Activation) -> (u8, f32) {
    match a {
        Activation::Linear => (0, 0.0),
        Activation::Relu => (1, 0.0),
        Activation::Sigmoid => (2, 0.0),
        Activation::Tanh => (3, 0.0),
        Activation::Softmax => (4, 0.0),
        Activation::LeakyRelu(s) => (5, s),
    }
}

/// The activation of a record's `(code, parameter)`; `None` for an unknown code.
pub fn activation_from_code(code: u8, param: f32) -> Option<Activation> {
    Some(match code {
        0 => Activation::Linear,
        1 => Activation::Relu,
        2 => Activation::Sigmoid,
        3 => Activation::Tanh,
        4 => Activation::Softmax,
        5 => Activation::LeakyRelu(param),
        _ => return None,
    })
}

/// One spatial axis of a conv or pooling layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Axis {
    /// Kernel (or pool) size.
    pub kernel: u32,
    /// Stride.
    pub stride: u32,
    /// Dilation.
    pub dilation: u32,
    /// Zero padding before.
    pub pad_before: u32,
    /// Zero padding after.
    pub pad_after: u32,
    /// Input size.
    pub input: u32,
    /// Output size.
    pub output: u32,
}

impl Axis {
    fn words(&self) -> [u32; 7] {
        [
            self.kernel,
            self.stride,
            self.dilation,
            self.pad_before,
            self.pad_after,
            self.input,
            self.output,
        ]
    }
}

/// A layer's training-only settings: bits 1 to 3 of its record's flags byte. Inference (and
/// [`Blob::load_params`]) ignores them; a fine-tuning device reads them to leave a layer alone or
/// to apply its constraints after each step.
///
/// ```
/// use microfit_core::blob::TrainingFlags;
/// let t = TrainingFlags { frozen: true, kernel_constraint: false, bias_constraint: true };
/// assert_eq!(t.bits(), 0b1010);
/// assert_eq!(TrainingFlags::from_bits(0b1011), t); // bit 0 (use_bias) is not one of them
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TrainingFlags {
    /// Keras `trainable = false` (bit 1).
    pub frozen: bool,
    /// The layer has a kernel constraint (bit 2).
    pub kernel_constraint: bool,
    /// The layer has a bias constraint (bit 3).
    pub bias_constraint: bool,
}

impl TrainingFlags {
    /// No training-only setting: a trainable layer without constraints.
    pub const NONE: Self = TrainingFlags {
        frozen: false,
        kernel_constraint: false,
        bias_constraint: false,
    };

    /// The settings as flag bits 1 to 3 (bit 0, `use_bias`, clear).
    pub fn bits(self) -> u8 {
        (u8::from(self.frozen) << 1)
            | (u8::from(self.kernel_constraint) << 2)
            | (u8::from(self.bias_constraint) << 3)
    }

    /// The settings in a flags byte (bits 1 to 3; the others are not read).
    pub fn from_bits(flags: u8) -> Self {
        TrainingFlags {
            frozen: flags & 0b0010 != 0,
            kernel_constraint: flags & 0b0100 != 0,
            bias_constraint: flags & 0b1000 != 0,
        }
    }
}

/// The flag bits a record may set: `use_bias` and [`TrainingFlags`].
const KNOWN_FLAGS: u8 = 0b1111;

/// One layer record, to write ([`write()`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerRecord<'a> {
    /// Kind.
    pub kind: Kind,
    /// Activation (`Linear` for layers without one).
    pub activation: Activation,
    /// Keras `use_bias`.
    pub use_bias: bool,
    /// Training-only settings (flag bits 1 to 3).
    pub training: TrainingFlags,
    /// Values out of the layer.
    pub output_len: u32,
    /// The spatial axes of a conv or pooling layer (empty otherwise, at most 3).
    pub axes: &'a [Axis],
    /// Input and output channels of a conv or pooling layer (written when `axes` is not
    /// empty).
    pub channels: (u32, u32),
    /// The shapes of the layer's tensors, in Keras variable order.
    pub tensor_shapes: &'a [&'a [u32]],
}

impl<'a> LayerRecord<'a> {
    /// A Dense layer's record (trainable, without constraints).
    pub fn dense(
        activation: Activation,
        use_bias: bool,
        output_len: u32,
        tensor_shapes: &'a [&'a [u32]],
    ) -> Self {
        LayerRecord {
            kind: Kind::Dense,
            activation,
            use_bias,
            training: TrainingFlags::NONE,
            output_len,
            axes: &[],
            channels: (0, 0),
            tensor_shapes,
        }
    }
}

/// Everything a blob says besides the weights, to write ([`write()`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlobSpec<'a> {
    /// The input shape (channels last).
    pub input_shape: &'a [u32],
    /// Classification (`true`) or regression.
    pub classification: bool,
    /// Number of classes (0 for regression).
    pub n_classes: u16,
    /// The layers.
    pub layers: &'a [LayerRecord<'a>],
    /// The scaler's offsets, one per input value.
    pub scaler_offset: &'a [f32],
    /// The scaler's multipliers, one per input value.
    pub scaler_scale: &'a [f32],
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`), four bits at a time from a 16-entry
/// table (64 bytes of flash).
#[derive(Debug, Clone, Copy)]
struct Crc(u32);

const CRC_TABLE: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 4 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

impl Crc {
    fn new() -> Self {
        Crc(!0)
    }
    fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c ^= u32::from(b);
            c = (c >> 4) ^ CRC_TABLE[(c & 15) as usize];
            c = (c >> 4) ^ CRC_TABLE[(c & 15) as usize];
        }
        self.0 = c;
    }
    fn finish(self) -> u32 {
        !self.0
    }
}

/// The CRC-32 of `bytes` (IEEE 802.3, as zlib's `crc32`; the blob's checksum).
///
/// ```
/// assert_eq!(microfit_core::blob::crc32(b"123456789"), 0xcbf4_3926);
/// ```
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc::new();
    c.update(bytes);
    c.finish()
}

/// `found` is beyond the format's `limit` for `what` (a length that does not fit its field).
fn too_big(what: ShapeOf, limit: u32, found: impl TryInto<u32>) -> Error {
    Error::ShapeMismatch {
        what,
        expected: limit,
        found: found.try_into().unwrap_or(u32::MAX),
    }
}

fn u32_of(v: usize, what: ShapeOf) -> Result<u32, Error> {
    u32::try_from(v).map_err(|_| too_big(what, u32::MAX, v))
}

/// Writes the blob of `spec` with the weights `weights` (in Keras variable order) through
/// `out`, which receives the bytes in order; returns how many were written. Checks what the
/// format needs: at most 65,535 layers, 255 tensors per layer, 3 spatial axes, a scaler of one
/// offset and one multiplier per input value, and the weights' tensors as many and as long as
/// the records' shapes say.
///
/// # Errors
/// [`Error::ShapeMismatch`] naming what does not fit or disagree.
pub fn write<P: Params>(
    spec: &BlobSpec<'_>,
    weights: &P,
    out: &mut impl FnMut(&[u8]),
) -> Result<usize, Error> {
    let mut w = Writer {
        out,
        crc: Crc::new(),
        len: 0,
    };
    let layers = u16::try_from(spec.layers.len())
        .map_err(|_| too_big(ShapeOf::LayerCount, u16::MAX.into(), spec.layers.len()))?;
    let rank = u8::try_from(spec.input_shape.len())
        .map_err(|_| too_big(ShapeOf::InputRank, u8::MAX.into(), spec.input_shape.len()))?;
    let mut in_len: u64 = 1;
    for &d in spec.input_shape {
        in_len = in_len.saturating_mul(u64::from(d));
    }
    let in_len =
        u32::try_from(in_len).map_err(|_| too_big(ShapeOf::InputLength, u32::MAX, in_len))?;
    let out_len = spec.layers.last().map_or(in_len, |l| l.output_len);
    w.put(&MAGIC);
    w.put(&VERSION.to_le_bytes());
    w.put(&layers.to_le_bytes());
    w.put(&in_len.to_le_bytes());
    w.put(&out_len.to_le_bytes());
    w.put(&[rank, u8::from(spec.classification)]);
    w.put(&spec.n_classes.to_le_bytes());
    for &d in spec.input_shape {
        w.put(&d.to_le_bytes());
    }
    let mut tensor = 0;
    for l in spec.layers {
        let spatial = u8::try_from(l.axes.len())
            .ok()
            .filter(|&s| s <= 3)
            .ok_or(too_big(ShapeOf::SpatialAxes, 3, l.axes.len()))?;
        let (code, param) = activation_code(l.activation);
        let flags = u8::from(l.use_bias) | l.training.bits();
        w.put(&[l.kind as u8, code, flags, spatial]);
        w.put(&param.to_le_bytes());
        w.put(&l.output_len.to_le_bytes());
        for a in l.axes {
            for v in a.words() {
                w.put(&v.to_le_bytes());
            }
        }
        if spatial > 0 {
            w.put(&l.channels.0.to_le_bytes());
            w.put(&l.channels.1.to_le_bytes());
        }
        let nt = u8::try_from(l.tensor_shapes.len())
            .map_err(|_| too_big(ShapeOf::LayerTensors, u8::MAX.into(), l.tensor_shapes.len()))?;
        w.put(&[nt]);
        for s in l.tensor_shapes {
            let r = u8::try_from(s.len())
                .map_err(|_| too_big(ShapeOf::TensorRank, u8::MAX.into(), s.len()))?;
            w.put(&[r]);
            let mut n: u64 = 1;
            for &d in *s {
                w.put(&d.to_le_bytes());
                n = n.saturating_mul(u64::from(d));
            }
            let found = weights.tensor(tensor).len();
            if tensor >= weights.tensor_count() || n != found as u64 {
                return Err(Error::ShapeMismatch {
                    what: ShapeOf::WeightTensor,
                    expected: u32::try_from(n).unwrap_or(u32::MAX),
                    found: found as u32,
                });
            }
            tensor += 1;
        }
    }
    if tensor != weights.tensor_count() {
        return Err(Error::ShapeMismatch {
            what: ShapeOf::WeightTensors,
            expected: tensor as u32,
            found: weights.tensor_count() as u32,
        });
    }
    for (s, what) in [
        (spec.scaler_offset, ShapeOf::ScalerOffsets),
        (spec.scaler_scale, ShapeOf::ScalerMultipliers),
    ] {
        if s.len() != in_len as usize {
            return Err(Error::ShapeMismatch {
                what,
                expected: in_len,
                found: s.len() as u32,
            });
        }
    }
    w.put(&in_len.to_le_bytes());
    for v in spec.scaler_offset.iter().chain(spec.scaler_scale) {
        w.put(&v.to_le_bytes());
    }
    w.put(&u32_of(weights.len(), ShapeOf::WeightCount)?.to_le_bytes());
    for i in 0..weights.tensor_count() {
        for v in weights.tensor(i) {
            w.put(&v.to_le_bytes());
        }
    }
    let crc = w.crc.finish();
    (w.out)(&crc.to_le_bytes());
    Ok(w.len + 4)
}

/// [`write()`] into `buf`; returns the blob's length.
///
/// # Errors
/// As [`write()`]; [`Error::ShapeMismatch`] (`"blob buffer"`) when `buf` is too small.
pub fn write_to_slice<P: Params>(
    spec: &BlobSpec<'_>,
    weights: &P,
    buf: &mut [u8],
) -> Result<usize, Error> {
    let mut at = 0usize;
    let mut overflow = false;
    let n = write(spec, weights, &mut |b: &[u8]| {
        match buf.get_mut(at..at + b.len()) {
            Some(d) => d.copy_from_slice(b),
            None => overflow = true,
        }
        at += b.len();
    })?;
    if overflow {
        return Err(Error::ShapeMismatch {
            what: ShapeOf::BlobBuffer,
            expected: u32_of(n, ShapeOf::BlobLength)?,
            found: buf.len() as u32,
        });
    }
    Ok(n)
}

struct Writer<'o, F> {
    out: &'o mut F,
    crc: Crc,
    len: usize,
}

impl<F: FnMut(&[u8])> Writer<'_, F> {
    fn put(&mut self, b: &[u8]) {
        self.crc.update(b);
        self.len += b.len();
        (self.out)(b);
    }
}

/// A bounds-checked little-endian reader over a blob's bytes (before the CRC).
#[derive(Debug, Clone)]
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn corrupt(&self, reason: BlobFault) -> Error {
        Error::CorruptBlob {
            offset: self.pos as u32,
            reason,
        }
    }
    fn take(&mut self, n: usize, what: BlobFault) -> Result<&'a [u8], Error> {
        let s = self
            .pos
            .checked_add(n)
            .and_then(|end| self.b.get(self.pos..end))
            .ok_or(self.corrupt(what))?;
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: BlobFault) -> Result<u8, Error> {
        Ok(self.take(1, what)?.first().copied().unwrap_or(0))
    }
    fn u16(&mut self, what: BlobFault) -> Result<u16, Error> {
        let mut a = [0u8; 2];
        a.copy_from_slice(self.take(2, what)?);
        Ok(u16::from_le_bytes(a))
    }
    fn u32(&mut self, what: BlobFault) -> Result<u32, Error> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(a))
    }
    fn f32(&mut self, what: BlobFault) -> Result<f32, Error> {
        Ok(f32::from_bits(self.u32(what)?))
    }
}

/// A layer record of a parsed blob ([`Blob::layers`]).
#[derive(Debug, Clone)]
pub struct LayerView<'a> {
    /// Kind.
    pub kind: Kind,
    /// Activation.
    pub activation: Activation,
    /// Keras `use_bias`.
    pub use_bias: bool,
    /// Training-only settings (flag bits 1 to 3).
    pub training: TrainingFlags,
    /// Values out of the layer.
    pub output_len: u32,
    /// Number of spatial axes (conv and pooling; 0 otherwise).
    pub spatial: u8,
    /// Input and output channels (conv and pooling; 0 otherwise).
    pub channels: (u32, u32),
    /// Number of tensors.
    pub tensors: u8,
    /// The record's bytes from its first axis (checked by [`Blob::parse`]).
    rest: &'a [u8],
}

impl LayerView<'_> {
    /// Spatial axis `i` (`i < spatial`).
    pub fn axis(&self, i: usize) -> Option<Axis> {
        if i >= usize::from(self.spatial) {
            return None;
        }
        let mut r = Reader {
            b: self.rest,
            pos: i * 28,
        };
        let mut v = [0u32; 7];
        for x in &mut v {
            *x = r.u32(BlobFault::TruncatedLayerGeometry).ok()?;
        }
        Some(Axis {
            kernel: v[0],
            stride: v[1],
            dilation: v[2],
            pad_before: v[3],
            pad_after: v[4],
            input: v[5],
            output: v[6],
        })
    }

    /// The number of values of tensor `t` (`t < tensors`) and its rank.
    pub fn tensor_len(&self, t: usize) -> Option<(u64, u8)> {
        if t >= usize::from(self.tensors) {
            return None;
        }
        let mut r = self.tensor_reader();
        for k in 0..=t {
            let rank = r.u8(BlobFault::TruncatedTensorShape).ok()?;
            let mut n = 1u64;
            for _ in 0..rank {
                n = n.saturating_mul(u64::from(r.u32(BlobFault::TruncatedTensorShape).ok()?));
            }
            if k == t {
                return Some((n, rank));
            }
        }
        None
    }

    /// Dimension `d` of tensor `t`.
    pub fn tensor_dim(&self, t: usize, d: usize) -> Option<u32> {
        let mut r = self.tensor_reader();
        for k in 0..usize::from(self.tensors) {
            let rank = usize::from(r.u8(BlobFault::TruncatedTensorShape).ok()?);
            for i in 0..rank {
                let v = r.u32(BlobFault::TruncatedTensorShape).ok()?;
                if k == t && i == d {
                    return Some(v);
                }
            }
        }
        None
    }

    fn tensor_reader(&self) -> Reader<'_> {
        let axes = usize::from(self.spatial) * 28 + if self.spatial > 0 { 8 } else { 0 };
        Reader {
            b: self.rest,
            pos: axes + 1,
        }
    }
}

/// A checked `MFW1` blob, borrowed (see the [module docs](self)).
#[derive(Debug, Clone, Copy)]
pub struct Blob<'a> {
    body: &'a [u8],
    version: u16,
    layer_count: u16,
    input_len: u32,
    output_len: u32,
    rank: u8,
    classification: bool,
    n_classes: u16,
    scaler_at: usize,
    weights_at: usize,
    weight_count: u32,
}

impl<'a> Blob<'a> {
    /// Checks `bytes` — magic, version, CRC, and every length — and gives a view of them.
    ///
    /// # Errors
    /// [`Error::CorruptBlob`] with the offset of the first problem. Never panics, whatever the
    /// bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let at = |offset: usize, reason| Error::CorruptBlob {
            offset: offset as u32,
            reason,
        };
        if bytes.get(..4) != Some(&MAGIC[..]) {
            return Err(at(0, BlobFault::Magic));
        }
        let mut r = Reader { b: bytes, pos: 4 };
        let version = r.u16(BlobFault::TruncatedHeader)?;
        if version != VERSION {
            return Err(at(4, BlobFault::Version));
        }
        if bytes.len() < HEADER + 4 {
            return Err(at(bytes.len(), BlobFault::TruncatedHeader));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        let mut crc = [0u8; 4];
        crc.copy_from_slice(tail);
        if crc32(body) != u32::from_le_bytes(crc) {
            return Err(at(body.len(), BlobFault::Checksum));
        }
        let mut r = Reader { b: body, pos: 6 };
        let layer_count = r.u16(BlobFault::TruncatedHeader)?;
        let input_len = r.u32(BlobFault::TruncatedHeader)?;
        let output_len = r.u32(BlobFault::TruncatedHeader)?;
        let rank = r.u8(BlobFault::TruncatedHeader)?;
        let task = r.u8(BlobFault::TruncatedHeader)?;
        if task > 1 {
            return Err(r.corrupt(BlobFault::Task));
        }
        let n_classes = r.u16(BlobFault::TruncatedHeader)?;
        let mut n: u64 = 1;
        for _ in 0..rank {
            n = n.saturating_mul(u64::from(r.u32(BlobFault::TruncatedInputShape)?));
        }
        if n != u64::from(input_len) {
            return Err(r.corrupt(BlobFault::InputShapeLength));
        }
        let mut weights: u64 = 0;
        let mut last_out = input_len;
        for _ in 0..layer_count {
            // A bad byte of the record's head is named by its own offset.
            let head = r.pos;
            let kind = r.u8(BlobFault::TruncatedLayerRecord)?;
            if Kind::from_code(kind).is_none() {
                return Err(at(head, BlobFault::LayerKind));
            }
            let act = r.u8(BlobFault::TruncatedLayerRecord)?;
            let flags = r.u8(BlobFault::TruncatedLayerRecord)?;
            let spatial = r.u8(BlobFault::TruncatedLayerRecord)?;
            let param = r.f32(BlobFault::TruncatedLayerRecord)?;
            if activation_from_code(act, param).is_none() {
                return Err(at(head + 1, BlobFault::Activation));
            }
            if flags & !KNOWN_FLAGS != 0 {
                return Err(at(head + 2, BlobFault::LayerFlags));
            }
            if spatial > 3 {
                return Err(at(head + 3, BlobFault::TooManyAxes));
            }
            last_out = r.u32(BlobFault::TruncatedLayerRecord)?;
            let axes = usize::from(spatial) * 28 + if spatial > 0 { 8 } else { 0 };
            r.take(axes, BlobFault::TruncatedLayerGeometry)?;
            let nt = r.u8(BlobFault::TruncatedLayerRecord)?;
            for _ in 0..nt {
                let rk = r.u8(BlobFault::TruncatedTensorShape)?;
                let mut len: u64 = 1;
                for _ in 0..rk {
                    len = len.saturating_mul(u64::from(r.u32(BlobFault::TruncatedTensorShape)?));
                }
                weights = weights.saturating_add(len);
            }
        }
        if last_out != output_len {
            return Err(r.corrupt(BlobFault::OutputLength));
        }
        let scaler_at = r.pos;
        if r.u32(BlobFault::TruncatedScaler)? != input_len {
            return Err(r.corrupt(BlobFault::ScalerLength));
        }
        let scaler = (input_len as usize)
            .checked_mul(8)
            .ok_or(r.corrupt(BlobFault::TruncatedScaler))?;
        r.take(scaler, BlobFault::TruncatedScaler)?;
        let weight_count = r.u32(BlobFault::TruncatedWeights)?;
        if u64::from(weight_count) != weights {
            return Err(r.corrupt(BlobFault::WeightCount));
        }
        let weights_at = r.pos;
        let bytes_left = body.len() - weights_at;
        if (bytes_left / 4) as u64 != weights || !bytes_left.is_multiple_of(4) {
            return Err(r.corrupt(BlobFault::WeightsLength));
        }
        Ok(Blob {
            body,
            version,
            layer_count,
            input_len,
            output_len,
            rank,
            classification: task == 1,
            n_classes,
            scaler_at,
            weights_at,
            weight_count,
        })
    }

    /// The format version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Number of layer records.
    pub fn layer_count(&self) -> usize {
        usize::from(self.layer_count)
    }

    /// Values per input sample.
    pub fn input_len(&self) -> usize {
        self.input_len as usize
    }

    /// Values per output.
    pub fn output_len(&self) -> usize {
        self.output_len as usize
    }

    /// Classification (`true`) or regression.
    pub fn classification(&self) -> bool {
        self.classification
    }

    /// Number of classes (0 for regression).
    pub fn n_classes(&self) -> usize {
        usize::from(self.n_classes)
    }

    /// The input shape's axes (channels last).
    pub fn input_shape(&self) -> impl Iterator<Item = u32> + '_ {
        let mut r = Reader {
            b: self.body,
            pos: HEADER,
        };
        (0..self.rank).map_while(move |_| r.u32(BlobFault::TruncatedLayerRecord).ok())
    }

    /// The layer records, in order.
    pub fn layers(&self) -> impl Iterator<Item = LayerView<'a>> + '_ {
        let mut r = Reader {
            b: self.body,
            pos: HEADER + usize::from(self.rank) * 4,
        };
        (0..self.layer_count).map_while(move |_| {
            let kind = Kind::from_code(r.u8(BlobFault::TruncatedLayerRecord).ok()?)?;
            let act = r.u8(BlobFault::TruncatedLayerRecord).ok()?;
            let flags = r.u8(BlobFault::TruncatedLayerRecord).ok()?;
            let spatial = r.u8(BlobFault::TruncatedLayerRecord).ok()?;
            let activation =
                activation_from_code(act, r.f32(BlobFault::TruncatedLayerRecord).ok()?)?;
            let output_len = r.u32(BlobFault::TruncatedLayerRecord).ok()?;
            let start = r.pos;
            r.take(usize::from(spatial) * 28, BlobFault::TruncatedLayerRecord)
                .ok()?;
            let channels = if spatial > 0 {
                (
                    r.u32(BlobFault::TruncatedLayerRecord).ok()?,
                    r.u32(BlobFault::TruncatedLayerRecord).ok()?,
                )
            } else {
                (0, 0)
            };
            let tensors = r.u8(BlobFault::TruncatedLayerRecord).ok()?;
            for _ in 0..tensors {
                let rank = r.u8(BlobFault::TruncatedLayerRecord).ok()?;
                r.take(usize::from(rank) * 4, BlobFault::TruncatedLayerRecord)
                    .ok()?;
            }
            Some(LayerView {
                kind,
                activation,
                use_bias: flags & 1 != 0,
                training: TrainingFlags::from_bits(flags),
                output_len,
                spatial,
                channels,
                tensors,
                rest: self.body.get(start..r.pos)?,
            })
        })
    }

    /// The scaler's offsets and multipliers for input value `i`: `x' = (x − offset)·scale`.
    pub fn scaler(&self, i: usize) -> Option<(f32, f32)> {
        if i >= self.input_len() {
            return None;
        }
        let at = self.scaler_at + 4;
        let word = |k: usize| {
            let mut r = Reader {
                b: self.body,
                pos: at + 4 * k,
            };
            r.f32(BlobFault::TruncatedLayerRecord).ok()
        };
        Some((word(i)?, word(self.input_len() + i)?))
    }

    /// Scales a raw input in place with the blob's scaler (`x' = (x − offset)·scale`, as the std
    /// runtime scaled the training data); values beyond `input_len` are left as they are.
    pub fn scale_input(&self, x: &mut [f32]) {
        for (i, v) in x.iter_mut().enumerate() {
            if let Some((o, s)) = self.scaler(i) {
                *v = (*v - o) * s;
            }
        }
    }

    /// Number of weights.
    pub fn weight_count(&self) -> usize {
        self.weight_count as usize
    }

    /// The weights, every tensor in Keras variable order.
    pub fn weights(&self) -> impl Iterator<Item = f32> + '_ {
        self.body
            .get(self.weights_at..)
            .unwrap_or(&[])
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// Copies the weights into `params` — a typed network's `Params`, whose tensors must be as
    /// many and as long as the blob's, in order — or leaves `params` untouched.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the blob holds another number of tensors or values.
    pub fn load_params<P: Params>(&self, params: &mut P) -> Result<(), Error> {
        let mut t = 0;
        for l in self.layers() {
            for k in 0..usize::from(l.tensors) {
                let n = l.tensor_len(k).map_or(u64::MAX, |(n, _)| n);
                let found = params.tensor(t).len();
                if t >= params.tensor_count() || n != found as u64 {
                    return Err(Error::ShapeMismatch {
                        what: ShapeOf::WeightTensor,
                        expected: found as u32,
                        found: u32::try_from(n).unwrap_or(u32::MAX),
                    });
                }
                t += 1;
            }
        }
        if t != params.tensor_count() {
            return Err(Error::ShapeMismatch {
                what: ShapeOf::WeightTensors,
                expected: params.tensor_count() as u32,
                found: t as u32,
            });
        }
        let mut w = self.weights();
        for i in 0..params.tensor_count() {
            for (d, v) in params.tensor_mut(i).iter_mut().zip(&mut w) {
                *d = v;
            }
        }
        Ok(())
    }
}
