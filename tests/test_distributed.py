"""Grading on a Dask cluster (:mod:`autograder.distributed`).

The slow test is the real thing: a ``dask scheduler`` and two ``dask worker`` processes on this
machine (TCP on localhost, one thread each), the rehearsal cohort graded through them with
``python -m autograder grade ... --scheduler``, one worker killed with SIGKILL while it grades; every
student must have exactly one row and grades.csv must be the local run's, byte for byte. The unit
tests check the pieces a cluster needs: the worker's refusal message, the sandbox slots of a
machine and the files that travel.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from autograder import distributed, fingerprint, sandbox

REPO = Path(__file__).resolve().parent.parent


def test_a_worker_with_other_software_refuses_and_says_what_differs():
    mine = distributed.Requirements.of_this_machine(sandbox.ISOLATION_PROCESS)
    assert distributed.worker_problem(mine) is None
    versions = dict(mine.versions, numpy="1.0.0")
    problem = distributed.worker_problem(replace(mine, software="0" * 64, versions=versions))
    assert f"numpy {mine.versions['numpy']} here, 1.0.0 on the client" in problem
    assert "pip install -r requirements.txt" in problem
    files = dict(mine.files, **{"autograder/job.py": "0" * 64})
    problem = distributed.worker_problem(replace(mine, software="0" * 64, files=files))  # other course code
    assert "1 file(s) of the course's packages differ: autograder/job.py" in problem
    assert mine.resource == f"grader-{fingerprint.software_digest()[:16]}"


def test_tasks_on_one_machine_get_different_sandbox_slots_and_free_them():
    with distributed.claim_slot() as first, distributed.claim_slot() as second:
        assert first != second
    with distributed.claim_slot() as again:
        assert again == first


def test_a_tasks_files_survive_the_trip_and_cannot_escape_the_job_folder(tmp_path):
    outcome = {"ok": True, "error": "", "files": {"result.json": b"{}", "course/feedback/2001/dnn_hw/a.html": b"<p>"}}
    assert distributed._unpack(distributed._pack(outcome)) == outcome
    distributed._write_files(tmp_path / "job", outcome["files"])
    assert distributed._files_of(tmp_path / "job") == outcome["files"]
    with pytest.raises(ValueError, match="outside"):
        distributed._write_files(tmp_path / "job", {"../escaped": b"x"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dask(*args: str, log: Path) -> subprocess.Popen:
    """``dask ARGS`` from the repository (so the workers import this autograder), output to ``log``."""
    with open(log, "wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )


@pytest.fixture
def cluster(tmp_path):
    """``(scheduler address, {worker name: process})``: a scheduler and two one-thread workers, no nanny."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    processes = [
        _dask(
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            address.rsplit(":", 1)[1],
            "--no-dashboard",
            log=tmp_path / "scheduler.log",
        )
    ]
    workers = {}
    try:
        for name in ("w1", "w2"):
            workers[name] = _dask(
                "worker",
                address,
                "--name",
                name,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--local-directory",
                str(tmp_path / name),
                log=tmp_path / f"{name}.log",
            )
            processes.append(workers[name])
        with Client(address, timeout=120, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=300)
        yield address, workers
    finally:
        for process in reversed(processes):
            process.kill()
            process.wait()


def _worker_address(client, name: str) -> str:
    return next(address for address, info in client.scheduler_info()["workers"].items() if info["name"] == name)


