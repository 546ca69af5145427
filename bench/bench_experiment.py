"""Benchmark the experiment notebooks as a student runs them: notebook 05's three runs and 06's search.

    python bench/bench_experiment.py [--under-load] [--threads T] [--no-torch] [--no-search] [--quick]
                                     [--save FILE]

Notebook 05 (part 2(a) of the brief) trains 784-500-500-10 three times, once per
activation (sigmoid, ReLU, tanh), for 100 epochs with learning rate 0.001, batch
size 128 and lambda 1e-8, on the 10,000 embedded MNIST training images (9,000 to
train on, 1,000 held out and evaluated after every epoch, the 10,000 test images
once at the end), in float32. This benchmark runs exactly that, with the code the
notebook runs: the reference solution (``dnn_course.reference.load_reference``),
``dnn_course.model_builder.build_classifier`` and ``dnn_course.training.train``
with its progress bar (written to a buffer). For each activation it reports the
wall-clock and CPU time of the run, per epoch and in total.

In the same run, when ``torch`` is installed (optional: ``pip install torch==2.13.0``,
the CPU build), the same three networks are trained in PyTorch from the same
initial weights, in the same batch order, with the same evaluation, on the same
number of threads. Then notebook 06's default search: the configurations of the
reference notebook ``solutions/dnn_hw/06_fashion_tuning.ipynb`` trained as that
notebook trains them, on the embedded Fashion-MNIST images.

``--under-load`` runs everything twice: once as the machine is, once while two
competing CPU-bound processes (``python -c "while True: pass"``, started and
stopped by the benchmark) run, and puts the two side by side with their ratio.
The "idle" pass is only as idle as the machine: the load average is reported
for each pass, and the table warns when it exceeded a quarter of the CPUs.

Each implementation runs in a worker process of its own (PyTorch's OpenMP
threads never meet OpenBLAS's). The output is a table, the goals of the course's
issue on experiment times, then one line of JSON (the last line). ``--quick``
runs the same code on a few hundred images for 2 epochs: seconds, for the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import io
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import COMPETITOR, competing_processes, load_average, timed
from measure import blas_description, cpu_name

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_06 = REPO_ROOT / "solutions" / "dnn_hw" / "06_fashion_tuning.ipynb"
#: Notebook 05's settings (its ``BRIEF``): the brief's part 2(a).
BRIEF = dict(layer_sizes=[784, 500, 500, 10], epochs=100, learning_rate=0.001, batch_size=128, reg_lambda=1e-8)
ACTIVATIONS = ["sigmoid", "relu", "tanh"]
NAMES = {"sigmoid": "sigmoid", "relu": "ReLU", "tanh": "tanh"}
VAL_SIZE = 0.1  # both notebooks hold out 10% of the training images
SEED = 0
DTYPE = np.float32
#: Goals of the course's issue on experiment times (notebook 05 with the reference solution).
GOALS = {"max_idle_seconds": 180.0, "max_activation_to_relu": 1.5, "max_loaded_to_idle": 3.0}
QUICK = {"n_train": 600, "n_test": 500, "epochs": 2, "search_epochs": 1}
COMPETING = 2  # CPU-bound processes of --under-load
TORCH_HINT = "pip install torch==2.13.0"
MARK = "@@bench "


# ---------------------------------------------------------------------------- the workloads


def _data(name: str, args):
    """``(x_tr, y_tr), (x_val, y_val), (x_test, y_test)`` as the notebooks split them, and the description."""
    from dnn_course.datasets import load_dataset, train_val_split

    data = load_dataset(name, source="embedded", verbose=False)
    (x, y), (x_test, y_test) = data
    if args.quick:
        x, y = x[: QUICK["n_train"]], y[: QUICK["n_train"]]
        x_test, y_test = x_test[: QUICK["n_test"]], y_test[: QUICK["n_test"]]
    train_part, val_part = train_val_split(x, y, val_size=VAL_SIZE, seed=SEED)
    return train_part, val_part, (x_test, y_test), data.description


def _float64_arrays(model) -> list[str]:
    """Names of the model's arrays that are float64 after training (float64 creeping into a float32 run)."""
    found = []
    for owner_name, owner in [*model.layers.items(), ("softmax", model.softmax_layer)]:
        for attribute, value in vars(owner).items():
            if isinstance(value, np.ndarray) and value.dtype == np.float64:
                found.append(f"{owner_name}.{attribute}")
    return found


