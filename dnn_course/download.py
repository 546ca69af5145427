"""Fetching the official dataset files from their mirrors.

One file is fetched by :func:`fetch_file`: each mirror in turn, each attempt
streamed with a progress bar into a temporary file next to the destination,
with a timeout on every network operation and retries with exponential
backoff for transient failures (timeouts, dropped connections, incomplete
transfers, HTTP 5xx and 429). The temporary file is renamed into place only
after the SHA-256 of its *decompressed* contents matches, so an interrupted or
bad download never ends up in the cache. A mirror that answers with an error
(HTTP 404, refused connection, unknown host) or with a wrong file is not retried:
the next mirror is tried. When every mirror fails, :class:`DownloadError` lists
what happened with each.

The mirrors of each dataset are :data:`OFFICIAL_MIRRORS`; they can be replaced
with an argument or with the environment variables of :data:`MIRRORS_ENV`
(base URLs separated by spaces or commas), e.g. to use a local copy or, in the
tests, a server on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from . import idx

__all__ = [
    "OFFICIAL_MIRRORS",
    "MIRRORS_ENV",
    "DEFAULT_TIMEOUT",
    "DEFAULT_RETRIES",
    "DEFAULT_BACKOFF",
    "DownloadError",
    "mirrors_for",
    "fetch_file",
]

#: Base URLs of each dataset's official files, tried in this order.
#: MNIST: the copy PyTorch's torchvision downloads from (its original site,
#: yann.lecun.com, no longer serves the files reliably), then the copy of the
#: TensorFlow tutorials. Fashion-MNIST: Zalando's own S3 bucket (the address
#: in its README and in torchvision; plain HTTP), then the files in Zalando's
#: GitHub repository, then the copy Keras downloads from. Every file is verified
#: by the SHA-256 of its decompressed contents, whatever the mirror.
OFFICIAL_MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
}

#: Environment variables that replace a dataset's mirror list.
MIRRORS_ENV: dict[str, str] = {
    "mnist": "DNN_COURSE_MNIST_MIRRORS",
    "fashion-mnist": "DNN_COURSE_FASHION_MNIST_MIRRORS",
}

DEFAULT_TIMEOUT = 30.0  # seconds, for connecting and for each read
DEFAULT_RETRIES = 3  # attempts per mirror for transient failures
DEFAULT_BACKOFF = 1.0  # seconds before the 2nd attempt; doubles after each failure
CHUNK_SIZE = 1 << 16
USER_AGENT = "dnn-course (Deep Neural Networks from Scratch; python urllib)"


class DownloadError(RuntimeError):
    """Every mirror failed for one file. ``attempts`` lists ``(url, reason)`` pairs in order."""

    def __init__(self, filename: str, attempts: list[tuple[str, str]]):
        self.filename = filename
        self.attempts = list(attempts)
        lines = "\n".join(f"  - {url}: {reason}" for url, reason in self.attempts) or "  (no mirrors configured)"
        super().__init__(f"Could not download {filename} from any mirror:\n{lines}")


class _TransientError(Exception):
    """A failure worth retrying on the same mirror."""


class _MirrorError(Exception):
    """A failure of this mirror that retrying will not fix: go to the next one."""


def mirrors_for(dataset: str, mirrors: list[str] | tuple[str, ...] | str | None = None) -> tuple[str, ...]:
    """The base URLs to try for ``dataset``, in order, each ending with ``/``.

    ``mirrors`` (a list, or a string of URLs separated by spaces or commas)
    wins; otherwise the environment variable ``MIRRORS_ENV[dataset]`` if set;
    otherwise ``OFFICIAL_MIRRORS[dataset]``.
    """
    if mirrors is None:
        mirrors = os.environ.get(MIRRORS_ENV[dataset], "").strip() or OFFICIAL_MIRRORS[dataset]
    if isinstance(mirrors, str):
        mirrors = mirrors.replace(",", " ").split()
    return tuple(url if url.endswith("/") else url + "/" for url in mirrors)


def _classify(error: BaseException) -> Exception:
    """Turn a network exception into a _TransientError (retry) or a _MirrorError (next mirror)."""
    if isinstance(error, urllib.error.HTTPError):
        reason = f"HTTP {error.code} {error.reason}"
        if error.code >= 500 or error.code in (408, 429):
            return _TransientError(reason)
        return _MirrorError(reason)
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else OSError(str(error.reason))
    if isinstance(error, (socket.gaierror, ConnectionRefusedError)):
        return _MirrorError(f"cannot connect ({error})")
    if isinstance(error, TimeoutError):
        return _TransientError(f"timed out ({error})")
    if isinstance(error, (http.client.IncompleteRead, ConnectionError, http.client.HTTPException)):
        return _TransientError(f"connection dropped ({type(error).__name__}: {error})")
    if isinstance(error, OSError):
        return _MirrorError(f"{type(error).__name__}: {error}")
    return _MirrorError(repr(error))


def _download_to(url: str, tmp_path: Path, *, timeout: float, verbose: bool, label: str) -> int:
    """Stream ``url`` into ``tmp_path``; return the number of bytes. Raises _TransientError/_MirrorError."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length_header = response.headers.get("Content-Length")
            expected = int(length_header) if length_header and length_header.isdigit() else None
            received = 0
            progress = tqdm(
                total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                disable=not verbose, leave=False,
            )  # fmt: skip
            with open(tmp_path, "wb") as out, progress as bar:
                while chunk := response.read(CHUNK_SIZE):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (_TransientError, _MirrorError):
        raise
    except Exception as error:
        raise _classify(error) from error
    if expected is not None and received != expected:
        raise _TransientError(f"incomplete transfer: received {received:,} of {expected:,} bytes")
    return received


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def fetch_file(
    filename: str,
    mirrors: list[str] | tuple[str, ...],
    dest_dir: os.PathLike | str,
    *,
    expected_sha256: str,
    timeout: float | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    verbose: bool = True,
) -> tuple[Path, str]:
    """Download ``filename`` (e.g. ``"train-images-idx3-ubyte.gz"``) into ``dest_dir``.

    Tries ``base + filename`` for each base URL of ``mirrors`` in order, with up
    to ``retries`` attempts per mirror for transient failures, waiting
    ``backoff * 2**(attempt - 1)`` seconds between attempts. The file is kept
    only if the SHA-256 of its decompressed contents equals ``expected_sha256``;
    it is saved as ``filename`` if it is gzip, else under the name without
    ``.gz``. Returns ``(saved path, URL used)``; raises :class:`DownloadError`
    when every mirror fails (nothing is left in ``dest_dir`` then).
    """
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    retries = DEFAULT_RETRIES if retries is None else retries
    backoff = DEFAULT_BACKOFF if backoff is None else backoff
    if retries < 1:
        raise ValueError(f"retries must be at least 1, got {retries}")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    failures: list[tuple[str, str]] = []
    for position, base in enumerate(mirrors):
        url = base + filename
        for attempt in range(1, retries + 1):
            try:
                saved, size = _attempt(url, dest_dir, filename, expected_sha256, timeout=timeout, verbose=verbose)
            except _TransientError as error:
                failures.append((url, f"attempt {attempt} of {retries}: {error}"))
                if attempt == retries:
                    break
                delay = backoff * 2 ** (attempt - 1)
                if verbose:
                    print(f"  {url}: {error}; retrying in {delay:g} s")
                time.sleep(delay)
            except _MirrorError as error:
                failures.append((url, str(error)))
                break
            else:
                if verbose:
                    print(f"  downloaded {filename} ({size / 2**20:.1f} MiB) from {url}; contents verified (SHA-256)")
                return saved, url
        if verbose and position + 1 < len(mirrors):
            print(f"  {url} failed ({failures[-1][1]}); trying the next mirror")
    raise DownloadError(filename, failures)


