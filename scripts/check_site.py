"""Check the built course website in a real headless browser, and that it holds no solution.

The site in ``_build/html`` is served from a local HTTP server on 127.0.0.1 and every page
listed in ``_toc.yml`` is opened in the system's headless Chromium, driven by Playwright
(``scripts/website/``, one module per job). For each page it checks that

- the page loads (HTTP 200, no JavaScript exception);
- every ``.math`` element was typeset by MathJax, no MathJax error is shown, and no raw
  ``$$`` or TeX between ``$`` signs is left in the visible text (code excluded);
- every image loaded (``naturalWidth > 0``);
- every link to a page of the site points to a file that exists, and its ``#fragment``
  to an element that exists;
- no request left the machine (the site must work offline) and none failed;
- no LaTeX command is left in the visible text (for example in a link's text);
- at a desktop and at a phone width (``website.layout``): the page does not scroll sideways, no
  equation, output, code block or table sticks out of the text column or is cut off (long
  ones scroll inside their own box), figure text is drawn no smaller than the site's
  footnotes, figures are stored at twice their shown pixels, a figure fits the desktop column,
  and only one search box shows.

It also finds solution code that leaked into the site (``website.leaks``): no secret line of the
solution and hidden-test regions of ``solutions/dnn_hw/*.ipynb`` (the course's one line policy,
``dnn_course.secret_lines``, which feedback redaction and the kit's release scan share) may appear
in a page text or a downloadable source, and no page source may give a graded answer by the
course's leak policy
(``dnn_course.leak_policy``: a solution's expression in any code block or inline code span,
normalised; a written answer's model answer, reference numbers or rubric points).

Usage (after ``make book``)::

    .venv/bin/python scripts/check_site.py            # checks _build/html
    .venv/bin/python scripts/check_site.py --site DIR --toc _toc.yml --solutions solutions/dnn_hw

Chromium is the system's ($CHROMIUM, else ``chromium`` on PATH); ``playwright install`` is never
needed. ``tests/test_book_site.py`` runs the same checks under pytest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # scripts and dnn_course, when run as a script outside the environment's install
    sys.path.insert(0, str(REPO_ROOT))
from scripts.website import layout, pages, toc  # noqa: E402 - importable once the path above is set
from scripts.website.browser import INSTALL_HINT, find_chromium  # noqa: E402 - as above
from scripts.website.leaks import find_solution_leaks  # noqa: E402 - as above


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=REPO_ROOT / "_build" / "html", help="the built site")
    parser.add_argument("--toc", type=Path, default=REPO_ROOT / "_toc.yml", help="the book's _toc.yml")
    parser.add_argument(
        "--solutions",
        type=Path,
        default=REPO_ROOT / "solutions" / "dnn_hw",
        help="nbgrader source notebooks whose solutions must not be published",
    )
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print(f"error: no Chromium found; {INSTALL_HINT}, or set CHROMIUM", file=sys.stderr)
        return 2
    if not (args.site / "index.html").is_file():
        print(f"error: {args.site} holds no built site; run `make book` first", file=sys.stderr)
        return 2
    page_paths = [name + ".html" for name in toc.toc_docnames(args.toc)] + ["index.html", "search.html"]
    reports = pages.check_site(args.site, page_paths, chromium)
    leaks = find_solution_leaks(args.site, args.solutions, {p: r.text for p, r in reports.items()})
    for (path, width), problems in layout.check_site_layout(args.site, page_paths[:-2], chromium).items():
        reports[path].problems += [f"at {width} width: {problem}" for problem in problems]
    failed = 0
    for path, report in reports.items():
        status = "ok" if not report.problems else "FAIL"
        print(
            f"{status:4} {path}: {report.typeset}/{report.math} math typeset, {len(report.images)} images, "
            f"{len(report.links)} links"
        )
        for problem in report.problems:
            print(f"     - {problem}")
        failed += bool(report.problems)
    for leak in leaks:
        print(f"LEAK {leak}")
    print(f"{len(reports) - failed} passed, {failed + bool(leaks)} failed")
    return 1 if failed or leaks else 0


if __name__ == "__main__":
    sys.exit(main())
