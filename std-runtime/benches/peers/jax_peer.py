#!/usr/bin/env python3
"""JAX peer for the host workloads (std-runtime/examples/host_data/WORKLOAD.md).

Two variants, as in WORKLOAD.md:
  * jax-jit-scan: one `jit` per epoch, `lax.scan` over the full batches + one step for the
    last partial batch (inside the same jit);
  * jax-jit-step: one `jit`ted step (model + loss + grad + optax update), called per batch.
Adam is optax's (PyTorch form: m_hat / (sqrt(v_hat) + eps)), so model A/C final losses differ
from the Keras form in the 3rd digit (WORKLOAD.md, "Adam eps convention"); SGD momentum is
optax's trace (v = g + mu v; w -= lr v), equal to Keras' form for a constant rate.

Run pinned to one core, single-threaded XLA:
  XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
  OMP_NUM_THREADS=1 taskset -c 1 python3 jax_peer.py --model A --variant scan [--json]
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "examples", "host_data")


def load(name):
    a = np.loadtxt(os.path.join(DATA, name), delimiter=",", dtype=np.float64)
    return a[:, :-1].astype(np.float32), a[:, -1].astype(np.int32)


def kernel(name):
    return np.loadtxt(os.path.join(DATA, "init", name), delimiter=",", dtype=np.float32, ndmin=2)


def spec(model):
    if model == "A":
        x, y = load("digits.csv")
        params = {
            "w1": kernel("A_dense1_kernel.csv"), "b1": np.zeros(32, np.float32),
            "w2": kernel("A_dense2_kernel.csv"), "b2": np.zeros(10, np.float32),
        }
        return x, y, params, 32, 20, optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-7), 1e-4
    if model == "B":
        x, y = load("iris.csv")
        params = {
            "w1": kernel("B_dense1_kernel.csv"), "b1": np.zeros(16, np.float32),
            "w2": kernel("B_dense2_kernel.csv"), "b2": np.zeros(3, np.float32),
        }
        return x, y, params, 8, 200, optax.sgd(0.05, momentum=0.9), 1e-3
    if model == "C":
        x, y = load("digits.csv")
        x = x.reshape(-1, 8, 8, 1)  # NHWC
        params = {
            "wc": kernel("C_conv_kernel.csv").reshape(3, 3, 1, 8),  # HWIO
            "bc": np.zeros(8, np.float32),
            "wd": kernel("C_dense_kernel.csv"), "bd": np.zeros(10, np.float32),
        }
        return x, y, params, 32, 5, optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-7), 1e-4
    raise SystemExit(f"unknown model {model}")


def logits_fn(model, p, x):
    if model in ("A", "B"):
        h = jax.nn.relu(x @ p["w1"] + p["b1"])
        return h @ p["w2"] + p["b2"]
    h = jax.lax.conv_general_dilated(
        x, p["wc"], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    h = jax.nn.relu(h + p["bc"])  # (n, 6, 6, 8)
    h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    h = h.reshape(h.shape[0], -1)  # Keras Flatten order (H, W, C)
    return h @ p["wd"] + p["bd"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="A")
    ap.add_argument("--variant", default="scan", choices=["scan", "step"])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--once", action="store_true")
    a = ap.parse_args()
    model = a.model.upper()

    t_build = time.perf_counter()
    x, y, p0, bs, epochs, opt, lam = spec(model)
    kname = "wc" if model == "C" else "w1"
    n = x.shape[0]
    nfull = n // bs
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    xf = xj[: nfull * bs].reshape((nfull, bs) + x.shape[1:])
    yf = yj[: nfull * bs].reshape(nfull, bs)
    xr, yr = xj[nfull * bs:], yj[nfull * bs:]

    def loss_fn(p, xb, yb):
        z = logits_fn(model, p, xb)
        ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(z, yb))
        return ce + lam * jnp.sum(p[kname] ** 2)

    def step(carry, batch):
        p, s = carry
        xb, yb = batch
        g = jax.grad(loss_fn)(p, xb, yb)
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    @jax.jit
    def epoch_scan(p, s):
        (p, s), _ = jax.lax.scan(step, (p, s), (xf, yf))
        if xr.shape[0]:
            (p, s), _ = step((p, s), (xr, yr))
        return p, s

    jstep = jax.jit(lambda p, s, xb, yb: step((p, s), (xb, yb))[0])
    batches = [(xj[i:i + bs], yj[i:i + bs]) for i in range(0, n, bs)]

    def epoch_step(p, s):
        for xb, yb in batches:
            p, s = jstep(p, s, xb, yb)
        return p, s

    epoch = epoch_scan if a.variant == "scan" else epoch_step

    def fresh():
        p = jax.tree_util.tree_map(jnp.asarray, p0)
        return p, opt.init(p)

    build_s = time.perf_counter() - t_build
    rates = []
    warm = 0.0
    if a.once:
        p, s = fresh()
        for _ in range(epochs):
            p, s = epoch(p, s)
        jax.block_until_ready(p)
    else:
        p, s = fresh()
        t = time.perf_counter()
        p, s = epoch(p, s)
        jax.block_until_ready(p)
        first = time.perf_counter() - t
        for _ in range(a.reps):
            p, s = fresh()
            jax.block_until_ready(p)
            t = time.perf_counter()
            for _ in range(epochs):
                p, s = epoch(p, s)
            jax.block_until_ready(p)
            rates.append(epochs * n / (time.perf_counter() - t))
        warm = max(0.0, first - n / float(np.median(rates)))
    z = logits_fn(model, p, xj)
    loss = float(jnp.mean(optax.softmax_cross_entropy_with_integer_labels(z, yj)))
    acc = float(jnp.mean(jnp.argmax(z, axis=1) == yj))
    rates.sort()
    out = {
        "peer": f"jax-jit-{a.variant}", "model": model, "jax": jax.__version__,
        "samples_per_s_median": float(np.median(rates)) if rates else 0.0,
        "samples_per_s_min": rates[0] if rates else 0.0,
        "samples_per_s_max": rates[-1] if rates else 0.0,
        "loss": loss, "acc": acc, "epochs": epochs, "build_s": build_s, "warmup_s": warm,
    }
    if a.json:
        print(json.dumps(out))
    else:
        print(
            f"{out['peer']} model {model}: median {out['samples_per_s_median']:.0f} samples/s "
            f"(min {out['samples_per_s_min']:.0f}, max {out['samples_per_s_max']:.0f}); "
            f"loss {loss:.4f} acc {acc:.3f}; build {build_s:.2f} s, warm-up {warm:.2f} s",
            file=sys.stdout,
        )


if __name__ == "__main__":
    main()
