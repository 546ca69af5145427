"""Downloading from mirrors, against a local HTTP server on 127.0.0.1 (never the internet):
fallback between mirrors, retries, timeouts, bad and truncated files, and a clean cache."""

from __future__ import annotations

import gzip
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from dnn_course import datasets, download, idx
from dnn_course.datasets import DataNotFoundError, load_dataset
from dnn_course.download import DownloadError, fetch_file, mirrors_for

FILE = "train-labels-idx1-ubyte.gz"
LABELS = np.arange(50, dtype=np.uint8) % 10
RAW = idx.encode_idx(LABELS)
GOOD = gzip.compress(RAW, mtime=0)
SHA = idx.sha256_hex(RAW)
WRONG = gzip.compress(idx.encode_idx(LABELS[::-1].copy()), mtime=0)  # a valid IDX file, other contents


class MirrorServer:
    """Serves planned responses. ``plan(path, *responses)``: one response per request in order,
    the last one repeated; a response is ``("ok", body)``, ``("status", code)``,
    ``("cut", body, n)`` (announces the whole body, sends n bytes, hangs up) or
    ``("sleep", seconds, body)``. Unplanned paths get 404. ``requests`` lists the paths asked."""

    def __init__(self):
        self.plans: dict[str, list] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                plan = server.plans.get(self.path, [("status", 404)])
                response = plan.pop(0) if len(plan) > 1 else plan[0]
                kind = response[0]
                if kind == "status":
                    self.send_error(response[1])
                    return
                if kind == "sleep":
                    time.sleep(response[1])
                body = response[-1] if kind != "cut" else response[1]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: response[2]] if kind == "cut" else body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, mirror: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mirror}/"

    def plan(self, path: str, *responses) -> None:
        self.plans[path] = list(responses)

    def count(self, path: str) -> int:
        return self.requests.count(path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    mirror_server = MirrorServer()
    yield mirror_server
    mirror_server.close()


@pytest.fixture
def mirrors(server):
    return [server.url("m1"), server.url("m2")]


def fetch(mirrors, dest, **kwargs):
    kwargs = {"expected_sha256": SHA, "backoff": 0.0, "timeout": 5.0, "verbose": False, **kwargs}
    return fetch_file(FILE, mirrors, dest, **kwargs)


def only_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- fetch_file ---------------------------------------------------------------------------------------


def test_good_file_from_the_first_mirror(server, mirrors, tmp_path):
    server.plan(f"/m1/{FILE}", ("ok", GOOD))
    path, url = fetch(mirrors, tmp_path)
    assert (path, url) == (tmp_path / FILE, mirrors[0] + FILE)
    assert path.read_bytes() == GOOD
    assert only_files(tmp_path) == [FILE]
    assert server.requests == [f"/m1/{FILE}"]


def test_missing_file_falls_back_to_the_second_mirror(server, mirrors, tmp_path, capsys):
    server.plan(f"/m2/{FILE}", ("ok", GOOD))  # m1 answers 404
    path, url = fetch(mirrors, tmp_path, verbose=True)
    assert url == mirrors[1] + FILE and path.read_bytes() == GOOD
    assert server.requests == [f"/m1/{FILE}", f"/m2/{FILE}"]  # a 404 is not retried
    out = capsys.readouterr().out
    assert f"{mirrors[0]}{FILE} failed (HTTP 404 Not Found); trying the next mirror" in out
    assert f"downloaded {FILE} (0.0 MiB) from {mirrors[1]}{FILE}; contents verified (SHA-256)" in out
    assert only_files(tmp_path) == [FILE]


@pytest.mark.parametrize(
    ("bad_body", "reason"),
    [
        (WRONG, "wrong contents: SHA-256 of the decompressed bytes is"),
        (GOOD[:-12], "bad file: the gzip stream is truncated"),
        (b"<html><body>Access denied</body></html>", "looks like an HTML/XML page"),
    ],
    ids=["corrupted", "truncated file", "error page"],
)
def test_bad_file_on_a_mirror_is_discarded_and_the_next_mirror_used(server, mirrors, tmp_path, bad_body, reason):
    server.plan(f"/m1/{FILE}", ("ok", bad_body))
    server.plan(f"/m2/{FILE}", ("ok", GOOD))
    path, url = fetch(mirrors, tmp_path)
    assert url == mirrors[1] + FILE and path.read_bytes() == GOOD
    assert server.count(f"/m1/{FILE}") == 1  # a bad file is not fetched again
    assert only_files(tmp_path) == [FILE]
    # With no good mirror at all, the reason is reported and nothing is kept.
    server.plan(f"/m2/{FILE}", ("status", 404))
    empty = tmp_path / "empty"
    with pytest.raises(DownloadError) as caught:
        fetch(mirrors, empty)
    assert reason in str(caught.value)
    assert only_files(empty) == []


def test_transient_error_is_retried_on_the_same_mirror(server, mirrors, tmp_path, capsys):
    server.plan(f"/m1/{FILE}", ("status", 503), ("ok", GOOD))
    path, url = fetch(mirrors, tmp_path, verbose=True)
    assert url == mirrors[0] + FILE and path.read_bytes() == GOOD
    assert server.requests == [f"/m1/{FILE}", f"/m1/{FILE}"]
    assert f"{mirrors[0]}{FILE}: HTTP 503 Service Unavailable; retrying in 0 s" in capsys.readouterr().out


def test_backoff_doubles_between_attempts(server, mirrors, tmp_path, monkeypatch):
    delays = []
    monkeypatch.setattr(download.time, "sleep", delays.append)
    server.plan(f"/m1/{FILE}", ("status", 500), ("status", 502), ("status", 503), ("ok", GOOD))
    server.plan(f"/m2/{FILE}", ("ok", GOOD))
    _, url = fetch(mirrors, tmp_path, retries=3, backoff=0.5)
    assert delays == [0.5, 1.0]  # three attempts on m1, then m2
    assert url == mirrors[1] + FILE and server.count(f"/m1/{FILE}") == 3


def test_interrupted_transfer_is_retried_then_abandoned(server, mirrors, tmp_path):
    server.plan(f"/m1/{FILE}", ("cut", GOOD, 20))
    server.plan(f"/m2/{FILE}", ("ok", GOOD))
    path, url = fetch(mirrors, tmp_path, retries=2)
    assert url == mirrors[1] + FILE and path.read_bytes() == GOOD
    assert server.count(f"/m1/{FILE}") == 2
    assert only_files(tmp_path) == [FILE]


def test_timeout_moves_on(server, mirrors, tmp_path):
    server.plan(f"/m1/{FILE}", ("sleep", 1.0, GOOD))
    server.plan(f"/m2/{FILE}", ("ok", GOOD))
    path, url = fetch(mirrors, tmp_path, retries=1, timeout=0.2)
    assert url == mirrors[1] + FILE and path.read_bytes() == GOOD


def test_refused_connection_is_not_retried(server, tmp_path, unreachable_url):
    server.plan(f"/m2/{FILE}", ("ok", GOOD))
    dead = unreachable_url
    start = time.monotonic()
    _, url = fetch([dead, server.url("m2")], tmp_path, retries=3, backoff=10.0)
    assert url == server.url("m2") + FILE
    assert time.monotonic() - start < 10.0  # no backoff sleep happened


def test_every_mirror_failing_lists_each_and_leaves_nothing(server, mirrors, tmp_path):
    server.plan(f"/m1/{FILE}", ("status", 503))
    server.plan(f"/m2/{FILE}", ("ok", WRONG))
    with pytest.raises(DownloadError) as caught:
        fetch(mirrors, tmp_path, retries=2)
    message = str(caught.value)
    assert message.startswith(f"Could not download {FILE} from any mirror:\n")
    assert f"  - {mirrors[0]}{FILE}: attempt 1 of 2: HTTP 503 Service Unavailable" in message
    assert f"  - {mirrors[0]}{FILE}: attempt 2 of 2: HTTP 503 Service Unavailable" in message
    assert f"  - {mirrors[1]}{FILE}: wrong contents" in message
    assert [url for url, _ in caught.value.attempts] == [mirrors[0] + FILE] * 2 + [mirrors[1] + FILE]
    assert only_files(tmp_path) == []


def test_uncompressed_file_is_kept_under_its_raw_name(server, mirrors, tmp_path):
    server.plan(f"/m1/{FILE}", ("ok", RAW))
    path, _ = fetch(mirrors, tmp_path)
    assert path == tmp_path / "train-labels-idx1-ubyte" and path.read_bytes() == RAW


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="retries must be at least 1, got 0"):
        fetch([], tmp_path, retries=0)
    with pytest.raises(DownloadError, match=r"\(no mirrors configured\)"):
        fetch([], tmp_path)


