//! The Keras golden runner: reads the golden files produced by Keras 3.15.1 (TensorFlow 2.21,
//! float32) and checks microfit against **every** case in them.
//!
//! Where the files are: `MICROFIT_GOLDEN_DIR`, or by default `<workspace>/../shared/golden`.
//!
//! Models are built from what each file says — layer sizes from the tensor shapes, activations,
//! regularizer configurations through [`microfit::keras`], the optimizer from `config_given`
//! (checked against `config_effective`), `keras_model_config` when present — through
//! [`ModelSpec`]/[`Sequential`] and [`AnyOptimizer`], so a file with other shapes or factors
//! runs without new code. The stepping functions ([`trace_steps`], [`fit_trace`]) are generic
//! over [`Trainable`], so the typed tests (`tests/golden_typed.rs`) run the very same code on
//! `Network<...>`s with compile-time shapes and compare to the bit.
//!
//! Tolerances (`/work/shared/golden/README.md`): forward values, losses and gradients
//! `rtol 1e-5, atol 1e-6` ([`FWD`]); an optimizer step fed the recorded gradients bit-exact;
//! the 12-step MLP fit `rtol 1e-4, atol 1e-5` ([`FIT`]). Elementwise regularizer gradients are
//! checked tighter ([`ELEMENTWISE`], the tolerance of `verify_golden.py`).
//!
//! Each `run_*` function checks one file and returns a [`Summary`] (cases, checks, worst
//! errors); it panics listing every failed check.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use microfit::core::activation::Activation;
use microfit::core::backend::Portable;
use microfit::core::init::{Initializer, fans};
use microfit::core::layer::PenaltyKind;
use microfit::core::loss::{Loss, Target};
use microfit::core::optim::{AnyOptimizer, Optimizer};
use microfit::core::params::Params;
use microfit::core::regularizer::{Reg, Regularizer};
use microfit::core::rng::Rng;
use microfit::core::train::{
    EpochReport, Rows, Samples, StepReport, Targets, Trainable, Trainer, compute_gradients,
    train_step,
};
use microfit::keras::{
    KerasOptimizer, regularizer_from_keras, regularizer_to_keras, spec_from_keras_value,
};
use microfit::model::{LayerSpec, ModelSpec, Sequential};
use serde_json::{Value, json};

/// Environment variable naming the folder of the golden files.
pub const ENV: &str = "MICROFIT_GOLDEN_DIR";

/// The golden folder for a value of [`ENV`] (`None`: `<workspace>/../shared/golden`).
///
/// # Errors
/// A message naming the folder and [`ENV`] if the folder does not exist.
pub fn resolve_golden_dir(env: Option<std::ffi::OsString>) -> Result<PathBuf, String> {
    let dir = match env {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden")),
    };
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!(
            "the Keras golden folder {} does not exist: set {ENV} to the folder holding \
             regularizers_k3.json, dense_step_k3.json, ... (see shared/golden/README.md)",
            dir.display()
        ))
    }
}

/// The golden folder: `$MICROFIT_GOLDEN_DIR` or `<workspace>/../shared/golden`.
///
/// # Panics
/// If the folder does not exist, with a message naming [`ENV`].
pub fn golden_dir() -> PathBuf {
    resolve_golden_dir(std::env::var_os(ENV)).unwrap_or_else(|e| panic!("{e}"))
}

/// Reads and parses one golden file.
///
/// # Panics
/// If the file is missing or not JSON (naming the file and [`ENV`]).
pub fn load(file: &str) -> Value {
    let p = golden_dir().join(file);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {} ({e}); set {ENV} to the golden folder",
            p.display()
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("golden file {} is not valid JSON: {e}", p.display()))
}

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

fn num(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, found {v}"))
}

/// A relative/absolute tolerance: `|got - expected| <= atol + rtol·|expected|`.
#[derive(Debug, Clone, Copy)]
pub struct Tol {
    /// Relative part.
    pub rtol: f64,
    /// Absolute part.
    pub atol: f64,
}

/// Forward values, losses, gradients (README).
pub const FWD: Tol = Tol {
    rtol: 1e-5,
    atol: 1e-6,
};
/// The 12-step MLP fit (README).
pub const FIT: Tol = Tol {
    rtol: 1e-4,
    atol: 1e-5,
};
/// Elementwise regularizer gradients (`verify_golden.py`'s `reg.grad` tolerance).
pub const ELEMENTWISE: Tol = Tol {
    rtol: 1e-6,
    atol: 1e-30,
};

/// What one golden file gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The file.
    pub file: String,
    /// Cases run.
    pub cases: usize,
    /// Checks passed (each compared value or property counts once).
    pub checks: usize,
    /// Of those, checks that were bit-exact comparisons.
    pub bit_exact: usize,
    /// Largest `|got - expected|` over the tolerance checks.
    pub max_abs: f64,
    /// Largest `|got - expected| / |expected|` over the tolerance checks with `expected != 0`.
    pub max_rel: f64,
    /// Where the largest absolute error was seen.
    pub max_abs_at: String,
    /// Where the largest relative error was seen.
    pub max_rel_at: String,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "golden {}: {} cases, {} checks passed ({} bit-exact), max abs err {:.3e} ({}), max rel err {:.3e} ({})",
            self.file,
            self.cases,
            self.checks,
            self.bit_exact,
            self.max_abs,
            self.max_abs_at,
            self.max_rel,
            self.max_rel_at
        )
    }
}

/// Collects checks of one file; [`Checker::finish`] panics with every failure.
#[derive(Debug)]
pub struct Checker {
    s: Summary,
    failures: Vec<String>,
}

impl Checker {
    /// A checker for `file`.
    pub fn new(file: &str) -> Self {
        Checker {
            s: Summary {
                file: file.to_string(),
                cases: 0,
                checks: 0,
                bit_exact: 0,
                max_abs: 0.0,
                max_rel: 0.0,
                max_abs_at: String::new(),
                max_rel_at: String::new(),
            },
            failures: Vec::new(),
        }
    }

    /// Counts one case.
    pub fn case(&mut self) {
        self.s.cases += 1;
    }

    fn fail(&mut self, msg: String) {
        self.failures.push(msg);
    }

    /// `got` against `expected` elementwise within `tol`.
    pub fn close(&mut self, what: &str, got: &[f32], expected: &[f64], tol: Tol) {
        if got.len() != expected.len() {
            self.fail(format!(
                "{what}: {} values, expected {}",
                got.len(),
                expected.len()
            ));
            return;
        }
        for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
            let g = f64::from(g);
            let err = (g - e).abs();
            let ok = err <= tol.atol + tol.rtol * e.abs();
            if !ok || err.is_nan() {
                self.fail(format!(
                    "{what}[{i}]: got {g:e}, expected {e:e} (abs err {err:.3e}, rtol {}, atol {})",
                    tol.rtol, tol.atol
                ));
                continue;
            }
            if err > self.s.max_abs {
                self.s.max_abs = err;
                self.s.max_abs_at = format!("{what}[{i}]");
            }
            if e != 0.0 && err / e.abs() > self.s.max_rel {
                self.s.max_rel = err / e.abs();
                self.s.max_rel_at = format!("{what}[{i}]: {g:e} vs {e:e}");
            }
        }
        self.s.checks += 1;
    }

    /// `got` against the f32 values of `expected` elementwise within `tol`.
    pub fn close32(&mut self, what: &str, got: &[f32], expected: &[f32], tol: Tol) {
        let e: Vec<f64> = expected.iter().map(|&x| f64::from(x)).collect();
        self.close(what, got, &e, tol);
    }

    /// One scalar within `tol`.
    pub fn close1(&mut self, what: &str, got: f32, expected: f64, tol: Tol) {
        self.close(what, &[got], &[expected], tol);
    }

    /// Bit-for-bit equality of f32 values.
    pub fn bits(&mut self, what: &str, got: &[f32], expected: &[f32]) {
        if got.len() != expected.len() {
            self.fail(format!(
                "{what}: {} values, expected {}",
                got.len(),
                expected.len()
            ));
            return;
        }
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            if g.to_bits() != e.to_bits() {
                self.fail(format!(
                    "{what}[{i}]: got {g:e} ({:#010x}), expected {e:e} ({:#010x}), not bit-exact",
                    g.to_bits(),
                    e.to_bits()
                ));
                return;
            }
        }
        self.s.checks += 1;
        self.s.bit_exact += 1;
    }

    /// Exact equality of values (`-0 == +0`; NaN never equal).
    pub fn exact(&mut self, what: &str, got: &[f32], expected: &[f32]) {
        if got.len() != expected.len() {
            self.fail(format!(
                "{what}: {} values, expected {}",
                got.len(),
                expected.len()
            ));
            return;
        }
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            if g != e {
                self.fail(format!("{what}[{i}]: got {g:e}, expected exactly {e:e}"));
                return;
            }
        }
        self.s.checks += 1;
    }

    /// A property that must hold.
    pub fn truth(&mut self, what: &str, ok: bool) {
        if ok {
            self.s.checks += 1;
        } else {
            self.fail(format!("{what}: does not hold"));
        }
    }

    /// JSON equality, numbers compared by value (both floats or both integers, equal as f64):
    /// `serde_json`'s `arbitrary_precision` feature (switched on in this crate's test graph by
    /// `defmt-decoder`) keeps numbers as text, and `1e-05` and `0.00001` are the same float.
    pub fn json_eq(&mut self, what: &str, got: &Value, expected: &Value) {
        if json_same(got, expected) {
            self.s.checks += 1;
        } else {
            self.fail(format!("{what}: got {got}, expected {expected}"));
        }
    }

    /// Prints the summary line and returns it.
    ///
    /// # Panics
    /// If any check failed, listing them all.
    pub fn finish(self) -> Summary {
        println!("{}", self.s);
        if !self.failures.is_empty() {
            panic!(
                "{}: {} check(s) failed:\n  {}",
                self.s.file,
                self.failures.len(),
                self.failures.join("\n  ")
            );
        }
        self.s
    }
}

