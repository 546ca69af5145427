"""The students' kit (`make release`): what it holds, that it holds no answer, and that it works.

The end-to-end test builds the kit in a temporary folder and, from it alone and offline, does
what a student does: `make check` (which creates the kit's environment and installs the course
package as a wheel) on the six notebooks filled with a correct implementation, 05 and 06 in
their short mode (the check names their smoke-test results), `make submit` (whose zip the
grader's collector takes), and `make check` again with 06's results at partial credit. Two test-only shortcuts keep it offline and fast, and are the only differences
from a student's run:

* the kit's `.venv` is created by the test, without pip, and sees the repository venv's installed
  packages through a `.pth` file, only those the kit's requirements.txt pins (and pip and setuptools,
  which a student's venv has or pip adds): every one is installed there at its pin, so the kit's
  `pip install -r requirements.txt` finds them all satisfied with `PIP_NO_INDEX=1`, and the run
  proves the students' subset enough for `make check`;
* the course package's wheel is zipped by the test (:func:`build_wheel`, the layout
  pyproject.toml gives) instead of by setuptools, which pip would download; the Makefile installs
  it with `pip install --no-deps` as it installs `.` for a student (`PACKAGE=<wheel>`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml

from dnn_course import secret_lines
from dnn_course.assignment import ASSIGNMENT, PROFILE_VARIABLE
from scripts import make_release, students_requirements
from tests.autograder_corpus.students import perfect

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, Path]:
    """(kit folder, zip) written by scripts/make_release.py into a temporary folder."""
    out = tmp_path_factory.mktemp("release")
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_release.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out / make_release.KIT_NAME, out / f"{make_release.KIT_NAME}.zip"


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --- what the kit holds ----------------------------------------------------------------------


def test_kit_holds_what_a_student_needs_and_nothing_of_the_instructors(release):
    kit, zip_path = release
    files = _files(kit)
    for name in make_release.NOTEBOOKS:
        assert (kit / "exercises/dnn_hw" / name).read_bytes() == (REPO / "exercises/dnn_hw" / name).read_bytes()
    expected = {
        "README.md",
        "LICENSE",
        "Makefile",
        "pyproject.toml",
        "requirements.txt",
        "environment.yml",
        "binder/postBuild",
        "binder/requirements.txt",
        "binder/runtime.txt",
        "data/embedded/MANIFEST.json",
        "dnn_course/fixtures/visible_values.npz",
        "dnn_course/datasets.py",
        "dnn_course/training.py",
        "dnn_course/checks.py",
        "dnn_course/plotting.py",
        "dnn_course/notebook_import.py",
    }
    assert expected <= files, expected - files
    assert {f for f in files if f.startswith("data/embedded/")} == {
        "data/embedded/" + p for p in _files(REPO / "data" / "embedded")
    }
    assert not any(
        part in f
        for f in files
        for part in (
            "solutions",
            "autograder",
            "reference",
            "tests/",
            "leak_policy",
            "code_leaks",
            "answer_leaks",
            "secret_lines",
            "nbgrader_regions",
        )
    )
    # the package names no module the kit lacks (an error message once sent students to load_reference())
    for module in (kit / "dnn_course").glob("*.py"):
        text = module.read_text()
        assert not any(
            word in text for word in ("load_reference", "dnn_course.reference", "reference.py", "solutions/")
        ), module.name
    # of the book, only the pages the notebooks' "Read first" links land on, each a pointer to the website
    chapters = make_release.chapter_links()
    assert {f for f in files if f.startswith("book/")} == {f"book/{stem}.md" for stem in chapters}
    assert {"01_activations", "02_fully_connected", "06_experiments"} <= set(chapters)
    assert (kit / "requirements.txt").read_text() == (REPO / "requirements-students.txt").read_text()
    makefile = (kit / "Makefile").read_text()
    assert "\nlab:" in makefile and "\ncheck:" in makefile and "\nsubmit: $(STAMP)\n" in makefile
    assert "DNN_HW2_*.zip" in (kit / ".gitignore").read_text().splitlines()  # the submission stays out of git
    with zipfile.ZipFile(zip_path) as archive:
        members = {name.removeprefix(f"{make_release.KIT_NAME}/") for name in archive.namelist()}
    assert members == files
    size = sum((kit / f).stat().st_size for f in files)
    assert 11e6 < size < 14e6, f"the kit is {size / 1e6:.1f} MB"


def test_the_kits_environment_is_the_students_subset_of_the_course_pins(release):
    """The kit pins only what students need, at the course's versions, and its conda file lists the same set."""
    kit, _ = release
    course = students_requirements.read_pins(REPO / "requirements.txt")
    kit_pins = students_requirements.read_pins(kit / "requirements.txt")
    assert {name: pin for name, pin in kit_pins.items() if course.get(name) != pin} == {}
    for instructors_tool in ("jupyter-book", "playwright", "dask", "distributed", "ruff", "copydetect", "pytest-xdist"):
        assert instructors_tool in course and instructors_tool not in kit_pins, instructors_tool
    assert {"numpy", "matplotlib", "jupyterlab", "nbgrader", "ipykernel", "threadpoolctl"} <= set(kit_pins)
    assert (kit / "binder" / "requirements.txt").read_text().splitlines() == ["-r ../requirements.txt"]
    environment = yaml.safe_load((kit / "environment.yml").read_text())
    listed = {}
    for entry in environment["dependencies"]:
        for line in entry["pip"] if isinstance(entry, dict) else [entry]:
            name, _, version = line.replace("==", "=").partition("=")
            listed[students_requirements.canonicalize_name(name)] = version
    students = students_requirements.read_names(REPO / "requirements-students.in")
    assert {name for name, version in listed.items() if version} == {"python", *students}
    assert all(listed[name] == kit_pins[name][1] for name in students)


