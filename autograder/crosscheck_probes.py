"""What the grader's cross-check computes with an implementation of the course API.

This file is run twice per submission: inside the sandbox, as a script, on the
student's notebooks (``python crosscheck_probes.py SEED FD NOTEBOOK...``: it
imports their definitions and writes the values it computed, as an ``.npz``,
to the descriptor FD), and on the host, imported, with the reference. The
host compares (:mod:`autograder.crosscheck`). It holds no answer: only calls
of the API on random inputs.

Every probe takes the implementation namespace and a seeded generator and
returns ``{name: array}``; the keys are the graded tests' grade ids.
"""
from __future__ import annotations

import io
import sys

import numpy as np

#: Which notebooks each group of probes imports (04 builds on 01-03, as its own cells do).
GROUPS = {
    "01_activations.ipynb": ("01_activations.ipynb",),
    "02_fc_layer.ipynb": ("02_fc_layer.ipynb",),
    "03_softmax_cross_entropy.ipynb": ("03_softmax_cross_entropy.ipynb",),
    "04_model_l2.ipynb": ("01_activations.ipynb", "02_fc_layer.ipynb", "03_softmax_cross_entropy.ipynb",
                          "04_model_l2.ipynb"),
}


def _z(rng, scale=3.0):
    """(6, 5) pre-activations away from 0, with the extremes a stable activation must survive."""
    z = rng.normal(0, scale, (6, 5))
    z[np.abs(z) < 1e-3] = 0.5
    z[0, :2] = (-1000.0, 1000.0)
    return z


def _activation(impl, name, rng):
    z, d = _z(rng), rng.normal(size=(6, 5))
    forward = getattr(impl, name)().forward(z.copy())
    layer = getattr(impl, name)()
    layer.forward(z.copy())
    backward = layer.backward(d.copy(), 0.0)
    return forward, backward


def _fc(impl, rng):
    W, b = rng.normal(size=(6, 4)), rng.normal(size=4)
    x, d = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 4))
    layer = impl.FCLayer(6, 4, rng=np.random.default_rng(0), dtype=np.float64)
    layer.W, layer.b = W.copy(), b.copy()
    out = layer.forward(x.copy())
    d_x = layer.backward(d.copy(), 0.1)
    dW, db = np.array(layer.dW, dtype=float), np.array(layer.db, dtype=float)
    # update on its own, from given gradients (as its test does): a wrong backward does not count twice
    fresh = impl.FCLayer(6, 4, rng=np.random.default_rng(0), dtype=np.float64)
    fresh.W, fresh.b = W.copy(), b.copy()
    fresh.dW, fresh.db = rng.normal(size=(6, 4)), rng.normal(size=4)
    fresh.update(0.5)
    return {"forward": out, "input": d_x, "params_W": dW, "params_b": db,
            "update_W": np.array(fresh.W, dtype=float), "update_b": np.array(fresh.b, dtype=float)}


def _softmax_case(rng):
    z = rng.normal(0, 2, (5, 4))
    z[0] = (1000.0, 999.0, -1000.0, 0.0)
    y = np.eye(4)[rng.integers(0, 4, 5)]
    return z, y


def _model(impl, rng):
    from dnn_course.model_builder import build_classifier

    model = build_classifier(impl, [6, 5, 4, 3], "relu", seed=0, dtype=np.float64)
    fc_layers = [layer for layer in model.layers.values() if hasattr(layer, "W")]
    for layer in fc_layers:
        layer.W = rng.normal(0, 0.8, layer.W.shape)
        layer.b = rng.normal(0, 0.1, layer.b.shape)
    x, y = rng.normal(size=(8, 6)), np.eye(3)[rng.integers(0, 3, 8)]
    return model, fc_layers, x, y


