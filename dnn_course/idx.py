"""Reading and writing the IDX file format of MNIST and Fashion-MNIST, with validation.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then
the array's items in C order, big-endian::

    0x00 0x00 <dtype code> <number of dimensions>  dim_1 ... dim_k  data

The official files are usually gzipped. Compression is detected from the first
bytes of the file (the gzip magic ``1f 8b``), never from its name, so
``name.gz`` and ``name`` are read the same way whatever they hold.

Every problem (wrong magic, unknown dtype code, wrong size, truncated or
corrupt gzip, wrong checksum) raises :class:`DataFileError`, a ``ValueError``
whose message names the file, says what is wrong and how to fix it. No
partially read or garbled array is ever returned.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from pathlib import Path

import numpy as np

from .atomic_write import write_atomically

__all__ = [
    "DataFileError",
    "ChecksumError",
    "DEFAULT_FIX",
    "describe_start",
    "read_bytes",
    "sha256_hex",
    "parse_idx",
    "encode_idx",
    "read_idx",
    "read_images",
    "read_labels",
    "write_idx",
]

GZIP_MAGIC = b"\x1f\x8b"

#: IDX dtype code -> big-endian numpy dtype, as defined with the MNIST files.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

DEFAULT_FIX = (
    "Delete or replace this file with a good copy of the official file "
    "(re-download it), or point DNN_COURSE_DATA at a directory holding good copies."
)


class DataFileError(ValueError):
    """A data file is not what it should be (format, size, contents or checksum).

    Attributes: ``path`` (the file), ``problem`` (what is wrong), ``fix`` (what to do).
    """

    def __init__(self, path: os.PathLike | str, problem: str, fix: str = DEFAULT_FIX):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"Bad data file {self.path}: {problem}. {fix}")


class ChecksumError(DataFileError):
    """The decompressed contents of a file do not have the expected SHA-256.

    Attributes ``actual`` and ``expected`` are the hexadecimal digests.
    """

    def __init__(self, path: os.PathLike | str, *, actual: str, expected: str, fix: str = DEFAULT_FIX):
        self.actual = actual
        self.expected = expected
        problem = (
            f"the SHA-256 of its decompressed contents is {actual}, expected {expected} "
            "(a damaged, incomplete or different file)"
        )
        super().__init__(path, problem, fix)


def sha256_hex(data: bytes) -> str:
    """Hexadecimal SHA-256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def describe_start(data: bytes) -> str:
    """A short human description of what a non-IDX file seems to be."""
    head = data[:64].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<error")):
        return "it looks like an HTML/XML page (a web server's error page saved instead of the file?)"
    if not data:
        return "the file is empty"
    return f"it starts with the bytes {data[:4].hex(' ')}"


def read_bytes(path: os.PathLike | str, *, fix: str = DEFAULT_FIX) -> bytes:
    """Return the contents of ``path``, decompressed if it is gzip (detected by its magic bytes).

    Raises :class:`DataFileError` if the gzip stream is truncated or corrupt.
    """
    path = Path(path)
    raw = path.read_bytes()
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataFileError(
            path, f"the gzip stream is truncated ({len(raw):,} compressed bytes; an interrupted download?)", fix
        ) from None
    except (OSError, zlib.error) as error:  # gzip.BadGzipFile is an OSError; CRC and length errors too
        raise DataFileError(path, f"the gzip stream is corrupt ({error})", fix) from None


