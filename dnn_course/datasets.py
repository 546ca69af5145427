"""MNIST and Fashion-MNIST for the course: loading, a stratified validation split, one-hot labels.

Every notebook and script gets its data from :func:`load_dataset`::

    from dnn_course.datasets import load_dataset, train_val_split, one_hot

    data = load_dataset("fashion-mnist")              # the embedded subset (default)
    print(data.description)
    (x_train, y_train), (x_test, y_test) = data       # x: (n, 28, 28) float32 in [0, 1]; y: (n,) int64
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x_train, y_train, val_size=0.1, seed=0)
    y_tr_onehot = one_hot(y_tr, 10)                   # (n_tr, 10) float64

Two sources: ``source="embedded"`` (default), the subset committed in the repository under
``data/embedded/<dataset>/`` (10,000 training and 10,000 test images), which works offline,
always; ``source="full"``, the official files (60,000 training, 10,000 test images), found on
this machine or downloaded. Where each is looked for, how it is verified and what happens to a
bad file: :mod:`dnn_course.dataset_files`.
"""

from __future__ import annotations

import difflib
import os

import numpy as np

from .dataset_files import (
    DATASET_NAMES,
    FILE_NAMES,
    OFFICIAL_SHA256,
    TITLES,
    DataNotFoundError,
    cache_dir,
    read_embedded,
    read_full,
    read_split,
)
from .idx import ChecksumError, DataFileError

# The names of the files' side (FILE_NAMES, OFFICIAL_SHA256, TITLES, ...) stay importable from here.
__all__ = [
    "CLASS_NAMES",
    "DATASET_NAMES",
    "FILE_NAMES",
    "OFFICIAL_SHA256",
    "TITLES",
    "Dataset",
    "DataNotFoundError",
    "DataFileError",
    "ChecksumError",
    "load_dataset",
    "read_split",
    "train_val_split",
    "one_hot",
    "cache_dir",
]

CLASS_NAMES: dict[str, list[str]] = {
    "mnist": [str(digit) for digit in range(10)],
    "fashion-mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
}  # fmt: skip


class Dataset(tuple):
    """``((x_train, y_train), (x_test, y_test))``, with what the data is.

    ``x_*``: float32 ``(n, 28, 28)`` in [0, 1], C-contiguous; ``y_*``: int64 ``(n,)`` in 0..9.
    Attributes: ``name`` ("mnist" or "fashion-mnist"), ``source`` ("embedded" or
    "full"), ``description`` (one line: which data, how many images, where from),
    ``class_names`` (the 10 names in label order) and ``files`` (role -> path read).
    """

    def __new__(cls, train, test, name: str, source: str, description: str, files=None):
        self = super().__new__(cls, (tuple(train), tuple(test)))
        self.name = name
        self.source = source
        self.description = description
        self.files = dict(files or {})
        return self

    def __reduce__(self):
        return type(self), (self[0], self[1], self.name, self.source, self.description, self.files)

    @property
    def class_names(self) -> list[str]:
        return list(CLASS_NAMES[self.name])

    def __repr__(self) -> str:
        (x_train, _), (x_test, _) = self
        return (
            f"Dataset(name={self.name!r}, source={self.source!r}, "
            f"train={x_train.shape} {x_train.dtype}, test={x_test.shape} {x_test.dtype})"
        )


