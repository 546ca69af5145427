"""Solution content that leaked into the built site: published solution files, nbgrader markers,
solution and hidden-test regions in a page or a downloadable source, and what the course's leak
policy (``dnn_course.leak_policy``) calls a graded answer.

Reads: the built site's files, the nbgrader source notebooks (``solutions/dnn_hw/*.ipynb``) and the
pages' visible text the browser saw (given). Writes: nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from dnn_course import leak_policy

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS")
_REGION = re.compile(
    r"### BEGIN (SOLUTION|HIDDEN TESTS)[^\n]*\n(.*?)### END (?:SOLUTION|HIDDEN TESTS)", re.DOTALL
)


def solution_regions(solutions_dir: Path, min_chars: int = 40) -> list[tuple[str, str, str]]:
    """(notebook, kind, text) of every solution / hidden-test region of the source notebooks.

    Regions shorter than `min_chars` (after collapsing whitespace) are skipped: one-liners
    such as ``return out`` appear in any explanation of the code.
    """
    regions = []
    for notebook in sorted(Path(solutions_dir).glob("*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for kind, body in _REGION.findall(source):
                text = _squash(body)
                if len(text) >= min_chars:
                    regions.append((notebook.name, kind.lower(), text))
    return regions


def _squash(text: str) -> str:
    return " ".join(text.split())


def downloadable_text(path: Path) -> str:
    """The text a reader gets by downloading `path`: a notebook's cell sources, else the file's text."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells)
    return path.read_text(encoding="utf-8", errors="replace")


def find_solution_leaks(site_dir: Path, solutions_dir: Path, page_texts: dict[str, str]) -> list[str]:
    """Solution content found in the site: paths, nbgrader markers, solution regions in pages or sources."""
    leaks = []
    site_dir = Path(site_dir)
    files = [p for p in site_dir.rglob("*") if p.is_file()]
    for path in files:
        relative = path.relative_to(site_dir).as_posix()
        if "solutions/" in relative or relative.startswith("solutions"):
            leaks.append(f"a solution file is published: {relative}")
    texts = {p.relative_to(site_dir).as_posix(): downloadable_text(p) for p in files
             if p.suffix in (".html", ".ipynb", ".md", ".txt", ".js", ".json", ".py")
             and "_static/" not in p.relative_to(site_dir).as_posix()}
    for relative, text in texts.items():
        for marker in SOLUTION_MARKERS:
            if marker in text:
                leaks.append(f"nbgrader marker {marker!r} published in {relative}")
    squashed = {name: _squash(text) for name, text in {**texts, **page_texts}.items()}
    for notebook, kind, region in solution_regions(solutions_dir):
        for name, text in squashed.items():
            if region in text:
                leaks.append(f"{kind} region of {notebook} published in {name}: {region[:80]!r}...")
    # The leak policy reads the sources (Markdown, notebooks: their code spans are marked) for code
    # and written answers, and the pages' visible text (numbers computed at build time) for answers.
    sources = {path.relative_to(site_dir).as_posix(): leak_policy.page_text(path) for path in files
               if path.suffix in (".md", ".ipynb") and "_static/" not in path.relative_to(site_dir).as_posix()}
    leaks += [f"leak policy: {leak}" for leak in leak_policy.find_leaks(sources, solutions_dir)]
    leaks += [f"leak policy: {leak}" for leak in leak_policy.find_leaks(page_texts, solutions_dir, code=False)]
    return leaks
