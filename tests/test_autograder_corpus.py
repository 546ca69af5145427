"""End-to-end: the sample class of tests/autograder_corpus graded once, every row asserted.

The class (about 50 submissions, most with one notebook) is graded by one
``grade`` run, two at a time, with a 20 s cell time limit so the infinite
loops end quickly. Minutes, hence ``slow``.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder import manual, manual_merge
from autograder.grade import grade
from autograder.grading_settings import GradingSettings
from dnn_course import secret_lines
from dnn_course.nbgrader_regions import HIDDEN_TEST
from tests.autograder_corpus import students as st

# The expected grades assume the bubblewrap sandbox (what a submission can see;
# a fork bomb capped by its own process limit): every test here needs it.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("bubblewrap")]
REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "exercises" / st.ASSIGNMENT
SOURCE = REPO / "solutions" / st.ASSIGNMENT
SETTINGS = replace(GradingSettings(), cell_timeout=20, jobs=2)


def read_rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    submissions, out = root / "submissions", root / "out"
    st.build_class(submissions, RELEASE, SOURCE)
    summary = grade(submissions, out, SETTINGS, progress=False)
    return submissions, out, summary, read_rows(out)


def test_every_sample_submission_gets_its_grade(graded):
    _, _, summary, rows = graded
    assert sorted(rows) == sorted(st.EXPECTED)
    wrong = {}
    for sid, (total, flag) in st.EXPECTED.items():
        row = rows[sid]
        if row["total"] != total or (flag and flag not in row["flags"]):
            wrong[sid] = (row["total"], row["flags"][:300])
    assert wrong == {}
    assert summary.failed == []


def test_notebook_totals_add_up_and_match_the_gradebook(graded):
    _, out, _, rows = graded
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}") as gb:
        for sid, row in rows.items():
            parts = sum(float(v or 0) for k, v in row.items() if k.endswith(" total"))
            assert parts == pytest.approx(float(row["total"]))
            assert gb.find_submission(st.ASSIGNMENT, sid).score == pytest.approx(float(row["total"]))


def test_no_process_of_any_submission_survives(graded):
    leftovers = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"time.sleep(7777)" in cmdline:
                leftovers.append(entry.name)
    assert leftovers == []


def test_zip_slip_paths_wrote_nothing(graded):
    submissions, out, _, _ = graded
    for root in (submissions.parent, out, out / "course", out / "course" / "downloaded"):
        assert not list(root.glob("escaped.ipynb"))
    assert not Path("/tmp/absolute.ipynb").exists()


def _hidden_lines() -> list[str]:
    """The hidden test lines by the one line policy (what feedback redacts), as written."""
    return [line.text for line in secret_lines.secret_lines(SOURCE, RELEASE, kinds=(HIDDEN_TEST,))]


def test_feedback_shows_results_but_never_hidden_test_code(graded):
    _, out, _, _ = graded
    hidden = _hidden_lines()
    assert hidden, "the source notebooks have hidden tests"
    pages = sorted((out / "feedback").rglob("*.html"))
    assert len(pages) > 50
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))
        leaked = [line for line in hidden if line in text]
        assert leaked == [], page
    summary = (out / "feedback" / "1101.html").read_text(encoding="utf-8")
    assert "test_relu_backward" in summary and "failed" in summary and "passed" in summary


def test_no_page_loads_anything_from_the_network(graded):
    """Feedback pages typeset their math with the MathJax copied beside them; nothing comes from a CDN."""
    from tests.test_feedback_pages import NETWORK_LOAD

    _, out, _, _ = graded
    assert (out / "feedback" / "mathjax" / "tex-chtml-full.js").is_file()
    notebook_pages = sorted((out / "feedback").glob("*/*.html"))
    assert len(notebook_pages) > 50
    for page in [out / "report.html", *sorted((out / "feedback").glob("*.html")), *notebook_pages]:
        text = page.read_text(encoding="utf-8")
        assert not NETWORK_LOAD.search(text), (page, NETWORK_LOAD.search(text))
    scripts = {
        src
        for page in notebook_pages
        for src in re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", page.read_text(encoding="utf-8"))
    }
    assert scripts == {"../mathjax/tex-chtml-full.js"}


def test_class_report_names_the_isolation_and_has_the_plots(graded):
    _, out, summary, _ = graded
    page = (out / "report.html").read_text(encoding="utf-8")
    assert html.escape(summary.isolation) in page
    assert page.count("data:image/png;base64,") == 2
    assert "Most frequent failure messages" in page


def test_manual_scores_are_listed_validated_and_merged(graded, tmp_path):
    _, graded_out, _, rows = graded
    out = tmp_path / "out"  # merge into a copy: the other tests read the module's grading run
    shutil.copytree(graded_out, out)
    with open(out / "manual_cells.csv", newline="", encoding="utf-8") as handle:
        listed = list(csv.DictReader(handle))
    blank = [r for r in listed if r["student_id"] == "1003"]
    assert blank and all(r["score"] == "" for r in blank)
    first = blank[0]
    filled = out / "scores.csv"
    with open(filled, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, manual.FIELDS)
        writer.writeheader()
        writer.writerow({**first, "score": "1.5"})
    before = float(rows["1003"]["total"])
    page = out / "feedback" / "1003.html"
    pending = len(blank)  # the blank release: its written answers are left as released, scored 0 at once
    assert f"{pending} written answers left blank: 0 points" in page.read_text(encoding="utf-8")
    assert "still to be graded by hand" not in page.read_text(encoding="utf-8")  # as grades.csv: nothing pending
    assert rows["1003"]["to_grade_by_hand"] == "0"
    result_before = json.loads((out / "results" / "1003.json").read_text())
    assert manual_merge.merge(out, filled, st.ASSIGNMENT) == 1
    after = read_rows(out)
    assert float(after["1003"]["total"]) == before + 1.5
    assert after["1003"][f"{first['notebook']}/{first['cell']}"] == "1.5"
    # the student's result file and feedback page show the hand-graded points and the new total
    result = json.loads((out / "results" / "1003.json").read_text())
    assert result["score"] == pytest.approx(result_before["score"] + 1.5) == float(after["1003"]["total"])
    nb = next(n for n in result["notebooks"] if n["name"] == first["notebook"] + ".ipynb")
    nb_before = next(n for n in result_before["notebooks"] if n["name"] == nb["name"])
    assert nb["score"] == pytest.approx(nb_before["score"] + 1.5)
    test = next(t for t in nb["tests"] if t["id"] == first["cell"])
    assert (test["status"], test["score"]) == ("graded by hand", 1.5)
    text = page.read_text(encoding="utf-8")
    assert f"<b>{result['score']:g} / {result['max_score']:g}</b>" in text
    left = pending - 1
    assert f"including the answers graded by hand; {left} written answer{'s' if left != 1 else ''} left blank" in text
    assert {k: v for k, v in after.items() if k != "1003"} == {k: v for k, v in rows.items() if k != "1003"}
    # the class report is made again: 1003's row has the new total
    row = re.search(
        r"<tr><td><a href='feedback/1003.html'>1003</a></td>.*?</tr>", (out / "report.html").read_text(encoding="utf-8")
    ).group(0)
    assert f"<b>{after['1003']['total']}</b>" in row and after["1003"]["total"] != rows["1003"]["total"]
    with open(filled, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, manual.FIELDS)
        writer.writeheader()
        writer.writerow({**first, "score": str(float(first["max_score"]) + 1)})
    with pytest.raises(manual.ScoreError, match="outside"):
        manual_merge.merge(out, filled, st.ASSIGNMENT)
    assert read_rows(out) == after  # a refused file changes nothing


def test_grading_twice_is_identical_and_regrading_one_student_touches_only_that_row(tmp_path):
    submissions, out = tmp_path / "class", tmp_path / "out"
    submissions.mkdir()
    good = st.perfect(RELEASE, SOURCE)[st.NB1]
    wrong = st.replace_in_answer(good, "relu", "(self.out > 0)", "(self.out >= 0)")
    st.write_zip(submissions, "DNN_HW2_Good_2001", {st.NB1: st.dumps(good)})
    st.write_zip(submissions, "DNN_HW2_Wrong_2002", {st.NB1: st.dumps(wrong)})
    st.write_zip(submissions, "DNN_HW2_Blank_2003", {st.NB1: st.dumps(st.released(RELEASE)[st.NB1])})
    grade(submissions, out, SETTINGS, progress=False)
    first = (out / "grades.csv").read_bytes()
    grade(submissions, out, SETTINGS, progress=False)
    assert (out / "grades.csv").read_bytes() == first
    rows = read_rows(out)
    assert [rows[s]["total"] for s in ("2001", "2002", "2003")] == ["6", "5", "0"]
    # 2002 fixes the mistake and resubmits; only that student is graded again
    st.write_zip(submissions, "DNN_HW2_Wrong_2002", {st.NB1: st.dumps(good)})
    summary = grade(submissions, out, SETTINGS, only=["2002"], progress=False)
    assert summary.graded == 1
    again = read_rows(out)
    assert again["2002"]["total"] == "6"
    assert {k: v for k, v in again.items() if k != "2002"} == {k: v for k, v in rows.items() if k != "2002"}
