"""One warmed process per Dask worker that forks the worker's grading jobs, as a local run forks its own.

A local run forks every grading job from its own process, which has imported the grader and done the
run's warm-ups once (:func:`autograder.forked_jobs.warm_up_jobs`: the measured test images, the embedded
subsets decoded, Matplotlib's font list, the feedback templates compiled and the course's cells
highlighted). A Dask task used to start ``python -m autograder.job`` instead, and so paid the grader's
imports and every warm-up again for each submission.

Now each worker that can grade starts one launcher (``python -m autograder.job_launcher SOCKET``, from
:class:`autograder.distributed.GradingCheck`; it dies with the worker, ``PR_SET_PDEATHSIG``). A task
connects to the launcher's Unix socket and sends its job folder; the launcher reads the job's
description, warms up for its course the first time it sees that course (keyed by the digest of the
released and source notebooks and of the grading settings), and forks the job exactly as a local run
does (:func:`autograder.forked_jobs.child`: a session of its own, output to ``job.log``), with
``PR_SET_PDEATHSIG`` so the job dies with the launcher. It answers ``{"pid": PID}`` at once and
``{"exited": STATUS}`` (the wait status) when the job ends, then closes the connection. The task kills
the job's session on a timeout, as a local run does, and starts ``python -m autograder.job`` itself
when there is no launcher or it does not answer.

Everything the launcher reads (the job folder, written by the task) is the grader's; it never runs
student code itself, and it serves one request at a time (a warm-up delays the tasks behind it).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import forked_jobs
from .grading_records import JobSpec
from .layout import JobLayout

#: prctl's option: the signal a process gets when the thread that started it ends (Linux).
PR_SET_PDEATHSIG = 1
#: Largest request (a job folder's path in JSON).
MAX_REQUEST = 65536
#: Seconds a task waits for a launcher still importing the grader, and for the launcher's first answer
#: (which may wait for a warm-up of the course); past them the task grades without it.
READY_TIMEOUT = 120
#: The longest path of the launcher's socket (Linux: 108 bytes with the final NUL, less to be safe).
MAX_SOCKET_PATH = 100
#: What :meth:`LauncherClient.run` answers when the launcher ended while the job ran (the job ended with it).
LOST = "lost"
#: What :meth:`LauncherClient.run` answers when the job was killed at its time limit.
TIMED_OUT = "timeout"


def _course_key(job: JobSpec) -> str:
    """What a warm-up depends on: the released and source notebooks' bytes, the grading settings, the
    assignment's description and the isolation."""
    described = job.to_json()
    digest = hashlib.sha256(
        json.dumps([described["settings"], described["description"], described["isolation"]], sort_keys=True).encode()
    )
    for folder in (Path(job.release_dir), Path(job.source_dir)):
        for path in sorted(folder.glob("*.ipynb")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _send(connection: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):
        connection.sendall(json.dumps(message).encode() + b"\n")


class Launcher:
    """The serving loop (in the launcher process)."""

    def __init__(self, listener: socket.socket, scratch: Path):
        self.listener = listener
        self.scratch = scratch
        self.warmed_for: str | None = None
        self.waiting: dict[int, socket.socket] = {}  # job pid -> the connection told its end

    def warm_up(self, job: JobSpec, jobdir: Path) -> None:
        key = _course_key(job)
        if key == self.warmed_for:
            return
        forked_jobs.forget_warm_ups()
        folder = Path(tempfile.mkdtemp(prefix="warm-", dir=self.scratch))
        os.chmod(folder, 0o711)
        forked_jobs.warm_up_jobs(folder, job, JobLayout(jobdir).course.root)
        self.warmed_for = key

    def start_job(self, connection: socket.socket) -> None:
        """Read one request from ``connection``, fork its job, answer with the job's pid."""
        connection.settimeout(30)
        request = b""
        while not request.endswith(b"\n") and len(request) < MAX_REQUEST:
            chunk = connection.recv(MAX_REQUEST)
            if not chunk:
                break
            request += chunk
        jobdir = Path(json.loads(request)["jobdir"])
        job = JobSpec.from_json(json.loads(JobLayout(jobdir).spec.read_text()))
        self.warm_up(job, jobdir)
        sys.stdout.flush()
        sys.stderr.flush()
        launcher = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:  # never a second launcher: the child is the job, or ends
                ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                if os.getppid() != launcher:  # the launcher ended before the line above
                    os._exit(1)
                self.listener.close()
                for other in (connection, *self.waiting.values()):
                    other.close()
                os.chdir(jobdir)
                forked_jobs.child(jobdir)  # never returns
            finally:
                os._exit(1)
        self.waiting[pid] = connection
        _send(connection, {"pid": pid})

    def reap(self) -> None:
        """Collect every ended job and tell its task (the fork server's loop, which imports nothing of
        the grader, has the same few lines)."""
        while self.waiting:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self.waiting.pop(pid, None)
            if connection is not None:
                _send(connection, {"exited": status})
                connection.close()

    def serve(self) -> None:
        """Answer requests, one at a time, until the worker ends (and with it this process)."""
        while True:
            ready, _, _ = select.select([self.listener], [], [], 0.05)
            self.reap()
            if not ready:
                continue
            connection, _ = self.listener.accept()
            try:
                self.start_job(connection)
            except Exception as error:  # noqa: BLE001 - the task grades without the launcher, saying why
                _send(connection, {"error": f"{type(error).__name__}: {error}"})
                connection.close()


class LauncherClient:
    """The worker's side: starts the launcher, has it run jobs, stops it."""

    def __init__(self, process: subprocess.Popen, path: Path):
        self.process = process
        self.path = path
        self.jobs_started = 0  #: jobs the launcher forked for this worker
        self.refused: str | None = None  #: why the launcher did not start the last job it was asked for

    @classmethod
    def start(cls) -> LauncherClient:
        """Start a launcher that dies with the calling thread's process (call it from the thread that
        lives as long as the worker: its event loop's)."""
        folder = Path(tempfile.mkdtemp(prefix="autograder-launcher-"))
        if len(str(folder / "launcher.sock")) > MAX_SOCKET_PATH:  # a deep temporary folder: a Unix socket's
            folder.rmdir()  # path is at most 107 bytes
            folder = Path(tempfile.mkdtemp(prefix="autograder-launcher-", dir="/tmp"))
        package_parent = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_parent, os.environ.get("PYTHONPATH", "")]))
        libc = ctypes.CDLL(None, use_errno=True)
        process = subprocess.Popen(
            [sys.executable, "-m", "autograder.job_launcher", str(folder / "launcher.sock")],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd=folder,
            preexec_fn=lambda: libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL),
        )
        return cls(process, folder / "launcher.sock")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # its jobs die with it (PR_SET_PDEATHSIG)
        self.process.wait()
        shutil.rmtree(self.path.parent, ignore_errors=True)

    def _ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def run(self, jobdir: Path, timeout: float) -> int | str | None:
        """Have the launcher grade the job of ``jobdir``: the job's wait status; :data:`TIMED_OUT` if it
        was killed after ``timeout`` seconds; :data:`LOST` if the launcher ended meanwhile; None if the
        launcher could not start it (the caller runs the job itself)."""
        if not self._ready():
            return None
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            try:
                connection.settimeout(READY_TIMEOUT)
                connection.connect(str(self.path))
                connection.sendall(json.dumps({"jobdir": str(jobdir)}).encode() + b"\n")
                answers = connection.makefile("rb")
                started = json.loads(answers.readline() or b"{}")
            except (OSError, ValueError):
                return None
            if "pid" not in started:
                self.refused = started.get("error", "no answer")
                return None
            pid = started["pid"]
            self.jobs_started += 1
            connection.settimeout(max(timeout, 1.0))
            try:
                ended = json.loads(answers.readline() or b"{}")
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                connection.settimeout(READY_TIMEOUT)
                with contextlib.suppress(OSError, ValueError):
                    answers.readline()
                return TIMED_OUT
            except (OSError, ValueError):
                return LOST
            return ended.get("exited", LOST)


def main() -> None:
    """``python -m autograder.job_launcher SOCKET``: serve until the worker that started it ends."""
    path = sys.argv[1]
    scratch = Path(tempfile.mkdtemp(prefix="autograder-launcher-"))
    os.chmod(scratch, 0o711)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    try:
        Launcher(listener, scratch).serve()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
