//! Tensors, variables and models as the golden files write them.

use microfit::core::activation::Activation;
use microfit::core::layer::PenaltyKind;
use microfit::core::loss::Loss;
use microfit::core::params::Params;
use microfit::core::train::{Samples, Targets};
use microfit::model::{ModelSpec, Sequential};
use serde_json::Value;

/// The `data` of a `{shape, data}` tensor as f32 (every value is a float32 written exactly).
pub fn floats(t: &Value) -> Vec<f32> {
    t["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a tensor: {t}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")) as f32)
        .collect()
}

/// The `shape` of a `{shape, data}` tensor.
pub fn shape(t: &Value) -> Vec<usize> {
    t["shape"]
        .as_array()
        .unwrap_or_else(|| panic!("not a tensor: {t}"))
        .iter()
        .map(|x| x.as_u64().unwrap_or_else(|| panic!("bad dimension {x}")) as usize)
        .collect()
}

/// An integer tensor (labels).
pub fn labels(t: &Value) -> Vec<u32> {
    t["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a tensor: {t}"))
        .iter()
        .map(|x| x.as_u64().unwrap_or_else(|| panic!("not a label: {x}")) as u32)
        .collect()
}

/// A JSON number as f64.
///
/// # Panics
/// If `v` is not a number.
pub fn num(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, found {v}"))
}

/// Samples of `x` (rows of the model's input size) with dense targets `y` (rows of `width`), or
/// class labels when `classes` is not empty (a sparse loss).
///
/// # Panics
/// If the sizes do not fit.
pub fn samples_of<'a>(
    x: &'a [f32],
    input_shape: &[usize],
    y: &'a [f32],
    classes: &'a [u32],
    width: usize,
) -> Samples<'a> {
    let t = if classes.is_empty() {
        Targets::Dense { values: y, width }
    } else {
        Targets::Classes(classes)
    };
    Samples::new(x, input_shape.iter().product(), t).expect("samples")
}

/// Every tensor of a parameter set, in order.
pub fn tensors<P: Params>(p: &P) -> Vec<Vec<f32>> {
    (0..p.tensor_count())
        .map(|i| p.tensor(i).to_vec())
        .collect()
}

/// Keras layer names in model order: from `keras_model_config` when given, else from the
/// `<layer>/<kernel|bias>` keys in Keras' automatic naming order (`dense`, `dense_1`, ...).
pub fn layer_order(weights: &Value, keras_model_config: Option<&Value>) -> Vec<String> {
    if let Some(cfg) = keras_model_config {
        return cfg["layers"]
            .as_array()
            .expect("keras_model_config.layers")
            .iter()
            .filter(|l| l["class_name"] != "InputLayer")
            .map(|l| {
                l["config"]["name"]
                    .as_str()
                    .expect("layer name")
                    .to_string()
            })
            .collect();
    }
    let mut names: Vec<String> = weights
        .as_object()
        .expect("weights object")
        .keys()
        .map(|k| k.split('/').next().unwrap_or(k).to_string())
        .collect();
    names.dedup();
    names.sort_by_key(|n| match n.rsplit_once('_') {
        Some((base, i)) if i.parse::<u32>().is_ok() => {
            (base.to_string(), i.parse::<u32>().unwrap_or(0) + 1)
        }
        _ => (n.clone(), 0),
    });
    names.dedup();
    names
}

/// Tensor index of the Keras variable `"<layer>/<kernel|bias>"` in a Dense-only model
/// (each layer holds its kernel then its bias).
pub fn var_index(layers: &[String], key: &str) -> usize {
    let (layer, kind) = key
        .split_once('/')
        .unwrap_or_else(|| panic!("bad variable name {key}"));
    let i = layers
        .iter()
        .position(|l| l == layer)
        .unwrap_or_else(|| panic!("unknown layer {layer} (layers: {layers:?})"));
    match kind {
        "kernel" => 2 * i,
        "bias" => 2 * i + 1,
        _ => panic!("unknown variable kind {kind}"),
    }
}

