"""Check a folder of exercise notebooks the way the grader will run them.

    python -m dnn_course.check                 # the notebooks in the current folder
    python -m dnn_course.check my-work/dnn_hw  # or in a given folder

For each notebook of the assignment (:data:`dnn_course.assignment.ASSIGNMENT`) this

1. compares its cells with the released notebook's: a test cell (or any other
   read-only cell) that was deleted, edited, copied or turned into another
   cell type is reported. ``nbgrader validate`` notices an edited test cell
   but passes a notebook whose test cell was deleted; the grader runs the
   released test cells in any case, so such a change never skips a test.
2. runs it from the top in a fresh kernel, as ``nbgrader validate`` does,
   with the grader's settings (:func:`configure_validation`): at most
   the grader's cell timeout (120 seconds) per cell, and the experiment
   notebooks 05 and 06 checked from the results they saved, without training
   again (graded under the default experiment profile, "brief").
3. prints one line per notebook (the points of its visible tests) and, under
   it, each failing test with its message, each test that earns partial
   credit (by design: 05's networks, 06's accuracy thresholds) with what the
   next point needs, and smoke-test results of 05 and 06 (``SMOKE_TEST =
   True``), which earn no points, named as such.

The exit status is 0 when every notebook passes (partial credit included),
1 otherwise, 2 when the folder cannot be checked at all.

The same settings make a plain ``nbgrader validate`` behave like this check:
the exercise folder carries an ``nbgrader_config.py`` (written by
``make exercises`` with :func:`write_student_config`) that calls
:func:`configure_validation`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .assignment import ASSIGNMENT, PROFILE_VARIABLE, Assignment
from .nbgrader_cells import stderr_as_output

__all__ = [
    "NotebookReport",
    "check_folder",
    "check_notebook",
    "configure_validation",
    "format_notebook",
    "format_summary",
    "main",
    "protected_cells",
    "student_config",
    "write_student_config",
]

#: Run in the kernel before the notebook: the experiments are graded under the default profile, reading their
#: saved results (unless the profile is set already: set to "" they train, as the course's own tests do).
_GRADING_PROFILE = f"import os; os.environ.setdefault({PROFILE_VARIABLE!r}, {ASSIGNMENT.profiles.default!r})"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")


def _count(number: int) -> str:
    """``6`` as "six" (the words up to twelve), larger numbers as digits."""
    return _NUMBERS[number] if number < len(_NUMBERS) else str(number)


def _experiments(assignment: Assignment) -> str:
    """The experiment notebooks' numbers, e.g. "05 and 06"."""
    numbers = [name[:2] for name in assignment.results_files]
    return " and ".join(filter(None, [", ".join(numbers[:-1]), numbers[-1]])) if numbers else "none"


def student_config(assignment: Assignment = ASSIGNMENT) -> str:
    """The text of the students' ``nbgrader_config.py`` (see :func:`write_student_config`)."""
    import textwrap

    files = ", ".join(assignment.data_file_caps)
    text = textwrap.fill(
        f"They make validating behave like grading: each cell may run for {assignment.timeouts.cell} seconds, and the "
        f"experiment notebooks {_experiments(assignment)} are checked from the files they saved ({files}) instead "
        f"of training again. To check all {_count(len(assignment.notebooks))} notebooks, including whether a test "
        "cell was deleted or changed, run `python -m dnn_course.check` here.",
        width=100,
    )
    return f'''"""Settings for `nbgrader validate` in this folder; nbgrader reads this file when you run it here.

{text}
"""

from dnn_course.check import configure_validation

configure_validation(get_config())  # noqa: F821 - get_config is provided by nbgrader
'''


def configure_validation(config):
    """Set the grader's execution settings on an nbgrader (traitlets) ``config``; returns it.

    The grader's cell timeout (:attr:`dnn_course.assignment.Timeouts.cell`, 120 s); the experiment
    notebooks graded under the default experiment profile (:data:`dnn_course.assignment.PROFILE_VARIABLE`
    set to ``brief`` unless it is already set, e.g. to ``""``: then they train); on Linux and macOS the
    kernel talks to nbgrader over local sockets, so it has no reason to warn about unencrypted TCP.
    """
    config.Execute.timeout = ASSIGNMENT.timeouts.cell
    config.Execute.extra_arguments = [f"--IPKernelApp.exec_lines={_GRADING_PROFILE}"]
    if os.name == "posix":
        config.KernelManager.transport = "ipc"
    else:  # Windows has no Unix sockets: keep TCP on localhost, without the kernel's warning about it
        config.Execute.extra_arguments.append("--IPKernelApp.log_level=ERROR")
    return config


