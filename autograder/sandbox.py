"""Isolation of the code of one submission.

Two levels, chosen once per grading run by :func:`detect_isolation`:

``bubblewrap``
    Linux namespaces through Debian's ``bwrap`` (no root needed where
    unprivileged user namespaces are allowed): a new user, pid, network, IPC,
    UTS and cgroup namespace; the file system is empty except read-only binds
    of the Python installation, the virtual environment, the ``dnn_course``
    package and the embedded data, and three size-limited ``tmpfs`` (RAM-backed)
    folders: the working folder ``/submission`` (a fresh copy of the submitted
    files, made for every kernel start), ``/tmp`` and the home folder. No
    network interface but loopback. When the sandbox's first process dies, the
    kernel kills every process of the pid namespace, detached or not, and the
    ``tmpfs`` folders with everything written in them are gone.

``process``
    The fallback (macOS, or no working ``bwrap``): the kernel runs in its own
    session with the same resource limits, a private working folder and a
    ``sitecustomize`` that refuses internet sockets; processes it leaves behind
    are found by a marker in their environment and killed. This is weaker
    (same user, same file system, no cap on the disk space), and the class
    report says so.

The rule that keeps the host safe (``bubblewrap``)
--------------------------------------------------
**The host never opens, by name, a path inside a folder the student can
write.** Student code runs as an unprivileged user (a uid of its own per
parallel slot when the grader is root, the user namespace's uid otherwise), and
the only folders it can write are the sandbox's own ``tmpfs`` mounts, which do
not exist on the host. Everything crosses the boundary through file
descriptors the host opened itself:

* the submitted files are copied in (``bwrap --file FD``) from the job's
  host-side working folder, which no sandbox ever mounts;
* the kernel's connection file is handed in read-only (``--ro-bind-data FD``);
* the kernel's sockets are created and bound *by the host*, in a folder only
  the grader can enter (:attr:`SandboxSpec.ipc_dir`, never mounted), and
  passed to the kernel as listening descriptors (ZeroMQ's ``ZMQ_USE_FD``): the
  host connects to socket files it made, the kernel never creates one;
* nothing is read back from the sandbox: results come over those sockets.

So a submission that replaces any file it can see by a link (to the gradebook,
the released notebooks, a system file) changes nothing on the host, before or
after a kernel restart.

Resource limits
---------------
``setrlimit`` before the sandbox starts: address space of each process,
number of processes (counted per sandbox uid, so per submission, when the
grader is root), file size, no core dumps, CPU time. The ``tmpfs`` sizes cap
the total space a submission can write (:attr:`Limits.disk_mb`). The total
memory of all the processes of a submission (:attr:`Limits.total_memory_mb`) is
capped by :class:`MemoryCap`, decided here in one place
(:func:`memory_cap_method`): one cgroup v2 per submission where the ``memory``
and ``pids`` controllers are delegated to the grader, otherwise a watchdog
thread that adds up the memory of the submission's processes from ``/proc``
and kills them at the cap. The class report says which caps were in force.
"""
from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import dnn_course

#: Path of the working folder as seen from inside the bubblewrap sandbox.
SANDBOX_WORKDIR = "/submission"
SANDBOX_HOME = "/home/student"
SANDBOX_IPC = "/ipc"
#: Environment variable that marks every process started for one submission.
MARKER_VARIABLE = "AUTOGRADER_SANDBOX_ID"

ISOLATION_BWRAP = "bubblewrap"
ISOLATION_PROCESS = "process"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission's kernel (and all its children)."""

    memory_mb: int = 2048          # RLIMIT_AS of every process
    max_processes: int = 256       # RLIMIT_NPROC (tasks, threads count too)
    file_size_mb: int = 64         # RLIMIT_FSIZE: largest file it can write
    cpu_seconds: int = 900         # RLIMIT_CPU per process (backstop of the wall clock limits)
    disk_mb: int = 512             # all a submission can write: working folder 3/4, /tmp and home 1/4
    total_memory_mb: int = 2048    # all the processes of a submission together (MemoryCap)


