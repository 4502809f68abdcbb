//! Export to firmware: a binary weight blob (`model.bin`) and Rust source (`model.rs`).
//!
//! # `model.bin` (format `MFW1`, version 1, all integers and floats little-endian)
//! ```text
//! magic        4 bytes  b"MFW1"
//! version      u16      1
//! layer_count  u16      L
//! input_len    u32      values per input sample (after flattening)
//! output_len   u32      values per output
//! input_rank   u8       R
//! task         u8       0 regression, 1 classification
//! n_classes    u16      0 for regression
//! input_shape  u32 × R  channels last
//! L layer records:
//!   kind        u8   1 dense, 2 conv, 3 max pooling, 4 average pooling, 5 flatten, 6 dropout
//!                    (dropout, the noise layers and ActivityRegularization: the identity at
//!                    inference)
//!   activation  u8   0 linear, 1 relu, 2 sigmoid, 3 tanh, 4 softmax, 5 leaky_relu (0 if none)
//!   flags       u8   bit 0: use_bias; bit 1: frozen (`trainable = false`); bit 2: a kernel
//!                    constraint, bit 3: a bias constraint (applied in training only: the
//!                    blob's inference does not read bits 1 to 3)
//!   spatial     u8   S: spatial axes of a conv/pooling layer (0 otherwise)
//!   act_param   f32  leaky_relu's negative slope (0 otherwise)
//!   output_len  u32  values out of the layer
//!   S × 7 u32        per spatial axis: kernel (or pool) size, stride, dilation, pad before,
//!                    pad after, input size, output size
//!   if S > 0: in_channels u32, out_channels u32
//!   tensors     u8   T
//!   T × (rank u8, rank × u32)   the shapes of the layer's tensors (kernel then bias)
//! scaler:      u32 n (= input_len), f32 × n offsets, f32 × n scales: x' = (x - offset) * scale
//! weights:     u32 count, then f32 × count: every tensor in Keras variable order, row-major
//!              (Dense kernel [in][out], conv kernel [k..][cin][cout])
//! crc32        u32      CRC-32 (IEEE) of every byte before it
//! ```
//! [`read_blob`] checks the magic, the version, every length and the CRC, and gives back the
//! exact bits that were written.

use std::fmt;
use std::fmt::Write as _;

use microfit_core::activation::Activation;

use super::schema::{LayerSpec, ModelSpec};
use crate::data::Scaler;
use crate::model::VecParams;

/// Blob magic.
pub const BLOB_MAGIC: [u8; 4] = *b"MFW1";
/// Blob format version.
pub const BLOB_VERSION: u16 = 1;

/// Layer kinds in the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    /// Dense.
    Dense = 1,
    /// Convolution (1 to 3 spatial axes).
    Conv = 2,
    /// Max pooling.
    MaxPooling = 3,
    /// Average pooling.
    AveragePooling = 4,
    /// Flatten (identity on the row-major buffer).
    Flatten = 5,
    /// Dropout (identity at inference).
    Dropout = 6,
}

impl BlobKind {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => BlobKind::Dense,
            2 => BlobKind::Conv,
            3 => BlobKind::MaxPooling,
            4 => BlobKind::AveragePooling,
            5 => BlobKind::Flatten,
            6 => BlobKind::Dropout,
            _ => return None,
        })
    }
}

/// The geometry of one spatial axis of a conv or pooling layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisGeometry {
    /// Kernel or pool size.
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

/// One layer of a blob.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobLayer {
    /// Kind.
    pub kind: BlobKind,
    /// Activation code (see the module docs).
    pub activation: u8,
    /// Leaky ReLU slope.
    pub act_param: f32,
    /// Whether the bias is used.
    pub use_bias: bool,
    /// Values out of the layer.
    pub output_len: u32,
    /// Per spatial axis (conv and pooling).
    pub axes: Vec<AxisGeometry>,
    /// Input channels (conv and pooling).
    pub in_channels: u32,
    /// Output channels (conv and pooling).
    pub out_channels: u32,
    /// Shapes of the layer's tensors.
    pub tensor_shapes: Vec<Vec<u32>>,
}

/// A decoded blob.
#[derive(Debug, Clone, PartialEq)]
pub struct FirmwareBlob {
    /// Format version.
    pub version: u16,
    /// Input shape.
    pub input_shape: Vec<u32>,
    /// Values per input.
    pub input_len: u32,
    /// Values per output.
    pub output_len: u32,
    /// Classification (true) or regression.
    pub classification: bool,
    /// Classes (0 for regression).
    pub n_classes: u16,
    /// The layers.
    pub layers: Vec<BlobLayer>,
    /// Scaler offsets.
    pub scaler_offset: Vec<f32>,
    /// Scaler multipliers.
    pub scaler_scale: Vec<f32>,
    /// Every tensor, in Keras variable order.
    pub tensors: Vec<Vec<f32>>,
}

/// A blob that cannot be written or read.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobError {
    /// Byte offset of the problem (reading), or 0.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "corrupt firmware blob at byte {}: {}",
            self.offset, self.reason
        )
    }
}

impl std::error::Error for BlobError {}

