"""Check the built course website in a real headless browser.

The site in ``_build/html`` is served from a local HTTP server on 127.0.0.1 and every page
listed in ``_toc.yml`` is opened in headless Chromium, driven over the Chrome DevTools
Protocol (CDP) with ``websocket-client``. For each page it checks that

- the page loads (HTTP 200, no JavaScript exception);
- every ``.math`` element was typeset by MathJax, no MathJax error is shown, and no raw
  ``$$`` or TeX between ``$`` signs is left in the visible text (code excluded);
- every image loaded (``naturalWidth > 0``);
- every link to a page of the site points to a file that exists, and its ``#fragment``
  to an element that exists;
- no request left the machine (the site must work offline) and none failed;
- no LaTeX command is left in the visible text (for example in a link's text);
- at a desktop and at a phone width (``check_layout``): the page does not scroll sideways, no
  equation, output, code block or table sticks out of the text column or is cut off (long
  ones scroll inside their own box), figure text is drawn no smaller than the site's
  footnotes, a figure fits the desktop column, and only one search box shows.

It also finds solution code that leaked into the site: no secret line of the solution and
hidden-test regions of ``solutions/dnn_hw/*.ipynb`` (the course's one line policy,
``dnn_course.secret_lines``, which feedback redaction and the kit's release scan share) may
appear in a page text or a downloadable source, and no page source may give a graded answer by
the course's leak policy
(``dnn_course.leak_policy``: a solution's expression in any code block or inline code span,
normalised; a written answer's model answer, reference numbers or rubric points).

Usage (after ``make book``)::

    .venv/bin/python scripts/check_site.py            # checks _build/html
    .venv/bin/python scripts/check_site.py --site DIR --toc _toc.yml --solutions solutions/dnn_hw

``tests/test_book_site.py`` runs the same checks under pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

import websocket
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # dnn_course, when run as a script outside the environment's install
    sys.path.insert(0, str(REPO_ROOT))
from dnn_course import leak_policy, nbgrader_regions, secret_lines  # noqa: E402

#: Flags for a quiet, isolated, offline headless Chromium (a fresh profile is added per run).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--window-size=1280,1024",
)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install it with `apt-get update && apt-get install -y chromium` (Debian/Ubuntu)"

# TeX left between single dollars: a $...$ span holding a backslash, ^ or _ (not a price).
_RAW_INLINE_TEX = re.compile(r"\$[^$\s][^$\n]{0,200}?[\\^_][^$\n]{0,200}?\$")
# A TeX command outside math, e.g. the "\lambda W" of a section title quoted in a link.
_RAW_TEX_COMMAND = re.compile(
    r"\\(?:lambda|partial|frac|hat|mathbf|mathbb|top|sum|log|odot|varepsilon|sigma|eta|ell|text|operatorname|"
    r"lVert|rVert|Vert|cdot|le|ge|infty|sqrt)\b")


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer as expected."""


