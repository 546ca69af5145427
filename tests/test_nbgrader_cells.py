"""dnn_course.nbgrader_cells: the one predicate for a graded test, which the grader and the students' check share."""

from __future__ import annotations

from pathlib import Path

import nbformat

from dnn_course.assignment import ASSIGNMENT
from dnn_course.nbgrader_cells import is_graded_test, nbgrader_metadata

NOTEBOOKS = ASSIGNMENT.names

EXERCISES = Path(__file__).resolve().parent.parent / "exercises" / "dnn_hw"


def _cell(cell_type: str, **nbgrader):
    make = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
    return make("x = 1", metadata={"nbgrader": nbgrader} if nbgrader else {})


def test_only_a_code_cell_with_points_and_no_answer_region_is_a_graded_test():
    assert is_graded_test(_cell("code", grade=True, solution=False, grade_id="t", points=1))
    assert not is_graded_test(_cell("code", grade=True, solution=True, grade_id="a"))  # an autograded answer
    assert not is_graded_test(_cell("markdown", grade=True, solution=True, grade_id="w"))  # a written answer
    assert not is_graded_test(_cell("markdown", grade=True, solution=False, grade_id="m"))  # not code
    assert not is_graded_test(_cell("code", locked=True, grade_id="setup"))  # read-only setup
    assert not is_graded_test(_cell("code"))
    assert is_graded_test({"cell_type": "code", "metadata": {"nbgrader": {"grade": True}}})  # plain notebook JSON
    assert nbgrader_metadata({"cell_type": "code", "metadata": {}}) == {}


def test_every_released_notebook_has_graded_tests_and_their_ids_say_test():
    for name in NOTEBOOKS:
        notebook = nbformat.read(EXERCISES / name, as_version=4)
        ids = [nbgrader_metadata(cell)["grade_id"] for cell in notebook.cells if is_graded_test(cell)]
        assert ids, f"{name}: no graded test found"
        assert all("test" in grade_id for grade_id in ids), (name, ids)
