"""Data fixtures shared by the test suite.

* ``full_data_dir``: the directory of the full official datasets (``mnist/``,
  ``fashion-mnist/``), from ``DNN_COURSE_FULL_DATA`` or ``../shared/data`` next to
  the repository; tests that use it are skipped, with the reason, when it is absent.
* ``isolated_data_env``: no ``DNN_COURSE_DATA``, an empty cache in a temporary
  directory, no system package directories, and mirrors that point at a closed
  port on 127.0.0.1, so a test can never read the user's data or reach the internet.
* ``fake_official``: tiny stand-ins for the official files, accepted as official
  (their checksums are patched in for the test), to test the loading order fast.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def full_data_path() -> Path:
    """Where the full official datasets are expected (they may be absent)."""
    return Path(os.environ.get("DNN_COURSE_FULL_DATA") or REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def full_data_dir() -> Path:
    path = full_data_path()
    missing = [name for name in ("mnist", "fashion-mnist") if not (path / name).is_dir()]
    if missing:
        pytest.skip(
            f"the full datasets are not at {path} (missing {', '.join(m + '/' for m in missing)}): "
            "set DNN_COURSE_FULL_DATA to a directory holding mnist/ and fashion-mnist/"
        )
    return path


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def unreachable_url() -> str:
    return closed_port_url()


@pytest.fixture
def isolated_data_env(tmp_path, monkeypatch):
    from dnn_course import datasets, download

    cache = tmp_path / "cache"
    monkeypatch.delenv("DNN_COURSE_DATA", raising=False)
    monkeypatch.setenv("DNN_COURSE_CACHE", str(cache))
    for variable in download.MIRRORS_ENV.values():
        monkeypatch.setenv(variable, closed_port_url())
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {name: () for name in datasets.DATASET_NAMES})
    monkeypatch.setattr(download, "DEFAULT_BACKOFF", 0.0)
    monkeypatch.setattr(download, "DEFAULT_TIMEOUT", 5.0)
    return SimpleNamespace(cache=cache)


@pytest.fixture
def fake_official(tmp_path, monkeypatch):
    """Factory ``make(name, n_train=30, n_test=20)``: writes four small official-looking files.

    Returns a namespace with ``dir`` (the files, gzipped, flat), ``arrays`` (role ->
    uint8 array: images ``(n, 28, 28)``, labels ``(n,)``) and ``sha256`` (role -> digest,
    also patched into ``datasets.OFFICIAL_SHA256[name]``).
    """
    from dnn_course import datasets, idx

    def make(name: str, *, n_train: int = 30, n_test: int = 20) -> SimpleNamespace:
        rng = np.random.default_rng(list(datasets.DATASET_NAMES).index(name))
        arrays = {}
        for split, n in (("train", n_train), ("test", n_test)):
            arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            arrays[f"{split}_labels"] = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        directory = tmp_path / f"official-{name}"
        sha256 = {}
        for role, array in arrays.items():
            idx.write_idx(directory / f"{datasets.FILE_NAMES[role]}.gz", array)
            sha256[role] = idx.sha256_hex(idx.encode_idx(array))
            monkeypatch.setitem(datasets.OFFICIAL_SHA256[name], role, sha256[role])
        return SimpleNamespace(name=name, dir=directory, arrays=arrays, sha256=sha256)

    return make


@pytest.fixture(scope="module")
def reference():
    """The reference implementation from solutions/ (skipped where solutions/ is absent, as in students' copies)."""
    from dnn_course.reference import load_reference

    try:
        return load_reference()
    except FileNotFoundError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def skip_or_fail():
    """``skip_or_fail(message)``: skip the test here, but fail it when ``CI`` is set (CI installs what the suite needs)."""

    def skip(message: str) -> None:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{message}. CI is set, so this test must run: install what it needs in .ci/run.")
        pytest.skip(message)

    return skip


@pytest.fixture(scope="session")
def bubblewrap(skip_or_fail) -> None:
    """Tests that need the bubblewrap sandbox (the autograder's expected grades assume it)."""
    from autograder import sandbox

    level, how = sandbox.detect_isolation()
    if level != sandbox.ISOLATION_BWRAP:
        skip_or_fail(f"needs bubblewrap (apt-get install bubblewrap) and user namespaces or root; here: {how}")
