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
//!                    (dropout is the identity at inference)
//!   activation  u8   0 linear, 1 relu, 2 sigmoid, 3 tanh, 4 softmax, 5 leaky_relu (0 if none)
//!   flags       u8   bit 0: use_bias
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
            LayerSpec::Dropout { .. } => BlobKind::Dropout,
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
        b.push(u8::from(use_bias));
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
/// `workload.json` in the schema of `firmware/data/w1.json` (dataset already scaled, initial
/// weights, Adam's hyperparameters, batch size, epochs, kernel L2). The firmware's build script
/// reads it instead of its bundled workload when `MICROFIT_FW_WORKLOAD` names it.
///
/// Only the firmware's architecture qualifies: `Dense(relu) → Dense(softmax)` with biases,
/// categorical cross-entropy on class labels, Adam with a constant learning rate and no
/// clipping or weight decay, and either no regularizer or the same kernel L2 on both kernels
/// (no bias or activity penalty). Anything else is an `Err` naming what does not fit.
///
/// Every float is written as the `f64` equal to the `f32` (exact), so the firmware reads the
/// very bits the host trained.
///
/// # Errors
/// The first reason the model or the data cannot be trained by the firmware.
pub fn firmware_workload(
    cfg: &super::schema::TrainConfig,
    weights: &VecParams,
    data: &crate::data::Dataset,
    epochs: u32,
    source: &str,
) -> Result<serde_json::Value, String> {
    use super::schema::OptimizerKind;
    use crate::data::Target;
    use microfit_core::loss::Loss;
    use microfit_core::optim::schedule::Schedule;
    use microfit_core::regularizer::Reg;
    use serde_json::json;

    let layers = &cfg.model.layers;
    let [
        LayerSpec::Dense { config: c0, .. },
        LayerSpec::Dense { config: c1, .. },
    ] = &layers[..]
    else {
        return Err("the firmware trains two Dense layers (relu, then softmax)".into());
    };
    if c0.activation != Activation::Relu || c1.activation != Activation::Softmax {
        return Err(format!(
            "the firmware trains Dense(relu) -> Dense(softmax), not {} -> {}",
            c0.activation.keras_name(),
            c1.activation.keras_name()
        ));
    }
    if !c0.use_bias || !c1.use_bias {
        return Err("the firmware's Dense layers have biases (use_bias = true)".into());
    }
    if [c0, c1]
        .iter()
        .any(|c| c.bias_regularizer.is_some() || c.activity_regularizer.is_some())
    {
        return Err("the firmware has no bias or activity regularizer".into());
    }
    let l2 = match (c0.kernel_regularizer, c1.kernel_regularizer) {
        (None, None) => 0.0,
        (Some(Reg::L2 { l2: a }), Some(Reg::L2 { l2: b })) if a.to_bits() == b.to_bits() => a,
        _ => {
            return Err("the firmware's only penalty is the same kernel L2 on both kernels".into());
        }
    };
    match cfg.loss {
        Loss::CategoricalCrossentropy { from_logits: false }
        | Loss::SparseCategoricalCrossentropy { from_logits: false } => {}
        other => {
            return Err(format!(
                "the firmware's loss is categorical cross-entropy on the softmax, not {other:?}"
            ));
        }
    }
    let o = &cfg.optimizer;
    let Schedule::Constant(lr) = o.learning_rate else {
        return Err("the firmware's Adam has a constant learning rate".into());
    };
    if o.kind != OptimizerKind::Adam || o.common.weight_decay.is_some() {
        return Err("the firmware trains with Adam (no weight decay)".into());
    }
    let clip = &o.common.clip;
    if clip.clipvalue.is_some() || clip.clipnorm.is_some() || clip.global_clipnorm.is_some() {
        return Err("the firmware's Adam does not clip gradients".into());
    }
    let Target::Classes {
        labels,
        class_names,
    } = &data.target
    else {
        return Err("the firmware trains a classifier (class labels)".into());
    };
    let n_in = data.n_features();
    let n = labels.len();
    let [k0, b0, k1, b1] = &weights.tensors[..] else {
        return Err("expected four weight tensors".into());
    };
    let hidden = b0.len();
    let classes = b1.len();
    if k0.len() != n_in * hidden || k1.len() != hidden * classes || class_names.len() > classes {
        return Err(format!(
            "the weights ({n_in}x{hidden}, {hidden}x{classes}) do not fit the data ({n_in} features, {} classes)",
            class_names.len()
        ));
    }
    if n == 0 || data.features.len() != n * n_in {
        return Err("the data has no samples".into());
    }
    if cfg.batch_size == 0 || epochs == 0 {
        return Err("batch size and epochs must be at least 1".into());
    }
    let wide = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let t = |shape: &[usize], v: &[f32]| json!({"shape": shape, "data": wide(v)});
    Ok(json!({
        "name": "exported",
        "source": source,
        "classes": classes,
        "x": t(&[n, n_in], &data.features),
        "labels": {"shape": [n], "data": labels},
        "model": [
            {"layer": "dense", "units": hidden, "activation": "relu"},
            {"layer": "dense", "units": classes, "activation": "softmax"}
        ],
        "initial_weights": {
            "dense_0/kernel": t(&[n_in, hidden], k0),
            "dense_0/bias": t(&[hidden], b0),
            "dense_1/kernel": t(&[hidden, classes], k1),
            "dense_1/bias": t(&[classes], b1),
        },
        "training": {
            "optimizer": "adam",
            "learning_rate": f64::from(lr),
            "batch_size": cfg.batch_size,
            "epochs": epochs,
            "loss": "categorical_crossentropy",
            "beta_1": f64::from(o.beta_1),
            "beta_2": f64::from(o.beta_2),
            "epsilon": f64::from(o.epsilon),
            "shuffle": false,
        },
        "kernel_l2": f64::from(l2),
    }))
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
