"""Where the MNIST and Fashion-MNIST files are, checked and read: the work behind :func:`dnn_course.datasets.load_dataset`.

Reads IDX files (gzipped or not, :mod:`dnn_course.idx`) and ``data/embedded/MANIFEST.json``; writes only
into the user cache (:func:`cache_dir`: downloads, :mod:`dnn_course.download`, and the removal of a bad
cached file). Every reader returns :class:`Found`: the training and test splits as ``(x, y)`` with
``x`` float32 ``(n, 28, 28)`` in [0, 1] (C-contiguous) and ``y`` int64 ``(n,)`` in 0..9, a one-line
description of the data and the path of each file read.

* :func:`read_embedded`: the subset committed under ``data/embedded/<dataset>/`` (the first 10,000
  official training images and the official 10,000 test images), found next to the package (or
  inside it, when installed from a wheel) and verified against the manifest.
* :func:`read_full`: the official files (60,000 training, 10,000 test images), verified by the
  SHA-256 of their decompressed contents, from the first of: the ``data_dir`` argument (only
  there, if given); the directory in ``DNN_COURSE_DATA``; the user cache; for Fashion-MNIST,
  Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``); a download
  from the official mirrors into the user cache.

A directory may hold the files gzipped (``name.gz``) or not (``name``), either directly, in a
``<dataset>/`` subdirectory, or in torchvision's layout (``MNIST/raw/``, ``FashionMNIST/raw/``).

Bad files: one in ``data_dir`` or ``DNN_COURSE_DATA`` (or in the embedded subset) raises
:class:`DataFileError` naming the file and the fix; one in the cache is reported (a warning),
removed and downloaded again; one from the Debian package is reported and skipped. Nothing
unverified is ever returned or cached.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import platformdirs

from . import decoded_data, download, idx
from .idx import ChecksumError, DataFileError

__all__ = [
    "DATASET_NAMES",
    "FILE_NAMES",
    "OFFICIAL_SHA256",
    "TITLES",
    "DataNotFoundError",
    "Found",
    "cache_dir",
    "read_embedded",
    "read_full",
    "read_split",
]

DATASET_NAMES = ("mnist", "fashion-mnist")
TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28)

#: The four files of each dataset (names without ``.gz``), by role.
ROLES = ("train_images", "train_labels", "test_images", "test_labels")
FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: SHA-256 of the *decompressed* official files: the same for every faithful copy,
#: whatever gzip container a mirror serves.
OFFICIAL_SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

#: Directories where system packages install the files (Debian's dataset-fashion-mnist).
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "mnist": (),
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}
DEBIAN_PACKAGE = {"fashion-mnist": "dataset-fashion-mnist"}
TORCHVISION_DIRS = {"mnist": "MNIST/raw", "fashion-mnist": "FashionMNIST/raw"}
DOWNLOAD_SIZE = {"mnist": "about 11 MB", "fashion-mnist": "about 30 MB"}

#: The embedded subset: ``data/embedded`` in a checkout (the repository or the students' kit,
#: with the package installed editable), or ``dnn_course/embedded`` inside an installed wheel
#: (pyproject.toml maps the one onto the other).
REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
CHECKOUT_EMBEDDED_DIR = REPO_ROOT / "data" / "embedded"
EMBEDDED_DIR = PACKAGE_EMBEDDED_DIR if (PACKAGE_EMBEDDED_DIR / "MANIFEST.json").is_file() else CHECKOUT_EMBEDDED_DIR
MANIFEST_NAME = "MANIFEST.json"

DATA_ENV = "DNN_COURSE_DATA"
CACHE_ENV = "DNN_COURSE_CACHE"


class DataNotFoundError(FileNotFoundError):
    """The requested data is nowhere to be found (the message lists where it looked and the options)."""


class Found(NamedTuple):
    """One dataset as read: ``train`` and ``test`` are ``(x, y)``, ``x`` float32 ``(n, 28, 28)`` in [0, 1],
    ``y`` int64 ``(n,)`` in 0..9; ``description`` says which data, how many images and where from;
    ``files`` maps each role (``"train_images"``, ...) to the path read."""

    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    description: str
    files: dict[str, Path]


def cache_dir() -> Path:
    """The user cache directory of downloaded files: ``DNN_COURSE_CACHE`` if set, else
    ``platformdirs.user_cache_dir("dnn-course")`` (e.g. ``~/.cache/dnn-course`` on Linux)."""
    override = os.environ.get(CACHE_ENV, "").strip()
    return Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("dnn-course"))


# ----------------------------------------------------------------------------------------------
# Reading and checking one split


def _check_split(images, labels, images_path, labels_path, fix: str) -> None:
    """Images ``(n, 28, 28)`` and labels ``(n,)`` in 0..9 that belong together."""
    if images.shape[1:] != IMAGE_SHAPE:
        raise DataFileError(images_path, f"images are {images.shape[1:]} pixels, expected {IMAGE_SHAPE}", fix)
    if len(images) != len(labels):
        raise DataFileError(
            labels_path,
            f"holds {len(labels):,} labels but the images file {images_path} holds {len(images):,} images "
            "(the two files do not belong together)",
            fix,
        )
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DataFileError(
            labels_path,
            f"labels must be in 0..{NUM_CLASSES - 1}, found {int(labels[bad[0]])} at index {int(bad[0])} "
            f"({bad.size:,} labels out of range)",
            fix,
        )


def _to_arrays(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``(n, 28, 28)`` -> float32 in [0, 1]; uint8 labels ``(n,)`` -> int64."""
    x = np.divide(images, np.float32(255.0), dtype=np.float32)
    y = labels.astype(np.int64)
    return np.ascontiguousarray(x), y


