"""The grader's records: what crosses the fork into a grading job and what comes back.

The main process writes a :class:`JobSpec` to ``JOBDIR/job.json``; the forked job
(:mod:`autograder.job`) reads it back and writes a :class:`StudentResult` (its
:class:`NotebookResult` s, each with its :class:`TestResult` s) to ``JOBDIR/result.json``;
the main process publishes that as ``OUT/results/<id>.json``, which the report, the
feedback pages and the hand grading read back. :class:`Isolation` is the isolation in
force (level and explanation); :class:`ProbeKey` names one value of the cross-check
(notebook, grade id, part) instead of a joined string.

Every record is a frozen dataclass with ``to_json`` (a dict of JSON values) and
``from_json``, which raises :class:`RecordError` naming the record and the key when a
key is missing or unknown: a record written by another version of the grader fails
loudly instead of being half read. A field marked optional (``OPTIONAL`` metadata) is left
out of the JSON while it is None, as the result files have always done.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

from dnn_course.assignment import Assignment

from .grading_settings import GradingSettings
from .sandbox import Limits


class RecordError(ValueError):
    """A JSON record does not have the keys its type needs."""


#: Field metadata of a key that is left out of the JSON while its value is None.
OPTIONAL = {"optional": True}


def _check_keys(cls, data) -> None:
    """Raise :class:`RecordError` if ``data`` is not a dict with exactly the keys ``cls`` reads."""
    if not isinstance(data, dict):
        raise RecordError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    required = {f.name for f in dataclasses.fields(cls) if not f.metadata.get("optional")}
    missing = sorted(required - set(data))
    unknown = sorted(set(data) - set(names))
    if missing or unknown:
        problems = ([f"missing key(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown key(s) {', '.join(unknown)}"] if unknown else []
        )
        raise RecordError(
            f"{cls.__name__}: {'; '.join(problems)} (it has {', '.join(names)}); "
            "the file was written by another version of the grader: grade again"
        )


def _plain(record) -> dict:
    """The record's fields as a dict, optional fields that are None left out (not recursive)."""
    return {
        f.name: getattr(record, f.name)
        for f in dataclasses.fields(record)
        if not (f.metadata.get("optional") and getattr(record, f.name) is None)
    }


@dataclass(frozen=True)
class TestResult:
    """One graded cell of a notebook: its status, points and the message the student sees.

    ``status`` is ``passed``, ``failed``, ``partial credit`` (a test) or one of
    :data:`autograder.manual.ANSWER_STATUSES` (a written answer, which also carries its ``answer``).
    """

    __test__ = False  # not a pytest test class

    id: str
    status: str
    score: float | None
    max_score: float | None
    message: str
    answer: str | None = field(default=None, metadata=OPTIONAL)

    def to_json(self) -> dict:
        return _plain(self)

    @classmethod
    def from_json(cls, data: dict) -> TestResult:
        _check_keys(cls, data)
        return cls(**data)


@dataclass(frozen=True)
class NotebookResult:
    """One notebook of a submission: its points (the gradebook's), its flags and its tests, in notebook order."""

    name: str  # file name, ``01_activations.ipynb``
    score: float | None
    max_score: float | None
    flags: tuple[str, ...]
    tests: tuple[TestResult, ...]

    @property
    def stem(self) -> str:
        """The notebook's name without ``.ipynb`` (the gradebook's notebook id)."""
        return self.name.removesuffix(".ipynb")

    def to_json(self) -> dict:
        return dict(_plain(self), flags=list(self.flags), tests=[test.to_json() for test in self.tests])

    @classmethod
    def from_json(cls, data: dict) -> NotebookResult:
        _check_keys(cls, data)
        return cls(
            **dict(data, flags=tuple(data["flags"]), tests=tuple(TestResult.from_json(t) for t in data["tests"]))
        )


@dataclass(frozen=True)
class StudentResult:
    """A student's result: ``OUT/results/<id>.json`` (the job writes it without ``name`` and ``source``;
    a submission the grader failed on has no ``isolation``)."""

    student_id: str
    score: float | None
    max_score: float | None
    flags: tuple[str, ...]
    notebooks: tuple[NotebookResult, ...]
    isolation: str | None = field(default=None, metadata=OPTIONAL)  # the level in force (Isolation.level)
    name: str | None = field(default=None, metadata=OPTIONAL)  # as in the archive's name
    source: str | None = field(default=None, metadata=OPTIONAL)  # the archive or folder it came from

    def all_flags(self) -> list[str]:
        """The submission's flags, then each notebook's, as ``<notebook>: <flag>``."""
        return list(self.flags) + [f"{nb.name}: {flag}" for nb in self.notebooks for flag in nb.flags]

    def tests(self):
        """Every ``(notebook, test)`` of the submission, in order."""
        return [(nb, test) for nb in self.notebooks for test in nb.tests]

    def to_json(self) -> dict:
        return dict(_plain(self), flags=list(self.flags), notebooks=[nb.to_json() for nb in self.notebooks])

    @classmethod
    def from_json(cls, data: dict) -> StudentResult:
        _check_keys(cls, data)
        return cls(
            **dict(
                data,
                flags=tuple(data["flags"]),
                notebooks=tuple(NotebookResult.from_json(nb) for nb in data["notebooks"]),
            )
        )

    @classmethod
    def not_graded(cls, student_id: str, notebooks: list[str], message: str, flags: list[str]) -> StudentResult:
        """The result of a submission the grader failed on: every notebook 0, ``message`` the last flag."""
        return cls(
            student_id=student_id,
            score=0.0,
            max_score=None,
            flags=tuple(flags) + (message,),
            notebooks=tuple(NotebookResult(name=n, score=0.0, max_score=None, flags=(), tests=()) for n in notebooks),
        )


