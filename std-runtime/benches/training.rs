//! Criterion benches of the host workloads (`examples/host_data/WORKLOAD.md`) for profiling:
//! one training step of models A, B and C on the batched path (`microfit::fast`) and on the
//! core's per-sample path, one epoch of A, and the main kernels of those steps.
//!
//! ```text
//! cargo bench --bench training                      # everything
//! cargo bench --bench training -- step/             # the steps only
//! RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR=target/v3 cargo bench --bench training
//! ```
//! For stable numbers pin the process (`taskset -c 1`) on an otherwise idle machine. The
//! throughput figures of record come from `examples/host_workloads.rs` (the peers' protocol).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use microfit::core::kernels::dense as k;
use microfit::core::layer::Layer;
use microfit::core::layer::Penalties;
use microfit::core::prelude::*;
use microfit::core::train::Rows;
use microfit::fast::exp::exp_slice;
use microfit::fast::{BatchLayer, BatchNetwork, BatchTrainer, HostOptimizer};

#[path = "../examples/host_data/workloads.rs"]
mod workloads;
use workloads::*;

/// One step on the first batch, both paths, for a model.
fn bench_steps<L, O>(
    c: &mut Criterion,
    name: &str,
    layers: L,
    init: L::Params,
    opt: impl Fn(&L::Params) -> O,
    data: &Data,
    batch: usize,
) where
    L: BatchLayer<32> + Clone,
    O: HostOptimizer<L::Params> + Clone,
{
    let samples = data.samples();
    let mut g = c.benchmark_group("step");
    g.throughput(Throughput::Elements(batch as u64));
    let fast = BatchTrainer::new(
        BatchNetwork::<L, 32>::with_params(layers.clone(), init.clone()),
        opt(&init),
        LOSS,
    );
    let mut fast = fast;
    g.bench_function(format!("{name}/batched"), |b| {
        b.iter(|| {
            // The weights drift over the iterations; the cost of a step does not depend on them.
            fast.step(&samples, Rows::Range(0, batch)).unwrap();
        })
    });
    let mut per = Trainer::new(Network::with_params(layers, init.clone()), opt(&init), LOSS);
    g.bench_function(format!("{name}/per-sample"), |b| {
        b.iter(|| {
            per.step(&samples, Rows::Range(0, batch)).unwrap();
        })
    });
    g.finish();
}

fn steps(c: &mut Criterion) {
    let digits = Data::read("digits.csv");
    let iris = Data::read("iris.csv");
    bench_steps(c, "A", a_layers(), a_init(), a_opt, &digits, A_BATCH);
    bench_steps(c, "B", b_layers(), b_init(), b_opt, &iris, B_BATCH);
    bench_steps(c, "C", c_layers(), c_init(), c_opt, &digits, C_BATCH);
}

