"""The processes of one submission, found in ``/proc`` by a marker in their environment.

Every process the sandbox starts for a submission carries
``AUTOGRADER_SANDBOX_ID=<marker>`` (:data:`MARKER_VARIABLE`) in its environment.
Reads ``/proc`` (each process's ``stat``, ``environ``, ``smaps_rollup``,
``statm`` and ``task`` folder); writes nothing; :func:`kill_marked_processes`
sends ``SIGKILL``. Linux only: where ``/proc`` is missing the functions find
nothing.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from pathlib import Path

#: Environment variable that marks every process started for one submission.
MARKER_VARIABLE = "AUTOGRADER_SANDBOX_ID"


def carries_marker(pid: int, marker: str) -> bool:
    """Whether process ``pid``'s environment holds ``MARKER_VARIABLE=marker`` (False if it is gone)."""
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return needle in handle.read().split(b"\0")
    except OSError:
        return False


def kill_marked_processes(marker: str) -> int:
    """Kill every process whose environment carries ``marker`` (Linux /proc only).

    Catches children that left the kernel's process group (``setsid``,
    double fork) in the ``process`` isolation mode. Returns how many were killed.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return 0
    killed = 0
    for _ in range(3):  # a forking process may create new ones while we kill
        found = 0
        for entry in proc.iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            if carries_marker(int(entry.name), marker):
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                    found += 1
                except OSError:
                    pass
        killed += found
        if not found:
            break
        time.sleep(0.05)
    return killed


def count_user_processes() -> int | None:
    """Tasks (threads included) of the current user, or None where /proc is missing."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    uid = os.getuid()
    count = 0
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(entry / "task"))
            except OSError:
                continue
    return count


def proc_table() -> dict[int, tuple[int, int]]:
    """``{pid: (parent pid, uid)}`` of every living process (Linux /proc; zombies left out)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
            fields = stat[stat.rindex(b")") + 2 :].split()
            if fields[0] in (b"Z", b"X"):  # dead, holding no memory (not yet reaped)
                continue
            table[int(entry.name)] = (int(fields[1]), entry.stat(follow_symlinks=False).st_uid)
        except (OSError, ValueError, IndexError):
            continue
    return table


def process_memory(pid: int) -> int:
    """Bytes of memory process ``pid`` holds: its PSS (shared pages split among sharers), else its RSS; 0 if gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0
