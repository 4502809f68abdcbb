//! Criterion benches of the host workloads (`examples/host_data/WORKLOAD.md`): one training
//! step of models A, B and C through the one engine — a typed `Network<_, 32>` and the
//! run-time `Sequential` on the `Host` backend, and the typed tile-of-one network on the
//! portable backend (a microcontroller's path) — one epoch of A and of C for the typed and the
//! run-time model (they must run within 10 % of each other), and the main kernels of those
//! steps.
//!
//! ```text
//! cargo bench --bench training                      # everything
//! cargo bench --bench training -- epoch/            # typed vs run-time epochs of A and C
//! MICROFIT_SIMD=avx2 cargo bench --bench training   # cap the vector unit
//! ```
//! For stable numbers pin the process (`taskset -c 1`) on an otherwise idle machine. The
//! throughput figures of record come from `examples/host_workloads.rs` (the peers' protocol).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use microfit::core::kernels::gemm::{MatMul, MatMulAtAcc, MatMulBt};
use microfit::core::optim::Optimizer;
use microfit::core::prelude::*;
use microfit::core::train::{Rows, Trainable};
use microfit::host::Host;
use microfit::model::VecParams;

#[path = "../examples/host_data/workloads.rs"]
mod workloads;
use workloads::*;

/// A workload's typed network (tiles of 32) and run-time `Sequential`, each with its optimizer,
/// both training on `Host` from the same initial weights.
#[allow(clippy::type_complexity)]
fn host_trainers<L, O, V>(
    (layers, init, spec): (L, L::Params, microfit::model::ModelSpec),
    opt: impl Fn(&L::Params) -> O,
    vec_opt: impl Fn(&VecParams) -> V,
) -> (
    Trainer<Network<L, 32>, O, Host>,
    Trainer<microfit::model::Sequential, V, Host>,
)
where
    L: Layer,
    O: Optimizer<L::Params>,
    V: Optimizer<VecParams>,
{
    let net = Network::<L, 32>::with_params_tiled(layers, init.clone());
    let typed = Trainer::<_, _, Host>::with_backend(net, opt(&init), LOSS);
    let seq = sequential(spec, &init);
    let vopt = vec_opt(&seq.params);
    (typed, Trainer::<_, _, Host>::with_backend(seq, vopt, LOSS))
}

/// One step on the first batch: the typed tiled, run-time and per-sample ways.
fn bench_steps<L, O, V>(
    c: &mut Criterion,
    name: &str,
    (layers, init, spec): (L, L::Params, microfit::model::ModelSpec),
    opt: impl Fn(&L::Params) -> O,
    vec_opt: impl Fn(&VecParams) -> V,
    data: &Data,
    batch: usize,
) where
    L: Layer + Clone,
    O: Optimizer<L::Params>,
    V: Optimizer<VecParams>,
{
    let samples = data.samples();
    let mut g = c.benchmark_group("step");
    g.throughput(Throughput::Elements(batch as u64));
    let (mut tiled, mut runtime) =
        host_trainers((layers.clone(), init.clone(), spec), &opt, vec_opt);
    g.bench_function(format!("{name}/typed-tiled"), |b| {
        // The weights drift over the iterations; the cost of a step does not depend on them.
        b.iter(|| tiled.step(&samples, Rows::Range(0, batch)).unwrap())
    });
    g.bench_function(format!("{name}/runtime"), |b| {
        b.iter(|| runtime.step(&samples, Rows::Range(0, batch)).unwrap())
    });
    let mut per = Trainer::new(Network::with_params(layers, init.clone()), opt(&init), LOSS);
    g.bench_function(format!("{name}/per-sample"), |b| {
        b.iter(|| per.step(&samples, Rows::Range(0, batch)).unwrap())
    });
    g.finish();
}

fn steps(c: &mut Criterion) {
    let digits = Data::read("digits.csv");
    let iris = Data::read("iris.csv");
    let a = (a_layers(), a_init(), a_spec());
    bench_steps(c, "A", a, a_opt, a_opt, &digits, A_BATCH);
    let b = (b_layers(), b_init(), b_spec());
    bench_steps(c, "B", b, b_opt, b_opt, &iris, B_BATCH);
    let cc = (c_layers(), c_init(), c_spec());
    bench_steps(c, "C", cc, c_opt, c_opt, &digits, C_BATCH);
}

