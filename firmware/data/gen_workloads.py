#!/usr/bin/env python3
"""Writes the firmware's test workloads from the shared datasets (../../../shared/datasets or
$MICROFIT_DATASETS): every value float32, the initial weights Keras' defaults (Glorot-uniform
kernels, zero biases) drawn from fixed seeds, so the files are reproducible.

* cnn.json          the tiny digits CNN: 200 digits 8x8x1 (pixels / 16), Conv2D(8, 3, relu,
                    kernel L2 1e-4) -> MaxPooling2D(2) -> Flatten -> Dropout(0.25) ->
                    Dense(10, softmax); Adam(1e-2), batch 32, 5 epochs.
* regression.json   wine: alcohol from the 12 other features (all z-scored), Dense(16, relu,
                    kernel L2 1e-3) -> Dense(1), mean squared error; Adam(1e-2), batch 16,
                    20 epochs.
* sgd_momentum.json breast cancer (the first 300 rows, z-scored): Dense(8, tanh, bias L1
                    1e-4, activity L2 1e-4) -> Dense(1, sigmoid), binary cross-entropy;
                    SGD(momentum 0.9, Nesterov) with an exponentially decaying learning rate
                    (0.05, x0.8 every 50 steps) and clipnorm 1; batch 20, 10 epochs.

Usage: python3 gen_workloads.py [OUTDIR]   (default: this file's folder)
"""
import csv
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get(
    "MICROFIT_DATASETS", os.path.join(HERE, "..", "..", "..", "..", "shared", "datasets")
)


def read(name):
    with open(os.path.join(DATA, name)) as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def f32(a):
    return np.asarray(a, dtype=np.float32)


def tensor(a):
    a = f32(a)
    # float32 values as the shortest decimals that read back to them (json writes float64
    # reprs, which are exact for float32 values).
    return {"shape": list(a.shape), "data": [float(v) for v in a.ravel()]}


def zscore(x):
    x = f32(x)
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    return f32((x - mean) / std)


def glorot(rng, shape, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return f32(rng.uniform(-limit, limit, size=shape))


def write(out, name, w):
    path = os.path.join(out, name)
    with open(path, "w") as f:
        json.dump(w, f, separators=(",", ":"))
        f.write("\n")
    print(path)


def cnn(out):
    _, rows = read("digits.csv")
    rows = rows[:200]
    x = f32([[float(v) / 16.0 for v in r[:64]] for r in rows]).reshape(200, 8, 8, 1)
    y = [int(r[64]) for r in rows]
    rng = np.random.RandomState(11)
    w = {
        "name": "CNN",
        "x": tensor(x),
        "labels": {"shape": [200], "data": y},
        "classes": 10,
        "model": [
            {"layer": "conv2d", "filters": 8, "kernel_size": [3, 3], "activation": "relu",
             "kernel_regularizer": {"l2": 1e-4}},
            {"layer": "max_pooling2d", "pool_size": [2, 2]},
            {"layer": "flatten"},
            {"layer": "dropout", "rate": 0.25},
            {"layer": "dense", "units": 10, "activation": "softmax"},
        ],
        "initial_weights": {
            "conv2d_0/kernel": tensor(glorot(rng, (3, 3, 1, 8), 9, 72)),
            "conv2d_0/bias": tensor(np.zeros(8)),
            "dense_0/kernel": tensor(glorot(rng, (72, 10), 72, 10)),
            "dense_0/bias": tensor(np.zeros(10)),
        },
        "training": {
            "optimizer": "adam", "learning_rate": 0.01, "loss": "sparse_categorical_crossentropy",
            "batch_size": 32, "epochs": 5, "shuffle": False,
        },
        "min_accuracy": 0.7,
    }
    write(out, "cnn.json", w)


def regression(out):
    _, rows = read("wine.csv")
    order = np.random.RandomState(3).permutation(len(rows))
    rows = [rows[i] for i in order]
    values = [[float(v) for v in r[:13]] for r in rows]
    target = zscore([[v[0]] for v in values])
    x = zscore([v[1:] for v in values])
    rng = np.random.RandomState(5)
    w = {
        "name": "REGRESSION",
        "x": tensor(x),
        "y": tensor(target),
        "model": [
            {"layer": "dense", "units": 16, "activation": "relu",
             "kernel_regularizer": {"l2": 1e-3}},
            {"layer": "dense", "units": 1},
        ],
        "initial_weights": {
            "dense_0/kernel": tensor(glorot(rng, (12, 16), 12, 16)),
            "dense_0/bias": tensor(np.zeros(16)),
            "dense_1/kernel": tensor(glorot(rng, (16, 1), 16, 1)),
            "dense_1/bias": tensor(np.zeros(1)),
        },
        "training": {
            "optimizer": "adam", "learning_rate": 0.01, "loss": "mean_squared_error",
            "batch_size": 16, "epochs": 20, "shuffle": False,
        },
    }
    write(out, "regression.json", w)


def sgd_momentum(out):
    _, rows = read("breast_cancer.csv")
    rows = rows[:300]
    x = zscore([[float(v) for v in r[:30]] for r in rows])
    y = f32([[1.0 if r[30] == "malignant" else 0.0] for r in rows])
    rng = np.random.RandomState(7)
    w = {
        "name": "SGD",
        "x": tensor(x),
        "y": tensor(y),
        "model": [
            {"layer": "dense", "units": 8, "activation": "tanh",
             "bias_regularizer": {"l1": 1e-4}, "activity_regularizer": {"l2": 1e-4}},
            {"layer": "dense", "units": 1, "activation": "sigmoid"},
        ],
        "initial_weights": {
            "dense_0/kernel": tensor(glorot(rng, (30, 8), 30, 8)),
            "dense_0/bias": tensor(np.zeros(8)),
            "dense_1/kernel": tensor(glorot(rng, (8, 1), 8, 1)),
            "dense_1/bias": tensor(np.zeros(1)),
        },
        "training": {
            "optimizer": "sgd", "momentum": 0.9, "nesterov": True,
            "learning_rate": {"exponential_decay": {
                "initial_learning_rate": 0.05, "decay_steps": 50, "decay_rate": 0.8,
                "staircase": False}},
            "clipnorm": 1.0,
            "loss": "binary_crossentropy", "batch_size": 20, "epochs": 10, "shuffle": False,
        },
        "min_accuracy": 0.9,
    }
    write(out, "sgd_momentum.json", w)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else HERE
    cnn(out)
    regression(out)
    sgd_momentum(out)
