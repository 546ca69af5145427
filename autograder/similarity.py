"""Copied work: how alike every two students' submissions are.

Three kinds of evidence, compared for every pair of students of the class:

* **Code**: the answer cells of notebooks 01-04 (and code cells a student
  added there), less every line of the released notebooks (compared as
  tokens, so however spaced or renamed), fingerprinted the way MOSS does: `copydetect`_'s tokenizer
  turns every name into ``V`` and drops comments, strings and layout, so a
  renamed and reformatted copy keeps its fingerprints; k-grams of the tokens
  are winnowed; any k-gram of the released notebooks (stubs, docstrings,
  given code) is boilerplate and never counts. A pair's code score is the
  larger of the two shares of a student's fingerprinted code found in the
  other's. Only stable hashes are used (not Python's salted ``hash``), so two
  runs give the same scores.
* **Written answers** (the cells graded by hand): lower-cased words;
  the share of a student's words that lie in runs of at least
  :data:`MIN_RUN` words also in the other's answer to the same question
  (one linear pass, see shared_runs); the larger share over both students and both questions.
* **Saved models** (``*.npz``): identical bytes, whatever the file is called
  (SHA-256).

A pair is flagged when its code or written-answer score reaches the threshold
(``--similarity-threshold``) with at least :data:`MIN_SHARED_CODE` characters of
tokenized code or :data:`MIN_SHARED_WORDS` words in common (the short answer every
correct student writes alike is far less), or when it shares a saved model trained on the
student's own configuration (06's ``fashion_model.npz``; notebook 05's runs
use the brief's fixed settings and seed, so students whose code computes the
same numbers get the same file honestly: listed, never flagged alone).

Reads only what the collector wrote (``course/submitted/<id>/<assignment>/``,
capped and link-free there) and the released notebooks, through
:func:`read_capped` (no link followed, size capped); nothing is executed, and a
student's code and each written answer are cut at :data:`MAX_CODE_CHARS` and
:data:`MAX_ANSWER_CHARS` so that no submission can make the comparison slow.
:mod:`autograder.similarity_report` writes the page and the CSV.

.. _copydetect: https://pypi.org/project/copydetect/
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import itertools
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
from copydetect.utils import filter_code, find_fingerprint_overlap, get_copied_slices, get_token_coverage, winnow
from pygments.lexers import PythonLexer
from pygments.token import Token

from dnn_course.assignment import ASSIGNMENT

from . import rebuild
from .grading_settings import DATA_FILES, MAX_NOTEBOOK_BYTES
from .layout import CourseLayout

#: Notebooks whose code is compared: those the reference implementation is made of (their numbers).
CODE_NOTEBOOKS = tuple(name[:2] for name in ASSIGNMENT.reference_notebooks)
K = 25  # k-gram length, in characters of tokenized code (copydetect's noise threshold)
WINDOW = 6  # winnowing window: any match of K + WINDOW - 1 characters is always seen
MIN_RUN = 8  # words in a row that count as shared text
MIN_SHARED_CODE = 100  # characters of tokenized code (about four lines) a code flag needs at least
MIN_SHARED_WORDS = 25  # shared words a written-answer flag needs at least
DEFAULT_THRESHOLD = 0.5  # see autograder/README.md: measured on the rehearsal cohort
OWN_CONFIGURATION_MODELS = ("fashion_model.npz",)
MAX_CODE_CHARS = 100_000  # a student's own code (the reference answers of 01-04: about 5,000)
MAX_ANSWER_CHARS = 20_000  # one written answer
MAX_GIVEN_LINE = 400  # a longer line is never one of the released notebooks'


def read_capped(path: Path, cap: int) -> bytes | None:
    """The bytes of a regular file, or None (missing, a link, not a file, larger than ``cap``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > cap:
            return None
        data = handle.read(cap + 1)
    return data if len(data) <= cap else None


@dataclass
class Work:
    """One student's comparable work."""

    student_id: str
    code: str = ""  # 01-04 answers joined, a comment before each
    answers: dict = field(default_factory=dict)  # "notebook/grade_id" -> the written answer
    models: dict = field(default_factory=dict)  # file name -> SHA-256 of its bytes


@functools.lru_cache(maxsize=65536)
def _line_key(line: str) -> str:
    """A line as tokenized code: a given line is recognised however it is spaced, commented or renamed."""
    return tokens(line.strip())[0]


@functools.cache
def _released(release: Path, name: str) -> tuple[nbformat.NotebookNode, frozenset[str], frozenset]:
    """The released notebook ``name`` (read once per run, not per student; ``rebuild.rebuild`` copies it),
    its cells' sources (the stubs) and the keys of its given code lines."""
    master = nbformat.read(release / name, as_version=4)
    stubs = frozenset(c.source for c in master.cells)
    given = frozenset(
        _line_key(line)
        for c in master.cells
        if c.cell_type == "code"
        for line in c.source.splitlines()
        if len(line) <= MAX_GIVEN_LINE
    )
    return master, stubs, given


def read_work(student_id: str, folder: Path, release: Path, notebooks: list[str]) -> Work:
    """What :func:`compare` needs from one student's collected files (unreadable parts are left out)."""
    work = Work(student_id)
    pieces = []
    for name in notebooks:
        data = read_capped(folder / name, MAX_NOTEBOOK_BYTES)
        if data is None:
            continue
        master, stubs, given = _released(release, name)
        try:
            rebuilt, _ = rebuild.rebuild(rebuild.read_submitted(data)[0], master)
        except rebuild.UnreadableNotebook:
            continue
        for index, cell in enumerate(rebuilt.cells):
            label = rebuild.cell_label(cell, index)
            is_answer = cell.get("metadata", {}).get("nbgrader", {}).get("solution")
            added = not cell.get("metadata", {}).get("nbgrader") and cell.source not in stubs
            if cell.cell_type == "code" and name[:2] in CODE_NOTEBOOKS and (is_answer or added):
                own = [
                    line
                    for line in cell.source[:MAX_CODE_CHARS].splitlines()
                    if len(line) > MAX_GIVEN_LINE or _line_key(line) not in given
                ]
                if any(line.strip() for line in own):
                    pieces.append(f"# ---- {name}: {label}\n" + "\n".join(own).strip("\n") + "\n")
            elif cell.cell_type == "markdown" and is_answer and cell.source not in stubs:
                work.answers[f"{name}/{label}"] = cell.source[:MAX_ANSWER_CHARS]
    work.code = "\n".join(pieces)[:MAX_CODE_CHARS]
    for name in sorted(DATA_FILES):
        if name.endswith(".npz"):
            data = read_capped(folder / name, DATA_FILES[name])
            if data is not None:
                work.models[name] = hashlib.sha256(data).hexdigest()
    return work


# ------------------------------------------------------------------------------------------ code
def _kgram_hashes(text: str, k: int) -> np.ndarray:
    """A stable 63-bit hash of every k-gram (Python's ``hash`` changes between processes)."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(text[i : i + k].encode(), digest_size=8).digest(), "big") >> 1
            for i in range(len(text) - k + 1)
        ],
        dtype=np.int64,
    )


@dataclass
class Fingerprint:
    raw: str
    filtered: str
    offsets: np.ndarray
    hashes: set
    where: dict  # hash -> positions in the filtered code
    coverage: float  # characters of filtered code the fingerprints cover


def tokens(code: str) -> tuple[str, np.ndarray]:
    """copydetect's tokenized code (names ``V``/``F``/``O``, strings ``S``, no comments or layout) and offsets.

    Docstrings are blanked first (same length, so the offsets still point into ``code``): the
    released stubs carry them and students delete them, which must not make the stubs' code theirs.
    """
    chars = list(code)
    for index, kind, value in PythonLexer().get_tokens_unprocessed(code):
        if kind in Token.Literal.String.Doc:
            chars[index : index + len(value)] = [c if c == "\n" else " " for c in value]
    return filter_code("".join(chars), "answers.py", "python")


def fingerprint(code: str, boilerplate: set) -> Fingerprint:
    filtered, offsets = tokens(code)
    hashes, where = set(), {}
    if len(filtered) >= K:
        selected, positions = winnow(_kgram_hashes(filtered, K), WINDOW, remove_duplicates=False)
        for value, position in zip(selected.tolist(), positions.tolist(), strict=False):
            if value not in boilerplate:
                hashes.add(value)
                where.setdefault(value, []).append(position)
    coverage = get_token_coverage(where, K, len(filtered)) if where else 0.0
    return Fingerprint(code, filtered, offsets, hashes, where, coverage)


def boilerplate_hashes(release: Path, notebooks: list[str]) -> set:
    """Every k-gram hash of the released notebooks' code cells (stubs and given code)."""
    values: set = set()
    for name in notebooks:
        if name[:2] in CODE_NOTEBOOKS:
            nb = nbformat.read(release / name, as_version=4)
            for cell in nb.cells:
                if cell.cell_type == "code":
                    filtered, _ = tokens(cell.source)
                    if len(filtered) >= K:
                        values.update(_kgram_hashes(filtered, K).tolist())
    return values


def _raw_slices(fp: Fingerprint, positions) -> np.ndarray:
    """Copied regions of the filtered code, as slices of the raw code."""
    slices = get_copied_slices(np.asarray(positions, dtype=np.int64), K).astype(np.int64)
    if slices.size and len(fp.offsets):
        slices += fp.offsets[:, 1][np.clip(np.searchsorted(fp.offsets[:, 0], slices), 0, len(fp.offsets) - 1)]
    return slices


def compare_code(a: Fingerprint, b: Fingerprint) -> tuple[float, float, int, np.ndarray, np.ndarray]:
    """(share of a's code in b, share of b's in a, shared characters, a's slices, b's slices)."""
    pos_a, pos_b = find_fingerprint_overlap(a.hashes, b.hashes, a.where, b.where)
    if len(pos_a) == 0:
        return 0.0, 0.0, 0, np.zeros((2, 0), np.int64), np.zeros((2, 0), np.int64)
    plain_a = get_copied_slices(np.asarray(pos_a, dtype=np.int64), K)
    plain_b = get_copied_slices(np.asarray(pos_b, dtype=np.int64), K)
    shared_a, shared_b = int(np.sum(plain_a[1] - plain_a[0])), int(np.sum(plain_b[1] - plain_b[0]))
    return (
        min(shared_a / a.coverage, 1.0),
        min(shared_b / b.coverage, 1.0),
        min(shared_a, shared_b),
        _raw_slices(a, pos_a),
        _raw_slices(b, pos_b),
    )


# ----------------------------------------------------------------------------------------- text
WORD = re.compile(r"\w+(?:[.'’-]\w+)*")  # a word of a written answer (0.25, tanh's, zero-centred)


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def shared_runs(a: list[str], b: list[str]) -> list[difflib.Match]:
    """Runs of at least MIN_RUN words in a row found in both, as ``Match(a, b, size)``.

    Linear in the words: ``a`` is walked once; where its next MIN_RUN words stand somewhere in
    ``b`` (a dictionary of b's MIN_RUN-word windows), the run is extended as far as both agree and
    the walk goes on after it. (difflib's matcher without its junk heuristic was roughly cubic on
    repeated words: two answers of 1,000 repeated words took 37 s, 10,000 would take hours.)
    The runs do not overlap in ``a``; two of them may share words of ``b``.
    """
    first_in_b: dict[tuple[str, ...], int] = {}
    for j in range(len(b) - MIN_RUN + 1):
        first_in_b.setdefault(tuple(b[j : j + MIN_RUN]), j)
    runs, i = [], 0
    while i <= len(a) - MIN_RUN:
        j = first_in_b.get(tuple(a[i : i + MIN_RUN]))
        if j is None:
            i += 1
            continue
        size = MIN_RUN
        while i + size < len(a) and j + size < len(b) and a[i + size] == b[j + size]:
            size += 1
        runs.append(difflib.Match(i, j, size))
        i += size
    return runs


def compare_text(a: dict, b: dict) -> tuple[float, int, dict]:
    """(the larger share of one student's written words shared with the other, shared words, runs per question)."""
    best, total, runs = 0.0, 0, {}
    for key in sorted(set(a) & set(b)):
        wa, wb = words(a[key]), words(b[key])
        if not wa or not wb:
            continue
        blocks = shared_runs(wa, wb)
        if blocks:
            runs[key] = blocks
            shared = sum(m.size for m in blocks)
            total += shared
            best = max(best, shared / len(wa), min(shared / len(wb), 1.0))
    return best, total, runs


# ---------------------------------------------------------------------------------------- pairs
@dataclass
class Pair:
    a: str
    b: str
    code_a: float = 0.0  # share of a's fingerprinted code also in b's
    code_b: float = 0.0
    code_shared: int = 0  # characters of tokenized code in shared regions
    text: float = 0.0
    text_shared: int = 0  # words in shared runs
    models: list = field(default_factory=list)  # (a's file, b's file) with identical bytes
    reasons: list = field(default_factory=list)
    threshold: float = DEFAULT_THRESHOLD
    detail: dict = field(default_factory=dict, repr=False)

    @property
    def code(self) -> float:
        return max(self.code_a, self.code_b)

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)

    @property
    def score(self) -> float:
        """For ordering: the larger score, scaled down when less is shared than a flag needs."""
        return max(
            self.code * min(1.0, self.code_shared / MIN_SHARED_CODE),
            self.text * min(1.0, self.text_shared / MIN_SHARED_WORDS),
        )

    def verdict(self) -> str:
        """Why the pair is flagged, or why not."""
        if self.reasons:
            return "; ".join(self.reasons)
        short = [
            f"{what} alike but only {n} {unit} in common (a flag needs {need})"
            for what, score, n, unit, need in (
                ("code", self.code, self.code_shared, "characters of code", MIN_SHARED_CODE),
                ("written answers", self.text, self.text_shared, "words", MIN_SHARED_WORDS),
            )
            if score >= self.threshold and n < need
        ]
        return "; ".join(short) or "below the threshold"


