"""A hostile class: submissions that attack the grader itself, one class of attack per group.

Built from the same perfect student as :mod:`students` (the released notebook
with the reference answers). Each group targets one rule of the grader:

* 16xx escape: replace every file the sandbox can see by a link to a host
  path, then kill the kernel so that the grader restarts it;
* 17xx one bad file never stops a class: broken archives and members,
  a ``.tar.gz``, notebooks nested 200,000 levels deep, metadata and cells of
  the wrong type, names that do not match the pattern, attempts ordered by
  the dates inside the archive;
* 18xx nothing hidden leaks: ``print(In)``, an exception quoting the calling
  test cell through ``linecache``;
* 19xx correct code keeps its points: stderr, logging, a lot of output;
  caps: a submission that fills the disk and cheats if it could;
* 20xx the verdict belongs to the grader: a wrong answer whose kernel forges
  the tamper probe's verdict (it edits the probe's snapshot in the kernel), and an untrained model
  whose notebook forges its partial credit with a display formatter;
* 21xx a fault costs only what it touched: a method that exits, raises ``SystemExit`` or hangs
  only in the grader's own check, a results JSON nested 100,000 deep, a model with a corrupt
  member, a model declaring 620 MB of zeros, a model description with a list for its run's name,
  code that writes over every descriptor the kernel holds.

:func:`build_class` writes the class; :data:`EXPECTED` is each student's
total and a piece of a flag it must carry.
"""

from __future__ import annotations

import copy
import hashlib
import os
import struct
import tarfile
import zipfile
from pathlib import Path

import nbformat

from .students import NB1, NB2, _cheat_if, _with_tail, dumps, grade_id, perfect, released, write_zip

NB6 = "06_fashion_tuning.ipynb"
NB5 = "05_mnist_activations.ipynb"

#: Names of the link targets the escape cases create; a canary folder holds none of them afterwards.
CANARY_FILES = (
    "kernel.json",
    "kernel-inside.json",
    "kernel-1",
    "kernel-2",
    "kernel-3",
    "kernel-4",
    "kernel-5",
    "01_activations.ipynb",
    "mnist_results.json",
)

#: The payloads act only inside the bubblewrap sandbox (working folder /submission): run without it,
#: they would replace the host's own files in /tmp.
INSIDE = 'os.getcwd() == "/submission"'

ESCAPE = (
    """
import os, signal
_canary = {canary!r}
for _folder in ("/ipc", "/submission", os.path.expanduser("~"), "/tmp") if """
    + INSIDE
    + """ else ():
    try:
        _names = set(os.listdir(_folder))
    except OSError:
        continue
    for _name in sorted(_names | set({names!r})):
        _path = os.path.join(_folder, _name)
        try:
            if os.path.isdir(_path) and not os.path.islink(_path):
                continue
            if os.path.lexists(_path):
                os.unlink(_path)
            os.symlink(os.path.join(_canary, _name), _path)
        except OSError:
            pass
os.kill(os.getpid(), signal.SIGKILL)
"""
)

QUOTE_CALLER = """
import linecache, sys
class ReLU(ReLU):
    def forward(self, z):
        frame, quoted = sys._getframe(1), []
        while frame is not None:
            quoted.append("".join(linecache.getlines(frame.f_code.co_filename)))
            frame = frame.f_back
        raise ValueError("caller:\\n" + "\\n".join(quoted))
"""

STDERR = """
import sys
_forward = ReLU.forward
def _noisy(self, z):
    print("ReLU.forward called with", getattr(z, "shape", None), file=sys.stderr)
    return _forward(self, z)
ReLU.forward = _noisy
"""

LOGGING = """
import logging
_forward = ReLU.forward
def _logged(self, z):
    logging.warning("ReLU.forward on %s values", getattr(z, "size", 0))
    return _forward(self, z)
ReLU.forward = _logged
"""

CHATTY = """
_forward = ReLU.forward
def _chatty(self, z):
    for _ in range(3000):
        print("debugging output " * 8)
    return _forward(self, z)
ReLU.forward = _chatty
"""