def _check_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"the dataset name must be a string ('mnist' or 'fashion-mnist'), got {name!r}")
    normalized = name.strip().lower().replace("_", "-")
    if normalized not in DATASET_NAMES:
        close = difflib.get_close_matches(normalized, DATASET_NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown dataset {name!r}: the course has 'mnist' and 'fashion-mnist'.{hint}")
    return normalized


def load_dataset(
    name: str, *, source: str = "embedded", data_dir: os.PathLike | str | None = None, verbose: bool = True,
    mirrors: list[str] | str | None = None,
) -> Dataset:  # fmt: skip
    """Load MNIST or Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``.

    Parameters
    ----------
    name : "mnist" or "fashion-mnist" (case and ``_``/``-`` do not matter).
    source : "embedded" (default): the subset in the repository, 10,000 training
        images (the first 10,000 official ones) and the 10,000 official test images.
        "full": the official 60,000 training and 10,000 test images, looked for in
        ``data_dir`` (only there, if given), ``$DNN_COURSE_DATA``, the user cache,
        Debian's package (Fashion-MNIST), then downloaded from the official mirrors.
    data_dir : a directory holding the four official files (source="full" only).
    verbose : print one line saying which data is used (and download progress).
    mirrors : base URLs to download from instead of the official mirrors
        (also settable with ``DNN_COURSE_MNIST_MIRRORS`` / ``DNN_COURSE_FASHION_MNIST_MIRRORS``).

    Returns
    -------
    Dataset, a tuple ``((x_train, y_train), (x_test, y_test))`` with ``x_*`` float32
    ``(n, 28, 28)`` in [0, 1] (C-contiguous) and ``y_*`` int64 ``(n,)`` in 0..9, and
    attributes ``.name``, ``.source``, ``.description``, ``.class_names``, ``.files``.

    Raises
    ------
    ValueError for an unknown name or source; :class:`DataFileError` (a ValueError)
    for a bad file, naming it and the fix; :class:`DataNotFoundError` when the full
    data is nowhere to be found, listing the options.
    """
    name = _check_name(name)
    if source == "embedded":
        if data_dir is not None:
            raise ValueError("data_dir applies to source='full' only; the embedded subset is in data/embedded/")
        found = read_embedded(name, verbose)
    elif source == "full":
        found = read_full(name, data_dir, verbose, mirrors)
    else:
        raise ValueError(f"Unknown source {source!r}: use 'embedded' (the subset in the repository) or 'full'.")
    return Dataset(found.train, found.test, name, source, found.description, found.files)


def _check_labels(y, what: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of integer class labels, got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) and y.dtype != np.bool_):
        raise ValueError(f"{what} must hold integer class labels, got dtype {y.dtype}")
    return y


def train_val_split(x, y, *, val_size: float | int = 0.1, seed: int = 0):
    """Split ``(x, y)`` into a training part and a stratified validation part.

    Parameters
    ----------
    x : array of shape ``(n, ...)``, e.g. ``(n, 28, 28)`` images.
    y : int array of shape ``(n,)``, class labels.
    val_size : a fraction in (0, 1) of ``n``, or a number of examples in [1, n - 1].
    seed : seed of ``np.random.default_rng``; the same seed gives the same split.

    Returns
    -------
    ``((x_tr, y_tr), (x_val, y_val))``: ``x_tr`` ``(n - n_val, ...)``, ``y_tr``
    ``(n - n_val,)``, ``x_val`` ``(n_val, ...)``, ``y_val`` ``(n_val,)``, new arrays,
    each part in the original order. Every class gets ``n_val * n_c / n``
    validation examples rounded up or down (largest remainders), so the
    validation part has the class proportions of ``y`` to within one example.
    """
    x = np.asarray(x)
    y = _check_labels(y)
    n = len(y)
    if len(x) != n:
        raise ValueError(f"x and y must have the same length, got {len(x)} images and {n} labels")
    if isinstance(val_size, (bool, np.bool_)) or not isinstance(val_size, (int, float, np.integer, np.floating)):
        raise TypeError(f"val_size must be a fraction or a count, got {val_size!r}")
    if isinstance(val_size, (int, np.integer)):
        n_val = int(val_size)
    elif 0.0 < val_size < 1.0:
        n_val = int(round(val_size * n))
    else:
        raise ValueError(f"a fractional val_size must be in (0, 1), got {val_size}")
    if not 1 <= n_val <= n - 1:
        raise ValueError(f"val_size={val_size!r} gives {n_val} validation examples out of {n}; need 1 to {n - 1}")

    classes, counts = np.unique(y, return_counts=True)
    exact = counts * n_val  # per class, n times its validation quota, in integers (no rounding error)
    quota = exact // n
    shortfall = n_val - int(quota.sum())
    by_remainder = np.argsort(-(exact % n), kind="stable")  # largest remainders first, ties by class
    quota[by_remainder[:shortfall]] += 1

    rng = np.random.default_rng(seed)
    is_val = np.zeros(n, dtype=bool)
    for label, k in zip(classes, quota, strict=False):
        members = np.flatnonzero(y == label)
        is_val[rng.choice(members, size=int(k), replace=False)] = True
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def one_hot(y, num_classes: int = 10, *, dtype=np.float64) -> np.ndarray:
    """One-hot encode integer labels.

    ``y``: int array ``(n,)`` with values in ``0..num_classes - 1``.
    Returns an array ``(n, num_classes)`` of ``dtype`` (default float64) with a
    single 1 per row, in column ``y[i]``.
    """
    y = _check_labels(y)
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    num_classes = int(num_classes)
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if bad.size:
        raise ValueError(
            f"labels must be in 0..{num_classes - 1} for num_classes={num_classes}; "
            f"found {int(y[bad[0]])} at index {int(bad[0])}"
        )
    encoded = np.zeros((len(y), num_classes), dtype=dtype)
    encoded[np.arange(len(y)), y] = 1
    return encoded
