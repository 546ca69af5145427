"""Benchmark of the autograder: grade a generated class and print seconds per submission.

    python scripts/bench_autograder.py                  # 100 students, CPUs + 1 at once
    python scripts/bench_autograder.py --students 20 --jobs 4 --out bench-results/run1

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
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.grade import grade  # noqa: E402
from autograder.grading_config import GradingSettings, default_jobs  # noqa: E402
from tests.autograder_corpus import students as st  # noqa: E402

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
        st.write_zip(folder, f"DNN_HW2_Student_{5000 + index}",
                     {name: st.dumps(nb) for name, nb in notebooks.items()})


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (Linux ``/proc/stat``), over all cores.

    The grader's own CPU time cannot be read from ``getrusage``: the sandboxed
    kernels are reaped inside their PID namespaces, so their time never reaches
    this process's children. The machine's busy time includes them; on an
    otherwise idle machine it is the grading run's CPU time.
    """
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user..steal; guest is already in user


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=default_jobs(),
                        help="submissions graded at once (default: the grader's, CPUs + 1 = %(default)s)")
    parser.add_argument("--out", type=Path, help="output folder (default: a temporary one, removed)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-autograder-"))
    try:
        submissions = scratch / "submissions"
        submissions.mkdir()
        make_class(submissions, args.students)
        out = args.out or scratch / "out"
        settings = replace(GradingSettings(), jobs=args.jobs)
        start = time.perf_counter()
        machine_before = machine_busy_seconds()
        summary = grade(submissions, out, settings, progress=True)
        wall = time.perf_counter() - start
        machine_cpu = machine_busy_seconds() - machine_before
    finally:
        if args.out is None:
            shutil.rmtree(scratch, ignore_errors=True)
    cores = min(args.jobs, os.cpu_count() or 1)
    print(f"isolation: {summary.isolation}")
    print(f"{args.students} submissions (6 notebooks each) in {wall:.1f} s with {args.jobs} jobs "
          f"on {os.cpu_count()} cores")
    print(f"seconds per submission: {wall / args.students:.2f}")
    print(f"core-seconds per submission: {wall * cores / args.students:.2f}")
    print(f"CPU seconds per submission (the whole machine's busy time, /proc/stat): "
          f"{machine_cpu / args.students:.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if summary.failed:
        print(f"not graded: {len(summary.failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
