"""The assignment's one description (dnn_course/assignment.py): true to the notebooks, read by every part.

The pure checks compare the description with the solution notebooks' nbgrader metadata, the released
exercises and the modules that used to spell its facts. The last test builds a course with a seventh
notebook (one edit to the description plus the notebook) and runs the students' check and a full
grading run of it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from dnn_course import check, experiment_grades
from dnn_course.assignment import (
    ASSIGNMENT,
    Assignment,
    GradedTest,
    Measurement,
    Notebook,
    Scoring,
    WrittenAnswer,
    profile_environment,
)

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions" / ASSIGNMENT.name
EXERCISES = REPO / "exercises" / ASSIGNMENT.name
IMPORTS = re.compile(r"import_notebooks\(([^)]*)\)")


def _graded_cells(path: Path) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """``(tests, written answers)`` of a notebook: ``[(grade_id, points)]`` of its graded cells, in order."""
    tests, written = [], []
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade"):
            continue
        found = written if meta.get("solution") else tests
        found.append((meta["grade_id"], float(meta["points"])))
    return tests, written


def _imported(path: Path) -> tuple[str, ...]:
    """The notebooks a notebook's cells import with ``import_notebooks(...)``, in order, each once."""
    names = []
    for cell in nbformat.read(path, as_version=4).cells:
        for call in IMPORTS.findall(cell.source if cell.cell_type == "code" else ""):
            names += [name for name in re.findall(r'"([^"]+\.ipynb)"', call) if name not in names]
    return tuple(names)


@pytest.mark.parametrize("folder", [SOLUTIONS, EXERCISES], ids=["solutions", "exercises"])
def test_the_description_is_the_notebooks_metadata(folder):
    """Every graded cell's grade id and points, the notebooks' order, and which earlier ones each imports."""
    assert tuple(sorted(p.name for p in folder.glob("*.ipynb"))) == ASSIGNMENT.names  # the order is the names'
    for notebook in ASSIGNMENT.notebooks:
        tests, written = _graded_cells(folder / notebook.name)
        assert tests == [(test.grade_id, test.points) for test in notebook.tests], notebook.name
        assert written == [(answer.grade_id, answer.points) for answer in notebook.written], notebook.name
        assert _imported(folder / notebook.name) == notebook.imports, notebook.name
    assert ASSIGNMENT.max_points == 50


def test_the_students_config_in_the_exercises_is_written_from_the_description():
    assert (EXERCISES / "nbgrader_config.py").read_text(encoding="utf-8") == check.student_config()


def test_the_scoring_of_each_test_has_its_implementation():
    """Cross-checked tests have a probe (and only they do); measured tests a scoring function with their points."""
    from autograder import crosscheck_probes

    cross_checked = [t.grade_id for nb in ASSIGNMENT.notebooks for t in nb.tests_scored(Scoring.CROSS_CHECKED)]
    assert sorted(crosscheck_probes.PROBES) == sorted(cross_checked)
    assert [name for name, _ in crosscheck_probes.components(None, "04_model_l2.ipynb")] == [
        "test_l2_loss",
        "test_model_gradient_check",
        "test_model_learns",
    ]
    assert crosscheck_probes.GROUPS["04_model_l2.ipynb"] == ASSIGNMENT.notebook("04_model_l2.ipynb").group
    assert set(crosscheck_probes.GROUPS) == set(ASSIGNMENT.reference_notebooks) == set(ASSIGNMENT.names[:4])
    measured = {test.grade_id: test for _, test in ASSIGNMENT.measured()}
    assert sorted(measured) == ["test_fashion_model_accuracy", "test_mnist_accuracies"]
    for profile in ASSIGNMENT.profiles.names:  # one point per threshold, under each profile
        assert len(experiment_grades.FASHION_THRESHOLDS[profile]) == measured["test_fashion_model_accuracy"].points
    empty = Path(__file__).parent / "no such folder"
    for test in measured.values():  # nothing to measure: 0 of the test's points, from the description
        score = experiment_grades.measure(test, empty, None, None)
        assert (score.points, score.max_points) == (0, test.points)


