"""The pinned environment is consistent: requirements.in, requirements.txt and environment.yml agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
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


def test_the_students_pins_are_regenerated_from_their_list_and_the_course_pins():
    """requirements-students.txt (the kit's requirements.txt) is what `make students-requirements` writes now:
    it fails when requirements.txt or requirements-students.in changed and the file was not regenerated."""
    from scripts import students_requirements

    assert students_requirements.render() == (REPO / "requirements-students.txt").read_text(), (
        "requirements-students.txt is stale: run `make students-requirements` and commit it"
    )
    course, students = _pins(REPO / "requirements.txt"), _pins(REPO / "requirements-students.txt")
    assert {name: version for name, version in students.items() if course.get(name) != version} == {}
    top_level = students_requirements.read_names(REPO / "requirements-students.in")
    assert set(top_level) <= set(_pins(REPO / "requirements.in")) and set(top_level) <= set(students)


def test_the_students_pins_follow_markers_and_extras_and_notice_a_changed_list_or_pin(tmp_path):
    from scripts import students_requirements

    pins = students_requirements.read_pins(REPO / "requirements.txt")
    # jupyter-events asks for jsonschema[format-nongpl] (whose extra brings fqdn); its `cli` extra (click) is not asked for
    needed = students_requirements.closure(["jupyter-events"], pins)
    assert {"jsonschema", "fqdn", "rfc3339-validator"} <= set(needed) and "click" not in needed
    # a package added to the students' list changes the pinned file
    longer = tmp_path / "requirements-students.in"
    longer.write_text((REPO / "requirements-students.in").read_text() + "pytest\n")
    rendered = students_requirements.render(longer)
    assert "\npytest==" in rendered and "\npytest==" not in (REPO / "requirements-students.txt").read_text()
    # a pin of requirements.txt that the installed packages do not match says what to run
    changed = tmp_path / "requirements.txt"
    changed.write_text(re.sub(r"(?m)^numpy==.*$", "numpy==1.0.0", (REPO / "requirements.txt").read_text()))
    with pytest.raises(SystemExit, match="numpy: requirements.txt pins 1.0.0 but .* is installed; run `make venv`"):
        students_requirements.render(lock=changed)
