"""Run a solution notebook's cells in this process, with chosen pieces of its code replaced.

The wrong-implementation and alternative-implementation suites use this to
execute many variants in seconds, with no kernel start per variant. Grading
itself always runs real kernels through nbgrader; this is only for the
course's own tests of its test cells.
"""

from __future__ import annotations

import contextlib
import io
import json
import linecache
import os
from pathlib import Path

from dnn_course import nbgrader_regions

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions" / "dnn_hw"


def load_cells(notebook: str) -> list[dict]:
    """The code cells of a solution notebook, each as ``{"source", "grade_id", "grade"}``."""
    data = json.loads((SOLUTIONS / notebook).read_text(encoding="utf-8"))
    cells = []
    for cell in data["cells"]:
        if cell["cell_type"] != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        cells.append({"source": source, "grade_id": meta.get("grade_id"), "grade": bool(meta.get("grade"))})
    return cells


def run_notebook(notebook: str, replacements=(), *, hidden_tests: bool = True) -> dict:
    """Execute every code cell of ``notebook`` in order, in one namespace, like "Run All".

    replacements: ``(old, new)`` pairs applied to the non-test cells (the
        student's side); each must match somewhere, so a stale mutation fails loudly.
    hidden_tests: False runs the test cells as students see them, without their hidden tests.
    Returns ``{grade_id: None if that test cell passed, else its exception}``
    for the test cells, plus ``"cell:<grade_id>"`` entries for other cells that raised.
    """
    namespace: dict = {"__name__": "__main__"}
    results = {}
    unmatched = list(replacements)
    previous = os.getcwd()
    os.chdir(SOLUTIONS)  # notebooks 04+ import the earlier notebooks from their own folder
    try:
        for cell in load_cells(notebook):
            source = cell["source"]
            if cell["grade"] and not hidden_tests:
                source = nbgrader_regions.outside_regions(source, kinds=(nbgrader_regions.HIDDEN_TEST,))
            if not cell["grade"]:
                for old, new in replacements:
                    if old in source:
                        source = source.replace(old, new)
                        if (old, new) in unmatched:
                            unmatched.remove((old, new))
            error = None
            with contextlib.redirect_stdout(io.StringIO()):
                filename = f"<{notebook}:{cell['grade_id']}>"
                # like IPython, keep the cell's source where inspect.getsource can find it
                linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
                try:
                    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - the course's own notebook cells, as nbgrader runs them
                except Exception as exception:  # noqa: BLE001 - recorded per cell, as a notebook shows it
                    error = exception
            if cell["grade"]:
                results[cell["grade_id"]] = error
            elif error is not None:
                results[f"cell:{cell['grade_id']}"] = error
    finally:
        os.chdir(previous)
    assert not unmatched, f"replacement(s) matched nothing in {notebook}: {unmatched}"
    return results
