"""The accuracy points of the two experiments, measured on the saved weights.

One implementation for both places that score them: the notebooks' test
cells (what a student sees while working and with ``nbgrader validate``) and
the grader, which calls these functions on the submitted files outside the
student's kernel and takes their result as the score. The weights are run
through the course's own forward pass (:mod:`dnn_course.evaluate`), never
the student's ``predict``, on the official test images.

Thresholds depend on the experiment profile (``dnn_course.assignment.ExperimentProfiles``):
``"brief"`` (the brief's settings; a real term) or ``"smoke"`` (a smoke test: a few
epochs on 2,000 images, which the course's own rehearsal of a term grades). Each
test's maximum points are the assignment's (:data:`dnn_course.assignment.ASSIGNMENT`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .assignment import ASSIGNMENT, GradedTest
from .evaluate import ACTIVATIONS, predict_classes
from .experiment import SMOKE, load_experiment, smoke_runs
from .records import RecordError, read_weights

__all__ = [
    "CLAIM_NOT_REACHED",
    "FASHION_THRESHOLDS",
    "MNIST_LAYER_SIZES",
    "MNIST_MINIMUM",
    "Score",
    "fashion_model_points",
    "measure",
    "mnist_model_points",
]

#: Experiment A's network, the brief's (the smoke test keeps it and cuts only images, epochs and learning rate).
MNIST_LAYER_SIZES = [784, 500, 500, 10]

#: Experiment A: the test accuracy each activation's network must reach.
MNIST_MINIMUM = {
    "brief": {"sigmoid": 0.40, "relu": 0.85, "tanh": 0.85},
    "smoke": {"sigmoid": 0.05, "relu": 0.60, "tanh": 0.60},
}
#: Experiment B: one point at each of these test accuracies (as many as the test's points).
FASHION_THRESHOLDS = {"brief": [0.80, 0.83, 0.85, 0.87], "smoke": [0.40, 0.50, 0.55, 0.60]}
TOLERANCE = 0.005  # a claimed accuracy further than this from the measured one is flagged
#: The one flag (and wording) of a results file whose recorded test accuracy the saved weights do not reproduce;
#: the measuring test lists it among its notebook's flags, so the class report shows it.
CLAIM_NOT_REACHED = "claim not reached"
#: Notebook 06: a model whose test accuracy exceeds its accuracy on training images it could not have seen
#: by more than this is flagged as fitted to the test images (about 4.5 standard errors on 1,000 images).
TEST_FIT_MARGIN = 0.05
#: What a test says under the brief's profile when the results are a smoke test's (they earn no points).
SMOKE_SUBMITTED = "smoke-test results submitted: run with SMOKE_TEST = False"


def _smoke_submitted(names: list[str]) -> str:
    return (
        f"{SMOKE_SUBMITTED} ({', '.join(names)}: made with SMOKE_TEST = True, {SMOKE['train_images']:,} images "
        f"and at most {SMOKE['max_epochs']} epochs); smoke-test results earn no points."
    )


@dataclass
class Score:
    """Points earned, out of ``max_points``, and one line per fact measured (for the feedback)."""

    points: float
    max_points: float
    lines: list[str] = field(default_factory=list)
    #: Flags for the class report (the grader adds them to the notebook's flags), e.g. ``claim not reached: ...``.
    flags: list[str] = field(default_factory=list)

    def text(self, smoke_notice: str = "") -> str:
        """The lines and the points; after a student's smoke run (``smoke_notice``, see
        :func:`dnn_course.experiment.smoke_notice`) the smoke thresholds reached instead, and the notice."""
        if smoke_notice:
            return "\n".join(
                self.lines
                + [
                    f"{self.points:g} of {self.max_points:g} of the smoke test's low thresholds reached (not points)",
                    smoke_notice,
                ]
            )
        return "\n".join(self.lines + [f"{self.points:g} of {self.max_points:g} points"])


def _sizes(layers) -> list[int]:
    return [int(layers[0][0].shape[0])] + [int(W.shape[1]) for W, _ in layers]


def _structure(sizes) -> str:
    return "-".join(str(s) for s in sizes)


def _accuracy(layers, activation: str, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(predict_classes(layers, activation, x) == np.asarray(y)))


def _claim_flag(what: str, claimed, measured: float) -> str:
    return (
        f"{CLAIM_NOT_REACHED}: the results file records {claimed} test accuracy for {what}; its saved "
        f"weights measure {measured:.4f}"
    )


def mnist_model_points(
    folder: str | Path,
    x_test: np.ndarray,
    y_test: np.ndarray,
    profile: str = ASSIGNMENT.profiles.default,
    layer_sizes: list[int] | None = None,
) -> Score:
    """2 points if the three saved networks all reach their minimum, 1 if two do, else 0.

    ``folder`` holds ``mnist_results.json`` and ``mnist_model_<activation>.npz``; ``x_test``
    ``(n, 28, 28)``, ``y_test`` ``(n,)``. Each network is measured for what its file name says it is:
    a run counts only if the network has the brief's layers (``layer_sizes``, by default
    :data:`MNIST_LAYER_SIZES`, the same under both profiles), its description names the activation of
    its file name, and, run through the course's forward pass *with that activation*, it reproduces the
    test accuracy the results file records for the run (within :data:`TOLERANCE`; an honest run's
    saved weights reproduce it to 2e-4). A network of another activation saved under this name does not:
    measured with the wrong activation its accuracy changes (the feedback says which activation does
    reproduce it, when one does).
    """
    folder, minimum = Path(folder), MNIST_MINIMUM[profile]
    expected_sizes = list(layer_sizes or MNIST_LAYER_SIZES)
    score = Score(0, ASSIGNMENT.test("test_mnist_accuracies").points)
    try:
        experiment = load_experiment(folder / "mnist_results.json")
    except RecordError as error:
        score.lines.append(str(error))
        return score
    smoke = smoke_runs(experiment)
    if profile == ASSIGNMENT.profiles.default and smoke:
        score.lines.append(_smoke_submitted(smoke))
        return score
    reached = 0
    for name, needed in minimum.items():
        if name not in experiment.runs:
            why = (
                f"diverged ({experiment.diverged[name].message})" if name in experiment.diverged else "no finished run"
            )
            score.lines.append(f"{name}: {why}; the network must reach {needed:.2f}.")
            continue
        file = f"mnist_model_{name}.npz"
        try:
            layers, description = read_weights(folder / file)
        except RecordError as error:
            score.lines.append(f"{name}: {error}")
            continue
        if description.get("info", {}).get("run_id") != experiment.ids.get(name):
            score.lines.append(
                f"{name}: {file} is not the model of the {name} run in "
                "mnist_results.json (a stale file): run the experiment cell again."
            )
            continue
        sizes = _sizes(layers)
        if sizes != expected_sizes:
            why = f"{file} holds a {_structure(sizes)} network, not the brief's {_structure(expected_sizes)}"
            score.lines.append(f"{name}: {why}; not counted.")
            score.flags.append(f"network not as the brief asks: {why}")
            continue
        if str(description.get("activation")) != name:
            why = f"{file} is saved as a {description.get('activation')} network, not a {name} one"
            score.lines.append(f"{name}: {why}; not counted.")
            score.flags.append(f"network not as the brief asks: {why}")
            continue
        measured = _accuracy(layers, name, x_test, y_test)
        claimed = experiment.runs[name].test_acc
        line = (
            f"{name}: {measured:.3f} test accuracy measured on the saved weights "
            f"({len(y_test):,} test images; needed: {needed:.2f})"
        )
        if claimed is None or abs(float(claimed) - measured) > TOLERANCE:
            others = {a: _accuracy(layers, a, x_test, y_test) for a in ACTIVATIONS if a != name}
            flag = _claim_flag(f"the {name} run", claimed, measured)
            for other, accuracy in others.items():  # an activation the weights behave as: it reproduces a record
                own = experiment.runs[other].test_acc if other in experiment.runs else None
                for what, value in (("it", claimed), (f"the {other} run's {own}", own)):
                    if value is not None and abs(float(value) - accuracy) <= TOLERANCE and "(measured as" not in flag:
                        flag += (
                            f" (measured as a {other} network they reproduce {what}: a {other} network saved as {name})"
                        )
            score.lines.append(f"{line}; FLAG: {flag}; not counted.")
            score.flags.append(flag)
            continue
        score.lines.append(line)
        reached += measured >= needed
    score.points = 2 if reached == 3 else 1 if reached == 2 else 0
    if score.points < 2:
        score.lines.append("2 points when all three networks reach their minimum, 1 point when two do.")
    return score


def unseen_training_images(dataset: str, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """Training images of the embedded data (the first 10,000, all the grader has offline) that a run
    with ``settings`` could not have trained on: after a smoke run, those past the smoke settings'
    ``train_images`` (no other recorded cut is taken at its word); otherwise the validation split the notebooks hold out (``train_val_split(..., val_size=0.1, seed=0)``).

    A run trained on the full 60,000 has seen them all; it then does at least as well on them as on the
    test set, so the comparison of :func:`fashion_model_points` never flags it.
    """
    from .datasets import load_dataset, train_val_split

    (x_train, y_train), _ = load_dataset(dataset, verbose=False)
    # only the smoke settings' own cut: any other value is the student's word, and a model trained on
    # everything could name a cut that makes seen images look unseen
    if settings.get("train_images") == SMOKE["train_images"]:
        return x_train[SMOKE["train_images"] :], y_train[SMOKE["train_images"] :]
    _, (x_val, y_val) = train_val_split(x_train, y_train, val_size=0.1, seed=0)
    return x_val, y_val


def _differs_from_settings(sizes: list[int], activation: str, settings: dict) -> str:
    """What of the saved network differs from a recorded run's settings ("" when nothing does)."""
    recorded = settings.get("layer_sizes")
    if recorded is None and isinstance(settings.get("hidden"), list):
        recorded = [784, *settings["hidden"], 10]
    if recorded is not None and list(recorded) != sizes:
        return f"a {_structure(sizes)} network, but the run recorded {_structure(recorded)}"
    if "activation" in settings and str(settings["activation"]) != activation:
        return f"a {activation} network, but the run recorded {settings['activation']}"
    return ""


