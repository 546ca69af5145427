"""The book's chapters build and run without ``solutions/``.

Students' copies and a public build of the site have no ``solutions/`` (and the students' kit
has no ``dnn_course/reference.py``). What the chapters show from the reference solution is
recorded in ``book/results/0[1-6]_*.json`` by ``scripts/make_book_results.py``:

- no chapter's source names the reference loader or ``solutions/``, and no chapter's code repeats
  a line of a solution or hidden-test region (fast);
- the recorded results are what the reference gives now (``--check``, about 15 s);
- the whole site builds with ``jupyter-book build --warningiserror --keep-going`` in a copy of
  the repository without ``solutions/``, ``dnn_course/reference.py``, ``.git``, ``.venv`` and
  ``_build``, with the copy's own ``dnn_course`` on the path (slow: about 2 minutes on two
  cores, every chapter executed from scratch). The build never touches this checkout's
  ``_build``. The built site is then searched for solution regions, and its page sources for
  anything ``dnn_course.leak_policy`` calls a graded answer, as test_book_site does (the fast,
  source-level version of that check is tests/test_leak_policy.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dnn_course import secret_lines

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "book"
CHAPTERS = sorted(BOOK.glob("0*.md"))
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"

#: What a chapter would need solutions/ for.
FORBIDDEN = re.compile(r"load_reference|dnn_course\.reference|dnn_course import reference|solutions/")

#: Not copied: the instructors' answers, version control, the environment, build output.
NOT_COPIED = {
    "solutions",
    ".git",
    ".venv",
    "venv",
    "_build",
    "release",
    "my-work",
    "grading-out",
    ".pytest_cache",
    ".jupyter_cache",
    "node_modules",
}


def test_every_chapter_is_checked():
    assert [path.name[:2] for path in CHAPTERS] == ["00", "01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_chapter_source_does_not_use_the_reference_solution(chapter):
    found = [
        (number, line.strip())
        for number, line in enumerate(chapter.read_text().splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert found == [], (
        f"{chapter.name} needs the reference solution, which students and the public site do not have: "
        f"{found}. Record what the chapter shows with scripts/make_book_results.py and read it from book/results/."
    )


@pytest.mark.parametrize("chapter", CHAPTERS[1:7], ids=lambda path: path.stem)
def test_chapter_reads_its_own_results_file(chapter):
    assert f'Path("results/{chapter.stem}.json")' in chapter.read_text()
    assert (BOOK / "results" / f"{chapter.stem}.json").is_file()


def test_the_check_finds_a_forbidden_line():
    for line in (
        "nn = load_reference()",
        "from dnn_course.reference import load_reference",
        "see solutions/dnn_hw/02_fc_layer.ipynb",
    ):
        assert FORBIDDEN.search(line), line
    assert not FORBIDDEN.search("python scripts/run_reference_experiments.py")


_CODE = re.compile(r"^```(?:\{code-cell\}[^\n]*|python)\n(.*?)^```", re.S | re.M)


def test_no_chapter_code_repeats_a_line_of_a_solution():
    """By the line policy feedback, the kit and the site share (:mod:`dnn_course.secret_lines`)."""
    lines = secret_lines.secret_lines(REPO / "solutions" / "dnn_hw")
    assert len(lines) > 100, "found no solution regions to compare with"
    found = {
        chapter.name: [line.key for line in secret_lines.found_in("\n".join(_CODE.findall(chapter.read_text())), lines)]
        for chapter in CHAPTERS
    }
    assert {name: lines for name, lines in found.items() if lines} == {}


def test_recorded_results_match_the_reference():
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_book_results.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "6 result files agree with the reference." in done.stdout


def test_the_results_check_detects_a_changed_number(tmp_path):
    from scripts import make_book_results as script

    recorded = {"a": {"errors": {"W": 3e-11}, "acc": [0.901, 0.95], "kind": "ReLU", "count": 3}}
    script.write(recorded, tmp_path)
    assert script.check(recorded, tmp_path) == []
    # rounding noise of a passing gradient check and a float32 curve on another BLAS agree ...
    assert (
        script.check({"a": {"errors": {"W": 9e-10}, "acc": [0.9015, 0.95], "kind": "ReLU", "count": 3}}, tmp_path) == []
    )
    # ... a real change does not
    changed = {"a": {"errors": {"W": 0.1}, "acc": [0.85, 0.95], "kind": "Tanh", "count": 4}}
    assert script.check(changed, tmp_path) == [
        "a.json.errors.W: 3e-11 != 0.1",
        "a.json.acc[0]: 0.901 != 0.85",
        "a.json.kind: 'ReLU' != 'Tanh'",
        "a.json.count: 3 != 4",
    ]
    assert script.check({"b": {}}, tmp_path) == [f"{tmp_path / 'b.json'} is missing"]


def test_a_run_at_the_edge_of_stability_agrees_in_its_first_epoch_and_roughly_after(tmp_path):
    from scripts import make_book_results as script

    run = {"inputs": "raw", "learning_rate": 1.0, "val_acc": [0.495, 0.6685, 0.844, 0.866]}
    script.write({"c": {"runs": [run]}}, tmp_path)
    rounded_elsewhere = dict(run, val_acc=[0.495, 0.678, 0.7835, 0.8615])  # seen on another BLAS kernel
    assert script.check({"c": {"runs": [rounded_elsewhere]}}, tmp_path) == []
    assert script.check({"c": {"runs": [dict(run, val_acc=[0.52, 0.6685, 0.844, 0.866])]}}, tmp_path) == [
        "c.json.runs[0].val_acc[0]: 0.495 != 0.52"
    ]
    assert script.check({"c": {"runs": [dict(run, val_acc=[0.495, 0.6685, 0.844, 0.70])]}}, tmp_path) == [
        "c.json.runs[0].val_acc[3]: 0.866 != 0.7"
    ]
    stable = dict(run, learning_rate=0.1)  # any other run keeps the usual tolerance
    script.write({"c": {"runs": [stable]}}, tmp_path)
    assert script.check({"c": {"runs": [dict(stable, val_acc=[0.495, 0.678, 0.7835, 0.8615])]}}, tmp_path) != []
    # a confusion-matrix cell (images counted) may move by COUNT_TOL on another BLAS kernel, no more
    script.write({"c": {"counts": [[90, 813], [4, 5]], "epochs": 15}}, tmp_path)
    assert script.check({"c": {"counts": [[92, 812], [4, 5]], "epochs": 15}}, tmp_path) == []
    assert script.check({"c": {"counts": [[90, 813 + script.COUNT_TOL + 1], [4, 5]], "epochs": 16}}, tmp_path) == [
        f"c.json.counts[0][1]: 813 != {814 + script.COUNT_TOL}",
        "c.json.epochs: 15 != 16",
    ]


def _copy_without_solutions(destination: Path) -> Path:
    def ignore(folder, names):
        top = Path(folder) == REPO
        return {name for name in names if (top and name in NOT_COPIED) or name in ("__pycache__", ".ipynb_checkpoints")}

    copy = destination / "course"
    shutil.copytree(REPO, copy, ignore=ignore, symlinks=True)
    (copy / "dnn_course" / "reference.py").unlink()  # as in the students' kit
    return copy


@pytest.mark.slow
def test_book_builds_from_a_copy_without_solutions(tmp_path):
    copy = _copy_without_solutions(tmp_path)
    assert not (copy / "solutions").exists() and not (copy / "dnn_course" / "reference.py").exists()
    # The copy's dnn_course, not this checkout's: the editable install's finder would otherwise
    # supply any module missing from the copy (dnn_course.reference) from this checkout, where
    # solutions/ exists. A sitecustomize on the path removes that finder from every Python
    # started by the build, the kernels included.
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import sys\n"
        "sys.meta_path[:] = [finder for finder in sys.meta_path\n"
        "                    if not getattr(finder, '__module__', '').startswith('__editable__')]\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(copy), str(shim)])}
    probe = (
        "import dnn_course, importlib.util; print(dnn_course.__file__); "
        "print(importlib.util.find_spec('dnn_course.reference'))"
    )
    where, reference = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    ).stdout.split()
    assert Path(where).is_relative_to(copy) and reference == "None", (where, reference)

    done = subprocess.run(
        [str(JUPYTER_BOOK), "build", str(copy), "--warningiserror", "--keep-going"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=1800,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-5000:]

    site = copy / "_build" / "html"
    from scripts import check_site

    leaks = check_site.find_solution_leaks(site, REPO / "solutions" / "dnn_hw", {})
    assert leaks == [], "\n".join(leaks)
    for chapter in CHAPTERS:
        page = (site / "book" / f"{chapter.stem}.html").read_text()
        assert "Traceback" not in page, chapter.stem
        assert not FORBIDDEN.search(page), chapter.stem
    # the numbers the chapters read from book/results/ are on the pages
    executed = {
        chapter.stem: (copy / "_build" / "jupyter_execute" / "book" / f"{chapter.stem}.ipynb").read_text()
        for chapter in CHAPTERS
    }
    kink = _result("05_putting_it_together")["relu_kink"]
    assert f"all off: {kink['all_off']} of {kink['examples']}" in executed["05_putting_it_together"]
    assert "648,010" in executed["05_putting_it_together"]
    last = _result("04_l2_regularization")["l2_training"]["runs"][-1]
    row = (
        f"{last['reg_lambda']:6g} {last['sum_squared_weights'][-1]:10.1f} {last['train_acc'][-1]:10.3f} "
        f"{last['val_acc'][-1]:10.3f}"
    )
    assert row in executed["04_l2_regularization"]
    errors = _result("02_fully_connected")["fc_gradient_check"]["errors"]
    assert str({name: f"{error:.1e}" for name, error in errors.items()}) in executed["02_fully_connected"]


def _result(name: str) -> dict:
    return json.loads((BOOK / "results" / f"{name}.json").read_text())
