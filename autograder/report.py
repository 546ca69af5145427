"""The outputs for the instructor: ``grades.csv`` and the class report.

``grades.csv`` is written by nbgrader's ``export`` with :class:`GradesCsvExport`,
an export plugin that adds what nbgrader's CSV lacks: a column per graded
cell and per notebook, the points still to grade by hand, and the flags of
each submission. Rows are sorted by student id, numbers printed with at most
two decimals, and the file is replaced atomically, so the same gradebook
always gives the same bytes.

The class report (``report.html``) has the isolation that was in force, the
score distribution, the pass rate of every test and the most frequent
failure messages, with the plots embedded.
"""
from __future__ import annotations

import base64
import collections
import csv
import html
import io
import json
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.apps.exportapp import ExportApp
from nbgrader.plugins import ExportPlugin
from traitlets import Unicode

from dnn_course.files import write_atomically


def number(value) -> str:
    """Fixed rendering of a score: ``2``, ``0.5``, ``1.25``."""
    if value is None:
        return ""
    text = f"{round(float(value), 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def load_results(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json"))}


class GradesCsvExport(ExportPlugin):
    """One row per student: every graded cell, notebook totals, total, flags."""

    results_dir = Unicode("", help="Folder of the per-student result files.").tag(config=True)
    assignment_id = Unicode("").tag(config=True)
    release_dir = Unicode("", help="Folder of the released notebooks (gives the cell order).").tag(config=True)

    def _cell_order(self, notebook: str) -> dict[str, int]:
        path = Path(self.release_dir) / f"{notebook}.ipynb"
        if not path.exists():
            return {}
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        ids = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in cells]
        return {gid: i for i, gid in enumerate(ids) if gid}

    def export(self, gradebook: Gradebook) -> None:
        assignment = gradebook.find_assignment(self.assignment_id)
        notebooks = sorted(assignment.notebooks, key=lambda n: n.name)
        columns = []   # (header, notebook name, cell name or None)
        for nb in notebooks:
            order = self._cell_order(nb.name)
            for cell in sorted(nb.grade_cells, key=lambda c: (order.get(c.name, 10**6), c.name)):
                columns.append((f"{nb.name}/{cell.name}", nb.name, cell.name))
            columns.append((f"{nb.name} total", nb.name, None))
        header = ["student_id", "name"] + [c[0] for c in columns] + [
            "to_grade_by_hand", "total", "max_total", "flags"]
        rows = []
        for student in sorted(gradebook.students, key=lambda s: s.id):
            try:
                sub = gradebook.find_submission(self.assignment_id, student.id)
            except Exception:
                continue
            by_nb = {nb.name: nb for nb in sub.notebooks}
            row = [student.id, " ".join(x for x in (student.first_name, student.last_name) if x)]
            pending = 0.0
            for _, nb_name, cell_name in columns:
                nb = by_nb[nb_name]
                if cell_name is None:
                    row.append(number(nb.score))
                    continue
                grade = next(g for g in nb.grades if g.name == cell_name)
                if grade.needs_manual_grade and grade.manual_score is None:
                    pending += grade.max_score
                    row.append("")
                else:
                    row.append(number(grade.score))
            result_file = Path(self.results_dir) / f"{student.id}.json"
            flags = []
            if result_file.exists():
                result = json.loads(result_file.read_text())
                flags = list(result.get("flags", []))
                for nb in result.get("notebooks", []):
                    flags += [f"{nb['name']}: {f}" for f in nb.get("flags", [])]
            row += [number(pending), number(sub.score), number(sub.max_score), " | ".join(flags)]
            rows.append(row)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        write_atomically(self.to, text.getvalue())


