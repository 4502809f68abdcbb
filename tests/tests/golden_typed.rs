//! The golden networks again, as typed `Network`s with compile-time shapes: they must agree
//! with the runtime `Sequential` run of the golden runner **to the bit** (same kernels, same
//! step; `to_bits` of every value). The layer configurations (activations, regularizers) still
//! come from the files; the sizes are the shipped files' (`Dense<4, 3>`, `4 → 8 → 3`), so with
//! `MICROFIT_GOLDEN_DIR` pointing at other files these tests skip with a message (the
//! file-driven runner, `golden_files.rs`, checks those).

use microfit::core::layer::dense::{Dense, DenseParams};
use microfit::core::model::Network;
use microfit::core::params::ZeroParams;
use microfit::core::train::Rows;
use microfit::model::LayerSpec;
use microfit_tests::golden::{
    self, dense_step_cases, dense_step_runtime_trace, fit_trace, mlp_fit, mlp_runtime_fit,
    mlp_runtime_replay, same_fit, same_trace, set_tensors, trace_steps,
};

/// The typed layer for a spec layer, checking that the file's sizes are the compile-time ones.
fn dense<const I: usize, const O: usize>(l: &LayerSpec, n_in: usize) -> Dense<I, O> {
    let LayerSpec::Dense { units, config } = l else {
        panic!("not a Dense layer: {l:?}")
    };
    assert_eq!(
        (n_in, *units),
        (I, O),
        "the golden file's layer sizes differ from the typed network's"
    );
    Dense { config: *config }
}

/// `Ok` when a file's layer has these sizes.
fn sizes(what: &str, got: (u64, u64), want: (u64, u64)) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} is {got:?}, the typed network {want:?}"))
    }
}

#[test]
fn typed_dense_step_agrees_with_the_runner_to_the_bit() {
    let Some(v) = golden::shipped_or_skip("typed_dense_step", "dense_step_k3.json", |v| {
        let l = &v["meta"]["layer"];
        sizes(
            "meta.layer (input_dim, units)",
            (
                l["input_dim"].as_u64().unwrap_or(0),
                l["units"].as_u64().unwrap_or(0),
            ),
            (4, 3),
        )
    }) else {
        return;
    };
    let mut runs = 0;
    for case in dense_step_cases(&v) {
        let layer: Dense<4, 3> = dense(&case.spec.layers[0], case.spec.input_shape[0]);
        for run in &case.runs {
            let mut p = DenseParams::<4, 3>::zeroed();
            set_tensors(&mut p, &case.initial);
            let mut net: Network<Dense<4, 3>> = Network::with_params(layer, p);
            let mut opt = run.optimizer.build(&net.params).expect("optimizer");
            let rows = vec![Rows::Range(0, case.batch()); run.steps.len()];
            let typed = trace_steps(&mut net, &mut opt, case.loss, &case.samples(), &rows);
            let runtime = dense_step_runtime_trace(&case, run);
            let what = format!("{} {}", case.label, run.label);
            if let Err(e) = same_trace(&what, &typed, &runtime) {
                panic!("typed and runtime differ: {e}");
            }
            runs += 1;
        }
    }
    println!("dense_step: {runs} optimizer runs, typed == runtime bit for bit");
    assert!(runs > 0);
}

type Mlp = (Dense<4, 8>, Dense<8, 3>);

fn typed_mlp(m: &golden::MlpFit, spec: &microfit::model::ModelSpec) -> Network<Mlp> {
    let n_in = spec.input_shape[0];
    let layers: Mlp = (dense(&spec.layers[0], n_in), dense(&spec.layers[1], 8));
    let mut p = <(DenseParams<4, 8>, DenseParams<8, 3>)>::zeroed();
    set_tensors(&mut p, &m.initial);
    Network::with_params(layers, p)
}

#[test]
fn typed_mlp_fit_agrees_with_the_runner_to_the_bit() {
    let Some(v) = golden::shipped_or_skip("typed_mlp_fit", "mlp_fit_k3.json", |v| {
        let m = mlp_fit(v);
        let units: Vec<usize> = m
            .spec
            .shapes()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|s| s.iter().product())
            .collect();
        if m.spec.input_shape == [4] && units == [8, 3] {
            Ok(())
        } else {
            Err(format!(
                "the MLP is {:?} → {units:?}, the typed one [4] → [8, 3]",
                m.spec.input_shape
            ))
        }
    }) else {
        return;
    };
    let m = mlp_fit(&v);

    // fit(): Trainer::fit_epoch, epoch reports and weights after each epoch.
    let net = typed_mlp(&m, &m.spec);
    let opt = m.optimizer.build(&net.params).expect("optimizer");
    let typed = fit_trace(net, opt, m.loss, &m.samples(), m.batch_size, m.epochs);
    if let Err(e) = same_fit("mlp fit", &typed, &mlp_runtime_fit(&m)) {
        panic!("typed and runtime differ: {e}");
    }

    // Eager replay (train_step per batch) and the l2_loss custom loop.
    let mut specs = vec![("eager replay", &m.spec)];
    if let Some(s) = &m.l2_loss_spec {
        specs.push(("custom_loop_l2_loss", s));
    }
    for (label, spec) in specs {
        let mut net = typed_mlp(&m, spec);
        let mut opt = m.optimizer.build(&net.params).expect("optimizer");
        let typed = trace_steps(&mut net, &mut opt, m.loss, &m.samples(), &m.batches());
        if let Err(e) = same_trace(label, &typed, &mlp_runtime_replay(&m, spec)) {
            panic!("typed and runtime differ: {e}");
        }
    }
    println!("mlp_fit: fit, eager replay and l2_loss loop, typed == runtime bit for bit");
}
