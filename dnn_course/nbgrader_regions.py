"""The nbgrader regions of the course's notebooks: the one parser every leak check and tool reads them with.

An nbgrader source notebook (``solutions/<assignment>/*.ipynb``) marks what students must not see
with marker lines: ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` (the answer a student writes; in a
markdown cell, a written answer's model answer and rubric) and ``### BEGIN HIDDEN TESTS`` ... ``###
END HIDDEN TESTS`` (test code that runs only when grading). A marker is recognised on any line that
contains it (as nbgrader does), whatever the indentation or comment sign before it; the marker lines
themselves belong to no region.

Reads notebook files (JSON, any nbformat 4 version) or cell sources already in memory; returns

* :func:`read_cells`: the cells of a notebook file, as :class:`Cell` (type, source text, metadata);
* :func:`regions`: the regions of one cell's source, as :class:`Region` (kind and lines);
* :func:`outside_regions`: a source without its regions (what students are shown of it);
* :func:`answer_cells`: the graded written-answer cells (markdown, nbgrader ``solution`` and ``grade``).

What counts as a leaked line of a region is :mod:`dnn_course.secret_lines`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SOLUTION",
    "HIDDEN_TEST",
    "KINDS",
    "MARKERS",
    "Cell",
    "Region",
    "read_cells",
    "notebook_paths",
    "regions",
    "outside_regions",
    "answer_cells",
]

#: The two kinds of region, as the leak checks name them.
SOLUTION = "solution"
HIDDEN_TEST = "hidden test"
KINDS = (SOLUTION, HIDDEN_TEST)
#: Each kind's begin and end marker (what nbgrader's ``ClearSolutions`` and ``ClearHiddenTests`` look for).
_DELIMITERS = {SOLUTION: ("BEGIN SOLUTION", "END SOLUTION"), HIDDEN_TEST: ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")}
#: Every marker; none may reach a student.
MARKERS = tuple(marker for pair in _DELIMITERS.values() for marker in pair)


@dataclass(frozen=True)
class Cell:
    """One cell of a notebook: ``notebook`` (file name), ``index`` (position), type, source, metadata."""

    notebook: str
    index: int
    cell_type: str
    source: str
    metadata: dict

    @property
    def nbgrader(self) -> dict:
        """The cell's nbgrader metadata (``{}`` if it has none)."""
        return self.metadata.get("nbgrader", {}) or {}


@dataclass(frozen=True)
class Region:
    """One region of a cell: ``kind`` (:data:`SOLUTION` or :data:`HIDDEN_TEST`) and its lines as written."""

    kind: str
    lines: tuple[str, ...]

    @property
    def body(self) -> str:
        """The region's text: its lines joined, each ending in a newline."""
        return "".join(line + "\n" for line in self.lines)


def _source_text(source) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def read_cells(notebook: Path) -> list[Cell]:
    """The cells of the notebook file ``notebook``, in order."""
    notebook = Path(notebook)
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [
        Cell(
            notebook.name,
            index,
            cell["cell_type"],
            _source_text(cell.get("source", "")),
            cell.get("metadata", {}) or {},
        )
        for index, cell in enumerate(cells)
    ]


def notebook_paths(folder: Path | None) -> list[Path]:
    """The notebooks of ``folder`` (``*.ipynb``), sorted by name; none if ``folder`` is None or absent."""
    return sorted(Path(folder).glob("*.ipynb")) if folder is not None else []


def _marker(line: str) -> tuple[str, str] | None:
    """``(kind, "begin" or "end")`` if ``line`` is a marker line, else None."""
    for kind, (begin, end) in _DELIMITERS.items():
        if begin in line:
            return kind, "begin"
        if end in line:
            return kind, "end"
    return None


def _walk(source: str):
    """Each line of ``source`` as ``(line, kind, edge)``: ``edge`` is "begin" or "end" for a marker line
    (``kind`` its region's), None for any other line (``kind`` the region it is in, None outside)."""
    inside = None
    for line in source.splitlines():
        marker = _marker(line)
        if marker is None:
            yield line, inside, None
        else:
            kind, edge = marker
            inside = kind if edge == "begin" else None
            yield line, kind, edge


def regions(source: str) -> list[Region]:
    """The regions of one cell's ``source``, in order. A region left open runs to the end of the cell."""
    found, current = [], None
    for line, kind, edge in _walk(source):
        if edge is not None:
            if current is not None:
                found.append(Region(*current))
            current = (kind, []) if edge == "begin" else None
        elif current is not None:
            current[1].append(line)
    if current is not None:
        found.append(Region(*current))
    return [Region(region.kind, tuple(region.lines)) for region in found]


def outside_regions(source: str, kinds=KINDS, note: str | None = None) -> str:
    """``source`` without its regions of ``kinds`` and their marker lines.

    ``note``: a line put where each region was (indented as its begin marker), e.g. "hidden tests run here".
    """
    kept, skipping = [], False
    for line, kind, edge in _walk(source):
        if edge is not None and kind in kinds:
            if edge == "begin" and note is not None:
                kept.append(line[: len(line) - len(line.lstrip())] + note)
            skipping = edge == "begin"
        elif not skipping:
            kept.append(line)
    return "\n".join(kept)


def answer_cells(cells) -> list[tuple[Cell, Region]]:
    """The graded written answers among ``cells``: each markdown cell that nbgrader marks ``solution``
    and ``grade``, with its solution region (model answer, then ``**Rubric``)."""
    return [
        (cell, region)
        for cell in cells
        if cell.cell_type == "markdown" and cell.nbgrader.get("solution") and cell.nbgrader.get("grade")
        for region in regions(cell.source)
        if region.kind == SOLUTION
    ]