def test_kit_lab_serves_the_kit_root_so_the_read_first_links_open(release):
    """`make lab` serves the kit's folder and opens on my-work/dnn_hw: served from my-work/dnn_hw (as it once
    was), every notebook's ../../book/<chapter>.md link lay outside the server's root (a 404 in JupyterLab)."""
    kit, _ = release
    student_env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}  # not under our make
    dry = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "-o", "my-work/dnn_hw", "lab"],
        cwd=kit,
        env=student_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    command = shlex.split(dry.stdout.strip().splitlines()[-1])
    assert command[:3] == [".venv/bin/python", "-m", "jupyterlab"], command
    options = dict(arg.removeprefix("--").split("=", 1) for arg in command[3:] if "=" in arg)
    root = Path(options["ServerApp.root_dir"])
    assert root == kit
    assert options["LabApp.default_url"] == "/lab/tree/my-work/dnn_hw"
    assert not [arg for arg in command[3:] if not arg.startswith("--")]  # no folder argument: the root is the kit
    notebooks = root / "my-work" / "dnn_hw"  # where `make lab` copies exercises/dnn_hw
    links = set()
    for name in make_release.NOTEBOOKS:
        for _, source in make_release._cell_sources(kit / "exercises" / "dnn_hw" / name):
            links |= set(re.findall(r"\]\((\.\./\.\./book/[\w-]+\.md)\)", source))
    assert links == {f"../../book/{stem}.md" for stem in make_release.chapter_links()}
    for link in links:
        page = (notebooks / link).resolve()
        assert page.is_relative_to(root.resolve()) and page.is_file(), link


def test_the_notebooks_name_only_make_targets_the_kit_has(release):
    """05 and 06 once cited `make bench` for their times, a target of the course's repository, not of the kit."""
    kit, _ = release
    targets = set(re.findall(r"^([\w-]+):", (kit / "Makefile").read_text(), re.M))
    named = {}
    for name in make_release.NOTEBOOKS:
        for _, source in make_release._cell_sources(kit / "exercises" / "dnn_hw" / name):
            for target in re.findall(r"`make ([\w-]+)", source):
                named.setdefault(target, set()).add(name)
    assert {target: names for target, names in named.items() if target not in targets} == {}
    assert {"lab", "check", "submit"} <= targets


