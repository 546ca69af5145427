"""End-to-end: a class handed out and collected through nbgrader's own exchange, then graded.

nbgrader's real commands (0.9) on a local exchange folder, no hub: the instructor's
``release_assignment``; two students' ``fetch_assignment`` and ``submit`` (each in a folder of
their own, named with ``--student``); the instructor's ``collect``; a late resubmission and
``collect --update``; then ``python -m autograder grade`` on the course folder. Alice first
submits the blank notebooks and later resubmits with 01-04 answered from the solutions (she
deletes 05 and 06, which she did not do); Bob submits 01-04 blank. Minutes, hence ``slow``.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder import __main__ as cli
from autograder import collect
from tests.autograder_corpus import students as st

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("bubblewrap")]
REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "exercises" / st.ASSIGNMENT
SOURCE = REPO / "solutions" / st.ASSIGNMENT
COURSE_ID = "dnn"
NOT_DONE = ("05_mnist_activations.ipynb", "06_fashion_tuning.ipynb")


def nbgrader(folder: Path, *args: str) -> str:
    """Run ``nbgrader ARGS`` in ``folder`` (it reads the nbgrader_config.py there); its log."""
    tools = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])  # collect runs alembic
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PATH": tools},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def write_config(folder: Path, exchange: Path, course_root: Path | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["c = get_config()", f"c.CourseDirectory.course_id = {COURSE_ID!r}", f"c.Exchange.root = {str(exchange)!r}"]
    if course_root:
        lines.append(f"c.CourseDirectory.root = {str(course_root)!r}")
    (folder / "nbgrader_config.py").write_text("\n".join(lines) + "\n")


def submit(home: Path, student: str, notebooks: dict | None) -> str:
    """Fetch (first time), write ``notebooks`` over the fetched ones, drop 05/06, submit; the timestamp."""
    if not (home / st.ASSIGNMENT).exists():
        nbgrader(home, "fetch_assignment", st.ASSIGNMENT)
    work = home / st.ASSIGNMENT
    for name, nb in (notebooks or {}).items():
        (work / name).write_bytes(st.dumps(nb))
    for name in NOT_DONE:
        (work / name).unlink(missing_ok=True)
    log = nbgrader(home, "submit", st.ASSIGNMENT, "--student", student)
    return log.split("Submitted as: ")[1].split("\n")[0].split(" ", 2)[2].strip()  # "dnn dnn_hw <timestamp>"


@pytest.fixture(scope="module")
def exchange_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("exchange")
    exchange, course = root / "exchange", root / "course"
    write_config(course, exchange, course)
    shutil.copytree(
        RELEASE, course / "release" / st.ASSIGNMENT, ignore=shutil.ignore_patterns("nbgrader_config.py")
    )  # exercises/ is generate_assignment's output
    nbgrader(course, "release_assignment", st.ASSIGNMENT)
    alice, bob = root / "alice", root / "bob"
    for home in (alice, bob):
        write_config(home, exchange)
    first = submit(alice, "alice", None)
    submit(bob, "bob", None)
    nbgrader(course, "collect", st.ASSIGNMENT)
    late = submit(alice, "alice", {n: nb for n, nb in st.perfect(RELEASE, SOURCE).items() if n not in NOT_DONE})
    nbgrader(course, "collect", "--update", st.ASSIGNMENT)
    return root, course, first, late


def test_nbgrader_collect_keeps_the_late_resubmission(exchange_class):
    _, course, first, late = exchange_class
    assert first < late
    assert (course / "submitted" / "alice" / st.ASSIGNMENT / "timestamp.txt").read_text() == late
    layout = collect.detect_layout(course / "submitted", st.ASSIGNMENT)
    assert layout.kind == collect.NBGRADER and [e.name for e in layout.entries] == ["alice", "bob"]


def test_the_course_folder_is_graded_as_nbgrader_wrote_it(exchange_class, capsys):
    root, course, first, late = exchange_class
    out = root / "out"
    assert cli.main(["grade", str(course), "--out", str(out), "--quiet", "--jobs", "2", "--cell-timeout", "60"]) == 0
    printed = capsys.readouterr().out
    assert f"submissions: nbgrader exchange (as nbgrader collect writes it): {course / 'submitted'}" in printed
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert sorted(rows) == ["alice", "bob"]
    assert rows["alice"]["total"] == "30"  # 01-04 right, as the sample class's complete student (1001)
    assert rows["bob"]["total"] == "0"
    for row in rows.values():  # nbgrader's own files are not "other files" of the submission
        assert "dropped" not in row["flags"] and "timestamp" not in row["flags"], row["flags"]
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}") as gb:
        graded_at = gb.find_submission(st.ASSIGNMENT, "alice").timestamp
    stamp = dt.datetime.strptime(late, "%Y-%m-%d %H:%M:%S.%f %Z").replace(microsecond=0)
    assert graded_at.replace(tzinfo=None) == stamp  # the resubmission's time, as nbgrader submit wrote it
