//! `conv_step_*.json`: every case — Conv1D/2D/3D, valid/same, any stride, asymmetric `same`
//! padding — built from what the case says (layer class, filters, kernel size, strides,
//! padding, the three regularizers, input shape from `x`) as a run-time `Sequential`. Checked
//! per case: the geometry, `y_pred`, `data_loss`, the named `reg_losses` (activity divided by
//! the batch only), `total_loss`, the gradients; for every optimizer run the weights and slots
//! after one step on the full batch and `fit`'s loss; and the update alone fed Keras' recorded
//! gradients, which must be bit-exact. `tests/conv_golden.rs` runs the same checks
//! ([`run_conv_case`]) on typed layers and compares the two front doors bit for bit.

use microfit::core::kernels::conv::{ConvGeometry, Padding};
use microfit::core::layer::PenaltyKind;
use microfit::core::layer::dense::DenseConfig;
use microfit::core::loss::Loss;
use microfit::core::optim::Optimizer;
use microfit::core::params::Params;
use microfit::core::regularizer::Reg;
use microfit::core::train::{Rows, Samples, Targets, Trainable, compute_gradients, train_step};
use microfit::keras::{optimizer_from_keras_class, regularizer_from_keras};
use microfit::model::{LayerSpec, ModelSpec};
use serde_json::Value;

use super::check::{Checker, FWD};
use super::tensor::{
    activation_from_keras_name, activation_in_text, floats, loss_in_text, num, set_tensors, shape,
    tensors,
};
use super::trace::{same_bits, same_tensors};

/// One case, as the file describes it.
#[derive(Debug, Clone)]
pub struct ConvCase {
    /// `Conv2D same strides [2, 2] on [6, 5, 2]`.
    pub label: String,
    /// Geometry key used to find a typed instantiation (`tests/conv_golden.rs`).
    pub key: String,
    /// The model: one conv layer.
    pub spec: ModelSpec,
    /// Its activation and regularizers.
    pub config: DenseConfig<Reg>,
    /// The loss.
    pub loss: Loss,
    /// Inputs, row-major.
    pub x: Vec<f32>,
    /// Targets, row-major.
    pub y: Vec<f32>,
    /// Samples.
    pub batch: usize,
    /// Input values per sample.
    pub in_len: usize,
    /// Output values per sample.
    pub out_len: usize,
    /// Kernel then bias.
    pub initial: Vec<Vec<f32>>,
    /// The recorded case.
    pub json: Value,
}

/// A list of sizes.
fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|d| d.as_u64().unwrap_or_else(|| panic!("not a size: {d}")) as usize)
        .collect()
}

fn reg(v: &Value) -> Option<Reg> {
    if v.is_null() {
        return None;
    }
    regularizer_from_keras(v).unwrap_or_else(|e| panic!("regularizer {v}: {e}"))
}

/// Every case of a `conv_step` file. The layer class, filters, kernel size, strides, padding,
/// regularizers and input shape come from the case; the activation and the loss from the case's
/// `activation` / `loss` when it has them, else from what `meta.description` names (the shipped
/// file: "linear activation", "MSE loss").
pub fn conv_cases(v: &Value) -> Vec<ConvCase> {
    let desc = v["meta"]["description"].as_str().unwrap_or("");
    v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let class = c["layer"].as_str().expect("layer");
            let xs = shape(&c["x"]);
            let batch = xs[0];
            let input_shape = xs[1..].to_vec();
            let padding = match c["padding"].as_str().expect("padding") {
                "valid" => Padding::Valid,
                "same" => Padding::Same,
                p => panic!("unknown padding {p}"),
            };
            let filters = c["filters"].as_u64().expect("filters") as usize;
            let kernel_size = usizes(&c["kernel_size"]);
            let strides = usizes(&c["strides"]);
            let r = &c["regularizers"];
            let activation = match c.get("activation").and_then(Value::as_str) {
                Some(a) => activation_from_keras_name(a),
                None => activation_in_text(desc),
            };
            let loss = match c.get("loss") {
                Some(l) => microfit::keras::loss_from_keras(l)
                    .unwrap_or_else(|e| panic!("loss {l}: {e}")),
                None => loss_in_text(desc),
            };
            let mut config = DenseConfig::<Reg>::new(activation);
            config.kernel_regularizer = reg(&r["kernel"]);
            config.bias_regularizer = reg(&r["bias"]);
            config.activity_regularizer = reg(&r["activity"]);
            let (ks, st) = (kernel_size.clone(), strides.clone());
            let layer = match class {
                "Conv1D" => LayerSpec::Conv1D {
                    filters,
                    kernel_size: ks,
                    strides: st,
                    padding,
                    dilation_rate: vec![],
                    config,
                },
                "Conv2D" => LayerSpec::Conv2D {
                    filters,
                    kernel_size: ks,
                    strides: st,
                    padding,
                    dilation_rate: vec![],
                    config,
                },
                "Conv3D" => LayerSpec::Conv3D {
                    filters,
                    kernel_size: ks,
                    strides: st,
                    padding,
                    dilation_rate: vec![],
                    config,
                },
                other => panic!("unknown layer class {other}"),
            };
            let iw = &c["initial_weights"];
            let initial = vec![floats(&iw["conv/kernel"]), floats(&iw["conv/bias"])];
            let ys = shape(&c["y_true"]);
            ConvCase {
                label: format!("{class} {} strides {strides:?} on {input_shape:?}", padding.as_str()),
                key: format!(
                    "{class} in {input_shape:?} filters {filters} kernel {kernel_size:?} strides {strides:?} {}",
                    padding.as_str()
                ),
                in_len: input_shape.iter().product(),
                out_len: ys[1..].iter().product(),
                spec: ModelSpec {
                    input_shape,
                    layers: vec![layer],
                },
                config,
                loss,
                x: floats(&c["x"]),
                y: floats(&c["y_true"]),
                batch,
                initial,
                json: c.clone(),
            }
        })
        .collect()
}

