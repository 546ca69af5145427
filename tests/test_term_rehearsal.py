"""A whole term, rehearsed: a cohort of complete students graded in one command, twice.

The cohort (:mod:`tests.rehearsal.cohort`) is made from the released
notebooks the way students make it: answers written into the answer cells,
notebooks 05 and 06 run in their smoke-test mode so that every result file,
saved model and figure comes from running them, folders zipped and named as
the LMS download names them. The grader grades the download with the
smoke-test profile; every student's total, per-notebook score, grades.csv row
and feedback page is asserted, a second run must give identical grades, and
the perfect student must score the same through plain nbgrader ``autograde``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from autograder.grade import grade
from autograder.grading_settings import GradingSettings
from dnn_course.assignment import profile_environment
from tests.rehearsal import cohort

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("bubblewrap")]
REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "exercises" / "dnn_hw"
SOURCE = REPO / "solutions" / "dnn_hw"
SETTINGS = replace(GradingSettings(), experiment_profile="smoke", jobs=2)


def read_rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def per_notebook(row: dict) -> dict[str, int]:
    return {key[:2]: round(float(value)) for key, value in row.items() if key.endswith(" total") and key[:2].isdigit()}


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    root = tmp_path_factory.mktemp("term")
    download = cohort.build_cohort(root, RELEASE, SOURCE)
    first = grade(download, root / "out1", SETTINGS, progress=False)
    second = grade(download, root / "out2", SETTINGS, progress=False)
    return root, download, first, second


def test_every_student_gets_exactly_the_points_their_work_earns(term):
    root, _, summary, _ = term
    rows = read_rows(root / "out1")
    assert sorted(rows) == sorted(cohort.EXPECTED)
    obtained = {sid: per_notebook(row) for sid, row in rows.items()}
    expected = {sid: points for sid, (points, _) in cohort.EXPECTED.items()}
    assert obtained == expected
    for sid, (points, flag) in cohort.EXPECTED.items():
        assert float(rows[sid]["total"]) == sum(points.values()), sid
        assert float(rows[sid]["max_total"]) == 50  # 40 automatic + 10 by hand
        assert float(rows[sid]["to_grade_by_hand"]) == 10, sid  # the two written answers, still pending
        assert flag in rows[sid]["flags"], (sid, rows[sid]["flags"])
    assert summary.failed == []


def test_no_complete_student_is_flagged_for_what_the_course_itself_does(term):
    root, *_ = term
    rows = read_rows(root / "out1")
    for sid in ("2001", "2002", "2003", "2004", "2005", "2006"):
        assert "integrity" not in rows[sid]["flags"], (sid, rows[sid]["flags"])
    for sid in ("2001", "2002", "2003"):
        assert rows[sid]["flags"] == "", (sid, rows[sid]["flags"])


def test_the_perfect_students_grades_csv_row_is_every_point(term):
    root, *_ = term
    row = read_rows(root / "out1")["2001"]
    graded = {k: v for k, v in row.items() if "/test_" in k}
    result = json.loads((root / "out1" / "results" / "2001.json").read_text())
    maxima = {f"{nb['name'][:-6]}/{t['id']}": t["max_score"] for nb in result["notebooks"] for t in nb["tests"]}
    assert graded == {k: f"{maxima[k]:g}" for k in graded}
    assert row["total"] == "40" and row["name"] == "Ada Lovelace"


def test_feedback_pages_say_what_was_measured_and_what_was_lost(term):
    root, *_ = term
    feedback = root / "out1" / "feedback"
    ada = (feedback / "2001.html").read_text()
    assert "Score: <b>40 / 50</b>" in ada and "2 answers still to be graded by hand" in ada
    assert "test accuracy measured on the saved weights" in ada  # 05 and 06, measured by the grader
    cruz = (feedback / "2004.html").read_text()
    assert "ReLU" in cruz and "test_relu_backward" in cruz and "test_ce_loss" in cruz
    dara = (feedback / "2005.html").read_text()
    assert "diverged" in dara
    eli = (feedback / "2006.html").read_text()
    assert "fashion_results.json: no such file" in eli
    fay = (feedback / "2007.html").read_text()
    assert "restored from the master" in fay
    for page in feedback.rglob("*.html"):
        text = page.read_text()
        assert "BEGIN HIDDEN TESTS" not in text and "AUTOGRADER-PROBE" not in text, page


def test_a_second_run_gives_identical_grades(term):
    root, *_ = term
    first, second = read_rows(root / "out1"), read_rows(root / "out2")
    assert first == second


def test_plain_nbgrader_gives_the_perfect_student_the_same_scores(term, tmp_path):
    """The pipeline adds safety, not different scores: nbgrader autograde alone agrees."""
    root, download, *_ = term
    course = tmp_path / "course"
    # the source notebooks only: results an instructor's own run of 05/06 left beside them (git ignores
    # them) would be released, and plain nbgrader would overwrite the student's results with them
    shutil.copytree(SOURCE, course / "source" / "dnn_hw", ignore=lambda folder, names: [
        name for name in names if not name.endswith(".ipynb")
    ])  # fmt: skip
    student = course / "submitted" / "2001" / "dnn_hw"
    student.mkdir(parents=True)
    with zipfile.ZipFile(download / "DNN_HW2_Ada_Lovelace_2001.zip") as zf:
        zf.extractall(student)
    # the course's configuration, pointed at this folder; cells get the grader's time limit
    (course / "nbgrader_config.py").write_text(
        f"exec(open({str(REPO / 'autograder' / 'nbgrader_config.py')!r}).read())\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.CourseDirectory.source_directory = 'source'\n"
        "c.CourseDirectory.release_directory = 'release'\n"
        f"c.Execute.timeout = {SETTINGS.cell_timeout}\n"
    )
    env = dict(os.environ, **profile_environment("smoke"), MPLBACKEND="Agg")
    for command in (
        ["generate_assignment", "dnn_hw", "--force"],
        ["autograde", "dnn_hw", "--force", "--student", "2001"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "nbgrader", *command, "--log-level=WARN"],
            cwd=course,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        plain = {nb.name[:2]: round(nb.score) for nb in gb.find_submission("dnn_hw", "2001").notebooks}
    row = read_rows(root / "out1")["2001"]
    assert plain == per_notebook(row) == cohort.FULL


def test_the_similarity_report_flags_the_copies_and_not_the_independent_students(term):
    """2002 and 2003 wrote their own code and answers: never flagged with 2001 or with each other, although
    their correct short answers and 05's seeded networks coincide. 2004-2008 were made from the reference
    answers (2001's), so each pair of them is a copy and is flagged; 2008's two attempts are one student,
    compared once (only the attempt that counts), never with itself."""
    root, *_ = term
    with open(root / "out1" / "similarity.csv", newline="", encoding="utf-8") as handle:
        rows = {(r["student_a"], r["student_b"]): r for r in csv.DictReader(handle)}
    ids = sorted(cohort.EXPECTED)
    assert sorted(rows) == [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]]
    copies = ["2001", "2004", "2005", "2006", "2007", "2008"]
    flagged = sorted(pair for pair, row in rows.items() if row["flagged"])
    assert flagged == [(a, b) for i, a in enumerate(copies) for b in copies[i + 1 :]]
    for pair in [("2001", "2002"), ("2001", "2003"), ("2002", "2003")]:
        assert float(rows[pair]["code_a"]) < 0.3 and float(rows[pair]["code_b"]) < 0.3, rows[pair]
        assert float(rows[pair]["written_answers"]) == 0, rows[pair]
    assert "code" in rows[("2001", "2008")]["reasons"] and "written answers" in rows[("2001", "2008")]["reasons"]
    report = (root / "out1" / "report.html").read_text()
    assert "href='similarity.html'" in report and "15 pair(s)" in report
