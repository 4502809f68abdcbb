//! The toolbox files of issue 12: `constraints_*.json`, `label_smoothing_*.json`,
//! `regularization_layers_*.json`. Every model is built from what the file says — layer kind
//! and sizes from the weights' shapes, activations, constraints, regularizers, losses and
//! optimizers from its keys and its prose — and every recorded step is checked twice:
//!
//! * **forward and gradients** at the recorded weights before the step (data loss, the named
//!   penalties in Keras' `model.losses` order, total loss, gradients: `rtol 1e-5, atol 1e-6`);
//! * **the update** replayed from the recorded gradients, weights and slots (the optimizer's
//!   step, then the model's constraints, as Keras' `BaseOptimizer.apply` does): weights and
//!   slots **bit for bit**.
//!
//! `regularization_layers_*.json` names neither the activations nor the loss of its two Dense
//! layers: the runner takes the one combination of Keras' usual ones (hidden `relu`, `linear`,
//! `tanh`, `sigmoid`; output `softmax` + CCE, `sigmoid` + BCE, `linear` + MSE) that gives the
//! recorded data loss and penalty of step 1 (two would be a failure), then checks every step
//! with it. The noise layers' training-time draws come from TensorFlow's generator and have no
//! golden values (their laws are tested in `core/tests/noise_laws.rs`); the file's
//! `identity_at_inference` is checked bit for bit on each layer.

use microfit::core::activation::Activation;
use microfit::core::backend::Portable;
use microfit::core::constraint::{Axes, Constraint};
use microfit::core::layer::PenaltyKind;
use microfit::core::loss::{Loss, Target};
use microfit::core::optim::Optimizer;
use microfit::core::regularizer::Reg;
use microfit::core::train::{Rows, Samples, Targets, Trainable, compute_gradients};
use microfit::model::{LayerSpec, ModelSpec, Sequential};
use serde_json::{Value, json};

use super::activity_scaling::reg_call;
use super::check::{Checker, FWD, penalty_tol};
use super::named::{check_named, recorded_slots};
use super::optimizer_long::FileOptimizer;
use super::tensor::{
    activation_from_keras_name, build_with, floats, layer_order, num, set_tensors, shape, tensors,
    weights_in_order,
};

// --------------------------------------------------------------------------------- parsing

/// The argument list of the call that starts at `text[open]` (`(` … the matching `)`).
fn call_args(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, ch) in text[open..].char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unclosed call in {text:?}")
}

