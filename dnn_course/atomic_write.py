"""Writing a file so that readers only ever see the old or the new whole file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text written as UTF-8) to ``path`` through a temporary file.

    The temporary file sits beside ``path`` and replaces it in one rename, so a
    crash or a full disk never leaves half a file; on failure it is removed and
    ``path`` is unchanged. The file gets ordinary permissions (0644), not the
    private ones of ``tempfile``. Returns ``path``.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