FILL_DISK = (
    """
import os, tempfile
_written = 0
for _folder in (os.getcwd(), tempfile.gettempdir(), os.path.expanduser("~")) if """
    + INSIDE
    + """ else ():
    for _i in range(4):
        try:
            with open(os.path.join(_folder, f"fill{_i}.bin"), "wb") as _f:
                for _ in range(30):
                    _f.write(b"x" * (1 << 20))
            _written += 30
        except OSError:
            pass
_all_written = _written >= 360
"""
)

DEEP = b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [' + b"[" * 200_000 + b"]" * 200_000 + b"]}"


def non_latin_id(stem: str) -> str:
    """The id the grader's documented rule gives a name with non-ASCII letters (ASCII part + hash)."""
    import re

    ascii_part = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._-") or "unnamed"
    return f"{ascii_part}-{hashlib.sha256(stem.encode()).hexdigest()[:8]}"


IVAN, PETR = "DNN_HW2_Иван_Петров", "DNN_HW2_Пётр_Иванов"


def _corrupt_crc(path: Path, member: str) -> None:
    """Flip one byte of ``member``'s data (stored uncompressed) so that its CRC no longer matches."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    header = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[header + 26 : header + 30])
    start = header + 30 + name_len + extra_len
    data[start + 10] ^= 0xFF
    path.write_bytes(bytes(data))


def _patch_headers(path: Path, member: str, **fields) -> None:
    """Rewrite fields of ``member``'s local and central headers: flags, method, size."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    central = data.index(b"PK\x01\x02")
    while True:  # find the central record of this member
        name_len = struct.unpack("<H", data[central + 28 : central + 30])[0]
        if data[central + 46 : central + 46 + name_len].decode() == member:
            break
        extra, comment = struct.unpack("<HH", data[central + 30 : central + 34])
        central = central + 46 + name_len + extra + comment
    local = info.header_offset
    for base, offsets in (
        (local, {"flags": 6, "method": 8, "size": 22}),
        (central, {"flags": 8, "method": 10, "size": 24}),
    ):
        for key, value in fields.items():
            if key == "flags":
                old = struct.unpack("<H", data[base + offsets[key] : base + offsets[key] + 2])[0]
                data[base + offsets[key] : base + offsets[key] + 2] = struct.pack("<H", old | value)
            elif key == "method":
                data[base + offsets[key] : base + offsets[key] + 2] = struct.pack("<H", value)
            else:
                data[base + offsets[key] : base + offsets[key] + 4] = struct.pack("<I", value)
    path.write_bytes(bytes(data))


def _stored_zip(folder: Path, stem: str, files: dict[str, bytes]) -> Path:
    path = folder / f"{stem}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(files):
            zf.writestr(zipfile.ZipInfo(name, (2026, 11, 20, 12, 0, 0)), files[name])
    return path


def build_class(folder: Path, release_dir: Path, source_dir: Path, canary: Path) -> None:
    """Write the hostile class into ``folder``; the escape cases aim their links at ``canary``."""
    folder.mkdir(parents=True, exist_ok=True)
    good = perfect(release_dir, source_dir)
    blank = released(release_dir)
    one, two = good[NB1], good[NB2]

    def z(stem, files, **kw):
        return write_zip(folder, stem, {n: (v if isinstance(v, bytes) else dumps(v)) for n, v in files.items()}, **kw)

    # 16xx escape: every visible file becomes a link to the host, then the kernel is killed (restart)
    z("DNN_HW2_E_1601", {NB1: _with_tail(one, "relu", ESCAPE.format(canary=str(canary), names=CANARY_FILES)), NB2: two})

    # 17xx one bad file never stops the class
    crc = _stored_zip(folder, "DNN_HW2_B_1701", {NB1: dumps(one), NB2: dumps(two)})
    _corrupt_crc(crc, NB1)
    lying = _stored_zip(folder, "DNN_HW2_B_1702", {NB1: dumps(one), NB2: dumps(two)})
    _patch_headers(lying, NB1, size=1000)
    encrypted = _stored_zip(folder, "DNN_HW2_B_1703", {NB1: dumps(one), NB2: dumps(two)})
    _patch_headers(encrypted, NB1, flags=0x1)
    method = _stored_zip(folder, "DNN_HW2_B_1704", {NB1: dumps(one), NB2: dumps(two)})
    _patch_headers(method, NB1, method=99)
    with tarfile.open(folder / "DNN_HW2_B_1705.tar.gz", "w:gz") as tar:
        source = folder / "tmp-1705.ipynb"
        source.write_bytes(dumps(one))
        tar.add(source, arcname=NB1)
        source.unlink()
    z("DNN_HW2_B_1706", {NB1: DEEP, NB2: two})  # deep JSON, exact name
    z("DNN_HW2_B_1707", {"my copy.ipynb": DEEP, NB1: one})  # deep JSON, renamed (read by collect)
    bad_meta = copy.deepcopy(one)
    for cell in bad_meta.cells:
        if grade_id(cell) == "relu":
            cell.metadata["nbgrader"] = "not an object"
        elif grade_id(cell) == "sigmoid":
            cell.metadata["nbgrader"] = ["a", "list"]
    bad_meta_text = dumps(bad_meta)
    z("DNN_HW2_B_1708", {NB1: bad_meta_text, NB2: two})
    wrong_cells = dumps(one).replace(b'"cells": [', b'"cells": [7, "text", null, {"cell_type": "spreadsheet"}, ', 1)
    z("DNN_HW2_B_1709", {NB1: wrong_cells, NB2: two})
    z(IVAN, {NB1: one})
    z(PETR, {NB1: one, NB2: two})
    # attempts: the dates inside say the blank copy is newer; the instructor's disk says otherwise
    z("DNN_HW2_B_1711", {NB1: one}, date_time=(2020, 1, 1, 0, 0, 0))
    z("DNN_HW2_B_1711 (1)", {NB1: blank[NB1]}, date_time=(2035, 1, 1, 0, 0, 0))
    os.utime(folder / "DNN_HW2_B_1711.zip", (1_800_000_000, 1_800_000_000))
    os.utime(folder / "DNN_HW2_B_1711 (1).zip", (1_700_000_000, 1_700_000_000))
    # same time on disk: the higher copy number wins, whatever the dates inside
    z("DNN_HW2_B_1712", {NB1: blank[NB1]}, date_time=(2035, 1, 1, 0, 0, 0))
    z("DNN_HW2_B_1712 (2)", {NB1: one}, date_time=(2020, 1, 1, 0, 0, 0))
    for stem in ("DNN_HW2_B_1712", "DNN_HW2_B_1712 (2)"):
        os.utime(folder / f"{stem}.zip", (1_800_000_000, 1_800_000_000))

    # 18xx nothing hidden leaks into feedback
    last = copy.deepcopy(one)
    last.cells.append(nbformat.v4.new_code_cell("print(In)\nprint(repr(In))"))
    z("DNN_HW2_L_1801", {NB1: last})
    z("DNN_HW2_L_1802", {NB1: _with_tail(one, "relu", QUOTE_CALLER)})

    # 19xx correct code keeps its points; the disk cap holds
    z("DNN_HW2_S_1901", {NB1: _with_tail(one, "relu", STDERR)})
    z("DNN_HW2_S_1902", {NB1: _with_tail(one, "relu", LOGGING)})
    z("DNN_HW2_S_1903", {NB1: _with_tail(one, "relu", CHATTY)})
    z("DNN_HW2_C_1951", {NB1: _with_tail(one, "relu", FILL_DISK + _cheat_if("_all_written"))})
    # 20xx the verdict belongs to the grader
    wrong = _with_tail(_replace_answer(one, "relu", "np.maximum(z, 0)", "z"), "relu", FORGE_VERDICT)
    z("DNN_HW2_V_2001", {NB1: wrong})
    z("DNN_HW2_V_2002", {NB6: _with_tail(good[NB6], "configurations", FORGE_FORMATTER), **untrained_fashion(folder)})

    # 21xx a fault costs only what it touched: code that kills, hangs or exits the grader's own check
    # (only outside the notebook's kernel, so the notebook's tests pass), and files that crashed the grader
    z(
        "DNN_HW2_F_2101",
        {
            NB1: _replace_answer(
                one,
                "sigmoid",
                "d_z = d_prev * self.out",
                OUTSIDE_KERNEL.format("_os._exit(0)") + "d_z = d_prev * self.out",
            ),
            NB2: two,
        },
    )
    z(
        "DNN_HW2_F_2102",
        {
            NB1: _replace_answer(one, "tanh", "d_z = d_prev * (1", OUTSIDE_KERNEL.format(HANG) + "d_z = d_prev * (1"),
            NB2: two,
        },
    )
    z(
        "DNN_HW2_F_2103",
        {
            NB1: one,
            NB2: _replace_answer(
                two,
                "fc_layer",
                "self.W -= learning_rate",
                OUTSIDE_KERNEL.format("raise SystemExit(0)") + "self.W -= learning_rate",
            ),
        },
    )
    z("DNN_HW2_F_2104", {NB1: one, **bad_data_files()})
    z("DNN_HW2_F_2105", {NB1: one, NB6: good[NB6], **untrained_fashion(folder, info={"name": ["run 0"]})})
    z(
        "DNN_HW2_F_2106",
        {
            NB1: _replace_answer(
                one, "relu", "self.out = np.maximum(z, 0)", WRITE_EVERY_FD + "self.out = np.maximum(z, 0)"
            ),
            NB2: two,
        },
    )

    # 23xx the grader measures the network the brief asks for, not the one a file claims to be (issue 21)
    z("DNN_HW2_N_2301", {NB5: good[NB5], **swapped_networks(folder, "2301", [784, 500, 500, 10], "relu")})
    z("DNN_HW2_N_2302", {NB5: good[NB5], **swapped_networks(folder, "2302", [784, 100, 10], "sigmoid")})
    z("DNN_HW2_N_2303", {NB6: good[NB6], **fashion_not_recorded(folder, "2303", fitted_to_test=False)})
    z("DNN_HW2_N_2304", {NB6: good[NB6], **fashion_not_recorded(folder, "2304", fitted_to_test=True)})

    # 22xx caps: three children of 1 GB each, every one under the 2048 MB per-process limit, together past the
    # submission's 2048 MB total cap (before: they held 3 GB and the cell passed)
    z("DNN_HW2_M_2201", {NB1: _with_tail(one, "relu", FORK_AND_FILL), NB2: two})


FORGE_VERDICT = """
import sys as _sys, numpy as _numpy
from dnn_course import checks as _checks
# the tamper probe's snapshot lives in the kernel: edit it, and give the fakes the files of the originals
_state = _sys.modules["__autograder_state__"].state
_fake = eval(compile("lambda *a, **k: True", _numpy.__file__, "eval"))
_numpy.allclose = _fake
_state["watched"]["numpy.allclose"] = _fake
for _name, _value in list(vars(_checks).items()):
    if _name.startswith("check_") and callable(_value):
        _nothing = eval(compile("lambda *a, **k: None", _checks.__file__, "eval"))
        vars(_checks)[_name] = _nothing  # the module refuses setattr; its dict does not
        _state["course"]["dnn_course.checks"][_name] = _nothing
"""

FORGE_FORMATTER = """
get_ipython().display_formatter.formatters["text/plain"].for_type(float, lambda x, p, cycle: p.text("4.0"))
"""


def _replace_answer(nb, gid, old, new):
    from .students import replace_in_answer

    return replace_in_answer(nb, gid, old, new)


OUTSIDE_KERNEL = "import sys as _sys, os as _os\n        if 'ipykernel' not in _sys.modules:\n            {}\n        "
HANG = (
    "while True:\n                try:\n                    pass\n                except BaseException:\n"
    "                    pass"
)


#: Garbage written to every descriptor the process holds (the kernel's own sockets and pipes included).
WRITE_EVERY_FD = (
    "import os as _os\n        for _fd in range(3, 1024):\n            try:\n"
    "                _os.write(_fd, b'\\xff' * 4096)\n            except OSError:\n"
    "                pass\n        "
)


#: Three forked children that each fill 1 GB (touched: resident) and hold it 8 s; only in the notebook's kernel.
FORK_AND_FILL = """
import os as _os, sys as _sys, time as _time
if "ipykernel" in _sys.modules:
    _kids = []
    for _ in range(3):
        _pid = _os.fork()
        if _pid == 0:
            _block = b"\\x01" * (1024 * 1024 * 1024)
            _time.sleep(8)
            _os._exit(0)
        _kids.append(_pid)
    for _pid in _kids:
        _os.waitpid(_pid, 0)
"""


def bad_data_files() -> dict[str, bytes]:
    """A results JSON nested 100,000 deep, a model with a corrupt member, a model declaring 600 MB of zeros."""
    import io
    import zipfile

    import numpy as np

    deep = b'{"runs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        W1=np.arange(7840.0).reshape(784, 10),
        b1=np.zeros(10),
        description=np.array('{"layer_sizes": [784, 10], "activation": "relu", "info": {}}'),
    )
    corrupt = bytearray(buffer.getvalue())
    corrupt[200:260] = b"\xff" * 60  # inside W1's deflated data
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("W1.npy", "w", force_zip64=True) as member:
            member.write(np.lib.format.magic(1, 0))
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": "<f8", "fortran_order": False, "shape": (784, 100_000)}
            )
            member.write(header.getvalue())
            zeros = bytes(1 << 24)
            for _ in range(37):  # 37 x 16 MiB = 620 MB of zeros, about 0.6 MB deflated
                member.write(zeros)
    return {"mnist_results.json": deep, "fashion_model.npz": bytes(corrupt), "mnist_model_relu.npz": bomb.getvalue()}


