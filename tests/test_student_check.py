"""The student's own check before submitting: `python -m dnn_course.check` and `nbgrader validate` in the
student's folder, with the folder's nbgrader_config.py (made by `make exercises`).

The student's folder is built as a student would have it: the released notebooks with their answers
filled in (the reference solution's code, without markers). The experiments' own grading is tested
in test_experiment_grading.py; here they only have to be run in the grader's mode.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dnn_course import check
from dnn_course.assignment import ASSIGNMENT, PROFILE_VARIABLE

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions" / "dnn_hw"
EXERCISES = REPO / "exercises" / "dnn_hw"


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _completed(name: str) -> nbformat.NotebookNode:
    """The released notebook ``name`` with every answer cell filled from the solution."""
    notebook = nbformat.read(EXERCISES / name, as_version=4)
    answers = {
        _grade_id(c): "\n".join(
            line
            for line in c.source.splitlines()
            if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
        )
        for c in nbformat.read(SOLUTIONS / name, as_version=4).cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    for cell in notebook.cells:
        if _grade_id(cell) in answers:
            cell.source = answers[_grade_id(cell)]
    return notebook


def _cell(notebook, grade_id):
    return next(c for c in notebook.cells if _grade_id(c) == grade_id)


def _without(notebook, grade_id):
    notebook = copy.deepcopy(notebook)
    notebook.cells = [c for c in notebook.cells if _grade_id(c) != grade_id]
    return notebook


def _student_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "my-work" / "dnn_hw"
    folder.mkdir(parents=True)
    for name in ASSIGNMENT.names:
        nbformat.write(_completed(name), folder / name)
    (folder / "nbgrader_config.py").write_bytes((EXERCISES / "nbgrader_config.py").read_bytes())
    return folder


def _environment(**extra) -> dict:
    environment = {key: value for key, value in os.environ.items() if key != PROFILE_VARIABLE}
    return dict(environment, MPLBACKEND="Agg", PYTHONUNBUFFERED="1", **extra)


# --- comparing with the released notebooks (no kernel) -----------------------------------------


def test_protected_cells_of_the_released_notebooks():
    cells = check.protected_cells(nbformat.read(EXERCISES / "03_softmax_cross_entropy.ipynb", as_version=4))
    kinds = {cell["grade_id"]: cell["kind"] for cell in cells}
    assert kinds == {
        "intro": "read-only",
        "imports": "read-only",
        "softmax": "answer",
        "test_softmax": "test",
        "test_ce_loss": "test",
        "test_softmax_backward": "test",
    }
    assert all(len(cell["checksum"]) == 32 for cell in cells if cell["kind"] != "answer")


def test_deleted_edited_copied_and_retyped_cells_are_named(tmp_path):
    released = nbformat.read(EXERCISES / "02_fc_layer.ipynb", as_version=4)
    complete = _completed("02_fc_layer.ipynb")
    assert check._structure_problems(complete, released, EXERCISES / "02_fc_layer.ipynb") == []

    changed = _without(complete, "test_fc_update")
    _cell(changed, "test_fc_forward").source += "\nprint('my own line')"
    changed.cells.append(copy.deepcopy(_cell(changed, "test_fc_backward_input")))
    _cell(changed, "intro").cell_type = "raw"
    changed = _without(changed, "fc_layer")
    problems = check._structure_problems(changed, released, EXERCISES / "02_fc_layer.ipynb")
    assert [p.split(".")[0] for p in problems] == [
        "the cell intro was changed from markdown to raw: change it back",
        "your answer cell fc_layer was deleted: the grader finds your code by that cell, so copy it back from the "
        "released 02_fc_layer",
        "the test cell test_fc_forward was edited",
        "the cell test_fc_backward_input appears 2 times (a copied cell): keep only one",
        "the test cell test_fc_update was deleted",
    ], problems


def test_failure_lines_quote_the_tests_own_message():
    checked = nbformat.v4.new_output(
        "error", ename="CheckFailed", evalue="x", traceback=["\u2717 dx is wrong: transposed."]
    )
    other = nbformat.v4.new_output(
        "error", ename="NameError", evalue="name 'runs' is not defined", traceback=["\x1b[0;31mNameError\x1b[0m", "..."]
    )
    stderr = nbformat.v4.new_output("stream", name="stderr", text="UserWarning: a warning\n")
    printed = nbformat.v4.new_output(
        "stream",
        name="stdout",
        text="measured 0.81\n0.83 earns the next point (one point at each of 0.80, 0.83).\n1 of 4 points\n\n",
    )
    assert check._error_text([checked]) == "dx is wrong: transposed."
    assert check._error_text([printed, other]) == "NameError: name 'runs' is not defined"
    assert check._error_text([stderr]) == "it wrote to stderr, which counts as a failure: UserWarning: a warning"
    # a test that printed its measurement and the next threshold: all of it, without the closing points line
    assert check._error_text([printed]) is None
    assert (
        check._explanation([printed]) == "measured 0.81; 0.83 earns the next point (one point at each of 0.80, 0.83)."
    )


def test_the_student_config_is_in_the_exercises_and_sets_the_graders_limits():
    text = (EXERCISES / "nbgrader_config.py").read_text()
    assert text == check.student_config()
    assert "each cell may run for 120 seconds" in text and "fashion_model.npz" in text and "all six notebooks" in text
    from traitlets.config import Config

    from autograder.grading_settings import GradingSettings

    config = check.configure_validation(Config())
    assert config.Execute.timeout == GradingSettings().cell_timeout == ASSIGNMENT.timeouts.cell == 120
    assert f"os.environ.setdefault('{PROFILE_VARIABLE}', 'brief')" in config.Execute.extra_arguments[0]


def test_command_line_errors_are_explained(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dnn_course.check", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "holds none of the six exercise notebooks" in result.stderr, result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "dnn_course.check", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "is not a folder" in result.stderr, result.stderr


# --- the whole flow, with kernels --------------------------------------------------------------


@pytest.mark.slow
def test_check_reports_every_notebook_of_a_students_folder(tmp_path):
    folder = _student_folder(tmp_path)  # the experiments 05 and 06 were never run: no result files
    # a stray print after the ReLU class (notebook 04 imports ReLU all the same), a deleted test cell in 03,
    # an edited one in 02
    notebook = nbformat.read(folder / "01_activations.ipynb", as_version=4)
    _cell(notebook, "relu").source += "\n\nprint(ReLU().forward(np.array([-1.0, 2.0])))"
    nbformat.write(notebook, folder / "01_activations.ipynb")
    nbformat.write(
        _without(nbformat.read(folder / "03_softmax_cross_entropy.ipynb", as_version=4), "test_ce_loss"),
        folder / "03_softmax_cross_entropy.ipynb",
    )
    notebook = nbformat.read(folder / "02_fc_layer.ipynb", as_version=4)
    _cell(notebook, "test_fc_update").source = "# Test: FCLayer.update (1 point)\npass"
    nbformat.write(notebook, folder / "02_fc_layer.ipynb")

    result = subprocess.run(
        [sys.executable, "-m", "dnn_course.check", "my-work/dnn_hw"],
        cwd=tmp_path,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        lines[0]
        == f"Checking the notebooks in {folder} as the grader runs them (05 and 06 from their saved results)..."
    )
    summary = {
        line.split()[0]: line.split(None, 1)[1] for line in lines[1:] if line[:3] in {f"0{i}_" for i in range(1, 7)}
    }
    assert list(summary) == list(ASSIGNMENT.names), result.stdout
    assert {name: summary[name] for name in ASSIGNMENT.names[:4]} == {
        "01_activations.ipynb": "\u2713 6/6 points from the visible tests, all pass",
        "02_fc_layer.ipynb": "\u2717 8/8 points from the visible tests",
        "03_softmax_cross_entropy.ipynb": "\u2717 4/4 points from the visible tests",
        "04_model_l2.ipynb": "\u2713 10/10 points from the visible tests, all pass",
    }, result.stdout
    assert summary["05_mnist_activations.ipynb"].startswith("\u2717 0/")  # nothing to grade them from
    assert summary["06_fashion_tuning.ipynb"].startswith("\u2717 0/")
    text = result.stdout
    under = {name: text.split(name, 1)[1].split("\n0", 1)[0] for name in ASSIGNMENT.names}
    assert (
        "    \u2717 the test cell test_fc_update was edited. The grader runs the released version"
        in under["02_fc_layer.ipynb"]
    )
    assert (
        "    \u2717 the test cell test_ce_loss was deleted. The grader runs it anyway"
        in under["03_softmax_cross_entropy.ipynb"]
    )
    assert "\u2717 test_" in under["05_mnist_activations.ipynb"] and "\u2717 test_" in under["06_fashion_tuning.ipynb"]
    assert lines[-1] == (
        "2 of 6 notebooks pass. Fix the \u2717 lines above (the first one of a notebook is "
        "often the cause of the others), then run this check again."
    )
    assert "WARNING" not in result.stderr, result.stderr
    # the check leaves the folder as it found it (the experiments in grading mode write nothing)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*ASSIGNMENT.names, "nbgrader_config.py"])


def _mode_notebook() -> nbformat.NotebookNode:
    """A one-test notebook that passes only when its kernel grades the experiments under the brief's profile."""
    cell = nbformat.v4.new_code_cell(
        f"import os\nassert os.environ.get({PROFILE_VARIABLE!r}) == 'brief', os.environ.get({PROFILE_VARIABLE!r})"
    )
    cell.metadata["nbgrader"] = {
        "grade": True,
        "grade_id": "test_mode",
        "locked": True,
        "points": 1,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    return nbformat.v4.new_notebook(
        cells=[cell],
        metadata={"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}},
    )


@pytest.mark.slow
def test_plain_nbgrader_validate_in_the_students_folder_grades_like_the_grader(tmp_path):
    folder = _student_folder(tmp_path)
    nbformat.write(
        _without(nbformat.read(folder / "03_softmax_cross_entropy.ipynb", as_version=4), "test_ce_loss"),
        folder / "03_softmax_cross_entropy.ipynb",
    )
    nbformat.write(_mode_notebook(), folder / "mode.ipynb")
    nbgrader = Path(sys.executable).parent / "nbgrader"
    result = subprocess.run(
        [str(nbgrader), "validate", "03_softmax_cross_entropy.ipynb", "mode.ipynb"],
        cwd=folder,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    # the experiments' grading mode is on, and nothing is printed that the student cannot act on
    assert output.count("Success! Your notebook passes all the tests.") == 2, output
    assert "WARNING" not in output, output
    # a profile set already is respected (the course's own tests set it empty to run the experiments)
    result = subprocess.run(
        [str(nbgrader), "validate", "mode.ipynb"],
        cwd=folder,
        env=_environment(**{PROFILE_VARIABLE: "smoke"}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "AssertionError: smoke" in result.stdout, result.stdout + result.stderr
    # nbgrader alone does not notice the deleted test cell; the course's check does
    report = check.check_notebook(
        folder / "03_softmax_cross_entropy.ipynb", EXERCISES / "03_softmax_cross_entropy.ipynb"
    )
    assert not report.ok and report.problems[0].startswith("the test cell test_ce_loss was deleted"), report


@pytest.mark.slow
def test_a_blank_notebook_names_each_method_to_write(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "01_activations.ipynb").write_bytes((EXERCISES / "01_activations.ipynb").read_bytes())
    report = check.check_notebook(folder / "01_activations.ipynb", EXERCISES / "01_activations.ipynb")
    assert (report.points, report.max_points, report.problems) == (0, 6, [])
    assert report.failures[:2] == [
        "test_relu_forward (0/1 points): ReLU.forward is not written yet: fill in its EDIT HERE region and run "
        "that cell again.",
        "test_relu_backward (0/1 points): ReLU.forward is not written yet: fill in its EDIT HERE region and run "
        "that cell again.",
    ], report.failures


def test_stderr_of_a_test_cell_counts_as_output_as_when_grading():
    """The check and the grader share one rule: a test is decided by its outcome, not by stderr."""
    import nbformat

    from dnn_course.nbgrader_cells import stderr_as_output

    nb = nbformat.v4.new_notebook()
    test = nbformat.v4.new_code_cell(
        "import logging; logging.warning('x')",
        metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": "test_x", "points": 1}},
    )
    answer = nbformat.v4.new_code_cell(
        "import sys; print('x', file=sys.stderr)",
        metadata={"nbgrader": {"grade": False, "solution": True, "grade_id": "x"}},
    )
    for cell in (test, answer):
        cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="WARNING:root:x\n")]
    nb.cells = [test, answer]
    stderr_as_output(nb)
    assert [c.outputs[0].name for c in nb.cells] == ["stdout", "stderr"]


# --- partial credit and smoke-test results -----------------------------------------------------


def _fashion_results(folder: Path, reference, plan: dict) -> str:
    """Notebook 06's files as its search cell writes them, from ``plan`` run with the reference on the
    embedded images; returns the name of the saved (best) run."""
    import shutil

    import numpy as np

    from dnn_course.datasets import load_dataset, train_val_split
    from dnn_course.experiment import run_plan
    from dnn_course.model_builder import build_classifier
    from dnn_course.training import train

    data = load_dataset("fashion-mnist", verbose=False)
    (x_train, y_train), (x_test, y_test) = data
    if any("train_images" in settings for settings in plan.values()):
        x_train, y_train = x_train[:2000], y_train[:2000]
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x_train, y_train, val_size=0.1, seed=0)

    def train_run(name, settings):
        sizes = [784, *settings["hidden"], 10]
        model = build_classifier(reference, sizes, settings["activation"], seed=0, dtype=np.float32)
        history = train(
            model,
            x_tr,
            y_tr,
            x_val=x_val,
            y_val=y_val,
            x_test=x_test,
            y_test=y_test,
            epochs=settings["epochs"],
            learning_rate=settings["learning_rate"],
            batch_size=128,
            reg_lambda=0.0,
            seed=0,
            dtype=np.float32,
            progress=False,
            data_description=data.description,
        )
        history.config.update(hidden=settings["hidden"], activation=settings["activation"])
        return history, model, sizes, settings["activation"]

    (folder / "fashion_runs").mkdir(exist_ok=True)
    experiment = run_plan(
        plan,
        train_run,
        folder / "fashion_results.json",
        lambda name, rid: folder / "fashion_runs" / f"{rid}.npz",
        data.description,
        log=lambda *_: None,
    )
    best = max(experiment.runs, key=lambda name: experiment.runs[name].val_acc[-1])
    shutil.copyfile(folder / "fashion_runs" / f"{experiment.ids[best]}.npz", folder / "fashion_model.npz")
    return best


#: Three configurations whose best reaches 0.8375 on the 10,000 test images: 2 of 06's 4 points.
PARTIAL_PLAN = {
    f"784-{hidden}-10 ReLU, {epochs} ep": dict(
        hidden=[hidden], activation="relu", epochs=epochs, learning_rate=0.1, reg_lambda=0.0, batch_size=128
    )
    for hidden, epochs in ((16, 1), (32, 1), (100, 20))
}


@pytest.mark.slow
def test_partial_credit_is_shown_as_partial_with_its_hint_and_passes_the_check(
    tmp_path, reference, monkeypatch, capsys
):
    folder = _student_folder(tmp_path)
    best = _fashion_results(folder, reference, PARTIAL_PLAN)
    assert best == "784-100-10 ReLU, 20 ep"
    report = check.check_folder(folder, EXERCISES, notebooks=["06_fashion_tuning.ipynb"])[0]
    assert report.ok and report.failures == [] and report.problems == [], report
    assert (report.points, report.max_points) == (4, 6)  # 2 for the recorded search, 2 of 4 for the accuracy
    assert report.partial == [
        "test_fashion_model_accuracy (2/4 points, partial credit): 0.838 test accuracy measured on the saved "
        "weights of 784-100-10 ReLU, 20 ep (10,000 test images); 0.85 earns the next point (one point at each of "
        "0.80, 0.83, 0.85, 0.87)."
    ], report.partial
    assert check.format_notebook(report).splitlines() == [
        f"{'06_fashion_tuning.ipynb':<{check._WIDTH}}\u25d0 4/6 points from the visible tests, all pass, with partial credit",
        f"    \u25d0 {report.partial[0]}",
        "    \u00b7 answer_fashion_design: a written answer, graded by hand (4 points)",
    ]
    # the command exits 0 when partial credit is all there is, and says why it is no error
    others = [check.NotebookReport(name, 6, 6) for name in ASSIGNMENT.names[:5]]
    monkeypatch.setattr(check, "check_folder", lambda *args, on_report=None, **kwargs: others + [report])
    assert check.main([str(folder)]) == 0
    output = capsys.readouterr().out
    assert "Fix" not in output and output.splitlines()[-1] == (
        "All 6 notebooks pass their visible tests. 1 test earns partial credit, which is no error: the \u25d0 line "
        "says what the next point needs. The grader's hidden tests check the same code more thoroughly, so passing "
        "here is necessary, not sufficient."
    )


def test_smoke_test_results_are_named_and_fail_the_check(tmp_path):
    from dnn_course.experiment import SMOKE, Experiment, _save

    smoke = dict(hidden=[64], activation="relu", epochs=SMOKE["max_epochs"], train_images=SMOKE["train_images"])
    real = dict(hidden=[64], activation="relu", epochs=30)
    _save(tmp_path / "fashion_results.json", Experiment({}, {}, {"a": smoke, "b": smoke, "c": real}, {}))
    _save(tmp_path / "mnist_results.json", Experiment({}, {}, {"relu": real}, {}))
    assert check._smoke_problems(tmp_path / "06_fashion_tuning.ipynb") == [
        "fashion_results.json holds SMOKE-TEST results (2 runs with SMOKE_TEST = True: 2,000 images, at most 5 "
        "epochs). They are not graded: the grader gives them no points. Set SMOKE_TEST = False in the first code "
        "cell of 06_fashion_tuning.ipynb, run all its cells (minutes, not seconds: its introduction says how long), "
        "then check again."
    ]
    assert check._smoke_problems(tmp_path / "05_mnist_activations.ipynb") == []
    assert check._smoke_problems(tmp_path / "01_activations.ipynb") == []
    report = check.NotebookReport(
        "06_fashion_tuning.ipynb", 6, 6, problems=check._smoke_problems(tmp_path / "06_fashion_tuning.ipynb")
    )
    assert not report.ok and "\u2717 fashion_results.json holds SMOKE-TEST results" in check.format_notebook(report)
