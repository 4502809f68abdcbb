//! Keras 3's variable store, `model.weights.h5`, read and written in pure Rust
//! ([`hdf5-pure`](https://docs.rs/hdf5-pure): no libhdf5, no C).
//!
//! Keras (`saving_lib.H5IOStore`) writes one HDF5 group per object that owns variables, at the
//! object's path in the model, and the variables as datasets `vars/0`, `vars/1`, ... in the
//! object's own order; the `vars` group carries the object's name as a string attribute:
//!
//! ```text
//! /vars                          attrs {name: "sequential"}      (the model's own: none)
//! /layers/dense/vars/0           float32 (4, 12)   kernel        attrs of vars: {name: "hidden"}
//! /layers/dense/vars/1           float32 (12,)     bias
//! /layers/dense_1/vars/0, /1     the second Dense layer
//! /layers/max_pooling2d/vars     (empty: a layer without variables)
//! /optimizer/vars/0              int64 ()          iterations
//! /optimizer/vars/1              float32 ()        learning rate (absent with a schedule)
//! /optimizer/vars/2, 3, ...      each trainable variable's slots in order (Adam: m, v)
//! ```
//! Layer paths are keyed by class, not by the layer's name: `to_snake_case(class)` with a
//! counter per class in layer order (`dense`, `dense_1`, `conv2d`, `max_pooling2d`).
//!
//! A [`WeightsStore`] is that tree as a map from object path (`""` for the model,
//! `"layers/dense"`, `"optimizer"`) to its [`StoreEntry`]. Reading accepts what h5py writes
//! (superblock 0, symbol-table groups) and anything else `hdf5-pure` reads, as long as each
//! variable is a float32 or integer dataset stored contiguously or compactly; writing produces
//! an HDF5 1.10 file (superblock 3) that h5py and so Keras read, byte-identical for identical
//! contents (no time stamps).
//!
//! ```
//! use microfit::formats::keras_weights::{StoreEntry, StoredVar, WeightsStore};
//! let mut store = WeightsStore::default();
//! store.entries.insert("layers/dense".into(), StoreEntry {
//!     name: Some("dense".into()),
//!     vars: vec![StoredVar::f32(vec![2, 1], vec![0.5, -1.0]), StoredVar::f32(vec![1], vec![0.0])],
//! });
//! let bytes = store.to_bytes()?;
//! assert_eq!(WeightsStore::from_bytes(&bytes, "w.h5")?, store);
//! # Ok::<(), microfit::formats::FormatError>(())
//! ```

use std::collections::BTreeMap;

use hdf5_pure::{AttrValue, DType, File, FileBuilder, GroupBuilder, Layout};

use super::FormatError;

/// The values of one stored variable.
#[derive(Debug, Clone, PartialEq)]
pub enum VarValues {
    /// float32 (weights, slots, the learning rate).
    F32(Vec<f32>),
    /// An integer (the optimizer's `iterations`: int64 with TensorFlow, int32 with JAX).
    Int(Vec<i64>),
}

/// One variable: its shape (empty for a scalar) and values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVar {
    /// Shape (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// Values.
    pub values: VarValues,
}

impl StoredVar {
    /// A float32 variable.
    pub fn f32(shape: Vec<usize>, values: Vec<f32>) -> Self {
        StoredVar {
            shape,
            values: VarValues::F32(values),
        }
    }

    /// An int64 scalar (Keras' `iterations`).
    pub fn int_scalar(v: i64) -> Self {
        StoredVar {
            shape: Vec::new(),
            values: VarValues::Int(vec![v]),
        }
    }
}

/// The variables of one object (`vars/0`, `vars/1`, ... in order) and its name attribute.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoreEntry {
    /// The `name` attribute of the `vars` group (the layer's or optimizer's Keras name).
    pub name: Option<String>,
    /// The variables, in the object's order.
    pub vars: Vec<StoredVar>,
}

/// `model.weights.h5`: object path (`""`, `"layers/dense"`, `"optimizer"`) → its variables.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WeightsStore {
    /// The entries by object path.
    pub entries: BTreeMap<String, StoreEntry>,
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}

