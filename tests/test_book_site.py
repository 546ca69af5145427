"""The course website (Jupyter Book), checked as a reader sees it: in a real headless browser.

The built site in ``_build/html`` is served from 127.0.0.1 and opened in the system's headless
Chromium (Debian package ``chromium``), driven by Playwright through the checks of
``scripts/check_site.py`` (``scripts/website/``). The site is built first (as ``make book`` does) when it is missing
or older than its sources; in CI, run ``make book`` before the tests so this is not needed.

Without Chromium the browser tests are skipped, except when the environment variable ``CI``
is set: there they fail, since the site must be checked.

Time: about 20-30 s on two idle cores, nearly all of it loading the 17 pages (MathJax typesets
several hundred formulas), plus the build when the site is stale (about 2 minutes from
scratch, seconds when only a page changed: executed chapters are cached). On a machine loaded
far beyond its cores, pages can miss the browser's 30 s load timeout and fail.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from dnn_course import secret_lines
from scripts import check_site
from scripts.website import layout, pages, toc
from scripts.website.browser import INSTALL_HINT, BrowserError, find_chromium, headless_chromium, open_tab
from scripts.website.leaks import downloadable_text
from scripts.website.server import serve_directory

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / "_build" / "html"
CONFIG = yaml.safe_load((REPO / "_config.yml").read_text())
REPOSITORY_URL = CONFIG["repository"]["url"]  # https://github.com/<owner>/<name>
GITHUB_REPOSITORY = REPOSITORY_URL.removeprefix("https://github.com/")


EXPECTED_DOCNAMES = [
    "book/00_introduction",
    "book/backpropagation",
    "book/01_activations",
    "book/02_fully_connected",
    "book/03_softmax_cross_entropy",
    "book/04_l2_regularization",
    "book/05_putting_it_together",
    "book/06_experiments",
    "book/where_next",
    "book/practice_problems",
    "exercises/dnn_hw/01_activations",
    "exercises/dnn_hw/02_fc_layer",
    "exercises/dnn_hw/03_softmax_cross_entropy",
    "exercises/dnn_hw/04_model_l2",
    "exercises/dnn_hw/05_mnist_activations",
    "exercises/dnn_hw/06_fashion_tuning",
    "book/student_guide",
    "book/instructor_guide",
]
DOCNAMES = toc.toc_docnames(REPO / "_toc.yml")
CHAPTERS = [name for name in DOCNAMES if name.startswith("book/0") and name != "book/00_introduction"]
EXERCISES = [name for name in DOCNAMES if name.startswith("exercises/")]
PAGES = [name + ".html" for name in DOCNAMES] + ["index.html", "search.html"]


# --- the table of contents (no browser) ------------------------------------------------------


def test_toc_lists_the_course_pages_in_order():
    assert DOCNAMES == EXPECTED_DOCNAMES


@pytest.mark.parametrize("docname", EXPECTED_DOCNAMES)
def test_every_toc_page_has_its_source_file(docname):
    suffix = ".ipynb" if docname.startswith("exercises/") else ".md"
    assert (REPO / f"{docname}{suffix}").is_file(), (
        f"_toc.yml lists {docname}{suffix}, which does not exist: `make book` cannot build the site"
        + (" (run `make exercises` to generate the student notebooks)" if suffix == ".ipynb" else "")
    )


def test_repository_url_is_written_once_in_the_config():
    assert REPOSITORY_URL.startswith("https://github.com/") and GITHUB_REPOSITORY.count("/") == 1
    assert (REPO / "_config.yml").read_text().count(GITHUB_REPOSITORY) == 1
    pages = [REPO / f"{name}.md" for name in DOCNAMES if (REPO / f"{name}.md").exists()]
    written = [page.name for page in pages if GITHUB_REPOSITORY in page.read_text()]
    assert written == [], f"use {{{{ repository_url }}}} instead of the address in {written}"


# --- building the site -----------------------------------------------------------------------


def _site_sources() -> list[Path]:
    """Files whose change makes the built site out of date."""
    files = [REPO / "_config.yml", REPO / "_toc.yml"]
    for name in DOCNAMES:
        files += [path for path in (REPO / f"{name}.md", REPO / f"{name}.ipynb") if path.exists()]
    for folder in ("_static", "_ext", "results"):
        files += [path for path in (REPO / "book" / folder).rglob("*") if path.is_file()]
    files += list((REPO / "book").glob("*.bib"))
    return files


# Written by every build that changes a page; a build with nothing to do writes nothing,
# so the fixture leaves its own stamp after building.
_SPHINX_STAMP = SITE / "objects.inv"
_FIXTURE_STAMP = REPO / "_build" / ".site-built-for-tests"


def _stale_reason() -> str | None:
    if not _SPHINX_STAMP.is_file():
        return f"{SITE} holds no built site"
    built = max(stamp.stat().st_mtime for stamp in (_SPHINX_STAMP, _FIXTURE_STAMP) if stamp.exists())
    newer = [path for path in _site_sources() if path.stat().st_mtime > built]
    if newer:
        return f"{len(newer)} source file(s) changed since the last build, e.g. {newer[0].relative_to(REPO)}"
    return None


@contextlib.contextmanager
def _build_lock():
    """One build at a time, also across pytest-xdist workers."""
    (REPO / "_build").mkdir(exist_ok=True)
    with open(REPO / "_build" / ".site-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def built_site() -> Path:
    """_build/html, built as `make book` does if it is missing or older than its sources."""
    with _build_lock():
        reason = _stale_reason()
        if reason is not None:
            jupyter_book = Path(sys.executable).with_name("jupyter-book")
            if not jupyter_book.exists():
                jupyter_book = Path(shutil.which("jupyter-book") or "jupyter-book")
            command = [str(jupyter_book), "build", ".", "--warningiserror", "--keep-going"]
            result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1800)
            output = (result.stdout + result.stderr)[-6000:]
            assert result.returncode == 0, (
                f"building the site ({reason}) failed: `{' '.join(command)}` exited with "
                f"{result.returncode}; the end of its output:\n{output}"
            )
            _FIXTURE_STAMP.touch()
    return SITE


@pytest.fixture(scope="session")
def chromium(skip_or_fail) -> str:
    path = find_chromium()
    if path is None:
        skip_or_fail(f"the headless-browser tests need Chromium; {INSTALL_HINT}")
    return path


@pytest.fixture(scope="session")
def reports(chromium, built_site) -> dict:
    """Every page of the toc (and the home and search pages), opened in the browser once."""
    return pages.check_site(built_site, PAGES, chromium)


# --- the pages in the browser ----------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_with_math_images_and_links_working(reports, page):
    problems = reports[page].problems
    assert problems == [], f"{page}:\n" + "\n".join(f"  - {problem}" for problem in problems)


def test_home_page_leads_to_the_introduction(reports):
    assert reports["index.html"].url.endswith("/book/00_introduction.html")


def test_introduction_typesets_its_math_offline(reports):
    intro = reports["book/00_introduction.html"]
    assert intro.heading == "Deep Neural Networks from Scratch"
    assert intro.math >= 20, "the notation table and formulas of the introduction are missing"
    assert intro.typeset >= intro.math


def test_introduction_shows_sample_images_made_by_its_code(reports):
    intro = reports["book/00_introduction.html"]
    figures = [src for src in intro.images if "/_images/" in src]
    assert len(figures) >= 2, f"expected an MNIST and a Fashion-MNIST grid, found images {intro.images}"
    for name in ("T-shirt/top", "Ankle boot"):
        assert name in intro.text


def test_student_guide_clones_the_configured_repository(reports):
    assert f"git clone {REPOSITORY_URL}.git" in reports["book/student_guide.html"].text


def test_chapters_are_numbered_in_order(reports):
    for number, chapter in enumerate(CHAPTERS, start=1):
        heading = reports[chapter + ".html"].heading
        assert heading.startswith(f"{number}. "), f"{chapter}: heading {heading!r} is not numbered {number}"


@pytest.mark.parametrize("exercise", EXERCISES)
def test_exercise_page_is_unexecuted_with_download_and_launch_buttons(reports, exercise):
    report = reports[exercise + ".html"]
    assert report.outputs == 0, f"{exercise} was executed at build time; it must be shown as students get it"

    source_url = f"_sources/{exercise}.ipynb"
    assert any(url.endswith(source_url) for url in report.downloads), (
        f"no download button for {source_url} on {exercise}.html: {report.downloads}"
    )
    downloaded = nbformat.read(SITE / source_url, as_version=4)
    committed = nbformat.read(REPO / f"{exercise}.ipynb", as_version=4)
    assert [cell.source for cell in downloaded.cells] == [cell.source for cell in committed.cells]
    assert all(not cell.get("outputs") for cell in downloaded.cells if cell.cell_type == "code")

    # Launch buttons open the notebook in the students' repository (the kit of `make release`,
    # which keeps this path): Binder; JupyterHub only when a hub is configured; no Colab, which
    # cannot give a lone notebook the course package and the earlier notebooks.
    path = f"{exercise}.ipynb"
    expected = [f"https://mybinder.org/v2/gh/{GITHUB_REPOSITORY}/main?urlpath=lab/tree/{path}"]
    hub_url = (CONFIG["launch_buttons"].get("jupyterhub_url") or "").rstrip("/")
    if hub_url:
        expected.append(f"{hub_url}/hub/user-redirect/git-pull?repo={REPOSITORY_URL.replace('https://', 'https%3A//')}")
    assert len(report.launches) == len(expected), report.launches
    for start in expected:
        assert any(url.startswith(start) for url in report.launches), (
            f"no {start} on {exercise}.html: {report.launches}"
        )


def test_only_exercise_pages_have_launch_buttons(reports):
    """The chapters are not in the students' repository, so a launch button there would open nothing."""
    with_buttons = [page for page, report in reports.items() if report.launches and not page.startswith("exercises/")]
    assert with_buttons == [], with_buttons


