"""``python -m autograder manual-merge OUT --scores FILE``: the hand-entered scores into every output.

Reads the filled-in ``FILE`` (the columns of ``OUT/manual_cells.csv``), the scores kept from earlier
merges (``OUT/manual_scores.csv``) and the gradebook ``OUT/course/gradebook.db``; writes the scores to
the gradebook and to ``OUT/manual_scores.csv``, then rewrites ``OUT/manual_cells.csv``, each student's
``OUT/results/<id>.json`` and feedback summary page (:mod:`autograder.manual`), ``OUT/grades.csv`` and
``OUT/report.html`` (:mod:`autograder.report`). A command of its own because it runs both modules' steps
(the report reads the answers' statuses from :mod:`autograder.manual`).
"""

from __future__ import annotations

from pathlib import Path

from . import manual, report
from .layout import OutputLayout


def merge(out: Path, score_file: Path, assignment: str) -> int:
    """Add the filled-in scores of ``score_file``; rewrite every output that shows them. Returns how many were new.

    Raises :class:`autograder.manual.ScoreError` for a score file that names an unknown student or cell or
    a score outside 0..points (then nothing changes), ``FileNotFoundError`` when ``out`` was never graded.
    """
    layout = OutputLayout(out)
    db = layout.gradebook_db
    if not db.exists():
        raise FileNotFoundError(f"{db} not found: run `python -m autograder grade` first")
    new = manual.read_scores(score_file)
    stored = manual.read_scores(layout.manual_scores_csv) if layout.manual_scores_csv.exists() else {}
    merged = {**stored, **new}
    manual.write_to_gradebook(db, assignment, merged)
    manual.store(out, merged)
    manual.write_manual_list(out, db, assignment)
    manual.refresh_results(out, db, assignment)
    report.export_grades(out, db, assignment)
    report.rewrite_report(out, db)
    return len(new)