def fashion_model_points(
    folder: str | Path,
    x_test: np.ndarray,
    y_test: np.ndarray,
    profile: str = ASSIGNMENT.profiles.default,
    unseen: tuple[np.ndarray, np.ndarray] | None = None,
) -> Score:
    """One point at each threshold of :data:`FASHION_THRESHOLDS` reached by ``fashion_model.npz``.

    The model must be the one of a run recorded in ``fashion_results.json``: tied by its run id, with
    the layers and activation of that run's settings, and reproducing the test accuracy the run records
    (within :data:`TOLERANCE`). A model whose test accuracy exceeds by more than :data:`TEST_FIT_MARGIN`
    its accuracy on training images it could not have seen (``unseen``, by default
    :func:`unseen_training_images`) is flagged as fitted to the test images and earns nothing.
    """
    folder, thresholds = Path(folder), FASHION_THRESHOLDS[profile]
    score = Score(0, ASSIGNMENT.test("test_fashion_model_accuracy").points)
    try:
        experiment = load_experiment(folder / "fashion_results.json")
        layers, description = read_weights(folder / "fashion_model.npz")
    except RecordError as error:
        score.lines.append(str(error))
        return score
    info = description.get("info", {})
    name = info.get("name")
    if name not in experiment.runs or info.get("run_id") != experiment.ids.get(name):
        score.lines.append(
            "fashion_model.npz is not the model of any run in fashion_results.json (a stale "
            "file): run the search cell again; it saves the best run's model."
        )
        return score
    if profile == ASSIGNMENT.profiles.default and name in smoke_runs(experiment):
        score.lines.append(_smoke_submitted([name]))
        return score
    sizes, activation = _sizes(layers), str(description.get("activation"))
    if sizes[0] != 784 or sizes[-1] != 10:
        score.lines.append("fashion_model.npz: the network does not map 784 pixels to 10 classes.")
        return score
    differs = _differs_from_settings(sizes, activation, experiment.settings.get(name, {}))
    if differs:
        why = f"fashion_model.npz is not the recorded run {name}: it is {differs}"
        score.lines.append(why + "; not counted.")
        score.flags.append(f"model not among the recorded runs: {why}")
        return score
    measured = _accuracy(layers, activation, x_test, y_test)
    claimed = experiment.runs[name].test_acc
    line = f"{measured:.3f} test accuracy measured on the saved weights of {name} ({len(y_test):,} test images)"
    if claimed is None or abs(float(claimed) - measured) > TOLERANCE:
        flag = _claim_flag(f"run {name}", claimed, measured)
        score.lines.append(f"{line}; FLAG: {flag}; not counted.")
        score.flags.append(flag)
        return score
    x_unseen, y_unseen = (
        unseen if unseen is not None else unseen_training_images("fashion-mnist", experiment.settings.get(name, {}))
    )
    on_unseen = _accuracy(layers, activation, x_unseen, y_unseen)
    if measured > on_unseen + TEST_FIT_MARGIN:
        flag = (
            f"fitted to the test images: {measured:.3f} on the test set but {on_unseen:.3f} on "
            f"{len(y_unseen):,} training images it was not trained on"
        )
        score.lines.append(f"{line}; FLAG: {flag}; not counted.")
        score.flags.append(flag)
        return score
    score.points = int(sum(measured >= t for t in thresholds))
    score.lines.append(line)
    upcoming = [t for t in thresholds if measured < t]
    if upcoming:
        score.lines.append(
            f"{upcoming[0]:.2f} earns the next point (one point at each of "
            f"{', '.join(f'{t:.2f}' for t in thresholds)})."
        )
    return score


#: The scoring functions a :class:`dnn_course.assignment.Measurement` names.
_SCORERS = {"mnist_model_points": mnist_model_points, "fashion_model_points": fashion_model_points}


def measure(
    test: GradedTest,
    folder: str | Path,
    x_test: np.ndarray,
    y_test: np.ndarray,
    profile: str = ASSIGNMENT.profiles.default,
) -> Score:
    """Score the measured ``test`` on the data files in ``folder`` with its measurement's function.

    ``x_test`` ``(n, 28, 28)``, ``y_test`` ``(n,)``: the test images of the measurement's dataset.
    """
    if test.measurement is None or test.measurement.function not in _SCORERS:
        raise ValueError(f"{test.grade_id} names no scoring function of this module ({', '.join(_SCORERS)})")
    return _SCORERS[test.measurement.function](folder, x_test, y_test, profile)
