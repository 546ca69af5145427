"""Import the *definitions* of Jupyter notebooks as a Python module.

Later exercise notebooks build on what the student wrote in earlier ones: the
model notebook uses the student's own layers, the experiments use the
student's own model. ``import_notebooks`` makes that possible without copying
code around: it runs the code of a notebook that *defines* things (imports,
``def``, ``class``, constants) and skips the code that *does* something
(tests, demos, training runs). The instructors' tools load their reference
solution with the same function.

The rule, cell by cell, looks at the code only, so it works the same on the
instructor's source notebooks, the generated exercises and a student's
submission, with or without nbgrader metadata:

* A cell whose top-level statements are all definitions runs whole. A
  definition is an import, a function or class definition, a docstring, or an
  assignment whose value is a literal (``EPS = 1e-10``).
* A cell that defines a function or class but also does something (a stray
  ``print(...)`` after the class, a quick demo, ``EPS = np.float64(1e-10)``)
  runs only its definitions: its imports, functions, classes and docstrings,
  those assignments to plain names that are constants (the value is a
  literal or the name is in capitals, ``EPS = np.float64(1e-10)``) or that
  the cell's functions and classes use, and assignments to an attribute of
  one of its classes or functions (``ReLU.backward = relu_backward``).
  Everything else in it (expressions such as ``print(...)`` or a demo call,
  loops, ``if`` blocks, other assignments) is skipped.
* Any other cell (tests, demos, experiments) is skipped.

A definition that fails while it runs (a misspelt base class, a constant
computed from a demo variable) raises :class:`NotebookImportError` naming the
notebook, the cell and the line.
"""

from __future__ import annotations

import ast
import json
import linecache
import re
import symtable
import types
from pathlib import Path

__all__ = ["NotebookImportError", "cell_filename", "definition_cells", "import_notebooks", "parse_cell_filename"]


class NotebookImportError(ImportError):
    """A notebook could not be imported; the message names the notebook, the cell and the fix."""


_DEFINITION_NODES = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_FUNCTION_OR_CLASS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_CELL_FILENAME = re.compile(r"^(?P<notebook>.+\.ipynb) \[cell (?P<cell>\d+)\]$")


def cell_filename(notebook: str, cell: int) -> str:
    """The file name given to an imported cell's code, as tracebacks show it: ``"01_activations.ipynb [cell 4]"``."""
    return f"{notebook} [cell {cell}]"


def parse_cell_filename(filename: str) -> tuple[str, int] | None:
    """``(notebook, cell)`` for a file name made by :func:`cell_filename`, else ``None``."""
    match = _CELL_FILENAME.match(filename or "")
    return (match["notebook"], int(match["cell"])) if match else None


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _assigned_names(statement: ast.stmt) -> list[str] | None:
    """The names an assignment binds, or None if it is not an assignment to plain names."""
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets = [statement.target]
    else:
        return None
    names = []
    for target in targets:
        elements = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
        if not all(isinstance(element, ast.Name) for element in elements):
            return None
        names.extend(element.id for element in elements)
    return names


def _is_definition(statement: ast.stmt) -> bool:
    if isinstance(statement, _DEFINITION_NODES):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return True  # a docstring or a bare string
    if _assigned_names(statement):  # NAME = literal; not np.exp = None
        return _is_literal(statement.value)
    return False


def _global_names(statements: list[ast.stmt]) -> set[str]:
    """The global names that the given functions and classes read (not their parameters or locals)."""
    if not statements:
        return set()
    table = symtable.symtable(ast.unparse(ast.Module(body=statements, type_ignores=[])), "<cell>", "exec")
    found, scopes = set(), list(table.get_children())
    while scopes:
        scope = scopes.pop()
        scopes.extend(scope.get_children())
        found.update(
            symbol.get_name()
            for symbol in scope.get_symbols()
            if symbol.is_referenced() and (symbol.is_global() or symbol.is_free())
        )
    return found


def _sets_an_attribute_of(statement: ast.stmt, names: set[str]) -> bool:
    """True for ``Name.attribute = value`` where Name is one of ``names`` (``ReLU.backward = my_backward``)."""
    if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
        return False
    target = statement.targets[0]
    return isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id in names


def _definitions_of_mixed_cell(tree: ast.Module) -> list[ast.stmt]:
    """The statements of a cell that defines a function or class but also does other things."""
    defined = [s for s in tree.body if isinstance(s, _FUNCTION_OR_CLASS)]
    used = _global_names(defined)
    own = {s.name for s in defined}
    kept = []
    for statement in tree.body:
        names = _assigned_names(statement)
        if _is_definition(statement) or _sets_an_attribute_of(statement, own):
            kept.append(statement)
        elif names and (all(name.isupper() for name in names) or used.intersection(names)):
            kept.append(statement)  # a constant, or a value the cell's functions and classes need
    return kept


