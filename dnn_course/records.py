"""Saving and reading a trained model, and reading any record file a student submits with a size cap.

The experiment notebooks save what they trained so that grading (and the book) can use it
without retraining:

- :func:`save_model` writes an ``.npz`` file with every ``FCLayer``'s ``W`` and ``b`` plus a JSON
  description; :func:`read_weights` reads it back as arrays and checks every shape (the grader
  measures them with the course's forward pass, :mod:`dnn_course.evaluate`).
- :func:`read_capped` reads any record file (a model here, an experiment's results file in
  :mod:`dnn_course.experiment`) under a size cap.

The readers treat a file as untrusted: size caps, no pickles, and a clear :class:`RecordError`
that names the file for anything malformed.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from .atomic_write import write_atomically

__all__ = ["RecordError", "check_npz", "parse_description", "read_capped", "read_weights", "save_model"]

MAX_MODEL_BYTES = 100_000_000  # two million float64 weights take 16 MB
#: What a model file may *declare* before a byte of it is decompressed: all arrays together, members.
MAX_ARRAY_BYTES = 128 * 1024 * 1024
MAX_MEMBERS = 64
MAX_DESCRIPTION_CHARS = 100_000
MAX_DEPTH = 8  # of the description's JSON (save_model writes 3)


class RecordError(ValueError):
    """A results or model file is missing or malformed; the message names the file and the fix."""


def read_capped(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of the record file ``path``, at most ``limit`` of them.

    ``what`` names the record in the message (``"the saved model"``, ``"the experiment"``).
    Raises :class:`RecordError` when the file is missing (run the notebook's cells that write it)
    or larger than ``limit`` bytes.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path.name}: no such file. Run the {what} cells of the notebook first; they write it.")
    if path.stat().st_size > limit:
        raise RecordError(f"{path.name} is {path.stat().st_size:,} bytes, more than the {limit:,} allowed for {what}.")
    return path.read_bytes()


def save_model(path: str | Path, model, layer_sizes, activation: str, info: dict | None = None) -> None:
    """Save the weights of ``model`` (built by ``build_classifier(impl, layer_sizes, activation)``).

    The file holds ``W1, b1, ..., Wk, bk`` (float arrays, ``Wj``: ``(layer_sizes[j-1], layer_sizes[j])``,
    ``bj``: ``(layer_sizes[j],)``) and ``description``: JSON with the sizes, the activation and ``info``
    (e.g. the settings and the accuracy the student measured).
    """
    fc_layers = [layer for layer in model.layers.values() if hasattr(layer, "W")]
    arrays = {}
    for j, layer in enumerate(fc_layers, start=1):
        arrays[f"W{j}"], arrays[f"b{j}"] = np.asarray(layer.W), np.asarray(layer.b)
    description = {"layer_sizes": [int(s) for s in layer_sizes], "activation": str(activation), "info": info or {}}
    arrays["description"] = np.array(json.dumps(description))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomically(path, buffer.getvalue())


def check_npz(raw: bytes, name: str, max_bytes: int = MAX_ARRAY_BYTES) -> None:
    """Raise :class:`RecordError` unless ``raw`` is a zip of ``.npy`` arrays whose declared sizes are sound.

    Reads only the zip directory and each array's header (a few bytes decompressed): every
    member's uncompressed size, and each array's shape times item size, must fit ``max_bytes``
    in all, and no array may hold Python objects. Reading such a file then cannot make more
    than ``max_bytes`` of arrays, whatever its compressed size.
    """
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise RecordError(f"{name} holds {len(members)} arrays; a saved model holds a few.")
            declared = sum(member.file_size for member in members)
            if declared > max_bytes:
                raise RecordError(
                    f"{name} declares {declared:,} bytes of arrays, more than the "
                    f"{max_bytes:,} a saved model of this course may hold."
                )
            for member in members:
                with archive.open(member) as handle:
                    version = np.lib.format.read_magic(handle)
                    if version not in ((1, 0), (2, 0)):
                        raise RecordError(
                            f"{name}: the array {member.filename} has a format this course does not write."
                        )
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(handle)
                    count = 1
                    for dimension in shape:
                        count *= int(dimension)
                    if dtype.hasobject or count * dtype.itemsize > member.file_size:
                        raise RecordError(
                            f"{name}: the array {member.filename} declares {shape} of {dtype}, "
                            "which its size does not hold."
                        )
    except RecordError:
        raise
    except Exception as error:  # noqa: BLE001 - untrusted bytes: any failure is a malformed file
        raise RecordError(
            f"{name} is not a model file written by save_model ({type(error).__name__}: "
            f"{str(error)[:200]}). Run the cell that saves your chosen model again."
        ) from None


def _depth(value, limit: int) -> bool:
    """Whether the JSON value ``value`` is nested at most ``limit`` levels (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            if level > limit:
                return False
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return True


def parse_description(text: str, name: str) -> dict:
    """A saved model's description, checked against its schema before any code uses it.

    ``{"layer_sizes": [int, ...], "activation": str, "info": {...}}``; ``info``'s ``name`` and
    ``run_id``, when present, are strings. Raises :class:`RecordError` otherwise.
    """

    def bad(why):
        return RecordError(f"{name}: its description {why}. Run the cell that saves your chosen model again.")

    if len(text) > MAX_DESCRIPTION_CHARS:
        raise bad(f"is longer than {MAX_DESCRIPTION_CHARS:,} characters")
    try:
        description = json.loads(text)
    except RecursionError:
        raise bad("is nested too deeply") from None
    except ValueError as error:
        raise bad(f"is not JSON ({error})") from None
    if not isinstance(description, dict) or not _depth(description, MAX_DEPTH):
        raise bad("is not an object of at most a few levels")
    sizes, activation = description.get("layer_sizes"), description.get("activation")
    if not isinstance(sizes, list) or not all(type(s) is int for s in sizes):
        raise bad("has no list of whole-number layer sizes")
    if not isinstance(activation, str):
        raise bad("names no activation")
    info = description.setdefault("info", {})
    if not isinstance(info, dict):
        raise bad("has an 'info' that is not an object")
    for key in ("name", "run_id"):
        if key in info and not isinstance(info[key], str):
            raise bad(f"has a {key!r} that is not a string")
    return description


def read_weights(path: str | Path, *, dtype=np.float32) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict]:
    """The weights of a file written by :func:`save_model`, checked, without building any model.

    Returns ``([(W1, b1), ..., (Wk, bk)], description)`` with ``Wj``: ``(sizes[j-1], sizes[j])`` and
    ``bj``: ``(sizes[j],)`` as ``dtype``. Raises :class:`RecordError` for a missing, oversized or
    malformed file (sizes are checked as declared before anything is decompressed:
    :func:`check_npz`; the description against its schema: :func:`parse_description`), a shape
    mismatch or non-finite values.
    """
    path = Path(path)
    raw = read_capped(path, MAX_MODEL_BYTES, "the saved model")
    check_npz(raw, path.name)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            text = data["description"]
            if text.dtype.kind != "U" or text.shape != ():
                raise RecordError(f"{path.name}: its description is not a text. Save the model again.")
            description = parse_description(str(text), path.name)
            weights = {key: data[key] for key in data.files if key != "description"}
    except RecordError:
        raise
    except Exception as error:  # noqa: BLE001 - a corrupt member (bad CRC, truncated data) and the like
        raise RecordError(
            f"{path.name} is not a model file written by save_model ({type(error).__name__}: "
            f"{str(error)[:200]}). Run the cell that saves your chosen model again."
        ) from None
    sizes = description["layer_sizes"]
    if not 2 <= len(sizes) <= 12 or any(not 1 <= s <= 4096 for s in sizes):
        raise RecordError(f"{path.name}: layer sizes {sizes} are outside what this course trains.")
    layers = []
    for j in range(1, len(sizes)):
        for name, expected in ((f"W{j}", (sizes[j - 1], sizes[j])), (f"b{j}", (sizes[j],))):
            array = weights.get(name)
            if array is None or array.shape != expected or array.dtype.kind != "f":
                raise RecordError(
                    f"{path.name}: {name} should be a float array of shape {expected}, "
                    f"found {None if array is None else (array.shape, str(array.dtype))}."
                )
            if not np.isfinite(array).all():
                raise RecordError(f"{path.name}: {name} holds NaN or infinite values.")
        layers.append((weights[f"W{j}"].astype(dtype), weights[f"b{j}"].astype(dtype)))
    return layers, description
