"""Loading MNIST and Fashion-MNIST: the embedded subset, the full files, the loading order,
the stratified split and one-hot labels."""

from __future__ import annotations

import functools
import json
import pickle
import shutil

import numpy as np
import pytest

from dnn_course import dataset_files, datasets, decoded_data, idx
from dnn_course.datasets import (
    CLASS_NAMES,
    ChecksumError,
    DataFileError,
    DataNotFoundError,
    load_dataset,
    one_hot,
    read_split,
    train_val_split,
)

NAMES = ["mnist", "fashion-mnist"]

# Class counts of the official files (well known; the Fashion-MNIST sets are balanced).
OFFICIAL_TEST_COUNTS = {
    "mnist": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    "fashion-mnist": [1000] * 10,
}
OFFICIAL_TRAIN_COUNTS = {
    "mnist": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "fashion-mnist": [6000] * 10,
}
FIRST_TRAIN_LABELS = {"mnist": [5, 0, 4, 1, 9, 2, 1, 3, 1, 4], "fashion-mnist": [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]}


@functools.cache
def load_embedded(name):
    return load_dataset(name, verbose=False)


@pytest.fixture(params=NAMES)
def embedded(request):
    return load_embedded(request.param)


@pytest.fixture(scope="module")
def manifest():
    return json.loads((dataset_files.EMBEDDED_DIR / "MANIFEST.json").read_text())


# --- the embedded subset -----------------------------------------------------------------------------


def test_embedded_arrays_follow_the_data_conventions(embedded):
    (x_train, y_train), (x_test, y_test) = embedded
    assert isinstance(embedded, tuple) and len(embedded) == 2
    for x, y in ((x_train, y_train), (x_test, y_test)):
        assert x.shape == (10_000, 28, 28) and y.shape == (10_000,)
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.flags.c_contiguous
        assert x.min() == 0.0 and x.max() == 1.0
        assert set(np.unique(y)) == set(range(10))
    # Pixels are exactly byte / 255.
    sample = x_train[:500]
    np.testing.assert_array_equal(np.round(sample * 255).astype(np.uint8) / np.float32(255), sample)


def test_embedded_dataset_says_what_it_is(embedded):
    title = datasets.TITLES[embedded.name]
    assert embedded.source == "embedded"
    assert embedded.description.startswith(f"{title}, embedded subset: 10,000 training images ")
    assert "(first 10,000 images of the official training set)" in embedded.description
    assert "10,000 test images (the official test set)" in embedded.description
    assert f"data/embedded/{embedded.name}" in embedded.description
    assert "\n" not in embedded.description
    assert embedded.class_names == CLASS_NAMES[embedded.name]
    assert repr(embedded) == (
        f"Dataset(name={embedded.name!r}, source='embedded', "
        "train=(10000, 28, 28) float32, test=(10000, 28, 28) float32)"
    )


def test_embedded_class_counts(embedded, manifest):
    (_, y_train), (_, y_test) = embedded
    assert np.bincount(y_test).tolist() == OFFICIAL_TEST_COUNTS[embedded.name]
    assert np.bincount(y_train).tolist() == manifest["datasets"][embedded.name]["class_counts"]["train"]
    assert np.bincount(y_train).min() >= 850  # every class well represented in the first 10,000
    assert y_train[:10].tolist() == FIRST_TRAIN_LABELS[embedded.name]


def test_dataset_pickles_with_its_attributes(embedded):
    copy = pickle.loads(pickle.dumps(embedded))
    assert (copy.name, copy.source, copy.description) == (embedded.name, embedded.source, embedded.description)
    np.testing.assert_array_equal(copy[1][1], embedded[1][1])


def test_verbose_load_prints_one_line(capsys):
    load_dataset("mnist")
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "MNIST: embedded subset, 10,000 training / 10,000 test images (use source='full' for all 60,000 training images)"
    ]
    load_dataset("mnist", verbose=False)
    assert capsys.readouterr().out == ""


