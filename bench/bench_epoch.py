"""Benchmark one training epoch of the brief's MNIST network: the reference against PyTorch and the BLAS peak.

    python bench/bench_epoch.py [--repeats N] [--threads T] [--data full|embedded] [--quick]
                                [--clock wall|cpu] [--profile] [--no-torch] [--reference-dir DIR]

The network is part 2(a)'s: 784-500-500-10 with ReLU, softmax and cross-entropy,
mini-batches of 128, plain SGD (learning rate 0.001, lambda 1e-8), one epoch
over the 60,000 training images. In one run, on the same machine and with the
same number of threads, it times:

* the reference solution (``solutions/dnn_hw``, loaded with
  ``dnn_course.reference.load_reference``) trained by the course's loop
  ``dnn_course.training.train``, in float32 and float64;
* the same model without the loop: ``forward``/``backward``/``update`` on
  pre-shuffled contiguous batches;
* the loop alone: ``train()`` with a model that does nothing (shuffling,
  gathering each batch, bookkeeping); its ratio to the model alone is the
  "loop overhead" (the difference ``train()`` minus model alone is shown too,
  but it is the small difference of two large, noisy numbers);
* the epoch's matrix products alone, with the same shapes and layouts, into
  preallocated outputs: the peak for this epoch's GEMM shapes (the
  "fraction of peak" below uses this one);
* large square matrix products (2048 x 2048): the classic BLAS peak;
* the same network in PyTorch on the CPU, same initial weights, batch order,
  dtype and threads (skipped, with a line saying so, when torch is absent).

Useful FLOPs are counted in ``flops.py`` (matrix products only, ``2 m k n`` each;
the first layer's input gradient is not computed by either implementation).
Each implementation and dtype runs in its own worker process (so PyTorch's
OpenMP threads never compete with OpenBLAS's and each has its own peak
memory); the workers take turns, once per repetition, and the medians are
reported. The output is a table, then one line of JSON (the last line).

On a machine shared with other jobs, ``--threads 1 --clock cpu`` gives steady
figures: each worker's own CPU time, which leaves out the time it waited for
a core (the table warns when the load average exceeds the number of CPUs).
With several threads, wall-clock time on a busy machine is meaningless:
OpenBLAS threads that wait for a busy core make products 10-50 times slower.
``--profile`` adds the time of every layer method in a training step.

OpenBLAS picks its kernel from the CPU unless ``OPENBLAS_CORETYPE`` (and the
cache size ``OPENBLAS_L2_SIZE``) say otherwise; the table shows the kernel
that ran. To measure with the kernel OpenBLAS would choose itself::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_epoch.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flops import epoch_flops
from harness import load_average, timed
from measure import (
    CLOCKS,
    DoNothingModel,
    blas_description,
    cpu_name,
    model_only_epoch_seconds,
    replay_epoch_gemms,
    seconds_of,
    square_gemm_gflops,
)
from profile_step import profile_steps

LAYER_SIZES = [784, 500, 500, 10]
ACTIVATION = "relu"
BATCH_SIZE = 128
LEARNING_RATE = 0.001
REG_LAMBDA = 1e-8
SEED = 0
DTYPES = ("float32", "float64")
TORCH_HINT = "pip install torch==2.13.0"
#: Goals of the course's performance issue.
GOALS = {"max_ratio_to_torch": 0.75, "min_fraction_of_peak": 0.80, "max_loop_overhead": 0.05}
QUICK = {"n_train": 1024, "square_size": 256, "repeats": 1}
MARK = "@@bench "  # prefix of the workers' result lines on stdout


# ---------------------------------------------------------------------------- workers


def _emit(payload: dict) -> None:
    print(MARK + json.dumps(payload), flush=True)


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far (``getrusage`` ``ru_maxrss``, KiB on Linux), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load_data(args) -> tuple[np.ndarray, np.ndarray, str]:
    """Training images flattened to ``(n, 784)`` float32 and labels ``(n,)`` int64, and their description."""
    from dnn_course.datasets import load_dataset

    data_dir = args.data_dir if args.data == "full" else None
    data = load_dataset("mnist", source=args.data, data_dir=data_dir, verbose=False)
    (x, y), _ = data
    if args.n_train:
        x, y = x[: args.n_train], y[: args.n_train]
    return np.ascontiguousarray(x.reshape(len(x), -1)), y, data.description


def _load_implementation(reference_dir):
    """The reference classes: from ``solutions/dnn_hw``, or from the notebooks in ``reference_dir``."""
    if reference_dir is None:
        from dnn_course.reference import load_reference

        return load_reference()
    from dnn_course.assignment import ASSIGNMENT
    from dnn_course.notebook_import import import_notebooks

    return import_notebooks(
        *(Path(reference_dir) / name for name in ASSIGNMENT.reference_notebooks), module_name="bench_ref"
    )


def _reference_model(args, dtype):
    from dnn_course.model_builder import build_classifier

    return build_classifier(_load_implementation(args.reference_dir), LAYER_SIZES, ACTIVATION, seed=SEED, dtype=dtype)


def reference_worker(args) -> None:
    """Serve repetitions of the reference measurements for one dtype (see the module docstring)."""
    from dnn_course.datasets import one_hot
    from dnn_course.training import train

    threadpool_limits(limits=args.threads)
    clock = CLOCKS[args.clock]
    dtype = np.dtype(args.dtype).type
    x, y, description = _load_data(args)
    x = np.ascontiguousarray(x, dtype=dtype)  # cast once here, so train() needs no copy
    n_train = len(y)
    model = _reference_model(args, dtype)

    def train_one_epoch(trained=model):
        return train(
            trained,
            x,
            y,
            epochs=1,
            learning_rate=LEARNING_RATE,
            batch_size=BATCH_SIZE,
            reg_lambda=REG_LAMBDA,
            seed=SEED,
            progress=False,
            dtype=dtype,
            threads=args.threads,
        )

    first = train_one_epoch()  # epoch 1 from the initial weights; also the warm-up
    rss_mb = _peak_rss_mb()
    tracemalloc.start()
    train_one_epoch()
    traced_peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()

    order = np.random.default_rng(SEED).permutation(n_train)  # the order train(seed=SEED) uses
    x_shuffled = x[order]
    y_shuffled = one_hot(y[order], LAYER_SIZES[-1], dtype=dtype)
    gemm_epoch = replay_epoch_gemms(LAYER_SIZES, n_train, BATCH_SIZE, dtype)
    gemm_epoch()
    profile = None
    if args.profile:
        n_batches = min(20, n_train // BATCH_SIZE)
        shape = (n_batches, BATCH_SIZE, -1)
        profile = profile_steps(
            model,
            x_shuffled[: n_batches * BATCH_SIZE].reshape(shape),
            y_shuffled[: n_batches * BATCH_SIZE].reshape(shape),
            learning_rate=LEARNING_RATE,
            reg_lambda=REG_LAMBDA,
            clock=clock,
        )
    _emit(
        {
            "ready": True,
            "data": description,
            "n_train": n_train,
            "blas": blas_description(),
            "first_epoch_loss": first.train_loss[0],
            "first_epoch_acc": first.train_acc[0],
            "peak_rss_mb": rss_mb,
            "tracemalloc_peak_mb": traced_peak_mb,
            "profile": profile,
        }
    )

    for command in sys.stdin:
        if command.strip() != "run":
            break
        square = square_gemm_gflops(args.square_size, dtype, repeats=3, clock=clock)
        gemm_seconds = seconds_of(gemm_epoch, clock)
        _, timing = timed(train_one_epoch)  # as a whole: includes train()'s per-call label checks and one-hot encoding
        model_seconds = model_only_epoch_seconds(
            model, x_shuffled, y_shuffled, BATCH_SIZE, LEARNING_RATE, REG_LAMBDA, clock
        )
        loop_seconds = seconds_of(lambda: train_one_epoch(DoNothingModel()), clock)
        _emit(
            {
                "square_gflops": square,
                "gemm_seconds": gemm_seconds,
                "loop_seconds": loop_seconds,
                "epoch_seconds": timing.cpu_s if args.clock == "cpu" else timing.wall_s,
                "model_seconds": model_seconds,
                "load": timing.load_before,
                "cpu_share": timing.cpu_share(args.threads),
            }
        )


def torch_worker(args) -> None:
    """Serve repetitions of the PyTorch epoch for one dtype, with the reference's initial weights."""
    import torch
    from torch_mlp import TORCH_DTYPES, describe_torch, mlp_from_reference, square_mm_gflops, torch_epoch

    threadpool_limits(limits=args.threads)
    torch.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]
    dtype = np.dtype(args.dtype).type
    x, y, description = _load_data(args)
    x = np.ascontiguousarray(x, dtype=dtype)
    model = mlp_from_reference(_reference_model(args, dtype), TORCH_DTYPES[args.dtype])
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    order = torch.from_numpy(np.random.default_rng(SEED).permutation(len(y)))

    def one_epoch():
        return torch_epoch(
            model, x_t, y_t, order, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE, reg_lambda=REG_LAMBDA
        )

    first_loss, first_acc = one_epoch()
    _emit(
        {
            "ready": True,
            "data": description,
            "torch": describe_torch(),
            "first_epoch_loss": first_loss,
            "first_epoch_acc": first_acc,
            "peak_rss_mb": _peak_rss_mb(),
        }
    )
    for command in sys.stdin:
        if command.strip() != "run":
            break
        square = square_mm_gflops(args.square_size, TORCH_DTYPES[args.dtype], repeats=3, clock=clock)
        _, timing = timed(one_epoch)
        _emit(
            {
                "square_gflops": square,
                "epoch_seconds": timing.cpu_s if args.clock == "cpu" else timing.wall_s,
                "load": timing.load_before,
                "cpu_share": timing.cpu_share(args.threads),
            }
        )