/// The `"<layer>/<kind>"` penalty key → (layer index, kind).
pub fn penalty_key(layers: &[String], key: &str) -> (usize, PenaltyKind) {
    let (layer, kind) = key
        .split_once('/')
        .unwrap_or_else(|| panic!("bad penalty name {key}"));
    let i = layers
        .iter()
        .position(|l| l == layer)
        .unwrap_or_else(|| panic!("unknown layer {layer}"));
    let k = match kind {
        "kernel" => PenaltyKind::Kernel,
        "bias" => PenaltyKind::Bias,
        "activity" => PenaltyKind::Activity,
        _ => panic!("unknown penalty kind {kind}"),
    };
    (i, k)
}

/// The named weights of a file (`{"d1/kernel": tensor, ...}`) as tensors in model order.
pub fn weights_in_order(layers: &[String], named: &Value) -> Vec<Vec<f32>> {
    let obj = named.as_object().expect("weights object");
    let mut out = vec![Vec::new(); 2 * layers.len()];
    for (k, t) in obj {
        out[var_index(layers, k)] = floats(t);
    }
    out
}

/// Copies tensors into a parameter set of the same structure.
///
/// # Panics
/// If a size differs.
pub fn set_tensors<P: Params>(p: &mut P, t: &[Vec<f32>]) {
    assert_eq!(p.tensor_count(), t.len(), "tensor count");
    for (i, v) in t.iter().enumerate() {
        let dst = p.tensor_mut(i);
        assert_eq!(dst.len(), v.len(), "tensor {i} size");
        dst.copy_from_slice(v);
    }
}

/// Builds a [`Sequential`] from `spec` with the given weights (model order).
pub fn build_with(spec: &ModelSpec, weights: &[Vec<f32>]) -> Sequential {
    let mut m = spec
        .build(0)
        .unwrap_or_else(|e| panic!("spec does not build: {e}"));
    set_tensors(&mut m.params, weights);
    m
}

/// `spec` with every regularizer removed.
pub fn without_regularizers(spec: &ModelSpec) -> ModelSpec {
    let mut s = spec.clone();
    for l in &mut s.layers {
        if let Some(c) = l.dense_config_mut() {
            c.kernel_regularizer = None;
            c.bias_regularizer = None;
            c.activity_regularizer = None;
        }
    }
    s
}

/// The loss a description names (some files record it only in prose): a Keras class
/// (`CategoricalCrossentropy`), a Keras identifier (`categorical_crossentropy`) or `MSE`.
///
/// # Panics
/// If it names none, or several.
pub fn loss_in_text(text: &str) -> Loss {
    let words: Vec<&str> = text
        .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut found: Vec<Loss> = Vec::new();
    for w in words {
        let l = match w {
            "MSE" => Some(Loss::MeanSquaredError),
            "MAE" => Some(Loss::MeanAbsoluteError),
            "BCE" => Some(Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            }),
            "CCE" => Some(Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            }),
            "SCCE" => Some(Loss::SparseCategoricalCrossentropy { from_logits: false }),
            w => Loss::from_keras_name(w),
        };
        if let Some(l) = l
            && !found.contains(&l)
        {
            found.push(l);
        }
    }
    match found.as_slice() {
        [l] => *l,
        _ => panic!("the description names no single loss ({found:?}): {text:?}"),
    }
}

/// An activation by its Keras name.
///
/// # Panics
/// If microfit has no such activation.
pub fn activation_from_keras_name(name: &str) -> Activation {
    Activation::from_keras_name(name).unwrap_or_else(|| panic!("unknown activation {name:?}"))
}

/// The activation a description names as `<name> activation` or `activation=<name>`.
///
/// # Panics
/// If it names none.
pub fn activation_in_text(text: &str) -> Activation {
    let words: Vec<&str> = text
        .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        let named = match *w {
            "activation" if i > 0 => Activation::from_keras_name(words[i - 1]),
            _ => None,
        }
        .or_else(|| {
            (*w == "activation")
                .then(|| {
                    words
                        .get(i + 1)
                        .and_then(|n| Activation::from_keras_name(n))
                })
                .flatten()
        });
        if let Some(a) = named {
            return a;
        }
    }
    panic!("the description names no activation: {text:?}")
}
