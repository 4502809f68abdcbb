"""Manual check: Keras 3 loads the `.keras` files microfit writes, and agrees with microfit.

Not run by CI (CI has no Keras, and our own output is never CI's oracle: the CI tests compare
against files Keras wrote). Run it after changing `std-runtime/src/formats/`:

    python -m venv /tmp/kvenv
    /tmp/kvenv/bin/pip install keras==3.15.1 tensorflow-cpu==2.21.0
    MICROFIT_GOLDEN_DIR=/work/shared/golden MICROFIT_KERAS_CHECK_OUT=/tmp/kcheck \
        cargo test -p microfit-tests --test keras_files -- --ignored
    /tmp/kvenv/bin/python std-runtime/tests/keras_check/check_load.py /tmp/kcheck

For every `<name>.keras` + `<name>.json` pair microfit wrote (a model trained 2 epochs by
microfit, see `microfit_tests::keras_files::write_manual_check`), it checks that
1. `keras.saving.load_model` loads it without a warning (a warning would mean Keras skipped
   variables, e.g. an optimizer whose variables do not match);
2. `model.predict` equals microfit's predictions (rtol 1e-5, atol 1e-6);
3. the optimizer's `iterations` is microfit's;
4. (models without Dropout) one more epoch of `fit(shuffle=False)` in Keras gives the loss
   and weights microfit's one more epoch gave (rtol 1e-4, atol 1e-5): Keras continues from the
   optimizer state microfit saved (Adam m, v and step count, SGD momentum, the schedule's step).

Exit status 0 when every check passes.
"""

import glob
import json
import os
import sys
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def close(got, want, rtol, atol):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False, f"shape {got.shape} != {want.shape}"
    err = np.abs(got - want)
    ok = bool(np.all(err <= atol + rtol * np.abs(want)))
    rel = float(np.max(err / np.maximum(np.abs(want), 1e-30))) if err.size else 0.0
    return ok, f"max abs err {float(err.max()) if err.size else 0.0:.3e}, max rel err {rel:.3e}"


def targets(model, y):
    loss = model.loss
    name = loss if isinstance(loss, str) else type(loss).__name__
    name = str(name).lower()
    y = np.asarray(y)
    if "sparse" in name:
        return y.astype(np.int64)
    if "categorical" in name:
        return keras.utils.to_categorical(y.astype(np.int64), model.output_shape[-1])
    return y.astype(np.float32).reshape(len(y), -1)


def check(base):
    name = os.path.basename(base)
    with open(base + ".json") as f:
        case = json.load(f)
    failures = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.saving.load_model(base + ".keras")
    for w in caught:
        failures.append(f"warning while loading: {w.message}")
    x = np.asarray(case["x"], dtype=np.float32).reshape([-1] + case["input_shape"])
    pred = model.predict(x, batch_size=len(x), verbose=0)
    ok, msg = close(pred, case["predict"], 1e-5, 1e-6)
    print(f"{name}: predict vs microfit: {msg}")
    if not ok:
        failures.append("predict")
    it = int(model.optimizer.iterations.numpy())
    print(f"{name}: iterations {it} (microfit {case['iterations']})")
    if it != case["iterations"]:
        failures.append("iterations")
    if "continue" in case:
        hist = model.fit(
            x,
            targets(model, case["y"]),
            batch_size=case["batch_size"],
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        loss = hist.history["loss"][0]
        ok, msg = close([loss], [case["continue"]["loss"]], 1e-4, 1e-5)
        print(f"{name}: one more epoch: loss {loss:.7g} (microfit {case['continue']['loss']:.7g}) {msg}")
        if not ok:
            failures.append("continued loss")
        ours = case["continue"]["weights_after"]
        keras_vars = {v.path: v.numpy() for v in model.trainable_variables}
        for path, value in keras_vars.items():
            if path not in ours:
                failures.append(f"{path}: not in microfit's weights")
                continue
            want = np.asarray(ours[path]["data"]).reshape(ours[path]["shape"])
            ok, msg = close(value, want, 1e-4, 1e-5)
            print(f"{name}: one more epoch: {path}: {msg}")
            if not ok:
                failures.append(f"continued {path}")
    for f in failures:
        print(f"{name}: FAILED: {f}")
    return not failures


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}")
    bases = sorted(p[: -len(".keras")] for p in glob.glob(os.path.join(sys.argv[1], "*.keras")))
    if not bases:
        sys.exit(f"no .keras files in {sys.argv[1]}")
    passed = sum(check(b) for b in bases)
    print(f"{passed} passed, {len(bases) - passed} failed")
    sys.exit(0 if passed == len(bases) else 1)


if __name__ == "__main__":
    main()
