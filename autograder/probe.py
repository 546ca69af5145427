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
snapshot) is outside what an in-process check can rule out; those attacks
are the job of :mod:`autograder.sandbox` and of the grader's own
re-measurement of results, not of this module.
"""
from __future__ import annotations

import os
import re
import sysconfig
from pathlib import Path

MARK = "# autograder-probe"

SNAPSHOT = MARK + r''' snapshot (added by the grader)
def __autograder_snapshot():
    import builtins, sys, numpy, numpy.testing
    ip = get_ipython()
    watched = {}
    for name in ("allclose", "isclose", "array_equal", "array_equiv", "all", "any", "abs",
                 "max", "min", "sum", "mean", "exp", "log", "isfinite", "asarray", "array"):
        watched["numpy." + name] = getattr(numpy, name)
    for name in ("assert_allclose", "assert_array_equal", "assert_array_almost_equal",
                 "assert_equal", "assert_almost_equal"):
        watched["numpy.testing." + name] = getattr(numpy.testing, name)
    for name in ("isinstance", "len", "abs", "all", "any", "float", "int", "round", "print",
                 "AssertionError", "Exception", "ValueError", "TypeError"):
        watched["builtins." + name] = getattr(builtins, name)
    cls = type(ip)
    for name in ("run_cell", "run_ast_nodes", "run_code", "showtraceback", "_showtraceback",
                 "run_cell_async", "transform_cell", "should_run_async"):
        watched["shell." + name] = getattr(cls, name, None)
    import dnn_course.checks, dnn_course.gradcheck
    course = {m.__name__: dict(vars(m)) for m in (dnn_course.checks, dnn_course.gradcheck)}
    overrides = {name: vars(ip).get(name) for name in ("run_cell", "run_ast_nodes", "run_code", "showtraceback",
                                                         "run_cell_async", "_showtraceback", "transform_cell")}
    state = {"watched": watched, "numpy": numpy, "course": course, "overrides": overrides}
    sys.modules["__autograder_state__"] = type(sys)("__autograder_state__")
    sys.modules["__autograder_state__"].state = state
__autograder_snapshot()
del __autograder_snapshot
'''

CHECK = MARK + r''' check {token} {label} (added by the grader)
def __autograder_check():
    import builtins, os, sys
    TRUSTED = {roots}
    reasons = []
    holder = sys.modules.get("__autograder_state__")
    state = getattr(holder, "state", None)
    if not isinstance(state, dict):
        return ["the grader's snapshot was removed"]
    numpy = sys.modules.get("numpy")
    if numpy is not state["numpy"]:
        reasons.append("the numpy module was replaced")
    ip = get_ipython()
    work = os.path.realpath(os.getcwd())

    def trusted_file(filename):
        path = os.path.realpath(filename or "")
        return (os.path.isfile(path) and not path.startswith(work + os.sep)
                and any(path.startswith(root + os.sep) for root in TRUSTED))

    def trusted(obj):
        """Code of the course or of an installed library (not of a notebook cell or a shipped file)."""
        func = getattr(obj, "__func__", obj)
        code = getattr(func, "__code__", None)
        if code is not None:
            return trusted_file(code.co_filename)
        if callable(obj) and getattr(type(obj), "__call__", None) is not None \
                and type(obj).__module__ not in ("builtins", "functools"):
            module = sys.modules.get(type(obj).__module__)
            return trusted_file(getattr(module, "__file__", None))
        return False

    def describe(obj):
        func = getattr(obj, "__func__", obj)
        return getattr(func, "__qualname__", None) or type(obj).__name__

    current = {}
    for key in state["watched"]:
        owner, _, name = key.rpartition(".")
        obj = {"numpy": state["numpy"], "numpy.testing": state["numpy"].testing,
               "builtins": builtins, "shell": type(ip)}[owner]
        current[key] = getattr(obj, name, None)
        if current[key] is not state["watched"][key]:
            reasons.append(key + " was replaced")
    for attr, before in state["overrides"].items():
        if vars(ip).get(attr) is not before:
            reasons.append("shell." + attr + " was overridden on the instance")
    if ip.custom_exceptions:
        reasons.append("a custom exception handler was installed")
    if sys.excepthook is not sys.__excepthook__ and not trusted(sys.excepthook):
        reasons.append("sys.excepthook was replaced")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        reasons.append("a trace or profile hook was installed")
    for event, callbacks in ip.events.callbacks.items():
        for callback in callbacks:
            if not trusted(callback):
                reasons.append("an IPython " + event + " callback (" + describe(callback) + ") was registered")
    for kind in ("ast_transformers", "input_transformers_post", "input_transformers_cleanup"):
        for transformer in getattr(ip, kind, []):
            if not trusted(transformer):
                reasons.append("an input or AST transformer (" + describe(transformer) + ") was added")
    for mime, formatter in ip.display_formatter.formatters.items():
        printers = list(getattr(formatter, "type_printers", {}).values()) \
            + list(getattr(formatter, "deferred_printers", {}).values()) \
            + list(getattr(formatter, "singleton_printers", {}).values())
        for printer in printers:
            if not trusted(printer):
                reasons.append("a " + mime + " display formatter (" + describe(printer) + ") was registered")

    for name, module in {bindings}:
        expected = sys.modules.get(module)
        if expected is None and sys.modules.get(module.rpartition(".")[0]) is not None:
            expected = getattr(sys.modules[module.rpartition(".")[0]], module.rpartition(".")[2], None)
        if expected is not None and name in ip.user_ns and ip.user_ns[name] is not expected:
            reasons.append("the name " + name + " no longer refers to " + module)

    def defined_in(func, folder):
        code = getattr(func, "__code__", None)
        if code is None:
            return True  # builtin or ufunc: compiled code, cannot be redefined in a notebook
        return os.path.realpath(code.co_filename).startswith(folder + os.sep)

    numpy_dir = os.path.dirname(os.path.realpath(state["numpy"].__file__))
    for key, func in current.items():
        if key.startswith("numpy") and callable(func) and not defined_in(func, numpy_dir):
            reasons.append(key + " is not numpy's own")
    for module_name, attributes in state["course"].items():
        module = sys.modules.get(module_name)
        current_attributes = vars(module) if module is not None else {}
        for name, value in attributes.items():
            if (callable(value) or type(value) is type(sys)) and not name.startswith("__") \
                    and current_attributes.get(name) is not value:
                reasons.append(module_name + "." + name + " was replaced")
    return list(dict.fromkeys(reasons))
__autograder_reasons = __autograder_check()
print("AUTOGRADER-PROBE {token} {label} " + ("TAMPERED " + "; ".join(__autograder_reasons) if __autograder_reasons else "CLEAN"))
del __autograder_check, __autograder_reasons
'''

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
    return SNAPSHOT


def check_source(token: str, label: str, bindings: list[tuple[str, str]] = (),
                 roots: list[str] | None = None) -> str:
    """The check cell run after the cell ``label``.

    ``bindings`` are ``(name, module)`` pairs the tests rely on; ``roots`` the
    trusted code folders (default :func:`trusted_roots`).
    """
    label = LABEL.sub("_", label) or "_"
    return (CHECK.replace("{token}", token).replace("{label}", label)
            .replace("{bindings}", repr(sorted(bindings)))
            .replace("{roots}", repr(sorted(roots if roots is not None else trusted_roots()))))


def module_bindings(sources: list[str]) -> list[tuple[str, str]]:
    """``(name, module)`` for every module imported by the given (read-only) cells.

    ``import numpy as np`` gives ``("np", "numpy")``; ``from dnn_course import
    checks`` gives ``("checks", "dnn_course.checks")`` (kept only if that is a
    module when checked).
    """
    import ast

    found = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.add((alias.asname or alias.name.split(".")[0],
                               alias.name if alias.asname else alias.name.split(".")[0]))
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    found.add((alias.asname or alias.name, f"{node.module}.{alias.name}"))
    return sorted(found)


def is_probe(source: str) -> bool:
    return source.startswith(MARK)


def is_check(source: str) -> bool:
    """Whether ``source`` is a check probe (:data:`CHECK`), not the snapshot taken before the tests."""
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
        line = re.compile(rf"^AUTOGRADER-PROBE {re.escape(token)} {re.escape(label)} (CLEAN|TAMPERED (.*))$",
                          re.MULTILINE)
        found = line.findall(text)
        if not found:
            return position, label, ["an integrity check produced no verdict"]
        reasons = [r for verdict, detail in found if verdict != "CLEAN" for r in detail.split("; ") if r]
        if reasons:
            return position, label, list(dict.fromkeys(reasons))
    return None
