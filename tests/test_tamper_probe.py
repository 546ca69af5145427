"""The tamper probe in a real IPython kernel: the course's libraries never flag, a student's code does.

Each case runs a small nbgrader-style notebook (a locked imports cell, a locked
cell that plots with matplotlib and shows a tqdm bar, a student's answer cell,
a graded test) with the grader's probe cells, in an ordinary kernel, and reads
the verdicts the way the grader does.
"""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from autograder import rebuild, tamper_probe

TOKEN = "t0k3n"


def _cell(source: str, grade_id: str, *, locked=True, solution=False, grade=False, points=0):
    meta = {
        "grade_id": grade_id,
        "locked": locked,
        "solution": solution,
        "grade": grade,
        "schema_version": 3,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})


COURSE_PLOT = """\
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from tqdm.auto import tqdm
from IPython.display import Markdown, display
for _ in tqdm(range(3), desc="epochs"):
    pass
fig, ax = plt.subplots()
ax.plot([0, 1], [1, 0])
display(Markdown("| a |\\n| --- |\\n| 1 |"))
plt.show()
"""


def run_with_probes(answer: str, folder) -> tuple[tuple | None, list[str]]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _cell("import numpy as np\nfrom dnn_course import checks", "imports"),
        _cell(COURSE_PLOT, "course_plot"),
        _cell(answer, "answer", locked=False, solution=True),
        _cell("assert np.allclose(double(np.ones(2)), 2)", "test_double", grade=True, points=1),
        _cell(COURSE_PLOT, "results_plot"),
    ]
    probed = rebuild.add_probes(nb, TOKEN)
    # the grader's kernels run in a working folder of their own (the rule distrusts code from there)
    NotebookClient(
        probed, timeout=120, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(folder)}}
    ).execute()
    checks = [
        (
            tamper_probe.check_label(c.source),
            "".join(o.get("text", "") for o in c.outputs if o.get("output_type") == "stream"),
        )
        for c in probed.cells
        if tamper_probe.is_check(c.source)
    ]
    labels = [label for label, _ in checks]
    return tamper_probe.first_tampering(checks, TOKEN), labels


CLEAN = {
    "plain": "def double(x):\n    return 2 * x",
    "own plots, prints, helpers, stderr, logging, warnings": (
        "import logging, sys, warnings\nimport matplotlib.pyplot as plt\n"
        "def _helper(x):\n    return x + x\n"
        "def double(x):\n    return _helper(x)\n"
        "print('checking', double(1.0))\nprint('a note', file=sys.stderr)\n"
        "logging.warning('careful')\nwarnings.warn('a harmless warning')\n"
        "plt.figure(); plt.plot([1, 2, 3]); plt.title('mine'); plt.show()"
    ),
    "own tqdm bar and display": (
        "from tqdm.auto import tqdm\nfrom IPython.display import display\n"
        "for _ in tqdm(range(2)):\n    pass\ndisplay({'a': 1})\n"
        "def double(x):\n    return 2 * x"
    ),
}

TAMPERED = {
    "event callback": (
        "get_ipython().events.register('post_run_cell', lambda *a: None)",
        "IPython post_run_cell callback (<lambda>) was registered",
    ),
    "event callback from a library function (partial)": (
        "import functools\nget_ipython().events.register('pre_run_cell', functools.partial(print, 'x'))",
        "IPython pre_run_cell callback",
    ),
    "display formatter": (
        "get_ipython().display_formatter.formatters['text/plain'].for_type(float, lambda x, p, c: p.text('4.0'))",
        "text/plain display formatter (<lambda>) was registered",
    ),
    "showtraceback": ("type(get_ipython()).showtraceback = lambda *a, **k: None", "shell.showtraceback was replaced"),
    "custom exception handler": (
        "get_ipython().set_custom_exc((AssertionError,), lambda *a, **k: None)",
        "a custom exception handler was installed",
    ),
    "numpy function": ("np.allclose = lambda *a, **k: True", "numpy.allclose was replaced"),
    "replaced module": (
        "import sys, types\nsys.modules['numpy'] = types.ModuleType('numpy')",
        "the numpy module was replaced",
    ),
    "callback from a file the student wrote": (
        "open('helper_mod.py', 'w').write('def cb(*args):\\n    pass\\n')\nimport importlib, sys\n"
        "sys.path.insert(0, '.')\nimportlib.invalidate_caches()\nimport helper_mod\n"
        "get_ipython().events.register('post_run_cell', helper_mod.cb)",
        "IPython post_run_cell callback (cb) was registered",
    ),
    "ast transformer": (
        "import ast\nclass Quiet(ast.NodeTransformer):\n    pass\nget_ipython().ast_transformers.append(Quiet())",
        "an input or AST transformer (Quiet) was added",
    ),
}


@pytest.mark.parametrize("answer", CLEAN.values(), ids=CLEAN.keys())
def test_what_the_course_and_its_libraries_do_is_never_tampering(answer, tmp_path):
    found, labels = run_with_probes(answer, tmp_path)
    assert labels == ["imports", "course_plot", "answer", "test_double", "results_plot", "end"]
    assert found is None


@pytest.mark.parametrize("attack, reason", TAMPERED.values(), ids=TAMPERED.keys())
def test_what_a_students_cell_installs_is_tampering_and_named_at_that_cell(attack, reason, tmp_path):
    found, _ = run_with_probes("def double(x):\n    return 2 * x\n" + attack, tmp_path)
    assert found is not None
    position, label, reasons = found
    assert (position, label) == (2, "answer")
    assert any(reason in r for r in reasons), reasons


def test_tampering_installed_later_by_the_students_function_is_found_at_the_test(tmp_path):
    lazy = "def double(x):\n    get_ipython().events.register('post_run_cell', lambda *a: None)\n    return 2 * x"
    found, _ = run_with_probes(lazy, tmp_path)
    assert found is not None and found[:2] == (3, "test_double")
