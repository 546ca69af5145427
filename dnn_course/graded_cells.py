"""How the course reads a notebook's graded test cells: by their outcome, not their stream.

One rule shared by the student's check (:mod:`dnn_course.check`) and the grader
(:mod:`autograder.kernel`), so both score a notebook the same way. Reads and
writes the cells of an executed notebook in memory; no file.
"""
from __future__ import annotations


def stderr_as_output(notebook) -> None:
    """Relabel what graded test cells wrote to stderr as ordinary output, in place.

    nbgrader scores a test cell with any stderr as failed; this course decides
    a test by its outcome (an error, or the value it returns), so a correct
    answer that logs a warning keeps its points. The grader and the student's
    check both call it, so they agree.
    """
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
