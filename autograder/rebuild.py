"""Reading a submitted notebook whatever state it is in, and rebuilding it on the master.

nbgrader's own sanitising (restore locked cells from the gradebook, fix cell
types and points, drop duplicate ids, re-add deleted test cells) assumes the
nbgrader metadata survived. Students' tools strip it, rename cells, reorder
them. So before nbgrader sees it, each submission is rebuilt on the released
notebook (the *master*):

* every cell of the master appears once, in the master's order, with the
  master's metadata; read-only cells (text, imports, tests) are the master's;
* each answer (solution) cell takes the student's cell with the same
  ``grade_id``; failing that, the student's unmatched cell of the same type
  between the same two neighbouring master cells (metadata stripped or id
  renamed); failing that, the master's blank stub;
* cells the student added are kept, after the master cell they followed
  (never before the first code cell), so helper functions still work;
  extra copies of read-only or test cells are dropped;
* grader probe cells (:mod:`autograder.tamper_probe`) are added: a snapshot first and
  a check after every code cell and at the end.

Reading copes with empty files, invalid JSON, JSON nested too deeply, old
nbformat versions, bytes that are not UTF-8, and cells or metadata of the wrong
type (a ``metadata.nbgrader`` that is not an object is ignored, a "cell" that
is not a notebook cell is dropped); each repair is reported as a flag. Whatever
is wrong with a file, reading it either succeeds or raises
:class:`UnreadableNotebook`, which costs that notebook only.
"""

from __future__ import annotations

import copy
import json

import nbformat
from nbformat import NotebookNode

from . import tamper_probe


class UnreadableNotebook(ValueError):
    """The file cannot be read as a notebook at all."""


CELL_TYPES = ("code", "markdown", "raw")


def _clean_cells(raw: dict, flags: list[str]) -> None:
    """Drop what is not a cell and metadata of the wrong type, in the raw JSON, before nbformat sees it."""
    if "worksheets" in raw:  # nbformat 3: cells live in worksheets
        sheets = raw["worksheets"] if isinstance(raw["worksheets"], list) else []
        holders = [w for w in sheets if isinstance(w, dict)]
        raw["worksheets"] = holders
    else:
        holders = [raw]
    dropped = stripped = 0
    for holder in holders:
        cells = holder.get("cells", [])
        if not isinstance(cells, list):
            raise UnreadableNotebook("its 'cells' field is not a list")
        kept = []
        for cell in cells:
            if not isinstance(cell, dict) or cell.get("cell_type") not in CELL_TYPES + ("heading",):
                dropped += 1
                continue
            source = cell.get("source", cell.get("input", ""))
            if isinstance(source, list) and all(isinstance(s, str) for s in source):
                source = "".join(source)
            if not isinstance(source, str):
                source = ""
                stripped += 1
            cell["input" if "input" in cell and "source" not in cell else "source"] = source
            meta = cell.get("metadata")
            if not isinstance(meta, dict):
                cell["metadata"] = meta = {}
            if "nbgrader" in meta and not isinstance(meta["nbgrader"], dict):
                del meta["nbgrader"]
                stripped += 1
            elif isinstance(meta.get("nbgrader"), dict) and not isinstance(meta["nbgrader"].get("grade_id", ""), str):
                del meta["nbgrader"]
                stripped += 1
            if cell["cell_type"] == "code":
                for key in ("outputs", "attachments"):
                    cell.pop(key, None)  # the student's outputs are never used
                cell["outputs"] = []
                if not isinstance(cell.get("execution_count"), (int, type(None))):
                    cell["execution_count"] = None
            kept.append(cell)
        holder["cells"] = kept
    if dropped:
        flags.append(f"{dropped} entr{'y' if dropped == 1 else 'ies'} of its cell list not a notebook cell; ignored")
    if stripped:
        flags.append(f"{stripped} cell(s) with a source or nbgrader metadata of the wrong type; ignored")