#: Size of the sandbox's home folder (part of the /tmp share of ``disk_mb``).
HOME_MB = 16


@dataclass(frozen=True)
class SandboxSpec:
    """Everything needed to start a process for one submission.

    ``workdir`` is the host folder of the submitted files: with bubblewrap a
    fresh copy of its files is the kernel's working folder, the folder itself is
    never mounted; in the ``process`` mode it is the kernel's working folder.
    ``ipc_dir`` is a host folder only the grader uses (the kernel's socket
    files, bound by the host; never mounted into the sandbox). ``readonly`` are
    host paths visible read-only at the same place inside the sandbox. ``uid`` is the unprivileged user the code
    runs as when the grader itself runs as root (one per parallel slot, so
    the process limit counts one submission only); None otherwise.
    ``parallel`` is the number of sandboxes that may run at once.
    """

    isolation: str
    workdir: str
    ipc_dir: str
    marker: str
    limits: Limits = Limits()
    readonly: tuple[str, ...] = ()
    uid: int | None = None
    parallel: int = 1
    experiment_profile: str = "brief"  # what the experiment notebooks expect (see dnn_course.experiment)


#: First uid of the unprivileged users that run submissions when the grader is root.
FIRST_SANDBOX_UID = 61000


def sandbox_uid(slot: int, isolation: str) -> int | None:
    """The uid for parallel slot ``slot`` when running bubblewrap as root, else None.

    (In the ``process`` mode the grader keeps its own uid: the Python
    installation may sit in a folder only its owner can enter.)
    """
    if os.geteuid() == 0 and isolation == ISOLATION_BWRAP:
        return FIRST_SANDBOX_UID + slot
    return None


#: Runs first inside the sandbox: drop to the sandbox user (if root), cap the
#: number of processes of this submission, then exec the real command.
LAUNCHER = (
    "import os, resource, sys\n"
    "uid, nproc = int(sys.argv[1]), int(sys.argv[2])\n"
    "if uid and os.getuid() == 0:\n"
    "    os.setgroups([]); os.setgid(uid); os.setuid(uid)\n"
    "resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))\n"
    "os.environ.pop('JPY_PARENT_PID', None)  # its parent is the sandbox's init\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def _course_package_dir() -> Path:
    return Path(dnn_course.__file__).resolve().parent


def default_readonly_paths() -> tuple[str, ...]:
    """Host paths the grading kernel needs: Python, the venv, dnn_course, embedded data."""
    package_dir = _course_package_dir()
    candidates = [
        Path(sys.base_prefix).resolve(),
        Path(sys.prefix).resolve(),
        Path(sys.executable).resolve().parent,
        package_dir,
        package_dir.parent / "data" / "embedded",
    ]
    seen: list[str] = []
    for path in candidates:
        text = str(path)
        if path.exists() and text not in seen:
            seen.append(text)
    # drop paths already covered by another bind
    return tuple(p for p in seen if not any(p != q and p.startswith(q + os.sep) for q in seen))


SYSTEM_READONLY = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ld.so.cache",
                   "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",
                   "/etc/fonts", "/etc/ssl")


