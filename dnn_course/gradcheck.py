"""Numerical gradient checks by centred differences, in float64.

The centred difference ``(f(x + h) - f(x - h)) / (2 h)`` with the step ``h``
(:data:`STEP`, the book's $h$) has an error of order ``h**2`` from the Taylor
series and ``machine_eps * |f| / h`` from rounding; with float64 and
``h = 1e-5`` both are around 1e-10 relative, so a
correct analytic gradient agrees to about 1e-7 or better, and a wrong one (a
missing ``1 / batch_size``, a forgotten L2 term, a transposed product) is off by
far more. In float32 the rounding term alone is about 1e-2, in the bug band
below, so every check here insists on float64. (The step ``h`` is not the
book's epsilon, ``EPS = 1e-10`` inside the cross-entropy's logarithm.)

Relative error (see :func:`relative_error`) is measured against the largest
magnitude of the two arrays, so entries that are zero or tiny (ReLU's dead
units, for example) do not blow it up.

The course's one rule for reading it (float64, ``h = 1e-5``), used by the
book, the exercises' tests and :func:`verdict`: below ``PASS_BELOW = 1e-7`` the
analytic gradient is right; above ``BUG_ABOVE = 1e-4`` it is wrong, unless the
check itself was not in float64 (float32 rounding alone gives about 1e-2) or a
ReLU input lies within ``h`` of 0; in between, look closer (the epsilon inside
the loss's logarithm, a tiny gradient) before calling it a bug.
The exercises' tests fail anything that does not pass: on their inputs a
correct gradient agrees to 1e-9 or better.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

__all__ = [
    "BUG_ABOVE",
    "PASS_BELOW",
    "STEP",
    "check_layer_gradients",
    "check_model_gradients",
    "numerical_gradient",
    "relative_error",
    "verdict",
]

#: The step h of the centred differences (float64); not the loss's EPS = 1e-10.
STEP = 1e-5
#: A relative error below this (float64, h = STEP) means the analytic gradient is right.
PASS_BELOW = 1e-7
#: A relative error above this means the analytic gradient is wrong.
BUG_ABOVE = 1e-4


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = STEP) -> np.ndarray:
    """Centred-difference gradient of a scalar function, one entry at a time.

    ``x`` is perturbed in place (``x[i] += h``, ``x[i] -= h``) and every
    entry is restored to its exact original value afterwards, even if ``f``
    raises. ``f`` may therefore ignore its argument and read an array it shares
    with ``x`` (a layer's ``W``, for instance), but it must not change it: a
    function that writes into its argument (an in-place softmax, say) would
    silently destroy the perturbations, so that raises ``ValueError`` instead
    of returning a meaningless gradient.

    Args:
        f: ``f(x) -> float``, a scalar function of the array.
        x: float64 array of any shape ``s``; modified during the call, restored after.
        h: the step of the centred difference (:data:`STEP`).

    Returns:
        float64 array of shape ``s``: ``df/dx``.
    """
    _require_float64(x, "x")
    return _partials(f, x, np.arange(x.size), h, guard=True).reshape(x.shape)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Relative difference of two arrays, scaled by their largest magnitude.

    ``max_i |a_i - b_i| / max(max_i (|a_i| + |b_i|), tiny)`` with ``tiny`` the
    smallest positive float64. This is the max-norm form, not the elementwise
    ``max_i (|a_i - b_i| / (|a_i| + |b_i|))``: an entry that should be 0 but comes
    out as 1e-12 is harmless here instead of giving an error of 1. Two all-zero
    arrays give 0. How to read it: :func:`verdict` (below 1e-7 is right, above
    1e-4 is a bug).

    Args:
        a, b: arrays of the same shape (any shape).

    Returns:
        A float in [0, 1] (NaN if either array holds NaN).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error needs arrays of the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    scale = np.max(np.abs(a) + np.abs(b))
    return float(np.max(np.abs(a - b)) / max(scale, np.finfo(np.float64).tiny))


def verdict(error: float) -> str:
    """The course's reading of a relative error: ``"pass"``, ``"look closer"`` or ``"bug"`` (NaN is a bug)."""
    if error < PASS_BELOW:
        return "pass"
    if error <= BUG_ABOVE:
        return "look closer"
    return "bug"


def check_layer_gradients(layer, x: np.ndarray, *, reg_lambda: float = 0.0, seed: int = 0) -> dict[str, float]:
    """Compare a layer's ``backward`` with numerical gradients.

    For an ordinary layer (activation or FCLayer) the checked scalar is
    ``L = sum(layer.forward(x) * d_out) + (reg_lambda / 2) * sum(W**2)`` with a
    random upstream gradient ``d_out`` (standard normal, shape of the output;
    the L2 term only for layers with ``W``), so ``layer.backward(d_out,
    reg_lambda)`` must return ``dL/dx`` and set ``dW = dL/dW`` (including
    ``reg_lambda * W``) and ``db = dL/db``.

    A softmax layer (one with ``ce_loss``) is checked as the brief defines it:
    ``L = layer.ce_loss(layer.forward(x), y)`` for random one-hot labels ``y``,
    and ``layer.backward(y, reg_lambda)`` must return ``dL/dx`` (the labels are
    passed as ``d_prev`` and were given to ``ce_loss`` just before, so either
    convention of the softmax backward works).

    The layer's weights and cached values are left as they were after one
    ``forward(x)``; ``dW`` and ``db`` hold the analytic gradients.

    Args:
        layer: any course layer, with ``W`` and ``b`` (if any) in float64.
        x: input, shape ``(batch, ...)``; converted to float64. Keep its
            entries away from kinks (ReLU at 0) by more than STEP.
        reg_lambda: L2 strength passed to ``backward``.
        seed: seeds ``d_out`` (or the labels).

    Returns:
        ``{"x": err}`` plus ``"W"`` and ``"b"`` for layers that have them, each a
        :func:`relative_error` of analytic against numerical gradient. ``"x"`` is
        left out when ``backward`` returns ``None`` (a first layer may skip dE/dx).
    """
    x = np.array(x, dtype=np.float64)  # our own copy, perturbed in place below
    params = {name: getattr(layer, name) for name in ("W", "b") if hasattr(layer, name)}
    for name, value in params.items():
        _require_float64(value, f"{type(layer).__name__}.{name}", hint="create the layer with dtype=np.float64")
    rng = np.random.default_rng(seed)

    if hasattr(layer, "ce_loss"):
        y_hat = layer.forward(x)
        upstream = np.eye(y_hat.shape[1])[rng.integers(0, y_hat.shape[1], len(y_hat))]

        def scalar(_):
            return float(layer.ce_loss(layer.forward(x), upstream))
    else:
        upstream = rng.standard_normal(np.shape(layer.forward(x)))
        w = params.get("W")

        def scalar(_):
            value = float(np.sum(layer.forward(x) * upstream))
            if w is not None:
                value += reg_lambda / 2 * float(np.sum(w**2))
            return value

    scalar(x)  # a forward pass (and, for softmax, ce_loss: its backward may use the stored labels)
    d_x = layer.backward(upstream, reg_lambda)
    analytic = {} if d_x is None else {"x": np.asarray(d_x, dtype=np.float64)}
    for name in params:
        analytic[name] = np.array(getattr(layer, "d" + name), dtype=np.float64)

    errors = {}
    for name, value in [("x", x), *params.items()]:
        if name not in analytic:
            continue
        numeric = numerical_gradient(scalar, value)
        errors[name] = relative_error(_as_shape(analytic[name], value.shape, "d" + name), numeric)
    layer.forward(x)  # leave the caches as after an ordinary forward pass
    return errors


def check_model_gradients(
    model,
    x: np.ndarray,
    y_onehot: np.ndarray,
    *,
    reg_lambda: float,
    params: Iterable[str] | None = None,
    max_entries_per_param: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Compare the gradients of a whole model with numerical ones of its loss.

    The scalar is ``model.forward(x, y_onehot, reg_lambda)`` (cross-entropy plus
    the L2 term); the analytic gradients are the layers' ``dW`` and ``db`` after
    ``model.backward(reg_lambda)``. A loss whose L2 term disagrees with the
    ``reg_lambda * W`` of the gradient (the original template's spectral-norm
    bug) shows up here as a large error on every ``W``.

    Args:
        model: a ``ClassifierModel``; its layers with ``W`` (the fully-connected
            ones) must be float64.
        x: inputs, shape ``(batch, ...)``; converted to float64.
        y_onehot: one-hot labels, shape ``(batch, C)``.
        reg_lambda: L2 strength.
        params: which parameters to check, as ``"fc1.W"``, ``"fc1.b"`` or a whole
            layer ``"fc1"``; default all of them.
        max_entries_per_param: check at most this many randomly chosen entries of
            each parameter (``None``: all). Each entry costs two forward passes.
        seed: seeds the choice of entries.

    Returns:
        ``{"fc1.W": err, "fc1.b": err, ...}``, :func:`relative_error` of analytic
        against numerical gradient over the checked entries.
    """
    x = np.asarray(x, dtype=np.float64)
    y_onehot = np.asarray(y_onehot, dtype=np.float64)
    available = {}
    for layer_name, layer in model.layers.items():
        for attr in ("W", "b"):
            if hasattr(layer, attr):
                available[f"{layer_name}.{attr}"] = (layer, attr)
    if not available:
        raise ValueError("the model has no layers with weights W and b to check")
    selected = _select(params, available)
    for key in selected:
        layer, attr = available[key]
        _require_float64(getattr(layer, attr), key, hint="build the model with dtype=np.float64")

    model.forward(x, y_onehot, reg_lambda)
    model.backward(reg_lambda)
    analytic = {key: np.array(getattr(layer, "d" + attr), dtype=np.float64) for key, (layer, attr) in available.items()}

    def loss(_):
        return float(model.forward(x, y_onehot, reg_lambda))

    rng = np.random.default_rng(seed)
    errors = {}
    for key in selected:
        layer, attr = available[key]
        value = getattr(layer, attr)
        flat = np.arange(value.size)
        if max_entries_per_param is not None and max_entries_per_param < value.size:
            flat = np.sort(rng.choice(value.size, size=max_entries_per_param, replace=False))
        numeric = _partials(loss, value, flat, STEP)
        grad = _as_shape(analytic[key], value.shape, f"{key} gradient")
        errors[key] = relative_error(grad.reshape(-1)[flat], numeric)
    return errors


def _partials(
    f: Callable[[np.ndarray], float], x: np.ndarray, flat_indices: np.ndarray, h: float, guard: bool = False
) -> np.ndarray:
    """Centred differences of ``f`` for the entries ``flat_indices`` of ``x`` (C order).

    Returns float64 of shape ``(len(flat_indices),)``; ``x`` is restored exactly.
    ``guard``: also check after every entry that ``f`` left the rest of ``x``
    alone (one comparison of ``x`` per entry), and raise ``ValueError`` if not.
    """
    result = np.empty(len(flat_indices), dtype=np.float64)
    snapshot = x.copy() if guard else None
    for k, flat in enumerate(flat_indices):
        index = np.unravel_index(flat, x.shape)
        original = x[index]
        try:
            x[index] = original + h
            f_plus = float(f(x))
            x[index] = original - h
            f_minus = float(f(x))
        finally:
            x[index] = original
            if snapshot is not None and not np.array_equal(x, snapshot, equal_nan=True):
                x[...] = snapshot
                raise ValueError(
                    "the function given to numerical_gradient changed its argument in place (for example a "
                    "forward pass or softmax that writes into its input), which destroys the perturbations; "
                    "it must leave its input unchanged (work on a copy)."
                )
        result[k] = (f_plus - f_minus) / (2 * h)
    return result


def _select(params: Iterable[str] | None, available: dict) -> list[str]:
    if params is None:
        return list(available)
    if isinstance(params, str):
        params = [params]
    selected = []
    for name in params:
        matches = [key for key in available if key == name or key.split(".")[0] == name]
        if not matches:
            raise KeyError(f"no parameter {name!r} in the model; choose from {sorted(available)}")
        selected.extend(m for m in matches if m not in selected)
    return selected


def _require_float64(array, name: str, hint: str = "convert it with .astype(np.float64)") -> None:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array that can be perturbed in place, got {type(array).__name__}")
    if array.dtype != np.float64:
        raise TypeError(
            f"{name} is {array.dtype}, but gradient checks need float64 (in float32 the rounding "
            f"error of a centred difference is about 1e-2 and hides real bugs); {hint}"
        )


def _as_shape(gradient: np.ndarray, shape: tuple, name: str) -> np.ndarray:
    if gradient.size != int(np.prod(shape)):
        raise ValueError(f"{name} has shape {gradient.shape}, but the value it belongs to has shape {shape}")
    return gradient.reshape(shape)