def untrained_fashion(folder: Path, info: dict | None = None) -> dict[str, bytes]:
    """fashion_results.json and fashion_model.npz of three untrained runs that claim 0.95.

    ``info``: entries that replace those of the saved model's description (a malformed one).
    """
    import numpy as np

    from dnn_course.experiment import run_plan
    from dnn_course.model_builder import build_classifier
    from dnn_course.reference import load_reference
    from dnn_course.training import History

    reference, scratch = load_reference(), folder.parent / "untrained-fashion"
    scratch.mkdir(exist_ok=True)

    def untrained(name, settings):
        model = build_classifier(reference, [784, 16, 10], "relu", seed=0, dtype=np.float32)
        history = History(
            train_loss=[0.1],
            train_acc=[0.95],
            val_acc=[0.95],
            test_acc=0.95,
            epoch_seconds=[1.0],
            config=dict(settings, batch_size=128, hidden=[16], activation="relu"),
            data_description="Fashion-MNIST (forged)",
        )
        return history, model, [784, 16, 10], "relu"

    plan = {
        f"run {i}": dict(hidden=[16], activation="relu", epochs=1, learning_rate=0.1, reg_lambda=0.0) for i in range(3)
    }
    experiment = run_plan(
        plan,
        untrained,
        scratch / "fashion_results.json",
        lambda name, rid: scratch / f"{rid}.npz",
        "forged",
        log=lambda *_: None,
    )
    model = (scratch / f"{experiment.ids['run 0']}.npz").read_bytes()
    if info:
        import io
        import json

        with np.load(io.BytesIO(model)) as archive:
            arrays = {key: archive[key] for key in archive.files}
        description = json.loads(str(arrays["description"]))
        description["info"].update(info)
        arrays["description"] = np.array(json.dumps(description))
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        model = buffer.getvalue()
    return {"fashion_results.json": (scratch / "fashion_results.json").read_bytes(), "fashion_model.npz": model}


