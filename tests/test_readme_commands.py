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
    for command in ("make book", "make test", "make lab", "make check", "make release",
                    "python -m autograder grade SUBMISSIONS --out OUT", "make exercises"):
        assert command in readme, command
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.mark.slow
def test_make_lab_copies_the_exercises_and_serves_them(tmp_path):
    work = tmp_path / "my-work"
    log = tmp_path / "lab.log"
    with open(log, "w") as output:
        lab = subprocess.Popen(
            ["make", "-s", "lab", f"WORK={work}", "LAB_ARGS=--no-browser --ServerApp.port=0 "
             "--ServerApp.ip=127.0.0.1" + (" --allow-root" if os.geteuid() == 0 else "")],
            cwd=REPO, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), HOME=str(tmp_path)))
    try:
        url = None
        for _ in range(120):
            match = re.search(r"(http://127\.0\.0\.1:\d+/lab\?token=\w+)", log.read_text())
            if match:
                url = match.group(1)
                break
            assert lab.poll() is None, log.read_text()
            time.sleep(0.5)
        assert url, log.read_text()
        base, token = url.split("/lab?token=")
        request = urllib.request.Request(f"{base}/api/contents", headers={"Authorization": f"token {token}"})
        listing = json.load(urllib.request.urlopen(request, timeout=30))  # the server's root is my-work/dnn_hw
        names = sorted(item["name"] for item in listing["content"])
        assert names == sorted(p.name for p in (REPO / "exercises" / "dnn_hw").iterdir())  # with nbgrader_config.py
        assert (work / "dnn_hw" / "01_activations.ipynb").read_bytes() == \
            (REPO / "exercises" / "dnn_hw" / "01_activations.ipynb").read_bytes()
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
            lab.wait(timeout=30)


@pytest.mark.slow
def test_readme_validate_command_reports_a_blank_notebook(tmp_path):
    folder = tmp_path / "my-work" / "dnn_hw"
    shutil.copytree(REPO / "exercises" / "dnn_hw", folder)
    result = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "validate", "01_activations.ipynb"],
                            cwd=folder, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert "VALIDATION FAILED" in output, output[-2000:]
    assert "not written yet: fill in its EDIT HERE region" in output, output[-2000:]
