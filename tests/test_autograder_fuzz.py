"""Seeded random mutations of every kind of submitted file, through the grader's own reading and scoring.

The rule (issue 21): every value read from a submission is checked before use, and a failure while
reading or scoring one file or one test is a flag on that file or test, never an error of the
grader. Each mutation here goes through the host-side functions a grading job calls on that kind
of file (:func:`autograder.job.validate_data_file`, :func:`autograder.job.measure_experiments`,
:func:`dnn_course.records.read_weights`, :func:`autograder.rebuild.read_submitted` and
``rebuild``, :func:`autograder.crosscheck.compare`), and the test that does not depend on the
mutated file keeps its points. A few mutated submissions go through a whole grading run.
"""

from __future__ import annotations

import copy
import csv
import functools
import io
import json
import random
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import crosscheck, job, rebuild, sandbox
from autograder.grading_records import Isolation, JobSpec
from autograder.grading_settings import GradingSettings
from autograder.layout import JobLayout
from dnn_course import records
from dnn_course.assignment import ASSIGNMENT
from dnn_course.datasets import load_dataset, train_val_split
from dnn_course.experiment import run_plan
from dnn_course.experiment_grades import MNIST_LAYER_SIZES
from dnn_course.model_builder import build_classifier
from dnn_course.training import train
from tests.autograder_corpus import students as st

REPO = Path(__file__).resolve().parent.parent
SEED = 2026
MUTATIONS = 25  # per kind of file
MNIST_FILES = ["mnist_results.json", "mnist_model_sigmoid.npz", "mnist_model_relu.npz", "mnist_model_tanh.npz"]
FASHION_FILES = ["fashion_results.json", "fashion_model.npz"]
MEASURED = {
    "mnist": ("05_mnist_activations.ipynb", "test_mnist_accuracies"),
    "fashion": ("06_fashion_tuning.ipynb", "test_fashion_model_accuracy"),
}


# ----------------------------------------------------------------------------- the sound files
def _runs(folder: Path, reference, dataset: str, plan: dict, model_file, results: str) -> None:
    data = load_dataset(dataset, verbose=False)
    (x_train, y_train), (x_test, y_test) = data
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x_train[:2000], y_train[:2000], val_size=0.1, seed=0)

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
            epochs=2,
            learning_rate=settings["learning_rate"],
            batch_size=64,
            seed=0,
            dtype=np.float32,
            progress=False,
            data_description=data.description,
        )
        history.config.update(hidden=settings["hidden"], activation=settings["activation"])
        return history, model, sizes, settings["activation"]

    run_plan(plan, train_run, folder / results, model_file, data.description, log=lambda *_: None)


@pytest.fixture(scope="module")
def sound(tmp_path_factory, reference):
    """A folder of sound experiment files (small smoke-profile runs) and the points they earn."""
    folder = tmp_path_factory.mktemp("sound")
    # 05's networks count only with the brief's layers (experiment_grades.MNIST_LAYER_SIZES)
    plan = {
        a: dict(hidden=list(MNIST_LAYER_SIZES[1:-1]), activation=a, learning_rate=lr)
        for a, lr in (("sigmoid", 0.5), ("relu", 0.1), ("tanh", 0.1))
    }
    _runs(folder, reference, "mnist", plan, lambda name, rid: folder / f"mnist_model_{name}.npz", "mnist_results.json")
    _runs(
        folder,
        reference,
        "fashion-mnist",
        {"run 0": dict(hidden=[16], activation="relu", learning_rate=0.1)},
        lambda name, rid: folder / "fashion_model.npz",
        "fashion_results.json",
    )
    scores = _measure(folder, folder.parent / "baseline")
    assert scores == {"mnist": 2, "fashion": scores["fashion"]} and scores["fashion"] >= 2  # the points to keep
    return folder, scores


@functools.cache
def _dataset(name: str, verbose: bool = False):
    return load_dataset(name, verbose=verbose)


def _measure(origin: Path, jobdir: Path) -> dict[str, float]:
    """What a grading job does with the data files of a submission: validate, copy, measure (smoke)."""
    jobdir.mkdir(exist_ok=True)
    validated = JobLayout(jobdir).validated_dir
    shutil.rmtree(validated, ignore_errors=True)
    validated.mkdir()
    for name in MNIST_FILES + FASHION_FILES:
        problem = job.validate_data_file(origin / name)
        assert problem is None or isinstance(problem, str)
        if problem is None:
            shutil.copy(origin / name, validated / name)
    nb_flags: dict = {}
    spec = JobSpec(
        student_id="fuzz",
        notebooks=tuple(nb for nb, _ in MEASURED.values()),
        timestamp=None,
        token="0" * 16,
        slot=0,
        isolation=Isolation("process", "not used"),
        submitted_dir=str(origin),
        release_dir="",
        master_db="",
        source_dir="",
        settings=replace(GradingSettings(), experiment_profile="smoke"),
        description=ASSIGNMENT,
    )
    with pytest.MonkeyPatch.context() as patch:  # the test images once, not twice per mutation
        patch.setattr(job, "load_dataset", _dataset)
        found = job.measure_experiments(spec, jobdir, nb_flags)
    return {kind: found[key].points for kind, key in MEASURED.items()}


