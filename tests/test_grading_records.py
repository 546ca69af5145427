"""The grader's records (autograder/grading_records.py), its one score-changing function and its folder layouts.

A record goes to JSON and back unchanged, and a JSON record with a key missing or one it does not know
is refused with an error naming the record and the key. The layout test pins every path of the output
folder that the instructor, the students' pages and the tests rely on.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from autograder.grading_records import (
    Isolation,
    JobSpec,
    NotebookResult,
    ProbeKey,
    RecordError,
    StudentResult,
    TestResult,
    settings_from_json,
)
from autograder.grading_settings import GradingSettings
from autograder.layout import CourseLayout, JobLayout, OutputLayout
from autograder.sandbox import Limits
from autograder.scores import change_score
from dnn_course.assignment import ASSIGNMENT

ANSWER = TestResult(id="answer_design", status="manual", score=None, max_score=4.0, message="", answer="Wider.")
PASSED = TestResult(id="test_relu_forward", status="passed", score=1.0, max_score=1.0, message="")
RESULT = StudentResult(
    student_id="3001",
    score=1.0,
    max_score=5.0,
    flags=("late",),
    isolation="process",
    notebooks=(
        NotebookResult(
            name="01_activations.ipynb", score=1.0, max_score=5.0, flags=("restored 1 cell",), tests=(PASSED, ANSWER)
        ),
    ),
    name="Ada_Lovelace",
    source="DNN_HW2_Ada_Lovelace_3001.zip",
)
JOB = JobSpec(
    student_id="3001",
    notebooks=("01_activations.ipynb", "02_fc_layer.ipynb"),
    timestamp=None,
    token="0123456789abcdef",
    slot=1,
    isolation=Isolation("bubblewrap", "bubblewrap: a test"),
    submitted_dir="/o/course/submitted/3001/dnn_hw",
    release_dir="/o/course/release/dnn_hw",
    master_db="/o/course/assignment.db",
    source_dir="/s/dnn_hw",
    settings=replace(GradingSettings(), cell_timeout=33, jobs=5, limits=Limits(memory_mb=1234)),
    description=ASSIGNMENT,
)


@pytest.mark.parametrize(
    "record", [RESULT, RESULT.notebooks[0], PASSED, ANSWER, JOB, JOB.isolation], ids=lambda r: type(r).__name__
)
def test_a_record_survives_json_unchanged(record):
    text = json.dumps(record.to_json(), sort_keys=True)
    assert type(record).from_json(json.loads(text)) == record


def test_optional_keys_are_left_out_while_empty_as_the_result_files_always_had_them():
    """A test carries ``answer`` only if it is a written answer; a result the job wrote has no name or source."""
    assert "answer" not in PASSED.to_json() and ANSWER.to_json()["answer"] == "Wider."
    from_job = replace(RESULT, name=None, source=None).to_json()
    assert sorted(from_job) == ["flags", "isolation", "max_score", "notebooks", "score", "student_id"]
    failed = StudentResult.not_graded("3002", ["01_activations.ipynb"], "timed out", ["late"])
    assert failed.to_json() == {
        "student_id": "3002",
        "score": 0.0,
        "max_score": None,
        "flags": ["late", "timed out"],
        "notebooks": [{"name": "01_activations.ipynb", "score": 0.0, "max_score": None, "flags": [], "tests": []}],
    }


@pytest.mark.parametrize(
    "record, path",
    [
        (RESULT, ["student_id"]),
        (RESULT, ["notebooks", 0, "tests"]),
        (RESULT, ["notebooks", 0, "tests", 0, "status"]),
        (JOB, ["token"]),
        (JOB, ["isolation", "level"]),
        (JOB, ["settings", "cell_timeout"]),
        (JOB, ["settings", "limits", "memory_mb"]),
    ],
)
def test_a_missing_key_is_refused_by_name(record, path):
    data = record.to_json()
    holder = data
    for step in path[:-1]:
        holder = holder[step]
    del holder[path[-1]]
    with pytest.raises(RecordError, match=path[-1]):
        type(record).from_json(data)


@pytest.mark.parametrize(
    "record, path",
    [
        (RESULT, ["scores"]),
        (RESULT, ["notebooks", 0, "points"]),
        (RESULT, ["notebooks", 0, "tests", 1, "hint"]),
        (JOB, ["assignment"]),
        (JOB, ["settings", "parallel"]),
    ],
)
def test_an_unknown_key_is_refused_by_name(record, path):
    data = record.to_json()
    holder = data
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = 1
    with pytest.raises(RecordError, match=f"unknown key.*{path[-1]}"):
        type(record).from_json(data)


def test_the_job_carries_every_setting_across_the_fork():
    settings = JobSpec.from_json(json.loads(json.dumps(JOB.to_json()))).settings
    assert settings == JOB.settings and isinstance(settings.source_root, Path)
    assert JOB.assignment == "dnn_hw"
    with pytest.raises(RecordError, match="GradingSettings"):
        settings_from_json(["not", "an", "object"])


def test_a_cross_check_key_is_typed_and_its_wire_spelling_round_trips():
    key = ProbeKey("02_fc_layer.ipynb", "test_fc_backward_params", "params_W")
    assert key.wire() == "02_fc_layer.ipynb::test_fc_backward_params/params_W"
    assert ProbeKey.parse(key.wire()) == key and key.test == ("02_fc_layer.ipynb", "test_fc_backward_params")
    assert ProbeKey.parse("01_activations.ipynb::01_activations.ipynb/import-error").part == "import-error"
    for broken in ("01_activations.ipynb", "nb::test", "::test/part", "nb::/part"):
        with pytest.raises(RecordError, match="NOTEBOOK::GRADE_ID/PART"):
            ProbeKey.parse(broken)


def test_change_score_sets_only_what_it_is_given_and_caps_when_asked():
    grade = SimpleNamespace(auto_score=2.0, manual_score=None, needs_manual_grade=False, max_score=2.0)
    change_score(grade, auto_score=5.0, cap=True)
    assert (grade.auto_score, grade.manual_score, grade.needs_manual_grade) == (2.0, None, False)
    change_score(grade, manual_score=1.5, needs_manual_grade=True)
    assert (grade.auto_score, grade.manual_score, grade.needs_manual_grade) == (2.0, 1.5, True)
    change_score(grade, auto_score=None, cap=True)
    assert grade.auto_score is None
    change_score(grade, auto_score=3.0)  # a copy from another gradebook is taken as it is
    assert grade.auto_score == 3.0


def test_the_output_folder_layout():
    out = OutputLayout(Path("OUT"))
    assert [
        str(p)
        for p in (
            out.grades_csv,
            out.report_html,
            out.manual_cells_csv,
            out.manual_scores_csv,
            out.similarity_html,
            out.similarity_csv,
            out.summary_page("3001"),
            out.notebook_pages("3001"),
            out.mathjax_dir,
            out.result_file("3001"),
            out.gradebook_db,
            out.assignment_db,
            out.work_db,
            out.report_settings,
        )
    ] == [
        "OUT/grades.csv",
        "OUT/report.html",
        "OUT/manual_cells.csv",
        "OUT/manual_scores.csv",
        "OUT/similarity.html",
        "OUT/similarity.csv",
        "OUT/feedback/3001.html",
        "OUT/feedback/3001",
        "OUT/feedback/mathjax",
        "OUT/results/3001.json",
        "OUT/course/gradebook.db",
        "OUT/course/assignment.db",
        "OUT/course/gradebook.work.db",
        "OUT/course/report_settings.json",
    ]
    assert out.course == CourseLayout(Path("OUT/course")) == CourseLayout(out.course_dir)
    assert out.folders() == [Path("OUT/course"), Path("OUT/feedback"), Path("OUT/results")]


def test_the_course_folder_layout_is_nbgraders():
    course = CourseLayout(Path("C"))
    assert [
        str(p)
        for p in (
            course.gradebook_db,
            course.source_dir("dnn_hw"),
            course.release_dir("dnn_hw"),
            course.submitted_dir("3001", "dnn_hw"),
            course.autograded_dir("3001", "dnn_hw"),
            course.feedback_dir("3001", "dnn_hw"),
        )
    ] == [
        "C/gradebook.db",
        "C/source/dnn_hw",
        "C/release/dnn_hw",
        "C/submitted/3001/dnn_hw",
        "C/autograded/3001/dnn_hw",
        "C/feedback/3001/dnn_hw",
    ]


def test_the_course_folder_is_where_nbgrader_is_told_it_is(tmp_path):
    """The grading run's nbgrader configuration points at the folders CourseLayout names."""
    from autograder.grading_settings import nbgrader_config

    course = CourseLayout(tmp_path / "course")
    config = nbgrader_config(course.root, GradingSettings())
    assert config.CourseDirectory.db_url == f"sqlite:///{course.gradebook_db}"
    assert Path(config.CourseDirectory.release_directory) / "dnn_hw" == course.release_dir("dnn_hw")
    assert Path(config.CourseDirectory.source_directory) / "dnn_hw" == course.source_dir("dnn_hw")
    for step in ("submitted", "autograded", "feedback"):
        assert getattr(config.CourseDirectory, f"{step}_directory") == step


def test_result_files_are_listed_by_student_id(tmp_path):
    out = OutputLayout(tmp_path)
    out.results_dir.mkdir()
    for sid in ("3002", "3001"):
        out.result_file(sid).write_text("{}")
    (out.results_dir / "notes.txt").write_text("")
    assert [p.name for p in out.result_files()] == ["3001.json", "3002.json"]


def test_the_job_folder_layout():
    job = JobLayout(Path("J"))
    assert [
        str(p) for p in (job.spec, job.log, job.result, job.timings, job.work_dir, job.validated_dir, job.ipc_dir)
    ] == ["J/job.json", "J/job.log", "J/result.json", "J/timings.json", "J/work", "J/validated", "J/ipc"]
    assert job.course == CourseLayout(Path("J/course"))
    assert JobLayout.in_scratch(Path("S"), 7) == JobLayout(Path("S/job0007"))
