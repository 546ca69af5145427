"""The pinned environment is consistent: requirements.in, requirements.txt and environment.yml agree."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned exactly (name==version)"
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_every_top_level_dependency_is_pinned_in_the_lock_file():
    top_level, locked = _pins(REPO / "requirements.in"), _pins(REPO / "requirements.txt")
    for name, version in top_level.items():
        assert locked.get(name) == version, (
            f"{name}: requirements.in says {version}, requirements.txt {locked.get(name)}"
        )


def test_environment_yml_lists_the_same_versions():
    top_level = _pins(REPO / "requirements.in")
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    listed = {}
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            for requirement in entry["pip"]:
                if "==" in requirement:
                    name, version = requirement.split("==")
                    listed[name.lower()] = version
        elif "=" in entry:
            name, version = entry.split("=", 1)
            listed[name.lower()] = version
    assert "conda-forge" in environment["channels"]
    for name, version in top_level.items():
        assert listed.get(name) == version, f"{name}: environment.yml has {listed.get(name)}, requirements.in {version}"
    assert re.fullmatch(r"3\.\d+", listed["python"])


def test_the_package_ships_every_data_file_it_reads():
    """A non-editable install (a wheel, Colab) must carry dnn_course's data files, not only the repository."""
    import fnmatch
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_data = config.get("package-data", {})
    data_files = [
        p
        for p in (REPO / "dnn_course").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert data_files, "dnn_course has no data files: the fixtures are missing"
    for path in data_files:
        package = ".".join(path.parent.relative_to(REPO).parts)
        assert package in config["packages"], f"{package} is not in [tool.setuptools] packages"
        patterns = package_data.get(package, [])
        assert any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns), (
            f"{path.relative_to(REPO)} matches no [tool.setuptools.package-data] pattern of {package}"
        )
