"""Record the numbers that chapters 1-6 of the book show, computed with the reference solution.

The chapters build and run without ``solutions/`` (the students' kit and a public build of the
site have no such folder, and the site must never show answer code). Whatever a chapter needs
from the reference implementation (a printed output, a gradient check, a training curve) is
computed here, once, and saved to ``book/results/<chapter>.json``; the chapter reads that file.
Curves of formulas that a chapter states anyway (the activations, their derivatives, the loss
of one example) are drawn by the chapter itself in plain NumPy.

    python scripts/make_book_results.py           # rewrite book/results/0[1-6]_*.json (about 40 s)
    python scripts/make_book_results.py --check   # exit 1 if a committed file no longer matches
    python scripts/make_book_results.py --out DIR # write elsewhere

(Measured with ``--check``: 23 s of CPU time in all on the 2-core development machine under load,
of which chapter 5's saturation runs, 30 epochs of the brief's network on 10,000 images, take 10 to 16 s.)

Run it (and rebuild the book) whenever the reference solution, the training loop, the data
loader or the gradient checker changes; ``tests/test_book_without_solutions.py`` runs
``--check``. Training runs in float32 with one BLAS thread; on another machine the BLAS may
round differently, so ``--check`` allows the tolerance of :func:`same` (see there).

Each file holds plain JSON numbers, with the code that produced them quoted in this script
only: the chapters say where their numbers come from, and nothing in them is an exercise's
answer.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from dnn_course.datasets import load_dataset, one_hot, train_val_split
from dnn_course.evaluate import ACTIVATIONS, predict_classes
from dnn_course.gradcheck import check_layer_gradients, check_model_gradients
from dnn_course.model_builder import build_classifier
from dnn_course.reference import load_reference
from dnn_course.training import train

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "book" / "results"
COMMAND = "python scripts/make_book_results.py"


def _floats(array) -> list:
    """A NumPy array (any shape) as nested lists of Python floats (exact for float32 and float64)."""
    return np.asarray(array, dtype=np.float64).tolist()


# --- chapter 1: activations ------------------------------------------------------------------


def chapter_01(nn) -> dict:
    """The stable sigmoid and tanh of the reference on inputs of magnitude up to 1000, warnings as errors."""
    z = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    stable = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.float64, np.float32):
            zz = z.astype(dtype)
            stable[np.dtype(dtype).name] = {
                "sigmoid": _floats(nn.Sigmoid().forward(zz)),
                "tanh": _floats(nn.Tanh().forward(zz)),
            }
    return {"stable_forward": {"z": _floats(z), **stable}}


# --- chapter 2: the fully-connected layer ---------------------------------------------------


def chapter_02(nn) -> dict:
    """check_layer_gradients on the reference FCLayer(20, 6), float64, a batch of three 4 x 5 inputs, L2 on."""
    layer = nn.FCLayer(20, 6, rng=np.random.default_rng(0), dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((3, 4, 5))
    errors = check_layer_gradients(layer, x, reg_lambda=0.1)
    return {
        "fc_gradient_check": {
            "layer": "FCLayer(20, 6), float64",
            "x_shape": [3, 4, 5],
            "reg_lambda": 0.1,
            "errors": errors,
        },
        "input_centring": input_centring(nn),
    }


def input_centring(nn) -> dict:
    """Raw [0, 1] pixels against mean-centred ones: the inputs' second moments and 784-64-10 ReLU runs.

    The mean image is that of the 4,000 training images (the validation images get the same
    shift). ``top_eigenvalues``: the three largest eigenvalues of ``X^T X / n`` of the flattened
    training images, raw and centred; ``mean_squared_norm``: the squared length of the mean image.
    """
    (x_all, y_all), _ = load_dataset("mnist", verbose=False)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x_all[:6000], y_all[:6000], val_size=2000, seed=0)
    mean = x_tr.mean(axis=0)
    flat = x_tr.reshape(len(x_tr), -1).astype(np.float64)
    inputs = {"raw": 0.0, "centred": mean}
    moments = {
        name: _floats(np.linalg.eigvalsh((flat - np.ravel(shift)).T @ (flat - np.ravel(shift)) / len(flat))[::-1][:3])
        for name, shift in inputs.items()
    }
    runs = []
    for rate in [0.1, 0.5, 1.0]:
        for name, shift in inputs.items():
            model = build_classifier(nn, [784, 64, 10], "relu", seed=0, dtype=np.float32)
            h = train(
                model,
                x_tr - shift,
                y_tr,
                epochs=5,
                learning_rate=rate,
                x_val=x_val - shift,
                y_val=y_val,
                seed=0,
                progress=False,
            )
            runs.append(
                {
                    "inputs": name,
                    "learning_rate": rate,
                    "train_loss": [float(v) for v in h.train_loss],
                    "val_acc": [float(a) for a in h.val_acc],
                }
            )
    return {
        "network": "784-64-10 ReLU, float32",
        "train_images": len(x_tr),
        "val_images": len(x_val),
        "epochs": 5,
        "mean_pixel": float(flat.mean()),
        "mean_squared_norm": float(np.sum(np.ravel(mean) ** 2)),
        "top_eigenvalues": moments,
        "runs": runs,
    }


# --- chapter 3: softmax and cross-entropy --------------------------------------------------


def chapter_03(nn) -> dict:
    """The reference softmax on the chapter's two score matrices; check_layer_gradients on SoftmaxLayer."""
    z = np.array([[1000.0, 0.0, -1000.0], [2.0, 1.0, 0.1]])
    z2 = np.array([[0.0, 1.0], [-1000.0, -999.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        softmax = {
            "z": {"scores": _floats(z), "softmax": _floats(nn.softmax(z))},
            "z2": {"scores": _floats(z2), "softmax": _floats(nn.softmax(z2))},
        }
    scores = np.random.default_rng(0).standard_normal((6, 10))
    errors = check_layer_gradients(nn.SoftmaxLayer(), scores)
    return {
        "softmax": softmax,
        "softmax_gradient_check": {"scores": "np.random.default_rng(0).standard_normal((6, 10))", "errors": errors},
    }


# --- chapter 4: L2 regularization ----------------------------------------------------------


class SpectralPenaltyModel:
    """A reference model whose loss uses the spectral norm, as the original template did (same backward)."""

    def __init__(self, model):
        self.model, self.layers = model, model.layers

    def forward(self, x, y, reg_lambda):
        cross_entropy = self.model.forward(x, y, 0.0)
        weights = [layer.W for layer in self.layers.values() if hasattr(layer, "W")]
        return cross_entropy + reg_lambda / 2 * sum(np.linalg.norm(W, 2) ** 2 for W in weights)

    def backward(self, reg_lambda):
        return self.model.backward(reg_lambda)


def two_moons(n: int, noise: float, seed: int):
    """``n`` points of the two-moons toy problem: x ``(n, 2)`` float64, labels ``(n,)`` in {0, 1}."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    angle = rng.uniform(0, np.pi, n)
    upper = np.c_[np.cos(angle), np.sin(angle)]
    lower = np.c_[1 - np.cos(angle), 0.5 - np.sin(angle)]
    return np.where(y[:, None] == 0, upper, lower) + noise * rng.standard_normal((n, 2)), y


def l2_toy(nn) -> dict:
    """2-64-64-2 ReLU on 80 noisy two-moons points at three lambdas: accuracies and P(class 1) on a 41 x 41 grid."""
    x, y = two_moons(80, 0.3, seed=0)
    x_test, y_test = two_moons(2000, 0.3, seed=1)
    grid_x, grid_y = np.linspace(-2.0, 3.0, 41), np.linspace(-1.5, 2.0, 41)
    grid = np.stack(np.meshgrid(grid_x, grid_y), axis=-1).reshape(-1, 2)  # row k: (grid_x[k % 41], grid_y[k // 41])
    runs = []
    for lam in [0.0, 1e-2, 1e-1]:
        model = build_classifier(nn, [2, 64, 64, 2], "relu", seed=0, dtype=np.float64)
        h = train(
            model,
            x,
            y,
            epochs=1000,
            learning_rate=0.1,
            batch_size=16,
            reg_lambda=lam,
            x_test=x_test,
            y_test=y_test,
            seed=0,
            progress=False,
            dtype=np.float64,
            num_classes=2,
        )
        model.forward(grid, np.zeros((len(grid), 2)), 0.0)
        p_one = model.softmax_layer.y_hat[:, 1].reshape(len(grid_y), len(grid_x))
        runs.append(
            {
                "reg_lambda": lam,
                "train_acc": float(h.train_acc[-1]),
                "test_acc": float(h.test_acc),
                "p_class_1": _floats(np.round(p_one, 3)),
            }
        )
    return {
        "network": "2-64-64-2 ReLU, float64",
        "data": "two moons, noise 0.3: 80 training points (seed 0), 2,000 test points (seed 1)",
        "epochs": 1000,
        "learning_rate": 0.1,
        "batch_size": 16,
        "x": _floats(np.round(x, 3)),
        "y": y.tolist(),
        "grid_x": _floats(grid_x),
        "grid_y": _floats(grid_y),
        "runs": runs,
    }


def chapter_04(nn) -> dict:
    """784-64-10 ReLU on 2,000 MNIST images for 40 epochs at four lambdas; the spectral-norm gradient check."""
    (x_all, y_all), _ = load_dataset("mnist", verbose=False)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x_all[:4000], y_all[:4000], val_size=2000, seed=0)
    lambdas = [0.0, 1e-3, 1e-2, 3e-2]
    epochs = 40
    curves = []
    for lam in lambdas:
        model = build_classifier(nn, [784, 64, 10], "relu", seed=0, dtype=np.float32)
        norms, train_acc, val_acc = [], [], []
        for epoch in range(epochs):
            h = train(
                model,
                x_tr,
                y_tr,
                epochs=1,
                learning_rate=0.1,
                reg_lambda=lam,
                x_val=x_val,
                y_val=y_val,
                seed=epoch,
                progress=False,
            )
            norms.append(
                sum(
                    float(np.sum(layer.W.astype(np.float64) ** 2))
                    for layer in model.layers.values()
                    if hasattr(layer, "W")
                )
            )
            train_acc.append(float(h.train_acc[0]))
            val_acc.append(float(h.val_acc[0]))
        curves.append({"reg_lambda": lam, "sum_squared_weights": norms, "train_acc": train_acc, "val_acc": val_acc})

    rng = np.random.default_rng(0)
    x_check = rng.standard_normal((8, 12))
    y_check = one_hot(rng.integers(0, 3, 8), 3)

    def small_model():
        return build_classifier(nn, [12, 7, 5, 3], "tanh", seed=0, dtype=np.float64)

    checks = {
        name: check_model_gradients(model, x_check, y_check, reg_lambda=0.1)
        for name, model in [("sum of squares", small_model()), ("spectral norm", SpectralPenaltyModel(small_model()))]
    }
    return {
        "l2_training": {
            "network": "784-64-10 ReLU, float32",
            "train_images": 2000,
            "val_images": 2000,
            "epochs": epochs,
            "learning_rate": 0.1,
            "runs": curves,
        },
        "spectral_gradient_check": {
            "network": "12-7-5-3 tanh, float64, 8 examples",
            "reg_lambda": 0.1,
            "errors": checks,
        },
        "l2_toy": l2_toy(nn),
    }


# --- chapter 5: putting it together --------------------------------------------------------

WORKED_INPUTS = {  # the 2-3-2 network of the worked example, as the chapter writes it
    "X": [[1.0, 2.0], [2.0, -1.0]],
    "Y": [[1.0, 0.0], [1.0, 0.0]],
    "W1": [[0.5, -0.5, 1.0], [0.25, 0.5, -1.0]],
    "b1": [0.0, 0.5, 0.0],
    "W2": [[1.0, -1.0], [0.5, 0.5], [-0.5, 0.5]],
    "b2": [0.0, 0.0],
}


def _worked_example(nn) -> dict:
    """One forward and backward pass of the reference layers through the 2-3-2 network, lambda = 0."""
    p = {name: np.array(value) for name, value in WORKED_INPUTS.items()}
    fc1, relu, fc2, out = nn.FCLayer(2, 3), nn.ReLU(), nn.FCLayer(3, 2), nn.SoftmaxLayer()
    fc1.W, fc1.b, fc2.W, fc2.b = p["W1"].copy(), p["b1"].copy(), p["W2"].copy(), p["b2"].copy()
    z1 = fc1.forward(p["X"])
    a1 = relu.forward(z1)
    z2 = fc2.forward(a1)
    y_hat = out.forward(z2)
    loss = out.ce_loss(y_hat, p["Y"])
    g2 = out.backward(1, 0.0)
    d_a1 = fc2.backward(g2, 0.0)
    g1 = relu.backward(d_a1, 0.0)
    fc1.backward(g1, 0.0)
    arrays = {
        "Z1": z1,
        "A1": a1,
        "Z2": z2,
        "Y_hat": y_hat,
        "E": loss,
        "G2": g2,
        "dW2": fc2.dW,
        "db2": fc2.db,
        "dA1": d_a1,
        "G1": g1,
        "dW1": fc1.dW,
        "db1": fc1.db,
    }
    return {"inputs": WORKED_INPUTS, "arrays": {name: _floats(value) for name, value in arrays.items()}}


class _ForgetsL2:
    """Factory of a namespace whose FCLayer has a bug: its dW lacks the reg_lambda * W term."""

    @staticmethod
    def namespace(nn):
        class ForgetsL2(nn.FCLayer):
            def backward(self, d_prev, reg_lambda):
                return super().backward(d_prev, 0.0)

        names = ("ReLU", "Sigmoid", "Tanh", "SoftmaxLayer", "ClassifierModel")
        return type("Forgetful", (), {**{k: getattr(nn, k) for k in names}, "FCLayer": ForgetsL2})


def chapter_05(nn) -> dict:
    """Layer table, worked example, before-you-train checks, whole-network gradient checks, vanishing gradients."""
    (x_train, y_train), (x_test, y_test) = load_dataset("mnist", verbose=False)

    model = build_classifier(nn, [784, 500, 500, 10], "relu", seed=0)
    layers = [
        {
            "name": name,
            "kind": layer.summary(),
            "parameters": int(layer.W.size + layer.b.size) if hasattr(layer, "W") else 0,
        }
        for name, layer in model.layers.items()
    ]
    layers.append({"name": "softmax", "kind": model.softmax_layer.summary(), "parameters": 0})

    y_probe_onehot = one_hot(y_train[:512], 10, dtype=np.float32)
    initial_loss = {}
    for activation in ["sigmoid", "tanh", "relu"]:
        fresh = build_classifier(nn, [784, 500, 500, 10], activation, seed=0)
        initial_loss[activation] = float(fresh.forward(x_train[:512], y_probe_onehot, 0.0))
    tiny = build_classifier(nn, [784, 500, 500, 10], "relu", seed=0)
    history = train(tiny, x_train[:32], y_train[:32], epochs=30, learning_rate=0.1, batch_size=32, progress=False)

    rng = np.random.default_rng(0)
    x_small = rng.standard_normal((16, 20))
    y_small = one_hot(rng.integers(0, 4, 16), 4)
    errors = {}
    for activation in ["sigmoid", "tanh", "relu"]:
        small = build_classifier(nn, [20, 8, 6, 4], activation, seed=0, dtype=np.float64)
        errors[activation] = check_model_gradients(small, x_small, y_small, reg_lambda=0.1)
    buggy = build_classifier(_ForgetsL2.namespace(nn), [20, 8, 6, 4], "tanh", seed=0, dtype=np.float64)
    errors["bug"] = check_model_gradients(buggy, x_small, y_small, reg_lambda=0.1)

    small = build_classifier(nn, [20, 8, 6, 4], "relu", seed=0, dtype=np.float64)
    a1 = small.layers["relu1"].forward(small.layers["fc1"].forward(x_small))  # (16, 8)
    z2 = small.layers["fc2"].forward(a1)  # (16, 6)
    kink = {
        "examples": len(a1),
        "all_off": int(np.sum(~a1.any(axis=1))),
        "smallest_abs_relu2_input": float(np.abs(z2).min()),
    }

    depth_sizes = [784] + [128] * 5 + [10]
    x_probe, y_probe = x_train[:512], one_hot(y_train[:512], 10, dtype=np.float32)

    def weight_gradient_rms(net):
        net.forward(x_probe, y_probe, 0.0)
        net.backward(0.0)
        return [
            float(np.sqrt(np.mean(layer.dW.astype(np.float64) ** 2)))
            for layer in net.layers.values()
            if hasattr(layer, "dW")
        ]

    n_epochs = 4
    vanishing = {}
    for activation in ["sigmoid", "tanh", "relu"]:
        net = build_classifier(nn, depth_sizes, activation, seed=0, dtype=np.float32)
        rms, val_acc, spread = [weight_gradient_rms(net)], [], [_spread_over_examples(net, x_probe)]
        for epoch in range(n_epochs):
            h = train(
                net,
                x_train[:3000],
                y_train[:3000],
                epochs=1,
                learning_rate=0.05,
                x_val=x_test[:2000],
                y_val=y_test[:2000],
                seed=epoch,
                progress=False,
            )
            rms.append(weight_gradient_rms(net))
            val_acc.append(float(h.val_acc[0]))
            spread.append(_spread_over_examples(net, x_probe))
        vanishing[activation] = {"weight_gradient_rms": rms, "val_acc": val_acc, "z_spread_over_examples": spread}

    return {
        "layers": layers,
        "worked_example": _worked_example(nn),
        "before_you_train": {
            "initial_loss_512": initial_loss,
            "tiny_train_acc": [float(a) for a in history.train_acc],
            "tiny_train_loss": [float(v) for v in history.train_loss],
        },
        "model_gradient_check": {"network": "20-8-6-4, float64, 16 examples", "reg_lambda": 0.1, "errors": errors},
        "relu_kink": kink,
        "vanishing_gradients": {
            "layer_sizes": depth_sizes,
            "train_images": 3000,
            "val_images": 2000,
            "learning_rate": 0.05,
            "epochs": n_epochs,
            "runs": vanishing,
        },
        "saturation": saturation(nn),
    }


def _pre_activations(model, x) -> list:
    """Z of every fully-connected layer of ``model`` for the batch ``x``, in order, as float64 arrays (n, d_l)."""
    out, found = x.reshape(len(x), -1), []
    for layer in model.layers.values():
        out = layer.forward(out)
        if hasattr(layer, "W"):
            found.append(out.astype(np.float64))
    return found


def _spread(z) -> float:
    """The standard deviation of each unit's Z ``(n, d)`` over the ``n`` examples, averaged over the ``d`` units.

    What the layer's output still says about *which* image came in; a constant Z (the same
    for every image) has spread 0, however large it is.
    """
    return float(np.mean(z.std(axis=0)))


def _spread_over_examples(model, x) -> list:
    """:func:`_spread` of every fully-connected layer's Z for the batch ``x``, in order."""
    return [_spread(z) for z in _pre_activations(model, x)]


#: A sigmoid or tanh unit counts as *saturated* on an example when its slope there is below a tenth of
#: the activation's largest slope: sigma'(z) < 0.025, i.e. |z| > 3.64; tanh'(z) < 0.1, i.e. |z| > 1.82.
SATURATED_BELOW = 0.1
SATURATION_EPOCHS = [0, 1, 10]  # the moments measured: at initialisation and after these many epochs
Z_BINS = np.linspace(-6.0, 6.0, 49)  # histogram edges, 0.25 wide; values outside count in the end bins


def _slope_ratio(activation: str, z):
    """g'(z) / max g': 1 where the unit passes the gradient best, near 0 where it is saturated."""
    if activation == "sigmoid":
        s = ACTIVATIONS["sigmoid"](z)  # the course's sigmoid, without overflow
        return s * (1 - s) / 0.25
    return 1 - np.tanh(z) ** 2


def saturation(nn) -> dict:
    """The brief's 784-500-500-10 network, each activation, at the brief's settings on the embedded data.

    Trained on the 10,000 embedded MNIST images (lr 0.001, batch 128, lambda 1e-8, seed 0, float32,
    one ``train`` call of one epoch per epoch, shuffled with seed = epoch index); at initialisation and
    after each of ``SATURATION_EPOCHS``, the pre-activations Z of both hidden layers on the first 1,000
    training images: their histogram (fractions per bin of ``Z_BINS``), standard deviation, the fraction
    with |z| > 2, and for sigmoid and tanh the fraction of saturated unit-examples (``SATURATED_BELOW``) and
    the mean slope ratio g'(z)/max g'; for ReLU the fraction of active unit-examples and the number of
    *dead* units (Z <= 0 on all 1,000 images).
    """
    (x_train, y_train), _ = load_dataset("mnist", verbose=False)
    probe = x_train[:1000]
    runs = {}
    for activation in ["sigmoid", "tanh", "relu"]:
        model = build_classifier(nn, [784, 500, 500, 10], activation, seed=0, dtype=np.float32)
        moments, trained = [], 0
        for epochs in SATURATION_EPOCHS:
            while trained < epochs:
                train(
                    model,
                    x_train,
                    y_train,
                    epochs=1,
                    learning_rate=0.001,
                    batch_size=128,
                    reg_lambda=1e-8,
                    seed=trained,
                    progress=False,
                )
                trained += 1
            layers = []
            for z in _pre_activations(model, probe)[:2]:
                counts, _ = np.histogram(np.clip(z, Z_BINS[0], Z_BINS[-1]), bins=Z_BINS)
                row = {
                    "std": float(z.std()),
                    "spread_over_examples": _spread(z),
                    "fraction_abs_above_2": float(np.mean(np.abs(z) > 2)),
                    "histogram": _floats(counts / z.size),
                }
                if activation == "relu":
                    row["fraction_active"] = float(np.mean(z > 0))
                    row["dead_units"] = int(np.sum(~(z > 0).any(axis=0)))
                else:
                    ratio = _slope_ratio(activation, z)
                    row["fraction_saturated"] = float(np.mean(ratio < SATURATED_BELOW))
                    row["mean_slope_ratio"] = float(ratio.mean())
                layers.append(row)
            moments.append({"epochs": epochs, "layers": layers})
        runs[activation] = moments
    return {
        "network": "784-500-500-10, float32",
        "train_images": len(x_train),
        "probe_images": len(probe),
        "learning_rate": 0.001,
        "batch_size": 128,
        "reg_lambda": 1e-8,
        "saturated_below": SATURATED_BELOW,
        "bin_edges": _floats(Z_BINS),
        "runs": runs,
    }


# --- chapter 6: what the networks learned ---------------------------------------------------


def _weights_and_biases(model) -> list:
    return [(layer.W, layer.b) for layer in model.layers.values() if hasattr(layer, "W")]


def chapter_06(nn) -> dict:
    """Small one-hidden-layer networks (not the tuned ones): first-layer weights on MNIST, confusions on Fashion-MNIST."""
    (x_train, y_train), (x_test, y_test) = load_dataset("mnist", verbose=False)
    mnist = build_classifier(nn, [784, 16, 10], "relu", seed=0)
    h = train(
        mnist,
        x_train,
        y_train,
        epochs=10,
        learning_rate=0.1,
        reg_lambda=1e-2,
        x_test=x_test,
        y_test=y_test,
        seed=0,
        progress=False,
    )
    W1 = _weights_and_biases(mnist)[0][0]
    first_layer = {
        "network": "784-16-10 ReLU, float32",
        "train_images": len(x_train),
        "epochs": 10,
        "learning_rate": 0.1,
        "reg_lambda": 1e-2,
        "test_acc": float(h.test_acc),
        "W1_columns": _floats(np.round(W1.T.astype(np.float64), 3)),
    }  # (16, 784): row k is unit k's 28 x 28 image

    (x_train, y_train), (x_test, y_test) = load_dataset("fashion-mnist", verbose=False)
    fashion = build_classifier(nn, [784, 100, 10], "relu", seed=0)
    h = train(fashion, x_train, y_train, epochs=15, learning_rate=0.02, seed=0, progress=False)
    layers = _weights_and_biases(fashion)
    predicted = predict_classes(layers, "relu", x_test)
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (y_test, predicted), 1)
    # the most confident mistakes: largest gap between the predicted and the true class's score
    scores = x_test.reshape(len(x_test), -1)
    for index, (W, b) in enumerate(layers):
        scores = scores @ W + b
        if index < len(layers) - 1:
            scores = np.maximum(scores, 0)
    rows = np.arange(len(y_test))
    gap = scores[rows, predicted] - scores[rows, y_test]
    wrong = np.flatnonzero(predicted != y_test)
    chosen = wrong[np.argsort(-gap[wrong], kind="stable")[:8]]
    return {
        "mnist_first_layer": first_layer,
        "fashion_confusion": {
            "network": "784-100-10 ReLU, float32",
            "train_images": len(x_train),
            "epochs": 15,
            "learning_rate": 0.02,
            "reg_lambda": 0.0,
            "test_images": len(x_test),
            "train_acc": float(h.train_acc[-1]),
            "test_acc": float(np.mean(predicted == y_test)),
            "counts": confusion.tolist(),
            "mistakes": [
                {"test_index": int(i), "true": int(y_test[i]), "predicted": int(predicted[i])} for i in chosen
            ],
        },
    }


CHAPTERS = {
    "01_activations": chapter_01,
    "02_fully_connected": chapter_02,
    "03_softmax_cross_entropy": chapter_03,
    "04_l2_regularization": chapter_04,
    "05_putting_it_together": chapter_05,
    "06_experiments": chapter_06,
}


def compute(names=None) -> dict[str, dict]:
    """{chapter stem: its results}, computed now with the reference (one BLAS thread)."""
    nn = load_reference()
    results = {}
    with threadpool_limits(limits=1):
        for name, function in CHAPTERS.items():
            if names is None or name in names:
                results[name] = {"generated_by": COMMAND, "chapter": f"book/{name}.md", **function(nn)}
    return results


# --- comparing ---------------------------------------------------------------------------------

#: Below this, a float is rounding noise (a passing gradient check): two such values agree.
NOISE = 1e-6
RTOL, ATOL = 1e-3, 2e-3


def same(old, new, where: str = "") -> list[str]:
    """Differences between two JSON values, as readable lines (empty when they agree).

    Strings, integers, keys and lengths must be equal, except a confusion-matrix cell, a count of
    images, which may move by ``COUNT_TOL`` (see there). Two floats agree when both are below
    ``NOISE`` in magnitude (the relative errors of passing gradient checks, which depend on the
    machine's rounding) or when ``|old - new| <= RTOL * max(|old|, |new|) + ATOL`` (a training
    curve in float32 on another BLAS may differ by an image or two out of 2,000).
    """
    if isinstance(old, dict) and isinstance(new, dict):
        if list(old) != list(new):
            return [f"{where}: keys {list(old)} != {list(new)}"]
        if _at_edge_of_stability(old) and _at_edge_of_stability(new):
            return _same_unstable_run(old, new, where)
        return [line for key in old for line in same(old[key], new[key], f"{where}.{key}")]
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: length {len(old)} != {len(new)}"]
        return [line for k, (a, b) in enumerate(zip(old, new, strict=False)) for line in same(a, b, f"{where}[{k}]")]
    if isinstance(old, float) or isinstance(new, float):
        if not isinstance(old, (int, float)) or not isinstance(new, (int, float)):
            return [f"{where}: {old!r} != {new!r}"]
        if math.isnan(old) and math.isnan(new):
            return []
        if abs(old) < NOISE and abs(new) < NOISE:
            return []
        if abs(old - new) <= RTOL * max(abs(old), abs(new)) + ATOL:
            return []
        return [f"{where}: {old!r} != {new!r}"]
    if _is_image_count(where) and isinstance(old, int) and isinstance(new, int):
        return [] if abs(old - new) <= COUNT_TOL else [f"{where}: {old!r} != {new!r}"]
    return [] if old == new else [f"{where}: {old!r} != {new!r}"]


#: Training runs at the edge of stability: chapter 2's raw-input network at a learning rate of 1.0
#: "stumbles", and from its second epoch on the rounding of the machine's BLAS kernel is amplified
#: (seen: validation accuracy 0.7835 or 0.844 after epoch 3 on two machines, 0.8615 or 0.866 after
#: epoch 5). Their first epoch must agree as any run's does; later epochs within ``EDGE_ATOL``.
EDGE_OF_STABILITY = {("raw", 1.0)}
EDGE_ATOL = 0.1


def _at_edge_of_stability(run: dict) -> bool:
    inputs, rate = run.get("inputs"), run.get("learning_rate")
    return isinstance(inputs, str) and isinstance(rate, float) and (inputs, rate) in EDGE_OF_STABILITY


def _same_unstable_run(old: dict, new: dict, where: str) -> list[str]:
    """:func:`same` for a run at the edge of stability: curves agree in epoch 1, later within ``EDGE_ATOL``."""
    problems = []
    for key in old:
        if isinstance(old[key], list) and isinstance(new[key], list) and len(old[key]) == len(new[key]) > 1:
            problems += same(old[key][:1], new[key][:1], f"{where}.{key}")
            problems += [
                f"{where}.{key}[{k}]: {a!r} != {b!r}"
                for k, (a, b) in enumerate(zip(old[key], new[key], strict=True))
                if k > 0 and abs(a - b) > EDGE_ATOL
            ]
        else:
            problems += same(old[key], new[key], f"{where}.{key}")
    return problems


#: A count of test images classified one way by a trained float32 network (a confusion-matrix
#: cell) may move by an image or two when another BLAS kernel rounds the training differently
#: (seen: OpenBLAS's Zen and SkylakeX kernels give cells that differ by 1-2 of 1,000).
COUNT_TOL = 3


def _is_image_count(where: str) -> bool:
    return ".counts[" in where


def dumps(value, indent: int = 0) -> str:
    """JSON with one key per line and every list of numbers (or of such lists) on one line."""
    pad = " " * (indent + 1)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(key)}: {dumps(item, indent + 1)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        items = [f"{pad}{dumps(item, indent + 1)}" for item in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return json.dumps(value)


def write(results: dict[str, dict], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in results.items():
        (folder / f"{name}.json").write_text(dumps(content) + "\n")


def check(results: dict[str, dict], folder: Path) -> list[str]:
    """Lines describing every difference between ``results`` and the files in ``folder``."""
    problems = []
    for name, content in results.items():
        path = folder / f"{name}.json"
        if not path.exists():
            problems.append(f"{path} is missing")
            continue
        problems += [f"{path.name}{line}" for line in same(json.loads(path.read_text()), content)]
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the files instead of writing them; exit 1 on a difference"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"folder of the result files (default {RESULTS})")
    parser.add_argument("--only", choices=sorted(CHAPTERS), action="append", help="only this chapter (repeatable)")
    args = parser.parse_args(argv)
    results = compute(args.only)
    if args.check:
        problems = check(results, args.out)
        if problems:
            print(
                f"The book's results differ from what the reference gives now ({len(problems)} values); "
                f"run `{COMMAND}` and commit book/results/:",
                file=sys.stderr,
            )
            print("\n".join(problems[:40]), file=sys.stderr)
            return 1
        print(f"{len(results)} result files agree with the reference.")
        return 0
    write(results, args.out)
    print(f"wrote {', '.join(f'{name}.json' for name in results)} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