impl WeightsStore {
    /// Reads a weights file from its bytes; `file` names it in errors.
    ///
    /// # Errors
    /// [`FormatError::Invalid`] naming the HDF5 path: not HDF5, a dataset outside a `vars`
    /// group, variables not numbered `0..n`, a type other than float32 or integer, a chunked
    /// or compressed dataset, a dataset declaring more bytes than the file holds.
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<Self, FormatError> {
        let h5 = File::from_bytes(bytes.to_vec()).map_err(|e| {
            FormatError::invalid(file, "/", format!("not a readable HDF5 file: {e}"))
        })?;
        let mut store = WeightsStore::default();
        walk(&h5, "", file, bytes.len(), &mut store)?;
        Ok(store)
    }

    /// Writes the store as an HDF5 file (superblock 3, compact groups, contiguous datasets).
    ///
    /// # Errors
    /// [`FormatError::Invalid`] if a variable's values do not fill its shape, or the HDF5
    /// writer refuses (a name with `/`).
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        // The group tree: every entry is a `vars` group under its object path.
        #[derive(Default)]
        struct Node<'a> {
            children: BTreeMap<&'a str, Node<'a>>,
            entry: Option<&'a StoreEntry>,
        }
        let mut root = Node::default();
        for (path, entry) in &self.entries {
            for (i, v) in entry.vars.iter().enumerate() {
                let n: usize = v.shape.iter().product();
                let len = match &v.values {
                    VarValues::F32(x) => x.len(),
                    VarValues::Int(x) => x.len(),
                };
                if n != len {
                    return Err(FormatError::invalid(
                        "model.weights.h5",
                        join(path, &format!("vars/{i}")),
                        format!("{len} values do not fill shape {:?}", v.shape),
                    ));
                }
            }
            let mut node = &mut root;
            for part in path.split('/').filter(|p| !p.is_empty()) {
                node = node.children.entry(part).or_default();
            }
            node = node.children.entry("vars").or_default();
            node.entry = Some(entry);
        }
        fn fill(g: &mut GroupBuilder, node: &Node<'_>) {
            if let Some(e) = node.entry {
                if let Some(name) = &e.name {
                    g.set_attr("name", AttrValue::VarLenString(name.clone()));
                }
                for (i, v) in e.vars.iter().enumerate() {
                    let shape: Vec<u64> = v.shape.iter().map(|&d| d as u64).collect();
                    let ds = g.create_dataset(&i.to_string());
                    match &v.values {
                        VarValues::F32(x) => ds.with_f32_data(x),
                        VarValues::Int(x) => ds.with_i64_data(x),
                    }
                    .with_shape(&shape);
                }
            }
            for (name, child) in &node.children {
                let mut c = g.create_group(name);
                fill(&mut c, child);
                g.add_group(c.finish());
            }
        }
        let mut fb = FileBuilder::new();
        for (name, child) in &root.children {
            let mut c = fb.create_group(name);
            fill(&mut c, child);
            fb.add_group(c.finish());
        }
        fb.finish().map_err(|e| {
            FormatError::invalid("model.weights.h5", "/", format!("cannot write HDF5: {e}"))
        })
    }
}

fn h5_err(file: &str, at: &str, e: impl std::fmt::Display) -> FormatError {
    FormatError::invalid(file, at, e.to_string())
}

/// Collects the `vars` groups under `path`.
fn walk(
    h5: &File,
    path: &str,
    file: &str,
    file_len: usize,
    store: &mut WeightsStore,
) -> Result<(), FormatError> {
    let g = if path.is_empty() {
        h5.root()
    } else {
        h5.group(path).map_err(|e| h5_err(file, path, e))?
    };
    let at = if path.is_empty() { "/" } else { path };
    if let Some(d) = g.datasets().map_err(|e| h5_err(file, at, e))?.first() {
        return Err(FormatError::invalid(
            file,
            join(path, d),
            "a dataset outside a `vars` group (not a Keras 3 weights file?)",
        ));
    }
    for child in g.groups().map_err(|e| h5_err(file, at, e))? {
        let cpath = join(path, &child);
        if child == "vars" {
            let entry = read_entry(h5, &cpath, file, file_len)?;
            store.entries.insert(path.to_string(), entry);
        } else {
            walk(h5, &cpath, file, file_len, store)?;
        }
    }
    Ok(())
}

