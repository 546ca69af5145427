"""The layout of each page of the built site at a desktop and at a phone width.

:func:`check_site_layout` opens every page in a desktop tab and in a phone tab (``browser``);
``js/layout.js`` measures the page, and :func:`layout_problems` (no browser) judges the
measurements: the page does not scroll sideways, no equation, output, code block or table sticks
out of the text column or is cut off (long ones scroll inside their own box), figure text is drawn
no smaller than the site's footnotes, figures are stored at twice the pixels they are shown at
(sharp on high-density screens), a figure fits the desktop column, and only one search box shows.

Reads: the served site's files. Writes: nothing.
"""

from __future__ import annotations

from pathlib import Path

from .browser import BrowserError, Tab, headless_chromium, open_tab
from .server import serve_directory

#: Screen widths (CSS pixels) the layout is checked at: a desktop window and a phone.
DESKTOP_WIDTH, PHONE_WIDTH = 1280, 390
LAYOUT_WIDTHS = {"desktop": (DESKTOP_WIDTH, 1024), "phone": (PHONE_WIDTH, 844)}

# Figures of the book (dnn_course.plotting.use_book_style): BOOK_DPI pixels per inch, no text
# below MIN_FONT_PT points. Kept in step with dnn_course/plotting.py by tests/test_book_site.py.
BOOK_DPI = 100
MIN_FONT_PT = 11.0
# Pixels stored per displayed pixel of a figure (retina PNG): sharp on high-density screens.
BOOK_PIXEL_RATIO = 2


def layout_problems(measured: dict, *, desktop: bool) -> list[str]:
    """What is wrong with a page's layout, from what ``js/layout.js`` measured (`measured`).

    `measured`: ``problems`` (overflow and cut-off boxes, found in the page), ``figures`` (each
    with ``src``, ``scale``, ``textPx``, ``density``, ``width``, ``fits``), ``footnotePx``,
    ``column`` (the text column's width) and ``searches`` (visible search boxes), all in CSS pixels.
    """
    problems = list(measured["problems"])
    for figure in measured["figures"]:
        if figure["textPx"] + 0.05 < measured["footnotePx"]:
            problems.append(
                f"figure text drawn at {figure['textPx']:.1f} px, smaller than the footnotes' "
                f"{measured['footnotePx']:.1f} px (the figure is shrunk to {figure['scale']:.0%}): "
                f"{figure['src'][:80]}"
            )
        if figure["density"] < BOOK_PIXEL_RATIO - 0.05:
            problems.append(
                f"figure stored at {figure['density']:.1f}x the pixels it is shown at, not "
                f"{BOOK_PIXEL_RATIO}x: blurry on high-density screens (draw it after "
                f"dnn_course.plotting.use_book_style(); a cached output may predate it): "
                f"{figure['src'][:80]}"
            )
        if desktop and not figure["fits"]:
            problems.append(
                f"figure {figure['width']:.0f} px wide, wider than the {measured['column']:.0f} px "
                f"text column: {figure['src'][:80]}"
            )
    if measured["searches"] > 1:
        problems.append(f"{measured['searches']} search boxes visible at once")
    return problems


def check_layout(tab: Tab, base_url: str, path: str, *, desktop: bool) -> tuple[list[str], dict]:
    """Open one page in `tab` (a window of the width to check) and check its layout.

    `desktop`: whether a figure must also fit the text column. Returns (problems, measurements).
    """
    tab.open(base_url + path)
    measured = tab.run("layout", MIN_FONT_PT * BOOK_DPI / 72)
    return layout_problems(measured, desktop=desktop), measured


def check_site_layout(site_dir: Path, pages: list[str], chromium: str) -> dict[tuple[str, str], list[str]]:
    """Check the layout of each page at every width of LAYOUT_WIDTHS; {(page, width name): problems}."""
    site_dir = Path(site_dir).resolve()
    results = {}
    with serve_directory(site_dir) as base_url, headless_chromium(chromium) as browser:
        for name, (width, height) in LAYOUT_WIDTHS.items():
            desktop = name == "desktop"
            with open_tab(browser, width=width, height=height, mobile=not desktop) as tab:
                for path in pages:
                    try:
                        results[path, name] = check_layout(tab, base_url, path, desktop=desktop)[0]
                    except BrowserError as error:
                        results[path, name] = [f"the browser failed on this page: {error}"]
    return {(path, name): results[path, name] for path in pages for name in LAYOUT_WIDTHS}
