"""What the course's code needs inside the sandbox: the paths it reads and the variables it is told.

The one place where the grading job turns its settings into the sandbox's
inputs (:attr:`autograder.sandbox.SandboxSpec.readonly` and
:attr:`~autograder.sandbox.SandboxSpec.environment`); :mod:`autograder.sandbox`
itself knows nothing of the course. Reads where the ``dnn_course`` package and
its embedded data are installed; writes only the run's decoded copy of that data
(:func:`decode_datasets`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import dnn_course
from dnn_course import decoded_data
from dnn_course.assignment import profile_environment
from dnn_course.dataset_files import decode_embedded

from . import sandbox
from .sandbox import outermost_paths, python_paths

#: The run's folder of decoded embedded subsets (:func:`decode_datasets`), set by a local run before it
#: forks its jobs (which inherit it); None: every kernel decodes the files itself.
DECODED_DATA: str | None = None


def decode_datasets(scratch: Path) -> str:
    """Decode the embedded subsets once for the run into a new folder in ``scratch`` (written by the
    grader only, bound read-only into every sandbox); its path, for :data:`DECODED_DATA`."""
    folder = tempfile.mkdtemp(prefix="decoded-", dir=scratch)
    os.chmod(folder, 0o755)
    decode_embedded(folder)
    return folder


def readonly_paths() -> tuple[str, ...]:
    """Host paths the grading kernel reads: Python, the venv, ``dnn_course``, the embedded data (and
    the run's decoded copy of it)."""
    package_dir = Path(dnn_course.__file__).resolve().parent
    decoded = [Path(DECODED_DATA)] if DECODED_DATA else []
    return outermost_paths(python_paths() + [package_dir, package_dir.parent / "data" / "embedded", *decoded])


def course_variables(experiment_profile: str) -> tuple[tuple[str, str], ...]:
    """The environment variables the course's code reads when graded, as ``(name, value)`` pairs.

    The experiment profile (:func:`dnn_course.assignment.profile_environment`): the experiment
    notebooks read the results they saved instead of training again, and check them against
    that profile's settings (see :func:`dnn_course.experiment.experiment_profile`). The run's
    decoded copy of the embedded data, if any (:mod:`dnn_course.decoded_data`).
    """
    decoded = ((decoded_data.VARIABLE, DECODED_DATA),) if DECODED_DATA else ()
    return tuple(profile_environment(experiment_profile).items()) + decoded


def grading_spec(isolation: str, workdir: str, ipc_dir: str, marker: str, settings, slot: int) -> sandbox.SandboxSpec:
    """The sandbox of a grading job's processes for the parallel ``slot`` (``settings``:
    :class:`autograder.grading_settings.GradingSettings`): its limits, the paths and variables the
    course's code needs, and the slot's user."""
    return sandbox.SandboxSpec(
        isolation=isolation,
        workdir=workdir,
        ipc_dir=ipc_dir,
        marker=marker,
        limits=settings.limits,
        readonly=readonly_paths(),
        uid=sandbox.sandbox_uid(slot, isolation),
        parallel=settings.jobs,
        environment=course_variables(settings.experiment_profile),
    )
