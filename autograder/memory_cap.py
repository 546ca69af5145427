"""The cap on the total memory of all the processes of one submission.

Decided here in one place (:func:`memory_cap_method`): one cgroup v2 per
submission where the ``memory`` and ``pids`` controllers are delegated to the
grader, otherwise a watchdog thread that adds up the memory of the
submission's processes from ``/proc`` (:mod:`autograder.submission_processes`)
and kills them at the cap.

Reads ``/proc/self/cgroup``, the cgroup folder's ``cgroup.controllers``,
``cgroup.subtree_control``, ``memory.current``, ``memory.peak`` and
``memory.events``; writes a cgroup folder per submission (``memory.max``,
``pids.max``, ``memory.oom.group``, ``memory.swap.max``, ``cgroup.kill``) under
the grader's own and removes it at :meth:`MemoryCap.stop`. The sentences the
class report prints about the cap are in :mod:`autograder.isolation_report`.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from pathlib import Path

from .submission_processes import carries_marker, proc_table, process_memory

CAP_CGROUP = "cgroup"
CAP_WATCHDOG = "watchdog"
#: The flag of a submission (and of the cell that was running) whose processes were stopped at the cap.
MEMORY_CAP_FLAG = "memory cap reached"


def _own_cgroup_v2(root: Path) -> Path | None:
    """The cgroups v2 folder of this process (``0::/path`` of /proc/self/cgroup), or None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            for mount in (root, root / "unified"):
                if (mount / "cgroup.controllers").is_file():
                    return mount / line[3:].lstrip("/")
    return None


def cgroup_base(root: Path = Path("/sys/fs/cgroup")) -> tuple[Path | None, str]:
    """A cgroups v2 folder under which the grader may make one group per submission, or (None, why not).

    The folder must offer the ``memory`` and ``pids`` controllers to its children
    (``cgroup.subtree_control``, delegated by systemd's ``Delegate=yes`` or enabled
    here) and let this process create a child whose ``memory.max`` it can write.
    """
    base = _own_cgroup_v2(root)
    if base is None:
        return None, "no cgroups v2 hierarchy for this process"
    try:
        have = set((base / "cgroup.controllers").read_text().split())
    except OSError as error:
        return None, f"cgroups v2 folder {base} unreadable ({error.strerror})"
    missing = sorted({"memory", "pids"} - have)
    if missing:
        return None, f"cgroups v2 at {base} lacks the {' and '.join(missing)} controller" + (
            "s" if len(missing) > 1 else ""
        )
    probe = base / f"autograder-probe-{os.getpid()}"
    try:
        enabled = set((base / "cgroup.subtree_control").read_text().split())
        if not {"memory", "pids"} <= enabled:
            (base / "cgroup.subtree_control").write_text("+memory +pids")
        probe.mkdir()
        try:
            (probe / "memory.max").write_text("max")
            (probe / "pids.max").write_text("max")
        finally:
            probe.rmdir()
    except OSError as error:
        return None, f"cgroups v2 at {base} is not delegated to this user ({error.strerror or error})"
    return base, f"cgroups v2 at {base}"


@functools.cache
def memory_cap_method(root: str = "/sys/fs/cgroup") -> tuple[str, str]:
    """How this machine caps the total memory of a submission: ``(CAP_CGROUP | CAP_WATCHDOG, detail)``.

    ``detail`` is :func:`cgroup_base`'s: where the cgroups are, or why there are none.
    """
    base, why = cgroup_base(Path(root))
    return (CAP_CGROUP if base is not None else CAP_WATCHDOG), why


