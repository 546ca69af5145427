"""The grading run: collect, grade every student in parallel, merge, report.

The output folder ``OUT`` is laid out as :class:`autograder.layout.OutputLayout` says (grades.csv,
report.html, feedback/, results/, course/, ...).

Each student is graded by :func:`autograder.job.run` in a forked process, in its own session with
its own temporary course folder and copy of the gradebook, up to
``settings.jobs`` at once; a job that outlives ``submission_timeout`` is
killed with its whole process group (and its sandbox). What crosses the fork is a
:class:`autograder.grading_records.JobSpec` (``JOBDIR/job.json``) one way and a
:class:`autograder.grading_records.StudentResult` (``JOBDIR/result.json``) the other. The main process then
merges each student's gradebook rows into a copy of the master gradebook,
sequentially, and replaces the master only at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from tqdm import tqdm

from dnn_course.assignment import ASSIGNMENT, Assignment
from dnn_course.atomic_write import write_atomically

from . import collect as collect_mod
from . import (
    fingerprint,
    forked_jobs,
    isolation_report,
    kernel_environment,
    manual,
    nbgrader_caches,
    report,
    sandbox,
    similarity_report,
)
from .feedback import Redactor, book_links, site_url, write_summary
from .grading_records import Isolation, JobSpec, StudentResult
from .grading_settings import GradingSettings, ensure_tools_on_path, nbgrader_config
from .layout import CourseLayout, JobLayout, OutputLayout
from .scores import change_score


@dataclass
class RunSummary:
    graded: int
    failed: list
    isolation: str
    seconds: float
    out: str
    flagged: dict = None  # student id -> its flags (submission-level and per notebook)
    similar: list = None  # "a & b: reasons" for each pair of submissions flagged as alike

    def flag_lines(self, width: int = 160) -> list[str]:
        """One line per flagged student, for the end of a run."""
        return [f"{sid}: {' | '.join(flags)}"[:width] for sid, flags in sorted((self.flagged or {}).items())]


def master_api(course: Path, settings: GradingSettings, db: Path) -> NbGraderAPI:
    config = nbgrader_config(course, settings, source_dir=settings.source_root)
    config.CourseDirectory.db_url = f"sqlite:///{db}"
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def prepare_master(course: Path, settings: GradingSettings, db: Path) -> list[str]:
    """Fill ``db`` with the assignment from the source notebooks; return notebook file names.

    nbgrader's generate_assignment stores every cell (hidden tests included)
    in the gradebook and writes the student version to ``course/release``.
    """
    api = master_api(course, settings, db)
    outcome = api.generate_assignment(settings.assignment, force=True, create=True)
    if not outcome["success"]:
        raise RuntimeError(
            "nbgrader generate_assignment failed on the source notebooks:\n"
            + outcome.get("error", "")
            + outcome.get("log", "")
        )
    release = CourseLayout(course).release_dir(settings.assignment)
    return sorted(p.name for p in release.glob("*.ipynb"))


def released_ids(course: Path, assignment: str, names: list[str]) -> dict[str, set[str]]:
    release = CourseLayout(course).release_dir(assignment)
    return {name: collect_mod.notebook_grade_ids(release / name) for name in names}


def run_jobs(
    jobs: dict[str, Path], make_job, parallel: int, timeout: float, progress: bool
) -> dict[str, tuple[bool, str]]:
    """Grade every job, ``parallel`` at a time, each in a forked process of its own session.

    ``make_job(student_id, slot)`` returns the job (:class:`JobSpec`). A job still
    running after ``timeout`` seconds is killed with its whole session.
    """
    pending = list(jobs)
    running: dict[int, tuple[str, float, int]] = {}
    free = list(range(parallel))[::-1]
    results: dict[str, tuple[bool, str]] = {}
    tqdm.monitor_interval = 0  # no monitor thread: this process forks (see autograder/__init__.py)
    bar = tqdm(total=len(pending), unit="student", desc="grading", disable=not progress)
    try:
        while pending or running:
            while pending and free:
                sid = pending.pop(0)
                slot = free.pop()
                JobLayout(jobs[sid]).spec.write_text(json.dumps(make_job(sid, slot).to_json()))
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    forked_jobs.child(jobs[sid])
                running[pid] = (sid, time.monotonic() + timeout, slot)
            pid, status = os.waitpid(-1, os.WNOHANG)
            finished = []
            if pid and pid in running:
                finished.append((pid, status))
            for other, (_, deadline, _) in list(running.items()):
                if other != pid and time.monotonic() > deadline:
                    finished.append((other, None))
            for done, status in finished:
                sid, _, slot = running.pop(done)
                if status is None:
                    os.killpg(done, signal.SIGKILL)
                    os.waitpid(done, 0)
                code = None if status is None else os.waitstatus_to_exitcode(status)
                ok, error = forked_jobs.finish(jobs[sid], code, timeout, session=done)
                results[sid] = (ok, error)
                free.append(slot)
                bar.update(1)
            if not finished:
                time.sleep(0.05)
    finally:
        for pid in running:  # interrupted: leave nothing behind
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        bar.close()
    return results


def merge_student(
    db: Path, job_db: Path | None, assignment: str, student_id: str, name: str, timestamp: str | None
) -> None:
    """Replace ``student_id``'s submission in ``db`` by the one in ``job_db`` (None: all zero)."""
    first, _, last = name.replace("_", " ").partition(" ")
    with Gradebook(f"sqlite:///{db}") as dst:
        dst.update_or_create_student(student_id, first_name=first or None, last_name=last or None)
        try:
            dst.remove_submission(assignment, student_id)
        except MissingEntry:
            pass
        kwargs = {"timestamp": timestamp} if timestamp else {}
        dst.add_submission(assignment, student_id, **kwargs)
        if job_db is None:  # not graded: tests score 0, written answers stay for the instructor
            sub = dst.find_submission(assignment, student_id)
            for nb in sub.notebooks:
                for grade in nb.grades:
                    manual = grade.cell.cell_type == "markdown"
                    change_score(grade, auto_score=None if manual else 0, needs_manual_grade=manual)
            dst.db.commit()
            return
        with Gradebook(f"sqlite:///{job_db}") as src:
            sub = src.find_submission(assignment, student_id)
            for nb in sub.notebooks:
                target = dst.find_submission_notebook(nb.name, assignment, student_id)
                target.flagged = nb.flagged
                grades = {g.name: g for g in target.grades}
                for grade in nb.grades:
                    change_score(
                        grades[grade.name],
                        auto_score=grade.auto_score,
                        manual_score=grade.manual_score,
                        needs_manual_grade=grade.needs_manual_grade,
                    )
                comments = {c.name: c for c in target.comments}
                for comment in nb.comments:
                    comments[comment.name].auto_comment = comment.auto_comment
        dst.db.commit()