/// Variable `conv/kernel` → 0, `conv/bias` → 1.
fn var(key: &str) -> usize {
    match key {
        "conv/kernel" => 0,
        "conv/bias" => 1,
        k => panic!("unknown variable {k}"),
    }
}

fn check_named(c: &mut Checker, what: &str, got: &[Vec<f32>], rec: &Value, exact: bool) {
    for (k, t) in rec.as_object().expect("named tensors") {
        let i = var(k);
        if exact {
            c.bits(&format!("{what}[{k}]"), &got[i], &floats(t));
        } else {
            c.close32(&format!("{what}[{k}]"), &got[i], &floats(t), FWD);
        }
    }
}

/// Everything a model gives for one case, to compare the two front doors bit for bit
/// ([`ConvOutcome::same_bits`]).
#[derive(Debug, Clone)]
pub struct ConvOutcome {
    /// Outputs.
    pub y_pred: Vec<f32>,
    /// Data loss and total loss.
    pub losses: Vec<f32>,
    /// Gradients at the initial weights.
    pub grads: Vec<Vec<f32>>,
    /// Weights after one step of each optimizer run.
    pub after: Vec<Vec<Vec<f32>>>,
}

impl ConvOutcome {
    /// `Err` naming the first value whose bits (`to_bits`) differ.
    ///
    /// # Errors
    /// As described.
    pub fn same_bits(&self, o: &ConvOutcome) -> Result<(), String> {
        same_bits("y_pred", &self.y_pred, &o.y_pred)?;
        same_bits("losses", &self.losses, &o.losses)?;
        same_tensors("grads", &self.grads, &o.grads)?;
        if self.after.len() != o.after.len() {
            return Err("optimizer runs differ".into());
        }
        for (i, (a, b)) in self.after.iter().zip(&o.after).enumerate() {
            same_tensors(&format!("after run {i}"), a, b)?;
        }
        Ok(())
    }
}

