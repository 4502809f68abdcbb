#!/usr/bin/env python3
"""Hold-out golden files: the shipped kinds of `shared/golden` with other shapes, batch sizes,
factors, betas and step counts, written by the real Keras 3.15.1 / TensorFlow 2.21.0.

The golden runner (`tests/src/golden/`) must carry any such folder without new code:

    python3 -m venv /tmp/kenv && /tmp/kenv/bin/pip install keras==3.15.1 tensorflow-cpu==2.21.0
    /tmp/kenv/bin/python tests/golden_gen/gen_variants.py /tmp/golden-variants
    MICROFIT_GOLDEN_DIR=/tmp/golden-variants cargo test -p microfit-tests

The schema is the shipped files' (`shared/golden/README.md`): tensors are `{shape, data}` with
every float the exact float32 value, steps record the state before/after each update, files
carry a `meta`. File names keep the shipped prefixes with another suffix (`dense_step_v2.json`,
...), except one placed by its structure alone (`holdout_betas.json`); a sub-folder is written
too (the runner must leave it alone). `--seed N` draws other values. The toolbox kinds of issue 12
(`constraints_v2`, `label_smoothing_v2`, `regularization_layers_v2`, and `optimizer_long_v2`'s
EMA and `exclude_from_weight_decay` runs) follow the shipped toolbox files' schema, prose
included: larger kernels (TensorFlow's packet order in the norms), negative axes, Conv1D with
`same` padding and 16 filters, soft BCE labels, sigmoid + BCE after `ActivityRegularization`,
an EMA with `ema_overwrite_frequency`.
"""
import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

tf.get_logger().setLevel("ERROR")
from keras import layers, ops, regularizers  # noqa: E402

F = np.float32


def T(a):
    """A tensor as the golden files write it (every float the exact float32 value)."""
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return {"shape": list(a.shape), "data": [int(v) for v in a.reshape(-1)]}
    a = a.astype(F)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def f(v):
    return float(np.float32(np.asarray(v)))


def meta(description, **extra):
    m = {
        "generator": "tests/golden_gen/gen_variants.py",
        "impl": "keras3",
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "backend": "tensorflow (CPU, eager)",
        "dtype": "float32",
        "tensor_encoding": "{shape, data} with data flattened row-major (C order)",
        "description": description,
    }
    m.update(extra)
    return m


def write(out, name, doc):
    with open(os.path.join(out, name), "w") as fh:
        json.dump(doc, fh)
    print(f"wrote {name}")


def key(v):
    """`layer/kernel` for a Keras variable (its path without the model's name)."""
    return "/".join(v.path.split("/")[-2:])


def named(variables, values=None):
    """`{"layer/kernel": tensor}` for Keras variables (or the given values in that order)."""
    values = values if values is not None else [v.numpy() for v in variables]
    return {key(v): T(x) for v, x in zip(variables, values)}


def slots(opt, variables):
    """The optimizer's slots per variable: Adam `m`/`v`, SGD `momentum`."""
    out = {}
    for v in variables:
        s = {}
        i = opt._get_variable_index(v)
        if hasattr(opt, "_momentums"):
            s["m"] = T(opt._momentums[i].numpy())
            s["v"] = T(opt._velocities[i].numpy())
        elif getattr(opt, "momentums", None):
            s["momentum"] = T(opt.momentums[i].numpy())
        out[key(v)] = s
    return out


