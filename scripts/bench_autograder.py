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
time x parallel jobs / submissions), and CPU seconds per submission three ways: the run's own
(every process it started, sandboxed kernels included, counted by a control group the run is put
in: needs root or a delegated cgroup v2 folder, else left out; other work on the machine does not
count), the machine's busy time (every process on the machine, so run it on an otherwise idle
machine), and this process's tree as ``getrusage`` sees it (the kernels reaped inside their sandbox's
PID namespace are missing from it).

``--against REV`` compares: the same class is graded by the grader of the git revision REV (checked
out into a temporary worktree, run with this interpreter and its installed packages, the course package
``dnn_course`` included, and measured by this checkout's benchmark script) and by this checkout, in turn, ``--repeat`` times, and one table prints both side by side with their ratio.
``--competing N`` keeps N CPU-bound processes running through the whole comparison (the busy
machine of a shared server); the machine's busy time then counts them too, so under competition
compare the wall times and the CPU time of each run's own process tree (``getrusage``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.grade import grade  # noqa: E402 - importable once the repository is on sys.path (above)
from autograder.grading_settings import GradingSettings, default_jobs  # noqa: E402 - importable once the repository is on sys.path (above)
from bench.harness import machine_busy_seconds, own_cgroup_cpu, timed  # noqa: E402 - importable once the repository is on sys.path (above)
from tests.autograder_corpus import students as st  # noqa: E402 - importable once the repository is on sys.path (above)

MISTAKES = [
    (st.NB1, "relu", "(self.out > 0)", "(self.out >= 0)"),
    (st.NB1, "tanh", "self.out = np.sign(z) * ((1 - e) / (1 + e))", "self.out = np.tanh(z)"),
    (st.NB2, "fc_layer", "self.dW += reg_lambda * self.W", "pass"),
    (st.NB3, "softmax", "np.log(y_hat + EPS)) / y.shape[0]", "np.log(y_hat + EPS))"),
    (st.NB4, "classifier_model", "np.vdot(layer.W, layer.W)", "np.linalg.norm(layer.W, 2)"),
]


def tree_cpu_seconds() -> float:
    """CPU seconds of this process and of every process it has waited for (and they for theirs).

    Each sandbox's first process waits for the ones inside it, so the kernels count once their
    sandbox has ended; a process still running is not counted.
    """
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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


#: What a comparison reports for each grader, per submission (the keys of a ``--save``d report).
COMPARED = {
    "seconds_per_submission": "wall seconds",
    "run_cpu_s_per_submission": "CPU s (the run's)",
    "machine_cpu_s_per_submission": "CPU s (machine busy)",
    "tree_cpu_s_per_submission": "CPU s (process tree)",
}
#: The label of this checkout's grader in a comparison.
THIS_CHECKOUT = "this checkout"


def run_saved(root: Path, students: int, jobs: int, save: Path) -> dict:
    """Run the benchmark of the checkout ``root`` in a process of its own; its ``--save``d report."""
    command = [sys.executable, str(root / "scripts" / "bench_autograder.py"), "--students", str(students)]
    command += ["--jobs", str(jobs), "--save", str(save)]
    subprocess.run(command, cwd=root, check=True, stdout=subprocess.DEVNULL)
    return json.loads(save.read_text())


def compare(revision: str, students: int, jobs: int, repeat: int, competing: int) -> dict:
    """Grade the same generated class with ``revision``'s grader and with this checkout's, in turn."""
    from bench.harness import competing_processes

    scratch = Path(tempfile.mkdtemp(prefix="bench-against-"))
    worktree = scratch / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(worktree), revision], cwd=REPO, check=True)
    for measuring in (Path("scripts") / "bench_autograder.py", Path("bench") / "harness.py"):  # measured alike
        shutil.copyfile(REPO / measuring, worktree / measuring)
    # the sandboxed kernels import the installed course package (this checkout's): so does REV's grader
    shutil.rmtree(worktree / "dnn_course")
    differs = subprocess.run(["git", "diff", "--quiet", revision, "--", "dnn_course"], cwd=REPO, check=False)
    if differs.returncode:
        print(f"note: dnn_course differs between {revision} and this checkout; both grade with this checkout's")
    runs: dict[str, list[dict]] = {revision: [], THIS_CHECKOUT: []}
    try:
        with competing_processes(competing):
            for index in range(repeat):
                for label, root in ((revision, worktree), (THIS_CHECKOUT, REPO)):
                    runs[label].append(run_saved(root, students, jobs, scratch / f"{index}-{root.name}.json"))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    return {"students": students, "jobs": jobs, "competing": competing, "repeat": repeat, "runs": runs}


