//! The Rust module of a workload: its model as a `microfit_core` typed network with a constant
//! configuration, its weights and data as `static`s, and its training settings as constants of
//! the core's types.

use std::fmt::Write as _;

use crate::{
    Activation, Constraint, Layer, LayerKind, Loss, Optimizer, Reg, Schedule, Targets, Tensor,
    Workload,
};

/// How the module is generated.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Give the `static`s fixed symbol names (`MICROFIT_WEIGHTS`, `MICROFIT_DATASET_X`,
    /// `MICROFIT_DATASET_LABELS` or `MICROFIT_DATASET_Y`) so that a size report can find them
    /// (`#[unsafe(export_name)]`: the including module must allow `unsafe_code`).
    pub symbols: bool,
    /// Leave the dataset out (a module for inference only).
    pub no_data: bool,
    /// The source file named in the module's first line.
    pub source: Option<String>,
}

/// An `f32` literal that reads back to the same bits.
fn lit(v: f32) -> String {
    format!("{v:?}_f32")
}

/// The nested array type of `shape`: `[a, b]` → `[[f32; b]; a]`.
pub(crate) fn array_type(shape: &[usize]) -> String {
    let mut t = String::from("f32");
    for d in shape.iter().rev() {
        t = format!("[{t}; {d}]");
    }
    t
}

/// The nested array literal of `data` with `shape`.
fn array_lit(shape: &[usize], data: &[f32], out: &mut String) {
    match shape {
        [] => out.push_str(&lit(data.first().copied().unwrap_or(0.0))),
        [_] => {
            out.push('[');
            for (i, &v) in data.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&lit(v));
            }
            out.push(']');
        }
        [n, rest @ ..] => {
            let step: usize = rest.iter().product();
            out.push('[');
            for i in 0..*n {
                if i > 0 {
                    out.push_str(",\n");
                }
                array_lit(rest, &data[i * step..(i + 1) * step], out);
            }
            out.push(']');
        }
    }
}

fn activation(a: Activation) -> String {
    match a {
        Activation::Linear => "microfit_core::Activation::Linear".into(),
        Activation::Relu => "microfit_core::Activation::Relu".into(),
        Activation::Sigmoid => "microfit_core::Activation::Sigmoid".into(),
        Activation::Tanh => "microfit_core::Activation::Tanh".into(),
        Activation::Softmax => "microfit_core::Activation::Softmax".into(),
        Activation::LeakyRelu(s) => format!("microfit_core::Activation::LeakyRelu({})", lit(s)),
    }
}

/// The narrowest regularizer type for these regularizers: `L2`, `L1`, or `Reg`.
fn reg_type<'a>(regs: impl IntoIterator<Item = &'a Option<Reg>>) -> &'static str {
    let regs: Vec<Reg> = regs.into_iter().flatten().copied().collect();
    if !regs.is_empty() && regs.iter().all(|r| matches!(r, Reg::L2(_))) {
        "microfit_core::regularizer::L2"
    } else if !regs.is_empty() && regs.iter().all(|r| matches!(r, Reg::L1(_))) {
        "microfit_core::regularizer::L1"
    } else {
        "microfit_core::regularizer::Reg"
    }
}

fn reg_lit(r: Reg, ty: &str) -> String {
    match (r, ty) {
        (Reg::L2(f), "microfit_core::regularizer::L2") => {
            format!("microfit_core::regularizer::L2 {{ l2: {} }}", lit(f))
        }
        (Reg::L1(f), "microfit_core::regularizer::L1") => {
            format!("microfit_core::regularizer::L1 {{ l1: {} }}", lit(f))
        }
        (Reg::L2(f), _) => format!("microfit_core::regularizer::Reg::L2 {{ l2: {} }}", lit(f)),
        (Reg::L1(f), _) => format!("microfit_core::regularizer::Reg::L1 {{ l1: {} }}", lit(f)),
        (Reg::L1L2(a, b), _) => format!(
            "microfit_core::regularizer::Reg::L1L2 {{ l1: {}, l2: {} }}",
            lit(a),
            lit(b)
        ),
        (Reg::Orthogonal(f, rows), _) => format!(
            "microfit_core::regularizer::Reg::Orthogonal {{ factor: {}, mode: microfit_core::regularizer::OrthoMode::{} }}",
            lit(f),
            if rows { "Rows" } else { "Columns" }
        ),
    }
}

