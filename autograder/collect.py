"""From an LMS download to one clean folder per student.

The download is a folder of zip files and/or folders, each named like
``DNN_HW2_<Name>_<StudentID>``. nbgrader's ``zip_collect`` does the moving,
with two plugins of ours that add what it lacks:

* :class:`SafeExtractorPlugin` unpacks each zip without trusting it: paths that
  climb out (zip slip), absolute paths and links are refused, sizes and member
  counts are capped, nested folders are flattened, and only the notebooks and
  the known data files are kept (any other file, a ``numpy.py`` for instance,
  is dropped and counted).
* :class:`SubmissionCollectorPlugin` maps each kept file to its student and to
  the assignment's file name: the student id comes from the archive or folder
  name (a name that does not match the pattern becomes its own id, flagged);
  a renamed notebook is recognised by its cells; of several submissions of
  one student one is graded and the others are reported.

Rules that hold whatever the download contains:

* **Every entry gets a row.** Each zip file or folder of the download (names
  starting with ``.`` excepted) becomes a candidate: an archive that cannot be
  opened, a member with a bad CRC, a size that lies, an encryption flag or an
  unsupported compression method, a ``.tar.gz`` or any other file costs that
  entry (or that member) only, with a flag saying why; it is scored 0 if
  nothing usable is left.
* **Ids never collide by accident.** An id keeps the name's ASCII letters,
  digits and ``_ . -`` (other runs become ``_``); when the name has letters
  or digits outside ASCII, which the id cannot hold, a short hash of the
  whole name is appended (``DNN_HW2-1a2b3c4d``), so two names written only
  in, say, Cyrillic give two ids.
* **Which attempt counts** depends only on the instructor's disk, never on
  the timestamps inside an archive (the student sets those): the entry with
  the newest modification time on disk (to the second) wins; on a tie, the
  higher copy number (``name (2).zip`` over ``name (1).zip`` over
  ``name.zip``; ``-2`` likewise); then the name. Inside one archive, of two
  members with the same file name the shallowest path wins, then the first.

The grader also reads the folders nbgrader's exchange leaves (a class handed
out and collected on a JupyterHub): ``nbgrader collect`` writes
``submitted/<student>/<assignment>/`` (the notebooks and nbgrader's
``timestamp.txt``) in the course folder. :func:`detect_layout` tells the two
apart and refuses a folder that mixes them. In nbgrader's layout the student id
is the student's folder name, nbgrader collect has already kept each student's
latest submission, and the submission time is the one in ``timestamp.txt``
(written by ``nbgrader submit``, the time nbgrader itself uses for late work);
a student folder without the assignment (one who submitted only other
assignments) gets no row, as a student missing from an LMS download does not.

Everything it learns about a submission goes to ``collect_manifest.json`` in
the course folder, which the grader and the reports read.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import re
import shutil
import stat
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from nbgrader.apps.zipcollectapp import ZipCollectApp
from nbgrader.plugins import ExtractorPlugin, FileNameCollectorPlugin
from traitlets import Dict, Unicode

from .grading_settings import DATA_FILES, MAX_NOTEBOOK_BYTES

MAX_MEMBERS = 2000
MAX_TOTAL_BYTES = 400_000_000
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", ".git"}
MANIFEST = "collect_manifest.json"


@dataclass
class Candidate:
    """One archive or folder of the download, after extraction."""

    source: str  # its name in the download folder
    student_id: str
    student_name: str = ""
    timestamp: str = ""  # its modification time on the instructor's disk (UTC)
    files: dict = field(default_factory=dict)  # assignment file name -> extracted path
    flags: list = field(default_factory=list)


def sanitize_id(text: str) -> str:
    """A student id safe as a folder name: ASCII letters, digits, ``_ . -`` (see the module docstring).

    A name with letters or digits outside ASCII gets a hash of the whole name
    appended, so that two such names cannot become one id.
    """
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._-")
    if any(ch.isalnum() and not ch.isascii() for ch in text):
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        return f"{cleaned or 'unnamed'}-{digest}"
    return cleaned or "unnamed"


COPY_SUFFIX = re.compile(r"(?:\s*\((\d+)\)|-(\d+))$")


def copy_number(stem: str) -> int:
    """The copy number of a download name: ``x (2)`` and ``x-2`` are 2, ``x`` is 0."""
    match = COPY_SUFFIX.search(stem)
    return int(match.group(1) or match.group(2)) if match else 0


ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".rar", ".7z", ".zip", ".gz")


def entry_stem(name: str) -> str:
    """A download entry's name without its archive extension."""
    lower = name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def identify(stem: str, pattern: re.Pattern) -> tuple[str, str, list[str]]:
    """``(student_id, name, flags)`` from an archive stem or folder name."""
    match = pattern.match(stem)
    if match and match.groupdict().get("student_id"):
        return sanitize_id(match["student_id"]), match.groupdict().get("name") or "", []
    return sanitize_id(stem), "", [f"name does not match the pattern: {stem!r}"]


