"""Import the *definitions* of Jupyter notebooks as a Python module.

Later exercise notebooks build on what the student wrote in earlier ones: the
model notebook uses the student's own layers, the experiments use the
student's own model. ``import_notebooks`` makes that possible without copying
code around: it runs only the cells of a notebook that *define* things
(imports, ``def``, ``class`` and plain constant assignments) and skips every
cell that *does* something (tests, demos, training runs). The same function
loads the reference solution from ``solutions/`` (see ``reference.py``).

A cell counts as a definition cell when each of its top-level statements is
an import, a function or class definition, a docstring, or an assignment whose
value is a literal (``EPS = 1e-10``). The rule looks at the code only, so it
works the same on the instructor's source notebooks, the generated exercises
and a student's submission, with or without nbgrader metadata.
"""

from __future__ import annotations

import ast
import json
import types
from pathlib import Path

__all__ = ["NotebookImportError", "definition_cells", "import_notebooks"]


class NotebookImportError(ImportError):
    """A notebook could not be imported; the message names the notebook, the cell and the fix."""


_DEFINITION_NODES = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _is_definition(statement: ast.stmt) -> bool:
    if isinstance(statement, _DEFINITION_NODES):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return True  # a docstring or a bare string
    if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
        return _is_literal(statement.value)
    return False


def _strip_magics(source: str) -> str:
    """Blank out IPython magics and shell escapes so the cell parses as Python."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def definition_cells(notebook_path: str | Path) -> list[tuple[int, str]]:
    """Return ``(cell_number, source)`` for each definition cell of a notebook.

    ``cell_number`` counts all cells from 1, as Jupyter shows them. Raises
    ``NotebookImportError`` for a file that is not a readable notebook or for a
    definition-looking cell with a syntax error.
    """
    path = Path(notebook_path)
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cells = notebook["cells"]
    except FileNotFoundError:
        raise NotebookImportError(
            f"{path.name}: notebook not found in {path.parent.resolve()}. "
            "Keep all the exercise notebooks together in one folder."
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise NotebookImportError(
            f"{path.name}: not a readable Jupyter notebook ({error}). "
            "Open it in Jupyter and save it again, or download a fresh copy."
        ) from None

    found = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        try:
            tree = ast.parse(_strip_magics(source))
        except SyntaxError as error:
            if any(word in source for word in ("def ", "class ", "import ")):
                raise NotebookImportError(
                    f"{path.name}, cell {number}: syntax error on line {error.lineno} ({error.msg}). "
                    f"Fix that cell in {path.name} and run it again."
                ) from None
            continue
        if tree.body and all(_is_definition(statement) for statement in tree.body):
            found.append((number, _strip_magics(source)))
    return found


def import_notebooks(*notebook_paths: str | Path, module_name: str = "notebook_definitions") -> types.ModuleType:
    """Run the definition cells of the given notebooks, in order, in one new module.

    Later notebooks see the names defined by earlier ones, so
    ``import_notebooks("01_activations.ipynb", "02_fc_layer.ipynb")`` gives a
    module with ``ReLU``, ``Sigmoid``, ``Tanh`` and ``FCLayer``. Relative paths
    are resolved against the current folder (in Jupyter, the notebook's own).
    Errors raised while defining (for example a misspelt base class) become a
    ``NotebookImportError`` naming the notebook and cell.
    """
    module = types.ModuleType(module_name)
    module.__dict__["__builtins__"] = __builtins__
    for notebook_path in notebook_paths:
        path = Path(notebook_path)
        for number, source in definition_cells(path):
            try:
                code = compile(source, f"{path.name} [cell {number}]", "exec")
                exec(code, module.__dict__)  # noqa: S102 - running the course's own notebooks is the point
            except Exception as error:  # any failure while *defining* is the notebook's fault
                raise NotebookImportError(
                    f"{path.name}, cell {number}: {type(error).__name__}: {error}. "
                    f"Run {path.name} from the top and fix that cell first."
                ) from error
    return module