class MemoryCap:
    """The cap on the total memory of every process of the submission marked ``marker``.

    ``total_memory_mb`` is the cap (``Limits.total_memory_mb``), ``max_processes`` the cgroup's
    ``pids.max`` (``Limits.max_processes``). :meth:`start` before the submission's first process,
    :meth:`stop` after its last. With cgroups v2 delegated (:func:`memory_cap_method`), every
    process the sandbox starts joins the submission's group (:func:`autograder.sandbox.preexec_function`,
    which finds it with :func:`memory_cap`), whose ``memory.max`` is the cap and
    ``memory.oom.group`` 1: at the cap the kernel's OOM killer stops the whole group. Otherwise a
    thread of the grader finds the submission's processes in /proc (every process carrying the
    submission's marker in its environment, and every descendant of one: with bubblewrap, all the
    processes of the sandbox's pid namespace, whatever they do to their environment),
    adds up their memory and kills them all at the cap. Either way :attr:`reached` counts the times.
    """

    def __init__(
        self,
        marker: str,
        total_memory_mb: int,
        max_processes: int,
        method: str | None = None,
        cgroup_root: Path | None = None,
        interval: float = 0.25,
    ):
        self.marker = marker
        self.total_memory_mb = total_memory_mb
        self.max_processes = max_processes
        self.cap_bytes = total_memory_mb * 1024 * 1024
        self.method = method or memory_cap_method()[0]
        self.cgroup_root = cgroup_root
        self.interval = interval
        self.group: Path | None = None
        self.reached = 0
        self.charged = 0  # how many of ``reached`` a notebook's cell was charged with (autograder.kernel)
        self.peak_bytes = 0
        self._marked: dict[int, tuple[bool, float]] = {}
        # the watchdog thread and the kernel's own look after a dead kernel (autograder.kernel) may check at once
        self._lock = threading.RLock()
        self._stop = None
        self._thread = None

    # -- which processes ---------------------------------------------------------------------
    def _is_marked(self, pid: int) -> bool:
        """Whether ``pid`` carries the marker. A "no" is asked again for 2 s after the process is first
        seen: between fork and exec a process still shows its parent's environment."""
        now = time.monotonic()
        marked, first_seen = self._marked.get(pid, (False, now))
        if not marked and now - first_seen < 2.0:
            marked = carries_marker(pid, self.marker)
            self._marked[pid] = (marked, first_seen)
        return marked

    def processes(self) -> set[int]:
        """The pids of the submission's processes now (watchdog mode)."""
        table = proc_table()
        for pid in list(self._marked):
            if pid not in table:
                self._marked.pop(pid, None)
        me = os.getpid()
        # not "every process of the sandbox's uid": another grading run on this machine uses the same uids
        found = {pid for pid in table if pid != me and self._is_marked(pid)}
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        todo = list(found)
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in found and child != me:
                    found.add(child)
                    todo.append(child)
        return found

    def total_bytes(self) -> int:
        """The submission's memory now (bytes)."""
        if self.group is not None:
            try:
                return int((self.group / "memory.current").read_text())
            except (OSError, ValueError):
                return 0
        return sum(process_memory(pid) for pid in self.processes())

    # -- cgroup --------------------------------------------------------------------------------
    def _make_group(self) -> None:
        base = self.cgroup_root or cgroup_base()[0]
        if base is None:
            raise RuntimeError("cgroups v2 is not available here")
        group = base / f"autograder-{self.marker}"
        group.mkdir(exist_ok=True)
        (group / "memory.max").write_text(str(self.cap_bytes))
        (group / "pids.max").write_text(str(self.max_processes))
        for name, value in (("memory.oom.group", "1"), ("memory.swap.max", "0")):
            if (group / name).exists():
                (group / name).write_text(value)
        self.group = group

    def _group_kills(self) -> int:
        try:
            events = dict(line.split() for line in (self.group / "memory.events").read_text().splitlines())
        except (OSError, ValueError):
            return 0
        return int(events.get("oom_group_kill", events.get("oom_kill", 0)))

    def _kill_group(self) -> None:
        kill = self.group / "cgroup.kill"
        try:
            if kill.exists():
                kill.write_text("1")
                return
        except OSError:
            pass
        try:
            pids = (self.group / "cgroup.procs").read_text().split()
        except OSError:
            return
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass

    # -- the watching thread -------------------------------------------------------------------
    def check(self) -> bool:
        """One look: record the peak; at the cap, stop the submission's processes. True if it stopped them."""
        with self._lock:
            return self._check()

    def _check(self) -> bool:
        if self.group is not None:
            try:
                self.peak_bytes = max(self.peak_bytes, int((self.group / "memory.peak").read_text()))
            except (OSError, ValueError):
                self.peak_bytes = max(self.peak_bytes, self.total_bytes())
            kills = self._group_kills()
            if kills > self.reached:
                self.reached = kills
                return True
            return False
        pids = self.processes()
        total = sum(process_memory(pid) for pid in pids)
        self.peak_bytes = max(self.peak_bytes, total)
        if total < self.cap_bytes:
            return False
        self.reached += 1
        for _ in range(3):  # a forking process may make new ones while we kill
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            pids = self.processes()
            if not pids:
                break
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watchdog never dies of a vanished process
                continue

    def start(self) -> MemoryCap:
        if self.method == CAP_CGROUP:
            self._make_group()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"memory-cap-{self.marker}", daemon=True)
        self._thread.start()
        _MEMORY_CAPS[self.marker] = self
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        try:
            self.check() if self.group is not None else None
        except OSError:
            pass
        if self.group is not None:
            self._kill_group()
            for _ in range(20):
                try:
                    self.group.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)
        _MEMORY_CAPS.pop(self.marker, None)

    def __enter__(self) -> MemoryCap:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


#: The running cap of each submission, by marker (its processes join its cgroup between fork and exec).
_MEMORY_CAPS: dict[str, MemoryCap] = {}


def memory_cap(marker: str) -> MemoryCap | None:
    """The running :class:`MemoryCap` of the submission with ``marker``, if any."""
    return _MEMORY_CAPS.get(marker)
