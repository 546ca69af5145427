"""What a grading kernel's start costs, and what a fork of a warmed interpreter would cost instead.

    python bench/bench_kernel_start.py                      # 3 kernels of each kind
    python bench/bench_kernel_start.py --save bench/results/kernel_start.json

The measurement behind the next lever of autograder/README.md ("Where grading time goes"): each
notebook of a submission is graded in a kernel of its own, and starting one (the interpreter,
ipykernel and IPython) and running the first cell's imports (NumPy, Matplotlib, the course's
checks) is most of a kernel's CPU time. Two ways are timed, outside the sandbox (what the sandbox
adds is the same for both):

* **fresh**: ``python -m ipykernel_launcher -f CONNECTION`` as the grader starts kernels now;
* **forked**: one interpreter imports ipykernel, NumPy, Matplotlib and the course's checks once
  (its "warm-up" CPU is reported apart), then forks a kernel per connection file; a fork is never
  reused.

For each kernel: the CPU seconds (user + system, from ``/proc/<pid>/stat``) from its start to
the end of the first cell. Starts only the processes it measures; writes only ``--save``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

#: The first cell of a notebook of the course, as far as its imports go.
FIRST_CELL = "import numpy as np\nimport matplotlib.pyplot as plt\nfrom dnn_course import checks\nx = np.ones(3)"

#: The warmed interpreter: imports once, then forks a kernel for each connection file read on stdin.
FORK_SERVER = r"""
import os, sys
sys.modules["debugpy"] = None  # as the grader's kernels (autograder/kernel.py)
from ipykernel.kernelapp import IPKernelApp
import numpy, matplotlib.pyplot, dnn_course.checks
print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        quiet = os.open(os.devnull, os.O_RDWR)
        os.dup2(quiet, 0)
        os.dup2(quiet, 1)
        sys.argv = ["ipykernel_launcher", "-f", line.strip()]
        IPKernelApp.launch_instance()
        os._exit(0)
    print(pid, flush=True)
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the running process ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_cell(connection_file: str) -> BlockingKernelClient:
    """Connect to the kernel of ``connection_file`` and run :data:`FIRST_CELL`; the client."""
    client = BlockingKernelClient(connection_file=connection_file)
    client.load_connection_file()
    client.start_channels()
    client.wait_for_ready(timeout=120)
    client.execute_interactive(FIRST_CELL, timeout=120, output_hook=lambda message: None)
    return client


def fresh_kernel(folder: Path) -> float:
    """CPU seconds of a kernel started as the grader starts one, to the end of its first cell."""
    connection, _ = write_connection_file(fname=str(folder / f"fresh-{time.monotonic_ns()}.json"))
    command = [
        sys.executable,
        "-c",
        "import sys; sys.modules['debugpy'] = None\nfrom ipykernel.kernelapp import launch_new_instance\nlaunch_new_instance()",
        "-f",
        connection,
    ]
    kernel = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = first_cell(connection)
    seconds = cpu_seconds(kernel.pid)
    client.shutdown()
    kernel.wait(timeout=60)
    return seconds


def forked_kernels(folder: Path, count: int) -> tuple[float, list[float]]:
    """(the warmed interpreter's own CPU seconds, each forked kernel's to the end of its first cell)."""
    server = subprocess.Popen(
        [sys.executable, "-c", FORK_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        server.stdout.readline()
        warm_up, kernels = cpu_seconds(server.pid), []
        for index in range(count):
            connection, _ = write_connection_file(fname=str(folder / f"forked-{index}.json"))
            server.stdin.write(connection + "\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            client = first_cell(connection)
            kernels.append(cpu_seconds(pid))
            client.shutdown()
            time.sleep(0.5)  # the kernel exits on the shutdown request (the server is its parent, not this process)
        return warm_up, kernels
    finally:
        server.kill()
        server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernels", type=int, default=3, help="kernels of each kind (default 3)")
    parser.add_argument("--save", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-kernel-start-") as scratch:
        fresh = [fresh_kernel(Path(scratch)) for _ in range(args.kernels)]
        warm_up, forked = forked_kernels(Path(scratch), args.kernels)
    report = {
        "benchmark": "kernel start",
        "first_cell": FIRST_CELL,
        "fresh_cpu_s": [round(s, 2) for s in fresh],
        "fork_server_warm_up_cpu_s": round(warm_up, 2),
        "forked_cpu_s": [round(s, 2) for s in forked],
        "load_start": round(load, 2),
        "load_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(f"fresh kernel, to the end of its first cell: {', '.join(f'{s:.2f}' for s in fresh)} CPU s")
    print(f"forked kernel, to the end of its first cell: {', '.join(f'{s:.2f}' for s in forked)} CPU s")
    print(f"the warmed interpreter's own start (once per submission): {warm_up:.2f} CPU s")
    print(f"load average {report['load_start']:.1f} at the start and {report['load_end']:.1f} at the end")
    if args.save:
        args.save.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"saved: {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
