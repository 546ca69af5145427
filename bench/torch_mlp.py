"""The same network and SGD epoch in PyTorch (CPU), for the side-by-side comparison.

Only imported by the PyTorch worker of ``bench_epoch.py``, and only when
``torch`` is installed (``pip install torch==2.13.0``, the CPU build).

Kept equal to the reference run: the same initial weights (copied from the
reference model), the same batch order (one ``np.random.default_rng(seed)``
permutation, as ``dnn_course.training.train`` draws it), the same batch size,
plain SGD with the same learning rate, and L2 on the weights only (``weight_decay
= reg_lambda`` on the weight matrices, 0 on the biases, which is exactly the
gradient ``reg_lambda * W`` of the brief's ``(reg_lambda / 2) * sum ||W||^2``;
the reported loss is the mean cross-entropy without that term, which at
lambda = 1e-8 changes it by less than 1e-6). Like ``train()``, each step also
counts the correct predictions of its batch.
"""

from __future__ import annotations

import re
import time

import numpy as np
import torch
from measure import median_seconds
from torch import nn
from torch.nn import functional

__all__ = [
    "ACTIVATIONS",
    "TORCH_DTYPES",
    "describe_torch",
    "mlp_from_reference",
    "square_mm_gflops",
    "torch_accuracy",
    "torch_epoch",
]

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


#: The course's activation layers (by ``summary()``) and their PyTorch modules.
ACTIVATIONS = {"ReLU": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh}


def mlp_from_reference(reference_model, dtype: torch.dtype) -> nn.Sequential:
    """``nn.Linear`` + activation layers holding copies of the reference model's weights.

    ``reference_model.layers`` alternates ``FCLayer`` (``W`` ``(fan_in, fan_out)``,
    ``b`` ``(fan_out,)``) and an activation (ReLU, Sigmoid or Tanh, told apart by
    ``summary()``); ``nn.Linear`` stores ``weight`` as ``(fan_out, fan_in)``.
    """
    modules = []
    for layer in reference_model.layers.values():
        if hasattr(layer, "W"):
            fan_in, fan_out = layer.W.shape
            linear = nn.Linear(fan_in, fan_out, dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.W.T)))
                linear.bias.copy_(torch.from_numpy(layer.b))
            modules.append(linear)
        else:
            modules.append(ACTIVATIONS[layer.summary()]())
    return nn.Sequential(*modules)


def torch_epoch(
    model: nn.Sequential,
    x: torch.Tensor,
    y: torch.Tensor,
    order: torch.Tensor,
    *,
    batch_size: int,
    learning_rate: float,
    reg_lambda: float,
) -> tuple[float, float]:
    """One SGD epoch over ``x`` ``(n, d)``, ``y`` ``(n,)`` int64 in the order ``order`` ``(n,)``.

    Returns ``(mean loss, accuracy on the batches as trained)``; the caller times it.
    """
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    optimizer = torch.optim.SGD(
        [{"params": weights, "weight_decay": reg_lambda}, {"params": biases, "weight_decay": 0.0}], lr=learning_rate
    )
    loss_sum, n_correct = 0.0, 0
    for first in range(0, len(order), batch_size):
        indices = order[first : first + batch_size]
        x_batch, y_batch = x.index_select(0, indices), y.index_select(0, indices)
        optimizer.zero_grad(set_to_none=True)
        scores = model(x_batch)
        loss = functional.cross_entropy(scores, y_batch)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(indices)
        n_correct += int((scores.argmax(dim=1) == y_batch).sum())
    return loss_sum / len(order), n_correct / len(order)


def torch_accuracy(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Accuracy of ``model`` on ``x`` ``(n, d)``, ``y`` ``(n,)``, ``batch_size`` examples at a time (as ``accuracy()``)."""
    correct = 0
    with torch.no_grad():
        for first in range(0, len(y), batch_size):
            scores = model(x[first : first + batch_size])
            correct += int((scores.argmax(dim=1) == y[first : first + batch_size]).sum())
    return correct / len(y)


def square_mm_gflops(size: int, dtype: torch.dtype, repeats: int = 5, clock=time.perf_counter) -> float:
    """PyTorch's matrix-multiply throughput for ``(size, size) @ (size, size)``, GFLOP/s (median)."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, dtype=dtype, generator=generator) for _ in range(2))
    out = torch.empty(size, size, dtype=dtype)
    return 2 * size**3 / median_seconds(lambda: torch.mm(a, b, out=out), repeats, clock) / 1e9


def describe_torch() -> dict:
    """PyTorch's version, threads, BLAS and CPU kernels."""
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return {
        "version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "blas": blas.group(1) if blas else "unknown",
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
