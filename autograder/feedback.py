"""Feedback for students: each test's result and message, never hidden test code.

:class:`HideTestCode` is added to nbgrader's ``generate_feedback``: hidden
test regions leave the test cells (nbgrader's autograde put them back to run
them), error tracebacks, which quote the failing source line, shrink to
their message, and every output is scanned for the notebook's hidden test
lines. :func:`write_summary` writes the one-page summary of a student from the
grading result.

The rule: **nothing the grader writes for a student or the class contains a
line of a hidden test**, whatever route it came by (``print(In)``, an
exception message built with ``linecache`` or ``inspect``, a printed frame).
A :class:`Redactor` knows the hidden lines (the secret lines of the source
notebooks' hidden-test regions by the course's one line policy,
:mod:`dnn_course.secret_lines`: normalised, long enough, not also visible in the
released notebooks) and replaces them in every text: each output before
nbgrader renders it, each message and flag of the result files, the class
report. A rendered page in which a hidden line still shows (split by markup)
is replaced as a whole by a note.
"""

from __future__ import annotations

import functools
import html
import json
import re
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

from dnn_course import nbgrader_regions, secret_lines
from dnn_course.atomic_write import write_atomically
from dnn_course.nbgrader_regions import HIDDEN_TEST

from .layout import OutputLayout

HIDDEN_NOTE = "# (hidden tests run here; their code is not shown)"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: What a hidden test line is replaced by.
REDACTED = "[hidden test code]"


