"""run_plan keeps every finished run: interrupt and resume, divergence mid-search, settings changes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dnn_course.assignment import PROFILE_VARIABLE, profile_environment
from dnn_course.experiment import experiment_profile, load_experiment, run_id, run_plan, set_parameters
from dnn_course.model_builder import build_classifier
from dnn_course.records import read_weights
from dnn_course.training import History, TrainingDivergedError

DATA = "tiny test data"


class Trainer:
    """A stand-in for a notebook's train_run: records calls; diverges or is interrupted on request."""

    def __init__(self, impl, diverge=(), interrupt=()):
        self.impl, self.diverge, self.interrupt, self.calls = impl, set(diverge), set(interrupt), []

    def __call__(self, name, settings):
        self.calls.append(name)
        if name in self.interrupt:
            raise KeyboardInterrupt
        if name in self.diverge:
            raise TrainingDivergedError(f"loss became nan in epoch 2 of {name}", epoch=2, batch=3, loss=float("nan"))
        model = build_classifier(self.impl, [784, 8, 10], "relu", seed=0, dtype=np.float32)
        acc = settings["learning_rate"]
        history = History(
            train_loss=[1.0],
            train_acc=[acc],
            val_acc=[acc],
            test_acc=acc,
            epoch_seconds=[0.1],
            config=dict(settings),
            data_description=DATA,
        )
        return history, model, [784, 8, 10], "relu"


PLAN = {name: {"learning_rate": lr, "epochs": 1} for name, lr in (("a", 0.1), ("b", 0.2), ("c", 0.3))}


def _model_file(folder):
    return lambda name, rid: folder / f"{name}-{rid}.npz"


def test_a_divergence_mid_search_is_recorded_and_the_search_goes_on(tmp_path, reference):
    trainer = Trainer(reference, diverge={"b"})
    experiment = run_plan(PLAN, trainer, tmp_path / "r.json", _model_file(tmp_path), DATA, log=lambda *_: None)
    assert trainer.calls == ["a", "b", "c"]
    assert sorted(experiment.runs) == ["a", "c"] and list(experiment.diverged) == ["b"]
    assert experiment.summary() == "2 runs finished, 1 diverged"
    again = load_experiment(tmp_path / "r.json")
    assert again.summary() == "2 runs finished, 1 diverged"
    assert "loss became nan in epoch 2" in again.diverged["b"].message


def test_an_interrupted_search_keeps_what_finished_and_resumes_where_it_stopped(tmp_path, reference):
    said = []
    with pytest.raises(KeyboardInterrupt):
        run_plan(
            PLAN, Trainer(reference, interrupt={"b"}), tmp_path / "r.json", _model_file(tmp_path), DATA, log=said.append
        )
    assert list(load_experiment(tmp_path / "r.json").runs) == ["a"]
    assert "not run yet: b, c" in said[-1]
    trainer = Trainer(reference)
    experiment = run_plan(PLAN, trainer, tmp_path / "r.json", _model_file(tmp_path), DATA, log=said.append)
    assert trainer.calls == ["b", "c"]  # a was kept
    assert list(experiment.runs) == ["a", "b", "c"]
    assert any("a: already done with these settings" in line for line in said)


def test_changed_settings_or_start_over_train_again_and_models_carry_their_run_id(tmp_path, reference):
    run_plan(PLAN, Trainer(reference), tmp_path / "r.json", _model_file(tmp_path), DATA, log=lambda *_: None)
    changed = dict(PLAN, b={"learning_rate": 0.25, "epochs": 1})
    trainer = Trainer(reference)
    experiment = run_plan(changed, trainer, tmp_path / "r.json", _model_file(tmp_path), DATA, log=lambda *_: None)
    assert trainer.calls == ["b"]
    rid = run_id("b", changed["b"], DATA)
    assert experiment.ids["b"] == rid
    assert read_weights(tmp_path / f"b-{rid}.npz")[1]["info"]["run_id"] == rid
    trainer = Trainer(reference)
    run_plan(changed, trainer, tmp_path / "r.json", _model_file(tmp_path), DATA, start_over=True, log=lambda *_: None)
    assert trainer.calls == ["a", "b", "c"]


def test_a_run_whose_weights_are_gone_is_trained_again(tmp_path, reference):
    run_plan(PLAN, Trainer(reference), tmp_path / "r.json", _model_file(tmp_path), DATA, log=lambda *_: None)
    (tmp_path / f"c-{run_id('c', PLAN['c'], DATA)}.npz").unlink()
    trainer = Trainer(reference)
    run_plan(PLAN, trainer, tmp_path / "r.json", _model_file(tmp_path), DATA, log=lambda *_: None)
    assert trainer.calls == ["c"]


def test_a_corrupt_results_file_is_reported_and_the_plan_runs(tmp_path, reference):
    (tmp_path / "r.json").write_text("{not json")
    said = []
    experiment = run_plan(PLAN, Trainer(reference), tmp_path / "r.json", _model_file(tmp_path), DATA, log=said.append)
    assert len(experiment.runs) == 3 and "Ignoring r.json" in said[0]
    assert json.loads((tmp_path / "r.json").read_text())["format"] == "dnn-course-runs/2"


def test_the_experiment_profile_comes_only_from_the_graders_environment(monkeypatch):
    for variable in (PROFILE_VARIABLE,):
        monkeypatch.delenv(variable, raising=False)
    assert experiment_profile() == ""  # a student's run: it trains
    for profile in ("brief", "smoke"):
        for variable, value in profile_environment(profile).items():
            monkeypatch.setenv(variable, value)
        assert experiment_profile() == profile
    monkeypatch.setenv(PROFILE_VARIABLE, "anything else")
    assert experiment_profile() == "brief"
    monkeypatch.setenv(PROFILE_VARIABLE, "")  # set, but empty: the notebooks train (the course's own tests)
    assert experiment_profile() == ""
    with pytest.raises(ValueError, match="unknown experiment profile 'quick': use one of brief, smoke"):
        profile_environment("quick")


def test_set_parameters_edits_the_parameters_cell_only(tmp_path):
    import shutil
    from pathlib import Path

    notebook = tmp_path / "05.ipynb"
    shutil.copy(Path(__file__).resolve().parents[1] / "exercises/dnn_hw/05_mnist_activations.ipynb", notebook)
    set_parameters(notebook, SMOKE_TEST=True, START_OVER=True)
    cell = next(c for c in json.loads(notebook.read_text())["cells"] if "parameters" in c["metadata"].get("tags", []))
    source = "".join(cell["source"])
    assert "SMOKE_TEST = True " in source and "START_OVER = True " in source and "USE_FULL_DATA = False " in source
    with pytest.raises(ValueError, match="does not assign EPOCHS"):
        set_parameters(notebook, EPOCHS=3)
