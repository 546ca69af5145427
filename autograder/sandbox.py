"""Isolation of the code of one submission: what a sandbox is, and how a process starts in one.

Two levels, chosen once per grading run by :func:`detect_isolation`:

``bubblewrap``
    Linux namespaces (:mod:`autograder.bubblewrap` builds the command line):
    a file system holding only read-only binds of what the caller names and
    size-limited ``tmpfs`` folders, no network interface but loopback, and
    every process of the sandbox killed when its first one dies.

``process``
    The fallback (macOS, or no working ``bwrap``): the process runs in its own
    session with the same resource limits, a private working folder and a
    ``sitecustomize`` that refuses internet sockets; processes it leaves behind
    are found by a marker in their environment and killed
    (:mod:`autograder.submission_processes`). This is weaker (same user, same
    file system, no cap on the disk space), and the class report says so.

This module knows nothing of the course: the caller names the host paths the
code may read (:attr:`SandboxSpec.readonly`) and the environment variables
it needs (:attr:`SandboxSpec.environment`); the sentences the class report
prints about the isolation are in :mod:`autograder.isolation_report`.

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
capped by :class:`autograder.memory_cap.MemoryCap`, whose cgroup (where there
is one) every process started here joins.

Reads: the files of :attr:`SandboxSpec.workdir` (through descriptors). Writes:
with ``process`` isolation, the data files, home and temporary folder into
:attr:`SandboxSpec.ipc_dir`; nothing otherwise.
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
from dataclasses import dataclass
from pathlib import Path

from .bubblewrap import SANDBOX_HOME, SANDBOX_IPC, bwrap_command
from .memory_cap import memory_cap
from .submission_processes import MARKER_VARIABLE, count_user_processes

ISOLATION_BWRAP = "bubblewrap"
ISOLATION_PROCESS = "process"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission's kernel (and all its children)."""

    memory_mb: int = 2048  # RLIMIT_AS of every process
    max_processes: int = 256  # RLIMIT_NPROC (tasks, threads count too)
    file_size_mb: int = 64  # RLIMIT_FSIZE: largest file it can write
    cpu_seconds: int = 900  # RLIMIT_CPU per process (backstop of the wall clock limits)
    disk_mb: int = 512  # all a submission can write: working folder 3/4, /tmp and home 1/4
    total_memory_mb: int = 2048  # all the processes of a submission together (memory_cap.MemoryCap)


@dataclass(frozen=True)
class SandboxSpec:
    """Everything needed to start a process for one submission.

    ``workdir`` is the host folder of the submitted files: with bubblewrap a
    fresh copy of its files is the kernel's working folder, the folder itself is
    never mounted; in the ``process`` mode it is the kernel's working folder.
    ``ipc_dir`` is a host folder only the grader uses (the kernel's socket
    files, bound by the host; never mounted into the sandbox). ``readonly`` are
    host paths visible read-only at the same place inside the sandbox
    (:func:`python_paths` and whatever else the caller's code needs).
    ``environment`` are ``(name, value)`` variables the caller's code needs,
    added to the clean environment of :func:`sandbox_environment` (they may not
    replace one of its own). ``uid`` is the unprivileged user the code
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
    environment: tuple[tuple[str, str], ...] = ()


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


#: The ``keyctl`` system call's number, by machine (the launcher empties the slot user's keyrings).
KEYCTL_SYSCALL = {"x86_64": 250, "aarch64": 219}

#: Runs first inside the sandbox: drop to the sandbox user (if root), empty that user's keyrings (the
#: kernel keeps a user's keyrings across its processes: the submission graded before in the same
#: slot could have left keys there for this one), cap the number of processes of this submission,
#: then exec the real command.
LAUNCHER = (
    "import os, resource, sys\n"
    "uid, nproc = int(sys.argv[1]), int(sys.argv[2])\n"
    "if uid and os.getuid() == 0:\n"
    "    os.setgroups([]); os.setgid(uid); os.setuid(uid)\n"
    "    import ctypes, platform\n"
    f"    keyctl = {KEYCTL_SYSCALL!r}.get(platform.machine())\n"
    "    if keyctl:\n"
    "        libc = ctypes.CDLL(None, use_errno=True)\n"
    "        persistent = libc.syscall(keyctl, 22, -1, -4)  # KEYCTL_GET_PERSISTENT (linked into @u)\n"
    "        for keyring in (persistent, -4, -5):  # KEYCTL_CLEAR: persistent, user, user-session\n"
    "            if keyring != -1:\n"
    "                libc.syscall(keyctl, 7, keyring)\n"
    "resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))\n"
    "os.environ.pop('JPY_PARENT_PID', None)  # its parent is the sandbox's init\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def outermost_paths(candidates: list[Path]) -> tuple[str, ...]:
    """The existing ``candidates`` (resolved paths), in order, without repeats and without
    a path that lies inside another (its bind is already there)."""
    seen: list[str] = []
    for path in candidates:
        text = str(path)
        if path.exists() and text not in seen:
            seen.append(text)
    return tuple(p for p in seen if not any(p != q and p.startswith(q + os.sep) for q in seen))


def python_paths() -> list[Path]:
    """The host paths any Python process of the sandbox needs: the installation and the venv."""
    return [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent]


def sandbox_environment(spec: SandboxSpec) -> dict[str, str]:
    """A clean environment plus ``spec.environment``: nothing of the grader's own environment leaks in."""
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
    }
    own = set(env) | {MARKER_VARIABLE, "PYTHONPATH", "TMPDIR"}
    clash = sorted(name for name, _ in spec.environment if name in own)
    if clash:
        raise ValueError(
            f"SandboxSpec.environment may not set the sandbox's own variables: {', '.join(clash)}; leave them out of it"
        )
    env.update(spec.environment)
    env[MARKER_VARIABLE] = spec.marker
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


