"""The grader's own check of the components, decided outside every student process.

The notebooks' test cells run in the student's kernel, so code written to fool
them (a rewritten output stream, an edited snapshot of the tamper probe) could
make a wrong answer look right there. This module does not trust that
verdict alone: after grading, a fresh sandboxed process imports the
definitions of the student's notebooks 01-04 and computes, for every graded
component test, the API's values on random inputs drawn from a seed chosen
here (:mod:`autograder.crosscheck_probes`); it writes them, as an ``.npz``, to
a pipe the host created. The host computes the same values with the
reference and compares them. **A test keeps its points only if the
notebook's test passed and the host's comparison agrees.** The comparison
can take points away, never give them: a submission that passes here but
fails in its notebook keeps the notebook's verdict (and its message).

The student's code can only write numbers into that pipe, and it does not
know the reference's numbers: to pass, it has to compute them.
"""
from __future__ import annotations

import io
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import crosscheck_probes, sandbox

MAX_BYTES = 5_000_000
RTOL, ATOL = 1e-5, 1e-8


def _read_all(fd: int, deadline: float) -> bytes:
    chunks, size = [], 0
    while size <= MAX_BYTES:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def student_values(spec: sandbox.SandboxSpec, notebooks: list[str], seed: int,
                   timeout: float = 180) -> dict[str, np.ndarray] | str:
    """The values the student's code computes, from a sandboxed process; or why there are none."""
    read, write = os.pipe()
    source = Path(crosscheck_probes.__file__).read_bytes()
    # the pipe's write end is inherited under its own number (bubblewrap passes open descriptors on)
    cmd = sandbox.command([sys.executable, "-P", sandbox.data_path(spec, "crosscheck_probes.py"), str(seed),
                           str(write), *notebooks], spec, data={"crosscheck_probes.py": source},
                          keep_fds=(write,))
    try:
        process = subprocess.Popen(cmd.argv, pass_fds=cmd.pass_fds, cwd=sandbox.working_directory(spec),
                                   env=sandbox.sandbox_environment(spec), preexec_fn=sandbox.preexec_function(spec),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
    finally:
        cmd.close()  # closes the write end here too: the pipe ends when the child is done
    deadline = time.monotonic() + timeout
    try:
        raw = _read_all(read, deadline)
    finally:
        os.close(read)
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
        sandbox.kill_marked_processes(spec.marker)
    if len(raw) < 8 or int.from_bytes(raw[:8], "big") != len(raw) - 8:
        return "the cross-check process wrote no complete result (it crashed, or hit a limit)"
    try:
        with np.load(io.BytesIO(raw[8:]), allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except Exception as error:  # noqa: BLE001 - untrusted bytes
        return f"the cross-check result is unreadable ({type(error).__name__})"


def expected_values(reference, notebooks: list[str], seed: int) -> dict[str, np.ndarray]:
    found = {}
    for notebook in notebooks:
        found.update({f"{notebook}::{k}": v for k, v in crosscheck_probes.probes(reference, notebook, seed).items()})
    return found


def compare(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray] | str,
            notebooks: list[str]) -> dict[tuple[str, str], str]:
    """``{(notebook, grade_id): why it disagrees}`` for every graded test whose values differ."""
    problems: dict[tuple[str, str], str] = {}
    tests = {}
    for key in expected:
        notebook, _, rest = key.partition("::")
        tests.setdefault((notebook, rest.split("/")[0]), []).append(key)
    for (notebook, grade_id), keys in tests.items():
        if isinstance(actual, str):
            problems[(notebook, grade_id)] = actual
            continue
        if f"{notebook}::{notebook}/import-error" in actual:
            problems[(notebook, grade_id)] = "the notebook's definitions could not be imported: " + \
                str(actual[f"{notebook}::{notebook}/import-error"])
            continue
        if f"{notebook}::{grade_id}/error" in actual:
            problems[(notebook, grade_id)] = "raised " + str(actual[f"{notebook}::{grade_id}/error"])
            continue
        for key in keys:
            want, got = expected[key], actual.get(key)
            part = key.split("/", 1)[1]
            if got is None or got.shape != want.shape:
                problems[(notebook, grade_id)] = f"{part}: shape {None if got is None else got.shape}, expected {want.shape}"
                break
            if not np.allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=False):
                worst = float(np.max(np.abs(got - want))) if np.all(np.isfinite(got)) else float("nan")
                problems[(notebook, grade_id)] = f"{part} differs from the reference (largest difference {worst:.3g})"
                break
    return problems


def crosscheck(spec: sandbox.SandboxSpec, reference, notebooks: list[str], seed: int) -> dict[tuple[str, str], str]:
    """Run the student's side in the sandbox, the reference here, and compare (see the module docstring)."""
    notebooks = [n for n in notebooks if n in crosscheck_probes.GROUPS]
    if not notebooks:
        return {}
    return compare(expected_values(reference, notebooks, seed), student_values(spec, notebooks, seed), notebooks)
