"""A cohort of complete students, made the way students make their submissions.

Each student starts from the released notebooks (``exercises/``), writes their
answers into the answer cells, runs notebooks 05 and 06 in their own folder
(with ``SMOKE_TEST = True``, the student-facing short mode: seconds per run)
so that the result files, the saved models and the figures come from running
the notebooks, and zips the folder the way the LMS download names it. The
grader then grades the smoke runs (``experiment_profile="smoke"``).

Students who share code with another student and would get the same files by
running the same notebooks (the late duplicate, the one who tampered with a
test cell of 01) copy that student's executed 05/06 folder instead of
training again: the files are identical either way (seeded, same code).
"""

from __future__ import annotations

import copy
import os
import shutil
import zipfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from dnn_course.experiment import set_parameters
from tests.autograder_corpus import students as st

NB = {
    n[:2]: n
    for n in (
        "01_activations.ipynb",
        "02_fc_layer.ipynb",
        "03_softmax_cross_entropy.ipynb",
        "04_model_l2.ipynb",
        "05_mnist_activations.ipynb",
        "06_fashion_tuning.ipynb",
    )
}
RESULT_FILES = (
    "mnist_results.json",
    "mnist_model_sigmoid.npz",
    "mnist_model_relu.npz",
    "mnist_model_tanh.npz",
    "fashion_results.json",
    "fashion_model.npz",
)

