"""The instructor's and the students' pages: class report, feedback summary, per-notebook feedback.

Fast: the pages are made from hand-written result records (the shape of ``OUT/results/<id>.json``)
and one notebook rendered through the grader's feedback template; one test opens a per-notebook
page in headless Chromium, offline, and checks that MathJax typeset its formulas. The pages of a
real grading run are checked in ``tests/test_autograder_corpus.py`` and ``tests/test_term_rehearsal.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

from autograder import feedback, manual, report
from autograder.grading_records import Isolation, StudentResult
from autograder.grading_settings import GradingSettings, nbgrader_config

REPO = Path(__file__).resolve().parent.parent
#: Anything a page would fetch from another machine on opening: a script, a style sheet, an image, a
#: font (a src, a <link> href, a CSS url() or @import). A link the reader may follow (<a href> to the
#: published chapter) loads nothing.
NETWORK_LOAD = re.compile(
    r"""\bsrc\s*=\s*["']?\s*(?:https?:)?//|<link\b[^>]*\bhref\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?(?:https?:)?//|@import\s+["']?(?:https?:)?//""",
    re.IGNORECASE,
)


def make_test(tid, status, score, max_score, message=""):
    return {"id": tid, "status": status, "score": score, "max_score": max_score, "message": message}


def student(sid, name, notebooks, flags=()) -> StudentResult:
    nbs = [
        {
            "name": nb,
            "score": sum(t["score"] or 0 for t in tests),
            "max_score": sum(t["max_score"] for t in tests),
            "flags": list(nb_flags),
            "tests": tests,
        }
        for nb, tests, nb_flags in notebooks
    ]
    return StudentResult.from_json(
        {
            "student_id": sid,
            "name": name,
            "flags": list(flags),
            "notebooks": nbs,
            "score": sum(nb["score"] for nb in nbs),
            "max_score": sum(nb["max_score"] for nb in nbs),
        }
    )


#: The isolation the class report of these tests says was in force.
PROCESS = Isolation("process", "process: a test")


NB1, NB6 = "01_activations.ipynb", "06_fashion_tuning.ipynb"


def nb6(accuracy_points, answer):
    return [
        make_test("test_runs_recorded", "passed", 2, 2),
        make_test(
            "test_fashion_accuracy",
            "partial credit" if 0 < accuracy_points < 4 else "passed" if accuracy_points == 4 else "failed",
            accuracy_points,
            4,
            "Measured by the grader: 0.84",
        ),
        answer,
    ]


#: Three students: 06's accuracy test earned 3 and 2 of 4 points by two, 0 by the third, who did
#: not submit 06 at all (a notebook-level flag only).
CLASS = {
    "3001": student(
        "3001",
        "Ada_Lovelace",
        [
            (NB1, [make_test("test_relu", "passed", 3, 3), make_test("test_tanh", "passed", 3, 3)], ()),
            (NB6, nb6(3, make_test("answer_fashion_design", "graded by hand", 3, 4)), ()),
        ],
    ),
    "3002": student(
        "3002",
        "Bo_Chen",
        [
            (
                NB1,
                [
                    make_test("test_relu", "failed", 0, 3, "AssertionError: ReLU backward at 0"),
                    make_test("test_tanh", "passed", 3, 3),
                ],
                (),
            ),
            (NB6, nb6(2, make_test("answer_fashion_design", "manual", None, 4)), ()),
        ],
    ),
    "3003": student(
        "3003",
        "Cy_Dunn",
        [
            (NB1, [make_test("test_relu", "passed", 3, 3), make_test("test_tanh", "passed", 3, 3)], ()),
            (
                NB6,
                [
                    make_test("test_runs_recorded", "failed", 0, 2, "not run (notebook missing or unreadable)"),
                    make_test("test_fashion_accuracy", "failed", 0, 4, "not run (notebook missing or unreadable)"),
                    make_test("answer_fashion_design", "manual", None, 4),
                ],
                ["not submitted"],
            ),
        ],
    ),
}
#: What the gradebook says of the two notebooks: 6 + 6 automatic points, 4 by hand.
KINDS = {NB1: {"automatic": 6.0, "by hand": 0.0}, NB6: {"automatic": 6.0, "by hand": 4.0}}


