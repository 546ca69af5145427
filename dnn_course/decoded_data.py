"""The embedded subsets decoded once, for the many processes that load them (the grader's kernels).

Loading an embedded subset (checking the SHA-256 of its files, inflating 20,000 images, scaling them
to float32) costs about a tenth of a CPU-second, and the grader starts three kernels per submission
that load one. So a grading run decodes each subset once (:func:`write`, called through
:func:`dnn_course.dataset_files.decode_embedded`) into a folder that only it can write, binds that
folder read-only into every sandbox and names it in :data:`VARIABLE`. There
:func:`dnn_course.dataset_files.read_embedded` takes the arrays from :func:`read` instead of decoding
the files again; with the variable unset (everywhere else) nothing changes.

What a loader gets is what decoding gives: C-contiguous, writable arrays of its own (float32 images
``(n, 28, 28)`` in [0, 1], int64 labels ``(n,)``), different for each call. They are mapped
copy-on-write (``mmap.ACCESS_COPY``), so they share the folder's pages until written, and a write
changes only the writer's copy, never the file nor another process's arrays.

A copy is used only if it was decoded from the same files: its index records the SHA-256 of the four
files it was decoded from, as the embedded manifest gives them, and :func:`read` returns None (the
caller then decodes the files itself) for any other digests, a missing or short file or an unreadable
index.
"""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path

import numpy as np

#: The environment variable that names the folder of decoded copies (set by the grader only).
VARIABLE = "DNN_COURSE_DECODED_DATA"
#: The arrays of one dataset, in the order ``((x_train, y_train), (x_test, y_test))`` flattens to.
ROLES = ("train_x", "train_y", "test_x", "test_y")


def _index_path(folder: Path, name: str) -> Path:
    return folder / f"{name}.json"


def write(folder: os.PathLike | str, name: str, digests: dict[str, str], train, test) -> None:
    """Save dataset ``name``'s decoded arrays into ``folder`` with the digests of the files they came from.

    ``train`` and ``test`` are ``(x, y)``: x float32 ``(n, 28, 28)``, y int64 ``(n,)``. ``digests``:
    role (``"train_images"``, ...) to SHA-256, as in the embedded manifest. The index is written last,
    under its final name only when complete, so a reader never sees a half-written copy.
    """
    folder = Path(folder)
    arrays = dict(zip(ROLES, (*train, *test), strict=True))
    index = {"digests": digests, "arrays": {}}
    for role, array in arrays.items():
        array = np.ascontiguousarray(array)
        file_name = f"{name}-{role}.bin"
        array.tofile(folder / file_name)
        index["arrays"][role] = {"file": file_name, "dtype": array.dtype.str, "shape": list(array.shape)}
    partial = folder / f".{name}.json.partial"
    partial.write_text(json.dumps(index), encoding="utf-8")
    os.replace(partial, _index_path(folder, name))


def _mapped(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray | None:
    """The array in ``path``, mapped copy-on-write; None if the file does not hold exactly that."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size != dtype.itemsize * int(np.prod(shape)) or not shape[0]:
            return None
        pages = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    return np.ndarray(shape, dtype=dtype, buffer=pages)


def read(name: str, digests: dict[str, str]):
    """``((x_train, y_train), (x_test, y_test))`` of ``name`` from the folder in :data:`VARIABLE`, decoded
    from files with these ``digests``; None if there is no such copy (the caller decodes the files)."""
    folder = os.environ.get(VARIABLE)
    if not folder:
        return None
    try:
        index = json.loads(_index_path(Path(folder), name).read_text(encoding="utf-8"))
        if index["digests"] != digests:
            return None
        arrays = []
        for role in ROLES:
            entry = index["arrays"][role]
            array = _mapped(Path(folder) / entry["file"], np.dtype(entry["dtype"]), tuple(entry["shape"]))
            if array is None:
                return None
            arrays.append(array)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    x_train, y_train, x_test, y_test = arrays
    return (x_train, y_train), (x_test, y_test)