def compare(works: list[Work], boilerplate: set, threshold: float) -> list[Pair]:
    """Every pair of students, most similar first."""
    prints = {w.student_id: fingerprint(w.code, boilerplate) for w in works}
    pairs = []
    for wa, wb in itertools.combinations(sorted(works, key=lambda w: w.student_id), 2):
        pair = Pair(wa.student_id, wb.student_id, threshold=threshold)
        fa, fb = prints[wa.student_id], prints[wb.student_id]
        pair.code_a, pair.code_b, pair.code_shared, slices_a, slices_b = compare_code(fa, fb)
        pair.text, pair.text_shared, runs = compare_text(wa.answers, wb.answers)
        pair.models = sorted((na, nb) for na, ha in wa.models.items() for nb, hb in wb.models.items() if ha == hb)
        if pair.code >= threshold and pair.code_shared >= MIN_SHARED_CODE:
            pair.reasons.append(f"code {pair.code:.0%} alike")
        if pair.text >= threshold and pair.text_shared >= MIN_SHARED_WORDS:
            pair.reasons.append(f"written answers {pair.text:.0%} alike")
        own = [
            f"{na}" + (f" = {nb}" if nb != na else "")
            for na, nb in pair.models
            if na in OWN_CONFIGURATION_MODELS or nb in OWN_CONFIGURATION_MODELS
        ]
        if own:
            pair.reasons.append("identical saved model " + ", ".join(own))
        pair.detail = {
            "slices": (slices_a, slices_b),
            "runs": runs,
            "code": (wa.code, wb.code),
            "answers": (wa.answers, wb.answers),
        }
        pairs.append(pair)
    pairs.sort(key=lambda p: (not p.flagged, -p.score, -len(p.models), p.a, p.b))
    return pairs


def analyse(course: Path, assignment: str, students: list[str], threshold: float) -> list[Pair]:
    """Read every student's collected files under ``course`` and compare them."""
    release = CourseLayout(course).release_dir(assignment)
    notebooks = sorted(p.name for p in release.glob("*.ipynb"))
    works = [
        read_work(sid, CourseLayout(course).submitted_dir(sid, assignment), release, notebooks) for sid in students
    ]
    return compare(works, boilerplate_hashes(release, notebooks), threshold)