def test_partial_credit_counts_as_the_share_of_points_earned():
    stats = report.class_statistics(CLASS)
    accuracy = stats["tests"]["06_fashion_tuning/test_fashion_accuracy"]
    assert (accuracy["full"], accuracy["partial"], accuracy["zero"]) == (0, 2, 1)
    assert accuracy["share"] == pytest.approx((3 / 4 + 2 / 4 + 0) / 3)
    relu = stats["tests"]["01_activations/test_relu"]
    assert (relu["full"], relu["partial"], relu["zero"], relu["share"]) == (2, 0, 1, pytest.approx(2 / 3))
    assert "06_fashion_tuning/answer_fashion_design" not in stats["tests"]  # graded by hand, not a test
    assert stats["totals"] == [6 + 2 + 3, 3 + 2 + 2, 6]  # automatic points only
    assert ("AssertionError: ReLU backward at 0", 1) in stats["messages"]


def test_class_report_has_every_student_the_right_totals_and_every_note(tmp_path):
    (tmp_path / "feedback").mkdir()
    path = report.write_report(tmp_path, CLASS, PROCESS, GradingSettings(), kinds=KINDS)
    page = path.read_text(encoding="utf-8")
    mean = (11 + 7 + 6) / 3
    assert f"Mean automatic score {report.number(mean)} of 12\n" in page
    assert "the written answers, 4 points, are graded by hand:\n8 points of 2 students still to grade" in page
    table = page[page.index("<table class='sortable students'>") :]
    table = table[table.index("<tbody>") : table.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    assert len(rows) == 3
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert [c[0] for c in cells] == [f"<a href='feedback/{s}.html'>{s}</a>" for s in ("3001", "3002", "3003")]
    # id, name, 01, 06, total, written answers still to grade, flags (sorted by their number)
    assert [c[1:] for c in cells] == [
        ["Ada Lovelace", "6", "8", "<b>14</b>", "0", ""],
        ["Bo Chen", "3", "4", "<b>7</b>", "4", ""],
        ["Cy Dunn", "6", "0", "<b>6</b>", "4", "06_fashion_tuning.ipynb: not submitted"],
    ]
    assert "<td class='flags' data-sort='1'>" in table
    notes = page[page.index("<h2>Submissions with notes</h2>") :]
    assert "feedback/3003.html" in notes and "06_fashion_tuning.ipynb: not submitted" in notes
    assert "feedback/3001.html" not in notes
    assert 'addEventListener("click"' in page and "table.sortable" in page
    assert page.count("data:image/png;base64,") == 2
    assert not NETWORK_LOAD.search(page), NETWORK_LOAD.search(page)


def test_class_report_says_the_experiment_profile_and_a_smoke_one_prominently(tmp_path):
    from dataclasses import replace

    brief = report.write_report(tmp_path, CLASS, PROCESS, GradingSettings(), kinds=KINDS).read_text()
    assert "<p><b>Experiment profile:</b> brief (05 and 06 graded against the brief's settings" in brief
    assert "not real grades" not in brief
    smoke = report.write_report(
        tmp_path, CLASS, PROCESS, replace(GradingSettings(), experiment_profile="smoke"), kinds=KINDS
    ).read_text()
    # right under the title, in a box of its own
    head = smoke[smoke.index("<h1>") : smoke.index("submissions graded")]
    assert "<p class='smoke'><b>smoke profile: not real grades.</b>" in head
    assert "p.smoke{" in smoke and "Experiment profile:</b> brief" not in smoke


def test_class_report_of_one_submission_without_failures_says_so(tmp_path):
    one = {"3001": CLASS["3001"]}
    page = report.write_report(tmp_path, one, PROCESS, GradingSettings(), kinds=KINDS).read_text()
    assert "<p>1 submission graded. Mean automatic score" in page and "1 submissions" not in page
    failures = page[
        page.index("<h2>Most frequent failure messages</h2>") : page.index("<h2>Submissions with notes</h2>")
    ]
    assert re.findall(r"<td[^>]*>(.*?)</td>", failures) == ["none"]
    page = report.write_report(tmp_path, CLASS, PROCESS, GradingSettings(), kinds=KINDS).read_text()
    assert "<p>3 submissions graded." in page
    failures = page[
        page.index("<h2>Most frequent failure messages</h2>") : page.index("<h2>Submissions with notes</h2>")
    ]
    assert ">none<" not in failures and "AssertionError: ReLU backward at 0" in failures


def test_a_pair_flagged_as_alike_shows_in_both_students_flags(tmp_path):
    """The similarity flag (OUT/similarity.csv, written before the report) is in the per-student table's flags
    column of both students, linked to the pair on similarity.html, and among the submissions with notes."""
    import csv

    from autograder.similarity_report import CSV_HEADER

    with open(tmp_path / "similarity.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        writer.writerow(["3001", "3002", "97", "95", "812", "88", "140", "", "yes", "code 97 % alike"])
        writer.writerow(["3001", "3003", "20", "22", "120", "5", "3", "", "", ""])  # not flagged: no flag
    page = report.write_report(tmp_path, CLASS, PROCESS, GradingSettings(), kinds=KINDS).read_text()
    table = page[page.index("<table class='sortable students'>") :]
    table = table[table.index("<tbody>") : table.index("</table>")]
    flags = [re.findall(r"<td[^>]*>(.*?)</td>", row)[-1] for row in re.findall(r"<tr>(.*?)</tr>", table)]
    assert flags == [
        "<a href='similarity.html#3001-3002'>similar to 3002: code 97 % alike</a>",
        "<a href='similarity.html#3001-3002'>similar to 3001: code 97 % alike</a>",
        "06_fashion_tuning.ipynb: not submitted",
    ]
    assert "<td class='flags' data-sort='1'><a href='similarity.html#3001-3002'>" in table
    notes = page[page.index("<h2>Submissions with notes</h2>") :]
    assert "feedback/3001.html" in notes and "feedback/3002.html" in notes and "similar to 3003" not in notes


def test_class_report_without_the_gradebook_reads_the_points_from_the_results(tmp_path):
    page = report.write_report(tmp_path, CLASS, PROCESS, GradingSettings()).read_text(encoding="utf-8")
    assert f"Mean automatic score {report.number(24 / 3)} of 12\n" in page


def test_summary_page_counts_only_the_answers_still_waiting_for_the_instructor():
    unanswered = make_test("answer_mnist_activations", "not answered", 0.0, 6)  # left as released: 0 at once
    pending = make_test("answer_fashion_design", "manual", 0.0, 4)  # nbgrader's score of an unscored answer: 0
    result = student("3004", "Di_Ek", [("05_mnist_activations.ipynb", [unanswered], ()), (NB6, [pending], ())])
    assert feedback.hand_graded_counts(result) == (1, 0, 1)
    page = feedback.student_page(result, {})
    assert (
        "(1 answer still to be graded by hand; its points will be added by the instructor; "
        "1 written answer left blank: 0 points)"
    ) in page
    assert '<td>not answered</td><td class="points">0&nbsp;/&nbsp;6</td>' in page
    assert '<td>manual</td><td class="points">&ndash;&nbsp;/&nbsp;4</td>' in page  # not scored yet
    pending.update(status="graded by hand", score=2.5)
    result = student("3004", "Di_Ek", [("05_mnist_activations.ipynb", [unanswered], ()), (NB6, [pending], ())])
    assert feedback.hand_graded_counts(result) == (0, 1, 1)
    assert "(including the answers graded by hand; 1 written answer left blank: 0 points)" in feedback.student_page(
        result, {}
    )
    two = student("3005", "Fa_Gu", [(NB6, [make_test("a", "manual", None, 2), make_test("b", "manual", None, 2)], ())])
    assert "2 answers still to be graded by hand; their points" in feedback.student_page(two, {})


def test_points_never_wrap():
    page = feedback.student_page(CLASS["3001"], {})
    assert "td.points{white-space:nowrap" in page.replace(" ", "")
    assert '<td class="points">3&nbsp;/&nbsp;3</td>' in page


def test_written_answer_status_follows_the_gradebook():
    from types import SimpleNamespace as Grade

    assert manual.answer_status(Grade(manual_score=None, needs_manual_grade=True, auto_score=None)) == "manual"
    assert manual.answer_status(Grade(manual_score=None, needs_manual_grade=False, auto_score=0.0)) == "not answered"
    assert manual.answer_status(Grade(manual_score=2.0, needs_manual_grade=False, auto_score=0.0)) == "graded by hand"
    assert manual.answer_status(Grade(manual_score=None, needs_manual_grade=True, auto_score=0.0)) == "manual"


def test_manual_list_says_each_answer_once():
    rows = (
        [{"student_id": "1", "state": "manual"}] * 4
        + [{"student_id": "2", "state": "graded by hand"}] * 2
        + [{"student_id": "3", "state": "not answered"}]
    )
    assert manual.describe(rows) == (
        "7 written answers of 3 students to grade by hand: 2 scored, 4 still to score, "
        "1 left blank (scored 0; enter a score to change that)"
    )
    assert manual.describe(rows[:4]) == "4 written answers of 1 student to grade by hand: 0 scored, 4 still to score"


def render_feedback(out: Path, sid: str = "3001") -> Path:
    """05's source notebook through the grader's feedback template, where the grader puts it."""
    import nbgrader

    from autograder.feedback_exporter import FeedbackExporter

    config = nbgrader_config(out / "course", GradingSettings())
    config.HTMLExporter.template_name = "feedback"  # what nbgrader's API sets (NbGraderAPI.generate_feedback)
    # what nbgrader's GenerateFeedback adds itself: the folder of bootstrap.min.css
    config.HTMLExporter.extra_template_paths = [
        os.path.join(
            os.path.dirname(nbgrader.__file__),
            "server_extensions",
            "formgrader",
            "static",
            "node_modules",
            "bootstrap",
            "dist",
            "css",
        )
    ]
    nb = nbformat.read(REPO / "solutions" / "dnn_hw" / "05_mnist_activations.ipynb", as_version=4)
    for cell in nb.cells:
        if "nbgrader" in cell.metadata:
            cell.metadata.nbgrader.update(score=cell.metadata.nbgrader.get("points", 0), comment="")
    nb.cells.insert(
        0,
        nbformat.v4.new_markdown_cell(
            r"Check: $\sigma'(z) = \sigma(z)\,(1 - \sigma(z))$ and"
            "\n\n$$\\frac{\\partial L}{\\partial z} = \\hat y - y$$"
        ),
    )
    body, _ = FeedbackExporter(config=config).from_notebook_node(
        nb, resources={"nbgrader": {"notebook": "05_mnist_activations", "score": 1, "max_score": 2, "late_penalty": 0}}
    )
    page = out / "feedback" / sid / "05_mnist_activations.html"
    page.parent.mkdir(parents=True)
    page.write_text(body, encoding="utf-8")
    feedback.install_mathjax(out)
    return page


def test_feedback_pages_load_mathjax_from_the_output_folder(tmp_path):
    page = render_feedback(tmp_path)
    text = page.read_text(encoding="utf-8")
    scripts = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", text)
    assert scripts == ["../mathjax/tex-chtml-full.js"]
    assert (page.parent / scripts[0]).resolve().is_file()
    assert (
        tmp_path / "feedback" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2" / "MathJax_Main-Regular.woff"
    ).is_file()
    assert "cdnjs" not in text and "cdn.jsdelivr" not in text
    assert not NETWORK_LOAD.search(text), NETWORK_LOAD.search(text)


def test_feedback_page_typesets_its_math_offline_in_a_browser(tmp_path):
    browser = pytest.importorskip("scripts.website.browser")
    chromium = browser.find_chromium()
    if chromium is None:
        pytest.skip(f"needs Chromium; {browser.INSTALL_HINT}")
    page = render_feedback(tmp_path)
    with browser.headless_chromium(chromium) as chromium_browser, browser.open_tab(chromium_browser) as tab:
        events = tab.open(page.as_uri())
        seen = tab.page.evaluate(
            "({typeset: document.querySelectorAll('mjx-container').length,"
            " errors: document.querySelectorAll('mjx-merror').length,"
            " fonts: Array.from(document.fonts).filter(f => f.family === 'MJXTEX').map(f => f.status),"
            " raw: document.body.innerText.includes('$\\\\sigma')})"
        )
    assert [url for url in events.requests if not url.startswith("file://")] == []
    assert events.failures == []
    assert seen["typeset"] >= 2 and seen["errors"] == 0 and not seen["raw"]
    assert seen["fonts"] == ["loaded"]


def test_class_report_table_sorts_by_a_click_offline(tmp_path):
    browser = pytest.importorskip("scripts.website.browser")
    chromium = browser.find_chromium()
    if chromium is None:
        pytest.skip(f"needs Chromium; {browser.INSTALL_HINT}")
    page = report.write_report(tmp_path, CLASS, PROCESS, GradingSettings(), kinds=KINDS)
    order = (
        "Array.from(document.querySelectorAll('table.students tbody tr')).map(r => r.cells[0].textContent).join(' ')"
    )
    click = (
        "Array.from(document.querySelectorAll('table.students th')).find(h => h.textContent.trim() === '{}').click()"
    )
    with browser.headless_chromium(chromium) as chromium_browser, browser.open_tab(chromium_browser) as tab:
        events = tab.open(page.as_uri())
        seen = [tab.page.evaluate(order)]
        for header in ("total", "total", "name", "by hand, to grade"):
            tab.page.evaluate(click.format(header))
            seen.append(tab.page.evaluate(order))
    assert seen == ["3001 3002 3003", "3003 3002 3001", "3001 3002 3003", "3001 3002 3003", "3001 3002 3003"]
    assert [url for url in events.requests if not url.startswith(("file://", "data:"))] == []


def test_written_answers_on_notebook_pages_point_to_the_summary_page():
    """nbgrader's page says 'Written response (Score: 0.0 / 6.0)' before any hand grade: the comment says why."""
    from autograder.feedback import HAND_GRADED_NOTE, HideTestCode

    nb = nbformat.v4.new_notebook()
    answer = nbformat.v4.new_markdown_cell("My explanation.")
    answer.metadata["nbgrader"] = {
        "grade": True,
        "solution": True,
        "grade_id": "answer",
        "points": 6,
        "score": 0.0,
        "comment": "No response.",
    }
    test_cell = nbformat.v4.new_code_cell("assert True")
    test_cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "test", "points": 1, "score": 1.0}
    nb.cells = [answer, test_cell]
    nb, _ = HideTestCode().preprocess(nb, {})
    assert nb.cells[0].metadata.nbgrader["comment"] == "No response.\n\n" + HAND_GRADED_NOTE
    assert "comment" not in nb.cells[1].metadata.nbgrader
    assert "summary page" in HAND_GRADED_NOTE


def test_manual_merge_remakes_the_report_with_the_last_runs_settings(tmp_path):
    from dataclasses import replace

    from autograder.sandbox import Limits

    settings = replace(
        GradingSettings(), cell_timeout=33, jobs=5, experiment_profile="smoke", limits=Limits(memory_mb=1234)
    )
    assert report.load_report_settings(tmp_path) is None
    (tmp_path / "course").mkdir()
    report.save_report_settings(tmp_path, settings, PROCESS)
    assert report.load_report_settings(tmp_path) == (settings, PROCESS)


def test_read_first_links_on_feedback_pages_open_the_published_chapters(tmp_path, monkeypatch):
    """A notebook's Read-first link, ../../book/<chapter>.md, points nowhere from OUT/feedback/<id>/: the published
    pages link the chapter on the course website (html.baseurl of _config.yml, as the kit does), or, without an
    address, keep the link's text only."""
    import shutil

    from autograder import grade
    from scripts import make_release

    site = feedback.site_url()
    assert site == make_release.site_url() and site.startswith("https://")  # the one setting, read alike
    rendered = render_feedback(tmp_path / "render")
    assert 'href="../../book/06_experiments.md"' in rendered.read_text(encoding="utf-8")  # as nbgrader writes it
    jobdir = tmp_path / "job"
    (jobdir / "course" / "feedback" / "3001" / "dnn_hw").mkdir(parents=True)
    shutil.copy(rendered, jobdir / "course" / "feedback" / "3001" / "dnn_hw" / rendered.name)
    out = tmp_path / "out"
    grade.publish_feedback(out, "3001", "dnn_hw", jobdir, CLASS["3001"])
    page = (out / "feedback" / "3001" / rendered.name).read_text(encoding="utf-8")
    assert "book/" in page and not re.search(r"href=\"[^\"]*\.md[\"#]", page)
    chapters = set(re.findall(r'href="' + re.escape(site) + r'book/([\w-]+)\.html"', page))
    assert chapters == {"05_putting_it_together", "06_experiments"}
    assert all((REPO / "book" / f"{chapter}.md").is_file() for chapter in chapters)
    assert f'<a href="{site}book/06_experiments.html">Experiments</a>' in page

    monkeypatch.setattr(grade, "site_url", lambda: "")  # a course without a website address
    grade.publish_feedback(out, "3001", "dnn_hw", jobdir, CLASS["3001"])
    page = (out / "feedback" / "3001" / rendered.name).read_text(encoding="utf-8")
    assert "book/" not in page and "<strong>Read first:</strong> Experiments, on validation" in page


def test_notebook_feedback_pages_sanitise_the_students_html(tmp_path):
    """The grading configuration (with the grader's exporter) sanitises what a student wrote or displayed: a script in a markdown cell
    or an HTML output does not reach the page; the text, the math and a plot do."""
    import nbformat

    from autograder.feedback_exporter import FeedbackExporter
    from autograder.grading_settings import GradingSettings, nbgrader_config

    cfg = nbgrader_config(tmp_path, GradingSettings())
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("My answer: $\\lambda$ <script>alert('md')</script>"),
        nbformat.v4.new_code_cell(
            "display()",
            outputs=[
                nbformat.v4.new_output(
                    "display_data", data={"text/html": "<b>bold</b><img src=x onerror=\"alert('out')\">"}
                ),
                nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="}),
            ],
        ),
    ]
    body, _ = FeedbackExporter(config=cfg, template_name="classic").from_notebook_node(nb)
    assert "<script>alert" not in body and not re.search(r"<img[^>]*onerror", body)  # escaped or dropped
    assert "My answer:" in body and "$\\lambda$" in body and "<b>bold</b>" in body
    assert "data:image/png;base64,iVBORw0KGgo=" in body
