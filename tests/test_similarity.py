"""The similarity report (autograder/similarity.py): copied work is flagged, honest work is not.

The class is the rehearsal cohort's notebooks (tests/rehearsal/cohort.py): 2001 the reference answers,
2002 and 2003 correct and written independently, plus students made here:

* 2009 copied 2002's code, renamed its variables and attributes and reformatted it (spacing, comments);
  its written answers are its own;
* 2010 wrote no code and copied 2003's written answers, changing a few words;
* 2011 handed in 2002's saved 06 model as its own (and 2001's tanh network under another name);
* 2012 and 2013 answered only the ReLU cell, with the short answer every correct student writes.

Notebook 05's saved networks come from the brief's fixed settings and seed, so honest students with
code that computes the same numbers hand in identical files (the cohort's 2001-2003 do): listed, never
a flag on their own.
"""

from __future__ import annotations

import copy
import csv
import io
import shutil
import tokenize
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import similarity, similarity_report
from tests.autograder_corpus import students as st
from tests.rehearsal import cohort

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "exercises" / "dnn_hw"
SOURCE = REPO / "solutions" / "dnn_hw"

RENAMES = {
    "z": "inputs",
    "out": "cache",
    "d_prev": "upstream",
    "magnitude": "size",
    "generator": "gen",
    "scale": "std",
    "exps": "ex",
    "count": "n_rows",
    "grad": "g",
    "data_loss": "ce",
    "penalty": "l2",
    "per_example": "rows",
    "stable_sigmoid": "safe_sig",
    "inputs": "flat",
    "shape_in": "orig_shape",
    "layer": "lyr",
    "name": "key",
    "x": "batch",
    "EPS": "TINY",
}


def disguise(source: str) -> str:
    """``source`` with names renamed, every token spaced differently and a comment in each function."""
    tokens = [
        (t.type, RENAMES.get(t.string, t.string) if t.type == tokenize.NAME else t.string)
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
    ]
    lines = []
    for line in tokenize.untokenize(tokens).splitlines():
        lines.append(line.rstrip())
        if line.lstrip().startswith("def "):
            lines.append(" " * (len(line) - len(line.lstrip()) + 4) + "# worked this out myself")
    return "\n".join(lines) + "\n"


def _model(seed: int) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(seed)
    np.savez(buffer, W1=rng.standard_normal((8, 4)), b1=np.zeros(4))
    return buffer.getvalue()


def _reworded(text: str) -> str:
    """A copied answer with a few words changed."""
    return (
        text.replace("Ranking:", "My ranking:")
        .replace("so learning is fastest", "which is why it wins")
        .replace("big |z|", "large |z|")
    )


def class_notebooks() -> dict[str, dict[str, nbformat.NotebookNode]]:
    """Student id -> {notebook file name: notebook}."""
    good = st.perfect(RELEASE, SOURCE)
    blank = st.released(RELEASE)
    alvarez = {n: cohort._answers(copy.deepcopy(nb), cohort.ALVAREZ) for n, nb in good.items()}
    bao = {n: cohort._answers(copy.deepcopy(nb), cohort.BAO) for n, nb in good.items()}
    copied_code = {gid: disguise(text) for gid, text in cohort.ALVAREZ.items() if not gid.startswith("answer_")}
    copier = {
        n: cohort._answers(
            copy.deepcopy(nb),
            {
                **copied_code,
                **{
                    "answer_mnist_activations": "Sigmoid trained slowest in my runs. Its slope is small everywhere, "
                    "so the first layer barely learns; ReLU and tanh did much better.",
                    "answer_fashion_design": "I picked two ReLU layers after comparing validation accuracy.",
                },
            },
        )
        for n, nb in alvarez.items()
    }
    answers_copied = {
        n: cohort._answers(
            copy.deepcopy(nb),
            {key: _reworded(cohort.BAO[key]) for key in ("answer_mnist_activations", "answer_fashion_design")},
        )
        for n, nb in blank.items()
    }
    short = {
        "relu": st.answer(blank[cohort.NB["01"]], "relu")
        .replace(
            "# ============================== EDIT HERE ==============================\n"
            "        raise NotImplementedError()\n        return self.out",
            "self.out = np.maximum(0, z)\n        return self.out",
            1,
        )
        .replace(
            "# ============================== EDIT HERE ==============================\n"
            "        raise NotImplementedError()\n        return d_z",
            "return d_prev * (self.out > 0)",
            1,
        )
    }
    assert "np.maximum(0, z)" in short["relu"] and "NotImplementedError" not in short["relu"]
    shorts = {n: cohort._answers(copy.deepcopy(nb), short) for n, nb in blank.items()}
    return {
        "2001": good,
        "2002": alvarez,
        "2003": bao,
        "2009": copier,
        "2010": answers_copied,
        "2011": copy.deepcopy(blank),
        "2012": shorts,
        "2013": copy.deepcopy(shorts),
    }


