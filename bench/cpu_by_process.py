"""Where a grading run's CPU time goes, exactly, by kind of process: Linux's process accounting.

    python bench/cpu_by_process.py --per 12 --label NAME --save FILE -- python scripts/bench_autograder.py --students 12 --jobs 3

``--save`` adds the run to FILE under ``--label`` (:func:`mean_by_label` averages each label's runs).

Runs the command with process accounting on (``acct(2)``: needs root, CAP_SYS_PACCT). Linux then writes
one record for every process that ends, anywhere on the machine: its pid, its parent's pid, whether
it exec'd, and its CPU time in hundredths of a second. Processes in a PID namespace (the sandboxed
kernels) are recorded in the file of every namespace above theirs, so nothing the sandboxes run is
missed, unlike a sampler, which loses what a short process does between two samples. Run it on an
otherwise idle machine: every process that ends during the run is counted (the sum is printed next
to the command's own control group when the benchmark prints one).

Each record is put in one kind, by its place in the process tree (pids and parents as the
machine's outermost namespace sees them):

* **grading job**: a Python process that starts sandboxes (bubblewrap) and has no child that does; it
  grades one submission (nbgrader's converters and gradebook, the kernels' messages, the feedback pages);
* **the run's host**: a Python process whose children are grading jobs (a local run's own process:
  collection, the run's warm-ups, the gradebook merge, the feedback pages published, the class
  reports; on a Dask worker, its job launcher, :mod:`autograder.job_launcher`);
* **fork server**: any other exec'd Python process whose forked Python children are kernels (the
  kernels' imports, once per submission, and serving the kernels);
* **kernel N**: a kernel forked by a fork server, numbered in the order its server forked it (the
  submission's N-th notebook);
* **other Python**: any other Python process (the cross-check of 01-04, the font list, a Dask
  scheduler, worker or client);
* **sandbox and tools**: bubblewrap and every other program.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

#: ``struct acct_v3`` (linux/acct.h): 64 bytes, the fields read here.
RECORD = struct.Struct("<BBHIIIIIIfHHHHHHHH16s")
ACCT_VERSION = 3
AFORK = 0x01  #: ac_flag: the process forked and did not exec
HOST, JOB, FORK_SERVER, OTHER_PYTHON, TOOLS = (
    "parent of the jobs (a local run; on Dask the worker or its launcher)",
    "grading job",
    "fork server",
    "other Python (cross-check, font list; Dask's client, scheduler, worker)",
    "sandbox and tools",
)


def _comp_t(value: int) -> int:
    """A ``comp_t``: 13-bit mantissa, 3-bit base-8 exponent."""
    return (value & 0x1FFF) << (3 * (value >> 13))


def read_records(data: bytes, ticks_per_second: int = 100) -> dict[int, dict]:
    """``{pid: {pid, ppid, comm, cpu, forked}}`` of the acct v3 records in ``data`` (a later pid's
    record replaces an earlier one's: pids are not reused within a short run)."""
    records = {}
    for offset in range(0, len(data) - RECORD.size + 1, RECORD.size):
        fields = RECORD.unpack_from(data, offset)
        flag, version, pid, ppid, utime, stime, comm = (
            fields[0],
            fields[1],
            fields[6],
            fields[7],
            fields[10],
            fields[11],
            fields[18],
        )
        if version & 0x0F != ACCT_VERSION:
            raise ValueError(f"process accounting record version {version}, expected {ACCT_VERSION}")
        records[pid] = {
            "pid": pid,
            "ppid": ppid,
            "comm": comm.split(b"\0")[0].decode("ascii", "replace"),
            "cpu": (_comp_t(utime) + _comp_t(stime)) / ticks_per_second,
            "forked": bool(flag & AFORK),
        }
    return records


def is_python(record: dict) -> bool:
    """A Python process (its last thread may be one of ZeroMQ's, which names itself ``ZMQbg/...``)."""
    return record["comm"].startswith(("python", "ZMQbg"))


def classify(records: dict[int, dict]) -> dict[str, float]:
    """CPU seconds of ``records`` by kind (the module's list), kernels as ``"kernel N"``."""
    children = collections.defaultdict(list)
    for record in records.values():
        children[record["ppid"]].append(record)

    def starts_sandboxes(record: dict) -> bool:
        return is_python(record) and any(child["comm"] == "bwrap" for child in children[record["pid"]])

    jobs = {pid for pid, record in records.items() if starts_sandboxes(record)}
    jobs -= {record["ppid"] for pid, record in records.items() if pid in jobs}  # a job's parent is a host
    hosts = {record["ppid"] for pid, record in records.items() if pid in jobs}
    kernels = {  # forked Python children of an exec'd Python process that is neither a job nor a host
        pid: record
        for pid, record in records.items()
        if record["forked"] and is_python(record) and record["ppid"] in records and record["ppid"] not in jobs | hosts
        and is_python(records[record["ppid"]]) and not records[record["ppid"]]["forked"]
    }  # fmt: skip
    servers = {record["ppid"] for record in kernels.values()}
    kinds: dict[str, float] = collections.Counter()
    for pid, record in records.items():
        if not is_python(record):
            kinds[TOOLS] += record["cpu"]
        elif pid in hosts:
            kinds[HOST] += record["cpu"]
        elif pid in jobs:
            kinds[JOB] += record["cpu"]
        elif pid in servers:
            kinds[FORK_SERVER] += record["cpu"]
            forked = sorted((kernel for kernel in kernels.values() if kernel["ppid"] == pid), key=lambda k: k["pid"])
            for position, kernel in enumerate(forked, start=1):
                kinds[f"kernel {position}"] += kernel["cpu"]
        elif pid not in kernels:
            kinds[OTHER_PYTHON] += record["cpu"]
    return dict(kinds)


def run_accounted(command: list[str]) -> tuple[int, dict[int, dict]]:
    """Run ``command`` with process accounting on; its exit status and the records of every process
    that ended meanwhile (the command's own included)."""
    libc = ctypes.CDLL(None, use_errno=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "acct"
        path.touch()
        if libc.acct(str(path).encode()) != 0:
            raise PermissionError(
                ctypes.get_errno(), "process accounting (acct) needs root or CAP_SYS_PACCT; run this as root"
            )
        try:
            status = subprocess.call(command)
        finally:
            libc.acct(None)
        return status, read_records(path.read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per", type=int, default=1, help="divide by this (the submissions graded)")
    parser.add_argument("--save", type=Path, help="add the figures to this JSON file, under --label")
    parser.add_argument("--label", default="run", help="what was measured (runs of one label are averaged)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to account after --")
    load_start = round(os.getloadavg()[0], 2)
    status, records = run_accounted(command)
    kinds = classify(records)
    per = {kind: round(seconds / args.per, 3) for kind, seconds in sorted(kinds.items(), key=lambda item: -item[1])}
    total = round(sum(kinds.values()) / args.per, 3)
    print(f"CPU seconds by process, per {'submission' if args.per > 1 else 'run'} ({args.per}):")
    for kind, seconds in per.items():
        print(f"  {kind:<45} {seconds:7.3f}")
    print(f"  {'total':<45} {total:7.3f}")
    if args.save:
        saved = json.loads(args.save.read_text()) if args.save.exists() else {"runs": {}}
        run = {"command": command, "per": args.per, "cpu_s": per, "total_cpu_s": total, "load_start": load_start}
        saved["runs"].setdefault(args.label, []).append(run)
        args.save.write_text(json.dumps(saved, indent=1) + "\n")
    sys.exit(status)


def mean_by_label(saved: dict) -> dict[str, dict[str, float]]:
    """``{label: {kind: mean CPU seconds, "total": ...}}`` of a ``--save``d file, over each label's runs."""
    means = {}
    for label, runs in saved["runs"].items():
        kinds = {kind for run in runs for kind in run["cpu_s"]}
        mean = {kind: sum(run["cpu_s"].get(kind, 0.0) for run in runs) / len(runs) for kind in kinds}
        mean["total"] = sum(run["total_cpu_s"] for run in runs) / len(runs)
        means[label] = mean
    return means


def comparison_rows(saved: dict, before: str, after: str) -> list[str]:
    """Markdown rows ``| kind | before | after |`` of two labels' means (seconds, 2 decimals), kernels
    together, then the total; in the order of the "after" column, largest first."""
    means = mean_by_label(saved)

    def grouped(mean: dict[str, float]) -> dict[str, float]:
        rows: dict[str, float] = collections.Counter()
        for kind, seconds in mean.items():
            if kind != "total":
                rows["kernels (all of a submission's)" if kind.startswith("kernel ") else kind] += seconds
        return rows

    old, new = grouped(means[before]), grouped(means[after])
    kinds = sorted(old.keys() | new.keys(), key=lambda kind: -new.get(kind, 0.0))
    rows = [f"| {kind} | {old.get(kind, 0.0):.2f} | {new.get(kind, 0.0):.2f} |" for kind in kinds]
    rows.append(f"| **total** | **{means[before]['total']:.2f}** | **{means[after]['total']:.2f}** |")
    return rows


if __name__ == "__main__":
    main()
