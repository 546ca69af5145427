"""What gives a graded answer away: the course's one leak policy, for the site, the kit and the feedback.

Reads the nbgrader source notebooks (``solutions/<assignment>/*.ipynb``) and answers one question
about any text (a MyST page, a notebook, a built page's source, a kit file): does it hold a graded
answer? It puts together the policy's parts, each its own module:

* :mod:`dnn_course.nbgrader_regions`: the one parser of the notebooks' solution and hidden-test regions;
* :mod:`dnn_course.secret_lines`: which region lines are secrets (normalised how, how long) and when a
  text gives one away, the rule feedback redaction, the kit's release scan and the site check share;
* :mod:`dnn_course.code_leaks`: a solution's expression in a text's code, however it is written;
* :mod:`dnn_course.answer_leaks`: a written answer's model answer, claims, numbers or rubric points.

Nothing here is hand-copied from the notebooks: change a solution or a rubric and the policy
follows. :func:`find_leaks` is the entry point (``scripts/check_site.py``, ``scripts/make_release.py``
and the tests use it) and returns one :class:`Leak` per finding.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from dnn_course import answer_leaks, code_leaks, nbgrader_regions, secret_lines

__all__ = ["Leak", "page_text", "find_leaks"]


@dataclass(frozen=True)
class Leak:
    """One finding: where (``name``), what kind ("solution code", "model answer", "rubric point", ...), which answer."""

    name: str
    kind: str
    source: str  # "<notebook>" or "<notebook>/<grade_id>"
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {self.kind} of {self.source}: {self.detail}"


def page_text(path: Path) -> str:
    """The text a page is made from: a notebook's cells joined (code cells fenced), any other file as it is."""
    path = Path(path)
    if path.suffix == ".ipynb":
        return "\n\n".join(
            f"```\n{cell.source}\n```" if cell.cell_type == "code" else cell.source
            for cell in nbgrader_regions.read_cells(path)
        )
    return path.read_text(encoding="utf-8", errors="replace")


def _state(solutions_dir: Path) -> tuple[str, tuple]:
    """The folder and its notebooks' modification times (with the exercises'): what the cache depends on."""
    folder = Path(solutions_dir).resolve()
    notebooks = [
        *nbgrader_regions.notebook_paths(folder),
        *nbgrader_regions.notebook_paths(secret_lines.released_dir(folder)),
    ]
    return str(folder), tuple((str(path), path.stat().st_mtime_ns) for path in sorted(notebooks))


@functools.lru_cache(maxsize=4)
def _policy(folder: str, _mtimes: tuple) -> tuple[code_leaks.Secrets, list[answer_leaks.WrittenAnswer], str]:
    return (
        code_leaks.solution_expressions(Path(folder)),
        answer_leaks.written_answers(Path(folder)),
        answer_leaks.public_text(Path(folder)),
    )


def find_leaks(texts: dict[str, str], solutions_dir: Path, *, code: bool = True, answers: bool = True) -> list[Leak]:
    """Every graded answer in ``texts`` (``{name: MyST or Markdown text}``), one :class:`Leak` each.

    ``code=False`` looks for written answers only (for a page's visible text, whose code spans are
    no longer marked); ``answers=False`` for solution code only. ``solutions_dir`` without
    notebooks (a students' copy) finds nothing.
    """
    secrets, written, public = _policy(*_state(solutions_dir))
    leaks = []
    for name, text in texts.items():
        if code:
            leaks += [Leak(name, *found) for found in code_leaks.code_leaks(text, secrets)]
        if answers:
            leaks += [Leak(name, *found) for found in answer_leaks.answer_leaks(text, written, public)]
    return leaks
