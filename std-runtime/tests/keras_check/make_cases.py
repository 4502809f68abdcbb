"""Writes Keras-made `.keras` cases in the layout of `golden/keras_files` (see its README) for the
shapes, losses and optimizers the two golden cases do not cover.

Manual step, not run by CI (CI reads the files it wrote, in std-runtime/tests/fixtures/keras_cases):

    /tmp/kvenv/bin/python std-runtime/tests/keras_check/make_cases.py \
        std-runtime/tests/fixtures/keras_cases

Each case folder holds `model.keras` (compiled, initial weights), `model_trained.keras` (after
`fit(shuffle=False)`), `data.csv` (features as fed to Keras, target last) and `expected.json`
(`meta`, `predict_initial`, `history_loss`, `predict_after_fit`, `weights_after_fit`).
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, optimizers, regularizers  # noqa: E402

ROWS_IN_PREDICTIONS = 16


def tensor(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "data": [float(x) for x in a.reshape(-1)]}


def write_case(out, name, description, model, x, y, batch_size, epochs):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    model.save(os.path.join(d, "model.keras"))
    n = ROWS_IN_PREDICTIONS
    pred0 = model.predict(x[:n], verbose=0)
    hist = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    pred1 = model.predict(x[:n], verbose=0)
    model.save(os.path.join(d, "model_trained.keras"))
    flat = x.reshape(len(x), -1)
    target = np.asarray(y).reshape(len(y), -1)[:, 0]
    with open(os.path.join(d, "data.csv"), "w") as f:
        f.write(",".join([f"f{i}" for i in range(flat.shape[1])] + ["target"]) + "\n")
        for row, t in zip(flat, target):
            f.write(",".join(repr(float(v)) for v in row) + "," + repr(float(t)) + "\n")
    exp = {
        "meta": {
            "keras_version": keras.__version__,
            "backend": keras.backend.backend(),
            "description": description,
            "fit": {"batch_size": batch_size, "epochs": epochs, "shuffle": False},
            "input_shape": list(x.shape[1:]),
            "rows_in_predictions": n,
            "data": "data.csv: the features exactly as fed to Keras, target last",
        },
        "predict_initial": tensor(pred0),
        "history_loss": [float(v) for v in hist.history["loss"]],
        "predict_after_fit": tensor(pred1),
        "weights_after_fit": {
            f"{layer.name}/{v.name}": tensor(v.numpy())
            for layer in model.layers
            for v in layer.trainable_variables
        },
    }
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(exp, f)
    print("wrote", d, exp["history_loss"])


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(7)
    keras.utils.set_random_seed(7)

    # Binary cross-entropy, AdamW, L1L2 kernel regularizer, metrics.
    x = rng.uniform(-1, 1, (60, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.float32)
    m = keras.Sequential(
        [
            keras.Input(shape=(5,)),
            layers.Dense(6, activation="tanh", name="h",
                         kernel_regularizer=regularizers.L1L2(1e-3, 1e-3)),
            layers.Dense(1, activation="sigmoid", name="p"),
        ]
    )
    m.compile(optimizer=optimizers.AdamW(0.02, weight_decay=0.01),
              loss="binary_crossentropy", metrics=["accuracy"])
    write_case(out, "binary_adamw", "Dense(tanh, L1L2) -> Dense(1 sigmoid); BCE; AdamW",
               m, x, y, batch_size=16, epochs=4)

    # Regression (MSE), SGD with Nesterov momentum, a layer without bias, activity L1.
    x = rng.uniform(-1, 1, (48, 4)).astype(np.float32)
    y = (x[:, 0] * 0.7 - x[:, 2] + 0.1).astype(np.float32)
    m = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            layers.Dense(8, activation="relu", use_bias=False, name="h",
                         activity_regularizer=regularizers.L1(1e-3)),
            layers.Dense(1, name="y"),
        ]
    )
    m.compile(optimizer=optimizers.SGD(0.05, momentum=0.9, nesterov=True), loss="mse")
    write_case(out, "regression_sgd_nesterov",
               "Dense(relu, no bias, activity L1) -> Dense(1); MSE; SGD(momentum 0.9, Nesterov)",
               m, x, y, batch_size=10, epochs=5)

    # Conv1D + AveragePooling1D + Flatten + Dense softmax, Adam, sequences (12, 2).
    x = rng.uniform(-1, 1, (40, 12, 2)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.int64) + (x[:, :, 0].sum(axis=1) > 1).astype(np.int64)
    m = keras.Sequential(
        [
            keras.Input(shape=(12, 2)),
            layers.Conv1D(3, 3, activation="relu", name="c",
                          kernel_regularizer=regularizers.L2(1e-3)),
            layers.AveragePooling1D(2, name="ap"),
            layers.Flatten(name="f"),
            layers.Dense(3, activation="softmax", name="o"),
        ]
    )
    m.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    write_case(out, "conv1d_adam", "Conv1D(relu, L2) -> AveragePooling1D -> Flatten -> Dense(3 softmax); Adam",
               m, x, y, batch_size=8, epochs=3)


if __name__ == "__main__":
    main()
