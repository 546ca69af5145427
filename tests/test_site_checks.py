"""The site check's judgements, without a browser: what ``scripts/website`` makes of what a page showed.

The browser half (``js/*.js`` reading real pages in Chromium) is tested end to end in
``tests/test_book_site.py``; here the checks get the measurements directly, so each rule and its
threshold is pinned in milliseconds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts.website import browser, layout, pages, toc
from scripts.website.browser import LoadEvents

BASE = "http://127.0.0.1:8000/"


# --- requests and exceptions of one load -------------------------------------------------------


def test_network_problems_name_what_left_the_machine_failed_or_threw():
    events = LoadEvents(
        requests=[
            BASE + "book/a.html",
            "http://localhost:9/x.js",
            "data:,",
            "file:///tmp/a.css",
            "https://cdn.example.org/mathjax.js",
            "wss://example.org/socket",
        ],
        responses=[
            (200, BASE + "book/a.html"),
            (404, BASE + "missing.png"),
            (404, BASE + "favicon.ico"),
            (500, BASE + "book/b.html"),
        ],
        failures=[("net::ERR_CONNECTION_REFUSED", "http://127.0.0.2:9/cdn.js")],
        exceptions=["ReferenceError: f is not defined"],
    )
    assert pages.network_problems(events) == [
        "request leaves the machine (the site must work offline): https://cdn.example.org/mathjax.js",
        "request leaves the machine (the site must work offline): wss://example.org/socket",
        f"HTTP 404 for {BASE}missing.png",
        f"HTTP 500 for {BASE}book/b.html",
        "loading failed (net::ERR_CONNECTION_REFUSED) for http://127.0.0.2:9/cdn.js",
        "JavaScript exception: ReferenceError: f is not defined",
    ]
    assert pages.network_problems(LoadEvents(requests=[BASE], responses=[(200, BASE)])) == []


# --- what a page shows ----------------------------------------------------------------------------


def _seen(**changes) -> dict:
    """What js/inspect.js reads of a page with nothing wrong, with `changes`."""
    seen = {
        "heading": "1. Activations",
        "untypeset": [],
        "mathErrors": [],
        "prose": "Costs $5 and $6.",
        "images": [{"src": BASE + "_images/a.png", "width": 640}],
        "links": [],
    }
    return {**seen, **changes}


@pytest.fixture
def site(tmp_path) -> Path:
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "a.html").write_text('<h1 id="top">A</h1><p name="old-anchor"></p>')
    (tmp_path / "index.html").write_text("<meta http-equiv='refresh' content='0; url=book/a.html'>")
    return tmp_path


def test_a_clean_page_has_no_problem(site):
    links = [BASE + "book/a.html#top", BASE + "book/a.html#old-anchor", BASE, "https://example.org/#nowhere"]
    assert pages.page_problems(_seen(links=links), site, BASE) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"heading": ""}, "the page has no <h1> title"),
        ({"untypeset": ["\\(x^2\\)"]}, "math not typeset by MathJax: '\\\\(x^2\\\\)'"),
        ({"mathErrors": ["Undefined control sequence"]}, "MathJax error: 'Undefined control sequence'"),
        ({"prose": "Display: $$ E = mc^2 $$"}, "raw $$ in the visible text: 'Display: $$ E = mc^2 $$'"),
        ({"prose": "inline $x^2_i$ here"}, "raw TeX between $ signs in the visible text: '$x^2_i$'"),
        ({"prose": "Its gradient: \\lambda W"}, "raw LaTeX command in the visible text: 'Its gradient: \\\\lambda W'"),
        ({"images": [{"src": BASE + "missing.png", "width": 0}]}, f"image did not load: {BASE}missing.png"),
        ({"links": [BASE + "book/nowhere.html"]}, f"broken link: {BASE}book/nowhere.html (no file book/nowhere.html)"),
        ({"links": [BASE + "book/a.html#gone"]}, f"broken link: {BASE}book/a.html#gone (no element with id 'gone')"),
    ],
)
def test_each_page_problem_is_reported(site, changes, problem):
    assert pages.page_problems(_seen(**changes), site, BASE) == [problem]


def test_prices_and_tex_commands_in_code_are_not_raw_tex(site):
    # inspect.js leaves code out of "prose"; two prices are not a $...$ formula
    assert pages.page_problems(_seen(prose="From $5 to $6, or \\lambdas"), site, BASE) == []


def test_local_target_maps_a_url_of_the_served_site_to_its_file(site):
    assert pages.local_target(site, BASE, BASE + "book/a%20b.html#sec%201") == (site / "book" / "a b.html", "sec 1")
    assert pages.local_target(site, BASE, BASE + "book/") == (site / "book" / "index.html", "")
    assert pages.local_target(site, BASE, "https://example.org/book/a.html") is None


# --- layout -------------------------------------------------------------------------------------


def _figure(**changes) -> dict:
    """A figure as js/layout.js measures it: shown at its declared size, stored at twice the pixels."""
    text_px = layout.MIN_FONT_PT * layout.BOOK_DPI / 72
    figure = {"src": "../_images/fig.png", "scale": 1.0, "textPx": text_px, "density": 2.0, "width": 600, "fits": True}
    return {**figure, **changes}


def _measured(**changes) -> dict:
    measured = {"problems": [], "figures": [_figure()], "footnotePx": 14.0, "column": 740, "searches": 1}
    return {**measured, **changes}


def test_a_clean_layout_has_no_problem():
    assert layout.layout_problems(_measured(), desktop=True) == []


def test_figure_text_must_not_be_smaller_than_the_footnotes():
    at_the_limit = _measured(footnotePx=15.0, figures=[_figure(textPx=14.96)])
    assert layout.layout_problems(at_the_limit, desktop=True) == []  # within the 0.05 px rounding
    shrunk = _measured(figures=[_figure(textPx=9.2, scale=0.6)])
    assert layout.layout_problems(shrunk, desktop=False) == [
        "figure text drawn at 9.2 px, smaller than the footnotes' 14.0 px (the figure is shrunk to 60%): "
        "../_images/fig.png"
    ]


def test_figures_must_be_stored_at_twice_their_shown_pixels():
    assert layout.layout_problems(_measured(figures=[_figure(density=1.96)]), desktop=True) == []
    problems = layout.layout_problems(_measured(figures=[_figure(density=1.0)]), desktop=True)
    assert len(problems) == 1 and problems[0].startswith("figure stored at 1.0x the pixels it is shown at, not 2x")


def test_a_figure_wider_than_the_column_fails_on_the_desktop_only():
    wide = _measured(figures=[_figure(width=900, fits=False)])
    assert layout.layout_problems(wide, desktop=True) == [
        "figure 900 px wide, wider than the 740 px text column: ../_images/fig.png"
    ]
    assert layout.layout_problems(wide, desktop=False) == []


def test_the_page_problems_come_first_then_two_search_boxes():
    measured = _measured(problems=["the page scrolls sideways: 500 px wide in a 390 px window"], searches=2)
    assert layout.layout_problems(measured, desktop=False) == [
        "the page scrolls sideways: 500 px wide in a 390 px window",
        "2 search boxes visible at once",
    ]


def test_the_layout_is_checked_at_a_desktop_and_a_phone_width():
    assert layout.LAYOUT_WIDTHS == {"desktop": (1280, 1024), "phone": (390, 844)}


# --- the pieces the browser half is made of -----------------------------------------------------


def test_toc_docnames_lists_the_root_then_every_file_in_order(tmp_path):
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: Chapters\n    chapters:\n"
        "      - file: book/01_a.md\n        sections:\n          - file: book/01_b\n"
        "  - chapters:\n      - file: exercises/ex.ipynb\n"
    )
    assert toc.toc_docnames(tmp_path / "_toc.yml") == ["book/intro", "book/01_a", "book/01_b", "exercises/ex"]


def test_every_page_script_is_a_function_the_checks_run():
    """Each js/*.js holds one function (what Playwright calls) and is run by a module of scripts/website."""
    scripts = sorted(path.stem for path in browser.JS_DIR.glob("*.js"))
    assert scripts == ["inspect", "layout", "settle"]
    code = "\n".join(path.read_text() for path in browser.JS_DIR.parent.glob("*.py"))
    for name in scripts:
        assert re.search(rf"""(run|page_script)\("{name}"[,)]""", code), f"js/{name}.js is run by no check"
        body = re.sub(r"^\s*//.*\n", "", browser.page_script(name), flags=re.MULTILINE).strip()
        assert re.match(r"^(async\s*)?\([^)]*\)\s*=>\s*\{", body) and body.endswith("}"), (
            f"js/{name}.js must hold one arrow function after its comments"
        )


def test_find_chromium_prefers_the_chromium_variable(tmp_path, monkeypatch):
    fake = tmp_path / "my-browser"
    fake.write_text("#!/bin/sh\n")
    monkeypatch.setenv("CHROMIUM", str(fake))
    assert browser.find_chromium() == str(fake)
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "absent"))
    assert browser.find_chromium() is None