def _strip_magics(source: str) -> str:
    """Blank out IPython magics and shell escapes so the cell parses as Python."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _read_cells(path: Path) -> list:
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
    if not isinstance(cells, list):
        raise NotebookImportError(
            f"{path.name}: not a readable Jupyter notebook (its cells are not a list). "
            "Download a fresh copy and copy your code into it."
        )
    return cells


def _definitions(path: Path, tolerant: bool = False) -> list[tuple[int, str, ast.Module, bool]]:
    """``(cell_number, source, code to run, whole cell?)`` for each cell with definitions, in order.

    ``tolerant``: a cell with a syntax error is skipped instead of stopping the import.
    """
    found = []
    for number, cell in enumerate(_read_cells(path), start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        source = _strip_magics(source)
        try:
            tree = ast.parse(source)
        except SyntaxError as error:
            if not tolerant and re.search(r"^\s*(def|class|import|from)\s", source, re.MULTILINE):
                raise NotebookImportError(
                    f"{path.name}, cell {number}: syntax error on line {error.lineno} ({error.msg}). "
                    f"Fix that cell in {path.name} and run it again."
                ) from None
            continue
        if not tree.body:
            continue
        if all(_is_definition(statement) for statement in tree.body):
            found.append((number, source, tree, True))
        elif any(isinstance(statement, _FUNCTION_OR_CLASS) for statement in tree.body):
            found.append((number, source, ast.Module(body=_definitions_of_mixed_cell(tree), type_ignores=[]), False))
    return found


def definition_cells(notebook_path: str | Path) -> list[tuple[int, str]]:
    """Return ``(cell_number, code)`` for each cell of a notebook that defines something.

    ``cell_number`` counts all cells from 1, as Jupyter shows them; ``code`` is
    what :func:`import_notebooks` runs of that cell (the whole cell, or only
    its definitions; see the module docstring). Raises ``NotebookImportError``
    for a file that is not a readable notebook or for a cell that defines
    something but has a syntax error.
    """
    path = Path(notebook_path)
    return [(number, source if whole else ast.unparse(tree)) for number, source, tree, whole in _definitions(path)]


def _failing_line(error: BaseException, filename: str, source: str) -> str:
    """', line 12 (`class Tanh(Sigmod):`)' for the innermost frame of the cell's code, else ''."""
    frame = None
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == filename:
            frame = traceback
        traceback = traceback.tb_next
    if frame is None:
        return ""
    lines = source.splitlines()
    line = lines[frame.tb_lineno - 1].strip() if 0 < frame.tb_lineno <= len(lines) else ""
    return f", line {frame.tb_lineno} (`{line}`)" if line else f", line {frame.tb_lineno}"


def import_notebooks(
    *notebook_paths: str | Path, module_name: str = "notebook_definitions", tolerant: bool = False
) -> types.ModuleType:
    """Run the definitions of the given notebooks, in order, in one new module.

    Later notebooks see the names defined by earlier ones, so
    ``import_notebooks("01_activations.ipynb", "02_fc_layer.ipynb")`` gives a
    module with ``ReLU``, ``Sigmoid``, ``Tanh`` and ``FCLayer``. Relative paths
    are resolved against the current folder (in Jupyter, the notebook's own).
    Errors raised while defining (for example a misspelt base class) become a
    ``NotebookImportError`` naming the notebook, the cell and the line.
    Tracebacks and ``inspect.getsource`` show the imported code under the
    file name ``"<notebook> [cell <n>]"`` (see :func:`cell_filename`).

    ``tolerant=True`` behaves like running the notebook with errors allowed: a
    cell that fails keeps what it defined before the failure and the import
    goes on (the grader's cross-check uses this, as the notebook's own run does).
    """
    module = types.ModuleType(module_name)
    module.__dict__["__builtins__"] = __builtins__
    for notebook_path in notebook_paths:
        path = Path(notebook_path)
        for number, source, tree, _ in _definitions(path, tolerant):
            filename = cell_filename(path.name, number)
            # like IPython: keep the cell's text where tracebacks and inspect.getsource look for it
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            try:
                code = compile(tree, filename, "exec")
                exec(code, module.__dict__)  # noqa: S102 - running the course's own notebooks is the point
            except Exception as error:  # any failure while *defining* is the notebook's fault
                if tolerant:
                    continue
                raise NotebookImportError(
                    f"{path.name}, cell {number}{_failing_line(error, filename, source)}: "
                    f"{type(error).__name__}: {error}. Run {path.name} from the top and fix that cell first."
                ) from error
    return module
