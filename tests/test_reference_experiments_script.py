"""scripts/run_reference_experiments.py in --quick mode: the whole pipeline on a few hundred images.

The real runs take hours; this checks, in seconds, that the script trains the
reference, ranks the Fashion-MNIST search by validation accuracy only, retrains
the winner for its best epoch count, and writes JSON files the book can read
back into ``History`` objects.
"""

from __future__ import annotations

import json

import pytest

from dnn_course.reference import solutions_dir
from dnn_course.training import History
from scripts import run_reference_experiments as script

pytestmark = pytest.mark.skipif(
    not (solutions_dir() / "04_model_l2.ipynb").exists(),
    reason="the reference experiments need the reference solution in solutions/dnn_hw",
)


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    """Run the quick mode once on the embedded data; returns (module, paths, output directory)."""
    out = tmp_path_factory.mktemp("results")
    paths = script.main(["--quick", "--data", "embedded", "--out", str(out), "--threads", "1"])
    return script, paths, out


def test_writes_one_file_per_experiment(quick_results):
    _, paths, out = quick_results
    assert sorted(p.name for p in paths) == ["fashion_tuning_embedded.json", "mnist_activations_embedded.json"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temporary files left


def test_mnist_file_has_three_runs_with_full_histories(quick_results):
    script, _, out = quick_results
    result = json.loads((out / "mnist_activations_embedded.json").read_text())
    assert result["complete"] is True and result["quick"] is True
    assert "embedded" in result["data"].lower() or "10,000" in result["data"] or "10000" in result["data"]
    assert result["settings"]["learning_rate"] == 0.001 and result["settings"]["reg_lambda"] == 1e-8
    assert result["settings"]["n_train"] == script.QUICK["n_train"]
    assert list(result["runs"]) == ["sigmoid", "relu", "tanh"]
    assert result["machine"]["numpy"] and result["machine"]["blas"]
    for activation, run in result["runs"].items():
        history = History.from_dict(run["history"])
        assert history.epochs == script.QUICK["epochs"]
        assert len(history.val_acc) == script.QUICK["epochs"]
        assert history.config["n_train"] == script.QUICK["n_train"]
        assert history.config["dtype"] == "float32"
        assert 0.0 <= run["test_acc"] <= 1.0 and run["test_acc"] == history.test_acc
        assert run["seconds"] > 0
        assert activation.lower() in run["structure"].lower()


def test_fashion_search_ranks_by_validation_and_retrains_the_best(quick_results):
    script, _, out = quick_results
    result = json.loads((out / "fashion_tuning_embedded.json").read_text())
    assert result["complete"] is True
    search = result["search"]
    assert len(search) == 5
    for candidate in search:
        history = History.from_dict(candidate["history"])
        stages = candidate.get("schedule") or [[script.QUICK["search_epochs"], candidate["learning_rate"]]]
        assert history.epochs == sum(epochs for epochs, _ in stages)
        assert len(history.val_acc) == len(history.epoch_seconds) == history.epochs
        assert candidate["best_val_acc"] == max(history.val_acc)
        assert candidate["best_epoch"] == history.val_acc.index(max(history.val_acc)) + 1
    best_vals = [search[k]["best_val_acc"] for k in result["top3"]]
    assert best_vals == sorted(best_vals, reverse=True)
    assert best_vals[0] == max(c["best_val_acc"] for c in search)
    assert len(set(result["top3"])) == 3
    # the split: validation images come out of the training images, the test set is separate
    settings = result["settings"]
    assert settings["n_train"] + settings["n_val"] == settings["n_train_final"] == script.QUICK["n_train"]
    final, winner = result["final"], search[result["top3"][0]]
    assert final["label"] == winner["label"]
    assert final["epochs"] == winner["best_epoch"]
    assert History.from_dict(final["history"]).epochs == final["epochs"]
    assert final["n_train"] == script.QUICK["n_train"]
    assert 0.0 <= final["test_acc"] <= 1.0


def test_runs_from_separate_invocations_are_merged_into_one_file(tmp_path):
    common = ["--quick", "--only", "mnist", "--data", "embedded", "--out", str(tmp_path), "--threads", "1"]
    path = tmp_path / "mnist_activations_embedded.json"
    script.main([*common, "--activation", "tanh"])
    first = json.loads(path.read_text())
    assert list(first["runs"]) == ["tanh"] and first["complete"] is False
    script.main([*common, "--activation", "sigmoid"])
    script.main([*common, "--activation", "relu"])
    merged = json.loads(path.read_text())
    assert list(merged["runs"]) == ["sigmoid", "relu", "tanh"]  # the brief's order, whatever the run order
    assert merged["complete"] is True
    assert merged["runs"]["tanh"] == first["runs"]["tanh"]  # earlier runs are kept as they were
    assert merged["seconds_total"] == pytest.approx(sum(run["seconds"] for run in merged["runs"].values()))


def test_a_file_from_other_settings_is_replaced_not_merged(tmp_path):
    path = tmp_path / "mnist_activations_embedded.json"
    stale = {
        "settings": {"epochs": 1},
        "data": "other",
        "quick": True,
        "dtype": "float32",
        "seed": 0,
        "runs": {"sigmoid": {"seconds": 1.0}},
    }
    path.write_text(json.dumps(stale))
    script.main(["--quick", "--only", "mnist", "--data", "embedded", "--out", str(tmp_path), "--activation", "relu"])
    result = json.loads(path.read_text())
    assert list(result["runs"]) == ["relu"]
    assert result["settings"]["epochs"] == script.QUICK["epochs"]


def test_fashion_final_only_refuses_to_rank_an_incomplete_search(tmp_path):
    common = ["--quick", "--only", "fashion", "--data", "embedded", "--out", str(tmp_path), "--threads", "1"]
    script.main([*common, "--candidate", "2"])
    with pytest.raises(SystemExit, match=r"candidates \[1, 3, 4, 5\] have no result"):
        script.main([*common, "--final-only"])
    result = json.loads((tmp_path / "fashion_tuning_embedded.json").read_text())
    assert result["search"][0] is None and result["search"][1]["label"]
    assert result["final"] is None and result["complete"] is False


def test_learning_rate_stages_continue_one_model_and_one_history(tmp_path):
    candidate = {"learning_rate": 0.1, "schedule": [[3, 0.1], [2, 0.01]]}
    assert script.learning_rate_stages(candidate, 30) == [(3, 0.1), (2, 0.01)]
    assert script.learning_rate_stages(candidate, 30, limit=4) == [
        (3, 0.1),
        (1, 0.01),
    ]  # the final run stops at the best epoch
    assert script.learning_rate_stages(candidate, 30, limit=2) == [(2, 0.1)]
    assert script.learning_rate_stages({"learning_rate": 0.05}, 30) == [(30, 0.05)]
    assert script.learning_rate_stages({"learning_rate": 0.05, "epochs": 60}, 30, limit=7) == [(7, 0.05)]
    common = ["--quick", "--only", "fashion", "--data", "embedded", "--out", str(tmp_path), "--threads", "1"]
    script.main([*common, "--candidate", "5"])
    entry = json.loads((tmp_path / "fashion_tuning_embedded.json").read_text())["search"][4]
    history = History.from_dict(entry["history"])
    assert history.epochs == 4 and history.config["learning_rate_schedule"] == [[2, 0.1], [2, 0.01]]
    assert "then 0.01 (2 epochs)" in entry["label"]
