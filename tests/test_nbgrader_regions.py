"""One parser of the nbgrader regions and one line policy, and every leak check judges by them.

- :mod:`dnn_course.nbgrader_regions` reads solution and hidden-test regions (indented markers, a
  region left open, written-answer cells) and removes them as students are shown a notebook;
- :mod:`dnn_course.secret_lines` decides which region lines are secrets: a planted hidden-test line
  of exactly :data:`~dnn_course.secret_lines.MIN_LINE_CHARS` characters is redacted by the feedback,
  reported by the kit's release scan and by the site check, and one character shorter by none of them;
  move the threshold and all three move with it;
- every consumer reads the regions through the one parser: give the parser other marker words and
  the feedback, the release scan, the site check, the fixtures' visible code, the code-leak and
  the written-answer checks all find the regions of a notebook written with those words;
- on the course's own notebooks, every hidden-test secret line is redacted by the feedback and
  reported by the release scan and the site check.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.feedback import REDACTED, HideTestCode, Redactor, strip_hidden
from dnn_course import answer_leaks, leak_policy, nbgrader_regions, secret_lines
from dnn_course.nbgrader_regions import HIDDEN_TEST, SOLUTION, Cell
from scripts import check_site, make_fixtures, make_release

REPO = Path(__file__).resolve().parent.parent

SOLUTIONS = REPO / "solutions" / "dnn_hw"


# --- the parser --------------------------------------------------------------------------------------


def test_regions_are_read_line_by_line_whatever_the_indentation():
    source = (
        "def relu(z):\n    ### BEGIN SOLUTION\n    out = np.maximum(z, 0)\n    return out\n    ### END SOLUTION\n"
        "x = 1\n#   ### BEGIN HIDDEN TESTS\nassert secret == 42\n### END HIDDEN TESTS\n"
        "### BEGIN HIDDEN TESTS\nleft_open = True"
    )
    assert nbgrader_regions.regions(source) == [
        nbgrader_regions.Region(SOLUTION, ("    out = np.maximum(z, 0)", "    return out")),
        nbgrader_regions.Region(HIDDEN_TEST, ("assert secret == 42",)),
        nbgrader_regions.Region(HIDDEN_TEST, ("left_open = True",)),
    ]
    assert nbgrader_regions.outside_regions(source) == "def relu(z):\nx = 1"
    assert nbgrader_regions.outside_regions(source, kinds=(HIDDEN_TEST,), note="# hidden") == (
        "def relu(z):\n    ### BEGIN SOLUTION\n    out = np.maximum(z, 0)\n    return out\n    ### END SOLUTION\n"
        "x = 1\n# hidden\n# hidden"
    )
    assert (
        strip_hidden("a = 1\n  ### BEGIN HIDDEN TESTS\n  b = 2\n  ### END HIDDEN TESTS")
        == "a = 1\n  # (hidden tests run here; their code is not shown)"
    )


def test_answer_cells_are_the_graded_markdown_solutions(tmp_path):
    answer = (
        "### BEGIN SOLUTION\nModel answer: more steps.\n\n**Rubric** (1 point)\n* (more steps, better)\n"
        "### END SOLUTION"
    )
    cells = [
        nbformat.v4.new_markdown_cell(
            answer, metadata={"nbgrader": {"solution": True, "grade": True, "grade_id": "why", "points": 1}}
        ),
        nbformat.v4.new_markdown_cell(answer, metadata={"nbgrader": {"solution": True, "grade": False}}),
        nbformat.v4.new_code_cell(answer, metadata={"nbgrader": {"solution": True, "grade": True}}),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / "05.ipynb")
    found = nbgrader_regions.answer_cells(nbgrader_regions.read_cells(tmp_path / "05.ipynb"))
    assert [(cell.index, cell.nbgrader["grade_id"], region.lines[0]) for cell, region in found] == [
        (0, "why", "Model answer: more steps.")
    ]


# --- one policy: the same notebook judged the same by feedback, the release scan and the site check ---


def _course(
    tmp_path: Path,
    hidden_lines: list[str],
    *,
    solution: str = "    return np.maximum(z, 0)",
    begin=("BEGIN SOLUTION", "BEGIN HIDDEN TESTS"),
    end=("END SOLUTION", "END HIDDEN TESTS"),
) -> Path:
    """``tmp_path/solutions/dnn_hw``: one source notebook with a solution, a hidden test and a written
    answer, marked with ``begin``/``end`` (solution's, hidden test's); its released copy in ``exercises``."""
    solutions = tmp_path / "solutions" / "dnn_hw"
    released = tmp_path / "exercises" / "dnn_hw"
    solutions.mkdir(parents=True)
    released.mkdir(parents=True)
    code = f"def relu(z):\n    ### {begin[0]}\n{solution}\n    ### {end[0]}\n"
    test = "from checks import check\n### " + begin[1] + "\n" + "\n".join(hidden_lines) + "\n### " + end[1] + "\n"
    answer = (
        f"### {begin[0]}\nThe full data gives six times more updates per epoch, so every run improves a lot.\n"
        f"**Rubric** (2 points)\n* more updates (more updates per epoch, better accuracy)\n### {end[0]}"
    )
    cells = [
        nbformat.v4.new_code_cell(code, metadata={"nbgrader": {"solution": True, "grade": False}}),
        nbformat.v4.new_code_cell(test, metadata={"nbgrader": {"grade": True, "grade_id": "t", "points": 1}}),
        nbformat.v4.new_markdown_cell(
            answer, metadata={"nbgrader": {"solution": True, "grade": True, "grade_id": "why", "points": 2}}
        ),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), solutions / "01_activations.ipynb")
    shown = [
        nbformat.v4.new_code_cell("def relu(z):\n    # YOUR CODE HERE\n    raise NotImplementedError()"),
        nbformat.v4.new_code_cell("from checks import check"),
        nbformat.v4.new_markdown_cell("YOUR ANSWER HERE"),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=shown), released / "01_activations.ipynb")
    return solutions


def _judged(tmp_path: Path, solutions: Path, lines: list[str]) -> dict[str, set[str]]:
    """Which of ``lines`` the feedback redacts, the release scan and the site check report, each
    written alone into an output, a kit file and a page."""
    text = "".join(f"some output\n    {line}\nmore output\n" for line in lines)
    redactor = Redactor.from_notebooks(solutions, solutions.parent.parent / "exercises" / "dnn_hw")
    kit = tmp_path / "kit"
    kit.mkdir(exist_ok=True)
    (kit / "notes.md").write_text(text)
    release = [leak for leak in make_release.find_leaks(kit, solutions_dir=solutions) if " line of " in leak]
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    page = [
        leak for leak in check_site.find_solution_leaks(site, solutions, {"page.html": text}) if " line of " in leak
    ]
    # the release scan quotes a line's first 70 characters, the site check its first 80
    return {
        "feedback": {line for line in lines if line not in redactor.text(text)},
        "release": {line for line in lines if any(line[:70] in leak for leak in release)},
        "site": {line for line in lines if any(line[:80] in leak for leak in page)},
    }


def test_a_hidden_line_of_the_boundary_length_is_caught_by_all_three_and_a_shorter_one_by_none(tmp_path):
    boundary = "check(" + "x" * (secret_lines.MIN_LINE_CHARS - 7) + ")"
    shorter = "check(" + "y" * (secret_lines.MIN_LINE_CHARS - 8) + ")"
    assert len(boundary) == secret_lines.MIN_LINE_CHARS == len(shorter) + 1
    solutions = _course(tmp_path, [boundary, shorter])
    judged = _judged(tmp_path, solutions, [boundary, shorter])
    assert judged == {"feedback": {boundary}, "release": {boundary}, "site": {boundary}}
    # the feedback notebook's outputs too (nbgrader's preprocessor builds its own Redactor from the notebook)
    notebook = nbformat.read(solutions / "01_activations.ipynb", as_version=4)
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{boundary}\n{shorter}\n")]
    out, _ = HideTestCode().preprocess(notebook, {})
    assert out.cells[1].outputs[0]["text"] == f"{REDACTED}\n{shorter}\n"


def test_moving_the_threshold_moves_all_three(tmp_path, monkeypatch):
    shorter = "check(" + "y" * (secret_lines.MIN_LINE_CHARS - 8) + ")"
    solutions = _course(tmp_path, [shorter])
    monkeypatch.setattr(secret_lines, "MIN_LINE_CHARS", secret_lines.MIN_LINE_CHARS - 1)
    assert _judged(tmp_path, solutions, [shorter]) == {"feedback": {shorter}, "release": {shorter}, "site": {shorter}}


def test_syntax_alone_and_lines_students_see_are_caught_by_none(tmp_path):
    generic, public = "except ValueError:", "def relu(z):"
    solutions = _course(tmp_path, [generic, public, "check(a_long_enough_line)"])
    assert _judged(tmp_path, solutions, [generic, public]) == {"feedback": set(), "release": set(), "site": set()}


# --- every consumer reads the regions through the one parser -----------------------------------------


def test_every_check_reads_the_regions_through_the_one_parser(tmp_path, monkeypatch):
    """Markers the parser is told to use are what every check sees: a check with a parser of its own
    would find no region in this notebook (and report its markers as nothing)."""
    monkeypatch.setattr(
        nbgrader_regions,
        "_DELIMITERS",
        {SOLUTION: ("START ANSWER", "STOP ANSWER"), HIDDEN_TEST: ("START SECRET CHECKS", "STOP SECRET CHECKS")},
    )
    monkeypatch.setattr(
        nbgrader_regions, "MARKERS", ("START ANSWER", "STOP ANSWER", "START SECRET CHECKS", "STOP SECRET CHECKS")
    )
    hidden = "check(secret_value_of_the_test)"
    solutions = _course(
        tmp_path,
        [hidden],
        solution="    return np.maximum(z, 0)  # the answer line",
        begin=("START ANSWER", "START SECRET CHECKS"),
        end=("STOP ANSWER", "STOP SECRET CHECKS"),
    )
    notebook = solutions / "01_activations.ipynb"
    answer_line = "return np.maximum(z, 0) # the answer line"
    assert _judged(tmp_path, solutions, [hidden, answer_line]) == {
        "feedback": {hidden},
        "release": {hidden, answer_line},
        "site": {hidden, answer_line},
    }
    assert hidden not in strip_hidden(nbformat.read(notebook, as_version=4).cells[1].source)
    visible = make_fixtures.visible_code(notebook)
    assert "from checks import check" in visible and hidden not in visible and "np.maximum" not in visible
    assert [leak.kind for leak in leak_policy.find_leaks({"page": "Write `np.maximum(0, x)`."}, solutions)] == [
        "solution code"
    ]
    assert [answer.source for answer in answer_leaks.written_answers(solutions)] == ["01_activations.ipynb/why"]
    kit = tmp_path / "kit"
    (kit / "marker.md").write_text("### START SECRET CHECKS\n")
    assert "marker.md: nbgrader marker 'START SECRET CHECKS'" in make_release.find_leaks(kit, solutions_dir=solutions)


# --- the course's own notebooks -----------------------------------------------------------------------


@pytest.mark.skipif(not list(SOLUTIONS.glob("*.ipynb")), reason="needs solutions/ (instructors' checkout)")
def test_every_hidden_secret_line_of_the_course_is_caught_by_all_three(tmp_path):
    hidden = [line.key for line in secret_lines.secret_lines(SOLUTIONS, kinds=(HIDDEN_TEST,))]
    assert len(hidden) > 50
    cells = [cell for path in nbgrader_regions.notebook_paths(SOLUTIONS) for cell in nbgrader_regions.read_cells(path)]
    assert {line.key for line in secret_lines.secret_lines_of(cells, kinds=(HIDDEN_TEST,))} >= set(hidden)
    judged = _judged(tmp_path, SOLUTIONS, hidden)
    assert judged == {"feedback": set(hidden), "release": set(hidden), "site": set(hidden)}


def test_a_cell_record_reads_what_nbformat_reads(tmp_path):
    source = "a = 1\nb = 2"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), tmp_path / "n.ipynb")
    assert nbgrader_regions.read_cells(tmp_path / "n.ipynb") == [Cell("n.ipynb", 0, "code", source, {})]