@dataclass(frozen=True)
class Isolation:
    """The isolation in force: its ``level`` (``bubblewrap`` or ``process``) and the sentence the report shows."""

    level: str
    explanation: str

    def to_json(self) -> dict:
        return _plain(self)

    @classmethod
    def from_json(cls, data: dict) -> Isolation:
        _check_keys(cls, data)
        return cls(**data)


def settings_to_json(settings: GradingSettings) -> dict:
    """Every field of ``settings`` as JSON values (paths as text, limits as a dict)."""
    values = dataclasses.asdict(settings)
    return {key: str(value) if isinstance(value, Path) else value for key, value in values.items()}


def settings_from_json(data: dict) -> GradingSettings:
    """The :class:`GradingSettings` of :func:`settings_to_json`; every field must be there, no other."""
    if not isinstance(data, dict):
        raise RecordError(f"GradingSettings: expected a JSON object, got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(GradingSettings)]
    missing, unknown = sorted(set(names) - set(data)), sorted(set(data) - set(names))
    if missing or unknown:
        raise RecordError(
            f"GradingSettings: missing key(s) {', '.join(missing) or 'none'}, unknown key(s) "
            f"{', '.join(unknown) or 'none'}; the file was written by another version of the grader"
        )
    hints = typing.get_type_hints(GradingSettings)
    limit_names = [f.name for f in dataclasses.fields(Limits)]
    if not isinstance(data["limits"], dict) or sorted(data["limits"]) != sorted(limit_names):
        raise RecordError(
            f"GradingSettings.limits: expected the keys {', '.join(limit_names)}, "
            f"got {', '.join(sorted(data['limits'])) if isinstance(data['limits'], dict) else data['limits']!r}"
        )
    values = {key: Path(value) if hints[key] is Path else value for key, value in data.items()}
    return GradingSettings(**dict(values, limits=Limits(**data["limits"])))


@dataclass(frozen=True)
class JobSpec:
    """What one grading job needs, written to ``JOBDIR/job.json`` by the main process before the fork.

    The paths are the main process's: the submission as collected, the released notebooks, the
    gradebook holding only the assignment (the job grades into a copy), the source notebooks.
    """

    student_id: str
    notebooks: tuple[str, ...]  # released notebook file names, in order
    timestamp: str | None  # the submission's time as the LMS gave it, if known
    token: str  # 16 hex digits: the probes' secret and the sandbox's process marker
    slot: int  # which of the parallel jobs (the sandbox's user id depends on it)
    isolation: Isolation
    submitted_dir: str
    release_dir: str
    master_db: str
    source_dir: str
    settings: GradingSettings
    description: Assignment  # the assignment graded: notebooks, tests, data files (dnn_course.assignment)

    @property
    def assignment(self) -> str:
        return self.settings.assignment

    def to_json(self) -> dict:
        return dict(
            _plain(self),
            notebooks=list(self.notebooks),
            isolation=self.isolation.to_json(),
            settings=settings_to_json(self.settings),
            description=self.description.to_json(),
        )

    @classmethod
    def from_json(cls, data: dict) -> JobSpec:
        _check_keys(cls, data)
        return cls(
            **dict(
                data,
                notebooks=tuple(data["notebooks"]),
                isolation=Isolation.from_json(data["isolation"]),
                settings=settings_from_json(data["settings"]),
                description=Assignment.from_json(data["description"]),
            )
        )


@dataclass(frozen=True, order=True)
class ProbeKey:
    """One value the cross-check compares: notebook file, grade id, part (``out``, ``grad``, ``error``...).

    In the ``.npz`` frames the sandboxed probes write (:mod:`autograder.crosscheck_probes`, which runs
    without this package) it is spelled ``NOTEBOOK::GRADE_ID/PART`` (:meth:`wire`, :meth:`parse`).
    """

    notebook: str
    grade_id: str
    part: str

    def wire(self) -> str:
        return f"{self.notebook}::{self.grade_id}/{self.part}"

    @classmethod
    def parse(cls, key: str) -> ProbeKey:
        notebook, sep, rest = key.partition("::")
        grade_id, slash, part = rest.partition("/")
        if not (sep and slash and notebook and grade_id and part):
            raise RecordError(f"cross-check key {key!r} is not NOTEBOOK::GRADE_ID/PART")
        return cls(notebook, grade_id, part)

    @property
    def test(self) -> tuple[str, str]:
        """``(notebook, grade id)``: the test this value belongs to."""
        return self.notebook, self.grade_id
