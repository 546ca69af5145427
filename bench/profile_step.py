"""Where a training step's time goes: the time of every layer method, per step.

``profile_steps`` wraps ``forward``, ``backward`` and ``update`` of each layer of
a course ``ClassifierModel`` (and ``forward``, ``ce_loss`` and ``backward`` of its
softmax layer) with a timer, runs whole training steps, and reports the mean
time of each wrapped call per step. What is left of the step's time is the
model's own code between the layers (the loop over layers, the L2 term of
the loss). Minor page faults (``ru_minflt``) per step show temporary arrays
that the memory allocator takes from, and gives back to, the operating system
at every step.
"""

from __future__ import annotations

import resource
import time
from collections import defaultdict

import numpy as np

__all__ = ["profile_steps"]


def _timed(method, label: str, totals: dict, clock):
    def wrapper(*args, **kwargs):
        start = clock()
        result = method(*args, **kwargs)
        totals[label] += clock() - start
        return result

    return wrapper


def profile_steps(
    model,
    x_batches: np.ndarray,
    y_batches: np.ndarray,
    *,
    learning_rate: float,
    reg_lambda: float,
    rounds: int = 5,
    clock=time.perf_counter,
) -> dict:
    """Mean seconds per training step of each layer method, over ``rounds`` passes over the batches.

    Args:
        model: a course ``ClassifierModel``; it is trained by the steps, and its
            methods are restored afterwards.
        x_batches: ``(n_batches, batch, d)`` inputs; y_batches: ``(n_batches, batch, C)`` one-hot labels.
        learning_rate, reg_lambda: as in training.
        rounds: passes over the batches (after one untimed pass).
        clock: ``time.perf_counter`` or ``time.process_time``.

    Returns:
        ``{"step": s, "parts": {"fc1.forward": s, ...}, "between_layers": s, "minor_faults_per_step": f}``.
    """
    totals: dict[str, float] = defaultdict(float)
    targets = [
        (f"{name}.{method}", layer, method)
        for name, layer in model.layers.items()
        for method in ("forward", "backward", "update")
    ]
    targets += [(f"softmax.{method}", model.softmax_layer, method) for method in ("forward", "ce_loss", "backward")]

    def step(x, y):
        model.forward(x, y, reg_lambda)
        model.backward(reg_lambda)
        model.update(learning_rate)

    for x, y in zip(x_batches, y_batches, strict=False):  # warm-up, untimed
        step(x, y)
    for label, layer, method in targets:  # instance attributes shadow the class's methods
        setattr(layer, method, _timed(getattr(layer, method), label, totals, clock))
    try:
        faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = clock()
        for _ in range(rounds):
            for x, y in zip(x_batches, y_batches, strict=False):
                step(x, y)
        total = clock() - start
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    finally:
        for _, layer, method in targets:
            delattr(layer, method)
    n_steps = rounds * len(x_batches)
    parts = {label: totals[label] / n_steps for label, _, _ in targets}
    return {
        "step": total / n_steps,
        "parts": parts,
        "between_layers": total / n_steps - sum(parts.values()),
        "minor_faults_per_step": faults / n_steps,
    }
