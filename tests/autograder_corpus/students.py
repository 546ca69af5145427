"""Sample submissions for the autograder, generated from the course's notebooks.

A *perfect student* is the released notebook with every answer cell filled
from the solution (markers removed, hidden tests never included). Every other
sample is a mutation of it or of the blank release. :func:`write_zip` packs
notebooks the way the LMS download does (``DNN_HW2_<Name>_<ID>.zip``).
"""

from __future__ import annotations

import copy
import os
import zipfile
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "dnn_hw"


def _solution_text(source: str) -> str:
    """A solution cell's source as a student would write it (no markers)."""
    out = []
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
            continue
        out.append(line)
    return "\n".join(out)


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def released(release_dir: Path) -> dict[str, nbformat.NotebookNode]:
    return {p.name: nbformat.read(p, as_version=4) for p in sorted(release_dir.glob("*.ipynb"))}


def perfect(release_dir: Path, source_dir: Path) -> dict[str, nbformat.NotebookNode]:
    """The released notebooks with every answer taken from the solution."""
    out = {}
    for name, nb in released(release_dir).items():
        source = nbformat.read(source_dir / name, as_version=4)
        answers = {grade_id(c): c.source for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
        nb = copy.deepcopy(nb)
        for cell in nb.cells:
            if grade_id(cell) in answers:
                cell.source = _solution_text(answers[grade_id(cell)])
        out[name] = nb
    return out


def set_answer(nb, gid: str, source: str):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if grade_id(cell) == gid:
            cell.source = source
            return nb
    raise KeyError(gid)


def answer(nb, gid: str) -> str:
    return next(c.source for c in nb.cells if grade_id(c) == gid)


def replace_in_answer(nb, gid: str, old: str, new: str):
    text = answer(nb, gid)
    if old not in text:
        raise ValueError(f"{old!r} not in the answer {gid}")
    return set_answer(nb, gid, text.replace(old, new, 1))


def insert_cell(nb, index: int, source: str):
    nb = copy.deepcopy(nb)
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    return nb


def after(nb, gid: str) -> int:
    """Index just after the cell ``gid``."""
    return next(i for i, c in enumerate(nb.cells) if grade_id(c) == gid) + 1


def dumps(nb) -> bytes:
    return nbformat.writes(nb).encode("utf-8")


def write_zip(
    folder: Path, stem: str, files: dict[str, bytes], prefix: str = "", date_time=(2026, 11, 20, 12, 0, 0)
) -> Path:
    """A zip ``folder/stem.zip`` holding ``files`` under ``prefix`` (deterministic bytes)."""
    path = folder / f"{stem}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(prefix + name, date_time=date_time)
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name])
    return path


# --------------------------------------------------------------------------- the corpus
NB1, NB2, NB3, NB4 = (
    "01_activations.ipynb",
    "02_fc_layer.ipynb",
    "03_softmax_cross_entropy.ipynb",
    "04_model_l2.ipynb",
)
SOLUTION_FILE = str(REPO / "solutions" / ASSIGNMENT / NB1)


def _with_tail(nb, gid: str, tail: str):
    """The answer ``gid`` with ``tail`` appended (the class is defined first)."""
    return set_answer(nb, gid, answer(nb, gid) + "\n\n" + tail)


def _cheat_if(condition: str):
    """Code that breaks ReLU only if ``condition`` is true (a cheat that would work)."""
    return f"if {condition}:\n    ReLU.forward = lambda self, z: z\n"