def _timed(run) -> tuple[object, dict]:
    """Call ``run()``; its result and the wall-clock and CPU seconds (all threads) it took, with the load."""
    result, timing = timed(run)
    return result, {"wall_s": timing.wall_s, "cpu_s": timing.cpu_s, "load": timing.mean_load}


def _train_numpy(reference, sizes, activation, settings, splits, description, threads):
    from dnn_course.model_builder import build_classifier
    from dnn_course.training import train

    (x_tr, y_tr), (x_val, y_val), (x_test, y_test) = splits
    model = build_classifier(reference, sizes, activation, seed=SEED, dtype=DTYPE)
    bar = io.StringIO()  # the notebook's progress bar, drawn as in a notebook but not shown here
    with contextlib.redirect_stdout(bar):
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
            batch_size=settings["batch_size"],
            reg_lambda=settings["reg_lambda"],
            seed=SEED,
            dtype=DTYPE,
            data_description=description,
            threads=threads,
        )
    return model, history


def search_configurations(notebook: Path = NOTEBOOK_06) -> list[dict]:
    """The ``CONFIGURATIONS`` of the reference notebook 06 (its cell ``configurations``)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "configurations")
    namespace: dict = {}
    exec(compile(cell.source, f"{notebook.name}:configurations", "exec"), namespace)  # noqa: S102 - the course's own notebook
    return [dict(config) for config in namespace["CONFIGURATIONS"]]


def numpy_worker(args) -> None:
    """Notebook 05's three runs and notebook 06's default search with the reference solution."""
    from threadpoolctl import threadpool_limits

    from dnn_course.reference import load_reference
    from dnn_course.training import blas_threads

    threads = blas_threads(args.threads)
    threadpool_limits(limits=threads, user_api="blas")  # also for what runs outside train()
    reference = load_reference()
    settings = dict(BRIEF, epochs=QUICK["epochs"] if args.quick else BRIEF["epochs"])
    *splits, description = _data("mnist", args)
    warm_up = [(x[: 2 * BRIEF["batch_size"]], y[: 2 * BRIEF["batch_size"]]) for x, y in splits]
    for activation in ACTIVATIONS:  # untimed: first calls of every kernel, as a notebook's earlier cells make them
        _train_numpy(reference, BRIEF["layer_sizes"], activation, dict(settings, epochs=1), warm_up, "", threads)
    runs = {}
    for activation in ACTIVATIONS:
        (model, history), times = _timed(
            functools.partial(
                _train_numpy, reference, BRIEF["layer_sizes"], activation, settings, splits, description, threads
            )
        )
        runs[activation] = {
            **times,
            "epochs": history.epochs,
            "cpu_per_epoch_s": times["cpu_s"] / history.epochs,
            "wall_per_epoch_s": times["wall_s"] / history.epochs,
            "training_per_epoch_s": float(np.median(history.epoch_seconds)),
            "test_acc": history.test_acc,
            "first_epoch_loss": history.train_loss[0],
            "float64_arrays": _float64_arrays(model),
        }
    search = []
    if not args.no_search:
        *fashion_splits, fashion_description = _data("fashion-mnist", args)
        for config in search_configurations():
            epochs = min(config["epochs"], QUICK["search_epochs"]) if args.quick else config["epochs"]
            config_settings = dict(config, epochs=epochs, batch_size=BRIEF["batch_size"])
            sizes = [784, *config["hidden"], 10]
            (_, history), times = _timed(
                functools.partial(
                    _train_numpy,
                    reference,
                    sizes,
                    config["activation"],
                    config_settings,
                    fashion_splits,
                    fashion_description,
                    threads,
                )
            )
            search.append(
                {
                    **times,
                    "network": "-".join(map(str, sizes)) + " " + config["activation"],
                    "epochs": epochs,
                    "learning_rate": config["learning_rate"],
                    "test_acc": history.test_acc,
                }
            )
    print(
        MARK
        + json.dumps(
            {
                "data": description,
                "n_train": len(splits[0][1]),
                "n_val": len(splits[1][1]),
                "n_test": len(splits[2][1]),
                "threads": threads,
                "blas": blas_description(),
                "runs": runs,
                "search": search,
            }
        ),
        flush=True,
    )


def torch_worker(args) -> None:
    """Notebook 05's three networks in PyTorch: same weights, batches, evaluation and threads."""
    import torch
    from threadpoolctl import threadpool_limits
    from torch_mlp import describe_torch, mlp_from_reference, torch_accuracy, torch_epoch

    from dnn_course.model_builder import build_classifier
    from dnn_course.reference import load_reference
    from dnn_course.training import blas_threads

    threads = blas_threads(args.threads)
    threadpool_limits(limits=threads)
    torch.set_num_threads(threads)
    reference = load_reference()
    epochs = QUICK["epochs"] if args.quick else BRIEF["epochs"]
    (x_tr, y_tr), (x_val, y_val), (x_test, y_test), description = _data("mnist", args)
    tensors = [
        torch.from_numpy(np.ascontiguousarray(x.reshape(len(x), -1), dtype=DTYPE)) for x in (x_tr, x_val, x_test)
    ]
    labels = [torch.from_numpy(y.astype(np.int64)) for y in (y_tr, y_val, y_test)]

    def run(activation, epochs=epochs, n=None):
        model = mlp_from_reference(
            build_classifier(reference, BRIEF["layer_sizes"], activation, seed=SEED, dtype=DTYPE), torch.float32
        )
        rng = np.random.default_rng(SEED)  # the batch order train(seed=SEED) uses
        losses, epoch_seconds = [], []
        for _ in range(epochs):
            order = torch.from_numpy(rng.permutation(len(y_tr) if n is None else n))
            started = time.perf_counter()
            loss, _ = torch_epoch(
                model,
                tensors[0],
                labels[0],
                order,
                batch_size=BRIEF["batch_size"],
                learning_rate=BRIEF["learning_rate"],
                reg_lambda=BRIEF["reg_lambda"],
            )
            epoch_seconds.append(time.perf_counter() - started)
            losses.append(loss)
            torch_accuracy(model, tensors[1], labels[1])  # validation after every epoch, as train() does
        return losses, epoch_seconds, torch_accuracy(model, tensors[2], labels[2])

    for activation in ACTIVATIONS:  # untimed: the first calls of every kernel
        run(activation, epochs=1, n=2 * BRIEF["batch_size"])
    runs = {}
    for activation in ACTIVATIONS:
        (losses, epoch_seconds, test_acc), times = _timed(functools.partial(run, activation))
        runs[activation] = {
            **times,
            "epochs": epochs,
            "cpu_per_epoch_s": times["cpu_s"] / epochs,
            "wall_per_epoch_s": times["wall_s"] / epochs,
            "training_per_epoch_s": float(np.median(epoch_seconds)),
            "test_acc": test_acc,
            "first_epoch_loss": losses[0],
        }
    print(
        MARK + json.dumps({"data": description, "threads": threads, "torch": describe_torch(), "runs": runs}),
        flush=True,
    )


