"""The IDX reader and writer: round trips, exact bytes, and every kind of bad file."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from dnn_course import idx
from dnn_course.datasets import FILE_NAMES, OFFICIAL_SHA256
from dnn_course.idx import ChecksumError, DataFileError


def idx_header(code: int, *dims: int) -> bytes:
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes()


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8", "<i4", "<f8"])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5)])
@pytest.mark.parametrize("file_name", ["a.idx", "a.idx.gz"])
def test_round_trip_every_dtype(tmp_path, dtype, shape, file_name):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal(shape) * 100).astype(dtype)
    path = idx.write_idx(tmp_path / file_name, array)
    back = idx.read_idx(path)
    np.testing.assert_array_equal(back, array)
    assert back.shape == shape
    assert back.dtype == np.dtype(dtype).newbyteorder("=")
    assert back.dtype.isnative and back.flags.c_contiguous and back.flags.writeable


def test_parses_known_bytes_exactly():
    data = idx_header(0x0C, 2, 2) + np.asarray([1, 258, -1, 2**31 - 1], dtype=">i4").tobytes()
    np.testing.assert_array_equal(idx.parse_idx(data), [[1, 258], [-1, 2**31 - 1]])
    images = idx.parse_idx(idx_header(0x08, 1, 2, 3) + bytes([0, 1, 2, 253, 254, 255]))
    np.testing.assert_array_equal(images, [[[0, 1, 2], [253, 254, 255]]])
    assert images.dtype == np.uint8


def test_encode_writes_the_official_header():
    labels = np.array([5, 0, 4], dtype=np.uint8)
    assert idx.encode_idx(labels) == bytes([0, 0, 8, 1, 0, 0, 0, 3, 5, 0, 4])


def test_compression_is_detected_by_magic_bytes_not_by_name(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    gz_without_suffix = idx.write_idx(tmp_path / "images-idx3-ubyte", array, compress=True)
    raw_with_gz_suffix = idx.write_idx(tmp_path / "images-idx3-ubyte.gz", array, compress=False)
    assert gz_without_suffix.read_bytes()[:2] == b"\x1f\x8b"
    assert raw_with_gz_suffix.read_bytes()[:4] == bytes([0, 0, 8, 3])
    np.testing.assert_array_equal(idx.read_images(gz_without_suffix), array)
    np.testing.assert_array_equal(idx.read_images(raw_with_gz_suffix), array)


def test_gzip_output_is_deterministic(tmp_path):
    array = np.arange(1000, dtype=np.uint8) % 7
    first = idx.write_idx(tmp_path / "one.gz", array).read_bytes()
    second = idx.write_idx(tmp_path / "two.gz", array).read_bytes()
    assert first == second
    assert first[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime
    assert first[3] & 0x08 == 0  # no file name stored
    assert gzip.decompress(first) == idx.encode_idx(array)


def test_write_leaves_no_temporary_file(tmp_path):
    idx.write_idx(tmp_path / "labels.gz", np.zeros(3, dtype=np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["labels.gz"]


def test_checksum_is_of_the_decompressed_bytes(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    digest = idx.sha256_hex(idx.encode_idx(array))
    for level in (1, 9):  # different gzip containers, same contents
        path = idx.write_idx(tmp_path / f"l{level}.gz", array, compresslevel=level)
        np.testing.assert_array_equal(idx.read_idx(path, expected_sha256=digest), array)
    with pytest.raises(ChecksumError) as caught:
        idx.read_idx(path, expected_sha256="0" * 64)
    error = caught.value
    assert error.actual == digest and error.expected == "0" * 64
    assert str(path) in str(error) and digest in str(error) and "Delete or replace" in str(error)
    assert isinstance(error, DataFileError) and isinstance(error, ValueError)


# --- bad files: each raises DataFileError naming the file, the problem and the fix ----------------

LABELS = idx_header(0x08, 3) + bytes([1, 2, 3])
IMAGES = idx_header(0x08, 3, 2, 2) + bytes(range(12))

BAD_FILES = {
    "empty": (b"", "only 0 bytes"),
    "shorter than the magic": (b"\x00\x00", "only 2 bytes"),
    "wrong magic": (bytes([8, 3, 0, 0]) + IMAGES[4:], "must start with two zero bytes, but it starts with the bytes 08 03 00 00"),
    "html page": (b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "looks like an HTML/XML page"),
    "unknown dtype code": (idx_header(0x07, 3) + bytes(3), "unknown IDX dtype code 0x07"),
    "zero dimensions": (bytes([0, 0, 8, 0]), "declares 0 dimensions"),
    "truncated header": (bytes([0, 0, 8, 3]) + bytes(6), "truncated IDX header: 3 dimensions need 16 header bytes, the file has 10"),
    "truncated data": (IMAGES[:-5], "truncated: the header declares shape (3, 2, 2) of uint8 (28 bytes in all), but the file has only 23 bytes"),
    "trailing bytes": (LABELS + b"\x00\x00", "2 unexpected bytes after the data of shape (3,)"),
    "truncated gzip": (gzip.compress(IMAGES * 50, mtime=0)[:-20], "gzip stream is truncated"),
    "gzip with a wrong CRC": (
        (lambda z: z[:-8] + bytes([z[-8] ^ 0xFF]) + z[-7:])(gzip.compress(IMAGES, mtime=0)),
        "gzip stream is corrupt",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_raises_clear_error(tmp_path, case):
    contents, expected = BAD_FILES[case]
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(contents)
    with pytest.raises(DataFileError) as caught:
        idx.read_idx(path)
    message = str(caught.value)
    assert expected in message
    assert message.startswith(f"Bad data file {path}: ")
    assert "Delete or replace this file" in message and "DNN_COURSE_DATA" in message
    assert caught.value.path == str(path)


def test_fix_advice_is_passed_through(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"junk")
    with pytest.raises(DataFileError, match="Restore it with git") as caught:
        idx.read_idx(path, fix="Restore it with git.")
    assert caught.value.fix == "Restore it with git."


def test_images_and_labels_readers_check_the_kind(tmp_path):
    labels_path = tmp_path / "labels"
    labels_path.write_bytes(LABELS)
    images_path = tmp_path / "images"
    images_path.write_bytes(IMAGES)
    np.testing.assert_array_equal(idx.read_labels(labels_path), [1, 2, 3])
    assert idx.read_images(images_path).shape == (3, 2, 2)
    with pytest.raises(
        DataFileError, match=r"expected images \(3 dimensions of unsigned bytes\), found 1 dimensions of uint8"
    ):
        idx.read_images(labels_path)
    with pytest.raises(DataFileError, match=r"expected labels \(1 dimension of unsigned bytes\), found 3 dimensions"):
        idx.read_labels(images_path)
    floats_path = tmp_path / "floats"
    floats_path.write_bytes(idx.encode_idx(np.zeros(3, dtype=np.float32)))
    with pytest.raises(DataFileError, match="found 1 dimensions of float32"):
        idx.read_labels(floats_path)


def test_encode_rejects_what_idx_cannot_store():
    with pytest.raises(TypeError, match="IDX cannot store dtype int64"):
        idx.encode_idx(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="1 to 255 dimensions, got an array with 0"):
        idx.encode_idx(np.uint8(3))


# --- the real files ---------------------------------------------------------------------------------


@pytest.mark.fulldata
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_official_label_and_test_image_files_parse_and_match_checksums(full_data_dir, name):
    """The small official files; the 60,000-image files are parsed once in test_datasets."""
    directory = full_data_dir / name
    for role, count in (("train_labels", 60_000), ("test_labels", 10_000)):
        labels = idx.read_labels(directory / f"{FILE_NAMES[role]}.gz", expected_sha256=OFFICIAL_SHA256[name][role])
        assert labels.shape == (count,) and labels.max() == 9 and labels.min() == 0
    images = idx.read_images(
        directory / f"{FILE_NAMES['test_images']}.gz", expected_sha256=OFFICIAL_SHA256[name]["test_images"]
    )
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert images.max() == 255