def test_chapters_are_executed_at_build_time(reports):
    chapters = ["book/00_introduction", *CHAPTERS]
    unexecuted = [name for name in chapters if reports[name + ".html"].outputs == 0]
    assert unexecuted == [], f"chapters shown without any output (not executed at build time?): {unexecuted}"


def test_search_finds_the_student_guide(chromium, built_site):
    with serve_directory(built_site) as base_url, headless_chromium(chromium) as browser, open_tab(browser) as tab:
        results = pages.search(tab, base_url, "validate")
    assert base_url + "book/student_guide.html" in [url.split("#")[0].split("?")[0] for url in results], results


def test_introduction_works_opened_as_a_file(chromium, built_site):
    """Offline without a server: file:// pages load MathJax, its fonts and the figures."""
    with headless_chromium(chromium) as browser, open_tab(browser) as tab:
        events = tab.open((built_site / "book" / "00_introduction.html").as_uri())
        math = tab.page.locator(".math").count()
        typeset = tab.page.locator(".math mjx-container").count()
        fonts = tab.page.evaluate("Array.from(document.fonts).filter(f => f.family === 'MJXTEX').map(f => f.status)")
        broken = tab.page.locator("img").evaluate_all(
            "images => images.filter(i => i.naturalWidth === 0).map(i => i.src)"
        )
    assert events.failures == []
    assert math >= 20 and typeset == math
    assert fonts == ["loaded"]
    assert broken == []