def bwrap_command(argv: list[str], spec: SandboxSpec, files: list[tuple[int, str]] = (),
                  data: list[tuple[int, str]] = (), initial_bytes: int = 0) -> list[str]:
    """``argv`` wrapped in a bubblewrap sandbox described by ``spec``.

    ``files`` are ``(fd, name)``: copied into the working folder (writable
    copies); ``data`` are ``(fd, path)``: read-only files inside. The working
    folder's ``tmpfs`` holds ``initial_bytes`` of copies plus its share of
    ``disk_mb``. As root, bubblewrap needs no user namespace (the launcher then
    drops to ``spec.uid``); otherwise a user namespace maps the instructor to
    uid 1000.
    """
    cmd = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session",
           "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--hostname", "grader"]
    if os.geteuid() != 0:
        cmd += ["--unshare-user", "--uid", "1000", "--gid", "1000", "--cap-drop", "ALL"]
    mb = 1024 * 1024
    work_bytes = initial_bytes + spec.limits.disk_mb * mb * 3 // 4
    tmp_bytes = max(spec.limits.disk_mb * mb // 4 - HOME_MB * mb, mb)
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmp_bytes), "--tmpfs", "/tmp",
            "--size", str(HOME_MB * mb), "--tmpfs", "/home"]
    # /etc is made by bubblewrap for the binds below, 0700 root unless told: the sandbox
    # user (as root, an unprivileged uid) could then read none of them (fontconfig printed
    # "Cannot load default config file" into every notebook importing matplotlib)
    cmd += ["--perms", "0755", "--dir", "/etc"]
    for path in SYSTEM_READONLY:
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    parents = sorted({str(parent) for path in spec.readonly
                      for parent in Path(path).parents if str(parent) != "/"},
                     key=lambda p: (p.count(os.sep), p))
    for parent in parents:  # traversable by the sandbox user, whatever the host's modes
        cmd += ["--perms", "0755", "--dir", parent]
    for path in spec.readonly:
        cmd += ["--ro-bind", path, path]
    cmd += ["--dir", SANDBOX_HOME, "--size", str(work_bytes), "--tmpfs", SANDBOX_WORKDIR]
    for fd, name in files:
        cmd += ["--perms", "0666", "--file", str(fd), f"{SANDBOX_WORKDIR}/{name}"]
    for fd, path in data:
        cmd += ["--perms", "0444", "--ro-bind-data", str(fd), path]
    cmd += ["--chdir", SANDBOX_WORKDIR]
    if spec.uid is not None:
        cmd += ["--chmod", "1777", "/tmp", "--chmod", "0777", SANDBOX_HOME, "--chmod", "0777", SANDBOX_WORKDIR]
    return cmd + ["--"] + list(argv)


def sandbox_environment(spec: SandboxSpec) -> dict[str, str]:
    """A clean environment: nothing of the grader's own environment leaks in."""
    inside = spec.isolation == ISOLATION_BWRAP
    home = SANDBOX_HOME if inside else os.path.join(spec.ipc_dir, "home")
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": os.path.join(home, ".mpl"),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "DNN_COURSE_MODE": "grading",
        "DNN_COURSE_PROFILE": spec.experiment_profile,
        MARKER_VARIABLE: spec.marker,
    }
    if not inside:
        os.makedirs(home, exist_ok=True)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent / "nonet")
        env["TMPDIR"] = os.path.join(spec.ipc_dir, "tmp")
        os.makedirs(env["TMPDIR"], exist_ok=True)
    return env


def _apply_limits(limits: Limits, outer_nproc: int | None, cgroup_procs: str | None = None) -> None:
    """Runs in the child between fork and exec: join the submission's cgroup, set limits, die with the parent."""
    mb = 1024 * 1024
    if cgroup_procs is not None:  # before anything else runs: every descendant is in the group too
        fd = os.open(cgroup_procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)

    def cap(which: int, value: int) -> None:
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))

    cap(resource.RLIMIT_AS, limits.memory_mb * mb)
    cap(resource.RLIMIT_FSIZE, limits.file_size_mb * mb)
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_CPU, limits.cpu_seconds)
    if outer_nproc is not None:
        cap(resource.RLIMIT_NPROC, outer_nproc)
    if sys.platform.startswith("linux"):
        try:  # kill the sandbox if the grader dies
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _user_nproc_cap(spec: SandboxSpec) -> int:
    """Process limit of the instructor's own user while ``parallel`` sandboxes run.

    Without a separate uid, ``RLIMIT_NPROC`` is also checked against all the
    processes of the instructor's user, so it must leave room for them.
    """
    current = count_user_processes() or 0
    return current + (spec.parallel + 1) * spec.limits.max_processes