def test_manifest_matches_the_committed_files(manifest):
    data_bytes = 0
    for name in NAMES:
        entry = manifest["datasets"][name]
        for role, file_entry in entry["files"].items():
            path = dataset_files.EMBEDDED_DIR / name / file_entry["file"]
            array = idx.read_idx(path, expected_sha256=file_entry["sha256"])
            assert list(array.shape) == file_entry["shape"] and array.shape[0] == file_entry["count"]
            assert path.stat().st_size == file_entry["gzip_bytes"]
            assert file_entry["official_sha256"] == datasets.OFFICIAL_SHA256[name][role]
            data_bytes += file_entry["gzip_bytes"]
        assert entry["files"]["train_images"]["cut"] == "first 10,000 images of the official training set"
        assert entry["files"]["test_images"]["cut"] == "the official test set"
    assert manifest["data_bytes"] == data_bytes
    committed = sum(p.stat().st_size for p in dataset_files.EMBEDDED_DIR.rglob("*") if p.is_file())
    assert manifest["total_bytes"] == committed
    assert committed <= 15_000_000


def test_stratified_split_of_the_embedded_set_keeps_class_proportions(embedded):
    (x_train, y_train), _ = embedded
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x_train, y_train, val_size=0.2, seed=0)
    assert len(y_val) == 2000 and len(y_tr) == 8000
    expected = np.bincount(y_train) * 0.2
    assert np.all(np.abs(np.bincount(y_val, minlength=10) - expected) < 1)
    assert np.bincount(y_tr).tolist() == (np.bincount(y_train) - np.bincount(y_val)).tolist()


def test_tampered_embedded_file_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "embedded"
    shutil.copytree(dataset_files.EMBEDDED_DIR, copy)
    labels_path = copy / "mnist" / "t10k-labels-idx1-ubyte.gz"
    labels = idx.read_labels(labels_path)
    labels[0] = (labels[0] + 1) % 10  # a valid file with one label changed
    idx.write_idx(labels_path, labels)
    monkeypatch.setattr(dataset_files, "EMBEDDED_DIR", copy)
    with pytest.raises(ChecksumError) as caught:
        load_dataset("mnist", verbose=False)
    assert str(labels_path) in str(caught.value)
    assert "git checkout -- data/embedded" in str(caught.value)
    load_dataset("fashion-mnist", verbose=False)  # the other dataset is untouched


def test_missing_embedded_subset_says_where_it_should_be(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset_files, "EMBEDDED_DIR", tmp_path / "nowhere")
    with pytest.raises(DataNotFoundError, match=r"The embedded data subset is not at .*nowhere.*source='full'"):
        load_dataset("mnist", verbose=False)


# --- the grader's decoded copy (dnn_course.decoded_data) ----------------------------------------------


@pytest.fixture(scope="module")
def decoded_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("decoded")
    dataset_files.decode_embedded(folder)
    return folder


@pytest.mark.parametrize("name", NAMES)
def test_a_decoded_copy_loads_what_decoding_gives(name, decoded_folder, monkeypatch, capsys):
    """Named in DNN_COURSE_DECODED_DATA, the run's copy gives the same dataset, arrays of the same kind,
    writable and of each call's own, and the same line and description; nothing is decoded again."""
    decoded_reads = []
    monkeypatch.setattr(dataset_files, "read_split", lambda *a, **k: decoded_reads.append(a))
    monkeypatch.setenv(decoded_data.VARIABLE, str(decoded_folder))
    reference = load_embedded(name)
    first, second = load_dataset(name), load_dataset(name, verbose=False)
    assert decoded_reads == []
    assert first.description == reference.description and first.files == reference.files
    assert capsys.readouterr().out.count("embedded subset") == 1
    for got, expected in zip([*first[0], *first[1]], [*reference[0], *reference[1]], strict=True):
        assert type(got) is np.ndarray and got.dtype == expected.dtype and got.shape == expected.shape
        assert got.flags.c_contiguous and got.flags.writeable
        np.testing.assert_array_equal(got, expected)
    x_train = first[0][0]
    x_train[:100] = 7.0  # the writer's copy only: not the next call's, not the file
    assert second[0][0][:100].max() <= 1.0 and load_dataset(name, verbose=False)[0][0][:100].max() <= 1.0
    np.testing.assert_array_equal(
        np.fromfile(decoded_folder / f"{name}-train_x.bin", np.float32, 784), reference[0][0][0].ravel()
    )


