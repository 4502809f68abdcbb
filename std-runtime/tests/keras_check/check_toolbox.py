"""Manual check: Keras 3 loads microfit's `.keras` exports of toolbox runs (frozen layers, EMA,
MaxNorm, label smoothing) and predicts what microfit predicts.

Not run by CI (no Keras there; CI's oracle is files Keras wrote). With Keras on JAX
(`pip install keras==3.15.1 h5py`, JAX installed), from the workspace root:

    M=target/debug/microfit; D=../shared/datasets/iris.csv; O=/tmp/kx
    for c in plain freeze ema maxnorm; do
      case $c in plain) X="";; freeze) X="--freeze 1";; ema) X="--ema 0.9";;
                 maxnorm) X="--max-norm 0.5 --label-smoothing 0.1";; esac
      $M train --data $D --epochs 5 --scale none --hidden 8 $X --out $O/$c
      $M export --format keras --model $O/$c/model.mfit --out $O/$c.keras
      $M predict --model $O/$c/model.mfit --data $D --raw --out $O/$c.pred.csv
    done
    KERAS_BACKEND=jax python3 std-runtime/tests/keras_check/check_toolbox.py $O $D

Measured 2026-12-07 (Keras 3.15.1, JAX backend): every case loads, max |Keras − microfit| of
the predictions 1.2e-7; `trainable` [False, True] for `--freeze 1`; `use_ema=True,
ema_momentum=0.9` with the `*_average` variables after `iteration`/`learning_rate`; MaxNorm on
both kernels; `label_smoothing=0.1`. One more epoch of `fit(shuffle=False, batch_size=32)` in
Keras from the EMA export: loss 0.9785984; microfit `train --model ema.keras --no-shuffle
--scale none --validation-split 0 --batch-size 32 --epochs 1`: 0.9785984.
"""

import csv
import os
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402

out, data = sys.argv[1], sys.argv[2]
rows = list(csv.reader(open(data)))[1:]
x = np.array([[float(v) for v in r[:-1]] for r in rows], dtype=np.float32)
names = sorted({r[-1] for r in rows})
y = np.array([names.index(r[-1]) for r in rows])
bad = 0
for case in ["plain", "freeze", "ema", "maxnorm"]:
    m = keras.saving.load_model(f"{out}/{case}.keras")
    p = m.predict(x, verbose=0)
    q = np.loadtxt(f"{out}/{case}.pred.csv", delimiter=",", dtype=np.float32)
    err = float(np.abs(p - q).max())
    opt = m.optimizer
    print(
        case,
        f"max |keras - microfit| = {err:.3g}",
        "trainable", [layer.trainable for layer in m.layers],
        "use_ema", getattr(opt, "use_ema", False),
        "constraints", [type(getattr(layer, "kernel_constraint", None)).__name__ for layer in m.layers],
    )
    bad += err > 1e-5
    if case == "ema":
        h = m.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
        print("  one more epoch in Keras from the export: loss", h.history["loss"][0])
sys.exit(1 if bad else 0)