/// One `vars` group: datasets `0..n` and the `name` attribute.
fn read_entry(
    h5: &File,
    path: &str,
    file: &str,
    file_len: usize,
) -> Result<StoreEntry, FormatError> {
    let g = h5.group(path).map_err(|e| h5_err(file, path, e))?;
    if let Some(sub) = g.groups().map_err(|e| h5_err(file, path, e))?.first() {
        return Err(FormatError::invalid(
            file,
            join(path, sub),
            "a group inside a `vars` group",
        ));
    }
    let name = match g.attrs().map_err(|e| h5_err(file, path, e))?.remove("name") {
        None => None,
        Some(AttrValue::VarLenString(s) | AttrValue::String(s) | AttrValue::AsciiString(s)) => {
            Some(s)
        }
        Some(other) => {
            return Err(FormatError::invalid(
                file,
                path,
                format!("the `name` attribute is not a string: {other:?}"),
            ));
        }
    };
    let mut indexed = Vec::new();
    for d in g.datasets().map_err(|e| h5_err(file, path, e))? {
        let dpath = join(path, &d);
        let i: usize = d.parse().map_err(|_| {
            FormatError::invalid(
                file,
                &dpath,
                "a variable must be named by its index (0, 1, ...)",
            )
        })?;
        indexed.push((i, read_var(h5, &dpath, file, file_len)?));
    }
    indexed.sort_by_key(|(i, _)| *i);
    for (k, (i, _)) in indexed.iter().enumerate() {
        if *i != k {
            return Err(FormatError::invalid(
                file,
                join(path, &k.to_string()),
                "missing: the variables must be numbered 0, 1, ... without gaps",
            ));
        }
    }
    Ok(StoreEntry {
        name,
        vars: indexed.into_iter().map(|(_, v)| v).collect(),
    })
}

fn read_var(h5: &File, path: &str, file: &str, file_len: usize) -> Result<StoredVar, FormatError> {
    let e = |r: String| FormatError::invalid(file, path, r);
    let ds = h5.dataset(path).map_err(|x| e(x.to_string()))?;
    let shape = ds
        .shape()
        .map_err(|x| e(x.to_string()))?
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| e(format!("dimension {d} is too large"))))
        .collect::<Result<Vec<usize>, _>>()?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| e(format!("shape {shape:?} is too large")))?;
    let dtype = ds.dtype().map_err(|x| e(x.to_string()))?;
    let attrs = ds.attrs().map_err(|x| e(x.to_string()))?;
    if let Some(t) = attrs.get("dtype") {
        return Err(e(format!(
            "variables stored as {t:?} (mixed precision) are not supported; microfit is float32"
        )));
    }
    let esize = match dtype {
        DType::F32 | DType::I32 | DType::U32 => 4,
        DType::I64 | DType::U64 => 8,
        DType::I8 | DType::U8 => 1,
        DType::I16 | DType::U16 => 2,
        other => {
            return Err(e(format!(
                "{other} variables are not supported (Keras float32 weights, integer iterations)"
            )));
        }
    };
    // Refuse a declared size the file cannot hold before allocating it.
    let bytes = n.saturating_mul(esize);
    match ds.layout().map_err(|x| e(x.to_string()))? {
        Layout::Contiguous { size, .. } | Layout::Compact { size } => {
            if bytes > file_len || (size as usize) < bytes {
                return Err(e(format!(
                    "declares {bytes} bytes of data but stores {size} (the file has {file_len})"
                )));
            }
        }
        _ => {
            return Err(e(
                "chunked, compressed or virtual datasets are not supported (Keras writes \
                 contiguous ones)"
                    .into(),
            ));
        }
    }
    let values = if dtype == DType::F32 {
        VarValues::F32(ds.read_f32().map_err(|x| e(x.to_string()))?)
    } else {
        VarValues::Int(ds.read_i64().map_err(|x| e(x.to_string()))?)
    };
    let len = match &values {
        VarValues::F32(v) => v.len(),
        VarValues::Int(v) => v.len(),
    };
    if len != n {
        return Err(e(format!("read {len} values for shape {shape:?}")));
    }
    Ok(StoredVar { shape, values })
}
