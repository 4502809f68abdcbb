//! Reading and checking a workload file (see the [crate docs](crate) for the format).

use serde_json::{Map, Value};

use crate::{
    Activation, Clip, Constraint, Layer, LayerKind, Loss, Optimizer, Reg, Regs, Schedule, Targets,
    Tensor, Training, Weighted, Workload,
};

type Obj = Map<String, Value>;

fn num(v: &Value, what: &str) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("{what}: not a number"))
}

fn f32_of(v: &Value, what: &str) -> Result<f32, String> {
    let x = num(v, what)? as f32;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(format!("{what}: {x} is not a finite f32"))
    }
}

fn uint(v: &Value, what: &str) -> Result<usize, String> {
    v.as_u64()
        .map(|u| u as usize)
        .ok_or_else(|| format!("{what}: not a non-negative integer"))
}

fn opt<'a>(o: &'a Obj, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn tensor(v: &Value, what: &str) -> Result<(Vec<usize>, Vec<f32>), String> {
    let o = v
        .as_object()
        .ok_or_else(|| format!("{what}: not a tensor object"))?;
    let shape = o
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{what}: no shape"))?
        .iter()
        .map(|d| uint(d, &format!("{what}.shape")))
        .collect::<Result<Vec<_>, _>>()?;
    let data = o
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{what}: no data"))?
        .iter()
        .map(|d| f32_of(d, &format!("{what}.data")))
        .collect::<Result<Vec<_>, _>>()?;
    if shape.iter().product::<usize>() != data.len() {
        return Err(format!(
            "{what}: shape {shape:?} holds {} values, data has {}",
            shape.iter().product::<usize>(),
            data.len()
        ));
    }
    Ok((shape, data))
}

/// `3` or `[3, 3]` for `n` spatial axes.
fn per_axis(
    o: &Obj,
    key: &str,
    n: usize,
    default: Option<usize>,
    what: &str,
) -> Result<Vec<usize>, String> {
    let v = match (opt(o, key), default) {
        (Some(v), _) => v,
        (None, Some(d)) => return Ok(vec![d; n]),
        (None, None) => return Err(format!("{what}: no {key}")),
    };
    let out = match v {
        Value::Array(a) => a
            .iter()
            .map(|d| uint(d, &format!("{what}.{key}")))
            .collect::<Result<Vec<_>, _>>()?,
        _ => vec![uint(v, &format!("{what}.{key}"))?; n],
    };
    if out.len() != n || out.contains(&0) {
        return Err(format!(
            "{what}.{key}: {n} positive sizes expected, got {out:?}"
        ));
    }
    Ok(out)
}

fn activation(o: &Obj, what: &str) -> Result<Activation, String> {
    Ok(match opt(o, "activation").map(|v| v.as_str()) {
        None | Some(Some("linear")) => Activation::Linear,
        Some(Some("relu")) => Activation::Relu,
        Some(Some("sigmoid")) => Activation::Sigmoid,
        Some(Some("tanh")) => Activation::Tanh,
        Some(Some("softmax")) => Activation::Softmax,
        Some(Some("leaky_relu")) => Activation::LeakyRelu(match opt(o, "alpha") {
            Some(a) => f32_of(a, &format!("{what}.alpha"))?,
            None => 0.2,
        }),
        Some(other) => return Err(format!("{what}.activation: {other:?} is not supported")),
    })
}

fn reg(o: &Obj, key: &str, what: &str) -> Result<Option<Reg>, String> {
    let Some(v) = opt(o, key) else {
        return Ok(None);
    };
    let r = v
        .as_object()
        .ok_or_else(|| format!("{what}.{key}: an object like {{\"l2\": 0.001}} expected"))?;
    let get = |k: &str| opt(r, k).map(|v| f32_of(v, &format!("{what}.{key}.{k}")));
    let non_negative = |x: f32, k: &str| {
        if x >= 0.0 {
            Ok(x)
        } else {
            Err(format!("{what}.{key}.{k}: {x} is negative"))
        }
    };
    if let Some(f) = get("orthogonal") {
        let rows = match opt(r, "mode").and_then(Value::as_str) {
            None | Some("rows") => true,
            Some("columns") => false,
            Some(m) => return Err(format!("{what}.{key}.mode: {m:?}")),
        };
        return Ok(Some(Reg::Orthogonal(non_negative(f?, "orthogonal")?, rows)));
    }
    Ok(Some(match (get("l1"), get("l2")) {
        (Some(a), Some(b)) => Reg::L1L2(non_negative(a?, "l1")?, non_negative(b?, "l2")?),
        (Some(a), None) => Reg::L1(non_negative(a?, "l1")?),
        (None, Some(b)) => Reg::L2(non_negative(b?, "l2")?),
        (None, None) => return Err(format!("{what}.{key}: no l1, l2 or orthogonal factor")),
    }))
}

