"""Grade the benchmark's generated class on a Dask cluster of this machine: what a cluster costs per submission.

    python bench/cpu_by_process.py --per 12 --label cluster -- \
        python bench/grade_on_local_cluster.py --students 12 --threads 2 [--repo CHECKOUT]

Starts a ``dask scheduler`` and one ``dask worker --nthreads THREADS --no-nanny`` on localhost, grades the
class ``scripts/bench_autograder.py`` generates (the same students, seed 0) with ``python -m autograder
grade --scheduler``, prints the wall time and stops both. ``--repo`` grades with another checkout's
grader (the scheduler, the worker and the client all run from it, with this interpreter and its
installed packages): the way to compare a cluster's cost before and after a change.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.bench_autograder import make_class  # noqa: E402 - importable once the repository is on sys.path (above)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2, help="the worker's threads (submissions at once)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose grader grades")
    args = parser.parse_args()
    repo = args.repo.resolve()
    env = dict(os.environ, PYTHONPATH=str(repo))
    address = f"tcp://127.0.0.1:{_free_port()}"
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as scratch:
        folder = Path(scratch)
        (folder / "class").mkdir()
        make_class(folder / "class", args.students)
        logs = open(folder / "cluster.log", "wb")
        dask = [sys.executable, "-m", "dask"]
        scheduler = subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
            cwd=repo, env=env, stdout=logs, stderr=subprocess.STDOUT,
        )  # fmt: skip
        worker = subprocess.Popen(
            [*dask, "worker", address, "--nthreads", str(args.threads), "--no-nanny", "--no-dashboard",
             "--local-directory", str(folder / "worker")],
            cwd=repo, env=env, stdout=logs, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "autograder", "grade", str(folder / "class"), "--out", str(folder / "out"),
                 "--scheduler", address, "--quiet"],
                cwd=repo, env=env, capture_output=True, text=True,
            )  # fmt: skip
            wall = time.perf_counter() - started
        finally:
            for process in (worker, scheduler):
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            logs.close()
        if done.returncode != 0:
            sys.exit(f"grading on the cluster failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        print(
            f"{args.students} submissions graded on a local cluster (1 worker, {args.threads} threads) in {wall:.1f} s"
        )


if __name__ == "__main__":
    main()
