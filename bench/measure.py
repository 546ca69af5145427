"""What the epoch benchmark measures, one function per quantity (NumPy side).

Every function here runs in the current process with the BLAS thread count
already set by the caller (``threadpoolctl.threadpool_limits``). Times are
wall-clock seconds from ``time.perf_counter``.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence

import numpy as np
from flops import Gemm, epoch_gemms
from threadpoolctl import threadpool_info

__all__ = [
    "CLOCKS",
    "DoNothingModel",
    "blas_description",
    "cpu_name",
    "median_seconds",
    "model_only_epoch_seconds",
    "replay_epoch_gemms",
    "seconds_of",
    "square_gemm_gflops",
]

#: Environment variables that make OpenBLAS pick another kernel or cache blocking.
OPENBLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


#: The two ways to time: elapsed time, or the CPU time of this process (all its threads). With
#: one thread on a machine busy with other jobs, CPU time leaves out the time the process
#: waited for a core; with several threads it also counts the time BLAS threads spin.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def median_seconds(run: Callable[[], object], repeats: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """Median time of ``repeats`` calls of ``run`` (after one untimed call), measured with ``clock``."""
    run()
    times = []
    for _ in range(repeats):
        start = clock()
        run()
        times.append(clock() - start)
    return float(np.median(times))


def seconds_of(run: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    """Time of one call of ``run``, measured with ``clock`` (for runs of seconds, already warm)."""
    start = clock()
    run()
    return clock() - start


def square_gemm_gflops(size: int, dtype, repeats: int = 5, seed: int = 0, clock=time.perf_counter) -> float:
    """Matrix-multiply throughput in GFLOP/s for ``(size, size) @ (size, size)`` in ``dtype``.

    The classic peak measurement: large enough that the BLAS kernel runs at its
    best, ``2 * size**3`` FLOPs per product, median of ``repeats`` products.
    """
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal((size, size)).astype(dtype) for _ in range(2))
    out = np.empty((size, size), dtype=dtype)
    seconds = median_seconds(lambda: np.matmul(a, b, out=out), repeats, clock)
    return 2 * size**3 / seconds / 1e9


def _operands(gemm: Gemm, dtype, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrays for ``gemm`` laid out as the reference passes them (transposes are views)."""

    def operand(rows: int, cols: int, transposed: bool) -> np.ndarray:
        if transposed:  # x.T or W.T: a view of a C-contiguous (cols, rows) array
            return rng.standard_normal((cols, rows)).astype(dtype).T
        return rng.standard_normal((rows, cols)).astype(dtype)

    a = operand(gemm.m, gemm.k, gemm.a_transposed)
    b = operand(gemm.k, gemm.n, gemm.b_transposed)
    return a, b, np.empty((gemm.m, gemm.n), dtype=dtype)


def replay_epoch_gemms(layer_sizes: Sequence[int], n_examples: int, batch_size: int, dtype, seed: int = 0):
    """A function that runs exactly the matrix products of one epoch, and nothing else.

    The same shapes, memory layouts and order as the reference's training steps
    (:func:`flops.epoch_gemms`), written into preallocated outputs: no
    allocation, no element-wise work. Its time is the best the epoch could take
    with this BLAS, the "peak for the epoch's own GEMM shapes".
    """
    rng = np.random.default_rng(seed)
    steps = epoch_gemms(layer_sizes, n_examples, batch_size)
    arrays = {}  # one set of operands per distinct product
    for step in steps:
        for gemm in step:
            if gemm not in arrays:
                arrays[gemm] = _operands(gemm, dtype, rng)
    plan = [arrays[gemm] for step in steps for gemm in step]

    def run() -> None:
        for a, b, out in plan:
            np.matmul(a, b, out=out)

    return run


def model_only_epoch_seconds(
    model,
    x_shuffled: np.ndarray,
    y_shuffled_onehot: np.ndarray,
    batch_size: int,
    learning_rate: float,
    reg_lambda: float,
    clock=time.perf_counter,
) -> float:
    """Time one epoch of ``forward``/``backward``/``update`` alone, on pre-shuffled data.

    ``x_shuffled`` ``(n, d)`` and ``y_shuffled_onehot`` ``(n, C)`` are already in
    the epoch's order and C-contiguous, so each batch is a free, contiguous
    slice: no shuffling, gathering, one-hot encoding or bookkeeping. The
    difference to a ``train()`` epoch is the cost of the training loop itself.
    """
    start = clock()
    for first in range(0, len(x_shuffled), batch_size):
        model.forward(x_shuffled[first : first + batch_size], y_shuffled_onehot[first : first + batch_size], reg_lambda)
        model.backward(reg_lambda)
        model.update(learning_rate)
    return clock() - start


class _Probabilities:
    y_hat = None


class DoNothingModel:
    """The course model API with no work in it: ``train()`` with this model times the loop alone.

    ``forward`` hands back the batch's one-hot labels as its "probabilities", so
    the loop's bookkeeping (loss, argmax, accuracy count) runs on real arrays of
    the right shape.
    """

    def __init__(self):
        self.layers = {}
        self.softmax_layer = _Probabilities()

    def forward(self, x, y, reg_lambda):
        self.softmax_layer.y_hat = y
        return 0.0

    def backward(self, reg_lambda):
        pass

    def update(self, learning_rate):
        pass


def blas_description() -> dict:
    """Which BLAS NumPy uses here and which kernel it chose (threadpoolctl), plus the OpenBLAS variables."""
    pools = [
        {
            key: pool.get(key)
            for key in ("internal_api", "version", "architecture", "num_threads", "threading_layer", "filepath")
        }
        for pool in threadpool_info()
        if pool.get("user_api") == "blas"
    ]
    for pool in pools:
        pool["filepath"] = os.path.basename(pool["filepath"] or "")
    return {"pools": pools, "environment": {name: os.environ.get(name) for name in OPENBLAS_ENV}}


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
