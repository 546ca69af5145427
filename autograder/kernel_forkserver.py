"""One submission's warmed interpreter: it imports what a kernel needs once, and forks each notebook's kernel.

Runs **inside** the submission's bubblewrap sandbox as its process 1 (``bwrap --as-pid-1``),
started and driven by :class:`autograder.warm_kernels.ForkServer`, which runs this file's text
followed by the grader's kernel boot code (``KERNEL_BOOT`` of :mod:`autograder.kernel`) with
``python -c``; it imports nothing of the grader. Before any student code runs it imports
ipykernel, NumPy, Matplotlib and the course's package (paid once per submission instead of once
per notebook), reads the submitted files into memory, and makes itself non-dumpable. Then, for
every kernel the grader asks for:

1. it kills every other process of the sandbox (``kill(-1, SIGKILL)`` from process 1 reaches all
   of them), reaps them, and removes the System V IPC objects they left (POSIX message queues,
   which it could not list, no kernel may create); it refuses to go on if a kernel changed what
   every later kernel would inherit from it (its resource limits, priority, CPUs, scheduling);
2. it empties the working folder, ``/tmp`` and the home folder, and writes the submitted files
   back: each kernel starts, as a freshly started sandbox would, with the submitted files only;
3. it forks; the child becomes an ordinary dumpable process again, reseeds NumPy's global
   generator, returns out of the serving loop to this file's top level and runs the boot code
   that follows it, on the listening sockets the request carried. Its Python stack is then
   the one of a kernel started with ``python -c KERNEL_BOOT``, frame for frame.

Why a student's kernel cannot bend it: as the pid namespace's process 1 it receives no signal
from inside the sandbox that it has no handler for (SIGINT is ignored, SIGKILL and SIGSTOP never
reach it); being non-dumpable, its memory and descriptors cannot be read or written through
``ptrace`` or ``/proc`` by the sandbox's user; it reads nothing from the sandbox's file system
after warming up (every module it uses is imported by then); and its socket to the grader is
closed in every child. A kernel forked from it is new for each notebook and is never reused.

Matplotlib's font list, if the grader built it once for the run, is the read-only file ``argv[2]``.

Protocol on the ``SOCK_SEQPACKET`` socket whose descriptor is ``argv[1]``, one JSON object per
message: the grader sends ``{"op": "start", "addresses": [...], "argv": [...], "connection":
{...}}`` with the listening sockets (``SCM_RIGHTS``, in the order of ``addresses``), ``{"op":
"signal", "signal": n}`` (to the kernel) or ``{"op": "kill"}`` (every process but this one);
this process answers ``{"ready": [modules not importable]}`` once warm, ``{"started": pid}`` or
``{"error": text}``, ``{"killed": n}``, and reports ``{"exited": pid, "status": code}`` when the
kernel ends. An end of file from the grader ends this process, and with it the sandbox.
"""

import ctypes
import gc
import json
import os
import resource
import select
import signal
import socket
import sys
import tempfile
import time
import traceback

PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "IPython.core.interactiveshell",
    "IPython.display",
    "numpy",
    "numpy.random",
    "matplotlib",
    "matplotlib.pyplot",
    "tqdm.auto",
    # what every kernel imports while its shell starts and in its first cells (tests/test_warm_kernels.py
    # checks that a forked kernel imports none of them again); none does anything when imported but define
    "IPython.core.completerlib",
    "IPython.core.debugger",
    "IPython.core.logger",
    "IPython.core.oinspect",
    "IPython.extensions.storemagic",
    "IPython.utils.wildcard",
    "faulthandler",
    "ipykernel.debugger",
    "numpy.testing",
    "psutil",
    "sqlite3",
    "tornado.gen",
    "tornado.locks",
    "tornado.platform.asyncio",
    "tornado.queues",
    # what the course's notebooks import (tests/test_warm_kernels.py keeps this list complete)
    "dnn_course.checks",
    "dnn_course.datasets",
    "dnn_course.experiment",
    "dnn_course.experiment_grades",
    "dnn_course.gradcheck",
    "dnn_course.model_builder",
    "dnn_course.notebook_import",
    "dnn_course.plotting",
    "dnn_course.records",
    "dnn_course.training",
)
#: The folders a kernel may write; emptied before each kernel starts.
WORKDIR = "/submission"
SCRATCH = ("/tmp", os.environ.get("HOME", "/home/student"))
PR_SET_DUMPABLE = 4
IPC_RMID = 0
#: A kernel started in a sandbox of its own is its process 2 (after bubblewrap's init), and names the
#: folder of its cells' files after it: forked kernels use the same name, so a message that quotes a
#: cell's file name does not depend on how many kernels ran before it.
FRESH_KERNEL_PID = 2
MAX_MESSAGE = 1 << 20
LIBC = ctypes.CDLL(None, use_errno=True)


