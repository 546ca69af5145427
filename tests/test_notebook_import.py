"""dnn_course.notebook_import: later notebooks get the student's definitions from earlier ones,
even from an answer cell that also prints or computes something, and a broken definition is
reported with its notebook, cell and line. Also: a stub of an earlier notebook that is not written
yet is named, with its notebook, by the test that reaches it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from dnn_course import checks
from dnn_course.notebook_import import NotebookImportError, definition_cells, import_notebooks

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions" / "dnn_hw"
EXERCISES = REPO / "exercises" / "dnn_hw"
EARLIER = ("01_activations.ipynb", "02_fc_layer.ipynb", "03_softmax_cross_entropy.ipynb")


def _folder(tmp_path: Path, source: Path = SOLUTIONS) -> Path:
    for notebook in source.glob("0[1-4]*.ipynb"):
        shutil.copy2(notebook, tmp_path / notebook.name)
    return tmp_path


def _edit(folder: Path, notebook: str, grade_id: str, edit) -> int:
    """Apply ``edit(source) -> source`` to the cell ``grade_id``; return its cell number (from 1)."""
    path = folder / notebook
    data = json.loads(path.read_text(encoding="utf-8"))
    for number, cell in enumerate(data["cells"], start=1):
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = edit(source)
            path.write_text(json.dumps(data), encoding="utf-8")
            return number
    raise AssertionError(f"no cell {grade_id} in {notebook}")


def _run_notebook_04(folder: Path) -> dict:
    """Run notebook 04's cells in this process from ``folder``, like Run All; ``{grade_id: error or None}``."""
    data = json.loads((folder / "04_model_l2.ipynb").read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "__main__"}
    results = {}
    previous = os.getcwd()
    os.chdir(folder)
    try:
        for cell in data["cells"]:
            if cell["cell_type"] != "code":
                continue
            grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if grade_id == "test_model_learns":
                continue  # trains on MNIST: not what these tests are about
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(source, f"<04:{grade_id}>", "exec"), namespace)  # noqa: S102 - the course's own notebook cells, as nbgrader runs them
                results[grade_id] = None
            except Exception as error:  # noqa: BLE001 - recorded per cell, as a notebook shows it
                results[grade_id] = error
    finally:
        os.chdir(previous)
    return results


STRAY_PRINT = "\nprint(ReLU().forward(np.array([-1.0, 2.0])))\n"


def test_answer_cell_with_a_stray_print_still_gives_its_class(tmp_path):
    folder = _folder(tmp_path)
    _edit(folder, "01_activations.ipynb", "relu", lambda s: s + STRAY_PRINT)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        module = import_notebooks(*(folder / name for name in EARLIER))
    assert output.getvalue() == ""  # the print is skipped ...
    np.testing.assert_array_equal(
        module.ReLU().forward(np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 2.0]
    )  # ... the class is not
    results = _run_notebook_04(folder)
    assert results == {
        "imports": None,
        "import_earlier": None,
        "classifier_model": None,
        "small_model": None,
        "test_l2_loss": None,
        "test_model_gradient_check": None,
    }, results


def test_non_literal_constants_after_a_class_are_imported_and_demos_are_skipped(tmp_path):
    folder = _folder(tmp_path)
    # the student's own constant, computed by a call, used by ce_loss; a lower-case helper value
    # the class uses; and a demo that would fail if it ran (z is not defined here)
    _edit(
        folder,
        "03_softmax_cross_entropy.ipynb",
        "softmax",
        lambda s: (
            s.replace("EPS = 1e-10", "EPS = np.float64(1e-10)").replace(
                "np.log(y_hat + EPS)", "np.log(y_hat + EPS) * one"
            )
            + "\none = np.float64(1.0)\ndemo = softmax(z)\nprint(demo)\nLIMIT = len(EPS_TABLE) if False else 3\n"
        ),
    )
    module = import_notebooks(*(folder / name for name in EARLIER))
    assert isinstance(module.EPS, np.float64) and module.one == 1.0 and module.LIMIT == 3
    assert not hasattr(module, "demo")
    layer = module.SoftmaxLayer()
    loss = layer.ce_loss(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))
    assert loss == pytest.approx(-np.log(1e-10))
    code = dict(definition_cells(folder / "03_softmax_cross_entropy.ipynb"))
    kept = next(source for source in code.values() if "class SoftmaxLayer" in source)
    assert "one = np.float64(1.0)" in kept and "demo" not in kept and "print" not in kept
    results = _run_notebook_04(folder)
    assert all(error is None for error in results.values()), results


def test_a_method_attached_after_the_class_is_imported_and_a_patch_of_numpy_is_not(tmp_path):
    folder = _folder(tmp_path)
    _edit(
        folder,
        "01_activations.ipynb",
        "tanh",
        lambda s: (
            s
            + (
                "\n\ndef tanh_backward(self, d_prev, reg_lambda=0.0):\n    return d_prev * (1 - self.out ** 2) * one\n\n"
                "Tanh.backward = tanh_backward\none = 1.0\nnp.course_test_marker = None\n"
            )
        ),
    )
    try:
        module = import_notebooks(folder / "01_activations.ipynb")
        assert not hasattr(np, "course_test_marker")  # only the cell's own classes and functions get attributes
    finally:
        vars(np).pop("course_test_marker", None)
    assert module.Tanh.backward is module.tanh_backward and module.one == 1.0
    tanh = module.Tanh()
    tanh.forward(np.array([0.5]))
    np.testing.assert_allclose(tanh.backward(np.array([2.0])), 2 * (1 - np.tanh(0.5) ** 2))


