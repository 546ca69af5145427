"""Pin the students' environment: the part of requirements.txt that the students' kit installs.

    python scripts/students_requirements.py           # rewrite requirements-students.txt
    python scripts/students_requirements.py --check   # exit 1 if it is not what it would write

Reads ``requirements-students.in`` (the students' top-level packages, names only), ``requirements.txt``
(the course's exact pins) and the metadata of the installed distributions (``importlib.metadata``:
each one's ``Requires-Dist``, its environment markers evaluated for this interpreter as pip evaluates
them, with the extras a requirement asks for). Writes ``requirements-students.txt``: every package
the students' list needs, directly or through other packages, pinned as requirements.txt pins it.
``make release`` copies that file into the kit as the kit's ``requirements.txt``.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
STUDENTS_IN = REPO / "requirements-students.in"
STUDENTS_TXT = REPO / "requirements-students.txt"
LOCK = REPO / "requirements.txt"
HEADER = (
    "# Exact pins of the students' environment: the exercise notebooks, JupyterLab and `make check`.\n"
    "# Generated in the course's repository by `make students-requirements`, from requirements-students.in\n"
    "# and requirements.txt (the same versions); do not edit.\n"
)
#: Packages `pip freeze` leaves out, so requirements.txt pins none of them: pip installs what it needs of them.
UNPINNED = {"pip", "setuptools", "wheel", "distribute"}


def read_names(path: Path) -> list[str]:
    """The package names of a top-level list, one per line (``#`` starts a comment), canonicalised."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(canonicalize_name(Requirement(line).name))
    return names


def read_pins(path: Path) -> dict[str, tuple[str, str]]:
    """``{canonical name: (name as written, version)}`` of a file of ``name==version`` lines."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name.strip())] = (name.strip(), version.strip())
    return pins


def closure(names: list[str], pins: dict[str, tuple[str, str]]) -> list[str]:
    """The canonical names of ``names`` and of everything they require, transitively, sorted.

    Each package's requirements are read from its installed metadata, which must be the pinned
    version; a requirement whose marker is false here (another platform or Python, an extra nobody
    asked for) is left out, and so are the packaging tools requirements.txt never pins (``UNPINNED``). Raises ``SystemExit`` naming a package that is not pinned or not installed
    at its pin.
    """
    extras: dict[str, set[str]] = {name: set() for name in names}
    pending = list(names)
    while pending:
        name = pending.pop()
        if name not in pins:
            raise SystemExit(f"{name} is needed by the students' environment but requirements.txt does not pin it")
        version = pins[name][1]
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            raise SystemExit(
                f"{name}: requirements.txt pins {version} but {installed or 'nothing'} is installed; "
                "run `make venv` first, then this script again"
            )
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            wanted = extras[name] or {""}
            if requirement.marker and not any(requirement.marker.evaluate({"extra": extra}) for extra in wanted):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency in UNPINNED:
                continue
            new_extras = {canonicalize_name(extra) for extra in requirement.extras}
            if dependency not in extras or not new_extras <= extras[dependency]:
                extras.setdefault(dependency, set()).update(new_extras)
                pending.append(dependency)
    return sorted(extras)


def render(in_file: Path = STUDENTS_IN, lock: Path = LOCK) -> str:
    """The text of requirements-students.txt for the students' list ``in_file`` and the pins of ``lock``."""
    pins = read_pins(lock)
    return HEADER + "".join(f"{pins[name][0]}=={pins[name][1]}\n" for name in closure(read_names(in_file), pins))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with requirements-students.txt, write nothing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not STUDENTS_TXT.exists() or STUDENTS_TXT.read_text(encoding="utf-8") != text:
            print(
                "requirements-students.txt is not the students' subset of requirements.txt: "
                "run `make students-requirements` and commit the result",
                file=sys.stderr,
            )
            return 1
        return 0
    STUDENTS_TXT.write_text(text, encoding="utf-8")
    print(f"wrote {STUDENTS_TXT.name} ({text.count('==')} pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
