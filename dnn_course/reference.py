"""The reference implementation, loaded from the instructor's solution notebooks.

The reference solution exists once, in ``solutions/dnn_hw`` (the notebooks of
:attr:`dnn_course.assignment.Assignment.reference_notebooks`: 01..04). Everything
else that needs it (test fixtures, the book's figures, benchmarks, the
reference experiments, the grader's cross-check) calls :func:`load_reference`,
which imports the definition cells of those notebooks with
:mod:`dnn_course.notebook_import`. Students never receive ``solutions/``; this
module holds no solution code.
"""

from __future__ import annotations

import functools
import types
from pathlib import Path

from .assignment import ASSIGNMENT, Assignment
from .notebook_import import import_notebooks

REPO_ROOT = Path(__file__).resolve().parent.parent


def solutions_dir(assignment: Assignment = ASSIGNMENT) -> Path:
    """The folder of the instructor's source notebooks, ``<repo>/solutions/<assignment name>``."""
    return REPO_ROOT / "solutions" / assignment.name


@functools.cache
def load_reference(folder: Path | None = None, assignment: Assignment = ASSIGNMENT) -> types.ModuleType:
    """Return a module with the reference ``softmax``, ``ReLU``, ``Sigmoid``, ``Tanh``,
    ``FCLayer``, ``SoftmaxLayer`` and ``ClassifierModel``: the definitions of ``assignment``'s
    reference notebooks in ``folder`` (default: :func:`solutions_dir`).

    Raises ``FileNotFoundError`` with an explanation when ``solutions/`` is not
    there (students' copies of the course do not have it).
    """
    folder = Path(folder) if folder is not None else solutions_dir(assignment)
    names = assignment.reference_notebooks
    missing = [name for name in names if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"The reference solution needs {', '.join(missing)} in {folder}. "
            "It is part of the instructors' repository only; students use their own notebooks."
        )
    return import_notebooks(*(folder / name for name in names), module_name="dnn_reference")