fn epochs(c: &mut Criterion) {
    let digits = Data::read("digits.csv");
    let samples = digits.samples();
    let init = a_init();
    let mut g = c.benchmark_group("epoch");
    g.throughput(Throughput::Elements(samples.len() as u64));
    g.sample_size(20);
    let mut tr = BatchTrainer::new(
        BatchNetwork::<ModelA, 32>::with_params(a_layers(), init.clone()),
        a_opt(&init),
        LOSS,
    );
    g.bench_function("A/batched", |b| {
        b.iter_batched(
            || (),
            |()| {
                tr.fit_epoch(&samples, A_BATCH, None).unwrap();
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn kernels(c: &mut Criterion) {
    let digits = Data::read("digits.csv");
    let init = a_init();
    let (w1, w2) = (&init.0.kernel, &init.1.kernel);
    let x: Vec<[f32; 64]> = digits
        .x
        .chunks_exact(64)
        .take(32)
        .map(|r| r.try_into().unwrap())
        .collect();
    let mut h = vec![[0.0f32; 32]; 32];
    k::forward_rows(&x, w1, Some(&init.0.bias), &mut h);
    for r in &mut h {
        Activation::Relu.forward_in_place(r);
    }
    let dz2: Vec<[f32; 10]> = (0..32)
        .map(|s| core::array::from_fn(|j| ((s * 7 + j) % 5) as f32 * 0.01 - 0.02))
        .collect();
    let dz1: Vec<[f32; 32]> = (0..32)
        .map(|s| core::array::from_fn(|j| ((s * 3 + j) % 7) as f32 * 0.01 - 0.03))
        .collect();

    let mut g = c.benchmark_group("kernel");
    g.throughput(Throughput::Elements(32));
    g.bench_function("dense_forward_rows/64x32/32 samples", |b| {
        let mut z = vec![[0.0f32; 32]; 32];
        b.iter(|| k::forward_rows(black_box(&x), w1, Some(&init.0.bias), &mut z))
    });
    g.bench_function("dense_forward_rows/32x10/32 samples", |b| {
        let mut z = vec![[0.0f32; 10]; 32];
        b.iter(|| k::forward_rows(black_box(&h), w2, Some(&init.1.bias), &mut z))
    });
    g.bench_function("dense_backward_rows/64x32/32 samples (no dx)", |b| {
        let mut gw = [[0.0f32; 32]; 64];
        let mut gb = [0.0f32; 32];
        let wt = [[0.0f32; 64]; 32];
        b.iter(|| k::backward_rows(black_box(&x), &wt, &dz1, &mut gw, Some(&mut gb), None))
    });
    g.bench_function("dense_backward_rows/32x10/32 samples (with dx)", |b| {
        let mut gw = [[0.0f32; 10]; 32];
        let mut gb = [0.0f32; 10];
        let mut wt = [[0.0f32; 32]; 10];
        let mut dx = vec![[0.0f32; 32]; 32];
        b.iter(|| {
            k::transpose(w2, &mut wt);
            k::backward_rows(
                black_box(&h),
                &wt,
                &dz2,
                &mut gw,
                Some(&mut gb),
                Some(&mut dx),
            )
        })
    });
    g.bench_function("dense_forward/64x32/32 samples (per-sample kernel)", |b| {
        let mut z = [0.0f32; 32];
        b.iter(|| {
            for xr in black_box(&x) {
                k::forward(xr, w1.as_flattened(), Some(&init.0.bias), &mut z);
            }
        })
    });
    g.bench_function("dense_backward/64x32/32 samples (per-sample kernel)", |b| {
        let mut gw = [0.0f32; 64 * 32];
        let mut gb = [0.0f32; 32];
        b.iter(|| {
            for (xr, d) in black_box(&x).iter().zip(&dz1) {
                k::backward(xr, w1.as_flattened(), d, &mut gw, Some(&mut gb), None);
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("kernel");
    let mut v: Vec<f32> = (0..320).map(|i| -(i as f32) * 0.037).collect();
    g.throughput(Throughput::Elements(320));
    g.bench_function("exp_slice/320", |b| {
        b.iter(|| {
            exp_slice(black_box(&mut v));
            for x in v.iter_mut() {
                *x = -*x * 0.5;
            }
        })
    });
    g.bench_function("libm_expf/320", |b| {
        b.iter(|| {
            for x in black_box(&mut v).iter_mut() {
                *x = microfit::core::math::exp(*x);
            }
            for x in v.iter_mut() {
                *x = -*x * 0.5;
            }
        })
    });
    let layers = a_layers();
    let n = <<ModelA as Layer>::Params as ZeroParams>::LEN;
    g.throughput(Throughput::Elements(n as u64));
    let grads = {
        let mut p = init.clone();
        for i in 0..p.tensor_count() {
            for (j, v) in p.tensor_mut(i).iter_mut().enumerate() {
                *v = ((j % 13) as f32 - 6.0) * 1e-3;
            }
        }
        p
    };
    g.bench_function("adam_step/A (core, libm sqrtf)", |b| {
        let mut w = init.clone();
        let mut opt = a_opt(&w);
        b.iter(|| opt.step(&mut w, &mut grads.clone()))
    });
    g.bench_function("adam_step/A (host, f32::sqrt)", |b| {
        let mut w = init.clone();
        let mut opt = a_opt(&w);
        b.iter(|| opt.step_host(&mut w, &mut grads.clone()))
    });
    g.bench_function("weight_penalties/A (batched path, not fused)", |b| {
        let mut gr = grads.clone();
        let mut cache = BatchLayer::<32>::new_batch_cache(&layers);
        b.iter(|| {
            let mut pen = Penalties::new();
            BatchLayer::<32>::weight_penalties_batch(
                &layers,
                black_box(&init),
                Some(&mut gr),
                0,
                &mut pen,
                &mut cache,
            );
            pen
        })
    });
    g.bench_function("weight_penalties/A (core)", |b| {
        let mut gr = grads.clone();
        b.iter(|| {
            let mut pen = Penalties::new();
            layers.weight_penalties(black_box(&init), Some(&mut gr), 0, &mut pen);
            pen
        })
    });
    g.finish();
}

criterion_group!(benches, steps, epochs, kernels);
criterion_main!(benches);
