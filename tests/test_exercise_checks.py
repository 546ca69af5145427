"""The exercise tests catch the mistakes students really make, with the right message,
pass correct alternative implementations, and cannot be switched off from a student cell.

Each case runs a solution notebook in this process with one piece of the
reference replaced (see notebook_runner.py) and looks at one test cell.
"""

from __future__ import annotations

import numpy as np
import pytest
from notebook_runner import run_notebook

from dnn_course.checks import CheckFailed

NB1, NB2, NB3, NB4 = (
    "01_activations.ipynb",
    "02_fc_layer.ipynb",
    "03_softmax_cross_entropy.ipynb",
    "04_model_l2.ipynb",
)

RELU_FORWARD = "self.out = np.maximum(z, 0)"
RELU_BACKWARD = "d_z = d_prev * (self.out > 0)"
SIGMOID_FORWARD = "self.out = np.where(z >= 0, 1 / (1 + e), e / (1 + e))"
SIGMOID_BACKWARD = "d_z = d_prev * self.out * (1 - self.out)"
TANH_FORWARD = "self.out = np.sign(z) * ((1 - e) / (1 + e))"
TANH_BACKWARD = "d_z = d_prev * (1 - self.out * self.out)"
FC_FORWARD = "out = self.x @ self.W + self.b"
FC_FLATTEN = "self.x = x.reshape(x.shape[0], -1)"
FC_DW = (
    "self.dW = self.x.T @ d_prev\n        if reg_lambda:\n"
    "            self.dW += reg_lambda * self.W  # in place: no second weight-sized temporary"
)
FC_DB = "self.db = d_prev.sum(axis=0)"
FC_DX = "d_x = (d_prev @ self.W.T).reshape(self.input_shape)"
FC_UPDATE = "self.W -= learning_rate * self.dW"
SOFTMAX_SHIFT = "shifted = z - z.max(axis=1, keepdims=True)"
SOFTMAX_NORMALISE = "return exp / exp.sum(axis=1, keepdims=True)"
CE_LOSS = "self.loss = -np.sum(y * np.log(y_hat + EPS)) / y.shape[0]"
SOFTMAX_BACKWARD = "d_x = (self.y_hat - self.y) / self.y.shape[0]"
L2_TERM = "loss = loss + 0.5 * reg_lambda * squared_weights"
L2_SUM = "squared_weights = sum(np.vdot(layer.W, layer.W) for layer in self.layers.values()"

