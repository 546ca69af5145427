"""Settings of a grading run, and the nbgrader configuration built from them.

The course's own nbgrader configuration (``autograder/nbgrader_config.py``,
which also makes ``exercises/``) is loaded first; the grading run then points
nbgrader at its private course folder inside the output folder and replaces
the pieces that must be hardened (execution in the sandbox, restoring deleted
cells, feedback without hidden tests).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbgrader
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from dnn_course.assignment import ASSIGNMENT
from dnn_course.submission import STUDENT_ID

from .sandbox import Limits

REPO_ROOT = Path(__file__).resolve().parent.parent
COURSE_CONFIG = Path(__file__).resolve().parent / "nbgrader_config.py"
#: nbgrader's own templates (its "feedback" template, which ours extends).
NBGRADER_TEMPLATES = Path(nbgrader.__file__).resolve().parent / "server_extensions" / "formgrader" / "templates"

#: Data files a submission may carry beside its notebooks, with their size caps (bytes), and the
#: largest notebook: read from the assignment's description, as the kit's `make submit` does; the
#: rule for a student id is the one `make submit` applies.
DATA_FILES = ASSIGNMENT.data_file_caps
MAX_NOTEBOOK_BYTES = ASSIGNMENT.max_notebook_bytes

#: File names of an LMS download: ``DNN_HW2_<Name>_<StudentID>`` (zip stem or folder name), any homework
#: number after the archive prefix's letters. A copy's suffix such as `` (1)`` or ``-2`` is allowed after the id.
DEFAULT_NAME_PATTERN = (
    rf"^{re.escape(ASSIGNMENT.archive_prefix.rstrip('0123456789'))}\d*_(?P<name>.+?)_"
    rf"(?P<student_id>{STUDENT_ID})(?:\s*\(\d+\)|-\d+)?$"
)


def default_jobs() -> int:
    """Submissions graded at once by default: one more than the CPUs.

    A job is CPU-bound about 80 % of its time (the rest is waiting for kernels
    to start and answer), so one extra job keeps every core busy. Measured with
    ``scripts/bench_autograder.py`` on 2 cores: 5.6 s per submission with 2 jobs,
    4.8 s with 3.
    """
    return (os.cpu_count() or 1) + 1


@dataclass(frozen=True)
class GradingSettings:
    """Everything that decides a grade; two runs with equal settings grade alike.

    The defaults are the assignment's description's (:data:`dnn_course.assignment.ASSIGNMENT`).
    """

    assignment: str = ASSIGNMENT.name
    source_root: Path = REPO_ROOT / "solutions"  # holds <assignment>/*.ipynb (with hidden tests)
    name_pattern: str = DEFAULT_NAME_PATTERN
    cell_timeout: int = ASSIGNMENT.timeouts.cell  # seconds per cell
    notebook_timeout: int = ASSIGNMENT.timeouts.notebook  # seconds per notebook
    submission_timeout: int = ASSIGNMENT.timeouts.submission  # seconds for all of one student's notebooks
    limits: Limits = field(default_factory=Limits)
    isolation: str = "auto"  # auto | bubblewrap | process
    jobs: int = field(default_factory=default_jobs)  # submissions graded at once
    experiment_profile: str = ASSIGNMENT.profiles.default  # brief: the brief's settings; smoke: smoke-test runs
    similarity_threshold: float = 0.5  # pairs this alike are flagged (autograder/similarity.py)


def course_config() -> Config:
    """The course's nbgrader configuration, or an empty one if the file is missing."""
    if not COURSE_CONFIG.exists():
        return Config()
    loader = PyFileConfigLoader(COURSE_CONFIG.name, path=str(COURSE_CONFIG.parent))
    return loader.load_config()


def nbgrader_config(course_dir: Path, settings: GradingSettings, source_dir: Path | None = None) -> Config:
    """nbgrader configuration for a course folder of the grading run.

    ``course_dir`` holds this run's ``gradebook.db``, ``submitted/``,
    ``autograded/`` and ``feedback/``; ``source_dir`` (default: an empty folder
    there) is nbgrader's source step. Autograde copies every non-notebook
    file of the source step over the submission, so it is empty while grading.
    """
    from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        GetGrades,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from .feedback import TEMPLATE_DIR, HideTestCode
    from .feedback_exporter import FeedbackExporter
    from .kernel import SandboxExecute

    cfg = course_config()
    cfg.CourseDirectory.root = str(course_dir)
    cfg.CourseDirectory.source_directory = str(source_dir or course_dir / "source")
    cfg.CourseDirectory.release_directory = str(course_dir / "release")
    cfg.CourseDirectory.submitted_directory = "submitted"
    cfg.CourseDirectory.autograded_directory = "autograded"
    cfg.CourseDirectory.feedback_directory = "feedback"
    cfg.CourseDirectory.db_url = f"sqlite:///{course_dir / 'gradebook.db'}"
    cfg.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]
    cfg.Autograde.autograde_preprocessors = [
        SandboxExecute,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]
    # nbgrader leaves autograded notebooks read-only (444); the job rewrites them once more
    # (without the integrity probes), which only root could do to a read-only file.
    cfg.Autograde.permissions = 644
    cfg.OverwriteCells.add_missing_cells = True
    cfg.SandboxExecute.timeout = settings.cell_timeout
    cfg.SandboxExecute.notebook_timeout = settings.notebook_timeout
    cfg.SandboxExecute.startup_timeout = 120
    cfg.SandboxExecute.iopub_timeout = 10
    cfg.LimitOutput.max_lines = 200
    cfg.LimitOutput.max_traceback = 40
    cfg.GenerateFeedback.preprocessors = [GetGrades, HideTestCode, CSSHTMLHeaderPreprocessor]
    cfg.GenerateFeedback.exporter_class = FeedbackExporter  # nbconvert's HTMLExporter, cheap per student
    # nbgrader's feedback template (the name nbgrader's API forces), with MathJax from
    # OUT/feedback/mathjax instead of a CDN: autograder/templates/feedback/mathjax.html.j2 comes first
    cfg.HTMLExporter.extra_template_basedirs = [str(TEMPLATE_DIR), str(NBGRADER_TEMPLATES)]
    # the student's markdown and HTML outputs are sanitised: no script of theirs runs in the page an
    # instructor (or, served from one site, another student) opens
    cfg.HTMLExporter.sanitize_html = True
    # nbconvert validates the whole notebook after each preprocessor of a pass, its disabled defaults
    # included (three passes per notebook); once per pass, after the last, refuses the same invalid ones
    cfg.Exporter.optimistic_validation = True
    cfg.Application.log_level = "WARN"
    return cfg


def ensure_tools_on_path() -> None:
    """nbgrader runs ``alembic`` from PATH: make this interpreter's bin folder visible.

    Also silences SQLAlchemy's warnings about nbgrader's session use (harmless, noisy).
    """
    import os
    import sys
    import warnings

    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning)

    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
