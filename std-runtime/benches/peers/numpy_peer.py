#!/usr/bin/env python3
"""NumPy peer for host workloads A and B (std-runtime/examples/host_data/WORKLOAD.md).

Hand-written forward/backward in float32 with Keras' Adam form
(w -= lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)) and Keras' SGD momentum (v = mu*v - lr*g;
w += v), so its final losses are the Keras-form references (A 0.1422, B 0.0357): a cheap
same-machine anchor for the samples/s figures and a check that the same training happened.

  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 1 \
      python3 numpy_peer.py --model A [--json]
"""
import argparse
import json
import os
import time

for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(v, "1")
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "examples", "host_data")
f32 = np.float32


def load(name):
    a = np.loadtxt(os.path.join(DATA, name), delimiter=",", dtype=np.float64)
    return a[:, :-1].astype(f32), a[:, -1].astype(np.int64)


def kernel(name):
    return np.loadtxt(os.path.join(DATA, "init", name), delimiter=",", dtype=f32, ndmin=2)


def spec(model):
    if model == "A":
        x, y = load("digits.csv")
        return x, y, [kernel("A_dense1_kernel.csv"), kernel("A_dense2_kernel.csv")], 32, 20, "adam", f32(1e-4)
    if model == "B":
        x, y = load("iris.csv")
        return x, y, [kernel("B_dense1_kernel.csv"), kernel("B_dense2_kernel.csv")], 8, 200, "sgd", f32(1e-3)
    raise SystemExit(f"model {model}: NumPy peer has A and B only")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="A")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    model = a.model.upper()
    x, y, k0, bs, epochs, opt, lam = spec(model)
    n = x.shape[0]
    onehot = np.eye(k0[1].shape[1], dtype=f32)[y]

    def fresh():
        p = [k0[0].copy(), np.zeros(k0[0].shape[1], f32), k0[1].copy(), np.zeros(k0[1].shape[1], f32)]
        s = [[np.zeros_like(q) for q in p], [np.zeros_like(q) for q in p]]
        return p, s, [0]

    def step(p, s, t, xb, tb):
        w1, b1, w2, b2 = p
        h_pre = xb @ w1 + b1
        h = np.maximum(h_pre, f32(0))
        z = h @ w2 + b2
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        prob = e / e.sum(axis=1, keepdims=True)
        dz = (prob - tb) / f32(xb.shape[0])
        g2 = h.T @ dz
        gb2 = dz.sum(axis=0)
        dh = (dz @ w2.T) * (h_pre > 0)
        g1 = xb.T @ dh + f32(2) * lam * w1
        gb1 = dh.sum(axis=0)
        grads = [g1, gb1, g2, gb2]
        t[0] += 1
        if opt == "adam":
            lr, b1_, b2_, eps = f32(1e-3), f32(0.9), f32(0.999), f32(1e-7)
            alpha = lr * np.sqrt(f32(1) - b2_ ** t[0]) / (f32(1) - b1_ ** t[0])
            for q, g, m, v in zip(p, grads, s[0], s[1]):
                m += (g - m) * f32(0.1)
                v += (g * g - v) * f32(0.001)
                q -= (m * alpha) / (np.sqrt(v) + eps)
        else:
            lr, mu = f32(0.05), f32(0.9)
            for q, g, v in zip(p, grads, s[0]):
                v *= mu
                v -= lr * g
                q += v

    def epoch(p, s, t):
        for i in range(0, n, bs):
            step(p, s, t, x[i:i + bs], onehot[i:i + bs])

    p, s, t = fresh()
    t0 = time.perf_counter()
    epoch(p, s, t)
    first = time.perf_counter() - t0
    rates = []
    for _ in range(a.reps):
        p, s, t = fresh()
        t0 = time.perf_counter()
        for _ in range(epochs):
            epoch(p, s, t)
        rates.append(epochs * n / (time.perf_counter() - t0))
    w1, b1, w2, b2 = p
    z = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    z = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    loss = float(np.mean(lse - z[np.arange(n), y]))
    acc = float(np.mean(z.argmax(axis=1) == y))
    rates.sort()
    out = {
        "peer": "numpy", "model": model, "numpy": np.__version__,
        "samples_per_s_median": float(np.median(rates)), "samples_per_s_min": rates[0],
        "samples_per_s_max": rates[-1], "loss": loss, "acc": acc, "epochs": epochs,
        "warmup_s": max(0.0, first - n / float(np.median(rates))),
    }
    if a.json:
        print(json.dumps(out))
    else:
        print(f"numpy model {model}: median {out['samples_per_s_median']:.0f} samples/s "
              f"(min {rates[0]:.0f}, max {rates[-1]:.0f}); loss {loss:.4f} acc {acc:.3f}")


if __name__ == "__main__":
    main()
