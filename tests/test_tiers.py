"""The test tiers (tests/conftest.py): every test has one, and the fast tier starts no process.

``make test-fast`` runs the ``unit`` tier in parallel for the edit loop; ``make test`` runs them all.
"""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

import conftest
import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

# What a unit test's own code, or a fixture or function of its module it uses, must not name: each starts a
# process (a kernel, the sandbox, a browser, a build), and belongs to the integration or e2e tier.
STARTS_A_PROCESS = re.compile(
    r"\bsubprocess\b|sys\.executable|\brun_notebook\b|NotebookClient|\bbubblewrap\b|\bchromium\b|jupyter.book"
    r"|\bgrade\(|\bsandbox\.run\b|\bPopen\b|os\.system"
)


def _functions(module: Path) -> dict[str, tuple[ast.FunctionDef, str]]:
    """The module's top-level functions: name -> (node, source)."""
    text = module.read_text(encoding="utf-8")
    tree = ast.parse(text)
    return {
        node.name: (node, ast.get_source_segment(text, node) or "")
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def _fixture_names(function: ast.FunctionDef) -> list[str]:
    names = [arg.arg for arg in function.args.args]
    for decorator in function.decorator_list:  # @pytest.mark.usefixtures("name", ...)
        if isinstance(decorator, ast.Call) and ast.unparse(decorator.func).endswith("usefixtures"):
            names += [arg.value for arg in decorator.args if isinstance(arg, ast.Constant)]
    return names


def _code_of_test(name: str, functions: dict[str, tuple[ast.FunctionDef, str]]) -> str:
    """The test's source and that of the module's own fixtures and functions it uses, directly or through each other."""
    seen, todo, parts = set(), [name], []
    while todo:
        current = todo.pop()
        if current in seen or current not in functions:
            continue
        seen.add(current)
        node, source = functions[current]
        parts.append(source)
        todo += _fixture_names(node) + [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    return "\n".join(parts)


def test_every_test_module_has_a_tier_and_every_exception_names_a_test():
    modules = {path.name for path in TESTS.glob("test_*.py")}
    assert set(conftest.MODULE_TIERS) == modules, (
        f"without a tier: {sorted(modules - set(conftest.MODULE_TIERS))}; "
        f"no longer a test module: {sorted(set(conftest.MODULE_TIERS) - modules)}"
    )
    assert set(conftest.MODULE_TIERS.values()) <= set(conftest.TIERS)
    functions = {}
    for key, tier in conftest.TEST_TIERS.items():
        module, function = key.split("::")
        assert tier in conftest.TIERS, key
        if module not in functions:
            functions[module] = _functions(TESTS / module)
        assert function.startswith("test_") and function in functions[module], f"{key}: no such test"
        assert tier != conftest.MODULE_TIERS[module], f"{key}: the same tier as its module, remove the entry"


def test_the_tiers_are_declared_and_make_test_fast_runs_the_unit_tier_in_parallel():
    markers = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert {marker.split(":")[0] for marker in markers} >= {*conftest.TIERS, "slow", "fulldata"}
    makefile = (REPO / "Makefile").read_text()
    fast = re.search(r"^test-fast:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert fast, "the Makefile has no test-fast target"
    assert re.search(r"-m unit\b", fast.group(1)) and re.search(r"-n \S+", fast.group(1)), fast.group(1)
    whole = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1)
    assert whole == "\t$(BIN)/python -m pytest\n", "make test (what CI runs) runs every tier"
    assert "make test-fast" in re.search(r"^help:\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1)


# The first starts a process on purpose (the guard stops it); the second only writes such code to a file.
DELIBERATE = {
    "test_tiers.py::test_a_unit_test_that_starts_a_process_fails",
    "test_tiers.py::test_the_scan_follows_fixtures_and_helpers_of_the_module",
}


def test_every_collected_test_has_one_tier_and_no_unit_test_starts_a_process(request):
    """Every test collected in this run (before -m or -k deselect), so `make test-fast` selects none that does."""
    functions: dict[Path, dict[str, tuple[ast.FunctionDef, str]]] = {}
    starting = []
    for item in request.config.stash[conftest._collected_key]:
        tiers = [tier for tier in conftest.TIERS if item.get_closest_marker(tier)]
        assert tiers == [conftest.tier_of(item)], f"{item.nodeid}: tiers {tiers}"
        if tiers == ["unit"]:
            module = Path(str(item.path))
            assert conftest._has_unit_tests(module.name), f"{item.nodeid}: make test-fast would not collect it"
            name = getattr(item, "originalname", None) or item.name.split("[")[0]
            if module not in functions:
                functions[module] = _functions(module)
            code = _code_of_test(name, functions[module])
            if f"{module.name}::{name}" not in DELIBERATE and (found := STARTS_A_PROCESS.search(code)):
                starting.append(f"{item.nodeid}: {found.group(0)}")
    assert not starting, "unit tests that start a process:\n" + "\n".join(starting)


def test_a_unit_test_that_starts_a_process_fails(request):
    with pytest.raises(conftest.UnitTierError, match="is a unit test but started a process"):
        subprocess.run(["true"], check=False)
    spawned = request.node.stash[conftest._spawned_key]
    assert spawned and spawned[0].startswith("subprocess.Popen"), spawned
    spawned.clear()  # the process never started: this test passes


def test_readme_and_contributing_name_both_loops():
    for name in ("README.md", "CONTRIBUTING.md"):
        text = (REPO / name).read_text()
        assert "`make test-fast`" in text and "`make test`" in text, name
        assert "tests/conftest.py" in text, name


def test_the_scan_follows_fixtures_and_helpers_of_the_module(tmp_path):
    module = tmp_path / "test_example.py"
    module.write_text(
        "import subprocess\n\n"
        "def run_it():\n    return subprocess.run(['true'])\n\n"
        "@pytest.fixture\ndef built():\n    return run_it()\n\n"
        "def test_pure():\n    assert 1 + 1 == 2\n\n"
        "def test_through_a_fixture(built):\n    assert built\n\n"
        "@pytest.mark.usefixtures('built')\ndef test_through_usefixtures():\n    pass\n"
    )
    functions = _functions(module)
    assert not STARTS_A_PROCESS.search(_code_of_test("test_pure", functions))
    for name in ("test_through_a_fixture", "test_through_usefixtures"):
        assert STARTS_A_PROCESS.search(_code_of_test(name, functions)).group(0) == "subprocess", name