# ---------------------------------------------------------------------------- coordinator


class Worker:
    """A worker process answering ``run`` lines with one JSON result line each."""

    def __init__(self, kind: str, dtype: str, args):
        self.kind, self.dtype = kind, dtype
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            kind,
            "--dtype",
            dtype,
            "--threads",
            str(args.threads),
            "--clock",
            args.clock,
            "--data",
            args.data,
            "--square-size",
            str(args.square_size),
            *(["--profile"] if args.profile else []),
            "--n-train",
            str(args.n_train or 0),
        ]
        if args.data_dir:
            command += ["--data-dir", str(args.data_dir)]
        if args.reference_dir:
            command += ["--reference-dir", str(args.reference_dir)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.setup = self._read()

    def _read(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
        code = self.process.wait()
        raise RuntimeError(f"the {self.kind} {self.dtype} worker stopped (exit code {code}); its error is above")

    def run(self) -> dict:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait()


def _median(results: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in results]))


def _summarise(
    ref: Worker, ref_runs: list[dict], torch_worker: Worker | None, torch_runs: list[dict], flops: int
) -> dict:
    epoch = _median(ref_runs, "epoch_seconds")
    model = _median(ref_runs, "model_seconds")
    gemm = _median(ref_runs, "gemm_seconds")
    loop = _median(ref_runs, "loop_seconds")
    shape_peak = flops / gemm / 1e9
    square = _median(ref_runs, "square_gflops")
    achieved = flops / epoch / 1e9
    result = {
        "reference_epoch_s": epoch,
        "reference_model_only_s": model,
        "gemm_only_s": gemm,
        "loop_only_s": loop,
        "reference_gflops": achieved,
        "gemm_peak_epoch_shapes_gflops": shape_peak,
        "gemm_peak_square_gflops": square,
        "fraction_of_peak": achieved / shape_peak,
        "fraction_of_square_peak": achieved / square,
        "share_outside_gemm": 1 - gemm / epoch,
        "share_model_outside_gemm": (model - gemm) / epoch,
        "share_loop": (epoch - model) / epoch,
        "loop_overhead": loop / model,
        "loop_overhead_by_difference": epoch / model - 1,
        "reference_peak_rss_mb": ref.setup["peak_rss_mb"],
        "reference_tracemalloc_peak_mb": ref.setup["tracemalloc_peak_mb"],
        "reference_first_epoch_loss": ref.setup["first_epoch_loss"],
        "reference_cpu_share": _median(ref_runs, "cpu_share"),
        "profile_per_step": ref.setup["profile"],
        "load_average": float(np.median([r["load"] for r in ref_runs + torch_runs])),
        "torch_epoch_s": None,
        "torch_square_gflops": None,
        "ratio_reference_to_torch": None,
        "ratio_gemm_only_to_torch": None,
        "torch_peak_rss_mb": None,
        "torch_first_epoch_loss": None,
        "torch_cpu_share": None,
    }
    if torch_worker is not None:
        torch_seconds = _median(torch_runs, "epoch_seconds")
        result.update(
            {
                "torch_epoch_s": torch_seconds,
                "torch_square_gflops": _median(torch_runs, "square_gflops"),
                "ratio_reference_to_torch": epoch / torch_seconds,
                # The best ratio any NumPy epoch with these products could reach: everything else free.
                "ratio_gemm_only_to_torch": gemm / torch_seconds,
                "torch_peak_rss_mb": torch_worker.setup["peak_rss_mb"],
                "torch_first_epoch_loss": torch_worker.setup["first_epoch_loss"],
                "torch_cpu_share": _median(torch_runs, "cpu_share"),
            }
        )
    result["goals_met"] = {
        "ratio_to_torch": None
        if result["ratio_reference_to_torch"] is None
        else result["ratio_reference_to_torch"] <= GOALS["max_ratio_to_torch"],
        "fraction_of_peak": result["fraction_of_peak"] >= GOALS["min_fraction_of_peak"],
        "loop_overhead": result["loop_overhead"] <= GOALS["max_loop_overhead"],
    }
    return result