/// Splits `a=1, b=[0, 1], c` at the top-level commas.
fn split_args(args: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, ch) in args.char_indices() {
        match ch {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(args[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(args[start..].trim());
    out.retain(|a| !a.is_empty());
    out
}

/// A Python value as JSON: a number, a list of numbers, `True`/`False`, a quoted string.
fn py_value(v: &str) -> Value {
    let v = v.trim();
    match v {
        "True" => return json!(true),
        "False" => return json!(false),
        "None" => return Value::Null,
        _ => {}
    }
    if let Some(list) = v.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
        return Value::Array(split_args(list).into_iter().map(py_value).collect());
    }
    if let Some(s) = v
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| v.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
    {
        return json!(s);
    }
    if let Ok(i) = v.parse::<i64>() {
        return json!(i);
    }
    json!(
        v.parse::<f64>()
            .unwrap_or_else(|_| panic!("not a value: {v:?}"))
    )
}

/// Keras' `axis`: an int or a list of ints.
fn axes_of(v: Option<&Value>) -> Axes {
    match v {
        None | Some(Value::Null) => Axes::one(0),
        Some(Value::Array(a)) => {
            let list: Vec<i8> = a.iter().map(|x| x.as_i64().expect("axis") as i8).collect();
            Axes::list(&list)
        }
        Some(x) => Axes::one(x.as_i64().expect("axis") as i8),
    }
}

/// A Keras constraint from its class name and config (Keras 3 defaults for what is missing).
pub fn constraint_of(class: &str, cfg: &Value) -> Constraint {
    let f = |k: &str, default: f64| cfg.get(k).and_then(Value::as_f64).unwrap_or(default) as f32;
    match class {
        "MaxNorm" | "max_norm" => {
            Constraint::max_norm(f("max_value", 2.0), axes_of(cfg.get("axis")))
        }
        "MinMaxNorm" | "min_max_norm" => Constraint::min_max_norm(
            f("min_value", 0.0),
            f("max_value", 1.0),
            f("rate", 1.0),
            axes_of(cfg.get("axis")),
        ),
        "NonNeg" | "non_neg" => Constraint::NonNeg,
        "UnitNorm" | "unit_norm" => Constraint::unit_norm(axes_of(cfg.get("axis"))),
        other => panic!("unknown constraint {other}"),
    }
}

/// `<key>=<Class>(<args>)` in `text` (e.g. `kernel_constraint=MaxNorm(axis=0)`), its missing
/// arguments taken from `extra` (a training record's `max_value`, ...).
fn prose_constraint(text: &str, key: &str, extra: &Value) -> Option<Constraint> {
    let at = text.find(&format!("{key}="))? + key.len() + 1;
    let rest = &text[at..];
    let class: String = rest
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let mut cfg = serde_json::Map::new();
    if rest[class.len()..].starts_with('(') {
        for a in split_args(call_args(rest, class.len())) {
            let (k, v) = a
                .split_once('=')
                .unwrap_or_else(|| panic!("a keyword argument in {key}={class}(...): {a}"));
            cfg.insert(k.trim().to_string(), py_value(v));
        }
    }
    for k in ["max_value", "min_value", "rate", "axis"] {
        if !cfg.contains_key(k)
            && let Some(v) = extra.get(k)
        {
            cfg.insert(k.to_string(), v.clone());
        }
    }
    Some(constraint_of(&class, &Value::Object(cfg)))
}

/// The `kernel|bias|activity <Reg>(…)` regularizers written in `text`.
fn prose_regularizers(text: &str) -> [Option<Reg>; 3] {
    ["kernel ", "bias ", "activity "].map(|key| {
        let i = text.find(key)?;
        let rest = &text[i + key.len()..];
        let class: String = rest
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        (class.starts_with('L') && rest[class.len()..].starts_with('('))
            .then(|| reg_call(&rest[..class.len() + call_args(rest, class.len()).len() + 2]))
    })
}

/// The layer a training record's prose describes — `Dense(<activation>) …` or
/// `Conv<n>D(<k>x<k>, <padding>[, strides=s][, <activation>]) …` — with the constraints and
/// regularizers written after it, its size from the kernel `kernel_shape`.
fn prose_layer(text: &str, kernel_shape: &[usize], extra: &Value) -> LayerSpec {
    let class: String = text
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let args: Vec<&str> = if text[class.len()..].starts_with('(') {
        split_args(call_args(text, class.len()))
    } else {
        Vec::new()
    };
    let activation = args
        .iter()
        .find_map(|a| Activation::from_keras_name(a.trim_start_matches("activation=")))
        .unwrap_or(Activation::Linear);
    let out = *kernel_shape.last().expect("kernel shape");
    let mut l = match class.as_str() {
        "Dense" => LayerSpec::dense(out, activation),
        "Conv1D" | "Conv2D" | "Conv3D" => {
            let rank = kernel_shape.len() - 2;
            let k = &kernel_shape[..rank];
            let mut l = match rank {
                1 => LayerSpec::conv1d(out, k[0], activation),
                2 => LayerSpec::conv2d(out, [k[0], k[1]], activation),
                _ => LayerSpec::conv3d(out, [k[0], k[1], k[2]], activation),
            };
            if args.contains(&"same") {
                l = l.with_padding(microfit::core::layer::conv::Padding::Same);
            }
            if let Some(s) = args.iter().find_map(|a| a.strip_prefix("strides=")) {
                let s: Vec<usize> = match py_value(s) {
                    Value::Array(a) => a
                        .iter()
                        .map(|v| v.as_u64().expect("stride") as usize)
                        .collect(),
                    v => vec![v.as_u64().expect("stride") as usize],
                };
                l = l.with_strides(&s);
            }
            l
        }
        other => panic!("unknown layer {other} in {text:?}"),
    };
    let c = l.dense_config_mut().expect("a layer with weights");
    c.kernel_constraint = prose_constraint(text, "kernel_constraint", extra);
    c.bias_constraint = prose_constraint(text, "bias_constraint", extra);
    let [k, b, a] = prose_regularizers(text);
    c.kernel_regularizer = k;
    c.bias_regularizer = b;
    c.activity_regularizer = a;
    l
}

/// `Adam(0.01)`, `SGD(learning_rate=0.1)`, ... in `text`: class and config.
fn prose_optimizer(text: &str) -> (String, Value) {
    for class in ["AdamW", "Adam", "SGD", "RMSprop"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(&format!("{class}(")) {
            let at = from + i;
            from = at + 1;
            // Not the end of a longer name (`AdamW(` when looking for `Adam(`).
            if at > 0 && text[..at].ends_with(|c: char| c.is_ascii_alphanumeric()) {
                continue;
            }
            let mut cfg = serde_json::Map::new();
            for (n, a) in split_args(call_args(text, at + class.len()))
                .into_iter()
                .enumerate()
            {
                match a.split_once('=') {
                    Some((k, v)) => cfg.insert(k.trim().to_string(), py_value(v)),
                    None if n == 0 => cfg.insert("learning_rate".into(), py_value(a)),
                    None => panic!("positional argument {a} in {text:?}"),
                };
            }
            return (class.to_string(), Value::Object(cfg));
        }
    }
    panic!("no optimizer in {text:?}")
}

// ------------------------------------------------------------------------------ the steps

/// A training record: data, model, loss, optimizer and its recorded steps.
struct Training<'a> {
    /// For messages.
    label: String,
    spec: ModelSpec,
    loss: Loss,
    opt: FileOptimizer,
    /// Keras layer names in order (of the layers with weights).
    layers: Vec<String>,
    initial: Vec<Vec<f32>>,
    x: Vec<f32>,
    y: Vec<f32>,
    width: usize,
    steps: &'a [Value],
}

/// The penalties of a report in Keras' `model.losses` order (per layer: activity, kernel,
/// bias).
fn penalties_in_order(rep: &microfit::core::train::StepReport) -> Vec<(usize, PenaltyKind, f32)> {
    rep.penalties
        .entries()
        .iter()
        .map(|e| (e.layer as usize, e.kind, e.value))
        .collect()
}

impl Training<'_> {
    fn samples(&self) -> Samples<'_> {
        let n_in: usize = self.spec.input_shape.iter().product();
        Samples::new(
            &self.x,
            n_in,
            Targets::Dense {
                values: &self.y,
                width: self.width,
            },
        )
        .expect("samples")
    }

    /// Checks every recorded step (see the module docs).
    fn run(&self, c: &mut Checker) {
        c.case();
        let data = self.samples();
        let b = data.len();
        for (i, st) in self.steps.iter().enumerate() {
            let what = format!("{} step {}", self.label, i + 1);
            let before = if i == 0 {
                self.initial.clone()
            } else {
                weights_in_order(&self.layers, &self.steps[i - 1]["weights_after"])
            };
            // Forward and gradients at the recorded weights.
            let mut m = build_with(&self.spec, &before);
            let rep = compute_gradients::<Portable, _>(&mut m, self.loss, &data, Rows::Range(0, b))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            c.close1(
                &format!("{what}: data_loss"),
                rep.data_loss,
                num(&st["data_loss"]),
                FWD,
            );
            let got = penalties_in_order(&rep);
            let rec = st["reg_losses"].as_array().expect("reg_losses");
            c.truth(
                &format!(
                    "{what}: {} penalties, as recorded ({})",
                    got.len(),
                    rec.len()
                ),
                got.len() == rec.len(),
            );
            for (k, (g, e)) in got.iter().zip(rec).enumerate() {
                let tol = penalty_tol(num(e), None);
                c.close1(
                    &format!("{what}: reg_losses[{k}] ({:?})", g.1),
                    g.2,
                    num(e),
                    tol,
                );
            }
            c.close1(
                &format!("{what}: total_loss"),
                rep.total_loss,
                num(&st["total_loss"]),
                FWD,
            );
            check_named(
                c,
                &format!("{what}: grads"),
                &self.layers,
                &tensors(&m.grads),
                &st["grads"],
                Some(FWD),
            );
            // The update from the recorded gradients, then the constraints: bit for bit.
            let mut m = build_with(&self.spec, &before);
            let mut opt = self.opt.build(&m.params);
            if i > 0 {
                let prev = &self.steps[i - 1];
                for (slot, t) in recorded_slots(&self.layers, &prev["slots_after"]) {
                    set_tensors(opt.inner.slot_mut(&slot).expect("slot"), &t);
                }
                opt.inner.set_iterations(i as u32);
            }
            let mut g = m.params.clone();
            set_tensors(&mut g, &weights_in_order(&self.layers, &st["grads"]));
            opt.inner.step::<Portable>(&mut m.params, &mut g);
            m.apply_constraints();
            check_named(
                c,
                &format!("{what}: weights_after"),
                &self.layers,
                &tensors(&m.params),
                &st["weights_after"],
                None,
            );
            for (slot, exp) in recorded_slots(&self.layers, &st["slots_after"]) {
                let got = tensors(opt.inner.slot(&slot).expect("slot"));
                for (k, (g, e)) in got.iter().zip(&exp).enumerate() {
                    c.bits(&format!("{what}: slots_after.{slot}[{k}]"), g, e);
                }
            }
        }
    }
}

