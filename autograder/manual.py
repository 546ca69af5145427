"""Answers graded by hand: list them, take the instructor's scores, write them to the gradebook.

``OUT/manual_cells.csv`` lists every manually graded cell of every student
(student, notebook, cell, points, the student's answer, and a ``score``
column). The instructor fills in ``score`` (in a spreadsheet or an editor)
and runs ``python -m autograder manual-merge OUT --scores FILE``. The scores
are checked (known student and cell, 0 <= score <= points), kept in
``OUT/manual_scores.csv`` (so a later re-grade keeps them), written to the
gradebook as nbgrader manual scores, and ``grades.csv``,
``manual_cells.csv``, each student's ``results/<id>.json`` and feedback
summary page, and the class report (with the settings of the last ``grade``
run, kept in ``OUT/course/report_settings.json``) are rewritten
(:func:`autograder.manual_merge.merge`, which runs these steps and then the report's).
"""

from __future__ import annotations

import collections
import csv
import io
import json
from dataclasses import replace
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from dnn_course.atomic_write import write_atomically

from .grading_records import StudentResult
from .layout import OutputLayout
from .scores import change_score

FIELDS = ["student_id", "notebook", "cell", "max_score", "score", "answer"]


class ScoreError(ValueError):
    """A row of the instructor's score file cannot be used."""


def _results(out: Path):
    """``[(path, result)]`` of every ``OUT/results/<id>.json``."""
    return [
        (path, StudentResult.from_json(json.loads(path.read_text(encoding="utf-8"))))
        for path in OutputLayout(out).result_files()
    ]


def _answers(out: Path) -> dict[tuple[str, str, str], str]:
    answers = {}
    for _, result in _results(out):
        for nb, test in result.tests():
            if test.answer is not None:
                answers[(result.student_id, nb.stem, test.id)] = test.answer
    return answers


def manual_cells(db: Path, assignment: str) -> list[dict]:
    """Every manually graded cell of every submission, sorted."""
    rows = []
    with Gradebook(f"sqlite:///{db}") as gb:
        for sub in gb.find_assignment(assignment).submissions:
            for nb in sub.notebooks:
                for grade in nb.grades:
                    if grade.cell.cell_type == "markdown" or grade.needs_manual_grade or grade.manual_score is not None:
                        rows.append(
                            {
                                "student_id": sub.student.id,
                                "notebook": nb.name,
                                "cell": grade.name,
                                "max_score": grade.max_score,
                                "score": grade.manual_score,
                                "state": answer_status(grade),
                            }
                        )
    return sorted(rows, key=lambda r: (r["student_id"], r["notebook"], r["cell"]))


#: Status of a written answer in the result files and on the feedback pages.
PENDING, SCORED, BLANK = "manual", "graded by hand", "not answered"
ANSWER_STATUSES = (PENDING, SCORED, BLANK)


def answer_status(grade) -> str:
    """A written answer's status from its gradebook grade: scored by the instructor, still to
    score, or left as released (nbgrader scored it 0 at once and does not ask for a hand grade)."""
    if grade.manual_score is not None:
        return SCORED
    if grade.needs_manual_grade or grade.auto_score is None:
        return PENDING
    return BLANK


def describe(rows: list[dict]) -> str:
    """What ``manual-list`` says about the rows of :func:`manual_cells`, each answer counted once."""
    states = collections.Counter(row["state"] for row in rows)
    students = len({row["student_id"] for row in rows})
    text = (
        f"{len(rows)} written answer{'s' if len(rows) != 1 else ''} of {students} "
        f"student{'s' if students != 1 else ''} to grade by hand: {states[SCORED]} scored, "
        f"{states[PENDING]} still to score"
    )
    if states[BLANK]:
        text += f", {states[BLANK]} left blank (scored 0; enter a score to change that)"
    return text


def _number(value) -> str:
    if value is None:
        return ""
    return f"{float(value):g}"