# (case id, notebook, replacements, test cell, a fragment of the message the student must see)
MISTAKES = [
    ("relu-abs", NB1, [(RELU_FORWARD, "self.out = np.abs(z)")], "test_relu_forward", "you returned |z|"),
    (
        "relu-in-place",
        NB1,
        [(RELU_FORWARD, "z[z < 0] = 0\n        self.out = z")],
        "test_relu_forward",
        "modified its input array in place",
    ),
    ("relu-np-max", NB1, [(RELU_FORWARD, "self.out = np.max(z, 0)")], "test_relu_forward", "np.maximum"),
    (
        "relu-not-written",
        NB1,
        [(RELU_FORWARD, "raise NotImplementedError()")],
        "test_relu_forward",
        "not written yet: fill in its EDIT HERE region",
    ),
    (
        "relu-greater-equal",
        NB1,
        [(RELU_FORWARD, "self.z = z\n        " + RELU_FORWARD), (RELU_BACKWARD, "d_z = d_prev * (self.z >= 0)")],
        "test_relu_backward",
        "you probably wrote >= instead of >",
    ),
    (
        "relu-out-greater-equal",
        NB1,
        [(RELU_BACKWARD, "d_z = d_prev * (self.out >= 0)")],
        "test_relu_backward",
        "ReLU's output is never negative",
    ),
    (
        "relu-no-chain-rule",
        NB1,
        [(RELU_BACKWARD, "d_z = (self.out > 0).astype(float)")],
        "test_relu_backward",
        "multiplies it by d_prev",
    ),
    ("relu-forgot-return", NB1, [(RELU_BACKWARD, "d_z = None")], "test_relu_backward", "is None"),
    (
        "sigmoid-naive",
        NB1,
        [(SIGMOID_FORWARD, "self.out = 1 / (1 + np.exp(-z))")],
        "test_sigmoid_forward",
        "exp(1000) overflows",
    ),
    (
        "sigmoid-where-both-branches",
        NB1,
        [(SIGMOID_FORWARD, "self.out = np.where(z >= 0, 1 / (1 + np.exp(-z)), np.exp(z) / (1 + np.exp(z)))")],
        "test_sigmoid_forward",
        "np.where(condition, a, b) computes both a and b",
    ),
    (
        "sigmoid-sign",
        NB1,
        [(SIGMOID_FORWARD, "self.out = np.where(z >= 0, e / (1 + e), 1 / (1 + e))")],
        "test_sigmoid_forward",
        "sigmoid(-z)",
    ),
    (
        "sigmoid-derivative-of-z",
        NB1,
        [
            (SIGMOID_FORWARD, "self.z = z\n        " + SIGMOID_FORWARD),
            (SIGMOID_BACKWARD, "d_z = d_prev * self.z * (1 - self.z)"),
        ],
        "test_sigmoid_backward",
        "not with z",
    ),
    (
        "tanh-naive",
        NB1,
        [(TANH_FORWARD, "self.out = (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z))")],
        "test_tanh_forward",
        "overflows: rewrite tanh",
    ),
    (
        "tanh-where-both-branches",
        NB1,
        [
            (
                TANH_FORWARD,
                "self.out = np.where(z >= 0, (1 - np.exp(-2 * z)) / "
                "(1 + np.exp(-2 * z)), (np.exp(2 * z) - 1) / (np.exp(2 * z) + 1))",
            )
        ],
        "test_tanh_forward",
        "np.where(condition, a, b) computes both a and b",
    ),
    ("tanh-library", NB1, [(TANH_FORWARD, "self.out = np.tanh(z)")], "test_tanh_forward", "np.tanh is not allowed"),
    (
        "tanh-half-argument",
        NB1,
        [
            (
                TANH_FORWARD,
                "self.out = 2 * np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), "
                "np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z)))) - 1",
            )
        ],
        "test_tanh_forward",
        "tanh(z/2)",
    ),
    (
        "tanh-not-squared",
        NB1,
        [(TANH_BACKWARD, "d_z = d_prev * (1 - self.out)")],
        "test_tanh_backward",
        "a square is missing",
    ),
    ("fc-no-bias", NB2, [(FC_FORWARD, "out = self.x @ self.W")], "test_fc_forward", "the bias b is missing"),
    ("fc-no-flatten", NB2, [(FC_FLATTEN, "self.x = x")], "test_fc_forward", "flatten it to (n, -1) first"),
    (
        "fc-squeeze-batch-of-one",
        NB2,
        [(FC_FLATTEN, "self.x = x.reshape(x.shape[0], -1).squeeze()")],
        "test_fc_forward",
        "batch of size 1",
    ),
    ("fc-dx-transposed", NB2, [(FC_DX, "d_x = self.W @ d_prev.T")], "test_fc_backward_input", "transposed"),
    (
        "fc-dx-over-n",
        NB2,
        [(FC_DX, "d_x = (d_prev @ self.W.T).reshape(self.input_shape) / d_prev.shape[0]")],
        "test_fc_backward_input",
        "factor of the batch size",
    ),
    (
        "fc-dw-no-l2",
        NB2,
        [(FC_DW, "self.dW = self.x.T @ d_prev")],
        "test_fc_backward_params",
        "must include reg_lambda * W",
    ),
    (
        "fc-dw-double-l2",
        NB2,
        [(FC_DW, "self.dW = self.x.T @ d_prev + 2 * reg_lambda * self.W")],
        "test_fc_backward_params",
        "not 2 * reg_lambda * W",
    ),
    (
        "fc-dw-over-n",
        NB2,
        [(FC_DW, "self.dW = self.x.T @ d_prev / len(d_prev) + reg_lambda * self.W")],
        "test_fc_backward_params",
        "factor of the batch size",
    ),
    (
        "fc-dw-transposed",
        NB2,
        [(FC_DW, "self.dW = d_prev.T @ self.x + reg_lambda * self.W.T")],
        "test_fc_backward_params",
        "transposed",
    ),
    (
        "fc-db-mean",
        NB2,
        [(FC_DB, "self.db = d_prev.mean(axis=0)")],
        "test_fc_backward_params",
        "db is off by a factor of the batch size",
    ),
    (
        "fc-db-regularised",
        NB2,
        [(FC_DB, "self.db = d_prev.sum(axis=0) + reg_lambda * self.b")],
        "test_fc_backward_params",
        "biases are not regularised",
    ),
    (
        "fc-update-uphill",
        NB2,
        [(FC_UPDATE, "self.W += learning_rate * self.dW")],
        "test_fc_update",
        "*against* the gradient",
    ),
    ("softmax-no-shift", NB3, [(SOFTMAX_SHIFT, "shifted = z")], "test_softmax", "exp(1000) overflows"),
    (
        "softmax-axis-0",
        NB3,
        [(SOFTMAX_NORMALISE, "return exp / exp.sum(axis=0, keepdims=True)"), (SOFTMAX_SHIFT, "shifted = z")],
        "test_softmax",
        "normalised over axis 0",
    ),
    (
        "softmax-global-sum",
        NB3,
        [(SOFTMAX_NORMALISE, "return exp / exp.sum()"), (SOFTMAX_SHIFT, "shifted = z")],
        "test_softmax",
        "sum over the whole batch",
    ),
    (
        "softmax-no-keepdims",
        NB3,
        [(SOFTMAX_NORMALISE, "return exp / exp.sum(axis=1)")],
        "test_softmax",
        "softmax(z) raised ValueError",
    ),
    (
        "ce-sum-not-mean",
        NB3,
        [(CE_LOSS, "self.loss = -np.sum(y * np.log(y_hat + EPS))")],
        "test_ce_loss",
        "*mean* over the batch",
    ),
    (
        "ce-mean-over-entries",
        NB3,
        [(CE_LOSS, "self.loss = -np.mean(y * np.log(y_hat + EPS))")],
        "test_ce_loss",
        "not by the number of entries",
    ),
    (
        "ce-no-eps",
        NB3,
        [(CE_LOSS, "self.loss = -np.sum(y * np.log(y_hat)) / y.shape[0]")],
        "test_ce_loss",
        "log(0) is -inf",
    ),
    (
        "softmax-in-place",
        NB3,
        [(SOFTMAX_SHIFT, "z -= z.max(axis=1, keepdims=True)\n    shifted = z")],
        "test_softmax",
        "softmax modified its input array in place",
    ),
    (
        "softmax-backward-no-n",
        NB3,
        [(SOFTMAX_BACKWARD, "d_x = self.y_hat - self.y")],
        "test_softmax_backward",
        "off by a factor of the batch size n",
    ),
    (
        "softmax-backward-sign",
        NB3,
        [(SOFTMAX_BACKWARD, "d_x = (self.y - self.y_hat) / self.y.shape[0]")],
        "test_softmax_backward",
        "sign is flipped",
    ),
    ("l2-missing", NB4, [(L2_TERM, "loss = loss")], "test_l2_loss", "the L2 term is missing"),
    (
        "l2-spectral-norm",
        NB4,
        [(L2_SUM, "squared_weights = sum(np.linalg.norm(layer.W, 2) ** 2 for layer in self.layers.values()")],
        "test_l2_loss",
        "spectral",
    ),
    (
        "l2-square-of-sum",
        NB4,
        [(L2_SUM, "squared_weights = sum(np.sum(layer.W) ** 2 for layer in self.layers.values()")],
        "test_l2_loss",
        "squares the *sum* of the entries",
    ),
    ("l2-no-half", NB4, [(L2_TERM, "loss = loss + reg_lambda * squared_weights")], "test_l2_loss", "the 1/2"),
    (
        "l2-with-biases",
        NB4,
        [
            (
                L2_TERM,
                L2_TERM + "\n        loss = loss + 0.5 * reg_lambda * sum(np.sum(l.b ** 2) "
                "for l in self.layers.values() if hasattr(l, 'b'))",
            )
        ],
        "test_l2_loss",
        "biases are not regularised",
    ),
    (
        "l2-spectral-gradient-check",
        NB4,
        [(L2_SUM, "squared_weights = sum(np.linalg.norm(layer.W, 2) ** 2 for layer in self.layers.values()")],
        "test_model_gradient_check",
        "do not describe the same function",
    ),
]