/// A Keras constraint `{"class_name", "config"}` (Keras' defaults for missing values).
pub(crate) fn constraint(v: &Value, what: &str) -> Result<Constraint, String> {
    let class = v
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what}.class_name: missing"))?;
    let empty = Map::new();
    let cfg = v.get("config").and_then(Value::as_object).unwrap_or(&empty);
    let f = |k: &str, d: f32| match opt(cfg, k) {
        Some(x) => f32_of(x, &format!("{what}.config.{k}")),
        None => Ok(d),
    };
    let axis = || -> Result<Vec<i8>, String> {
        let one = |x: &Value| {
            x.as_i64()
                .and_then(|a| i8::try_from(a).ok())
                .ok_or_else(|| format!("{what}.config.axis: not a small integer"))
        };
        match opt(cfg, "axis") {
            None => Ok(vec![0]),
            Some(Value::Array(a)) => a.iter().map(one).collect(),
            Some(x) => Ok(vec![one(x)?]),
        }
    };
    Ok(match class {
        "MaxNorm" => Constraint::MaxNorm {
            max_value: f("max_value", 2.0)?,
            axis: axis()?,
        },
        "MinMaxNorm" => Constraint::MinMaxNorm {
            min_value: f("min_value", 0.0)?,
            max_value: f("max_value", 1.0)?,
            rate: f("rate", 1.0)?,
            axis: axis()?,
        },
        "UnitNorm" => Constraint::UnitNorm { axis: axis()? },
        "NonNeg" => Constraint::NonNeg,
        other => return Err(format!("{what}: unknown constraint {other:?}")),
    })
}

fn weighted(o: &Obj, what: &str) -> Result<Weighted, String> {
    let cons = |key: &str| {
        opt(o, key)
            .map(|v| constraint(v, &format!("{what}.{key}")))
            .transpose()
    };
    Ok(Weighted {
        trainable: match opt(o, "trainable") {
            Some(v) => v
                .as_bool()
                .ok_or_else(|| format!("{what}.trainable: not a boolean"))?,
            None => true,
        },
        kernel_constraint: cons("kernel_constraint")?,
        bias_constraint: cons("bias_constraint")?,
        activation: activation(o, what)?,
        use_bias: match opt(o, "use_bias") {
            Some(v) => v
                .as_bool()
                .ok_or_else(|| format!("{what}.use_bias: not a boolean"))?,
            None => true,
        },
        regs: Regs {
            kernel: reg(o, "kernel_regularizer", what)?,
            bias: reg(o, "bias_regularizer", what)?,
            activity: reg(o, "activity_regularizer", what)?,
        },
    })
}

fn padding_same(o: &Obj, what: &str) -> Result<bool, String> {
    match opt(o, "padding").and_then(Value::as_str) {
        None | Some("valid") => Ok(false),
        Some("same") => Ok(true),
        Some(p) => Err(format!("{what}.padding: {p:?} (valid or same)")),
    }
}

/// Keras' output size of one axis (the core's `conv_out`).
fn conv_out(n: usize, k: usize, stride: usize, dilation: usize, same: bool) -> usize {
    if same {
        n.div_ceil(stride)
    } else {
        let ke = (k - 1) * dilation + 1;
        if n < ke { 0 } else { (n - ke) / stride + 1 }
    }
}

