"""The experiments' accuracy points come from the saved weights, measured with the course's forward pass.

:mod:`dnn_course.experiment_grades` scores notebook 05's three saved networks
and notebook 06's saved model; the grader calls it outside the student's
kernel and the notebooks' test cells call it to show the student the same
figures. Claims that the weights do not reach are flagged, a model file from
another run than the results file is refused, and the graded notebooks read
(never train) in grading mode.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from dnn_course.assignment import profile_environment
from dnn_course.datasets import load_dataset, train_val_split
from dnn_course.evaluate import predict_classes
from dnn_course.experiment import run_plan
from dnn_course.experiment_grades import (
    CLAIM_NOT_REACHED,
    FASHION_THRESHOLDS,
    SMOKE_SUBMITTED,
    fashion_model_points,
    mnist_model_points,
)
from dnn_course.model_builder import build_classifier
from dnn_course.records import read_weights
from dnn_course.training import train

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions" / "dnn_hw"


def _search(folder: Path, reference, dataset: str, plan: dict, model_file, results: str):
    """Run ``plan`` with the reference on 3,000 images, as the notebooks do; return the test set."""
    data = load_dataset(dataset, verbose=False)
    (x_train, y_train), (x_test, y_test) = data
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x_train[:3000], y_train[:3000], val_size=0.1, seed=0)

    def train_run(name, settings):
        sizes = [784, *settings["hidden"], 10]
        model = build_classifier(reference, sizes, settings["activation"], seed=0, dtype=np.float32)
        history = train(
            model,
            x_tr,
            y_tr,
            x_val=x_val,
            y_val=y_val,
            x_test=x_test,
            y_test=y_test,
            epochs=settings["epochs"],
            learning_rate=settings["learning_rate"],
            batch_size=128,
            seed=0,
            dtype=np.float32,
            progress=False,
            data_description=data.description,
        )
        history.config.update(hidden=settings["hidden"], activation=settings["activation"])
        return history, model, sizes, settings["activation"]

    experiment = run_plan(plan, train_run, folder / results, model_file, data.description, log=lambda *_: None)
    return experiment, x_test, y_test


#: The layers of the fast runs below (the brief's 784-500-500-10 is checked by name where it matters).
SMALL = [784, 32, 10]


@pytest.fixture(scope="module")
def mnist_runs(tmp_path_factory, reference):
    folder = tmp_path_factory.mktemp("mnist")
    plan = {
        a: dict(hidden=[32], activation=a, epochs=3, learning_rate=lr)
        for a, lr in (("sigmoid", 0.5), ("relu", 0.1), ("tanh", 0.1))
    }
    experiment, x_test, y_test = _search(
        folder, reference, "mnist", plan, lambda name, rid: folder / f"mnist_model_{name}.npz", "mnist_results.json"
    )
    return folder, experiment, x_test, y_test


def test_the_course_forward_pass_agrees_with_the_reference_model(mnist_runs, reference):
    folder, experiment, x_test, y_test = mnist_runs
    for name, history in experiment.runs.items():
        layers, description = read_weights(folder / f"mnist_model_{name}.npz")
        measured = float(np.mean(predict_classes(layers, description["activation"], x_test) == y_test))
        assert measured == pytest.approx(history.test_acc, abs=2e-4), name  # float32 sums in another order
        assert description["info"]["run_id"] == experiment.ids[name]


def test_mnist_points_measure_the_saved_networks(mnist_runs, tmp_path):
    folder, experiment, x_test, y_test = mnist_runs
    accuracies = {n: h.test_acc for n, h in experiment.runs.items()}
    assert min(accuracies.values()) > 0.60 and accuracies["sigmoid"] < 0.85  # the thresholds below bite
    score = mnist_model_points(folder, x_test, y_test, "smoke", layer_sizes=SMALL)
    assert (score.points, score.max_points) == (2, 2), score.text()
    assert "FLAG" not in score.text() and score.flags == []
    assert f"relu: {accuracies['relu']:.3f} test accuracy measured on the saved weights" in score.text()
    reached = sum(accuracies[n] >= m for n, m in {"sigmoid": 0.40, "relu": 0.85, "tanh": 0.85}.items())
    brief = mnist_model_points(folder, x_test, y_test, "brief", layer_sizes=SMALL)
    assert brief.points == {3: 2, 2: 1}.get(reached, 0)
    # the tanh model swapped for the relu one: not the model of the tanh run (a stale or swapped file)
    stale = tmp_path / "stale"
    shutil.copytree(folder, stale)
    shutil.copy(stale / "mnist_model_relu.npz", stale / "mnist_model_tanh.npz")
    score = mnist_model_points(stale, x_test, y_test, "smoke", layer_sizes=SMALL)
    assert score.points == 1 and "is not the model of the tanh run" in score.text()


def test_an_untrained_model_with_inflated_claims_earns_nothing_and_is_flagged(mnist_runs, tmp_path, reference):
    folder, experiment, x_test, y_test = mnist_runs
    forged = tmp_path / "forged"
    shutil.copytree(folder, forged)
    for name in ("sigmoid", "relu", "tanh"):  # fresh weights, same run ids and claims
        layers, description = read_weights(forged / f"mnist_model_{name}.npz")
        untrained = build_classifier(reference, [784, 32, 10], name, seed=1, dtype=np.float32)
        from dnn_course.records import save_model

        save_model(forged / f"mnist_model_{name}.npz", untrained, [784, 32, 10], name, info=description["info"])
    score = mnist_model_points(forged, x_test, y_test, "smoke", layer_sizes=SMALL)
    assert score.points == 0
    assert score.text().count(f"FLAG: {CLAIM_NOT_REACHED}: the results file records") == 3  # none reaches its claim
    assert [f.split(":")[0] for f in score.flags] == [CLAIM_NOT_REACHED] * 3  # one flag, one wording


def _resave(source: Path, target: Path, activation: str | None = None, info: dict | None = None) -> None:
    """Write the weights of ``source`` to ``target`` with another activation or description info."""
    import io
    import json

    with np.load(source) as archive:
        arrays = {key: archive[key] for key in archive.files}
    description = json.loads(str(arrays["description"]))
    description["activation"] = activation or description["activation"]
    description["info"] = info if info is not None else description["info"]
    arrays["description"] = np.array(json.dumps(description))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    target.write_bytes(buffer.getvalue())


def test_a_network_of_another_activation_saved_as_a_run_earns_nothing_and_says_what(mnist_runs, tmp_path):
    """Issue 21: the ReLU network saved as the sigmoid run (its description and run id the sigmoid run's)
    measures, with sigmoid, not what the sigmoid run records; with ReLU it does: named in the flag."""
    folder, experiment, x_test, y_test = mnist_runs
    swapped = tmp_path / "swapped"
    shutil.copytree(folder, swapped)
    sigmoid_info = read_weights(folder / "mnist_model_sigmoid.npz")[1]["info"]
    _resave(folder / "mnist_model_relu.npz", swapped / "mnist_model_sigmoid.npz", "sigmoid", sigmoid_info)
    score = mnist_model_points(swapped, x_test, y_test, "smoke", layer_sizes=SMALL)
    assert score.points == 1, score.text()  # relu and tanh still count; the sigmoid run does not
    assert len(score.flags) == 1 and score.flags[0].startswith(
        f"{CLAIM_NOT_REACHED}: the results file records "
        f"{experiment.runs['sigmoid'].test_acc} test accuracy "
        "for the sigmoid run"
    )
    assert (
        f"(measured as a relu network they reproduce the relu run's {experiment.runs['relu'].test_acc}: "
        "a relu network saved as sigmoid)"
    ) in score.flags[0]
    assert "sigmoid: " in score.text() and "not counted." in score.text()
    # the same weights whose description still says relu: refused by name, before any measurement
    _resave(folder / "mnist_model_relu.npz", swapped / "mnist_model_sigmoid.npz", "relu", sigmoid_info)
    score = mnist_model_points(swapped, x_test, y_test, "smoke", layer_sizes=SMALL)
    assert score.points == 1
    assert score.flags == [
        "network not as the brief asks: mnist_model_sigmoid.npz is saved as a relu network, not a sigmoid one"
    ]


def test_a_network_of_other_layers_than_the_briefs_earns_nothing(mnist_runs):
    """Issue 21: 784-32-10 networks (honest in every other way) are not the brief's 784-500-500-10, under
    either profile (the smoke test keeps the brief's layers)."""
    folder, experiment, x_test, y_test = mnist_runs
    for profile in ("smoke", "brief"):
        score = mnist_model_points(folder, x_test, y_test, profile)
        assert score.points == 0
        assert score.flags == [
            f"network not as the brief asks: mnist_model_{a}.npz holds a 784-32-10 network, not "
            "the brief's 784-500-500-10"
            for a in ("sigmoid", "relu", "tanh")
        ]


@pytest.fixture(scope="module")
def fashion_runs(tmp_path_factory, reference):
    folder = tmp_path_factory.mktemp("fashion")
    plan = {f"784-{h}-10": dict(hidden=[h], activation="relu", epochs=4, learning_rate=0.1) for h in (16, 48)}
    experiment, x_test, y_test = _search(
        folder, reference, "fashion-mnist", plan, lambda name, rid: folder / f"{rid}.npz", "fashion_results.json"
    )
    return folder, experiment, x_test, y_test


def test_a_model_of_no_recorded_configuration_earns_nothing(fashion_runs, tmp_path):
    """Issue 21: the saved model must be one of the recorded runs: its layers and activation are that run's."""
    folder, experiment, x_test, y_test = fashion_runs
    shutil.copy(folder / "fashion_results.json", tmp_path)
    info = read_weights(folder / f"{experiment.ids['784-16-10']}.npz")[1]["info"]
    # the 48-unit run's weights, claiming to be the 16-unit run (its name and run id)
    _resave(folder / f"{experiment.ids['784-48-10']}.npz", tmp_path / "fashion_model.npz", info=info)
    score = fashion_model_points(tmp_path, x_test, y_test)
    assert score.points == 0
    assert score.flags == [
        "model not among the recorded runs: fashion_model.npz is not the recorded run 784-16-10: "
        "it is a 784-48-10 network, but the run recorded 784-16-10"
    ]
    _resave(folder / f"{experiment.ids['784-16-10']}.npz", tmp_path / "fashion_model.npz", activation="tanh")
    assert fashion_model_points(tmp_path, x_test, y_test).flags == [
        "model not among the recorded runs: fashion_model.npz is not the recorded run 784-16-10: it is a tanh "
        "network, but the run recorded relu"
    ]


def test_a_model_fitted_to_the_test_images_is_flagged_and_earns_nothing(fashion_runs, tmp_path, reference):
    """Issue 21: a model trained on the test images (its record honest about it) does far better on them
    than on training images it never saw (the validation split of the embedded data): flagged, 0 points.
    The honest model of the same run is not."""
    from dnn_course.experiment_grades import TEST_FIT_MARGIN, unseen_training_images

    folder, experiment, x_test, y_test = fashion_runs
    name = "784-48-10"
    x_unseen, y_unseen = unseen_training_images("fashion-mnist", experiment.settings[name])
    assert len(y_unseen) == 1000
    shutil.copy(folder / f"{experiment.ids[name]}.npz", tmp_path / "fashion_model.npz")
    shutil.copy(folder / "fashion_results.json", tmp_path)
    honest = fashion_model_points(tmp_path, x_test, y_test)
    assert honest.flags == []
    assert honest.points == sum(experiment.runs[name].test_acc >= t for t in FASHION_THRESHOLDS["brief"])
    assert "fitted" not in honest.text()
    # a wider network fitted to the test images, recorded as the run (the results file edited to match it)
    model = build_classifier(reference, [784, 256, 10], "relu", seed=0, dtype=np.float32)
    train(model, x_test, y_test, epochs=40, learning_rate=0.2, batch_size=128, seed=0, dtype=np.float32, progress=False)
    from dnn_course.records import save_model

    save_model(
        tmp_path / "fashion_model.npz",
        model,
        [784, 256, 10],
        "relu",
        info=read_weights(folder / f"{experiment.ids[name]}.npz")[1]["info"],
    )
    on_test = float(np.mean(predict_classes(read_weights(tmp_path / "fashion_model.npz")[0], "relu", x_test) == y_test))
    import json

    results = json.loads((tmp_path / "fashion_results.json").read_text())
    results["runs"][name]["test_acc"] = on_test
    results["settings"][name]["hidden"] = [256]
    (tmp_path / "fashion_results.json").write_text(json.dumps(results))
    score = fashion_model_points(tmp_path, x_test, y_test)
    assert score.points == 0, score.text()
    assert len(score.flags) == 1 and score.flags[0].startswith(
        f"fitted to the test images: {on_test:.3f} on the test set but "
    )
    on_unseen = float(score.flags[0].split(" but ")[1].split(" ")[0])
    assert on_test > on_unseen + TEST_FIT_MARGIN


def test_fashion_points_name_what_was_measured_and_what_the_next_point_needs(tmp_path, reference):
    plan = {f"784-{h}-10": dict(hidden=[h], activation="relu", epochs=4, learning_rate=0.1) for h in (16, 48)}
    experiment, x_test, y_test = _search(
        tmp_path, reference, "fashion-mnist", plan, lambda name, rid: tmp_path / f"{rid}.npz", "fashion_results.json"
    )
    best = max(experiment.runs, key=lambda n: experiment.runs[n].val_acc[-1])
    shutil.copy(tmp_path / f"{experiment.ids[best]}.npz", tmp_path / "fashion_model.npz")
    measured = experiment.runs[best].test_acc
    score = fashion_model_points(tmp_path, x_test, y_test, "brief")
    expected = sum(measured >= t for t in (0.80, 0.83, 0.85, 0.87))
    assert score.points == expected < 4
    assert f"{measured:.3f} test accuracy measured on the saved weights of {best}" in score.text()
    next_threshold = next(t for t in (0.80, 0.83, 0.85, 0.87) if measured < t)
    assert f"{next_threshold:.2f} earns the next point" in score.text()
    # a model file that is not a model, or of no recorded run, earns nothing and says why
    (tmp_path / "fashion_model.npz").write_bytes(b"not a model")
    assert "is not a model file written by save_model" in fashion_model_points(tmp_path, x_test, y_test).text()
    other = build_classifier(reference, [784, 16, 10], "relu", seed=3, dtype=np.float32)
    from dnn_course.records import save_model

    save_model(tmp_path / "fashion_model.npz", other, [784, 16, 10], "relu", info={"name": best, "run_id": "0" * 12})
    stale = fashion_model_points(tmp_path, x_test, y_test)
    assert stale.points == 0 and "not the model of any run" in stale.text()


def test_forward_pass_is_stable_for_huge_weights():
    layers = [
        (np.full((4, 3), 1e30, np.float32), np.zeros(3, np.float32)),
        (np.eye(3, 10, dtype=np.float32), np.zeros(10, np.float32)),
    ]
    with np.errstate(all="raise"):
        for activation in ("sigmoid", "tanh", "relu"):
            predicted = predict_classes(layers, activation, -np.ones((2, 4), np.float32))
            assert predicted.shape == (2,)


def _run_graded(folder: Path, notebook: str, profile: str) -> dict[str, nbformat.NotebookNode]:
    """Execute ``notebook`` in ``folder`` as the grader does (grading mode); return its test cells."""
    for name in SOLUTIONS.glob("0[1-4]*.ipynb"):
        shutil.copy2(name, folder / name.name)
    nb = nbformat.read(SOLUTIONS / notebook, as_version=4)
    client = NotebookClient(nb, timeout=300, allow_errors=True, resources={"metadata": {"path": str(folder)}})
    with pytest.MonkeyPatch.context() as patch:  # the kernel inherits this environment
        for variable, value in profile_environment(profile).items():
            patch.setenv(variable, value)
        patch.setenv("MPLBACKEND", "Agg")
        client.execute()
    return {
        c.metadata.nbgrader["grade_id"]: c
        for c in nb.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
    }


def _error(cell) -> str | None:
    return next(("\n".join(o.traceback) for o in cell.outputs if o.output_type == "error"), None)


@pytest.mark.slow
def test_graded_05_reads_the_saved_runs_and_checks_the_profiles_settings(tmp_path, reference):
    """The notebook in grading mode trains nothing: runs with other settings fail the settings test."""
    from dnn_course.experiment import SMOKE

    data = load_dataset("mnist", verbose=False)
    (x_train, y_train), (x_test, y_test) = data
    x_train, y_train = x_train[: SMOKE["train_images"]], y_train[: SMOKE["train_images"]]
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x_train, y_train, val_size=0.1, seed=0)
    settings = dict(
        layer_sizes=[784, 500, 500, 10],
        epochs=SMOKE["max_epochs"],
        learning_rate=SMOKE["learning_rate"],
        batch_size=128,
        reg_lambda=1e-8,
        train_images=SMOKE["train_images"],
    )

    def train_run(activation, s):
        model = build_classifier(reference, s["layer_sizes"], activation, seed=0, dtype=np.float32)
        history = train(
            model,
            x_tr,
            y_tr,
            x_val=x_val,
            y_val=y_val,
            x_test=x_test,
            y_test=y_test,
            epochs=s["epochs"],
            learning_rate=s["learning_rate"],
            batch_size=128,
            reg_lambda=s["reg_lambda"],
            seed=0,
            dtype=np.float32,
            progress=False,
            data_description=data.description,
        )
        return history, model, s["layer_sizes"], activation

    run_plan(
        {a: settings for a in ("sigmoid", "relu", "tanh")},
        train_run,
        tmp_path / "mnist_results.json",
        lambda a, rid: tmp_path / f"mnist_model_{a}.npz",
        data.description,
        log=lambda *_: None,
    )
    cells = _run_graded(tmp_path, "05_mnist_activations.ipynb", "smoke")
    assert {g: _error(c) for g, c in cells.items()} == {"test_mnist_runs_recorded": None, "test_mnist_accuracies": None}
    result = [o for o in cells["test_mnist_accuracies"].outputs if o.output_type == "execute_result"][0]
    assert float(result.data["text/plain"]) == 2.0
    brief = _run_graded(tmp_path, "05_mnist_activations.ipynb", "brief")
    # smoke-test results graded with the brief's profile: named as such, and no points (issue 18)
    assert "smoke-test results submitted: run with SMOKE_TEST = False. 3 of the recorded runs" in _error(
        brief["test_mnist_runs_recorded"]
    )
    assert _error(brief["test_mnist_accuracies"]) is None
    result = [o for o in brief["test_mnist_accuracies"].outputs if o.output_type == "execute_result"][0]
    assert float(result.data["text/plain"]) == 0.0
    printed = "".join(o.get("text", "") for o in brief["test_mnist_accuracies"].outputs if o.output_type == "stream")
    assert "smoke-test results submitted: run with SMOKE_TEST = False (sigmoid, relu, tanh: made with" in printed


@pytest.mark.slow
def test_smoke_results_graded_with_the_brief_profile_earn_nothing_and_say_so(tmp_path, reference):
    """Notebook 06's smoke-test results, graded for a real term: 0 for the recorded search (it once earned 2 of 2
    with no word) and 0 for the model, each saying what was submitted; the smoke profile grades them as before."""
    from dnn_course.experiment import SMOKE

    plan = {
        f"784-{h}-10 ReLU, 5 ep": dict(
            hidden=[h],
            activation="relu",
            epochs=5,
            learning_rate=0.1,
            batch_size=128,
            reg_lambda=0.0,
            train_images=SMOKE["train_images"],
        )
        for h in (16, 32, 48)
    }
    (tmp_path / "fashion_runs").mkdir()
    experiment, x_test, y_test = _search(
        tmp_path,
        reference,
        "fashion-mnist",
        plan,
        lambda name, rid: tmp_path / "fashion_runs" / f"{rid}.npz",
        "fashion_results.json",
    )
    best = max(experiment.runs, key=lambda n: experiment.runs[n].val_acc[-1])
    shutil.copy(tmp_path / "fashion_runs" / f"{experiment.ids[best]}.npz", tmp_path / "fashion_model.npz")
    measured = experiment.runs[best].test_acc
    reached = sum(measured >= t for t in FASHION_THRESHOLDS["smoke"])
    assert reached >= 2  # points under the smoke profile, to lose under the brief's

    smoke = fashion_model_points(tmp_path, x_test, y_test, "smoke")
    assert smoke.points == reached and SMOKE_SUBMITTED not in smoke.text()
    brief = fashion_model_points(tmp_path, x_test, y_test, "brief")
    assert (brief.points, brief.max_points) == (0, 4)
    assert brief.lines == [
        f"{SMOKE_SUBMITTED} ({best}: made with SMOKE_TEST = True, 2,000 images and at most 5 "
        "epochs); smoke-test results earn no points."
    ]

    graded = _run_graded(tmp_path, "06_fashion_tuning.ipynb", "smoke")
    assert {g: _error(c) for g, c in graded.items()} == {
        "test_fashion_search_recorded": None,
        "test_fashion_model_accuracy": None,
    }
    graded = _run_graded(tmp_path, "06_fashion_tuning.ipynb", "brief")
    error = _error(graded["test_fashion_search_recorded"])
    assert "smoke-test results submitted: run with SMOKE_TEST = False. 3 of the recorded runs were made " in error
    assert "which earn no points: set SMOKE_TEST = False in the first code cell, run all cells again" in error
    result = [o for o in graded["test_fashion_model_accuracy"].outputs if o.output_type == "execute_result"][0]
    assert float(result.data["text/plain"]) == 0.0


def test_unseen_images_follow_the_smoke_settings_cut_only_never_a_recorded_one():
    """A results file could record any ``train_images`` to make images it trained on count as unseen:
    only the smoke settings' own cut is taken, any other value gets the notebooks' validation split."""
    from dnn_course.datasets import load_dataset, train_val_split
    from dnn_course.experiment import SMOKE
    from dnn_course.experiment_grades import unseen_training_images

    (x_train, y_train), _ = load_dataset("fashion-mnist", verbose=False)
    _, (x_val, y_val) = train_val_split(x_train, y_train, val_size=0.1, seed=0)
    x_smoke, y_smoke = unseen_training_images("fashion-mnist", {"train_images": SMOKE["train_images"]})
    assert np.array_equal(x_smoke, x_train[SMOKE["train_images"] :]) and np.array_equal(y_smoke, y_train[2000:])
    for claimed in (1, 5000, None, "2000", [2000]):
        x_unseen, y_unseen = unseen_training_images("fashion-mnist", {"train_images": claimed})
        assert np.array_equal(x_unseen, x_val) and np.array_equal(y_unseen, y_val), claimed