# Mistakes that only the hidden tests catch (every other one is caught by the test cell as students see it).
HIDDEN_ONLY = {"fc-squeeze-batch-of-one"}


@pytest.mark.parametrize(
    "case, notebook, replacements, test_cell, message", MISTAKES, ids=[case[0] for case in MISTAKES]
)
def test_mistake_is_caught_with_its_message(case, notebook, replacements, test_cell, message):
    results = run_notebook(notebook, replacements, hidden_tests=case in HIDDEN_ONLY)
    error = results[test_cell]
    assert isinstance(error, CheckFailed), f"{case}: {test_cell} should fail with a CheckFailed, got {error!r}"
    assert message in str(error), f"{case}: message was: {error}"
    assert len(str(error)) < 400, "a failure message should be one or two sentences"


def test_in_place_softmax_costs_only_the_softmax_test():
    """An in-place softmax is named by the softmax test; a correct backward still passes its own test."""
    results = run_notebook(
        NB3, [(SOFTMAX_SHIFT, "z -= z.max(axis=1, keepdims=True)\n    shifted = z")], hidden_tests=False
    )
    assert isinstance(results["test_softmax"], CheckFailed), results
    assert results["test_ce_loss"] is None and results["test_softmax_backward"] is None, results


@pytest.mark.parametrize(
    "notebook, replacements, test_cell",
    [
        (
            NB1,
            [
                (
                    SIGMOID_FORWARD,
                    "z *= -1\n        np.exp(z, out=z)\n        z += 1\n        np.reciprocal(z, out=z)\n"
                    "        self.out = z.copy()",
                )
            ],
            "test_sigmoid_backward",
        ),
        (
            NB1,
            [(TANH_FORWARD, "t = np.sign(z) * ((1 - e) / (1 + e))\n        z[...] = t\n        self.out = t")],
            "test_tanh_backward",
        ),
    ],
)
def test_an_in_place_forward_does_not_fail_a_correct_backward(notebook, replacements, test_cell):
    results = run_notebook(notebook, replacements)
    assert results[test_cell] is None, results


