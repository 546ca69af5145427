"""The grader's own check of the components, decided outside every student process.

The notebooks' test cells run in the student's kernel, so code written to fool
them (a rewritten output stream, an edited snapshot of the tamper probe) could
make a wrong answer look right there. This module does not trust that
verdict alone: after grading, a fresh sandboxed process imports the
definitions of the student's notebooks 01-04 and computes, for every graded
component test, the API's values on random inputs drawn from a seed chosen
here (:mod:`autograder.crosscheck_probes`); it writes them, one ``.npz`` frame
per test as soon as that test is done, to a pipe the host created. The host
computes the same values with the reference and compares them.

**A fault costs only the test it happened in.** A test whose code exits
(``os._exit``, ``SystemExit``), hangs past :data:`TEST_SECONDS`, or writes
anything but its own frame is *unverified*; the host kills that process and
starts a fresh one for the tests after it. An unverified test is a
disagreement of that test alone; the whole cross-check takes at most
:data:`TOTAL_SECONDS`. **A test keeps its points only if the
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
from .grading_records import ProbeKey
from .submission_processes import kill_marked_processes

MAX_BYTES = 5_000_000  # everything one process may write
MAX_FRAME_BYTES = 1_000_000  # one test's values (a few small arrays)
MAX_ELEMENTS = 100_000  # of one array in a frame
RTOL, ATOL = 1e-5, 1e-8
#: Time limits (wall seconds): a process's start and a notebook's import; one test; all of the
#: cross-check. An honest unit takes well under a second on an idle core; the limits leave room for
#: a machine running other jobs (at 15 s per test and 75 s for a start, a busy 2-core machine under
#: `make test`, load 10, once cost a correct student all of notebook 01 on one of two runs).
IMPORT_SECONDS, TEST_SECONDS, TOTAL_SECONDS = 180.0, 60.0, 600.0
#: Key suffix of a test the cross-check could not verify (its process died, hung or wrote garbage).
UNVERIFIED = "unverified"


class _Garbage(Exception):
    """The channel carried something that is not a frame of the expected unit."""


def _parse_frame(data: bytes, unit: str) -> dict[str, np.ndarray]:
    """The values of one frame, checked: keys of ``unit`` only, plain arrays, bounded sizes."""
    notebook, _, grade_id = unit.partition("::")
    prefix = f"{notebook}::{grade_id or notebook}/"
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            if not 0 < len(archive.files) <= 16:
                raise _Garbage(f"{len(archive.files)} arrays in one record")
            values = {}
            for key in archive.files:
                if not key.startswith(prefix):
                    raise _Garbage("a record of another test")
                value = archive[key]
                if value.size > MAX_ELEMENTS or value.dtype.kind not in "fiubU":
                    raise _Garbage("an array too large or of the wrong kind")
                values[key] = value
            return values
    except _Garbage:
        raise
    except Exception as error:  # noqa: BLE001 - untrusted bytes
        raise _Garbage(f"an unreadable record ({type(error).__name__})") from None


def _run_units(spec: sandbox.SandboxSpec, seed: int, todo: list[str], found: dict, deadline: float) -> str | None:
    """Run the units ``todo`` in one fresh sandboxed process, taking each frame as it arrives.

    Done units leave ``todo`` (their values go into ``found``); returns None when all are done,
    else why the process stopped at ``todo[0]`` (it exited, hung, or wrote garbage).
    """
    read, write = os.pipe()
    source = Path(crosscheck_probes.__file__).read_bytes()
    # the pipe's write end is inherited under its own number (bubblewrap passes open descriptors on)
    cmd = sandbox.command(
        [sys.executable, "-P", sandbox.data_path(spec, "crosscheck_probes.py"), str(seed), str(write), *todo],
        spec,
        data={"crosscheck_probes.py": source},
        keep_fds=(write,),
    )
    try:
        process = subprocess.Popen(
            cmd.argv,
            pass_fds=cmd.pass_fds,
            cwd=sandbox.working_directory(spec),
            env=sandbox.sandbox_environment(spec),
            preexec_fn=sandbox.preexec_function(spec),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        cmd.close()  # closes the write end here too: the pipe ends when the child is done
    buffer, total = b"", 0
    unit_deadline = time.monotonic() + IMPORT_SECONDS + TEST_SECONDS  # the first unit includes the start
    why = None
    try:
        while todo:
            limit = min(unit_deadline, deadline)
            left = limit - time.monotonic()
            if left <= 0 or not select.select([read], [], [], left)[0]:
                why = (
                    f"it did not finish within {IMPORT_SECONDS if '::' not in todo[0] else TEST_SECONDS:g} s"
                    if limit == unit_deadline
                    else "the cross-check's time ran out"
                )
                break
            chunk = os.read(read, 65536)
            if not chunk:
                why = "the process ended while computing it (an exit, os._exit, a signal or a limit)"
                break
            buffer += chunk
            total += len(chunk)
            if total > MAX_BYTES:
                why = "it wrote more than the grader reads"
                break
            try:
                while len(buffer) >= 8:
                    size = int.from_bytes(buffer[:8], "big")
                    if not 0 < size <= MAX_FRAME_BYTES:
                        raise _Garbage("a record of an impossible size")
                    if len(buffer) < 8 + size:
                        break
                    values = _parse_frame(buffer[8 : 8 + size], todo[0])
                    buffer = buffer[8 + size :]
                    found.update(values)
                    unit = todo.pop(0)
                    if any(key.endswith("/import-error") for key in values):
                        todo[:] = [u for u in todo if not u.startswith(unit + "::")]
                    unit_deadline = time.monotonic() + (
                        IMPORT_SECONDS if todo and "::" not in todo[0] else TEST_SECONDS
                    )
                    if not todo:
                        break
            except _Garbage as error:
                why = f"it wrote something that is not its result to the grader's channel ({error})"
                break
    finally:
        os.close(read)
        if process.poll() is None and todo:
            os.killpg(process.pid, 9)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        kill_marked_processes(spec.marker)
    return why if todo else None


def student_values(
    spec: sandbox.SandboxSpec, notebooks: list[str], seed: int, timeout: float = TOTAL_SECONDS
) -> dict[str, np.ndarray]:
    """The values the student's code computes, test by test, from sandboxed processes.

    A test whose process exits, hangs (:data:`TEST_SECONDS`) or writes garbage is recorded as
    ``NB::grade_id/unverified`` (a notebook's import: ``NB::NB/import-error``) and a fresh
    process goes on with the tests after it: a fault costs only the test it happened in. All of
    it takes at most ``timeout`` seconds; what is left then is unverified.
    """
    todo = crosscheck_probes.units(notebooks)
    found: dict[str, np.ndarray] = {}
    deadline = time.monotonic() + timeout
    while todo:
        if time.monotonic() >= deadline:
            why = "the cross-check's time ran out before it"
        else:
            why = _run_units(spec, seed, todo, found, deadline)
        if not todo:
            break
        unit = todo.pop(0)
        notebook, _, grade_id = unit.partition("::")
        if grade_id:
            found[ProbeKey(notebook, grade_id, UNVERIFIED).wire()] = np.array(why)
        else:
            found[ProbeKey(notebook, notebook, "import-error").wire()] = np.array(f"while importing them, {why}")
            todo[:] = [u for u in todo if not u.startswith(unit + "::")]
    return found


def expected_values(reference, notebooks: list[str], seed: int) -> dict[str, np.ndarray]:
    found = {}
    for notebook in notebooks:
        found.update({f"{notebook}::{k}": v for k, v in crosscheck_probes.probes(reference, notebook, seed).items()})
    return found


def compare(
    expected: dict[str, np.ndarray], actual: dict[str, np.ndarray] | str, notebooks: list[str]
) -> dict[tuple[str, str], str]:
    """``{(notebook, grade_id): why it disagrees}`` for every graded test whose values differ.

    ``actual`` is untrusted: a value of another kind or shape than the reference's is a
    disagreement of that test, never an error here.
    """
    problems: dict[tuple[str, str], str] = {}
    tests: dict[tuple[str, str], list[ProbeKey]] = {}
    for key in expected:
        probe_key = ProbeKey.parse(key)
        tests.setdefault(probe_key.test, []).append(probe_key)

    def text(value) -> str:
        return str(np.asarray(value))[:300]

    for (notebook, grade_id), keys in tests.items():
        import_error = ProbeKey(notebook, notebook, "import-error").wire()
        unverified = ProbeKey(notebook, grade_id, UNVERIFIED).wire()
        error = ProbeKey(notebook, grade_id, "error").wire()
        if isinstance(actual, str):
            problems[(notebook, grade_id)] = actual
            continue
        if import_error in actual:
            problems[(notebook, grade_id)] = "the notebook's definitions could not be imported: " + text(
                actual[import_error]
            )
            continue
        if unverified in actual:
            problems[(notebook, grade_id)] = "the grader could not verify it: " + text(actual[unverified])
            continue
        if error in actual:
            problems[(notebook, grade_id)] = "raised " + text(actual[error])
            continue
        for probe_key in keys:
            want, got = expected[probe_key.wire()], actual.get(probe_key.wire())
            part = probe_key.part
            if not isinstance(got, np.ndarray) or got.shape != want.shape:
                shape = got.shape if isinstance(got, np.ndarray) else None
                problems[(notebook, grade_id)] = f"{part}: shape {shape}, expected {want.shape}"
                break
            if got.dtype.kind not in "fiub":
                problems[(notebook, grade_id)] = f"{part}: not numbers ({got.dtype.kind} array)"
                break
            got = got.astype(float)
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
