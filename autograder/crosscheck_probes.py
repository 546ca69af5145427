"""What the grader's cross-check computes with an implementation of the course API.

This file is run twice per submission: inside the sandbox, as a script, on the
student's notebooks (``python crosscheck_probes.py SEED FD UNIT...``: it
imports their definitions and writes the values of each graded test, as an
``.npz`` frame, to the descriptor FD as soon as that test is done), and on the
host, imported, with the reference. The host compares
(:mod:`autograder.crosscheck`). It holds no answer: only calls of the API on
random inputs.

Every probe (:data:`PROBES`) takes the implementation namespace and a seeded
generator and returns ``{name: array}``; it is keyed by its graded test's grade
id. Which tests are cross-checked, and which notebooks each imports, the
assignment's description says (:mod:`dnn_course.assignment`).
"""

from __future__ import annotations

import functools
import io
import sys

import numpy as np

from dnn_course.assignment import ASSIGNMENT, Assignment, Scoring


def _z(rng, scale=3.0):
    """(6, 5) pre-activations away from 0, with the extremes a stable activation must survive."""
    z = rng.normal(0, scale, (6, 5))
    z[np.abs(z) < 1e-3] = 0.5
    z[0, :2] = (-1000.0, 1000.0)
    return z


def _activation(impl, name, rng, backward: bool):
    """The forward pass's output, or (``backward``) the backward pass's, of a fresh layer ``name``.

    Each test calls only what it checks: a forward test never runs the backward pass.
    """
    z, d = _z(rng), rng.normal(size=(6, 5))
    layer = getattr(impl, name)()
    out = layer.forward(z.copy())
    return layer.backward(d.copy(), 0.0) if backward else out


def _fc(impl, rng, what: str):
    """``what`` = ``forward``, ``backward`` (forward, then backward) or ``update`` (from given gradients).

    Each test calls only what it checks (the random draws are the same whichever it is).
    """
    W, b = rng.normal(size=(6, 4)), rng.normal(size=4)
    x, d = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 4))
    if what == "update":
        # update on its own, from given gradients (as its test does): a wrong backward does not count twice
        fresh = impl.FCLayer(6, 4, rng=np.random.default_rng(0), dtype=np.float64)
        fresh.W, fresh.b = W.copy(), b.copy()
        fresh.dW, fresh.db = rng.normal(size=(6, 4)), rng.normal(size=4)
        fresh.update(0.5)
        return {"update_W": np.array(fresh.W, dtype=float), "update_b": np.array(fresh.b, dtype=float)}
    layer = impl.FCLayer(6, 4, rng=np.random.default_rng(0), dtype=np.float64)
    layer.W, layer.b = W.copy(), b.copy()
    out = layer.forward(x.copy())
    if what == "forward":
        return {"forward": out}
    d_x = layer.backward(d.copy(), 0.1)
    return {"input": d_x, "params_W": np.array(layer.dW, dtype=float), "params_b": np.array(layer.db, dtype=float)}


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


def _activation_probes() -> dict:
    found = {}
    for name, short in (("ReLU", "relu"), ("Sigmoid", "sigmoid"), ("Tanh", "tanh")):
        found[f"test_{short}_forward"] = lambda impl, rng, n=name: {"out": _activation(impl, n, rng, False)}
        found[f"test_{short}_backward"] = lambda impl, rng, n=name: {"grad": _activation(impl, n, rng, True)}
    return found


def _softmax(impl, rng):
    return {"y_hat": impl.softmax(_softmax_case(rng)[0].copy())}


def _ce(impl, rng):
    z, y = _softmax_case(rng)
    y_hat = np.exp(z - z.max(1, keepdims=True))
    y_hat /= y_hat.sum(1, keepdims=True)
    return {"loss": impl.SoftmaxLayer().ce_loss(y_hat, y)}


def _softmax_backward(impl, rng):
    z, y = _softmax_case(rng)
    layer = impl.SoftmaxLayer()
    y_hat = layer.forward(z.copy())
    layer.ce_loss(y_hat, y)
    return {"dx": layer.backward(1, 0.0)}


def _loss(impl, rng):
    model, _, x, y = _model(impl, rng)
    return {"loss": model.forward(x, y, 0.1)}


def _gradients(impl, rng):
    model, fc_layers, x, y = _model(impl, rng)
    model.forward(x, y, 0.1)
    model.backward(0.1)
    return {f"d{j}_{p}": getattr(layer, "d" + p) for j, layer in enumerate(fc_layers) for p in ("W", "b")}


def _learns(impl, rng):
    # what its test asks: training lowers the loss (not: exactly the reference's weights)
    model, fc_layers, x, y = _model(impl, rng)
    before = model.forward(x, y, 0.01)
    for _ in range(10):
        model.forward(x, y, 0.01)
        model.backward(0.01)
        model.update(0.1)
    return {"loss_decreased": float(model.forward(x, y, 0.01) < before)}


#: ``{grade_id: probe(impl, rng) -> {part: value}}``: what the grader computes for each cross-checked test
#: (:attr:`dnn_course.assignment.Scoring.CROSS_CHECKED`); ``tests/test_assignment.py`` checks that every
#: cross-checked test of the assignment has one, and that there are no others.
PROBES = {
    **_activation_probes(),
    "test_fc_forward": lambda impl, rng: {"out": _fc(impl, rng, "forward")["forward"]},
    "test_fc_backward_input": lambda impl, rng: {"dx": _fc(impl, rng, "backward")["input"]},
    "test_fc_backward_params": lambda impl, rng: {
        k: v for k, v in _fc(impl, rng, "backward").items() if k.startswith("params")
    },
    "test_fc_update": lambda impl, rng: _fc(impl, rng, "update"),
    "test_softmax": _softmax,
    "test_ce_loss": _ce,
    "test_softmax_backward": _softmax_backward,
    "test_l2_loss": _loss,
    "test_model_gradient_check": _gradients,
    "test_model_learns": _learns,
}


