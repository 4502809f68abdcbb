//! Real `.keras` files written by Keras 3.15.1 (`<golden>/keras_files/<case>/`, see its
//! README) read, trained and written by microfit ([`microfit::formats::KerasModel`]).
//!
//! Every folder holding a `model.keras` is a case (none is named here, so hold-out folders run
//! the same way), in the golden folder and in `std-runtime/tests/fixtures/keras_cases` (binary
//! cross-entropy + AdamW, regression + SGD-Nesterov + no bias, Conv1D: written by Keras with
//! `keras_check/make_cases.py`). For each:
//! * inference on `model.keras` equals `predict_initial`, on `model_trained.keras`
//!   `predict_after_fit` (rtol 1e-5, atol 1e-6);
//! * `model_trained.keras` holds `weights_after_fit` bit for bit, and `iterations` =
//!   epochs × ⌈rows / batch⌉ (both Keras' own numbers, an independent check of the reader);
//! * `fit` from `model.keras` without shuffling, on the data as given, with the case's batch
//!   size and epochs, reproduces `history_loss` and `weights_after_fit` (rtol 1e-4, atol 1e-5),
//!   and its optimizer slots equal the ones Keras stored in `model_trained.keras` (which checks
//!   that `m` and `v` are not swapped);
//! * training on from `model_trained.keras` continues Keras' optimizer: the first update equals
//!   the Keras update rule (SEMANTICS.md §3, written out here) at step `iterations + 1`, and
//!   differs from the rule at step 1; one more epoch advances `iterations` by ⌈rows / batch⌉;
//!   when a Keras-written continuation fixture exists (`std-runtime/tests/fixtures/keras/
//!   <case>.continue.json`), that epoch's loss and weights equal Keras';
//! * round trip: the model microfit trained, written as `.keras`, reads back with the same
//!   bits (weights, slots, iterations), the same bytes when written again, and trains on to the
//!   same bits as the model it came from.
//!
//! A case whose `config.json` holds a layer class microfit does not support must fail to load
//! with an error naming that layer and its class.
//!
//! Training goes through [`fit`] and [`golden::trace_steps`] only.

use std::path::{Path, PathBuf};

use microfit::core::loss::Loss;
use microfit::core::optim::schedule::LearningRate;
use microfit::core::optim::{AnyOptimizer, Optimizer};
use microfit::core::train::{EpochReport, Rows, Samples, Targets, Trainable, Trainer};
use microfit::formats::{FormatError, KerasModel};
use microfit::keras::SUPPORTED_LAYERS;
use microfit::model::{Sequential, VecParams};
use microfit::spec::{OptimizerConfig, OptimizerKind};
use serde_json::Value;

use crate::golden::{self, Checker, FIT, FWD, Tol};

/// Rows of `data.csv`: features (row-major) and the last column.
#[derive(Debug, Clone)]
pub struct CaseData {
    /// Features, row-major.
    pub x: Vec<f32>,
    /// The last column (class index or target).
    pub y: Vec<f32>,
    /// Feature columns.
    pub n_features: usize,
}

/// Reads `data.csv` (header row, numbers, target last).
///
/// # Panics
/// On a missing file or a value that is not a number.
pub fn read_data(path: &Path) -> CaseData {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().unwrap_or_default();
    let n_features = header.split(',').count() - 1;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (r, line) in lines.enumerate() {
        let v: Vec<f32> = line
            .split(',')
            .map(|s| {
                s.trim().parse::<f64>().unwrap_or_else(|_| {
                    panic!("{}: row {}: not a number: {s}", path.display(), r + 1)
                }) as f32
            })
            .collect();
        assert_eq!(v.len(), n_features + 1, "{}: row {}", path.display(), r + 1);
        x.extend_from_slice(&v[..n_features]);
        y.push(v[n_features]);
    }
    CaseData { x, y, n_features }
}

/// Targets in the form `loss` takes: classes (sparse), one-hot rows (categorical) or the
/// value itself, as many values per row as the model has outputs (one column given).
#[derive(Debug, Clone)]
pub struct OwnedTargets {
    classes: Vec<u32>,
    dense: Vec<f32>,
    width: usize,
}

