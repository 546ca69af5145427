"""A class that attacks the grader (tests/autograder_corpus/hostile.py), graded once, every row asserted.

Each attack class has its rule (see ``autograder/sandbox.py``, ``collect.py``,
``rebuild.py``, ``feedback.py``, ``kernel.py``) and cases here that failed
before the rule held:

* escape: links in every folder the sandbox can write, then a kernel restart,
  write nothing on the host;
* one bad file never stops a class: every entry has a row, the run finishes;
* nothing hidden leaks into any page, result or report;
* correct code that writes to stderr or prints a lot keeps its points;
* the caps on the space a submission writes hold, and the report names them;
* a fault costs only what it touched: one test of the grader's own check, one file;
* the processes of a submission together stay under the total memory cap: stopped, flagged, the rest graded.

The fast tests at the end check single pieces without a grading run.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from autograder import collect, isolation_report, kernel_environment, memory_cap, rebuild, sandbox
from autograder.feedback import REDACTED, HideTestCode, Redactor
from autograder.grade import grade
from autograder.grading_settings import GradingSettings
from dnn_course.nbgrader_regions import Cell
from tests.autograder_corpus import hostile
from tests.autograder_corpus import students as st

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "exercises" / st.ASSIGNMENT
SOURCE = REPO / "solutions" / st.ASSIGNMENT
# bubblewrap or nothing: the escape payloads must never run unsandboxed (they act only in /submission)
SETTINGS = replace(
    GradingSettings(), cell_timeout=20, jobs=2, isolation="bubblewrap", limits=sandbox.Limits(disk_mb=128)
)


def read_rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    submissions, out, canary = root / "submissions", root / "out", root / "canary"
    canary.mkdir()
    hostile.build_class(submissions, RELEASE, SOURCE, canary)
    summary = grade(submissions, out, SETTINGS, progress=False)
    return submissions, out, canary, summary, read_rows(out)


def _run_sandboxed(argv: list[str], spec, **command_options) -> subprocess.CompletedProcess:
    """Run ``argv`` in the sandbox ``spec`` describes (as the grader starts its processes), output captured."""
    command = sandbox.command(argv, spec, **command_options)
    try:
        return subprocess.run(
            command.argv,
            capture_output=True,
            text=True,
            pass_fds=command.pass_fds,
            env=sandbox.sandbox_environment(spec),
            cwd=sandbox.working_directory(spec),
            preexec_fn=sandbox.preexec_function(spec),
            timeout=120,
        )
    finally:
        command.close()


@pytest.mark.slow
@pytest.mark.usefixtures("bubblewrap")
def test_every_hostile_submission_gets_exactly_its_grade(graded):
    _, _, _, summary, rows = graded
    assert sorted(rows) == sorted(hostile.EXPECTED)
    wrong = {}
    for sid, (total, flag) in hostile.EXPECTED.items():
        row = rows[sid]
        if row["total"] != total or (flag and flag not in row["flags"]):
            wrong[sid] = (row["total"], row["flags"][:400])
    assert wrong == {}
    assert summary.failed == []
    # the run's summary names what was flagged
    assert "1705" in summary.flagged and any(line.startswith("1705: ") for line in summary.flag_lines())


@pytest.mark.slow
@pytest.mark.usefixtures("bubblewrap")
def test_links_and_a_kernel_restart_write_nothing_on_the_host(graded):
    _, out, canary, _, rows = graded
    assert "the kernel died" in rows["1601"]["flags"]  # the restart happened
    assert sorted(os.listdir(canary)) == []
    # the course's own files are intact
    for path in (out / "course" / "release" / st.ASSIGNMENT).glob("*.ipynb"):
        nbformat.read(path, as_version=4)


def _hidden_lines() -> list[str]:
    return Redactor.from_notebooks(SOURCE, RELEASE).lines


@pytest.mark.slow
@pytest.mark.usefixtures("bubblewrap")
def test_no_hidden_test_line_in_any_page_result_or_report(graded):
    _, out, _, _, _ = graded
    hidden = _hidden_lines()
    assert len(hidden) > 50
    written = (
        sorted((out / "feedback").rglob("*.html"))
        + sorted((out / "results").glob("*.json"))
        + [out / "report.html", out / "grades.csv"]
    )
    leaked = {}
    for path in written:
        text = path.read_text(encoding="utf-8")
        plain = html.unescape(re.sub(r"<[^>]+>", "", text)) if path.suffix == ".html" else text
        if path.suffix == ".json":
            plain = json.dumps(json.loads(text), ensure_ascii=False)
            plain += "\n".join(str(v) for v in _strings(json.loads(text)))
        found = [line for line in hidden if line in plain or line in text]
        if found:
            leaked[str(path.relative_to(out))] = found[:2]
    assert leaked == {}
    # the attempts were there, and were replaced
    page = (out / "feedback" / "1801" / "01_activations.html").read_text(encoding="utf-8")
    assert REDACTED in html.unescape(page) or "This page is not shown" in page
    result = json.loads((out / "results" / "1802.json").read_text())
    relu_forward = next(t for nb in result["notebooks"] for t in nb["tests"] if t["id"] == "test_relu_forward")
    assert relu_forward["status"] == "failed" and "ValueError: caller:" in relu_forward["message"]
    assert REDACTED in relu_forward["message"]


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.mark.slow
@pytest.mark.usefixtures("bubblewrap")
def test_the_report_names_the_caps_in_force(graded):
    _, out, _, _, _ = graded
    page = html.unescape((out / "report.html").read_text(encoding="utf-8"))
    assert "Caps in force" in page
    assert "128 MB of writable space per kernel in total (size-limited tmpfs" in page
    # the total memory cap, and how this machine enforces it (cgroup or watchdog)
    assert (
        "2048 MB of memory for all the processes of a submission together: "
        f"{isolation_report.memory_cap_sentence()}" in page
    )


# ----------------------------------------------------------------------------- fast pieces
def test_every_bad_archive_member_costs_only_itself(tmp_path):
    one = b'{"nbformat": 4}'
    for number, patch, reason in (
        (1, None, "BadZipFile"),
        (2, {"size": 3}, "BadZipFile"),
        (3, {"flags": 1}, "RuntimeError"),
        (4, {"method": 99}, "NotImplementedError"),
    ):
        path = hostile._stored_zip(tmp_path, f"a{number}", {st.NB1: one * 3, st.NB2: one})
        if patch is None:
            hostile._corrupt_crc(path, st.NB1)
        else:
            hostile._patch_headers(path, st.NB1, **patch)
        out = tmp_path / f"out{number}"
        flags = collect.extract_zip(path, out)
        assert sorted(p.name for p in out.iterdir()) == [st.NB2], number
        assert any(f.startswith(f"'{st.NB1}' could not be unpacked ({reason}") for f in flags), flags


def test_an_entry_that_is_not_a_zip_or_folder_is_flagged_not_skipped(tmp_path):
    (tmp_path / "DNN_HW2_A_1.tar.gz").write_bytes(b"\x1f\x8b not really")
    flags = collect.unpack_entry(tmp_path / "DNN_HW2_A_1.tar.gz", tmp_path / "x")
    assert flags == ["not a zip file or folder (.tar.gz); not graded: ask for a .zip"]
    assert collect.entry_stem("DNN_HW2_A_1.tar.gz") == "DNN_HW2_A_1"


@pytest.mark.parametrize(
    "stem, expected",
    [
        ("final homework", "final_homework"),
        (hostile.IVAN, hostile.non_latin_id(hostile.IVAN)),
        ("Иван", hostile.non_latin_id("Иван")),
    ],
)
def test_ids_of_names_outside_the_pattern_never_collide(stem, expected):
    assert collect.sanitize_id(stem) == expected
    assert collect.sanitize_id(hostile.IVAN) != collect.sanitize_id(hostile.PETR)


@pytest.mark.parametrize("stem, number", [("x", 0), ("x (1)", 1), ("x (12)", 12), ("x-2", 2), ("x_2", 0)])
def test_copy_numbers(stem, number):
    assert collect.copy_number(stem) == number


@pytest.mark.parametrize(
    "data, message",
    [
        (hostile.DEEP, "nested too deeply"),
        (b'{"nbformat": 4, "cells": {"a": 1}}', "'cells' field is not a list"),
        (b'{"nbformat": [4], "cells": []}', "not a readable notebook"),
    ],
)
def test_malformed_notebooks_raise_only_unreadable(data, message):
    with pytest.raises(rebuild.UnreadableNotebook, match=message):
        rebuild.read_submitted(data)


def test_cells_and_metadata_of_the_wrong_type_are_dropped_and_the_rest_is_read():
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": [],
        "cells": [
            1,
            "x",
            None,
            {"cell_type": "spreadsheet"},
            {
                "cell_type": "code",
                "source": ["a = ", "1"],
                "metadata": {"nbgrader": "oops"},
                "outputs": 5,
                "execution_count": "x",
            },
            {"cell_type": "markdown", "source": 7, "metadata": []},
        ],
    }
    read, flags = rebuild.read_submitted(json.dumps(nb).encode())
    assert [(c.cell_type, c.source, dict(c.metadata)) for c in read.cells] == [
        ("code", "a = 1", {}),
        ("markdown", "", {}),
    ]
    assert flags == [
        "4 entries of its cell list not a notebook cell; ignored",
        "2 cell(s) with a source or nbgrader metadata of the wrong type; ignored",
    ]


def test_redactor_replaces_hidden_lines_in_every_form():
    line = 'checks.check_close(out1, expected[:1], "ReLU.forward with a batch of size 1")'
    source = f"x = 1\n### BEGIN HIDDEN TESTS\ntry:\n    {line}\nexcept ValueError:\n    pass\n### END HIDDEN TESTS"
    redactor = Redactor.from_cells([Cell("nb.ipynb", 0, "code", source, {})])
    assert redactor.lines == [line]  # short lines and syntax alone say nothing
    for text in (line, repr(["x", line + "\n"]), json.dumps(line), html.escape(line)):
        assert line not in html.unescape(redactor.text(text)) and REDACTED in redactor.text(text)
    page = "<pre>" + html.escape(line[:20]) + "<span>" + html.escape(line[20:]) + "</span></pre>"
    assert redactor.leaks(page) == [line]
    assert "This page is not shown" in redactor.page(page, "x")


def test_feedback_outputs_lose_hidden_lines():
    source = "x = 1\n### BEGIN HIDDEN TESTS\nassert secret_value_of_the_test == 42\n### END HIDDEN TESTS"
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="['assert secret_value_of_the_test == 42']"),
        nbformat.v4.new_output(
            "error", ename="ValueError", evalue="caller: assert secret_value_of_the_test == 42", traceback=[]
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    out, _ = HideTestCode().preprocess(nb, {})
    assert "secret_value" not in json.dumps(out)


@pytest.mark.usefixtures("bubblewrap")
def test_the_sandbox_sees_copies_and_the_host_folder_is_never_mounted(tmp_path):
    work, ipc = tmp_path / "work", tmp_path / "ipc"
    work.mkdir()
    ipc.mkdir()
    (work / "01_activations.ipynb").write_text("{}")
    os.symlink("/etc/passwd", work / "link.ipynb")  # a link in the host folder is not followed
    spec = sandbox.SandboxSpec(
        sandbox.ISOLATION_BWRAP,
        str(work),
        str(ipc),
        "unit-copy",
        limits=sandbox.Limits(disk_mb=8),
        readonly=kernel_environment.readonly_paths(),
        uid=sandbox.sandbox_uid(0, sandbox.ISOLATION_BWRAP),
    )
    code = (
        "import os, json\n"
        "names = sorted(os.listdir('.'))\n"
        "os.remove('01_activations.ipynb'); os.symlink('/etc/shadow', '01_activations.ipynb')\n"
        "written = 0\n"
        "try:\n"
        "    with open('big.bin', 'wb') as f:\n"
        "        for _ in range(64):\n"
        "            f.write(b'x' * (1 << 20)); f.flush(); written += 1\n"
        "except OSError as e:\n"
        "    pass\n"
        "print(json.dumps({'names': names, 'written': written, 'data': open('/ipc/info').read()}))\n"
    )
    result = _run_sandboxed([sys.executable, "-c", code], spec, data={"info": b"from the host"})
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["names"] == ["01_activations.ipynb"] and facts["data"] == "from the host"
    assert 4 <= facts["written"] < 8  # 3/4 of 8 MB
    assert (work / "01_activations.ipynb").read_text() == "{}" and not (work / "big.bin").exists()


def test_zip_member_dates_never_choose_the_attempt(tmp_path):
    """Two attempts of one student: the one newer on the instructor's disk wins, whatever the dates inside."""
    for name, body, inside, disk in (
        ("DNN_HW2_A_7 (1).zip", b"blank", (2035, 1, 1, 0, 0, 0), 1_700_000_000),
        ("DNN_HW2_A_7.zip", b"good", (2020, 1, 1, 0, 0, 0), 1_800_000_000),
    ):
        with zipfile.ZipFile(tmp_path / name, "w") as zf:
            zf.writestr(zipfile.ZipInfo(st.NB1, inside), body)
        os.utime(tmp_path / name, (disk, disk))
    extracted = tmp_path / "extracted"
    extracted.mkdir()
    for entry in sorted(tmp_path.glob("*.zip")):
        flags = collect.unpack_entry(entry, extracted / entry.name)
        (extracted / entry.name / collect.ENTRY_INFO).write_text(
            json.dumps({"flags": flags, "mtime": int(entry.stat().st_mtime)})
        )
    plugin = collect.SubmissionCollectorPlugin()
    plugin.pattern = r"^DNN_HW\d*_(?P<name>.+?)_(?P<student_id>[A-Za-z0-9]+)(?:\s*\(\d+\)|-\d+)?$"
    plugin.released = {st.NB1: []}
    files, plan = plugin._make_plan(extracted)
    assert Path(plan["7"].files[st.NB1]).read_bytes() == b"good"
    assert "duplicate submission 'DNN_HW2_A_7 (1).zip' ignored" in plan["7"].flags[-1]


