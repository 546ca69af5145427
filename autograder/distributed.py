"""Grading on a Dask cluster: one task per submission, its files sent and returned as bytes.

``python -m autograder grade SUBMISSIONS --out OUT --scheduler tcp://HOST:8786``. The client (the
machine that runs the command) prepares the course and collects the submissions as a local run
does; then, in place of :func:`autograder.grade.run_jobs` (one forked process per student), it
sends one task per student to the cluster with :func:`run_jobs_on_cluster`, which keeps
``run_jobs``'s contract: every job's folder ends up holding what a local job writes there
(``result.json``, ``job.log``, ``timings.json``, ``course/gradebook.db``, nbgrader's feedback
pages under ``course/feedback/``), and the answer is ``{student id: (graded, error)}``. The rest
of the run (merging the gradebooks, publishing the feedback, the report) is the local run's, and
only the client writes ``OUT``: the workers need no shared file system.

A task (:func:`grade_on_worker`) carries the job description and the bytes of everything the job
reads: the student's collected files and, in one task result shared by every task
(:func:`course_inputs`), the released and source notebooks and the assignment's gradebook. On the
worker it writes them into a private temporary folder, claims a sandbox slot of the machine
(:func:`claim_slot`, one per running task, whatever the number of worker processes), and grades
there in a job forked by the worker's launcher (:mod:`autograder.job_launcher`, warmed up once per
worker and course, started by :class:`GradingCheck`; without one that answers, with ``python -m
autograder.job``), in a session of its own, under the same wall-clock limit and kill discipline as a
local job (the session and every process carrying the job's token are killed when it ends). It
returns the bytes of what the job wrote; once the client has saved them, it releases the task, so
the cluster keeps no finished task it would run again after losing a worker.

**Which workers grade.** The client registers :class:`GradingCheck` on the cluster: at its start
every worker, and every worker that joins later, compares itself with the client (the grading
software's digest, so the same course package and grader; bubblewrap when the client grades in
it). A worker that matches offers the resource ``grader-<digest>`` (one unit per thread); tasks ask
for one unit, so they run only on workers that can grade, one sandbox per thread. A worker that does
not match says why; the client prints those reasons, and stops with them when no worker can grade.
A task also verifies the released notebooks' checksums when its files arrive.

**Faults.** A worker that dies while grading (killed, out of memory, machine lost) loses nothing:
the scheduler runs its task again on another worker. A submission whose task has been on
``allowed-failures`` + 1 workers that died (the scheduler's setting, 3 by default) is given up
with Dask's ``KilledWorker``: the student gets a row scored 0 with a flag saying so, never an
endless loop. Every finished task's files are kept in ``OUT/course/cluster/<key>.zip`` (the key of
:mod:`autograder.fingerprint`) as soon as they arrive, so an interrupted client, started again,
sends only the tasks not finished (that folder is pruned to the current keys at the start of each
cluster run).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from dnn_course.atomic_write import write_atomically

from . import fingerprint, forked_jobs, kernel_environment, sandbox
from .grading_records import Isolation, JobSpec
from .job_launcher import LOST, PR_SET_PDEATHSIG, TIMED_OUT, LauncherClient
from .layout import JobLayout

#: Files of a job folder returned to the client, besides the feedback pages: what a local job leaves there.
JOB_OUTPUTS = ("result.json", "job.log", "timings.json", "course/gradebook.db")
#: Largest number of sandbox slots one machine hands out (slot n runs as uid FIRST_SANDBOX_UID + n as root).
MAX_SLOTS = 256
#: Seconds the client waits for the scheduler to answer.
CONNECT_TIMEOUT = 30


class ClusterCannotGrade(RuntimeError):
    """No worker of the cluster can grade (each one's reason in the message), or the scheduler is unreachable."""


@dataclass(frozen=True)
class Requirements:
    """What a worker must match to grade for this client.

    ``software``: :func:`autograder.fingerprint.software_digest` of the client; ``versions`` and
    ``files``: the client's :func:`autograder.fingerprint.library_versions` and
    :func:`autograder.fingerprint.software_files` (to say what differs); ``isolation``: the
    client's isolation level (``bubblewrap`` or ``process``).
    """

    software: str
    versions: dict
    files: dict
    isolation: str

    @property
    def resource(self) -> str:
        """The Dask resource a worker that matches offers and every task asks for."""
        return f"grader-{self.software[:16]}"

    @classmethod
    def of_this_machine(cls, isolation: str) -> Requirements:
        return cls(
            fingerprint.software_digest(), fingerprint.library_versions(), fingerprint.software_files(), isolation
        )


def worker_problem(required: Requirements) -> str | None:
    """Why this machine cannot grade for a client with ``required`` (None: it can)."""
    problems = []
    if fingerprint.software_digest() != required.software:
        ours, files = fingerprint.library_versions(), fingerprint.software_files()
        differ = [
            f"{name} {ours.get(name)} here, {version} on the client"
            for name, version in required.versions.items()
            if ours.get(name) != version
        ]
        names = sorted(
            name for name in files.keys() | required.files.keys() if files.get(name) != required.files.get(name)
        )
        if names:
            differ.append(
                f"{len(names)} file(s) of the course's packages differ: {', '.join(names[:5])}"
                + (", ..." if len(names) > 5 else "")
            )
        problems.append(
            f"its grading software differs from the client's ({'; '.join(differ)}): install the same "
            "commit of the course repository and `pip install -r requirements.txt`, then restart it"
        )
    if required.isolation == sandbox.ISOLATION_BWRAP:
        try:
            sandbox.detect_isolation(sandbox.ISOLATION_BWRAP, kernel_environment.readonly_paths())
        except RuntimeError as error:
            problems.append(f"the client grades in bubblewrap and this worker cannot: {error}")
    return "; ".join(problems) or None


class GradingCheck(WorkerPlugin):
    """Dask worker plugin: the worker offers the grading resource only if it can grade (see the module).

    After ``setup`` the worker's ``autograder_problem`` attribute is None or the reason it cannot grade,
    and a worker that can grade has its job launcher (``autograder_launcher``), stopped at ``teardown``.
    """

    name = "autograder-grading-check"

    def __init__(self, required: Requirements):
        self.required = required

    async def setup(self, worker) -> None:
        import asyncio

        problem = await asyncio.get_running_loop().run_in_executor(None, worker_problem, self.required)
        worker.autograder_problem = problem
        if problem is None:
            # from the worker's event loop thread, which lives as long as the worker: the launcher dies with it
            worker.autograder_launcher = LauncherClient.start()
            await worker.set_resources(**{self.required.resource: worker.state.nthreads})

    async def teardown(self, worker) -> None:
        launcher = getattr(worker, "autograder_launcher", None)
        if launcher is not None:
            worker.autograder_launcher = None
            launcher.stop()


def _files_of(folder: Path) -> dict[str, bytes]:
    """``{relative name: bytes}`` of every file under ``folder`` (none if it does not exist)."""
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = (folder / name).resolve()
        if folder.resolve() not in path.parents:
            raise ValueError(f"refusing to write {name!r} outside {folder}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def course_inputs(files: dict[str, dict[str, bytes]]) -> dict[str, dict[str, bytes]]:
    """The task all grading tasks depend on: the course's files, as given.

    ``files`` has ``release`` and ``source`` (``{notebook name: bytes}``) and ``master_db``
    (``{"gradebook.db": bytes}``). Being a task's argument, the scheduler keeps it, and recomputes
    this result if every worker holding it dies.
    """
    return files


def _checksums(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


@contextlib.contextmanager
def claim_slot():
    """A sandbox slot of this machine free of every other task (a lock file per slot); yields its number."""
    for slot in range(MAX_SLOTS):
        handle = open(Path(tempfile.gettempdir()) / f"autograder-slot-{slot}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            yield slot
        finally:
            handle.close()
        return
    raise RuntimeError(f"all {MAX_SLOTS} sandbox slots of {socket.gethostname()} are taken")


def _run_job(jobdir: Path, timeout: float, launcher: LauncherClient | None) -> tuple[bool, str]:
    """Grade the job of ``jobdir``, forked by the worker's ``launcher`` (:mod:`autograder.job_launcher`) or,
    without one that answers, with ``python -m autograder.job jobdir`` in a session of its own; kill what
    is left; say how it went (:func:`autograder.forked_jobs.finish`)."""
    outcome = launcher.run(jobdir, timeout) if launcher is not None else None
    if outcome == LOST:
        forked_jobs.finish(jobdir, None, timeout)
        return False, "the worker's job launcher ended while this submission was graded"
    if outcome is not None:
        return forked_jobs.finish(jobdir, None if outcome == TIMED_OUT else os.waitstatus_to_exitcode(outcome), timeout)
    package_parent = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_parent, os.environ.get("PYTHONPATH", "")]))
    libc = ctypes.CDLL(None, use_errno=True)
    with open(JobLayout(jobdir).log, "wb") as log:  # the job dies with this worker (its sandboxes die with it)
        process = subprocess.Popen(
            [sys.executable, "-m", "autograder.job", str(jobdir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=env,
            cwd=jobdir,
            preexec_fn=lambda: libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL),
        )
    timed_out = False
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # the job's session: its kernel launcher and helpers
        process.wait()
    return forked_jobs.finish(jobdir, None if timed_out else process.returncode, timeout)


def _worker_launcher() -> LauncherClient | None:
    """The job launcher of the worker running this task (None outside a worker, or before its check)."""
    try:
        from distributed import get_worker

        return getattr(get_worker(), "autograder_launcher", None)
    except ValueError:  # not in a worker
        return None


def grade_on_worker(
    job: JobSpec,
    submitted: dict[str, bytes],
    course: dict[str, dict[str, bytes]],
    release_sums: dict[str, str],
    timeout: float,
) -> dict:
    """The task: grade one student on this worker; ``{"ok", "error", "files"}`` (files: ``{name: bytes}``).

    ``job`` is the job description the client made (its paths are replaced by this worker's);
    ``submitted`` the student's collected files; ``course`` the result of :func:`course_inputs`;
    ``release_sums`` the client's SHA-256 of each released notebook.
    """
    if _checksums(course["release"]) != release_sums:
        raise ClusterCannotGrade(
            f"the released notebooks reached {socket.gethostname()} altered (their checksums differ from the client's)"
        )
    with tempfile.TemporaryDirectory(prefix="autograder-task-") as scratch:
        root = Path(scratch)
        os.chmod(root, 0o711)  # the sandbox user enters the job folder, as in a local run
        for part in ("release", "source", "submitted"):
            _write_files(root / part, submitted if part == "submitted" else course[part])
        _write_files(root, course["master_db"])
        jobdir = root / "job"
        jobdir.mkdir()
        os.chmod(jobdir, 0o711)
        with claim_slot() as slot:
            local = dataclasses.replace(
                job,
                submitted_dir=str(root / "submitted"),
                release_dir=str(root / "release"),
                master_db=str(root / "gradebook.db"),
                source_dir=str(root / "source"),
                slot=slot,
                settings=dataclasses.replace(job.settings, jobs=max(slot + 1, os.cpu_count() or 1)),
            )
            JobLayout(jobdir).spec.write_text(json.dumps(local.to_json()))
            ok, error = _run_job(jobdir, timeout, _worker_launcher())
        files = {name: (jobdir / name).read_bytes() for name in JOB_OUTPUTS if (jobdir / name).exists()}
        files.update(
            {f"course/feedback/{name}": data for name, data in _files_of(jobdir / "course" / "feedback").items()}
        )
        return {"ok": ok, "error": error, "files": files}


def _pack(outcome: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("outcome.json", json.dumps({"ok": outcome["ok"], "error": outcome["error"]}))
        for name, data in sorted(outcome["files"].items()):
            archive.writestr(f"files/{name}", data)
    return buffer.getvalue()


def _unpack(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        head = json.loads(archive.read("outcome.json"))
        files = {name[len("files/") :]: archive.read(name) for name in archive.namelist() if name.startswith("files/")}
    return dict(head, files=files)


def _connect(scheduler: str):
    from distributed import Client

    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except OSError as error:
        raise ClusterCannotGrade(
            f"no Dask scheduler answered at {scheduler} within {CONNECT_TIMEOUT} s ({error}); "
            "start one with `dask scheduler` and give its address to --scheduler"
        ) from None


def check_workers(client, required: Requirements) -> dict[str, str | None]:
    """Register :class:`GradingCheck`; ``{worker address: why it cannot grade, or None}``.

    Raises :class:`ClusterCannotGrade` when the cluster has no worker that can grade.
    """
    client.register_plugin(GradingCheck(required))
    problems = client.run(lambda dask_worker: getattr(dask_worker, "autograder_problem", "not checked"))
    if not any(problem is None for problem in problems.values()):
        lines = [f"  {address}: {problem}" for address, problem in sorted(problems.items())]
        raise ClusterCannotGrade(
            "no worker of the cluster can grade" + (":\n" + "\n".join(lines) if lines else " (it has no worker yet)")
        )
    return problems


def run_jobs_on_cluster(
    scheduler: str,
    jobs: dict[str, Path],
    make_job,
    timeout: float,
    progress: bool,
    keys: dict[str, str],
    done: Path,
    isolation: Isolation,
) -> dict[str, tuple[bool, str]]:
    """Grade every job on the Dask cluster at ``scheduler``; the contract of :func:`autograder.grade.run_jobs`.

    ``make_job(student_id, slot)`` returns the job description (its paths are the client's; the
    slot is the worker's own). ``keys`` are the students' grading keys; ``done`` the folder of
    finished tasks' files (see the module). ``isolation`` is the client's isolation in force.
    """
    from distributed import as_completed
    from distributed.scheduler import KilledWorker
    from tqdm import tqdm

    done.mkdir(parents=True, exist_ok=True)
    wanted = {f"{keys[sid]}.zip" for sid in jobs}
    for stale in done.glob("*.zip"):
        if stale.name not in wanted:
            stale.unlink()
    results: dict[str, tuple[bool, str]] = {}
    todo = []
    for sid, jobdir in jobs.items():
        cached = done / f"{keys[sid]}.zip"
        if cached.exists():  # finished by an earlier, interrupted run
            _write_files(jobdir, _unpack(cached.read_bytes())["files"])
            results[sid] = (True, "")
        else:
            todo.append(sid)
    if not todo:
        return results
    required = Requirements.of_this_machine(isolation.level)
    client = _connect(scheduler)
    bar = tqdm(total=len(jobs), initial=len(results), unit="student", desc="grading (cluster)", disable=not progress)
    try:
        for address, problem in sorted(check_workers(client, required).items()):
            if problem:
                print(f"worker {address} cannot grade: {problem}", file=sys.stderr)
        first = make_job(todo[0], 0)
        files = {
            "release": _files_of(Path(first.release_dir)),
            "source": _files_of(Path(first.source_dir)),
            "master_db": {"gradebook.db": Path(first.master_db).read_bytes()},
        }
        course = client.submit(course_inputs, files, pure=False, resources={required.resource: 1})
        release_sums = _checksums(files["release"])
        futures = {}
        for sid in todo:
            job = make_job(sid, 0)
            JobLayout(jobs[sid]).spec.write_text(json.dumps(job.to_json()))
            futures[
                client.submit(
                    grade_on_worker,
                    job,
                    _files_of(Path(job.submitted_dir)),
                    course,
                    release_sums,
                    timeout,
                    pure=False,
                    key=f"autograde-{sid}-{keys[sid][:16]}-{os.getpid()}",
                    resources={required.resource: 1},
                )
            ] = sid
        for future in as_completed(futures, loop=client.loop):
            sid = futures[future]
            try:
                outcome = future.result()
            except KilledWorker as error:
                results[sid] = (
                    False,
                    f"not graded: every worker that graded this submission died while doing so "
                    f"({error.last_worker.address if error.last_worker else 'the last one'} "
                    "was the last); stopped after the cluster's allowed failures",
                )
            except ClusterCannotGrade:
                raise
            except Exception as error:  # noqa: BLE001 - one task's failure is that student's row, never the class's
                results[sid] = (
                    False,
                    f"the grader failed on this submission on the cluster: {type(error).__name__}: {error}",
                )
            else:
                _write_files(jobs[sid], outcome["files"])
                results[sid] = (outcome["ok"], outcome["error"])
                if outcome["ok"]:
                    write_atomically(done / f"{keys[sid]}.zip", _pack(outcome))
            # its files are saved (and its zip kept for a restart): the cluster may forget it, so a worker
            # lost later does not make the scheduler grade this submission again for nobody
            del futures[future]
            future.release()
            bar.update(1)
    finally:
        bar.close()
        client.close()
    return results