def read_submitted(data: bytes) -> tuple[NotebookNode, list[str]]:
    """Parse notebook bytes leniently; returns ``(notebook, flags)``.

    Raises :class:`UnreadableNotebook` (and nothing else) for a file that
    cannot be read as a notebook.
    """
    try:
        return _read_submitted(data)
    except UnreadableNotebook:
        raise
    except RecursionError:
        raise UnreadableNotebook("its JSON is nested too deeply") from None
    except Exception as error:  # noqa: BLE001 - whatever else a hostile file triggers costs this notebook only
        raise UnreadableNotebook(f"not a readable notebook ({type(error).__name__}: {str(error)[:200]})") from None


def _read_submitted(data: bytes) -> tuple[NotebookNode, list[str]]:
    flags: list[str] = []
    if not data.strip():
        raise UnreadableNotebook("the file is empty")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        flags.append("bytes that are not UTF-8 were replaced")
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise UnreadableNotebook(f"not valid JSON ({error})") from None
    if not isinstance(raw, dict) or "nbformat" not in raw:
        raise UnreadableNotebook("JSON, but not a notebook (no 'nbformat' field)")
    major = raw.get("nbformat")
    if not isinstance(raw.get("metadata", {}), dict):
        raw["metadata"] = {}
    _clean_cells(raw, flags)
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as error:  # noqa: BLE001 - nbformat raises many kinds for broken structures
        raise UnreadableNotebook(f"not a readable notebook ({type(error).__name__}: {error})") from None
    if major != 4:
        flags.append(f"converted from nbformat {major}")
    for cell in nb.cells:
        if isinstance(cell.get("source"), list):
            cell.source = "".join(cell.source)
        cell.setdefault("metadata", NotebookNode())
        if not isinstance(cell.get("source"), str):
            cell.source = ""
        if not isinstance(cell.metadata.get("nbgrader", {}), dict):
            del cell.metadata["nbgrader"]
    return nb, flags


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _is_solution(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def _is_parameters(cell) -> bool:
    """The experiment notebooks' parameters cell (tagged ``parameters``; see dnn_course.experiment)."""
    tags = cell.get("metadata", {}).get("tags", [])
    return isinstance(tags, list) and "parameters" in tags


def _norm(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def rebuild(student: NotebookNode, master: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """The student's work placed on the master's cells (see the module docstring).

    Raises :class:`UnreadableNotebook` (and nothing else) if the student's
    notebook cannot be matched at all.
    """
    try:
        return _rebuild(student, master)
    except RecursionError:
        raise UnreadableNotebook("its structure is nested too deeply") from None
    except Exception as error:  # noqa: BLE001 - whatever a hostile file triggers costs this notebook only
        raise UnreadableNotebook(
            f"its cells could not be matched to the released notebook ({type(error).__name__}: {str(error)[:200]})"
        ) from None


def _rebuild(student: NotebookNode, master: NotebookNode) -> tuple[NotebookNode, list[str]]:
    flags: list[str] = []
    master_ids = {gid: i for i, c in enumerate(master.cells) if (gid := _grade_id(c))}
    match: dict[int, int] = {}  # master index -> student index
    used: set[int] = set()
    # 1. by grade_id, first occurrence wins
    duplicates = 0
    for s_index, cell in enumerate(student.cells):
        gid = _grade_id(cell)
        if gid in master_ids:
            if master_ids[gid] in match:
                duplicates += 1
            else:
                match[master_ids[gid]] = s_index
                used.add(s_index)
    if duplicates:
        flags.append(f"{duplicates} duplicated cell(s) ignored")
    # 2. unchanged cells by their text
    by_text: dict[str, list[int]] = {}
    for m_index, cell in enumerate(master.cells):
        if m_index not in match:
            by_text.setdefault(_norm(cell.source), []).append(m_index)
    for s_index, cell in enumerate(student.cells):
        if s_index in used:
            continue
        options = by_text.get(_norm(cell.source))
        if options and _norm(cell.source):
            match[options.pop(0)] = s_index
            used.add(s_index)
    # 3. answers whose metadata was lost: the student's cell between the same neighbours
    repaired = 0
    for m_index, cell in enumerate(master.cells):
        if m_index in match or not _is_solution(cell):
            continue
        before = [match[i] for i in range(m_index) if i in match]
        after = [match[i] for i in range(m_index + 1, len(master.cells)) if i in match]
        low = max(before, default=-1)
        high = min([a for a in after if a > low], default=len(student.cells))
        for s_index in range(low + 1, high):
            if s_index not in used and student.cells[s_index].cell_type == cell.cell_type:
                match[m_index] = s_index
                used.add(s_index)
                repaired += 1
                break
    if repaired:
        flags.append(f"{repaired} answer cell(s) found without their nbgrader metadata")
    # 4. assemble in the master's order
    first_code = next((i for i, c in enumerate(master.cells) if c.cell_type == "code"), 0)
    fixed_ids = {gid for gid, i in master_ids.items() if not _is_solution(master.cells[i])}
    fixed_texts = {_norm(c.source) for c in master.cells if not _is_solution(c)}
    extras: dict[int, list[NotebookNode]] = {}
    student_to_master = {s: m for m, s in match.items()}
    anchor = first_code
    for s_index, cell in enumerate(student.cells):
        if s_index in student_to_master:
            anchor = max(student_to_master[s_index], first_code)
        elif _grade_id(cell) in fixed_ids or _norm(cell.source) in fixed_texts:
            continue  # a second copy of a read-only or test cell: the master's copy runs
        elif _is_parameters(cell) and any(_is_parameters(c) for c in master.cells):
            continue  # the student's parameters (SMOKE_TEST, ...): grading sets its own mode
        elif cell.cell_type == "code" and cell.source.strip():
            extra = nbformat.v4.new_code_cell(cell.source)
            extras.setdefault(anchor, []).append(extra)
    restored = 0
    cells = []
    for m_index, master_cell in enumerate(master.cells):
        new = copy.deepcopy(master_cell)
        if m_index in match and _is_solution(master_cell):
            new.source = student.cells[match[m_index]].source
        elif master_cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") and (
            m_index not in match
            or _norm(student.cells[match[m_index]].source) != _norm(master_cell.source)
            or student.cells[match[m_index]].cell_type != master_cell.cell_type
        ):
            restored += 1
        if new.cell_type == "code":
            new.outputs, new.execution_count = [], None
        cells.append(new)
        cells.extend(extras.get(m_index, []))
    if restored:
        flags.append(f"{restored} read-only or test cell(s) missing or changed; restored from the master")
    added = sum(len(v) for v in extras.values())
    if added:
        flags.append(f"{added} added code cell(s) kept")
    out = copy.deepcopy(master)
    out.cells = cells
    return out, flags


def cell_label(cell, index: int) -> str:
    """How the grader names a cell in flags: its grade id, or its 1-based position."""
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell-{index + 1}"


def add_probes(nb: NotebookNode, token: str) -> NotebookNode:
    """A copy of ``nb`` with the snapshot cell first and a check after every code cell and at the end."""
    out = copy.deepcopy(nb)
    setup = [
        c.source
        for c in nb.cells
        if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("locked") and not _is_solution(c)
    ]
    bindings, roots = tamper_probe.module_bindings(setup), tamper_probe.trusted_roots()
    cells = [nbformat.v4.new_code_cell(tamper_probe.snapshot_source())]
    for index, cell in enumerate(nb.cells):
        cells.append(cell)
        if cell.cell_type == "code":
            cells.append(
                nbformat.v4.new_code_cell(tamper_probe.check_source(token, cell_label(cell, index), bindings, roots))
            )
    cells.append(nbformat.v4.new_code_cell(tamper_probe.check_source(token, "end", bindings, roots)))
    out.cells = cells
    return out


def remove_probes(nb: NotebookNode) -> NotebookNode:
    out = copy.deepcopy(nb)
    out.cells = [c for c in nb.cells if not (c.cell_type == "code" and tamper_probe.is_probe(c.source))]
    return out