fn activation_code(a: Activation) -> (u8, f32) {
    match a {
        Activation::Linear => (0, 0.0),
        Activation::Relu => (1, 0.0),
        Activation::Sigmoid => (2, 0.0),
        Activation::Tanh => (3, 0.0),
        Activation::Softmax => (4, 0.0),
        Activation::LeakyRelu(s) => (5, s),
        #[allow(unreachable_patterns)]
        _ => (255, 0.0),
    }
}

/// What the blob and the source need besides the weights.
#[derive(Debug, Clone)]
pub struct ExportInput<'a> {
    /// The model.
    pub spec: &'a ModelSpec,
    /// Its weights (names give the layer of each tensor).
    pub weights: &'a VecParams,
    /// Layer names (`dense`, `dense_1`, ...).
    pub layer_names: &'a [String],
    /// The scaler.
    pub scaler: &'a Scaler,
    /// Class names (empty for regression).
    pub class_names: &'a [String],
    /// Feature names.
    pub feature_names: &'a [String],
    /// Classification.
    pub classification: bool,
}

fn to_u32(v: usize, what: &str) -> Result<u32, BlobError> {
    u32::try_from(v).map_err(|_| BlobError {
        offset: 0,
        reason: format!("{what} {v} does not fit in 32 bits"),
    })
}

