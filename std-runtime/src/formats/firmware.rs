//! Export to firmware: a binary weight blob (`model.bin`) and Rust source (`model.rs`).
//!
//! `model.bin` is an `MFW1` blob, the format of [`microfit_core::blob`] (its module docs give
//! the layout): [`write_blob`] describes the model's layers as the core's records and writes
//! them with the core's writer, and [`read_blob`] checks a blob with the core's parser — magic,
//! version, every length and the CRC — and gives back the exact bits that were written. The
//! format is defined once, in the core; this module only maps a [`ModelSpec`] onto it:
//!
//! - dropout, the noise layers and `ActivityRegularization` (the identity at inference) are
//!   written as [`BlobKind::Dropout`] records;
//! - a layer's `trainable = false`, kernel constraint and bias constraint are the record's
//!   [`TrainingFlags`] (flag bits 1 to 3), which inference does not read.

use std::fmt;
use std::fmt::Write as _;

use microfit_core::activation::Activation;
use microfit_core::blob::{self, Blob, BlobSpec, LayerRecord};

use super::schema::{LayerSpec, ModelSpec};
use crate::data::Scaler;
use crate::model::VecParams;

/// The geometry of one spatial axis of a conv or pooling layer (the core's [`blob::Axis`]).
pub use microfit_core::blob::Axis as AxisGeometry;
/// Layer kinds in the blob (the core's [`blob::Kind`]).
pub use microfit_core::blob::Kind as BlobKind;
/// Blob magic (the core's [`blob::MAGIC`]).
pub use microfit_core::blob::MAGIC as BLOB_MAGIC;
/// A layer's training-only settings, flag bits 1 to 3 (the core's [`blob::TrainingFlags`]).
pub use microfit_core::blob::TrainingFlags;
/// Blob format version (the core's [`blob::VERSION`]).
pub use microfit_core::blob::VERSION as BLOB_VERSION;

/// One layer of a blob.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobLayer {
    /// Kind.
    pub kind: BlobKind,
    /// Activation code ([`blob::activation_code`]).
    pub activation: u8,
    /// Leaky ReLU slope.
    pub act_param: f32,
    /// Whether the bias is used.
    pub use_bias: bool,
    /// Training-only settings: frozen, kernel and bias constraints.
    pub training: TrainingFlags,
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

/// A blob that cannot be written or read: the core's [`microfit_core::Error`] (for a blob
/// read, its `CorruptBlob` offset and reason), or what the model has that the format cannot
/// describe.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobError {
    /// Byte offset of the problem (reading), or 0.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

impl BlobError {
    /// A problem of the model being written (no byte offset).
    fn model(reason: impl fmt::Display) -> Self {
        BlobError {
            offset: 0,
            reason: reason.to_string(),
        }
    }
}

impl From<microfit_core::Error> for BlobError {
    fn from(e: microfit_core::Error) -> Self {
        match e {
            microfit_core::Error::CorruptBlob { offset, reason } => BlobError {
                offset: offset as usize,
                reason: reason.to_string(),
            },
            other => BlobError::model(other),
        }
    }
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
    u32::try_from(v).map_err(|_| BlobError::model(format!("{what} {v} does not fit in 32 bits")))
}

/// A layer record's owned parts (the core's [`LayerRecord`] borrows them).
struct OwnedRecord {
    kind: BlobKind,
    activation: Activation,
    use_bias: bool,
    training: TrainingFlags,
    output_len: u32,
    axes: Vec<AxisGeometry>,
    channels: (u32, u32),
    tensor_shapes: Vec<Vec<u32>>,
}

/// The record of layer `i` (named `name`, taking `in_shape` to `out_shape`), whose tensors are
/// the weights named `<name>/…`.
fn layer_record(
    i: usize,
    layer: &LayerSpec,
    name: &str,
    in_shape: &[usize],
    out_shape: &[usize],
    weights: &VecParams,
) -> Result<OwnedRecord, BlobError> {
    let kind = match layer {
        LayerSpec::Dense { .. } => BlobKind::Dense,
        LayerSpec::Conv1D { .. } | LayerSpec::Conv2D { .. } | LayerSpec::Conv3D { .. } => {
            BlobKind::Conv
        }
        LayerSpec::MaxPooling { .. } => BlobKind::MaxPooling,
        LayerSpec::AveragePooling { .. } => BlobKind::AveragePooling,
        LayerSpec::Flatten => BlobKind::Flatten,
        // Dropout, every noise layer and ActivityRegularization: the identity at inference.
        other if other.noise(in_shape).is_some() => BlobKind::Dropout,
        other => {
            return Err(BlobError::model(format!(
                "layers[{i}]: {} layers are not supported by format MFW1",
                other.kind()
            )));
        }
    };
    let config = layer.dense_config();
    let training = config.map_or(TrainingFlags::NONE, |c| TrainingFlags {
        frozen: !c.trainable,
        kernel_constraint: c.kernel_constraint.is_some(),
        bias_constraint: c.bias_constraint.is_some(),
    });
    let mut axes = Vec::new();
    let mut channels = (0, 0);
    if let Some(g) = layer.geometry(i, in_shape).map_err(BlobError::model)? {
        // The geometry stores its axes right-aligned in arrays of MAX_SPATIAL_DIMS.
        let first = microfit_core::kernels::conv::MAX_SPATIAL_DIMS - g.dims();
        for axis in first..first + g.dims() {
            let (pb, pa) = g.pads(axis);
            let v = |x: usize| to_u32(x, "geometry value");
            axes.push(AxisGeometry {
                kernel: v(g.kernel()[axis])?,
                stride: v(g.strides()[axis])?,
                dilation: v(g.dilation()[axis])?,
                pad_before: v(pb)?,
                pad_after: v(pa)?,
                input: v(g.input()[axis])?,
                output: v(g.output()[axis])?,
            });
        }
        let out_ch = if kind == BlobKind::Conv {
            g.filters()
        } else {
            g.in_channels()
        };
        channels = (
            to_u32(g.in_channels(), "channels")?,
            to_u32(out_ch, "channels")?,
        );
    }
    let prefix = format!("{name}/");
    let tensor_shapes = weights
        .names
        .iter()
        .zip(&weights.shapes)
        .filter(|(n, _)| n.starts_with(&prefix))
        .map(|(_, s)| s.iter().map(|&d| to_u32(d, "tensor size")).collect())
        .collect::<Result<_, _>>()?;
    Ok(OwnedRecord {
        kind,
        activation: config.map_or(Activation::Linear, |c| c.activation),
        use_bias: config.is_some_and(|c| c.use_bias),
        training,
        output_len: to_u32(out_shape.iter().product(), "layer output length")?,
        axes,
        channels,
        tensor_shapes,
    })
}

