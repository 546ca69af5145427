"""Re-grading: a run grades again only what is new or changed, and leaves every other row as it was.

The unit tests check what the grading key (:mod:`autograder.fingerprint`) depends on; the slow test
grades a small class, changes one submission and adds a late one, grades the folder again and checks
that only those two were graded and every other student's row, result file and feedback pages are
byte for byte the same (and were not even rewritten); ``force`` grades all of them again, alike.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from autograder import fingerprint
from autograder.grade import grade
from autograder.grading_settings import GradingSettings
from autograder.sandbox import ISOLATION_BWRAP
from tests.autograder_corpus import students as st

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "exercises" / st.ASSIGNMENT
SOURCE = REPO / "solutions" / st.ASSIGNMENT
SETTINGS = replace(GradingSettings(), cell_timeout=20, jobs=2)


def _course(root: Path, files: dict[str, bytes]) -> Path:
    """A course folder with one released notebook and the students' collected ``files`` (``{id: bytes}``)."""
    (root / "release" / st.ASSIGNMENT).mkdir(parents=True)
    (root / "release" / st.ASSIGNMENT / st.NB1).write_bytes(b"released")
    for sid, data in files.items():
        folder = root / "submitted" / sid / st.ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / st.NB1).write_bytes(data)
    return root


def _keys(
    course: Path, settings: GradingSettings = SETTINGS, records: dict | None = None, isolation: str = ISOLATION_BWRAP
) -> dict[str, str]:
    manifest = records or {sid.name: {"student_name": "A B", "flags": []} for sid in (course / "submitted").iterdir()}
    return fingerprint.submission_keys(course, settings, manifest, isolation)


def test_a_key_changes_with_the_submission_and_only_its_own(tmp_path):
    course = _course(tmp_path, {"2001": b"one", "2002": b"two"})
    before = _keys(course)
    (course / "submitted" / "2002" / st.ASSIGNMENT / st.NB1).write_bytes(b"two, fixed")
    after = _keys(course)
    assert after["2001"] == before["2001"] and after["2002"] != before["2002"]
    flagged = _keys(
        course,
        records={
            "2001": {"student_name": "A B", "flags": ["duplicate submission"]},
            "2002": {"student_name": "A B", "flags": []},
        },
    )
    assert flagged["2001"] != after["2001"]  # the collector's record is part of the submission


def test_a_key_changes_with_the_course_and_the_settings_that_grade_but_not_the_jobs(tmp_path):
    course = _course(tmp_path, {"2001": b"one"})
    key = _keys(course)["2001"]
    assert _keys(course, replace(SETTINGS, jobs=7, similarity_threshold=0.9))["2001"] == key
    assert _keys(course, replace(SETTINGS, cell_timeout=21))["2001"] != key
    assert _keys(course, replace(SETTINGS, experiment_profile="smoke"))["2001"] != key
    assert _keys(course, isolation="process")["2001"] != key
    (course / "release" / st.ASSIGNMENT / st.NB1).write_bytes(b"released, with a corrected test")
    assert _keys(course)["2001"] != key


def test_stale_and_record_keep_the_keys_of_the_last_good_grading(tmp_path):
    out = tmp_path / "out"
    (out / "course").mkdir(parents=True)
    (out / "results").mkdir()
    (out / "course" / "gradebook.db").write_bytes(b"")
    keys = {"2001": "a", "2002": "b", "2003": "c"}
    assert fingerprint.stale(out, keys) == ["2001", "2002", "2003"]  # never graded
    for sid in keys:
        (out / "results" / f"{sid}.json").write_text("{}")
    fingerprint.record(out, keys, graded={"2001", "2002", "2003"}, failed={"2003"})
    assert fingerprint.recorded(out) == {"2001": "a", "2002": "b"}  # a failed grading is done again
    assert fingerprint.stale(out, dict(keys, **{"2002": "b2", "2004": "d"})) == ["2002", "2003", "2004"]
    (out / "results" / "2001.json").unlink()
    assert fingerprint.stale(out, keys) == ["2001", "2003"]
    (out / "results" / "2001.json").write_text("{}")
    fingerprint.record(out, {"2001": "a", "2002": "b2"}, graded={"2001"}, failed=set())
    assert fingerprint.recorded(out) == {"2001": "a", "2002": "b"}  # 2002 not graded with b2 yet; 2003 is gone
    assert fingerprint.stale(out, {"2001": "a", "2002": "b2"}) == ["2002"]


def _snapshot(out: Path, sid: str) -> dict[str, tuple[bytes, int]]:
    """Bytes and modification time (ns) of a student's result file and feedback pages."""
    paths = [
        out / "results" / f"{sid}.json",
        out / "feedback" / f"{sid}.html",
        *sorted((out / "feedback" / sid).glob("*.html")),
    ]
    return {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}


def _rows(out: Path) -> dict[str, str]:
    """Each student's line of grades.csv, as written."""
    lines = (out / "grades.csv").read_text(encoding="utf-8").splitlines()
    header = next(csv.reader(io.StringIO(lines[0])))
    column = header.index("student_id")
    return {next(csv.reader(io.StringIO(line)))[column]: line for line in lines[1:]}


@pytest.mark.slow
@pytest.mark.usefixtures("bubblewrap")
def test_a_second_run_grades_only_the_changed_and_the_late_submission(tmp_path):
    submissions, out = tmp_path / "class", tmp_path / "out"
    submissions.mkdir()
    good = st.perfect(RELEASE, SOURCE)[st.NB1]
    wrong = st.replace_in_answer(good, "relu", "(self.out > 0)", "(self.out >= 0)")
    st.write_zip(submissions, "DNN_HW2_Good_2001", {st.NB1: st.dumps(good)})
    st.write_zip(submissions, "DNN_HW2_Wrong_2002", {st.NB1: st.dumps(wrong)})
    st.write_zip(submissions, "DNN_HW2_Blank_2003", {st.NB1: st.dumps(st.released(RELEASE)[st.NB1])})
    assert grade(submissions, out, SETTINGS, progress=False).graded == 3
    rows = _rows(out)
    kept = {sid: _snapshot(out, sid) for sid in ("2001", "2003")}
    assert [json.loads((out / "results" / f"{s}.json").read_text())["score"] for s in ("2001", "2002", "2003")] == [
        6,
        5,
        0,
    ]

    st.write_zip(submissions, "DNN_HW2_Wrong_2002", {st.NB1: st.dumps(good)})  # fixed and handed in again
    st.write_zip(submissions, "DNN_HW2_Late_2004", {st.NB1: st.dumps(wrong)})  # after the deadline
    summary = grade(submissions, out, SETTINGS, progress=False)
    assert summary.graded == 2 and summary.failed == []
    again = _rows(out)
    assert sorted(again) == ["2001", "2002", "2003", "2004"]
    assert {s: again[s] for s in ("2001", "2003")} == {s: rows[s] for s in ("2001", "2003")}
    assert again["2002"] != rows["2002"]
    assert [json.loads((out / "results" / f"{s}.json").read_text())["score"] for s in ("2002", "2004")] == [6, 5]
    assert {sid: _snapshot(out, sid) for sid in ("2001", "2003")} == kept  # not rewritten: same bytes, same time
    assert grade(submissions, out, SETTINGS, progress=False).graded == 0

    incremental = (out / "grades.csv").read_bytes()
    assert grade(submissions, out, SETTINGS, progress=False, force=True).graded == 4
    assert (out / "grades.csv").read_bytes() == incremental