def find_chromium() -> str | None:
    """Path of a Chromium executable: $CHROMIUM if set, else the first on PATH, else None."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # The browser drops connections it no longer needs (a page that redirects): not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve_directory(directory: str | os.PathLike) -> Iterator[str]:
    """Serve `directory` over HTTP on 127.0.0.1 (a free port); yields the base URL ending in '/'."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class HeadlessChromium:
    """One headless Chromium with one tab, driven over the DevTools protocol.

    Use as a context manager; the browser and its throwaway profile are removed on exit.
    """

    def __init__(self, binary: str, timeout: float = 30.0):
        self.binary = binary
        self.timeout = timeout
        self._next_id = 0
        self._events: list[dict] = []
        self._process: subprocess.Popen | None = None
        self._profile: tempfile.TemporaryDirectory | None = None
        self._ws = None
        self._session = None

    def __enter__(self) -> "HeadlessChromium":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="check-site-chromium-")
        profile = Path(self._profile.name)
        self._log = open(profile / "chromium.log", "wb")
        command = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile / 'profile'}",
                   "--remote-debugging-port=0", "about:blank"]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT)
        port_file = profile / "profile" / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while True:
            lines = port_file.read_text().split() if port_file.exists() else []
            if len(lines) >= 2:
                break
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise BrowserError(f"Chromium ({self.binary}) did not start its DevTools server:\n"
                                   + self._log_tail())
            time.sleep(0.05)
        port, path = lines[0], lines[1]
        self._ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=self.timeout,
                                               suppress_origin=True)
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                  session=False)["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable")

    def _log_tail(self, chars: int = 3000) -> str:
        if self._profile is None:
            return ""
        self._log.flush()
        text = (Path(self._profile.name) / "chromium.log").read_bytes().decode("utf-8", "replace")
        return text[-chars:]

    def _receive(self) -> dict:
        try:
            return json.loads(self._ws.recv())
        except websocket.WebSocketTimeoutException:
            raise BrowserError(f"Chromium did not answer within {self.timeout:g} s") from None

    def call(self, method: str, params: dict | None = None, *, session: bool = True) -> dict:
        """Send one CDP command (to the tab unless session=False) and return its result."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        self._ws.send(json.dumps(message))
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def wait_for_event(self, method: str, timeout: float | None = None) -> dict:
        """Wait for the next event `method` of the tab (events seen earlier count) and consume it."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for index, event in enumerate(self._events):
                if event["method"] == method and event.get("sessionId") == self._session:
                    return self._events.pop(index)
            if time.monotonic() > deadline:
                raise BrowserError(f"no {method} event within {timeout or self.timeout:g} s")
            self._events.append(self._receive())

    def evaluate(self, expression: str, *, await_promise: bool = False):
        """Evaluate JavaScript in the page and return its value (JSON-serialisable)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": await_promise})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript error: {text}")
        return result["result"].get("value")

    def open(self, url: str) -> list[dict]:
        """Load `url`, wait for it (load event, MathJax, images) and return the tab's events."""
        self._events.clear()
        navigation = self.call("Page.navigate", {"url": url})
        if navigation.get("errorText"):
            raise BrowserError(f"could not open {url}: {navigation['errorText']}")
        self.wait_for_event("Page.loadEventFired")
        deadline = time.monotonic() + self.timeout
        while True:
            # A page that redirects (index.html, by <meta http-equiv="refresh">) loads another
            # one: settle again until a page has settled that does not redirect.
            try:
                if not self.evaluate(_SETTLE_JS, await_promise=True)["redirects"]:
                    break
            except BrowserError as error:
                if not any(reason in str(error) for reason in _NAVIGATED):
                    raise
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} kept redirecting for {self.timeout:g} s")
            time.sleep(0.05)
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self.call("Browser.close", session=False)
            with contextlib.suppress(Exception):
                self._ws.close()
            self._ws = None
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        if self._profile is not None:
            self._log.close()
            self._profile.cleanup()
            self._profile = None


_NAVIGATED = ("navigated or closed", "context was destroyed", "Cannot find context")

# Waits for the page's load event, for MathJax to finish typesetting and for every image
# (lazy ones made eager) to settle.
_SETTLE_JS = r"""
(async () => {
  if (document.readyState !== "complete") {
    await new Promise(done => window.addEventListener("load", done, {once: true}));
  }
  for (const img of document.images) { img.loading = "eager"; }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  await Promise.all(Array.from(document.images).map(img => img.complete ? null :
      new Promise(done => { img.addEventListener("load", done); img.addEventListener("error", done); })));
  return {redirects: !!document.querySelector('meta[http-equiv="refresh" i]')};
})()
"""

