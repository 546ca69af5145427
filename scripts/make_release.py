"""Write the students' kit: what a student needs, and nothing that gives an answer away.

    python scripts/make_release.py                  # release/dnn-course-kit/ and release/dnn-course-kit.zip
    python scripts/make_release.py --out DIR        # the same under DIR

The kit is a folder ready to push as the students' own public repository (the
repository that ``repository.url`` in ``_config.yml`` names, where the site's
launch buttons point), and the same folder as a zip for a learning platform:

* ``exercises/dnn_hw/``: the six exercise notebooks (``make exercises`` output);
* ``dnn_course/``: the runtime they import, without ``reference.py`` and with the
  visible tests' reference values only (``fixtures/visible_values.npz``);
* ``data/embedded/``: the embedded data subset (12 MB);
* ``pyproject.toml``, ``requirements.txt``, ``environment.yml``, ``binder/``: the
  pinned environment, the students' part of the course's (``requirements.txt`` is the
  repository's ``requirements-students.txt``; ``environment.yml`` lists only the packages of
  ``requirements-students.in``); ``pip install .`` builds a wheel that carries the data;
* ``book/``: one page per chapter the notebooks link to ("Read first"), which
  opens that chapter on the course website (``html.baseurl`` in ``_config.yml``,
  the one setting that names it; without it, the page and the README say so);
* ``README.md`` (for students), ``LICENSE``, ``Makefile`` (``make lab``,
  ``make check``, ``make submit``).

Before writing the zip, every file of the kit is scanned for answers
(:func:`find_leaks`): the secret lines of the source notebooks' solution and hidden-test
regions (code, model answers, rubrics; by the course's one line policy,
:mod:`dnn_course.secret_lines`, which feedback and the site check share), nbgrader markers, the reference
values that only hidden tests use, the code of every ``.py`` file compared
with the solutions' code after normalising both (:mod:`dnn_course.leak_policy`:
an answer written with other names or spacing is still found), and the
reference search's tuned configuration in any text. Any finding stops the release.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import string
import sys
import zipfile
from pathlib import Path

import numpy as np
import yaml

from dnn_course import answer_leaks, code_leaks, leak_policy, nbgrader_regions, secret_lines
from dnn_course.assignment import ASSIGNMENT as COURSE  # the notebooks and data files, named once

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script: `scripts` importable too
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts import students_requirements

NOTEBOOKS, DATA_FILES, ARCHIVE_PREFIX = COURSE.names, COURSE.data_file_caps, COURSE.archive_prefix

REPO = Path(__file__).resolve().parent.parent
KIT_NAME = "dnn-course-kit"
ASSIGNMENT = COURSE.name
SOLUTIONS = REPO / "solutions" / ASSIGNMENT
EXERCISES = REPO / "exercises" / ASSIGNMENT
FIXTURES = REPO / "dnn_course" / "fixtures"
#: The kit's README, .gitignore, book pages and conda header, with ``${placeholders}`` (:func:`template`),
#: and its Makefile (copied as it is).
TEMPLATES = Path(__file__).resolve().parent / "release_templates"
#: Modules of dnn_course that stay with the instructors (they read solutions/).
INSTRUCTOR_MODULES = {
    "reference.py",
    "leak_policy.py",
    "code_leaks.py",
    "answer_leaks.py",
    "secret_lines.py",
    "nbgrader_regions.py",
}
ZIP_DATE = (2020, 1, 1, 0, 0, 0)

#: A "Read first" link of a notebook: a chapter of the book, relative to exercises/dnn_hw/.
_CHAPTER_LINK = re.compile(r"\]\(\.\./\.\./book/([\w-]+)\.md\)")


def _config() -> dict:
    return yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))


def students_repository_url() -> str:
    """``repository.url`` of _config.yml: the students' repository (the one setting that names it)."""
    return _config()["repository"]["url"].rstrip("/")


def site_url() -> str:
    """``html.baseurl`` of _config.yml, ending in ``/``: where the course website is published; "" if unset."""
    url = str((_config().get("html") or {}).get("baseurl") or "").strip()
    return url.rstrip("/") + "/" if url else ""