def write_student_config(folder: str | Path, assignment: Assignment = ASSIGNMENT) -> Path:
    """Write the students' ``nbgrader_config.py`` (:func:`student_config`) into ``folder``; return its path."""
    path = Path(folder) / "nbgrader_config.py"
    path.write_text(student_config(assignment), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# Comparing with the released notebooks
# ---------------------------------------------------------------------------


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def protected_cells(released_notebook) -> list[dict]:
    """The cells of a released notebook that the grader identifies by id, in order.

    Each is ``{"grade_id", "cell_type", "kind", "checksum"}``: ``kind`` is "test"
    (a graded test cell), "answer" (a cell the student fills in) or "read-only"
    (any other locked cell); ``checksum`` is nbgrader's checksum of the released
    cell, or None for answer cells (their content is the student's).
    """
    cells = []
    for cell in released_notebook.cells:
        meta = _nbgrader(cell)
        grade_id = meta.get("grade_id")
        if not grade_id or not (meta.get("locked") or meta.get("grade") or meta.get("solution")):
            continue
        kind = "answer" if meta.get("solution") else "test" if meta.get("grade") else "read-only"
        cells.append(
            {
                "grade_id": grade_id,
                "cell_type": cell.cell_type,
                "kind": kind,
                "checksum": None if kind == "answer" else meta.get("checksum"),
            }
        )
    return cells


def _structure_problems(notebook, released, released_path: Path) -> list[str]:
    from nbgrader.utils import compute_checksum

    by_id: dict[str, list] = {}
    for cell in notebook.cells:
        grade_id = _nbgrader(cell).get("grade_id")
        if grade_id:
            by_id.setdefault(grade_id, []).append(cell)
    fresh = f"copy it back from the released {released_path.name} ({released_path.parent})"
    problems = []
    for expected in protected_cells(released):
        grade_id, kind = expected["grade_id"], expected["kind"]
        found = by_id.get(grade_id, [])
        if not found:
            if kind == "answer":
                problems.append(
                    f"your answer cell {grade_id} was deleted: the grader finds your code by that cell, "
                    f"so {fresh} and put your answer in it."
                )
            else:
                problems.append(
                    f"the {kind} cell {grade_id} was deleted. The grader runs it anyway, from the "
                    f"released notebook: {fresh}."
                )
            continue
        if len(found) > 1:
            problems.append(f"the cell {grade_id} appears {len(found)} times (a copied cell): keep only one.")
        cell = found[0]
        if cell.cell_type != expected["cell_type"]:
            problems.append(
                f"the cell {grade_id} was changed from {expected['cell_type']} to {cell.cell_type}: change it back."
            )
            continue
        if expected["checksum"] and compute_checksum(cell) != expected["checksum"]:
            problems.append(
                f"the {kind} cell {grade_id} was edited. The grader runs the released version, so "
                f"your change has no effect there: {fresh}."
            )
    return problems


# ---------------------------------------------------------------------------
# Running a notebook as nbgrader validate does
# ---------------------------------------------------------------------------


def _error_text(outputs) -> str | None:
    """The message of the first error (or stderr text) in a cell's outputs, one line."""
    for output in outputs:
        if output.get("output_type") == "error":
            lines = [_ANSI.sub("", line) for line in output.get("traceback") or []]
            if len(lines) == 1 and lines[0].startswith("\u2717"):  # a course check: its own message
                text = lines[0][1:].strip()
            else:
                text = f"{output.get('ename')}: {_ANSI.sub('', str(output.get('evalue', '')))}"
            return " ".join(text.split())
    for output in outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = " ".join(_ANSI.sub("", output.get("text", "")).split())
            return f"it wrote to stderr, which counts as a failure: {text}"
    return None


def _printed_lines(outputs) -> list[str]:
    """The non-empty lines a cell printed to stdout, in order."""
    text = "".join(
        output.get("text", "")
        for output in outputs
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )
    return [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]


def _explanation(outputs) -> str | None:
    """What a test that scored points but not all of them printed, without its closing "N of M points"."""
    lines = [line for line in _printed_lines(outputs) if not _POINTS_LINE.fullmatch(line)]
    return " ".join(line if line.endswith(".") else line + ";" for line in lines).rstrip(";") or None


_POINTS_LINE = re.compile(r"[\d.]+ of [\d.]+ points")


def _shorten(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


@dataclass
class NotebookReport:
    """What the check found in one notebook."""

    name: str
    points: float = 0.0  # of the automatically graded visible tests that pass
    max_points: float = 0.0
    failures: list[str] = field(default_factory=list)  # one line per failing test or empty answer
    partial: list[str] = field(default_factory=list)  # tests with some of their points: what the next needs
    problems: list[str] = field(default_factory=list)  # deleted, edited or copied cells; a missing file
    notes: list[str] = field(default_factory=list)  # things that do not fail the notebook

    @property
    def ok(self) -> bool:
        return not self.failures and not self.problems


def _run(path: Path):
    """Execute a notebook in its folder as ``nbgrader validate`` does; return the executed notebook."""
    import nbformat
    from nbgrader import utils
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, Execute
    from traitlets.config import Config

    config = configure_validation(Config())
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    with utils.chdir(str(path.parent)), utils.setenv(NBGRADER_VALIDATING="1", NBGRADER_EXECUTION="validate"):
        for preprocessor in (CheckCellMetadata, ClearOutput, Execute):
            notebook, _ = preprocessor(config=config).preprocess(notebook, {})
    stderr_as_output(notebook)  # as the grader does
    return notebook


def check_notebook(
    path: str | Path, released: str | Path | None = None, assignment: Assignment = ASSIGNMENT
) -> NotebookReport:
    """Check one notebook of ``assignment``: its cells against the ``released`` notebook (if given), then run it."""
    import nbformat
    from nbgrader import utils

    path = Path(path)
    report = NotebookReport(path.name)
    if not path.is_file():
        report.problems.append(
            f"{path.name} is missing from {path.parent}: keep all "
            f"{_count(len(assignment.notebooks))} notebooks in one folder, with their original names."
        )
        return report
    try:
        original = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    except Exception as error:  # noqa: BLE001 - any unreadable file is reported, not raised
        report.problems.append(
            f"{path.name} is not a readable notebook ({type(error).__name__}: {error}). "
            "Download a fresh copy of the exercise and copy your code into it."
        )
        return report
    if released is not None:
        released = Path(released)
        report.problems.extend(_structure_problems(original, nbformat.read(released, as_version=4), released))
    try:
        executed = _run(path)
    except Exception as error:  # noqa: BLE001 - a dead kernel, bad metadata...: say so and go on
        report.problems.append(
            f"{path.name} could not be run to the end: {type(error).__name__}: "
            f"{_shorten(' '.join(str(error).split()), 300)}"
        )
        return report

    first_error, seen_error = None, False
    for number, cell in enumerate(executed.cells, start=1):
        meta = _nbgrader(cell)
        label = meta.get("grade_id") or f"cell {number}"
        if cell.cell_type == "code" and not seen_error:
            message = _error_text(cell.get("outputs", []))
            seen_error = message is not None
            if message and not meta.get("grade"):  # the first failure is not a test: likely the cause
                first_error = f"{label} (not a test) failed first: {_shorten(message)}"
        if not utils.is_grade(cell):
            continue
        score, max_score = utils.determine_grade(cell)
        if score is None:  # a written answer: graded by hand
            report.notes.append(f"{label}: a written answer, graded by hand ({max_score:g} points)")
            continue
        report.max_points += max_score
        report.points += score
        if score >= max_score:
            continue
        if utils.is_solution(cell):
            report.failures.append(f"{label}: still empty: write your answer where it says EDIT HERE.")
            continue
        outputs = cell.get("outputs", [])
        error = _error_text(outputs)
        if score > 0 and error is None:  # partial credit, by design: not a failure
            report.partial.append(
                f"{label} ({score:g}/{max_score:g} points, partial credit): "
                f"{_shorten(_explanation(outputs) or 'no explanation printed')}"
            )
            continue
        message = error or _explanation(outputs) or f"{score:g} of {max_score:g} points"
        report.failures.append(f"{label} ({score:g}/{max_score:g} points): {_shorten(message)}")
    report.problems.extend(_smoke_problems(path, assignment))
    if first_error and report.failures:
        report.failures.insert(0, first_error)
    return report


def _smoke_problems(path: Path, assignment: Assignment = ASSIGNMENT) -> list[str]:
    """A line for a results file of this notebook that holds smoke-test runs (none for 01-04)."""
    from .experiment import SMOKE
    from .submission import smoke_results

    results = assignment.results_files.get(path.name)
    runs = smoke_results(path.parent, assignment).get(results, []) if results else []
    if not runs:
        return []
    return [
        f"{results} holds SMOKE-TEST results ({len(runs)} run{'s' if len(runs) > 1 else ''} with SMOKE_TEST = "
        f"True: {SMOKE['train_images']:,} images, at most {SMOKE['max_epochs']} epochs). They are not graded: "
        f"the grader gives them no points. Set SMOKE_TEST = False in the first code cell of {path.name}, run "
        "all its cells (minutes, not seconds: its introduction says how long), then check again."
    ]


# ---------------------------------------------------------------------------
# A whole folder
# ---------------------------------------------------------------------------


def _released_folder(folder: Path, released: str | Path | None, names: tuple[str, ...]) -> Path | None:
    """Where the released notebooks are: the given folder, else next to the course package or the work."""
    if released is not None:
        return Path(released)
    package_root = Path(__file__).resolve().parent.parent
    candidates = [
        package_root / "exercises" / "dnn_hw",
        Path.cwd() / "exercises" / "dnn_hw",
        folder.resolve().parent.parent / "exercises" / "dnn_hw",
    ]
    for candidate in candidates:
        if all((candidate / name).is_file() for name in names) and candidate.resolve() != folder.resolve():
            return candidate
    return None


def check_folder(
    folder: str | Path = ".",
    released: str | Path | None = None,
    notebooks=None,
    on_report=None,
    assignment: Assignment = ASSIGNMENT,
) -> list[NotebookReport]:
    """Check the notebooks of ``assignment`` in ``folder`` (only ``notebooks``, if given); ``released`` is the
    folder of the released ones (found if None).

    ``on_report(report)``, if given, is called as each notebook is done (the command prints it at once).
    """
    folder = Path(folder)
    released_folder = _released_folder(folder, released, assignment.names)
    reports = []
    for name in notebooks or assignment.names:
        reference = released_folder / name if released_folder is not None else None
        report = check_notebook(
            folder / name, reference if reference is not None and reference.is_file() else None, assignment
        )
        if released_folder is None:
            report.notes.append(
                "the released notebooks were not found, so deleted or edited test cells are not "
                "checked (pass --released exercises/dnn_hw)"
            )
        reports.append(report)
        if on_report is not None:
            on_report(report)
    return reports


_WIDTH = max(len(name) for name in ASSIGNMENT.names) + 2


PARTIAL_MARK = "\u25d0"  # ◐


def format_notebook(report: NotebookReport) -> str:
    """One notebook's lines of the summary: its points, then one line per problem, failing test or partial credit."""
    mark = ("\u2713" if not report.partial else PARTIAL_MARK) if report.ok else "\u2717"
    if report.max_points:
        status = f"{report.points:g}/{report.max_points:g} points from the visible tests"
    else:
        status = "not run" if report.problems else "no automatic tests"
    if report.ok:
        status += ", all pass" if not report.partial else ", all pass, with partial credit"
    lines = [f"{report.name:<{max(_WIDTH, len(report.name) + 2)}}{mark} {status}"]
    lines.extend(f"    \u2717 {line}" for line in report.problems + report.failures)
    lines.extend(f"    {PARTIAL_MARK} {line}" for line in report.partial)
    lines.extend(f"    \u00b7 {line}" for line in report.notes)
    return "\n".join(lines)


def format_summary(reports: list[NotebookReport]) -> str:
    """The closing line: how many notebooks pass, and what to do next."""
    passing = sum(report.ok for report in reports)
    partial = sum(len(report.partial) for report in reports if report.ok)
    if passing == len(reports):
        credit = (
            (
                f" {partial} test{'s earn' if partial > 1 else ' earns'} partial credit, which is no error: the "
                f"{PARTIAL_MARK} line{'s say' if partial > 1 else ' says'} what the next point needs."
            )
            if partial
            else ""
        )
        return (
            f"All {len(reports)} notebooks pass their visible tests.{credit} The grader's hidden tests check the "
            "same code more thoroughly, so passing here is necessary, not sufficient."
        )
    return (
        f"{passing} of {len(reports)} notebooks pass. Fix the \u2717 lines above (the first one of a notebook "
        "is often the cause of the others), then run this check again."
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dnn_course.check",
        description=(f"Check the {_count(len(ASSIGNMENT.notebooks))} exercise notebooks the way the grader runs them."),
    )
    parser.add_argument("folder", nargs="?", default=".", help="the folder of your notebooks (default: here)")
    parser.add_argument(
        "--released",
        metavar="FOLDER",
        help="the folder of the released notebooks (default: exercises/dnn_hw of the course)",
    )
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if not folder.is_dir():
        print(
            f"{folder} is not a folder. Run this from the folder of your notebooks, or give it: "
            "python -m dnn_course.check my-work/dnn_hw",
            file=sys.stderr,
        )
        return 2
    if not any((folder / name).is_file() for name in ASSIGNMENT.names):
        print(
            f"{folder.resolve()} holds none of the {_count(len(ASSIGNMENT.notebooks))} exercise notebooks "
            f"({ASSIGNMENT.names[0]}, ...). Give the "
            "folder of your notebooks: python -m dnn_course.check my-work/dnn_hw",
            file=sys.stderr,
        )
        return 2
    if args.released and not Path(args.released).is_dir():
        print(f"--released {args.released} is not a folder.", file=sys.stderr)
        return 2
    print(
        f"Checking the notebooks in {folder.resolve()} as the grader runs them ({_experiments(ASSIGNMENT)} from "
        "their saved results)...",
        flush=True,
    )
    reports = check_folder(folder, args.released, on_report=lambda report: print(format_notebook(report), flush=True))
    print(f"\n{format_summary(reports)}")
    return 0 if all(report.ok for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