def _rows() -> list[tuple[str, str, callable]]:
    """(label, key, formatter) of the table's rows."""
    seconds = "{:.3f}".format
    gflops = "{:.1f}".format
    percent = "{:.1%}".format
    megabytes = "{:.0f}".format
    return [
        ("reference epoch, train() [s]", "reference_epoch_s", seconds),
        ("  model alone, no loop [s]", "reference_model_only_s", seconds),
        ("  matrix products alone [s]", "gemm_only_s", seconds),
        ("  loop alone, do-nothing model [s]", "loop_only_s", seconds),
        ("PyTorch epoch [s]", "torch_epoch_s", seconds),
        ("reference / PyTorch", "ratio_reference_to_torch", "{:.2f}".format),
        ("  bound: matrix products alone / PyTorch", "ratio_gemm_only_to_torch", "{:.2f}".format),
        ("reference [GFLOP/s]", "reference_gflops", gflops),
        ("GEMM peak, epoch shapes [GFLOP/s]", "gemm_peak_epoch_shapes_gflops", gflops),
        ("GEMM peak, square NumPy [GFLOP/s]", "gemm_peak_square_gflops", gflops),
        ("GEMM peak, square PyTorch [GFLOP/s]", "torch_square_gflops", gflops),
        ("fraction of peak (epoch shapes)", "fraction_of_peak", percent),
        ("fraction of peak (square)", "fraction_of_square_peak", percent),
        ("time outside matrix products", "share_outside_gemm", percent),
        ("  in the model (act., softmax, L2, update)", "share_model_outside_gemm", percent),
        ("  in the loop (shuffle, gather, bookkeeping)", "share_loop", percent),
        ("loop overhead: loop alone / model alone", "loop_overhead", percent),
        ("  by difference: train() / model alone - 1", "loop_overhead_by_difference", percent),
        ("peak RSS reference [MB]", "reference_peak_rss_mb", megabytes),
        ("peak RSS PyTorch [MB]", "torch_peak_rss_mb", megabytes),
        ("tracemalloc peak in train() epoch [MB]", "reference_tracemalloc_peak_mb", "{:.1f}".format),
        ("epoch-1 loss reference", "reference_first_epoch_loss", "{:.5f}".format),
        ("epoch-1 loss PyTorch", "torch_first_epoch_loss", "{:.5f}".format),
        ("CPU share reference (cpu/wall/threads)", "reference_cpu_share", "{:.2f}".format),
        ("CPU share PyTorch", "torch_cpu_share", "{:.2f}".format),
        ("load average (1 min) during runs", "load_average", "{:.1f}".format),
    ]