def warm() -> list[str]:
    """Import the kernel's modules; the names that failed to import."""
    sys.modules.setdefault("debugpy", None)  # as in every kernel: never imported (see autograder.kernel.KERNEL_BOOT)
    failed = []
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a kernel without it imports it itself, or fails honestly
            failed.append(name)
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.font_manager  # noqa: F401 - the font list, built once for the submission
    gc.collect()
    gc.freeze()  # a kernel's collector leaves these objects alone: fewer of its pages copied after the fork
    return failed


def hand_in_font_list(paths: list[str]) -> None:
    """Copy the font list the grader built once per run (``argv[2]``, a read-only file) where Matplotlib
    looks for it, so that importing it does not build the list again."""
    folder = os.environ.get("MPLCONFIGDIR")
    for path in paths:
        if folder and os.path.basename(path).startswith("fontlist-v"):
            os.makedirs(folder, exist_ok=True)
            with open(path, "rb") as given, open(os.path.join(folder, os.path.basename(path)), "wb") as copy:
                copy.write(given.read())


def read_submission() -> dict[str, bytes]:
    """``{name: bytes}`` of the working folder's files, as the sandbox started."""
    files = {}
    for entry in os.scandir(WORKDIR):
        if entry.is_file(follow_symlinks=False):
            with open(entry.path, "rb") as handle:
                files[entry.name] = handle.read()
    return files


def _empty(folder: str, device: int | None = None) -> None:
    """Remove everything inside ``folder`` that lies on its own file system (entries a kernel made
    unreadable are made readable first). Read-only binds of the host's paths can sit inside ``/tmp``
    (a course checked out under the host's ``/tmp``): they and the folders leading to them stay."""
    try:
        if device is None:
            device = os.stat(folder).st_dev
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    except PermissionError:
        os.chmod(folder, 0o700)
        entries = list(os.scandir(folder))
    for entry in entries:
        if entry.stat(follow_symlinks=False).st_dev != device:
            continue  # a mount point: not the kernel's
        if entry.is_dir(follow_symlinks=False):
            try:
                os.chmod(entry.path, 0o700)
            except OSError:
                pass
            _empty(entry.path, device)
            try:
                os.rmdir(entry.path)
            except OSError:
                if not _holds_a_mount(entry.path, device):
                    raise
        else:
            os.unlink(entry.path)


def _holds_a_mount(folder: str, device: int) -> bool:
    """Whether a file system other than ``device`` is mounted somewhere inside ``folder``."""
    for root, dirs, _files in os.walk(folder):
        for name in dirs:
            if os.lstat(os.path.join(root, name)).st_dev != device:
                return True
    return False


