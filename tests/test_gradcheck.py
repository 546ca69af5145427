"""Tests of dnn_course.gradcheck: numerical gradients, relative error, layer and model checks."""

from collections import OrderedDict

import numpy as np
import pytest

from dnn_course.gradcheck import (
    BUG_ABOVE,
    PASS_BELOW,
    check_layer_gradients,
    check_model_gradients,
    numerical_gradient,
    relative_error,
    verdict,
)

# --- small stand-in layers with the course API; `bug` switches in a known mistake ---


class Linear:
    """FCLayer stand-in: out = x @ W + b, W (d_in, d_out), b (d_out,)."""

    def __init__(self, d_in, d_out, seed=0, dtype=np.float64, bug=None):
        rng = np.random.default_rng(seed)
        self.W = rng.standard_normal((d_in, d_out)).astype(dtype)
        self.b = rng.standard_normal(d_out).astype(dtype)
        self.bug = bug

    def forward(self, x):
        self.x = x.reshape(len(x), -1)
        return self.x @ self.W + self.b

    def backward(self, d_prev, reg_lambda):
        self.dW = self.x.T @ d_prev + reg_lambda * self.W
        self.db = d_prev.sum(axis=0)
        if self.bug == "dW divided by batch size":
            self.dW = self.dW / len(self.x)
        if self.bug == "no L2 in dW":
            self.dW = self.x.T @ d_prev
        return d_prev @ self.W.T

    def update(self, learning_rate):
        self.W -= learning_rate * self.dW
        self.b -= learning_rate * self.db


class Tanh:
    def __init__(self, bug=None):
        self.bug = bug

    def forward(self, z):
        self.out = np.tanh(z)
        return self.out

    def backward(self, d_prev, reg_lambda):
        if self.bug == "forgot the square":
            return d_prev * (1 - self.out)
        return d_prev * (1 - self.out**2)


class Softmax:
    def forward(self, x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.y_hat = e / e.sum(axis=1, keepdims=True)
        return self.y_hat

    def ce_loss(self, y_hat, y):
        return -np.sum(y * np.log(y_hat + 1e-10)) / len(y)

    def backward(self, d_prev, reg_lambda):
        return (self.y_hat - d_prev) / len(d_prev)


class Model:
    """ClassifierModel stand-in; l2="spectral" reproduces the original template's bug."""

    def __init__(self, layers, l2="sum of squares"):
        self.layers = OrderedDict(layers)
        self.softmax_layer = Softmax()
        self.l2 = l2

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return self.softmax_layer.forward(x)

    def forward(self, x, y, reg_lambda):
        self.y = y
        loss = self.softmax_layer.ce_loss(self.predict(x), y)
        for layer in self.layers.values():
            if hasattr(layer, "W"):
                if self.l2 == "spectral":
                    loss += reg_lambda / 2 * np.linalg.norm(layer.W, 2)
                else:
                    loss += reg_lambda / 2 * np.sum(layer.W**2)
        return loss

    def backward(self, reg_lambda):
        d = self.softmax_layer.backward(self.y, reg_lambda)
        for layer in reversed(self.layers.values()):
            d = layer.backward(d, reg_lambda)


def small_model(dtype=np.float64, l2="sum of squares", bug=None):
    return Model(
        [
            ("fc1", Linear(6, 5, seed=1, dtype=dtype, bug=bug)),
            ("tanh1", Tanh()),
            ("fc2", Linear(5, 4, seed=2, dtype=dtype)),
        ],
        l2=l2,
    )


def batch(n=7, d=6, c=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), np.eye(c)[rng.integers(0, c, n)]


# --- numerical_gradient ------------------------------------------------------------


def test_numerical_gradient_is_exact_for_quadratics():
    # the centred difference of a quadratic has no truncation error: d/dx sum(x^2) = 2x
    x = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -0.25]])
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v**2), x), 2 * x, rtol=0, atol=1e-9)


def test_numerical_gradient_of_known_functions():
    x = np.array([0.3, -1.2, 2.0])
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(np.sin(v)), x), np.cos(x), atol=1e-9)
    c = np.array([2.0, -3.0, 0.5])
    np.testing.assert_allclose(numerical_gradient(lambda v: c @ v, x), c, atol=1e-9)
    # product of entries: d/dx_i = product of the others
    np.testing.assert_allclose(
        numerical_gradient(lambda v: np.prod(v), x), [-1.2 * 2.0, 0.3 * 2.0, 0.3 * -1.2], atol=1e-9
    )