@pytest.mark.slow
@pytest.mark.usefixtures("bubblewrap")
def test_the_cohort_graded_on_two_workers_one_killed_mid_run_matches_the_local_run(cluster, tmp_path):
    from distributed import Client

    from autograder.grade import grade
    from tests.rehearsal import cohort
    from tests.test_term_rehearsal import RELEASE, SETTINGS, SOURCE

    address, workers = cluster
    download = cohort.build_cohort(tmp_path / "cohort", RELEASE, SOURCE)
    grade(download, tmp_path / "local", SETTINGS, progress=False)
    out = tmp_path / "cluster"
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autograder",
            "grade",
            str(download),
            "--out",
            str(out),
            "--scheduler",
            address,
            "--experiment-profile",
            SETTINGS.experiment_profile,
            "--quiet",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # SIGKILL w1 while it grades a submission, once another one is done (the run is well under way)
    with Client(address, timeout=120, set_as_default=False) as client:
        victim = _worker_address(client, "w1")
        deadline = time.monotonic() + 1800
        while not (
            list((out / "course" / "cluster").glob("*.zip"))
            and any(str(key).startswith("autograde-") for key in client.processing().get(victim, ()))
        ):
            assert run.poll() is None and time.monotonic() < deadline, "the run ended before w1 could be killed"
            time.sleep(0.5)
        saved = [archive.stem[:16] for archive in (out / "course" / "cluster").glob("*.zip")]
        os.kill(workers["w1"].pid, signal.SIGKILL)
        workers["w1"].wait()
        # a task whose files the client saved is released: the scheduler holds it no more (so losing a
        # worker never makes it grade that submission again); the key of a task names the student's key
        time.sleep(2)
        held = client.run_on_scheduler(
            lambda dask_scheduler: [str(key) for key in dask_scheduler.tasks if str(key).startswith("autograde-")]
        )
        assert saved and not [key for key in held if any(prefix in key for prefix in saved)], (saved, held)
    output, _ = run.communicate(timeout=1800)
    assert run.returncode == 0, output
    assert "not graded" not in output, output
    with Client(address, timeout=120, set_as_default=False) as client:  # w2's jobs were forked by its launcher
        started = client.run(lambda dask_worker: dask_worker.autograder_launcher.jobs_started)
    assert list(started.values())[0] > 0, started

    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        ids = [row["student_id"] for row in csv.DictReader(handle)]
    assert sorted(ids) == sorted(cohort.EXPECTED) and len(ids) == len(set(ids))  # every student exactly once
    assert (out / "grades.csv").read_bytes() == (tmp_path / "local" / "grades.csv").read_bytes()
    for sid in ids:
        assert (out / "results" / f"{sid}.json").read_bytes() == (
            tmp_path / "local" / "results" / f"{sid}.json"
        ).read_bytes(), sid


def test_a_launcher_that_cannot_start_a_job_says_so_and_the_task_grades_without_it(tmp_path):
    """The worker's job launcher, for real: a job folder it cannot read is refused (None: the task then
    runs ``python -m autograder.job`` itself), and the launcher serves on; stopped, it is gone."""
    from autograder.job_launcher import LauncherClient

    launcher = LauncherClient.start()
    try:
        assert launcher.run(tmp_path / "no-such-job", timeout=30) is None
        assert "FileNotFoundError" in launcher.refused and "no-such-job" in launcher.refused
        assert launcher.run(tmp_path / "no-such-job", timeout=30) is None and launcher.process.poll() is None
        assert launcher.jobs_started == 0
    finally:
        launcher.stop()
    assert launcher.process.poll() is not None and not launcher.path.exists()


def test_a_launcher_grades_a_job_as_a_local_run_does_and_kills_it_at_its_time_limit(tmp_path, monkeypatch):
    """A real job folder (a local run's, its scratch kept): forked by the worker's job launcher, the job
    writes the local run's result byte for byte; given a time limit it cannot meet, it is killed, and
    with it every process of its sandboxes."""
    import tempfile

    from autograder.grade import grade
    from autograder.grading_records import JobSpec
    from autograder.grading_settings import GradingSettings
    from autograder.job_launcher import LauncherClient
    from autograder.submission_processes import kill_marked_processes
    from tests.autograder_corpus import students as st

    submissions = tmp_path / "class"
    submissions.mkdir()
    good = st.perfect(REPO / "exercises" / st.ASSIGNMENT, REPO / "solutions" / st.ASSIGNMENT)
    st.write_zip(submissions, "DNN_HW2_Good_2001", {name: st.dumps(good[name]) for name in (st.NB1, st.NB2)})
    monkeypatch.setenv("AUTOGRADER_KEEP_SCRATCH", "1")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    grade(submissions, tmp_path / "out", replace(GradingSettings(), jobs=1), progress=False)
    (jobdir,) = [spec.parent for spec in tmp_path.glob("autograder-*/job*/job.json")]
    local = (jobdir / "result.json").read_bytes()
    token = JobSpec.from_json(json.loads((jobdir / "job.json").read_text())).token
    (jobdir / "result.json").unlink()
    launcher = LauncherClient.start()
    try:
        assert launcher.run(jobdir, timeout=600) == 0, launcher.refused  # the wait status of a job that ended well
        assert (jobdir / "result.json").read_bytes() == local
        (jobdir / "result.json").unlink()
        # a task's way: the job killed at its limit, then every process carrying its marker
        assert distributed._run_job(jobdir, 2, launcher) == (False, "grading did not finish within 2 s")
        assert kill_marked_processes(token) == 0
        assert not (jobdir / "result.json").exists() and launcher.jobs_started == 2
    finally:
        launcher.stop()
