"""The one function that changes a score in an nbgrader gradebook.

Every change of a grade's points goes through :func:`change_score`: the job's measured
scores, the cross-check's and the integrity check's zeros, a notebook not graded, the merge
of a job's gradebook into the class's, and the instructor's hand-entered scores. The result
files never hold a score of their own: :mod:`autograder.job` builds each
:class:`autograder.grading_records.TestResult` from the gradebook after the last change, and
:func:`autograder.manual.refresh_results` rebuilds them from it after a hand-grading merge,
so ``grades.csv`` (the gradebook) and ``OUT/results/<id>.json`` always agree.

It reads and writes nothing but the ``grade`` object it is given (an ``nbgrader.api.Grade``);
the caller commits the gradebook's session.
"""

from __future__ import annotations

#: Leave the field as it is.
KEEP = object()


def change_score(grade, *, auto_score=KEEP, manual_score=KEEP, needs_manual_grade=KEEP, cap: bool = False) -> None:
    """Set the given fields of ``grade``; with ``cap``, an automatic score above the cell's points is cut to them.

    ``auto_score`` is the score the grader gave (None: none yet), ``manual_score`` the instructor's
    (None: none), ``needs_manual_grade`` whether the instructor still has to score the cell.
    nbgrader's ``grade.score`` is the manual score if there is one, else the automatic one.
    """
    if auto_score is not KEEP:
        grade.auto_score = min(auto_score, grade.max_score) if cap and auto_score is not None else auto_score
    if manual_score is not KEEP:
        grade.manual_score = manual_score
    if needs_manual_grade is not KEEP:
        grade.needs_manual_grade = needs_manual_grade