/// Structural JSON equality with numbers compared by value (see [`Checker::json_eq`]).
pub fn json_same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.is_f64() == y.is_f64() && x.as_f64() == y.as_f64()
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_same(v, w)))
        }
        _ => a == b,
    }
}

fn tensors<P: Params>(p: &P) -> Vec<Vec<f32>> {
    (0..p.tensor_count())
        .map(|i| p.tensor(i).to_vec())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Variables and models
// ---------------------------------------------------------------------------------------------

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

/// What one training step gave (all before the update except `*_after`).
#[derive(Debug, Clone, PartialEq)]
pub struct StepTrace {
    /// Outputs of the batch, row-major.
    pub y_pred: Vec<f32>,
    /// Last-layer pre-activations of the batch, row-major.
    pub logits: Vec<f32>,
    /// The step's report (losses and penalties).
    pub report: StepReport,
    /// The gradients the optimizer received.
    pub grads: Vec<Vec<f32>>,
    /// Weights after the update.
    pub weights_after: Vec<Vec<f32>>,
    /// Optimizer slots after the update, by Keras name (`momentum`, `m`, `v`).
    pub slots_after: Vec<(String, Vec<Vec<f32>>)>,
}

/// Runs one [`train_step`] per entry of `batches`, recording everything.
///
/// # Panics
/// If a step fails.
pub fn trace_steps<M: Trainable>(
    model: &mut M,
    opt: &mut AnyOptimizer<M::Params>,
    loss: Loss,
    samples: &Samples<'_>,
    batches: &[Rows<'_>],
) -> Vec<StepTrace> {
    let mut out = Vec::new();
    for rows in batches {
        let mut y_pred = Vec::new();
        let mut logits = Vec::new();
        let width = model.output_len();
        for k in 0..rows.len() {
            model.forward_tile::<Portable>(samples.input(rows.get(k)), true, None);
            let io = model.loss_io();
            y_pred.extend_from_slice(&io.y[..width]);
            logits.extend_from_slice(io.logits.map_or(&[][..], |z| &z[..width]));
        }
        let report = train_step::<Portable, _, _>(model, opt, loss, samples, *rows)
            .unwrap_or_else(|e| panic!("train_step: {e}"));
        let grads = {
            let (_, g) = model.weights_and_grads();
            tensors(&*g)
        };
        let weights_after = tensors(model.params());
        let slots_after = ["momentum", "m", "v"]
            .iter()
            .filter_map(|n| opt.slot(n).map(|p| (n.to_string(), tensors(p))))
            .collect();
        out.push(StepTrace {
            y_pred,
            logits,
            report,
            grads,
            weights_after,
            slots_after,
        });
    }
    out
}

/// What `fit` gave: one report and the weights after each epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct FitTrace {
    /// `fit_epoch` reports.
    pub epochs: Vec<EpochReport>,
    /// Weights after each epoch.
    pub weights: Vec<Vec<Vec<f32>>>,
}

/// `epochs` calls of [`Trainer::fit_epoch`] in file order (`shuffle=False`).
///
/// # Panics
/// If an epoch fails.
pub fn fit_trace<M: Trainable>(
    model: M,
    opt: AnyOptimizer<M::Params>,
    loss: Loss,
    samples: &Samples<'_>,
    batch_size: usize,
    epochs: usize,
) -> FitTrace {
    let mut tr = Trainer::new(model, opt, loss);
    let mut t = FitTrace {
        epochs: Vec::new(),
        weights: Vec::new(),
    };
    for _ in 0..epochs {
        let r = tr
            .fit_epoch(samples, batch_size, None)
            .unwrap_or_else(|e| panic!("fit_epoch: {e}"));
        t.epochs.push(r);
        t.weights.push(tensors(tr.model.params()));
    }
    t
}

/// Consecutive batches of `batch_size` over `n` samples, `epochs` times (`shuffle=False`).
pub fn batches(n: usize, batch_size: usize, epochs: usize) -> Vec<Rows<'static>> {
    let mut v = Vec::new();
    for _ in 0..epochs {
        let mut s = 0;
        while s < n {
            let e = (s + batch_size).min(n);
            v.push(Rows::Range(s, e));
            s = e;
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// regularizers_k3.json
// ---------------------------------------------------------------------------------------------

fn reg_of(class: &Value, config: &Value) -> Reg {
    regularizer_from_keras(&json!({ "class_name": class, "config": config }))
        .unwrap_or_else(|e| panic!("regularizer {class} {config}: {e}"))
        .unwrap_or_else(|| panic!("regularizer {class} is null"))
}

/// `regularizers_k3.json`: penalty and gradient of every regularizer × array (L1, L2, L1L2,
/// orthogonal), `tf.nn.l2_loss` through [`Reg::from_l2_loss`], and the gradient of `|x|` at ±0.
pub fn run_regularizers() -> Summary {
    let file = "regularizers_k3.json";
    let v = load(file);
    let mut c = Checker::new(file);
    let all = v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .chain(v["orthogonal_cases"].as_array().expect("orthogonal_cases"));
    for (i, case) in all.enumerate() {
        c.case();
        let name = format!(
            "{}{} on {}",
            case["regularizer"].as_str().unwrap_or("?"),
            case["config"],
            case["array_name"]
        );
        let reg = reg_of(&case["regularizer"], &case["config"]);
        if let Some(gc) = case.get("get_config") {
            c.json_eq(
                &format!("case {i} {name}: get_config"),
                &regularizer_to_keras(&reg)["config"],
                gc,
            );
        }
        let x = floats(&case["x"]);
        let cols = *shape(&case["x"]).last().unwrap_or(&1);
        let p = reg.penalty(&x, cols);
        c.close1(
            &format!("case {i} {name}: penalty"),
            p,
            num(&case["penalty"]),
            FWD,
        );
        if let Some(r) = case.get("penalty_f64_reference") {
            c.close1(
                &format!("case {i} {name}: penalty vs f64 reference"),
                p,
                num(r),
                FWD,
            );
        }
        let mut g = vec![0.0f32; x.len()];
        reg.add_grad(&x, cols, &mut g, 1.0);
        let expected = floats(&case["grad"]);
        let tol = if matches!(reg, Reg::Orthogonal { .. }) {
            // The orthogonal gradient scales with 1/|x_i| (up to 1e3 here) and its radial part
            // cancels: an element that is 0 analytically comes out as rounding noise of the
            // tensor's scale (TF's own noise is visible: 4.8e-7 where 0 is exact, factor 0.01).
            // The README's atol is therefore applied relative to the tensor's largest gradient.
            let scale = expected.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            Tol {
                rtol: FWD.rtol,
                atol: FWD.atol * f64::from(scale),
            }
        } else {
            ELEMENTWISE
        };
        c.close32(&format!("case {i} {name}: grad"), &g, &expected, tol);
    }
    for (i, case) in v["l2_loss_cases"]
        .as_array()
        .expect("l2_loss_cases")
        .iter()
        .enumerate()
    {
        c.case();
        let name = format!("l2_loss case {i} on {}", case["array_name"]);
        let reg = Reg::from_l2_loss(1.0);
        let x = floats(&case["x"]);
        let p = reg.penalty(&x, 1);
        c.close1(&format!("{name}: value"), p, num(&case["l2_loss"]), FWD);
        c.close1(
            &format!("{name}: value vs f64 reference"),
            p,
            num(&case["l2_loss_f64_reference"]),
            FWD,
        );
        let mut g = vec![0.0f32; x.len()];
        reg.add_grad(&x, 1, &mut g, 1.0);
        // d/dx Σx²/2 = x, exactly (as a value: our gradient buffer starts at +0, so -0 becomes +0).
        c.exact(&format!("{name}: grad"), &g, &floats(&case["grad"]));
    }
    let a = &v["abs_gradient_check"];
    c.case();
    let x = floats(&a["x"]);
    let mut g = vec![0.0f32; x.len()];
    Reg::L1 { l1: 1.0 }.add_grad(&x, 1, &mut g, 1.0);
    c.bits(
        "abs_gradient_check: d/dx sum|x| at ±0, ±1e-30, ±2",
        &g,
        &floats(&a["grad_of_sum_abs"]),
    );
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// regularizer_config_k3.json
// ---------------------------------------------------------------------------------------------

/// Parses a Python constructor call as written in the file's labels: `L1(0.1)`,
/// `L1L2(l1=0.01, l2=0.02)`, `OrthogonalRegularizer(0.1, 'columns')`, `L2()`.
fn constructor_config(label: &str) -> (String, Value) {
    let (name, rest) = label
        .split_once('(')
        .unwrap_or_else(|| panic!("not a call: {label}"));
    let args = rest
        .strip_suffix(')')
        .unwrap_or_else(|| panic!("not a call: {label}"));
    let class = match name {
        "l1_l2" => "L1L2", // Keras 3: `l1_l2` is an alias of the class L1L2
        other => other,
    };
    let positional: &[&str] = match class {
        "L1" => &["l1"],
        "L2" => &["l2"],
        "L1L2" => &["l1", "l2"],
        "OrthogonalRegularizer" => &["factor", "mode"],
        other => panic!("unknown constructor {other}"),
    };
    let mut cfg = serde_json::Map::new();
    for (i, a) in args
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .enumerate()
    {
        let (k, val) = match a.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), v.trim()),
            None => (positional[i].to_string(), a),
        };
        let val = if let Some(s) = val.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            json!(s)
        } else {
            json!(
                val.parse::<f64>()
                    .unwrap_or_else(|_| panic!("bad argument {val} in {label}"))
            )
        };
        cfg.insert(k, val);
    }
    (class.to_string(), Value::Object(cfg))
}

