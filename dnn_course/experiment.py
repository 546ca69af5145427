"""Running an experiment's training runs so that no finished work is lost.

The experiment notebooks (05, 06) describe their runs as a *plan*: an ordered
``{run name: settings}`` dict. :func:`run_plan` trains them one at a time and,
as soon as each one ends, writes it to the results file (atomically) and its
weights to a model file of its own. A run that is already in the results file
with exactly the same settings and the same data is skipped, so re-running a
notebook after an interruption continues where it stopped (``start_over=True``
retrains everything). A run whose loss became NaN or infinite is recorded as
*diverged*, with its message, and the plan goes on with the next run.

Modes: a notebook runs its plan for real (the brief's settings), as a *smoke
test* (``SMOKE_TEST = True`` in its parameters cell: a couple of thousand
images and a few epochs, seconds per run, to check the code end to end), or
is *graded*: the grader sets the experiment profile in the kernel's environment
(:func:`experiment_profile`), the notebook trains nothing and reads what the
student submitted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .assignment import ASSIGNMENT, PROFILE_VARIABLE
from .atomic_write import write_atomically
from .records import RecordError, read_capped, save_model
from .training import History, TrainingDivergedError

__all__ = [
    "SMOKE",
    "Diverged",
    "Experiment",
    "experiment_profile",
    "grading_profile",
    "load_experiment",
    "run_id",
    "run_plan",
    "smoke_notice",
    "smoke_runs",
]

#: The smoke test: how much of the data and how many epochs a run gets (any plan).
SMOKE = {"train_images": 2000, "max_epochs": 5, "learning_rate": 0.1}
FORMAT = "dnn-course-runs/2"
MAX_RUNS_BYTES = 5_000_000  # a results file of a few dozen 100-epoch runs is ~100 kB


def experiment_profile() -> str:
    """The experiment profile the notebook is graded under: ``""`` while a student works (it trains),
    ``"brief"`` or ``"smoke"`` when the grader (or the students' check) runs it.

    Read from :data:`dnn_course.assignment.PROFILE_VARIABLE`, which only the grader's kernel and the
    check set (an unknown value grades under the default profile, ``"brief"``). ``"smoke"`` grades
    smoke-test results (the course's own rehearsal of a term uses it to grade in seconds).
    """
    profiles = ASSIGNMENT.profiles
    value = os.environ.get(PROFILE_VARIABLE)
    if not value:
        return ""
    return value if value in profiles.names else profiles.default


#: The name the experiment notebooks (05, 06) call it by; they move to :func:`experiment_profile`
#: when their released copies are next regenerated.
grading_profile = experiment_profile


def smoke_runs(experiment: Experiment) -> list[str]:
    """The names of the runs of ``experiment`` that were smoke tests (``SMOKE_TEST = True``).

    A smoke run is the only kind whose settings cut the training images (``train_images``).
    """
    return [
        name for name, settings in experiment.settings.items() if settings.get("train_images") == SMOKE["train_images"]
    ]


def smoke_notice(real_run: str) -> str:
    """What a test of an experiment says after a smoke run: not graded, and how to do the real one.

    ``real_run``: what the real run is and how long it takes, e.g. "three runs of 100 epochs".
    """
    return (
        f"SMOKE RUN, NOT GRADED: SMOKE_TEST = True trains on {SMOKE['train_images']:,} images for at most "
        f"{SMOKE['max_epochs']} epochs, only to check that your code runs end to end; the grader gives these "
        f"results no points. For the graded run set SMOKE_TEST = False in the parameters cell (the first code "
        f"cell) and run all cells again: {real_run}."
    )


def run_id(name: str, settings: dict, data_description: str) -> str:
    """A short id of a run: its name, settings and data (ties a saved model to its results)."""
    text = json.dumps([name, settings, data_description], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Diverged:
    """A run whose loss became NaN or infinite."""

    name: str
    settings: dict
    message: str
    data_description: str = ""


@dataclass
class Experiment:
    """What a results file holds: finished runs, diverged runs, and each run's settings and id."""

    runs: dict[str, History]
    diverged: dict[str, Diverged]
    settings: dict[str, dict]
    ids: dict[str, str]

    def summary(self) -> str:
        """E.g. ``"2 runs finished, 1 diverged"``."""
        text = f"{len(self.runs)} run{'s' if len(self.runs) != 1 else ''} finished"
        return text + (f", {len(self.diverged)} diverged" if self.diverged else "")


def load_experiment(path: str | Path) -> Experiment:
    """Read a results file written by :func:`run_plan`."""
    raw = read_capped(Path(path), MAX_RUNS_BYTES, "the experiment")
    try:
        payload = json.loads(raw.decode("utf-8"))
        runs = {str(n): History.from_dict(d) for n, d in payload["runs"].items()}
        diverged = {
            str(n): Diverged(str(n), dict(d["settings"]), str(d["message"]), str(d.get("data", "")))
            for n, d in payload.get("diverged", {}).items()
        }
        settings = {str(n): dict(s) for n, s in payload.get("settings", {}).items()}
        ids = {str(n): str(i) for n, i in payload.get("ids", {}).items()}
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as error:
        raise RecordError(
            f"{Path(path).name} is not a results file of this course ({error}). Delete it and run the experiment again."
        ) from None
    for name, history in runs.items():
        values = history.train_loss + history.train_acc + history.val_acc + [history.test_acc or 0.0]
        if not all(math.isfinite(v) for v in values):
            raise RecordError(f"{Path(path).name}: run {name!r} holds NaN or infinite values.")
    return Experiment(runs, diverged, settings, ids)


def _save(path: Path, experiment: Experiment) -> None:
    payload = {
        "format": FORMAT,
        "runs": {n: h.to_dict() for n, h in experiment.runs.items()},
        "diverged": {
            n: {"settings": d.settings, "message": d.message, "data": d.data_description}
            for n, d in experiment.diverged.items()
        },
        "settings": experiment.settings,
        "ids": experiment.ids,
    }
    write_atomically(path, json.dumps(payload, indent=1, allow_nan=False, default=str))


def run_plan(
    plan: dict[str, dict],
    train_run,
    results_file: str | Path,
    model_file,
    data_description: str,
    *,
    start_over: bool = False,
    log=print,
) -> Experiment:
    """Train every run of ``plan`` not yet in ``results_file``; save each one as soon as it ends.

    ``train_run(name, settings)`` trains one run and returns ``(history, model, layer_sizes,
    activation)``; it may raise :class:`~dnn_course.training.TrainingDivergedError`.
    ``model_file(name, run_id)`` gives the path of that run's weights. Runs of the file that
    are no longer in the plan are dropped. ``KeyboardInterrupt`` leaves every finished run saved
    and says what is missing.
    """
    results_file = Path(results_file)
    done = Experiment({}, {}, {}, {})
    if results_file.exists() and not start_over:
        try:
            done = load_experiment(results_file)
        except RecordError as error:
            log(f"Ignoring {results_file.name}: {error}")
    experiment = Experiment({}, {}, {}, {})
    for name, settings in plan.items():
        rid = run_id(name, settings, data_description)
        kept = done.ids.get(name) == rid and (name in done.runs or name in done.diverged)
        if kept and name in done.runs and not Path(model_file(name, rid)).exists():
            kept = False  # the weights are gone: train again
        if kept:
            log(f"{name}: already done with these settings (skipped; set START_OVER = True to retrain)")
            if name in done.runs:
                experiment.runs[name] = done.runs[name]
            else:
                experiment.diverged[name] = done.diverged[name]
        else:
            try:
                history, model, sizes, activation = train_run(name, settings)
            except TrainingDivergedError as error:
                log(f"{name}: diverged ({error}); going on with the next run")
                experiment.diverged[name] = Diverged(name, settings, str(error), data_description)
            except KeyboardInterrupt:
                missing = [n for n in plan if n not in experiment.runs and n not in experiment.diverged]
                _save(results_file, experiment)
                log(
                    f"Interrupted: {experiment.summary()} and saved to {results_file.name}; "
                    f"not run yet: {', '.join(missing)}. Run the cell again to continue."
                )
                raise
            else:
                save_model(
                    model_file(name, rid),
                    model,
                    sizes,
                    activation,
                    info={
                        "name": name,
                        "run_id": rid,
                        "claimed_test_accuracy": history.test_acc,
                        "epoch": history.epochs,
                    },
                )
                experiment.runs[name] = history
        experiment.settings[name], experiment.ids[name] = dict(settings), rid
        _save(results_file, experiment)
    return experiment


def set_parameters(notebook: str | Path, **values) -> None:
    """Set assignments of an experiment notebook's parameters cell (the cell tagged ``parameters``).

    ``set_parameters("05_mnist_activations.ipynb", SMOKE_TEST=True)`` is what a student does by
    hand; the course's tests do it this way. Raises ``ValueError`` if a name is not assigned there.
    """
    import re

    import nbformat

    path = Path(notebook)
    nb = nbformat.read(path, as_version=4)
    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        raise ValueError(f"{path.name} has no cell tagged 'parameters'")
    for name, value in values.items():
        pattern = re.compile(rf"^{re.escape(name)}\s*=\s*[^#\n]*?(\s*#.*)?$", re.MULTILINE)
        if not pattern.search(cell.source):
            raise ValueError(f"{path.name}: the parameters cell does not assign {name}")
        cell.source = pattern.sub(
            lambda m, name=name, value=value: f"{name} = {value!r}" + (m.group(1) or ""), cell.source, count=1
        )
    nbformat.write(nb, path)