def test_a_broken_definition_names_the_notebook_the_cell_and_the_line(tmp_path):
    folder = _folder(tmp_path)
    cell = _edit(
        folder, "01_activations.ipynb", "tanh", lambda s: s.replace("class Tanh:", "class Tanh(Sigmod):") + STRAY_PRINT
    )
    with pytest.raises(NotebookImportError) as raised:
        import_notebooks(*(folder / name for name in EARLIER))
    assert str(raised.value).startswith(
        f"01_activations.ipynb, cell {cell}, line 1 (`class Tanh(Sigmod):`): NameError: name 'Sigmod' is not defined. "
        "Run 01_activations.ipynb from the top and fix that cell first."
    ), raised.value
    results = _run_notebook_04(folder)
    assert isinstance(results["import_earlier"], NotebookImportError)
    assert f"01_activations.ipynb, cell {cell}, line 1" in str(results["import_earlier"])


def test_a_constant_computed_from_a_demo_variable_is_reported_with_its_line(tmp_path):
    folder = _folder(tmp_path)
    cell = _edit(folder, "02_fc_layer.ipynb", "fc_layer", lambda s: s + "\nx = np.ones((2, 3))\nSCALE = x.max()\n")
    with pytest.raises(NotebookImportError) as raised:
        import_notebooks(*(folder / name for name in EARLIER))
    message = str(raised.value)
    assert f"02_fc_layer.ipynb, cell {cell}, line" in message and "(`SCALE = x.max()`)" in message, message
    assert "NameError: name 'x' is not defined" in message, message


def test_a_syntax_error_in_a_definition_cell_is_reported(tmp_path):
    folder = _folder(tmp_path)
    cell = _edit(
        folder,
        "02_fc_layer.ipynb",
        "fc_layer",
        lambda s: s.replace("def update(self, learning_rate):", "def update(self, learning_rate)"),
    )
    with pytest.raises(NotebookImportError, match=rf"02_fc_layer.ipynb, cell {cell}: syntax error on line \d+"):
        import_notebooks(*(folder / name for name in EARLIER))


def test_missing_or_unreadable_notebooks_are_explained(tmp_path):
    with pytest.raises(
        NotebookImportError,
        match="01_activations.ipynb: notebook not found in .*Keep all the exercise notebooks together",
    ):
        import_notebooks(tmp_path / "01_activations.ipynb")
    (tmp_path / "broken.ipynb").write_text("{not json")
    with pytest.raises(NotebookImportError, match="broken.ipynb: not a readable Jupyter notebook"):
        import_notebooks(tmp_path / "broken.ipynb")


def test_the_reference_notebooks_import_only_their_definitions():
    module = import_notebooks(*(SOLUTIONS / name for name in (*EARLIER, "04_model_l2.ipynb")))
    for name in (
        "ReLU",
        "Sigmoid",
        "Tanh",
        "FCLayer",
        "softmax",
        "SoftmaxLayer",
        "ClassifierModel",
        "small_model",
        "EPS",
    ):
        assert hasattr(module, name), name
    for test_variable in ("fx", "expected", "z", "model", "history", "results"):
        assert not hasattr(module, test_variable), test_variable


def test_a_stub_of_an_earlier_notebook_is_named_with_its_notebook(tmp_path):
    folder = _folder(tmp_path)
    shutil.copy2(EXERCISES / "03_softmax_cross_entropy.ipynb", folder / "03_softmax_cross_entropy.ipynb")
    module = import_notebooks(*(folder / name for name in EARLIER))
    layer = module.SoftmaxLayer()
    with pytest.raises(checks.CheckFailed) as raised:
        # as notebook 04 calls it: model.forward -> softmax_layer.forward -> softmax (a stub)
        checks.call("model.forward(x, y, reg_lambda)", lambda: layer.forward(np.zeros((2, 3))))
    message = str(raised.value)
    assert message.startswith("softmax in 03_softmax_cross_entropy.ipynb is not written yet"), message
    assert "model.forward" not in message
    with pytest.raises(
        checks.CheckFailed,
        match=r"^SoftmaxLayer.ce_loss in 03_softmax_cross_entropy.ipynb is not "
        r"written yet .*save 03_softmax_cross_entropy.ipynb",
    ):
        checks.call("model.forward(x, y, reg_lambda)", layer.ce_loss, np.ones((1, 2)) / 2, np.eye(2)[:1])
    results = _run_notebook_04(folder)
    assert str(results["test_l2_loss"]).startswith("softmax in 03_softmax_cross_entropy.ipynb is not written yet")


def test_a_stub_of_this_notebook_is_named_by_its_method():
    class ReLU:
        def forward(self, z):
            raise NotImplementedError()

    with pytest.raises(checks.CheckFailed, match=r"^ReLU.forward is not written yet: fill in its EDIT HERE region"):
        checks.call("ReLU().forward(z)", ReLU().forward, np.zeros(2))