/// `regularizer_config_k3.json`: `get(identifier)` for every identifier (errors included),
/// `serialize` / `get_config` / the deserialize round trip of every constructor, `get` from a
/// dict or a string, and a Dense layer's regularizer entries.
pub fn run_regularizer_config() -> Summary {
    let file = "regularizer_config_k3.json";
    let v = load(file);
    let mut c = Checker::new(file);
    let check_get = |c: &mut Checker, what: &str, input: &Value, rec: &Value| {
        let r = regularizer_from_keras(input);
        if rec.get("error").is_some() {
            c.truth(
                &format!("{what}: is an error ({})", rec["error"]),
                r.is_err(),
            );
            return;
        }
        match r {
            Ok(Some(reg)) => {
                c.json_eq(
                    &format!("{what}: class_name"),
                    &json!(reg.keras_class()),
                    &rec["class_name"],
                );
                c.json_eq(
                    &format!("{what}: get_config"),
                    &regularizer_to_keras(&reg)["config"],
                    &rec["get_config"],
                );
            }
            other => c.truth(&format!("{what}: parses ({other:?})"), false),
        }
    };
    for (ident, rec) in v["get"].as_object().expect("get") {
        c.case();
        check_get(&mut c, &format!("get({ident:?})"), &json!(ident), rec);
    }
    for (label, rec) in v["serialize"].as_object().expect("serialize") {
        c.case();
        // From the constructor arguments to Keras' serialized form.
        let (class, cfg) = constructor_config(label);
        let reg = reg_of(&json!(class), &cfg);
        c.json_eq(
            &format!("serialize({label})"),
            &regularizer_to_keras(&reg),
            &rec["serialize"],
        );
        c.json_eq(
            &format!("{label}.get_config()"),
            &regularizer_to_keras(&reg)["config"],
            &rec["get_config"],
        );
        // Keras' serialized form back to the same regularizer, and round trip.
        let back = regularizer_from_keras(&rec["serialize"]);
        c.truth(
            &format!("deserialize(serialize({label})) == {label}"),
            back == Ok(Some(reg)),
        );
        check_get(
            &mut c,
            &format!("deserialize(serialize({label}))"),
            &regularizer_to_keras(&reg),
            &rec["deserialize_roundtrip"],
        );
    }
    for (label, rec) in v["get_from_dict_or_string"]
        .as_object()
        .expect("get_from_dict_or_string")
    {
        c.case();
        check_get(
            &mut c,
            &format!("get_from_dict_or_string.{label}"),
            &rec["input"],
            rec,
        );
    }
    for (key, rec) in v["dense_layer_get_config_regularizer_entries"]
        .as_object()
        .expect("dense_layer_get_config_regularizer_entries")
    {
        c.case();
        let reg = regularizer_from_keras(rec).ok().flatten();
        c.truth(&format!("Dense.{key} parses"), reg.is_some());
        if let Some(reg) = reg {
            c.json_eq(
                &format!("Dense.{key} written back"),
                &regularizer_to_keras(&reg),
                rec,
            );
        }
    }
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// initializers_k3.json
// ---------------------------------------------------------------------------------------------

/// `initializers_k3.json`: fans and Glorot limits for every shape, draws within the limit, and
/// the Dense default initializers.
pub fn run_initializers() -> Summary {
    let file = "initializers_k3.json";
    let v = load(file);
    let mut c = Checker::new(file);
    for case in v["cases"].as_array().expect("cases") {
        c.case();
        let sh: Vec<usize> = case["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().expect("dim") as usize)
            .collect();
        let (fi, fo) = fans(&sh);
        c.truth(
            &format!(
                "fans({sh:?}) = ({fi}, {fo}) vs ({}, {})",
                case["fan_in"], case["fan_out"]
            ),
            fi as u64 == case["fan_in"].as_u64().expect("fan_in")
                && fo as u64 == case["fan_out"].as_u64().expect("fan_out"),
        );
        let limit = Initializer::glorot_limit(fi, fo);
        let expected = num(&case["glorot_uniform_limit"]);
        c.close1(
            &format!("glorot_limit{sh:?}"),
            limit,
            expected,
            Tol {
                rtol: 1e-6,
                atol: 0.0,
            },
        );
        let n: usize = sh.iter().product();
        let mut w = vec![0.0f32; n];
        Initializer::GlorotUniform.fill(&mut w, &sh, &mut Rng::new(n as u64));
        let l32 = expected as f32;
        c.truth(
            &format!("GlorotUniform{sh:?} draws within ±{l32}"),
            w.iter().all(|x| x.abs() <= l32),
        );
        c.truth(
            &format!("Keras' own draws for {sh:?} lie within our limit"),
            num(&case["sample_min"]) >= -f64::from(limit)
                && num(&case["sample_max"]) <= f64::from(limit),
        );
    }
    c.case();
    let d = &v["dense_defaults"];
    let ks = &d["kernel_shape"];
    let (n_in, units) = (ks[0].as_u64().expect("in"), ks[1].as_u64().expect("out"));
    // A Keras Dense config that names the recorded default initializers ...
    let cfg = json!({"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, n_in]}},
        {"class_name": "Dense", "config": {"units": units,
            "kernel_initializer": {"class_name": d["kernel_initializer"], "config": {}},
            "bias_initializer": {"class_name": d["bias_initializer"], "config": {}}}}]});
    let (spec, _) = spec_from_keras_value(&cfg).unwrap_or_else(|e| panic!("dense_defaults: {e}"));
    let parsed = spec.layers[0].dense_config().expect("dense").to_owned();
    // ... gives our defaults.
    let ours = LayerSpec::dense(units as usize, Activation::Linear);
    let ours = ours.dense_config().expect("dense");
    c.truth(
        "Dense default initializers are Keras' (GlorotUniform kernel, Zeros bias)",
        parsed.kernel_initializer == ours.kernel_initializer
            && parsed.bias_initializer == ours.bias_initializer,
    );
    let m = spec.build(3).expect("build");
    c.bits(
        "Dense default bias",
        m.params.tensor(1),
        &floats(&d["bias"]),
    );
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// losses_k3.json
// ---------------------------------------------------------------------------------------------

/// `losses_k3.json`: every BCE/CCE/SCCE/MSE case — elementwise and per-sample values, the
/// reduced loss as the mean of the per-sample values, the gradients of the reduced loss with
/// respect to `y_pred` ([`Loss::value_grad`] with `scale = 1/B`) — and the cached-logits
/// shortcut through [`Loss::fused_value_grad`].
pub fn run_losses() -> Summary {
    let file = "losses_k3.json";
    let v = load(file);
    let mut c = Checker::new(file);
    let groups = [
        ("binary_crossentropy", "per_sample_mean_last_axis"),
        ("categorical_crossentropy", "per_sample"),
        ("sparse_categorical_crossentropy", "per_sample"),
        ("mean_squared_error", "per_sample"),
    ];
    for (key, per_key) in groups {
        for (ci, case) in v[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}"))
            .iter()
            .enumerate()
        {
            c.case();
            let fl = case
                .get("from_logits")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let loss = match key {
                "binary_crossentropy" => Loss::BinaryCrossentropy { from_logits: fl },
                "categorical_crossentropy" => Loss::CategoricalCrossentropy { from_logits: fl },
                "sparse_categorical_crossentropy" => {
                    Loss::SparseCategoricalCrossentropy { from_logits: fl }
                }
                _ => Loss::MeanSquaredError,
            };
            let name = format!("{key}[{ci}] from_logits={fl}");
            let sh = shape(&case["y_pred"]);
            let (b, d) = (sh[0], sh[1]);
            let p = floats(&case["y_pred"]);
            let (dense_y, cls) = if key.starts_with("sparse") {
                (Vec::new(), labels(&case["labels"]))
            } else {
                (floats(&case["y_true"]), Vec::new())
            };
            let target = |r: usize| -> Target<'_> {
                if cls.is_empty() {
                    Target::Dense(&dense_y[r * d..(r + 1) * d])
                } else {
                    Target::Class(cls[r])
                }
            };
            let inv_b = 1.0 / b as f32;
            let mut per = Vec::new();
            let mut grad = vec![0.0f32; b * d];
            for r in 0..b {
                let l = loss
                    .value_grad(
                        &p[r * d..(r + 1) * d],
                        target(r),
                        Some(&mut grad[r * d..(r + 1) * d]),
                        inv_b,
                    )
                    .unwrap_or_else(|e| panic!("{name} row {r}: {e}"));
                per.push(l);
            }
            c.close32(
                &format!("{name}: {per_key}"),
                &per,
                &floats(&case[per_key]),
                FWD,
            );
            let mut s = 0.0f32;
            for &l in &per {
                s += l;
            }
            c.close1(
                &format!("{name}: reduced (mean of per-sample)"),
                s / b as f32,
                num(&case["reduced_sum_over_batch_size"]),
                FWD,
            );
            c.close32(
                &format!("{name}: d reduced / d y_pred"),
                &grad,
                &floats(&case["grad_reduced_wrt_y_pred"]),
                FWD,
            );
            if let Some(el) = case.get("elementwise") {
                // One element at a time: the per-sample mean of a single element.
                let mut e = Vec::new();
                let mut ge = vec![0.0f32; b * d];
                for i in 0..b * d {
                    let t = [dense_y[i]];
                    e.push(
                        loss.value_grad(
                            &p[i..i + 1],
                            Target::Dense(&t),
                            Some(&mut ge[i..i + 1]),
                            1.0,
                        )
                        .unwrap_or_else(|err| panic!("{name} element {i}: {err}")),
                    );
                }
                c.close32(&format!("{name}: elementwise"), &e, &floats(el), FWD);
                c.close32(
                    &format!("{name}: d sum(elementwise) / d y_pred"),
                    &ge,
                    &floats(&case["grad_sum_elementwise_wrt_y_pred"]),
                    FWD,
                );
            }
        }
    }
    // Cached logits: a library sigmoid/softmax output makes Keras use the logits formula.
    let s = &v["cached_logits_shortcut"];
    for (key, logits_key, y_key, fused_key, plain_key, act) in [
        (
            "bce",
            "logits_bce",
            "y_true_bce",
            "bce_on_library_sigmoid_output",
            "bce_on_plain_probability_tensor",
            Activation::Sigmoid,
        ),
        (
            "cce",
            "logits_cce",
            "y_true_cce",
            "cce_on_library_softmax_output",
            "cce_on_plain_probability_tensor",
            Activation::Softmax,
        ),
        (
            "scce",
            "logits_cce",
            "labels_scce",
            "scce_on_library_softmax_output",
            "scce_on_plain_probability_tensor",
            Activation::Softmax,
        ),
    ] {
        c.case();
        let loss = match key {
            "bce" => Loss::BinaryCrossentropy { from_logits: false },
            "cce" => Loss::CategoricalCrossentropy { from_logits: false },
            _ => Loss::SparseCategoricalCrossentropy { from_logits: false },
        };
        let z = floats(&s[logits_key]);
        let (yd, yc) = if key == "scce" {
            (Vec::new(), labels(&s[y_key]))
        } else {
            (floats(&s[y_key]), Vec::new())
        };
        let t = if yc.is_empty() {
            Target::Dense(&yd)
        } else {
            Target::Class(yc[0])
        };
        c.truth(
            &format!("{key}: {loss:?} fuses with {act:?}"),
            loss.fuses_with(act),
        );
        let fused = loss.fused_value_grad(&z, t, None, 1.0).expect("fused");
        c.close1(
            &format!("cached_logits_shortcut.{fused_key}"),
            fused,
            num(&s[fused_key]),
            FWD,
        );
        let mut prob = vec![0.0f32; z.len()];
        act.forward(&z, &mut prob);
        let plain = loss.value_grad(&prob, t, None, 1.0).expect("plain");
        c.close1(
            &format!("cached_logits_shortcut.{plain_key}"),
            plain,
            num(&s[plain_key]),
            FWD,
        );
    }
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// dense_step_k3.json
// ---------------------------------------------------------------------------------------------

/// One optimizer run of a dense_step case.
#[derive(Debug, Clone)]
pub struct OptimizerRun {
    /// `SGD{"learning_rate": 0.1, ...}` (for messages).
    pub label: String,
    /// The optimizer, from `config_given`.
    pub optimizer: KerasOptimizer,
    /// The recorded steps.
    pub steps: Vec<Value>,
    /// `fit_check.history_loss`.
    pub history_loss: Vec<f64>,
}

/// One activation/loss case of `dense_step_k3.json`, built from the file.
#[derive(Debug, Clone)]
pub struct DenseStepCase {
    /// `linear+mse`, ...
    pub label: String,
    /// The model, built from `meta.layer` and the case's activation through `microfit::keras`.
    pub spec: ModelSpec,
    /// The loss.
    pub loss: Loss,
    /// Keras layer names in order.
    pub layers: Vec<String>,
    /// Initial weights in model order.
    pub initial: Vec<Vec<f32>>,
    /// Inputs, row-major.
    pub x: Vec<f32>,
    /// Targets, row-major.
    pub y: Vec<f32>,
    /// Outputs per sample.
    pub width: usize,
    /// The recorded case.
    pub json: Value,
    /// The optimizer runs.
    pub runs: Vec<OptimizerRun>,
}

impl DenseStepCase {
    /// The samples of the case.
    pub fn samples(&self) -> Samples<'_> {
        Samples::new(
            &self.x,
            self.spec.input_shape.iter().product(),
            Targets::Dense {
                values: &self.y,
                width: self.width,
            },
        )
        .expect("samples")
    }
    /// Number of samples.
    pub fn batch(&self) -> usize {
        self.y.len() / self.width
    }
}

/// Reads every case of `dense_step_k3.json` (the model comes from `meta.layer`: units, input
/// size and the three regularizer configs, read through `microfit::keras`).
pub fn dense_step_cases(v: &Value) -> Vec<DenseStepCase> {
    let ml = &v["meta"]["layer"];
    let layers = layer_order(&v["initial_weights"], None);
    let initial = weights_in_order(&layers, &v["initial_weights"]);
    let x = floats(&v["x"]);
    let mut out = Vec::new();
    for case in v["cases"].as_array().expect("cases") {
        let act = case["activation"].as_str().expect("activation");
        let cfg = json!({"layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [null, ml["input_dim"]]}},
            {"class_name": "Dense", "config": {
                "name": layers[0], "units": ml["units"], "activation": act,
                "kernel_regularizer": ml["kernel_regularizer"],
                "bias_regularizer": ml["bias_regularizer"],
                "activity_regularizer": ml["activity_regularizer"]}}]});
        let (spec, _) =
            spec_from_keras_value(&cfg).unwrap_or_else(|e| panic!("dense_step model: {e}"));
        let loss_name = case["loss"].as_str().expect("loss");
        let loss =
            Loss::from_keras_name(loss_name).unwrap_or_else(|| panic!("unknown loss {loss_name}"));
        let y = floats(&case["y_true"]);
        let width = *shape(&case["y_true"]).last().expect("y_true shape");
        let runs = case["optimizer_runs"]
            .as_array()
            .expect("optimizer_runs")
            .iter()
            .map(|r| {
                let class = r["optimizer"].as_str().expect("optimizer");
                let optimizer = KerasOptimizer::from_keras_class(class, &r["config_given"])
                    .unwrap_or_else(|e| panic!("{class} {}: {e}", r["config_given"]));
                let effective = KerasOptimizer::from_keras_class(class, &r["config_effective"])
                    .unwrap_or_else(|e| panic!("{class} {}: {e}", r["config_effective"]));
                assert_eq!(
                    optimizer, effective,
                    "{class}: config_given and config_effective disagree"
                );
                OptimizerRun {
                    label: format!("{class}{}", r["config_given"]),
                    optimizer,
                    steps: r["steps"].as_array().expect("steps").clone(),
                    history_loss: r["fit_check"]["history_loss"]
                        .as_array()
                        .map_or(Vec::new(), |a| a.iter().map(num).collect()),
                }
            })
            .collect();
        out.push(DenseStepCase {
            label: format!("{act}+{loss_name}"),
            spec,
            loss,
            layers: layers.clone(),
            initial: initial.clone(),
            x: x.clone(),
            y,
            width,
            json: case.clone(),
            runs,
        });
    }
    out
}

