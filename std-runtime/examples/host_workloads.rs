//! Host training throughput on the three peer workloads of `host_data/WORKLOAD.md`.
//!
//! ```text
//! cargo run --release --example host_workloads -- [--model A|B|C] [--json] [--reps N]
//!     [--path tiled|runtime|per-sample] [--once] [--peak]
//! # the figures of record (docs/PERFORMANCE.md): a plain release build, pinned to one core
//! cargo build --release --example host_workloads
//! taskset -c 1 target/release/examples/host_workloads --json
//! ```
//! Protocol (WORKLOAD.md): build once; reset to the initial weights with a fresh optimizer and
//! train one warm-up epoch; then `reps` repetitions (default 5) of `E` epochs, each from the same
//! initial weights with a fresh optimizer state, timed with a monotonic clock; samples/s =
//! `E·N/t` (median, min, max); the final loss (mean cross-entropy over the training set, L2
//! excluded) and accuracy after the last repetition. Single thread. `--json` prints one object
//! per model (`model`, `samples_per_s_median`, `samples_per_s_min`, `samples_per_s_max`, `loss`,
//! `acc`, `epochs`, and `reps`, `build_s`, `warmup_s`, `path`, `weights_hash`).
//!
//! `--once` is the "process" mode: build, train `E` epochs once, evaluate, print (time the whole
//! process from outside, e.g. `/usr/bin/time -f %e`). `--peak` measures the core's FP32 peak
//! (fused multiply-add and separate multiply + add loops) instead.
//!
//! Every path trains through the core's one engine and gives the same bits (same
//! `weights_hash`): `--path tiled` (the default) a typed `Network<_, 32>` on the std runtime's
//! [`Host`] backend (the running CPU's best vector unit, chosen at run time; `MICROFIT_SIMD`
//! caps it); `--path runtime` the same model built at run time (`Sequential`, what the CLI
//! trains); `--path per-sample` a typed `Network` of tile 1 on the portable backend (the path
//! a microcontroller runs). The JSON's `simd` says which vector unit `Host` used.

use std::time::Instant;

use microfit::core::optim::Optimizer;
use microfit::core::prelude::*;
use microfit::core::train::Trainable;
use microfit::host::Host;

#[path = "host_data/workloads.rs"]
mod workloads;
use workloads::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum PathKind {
    Tiled,
    Runtime,
    PerSample,
}

impl PathKind {
    fn name(self) -> &'static str {
        match self {
            PathKind::Tiled => "tiled",
            PathKind::Runtime => "runtime",
            PathKind::PerSample => "per-sample",
        }
    }
}