def _attempt(
    url: str, dest_dir: Path, filename: str, expected_sha256: str, *, timeout: float, verbose: bool
) -> tuple[Path, int]:
    """One download attempt into a temporary file, verified, then renamed into place.

    Returns ``(saved path, size in bytes)``; on any failure the temporary file is removed.
    """
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{filename}.", suffix=".part")
    os.close(fd)
    tmp_path = Path(tmp_name)
    try:
        size = _download_to(url, tmp_path, timeout=timeout, verbose=verbose, label=filename)
        return _verify_and_move(tmp_path, dest_dir, filename, expected_sha256), size
    finally:
        _unlink_quietly(tmp_path)  # no-op after a successful rename


def _verify_and_move(tmp_path: Path, dest_dir: Path, filename: str, expected_sha256: str) -> Path:
    """Check the downloaded file's decompressed SHA-256, then rename it into place."""
    try:
        contents = idx.read_bytes(tmp_path)
    except idx.DataFileError as error:
        raise _MirrorError(f"bad file: {error.problem}") from None
    actual = idx.sha256_hex(contents)
    if actual != expected_sha256.lower():
        raise _MirrorError(
            f"wrong contents: SHA-256 of the decompressed bytes is {actual}, expected {expected_sha256.lower()}"
            + ("" if contents.startswith(b"\x00\x00") else f"; {idx.describe_start(contents)}")
        )
    with open(tmp_path, "rb") as downloaded:
        is_gzip = downloaded.read(2) == idx.GZIP_MAGIC
    name = filename if is_gzip or not filename.endswith(".gz") else filename[: -len(".gz")]
    final = dest_dir / name
    os.chmod(tmp_path, 0o644)
    os.replace(tmp_path, final)
    return final