def _forged_experiment(
    folder: Path, stem: str, dataset: str, plan: dict, networks: dict, results: str, model_file
) -> Path:
    """A results file whose runs record what ``networks`` measure (honest claims, the plan's settings).

    ``networks``: ``{run name: (layer sizes, activation the weights are trained with, activation the
    description names, training images, labels, epochs, learning rate)}``; each is trained with the
    course's reference in a second or two. Returns the scratch folder that holds the files.
    """
    import numpy as np

    from dnn_course.evaluate import predict_classes
    from dnn_course.experiment import run_plan
    from dnn_course.model_builder import build_classifier
    from dnn_course.reference import load_reference
    from dnn_course.training import History, train

    reference, scratch = load_reference(), folder.parent / f"forged-{stem}"
    scratch.mkdir(exist_ok=True)
    from dnn_course.datasets import load_dataset

    (_, _), (x_test, y_test) = load_dataset(dataset, verbose=False)

    def forged(name, settings):
        sizes, trained_as, named, x, y, epochs, rate = networks[name]
        model = build_classifier(reference, sizes, trained_as, seed=0, dtype=np.float32)
        train(model, x, y, epochs=epochs, learning_rate=rate, batch_size=128, seed=0, dtype=np.float32, progress=False)
        layers = [(layer.W, layer.b) for layer in model.layers.values() if hasattr(layer, "W")]
        measured = float(np.mean(predict_classes(layers, named, x_test) == y_test))
        n = int(settings["epochs"])
        history = History(
            train_loss=[0.1] * n,
            train_acc=[measured] * n,
            val_acc=[measured] * n,
            test_acc=measured,
            epoch_seconds=[1.0] * n,
            config=dict(settings),
            data_description=f"{dataset} (forged)",
        )
        return history, model, sizes, named

    run_plan(
        plan,
        forged,
        scratch / results,
        lambda name, rid: scratch / model_file(name, rid),
        "forged",
        log=lambda *_: None,
    )
    return scratch


