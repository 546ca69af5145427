"""The accuracy points of the two experiments, measured on the saved weights.

One implementation for both places that score them: the notebooks' test
cells (what a student sees while working and with ``nbgrader validate``) and
the grader, which calls these functions on the submitted files outside the
student's kernel and takes their result as the score. The weights are run
through the course's own forward pass (:mod:`dnn_course.evaluate`), never
the student's ``predict``, on the official test images.

Thresholds depend on the *profile*: ``"brief"`` (the brief's settings; a real
term) or ``"smoke"`` (a smoke test: a few epochs on 2,000 images, which the
course's own rehearsal of a term grades).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .evaluate import measure_saved_model
from .experiment import SMOKE, load_experiment, smoke_runs
from .records import RecordError

__all__ = ["FASHION_THRESHOLDS", "MNIST_MINIMUM", "Score", "fashion_model_points", "mnist_model_points"]

#: Experiment A: the test accuracy each activation's network must reach.
MNIST_MINIMUM = {"brief": {"sigmoid": 0.40, "relu": 0.85, "tanh": 0.85},
                 "smoke": {"sigmoid": 0.05, "relu": 0.60, "tanh": 0.60}}
#: Experiment B: one point at each of these test accuracies.
FASHION_THRESHOLDS = {"brief": [0.80, 0.83, 0.85, 0.87], "smoke": [0.40, 0.50, 0.55, 0.60]}
TOLERANCE = 0.005  # a claimed accuracy further than this from the measured one is flagged
#: What a test says under the brief's profile when the results are a smoke test's (they earn no points).
SMOKE_SUBMITTED = "smoke-test results submitted: run with SMOKE_TEST = False"


def _smoke_submitted(names: list[str]) -> str:
    return (f"{SMOKE_SUBMITTED} ({', '.join(names)}: made with SMOKE_TEST = True, {SMOKE['train_images']:,} images "
            f"and at most {SMOKE['max_epochs']} epochs); smoke-test results earn no points.")


@dataclass
class Score:
    """Points earned, out of ``max_points``, and one line per fact measured (for the feedback)."""
    points: float
    max_points: float
    lines: list[str] = field(default_factory=list)

    def text(self, smoke_notice: str = "") -> str:
        """The lines and the points; after a student's smoke run (``smoke_notice``, see
        :func:`dnn_course.experiment.smoke_notice`) the smoke thresholds reached instead, and the notice."""
        if smoke_notice:
            return "\n".join(self.lines + [f"{self.points:g} of {self.max_points:g} of the smoke test's low thresholds "
                                           "reached (not points)", smoke_notice])
        return "\n".join(self.lines + [f"{self.points:g} of {self.max_points:g} points"])


def mnist_model_points(folder: str | Path, x_test: np.ndarray, y_test: np.ndarray,
                       profile: str = "brief") -> Score:
    """2 points if the three saved networks all reach their minimum, 1 if two do, else 0.

    ``folder`` holds ``mnist_results.json`` and ``mnist_model_<activation>.npz``; ``x_test``
    ``(n, 28, 28)``, ``y_test`` ``(n,)``.
    """
    folder, minimum = Path(folder), MNIST_MINIMUM[profile]
    score = Score(0, 2)
    try:
        experiment = load_experiment(folder / "mnist_results.json")
    except RecordError as error:
        score.lines.append(str(error))
        return score
    if profile == "brief" and smoke_runs(experiment):
        score.lines.append(_smoke_submitted(smoke_runs(experiment)))
        return score
    reached = 0
    for name, needed in minimum.items():
        if name not in experiment.runs:
            why = f"diverged ({experiment.diverged[name].message})" if name in experiment.diverged else "no finished run"
            score.lines.append(f"{name}: {why}; the network must reach {needed:.2f}.")
            continue
        try:
            measured, description = measure_saved_model(folder / f"mnist_model_{name}.npz", x_test, y_test)
        except RecordError as error:
            score.lines.append(f"{name}: {error}")
            continue
        if description.get("info", {}).get("run_id") != experiment.ids.get(name):
            score.lines.append(f"{name}: mnist_model_{name}.npz is not the model of the {name} run in "
                               "mnist_results.json (a stale file): run the experiment cell again.")
            continue
        claimed = experiment.runs[name].test_acc
        line = (f"{name}: {measured:.3f} test accuracy measured on the saved weights "
                f"({len(y_test):,} test images; needed: {needed:.2f})")
        if claimed is None or abs(float(claimed) - measured) > TOLERANCE:
            line += f"; FLAG: the results file claims {claimed}, which the saved model does not reach"
        score.lines.append(line)
        reached += measured >= needed
    score.points = 2 if reached == 3 else 1 if reached == 2 else 0
    if score.points < 2:
        score.lines.append("2 points when all three networks reach their minimum, 1 point when two do.")
    return score


def fashion_model_points(folder: str | Path, x_test: np.ndarray, y_test: np.ndarray,
                         profile: str = "brief") -> Score:
    """One point at each threshold of :data:`FASHION_THRESHOLDS` reached by ``fashion_model.npz``.

    The model must be the one of a run recorded in ``fashion_results.json`` (tied by its run id).
    """
    folder, thresholds = Path(folder), FASHION_THRESHOLDS[profile]
    score = Score(0, len(thresholds))
    try:
        experiment = load_experiment(folder / "fashion_results.json")
        measured, description = measure_saved_model(folder / "fashion_model.npz", x_test, y_test)
    except RecordError as error:
        score.lines.append(str(error))
        return score
    info = description.get("info", {})
    name = info.get("name")
    if name not in experiment.runs or info.get("run_id") != experiment.ids.get(name):
        score.lines.append("fashion_model.npz is not the model of any run in fashion_results.json (a stale "
                           "file): run the search cell again; it saves the best run's model.")
        return score
    if profile == "brief" and name in smoke_runs(experiment):
        score.lines.append(_smoke_submitted([name]))
        return score
    claimed = experiment.runs[name].test_acc
    score.points = int(sum(measured >= t for t in thresholds))
    line = (f"{measured:.3f} test accuracy measured on the saved weights of {name} "
            f"({len(y_test):,} test images)")
    if claimed is None or abs(float(claimed) - measured) > TOLERANCE:
        line += f"; FLAG: the results file claims {claimed}, which the saved model does not reach"
    score.lines.append(line)
    upcoming = [t for t in thresholds if measured < t]
    if upcoming:
        score.lines.append(f"{upcoming[0]:.2f} earns the next point (one point at each of "
                           f"{', '.join(f'{t:.2f}' for t in thresholds)}).")
    return score