# ----------------------------------------------------------------- two correct students, other forms
ALVAREZ = {
    "relu": '''\
import matplotlib.pyplot as plt

class ReLU:
    """max(0, z), my version."""

    def __init__(self):
        self.out = None

    def forward(self, z):
        self.out = z * (z > 0)          # the mask keeps the positive part
        return self.out

    def backward(self, d_prev, reg_lambda=0.0):
        return np.where(self.out > 0, d_prev, 0.0)

    def update(self, learning_rate):
        pass

    def summary(self):
        return "ReLU"

print("ReLU of [-1, 0, 2]:", ReLU().forward(np.array([-1.0, 0.0, 2.0])))
plt.figure(figsize=(3, 2)); plt.plot([-2, 0, 2], [0, 0, 2]); plt.title("my ReLU"); plt.show()
''',
    "sigmoid": '''\
def stable_sigmoid(values):
    """1 / (1 + e^-v) as e^min(v, 0) / (1 + e^-|v|): no exponential of a large positive number."""
    return np.exp(np.minimum(values, 0)) / (1 + np.exp(-np.abs(values)))

class Sigmoid:
    def __init__(self):
        self.out = None

    def forward(self, z):
        self.out = stable_sigmoid(z)
        return self.out

    def backward(self, d_prev, reg_lambda=0.0):
        s = self.out
        return d_prev * s * (1.0 - s)

    def update(self, learning_rate):
        pass

    def summary(self):
        return "Sigmoid"
''',
    "tanh": """\
class Tanh:
    def __init__(self):
        self.out = None

    def forward(self, z):
        magnitude = np.abs(z)
        self.out = np.sign(z) * -np.expm1(-2 * magnitude) / (1 + np.exp(-2 * magnitude))
        return self.out

    def backward(self, d_prev, reg_lambda=0.0):
        return d_prev * (1 - self.out ** 2)

    def update(self, learning_rate):
        pass

    def summary(self):
        return "Tanh"
""",
    "fc_layer": """\
class FCLayer:
    def __init__(self, input_dim, output_dim, *, rng=None, dtype=np.float64):
        generator = rng if rng is not None else np.random.default_rng()
        scale = np.sqrt(2.0 / input_dim)
        self.W = (generator.standard_normal((input_dim, output_dim)) * scale).astype(dtype)
        self.b = np.zeros(output_dim, dtype=dtype)
        self.dW, self.db = None, None
        self.inputs, self.shape_in = None, None

    def forward(self, x):
        self.shape_in = x.shape
        self.inputs = x.reshape(len(x), -1)
        return self.inputs.dot(self.W) + self.b

    def backward(self, d_prev, reg_lambda):
        self.dW = self.inputs.T.dot(d_prev) + reg_lambda * self.W
        self.db = np.sum(d_prev, axis=0)
        return d_prev.dot(self.W.T).reshape(self.shape_in)

    def update(self, learning_rate):
        self.W = self.W - learning_rate * self.dW
        self.b = self.b - learning_rate * self.db

    def summary(self):
        return "FCLayer(%d, %d)" % self.W.shape
""",
    "softmax": """\
EPS = 1e-10

def softmax(z):
    exps = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return exps / np.sum(exps, axis=-1, keepdims=True)

class SoftmaxLayer:
    def __init__(self):
        self.y_hat, self.y, self.loss = None, None, None

    def forward(self, x):
        self.y_hat = softmax(x)
        return self.y_hat

    def ce_loss(self, y_hat, y):
        self.y = y
        per_example = -np.sum(y * np.log(y_hat + EPS), axis=1)
        self.loss = np.mean(per_example)
        return self.loss

    def backward(self, d_prev=1, reg_lambda=0.0):
        count = len(self.y)
        return (self.y_hat - self.y) / count

    def update(self, learning_rate):
        pass

    def summary(self):
        return "Softmax + cross-entropy"
""",
    "classifier_model": """\
class ClassifierModel:
    def __init__(self):
        self.layers = {}
        self.softmax_layer = None
        self.loss = None

    def add_layer(self, name, layer):
        if isinstance(layer, SoftmaxLayer):
            if self.softmax_layer is not None:
                raise ValueError("only one SoftmaxLayer")
            self.softmax_layer = layer
        elif name in self.layers:
            raise ValueError(f"duplicate layer name {name}")
        else:
            self.layers[name] = layer

    def predict(self, x):
        out = x
        for layer in self.layers.values():
            out = layer.forward(out)
        return self.softmax_layer.forward(out)

    def forward(self, x, y, reg_lambda):
        data_loss = self.softmax_layer.ce_loss(self.predict(x), y)
        penalty = sum(float(np.sum(layer.W ** 2)) for layer in self.layers.values() if hasattr(layer, "W"))
        self.loss = data_loss + reg_lambda / 2 * penalty
        return self.loss

    def backward(self, reg_lambda):
        grad = self.softmax_layer.backward(1, reg_lambda)
        for name in reversed(list(self.layers)):
            grad = self.layers[name].backward(grad, reg_lambda)

    def update(self, learning_rate):
        for layer in self.layers.values():
            layer.update(learning_rate)

    def summary(self):
        for name, layer in self.layers.items():
            print(name, layer.summary())

print("model class ready")
""",
    "configurations": """\
CONFIGURATIONS = [
    dict(hidden=[128], activation="relu", epochs=5, learning_rate=0.1, reg_lambda=0.0),
    dict(hidden=[64], activation="tanh", epochs=5, learning_rate=0.1, reg_lambda=1e-4),
    dict(hidden=[128, 64], activation="relu", epochs=5, learning_rate=0.05, reg_lambda=0.0),
]
""",
    # written answers in her own words (graded by hand; the similarity report must not pair them)
    "answer_mnist_activations": """\
In my runs ReLU came out on top, tanh was close behind and sigmoid lagged well below both. I think the
reason is the size of the derivative: the sigmoid slope never exceeds a quarter, so every layer shrinks the
error signal on its way back and the first weights hardly move. Tanh has a slope of one near zero, which
helps, but large inputs flatten it. ReLU passes the signal unchanged wherever a unit is on, and it is
also quicker per epoch since there is no exponential to evaluate.
""",
    "answer_fashion_design": """\
I tried three set-ups, changing one thing at a time: one hidden layer of 128 ReLU units, a smaller
tanh layer with a bit of weight decay, and two ReLU layers. I kept the one whose validation curve ended
highest and whose gap to the training curve stayed small; the test set was only used once at the end.
""",
}

