"""The mini-batch SGD training loop of the original homework's ``main.py``.

``train(model, x_train, y_train, ...)`` runs plain stochastic gradient descent on
any model with the course API (``forward(x, y_onehot, reg_lambda) -> loss``,
``backward(reg_lambda)``, ``update(learning_rate)``, ``predict(x) -> (n, C)``
probabilities, and a ``softmax_layer`` whose ``y_hat`` holds the last forward
pass's probabilities). It returns a :class:`History` that can be saved as JSON.

Shapes used throughout: ``n`` examples, ``d`` features per example (784 for
28x28 images), ``C`` classes (``num_classes``, 10 for MNIST).

Threads: ``train`` runs NumPy's matrix products (BLAS) on :data:`DEFAULT_THREADS`
thread unless told otherwise, by its ``threads=`` argument or, for every call at
once (the experiment notebooks), by the environment variable ``DNN_COURSE_THREADS``
(see :func:`blas_threads`).
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from .datasets import one_hot

__all__ = [
    "DEFAULT_THREADS",
    "THREADS_VARIABLE",
    "History",
    "TrainingDivergedError",
    "accuracy",
    "blas_threads",
    "train",
]

#: BLAS threads of :func:`train` when neither ``threads=`` nor ``DNN_COURSE_THREADS`` says otherwise.
#: One, because the course's mini-batch products (128 x 784 by 784 x 500) are too small to
#: gain much from a second thread on an idle machine, while on a busy one OpenBLAS's
#: threads wait for each other by spinning: measured on a 2-core machine (bench/bench_experiment.py),
#: one thread is about as fast as two when idle and several times faster under load.
DEFAULT_THREADS = 1
#: The environment variable that sets the BLAS threads of every :func:`train` call.
THREADS_VARIABLE = "DNN_COURSE_THREADS"


def blas_threads(threads: int | None = None) -> int:
    """The number of BLAS threads :func:`train` uses.

    ``threads`` if given, else the environment variable ``DNN_COURSE_THREADS``
    (read at each call, so ``%env DNN_COURSE_THREADS=2`` in a notebook works), else
    :data:`DEFAULT_THREADS`. Raises ``ValueError`` for anything but a positive integer.
    """
    source = "threads"
    if threads is None:
        value = os.environ.get(THREADS_VARIABLE, "").strip()
        if not value:
            return DEFAULT_THREADS
        source, threads = f"the environment variable {THREADS_VARIABLE}", value
    try:
        number = int(threads)
        valid = number >= 1 and float(threads) == number
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            f"{source} must be a positive whole number of BLAS threads (1 or 2 on a laptop), got {threads!r}"
        )
    return number


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite.

    Attributes ``epoch`` and ``batch`` are 1-based; ``loss`` is the offending value.
    """

    def __init__(self, message: str, *, epoch: int, batch: int, loss: float):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.loss = loss


