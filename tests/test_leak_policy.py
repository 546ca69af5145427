"""The site gives away no graded work: ``dnn_course.leak_policy`` on the book's sources (fast, no build).

- every page of the default site (``_toc.yml``), as its source, holds no solution expression
  (normalised, in code blocks, code cells and inline code spans), no model-answer text, no
  reference number of a model answer and no rubric point;
- the answers pages (``_toc_answers.yml`` only) do hold them, and quote the reference exactly;
- planted examples of each kind are found: an inline-code stub body with renamed variables, a
  code block with a stub line, a rubric answer sentence, a model-answer sentence, a model answer's
  quantitative claim in other words, a reference number;
  prose that only names things (``d_prev``, ``np.maximum``, ``axis=1``) is not.

The built site is checked with the same policy by ``scripts/check_site.py``
(tests/test_book_site.py, tests/test_book_without_solutions.py, both slow).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

from dnn_course import answer_leaks, code_leaks, leak_policy, nbgrader_regions
from dnn_course.answer_leaks import written_answers
from dnn_course.code_leaks import normalise
from dnn_course.leak_policy import find_leaks

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions" / "dnn_hw"
STUB_NOTEBOOKS = ["01_activations.ipynb", "02_fc_layer.ipynb", "03_softmax_cross_entropy.ipynb", "04_model_l2.ipynb"]

pytestmark = pytest.mark.skipif(not list(SOLUTIONS.glob("*.ipynb")), reason="needs solutions/ (instructors' checkout)")


def _docnames(toc_file: Path) -> list[str]:
    toc = yaml.safe_load(toc_file.read_text())
    names = [toc["root"]]

    def walk(entries):
        for entry in entries:
            names.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc["parts"]:
        walk(part["chapters"])
    return names


def _source(docname: str) -> str:
    path = REPO / f"{docname}.md"
    return leak_policy.page_text(path if path.exists() else REPO / f"{docname}.ipynb")


def _leaks(text: str, **kinds) -> list[str]:
    return [str(leak) for leak in find_leaks({"planted": text}, SOLUTIONS, **kinds)]


# --- the book as it is -----------------------------------------------------------------------


def test_default_site_gives_no_graded_answer():
    texts = {name: _source(name) for name in _docnames(REPO / "_toc.yml")}
    assert len(texts) >= 16 and not any(name.startswith("book/answers/") for name in texts)
    leaks = [str(leak) for leak in find_leaks(texts, SOLUTIONS)]
    assert leaks == [], "\n".join(leaks)


def test_answers_pages_hold_what_the_default_site_must_not():
    """The policy finds the answers where they are allowed: every stub notebook's code, the full-data results."""
    answers = {name: _source(name) for name in _docnames(REPO / "_toc_answers.yml") if name.startswith("book/answers/")}
    found = find_leaks(answers, SOLUTIONS)
    code = {(leak.name, leak.source) for leak in found if leak.kind.startswith("solution")}
    for chapter, notebook in zip(
        ["01_activations", "02_fully_connected", "03_softmax_cross_entropy", "04_l2_regularization"],
        STUB_NOTEBOOKS,
        strict=False,
    ):
        assert (f"book/answers/{chapter}_answers", notebook) in code, chapter
    numbers = [leak for leak in found if leak.kind == "reference number of the model answer"]
    assert any(
        leak.name == "book/answers/06_experiments_answers"
        and leak.source == "05_mnist_activations.ipynb/answer_mnist_activations"
        for leak in numbers
    )


def test_every_stub_line_is_on_an_answers_page():
    """Each line of notebooks 01-04's solution regions is on an answers page, word for word (and nothing else is)."""
    regions = {
        line.strip()
        for name in STUB_NOTEBOOKS
        for cell in nbgrader_regions.read_cells(SOLUTIONS / name)
        if cell.cell_type == "code"
        for region in nbgrader_regions.regions(cell.source)
        if region.kind == nbgrader_regions.SOLUTION
        for line in region.lines
        if line.strip()
    }
    quoted = set()
    for page in sorted((REPO / "book" / "answers").glob("0[1-4]_*_answers.md")):
        for block in re.findall(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M):
            quoted |= {line.strip() for line in block.splitlines() if line.strip()}
    assert quoted - regions == set(), "an answers page quotes a line that is not the reference's"
    assert regions - quoted == set(), "a line of the reference is missing from the answers pages"