# ---------------------------------------------------------------------------- coordinator


def run_worker(kind: str, args) -> dict:
    """Run one worker process; its result line as a dict."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        kind,
        *(["--threads", str(args.threads)] if args.threads else []),
        *(["--quick"] if args.quick else []),
        *(["--no-search"] if args.no_search else []),
    ]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    for line in completed.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    raise RuntimeError(f"the {kind} worker stopped (exit code {completed.returncode}); its error is above")


def _sum(runs: dict, key: str) -> float:
    return float(sum(run[key] for run in runs.values()))


def summarise_pass(numpy_result: dict, torch_result: dict | None, loads: list[float]) -> dict:
    """The figures of one pass (idle or loaded) that the table and the goals use."""
    runs = numpy_result["runs"]
    figures = {
        "load_average": float(np.mean(loads)),
        "load_max": float(max(loads)),
        "notebook_05_wall_s": _sum(runs, "wall_s"),
        "notebook_05_cpu_s": _sum(runs, "cpu_s"),
        "slowest_activation_to_relu": max(r["wall_s"] for r in runs.values()) / runs["relu"]["wall_s"],
        "slowest_activation_to_relu_cpu": max(r["cpu_s"] for r in runs.values()) / runs["relu"]["cpu_s"],
        "notebook_06_search_wall_s": _sum({i: r for i, r in enumerate(numpy_result["search"])}, "wall_s"),
        "notebook_06_search_cpu_s": _sum({i: r for i, r in enumerate(numpy_result["search"])}, "cpu_s"),
        "torch_05_wall_s": None,
        "torch_05_cpu_s": None,
        "numpy_to_torch_05": None,
    }
    if torch_result is not None:
        figures.update(
            torch_05_wall_s=_sum(torch_result["runs"], "wall_s"), torch_05_cpu_s=_sum(torch_result["runs"], "cpu_s")
        )
        figures["numpy_to_torch_05"] = figures["notebook_05_wall_s"] / figures["torch_05_wall_s"]
    return figures


def judge(passes: dict, full_settings: bool, threads: int = 1) -> dict:
    """Each goal: the measured value, its limit and whether it is met (None: not measured).

    The idle time of notebook 05 is the CPU time of the 'idle' pass when training ran on one
    thread (a single-threaded run's CPU time is its wall-clock time on a core nobody else uses;
    it leaves out what other jobs took from an 'idle' pass that was not idle), else its wall time.
    """
    idle = passes["idle"]["summary"]
    loaded = passes.get("loaded", {}).get("summary")
    clock = "cpu" if threads == 1 else "wall"
    idle_seconds = idle[f"notebook_05_{clock}_s"]
    goals = {
        "notebook_05_idle_seconds": {"value": idle_seconds, "limit": GOALS["max_idle_seconds"], "clock": clock},
        "slowest_activation_to_relu": {
            "value": idle["slowest_activation_to_relu" + ("_cpu" if threads == 1 else "")],
            "limit": GOALS["max_activation_to_relu"],
            "clock": clock,
        },
        "loaded_to_idle": {
            "value": None if loaded is None else loaded["notebook_05_wall_s"] / idle_seconds,
            "limit": GOALS["max_loaded_to_idle"],
            "clock": f"loaded wall / idle {clock}",
        },
    }
    for goal in goals.values():
        judged = full_settings and goal["value"] is not None
        goal["met"] = (goal["value"] <= goal["limit"]) if judged else None
    return goals


def _table(report: dict) -> list[str]:
    labels = list(report["passes"])
    columns = labels + (["loaded/idle"] if len(labels) == 2 else [])
    width = 44
    lines = [f"{'':{width}}" + "".join(f"{c:>13}" for c in columns)]

    def row(label, values, fmt="{:.1f}"):
        cells = [("-" if v is None else fmt.format(v)) for v in values]
        if len(labels) == 2:
            a, b = values
            cells.append("-" if a is None or b is None or a == 0 else f"{b / a:.2f}x")
        lines.append(f"{label:{width}}" + "".join(f"{c:>13}" for c in cells))

    passes = [report["passes"][label] for label in labels]
    for kind, title in (("numpy", "reference (NumPy, train())"), ("torch", "PyTorch")):
        if any(p[kind] is None for p in passes):
            continue
        epochs = passes[0][kind]["runs"]["relu"]["epochs"]
        lines.append(f"Notebook 05, {title}, {epochs} epochs each:")
        for activation in ACTIVATIONS:
            runs = [p[kind]["runs"][activation] for p in passes]
            row(f"  {activation}: wall [s]", [r["wall_s"] for r in runs])
            row(f"  {activation}: CPU [s]", [r["cpu_s"] for r in runs])
            row(f"  {activation}: per epoch, wall [s]", [r["wall_per_epoch_s"] for r in runs], "{:.3f}")
        row(
            "  all three: wall [s]",
            [p["summary"]["notebook_05_wall_s" if kind == "numpy" else "torch_05_wall_s"] for p in passes],
        )
        row(
            "  all three: CPU [s]",
            [p["summary"]["notebook_05_cpu_s" if kind == "numpy" else "torch_05_cpu_s"] for p in passes],
        )
    summaries = [p["summary"] for p in passes]
    row("slowest activation / ReLU, wall", [s["slowest_activation_to_relu"] for s in summaries], "{:.2f}")
    row("slowest activation / ReLU, CPU", [s["slowest_activation_to_relu_cpu"] for s in summaries], "{:.2f}")
    row("notebook 05: NumPy / PyTorch, wall", [s["numpy_to_torch_05"] for s in summaries], "{:.2f}")
    if passes[0]["numpy"]["search"]:
        lines.append(
            f"Notebook 06, default search ({len(passes[0]['numpy']['search'])} configurations of {NOTEBOOK_06.name}):"
        )
        row("  wall [s]", [s["notebook_06_search_wall_s"] for s in summaries])
        row("  CPU [s]", [s["notebook_06_search_cpu_s"] for s in summaries])
    row("load average (1 min), mean of runs", [s["load_average"] for s in summaries])
    return lines


def _print_report(report: dict) -> None:
    machine = report["machine"]
    first = next(iter(report["passes"].values()))["numpy"]
    print(
        f"Experiment benchmark: notebook 05 ({'-'.join(map(str, BRIEF['layer_sizes']))}, learning rate "
        f"{BRIEF['learning_rate']}, batch {BRIEF['batch_size']}, lambda {BRIEF['reg_lambda']}, float32) on "
        f"{first['n_train']:,} training images, {first['n_val']:,} validation images after every epoch, "
        f"{first['n_test']:,} test images at the end; data: {first['data']}"
    )
    print(
        f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, {machine['platform']}; Python {machine['python']}, "
        f"NumPy {machine['numpy']}; {report['threads']} BLAS thread(s) (train()'s threads setting)"
    )
    for pool in first["blas"]["pools"]:
        print(f"NumPy BLAS: {pool['internal_api']} {pool['version']}, kernel {pool['architecture']}")
    if report["torch"] is None:
        print(
            "PyTorch left out (--no-torch)"
            if report["torch_left_out"]
            else f"PyTorch not installed: skipped ({TORCH_HINT})"
        )
    else:
        t = report["torch"]
        print(
            f"PyTorch {t['version']}: BLAS {t['blas']}, CPU kernels {t['cpu_capability']}, {t['num_threads']} thread(s)"
        )
    if "loaded" in report["passes"]:
        print(
            f"Passes: 'idle' as the machine was; 'loaded' with {COMPETING} competing CPU-bound processes "
            f'(python -c "{COMPETITOR}") started by the benchmark.'
        )
    print(f"Load average (1 min) at start {machine['load_start']:.1f}, at end {machine['load_end']:.1f}.")
    if report["idle_pass_busy"]:
        print(
            f"WARNING: the 'idle' pass was not idle (load average up to "
            f"{report['passes']['idle']['summary']['load_max']:.1f} on {machine['cpus']} CPUs): other jobs took "
            "CPU time from it. Its CPU times still say what the runs cost; its wall times are too long."
        )
    print()
    for line in _table(report):
        print(line)
    print()
    words = {True: "met", False: "NOT met", None: "not judged"}
    if not report["full_settings"]:
        print("Goals not judged: --quick runs a few images for 2 epochs.")
        return
    goals = report["goals"]
    on_cpu = goals["notebook_05_idle_seconds"]["clock"] == "cpu"
    value = goals["notebook_05_idle_seconds"]["value"]
    print(
        f"Goal: notebook 05 under {GOALS['max_idle_seconds']:.0f} s on an idle machine: {value:.0f} s"
        + (
            " (CPU time: one thread's time on an idle core)"
            if on_cpu
            else " (wall)" + (", the pass was not idle" if report["idle_pass_busy"] else "")
        )
        + f", {words[goals['notebook_05_idle_seconds']['met']]}"
    )
    value = goals["slowest_activation_to_relu"]["value"]
    print(
        f"Goal: no activation over {GOALS['max_activation_to_relu']}x the ReLU run: {value:.2f}x"
        f"{' (CPU time)' if on_cpu else ''}, {words[goals['slowest_activation_to_relu']['met']]}"
    )
    value = goals["loaded_to_idle"]["value"]
    print(
        f"Goal: with {COMPETING} competing processes at most {GOALS['max_loaded_to_idle']}x the idle time: "
        + (
            "not measured (add --under-load)"
            if value is None
            else f"{value:.2f}x ({goals['loaded_to_idle']['clock']}), {words[goals['loaded_to_idle']['met']]}"
        )
    )


def stated_figures(report: dict) -> dict[str, str]:
    """The figures the notebooks' introductions, the student guide and README state, as they write them.

    From a saved full report (``--under-load --save``); ``tests/test_bench.py`` checks that each
    document states them. With one BLAS thread, a run's CPU time is what its wall-clock time is
    on an idle core, so the CPU times of the 'idle' pass stand for an idle machine.
    """
    idle, loaded = report["passes"]["idle"], report["passes"]["loaded"]
    runs = idle["numpy"]["runs"]
    per_epoch = [runs[a]["cpu_per_epoch_s"] for a in ACTIVATIONS]
    figures = {
        "05_cpu": f"{idle['summary']['notebook_05_cpu_s'] / 60:.1f} min",
        "05_activations_cpu": ", ".join(f"{NAMES[a]} {runs[a]['cpu_s']:.0f} s" for a in ACTIVATIONS),
        "05_epoch_cpu": f"{min(per_epoch):.2f}-{max(per_epoch):.2f} s",
        "05_activation_ratio_cpu": f"{idle['summary']['slowest_activation_to_relu_cpu']:.2f}",
        "05_wall": f"{idle['summary']['notebook_05_wall_s'] / 60:.1f} min",
        "05_load": f"{idle['summary']['load_average']:.1f}",
        "05_loaded_wall": f"{loaded['summary']['notebook_05_wall_s'] / 60:.1f} min",
        "05_loaded_load": f"{loaded['summary']['load_average']:.1f}",
        "05_loaded_to_cpu": f"{loaded['summary']['notebook_05_wall_s'] / idle['summary']['notebook_05_cpu_s']:.1f}",
        "05_loaded_epoch_wall": "{:.2f}-{:.2f} s".format(
            *sorted(loaded["numpy"]["runs"][a]["wall_per_epoch_s"] for a in ACTIVATIONS)[:: len(ACTIVATIONS) - 1]
        ),
        "06_cpu": f"{idle['summary']['notebook_06_search_cpu_s'] / 60:.1f} min",
        "06_wall": f"{idle['summary']['notebook_06_search_wall_s'] / 60:.1f} min",
        "06_loaded_wall": f"{loaded['summary']['notebook_06_search_wall_s'] / 60:.1f} min",
    }
    if idle["torch"] is not None:
        figures["torch_05_cpu"] = f"{idle['summary']['torch_05_cpu_s'] / 60:.1f} min"
    return figures


def coordinate(args) -> dict:
    torch_available = importlib.util.find_spec("torch") is not None and not args.no_torch
    if not torch_available and not args.no_torch:
        print(f"PyTorch not installed: skipped ({TORCH_HINT})", flush=True)
    load_start = load_average()
    passes = {}
    competitor_pids = []
    for label, count in [("idle", 0)] + ([("loaded", COMPETING)] if args.under_load else []):
        print(
            f"Pass '{label}': notebook 05 (NumPy{', PyTorch' if torch_available else ''})"
            f"{'' if args.no_search else ' and notebook 06'}, load average {load_average():.1f} ...",
            flush=True,
        )
        with competing_processes(count) as pids:
            competitor_pids += pids
            numpy_result = run_worker("numpy", args)
            torch_result = run_worker("torch", args) if torch_available else None
        loads = [
            r["load"]
            for result in (numpy_result, torch_result)
            if result
            for r in [*result["runs"].values(), *result.get("search", [])]
        ]
        passes[label] = {
            "competing_processes": count,
            "numpy": numpy_result,
            "torch": torch_result,
            "summary": summarise_pass(numpy_result, torch_result, loads),
        }
    cpus = os.cpu_count() or 1
    report = {
        "benchmark": "dnn_course experiments",
        "settings": {
            **BRIEF,
            "epochs": passes["idle"]["numpy"]["runs"]["relu"]["epochs"],
            "dtype": "float32",
            "activations": ACTIVATIONS,
        },
        "quick": args.quick,
        "full_settings": not args.quick,
        "threads": passes["idle"]["numpy"]["threads"],
        "torch_left_out": args.no_torch,
        "torch": passes["idle"]["torch"]["torch"] if passes["idle"]["torch"] else None,
        "machine": {
            "cpu": cpu_name(),
            "cpus": cpus,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "load_start": load_start,
            "load_end": load_average(),
        },
        "competitor_pids": competitor_pids,
        "idle_pass_busy": passes["idle"]["summary"]["load_max"] > cpus / 4,
        "passes": passes,
    }
    report["goals"] = judge(passes, report["full_settings"], report["threads"])
    _print_report(report)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(report, indent=1) + "\n")
        print(f"Saved to {args.save}")
    print(json.dumps(report), flush=True)
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--under-load",
        action="store_true",
        help=f"run a second pass with {COMPETING} competing CPU-bound processes, side by side",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS (and PyTorch) threads; default: train()'s (DNN_COURSE_THREADS, else 1)",
    )
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    parser.add_argument("--no-search", action="store_true", help="leave notebook 06's search out")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK['n_train']} images, {QUICK['epochs']} epochs (06: {QUICK['search_epochs']}): "
        "seconds, checks the benchmark only",
    )
    parser.add_argument(
        "--save",
        type=Path,
        help="also write the report (the JSON line) to this file, e.g. "
        "bench/results/experiments.json, the file the course's stated times come from",
    )
    parser.add_argument("--worker", choices=("numpy", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be a positive number")
    return args


def main(argv=None) -> dict | None:
    args = parse_args(argv)
    if args.worker == "numpy":
        numpy_worker(args)
        return None
    if args.worker == "torch":
        torch_worker(args)
        return None
    return coordinate(args)


if __name__ == "__main__":
    main()