/// Writes the `MFW1` blob.
///
/// # Errors
/// A [`BlobError`] for a layer the format cannot describe or a size beyond 32 bits.
pub fn write_blob(m: &ExportInput<'_>) -> Result<Vec<u8>, BlobError> {
    let shapes = m.spec.shapes().map_err(|e| BlobError {
        offset: 0,
        reason: e.to_string(),
    })?;
    let mut b = Vec::new();
    b.extend_from_slice(&BLOB_MAGIC);
    b.extend_from_slice(&BLOB_VERSION.to_le_bytes());
    let l = u16::try_from(m.spec.layers.len()).map_err(|_| BlobError {
        offset: 0,
        reason: "too many layers".into(),
    })?;
    b.extend_from_slice(&l.to_le_bytes());
    let in_len: usize = m.spec.input_shape.iter().product();
    let out_len: usize = shapes.last().map_or(0, |s| s.iter().product());
    b.extend_from_slice(&to_u32(in_len, "input length")?.to_le_bytes());
    b.extend_from_slice(&to_u32(out_len, "output length")?.to_le_bytes());
    b.push(m.spec.input_shape.len() as u8);
    b.push(u8::from(m.classification));
    let k = u16::try_from(m.class_names.len()).map_err(|_| BlobError {
        offset: 0,
        reason: "too many classes".into(),
    })?;
    b.extend_from_slice(&k.to_le_bytes());
    for &d in &m.spec.input_shape {
        b.extend_from_slice(&to_u32(d, "input size")?.to_le_bytes());
    }
    let mut in_shape = m.spec.input_shape.clone();
    for (i, layer) in m.spec.layers.iter().enumerate() {
        let name = m.layer_names.get(i).cloned().unwrap_or_default();
        let kind = match layer {
            LayerSpec::Dense { .. } => BlobKind::Dense,
            LayerSpec::Conv1D { .. } | LayerSpec::Conv2D { .. } | LayerSpec::Conv3D { .. } => {
                BlobKind::Conv
            }
            LayerSpec::MaxPooling { .. } => BlobKind::MaxPooling,
            LayerSpec::AveragePooling { .. } => BlobKind::AveragePooling,
            LayerSpec::Flatten => BlobKind::Flatten,
            // Every noise layer and ActivityRegularization is the identity at inference.
            LayerSpec::Dropout { .. }
            | LayerSpec::GaussianNoise { .. }
            | LayerSpec::GaussianDropout { .. }
            | LayerSpec::AlphaDropout { .. }
            | LayerSpec::SpatialDropout1D { .. }
            | LayerSpec::SpatialDropout2D { .. }
            | LayerSpec::SpatialDropout3D { .. }
            | LayerSpec::ActivityRegularization { .. } => BlobKind::Dropout,
            #[allow(unreachable_patterns)]
            other => {
                return Err(BlobError {
                    offset: 0,
                    reason: format!(
                        "layers[{i}]: {} layers are not supported by format MFW1",
                        other.kind()
                    ),
                });
            }
        };
        // Training-only settings, as flag bits 1 to 3 (inference does not read them).
        let toolbox_flags = layer.dense_config().map_or(0u8, |c| {
            (u8::from(!c.trainable) << 1)
                | (u8::from(c.kernel_constraint.is_some()) << 2)
                | (u8::from(c.bias_constraint.is_some()) << 3)
        });
        let (act, param, use_bias) = match layer.dense_config() {
            Some(c) => {
                let (a, p) = activation_code(c.activation);
                (a, p, c.use_bias)
            }
            None => (0, 0.0, false),
        };
        if act == 255 {
            return Err(BlobError {
                offset: 0,
                reason: format!("layers[{i}]: activation not supported by format MFW1"),
            });
        }
        b.push(kind as u8);
        b.push(act);
        b.push(u8::from(use_bias) | toolbox_flags);
        let geo = layer.geometry(i, &in_shape).map_err(|e| BlobError {
            offset: 0,
            reason: e.to_string(),
        })?;
        b.push(geo.as_ref().map_or(0, |g| g.dims() as u8));
        b.extend_from_slice(&param.to_le_bytes());
        let out_layer: usize = shapes[i].iter().product();
        b.extend_from_slice(&to_u32(out_layer, "layer output length")?.to_le_bytes());
        if let Some(g) = &geo {
            // The geometry stores its axes right-aligned in arrays of MAX_SPATIAL_DIMS.
            let first = microfit_core::kernels::conv::MAX_SPATIAL_DIMS - g.dims();
            for axis in first..first + g.dims() {
                let (pb, pa) = g.pads(axis);
                for v in [
                    g.kernel()[axis],
                    g.strides()[axis],
                    g.dilation()[axis],
                    pb,
                    pa,
                    g.input()[axis],
                    g.output()[axis],
                ] {
                    b.extend_from_slice(&to_u32(v, "geometry value")?.to_le_bytes());
                }
            }
            b.extend_from_slice(&to_u32(g.in_channels(), "channels")?.to_le_bytes());
            let out_ch = if kind == BlobKind::Conv {
                g.filters()
            } else {
                g.in_channels()
            };
            b.extend_from_slice(&to_u32(out_ch, "channels")?.to_le_bytes());
        }
        let prefix = format!("{name}/");
        let tensors: Vec<usize> = (0..m.weights.names.len())
            .filter(|&t| m.weights.names[t].starts_with(&prefix))
            .collect();
        b.push(tensors.len() as u8);
        for &t in &tensors {
            let s = &m.weights.shapes[t];
            b.push(s.len() as u8);
            for &d in s {
                b.extend_from_slice(&to_u32(d, "tensor size")?.to_le_bytes());
            }
        }
        in_shape = shapes[i].clone();
    }
    if m.scaler.offset.len() != in_len || m.scaler.scale.len() != in_len {
        return Err(BlobError {
            offset: 0,
            reason: format!(
                "the scaler has {} features, the model input {in_len}",
                m.scaler.offset.len()
            ),
        });
    }
    b.extend_from_slice(&to_u32(in_len, "scaler length")?.to_le_bytes());
    for v in m.scaler.offset.iter().chain(&m.scaler.scale) {
        b.extend_from_slice(&v.to_le_bytes());
    }
    let total: usize = m.weights.tensors.iter().map(Vec::len).sum();
    b.extend_from_slice(&to_u32(total, "weight count")?.to_le_bytes());
    for t in &m.weights.tensors {
        for v in t {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    Ok(b)
}

/// A bounds-checked little-endian reader.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], BlobError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| BlobError {
                offset: self.pos,
                reason: format!(
                    "truncated: {what} needs {n} more bytes, {} left",
                    self.b.len() - self.pos
                ),
            })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, BlobError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, BlobError> {
        let s = self.take(2, what)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, BlobError> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn f32(&mut self, what: &str) -> Result<f32, BlobError> {
        let s = self.take(4, what)?;
        Ok(f32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn err(&self, reason: impl Into<String>) -> BlobError {
        BlobError {
            offset: self.pos,
            reason: reason.into(),
        }
    }
}

/// Reads and checks an `MFW1` blob: magic, version, CRC, and that every length agrees.
///
/// # Errors
/// A [`BlobError`] with the byte offset and what is wrong; never panics, whatever the bytes.
pub fn read_blob(bytes: &[u8]) -> Result<FirmwareBlob, BlobError> {
    let err = |offset: usize, reason: String| BlobError { offset, reason };
    if bytes.len() < 24 {
        return Err(err(
            0,
            format!("only {} bytes, too short for a blob", bytes.len()),
        ));
    }
    if bytes[..4] != BLOB_MAGIC {
        return Err(err(
            0,
            format!(
                "bad magic {:?}, expected \"MFW1\"",
                String::from_utf8_lossy(&bytes[..4])
            ),
        ));
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != BLOB_VERSION {
        return Err(err(
            4,
            format!("version {version} is not supported (expected {BLOB_VERSION})"),
        ));
    }
    let body = &bytes[..bytes.len() - 4];
    let t = &bytes[bytes.len() - 4..];
    let stored = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(err(
            bytes.len() - 4,
            format!("CRC32 mismatch (stored {stored:#010x}, computed {computed:#010x})"),
        ));
    }
    let mut r = Reader { b: body, pos: 6 };
    let n_layers = r.u16("layer count")?;
    let input_len = r.u32("input length")?;
    let output_len = r.u32("output length")?;
    let rank = r.u8("input rank")?;
    let task = r.u8("task")?;
    if task > 1 {
        return Err(r.err(format!("task code {task} is not 0 or 1")));
    }
    let n_classes = r.u16("class count")?;
    let mut input_shape = Vec::new();
    for _ in 0..rank {
        input_shape.push(r.u32("input shape")?);
    }
    let prod = input_shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(u64::from(d)));
    if prod != Some(u64::from(input_len)) {
        return Err(r.err(format!(
            "input shape {input_shape:?} does not hold {input_len} values"
        )));
    }
    let mut layers = Vec::new();
    let mut expected_weights: u64 = 0;
    for i in 0..n_layers {
        let kb = r.u8("layer kind")?;
        let kind =
            BlobKind::from_u8(kb).ok_or_else(|| r.err(format!("layer {i}: unknown kind {kb}")))?;
        let activation = r.u8("activation")?;
        if activation > 5 {
            return Err(r.err(format!("layer {i}: unknown activation {activation}")));
        }
        let flags = r.u8("flags")?;
        let spatial = r.u8("spatial axes")?;
        if spatial > 3 {
            return Err(r.err(format!("layer {i}: {spatial} spatial axes (at most 3)")));
        }
        let act_param = r.f32("activation parameter")?;
        let out = r.u32("layer output length")?;
        let mut axes = Vec::new();
        for _ in 0..spatial {
            axes.push(AxisGeometry {
                kernel: r.u32("kernel size")?,
                stride: r.u32("stride")?,
                dilation: r.u32("dilation")?,
                pad_before: r.u32("padding")?,
                pad_after: r.u32("padding")?,
                input: r.u32("axis input size")?,
                output: r.u32("axis output size")?,
            });
        }
        let (in_channels, out_channels) = if spatial > 0 {
            (r.u32("input channels")?, r.u32("output channels")?)
        } else {
            (0, 0)
        };
        let nt = r.u8("tensor count")?;
        let mut tensor_shapes = Vec::new();
        for _ in 0..nt {
            let rk = r.u8("tensor rank")?;
            let mut s = Vec::new();
            for _ in 0..rk {
                s.push(r.u32("tensor size")?);
            }
            let n = s
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(u64::from(d)))
                .ok_or_else(|| r.err("tensor size overflows"))?;
            expected_weights = expected_weights
                .checked_add(n)
                .ok_or_else(|| r.err("weight count overflows"))?;
            tensor_shapes.push(s);
        }
        layers.push(BlobLayer {
            kind,
            activation,
            act_param,
            use_bias: flags & 1 != 0,
            output_len: out,
            axes,
            in_channels,
            out_channels,
            tensor_shapes,
        });
    }
    if layers.last().map_or(input_len, |l| l.output_len) != output_len {
        return Err(r.err("the last layer's output length differs from the header's"));
    }
    let n = r.u32("scaler length")?;
    if n != input_len {
        return Err(r.err(format!(
            "the scaler has {n} features, the input {input_len}"
        )));
    }
    let mut scaler_offset = Vec::new();
    for _ in 0..n {
        scaler_offset.push(r.f32("scaler offset")?);
    }
    let mut scaler_scale = Vec::new();
    for _ in 0..n {
        scaler_scale.push(r.f32("scaler scale")?);
    }
    let count = r.u32("weight count")?;
    if u64::from(count) != expected_weights {
        return Err(r.err(format!(
            "{count} weights announced, the tensor shapes need {expected_weights}"
        )));
    }
    let left = (body.len() - r.pos) / 4;
    if left as u64 != u64::from(count) || !(body.len() - r.pos).is_multiple_of(4) {
        return Err(r.err(format!(
            "{count} weights announced but {} bytes remain before the CRC",
            body.len() - r.pos
        )));
    }
    let mut tensors = Vec::new();
    for l in &layers {
        for s in &l.tensor_shapes {
            let n: u64 = s.iter().map(|&d| u64::from(d)).product();
            let mut t = Vec::with_capacity(n as usize);
            for _ in 0..n {
                t.push(r.f32("weights")?);
            }
            tensors.push(t);
        }
    }
    Ok(FirmwareBlob {
        version,
        input_shape,
        input_len,
        output_len,
        classification: task == 1,
        n_classes,
        layers,
        scaler_offset,
        scaler_scale,
        tensors,
    })
}

