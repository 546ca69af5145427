"""The feedback pages' exporter and nbgrader's per-process caches: the same pages and grades, less work.

:mod:`autograder.feedback_exporter` renders with nbconvert's HTMLExporter minus its BeautifulSoup
pass, with templates and highlighted cells kept per process; :mod:`autograder.nbgrader_caches`
shares one gradebook engine per address and one validator per metadata schema. Each test pins
what must not change: the page's content, the page's bytes with and without the caches, what a
gradebook opening reads, which metadata is refused and with which message.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import nbformat
import pytest
from bs4 import BeautifulSoup
from nbconvert.exporters import HTMLExporter
from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory

from autograder import feedback_exporter, nbgrader_caches
from autograder.grading_settings import GradingSettings, nbgrader_config

REPO = Path(__file__).resolve().parent.parent
RESOURCES = {"nbgrader": {"notebook": "01_activations", "score": 3.0, "max_score": 5.0, "late_penalty": 0.0}}


def graded_notebook() -> nbformat.NotebookNode:
    """01's source notebook as nbgrader's GetGrades leaves it, executed by an IPython 3 kernel, with
    images (one without an alt text) and a cell magic."""
    nb = feedback_exporter.as_graded(
        nbformat.read(REPO / "solutions" / "dnn_hw" / "01_activations.ipynb", as_version=4), full_marks=True
    )
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "plot()",
            outputs=[
                nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="}),
                nbformat.v4.new_output("display_data", data={"text/html": '<img src="a.png" alt="the curve">'}),
            ],
            id="a-plot",
        )
    )
    nb.cells.append(nbformat.v4.new_code_cell("%%bash\necho hello", metadata={"magics_language": "bash"}, id="a-magic"))
    return nb


@pytest.fixture
def converter(tmp_path):
    """nbgrader's GenerateFeedback configured as the grader configures it (its exporter settings)."""
    config = nbgrader_config(tmp_path, GradingSettings())
    return GenerateFeedback(coursedir=CourseDirectory(config=config), config=config)


def exporter(converter, kind=feedback_exporter.FeedbackExporter):
    """An exporter made as nbgrader's converter makes its own (``BaseConverter.start``)."""
    return kind(parent=converter, config=converter.config)


def cold_caches() -> None:
    feedback_exporter.highlighted.cache_clear()
    feedback_exporter.TEMPLATE_BYTECODE.compiled.clear()


def test_the_grader_renders_feedback_with_the_feedback_exporter(tmp_path):
    config = nbgrader_config(tmp_path, GradingSettings())
    assert config.GenerateFeedback.exporter_class is feedback_exporter.FeedbackExporter


def test_pages_hold_what_nbconverts_html_exporter_renders(converter):
    """The same document as nbconvert's HTMLExporter (compared once both are parsed): only how the HTML
    is spelled differs (nbconvert's page is BeautifulSoup's re-serialisation)."""
    for template in ("feedback", "lab"):  # the grader's; JupyterLab's (whose areas get a tabindex)
        converter.config.HTMLExporter.template_name = template
        ours, _ = exporter(converter).from_notebook_node(graded_notebook(), copy.deepcopy(RESOURCES))
        theirs, _ = exporter(converter, HTMLExporter).from_notebook_node(graded_notebook(), copy.deepcopy(RESOURCES))
        assert str(BeautifulSoup(ours, "html.parser")) == str(BeautifulSoup(theirs, "html.parser"))
        assert ours.count('tabindex="0"') == theirs.count('tabindex="0"') > (0 if template == "lab" else -1)
    assert "highlight hl-ipython3" in ours
    assert f'<img alt="{feedback_exporter.MISSING_ALT}" src="data:image/png;base64,iVBORw0KGgo="' in ours
    assert ours.count(feedback_exporter.MISSING_ALT) == 1  # the image with a text of its own keeps it


def test_pages_are_the_same_bytes_with_cold_and_warm_caches(converter):
    cold_caches()
    cold, _ = exporter(converter).from_notebook_node(graded_notebook(), copy.deepcopy(RESOURCES))
    assert feedback_exporter.TEMPLATE_BYTECODE.compiled and feedback_exporter.highlighted.cache_info().misses
    misses = feedback_exporter.highlighted.cache_info().misses
    warm, _ = exporter(converter).from_notebook_node(graded_notebook(), copy.deepcopy(RESOURCES))
    assert warm == cold
    assert feedback_exporter.highlighted.cache_info().misses == misses  # every cell came from the cache


def test_highlighting_is_keyed_by_source_and_language_not_by_other_metadata():
    cold_caches()
    highlight = feedback_exporter.CachedHighlight(pygments_lexer="ipython3")
    first = highlight("x = 1", metadata={"nbgrader": {"grade_id": "a"}, "execution": {"t": 1}})
    again = highlight("x = 1", metadata={"nbgrader": {"grade_id": "b"}})
    as_bash = highlight("x = 1", metadata={"magics_language": "bash"})
    info = feedback_exporter.highlighted.cache_info()
    assert first == again and as_bash != first and (info.hits, info.misses) == (1, 2)


