"""Writes the Keras-made fixtures of the `.keras` tests (std-runtime/tests/fixtures/keras/).

Manual step, not run by CI (CI only reads the files it wrote). Needs Keras 3.15.1 and a backend:

    python -m venv /tmp/kvenv
    /tmp/kvenv/bin/pip install keras==3.15.1 tensorflow-cpu==2.21.0
    /tmp/kvenv/bin/python std-runtime/tests/keras_check/make_fixtures.py \
        /work/shared/golden/keras_files std-runtime/tests/fixtures/keras

It writes
* `batchnorm.keras`: a small compiled Sequential with a BatchNormalization layer named `bn`
  (microfit must refuse it, naming the layer and its class);
* `<case>.continue.json` for every golden case: Keras' `fit` of ONE more epoch
  (`shuffle=False`, the case's batch size) from `<case>/model_trained.keras`, i.e. with the
  optimizer state Keras saved: the epoch's loss, the weights after it and `iterations` before
  and after.
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def tensor(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "data": [float(x) for x in a.reshape(-1)]}


def read_case(case_dir):
    with open(os.path.join(case_dir, "expected.json")) as f:
        exp = json.load(f)
    raw = np.genfromtxt(os.path.join(case_dir, "data.csv"), delimiter=",", skip_header=1)
    raw = raw.reshape(len(raw), -1)
    x = raw[:, :-1].astype(np.float32).reshape([-1] + exp["meta"]["input_shape"])
    y = raw[:, -1]
    return exp, x, y


def continue_case(case_dir, out_dir):
    case = os.path.basename(os.path.normpath(case_dir))
    exp, x, y = read_case(case_dir)
    model = keras.saving.load_model(os.path.join(case_dir, "model_trained.keras"))
    loss = model.loss if isinstance(model.loss, str) else type(model.loss).__name__
    if "sparse" in str(loss).lower():
        y = y.astype(np.int64)
    else:
        y = y.astype(np.float32).reshape(len(y), -1)
    before = int(model.optimizer.iterations.numpy())
    fit = exp["meta"]["fit"]
    hist = model.fit(x, y, batch_size=fit["batch_size"], epochs=1, shuffle=False, verbose=0)
    out = {
        "meta": {
            "keras_version": keras.__version__,
            "backend": keras.backend.backend(),
            "from": f"{case}/model_trained.keras",
            "fit": {"batch_size": fit["batch_size"], "epochs": 1, "shuffle": False},
        },
        "iterations_before": before,
        "iterations_after": int(model.optimizer.iterations.numpy()),
        "history_loss": [float(v) for v in hist.history["loss"]],
        "weights_after": {
            f"{layer.name}/{v.name}": tensor(v.numpy())
            for layer in model.layers
            for v in layer.trainable_variables
        },
    }
    path = os.path.join(out_dir, f"{case}.continue.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", path, out["history_loss"], before, "->", out["iterations_after"])


def batchnorm(out_dir):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dense(5, activation="relu", name="hidden"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    path = os.path.join(out_dir, "batchnorm.keras")
    model.save(path)
    print("wrote", path)


def main():
    golden, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    batchnorm(out_dir)
    for name in sorted(os.listdir(golden)):
        d = os.path.join(golden, name)
        if os.path.isfile(os.path.join(d, "model_trained.keras")):
            continue_case(d, out_dir)


if __name__ == "__main__":
    main()
