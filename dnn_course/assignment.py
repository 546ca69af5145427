"""The assignment, described once: its notebooks, graded tests, submitted files, timeouts and profiles.

Everything that needs a fact of the assignment reads it here: the students'
check (:mod:`dnn_course.check`), the submission command
(:mod:`dnn_course.submission`), the instructors' reference implementation,
the experiments' scoring (:mod:`dnn_course.experiment_grades`) and the grader
(``autograder/``). Those that act on a whole course take an
:class:`Assignment` as a parameter, :data:`ASSIGNMENT` by default, so a course
with another list of notebooks needs one edit here plus its notebooks
(``tests/test_assignment.py`` builds one with a seventh notebook).

The solution notebooks' nbgrader metadata must agree with this description
(every graded cell's ``grade_id`` and ``points``); ``tests/test_assignment.py``
checks that, and which notebooks each one imports.

How a graded test is scored (:class:`Scoring`):

* ``KERNEL``: by nbgrader, from the test cell's outcome in the student's kernel;
* ``CROSS_CHECKED``: as ``KERNEL``, and the grader's own probe process computes
  the same values with the student's code and with the reference
  (``autograder/crosscheck_probes.py``); a test the probe disagrees with scores 0;
* ``MEASURED``: the grader measures it itself on the submitted data files,
  outside every student process (a function of
  :mod:`dnn_course.experiment_grades`, named by :class:`Measurement`); the
  test cell only shows the student the same figures.

The experiment profile (:class:`ExperimentProfiles`) says what the experiment
notebooks' saved results are graded against: ``"brief"`` (the brief's
settings: a real term) or ``"smoke"`` (smoke-test runs: the course's own
rehearsal of a term). The grader passes it into the student's kernel in one
environment variable, :data:`PROFILE_VARIABLE` (see
:func:`profile_environment`); unset or empty, the notebooks are not being
graded and train for real. It reads nothing and writes nothing.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

__all__ = [
    "ASSIGNMENT",
    "PROFILE_VARIABLE",
    "Assignment",
    "DataFile",
    "ExperimentProfiles",
    "GradedTest",
    "Measurement",
    "Notebook",
    "Scoring",
    "Timeouts",
    "WrittenAnswer",
    "profile_environment",
]

#: The one environment variable that carries the experiment profile into a kernel: ``brief`` or ``smoke``
#: while the grader (or the students' check) runs the notebooks; unset or empty while a student works.
PROFILE_VARIABLE = "DNN_COURSE_EXPERIMENT_PROFILE"


class Scoring(enum.StrEnum):
    """Who decides a graded test's points (see the module's docstring)."""

    KERNEL = "kernel"
    CROSS_CHECKED = "cross-checked"
    MEASURED = "measured"


@dataclass(frozen=True)
class Measurement:
    """How the grader measures a test: the dataset whose test images it uses and the scoring function's
    name in :mod:`dnn_course.experiment_grades` (``function(folder, x_test, y_test, profile) -> Score``)."""

    dataset: str
    function: str


@dataclass(frozen=True)
class GradedTest:
    """A graded (automatic) test cell: its nbgrader ``grade_id``, its ``points`` and how it is scored."""

    grade_id: str
    points: float
    scoring: Scoring = Scoring.KERNEL
    measurement: Measurement | None = None  # only for Scoring.MEASURED

    def __post_init__(self):
        if (self.scoring is Scoring.MEASURED) != (self.measurement is not None):
            raise ValueError(f"{self.grade_id}: a measured test, and only one, names its measurement")


@dataclass(frozen=True)
class WrittenAnswer:
    """A written answer (a markdown solution cell) that the instructor grades by hand."""

    grade_id: str
    points: float


@dataclass(frozen=True)
class Notebook:
    """One notebook of the assignment.

    ``imports``: the earlier notebooks whose definitions it imports (``import_notebooks(...)``), in order.
    ``results_file``: the results file an experiment notebook writes (its runs say whether they were
    smoke tests), or None.
    """

    name: str
    imports: tuple[str, ...] = ()
    tests: tuple[GradedTest, ...] = ()
    written: tuple[WrittenAnswer, ...] = ()
    results_file: str | None = None

    @property
    def stem(self) -> str:
        """The name without ``.ipynb``: nbgrader's name of the notebook."""
        return self.name.removesuffix(".ipynb")

    @property
    def group(self) -> tuple[str, ...]:
        """The notebooks to import, in order, to get this notebook's definitions: its imports, then itself."""
        return (*self.imports, self.name)

    @property
    def max_points(self) -> float:
        """Every point of the notebook: its tests' and its written answers'."""
        return sum(test.points for test in self.tests) + sum(answer.points for answer in self.written)

    def test(self, grade_id: str) -> GradedTest:
        """The graded test ``grade_id``; ``KeyError`` naming the notebook if it has none."""
        for test in self.tests:
            if test.grade_id == grade_id:
                return test
        raise KeyError(f"{self.name} has no graded test {grade_id!r}")

    def tests_scored(self, scoring: Scoring) -> tuple[GradedTest, ...]:
        """Its graded tests scored as ``scoring``, in notebook order."""
        return tuple(test for test in self.tests if test.scoring is scoring)