def export_grades(out: Path, db: Path, assignment: str) -> Path:
    """Write ``out/grades.csv`` from the gradebook ``db`` through nbgrader's ExportApp."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(out / "course")
    config.CourseDirectory.db_url = f"sqlite:///{db}"
    config.GradesCsvExport.results_dir = str(out / "results")
    config.GradesCsvExport.assignment_id = assignment
    config.GradesCsvExport.release_dir = str(out / "course" / "release" / assignment)
    config.ExportApp.plugin_class = GradesCsvExport
    config.ExportPlugin.to = str(out / "grades.csv")
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    app = ExportApp(coursedir=api.coursedir, parent=api, config=config)
    app.log.setLevel("WARN")
    app.init_plugin()
    with Gradebook(config.CourseDirectory.db_url) as gb:
        app.plugin_inst.export(gb)
    return out / "grades.csv"


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode()


def class_statistics(results: dict[str, dict]) -> dict:
    """Totals, pass rate per test and failure-message counts from the results."""
    totals = [r["score"] or 0.0 for r in results.values()]
    passed = collections.Counter()
    seen = collections.Counter()
    messages = collections.Counter()
    for result in results.values():
        for nb in result["notebooks"]:
            for test in nb["tests"]:
                if test["status"] not in ("passed", "failed"):
                    continue
                key = f"{nb['name'][:-6]}/{test['id']}"
                seen[key] += 1
                if test["status"] == "passed":
                    passed[key] += 1
                elif test["message"]:
                    messages[test["message"].splitlines()[0][:200]] += 1
    rates = {k: passed[k] / seen[k] for k in sorted(seen)}
    return {"totals": totals, "rates": rates, "messages": messages.most_common(15)}


def write_report(out: Path, results: dict[str, dict], isolation: str, settings, redactor=None) -> Path:
    """Write ``out/report.html``; ``redactor`` (:class:`autograder.feedback.Redactor`) scrubs hidden test lines."""
    from .sandbox import ISOLATION_BWRAP, ISOLATION_PROCESS, caps_in_force

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = class_statistics(results)
    max_total = max((r["max_score"] or 0 for r in results.values()), default=0)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(stats["totals"], bins=20, range=(0, max(max_total, 1)), color="#4477aa")
    ax.set_xlabel("automatic score")
    ax.set_ylabel("students")
    ax.set_title("Score distribution")
    hist = _png(fig)
    plt.close(fig)
    names = list(stats["rates"])
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(names) + 1))
    ax.barh(range(len(names)), [100 * stats["rates"][n] for n in names], color="#228833")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("students passing (%)")
    ax.set_title("Pass rate per test")
    rates = _png(fig)
    plt.close(fig)
    esc = html.escape
    msg_rows = "".join(f"<tr><td>{n}</td><td><code>{esc(m)}</code></td></tr>" for m, n in stats["messages"])
    flagged = "".join(
        f"<tr><td><a href='feedback/{esc(sid)}.html'>{esc(sid)}</a></td><td>{esc(' | '.join(r['flags']))}</td></tr>"
        for sid, r in results.items() if r["flags"])
    limits = settings.limits
    level = ISOLATION_BWRAP if isolation.startswith(ISOLATION_BWRAP) else ISOLATION_PROCESS
    caps = "".join(f"<li>{esc(cap)}</li>" for cap in caps_in_force(limits, level))
    from .similarity_report import report_section  # pairs of submissions alike: OUT/similarity.html
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Class report: {esc(settings.assignment)}</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}td{{padding:.2em .6em;vertical-align:top}}</style></head><body>
<h1>Class report: {esc(settings.assignment)}</h1>
<p>{len(results)} submissions graded. Mean automatic score
{number(sum(stats['totals']) / max(len(stats['totals']), 1))} of {number(max_total)}.</p>
<p><b>Isolation in force:</b> {esc(isolation)}.<br>
Limits: {settings.cell_timeout} s per cell, {settings.notebook_timeout} s per notebook,
{settings.submission_timeout} s per submission, {limits.memory_mb} MB address space per process,
{limits.max_processes} processes/threads, files up to {limits.file_size_mb} MB, no network.</p>
<p><b>Caps in force:</b></p><ul>{caps}</ul>
<h2>Score distribution</h2><img alt="histogram of scores" src="data:image/png;base64,{hist}">
<h2>Pass rate per test</h2><img alt="pass rate per test" src="data:image/png;base64,{rates}">
<h2>Most frequent failure messages</h2><table><tr><th>count</th><th>message</th></tr>{msg_rows}</table>
<h2>Submissions with notes</h2><table>{flagged}</table>
{report_section(out)}
</body></html>
"""
    if redactor is not None:
        page = redactor.page(page, f"Class report: {settings.assignment}")
    return write_atomically(out / "report.html", page)


def write_all(out: Path, db: Path, settings, isolation: str, redactor=None) -> None:
    export_grades(out, db, settings.assignment)
    write_report(out, load_results(out), isolation, settings, redactor)
