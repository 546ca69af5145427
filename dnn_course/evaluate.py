"""Measuring a saved model with the course's own forward pass (never the student's code).

Grading measures the weights a student submitted (read by
:func:`dnn_course.records.read_weights`, measured by
:mod:`dnn_course.experiment_grades`), so that a model is judged on what it does,
not on what its notebook printed or on the student's ``predict``. The forward pass here is plain NumPy, finite for any finite weights:
``A_0 = X``; ``Z_l = A_{l-1} W_l + b_l``; ``A_l = g(Z_l)`` for the hidden
layers; the predicted class is the argmax of the last layer's scores
(softmax does not change the argmax).
"""

from __future__ import annotations

import numpy as np

from .records import RecordError

__all__ = ["ACTIVATIONS", "predict_classes"]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # sigma(z) = (1 + tanh(z / 2)) / 2: an identity with no exponential, finite and warning-free for any z.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


ACTIVATIONS = {"relu": lambda z: np.where(z > 0, z, 0), "sigmoid": _sigmoid, "tanh": np.tanh}


def predict_classes(
    layers: list[tuple[np.ndarray, np.ndarray]], activation: str, x: np.ndarray, batch_size: int = 2000
) -> np.ndarray:
    """Class predictions ``(n,)`` for images ``x`` ``(n, 28, 28)`` or ``(n, 784)``.

    ``layers``: ``[(W_1, b_1), ...]`` with ``W_l``: ``(d_{l-1}, d_l)``, ``b_l``: ``(d_l,)``.
    """
    if activation not in ACTIVATIONS:
        raise RecordError(f"unknown activation {activation!r}: expected one of {sorted(ACTIVATIONS)}")
    g = ACTIVATIONS[activation]
    dtype = layers[0][0].dtype
    x = np.asarray(x).reshape(len(x), -1)
    out = np.empty(len(x), dtype=np.int64)
    with np.errstate(over="ignore", under="ignore"):
        for start in range(0, len(x), batch_size):
            a = x[start : start + batch_size].astype(dtype)
            for index, (W, b) in enumerate(layers):
                a = a @ W + b
                if index < len(layers) - 1:
                    a = g(a)
            out[start : start + batch_size] = np.argmax(a, axis=1)
    return out