/// One layer object, given its input shape.
fn layer(v: &Value, i: usize, input: &[usize]) -> Result<Layer, String> {
    let what = format!("model[{i}]");
    let o = v
        .as_object()
        .ok_or_else(|| format!("{what}: not an object"))?;
    let kind = o
        .get("layer")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what}: no \"layer\" kind"))?;
    let spatial = |n: usize| -> Result<usize, String> {
        if input.len() == n + 1 {
            Ok(n)
        } else {
            Err(format!(
                "{what}: a {kind} layer needs a ({n} spatial axes, channels) input, got {input:?}"
            ))
        }
    };
    let dims = |k: &str| match k.chars().rev().nth(1) {
        Some('1') => Some(1),
        Some('2') => Some(2),
        Some('3') => Some(3),
        _ => None,
    };
    let (kind, output) = match kind {
        "dense" => {
            if input.len() != 1 {
                return Err(format!(
                    "{what}: a dense layer takes a flat input (add a flatten layer), got {input:?}"
                ));
            }
            let units = uint(
                o.get("units").unwrap_or(&Value::Null),
                &format!("{what}.units"),
            )?;
            if units == 0 {
                return Err(format!("{what}.units: 0"));
            }
            (LayerKind::Dense(weighted(o, &what)?), vec![units])
        }
        "conv1d" | "conv2d" | "conv3d" => {
            let n = spatial(dims(kind).unwrap_or(0))?;
            let filters = uint(
                o.get("filters").unwrap_or(&Value::Null),
                &format!("{what}.filters"),
            )?;
            let kernel = per_axis(o, "kernel_size", n, None, &what)?;
            let strides = per_axis(o, "strides", n, Some(1), &what)?;
            let dilation = per_axis(o, "dilation_rate", n, Some(1), &what)?;
            let same = padding_same(o, &what)?;
            let mut out = Vec::new();
            for a in 0..n {
                let s = conv_out(input[a], kernel[a], strides[a], dilation[a], same);
                if s == 0 {
                    return Err(format!(
                        "{what}: the kernel is larger than axis {a} of {input:?}"
                    ));
                }
                out.push(s);
            }
            out.push(filters);
            let kind = LayerKind::Conv {
                w: weighted(o, &what)?,
                filters,
                kernel,
                strides,
                dilation,
                same,
            };
            (kind, out)
        }
        "max_pooling1d" | "max_pooling2d" | "max_pooling3d" | "average_pooling1d"
        | "average_pooling2d" | "average_pooling3d" => {
            let n = spatial(dims(kind).unwrap_or(0))?;
            let pool = per_axis(o, "pool_size", n, Some(2), &what)?;
            let strides = match opt(o, "strides") {
                Some(_) => per_axis(o, "strides", n, None, &what)?,
                None => pool.clone(),
            };
            let same = padding_same(o, &what)?;
            let mut out = Vec::new();
            for a in 0..n {
                let s = conv_out(input[a], pool[a], strides[a], 1, same);
                if s == 0 {
                    return Err(format!(
                        "{what}: the pool is larger than axis {a} of {input:?}"
                    ));
                }
                out.push(s);
            }
            out.push(input[n]);
            let kind = LayerKind::Pool {
                max: kind.starts_with("max"),
                pool,
                strides,
                same,
            };
            (kind, out)
        }
        "flatten" => (LayerKind::Flatten, vec![input.iter().product()]),
        "dropout" => {
            let rate = f32_of(
                o.get("rate").unwrap_or(&Value::Null),
                &format!("{what}.rate"),
            )?;
            if !(0.0..1.0).contains(&rate) {
                return Err(format!("{what}.rate: {rate} is not in [0, 1)"));
            }
            let seed = opt(o, "seed")
                .map(|s| {
                    s.as_u64()
                        .ok_or_else(|| format!("{what}.seed: not an integer"))
                })
                .transpose()?;
            (LayerKind::Dropout { rate, seed }, input.to_vec())
        }
        other => return Err(format!("{what}: layer kind {other:?} is not supported")),
    };
    Ok(Layer {
        kind,
        input: input.to_vec(),
        output,
    })
}

