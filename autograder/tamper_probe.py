"""Tamper detection: grader-owned cells injected into each notebook before grading.

The rule
--------
A test's verdict depends on objects the student's code could change: numpy's
comparison functions, ``numpy.testing``, builtins, the course's check
functions, the IPython shell's cell runner, its exception handlers, its event
callbacks, its input and AST transformers and its display formatters.
**Whatever the course's own code and the libraries it uses install is
legitimate; whatever code written by the student installs is tampering.**
"Written by the student" is decided by where the code lives, not by a list of
known names: a callback, transformer or formatter counts as the course's or a
library's only when it is a Python function (or an object whose class is)
compiled from a file inside the installed interpreter's library folders or the
course package (:func:`trusted_roots`, computed by the grader and written into
the check cell as a constant) and outside the kernel's working folder. A
function defined in a notebook cell, in a file the student shipped, a lambda
built in a cell, a ``functools.partial`` or a builtin bound to a student's
purpose fail that test. So matplotlib's ``post_execute`` hook, tqdm's and
IPython's own display hooks are accepted wherever they appear, and a student's
callback is flagged wherever it appears. Objects that are never legitimately
replaced (numpy's functions, builtins, the shell's methods, the course
checks) are compared by identity with the snapshot.

The cells
---------
A *snapshot* cell runs first, before any cell of the course or the student,
and records identities. A *check* cell runs after every code cell and at the
end, and prints one line ``AUTOGRADER-PROBE <token> <cell> CLEAN`` or
``... <cell> TAMPERED <reasons>``, where ``<cell>`` names the cell just run
(its grade id, or its position). The grader (:func:`first_tampering`) finds the
first cell after which tampering was seen; only the graded tests from that
cell on are not counted, the feedback and the class report say which cell
did what, and the probe cells are removed before feedback is written. The
token is random per grading run; a missing or foreign verdict line counts as
tampering (fail closed).

Limits: these checks run inside the student's kernel, so code written to
defeat this very probe (rewriting the kernel's output stream, editing the
snapshot or replacing the check function it keeps) is outside what an
in-process check can rule out; those attacks are the job of
:mod:`autograder.sandbox` and of the grader's own re-measurement of results,
not of this module.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import sysconfig
from pathlib import Path

MARK = "# autograder-probe"
#: The module the snapshot cell leaves in the kernel's ``sys.modules``: the identities it recorded
#: (``state``) and the check function (``check``), defined once per kernel so each check cell is one call.
STATE_MODULE = "__autograder_state__"
#: The check's reason when the snapshot is gone (said by the check function too).
SNAPSHOT_REMOVED = "the grader's snapshot was removed"

#: The file whose functions the probe cells define and call in the kernel.
KERNEL_CODE = Path(__file__).with_name("tamper_probe_in_kernel.py")


@functools.cache
def kernel_function(name: str) -> str:
    """The source of the function ``name`` of :data:`KERNEL_CODE`, as written there."""
    text = KERNEL_CODE.read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_source_segment(text, node)
    raise LookupError(f"{KERNEL_CODE} defines no function {name}: the probe cells cannot be built")


LABEL = re.compile(r"[^A-Za-z0-9_.:-]")


def trusted_roots() -> list[str]:
    """Folders whose code is the course's or an installed library's (never a student's).

    The interpreter's standard library and site-packages folders, and the
    folder of the course package (an editable install lives outside
    site-packages). Resolved on the grader's side, with the interpreter that
    also runs the kernels.
    """
    import dnn_course

    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots.add(str(Path(dnn_course.__file__).parent))
    return sorted({os.path.realpath(root) for root in roots})


def snapshot_source() -> str:
    """The snapshot cell, run before any cell of the course or the student."""
    return (
        f"{MARK} snapshot (added by the grader)\n{kernel_function('__autograder_snapshot')}\n"
        f"{kernel_function('__autograder_check')}\n"
        "__autograder_snapshot()\n"
        f'__import__("sys").modules["{STATE_MODULE}"].check = __autograder_check\n'
        "del __autograder_snapshot, __autograder_check\n"
    )


def check_source(token: str, label: str, bindings: list[tuple[str, str]] = (), roots: list[str] | None = None) -> str:
    """The check cell run after the cell ``label``.

    ``bindings`` are ``(name, module)`` pairs the tests rely on; ``roots`` the
    trusted code folders (default :func:`trusted_roots`).
    """
    label = LABEL.sub("_", label) or "_"
    roots = sorted(roots if roots is not None else trusted_roots())
    return (
        f"{MARK} check {token} {label} (added by the grader)\n"
        f'__autograder_reasons = getattr(__import__("sys").modules.get("{STATE_MODULE}"), "check", '
        f"lambda *_: [{SNAPSHOT_REMOVED!r}])({roots!r}, {sorted(bindings)!r})\n"
        f'print("AUTOGRADER-PROBE {token} {label} " + ("TAMPERED " + "; ".join(__autograder_reasons) '
        'if __autograder_reasons else "CLEAN"))\n'
        "del __autograder_reasons\n"
    )


def module_bindings(sources: list[str]) -> list[tuple[str, str]]:
    """``(name, module)`` for every module imported by the given (read-only) cells.

    ``import numpy as np`` gives ``("np", "numpy")``; ``from dnn_course import
    checks`` gives ``("checks", "dnn_course.checks")`` (kept only if that is a
    module when checked).
    """
    found = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.add(
                        (
                            alias.asname or alias.name.split(".")[0],
                            alias.name if alias.asname else alias.name.split(".")[0],
                        )
                    )
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    found.add((alias.asname or alias.name, f"{node.module}.{alias.name}"))
    return sorted(found)


def is_probe(source: str) -> bool:
    return source.startswith(MARK)


def is_check(source: str) -> bool:
    """Whether ``source`` is a check cell (:func:`check_source`), not the snapshot taken before the tests."""
    return source.startswith(MARK + " check ")


def check_label(source: str) -> str:
    """The label of the cell a check cell follows (from the check cell's own source)."""
    first = source.split("\n", 1)[0].split()
    return first[4] if len(first) > 4 else "?"


def first_tampering(checks: list[tuple[str, str | None]], token: str) -> tuple[int, str, list[str]] | None:
    """``(position in checks, cell label, reasons)`` of the first check that saw tampering; None if all clean.

    ``checks`` holds, in notebook order, ``(label, stdout text)`` of every check
    cell; text None means the kernel never ran that check (a time limit or a
    dead kernel), which is not evidence of tampering. A check that ran but
    printed no verdict line for this run's token fails closed.
    """
    for position, (label, text) in enumerate(checks):
        if text is None:
            continue
        line = re.compile(
            rf"^AUTOGRADER-PROBE {re.escape(token)} {re.escape(label)} (CLEAN|TAMPERED (.*))$", re.MULTILINE
        )
        found = line.findall(text)
        if not found:
            return position, label, ["an integrity check produced no verdict"]
        reasons = [r for verdict, detail in found if verdict != "CLEAN" for r in detail.split("; ") if r]
        if reasons:
            return position, label, list(dict.fromkeys(reasons))
    return None
