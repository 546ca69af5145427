"""The notebooks as nbgrader sees them: solutions pass, blank exercises fail, and both are in sync.

Each test copies the notebooks to a temporary folder first, so runs never
leave result files in the repository. The experiment notebooks run in their
smoke-test mode, as a student would set it (``SMOKE_TEST = True`` in their parameters cell).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dnn_course.assignment import PROFILE_VARIABLE

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions" / "dnn_hw"
EXERCISES = REPO / "exercises" / "dnn_hw"
NOTEBOOKS = sorted(p.name for p in SOLUTIONS.glob("*.ipynb"))


def _copy_notebooks(source: Path, destination: Path) -> list[str]:
    from dnn_course.experiment import set_parameters

    for notebook in source.glob("*.ipynb"):
        shutil.copy2(notebook, destination / notebook.name)
        if notebook.name[:2] in ("05", "06"):
            set_parameters(destination / notebook.name, SMOKE_TEST=True)
    return sorted(p.name for p in destination.glob("*.ipynb"))


def _nbgrader_validate(folder: Path, notebooks: list[str], *extra: str) -> str:
    # unbuffered: nbgrader prints its verdicts to stdout and its log to stderr, and the chunks
    # per notebook below rely on the two arriving in order
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    env.pop(PROFILE_VARIABLE, None)
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", "validate", *extra, *notebooks],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1200,
    )
    return result.stdout


def _per_notebook(output: str) -> dict[str, str]:
    """Split nbgrader validate's output into one chunk per notebook."""
    chunks = re.split(r"\[ValidateApp \| INFO\] Validating '([^']+)'", output)
    return {Path(chunks[i]).name: chunks[i + 1] for i in range(1, len(chunks) - 1, 2)}


def test_there_are_six_notebooks_with_the_brief_points():
    assert NOTEBOOKS == [
        "01_activations.ipynb",
        "02_fc_layer.ipynb",
        "03_softmax_cross_entropy.ipynb",
        "04_model_l2.ipynb",
        "05_mnist_activations.ipynb",
        "06_fashion_tuning.ipynb",
    ]
    points = {}
    for name in NOTEBOOKS:
        cells = json.loads((SOLUTIONS / name).read_text())["cells"]
        points[name] = sum(
            c["metadata"].get("nbgrader", {}).get("points", 0)
            for c in cells
            if c["metadata"].get("nbgrader", {}).get("grade")
        )
    assert sum(points[n] for n in NOTEBOOKS[:4]) == 30, points  # the components
    assert sum(points[n] for n in NOTEBOOKS[4:]) == 20, points  # the experiments


def test_grade_ids_are_unique_and_descriptive():
    seen = set()
    for name in NOTEBOOKS:
        for cell in json.loads((SOLUTIONS / name).read_text())["cells"]:
            grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if grade_id and cell["metadata"]["nbgrader"].get("grade"):
                assert grade_id not in seen, f"duplicate grade_id {grade_id}"
                assert re.fullmatch(r"(test|answer)_[a-z0-9_]+", grade_id), grade_id
                seen.add(grade_id)


def test_exercises_are_exactly_what_nbgrader_generates():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate_exercises.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_exercises_contain_no_solution_or_hidden_test():
    for name in NOTEBOOKS:
        text = (EXERCISES / name).read_text()
        for marker in (
            "BEGIN SOLUTION",
            "END SOLUTION",
            "BEGIN HIDDEN TESTS",
            "np.maximum(z, 0)",
            "np.exp(-2 * np.abs(z))",
            "z.max(axis=1, keepdims=True)",
            "Model answer",
            "Rubric",
        ):
            assert marker not in text, f"{name} leaks {marker!r}"
        assert "EDIT HERE" in text, f"{name} has no EDIT HERE region"


def test_reference_fixtures_are_up_to_date():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_fixtures.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_every_solution_notebook_passes_nbgrader_validate(tmp_path):
    notebooks = _copy_notebooks(SOLUTIONS, tmp_path)
    output = _nbgrader_validate(tmp_path, notebooks)
    chunks = _per_notebook(output)
    assert sorted(chunks) == NOTEBOOKS, output[-3000:]
    for name, chunk in chunks.items():
        assert "Success! Your notebook passes all the tests." in chunk, f"{name}:\n{chunk[-3000:]}"


@pytest.mark.slow
def test_every_graded_test_fails_on_the_blank_exercises(tmp_path):
    notebooks = _copy_notebooks(EXERCISES, tmp_path)
    output = _nbgrader_validate(tmp_path, notebooks, "--invert")
    chunks = _per_notebook(output)
    assert sorted(chunks) == NOTEBOOKS, output[-3000:]
    for name, chunk in chunks.items():
        assert "Success! The notebook does not pass any tests." in chunk, f"{name}:\n{chunk[-3000:]}"


@pytest.mark.slow
def test_a_smoke_run_says_in_every_test_that_it_is_not_graded(tmp_path, monkeypatch):
    """With SMOKE_TEST = True (a student's run, not the grader's), no test of 05 or 06 looks like a grade."""
    import nbformat
    from nbclient import NotebookClient

    _copy_notebooks(SOLUTIONS, tmp_path)
    for variable in (PROFILE_VARIABLE,):  # the kernel inherits it
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for name, tests in (
        ("05_mnist_activations.ipynb", ("test_mnist_runs_recorded", "test_mnist_accuracies")),
        ("06_fashion_tuning.ipynb", ("test_fashion_search_recorded", "test_fashion_model_accuracy")),
    ):
        notebook = nbformat.read(tmp_path / name, as_version=4)
        NotebookClient(notebook, timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()
        for cell in notebook.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") in tests:
                text = "".join(output.get("text", "") for output in cell.outputs)
                assert "SMOKE RUN, NOT GRADED" in text and "set SMOKE_TEST = False" in text, (name, text)
                assert "minutes rather than seconds" in text, text
                assert not re.search(r"\d of \d points", text), (name, text)  # no score that looks like a grade
                assert "brief's settings" not in text, text
                # nor a number after "(not points)": the accuracy tests' last line shows nothing in a smoke run
                assert [o for o in cell.outputs if o.output_type == "execute_result"] == [], (name, cell.outputs)