/// The runtime trace of one optimizer run of a dense_step case (2 steps on the same batch,
/// or as many as the file records).
pub fn dense_step_runtime_trace(case: &DenseStepCase, run: &OptimizerRun) -> Vec<StepTrace> {
    let mut m = build_with(&case.spec, &case.initial);
    let mut opt = run.optimizer.build(&m.params).expect("optimizer");
    let b = case.batch();
    let rows = vec![Rows::Range(0, b); run.steps.len()];
    trace_steps(&mut m, &mut opt, case.loss, &case.samples(), &rows)
}

fn check_reg_losses(
    c: &mut Checker,
    what: &str,
    layers: &[String],
    rep: &StepReport,
    rec: &Value,
    tol: Tol,
) {
    let rec = rec.as_object().expect("reg_losses");
    for (k, val) in rec {
        let (i, kind) = penalty_key(layers, k);
        c.close1(
            &format!("{what}: reg_losses[{k}]"),
            rep.penalties.get(i, kind),
            num(val),
            tol,
        );
    }
    c.truth(
        &format!(
            "{what}: the same named penalties as Keras ({} recorded, {} computed)",
            rec.len(),
            rep.penalties.entries().len()
        ),
        rec.len() == rep.penalties.entries().len(),
    );
}

fn check_named(
    c: &mut Checker,
    what: &str,
    layers: &[String],
    got: &[Vec<f32>],
    rec: &Value,
    tol: Option<Tol>,
) {
    for (k, t) in rec.as_object().expect("named tensors") {
        if t.get("data").is_none() {
            continue;
        }
        let i = var_index(layers, k);
        match tol {
            Some(tol) => c.close32(&format!("{what}[{k}]"), &got[i], &floats(t), tol),
            None => c.bits(&format!("{what}[{k}]"), &got[i], &floats(t)),
        }
    }
}

