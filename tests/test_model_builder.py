"""Tests of dnn_course.model_builder with a recording stand-in implementation."""

from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pytest

from dnn_course.model_builder import build_classifier, describe_structure


class FCLayer:
    def __init__(self, input_dim, output_dim, *, rng=None, dtype=np.float64):
        self.rng, self.dtype = rng, dtype
        self.W = (rng.standard_normal((input_dim, output_dim)) / np.sqrt(input_dim / 2)).astype(dtype)
        self.b = np.zeros(output_dim, dtype=dtype)


class ReLU: ...


class Sigmoid: ...


class Tanh: ...


class SoftmaxLayer: ...


class ClassifierModel:
    def __init__(self):
        self.layers = OrderedDict()
        self.softmax_layer = None

    def add_layer(self, name, layer):
        if isinstance(layer, SoftmaxLayer):
            self.softmax_layer = layer
        else:
            self.layers[name] = layer


def fake_impl(**without):
    """The stand-in classes as a namespace, leaving out those named as keywords."""
    classes = dict(
        FCLayer=FCLayer,
        ReLU=ReLU,
        Sigmoid=Sigmoid,
        Tanh=Tanh,
        SoftmaxLayer=SoftmaxLayer,
        ClassifierModel=ClassifierModel,
    )
    return SimpleNamespace(**{k: v for k, v in classes.items() if k not in without})


def test_layers_named_and_sized_like_the_brief():
    model = build_classifier(fake_impl(), [784, 500, 500, 10], "relu")
    assert list(model.layers) == ["fc1", "relu1", "fc2", "relu2", "fc3"]
    assert [model.layers[n].W.shape for n in ("fc1", "fc2", "fc3")] == [(784, 500), (500, 500), (500, 10)]
    assert isinstance(model.layers["relu1"], ReLU) and isinstance(model.layers["relu2"], ReLU)
    assert isinstance(model.softmax_layer, SoftmaxLayer)


@pytest.mark.parametrize("name, cls", [("Sigmoid", Sigmoid), ("TANH", Tanh), ("ReLU", ReLU)])
def test_activation_is_case_insensitive(name, cls):
    model = build_classifier(fake_impl(), [4, 3, 2], name)
    assert list(model.layers) == ["fc1", f"{name.lower()}1", "fc2"]
    assert isinstance(model.layers[f"{name.lower()}1"], cls)


def test_one_generator_shared_and_seed_determines_weights():
    model = build_classifier(fake_impl(), [5, 4, 3, 2], "tanh", seed=11, dtype=np.float64)
    fcs = [model.layers[n] for n in ("fc1", "fc2", "fc3")]
    assert fcs[0].rng is fcs[1].rng is fcs[2].rng
    assert all(fc.dtype is np.float64 and fc.W.dtype == np.float64 for fc in fcs)
    # the layers draw in order from np.random.default_rng(seed)
    rng = np.random.default_rng(11)
    for fc, (i, o) in zip(fcs, [(5, 4), (4, 3), (3, 2)], strict=False):
        np.testing.assert_array_equal(fc.W, rng.standard_normal((i, o)) / np.sqrt(i / 2))
    other = build_classifier(fake_impl(), [5, 4, 3, 2], "tanh", seed=12)
    assert not np.allclose(other.layers["fc1"].W, fcs[0].W)


def test_default_dtype_is_float32():
    model = build_classifier(fake_impl(), [3, 2], "relu")
    assert model.layers["fc1"].W.dtype == np.float32
    assert list(model.layers) == ["fc1"]  # no hidden layer, no activation


@pytest.mark.parametrize(
    "sizes, activation, error, match",
    [
        ([784, 10], "softmax", ValueError, "unknown activation 'softmax'; choose one of relu, sigmoid, tanh"),
        ([784, 10], None, ValueError, "unknown activation None"),
        ([784], "relu", ValueError, "at least an input and an output"),
        ([784, 0, 10], "relu", ValueError, "positive integers"),
        ([784, 2.5, 10], "relu", ValueError, "positive integers"),
    ],
)
def test_bad_arguments_are_explained(sizes, activation, error, match):
    with pytest.raises(error, match=match):
        build_classifier(fake_impl(), sizes, activation)


def test_missing_class_in_the_implementation_is_named():
    with pytest.raises(AttributeError, match="has no Tanh"):
        build_classifier(fake_impl(Tanh=None), [4, 3, 2], "tanh")
    with pytest.raises(AttributeError, match="has no ClassifierModel"):
        build_classifier(fake_impl(ClassifierModel=None), [4, 2], "relu")


def test_describe_structure():
    assert describe_structure([784, 500, 500, 10], "relu") == "784-500-500-10 ReLU"
    assert describe_structure((784, 256, 10), "SIGMOID") == "784-256-10 Sigmoid"
    assert describe_structure([784, 10], "tanh") == "784-10"
    with pytest.raises(ValueError, match="unknown activation"):
        describe_structure([784, 10], "gelu")


def test_builds_the_reference_network():
    from dnn_course.reference import load_reference

    try:
        nn = load_reference()
    except FileNotFoundError as err:  # students' copies have no solutions/
        pytest.skip(str(err))
    model = build_classifier(nn, [784, 32, 16, 10], "Sigmoid", seed=3, dtype=np.float64)
    assert list(model.layers) == ["fc1", "sigmoid1", "fc2", "sigmoid2", "fc3"]
    assert isinstance(model.layers["sigmoid2"], nn.Sigmoid) and isinstance(model.softmax_layer, nn.SoftmaxLayer)
    assert model.layers["fc2"].W.shape == (32, 16) and model.layers["fc2"].W.dtype == np.float64
    probabilities = model.predict(np.random.default_rng(0).random((5, 28, 28)))
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    again = build_classifier(nn, [784, 32, 16, 10], "sigmoid", seed=3, dtype=np.float64)
    np.testing.assert_array_equal(again.layers["fc3"].W, model.layers["fc3"].W)