def read_split(
    images_path: os.PathLike | str,
    labels_path: os.PathLike | str,
    *,
    images_sha256: str | None = None,
    labels_sha256: str | None = None,
    fix: str = idx.DEFAULT_FIX,
) -> tuple[np.ndarray, np.ndarray]:
    """Read one split (images and labels IDX files, gzip or raw) as ``(x, y)``.

    ``x``: float32 ``(n, 28, 28)`` in [0, 1], C-contiguous; ``y``: int64 ``(n,)`` in 0..9.
    Checks both files (format, optional SHA-256 of the decompressed bytes), that the
    counts agree and that labels are in range; raises :class:`DataFileError` otherwise.
    """
    images = idx.read_images(images_path, expected_sha256=images_sha256, fix=fix)
    labels = idx.read_labels(labels_path, expected_sha256=labels_sha256, fix=fix)
    _check_split(images, labels, images_path, labels_path, fix)
    return _to_arrays(images, labels)


def _identify(sha256: str) -> str | None:
    """Which official file has these decompressed contents, as a phrase, if any."""
    for name, table in OFFICIAL_SHA256.items():
        for role, digest in table.items():
            if digest == sha256:
                split, kind = role.split("_")
                return f"the official {TITLES[name]} {'training' if split == 'train' else 'test'} {kind}"
    return None


def _read_official(name: str, role: str, path: Path, fix: str) -> np.ndarray:
    """Read one official file, verified by its checksum: uint8 images ``(n, 28, 28)`` or labels ``(n,)``."""
    reader = idx.read_images if role.endswith("images") else idx.read_labels
    try:
        return reader(path, expected_sha256=OFFICIAL_SHA256[name][role], fix=fix)
    except ChecksumError as error:
        other = _identify(error.actual)
        if other is None:
            raise
        raise ChecksumError(
            path, actual=error.actual, expected=error.expected,
            fix=f"This file holds {other}, not the {TITLES[name]} {FILE_NAMES[role]} file. {fix}",
        ) from None  # fmt: skip