/// Writes the `MFW1` blob (with the core's [`blob::write`]).
///
/// # Errors
/// A [`BlobError`] for a layer the format cannot describe or a size beyond its fields.
pub fn write_blob(m: &ExportInput<'_>) -> Result<Vec<u8>, BlobError> {
    let shapes = m.spec.shapes().map_err(BlobError::model)?;
    let n_classes =
        u16::try_from(m.class_names.len()).map_err(|_| BlobError::model("too many classes"))?;
    let input_shape = m
        .spec
        .input_shape
        .iter()
        .map(|&d| to_u32(d, "input size"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut owned = Vec::with_capacity(m.spec.layers.len());
    let mut in_shape = m.spec.input_shape.as_slice();
    for (i, (layer, out_shape)) in m.spec.layers.iter().zip(&shapes).enumerate() {
        let name = m.layer_names.get(i).map_or("", String::as_str);
        owned.push(layer_record(
            i, layer, name, in_shape, out_shape, m.weights,
        )?);
        in_shape = out_shape;
    }
    let tensor_shapes: Vec<Vec<&[u32]>> = owned
        .iter()
        .map(|o| o.tensor_shapes.iter().map(Vec::as_slice).collect())
        .collect();
    let records: Vec<LayerRecord<'_>> = owned
        .iter()
        .zip(&tensor_shapes)
        .map(|(o, shapes)| LayerRecord {
            kind: o.kind,
            activation: o.activation,
            use_bias: o.use_bias,
            training: o.training,
            output_len: o.output_len,
            axes: &o.axes,
            channels: o.channels,
            tensor_shapes: shapes,
        })
        .collect();
    let spec = BlobSpec {
        input_shape: &input_shape,
        classification: m.classification,
        n_classes,
        layers: &records,
        scaler_offset: &m.scaler.offset,
        scaler_scale: &m.scaler.scale,
    };
    let mut b = Vec::new();
    blob::write(&spec, m.weights, &mut |bytes: &[u8]| {
        b.extend_from_slice(bytes)
    })?;
    Ok(b)
}

/// Reads and checks an `MFW1` blob with the core's [`Blob::parse`]: magic, version, CRC, and
/// that every length agrees.
///
/// # Errors
/// A [`BlobError`] with the byte offset and what is wrong; never panics, whatever the bytes.
pub fn read_blob(bytes: &[u8]) -> Result<FirmwareBlob, BlobError> {
    let b = Blob::parse(bytes)?;
    // The parse checked every record: a view that does not read is a bug here, not bad bytes.
    let unread = |what: &str| BlobError {
        offset: 0,
        reason: format!("internal error: checked blob's {what} did not read back"),
    };
    let mut weights = b.weights();
    let mut layers = Vec::with_capacity(b.layer_count());
    let mut tensors = Vec::new();
    for v in b.layers() {
        let (activation, act_param) = blob::activation_code(v.activation);
        let axes = (0..usize::from(v.spatial))
            .map(|k| v.axis(k))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| unread("axes"))?;
        let tensor_shapes = (0..usize::from(v.tensors))
            .map(|t| {
                let (_, rank) = v.tensor_len(t)?;
                (0..usize::from(rank)).map(|d| v.tensor_dim(t, d)).collect()
            })
            .collect::<Option<Vec<Vec<u32>>>>()
            .ok_or_else(|| unread("tensor shapes"))?;
        for s in &tensor_shapes {
            let n = s.iter().map(|&d| d as usize).product();
            let t: Vec<f32> = weights.by_ref().take(n).collect();
            if t.len() != n {
                return Err(unread("weights"));
            }
            tensors.push(t);
        }
        layers.push(BlobLayer {
            kind: v.kind,
            activation,
            act_param,
            use_bias: v.use_bias,
            training: v.training,
            output_len: v.output_len,
            axes,
            in_channels: v.channels.0,
            out_channels: v.channels.1,
            tensor_shapes,
        });
    }
    if layers.len() != b.layer_count() {
        return Err(unread("layer records"));
    }
    let (scaler_offset, scaler_scale) = (0..b.input_len())
        .map(|i| b.scaler(i))
        .collect::<Option<(Vec<f32>, Vec<f32>)>>()
        .ok_or_else(|| unread("scaler"))?;
    let input_shape: Vec<u32> = b.input_shape().collect();
    Ok(FirmwareBlob {
        version: b.version(),
        input_len: to_u32(b.input_len(), "input length")?,
        output_len: to_u32(b.output_len(), "output length")?,
        input_shape,
        classification: b.classification(),
        n_classes: u16::try_from(b.n_classes()).map_err(|_| unread("class count"))?,
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