/// `dense_1/kernel` → `DENSE_1_KERNEL`.
pub fn const_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// An `f32` as a Rust literal that parses back to the same bits.
pub fn f32_literal(v: f32) -> String {
    // `{:?}` is the shortest representation that round-trips, and keeps `.0` on whole numbers.
    let s = format!("{v:?}");
    if v.is_finite() { s } else { "0.0".into() }
}

/// The Rust type of a nested array of `f32` with `shape`.
fn array_type(shape: &[usize], elem: &str) -> String {
    shape
        .iter()
        .rev()
        .fold(elem.to_string(), |t, d| format!("[{t}; {d}]"))
}

/// Writes `values` (row-major, `shape`) as a nested array literal.
fn array_literal(out: &mut String, shape: &[usize], values: &[f32], indent: usize) {
    if shape.len() <= 1 {
        out.push('[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&f32_literal(*v));
        }
        out.push(']');
        return;
    }
    let inner: usize = shape[1..].iter().product();
    out.push_str("[\n");
    for chunk in values.chunks(inner.max(1)).take(shape[0]) {
        out.push_str(&" ".repeat(indent + 4));
        array_literal(out, &shape[1..], chunk, indent + 4);
        out.push_str(",\n");
    }
    out.push_str(&" ".repeat(indent));
    out.push(']');
}