BAO = {
    "relu": """\
class ReLU:
    def __init__(self):
        self.out = None

    def forward(self, z):
        self.out = np.clip(z, 0, None)
        return self.out

    def backward(self, d_prev, reg_lambda=0.0):
        active = (self.out > 0).astype(d_prev.dtype)
        return d_prev * active

    def update(self, learning_rate):
        pass

    def summary(self):
        return "ReLU"
""",
    "sigmoid": """\
class Sigmoid:
    def __init__(self):
        self.out = None

    def forward(self, z):
        # log sigmoid(z) = -log(1 + e^-z) = -logaddexp(0, -z): stable for any z
        self.out = np.exp(-np.logaddexp(0, -z)).astype(z.dtype, copy=False)
        return self.out

    def backward(self, d_prev, reg_lambda=0.0):
        return d_prev * (self.out - self.out ** 2)

    def update(self, learning_rate):
        pass

    def summary(self):
        return "Sigmoid"
""",
    "tanh": """\
class Tanh:
    def __init__(self):
        self.out = None

    def forward(self, z):
        out = np.empty_like(z)
        positive = z >= 0
        e = np.exp(-2 * z[positive])
        out[positive] = (1 - e) / (1 + e)
        e = np.exp(2 * z[~positive])
        out[~positive] = (e - 1) / (e + 1)
        self.out = out
        return out

    def backward(self, d_prev, reg_lambda=0.0):
        return d_prev * (1 - np.square(self.out))

    def update(self, learning_rate):
        pass

    def summary(self):
        return "Tanh"
""",
    "fc_layer": """\
def flatten(batch):
    return batch.reshape(batch.shape[0], -1)

class FCLayer:
    def __init__(self, input_dim, output_dim, *, rng=None, dtype=np.float64):
        rng = rng or np.random.default_rng()
        self.W = (rng.standard_normal((input_dim, output_dim)) / np.sqrt(input_dim / 2)).astype(dtype)
        self.b = np.zeros(output_dim, dtype=dtype)
        self.dW = self.db = None

    def forward(self, x):
        self._x_shape, self._x = x.shape, flatten(x)
        return np.matmul(self._x, self.W) + self.b

    def backward(self, d_prev, reg_lambda):
        self.dW = np.matmul(self._x.T, d_prev) + reg_lambda * self.W
        self.db = d_prev.sum(0)
        return np.matmul(d_prev, self.W.T).reshape(self._x_shape)

    def update(self, learning_rate):
        self.W -= learning_rate * self.dW
        self.b -= learning_rate * self.db

    def summary(self):
        return f"FCLayer({self.W.shape[0]}, {self.W.shape[1]})"
""",
    "softmax": """\
EPS = 1e-10

def softmax(z):
    shifted = z - z.max(1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(1, keepdims=True)

class SoftmaxLayer:
    def __init__(self):
        self.y_hat = self.y = self.loss = None

    def forward(self, x):
        self.y_hat = softmax(x)
        return self.y_hat

    def ce_loss(self, y_hat, y):
        self.y = y
        self.loss = float(-(y * np.log(y_hat + EPS)).sum() / len(y))
        return self.loss

    def backward(self, d_prev=1, reg_lambda=0.0):
        return (self.y_hat - self.y) / self.y.shape[0]

    def update(self, learning_rate):
        pass

    def summary(self):
        return "Softmax + cross-entropy"
""",
    "classifier_model": """\
from collections import OrderedDict

class ClassifierModel:
    def __init__(self):
        self.layers = OrderedDict()
        self.softmax_layer = None
        self.loss = None

    def add_layer(self, name, layer):
        if type(layer).__name__ == "SoftmaxLayer":
            if self.softmax_layer:
                raise ValueError("This model already has its output layer.")
            self.softmax_layer = layer
            return
        if name in self.layers:
            raise ValueError("Layer names must be unique.")
        self.layers[name] = layer

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return self.softmax_layer.forward(x)

    def forward(self, x, y, reg_lambda):
        loss = self.softmax_layer.ce_loss(self.predict(x), y)
        weights = [l.W for l in self.layers.values() if isinstance(l, FCLayer)]
        self.loss = loss + 0.5 * reg_lambda * sum(np.linalg.norm(W) ** 2 for W in weights)
        return self.loss

    def backward(self, reg_lambda):
        d = self.softmax_layer.backward(1, reg_lambda)
        for layer in reversed(list(self.layers.values())):
            d = layer.backward(d, reg_lambda)

    def update(self, learning_rate):
        for layer in self.layers.values():
            layer.update(learning_rate)

    def summary(self):
        for name, layer in self.layers.items():
            print(f"{name}: {layer.summary()}")
""",
    "configurations": """\
CONFIGURATIONS = [dict(hidden=[h], activation=a, epochs=4, learning_rate=0.1, reg_lambda=0.0)
                  for h, a in [(64, "relu"), (128, "relu"), (64, "tanh")]]
""",
    "answer_mnist_activations": """\
Ranking: relu > tanh > sigmoid. Sigmoid saturates at both ends and its gradient is at most 0.25, so
backpropagating through two layers multiplies the gradient by a small number twice (vanishing
gradients); its outputs are also all positive. Tanh is centred on zero and its gradient peaks at 1, yet
it still saturates for big |z|. ReLU's gradient is exactly 1 for positive inputs, so learning is fastest.
""",
    "answer_fashion_design": """\
Grid over width (64 or 128) and activation (relu or tanh), four epochs each. The wider relu net had
the best validation accuracy, so I picked it; I did not look at test accuracy while choosing.
""",
}