/// `{ let mut l = <ctor>; l.config.… = …; l }` for a layer with a `DenseConfig`.
fn weighted_value(ctor: &str, l: &Layer, ty: &str) -> String {
    let Some(w) = l.weighted() else {
        return ctor.to_string();
    };
    let mut s = format!(
        "{{\n        let mut l = {ctor}({});\n        l.config.use_bias = {};\n",
        activation(w.activation),
        w.use_bias
    );
    for (field, r) in [
        ("kernel_regularizer", w.regs.kernel),
        ("bias_regularizer", w.regs.bias),
        ("activity_regularizer", w.regs.activity),
    ] {
        if let Some(r) = r {
            let _ = writeln!(s, "        l.config.{field} = Some({});", reg_lit(r, ty));
        }
    }
    for (field, c) in [
        ("kernel_constraint", &w.kernel_constraint),
        ("bias_constraint", &w.bias_constraint),
    ] {
        if let Some(c) = c {
            let _ = writeln!(s, "        l.config.{field} = Some({});", constraint(c));
        }
    }
    s.push_str("        l\n    }");
    s
}

/// The core's constraint.
fn constraint(c: &Constraint) -> String {
    let axes = |a: &[i8]| {
        format!(
            "microfit_core::constraint::Axes::list(&[{}])",
            a.iter().map(i8::to_string).collect::<Vec<_>>().join(", ")
        )
    };
    let t = "microfit_core::constraint::Constraint";
    match c {
        Constraint::MaxNorm { max_value, axis } => {
            format!("{t}::max_norm({}, {})", lit(*max_value), axes(axis))
        }
        Constraint::MinMaxNorm {
            min_value,
            max_value,
            rate,
            axis,
        } => format!(
            "{t}::min_max_norm({}, {}, {}, {})",
            lit(*min_value),
            lit(*max_value),
            lit(*rate),
            axes(axis)
        ),
        Constraint::NonNeg => format!("{t}::NonNeg"),
        Constraint::UnitNorm { axis } => format!("{t}::unit_norm({})", axes(axis)),
    }
}

/// Whether a layer is frozen (`"trainable": false`).
fn frozen(l: &Layer) -> bool {
    l.weighted().is_some_and(|w| !w.trainable)
}

fn padding(same: bool) -> &'static str {
    if same {
        "microfit_core::layer::conv::Same"
    } else {
        "microfit_core::layer::conv::Valid"
    }
}