def test_files_that_crashed_or_swelled_the_grader_are_flags_of_their_own(tmp_path):
    """Each of these raised in the grading job (RecursionError, zlib.error) or took 620 MB on the host."""
    import resource

    from autograder.job import validate_data_file
    from dnn_course.records import RecordError, read_weights

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    flags = {}
    for name, data in hostile.bad_data_files().items():
        (tmp_path / name).write_bytes(data)
        flags[name] = validate_data_file(tmp_path / name)
        if name.endswith(".npz"):
            with pytest.raises(RecordError):
                read_weights(tmp_path / name)
    assert flags == {
        "mnist_results.json": "mnist_results.json is not a valid json file (nested too deeply)",
        "fashion_model.npz": "fashion_model.npz is not a valid npz file (is not a model file written by save_model "
        "(error: Error -3 while decompressing data: invalid distance too far back))",
        "mnist_model_relu.npz": "mnist_model_relu.npz is not a valid npz file (declares 620,757,128 bytes of arrays, "
        "more than the 134,217,728 a saved model of this course may hold.)",
    }
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB: nothing was decompressed


def test_a_model_description_of_the_wrong_types_is_refused_by_name(tmp_path):
    import io

    import numpy as np

    from dnn_course.records import RecordError, read_weights

    for info, why in (
        ({"name": ["run 0"]}, "has a 'name' that is not a string"),
        ({"run_id": {"a": 1}}, "has a 'run_id' that is not a string"),
    ):
        description = {"layer_sizes": [784, 10], "activation": "relu", "info": info}
        buffer = io.BytesIO()
        np.savez(buffer, W1=np.zeros((784, 10)), b1=np.zeros(10), description=np.array(json.dumps(description)))
        (tmp_path / "m.npz").write_bytes(buffer.getvalue())
        with pytest.raises(RecordError, match=why):
            read_weights(tmp_path / "m.npz")


