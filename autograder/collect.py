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
  one student the latest wins (newest notebook time, then name) and the
  others are reported.

Everything it learns about a submission goes to ``collect_manifest.json`` in
the course folder, which the grader and the reports read.
"""
from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
import shutil
import stat
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from nbgrader.apps.zipcollectapp import ZipCollectApp
from nbgrader.plugins import ExtractorPlugin, FileNameCollectorPlugin
from traitlets import Dict, Unicode

from .grading_config import DATA_FILES, MAX_NOTEBOOK_BYTES

MAX_MEMBERS = 2000
MAX_TOTAL_BYTES = 400_000_000
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", ".git"}
MANIFEST = "collect_manifest.json"


@dataclass
class Candidate:
    """One archive or folder of the download, after extraction."""

    source: str                      # its name in the download folder
    student_id: str
    student_name: str = ""
    timestamp: str = ""              # ISO time of its newest notebook
    files: dict = field(default_factory=dict)      # assignment file name -> extracted path
    flags: list = field(default_factory=list)


def sanitize_id(text: str) -> str:
    """A student id safe as a folder name: letters, digits, ``_ . -``."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")
    return cleaned or "unnamed"


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

    When two kept members have the same file name (nested copies), the newest
    wins, then the shallowest path.
    """
    flags: list[str] = []
    destination.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        return [f"unreadable archive: {error}"]
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
            key = (info.date_time, -len(path.parts))
            if previous is None or key > (previous.date_time, -len(PurePosixPath(previous.filename).parts)):
                chosen[path.name] = info
        if dropped:
            flags.append(f"dropped {dropped} other file(s)")
        for name, info in sorted(chosen.items()):
            target = destination / name
            with zf.open(info) as src, open(target, "wb") as dst:
                copied = _copy_limited(src, dst, _cap_for(name))
            if not copied:
                target.unlink()
                flags.append(f"{name} larger than its cap; dropped")
                continue
            stamp = dt.datetime(*info.date_time).timestamp()
            os.utime(target, (stamp, stamp))
    return flags


def _copy_limited(src, dst, cap: int) -> bool:
    """Copy at most ``cap`` bytes; False if there was more (a lying zip header)."""
    total = 0
    while chunk := src.read(1 << 20):
        total += len(chunk)
        if total > cap:
            return False
        dst.write(chunk)
    return True


def copy_folder(folder: Path, destination: Path) -> list[str]:
    """Copy the kept files of a submitted folder flat into ``destination``; return flags."""
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
            dropped += 1
            continue
        if path.stat().st_size > _cap_for(path.name):
            flags.append(f"{path.name} larger than {_cap_for(path.name)} bytes; dropped")
            continue
        previous = chosen.get(path.name)
        if previous is None or (path.stat().st_mtime, -len(rel.parts)) > (
                previous.stat().st_mtime, -len(previous.relative_to(folder).parts)):
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
        return {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in cells} - {None}
    except (ValueError, AttributeError, TypeError, OSError):
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


def _timestamp(paths: list[Path]) -> str:
    times = [p.stat().st_mtime for p in paths if p.suffix == ".ipynb"] or [0.0]
    return dt.datetime.fromtimestamp(max(times), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


class SafeExtractorPlugin(ExtractorPlugin):
    """Unpacks the LMS download safely (see the module docstring)."""

    submissions_dir = Unicode("", help="The instructor's download folder.").tag(config=True)

    def extract(self, archive_path: str, extracted_path: str) -> None:
        source = Path(self.submissions_dir)
        for entry in sorted(source.iterdir()):
            target = Path(extracted_path) / entry.name
            if entry.is_file() and entry.suffix.lower() == ".zip":
                flags = extract_zip(entry, target)
            elif entry.is_dir() and not entry.name.startswith("."):
                flags = copy_folder(entry, target)
            else:
                self.log.warning("Ignored (not a zip file or folder): %s", entry.name)
                continue
            (target / ".flags.json").write_text(json.dumps(flags))


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
        for folder in sorted(p for p in extracted_root.iterdir() if p.is_dir()):
            stem = folder.name[:-4] if folder.name.lower().endswith(".zip") else folder.name
            student_id, name, flags = identify(stem, pattern)
            flags += json.loads((folder / ".flags.json").read_text()) if (folder / ".flags.json").exists() else []
            files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
            notebooks, nb_flags = assign_notebooks([p for p in files if p.suffix == ".ipynb"], released)
            mapping = {name_: str(path) for name_, path in notebooks.items()}
            mapping.update({p.name: str(p) for p in files if p.name in DATA_FILES})
            candidates.append(Candidate(folder.name, student_id, name, _timestamp(files),
                                        mapping, flags + nb_flags))
        by_student: dict[str, list[Candidate]] = {}
        for cand in candidates:
            by_student.setdefault(cand.student_id, []).append(cand)
        plan = {}
        for student_id, group in sorted(by_student.items()):
            group.sort(key=lambda c: (c.timestamp, c.source))
            winner = group[-1]
            for older in group[:-1]:
                winner.flags.append(f"duplicate submission {older.source!r} ignored; the latest "
                                    f"({winner.source!r}, {winner.timestamp}) was graded")
            plan[student_id] = winner
        if self.manifest_path:
            Path(self.manifest_path).write_text(json.dumps(
                {sid: asdict(c) for sid, c in plan.items()}, indent=1, sort_keys=True))
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
        return {"student_id": student_id, "file_id": file_id,
                "timestamp": plan[student_id].timestamp}


def collect(submissions: Path, course_dir: Path, assignment: str, pattern: str,
            released: dict[str, set[str]], api) -> dict[str, dict]:
    """Run nbgrader's zip_collect with our plugins; return the manifest.

    ``api`` is an ``NbGraderAPI`` for ``course_dir``; afterwards
    ``course_dir/submitted/<student>/<assignment>/`` holds each student's files.
    The manifest maps student id to :class:`Candidate` fields.
    """
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
    app.extractor_plugin_inst.submissions_dir = str(submissions)
    app.collector_plugin_inst.pattern = pattern
    app.collector_plugin_inst.released = {k: sorted(v) for k, v in released.items()}
    app.collector_plugin_inst.manifest_path = str(manifest)
    app.collector_plugin_inst.valid_ext = [".ipynb", ".json", ".npz"]
    app.extract_archive_files()
    app.process_extracted_files()
    if not manifest.exists():
        return {}
    data = json.loads(manifest.read_text())
    for student_id, cand in data.items():
        # a student whose archive held nothing usable still gets a row (all zero)
        (course_dir / "submitted" / student_id / assignment).mkdir(parents=True, exist_ok=True)
    return data