def test_kit_readme_names_the_students_repository_and_the_commands(release):
    kit, _ = release
    readme = (kit / "README.md").read_text()
    url = make_release.students_repository_url()
    assert f"git clone {url}.git" in readme
    assert "make lab" in readme and "make check" in readme
    # each command also without make, as the Makefile runs it
    assert "`python -m dnn_course.check my-work/dnn_hw --released exercises/dnn_hw`" in readme
    lab = "jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/my-work/dnn_hw"
    assert f"`{lab}`" in readme and f"\n{lab}\n" in (REPO / "book" / "student_guide.md").read_text()  # the same
    # in the book, as a code block (inline, the line made the student guide scroll sideways on a phone)
    assert "`python -m dnn_course.submission my-work/dnn_hw --name Ada_Lovelace --id 12345678`" in readme
    # how to submit, in the kit itself: the command, the archive's name, what it holds
    DATA_FILES = ASSIGNMENT.data_file_caps
    assert "make submit NAME=Ada_Lovelace ID=12345678" in readme
    assert "`DNN_HW2_Ada_Lovelace_12345678.zip`" in readme
    assert all(f"`{name}`" in readme for name in DATA_FILES)
    assert "SMOKE RUN, NOT GRADED" in readme and "partial credit" not in readme.split("## Submit")[1]
    for page in (REPO / "README.md", REPO / "book" / "student_guide.md"):  # the instructors' README, the book
        assert "make submit NAME=Ada_Lovelace ID=" in page.read_text(), page


def test_the_kits_read_first_links_open_the_chapters_on_the_configured_website(release):
    """The notebooks' ``../../book/<chapter>.md`` links land on the kit's book/ pages, which link to the site."""
    import re

    kit, _ = release
    site = make_release.site_url()
    config = __import__("yaml").safe_load((REPO / "_config.yml").read_text())
    assert site == config["html"]["baseurl"] and site.startswith("https://") and site.endswith("/")
    readme = (kit / "README.md").read_text()
    assert f"The course book, with the derivations the notebooks build on: {site}" in readme
    for name in make_release.NOTEBOOKS:
        notebook = kit / "exercises/dnn_hw" / name
        links = re.findall(r"\]\((\.\./\.\./book/[\w-]+\.md)\)", notebook.read_text())
        assert links, name
        for link in links:
            page = (notebook.parent / link).resolve()  # the same from my-work/dnn_hw/, two levels down too
            assert page.is_file() and page.parent == kit / "book", link
            stem = page.stem
            assert f"]({site}book/{stem}.html)" in page.read_text()
            assert f"]({site}book/{stem}.html)" in readme
            assert (REPO / "book" / f"{stem}.md").is_file()  # a chapter of the site, built at book/<stem>.html
    # the site's own exercise pages keep their relative links (the exercises are the site's, unchanged)
    assert "](../../book/01_activations.md)" in (REPO / "exercises/dnn_hw/01_activations.ipynb").read_text()


def test_a_kit_made_without_the_websites_address_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(make_release, "site_url", lambda: "")
    kit = make_release.build_kit(tmp_path)
    readme = (kit / "README.md").read_text()
    assert "**This kit was made without the address of the course book** (`html.baseurl`" in readme
    page = (kit / "book" / "01_activations.md").read_text()
    assert "this kit was made without the website's address (`html.baseurl`" in page
    assert "http" not in page and "book/01_activations.html" not in readme


def test_visible_fixtures_are_exactly_what_the_visible_tests_name():
    with (
        np.load(REPO / "dnn_course/fixtures/visible_values.npz") as visible,
        np.load(REPO / "dnn_course/fixtures/reference_values.npz") as full,
    ):
        assert set(visible.files) < set(full.files)
        for key in visible.files:
            assert np.array_equal(visible[key], full[key]), key
        hidden_only = set(full.files) - set(visible.files)
    # the hidden tests' own values (gradients after model.backward, the saturated derivatives)
    assert {"model/dW1", "model/db3", "sigmoid/dz_extreme", "tanh/dz_extreme"} <= hidden_only
    assert {"model/W1", "model/x", "sigmoid/out_extreme", "softmax/z_extreme", "fc/dW"} <= set(full.files) - hidden_only


# --- no answer in the kit --------------------------------------------------------------------


