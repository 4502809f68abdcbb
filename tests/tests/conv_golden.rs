//! `conv_step_k3.json` (Keras 3.15.1, TensorFlow 2.21): every case — Conv1D/2D/3D, valid/same,
//! stride 1/2, asymmetric `same` padding — through **both front doors**:
//!
//! * the file-driven runner: the model is built from what the case says (layer class, filters,
//!   kernel size, strides, padding, the three regularizers, input shape from `x`) as a
//!   [`ModelSpec`] → [`Sequential`](microfit::model::Sequential);
//! * typed layers: the same case on a `Network<Conv…D<…>>` whose sizes are written in the type
//!   (the case is matched to its type by its geometry, and the typed geometry is checked against
//!   the file's `out`/`pad_before`/`pad_after`).
//!
//! Checked per case: the geometry, `y_pred` (forward), `data_loss`, the named `reg_losses`
//! (activity divided by the batch only), `total_loss`, the gradients; for SGD(0.1) and
//! Adam(0.01) the weights and slots after one step on the full batch, and `fit`'s loss; and
//! the update alone fed Keras' recorded gradients, which must be bit-exact. The typed and the
//! run-time models must also agree to the bit. Tolerances: README (`rtol 1e-5, atol 1e-6`).
//! Run with `--nocapture` for the summary lines (max errors).

use microfit::core::activation::Activation;
use microfit::core::backend::Portable;
use microfit::core::kernels::conv::{ConvGeometry, Padding};
use microfit::core::layer::Layer;
use microfit::core::layer::PenaltyKind;
use microfit::core::layer::conv::{Conv1D, Conv2D, Conv3D, Same, Valid};
use microfit::core::layer::dense::DenseConfig;
use microfit::core::loss::Loss;
use microfit::core::model::Network;
use microfit::core::optim::Optimizer;
use microfit::core::params::{Params, ZeroParams};
use microfit::core::regularizer::Reg;
use microfit::core::train::{Rows, Samples, Targets, Trainable, compute_gradients, train_step};
use microfit::keras::{KerasOptimizer, regularizer_from_keras};
use microfit::model::{LayerSpec, ModelSpec};
use microfit_tests::golden::{Checker, FWD, Summary, floats, load, set_tensors, shape};
use serde_json::Value;

const FILE: &str = "conv_step_k3.json";

/// One case, as the file describes it.
struct Case {
    label: String,
    /// Geometry key used to find the typed instantiation.
    key: String,
    spec: ModelSpec,
    config: DenseConfig<Reg>,
    x: Vec<f32>,
    y: Vec<f32>,
    batch: usize,
    in_len: usize,
    out_len: usize,
    /// Kernel then bias.
    initial: Vec<Vec<f32>>,
    json: Value,
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|d| d.as_u64().unwrap_or_else(|| panic!("not a size: {d}")) as usize)
        .collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn reg(v: &Value) -> Option<Reg> {
    if v.is_null() {
        return None;
    }
    regularizer_from_keras(v).unwrap_or_else(|e| panic!("regularizer {v}: {e}"))
}

fn cases() -> Vec<Case> {
    let v = load(FILE);
    let desc = v["meta"]["description"].as_str().expect("meta.description");
    assert!(
        desc.contains("linear activation") && desc.contains("MSE loss"),
        "conv_step: the model description changed, update this runner: {desc}"
    );
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
            let mut config = DenseConfig::<Reg>::new(Activation::Linear);
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
            Case {
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
                x: floats(&c["x"]),
                y: floats(&c["y_true"]),
                batch,
                initial,
                json: c.clone(),
            }
        })
        .collect()
}