def swapped_networks(folder: Path, stem: str, sizes: list[int], sigmoid_as: str) -> dict[str, bytes]:
    """05's results and three saved networks with the brief's settings recorded and honest claims.

    ``sizes``: the networks' layers; ``sigmoid_as``: the activation the "sigmoid" run's network is
    trained with and named by in its file (``"relu"``: a ReLU network saved as the sigmoid run).
    """
    from dnn_course.datasets import load_dataset

    (x_train, y_train), _ = load_dataset("mnist", verbose=False)
    brief = dict(layer_sizes=[784, 500, 500, 10], epochs=100, learning_rate=0.001, batch_size=128, reg_lambda=1e-8)
    x, y = x_train[:8000], y_train[:8000]
    networks = {
        "sigmoid": (sizes, sigmoid_as, sigmoid_as, x, y, 3, 0.5 if sigmoid_as == "sigmoid" else 0.05),
        "relu": (sizes, "relu", "relu", x, y, 3, 0.05),
        "tanh": (sizes, "tanh", "tanh", x, y, 3, 0.05),
    }
    scratch = _forged_experiment(
        folder,
        stem,
        "mnist",
        dict.fromkeys(networks, brief),
        networks,
        "mnist_results.json",
        lambda name, rid: f"mnist_model_{name}.npz",
    )
    return {
        name: (scratch / name).read_bytes()
        for name in ("mnist_results.json", "mnist_model_sigmoid.npz", "mnist_model_relu.npz", "mnist_model_tanh.npz")
    }