def mean_ratio(comparison: dict, key: str) -> float:
    """This checkout's mean of ``key`` over the baseline's (below 1: this checkout needs less)."""
    (old, new) = comparison["runs"].values()
    return (sum(r[key] for r in new) / len(new)) / (sum(r[key] for r in old) / len(old))


def comparison_table(comparison: dict) -> list[str]:
    """The comparison's lines: each figure per submission, each grader's runs, the ratio of the means."""
    revision = next(iter(comparison["runs"]))
    old, new = comparison["runs"][revision], comparison["runs"][THIS_CHECKOUT]
    lines = [
        f"{comparison['students']} generated submissions, {comparison['jobs']} jobs, "
        f"{comparison['competing']} competing processes, {comparison['repeat']} runs each (in turn)",
        f"{'per submission':22} {revision[:12]:>20} {THIS_CHECKOUT:>20} {'ratio':>6}",
    ]
    for key, name in COMPARED.items():
        if any(r.get(key) is None for r in old + new):
            continue  # not measured on this machine (no control group of its own)
        before = " ".join(f"{r[key]:6.2f}" for r in old)
        after = " ".join(f"{r[key]:6.2f}" for r in new)
        lines.append(f"{name:22} {before:>20} {after:>20} {mean_ratio(comparison, key):6.2f}")
    loads = [r["machine"]["load_start"] for runs in comparison["runs"].values() for r in runs]
    lines.append(
        f"load average at the start of the runs: {min(loads):.1f} to {max(loads):.1f} on {os.cpu_count()} cores"
    )
    return lines


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
    parser.add_argument("--against", metavar="REV", help="compare with the grader of this git revision")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each grader with --against (default 2)")
    parser.add_argument("--competing", type=int, default=0, help="CPU-bound processes running with --against")
    args = parser.parse_args()
    if args.against:
        comparison = compare(args.against, args.students, args.jobs, args.repeat, args.competing)
        print("\n".join(comparison_table(comparison)))
        if args.save:
            args.save.write_text(json.dumps(comparison, indent=1) + "\n", encoding="utf-8")
            print(f"saved: {args.save}")
        return 0
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
        machine_before, tree_before = machine_busy_seconds(), tree_cpu_seconds()
        with own_cgroup_cpu() as group_cpu:
            group_before = group_cpu()
            summary, timing = timed(lambda: grade(submissions, out, settings, progress=True))
            group_after = group_cpu()
        machine_cpu = machine_busy_seconds() - machine_before
        tree_cpu = tree_cpu_seconds() - tree_before
        run_cpu = None if group_after is None else group_after - group_before
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
    if run_cpu is not None:
        print(f"CPU seconds per submission (every process of the run, its control group): {run_cpu / count:.2f}")
    print(f"CPU seconds per submission (the whole machine's busy time, /proc/stat): {machine_cpu / count:.2f}")
    print(f"CPU seconds per submission (this process and every process it waited for): {tree_cpu / count:.2f}")
    print(f"load average at the start: {load_start:.1f}, at the end: {load_end:.1f}")
    if summary.failed:
        print(f"not graded: {len(summary.failed)}")
    if args.save:
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
            "tree_cpu_s_per_submission": round(tree_cpu / count, 2),
            "run_cpu_s_per_submission": None if run_cpu is None else round(run_cpu / count, 2),
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