# --- planted leaks are found ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "prose, notebook",
    [
        ("The backward pass is simply `dout * (out > 0)`.", "01_activations.ipynb"),
        ("Write `np.maximum(0, x)` in the forward pass.", "01_activations.ipynb"),
        ("Sigmoid's backward pass: ``grad * self.out * (1 - self.out)``.", "01_activations.ipynb"),
        ("Sigmoid's backward pass: `(1 - a) * a * g`.", "01_activations.ipynb"),
        ("The weight gradient is `np.dot(self.inputs.T, grad_out)`.", "02_fc_layer.ipynb"),
        ("The bias gradient is `np.sum(g, axis=0)`.", "02_fc_layer.ipynb"),
        ("Then step: `self.W -= lr * self.dW`.", "02_fc_layer.ipynb"),
        ("Return `(probs - labels) / len(labels)`.", "03_softmax_cross_entropy.ipynb"),
        ("Shift with `s - s.max(axis=1, keepdims=True)` first.", "03_softmax_cross_entropy.ipynb"),
        ("Add `loss + reg * squares * 0.5` to the data loss.", "04_model_l2.ipynb"),
    ],
)
def test_an_inline_code_span_with_renamed_variables_is_found(prose, notebook):
    leaks = _leaks(prose)
    assert any(f"solution code of {notebook}" in leak for leak in leaks), leaks


@pytest.mark.parametrize(
    "block, notebook",
    [
        ("```python\nshifted = logits - logits.max(axis=1, keepdims = True)\n```\n", "03_softmax_cross_entropy.ipynb"),
        (
            "```{code-cell} ipython3\n:tags: [remove-input]\n\ndx = (grad @ self.W.T).reshape(self.input_shape)\n```\n",
            "02_fc_layer.ipynb",
        ),
        ("```\nfor each layer:\n    e = np.exp(-2*np.abs(x))   # pseudo-code around it\n```\n", "01_activations.ipynb"),
        # a statement cut after its first line does not parse: found as text
        (
            "```python\nsquared_weights = sum(np.vdot(layer.W, layer.W) for layer in self.layers.values()\n```\n",
            "04_model_l2.ipynb",
        ),
        # an admonition's body is prose, searched again
        ("```{admonition} Answer\n:class: dropdown\n\nIt is `x.T @ d_prev`.\n```\n", "02_fc_layer.ipynb"),
    ],
)
def test_a_code_block_with_a_stub_line_is_found(block, notebook):
    leaks = _leaks(f"Some prose.\n\n{block}\nMore prose.")
    assert any(f"of {notebook}" in leak and "solution" in leak for leak in leaks), leaks


def test_a_rubric_answer_sentence_is_found():
    # a hand-written paraphrase of notebook 05's full-data rubric point ...
    leaks = _leaks("With all 60,000 images there are more updates per epoch, so the accuracy is better.")
    assert any("rubric point of 05_mnist_activations.ipynb/answer_mnist_activations" in leak for leak in leaks), leaks
    # ... and every bullet with key phrases, its phrases in another order inside one sentence
    for answer in written_answers(SOLUTIONS):
        for bullet, phrases in zip(answer.rubric, answer.key_phrases(), strict=False):
            if len(phrases) >= 2:
                details = [
                    part.strip()
                    for detail in re.findall(r"\(([^()]*)\)", bullet)
                    for part in re.split(r",|;| or ", detail)
                    if part.strip()
                ]
                sentence = "In my runs, " + " and ".join(reversed(details)) + "."
                assert any(f"rubric point of {answer.source}" in leak for leak in _leaks(sentence)), (bullet, sentence)


def test_a_quantitative_claim_of_a_model_answer_is_found_in_other_words():
    # chapter 6 said this before issue 17; notebook 05's model answer says "six times more updates per epoch"
    leaks = _leaks(
        "An epoch on 60,000 images is 469 steps of SGD, on 10,000 only 79: the second run takes six "
        "times as many steps.",
        code=False,
    )
    assert any("quantitative claim of the model answer of 05_mnist_activations.ipynb" in leak for leak in leaks), leaks
    # a claim the notebooks make to students anyway (the brief's settings) is not a leak
    assert _leaks("Train for 100 epochs at learning rate 0.001 with batches of 128.", code=False) == []


def test_a_model_answer_sentence_and_a_reference_number_are_found():
    for answer in written_answers(SOLUTIONS):
        words = answer.model.split()
        sentence = "As the course says: " + " ".join(words[30:42]) + " and so on."
        assert any(f"model answer of {answer.source}" in leak for leak in _leaks(sentence)), sentence
    answer = next(a for a in written_answers(SOLUTIONS) if a.source.startswith("05_"))
    public = answer_leaks.public_text(SOLUTIONS)
    number, beside = next(
        (number, sorted(words)[0]) for number, words in answer.numbers().items() if number not in public and words
    )
    leaks = _leaks(f"On the full data, {beside} reaches {number}1 after 100 epochs.", code=False)
    assert any("reference number" in leak and number in leak for leak in leaks), leaks
    # the same number with no word of the model answer's beside it is a coincidence
    assert _leaks(f"A learning rate of 1.0 reaches {number} after five epochs.", code=False) == []


