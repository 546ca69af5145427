"""The pages issue 17 (section 3) added to the book, checked without building the site.

- The backpropagation overview (book/backpropagation.md) sits between the introduction and
  chapter 1 in both tables of contents, unnumbered, so the chapters keep the numbers of their
  files; its graph is drawn by a code cell of the page (no image file), legible on a phone.
- Chapter 1 states the convention of ``d_prev`` and the gradient-check rule, whose numbers are
  glued from ``dnn_course.gradcheck`` rather than typed.
- The numbers of chapter 2's input-centring section and of the overview's local rules come from
  ``book/results/02_fully_connected.json`` and from arithmetic this file redoes.
- Chapter 6's random-versus-grid figure is drawn by code; "Where next" has one reference per idea;
  the practice problems publish no answers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import matplotlib
import pytest
import yaml

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch

from dnn_course import secret_lines
from dnn_course.gradcheck import BUG_ABOVE, PASS_BELOW
from dnn_course.nbgrader_regions import SOLUTION
from dnn_course.plotting import MIN_FONT_PT, smallest_font_pt

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "book"
OVERVIEW = BOOK / "backpropagation.md"
NEW_PAGES = ["book/backpropagation", "book/where_next", "book/practice_problems"]
#: Width (CSS pixels) of the text column on a 390 px phone (scripts/website/layout.PHONE_WIDTH less the
#: theme's 16 px margins on each side): a figure no wider is shown whole, at its natural size.
PHONE_COLUMN_PX = 390 - 2 * 16


def _text(path: Path) -> str:
    return " ".join(path.read_text(encoding="utf-8").split())


def _parts(toc_file: str) -> list[dict]:
    return yaml.safe_load((REPO / toc_file).read_text())["parts"]


def _files(part: dict) -> list[str]:
    names = []
    for chapter in part["chapters"]:
        names.append(chapter["file"])
        names += [section["file"] for section in chapter.get("sections", [])]
    return names


# --- the tables of contents -----------------------------------------------------------------


@pytest.mark.parametrize("toc_file", ["_toc.yml", "_toc_answers.yml"])
def test_new_pages_stand_unnumbered_around_the_numbered_chapters(toc_file):
    parts = _parts(toc_file)
    order = [name for part in parts for name in _files(part)]
    chapters = [name for name in order if re.fullmatch(r"book/0[1-6]_\w+", name)]
    assert [name[5:7] for name in chapters] == ["01", "02", "03", "04", "05", "06"]
    assert order.index("book/backpropagation") < order.index("book/01_activations")
    for name in ("book/where_next", "book/practice_problems"):
        assert order.index("book/06_experiments") < order.index(name) < order.index("exercises/dnn_hw/01_activations")
    for part in parts:
        files = _files(part)
        if any(name in NEW_PAGES for name in files):
            assert not part.get("numbered"), f"{toc_file}: {files} would take chapter numbers"
            assert not any(re.fullmatch(r"book/0[1-6]_\w+", name) for name in files)
        if "book/01_activations" in files:
            assert part.get("numbered") is True and files[0] == "book/01_activations"


def test_new_pages_exist_and_are_not_named_like_chapters():
    for name in NEW_PAGES:
        assert (REPO / f"{name}.md").is_file(), name
        assert not Path(name).name.startswith("0"), "book/0* files are the numbered chapters"


# --- the overview's graph ----------------------------------------------------------------------


def _page_code(path: Path) -> list[str]:
    return [cell.source for cell in jupytext.read(path).cells if cell.cell_type == "code"]


@pytest.fixture(scope="module")
def overview_graph():
    namespace: dict = {}
    show, plt.show = plt.show, lambda *args, **kwargs: None
    try:
        for source in _page_code(OVERVIEW):
            exec(compile(source, str(OVERVIEW), "exec"), namespace)  # noqa: S102 - the page's own cells
        figure = namespace["draw_backprop_graph"]()
    finally:
        plt.show = show
        plt.close("all")
    return figure


def test_overview_graph_is_drawn_by_a_code_cell_not_an_image_file():
    text = OVERVIEW.read_text(encoding="utf-8")
    assert not re.search(r"!\[|\{image\}|\{figure\}|\.png|\.svg", text), "the graph must be made by code"
    cells = _page_code(OVERVIEW)
    assert any("def draw_backprop_graph" in cell and "FancyArrowPatch" in cell for cell in cells)
    assert "graphviz" not in text


def test_overview_graph_shows_the_network_with_values_down_and_gradients_up(overview_graph):
    texts = {text.get_text() for text in overview_graph.findobj(matplotlib.text.Text)}
    for needed in (
        "input $X$",
        "softmax + cross-entropy",
        "$Y$",
        "loss $E$",
        r"$\partial E/\partial E = 1$",
        "$G^{(1)}$",
        "$G^{(2)}$",
        "$G^{(3)}$",
        r"$\partial E/\partial A^{(1)}$",
        "$Z^{(3)}$",
        "$A^{(2)}$",
        r"$\lambda W^{(l)}$",
    ):
        assert needed in texts, needed
    assert sum(text.startswith("FC ") for text in texts) == 3
    assert any("L2 penalty" in text and r"\Vert W^{(l)}\Vert^2" in text for text in texts)
    arrows = [patch for patch in overview_graph.findobj(FancyArrowPatch)]
    forward = backward = 0
    for arrow in arrows:
        (x0, y0), (x1, y1) = arrow._posA_posB
        colour = matplotlib.colors.to_hex(arrow.get_edgecolor())
        if colour == matplotlib.colors.to_hex("C3"):
            backward += 1
            assert y1 >= y0, "gradients flow up (or sideways, into the penalty)"
        else:
            forward += 1
            assert y1 <= y0, "values flow down (or sideways, into the loss)"
    assert forward >= 8 and backward >= 8, (forward, backward)


def test_overview_graph_is_legible_on_a_phone(overview_graph, tmp_path):
    from PIL import Image

    assert smallest_font_pt(overview_graph) >= MIN_FONT_PT
    overview_graph.savefig(tmp_path / "graph.png", bbox_inches="tight")  # as the notebook's inline backend does
    width, _ = Image.open(tmp_path / "graph.png").size
    assert width <= PHONE_COLUMN_PX, f"the graph is {width} px wide; a phone's column is {PHONE_COLUMN_PX} px"


def test_local_rules_numbers_are_the_derivatives():
    def centred(f, alpha, beta, h=1e-6):
        return (
            (1.5 * f(alpha + h, beta) - 1.5 * f(alpha - h, beta)) / (2 * h),
            (1.5 * f(alpha, beta + h) - 1.5 * f(alpha, beta - h)) / (2 * h),
        )

    text = _text(OVERVIEW)
    assert r"$\alpha = 2$ and $\beta = 3$" in text and r"$\partial E / \partial f = 1.5$" in text
    add = centred(lambda a, b: a + b, 2.0, 3.0)
    multiply = centred(lambda a, b: a * b, 2.0, 3.0)
    largest = centred(max, 2.0, 3.0)
    assert add == pytest.approx((1.5, 1.5)) and multiply == pytest.approx((4.5, 3.0))
    assert largest == pytest.approx((0.0, 1.5))
    assert r"$\partial E/\partial \alpha = \partial E/\partial \beta = 1.5$" in text
    assert r"$\partial E/\partial \alpha = 3 \cdot 1.5 = 4.5$ and $\partial E/\partial \beta = 2 \cdot 1.5 = 3$" in text
    assert r"$\partial E/\partial \beta = 1.5$ and $\partial E/\partial \alpha = 0$" in text


# --- chapter 1: d_prev and the gradient-check rule ---------------------------------------------


def test_chapter_1_states_the_d_prev_convention_and_glues_the_gradient_check_rule():
    text = (BOOK / "01_activations.md").read_text(encoding="utf-8")
    assert ":::{admonition} The convention of `d_prev`" in text
    section = text[text.index("(sec-activations-gradcheck)=") : text.index("(sec-activations-saturation)=")]
    for key in ("pass_below", "bug_above", "gradcheck_h"):
        assert f"{{glue:md}}`{key}:myst`" in section
    assert 'glue("pass_below", power_of_ten(PASS_BELOW)' in section
    assert 'glue("bug_above", power_of_ten(BUG_ABOVE)' in section
    assert "power_of_ten(STEP)" in section
    prose = re.sub(r"```\{code-cell\}.*?```", "", section, flags=re.DOTALL)
    assert not re.search(r"10\^\{?-\d|\d+e-\d", prose), "the rule's numbers come from dnn_course.gradcheck"
    assert PASS_BELOW < BUG_ABOVE


# --- chapter 2: input centring against its results ------------------------------------------------


def test_input_centring_prose_matches_the_results():
    centring = json.loads((BOOK / "results" / "02_fully_connected.json").read_text())["input_centring"]
    text = _text(BOOK / "02_fully_connected.md")
    raw_top, centred_top = centring["top_eigenvalues"]["raw"][0], centring["top_eigenvalues"]["centred"][0]
    assert f"The mean pixel is {centring['mean_pixel']:.2f}" in text
    assert f"second moments, {raw_top:.1f}, is almost all mean" in text
    assert f"the squared length of the mean image alone is {centring['mean_squared_norm']:.1f}" in text
    assert f"the largest eigenvalue is {centred_top:.1f}, about seven times smaller" in text
    assert 6.5 < raw_top / centred_top < 7.5
    assert centring["mean_squared_norm"] / raw_top > 0.9, "the top eigenvalue is almost all mean"
    runs = {(run["inputs"], run["learning_rate"]): run["val_acc"] for run in centring["runs"]}
    slow_raw, slow_centred = runs["raw", 0.1][-1], runs["centred", 0.1][-1]
    assert abs(slow_raw - slow_centred) < 0.01, "at 0.1 centring makes no real difference"
    assert f"after five the two are at {slow_raw:.3f} raw and {slow_centred:.3f} centred" in text
    assert runs["raw", 0.1][0] > runs["centred", 0.1][0], "the raw inputs are even ahead after the first epoch"
    raw, centred = runs["raw", 1.0], runs["centred", 1.0]
    assert f"{raw[0]:.3f} after the first epoch and {raw[-1]:.3f} after the fifth" in text
    assert f"reaches {centred[0]:.3f} after one epoch and {centred[-1]:.3f} after five" in text
    assert centred[0] > raw[0] + 0.2 and centred[-1] > raw[-1] + 0.03, (
        "centring lets gradient descent take larger steps"
    )
    assert centring["epochs"] == 5 and "trained for 5 epochs" in text
    assert centring["train_images"] == 4000 and "4,000 MNIST" in text
    assert centring["val_images"] == 2000 and "2,000 other images" in text


# --- chapter 6, where next, practice problems -------------------------------------------------------


def test_random_search_section_draws_its_figure_and_cites_bergstra_and_bengio():
    text = (BOOK / "06_experiments.md").read_text(encoding="utf-8")
    section = text[text.index("(sec-experiments-random-search)=") : text.index("(sec-experiments-confusion)=")]
    assert "{cite}`bergstra2012random`" in section
    assert "def draw_search" in section and '"grid: 9 trials, 3 values"' in section
    assert "```{code-cell} ipython3\n:tags: [hide-input]" in section


def test_where_next_has_one_paragraph_and_reference_per_idea():
    text = (BOOK / "where_next.md").read_text(encoding="utf-8")
    for heading, key in [
        ("Momentum", "sutskever2013importance"),
        ("Learning-rate schedules", "loshchilov2017sgdr"),
        ("Dropout", "srivastava2014dropout"),
        ("Batch normalisation", "ioffe2015batch"),
    ]:
        start = text.index(f"## {heading}\n")
        section = text[start : text.index("\n## ", start + 1)]
        assert f"{{cite}}`{key}`" in section, heading


def test_every_citation_has_a_bibliography_entry():
    keys = set(re.findall(r"^@\w+\{([^,]+),", (BOOK / "references.bib").read_text(), flags=re.MULTILINE))
    for page in BOOK.glob("*.md"):
        for cited in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", page.read_text(encoding="utf-8")):
            for key in cited.split(","):
                assert key.strip() in keys, f"{page.name} cites {key!r}, which book/references.bib lacks"


def test_practice_problems_cover_every_chapter_and_publish_no_answer():
    text = (BOOK / "practice_problems.md").read_text(encoding="utf-8")
    assert "**no published answers**" in text
    for forbidden in ("dropdown", "{admonition}", "Answer", "answer:", "{toggle}", "Solution"):
        assert forbidden not in text, forbidden
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    linked = [re.search(r"\{doc\}`([^`]+)`", section).group(1) for section in sections]
    assert linked == [
        "backpropagation",
        "01_activations",
        "02_fully_connected",
        "03_softmax_cross_entropy",
        "04_l2_regularization",
        "05_putting_it_together",
        "06_experiments",
    ]
    for section in sections:
        assert 3 <= len(re.findall(r"^\d+\. ", section, flags=re.MULTILINE)) <= 5, section[:40]


def _solution_lines() -> list[secret_lines.SecretLine]:
    """The secret lines of the graded stubs' answers (notebooks 01-04), by the one line policy."""
    return [
        line
        for line in secret_lines.secret_lines(REPO / "solutions" / "dnn_hw", kinds=(SOLUTION,))
        if line.notebook.startswith(("01_", "02_", "03_", "04_"))
    ]


@pytest.mark.parametrize("name", NEW_PAGES)
def test_new_pages_show_no_line_of_a_graded_stubs_answer(name):
    lines = _solution_lines()
    assert len(lines) > 20, "found no solution regions to compare with"
    text = (REPO / f"{name}.md").read_text(encoding="utf-8")
    code = "\n".join(_page_code(REPO / f"{name}.md")) if "code-cell" in text else ""
    spans = re.findall(r"`([^`\n]+)`", text)
    shown = code + "\n" + "\n".join(spans)
    assert sorted(line.key for line in secret_lines.found_in(shown, lines)) == []