def command(
    argv: list[str],
    spec: SandboxSpec,
    data: dict[str, bytes] | None = None,
    keep_fds: tuple[int, ...] = (),
    as_pid_1: bool = False,
) -> Command:
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
    argv = bwrap_command(launched, spec.readonly, spec.limits.disk_mb, spec.uid, files, pipes, initial, as_pid_1)
    return Command(argv, tuple(fds) + tuple(keep_fds))


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


def popen_options(spec: SandboxSpec, cmd: Command, log) -> dict:
    """``subprocess.Popen``'s keywords for :func:`command`'s ``cmd`` of a long-lived process (a
    kernel, a fork server): the sandbox's environment, no input, its output appended to ``log``
    (an open binary file)."""
    return {
        "env": sandbox_environment(spec),
        "cwd": working_directory(spec),
        "stdin": subprocess.DEVNULL,
        "stdout": log,
        "stderr": log,
        "pass_fds": cmd.pass_fds,
        "preexec_fn": preexec_function(spec),
    }


@functools.cache
def detect_isolation(prefer: str = "auto", readonly: tuple[str, ...] = ()) -> tuple[str, str]:
    """The strongest isolation that works here: ``(level, why not bubblewrap)``.

    ``prefer`` is ``"auto"``, ``"bubblewrap"`` (error if unavailable) or
    ``"process"``. Bubblewrap works if a sandbox with :func:`python_paths` and
    ``readonly`` bound starts Python and sees every one of them. The second
    value is empty for bubblewrap, else why it is not used;
    :func:`autograder.isolation_report.explain_isolation` makes the sentence.
    """
    if prefer == ISOLATION_PROCESS:
        return ISOLATION_PROCESS, "requested with --isolation process"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        reason = "bwrap not found (Debian/Ubuntu: sudo apt-get install bubblewrap)"
    else:
        with tempfile.TemporaryDirectory() as work, tempfile.TemporaryDirectory() as ipc:
            binds = outermost_paths(python_paths() + [Path(p) for p in readonly])
            spec = SandboxSpec(ISOLATION_BWRAP, work, ipc, "probe", readonly=binds, uid=sandbox_uid(0, ISOLATION_BWRAP))
            check = "import os, sys; print('ok' if all(map(os.path.isdir, sys.argv[1:])) else 'missing')"
            argv = wrap([sys.executable, "-c", check, *binds], spec)
            try:
                result = subprocess.run(
                    argv,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    env=sandbox_environment(spec),
                    cwd=ipc,
                    preexec_fn=preexec_function(spec),
                )
                if result.returncode == 0 and result.stdout.strip() == "ok":
                    return ISOLATION_BWRAP, ""
                reason = f"bwrap does not work here: {(result.stderr.strip() or result.stdout.strip())[:300]}"
            except (OSError, subprocess.TimeoutExpired) as error:
                reason = f"bwrap does not work here: {error}"
    if prefer == ISOLATION_BWRAP:
        raise RuntimeError(f"--isolation bubblewrap requested, but {reason}")
    return ISOLATION_PROCESS, reason