fn str_array(name: &str, items: &[String], doc: &str) -> String {
    let lits: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "/// {doc}\npub const {name}: [&str; {}] = [{}];\n",
        items.len(),
        lits.join(", ")
    )
}

/// A dataset to embed in the Rust source (raw, unscaled features).
#[derive(Debug, Clone)]
pub struct EmbeddedData<'a> {
    /// Where it came from.
    pub source: &'a str,
    /// Features, row-major, `n × input_len`.
    pub x: &'a [f32],
    /// Class indices (the model's) for classification.
    pub classes: Option<&'a [u32]>,
    /// Target values for regression.
    pub values: Option<&'a [f32]>,
}

/// Generates `model.rs`: `pub const` arrays for the scaler and every tensor (Keras layout),
/// the names and sizes, and optionally the dataset as `X`/`Y`.
pub fn rust_source(
    m: &ExportInput<'_>,
    model_path: &str,
    data: Option<&EmbeddedData<'_>>,
) -> String {
    let mut s = String::new();
    let in_len: usize = m.spec.input_shape.iter().product();
    let out_len: usize = m
        .spec
        .shapes()
        .ok()
        .and_then(|v| v.last().map(|s| s.iter().product()))
        .unwrap_or(0);
    let _ = writeln!(
        s,
        "// Generated by `microfit export` from {model_path}. Do not edit."
    );
    let _ = writeln!(s, "//");
    let _ = writeln!(s, "// Model: {}", crate::report::describe_model(m.spec));
    let _ = writeln!(
        s,
        "// Scale every input as x' = (x - SCALER_OFFSET[j]) * SCALER_SCALE[j] before the first layer."
    );
    let _ = writeln!(
        s,
        "// Layouts are Keras': Dense kernel [in][out], conv kernel [k..][in_channels][filters], bias [out]."
    );
    let _ = writeln!(
        s,
        "// Every float literal parses back to the exact f32 bits of the trained weights.\n"
    );
    let dims: Vec<String> = m.spec.input_shape.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        s,
        "/// Input shape (channels last).\npub const INPUT_SHAPE: [usize; {}] = [{}];",
        dims.len(),
        dims.join(", ")
    );
    let _ = writeln!(
        s,
        "/// Values per input sample.\npub const N_INPUTS: usize = {in_len};"
    );
    let _ = writeln!(
        s,
        "/// Values per output.\npub const N_OUTPUTS: usize = {out_len};"
    );
    s.push_str(&str_array(
        "FEATURE_NAMES",
        m.feature_names,
        "Feature names, in input order.",
    ));
    if m.classification {
        s.push_str(&str_array(
            "CLASS_NAMES",
            m.class_names,
            "Class names by class index.",
        ));
    }
    let layers: Vec<String> = m
        .spec
        .layers
        .iter()
        .zip(m.layer_names)
        .map(|(l, n)| {
            let act = l.dense_config().map_or(String::new(), |c| {
                format!(", {}", c.activation.keras_name())
            });
            format!("{n}: {}{act}", l.kind())
        })
        .collect();
    s.push_str(&str_array(
        "LAYERS",
        &layers,
        "The layers, input to output.",
    ));
    let _ = writeln!(
        s,
        "/// Scaler offsets (subtracted).\npub const SCALER_OFFSET: [f32; {in_len}] = {};",
        {
            let mut t = String::new();
            array_literal(&mut t, &[in_len], &m.scaler.offset, 0);
            t
        }
    );
    let _ = writeln!(
        s,
        "/// Scaler multipliers (applied after the offset).\npub const SCALER_SCALE: [f32; {in_len}] = {};",
        {
            let mut t = String::new();
            array_literal(&mut t, &[in_len], &m.scaler.scale, 0);
            t
        }
    );
    for ((name, shape), values) in m
        .weights
        .names
        .iter()
        .zip(&m.weights.shapes)
        .zip(&m.weights.tensors)
    {
        let mut lit = String::new();
        array_literal(&mut lit, shape, values, 0);
        let _ = writeln!(
            s,
            "/// `{name}`, shape {shape:?}.\npub const {}: {} = {lit};",
            const_name(name),
            array_type(shape, "f32")
        );
    }
    if let Some(d) = data {
        let n = d.x.len() / in_len.max(1);
        let _ = writeln!(
            s,
            "\n/// Samples embedded from {:?} (raw features: apply the scaler).\npub const N_SAMPLES: usize = {n};",
            d.source
        );
        let mut lit = String::new();
        array_literal(&mut lit, &[n, in_len], d.x, 0);
        let _ = writeln!(
            s,
            "/// Features, one row per sample.\npub const X: [[f32; {in_len}]; {n}] = {lit};"
        );
        if let Some(c) = d.classes {
            let items: Vec<String> = c.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                s,
                "/// Class index of each sample (see CLASS_NAMES).\npub const Y: [u32; {n}] = [{}];",
                items.join(", ")
            );
        }
        if let Some(v) = d.values {
            let mut lit = String::new();
            array_literal(&mut lit, &[n], v, 0);
            let _ = writeln!(
                s,
                "/// Target value of each sample.\npub const Y: [f32; {n}] = {lit};"
            );
        }
    }
    s
}