def effective(opt):
    keys = ["learning_rate", "momentum", "nesterov", "beta_1", "beta_2", "epsilon", "amsgrad",
            "weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "use_ema"]
    c = opt.get_config()
    return {k: c[k] for k in keys if k in c}


def make_opt(cls, cfg):
    return getattr(keras.optimizers, cls)(**cfg)


# ------------------------------------------------------------------------------- regularizers
def gen_regularizers(rng):
    arrays = {
        "zeros_3x2": np.zeros((3, 2), F),
        "mixed_with_zeros_3x3": np.array([[0.0, -0.0, 1.5], [-2.25, 0.0, 3e-3], [4.0, -1e-4, 0.0]], F),
        "negatives_6": -np.abs(rng.standard_normal(6)).astype(F),
        "large_3": np.array([3e5, -7.5e5, 1e6], F),
        "tiny_5": np.array([1e-30, -2e-25, 3e-20, 0.0, -1e-35], F),
        "rand_3x2x5": rng.standard_normal((3, 2, 5)).astype(F),
        "conv_kernel_2x3x3x2": (rng.standard_normal((2, 3, 3, 2)) * 0.3).astype(F),
        "matrix_5x2": rng.standard_normal((5, 2)).astype(F),
    }
    regs = [("L1", {"l1": 0.03}), ("L1", {"l1": 2.5}), ("L2", {"l2": 0.07}), ("L2", {"l2": 3e-5}),
            ("L1L2", {"l1": 0.02, "l2": 0.005}), ("L1L2", {"l1": 0.0, "l2": 0.4})]
    cases = []
    for cls, cfg in regs:
        reg = getattr(regularizers, cls)(**cfg)
        for name, x in arrays.items():
            xt = tf.constant(x)
            with tf.GradientTape() as tape:
                tape.watch(xt)
                p = reg(xt)
            g = tape.gradient(p, xt)
            x64 = x.astype(np.float64)
            ref = (float(F(cfg.get("l1", 0.0))) * np.sum(np.abs(x64)) if cfg.get("l1") else 0.0) + \
                  (float(F(cfg.get("l2", 0.0))) * np.sum(x64 * x64) if cfg.get("l2") else 0.0)
            cases.append({"regularizer": cls, "config": cfg, "get_config": reg.get_config(),
                          "array_name": name, "x": T(x), "penalty": f(p),
                          "penalty_f64_reference": float(ref), "grad": T(g.numpy())})
    ortho = []
    for factor, mode in [(0.1, "rows"), (0.3, "columns"), (0.05, "columns"), (0.7, "rows")]:
        reg = regularizers.OrthogonalRegularizer(factor=factor, mode=mode)
        for name, x in [("matrix_5x3", rng.standard_normal((5, 3)).astype(F)),
                        ("matrix_3x6", rng.standard_normal((3, 6)).astype(F))]:
            xt = tf.constant(x)
            with tf.GradientTape() as tape:
                tape.watch(xt)
                p = reg(xt)
            ortho.append({"regularizer": "OrthogonalRegularizer", "config": {"factor": factor, "mode": mode},
                          "array_name": name, "x": T(x), "penalty": f(p),
                          "grad": T(tape.gradient(p, xt).numpy())})
    l2 = []
    for name, x in list(arrays.items())[:5]:
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            p = tf.nn.l2_loss(xt)
        l2.append({"array_name": name, "x": T(x), "l2_loss": f(p), "grad": T(tape.gradient(p, xt).numpy()),
                   "l2_loss_f64_reference": float(np.sum(x.astype(np.float64) ** 2) / 2)})
    x = tf.constant(np.array([0.0, -0.0, 1e-30, -1e-30, 2.0, -2.0, 5e-3], F))
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = tf.reduce_sum(tf.abs(x))
    return {"meta": meta("Regularizer penalty value and d(penalty)/dx via tf.GradientTape (variant: "
                         "other factors and arrays). penalty_f64_reference = same formula in float64."),
            "cases": cases, "orthogonal_cases": ortho, "l2_loss_cases": l2,
            "abs_gradient_check": {"x": T(x.numpy()), "grad_of_sum_abs": T(tape.gradient(s, x).numpy())}}


def gen_regularizer_config(rng):
    def rec(obj):
        return {"class_name": obj.__class__.__name__, "get_config": obj.get_config()}

    def get(ident):
        try:
            r = regularizers.get(ident)
            return rec(r)
        except Exception as e:  # noqa: BLE001
            return {"error": f"{type(e).__name__}: {e}"}

    idents = ["l1", "l2", "l1l2", "L1", "L1L2", "l1_l2", "orthogonal_regularizer"]
    ctors = {"L1(0.3)": regularizers.L1(0.3), "L2(0.25)": regularizers.L2(0.25),
             "L1L2(l1=0.05, l2=0.5)": regularizers.L1L2(l1=0.05, l2=0.5),
             "L1L2(l2=0.125)": regularizers.L1L2(l2=0.125),
             "OrthogonalRegularizer(0.2, 'columns')": regularizers.OrthogonalRegularizer(0.2, "columns"),
             "L2()": regularizers.L2()}
    ser = {}
    for label, r in ctors.items():
        s = regularizers.serialize(r)
        ser[label] = {"serialize": s, "get_config": r.get_config(), "deserialize_roundtrip": rec(regularizers.deserialize(s))}
    dicts = {"legacy_dict": {"class_name": "L1", "config": {"l1": 0.2}},
             "keras3_dict": regularizers.serialize(regularizers.L1L2(0.03, 0.04)),
             "string_l1": "l1", "string_l1_l2": "l1_l2"}
    gd = {k: dict(get(v), input=v) for k, v in dicts.items()}
    d = layers.Dense(3, kernel_regularizer=regularizers.L1L2(0.1, 0.2), bias_regularizer=regularizers.L2(0.3),
                     activity_regularizer=regularizers.L1(0.05))
    cfg = d.get_config()
    return {"meta": meta("keras.regularizers.get / serialize / deserialize (variant)"),
            "get": {i: get(i) for i in idents}, "serialize": ser, "get_from_dict_or_string": gd,
            "dense_layer_get_config_regularizer_entries": {k: cfg[k] for k in
                                                           ("kernel_regularizer", "bias_regularizer", "activity_regularizer")}}


def gen_initializers(rng):
    from keras.src.initializers.random_initializers import compute_fans
    cases = []
    for shape in [(5, 7), (2, 3, 4), (2, 2, 3, 5), (10,), (3, 2, 2, 4, 2), (64, 1)]:
        fi, fo = compute_fans(shape)
        w = keras.initializers.GlorotUniform(seed=int(rng.integers(1 << 30)))(shape).numpy()
        cases.append({"shape": list(shape), "fan_in": int(fi), "fan_out": int(fo),
                      "glorot_uniform_limit": float(np.sqrt(6.0 / (fi + fo))),
                      "sample_min": float(w.min()), "sample_max": float(w.max())})
    d = layers.Dense(5)
    d.build((None, 7))
    return {"meta": meta("Glorot-uniform fans and limits (variant shapes); Dense defaults."),
            "cases": cases,
            "dense_defaults": {"kernel_initializer": d.kernel_initializer.__class__.__name__,
                               "bias_initializer": d.bias_initializer.__class__.__name__,
                               "kernel_shape": list(d.kernel.shape), "bias": T(d.bias.numpy())}}


# ------------------------------------------------------------------------------------ losses
def grad_of(fn, p):
    pt = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch(pt)
        v = fn(pt)
    return v, tape.gradient(v, pt).numpy()


def gen_losses(rng):
    eps = 1e-7
    out = {"meta": meta("Loss values and gradients (variant shapes, batch sizes); y_pred plain tensors.",
                        epsilon=eps)}
    bce = []
    for fl in (False, True):
        y = rng.integers(0, 2, (3, 5)).astype(F)
        y[0, 0] = 0.3
        p = (rng.standard_normal((3, 5)) * 3).astype(F) if fl else rng.uniform(0, 1, (3, 5)).astype(F)
        if not fl:
            p[0, 1], p[1, 2], p[2, 3] = 0.0, 1.0, 1e-9
        loss = keras.losses.BinaryCrossentropy(from_logits=fl)
        el = keras.losses.binary_crossentropy(y[..., None], tf.constant(p)[..., None], from_logits=fl).numpy()
        red, g = grad_of(lambda pt: loss(y, pt), p)
        _, ge = grad_of(lambda pt: tf.reduce_sum(
            keras.losses.binary_crossentropy(y[..., None], pt[..., None], from_logits=fl)), p)
        per = keras.losses.binary_crossentropy(y, p, from_logits=fl).numpy()
        bce.append({"from_logits": fl, "y_true": T(y), "y_pred": T(p), "elementwise": T(el),
                    "per_sample_mean_last_axis": T(per), "reduced_sum_over_batch_size": f(red),
                    "grad_reduced_wrt_y_pred": T(g), "grad_sum_elementwise_wrt_y_pred": T(ge)})
    out["binary_crossentropy"] = bce
    cce, scce = [], []
    for fl in (False, True):
        labels = rng.integers(0, 4, 6)
        y = np.eye(4, dtype=F)[labels]
        if fl:
            p = (rng.standard_normal((6, 4)) * 4).astype(F)
        else:
            p = rng.uniform(0.01, 1, (6, 4)).astype(F)
            p[0] /= p[0].sum()
            p[1, labels[1]] = 0.0
        for key, yv, L, fn in (("cce", y, keras.losses.CategoricalCrossentropy(from_logits=fl),
                                keras.losses.categorical_crossentropy),
                               ("scce", labels, keras.losses.SparseCategoricalCrossentropy(from_logits=fl),
                                keras.losses.sparse_categorical_crossentropy)):
            red, g = grad_of(lambda pt: L(yv, pt), p)
            rec = {"from_logits": fl, "y_pred": T(p), "per_sample": T(fn(yv, p, from_logits=fl).numpy()),
                   "reduced_sum_over_batch_size": f(red), "grad_reduced_wrt_y_pred": T(g)}
            if key == "cce":
                rec["y_true"] = T(y)
                cce.append(rec)
            else:
                rec["labels"] = T(labels)
                scce.append(rec)
    out["categorical_crossentropy"] = cce
    out["sparse_categorical_crossentropy"] = scce
    mse = []
    for shape in [(4, 3), (2, 3, 4)]:
        y = rng.standard_normal(shape).astype(F)
        p = rng.standard_normal(shape).astype(F)
        red, g = grad_of(lambda pt: keras.losses.MeanSquaredError()(y, pt), p)
        mse.append({"y_true": T(y), "y_pred": T(p), "per_sample": T(keras.losses.mean_squared_error(y, p).numpy()),
                    "reduced_sum_over_batch_size": f(red), "grad_reduced_wrt_y_pred": T(g)})
    out["mean_squared_error"] = mse
    z = (rng.standard_normal((2, 4)) * 6).astype(F)
    zb = (rng.standard_normal((2, 4)) * 6).astype(F)
    yb = rng.integers(0, 2, (2, 4)).astype(F)
    lab = np.array([1, 3])
    yc = np.eye(4, dtype=F)[lab]
    sig, soft = keras.activations.sigmoid(tf.constant(zb)), keras.activations.softmax(tf.constant(z))
    out["cached_logits_shortcut"] = {
        "description": "losses on a keras.activations output (cached logits) vs the same values as a plain tensor; batch of 2",
        "logits_bce": T(zb), "y_true_bce": T(yb),
        "bce_on_library_sigmoid_output": f(keras.losses.BinaryCrossentropy()(yb, sig)),
        "bce_on_plain_probability_tensor": f(keras.losses.BinaryCrossentropy()(yb, tf.constant(sig.numpy()))),
        "logits_cce": T(z), "y_true_cce": T(yc), "labels_scce": T(lab),
        "cce_on_library_softmax_output": f(keras.losses.CategoricalCrossentropy()(yc, soft)),
        "cce_on_plain_probability_tensor": f(keras.losses.CategoricalCrossentropy()(yc, tf.constant(soft.numpy()))),
        "scce_on_library_softmax_output": f(keras.losses.SparseCategoricalCrossentropy()(lab, soft)),
        "scce_on_plain_probability_tensor": f(keras.losses.SparseCategoricalCrossentropy()(lab, tf.constant(soft.numpy()))),
    }
    return out


# ------------------------------------------------------------------------------- dense step
def reg_spec(r):
    return None if r is None else {"class_name": r.__class__.__name__, "config": r.get_config()}


def gen_dense_step(rng):
    n_in, units, batch, steps = 5, 2, 6, 3
    kr, br, ar = regularizers.L1L2(l1=0.03, l2=0.01), regularizers.L2(0.1), regularizers.L2(0.05)
    x = rng.standard_normal((batch, n_in)).astype(F)
    W0 = (rng.uniform(-0.8, 0.8, (n_in, units))).astype(F)
    b0 = np.array([0.0, 0.15], F)
    opts = [("SGD", {"learning_rate": 0.05}), ("SGD", {"learning_rate": 0.05, "momentum": 0.8}),
            ("SGD", {"learning_rate": 0.02, "momentum": 0.5, "nesterov": True}),
            ("Adam", {"learning_rate": 0.005, "beta_1": 0.85, "beta_2": 0.99}),
            ("AdamW", {"learning_rate": 0.02, "weight_decay": 0.01}),
            ("Adam", {"learning_rate": 0.01, "weight_decay": 0.05, "epsilon": 1e-5})]
    cases = []
    for act, loss_name in [("linear", "mse"), ("relu", "mse"), ("tanh", "mse"),
                           ("sigmoid", "binary_crossentropy"), ("softmax", "categorical_crossentropy")]:
        if loss_name == "binary_crossentropy":
            y = rng.integers(0, 2, (batch, units)).astype(F)
        elif loss_name == "categorical_crossentropy":
            y = np.eye(units, dtype=F)[rng.integers(0, units, batch)]
        else:
            y = rng.standard_normal((batch, units)).astype(F)

        def model():
            m = keras.Sequential([keras.Input((n_in,)), layers.Dense(units, activation=act, name="dense",
                                  kernel_regularizer=kr, bias_regularizer=br, activity_regularizer=ar)])
            m.set_weights([W0, b0])
            return m

        loss_fn = keras.losses.get(loss_name)
        m = model()
        d = m.layers[0]
        with tf.GradientTape() as tape:
            z = ops.matmul(x, d.kernel) + d.bias
            yp = m(x, training=True)
            data = ops.mean(loss_fn(y, yp))
            total = ops.sum([data] + m.losses)
        gt = tape.gradient(total, m.trainable_variables)
        with tf.GradientTape() as tape:
            yp2 = m(x, training=True)
            data2 = ops.mean(loss_fn(y, yp2))
        gd = tape.gradient(data2, m.trainable_variables)
        regs = {"dense/activity": f(ar(yp) / batch), "dense/kernel": f(kr(d.kernel)), "dense/bias": f(br(d.bias))}
        fwd = {"pre_activation": T(z.numpy()), "y_pred": T(yp.numpy()), "data_loss": f(data), "reg_losses": regs,
               "activity_loss_undivided": f(ar(yp)), "batch_size": batch, "total_loss": f(total),
               "grads_total": named(m.trainable_variables, [g.numpy() for g in gt]),
               "grads_data_loss_only": named(m.trainable_variables, [g.numpy() for g in gd])}
        runs = []
        for cls, cfg in opts:
            m = model()
            opt = make_opt(cls, cfg)
            rec = []
            for _ in range(steps):
                with tf.GradientTape() as tape:
                    yp = m(x, training=True)
                    data = ops.mean(loss_fn(y, yp))
                    total = ops.sum([data] + m.losses)
                g = tape.gradient(total, m.trainable_variables)
                d = m.layers[0]
                regs = {"dense/activity": f(ar(yp) / batch), "dense/kernel": f(kr(d.kernel)), "dense/bias": f(br(d.bias))}
                opt.apply_gradients(zip(g, m.trainable_variables))
                rec.append({"y_pred": T(yp.numpy()), "data_loss": f(data), "reg_losses": regs, "total_loss": f(total),
                            "grads": named(m.trainable_variables, [t.numpy() for t in g]),
                            "weights_after": named(m.trainable_variables), "slots_after": slots(opt, m.trainable_variables)})
            fm = model()
            fm.compile(optimizer=make_opt(cls, cfg), loss=loss_name)
            h = fm.fit(x, y, batch_size=batch, epochs=steps, shuffle=False, verbose=0)
            runs.append({"optimizer": cls, "config_given": cfg, "config_effective": effective(opt), "steps": rec,
                         "fit_check": {"history_loss": [float(v) for v in h.history["loss"]]}})
        cases.append({"activation": act, "loss": loss_name, "y_true": T(y), "forward_at_init": fwd,
                      "optimizer_runs": runs})
    return {"meta": meta(f"Dense({n_in}->{units}) with kernel L1L2, bias L2, activity L2 (variant); the same batch "
                         f"x ({batch} samples) every step; {steps} steps per optimizer run.",
                         layer={"units": units, "input_dim": n_in, "kernel_regularizer": reg_spec(kr),
                                "bias_regularizer": reg_spec(br), "activity_regularizer": reg_spec(ar)}),
            "x": T(x), "initial_weights": {"dense/kernel": T(W0), "dense/bias": T(b0)}, "cases": cases}


# ---------------------------------------------------------------------------------- mlp fit
def gen_mlp_fit(rng):
    n, n_in, hidden, classes, bs, epochs, lam = 23, 5, 6, 4, 6, 2, 0.02
    x = rng.standard_normal((n, n_in)).astype(F)
    labels = rng.integers(0, classes, n)
    y = np.eye(classes, dtype=F)[labels]
    W = [rng.uniform(-0.7, 0.7, (n_in, hidden)).astype(F), np.full(hidden, 0.05, F),
         rng.uniform(-0.7, 0.7, (hidden, classes)).astype(F), np.zeros(classes, F)]
    k1, b1, a1, k2 = regularizers.L2(0.02), regularizers.L1(0.003), regularizers.L1(0.01), regularizers.L2(0.005)

    def model(regs=True, l2=None):
        kw1 = dict(kernel_regularizer=k1, bias_regularizer=b1, activity_regularizer=a1) if regs else {}
        kw2 = dict(kernel_regularizer=k2) if regs else {}
        if l2 is not None:
            kw1 = kw2 = dict(kernel_regularizer=regularizers.L2(l2), bias_regularizer=regularizers.L2(l2))
        m = keras.Sequential([keras.Input((n_in,)), layers.Dense(hidden, activation="relu", name="d1", **kw1),
                              layers.Dense(classes, activation="softmax", name="d2", **kw2)])
        m.set_weights(W)
        return m

    opt_cfg = {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.995, "epsilon": 1e-07}
    loss = keras.losses.CategoricalCrossentropy()
    m = model()
    m.compile(optimizer=keras.optimizers.Adam(**opt_cfg), loss="categorical_crossentropy")
    logs, per_epoch = [], []

    class CB(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs_=None, **kw):
            logs.append(float((logs_ or kw.get("logs"))["loss"]))

        def on_epoch_end(self, epoch, logs_=None, **kw):
            per_epoch.append(named(self.model.trainable_variables))

    h = m.fit(x, y, batch_size=bs, epochs=epochs, shuffle=False, verbose=0, callbacks=[CB()])
    fit = {"history_loss_per_epoch": [float(v) for v in h.history["loss"]], "batch_end_logs_loss": logs,
           "weights_after_each_epoch": per_epoch, "final_weights": named(m.trainable_variables)}

    def replay(regs, lam_):
        m = model(regs=regs)
        opt = keras.optimizers.Adam(**opt_cfg)
        steps, means = [], []
        for e in range(epochs):
            tot, cnt = 0.0, 0
            for bi, s in enumerate(range(0, n, bs)):
                xb, yb = x[s:s + bs], y[s:s + bs]
                with tf.GradientTape() as tape:
                    h1 = m.layers[0](xb, training=True)
                    out = m.layers[1](h1, training=True)
                    data = loss(yb, out)
                    if regs:
                        total = ops.sum([data] + m.losses)
                    else:
                        l2s = ops.sum([tf.nn.l2_loss(v) for v in m.trainable_variables])
                        total = data + lam_ * l2s
                g = tape.gradient(total, m.trainable_variables)
                rec = {"epoch": e, "batch": bi, "data_loss": f(data), "total_loss": f(total)}
                if regs:
                    d1, d2 = m.layers
                    rec["reg_losses"] = {"d1/activity": f(a1(h1) / len(xb)), "d1/kernel": f(k1(d1.kernel)),
                                         "d1/bias": f(b1(d1.bias)), "d2/kernel": f(k2(d2.kernel))}
                else:
                    rec["sum_l2_loss"] = f(l2s)
                opt.apply_gradients(zip(g, m.trainable_variables))
                steps.append(rec)
                tot += float(total) * len(xb)
                cnt += len(xb)
            means.append(tot / cnt)
        return steps, means, named(m.trainable_variables)

    st, means, fw = replay(True, 0.0)
    cst, cmeans, cfw = replay(False, lam)
    em = model(regs=False, l2=lam / 2)
    em.compile(optimizer=keras.optimizers.Adam(**opt_cfg), loss="categorical_crossentropy")
    eh = em.fit(x, y, batch_size=bs, epochs=epochs, shuffle=False, verbose=0)
    return {"meta": meta(f"MLP {n_in} -> Dense({hidden}, relu, name=d1, kernel L2(0.02), bias L1(0.003), activity "
                         f"L1(0.01)) -> Dense({classes}, softmax, name=d2, kernel L2(0.005)); CategoricalCrossentropy; "
                         f"Adam({opt_cfg}); fit(batch_size={bs}, epochs={epochs}, shuffle=False) on {n} samples "
                         f"(the last batch of each epoch is partial).",
                         keras_model_config="the model's own keras Model.get_config()"),
            "x": T(x), "labels": T(labels), "y_onehot": T(y), "batch_size": bs, "epochs": epochs,
            "optimizer": {"class_name": "Adam", "config": opt_cfg},
            "initial_weights": {"d1/kernel": T(W[0]), "d1/bias": T(W[1]), "d2/kernel": T(W[2]), "d2/bias": T(W[3])},
            "fit": fit,
            "eager_replay_of_fit": {"steps": st, "epoch_mean_of_step_total_loss": means, "final_weights": fw},
            "custom_loop_l2_loss": {"pattern": "total_loss = loss + lam * sum(tf.nn.l2_loss(v))", "lambda": lam,
                                    "model": "same architecture, NO layer regularizers", "steps": cst,
                                    "epoch_mean_of_step_total_loss": cmeans, "final_weights": cfw,
                                    "equivalence_check": {"history_loss_per_epoch": [float(v) for v in eh.history["loss"]]}},
            "keras_model_config": model().get_config()}


# ---------------------------------------------------------------------------------- conv step
def geometry(n, k, s, padding):
    if padding == "same":
        out = -(-n // s)
        tot = max((out - 1) * s + k - n, 0)
        return {"in": n, "kernel": k, "stride": s, "out": out, "pad_before": tot // 2, "pad_after": tot - tot // 2}
    return {"in": n, "kernel": k, "stride": s, "out": (n - k) // s + 1, "pad_before": 0, "pad_after": 0}


def gen_conv_step(rng):
    cases = []
    specs = [
        ("Conv1D", (3, 9, 2), 4, (4,), (1,), "valid", {"kernel": regularizers.L1(0.02)}),
        ("Conv1D", (3, 9, 2), 4, (4,), (3,), "same", {"bias": regularizers.L2(0.05)}),
        ("Conv2D", (3, 7, 6, 1), 3, (2, 3), (2, 1), "same",
         {"kernel": regularizers.L2(0.01), "activity": regularizers.L2(0.003)}),
        ("Conv2D", (2, 5, 8, 2), 2, (3, 3), (1, 2), "valid", {"kernel": regularizers.L1L2(0.01, 0.02)}),
        ("Conv3D", (2, 5, 4, 3, 2), 2, (3, 2, 2), (2, 1, 2), "same", {"activity": regularizers.L1(0.01)}),
    ]
    for cls, xs, filters, ks, st, pad, regs in specs:
        x = rng.standard_normal(xs).astype(F)
        layer = getattr(layers, cls)(filters, ks, strides=st, padding=pad, name="conv",
                                     kernel_regularizer=regs.get("kernel"), bias_regularizer=regs.get("bias"),
                                     activity_regularizer=regs.get("activity"))
        m = keras.Sequential([keras.Input(xs[1:]), layer])
        w0 = (rng.standard_normal(m.layers[0].kernel.shape) * 0.4).astype(F)
        b0 = (rng.standard_normal(filters) * 0.1).astype(F)
        m.set_weights([w0, b0])
        y = rng.standard_normal(m.output_shape[1:]).astype(F)
        y = np.broadcast_to(y, (xs[0],) + y.shape).copy() + rng.standard_normal((xs[0],) + y.shape).astype(F) * 0.1
        loss = keras.losses.MeanSquaredError()
        with tf.GradientTape() as tape:
            yp = m(x, training=True)
            data = loss(y, yp)
            total = ops.sum([data] + m.losses)
        g = tape.gradient(total, m.trainable_variables)
        lyr = m.layers[0]
        rl = {}
        if "activity" in regs:
            rl["conv/activity"] = f(regs["activity"](yp) / xs[0])
        if "kernel" in regs:
            rl["conv/kernel"] = f(regs["kernel"](lyr.kernel))
        if "bias" in regs:
            rl["conv/bias"] = f(regs["bias"](lyr.bias))
        runs = []
        for ocls, cfg in [("SGD", {"learning_rate": 0.05}), ("Adam", {"learning_rate": 0.02, "beta_1": 0.8})]:
            mm = keras.Sequential([keras.Input(xs[1:]), getattr(layers, cls).from_config(layer.get_config())])
            mm.set_weights([w0, b0])
            opt = make_opt(ocls, cfg)
            with tf.GradientTape() as tape:
                tot = ops.sum([loss(y, mm(x, training=True))] + mm.losses)
            opt.apply_gradients(zip(tape.gradient(tot, mm.trainable_variables), mm.trainable_variables))
            fm = keras.Sequential([keras.Input(xs[1:]), getattr(layers, cls).from_config(layer.get_config())])
            fm.set_weights([w0, b0])
            fm.compile(optimizer=make_opt(ocls, cfg), loss="mse")
            h = fm.fit(x, y, batch_size=xs[0], epochs=1, shuffle=False, verbose=0)
            runs.append({"optimizer": ocls, "config_given": cfg, "weights_after_1_step": named(mm.trainable_variables),
                         "slots_after_1_step": slots(opt, mm.trainable_variables),
                         "fit_check": {"history_loss": [float(v) for v in h.history["loss"]]}})
        cases.append({"layer": cls, "padding": pad, "strides": list(st), "filters": filters, "kernel_size": list(ks),
                      "regularizers": {k: reg_spec(r) for k, r in regs.items()},
                      "geometry_per_spatial_dim": [geometry(xs[1 + i], ks[i], st[i], pad) for i in range(len(ks))],
                      "x": T(x), "y_true": T(y), "initial_weights": {"conv/kernel": T(w0), "conv/bias": T(b0)},
                      "y_pred": T(yp.numpy()), "data_loss": f(data), "reg_losses": rl, "total_loss": f(total),
                      "grads": named(m.trainable_variables, [t.numpy() for t in g]), "optimizer_runs": runs})
    return {"meta": meta("Single conv layer (linear activation, channels_last, name 'conv'), MSE loss vs y_true "
                         "(variant shapes, strides, filters, regularizers). optimizer runs: 1 step on the full batch."),
            "cases": cases}


# ---------------------------------------------------------------------------- activity scaling
def gen_activity_scaling(rng):
    units, n_in, c, bsizes = 4, 4, 3.0, [1, 3, 4]
    kr, ar = regularizers.L1(0.02), regularizers.L2(0.03)
    out = []
    for b in bsizes:
        layer = layers.Dense(units, kernel_initializer="ones", kernel_regularizer=kr, activity_regularizer=ar)
        x = c * np.ones((b, n_in), F)
        o = layer(x)
        out.append({"batch_size": b, "layer_losses": [f(v) for v in layer.losses], "sum": f(ops.sum(layer.losses)),
                    "activity_raw_l2_0.03_sum_sq_out": f(ar(o))})
    xf = rng.integers(-2, 4, (5, 2)).astype(F)
    m = keras.Sequential([keras.Input((2,)), layers.Dense(3, kernel_initializer="ones", bias_initializer="zeros",
                                                          activity_regularizer=regularizers.L1(0.2))])
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    yz = np.zeros((5, 3), F)
    h = m.fit(xf, yz, batch_size=5, epochs=1, shuffle=False, verbose=0)
    o = xf @ np.ones((2, 3), F)
    mse = float(np.mean(o.astype(np.float64) ** 2))
    raw = float(0.2 * np.sum(np.abs(o.astype(np.float64))))
    return {"meta": meta(f"Numerical check of activity-regularizer scaling. Dense({units}, kernel=ones), kernel "
                         f"L1(0.02), activity L2(0.03), x = {c:g}*ones((B,{n_in})): layer.losses per batch size."),
            "layer_losses_by_batch_size": out,
            "fit_check": {"model": "Dense(3, kernel=ones, bias=0, activity L1(0.2)), x 5x2, y zeros, mse, SGD(lr=0)",
                          "x": T(xf), "fit_loss": float(h.history["loss"][0]), "mse": mse, "activity_raw": raw,
                          "expected_if_divided": mse + raw / 5, "expected_if_not_divided": mse + raw}}


# ------------------------------------------------------------------------------ adam power
def gen_adam_power(rng):
    big = sorted(set(int(v) for v in rng.integers(1300, 1_000_000, 60)))
    betas = {}
    for beta in ("0.85", "0.995", "0.7", "0.9"):
        ts = list(range(1, 1201)) + big
        b = ops.cast(float(beta), "float32")
        bits = []
        for t in ts:  # one scalar op per step, as Keras' Adam does it
            v = ops.power(b, ops.cast(t, "float32"))
            bits.append("0x%08x" % np.asarray(v, F).view(np.uint32))
        betas[beta] = {"t": ts, "pow_bits": bits}
    return {"meta": meta("beta**t in float32 as Keras 3 Adam computes it on TensorFlow (ops.power of float32 "
                         "scalars), as IEEE-754 bits (variant betas and t)."),
            "betas": betas}


# ---------------------------------------------------------------------------- optimizer long
def gen_optimizer_long(rng):
    n_in, units, batch, steps = 5, 4, 7, 25
    x = rng.standard_normal((batch, n_in)).astype(F)
    y = np.eye(units, dtype=F)[rng.integers(0, units, batch)]
    W0 = rng.uniform(-0.6, 0.6, (n_in, units)).astype(F)
    b0 = (rng.standard_normal(units) * 0.05).astype(F)
    runs_cfg = [("Adam", {"learning_rate": 0.03, "beta_1": 0.85, "beta_2": 0.99}),
                ("AdamW", {"learning_rate": 0.02, "weight_decay": 0.05}),
                ("SGD", {"learning_rate": 0.05, "momentum": 0.7, "nesterov": True, "clipnorm": 0.3}),
                ("Adam", {"learning_rate": 0.01, "global_clipnorm": 0.4}),
                ("SGD", {"learning_rate": 0.1, "clipvalue": 0.02}),
                ("SGD", {"learning_rate": 0.1, "momentum": 0.3, "global_clipnorm": 0.15}),
                ("Adam", {"learning_rate": 0.01, "use_ema": True, "ema_momentum": 0.9}),
                ("SGD", {"learning_rate": 0.1, "momentum": 0.5, "use_ema": True, "ema_momentum": 0.8,
                         "ema_overwrite_frequency": 5}),
                ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.1,
                           "exclude_from_weight_decay": {"var_names": ["bias"]}}),
                ("SGD", {"learning_rate": 0.05, "weight_decay": 0.2,
                         "exclude_from_weight_decay": {"var_names": ["kern", "nothing_matches"]}})]
    runs = []
    for cls, cfg in runs_cfg:
        m = keras.Sequential([keras.Input((n_in,)), layers.Dense(units, activation="softmax", name="dense",
                                                                 kernel_regularizer=regularizers.L2(0.02))])
        m.set_weights([W0, b0])
        c = dict(cfg)
        excl = c.pop("exclude_from_weight_decay", None)
        opt = make_opt(cls, c)
        if excl:
            opt.exclude_from_weight_decay(var_names=excl["var_names"])
        loss = keras.losses.CategoricalCrossentropy()
        rec = []
        for _ in range(steps):
            with tf.GradientTape() as tape:
                yp = m(x, training=True)
                data = loss(y, yp)
                total = ops.sum([data] + m.losses)
            g = tape.gradient(total, m.trainable_variables)
            reg = [f(v) for v in m.losses]
            opt.apply_gradients(zip(g, m.trainable_variables))
            st = {"data_loss": f(data), "reg_losses": reg, "total_loss": f(total),
                  "grads": named(m.trainable_variables, [t.numpy() for t in g]),
                  "weights_after": named(m.trainable_variables), "slots_after": slots(opt, m.trainable_variables)}
            if cfg.get("use_ema"):
                st["ema_after"] = named(m.trainable_variables, [v.numpy() for v in opt._model_variables_moving_average])
            rec.append(st)
        run = {"optimizer": cls, "config_given": cfg, "steps": rec}
        if cfg.get("use_ema"):
            opt.finalize_variable_values(m.trainable_variables)
            run["weights_after_finalize_variable_values"] = named(m.trainable_variables)
        runs.append(run)
    return {"meta": meta(f"Dense({n_in}->{units}, softmax, kernel L2) + CategoricalCrossentropy on one fixed batch, "
                         f"{steps} eager train steps per optimizer (variant), each run from initial_weights."),
            "x": T(x), "y_true": T(y), "initial_weights": {"dense/kernel": T(W0), "dense/bias": T(b0)}, "runs": runs}


# --------------------------------------------------------------------- toolbox (issue 12)
def train_record(m, x, y, loss, opt, steps):
    """Eager steps as the shipped toolbox files record them: loss, penalties and gradients
    before each update, weights and slots after it."""
    rec = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            yp = m(x, training=True)
            data = loss(y, yp)
            total = ops.sum([data] + m.losses)
        g = tape.gradient(total, m.trainable_variables)
        reg = [f(v) for v in m.losses]
        opt.apply_gradients(zip(g, m.trainable_variables))
        rec.append({"data_loss": f(data), "reg_losses": reg, "total_loss": f(total),
                    "grads": named(m.trainable_variables, [t.numpy() for t in g]),
                    "weights_after": named(m.trainable_variables),
                    "slots_after": slots(opt, m.trainable_variables)})
    return rec


def gen_constraints(rng):
    fns = []
    specs = [("MaxNorm", {"max_value": 1.5, "axis": 0}, (3, 4)),
             ("MaxNorm", {"max_value": 0.7, "axis": 0}, (20, 10)),       # packets + remainder
             ("MaxNorm", {"max_value": 0.9, "axis": 1}, (4, 20)),        # rows of 20
             ("MaxNorm", {"max_value": 1.2, "axis": [0, 1, 2]}, (3, 3, 4, 16)),
             ("MinMaxNorm", {"min_value": 0.5, "max_value": 1.0, "rate": 0.5, "axis": 0}, (3, 4)),
             ("MinMaxNorm", {"min_value": 0.8, "max_value": 1.1, "rate": 0.3, "axis": -1}, (5, 6)),
             ("MinMaxNorm", {"min_value": 0.2, "max_value": 0.4, "rate": 1.0, "axis": [0, 1]}, (3, 2, 9)),
             ("NonNeg", {}, (4, 5)),
             ("UnitNorm", {"axis": 1}, (3, 4)),
             ("UnitNorm", {"axis": [0, 1, 2, 3]}, (2, 2, 2, 3, 4)),
             ("UnitNorm", {"axis": 0}, (7,))]
    for cls, cfg, shape in specs:
        w = (rng.standard_normal(shape) * rng.uniform(0.2, 2.0)).astype(F)
        if cls == "NonNeg":
            w.reshape(-1)[:3] = [-0.0, 0.0, -1e-30]
        fns.append({"class_name": cls, "config": cfg, "w": T(w),
                    "out": T(getattr(keras.constraints, cls)(**cfg)(tf.constant(w)).numpy())})
    # Dense training: MinMaxNorm on the kernel, MaxNorm on the bias, Adam.
    n_in, units, batch = 5, 4, 7
    x = rng.standard_normal((batch, n_in)).astype(F)
    y = rng.standard_normal((batch, units)).astype(F)
    kc = keras.constraints.MinMaxNorm(min_value=0.3, max_value=0.6, rate=0.8, axis=0)
    m = keras.Sequential([keras.Input((n_in,)), layers.Dense(units, activation="tanh", name="dense",
                                                             kernel_constraint=kc,
                                                             bias_constraint=keras.constraints.MaxNorm(0.2, axis=0),
                                                             kernel_regularizer=regularizers.L2(0.02))])
    W0 = (rng.standard_normal((n_in, units)) * 0.6).astype(F)
    b0 = (rng.standard_normal(units) * 0.3).astype(F)
    m.set_weights([W0, b0])
    opt_cfg = {"learning_rate": 0.05, "beta_1": 0.8}
    dense = {"x": T(x), "y_true": T(y), "initial_weights": named(m.trainable_variables),
             "layer": "Dense(tanh) kernel_constraint=MinMaxNorm(min_value=0.3, max_value=0.6, rate=0.8, axis=0), "
                      "bias_constraint=MaxNorm(max_value=0.2, axis=0), kernel L2(0.02)",
             "optimizer": {"class_name": "Adam", "config": opt_cfg}, "loss": "mean_squared_error",
             "steps": train_record(m, x, y, keras.losses.MeanSquaredError(), make_opt("Adam", opt_cfg), 5)}
    # Conv1D training: MaxNorm over each filter ([0, 1]) with 16 filters, 'same' padding, SGD momentum.
    x = rng.standard_normal((3, 6, 2)).astype(F)
    conv = layers.Conv1D(16, 3, padding="same", name="conv",
                         kernel_constraint=keras.constraints.MaxNorm(0.4, axis=[0, 1]),
                         bias_constraint=keras.constraints.NonNeg(),
                         kernel_regularizer=regularizers.L1(0.005))
    m = keras.Sequential([keras.Input((6, 2)), conv])
    m.set_weights([(rng.standard_normal((3, 2, 16)) * 0.5).astype(F), (rng.standard_normal(16) * 0.2).astype(F)])
    y = rng.standard_normal((3, 6, 16)).astype(F)
    opt_cfg = {"learning_rate": 0.1, "momentum": 0.7}
    convrec = {"x": T(x), "y_true": T(y), "initial_weights": named(m.trainable_variables),
               "layer": "Conv1D(3, same) kernel_constraint=MaxNorm(max_value=0.4, axis=[0,1]), "
                        "bias_constraint=NonNeg, kernel L1(0.005)",
               "optimizer": {"class_name": "SGD", "config": opt_cfg}, "loss": "mean_squared_error",
               "steps": train_record(m, x, y, keras.losses.MeanSquaredError(), make_opt("SGD", opt_cfg), 4)}
    return {"meta": meta("keras.constraints on tensors (variant: other shapes, axes, factors), then in training "
                         "(kernel/bias constraints applied right after each optimizer update)."),
            "functions": fns, "dense_training": dense, "conv_training": convrec}


def gen_label_smoothing(rng):
    cases = []
    for ls in (0.05, 0.3):
        for name, cls in (("categorical_crossentropy", keras.losses.CategoricalCrossentropy),
                          ("binary_crossentropy", keras.losses.BinaryCrossentropy)):
            for fl in (True, False):
                if name == "categorical_crossentropy":
                    y = np.eye(5, dtype=F)[rng.integers(0, 5, 4)]
                else:
                    y = rng.integers(0, 2, (4, 5)).astype(F)
                    y[0, 0] = 0.25  # a soft label
                if fl:
                    p = (rng.standard_normal((4, 5)) * 2).astype(F)
                elif name == "categorical_crossentropy":
                    p = rng.uniform(0.05, 1, (4, 5)).astype(F)
                else:
                    p = rng.uniform(0.01, 0.99, (4, 5)).astype(F)
                v, g = grad_of(lambda pt: cls(from_logits=fl, label_smoothing=ls)(y, pt), p)
                cases.append({"loss": name, "from_logits": fl, "label_smoothing": ls,
                              "y_true": T(y), "y_pred": T(p), "value": f(v), "grad_y_pred": T(g)})
    # Dense(sigmoid) into BCE(label_smoothing=0.2): the cached-logits path of BCE.
    n_in, units, batch = 3, 4, 5
    x = rng.standard_normal((batch, n_in)).astype(F)
    y = rng.integers(0, 2, (batch, units)).astype(F)
    m = keras.Sequential([keras.Input((n_in,)), layers.Dense(units, activation="sigmoid", name="dense")])
    m.set_weights([(rng.standard_normal((n_in, units)) * 0.7).astype(F), (rng.standard_normal(units) * 0.1).astype(F)])
    opt_cfg = {"learning_rate": 0.05}
    training = {"x": T(x), "y_true": T(y), "initial_weights": named(m.trainable_variables),
                "optimizer": {"class_name": "Adam", "config": opt_cfg},
                "steps": train_record(m, x, y, keras.losses.BinaryCrossentropy(label_smoothing=0.2),
                                      make_opt("Adam", opt_cfg), 4)}
    return {"meta": meta("CategoricalCrossentropy / BinaryCrossentropy with label_smoothing (variant), reduction "
                         "sum_over_batch_size. model_training: Dense(sigmoid) output fed to "
                         "BCE(label_smoothing=0.2, from_logits=False): Keras' cached-logits path applies here too."),
            "cases": cases, "model_training": training}


def gen_regularization_layers(rng):
    n_in, hidden, classes, batch = 5, 7, 4, 8
    x = rng.standard_normal((batch, n_in)).astype(F)
    y = rng.integers(0, 2, (batch, classes)).astype(F)
    l1, l2 = 0.03, 0.0
    def model(extra=None):
        ls = [keras.Input((n_in,)), layers.Dense(hidden, activation="tanh", name="d1"),
              layers.ActivityRegularization(l1=l1, l2=l2, name="act_reg")]
        if extra is not None:
            ls.append(extra)
        ls.append(layers.Dense(classes, activation="sigmoid", name="d2"))
        return keras.Sequential(ls)
    m = model()
    W = [(rng.standard_normal((n_in, hidden)) * 0.5).astype(F), (rng.standard_normal(hidden) * 0.1).astype(F),
         (rng.standard_normal((hidden, classes)) * 0.5).astype(F), (rng.standard_normal(classes) * 0.1).astype(F)]
    m.set_weights(W)
    init = named(m.trainable_variables)
    steps = train_record(m, x, y, keras.losses.BinaryCrossentropy(), make_opt("Adam", {"learning_rate": 0.02}), 4)
    mi = model(layers.GaussianNoise(0.2))
    mi.set_weights(W)
    ident = {}
    for name, layer, shape in [("GaussianNoise", layers.GaussianNoise(0.5), (3, 4)),
                               ("GaussianDropout", layers.GaussianDropout(0.4), (3, 4)),
                               ("AlphaDropout", layers.AlphaDropout(0.3), (3, 4)),
                               ("SpatialDropout1D", layers.SpatialDropout1D(0.5), (2, 3, 4)),
                               ("SpatialDropout2D", layers.SpatialDropout2D(0.5), (2, 3, 3, 4)),
                               ("SpatialDropout3D", layers.SpatialDropout3D(0.5), (2, 2, 2, 2, 3)),
                               ("Dropout", layers.Dropout(0.5), (3, 4))]:
        xi = rng.standard_normal(shape).astype(F)
        ident[name] = bool(np.array_equal(layer(xi, training=False).numpy(), xi))
    return {"meta": meta(f"ActivityRegularization(l1, l2) between two Dense layers (variant): its penalty "
                         f"(divided by the batch size) enters reg_losses and the gradients. steps: Adam(0.02), "
                         f"4 eager steps. inference: the model with a GaussianNoise(0.2) layer after act_reg, "
                         f"called with training=False. identity_at_inference: each noise/dropout layer with "
                         f"training=False."),
            "x": T(x), "y_true": T(y), "initial_weights": init, "act_reg": {"l1": l1, "l2": l2},
            "steps": steps, "inference": T(mi(x, training=False).numpy()), "identity_at_inference": ident}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="folder to write (created)")
    ap.add_argument("--seed", type=int, default=20251207)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(os.path.join(a.out, "keras_files"), exist_ok=True)
    with open(os.path.join(a.out, "keras_files", "README.md"), "w") as fh:
        fh.write("A sub-folder the golden runner must leave alone.\n")
    rng = np.random.default_rng(a.seed)
    keras.utils.set_random_seed(a.seed)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    for name, gen in [("regularizers_v2.json", gen_regularizers),
                      ("regularizer_config_v2.json", gen_regularizer_config),
                      ("initializers_v2.json", gen_initializers), ("losses_v2.json", gen_losses),
                      ("dense_step_v2.json", gen_dense_step), ("mlp_fit_v2.json", gen_mlp_fit),
                      ("conv_step_v2.json", gen_conv_step), ("activity_scaling_v2.json", gen_activity_scaling),
                      ("holdout_betas.json", gen_adam_power), ("optimizer_long_v2.json", gen_optimizer_long),
                      ("constraints_v2.json", gen_constraints), ("label_smoothing_v2.json", gen_label_smoothing),
                      ("regularization_layers_v2.json", gen_regularization_layers)]:
        write(a.out, name, gen(rng))


if __name__ == "__main__":
    main()