fn schedule(t: &Obj) -> Result<Schedule, String> {
    let lr = t
        .get("learning_rate")
        .ok_or("training.learning_rate: missing")?;
    if let Some(e) = lr.get("exponential_decay") {
        let e = e
            .as_object()
            .ok_or("training.learning_rate.exponential_decay: not an object")?;
        let get = |k: &str| {
            e.get(k)
                .ok_or_else(|| format!("training.learning_rate.exponential_decay.{k}: missing"))
        };
        let w = "training.learning_rate.exponential_decay";
        return Ok(Schedule::Exponential {
            initial: f32_of(get("initial_learning_rate")?, w)?,
            decay_steps: uint(get("decay_steps")?, w)? as u32,
            decay_rate: f32_of(get("decay_rate")?, w)?,
            staircase: e.get("staircase").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    Ok(Schedule::Constant(f32_of(lr, "training.learning_rate")?))
}

fn training(t: &Obj) -> Result<Training, String> {
    let f = |k: &str, default: f32| -> Result<f32, String> {
        match opt(t, k) {
            Some(v) => f32_of(v, &format!("training.{k}")),
            None => Ok(default),
        }
    };
    let clip_key = |k: &str| -> Result<Option<f32>, String> {
        opt(t, k)
            .map(|v| f32_of(v, &format!("training.{k}")))
            .transpose()
    };
    let optimizer = match t.get("optimizer").and_then(Value::as_str) {
        Some("adam") | Some("adamw") => Optimizer::Adam {
            beta_1: f("beta_1", 0.9)?,
            beta_2: f("beta_2", 0.999)?,
            epsilon: f("epsilon", 1e-7)?,
            weight_decay: match (
                t.get("optimizer").and_then(Value::as_str),
                opt(t, "weight_decay"),
            ) {
                (Some("adamw"), None) => Some(0.004),
                (_, Some(v)) => Some(f32_of(v, "training.weight_decay")?),
                _ => None,
            },
        },
        Some("sgd") => Optimizer::Sgd {
            momentum: f("momentum", 0.0)?,
            nesterov: opt(t, "nesterov").and_then(Value::as_bool).unwrap_or(false),
        },
        other => {
            return Err(format!(
                "training.optimizer: {other:?} (adam, adamw or sgd)"
            ));
        }
    };
    let from_logits = opt(t, "from_logits")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let label_smoothing = match opt(t, "label_smoothing") {
        Some(v) => f32_of(v, "training.label_smoothing")?,
        None => 0.0,
    };
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(format!(
            "training.label_smoothing: {label_smoothing} is not in [0, 1]"
        ));
    }
    let loss = match t.get("loss").and_then(Value::as_str) {
        Some("mean_squared_error" | "mse") => Loss::MeanSquaredError,
        Some("mean_absolute_error" | "mae") => Loss::MeanAbsoluteError,
        Some("binary_crossentropy") => Loss::BinaryCrossentropy {
            from_logits,
            label_smoothing,
        },
        Some("categorical_crossentropy") => Loss::CategoricalCrossentropy {
            from_logits,
            label_smoothing,
        },
        Some("sparse_categorical_crossentropy") => {
            Loss::SparseCategoricalCrossentropy { from_logits }
        }
        other => return Err(format!("training.loss: {other:?} is not supported")),
    };
    if opt(t, "shuffle").and_then(Value::as_bool) == Some(true) {
        return Err("training.shuffle: the firmware trains batches in file order (false)".into());
    }
    let batch_size = uint(
        t.get("batch_size").unwrap_or(&Value::Null),
        "training.batch_size",
    )?;
    let epochs = uint(t.get("epochs").unwrap_or(&Value::Null), "training.epochs")?;
    if batch_size == 0 || epochs == 0 || epochs > u32::MAX as usize {
        return Err("training: batch_size and epochs must be positive".into());
    }
    Ok(Training {
        optimizer,
        schedule: schedule(t)?,
        clip: Clip {
            value: clip_key("clipvalue")?,
            norm: clip_key("clipnorm")?,
            global_norm: clip_key("global_clipnorm")?,
        },
        loss,
        batch_size,
        epochs: epochs as u32,
    })
}

pub(crate) fn workload(text: &str) -> Result<Workload, String> {
    let w: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let w = w.as_object().ok_or("not a JSON object")?;
    let name = w
        .get("name")
        .and_then(Value::as_str)
        .ok_or("name: missing")?
        .to_string();
    let (xs, x) = tensor(w.get("x").ok_or("x: missing")?, "x")?;
    let samples = *xs.first().ok_or("x: no sample axis")?;
    let per_sample: usize = xs[1..].iter().product();
    let input_shape = match opt(w, "input_shape") {
        Some(v) => v
            .as_array()
            .ok_or("input_shape: not an array")?
            .iter()
            .map(|d| uint(d, "input_shape"))
            .collect::<Result<Vec<_>, _>>()?,
        None => xs[1..].to_vec(),
    };
    if input_shape.is_empty()
        || input_shape.iter().product::<usize>() != per_sample
        || per_sample == 0
    {
        return Err(format!(
            "input_shape {input_shape:?} does not describe x's {per_sample} values per sample"
        ));
    }
    if samples == 0 {
        return Err("x: no samples".into());
    }
    let model = w
        .get("model")
        .and_then(Value::as_array)
        .ok_or("model: missing")?;
    if model.is_empty() {
        return Err("model: no layers".into());
    }
    let mut layers = Vec::new();
    let mut shape = input_shape.clone();
    for (i, l) in model.iter().enumerate() {
        let l = layer(l, i, &shape)?;
        shape = l.output.clone();
        layers.push(l);
    }
    // Legacy: `kernel_l2` on every Dense kernel without its own regularizer.
    if let Some(v) = opt(w, "kernel_l2") {
        let l2 = f32_of(v, "kernel_l2")?;
        if l2 < 0.0 {
            return Err("kernel_l2: negative".into());
        }
        if l2 > 0.0 {
            for l in &mut layers {
                if let LayerKind::Dense(w) = &mut l.kind
                    && w.regs.kernel.is_none()
                {
                    w.regs.kernel = Some(Reg::L2(l2));
                }
            }
        }
    }
    // Fine-tuning (the `w2-frozen` file's keys): the first `frozen_layers` layers frozen, and
    // `kernel_constraint` on the last weighted layer's kernel.
    if let Some(v) = opt(w, "frozen_layers") {
        let n = uint(v, "frozen_layers")?;
        if n > layers.len() {
            return Err(format!(
                "frozen_layers: {n}, the model has {} layers",
                layers.len()
            ));
        }
        for l in &mut layers[..n] {
            if let LayerKind::Dense(w) | LayerKind::Conv { w, .. } = &mut l.kind {
                w.trainable = false;
            }
        }
    }
    if let Some(v) = opt(w, "kernel_constraint") {
        let c = constraint(v, "kernel_constraint")?;
        match layers.iter_mut().rev().find_map(|l| match &mut l.kind {
            LayerKind::Dense(w) | LayerKind::Conv { w, .. } => Some(w),
            _ => None,
        }) {
            Some(w) => w.kernel_constraint = Some(c),
            None => return Err("kernel_constraint: the model has no weighted layer".into()),
        }
    }
    let out_len: usize = shape.iter().product();
    let targets = match (opt(w, "labels"), opt(w, "y")) {
        (Some(l), None) => {
            let (ls, data) = tensor(l, "labels")?;
            if ls != [samples] {
                return Err(format!("labels: shape {ls:?}, expected [{samples}]"));
            }
            let classes = uint(w.get("classes").unwrap_or(&Value::Null), "classes")?;
            if classes != out_len {
                return Err(format!(
                    "classes: {classes}, but the model has {out_len} outputs"
                ));
            }
            let labels = data
                .iter()
                .map(|&v| {
                    if v >= 0.0 && v.fract() == 0.0 && (v as usize) < classes {
                        Ok(v as u32)
                    } else {
                        Err(format!("labels: {v} is not a class below {classes}"))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Targets::Classes { labels, classes }
        }
        (None, Some(y)) => {
            let (ys, values) = tensor(y, "y")?;
            if ys.first() != Some(&samples) || ys[1..].iter().product::<usize>() != out_len {
                return Err(format!(
                    "y: shape {ys:?}, expected [{samples}, {out_len}] (the model's outputs)"
                ));
            }
            Targets::Dense {
                values,
                width: out_len,
            }
        }
        _ => return Err("exactly one of labels and y is needed".into()),
    };
    let training = training(
        w.get("training")
            .and_then(Value::as_object)
            .ok_or("training: missing")?,
    )?;
    if matches!(training.loss, Loss::SparseCategoricalCrossentropy { .. })
        && !matches!(targets, Targets::Classes { .. })
    {
        return Err("training.loss: sparse_categorical_crossentropy needs labels".into());
    }
    // The weights: `<kind>_<k>/kernel` and `/bias`, k counting the layers of that kind.
    let iw = w
        .get("initial_weights")
        .and_then(Value::as_object)
        .ok_or("initial_weights: missing")?;
    let mut weights = Vec::new();
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for l in &layers {
        let shapes = l.weight_shapes();
        if shapes.is_empty() {
            continue;
        }
        let kind = l.kind_name();
        let k = match counts.iter_mut().find(|(n, _)| *n == kind) {
            Some((_, c)) => {
                *c += 1;
                *c - 1
            }
            None => {
                counts.push((kind, 1));
                0
            }
        };
        for (shape, part) in shapes.into_iter().zip(["kernel", "bias"]) {
            let name = format!("{kind}_{k}/{part}");
            let (s, data) = tensor(
                iw.get(&name)
                    .ok_or_else(|| format!("initial_weights: {name} missing"))?,
                &format!("initial_weights.{name}"),
            )?;
            if s != shape {
                return Err(format!(
                    "initial_weights.{name}: shape {s:?}, the model needs {shape:?}"
                ));
            }
            weights.push(Tensor { name, shape, data });
        }
    }
    if let Some(extra) = iw.keys().find(|k| !weights.iter().any(|t| &t.name == *k)) {
        return Err(format!("initial_weights: {extra} belongs to no layer"));
    }
    let min_accuracy = match opt(w, "min_accuracy") {
        Some(v) => Some(f32_of(v, "min_accuracy")?),
        None => matches!(
            training.loss,
            Loss::CategoricalCrossentropy { .. } | Loss::SparseCategoricalCrossentropy { .. }
        )
        .then_some(0.95),
    };
    Ok(Workload {
        name,
        input_shape,
        x,
        samples,
        targets,
        layers,
        weights,
        training,
        min_accuracy,
    })
}