def _print_report(report: dict) -> None:
    results = report["results"]
    dtypes = list(results)
    machine, numpy_blas = report["machine"], report["blas"]["numpy"]
    print(
        f"Epoch benchmark: {report['network']}, batch {report['batch_size']}, plain SGD "
        f"(learning rate {report['learning_rate']}, lambda {report['reg_lambda']}), one epoch of "
        f"{report['n_train']:,} images: {report['data']}"
    )
    print(
        f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, {machine['platform']}; Python {machine['python']}, "
        f"NumPy {machine['numpy']}; {report['threads']} thread(s); "
        f"load average {machine['load_before']:.1f} before, {machine['load_after']:.1f} after"
    )
    for pool in numpy_blas["pools"]:
        print(
            f"NumPy BLAS: {pool['internal_api']} {pool['version']}, kernel {pool['architecture']}, "
            f"{pool['num_threads']} thread(s) ({pool['filepath']})"
        )
    environment = ", ".join(f"{k}={'unset' if v is None else v}" for k, v in numpy_blas["environment"].items())
    print(f"  environment: {environment}")
    if report["blas"]["torch"] is None:
        print(
            "PyTorch left out (--no-torch)"
            if report["torch_left_out"]
            else f"PyTorch not installed: skipped ({TORCH_HINT})"
        )
    else:
        t = report["blas"]["torch"]
        print(
            f"PyTorch {t['version']}: BLAS {t['blas']}, oneDNN {'on' if t['mkldnn'] else 'off'}, "
            f"CPU kernels {t['cpu_capability']}, {t['num_threads']} thread(s)"
        )
    if report["machine_busy"]:
        busiest = max(machine["load_before"], machine["load_after"], *(r["load_average"] for r in results.values()))
        print(
            f"WARNING: the machine was busy (load average up to {busiest:.1f} on {machine['cpus']} CPUs): other "
            "jobs took CPU time from these runs. Wall-clock figures are unreliable, very much so with several "
            "BLAS threads; prefer --threads 1 --clock cpu, or run again on an idle machine."
        )
    print(f"Useful FLOPs per epoch: {report['flops_per_epoch'] / 1e9:.2f} GFLOP ({report['flop_count']})")
    print(
        f"Times: {'process CPU time' if report['clock'] == 'cpu' else 'wall-clock time'}, "
        f"median of {report['repeats']} repetitions; peak memory is ru_maxrss of each worker process after "
        "its first epoch (data, model, one epoch), tracemalloc counts NumPy allocations during one train() epoch."
    )
    print()
    width = 46
    print(f"{'':{width}}" + "".join(f"{d:>12}" for d in dtypes))
    for label, key, fmt in _rows():
        cells = [results[d][key] for d in dtypes]
        print(f"{label:{width}}" + "".join(f"{'-' if c is None else fmt(c):>12}" for c in cells))
    print()
    if all(results[d]["profile_per_step"] for d in dtypes):
        _print_profile({d: results[d]["profile_per_step"] for d in dtypes})
    if report["machine_busy"] and not (report["clock"] == "cpu" and report["threads"] == 1):
        print("Goals not judged: wall-clock (or multi-thread CPU) times from a busy machine; see the warning above.")
        return
    for dtype in dtypes:
        met = results[dtype]["goals_met"]
        words = {True: "met", False: "NOT met", None: "not measured"}
        bound = results[dtype]["ratio_gemm_only_to_torch"]
        reachable = "" if bound is None else f" (the matrix products alone take {bound:.2f})"
        print(
            f"Goals, {dtype}: reference/PyTorch <= {GOALS['max_ratio_to_torch']}: {words[met['ratio_to_torch']]}"
            f"{reachable}; "
            f"fraction of peak >= {GOALS['min_fraction_of_peak']:.0%}: {words[met['fraction_of_peak']]}; "
            f"loop overhead <= {GOALS['max_loop_overhead']:.0%}: {words[met['loop_overhead']]}"
        )