def build_class(folder: Path, release_dir: Path, source_dir: Path) -> None:
    """Write the sample class into ``folder`` (zip files and folders, LMS style)."""
    folder.mkdir(parents=True, exist_ok=True)
    good = perfect(release_dir, source_dir)
    blank = released(release_dir)
    one = good[NB1]

    def z(stem, files, **kw):
        write_zip(folder, stem, {n: (v if isinstance(v, bytes) else dumps(v)) for n, v in files.items()}, **kw)

    # complete submissions
    z("DNN_HW2_Ada_Correct_1001", {n: good[n] for n in (NB1, NB2, NB3, NB4)})
    z("DNN_HW2_Ben_Partial_1002", {NB1: good[NB1], NB2: good[NB2], NB3: blank[NB3]})
    z("DNN_HW2_Cy_Blank_1003", blank)
    # common mistakes (one notebook each)
    z("DNN_HW2_M_1101", {NB1: replace_in_answer(one, "relu", "(self.out > 0)", "(self.out >= 0)")})
    z(
        "DNN_HW2_M_1102",
        {
            NB1: replace_in_answer(
                one,
                "sigmoid",
                "e = np.exp(-np.abs(z))  # in (0, 1]: cannot overflow\n"
                "        self.out = np.where(z >= 0, 1 / (1 + e), e / (1 + e))",
                "self.out = 1 / (1 + np.exp(-z))",
            )
        },
    )
    z(
        "DNN_HW2_M_1103",
        {NB1: replace_in_answer(one, "tanh", "self.out = np.sign(z) * ((1 - e) / (1 + e))", "self.out = np.tanh(z)")},
    )
    z("DNN_HW2_M_1104", {NB2: replace_in_answer(good[NB2], "fc_layer", "self.dW += reg_lambda * self.W", "pass")})
    z(
        "DNN_HW2_M_1105",
        {NB3: replace_in_answer(good[NB3], "softmax", "shifted = z - z.max(axis=1, keepdims=True)", "shifted = z")},
    )
    z(
        "DNN_HW2_M_1106",
        {NB3: replace_in_answer(good[NB3], "softmax", "np.log(y_hat + EPS)) / y.shape[0]", "np.log(y_hat + EPS))")},
    )
    z(
        "DNN_HW2_M_1107",
        {
            NB1: good[NB1],
            NB2: good[NB2],
            NB3: good[NB3],
            NB4: replace_in_answer(
                good[NB4], "classifier_model", "np.vdot(layer.W, layer.W)", "np.linalg.norm(layer.W, 2)"
            ),
        },
    )
    z("DNN_HW2_M_1108", {NB1: _with_tail(one, "relu", "import warnings\nwarnings.warn('a harmless warning')")})
    z("DNN_HW2_M_1109", {NB1: b""})
    # broken or hostile code
    z("DNN_HW2_H_1201", {NB1: set_answer(one, "relu", answer(one, "relu") + "\ndef broken(:\n")})
    z("DNN_HW2_H_1202", {NB1: set_answer(one, "relu", "import no_such_module_here\n" + answer(one, "relu"))})
    z("DNN_HW2_H_1203", {NB1: set_answer(one, "relu", "while True:\n    pass\n" + answer(one, "relu"))})
    z(
        "DNN_HW2_H_1204",
        {
            NB1: set_answer(
                one,
                "relu",
                "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                "while True:\n    pass\n" + answer(one, "relu"),
            )
        },
    )
    z("DNN_HW2_H_1205", {NB1: _with_tail(one, "relu", "import sys\nsys.exit()")})
    z("DNN_HW2_H_1206", {NB1: _with_tail(one, "relu", "import os\nos._exit(0)")})
    z("DNN_HW2_H_1207", {NB1: _with_tail(one, "relu", "hog = np.ones((200_000, 100_000))")})
    z(
        "DNN_HW2_H_1208",
        {
            NB1: _with_tail(
                one,
                "relu",
                "import os, time\nfor _ in range(100000):\n"
                "    try:\n        os.fork()\n    except OSError:\n"
                "        time.sleep(1)\n        os._exit(0)",
            )
        },
    )
    z(
        "DNN_HW2_H_1209",
        {
            NB1: _with_tail(
                one,
                "relu",
                "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', "
                "'import time; time.sleep(7777)'], start_new_session=True)",
            )
        },
    )
    z(
        "DNN_HW2_H_1210",
        {NB1: _with_tail(one, "relu", "for _ in range(20000):\n    print('spam ' * 40)\nprint('x' * 30_000_000)")},
    )
    z("DNN_HW2_H_1211", {NB1: _with_tail(one, "relu", "list(range(5_000_000))")})
    z(
        "DNN_HW2_H_1212",
        {
            NB1: _with_tail(
                one,
                "relu",
                "import socket\ntry:\n"
                "    socket.create_connection(('93.184.216.34', 80), timeout=3)\n"
                "    NETWORK = True\nexcept OSError:\n    NETWORK = False\n" + _cheat_if("NETWORK"),
            )
        },
    )
    # test cells tampered with
    tests_edited = copy.deepcopy(one)
    for cell in tests_edited.cells:
        if grade_id(cell) == "test_relu_backward":
            cell.source = "print('all good')"
    z("DNN_HW2_T_1301", {NB1: replace_in_answer(tests_edited, "relu", "(self.out > 0)", "(self.out >= 0)")})
    deleted = copy.deepcopy(one)
    deleted.cells = [c for c in deleted.cells if grade_id(c) not in ("test_relu_forward", "imports")]
    z("DNN_HW2_T_1302", {NB1: deleted})
    duplicated = copy.deepcopy(one)
    i = after(duplicated, "test_relu_backward")
    duplicated.cells.insert(i, copy.deepcopy(duplicated.cells[i - 1]))
    duplicated.cells[i]["id"] = "duplicate-of-test"
    z("DNN_HW2_T_1303", {NB1: duplicated})
    markdown = copy.deepcopy(one)
    for index, cell in enumerate(markdown.cells):
        if grade_id(cell) == "test_sigmoid_forward":
            markdown.cells[index] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata)
    z("DNN_HW2_T_1304", {NB1: markdown})
    stripped = copy.deepcopy(one)
    for cell in stripped.cells:
        cell.metadata = {}
    z("DNN_HW2_T_1305", {NB1: stripped})
    inflated = copy.deepcopy(one)
    for cell in inflated.cells:
        if grade_id(cell) == "test_relu_forward":
            cell.metadata["nbgrader"]["points"] = 100
    z("DNN_HW2_T_1306", {NB1: inflated})
    renamed = copy.deepcopy(one)
    for cell in renamed.cells:
        if grade_id(cell) in ("test_relu_forward", "relu"):
            cell.metadata["nbgrader"]["grade_id"] += "_mine"
    z("DNN_HW2_T_1307", {NB1: renamed})
    z("DNN_HW2_T_1308", {"activations_final (1).ipynb": one})
    reordered = insert_cell(one, 1, "def helper_relu(z):\n    return np.maximum(z, 0)")
    reordered = replace_in_answer(reordered, "relu", "np.maximum(z, 0)", "helper_relu(z)")
    cells = reordered.cells
    r = next(i for i, c in enumerate(cells) if grade_id(c) == "relu")
    t = after(reordered, "test_relu_backward")
    cells.insert(t - 1, cells.pop(r))  # the answer moved below its two tests
    z("DNN_HW2_T_1309", {NB1: reordered})
    # integrity: tests fooled
    wrong = replace_in_answer(one, "relu", "np.maximum(z, 0)", "z")
    z(
        "DNN_HW2_I_1401",
        {
            NB1: _with_tail(
                wrong, "relu", "np.allclose = lambda *a, **k: True\nnp.testing.assert_allclose = lambda *a, **k: None"
            )
        },
    )
    z(
        "DNN_HW2_I_1402",
        {
            NB1: _with_tail(
                wrong,
                "relu",
                "import os\nif os.environ.get('DNN_COURSE_EXPERIMENT_PROFILE') "
                "or os.environ.get('NBGRADER_EXECUTION'):\n"
                "    np.allclose = lambda *a, **k: True",
            )
        },
    )
    z(
        "DNN_HW2_I_1403",
        {
            NB1: _with_tail(
                wrong,
                "relu",
                "for _name in list(vars(checks)):\n"
                "    if _name.startswith('check_'):\n"
                "        vars(checks)[_name] = lambda *a, **k: None",
            )
        },
    )
    z(
        "DNN_HW2_I_1404",
        {
            NB1: _with_tail(
                wrong,
                "relu",
                "import types\nchecks = types.SimpleNamespace(**{k: "
                "(lambda *a, **kw: None) for k in dir(checks)})\n"
                "checks.call = lambda what, f, *a, **k: f(*a, **k)\n"
                "checks.fixture = __import__('dnn_course').checks.fixture",
            )
        },
    )
    z("DNN_HW2_I_1405", {NB1: one, "numpy.py": b"raise SystemExit('shadowed numpy')\n"})
    z(
        "DNN_HW2_I_1406",
        {
            NB1: _with_tail(
                one,
                "relu",
                "import os\n"
                + _cheat_if(
                    f"os.path.exists({SOLUTION_FILE!r}) or os.path.exists('../../solutions') or "
                    "any(n.endswith('.db') for n in os.listdir('.'))"
                ),
            )
        },
    )
    z(
        "DNN_HW2_I_1407",
        {
            NB1: _with_tail(
                one,
                "relu",
                "import glob\n_found = [p for p in glob.glob('/tmp/**/*.db', "
                "recursive=True) + glob.glob('/work/main/*.db') + glob.glob('/work/main/*/*.db') + "
                "glob.glob('../**/*.db', recursive=True)]\n"
                "for _p in _found:\n    open(_p, 'wb').write(b'garbage')\n" + _cheat_if("_found"),
            )
        },
    )
    z(
        "DNN_HW2_I_1408",
        {
            NB1: _with_tail(
                one,
                "relu",
                "import glob\n"
                + _cheat_if(
                    "glob.glob('/tmp/autograder-*/job*/work/*.ipynb') or glob.glob('../*/work/*.ipynb') "
                    "or glob.glob('/tmp/**/*.ipynb', recursive=True)"
                ),
            )
        },
    )
    # file formats and archives
    z("DNN_HW2_F_1501", {NB1: b'{"cells": [ this is not json'})
    z("DNN_HW2_F_1502", {NB1: nbformat.writes(nbformat.convert(copy.deepcopy(one), 3)).encode()})
    latin = dumps(_with_tail(one, "relu", "# caf\u00e9")).replace("caf\u00e9".encode(), b"caf\xe9")
    z("DNN_HW2_F_1503", {NB1: latin})
    z("DNN_HW2_F_1504", {NB1: one, "notes.txt": b"hello"}, prefix="DNN_HW2_F_1504/work/notebooks/")
    slip = folder / "DNN_HW2_F_1505.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr(zipfile.ZipInfo("../../escaped.ipynb", (2026, 11, 20, 12, 0, 0)), dumps(one))
        zf.writestr(zipfile.ZipInfo("/tmp/absolute.ipynb", (2026, 11, 20, 12, 0, 0)), dumps(one))
        zf.writestr(zipfile.ZipInfo(NB1, (2026, 11, 20, 12, 0, 0)), dumps(one))
    z("DNN_HW2_F_Zed_1506", {NB1: one}, date_time=(2026, 11, 21, 9, 0, 0))
    z("DNN_HW2_F_Zed_1506 (1)", {NB1: blank[NB1]}, date_time=(2026, 11, 19, 9, 0, 0))
    # the attempt that counts is the newest on the instructor's disk (the dates inside agree here)
    os.utime(folder / "DNN_HW2_F_Zed_1506 (1).zip", (1_700_000_000, 1_700_000_000))
    z("final homework", {NB1: one})
    loose = folder / "DNN_HW2_F_Folder_1508"
    loose.mkdir(exist_ok=True)
    (loose / NB1).write_bytes(dumps(one))
    (loose / "scratch.py").write_text("print('dropped')\n")