def groups(assignment: Assignment = ASSIGNMENT) -> dict[str, tuple[str, ...]]:
    """``{notebook: the notebooks its probes import, in order}`` for every notebook with cross-checked tests.

    A notebook's group is its imports and itself (04 builds on 01-03, as its own cells do).
    """
    return {notebook.name: notebook.group for notebook in assignment.cross_checked}


#: The groups of this course's assignment (what the sandboxed process imports).
GROUPS = groups()


def components(impl, notebook: str, assignment: Assignment = ASSIGNMENT) -> list[tuple[str, object]]:
    """``[(grade_id, compute)]`` of the cross-checked tests of ``notebook``: ``compute(rng) -> {part: value}``.

    In the notebook's order, as the assignment lists them; none for a notebook without any. The list
    does not depend on ``impl``: ``components(None, notebook)`` names them.
    """
    if notebook not in assignment.names:
        return []
    tests = assignment.notebook(notebook).tests_scored(Scoring.CROSS_CHECKED)
    return [(test.grade_id, functools.partial(PROBES[test.grade_id], impl)) for test in tests]


def probe(grade_id: str, compute, seed: int) -> dict[str, np.ndarray]:
    """``{grade_id/part: value}`` of one graded test; ``{grade_id/error: message}`` if it raised.

    Anything the student's code raises (``SystemExit`` and other ``BaseException`` too) is its own
    result; a value that is not numbers (a string, an object) is an error of this test only.
    """
    rng = np.random.default_rng([seed, sum(map(ord, grade_id))])
    try:
        with np.errstate(all="ignore"):
            return {f"{grade_id}/{part}": np.asarray(value, dtype=float) for part, value in compute(rng).items()}
    except BaseException as error:  # noqa: BLE001 - the student's code may raise anything
        return {f"{grade_id}/error": np.array(f"{type(error).__name__}: {error}"[:300])}


def probes(impl, notebook: str, seed: int, assignment: Assignment = ASSIGNMENT) -> dict[str, np.ndarray]:
    """``{grade_id/part: value}`` of every cross-checked test of ``notebook``, computed with ``impl``."""
    values: dict[str, np.ndarray] = {}
    for grade_id, compute in components(impl, notebook, assignment):
        values.update(probe(grade_id, compute, seed))
    return values


def units(notebooks: list[str], assignment: Assignment = ASSIGNMENT) -> list[str]:
    """What the sandboxed process does, in order: ``NOTEBOOK`` (import its group), ``NOTEBOOK::grade_id``."""
    found = []
    for notebook in notebooks:
        found.append(notebook)
        found += [f"{notebook}::{grade_id}" for grade_id, _ in components(None, notebook, assignment)]
    return found


def encode_frame(values: dict[str, np.ndarray]) -> bytes:
    """One record of the stream: 8 bytes of length (big-endian), then an ``.npz`` of ``values``."""
    buffer = io.BytesIO()
    np.savez(buffer, **values)
    data = buffer.getvalue()
    return len(data).to_bytes(8, "big") + data


def main(argv: list[str]) -> None:
    """Inside the sandbox: ``SEED FD UNIT...`` (see :func:`units`); one frame per unit, as each ends.

    A notebook unit imports the notebook's group and writes ``NB::NB/imported`` or
    ``NB::NB/import-error``; after an import error the notebook's tests are skipped (the host
    skips them too). A test unit writes its values (keys ``NB::grade_id/...``). A test whose
    notebook was imported by an earlier process is imported again, silently.
    """
    import os

    from dnn_course.notebook_import import import_notebooks

    seed, fd = int(argv[0]), int(argv[1])
    todo = argv[2:]
    impls: dict[str, object] = {}
    failed: set[str] = set()

    def write(values):
        data = encode_frame(values)
        while data:
            data = data[os.write(fd, data) :]

    def load(notebook):
        try:  # as the notebook ran, errors allowed
            impls[notebook] = import_notebooks(*GROUPS[notebook], tolerant=True)
            return None
        except BaseException as error:  # noqa: BLE001 - an import that fails fails its notebook only
            failed.add(notebook)
            return f"{type(error).__name__}: {error}"[:300]

    for unit in todo:
        notebook, _, grade_id = unit.partition("::")
        if not grade_id:
            error = load(notebook)
            write({f"{notebook}::{notebook}/" + ("import-error" if error else "imported"): np.array(error or "")})
            continue
        if notebook in failed:
            continue
        if notebook not in impls:
            error = load(notebook)
            if error:
                write(
                    {
                        f"{notebook}::{grade_id}/error": np.array(
                            "the notebook's definitions could not be imported: " + error
                        )
                    }
                )
                continue
        compute = dict(components(impls[notebook], notebook))[grade_id]
        write({f"{notebook}::{key}": value for key, value in probe(grade_id, compute, seed).items()})
    os._exit(0)  # no student atexit handler runs after the values are written


if __name__ == "__main__":
    main(sys.argv[1:])
