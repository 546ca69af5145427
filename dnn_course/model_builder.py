"""Build the brief's multi-layer perceptron from any implementation of its classes.

``impl`` is a namespace (a module, or anything with attributes) that provides
``FCLayer``, ``ReLU``, ``Sigmoid``, ``Tanh``, ``SoftmaxLayer`` and
``ClassifierModel``: the student's own notebook code imported with
``dnn_course.notebook_import.import_notebooks``, or the instructors'
reference implementation. The same call with the same seed builds the same
network from either, so their results can be compared.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ACTIVATIONS", "build_classifier", "describe_structure"]

#: activation name (lower case) -> class name in the implementation namespace
ACTIVATIONS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh"}


def build_classifier(impl, layer_sizes: Sequence[int], activation: str, *, seed: int = 0, dtype=np.float32):
    """A ``ClassifierModel``: FC, activation, FC, activation, ..., FC, softmax.

    For ``layer_sizes = [784, 500, 500, 10]`` and ``activation = "relu"`` the layers
    are named ``fc1`` (784 -> 500), ``relu1``, ``fc2`` (500 -> 500), ``relu2``,
    ``fc3`` (500 -> 10) and ``softmax``. All ``FCLayer``s share one generator
    ``np.random.default_rng(seed)``, drawn from in layer order, so the
    initial weights depend only on the sizes and the seed.

    Args:
        impl: namespace with the brief's classes (see the module docstring).
        layer_sizes: ``[input_dim, hidden_1, ..., num_classes]``, at least two
            positive integers.
        activation: ``"relu"``, ``"sigmoid"`` or ``"tanh"`` (any case), used after
            every fully-connected layer but the last.
        seed: seeds the weight initialisation.
        dtype: dtype of the weights (``np.float32`` for training speed,
            ``np.float64`` for gradient checks).

    Returns:
        The model, an ``impl.ClassifierModel``.
    """
    sizes = _check_sizes(layer_sizes)
    activation_class = _activation_class(impl, activation)
    fc_class, softmax_class, model_class = (
        _require(impl, name) for name in ("FCLayer", "SoftmaxLayer", "ClassifierModel")
    )
    prefix = activation.lower()
    rng = np.random.default_rng(seed)
    model = model_class()
    n_fc = len(sizes) - 1
    for i in range(n_fc):
        model.add_layer(f"fc{i + 1}", fc_class(sizes[i], sizes[i + 1], rng=rng, dtype=dtype))
        if i < n_fc - 1:
            model.add_layer(f"{prefix}{i + 1}", activation_class())
    model.add_layer("softmax", softmax_class())
    return model


def describe_structure(layer_sizes: Sequence[int], activation: str) -> str:
    """A short label such as ``"784-500-500-10 ReLU"``.

    Without hidden layers (``[784, 10]``) there is no activation to name: ``"784-10"``.
    """
    sizes = _check_sizes(layer_sizes)
    name = _activation_name(activation)
    text = "-".join(str(s) for s in sizes)
    return text if len(sizes) == 2 else f"{text} {name}"


def _activation_name(activation: str) -> str:
    key = activation.lower() if isinstance(activation, str) else None
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)} (any case)")
    return ACTIVATIONS[key]


def _activation_class(impl, activation: str):
    return _require(impl, _activation_name(activation))


def _require(impl, name: str):
    try:
        return getattr(impl, name)
    except AttributeError:
        raise AttributeError(
            f"the implementation {getattr(impl, '__name__', impl)!r} has no {name}; it must define "
            "FCLayer, ReLU, Sigmoid, Tanh, SoftmaxLayer and ClassifierModel "
            "(run the cells of the exercise notebooks that define them, or import them with "
            "dnn_course.notebook_import.import_notebooks)"
        ) from None


def _check_sizes(layer_sizes: Sequence[int]) -> list[int]:
    sizes = list(layer_sizes)
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size, got {sizes}")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ValueError(f"layer sizes must be positive integers, got {sizes}")
    return [int(s) for s in sizes]