ALTERNATIVES = [
    (
        "relu-mask",
        NB1,
        [(RELU_FORWARD, "self.out = z * (z > 0)"), (RELU_BACKWARD, "d_z = np.where(self.out > 0, d_prev, 0)")],
    ),
    ("sigmoid-logaddexp", NB1, [(SIGMOID_FORWARD, "self.out = np.exp(-np.logaddexp(0, -z))")]),
    (
        "sigmoid-errstate",
        NB1,
        [(SIGMOID_FORWARD, "with np.errstate(over='ignore'):\n            self.out = 1 / (1 + np.exp(-z))")],
    ),
    (
        "tanh-where",
        NB1,
        [
            (TANH_FORWARD, "t = (1 - e) / (1 + e)\n        self.out = np.where(z < 0, -t, t)"),
            (TANH_BACKWARD, "d_z = d_prev - d_prev * self.out ** 2"),
        ],
    ),
    (
        "fc-dot-and-flat-dx",
        NB2,
        [
            (FC_FORWARD, "out = np.dot(self.x, self.W) + self.b"),
            (FC_DX, "d_x = np.dot(d_prev, self.W.T)"),
            (FC_DB, "self.db = np.sum(d_prev, axis=0)"),
            (FC_UPDATE, "self.W = self.W - learning_rate * self.dW"),
        ],
    ),
    (
        "softmax-logsumexp",
        NB3,
        [
            (SOFTMAX_NORMALISE, "return np.exp(shifted - np.log(exp.sum(axis=1, keepdims=True)))"),
            (CE_LOSS, "self.loss = -np.mean(np.sum(y * np.log(y_hat + EPS), axis=1))"),
        ],
    ),
    (
        "l2-frobenius",
        NB4,
        [(L2_SUM, "squared_weights = sum(np.linalg.norm(layer.W) ** 2 for layer in self.layers.values()")],
    ),
]