impl OwnedTargets {
    /// Targets of `y` for `loss` and a model with `outputs` outputs.
    ///
    /// # Panics
    /// If a class is not a non-negative integer.
    pub fn new(y: &[f32], loss: Loss, outputs: usize) -> Self {
        let class = |v: f32| {
            assert!(v >= 0.0 && v.fract() == 0.0, "class label {v}");
            v as u32
        };
        match loss {
            Loss::SparseCategoricalCrossentropy { .. } => OwnedTargets {
                classes: y.iter().map(|&v| class(v)).collect(),
                dense: Vec::new(),
                width: 0,
            },
            Loss::CategoricalCrossentropy { .. } => {
                let mut dense = vec![0.0; y.len() * outputs];
                for (i, &v) in y.iter().enumerate() {
                    dense[i * outputs + class(v) as usize] = 1.0;
                }
                OwnedTargets {
                    classes: Vec::new(),
                    dense,
                    width: outputs,
                }
            }
            _ => {
                assert_eq!(outputs, 1, "one target column for {outputs} outputs");
                OwnedTargets {
                    classes: Vec::new(),
                    dense: y.to_vec(),
                    width: 1,
                }
            }
        }
    }

    /// As core [`Targets`].
    pub fn view(&self) -> Targets<'_> {
        if self.width == 0 {
            Targets::Classes(&self.classes)
        } else {
            Targets::Dense {
                values: &self.dense,
                width: self.width,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The calls into the training engine
// ---------------------------------------------------------------------------------------------

/// `epochs` epochs of `fit(..., shuffle=False)`: the reports, the model and the optimizer.
///
/// # Panics
/// If an epoch fails.
pub fn fit(
    model: Sequential,
    opt: AnyOptimizer<VecParams>,
    loss: Loss,
    samples: &Samples<'_>,
    batch_size: usize,
    epochs: usize,
) -> (Vec<EpochReport>, Sequential, AnyOptimizer<VecParams>) {
    let mut tr = Trainer::new(model, opt, loss);
    let reports = (0..epochs)
        .map(|_| {
            tr.fit_epoch(samples, batch_size, None)
                .unwrap_or_else(|e| panic!("fit_epoch: {e}"))
        })
        .collect();
    (reports, tr.model, tr.optimizer)
}

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

/// The fixtures Keras wrote for these tests (`std-runtime/tests/fixtures/<name>`).
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../std-runtime/tests/fixtures"
    ))
    .join(name)
}

/// The subfolders of `root` holding a `model.keras`, sorted.
fn cases_in(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.keras").is_file())
        .collect();
    v.sort();
    v
}

/// The case folders: `<golden>/keras_files/*` (at least one), then the Keras-written cases of
/// other shapes, losses and optimizers in `std-runtime/tests/fixtures/keras_cases/*`
/// (`keras_check/make_cases.py`).
///
/// # Panics
/// If a folder cannot be listed or the golden folder has no case.
pub fn case_dirs() -> Vec<PathBuf> {
    let root = golden::golden_dir().join("keras_files");
    let mut v = cases_in(&root);
    assert!(
        !v.is_empty(),
        "no case folders (with model.keras) under {}",
        root.display()
    );
    v.extend(cases_in(&fixture("keras_cases")));
    v
}

/// The Keras-written continuation fixture of a case, if any.
fn continuation(case: &str) -> Option<Value> {
    let p = fixture("keras").join(format!("{case}.continue.json"));
    let text = std::fs::read_to_string(&p).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected.json: {what}: not a number"))
}