def _copy_of(decoded_folder, tmp_path):
    folder = tmp_path / "decoded"
    shutil.copytree(decoded_folder, folder)
    return folder


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda folder: (folder / "mnist-test_x.bin").write_bytes(b"\0" * 1000), id="short file"),
        pytest.param(lambda folder: (folder / "mnist-test_y.bin").unlink(), id="missing file"),
        pytest.param(lambda folder: (folder / "mnist.json").write_text("{"), id="unreadable index"),
        pytest.param(
            lambda folder: (folder / "mnist.json").write_text(
                (folder / "mnist.json").read_text().replace('"train_images": "', '"train_images": "0')
            ),
            id="decoded from other files",
        ),
        pytest.param(lambda folder: shutil.rmtree(folder), id="no folder"),
    ],
)
def test_a_decoded_copy_that_does_not_match_is_not_used(spoil, decoded_folder, tmp_path, monkeypatch):
    """Any copy but a complete one decoded from the manifest's files: the files are decoded (and checked)."""
    folder = _copy_of(decoded_folder, tmp_path)
    spoil(folder)
    monkeypatch.setenv(decoded_data.VARIABLE, str(folder))
    assert (
        decoded_data.read(
            "mnist",
            dataset_files._digests(
                json.loads((dataset_files.EMBEDDED_DIR / "MANIFEST.json").read_text())["datasets"]["mnist"]
            ),
        )
        is None
    )
    loaded = load_dataset("mnist", verbose=False)
    np.testing.assert_array_equal(loaded[1][1], load_embedded("mnist")[1][1])


def test_a_decoded_copy_is_complete_or_absent(tmp_path, monkeypatch):
    """The index is written last under its own name: a copy interrupted before it is simply not there."""
    arrays = (np.zeros((2, 28, 28), np.float32), np.zeros(2, np.int64))
    digests = {"train_images": "a"}
    monkeypatch.setenv(decoded_data.VARIABLE, str(tmp_path))

    def interrupted(*_):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(decoded_data.os, "replace", interrupted)
        with pytest.raises(KeyboardInterrupt):
            decoded_data.write(tmp_path, "mnist", digests, arrays, arrays)
    assert not (tmp_path / "mnist.json").exists() and decoded_data.read("mnist", digests) is None
    decoded_data.write(tmp_path, "mnist", digests, arrays, arrays)
    assert decoded_data.read("mnist", digests) is not None
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "mnist-test_x.bin", "mnist-test_y.bin", "mnist-train_x.bin", "mnist-train_y.bin", "mnist.json"
    ]  # fmt: skip


# --- names and arguments ------------------------------------------------------------------------------


def test_class_names():
    assert CLASS_NAMES["fashion-mnist"] == [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]  # fmt: skip
    assert CLASS_NAMES["mnist"] == [str(d) for d in range(10)]


@pytest.mark.parametrize("spelling", ["MNIST", " mnist ", "Mnist"])
def test_dataset_names_are_normalised(spelling):
    assert load_dataset(spelling, verbose=False).name == "mnist"


def test_fashion_name_with_underscore():
    assert load_dataset("Fashion_MNIST", verbose=False).name == "fashion-mnist"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("cifar10", "Unknown dataset 'cifar10': the course has 'mnist' and 'fashion-mnist'."),
        ("fashion", "Unknown dataset 'fashion': the course has 'mnist' and 'fashion-mnist'. Did you mean 'fashion-mnist'?"),
    ],
)  # fmt: skip
def test_unknown_dataset_name(name, message):
    with pytest.raises(ValueError) as caught:
        load_dataset(name)
    assert str(caught.value) == message


def test_bad_arguments():
    with pytest.raises(TypeError, match="must be a string"):
        load_dataset(3)
    with pytest.raises(ValueError, match="Unknown source 'web': use 'embedded'"):
        load_dataset("mnist", source="web")
    with pytest.raises(ValueError, match="data_dir applies to source='full' only"):
        load_dataset("mnist", data_dir="/tmp")


# --- read_split: files that do not belong together --------------------------------------------------


def write_pair(directory, images, labels):
    images_path = idx.write_idx(directory / "images.gz", np.asarray(images, dtype=np.uint8))
    labels_path = idx.write_idx(directory / "labels.gz", np.asarray(labels, dtype=np.uint8))
    return images_path, labels_path


def test_read_split_converts(tmp_path):
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[1, 5, 5] = 255, 51
    x, y = read_split(*write_pair(tmp_path, images, [7, 0, 9]))
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x[0, 0, 0] == 1.0 and x[1, 5, 5] == np.float32(0.2) and x.sum() == np.float32(1.2)
    assert y.tolist() == [7, 0, 9]


def test_count_mismatch_names_both_files(tmp_path):
    images_path, labels_path = write_pair(tmp_path, np.zeros((5, 28, 28)), [1, 2, 3, 4])
    with pytest.raises(DataFileError) as caught:
        read_split(images_path, labels_path)
    message = str(caught.value)
    assert f"Bad data file {labels_path}: holds 4 labels but the images file {images_path} holds 5 images" in message


