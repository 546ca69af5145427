"""The class report's sentences about the isolation and the caps that were in force.

:mod:`autograder.sandbox` and :mod:`autograder.memory_cap` decide and apply the
isolation and say, in a few words, why (bubblewrap missing, where the cgroups
are); here those facts become the sentences the instructor reads in the run's
summary and in ``report.html``. Reads only the grader's own uid and
:func:`autograder.memory_cap.memory_cap_method`; writes nothing.
"""

from __future__ import annotations

import os

from .memory_cap import CAP_CGROUP, memory_cap_method
from .sandbox import FIRST_SANDBOX_UID, ISOLATION_BWRAP, Limits


def _root(as_root: bool | None) -> bool:
    return os.geteuid() == 0 if as_root is None else as_root


def explain_isolation(level: str, reason: str, as_root: bool | None = None) -> str:
    """The isolation in force, in one sentence.

    ``level`` and ``reason`` are what :func:`autograder.sandbox.detect_isolation` returned; ``as_root``
    whether the grader runs as root (default: this process's uid).
    """
    if level == ISOLATION_BWRAP:
        how = (
            f"bubblewrap: pid, mount, network, IPC and UTS namespaces; "
            f"code runs as unprivileged uid {FIRST_SANDBOX_UID}+slot"
            if _root(as_root)
            else "bubblewrap: user, pid, mount, network, IPC and UTS namespaces"
        )
    else:
        how = f"process (no namespaces): {reason}"
    method = "one cgroup per submission" if memory_cap_method()[0] == CAP_CGROUP else "a watchdog in the grader"
    return f"{how}; the total memory of a submission's processes is capped by {method}"


def memory_cap_sentence() -> str:
    """How this machine caps the total memory of a submission (:func:`autograder.memory_cap.memory_cap_method`)."""
    method, detail = memory_cap_method()
    if method == CAP_CGROUP:
        return f"one cgroup per submission ({detail}): memory.max, pids.max, the group killed at the cap"
    return (
        f"a watchdog in the grader adds up the memory (PSS) of every process of the submission "
        f"from /proc, 4 times a second, and kills them all at the cap (no cgroup: {detail})"
    )


def caps_in_force(limits: Limits, isolation: str, as_root: bool | None = None) -> list[str]:
    """The resource caps a grading run applies, one sentence each (for the class report)."""
    caps = [
        f"{limits.memory_mb} MB of address space per process",
        f"files up to {limits.file_size_mb} MB",
        f"{limits.cpu_seconds} s of CPU per process",
    ]
    if isolation == ISOLATION_BWRAP:
        per = (
            "per submission (its own user id)"
            if _root(as_root)
            else "per process tree of the instructor's user (user namespace)"
        )
        caps.append(f"at most {limits.max_processes} processes and threads {per}")
        caps.append(
            f"{limits.disk_mb} MB of writable space per kernel in total (size-limited tmpfs, RAM-backed: "
            f"working folder {limits.disk_mb * 3 // 4} MB beyond the submitted files, /tmp and home "
            f"{limits.disk_mb // 4} MB)"
        )
    else:
        caps.append(f"at most {limits.max_processes} processes and threads beyond the instructor's own")
        caps.append("no cap on the total disk space written (process isolation)")
    caps.append(
        f"{limits.total_memory_mb} MB of memory for all the processes of a submission together: {memory_cap_sentence()}"
    )
    return caps
