"""Grading keys: content hashes of everything that decides a submission's grade.

A submission's key is the SHA-256 of four parts:

* the grading software (:func:`software_digest`): every file of the ``autograder`` and
  ``dnn_course`` packages but their ``*.md`` (the embedded data included) and the versions of Python and of the
  libraries that run and render a notebook;
* the course (:func:`course_digest`): the bytes of the source notebooks (hidden tests included)
  and of the released ones;
* the settings that change a grade (:func:`settings_digest`): everything in
  :class:`GradingSettings` but the number of jobs, the similarity threshold and the source
  folder's path (its content is in the course part), and the isolation in force;
* the submission (:func:`submission_digest`): the names and bytes of the files the collector
  kept for the student, and the collector's record of it (name, source, timestamp, flags).

Two runs that give a student the same key grade that student alike, so a run grades again only
the students whose key changed (:func:`stale`). Reads the collected folder
``OUT/course/submitted/<id>/<assignment>/`` and the course's notebooks; reads and writes
``OUT/course/grading_keys.json`` (``{student id: key}``, the keys of the last run that graded each
student without a failure).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from dnn_course.atomic_write import write_atomically

from .grading_settings import GradingSettings

KEYS_FILE = "grading_keys.json"
#: Libraries whose version can change a score or a rendered page (kernel, execution, conversion, numerics, plots).
LIBRARIES = ("numpy", "matplotlib", "nbgrader", "nbconvert", "nbclient", "nbformat", "ipykernel", "jupyter_client")
#: Settings that do not change a grade: how many run at once, the similarity report's threshold, and
#: where the source notebooks are (their bytes are in the course part of the key).
NOT_GRADING = ("jobs", "similarity_threshold", "source_root")


def _hash_files(digest, root: Path) -> None:
    """Feed every file under ``root`` (relative name and bytes, in sorted order) into ``digest``."""
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())


def _package_root(name: str) -> Path:
    module = __import__(name)
    return Path(module.__file__).resolve().parent


@lru_cache(maxsize=1)
def software_files() -> dict[str, str]:
    """``{file: SHA-256}`` of the grading software's files: the ``autograder`` and ``dnn_course``
    packages (their documentation, ``*.md``, aside) and the embedded data, named as
    ``package/relative path``."""
    from dnn_course.dataset_files import EMBEDDED_DIR

    roots = {package: _package_root(package) for package in ("autograder", "dnn_course")}
    if roots["dnn_course"] not in EMBEDDED_DIR.resolve().parents:  # a checkout keeps it apart
        roots["embedded"] = EMBEDDED_DIR
    return {
        f"{label}/{path.relative_to(root).as_posix()}": hashlib.sha256(path.read_bytes()).hexdigest()
        for label, root in roots.items()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".md"
    }


@lru_cache(maxsize=1)
def software_digest() -> str:
    """SHA-256 of the grading software of this interpreter: :func:`software_files` and
    :func:`library_versions`."""
    return hashlib.sha256(json.dumps([software_files(), library_versions()], sort_keys=True).encode()).hexdigest()


def library_versions() -> dict[str, str]:
    """``{name: version}`` of Python and of :data:`LIBRARIES` in this interpreter."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        versions[name] = importlib.metadata.version(name)
    return versions


def course_digest(source_dir: Path, release_dir: Path) -> str:
    """SHA-256 of the source notebooks (``source_dir``) and the released ones (``release_dir``)."""
    digest = hashlib.sha256()
    for part in (source_dir, release_dir):
        digest.update(b"\1")
        _hash_files(digest, part)
    return digest.hexdigest()


def settings_digest(settings: GradingSettings, isolation: str) -> str:
    """SHA-256 of the settings that change a grade, with the isolation in force."""
    values = {k: v for k, v in asdict(settings).items() if k not in NOT_GRADING}
    values["isolation"] = isolation
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def submission_digest(submitted_dir: Path, record: dict) -> str:
    """SHA-256 of a student's collected files and the collector's record of them (``record``)."""
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode())
    if submitted_dir.is_dir():
        _hash_files(digest, submitted_dir)
    return digest.hexdigest()


def submission_keys(
    course: Path, settings: GradingSettings, manifest: dict[str, dict], isolation: str
) -> dict[str, str]:
    """``{student id: key}`` for every student of ``manifest`` (the collector's records).

    ``course`` is the run's nbgrader course folder (``release/`` and ``submitted/`` filled).
    """
    shared = "".join(
        [
            software_digest(),
            course_digest(Path(settings.source_root) / settings.assignment, course / "release" / settings.assignment),
            settings_digest(settings, isolation),
        ]
    )
    return {
        sid: hashlib.sha256(
            (shared + submission_digest(course / "submitted" / sid / settings.assignment, record)).encode()
        ).hexdigest()
        for sid, record in manifest.items()
    }


def recorded(out: Path) -> dict[str, str]:
    """The keys of the last run in ``out`` (empty if none)."""
    path = out / "course" / KEYS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def stale(out: Path, keys: dict[str, str]) -> list[str]:
    """Students to grade again: new, changed (another key), or without a result file in ``out``."""
    previous = recorded(out)
    have_gradebook = (out / "course" / "gradebook.db").exists()
    return sorted(
        sid
        for sid, key in keys.items()
        if not have_gradebook or previous.get(sid) != key or not (out / "results" / f"{sid}.json").exists()
    )


def record(out: Path, keys: dict[str, str], graded: set[str], failed: set[str]) -> None:
    """Write the keys after a run: ``graded`` students get their new key, unless they ``failed``
    (they are graded again next time); the others keep theirs; students no longer submitted go."""
    previous = recorded(out)
    kept = {sid: (key if sid in graded else previous.get(sid)) for sid, key in keys.items() if sid not in failed}
    write_atomically(
        out / "course" / KEYS_FILE, json.dumps({sid: key for sid, key in sorted(kept.items()) if key}, indent=1)
    )
