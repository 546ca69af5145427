"""Headless Chromium for the site check, driven by Playwright: the system's Chromium, never a download.

:func:`find_chromium` locates the executable ($CHROMIUM, else the first of :data:`CHROMIUM_NAMES`
on PATH); :func:`headless_chromium` starts it through Playwright (``executable_path``, so
``playwright install`` is never needed and nothing is fetched); :func:`open_tab` gives one tab
of a given window size, whose :meth:`Tab.open` loads a URL, waits until the page has settled
(load event, MathJax, images, redirects) and returns what the load asked of the network
(:class:`LoadEvents`). The JavaScript run in pages lives in ``js/*.js`` next to this module.

Reads: the Chromium executable and ``js/*.js``. Writes: nothing (Playwright gives the browser a
throwaway profile and removes it on exit).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from playwright.sync_api import Browser, Page, sync_playwright
    from playwright.sync_api import Error as PlaywrightError
except ModuleNotFoundError as error:  # pragma: no cover - depends on the environment
    raise ModuleNotFoundError(
        "the site check drives Chromium with Playwright, which is not installed: run `make venv` "
        "(or `pip install -r requirements.txt`); the system's Chromium is used, no `playwright install`"
    ) from error

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install it with `apt-get update && apt-get install -y chromium` (Debian/Ubuntu)"

#: Flags on top of Playwright's own (which already make the browser headless, quiet, without
#: sandbox, extensions, sync or background networking): no GPU, no QUIC, no /dev/shm (small in containers).
CHROMIUM_ARGS = ("--disable-gpu", "--disable-quic", "--disable-dev-shm-usage")
#: Playwright's flags left out: scroll bars stay, taking their room as in a reader's desktop browser,
#: so that a box cut off without a scroll bar is told from one that scrolls.
PLAYWRIGHT_ARGS_LEFT_OUT = ("--hide-scrollbars",)

#: The window of a tab that is not given one: a desktop screen.
DEFAULT_WINDOW = (1280, 1024)

JS_DIR = Path(__file__).resolve().with_name("js")

# What a page evaluation raises while the page navigates away (a redirect): try again on the next page.
_NAVIGATED = ("Execution context was destroyed", "navigat", "Cannot find context")
# The error text of a request the browser cancelled itself (a page that redirects): not a failure.
_CANCELLED = "net::ERR_ABORTED"


class BrowserError(RuntimeError):
    """Chromium could not be started, or a page could not be loaded or evaluated."""


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


@functools.cache
def page_script(name: str) -> str:
    """The JavaScript function in ``js/<name>.js`` (Playwright calls it with one argument)."""
    return (JS_DIR / f"{name}.js").read_text(encoding="utf-8")


@dataclass
class LoadEvents:
    """What one page load asked of the network and what went wrong in its JavaScript."""

    requests: list[str] = field(default_factory=list)  # every URL requested, in order
    responses: list[tuple[int, str]] = field(default_factory=list)  # (HTTP status, URL) of each response
    failures: list[tuple[str, str]] = field(default_factory=list)  # (error text, URL); cancelled ones left out
    exceptions: list[str] = field(default_factory=list)  # uncaught exceptions, "ReferenceError: message"


@contextlib.contextmanager
def headless_chromium(executable: str, timeout: float = 30.0) -> Iterator[Browser]:
    """Start the Chromium at `executable` headless through Playwright; closed on exit."""
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=executable,
                headless=True,
                args=list(CHROMIUM_ARGS),
                ignore_default_args=list(PLAYWRIGHT_ARGS_LEFT_OUT),
                timeout=timeout * 1000,
            )
        except PlaywrightError as error:
            raise BrowserError(
                f"Chromium ({executable}) did not start: {error.message}\n"
                f"Is it a working Chromium? If not, {INSTALL_HINT}, or set CHROMIUM"
            ) from None
        try:
            yield browser
        finally:
            browser.close()


class Tab:
    """One tab of its own browser context (window size, phone or desktop), recording each load's events."""

    def __init__(self, browser: Browser, *, width: int, height: int, mobile: bool, timeout: float):
        self.timeout = timeout
        self._context = browser.new_context(
            viewport={"width": width, "height": height}, device_scale_factor=1, is_mobile=mobile
        )
        self.page: Page = self._context.new_page()
        self.page.set_default_timeout(timeout * 1000)
        self._events = LoadEvents()
        self.page.on("request", lambda request: self._events.requests.append(request.url))
        self.page.on("response", lambda response: self._events.responses.append((response.status, response.url)))
        self.page.on("requestfailed", self._failed)
        self.page.on("pageerror", lambda error: self._events.exceptions.append(f"{error.name}: {error.message}"))

    def _failed(self, request) -> None:
        if request.failure != _CANCELLED:
            self._events.failures.append((request.failure or "", request.url))

    def open(self, url: str) -> LoadEvents:
        """Load `url`, wait until it has settled (load event, MathJax, images, redirects); its events."""
        self._events = LoadEvents()
        try:
            self.page.goto(url, wait_until="load")
        except PlaywrightError as error:
            self._abandon_navigation()
            raise BrowserError(f"could not open {url}: {error.message}") from None
        deadline = time.monotonic() + self.timeout
        while True:
            # A page that redirects (index.html, by <meta http-equiv="refresh">) loads another
            # one: settle again until a page has settled that does not redirect.
            try:
                if not self.page.evaluate(page_script("settle"), self.timeout * 1000)["redirects"]:
                    break
            except PlaywrightError as error:
                if not any(reason in error.message for reason in _NAVIGATED):
                    raise BrowserError(f"JavaScript error on {url}: {error.message}") from None
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} kept redirecting for {self.timeout:g} s")
            time.sleep(0.05)
        events, self._events = self._events, LoadEvents()
        return events

    def _abandon_navigation(self) -> None:
        """Leave a page that did not load, so that its navigation cannot interrupt the next page's."""
        with contextlib.suppress(PlaywrightError):
            self.page.goto("about:blank")

    def run(self, script: str, argument: Any = None) -> Any:
        """Call the function of ``js/<script>.js`` in the page with `argument`; its JSON-like result."""
        try:
            return self.page.evaluate(page_script(script), argument)
        except PlaywrightError as error:
            raise BrowserError(f"js/{script}.js failed on {self.page.url}: {error.message}") from None

    def close(self) -> None:
        self._context.close()


@contextlib.contextmanager
def open_tab(
    browser: Browser,
    *,
    width: int = DEFAULT_WINDOW[0],
    height: int = DEFAULT_WINDOW[1],
    mobile: bool = False,
    timeout: float = 30.0,
) -> Iterator[Tab]:
    """A tab with a window of `width` x `height` CSS pixels (`mobile`: as a phone shows pages); closed on exit."""
    tab = Tab(browser, width=width, height=height, mobile=mobile, timeout=timeout)
    try:
        yield tab
    finally:
        tab.close()