/// What a training record with `initial_weights` holds besides its steps.
struct Record {
    /// The input shape (without the batch axis).
    input: Vec<usize>,
    x: Vec<f32>,
    y: Vec<f32>,
    /// Target values per sample.
    width: usize,
    /// Keras layer names in order.
    layers: Vec<String>,
    /// Initial weights in model order.
    initial: Vec<Vec<f32>>,
}

fn record_data(t: &Value) -> Record {
    let xs = shape(&t["x"]);
    let layers = layer_order(&t["initial_weights"], None);
    Record {
        input: xs[1..].to_vec(),
        x: floats(&t["x"]),
        y: floats(&t["y_true"]),
        width: shape(&t["y_true"])[1..].iter().product(),
        initial: weights_in_order(&layers, &t["initial_weights"]),
        layers,
    }
}

// ------------------------------------------------------------------------------- the files

/// `constraints_*.json`: each constraint on a tensor (bit for bit), then the training runs.
pub(super) fn constraints(c: &mut Checker, v: &Value) {
    for (i, f) in v["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .enumerate()
    {
        c.case();
        let class = f["class_name"].as_str().expect("class_name");
        let k = constraint_of(class, &f["config"]);
        let mut w = floats(&f["w"]);
        k.apply(&mut w, &shape(&f["w"]));
        c.bits(
            &format!("functions[{i}] {class}{}", f["config"]),
            &w,
            &floats(&f["out"]),
        );
    }
    for key in ["dense_training", "conv_training"] {
        let Some(t) = c.optional(v, key, "") else {
            continue;
        };
        let Some(steps) = t["steps"].as_array().filter(|s| !s.is_empty()) else {
            c.absent(&format!("{key}.steps"));
            continue;
        };
        let Record {
            input,
            x,
            y,
            width,
            layers,
            initial,
        } = record_data(t);
        let kernel = t["initial_weights"]
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.ends_with("/kernel")))
            .expect("a kernel");
        let text = t["layer"].as_str().expect("layer");
        let spec = ModelSpec {
            input_shape: input,
            layers: vec![prose_layer(text, &shape(kernel.1), t)],
        };
        let o = &t["optimizer"];
        let loss_name = t["loss"].as_str().expect("loss");
        Training {
            label: format!("{key} ({text})"),
            spec,
            loss: Loss::from_keras_name(loss_name).expect("loss"),
            opt: FileOptimizer::parse(o["class_name"].as_str().expect("class_name"), &o["config"])
                .expect("optimizer"),
            layers,
            initial,
            x,
            y,
            width,
            steps,
        }
        .run(c);
    }
}