fn join(v: &[usize]) -> String {
    v.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A layer's type and `const` value (`ty` the regularizer type of a weighted layer).
fn layer_code(l: &Layer, ty: &str) -> (String, String) {
    let input = &l.input;
    let output = &l.output;
    match &l.kind {
        LayerKind::Dense(_) => {
            let t = format!(
                "microfit_core::layer::dense::Dense<{}, {}, {ty}>",
                input[0], output[0]
            );
            let v = weighted_value(&format!("<{t}>::new"), l, ty);
            (t, v)
        }
        LayerKind::Conv {
            filters,
            kernel,
            strides,
            dilation,
            same,
            ..
        } => {
            let n = kernel.len();
            let name = ["Conv1D", "Conv2D", "Conv3D"][n - 1];
            let t = format!(
                "microfit_core::layer::conv::{name}<{}, {}, {filters}, {}, {}, {}, {}, {}, {ty}>",
                join(&input[..n]),
                input[n],
                join(kernel),
                join(&output[..n]),
                padding(*same),
                join(strides),
                join(dilation)
            );
            let v = weighted_value(&format!("<{t}>::new"), l, ty);
            (t, v)
        }
        LayerKind::Pool {
            max,
            pool,
            strides,
            same,
        } => {
            let n = pool.len();
            let kind = if *max { "Max" } else { "Average" };
            let t = format!(
                "microfit_core::layer::pool::Pooling{n}D<microfit_core::layer::pool::{kind}, {}, {}, {}, {}, {}, {}>",
                join(&input[..n]),
                input[n],
                join(pool),
                join(&output[..n]),
                padding(*same),
                join(strides)
            );
            let v = format!("<{t}>::new()");
            (t, v)
        }
        LayerKind::Flatten => {
            let t = format!(
                "microfit_core::layer::flatten::Flatten<{}, {}>",
                array_type(input),
                output[0]
            );
            let v = format!("<{t}>::new()");
            (t, v)
        }
        LayerKind::Dropout { rate, seed } => {
            let t = format!(
                "microfit_core::layer::dropout::Dropout<{}>",
                array_type(input)
            );
            let mut v = format!("<{t}>::new({})", lit(*rate));
            if let Some(s) = seed {
                let _ = write!(v, ".seed({s})");
            }
            (t, v)
        }
    }
}

/// A layer's weights as a `Params` literal.
fn params_lit(l: &Layer, tensors: &mut std::slice::Iter<'_, Tensor>, out: &mut String) {
    match &l.kind {
        LayerKind::Dense(w) | LayerKind::Conv { w, .. } => {
            let ty = if matches!(l.kind, LayerKind::Dense(_)) {
                "microfit_core::layer::dense::DenseParams"
            } else {
                "microfit_core::layer::conv::ConvParams"
            };
            let k = tensors.next();
            let b = if w.use_bias { tensors.next() } else { None };
            let _ = write!(out, "{ty} {{\n    kernel: ");
            if let Some(k) = k {
                array_lit(&k.shape, &k.data, out);
            }
            out.push_str(",\n    bias: ");
            match b {
                Some(b) => array_lit(&b.shape, &b.data, out),
                None => {
                    let n = *l.output.last().unwrap_or(&0);
                    array_lit(&[n], &vec![0.0; n], out);
                }
            }
            out.push_str(",\n}");
        }
        _ => out.push_str("()"),
    }
}

/// The index of `l` in the model.
fn layer_index(w: &Workload, l: &Layer) -> usize {
    w.layers
        .iter()
        .position(|x| std::ptr::eq(x, l))
        .unwrap_or(0)
}

/// The model's members: single layers, or a Dense(ReLU) → Dense pair at the front (the core's
/// fused `DensePair`, the same bits as the two layers).
enum Member<'a> {
    One(&'a Layer),
    Pair(&'a Layer, &'a Layer),
}

fn members(w: &Workload) -> Vec<Member<'_>> {
    let mut out = Vec::new();
    let mut it = w.layers.iter().peekable();
    if let (Some(a), Some(b)) = (w.layers.first(), w.layers.get(1))
        && let (LayerKind::Dense(d0), LayerKind::Dense(_)) = (&a.kind, &b.kind)
        && d0.activation == Activation::Relu
        && !frozen(a)
        && !frozen(b)
    {
        out.push(Member::Pair(a, b));
        it.next();
        it.next();
    }
    out.extend(it.map(Member::One));
    out
}

fn schedule(s: Schedule) -> String {
    match s {
        Schedule::Constant(lr) => format!(
            "microfit_core::optim::schedule::Schedule::Constant({})",
            lit(lr)
        ),
        Schedule::Exponential {
            initial,
            decay_steps,
            decay_rate,
            staircase,
        } => format!(
            "microfit_core::optim::schedule::Schedule::Exponential(microfit_core::optim::ExponentialDecay {{ initial_learning_rate: {}, decay_steps: {decay_steps}, decay_rate: {}, staircase: {staircase} }})",
            lit(initial),
            lit(decay_rate)
        ),
    }
}

fn opt_f32(v: Option<f32>) -> String {
    v.map_or("None".into(), |v| format!("Some({})", lit(v)))
}

fn loss(l: Loss) -> String {
    match l {
        Loss::MeanSquaredError => "microfit_core::Loss::MeanSquaredError".into(),
        Loss::MeanAbsoluteError => "microfit_core::Loss::MeanAbsoluteError".into(),
        Loss::BinaryCrossentropy {
            from_logits,
            label_smoothing,
        } => format!(
            "microfit_core::Loss::BinaryCrossentropy {{ from_logits: {from_logits}, label_smoothing: {} }}",
            lit(label_smoothing)
        ),
        Loss::CategoricalCrossentropy {
            from_logits,
            label_smoothing,
        } => format!(
            "microfit_core::Loss::CategoricalCrossentropy {{ from_logits: {from_logits}, label_smoothing: {} }}",
            lit(label_smoothing)
        ),
        Loss::SparseCategoricalCrossentropy { from_logits } => format!(
            "microfit_core::Loss::SparseCategoricalCrossentropy {{ from_logits: {from_logits} }}"
        ),
    }
}