# Everything the checks need from a loaded page, in one round trip.
_INSPECT_JS = r"""
(() => {
  const skip = "pre, code, script, style, noscript, textarea, mjx-container, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: n => (n.parentElement && n.parentElement.closest(skip))
                     ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT });
  const prose = [];
  while (walker.nextNode()) prose.push(walker.currentNode.nodeValue);
  // The article's own title (the theme also prints an unnumbered copy for print only).
  const heading = document.querySelector("article.bd-article h1") || document.querySelector("h1");
  const title = heading ? heading.cloneNode(true) : null;
  if (title) title.querySelectorAll(".headerlink").forEach(e => e.remove());
  return {
    url: location.href,
    title: document.title,
    heading: title ? title.textContent.replace(/\s+/g, " ").trim() : "",
    prose: prose.join(" "),
    text: document.body.innerText,
    math: document.querySelectorAll(".math").length,
    untypeset: Array.from(document.querySelectorAll(".math"))
                    .filter(e => !e.querySelector("mjx-container"))
                    .map(e => e.textContent.trim().slice(0, 80)),
    typeset: document.querySelectorAll("mjx-container").length,
    mathErrors: Array.from(document.querySelectorAll("mjx-merror, [data-mjx-error]"))
                     .map(e => e.getAttribute("data-mjx-error") || e.textContent.slice(0, 80)),
    images: Array.from(document.images).map(i => ({src: i.currentSrc || i.src, width: i.naturalWidth})),
    links: Array.from(document.querySelectorAll("a[href]")).map(a => a.href),
    outputs: document.querySelectorAll(".cell_output").length,
    downloads: Array.from(document.querySelectorAll("a.btn-download-source-button")).map(a => a.href),
    launches: Array.from(document.querySelectorAll(".dropdown-launch-buttons a")).map(a => a.href),
  };
})()
"""


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
    relative = unquote(parts.path)[len(urlsplit(base_url).path):]
    target = site_dir / relative
    if relative == "" or relative.endswith("/"):
        target = target / "index.html"
    return target, unquote(parts.fragment)


