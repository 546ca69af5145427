"""Write the reference values the exercise tests compare against.

    python scripts/make_fixtures.py          # rewrite both files in dnn_course/fixtures/
    python scripts/make_fixtures.py --check  # exit 1 if a committed file is out of date

Inputs are fixed and seeded; outputs come from the reference solution in
solutions/dnn_hw (through dnn_course.reference), in float64. Keys are
"<component>/<array>", read back with dnn_course.checks.fixture(component).

Two files:

* ``reference_values.npz``: every value, for the instructors (the hidden tests,
  the autograder). It never leaves this repository.
* ``visible_values.npz``: only the values that the visible tests use, for the
  students' kit (``make release``). A key is visible when a notebook's code,
  with its hidden-test and solution regions removed, calls
  ``checks.fixture("<component>")`` and names ``"<array>"`` (an f-string such as
  ``f"W{i}"`` names every key it can produce).
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tokenize
import zipfile
from pathlib import Path

import numpy as np

from dnn_course import nbgrader_regions
from dnn_course.reference import load_reference

REPO = Path(__file__).resolve().parent.parent
FIXTURE_FILE = REPO / "dnn_course" / "fixtures" / "reference_values.npz"
VISIBLE_FILE = REPO / "dnn_course" / "fixtures" / "visible_values.npz"
SOLUTIONS = REPO / "solutions" / "dnn_hw"

_FIXTURE_CALL = re.compile(r"""checks\.fixture\(\s*["'](\w+)["']\s*\)""")


def activation_values(nn, rng) -> dict[str, np.ndarray]:
    z = rng.normal(scale=3.0, size=(6, 7))
    z[0, :3] = 0.0  # ReLU's kink: the gradient there must be 0
    z[3, 4] = 0.0
    d_prev = rng.normal(size=(6, 7))
    z_extreme = np.array([[-1000.0, -100.0, -20.0, -1.0, 0.0, 1.0, 20.0, 100.0, 1000.0]])
    values = {"activations/z": z, "activations/d_prev": d_prev, "activations/z_extreme": z_extreme}
    for name, layer_class in [("relu", nn.ReLU), ("sigmoid", nn.Sigmoid), ("tanh", nn.Tanh)]:
        layer = layer_class()
        values[f"{name}/out"] = layer.forward(z.copy())
        values[f"{name}/dz"] = layer.backward(d_prev.copy(), 0.0)
        layer = layer_class()
        values[f"{name}/out_extreme"] = layer.forward(z_extreme.copy())
        values[f"{name}/dz_extreme"] = layer.backward(np.ones_like(z_extreme), 0.0)
    return values


def fc_values(nn, rng) -> dict[str, np.ndarray]:
    x = rng.normal(size=(4, 2, 3))
    layer = nn.FCLayer(6, 5, rng=rng)
    layer.b = rng.normal(size=5)  # non-zero, so a regularised bias would show
    d_prev = rng.normal(size=(4, 5))
    reg_lambda = 0.1
    out = layer.forward(x.copy())
    dx = layer.backward(d_prev.copy(), reg_lambda)
    return {
        "fc/x": x,
        "fc/W": layer.W,
        "fc/b": layer.b,
        "fc/d_prev": d_prev,
        "fc/reg_lambda": np.array(reg_lambda),
        "fc/out": out,
        "fc/dx": dx,
        "fc/dW": layer.dW,
        "fc/db": layer.db,
    }


def softmax_values(nn, rng) -> dict[str, np.ndarray]:
    z = rng.normal(scale=2.0, size=(5, 4))
    y = np.eye(4)[rng.integers(0, 4, size=5)]
    z_extreme = np.array([[1000.0, -1000.0, 999.0, 0.0], [-1000.0, -1000.0, -999.0, -1000.0]])
    y_extreme = np.eye(4)[[1, 2]]
    layer = nn.SoftmaxLayer()
    y_hat = layer.forward(z.copy())
    loss = layer.ce_loss(y_hat, y)
    dx = layer.backward(1, 0.0)
    return {
        "softmax/z": z,
        "softmax/y": y,
        "softmax/y_hat": y_hat,
        "softmax/loss": np.array(loss),
        "softmax/dx": dx,
        "softmax/z_extreme": z_extreme,
        "softmax/y_extreme": y_extreme,
        "softmax/y_hat_extreme": nn.softmax(z_extreme.copy()),
    }


def model_values(nn, rng) -> dict[str, np.ndarray]:
    model = nn.ClassifierModel()
    sizes = [12, 7, 5, 3]
    activations = [nn.Tanh(), nn.ReLU()]
    for i in range(3):
        fc = nn.FCLayer(sizes[i], sizes[i + 1], rng=rng)
        fc.b = rng.normal(scale=0.1, size=sizes[i + 1])
        model.add_layer(f"fc{i + 1}", fc)
        if i < 2:
            model.add_layer(f"act{i + 1}", activations[i])
    model.add_layer("softmax", nn.SoftmaxLayer())
    x = rng.normal(size=(8, 12))
    y = np.eye(3)[rng.integers(0, 3, size=8)]
    reg_lambda = 0.05
    loss = model.forward(x.copy(), y.copy(), reg_lambda)
    model.backward(reg_lambda)
    values = {"model/x": x, "model/y": y, "model/reg_lambda": np.array(reg_lambda), "model/loss": np.array(loss)}
    for i in range(3):
        fc = model.layers[f"fc{i + 1}"]
        values.update(
            {f"model/W{i + 1}": fc.W, f"model/b{i + 1}": fc.b, f"model/dW{i + 1}": fc.dW, f"model/db{i + 1}": fc.db}
        )
    return values


def reference_values() -> dict[str, np.ndarray]:
    """All fixtures, float64, from fixed seeds."""
    nn = load_reference()
    values = {}
    for seed, make in enumerate([activation_values, fc_values, softmax_values, model_values]):
        values.update(make(nn, np.random.default_rng(seed)))
    return {key: np.asarray(value, dtype=np.float64) for key, value in values.items()}


def visible_code(notebook: Path) -> str:
    """The code of a source notebook as students receive it: hidden tests and solutions removed
    (:func:`dnn_course.nbgrader_regions.outside_regions`)."""
    return "\n".join(
        nbgrader_regions.outside_regions(cell.source)
        for cell in nbgrader_regions.read_cells(notebook)
        if cell.cell_type == "code"
    )


def _string_patterns(code: str) -> list[re.Pattern]:
    """Every string literal of ``code`` as a full-match pattern (an f-string's fields match anything)."""
    patterns = []
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type != tokenize.STRING:
            continue
        text = token.string
        prefix = text[: len(text) - len(text.lstrip("rRbBfFuU"))].lower()
        body = text[len(prefix) :].strip("\"'")
        if "f" in prefix:
            parts = re.split(r"\{[^{}]*\}", body)
            if any(parts):  # f"{x}" alone names nothing in particular
                patterns.append(re.compile(".+".join(re.escape(part) for part in parts)))
        else:
            patterns.append(re.compile(re.escape(body)))
    return patterns


def visible_keys(keys, notebooks) -> set[str]:
    """The fixture keys that the visible code of ``notebooks`` uses (see the module docstring)."""
    used = set()
    for notebook in notebooks:
        code = visible_code(notebook)
        components = set(_FIXTURE_CALL.findall(code))
        patterns = _string_patterns(code)
        for key in keys:
            component, array = key.split("/", 1)
            if component in components and any(p.fullmatch(array) for p in patterns):
                used.add(key)
    return used


def npz_bytes(values: dict[str, np.ndarray]) -> bytes:
    """A deterministic .npz (fixed zip timestamps), so regenerating gives the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(values):
            array_buffer = io.BytesIO()
            np.lib.format.write_array(array_buffer, np.asarray(values[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, array_buffer.getvalue())
    return buffer.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that the committed file is current")
    args = parser.parse_args(argv)
    values = reference_values()
    visible = visible_keys(values, sorted(SOLUTIONS.glob("*.ipynb")))
    files = {FIXTURE_FILE: values, VISIBLE_FILE: {key: values[key] for key in sorted(visible)}}
    if args.check:
        status = 0
        for path, expected in files.items():
            with np.load(path, allow_pickle=False) as committed:
                stale = sorted(set(expected) ^ set(committed.files)) + [
                    key
                    for key in expected
                    if key in committed.files and not np.allclose(committed[key], expected[key], rtol=1e-12, atol=1e-14)
                ]
            if stale:
                print(f"{path} is out of date ({', '.join(stale[:5])}); run python scripts/make_fixtures.py")
                status = 1
            else:
                print(f"{path.name} is up to date ({len(expected)} arrays).")
        return status
    for path, arrays in files.items():
        path.write_bytes(npz_bytes(arrays))
        print(f"wrote {len(arrays)} arrays to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