def test_the_former_copies_of_the_facts_read_the_description():
    from autograder import grading_settings

    assert (
        grading_settings.DATA_FILES
        == ASSIGNMENT.data_file_caps
        == {
            "mnist_results.json": 1_000_000,
            "fashion_results.json": 1_000_000,
            "fashion_model.npz": 64_000_000,
            "mnist_model_sigmoid.npz": 16_000_000,
            "mnist_model_relu.npz": 16_000_000,
            "mnist_model_tanh.npz": 16_000_000,
        }
    )
    assert grading_settings.MAX_NOTEBOOK_BYTES == 20_000_000
    assert grading_settings.DEFAULT_NAME_PATTERN == (
        r"^DNN_HW\d*_(?P<name>.+?)_(?P<student_id>[A-Za-z0-9]+)"
        r"(?:\s*\(\d+\)|-\d+)?$"
    )
    settings = grading_settings.GradingSettings()
    assert (
        settings.assignment,
        settings.cell_timeout,
        settings.notebook_timeout,
        settings.submission_timeout,
        settings.experiment_profile,
    ) == ("dnn_hw", 120, 600, 1800, "brief")
    assert ASSIGNMENT.results_files == {
        "05_mnist_activations.ipynb": "mnist_results.json",
        "06_fashion_tuning.ipynb": "fashion_results.json",
    }
    assert profile_environment("smoke") == {"DNN_COURSE_EXPERIMENT_PROFILE": "smoke"}


def test_the_description_travels_as_json_and_a_missing_key_fails_loudly():
    assert Assignment.from_json(ASSIGNMENT.to_json()) == ASSIGNMENT
    raw = json.loads(ASSIGNMENT.to_json())
    del raw["notebooks"][0]["tests"][0]["points"]
    with pytest.raises(KeyError, match="points"):
        Assignment.from_json(json.dumps(raw))


def test_a_description_that_contradicts_itself_is_refused():
    first, *rest = ASSIGNMENT.notebooks
    with pytest.raises(ValueError, match="02_fc_layer.ipynb imports 04_model_l2.ipynb, which is not an earlier"):
        dataclasses.replace(
            ASSIGNMENT, notebooks=(first, dataclasses.replace(rest[0], imports=(rest[2].name,)), *rest[1:])
        )
    with pytest.raises(ValueError, match="grade ids used twice: test_relu_forward"):
        dataclasses.replace(
            ASSIGNMENT,
            notebooks=(*ASSIGNMENT.notebooks, Notebook("07_more.ipynb", tests=(GradedTest("test_relu_forward", 1),))),
        )
    with pytest.raises(ValueError, match="test_x: a measured test, and only one, names its measurement"):
        GradedTest("test_x", 1, Scoring.KERNEL, Measurement("mnist", "mnist_model_points"))


# --------------------------------------------------------------------------- a seventh notebook

SEVENTH = "07_leaky_relu.ipynb"
#: The one edit to the description: the seventh notebook, which imports 01's ReLU.
SEVEN = dataclasses.replace(
    ASSIGNMENT,
    notebooks=(
        *ASSIGNMENT.notebooks,
        Notebook(
            SEVENTH,
            imports=("01_activations.ipynb",),
            tests=(GradedTest("test_leaky_relu", 3),),
            written=(WrittenAnswer("answer_leaky_relu", 1),),
        ),
    ),
)


