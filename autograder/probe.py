"""Tamper detection: grader-owned cells injected into each notebook before grading.

A *snapshot* cell runs first, before any cell of the course or the student,
and records the identity of everything a test's verdict depends on: numpy's
comparison functions, ``numpy.testing``, a few builtins, the IPython shell's
cell runner, exception hooks and input/AST transformers. A *check* cell runs
after every graded test cell and at the end; it compares with the snapshot and
also checks, independently of it, that numpy's and the course checks'
functions are defined in their installed files (a replacement written in a
notebook is not), that every attribute of ``dnn_course.checks`` and
``dnn_course.gradcheck`` is still the one imported at the start, and that the
names the test cells use for modules (``np``, ``checks``) still point to them. Each check prints one line ``AUTOGRADER-PROBE <token> CLEAN``
or ``... TAMPERED <reasons>``; the grader reads them from the executed
notebook, zeroes a notebook that tampered, and removes these cells before
writing feedback. The token is random per grading run.
"""
from __future__ import annotations

import re

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
    state = {"watched": watched, "numpy": numpy, "course": course,
             "ast": len(ip.ast_transformers), "input": len(ip.input_transformers_post),
             "cleanup": len(ip.input_transformers_cleanup),
             "events": {k: len(v) for k, v in ip.events.callbacks.items()}}
    sys.modules["__autograder_state__"] = type(sys)("__autograder_state__")
    sys.modules["__autograder_state__"].state = state
__autograder_snapshot()
del __autograder_snapshot
'''

CHECK = MARK + r''' check {token} (added by the grader)
def __autograder_check():
    import builtins, os, sys
    reasons = []
    holder = sys.modules.get("__autograder_state__")
    state = getattr(holder, "state", None)
    if not isinstance(state, dict):
        return ["the grader's snapshot was removed"]
    numpy = sys.modules.get("numpy")
    if numpy is not state["numpy"]:
        reasons.append("the numpy module was replaced")
    ip = get_ipython()
    current = {}
    for key in state["watched"]:
        owner, _, name = key.rpartition(".")
        obj = {"numpy": state["numpy"], "numpy.testing": state["numpy"].testing,
               "builtins": builtins, "shell": type(ip)}[owner]
        current[key] = getattr(obj, name, None)
        if current[key] is not state["watched"][key]:
            reasons.append(key + " was replaced")
    for attr in ("run_cell", "run_ast_nodes", "run_code", "showtraceback", "run_cell_async"):
        if attr in vars(ip):
            reasons.append("shell." + attr + " was overridden on the instance")
    if ip.custom_exceptions:
        reasons.append("a custom exception handler was installed")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        reasons.append("a trace or profile hook was installed")
    if (len(ip.ast_transformers), len(ip.input_transformers_post),
            len(ip.input_transformers_cleanup)) != (state["ast"], state["input"], state["cleanup"]):
        reasons.append("an input or AST transformer was added")
    if {k: len(v) for k, v in ip.events.callbacks.items()} != state["events"]:
        reasons.append("an IPython event callback was registered")

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
    return reasons
__autograder_reasons = __autograder_check()
print("AUTOGRADER-PROBE {token} " + ("TAMPERED " + "; ".join(__autograder_reasons) if __autograder_reasons else "CLEAN"))
del __autograder_check, __autograder_reasons
'''


def snapshot_source() -> str:
    return SNAPSHOT


def check_source(token: str, bindings: list[tuple[str, str]] = ()) -> str:
    """The check cell; ``bindings`` are ``(name, module)`` pairs the tests rely on."""
    return CHECK.replace("{token}", token).replace("{bindings}", repr(sorted(bindings)))


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


def read_verdicts(outputs_by_cell: list[str], token: str) -> tuple[bool, list[str]]:
    """``(all_clean, reasons)`` from the stdout text of every check cell.

    A check cell whose line is missing or without the token counts as not clean
    (fail closed), unless the kernel never reached it (text ``None``).
    """
    reasons: list[str] = []
    line = re.compile(rf"AUTOGRADER-PROBE {re.escape(token)} (CLEAN|TAMPERED (.*))")
    for text in outputs_by_cell:
        if text is None:
            continue
        found = line.findall(text)
        if not found:
            reasons.append("an integrity check produced no verdict")
            continue
        for verdict, detail in found:
            if verdict != "CLEAN":
                reasons.extend(r for r in detail.split("; ") if r)
    unique = list(dict.fromkeys(reasons))
    return not unique, unique
