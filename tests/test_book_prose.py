"""The chapters' prose, checked without building the site.

- Numbers that chapter 6 states in words are read again from ``book/results/*.json`` (the
  files the chapter plots), so a regenerated result file cannot silently contradict the text.
- The notation of the introduction's table is the only one: symbols it retired do not return.
- Every chapter ends with self-check questions whose answers are collapsed.
- Figures are drawn in the book's style, with no text smaller than ``MIN_FONT_PT``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dnn_course.plotting import MAX_WIDTH_IN, MIN_FONT_PT

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "book"
CHAPTERS = sorted(BOOK.glob("0[1-6]_*.md"))
PAGES = [BOOK / "00_introduction.md", *CHAPTERS]


def _text(path: Path) -> str:
    return " ".join(path.read_text(encoding="utf-8").split())  # line breaks as spaces


def _experiments_text() -> str:
    """Chapter 6 and its answers page (book/answers/, published after the deadline: `make book ANSWERS=1`)."""
    return _text(BOOK / "06_experiments.md") + " " + _text(BOOK / "answers" / "06_experiments_answers.md")


def _result(name: str) -> dict:
    return json.loads((BOOK / "results" / f"{name}.json").read_text())


def test_six_chapters_are_checked():
    assert [path.name[:2] for path in CHAPTERS] == ["01", "02", "03", "04", "05", "06"]


# --- chapter 6 against its result files -----------------------------------------------------


def test_final_fashion_model_schedule_and_accuracy_match_the_results():
    fashion = _result("fashion_tuning_full")
    final = fashion["final"]
    (high_epochs, high_rate), (low_epochs, low_rate) = final["schedule"]
    text = _experiments_text()
    stated = (f"for {high_epochs + low_epochs} epochs, {high_epochs} at a learning rate of {high_rate:g} "
              f"and {low_epochs} at {low_rate:g}")
    assert stated in text, f"chapter 6 should say the final model trained {stated!r}"
    assert f"**{final['test_acc']:.4f}** on the test set" in text
    # the epoch count is the best validation epoch of the candidate it retrains
    candidate = next(entry for entry in fashion["search"] if entry.get("schedule")
                     and entry["schedule"][0] == [high_epochs, high_rate])
    assert candidate["best_epoch"] == high_epochs + low_epochs
    assert f"Its best validation accuracy came after epoch {candidate['best_epoch']}" in text


def test_training_accuracy_range_at_epoch_30_matches_the_results():
    fashion = _result("fashion_tuning_full")
    strong = max(entry["reg_lambda"] for entry in fashion["search"])
    at_30 = [entry["history"]["train_acc"][29] for entry in fashion["search"]
             if entry["learning_rate"] == 0.1 and entry["reg_lambda"] < strong]
    assert len(at_30) == 5
    stated = f"between {100 * min(at_30):.1f}% and {100 * max(at_30):.1f}% (the strongly penalised one aside)"
    assert stated in _experiments_text()


def test_sigmoid_subset_curve_is_described_as_it_is():
    run = _result("mnist_activations_embedded")["runs"]["sigmoid"]
    curve = run["history"]["val_acc"]
    best = max(curve)
    stated = (f"reaches its best, {best:.3f}, after epoch {curve.index(best) + 1}, "
              f"and ends at {curve[-1]:.3f}")
    text = _experiments_text()
    assert stated in text
    assert curve[-1] < best, "the text says the sigmoid curve ends below its best"
    assert "every test curve is still rising" not in text
    for activation in ("relu", "tanh"):  # "the ReLU and tanh test curves are still rising at the end"
        other = _result("mnist_activations_embedded")["runs"][activation]["history"]["val_acc"]
        assert other[-1] >= max(other[:-5]), activation


# --- the chapter 3 and chapter 1 statements the issue corrected -------------------------------


def test_gradient_descent_raises_the_true_class_score():
    text = _text(BOOK / "03_softmax_cross_entropy.md")
    assert "lowers the true class's score" not in text
    assert "*raises* the true class's score" in text


def test_tanh_saturates_twice_as_fast_as_stated():
    import numpy as np

    z = 10.0
    sigmoid_slope = np.exp(-z) / (1 + np.exp(-z)) ** 2
    tanh_slope = 1 - np.tanh(z) ** 2
    text = _text(BOOK / "01_activations.md")
    assert "saturates just as fast" not in text
    assert f"sigmoid still passes ${sigmoid_slope / 1e-5:.1f} \\times 10^{{-5}}$" in text
    assert f"tanh only ${tanh_slope / 1e-9:.1f} \\times 10^{{-9}}$" in text


# --- one notation ---------------------------------------------------------------------------

# Symbols of the old notation (regular expressions, left) that the introduction's table
# replaced (right).
RETIRED = {
    r"(?<!_)\\text\{out\}": "A (or a), the activation's output",
    r"W\^\{\(j\)\}": "W^{(l)}: l is the layer index, j a unit",
    r"\\sum_\{j=1\}\^\{k\}": "the layers are l = 1..L",
    r"(?<![a-z_])s\^2": "v, the variance of the initial weights",
    r"(?<![a-zA-Z\\])E\[": r"\mathbb{E}[, the expectation (E is the loss)",
    r"\\partial L\b": "E is the loss",
}


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.stem)
def test_page_uses_only_the_notation_of_the_table(page):
    text = page.read_text(encoding="utf-8")
    found = {old: new for old, new in RETIRED.items() if re.search(old, text)}
    assert found == {}, f"{page.name} uses retired notation; use instead: {found}"


def test_notation_table_defines_every_per_layer_symbol():
    intro = (BOOK / "00_introduction.md").read_text(encoding="utf-8")
    table = intro[intro.index("```{list-table} Notation"):]
    table = table[:table.index("\n```\n")]
    for symbol in (r"$Z^{(l)}$", r"$A^{(l)}$", r"$W^{(l)}$", r"$b^{(l)}$", r"$G^{(l)}$", r"$d_l$", r"$L$, $l$",
                   r"$g$, $\sigma$", r"$C$, $c$, $t$", r"$\ell_i$", r"$v$"):
        assert f"* - {symbol}" in table, f"the notation table has no row for {symbol}"


# --- self-check questions -------------------------------------------------------------------


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_chapter_ends_with_three_to_five_self_check_questions(chapter):
    text = chapter.read_text(encoding="utf-8")
    assert "## Check your understanding" in text, chapter.name
    section = text[text.index("## Check your understanding"):text.index("## Your turn")]
    questions = re.findall(r"^\d+\. ", section, flags=re.MULTILINE)
    answers = re.findall(r"```\{admonition\} Answer\n\s*:class: dropdown\n", section)
    assert 3 <= len(questions) <= 5 and len(answers) == len(questions), (chapter.name, len(questions), len(answers))


# --- figures --------------------------------------------------------------------------------

_FONTSIZE = re.compile(r"fontsize\s*=\s*([0-9.]+|\"[a-z-]+\"|'[a-z-]+')")


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.stem)
def test_figures_use_the_book_style_and_no_small_text(page):
    text = page.read_text(encoding="utf-8")
    if "plt." in text or "plot_" in text:
        assert "use_book_style()" in text, f"{page.name} draws figures without dnn_course.plotting.use_book_style()"
    for match in _FONTSIZE.finditer(text):
        value = match.group(1).strip("\"'")
        small = value in ("xx-small", "x-small", "small", "smaller") or (
            value[0].isdigit() and float(value) < MIN_FONT_PT)
        assert not small, f"{page.name}: {match.group(0)} is below the {MIN_FONT_PT} pt of the book's figures"
    for match in re.finditer(r"figsize=\(([0-9.]+)", text):
        assert float(match.group(1)) <= MAX_WIDTH_IN, f"{page.name}: a figure {match.group(1)} inches wide does not fit the column"