/// Slots recorded as `{"dense/kernel": {"m": tensor, "v": tensor}, ...}` → by slot name, model order.
fn recorded_slots(layers: &[String], rec: &Value) -> BTreeMap<String, Vec<Vec<f32>>> {
    let mut out: BTreeMap<String, Vec<Vec<f32>>> = BTreeMap::new();
    for (var, slots) in rec.as_object().expect("slots_after") {
        let i = var_index(layers, var);
        for (slot, t) in slots.as_object().expect("slots") {
            let e = out
                .entry(slot.clone())
                .or_insert_with(|| vec![Vec::new(); 2 * layers.len()]);
            e[i] = floats(t);
        }
    }
    out
}

/// `dense_step_k3.json`: for every activation/loss case the forward pass at init (pre-activation,
/// output, data loss, named penalties, undivided activity penalty, total, gradients of the total
/// and of the data loss alone); for every optimizer run the 2 recorded steps (outputs, losses,
/// gradients, weights and slots after each update) and the `fit` history; and each update
/// replayed from the recorded weights, slots and gradients, which must be bit-exact.
pub fn run_dense_step() -> Summary {
    let file = "dense_step_k3.json";
    let v = load(file);
    let mut c = Checker::new(file);
    for case in dense_step_cases(&v) {
        c.case();
        let f = &case.json["forward_at_init"];
        let name = format!("{}: forward_at_init", case.label);
        let b = case.batch();
        c.truth(
            &format!("{name}: batch_size"),
            f["batch_size"].as_u64() == Some(b as u64),
        );
        // Forward and gradients at the initial weights.
        let mut m = build_with(&case.spec, &case.initial);
        let samples = case.samples();
        let (mut y, mut z) = (Vec::new(), Vec::new());
        let width = m.output_len();
        for i in 0..b {
            m.forward_tile::<Portable>(samples.input(i), true, None);
            let io = m.loss_io();
            y.extend_from_slice(&io.y[..width]);
            let logits = io.logits.expect("a Dense layer keeps its pre-activations");
            z.extend_from_slice(&logits[..width]);
        }
        c.close32(
            &format!("{name}: pre_activation"),
            &z,
            &floats(&f["pre_activation"]),
            FWD,
        );
        c.close32(&format!("{name}: y_pred"), &y, &floats(&f["y_pred"]), FWD);
        let rep = compute_gradients::<Portable, _>(&mut m, case.loss, &samples, Rows::Range(0, b))
            .expect("compute_gradients");
        c.close1(
            &format!("{name}: data_loss"),
            rep.data_loss,
            num(&f["data_loss"]),
            FWD,
        );
        check_reg_losses(&mut c, &name, &case.layers, &rep, &f["reg_losses"], FWD);
        if let Some(ar) = case.spec.layers[0]
            .dense_config()
            .and_then(|d| d.activity_regularizer)
        {
            let mut undivided = 0.0f32;
            for row in y.chunks(case.width) {
                undivided += ar.penalty(row, case.width);
            }
            c.close1(
                &format!("{name}: activity_loss_undivided"),
                undivided,
                num(&f["activity_loss_undivided"]),
                FWD,
            );
        }
        c.close1(
            &format!("{name}: total_loss"),
            rep.total_loss,
            num(&f["total_loss"]),
            FWD,
        );
        check_named(
            &mut c,
            &format!("{name}: grads_total"),
            &case.layers,
            &tensors(&m.grads),
            &f["grads_total"],
            Some(FWD),
        );
        let mut plain = build_with(&without_regularizers(&case.spec), &case.initial);
        let rep0 =
            compute_gradients::<Portable, _>(&mut plain, case.loss, &samples, Rows::Range(0, b))
                .expect("compute_gradients");
        c.truth(
            &format!("{name}: no penalties without regularizers"),
            rep0.penalties.entries().is_empty(),
        );
        check_named(
            &mut c,
            &format!("{name}: grads_data_loss_only"),
            &case.layers,
            &tensors(&plain.grads),
            &f["grads_data_loss_only"],
            Some(FWD),
        );

        for run in &case.runs {
            c.case();
            let name = format!("{} {}", case.label, run.label);
            let trace = dense_step_runtime_trace(&case, run);
            for (i, (st, t)) in run.steps.iter().zip(&trace).enumerate() {
                let what = format!("{name} step {}", i + 1);
                c.close32(
                    &format!("{what}: y_pred"),
                    &t.y_pred,
                    &floats(&st["y_pred"]),
                    FWD,
                );
                c.close1(
                    &format!("{what}: data_loss"),
                    t.report.data_loss,
                    num(&st["data_loss"]),
                    FWD,
                );
                check_reg_losses(
                    &mut c,
                    &what,
                    &case.layers,
                    &t.report,
                    &st["reg_losses"],
                    FWD,
                );
                c.close1(
                    &format!("{what}: total_loss"),
                    t.report.total_loss,
                    num(&st["total_loss"]),
                    FWD,
                );
                if let Some(h) = run.history_loss.get(i) {
                    c.close1(
                        &format!("{what}: fit history_loss"),
                        t.report.total_loss,
                        *h,
                        FWD,
                    );
                }
                check_named(
                    &mut c,
                    &format!("{what}: grads"),
                    &case.layers,
                    &t.grads,
                    &st["grads"],
                    Some(FWD),
                );
                check_named(
                    &mut c,
                    &format!("{what}: weights_after"),
                    &case.layers,
                    &t.weights_after,
                    &st["weights_after"],
                    Some(FWD),
                );
                let rec = recorded_slots(&case.layers, &st["slots_after"]);
                c.truth(
                    &format!(
                        "{what}: slot names {:?} vs {:?}",
                        rec.keys().collect::<Vec<_>>(),
                        t.slots_after.iter().map(|s| &s.0).collect::<Vec<_>>()
                    ),
                    rec.len() == t.slots_after.len()
                        && t.slots_after.iter().all(|(n, _)| rec.contains_key(n)),
                );
                for (slot, got) in &t.slots_after {
                    if let Some(exp) = rec.get(slot) {
                        for (k, (g, e)) in got.iter().zip(exp).enumerate() {
                            c.close32(&format!("{what}: slots_after.{slot}[{k}]"), g, e, FWD);
                        }
                    }
                }
            }
            c.truth(
                &format!("{name}: {} steps recorded and run", run.steps.len()),
                trace.len() == run.steps.len(),
            );

            // The update alone, from Keras' own weights, slots and gradients: bit-exact.
            let proto = build_with(&case.spec, &case.initial).params;
            for (i, st) in run.steps.iter().enumerate() {
                let what = format!("{name} step {} from recorded grads", i + 1);
                let mut w = proto.clone();
                let mut opt = run.optimizer.build(&w).expect("optimizer");
                if i == 0 {
                    set_tensors(&mut w, &case.initial);
                } else {
                    let prev = &run.steps[i - 1];
                    set_tensors(
                        &mut w,
                        &weights_in_order(&case.layers, &prev["weights_after"]),
                    );
                    for (slot, t) in recorded_slots(&case.layers, &prev["slots_after"]) {
                        set_tensors(opt.slot_mut(&slot).expect("slot"), &t);
                    }
                    opt.set_iterations(i as u32);
                }
                let mut g = proto.clone();
                set_tensors(&mut g, &weights_in_order(&case.layers, &st["grads"]));
                opt.step::<Portable>(&mut w, &mut g);
                check_named(
                    &mut c,
                    &format!("{what}: weights_after"),
                    &case.layers,
                    &tensors(&w),
                    &st["weights_after"],
                    None,
                );
                for (slot, exp) in recorded_slots(&case.layers, &st["slots_after"]) {
                    let got = tensors(opt.slot(&slot).expect("slot"));
                    for (k, (g, e)) in got.iter().zip(&exp).enumerate() {
                        c.bits(&format!("{what}: slots_after.{slot}[{k}]"), g, e);
                    }
                }
            }
        }
    }
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// mlp_fit_k3.json
// ---------------------------------------------------------------------------------------------

/// `mlp_fit_k3.json`, built from the file.
#[derive(Debug, Clone)]
pub struct MlpFit {
    /// The model, from `keras_model_config`.
    pub spec: ModelSpec,
    /// The same network with `L2(λ/2)` on every kernel and bias and no other regularizer
    /// (`custom_loop_l2_loss`).
    pub l2_loss_spec: ModelSpec,
    /// `custom_loop_l2_loss.lambda`.
    pub lambda: f32,
    /// Keras layer names in order.
    pub layers: Vec<String>,
    /// The loss.
    pub loss: Loss,
    /// The optimizer.
    pub optimizer: KerasOptimizer,
    /// Initial weights in model order.
    pub initial: Vec<Vec<f32>>,
    /// Inputs.
    pub x: Vec<f32>,
    /// One-hot targets.
    pub y: Vec<f32>,
    /// Classes.
    pub width: usize,
    /// `fit(batch_size=...)`.
    pub batch_size: usize,
    /// `fit(epochs=...)`.
    pub epochs: usize,
    /// The file.
    pub json: Value,
}

impl MlpFit {
    /// The training samples (one-hot targets).
    pub fn samples(&self) -> Samples<'_> {
        Samples::new(
            &self.x,
            self.spec.input_shape.iter().product(),
            Targets::Dense {
                values: &self.y,
                width: self.width,
            },
        )
        .expect("samples")
    }
    /// The batches of the whole fit, in order.
    pub fn batches(&self) -> Vec<Rows<'static>> {
        batches(self.y.len() / self.width, self.batch_size, self.epochs)
    }
}