/// The layer classes of a `.keras` file's `config.json` that microfit does not support, as
/// `(name, class)`.
///
/// # Panics
/// If the file is not a readable zip with a `config.json`.
pub fn unsupported_layers(keras: &Path) -> Vec<(String, String)> {
    let f = std::fs::File::open(keras).unwrap_or_else(|e| panic!("{}: {e}", keras.display()));
    let mut z = zip::ZipArchive::new(f).unwrap_or_else(|e| panic!("{}: {e}", keras.display()));
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut z
            .by_name("config.json")
            .unwrap_or_else(|e| panic!("{}: {e}", keras.display())),
        &mut text,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", keras.display()));
    let v: Value = serde_json::from_str(&text).expect("config.json");
    v["config"]["layers"]
        .as_array()
        .expect("config.layers")
        .iter()
        .filter_map(|l| {
            let class = l["class_name"].as_str()?;
            (!SUPPORTED_LAYERS.contains(&class)).then(|| {
                (
                    l["config"]["name"].as_str().unwrap_or("").to_string(),
                    class.to_string(),
                )
            })
        })
        .collect()
}

/// Checks that loading `keras` fails naming its first unsupported layer and class.
pub fn check_unsupported(c: &mut Checker, case: &str, keras: &Path, layer: &(String, String)) {
    match KerasModel::load(keras) {
        Ok(_) => c.truth(
            &format!("{case}: {} ({}) is rejected", layer.0, layer.1),
            false,
        ),
        Err(e) => {
            let msg = e.to_string();
            println!("{case}: {msg}");
            c.truth(
                &format!(
                    "{case}: the error `{msg}` names `{}: {} is not supported`",
                    layer.0, layer.1
                ),
                matches!(e, FormatError::Keras { .. })
                    && msg.contains(&format!("{}: {} is not supported", layer.0, layer.1)),
            );
        }
    }
}

fn predict(model: &mut Sequential, x: &[f32], rows: usize) -> Vec<f32> {
    let n_in = x.len() / rows.max(1);
    let mut out = Vec::new();
    for r in 0..rows {
        let y = model
            .predict(&x[r * n_in..(r + 1) * n_in])
            .unwrap_or_else(|e| panic!("predict: {e}"));
        out.extend_from_slice(y);
    }
    out
}

/// `expected.json`'s `weights_after_fit` against `params` (named `<layer>/<kernel|bias>`);
/// every expected variable must be there and every parameter Keras has must be expected.
fn check_weights(
    c: &mut Checker,
    what: &str,
    params: &VecParams,
    expected: &Value,
    tol: Option<Tol>,
) {
    let exp = expected.as_object().expect("weights_after_fit");
    for (name, t) in exp {
        let Some(got) = params.get(name) else {
            c.truth(&format!("{what}: variable {name} exists"), false);
            continue;
        };
        c.truth(
            &format!("{what}: {name} shape"),
            params.shapes[params.index_of(name).unwrap_or(0)] == golden::shape(t),
        );
        match tol {
            Some(tol) => c.close32(&format!("{what}: {name}"), got, &golden::floats(t), tol),
            None => c.bits(&format!("{what}: {name}"), got, &golden::floats(t)),
        }
    }
    c.truth(
        &format!(
            "{what}: {} variables expected, {} in the model",
            exp.len(),
            params.tensors.len()
        ),
        exp.len() <= params.tensors.len(),
    );
}

/// Keras' update rule (SEMANTICS.md §3) for one tensor: `w`, `g` and the slots before,
/// `t` the step number; returns the weights after. No clipping.
fn keras_rule(o: &OptimizerConfig, t: u32, w: &[f32], g: &[f32], slots: &[&[f32]]) -> Vec<f32> {
    let lr = o.learning_rate.at(t - 1);
    let mut w = w.to_vec();
    if let Some(wd) = o.common.weight_decay {
        for x in &mut w {
            *x = *x - *x * wd * lr;
        }
    }
    match o.kind {
        OptimizerKind::Adam | OptimizerKind::AdamW => {
            let tf = t as f32;
            let alpha = lr * (1.0 - o.beta_2.powf(tf)).sqrt() / (1.0 - o.beta_1.powf(tf));
            for i in 0..w.len() {
                let m = slots[0][i] + (g[i] - slots[0][i]) * (1.0 - o.beta_1);
                let v = slots[1][i] + (g[i] * g[i] - slots[1][i]) * (1.0 - o.beta_2);
                w[i] -= (m * alpha) / (v.sqrt() + o.epsilon);
            }
        }
        OptimizerKind::Sgd if o.momentum != 0.0 => {
            for i in 0..w.len() {
                let m = slots[0][i] * o.momentum - lr * g[i];
                w[i] += if o.nesterov {
                    m * o.momentum - lr * g[i]
                } else {
                    m
                };
            }
        }
        OptimizerKind::Sgd => {
            for i in 0..w.len() {
                w[i] -= lr * g[i];
            }
        }
    }
    w
}

