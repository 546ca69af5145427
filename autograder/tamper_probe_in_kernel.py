"""The tamper probe's code that runs inside the student's kernel (the rule is in :mod:`autograder.tamper_probe`).

The grader never imports this file. :func:`autograder.tamper_probe.snapshot_source` and
:func:`autograder.tamper_probe.check_source` read it and copy each function's source
into the cells they add to every notebook, the way :mod:`autograder.crosscheck`
ships :mod:`autograder.crosscheck_probes` into its sandbox as a file: so the
code that runs in the kernel is Python that linters and tests read. Defined in
a notebook cell, a function's globals are the notebook's namespace (the
kernel's ``get_ipython``). The snapshot cell defines both functions, calls the
snapshot, keeps the check as ``sys.modules["__autograder_state__"].check`` and
deletes both names; each check cell is then one call of that function (a check cell
that carried the function's source cost the kernel four times as much to read).

``__autograder_snapshot()`` runs before any cell of the course or the student.
It reads the objects a verdict depends on (numpy's comparison functions,
``numpy.testing``, builtins, the shell's cell runner and exception handlers,
the course's check modules) and writes their identities to
``sys.modules["__autograder_state__"].state`` (a dict).

``__autograder_check(trusted_roots, bindings)`` runs after every code cell.
``trusted_roots`` are the folders whose code is the course's or a library's
(a list of str); ``bindings`` the ``(name, module)`` pairs the tests rely on.
It reads that snapshot and the kernel's state and returns the reasons it saw
tampering (a list of str, empty when clean); the cell prints the verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # in the kernel, get_ipython is a global of the notebook's namespace
    from IPython import get_ipython


def __autograder_snapshot():
    import builtins
    import sys

    import numpy
    import numpy.testing

    ip = get_ipython()
    watched = {}
    for name in (
        "allclose",
        "isclose",
        "array_equal",
        "array_equiv",
        "all",
        "any",
        "abs",
        "max",
        "min",
        "sum",
        "mean",
        "exp",
        "log",
        "isfinite",
        "asarray",
        "array",
    ):
        watched["numpy." + name] = getattr(numpy, name)
    for name in (
        "assert_allclose",
        "assert_array_equal",
        "assert_array_almost_equal",
        "assert_equal",
        "assert_almost_equal",
    ):
        watched["numpy.testing." + name] = getattr(numpy.testing, name)
    for name in (
        "isinstance",
        "len",
        "abs",
        "all",
        "any",
        "float",
        "int",
        "round",
        "print",
        "AssertionError",
        "Exception",
        "ValueError",
        "TypeError",
    ):
        watched["builtins." + name] = getattr(builtins, name)
    cls = type(ip)
    for name in (
        "run_cell",
        "run_ast_nodes",
        "run_code",
        "showtraceback",
        "_showtraceback",
        "run_cell_async",
        "transform_cell",
        "should_run_async",
    ):
        watched["shell." + name] = getattr(cls, name, None)
    import dnn_course.checks
    import dnn_course.gradcheck

    course = {m.__name__: dict(vars(m)) for m in (dnn_course.checks, dnn_course.gradcheck)}
    overrides = {
        name: vars(ip).get(name)
        for name in (
            "run_cell",
            "run_ast_nodes",
            "run_code",
            "showtraceback",
            "run_cell_async",
            "_showtraceback",
            "transform_cell",
        )
    }
    state = {"watched": watched, "numpy": numpy, "course": course, "overrides": overrides}
    sys.modules["__autograder_state__"] = type(sys)("__autograder_state__")
    sys.modules["__autograder_state__"].state = state


def __autograder_check(trusted_roots, bindings):
    import builtins
    import os
    import sys

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
        return (
            os.path.isfile(path)
            and not path.startswith(work + os.sep)
            and any(path.startswith(root + os.sep) for root in trusted_roots)
        )

    def trusted(obj):
        """Code of the course or of an installed library (not of a notebook cell or a shipped file)."""
        func = getattr(obj, "__func__", obj)
        code = getattr(func, "__code__", None)
        if code is not None:
            return trusted_file(code.co_filename)
        if (
            callable(obj)
            and getattr(type(obj), "__call__", None) is not None  # noqa: B004 - the type's own __call__, not callable()
            and type(obj).__module__ not in ("builtins", "functools")
        ):
            module = sys.modules.get(type(obj).__module__)
            return trusted_file(getattr(module, "__file__", None))
        return False

    def describe(obj):
        func = getattr(obj, "__func__", obj)
        return getattr(func, "__qualname__", None) or type(obj).__name__

    current = {}
    for key in state["watched"]:
        owner, _, name = key.rpartition(".")
        obj = {
            "numpy": state["numpy"],
            "numpy.testing": state["numpy"].testing,
            "builtins": builtins,
            "shell": type(ip),
        }[owner]
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
        printers = (
            list(getattr(formatter, "type_printers", {}).values())
            + list(getattr(formatter, "deferred_printers", {}).values())
            + list(getattr(formatter, "singleton_printers", {}).values())
        )
        for printer in printers:
            if not trusted(printer):
                reasons.append("a " + mime + " display formatter (" + describe(printer) + ") was registered")

    for name, module in bindings:
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
            if (
                (callable(value) or type(value) is type(sys))
                and not name.startswith("__")
                and current_attributes.get(name) is not value
            ):
                reasons.append(module_name + "." + name + " was replaced")
    return list(dict.fromkeys(reasons))
