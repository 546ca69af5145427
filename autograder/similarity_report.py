"""The similarity report: ``OUT/similarity.html`` (pairs side by side) and ``OUT/similarity.csv`` (every pair).

The pairs come from :mod:`autograder.similarity`. The page is offline (no script, font or style from
the network): the flagged pairs first, then the most similar others, each with both students' code and
written answers side by side and the shared regions marked; :func:`report_section` is the class
report's paragraph that links to it.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path

import numpy as np
from copydetect.utils import highlight_overlap

from dnn_course.atomic_write import write_atomically

from .layout import OutputLayout
from .similarity import MIN_RUN, MIN_SHARED_CODE, MIN_SHARED_WORDS, WORD, Pair, analyse

SHOWN_PAIRS = 20  # pairs shown side by side besides the flagged ones


CSV_HEADER = [
    "student_a",
    "student_b",
    "code_a",
    "code_b",
    "code_shared_chars",
    "written_answers",
    "written_shared_words",
    "identical_models",
    "flagged",
    "reasons",
]


def csv_text(pairs: list[Pair]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for p in pairs:
        writer.writerow(
            [
                p.a,
                p.b,
                f"{p.code_a:.3f}",
                f"{p.code_b:.3f}",
                p.code_shared,
                f"{p.text:.3f}",
                p.text_shared,
                " ".join(f"{x}={y}" for x, y in p.models),
                "yes" if p.flagged else "",
                "; ".join(p.reasons),
            ]
        )
    return text.getvalue()


def _marked_code(code: str, slices: np.ndarray) -> str:
    if not slices.size:
        return html.escape(code)
    return highlight_overlap(code, slices, "<mark>", "</mark>", escape_html=True)[0]


def _marked_words(text: str, blocks: list, side: int) -> str:
    """``text`` with the shared runs (word positions of side 0 or 1 of ``blocks``) marked."""
    spans = list(WORD.finditer(text))
    marked = set()
    for m in blocks:
        start = m.a if side == 0 else m.b
        marked.update(range(start, start + m.size))
    out, last, open_ = [], 0, False
    for index, span in enumerate(spans):
        inside = index in marked
        gap = html.escape(text[last : span.start()])
        if open_ and not inside:
            out.append("</mark>")
            open_ = False
        out.append(gap)
        if inside and not open_:
            out.append("<mark>")
            open_ = True
        out.append(html.escape(span.group()))
        last = span.end()
    out.append("</mark>" if open_ else "")
    out.append(html.escape(text[last:]))
    return "".join(out)


def _pair_section(p: Pair) -> str:
    esc = html.escape
    code_a, code_b = p.detail["code"]
    slices_a, slices_b = p.detail["slices"]
    parts = [
        f"<h3 id='{esc(p.a)}-{esc(p.b)}'>{esc(p.a)} and {esc(p.b)}</h3>",
        f"<p>{esc(p.verdict())}. Code: {p.code_a:.0%} of {esc(p.a)}'s "
        f"in {esc(p.b)}'s, {p.code_b:.0%} of {esc(p.b)}'s in {esc(p.a)}'s. Written answers: {p.text:.0%}."
        + (
            " Identical model files: " + esc(", ".join(f"{x} = {y}" if x != y else x for x, y in p.models))
            if p.models
            else ""
        )
        + "</p>",
    ]
    if p.code_shared:
        parts.append(
            f"<div class='side'><pre>{_marked_code(code_a, slices_a)}</pre>"
            f"<pre>{_marked_code(code_b, slices_b)}</pre></div>"
        )
    answers_a, answers_b = p.detail["answers"]
    for key, blocks in p.detail["runs"].items():
        parts.append(
            f"<p><b>{esc(key)}</b></p><div class='side'><div class='text'>"
            f"{_marked_words(answers_a[key], blocks, 0)}</div><div class='text'>"
            f"{_marked_words(answers_b[key], blocks, 1)}</div></div>"
        )
    return "\n".join(parts)


def page_html(pairs: list[Pair], threshold: float, students: int) -> str:
    esc = html.escape
    flagged = [p for p in pairs if p.flagged]
    shown = flagged + [p for p in pairs if not p.flagged and (p.score > 0 or p.models)][:SHOWN_PAIRS]
    rows = "".join(
        f"<tr class='{'flag' if p.flagged else ''}'><td><a href='#{esc(p.a)}-{esc(p.b)}'>{esc(p.a)} &amp; {esc(p.b)}"
        f"</a></td><td>{p.code_a:.0%} / {p.code_b:.0%}</td><td>{p.code_shared}</td><td>{p.text:.0%}</td>"
        f"<td>{esc(', '.join(x if x == y else f'{x} = {y}' for x, y in p.models))}</td>"
        f"<td>{esc(p.verdict() if p.flagged or p.score else '')}</td></tr>"
        for p in shown
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Similarity report</title>
<style>body{{font-family:sans-serif;max-width:110em;margin:2em auto;padding:0 1em}}
td,th{{padding:.2em .6em;vertical-align:top;text-align:left}}tr.flag{{background:#fde2e2}}
.side{{display:grid;grid-template-columns:1fr 1fr;gap:1em}}
td:nth-child(-n+4){{white-space:nowrap}}
pre,.text{{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:85%;white-space:pre-wrap}}.text{{white-space:normal}}
mark{{background:#ffd54f}}</style></head><body>
<h1>Similarity report</h1>
<p>{students} students, {len(pairs)} pairs compared. <b>{len(flagged)} pair(s) at or above the threshold
{threshold:.0%}</b> (<code>--similarity-threshold</code>). Code: the answers of notebooks 01-04, names,
comments, strings and layout ignored, the released notebooks' code never counted; a score is the share of
one student's code found in the other's. Written answers: the share of one student's words in runs of
{MIN_RUN} or more words that the other wrote too. Saved models: identical bytes, whatever the name;
06's model is trained on the student's own choices, so an identical one flags; 05's runs use the brief's
fixed settings and seed, so identical code gives an identical file honestly: listed, not flagged alone.
A flag also needs {MIN_SHARED_CODE} characters of tokenized code (about four lines) or {MIN_SHARED_WORDS} words
in common: the short answer every correct student writes the same way never flags.
Highlighted: the shared regions. Every pair is in <a href="similarity.csv">similarity.csv</a>.
A flag is a reason to look, not a finding.</p>
<table><tr><th>pair</th><th>code</th><th>code in common (characters)</th><th>written answers</th>
<th>identical models</th><th>flag</th></tr>
{rows}</table>
{"".join(_pair_section(p) for p in shown)}
</body></html>
"""