# --- mirror lists ------------------------------------------------------------------------------------


def test_official_mirrors():
    for name in datasets.DATASET_NAMES:
        assert len(download.OFFICIAL_MIRRORS[name]) >= 2
        assert all(
            url.startswith(("https://", "http://")) and url.endswith("/") for url in download.OFFICIAL_MIRRORS[name]
        )
    assert download.OFFICIAL_MIRRORS["mnist"][0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert (
        download.OFFICIAL_MIRRORS["fashion-mnist"][0] == "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    )


def test_mirror_overrides(monkeypatch):
    monkeypatch.delenv("DNN_COURSE_MNIST_MIRRORS", raising=False)
    assert mirrors_for("mnist") == download.OFFICIAL_MIRRORS["mnist"]
    monkeypatch.setenv("DNN_COURSE_MNIST_MIRRORS", "http://a.example/x, http://b.example/y/")
    assert mirrors_for("mnist") == ("http://a.example/x/", "http://b.example/y/")
    assert mirrors_for("mnist", ["http://c.example"]) == ("http://c.example/",)
    assert mirrors_for("mnist", "http://d.example/ http://e.example/") == ("http://d.example/", "http://e.example/")
    assert mirrors_for("fashion-mnist", None) == download.OFFICIAL_MIRRORS["fashion-mnist"]


# --- load_dataset through the download path ----------------------------------------------------------


@pytest.fixture
def served_fake(server, fake_official, isolated_data_env, monkeypatch):
    """The stand-in MNIST files served by mirror m2 only (m1 has nothing); the mirrors set by env var."""
    fake = fake_official("mnist")
    for path in fake.dir.iterdir():
        server.plan(f"/m2/{path.name}", ("ok", path.read_bytes()))
    monkeypatch.setenv("DNN_COURSE_MNIST_MIRRORS", f"{server.url('m1')} {server.url('m2')}")
    fake.cache = isolated_data_env.cache / "mnist"
    return fake


def test_download_into_the_cache_then_read_it_from_there(server, served_fake, capsys):
    dataset = load_dataset("mnist", source="full")
    (x_train, y_train), (x_test, y_test) = dataset
    np.testing.assert_array_equal(y_train, served_fake.arrays["train_labels"])
    np.testing.assert_array_equal(x_test, served_fake.arrays["test_images"] / np.float32(255))
    assert only_files(served_fake.cache) == sorted(p.name for p in served_fake.dir.iterdir())
    out = capsys.readouterr().out
    assert out.startswith(f"MNIST (full): downloading 4 file(s) into the user cache {served_fake.cache}\n")
    assert dataset.description == (
        f"MNIST, full official dataset: 30 training and 20 test images, from the user cache {served_fake.cache}, "
        f"4 of the 4 files downloaded now from {server.url('m2')}; SHA-256 of every file verified"
    )
    asked = len(server.requests)
    again = load_dataset("mnist", source="full")
    assert len(server.requests) == asked  # no new request: the cache is used
    assert again.description.endswith(f"read from the user cache {served_fake.cache}; SHA-256 of every file verified")


def test_mirror_argument_overrides_the_environment(server, served_fake, monkeypatch, unreachable_url):
    monkeypatch.setenv("DNN_COURSE_MNIST_MIRRORS", unreachable_url)
    dataset = load_dataset("mnist", source="full", mirrors=[server.url("m2")], verbose=False)
    assert server.url("m2") in dataset.description


def test_only_missing_files_are_downloaded(server, served_fake):
    served_fake.cache.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        shutil.copy(served_fake.dir / name, served_fake.cache)
    dataset = load_dataset("mnist", source="full", verbose=False)
    assert sorted(set(server.requests)) == [
        "/m1/t10k-labels-idx1-ubyte.gz", "/m1/train-labels-idx1-ubyte.gz",
        "/m2/t10k-labels-idx1-ubyte.gz", "/m2/train-labels-idx1-ubyte.gz",
    ]  # fmt: skip
    assert "2 of the 4 files downloaded now" in dataset.description


@pytest.mark.parametrize("damage", ["truncated", "other contents", "not IDX"])
def test_bad_cached_file_is_reported_removed_and_downloaded_again(server, served_fake, damage):
    shutil.copytree(served_fake.dir, served_fake.cache)
    cached = served_fake.cache / "train-images-idx3-ubyte.gz"
    good = cached.read_bytes()
    cached.write_bytes(
        {"truncated": good[: len(good) // 2], "other contents": (served_fake.dir / "t10k-images-idx3-ubyte.gz").read_bytes(),
         "not IDX": b"garbage"}[damage]
    )  # fmt: skip
    with pytest.warns(
        UserWarning, match=r"Removed the bad cached file .*train-images-idx3-ubyte\.gz .*downloaded again"
    ):
        dataset = load_dataset("mnist", source="full", verbose=False)
    assert cached.read_bytes() == good
    assert server.count("/m2/train-images-idx3-ubyte.gz") == 1 and len(set(server.requests)) == 2
    np.testing.assert_array_equal(dataset[0][0], served_fake.arrays["train_images"] / np.float32(255))
    assert only_files(served_fake.cache) == sorted(p.name for p in served_fake.dir.iterdir())


def test_bad_file_on_every_mirror_never_reaches_the_cache(server, served_fake):
    for mirror in ("m1", "m2"):
        server.plan(f"/{mirror}/train-labels-idx1-ubyte.gz", ("ok", WRONG))
    with pytest.raises(DataNotFoundError) as caught:
        load_dataset("mnist", source="full", verbose=False)
    assert isinstance(caught.value.__cause__, DownloadError)
    message = str(caught.value)
    assert "downloading train-labels-idx1-ubyte.gz:" in message
    assert f"{server.url('m1')}train-labels-idx1-ubyte.gz: wrong contents" in message
    assert "train-labels-idx1-ubyte" not in " ".join(only_files(served_fake.cache))


def test_every_mirror_failing_lists_the_options(server, fake_official, isolated_data_env, monkeypatch):
    fake_official("fashion-mnist")
    monkeypatch.setenv("DNN_COURSE_FASHION_MNIST_MIRRORS", f"{server.url('m1')} {server.url('m2')}")
    with pytest.raises(DataNotFoundError) as caught:
        load_dataset("fashion-mnist", source="full", verbose=False)
    message = str(caught.value)
    first = "train-images-idx3-ubyte.gz"
    for expected in (
        "The full Fashion-MNIST dataset is not available: no local copy, and the download failed.",
        f"downloading {first}:\n      {server.url('m1')}{first}: HTTP 404 Not Found\n      {server.url('m2')}{first}: HTTP 404 Not Found",
        "Set DNN_COURSE_DATA (or pass data_dir=...)",
        "sudo apt-get install dataset-fashion-mnist",
        f"Connect to the internet and call again: the files (about 30 MB) are downloaded into {isolated_data_env.cache / 'fashion-mnist'}",
        "load_dataset('fashion-mnist') (source='embedded'",
    ):
        assert expected in message
    assert server.requests == [f"/m1/{first}", f"/m2/{first}"]  # stops at the first file that cannot be had
    assert only_files(isolated_data_env.cache / "fashion-mnist") == []


def test_mnist_options_do_not_mention_the_debian_package(isolated_data_env):
    with pytest.raises(DataNotFoundError) as caught:
        load_dataset("mnist", source="full", verbose=False)
    assert "apt-get" not in str(caught.value) and "3. Use the embedded subset" in str(caught.value)