# ----------------------------------------------------------------------------- mutations
def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    how = rng.randrange(4)
    if how == 0:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == 1:  # truncate
        del data[rng.randrange(len(data)) :]
    elif how == 2:  # insert
        at = rng.randrange(len(data))
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:  # repeat a stretch
        at = rng.randrange(len(data))
        data[at:at] = data[at : at + rng.randint(1, 4096)] * rng.randint(2, 50)
    return bytes(data)


def _odd_value(rng: random.Random):
    deep = "x"
    for _ in range(rng.choice([3, 50, 2000])):
        deep = [deep]
    return rng.choice(
        [
            None,
            True,
            -1,
            0,
            2**70,
            1e308,
            float("nan"),
            "",
            "x" * rng.choice([10, 200_000]),
            [],
            {},
            ["run 0"],
            {"a": {"b": [1, 2]}},
            deep,
            [784, "10"],
            [784, 10.5],
            [784, -3, 10],
            [784] + [4096] * 11 + [10],
        ]
    )


def _mutate_json(rng: random.Random, value):
    """``value`` with one node, chosen at random, replaced by a value of another kind."""
    value = copy.deepcopy(value)
    containers, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            containers += [(item, key) for key in item]
            stack += list(item.values())
        elif isinstance(item, list):
            containers += [(item, index) for index in range(len(item))]
            stack += item
    if not containers or rng.random() < 0.05:
        return _odd_value(rng)
    parent, key = rng.choice(containers)
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[key]
    else:
        parent[key] = _odd_value(rng)
    return value


def _dump(value) -> bytes:
    try:
        return json.dumps(value).encode()
    except (RecursionError, ValueError):
        return b"[" * 5000 + b"]" * 5000


def _mutate_npz(rng: random.Random, data: bytes) -> bytes:
    how = rng.randrange(6)
    if how == 0:
        return _mutate_bytes(rng, data)
    with np.load(io.BytesIO(data)) as archive:
        arrays = {key: archive[key] for key in archive.files}
    weights = [key for key in arrays if key != "description"]
    if how == 1:  # the description, mutated as JSON
        arrays["description"] = np.array(_dump(_mutate_json(rng, json.loads(str(arrays["description"])))).decode())
    elif how == 2:  # an array of another kind or shape
        key = rng.choice(weights + ["description"])
        arrays[key] = rng.choice(
            [
                np.array(["a", "b"]),
                np.zeros((3, 3), dtype=bool),
                np.ones(5, dtype=np.int8),
                np.ones((2, 2), dtype=complex),
                np.zeros((1, 2, 3)),
                np.array(3.0),
                np.array([{"evil": 1}], dtype=object),
                np.full(arrays[key].shape, np.nan),
            ]
        )
    elif how == 3:  # a member dropped, or many added
        if rng.random() < 0.5:
            del arrays[rng.choice(weights)]
        else:
            arrays.update({f"extra{i}": np.zeros(2) for i in range(rng.choice([3, 100]))})
    buffer = io.BytesIO()
    if how == 4:  # a member declaring far more than it holds
        with zipfile.ZipFile(buffer, "w") as archive:
            for key, value in arrays.items():
                with archive.open(f"{key}.npy", "w") as member:
                    if key == rng.choice(weights):
                        member.write(np.lib.format.magic(1, 0))
                        header = {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)}
                        np.lib.format.write_array_header_1_0(member, header)
                        member.write(b"\0" * 64)
                    else:
                        np.lib.format.write_array(member, value)
        return buffer.getvalue()
    if how == 5:  # a member of 200 MB of zeros (about 200 kB deflated)
        return _bomb(data, rng.choice(sorted(weights)))
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


@functools.cache
def _bomb(data: bytes, key: str) -> bytes:
    """The model ``data`` with the array ``key`` replaced by 200 MB of zeros (made once per file and key)."""
    with np.load(io.BytesIO(data)) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays[key] = np.zeros(25_000_000)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _mutate(rng: random.Random, name: str, data: bytes) -> bytes:
    if name.endswith(".npz"):
        return _mutate_npz(rng, data)
    if rng.random() < 0.4:
        return _mutate_bytes(rng, data)
    return _dump(_mutate_json(rng, json.loads(data)))


# ----------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("kind", ["mnist", "fashion"])
def test_mutated_experiment_files_cost_only_their_own_test(sound, tmp_path, kind):
    folder, baseline = sound
    other = "fashion" if kind == "mnist" else "mnist"
    names = MNIST_FILES if kind == "mnist" else FASHION_FILES
    rng = random.Random(f"{SEED}-{kind}")
    lowered = 0
    for number in range(MUTATIONS):
        origin = tmp_path / "origin"
        shutil.rmtree(origin, ignore_errors=True)
        shutil.copytree(folder, origin)
        name = rng.choice(names)
        (origin / name).write_bytes(_mutate(rng, name, (folder / name).read_bytes()))
        scores = _measure(origin, tmp_path / "job")
        assert scores[other] == baseline[other], (number, name)
        assert 0 <= scores[kind] <= baseline[kind] or name.endswith(".json"), (number, name)
        lowered += scores[kind] < baseline[kind]
    assert lowered >= MUTATIONS // 4  # the mutations did bite


