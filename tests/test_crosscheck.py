"""The grader's own check of the components: correct code of any form agrees, wrong code never does.

The student's side runs in the sandbox (bubblewrap here) from the notebooks in
a working folder, exactly as the grading job runs it.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from autograder import crosscheck, sandbox
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
    spec = sandbox.SandboxSpec(isolation=isolation, workdir=str(work), ipc_dir=str(ipc), marker="crosscheck-test",
                               readonly=sandbox.default_readonly_paths(), uid=sandbox.sandbox_uid(0, isolation))
    return crosscheck.crosscheck(spec, reference, sorted(p.name for p in work.glob("*.ipynb")), seed=2026)


@pytest.mark.parametrize("variant", ["perfect", "alvarez", "bao"])
def test_correct_code_of_any_form_agrees(tmp_path, good, reference, variant):
    answers = {"perfect": {}, "alvarez": cohort.ALVAREZ, "bao": cohort.BAO}[variant]
    notebooks = {n: cohort._answers(copy.deepcopy(nb), answers) for n, nb in good.items()}
    assert run(tmp_path, notebooks, reference) == {}


MISTAKES = {
    "relu forward is the identity": (NOTEBOOKS[0], "relu", "np.maximum(z, 0)", "z",
                                     {"test_relu_forward"}),
    "sigmoid without the stable form": (NOTEBOOKS[0], "sigmoid", "np.where(z >= 0, 1 / (1 + e), e / (1 + e))",
                                        "e / (1 + e)", {"test_sigmoid_forward"}),  # s(1 - s) is symmetric
    "fc backward without the L2 term": (NOTEBOOKS[1], "fc_layer", "self.dW += reg_lambda * self.W", "pass",
                                        {"test_fc_backward_params"}),  # update is checked on its own
    "update climbs the gradient": (NOTEBOOKS[1], "fc_layer", "self.W -= learning_rate * self.dW",
                                   "self.W += learning_rate * self.dW", {"test_fc_update"}),
    "cross-entropy summed": (NOTEBOOKS[2], "softmax", "np.log(y_hat + EPS)) / y.shape[0]", "np.log(y_hat + EPS))",
                             {"test_ce_loss"}),
    "L2 as the spectral norm": (NOTEBOOKS[3], "classifier_model", "np.vdot(layer.W, layer.W)",
                                "np.linalg.norm(layer.W, 2)",
                                {"test_l2_loss"}),  # backward does not use the loss; it still learns
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


def test_code_that_forges_the_channel_or_exits_earns_nothing(tmp_path, good, reference):
    """Writing to every descriptor, or leaving before the values are written, is no verdict."""
    forge = ("import os\n        for _fd in range(3, 64):\n            try:\n"
             "                os.write(_fd, b'\\x00' * 8 + b'forged')\n            except OSError:\n"
             "                pass\n        os._exit(0)")
    notebooks = dict(good)
    notebooks[NOTEBOOKS[0]] = st.replace_in_answer(good[NOTEBOOKS[0]], "relu", "self.out = np.maximum(z, 0)", forge)
    problems = run(tmp_path, notebooks, reference)
    assert problems and all("no complete result" in why or "unreadable" in why for why in problems.values())