fn tensors<P: Params>(p: &P) -> Vec<Vec<f32>> {
    (0..p.tensor_count())
        .map(|i| p.tensor(i).to_vec())
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

/// Everything a model gives for one case, to compare the two front doors bit for bit.
#[derive(Debug, PartialEq)]
struct Outcome {
    y_pred: Vec<f32>,
    losses: Vec<f32>,
    grads: Vec<Vec<f32>>,
    after: Vec<Vec<Vec<f32>>>,
}

/// Runs every check of `case` on a model made by `make` (the weights are set from the file).
fn run_case<M: Trainable>(
    c: &mut Checker,
    who: &str,
    case: &Case,
    make: &dyn Fn() -> M,
) -> Outcome {
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
        m.forward_tile::<Portable>(samples.input(i), true, None);
        y.extend_from_slice(&m.loss_io().y[..case.out_len]);
    }
    c.close32(&format!("{what}: y_pred"), &y, &floats(&j["y_pred"]), FWD);

    // Losses and gradients.
    let rep = compute_gradients::<Portable, _>(&mut m, Loss::MeanSquaredError, &samples, all)
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
        c.close1(
            &format!("{what}: reg_losses[{k}]"),
            rep.penalties.get(0, kind),
            num(val),
            FWD,
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

    let mut out = Outcome {
        y_pred: y,
        losses: vec![rep.data_loss, rep.total_loss],
        grads,
        after: Vec::new(),
    };

    // One optimizer step from the initial weights, and the update alone from Keras' gradients.
    for run in j["optimizer_runs"].as_array().expect("optimizer_runs") {
        let class = run["optimizer"].as_str().expect("optimizer");
        let label = format!("{what} {class}{}", run["config_given"]);
        let kopt =
            KerasOptimizer::from_keras_class(class, &run["config_given"]).expect("optimizer");
        let mut m = fresh();
        let mut opt = kopt.build(m.params()).expect("build optimizer");
        let r =
            train_step::<Portable, _, _>(&mut m, &mut opt, Loss::MeanSquaredError, &samples, all)
                .expect("train_step");
        c.close1(
            &format!("{label}: fit_check history loss"),
            r.total_loss,
            num(&run["fit_check"]["history_loss"][0]),
            FWD,
        );
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
        opt.step::<Portable>(w.params_mut(), &mut g);
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
fn check_geometry(c: &mut Checker, what: &str, g: &ConvGeometry, rec: &Value) {
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

/// The typed front door: a `Network` of the layer type `L`, with the case's regularizers.
fn typed<L>(
    c: &mut Checker,
    case: &Case,
    mut layer: L,
    config: impl Fn(&mut L) -> &mut DenseConfig<Reg>,
    geometry: ConvGeometry,
) -> Outcome
where
    L: Layer + Clone,
    L::Params: ZeroParams,
{
    *config(&mut layer) = case.config;
    check_geometry(
        c,
        &format!("typed {}", case.label),
        &geometry,
        &case.json["geometry_per_spatial_dim"],
    );
    run_case(c, "typed", case, &|| {
        Network::with_params(layer.clone(), L::Params::zeroed())
    })
}

macro_rules! typed_case {
    ($c:expr, $case:expr, $t:ty) => {
        typed(
            $c,
            $case,
            <$t>::new(Activation::Linear),
            |l| &mut l.config,
            <$t>::GEOMETRY,
        )
    };
}

/// The typed instantiation of each case, found by its geometry.
fn typed_run(c: &mut Checker, case: &Case) -> Outcome {
    match case.key.as_str() {
        "Conv1D in [7, 2] filters 3 kernel [3] strides [1] valid" => {
            typed_case!(c, case, Conv1D<7, 2, 3, 3, 5>)
        }
        "Conv1D in [7, 2] filters 3 kernel [3] strides [2] valid" => {
            typed_case!(c, case, Conv1D<7, 2, 3, 3, 3, Valid, 2>)
        }
        "Conv1D in [7, 2] filters 3 kernel [3] strides [1] same" => {
            typed_case!(c, case, Conv1D<7, 2, 3, 3, 7, Same>)
        }
        "Conv1D in [7, 2] filters 3 kernel [3] strides [2] same" => {
            typed_case!(c, case, Conv1D<7, 2, 3, 3, 4, Same, 2>)
        }
        "Conv2D in [6, 5, 2] filters 2 kernel [3, 2] strides [1, 1] valid" => {
            typed_case!(c, case, Conv2D<6, 5, 2, 2, 3, 2, 4, 4>)
        }
        "Conv2D in [6, 5, 2] filters 2 kernel [3, 2] strides [2, 2] valid" => {
            typed_case!(c, case, Conv2D<6, 5, 2, 2, 3, 2, 2, 2, Valid, 2, 2>)
        }
        "Conv2D in [6, 5, 2] filters 2 kernel [3, 2] strides [1, 1] same" => {
            typed_case!(c, case, Conv2D<6, 5, 2, 2, 3, 2, 6, 5, Same>)
        }
        "Conv2D in [6, 5, 2] filters 2 kernel [3, 2] strides [2, 2] same" => {
            typed_case!(c, case, Conv2D<6, 5, 2, 2, 3, 2, 3, 3, Same, 2, 2>)
        }
        "Conv3D in [4, 4, 3, 2] filters 2 kernel [2, 2, 2] strides [1, 1, 1] valid" => {
            typed_case!(c, case, Conv3D<4, 4, 3, 2, 2, 2, 2, 2, 3, 3, 2>)
        }
        "Conv3D in [4, 4, 3, 2] filters 2 kernel [2, 2, 2] strides [2, 2, 2] same" => {
            typed_case!(c, case, Conv3D<4, 4, 3, 2, 2, 2, 2, 2, 2, 2, 2, Same, 2, 2, 2>)
        }
        key => panic!("no typed instantiation for the golden case `{key}`: add one to typed_run"),
    }
}

fn run_runtime(c: &mut Checker, case: &Case) -> Outcome {
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
    run_case(c, "runtime", case, &move || {
        spec.build(0).expect("spec builds")
    })
}

#[test]
fn conv_step_all_cases_runtime() {
    let mut c = Checker::new(FILE);
    let cases = cases();
    assert_eq!(cases.len(), 10, "conv_step_k3.json holds 10 cases");
    for case in &cases {
        run_runtime(&mut c, case);
    }
    let s: Summary = c.finish();
    assert_eq!(s.cases, 10);
}

#[test]
fn conv_step_all_cases_typed_and_identical_to_runtime() {
    let mut c = Checker::new(FILE);
    let cases = cases();
    for case in &cases {
        let t = typed_run(&mut c, case);
        let mut quiet = Checker::new(FILE);
        let r = run_runtime(&mut quiet, case);
        c.truth(
            &format!(
                "{}: typed and run-time models give the same bits",
                case.label
            ),
            t == r,
        );
    }
    let s = c.finish();
    assert_eq!(s.cases, 10);
}