/// Runs every case; returns the checker's summary.
///
/// # Panics
/// Listing every failed check.
pub fn run_keras_files() -> golden::Summary {
    let dirs = case_dirs();
    let mut c = Checker::new("keras_files");
    for dir in &dirs {
        run_case(&mut c, dir);
    }
    // The unsupported-layer fixture written by Keras (std-runtime/tests/fixtures/keras).
    let bn = fixture("keras").join("batchnorm.keras");
    c.case();
    let bad = unsupported_layers(&bn);
    c.truth(
        "batchnorm.keras has a BatchNormalization layer",
        !bad.is_empty(),
    );
    if let Some(l) = bad.first() {
        check_unsupported(&mut c, "batchnorm.keras", &bn, l);
    }
    c.finish()
}

fn run_case(c: &mut Checker, dir: &Path) {
    c.case();
    let case = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let initial = dir.join("model.keras");
    let trained = dir.join("model_trained.keras");
    if let Some(l) = unsupported_layers(&initial).first() {
        check_unsupported(c, &case, &initial, l);
        return;
    }
    let text = std::fs::read_to_string(dir.join("expected.json"))
        .unwrap_or_else(|e| panic!("{case}/expected.json: {e}"));
    let exp: Value = serde_json::from_str(&text).expect("expected.json");
    let meta = &exp["meta"];
    let batch = num(&meta["fit"]["batch_size"], "meta.fit.batch_size") as usize;
    let epochs = num(&meta["fit"]["epochs"], "meta.fit.epochs") as usize;
    assert_eq!(
        meta["fit"]["shuffle"],
        Value::Bool(false),
        "{case}: shuffle"
    );
    let rows_pred = num(&meta["rows_in_predictions"], "meta.rows_in_predictions") as usize;
    let data = read_data(&dir.join("data.csv"));
    let n = data.y.len();
    let steps = n.div_ceil(batch);

    let k0 = KerasModel::load(&initial).unwrap_or_else(|e| panic!("{e}"));
    let k1 = KerasModel::load(&trained).unwrap_or_else(|e| panic!("{e}"));
    let loss = k0
        .loss
        .unwrap_or_else(|| panic!("{case}: model.keras has no loss"));
    let shape: Vec<usize> = meta["input_shape"]
        .as_array()
        .map(|a| a.iter().map(|d| num(d, "input_shape") as usize).collect())
        .unwrap_or_default();
    c.truth(
        &format!(
            "{case}: input shape {:?} is meta.input_shape {shape:?}",
            k0.spec.input_shape
        ),
        k0.spec.input_shape == shape && data.n_features == shape.iter().product::<usize>(),
    );
    println!(
        "{case}: Keras {:?}, {} layers, loss {}, optimizer {:?}",
        k0.keras_version,
        k0.spec.layers.len(),
        loss.keras_name(),
        k0.optimizer.as_ref().map(|o| o.kind)
    );

    // Inference.
    let x_pred = &data.x[..rows_pred * data.n_features];
    let mut m0 = k0.build(0).unwrap_or_else(|e| panic!("{e}"));
    let mut m1 = k1.build(0).unwrap_or_else(|e| panic!("{e}"));
    c.close32(
        &format!("{case}: predict(model.keras)"),
        &predict(&mut m0, x_pred, rows_pred),
        &golden::floats(&exp["predict_initial"]),
        FWD,
    );
    c.close32(
        &format!("{case}: predict(model_trained.keras)"),
        &predict(&mut m1, x_pred, rows_pred),
        &golden::floats(&exp["predict_after_fit"]),
        FWD,
    );
    check_weights(
        c,
        &format!("{case}: model_trained.keras"),
        &k1.weights,
        &exp["weights_after_fit"],
        None,
    );
    c.truth(
        &format!("{case}: model.keras has a fresh optimizer"),
        k0.optimizer_state.is_none(),
    );
    let it1 = k1.optimizer_state.as_ref().map_or(0, |s| s.iterations);
    c.truth(
        &format!("{case}: model_trained.keras iterations {it1} = {epochs} epochs x {steps} steps"),
        it1 as usize == epochs * steps,
    );

    // fit from model.keras.
    let targets = OwnedTargets::new(&data.y, loss, m0.output_len());
    let samples = Samples::new(&data.x, data.n_features, targets.view()).expect("samples");
    let opt0 = k0
        .optimizer(&m0)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("{case}: model.keras has no optimizer"));
    let (reports, fitted, fitted_opt) = fit(m0, opt0, loss, &samples, batch, epochs);
    let history: Vec<f32> = reports.iter().map(|r| r.loss).collect();
    let expected_history: Vec<f64> = exp["history_loss"]
        .as_array()
        .expect("history_loss")
        .iter()
        .map(|v| num(v, "history_loss"))
        .collect();
    c.close(
        &format!("{case}: history_loss"),
        &history,
        &expected_history,
        FIT,
    );
    let mut named = fitted.params.clone();
    named.names.clone_from(&k0.weights.names);
    check_weights(
        c,
        &format!("{case}: fit"),
        &named,
        &exp["weights_after_fit"],
        Some(FIT),
    );
    c.truth(
        &format!("{case}: iterations after fit"),
        fitted_opt.iterations() as usize == epochs * steps,
    );
    if let Some(state) = &k1.optimizer_state {
        for s in &state.slots {
            let ours = fitted_opt
                .slot(&s.name)
                .unwrap_or_else(|| panic!("{case}: no slot {}", s.name));
            for (i, (a, b)) in ours.tensors.iter().zip(&s.tensors).enumerate() {
                c.close32(
                    &format!(
                        "{case}: slot {} of {} after fit",
                        s.name, k0.weights.names[i]
                    ),
                    a,
                    b,
                    FIT,
                );
            }
        }
    }

    // Continue from model_trained.keras.
    let opt1 = k1
        .optimizer(&m1)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("{case}: model_trained.keras has no optimizer"));
    c.truth(
        &format!("{case}: the loaded optimizer is at iteration {it1}"),
        opt1.iterations() == it1,
    );
    check_first_step(c, &case, &k1, &m1, &opt1, loss, &samples, batch);
    let (more, m2, o2) = fit(m1.clone(), opt1.clone(), loss, &samples, batch, 1);
    c.truth(
        &format!(
            "{case}: one more epoch advances iterations to {}",
            it1 as usize + steps
        ),
        o2.iterations() as usize == it1 as usize + steps,
    );
    c.truth(
        &format!("{case}: the continued loss is finite"),
        more[0].loss.is_finite(),
    );
    if let Some(cont) = continuation(&case) {
        c.close1(
            &format!("{case}: continued epoch loss (Keras)"),
            more[0].loss,
            num(&cont["history_loss"][0], "history_loss"),
            FIT,
        );
        let mut named = m2.params.clone();
        named.names.clone_from(&k1.weights.names);
        check_weights(
            c,
            &format!("{case}: continued epoch"),
            &named,
            &cont["weights_after"],
            Some(FIT),
        );
    }

    // Round trip of what microfit trained.
    let cfg = k0.optimizer.clone().expect("optimizer config");
    let out = KerasModel::from_trained(&fitted, Some((&cfg, &fitted_opt)), Some(loss));
    let bytes = out.to_bytes().unwrap_or_else(|e| panic!("{e}"));
    c.truth(
        &format!("{case}: writing twice gives the same bytes"),
        out.to_bytes().ok().as_deref() == Some(&bytes[..]),
    );
    let tmp = std::env::temp_dir().join(format!(
        "microfit-keras-{}-{case}.keras",
        std::process::id()
    ));
    out.save(&tmp).unwrap_or_else(|e| panic!("{e}"));
    let back = KerasModel::load(&tmp).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&tmp);
    for (i, (a, b)) in back
        .weights
        .tensors
        .iter()
        .zip(&fitted.params.tensors)
        .enumerate()
    {
        c.bits(
            &format!("{case}: round trip {}", back.weights.names[i]),
            a,
            b,
        );
    }
    let st = back
        .optimizer_state
        .clone()
        .expect("round-trip optimizer state");
    c.truth(
        &format!("{case}: round trip iterations"),
        st.iterations == fitted_opt.iterations(),
    );
    for s in &st.slots {
        let ours = fitted_opt.slot(&s.name).expect("slot");
        for (i, (a, b)) in s.tensors.iter().zip(&ours.tensors).enumerate() {
            c.bits(&format!("{case}: round trip slot {} #{i}", s.name), a, b);
        }
    }
    c.truth(
        &format!("{case}: round trip spec, loss, optimizer"),
        back.spec == out.spec && back.loss == Some(loss) && back.optimizer == out.optimizer,
    );
    let rebuilt = back.build(0).unwrap_or_else(|e| panic!("{e}"));
    let ropt = back
        .optimizer(&rebuilt)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("optimizer");
    let (ra, ma, _) = fit(rebuilt, ropt, loss, &samples, batch, 1);
    let (rb, mb, _) = fit(fitted, fitted_opt, loss, &samples, batch, 1);
    c.bits(
        &format!("{case}: reloaded model trains on identically (loss)"),
        &[ra[0].loss],
        &[rb[0].loss],
    );
    for (i, (a, b)) in ma.params.tensors.iter().zip(&mb.params.tensors).enumerate() {
        c.bits(
            &format!("{case}: reloaded model trains on identically #{i}"),
            a,
            b,
        );
    }
}