def _member_is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _keep_name(name: str) -> bool:
    return name.endswith(".ipynb") or name in DATA_FILES


def _cap_for(name: str) -> int:
    return DATA_FILES.get(name, MAX_NOTEBOOK_BYTES)


def _safe_parts(member: str) -> PurePosixPath | None:
    """The member path if it stays inside the archive, else None."""
    name = member.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in path.parts:
        return None
    return path


def extract_zip(archive: Path, destination: Path) -> list[str]:
    """Unpack the kept files of ``archive`` flat into ``destination``; return flags.

    When two kept members have the same file name (nested copies), the
    shallowest path wins, then the first (never the member's date).
    """
    flags: list[str] = []
    destination.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(archive)
    except Exception as error:  # noqa: BLE001 - BadZipFile, OSError, NotImplementedError, ValueError, ...
        return [f"unreadable archive: {_why(error)}"]
    with zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            return [f"archive has {len(members)} members (more than {MAX_MEMBERS}); not graded"]
        if sum(m.file_size for m in members) > MAX_TOTAL_BYTES:
            return [f"archive unpacks to more than {MAX_TOTAL_BYTES // 1_000_000} MB; not graded"]
        chosen: dict[str, zipfile.ZipInfo] = {}
        dropped = 0
        for info in members:
            if info.is_dir():
                continue
            path = _safe_parts(info.filename)
            if path is None or _member_is_link(info):
                flags.append(f"refused unsafe path in archive: {info.filename!r}")
                continue
            if IGNORED_PARTS & set(path.parts) or path.name.startswith("._"):
                continue
            if not _keep_name(path.name):
                dropped += 1
                continue
            if info.file_size > _cap_for(path.name):
                flags.append(f"{path.name} larger than {_cap_for(path.name)} bytes; dropped")
                continue
            previous = chosen.get(path.name)
            # never by the member's date: the student sets it
            if previous is None or len(path.parts) < len(PurePosixPath(previous.filename).parts):
                chosen[path.name] = info
        if dropped:
            flags.append(f"dropped {dropped} other file(s)")
        for name, info in sorted(chosen.items()):
            target = destination / name
            try:
                with zf.open(info) as src, open(target, "wb") as dst:
                    copied = _copy_limited(src, dst, _cap_for(name))
            except Exception as error:  # noqa: BLE001 - bad CRC, lying size, encrypted, unsupported compression
                target.unlink(missing_ok=True)
                flags.append(f"{info.filename!r} could not be unpacked ({_why(error)}); not graded")
                continue
            if not copied:
                target.unlink()
                flags.append(f"{name} larger than its cap; dropped")
    return flags


def _why(error: BaseException) -> str:
    """A one-line reason for a flag."""
    text = str(error).splitlines()[0][:160] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _copy_limited(src, dst, cap: int) -> bool:
    """Copy at most ``cap`` bytes; False if there was more (a lying zip header)."""
    total = 0
    while chunk := src.read(1 << 20):
        total += len(chunk)
        if total > cap:
            return False
        dst.write(chunk)
    return True