/// Runs every check of `case` on a model made by `make` (the weights are set from the file).
pub fn run_conv_case<M: Trainable>(
    c: &mut Checker,
    who: &str,
    case: &ConvCase,
    make: &dyn Fn() -> M,
) -> ConvOutcome {
    c.case();
    let what = format!("{who} {}", case.label);
    let j = &case.json;
    let fresh = || {
        let mut m = make();
        set_tensors(m.params_mut(), &case.initial);
        m
    };
    let samples = Samples::new(
        &case.x,
        case.in_len,
        Targets::Dense {
            values: &case.y,
            width: case.out_len,
        },
    )
    .expect("samples");
    let all = Rows::Range(0, case.batch);

    // Forward.
    let mut m = fresh();
    c.truth(
        &format!("{what}: input/output sizes"),
        m.input_len() == case.in_len && m.output_len() == case.out_len,
    );
    let mut y = Vec::new();
    for i in 0..case.batch {
        y.extend_from_slice(&super::forward_one(&mut m, samples.input(i), true).0);
    }
    c.close32(&format!("{what}: y_pred"), &y, &floats(&j["y_pred"]), FWD);

    // Losses and gradients.
    let rep =
        compute_gradients::<microfit::core::backend::Portable, _>(&mut m, case.loss, &samples, all)
            .expect("compute_gradients");
    c.close1(
        &format!("{what}: data_loss"),
        rep.data_loss,
        num(&j["data_loss"]),
        FWD,
    );
    let rec = j["reg_losses"].as_object().expect("reg_losses");
    for (k, val) in rec {
        let kind = match k.as_str() {
            "conv/kernel" => PenaltyKind::Kernel,
            "conv/bias" => PenaltyKind::Bias,
            "conv/activity" => PenaltyKind::Activity,
            k => panic!("unknown penalty {k}"),
        };
        c.penalty(
            &format!("{what}: reg_losses[{k}]"),
            rep.penalties.get(0, kind),
            num(val),
            None,
        );
    }
    c.truth(
        &format!("{what}: the same named penalties as Keras"),
        rec.len() == rep.penalties.entries().len(),
    );
    c.close1(
        &format!("{what}: total_loss"),
        rep.total_loss,
        num(&j["total_loss"]),
        FWD,
    );
    let grads = {
        let (_, g) = m.weights_and_grads();
        tensors(&*g)
    };
    check_named(c, &format!("{what}: grads"), &grads, &j["grads"], false);

    let mut out = ConvOutcome {
        y_pred: y,
        losses: vec![rep.data_loss, rep.total_loss],
        grads,
        after: Vec::new(),
    };

    // One optimizer step from the initial weights, and the update alone from Keras' gradients.
    for run in j["optimizer_runs"].as_array().expect("optimizer_runs") {
        let class = run["optimizer"].as_str().expect("optimizer");
        let label = format!("{what} {class}{}", run["config_given"]);
        let kopt = optimizer_from_keras_class(class, &run["config_given"]).expect("optimizer");
        let mut m = fresh();
        let mut opt = kopt.build(m.params()).expect("build optimizer");
        let r = train_step::<microfit::core::backend::Portable, _, _>(
            &mut m, &mut opt, case.loss, &samples, all,
        )
        .expect("train_step");
        match run["fit_check"]["history_loss"].get(0) {
            Some(h) => c.close1(
                &format!("{label}: fit_check history loss"),
                r.total_loss,
                num(h),
                FWD,
            ),
            None => c.absent("optimizer_runs[].fit_check.history_loss"),
        }
        let w = tensors(m.params());
        check_named(
            c,
            &format!("{label}: weights_after_1_step"),
            &w,
            &run["weights_after_1_step"],
            false,
        );
        let slots = run["slots_after_1_step"]
            .as_object()
            .expect("slots_after_1_step");
        for (var_name, s) in slots {
            for (slot, t) in s.as_object().expect("slots") {
                let got = opt
                    .slot(slot)
                    .unwrap_or_else(|| panic!("{label}: no slot {slot}"));
                c.close32(
                    &format!("{label}: slots_after_1_step[{var_name}].{slot}"),
                    got.tensor(var(var_name)),
                    &floats(t),
                    FWD,
                );
            }
        }
        c.truth(
            &format!("{label}: slot count"),
            slots
                .values()
                .all(|s| s.as_object().map_or(0, |o| o.len()) == opt.slots()),
        );
        out.after.push(w);

        // The update alone, fed Keras' recorded gradients: bit-exact.
        let mut w = fresh();
        let mut opt = kopt.build(w.params()).expect("build optimizer");
        let mut g = w.params().clone();
        let recorded: Vec<Vec<f32>> = vec![
            floats(&j["grads"]["conv/kernel"]),
            floats(&j["grads"]["conv/bias"]),
        ];
        set_tensors(&mut g, &recorded);
        opt.step::<microfit::core::backend::Portable>(w.params_mut(), &mut g);
        check_named(
            c,
            &format!("{label}: update from recorded grads"),
            &tensors(w.params()),
            &run["weights_after_1_step"],
            true,
        );
        for (var_name, s) in slots {
            for (slot, t) in s.as_object().expect("slots") {
                let got = opt.slot(slot).expect("slot");
                c.bits(
                    &format!("{label}: slot {slot}[{var_name}] from recorded grads"),
                    got.tensor(var(var_name)),
                    &floats(t),
                );
            }
        }
    }
    out
}

/// The file's per-axis geometry against a [`ConvGeometry`].
pub fn check_geometry(c: &mut Checker, what: &str, g: &ConvGeometry, rec: &Value) {
    let axes = rec.as_array().expect("geometry_per_spatial_dim");
    c.truth(&format!("{what}: spatial axes"), axes.len() == g.dims());
    let off = 3 - g.dims();
    for (a, ax) in axes.iter().enumerate() {
        let got = (
            g.input()[off + a],
            g.kernel()[off + a],
            g.strides()[off + a],
            g.output()[off + a],
            g.pads(off + a),
        );
        let want = (
            ax["in"].as_u64().expect("in") as usize,
            ax["kernel"].as_u64().expect("kernel") as usize,
            ax["stride"].as_u64().expect("stride") as usize,
            ax["out"].as_u64().expect("out") as usize,
            (
                ax["pad_before"].as_u64().expect("pad_before") as usize,
                ax["pad_after"].as_u64().expect("pad_after") as usize,
            ),
        );
        c.truth(
            &format!("{what}: axis {a} (in, k, s, out, pads) {got:?} vs {want:?}"),
            got == want,
        );
    }
}

/// The run-time front door: the case's [`ModelSpec`] built as a `Sequential`.
pub fn run_runtime(c: &mut Checker, case: &ConvCase) -> ConvOutcome {
    let g = case.spec.layers[0]
        .geometry(0, &case.spec.input_shape)
        .expect("geometry")
        .expect("a conv layer");
    check_geometry(
        c,
        &format!("runtime {}", case.label),
        &g,
        &case.json["geometry_per_spatial_dim"],
    );
    let spec = case.spec.clone();
    run_conv_case(c, "runtime", case, &move || {
        spec.build(0).expect("spec builds")
    })
}

pub(super) fn run(c: &mut Checker, v: &Value) {
    for case in conv_cases(v) {
        run_runtime(c, &case);
    }
}
