"""The course's own packages import each other without a circle.

Reads every ``.py`` file of ``dnn_course``, ``autograder`` and ``scripts`` with :mod:`ast` (nothing is
imported or run), draws an edge from a module to each module of these packages it imports, at its top
or inside a function, and asserts the graph has no cycle. A circle (``a`` imports ``b`` which imports
``a``, even lazily inside a function) means neither module can be read, tested or moved alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("dnn_course", "autograder", "scripts")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of :data:`PACKAGES` (``pkg/__init__.py`` is ``pkg``)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules among ``known`` that the module ``name`` (file ``path``) imports anywhere in its code."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from pkg import sub`` imports the module pkg.sub when there is one, else a name of pkg
            candidates = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:  # import a.b.c of a known a.b: an edge to a.b
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                found.add(candidate)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_circle_and_only_one():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_relative_lazy_and_package_imports(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "one.py").write_text("def f():\n    from .two import g\n    return g\n")
    (package / "two.py").write_text("from pkg import one\nimport pkg.three\n")
    (package / "three.py").write_text("from . import two as _\n")
    known = {"pkg", "pkg.one", "pkg.two", "pkg.three"}
    assert imported_modules("pkg.one", package / "one.py", known) == {"pkg.two"}
    assert imported_modules("pkg.two", package / "two.py", known) == {"pkg.one", "pkg.three"}
    assert imported_modules("pkg.three", package / "three.py", known) == {"pkg.two"}


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_is_read(package):
    assert any(name == package or name.startswith(package + ".") for name in module_files()), (
        f"no module of {package} found: the import-graph test would check nothing there"
    )


def test_the_course_packages_import_without_a_circle():
    graph = import_graph()
    assert graph["dnn_course.experiment"] >= {"dnn_course.records"}  # the graph sees real edges
    found = cycles(graph)
    assert not found, (
        "import circles (each module of a group imports the others, directly or through "
        "each other; move what both need into a module of its own): "
        + "; ".join(" <-> ".join(group) for group in found)
    )