def test_prose_that_names_things_is_not_a_leak():
    prose = (
        "The gradient `d_prev` arrives from the layer after this one; `out` is what the forward pass "
        "stored. Use `np.maximum`, not `np.max`: `np.max(z, 0)` reads 0 as an axis. Sum along `axis=1` "
        "with `keepdims=True`; $n$ is `x.shape[0]`. `np.exp(x)` overflows for large `x`, and `z > 0` is a "
        "mask. `d_prev @ W` has the right shape for a square layer and is wrong. {ref}`sec-fc-backward` "
        "and `W * W` and `make book`. The mean of `d_prev` over the batch is wrong.\n\n"
        "$$\\frac{\\partial E}{\\partial Z} = (\\hat Y - Y)/n$$\n"
    )
    assert _leaks(prose) == []


def test_a_students_copy_without_solutions_finds_nothing(tmp_path):
    assert find_leaks({"planted": "`dout * (out > 0)`"}, tmp_path / "solutions" / "dnn_hw") == []


# --- the normaliser ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ("d_prev * (self.out > 0)", "(out>0)*dout"),
        ("d_prev * (self.out > 0)", "grad * (0 < self.out)"),
        ("np.maximum(z, 0)", "numpy.maximum(0.0, x)"),
        ("np.vdot(layer.W, layer.W)", "np.sum(W * W)"),
        ("np.vdot(layer.W, layer.W)", "(W ** 2).sum()"),
        ("np.vdot(layer.W, layer.W)", "np.linalg.norm(W) ** 2"),
        ("np.vdot(layer.W, layer.W)", "np.linalg.norm(W, 'fro') ** 2"),
        ("self.x.T @ d_prev", "np.dot(np.transpose(x), dout)"),
        ("d_prev.sum(axis=0)", "np.sum(d_prev, axis=0)"),
        ("(self.y_hat - self.y) / self.y.shape[0]", "(p - t) / n"),
        ("d_prev * (1 - self.out * self.out)", "(1 - out ** 2) * grad"),
        ("self.W -= learning_rate * self.dW", "W -= dW * lr"),
    ],
)
def test_equivalent_spellings_normalise_to_one(a, b):
    fields = code_leaks.fields_of(SOLUTIONS)
    assert normalise(a, fields) == normalise(b, fields)


@pytest.mark.parametrize(
    "a, b",
    [
        ("np.maximum(z, 0)", "np.max(z, 0)"),
        ("x.T @ d", "d @ x.T"),
        ("d_prev * (out > 0)", "d_prev * (out >= 0)"),
        ("z - z.max(axis=1, keepdims=True)", "z - z.max(axis=1)"),
        ("x - y.max()", "x.max() - y"),
    ],
)
def test_different_code_stays_different(a, b):
    assert normalise(a) != normalise(b)


def test_the_normaliser_falls_back_to_text():
    assert normalise("if x >") is None
    assert code_leaks.normalise_text("self.W  -=  numpy.dot(a, b)") == "W-=np.dot(a,b)"


# --- the site check uses the policy ------------------------------------------------------------------


def test_the_site_check_reports_a_policy_leak_in_a_page_source(tmp_path):
    from scripts import check_site

    site = tmp_path / "site"
    (site / "_sources" / "book").mkdir(parents=True)
    (site / "_sources" / "book" / "page.md").write_text("The mask: `g * (a > 0)`.\n")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("out = (probs - onehot) / len(onehot)")])
    nbformat.write(notebook, site / "_sources" / "book" / "other.ipynb")
    leaks = check_site.find_solution_leaks(site, SOLUTIONS, {"book/page.html": "Nothing here."})
    assert any(
        leak.startswith("leak policy: _sources/book/page.md: solution code of 01_activations.ipynb") for leak in leaks
    ), leaks
    assert any(
        leak.startswith("leak policy: _sources/book/other.ipynb: solution code of 03_softmax_cross_entropy")
        for leak in leaks
    ), leaks
    visible = {"book/page.html": "With the full data: more updates per epoch, a smaller gap."}
    assert any("rubric point" in leak for leak in check_site.find_solution_leaks(site, SOLUTIONS, visible))