@dataclass
class History:
    """What happened during one call of :func:`train`.

    Per-epoch lists all have one entry per completed epoch.

    Attributes:
        train_loss: mean mini-batch loss of each epoch (cross-entropy plus the L2
            term, as returned by ``model.forward``), weighted by batch size.
        train_acc: training accuracy of each epoch, measured on the mini-batches
            as they were trained (a running accuracy, as Keras reports it; it
            costs nothing extra but lags the end-of-epoch weights slightly).
        val_acc: validation accuracy after each epoch; empty without validation data.
        test_acc: test accuracy after the last epoch; ``None`` without test data.
        epoch_seconds: wall-clock seconds of the training part of each epoch
            (mini-batch forward/backward/update, not the evaluation afterwards).
        config: the settings of the run (epochs, learning rate, batch size, ...).
        data_description: which data the run used, e.g. the ``description`` of
            ``dnn_course.datasets.load_dataset``'s result. Set it: every result
            must say which data it ran on.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    test_acc: float | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    data_description: str = ""

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.train_loss)

    @property
    def best_val_acc(self) -> float | None:
        """Highest validation accuracy over the epochs, ``None`` without validation."""
        return max(self.val_acc) if self.val_acc else None

    @property
    def best_epoch(self) -> int | None:
        """1-based epoch of :attr:`best_val_acc` (the first one on ties)."""
        return int(np.argmax(self.val_acc)) + 1 if self.val_acc else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (plain lists, floats and strings)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Rebuild a History from :meth:`to_dict`'s output (e.g. loaded from JSON)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"History.from_dict got unknown keys {sorted(unknown)}; expected a subset of {sorted(known)}"
            )
        test_acc = data.get("test_acc")
        return cls(
            train_loss=[float(v) for v in data.get("train_loss", [])],
            train_acc=[float(v) for v in data.get("train_acc", [])],
            val_acc=[float(v) for v in data.get("val_acc", [])],
            test_acc=None if test_acc is None else float(test_acc),
            epoch_seconds=[float(v) for v in data.get("epoch_seconds", [])],
            config=dict(data.get("config", {})),
            data_description=str(data.get("data_description", "")),
        )


def accuracy(model, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
    """Fraction of examples whose most probable class is the label.

    Predicts ``batch_size`` examples at a time so memory stays bounded.

    Args:
        model: has ``predict(x_batch) -> (batch, C)`` class probabilities (or scores).
        x: inputs, shape ``(n, ...)`` (``(n, 28, 28)`` or ``(n, 784)``), in the
            dtype the model expects.
        y: integer labels, shape ``(n,)``.
        batch_size: examples per ``predict`` call.

    Returns:
        Accuracy in [0, 1]; NaN for an empty set.
    """
    y = _check_labels(y, "y")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)} labels")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    if len(y) == 0:
        return float("nan")
    correct = 0
    for start in range(0, len(y), batch_size):
        probs = model.predict(x[start : start + batch_size])
        correct += int(np.count_nonzero(np.argmax(probs, axis=1) == y[start : start + batch_size]))
    return correct / len(y)


def train(
    model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int = 128,
    reg_lambda: float = 0.0,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    seed: int = 0,
    progress: bool = True,
    dtype=np.float32,
    num_classes: int = 10,
    data_description: str = "",
    threads: int | None = None,
) -> History:
    """Train ``model`` with mini-batch SGD and return its :class:`History`.

    Each epoch shuffles the training set with one permutation drawn from
    ``np.random.default_rng(seed)`` and visits it in mini-batches of
    ``batch_size`` (the last, smaller batch is kept). For every batch:
    ``loss = model.forward(x_b, y_b_onehot, reg_lambda)``, ``model.backward(reg_lambda)``,
    ``model.update(learning_rate)``. Same model, data and seed give the same History
    (apart from ``epoch_seconds``).

    Args:
        model: a course ``ClassifierModel`` (or anything with its API).
        x_train: shape ``(n, 28, 28)`` or ``(n, d)``; cast once to ``dtype``
            and flattened to ``(n, d)``.
        y_train: integer labels, shape ``(n,)``, values in ``[0, num_classes)``.
        epochs: number of passes over the training set (0 only evaluates).
        learning_rate: SGD step size.
        batch_size: examples per mini-batch.
        reg_lambda: L2 strength passed to ``forward`` and ``backward``.
        x_val, y_val: optional validation set, shapes like ``x_train``/``y_train``;
            accuracy after every epoch.
        x_test, y_test: optional test set; accuracy once, after the last epoch.
        seed: seeds the shuffling.
        progress: show a tqdm bar over epochs (loss and accuracies as postfix).
        dtype: floating dtype of the data fed to the model; match the model's
            weights (``build_classifier(..., dtype=...)``) or NumPy upcasts.
        num_classes: ``C``, the width of the one-hot labels.
        data_description: stored in ``History.data_description``.
        threads: BLAS threads for the products of this run (the evaluation included);
            default: ``DNN_COURSE_THREADS`` if set, else :data:`DEFAULT_THREADS` (1).
            See :func:`blas_threads`.

    Returns:
        The run's History.

    Raises:
        TrainingDivergedError: the loss became NaN or infinite (names epoch and batch).
        ValueError: inconsistent shapes, labels or settings.
    """
    epochs, batch_size = int(epochs), int(batch_size)
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise ValueError(f"dtype must be a floating type such as np.float32, got {dtype!r}")

    n_threads = blas_threads(threads)

    _warn_on_dtype_mismatch(model, dtype)
    # Speed: the data are cast, flattened and one-hot encoded once here, never per batch.
    x_train, y_train = _prepare(x_train, y_train, "train", dtype, num_classes)
    y_train_onehot = one_hot(y_train, num_classes, dtype=dtype)
    x_val, y_val = _prepare_optional(x_val, y_val, "val", dtype, num_classes)
    x_test, y_test = _prepare_optional(x_test, y_test, "test", dtype, num_classes)
    n_train = len(y_train)
    if n_train == 0 and epochs > 0:
        raise ValueError("x_train is empty: there is nothing to train on")

    history = History(
        config={
            "epochs": epochs,
            "learning_rate": float(learning_rate),
            "batch_size": batch_size,
            "reg_lambda": float(reg_lambda),
            "seed": int(seed),
            "dtype": np.dtype(dtype).name,
            "num_classes": int(num_classes),
            "n_train": n_train,
            "n_val": 0 if y_val is None else len(y_val),
            "n_test": 0 if y_test is None else len(y_test),
        },
        data_description=str(data_description),
    )

    # Speed: each batch is gathered into these preallocated buffers with
    # np.take(..., out=) instead of allocating a fresh array per batch. A batch
    # (128 x 784 float32 = 400 kB) stays in cache for the matrix products, and no
    # second shuffled copy of the whole training set is needed. Measured (2-core
    # course machine, one BLAS thread): shuffling and gathering cost about 6 ms per
    # 10,000 examples, against about 1 s of forward/backward/update for the brief's
    # 784-500-500-10 network, i.e. under 1% (fancy indexing x[idx] took 9 ms, a
    # permuted copy of the whole set per epoch 11 ms).
    # The model may keep references to its input until backward() has run, which
    # happens before the buffer is overwritten by the next batch.
    x_buffer = np.empty((min(batch_size, n_train),) + x_train.shape[1:], dtype=x_train.dtype)
    y_onehot_buffer = np.empty((len(x_buffer), num_classes), dtype=y_train_onehot.dtype)
    y_buffer = np.empty(len(x_buffer), dtype=y_train.dtype)
    n_batches = math.ceil(n_train / batch_size)
    rng = np.random.default_rng(seed)

    # Every product of the run (training and evaluation) on n_threads BLAS threads; the
    # library's own setting is restored afterwards.
    with threadpool_limits(limits=n_threads, user_api="blas"):
        # A text bar on stdout, not a widget: it renders the same in JupyterLab, in the saved
        # notebook and in the grader's feedback (a widget's saved state shows "0/100").
        with tqdm(
            range(epochs),
            desc="epochs",
            unit="epoch",
            disable=not progress,
            file=sys.stdout,
            mininterval=1.0,
            ncols=100,
        ) as bar:
            for epoch in bar:
                order = rng.permutation(n_train)
                loss_sum = 0.0
                n_correct = 0
                started = time.perf_counter()
                for batch, start in enumerate(range(0, n_train, batch_size)):
                    indices = order[start : start + batch_size]
                    m = len(indices)
                    # mode="clip" because the indices are valid by construction; the
                    # default mode="raise" makes np.take buffer the output internally.
                    x_batch = np.take(x_train, indices, axis=0, out=x_buffer[:m], mode="clip")
                    y_batch_onehot = np.take(y_train_onehot, indices, axis=0, out=y_onehot_buffer[:m], mode="clip")
                    y_batch = np.take(y_train, indices, out=y_buffer[:m], mode="clip")

                    loss = float(model.forward(x_batch, y_batch_onehot, reg_lambda))
                    if not math.isfinite(loss):
                        raise _diverged(loss, epoch + 1, epochs, batch + 1, n_batches, learning_rate)
                    # Read the predictions before backward(), which may reuse y_hat's memory.
                    predicted = np.argmax(_last_probabilities(model), axis=1)
                    model.backward(reg_lambda)
                    model.update(learning_rate)

                    loss_sum += loss * m
                    n_correct += int(np.count_nonzero(predicted == y_batch))
                history.epoch_seconds.append(time.perf_counter() - started)
                history.train_loss.append(loss_sum / n_train)
                history.train_acc.append(n_correct / n_train)
                postfix = {"loss": f"{history.train_loss[-1]:.4f}", "train_acc": f"{history.train_acc[-1]:.4f}"}
                if x_val is not None:
                    history.val_acc.append(accuracy(model, x_val, y_val))
                    postfix["val_acc"] = f"{history.val_acc[-1]:.4f}"
                bar.set_postfix(postfix)

        if x_test is not None:
            history.test_acc = accuracy(model, x_test, y_test)
    return history


def _diverged(loss: float, epoch: int, epochs: int, batch: int, n_batches: int, learning_rate: float):
    message = (
        f"The training loss became {loss} at epoch {epoch} of {epochs}, "
        f"batch {batch} of {n_batches} (learning_rate={learning_rate}). "
        "Try a smaller learning rate (for example 10 times smaller), and check that "
        "softmax is numerically stable (subtract each row's maximum before np.exp) "
        "and that the cross-entropy adds EPS = 1e-10 inside the log."
    )
    return TrainingDivergedError(message, epoch=epoch, batch=batch, loss=loss)


def _warn_on_dtype_mismatch(model, dtype) -> None:
    """Warn when the data dtype differs from the weights': NumPy would silently upcast every product."""
    for name, layer in getattr(model, "layers", {}).items():
        weights = getattr(layer, "W", None)
        if isinstance(weights, np.ndarray) and weights.dtype != np.dtype(dtype):
            warnings.warn(
                f"train(dtype={np.dtype(dtype).name}) feeds {np.dtype(dtype).name} data to a model whose "
                f"{name}.W is {weights.dtype}: NumPy computes every product in the wider type, which is "
                f"slower (float64) or mixed. Pass dtype=np.{weights.dtype.name} to train, or build the "
                f"model with dtype=np.{np.dtype(dtype).name}.",
                RuntimeWarning,
                stacklevel=3,
            )
            return