def class_models() -> dict[str, dict[str, bytes]]:
    """Student id -> {file name: bytes}: 05's relu network the same for the honest three (fixed seed)."""
    relu = _model(0)
    models = {
        sid: {"mnist_model_relu.npz": relu, "mnist_model_tanh.npz": _model(10 + i), "fashion_model.npz": _model(20 + i)}
        for i, sid in enumerate(("2001", "2002", "2003"))
    }
    models["2011"] = {
        "fashion_model.npz": models["2002"]["fashion_model.npz"],
        "mnist_model_sigmoid.npz": models["2001"]["mnist_model_tanh.npz"],
    }
    return models


def write_course(root: Path) -> Path:
    """A grading run's course folder holding the class as the collector leaves it."""
    course = root / "course"
    shutil.copytree(RELEASE, course / "release" / "dnn_hw")
    models = class_models()
    for sid, notebooks in class_notebooks().items():
        folder = course / "submitted" / sid / "dnn_hw"
        cohort.write_notebooks(folder, notebooks)
        for name, data in models.get(sid, {}).items():
            (folder / name).write_bytes(data)
    return course


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    course = write_course(tmp_path_factory.mktemp("similarity"))
    students = sorted(p.name for p in (course / "submitted").iterdir())
    found = similarity.analyse(course, "dnn_hw", students, similarity.DEFAULT_THRESHOLD)
    return {(p.a, p.b): p for p in found}


def test_the_independent_correct_students_are_not_flagged(pairs):
    for pair in [("2001", "2002"), ("2001", "2003"), ("2002", "2003")]:
        p = pairs[pair]
        assert not p.flagged, (pair, p.reasons)
        assert p.code < 0.3 and p.text == 0, (pair, p.code_a, p.code_b, p.text)
        assert ("mnist_model_relu.npz", "mnist_model_relu.npz") in p.models  # listed, not a flag


def test_a_renamed_and_reformatted_copy_of_the_code_is_flagged_with_its_source_only(pairs):
    p = pairs[("2002", "2009")]
    assert p.flagged and p.reasons == [f"code {p.code:.0%} alike"], p.reasons
    assert p.code_a > 0.9 and p.code_b > 0.9, (p.code_a, p.code_b)
    for other in ("2001", "2003"):
        assert not pairs[(other, "2009")].flagged, pairs[(other, "2009")].reasons


def test_copied_written_answers_are_flagged(pairs):
    p = pairs[("2003", "2010")]
    assert p.reasons == [f"written answers {p.text:.0%} alike"] and p.text > 0.8, (p.reasons, p.text)
    assert p.code == 0
    assert not pairs[("2002", "2010")].flagged


def test_an_identical_model_file_is_found_whatever_its_name(pairs):
    p = pairs[("2002", "2011")]
    assert p.reasons == ["identical saved model fashion_model.npz"]
    q = pairs[("2001", "2011")]
    assert q.models == [("mnist_model_tanh.npz", "mnist_model_sigmoid.npz")] and not q.flagged


def test_the_short_answer_every_correct_student_writes_does_not_flag(pairs):
    p = pairs[("2012", "2013")]
    assert p.code_shared < similarity.MIN_SHARED_CODE and not p.flagged, (p.code_shared, p.reasons)
    assert not pairs[("2001", "2012")].flagged


def test_exactly_the_copied_pairs_are_flagged(pairs):
    flagged = sorted(pair for pair, p in pairs.items() if p.flagged)
    assert flagged == [("2002", "2009"), ("2002", "2011"), ("2003", "2010")]


