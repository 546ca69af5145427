"""The outputs for the instructor: ``grades.csv`` and the class report.

``grades.csv`` is written by nbgrader's ``export`` with :class:`GradesCsvExport`,
an export plugin that adds what nbgrader's CSV lacks: a column per graded
cell and per notebook, the points still to grade by hand, and the flags of
each submission. Rows are sorted by student id, numbers printed with at most
two decimals, and the file is replaced atomically, so the same gradebook
always gives the same bytes.

The class report (``report.html``) has the isolation that was in force, one
sortable table of every student (points per notebook, total, hand-graded points
still to come, every flag, a link to the feedback page), the distribution of the
automatic scores (out of the automatic points the gradebook's cells add up to),
the points earned per test (students with all, some or none of its points: partial
credit counts as the share it earned) and the most frequent failure messages, with
the plots embedded and the sorting done by a small inline script: the page loads
nothing from the network.
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

from dnn_course.atomic_write import write_atomically

from .grading_records import Isolation, StudentResult, settings_from_json, settings_to_json
from .layout import OutputLayout
from .manual import ANSWER_STATUSES


def number(value) -> str:
    """Fixed rendering of a score: ``2``, ``0.5``, ``1.25``."""
    if value is None:
        return ""
    text = f"{round(float(value), 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def load_results(out: Path) -> dict[str, StudentResult]:
    """``{student id: result}`` of every ``OUT/results/<id>.json``."""
    return {p.stem: StudentResult.from_json(json.loads(p.read_text())) for p in OutputLayout(out).result_files()}


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
        columns = []  # (header, notebook name, cell name or None)
        for nb in notebooks:
            order = self._cell_order(nb.name)
            for cell in sorted(nb.grade_cells, key=lambda c: (order.get(c.name, 10**6), c.name)):
                columns.append((f"{nb.name}/{cell.name}", nb.name, cell.name))
            columns.append((f"{nb.name} total", nb.name, None))
        header = ["student_id", "name"] + [c[0] for c in columns] + ["to_grade_by_hand", "total", "max_total", "flags"]
        rows = []
        for student in sorted(gradebook.students, key=lambda s: s.id):
            try:
                sub = gradebook.find_submission(self.assignment_id, student.id)
            except Exception:  # noqa: BLE001 - a student without a submission of this assignment has no row
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
                flags = StudentResult.from_json(json.loads(result_file.read_text())).all_flags()
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

    layout = OutputLayout(out)
    config = Config()
    config.CourseDirectory.root = str(layout.course_dir)
    config.CourseDirectory.db_url = f"sqlite:///{db}"
    config.GradesCsvExport.results_dir = str(layout.results_dir)
    config.GradesCsvExport.assignment_id = assignment
    config.GradesCsvExport.release_dir = str(layout.course.release_dir(assignment))
    config.ExportApp.plugin_class = GradesCsvExport
    config.ExportPlugin.to = str(layout.grades_csv)
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    app = ExportApp(coursedir=api.coursedir, parent=api, config=config)
    app.log.setLevel("WARN")
    app.init_plugin()
    with Gradebook(config.CourseDirectory.db_url) as gb:
        app.plugin_inst.export(gb)
    return layout.grades_csv


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode()


#: Statuses of the tests the grader scores itself (the others are written answers, graded by hand).
AUTOMATIC_STATUSES = ("passed", "failed", "partial credit")
HAND_STATUSES = ANSWER_STATUSES


def points_by_kind(db: Path, assignment: str) -> dict[str, dict[str, float]]:
    """``{notebook name: {"automatic": points, "by hand": points}}`` from the gradebook's cells.

    A graded cell that is also an answer cell (a written answer) is graded by hand; every
    other graded cell is a test the grader scores.
    """
    kinds = {}
    with Gradebook(f"sqlite:///{db}") as gb:
        for nb in gb.find_assignment(assignment).notebooks:
            answers = {cell.name for cell in nb.solution_cells}
            points = {"automatic": 0.0, "by hand": 0.0}
            for cell in nb.grade_cells:
                points["by hand" if cell.name in answers else "automatic"] += cell.max_score or 0.0
            kinds[nb.name + ".ipynb"] = points
    return kinds


def automatic_score(result: StudentResult) -> float:
    """Points of the tests the grader scored itself (written answers left out)."""
    return sum(test.score or 0.0 for _, test in result.tests() if test.status in AUTOMATIC_STATUSES)


def pending_hand_points(result: StudentResult) -> float:
    """Points of the written answers that still have no score (one left blank is scored 0 already)."""
    return sum(test.max_score or 0.0 for _, test in result.tests() if test.status == "manual")


def class_statistics(results: dict[str, StudentResult]) -> dict:
    """Automatic scores, the points earned per test and failure-message counts from the results.

    ``tests[key]`` counts the students who got all of a test's points (``full``), some
    (``partial``) and none (``zero``), and ``share`` is the mean fraction of its points
    they got: a test that two of three students passed with half the points has
    ``share`` 1/3, not 0.
    """
    totals = [automatic_score(r) for r in results.values()]
    tests = collections.defaultdict(lambda: {"full": 0, "partial": 0, "zero": 0, "points": 0.0})
    messages = collections.Counter()
    for result in results.values():
        for nb, test in result.tests():
            if test.status not in AUTOMATIC_STATUSES or not test.max_score:
                continue
            entry = tests[f"{nb.name[:-6]}/{test.id}"]
            fraction = min(max((test.score or 0.0) / test.max_score, 0.0), 1.0)
            entry["points"] += fraction
            entry["full" if fraction >= 1 else "partial" if fraction > 0 else "zero"] += 1
            if test.status == "failed" and test.message:
                messages[test.message.splitlines()[0][:200]] += 1
    tests = {
        key: {
            **tests[key],
            "share": tests[key]["points"] / (tests[key]["full"] + tests[key]["partial"] + tests[key]["zero"]),
        }
        for key in sorted(tests)
    }
    return {"totals": totals, "tests": tests, "messages": messages.most_common(15)}


SORT_SCRIPT = """<script>
// Sort a table by the clicked header: numbers as numbers, empty cells last; click again to reverse.
document.querySelectorAll("table.sortable th").forEach(function (th, column) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0], rows = Array.from(body.rows);
    var down = th.getAttribute("aria-sort") === "ascending";
    th.closest("tr").querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", down ? "descending" : "ascending");
    function key(row) { var t = row.cells[column].getAttribute("data-sort") || row.cells[column].textContent.trim();
                        return t === "" ? null : (isNaN(Number(t)) ? t.toLowerCase() : Number(t)); }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x === null || y === null) { return (x === null) - (y === null); }
      var order = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
      return down ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