def preexec_function(spec: SandboxSpec):
    """The ``preexec_fn`` for ``subprocess.Popen`` of :func:`wrap`'s command."""
    outer = None if spec.uid is not None else _user_nproc_cap(spec)
    cap = memory_cap(spec.marker)
    procs = str(cap.group / "cgroup.procs") if cap is not None and cap.group is not None else None
    return functools.partial(_apply_limits, spec.limits, outer, procs)


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


@dataclass
class Command:
    """A command line to run in a sandbox, with the descriptors it must inherit.

    Pass ``pass_fds`` to ``subprocess.Popen``, then call :meth:`close` (the
    child has its own copies).
    """

    argv: list[str]
    pass_fds: tuple[int, ...]

    def close(self) -> None:
        for fd in self.pass_fds:
            try:
                os.close(fd)
            except OSError:
                pass


def _pipe_with(data: bytes) -> int:
    """The read end of a pipe already holding ``data`` (small: it must fit the pipe)."""
    read, write = os.pipe()
    try:
        os.write(write, data)
    finally:
        os.close(write)
    return read


def data_path(spec: SandboxSpec, name: str) -> str:
    """Where the sandboxed process finds the read-only data file ``name`` given to :func:`command`."""
    if spec.isolation == ISOLATION_BWRAP:
        return f"{SANDBOX_IPC}/{name}"
    return os.path.join(spec.ipc_dir, name)


def command(argv: list[str], spec: SandboxSpec, data: dict[str, bytes] | None = None,
            keep_fds: tuple[int, ...] = ()) -> Command:
    """How to run ``argv`` (absolute executable) isolated by ``spec``.

    ``data`` are small read-only files for the process, found at
    :func:`data_path`; ``keep_fds`` are descriptors it inherits (the kernel's
    listening sockets). With bubblewrap, every regular file of
    ``spec.workdir`` is copied into the sandbox's working folder through a
    descriptor opened here (links are skipped).

    The launcher inside sets the per-submission process limit: in a user
    namespace (or under its own uid) it counts only this submission's tasks;
    in the ``process`` mode without a uid of its own it cannot, and the cap is
    the instructor's current count plus the allowance.
    """
    if spec.uid is not None or spec.isolation == ISOLATION_BWRAP:
        inner_nproc = spec.limits.max_processes
    else:
        inner_nproc = _user_nproc_cap(spec)
    launched = [sys.executable, "-P", "-c", LAUNCHER, str(spec.uid or 0), str(inner_nproc)] + list(argv)
    data = data or {}
    if spec.isolation != ISOLATION_BWRAP:
        for name, content in data.items():  # process mode: same user, no boundary to keep
            with open(os.path.join(spec.ipc_dir, name), "wb") as handle:
                handle.write(content)
        return Command(launched, tuple(keep_fds))
    fds: list[int] = []
    files: list[tuple[int, str]] = []
    initial = 0
    try:
        with os.scandir(spec.workdir) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if not entry.is_file(follow_symlinks=False):
                    continue
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                fds.append(fd)
                files.append((fd, entry.name))
                initial += os.fstat(fd).st_size
        pipes = []
        for name, content in data.items():
            fd = _pipe_with(content)
            fds.append(fd)
            pipes.append((fd, data_path(spec, name)))
    except BaseException:
        Command([], tuple(fds)).close()
        raise
    return Command(bwrap_command(launched, spec, files, pipes, initial), tuple(fds) + tuple(keep_fds))


def wrap(argv: list[str], spec: SandboxSpec) -> list[str]:
    """The command line of :func:`command` for a sandbox that needs no descriptors (an empty workdir)."""
    cmd = command(argv, spec)
    if cmd.pass_fds:
        cmd.close()
        raise ValueError("the working folder has files: use sandbox.command() and pass its descriptors")
    return cmd.argv


def working_directory(spec: SandboxSpec) -> str:
    """The host directory to pass as ``cwd`` to Popen."""
    return spec.ipc_dir if spec.isolation == ISOLATION_BWRAP else spec.workdir