# ----------------------------------------------------------------------------------------------
# What must never be in the kit


def _cell_sources(notebook: Path) -> list[tuple[str, str]]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"]) for c in cells]


def hidden_only_values(fixtures_dir: Path = FIXTURES) -> dict[str, np.ndarray]:
    """The reference values that only the instructors' set has (the hidden tests' own)."""
    with (
        np.load(fixtures_dir / "reference_values.npz", allow_pickle=False) as full,
        np.load(fixtures_dir / "visible_values.npz", allow_pickle=False) as visible,
    ):
        return {key: full[key] for key in full.files if key not in visible.files}


def _texts_of(name: str, data: bytes) -> list[str]:
    """The text(s) to search in one file: its decoded bytes and, for a notebook, its cells' sources."""
    text = data.decode("utf-8", errors="replace")
    texts = [text]
    if name.endswith(".ipynb"):
        try:
            cells = json.loads(text).get("cells", [])
            texts.append("\n".join("".join(c.get("source", "")) for c in cells))
        except (json.JSONDecodeError, AttributeError):
            pass
    return texts


def _kit_files(root: Path) -> dict[str, bytes]:
    """Every file of a kit folder or zip (and the members of zips and .npz inside it), by name."""
    files = {}
    if root.is_file() and zipfile.is_zipfile(root):
        with zipfile.ZipFile(root) as archive:
            for member in archive.namelist():
                if not member.endswith("/"):
                    files[f"{root.name}:{member}"] = archive.read(member)
    else:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def tuned_configuration_pattern() -> re.Pattern:
    """What names the reference search's tuned network in a text: its structure (``784-1024-1024-10``)
    and, when it has two hidden layers or more, their sizes in order however separated
    (``1024-1024``, ``[1024, 1024]``, ``1024x1024``)."""
    sizes = [int(size) for size in _tuned_final()["layer_sizes"]]
    alternatives = [re.escape("-".join(map(str, sizes)))]
    if len(sizes) > 3:
        alternatives.append(r"(?:\s*[-,x\u00d7]\s*|\s+)".join(str(size) for size in sizes[1:-1]))
    return re.compile(rf"(?<!\d)(?<!\d\.)(?:{'|'.join(alternatives)})(?!\.?\d)")


#: A kit module's expression equal to a solution expression is an answer when it calls NumPy or has
#: this many parts; below that, library code repeats the solutions' plain algebra (``total += loss * m``
#: is ``self.dW += reg_lambda * self.W`` once both are normalised) without giving anything away.
MIN_LIBRARY_MATCH_NODES = 6
#: Array plumbing that any code handling a batch of images writes (``x.reshape(len(x), -1)``).
PLUMBING = {"reshape", "shape", "len", "ravel", "astype", "ascontiguousarray"}