def _assemble(name: str, arrays: dict, paths: dict, origin: str, fix: str) -> Found:
    """Check the four uint8 arrays, convert them and describe the result."""
    splits = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        _check_split(images, labels, paths[f"{split}_images"], paths[f"{split}_labels"], fix)
        splits.append(_to_arrays(images, labels))
    (x_train, _), (x_test, _) = splits
    description = (
        f"{TITLES[name]}, full official dataset: {len(x_train):,} training and {len(x_test):,} test images, "
        f"{origin}; SHA-256 of every file verified"
    )
    return Found(splits[0], splits[1], description, paths)


# ----------------------------------------------------------------------------------------------
# The embedded subset


def _load_manifest(embedded_dir: Path) -> dict:
    manifest_path = embedded_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise DataNotFoundError(
            f"The embedded data subset is not at {embedded_dir} (no {MANIFEST_NAME}). It ships in data/embedded/ "
            "of the course repository and of the students' kit, next to the dnn_course package, and inside the "
            "installed package when it is installed from a wheel: reinstall the package from the kit "
            "(`make lab` does it), restore the folder with `git checkout -- data/embedded`, or use source='full'."
        )
    try:
        return json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataFileError(
            manifest_path, f"not valid JSON ({error})", "Restore it with `git checkout -- data/embedded`."
        ) from None


def _digests(entry: dict) -> dict[str, str]:
    """Role (``"train_images"``, ...) to the SHA-256 the manifest's ``entry`` of one dataset gives its file."""
    return {role: file["sha256"] for role, file in entry["files"].items()}


def decode_embedded(folder: os.PathLike | str) -> None:
    """Decode every embedded subset once into ``folder`` (:mod:`dnn_course.decoded_data`): processes that
    name it in ``DNN_COURSE_DECODED_DATA`` then map the arrays instead of decoding the files again."""
    manifest = _load_manifest(EMBEDDED_DIR)
    for name in DATASET_NAMES:
        found = read_embedded(name, verbose=False)
        decoded_data.write(folder, name, _digests(manifest["datasets"][name]), found.train, found.test)


def read_embedded(name: str, verbose: bool) -> Found:
    """The embedded subset of ``name`` (``"mnist"`` or ``"fashion-mnist"``), verified against its manifest."""
    embedded_dir = EMBEDDED_DIR
    manifest = _load_manifest(embedded_dir)
    entry = manifest["datasets"][name]
    fix = (
        "The embedded subset must match data/embedded/MANIFEST.json: restore it with "
        "`git checkout -- data/embedded` (or regenerate it with scripts/make_embedded_subset.py)."
    )
    decoded = decoded_data.read(name, _digests(entry))  # the grader's copy, decoded once per run, or None
    splits, paths = [], {}
    for index, split in enumerate(("train", "test")):
        images_entry, labels_entry = entry["files"][f"{split}_images"], entry["files"][f"{split}_labels"]
        images_path = embedded_dir / name / images_entry["file"]
        labels_path = embedded_dir / name / labels_entry["file"]
        for path in (images_path, labels_path):
            if not path.is_file():
                raise DataNotFoundError(f"The embedded file {path} is missing. {fix}")
        splits.append(
            decoded[index] if decoded is not None else read_split(
                images_path, labels_path,
                images_sha256=images_entry["sha256"], labels_sha256=labels_entry["sha256"], fix=fix,
            )
        )  # fmt: skip
        paths[f"{split}_images"], paths[f"{split}_labels"] = images_path, labels_path
    (x_train, _), (x_test, _) = splits
    train_cut, test_cut = entry["files"]["train_images"]["cut"], entry["files"]["test_images"]["cut"]
    if embedded_dir == PACKAGE_EMBEDDED_DIR:
        where = f"dnn_course/embedded/{name} in the installed package"
    else:
        try:
            where = f"{(embedded_dir.relative_to(REPO_ROOT) / name).as_posix()} in the course repository"
        except ValueError:
            where = str(embedded_dir / name)
    description = (
        f"{TITLES[name]}, embedded subset: {len(x_train):,} training images ({train_cut}) and "
        f"{len(x_test):,} test images ({test_cut}), from {where}; "
        f"SHA-256 verified against {MANIFEST_NAME}"
    )
    if verbose:
        print(
            f"{TITLES[name]}: embedded subset, {len(x_train):,} training / {len(x_test):,} test images "
            f"(use source='full' for all 60,000 training images)"
        )
    return Found(splits[0], splits[1], description, paths)


