"""Grading one student, in a process of its own: ``python -m autograder.job JOBDIR``.

``JOBDIR/job.json`` says what to grade (:class:`autograder.grading_records.JobSpec`; the job
folder's layout is :class:`autograder.layout.JobLayout`). The job builds a private nbgrader
course folder (a copy of the master gradebook, the rebuilt notebooks), a
private working folder for the kernel (only the notebooks and validated data
files), runs nbgrader's autograde with the sandboxed kernel, checks the
integrity probes, zeroes a notebook that tampered, runs nbgrader's
generate_feedback, and writes ``JOBDIR/result.json`` last (atomically): no
result file means the job did not finish. Every score it changes goes through
:func:`autograder.scores.change_score`; the result (:class:`autograder.grading_records.StudentResult`)
is built from the gradebook after the last change.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from dnn_course import records
from dnn_course.assignment import ASSIGNMENT
from dnn_course.atomic_write import write_atomically
from dnn_course.datasets import load_dataset
from dnn_course.experiment_grades import Score, measure
from dnn_course.nbgrader_cells import is_graded_test, nbgrader_metadata
from dnn_course.notebook_import import import_notebooks

from . import (
    crosscheck,
    crosscheck_probes,
    kernel,
    kernel_environment,
    manual,
    nbgrader_caches,
    rebuild,
    tamper_probe,
    warm_kernels,
)
from .feedback import error_message
from .grading_records import JobSpec, NotebookResult, StudentResult, TestResult
from .grading_settings import ensure_tools_on_path, nbgrader_config
from .layout import JobLayout
from .memory_cap import MEMORY_CAP_FLAG, MemoryCap
from .scores import change_score

#: Errors of cells the kernel never really ran (not evidence of tampering).
NOT_RUN = {"CellTimeoutError", "NotebookTimeLimit", "KernelDied", "KernelChannelBroken", "MemoryCapReached"}
INCIDENTS = {
    "CellTimeoutError": "a cell hit the time limit",
    "NotebookTimeLimit": "the notebook hit its time limit",
    "KernelDied": "the kernel died (exit or memory limit) and was restarted",
    "KernelChannelBroken": "the kernel broke its channel to the grader and was restarted",
    "MemoryCapReached": MEMORY_CAP_FLAG + ": the submission's processes together held more than "
    "its total memory cap, were stopped, and the kernel was restarted",
    "MemoryError": "memory limit reached",
}


#: Nesting allowed in a submitted results JSON (run_plan writes 5 levels).
MAX_JSON_DEPTH = 16


def validate_data_file(path: Path, caps: dict[str, int] | None = None) -> str | None:
    """None if ``path`` is a sound data file, else why not.

    ``caps``: ``{data file: size cap in bytes}`` (default: the assignment's). Sizes are checked as
    declared before anything is decompressed (:func:`records.check_npz`: a member's uncompressed
    size, an array's shape times item size); a results JSON must be an object nested at most
    :data:`MAX_JSON_DEPTH` levels. Nothing here raises on any content.
    """
    caps = ASSIGNMENT.data_file_caps if caps is None else caps
    if path.stat().st_size > caps[path.name]:
        return f"{path.name} is larger than {caps[path.name]} bytes"
    try:
        raw = path.read_bytes()
        if path.suffix == ".json":
            value = json.loads(raw.decode("utf-8"))
            if not isinstance(value, dict) or not records._depth(value, MAX_JSON_DEPTH):
                return (
                    f"{path.name} is not a results file of this course (not an object of at most "
                    f"{MAX_JSON_DEPTH} levels)"
                )
        else:
            records.check_npz(raw, path.name)
            with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
                for key in archive.files:
                    archive[key]
    except RecursionError:
        return f"{path.name} is not a valid {path.suffix[1:]} file (nested too deeply)"
    except records.RecordError as error:  # what is wrong, without the file's name and the advice
        why = str(error).removeprefix(path.name).lstrip(": ").split(". ")[0]
        return f"{path.name} is not a valid {path.suffix[1:]} file ({why})"
    except Exception as error:  # noqa: BLE001 - untrusted bytes: any failure is this file's, never the job's
        return f"{path.name} is not a valid {path.suffix[1:]} file ({type(error).__name__})"
    return None


def prepare(job: JobSpec, jobdir: Path) -> tuple[list[str], dict[str, list[str]]]:
    """Rebuild notebooks into the course and working folders; return (flags, per-notebook flags)."""
    sid, assignment = job.student_id, job.assignment
    folders = JobLayout(jobdir)
    submitted = folders.course.submitted_dir(sid, assignment)
    work = folders.work_dir
    for folder in (submitted, work, folders.course.source_dir(assignment), folders.ipc_dir):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(job.master_db, folders.course.gradebook_db)
    if job.timestamp:
        (submitted / "timestamp.txt").write_text(job.timestamp)
    origin = Path(job.submitted_dir)
    flags: list[str] = []
    nb_flags: dict[str, list[str]] = {}
    for name in job.notebooks:
        master = nbformat.read(Path(job.release_dir) / name, as_version=4)
        nb_flags[name] = []
        path = origin / name
        if not path.exists():
            nb_flags[name].append("not submitted")
            continue
        try:
            student, read_flags = rebuild.read_submitted(path.read_bytes())
            rebuilt, rebuild_flags = rebuild.rebuild(student, master)
        except rebuild.UnreadableNotebook as error:
            nb_flags[name].append(f"unreadable: {error}")
            continue
        except Exception as error:  # noqa: BLE001 - a failure on one notebook is that notebook's flag
            nb_flags[name].append(f"unreadable: the grader could not read it ({type(error).__name__})")
            continue
        nb_flags[name] += read_flags + rebuild_flags
        nbformat.write(rebuilt, work / name)
        nbformat.write(rebuild.add_probes(rebuilt, job.token), submitted / name)
    validated = folders.validated_dir
    validated.mkdir(exist_ok=True)
    caps = job.description.data_file_caps
    for name in sorted(caps):
        path = origin / name
        if path.exists():
            problem = validate_data_file(path, caps)
            if problem:
                flags.append(problem + "; ignored")
            else:
                shutil.copy(path, work / name)
                shutil.copy(path, validated / name)  # what the grader measures: never a student's folder
    return flags, nb_flags


def _stdout(cell) -> str | None:
    """Printed text of a probe cell; None if the kernel never ran it."""
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if any(o.get("ename") in NOT_RUN for o in errors):
        return None
    if not cell.get("outputs") and cell.get("execution_count") is None:
        return None
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _tainted_tests(cells, position: int) -> list[str]:
    """Grade ids of the graded tests at or after the cell checked by the ``position``-th check cell."""
    tainted, seen, started, previous = [], -1, False, None
    for cell in cells:
        if cell.cell_type == "code" and tamper_probe.is_check(cell.source):
            seen += 1
            if seen == position:
                started = True
                if previous is not None and is_graded_test(previous):
                    tainted.append(nbgrader_metadata(previous)["grade_id"])
        elif started and is_graded_test(cell):
            tainted.append(nbgrader_metadata(cell)["grade_id"])
        if not (cell.cell_type == "code" and tamper_probe.is_probe(cell.source)):
            previous = cell
    return tainted


def inspect_autograded(job: JobSpec, jobdir: Path) -> dict[str, dict]:
    """Per notebook: tamper verdict, the cell that tampered, the tests it touched, incidents.

    Strips the probe cells from the autograded files.
    """
    folder = JobLayout(jobdir).course.autograded_dir(job.student_id, job.assignment)
    found = {}
    for name in job.notebooks:
        path = folder / name
        if not path.exists():
            continue
        nb = nbformat.read(path, as_version=4)
        checks = [
            (tamper_probe.check_label(c.source), _stdout(c))
            for c in nb.cells
            if c.cell_type == "code" and tamper_probe.is_check(c.source)
        ]
        tampering = tamper_probe.first_tampering(checks, job.token)
        incidents = []
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error" and output.get("ename") in INCIDENTS:
                    incidents.append(INCIDENTS[output["ename"]])
                if "[output truncated by the grader]" in str(output.get("text", "")):
                    incidents.append("output truncated")
        found[name] = {
            "clean": tampering is None,
            "reasons": tampering[2] if tampering else [],
            "cell": tampering[1] if tampering else None,
            "tainted": _tainted_tests(nb.cells, tampering[0]) if tampering else [],
            "incidents": sorted(set(incidents)),
        }
        nbformat.write(rebuild.remove_probes(nb), path)
    return found


def integrity_note(check: dict) -> str:
    """The flag a notebook gets when its integrity check failed (what, where, which tests it cost)."""
    reasons = "; ".join(check["reasons"])
    where = (
        "before any cell ran"
        if check["cell"] in (None, "end") and not check["tainted"]
        else f"after cell '{check['cell']}'"
    )
    cost = f"tests not counted: {', '.join(check['tainted'])}" if check["tainted"] else "no graded test ran after it"
    return f"integrity check failed {where} ({reasons}); {cost}"


@functools.cache
def measurement_data(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x_test, y_test)`` of the embedded ``dataset``, the images the grader measures saved networks on.

    Read once per grading process: a local run reads them before it forks its jobs, which share them
    (a submission no longer pays for decompressing and checking 20,000 images per measured dataset).
    The arrays are read-only, so no measurement can change them for the next.
    """
    (_, _), (x_test, y_test) = load_dataset(dataset, verbose=False)
    x_test.flags.writeable = y_test.flags.writeable = False
    return x_test, y_test


def warm_measurement_data(description) -> None:
    """Read the test images of every dataset ``description`` (:class:`dnn_course.assignment.Assignment`) measures on."""
    for _, test in description.measured():
        measurement_data(test.measurement.dataset)


def measure_experiments(job: JobSpec, jobdir: Path, nb_flags: dict) -> dict[tuple[str, str], object]:
    """``{(notebook, grade id): Score}`` measured here, outside every student process.

    Reads the data files as submitted that passed :func:`validate_data_file` (copied by
    :func:`prepare` into a folder of the job no student process can write), runs the saved
    weights through the course's own forward pass and applies the profile's thresholds. A
    failure while measuring one test scores that test 0 with a flag on its notebook. Which tests
    are measured, and how, the assignment's description says (``Scoring.MEASURED``).
    """
    scores = {}
    profile = job.settings.experiment_profile
    for measured_notebook, test in job.description.measured():
        notebook, grade_id = measured_notebook.name, test.grade_id
        if notebook not in job.notebooks or "not submitted" in nb_flags.get(notebook, []):
            continue
        x_test, y_test = measurement_data(test.measurement.dataset)
        try:
            scores[(notebook, grade_id)] = measure(test, JobLayout(jobdir).validated_dir, x_test, y_test, profile)
            # what the measurement found wrong with the files (e.g. 'claim not reached: ...'): the class report's flags
            nb_flags.setdefault(notebook, []).extend(
                f"{grade_id}: {flag}" for flag in scores[(notebook, grade_id)].flags
            )
        except Exception as error:  # noqa: BLE001 - the submitted files' fault costs this test only
            why = f"the grader could not measure the submitted files ({type(error).__name__})"
            scores[(notebook, grade_id)] = Score(0, test.points, [why])
            nb_flags.setdefault(notebook, []).append(f"{grade_id}: {why}; 0 points")
    return scores


def set_measured_scores(db_url: str, job: JobSpec, scores: dict) -> None:
    """Write the grader's own measurements into the gradebook (they replace the cell's output)."""
    for notebook, grade_id in scores:
        set_auto_scores(db_url, job, notebook[: -len(".ipynb")], {grade_id: float(scores[(notebook, grade_id)].points)})


def apply_crosscheck(db_url: str, job: JobSpec, problems: dict) -> dict[str, dict[str, str]]:
    """Zero every test the notebook passed but the grader's own check does not; ``{notebook: {id: why}}``."""
    applied: dict[str, dict[str, str]] = {}
    for notebook in sorted({n for n, _ in problems}):
        ids = [gid for n, gid in problems if n == notebook]
        for gid in zero_tests(db_url, job, notebook[: -len(".ipynb")], ids, only_passed=True):
            applied.setdefault(notebook, {})[gid] = problems[(notebook, gid)]
    return applied


def zero_tests(db_url: str, job: JobSpec, notebook: str, grade_ids: list[str], only_passed: bool = False) -> list[str]:
    """Score 0 for the automatic tests ``grade_ids`` (only those with full marks if ``only_passed``)."""
    return set_auto_scores(db_url, job, notebook, dict.fromkeys(grade_ids, 0.0), only_passed)


def set_auto_scores(
    db_url: str, job: JobSpec, notebook: str, scores: dict[str, float], only_passed: bool = False
) -> list[str]:
    """Set the automatic score of the tests ``scores`` names (capped at their maximum); return their ids.

    ``only_passed``: only tests that have full marks now. Answers graded by hand are left as they are.
    """
    changed = []
    with Gradebook(db_url) as gb:
        try:
            sub = gb.find_submission_notebook(notebook, job.assignment, job.student_id)
        except MissingEntry:
            return changed
        for grade in sub.grades:
            if grade.name in scores and (not only_passed or (grade.auto_score or 0) >= grade.max_score > 0):
                change_score(grade, auto_score=scores[grade.name], cap=True)
                changed.append(grade.name)
        gb.db.commit()
    return changed


def zero_notebook(db_url: str, job: JobSpec, notebook: str, reason: str) -> None:
    """Every automatic test of ``notebook`` scores 0; its written answers stay pending for the instructor."""
    with Gradebook(db_url) as gb:
        try:
            sub = gb.find_submission_notebook(notebook, job.assignment, job.student_id)
        except MissingEntry:
            return
        for grade in sub.grades:
            if grade.cell.cell_type == "markdown" or grade.auto_score is None:
                change_score(grade, needs_manual_grade=True)
                continue
            change_score(grade, auto_score=0, manual_score=None)
        for comment in sub.comments:
            comment.auto_comment = f"Not graded: {reason}"
        gb.db.commit()


def _cell_texts(cells) -> tuple[dict[str, str], dict[str, str]]:
    """``({grade id: last error message or ""}, {grade id: written answer})`` of an autograded notebook's cells."""
    messages, answers = {}, {}
    for cell in cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid and cell.metadata.get("nbgrader", {}).get("solution"):
            answers[gid] = cell.source[:4000]
        errors = [error_message(o) for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if gid:
            messages[gid] = errors[-1] if errors else ""
    return messages, answers


def test_results(
    job: JobSpec,
    jobdir: Path,
    db_url: str,
    checks: dict,
    nb_flags: dict,
    measured: dict | None = None,
    disagreements: dict | None = None,
) -> list[NotebookResult]:
    """Every graded cell's result and message, in notebook order, from the gradebook after its last change.

    A test's status and message are, in turn: the gradebook's verdict and the cell's error; the
    grader's measurement (``measured``); the cross-check's disagreement; the integrity check's verdict.
    """
    folder = JobLayout(jobdir).course.autograded_dir(job.student_id, job.assignment)
    notebooks = []
    with Gradebook(db_url) as gb:
        for name in job.notebooks:
            nb_id = name[: -len(".ipynb")]
            sub = gb.find_submission_notebook(nb_id, job.assignment, job.student_id)
            grades = {g.name: g for g in sub.grades}
            path = folder / name
            cells = nbformat.read(path, as_version=4).cells if path.exists() else []
            order = [c.metadata.get("nbgrader", {}).get("grade_id") for c in cells]
            messages, answers = _cell_texts(cells)
            check = checks.get(name, {})
            disagree = (disagreements or {}).get(name, {})
            tests = []
            master_order = [
                g.cell.name
                for g in sorted(
                    sub.grades, key=lambda g: (order.index(g.name) if g.name in order else len(order), g.name)
                )
            ]
            for gid in master_order:
                g = grades[gid]
                if g.needs_manual_grade or g.cell.cell_type == "markdown":
                    status = manual.answer_status(g)
                else:
                    status = "passed" if (g.auto_score or 0) >= g.max_score else "failed"
                answer = answers.get(gid, "") if status in manual.ANSWER_STATUSES else None
                message = messages.get(gid, "")
                if status == "failed" and not message:
                    message = "not run (notebook missing or unreadable)" if not path.exists() else "no output"
                if (name, gid) in (measured or {}):
                    message = "Measured by the grader: " + measured[(name, gid)].text().replace("\n", "; ")
                    if 0 < (g.auto_score or 0) < g.max_score:
                        status = "partial credit"
                if disagree.get(gid):
                    status = "failed"
                    message = (
                        "Not counted: the notebook's test passed, but the grader's own check of the "
                        f"same code, run apart from the notebook, does not agree: {disagree[gid]}."
                    )
                if check and not check["clean"] and gid in check["tainted"]:
                    status = "failed"
                    message = (
                        f"Not counted: the integrity check after cell '{check['cell']}' "
                        f"failed ({'; '.join(check['reasons'])}). "
                        + (f"Its own result was: {message}" if message else "")
                    ).strip()
                tests.append(
                    TestResult(
                        id=gid, status=status, score=g.score, max_score=g.max_score, message=message, answer=answer
                    )
                )
            flags = list(nb_flags.get(name, []))
            if disagree:
                flags.append(
                    "the grader's own check disagrees with the notebook's tests "
                    f"({', '.join(sorted(disagree))}): not counted"
                )
            if check and not check["clean"]:
                flags.append(integrity_note(check))
            flags += check.get("incidents", [])
            notebooks.append(
                NotebookResult(
                    name=name, score=sub.score, max_score=sub.max_score, flags=tuple(flags), tests=tuple(tests)
                )
            )
    return notebooks


def run(jobdir: Path) -> StudentResult:
    """Grade the job of ``jobdir`` (:class:`JobSpec` in ``job.json``); write and return its result."""
    ensure_tools_on_path()
    nbgrader_caches.install()
    folders = JobLayout(jobdir)
    job = JobSpec.from_json(json.loads(folders.spec.read_text()))
    settings = job.settings
    clock = time.perf_counter()
    timings = {}
    flags, nb_flags = prepare(job, jobdir)
    timings["prepare"] = time.perf_counter() - clock
    course = folders.course.root
    spec = kernel_environment.grading_spec(
        job.isolation.level, str(folders.work_dir), str(folders.ipc_dir), job.token, settings, job.slot
    )
    kernel.configure(spec)
    config = nbgrader_config(course, settings)
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    db_url = config.CourseDirectory.db_url
    submitted = folders.course.submitted_dir(job.student_id, job.assignment)
    found: list = [{}, {}, {}]
    # every process of the submission, kernels and the check alike
    cap = MemoryCap(spec.marker, settings.limits.total_memory_mb, settings.limits.max_processes).start()
    try:
        _grade_submitted(job, jobdir, api, db_url, spec, submitted, flags, nb_flags, timings, clock, found)
    finally:
        cap.stop()
    checks, measured, disagreements = found
    if cap.reached > cap.charged:  # stopped outside a notebook's cell (the grader's own check)
        flags.append(
            f"{MEMORY_CAP_FLAG} while the grader's own check ran: its processes together held "
            f"more than {settings.limits.total_memory_mb} MB and were stopped"
        )
    timings["memory_peak_mb"] = cap.peak_bytes / 2**20
    notebooks = test_results(job, jobdir, db_url, checks, nb_flags, measured, disagreements)
    with Gradebook(db_url) as gb:
        sub = gb.find_submission(job.assignment, job.student_id)
        score, max_score = sub.score, sub.max_score
    result = StudentResult(
        student_id=job.student_id,
        score=score,
        max_score=max_score,
        flags=tuple(flags),
        notebooks=tuple(notebooks),
        isolation=job.isolation.level,
    )
    timings["total"] = time.perf_counter() - clock
    folders.timings.write_text(json.dumps({k: round(v, 2) for k, v in timings.items()}))
    write_atomically(folders.result, json.dumps(result.to_json(), indent=1, sort_keys=True))
    return result


def _grade_submitted(job, jobdir, api, db_url, spec, submitted, flags, nb_flags, timings, clock, found) -> None:
    """Autograde, measure, cross-check and write the feedback (all the submission's processes run here)."""
    checks, measured, disagreements = found
    if any(submitted.glob("*.ipynb")):
        try:
            outcome = api.autograde(job.assignment, job.student_id, force=True, create=True)
        finally:
            warm_kernels.stop()  # the notebooks' fork server, before the grader's own check starts
        if not outcome["success"]:
            raise RuntimeError(
                "nbgrader autograde failed:\n" + outcome.get("error", "")[-3000:] + outcome.get("log", "")[-3000:]
            )
        timings["autograde"] = time.perf_counter() - clock - sum(timings.values())
        checks = inspect_autograded(job, jobdir)
        measured = measure_experiments(job, jobdir, nb_flags)
        set_measured_scores(db_url, job, measured)
        course = job.description
        components = [n for n in crosscheck_probes.groups(course) if (JobLayout(jobdir).work_dir / n).exists()]
        reference = import_notebooks(*(str(Path(job.source_dir) / n) for n in course.reference_notebooks))
        try:
            problems = crosscheck.crosscheck(spec, reference, components, int(job.token[:8], 16))
        except Exception as error:  # noqa: BLE001 - unverified: the passed component tests do not count
            why = f"the grader's own check failed ({type(error).__name__})"
            problems = {(n, gid): why for n in components for gid, _ in crosscheck_probes.components(None, n, course)}
        disagreements = apply_crosscheck(db_url, job, problems)
        for name, check in checks.items():
            if not check["clean"]:
                zero_tests(db_url, job, name[: -len(".ipynb")], check["tainted"])
        feedback = api.generate_feedback(job.assignment, job.student_id, force=True)
        if not feedback["success"]:
            flags.append("feedback could not be generated")
        timings["feedback"] = time.perf_counter() - clock - sum(timings.values())
    else:  # nothing readable: nbgrader has nothing to run, every test scores 0
        with Gradebook(db_url) as gb:
            gb.update_or_create_student(job.student_id)
            gb.add_submission(job.assignment, job.student_id)
        for name in job.notebooks:
            zero_notebook(db_url, job, name[: -len(".ipynb")], "no readable notebook was submitted")
    found[:] = [checks, measured, disagreements]


if __name__ == "__main__":
    run(Path(sys.argv[1]))
