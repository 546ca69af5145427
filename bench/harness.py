"""The benchmarks' harness: timing one piece of work, the machine's load around it, competing processes.

Shared by ``bench/bench_epoch.py``, ``bench/bench_experiment.py`` and ``scripts/bench_autograder.py``, so
that every figure they record is taken the same way. Reads the clock, ``os.getloadavg`` and (for the
machine's busy time) Linux's ``/proc/stat``; starts processes only in :func:`competing_processes`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "COMPETITOR",
    "Timing",
    "competing_processes",
    "load_average",
    "machine_busy_seconds",
    "own_cgroup_cpu",
    "timed",
]

#: What a competing CPU-bound process runs (``python -c``): one core kept busy, nothing else.
COMPETITOR = "while True: pass"

T = TypeVar("T")


def load_average() -> float:
    """The machine's one-minute load average (runnable processes, all cores together)."""
    return os.getloadavg()[0]


@dataclass(frozen=True)
class Timing:
    """How long one piece of work took, and how busy the machine was around it."""

    wall_s: float  #: elapsed seconds (``time.perf_counter``)
    cpu_s: float  #: CPU seconds of this process, all its threads (``time.process_time``)
    load_before: float  #: :func:`load_average` just before
    load_after: float  #: :func:`load_average` just after

    @property
    def mean_load(self) -> float:
        """The load average before and after, averaged: the load the work ran under."""
        return (self.load_before + self.load_after) / 2

    def cpu_share(self, threads: int) -> float:
        """CPU seconds per elapsed second per thread: 1 when every thread had a core all the time."""
        return self.cpu_s / max(self.wall_s, 1e-9) / threads


def timed(run: Callable[[], T]) -> tuple[T, Timing]:
    """Call ``run()``; return its result and its :class:`Timing` (the load is read outside the timed part)."""
    load_before = load_average()
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return result, Timing(wall, cpu, load_before, load_average())


@contextlib.contextmanager
def competing_processes(count: int) -> Iterator[list[int]]:
    """``count`` CPU-bound Python processes (:data:`COMPETITOR`) for the duration of the block; their ids."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", COMPETITOR],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        yield [p.pid for p in processes]
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (Linux ``/proc/stat``), over all cores.

    A sandboxed grading kernel is reaped inside its PID namespace, so its CPU time never reaches
    ``getrusage`` of the process that started it; the machine's busy time includes it. On an
    otherwise idle machine, the difference over a run is the run's CPU time. Time stolen by the
    hypervisor (``steal``) is not counted: no process of this machine ran then.
    """
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    # user, nice, system, (idle, iowait), irq, softirq; not steal (a virtual machine's time another
    # machine ran), and guest is already in user
    return (sum(fields[:7]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


#: Where a control group's CPU time is read: cgroup v2 (``cpu.stat``) and v1's ``cpuacct`` hierarchy.
CGROUP_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/cpuacct")


def _cgroup_cpu_seconds(folder: str) -> float:
    """CPU seconds of every process that ever ran in the control group ``folder``."""
    v1 = os.path.join(folder, "cpuacct.usage")
    if os.path.exists(v1):
        with open(v1, encoding="ascii") as usage:
            return int(usage.read()) / 1e9
    with open(os.path.join(folder, "cpu.stat"), encoding="ascii") as stat:
        fields = dict(line.split() for line in stat)
    return int(fields["usage_usec"]) / 1e6


@contextlib.contextmanager
def own_cgroup_cpu() -> Iterator[Callable[[], float | None]]:
    """This process in a control group of its own for the block; a function giving its CPU seconds so far.

    Every process started inside the block (forked, sandboxed in its own namespaces, run as another user)
    stays in the group, so the figure is the work's own CPU time, whatever else the machine runs. Needs
    a control group folder this process may create (root, or a delegated cgroup v2 subtree); without one
    the function gives None (then only the machine's busy time is left, see :func:`machine_busy_seconds`).
    """
    created, home = None, None
    for root in CGROUP_ROOTS:
        candidate = os.path.join(root, f"bench-{os.getpid()}")
        try:
            os.mkdir(candidate)
        except OSError:
            continue
        try:
            _cgroup_cpu_seconds(candidate)
            with open(f"/proc/{os.getpid()}/cgroup", encoding="ascii") as own:
                home = _own_group(own.read(), root)
            with open(os.path.join(candidate, "cgroup.procs"), "w", encoding="ascii") as procs:
                procs.write(str(os.getpid()))
        except (OSError, KeyError, ValueError):
            os.rmdir(candidate)
            continue
        created = candidate
        break
    try:
        yield (lambda: _cgroup_cpu_seconds(created)) if created else (lambda: None)
    finally:
        if created:
            with open(os.path.join(home, "cgroup.procs"), "w", encoding="ascii") as procs:
                procs.write(str(os.getpid()))
            with contextlib.suppress(OSError):  # a process of the work may still be in it
                os.rmdir(created)


def _own_group(proc_cgroup: str, root: str) -> str:
    """The folder under ``root`` of the group this process is in (``/proc/self/cgroup``'s text)."""
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        if (controllers == "" and not root.endswith("cpuacct")) or "cpuacct" in controllers.split(","):
            return os.path.join(root, path.lstrip("/"))
    raise KeyError(root)
