"""Fast tests of the autograder's parts: collection, notebook rebuild, probes, feedback, sandbox."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import (
    collect,
    isolation_report,
    kernel_environment,
    rebuild,
    report,
    sandbox,
    submission_processes,
    tamper_probe,
)
from autograder.bubblewrap import SANDBOX_HOME, SANDBOX_WORKDIR
from autograder.feedback import HideTestCode, strip_hidden
from autograder.grading_settings import DEFAULT_NAME_PATTERN
from dnn_course.assignment import PROFILE_VARIABLE

PATTERN = re.compile(DEFAULT_NAME_PATTERN)


# ----------------------------------------------------------------------------- collection
@pytest.mark.parametrize(
    "stem, expected",
    [
        ("DNN_HW2_Ann_Lee_1001", ("1001", "Ann_Lee", 0)),
        ("DNN_HW2_Zed_1506 (1)", ("1506", "Zed", 0)),
        ("DNN_HW2_Zed_1506-2", ("1506", "Zed", 0)),
        ("DNN_HW_Bob_x9", ("x9", "Bob", 0)),
        ("final homework", ("final_homework", "", 1)),
        ("../../etc", ("etc", "", 1)),
    ],
)
def test_identify_reads_student_id_from_lms_names(stem, expected):
    student_id, name, flags = collect.identify(stem, PATTERN)
    assert (student_id, name, len(flags)) == expected


@pytest.mark.parametrize(
    "student_id", ["12345678", "12ab", "S0042", "x9", "12-34", "12 34", "12.34", "12_34", "١٢٣", "12345678é", "-", ""]
)
def test_make_submit_and_the_collector_apply_one_student_id_rule(student_id):
    """`make submit` (dnn_course.submission) accepts an id exactly when the grader's collector reads that same id
    back from the archive's name: both use dnn_course.submission.STUDENT_ID, so they cannot drift apart."""
    from dnn_course import submission

    stem = f"DNN_HW2_Ada_Lovelace_{student_id}"
    read = collect.identify(stem, PATTERN)
    try:
        archive = submission.archive_name("Ada_Lovelace", student_id)
    except ValueError as error:
        assert read[0] != student_id or read[2], (student_id, read)  # the collector would not read it back
        if student_id:
            assert str(error).startswith(
                f"ID={student_id!r} is not a student id the grader can read from the file "
                "name: a student id is ASCII letters and digits only (A-Z, a-z, 0-9)"
            )
    else:
        assert archive == f"{stem}.zip" and read == (student_id, "Ada_Lovelace", [])
    assert bool(re.fullmatch(submission.STUDENT_ID, student_id)) == (read == (student_id, "Ada_Lovelace", []))
    assert f"(?P<student_id>{submission.STUDENT_ID})" in DEFAULT_NAME_PATTERN  # one rule, defined once


def _zip(path: Path, members: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2026, 11, 20, 12, 0, 0)), data)
        for name in links:
            info = zipfile.ZipInfo(name, (2026, 11, 20, 12, 0, 0))
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
    return path


def test_extract_zip_refuses_unsafe_paths_and_keeps_only_known_files(tmp_path):
    archive = _zip(
        tmp_path / "a.zip",
        {
            "../../evil.ipynb": b"{}",
            "/abs/evil2.ipynb": b"{}",
            "C:/win.ipynb": b"{}",
            "sub/dir/01_activations.ipynb": b'{"nbformat": 4}',
            "numpy.py": b"x",
            "__MACOSX/._01.ipynb": b"",
            "sub/mnist_results.json": b"{}",
            "sub/.ipynb_checkpoints/02_fc_layer.ipynb": b"{}",
        },
        links=("link.ipynb",),
    )
    out = tmp_path / "out"
    flags = collect.extract_zip(archive, out)
    assert sorted(p.name for p in out.iterdir()) == ["01_activations.ipynb", "mnist_results.json"]
    assert sum("refused unsafe path" in f for f in flags) == 4
    assert "dropped 1 other file(s)" in flags
    assert not (tmp_path / "evil.ipynb").exists() and not Path("/abs/evil2.ipynb").exists()