def _seventh_notebook() -> nbformat.NotebookNode:
    """The seventh notebook's source: an answer cell, a 3-point test (using 01's ReLU) and a written answer."""

    def cell(kind, source, **meta):
        made = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        if meta:
            made.metadata["nbgrader"] = {
                "schema_version": 3,
                "locked": False,
                "solution": False,
                "grade": False,
                "task": False,
                **meta,
            }
        return made

    return nbformat.v4.new_notebook(
        metadata={"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}},
        cells=[
            cell("markdown", "# Exercise 7: the leaky ReLU"),
            cell(
                "code",
                "import numpy as np\nfrom dnn_course.notebook_import import import_notebooks\n\n"
                'ReLU = import_notebooks("01_activations.ipynb").ReLU',
            ),
            cell(
                "code",
                "def leaky_relu(z, slope=0.01):\n    ### BEGIN SOLUTION\n"
                "    return np.where(z > 0, z, slope * z)\n    ### END SOLUTION",
                grade_id="leaky_relu",
                solution=True,
            ),
            cell(
                "code",
                "z = np.array([-1.0, 2.0])\nassert np.allclose(leaky_relu(z), [-0.01, 2.0])\n"
                "assert np.allclose(ReLU().forward(z), [0.0, 2.0])",
                grade_id="test_leaky_relu",
                grade=True,
                locked=True,
                points=3,
            ),
            cell(
                "markdown",
                "=== BEGIN MARK SCHEME ===\nIt keeps a gradient for negative inputs.\n=== END MARK SCHEME ===",
                grade_id="answer_leaky_relu",
                grade=True,
                solution=True,
                points=1,
            ),
        ],
    )


@pytest.mark.slow
def test_a_seventh_notebook_is_one_edit_to_the_description(tmp_path):
    """The course with a seventh notebook: the description plus the notebook, and no other edit.

    The grader lists and grades the seven notebooks (grades.csv has 07's test and total, the maximum
    counts its points) and refuses a description that does not list the notebooks its source holds; the
    students' check checks the seven and scores 07's test.
    """
    from autograder import crosscheck_probes
    from autograder.grade import grade
    from autograder.grading_settings import GradingSettings
    from tests.autograder_corpus import students as st

    source = tmp_path / "solutions" / ASSIGNMENT.name
    shutil.copytree(SOLUTIONS, source, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    nbformat.write(_seventh_notebook(), source / SEVENTH)
    # the cross-check's groups and the reference come from the description: 07 has no cross-checked test
    assert crosscheck_probes.groups(SEVEN) == crosscheck_probes.GROUPS
    assert SEVEN.reference_notebooks == ASSIGNMENT.reference_notebooks
    assert SEVEN.notebook(SEVENTH).group == ("01_activations.ipynb", SEVENTH)

    good = st.perfect(EXERCISES, SOLUTIONS)["01_activations.ipynb"]
    submissions = tmp_path / "downloads"
    submissions.mkdir()
    st.write_zip(
        submissions,
        "DNN_HW2_Ada_Lovelace_7000",
        {"01_activations.ipynb": st.dumps(good), SEVENTH: st.dumps(_seventh_notebook())},
    )
    settings = dataclasses.replace(GradingSettings(), source_root=source.parent, jobs=1)

    with pytest.raises(ValueError, match=f"description \\(dnn_hw\\): {SEVENTH} not listed"):
        grade(submissions, tmp_path / "refused", settings, progress=False)  # the course's own description: 6

    out = tmp_path / "out"
    summary = grade(submissions, out, settings, progress=False, description=SEVEN)
    assert summary.graded == 1 and not summary.failed
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert float(row[f"{SEVENTH[:-6]}/test_leaky_relu"]) == 3
    assert float(row[f"{SEVENTH[:-6]} total"]) == 3
    assert float(row["01_activations total"]) == 6
    assert float(row["max_total"]) == SEVEN.max_points == ASSIGNMENT.max_points + 4
    result = json.loads((out / "results" / "7000.json").read_text())
    assert [nb["name"] for nb in result["notebooks"]] == list(SEVEN.names)

    # the students' check, with the grader's release of the seven notebooks
    work = tmp_path / "work"
    work.mkdir()
    nbformat.write(good, work / "01_activations.ipynb")
    nbformat.write(_seventh_notebook(), work / SEVENTH)
    reports = check.check_folder(work, out / "course" / "release" / ASSIGNMENT.name, assignment=SEVEN)
    assert [report.name for report in reports] == list(SEVEN.names)
    seventh = reports[-1]
    assert (seventh.points, seventh.max_points, seventh.ok) == (3, 3, True), seventh
    assert seventh.notes == ["answer_leaky_relu: a written answer, graded by hand (1 points)"]
    assert reports[1].problems == [
        f"02_fc_layer.ipynb is missing from {work}: keep all seven notebooks in one folder, with their original names."
    ]
