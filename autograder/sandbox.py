"""Isolation of the code of one submission.

Two levels, chosen once per grading run by :func:`detect_isolation`:

``bubblewrap``
    Linux namespaces through Debian's ``bwrap`` (no root needed where
    unprivileged user namespaces are allowed): a new user, pid, network, IPC,
    UTS and cgroup namespace; the file system is empty except read-only binds
    of the Python installation, the virtual environment, the ``dnn_course``
    package and the embedded data, a private ``/tmp`` and home, and the
    submission's own working folder (read-write). No network interface but
    loopback. When the sandbox's first process dies, the kernel kills every
    process of the pid namespace, detached or not.

``process``
    The fallback (macOS, or no working ``bwrap``): the kernel runs in its own
    session with the same resource limits, a private working folder and a
    ``sitecustomize`` that refuses internet sockets; processes it leaves behind
    are found by a marker in their environment and killed. This is weaker
    (same user, same file system), and the class report says so.

Both levels apply resource limits with ``setrlimit`` before the sandbox starts:
address space (memory), number of processes of the sandbox's user, file size,
no core dumps, CPU time.
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


@dataclass(frozen=True)
class SandboxSpec:
    """Everything needed to start a process for one submission.

    ``workdir`` is the submission's private folder (read-write, the kernel's
    current directory); ``ipc_dir`` holds the kernel's connection file and
    sockets (read-write); ``readonly`` are host paths visible read-only at the
    same place inside the sandbox. ``uid`` is the unprivileged user the code
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


def bwrap_command(argv: list[str], spec: SandboxSpec) -> list[str]:
    """``argv`` wrapped in a bubblewrap sandbox described by ``spec``.

    As root, bubblewrap needs no user namespace (the launcher then drops to
    ``spec.uid``); otherwise a user namespace maps the instructor to uid 1000.
    """
    cmd = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session",
           "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--hostname", "grader"]
    if os.geteuid() != 0:
        cmd += ["--unshare-user", "--uid", "1000", "--gid", "1000", "--cap-drop", "ALL"]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/home"]
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
    cmd += ["--dir", SANDBOX_HOME,
            "--bind", spec.workdir, SANDBOX_WORKDIR,
            "--bind", spec.ipc_dir, SANDBOX_IPC,
            "--chdir", SANDBOX_WORKDIR]
    if spec.uid is not None:
        cmd += ["--chmod", "1777", "/tmp", "--chmod", "0777", SANDBOX_HOME]
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
        MARKER_VARIABLE: spec.marker,
    }
    if not inside:
        os.makedirs(home, exist_ok=True)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent / "nonet")
        env["TMPDIR"] = os.path.join(spec.ipc_dir, "tmp")
        os.makedirs(env["TMPDIR"], exist_ok=True)
    return env


def _apply_limits(limits: Limits, outer_nproc: int | None) -> None:
    """Runs in the child between fork and exec: set limits, die with the parent."""
    mb = 1024 * 1024

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
    return functools.partial(_apply_limits, spec.limits, outer)


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


def wrap(argv: list[str], spec: SandboxSpec) -> list[str]:
    """The command line that runs ``argv`` (absolute executable) isolated by ``spec``.

    The launcher inside sets the per-submission process limit: in a user
    namespace (or under its own uid) it counts only this submission's tasks;
    in the ``process`` mode without a uid of its own it cannot, and the cap is
    the instructor's current count plus the allowance.
    """
    if spec.uid is not None or spec.isolation == ISOLATION_BWRAP:
        inner_nproc = spec.limits.max_processes
    else:
        inner_nproc = _user_nproc_cap(spec)
    launched = [sys.executable, "-c", LAUNCHER, str(spec.uid or 0), str(inner_nproc)] + list(argv)
    if spec.isolation == ISOLATION_BWRAP:
        return bwrap_command(launched, spec)
    return launched


def prepare_directories(spec: SandboxSpec) -> None:
    """Give the sandbox user the working and IPC folders (only when root drops to a uid)."""
    if spec.uid is None:
        return
    for top in (spec.workdir, spec.ipc_dir):
        for root, dirs, files in os.walk(top):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.lchown(name, spec.uid, spec.uid)


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


@functools.lru_cache(maxsize=None)
def detect_isolation(prefer: str = "auto") -> tuple[str, str]:
    """The strongest isolation that works here: ``(level, explanation)``.

    ``prefer`` is ``"auto"``, ``"bubblewrap"`` (error if unavailable) or
    ``"process"``.
    """
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
            prepare_directories(spec)
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