class Redactor:
    """Finds and replaces the hidden test lines (:class:`~dnn_course.secret_lines.SecretLine`) in any text the
    grader writes."""

    def __init__(self, hidden_lines):
        self.secret = list(hidden_lines)
        #: Each hidden line as written and normalised, longest first (a line inside a longer one goes last).
        self.lines = sorted(
            {form for line in self.secret for form in (line.text, line.key)}, key=lambda line: (-len(line), line)
        )
        self._forms = []
        for line in self.lines:  # as printed, in a repr, in JSON, HTML-escaped
            forms = {
                line,
                line.replace("\\", "\\\\"),
                line.replace("'", "\\'"),
                line.replace('"', '\\"'),
                json.dumps(line)[1:-1],
                html.escape(line),
                html.escape(line, quote=False),
                html.escape(line).replace("&#x27;", "&#39;").replace("&quot;", "&#34;"),
            }
            self._forms.extend(sorted(forms, key=lambda f: (-len(f), f)))

    @classmethod
    def from_cells(cls, cells, shown_cells=()) -> Redactor:
        """The hidden lines of ``cells`` (:class:`~dnn_course.nbgrader_regions.Cell`), minus what ``shown_cells``
        show."""
        return cls(secret_lines.secret_lines_of(cells, shown_cells, kinds=(HIDDEN_TEST,)))

    @classmethod
    def from_notebooks(cls, source_dir: Path, release_dir: Path | None = None) -> Redactor:
        """The hidden lines of every source notebook of ``source_dir``, minus what ``release_dir`` shows."""
        return cls(secret_lines.secret_lines(source_dir, release_dir, kinds=(HIDDEN_TEST,)))

    def __bool__(self) -> bool:
        return bool(self.lines)

    def text(self, value: str) -> str:
        """``value`` with every hidden line replaced."""
        if not self.lines or not value:
            return value
        for form in self._forms:
            if form in value:
                value = value.replace(form, REDACTED)
        return value

    def data(self, value):
        """Every string inside ``value`` (dicts, lists) redacted; a new object."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        return value

    def leaks(self, page: str) -> list[str]:
        """Hidden lines still readable in an HTML page once its markup is removed (whitespace normalised)."""
        if not self.lines:
            return []
        plain = secret_lines.normalise_line(html.unescape(re.sub(r"<[^>]+>", "", page)))
        return [
            line.key
            for line in self.secret
            if any(
                form in plain
                for form in (
                    line.key,
                    line.key.replace("'", "\\'"),
                    line.key.replace('"', '\\"'),
                    json.dumps(line.key)[1:-1],
                )
            )
        ]

    def page(self, page: str, what: str) -> str:
        """``page`` (HTML) redacted; replaced by a note if a hidden line still shows."""
        page = self.text(page)
        if self.leaks(page):
            esc = html.escape
            return (
                f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(what)}</title>'
                f"</head><body><h1>{esc(what)}</h1><p>This page is not shown: an output quoted the code of "
                f"the hidden tests. The results are on your summary page.</p></body></html>\n"
            )
        return page


def strip_hidden(source: str) -> str:
    """``source`` without its hidden-test regions, a note (:data:`HIDDEN_NOTE`) where each was."""
    return nbgrader_regions.outside_regions(source, kinds=(HIDDEN_TEST,), note=HIDDEN_NOTE)


def error_message(output) -> str:
    """``Name: message`` of an error output, without ANSI colours or traceback."""
    return ANSI.sub("", f"{output.get('ename', 'Error')}: {output.get('evalue', '')}").strip()


class HideTestCode(NbGraderPreprocessor):
    """Remove hidden tests from cell sources, tracebacks from error outputs, hidden lines from every output."""

    _redactor: Redactor | None = None

    def preprocess(self, nb, resources):
        cells = [
            nbgrader_regions.Cell("", index, cell.cell_type, cell.source, {}) for index, cell in enumerate(nb.cells)
        ]
        self._redactor = Redactor.from_cells(cells)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        redactor = self._redactor or Redactor([])
        if cell.cell_type == "code":
            cell.source = strip_hidden(cell.source)
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["evalue"] = redactor.text(str(output.get("evalue", "")))
                    output["traceback"] = [error_message(output)]
                if "text" in output:
                    output["text"] = redactor.text(
                        "".join(output["text"]) if isinstance(output["text"], list) else str(output["text"])
                    )
                if isinstance(output.get("data"), dict):
                    output["data"] = {k: redactor.data(v) for k, v in output["data"].items()}
        else:
            cell.source = redactor.text(cell.source)
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta.get("grade"):  # a written answer: its score is not known yet
            meta["comment"] = "\n\n".join(text for text in (meta.get("comment") or "", HAND_GRADED_NOTE) if text)
        return cell, resources


#: Said under every written answer of the per-notebook pages (made before the instructor grades).
HAND_GRADED_NOTE = (
    "Graded by hand. This page was made when your notebook was graded automatically, before the "
    "instructor read this answer, so its score shows 0 here; your summary page shows its points "
    "once they are in."
)


def _fmt(value) -> str:
    return "" if value is None else f"{value:g}"


#: The MathJax the course site uses (``_config.yml``: ``mathjax_path``), copied beside the feedback pages.
MATHJAX_SOURCE = Path(__file__).resolve().parent.parent / "book" / "_static" / "mathjax"
#: Template folder listed before nbgrader's: its ``feedback/mathjax.html.j2`` loads that copy instead of a CDN.
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


#: The course's Jupyter Book configuration: ``html.baseurl`` is where the book is published.
BOOK_CONFIG = Path(__file__).resolve().parent.parent / "_config.yml"
#: A notebook's link to a chapter of the book, as nbconvert renders it: ``../../book/<chapter>.md``,
#: which points nowhere from OUT/feedback/<id>/ (the students' kit has its own pages there).
BOOK_LINK = re.compile(r'<a href="(?:\.\./)+book/([\w-]+)\.md(#[^"]*)?"([^>]*)>(.*?)</a>', re.S)


@functools.cache  # read once per grading run, not once per student
def site_url(config: Path = BOOK_CONFIG) -> str:
    """``html.baseurl`` of the book's ``_config.yml``, ending in ``/``; "" if unset (as the kit reads it)."""
    import yaml

    try:
        url = str(((yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("html") or {}).get("baseurl") or "")
    except OSError:
        return ""
    return url.strip().rstrip("/") + "/" if url.strip() else ""


def book_links(page: str, site: str) -> str:
    """``page`` with each link to a book chapter (``../../book/<chapter>.md``) pointing to the published
    chapter, ``<site>book/<chapter>.html``; without a site address the link is dropped and its text kept."""

    def swap(match: re.Match) -> str:
        chapter, anchor, attributes, text = match.group(1), match.group(2) or "", match.group(3), match.group(4)
        if not site:
            return text
        return f'<a href="{html.escape(site)}book/{chapter}.html{anchor}"{attributes}>{text}</a>'

    return BOOK_LINK.sub(swap, page)


def install_mathjax(out: Path) -> Path:
    """Copy the course's MathJax to ``OUT/feedback/mathjax`` (once; files already there are kept)."""
    import shutil

    target = OutputLayout(out).mathjax_dir
    for source in sorted(MATHJAX_SOURCE.rglob("*")):
        if source.is_file():
            copy = target / source.relative_to(MATHJAX_SOURCE)
            if not copy.exists() or copy.stat().st_size != source.stat().st_size:
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, copy)
    return target