def test_labels_out_of_range(tmp_path):
    with pytest.raises(DataFileError, match=r"labels must be in 0\.\.9, found 10 at index 2 \(2 labels out of range\)"):
        read_split(*write_pair(tmp_path, np.zeros((4, 28, 28)), [1, 2, 10, 200]))


def test_wrong_image_size(tmp_path):
    with pytest.raises(DataFileError, match=r"images are \(27, 28\) pixels, expected \(28, 28\)"):
        read_split(*write_pair(tmp_path, np.zeros((2, 27, 28)), [1, 2]))


# --- the full official files (when present) -------------------------------------------------------


@pytest.fixture(scope="module", params=NAMES)
def full(request, full_data_dir):
    """Each full dataset parsed once (60,000 images) and verified by checksum."""
    return load_dataset(request.param, source="full", data_dir=full_data_dir / request.param, verbose=False)


@pytest.mark.fulldata
def test_full_dataset_parses_and_matches_checksums(full):
    (x_train, y_train), (x_test, y_test) = full
    assert x_train.shape == (60_000, 28, 28) and x_test.shape == (10_000, 28, 28)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64 and x_train.flags.c_contiguous
    assert np.bincount(y_train).tolist() == OFFICIAL_TRAIN_COUNTS[full.name]
    assert np.bincount(y_test).tolist() == OFFICIAL_TEST_COUNTS[full.name]
    assert y_train[:10].tolist() == FIRST_TRAIN_LABELS[full.name]
    assert full.source == "full"
    assert full.description.startswith(
        f"{datasets.TITLES[full.name]}, full official dataset: 60,000 training and 10,000 test images, read from data_dir"
    )


@pytest.mark.fulldata
def test_embedded_subset_is_cut_from_the_full_files(full):
    (x_train, y_train), (x_test, y_test) = full
    (ex_train, ey_train), (ex_test, ey_test) = load_embedded(full.name)
    np.testing.assert_array_equal(ex_train, x_train[:10_000])
    np.testing.assert_array_equal(ey_train, y_train[:10_000])
    np.testing.assert_array_equal(ex_test, x_test)
    np.testing.assert_array_equal(ey_test, y_test)


@pytest.mark.fulldata
def test_wrong_dataset_in_a_directory_is_named(full_data_dir, isolated_data_env, monkeypatch):
    """MNIST files where Fashion-MNIST is expected: the error says what the file really is."""
    monkeypatch.setenv("DNN_COURSE_DATA", str(full_data_dir / "mnist"))
    with pytest.raises(
        ChecksumError, match="This file holds the official MNIST (training|test) (images|labels), not the Fashion-MNIST"
    ):
        load_dataset("fashion-mnist", source="full", verbose=False)


# --- where the full data comes from (stand-in files with patched checksums) ------------------------


def assert_is(dataset, fake):
    (x_train, y_train), (x_test, y_test) = dataset
    np.testing.assert_array_equal(x_train, fake.arrays["train_images"] / np.float32(255))
    np.testing.assert_array_equal(y_train, fake.arrays["train_labels"])
    np.testing.assert_array_equal(x_test, fake.arrays["test_images"] / np.float32(255))
    np.testing.assert_array_equal(y_test, fake.arrays["test_labels"])
    assert dataset.source == "full"


@pytest.mark.parametrize("layout", ["flat", "dataset subdirectory", "torchvision", "uncompressed"])
def test_explicit_data_dir(isolated_data_env, fake_official, tmp_path, capsys, layout):
    fake = fake_official("mnist")
    root = tmp_path / "my-data"
    target = {"flat": root, "dataset subdirectory": root / "mnist", "torchvision": root / "MNIST" / "raw",
              "uncompressed": root}[layout]  # fmt: skip
    target.mkdir(parents=True)
    for path in fake.dir.iterdir():
        if layout == "uncompressed":
            (target / path.name.removesuffix(".gz")).write_bytes(idx.read_bytes(path))
        else:
            shutil.copy(path, target)
    dataset = load_dataset("mnist", source="full", data_dir=root)
    assert_is(dataset, fake)
    assert capsys.readouterr().out == f"MNIST (full): reading data_dir {target}\n"
    assert dataset.description == (
        f"MNIST, full official dataset: 30 training and 20 test images, read from data_dir {target}; "
        "SHA-256 of every file verified"
    )