/// What `firmware/` needs to keep training an exported model on the microcontroller: a
/// **workload file** (`workload.json`, format in `firmware/workload/src/lib.rs`): the model's
/// layers as the schema describes them ([`LayerSpec`]: Dense, conv, pooling, flatten, dropout
/// with their activations, `use_bias` and regularizers), the trained weights as initial weights
/// (`<kind>_<k>/kernel|bias`; `frozen`: the weights of the layers with `trainable: false`,
/// written as frozen layers, their weights constants in the firmware's flash), the optimizer ([`OptimizerConfig`](super::schema::OptimizerConfig):
/// SGD, momentum, Nesterov, Adam, AdamW, a constant or exponentially decaying learning rate,
/// clipping), the loss, the batch size, the epochs and the dataset already scaled. The
/// firmware's build script reads it instead of its bundled workload when
/// `MICROFIT_FW_WORKLOAD` names it, and refuses it there, with the numbers, when the model does
/// not fit the chip.
///
/// The firmware trains batches in file order (no shuffling). Every float is written as the
/// `f64` equal to the `f32` (exact), so the firmware reads the very bits the host trained.
///
/// # Errors
/// The first reason the model or the data cannot be written as a workload file.
pub fn firmware_workload(
    cfg: &super::schema::TrainConfig,
    weights: &VecParams,
    frozen: &VecParams,
    data: &crate::data::Dataset,
    epochs: u32,
    source: &str,
) -> Result<serde_json::Value, String> {
    use crate::data::Target;
    use microfit_core::loss::Loss;
    use serde_json::{Map, Value, json};

    let spec = &cfg.model;
    let n_in = data.n_features();
    let n = data.target.len();
    if n == 0 || data.features.len() != n * n_in {
        return Err("the data has no samples".into());
    }
    if cfg.batch_size == 0 || epochs == 0 {
        return Err("batch size and epochs must be at least 1".into());
    }
    let sample: usize = spec.input_shape.iter().product();
    if sample != n_in {
        return Err(format!(
            "the model's input shape {:?} ({sample} values) does not fit the data ({n_in} features)",
            spec.input_shape
        ));
    }
    let tensor = |shape: &[usize], v: &[f32]| json!({"shape": shape, "data": wide(v)});

    // The layers, and their tensors under the workload's names (`<kind>_<k>`, k counting the
    // layers of that kind), in the model's (Keras') variable order.
    let mut model = Vec::with_capacity(spec.layers.len());
    let mut initial = Map::new();
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    let mut next = weights.tensors.iter().zip(&weights.shapes);
    let mut next_frozen = frozen.tensors.iter().zip(&frozen.shapes);
    for (i, l) in spec.layers.iter().enumerate() {
        model.push(workload_layer(l).map_err(|e| format!("layer {i} ({}): {e}", l.kind()))?);
        let Some(c) = l.dense_config() else { continue };
        let kind = l.kind();
        let k = match counts.iter_mut().find(|(name, _)| *name == kind) {
            Some((_, k)) => {
                *k += 1;
                *k - 1
            }
            None => {
                counts.push((kind, 1));
                0
            }
        };
        let parts: &[&str] = if c.use_bias {
            &["kernel", "bias"]
        } else {
            &["kernel"]
        };
        for part in parts {
            let store = if c.trainable {
                &mut next
            } else {
                &mut next_frozen
            };
            let (v, shape) = store.next().ok_or_else(|| {
                format!("layer {i} ({kind}): its {part} is missing from the weights")
            })?;
            initial.insert(format!("{kind}_{k}/{part}"), tensor(shape, v));
        }
    }
    if next.next().is_some() || next_frozen.next().is_some() {
        return Err("the weights have more tensors than the model's layers".into());
    }
    let out_len: usize = spec
        .shapes()
        .map_err(|e| format!("the model's shapes: {e}"))?
        .last()
        .map_or(n_in, |s| s.iter().product());

    let mut w = Map::new();
    w.insert("name".into(), json!("exported"));
    w.insert("source".into(), json!(source));
    w.insert("x".into(), tensor(&[n, n_in], &data.features));
    if spec.input_shape.len() > 1 {
        w.insert("input_shape".into(), json!(spec.input_shape));
    }
    match &data.target {
        // One-unit binary cross-entropy trains on 0/1 values, as on the host.
        Target::Classes { labels, .. }
            if matches!(cfg.loss, Loss::BinaryCrossentropy { .. }) && out_len == 1 =>
        {
            let y: Vec<f32> = labels.iter().map(|&c| c as f32).collect();
            w.insert("y".into(), tensor(&[n, 1], &y));
        }
        Target::Classes {
            labels,
            class_names,
        } => {
            if class_names.len() > out_len {
                return Err(format!(
                    "the data has {} classes, the model {out_len} outputs",
                    class_names.len()
                ));
            }
            w.insert("labels".into(), json!({"shape": [n], "data": labels}));
            w.insert("classes".into(), json!(out_len));
        }
        Target::Regression { values } => {
            if out_len != 1 {
                return Err(format!(
                    "the data has one target value per sample, the model {out_len} outputs"
                ));
            }
            w.insert("y".into(), tensor(&[n, 1], values));
        }
    }
    w.insert("model".into(), Value::Array(model));
    w.insert("initial_weights".into(), Value::Object(initial));
    w.insert(
        "training".into(),
        workload_training(cfg, epochs).map_err(|e| format!("training: {e}"))?,
    );
    Ok(Value::Object(w))
}