def kill_marked_processes(marker: str) -> int:
    """Kill every process whose environment carries ``marker`` (Linux /proc only).

    Catches children that left the kernel's process group (``setsid``,
    double fork) in the ``process`` isolation mode. Returns how many were killed.
    """
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    proc = Path("/proc")
    if not proc.is_dir():
        return 0
    killed = 0
    for _ in range(3):  # a forking process may create new ones while we kill
        found = 0
        for entry in proc.iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if needle in environ.split(b"\0"):
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


def caps_in_force(limits: Limits, isolation: str, as_root: bool | None = None) -> list[str]:
    """The resource caps a grading run applies, one sentence each (for the class report)."""
    as_root = os.geteuid() == 0 if as_root is None else as_root
    caps = [f"{limits.memory_mb} MB of address space per process",
            f"files up to {limits.file_size_mb} MB", f"{limits.cpu_seconds} s of CPU per process"]
    if isolation == ISOLATION_BWRAP:
        per = ("per submission (its own user id)" if as_root
               else "per process tree of the instructor's user (user namespace)")
        caps.append(f"at most {limits.max_processes} processes and threads {per}")
        caps.append(f"{limits.disk_mb} MB of writable space per kernel in total (size-limited tmpfs, RAM-backed: "
                    f"working folder {limits.disk_mb * 3 // 4} MB beyond the submitted files, /tmp and home "
                    f"{limits.disk_mb // 4} MB)")
    else:
        caps.append(f"at most {limits.max_processes} processes and threads beyond the instructor's own")
        caps.append("no cap on the total disk space written (process isolation)")
    method, how = memory_cap_method()
    caps.append(f"{limits.total_memory_mb} MB of memory for all the processes of a submission together: {how}")
    return caps


# --------------------------------------------------------------------------------------------
# The cap on the total memory of one submission's processes
# --------------------------------------------------------------------------------------------

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
        return None, f"cgroups v2 at {base} lacks the {' and '.join(missing)} controller" + \
            ("s" if len(missing) > 1 else "")
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


@functools.lru_cache(maxsize=None)
def memory_cap_method(root: str = "/sys/fs/cgroup") -> tuple[str, str]:
    """How this machine caps the total memory of a submission: ``(CAP_CGROUP | CAP_WATCHDOG, explanation)``."""
    base, why = cgroup_base(Path(root))
    if base is not None:
        return CAP_CGROUP, f"one cgroup per submission ({why}): memory.max, pids.max, the group killed at the cap"
    return CAP_WATCHDOG, (f"a watchdog in the grader adds up the memory (PSS) of every process of the submission "
                          f"from /proc, 4 times a second, and kills them all at the cap (no cgroup: {why})")


def _proc_table() -> dict[int, tuple[int, int]]:
    """``{pid: (parent pid, uid)}`` of every living process (Linux /proc; zombies left out)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
            fields = stat[stat.rindex(b")") + 2:].split()
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


class MemoryCap:
    """The cap on the total memory of every process of one submission (``spec.limits.total_memory_mb``).

    :meth:`start` before the submission's first process, :meth:`stop` after its last.
    With cgroups v2 delegated (:func:`memory_cap_method`), every process the sandbox starts joins the
    submission's group (:func:`preexec_function`), whose ``memory.max`` is the cap and
    ``memory.oom.group`` 1: at the cap the kernel's OOM killer stops the whole group. Otherwise a
    thread of the grader finds the submission's processes in /proc (every process carrying the
    submission's marker in its environment, and every descendant of one: with bubblewrap, all the
    processes of the sandbox's pid namespace, whatever they do to their environment),
    adds up their memory and kills them all at the cap. Either way :attr:`reached` counts the times.
    """

    def __init__(self, spec: SandboxSpec, method: str | None = None, cgroup_root: Path | None = None,
                 interval: float = 0.25):
        self.spec = spec
        self.cap_bytes = spec.limits.total_memory_mb * 1024 * 1024
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
            needle = f"{MARKER_VARIABLE}={self.spec.marker}".encode()
            try:
                with open(f"/proc/{pid}/environ", "rb") as handle:
                    marked = needle in handle.read().split(b"\0")
            except OSError:
                marked = False
            self._marked[pid] = (marked, first_seen)
        return marked

    def processes(self) -> set[int]:
        """The pids of the submission's processes now (watchdog mode)."""
        table = _proc_table()
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
        group = base / f"autograder-{self.spec.marker}"
        group.mkdir(exist_ok=True)
        (group / "memory.max").write_text(str(self.cap_bytes))
        (group / "pids.max").write_text(str(self.spec.limits.max_processes))
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

    def start(self) -> "MemoryCap":
        if self.method == CAP_CGROUP:
            self._make_group()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"memory-cap-{self.spec.marker}", daemon=True)
        self._thread.start()
        _MEMORY_CAPS[self.spec.marker] = self
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
        _MEMORY_CAPS.pop(self.spec.marker, None)

    def __enter__(self) -> "MemoryCap":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def describe(self) -> str:
        """The flag text of a submission stopped at the cap."""
        return (f"{MEMORY_CAP_FLAG}: the submission's processes together held more than "
                f"{self.spec.limits.total_memory_mb} MB and were stopped ({self.reached} time"
                f"{'s' if self.reached != 1 else ''}; peak measured {self.peak_bytes // (1024 * 1024)} MB)")