/// The Rust module of `w` (see the [crate docs](crate)): `NAME`, sizes, the model (`Model`, a
/// `ConstLayer`; `Layers`, `Params`), `WEIGHTS`, the data (`X`, `LABELS` or `Y`, `targets()`),
/// `LOSS`, the optimizer (`OPTIMIZER` — `"adam"`, `"sgd"` or `"momentum"` —, `ADAM`,
/// `SCHEDULE`, `COMMON`, `MOMENTUM`, `NESTEROV`), `BATCH_SIZE`, `EPOCHS`, and `predictor()`.
///
/// # Errors
/// A model with more than ten members (the core's tuples).
pub fn generate(w: &Workload, o: &Options) -> Result<String, String> {
    let members = members(w);
    if members.len() > 10 {
        return Err(format!(
            "model: {} layers; the typed model holds at most 10",
            w.layers.len()
        ));
    }
    let mut s = String::new();
    let src = o.source.as_deref().unwrap_or("a workload file");
    let _ = writeln!(
        s,
        "// Generated by microfit-workload from {src}. Do not edit.\n"
    );
    let c = |s: &mut String, doc: &str, decl: String| {
        let _ = writeln!(s, "/// {doc}\npub const {decl};");
    };
    c(
        &mut s,
        "Workload name.",
        format!("NAME: &str = {:?}", w.name),
    );
    c(
        &mut s,
        "Training samples.",
        format!("SAMPLES: usize = {}", w.samples),
    );
    c(
        &mut s,
        "Values per input sample.",
        format!("INPUTS: usize = {}", w.input_len()),
    );
    c(
        &mut s,
        "Values per output.",
        format!("OUTPUTS: usize = {}", w.output_len()),
    );
    let classes = match &w.targets {
        Targets::Classes { classes, .. } => *classes,
        Targets::Dense { .. } => 0,
    };
    c(
        &mut s,
        "Classes of the labels (0: dense targets).",
        format!("CLASSES: usize = {classes}"),
    );
    c(
        &mut s,
        "Trainable scalars.",
        format!("PARAMS: usize = {}", w.params()),
    );
    c(
        &mut s,
        "Epochs.",
        format!("EPOCHS: u32 = {}", w.training.epochs),
    );
    c(
        &mut s,
        "Mini-batch size (the last partial batch is kept).",
        format!("BATCH_SIZE: usize = {}", w.training.batch_size),
    );
    let kernel_l2 = w
        .layers
        .iter()
        .find_map(|l| match &l.kind {
            LayerKind::Dense(d) => Some(d.regs.kernel),
            _ => None,
        })
        .flatten()
        .map_or(0.0, |r| if let Reg::L2(f) = r { f } else { 0.0 });
    c(
        &mut s,
        "The first Dense layer's L2 kernel factor (0 without one), for the log.",
        format!("KERNEL_L2: f32 = {}", lit(kernel_l2)),
    );
    c(
        &mut s,
        "The final accuracy of a successful run (`None`: any run that trains without error).",
        format!("MIN_ACCURACY: Option<f32> = {}", opt_f32(w.min_accuracy)),
    );
    let weighted = || w.layers.iter().filter_map(Layer::weighted);
    // The chip logs the epoch's loss (data loss + penalties), not the penalties by name: with
    // weight penalties only, an unnamed report (`0`: every penalty into `overflow`) gives the
    // named one's loss bit for bit (a step's total is the same sum: weight penalties arrive in
    // Keras' order) for 348 B less flash (W1+L2). Activity penalties need their names: the step
    // divides them by the batch size entry by entry.
    let penalties: usize = if weighted().any(|x| x.regs.activity.is_some()) {
        weighted()
            .map(|x| {
                // A frozen layer's kernel and bias penalties are dropped (Keras 3).
                usize::from(x.trainable && x.regs.kernel.is_some())
                    + usize::from(x.trainable && x.use_bias && x.regs.bias.is_some())
                    + usize::from(x.regs.activity.is_some())
            })
            .sum()
    } else {
        0
    };
    c(
        &mut s,
        "Named penalties the reports keep: the model's regularizers when it has an activity \
         regularizer, else 0 (the total only, in `overflow`).",
        format!("PENALTIES: usize = {penalties}"),
    );

    // The model.
    let mut types = Vec::new();
    let mut values = Vec::new();
    let mut frozen_types: Vec<(usize, String)> = Vec::new();
    for m in &members {
        match m {
            Member::One(l) => {
                let ty = l.weighted().map_or("microfit_core::regularizer::Reg", |x| {
                    reg_type([&x.regs.kernel, &x.regs.bias, &x.regs.activity])
                });
                let (t, v) = layer_code(l, ty);
                if frozen(l) {
                    // Its weights: `FROZEN_<i>`, a `static` in flash (below).
                    let i = layer_index(w, l);
                    types.push(format!(
                        "microfit_core::layer::frozen::Frozen<'static, {t}>"
                    ));
                    values.push(format!(
                        "microfit_core::layer::frozen::Frozen::new({v}, &FROZEN_{i})"
                    ));
                    frozen_types.push((i, t));
                    continue;
                }
                types.push(t);
                values.push(v);
            }
            Member::Pair(a, b) => {
                let (wa, wb) = (a.weighted(), b.weighted());
                let regs: Vec<&Option<Reg>> = [wa, wb]
                    .into_iter()
                    .flatten()
                    .flat_map(|x| [&x.regs.kernel, &x.regs.bias, &x.regs.activity])
                    .collect();
                let ty = reg_type(regs);
                let (_, va) = layer_code(a, ty);
                let (_, vb) = layer_code(b, ty);
                types.push(format!(
                    "microfit_core::layer::pair::DensePair<{}, {}, {}, {ty}>",
                    a.input[0], a.output[0], b.output[0]
                ));
                values.push(format!(
                    "microfit_core::layer::pair::DensePair::new(({va}, {vb}))"
                ));
            }
        }
    }
    let (ty, value) = if types.len() == 1 {
        (types[0].clone(), values[0].clone())
    } else {
        (
            format!("({},)", types.join(",\n    ")),
            format!("({},)", values.join(",\n    ")),
        )
    };
    let _ = writeln!(
        s,
        "\n/// The model as a compile-time constant (`microfit_core::layer::constant`): only the code\n/// of its layers, activations and regularizers is linked, and its configuration takes no RAM.\n#[derive(Debug)]\npub struct Model;\n\nimpl microfit_core::layer::constant::ConstLayer for Model {{\n    type Layer = {ty};\n    const LAYER: Self::Layer = {value};\n}}\n"
    );
    s.push_str(
        "/// The layers (zero-sized).\npub type Layers = microfit_core::layer::constant::Const<Model>;\n\
         /// The weights' type (Keras variable order).\npub type Params = <Layers as microfit_core::layer::Layer>::Params;\n\
         /// One input sample.\npub type Input = <Layers as microfit_core::layer::Layer>::Input;\n\n",
    );

    // The weights.
    let export = |s: &mut String, name: &str| {
        if o.symbols {
            let _ = writeln!(s, "#[unsafe(export_name = \"MICROFIT_{name}\")]");
        }
    };
    s.push_str("/// The initial weights, in flash.\n");
    export(&mut s, "WEIGHTS");
    let mut weights = String::new();
    let mut tensors = w.weights.iter();
    let mut frozen_statics: Vec<(usize, String)> = Vec::new();
    let lits: Vec<String> = members
        .iter()
        .map(|m| {
            let mut x = String::new();
            match m {
                Member::One(l) if frozen(l) => {
                    let i = layer_index(w, l);
                    let mut f = String::new();
                    params_lit(l, &mut tensors, &mut f);
                    frozen_statics.push((i, f));
                    x.push_str("()");
                }
                Member::One(l) => params_lit(l, &mut tensors, &mut x),
                Member::Pair(a, b) => {
                    x.push('(');
                    params_lit(a, &mut tensors, &mut x);
                    x.push_str(", ");
                    params_lit(b, &mut tensors, &mut x);
                    x.push(')');
                }
            }
            x
        })
        .collect();
    if lits.len() == 1 {
        weights.push_str(&lits[0]);
    } else {
        weights.push('(');
        weights.push_str(&lits.join(",\n"));
        weights.push_str(",)");
    }
    let _ = writeln!(s, "pub static WEIGHTS: Params = {weights};\n");
    for ((i, lit), (_, t)) in frozen_statics.iter().zip(&frozen_types) {
        let _ = writeln!(
            s,
            "/// Layer {i}'s weights, frozen (`\"trainable\": false`): constants in flash, out of\n/// the training state."
        );
        export(&mut s, &format!("FROZEN_{i}"));
        let _ = writeln!(
            s,
            "pub static FROZEN_{i}: <{t} as microfit_core::layer::Layer>::Params = {lit};\n"
        );
    }
    s.push_str(
        "/// Inference with [`WEIGHTS`] left in flash: only the activations in RAM.\n\
         pub fn predictor() -> microfit_core::predict::Predictor<'static, Layers> {\n    \
         microfit_core::predict::Predictor::new(microfit_core::layer::constant::Const::new(), &WEIGHTS)\n}\n\n",
    );

    // The training settings.
    let t = &w.training;
    c(
        &mut s,
        "The loss.",
        format!("LOSS: microfit_core::Loss = {}", loss(t.loss)),
    );
    c(
        &mut s,
        "The learning rate.",
        format!(
            "SCHEDULE: microfit_core::optim::schedule::Schedule = {}",
            schedule(t.schedule)
        ),
    );
    let wd = match t.optimizer {
        Optimizer::Adam { weight_decay, .. } => weight_decay,
        Optimizer::Sgd { .. } => None,
    };
    c(
        &mut s,
        "Clipping and weight decay.",
        format!(
            "COMMON: microfit_core::optim::Common = microfit_core::optim::Common {{ weight_decay: {}, clip: microfit_core::optim::Clip {{ clipvalue: {}, clipnorm: {}, global_clipnorm: {} }}, exclude_from_weight_decay: microfit_core::optim::ExcludeFromWeightDecay::NONE }}",
            opt_f32(wd),
            opt_f32(t.clip.value),
            opt_f32(t.clip.norm),
            opt_f32(t.clip.global_norm)
        ),
    );
    let (kind, (b1, b2, eps), (mu, nesterov)) = match t.optimizer {
        Optimizer::Adam {
            beta_1,
            beta_2,
            epsilon,
            ..
        } => ("adam", (beta_1, beta_2, epsilon), (0.0, false)),
        Optimizer::Sgd { momentum, nesterov } => (
            if momentum != 0.0 { "momentum" } else { "sgd" },
            (0.9, 0.999, 1e-7),
            (momentum, nesterov),
        ),
    };
    c(
        &mut s,
        "The optimizer: `\"adam\"` (Adam, AdamW: [`ADAM`]), `\"momentum\"` (SGD with\n/// [`MOMENTUM`], [`NESTEROV`]) or `\"sgd\"`; [`SCHEDULE`] and [`COMMON`] for all.",
        format!("OPTIMIZER: &str = {kind:?}"),
    );
    c(
        &mut s,
        "Adam's hyperparameters (used when [`OPTIMIZER`] is `\"adam\"`).",
        format!(
            "ADAM: microfit_core::optim::AdamConfig = microfit_core::optim::AdamConfig {{ learning_rate: SCHEDULE, beta_1: {}, beta_2: {}, epsilon: {}, common: COMMON }}",
            lit(b1),
            lit(b2),
            lit(eps)
        ),
    );
    c(
        &mut s,
        "SGD's momentum.",
        format!("MOMENTUM: f32 = {}", lit(mu)),
    );
    c(
        &mut s,
        "Nesterov momentum.",
        format!("NESTEROV: bool = {nesterov}"),
    );

    // The data.
    if !o.no_data {
        s.push_str("\n/// The inputs, one row per sample (scaled), in flash.\n");
        export(&mut s, "DATASET_X");
        let mut x = String::new();
        array_lit(&[w.samples, w.input_len()], &w.x, &mut x);
        let _ = writeln!(s, "pub static X: [[f32; INPUTS]; SAMPLES] = {x};\n");
        match &w.targets {
            Targets::Classes { labels, .. } => {
                s.push_str("/// The class labels.\n");
                export(&mut s, "DATASET_LABELS");
                let l: Vec<String> = labels.iter().map(u32::to_string).collect();
                let _ = writeln!(
                    s,
                    "pub static LABELS: [u32; SAMPLES] = [{}];\n\n/// The targets.\npub const fn targets() -> microfit_core::train::Targets<'static> {{\n    microfit_core::train::Targets::Classes(&LABELS)\n}}",
                    l.join(", ")
                );
            }
            Targets::Dense { values, width } => {
                s.push_str("/// The targets, one row per sample.\n");
                export(&mut s, "DATASET_Y");
                let mut y = String::new();
                array_lit(&[w.samples, *width], values, &mut y);
                let _ = writeln!(
                    s,
                    "pub static Y: [[f32; OUTPUTS]; SAMPLES] = {y};\n\n/// The targets.\npub const fn targets() -> microfit_core::train::Targets<'static> {{\n    microfit_core::train::Targets::Dense {{ values: Y.as_flattened(), width: OUTPUTS }}\n}}"
                );
            }
        }
    }
    Ok(s)
}
