"""Solution content that leaked into the built site: published solution files, nbgrader markers,
a secret line of the solution and hidden-test regions (``dnn_course.secret_lines``, the one line
policy feedback redaction and the kit's release scan share) in a page or a downloadable source, and
what the course's leak policy (``dnn_course.leak_policy``) calls a graded answer.

Reads: the built site's files, the nbgrader source notebooks (``solutions/dnn_hw/*.ipynb``) and the
pages' visible text the browser saw (given). Writes: nothing.
"""

from __future__ import annotations

from pathlib import Path

from dnn_course import leak_policy, nbgrader_regions, secret_lines


def downloadable_text(path: Path) -> str:
    """The text a reader gets by downloading `path`: a notebook's cell sources, else the file's text."""
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
    texts = {
        p.relative_to(site_dir).as_posix(): downloadable_text(p)
        for p in files
        if p.suffix in (".html", ".ipynb", ".md", ".txt", ".js", ".json", ".py")
        and "_static/" not in p.relative_to(site_dir).as_posix()
    }
    for relative, text in texts.items():
        for marker in nbgrader_regions.MARKERS:
            if marker in text:
                leaks.append(f"nbgrader marker {marker!r} published in {relative}")
    lines = secret_lines.secret_lines(solutions_dir)
    for name, text in {**texts, **page_texts}.items():
        leaks += [
            f"{line.kind} line of {line.notebook} published in {name}: {line.key[:80]!r}"
            for line in secret_lines.found_in(text, lines)
        ]
    # The leak policy reads the sources (Markdown, notebooks: their code spans are marked) for code
    # and written answers, and the pages' visible text (numbers computed at build time) for answers.
    sources = {
        path.relative_to(site_dir).as_posix(): leak_policy.page_text(path)
        for path in files
        if path.suffix in (".md", ".ipynb") and "_static/" not in path.relative_to(site_dir).as_posix()
    }
    leaks += [f"leak policy: {leak}" for leak in leak_policy.find_leaks(sources, solutions_dir)]
    leaks += [f"leak policy: {leak}" for leak in leak_policy.find_leaks(page_texts, solutions_dir, code=False)]
    return leaks
