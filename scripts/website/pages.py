"""Each page of the built site as a reader's browser shows it: loads, math, images, links, requests.

:func:`check_site` serves the site and opens each page in headless Chromium (``browser``);
``js/inspect.js`` reads what the checks need from the page, and :func:`page_problems` (no
browser: the checks themselves) turns that and the page's :class:`~.browser.LoadEvents` into
problems:

- the page loads (no HTTP error, no failed request, no JavaScript exception) and has a title;
- every ``.math`` element was typeset by MathJax, no MathJax error is shown, and no raw ``$$``,
  TeX between ``$`` signs or LaTeX command is left in the visible text (code excluded);
- every image loaded (``naturalWidth > 0``);
- every link to a page of the site points to a file that exists, and its ``#fragment`` to an
  element that exists;
- no request left the machine (the site must work offline).

:func:`search` runs the site's search page. Reads: the served site's files. Writes: nothing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from playwright.sync_api import Error as PlaywrightError

from .browser import BrowserError, LoadEvents, Tab, headless_chromium, open_tab
from .server import serve_directory

# TeX left between single dollars: a $...$ span holding a backslash, ^ or _ (not a price).
_RAW_INLINE_TEX = re.compile(r"\$[^$\s][^$\n]{0,200}?[\\^_][^$\n]{0,200}?\$")
# A TeX command outside math, e.g. the "\lambda W" of a section title quoted in a link.
_RAW_TEX_COMMAND = re.compile(
    r"\\(?:lambda|partial|frac|hat|mathbf|mathbb|top|sum|log|odot|varepsilon|sigma|eta|ell|text|operatorname|"
    r"lVert|rVert|Vert|cdot|le|ge|infty|sqrt)\b"
)
_LOCAL_HOSTS = ("127.0.0.1", "localhost")


@dataclass
class PageReport:
    """What one page showed in the browser, and what is wrong with it."""

    path: str  # relative to the site root, e.g. "book/01_activations.html"
    url: str = ""  # where the browser ended up (after any redirect)
    title: str = ""
    heading: str = ""
    text: str = ""  # the page's visible text (innerText)
    math: int = 0  # number of .math elements
    typeset: int = 0  # number of MathJax outputs
    images: list[str] = field(default_factory=list)  # image sources (absolute URLs)
    outputs: int = 0  # executed code-cell outputs shown
    links: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)  # download-source buttons (absolute URLs)
    launches: list[str] = field(default_factory=list)  # launch buttons (Binder, Colab, JupyterHub)
    problems: list[str] = field(default_factory=list)


def local_target(site_dir: Path, base_url: str, url: str) -> tuple[Path, str] | None:
    """The file a URL of the served site points to and its fragment; None for other URLs."""
    if not url.startswith(base_url):
        return None
    parts = urlsplit(url)
    relative = unquote(parts.path)[len(urlsplit(base_url).path) :]
    target = site_dir / relative
    if relative == "" or relative.endswith("/"):
        target = target / "index.html"
    return target, unquote(parts.fragment)


@functools.cache
def _anchors(path: Path, mtime: float) -> frozenset[str]:
    html = path.read_text(encoding="utf-8", errors="replace")
    return frozenset(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", html))


def network_problems(events: LoadEvents) -> list[str]:
    """Requests that left the machine, HTTP errors, failed requests and JavaScript exceptions of one load."""
    problems = []
    for url in events.requests:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in _LOCAL_HOSTS:
            problems.append(f"request leaves the machine (the site must work offline): {url}")
    for status, url in events.responses:
        # Browsers ask for /favicon.ico on their own when a page names no icon (the
        # redirecting index.html): not a resource of the site.
        if status >= 400 and urlsplit(url).path != "/favicon.ico":
            problems.append(f"HTTP {status} for {url}")
    for error_text, url in events.failures:
        problems.append(f"loading failed ({error_text}) for {url}")
    for exception in events.exceptions:
        problems.append(f"JavaScript exception: {exception}")
    return problems


def page_problems(seen: dict, site_dir: Path, base_url: str) -> list[str]:
    """What is wrong with a page, from what ``js/inspect.js`` read of it (`seen`), served from `site_dir`."""
    problems = []
    if not seen["heading"]:
        problems.append("the page has no <h1> title")
    for snippet in seen["untypeset"]:
        problems.append(f"math not typeset by MathJax: {snippet!r}")
    for message in seen["mathErrors"]:
        problems.append(f"MathJax error: {message!r}")
    prose = seen["prose"]
    if "$$" in prose:
        at = prose.index("$$")
        problems.append(f"raw $$ in the visible text: {prose[max(0, at - 40) : at + 60]!r}")
    for match in _RAW_INLINE_TEX.finditer(prose):
        problems.append(f"raw TeX between $ signs in the visible text: {match.group(0)[:80]!r}")
    for match in _RAW_TEX_COMMAND.finditer(prose):
        at = match.start()
        problems.append(f"raw LaTeX command in the visible text: {prose[max(0, at - 30) : at + 40]!r}")
    for image in seen["images"]:
        if image["width"] <= 0:
            problems.append(f"image did not load: {image['src'][:200]}")
    for url in sorted(set(seen["links"])):
        target = local_target(site_dir, base_url, url)
        if target is None:
            continue
        file, fragment = target
        if not file.is_file():
            problems.append(f"broken link: {url} (no file {file.relative_to(site_dir)})")
        elif fragment and file.suffix == ".html" and fragment not in _anchors(file, file.stat().st_mtime):
            problems.append(f"broken link: {url} (no element with id {fragment!r})")
    return problems


def check_page(tab: Tab, site_dir: Path, base_url: str, path: str) -> PageReport:
    """Open one page of the served site and check math, images, links and requests."""
    report = PageReport(path=path)
    if not (site_dir / path).is_file():
        report.problems.append(f"page not built: {site_dir / path} does not exist")
        return report
    events = tab.open(base_url + path)
    seen = tab.run("inspect")
    report.url, report.title, report.heading = seen["url"], seen["title"], seen["heading"]
    report.text = seen["text"]
    report.math, report.typeset, report.outputs = seen["math"], seen["typeset"], seen["outputs"]
    report.images, report.links = [image["src"] for image in seen["images"]], seen["links"]
    report.downloads, report.launches = seen["downloads"], seen["launches"]
    report.problems += network_problems(events) + page_problems(seen, site_dir, base_url)
    return report


def check_site(site_dir: Path, pages: list[str], chromium: str) -> dict[str, PageReport]:
    """Serve `site_dir` and check each page (paths relative to it) in headless Chromium."""
    site_dir = Path(site_dir).resolve()
    reports = {}
    with serve_directory(site_dir) as base_url, headless_chromium(chromium) as browser, open_tab(browser) as tab:
        for path in pages:
            try:
                reports[path] = check_page(tab, site_dir, base_url, path)
            except BrowserError as error:  # one page's trouble must not hide the others'
                reports[path] = PageReport(path=path, problems=[f"the browser failed on this page: {error}"])
    return reports


def search(tab: Tab, base_url: str, query: str, timeout: float = 15.0) -> list[str]:
    """Run the site's search page for `query`; the result links (absolute URLs), in order."""
    tab.open(f"{base_url}search.html?q={query}")
    try:
        tab.page.locator("#search-results .search-summary").wait_for(state="attached", timeout=timeout * 1000)
    except PlaywrightError:
        raise BrowserError(f"the search for {query!r} did not finish within {timeout:g} s") from None
    return tab.page.locator("#search-results ul.search a").evaluate_all("links => links.map(a => a.href)")