def copy_folder(folder: Path, destination: Path, expected: frozenset[str] = frozenset()) -> list[str]:
    """Copy the kept files of a submitted folder flat into ``destination``; return flags.

    Files named in ``expected`` (at the top of ``folder``) are left without a flag:
    nbgrader's own ``timestamp.txt`` in its exchange layout.
    """
    flags: list[str] = []
    destination.mkdir(parents=True, exist_ok=True)
    chosen: dict[str, Path] = {}
    dropped = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_symlink():
            flags.append(f"refused link: {rel}")
            continue
        if not path.is_file() or IGNORED_PARTS & set(rel.parts) or path.name.startswith("._"):
            continue
        if not _keep_name(path.name):
            dropped += str(rel) not in expected
            continue
        if path.stat().st_size > _cap_for(path.name):
            flags.append(f"{path.name} larger than {_cap_for(path.name)} bytes; dropped")
            continue
        previous = chosen.get(path.name)
        if previous is None or len(rel.parts) < len(previous.relative_to(folder).parts):
            chosen[path.name] = path
    if dropped:
        flags.append(f"dropped {dropped} other file(s)")
    for name, path in sorted(chosen.items()):
        shutil.copy2(path, destination / name)
    return flags


def notebook_grade_ids(path: Path) -> set[str]:
    """The nbgrader cell ids in a notebook file (empty if unreadable)."""
    try:
        nb = json.loads(path.read_bytes().decode("utf-8", errors="replace"))
        cells = nb.get("cells") or [c for ws in nb.get("worksheets", []) for c in ws.get("cells", [])]
        ids = set()
        for cell in cells:
            meta = cell.get("metadata") if isinstance(cell, dict) else None
            nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
            gid = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
            if isinstance(gid, str):
                ids.add(gid)
        return ids
    except Exception:  # noqa: BLE001 - invalid or too deeply nested JSON, wrong types: no ids
        return set()


def assign_notebooks(paths: list[Path], released: dict[str, set[str]]) -> tuple[dict[str, Path], list[str]]:
    """Map submitted notebooks to the assignment's notebook names.

    ``released`` maps each assignment notebook file name to its cell ids.
    Exact names first; then a renamed notebook by the cell ids it contains;
    then by a close file name. Returns ``({assignment name: path}, flags)``.
    """
    flags: list[str] = []
    mapping: dict[str, Path] = {}
    rest = []
    for path in sorted(paths):
        if path.name in released:
            mapping[path.name] = path
        else:
            rest.append(path)
    for path in rest:
        open_names = [n for n in released if n not in mapping]
        ids = notebook_grade_ids(path)
        best = max(open_names, key=lambda n: (len(ids & released[n]), n), default=None)
        if best is not None and ids & released[best]:
            target = best
        else:
            close = difflib.get_close_matches(path.name, open_names, n=1, cutoff=0.6)
            target = close[0] if close else None
        if target is None:
            flags.append(f"unrecognised notebook {path.name!r} ignored")
            continue
        mapping[target] = path
        flags.append(f"notebook {path.name!r} graded as {target!r}")
    return mapping, flags