/// Every `f32` as the `f64` equal to it (JSON numbers the firmware reads back to the same bits).
fn wide(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// A regularizer in the workload file's form.
fn workload_reg(r: microfit_core::regularizer::Reg) -> Result<serde_json::Value, String> {
    use microfit_core::regularizer::{OrthoMode, Reg};
    use serde_json::json;
    Ok(match r {
        Reg::L1 { l1 } => json!({"l1": f64::from(l1)}),
        Reg::L2 { l2 } => json!({"l2": f64::from(l2)}),
        Reg::L1L2 { l1, l2 } => json!({"l1": f64::from(l1), "l2": f64::from(l2)}),
        Reg::Orthogonal { factor, mode } => json!({
            "orthogonal": f64::from(factor),
            "mode": match mode { OrthoMode::Rows => "rows", OrthoMode::Columns => "columns" },
        }),
        other => return Err(format!("the firmware has no regularizer {other:?}")),
    })
}

/// A constraint in Keras' form `{"class_name", "config"}` (the workload file's).
fn workload_constraint(
    c: &microfit_core::constraint::Constraint,
) -> Result<serde_json::Value, String> {
    use microfit_core::constraint::{Axes, Constraint};
    use serde_json::json;
    let axes = |a: &Axes| {
        let (l, n) = a.to_list();
        l[..n].to_vec()
    };
    Ok(match c {
        Constraint::MaxNorm { max_value, axis } => json!({"class_name": "MaxNorm", "config":
            {"max_value": f64::from(*max_value), "axis": axes(axis)}}),
        Constraint::MinMaxNorm {
            min_value,
            max_value,
            rate,
            axis,
        } => json!({"class_name": "MinMaxNorm", "config": {"min_value": f64::from(*min_value),
            "max_value": f64::from(*max_value), "rate": f64::from(*rate), "axis": axes(axis)}}),
        Constraint::NonNeg => json!({"class_name": "NonNeg", "config": {}}),
        Constraint::UnitNorm { axis } => {
            json!({"class_name": "UnitNorm", "config": {"axis": axes(axis)}})
        }
        other => return Err(format!("the firmware has no constraint {other:?}")),
    })
}

/// One layer in the workload file's form.
fn workload_layer(l: &LayerSpec) -> Result<serde_json::Value, String> {
    use serde_json::{Value, json};
    let mut o = serde_json::Map::new();
    let weighted = |o: &mut serde_json::Map<String, Value>,
                    c: &microfit_core::layer::dense::DenseConfig|
     -> Result<(), String> {
        o.insert("activation".into(), json!(c.activation.keras_name()));
        if let Activation::LeakyRelu(alpha) = c.activation {
            o.insert("alpha".into(), json!(f64::from(alpha)));
        }
        o.insert("use_bias".into(), json!(c.use_bias));
        for (key, r) in [
            ("kernel_regularizer", c.kernel_regularizer),
            ("bias_regularizer", c.bias_regularizer),
            ("activity_regularizer", c.activity_regularizer),
        ] {
            if let Some(r) = r {
                o.insert(
                    key.into(),
                    workload_reg(r).map_err(|e| format!("{key}: {e}"))?,
                );
            }
        }
        for (key, k) in [
            ("kernel_constraint", &c.kernel_constraint),
            ("bias_constraint", &c.bias_constraint),
        ] {
            if let Some(k) = k {
                o.insert(key.into(), workload_constraint(k)?);
            }
        }
        if !c.trainable {
            o.insert("trainable".into(), json!(false));
        }
        Ok(())
    };
    if let Some(f) = l.conv_fields() {
        o.insert("layer".into(), json!(l.kind()));
        o.insert("filters".into(), json!(f.filters));
        o.insert("kernel_size".into(), json!(f.kernel_size));
        if !f.strides.is_empty() {
            o.insert("strides".into(), json!(f.strides));
        }
        if !f.dilation_rate.is_empty() {
            o.insert("dilation_rate".into(), json!(f.dilation_rate));
        }
        o.insert("padding".into(), json!(f.padding.as_str()));
        weighted(&mut o, f.config)?;
        return Ok(Value::Object(o));
    }
    match l {
        LayerSpec::Dense { units, config } => {
            o.insert("layer".into(), json!("dense"));
            o.insert("units".into(), json!(units));
            weighted(&mut o, config)?;
        }
        LayerSpec::MaxPooling {
            pool_size,
            strides,
            padding,
        }
        | LayerSpec::AveragePooling {
            pool_size,
            strides,
            padding,
        } => {
            o.insert("layer".into(), json!(l.kind()));
            o.insert("pool_size".into(), json!(pool_size));
            if let Some(s) = strides {
                o.insert("strides".into(), json!(s));
            }
            o.insert("padding".into(), json!(padding.as_str()));
        }
        LayerSpec::Flatten => {
            o.insert("layer".into(), json!("flatten"));
        }
        LayerSpec::Dropout { rate, seed } => {
            o.insert("layer".into(), json!("dropout"));
            o.insert("rate".into(), json!(f64::from(*rate)));
            if let Some(s) = seed {
                o.insert("seed".into(), json!(s));
            }
        }
        other => return Err(format!("the firmware has no {} layer", other.kind())),
    }
    Ok(Value::Object(o))
}

/// The workload file's `training` object: optimizer, learning rate, clipping, loss, batch size
/// and epochs.
fn workload_training(
    cfg: &super::schema::TrainConfig,
    epochs: u32,
) -> Result<serde_json::Value, String> {
    use super::schema::OptimizerKind;
    use microfit_core::loss::Loss;
    use microfit_core::optim::schedule::Schedule;
    use serde_json::{Map, json};

    let o = &cfg.optimizer;
    let mut t = Map::new();
    t.insert("optimizer".into(), json!(o.kind.name()));
    t.insert(
        "learning_rate".into(),
        match o.learning_rate {
            Schedule::Constant(lr) => json!(f64::from(lr)),
            Schedule::Exponential(e) => json!({"exponential_decay": {
                "initial_learning_rate": f64::from(e.initial_learning_rate),
                "decay_steps": e.decay_steps,
                "decay_rate": f64::from(e.decay_rate),
                "staircase": e.staircase,
            }}),
        },
    );
    match o.kind {
        OptimizerKind::Adam | OptimizerKind::AdamW => {
            t.insert("beta_1".into(), json!(f64::from(o.beta_1)));
            t.insert("beta_2".into(), json!(f64::from(o.beta_2)));
            t.insert("epsilon".into(), json!(f64::from(o.epsilon)));
            if let Some(wd) = o.common.weight_decay {
                if o.kind == OptimizerKind::Adam {
                    return Err("Adam with weight decay: the firmware's is AdamW's".into());
                }
                t.insert("weight_decay".into(), json!(f64::from(wd)));
            }
        }
        OptimizerKind::Sgd => {
            if o.common.weight_decay.is_some() {
                return Err("the firmware's SGD has no weight decay".into());
            }
            t.insert("momentum".into(), json!(f64::from(o.momentum)));
            t.insert("nesterov".into(), json!(o.nesterov));
        }
    }
    if cfg.class_weight.is_some() {
        return Err("the firmware trains without class weights (class_weight)".into());
    }
    if cfg.reduce_lr_on_plateau.is_some() {
        return Err("the firmware has no ReduceLROnPlateau (its schedule is fixed)".into());
    }
    if o.ema.is_some() {
        return Err(
            "the firmware's optimizers keep no moving average of the weights (use_ema)".into(),
        );
    }
    if o.common.exclude_from_weight_decay != microfit_core::optim::ExcludeFromWeightDecay::NONE {
        return Err("the firmware has no exclude_from_weight_decay".into());
    }
    let c = &o.common.clip;
    for (key, v) in [
        ("clipvalue", c.clipvalue),
        ("clipnorm", c.clipnorm),
        ("global_clipnorm", c.global_clipnorm),
    ] {
        if let Some(v) = v {
            t.insert(key.into(), json!(f64::from(v)));
        }
    }
    let (loss, from_logits, label_smoothing) = match cfg.loss {
        Loss::MeanSquaredError => ("mean_squared_error", false, 0.0),
        Loss::MeanAbsoluteError => ("mean_absolute_error", false, 0.0),
        Loss::BinaryCrossentropy {
            from_logits,
            label_smoothing,
        } => ("binary_crossentropy", from_logits, label_smoothing),
        Loss::CategoricalCrossentropy {
            from_logits,
            label_smoothing,
        } => ("categorical_crossentropy", from_logits, label_smoothing),
        Loss::SparseCategoricalCrossentropy { from_logits } => {
            ("sparse_categorical_crossentropy", from_logits, 0.0)
        }
        #[allow(unreachable_patterns)]
        other => return Err(format!("the firmware has no loss {other:?}")),
    };
    t.insert("loss".into(), json!(loss));
    t.insert("from_logits".into(), json!(from_logits));
    if label_smoothing != 0.0 {
        t.insert("label_smoothing".into(), json!(f64::from(label_smoothing)));
    }
    t.insert("batch_size".into(), json!(cfg.batch_size));
    t.insert("epochs".into(), json!(epochs));
    t.insert("shuffle".into(), json!(false));
    Ok(serde_json::Value::Object(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_round_trip() {
        for v in [
            0.1f32,
            -0.0,
            1.0,
            1e-7,
            f32::MAX,
            f32::MIN_POSITIVE,
            f32::MIN_POSITIVE / 3.0,
        ] {
            let l = f32_literal(v);
            assert_eq!(l.parse::<f32>().unwrap().to_bits(), v.to_bits(), "{l}");
        }
        assert_eq!(array_type(&[4, 3], "f32"), "[[f32; 3]; 4]");
        assert_eq!(const_name("dense_1/kernel"), "DENSE_1_KERNEL");
    }
}