#: The grade each sample must get (total of the automatic scores) and a piece of
#: a flag it must carry. Maximum: 01 = 6, 02 = 8, 03 = 6, 04 = 10 points.
EXPECTED = {
    # complete, partial, blank
    "1001": ("30", ""),  # correct 01-04 (05, 06 not submitted)
    "1002": ("14", "04_model_l2.ipynb: not submitted"),  # 01, 02 right, 03 blank
    "1003": ("0", ""),  # the blank release, all six notebooks
    # common mistakes
    "1101": ("5", ""),  # ReLU backward with >= 0 at z = 0
    "1102": ("5", ""),  # sigmoid that overflows (warns) for large negative z
    "1103": ("5", ""),  # tanh through np.tanh (forbidden by the brief)
    "1104": ("5", ""),  # FC backward without the L2 term in dW
    "1105": ("2", ""),  # softmax without the max shift (overflows)
    "1106": ("4", ""),  # cross-entropy summed, not averaged
    "1107": ("23", ""),  # L2 with the spectral norm np.linalg.norm(W, 2)
    "1108": ("6", ""),  # correct code that emits a harmless warning
    "1109": ("0", "unreadable: the file is empty"),
    # broken or hostile code (only 01 submitted; 6 points)
    "1201": ("4", ""),  # syntax error in the ReLU cell
    "1202": ("4", ""),  # exception at import in the ReLU cell
    "1203": ("4", "a cell hit the time limit"),  # infinite loop
    "1204": ("4", "a cell hit the time limit"),  # infinite loop ignoring SIGINT
    "1205": ("6", ""),  # sys.exit() after the class
    "1206": ("4", "the kernel died"),  # os._exit(0) after the class
    "1207": ("6", "memory limit reached"),  # 160 GB allocation
    "1208": ("4", "the kernel died"),  # fork bomb (which then exits its own kernel)
    "1209": ("6", ""),  # detached child process (killed at the end)
    "1210": ("6", "output truncated"),  # huge printed output
    "1211": ("6", ""),  # huge return value
    "1212": ("6", ""),  # network attempt (would break ReLU if it worked)
    # test cells tampered with: the grade is what the code earns
    "1301": ("5", "restored from the master"),  # wrong ReLU, its test replaced by print
    "1302": ("6", "2 read-only or test cell(s) missing"),  # test and imports cells deleted
    "1303": ("6", "1 duplicated cell(s) ignored"),
    "1304": ("6", "restored from the master"),  # test cell turned into markdown
    "1305": ("6", "3 answer cell(s) found without their nbgrader metadata"),  # metadata stripped
    "1306": ("6", ""),  # points inflated to 100
    "1307": ("6", "1 answer cell(s) found without"),  # grade_ids renamed
    "1308": ("6", "graded as '01_activations.ipynb'"),  # notebook renamed
    "1309": ("6", "1 added code cell(s) kept"),  # helper cell added, answer moved
    # tampering with the checks: the notebook scores 0
    "1401": ("0", "integrity check failed"),  # np.allclose, assert_allclose replaced
    "1402": ("0", "integrity check failed"),  # ... only when grading is detected
    "1403": ("0", "dnn_course.checks.check_close was replaced"),
    "1404": ("0", "the name checks no longer refers to dnn_course.checks"),
    "1405": ("6", "dropped 1 other file(s)"),  # numpy.py shipped beside the notebook
    "1406": ("6", ""),  # looks for the solutions and the gradebook (not visible)
    "1407": ("6", ""),  # tries to overwrite any gradebook it can find
    "1408": ("6", ""),  # looks for other students' notebooks
    # files and archives
    "1501": ("0", "unreadable: not valid JSON"),
    "1502": ("6", "converted from nbformat 3"),
    "1503": ("6", "bytes that are not UTF-8 were replaced"),
    "1504": ("6", "dropped 1 other file(s)"),  # nested folders in the zip
    "1505": ("6", "refused unsafe path in archive: '../../escaped.ipynb'"),  # zip slip
    "1506": ("6", "duplicate submission 'DNN_HW2_F_Zed_1506 (1).zip' ignored"),  # latest wins
    "1508": ("6", "dropped 1 other file(s)"),  # a folder, not a zip
    "final_homework": ("6", "name does not match the pattern"),
}
