"""The grader's own check of the components: correct code of any form agrees, wrong code never does.

The student's side runs in the sandbox (bubblewrap here) from the notebooks in
a working folder, exactly as the grading job runs it.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import crosscheck, kernel_environment, sandbox
from tests.autograder_corpus import students as st
from tests.rehearsal import cohort

pytestmark = pytest.mark.usefixtures("bubblewrap")
REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["01_activations.ipynb", "02_fc_layer.ipynb", "03_softmax_cross_entropy.ipynb", "04_model_l2.ipynb"]


@pytest.fixture(scope="module")
def good():
    return st.perfect(REPO / "exercises" / "dnn_hw", REPO / "solutions" / "dnn_hw")


def run(tmp_path, notebooks: dict, reference) -> dict:
    work, ipc = tmp_path / "work", tmp_path / "ipc"
    work.mkdir()
    ipc.mkdir(mode=0o700)
    for name, nb in notebooks.items():
        if name in NOTEBOOKS:
            nbformat.write(nb, work / name)
    isolation, _ = sandbox.detect_isolation("bubblewrap")
    spec = sandbox.SandboxSpec(
        isolation=isolation,
        workdir=str(work),
        ipc_dir=str(ipc),
        marker="crosscheck-test",
        readonly=kernel_environment.readonly_paths(),
        uid=sandbox.sandbox_uid(0, isolation),
        environment=kernel_environment.course_variables("brief"),
    )
    return crosscheck.crosscheck(spec, reference, sorted(p.name for p in work.glob("*.ipynb")), seed=2026)


@pytest.mark.parametrize("variant", ["perfect", "alvarez", "bao"])
def test_correct_code_of_any_form_agrees(tmp_path, good, reference, variant):
    answers = {"perfect": {}, "alvarez": cohort.ALVAREZ, "bao": cohort.BAO}[variant]
    notebooks = {n: cohort._answers(copy.deepcopy(nb), answers) for n, nb in good.items()}
    assert run(tmp_path, notebooks, reference) == {}


MISTAKES = {
    "relu forward is the identity": (NOTEBOOKS[0], "relu", "np.maximum(z, 0)", "z", {"test_relu_forward"}),
    "sigmoid without the stable form": (
        NOTEBOOKS[0],
        "sigmoid",
        "np.where(z >= 0, 1 / (1 + e), e / (1 + e))",
        "e / (1 + e)",
        {"test_sigmoid_forward"},
    ),  # s(1 - s) is symmetric
    "fc backward without the L2 term": (
        NOTEBOOKS[1],
        "fc_layer",
        "self.dW += reg_lambda * self.W",
        "pass",
        {"test_fc_backward_params"},
    ),  # update is checked on its own
    "update climbs the gradient": (
        NOTEBOOKS[1],
        "fc_layer",
        "self.W -= learning_rate * self.dW",
        "self.W += learning_rate * self.dW",
        {"test_fc_update"},
    ),
    "cross-entropy summed": (
        NOTEBOOKS[2],
        "softmax",
        "np.log(y_hat + EPS)) / y.shape[0]",
        "np.log(y_hat + EPS))",
        {"test_ce_loss"},
    ),
    "L2 as the spectral norm": (
        NOTEBOOKS[3],
        "classifier_model",
        "np.vdot(layer.W, layer.W)",
        "np.linalg.norm(layer.W, 2)",
        {"test_l2_loss"},
    ),  # backward does not use the loss; it still learns
}


@pytest.mark.parametrize("notebook, gid, old, new, failing", MISTAKES.values(), ids=MISTAKES.keys())
def test_wrong_code_disagrees_where_it_is_wrong(tmp_path, good, reference, notebook, gid, old, new, failing):
    notebooks = dict(good)
    notebooks[notebook] = st.replace_in_answer(good[notebook], gid, old, new)
    problems = run(tmp_path, notebooks, reference)
    assert {g for (n, g) in problems if n == notebook} == failing, problems


def test_a_cell_that_fails_to_define_costs_what_depends_on_it(tmp_path, good, reference):
    """As in the notebook run (errors allowed): the failing cell defines nothing, the others still count."""
    notebooks = dict(good)
    notebooks[NOTEBOOKS[1]] = st.set_answer(good[NOTEBOOKS[1]], "fc_layer", "class FCLayer(NoSuchBase):\n    pass")
    problems = run(tmp_path, notebooks, reference)
    assert {n for n, _ in problems} == {NOTEBOOKS[1], NOTEBOOKS[3]}  # 04 imports 02
    assert "raised AttributeError" in problems[(NOTEBOOKS[1], "test_fc_forward")]  # FCLayer was never defined


def test_code_that_forges_the_channel_costs_only_the_tests_that_run_it(tmp_path, good, reference):
    """Writing to every descriptor, then leaving, is no verdict: the tests running that code are unverified,
    every other test is still verified (before: all 17 tests 'disagreed')."""
    forge = (
        "import os\n        for _fd in range(3, 64):\n            try:\n"
        "                os.write(_fd, b'\\x00' * 8 + b'forged')\n            except OSError:\n"
        "                pass\n        os._exit(0)"
    )
    notebooks = dict(good)
    notebooks[NOTEBOOKS[0]] = st.replace_in_answer(good[NOTEBOOKS[0]], "relu", "self.out = np.maximum(z, 0)", forge)
    problems = run(tmp_path, notebooks, reference)
    relu = {(NOTEBOOKS[0], "test_relu_forward"), (NOTEBOOKS[0], "test_relu_backward")}
    model = {(NOTEBOOKS[3], g) for g in ("test_l2_loss", "test_model_gradient_check", "test_model_learns")}
    assert set(problems) == relu | model  # 04's model is a ReLU network
    assert all(
        why.startswith("the grader could not verify it: it wrote something that is not its result")
        for why in problems.values()
    ), problems


EXIT = "import os\n        os._exit(3)\n        "
HANG = (
    "import signal\n        signal.signal(signal.SIGINT, signal.SIG_IGN)\n        while True:\n"
    "            try:\n                pass\n            except BaseException:\n                pass\n        "
)
STOP = "class Stop(BaseException):\n            pass\n        raise Stop('no')\n        "


def test_a_test_that_exits_hangs_or_raises_anything_costs_itself_only(tmp_path, good, reference, monkeypatch):
    """os._exit, a loop ignoring interrupts, SystemExit and a BaseException subclass, each in one method:
    only the tests calling that method are lost; the others of the same notebook are verified
    (before: the process died and all 17 tests disagreed)."""
    monkeypatch.setattr(crosscheck, "TEST_SECONDS", 3.0)
    one = st.replace_in_answer(
        good[NOTEBOOKS[0]], "sigmoid", "d_z = d_prev * self.out", EXIT + "d_z = d_prev * self.out"
    )
    one = st.replace_in_answer(one, "tanh", "d_z = d_prev * (1", HANG + "d_z = d_prev * (1")
    two = st.replace_in_answer(
        good[NOTEBOOKS[1]],
        "fc_layer",
        "self.W -= learning_rate",
        "raise SystemExit(0)\n        self.W -= learning_rate",
    )
    two = st.replace_in_answer(two, "fc_layer", "self.dW = self.x.T", STOP + "self.dW = self.x.T")
    problems = run(tmp_path, {**good, NOTEBOOKS[0]: one, NOTEBOOKS[1]: two}, reference)
    assert problems == {
        (
            NOTEBOOKS[0],
            "test_sigmoid_backward",
        ): "the grader could not verify it: the process ended while computing it (an exit, os._exit, a signal "
        "or a limit)",
        (NOTEBOOKS[0], "test_tanh_backward"): "the grader could not verify it: it did not finish within 3 s",
        (NOTEBOOKS[1], "test_fc_backward_input"): "raised Stop: no",
        (NOTEBOOKS[1], "test_fc_backward_params"): "raised Stop: no",
        (NOTEBOOKS[1], "test_fc_update"): "raised SystemExit: 0",
        (NOTEBOOKS[3], "test_model_gradient_check"): "raised Stop: no",  # the model's backward calls FCLayer's
        (NOTEBOOKS[3], "test_model_learns"): "raised Stop: no",
    }


def test_a_notebook_whose_definitions_exit_costs_its_own_tests(tmp_path, good, reference):
    """A class body that calls os._exit kills the import: that notebook's tests (and 04's, which
    imports it) are unverified, the other notebooks are verified."""
    notebooks = dict(good)
    notebooks[NOTEBOOKS[2]] = st.replace_in_answer(
        good[NOTEBOOKS[2]], "softmax", "def softmax(", "import os as _os\nclass _Gone:\n    _os._exit(1)\ndef softmax("
    )
    problems = run(tmp_path, notebooks, reference)
    assert {n for n, _ in problems} == {NOTEBOOKS[2], NOTEBOOKS[3]}
    assert len(problems) == 6
    assert all("could not be imported: while importing them, the process ended" in why for why in problems.values()), (
        problems
    )


def test_garbage_values_are_a_disagreement_of_their_test_never_an_error():
    """Strings, objects, wrong shapes: the comparison names them (before: arrays of strings raised in compare)."""
    expected = {
        "01_activations.ipynb::test_relu_forward/out": np.zeros((2, 2)),
        "01_activations.ipynb::test_relu_backward/grad": np.zeros((2, 2)),
        "01_activations.ipynb::test_tanh_forward/out": np.zeros((2, 2)),
        "01_activations.ipynb::test_tanh_backward/grad": np.zeros((2, 2)),
    }
    actual = {
        "01_activations.ipynb::test_relu_forward/out": np.array([["a", "b"], ["c", "d"]]),
        "01_activations.ipynb::test_relu_backward/grad": np.zeros(3),
        "01_activations.ipynb::test_tanh_forward/out": "not an array",
        "01_activations.ipynb::test_tanh_backward/grad": np.zeros((2, 2), dtype=bool),
    }
    problems = crosscheck.compare(expected, actual, [NOTEBOOKS[0]])
    assert problems == {
        (NOTEBOOKS[0], "test_relu_forward"): "out: not numbers (U array)",
        (NOTEBOOKS[0], "test_relu_backward"): "grad: shape (3,), expected (2, 2)",
        (NOTEBOOKS[0], "test_tanh_forward"): "out: shape None, expected (2, 2)",
    }


def test_a_method_returning_strings_is_its_own_failure(tmp_path, good, reference):
    notebooks = dict(good)
    notebooks[NOTEBOOKS[0]] = st.replace_in_answer(
        good[NOTEBOOKS[0]], "relu", "self.out = np.maximum(z, 0)", "self.out = np.full(z.shape, 'x')"
    )
    problems = run(tmp_path, notebooks, reference)
    assert problems[(NOTEBOOKS[0], "test_relu_forward")].startswith("raised ValueError: could not convert string")
    assert (NOTEBOOKS[0], "test_sigmoid_forward") not in problems