def write(out: Path, course: Path, assignment: str, students: list[str], threshold: float) -> list[Pair]:
    """Write ``OUT/similarity.csv`` and ``OUT/similarity.html``; return the pairs, most similar first."""
    layout = OutputLayout(out)
    pairs = analyse(course, assignment, students, threshold)
    write_atomically(layout.similarity_csv, csv_text(pairs))
    write_atomically(layout.similarity_html, page_html(pairs, threshold, len(students)))
    return pairs


def flagged_pairs(out: Path) -> list[dict]:
    """The flagged rows of ``OUT/similarity.csv`` (none if it is missing)."""
    try:
        with open(OutputLayout(out).similarity_csv, newline="", encoding="utf-8") as handle:
            return [row for row in csv.DictReader(handle) if row["flagged"]]
    except OSError:
        return []


def report_section(out: Path) -> str:
    """The class report's paragraph: flagged pairs and a link to the page."""
    if not OutputLayout(out).similarity_html.exists():
        return ""
    rows = flagged_pairs(out)
    esc = html.escape
    items = "".join(
        f"<li><a href='similarity.html#{esc(r['student_a'])}-{esc(r['student_b'])}'>"
        f"{esc(r['student_a'])} and {esc(r['student_b'])}</a>: {esc(r['reasons'])}</li>"
        for r in rows
    )
    return (
        f"<h2>Similarity</h2><p>{len(rows)} pair(s) of submissions flagged as alike; "
        f"<a href='similarity.html'>the similarity report</a> shows them side by side.</p><ul>{items}</ul>"
    )
