//! Keras' `model.summary()` for a run-time model, with each layer's regularizers, and the
//! memory that training the model takes on a microcontroller.
//!
//! The memory is that of `microfit_core::Network` training one sample at a time (tile 1, as on
//! a microcontroller), computed from the layer shapes:
//!
//! * weights and gradients: `2 · P · 4 B` for `P` parameters;
//! * optimizer slots: `S · P · 4 B` (Adam and AdamW keep `m` and `v`, SGD with momentum one
//!   slot, plain SGD none);
//! * activations: `A · 4 B` with `A = Σ cache_i + 2 · Σ out_i`: every layer's output and the
//!   gradient of that output, plus the pre-activation of each Dense and conv layer (pooling,
//!   flatten and dropout keep no extra values) — the core's `Network::ACTIVATION_FLOATS`.
//!
//! ```
//! use microfit::model::{LayerSpec, ModelSpec};
//! use microfit::core::prelude::*;
//! let spec = ModelSpec {
//!     input_shape: vec![4],
//!     layers: vec![LayerSpec::dense(16, Activation::Relu), LayerSpec::dense(3, Activation::Softmax)],
//! };
//! let m = microfit::summary::training_memory(&spec, 2)?;
//! assert_eq!((m.params, m.activation_floats), (131, 16 + 3 + 2 * (16 + 3)));
//! assert_eq!(m.total_bytes(), 4 * (131 * 4 + 57));
//! # Ok::<(), microfit::model::SpecError>(())
//! ```

use std::fmt::Write as _;

use crate::model::{LayerSpec, ModelSpec, Sequential, SpecError};
use crate::report::describe_reg;

/// The memory that training a model takes, per part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainingMemory {
    /// Trainable parameters `P`.
    pub params: usize,
    /// Optimizer slots per parameter `S`.
    pub slots: usize,
    /// Activation values kept per sample `A`.
    pub activation_floats: usize,
}

impl TrainingMemory {
    /// Bytes of the weights (`4 · P`).
    pub fn weight_bytes(&self) -> usize {
        4 * self.params
    }

    /// Bytes of the optimizer slots (`4 · S · P`).
    pub fn slot_bytes(&self) -> usize {
        4 * self.slots * self.params
    }

    /// Bytes of the activations (`4 · A`).
    pub fn activation_bytes(&self) -> usize {
        4 * self.activation_floats
    }

    /// Everything: weights, gradients, slots and activations.
    pub fn total_bytes(&self) -> usize {
        2 * self.weight_bytes() + self.slot_bytes() + self.activation_bytes()
    }
}

/// The parameter count of each layer of `spec`, from its shapes.
///
/// # Errors
/// The spec's own [`SpecError`] (from [`ModelSpec::shapes`]).
pub fn layer_params(spec: &ModelSpec) -> Result<Vec<usize>, SpecError> {
    let shapes = spec.shapes()?;
    let mut input = spec.input_shape.clone();
    let mut out = Vec::with_capacity(spec.layers.len());
    for (i, l) in spec.layers.iter().enumerate() {
        let n_in: usize = input.iter().product();
        let p = match l {
            LayerSpec::Dense { units, .. } => n_in * units + units,
            LayerSpec::Conv1D { filters, .. }
            | LayerSpec::Conv2D { filters, .. }
            | LayerSpec::Conv3D { filters, .. } => l
                .geometry(i, &input)?
                .map_or(0, |g| g.taps() * g.in_channels() * filters + filters),
            _ => 0,
        };
        out.push(p);
        input.clone_from(&shapes[i]);
    }
    Ok(out)
}

/// The memory training `spec` one sample at a time takes with `slots` optimizer slots (see
/// the module docs).
///
/// # Errors
/// The spec's own [`SpecError`].
pub fn training_memory(spec: &ModelSpec, slots: usize) -> Result<TrainingMemory, SpecError> {
    let shapes = spec.shapes()?;
    let params = layer_params(spec)?.iter().sum();
    let mut activation_floats = 0;
    for (l, s) in spec.layers.iter().zip(&shapes) {
        let out: usize = s.iter().product();
        let cache = match l {
            LayerSpec::Dense { .. }
            | LayerSpec::Conv1D { .. }
            | LayerSpec::Conv2D { .. }
            | LayerSpec::Conv3D { .. } => out,
            _ => 0,
        };
        activation_floats += cache + 2 * out;
    }
    Ok(TrainingMemory {
        params,
        slots,
        activation_floats,
    })
}

/// Keras' size format: `524.00 B`, `3.16 KB` (powers of 1024).
pub fn readable_bytes(bytes: usize) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    for u in units {
        if v / 1024.0 < 1.0 {
            return format!("{v:.2} {u}");
        }
        v /= 1024.0;
    }
    format!("{v:.2} PB")
}

/// Keras' class name of a layer: `Dense`, `Conv2D`, `MaxPooling2D`, `Flatten`, `Dropout`.
pub fn class_name(l: &LayerSpec) -> String {
    let kind = l.kind();
    match kind {
        "dense" => "Dense".into(),
        "conv1d" => "Conv1D".into(),
        "conv2d" => "Conv2D".into(),
        "conv3d" => "Conv3D".into(),
        "flatten" => "Flatten".into(),
        "dropout" => "Dropout".into(),
        _ => match (
            kind.strip_prefix("max_pooling"),
            kind.strip_prefix("average_pooling"),
        ) {
            (Some(d), _) => format!("MaxPooling{}", d.to_uppercase()),
            (_, Some(d)) => format!("AveragePooling{}", d.to_uppercase()),
            _ => kind.to_string(),
        },
    }
}