def test_explicit_data_dir_is_the_only_place_looked(isolated_data_env, fake_official, tmp_path, monkeypatch):
    fake = fake_official("mnist")
    monkeypatch.setenv("DNN_COURSE_DATA", str(fake.dir))  # would work, but data_dir wins
    (tmp_path / "partial").mkdir()
    shutil.copy(fake.dir / "train-images-idx3-ubyte.gz", tmp_path / "partial")
    with pytest.raises(
        DataNotFoundError, match=r"data_dir='.*partial' does not hold the full MNIST dataset: no complete set"
    ):
        load_dataset("mnist", source="full", data_dir=tmp_path / "partial")


def test_data_from_environment_variable(isolated_data_env, fake_official, monkeypatch, capsys):
    fake = fake_official("fashion-mnist")
    monkeypatch.setenv("DNN_COURSE_DATA", str(fake.dir))
    dataset = load_dataset("fashion-mnist", source="full")
    assert_is(dataset, fake)
    assert capsys.readouterr().out == f"Fashion-MNIST (full): reading DNN_COURSE_DATA={fake.dir}\n"
    assert f"read from DNN_COURSE_DATA={fake.dir}" in dataset.description


def test_bad_file_under_environment_variable_names_the_fix(isolated_data_env, fake_official, monkeypatch):
    fake = fake_official("mnist")
    bad = fake.dir / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-10])  # truncated
    monkeypatch.setenv("DNN_COURSE_DATA", str(fake.dir))
    with pytest.raises(DataFileError) as caught:
        load_dataset("mnist", source="full", verbose=False)
    message = str(caught.value)
    assert str(bad) in message and "gzip stream is truncated" in message
    assert "point DNN_COURSE_DATA elsewhere" in message


def test_user_cache_when_environment_variable_has_nothing(
    isolated_data_env, fake_official, tmp_path, monkeypatch, capsys
):
    fake = fake_official("mnist")
    shutil.copytree(fake.dir, isolated_data_env.cache / "mnist")
    monkeypatch.setenv("DNN_COURSE_DATA", str(tmp_path / "empty"))
    dataset = load_dataset("mnist", source="full")
    assert_is(dataset, fake)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"MNIST (full): DNN_COURSE_DATA={tmp_path / 'empty'} holds no copy (")
    assert out[0].endswith("; looking further")
    assert out[1] == f"MNIST (full): reading the user cache {isolated_data_env.cache / 'mnist'}"
    assert dataset.description.endswith(
        f"read from the user cache {isolated_data_env.cache / 'mnist'}; SHA-256 of every file verified"
    )


def test_debian_package_directory_for_fashion_mnist(isolated_data_env, fake_official, monkeypatch, capsys):
    fake = fake_official("fashion-mnist")
    monkeypatch.setitem(dataset_files.SYSTEM_DIRS, "fashion-mnist", (fake.dir,))
    dataset = load_dataset("fashion-mnist", source="full")  # the mirrors are unreachable: no download tried
    assert_is(dataset, fake)
    assert (
        capsys.readouterr().out
        == f"Fashion-MNIST (full): reading Debian's dataset-fashion-mnist package in {fake.dir}\n"
    )
    assert dataset_files.SYSTEM_DIRS["fashion-mnist"] == (fake.dir,) and dataset_files.SYSTEM_DIRS["mnist"] == ()


def test_nothing_found_offline_lists_the_options(isolated_data_env):
    with pytest.raises(DataNotFoundError) as caught:
        load_dataset("fashion-mnist", source="full", verbose=False)
    message = str(caught.value)
    assert message.startswith(
        "The full Fashion-MNIST dataset is not available: no local copy, and the download failed."
    )
    for expected in (
        "DNN_COURSE_DATA: not set",
        f"the user cache {isolated_data_env.cache / 'fashion-mnist'}: missing train-images-idx3-ubyte[.gz]",
        "cannot connect",
        "1. Set DNN_COURSE_DATA (or pass data_dir=...)",
        "2. Install Debian's package: sudo apt-get install dataset-fashion-mnist",
        "3. Connect to the internet and call again",
        "4. Use the embedded subset that ships with the course: load_dataset('fashion-mnist')",
    ):
        assert expected in message
    assert isinstance(caught.value, FileNotFoundError)


# --- train_val_split ---------------------------------------------------------------------------------


def labelled(n=100, seed=1):
    y = np.random.default_rng(seed).integers(0, 10, size=n)
    x = np.arange(n)
    return x, y