@pytest.mark.usefixtures("bubblewrap")
def test_a_sandboxed_process_holds_only_the_descriptors_it_is_given(tmp_path):
    """The data and working-folder copies' descriptors are consumed by bubblewrap; what is left is
    stdin, stdout, stderr and the channel the host passes on (checked in /proc/self/fd inside)."""
    work, ipc = tmp_path / "work", tmp_path / "ipc"
    work.mkdir()
    ipc.mkdir()
    (work / "01_activations.ipynb").write_text("{}")
    spec = sandbox.SandboxSpec(
        sandbox.ISOLATION_BWRAP,
        str(work),
        str(ipc),
        "unit-fds",
        readonly=kernel_environment.readonly_paths(),
        uid=sandbox.sandbox_uid(0, sandbox.ISOLATION_BWRAP),
    )
    read, write = os.pipe()
    code = (
        "import os, json\n"
        "print(json.dumps(sorted(int(f) for f in os.listdir('/proc/self/fd')"
        " if os.path.exists('/proc/self/fd/' + f))))\n"
    )
    try:
        result = _run_sandboxed([sys.executable, "-c", code], spec, data={"info": b"x"}, keep_fds=(write,))
    finally:
        os.close(read)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [0, 1, 2, write]


#: Forks three children that each fill ``{mb}`` MB (touched, so resident) and sleep; prints when all are full.
FORK_AND_FILL = """
import os, sys, time
kids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        block = b"\\x01" * ({mb} * 1024 * 1024)
        time.sleep(60)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
print("all children ended on their own")
"""


