"""The reference implementation, loaded from the instructor's solution notebooks.

The reference solution exists once, in ``solutions/dnn_hw/01..04``. Everything
else that needs it (test fixtures, the book's figures, benchmarks, the
reference experiments) calls :func:`load_reference`, which imports the
definition cells of those notebooks with :mod:`dnn_course.notebook_import`.
Students never receive ``solutions/``; this module holds no solution code.
"""

from __future__ import annotations

import functools
import types
from pathlib import Path

from .notebook_import import import_notebooks

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "dnn_hw"
COMPONENT_NOTEBOOKS = (
    "01_activations.ipynb",
    "02_fc_layer.ipynb",
    "03_softmax_cross_entropy.ipynb",
    "04_model_l2.ipynb",
)


def solutions_dir() -> Path:
    """The folder of the instructor's source notebooks, ``<repo>/solutions/dnn_hw``."""
    return REPO_ROOT / "solutions" / ASSIGNMENT


@functools.lru_cache(maxsize=None)
def load_reference() -> types.ModuleType:
    """Return a module with the reference ``softmax``, ``ReLU``, ``Sigmoid``, ``Tanh``,
    ``FCLayer``, ``SoftmaxLayer`` and ``ClassifierModel``.

    Raises ``FileNotFoundError`` with an explanation when ``solutions/`` is not
    there (students' copies of the course do not have it).
    """
    folder = solutions_dir()
    missing = [name for name in COMPONENT_NOTEBOOKS if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"The reference solution needs {', '.join(missing)} in {folder}. "
            "It is part of the instructors' repository only; students use their own notebooks."
        )
    return import_notebooks(*(folder / name for name in COMPONENT_NOTEBOOKS), module_name="dnn_reference")
