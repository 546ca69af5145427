"""Where the grader's files are: the output folder ``OUT`` and a grading job's folder.

Layout of ``OUT`` (:class:`OutputLayout`)::

    OUT/grades.csv                 one row per student (written last, atomically)
    OUT/report.html                the class report
    OUT/feedback/<id>.html         each student's summary page
    OUT/feedback/<id>/<nb>.html    the student's notebooks as nbgrader's feedback renders them
    OUT/feedback/mathjax/          the MathJax those pages load (never a CDN)
    OUT/manual_cells.csv           answers to grade by hand (the instructor fills in the score column)
    OUT/manual_scores.csv          the hand-entered scores merged so far (kept across re-grades)
    OUT/similarity.html, .csv      pairs of submissions alike (code, written answers, model files)
    OUT/results/<id>.json          each student's result (:class:`autograder.grading_records.StudentResult`)
    OUT/course/                    nbgrader's course folder: gradebook.db, release/, submitted/, ...
    OUT/course/report_settings.json  the settings and isolation of the last grade run (for manual-merge)

An nbgrader course folder (:class:`CourseLayout`: ``OUT/course`` and each job's private one)::

    COURSE/gradebook.db                        nbgrader's gradebook
    COURSE/source/<assignment>/                the source step (empty while grading)
    COURSE/release/<assignment>/<nb>.ipynb     the released notebooks
    COURSE/submitted/<id>/<assignment>/        a student's collected files
    COURSE/autograded/<id>/<assignment>/       the notebooks as autograded
    COURSE/feedback/<id>/<assignment>/         nbgrader's rendered feedback pages

Layout of a job's folder (:class:`JobLayout`, one per student: ``SCRATCH/job<index>``, in a run's
temporary scratch folder outside ``OUT``)::

    JOBDIR/job.json     the job (:class:`autograder.grading_records.JobSpec`), written before the fork
    JOBDIR/job.log      the job's output
    JOBDIR/result.json  its result, written last: no file means the job did not finish
    JOBDIR/timings.json seconds per step
    JOBDIR/course/      the job's private nbgrader course folder (a CourseLayout, with a copy of the gradebook)
    JOBDIR/work/        the kernel's working folder (the rebuilt notebooks and validated data files)
    JOBDIR/validated/   the data files that passed validation, as the grader measures them
    JOBDIR/ipc/         the sandbox's channel to the grader
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CourseLayout:
    """The paths of the nbgrader course folder ``root`` (see the module docstring)."""

    root: Path

    @property
    def gradebook_db(self) -> Path:
        return self.root / "gradebook.db"

    def source_dir(self, assignment: str) -> Path:
        return self.root / "source" / assignment

    def release_dir(self, assignment: str) -> Path:
        return self.root / "release" / assignment

    def submitted_dir(self, student_id: str, assignment: str) -> Path:
        return self.root / "submitted" / student_id / assignment

    def autograded_dir(self, student_id: str, assignment: str) -> Path:
        return self.root / "autograded" / student_id / assignment

    def feedback_dir(self, student_id: str, assignment: str) -> Path:
        """nbgrader's rendered feedback of the student's notebooks."""
        return self.root / "feedback" / student_id / assignment


@dataclass(frozen=True)
class OutputLayout:
    """The paths of the output folder ``root`` (see the module docstring); nothing is created here."""

    root: Path

    # --- the instructor's files
    @property
    def grades_csv(self) -> Path:
        return self.root / "grades.csv"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def manual_cells_csv(self) -> Path:
        return self.root / "manual_cells.csv"

    @property
    def manual_scores_csv(self) -> Path:
        return self.root / "manual_scores.csv"

    @property
    def similarity_html(self) -> Path:
        return self.root / "similarity.html"

    @property
    def similarity_csv(self) -> Path:
        return self.root / "similarity.csv"

    # --- the students' pages
    @property
    def feedback_dir(self) -> Path:
        return self.root / "feedback"

    def summary_page(self, student_id: str) -> Path:
        return self.feedback_dir / f"{student_id}.html"

    def notebook_pages(self, student_id: str) -> Path:
        """The folder of the student's per-notebook feedback pages."""
        return self.feedback_dir / student_id

    @property
    def mathjax_dir(self) -> Path:
        return self.feedback_dir / "mathjax"

    # --- the results
    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    def result_file(self, student_id: str) -> Path:
        return self.results_dir / f"{student_id}.json"

    def result_files(self) -> list[Path]:
        """Every result file there is, sorted by student id."""
        return sorted(self.results_dir.glob("*.json"))

    # --- nbgrader's course folder
    @property
    def course(self) -> CourseLayout:
        return CourseLayout(self.root / "course")

    @property
    def course_dir(self) -> Path:
        return self.course.root

    @property
    def gradebook_db(self) -> Path:
        """Results of every run, merged."""
        return self.course.gradebook_db

    @property
    def assignment_db(self) -> Path:
        """Only the assignment (no submission), rebuilt at each run: what each job grades into a copy of."""
        return self.course_dir / "assignment.db"

    @property
    def work_db(self) -> Path:
        """The next ``gradebook.db`` while a run merges into it."""
        return self.course_dir / "gradebook.work.db"

    @property
    def report_settings(self) -> Path:
        return self.course_dir / "report_settings.json"

    def folders(self) -> list[Path]:
        """The folders a grading run makes before it starts."""
        return [self.course_dir, self.feedback_dir, self.results_dir]


@dataclass(frozen=True)
class JobLayout:
    """The paths of one grading job's folder ``root`` (see the module docstring)."""

    root: Path

    @classmethod
    def in_scratch(cls, scratch: Path, index: int) -> JobLayout:
        """The folder of the ``index``-th job of a run in its scratch folder: ``SCRATCH/job0007``."""
        return cls(scratch / f"job{index:04d}")

    @property
    def spec(self) -> Path:
        return self.root / "job.json"

    @property
    def log(self) -> Path:
        return self.root / "job.log"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    @property
    def timings(self) -> Path:
        return self.root / "timings.json"

    @property
    def course(self) -> CourseLayout:
        return CourseLayout(self.root / "course")

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    @property
    def validated_dir(self) -> Path:
        return self.root / "validated"

    @property
    def ipc_dir(self) -> Path:
        return self.root / "ipc"