def reset_folders(files: dict[str, bytes]) -> None:
    """The working folder holds the submitted files only; ``/tmp`` and the home folder are empty."""
    for folder in (WORKDIR, *SCRATCH):
        _empty(folder)
    for name, content in files.items():
        fd = os.open(os.path.join(WORKDIR, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(fd, "wb") as handle:  # writes it all, or raises (the grader then starts the kernel on its own)
            handle.write(content)
            os.fchmod(fd, 0o666)


def remove_ipc_objects() -> int:
    """Remove every System V shared memory segment, semaphore set and message queue of the sandbox's
    IPC namespace (they outlive the process that made them); how many."""
    removers = {
        "shm": lambda ipc_id: LIBC.shmctl(ipc_id, IPC_RMID, None),
        "sem": lambda ipc_id: LIBC.semctl(ipc_id, 0, IPC_RMID),
        "msg": lambda ipc_id: LIBC.msgctl(ipc_id, IPC_RMID, None),
    }
    removed = 0
    for kind, remove in removers.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                rows = table.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            if remove(int(row.split()[1])) == 0:
                removed += 1
    return removed


def own_settings() -> dict:
    """What this process passes on to every kernel it forks and a kernel of the same user can change
    from outside (``prlimit``, ``setpriority``, ``sched_setaffinity``, ``sched_setscheduler``)."""
    limits = {name: resource.getrlimit(getattr(resource, name)) for name in dir(resource) if name.startswith("RLIMIT_")}
    return {
        "limits": limits,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "cpus": sorted(os.sched_getaffinity(0)),
        "policy": os.sched_getscheduler(0),
    }


def others() -> list[int]:
    """Pids of the sandbox's processes other than this one."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) != os.getpid()]


class Server:
    def __init__(self, channel: socket.socket, files: dict[str, bytes]):
        self.channel = channel
        self.files = files
        self.kernel: int | None = None
        self.settings = own_settings()

    def send(self, message: dict) -> None:
        self.channel.send(json.dumps(message).encode())

    def reap(self) -> None:
        """Collect every ended child (orphans included: this is process 1); report the kernel's end."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.kernel:
                self.kernel = None
                self.send({"exited": pid, "status": os.waitstatus_to_exitcode(status)})

    def kill_others(self) -> int:
        """Kill and reap every other process of the sandbox, then remove the IPC objects they left;
        how many rounds it took."""
        rounds = 0
        while rounds < 200:
            rounds += 1
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.002)
            self.reap()
            if not others():
                break
        remove_ipc_objects()
        return rounds

    def start(self, request: dict, fds: list[int]) -> bool:
        """Fork the kernel; True in the kernel (which then leaves the serving loop), False here."""
        if len(request["addresses"]) != len(fds):
            raise ValueError(f"{len(request['addresses'])} addresses but {len(fds)} sockets")
        self.kill_others()
        changed = [name for name, value in own_settings().items() if value != self.settings[name]]
        if changed:  # an earlier kernel lowered them for every later one: the grader starts kernels on their own
            raise RuntimeError(f"a kernel changed the fork server's {', '.join(changed)}")
        reset_folders(self.files)
        listeners = dict(zip(request["addresses"], fds, strict=True))
        connection = os.memfd_create("kernel.json", 0)
        os.write(connection, json.dumps(request["connection"]).encode())
        pid = os.fork()
        if pid == 0:
            try:
                self.become_kernel(request, listeners, connection)
            except BaseException:  # noqa: BLE001 - never a second server: the kernel ends, its status tells
                traceback.print_exc()
                os._exit(1)
            return True
        for fd in fds:
            os.close(fd)
        os.close(connection)
        self.kernel = pid
        self.send({"started": pid})
        return False

    def become_kernel(self, request: dict, listeners: dict[str, int], connection: int) -> None:
        """Make this fork an ordinary process with the arguments the kernel's boot code reads."""
        self.channel.close()
        os.setpgid(0, 0)
        LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if "numpy.random" in sys.modules:
            sys.modules["numpy.random"].seed()  # a fresh process draws a seed of its own
        compiler = sys.modules.get("ipykernel.compiler")
        if compiler is not None:  # the cells' file names, as in a sandbox of its own (see FRESH_KERNEL_PID)
            compiler.get_tmp_directory = _fresh_kernel_tmp_directory
        sys.argv = ["-c", json.dumps(listeners), "-f", f"/proc/self/fd/{connection}", *request["argv"]]

    def handle(self, request: dict, fds: list[int]) -> bool:
        """Carry out one request; True in a forked kernel."""
        op = request.get("op")
        if op == "start":
            return self.start(request, fds)
        if op == "signal":
            if self.kernel is not None:
                try:
                    os.kill(self.kernel, int(request["signal"]))
                except ProcessLookupError:
                    pass
        elif op == "kill":
            rounds = self.kill_others()
            self.send({"killed": rounds})
        else:
            self.send({"error": f"unknown request {op!r}"})
        return False

    def serve(self) -> None:
        """Answer requests until the grader leaves (then end); return only in a forked kernel."""
        while True:
            ready, _, _ = select.select([self.channel], [], [], 0.05)
            self.reap()
            if not ready:
                continue
            message, fds, _, _ = socket.recv_fds(self.channel, MAX_MESSAGE, 16)
            if not message:  # the grader is gone: so is the sandbox
                os._exit(0)
            try:
                if self.handle(json.loads(message), list(fds)):
                    return
            except Exception as error:  # noqa: BLE001 - refused, said why; the grader starts the kernel on its own
                for fd in fds:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                self.send({"error": f"{type(error).__name__}: {error}"})


def _fresh_kernel_tmp_directory() -> str:
    return os.path.join(tempfile.gettempdir(), f"ipykernel_{FRESH_KERNEL_PID}")


def main() -> None:
    """Warm up and serve; returns only in a forked kernel, which then runs the boot code after this file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = socket.socket(fileno=int(sys.argv[1]))
    persistent = [path for path in ("/", "/etc", "/home", "/dev", "/dev/shm") if os.access(path, os.W_OK)]
    if persistent:  # what a kernel wrote there would reach the next one: no kernel from here
        sys.exit(f"the fork server refuses to start: {', '.join(persistent)} can be written in the sandbox")
    hand_in_font_list(sys.argv[2:])
    failed = warm()
    files = read_submission()
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    # POSIX message queues outlive their maker and cannot be listed from here: kernels may make none
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))
    server = Server(channel, files)
    server.send({"ready": failed})
    server.serve()


if __name__ == "__main__":
    main()
# The grader appends its kernel boot code here (autograder.kernel.KERNEL_BOOT): a forked kernel runs it
# at this module's level, as a kernel started on its own runs it from ``python -c``.