def test_mutated_models_raise_only_record_errors(sound, tmp_path):
    folder, _ = sound
    rng = random.Random(f"{SEED}-models")
    refused = 0
    for number in range(2 * MUTATIONS):
        path = tmp_path / "mnist_model_relu.npz"
        path.write_bytes(_mutate_npz(rng, (folder / path.name).read_bytes()))
        try:
            layers, description = records.read_weights(path)
        except records.RecordError:
            refused += 1
            continue
        assert all(W.dtype == np.float32 and np.isfinite(W).all() for W, _ in layers), number
        assert isinstance(description["info"], dict) and isinstance(description["activation"], str)
        assert all(isinstance(description["info"].get(k, ""), str) for k in ("name", "run_id"))
    assert refused >= MUTATIONS


def test_mutated_notebooks_are_read_or_unreadable_never_an_error():
    released = st.released(REPO / "exercises" / st.ASSIGNMENT)
    good = st.perfect(REPO / "exercises" / st.ASSIGNMENT, REPO / "solutions" / st.ASSIGNMENT)
    rng = random.Random(f"{SEED}-notebooks")
    outcomes = {"read": 0, "unreadable": 0}
    for _number in range(3 * MUTATIONS):
        name = rng.choice([st.NB1, st.NB2])
        data = st.dumps(good[name])
        data = _mutate_bytes(rng, data) if rng.random() < 0.3 else _dump(_mutate_json(rng, json.loads(data)))
        try:
            student, _ = rebuild.read_submitted(data)
            rebuilt, _ = rebuild.rebuild(student, released[name])
        except rebuild.UnreadableNotebook:
            outcomes["unreadable"] += 1
            continue
        nbformat.validate(rebuilt)
        outcomes["read"] += 1
    assert min(outcomes.values()) >= 10, outcomes


def test_mutated_crosscheck_values_are_disagreements_never_errors():
    rng = random.Random(f"{SEED}-values")
    expected = {f"{st.NB1}::test_{n}_forward/out": np.zeros((6, 5)) for n in ("relu", "sigmoid", "tanh")}
    for _ in range(3 * MUTATIONS):
        actual = {
            key: rng.choice(
                [
                    np.array(["x"] * 30).reshape(6, 5),
                    np.zeros((6, 5), dtype=bool),
                    np.zeros(30),
                    np.array(b"bytes"),
                    np.zeros((6, 5)),
                    np.full((6, 5), np.nan),
                    "text",
                    None,
                    np.array(object(), dtype=object),
                ]
            )
            for key in expected
            if rng.random() < 0.9
        }
        problems = crosscheck.compare(expected, actual, [st.NB1])
        assert all(isinstance(why, str) for why in problems.values())
        frame = _mutate_bytes(rng, crosscheck_frame())
        try:
            crosscheck._parse_frame(frame[8:], f"{st.NB1}::test_relu_forward")
        except crosscheck._Garbage:
            pass


def crosscheck_frame() -> bytes:
    from autograder import crosscheck_probes

    return crosscheck_probes.encode_frame({f"{st.NB1}::test_relu_forward/out": np.zeros((6, 5))})


@pytest.mark.slow
@pytest.mark.usefixtures("bubblewrap")
def test_a_whole_grading_run_keeps_the_points_a_mutation_did_not_touch(sound, tmp_path):
    """Three submissions with mutated notebooks and data files: the untouched notebook keeps its points."""
    from autograder.grade import grade

    folder, _ = sound
    good = st.perfect(REPO / "exercises" / st.ASSIGNMENT, REPO / "solutions" / st.ASSIGNMENT)
    rng = random.Random(f"{SEED}-grade")
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    for number in range(3):
        files = {st.NB1: st.dumps(good[st.NB1])}
        files[st.NB2] = _dump(_mutate_json(rng, json.loads(st.dumps(good[st.NB2]))))
        for name in MNIST_FILES + FASHION_FILES:
            files[name] = _mutate(rng, name, (folder / name).read_bytes())
        st.write_zip(submissions, f"DNN_HW2_Fuzz_{3100 + number}", files)
    settings = replace(
        GradingSettings(), cell_timeout=20, jobs=2, isolation="bubblewrap", limits=sandbox.Limits(disk_mb=128)
    )
    summary = grade(submissions, tmp_path / "out", settings, progress=False)
    assert summary.failed == []
    with open(tmp_path / "out" / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert sorted(rows) == ["3100", "3101", "3102"]
    for sid in rows:
        result = json.loads((tmp_path / "out" / "results" / f"{sid}.json").read_text())
        one = next(nb for nb in result["notebooks"] if nb["name"] == st.NB1)
        assert one["score"] == one["max_score"] == 6, (sid, one)
