"""What kind of nbgrader cell a notebook cell is, read from its ``metadata.nbgrader``.

Reads a cell (an ``nbformat`` node or a plain dict of a notebook's JSON) and writes nothing.
The grader (``autograder``) and the students' check (:mod:`dnn_course.check`) both ask these
questions, so they agree on which cells are graded tests.
"""

from __future__ import annotations

__all__ = ["nbgrader_metadata", "is_graded_test"]


def nbgrader_metadata(cell) -> dict:
    """The cell's ``metadata.nbgrader`` (``{}`` when it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_graded_test(cell) -> bool:
    """Whether ``cell`` is an autograded test: a code cell with points (``grade``) and no answer region (``solution``)."""
    meta = nbgrader_metadata(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")