/// The first update after loading `model_trained.keras` is Keras' rule at step
/// `iterations + 1` (and not at step 1).
#[allow(clippy::too_many_arguments)]
fn check_first_step(
    c: &mut Checker,
    case: &str,
    k: &KerasModel,
    model: &Sequential,
    opt: &AnyOptimizer<VecParams>,
    loss: Loss,
    samples: &Samples<'_>,
    batch: usize,
) {
    let o = k.optimizer.as_ref().expect("optimizer config");
    if !o.common.clip.is_off() {
        println!(
            "{case}: clipping configured; the step-rule check covers unclipped optimizers only"
        );
        return;
    }
    let state = k.optimizer_state.as_ref().expect("optimizer state");
    let t = state.iterations + 1;
    let (mut m, mut op) = (model.clone(), opt.clone());
    let before = m.params.clone();
    let trace = golden::trace_steps(
        &mut m,
        &mut op,
        loss,
        samples,
        &[Rows::Range(0, batch.min(samples.len()))],
    );
    let step = &trace[0];
    let slots_of =
        |p: usize| -> Vec<&[f32]> { state.slots.iter().map(|s| &s.tensors[p][..]).collect() };
    let mut differs_from_t1 = false;
    for p in 0..before.tensors.len() {
        let w = &before.tensors[p];
        let g = &step.grads[p];
        let expected = keras_rule(o, t, w, g, &slots_of(p));
        c.close32(
            &format!(
                "{case}: first update after loading, {} (t = {t})",
                k.weights.names[p]
            ),
            &step.weights_after[p],
            &expected,
            Tol {
                rtol: 1e-6,
                atol: 1e-7,
            },
        );
        let at_1 = keras_rule(o, 1, w, g, &slots_of(p));
        differs_from_t1 |= at_1
            .iter()
            .zip(&step.weights_after[p])
            .any(|(a, b)| (a - b).abs() > 1e-6 + 1e-4 * b.abs());
    }
    if matches!(o.kind, OptimizerKind::Adam | OptimizerKind::AdamW) {
        c.truth(
            &format!("{case}: the first update differs from Adam's step 1"),
            differs_from_t1,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Files for the manual Keras check (std-runtime/tests/keras_check/check_load.py)
// ---------------------------------------------------------------------------------------------

/// A small deterministic data set: `n` rows of `n_in` values in [-1, 1) and a target per row
/// from `label` (of the row).
fn synthetic(n: usize, n_in: usize, label: impl Fn(&[f32]) -> f32) -> CaseData {
    let mut s: u32 = 12345;
    let mut x = Vec::with_capacity(n * n_in);
    for _ in 0..n * n_in {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        x.push((s >> 8) as f32 / (1u32 << 23) as f32 - 1.0);
    }
    let y = x.chunks(n_in).map(label).collect();
    CaseData {
        x,
        y,
        n_features: n_in,
    }
}

fn rows_json(x: &[f32], width: usize) -> Value {
    Value::Array(
        x.chunks(width)
            .map(|r| Value::Array(r.iter().map(|&v| serde_json::json!(v)).collect()))
            .collect(),
    )
}

/// Trains `spec` for 2 epochs with `opt` and `loss` on `data`, writes `<dir>/<name>.keras` and
/// `<dir>/<name>.json` (inputs, targets, microfit's predictions, `iterations`, and, unless the
/// model has Dropout, microfit's loss and weights after one more epoch).
#[allow(clippy::too_many_arguments)]
fn export_case(
    dir: &Path,
    name: &str,
    spec: microfit::model::ModelSpec,
    opt: OptimizerConfig,
    loss: Loss,
    data: &CaseData,
    batch: usize,
) {
    let model = spec.build(7).unwrap_or_else(|e| panic!("{name}: {e}"));
    let state = opt
        .build(&model.params)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let targets = OwnedTargets::new(&data.y, loss, model.output_len());
    let samples = Samples::new(&data.x, data.n_features, targets.view()).expect("samples");
    let (_, mut model, state) = fit(model, state, loss, &samples, batch, 2);
    let file = KerasModel::from_trained(&model, Some((&opt, &state)), Some(loss));
    file.save(&dir.join(format!("{name}.keras")))
        .unwrap_or_else(|e| panic!("{e}"));
    let n = data.y.len();
    let pred = predict(&mut model, &data.x, n);
    let mut out = serde_json::json!({
        "input_shape": spec.input_shape,
        "x": rows_json(&data.x, data.n_features),
        "y": data.y,
        "batch_size": batch,
        "predict": rows_json(&pred, pred.len() / n),
        "iterations": state.iterations(),
        "layer_names": model.layer_names,
    });
    let dropout = spec
        .layers
        .iter()
        .any(|l| matches!(l, microfit::model::LayerSpec::Dropout { .. }));
    if !dropout {
        let (rep, m2, _) = fit(model, state, loss, &samples, batch, 1);
        let weights: serde_json::Map<String, Value> = m2
            .params
            .names
            .iter()
            .zip(&m2.params.tensors)
            .zip(&m2.params.shapes)
            .map(|((n, t), s)| (n.clone(), serde_json::json!({"shape": s, "data": t})))
            .collect();
        out["continue"] = serde_json::json!({"loss": rep[0].loss, "weights_after": weights});
    }
    let p = dir.join(format!("{name}.json"));
    std::fs::write(&p, out.to_string()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    println!("wrote {}", p.display());
}

/// Writes the models the manual Keras check loads (see `check_load.py`): every golden case
/// trained by microfit, and models of other shapes, losses and optimizers.
///
/// # Panics
/// On any failure.
pub fn write_manual_check(dir: &Path) {
    use microfit::core::activation::Activation;
    use microfit::core::optim::Common;
    use microfit::core::optim::schedule::{ExponentialDecay, Schedule};
    use microfit::core::regularizer::Reg;
    use microfit::model::{LayerSpec, ModelSpec};
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for case in case_dirs() {
        if !unsupported_layers(&case.join("model.keras")).is_empty() {
            continue;
        }
        let name = case
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let k = KerasModel::load(&case.join("model.keras")).unwrap_or_else(|e| panic!("{e}"));
        let data = read_data(&case.join("data.csv"));
        let opt = k.optimizer.clone().expect("optimizer");
        export_case(
            dir,
            &name,
            k.spec.clone(),
            opt,
            k.loss.expect("loss"),
            &data,
            32,
        );
    }
    let adam = OptimizerConfig::adam(0.01);
    let class3 = |r: &[f32]| {
        let s: f32 = r.iter().sum();
        if s < -0.4 {
            0.0
        } else if s < 0.4 {
            1.0
        } else {
            2.0
        }
    };
    let scce = Loss::SparseCategoricalCrossentropy { from_logits: false };
    // SGD with Nesterov momentum, L1L2 and activity regularizers.
    let sgd_nesterov = OptimizerConfig {
        kind: OptimizerKind::Sgd,
        momentum: 0.9,
        nesterov: true,
        learning_rate: Schedule::Constant(0.05),
        ..adam.clone()
    };
    export_case(
        dir,
        "mlp_sgd_nesterov",
        ModelSpec {
            input_shape: vec![6],
            layers: vec![
                LayerSpec::dense(8, Activation::Tanh)
                    .with_kernel_regularizer(Reg::l1l2(1e-3, 1e-3))
                    .with_activity_regularizer(Reg::l2(1e-3)),
                LayerSpec::dense(3, Activation::Softmax),
            ],
        },
        sgd_nesterov,
        scce,
        &synthetic(90, 6, class3),
        16,
    );
    // AdamW, binary cross-entropy, a layer without bias.
    let adamw = OptimizerConfig {
        kind: OptimizerKind::AdamW,
        common: Common {
            weight_decay: Some(0.004),
            ..Common::default()
        },
        ..adam.clone()
    };
    let mut no_bias = LayerSpec::dense(5, Activation::Relu);
    if let Some(c) = no_bias.dense_config_mut() {
        c.use_bias = false;
    }
    export_case(
        dir,
        "mlp_adamw_binary",
        ModelSpec {
            input_shape: vec![5],
            layers: vec![no_bias, LayerSpec::dense(1, Activation::Sigmoid)],
        },
        adamw,
        Loss::BinaryCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
        &synthetic(70, 5, |r| f32::from(u8::from(r[0] + r[1] > 0.0))),
        16,
    );
    // Regression (MSE), SGD with an ExponentialDecay schedule (no learning-rate variable).
    let sgd_decay = OptimizerConfig {
        kind: OptimizerKind::Sgd,
        learning_rate: Schedule::Exponential(
            ExponentialDecay::new(0.05, 3, 0.9, false).expect("schedule"),
        ),
        ..adam.clone()
    };
    export_case(
        dir,
        "regression_sgd_decay",
        ModelSpec {
            input_shape: vec![4],
            layers: vec![
                LayerSpec::dense(6, Activation::Relu).with_bias_regularizer(Reg::l1(1e-3)),
                LayerSpec::dense(1, Activation::Linear),
            ],
        },
        sgd_decay,
        Loss::MeanSquaredError,
        &synthetic(50, 4, |r| r[0] * 0.5 - r[3]),
        8,
    );
    // Conv1D, average pooling, Dropout (predictions only), Adam.
    export_case(
        dir,
        "conv1d_pool_dropout",
        ModelSpec {
            input_shape: vec![10, 2],
            layers: vec![
                LayerSpec::conv1d(3, 3, Activation::Relu),
                LayerSpec::average_pooling(&[2]),
                LayerSpec::Flatten,
                LayerSpec::dropout(0.25),
                LayerSpec::dense(3, Activation::Softmax),
            ],
        },
        adam.clone(),
        scce,
        &synthetic(40, 20, class3),
        8,
    );
    // Conv2D (same padding, stride 2), max pooling, plain SGD, categorical cross-entropy.
    let sgd = OptimizerConfig {
        kind: OptimizerKind::Sgd,
        learning_rate: Schedule::Constant(0.1),
        ..adam
    };
    export_case(
        dir,
        "conv2d_same_sgd",
        ModelSpec {
            input_shape: vec![6, 6, 1],
            layers: vec![
                LayerSpec::conv2d(2, [3, 3], Activation::Relu)
                    .with_padding(microfit::core::kernels::conv::Padding::Same)
                    .with_strides(&[2]),
                LayerSpec::max_pooling(&[2, 2]),
                LayerSpec::Flatten,
                LayerSpec::dense(3, Activation::Softmax),
            ],
        },
        sgd,
        Loss::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
        &synthetic(30, 36, class3),
        8,
    );
}