</script>"""


def similarity_flags(pairs: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """``{student id: [(text, link), ...]}``: one flag per flagged pair of ``OUT/similarity.csv`` that the
    student is in (:func:`autograder.similarity_report.flagged_pairs`), linking the pair on similarity.html."""
    flags: dict[str, list[tuple[str, str]]] = {}
    for row in pairs:
        a, b = row["student_a"], row["student_b"]
        link = f"similarity.html#{a}-{b}"
        for one, other in ((a, b), (b, a)):
            flags.setdefault(one, []).append((f"similar to {other}: {row['reasons']}", link))
    return flags


def _flag_cells(result: StudentResult, similar: list[tuple[str, str]]) -> list[str]:
    """The flags of a student as HTML: the result's own, then each similarity flag linked to its pair."""
    esc = html.escape
    return [esc(f) for f in result.all_flags()] + [f"<a href='{esc(link)}'>{esc(text)}</a>" for text, link in similar]


def student_table(
    results: dict[str, StudentResult], notebooks: list[str], similar: dict[str, list[tuple[str, str]]] | None = None
) -> str:
    """Every student in one sortable table: id, name, each notebook's points, total, hand points to come, flags
    (with ``similar``, :func:`similarity_flags`, a flag for each pair of submissions flagged as alike)."""
    esc = html.escape
    similar = similar or {}
    head = "".join(f"<th>{esc(name[:2])}</th>" for name in notebooks)
    rows = []
    for sid, result in sorted(results.items()):
        scores = {nb.name: nb.score for nb in result.notebooks}
        cells = "".join(f"<td class='num'>{number(scores.get(name))}</td>" for name in notebooks)
        flags = _flag_cells(result, similar.get(sid, []))
        rows.append(
            f"<tr><td><a href='feedback/{esc(sid)}.html'>{esc(sid)}</a></td>"
            f"<td>{esc((result.name or '').replace('_', ' '))}</td>{cells}"
            f"<td class='num'><b>{number(result.score or 0.0)}</b></td>"
            f"<td class='num'>{number(pending_hand_points(result))}</td>"
            f"<td class='flags' data-sort='{len(flags)}'>{'<br>'.join(flags)}</td></tr>"
        )
    return (
        f"<table class='sortable students'><thead><tr><th>id</th><th>name</th>{head}<th>total</th>"
        f"<th>by hand, to grade</th><th>flags</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _points_chart(tests: dict[str, dict]) -> str:
    """Stacked bars per test: students with all, some and none of its points (PNG, base64)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(tests)
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(names) + 1.2))
    left = [0.0] * len(names)
    for part, colour, label in (
        ("full", "#228833", "all points"),
        ("partial", "#ccbb44", "some points"),
        ("zero", "#ee6677", "no points"),
    ):
        widths = [100 * tests[n][part] / (tests[n]["full"] + tests[n]["partial"] + tests[n]["zero"]) for n in names]
        ax.barh(range(len(names)), widths, left=left, color=colour, label=label)
        left = [a + b for a, b in zip(left, widths, strict=False)]
    for row, name in enumerate(names):
        ax.text(101, row, f"{100 * tests[name]['share']:.0f} %", va="center", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 112)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("students (%); right: mean share of the test's points")
    ax.set_title("Points per test")
    ax.legend(loc="lower center", bbox_to_anchor=(0.45, 1.06), ncol=3, fontsize=7, frameon=False)
    image = _png(fig)
    plt.close(fig)
    return image


def write_report(
    out: Path,
    results: dict[str, StudentResult],
    isolation: Isolation,
    settings,
    redactor=None,
    kinds: dict[str, dict[str, float]] | None = None,
) -> Path:
    """Write ``out/report.html``; ``redactor`` (:class:`autograder.feedback.Redactor`) scrubs hidden test lines.

    ``kinds`` (:func:`points_by_kind`) gives each notebook's automatic and hand-graded points;
    without it they are read from the results' tests.
    """
    import matplotlib

    from .isolation_report import caps_in_force

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = class_statistics(results)
    if kinds is None:
        kinds = {}
        for result in results.values():
            for nb in result.notebooks:
                if nb.tests:
                    kinds[nb.name] = {
                        "automatic": sum(t.max_score or 0 for t in nb.tests if t.status in AUTOMATIC_STATUSES),
                        "by hand": sum(t.max_score or 0 for t in nb.tests if t.status in HAND_STATUSES),
                    }
    notebooks = sorted(set(kinds) | {nb.name for r in results.values() for nb in r.notebooks})
    auto_total = sum(k["automatic"] for k in kinds.values())
    hand_total = sum(k["by hand"] for k in kinds.values())
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(stats["totals"], bins=20, range=(0, max(auto_total, 1)), color="#4477aa")
    ax.set_xlabel(f"automatic score (of {number(auto_total)})")
    ax.set_ylabel("students")
    ax.set_title("Score distribution")
    hist = _png(fig)
    plt.close(fig)
    rates = _points_chart(stats["tests"])
    esc = html.escape
    msg_rows = "".join(f"<tr><td>{n}</td><td><code>{esc(m)}</code></td></tr>" for m, n in stats["messages"])
    from .similarity_report import flagged_pairs, report_section  # pairs of submissions alike: OUT/similarity.html

    similar = similarity_flags(flagged_pairs(out))
    flagged = "".join(
        f"<tr><td><a href='feedback/{esc(sid)}.html'>{esc(sid)}</a></td>"
        f"<td>{'<br>'.join(_flag_cells(r, similar.get(sid, [])))}</td></tr>"
        for sid, r in sorted(results.items())
        if _flag_cells(r, similar.get(sid, []))
    )
    profile = settings.experiment_profile
    if profile == "smoke":
        profile_note = (
            "<p class='smoke'><b>smoke profile: not real grades.</b> The experiments (05, 06) were graded "
            "with <code>--experiment-profile smoke</code>: smoke-test results against the smoke test's low "
            "thresholds, as the course's own rehearsal does. Grade a real term with the brief's profile "
            "(the default).</p>"
        )
    else:
        profile_note = (
            f"<p><b>Experiment profile:</b> {esc(profile)} (05 and 06 graded against the brief's settings "
            "and thresholds; smoke-test results earn no points).</p>"
        )
    pending = sum(pending_hand_points(r) for r in results.values())
    waiting = sum(1 for r in results.values() if pending_hand_points(r))
    limits = settings.limits
    caps = "".join(f"<li>{esc(cap)}</li>" for cap in caps_in_force(limits, isolation.level))
    mean = sum(stats["totals"]) / max(len(stats["totals"]), 1)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Class report: {esc(settings.assignment)}</title>
<style>body{{font-family:sans-serif;max-width:80em;margin:2em auto;padding:0 1em}}td,th{{padding:.2em .6em;vertical-align:top;text-align:left}}
table.students{{border-collapse:collapse;font-size:90%}}table.students tr:nth-child(even){{background:#f4f4f4}}
table.students td.num,table.students th{{white-space:nowrap}}td.num{{text-align:right}}td.flags{{font-size:90%;max-width:40em}}
table.sortable th{{cursor:pointer;background:#e8e8e8;user-select:none}}table.sortable th[aria-sort=ascending]::after{{content:" \\25B2"}}
table.sortable th[aria-sort=descending]::after{{content:" \\25BC"}}
p.smoke{{background:#fde2e2;border:2px solid #cc3311;padding:.6em 1em;font-size:120%}}</style></head><body>
<h1>Class report: {esc(settings.assignment)}</h1>
{profile_note}
<p>{len(results)} submission{"s" if len(results) != 1 else ""} graded. Mean automatic score {number(mean)} of {number(auto_total)}
(the tests; the written answers, {number(hand_total)} points, are graded by hand:
{number(pending)} points of {waiting} student{"s" if waiting != 1 else ""} still to grade).</p>
<p><b>Isolation in force:</b> {esc(isolation.explanation)}.<br>
Limits: {settings.cell_timeout} s per cell, {settings.notebook_timeout} s per notebook,
{settings.submission_timeout} s per submission, {limits.memory_mb} MB address space per process,
{limits.max_processes} processes/threads, files up to {limits.file_size_mb} MB, no network.</p>
<p><b>Caps in force:</b></p><ul>{caps}</ul>
<h2>Students</h2>
<p>Points per notebook (01-06), total (with the hand-graded points merged so far), the points of written
answers still to grade, and every flag. Click a column's header to sort by it.</p>
{student_table(results, notebooks, similar)}
<h2>Score distribution</h2><img alt="histogram of automatic scores" src="data:image/png;base64,{hist}">
<h2>Points per test</h2>
<p>For each test, the share of students who got all of its points, some of them (partial credit) and none;
the figure on the right is the mean share of its points.</p>
<img alt="points per test" src="data:image/png;base64,{rates}">
<h2>Most frequent failure messages</h2><table><tr><th>count</th><th>message</th></tr>{msg_rows or '<tr><td colspan="2">none</td></tr>'}</table>
<h2>Submissions with notes</h2>
<p>Every flag of a submission or of one of its notebooks (a notebook not submitted, restored cells,
failed integrity checks), and every pair of submissions flagged as alike.</p><table>{flagged or "<tr><td>none</td></tr>"}</table>
{report_section(out)}
{SORT_SCRIPT}
</body></html>
"""
    if redactor is not None:
        page = redactor.page(page, f"Class report: {settings.assignment}")
    return write_atomically(OutputLayout(out).report_html, page)


def save_report_settings(out: Path, settings, isolation: Isolation) -> Path:
    """Write ``OUT/course/report_settings.json``: what the last ``grade`` run's report was made with (the grading
    settings and the isolation in force), so that ``manual-merge`` can make it again."""
    return write_atomically(
        OutputLayout(out).report_settings,
        json.dumps(
            {"isolation": isolation.to_json(), "settings": settings_to_json(settings)}, indent=1, sort_keys=True
        ),
    )


def load_report_settings(out: Path):
    """``(settings, isolation)`` saved by :func:`save_report_settings`, or None before any ``grade`` run."""
    path = OutputLayout(out).report_settings
    if not path.exists():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    return settings_from_json(saved["settings"]), Isolation.from_json(saved["isolation"])


def write_all(out: Path, db: Path, settings, isolation: Isolation, redactor=None) -> None:
    from .feedback import install_mathjax

    export_grades(out, db, settings.assignment)
    install_mathjax(out)
    save_report_settings(out, settings, isolation)
    write_report(out, load_results(out), isolation, settings, redactor, points_by_kind(db, settings.assignment))


def rewrite_report(out: Path, db: Path) -> bool:
    """Make ``report.html`` again from the result files (after ``manual-merge``); False if never graded."""
    from .feedback import Redactor

    saved = load_report_settings(out)
    if saved is None:
        return False
    settings, isolation = saved
    redactor = Redactor.from_notebooks(
        Path(settings.source_root) / settings.assignment, OutputLayout(out).course.release_dir(settings.assignment)
    )
    write_report(out, load_results(out), isolation, settings, redactor, points_by_kind(db, settings.assignment))
    return True