#[derive(Debug)]
struct Opts {
    models: Vec<char>,
    json: bool,
    reps: usize,
    path: PathKind,
    once: bool,
    peak: bool,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        models: vec!['A', 'B', 'C'],
        json: false,
        reps: 5,
        path: PathKind::Tiled,
        once: false,
        peak: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => {
                let m = args.next().expect("--model A|B|C");
                o.models = m
                    .split(',')
                    .map(|s| s.trim().to_ascii_uppercase().chars().next().expect("model"))
                    .collect();
            }
            "--json" => o.json = true,
            "--once" => o.once = true,
            "--peak" => o.peak = true,
            "--reps" => o.reps = args.next().and_then(|v| v.parse().ok()).expect("--reps N"),
            "--path" => {
                o.path = match args.next().as_deref() {
                    Some("tiled") => PathKind::Tiled,
                    Some("runtime") => PathKind::Runtime,
                    Some("per-sample") => PathKind::PerSample,
                    p => panic!("--path tiled|runtime|per-sample, got {p:?}"),
                }
            }
            "-h" | "--help" => {
                println!(
                    "host_workloads [--model A|B|C] [--json] [--reps N] [--path tiled|runtime|per-sample] [--once] [--peak]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

/// What one workload run measured.
#[derive(Debug)]
struct Measured {
    model: char,
    epochs: usize,
    n: usize,
    build_s: f64,
    warmup_s: f64,
    rates: Vec<f64>,
    loss: f32,
    acc: f32,
    weights_hash: u64,
}

impl Measured {
    fn sorted(&self) -> Vec<f64> {
        let mut r = self.rates.clone();
        r.sort_by(|a, b| a.partial_cmp(b).unwrap());
        r
    }
    fn median(&self) -> f64 {
        let r = self.sorted();
        if r.is_empty() {
            return 0.0;
        }
        let k = r.len();
        if k % 2 == 1 {
            r[k / 2]
        } else {
            0.5 * (r[k / 2 - 1] + r[k / 2])
        }
    }
}

/// The protocol, over any training loop: `reset` restores the initial weights and a fresh
/// optimizer, `epoch` trains one epoch, `eval` returns (data loss, accuracy, weights hash).
fn protocol(
    mut m: Measured,
    opts: &Opts,
    mut reset: impl FnMut(),
    mut epoch: impl FnMut(),
    mut eval: impl FnMut() -> (f32, f32, u64),
) -> Measured {
    let (epochs, n) = (m.epochs, m.n);
    if opts.once {
        reset();
        for _ in 0..epochs {
            epoch();
        }
    } else {
        reset();
        let t = Instant::now();
        epoch();
        let first = t.elapsed().as_secs_f64();
        for _ in 0..opts.reps {
            reset();
            let t = Instant::now();
            for _ in 0..epochs {
                epoch();
            }
            let s = t.elapsed().as_secs_f64();
            m.rates.push((epochs * n) as f64 / s);
        }
        // warm-up/compile s = first-epoch time - steady epoch time (median repetition).
        let steady = if m.rates.is_empty() {
            first
        } else {
            n as f64 / m.median()
        };
        m.warmup_s = (first - steady).max(0.0);
    }
    let (loss, acc, h) = eval();
    m.loss = loss;
    m.acc = acc;
    m.weights_hash = h;
    m
}

/// A workload: its name, typed layers, initial weights, run-time spec, batch size and epochs.
struct Workload<L: Layer> {
    model: char,
    layers: L,
    init: L::Params,
    spec: microfit::model::ModelSpec,
    batch: usize,
    epochs: usize,
}

/// Runs any trainer through the protocol: `init` the initial weights.
fn run_trainer<M: Trainable, O: Optimizer<M::Params>, B: Backend>(
    m: Measured,
    tr: Trainer<M, O, B>,
    init: &M::Params,
    data: &Samples<'_>,
    batch: usize,
    opts: &Opts,
) -> Measured {
    let n = data.len();
    let tr = std::cell::RefCell::new(tr);
    protocol(
        m,
        opts,
        || {
            let mut tr = tr.borrow_mut();
            tr.model.params_mut().copy_from(init);
            tr.optimizer.reset();
        },
        || {
            tr.borrow_mut().fit_epoch(data, batch, None).expect("epoch");
        },
        || {
            let mut tr = tr.borrow_mut();
            let ev = tr.evaluate(data, n).expect("evaluate");
            let h = microfit::core::params::weights_hash(tr.model.params());
            (ev.data_loss, ev.metrics.accuracy(), h)
        },
    )
}

/// Runs a workload through the protocol on the chosen path, with its optimizer for the typed
/// (`make_opt`) and the run-time model (`make_vec_opt`).
fn run_network<L, O, V>(
    w: Workload<L>,
    make_opt: impl Fn(&L::Params) -> O,
    make_vec_opt: impl Fn(&microfit::model::VecParams) -> V,
    data: &Samples<'_>,
    opts: &Opts,
) -> Measured
where
    L: Layer + Clone,
    O: Optimizer<L::Params>,
    V: Optimizer<microfit::model::VecParams>,
{
    let t = Instant::now();
    let measured = |t: Instant| Measured {
        model: w.model,
        epochs: w.epochs,
        n: data.len(),
        build_s: t.elapsed().as_secs_f64(),
        warmup_s: 0.0,
        rates: Vec::new(),
        loss: 0.0,
        acc: 0.0,
        weights_hash: 0,
    };
    let (init, batch) = (&w.init, w.batch);
    match opts.path {
        PathKind::PerSample => {
            let net = Network::with_params(w.layers, init.clone());
            let tr = Trainer::new(net, make_opt(init), LOSS);
            run_trainer(measured(t), tr, init, data, batch, opts)
        }
        PathKind::Tiled => {
            let net = Network::<L, 32>::with_params_tiled(w.layers, init.clone());
            let tr = Trainer::<_, _, Host>::with_backend(net, make_opt(init), LOSS);
            run_trainer(measured(t), tr, init, data, batch, opts)
        }
        PathKind::Runtime => {
            let net = sequential(w.spec, init);
            let vinit = net.params.clone();
            let tr = Trainer::<_, _, Host>::with_backend(net, make_vec_opt(&vinit), LOSS);
            run_trainer(measured(t), tr, &vinit, data, batch, opts)
        }
    }
}

fn model_a(opts: &Opts) -> Measured {
    let d = Data::read("digits.csv");
    assert_eq!(d.width, 64);
    let w = Workload {
        model: 'A',
        layers: a_layers(),
        init: a_init(),
        spec: a_spec(),
        batch: A_BATCH,
        epochs: A_EPOCHS,
    };
    run_network(w, a_opt, a_opt, &d.samples(), opts)
}

fn model_b(opts: &Opts) -> Measured {
    let d = Data::read("iris.csv");
    assert_eq!(d.width, 4);
    let w = Workload {
        model: 'B',
        layers: b_layers(),
        init: b_init(),
        spec: b_spec(),
        batch: B_BATCH,
        epochs: B_EPOCHS,
    };
    run_network(w, b_opt, b_opt, &d.samples(), opts)
}

fn model_c(opts: &Opts) -> Measured {
    let d = Data::read("digits.csv");
    assert_eq!(d.width, 64);
    let w = Workload {
        model: 'C',
        layers: c_layers(),
        init: c_init(),
        spec: c_spec(),
        batch: C_BATCH,
        epochs: C_EPOCHS,
    };
    run_network(w, c_opt, c_opt, &d.samples(), opts)
}

fn report(m: &Measured, opts: &Opts) {
    let r = m.sorted();
    let (min, max) = (
        r.first().copied().unwrap_or(0.0),
        r.last().copied().unwrap_or(0.0),
    );
    if opts.json {
        println!(
            "{{\"model\":\"{}\",\"samples_per_s_median\":{:.0},\"samples_per_s_min\":{:.0},\"samples_per_s_max\":{:.0},\"loss\":{:.6},\"acc\":{:.6},\"epochs\":{},\"reps\":{},\"build_s\":{:.6},\"warmup_s\":{:.6},\"path\":\"{}\",\"simd\":\"{}\",\"weights_hash\":\"{:016x}\"}}",
            m.model,
            m.median(),
            min,
            max,
            m.loss,
            m.acc,
            m.epochs,
            m.rates.len(),
            m.build_s,
            m.warmup_s,
            opts.path.name(),
            microfit::host::level().name(),
            m.weights_hash
        );
    } else {
        println!(
            "model {} ({}, {}): {} epochs x {} samples, {} reps: median {:.0} samples/s (min {:.0}, max {:.0}); loss {:.4} acc {:.3}; build {:.2e} s, warm-up {:.2e} s; weights {:016x}",
            m.model,
            opts.path.name(),
            microfit::host::level().name(),
            m.epochs,
            m.n,
            m.rates.len(),
            m.median(),
            min,
            max,
            m.loss,
            m.acc,
            m.build_s,
            m.warmup_s,
            m.weights_hash
        );
    }
}

/// Single-core FP32 peak: 12 independent 8-wide accumulators (96 chains, enough to cover the
/// latency), `acc = acc·m + c` as one fused multiply-add (`f32::mul_add`: an FMA instruction
/// when the build targets a CPU with FMA, e.g. `-C target-cpu=x86-64-v3`; a slow library call
/// otherwise) and as a separate multiply and add (what Rust code without `mul_add` — all of
/// microfit — can reach). 2 FLOPs per element and step; best of 5 runs of 0.2 s.
fn peak() {
    #[inline(never)]
    fn fma(n: usize, a: &mut [[f32; 8]; 12], m: f32, c: f32) {
        for _ in 0..n {
            for r in a.iter_mut() {
                for v in r.iter_mut() {
                    *v = v.mul_add(m, c);
                }
            }
        }
    }
    #[inline(never)]
    fn mul_add(n: usize, a: &mut [[f32; 8]; 12], m: f32, c: f32) {
        for _ in 0..n {
            for r in a.iter_mut() {
                for v in r.iter_mut() {
                    *v = *v * m + c;
                }
            }
        }
    }
    let run = |f: fn(usize, &mut [[f32; 8]; 12], f32, f32)| {
        let mut best = 0.0f64;
        let mut n = 1000usize;
        for _ in 0..5 {
            let mut a = [[1.0f32; 8]; 12];
            let t = Instant::now();
            f(
                n,
                &mut a,
                std::hint::black_box(0.999_99),
                std::hint::black_box(1e-6),
            );
            let s = t.elapsed().as_secs_f64();
            std::hint::black_box(&a);
            best = best.max((n * 96 * 2) as f64 / s / 1e9);
            n = ((n as f64) * 0.2 / s.max(1e-6)).clamp(1000.0, 1e9) as usize;
        }
        best
    };
    let fma_native = cfg!(target_feature = "fma");
    println!(
        "peak: fused multiply-add {:.1} GFLOP/s{}; separate multiply + add {:.1} GFLOP/s (one core, f32)",
        run(fma),
        if fma_native {
            ""
        } else {
            " (no FMA in this build's target: build with -C target-cpu=x86-64-v3)"
        },
        run(mul_add)
    );
}

fn main() {
    let opts = parse_args();
    if opts.peak {
        peak();
        return;
    }
    for &m in &opts.models {
        let r = match m {
            'A' => model_a(&opts),
            'B' => model_b(&opts),
            'C' => model_c(&opts),
            other => panic!("unknown model {other}"),
        };
        report(&r, &opts);
    }
}