def _print_profile(profiles: dict) -> None:
    """Microseconds per training step of each layer method (``--profile``)."""
    dtypes = list(profiles)
    width = 46
    print("Reference, one training step of 128 examples [microseconds], from --profile:")
    labels = list(next(iter(profiles.values()))["parts"])
    rows = [(label, [p["parts"][label] * 1e6 for p in profiles.values()]) for label in labels]
    rows += [
        ("between the layers (model code, L2 term)", [p["between_layers"] * 1e6 for p in profiles.values()]),
        ("whole step", [p["step"] * 1e6 for p in profiles.values()]),
    ]
    print(f"{'':{width}}" + "".join(f"{d:>12}" for d in dtypes))
    for label, cells in rows:
        if max(cells) >= 5:  # leave out the activations' empty update()
            print(f"{label:{width}}" + "".join(f"{c:12.0f}" for c in cells))
    faults = [p["minor_faults_per_step"] for p in profiles.values()]
    print(f"{'minor page faults per step':{width}}" + "".join(f"{f:12.1f}" for f in faults))
    print()


def coordinate(args) -> dict:
    """Start the workers, let them take turns ``args.repeats`` times, print the table and the JSON line."""
    torch_available = importlib.util.find_spec("torch") is not None and not args.no_torch
    if not torch_available and not args.no_torch:
        print(f"PyTorch not installed: skipped ({TORCH_HINT})", flush=True)
    if args.data == "full":  # find (or download) the data once, visibly, before the workers read it quietly
        from dnn_course.datasets import load_dataset

        load_dataset("mnist", source="full", data_dir=args.data_dir, verbose=True)
    load_before = load_average()
    workers = {}
    try:
        for dtype in args.dtypes:
            workers[("reference", dtype)] = Worker("reference", dtype, args)
            if torch_available:
                workers[("torch", dtype)] = Worker("torch", dtype, args)
        runs = {key: [] for key in workers}
        order = list(workers)
        for repeat in range(args.repeats):
            shift = repeat % len(order)  # rotate who goes first, so no one always runs after the same neighbour
            for key in order[shift:] + order[:shift]:
                runs[key].append(workers[key].run())
    finally:
        for worker in workers.values():
            worker.close()

    first = workers[("reference", args.dtypes[0])].setup
    n_train = first["n_train"]
    flops = epoch_flops(LAYER_SIZES, n_train, BATCH_SIZE)
    results = {
        dtype: _summarise(
            workers[("reference", dtype)],
            runs[("reference", dtype)],
            workers.get(("torch", dtype)),
            runs.get(("torch", dtype), []),
            flops,
        )
        for dtype in args.dtypes
    }
    torch_setup = next((w.setup["torch"] for k, w in workers.items() if k[0] == "torch"), None)
    report = {
        "benchmark": "dnn_course epoch",
        "network": "-".join(map(str, LAYER_SIZES)) + " ReLU",
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "reg_lambda": REG_LAMBDA,
        "n_train": n_train,
        "data": first["data"],
        "threads": args.threads,
        "clock": args.clock,
        "repeats": args.repeats,
        "quick": args.quick,
        "torch_left_out": args.no_torch,
        "flops_per_epoch": flops,
        "flop_count": "matrix products only, 2*m*k*n each: forward, weight gradients, and input gradients "
        "of every layer but the first (skipped by both implementations)",
        "peak_used_for_fraction": "epoch shapes (the epoch's own matrix products replayed alone)",
        "machine": {
            "cpu": cpu_name(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "load_before": load_before,
            "load_after": load_average(),
        },
        "blas": {"numpy": first["blas"], "torch": torch_setup},
        "goals": GOALS,
        "machine_busy": max(load_before, load_average(), *(r["load_average"] for r in results.values()))
        > (os.cpu_count() or 1),
        "results": results,
    }
    _print_report(report)
    print(json.dumps(report), flush=True)
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repetitions per measurement (default 5)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS/PyTorch threads for every measurement (default: NumPy's BLAS default here)",
    )
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="wall: elapsed time (default); cpu: this process's CPU time, steadier on a busy "
        "machine with --threads 1 (with more threads it counts BLAS threads spinning)",
    )
    parser.add_argument(
        "--data",
        choices=("full", "embedded"),
        help="full: the 60,000 official training images (default); embedded: the 10,000 in the "
        "repository (default with --quick)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="directory with the official MNIST files (source full); "
        "default: dnn_course.datasets.load_dataset's search ($DNN_COURSE_DATA, the cache, ...)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a seconds-long smoke run: embedded data, 1,024 images, small square GEMMs, 1 repetition",
    )
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also time every layer method over 20 training steps (table of microseconds per step)",
    )
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    parser.add_argument(
        "--reference-dir",
        type=Path,
        help="folder with the four solution notebooks to benchmark instead of solutions/dnn_hw "
        "(to measure a proposed change before committing it)",
    )
    parser.add_argument("--square-size", type=int, default=None, help="size of the square GEMMs (default 2048)")
    parser.add_argument("--n-train", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--worker", choices=("reference", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--dtype", choices=DTYPES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train = args.n_train or QUICK["n_train"]
        args.square_size = args.square_size or QUICK["square_size"]
        args.repeats = args.repeats or QUICK["repeats"]
    args.data = args.data or ("embedded" if args.quick else "full")
    args.repeats = args.repeats or 5
    args.square_size = args.square_size or 2048
    if args.threads is None:
        args.threads = max((p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"), default=1)
    if args.repeats < 1 or args.threads < 1 or args.square_size < 1:
        parser.error("--repeats, --threads and --square-size must be positive")
    return args


def main(argv=None) -> dict | None:
    args = parse_args(argv)
    if args.worker == "reference":
        reference_worker(args)
        return None
    if args.worker == "torch":
        torch_worker(args)
        return None
    return coordinate(args)


if __name__ == "__main__":
    main()