def hand_graded_counts(result) -> tuple[int, int, int]:
    """(written answers still without a score, answers scored by the instructor, answers left blank).

    A written answer left as released is scored 0 by nbgrader at once: it has a score,
    so it is not waiting for the instructor (``grades.csv`` does not count it either).
    """
    statuses = [test.status for _, test in result.tests()]
    return statuses.count("manual"), statuses.count("graded by hand"), statuses.count("not answered")


def _hand_graded_note(result) -> str:
    """How far the hand grading of this submission has got, in words."""
    pending, done, blank = hand_graded_counts(result)
    parts = []
    if pending:
        parts.append(
            f"{pending} answer{'s' if pending != 1 else ''} still to be graded by hand; "
            f"{'their' if pending != 1 else 'its'} points will be added by the instructor"
        )
    elif done:
        parts.append("including the answers graded by hand")
    if blank:
        parts.append(f"{blank} written answer{'s' if blank != 1 else ''} left blank: 0 points")
    return "; ".join(parts) or "all tests graded automatically"


def write_summary(out: Path, result) -> Path:
    """Write ``OUT/feedback/<id>.html`` for ``result`` (:class:`autograder.grading_records.StudentResult`),
    linking the notebook pages found in ``OUT/feedback/<id>/``."""
    layout, sid = OutputLayout(out), result.student_id
    pages = sorted(layout.notebook_pages(sid).glob("*.html"))
    links = {page.stem + ".ipynb": f"{sid}/{page.name}" for page in pages}
    return write_atomically(layout.summary_page(sid), student_page(result, links))


def student_page(result, notebook_links: dict[str, str]) -> str:
    """The summary page of ``result`` (:class:`autograder.grading_records.StudentResult`), HTML text."""
    esc = html.escape
    rows = []
    for nb in result.notebooks:
        link = notebook_links.get(nb.name)
        title = f'<a href="{esc(link)}">{esc(nb.name)}</a>' if link else esc(nb.name)
        rows.append(
            f'<tr class="nb"><th colspan="4">{title}: {_fmt(nb.score)} / {_fmt(nb.max_score)}'
            + (f" &mdash; {esc('; '.join(nb.flags))}" if nb.flags else "")
            + "</th></tr>"
        )
        for test in nb.tests:
            status = test.status
            rows.append(
                f'<tr class="{esc(status.replace(" ", "-"))}"><td>{esc(test.id)}</td><td>{esc(status)}</td>'
                f'<td class="points">{"&ndash;" if status == "manual" else _fmt(test.score)}'
                f"&nbsp;/&nbsp;{_fmt(test.max_score)}</td>"
                f"<td><pre>{esc(test.message)}</pre></td></tr>"
            )
    flags = "".join(f"<li>{esc(f)}</li>" for f in result.flags)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Feedback: {esc(result.student_id)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse;width:100%}}
td,th{{padding:.2em .6em;text-align:left;vertical-align:top}}td:nth-child(1),td:nth-child(2){{white-space:nowrap}}
td.points{{white-space:nowrap;text-align:right;width:6em}}
tr.passed td:nth-child(2){{color:#1a7f37}}tr.failed td:nth-child(2),tr.not-answered td:nth-child(2){{color:#cf222e}}
tr.manual td:nth-child(2),tr.partial-credit td:nth-child(2){{color:#9a6700}}
tr.nb th{{background:#eee}}pre{{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}}</style></head><body>
<h1>Feedback for {esc(result.student_id)}</h1>
<p>Score: <b>{_fmt(result.score)} / {_fmt(result.max_score)}</b> ({esc(_hand_graded_note(result))}).</p>
{f"<h2>Notes</h2><ul>{flags}</ul>" if flags else ""}
<table>{"".join(rows)}</table></body></html>
"""