# --- what is (not) published -----------------------------------------------------------------


def test_only_the_toc_pages_are_published(built_site):
    pages = {
        path.relative_to(built_site).as_posix()
        for path in built_site.rglob("*.html")
        if "_static" not in path.relative_to(built_site).parts
    }
    assert pages == {name + ".html" for name in DOCNAMES} | {"index.html", "search.html", "genindex.html"}
    sources = {
        path.relative_to(built_site / "_sources").as_posix().split(".")[0]
        for path in (built_site / "_sources").rglob("*")
        if path.is_file()
    }
    assert sources == set(DOCNAMES)


def test_default_site_gives_no_answer(reports, built_site):
    """No model answer of a written question, no heading of the answers' sections and not the
    configuration the reference search chose, in any page or downloadable source of the default site
    (`make book ANSWERS=1` publishes them after the deadline, in _build/answers)."""
    from scripts import make_release

    texts = {page: report.text for page, report in reports.items()}
    texts.update(
        {
            path.relative_to(built_site).as_posix(): downloadable_text(path)
            for path in built_site.rglob("*")
            if path.is_file()
            and path.suffix in (".ipynb", ".md", ".txt")
            and "_static" not in path.relative_to(built_site).parts
        }
    )
    assert not any("answers" in name for name in texts), "an answers page is in the default site"
    assert make_release.model_answer_leaks(texts) == []


def test_no_solution_reaches_the_site(reports, built_site):
    solutions = REPO / "solutions" / "dnn_hw"
    if list(solutions.glob("*.ipynb")):
        assert secret_lines.secret_lines(solutions), "found no solution lines to look for"
    leaks = check_site.find_solution_leaks(built_site, solutions, {page: r.text for page, r in reports.items()})
    assert leaks == [], "\n".join(leaks)


# --- the checker itself finds what it is meant to find --------------------------------------