@pytest.mark.parametrize("isolation", [sandbox.ISOLATION_BWRAP, sandbox.ISOLATION_PROCESS])
def test_the_watchdog_stops_a_submission_whose_processes_together_pass_the_cap(tmp_path, isolation, request):
    """Three children of 300 MB each (each far below the 2048 MB per-process limit) against a 600 MB total cap:
    the watchdog kills all the submission's processes and counts it; a process that is not the submission's,
    even under the same sandbox uid (as another grading run's would be), is untouched."""
    if isolation == sandbox.ISOLATION_BWRAP:
        request.getfixturevalue("bubblewrap")
    work, ipc = tmp_path / "work", tmp_path / "ipc"
    work.mkdir()
    ipc.mkdir()
    spec = sandbox.SandboxSpec(
        isolation,
        str(work),
        str(ipc),
        f"unit-memcap-{isolation}",
        limits=sandbox.Limits(total_memory_mb=600),
        readonly=kernel_environment.readonly_paths(),
        uid=sandbox.sandbox_uid(1, isolation),
    )
    # under the sandbox's uid when there is one (another grading run on this machine uses the same uids)
    bystander = subprocess.Popen(["sleep", "60"], user=spec.uid, cwd="/")
    cap = memory_cap.MemoryCap(
        spec.marker, 600, spec.limits.max_processes, method=memory_cap.CAP_WATCHDOG, interval=0.1
    ).start()
    try:
        clock = time.monotonic()
        result = _run_sandboxed([sys.executable, "-c", FORK_AND_FILL.format(mb=300)], spec)
        took = time.monotonic() - clock
    finally:
        cap.stop()
    try:
        assert "all children ended on their own" not in result.stdout
        assert result.returncode != 0 and took < 30
        assert cap.reached >= 1
        assert 600 * 2**20 <= cap.peak_bytes < 1100 * 2**20  # stopped near the cap, before all 900 MB
        assert bystander.poll() is None  # not one of the submission's processes
        deadline = time.monotonic() + 10
        while cap.processes() and time.monotonic() < deadline:  # a killed sandbox's init takes a moment to go
            time.sleep(0.1)
        assert cap.processes() == set()
    finally:
        bystander.kill()
        bystander.wait()