def _last_probabilities(model) -> np.ndarray:
    """The (batch, C) probabilities of the last ``model.forward`` call."""
    try:
        return model.softmax_layer.y_hat
    except AttributeError:
        raise AttributeError(
            "train() reads the training accuracy from model.softmax_layer.y_hat, the "
            "probabilities of the last forward pass; the model has no such attribute. "
            "SoftmaxLayer.forward must store its output in self.y_hat."
        ) from None


def _check_labels(y: np.ndarray, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be integer class labels of shape (n,), got shape {y.shape}; "
            "for one-hot labels pass y.argmax(axis=1)"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}; convert with .astype(np.int64)")
    return y


def _prepare(x, y, split: str, dtype, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Cast ``x`` to ``dtype`` and flatten it to (n, d); check the labels (n,)."""
    y = _check_labels(y, f"y_{split}")
    x = np.asarray(x)
    if len(x) != len(y):
        raise ValueError(f"x_{split} has {len(x)} examples but y_{split} has {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"y_{split} has labels outside [0, {num_classes}): min {y.min()}, max {y.max()}; "
            "set num_classes or fix the labels"
        )
    # No copy when x is already a C-contiguous array of the right dtype.
    x = np.ascontiguousarray(x.reshape(len(x), -1), dtype=dtype)
    return x, y


def _prepare_optional(x, y, split: str, dtype, num_classes: int):
    if (x is None) != (y is None):
        raise ValueError(f"give both x_{split} and y_{split}, or neither")
    if x is None:
        return None, None
    return _prepare(x, y, split, dtype, num_classes)