_BROKEN_PAGE = r"""<!DOCTYPE html>
<html><head><title>broken</title><link rel="icon" href="data:,"><script src="http://127.0.0.2:9/cdn.js"></script></head>
<body><h1>Broken</h1>
<p>Raw display math: $$ E = mc^2 $$ and raw inline TeX: $\hat{y}_i$.</p>
<p><span class="math notranslate nohighlight">\(x^2\)</span></p>
<img src="missing.png" alt="missing">
<a href="nowhere.html">a broken link</a> <a href="good.html#no-such-id">a broken anchor</a>
<a href="good.html#here">a good anchor</a> <a href="https://example.org/">an external link</a>
<a href="good.html#here">Its gradient: \lambda W</a>
<script>notDefinedAnywhere();</script>
</body></html>
"""

_GOOD_PAGE = """<!DOCTYPE html>
<html><head><title>good</title><link rel="icon" href="data:,"></head>
<body><h1 id="here">Good</h1><p>Costs $5 and $6.</p>
<img src="pixel.gif" alt="pixel"><a href="broken.html">to the other page</a>
<pre>$$ in code is fine $$</pre></body></html>
"""

# A 1x1 transparent GIF.
_PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


def test_checker_reports_each_kind_of_problem(tmp_path, chromium):
    (tmp_path / "broken.html").write_text(_BROKEN_PAGE)
    (tmp_path / "good.html").write_text(_GOOD_PAGE)
    (tmp_path / "pixel.gif").write_bytes(_PIXEL)

    reports = pages.check_site(tmp_path, ["broken.html", "good.html", "absent.html"], chromium)

    assert reports["good.html"].problems == []
    problems = "\n".join(reports["broken.html"].problems)
    for expected in [
        "request leaves the machine (the site must work offline): http://127.0.0.2:9/cdn.js",
        "raw $$ in the visible text",
        r"raw TeX between $ signs in the visible text: '$\\hat{y}_i$'",
        r"math not typeset by MathJax: '\\(x^2\\)'",
        "image did not load:",
        "broken link: http://127.0.0.1:",
        "nowhere.html (no file nowhere.html)",
        "good.html#no-such-id (no element with id 'no-such-id')",
        "HTTP 404 for",
        "JavaScript exception: ReferenceError: notDefinedAnywhere is not defined",
        "raw LaTeX command in the visible text:",
        "Its gradient: \\\\lambda W",
    ]:
        assert expected in problems, f"expected {expected!r} among:\n{problems}"
    assert "good.html#here" not in problems
    assert "example.org" not in problems
    assert reports["absent.html"].problems == [f"page not built: {tmp_path / 'absent.html'} does not exist"]


def test_leak_finder_reports_published_solution_code(tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    source = (
        "def relu(z):\n    ### BEGIN SOLUTION\n    positive = z > 0\n    return np.where(positive, z, 0.0)\n"
        "    ### END SOLUTION\n"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nbformat.write(notebook, solutions / "01_activations.ipynb")
    site = tmp_path / "site"
    (site / "_sources").mkdir(parents=True)
    (site / "_sources" / "page.md").write_text("An explanation without code.\n")

    assert check_site.find_solution_leaks(site, solutions, {"page.html": "Nothing to see."}) == []

    leaks = check_site.find_solution_leaks(
        site, solutions, {"page.html": "Copy this:  positive = z > 0\n return   np.where(positive, z, 0.0)"}
    )
    assert leaks == [
        "solution line of 01_activations.ipynb published in page.html: 'positive = z > 0'",
        "solution line of 01_activations.ipynb published in page.html: 'return np.where(positive, z, 0.0)'",
    ]

    (site / "solutions").mkdir()
    nbformat.write(notebook, site / "solutions" / "01_activations.ipynb")
    leaks = check_site.find_solution_leaks(site, solutions, {})
    assert "a solution file is published: solutions/01_activations.ipynb" in leaks
    assert any("nbgrader marker 'BEGIN SOLUTION'" in leak for leak in leaks)
    assert any("published in solutions/01_activations.ipynb" in leak for leak in leaks)


# --- layout at desktop and phone width -------------------------------------------------------

LAYOUT_PAGES = [name + ".html" for name in DOCNAMES]


@pytest.fixture(scope="session")
def layouts(chromium, built_site) -> dict:
    """{(page, "desktop" or "phone"): problems} for every page of the toc."""
    return layout.check_site_layout(built_site, LAYOUT_PAGES, chromium)


@pytest.mark.parametrize("width", list(layout.LAYOUT_WIDTHS))
@pytest.mark.parametrize("page", LAYOUT_PAGES)
def test_nothing_overflows_and_figure_text_is_legible(layouts, page, width):
    """No equation, output or table sticks out or is cut off; figure text >= the footnotes."""
    problems = layouts[page, width]
    assert problems == [], f"{page} at {width} width:\n" + "\n".join(f"  - {p}" for p in problems)


def test_layout_constants_follow_the_figure_style():
    from dnn_course import plotting

    assert (layout.BOOK_DPI, layout.MIN_FONT_PT, layout.BOOK_PIXEL_RATIO) == (
        plotting.BOOK_DPI,
        plotting.MIN_FONT_PT,
        plotting.BOOK_PIXEL_RATIO,
    )
    # a figure MAX_WIDTH_IN wide fits the desktop column (measured: 740 px at 1280 px)
    assert plotting.MAX_WIDTH_IN * plotting.BOOK_DPI <= 740


def _wide_png(path: Path, width_px: int, dpi: int = 100) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / dpi, 1), dpi=dpi)
    fig.text(0.5, 0.5, "eleven-point text", fontsize=11)
    fig.savefig(path, dpi=dpi)


