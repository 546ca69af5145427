"""Sample submissions for the autograder, generated from the course's notebooks.

A *perfect student* is the released notebook with every answer cell filled
from the solution (markers removed, hidden tests never included). Every other
sample is a mutation of it or of the blank release. :func:`write_zip` packs
notebooks the way the LMS download does (``DNN_HW2_<Name>_<ID>.zip``).
"""
from __future__ import annotations

import copy
import json
import re
import zipfile
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "dnn_hw"


def _solution_text(source: str) -> str:
    """A solution cell's source as a student would write it (no markers)."""
    out, inside = [], False
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
            continue
        out.append(line)
    return "\n".join(out)


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def released(release_dir: Path) -> dict[str, nbformat.NotebookNode]:
    return {p.name: nbformat.read(p, as_version=4) for p in sorted(release_dir.glob("*.ipynb"))}


def perfect(release_dir: Path, source_dir: Path) -> dict[str, nbformat.NotebookNode]:
    """The released notebooks with every answer taken from the solution."""
    out = {}
    for name, nb in released(release_dir).items():
        source = nbformat.read(source_dir / name, as_version=4)
        answers = {grade_id(c): c.source for c in source.cells
                   if c.metadata.get("nbgrader", {}).get("solution")}
        nb = copy.deepcopy(nb)
        for cell in nb.cells:
            if grade_id(cell) in answers:
                cell.source = _solution_text(answers[grade_id(cell)])
        out[name] = nb
    return out


def set_answer(nb, gid: str, source: str):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if grade_id(cell) == gid:
            cell.source = source
            return nb
    raise KeyError(gid)


def answer(nb, gid: str) -> str:
    return next(c.source for c in nb.cells if grade_id(c) == gid)


def replace_in_answer(nb, gid: str, old: str, new: str):
    text = answer(nb, gid)
    if old not in text:
        raise ValueError(f"{old!r} not in the answer {gid}")
    return set_answer(nb, gid, text.replace(old, new, 1))


def insert_cell(nb, index: int, source: str):
    nb = copy.deepcopy(nb)
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    return nb


def after(nb, gid: str) -> int:
    """Index just after the cell ``gid``."""
    return next(i for i, c in enumerate(nb.cells) if grade_id(c) == gid) + 1


def dumps(nb) -> bytes:
    return nbformat.writes(nb).encode("utf-8")


def write_zip(folder: Path, stem: str, files: dict[str, bytes], prefix: str = "",
              date_time=(2026, 11, 20, 12, 0, 0)) -> Path:
    """A zip ``folder/stem.zip`` holding ``files`` under ``prefix`` (deterministic bytes)."""
    path = folder / f"{stem}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(prefix + name, date_time=date_time)
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name])
    return path