/// The Keras loss class named in a description (the file records the loss only in prose).
fn loss_in_text(text: &str) -> Loss {
    for (name, loss) in [
        (
            "SparseCategoricalCrossentropy",
            Loss::SparseCategoricalCrossentropy { from_logits: false },
        ),
        (
            "CategoricalCrossentropy",
            Loss::CategoricalCrossentropy { from_logits: false },
        ),
        (
            "BinaryCrossentropy",
            Loss::BinaryCrossentropy { from_logits: false },
        ),
        ("MeanSquaredError", Loss::MeanSquaredError),
    ] {
        if text.contains(name) {
            return loss;
        }
    }
    panic!("no Keras loss class named in {text:?}")
}

/// Reads `mlp_fit_k3.json`.
pub fn mlp_fit(v: &Value) -> MlpFit {
    let kc = &v["keras_model_config"];
    let (spec, _) = spec_from_keras_value(kc).unwrap_or_else(|e| panic!("keras_model_config: {e}"));
    let layers = layer_order(&v["initial_weights"], Some(kc));
    let lambda = num(&v["custom_loop_l2_loss"]["lambda"]) as f32;
    let mut l2_loss_spec = without_regularizers(&spec);
    for l in &mut l2_loss_spec.layers {
        if let Some(c) = l.dense_config_mut() {
            c.kernel_regularizer = Some(Reg::from_l2_loss(lambda));
            c.bias_regularizer = Some(Reg::from_l2_loss(lambda));
        }
    }
    let loss = match v.get("loss") {
        Some(l) => microfit::keras::loss_from_keras(l).unwrap_or_else(|e| panic!("loss: {e}")),
        None => loss_in_text(v["meta"]["description"].as_str().expect("meta.description")),
    };
    let optimizer =
        KerasOptimizer::from_keras(&v["optimizer"]).unwrap_or_else(|e| panic!("optimizer: {e}"));
    MlpFit {
        initial: weights_in_order(&layers, &v["initial_weights"]),
        spec,
        l2_loss_spec,
        lambda,
        layers,
        loss,
        optimizer,
        x: floats(&v["x"]),
        y: floats(&v["y_onehot"]),
        width: *shape(&v["y_onehot"]).last().expect("y_onehot"),
        batch_size: v["batch_size"].as_u64().expect("batch_size") as usize,
        epochs: v["epochs"].as_u64().expect("epochs") as usize,
        json: v.clone(),
    }
}

