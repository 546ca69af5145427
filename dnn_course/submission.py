"""What a student hands in, and the command that packs it: ``make submit`` in the kit.

    python -m dnn_course.submission my-work/dnn_hw --name Ada_Lovelace --id 12345678

writes ``DNN_HW2_Ada_Lovelace_12345678.zip`` holding, at its top level, the six
notebooks and the data files the experiment notebooks write, as the assignment's
description lists them (:data:`dnn_course.assignment.ASSIGNMENT`): exactly what
the grader's collector (``autograder/collect.py``) keeps from a zip named by its
pattern (``autograder.grading_settings.DEFAULT_NAME_PATTERN``). The grader takes
its list of data files and their size caps from the same description, so the
two cannot differ.

Before writing anything it checks that every file is there and not larger than
the grader accepts, and it says plainly when 05 or 06 saved smoke-test results
(``SMOKE_TEST = True``), which earn no points. Exit status: 0 written (perhaps
with warnings), 1 a file is missing or too large, 2 a bad name or id.
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

from .assignment import ASSIGNMENT, Assignment

__all__ = [
    "STUDENT_ID",
    "archive_name",
    "main",
    "missing_files",
    "smoke_results",
    "submitted_files",
    "write_submission",
]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*(?:_[A-Za-z0-9-]+)*")
#: A student id: the one rule, shared with the grader, whose collector reads the id from the archive's name
#: (``autograder.grading_settings.DEFAULT_NAME_PATTERN`` is built from it): ASCII letters and digits only.
STUDENT_ID = r"[A-Za-z0-9]+"
_ID = re.compile(STUDENT_ID)
_EXAMPLE = "make submit NAME=Ada_Lovelace ID=12345678"


def archive_name(name: str, student_id: str, assignment: Assignment = ASSIGNMENT) -> str:
    """``DNN_HW2_<name>_<student_id>.zip``; ``ValueError`` with what to type when either is malformed."""
    name, student_id = (name or "").strip(), (student_id or "").strip()
    if not name or not student_id:
        raise ValueError(f"Give your name and your student id, for example: {_EXAMPLE}")
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"NAME={name!r} cannot go into the file name: use the letters A-Z and a-z, digits and "
            "hyphens, with _ between the parts of your name and no spaces (write accented or "
            f"non-Latin letters in Latin letters), for example: {_EXAMPLE}"
        )
    if not _ID.fullmatch(student_id):
        raise ValueError(
            f"ID={student_id!r} is not a student id the grader can read from the file name: a "
            "student id is ASCII letters and digits only (A-Z, a-z, 0-9), with no spaces, hyphens or "
            f"other punctuation. Write it as your course lists it, for example: {_EXAMPLE}"
        )
    return f"{assignment.archive_prefix}_{name}_{student_id}.zip"


def submitted_files(assignment: Assignment = ASSIGNMENT) -> list[str]:
    """Every file of a submission, in the order the zip holds them: the notebooks, then the data files."""
    return [*assignment.names, *assignment.data_file_caps]


def missing_files(folder: str | Path, assignment: Assignment = ASSIGNMENT) -> list[str]:
    """The files of :func:`submitted_files` that ``folder`` lacks."""
    return [name for name in submitted_files(assignment) if not (Path(folder) / name).is_file()]


def smoke_results(folder: str | Path, assignment: Assignment = ASSIGNMENT) -> dict[str, list[str]]:
    """``{results file: [runs made with SMOKE_TEST = True]}`` for each results file in ``folder`` that has any."""
    from .experiment import load_experiment, smoke_runs
    from .records import RecordError

    found = {}
    for results in assignment.results_files.values():
        path = Path(folder) / results
        if path.is_file():
            try:
                runs = smoke_runs(load_experiment(path))
            except RecordError:
                continue  # make check and the grader say what is wrong with the file
            if runs:
                found[results] = runs
    return found


def write_submission(folder: str | Path, name: str, student_id: str, out: str | Path = ".") -> Path:
    """Zip the files of ``folder`` as ``out/DNN_HW2_<name>_<student_id>.zip``; return its path.

    Raises ``ValueError`` for a bad name or id and ``FileNotFoundError`` when a file is missing.
    """
    archive = Path(out) / archive_name(name, student_id)
    missing = missing_files(folder)
    if missing:
        raise FileNotFoundError(", ".join(missing))
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for file in submitted_files():
            zipped.write(Path(folder) / file, file)
    return archive


def _too_large(folder: Path) -> list[str]:
    caps = {**dict.fromkeys(ASSIGNMENT.names, ASSIGNMENT.max_notebook_bytes), **ASSIGNMENT.data_file_caps}
    return [
        f"{name} is {(folder / name).stat().st_size / 1e6:.1f} MB; the grader takes at most {cap / 1e6:g} MB"
        for name, cap in caps.items()
        if (folder / name).is_file() and (folder / name).stat().st_size > cap
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dnn_course.submission", description="Check your work and pack it as the zip file to upload."
    )
    parser.add_argument("folder", nargs="?", default=".", help="the folder of your notebooks (default: here)")
    parser.add_argument("--name", default="", help="your name, parts joined by _ (Ada_Lovelace)")
    parser.add_argument("--id", default="", dest="student_id", help="your student id (12345678)")
    parser.add_argument("--out", default=".", help="where to write the zip (default: here)")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if not args.name and not args.student_id and sys.stdin.isatty():
        args.name = input("Your name, parts joined by _ (for example Ada_Lovelace): ")
        args.student_id = input("Your student id: ")
    try:
        archive = archive_name(args.name, args.student_id)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    missing = missing_files(folder)
    if missing:
        print(
            f"Not packed: {folder} lacks {', '.join(missing)}.\nThe six notebooks keep their names; the other "
            "files are written by notebooks 05 and 06 when you run their experiments (with SMOKE_TEST = False).",
            file=sys.stderr,
        )
        return 1
    too_large = _too_large(folder)
    if too_large:
        print("Not packed: " + "; ".join(too_large) + ".", file=sys.stderr)
        return 1
    path = write_submission(folder, args.name, args.student_id, args.out)
    print(f"Wrote {path.resolve()}: the six notebooks and {', '.join(ASSIGNMENT.data_file_caps)}.")
    for results, runs in smoke_results(folder).items():
        print(
            f"WARNING: {results} holds smoke-test results ({', '.join(runs)}), made with SMOKE_TEST = True. They "
            "earn no points: set SMOKE_TEST = False in the notebook's first code cell, run it again to the end, "
            "then run make submit again."
        )
    print(
        f"Upload {archive} to your course's learning platform. Run `make check` first if you have not: it runs "
        "your notebooks as the grader does."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