def test_extract_zip_reports_a_corrupt_archive(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    flags = collect.extract_zip(bad, tmp_path / "out")
    assert len(flags) == 1 and flags[0].startswith("unreadable archive")


def test_extract_zip_keeps_the_shallowest_then_first_of_nested_copies_whatever_their_dates(tmp_path):
    path = tmp_path / "n.zip"
    with zipfile.ZipFile(path, "w") as zf:  # the dates inside are the student's: never used
        zf.writestr(zipfile.ZipInfo("a/01_activations.ipynb", (2020, 1, 1, 0, 0, 0)), b"first")
        zf.writestr(zipfile.ZipInfo("b/01_activations.ipynb", (2030, 2, 1, 0, 0, 0)), b"second")
        zf.writestr(zipfile.ZipInfo("c/d/01_activations.ipynb", (2035, 2, 1, 0, 0, 0)), b"deeper")
    collect.extract_zip(path, tmp_path / "out")
    assert (tmp_path / "out" / "01_activations.ipynb").read_bytes() == b"first"


def _notebook(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    return nb


def _cell(kind, source, gid=None, **meta):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    if gid:
        cell.metadata["nbgrader"] = {"grade_id": gid, "grade": False, "solution": False, "locked": False, **meta}
    return cell


def test_assign_notebooks_finds_renamed_notebooks_by_cells_then_by_name(tmp_path):
    released = {"01_activations.ipynb": {"relu", "test_relu"}, "02_fc_layer.ipynb": {"fc", "test_fc"}}
    by_cells = tmp_path / "my homework.ipynb"
    nbformat.write(_notebook([_cell("code", "x", "fc")]), by_cells)
    by_name = tmp_path / "01_activations (2).ipynb"
    by_name.write_text("not json")
    stray = tmp_path / "scratch.ipynb"
    stray.write_text("{}")
    mapping, flags = collect.assign_notebooks([by_cells, by_name, stray], released)
    assert mapping == {"02_fc_layer.ipynb": by_cells, "01_activations.ipynb": by_name}
    assert "unrecognised notebook 'scratch.ipynb' ignored" in flags


def _nbgrader_student(root: Path, student: str, assignment: str = "dnn_hw", stamp: str | None = None) -> Path:
    """``root/<student>/<assignment>/`` as ``nbgrader collect`` writes it."""
    folder = root / student / assignment
    folder.mkdir(parents=True)
    (folder / "01_activations.ipynb").write_text("{}")
    (folder / "submission_secret.txt").write_text("ab12")
    if stamp is not None:
        (folder / "timestamp.txt").write_text(stamp)
    return folder


def test_detect_layout_reads_an_lms_download_and_nbgrader_course_and_submitted_folders(tmp_path):
    lms = tmp_path / "download"
    lms.mkdir()
    (lms / "DNN_HW2_Ada_1001.zip").write_bytes(b"PK")
    (lms / "DNN_HW2_Ben_1002").mkdir()
    (lms / ".DS_Store").write_bytes(b"")
    layout = collect.detect_layout(lms, "dnn_hw")
    assert layout.kind == collect.LMS and [e.name for e in layout.entries] == [
        "DNN_HW2_Ada_1001.zip",
        "DNN_HW2_Ben_1002",
    ]
    assert layout.describe().startswith("LMS download")

    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    (course / "gradebook.db").write_bytes(b"")
    _nbgrader_student(course / "submitted", "alice", stamp="2026-12-02 12:40:19.531048 UTC")
    _nbgrader_student(course / "submitted", "bob")  # put there by hand: no timestamp.txt
    _nbgrader_student(course / "submitted", "cy", assignment="hw1", stamp="2026-11-01 09:00:00.000000 UTC")
    layout = collect.detect_layout(course, "dnn_hw")
    assert layout.kind == collect.NBGRADER and layout.folder == course / "submitted"
    alice, bob = layout.entries
    assert (alice.name, alice.path, alice.flags) == ("alice", course / "submitted" / "alice" / "dnn_hw", ())
    assert alice.mtime == int(dt.datetime(2026, 12, 2, 12, 40, 19, tzinfo=dt.UTC).timestamp())
    assert bob.flags and "no readable timestamp.txt" in bob.flags[0]
    assert layout.skipped == ("cy",) and "1 student folder(s) without 'dnn_hw' skipped: cy" in layout.describe()
    # given the submitted/ folder itself, a student folder is recognised by nbgrader's timestamp.txt:
    # bob's, without one, might be an LMS folder
    with pytest.raises(collect.LayoutError, match="mixes nbgrader's layout.*'alice', 'cy'.*'bob'"):
        collect.detect_layout(course / "submitted", "dnn_hw")
    shutil.rmtree(course / "submitted" / "bob")
    assert [e.name for e in collect.detect_layout(course / "submitted", "dnn_hw").entries] == ["alice"]


def test_detect_layout_refuses_a_mixed_folder_and_says_what_to_do(tmp_path):
    mixed = tmp_path / "mixed"
    _nbgrader_student(mixed, "alice", stamp="2026-12-02 12:40:19.531048 UTC")
    (mixed / "DNN_HW2_Ada_1001.zip").write_bytes(b"PK")
    with pytest.raises(collect.LayoutError, match="grade each"):
        collect.detect_layout(mixed, "dnn_hw")
    course = tmp_path / "course"
    _nbgrader_student(course / "submitted", "alice", stamp="2026-12-02 12:40:19.531048 UTC")
    (course / "DNN_HW2_Ada_1001.zip").write_bytes(b"PK")
    with pytest.raises(collect.LayoutError, match="not both at once"):
        collect.detect_layout(course, "dnn_hw")
    (course / "DNN_HW2_Ada_1001.zip").unlink()
    (course / "submitted" / "notes.txt").write_text("")
    with pytest.raises(collect.LayoutError, match="only one folder per student"):
        collect.detect_layout(course, "dnn_hw")
    (course / "submitted" / "notes.txt").unlink()
    with pytest.raises(collect.LayoutError, match="assignments found: 'dnn_hw'.*pass --assignment"):
        collect.detect_layout(course, "hw3")
    with pytest.raises(collect.LayoutError, match="not found"):
        collect.detect_layout(tmp_path / "nowhere", "dnn_hw")


def test_an_nbgrader_submission_is_copied_without_a_flag_for_nbgraders_own_files(tmp_path):
    folder = _nbgrader_student(tmp_path / "submitted", "alice", stamp="2026-12-02 12:40:19.531048 UTC")
    (folder / "notes.txt").write_text("mine")
    (entry,) = collect.detect_layout(tmp_path / "submitted", "dnn_hw").entries
    flags = collect.unpack_entry(entry.path, tmp_path / "out", entry.expected)
    assert flags == ["dropped 1 other file(s)"]  # notes.txt; not timestamp.txt or submission_secret.txt
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["01_activations.ipynb"]


# ----------------------------------------------------------------------------- reading and rebuilding
def test_read_submitted_copes_with_broken_files():
    with pytest.raises(rebuild.UnreadableNotebook, match="empty"):
        rebuild.read_submitted(b"  \n")
    with pytest.raises(rebuild.UnreadableNotebook, match="not valid JSON"):
        rebuild.read_submitted(b'{"cells": [')
    with pytest.raises(rebuild.UnreadableNotebook, match="not a notebook"):
        rebuild.read_submitted(b"[1, 2]")
    nb = _notebook([_cell("code", "x = 'caf\u00e9'")])
    latin = nbformat.writes(nb).encode().replace("caf\u00e9".encode(), b"caf\xe9")
    read, flags = rebuild.read_submitted(b"\xef\xbb\xbf" + latin)
    assert read.cells[0].source == "x = 'caf\ufffd'" and flags == ["bytes that are not UTF-8 were replaced"]
    v3 = nbformat.writes(nbformat.convert(_notebook([_cell("code", "y = 1")]), 3)).encode()
    read, flags = rebuild.read_submitted(v3)
    assert read.nbformat == 4 and read.cells[0].source == "y = 1" and flags == ["converted from nbformat 3"]


def _master():
    return _notebook(
        [
            _cell("markdown", "# Intro", "intro", locked=True),
            _cell("code", "import numpy as np", "imports", locked=True),
            _cell("code", "raise NotImplementedError()", "answer", solution=True),
            _cell("code", "assert f(2) == 4", "test_f", grade=True, locked=True, points=2),
            _cell("markdown", "EDIT HERE", "written", solution=True, grade=True, points=3),
        ]
    )


def _student(master=None):
    nb = _master() if master is None else master
    nb.cells[2].source = "def f(x):\n    return x * x"
    nb.cells[4].source = "Because squares."
    return nb


def _sources(nb):
    return [(c.cell_type, c.source) for c in nb.cells]


EXPECTED_REBUILD = [
    ("markdown", "# Intro"),
    ("code", "import numpy as np"),
    ("code", "def f(x):\n    return x * x"),
    ("code", "assert f(2) == 4"),
    ("markdown", "Because squares."),
]


def test_rebuild_of_an_untouched_submission_changes_nothing():
    rebuilt, flags = rebuild.rebuild(_student(), _master())
    assert _sources(rebuilt) == EXPECTED_REBUILD and flags == []


@pytest.mark.parametrize(
    "tamper, flag",
    [
        (lambda nb: setattr(nb.cells[3], "source", "pass"), "1 read-only or test cell(s) missing or changed"),
        (lambda nb: nb.cells.pop(3), "1 read-only or test cell(s) missing or changed"),
        (
            lambda nb: nb.cells.insert(4, nbformat.from_dict(json.loads(json.dumps(nb.cells[3])))),
            "1 duplicated cell(s) ignored",
        ),
        (
            lambda nb: nb.cells.__setitem__(
                3, nbformat.v4.new_markdown_cell("assert f(2) == 4", metadata=nb.cells[3].metadata)
            ),
            "1 read-only or test cell(s) missing or changed",
        ),
        (lambda nb: nb.cells[3].metadata["nbgrader"].update(points=100), None),
        (lambda nb: [c.metadata.clear() for c in nb.cells], "2 answer cell(s) found without their nbgrader metadata"),
        (
            lambda nb: nb.cells[2].metadata["nbgrader"].update(grade_id="renamed"),
            "1 answer cell(s) found without their nbgrader metadata",
        ),
        (lambda nb: nb.cells.insert(3, nb.cells.pop(2)), None),  # answer moved below its test
    ],
)
def test_rebuild_restores_the_master_around_the_students_answers(tamper, flag):
    student = _student()
    tamper(student)
    rebuilt, flags = rebuild.rebuild(student, _master())
    assert _sources(rebuilt) == EXPECTED_REBUILD
    assert rebuilt.cells[3].metadata["nbgrader"]["points"] == 2
    if flag:
        assert any(flag in f for f in flags), flags


def test_rebuild_keeps_added_code_cells_after_the_first_code_cell():
    student = _student()
    student.cells.insert(0, nbformat.v4.new_code_cell("np.allclose = None"))
    student.cells.insert(3, nbformat.v4.new_code_cell("def helper():\n    return 1"))
    rebuilt, flags = rebuild.rebuild(student, _master())
    sources = [c.source for c in rebuilt.cells]
    assert sources.index("np.allclose = None") > sources.index("import numpy as np")
    # the helper came after the imports cell and before the answer in the student's notebook
    assert (
        sources.index("import numpy as np")
        < sources.index("def helper():\n    return 1")
        < sources.index("def f(x):\n    return x * x")
    )
    assert "2 added code cell(s) kept" in flags


def test_probes_follow_every_code_cell_and_are_removed_again():
    rebuilt, _ = rebuild.rebuild(_student(), _master())
    probed = rebuild.add_probes(rebuilt, "tok")
    kinds = [
        f"check {tamper_probe.check_label(c.source)}"
        if tamper_probe.is_check(c.source)
        else "snapshot"
        if tamper_probe.is_probe(c.source)
        else c.metadata.get("nbgrader", {}).get("grade_id")
        for c in probed.cells
    ]
    assert kinds == [
        "snapshot",
        "intro",
        "imports",
        "check imports",
        "answer",
        "check answer",
        "test_f",
        "check test_f",
        "written",
        "check end",
    ]
    assert "('np', 'numpy')" in probed.cells[3].source
    assert _sources(rebuild.remove_probes(probed)) == _sources(rebuilt)


def test_probe_verdicts_name_the_first_cell_and_fail_closed():
    ok = "AUTOGRADER-PROBE t {} CLEAN\n"
    assert tamper_probe.first_tampering([("a", ok.format("a")), ("b", None)], "t") is None
    assert tamper_probe.first_tampering(
        [
            ("a", ok.format("a")),
            ("b", "AUTOGRADER-PROBE t b TAMPERED x; y\n"),
            ("c", "AUTOGRADER-PROBE t c TAMPERED z\n"),
        ],
        "t",
    ) == (1, "b", ["x", "y"])
    assert tamper_probe.first_tampering([("a", "")], "t") == (0, "a", ["an integrity check produced no verdict"])
    assert tamper_probe.first_tampering([("a", ok.format("a").replace(" t ", " other "))], "t")[0] == 0
    # a verdict printed for another cell (forged by earlier output) does not count for this one
    assert tamper_probe.first_tampering([("b", ok.format("a"))], "t") == (
        0,
        "b",
        ["an integrity check produced no verdict"],
    )


def test_probe_cells_define_and_call_the_functions_of_the_probe_file():
    """The code the probe runs in the kernel is the real file autograder/tamper_probe_in_kernel.py: the snapshot
    cell defines both of its functions and keeps the check; each check cell is one call of it."""
    text = tamper_probe.KERNEL_CODE.read_text(encoding="utf-8")
    snapshot = tamper_probe.snapshot_source()
    check = tamper_probe.check_source("tok", "cell 1", [("np", "numpy")], ["/lib/python"])
    for name in ("__autograder_snapshot", "__autograder_check"):
        source = tamper_probe.kernel_function(name)
        assert source.startswith(f"def {name}(") and source in text and source in snapshot and source not in check
    for cell in (snapshot, check):
        compile(cell, "<probe cell>", "exec")
    assert snapshot.endswith(
        'modules["__autograder_state__"].check = __autograder_check\ndel __autograder_snapshot, __autograder_check\n'
    )
    assert "(['/lib/python'], [('np', 'numpy')])" in check and len(check) < len(snapshot) / 8
    assert (
        tamper_probe.is_check(check)
        and tamper_probe.check_label(check) == "cell_1"
        and not tamper_probe.is_check(snapshot)
    )
    with pytest.raises(LookupError, match="defines no function"):
        tamper_probe.kernel_function("__no_such_function")


def test_probe_cells_in_an_ipython_shell(capsys, monkeypatch, tmp_path):
    """Run in a real IPython shell, the check cell says CLEAN, then names what a cell tampered with, then
    says the snapshot is gone once the state module is removed, and leaves no name of its own behind."""
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.chdir(
        tmp_path
    )  # the kernel's working folder (code there is the student's); the venv is in the repository

    shell = InteractiveShell.instance()
    try:
        roots = tamper_probe.trusted_roots()

        def verdict(label):
            shell.run_cell(tamper_probe.check_source("tok", label, [("np", "numpy")], roots), store_history=False)
            return capsys.readouterr().out.strip()

        shell.run_cell("import numpy as np")
        shell.run_cell(tamper_probe.snapshot_source(), store_history=False)
        assert verdict("a") == "AUTOGRADER-PROBE tok a CLEAN"
        assert not [name for name in shell.user_ns if name.startswith("__autograder")]
        shell.run_cell("import numpy as np\n_saved = np.allclose\nnp.allclose = lambda *a, **k: True")
        assert (
            verdict("b")
            == "AUTOGRADER-PROBE tok b TAMPERED numpy.allclose was replaced; numpy.allclose is not numpy's own"
        )
        shell.run_cell("np.allclose = _saved\nimport sys\ndel sys.modules['__autograder_state__']")
        assert verdict("c") == f"AUTOGRADER-PROBE tok c TAMPERED {tamper_probe.SNAPSHOT_REMOVED}"
    finally:
        sys.modules.pop(tamper_probe.STATE_MODULE, None)
        InteractiveShell.clear_instance()


def test_module_bindings_of_setup_cells():
    found = tamper_probe.module_bindings(["import numpy as np\nfrom dnn_course import checks\nimport os.path", "def ("])
    assert found == [("checks", "dnn_course.checks"), ("np", "numpy"), ("os", "os")]


# ----------------------------------------------------------------------------- feedback and report
def test_hidden_tests_and_tracebacks_never_reach_feedback():
    source = "x = 1\n### BEGIN HIDDEN TESTS\nassert secret_value == 42\n### END HIDDEN TESTS\ny = 2"
    assert strip_hidden(source) == "x = 1\n# (hidden tests run here; their code is not shown)\ny = 2"
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [
        nbformat.v4.new_output(
            "error",
            ename="AssertionError",
            evalue="wrong",
            traceback=["\x1b[31m---> 3 assert secret_value == 42", "AssertionError"],
        )
    ]
    out, _ = HideTestCode().preprocess_cell(cell, {}, 0)
    assert "secret_value" not in json.dumps(out)
    assert out.outputs[0]["traceback"] == ["AssertionError: wrong"]


@pytest.mark.parametrize(
    "value, text", [(2.0, "2"), (0.5, "0.5"), (1.255, "1.25"), (1 / 3, "0.33"), (None, ""), (-0.0, "0"), (10, "10")]
)
def test_scores_are_written_the_same_way_every_time(value, text):
    assert report.number(value) == text


# ----------------------------------------------------------------------------- sandbox
def _run_sandboxed(code: str, tmp_path: Path, isolation: str, marker: str, **limits):
    work, ipc = tmp_path / "work", tmp_path / "ipc"
    work.mkdir(exist_ok=True)
    ipc.mkdir(exist_ok=True)
    spec = sandbox.SandboxSpec(
        isolation,
        str(work),
        str(ipc),
        marker,
        limits=sandbox.Limits(**limits) if limits else sandbox.Limits(),
        readonly=kernel_environment.readonly_paths(),
        uid=sandbox.sandbox_uid(0, isolation),
    )
    command = sandbox.command([sys.executable, "-c", code], spec)
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


PROBE_CODE = r"""
import json, os, socket
facts = {}
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2); facts["network"] = True
except OSError:
    facts["network"] = False
import dnn_course.checks
repo = os.path.dirname(os.path.dirname(os.path.realpath(dnn_course.checks.__file__)))
facts["sees_solutions"] = os.path.exists(os.path.join(repo, "solutions"))
facts["sees_tests"] = os.path.exists(os.path.join(repo, "tests"))
facts["sees_autograder"] = os.path.exists(os.path.join(repo, "autograder"))
facts["cwd"] = os.getcwd()
facts["tmp"] = sorted(os.listdir("/tmp"))
try:
    bytearray(3 * 1024 ** 3); facts["memory"] = "allocated"
except MemoryError:
    facts["memory"] = "refused"
children = 0
try:
    for _ in range(500):
        if os.fork() == 0:
            import time; time.sleep(30); os._exit(0)
        children += 1
except OSError:
    pass
facts["children"] = children
print(json.dumps(facts))
"""


@pytest.mark.usefixtures("bubblewrap")
def test_bubblewrap_sandbox_blocks_network_files_memory_and_fork_bombs(tmp_path):
    result = _run_sandboxed(
        PROBE_CODE, tmp_path, sandbox.ISOLATION_BWRAP, "unit-bwrap", memory_mb=1024, max_processes=64
    )
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    # /tmp is empty, except for the first folder on the way to the read-only course mounts when the
    # repository itself lives under /tmp (as in a CI clone)
    repo = Path(__file__).resolve().parent.parent
    allowed_tmp = [repo.parts[2]] if repo.parts[:2] == ("/", "tmp") else []
    assert facts == {
        "network": False,
        "sees_solutions": False,
        "sees_tests": False,
        "sees_autograder": False,
        "cwd": SANDBOX_WORKDIR,
        "tmp": allowed_tmp,
        "memory": "refused",
        "children": facts["children"],
    }
    assert 0 < facts["children"] < 64
    # every process of the sandbox died with it (the pid namespace ended)
    assert submission_processes.kill_marked_processes("unit-bwrap") == 0


@pytest.mark.usefixtures("bubblewrap")
def test_matplotlib_in_the_bubblewrap_sandbox_prints_no_fontconfig_error(tmp_path):
    """A figure drawn in the sandbox writes nothing to stderr: the system files bound under /etc are readable.

    As root the code runs as an unprivileged uid, and bubblewrap's own /etc (made for the binds) was 0700
    root: fontconfig could not read /etc/fonts and every feedback page of a notebook importing matplotlib
    showed "Fontconfig error: Cannot load default config file".
    """
    code = (
        "import os, matplotlib.pyplot as plt\n"
        "figure, axes = plt.subplots(); axes.plot([0, 1]); axes.set_title('loss'); figure.savefig('f.png')\n"
        "print([os.access(p, os.R_OK) for p in ('/etc/fonts/fonts.conf', '/etc/passwd', '/etc/ld.so.cache')],"
        " os.path.getsize('f.png') > 0)\n"
    )
    result = _run_sandboxed(code, tmp_path, sandbox.ISOLATION_BWRAP, "unit-fonts")
    assert result.stdout.strip() == "[True, True, True] True", (result.stdout, result.stderr)
    assert "Fontconfig" not in result.stderr and result.stderr == "", result.stderr


def test_process_isolation_refuses_sockets_and_kills_detached_children(tmp_path):
    code = (
        "import socket, subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "try:\n    socket.socket()\n    print('network')\nexcept PermissionError:\n    print('no network')\n"
    )
    result = _run_sandboxed(code, tmp_path, sandbox.ISOLATION_PROCESS, "unit-process")
    assert result.stdout.strip() == "no network"
    time.sleep(0.2)
    assert submission_processes.kill_marked_processes("unit-process") == 1
    assert submission_processes.kill_marked_processes("unit-process") == 0


def test_detect_isolation_names_what_is_in_force():
    level, why = sandbox.detect_isolation("auto", kernel_environment.readonly_paths())
    assert level in (sandbox.ISOLATION_BWRAP, sandbox.ISOLATION_PROCESS)
    assert (why == "") == (level == sandbox.ISOLATION_BWRAP)
    how = isolation_report.explain_isolation(level, why)
    assert how.startswith("bubblewrap" if level == sandbox.ISOLATION_BWRAP else "process (no namespaces)")
    assert sandbox.detect_isolation("process") == (sandbox.ISOLATION_PROCESS, "requested with --isolation process")


def test_isolation_sentences_name_the_level_the_uid_and_why_not_bubblewrap():
    as_root = isolation_report.explain_isolation(sandbox.ISOLATION_BWRAP, "", as_root=True)
    assert as_root.startswith(
        f"{sandbox.ISOLATION_BWRAP}: pid, mount, network, IPC and UTS namespaces; code runs "
        f"as unprivileged uid {sandbox.FIRST_SANDBOX_UID}+slot; the total memory"
    )
    assert isolation_report.explain_isolation(sandbox.ISOLATION_BWRAP, "", as_root=False).startswith(
        f"{sandbox.ISOLATION_BWRAP}: user, pid, mount, network, IPC and UTS namespaces; the total memory"
    )
    assert isolation_report.explain_isolation(sandbox.ISOLATION_PROCESS, "bwrap not found").startswith(
        "process (no namespaces): bwrap not found; the total memory"
    )
    caps = isolation_report.caps_in_force(sandbox.Limits(disk_mb=400), sandbox.ISOLATION_PROCESS, as_root=False)
    assert "no cap on the total disk space written (process isolation)" in caps
    caps = isolation_report.caps_in_force(sandbox.Limits(disk_mb=400), sandbox.ISOLATION_BWRAP, as_root=True)
    assert "at most 256 processes and threads per submission (its own user id)" in caps
    assert any(cap.startswith("400 MB of writable space per kernel") and "working folder 300 MB" in cap for cap in caps)


def test_the_sandbox_environment_is_clean_plus_what_the_caller_passes(tmp_path):
    spec = sandbox.SandboxSpec(
        sandbox.ISOLATION_BWRAP,
        str(tmp_path),
        str(tmp_path),
        "unit-env",
        environment=kernel_environment.course_variables("smoke"),
    )
    env = sandbox.sandbox_environment(spec)
    assert env[PROFILE_VARIABLE] == "smoke"
    assert env[submission_processes.MARKER_VARIABLE] == "unit-env" and env["HOME"] == SANDBOX_HOME
    bare = sandbox.sandbox_environment(
        sandbox.SandboxSpec(sandbox.ISOLATION_BWRAP, str(tmp_path), str(tmp_path), "unit-env")
    )
    assert not any(name.startswith("DNN_COURSE") for name in bare)
    clash = sandbox.SandboxSpec(
        sandbox.ISOLATION_BWRAP,
        str(tmp_path),
        str(tmp_path),
        "unit-env",
        environment=(("HOME", "/x"), (submission_processes.MARKER_VARIABLE, "other")),
    )
    with pytest.raises(ValueError, match="AUTOGRADER_SANDBOX_ID, HOME"):
        sandbox.sandbox_environment(clash)


def test_the_grading_kernel_reads_python_the_course_package_and_its_embedded_data():
    paths = kernel_environment.readonly_paths()
    package = Path(kernel_environment.dnn_course.__file__).resolve().parent
    assert any(package == Path(p) or Path(p) in package.parents for p in paths)
    assert all(not (p != q and p.startswith(q + "/")) for p in paths for q in paths)
    assert sandbox.outermost_paths([Path("/usr/lib"), Path("/usr"), Path("/usr"), Path("/no/such/path")]) == ("/usr",)


# ----------------------------------------------------------------------------- results files
def test_results_files_are_validated_without_pickle(tmp_path):
    import numpy as np

    from autograder.job import validate_data_file

    good_json = tmp_path / "mnist_results.json"
    good_json.write_text('{"relu": {"test_acc": 0.97}}')
    assert validate_data_file(good_json) is None
    bad_json = tmp_path / "fashion_results.json"
    bad_json.write_text("{not json")
    assert "not a valid json file" in validate_data_file(bad_json)
    model = tmp_path / "fashion_model.npz"
    np.savez(model, W1=np.ones((2, 3)), b1=np.zeros(3))
    assert validate_data_file(model) is None
    np.savez(model, config=np.array([{"evil": 1}], dtype=object))  # needs pickle to load
    assert "not a valid npz file" in validate_data_file(model)
    model.write_bytes(b"PK\x03\x04 broken")
    assert "not a valid npz file" in validate_data_file(model)


def test_notebook_validation_still_works_with_the_slow_iri_checker_blocked():
    """autograder blocks jsonschema's optional rfc3987_syntax import (about 1 s); nbformat must still validate."""
    code = (
        "import autograder, sys, nbformat\n"
        "assert sys.modules['rfc3987_syntax'] is None\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1 + 1')])\n"
        "nbformat.validate(nb)\n"
        "nb.cells[0]['cell_type'] = 'spreadsheet'\n"
        "try:\n"
        "    nbformat.validate(nb)\n"
        "except nbformat.ValidationError:\n"
        "    print('invalid notebook rejected')\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "invalid notebook rejected"


def test_autograded_notebooks_stay_writable_for_a_non_root_grader(tmp_path):
    """The job rewrites each autograded notebook; nbgrader's default (444) only lets root do that."""
    from autograder.grading_settings import GradingSettings, nbgrader_config

    config = nbgrader_config(tmp_path, GradingSettings())
    mode = int(str(config.Autograde.permissions), 8)  # nbgrader reads the digits as octal
    assert mode & 0o600 == 0o600, oct(mode)


def test_measurement_images_are_read_once_per_process_and_cannot_be_changed():
    """The images the grader measures saved networks on: the embedded test split, the same arrays on every
    call (a run reads them before forking its jobs), and read-only, so one measurement cannot alter the next."""
    import numpy as np

    from autograder import job
    from dnn_course.assignment import ASSIGNMENT
    from dnn_course.datasets import load_dataset

    datasets = {test.measurement.dataset for _, test in ASSIGNMENT.measured()}
    assert datasets == {"mnist", "fashion-mnist"}
    job.measurement_data.cache_clear()
    job.warm_measurement_data(ASSIGNMENT)
    assert job.measurement_data.cache_info().currsize == len(datasets)
    for name in datasets:
        x_test, y_test = job.measurement_data(name)
        assert job.measurement_data(name)[0] is x_test  # read once
        (_, _), (x_expected, y_expected) = load_dataset(name, verbose=False)
        np.testing.assert_array_equal(x_test, x_expected)
        np.testing.assert_array_equal(y_test, y_expected)
        assert x_test.dtype == np.float32 and x_test.shape == (10_000, 28, 28)
        with pytest.raises(ValueError, match="read-only"):
            x_test[0, 0, 0] = 1.0
        with pytest.raises(ValueError, match="read-only"):
            y_test[0] = 0
