"""The matrix products of one training epoch of a fully-connected network, and their FLOPs.

How the FLOPs are counted: only the matrix products, the work that any
implementation of the same network must do. A product of an ``(m, k)`` and a
``(k, n)`` matrix is ``2 * m * k * n`` floating-point operations (one multiply
and one add per term). For a mini-batch of ``b`` examples and a layer with
``fan_in`` inputs and ``fan_out`` outputs:

* forward ``x @ W``:       ``2 * b * fan_in * fan_out``
* weight gradient ``x.T @ d``: ``2 * b * fan_in * fan_out``
* input gradient ``d @ W.T``:  ``2 * b * fan_in * fan_out``, for every layer but
  the first: nothing upstream of the first layer needs it, and both the
  reference (``FCLayer.compute_input_gradient``) and PyTorch skip it.

Biases, activations, softmax, the loss, the L2 term and the SGD update are
element-wise, ``O(b * width)`` or ``O(weights)``, and are not counted.
For 784-500-500-10 this is 3,098,000 FLOPs per example, 185.88 GFLOP per
epoch of 60,000 examples (232.92 GFLOP if the first layer's input gradient
were computed too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["Gemm", "batch_sizes", "epoch_flops", "epoch_gemms", "step_gemms"]


class Gemm(NamedTuple):
    """One matrix product ``C (m, n) = op(A) (m, k) @ op(B) (k, n)`` of a training step.

    ``a_transposed``/``b_transposed`` say whether the operand is the transpose of
    a C-contiguous array (``x.T``, ``W.T``), as the reference passes it to BLAS.
    """

    name: str
    m: int
    k: int
    n: int
    a_transposed: bool
    b_transposed: bool

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


def batch_sizes(n_examples: int, batch_size: int) -> list[int]:
    """Sizes of the mini-batches of one epoch; the last, smaller batch is kept (as in ``train``)."""
    if n_examples < 0 or batch_size < 1:
        raise ValueError(f"need n_examples >= 0 and batch_size >= 1, got {n_examples} and {batch_size}")
    full, rest = divmod(n_examples, batch_size)
    return [batch_size] * full + ([rest] if rest else [])


def step_gemms(layer_sizes: Sequence[int], batch: int, *, first_input_gradient: bool = False) -> list[Gemm]:
    """The matrix products of one SGD step on a batch of ``batch`` examples, in execution order."""
    sizes = list(layer_sizes)
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs an input and an output size, got {sizes}")
    layers = list(zip(sizes[:-1], sizes[1:], strict=False))
    gemms = [
        Gemm(f"fc{i}.forward x@W", batch, fan_in, fan_out, False, False)
        for i, (fan_in, fan_out) in enumerate(layers, start=1)
    ]
    for i, (fan_in, fan_out) in reversed(list(enumerate(layers, start=1))):
        gemms.append(Gemm(f"fc{i}.dW x.T@d", fan_in, batch, fan_out, True, False))
        if i > 1 or first_input_gradient:
            gemms.append(Gemm(f"fc{i}.dx d@W.T", batch, fan_out, fan_in, False, True))
    return gemms


def epoch_gemms(layer_sizes: Sequence[int], n_examples: int, batch_size: int, **kwargs) -> list[list[Gemm]]:
    """One list of :func:`step_gemms` per mini-batch of the epoch."""
    return [step_gemms(layer_sizes, b, **kwargs) for b in batch_sizes(n_examples, batch_size)]


def epoch_flops(layer_sizes: Sequence[int], n_examples: int, batch_size: int, **kwargs) -> int:
    """Useful FLOPs of one epoch: the sum of ``2 m k n`` over its matrix products (see the module docstring)."""
    return sum(g.flops for step in epoch_gemms(layer_sizes, n_examples, batch_size, **kwargs) for g in step)