def test_warming_up_renders_the_course_cells_so_a_jobs_pages_hit_the_cache(tmp_path):
    """After :func:`warm` (the grading run, before it forks its jobs), a released notebook's page
    highlights no cell of its own: a student's job only lexes the cells the student wrote."""
    cold_caches()
    config = nbgrader_config(tmp_path, GradingSettings())
    notebooks = feedback_exporter.course_notebooks(REPO / "exercises" / "dnn_hw", REPO / "solutions" / "dnn_hw")
    assert len(notebooks) == 12
    feedback_exporter.warm(notebooks, config)
    misses = feedback_exporter.highlighted.cache_info().misses
    compiled = dict(feedback_exporter.TEMPLATE_BYTECODE.compiled)
    converter = GenerateFeedback(coursedir=CourseDirectory(config=config), config=config)
    released = feedback_exporter.as_graded(
        nbformat.read(REPO / "exercises" / "dnn_hw" / "03_softmax_cross_entropy.ipynb", as_version=4)
    )
    exporter(converter).from_notebook_node(released, copy.deepcopy(RESOURCES))
    assert feedback_exporter.highlighted.cache_info().misses == misses
    assert feedback_exporter.TEMPLATE_BYTECODE.compiled == compiled  # no template compiled again


def test_gradebook_openings_share_an_engine_and_read_what_is_on_disk(tmp_path):
    from nbgrader.api import Gradebook

    from autograder.grading_settings import ensure_tools_on_path

    ensure_tools_on_path()  # nbgrader runs alembic when it creates a gradebook
    nbgrader_caches.install()
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url) as first:
        engine = first.engine
        first.add_student("3001", first_name="Ada")
    with Gradebook(url) as second:
        assert second.engine is engine
        assert second.find_student("3001").first_name == "Ada"
        second.update_or_create_student("3001", first_name="Grace")
    with Gradebook(url) as third:
        assert third.find_student("3001").first_name == "Grace"
    with Gradebook(f"sqlite:///{tmp_path / 'other.db'}") as other:
        assert other.engine is not engine and not other.students


def test_a_new_gradebook_records_the_migration_alembics_own_command_names(tmp_path, monkeypatch):
    """The head read in this process is the one ``alembic heads`` prints, and it is what a new gradebook stores."""
    import sqlite3
    import subprocess

    import nbgrader.api
    from nbgrader.api import Gradebook
    from nbgrader.dbutil import _temp_alembic_ini

    from autograder.grading_settings import ensure_tools_on_path

    ensure_tools_on_path()
    with _temp_alembic_ini(f"sqlite:///{tmp_path / 'unused.db'}") as ini:  # as nbgrader runs it, unpatched
        from_command = subprocess.check_output(["alembic", "-c", ini, "heads"], text=True).split()[0]
    monkeypatch.setattr(nbgrader.api, "get_alembic_version", nbgrader.api.get_alembic_version)  # restored after
    nbgrader_caches.install()
    assert nbgrader.api.get_alembic_version is nbgrader_caches.alembic_head
    assert nbgrader_caches.alembic_head() == from_command and len(from_command) == 12
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}"):
        pass
    with sqlite3.connect(tmp_path / "gradebook.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(from_command,)]


@pytest.mark.parametrize(
    "metadata",
    [
        {"schema_version": 3, "grade": True, "solution": False, "locked": True, "grade_id": "a", "points": 1},
        {"schema_version": 3, "grade": "yes", "solution": False, "locked": True, "grade_id": "a", "points": 1},
        {"schema_version": 3, "grade": True, "solution": False, "locked": True, "points": 1},
        {"schema_version": 3, "grade": True, "solution": False, "locked": True, "grade_id": "a", "points": "2"},
    ],
)
def test_cell_metadata_is_judged_as_jsonschema_judges_it(metadata):
    """The cached validator accepts and refuses what ``jsonschema.validate`` does, with the same message."""
    import json

    import nbgrader.nbgraderformat

    schema = json.loads((Path(nbgrader.nbgraderformat.__file__).parent / "v3.json").read_text())
    try:
        jsonschema.validate(metadata, schema)
        expected = None
    except jsonschema.ValidationError as error:
        expected = error.message
    try:
        nbgrader_caches.CachedSchemaValidation.validate(metadata, schema)
        found = None
    except jsonschema.ValidationError as error:
        found = error.message
    assert found == expected


def test_the_graders_exporters_validate_once_and_still_refuse_an_invalid_notebook(tmp_path):
    """Validation after the last preprocessor only (``optimistic_validation``): a preprocessor that leaves the
    notebook invalid is still refused, even when another runs after it."""
    from nbconvert.exporters import NotebookExporter
    from nbconvert.preprocessors import Preprocessor

    class BreaksIt(Preprocessor):
        def preprocess(self, nb, resources):
            nb.cells[0]["outputs"] = "not a list"
            return nb, resources

    class Counts(Preprocessor):
        seen = 0

        def preprocess(self, nb, resources):
            Counts.seen += 1
            return nb, resources

    config = nbgrader_config(tmp_path, GradingSettings())
    exporter = NotebookExporter(config=config)
    assert exporter.optimistic_validation is True
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    exporter.register_preprocessor(Counts(), enabled=True)
    assert '"1 + 1"' in exporter.from_notebook_node(notebook)[0]
    exporter.register_preprocessor(BreaksIt(), enabled=True)
    exporter.register_preprocessor(Counts(), enabled=True)
    with pytest.raises(nbformat.ValidationError):
        exporter.from_notebook_node(notebook)
    assert Counts.seen == 3  # the one after the breaking preprocessor ran: only the end is validated