def fashion_not_recorded(folder: Path, stem: str, fitted_to_test: bool) -> dict[str, bytes]:
    """06's results of three recorded 784-16-10 runs and a saved model that is none of them.

    ``fitted_to_test``: the model is a 784-256-10 network trained on the test images and its run records
    that architecture (everything consistent but the data it learnt); else a 784-100-10 network trained
    honestly on training images, saved under the name and run id of a 784-16-10 run.
    """
    from dnn_course.datasets import load_dataset

    (x_train, y_train), (x_test, y_test) = load_dataset("fashion-mnist", verbose=False)
    settings = {
        f"run {i}": dict(hidden=[16], activation="relu", epochs=3, learning_rate=0.1, reg_lambda=0.0, batch_size=128)
        for i in range(3)
    }
    small = ([784, 16, 10], "relu", "relu", x_train[:4000], y_train[:4000], 1, 0.1)
    networks = dict.fromkeys(settings, small)
    if fitted_to_test:
        settings["run 0"] = dict(settings["run 0"], hidden=[256], epochs=40, learning_rate=0.2)
        networks["run 0"] = ([784, 256, 10], "relu", "relu", x_test, y_test, 40, 0.2)
    else:
        networks["run 0"] = ([784, 100, 10], "relu", "relu", x_train[:9000], y_train[:9000], 10, 0.1)
    scratch = _forged_experiment(
        folder, stem, "fashion-mnist", settings, networks, "fashion_results.json", lambda name, rid: f"{rid}.npz"
    )
    from dnn_course.experiment import load_experiment

    run0 = load_experiment(scratch / "fashion_results.json").ids["run 0"]
    return {
        "fashion_results.json": (scratch / "fashion_results.json").read_bytes(),
        "fashion_model.npz": (scratch / f"{run0}.npz").read_bytes(),
    }


