"""A grading job in a process forked from a warmed one: what the parent does once for all its jobs,
and how the forked child becomes a job.

Forked by a local run (:func:`autograder.grade.run_jobs`) and by a Dask worker's job launcher
(:mod:`autograder.job_launcher`): the parent imports the grader and calls :func:`warm_up_jobs` once;
each job is a forked :func:`child`, which inherits all of it. :func:`finish` kills what a job left
and says how it went, however the job was started (a Dask task may also exec it).
"""

from __future__ import annotations

import faulthandler
import json
import os
import secrets
import signal
import sys
import tempfile
import traceback
from pathlib import Path

from . import feedback_exporter, kernel_environment, warm_kernels
from . import job as job_module
from .grading_records import JobSpec
from .grading_settings import GradingSettings, nbgrader_config
from .layout import JobLayout
from .submission_processes import kill_marked_processes


def _fresh_event_loop() -> None:
    """A forked child must not share the parent's event loop (an epoll set is shared by fork)."""
    import asyncio

    import jupyter_core.utils as jcu

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    jcu._loop.set(loop)
    jcu._runner_map.clear()


def _dump_tasks(signum, frame) -> None:
    import asyncio

    for task in asyncio.all_tasks(asyncio.get_event_loop()):
        task.print_stack(limit=30)
    sys.stderr.flush()


def child(jobdir: Path) -> None:
    """In the forked child: own session, output to job.log, grade, exit (never returns)."""
    code = 1
    try:
        os.setsid()
        log = os.open(JobLayout(jobdir).log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        # sys.stdout/stderr may not write to fds 1 and 2 (pytest's capture, a Jupyter kernel's
        # streams): rebind them, so a failing job's traceback lands in job.log
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)
        _fresh_event_loop()
        faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints where a job is stuck
        signal.signal(signal.SIGUSR2, _dump_tasks)  # `kill -USR2 <pid>`: its asyncio tasks
        job_module.run(jobdir)
        code = 0
    except BaseException:  # noqa: BLE001 - everything goes to job.log; the parent reads the exit code
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def warm_up_jobs(scratch: Path, job: JobSpec, course: Path) -> None:
    """Do here, once, what every grading job forked from this process would do (a local run's host, a
    Dask worker's :mod:`autograder.job_launcher`), for jobs like ``job`` (its released and source
    notebooks; ``course``: the course folder nbgrader is configured for): read the test images saved networks are measured on, decode the embedded subsets
    the kernels load (into ``scratch``, bound read-only into the sandboxes; :func:`forget_warm_ups`
    before it is removed), build Matplotlib's font list, compile the feedback pages' templates and
    highlight the course's cells. The jobs inherit all of it."""
    job_module.warm_measurement_data(job.description)
    try:
        kernel_environment.DECODED_DATA = kernel_environment.decode_datasets(scratch)
    except (OSError, ValueError):  # unreadable: each kernel decodes the files itself (and says why)
        kernel_environment.DECODED_DATA = None
    warm_kernels.FONT_LIST = font_list(scratch, job.isolation.level, job.settings)
    feedback_exporter.warm(
        feedback_exporter.course_notebooks(Path(job.release_dir), Path(job.source_dir)),
        nbgrader_config(course, job.settings),
    )


def forget_warm_ups() -> None:
    """Forget what :func:`warm_up_jobs` left in a folder about to be removed (the decoded subsets)."""
    kernel_environment.DECODED_DATA = None


def font_list(scratch: Path, isolation: str, settings: GradingSettings) -> tuple[str, bytes] | None:
    """Matplotlib's font list for the run's fork servers, built once in a sandbox with no submission in it
    (None where kernels are not forked: each builds its own, as before)."""
    folder = Path(tempfile.mkdtemp(prefix="fonts-", dir=scratch))
    (folder / "work").mkdir()
    (folder / "ipc").mkdir()
    spec = kernel_environment.grading_spec(
        isolation, str(folder / "work"), str(folder / "ipc"), secrets.token_hex(8), settings, slot=0
    )
    return warm_kernels.build_font_list(spec) if warm_kernels.enabled(spec) else None


def finish(jobdir: Path, exit_code: int | None, timeout: float, session: int | None = None) -> tuple[bool, str]:
    """Kill what is left of the job of ``jobdir`` (its ``session``, if still there, and every process
    carrying its marker) and say how it went: ``exit_code`` None when it was stopped at ``timeout``."""
    if session is not None:
        try:
            os.killpg(session, signal.SIGKILL)  # the job's session: its kernel launcher and helpers
        except (ProcessLookupError, PermissionError):
            pass
    folders = JobLayout(jobdir)
    kill_marked_processes(JobSpec.from_json(json.loads(folders.spec.read_text())).token)
    if exit_code is None:
        return False, f"grading did not finish within {timeout:g} s"
    if not folders.result.exists():
        tail = folders.log.read_bytes()[-1500:].decode("utf-8", "replace")
        return False, f"the grader failed on this submission (exit {exit_code}): {tail}"
    return True, ""