def test_split_is_a_seeded_partition_in_original_order():
    x, y = labelled(200)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, val_size=0.25, seed=3)
    assert len(x_val) == 50 and len(x_tr) == 150
    assert sorted(np.concatenate([x_tr, x_val]).tolist()) == list(range(200))
    assert np.all(np.diff(x_tr) > 0) and np.all(np.diff(x_val) > 0)
    np.testing.assert_array_equal(y[x_tr], y_tr)
    np.testing.assert_array_equal(y[x_val], y_val)
    (_, _), (again, _) = train_val_split(x, y, val_size=0.25, seed=3)
    (_, _), (other, _) = train_val_split(x, y, val_size=0.25, seed=4)
    np.testing.assert_array_equal(again, x_val)
    assert not np.array_equal(other, x_val)


@pytest.mark.parametrize("val_size", [1, 7, 33, 99])
def test_split_count_and_stratification(val_size):
    x, y = labelled(100, seed=5)
    (_, y_tr), (_, y_val) = train_val_split(x, y, val_size=val_size)
    assert len(y_val) == val_size and len(y_tr) == 100 - val_size
    quota = np.bincount(y, minlength=10) * val_size / 100
    assert np.all(np.abs(np.bincount(y_val, minlength=10) - quota) < 1)


def test_split_with_images():
    images = np.random.default_rng(0).random((50, 28, 28), dtype=np.float32)
    y = np.arange(50) % 10
    (x_tr, _), (x_val, y_val) = train_val_split(images, y, val_size=10)
    assert x_tr.shape == (40, 28, 28) and x_val.shape == (10, 28, 28) and x_tr.dtype == np.float32
    assert np.bincount(y_val).tolist() == [1] * 10


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"val_size": 0.0}, ValueError, r"a fractional val_size must be in \(0, 1\), got 0.0"),
        ({"val_size": 1.0}, ValueError, r"a fractional val_size must be in \(0, 1\), got 1.0"),
        ({"val_size": 10}, ValueError, "val_size=10 gives 10 validation examples out of 10; need 1 to 9"),
        ({"val_size": 0}, ValueError, "gives 0 validation examples out of 10"),
        ({"val_size": 0.01}, ValueError, "gives 0 validation examples"),
        ({"val_size": True}, TypeError, "val_size must be a fraction or a count, got True"),
        ({"val_size": "0.1"}, TypeError, "val_size must be a fraction or a count"),
    ],
)
def test_split_rejects_bad_sizes(kwargs, error, message):
    with pytest.raises(error, match=message):
        train_val_split(np.zeros((10, 2)), np.arange(10) % 2, **kwargs)


def test_split_rejects_bad_labels():
    with pytest.raises(ValueError, match="x and y must have the same length, got 5 images and 4 labels"):
        train_val_split(np.zeros(5), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="y must hold integer class labels, got dtype float64"):
        train_val_split(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match=r"y must be a 1-D array of integer class labels, got shape \(4, 1\)"):
        train_val_split(np.zeros(4), np.zeros((4, 1), dtype=int))


# --- one_hot ---------------------------------------------------------------------------------------


def test_one_hot_values_and_dtype():
    encoded = one_hot(np.array([2, 0, 9]), 10)
    assert encoded.shape == (3, 10) and encoded.dtype == np.float64
    expected = np.zeros((3, 10))
    expected[0, 2] = expected[1, 0] = expected[2, 9] = 1
    np.testing.assert_array_equal(encoded, expected)
    assert one_hot([1, 0], num_classes=2, dtype=np.float32).dtype == np.float32
    np.testing.assert_array_equal(one_hot(np.array([1, 0], dtype=np.uint8), 2, dtype=np.float32), [[0, 1], [1, 0]])
    assert one_hot(np.array([], dtype=np.int64)).shape == (0, 10)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([0, 3, 10]), r"labels must be in 0\.\.9 for num_classes=10; found 10 at index 2"),
        (np.array([-1, 3]), r"labels must be in 0\.\.9 for num_classes=10; found -1 at index 0"),
        (np.array([0.0, 1.0]), "y must hold integer class labels, got dtype float64"),
        (np.array([True, False]), "y must hold integer class labels, got dtype bool"),
        (np.zeros((2, 10), dtype=int), r"y must be a 1-D array of integer class labels, got shape \(2, 10\)"),
    ],
)
def test_one_hot_rejects_bad_labels(labels, message):
    with pytest.raises(ValueError, match=message):
        one_hot(labels, 10)


def test_one_hot_rejects_bad_class_count():
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        one_hot([0], 0)