def test_secret_lines_cover_every_solution_and_hidden_test_region():
    lines = secret_lines.secret_lines(make_release.SOLUTIONS)
    kinds = {(line.notebook, line.kind) for line in lines}
    for notebook in make_release.NOTEBOOKS[:4]:
        assert (notebook, "solution") in kinds and (notebook, "hidden test") in kinds, notebook
    written = [line.key for line in lines if line.notebook.startswith(("05", "06"))]
    assert any(line.startswith("**Rubric") for line in written)
    assert any("Model answer" in line for line in written)
    assert any("CONFIGURATIONS" not in line and "hidden=[1024, 1024]" in line for line in written)


def test_kit_folder_and_zip_hold_no_answer(release):
    kit, zip_path = release
    assert make_release.find_leaks(kit) == []
    assert make_release.find_leaks(zip_path) == []


def test_leak_scan_finds_every_kind_of_answer(release, tmp_path):
    kit, _ = release
    lines = secret_lines.secret_lines(make_release.SOLUTIONS)
    solution = next(line.key for line in lines if line.notebook == "02_fc_layer.ipynb" and line.kind == "solution")
    hidden = next(line.key for line in lines if line.notebook == "01_activations.ipynb" and line.kind == "hidden test")
    rubric = next(line.key for line in lines if line.notebook == "05_mnist_activations.ipynb" and "Rubric" in line.key)
    hidden_value = make_release.hidden_only_values()["model/dW1"]

    planted = tmp_path / "kit"
    planted.mkdir()
    notebook = nbformat.read(kit / "exercises/dnn_hw/02_fc_layer.ipynb", as_version=4)
    notebook.cells[3].source += "\n    " + solution
    nbformat.write(notebook, planted / "02_fc_layer.ipynb")
    (planted / "helpers.py").write_text(f"x = 1\n{hidden}\n")
    (planted / "notes.bin").write_bytes(b"\x00header" + hidden_value.tobytes())
    (planted / "marker.md").write_text("### BEGIN SOLUTION\n")
    buffer = io.BytesIO()
    np.savez(buffer, grad=hidden_value)
    (planted / "values.npz").write_bytes(buffer.getvalue())
    zip_path = tmp_path / "kit.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("kit/README.md", f"Hello\n{rubric}\n")

    leaks = "\n".join(make_release.find_leaks(planted))
    assert f"02_fc_layer.ipynb: a solution line of 02_fc_layer.ipynb: {solution[:70]!r}" in leaks
    assert f"helpers.py: a hidden test line of 01_activations.ipynb: {hidden[:70]!r}" in leaks
    assert "notes.bin: contains the bytes of the hidden tests' reference value model/dW1" in leaks
    assert "marker.md: nbgrader marker 'BEGIN SOLUTION'" in leaks
    assert "values.npz: grad equals a value only the hidden tests use" in leaks
    zip_leaks = make_release.find_leaks(zip_path)
    assert zip_leaks == [f"kit.zip:kit/README.md: a solution line of 05_mnist_activations.ipynb: {rubric[:70]!r}"]


def test_leak_scan_finds_an_answer_in_library_code_and_the_tuned_configuration_in_any_text(release, tmp_path):
    """The two hints an earlier kit carried, planted again: the overflow-safe sigmoid of notebook 01 in a
    module (renamed and respaced), and the reference search's tuned network in a comment."""
    planted = tmp_path / "kit"
    (planted / "dnn_course").mkdir(parents=True)
    (planted / "dnn_course" / "helpers.py").write_text(
        "import numpy\n\n\ndef squash(values):\n    q = numpy.exp( -numpy.abs(values) )\n"
        "    return numpy.where(values >= 0, 1/(1 + q), q/(1 + q))\n"
    )
    (planted / "dnn_course" / "limits.py").write_text("LIMIT = 10  # a [1024, 1024] hidden network fits\n")
    (planted / "notes.md").write_text("The search settled on 784-1024-1024-10.\n")
    (planted / "plain.py").write_text(
        "def total(loss_sum, loss, m):\n    loss_sum += loss * m\n    return x.reshape(len(x), -1)\n"
    )
    leaks = make_release.find_leaks(planted)
    text = "\n".join(leaks)
    assert (
        "dnn_course/helpers.py: solution code of 01_activations.ipynb, in other words: "
        "'numpy.where(values >= 0, 1 / (1 + q), q / (1 + q))' is 'np.where(z >= 0, 1 / (1 + e), e / (1 + e))'" in text
    )
    assert "dnn_course/limits.py: names the tuned configuration of the reference search ('1024, 1024')" in text
    assert "notes.md: names the tuned configuration of the reference search ('784-1024-1024-10')" in text
    assert not any(leak.startswith("plain.py") for leak in leaks), leaks  # plain algebra, array plumbing
    # and what the kit carries now is clean: evaluate.py's sigmoid and ReLU, records.py's comment
    kit, _ = release
    for module in ("evaluate.py", "records.py"):
        assert not [leak for leak in make_release.find_leaks(kit) if module in leak]