def _timestamp(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


ENTRY_INFO = ".entry.json"


def unpack_entry(entry: Path, target: Path, expected: frozenset[str] = frozenset()) -> list[str]:
    """Unpack one entry of the download into ``target``; flags. Never raises for a bad entry.

    ``expected``: file names a folder may hold without a flag (see :func:`copy_folder`).
    """
    target.mkdir(parents=True, exist_ok=True)
    try:
        if entry.is_symlink():
            return ["a link, not a zip file or folder; not graded"]
        if entry.is_file() and entry.suffix.lower() == ".zip":
            return extract_zip(entry, target)
        if entry.is_dir():
            return copy_folder(entry, target, expected)
        kind = entry.name[len(entry_stem(entry.name)) :] or "a file without extension"
        return [f"not a zip file or folder ({kind}); not graded: ask for a .zip"]
    except Exception as error:  # noqa: BLE001 - one bad entry costs that entry only, never the class
        return [f"could not be unpacked ({_why(error)}); not graded"]


LMS, NBGRADER = "lms", "nbgrader"
NBGRADER_TIMESTAMP = "timestamp.txt"  # written by `nbgrader submit`, copied by `nbgrader collect`
NBGRADER_OWN_FILES = frozenset({NBGRADER_TIMESTAMP, "submission_secret.txt"})  # no flag for these
NBGRADER_PATTERN = r"(?P<student_id>.+)"  # in nbgrader's layout the folder name is the student id


class LayoutError(ValueError):
    """The submissions folder is in neither layout, or mixes the two."""


@dataclass(frozen=True)
class Entry:
    """One submission to unpack: a zip file or folder of the download, or one student's nbgrader folder."""

    name: str  # the name the student id is read from
    path: Path  # the zip file or folder to unpack
    mtime: int  # its submission time, seconds since the epoch
    flags: tuple[str, ...] = ()
    expected: frozenset[str] = frozenset()  # files it may hold without a flag


@dataclass(frozen=True)
class Layout:
    """What :func:`detect_layout` found: which layout, where, and the submissions in it."""

    kind: str  # LMS or NBGRADER
    folder: Path  # the folder whose entries are the submissions
    assignment: str
    entries: tuple[Entry, ...]
    skipped: tuple[str, ...] = ()  # nbgrader: student folders without this assignment

    def describe(self) -> str:
        """One line for the run's output."""
        if self.kind == LMS:
            return (
                f"LMS download (zip files and folders, one per submission): "
                f"{len(self.entries)} entries in {self.folder}"
            )
        line = (
            f"nbgrader exchange (as nbgrader collect writes it): {self.folder}/<student>/"
            f"{self.assignment}/, {len(self.entries)} student(s)"
        )
        if self.skipped:
            line += (
                f"; {len(self.skipped)} student folder(s) without {self.assignment!r} skipped: "
                f"{', '.join(self.skipped[:5])}{' ...' if len(self.skipped) > 5 else ''}"
            )
        return line


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _holds_nbgrader_submission(path: Path) -> bool:
    """A folder as ``nbgrader collect`` leaves one per student: ``<assignment>/timestamp.txt`` inside."""
    if path.is_symlink() or not path.is_dir():
        return False
    return any(
        child.is_dir() and not child.is_symlink() and (child / NBGRADER_TIMESTAMP).is_file() for child in path.iterdir()
    )


def _submission_time(folder: Path) -> tuple[int, tuple[str, ...]]:
    """Seconds since the epoch from nbgrader's ``timestamp.txt`` in ``folder``, else the folder's time on disk."""
    from nbgrader.utils import parse_utc

    try:
        stamp = parse_utc((folder / NBGRADER_TIMESTAMP).read_text(encoding="utf-8", errors="replace").strip())
        return int(stamp.replace(tzinfo=dt.UTC).timestamp()), ()
    except (OSError, ValueError, TypeError, OverflowError):
        return int(folder.lstat().st_mtime), (
            f"no readable {NBGRADER_TIMESTAMP}; the folder's time on disk taken as the submission time",
        )


def _list(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names[:4]) + (" ..." if len(names) > 4 else "")


def detect_layout(submissions: Path, assignment: str) -> Layout:
    """Which layout ``submissions`` is in, and its entries; :class:`LayoutError` if mixed or empty.

    * an nbgrader course folder (it holds ``submitted/``): every folder of
      ``submitted/`` is a student (nbgrader's rule);
    * nbgrader's ``submitted/`` folder itself, or any folder whose every entry is
      a student folder as ``nbgrader collect`` writes it
      (``<student>/<assignment>/timestamp.txt``);
    * otherwise an LMS download: every entry (zip file or folder) is a submission.

    A folder with entries of both kinds, or a course folder with zip files
    beside ``submitted/``, is refused: which of them would count is a guess.
    """
    if not submissions.is_dir():
        raise LayoutError(f"submissions folder not found: {submissions}")
    submitted = submissions / "submitted"
    in_course = submitted.is_dir() and not submitted.is_symlink()
    if in_course:
        strays = [p.name for p in _visible(submissions) if p.is_file() and p.suffix.lower() == ".zip"]
        if strays:
            raise LayoutError(
                f"{submissions} is an nbgrader course folder (it holds submitted/) but also holds zip files "
                f"({_list(strays)}): grade either the course folder (nbgrader's exchange) or a folder holding "
                f"only the LMS download, not both at once"
            )
    folder = submitted if in_course else submissions
    entries = _visible(folder)
    if in_course:
        students = [p for p in entries if p.is_dir() and not p.is_symlink()]
    else:
        students = [p for p in entries if _holds_nbgrader_submission(p)]
    others = [p.name for p in entries if p not in students]
    if students and others:
        raise LayoutError(
            f"{folder} mixes nbgrader's layout (<student>/<assignment>/ as `nbgrader collect` writes it: "
            f"{_list([p.name for p in students])}) with other entries ({_list(others)}): "
            + (
                "submitted/ should hold only one folder per student"
                if in_course
                else "put the LMS download and nbgrader's submitted/ folder in separate folders and grade each"
            )
        )
    if not in_course and not students:
        return Layout(LMS, folder, assignment, tuple(Entry(p.name, p, int(p.lstat().st_mtime)) for p in entries))
    chosen = [p for p in students if (p / assignment).is_dir() and not (p / assignment).is_symlink()]
    if not chosen:
        found = sorted({c.name for p in students for c in p.iterdir() if c.is_dir()})
        raise LayoutError(
            f"no student in {folder} submitted {assignment!r}"
            + (
                f" (assignments found: {_list(found)}); pass --assignment"
                if found
                else " (it is empty): run `nbgrader collect " + assignment + "` in the course folder first"
            )
        )
    made = []
    for student in chosen:
        mtime, flags = _submission_time(student / assignment)
        made.append(Entry(student.name, student / assignment, mtime, flags, NBGRADER_OWN_FILES))
    return Layout(NBGRADER, folder, assignment, tuple(made), tuple(p.name for p in students if p not in chosen))


class SafeExtractorPlugin(ExtractorPlugin):
    """Unpacks the LMS download safely (see the module docstring)."""

    layout: Layout | None = None  # set by :func:`collect`: what to unpack

    def extract(self, archive_path: str, extracted_path: str) -> None:
        for entry in self.layout.entries:  # names starting with "." (.DS_Store and the like) are not entries
            target = Path(extracted_path) / entry.name
            flags = unpack_entry(entry.path, target, entry.expected)
            (target / ENTRY_INFO).write_text(json.dumps({"flags": list(entry.flags) + flags, "mtime": entry.mtime}))


class SubmissionCollectorPlugin(FileNameCollectorPlugin):
    """Maps extracted files to students; decides renamed notebooks and duplicates."""

    pattern = Unicode("", help="Regular expression of archive/folder names.").tag(config=True)
    released = Dict(help="Assignment notebook name -> list of its cell ids.").tag(config=True)
    manifest_path = Unicode("").tag(config=True)

    _plan: dict | None = None

    def _make_plan(self, extracted_root: Path) -> dict:
        pattern = re.compile(self.pattern)
        released = {name: set(ids) for name, ids in self.released.items()}
        candidates: list[Candidate] = []
        order: dict[str, tuple] = {}
        for folder in sorted(p for p in extracted_root.iterdir() if p.is_dir()):
            stem = entry_stem(folder.name)
            student_id, name, flags = identify(stem, pattern)
            mtime = 0
            try:
                info = json.loads((folder / ENTRY_INFO).read_text())
                flags += info["flags"]
                mtime = int(info["mtime"])
            except (OSError, ValueError, KeyError):
                pass
            files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
            notebooks, nb_flags = assign_notebooks([p for p in files if p.suffix == ".ipynb"], released)
            mapping = {name_: str(path) for name_, path in notebooks.items()}
            mapping.update({p.name: str(p) for p in files if p.name in DATA_FILES})
            candidates.append(Candidate(folder.name, student_id, name, _timestamp(mtime), mapping, flags + nb_flags))
            order[folder.name] = (mtime, copy_number(stem), folder.name)
        by_student: dict[str, list[Candidate]] = {}
        for cand in candidates:
            by_student.setdefault(cand.student_id, []).append(cand)
        plan = {}
        for student_id, group in sorted(by_student.items()):
            group.sort(key=lambda c: order[c.source])
            winner = group[-1]
            for older in group[:-1]:
                winner.flags.append(
                    f"duplicate submission {older.source!r} ignored; the latest "
                    f"({winner.source!r}, saved {winner.timestamp}) was graded"
                )
            plan[student_id] = winner
        if self.manifest_path:
            Path(self.manifest_path).write_text(
                json.dumps({sid: asdict(c) for sid, c in plan.items()}, indent=1, sort_keys=True)
            )
        return {path: (sid, name) for sid, cand in plan.items() for name, path in cand.files.items()}, plan

    def collect(self, submitted_file: str):
        if self._plan is None:
            root = Path(submitted_file)
            while root.name != "extracted":
                root = root.parent
            self._plan = self._make_plan(root)
        files, plan = self._plan
        hit = files.get(submitted_file)
        if hit is None:
            return None
        student_id, file_id = hit
        return {"student_id": student_id, "file_id": file_id, "timestamp": plan[student_id].timestamp}


def collect(
    submissions: Path, course_dir: Path, assignment: str, pattern: str, released: dict[str, set[str]], api
) -> dict[str, dict]:
    """Run nbgrader's zip_collect with our plugins; return the manifest.

    ``submissions`` is in either layout (:func:`detect_layout`; ``pattern`` is
    used for an LMS download's names). ``api`` is an ``NbGraderAPI`` for ``course_dir``; afterwards
    ``course_dir/submitted/<student>/<assignment>/`` holds each student's files.
    The manifest maps student id to :class:`Candidate` fields.
    """
    layout = detect_layout(submissions, assignment)
    for step in ("downloaded", "submitted"):
        shutil.rmtree(course_dir / step, ignore_errors=True)
    (course_dir / "downloaded" / assignment / "archive").mkdir(parents=True)
    manifest = course_dir / MANIFEST
    app = ZipCollectApp(coursedir=api.coursedir, parent=api)
    app.log.setLevel("ERROR")  # what it would warn about is in the manifest's flags
    app.coursedir.assignment_id = assignment
    app.extractor_plugin = SafeExtractorPlugin
    app.collector_plugin = SubmissionCollectorPlugin
    app.force = True
    app.init_plugins()
    app.extractor_plugin_inst.layout = layout
    app.collector_plugin_inst.pattern = pattern if layout.kind == LMS else NBGRADER_PATTERN
    app.collector_plugin_inst.released = {k: sorted(v) for k, v in released.items()}
    app.collector_plugin_inst.manifest_path = str(manifest)
    app.collector_plugin_inst.valid_ext = [".ipynb", ".json", ".npz"]
    app.extract_archive_files()
    app.process_extracted_files()
    if not manifest.exists():
        return {}
    data = json.loads(manifest.read_text())
    for student_id, _cand in data.items():
        # a student whose archive held nothing usable still gets a row (all zero)
        (course_dir / "submitted" / student_id / assignment).mkdir(parents=True, exist_ok=True)
    return data