/// Runtime `fit` of the regularized MLP.
pub fn mlp_runtime_fit(m: &MlpFit) -> FitTrace {
    let model = build_with(&m.spec, &m.initial);
    let opt = m.optimizer.build(&model.params).expect("optimizer");
    fit_trace(model, opt, m.loss, &m.samples(), m.batch_size, m.epochs)
}

/// Runtime eager replay (one `train_step` per batch) of `spec` (the regularized model or the
/// `l2_loss` one).
pub fn mlp_runtime_replay(m: &MlpFit, spec: &ModelSpec) -> Vec<StepTrace> {
    let mut model = build_with(spec, &m.initial);
    let mut opt = m.optimizer.build(&model.params).expect("optimizer");
    trace_steps(&mut model, &mut opt, m.loss, &m.samples(), &m.batches())
}

/// `mlp_fit_k3.json`: `fit` (history per epoch, batch-end running means, weights after each
/// epoch, final weights) through `Trainer::fit_epoch`; the eager replay's per-step losses and
/// named penalties through `train_step` reports; `custom_loop_l2_loss` with `L2(λ/2)` on every
/// kernel and bias.
pub fn run_mlp_fit() -> Summary {
    let file = "mlp_fit_k3.json";
    let v = load(file);
    let mut c = Checker::new(file);
    let m = mlp_fit(&v);
    let tol_at = |step: usize| if step == 0 { FWD } else { FIT };

    // fit()
    c.case();
    let fit = mlp_runtime_fit(&m);
    let fj = &v["fit"];
    for (e, r) in fit.epochs.iter().enumerate() {
        c.close1(
            &format!("fit epoch {e}: history loss"),
            r.loss,
            num(&fj["history_loss_per_epoch"][e]),
            FIT,
        );
        check_named(
            &mut c,
            &format!("fit epoch {e}: weights"),
            &m.layers,
            &fit.weights[e],
            &fj["weights_after_each_epoch"][e],
            Some(FIT),
        );
    }
    c.truth("fit: epochs run", fit.epochs.len() == m.epochs);
    check_named(
        &mut c,
        "fit: final_weights",
        &m.layers,
        fit.weights.last().expect("an epoch"),
        &fj["final_weights"],
        Some(FIT),
    );

    // Eager replay: one train_step per batch.
    c.case();
    let steps = mlp_runtime_replay(&m, &m.spec);
    let rj = &v["eager_replay_of_fit"];
    let nb = steps.len() / m.epochs.max(1);
    let logs = fj["batch_end_logs_loss"]
        .as_array()
        .expect("batch_end_logs_loss");
    c.truth(
        "eager replay: step count",
        steps.len() == rj["steps"].as_array().map_or(0, Vec::len) && steps.len() == logs.len(),
    );
    let (mut run_sum, mut run_n) = (0.0f32, 0.0f32);
    for (i, (t, st)) in steps
        .iter()
        .zip(rj["steps"].as_array().expect("steps"))
        .enumerate()
    {
        let what = format!(
            "eager step {i} (epoch {}, batch {})",
            st["epoch"], st["batch"]
        );
        c.close1(
            &format!("{what}: data_loss"),
            t.report.data_loss,
            num(&st["data_loss"]),
            tol_at(i),
        );
        check_reg_losses(
            &mut c,
            &what,
            &m.layers,
            &t.report,
            &st["reg_losses"],
            tol_at(i),
        );
        c.close1(
            &format!("{what}: total_loss"),
            t.report.total_loss,
            num(&st["total_loss"]),
            tol_at(i),
        );
        // Keras' batch-end logs: running batch-size-weighted mean within the epoch.
        if i % nb == 0 {
            (run_sum, run_n) = (0.0, 0.0);
        }
        let n = t.y_pred.len() as f32 / m.width as f32;
        run_sum += t.report.total_loss * n;
        run_n += n;
        c.close1(
            &format!("{what}: batch-end logs loss"),
            run_sum / run_n,
            num(&logs[i]),
            tol_at(i),
        );
        if i % nb == nb - 1 {
            let e = i / nb;
            c.close1(
                &format!("eager epoch {e}: mean of step totals"),
                run_sum / run_n,
                num(&rj["epoch_mean_of_step_total_loss"][e]),
                FIT,
            );
            c.truth(
                &format!("eager epoch {e}: same bits as fit_epoch's report"),
                (run_sum / run_n).to_bits() == fit.epochs[e].loss.to_bits(),
            );
        }
    }
    let last = &steps.last().expect("a step").weights_after;
    check_named(
        &mut c,
        "eager replay: final_weights",
        &m.layers,
        last,
        &rj["final_weights"],
        Some(FIT),
    );
    c.truth(
        "eager replay ends with the same bits as fit_epoch",
        *last == *fit.weights.last().expect("an epoch"),
    );

    // custom_loop_l2_loss: loss + λ Σ tf.nn.l2_loss(v) ≡ L2(λ/2) on every kernel and bias.
    c.case();
    let cj = &v["custom_loop_l2_loss"];
    let steps = mlp_runtime_replay(&m, &m.l2_loss_spec);
    c.truth(
        "custom loop: step count",
        steps.len() == cj["steps"].as_array().map_or(0, Vec::len),
    );
    let (mut s, mut nsum) = (0.0f32, 0.0f32);
    for (i, (t, st)) in steps
        .iter()
        .zip(cj["steps"].as_array().expect("steps"))
        .enumerate()
    {
        let what = format!("custom loop step {i}");
        c.close1(
            &format!("{what}: data_loss"),
            t.report.data_loss,
            num(&st["data_loss"]),
            tol_at(i),
        );
        c.close1(
            &format!("{what}: λ·Σ l2_loss"),
            t.report.penalties.total(),
            f64::from(m.lambda) * num(&st["sum_l2_loss"]),
            tol_at(i),
        );
        c.close1(
            &format!("{what}: total_loss"),
            t.report.total_loss,
            num(&st["total_loss"]),
            tol_at(i),
        );
        if i % nb == 0 {
            (s, nsum) = (0.0, 0.0);
        }
        let n = t.y_pred.len() as f32 / m.width as f32;
        s += t.report.total_loss * n;
        nsum += n;
        if i % nb == nb - 1 {
            let e = i / nb;
            c.close1(
                &format!("custom loop epoch {e}: mean of step totals"),
                s / nsum,
                num(&cj["epoch_mean_of_step_total_loss"][e]),
                FIT,
            );
            c.close1(
                &format!("custom loop epoch {e}: fit() with L2(λ/2) history"),
                s / nsum,
                num(&cj["equivalence_check"]["history_loss_per_epoch"][e]),
                FIT,
            );
        }
    }
    check_named(
        &mut c,
        "custom loop: final_weights",
        &m.layers,
        &steps.last().expect("a step").weights_after,
        &cj["final_weights"],
        Some(FIT),
    );
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// activity_scaling_k3.json
// ---------------------------------------------------------------------------------------------

/// `activity_scaling_k3.json`: the activity penalty is divided by the batch size (B = 1, 2, 5),
/// and `fit`'s loss uses the divided value.
///
/// The file gives these models only in its description, so their structure is written here
/// from it (`Dense(5, kernel=ones)`, kernel `L1(0.01)`, activity `L2(0.01)`, `x = 2·ones((B, 5))`;
/// `Dense(2, kernel=ones, bias=0)`, activity `L1(0.1)`, MSE, zero targets); every input and
/// expected value comes from the file.
pub fn run_activity_scaling() -> Summary {
    let file = "activity_scaling_k3.json";
    let v = load(file);
    let mut c = Checker::new(file);
    let desc = v["meta"]["description"].as_str().expect("description");
    assert!(
        desc.contains(
            "Dense(5, kernel=ones), kernel L1(0.01), activity L2(0.01), x = 2*ones((B,5))"
        ),
        "activity_scaling: the model description changed, update run_activity_scaling: {desc}"
    );
    let dense = |units: usize, n_in: usize, k: Option<Reg>, a: Option<Reg>| {
        let mut l = LayerSpec::dense(units, Activation::Linear);
        if let Some(k) = k {
            l = l.with_kernel_regularizer(k);
        }
        if let Some(a) = a {
            l = l.with_activity_regularizer(a);
        }
        let spec = ModelSpec {
            input_shape: vec![n_in],
            layers: vec![l],
        };
        build_with(&spec, &[vec![1.0; n_in * units], vec![0.0; units]])
    };
    for case in v["layer_losses_by_batch_size"]
        .as_array()
        .expect("layer_losses_by_batch_size")
    {
        c.case();
        let b = case["batch_size"].as_u64().expect("batch_size") as usize;
        let mut m = dense(5, 5, Some(Reg::l1(0.01)), Some(Reg::l2(0.01)));
        let x = vec![2.0f32; b * 5];
        let y = vec![0.0f32; b * 5];
        let s = Samples::new(
            &x,
            5,
            Targets::Dense {
                values: &y,
                width: 5,
            },
        )
        .expect("samples");
        let rep =
            compute_gradients::<Portable, _>(&mut m, Loss::MeanSquaredError, &s, Rows::Range(0, b))
                .expect("step");
        let ll = &case["layer_losses"];
        let what = format!("B = {b}");
        c.close1(
            &format!("{what}: activity / B"),
            rep.penalties.get(0, PenaltyKind::Activity),
            num(&ll[0]),
            FWD,
        );
        c.close1(
            &format!("{what}: kernel"),
            rep.penalties.get(0, PenaltyKind::Kernel),
            num(&ll[1]),
            FWD,
        );
        c.close1(
            &format!("{what}: sum"),
            rep.penalties.total(),
            num(&case["sum"]),
            FWD,
        );
        let mut raw = 0.0f32;
        for i in 0..b {
            let out = m.predict(s.input(i)).expect("input");
            raw += Reg::l2(0.01).penalty(out, 5);
        }
        c.close1(
            &format!("{what}: raw activity (undivided)"),
            raw,
            num(&case["activity_raw_l2_0.01_sum_sq_out"]),
            FWD,
        );
    }
    c.case();
    let fc = &v["fit_check"];
    let model_desc = fc["model"].as_str().expect("fit_check.model");
    assert!(
        model_desc
            .starts_with("Dense(2, kernel=ones, bias=0, activity L1(0.1)), x 4x3, y zeros, mse"),
        "activity_scaling: the fit_check model changed: {model_desc}"
    );
    let x = floats(&fc["x"]);
    let sh = shape(&fc["x"]);
    let (b, n_in) = (sh[0], sh[1]);
    let mut m = dense(2, n_in, None, Some(Reg::l1(0.1)));
    let y = vec![0.0f32; b * 2];
    let s = Samples::new(
        &x,
        n_in,
        Targets::Dense {
            values: &y,
            width: 2,
        },
    )
    .expect("samples");
    let rep =
        compute_gradients::<Portable, _>(&mut m, Loss::MeanSquaredError, &s, Rows::Range(0, b))
            .expect("step");
    c.close1("fit_check: mse", rep.data_loss, num(&fc["mse"]), FWD);
    c.close1(
        "fit_check: raw activity",
        rep.penalties.get(0, PenaltyKind::Activity) * b as f32,
        num(&fc["activity_raw"]),
        FWD,
    );
    c.close1(
        "fit_check: fit loss",
        rep.total_loss,
        num(&fc["fit_loss"]),
        FWD,
    );
    c.close1(
        "fit_check: expected_if_divided",
        rep.total_loss,
        num(&fc["expected_if_divided"]),
        FWD,
    );
    c.truth(
        "fit_check: not the undivided (Keras < 3.14) value",
        (f64::from(rep.total_loss) - num(&fc["expected_if_not_divided"])).abs() > 1.0,
    );
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// Bit-for-bit comparison of two runs (typed vs runtime)
// ---------------------------------------------------------------------------------------------

/// `Err` naming the first value whose bits differ.
pub fn same_bits(what: &str, a: &[f32], b: &[f32]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{what}: {} values vs {}", a.len(), b.len()));
    }
    match a
        .iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
    {
        None => Ok(()),
        Some(i) => Err(format!("{what}[{i}]: {:e} vs {:e}", a[i], b[i])),
    }
}

fn same_tensors(what: &str, a: &[Vec<f32>], b: &[Vec<f32>]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{what}: {} tensors vs {}", a.len(), b.len()));
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        same_bits(&format!("{what}[{i}]"), x, y)?;
    }
    Ok(())
}