def probes(impl, notebook: str, seed: int) -> dict[str, np.ndarray]:
    """``{grade_id/part: value}`` of the graded tests of ``notebook``, computed with ``impl``.

    A probe that raises is recorded as ``{grade_id/error: message}``.
    """
    values: dict[str, np.ndarray] = {}

    def record(grade_id, compute):
        rng = np.random.default_rng([seed, sum(map(ord, grade_id))])
        try:
            with np.errstate(all="ignore"):
                for part, value in compute(rng).items():
                    values[f"{grade_id}/{part}"] = np.asarray(value, dtype=float)
        except Exception as error:  # noqa: BLE001 - the student's code may raise anything
            values[f"{grade_id}/error"] = np.array(f"{type(error).__name__}: {error}"[:300])

    if notebook.startswith("01"):
        for name, short in (("ReLU", "relu"), ("Sigmoid", "sigmoid"), ("Tanh", "tanh")):
            record(f"test_{short}_forward", lambda rng, n=name: {"out": _activation(impl, n, rng)[0]})
            record(f"test_{short}_backward", lambda rng, n=name: {"grad": _activation(impl, n, rng)[1]})
    elif notebook.startswith("02"):
        record("test_fc_forward", lambda rng: {"out": _fc(impl, rng)["forward"]})
        record("test_fc_backward_input", lambda rng: {"dx": _fc(impl, rng)["input"]})
        record("test_fc_backward_params", lambda rng: {k: v for k, v in _fc(impl, rng).items()
                                                       if k.startswith("params")})
        record("test_fc_update", lambda rng: {k: v for k, v in _fc(impl, rng).items() if k.startswith("update")})
    elif notebook.startswith("03"):
        def softmax(rng):
            return {"y_hat": impl.softmax(_softmax_case(rng)[0].copy())}

        def ce(rng):
            z, y = _softmax_case(rng)
            y_hat = np.exp(z - z.max(1, keepdims=True))
            y_hat /= y_hat.sum(1, keepdims=True)
            return {"loss": impl.SoftmaxLayer().ce_loss(y_hat, y)}

        def backward(rng):
            z, y = _softmax_case(rng)
            layer = impl.SoftmaxLayer()
            y_hat = layer.forward(z.copy())
            layer.ce_loss(y_hat, y)
            return {"dx": layer.backward(1, 0.0)}

        record("test_softmax", softmax)
        record("test_ce_loss", ce)
        record("test_softmax_backward", backward)
    elif notebook.startswith("04"):
        def loss(rng):
            model, _, x, y = _model(impl, rng)
            return {"loss": model.forward(x, y, 0.1)}

        def gradients(rng):
            model, fc_layers, x, y = _model(impl, rng)
            model.forward(x, y, 0.1)
            model.backward(0.1)
            return {f"d{j}_{p}": getattr(layer, "d" + p) for j, layer in enumerate(fc_layers) for p in ("W", "b")}

        def learns(rng):
            # what its test asks: training lowers the loss (not: exactly the reference's weights)
            model, fc_layers, x, y = _model(impl, rng)
            before = model.forward(x, y, 0.01)
            for _ in range(10):
                model.forward(x, y, 0.01)
                model.backward(0.01)
                model.update(0.1)
            return {"loss_decreased": float(model.forward(x, y, 0.01) < before)}

        record("test_l2_loss", loss)
        record("test_model_gradient_check", gradients)
        record("test_model_learns", learns)
    return values


def main(argv: list[str]) -> None:
    """Inside the sandbox: ``SEED FD NOTEBOOK...``; writes one ``.npz`` per notebook group to FD."""
    import os

    from dnn_course.notebook_import import import_notebooks

    seed, fd = int(argv[0]), int(argv[1])
    found: dict[str, np.ndarray] = {}
    for notebook in argv[2:]:
        try:
            impl = import_notebooks(*GROUPS[notebook], tolerant=True)  # as the notebook ran, errors allowed
            values = probes(impl, notebook, seed)
        except BaseException as error:  # noqa: BLE001 - an import that fails fails its notebook only
            values = {f"{notebook}/import-error": np.array(f"{type(error).__name__}: {error}"[:300])}
        found.update({f"{notebook}::{key}": value for key, value in values.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **found)
    data = buffer.getvalue()
    with os.fdopen(fd, "wb") as out:
        out.write(len(data).to_bytes(8, "big") + data)
    os._exit(0)  # no student atexit handler runs after the values are written


if __name__ == "__main__":
    main(sys.argv[1:])
