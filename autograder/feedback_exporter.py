"""The HTML exporter of the per-notebook feedback pages: nbconvert's, made cheap per student.

nbgrader's ``generate_feedback`` renders each autograded notebook with nbconvert's
``HTMLExporter`` (the course's configuration: nbgrader's feedback template, sanitised HTML).
Three of that exporter's costs are the same work for every student, and
:class:`FeedbackExporter` does each once per grading run instead:

* **Templates.** Every exporter builds its own Jinja environment and compiles the
  templates again. Here every environment shares one in-memory bytecode cache
  (:data:`TEMPLATE_BYTECODE`): a template is compiled once per process.
* **Code highlighting.** Pygments lexes every code cell of every page, and most cells are
  the course's own (locked cells, visible tests) or a correct answer many students share.
  Here the highlighted HTML of a cell is kept by its source (:func:`highlighted`, bounded).
* **A second pass over the page.** nbconvert parses the whole rendered page with
  BeautifulSoup to add an ``alt`` text to images without one and a ``tabindex`` to the input
  and output areas of JupyterLab templates; here two regular expressions add the same
  attributes to the page as rendered (the same document, spelled as the template spells it).

The grading run calls :func:`warm` before it forks its jobs: the course's notebooks (the
released ones, and the source ones as their feedback pages show them, hidden tests replaced by
the note) are rendered once, so every job starts with the templates compiled, the lexers built
and the course's cells highlighted. The cache is in memory only: what a job adds dies with it, and
a student's cell never reaches another student's page by any route but its own source.
Pages are the same, byte for byte, with and without the caches (``tests/test_feedback_exporter.py``).
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path

import jinja2
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

#: How many highlighted cells a process keeps (a class's distinct cells are a few hundred).
HIGHLIGHTED_CELLS = 4096
#: The Pygments lexer ipykernel reports for Python 3 (``language_info``): what executed notebooks are highlighted with.
KERNEL_LEXER = "ipython3"
#: nbconvert's text for an image without one (``HTMLExporter.from_notebook_node``).
MISSING_ALT = "No description has been provided for this image"
IMG_WITHOUT_ALT = re.compile(r"<img(?![^>]*\salt=)(?=[\s>/])", re.IGNORECASE)
#: JupyterLab templates' input and output areas, which nbconvert makes focusable (``tabindex="0"``) for
#: keyboard users: the start tag of such a ``div``, up to its closing ``>``.
FOCUSABLE_DIV = re.compile(
    r'<div class="(?:[^"]*\s)?(?:jp-Cell-inputWrapper|jp-OutputArea-output)(?:\s[^"]*)?"[^>]*(?=>)'
)


class MemoryBytecodeCache(jinja2.BytecodeCache):
    """Compiled Jinja templates kept in this process's memory, by template name and source checksum."""

    def __init__(self):
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


#: The one template cache of the process (inherited by every forked job).
TEMPLATE_BYTECODE = MemoryBytecodeCache()


@functools.lru_cache(maxsize=HIGHLIGHTED_CELLS)
def highlighted(source: str, language: str, magics_language: str | None, formatter_options: tuple) -> str:
    """``source`` highlighted as :class:`nbconvert.filters.highlight.Highlight2HTML` does it (HTML text).

    ``formatter_options``: the filter's ``extra_formatter_options`` as sorted ``(key, value)`` pairs.
    """
    highlighter = Highlight2HTML(pygments_lexer=language, extra_formatter_options=dict(formatter_options))
    return highlighter(source, language, {"magics_language": magics_language} if magics_language else None)


class CachedHighlight(Highlight2HTML):
    """nbconvert's highlighting filter, answered from :func:`highlighted`.

    Of a cell's metadata, highlighting reads only ``magics_language``, so only that is in the key.
    """

    def __call__(self, source, language=None, metadata=None):
        magics = (metadata or {}).get("magics_language")
        options = tuple(sorted(self.extra_formatter_options.items()))
        return highlighted(source, language or self.pygments_lexer, magics, options)


class FeedbackExporter(HTMLExporter):
    """``HTMLExporter`` with a shared template cache, cached highlighting and no BeautifulSoup pass."""

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = TEMPLATE_BYTECODE
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):
        """``HTMLExporter.from_notebook_node`` up to its BeautifulSoup pass, then the ``alt`` texts that pass adds."""
        language_info = nb.metadata.get("language_info", {})
        lexer = language_info.get("pygments_lexer", language_info.get("name", None))
        highlight = self.filters.get("highlight_code", CachedHighlight(pygments_lexer=lexer, parent=self))
        resources = self._init_resources(resources)
        data_types = WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources)
        self.register_filter("highlight_code", highlight)
        self.register_filter("filter_data_type", data_types)
        page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        page = IMG_WITHOUT_ALT.sub(f'<img alt="{MISSING_ALT}"', page)
        return FOCUSABLE_DIV.sub(lambda tag: tag.group(0) + ' tabindex="0"', page), resources


def course_notebooks(release_dir: Path, source_dir: Path) -> list:
    """The course's notebooks as their feedback pages show them (notebook nodes): the released ones,
    and the source ones with each code cell's hidden tests replaced by the feedback's note."""
    import nbformat

    from .feedback import strip_hidden

    notebooks = [nbformat.read(path, as_version=4) for path in sorted(release_dir.glob("*.ipynb"))]
    for path in sorted(source_dir.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.source = strip_hidden(cell.source)
        notebooks.append(notebook)
    return notebooks


def warm(notebooks: list, config) -> None:
    """Render ``notebooks`` (notebook nodes) once with ``config`` (the grading run's nbgrader configuration):
    the templates get compiled and the cells highlighted in this process, before it forks its jobs."""
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    converter = GenerateFeedback(coursedir=CourseDirectory(config=config), config=config)  # its template settings
    exporter = FeedbackExporter(parent=converter, config=converter.config)
    for notebook in notebooks:
        resources = {"nbgrader": {"notebook": "warm-up", "score": 0.0, "max_score": 0.0, "late_penalty": 0.0}}
        exporter.from_notebook_node(as_graded(notebook), resources)


def as_graded(notebook, full_marks: bool = False):
    """A copy of ``notebook`` as its feedback page receives it: executed by the kernel (its language
    :data:`KERNEL_LEXER`) and annotated as nbgrader's GetGrades does (each graded cell's score, 0 or
    its points, and an empty comment), so the template renders every part."""
    notebook = copy.deepcopy(notebook)
    notebook.metadata["language_info"] = {"name": "python", "pygments_lexer": KERNEL_LEXER}
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") or meta.get("task"):
            points = meta.get("points", 0)
            meta.update(score=points if full_marks else 0.0, points=points, comment="")
    return notebook