# ----------------------------------------------------------------------------------------------
# The full official files


def _find_in(directory: Path) -> dict[str, Path]:
    """The official files present directly in ``directory``, by role (raw name preferred to .gz)."""
    found = {}
    for role, file_name in FILE_NAMES.items():
        for candidate in (directory / file_name, directory / f"{file_name}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
    return found


def _find_complete(directory: Path, name: str) -> tuple[Path | None, dict[str, Path]]:
    """The first of ``directory/<name>``, ``directory/<torchvision layout>``, ``directory`` holding all four files."""
    for candidate in (directory / name, directory / TORCHVISION_DIRS[name], directory):
        found = _find_in(candidate)
        if len(found) == len(ROLES):
            return candidate, found
    return None, {}


def _missing_text(directory: Path, name: str) -> str:
    looked = ", ".join(str(d) for d in (directory / name, directory / TORCHVISION_DIRS[name], directory))
    if not directory.is_dir():
        return f"{directory} is not a directory"
    return f"no complete set of the four files in {looked}"


def _read_directory(name: str, files: dict[str, Path], origin: str, fix: str) -> Found:
    arrays = {role: _read_official(name, role, path, fix) for role, path in files.items()}
    return _assemble(name, arrays, files, origin, fix)


def _files_list() -> str:
    return ", ".join(f"{file_name}.gz" for file_name in FILE_NAMES.values())


def read_full(name: str, data_dir, verbose: bool, mirrors) -> Found:
    """The full official ``name``, from the first place that holds it (see the module's docstring), downloaded if none does."""
    title = TITLES[name]

    def say(message: str) -> None:
        if verbose:
            print(f"{title} (full): {message}")

    # 1. An explicit directory: only there.
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        found_dir, files = _find_complete(directory, name)
        if found_dir is None:
            raise DataNotFoundError(
                f"data_dir={str(directory)!r} does not hold the full {title} dataset: "
                f"{_missing_text(directory, name)}. "
                f"Expected the official files {_files_list()} (gzipped or not). Pass another data_dir, "
                "or leave it out to use DNN_COURSE_DATA, the cache or a download."
            )
        say(f"reading data_dir {found_dir}")
        fix = "Replace it with a good copy of the official file, or pass another data_dir."
        return _read_directory(name, files, f"read from data_dir {found_dir}", fix)

    tried: list[str] = []
    # 2. DNN_COURSE_DATA.
    env_value = os.environ.get(DATA_ENV, "").strip()
    if env_value:
        directory = Path(env_value).expanduser()
        found_dir, files = _find_complete(directory, name)
        if found_dir is not None:
            say(f"reading {DATA_ENV}={found_dir}")
            fix = f"Replace it with a good copy of the official file, or point {DATA_ENV} elsewhere (or unset it)."
            return _read_directory(name, files, f"read from {DATA_ENV}={found_dir}", fix)
        reason = _missing_text(directory, name)
        say(f"{DATA_ENV}={directory} holds no copy ({reason}); looking further")
        tried.append(f"{DATA_ENV}={directory}: {reason}")
    else:
        tried.append(f"{DATA_ENV}: not set")

    # 3. The user cache: keep every good file, remove bad ones.
    cache = cache_dir() / name
    cache_fix = f"Delete it by hand; it will be downloaded again (the cache is {cache}; {CACHE_ENV} moves it)."
    arrays, paths = {}, {}
    for role, path in _find_in(cache).items():
        try:
            arrays[role] = _read_official(name, role, path, cache_fix)
            paths[role] = path
        except DataFileError as error:
            _discard_bad_cached_file(path, error, cache_fix)
    if len(arrays) == len(ROLES):
        say(f"reading the user cache {cache}")
        return _assemble(name, arrays, paths, f"read from the user cache {cache}", cache_fix)
    missing = [role for role in ROLES if role not in arrays]
    tried.append(f"the user cache {cache}: missing " + ", ".join(FILE_NAMES[role] + "[.gz]" for role in missing))

    # 4. A system package (Debian's dataset-fashion-mnist).
    for system_dir in SYSTEM_DIRS[name]:
        package = DEBIAN_PACKAGE[name]
        files = _find_in(system_dir)
        if len(files) < len(ROLES):
            tried.append(f"Debian's {package} package ({system_dir}): not installed")
            continue
        fix = f"Reinstall the package: sudo apt-get install --reinstall {package}"
        try:
            dataset = _read_directory(name, files, f"read from Debian's {package} package in {system_dir}", fix)
        except DataFileError as error:
            warnings.warn(f"Skipping Debian's {package} files: {error}", stacklevel=3)
            tried.append(f"Debian's {package} package ({system_dir}): {error.problem}")
            continue
        say(f"reading Debian's {package} package in {system_dir}")
        return dataset

    # 5. Download what is missing into the cache.
    mirror_list = download.mirrors_for(name, mirrors)
    say(f"downloading {len(missing)} file(s) into the user cache {cache}")
    used_urls = []
    for role in missing:
        try:
            path, url = download.fetch_file(
                f"{FILE_NAMES[role]}.gz", mirror_list, cache,
                expected_sha256=OFFICIAL_SHA256[name][role], verbose=verbose,
            )  # fmt: skip
        except download.DownloadError as error:
            failures = [f"\n      {url}: {reason}" for url, reason in error.attempts] or [" no mirror configured"]
            tried.append(f"downloading {error.filename}:" + "".join(failures))
            raise DataNotFoundError(_not_found_message(name, tried, cache)) from error
        arrays[role] = _read_official(name, role, path, cache_fix)
        paths[role] = path
        used_urls.append(url.rsplit("/", 1)[0] + "/")
    sources = ", ".join(dict.fromkeys(used_urls))
    origin = f"from the user cache {cache}, {len(missing)} of the 4 files downloaded now from {sources}"
    return _assemble(name, arrays, paths, origin, cache_fix)


def _discard_bad_cached_file(path: Path, error: DataFileError, fix: str) -> None:
    """Report a bad cached file and remove it, so that it is downloaded again and never used."""
    try:
        path.unlink()
    except OSError as unlink_error:
        raise DataFileError(path, f"{error.problem}; it could not be removed ({unlink_error})", fix) from error
    warnings.warn(f"Removed the bad cached file {path} ({error.problem}); it will be downloaded again.", stacklevel=4)


def _not_found_message(name: str, tried: list[str], cache: Path) -> str:
    title = TITLES[name]
    options = [
        f"Set {DATA_ENV} (or pass data_dir=...) to a directory holding the four official files "
        f"{_files_list()} (gzipped or not).",
    ]
    if name in DEBIAN_PACKAGE:
        options.append(f"Install Debian's package: sudo apt-get install {DEBIAN_PACKAGE[name]}")
    options.append(
        f"Connect to the internet and call again: the files ({DOWNLOAD_SIZE[name]}) are downloaded "
        f"into {cache} ({CACHE_ENV} moves the cache)."
    )
    options.append(
        f"Use the embedded subset that ships with the course: load_dataset({name!r}) "
        "(source='embedded': 10,000 training and 10,000 test images)."
    )
    looked = "\n".join(f"  - {line}" for line in tried)
    numbered = "\n".join(f"  {i}. {option}" for i, option in enumerate(options, start=1))
    return (
        f"The full {title} dataset is not available: no local copy, and the download failed.\n"
        f"Tried:\n{looked}\nOptions:\n{numbered}"
    )
