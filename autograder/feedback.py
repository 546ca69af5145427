"""Feedback for students: each test's result and message, never hidden test code.

:class:`HideTestCode` is added to nbgrader's ``generate_feedback``: hidden
test regions leave the test cells (nbgrader's autograde put them back to run
them), and error tracebacks, which quote the failing source line, shrink to
their message. :func:`write_summary` writes the one-page summary of a
student from the grading result.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from dnn_course.files import write_atomically

HIDDEN_NOTE = "# (hidden tests run here; their code is not shown)"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strip_hidden(source: str, begin: str = "BEGIN HIDDEN TESTS", end: str = "END HIDDEN TESTS") -> str:
    """``source`` without the lines from a ``begin`` marker to its ``end`` marker."""
    kept, hidden = [], False
    for line in source.splitlines():
        if begin in line:
            hidden = True
            kept.append(line[: len(line) - len(line.lstrip())] + HIDDEN_NOTE)
            continue
        if end in line:
            hidden = False
            continue
        if not hidden:
            kept.append(line)
    return "\n".join(kept)


def error_message(output) -> str:
    """``Name: message`` of an error output, without ANSI colours or traceback."""
    return ANSI.sub("", f"{output.get('ename', 'Error')}: {output.get('evalue', '')}").strip()


class HideTestCode(NbGraderPreprocessor):
    """Remove hidden tests from cell sources and tracebacks from error outputs."""

    begin_test_delimeter = Unicode("BEGIN HIDDEN TESTS").tag(config=True)
    end_test_delimeter = Unicode("END HIDDEN TESTS").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            cell.source = strip_hidden(cell.source, self.begin_test_delimeter, self.end_test_delimeter)
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [error_message(output)]
        return cell, resources


def _fmt(value) -> str:
    return "" if value is None else f"{value:g}"


def _hand_graded_note(result: dict) -> str:
    """How far the hand grading of this submission has got, in words."""
    statuses = [test["status"] for nb in result["notebooks"] for test in nb["tests"]]
    pending, done = statuses.count("manual"), statuses.count("graded by hand")
    if pending:
        return (f"{pending} answer{'s' if pending > 1 else ''} still to be graded by hand; "
                "their points will be added by the instructor")
    if done:
        return "including the answers graded by hand"
    return "all tests graded automatically"


def write_summary(out: Path, result: dict) -> Path:
    """Write ``OUT/feedback/<id>.html``, linking the notebook pages found in ``OUT/feedback/<id>/``."""
    sid = result["student_id"]
    pages = sorted((out / "feedback" / sid).glob("*.html"))
    links = {page.stem + ".ipynb": f"{sid}/{page.name}" for page in pages}
    return write_atomically(out / "feedback" / f"{sid}.html", student_page(result, links))


def student_page(result: dict, notebook_links: dict[str, str]) -> str:
    """The student's summary page (HTML text)."""
    esc = html.escape
    rows = []
    for nb in result["notebooks"]:
        link = notebook_links.get(nb["name"])
        title = f'<a href="{esc(link)}">{esc(nb["name"])}</a>' if link else esc(nb["name"])
        rows.append(f'<tr class="nb"><th colspan="4">{title}: {_fmt(nb["score"])} / {_fmt(nb["max_score"])}'
                    + (f' &mdash; {esc("; ".join(nb["flags"]))}' if nb["flags"] else "") + "</th></tr>")
        for test in nb["tests"]:
            status = test["status"]
            rows.append(f'<tr class="{status}"><td>{esc(test["id"])}</td><td>{esc(status)}</td>'
                        f'<td>{_fmt(test["score"])} / {_fmt(test["max_score"])}</td>'
                        f'<td><pre>{esc(test["message"])}</pre></td></tr>')
    flags = "".join(f"<li>{esc(f)}</li>" for f in result["flags"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Feedback: {esc(result['student_id'])}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:.2em .6em;text-align:left;vertical-align:top}}
tr.passed td:nth-child(2){{color:#1a7f37}}tr.failed td:nth-child(2){{color:#cf222e}}tr.manual td:nth-child(2){{color:#9a6700}}
tr.nb th{{background:#eee}}pre{{margin:0;white-space:pre-wrap}}</style></head><body>
<h1>Feedback for {esc(result['student_id'])}</h1>
<p>Score: <b>{_fmt(result['score'])} / {_fmt(result['max_score'])}</b> ({esc(_hand_graded_note(result))}).</p>
{f'<h2>Notes</h2><ul>{flags}</ul>' if flags else ''}
<table>{''.join(rows)}</table></body></html>
"""