def test_release_refuses_a_kit_with_an_answer(tmp_path, monkeypatch):
    monkeypatch.setattr(make_release, "INSTRUCTOR_MODULES", set())  # ship reference.py by mistake
    assert make_release.main(["--out", str(tmp_path)]) == 1
    assert not (tmp_path / f"{make_release.KIT_NAME}.zip").exists()


# --- the package as a wheel ------------------------------------------------------------------


def test_pyproject_puts_every_embedded_file_into_the_wheel():
    import fnmatch

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"]["dnn_course.embedded"] == "data/embedded"
    embedded = REPO / "data" / "embedded"
    for path in embedded.rglob("*"):
        if path.is_file():
            relative = path.relative_to(embedded)
            package = ".".join(["dnn_course", "embedded", *relative.parent.parts])
            if package in config["packages"]:
                name = relative.name
            else:
                package, name = "dnn_course.embedded", relative.as_posix()
            assert any(fnmatch.fnmatch(name, pattern) for pattern in config["package-data"].get(package, [])), path


def build_wheel(kit: Path, dest: Path) -> Path:
    """The course package of ``kit`` as a wheel, laid out as pyproject.toml lays it out (test-only builder)."""
    version = tomllib.loads((kit / "pyproject.toml").read_text())["project"]["version"]
    dist_info = f"dnn_course-{version}.dist-info"
    files = {}
    for path in sorted((kit / "dnn_course").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[f"dnn_course/{path.relative_to(kit / 'dnn_course').as_posix()}"] = path.read_bytes()
    for path in sorted((kit / "data" / "embedded").rglob("*")):
        if path.is_file():
            files[f"dnn_course/embedded/{path.relative_to(kit / 'data' / 'embedded').as_posix()}"] = path.read_bytes()
    files[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: dnn-course\nVersion: {version}\n".encode()
    files[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = dest / f"dnn_course-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def _linked_site_packages(tmp_path: Path, kit: Path) -> Path:
    """The repository venv's installed packages that the kit's requirements.txt pins, and pip and setuptools,
    as symlinks to their files' top-level entries (modules, packages, .dist-info folders)."""
    from importlib import metadata

    linked = tmp_path / "repo-site-packages"
    linked.mkdir()
    source = Path(sysconfig.get_paths()["purelib"])
    names = [*students_requirements.read_pins(kit / "requirements.txt"), "pip", "setuptools"]
    for name in names:
        distribution = metadata.distribution(name)
        assert distribution.files, f"{name} lists no files (no RECORD)"
        assert Path(distribution.locate_file("")).resolve() == source.resolve(), name
        for top in {file.parts[0] for file in distribution.files} - {"..", "__pycache__"}:
            if (source / top).exists() and not (linked / top).exists() and not top.endswith(".pth"):
                (linked / top).symlink_to(source / top)
    return linked


def _fill(kit: Path, work: Path) -> None:
    """The kit's notebooks with every answer filled in from the solutions, 05/06 in their short mode."""
    work.mkdir(parents=True)
    for name, notebook in perfect(kit / "exercises" / "dnn_hw", REPO / "solutions" / "dnn_hw").items():
        notebook = copy.deepcopy(notebook)
        for cell in notebook.cells:
            # the parameters cell only, as a student sets it (the tests' messages also say "SMOKE_TEST = False")
            if "parameters" in cell.metadata.get("tags", []) and "SMOKE_TEST = False" in cell.source:
                cell.source = cell.source.replace("SMOKE_TEST = False", "SMOKE_TEST = True")
        nbformat.write(notebook, work / name)


@pytest.mark.slow
def test_kit_installs_offline_and_a_correct_student_checks_and_submits(release, tmp_path, reference):
    kit_source, _ = release
    kit = tmp_path / "kit"
    subprocess.run(["cp", "-r", str(kit_source), str(kit)], check=True)
    base_python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([str(base_python), "-m", "venv", "--without-pip", str(kit / ".venv")], check=True)
    purelib = subprocess.run(
        [str(kit / ".venv/bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "repo-packages.pth").write_text(str(_linked_site_packages(tmp_path, kit)) + "\n")
    wheel = build_wheel(kit, tmp_path)
    _fill(kit, kit / "my-work" / "dnn_hw")

    # a student's shell: no venv, and no make of ours around it (under `make test`, MAKELEVEL would make the
    # kit's make print "Leaving directory" after the check's last line)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "MAKE", "MFLAGS"))}
    # the experiment profile set empty: `make check` runs 05/06 (in their SMOKE_TEST mode, set by
    # _fill) instead of grading saved results
    env.update(
        PIP_NO_INDEX="1",
        **{PROFILE_VARIABLE: ""},
        OPENBLAS_NUM_THREADS="1",
        PATH=f"{kit / '.venv/bin'}:{env.get('PATH', '')}",
    )
    result = subprocess.run(
        ["make", "check", f"PACKAGE={wheel}"], cwd=kit, env=env, capture_output=True, text=True, timeout=900
    )
    output = result.stdout + result.stderr
    assert (kit / ".venv/.installed").exists()
    # 01-04 pass; 05 and 06 ran and passed their tests in their smoke mode, and the check says that such
    # results are not graded: the check fails until the real runs are done
    assert result.returncode == 2 and "check] Error 1" in result.stderr, output[-5000:]  # make's 2: the check's 1
    lines = output.splitlines()
    for name in make_release.NOTEBOOKS[:4]:
        assert any(line.startswith(name) and line.endswith(", all pass") for line in lines), output[-3000:]
    for name, results, runs in (("05", "mnist_results.json", 3), ("06", "fashion_results.json", 4)):
        line = next(line for line in lines if line.startswith(name))
        assert line.split(None, 1)[1].startswith("\u2717 "), line
        assert (
            f"    \u2717 {results} holds SMOKE-TEST results ({runs} runs with SMOKE_TEST = True"
            in output.split(line)[1]
        )
    assert "They are not graded: the grader gives them no points. Set SMOKE_TEST = False" in output
    assert "4 of 6 notebooks pass." in result.stdout.splitlines()[-1], result.stdout[-500:]
    work = kit / "my-work" / "dnn_hw"

    # make submit: a name and an id are required; the zip holds what the grader's collector takes
    result = subprocess.run(
        ["make", "submit", f"PACKAGE={wheel}"],
        cwd=kit,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert (
        result.returncode != 0
        and "Give your name and your student id, for example: make submit NAME=Ada_Lovelace ID=12345678"
        in result.stderr
    ), result.stdout + result.stderr
    result = subprocess.run(
        ["make", "submit", "NAME=Ada Lovelace", "ID=12345678"],
        cwd=kit,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0 and "cannot go into the file name" in result.stderr, result.stderr
    result = subprocess.run(
        ["make", "submit", "NAME=Ada_Lovelace", "ID=12345678"],
        cwd=kit,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING: mnist_results.json holds smoke-test results (sigmoid, relu, tanh)" in result.stdout
    assert "WARNING: fashion_results.json holds smoke-test results" in result.stdout
    submissions = tmp_path / "uploads"
    submissions.mkdir()
    (kit / "DNN_HW2_Ada_Lovelace_12345678.zip").rename(submissions / "DNN_HW2_Ada_Lovelace_12345678.zip")
    manifest, submitted = _collected(submissions, tmp_path / "course")
    assert list(manifest) == ["12345678"] and manifest["12345678"]["flags"] == [], manifest
    DATA_FILES = ASSIGNMENT.data_file_caps
    for name in [*make_release.NOTEBOOKS, *DATA_FILES]:
        assert (submitted / "12345678" / "dnn_hw" / name).read_bytes() == (work / name).read_bytes(), name

    # partial credit by design (06 at 2 of 4) is shown as such, with what the next point needs, not as a failure
    import shutil

    from tests.test_student_check import PARTIAL_PLAN, _fashion_results

    for stale in ("fashion_results.json", "fashion_model.npz", "fashion_runs"):
        shutil.rmtree(work / stale) if (work / stale).is_dir() else (work / stale).unlink()
    _fashion_results(work, reference, PARTIAL_PLAN)
    graded_env = {k: v for k, v in env.items() if k != PROFILE_VARIABLE}  # the check's default: as graded
    result = subprocess.run(["make", "check"], cwd=kit, env=graded_env, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    line = next(line for line in output.splitlines() if line.startswith("06"))
    assert line.split(None, 1)[1] == "\u25d0 4/6 points from the visible tests, all pass, with partial credit", output
    assert "\u25d0 test_fashion_model_accuracy (2/4 points, partial credit): 0.838 test accuracy" in output
    assert "0.85 earns the next point" in output
    assert result.returncode == 2 and "mnist_results.json holds SMOKE-TEST results" in output  # 05 still a smoke run

    # The package came from the wheel, with the data inside it; the instructors' files are absent.
    probe = (
        "import dnn_course, dnn_course.checks as c; from dnn_course.datasets import load_dataset; "
        "print(dnn_course.__file__); print(load_dataset('fashion-mnist', verbose=False).description); "
        "print(c._FIXTURE_FILE.name); import importlib.util; print(importlib.util.find_spec('dnn_course.reference'))"
    )
    lines = subprocess.run(
        [str(kit / ".venv/bin/python"), "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert lines[0].startswith(purelib)
    assert "dnn_course/embedded/fashion-mnist in the installed package" in lines[1]
    assert lines[2:] == ["visible_values.npz", "None"]

    # The same check on an untouched notebook fails, naming what is missing.
    blank = kit / "blank"
    blank.mkdir()
    (blank / "01_activations.ipynb").write_bytes((kit / "exercises/dnn_hw/01_activations.ipynb").read_bytes())
    result = subprocess.run(
        [str(kit / ".venv/bin/python"), "-m", "nbgrader", "validate", "01_activations.ipynb"],
        cwd=blank,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "ReLU.forward is not written yet" in result.stdout + result.stderr


# --- the site gives no answers ---------------------------------------------------------------


def _toc_docnames(toc_file: Path) -> list[str]:
    import yaml

    def walk(entries):
        for entry in entries:
            yield entry["file"]
            yield from walk(entry.get("sections", []))

    toc = yaml.safe_load(toc_file.read_text())
    return [toc["root"], *(name for part in toc["parts"] for name in walk(part["chapters"]))]


def _page_source(docname: str) -> str:
    path = REPO / f"{docname}.md"
    if path.exists():
        return path.read_text(encoding="utf-8")
    cells = json.loads((REPO / f"{docname}.ipynb").read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells)


def test_answers_build_is_the_default_site_plus_the_answers_pages():
    default = _toc_docnames(REPO / "_toc.yml")
    answers = _toc_docnames(REPO / "_toc_answers.yml")
    extra = [name for name in answers if name not in default]
    assert [name for name in answers if name in default] == default
    assert extra and all(name.startswith("book/answers/") for name in extra)
    assert {f"book/answers/{p.stem}" for p in (REPO / "book" / "answers").glob("*.md")} == set(extra)


def test_default_site_sources_hold_no_model_answer():
    """Every page of the default site, as its source: the prose and the code whose output it shows."""
    texts = {name: _page_source(name) for name in _toc_docnames(REPO / "_toc.yml")}
    assert make_release.model_answer_leaks(texts) == []


def test_answer_check_finds_the_answers_and_the_tuned_configuration():
    answers = {
        name: _page_source(name)
        for name in _toc_docnames(REPO / "_toc_answers.yml")
        if name.startswith("book/answers/")
    }
    leaks = "\n".join(make_release.model_answer_leaks(answers))
    assert "the answers' section 'How the design was chosen'" in leaks
    assert "the answers' section 'What the curves show'" in leaks
    # the configuration is in the result file the answers page reads, so the check also looks for it
    assert make_release.tuned_configuration() == "784-1024-1024-10"
    model = make_release.model_answers()["06_fashion_tuning.ipynb/answer_fashion_design"]
    assert "Rubric" not in model
    paraphrase = "In short: " + " ".join(model.split()[20:32]) + ", as I wrote."
    assert make_release.model_answer_leaks({"page": paraphrase}) == [
        "page: text of the model answer 06_fashion_tuning.ipynb/answer_fashion_design"
    ]


# --- make submit -------------------------------------------------------------------------------


def _collected(submissions: Path, course: Path) -> tuple[dict, Path]:
    """What the grader's collector makes of a folder of submissions: (manifest, course/submitted)."""
    from autograder import collect, grade
    from autograder.grading_settings import GradingSettings

    course.mkdir()
    settings = GradingSettings()
    env_path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{env_path}"  # nbgrader runs alembic from the venv
    try:
        names = grade.prepare_master(course, settings, course / "assignment.db")
        api = grade.master_api(course, settings, course / "assignment.db")
        manifest = collect.collect(
            submissions,
            course,
            settings.assignment,
            settings.name_pattern,
            grade.released_ids(course, settings.assignment, names),
            api,
        )
    finally:
        os.environ["PATH"] = env_path
    return manifest, course / "submitted"


def test_submit_checks_the_files_and_writes_the_zip_the_grader_collects(tmp_path, capsys):
    from autograder.grading_settings import DATA_FILES, DEFAULT_NAME_PATTERN
    from dnn_course import submission
    from dnn_course.experiment import SMOKE, Experiment, _save

    assert DATA_FILES == ASSIGNMENT.data_file_caps  # one list, the grader's and the student's
    work, out = tmp_path / "work", tmp_path / "uploads"
    work.mkdir(), out.mkdir()
    for name in make_release.NOTEBOOKS:
        (work / name).write_bytes((REPO / "exercises/dnn_hw" / name).read_bytes())
    (work / "fashion_runs").mkdir()
    (work / "fashion_runs" / "0123abcd.npz").write_bytes(b"a run's weights")
    (work / "notes.txt").write_text("mine")

    def submit(*args):
        code = submission.main([str(work), "--out", str(out), *args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    code, text = submit("--name", "Ada_Lovelace", "--id", "12345678")
    assert code == 1 and "Not packed: " in text and "lacks mnist_results.json, fashion_results.json" in text, text
    for name in DATA_FILES:
        (work / name).write_bytes(b"{}")
    for args, message in [
        ((), "Give your name and your student id, for example: make submit NAME=Ada_Lovelace ID=12345678"),
        (("--name", "Ada Lovelace", "--id", "12345678"), "NAME='Ada Lovelace' cannot go into the file name"),
        (("--name", "Ada_Lovelace", "--id", "123-456"), "ID='123-456' is not a student id"),
        (("--name", "Ada_Lovelace"), "Give your name and your student id"),
    ]:
        code, text = submit(*args)
        assert code == 2 and message in text, (args, text)
    assert not list(out.iterdir())
    # a smoke-test results file: packed, with a warning that it earns nothing
    smoke = dict(layer_sizes=[784, 500, 500, 10], epochs=SMOKE["max_epochs"], train_images=SMOKE["train_images"])
    _save(work / "mnist_results.json", Experiment({}, {}, {"relu": smoke, "tanh": smoke}, {}))
    code, text = submit("--name", "Ada_Lovelace", "--id", "12345678")
    assert code == 0, text
    assert (
        "WARNING: mnist_results.json holds smoke-test results (relu, tanh), made with SMOKE_TEST = True. "
        "They earn no points" in text
    )
    archive = out / "DNN_HW2_Ada_Lovelace_12345678.zip"
    assert f"Wrote {archive}" in text
    with zipfile.ZipFile(archive) as zipped:
        assert zipped.namelist() == [*make_release.NOTEBOOKS, *DATA_FILES]
    import re

    assert re.match(DEFAULT_NAME_PATTERN, archive.name.removesuffix(".zip"))
    manifest, submitted = _collected(out, tmp_path / "course")
    assert list(manifest) == ["12345678"]
    assert manifest["12345678"]["student_name"] == "Ada_Lovelace" and manifest["12345678"]["flags"] == []
    assert sorted(manifest["12345678"]["files"]) == sorted([*make_release.NOTEBOOKS, *DATA_FILES])
    assert {p.name for p in (submitted / "12345678" / "dnn_hw").iterdir()} >= {*make_release.NOTEBOOKS, *DATA_FILES}
