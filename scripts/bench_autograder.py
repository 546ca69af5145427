"""Benchmark of the autograder: grade a generated class and print seconds per submission.

    python scripts/bench_autograder.py                  # 100 students, CPUs + 1 at once
    python scripts/bench_autograder.py --students 20 --jobs 4 --out bench-results/run1
    python scripts/bench_autograder.py --complete --jobs 3 --save bench/results/autograder.json

``--complete`` grades the rehearsal cohort instead (tests/rehearsal/cohort.py: every
student submits all six notebooks with the result files and saved networks of 05/06, run
in their smoke-test mode), so every submission is graded the whole way: the experiments'
saved networks measured on the 10,000 test images, the cross-check of 01-04. That is the
time an instructor sees per submission. ``--save`` writes the figures, the machine and its
load average to a JSON file (what the README and the instructor guide state).

The class is generated from the course's notebooks (see
tests/autograder_corpus/students.py): every student submits all six
notebooks; about two thirds are correct, the others have one or two common
mistakes, and a few leave a notebook blank. The experiment notebooks (05, 06)
are submitted without their results files, so they run in grading mode and
fail fast (no training happens while grading, by design).

Reported: wall time of the whole run (assignment set-up, collection, grading,
merge, reports), seconds per submission, core-seconds per submission (wall
time x parallel jobs / submissions; the issue's target is under 10), and the
machine's busy CPU time per submission (every process on the machine, so run it
on an otherwise idle machine; the sandboxed kernels' time cannot be counted
per process).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.grade import grade  # noqa: E402 - importable once the repository is on sys.path (above)
from autograder.grading_settings import GradingSettings, default_jobs  # noqa: E402 - importable once the repository is on sys.path (above)
from bench.harness import machine_busy_seconds, timed  # noqa: E402 - importable once the repository is on sys.path (above)
from tests.autograder_corpus import students as st  # noqa: E402 - importable once the repository is on sys.path (above)

MISTAKES = [
    (st.NB1, "relu", "(self.out > 0)", "(self.out >= 0)"),
    (st.NB1, "tanh", "self.out = np.sign(z) * ((1 - e) / (1 + e))", "self.out = np.tanh(z)"),
    (st.NB2, "fc_layer", "self.dW += reg_lambda * self.W", "pass"),
    (st.NB3, "softmax", "np.log(y_hat + EPS)) / y.shape[0]", "np.log(y_hat + EPS))"),
    (st.NB4, "classifier_model", "np.vdot(layer.W, layer.W)", "np.linalg.norm(layer.W, 2)"),
]


def make_class(folder: Path, count: int, seed: int = 0) -> None:
    """``count`` zip files ``DNN_HW2_Student_<id>.zip`` in ``folder``."""
    rng = random.Random(seed)
    release, source = REPO / "exercises" / st.ASSIGNMENT, REPO / "solutions" / st.ASSIGNMENT
    good = st.perfect(release, source)
    blank = st.released(release)
    for index in range(count):
        notebooks = dict(good)
        roll = rng.random()
        if roll > 0.66:
            for name, gid, old, new in rng.sample(MISTAKES, k=rng.choice([1, 2])):
                notebooks[name] = st.replace_in_answer(notebooks[name], gid, old, new)
        if roll > 0.9:
            name = rng.choice([st.NB2, st.NB3])
            notebooks[name] = blank[name]
        st.write_zip(folder, f"DNN_HW2_Student_{5000 + index}", {name: st.dumps(nb) for name, nb in notebooks.items()})


def stated_figures(report: dict) -> dict[str, str]:
    """The figures README and the instructor guide state, as they write them, from a ``--save``d report."""
    per = report["seconds_per_submission"]
    return {
        "submissions": str(report["submissions"]),
        "jobs": str(report["jobs"]),
        "wall": f"{report['wall_s']:.0f} s",
        "per_submission": f"{per:.0f} s",
        "load": f"load average {report['machine']['load_start']:.0f} at the start and "
        f"{report['machine']['load_end']:.0f} at the end",
        "class_of_100": f"{100 * per / 60:.0f} min",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument(
        "--jobs",
        type=int,
        default=default_jobs(),
        help="submissions graded at once (default: the grader's, CPUs + 1 = %(default)s)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: a temporary one, removed)")
    parser.add_argument(
        "--complete",
        action="store_true",
        help="grade the rehearsal cohort (complete submissions, 05/06 files included)",
    )
    parser.add_argument("--save", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-autograder-"))
    try:
        submissions = scratch / "submissions"
        submissions.mkdir()
        settings = replace(GradingSettings(), jobs=args.jobs)
        if args.complete:
            from tests.rehearsal import cohort

            submissions = cohort.build_cohort(
                scratch / "cohort", REPO / "exercises" / st.ASSIGNMENT, REPO / "solutions" / st.ASSIGNMENT
            )
            settings = replace(settings, experiment_profile="smoke")
        else:
            make_class(submissions, args.students)
        out = args.out or scratch / "out"
        machine_before = machine_busy_seconds()
        summary, timing = timed(lambda: grade(submissions, out, settings, progress=True))
        machine_cpu = machine_busy_seconds() - machine_before
        wall, load_start, load_end = timing.wall_s, timing.load_before, timing.load_after
    finally:
        if args.out is None:
            shutil.rmtree(scratch, ignore_errors=True)
    count = summary.graded
    cores = min(args.jobs, os.cpu_count() or 1)
    print(f"isolation: {summary.isolation}")
    print(f"{count} submissions (6 notebooks each) in {wall:.1f} s with {args.jobs} jobs on {os.cpu_count()} cores")
    print(f"seconds per submission: {wall / count:.2f}")
    print(f"core-seconds per submission: {wall * cores / count:.2f}")
    print(f"CPU seconds per submission (the whole machine's busy time, /proc/stat): {machine_cpu / count:.2f}")
    print(f"load average at the start: {load_start:.1f}, at the end: {load_end:.1f}")
    if summary.failed:
        print(f"not graded: {len(summary.failed)}")
    if args.save:
        import json
        import platform

        report = {
            "benchmark": "autograder",
            "class": "rehearsal cohort" if args.complete else "generated",
            "submissions": count,
            "jobs": args.jobs,
            "isolation": summary.isolation,
            "wall_s": round(wall, 1),
            "seconds_per_submission": round(wall / count, 2),
            "machine_cpu_s_per_submission": round(machine_cpu / count, 2),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "load_start": round(load_start, 2),
                "load_end": round(load_end, 2),
            },
            "failed": summary.failed,
        }
        args.save.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"saved: {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