def test_numerical_gradient_restores_input_exactly_even_when_f_fails():
    x = np.random.default_rng(0).standard_normal((3, 4))
    original = x.copy()
    numerical_gradient(lambda v: np.sum(np.exp(v)), x)
    np.testing.assert_array_equal(x, original)

    calls = []

    def fails_on_third_call(v):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return float(np.sum(v))

    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient(fails_on_third_call, x)
    np.testing.assert_array_equal(x, original)


def test_numerical_gradient_refuses_a_function_that_changes_its_input_and_restores_it():
    def in_place_softmax_loss(v):  # a student's softmax that shifts its input in place
        v -= v.max(axis=1, keepdims=True)
        return float(-np.log(np.exp(v[:, 0]) / np.exp(v).sum(axis=1)).sum())

    x = np.random.default_rng(1).standard_normal((2, 3))
    original = x.copy()
    with pytest.raises(ValueError, match="changed its argument in place .* must leave its input unchanged"):
        numerical_gradient(in_place_softmax_loss, x)
    np.testing.assert_array_equal(x, original)
    # the same loss on a copy is fine, and equals softmax's gradient (y_hat - y) summed over the rows
    y_hat = np.exp(original) / np.exp(original).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        numerical_gradient(lambda v: in_place_softmax_loss(v.copy()), x), y_hat - np.eye(3)[[0, 0]], atol=1e-8
    )


def test_numerical_gradient_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(np.sum, np.ones(3, dtype=np.float32))


# --- relative_error ----------------------------------------------------------------