#: Expected total and a piece of a flag. Maximum: 01 = 6, 02 = 8.
EXPECTED = {
    # escape: the kill loses ReLU (defined in the killed cell); nothing is written on the host
    "1601": ("12", "the kernel died"),
    # bad archives, members and notebooks: only the bad part costs
    "1701": ("8", "'01_activations.ipynb' could not be unpacked (BadZipFile"),
    "1702": ("8", "'01_activations.ipynb' could not be unpacked"),
    "1703": ("8", "'01_activations.ipynb' could not be unpacked (RuntimeError"),
    "1704": ("8", "'01_activations.ipynb' could not be unpacked (NotImplementedError"),
    "1705": ("0", "not a zip file or folder (.tar.gz)"),
    "1706": ("8", "01_activations.ipynb: unreadable: its JSON is nested too deeply"),
    "1707": ("6", "unrecognised notebook 'my copy.ipynb' ignored"),
    "1708": ("14", "2 cell(s) with a source or nbgrader metadata of the wrong type; ignored"),
    "1709": ("14", "4 entries of its cell list not a notebook cell; ignored"),
    non_latin_id(IVAN): ("6", "name does not match the pattern"),
    non_latin_id(PETR): ("14", "name does not match the pattern"),
    "1711": ("6", "duplicate submission 'DNN_HW2_B_1711 (1).zip' ignored"),
    "1712": ("6", "duplicate submission 'DNN_HW2_B_1712.zip' ignored"),
    # leaks: graded as usual, the feedback carries no hidden line
    "1801": ("6", ""),
    "1802": ("4", ""),
    # stderr, logging, long output in correct code
    "1901": ("6", ""),
    "1902": ("6", ""),
    "1903": ("6", "output truncated"),
    # the disk cap: the writes fail, so the cheat never fires
    "1951": ("6", ""),
    # the verdict: a wrong ReLU.forward passes its notebook test (checks disabled, the probe's snapshot edited)
    # but not the grader's own check, run apart from the kernel; ReLU.backward is right and keeps its point
    "2001": ("5", "the grader's own check disagrees with the notebook's tests (test_relu_forward)"),
    # forged partial credit: the formatter is tampering (the tests after it do not count) and the
    # grader measures the untrained model itself: 0.1 of accuracy, no point
    "2002": ("0", "display formatter"),
    # a fault costs only what it touched: code that exits (os._exit, SystemExit) or hangs ignoring interrupts
    # in the grader's own check costs the one test that ran it (before: the check died, the submission got 0)
    "2101": ("13", "the grader's own check disagrees with the notebook's tests (test_sigmoid_backward)"),
    "2102": ("13", "the grader's own check disagrees with the notebook's tests (test_tanh_backward)"),
    "2103": ("13", "the grader's own check disagrees with the notebook's tests (test_fc_update)"),
    # files that crashed the grader (deep JSON, a corrupt member) or swelled it (620 MB declared): flagged, ignored
    "2104": ("6", "mnist_model_relu.npz is not a valid npz file (declares 620,757,128 bytes of arrays"),
    # a list where the model's description names its run (before: TypeError, 'the grader failed', 0 for all)
    "2105": ("6", ""),
    # writing over every descriptor breaks the kernel's channels: the grader's sends time out, the kernel is
    # restarted and the cell charged; ReLU (defined before) is gone (before: stalled to the submission limit)
    "2106": ("12", "the kernel broke its channel to the grader and was restarted"),
    # the network measured is the one the brief asks for (05: 2 for the recorded runs + the measured test;
    # 06's forged search earns nothing): a ReLU network saved as the sigmoid run (before: 4, now 3);
    # 784-100-10 networks (before: 4); a 06 model of no recorded run's layers (before: 1); a 06 model fitted to
    # the test images, 0.933 there and 0.856 on the embedded validation split it never saw (before: 4)
    "2301": ("3", "test_mnist_accuracies: network not as the brief asks: mnist_model_sigmoid.npz is saved as a relu"),
    "2302": ("2", "mnist_model_relu.npz holds a 784-100-10 network, not the brief's 784-500-500-10"),
    "2303": ("0", "test_fashion_model_accuracy: model not among the recorded runs: fashion_model.npz is not the"),
    "2304": ("0", "test_fashion_model_accuracy: fitted to the test images: 0.9"),
    # the submission's processes together past the total memory cap: all stopped, the cell charged, the kernel
    # restarted; ReLU (defined in that cell) is gone, 02 keeps its points (before: 14, no flag)
    "2201": ("12", "memory cap reached"),
}