def parse_idx(data: bytes, *, path: os.PathLike | str = "<bytes>", fix: str = DEFAULT_FIX) -> np.ndarray:
    """Parse the (decompressed) bytes of an IDX file.

    Returns a new, writable, C-contiguous array in native byte order whose shape
    is the file's dimensions, e.g. ``(n, 28, 28)`` uint8 for images, ``(n,)``
    uint8 for labels. The file size must match the header exactly.
    """
    if len(data) < 4:
        raise DataFileError(path, f"not an IDX file: only {len(data)} bytes, fewer than the 4-byte magic number", fix)
    zero1, zero2, code, ndim = data[0], data[1], data[2], data[3]
    if zero1 != 0 or zero2 != 0:
        raise DataFileError(
            path, f"not an IDX file: the magic number must start with two zero bytes, but {describe_start(data)}", fix
        )
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataFileError(path, f"unknown IDX dtype code 0x{code:02X} (known codes: {known})", fix)
    if ndim == 0:
        raise DataFileError(path, "the IDX header declares 0 dimensions", fix)
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataFileError(
            path,
            f"truncated IDX header: {ndim} dimensions need {header_size} header bytes, the file has {len(data)}",
            fix,
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected_size = header_size + dtype.itemsize * math.prod(shape)
    if len(data) < expected_size:
        raise DataFileError(
            path,
            f"truncated: the header declares shape {shape} of {dtype.name} ({expected_size:,} bytes in all), "
            f"but the file has only {len(data):,} bytes",
            fix,
        )
    if len(data) > expected_size:
        raise DataFileError(
            path,
            f"{len(data) - expected_size:,} unexpected bytes after the data of shape {shape} "
            f"(expected {expected_size:,} bytes in all)",
            fix,
        )
    items = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return items.astype(dtype.newbyteorder("="), order="C", copy=True)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes (uncompressed) of ``array`` (any shape with 1 to 255 dimensions, an IDX dtype)."""
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"IDX cannot store dtype {array.dtype}; use one of {sorted({str(d) for d in codes})}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX stores 1 to 255 dimensions, got an array with {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def read_idx(path: os.PathLike | str, *, expected_sha256: str | None = None, fix: str = DEFAULT_FIX) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a native array of the file's shape and dtype.

    If ``expected_sha256`` is given, the SHA-256 of the *decompressed* bytes must
    match, else :class:`ChecksumError` (checked after the format, so a truncated
    file is reported as truncated). Any format problem raises
    :class:`DataFileError`; ``fix`` is the advice appended to the message.
    """
    data = read_bytes(path, fix=fix)
    array = parse_idx(data, path=path, fix=fix)  # structural problems first: their messages say more
    if expected_sha256 is not None:
        actual = sha256_hex(data)
        if actual != expected_sha256.lower():
            raise ChecksumError(path, actual=actual, expected=expected_sha256.lower(), fix=fix)
    return array


def _read_uint8(path, ndim: int, kind: str, expected_sha256: str | None, fix: str) -> np.ndarray:
    """Read an IDX file that must hold unsigned bytes in ``ndim`` dimensions (``kind`` names it in errors)."""
    array = read_idx(path, expected_sha256=expected_sha256, fix=fix)
    if array.dtype != np.uint8 or array.ndim != ndim:
        plural = "dimension" if ndim == 1 else "dimensions"
        raise DataFileError(
            path,
            f"expected {kind} ({ndim} {plural} of unsigned bytes), found {array.ndim} dimensions of {array.dtype}",
            fix,
        )
    return array


def read_images(path: os.PathLike | str, *, expected_sha256: str | None = None, fix: str = DEFAULT_FIX) -> np.ndarray:
    """Read an IDX image file: uint8 array of shape ``(n, rows, cols)``."""
    return _read_uint8(path, 3, "images", expected_sha256, fix)


def read_labels(path: os.PathLike | str, *, expected_sha256: str | None = None, fix: str = DEFAULT_FIX) -> np.ndarray:
    """Read an IDX label file: uint8 array of shape ``(n,)``."""
    return _read_uint8(path, 1, "labels", expected_sha256, fix)


def write_idx(
    path: os.PathLike | str, array: np.ndarray, *, compress: bool | None = None, compresslevel: int = 9
) -> Path:
    """Write ``array`` as an IDX file, atomically (temporary file, then rename).

    ``compress`` defaults to whether the name ends in ``.gz``. The gzip output is
    deterministic: no file name and modification time 0 in its header, and a
    fixed compression level. Returns the path written.
    """
    path = Path(path)
    data = encode_idx(array)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        data = gzip.compress(data, compresslevel=compresslevel, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, data)