@dataclass(frozen=True)
class DataFile:
    """A data file a submission carries beside its notebooks: written by ``notebook``, at most ``max_bytes``."""

    name: str
    max_bytes: int
    notebook: str


@dataclass(frozen=True)
class Timeouts:
    """Seconds a cell, a notebook and all of one student's notebooks may run when graded (and checked)."""

    cell: int = 120
    notebook: int = 600
    submission: int = 1800


@dataclass(frozen=True)
class ExperimentProfiles:
    """The experiment profiles: what the experiment notebooks' saved results are graded against."""

    names: tuple[str, ...] = ("brief", "smoke")
    default: str = "brief"  # a real term: the brief's settings
    smoke: str = "smoke"  # smoke-test runs, against low thresholds (the course's rehearsal of a term)

    def check(self, profile: str) -> str:
        """``profile`` if it is one of :attr:`names`, else ``ValueError`` naming them."""
        if profile not in self.names:
            raise ValueError(f"unknown experiment profile {profile!r}: use one of {', '.join(self.names)}")
        return profile


@dataclass(frozen=True)
class Assignment:
    """The whole assignment. ``notebooks`` in the order students do them (and the grader lists them)."""

    name: str
    archive_prefix: str  # a submission is <archive_prefix>_<Name>_<StudentID>.zip
    notebooks: tuple[Notebook, ...]
    data_files: tuple[DataFile, ...] = ()  # in the order a submission zip holds them
    max_notebook_bytes: int = 20_000_000  # the largest notebook the grader accepts
    timeouts: Timeouts = field(default_factory=Timeouts)
    profiles: ExperimentProfiles = field(default_factory=ExperimentProfiles)

    def __post_init__(self):
        names = self.names
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a notebook is listed twice ({', '.join(names)})")
        for index, notebook in enumerate(self.notebooks):
            later = [name for name in notebook.imports if name not in names[:index]]
            if later:
                raise ValueError(f"{notebook.name} imports {', '.join(later)}, which is not an earlier notebook")
        ids = [
            gid
            for notebook in self.notebooks
            for gid in [t.grade_id for t in notebook.tests] + [a.grade_id for a in notebook.written]
        ]
        doubled = sorted({gid for gid in ids if ids.count(gid) > 1})
        if doubled:
            raise ValueError(f"{self.name}: grade ids used twice: {', '.join(doubled)}")
        unknown = [f.name for f in self.data_files if f.notebook not in names]
        if unknown:
            raise ValueError(f"{self.name}: data files of no notebook of the assignment: {', '.join(unknown)}")

    @property
    def names(self) -> tuple[str, ...]:
        """The notebooks' file names, in order."""
        return tuple(notebook.name for notebook in self.notebooks)

    def notebook(self, name: str) -> Notebook:
        """The notebook called ``name``; ``KeyError`` listing the assignment's if there is none."""
        for notebook in self.notebooks:
            if notebook.name == name:
                return notebook
        raise KeyError(f"{name} is not a notebook of {self.name} ({', '.join(self.names)})")

    def test(self, grade_id: str) -> GradedTest:
        """The graded test ``grade_id`` of any notebook; ``KeyError`` if there is none."""
        for notebook in self.notebooks:
            for test in notebook.tests:
                if test.grade_id == grade_id:
                    return test
        raise KeyError(f"{self.name} has no graded test {grade_id!r}")

    @property
    def max_points(self) -> float:
        """Every point of the assignment."""
        return sum(notebook.max_points for notebook in self.notebooks)

    @property
    def data_file_caps(self) -> dict[str, int]:
        """``{data file: its size cap in bytes}``, in the order a submission holds them."""
        return {data.name: data.max_bytes for data in self.data_files}

    @property
    def results_files(self) -> dict[str, str]:
        """``{experiment notebook: its results file}``."""
        return {nb.name: nb.results_file for nb in self.notebooks if nb.results_file}

    @property
    def cross_checked(self) -> tuple[Notebook, ...]:
        """The notebooks with cross-checked tests (the probe process checks them), in order."""
        return tuple(nb for nb in self.notebooks if nb.tests_scored(Scoring.CROSS_CHECKED))

    @property
    def reference_notebooks(self) -> tuple[str, ...]:
        """The notebooks whose definitions make up the reference: every cross-checked notebook's group, in order."""
        needed = {name for notebook in self.cross_checked for name in notebook.group}
        return tuple(name for name in self.names if name in needed)

    def measured(self) -> list[tuple[Notebook, GradedTest]]:
        """``[(notebook, test)]`` of every test the grader measures itself, in order."""
        return [(nb, test) for nb in self.notebooks for test in nb.tests_scored(Scoring.MEASURED)]

    def to_json(self) -> str:
        """The description as JSON (what the grader's job process reads back with :meth:`from_json`)."""
        from dataclasses import asdict

        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Assignment:
        """The description :meth:`to_json` wrote; ``KeyError`` or ``TypeError`` on a missing or unknown key."""
        raw = json.loads(text)

        def test(t: dict) -> GradedTest:
            measurement = Measurement(**t["measurement"]) if t["measurement"] is not None else None
            return GradedTest(t["grade_id"], t["points"], Scoring(t["scoring"]), measurement)

        notebooks = tuple(
            Notebook(
                nb["name"],
                tuple(nb["imports"]),
                tuple(test(t) for t in nb["tests"]),
                tuple(WrittenAnswer(**a) for a in nb["written"]),
                nb["results_file"],
            )
            for nb in raw["notebooks"]
        )
        return cls(
            raw["name"],
            raw["archive_prefix"],
            notebooks,
            tuple(DataFile(**f) for f in raw["data_files"]),
            raw["max_notebook_bytes"],
            Timeouts(**raw["timeouts"]),
            ExperimentProfiles(**{k: tuple(v) if k == "names" else v for k, v in raw["profiles"].items()}),
        )


