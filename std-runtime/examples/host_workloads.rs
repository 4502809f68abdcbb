//! Host training throughput on the three peer workloads of `host_data/WORKLOAD.md`.
//!
//! ```text
//! cargo run --release --example host_workloads -- [--model A|B|C] [--json] [--reps N]
//!     [--path batched|per-sample] [--once]
//! ```
//! Protocol (WORKLOAD.md): build once; reset to the initial weights with a fresh optimizer and
//! train one warm-up epoch; then `reps` repetitions (default 5) of `E` epochs, each from the same
//! initial weights with a fresh optimizer state, timed with a monotonic clock; samples/s =
//! `E·N/t` (median, min, max); the final loss (mean cross-entropy over the training set, L2
//! excluded) and accuracy after the last repetition. Single thread.
//!
//! `--once` is the "process" mode: build, train `E` epochs once, evaluate, print (time the whole
//! process from outside, e.g. `/usr/bin/time -f %e`).
//!
//! `--path per-sample` runs the core's per-sample [`Trainer`] (the path the firmware runs);
//! `--path batched` (the default) runs the core's batched host path
//! ([`microfit::fast::BatchTrainer`]), which gives the same bits.

use std::time::Instant;

use microfit::fast::{BatchLayer, BatchNetwork, BatchTrainer, HostOptimizer};
use microfit::core::prelude::*;
use microfit::core::train::Trainable;

#[path = "host_data/workloads.rs"]
mod workloads;
use workloads::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum PathKind {
    Batched,
    PerSample,
}

#[derive(Debug)]
struct Opts {
    models: Vec<char>,
    json: bool,
    reps: usize,
    path: PathKind,
    once: bool,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        models: vec!['A', 'B', 'C'],
        json: false,
        reps: 5,
        path: PathKind::Batched,
        once: false,
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
            "--reps" => o.reps = args.next().and_then(|v| v.parse().ok()).expect("--reps N"),
            "--path" => {
                o.path = match args.next().as_deref() {
                    Some("batched") => PathKind::Batched,
                    Some("per-sample") => PathKind::PerSample,
                    p => panic!("--path batched|per-sample, got {p:?}"),
                }
            }
            "-h" | "--help" => {
                println!(
                    "host_workloads [--model A|B|C] [--json] [--reps N] [--path batched|per-sample] [--once]"
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
        if k % 2 == 1 { r[k / 2] } else { 0.5 * (r[k / 2 - 1] + r[k / 2]) }
    }
}

/// The protocol, over any training loop: `reset` restores the initial weights and a fresh
/// optimizer, `epoch` trains one epoch, `eval` returns (data loss, accuracy, weights hash).
fn protocol(
    model: char,
    epochs: usize,
    n: usize,
    opts: &Opts,
    build_s: f64,
    mut reset: impl FnMut(),
    mut epoch: impl FnMut(),
    mut eval: impl FnMut() -> (f32, f32, u64),
) -> Measured {
    let mut m = Measured {
        model,
        epochs,
        n,
        build_s,
        warmup_s: 0.0,
        rates: Vec::new(),
        loss: 0.0,
        acc: 0.0,
        weights_hash: 0,
    };
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
        let steady = if m.rates.is_empty() { first } else { n as f64 / m.median() };
        m.warmup_s = (first - steady).max(0.0);
    }
    let (loss, acc, h) = eval();
    m.loss = loss;
    m.acc = acc;
    m.weights_hash = h;
    m
}

/// Runs a typed network through the protocol on the chosen path.
fn run_network<L, O>(
    model: char,
    layers: L,
    init: L::Params,
    make_opt: impl Fn(&L::Params) -> O,
    loss: Loss,
    data: &Samples<'_>,
    batch: usize,
    epochs: usize,
    opts: &Opts,
) -> Measured
where
    L: BatchLayer<32> + Clone,
    O: HostOptimizer<L::Params>,
{
    let n = data.len();
    match opts.path {
        PathKind::PerSample => {
            let t = Instant::now();
            let net = Network::with_params(layers, init.clone());
            let opt = make_opt(&net.params);
            let tr = std::cell::RefCell::new(Trainer::new(net, opt, loss));
            let build_s = t.elapsed().as_secs_f64();
            protocol(
                model,
                epochs,
                n,
                opts,
                build_s,
                || {
                    let mut tr = tr.borrow_mut();
                    tr.model.params_mut().copy_from(&init);
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
        PathKind::Batched => {
            let t = Instant::now();
            let net = BatchNetwork::<L, 32>::with_params(layers, init.clone());
            let opt = make_opt(&net.params);
            let tr = std::cell::RefCell::new(BatchTrainer::new(net, opt, loss));
            let build_s = t.elapsed().as_secs_f64();
            protocol(
                model,
                epochs,
                n,
                opts,
                build_s,
                || {
                    let mut tr = tr.borrow_mut();
                    tr.model.params.copy_from(&init);
                    tr.optimizer.reset();
                },
                || {
                    tr.borrow_mut().fit_epoch(data, batch, None).expect("epoch");
                },
                || {
                    let mut tr = tr.borrow_mut();
                    let ev = tr.evaluate(data, n).expect("evaluate");
                    let h = microfit::core::params::weights_hash(&tr.model.params);
                    (ev.data_loss, ev.metrics.accuracy(), h)
                },
            )
        }
    }
}

fn model_a(opts: &Opts) -> Measured {
    let d = Data::read("digits.csv");
    assert_eq!(d.width, 64);
    run_network('A', a_layers(), a_init(), a_opt, LOSS, &d.samples(), A_BATCH, A_EPOCHS, opts)
}

fn model_b(opts: &Opts) -> Measured {
    let d = Data::read("iris.csv");
    assert_eq!(d.width, 4);
    run_network('B', b_layers(), b_init(), b_opt, LOSS, &d.samples(), B_BATCH, B_EPOCHS, opts)
}

fn model_c(opts: &Opts) -> Measured {
    let d = Data::read("digits.csv");
    assert_eq!(d.width, 64);
    run_network('C', c_layers(), c_init(), c_opt, LOSS, &d.samples(), C_BATCH, C_EPOCHS, opts)
}

fn report(m: &Measured, opts: &Opts) {
    let r = m.sorted();
    let (min, max) = (r.first().copied().unwrap_or(0.0), r.last().copied().unwrap_or(0.0));
    if opts.json {
        println!(
            "{{\"model\":\"{}\",\"samples_per_s_median\":{:.0},\"samples_per_s_min\":{:.0},\"samples_per_s_max\":{:.0},\"loss\":{:.6},\"acc\":{:.6},\"epochs\":{},\"reps\":{},\"build_s\":{:.6},\"warmup_s\":{:.6},\"path\":\"{}\",\"weights_hash\":\"{:016x}\"}}",
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
            match opts.path {
                PathKind::Batched => "batched",
                PathKind::PerSample => "per-sample",
            },
            m.weights_hash
        );
    } else {
        println!(
            "model {}: {} epochs x {} samples, {} reps: median {:.0} samples/s (min {:.0}, max {:.0}); loss {:.4} acc {:.3}; build {:.2e} s, warm-up {:.2e} s; weights {:016x}",
            m.model,
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

fn main() {
    let opts = parse_args();
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