#: The running cap of each submission, by marker (its processes join its cgroup between fork and exec).
_MEMORY_CAPS: dict[str, MemoryCap] = {}


def memory_cap(marker: str) -> MemoryCap | None:
    """The running :class:`MemoryCap` of the submission with ``marker``, if any."""
    return _MEMORY_CAPS.get(marker)


@functools.lru_cache(maxsize=None)
def detect_isolation(prefer: str = "auto") -> tuple[str, str]:
    """The strongest isolation that works here: ``(level, explanation)``.

    ``prefer`` is ``"auto"``, ``"bubblewrap"`` (error if unavailable) or
    ``"process"``.
    """
    level, how = _detect_isolation(prefer)
    method = "one cgroup per submission" if memory_cap_method()[0] == CAP_CGROUP else "a watchdog in the grader"
    return level, f"{how}; the total memory of a submission's processes is capped by {method}"


def _detect_isolation(prefer: str) -> tuple[str, str]:
    if prefer == ISOLATION_PROCESS:
        return ISOLATION_PROCESS, "process (no namespaces): requested with --isolation process"
    bwrap = shutil.which("bwrap")
    reason = ""
    if bwrap is None:
        reason = "bwrap not found (Debian/Ubuntu: sudo apt-get install bubblewrap)"
    else:
        with tempfile.TemporaryDirectory() as work, tempfile.TemporaryDirectory() as ipc:
            spec = SandboxSpec(ISOLATION_BWRAP, work, ipc, "probe", readonly=default_readonly_paths(),
                               uid=sandbox_uid(0, ISOLATION_BWRAP))
            argv = wrap([sys.executable, "-c", "import numpy, dnn_course; print('ok')"], spec)
            try:
                result = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                                        env=sandbox_environment(spec), cwd=ipc,
                                        preexec_fn=preexec_function(spec))
                if result.returncode == 0 and result.stdout.strip() == "ok":
                    if os.geteuid() == 0:
                        how = (f"bubblewrap: pid, mount, network, IPC and UTS namespaces; "
                               f"code runs as unprivileged uid {FIRST_SANDBOX_UID}+slot")
                    else:
                        how = "bubblewrap: user, pid, mount, network, IPC and UTS namespaces"
                    return ISOLATION_BWRAP, how
                reason = f"bwrap does not work here: {result.stderr.strip()[:300]}"
            except (OSError, subprocess.TimeoutExpired) as error:
                reason = f"bwrap does not work here: {error}"
    if prefer == ISOLATION_BWRAP:
        raise RuntimeError(f"--isolation bubblewrap requested, but {reason}")
    return ISOLATION_PROCESS, f"process (no namespaces): {reason}"