@pytest.mark.parametrize("case, notebook, replacements", ALTERNATIVES, ids=[case[0] for case in ALTERNATIVES])
def test_correct_alternative_passes(case, notebook, replacements):
    results = run_notebook(notebook, replacements)
    failures = {cell: error for cell, error in results.items() if error is not None}
    assert not failures, f"{case} is correct but failed: {failures}"


@pytest.mark.parametrize("notebook", [NB1, NB2, NB3, NB4])
def test_reference_passes_every_test_in_process(notebook):
    results = run_notebook(notebook)
    assert results and all(error is None for error in results.values()), results


TAMPERING = [
    (
        "rebind-np-allclose-and-testing",
        "np.allclose = lambda *args, **kwargs: True\n"
        "np.testing.assert_allclose = lambda *args, **kwargs: None\n"
        "np.array_equal = lambda *args, **kwargs: True\n"
        "np.isfinite = lambda x: np.ones(np.shape(x), dtype=bool)\n",
    ),
    (
        "rebind-checks-functions",
        "from dnn_course import checks as _c\n"
        "for _name in ['check_close', 'check_shape', 'check_gradient', 'check_no_warnings']:\n"
        "    try:\n"
        "        setattr(_c, _name, lambda *args, **kwargs: None)\n"
        "    except AttributeError:\n"
        "        pass\n",
    ),
]


@pytest.mark.parametrize("case, injected", TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampering_in_a_student_cell_does_not_turn_a_failure_into_a_pass(case, injected):
    saved = {name: getattr(np, name) for name in ("allclose", "array_equal", "isfinite")}
    saved_testing = np.testing.assert_allclose
    try:
        # a wrong ReLU (|z|) plus the tampering code at module level, after the Sigmoid class
        results = run_notebook(
            NB1, [(RELU_FORWARD, "self.out = np.abs(z)"), ('return "Sigmoid"', 'return "Sigmoid"\n\n' + injected)]
        )
        rebound_numpy = np.allclose(0, 1)  # True only while the tampering is in force
    finally:
        for name, value in saved.items():
            setattr(np, name, value)
        np.testing.assert_allclose = saved_testing
    assert not [key for key in results if key.startswith("cell:")], results  # the tampering code ran
    assert rebound_numpy == case.startswith("rebind-np"), case
    assert isinstance(results["test_relu_forward"], CheckFailed), results


def test_softmax_overflow_message_names_the_mistake_without_the_fix():
    """check_probabilities on an overflowed softmax names the overflow and the chapter's section; like the
    other messages (9a49f4f) it does not hand out the shift that notebook 03 asks the student to find."""
    from dnn_course import checks

    with np.errstate(over="ignore", invalid="ignore"):
        z = np.array([[1000.0, 0.0], [0.0, 1.0]])
        overflowed = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    with pytest.raises(CheckFailed) as failure:
        checks.check_probabilities(overflowed, "softmax(±1000)")
    message = str(failure.value)
    assert "Softmax overflowed: exp of a large score (1000, say) is inf, and inf / inf is NaN." in message
    assert "Chapter 3's section 'Overflow, and the shift that prevents it'" in message
    assert not any(word in message for word in ("maximum", "np.max", "subtract"))
    import re
    from pathlib import Path

    chapter = (Path(__file__).resolve().parent.parent / "book" / "03_softmax_cross_entropy.md").read_text()
    assert re.search(r"^### Overflow, and the shift that prevents it$", chapter, re.M)  # the section it names