def write_manual_list(out: Path, db: Path, assignment: str) -> Path:
    answers = _answers(out)
    text = io.StringIO()
    writer = csv.DictWriter(text, FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in manual_cells(db, assignment):
        writer.writerow(
            {
                "student_id": row["student_id"],
                "notebook": row["notebook"],
                "cell": row["cell"],
                "max_score": _number(row["max_score"]),
                "score": _number(row["score"]),
                "answer": answers.get((row["student_id"], row["notebook"], row["cell"]), ""),
            }
        )
    return write_atomically(OutputLayout(out).manual_cells_csv, text.getvalue())


def read_scores(path: Path) -> dict[tuple[str, str, str], float]:
    """``{(student, notebook, cell): score}`` from a filled-in list (blank scores skipped)."""
    scores = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"student_id", "notebook", "cell", "score"} - set(reader.fieldnames or [])
        if missing:
            raise ScoreError(
                f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                "start from manual_cells.csv written by the grade command"
            )
        for line, row in enumerate(reader, start=2):
            text = (row.get("score") or "").strip()
            if not text:
                continue
            try:
                value = float(text.replace(",", "."))
            except ValueError:
                raise ScoreError(f"{path}, line {line}: score {text!r} is not a number") from None
            notebook = row["notebook"].removesuffix(".ipynb")
            scores[(row["student_id"].strip(), notebook.strip(), row["cell"].strip())] = value
    return scores


def store(out: Path, scores: dict[tuple[str, str, str], float]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["student_id", "notebook", "cell", "score"])
    for key in sorted(scores):
        writer.writerow([*key, _number(scores[key])])
    write_atomically(OutputLayout(out).manual_scores_csv, text.getvalue())


def write_to_gradebook(db: Path, assignment: str, scores: dict[tuple[str, str, str], float]) -> None:
    """Validate every score against the gradebook, then write them all (or none)."""
    with Gradebook(f"sqlite:///{db}") as gb:
        grades = []
        for (student, notebook, cell), value in sorted(scores.items()):
            try:
                grade = gb.find_grade(cell, notebook, assignment, student)
            except MissingEntry:
                raise ScoreError(f"no cell {cell!r} in notebook {notebook!r} for student {student!r}") from None
            if not 0 <= value <= grade.max_score:
                raise ScoreError(f"{student} {notebook}/{cell}: score {value:g} outside 0..{grade.max_score:g}")
            grades.append((grade, value))
        for grade, value in grades:
            change_score(grade, manual_score=value, needs_manual_grade=False)
        gb.db.commit()


def refresh_results(out: Path, db: Path, assignment: str) -> int:
    """Bring every student's result file and feedback summary page up to date with the gradebook.

    The hand-graded cells get their scores and their status (:func:`answer_status`); the notebooks' and the total scores
    are the gradebook's, as in ``grades.csv``. Returns how many students
    were rewritten.
    """
    from .feedback import write_summary

    changed = 0
    with Gradebook(f"sqlite:///{db}") as gb:
        for path, result in _results(out):
            sid = result.student_id
            try:
                submission = gb.find_submission(assignment, sid)
            except MissingEntry:
                continue
            notebooks = []
            for nb in result.notebooks:
                try:
                    notebook = gb.find_submission_notebook(nb.stem, assignment, sid)
                except MissingEntry:  # not in the gradebook: nothing to bring up to date
                    notebooks.append(nb)
                    continue
                grades = {grade.name: grade for grade in notebook.grades}
                tests = tuple(
                    replace(test, score=grades[test.id].score, status=answer_status(grades[test.id]))
                    if test.id in grades and test.status in ANSWER_STATUSES
                    else test
                    for test in nb.tests
                )
                notebooks.append(replace(nb, tests=tests, score=notebook.score))
            updated = replace(result, notebooks=tuple(notebooks), score=submission.score)
            text = json.dumps(updated.to_json(), indent=1, sort_keys=True)
            if text == json.dumps(result.to_json(), indent=1, sort_keys=True):
                continue
            write_atomically(path, text)
            write_summary(out, updated)
            changed += 1
    return changed


def apply_scores(out: Path, db: Path, assignment: str) -> int:
    """Re-apply the stored scores (after a re-grade); returns how many were applied."""
    path = OutputLayout(out).manual_scores_csv
    if not path.exists():
        return 0
    scores = read_scores(path)
    with Gradebook(f"sqlite:///{db}") as gb:
        known = {s.student.id for s in gb.find_assignment(assignment).submissions}
    scores = {k: v for k, v in scores.items() if k[0] in known}
    write_to_gradebook(db, assignment, scores)
    return len(scores)