@functools.lru_cache(maxsize=None)
def _anchors(path: Path, mtime: float) -> frozenset[str]:
    html = path.read_text(encoding="utf-8", errors="replace")
    return frozenset(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", html))


def _network_problems(events: list[dict]) -> list[str]:
    problems = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            host = urlsplit(url).hostname
            if urlsplit(url).scheme in ("http", "https", "ws", "wss") and host not in ("127.0.0.1", "localhost"):
                problems.append(f"request leaves the machine (the site must work offline): {url}")
        elif method == "Network.responseReceived":
            status = params["response"]["status"]
            # Browsers ask for /favicon.ico on their own when a page names no icon (the
            # redirecting index.html): not a resource of the site.
            if status >= 400 and urlsplit(params["response"]["url"]).path != "/favicon.ico":
                problems.append(f"HTTP {status} for {params['response']['url']}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"loading failed ({params.get('errorText')}) for request {params.get('requestId')}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            problems.append(f"JavaScript exception: {text}")
    return problems


def check_page(browser: HeadlessChromium, site_dir: Path, base_url: str, path: str) -> PageReport:
    """Open one page of the served site and check math, images, links and requests."""
    report = PageReport(path=path)
    if not (site_dir / path).is_file():
        report.problems.append(f"page not built: {site_dir / path} does not exist")
        return report
    events = browser.open(base_url + path)
    report.problems += _network_problems(events)
    page = browser.evaluate(_INSPECT_JS)
    report.url, report.title, report.heading = page["url"], page["title"], page["heading"]
    report.text = page["text"]
    report.math, report.typeset, report.outputs = page["math"], page["typeset"], page["outputs"]
    report.images, report.links = [image["src"] for image in page["images"]], page["links"]
    report.downloads, report.launches = page["downloads"], page["launches"]

    if not report.heading:
        report.problems.append("the page has no <h1> title")
    for snippet in page["untypeset"]:
        report.problems.append(f"math not typeset by MathJax: {snippet!r}")
    for message in page["mathErrors"]:
        report.problems.append(f"MathJax error: {message!r}")
    if "$$" in page["prose"]:
        at = page["prose"].index("$$")
        report.problems.append(f"raw $$ in the visible text: {page['prose'][max(0, at - 40):at + 60]!r}")
    for match in _RAW_INLINE_TEX.finditer(page["prose"]):
        report.problems.append(f"raw TeX between $ signs in the visible text: {match.group(0)[:80]!r}")
    for match in _RAW_TEX_COMMAND.finditer(page["prose"]):
        at = match.start()
        report.problems.append(f"raw LaTeX command in the visible text: {page['prose'][max(0, at - 30):at + 40]!r}")
    for image in page["images"]:
        if image["width"] <= 0:
            report.problems.append(f"image did not load: {image['src'][:200]}")
    for url in sorted(set(report.links)):
        target = local_target(site_dir, base_url, url)
        if target is None:
            continue
        file, fragment = target
        if not file.is_file():
            report.problems.append(f"broken link: {url} (no file {file.relative_to(site_dir)})")
        elif fragment and file.suffix == ".html" and fragment not in _anchors(file, file.stat().st_mtime):
            report.problems.append(f"broken link: {url} (no element with id {fragment!r})")
    return report


def search(browser: HeadlessChromium, base_url: str, query: str, timeout: float = 15.0) -> list[str]:
    """Run the site's search page for `query`; the result links (absolute URLs), in order."""
    browser.open(f"{base_url}search.html?q={query}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = browser.evaluate(
            "({done: !!document.querySelector('#search-results .search-summary'),"
            " links: Array.from(document.querySelectorAll('#search-results ul.search a')).map(a => a.href)})")
        if state["done"]:
            return state["links"]
        time.sleep(0.1)
    raise BrowserError(f"the search for {query!r} did not finish within {timeout:g} s")


def toc_docnames(toc_path: Path) -> list[str]:
    """Document names listed in a Jupyter Book _toc.yml (root first), e.g. 'book/00_introduction'."""
    toc = yaml.safe_load(Path(toc_path).read_text())
    names = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                names.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({key: value for key, value in toc.items() if key != "root"})
    return [re.sub(r"\.(md|ipynb)$", "", name) for name in names]


def _downloadable_text(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n".join(cell.source for cell in nbgrader_regions.read_cells(path))
    return path.read_text(encoding="utf-8", errors="replace")


def find_solution_leaks(site_dir: Path, solutions_dir: Path, page_texts: dict[str, str]) -> list[str]:
    """Solution content found in the site: paths, nbgrader markers, secret lines in pages or sources, and
    what the leak policy calls a graded answer."""
    leaks = []
    site_dir = Path(site_dir)
    files = [p for p in site_dir.rglob("*") if p.is_file()]
    for path in files:
        relative = path.relative_to(site_dir).as_posix()
        if "solutions/" in relative or relative.startswith("solutions"):
            leaks.append(f"a solution file is published: {relative}")
    texts = {p.relative_to(site_dir).as_posix(): _downloadable_text(p) for p in files
             if p.suffix in (".html", ".ipynb", ".md", ".txt", ".js", ".json", ".py")
             and "_static/" not in p.relative_to(site_dir).as_posix()}
    for relative, text in texts.items():
        for marker in nbgrader_regions.MARKERS:
            if marker in text:
                leaks.append(f"nbgrader marker {marker!r} published in {relative}")
    lines = secret_lines.secret_lines(solutions_dir)
    for name, text in {**texts, **page_texts}.items():
        leaks += [f"{line.kind} line of {line.notebook} published in {name}: {line.key[:80]!r}"
                  for line in secret_lines.found_in(text, lines)]
    # The leak policy reads the sources (Markdown, notebooks: their code spans are marked) for code
    # and written answers, and the pages' visible text (numbers computed at build time) for answers.
    sources = {path.relative_to(site_dir).as_posix(): leak_policy.page_text(path) for path in files
               if path.suffix in (".md", ".ipynb") and "_static/" not in path.relative_to(site_dir).as_posix()}
    leaks += [f"leak policy: {leak}" for leak in leak_policy.find_leaks(sources, solutions_dir)]
    leaks += [f"leak policy: {leak}" for leak in leak_policy.find_leaks(page_texts, solutions_dir, code=False)]
    return leaks


def check_site(site_dir: Path, pages: list[str], chromium: str) -> dict[str, PageReport]:
    """Serve `site_dir` and check each page (paths relative to it) in headless Chromium."""
    site_dir = Path(site_dir).resolve()
    reports = {}
    with serve_directory(site_dir) as base_url, HeadlessChromium(chromium) as browser:
        for path in pages:
            try:
                reports[path] = check_page(browser, site_dir, base_url, path)
            except BrowserError as error:  # one page's trouble must not hide the others'
                reports[path] = PageReport(path=path, problems=[f"the browser failed on this page: {error}"])
    return reports


# --- layout at a given screen width -----------------------------------------------------------

#: Screen widths (CSS pixels) the layout is checked at: a desktop window and a phone.
DESKTOP_WIDTH, PHONE_WIDTH = 1280, 390
LAYOUT_WIDTHS = {"desktop": (DESKTOP_WIDTH, 1024), "phone": (PHONE_WIDTH, 844)}

# Figures of the book (dnn_course.plotting.use_book_style): BOOK_DPI pixels per inch, no text
# below MIN_FONT_PT points. Kept in step with dnn_course/plotting.py by tests/test_book_site.py.
BOOK_DPI = 100
MIN_FONT_PT = 11.0
# Pixels stored per displayed pixel of a figure (retina PNG): sharp on high-density screens.
BOOK_PIXEL_RATIO = 2

# Measures, at the current window size, what sticks out of the text column, what is cut off,
# and how large the smallest text of each figure is drawn. Everything in CSS pixels.
_LAYOUT_JS = r"""
((minFontPx) => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const column = article.getBoundingClientRect();
  // The size of the site's footnotes: a probe footnote, styled by the theme like a real one.
  const probe = document.createElement("aside");
  probe.className = "footnote";
  probe.innerHTML = "<p>probe</p>";
  article.appendChild(probe);
  const footnotePx = parseFloat(getComputedStyle(probe.querySelector("p")).fontSize);
  probe.remove();
  const describe = e => (e.textContent || e.getAttribute("src") || "").replace(/\s+/g, " ").trim().slice(0, 70);
  const visible = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const problems = [];
  const root = document.documentElement;
  // clientWidth is the layout viewport; a phone browser widens innerWidth to fit wide content
  if (root.scrollWidth > root.clientWidth + 1) {
    problems.push(`the page scrolls sideways: ${root.scrollWidth} px wide in a ${root.clientWidth} px window`);
  }
  const boxes = [
    ["equation", "mjx-container[display='true']"],
    ["output", "div.cell_output"],
    ["code", "div.highlight pre"],
    ["table", "article table"],
  ];
  for (const [kind, selector] of boxes) {
    for (const e of document.querySelectorAll(selector)) {
      if (!visible(e) || e.closest(".toggle-hidden, details:not([open])")) continue;
      const r = e.getBoundingClientRect();
      const style = getComputedStyle(e);
      const scrolls = ["auto", "scroll"];
      // scrollable ancestors inside the column count as the box that holds it
      let holder = e, held = false;
      while (holder && holder !== article) {
        if (scrolls.includes(getComputedStyle(holder).overflowX) && holder.getBoundingClientRect().right <= column.right + 1) { held = true; break; }
        holder = holder.parentElement;
      }
      if (r.right > column.right + 1 && !held) {
        problems.push(`${kind} sticks out of the text column by ${Math.round(r.right - column.right)} px: ${describe(e)}`);
      }
      if (e.scrollWidth > e.clientWidth + 1 && !scrolls.includes(style.overflowX)) {
        problems.push(`${kind} cut off: ${e.scrollWidth - e.clientWidth} px of it hidden and no scroll bar: ${describe(e)}`);
      }
      if (e.scrollHeight > e.clientHeight + 1 && ["hidden", "clip"].includes(style.overflowY)) {
        problems.push(`${kind} cut off at the top or bottom by ${e.scrollHeight - e.clientHeight} px: ${describe(e)}`);
      }
    }
  }
  const figures = [];
  for (const img of document.querySelectorAll("div.cell_output img")) {
    if (!img.naturalWidth || !visible(img)) continue;
    // a high-density ("retina") figure stores more pixels than its declared width: its text is
    // minFontPx per declared pixel, so scale against the declared width
    const declared = (img.style.width.endsWith("px") && parseFloat(img.style.width))
        || parseFloat(img.getAttribute("width")) || img.naturalWidth;
    const scale = img.getBoundingClientRect().width / declared;
    figures.push({src: img.getAttribute("src"), scale: scale, textPx: minFontPx * scale,
                  density: img.naturalWidth / declared,
                  width: img.getBoundingClientRect().width, fits: img.getBoundingClientRect().width <= column.width + 1});
  }
  const searches = Array.from(document.querySelectorAll(
      "input[type='search'], .search-button-field, button.search-button, form.bd-search"))
      .filter(e => visible(e) && !e.closest(".search-button__wrapper:not(.show)") && !e.closest("dialog:not([open])"));
  return {column: column.width, footnotePx, problems, figures, searches: searches.length};
})
"""


def check_layout(browser: HeadlessChromium, base_url: str, path: str, width: int, height: int,
                 *, desktop: bool) -> tuple[list[str], dict]:
    """Open one page at a window of `width` x `height` CSS pixels and check its layout.

    Problems: the page scrolls sideways; an equation, output, code block or table sticks out
    of the text column without a scroll bar of its own, or is cut off; figure text is drawn
    smaller than the site's footnotes; at desktop width, a figure is wider than the column;
    more than one search box is visible. Returns (problems, measurements).
    """
    browser.call("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": not desktop})
    try:
        browser.open(base_url + path)
        min_font_px = MIN_FONT_PT * BOOK_DPI / 72
        page = browser.evaluate(f"({_LAYOUT_JS.strip()})({min_font_px})")
    finally:
        browser.call("Emulation.clearDeviceMetricsOverride")
    problems = list(page["problems"])
    for figure in page["figures"]:
        if figure["textPx"] + 0.05 < page["footnotePx"]:
            problems.append(f"figure text drawn at {figure['textPx']:.1f} px, smaller than the footnotes' "
                            f"{page['footnotePx']:.1f} px (the figure is shrunk to {figure['scale']:.0%}): "
                            f"{figure['src'][:80]}")
        if figure["density"] < BOOK_PIXEL_RATIO - 0.05:
            problems.append(f"figure stored at {figure['density']:.1f}x the pixels it is shown at, not "
                            f"{BOOK_PIXEL_RATIO}x: blurry on high-density screens (draw it after "
                            f"dnn_course.plotting.use_book_style(); a cached output may predate it): "
                            f"{figure['src'][:80]}")
        if desktop and not figure["fits"]:
            problems.append(f"figure {figure['width']:.0f} px wide, wider than the {page['column']:.0f} px "
                            f"text column: {figure['src'][:80]}")
    if page["searches"] > 1:
        problems.append(f"{page['searches']} search boxes visible at once")
    return problems, page


def check_site_layout(site_dir: Path, pages: list[str], chromium: str) -> dict[tuple[str, str], list[str]]:
    """Check the layout of each page at every width of LAYOUT_WIDTHS; {(page, width name): problems}."""
    site_dir = Path(site_dir).resolve()
    results = {}
    with serve_directory(site_dir) as base_url, HeadlessChromium(chromium) as browser:
        for path in pages:
            for name, (width, height) in LAYOUT_WIDTHS.items():
                try:
                    results[path, name] = check_layout(browser, base_url, path, width, height,
                                                       desktop=name == "desktop")[0]
                except BrowserError as error:
                    results[path, name] = [f"the browser failed on this page: {error}"]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=REPO_ROOT / "_build" / "html", help="the built site")
    parser.add_argument("--toc", type=Path, default=REPO_ROOT / "_toc.yml", help="the book's _toc.yml")
    parser.add_argument("--solutions", type=Path, default=REPO_ROOT / "solutions" / "dnn_hw",
                        help="nbgrader source notebooks whose solutions must not be published")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print(f"error: no Chromium found; {INSTALL_HINT}, or set CHROMIUM", file=sys.stderr)
        return 2
    if not (args.site / "index.html").is_file():
        print(f"error: {args.site} holds no built site; run `make book` first", file=sys.stderr)
        return 2
    pages = [name + ".html" for name in toc_docnames(args.toc)] + ["index.html", "search.html"]
    reports = check_site(args.site, pages, chromium)
    leaks = find_solution_leaks(args.site, args.solutions, {p: r.text for p, r in reports.items()})
    for (path, width), problems in check_site_layout(args.site, pages[:-2], chromium).items():
        reports[path].problems += [f"at {width} width: {problem}" for problem in problems]
    failed = 0
    for path, report in reports.items():
        status = "ok" if not report.problems else "FAIL"
        print(f"{status:4} {path}: {report.typeset}/{report.math} math typeset, {len(report.images)} images, "
              f"{len(report.links)} links")
        for problem in report.problems:
            print(f"     - {problem}")
        failed += bool(report.problems)
    for leak in leaks:
        print(f"LEAK {leak}")
    print(f"{len(reports) - failed} passed, {failed + bool(leaks)} failed")
    return 1 if failed or leaks else 0


if __name__ == "__main__":
    sys.exit(main())