def profile_environment(profile: str) -> dict[str, str]:
    """The environment a kernel needs to grade the experiment notebooks under ``profile``.

    ``{PROFILE_VARIABLE: profile}``: the grader's sandbox adds it to the kernel's environment,
    :func:`dnn_course.experiment.experiment_profile` reads it in the kernel.
    """
    return {PROFILE_VARIABLE: ASSIGNMENT.profiles.check(profile)}


def _tests(*tests: tuple) -> tuple[GradedTest, ...]:
    return tuple(GradedTest(*test) for test in tests)


_X = Scoring.CROSS_CHECKED
_COMPONENTS = ("01_activations.ipynb", "02_fc_layer.ipynb", "03_softmax_cross_entropy.ipynb")

#: This course's assignment: "Deep Neural Networks from Scratch", homework 2.
ASSIGNMENT = Assignment(
    name="dnn_hw",
    archive_prefix="DNN_HW2",
    notebooks=(
        Notebook(
            "01_activations.ipynb",
            tests=_tests(
                ("test_relu_forward", 1, _X),
                ("test_relu_backward", 1, _X),
                ("test_sigmoid_forward", 1, _X),
                ("test_sigmoid_backward", 1, _X),
                ("test_tanh_forward", 1, _X),
                ("test_tanh_backward", 1, _X),
            ),
        ),
        Notebook(
            "02_fc_layer.ipynb",
            tests=_tests(
                ("test_fc_forward", 2, _X),
                ("test_fc_backward_input", 2, _X),
                ("test_fc_backward_params", 3, _X),
                ("test_fc_update", 1, _X),
            ),
        ),
        Notebook(
            "03_softmax_cross_entropy.ipynb",
            tests=_tests(("test_softmax", 2, _X), ("test_ce_loss", 2, _X), ("test_softmax_backward", 2, _X)),
        ),
        Notebook(
            "04_model_l2.ipynb",
            imports=_COMPONENTS,
            tests=_tests(("test_l2_loss", 3, _X), ("test_model_gradient_check", 4, _X), ("test_model_learns", 3, _X)),
        ),
        Notebook(
            "05_mnist_activations.ipynb",
            imports=(*_COMPONENTS, "04_model_l2.ipynb"),
            tests=(
                GradedTest("test_mnist_runs_recorded", 2),
                GradedTest("test_mnist_accuracies", 2, Scoring.MEASURED, Measurement("mnist", "mnist_model_points")),
            ),
            written=(WrittenAnswer("answer_mnist_activations", 6),),
            results_file="mnist_results.json",
        ),
        Notebook(
            "06_fashion_tuning.ipynb",
            imports=(*_COMPONENTS, "04_model_l2.ipynb"),
            tests=(
                GradedTest("test_fashion_search_recorded", 2),
                GradedTest(
                    "test_fashion_model_accuracy",
                    4,
                    Scoring.MEASURED,
                    Measurement("fashion-mnist", "fashion_model_points"),
                ),
            ),
            written=(WrittenAnswer("answer_fashion_design", 4),),
            results_file="fashion_results.json",
        ),
    ),
    data_files=(
        DataFile("mnist_results.json", 1_000_000, "05_mnist_activations.ipynb"),
        DataFile("fashion_results.json", 1_000_000, "06_fashion_tuning.ipynb"),
        DataFile("fashion_model.npz", 64_000_000, "06_fashion_tuning.ipynb"),
        DataFile("mnist_model_sigmoid.npz", 16_000_000, "05_mnist_activations.ipynb"),
        DataFile("mnist_model_relu.npz", 16_000_000, "05_mnist_activations.ipynb"),
        DataFile("mnist_model_tanh.npz", 16_000_000, "05_mnist_activations.ipynb"),
    ),
)