/// A loss by Keras name (or its class), `from_logits` and `label_smoothing`.
fn smoothed_loss(name: &str, from_logits: bool, ls: f32) -> Loss {
    match Loss::from_keras_name(name) {
        Some(Loss::CategoricalCrossentropy { .. }) => Loss::CategoricalCrossentropy {
            from_logits,
            label_smoothing: ls,
        },
        Some(Loss::BinaryCrossentropy { .. }) => Loss::BinaryCrossentropy {
            from_logits,
            label_smoothing: ls,
        },
        other => panic!("no label smoothing for {name} ({other:?})"),
    }
}

/// `label_smoothing_*.json`: each loss case (value and gradient with respect to `y_pred`), then
/// the training of a Dense layer into the smoothed loss (the cached-logits path).
pub(super) fn label_smoothing(c: &mut Checker, v: &Value) {
    for (i, case) in v["cases"].as_array().expect("cases").iter().enumerate() {
        c.case();
        let loss = smoothed_loss(
            case["loss"].as_str().expect("loss"),
            case["from_logits"].as_bool().expect("from_logits"),
            num(&case["label_smoothing"]) as f32,
        );
        let (p, y) = (floats(&case["y_pred"]), floats(&case["y_true"]));
        let d = *shape(&case["y_pred"]).last().expect("y_pred");
        let b = p.len() / d;
        let mut grad = vec![0.0f32; p.len()];
        let mut sum = 0.0f32;
        for r in 0..b {
            let row = r * d..(r + 1) * d;
            sum += loss
                .value_grad(
                    &p[row.clone()],
                    Target::Dense(&y[row.clone()]),
                    Some(&mut grad[row]),
                    1.0 / b as f32,
                )
                .expect("loss");
        }
        let what = format!("cases[{i}] {loss:?}");
        c.close1(
            &format!("{what}: value"),
            sum / b as f32,
            num(&case["value"]),
            FWD,
        );
        c.close(
            &format!("{what}: grad_y_pred"),
            &grad,
            &floats(&case["grad_y_pred"])
                .iter()
                .map(|&g| f64::from(g))
                .collect::<Vec<_>>(),
            FWD,
        );
    }
    let Some(t) = c.optional(v, "model_training", "") else {
        return;
    };
    let Some(steps) = t["steps"].as_array().filter(|s| !s.is_empty()) else {
        c.absent("model_training.steps");
        return;
    };
    // "model_training: Dense(softmax) output fed to CCE(label_smoothing=0.1, from_logits=False)"
    let desc = v["meta"]["description"].as_str().unwrap_or("");
    let text = desc
        .split_once("model_training:")
        .map_or(desc, |(_, rest)| rest);
    let Record {
        input,
        x,
        y,
        width,
        layers,
        initial,
    } = record_data(t);
    let act = text
        .find("Dense(")
        .map(|i| call_args(text, i + 5))
        .and_then(|a| {
            split_args(a)
                .into_iter()
                .find_map(Activation::from_keras_name)
        })
        .unwrap_or(Activation::Linear);
    let (loss_at, name) = [
        "CCE(",
        "BCE(",
        "CategoricalCrossentropy(",
        "BinaryCrossentropy(",
    ]
    .iter()
    .find_map(|n| text.find(n).map(|i| (i, *n)))
    .expect("the loss of model_training");
    let mut cfg = serde_json::Map::new();
    for a in split_args(call_args(text, loss_at + name.len() - 1)) {
        if let Some((k, v)) = a.split_once('=') {
            cfg.insert(k.trim().to_string(), py_value(v));
        }
    }
    let keras_name = match name {
        "CCE(" | "CategoricalCrossentropy(" => "categorical_crossentropy",
        _ => "binary_crossentropy",
    };
    let loss = smoothed_loss(
        keras_name,
        cfg.get("from_logits")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        cfg.get("label_smoothing")
            .and_then(Value::as_f64)
            .expect("label_smoothing") as f32,
    );
    let units = width;
    let o = &t["optimizer"];
    Training {
        label: format!("model_training (Dense({act:?}) into {loss:?})"),
        spec: ModelSpec {
            input_shape: input,
            layers: vec![LayerSpec::dense(units, act)],
        },
        loss,
        opt: FileOptimizer::parse(o["class_name"].as_str().expect("class_name"), &o["config"])
            .expect("optimizer"),
        layers,
        initial,
        x,
        y,
        width,
        steps,
    }
    .run(c);
}