/// The regularizers of a layer in words: `kernel L2(0.001), activity L1(0.0001)`, or `-`.
pub fn regularizers(l: &LayerSpec) -> String {
    let Some(c) = l.dense_config() else {
        return "-".into();
    };
    let parts: Vec<String> = [
        ("kernel", &c.kernel_regularizer),
        ("bias", &c.bias_regularizer),
        ("activity", &c.activity_regularizer),
    ]
    .iter()
    .filter_map(|(what, r)| r.as_ref().map(|r| format!("{what} {}", describe_reg(r))))
    .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// A table drawn with box characters as Keras' (rich) summary: a heavy header, a rule between
/// rows; the last column of `right` is right-aligned.
fn boxed(headers: &[&str], rows: &[Vec<String>], right: &[bool]) -> String {
    let w: Vec<usize> = (0..headers.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([headers[c].chars().count()])
                .max()
                .unwrap_or(0)
                + 2
        })
        .collect();
    let rule = |l: &str, m: &str, r: &str, fill: &str| {
        let mut s = String::from(l);
        for (c, &wc) in w.iter().enumerate() {
            if c > 0 {
                s.push_str(m);
            }
            s.push_str(&fill.repeat(wc));
        }
        s.push_str(r);
        s.push('\n');
        s
    };
    let row = |cells: &[String], bar: &str| {
        let mut s = String::from(bar);
        for (c, cell) in cells.iter().enumerate() {
            let pad = w[c] - 2 - cell.chars().count();
            if right[c] {
                let _ = write!(s, " {}{cell} {bar}", " ".repeat(pad));
            } else {
                let _ = write!(s, " {cell}{} {bar}", " ".repeat(pad));
            }
        }
        s.push('\n');
        s
    };
    let mut s = rule("┏", "┳", "┓", "━");
    s.push_str(&row(
        &headers.iter().map(|h| (*h).to_string()).collect::<Vec<_>>(),
        "┃",
    ));
    s.push_str(&rule("┡", "╇", "┩", "━"));
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            s.push_str(&rule("├", "┼", "┤", "─"));
        }
        s.push_str(&row(r, "│"));
    }
    s.push_str(&rule("└", "┴", "┘", "─"));
    s
}

/// `model.summary()`: layer (type), output shape, params and regularizers, the totals, then the
/// training memory with `slots` optimizer slots (`optimizer` names them).
///
/// # Errors
/// The spec's own [`SpecError`].
pub fn summary(model: &Sequential, slots: usize, optimizer: &str) -> Result<String, SpecError> {
    let spec = model.spec();
    let shapes = spec.shapes()?;
    let params = layer_params(spec)?;
    let dims = |s: &[usize]| {
        let mut v = vec!["None".to_string()];
        v.extend(s.iter().map(ToString::to_string));
        format!("({})", v.join(", "))
    };
    let rows: Vec<Vec<String>> = spec
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            vec![
                format!(
                    "{} ({})",
                    model.layer_names.get(i).map_or("?", String::as_str),
                    class_name(l)
                ),
                dims(&shapes[i]),
                params[i].to_string(),
                regularizers(l),
            ]
        })
        .collect();
    let m = training_memory(spec, slots)?;
    let mut s = String::from("Model: \"sequential\"\n");
    s.push_str(&boxed(
        &["Layer (type)", "Output Shape", "Param #", "Regularizers"],
        &rows,
        &[false, false, true, false],
    ));
    // Frozen layers (Keras `non_trainable_weights`) keep their weights but no gradients and no
    // optimizer slots.
    let frozen: usize = model.frozen.tensors.iter().map(Vec::len).sum();
    let trainable = m.params - frozen.min(m.params);
    let _ = writeln!(
        s,
        " Total params: {} ({})\n Trainable params: {} ({})\n Non-trainable params: {} ({})",
        m.params,
        readable_bytes(m.weight_bytes()),
        trainable,
        readable_bytes(4 * trainable),
        frozen,
        readable_bytes(4 * frozen),
    );
    let grads = 4 * trainable;
    let slot_bytes = 4 * slots * trainable;
    let total = m.weight_bytes() + grads + slot_bytes + m.activation_bytes();
    let _ = writeln!(
        s,
        "\nTraining memory on a microcontroller (f32, one sample at a time):\n\
         \x20 weights          {:>12}  ({} params × 4 B)\n\
         \x20 gradients        {:>12}  ({} trainable × 4 B)\n\
         \x20 optimizer slots  {:>12}  ({slots} slot{} per trainable param, {optimizer})\n\
         \x20 activations      {:>12}  ({} values: layer outputs, their gradients, pre-activations)\n\
         \x20 total            {:>12}  ({} B)",
        readable_bytes(m.weight_bytes()),
        m.params,
        readable_bytes(grads),
        trainable,
        readable_bytes(slot_bytes),
        if slots == 1 { "" } else { "s" },
        readable_bytes(m.activation_bytes()),
        m.activation_floats,
        readable_bytes(total),
        total
    );
    Ok(s)
}