/// One epoch of a workload, typed and run-time: the "Sequential trains as fast as Network"
/// check, on what a user runs.
fn bench_epoch<L, O, V>(
    c: &mut Criterion,
    name: &str,
    workload: (L, L::Params, microfit::model::ModelSpec),
    opt: impl Fn(&L::Params) -> O,
    vec_opt: impl Fn(&VecParams) -> V,
    data: &Data,
    batch: usize,
) where
    L: Layer + Clone,
    O: Optimizer<L::Params>,
    V: Optimizer<VecParams>,
{
    let samples = data.samples();
    let mut g = c.benchmark_group("epoch");
    g.throughput(Throughput::Elements(samples.len() as u64));
    g.sample_size(20);
    let (mut typed, mut runtime) = host_trainers(workload, opt, vec_opt);
    g.bench_function(format!("{name}/typed"), |b| {
        b.iter(|| typed.fit_epoch(&samples, batch, None).unwrap())
    });
    g.bench_function(format!("{name}/runtime"), |b| {
        b.iter(|| runtime.fit_epoch(&samples, batch, None).unwrap())
    });
    assert_eq!(
        typed.model.params().tensor(0).len(),
        runtime.model.params().tensor(0).len()
    );
    g.finish();
}

/// One epoch of A and of C, typed and run-time (they must run within 10 % of each other).
fn epochs(c: &mut Criterion) {
    let digits = Data::read("digits.csv");
    let a = (a_layers(), a_init(), a_spec());
    bench_epoch(c, "A", a, a_opt, a_opt, &digits, A_BATCH);
    let cc = (c_layers(), c_init(), c_spec());
    bench_epoch(c, "C", cc, c_opt, c_opt, &digits, C_BATCH);
}

/// The three products of model A's first layer over a tile of 32 digits, on `Host`.
fn kernels(c: &mut Criterion) {
    let digits = Data::read("digits.csv");
    let init = a_init();
    let w1 = init.0.kernel.as_flattened();
    let x = &digits.x[..32 * 64];
    let dz: Vec<f32> = (0..32 * 32)
        .map(|i| ((i * 3) % 7) as f32 * 0.01 - 0.03)
        .collect();
    let mut g = c.benchmark_group("kernel");
    g.throughput(Throughput::Elements(32));
    let mut z = vec![0.0f32; 32 * 32];
    g.bench_function("matmul 32x64x32", |b| {
        b.iter(|| {
            Host::matmul(MatMul {
                a: black_box(x),
                b: w1,
                bias: Some(&init.0.bias),
                c: &mut z,
                rows: 32,
                k: 64,
                m: 32,
            })
        })
    });
    let mut gw = vec![0.0f32; 64 * 32];
    g.bench_function("matmul_at_acc 64x32 over 32", |b| {
        b.iter(|| {
            Host::matmul_at_acc(MatMulAtAcc {
                a: black_box(x),
                b: &dz,
                c: &mut gw,
                rows: 32,
                k: 64,
                m: 32,
            })
        })
    });
    let mut dx = vec![0.0f32; 32 * 64];
    g.bench_function("matmul_bt 32x32x64", |b| {
        b.iter(|| {
            Host::matmul_bt(MatMulBt {
                a: black_box(&dz),
                b: w1,
                c: &mut dx,
                rows: 32,
                k: 64,
                m: 32,
            })
        })
    });
    let mut v: Vec<f32> = (0..320).map(|i| (i as f32) * 0.01 - 1.6).collect();
    g.bench_function("exp_slice 320", |b| {
        b.iter(|| {
            for e in v.iter_mut() {
                *e = -e.abs();
            }
            Host::exp_slice(black_box(&mut v))
        })
    });
    g.finish();
}

criterion_group!(benches, steps, epochs, kernels);
criterion_main!(benches);