# --------------------------------------------------------------------------- building
def _answers(nb, answers: dict):
    for cell in nb.cells:
        gid = st.grade_id(cell)
        if gid in answers:
            cell.source = answers[gid]
    return nb


def write_notebooks(folder: Path, notebooks: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, folder / name)
    return folder


def run_experiments(folder: Path, names=("05", "06"), extra_source: dict | None = None) -> None:
    """Run notebooks 05/06 in ``folder`` as a student does, after setting ``SMOKE_TEST = True``."""
    for key in names:
        path = folder / NB[key]
        set_parameters(path, SMOKE_TEST=True)
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb, timeout=900, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(folder)}}
        )
        client.execute(env={**os.environ, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"})
        nbformat.write(nb, path)


def copy_results(source: Path, destination: Path, names=RESULT_FILES) -> None:
    for name in names:
        if (source / name).exists():
            shutil.copy2(source / name, destination / name)


def zip_folder(folder: Path, zip_path: Path, mtime: float) -> Path:
    """Zip the notebooks and result files the way a student uploads them; set the file's time on disk."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            if path.is_file() and (path.suffix == ".ipynb" or path.name in RESULT_FILES):
                zf.write(path, path.name)
    os.utime(zip_path, (mtime, mtime))
    return zip_path


def build_cohort(root: Path, release_dir: Path, source_dir: Path) -> Path:
    """Write the cohort's LMS download into ``root / "download"``; return that folder."""
    work, download = root / "students", root / "download"
    download.mkdir(parents=True, exist_ok=True)
    good = st.perfect(release_dir, source_dir)
    blank = st.released(release_dir)
    t0 = 1_790_000_000  # a fixed time on the instructor's disk; the late attempt is newer

    # the perfect student: the reference answers, both experiments run
    ada = write_notebooks(work / "ada", copy.deepcopy(good))
    run_experiments(ada)
    # two correct students whose code differs in form (names, formulas, helpers, prints, plots)
    alvarez = write_notebooks(work / "alvarez", {n: _answers(copy.deepcopy(nb), ALVAREZ) for n, nb in good.items()})
    run_experiments(alvarez)
    bao = write_notebooks(work / "bao", {n: _answers(copy.deepcopy(nb), BAO) for n, nb in good.items()})
    run_experiments(bao)
    # one classic bug in each of two notebooks: ReLU backward at 0 (01), cross-entropy summed (03)
    buggy = copy.deepcopy(good)
    buggy[NB["01"]] = st.replace_in_answer(buggy[NB["01"]], "relu", "(self.out > 0)", "(self.out >= 0)")
    buggy[NB["03"]] = st.replace_in_answer(
        buggy[NB["03"]], "softmax", "np.log(y_hat + EPS)) / y.shape[0]", "np.log(y_hat + EPS))"
    )
    cruz = write_notebooks(work / "cruz", buggy)
    run_experiments(cruz)
    # 05 diverged: the learning rate edited in the (locked) settings cell, "to train faster"
    dara_nbs = copy.deepcopy(good)
    for cell in dara_nbs[NB["05"]].cells:
        if st.grade_id(cell) == "settings":
            cell.source += "\nSETTINGS = dict(SETTINGS, learning_rate=10000.0)  # faster!"
    dara = write_notebooks(work / "dara", dara_nbs)
    run_experiments(dara, names=("05",))
    copy_results(ada, dara, RESULT_FILES[4:])
    shutil.copy2(ada / NB["06"], dara / NB["06"])
    # never ran 06: configurations written, the notebook never executed, no 06 files
    eli = write_notebooks(work / "eli", copy.deepcopy(good))
    copy_results(ada, eli, RESULT_FILES[:4])
    shutil.copy2(ada / NB["05"], eli / NB["05"])
    # a test cell of 01 edited to pass a wrong ReLU backward
    fay_nbs = copy.deepcopy(good)
    fay_nbs[NB["01"]] = st.replace_in_answer(fay_nbs[NB["01"]], "relu", "(self.out > 0)", "(self.out >= 0)")
    for cell in fay_nbs[NB["01"]].cells:
        if st.grade_id(cell) == "test_relu_backward":
            cell.source = "checks.passed('ReLU backward')"
    fay = write_notebooks(work / "fay", fay_nbs)
    copy_results(ada, fay)
    for key in ("05", "06"):
        shutil.copy2(ada / NB[key], fay / NB[key])
    # a late duplicate: an early, unfinished attempt, then the complete work (newer on disk)
    gus_early = write_notebooks(work / "gus-early", {n: copy.deepcopy(nb) for n, nb in blank.items()})
    gus_early_nbs = st.perfect(release_dir, source_dir)
    nbformat.write(gus_early_nbs[NB["01"]], gus_early / NB["01"])
    gus = write_notebooks(work / "gus", copy.deepcopy(good))
    copy_results(ada, gus)
    for key in ("05", "06"):
        shutil.copy2(ada / NB[key], gus / NB[key])

    for stem, folder, offset in [
        ("DNN_HW2_Ada_Lovelace_2001", ada, 0),
        ("DNN_HW2_Ana_Alvarez_2002", alvarez, 0),
        ("DNN_HW2_Bao_Tran_2003", bao, 0),
        ("DNN_HW2_Cruz_Diaz_2004", cruz, 0),
        ("DNN_HW2_Dara_Okafor_2005", dara, 0),
        ("DNN_HW2_Eli_Cohen_2006", eli, 0),
        ("DNN_HW2_Fay_Wong_2007", fay, 0),
        ("DNN_HW2_Gus_Berg_2008", gus_early, 0),
        ("DNN_HW2_Gus_Berg_2008 (1)", gus, 3600),
    ]:
        zip_folder(folder, download / f"{stem}.zip", t0 + offset)
    return download


#: Automatic points per notebook (01 6, 02 8, 03 6, 04 10, 05 4, 06 6: 40 in all) and a piece of a
#: flag each student must carry ("" for none).
FULL = {"01": 6, "02": 8, "03": 6, "04": 10, "05": 4, "06": 6}
EXPECTED = {
    "2001": (FULL, ""),  # the perfect student
    "2002": (FULL, ""),  # correct, other forms, prints, plots
    "2003": (FULL, ""),  # correct, other forms, helpers
    # ReLU backward from out >= 0 (01: test_relu_backward) and cross-entropy summed, not averaged (03:
    # test_ce_loss); 04 builds its models from the student's own 01-03, so both also cost there
    # (test_l2_loss 3, test_model_gradient_check 4)
    "2004": (dict(FULL, **{"01": 5, "03": 4, "04": 3}), ""),
    "2005": (dict(FULL, **{"05": 0}), ""),  # 05 diverged (learning rate edited)
    "2006": (dict(FULL, **{"06": 0}), ""),  # never ran 06
    # its test cell edited to pass a wrong ReLU backward: restored, so 01 loses test_relu_backward and
    # 04's gradient check of a ReLU network fails as well
    "2007": (dict(FULL, **{"01": 5, "04": 6}), "restored from the master"),
    "2008": (FULL, "duplicate submission"),  # the later attempt counts
}
