"""Generate the student notebooks (exercises/) from the instructor's (solutions/) with nbgrader.

    python scripts/generate_exercises.py          # rewrite exercises/dnn_hw
    python scripts/generate_exercises.py --check  # exit 1 if exercises/ differs from what nbgrader makes

Runs `nbgrader generate_assignment` with the course configuration
(autograder/nbgrader_config.py) on a clean copy of the solution notebooks, so
stray files next to them (results of a local run) never reach students, and adds
the students' nbgrader_config.py (dnn_course.check.write_student_config).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dnn_course.assignment import ASSIGNMENT as COURSE
from dnn_course.check import write_student_config
from dnn_course.reference import solutions_dir

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = solutions_dir()
ASSIGNMENT = COURSE.name
EXERCISES = REPO_ROOT / "exercises" / ASSIGNMENT
CONFIG_DIR = REPO_ROOT / "autograder"


def generate(course_root: Path) -> Path:
    """Run nbgrader on a copy of the solution notebooks under ``course_root``; return the release folder."""
    source = course_root / "solutions" / ASSIGNMENT
    source.mkdir(parents=True)
    for notebook in sorted(SOLUTIONS.glob("*.ipynb")):
        shutil.copy2(notebook, source / notebook.name)
    command = [
        sys.executable,
        "-m",
        "nbgrader",
        "generate_assignment",
        ASSIGNMENT,
        "--no-db",
        "--force",
        f"--CourseDirectory.root={course_root}",
        "--log-level=WARN",
    ]
    # nbgrader reads nbgrader_config.py from the working directory: the course configuration.
    result = subprocess.run(command, cwd=CONFIG_DIR, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"nbgrader generate_assignment failed:\n{result.stdout}\n{result.stderr}")
    # the students' settings for `nbgrader validate` in their folder (grading mode for 05/06, the cell timeout)
    write_student_config(course_root / "exercises" / ASSIGNMENT)
    return course_root / "exercises" / ASSIGNMENT


def differences(generated: Path, committed: Path) -> list[str]:
    """Names of files that differ between two folders (missing on either side included)."""
    names = sorted({p.name for p in generated.iterdir()} | {p.name for p in committed.glob("*")})
    return [
        name
        for name in names
        if not (generated / name).exists()
        or not (committed / name).exists()
        or not filecmp.cmp(generated / name, committed / name, shallow=False)
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare with the committed exercises/")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temporary:
        generated = generate(Path(temporary))
        if args.check:
            stale = differences(generated, EXERCISES) if EXERCISES.exists() else ["(exercises/ is missing)"]
            if stale:
                print(
                    "exercises/ is out of date with solutions/ for: "
                    + ", ".join(stale)
                    + ". Run `make regenerate-exercises` (never edit exercises/ by hand)."
                )
                return 1
            print(f"exercises/{ASSIGNMENT} matches what nbgrader generates from solutions/{ASSIGNMENT}.")
            return 0
        if EXERCISES.exists():
            shutil.rmtree(EXERCISES)
        shutil.copytree(generated, EXERCISES)
    print(f"Generated {len(list(EXERCISES.glob('*.ipynb')))} notebooks in {EXERCISES.relative_to(REPO_ROOT)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