def test_relative_error_known_values():
    assert relative_error([1.0, 2.0], [1.0, 2.5]) == pytest.approx(0.5 / 4.5)
    assert relative_error(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0
    assert relative_error([1.0, -1.0], [-1.0, 1.0]) == 1.0
    # a tiny nonzero entry where 0 is expected barely counts (max-norm form)
    assert relative_error([1.0, 0.0], [1.0, 1e-12]) < 1e-11


def test_one_rule_reads_a_relative_error():
    assert (PASS_BELOW, BUG_ABOVE) == (1e-7, 1e-4)
    assert [verdict(e) for e in (0.0, 3e-10, 9.9e-8, 1e-7, 3e-6, 1e-4, 2e-4, 1.0, float("nan"))] == [
        "pass",
        "pass",
        "pass",
        "look closer",
        "look closer",
        "look closer",
        "bug",
        "bug",
        "bug",
    ]


def test_the_exercises_checks_use_the_same_rule():
    from dnn_course import checks

    x = np.linspace(-1.0, 1.0, 5)
    checks.check_gradient(x * (1 + 4e-8), x, "g")  # relative error 2e-8: passes
    with pytest.raises(checks.CheckFailed, match=r"relative error 2\.0e-07; below 1e-07 passes, above 1e-04 is a bug"):
        checks.check_gradient(x * (1 + 4e-7), x, "g")


def test_relative_error_needs_same_shapes():
    with pytest.raises(ValueError, match="same shape"):
        relative_error(np.zeros(3), np.zeros((3, 1)))


# --- check_layer_gradients -------------------------------------------------------


def test_correct_fc_layer_passes_with_and_without_l2():
    x = np.random.default_rng(3).standard_normal((5, 2, 3))  # flattened to (5, 6) by the layer
    for reg_lambda in (0.0, 0.3):
        errors = check_layer_gradients(Linear(6, 4), x, reg_lambda=reg_lambda)
        assert set(errors) == {"x", "W", "b"}
        assert max(errors.values()) < 1e-8


def test_dw_off_by_batch_size_is_caught():
    x = np.random.default_rng(3).standard_normal((8, 6))
    errors = check_layer_gradients(Linear(6, 4, bug="dW divided by batch size"), x)
    assert errors["W"] > 0.5  # 1 - 1/8 over 1 + 1/8
    assert errors["x"] < 1e-8 and errors["b"] < 1e-8


def test_missing_l2_gradient_is_caught_only_with_l2_on():
    x = np.random.default_rng(3).standard_normal((8, 6))
    assert check_layer_gradients(Linear(6, 4, bug="no L2 in dW"), x, reg_lambda=0.0)["W"] < 1e-8
    assert check_layer_gradients(Linear(6, 4, bug="no L2 in dW"), x, reg_lambda=1.0)["W"] > 1e-2


def test_activation_checked_on_x_only():
    x = np.random.default_rng(4).standard_normal((4, 5))
    good = check_layer_gradients(Tanh(), x)
    assert set(good) == {"x"} and good["x"] < 1e-8
    assert check_layer_gradients(Tanh(bug="forgot the square"), x)["x"] > 1e-2


def test_softmax_layer_checked_against_its_cross_entropy():
    x = np.random.default_rng(5).standard_normal((6, 10))
    assert check_layer_gradients(Softmax(), x)["x"] < 1e-7

    class NotAveraged(Softmax):
        def backward(self, d_prev, reg_lambda):
            return self.y_hat - d_prev

    assert check_layer_gradients(NotAveraged(), x)["x"] > 0.5


def test_layer_check_leaves_weights_unchanged_and_refuses_float32():
    layer = Linear(6, 4)
    W, b = layer.W.copy(), layer.b.copy()
    check_layer_gradients(layer, np.ones((2, 6)), reg_lambda=0.1)
    np.testing.assert_array_equal(layer.W, W)
    np.testing.assert_array_equal(layer.b, b)
    with pytest.raises(TypeError, match="Linear.W is float32.*dtype=np.float64"):
        check_layer_gradients(Linear(6, 4, dtype=np.float32), np.ones((2, 6)))


# --- check_model_gradients --------------------------------------------------------


def test_correct_model_passes_with_l2():
    x, y = batch()
    errors = check_model_gradients(small_model(), x, y, reg_lambda=0.1)
    assert set(errors) == {"fc1.W", "fc1.b", "fc2.W", "fc2.b"}
    assert max(errors.values()) < 1e-7


def test_spectral_norm_l2_bug_of_the_original_template_is_caught():
    x, y = batch()
    errors = check_model_gradients(small_model(l2="spectral"), x, y, reg_lambda=0.1)
    assert errors["fc1.W"] > 1e-3 and errors["fc2.W"] > 1e-3
    assert errors["fc1.b"] < 1e-7  # biases carry no L2


def test_wrong_layer_gradient_is_caught_in_the_model():
    x, y = batch()
    errors = check_model_gradients(small_model(bug="dW divided by batch size"), x, y, reg_lambda=0.0)
    assert errors["fc1.W"] > 0.5 and errors["fc2.W"] < 1e-7


def test_sampling_entries_and_selecting_params():
    x, y = batch()
    model = small_model()
    calls = []
    forward = model.forward
    model.forward = lambda *args: calls.append(1) or forward(*args)
    W = model.layers["fc1"].W.copy()
    errors = check_model_gradients(model, x, y, reg_lambda=0.1, params=["fc1.W", "fc2"], max_entries_per_param=3)
    assert list(errors) == ["fc1.W", "fc2.W", "fc2.b"]
    assert max(errors.values()) < 1e-7
    assert len(calls) == 1 + 3 * 3 * 2  # one analytic pass, then 2 per sampled entry
    np.testing.assert_array_equal(model.layers["fc1"].W, W)


def test_model_check_errors_are_explained():
    x, y = batch()
    with pytest.raises(KeyError, match="no parameter 'fc3.W'.*fc1.W"):
        check_model_gradients(small_model(), x, y, reg_lambda=0.0, params=["fc3.W"])
    with pytest.raises(TypeError, match="fc1.W is float32.*build the model with dtype=np.float64"):
        check_model_gradients(small_model(dtype=np.float32), x, y, reg_lambda=0.0)


# --- the reference implementation -----------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_reference_model_gradients_with_l2(reference, activation):
    from dnn_course.model_builder import build_classifier

    model = build_classifier(reference, [12, 7, 5, 3], activation, seed=0, dtype=np.float64)
    x, y = batch(n=6, d=12, c=3)
    errors = check_model_gradients(model, x.reshape(6, 3, 4), y, reg_lambda=0.1)
    assert set(errors) == {f"fc{i}.{p}" for i in (1, 2, 3) for p in "Wb"}
    assert max(errors.values()) < 1e-7


def test_reference_layers_pass_their_checks(reference):
    rng = np.random.default_rng(1)
    fc = reference.FCLayer(12, 5, rng=rng, dtype=np.float64)
    assert max(check_layer_gradients(fc, rng.standard_normal((4, 3, 4)), reg_lambda=0.3).values()) < 1e-8
    for layer in (reference.ReLU(), reference.Sigmoid(), reference.Tanh(), reference.SoftmaxLayer()):
        assert check_layer_gradients(layer, rng.standard_normal((4, 5)))["x"] < 1e-7


def test_float32_reference_model_is_refused(reference):
    from dnn_course.model_builder import build_classifier

    model = build_classifier(reference, [4, 3], "relu", dtype=np.float32)
    with pytest.raises(TypeError, match="fc1.W is float32"):
        check_model_gradients(model, np.ones((2, 4)), np.eye(3)[[0, 1]], reg_lambda=0.0)