/// The model of `regularization_layers_*.json`: `d1 → ActivityRegularization → d2`, with the
/// given activations, and optionally a layer after the activity regularization.
fn act_reg_spec(
    input: &[usize],
    units: (usize, usize),
    acts: (Activation, Activation),
    act_reg: (f32, f32),
    after: Option<LayerSpec>,
) -> ModelSpec {
    let mut layers = vec![
        LayerSpec::dense(units.0, acts.0),
        LayerSpec::ActivityRegularization {
            l1: act_reg.0,
            l2: act_reg.1,
        },
    ];
    layers.extend(after);
    layers.push(LayerSpec::dense(units.1, acts.1));
    ModelSpec {
        input_shape: input.to_vec(),
        layers,
    }
}

/// `regularization_layers_*.json`: `ActivityRegularization` training, inference through a
/// `GaussianNoise` layer, each noise layer the identity at inference.
pub(super) fn regularization_layers(c: &mut Checker, v: &Value) {
    let desc = v["meta"]["description"].as_str().unwrap_or("");
    let act_reg = &v["act_reg"];
    let (l1, l2) = (
        act_reg.get("l1").and_then(Value::as_f64).unwrap_or(0.0) as f32,
        act_reg.get("l2").and_then(Value::as_f64).unwrap_or(0.0) as f32,
    );
    let have_model = v.get("initial_weights").is_some() && v.get("x").is_some();
    if have_model {
        let Record {
            input,
            x,
            y,
            width,
            layers,
            initial,
        } = record_data(v);
        let units = (
            *shape(&v["initial_weights"][format!("{}/kernel", layers[0])])
                .last()
                .expect("d1"),
            width,
        );
        let steps = v["steps"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        // The activations and the loss: the one usual combination that gives step 1's
        // recorded data loss and penalty (see the module docs).
        let hidden = ["relu", "linear", "tanh", "sigmoid"].map(activation_from_keras_name);
        let heads = [
            (Activation::Softmax, "categorical_crossentropy"),
            (Activation::Sigmoid, "binary_crossentropy"),
            (Activation::Linear, "mean_squared_error"),
        ];
        let n_in: usize = input.iter().product();
        let data = Samples::new(&x, n_in, Targets::Dense { values: &y, width }).expect("samples");
        let mut fits = Vec::new();
        if let Some(first) = steps.first() {
            for h in hidden {
                for (out, loss) in heads {
                    let loss = Loss::from_keras_name(loss).expect("loss");
                    let spec = act_reg_spec(&input, units, (h, out), (l1, l2), None);
                    let mut m = build_with(&spec, &initial);
                    let Ok(rep) = compute_gradients::<Portable, _>(
                        &mut m,
                        loss,
                        &data,
                        Rows::Range(0, data.len()),
                    ) else {
                        continue;
                    };
                    let pen = first["reg_losses"]
                        .as_array()
                        .map_or(0.0, |a| a.iter().map(num).sum());
                    if FWD.accepts(f64::from(rep.data_loss), num(&first["data_loss"]))
                        && penalty_tol(pen, None).accepts(f64::from(rep.penalties.total()), pen)
                    {
                        fits.push((h, out, loss));
                    }
                }
            }
            c.truth(
                &format!("one usual activation/loss combination gives step 1 (found {fits:?})"),
                fits.len() == 1,
            );
        }
        if let [(h, out, loss)] = fits[..] {
            let (class, cfg) = prose_optimizer(desc);
            Training {
                label: format!("steps (Dense({h:?}) → ActivityRegularization({l1}, {l2}) → Dense({out:?}), {loss:?})"),
                spec: act_reg_spec(&input, units, (h, out), (l1, l2), None),
                loss,
                opt: FileOptimizer::parse(&class, &cfg).expect("optimizer"),
                layers: layers.clone(),
                initial: initial.clone(),
                x: x.clone(),
                y: y.clone(),
                width,
                steps,
            }
            .run(c);
            // Inference with a GaussianNoise layer after the activity regularization.
            if let Some(inf) = c.optional(v, "inference", "") {
                c.case();
                let stddev = desc
                    .find("GaussianNoise(")
                    .map(|i| num(&py_value(call_args(desc, i + 13))) as f32)
                    .unwrap_or(0.1);
                let noise = LayerSpec::GaussianNoise { stddev, seed: None };
                let spec = act_reg_spec(&input, units, (h, out), (l1, l2), Some(noise));
                let mut m = build_with(&spec, &initial);
                let got = m.predict_rows(&x).expect("predict");
                c.close32(
                    &format!("inference (GaussianNoise({stddev}), training=False)"),
                    &got,
                    &floats(inf),
                    FWD,
                );
            }
        }
    }
    if let Some(ids) = c.optional(v, "identity_at_inference", "") {
        for (name, on) in ids.as_object().expect("identity_at_inference") {
            c.case();
            let (layer, input) = match name.as_str() {
                "GaussianNoise" => (
                    LayerSpec::GaussianNoise {
                        stddev: 0.5,
                        seed: Some(1),
                    },
                    vec![6],
                ),
                "GaussianDropout" => (
                    LayerSpec::GaussianDropout {
                        rate: 0.5,
                        seed: Some(1),
                    },
                    vec![6],
                ),
                "AlphaDropout" => (
                    LayerSpec::AlphaDropout {
                        rate: 0.5,
                        seed: Some(1),
                    },
                    vec![6],
                ),
                "Dropout" => (
                    LayerSpec::Dropout {
                        rate: 0.5,
                        seed: Some(1),
                    },
                    vec![6],
                ),
                "SpatialDropout1D" => (
                    LayerSpec::SpatialDropout1D {
                        rate: 0.5,
                        seed: Some(1),
                    },
                    vec![3, 2],
                ),
                "SpatialDropout2D" => (
                    LayerSpec::SpatialDropout2D {
                        rate: 0.5,
                        seed: Some(1),
                    },
                    vec![2, 3, 2],
                ),
                "SpatialDropout3D" => (
                    LayerSpec::SpatialDropout3D {
                        rate: 0.5,
                        seed: Some(1),
                    },
                    vec![2, 2, 2, 2],
                ),
                other => {
                    c.fail(format!("identity_at_inference: unknown layer {other}"));
                    continue;
                }
            };
            let spec = ModelSpec {
                input_shape: input.clone(),
                layers: vec![layer],
            };
            let mut m: Sequential = spec.build(3).expect("spec");
            let x: Vec<f32> = (0..4 * input.iter().product::<usize>())
                .map(|i| (i as f32 * 0.37).sin() * 3.0)
                .collect();
            let got = m.predict_rows(&x).expect("predict");
            let identity = got.iter().zip(&x).all(|(a, b)| a.to_bits() == b.to_bits());
            c.truth(
                &format!("{name}: identity at inference ({on})"),
                identity == (*on == Value::Bool(true)),
            );
        }
    }
}