_LAYOUT_PAGE = """<!DOCTYPE html>
<html><head><title>layout</title><link rel="icon" href="data:,"><meta name="viewport" content="width=device-width">
<style>body {{ margin: 0; font-size: 16px; }} article {{ width: {column}px; }}
aside.footnote {{ font-size: 14px; }}
.scroll {{ overflow-x: auto; }} .clip {{ overflow: hidden; width: 200px; white-space: pre; }}</style></head>
<body><article class="bd-article"><h1>Layout</h1>
<div class="cell_output"><img src="{image}" style="{size}max-width: 100%"></div>
<div class="highlight"><pre class="clip">{long}</pre></div>
<div class="cell_output scroll"><pre>{long}</pre></div>
<input type="search"><input type="search">
</article></body></html>
"""


def test_layout_checker_finds_shrunk_figures_cut_off_outputs_and_two_search_boxes(tmp_path, chromium):
    _wide_png(tmp_path / "wide.png", 1000)
    long_line = "x" * 400
    _wide_png(tmp_path / "retina.png", 600, dpi=200)  # shown at 300 px: twice the pixels, as the book's figures
    (tmp_path / "bad.html").write_text(_LAYOUT_PAGE.format(column=600, image="wide.png", size="", long=long_line))
    (tmp_path / "good.html").write_text(
        _LAYOUT_PAGE.format(column=600, image="retina.png", size="width: 300px; ", long="short").replace(
            '<input type="search"><input type="search">', ""
        )
    )
    with serve_directory(tmp_path) as base_url, headless_chromium(chromium) as browser:
        with open_tab(browser, width=1280, height=800) as desktop:
            bad, measured = layout.check_layout(desktop, base_url, "bad.html", desktop=True)
            good, _ = layout.check_layout(desktop, base_url, "good.html", desktop=True)
        with open_tab(browser, width=390, height=800, mobile=True) as phone_tab:
            phone, _ = layout.check_layout(phone_tab, base_url, "good.html", desktop=False)
    assert measured["footnotePx"] == 14
    text = "\n".join(bad)
    # the 1000 px image is shrunk to 600 px: 11 pt at 100 dpi (15.3 px) becomes 9.2 px
    assert "figure text drawn at 9.2 px, smaller than the footnotes' 14.0 px (the figure is shrunk to 60%)" in text
    assert "code cut off:" in text and "no scroll bar" in text
    assert "2 search boxes visible at once" in text
    assert "figure stored at 1.0x the pixels it is shown at, not 2x: blurry" in text
    assert "output cut off" not in text  # the second output scrolls: allowed
    assert good == []
    # at phone width the 600 px article sticks out of a 390 px window: the page scrolls sideways
    assert any("the page scrolls sideways" in problem for problem in phone)


def test_a_page_that_never_settles_fails_within_the_timeout(tmp_path, chromium):
    """MathJax that never finishes typesetting: the tab gives up after its timeout instead of hanging."""
    (tmp_path / "stuck.html").write_text(
        "<!DOCTYPE html><html><head><title>stuck</title><link rel='icon' href='data:,'>"
        "<script>window.MathJax = {startup: {promise: new Promise(() => {})}};</script></head>"
        "<body><h1>Stuck</h1></body></html>"
    )
    with (
        serve_directory(tmp_path) as base_url,
        headless_chromium(chromium) as browser,
        open_tab(browser, timeout=2) as tab,
    ):
        with pytest.raises(BrowserError, match="did not settle .* within 2 s"):
            tab.open(base_url + "stuck.html")
