"""Where one submission's grading time goes: CPU seconds per phase, host and sandboxed processes.

    python scripts/profile_grading.py                 # one generated submission (as the benchmark's)
    python scripts/profile_grading.py --keep OUT      # also keep the profiles (host.prof, job.prof)
    python scripts/profile_grading.py --phases-only   # no cProfile in the job (it slows Python code down)

Grades one submission of ``scripts/bench_autograder.py``'s generated class (all six notebooks,
05/06 without their results files) with one job and prints a table: phase, CPU seconds, share.
It reads nothing but the course's own notebooks and writes only to a temporary folder
(or ``--keep``).

How it counts: the grading run's host process and the forked job are profiled with cProfile on
CPU time (``time.process_time``); the job's phases are marked by wrapping the functions that
start them (kernel start-up, each cell, the probe's after-cell check, the cross-check, the
experiments' forward passes, nbgrader's feedback). A sampling thread in the job reads every
0.1 s the CPU time of the job's main thread, of its other threads (the memory watchdog) and of every process carrying the submission's sandbox
marker (``/proc/<pid>/stat``; the sandboxed kernels are reaped inside their PID namespace, so
``getrusage(RUSAGE_CHILDREN)`` never sees them) and charges the increase to the phase then
running. A process that ends between two samples loses at most its last 0.1 s.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nbgrader.apps.api import NbGraderAPI  # noqa: E402 - importable once the repository is on sys.path (above)

from autograder import (  # noqa: E402 - importable once the repository is on sys.path (above)
    collect,
    crosscheck,
    job,
    kernel,
    report,
    sandbox,
    similarity_report,
    tamper_probe,
)
from autograder import grade as grade_mod  # noqa: E402 - importable once the repository is on sys.path (above)
from autograder.grading_settings import GradingSettings  # noqa: E402 - importable once the repository is on sys.path (above)
from scripts.bench_autograder import make_class  # noqa: E402 - importable once the repository is on sys.path (above)

TICK = 0.1
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
PHASE = ["job: prepare, nbgrader set-up, gradebook"]  # the phase running now (one job, one thread at a time)
WATCHDOG = "job: memory watchdog thread (and any other thread)"


class Sampler(threading.Thread):
    """Charges the CPU time of the job and of its marked processes to the phase running at each tick."""

    def __init__(self, marker: str):
        super().__init__(daemon=True)
        self.needle = f"{sandbox.MARKER_VARIABLE}={marker}".encode()
        self.marked: dict[int, bool] = {}
        self.seen: dict[int, float] = {}  # pid -> its CPU seconds at the last tick
        self.kind: dict[int, str] = {}
        self.by_phase: dict[str, float] = {}
        self.by_kind: dict[str, float] = {}
        self.stop = threading.Event()
        self.own = 0.0

    def _children(self) -> float:
        total = 0.0
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            try:
                if pid not in self.marked:
                    self.marked[pid] = self.needle in Path(f"/proc/{pid}/environ").read_bytes()
                    if self.marked[pid]:
                        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                        parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
                        parent_name = Path(f"/proc/{parent}/comm").read_text().strip()
                        self.kind[pid] = (
                            "fork server"  # process 1 of the sandbox; its kernels have its command line
                            if "FRESH_KERNEL_PID" in cmd and parent_name == "bwrap"
                            else "kernel"
                            if "ipykernel" in cmd
                            else "cross-check"
                            if "crosscheck" in cmd
                            else "sandbox (bwrap)"
                        )
                if not self.marked[pid]:
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICK
            except OSError:
                continue
            grew = cpu - self.seen.get(pid, 0.0)
            self.seen[pid] = cpu
            self.by_kind[self.kind[pid]] = self.by_kind.get(self.kind[pid], 0.0) + grew
            total += grew
        return total

    def _job_threads(self) -> tuple[float, float]:
        """CPU seconds of the job's main thread, and of its other threads but this one (the memory watchdog)."""
        main = other = 0.0
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            if int(tid) == self.native_id:
                continue
            try:
                fields = Path(f"/proc/{self.pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICK
            main, other = (main + cpu, other) if int(tid) == self.pid else (main, other + cpu)
        return main, other

    def _charge(self, phase: str, seconds: float) -> None:
        self.by_phase[phase] = self.by_phase.get(phase, 0.0) + seconds

    def run(self) -> None:
        self.pid = os.getpid()
        last_main, last_other = self._job_threads()
        while not self.stop.wait(TICK):
            start = time.thread_time()
            phase = PHASE[0]
            grew = self._children()
            main, other = self._job_threads()
            self.own += time.thread_time() - start
            self._charge(phase, grew + main - last_main)
            self._charge(WATCHDOG, other - last_other)
            self.by_kind["job process"] = self.by_kind.get("job process", 0.0) + main - last_main + other - last_other
            last_main, last_other = main, other


def in_phase(name: str, function):
    """``function`` with the job's phase set to ``name`` while it runs (sync or async)."""
    import inspect

    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def wrapped(*args, **kwargs):
            previous, PHASE[0] = PHASE[0], name
            try:
                return await function(*args, **kwargs)
            finally:
                PHASE[0] = previous

        return wrapped

    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        previous, PHASE[0] = PHASE[0], name
        try:
            return function(*args, **kwargs)
        finally:
            PHASE[0] = previous

    return wrapped


def instrument_job(with_cprofile: bool) -> None:
    """Wrap the job's phases (in the parent, before the fork: the child inherits them)."""
    original_cell = kernel.SandboxExecute.async_execute_cell

    async def execute_cell(self, cell, cell_index, *args, **kwargs):
        name = (
            "kernel: probe's after-cell check"
            if tamper_probe.is_check(cell.source)
            else "kernel: probe's snapshot"
            if tamper_probe.is_probe(cell.source)
            else "kernel: the notebook's cells"
        )
        previous, PHASE[0] = PHASE[0], name
        try:
            return await original_cell(self, cell, cell_index, *args, **kwargs)
        finally:
            PHASE[0] = previous

    kernel.SandboxExecute.async_execute_cell = execute_cell
    kernel.SandboxExecute.execute_cell = kernel.run_sync(execute_cell)  # nbconvert calls the sync name
    kernel.SandboxExecute.async_start_new_kernel_client = in_phase(
        "kernel start-up", kernel.SandboxExecute.async_start_new_kernel_client
    )
    kernel.SandboxExecute.start_new_kernel_client = kernel.run_sync(kernel.SandboxExecute.async_start_new_kernel_client)
    NbGraderAPI.autograde = in_phase("nbgrader autograde (converters, gradebook)", NbGraderAPI.autograde)
    NbGraderAPI.generate_feedback = in_phase("nbgrader generate_feedback", NbGraderAPI.generate_feedback)
    job.prepare = in_phase("job: rebuild notebooks, insert probes", job.prepare)
    job.measure_experiments = in_phase("job: the grader's forward passes (05, 06)", job.measure_experiments)
    crosscheck.crosscheck = in_phase("cross-check process", crosscheck.crosscheck)
    original_run = grade_mod.job_module.run

    def run(jobdir: Path):
        # the job is forked while the host's cProfile runs, and a fork keeps the profiler's hook: remove it
        # here, or every phase of the job would be counted with cProfile's overhead (about 2.5 times)
        sys.setprofile(None)
        marker = json.loads((jobdir / "job.json").read_text())["token"]
        sampler = Sampler(marker)
        sampler.start()
        profile = cProfile.Profile(time.process_time)
        try:
            return profile.runcall(original_run, jobdir) if with_cprofile else original_run(jobdir)
        finally:
            sampler.stop.set()
            sampler.join()
            profile.dump_stats(jobdir / "job.prof")  # empty without cProfile
            (jobdir / "phases.json").write_text(
                json.dumps({"by_phase": sampler.by_phase, "by_kind": sampler.by_kind, "sampler_own": sampler.own})
            )
            shutil.copy(jobdir / "phases.json", os.environ["PROFILE_GRADING_OUT"] + "/phases.json")
            shutil.copy(jobdir / "job.prof", os.environ["PROFILE_GRADING_OUT"] + "/job.prof")

    grade_mod.job_module.run = run


HOST_PHASES = [  # (label, function in the host process): its cumulative CPU time
    ("host: assignment set-up (nbgrader generate_assignment)", grade_mod.prepare_master),
    ("host: collect (zip_collect)", collect.collect),
    ("host: merge into the gradebook", grade_mod.merge_student),
    ("host: feedback pages published", grade_mod.publish_feedback),
    ("host: grades.csv and class report", report.write_all),
    ("host: similarity", similarity_report.write),
    ("host: hand-graded list", grade_mod.manual.write_manual_list),
]
if hasattr(grade_mod, "feedback_exporter"):  # a grader before the warm-up (an older checkout) has none
    HOST_PHASES.append(
        ("host: feedback templates compiled, course cells highlighted", grade_mod.feedback_exporter.warm)
    )


def _mean(runs: list[dict], field: str, key: str) -> float:
    """The mean of ``run[field][key]`` over ``runs`` (0 where a run has no such key)."""
    return sum(run[field].get(key, 0.0) for run in runs) / len(runs)


def comparison_rows(saved: dict) -> list[str]:
    """The Markdown rows comparing the per-submission phases of ``saved`` (``bench/results/grading_phases.json``:
    ``before`` and ``after``, each a list of ``--save``d runs): the mean CPU seconds of each phase in
    the grading job and its sandboxed processes, before and after, and the total per submission."""

    def mean(runs: list[dict], label: str) -> float:
        return _mean(runs, "cpu_s", label)

    before, after = saved["before"], saved["after"]
    labels = list(
        dict.fromkeys(label for run in before + after for label in run["cpu_s"] if not label.startswith("host:"))
    )
    labels.sort(key=lambda label: -mean(before, label))
    rows = [f"| {label} | {mean(before, label):.1f} | {mean(after, label):.1f} |" for label in labels]
    totals = [sum(mean(runs, label) for label in labels) for runs in (before, after)]
    rows.append(f"| **total per submission** | **{totals[0]:.1f}** | **{totals[1]:.1f}** |")
    return rows


def process_rows(saved: dict) -> list[str]:
    """The Markdown rows of the same runs' CPU seconds by process (the job, the kernels, the fork server, ...)."""

    def mean(runs: list[dict], kind: str) -> float:
        return _mean(runs, "by_process", kind)

    before, after = saved["before"], saved["after"]
    kinds = sorted({kind for run in before + after for kind in run["by_process"]}, key=lambda k: -mean(before, k))
    return [f"| {kind} | {mean(before, kind):.1f} | {mean(after, kind):.1f} |" for kind in kinds]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="folder for the profiles and the grading output")
    parser.add_argument(
        "--phases-only",
        action="store_true",
        help="no cProfile in the job: its CPU time per phase as without the profiler",
    )
    parser.add_argument("--save", type=Path, help="write the table (and the machine's load) to this JSON file")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="profile-grading-"))
    out = args.keep or scratch
    out.mkdir(parents=True, exist_ok=True)
    os.environ["PROFILE_GRADING_OUT"] = str(out)
    try:
        submissions = scratch / "submissions"
        submissions.mkdir()
        make_class(submissions, 1)
        instrument_job(with_cprofile=not args.phases_only)
        settings = replace(GradingSettings(), jobs=1)
        host = cProfile.Profile(time.process_time)
        wall = time.perf_counter()
        load = os.getloadavg()
        host.runcall(grade_mod.grade, submissions, out / "graded", settings, progress=False)
        wall = time.perf_counter() - wall
        host.dump_stats(out / "host.prof")
        phases = json.loads((out / "phases.json").read_text())
        host_stats = pstats.Stats(str(out / "host.prof"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = dict(phases["by_phase"])
    stats = host_stats.stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    host_total = sum(tt for (_, _, tt, _, _) in stats.values())
    counted = 0.0
    for label, function in HOST_PHASES:
        code = function.__code__
        key = (code.co_filename, code.co_firstlineno, code.co_name)
        if key in stats:
            rows[label] = stats[key][3]
            counted += stats[key][3]
    rows["host: the rest (imports, waiting, reports)"] = host_total - counted
    total = sum(rows.values())
    print(
        f"one submission, 1 job, wall {wall:.1f} s; load average at the start {load[0]:.1f} {load[1]:.1f} "
        f"{load[2]:.1f} on {os.cpu_count()} cores"
    )
    print(f"{'phase':62s} {'CPU s':>7s} {'share':>6s}")
    for label, seconds in sorted(rows.items(), key=lambda item: -item[1]):
        print(f"{label:62s} {seconds:7.2f} {100 * seconds / total:5.1f}%")
    print(f"{'total':62s} {total:7.2f}")
    print("by process: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(phases["by_kind"].items())))
    print(f"the sampler's own CPU (left out): {phases['sampler_own']:.2f} s")
    if args.save:
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        record = {
            "revision": revision.stdout.strip(),
            "phases_only": args.phases_only,
            "wall_s": round(wall, 1),
            "load_start": [round(value, 2) for value in load],
            "cpus": os.cpu_count(),
            "cpu_s": {label: round(seconds, 2) for label, seconds in rows.items()},
            "by_process": {kind: round(seconds, 2) for kind, seconds in phases["by_kind"].items()},
        }
        args.save.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"saved: {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