def _generic(snippet: str) -> bool:
    """Whether a match is plain algebra or array plumbing rather than an answer (see above)."""
    import ast

    try:
        tree = ast.parse(snippet.strip())
    except SyntaxError:
        return False
    nodes = [node for node in ast.walk(tree) if isinstance(node, ast.expr)]
    if "np." not in (code_leaks.normalise(snippet) or snippet) and len(nodes) < MIN_LIBRARY_MATCH_NODES:
        return True
    names = {node.attr for node in nodes if isinstance(node, ast.Attribute)} | {
        node.func.id for node in nodes if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    arithmetic = any(isinstance(node, (ast.BinOp, ast.Compare, ast.BoolOp)) for node in nodes)
    return names <= PLUMBING and not arithmetic


def library_code_leaks(modules: dict[str, str], solutions_dir: Path = SOLUTIONS) -> list[str]:
    """Solution code in the kit's Python modules (``{name: source}``), written in any names or spacing.

    The policy of the site (:func:`dnn_course.leak_policy.find_leaks`: both sides normalised) applied
    to each module as one block of code; a match that is plain algebra (:func:`_generic`) is not an answer.
    """
    import ast

    found = []
    for leak in leak_policy.find_leaks(
        {name: f"```python\n{source}\n```" for name, source in modules.items()}, solutions_dir, answers=False
    ):
        snippet = leak.detail.split(" is ", 1)[0] if leak.kind == "solution code" else ""
        try:
            snippet = ast.literal_eval(snippet) if snippet else ""
        except (ValueError, SyntaxError):
            snippet = ""
        if not (snippet and _generic(snippet)):
            found.append(f"{leak.name}: {leak.kind} of {leak.source}, in other words: {leak.detail}")
    return found


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None  # the data files, compressed arrays


def find_leaks(root: Path, solutions_dir: Path = SOLUTIONS, fixtures_dir: Path = FIXTURES) -> list[str]:
    """Everything in the kit folder or zip ``root`` that gives an answer away, one sentence each."""
    leaks = []
    files = _kit_files(Path(root))
    tuned = tuned_configuration_pattern()
    leaks += library_code_leaks(
        {name: _text(data) for name, data in files.items() if name.endswith(".py") and _text(data) is not None},
        solutions_dir,
    )
    lines = secret_lines.secret_lines(solutions_dir)
    hidden = hidden_only_values(fixtures_dir)
    hidden_bytes = {key: value.tobytes() for key, value in hidden.items() if value.size >= 4}
    for name, data in files.items():
        lowered = name.lower()
        if (
            "solutions/" in lowered
            or "autograder" in lowered
            or "reference_values" in lowered
            or lowered.endswith("reference.py")
        ):
            leaks.append(f"{name}: an instructors' file")
        if name.endswith(".npz"):
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                for key in arrays.files:
                    if key in hidden:
                        leaks.append(f"{name}: holds the hidden tests' reference value {key}")
                    elif any(
                        arrays[key].shape == value.shape and np.array_equal(arrays[key], value)
                        for value in hidden.values()
                    ):
                        leaks.append(f"{name}: {key} equals a value only the hidden tests use")
        for key, raw in hidden_bytes.items():
            if raw in data:
                leaks.append(f"{name}: contains the bytes of the hidden tests' reference value {key}")
        texts = _texts_of(name, data)
        for marker in nbgrader_regions.MARKERS:
            if any(marker in text for text in texts):
                leaks.append(f"{name}: nbgrader marker {marker!r}")
        # a secret line can be read only in a text file (searching 12 MB of compressed data for each line is slow)
        found_lines = {
            line: None
            for text in (texts if _text(data) is not None else [])
            for line in secret_lines.found_in(text, lines)
        }
        leaks += [f"{name}: a {line.kind} line of {line.notebook}: {line.key[:70]!r}" for line in found_lines]
        found = tuned.search(_text(data) or "")
        if found:
            leaks.append(f"{name}: names the tuned configuration of the reference search ({found.group()!r})")
    return leaks


# ----------------------------------------------------------------------------------------------
# What must never be on the default site (the answers of the written questions)

#: Headings of the answers' sections (book/answers/), which the default site must not have.
ANSWER_HEADINGS = (
    "What the curves show",
    "10,000 or 60,000 training images",
    "Reading the results",
    "How the design was chosen",
)


def model_answers(solutions_dir: Path = SOLUTIONS) -> dict[str, str]:
    """``{"<notebook>/<grade_id>": model answer}`` of every written-answer cell.

    The rubric that follows a model answer (from ``**Rubric``) is left out: its criteria are
    public (the instructor guide lists them, the notebooks say what to discuss).
    """
    return {answer.source: answer.model for answer in answer_leaks.written_answers(solutions_dir)}


def _tuned_final() -> dict:
    """The network the reference's Fashion-MNIST search chose (its results file's ``final``)."""
    return json.loads((REPO / "book" / "results" / "fashion_tuning_full.json").read_text(encoding="utf-8"))["final"]


def tuned_configuration() -> str:
    """The structure the reference's Fashion-MNIST search chose, e.g. "784-1024-1024-10"."""
    return _tuned_final()["structure"].split()[0]


def model_answer_leaks(texts: dict[str, str], solutions_dir: Path = SOLUTIONS) -> list[str]:
    """Model-answer text, the answers' section headings or the tuned configuration in ``texts``.

    ``texts``: ``{name: text}`` of every page (or page source) of a site. A model answer is
    found by any run of ``answer_leaks.SHINGLE_WORDS`` words it shares with a page.
    """
    shingles = {}
    for answer, body in model_answers(solutions_dir).items():
        words = answer_leaks.plain_words(body).split()
        for i in range(len(words) - answer_leaks.SHINGLE_WORDS + 1):
            shingles.setdefault(" ".join(words[i : i + answer_leaks.SHINGLE_WORDS]), answer)
    tuned = tuned_configuration()
    leaks = []
    for name, text in texts.items():
        plain = f" {answer_leaks.plain_words(text)} "
        found = sorted({answer for shingle, answer in shingles.items() if f" {shingle} " in plain})
        leaks += [f"{name}: text of the model answer {answer}" for answer in found]
        leaks += [f"{name}: the answers' section {heading!r}" for heading in ANSWER_HEADINGS if heading in text]
        if tuned in text:
            leaks.append(f"{name}: the tuned configuration of the reference search, {tuned}")
    return leaks


# ----------------------------------------------------------------------------------------------
# Building the kit


def chapter_links() -> dict[str, str]:
    """``{chapter file stem: its title}`` for every chapter the exercise notebooks link to ("Read first")."""
    chapters = {}
    for name in NOTEBOOKS:
        for source in (source for _, source in _cell_sources(EXERCISES / name)):
            for stem in _CHAPTER_LINK.findall(source):
                heading = re.search(r"^# (.+)$", (REPO / "book" / f"{stem}.md").read_text(encoding="utf-8"), re.M)
                chapters[stem] = heading.group(1).strip() if heading else stem
    return dict(sorted(chapters.items()))


def template(file_name: str, **values) -> str:
    """The kit's file ``file_name`` from ``scripts/release_templates/``, its ``${placeholders}`` filled with ``values``.

    Raises ``KeyError`` naming a placeholder the template has and ``values`` lacks.
    """
    return string.Template((TEMPLATES / file_name).read_text(encoding="utf-8")).substitute(values)


def _chapter_page(stem: str, title: str, site: str) -> str:
    """The kit's ``book/<stem>.md``: where a notebook's "Read first" link lands, pointing to the chapter online."""
    return template("chapter_page.md" if site else "chapter_page_without_site.md", stem=stem, title=title, site=site)


def _book_section(site: str) -> str:
    chapters = chapter_links()
    if site:
        rows = "\n".join(f"* [{title}]({site}book/{stem}.html)" for stem, title in chapters.items())
        return template("book_section.md", site=site, chapters=rows)
    return template("book_section_without_site.md", chapters="\n".join(f"* {title}" for title in chapters.values()))


def _kit_readme(url: str, site: str = "") -> str:
    return template(
        "README.md",
        book_section=_book_section(site),
        url=url,
        name=url.rsplit("/", 1)[-1],
        binder=url.replace("https://github.com/", "https://mybinder.org/v2/gh/")
        + "/main?urlpath=lab/tree/exercises/dnn_hw",
        data_files=", ".join(f"`{file}`" for file in DATA_FILES),
        example=f"{ARCHIVE_PREFIX}_Ada_Lovelace_12345678.zip",
    )


#: A package line of environment.yml: ``  - numpy=2.4.6`` (conda) or ``      - nbgrader==0.9.6`` (pip).
_ENVIRONMENT_PACKAGE = re.compile(r"^\s*- ([A-Za-z0-9._-]+)==?[^=]")


def _environment_yml() -> str:
    """The repository's environment.yml with a header for students, its packages those of
    requirements-students.in (python, pip and the course package stay)."""
    students = set(students_requirements.read_names(students_requirements.STUDENTS_IN))
    body = []
    for line in (REPO / "environment.yml").read_text(encoding="utf-8").splitlines():
        package = _ENVIRONMENT_PACKAGE.match(line)
        if line.startswith("#") or (
            package
            and package.group(1) != "python"
            and students_requirements.canonicalize_name(package.group(1)) not in students
        ):
            continue
        body.append(line)
    return template("environment_header.yml") + "\n".join(body) + "\n"


def build_kit(out_dir: Path) -> Path:
    """Write the kit folder ``out_dir/dnn-course-kit`` (replacing an old one) and return it."""
    missing = [name for name in NOTEBOOKS if not (EXERCISES / name).is_file()]
    if missing:
        raise SystemExit(f"exercises/{ASSIGNMENT} lacks {', '.join(missing)}: run `make regenerate-exercises` first.")
    kit = Path(out_dir) / KIT_NAME
    if kit.exists():
        shutil.rmtree(kit)
    (kit / "exercises" / ASSIGNMENT).mkdir(parents=True)
    # The notebooks and the students' nbgrader_config.py (validate's settings), nothing a local run left.
    for path in [EXERCISES / name for name in NOTEBOOKS] + sorted(EXERCISES.glob("*.py")):
        shutil.copy2(path, kit / "exercises" / ASSIGNMENT / path.name)
    package = kit / "dnn_course"
    (package / "fixtures").mkdir(parents=True)
    for module in sorted((REPO / "dnn_course").glob("*.py")):
        if module.name not in INSTRUCTOR_MODULES:
            shutil.copy2(module, package / module.name)
    shutil.copy2(FIXTURES / "visible_values.npz", package / "fixtures" / "visible_values.npz")
    shutil.copytree(REPO / "data" / "embedded", kit / "data" / "embedded")
    for name in ("pyproject.toml", "LICENSE"):
        shutil.copy2(REPO / name, kit / name)
    # The students' pins only (make students-requirements), under the name the kit's Makefile, README and binder/ use.
    shutil.copy2(students_requirements.STUDENTS_TXT, kit / "requirements.txt")
    shutil.copytree(REPO / "binder", kit / "binder")
    (kit / "environment.yml").write_text(_environment_yml(), encoding="utf-8")
    (kit / "book").mkdir()
    site = site_url()
    for stem, title in chapter_links().items():
        (kit / "book" / f"{stem}.md").write_text(_chapter_page(stem, title, site), encoding="utf-8")
    (kit / "README.md").write_text(_kit_readme(students_repository_url(), site), encoding="utf-8")
    shutil.copyfile(TEMPLATES / "Makefile", kit / "Makefile")  # as it is: make's own $(...) are no placeholders
    (kit / ".gitignore").write_text(template("gitignore", archive_prefix=ARCHIVE_PREFIX), encoding="utf-8")
    return kit


def write_zip(kit: Path, zip_path: Path) -> Path:
    """The kit as a zip whose members sit under ``dnn-course-kit/`` (fixed dates: same kit, same bytes)."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(kit.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(f"{kit.name}/{path.relative_to(kit).as_posix()}", date_time=ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o755 if path.stat().st_mode & 0o111 else 0o644) << 16
                archive.writestr(info, path.read_bytes())
    return zip_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "release", help="folder to write into (default release/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    kit = build_kit(args.out)
    leaks = find_leaks(kit)
    if leaks:
        print(f"The kit in {kit} gives answers away; not releasing it:", *leaks, sep="\n  ", file=sys.stderr)
        return 1
    zip_path = write_zip(kit, args.out / f"{KIT_NAME}.zip")
    leaks = find_leaks(zip_path)
    if leaks:
        print(f"{zip_path} gives answers away; not releasing it:", *leaks, sep="\n  ", file=sys.stderr)
        zip_path.unlink()
        return 1
    files = [p for p in kit.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    print(
        f"wrote {kit} ({len(files)} files, {size / 1e6:.1f} MB) and {zip_path} "
        f"({zip_path.stat().st_size / 1e6:.1f} MB); no answers found in either"
    )
    print(
        f"Hand it out: push {kit} to {students_repository_url()} (repository.url in _config.yml), "
        f"or upload {zip_path.name} to the learning platform."
    )
    if not site_url():
        print(
            "Note: html.baseurl in _config.yml is empty, so the kit cannot link to the course book; its README "
            "and book/ pages say so. Set it to the website's address and run make release again."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