def test_scores_do_not_depend_on_the_process(pairs, tmp_path):
    """Stable hashes: the same class gives the same CSV in another interpreter (Python's hash is salted)."""
    import subprocess
    import sys

    course = write_course(tmp_path)
    students = sorted(p.name for p in (course / "submitted").iterdir())
    here = similarity_report.csv_text(similarity.analyse(course, "dnn_hw", students, 0.5))
    code = (
        "import sys; from pathlib import Path; from autograder import similarity as s, similarity_report as r; "
        "c = Path(sys.argv[1]); sys.stdout.write(r.csv_text(s.analyse(c, 'dnn_hw', sys.argv[2:], 0.5)))"
    )
    there = subprocess.run(
        [sys.executable, "-c", code, str(course), *students],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    ).stdout
    assert here == there


def test_the_page_shows_the_pairs_side_by_side_with_the_shared_regions_marked(tmp_path):
    course = write_course(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    students = sorted(p.name for p in (course / "submitted").iterdir())
    similarity_report.write(out, course, "dnn_hw", students, 0.5)
    page = (out / "similarity.html").read_text()
    assert "<h3 id='2002-2009'>2002 and 2009</h3>" in page and "<mark>" in page
    assert "http" not in page.replace("https://pypi.org", "")  # offline: nothing loaded from the network
    section = page[page.index("<h3 id='2002-2009'>") :]
    assert "safe_sig" in section and "stable_sigmoid" in section  # the copy and its source, side by side
    with open(out / "similarity.csv", newline="") as handle:
        rows = {(r["student_a"], r["student_b"]): r for r in csv.DictReader(handle)}
    assert len(rows) == len(students) * (len(students) - 1) // 2
    assert sorted(k for k, r in rows.items() if r["flagged"]) == [("2002", "2009"), ("2002", "2011"), ("2003", "2010")]
    assert "2002 and 2009" in similarity_report.report_section(out)
    # a higher threshold flags fewer pairs: the instructor decides
    similarity_report.write(out, course, "dnn_hw", students, 0.99)
    assert "2002 and 2009" not in similarity_report.report_section(out)


def test_reading_never_follows_a_link_and_caps_the_size(tmp_path):
    secret = tmp_path / "secret.ipynb"
    secret.write_text("{}")
    (tmp_path / "link.ipynb").symlink_to(secret)
    assert similarity.read_capped(tmp_path / "link.ipynb", 1000) is None
    assert similarity.read_capped(secret, 1) is None and similarity.read_capped(secret, 2) == b"{}"
    assert similarity.read_capped(tmp_path / "missing.ipynb", 10) is None
    (tmp_path / "01_activations.ipynb").write_bytes(b"\x00not json")
    work = similarity.read_work("x", tmp_path, RELEASE, sorted(p.name for p in RELEASE.glob("*.ipynb")))
    assert work.code == "" and work.answers == {} and work.models == {}
    # an answer of a million products (19 MB) is cut: no submission makes the comparison slow
    nb = nbformat.read(RELEASE / cohort.NB["01"], as_version=4)
    nb = st.set_answer(nb, "relu", "x = [" + ", ".join(f"a{i} * b{i}" for i in range(1_000_000)) + "]\n")
    nbformat.write(nb, tmp_path / cohort.NB["01"])
    work = similarity.read_work("x", tmp_path, RELEASE, sorted(p.name for p in RELEASE.glob("*.ipynb")))
    assert len(work.code) == similarity.MAX_CODE_CHARS


@pytest.mark.slow
@pytest.mark.usefixtures("bubblewrap")
def test_the_grade_command_flags_exactly_the_copied_pair(tmp_path):
    """`python -m autograder grade` on 2001, 2002 and 2002's disguised copy: one pair flagged, grades.csv as before."""
    from autograder.__main__ import main

    download = tmp_path / "download"
    download.mkdir()
    notebooks = class_notebooks()
    for sid, name in (("2001", "Ada_Lovelace"), ("2002", "Ana_Alvarez"), ("2009", "Max_Copy")):
        folder = cohort.write_notebooks(
            tmp_path / "students" / sid, {n: nb for n, nb in notebooks[sid].items() if n[:2] in "01 02 03 04"}
        )
        cohort.zip_folder(folder, download / f"DNN_HW2_{name}_{sid}.zip", 1_790_000_000)
    out = tmp_path / "out"
    assert (
        main(["grade", str(download), "--out", str(out), "--quiet", "--jobs", "2", "--experiment-profile", "smoke"])
        == 0
    )
    with open(out / "similarity.csv", newline="") as handle:
        flagged = [(r["student_a"], r["student_b"]) for r in csv.DictReader(handle) if r["flagged"]]
    assert flagged == [("2002", "2009")]
    report = (out / "report.html").read_text()
    assert "href='similarity.html'" in report and "2002 and 2009" in report
    with open(out / "grades.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header[-4:] == ["to_grade_by_hand", "total", "max_total", "flags"]  # no column added


def test_the_readme_states_the_measured_scores(pairs):
    """autograder/README.md's numbers are these measurements: honest pairs' highest code score, the copy's."""
    text = " ".join((REPO / "autograder" / "README.md").read_text().split())
    honest = max(pairs[p].code for p in [("2001", "2002"), ("2001", "2003"), ("2002", "2003")])
    copied = min(pairs[("2002", "2009")].code_a, pairs[("2002", "2009")].code_b)
    assert f"at most {100 * honest:.0f} % of their code" in text
    assert f"respaced shares {100 * copied:.0f} %" in text
    assert f"(default {similarity.DEFAULT_THRESHOLD:g})" in text and honest < similarity.DEFAULT_THRESHOLD < copied
    from autograder.grading_settings import GradingSettings

    assert GradingSettings().similarity_threshold == similarity.DEFAULT_THRESHOLD


def test_the_instructor_guide_states_the_measured_scores_and_the_rules(pairs):
    """book/instructor_guide.md, where a grading round is walked through, says what the module does and measured."""
    text = " ".join((REPO / "book" / "instructor_guide.md").read_text().split())
    honest = max(pairs[p].code for p in [("2001", "2002"), ("2001", "2003"), ("2002", "2003")])
    copied = min(pairs[("2002", "2009")].code_a, pairs[("2002", "2009")].code_b)
    assert max(pairs[p].text for p in [("2001", "2002"), ("2001", "2003"), ("2002", "2003")]) == 0
    assert (
        f"share at most {100 * honest:.0f} % of their code and none of their written words; a copy of one of "
        f"them with every variable renamed and every line respaced shares {100 * copied:.0f} %"
    ) in text
    assert f"`--similarity-threshold` alike (0 to 1, default {similarity.DEFAULT_THRESHOLD:g})" in text
    assert (
        f"at least {similarity.MIN_SHARED_CODE} characters of tokenized code (about four lines) or "
        f"{similarity.MIN_SHARED_WORDS} words"
    ) in text
    assert f"runs of {similarity.MIN_RUN} or more words" in text
    assert similarity.CODE_NOTEBOOKS == ("01", "02", "03", "04") and "answer cells of notebooks 01-04" in text
    assert similarity.OWN_CONFIGURATION_MODELS == ("fashion_model.npz",)
    assert "`OUT/similarity.html`" in text and "`OUT/similarity.csv`" in text
    assert "A flag is evidence to look at, not a verdict." in text and "a flag takes no points" in text


def test_shared_runs_of_hostile_repetitive_answers_are_found_in_one_pass():
    """Two answers of 10,000 repeated words: difflib's matcher (no junk heuristic) needed hours for
    this, and the similarity step runs in the grading process; the dictionary walk returns at once."""
    from autograder.similarity import MIN_RUN, shared_runs

    same = ["the"] * 10_000
    assert shared_runs(same, same) == [(0, 0, 10_000)]
    assert shared_runs(same, ["the", "x"] * 5_000) == []
    answer = "a model fitted with a smaller learning rate converged more slowly but further".split()
    copied = ["in", "short"] + answer[: MIN_RUN + 1] + ["however"]
    assert shared_runs(answer, copied) == [(0, 2, MIN_RUN + 1)]
    assert shared_runs(answer, answer[: MIN_RUN - 1]) == []


def test_the_similarity_step_is_guarded_before_the_grades_are_written():
    """A structural check (a behavioural one would need a second whole grading run): in grade.py the
    similarity report is made inside a try whose except comes before the class report and gradebook."""
    import inspect

    from autograder import grade

    source = inspect.getsource(grade)
    call = source.index("similarity_report.write(")
    guard = source.rindex("try:", 0, call)
    assert source.index("except Exception", call) < source.index("report.write_all(", call), (
        "the similarity step must be guarded before the grades are written"
    )
    assert guard > source.rindex("manual.write_manual_list(", 0, call)
