"""The README names the commands that are tested; `make lab` and `nbgrader validate` work as written.

The kit's own `make lab` and `make check` are run from a built kit by tests/test_release.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_readme_names_the_commands_tested_here():
    readme = (REPO / "README.md").read_text()
    for command in (
        "make book",
        "make test",
        "make lab",
        "make check",
        "make release",
        "python -m autograder grade SUBMISSIONS --out OUT",
        "make regenerate-exercises",
    ):
        assert command in readme, command
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_make_help_lists_the_instructors_targets_and_each_is_a_target():
    """`make help` names every generating target (the book's results and chapter 6's reference experiments
    among them), each one it names exists, and `make exercises` is the alias of the target that says it regenerates."""
    makefile = (REPO / "Makefile").read_text()
    targets = dict(re.findall(r"^([a-z][\w-]*):(.*)$", makefile, re.M))
    helped = re.findall(r'^\t@echo "make ([a-z][\w-]*)', makefile, re.M)
    assert set(helped) <= set(targets), set(helped) - set(targets)
    for target in (
        "test",
        "test-fast",
        "regenerate-exercises",
        "fixtures",
        "book-results",
        "reference-experiments",
        "release",
        "bench",
    ):
        assert target in helped, f"make help does not list make {target}"
    assert targets["exercises"].split() == ["regenerate-exercises"]
    for target, script in (
        ("book-results", "scripts/make_book_results.py"),
        ("reference-experiments", "scripts/run_reference_experiments.py"),
        ("regenerate-exercises", "scripts/generate_exercises.py"),
    ):
        recipe = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        assert script in recipe, f"make {target} does not run {script}"


@pytest.mark.slow
def test_make_lab_copies_the_exercises_and_serves_them(tmp_path):
    """`make lab` serves the repository's root and opens on the copy: the notebooks' Read-first links,
    ../../book/<chapter>.md, open (served from my-work/dnn_hw, as it once was, they were a 404)."""
    work_name = f"pytest-lab-{os.getpid()}"  # a folder of the repository's root, as my-work is; removed below
    work = REPO / work_name
    assert not work.exists()
    log = tmp_path / "lab.log"
    with open(log, "w") as output:
        lab = subprocess.Popen(
            [
                "make",
                "-s",
                "lab",
                f"WORK={work_name}",
                "LAB_ARGS=--no-browser --ServerApp.port=0 "
                "--ServerApp.ip=127.0.0.1" + (" --allow-root" if os.geteuid() == 0 else ""),
            ],
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), HOME=str(tmp_path)),
        )
    try:
        url = None
        for _ in range(120):
            match = re.search(r"(http://127\.0\.0\.1:\d+)/lab/tree/(\S+)\?token=(\w+)", log.read_text())
            if match:
                url = match.groups()
                break
            assert lab.poll() is None, log.read_text()
            time.sleep(0.5)
        assert url, log.read_text()
        base, opened, token = url
        assert opened == f"{work_name}/dnn_hw"

        def contents(path):
            request = urllib.request.Request(f"{base}/api/contents/{path}", headers={"Authorization": f"token {token}"})
            return json.load(urllib.request.urlopen(request, timeout=30))

        listing = contents(f"{work_name}/dnn_hw")
        names = sorted(item["name"] for item in listing["content"])
        assert names == sorted(p.name for p in (REPO / "exercises" / "dnn_hw").iterdir())  # with nbgrader_config.py
        assert (work / "dnn_hw" / "01_activations.ipynb").read_bytes() == (
            REPO / "exercises" / "dnn_hw" / "01_activations.ipynb"
        ).read_bytes()
        link = re.search(r"\]\(\.\./\.\./(book/[\w-]+\.md)\)", (work / "dnn_hw" / "01_activations.ipynb").read_text())
        page = contents(link.group(1))  # the Read-first link, resolved from the notebook's folder
        assert page["path"] == link.group(1) and page["content"]  # jupytext opens it as a notebook
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
            lab.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
def test_readme_validate_command_reports_a_blank_notebook(tmp_path):
    folder = tmp_path / "my-work" / "dnn_hw"
    shutil.copytree(REPO / "exercises" / "dnn_hw", folder)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "nbgrader"), "validate", "01_activations.ipynb"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert "VALIDATION FAILED" in output, output[-2000:]
    assert "not written yet: fill in its EDIT HERE region" in output, output[-2000:]