def test_a_cgroup_cap_is_set_joined_read_and_removed(tmp_path):
    """The cgroup path on a stand-in folder (this machine's cgroups v2 has no memory controller): the group
    gets memory.max, pids.max and memory.oom.group; a started process joins it before exec; an OOM group
    kill counts as the cap reached; at the end the group is killed."""
    spec = sandbox.SandboxSpec(
        sandbox.ISOLATION_PROCESS,
        str(tmp_path),
        str(tmp_path),
        "unit-cgroup",
        limits=sandbox.Limits(total_memory_mb=700, max_processes=99),
    )
    group = tmp_path / "autograder-unit-cgroup"
    group.mkdir()
    for name in ("memory.oom.group", "memory.events", "cgroup.kill", "cgroup.procs"):
        (group / name).write_text("")
    (group / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\noom_group_kill 0\n")
    cap = memory_cap.MemoryCap(spec.marker, 700, 99, method=memory_cap.CAP_CGROUP, cgroup_root=tmp_path).start()
    try:
        assert (group / "memory.max").read_text() == str(700 * 2**20)
        assert (group / "pids.max").read_text() == "99"
        assert (group / "memory.oom.group").read_text() == "1"
        assert memory_cap.memory_cap("unit-cgroup") is cap
        assert sandbox.preexec_function(spec).args[-1] == str(group / "cgroup.procs")
        assert cap.check() is False and cap.reached == 0
        (group / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\noom_group_kill 1\n")
        assert cap.check() is True and cap.reached == 1
        assert cap.check() is False  # counted once
    finally:
        cap.stop()
    assert (group / "cgroup.kill").read_text() == "1"
    assert memory_cap.memory_cap("unit-cgroup") is None
    assert sandbox.preexec_function(spec).args[-1] is None


def test_the_memory_cap_is_decided_in_one_place_and_reported():
    method, detail = memory_cap.memory_cap_method()
    assert method in (memory_cap.CAP_CGROUP, memory_cap.CAP_WATCHDOG)
    how = isolation_report.memory_cap_sentence()
    assert detail in how and how.startswith("one cgroup" if method == memory_cap.CAP_CGROUP else "a watchdog")
    caps = isolation_report.caps_in_force(sandbox.Limits(total_memory_mb=1500), sandbox.ISOLATION_BWRAP)
    assert caps[-1] == f"1500 MB of memory for all the processes of a submission together: {how}"
    process = isolation_report.explain_isolation(*sandbox.detect_isolation("process"))
    assert ("watchdog" in process) == (method == memory_cap.CAP_WATCHDOG)