fn same_penalties(
    what: &str,
    a: &microfit::core::layer::Penalties,
    b: &microfit::core::layer::Penalties,
) -> Result<(), String> {
    let key = |p: &microfit::core::layer::Penalties| -> Vec<(u16, PenaltyKind, u32)> {
        p.entries()
            .iter()
            .map(|e| (e.layer, e.kind, e.value.to_bits()))
            .collect()
    };
    if key(a) != key(b) || a.overflow.to_bits() != b.overflow.to_bits() {
        return Err(format!("{what}: penalties {a:?} vs {b:?}"));
    }
    Ok(())
}

/// `Err` describing the first difference between two step reports, bit for bit.
pub fn same_report(what: &str, a: &StepReport, b: &StepReport) -> Result<(), String> {
    same_bits(&format!("{what}.data_loss"), &[a.data_loss], &[b.data_loss])?;
    same_bits(
        &format!("{what}.total_loss"),
        &[a.total_loss],
        &[b.total_loss],
    )?;
    same_penalties(what, &a.penalties, &b.penalties)?;
    if a.metrics != b.metrics {
        return Err(format!(
            "{what}: metrics {:?} vs {:?}",
            a.metrics, b.metrics
        ));
    }
    Ok(())
}

/// `Err` describing the first difference between two traces, bit for bit.
pub fn same_trace(what: &str, a: &[StepTrace], b: &[StepTrace]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{what}: {} steps vs {}", a.len(), b.len()));
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let w = format!("{what} step {i}");
        same_bits(&format!("{w}.y_pred"), &x.y_pred, &y.y_pred)?;
        same_bits(&format!("{w}.logits"), &x.logits, &y.logits)?;
        same_report(&w, &x.report, &y.report)?;
        same_tensors(&format!("{w}.grads"), &x.grads, &y.grads)?;
        same_tensors(
            &format!("{w}.weights_after"),
            &x.weights_after,
            &y.weights_after,
        )?;
        if x.slots_after.len() != y.slots_after.len() {
            return Err(format!("{w}: slot sets differ"));
        }
        for ((n1, t1), (n2, t2)) in x.slots_after.iter().zip(&y.slots_after) {
            if n1 != n2 {
                return Err(format!("{w}: slot {n1} vs {n2}"));
            }
            same_tensors(&format!("{w}.slots_after.{n1}"), t1, t2)?;
        }
    }
    Ok(())
}

/// `Err` describing the first difference between two fits, bit for bit.
pub fn same_fit(what: &str, a: &FitTrace, b: &FitTrace) -> Result<(), String> {
    if a.epochs.len() != b.epochs.len() {
        return Err(format!(
            "{what}: {} epochs vs {}",
            a.epochs.len(),
            b.epochs.len()
        ));
    }
    for (e, (x, y)) in a.epochs.iter().zip(&b.epochs).enumerate() {
        let w = format!("{what} epoch {e}");
        same_bits(&format!("{w}.loss"), &[x.loss], &[y.loss])?;
        same_bits(&format!("{w}.data_loss"), &[x.data_loss], &[y.data_loss])?;
        same_penalties(&w, &x.penalties, &y.penalties)?;
        if x.metrics != y.metrics || x.steps != y.steps {
            return Err(format!("{w}: metrics or step count differ"));
        }
        same_tensors(&format!("{w}.weights"), &a.weights[e], &b.weights[e])?;
    }
    Ok(())
}