def grade(
    submissions: Path,
    out: Path,
    settings: GradingSettings,
    only: list[str] | None = None,
    progress: bool = True,
    force: bool = False,
    scheduler: str | None = None,
    description: Assignment = ASSIGNMENT,
) -> RunSummary:
    """Grade the download folder ``submissions`` into ``out``; return a summary.

    Grades only the students whose grading key (:mod:`autograder.fingerprint`) changed since the
    last run in ``out``, all of them with ``force``, only ``only`` if given; the others' rows are
    kept. ``scheduler``: a Dask scheduler's address to grade on (:mod:`autograder.distributed`).
    ``description``: the assignment (its notebooks, tests, data files), whose notebooks the source
    folder must hold.
    """
    start = time.monotonic()
    ensure_tools_on_path()
    nbgrader_caches.install()
    submissions, out = submissions.resolve(), out.resolve()
    if not submissions.is_dir():
        raise FileNotFoundError(f"submissions folder not found: {submissions}")
    layout = OutputLayout(out)
    course = layout.course_dir
    for folder in layout.folders():
        folder.mkdir(parents=True, exist_ok=True)
    level, why = sandbox.detect_isolation(settings.isolation, kernel_environment.readonly_paths())
    isolation = Isolation(level, isolation_report.explain_isolation(level, why))
    master_db = layout.gradebook_db  # results of every run (merged)
    assignment_db = layout.assignment_db  # only the assignment, rebuilt each run
    work_db = layout.work_db  # the next gradebook.db, until the end
    for stale in (assignment_db, work_db):
        if stale.exists():
            stale.unlink()
    names = prepare_master(course, settings, assignment_db)
    unlisted, missing = sorted(set(names) - set(description.names)), sorted(set(description.names) - set(names))
    if unlisted or missing or description.name != settings.assignment:
        raise ValueError(
            f"the source notebooks of {settings.assignment} in {settings.source_root} do not match the "
            f"assignment's description ({description.name}): "
            + "; ".join(
                filter(
                    None,
                    [
                        unlisted and f"{', '.join(unlisted)} not listed (add to dnn_course/assignment.py)",
                        missing and f"{', '.join(missing)} missing from the source folder",
                    ],
                )
            )
        )
    names = list(description.names)
    redactor = Redactor.from_notebooks(
        Path(settings.source_root) / settings.assignment, layout.course.release_dir(settings.assignment)
    )
    shutil.copy(assignment_db, work_db)
    api = master_api(course, settings, assignment_db)
    manifest = collect_mod.collect(
        submissions,
        course,
        settings.assignment,
        settings.name_pattern,
        released_ids(course, settings.assignment, names),
        api,
    )
    students = sorted(manifest)
    keys = fingerprint.submission_keys(course, settings, manifest, isolation.level)
    if only:
        missing = sorted(set(only) - set(students))
        if missing:
            raise KeyError(f"not in the submissions folder: {', '.join(missing)}")
        students = sorted(only)
    elif not force:
        students = fingerprint.stale(out, keys)
    scratch = Path(tempfile.mkdtemp(prefix="autograder-"))
    os.chmod(scratch, 0o711)
    failed = []
    try:
        jobs = {}
        for index, sid in enumerate(students):
            jobdir = JobLayout.in_scratch(scratch, index).root
            jobdir.mkdir()
            os.chmod(jobdir, 0o711)
            jobs[sid] = jobdir

        def make_job(sid: str, slot: int) -> JobSpec:
            return JobSpec(
                student_id=sid,
                notebooks=tuple(names),
                timestamp=manifest[sid].get("timestamp"),
                token=secrets.token_hex(8),
                slot=slot,
                isolation=isolation,
                submitted_dir=str(layout.course.submitted_dir(sid, settings.assignment)),
                release_dir=str(layout.course.release_dir(settings.assignment)),
                master_db=str(assignment_db),
                source_dir=str(Path(settings.source_root) / settings.assignment),
                settings=settings,
                description=description,
            )

        if scheduler:
            from .distributed import run_jobs_on_cluster

            results = run_jobs_on_cluster(
                scheduler, jobs, make_job, settings.submission_timeout, progress, keys, course / "cluster", isolation
            )
        else:
            if students:  # the jobs are forked from here
                forked_jobs.warm_up_jobs(scratch, make_job(students[0], 0), course)
            results = run_jobs(jobs, make_job, settings.jobs, settings.submission_timeout, progress)
        previous = master_db if master_db.exists() else None
        for sid in sorted(manifest):  # merge sequentially, in a fixed order
            cand = manifest[sid]
            if sid not in results:  # not re-graded this time: keep the previous rows
                if previous is not None and layout.result_file(sid).exists():
                    merge_student(
                        work_db, previous, settings.assignment, sid, cand["student_name"], cand.get("timestamp")
                    )
                continue
            ok, error = results[sid]
            job_folders = JobLayout(jobs[sid])
            try:  # one student's broken job never stops the class
                if not ok:
                    raise RuntimeError(error)
                result = StudentResult.from_json(json.loads(job_folders.result.read_text()))
                result = replace(result, flags=tuple(cand["flags"]) + result.flags)
                merge_student(
                    work_db,
                    job_folders.course.gradebook_db,
                    settings.assignment,
                    sid,
                    cand["student_name"],
                    cand.get("timestamp"),
                )
            except Exception as problem:  # noqa: BLE001 - one student's failure is that student's row, never the class's
                failed.append(sid)
                message = error or f"the grader failed on this submission: {type(problem).__name__}: {problem}"
                result = StudentResult.not_graded(sid, names, message, cand["flags"])
                merge_student(work_db, None, settings.assignment, sid, cand["student_name"], cand.get("timestamp"))
            result = replace(result, name=cand["student_name"], source=cand["source"])
            result = StudentResult.from_json(redactor.data(result.to_json()))
            publish_feedback(out, sid, settings.assignment, jobs[sid], result, redactor)
            write_atomically(layout.result_file(sid), json.dumps(result.to_json(), indent=1, sort_keys=True))
    finally:
        forked_jobs.forget_warm_ups()  # they are in the scratch folder, removed now
        if not os.environ.get("AUTOGRADER_KEEP_SCRATCH"):
            shutil.rmtree(scratch, ignore_errors=True)
    for stale in layout.result_files():
        if stale.stem not in manifest:
            stale.unlink()
    if manual.apply_scores(out, work_db, settings.assignment):
        manual.refresh_results(out, work_db, settings.assignment)
    manual.write_manual_list(out, work_db, settings.assignment)
    try:  # evidence for the instructor, never a reason to lose the grades below
        pairs = similarity_report.write(
            out, course, settings.assignment, sorted(manifest), settings.similarity_threshold
        )
    except Exception:  # noqa: BLE001 - whatever the submissions held
        for stale in (layout.similarity_html, layout.similarity_csv):
            stale.unlink(missing_ok=True)
        print(
            "The similarity report could not be made (the grades are not affected):\n" + traceback.format_exc(limit=3),
            file=sys.stderr,
        )
        pairs = []
    report.write_all(out, work_db, settings, isolation, redactor)
    os.replace(work_db, master_db)
    fingerprint.record(out, keys, graded=set(students), failed=set(failed))
    flagged = {}
    for sid in students:
        path = layout.result_file(sid)
        if path.exists():
            flags = StudentResult.from_json(json.loads(path.read_text())).all_flags()
            if flags:
                flagged[sid] = flags
    similar = [f"{p.a} & {p.b}: {'; '.join(p.reasons)}" for p in pairs if p.flagged]
    return RunSummary(
        len(students), failed, isolation.explanation, time.monotonic() - start, str(out), flagged, similar
    )


def publish_feedback(
    out: Path, sid: str, assignment: str, jobdir: Path, result: StudentResult, redactor: Redactor | None = None
) -> None:
    """Copy nbgrader's per-notebook feedback (hidden test lines redacted) and write the summary page.

    ``result`` is already redacted by the caller (it is also the result file).
    """
    source = JobLayout(jobdir).course.feedback_dir(sid, assignment)
    target = OutputLayout(out).notebook_pages(sid)
    shutil.rmtree(target, ignore_errors=True)
    redactor = redactor if redactor is not None else Redactor([])
    if source.is_dir():
        target.mkdir(parents=True)
        site = site_url()  # the notebooks' Read-first links (../../book/*.md) open the published chapters
        for page in sorted(source.glob("*.html")):
            text = book_links(page.read_text(encoding="utf-8", errors="replace"), site)
            write_atomically(target / page.name, redactor.page(text, f"Feedback: {page.stem}"))
    write_summary(out, result)
