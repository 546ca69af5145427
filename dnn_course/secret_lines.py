"""Which lines of the nbgrader regions are secrets, and when a text gives one away: the one line policy.

Feedback redaction (``autograder/feedback.py``), the kit's release scan (``scripts/make_release.py``)
and the site check (``scripts/check_site.py``) all judge a text by this policy, so one notebook is
judged the same by all three.

Reads the regions of source notebooks (parsed by :mod:`dnn_course.nbgrader_regions`) and, optionally,
the notebooks students are given; returns :class:`SecretLine` records and, for any text, the secret
lines found in it.

The policy:

* **Normalised** (:func:`normalise_line`): a line is compared with its runs of whitespace (spaces,
  tabs, line breaks) collapsed to one space and its ends stripped; comments are kept.
* **A secret line** is a line of a solution or hidden-test region (code or markdown cell) whose
  normalised form has at least :data:`MIN_LINE_CHARS` characters, is not syntax alone
  (``except ValueError:``, ``return out``, ``import inspect``: :func:`is_generic`), and is not also
  shown to students: a line that a normalised line outside the regions of the source notebooks, or of
  the notebooks students receive, contains is public (``fx = checks.fixture("fc")`` in a hidden and a
  visible test; ``big = fx["z_extreme"]`` inside a visible test's ``big = fx["z_extreme"].copy()``).
* **A text gives a secret line away** when the normalised text contains the normalised line
  (anywhere: inside a longer line, a repr, a page's visible text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dnn_course import nbgrader_regions
from dnn_course.nbgrader_regions import KINDS, Cell

__all__ = [
    "MIN_LINE_CHARS",
    "SecretLine",
    "normalise_line",
    "counts",
    "is_generic",
    "secret_lines",
    "secret_lines_of",
    "found_in",
    "released_dir",
]

#: A region line counts from this many characters once normalised (``t32 = Tanh()`` is 12); shorter
#: lines (``pass``, ``x = z``) say nothing and would be found in any text.
MIN_LINE_CHARS = 12
#: Lines that are syntax more than content, in any program: never a secret.
_GENERIC = re.compile(
    r"(?:(?:except|try|else|elif|finally|return|pass|break|continue|raise)\b[\w. ]*:?"
    r"|import [\w.]+(?: as \w+)?|from [\w.]+ import [\w, ]+)"
)


@dataclass(frozen=True)
class SecretLine:
    """A secret line: ``notebook`` it is in, ``kind`` of region, ``text`` as written (ends stripped), ``key``
    normalised."""

    notebook: str
    kind: str
    text: str
    key: str


def normalise_line(text: str) -> str:
    """``text`` with every run of whitespace collapsed to one space, ends stripped."""
    return " ".join(text.split())


def counts(line: str) -> bool:
    """Whether a line is long enough and more than syntax to be a secret (normalised first)."""
    key = normalise_line(line)
    return len(key) >= MIN_LINE_CHARS and not is_generic(key)


def is_generic(key: str) -> bool:
    """Whether a normalised line is syntax alone (``except ValueError:``, ``import numpy as np``)."""
    return bool(_GENERIC.fullmatch(key))


def released_dir(solutions_dir: Path) -> Path:
    """``exercises/<assignment>`` beside ``solutions/<assignment>``: the notebooks students receive."""
    solutions_dir = Path(solutions_dir)
    return solutions_dir.parent.parent / "exercises" / solutions_dir.name


def secret_lines_of(cells, shown_cells=(), kinds=KINDS) -> list[SecretLine]:
    """The secret lines of the regions of ``kinds`` in ``cells`` (:class:`~dnn_course.nbgrader_regions.Cell`),
    each once, in order; ``shown_cells``: cells students are given, whose lines are public as well."""
    cells = list(cells)
    public = "\n".join(
        normalise_line(line)
        for cell in [*cells, *shown_cells]
        for line in nbgrader_regions.outside_regions(cell.source).splitlines()
    )
    found, seen = [], set()
    for cell in cells:
        for region in nbgrader_regions.regions(cell.source):
            if region.kind not in kinds:
                continue
            for line in region.lines:
                key = normalise_line(line)
                if counts(key) and key not in public and (cell.notebook, region.kind, key) not in seen:
                    seen.add((cell.notebook, region.kind, key))
                    found.append(SecretLine(cell.notebook, region.kind, line.strip(), key))
    return found


def secret_lines(solutions_dir: Path, shown_dir: Path | None = None, kinds=KINDS) -> list[SecretLine]:
    """The secret lines of the source notebooks ``solutions_dir/*.ipynb``.

    ``shown_dir``: the folder of the notebooks students receive (default: :func:`released_dir`, when it
    exists); ``kinds``: which regions (default both).
    """
    shown_dir = released_dir(solutions_dir) if shown_dir is None else Path(shown_dir)
    cells = [
        cell for path in nbgrader_regions.notebook_paths(solutions_dir) for cell in nbgrader_regions.read_cells(path)
    ]
    shown: list[Cell] = [
        cell for path in nbgrader_regions.notebook_paths(shown_dir) for cell in nbgrader_regions.read_cells(path)
    ]
    return secret_lines_of(cells, shown, kinds)


def found_in(text: str, lines) -> list[SecretLine]:
    """The secret lines of ``lines`` that ``text`` gives away (see the module docstring)."""
    flat = normalise_line(text)
    return [line for line in lines if line.key in flat]
