"""Grading mode of the experiment notebooks: saved results are judged by the brief's settings and
the documented thresholds, and the saved Fashion-MNIST model is measured, not believed."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from dnn_course.datasets import load_dataset
from dnn_course.model_builder import build_classifier
from dnn_course.records import save_model, save_runs
from dnn_course.training import History, accuracy, train

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions" / "dnn_hw"
BRIEF = dict(epochs=100, learning_rate=0.001, batch_size=128, reg_lambda=1e-8)


def _history(test_acc: float, n_epochs: int = 100, **config) -> History:
    return History(train_loss=[1.0] * n_epochs, train_acc=[0.5] * n_epochs, val_acc=[test_acc] * n_epochs,
                   test_acc=test_acc, epoch_seconds=[1.0] * n_epochs, config=dict(BRIEF, **config),
                   data_description="MNIST, embedded subset (test fixture)")


def _run_grading(folder: Path, notebook: str) -> dict[str, nbformat.NotebookNode]:
    """Execute ``notebook`` in ``folder`` with DNN_COURSE_MODE=grading; return its test cells by grade_id."""
    for name in SOLUTIONS.glob("0[1-4]*.ipynb"):
        shutil.copy2(name, folder / name.name)
    nb = nbformat.read(SOLUTIONS / notebook, as_version=4)
    client = NotebookClient(nb, timeout=300, allow_errors=True, resources={"metadata": {"path": str(folder)}})
    with pytest.MonkeyPatch.context() as patch:  # the kernel inherits this environment
        patch.setenv("DNN_COURSE_MODE", "grading")
        patch.setenv("MPLBACKEND", "Agg")
        client.execute()
    return {c.metadata.nbgrader["grade_id"]: c for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


def _error(cell) -> str | None:
    for output in cell.outputs:
        if output.output_type == "error":
            return "\n".join(output.traceback)
    return None


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.slow
@pytest.mark.parametrize("case, runs, failing, message", [
    ("good", {"sigmoid": 0.58, "relu": 0.90, "tanh": 0.90}, set(), ""),
    ("sigmoid-broken", {"sigmoid": 0.11, "relu": 0.90, "tanh": 0.90}, {"test_mnist_accuracies"},
     "The sigmoid network reaches 0.110"),
    ("too-few-epochs", {"sigmoid": 0.58, "relu": 0.90, "tanh": 0.90, "epochs": 50},
     {"test_mnist_runs_recorded"}, "epochs = 50, but the experiment asks for 100"),
    ("wrong-learning-rate", {"sigmoid": 0.58, "relu": 0.90, "tanh": 0.90, "learning_rate": 0.1},
     {"test_mnist_runs_recorded"}, "learning_rate = 0.1"),
])
def test_mnist_experiment_grading(tmp_path, case, runs, failing, message):
    runs = dict(runs)  # the parametrize dict is shared between runs of the test
    epochs = runs.pop("epochs", 100)
    config = {"learning_rate": runs.pop("learning_rate")} if "learning_rate" in runs else {}
    save_runs(tmp_path / "mnist_results.json",
              {name: _history(acc, epochs, epochs=epochs, **config) for name, acc in runs.items()})
    cells = _run_grading(tmp_path, "05_mnist_activations.ipynb")
    failed = {grade_id for grade_id, cell in cells.items() if _error(cell)}
    assert failed == failing, {g: _error(c) for g, c in cells.items()}
    for grade_id in failing:
        assert message in _error(cells[grade_id])


@pytest.mark.slow
def test_fashion_model_is_measured_with_the_students_code_and_graded_by_thresholds(tmp_path, reference):
    (x_train, y_train), (x_test, y_test) = load_dataset("fashion-mnist", verbose=False)
    model = build_classifier(reference, [784, 64, 10], "relu", seed=0, dtype=np.float32)
    train(model, x_train[:10000], y_train[:10000], epochs=20, learning_rate=0.1, batch_size=128, seed=0,
          progress=False)
    measured = accuracy(model, x_test, y_test)
    expected_points = sum(measured >= t for t in (0.80, 0.83, 0.85, 0.87))
    assert 1 <= expected_points <= 3, measured  # partial credit, neither none nor full (0.816 here)
    save_model(tmp_path / "fashion_model.npz", model, [784, 64, 10], "relu",
               info={"name": "784-64-10 ReLU", "claimed_test_accuracy": 0.95})  # an inflated claim
    runs = {f"run {i}": _history(0.8, 3, hidden=[64], activation="relu") for i in range(3)}
    save_runs(tmp_path / "fashion_results.json", runs)
    cells = _run_grading(tmp_path, "06_fashion_tuning.ipynb")
    assert _error(cells["test_fashion_search_recorded"]) is None
    cell = cells["test_fashion_model_accuracy"]
    assert _error(cell) is None
    result = [o for o in cell.outputs if o.output_type == "execute_result"][0]
    assert float(result.data["text/plain"]) == expected_points  # nbgrader's partial credit
    assert f"test accuracy measured now: {measured:.4f}" in _text(cell)
    assert "FLAG: the claimed test accuracy does not match" in _text(cell)


@pytest.mark.slow
def test_fashion_grading_refuses_a_tampered_model_file(tmp_path):
    (tmp_path / "fashion_model.npz").write_bytes(b"not a model")
    save_runs(tmp_path / "fashion_results.json",
              {f"run {i}": _history(0.8, 3, hidden=[64], activation="relu") for i in range(3)})
    cells = _run_grading(tmp_path, "06_fashion_tuning.ipynb")
    assert "is not a model file written by save_model" in _error(cells["test_fashion_model_accuracy"])
