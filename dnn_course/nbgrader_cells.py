"""What kind of nbgrader cell a notebook cell is, read from its ``metadata.nbgrader``.

Reads a cell (an ``nbformat`` node or a plain dict of a notebook's JSON); only
:func:`stderr_as_output` changes an executed notebook, in memory.
The grader (``autograder``) and the students' check (:mod:`dnn_course.check`) both ask these
questions, so they agree on which cells are graded tests.
"""

from __future__ import annotations

__all__ = ["nbgrader_metadata", "is_graded_test", "stderr_as_output"]


def nbgrader_metadata(cell) -> dict:
    """The cell's ``metadata.nbgrader`` (``{}`` when it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_graded_test(cell) -> bool:
    """Whether ``cell`` is an autograded test: a code cell with points (``grade``) and no answer region (``solution``)."""
    meta = nbgrader_metadata(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def stderr_as_output(notebook) -> None:
    """Relabel what graded test cells wrote to stderr as ordinary output, in place.

    nbgrader scores a test cell with any stderr as failed; this course decides
    a test by its outcome (an error, or the value it returns), so a correct
    answer that logs a warning keeps its points. The grader and the student's
    check both call it, so they agree.
    """
    for cell in notebook.cells:
        if is_graded_test(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
