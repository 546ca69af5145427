"""bench/bench_epoch.py and bench/bench_experiment.py in their quick settings: they run, print a table and
one parseable JSON line.

No timing is asserted (speed is measured by ``make bench``, not by tests); the
checks are on what the benchmark reports: the FLOP count of the brief's network,
the keys of the JSON line, internally consistent ratios, and that the reference
and PyTorch (when installed) trained the same network from the same weights.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dnn_course.reference import solutions_dir

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPT = BENCH / "bench_epoch.py"
HAS_TORCH = importlib.util.find_spec("torch") is not None

pytestmark = pytest.mark.skipif(
    not (solutions_dir() / "04_model_l2.ipynb").exists(),
    reason="the benchmark times the reference solution in solutions/dnn_hw",
)

RESULT_KEYS = {
    "reference_epoch_s",
    "reference_model_only_s",
    "gemm_only_s",
    "loop_only_s",
    "reference_gflops",
    "gemm_peak_epoch_shapes_gflops",
    "gemm_peak_square_gflops",
    "fraction_of_peak",
    "fraction_of_square_peak",
    "share_outside_gemm",
    "share_model_outside_gemm",
    "share_loop",
    "loop_overhead",
    "reference_peak_rss_mb",
    "reference_tracemalloc_peak_mb",
    "reference_first_epoch_loss",
    "torch_epoch_s",
    "torch_square_gflops",
    "ratio_reference_to_torch",
    "torch_peak_rss_mb",
    "torch_first_epoch_loss",
    "goals_met",
    "load_average",
    "ratio_gemm_only_to_torch",
}


def load_flops_module():
    spec = importlib.util.spec_from_file_location("bench_flops", BENCH / "flops.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flop_count_of_the_brief_network():
    flops = load_flops_module()
    # per example: forward 2*(784*500 + 500*500 + 500*10), the same for dW, dx for layers 2 and 3 only
    per_example = 3 * 2 * (784 * 500 + 500 * 500 + 500 * 10) - 2 * 784 * 500
    assert flops.epoch_flops([784, 500, 500, 10], 1, 1) == per_example == 3_098_000
    assert flops.epoch_flops([784, 500, 500, 10], 60_000, 128) == 60_000 * per_example
    with_first = flops.epoch_flops([784, 500, 500, 10], 60_000, 128, first_input_gradient=True)
    assert with_first == 60_000 * (per_example + 2 * 784 * 500)
    assert flops.batch_sizes(300, 128) == [128, 128, 44]
    names = [g.name for g in flops.step_gemms([784, 500, 500, 10], 128)]
    assert names == [
        "fc1.forward x@W",
        "fc2.forward x@W",
        "fc3.forward x@W",
        "fc3.dW x.T@d",
        "fc3.dx d@W.T",
        "fc2.dW x.T@d",
        "fc2.dx d@W.T",
        "fc1.dW x.T@d",
    ]


@pytest.fixture(scope="module")
def quick_run():
    """One quick run (embedded data, 256 images, float32 and float64, one thread, with the step profile)."""
    completed = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--n-train",
            "256",
            "--threads",
            "1",
            "--square-size",
            "128",
            "--profile",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_prints_a_table_then_one_json_line(quick_run):
    lines = quick_run.strip().splitlines()
    report = json.loads(lines[-1])
    assert any(line.startswith("reference epoch, train() [s]") for line in lines)
    assert any(line.startswith("NumPy BLAS:") and "kernel" in line for line in lines)
    assert any(line.startswith("Reference, one training step") for line in lines)
    if HAS_TORCH:
        assert any(line.startswith("PyTorch epoch [s]") for line in lines)
    else:
        assert "PyTorch not installed: skipped (pip install torch==2.13.0)" in lines

    assert report["network"] == "784-500-500-10 ReLU"
    assert report["batch_size"] == 128 and report["n_train"] == 256 and report["threads"] == 1
    assert report["flops_per_epoch"] == 256 * 3_098_000
    assert set(report["results"]) == {"float32", "float64"}
    assert isinstance(report["machine_busy"], bool) and report["clock"] == "wall"
    assert report["blas"]["numpy"]["pools"][0]["architecture"]
    assert set(report["blas"]["numpy"]["environment"]) >= {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}
    for dtype, result in report["results"].items():
        assert RESULT_KEYS <= set(result), f"{dtype}: missing {RESULT_KEYS - set(result)}"
        assert result["reference_epoch_s"] > 0 and result["gemm_only_s"] > 0
        assert result["fraction_of_peak"] == pytest.approx(
            report["flops_per_epoch"] / result["reference_epoch_s"] / 1e9 / result["gemm_peak_epoch_shapes_gflops"]
        )
        assert result["share_outside_gemm"] == pytest.approx(result["share_model_outside_gemm"] + result["share_loop"])
        assert result["reference_peak_rss_mb"] > 10
        profile = result["profile_per_step"]
        assert {"fc1.forward", "fc1.backward", "fc1.update", "relu1.forward", "softmax.ce_loss"} <= set(
            profile["parts"]
        )
        assert profile["step"] == pytest.approx(sum(profile["parts"].values()) + profile["between_layers"])
        if HAS_TORCH:
            assert result["ratio_reference_to_torch"] == pytest.approx(
                result["reference_epoch_s"] / result["torch_epoch_s"]
            )
            assert result["ratio_gemm_only_to_torch"] == pytest.approx(result["gemm_only_s"] / result["torch_epoch_s"])
            # same initial weights, batch order and SGD: the first epoch's losses agree (L2 term ~1e-5 apart)
            assert result["torch_first_epoch_loss"] == pytest.approx(result["reference_first_epoch_loss"], abs=1e-4)
        else:
            assert result["torch_epoch_s"] is None and result["goals_met"]["ratio_to_torch"] is None
            assert result["ratio_gemm_only_to_torch"] is None


# --- the experiment workload: bench/bench_experiment.py ------------------------------------------

EXPERIMENT = BENCH / "bench_experiment.py"


def load_experiment_bench():
    sys.path.insert(0, str(BENCH))  # the module imports its neighbour measure.py
    spec = importlib.util.spec_from_file_location("bench_experiment", EXPERIMENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def experiment_run():
    """One quick run, idle and with two competing processes (600 images, 2 epochs; 06 with 1 epoch)."""
    completed = subprocess.run(
        [sys.executable, str(EXPERIMENT), "--quick", "--under-load"], capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    return lines, json.loads(lines[-1])


def test_the_benchmark_runs_notebook_05_as_the_notebook_does():
    bench = load_experiment_bench()
    cell = next(
        c
        for c in nbformat.read(solutions_dir() / "05_mnist_activations.ipynb", as_version=4).cells
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "settings"
    )
    brief = re.search(r"^BRIEF = (dict\(.*\))$", cell.source, re.MULTILINE).group(1)
    assert eval(brief, {"dict": dict}) == bench.BRIEF  # noqa: S307 - the course's own notebook's literal
    activations = re.search(r"^ACTIVATIONS = (\[.*\])$", cell.source, re.MULTILINE).group(1)
    assert eval(activations) == bench.ACTIVATIONS  # noqa: S307 - the course's own notebook's literal
    configurations = bench.search_configurations()
    assert len(configurations) >= 3 and all(
        {"hidden", "activation", "epochs", "learning_rate", "reg_lambda"} <= set(c) for c in configurations
    )


def test_goals_are_judged_against_the_issue_s_limits():
    bench = load_experiment_bench()

    def passes(idle_05, relu, loaded_05=None, idle_wall=None):
        """A pass whose CPU times are given; its wall times are twice as long unless given (a busy 'idle' pass)."""
        idle_wall = 2 * idle_05 if idle_wall is None else idle_wall
        result = {
            "idle": {
                "summary": {
                    "notebook_05_cpu_s": idle_05,
                    "slowest_activation_to_relu_cpu": relu,
                    "notebook_05_wall_s": idle_wall,
                    "slowest_activation_to_relu": 2 * relu,
                }
            }
        }
        if loaded_05 is not None:
            result["loaded"] = {"summary": {"notebook_05_wall_s": loaded_05}}
        return result

    # one thread: the idle pass's CPU time is the idle time, whatever else ran during its wall time
    goals = bench.judge(passes(170.0, 1.2, 500.0), full_settings=True, threads=1)
    assert [goals[k]["met"] for k in ("notebook_05_idle_seconds", "slowest_activation_to_relu", "loaded_to_idle")] == [
        True,
        True,
        True,
    ]
    assert goals["notebook_05_idle_seconds"]["value"] == 170.0
    assert goals["loaded_to_idle"]["value"] == pytest.approx(500 / 170)
    goals = bench.judge(passes(181.0, 1.6, 560.0), full_settings=True, threads=1)
    assert [g["met"] for g in goals.values()] == [False, False, False]
    # several threads: CPU time counts every thread, so the wall times are judged
    goals = bench.judge(passes(100.0, 0.7, 280.0, idle_wall=90.0), full_settings=True, threads=2)
    assert goals["notebook_05_idle_seconds"]["value"] == 90.0 and goals["slowest_activation_to_relu"]["value"] == 1.4
    assert goals["loaded_to_idle"]["value"] == pytest.approx(280 / 90) and goals["loaded_to_idle"]["met"] is False
    goals = bench.judge(passes(100.0, 1.0), full_settings=True)
    assert goals["loaded_to_idle"]["value"] is None and goals["loaded_to_idle"]["met"] is None
    assert all(g["met"] is None for g in bench.judge(passes(1.0, 1.0, 2.0), full_settings=False).values())


def test_experiment_benchmark_reports_idle_and_loaded_side_by_side(experiment_run):
    lines, report = experiment_run
    assert report["quick"] is True and report["threads"] == 1  # train()'s default
    assert set(report["passes"]) == {"idle", "loaded"}
    assert report["passes"]["idle"]["competing_processes"] == 0
    assert report["passes"]["loaded"]["competing_processes"] == 2
    header = next(line for line in lines if line.strip().startswith("idle"))
    assert header.split() == ["idle", "loaded", "loaded/idle"]
    assert any(line.startswith("Notebook 05, reference (NumPy, train()), 2 epochs each:") for line in lines)
    assert any(line.startswith("Notebook 06, default search (") for line in lines)
    assert "Goals not judged: --quick runs a few images for 2 epochs." in lines
    assert all(goal["met"] is None for goal in report["goals"].values())
    # the competing processes are gone once the benchmark has finished
    pids = report["competitor_pids"]
    assert len(pids) == 2
    for pid in pids:
        cmdline = Path(f"/proc/{pid}/cmdline")
        assert not cmdline.exists() or b"while True" not in cmdline.read_bytes()

    for label, run in report["passes"].items():
        numpy_result, summary = run["numpy"], run["summary"]
        assert (numpy_result["n_train"], numpy_result["n_val"], numpy_result["n_test"]) == (540, 60, 500)
        assert set(numpy_result["runs"]) == {"sigmoid", "relu", "tanh"}
        for activation, result in numpy_result["runs"].items():
            assert result["epochs"] == 2 and result["wall_s"] > 0 and result["cpu_s"] > 0
            assert result["wall_per_epoch_s"] == pytest.approx(result["wall_s"] / 2)
            assert result["float64_arrays"] == [], f"{label} {activation}: float64 in a float32 run"
        assert summary["notebook_05_wall_s"] == pytest.approx(sum(r["wall_s"] for r in numpy_result["runs"].values()))
        assert summary["slowest_activation_to_relu"] == pytest.approx(
            max(r["wall_s"] for r in numpy_result["runs"].values()) / numpy_result["runs"]["relu"]["wall_s"]
        )
        assert [s["epochs"] for s in numpy_result["search"]] == [1] * len(numpy_result["search"]) != []
        assert summary["notebook_06_search_wall_s"] == pytest.approx(sum(s["wall_s"] for s in numpy_result["search"]))
        if HAS_TORCH:
            torch_runs = run["torch"]["runs"]
            assert summary["numpy_to_torch_05"] == pytest.approx(
                summary["notebook_05_wall_s"] / sum(r["wall_s"] for r in torch_runs.values())
            )
            for activation, result in numpy_result["runs"].items():
                # same initial weights, batch order and SGD: the same first epoch (L2 term ~1e-5 apart)
                assert torch_runs[activation]["first_epoch_loss"] == pytest.approx(result["first_epoch_loss"], abs=1e-4)
                assert torch_runs[activation]["test_acc"] == pytest.approx(result["test_acc"], abs=0.01)
        else:
            assert run["torch"] is None and summary["numpy_to_torch_05"] is None
    if not HAS_TORCH:
        assert "PyTorch not installed: skipped (pip install torch==2.13.0)" in lines


RECORDED = BENCH / "results" / "experiments.json"


def _intro(notebook: Path) -> str:
    cells = nbformat.read(notebook, as_version=4).cells
    return next(c.source for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "intro")


def test_stated_times_come_from_the_recorded_benchmark():
    """The times the notebooks, the student guide and README state are those of bench/results/experiments.json."""
    report = json.loads(RECORDED.read_text())
    assert report["full_settings"] and report["threads"] == 1 and set(report["passes"]) == {"idle", "loaded"}
    assert report["settings"]["epochs"] == 100 and report["passes"]["loaded"]["competing_processes"] == 2
    figures = load_experiment_bench().stated_figures(report)
    root = BENCH.parent
    stated = {
        root / "README.md": [
            "05_cpu",
            "05_activations_cpu",
            "05_wall",
            "05_load",
            "05_loaded_wall",
            "05_loaded_load",
            "05_loaded_to_cpu",
            "torch_05_cpu",
            "06_cpu",
            "06_wall",
        ],
        root / "book" / "student_guide.md": [
            "05_cpu",
            "05_epoch_cpu",
            "05_loaded_wall",
            "05_loaded_load",
            "05_loaded_epoch_wall",
            "05_loaded_to_cpu",
            "06_cpu",
            "06_loaded_wall",
        ],
        root / "book" / "06_experiments.md": ["05_cpu", "05_activations_cpu", "06_cpu"],
        solutions_dir() / "05_mnist_activations.ipynb": [
            "05_cpu",
            "05_activations_cpu",
            "05_epoch_cpu",
            "05_loaded_wall",
            "05_loaded_load",
            "05_loaded_epoch_wall",
        ],
        solutions_dir() / "06_fashion_tuning.ipynb": ["06_cpu", "06_loaded_wall"],
    }
    for path, keys in stated.items():
        text = _intro(path) if path.suffix == ".ipynb" else path.read_text(encoding="utf-8")
        for key in keys:
            assert figures[key] in text, f"{path.name} does not state {key} = {figures[key]!r} (from {RECORDED.name})"


def test_stated_grading_times_come_from_the_recorded_benchmark():
    """README and the instructor guide state the grading time of bench/results/autograder.json."""
    recorded = BENCH / "results" / "autograder.json"
    report = json.loads(recorded.read_text())
    assert report["class"] == "rehearsal cohort" and report["failed"] == [] and report["submissions"] >= 8
    assert report["isolation"].startswith("bubblewrap") and report["machine"]["cpus"] == 2
    from scripts import bench_autograder

    figures = bench_autograder.stated_figures(report)
    root = BENCH.parent
    for path in (root / "README.md", root / "book" / "instructor_guide.md", root / "autograder" / "README.md"):
        text = " ".join(path.read_text(encoding="utf-8").split())
        for key in ("submissions", "jobs", "wall", "per_submission", "load", "class_of_100"):
            assert figures[key] in text, f"{path.name} does not state {key} = {figures[key]!r} (from {recorded.name})"
    # every grading time README states comes from that file: no row of an unsaved run (an earlier row gave
    # "7.6 s per submission, 13.8 CPU-seconds" for a generated class that no results file holds)
    rows = [
        line for line in (root / "README.md").read_text(encoding="utf-8").splitlines() if "bench_autograder.py" in line
    ]
    assert rows and all("bench/results/autograder.json" in row for row in rows), rows
    for stale in ("7.6 s per submission", "13.8 CPU-seconds", "5.2 s per submission", "4.8 s per submission"):
        assert stale not in " ".join((root / "autograder" / "README.md").read_text(encoding="utf-8").split())


def test_stated_grading_cpu_comes_from_the_recorded_comparisons():
    """The autograder README's "Where grading time goes" prints the saved comparisons of the benchmark
    (idle and with competing processes) and the phase table of the saved profiles, line for line."""
    from scripts import bench_autograder, profile_grading

    text = (BENCH.parent / "autograder" / "README.md").read_text(encoding="utf-8")
    compared = (
        ("autograder_cpu.json", 0),
        ("autograder_cpu_competing.json", 2),
        ("autograder_cpu_session.json", 0),
        ("autograder_cpu_decoded.json", 0),
    )
    for name, competing in compared:
        comparison = json.loads((BENCH / "results" / name).read_text())
        assert comparison["competing"] == competing and comparison["students"] >= 12
        assert all(run["failed"] == [] for runs in comparison["runs"].values() for run in runs)
        for line in bench_autograder.comparison_table(comparison):
            assert line in text, f"autograder/README.md does not print {line!r} (from {name})"
    for name, before in (("grading_phases.json", "1b8b302"), ("grading_phases_session.json", "7505799")):
        phases = json.loads((BENCH / "results" / name).read_text())
        assert {run["revision"] for run in phases["before"]} == {before} and len(phases["after"]) >= 2
        for row in profile_grading.comparison_rows(phases) + profile_grading.process_rows(phases):
            assert row in text, f"autograder/README.md does not hold the row {row!r} (from {name})"


def test_stated_cost_of_a_class_comes_from_the_recorded_run():
    """The autograder README's CPU time per submission for a class of 100 is bench/results/autograder_class.json's."""
    text = " ".join((BENCH.parent / "autograder" / "README.md").read_text(encoding="utf-8").split())
    for name in ("autograder_class.json", "autograder_class_before.json"):
        report = json.loads((BENCH / "results" / name).read_text())
        assert report["class"] == "generated" and report["submissions"] == 100 and report["failed"] == []
        assert report["isolation"].startswith("bubblewrap") and report["run_cpu_s_per_submission"] is not None
        stated = (
            f"{report['submissions']} generated submissions in {report['wall_s']:.0f} s with {report['jobs']} jobs on "
            f"{report['machine']['cpus']} cores: {report['run_cpu_s_per_submission']:.2f} CPU-seconds per submission"
        )
        assert stated in text, f"autograder/README.md does not state {stated!r} (from {name})"
    now = json.loads((BENCH / "results" / "autograder_class.json").read_text())["run_cpu_s_per_submission"]
    assert f"not reached.** {now:.1f} CPU-seconds per submission remain for a class of 100" in text
    from scripts.bench_autograder import mean_ratio

    decoded = json.loads((BENCH / "results" / "autograder_cpu_decoded.json").read_text())
    off = round(100 * (1 - mean_ratio(decoded, "run_cpu_s_per_submission")))
    assert f"before the last change, which takes {off}% off the run's CPU time" in text


def test_a_comparison_table_says_each_graders_runs_and_the_ratio_of_their_means():
    from scripts import bench_autograder

    def run(wall, machine, tree, load):
        return {
            "seconds_per_submission": wall,
            "machine_cpu_s_per_submission": machine,
            "tree_cpu_s_per_submission": tree,
            "machine": {"load_start": load},
        }

    comparison = {
        "students": 12,
        "jobs": 3,
        "competing": 0,
        "repeat": 2,
        "runs": {"abc1234": [run(10, 20, 8, 1.0), run(12, 22, 10, 2.0)], "this checkout": [run(5, 10, 4, 1.5)] * 2},
    }
    lines = bench_autograder.comparison_table(comparison)
    assert lines[0] == "12 generated submissions, 3 jobs, 0 competing processes, 2 runs each (in turn)"
    assert lines[2].split() == ["wall", "seconds", "10.00", "12.00", "5.00", "5.00", "0.45"]
    assert lines[3].split()[-1] == "0.48" and lines[4].split()[-1] == "0.44"
    assert lines[-1].startswith("load average at the start of the runs: 1.0 to 2.0")
    assert len(lines) == 6  # the run's own CPU was measured by neither: no row for it
    for runs, figures in zip(comparison["runs"].values(), ([6, 7], [3, 3]), strict=True):
        runs[:] = [{**r, "run_cpu_s_per_submission": f} for r, f in zip(runs, figures, strict=True)]
    lines = bench_autograder.comparison_table(comparison)
    assert lines[3].split() == ["CPU", "s", "(the", "run's)", "6.00", "7.00", "3.00", "3.00", "0.46"]


def test_a_runs_control_group_counts_the_cpu_of_every_process_it_starts():
    """What the benchmark calls the run's own CPU: a child's and a grandchild's (reaped by a shell) are counted."""
    import resource

    from bench.harness import own_cgroup_cpu

    busy = "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.4: pass"
    with own_cgroup_cpu() as group_cpu:
        before = group_cpu()
        if before is None:
            pytest.skip("no control group of its own can be made here (needs root or a delegated cgroup v2 folder)")
        child = subprocess.Popen([sys.executable, "-c", busy])  # started in the group: counted
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(["sh", "-c", f"{sys.executable} -c '{busy}' & wait"], check=True)
        child.wait()
        counted = group_cpu() - before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    waited = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    assert waited >= 0.75  # the two busy loops
    assert counted >= 0.9 * waited
    with own_cgroup_cpu() as fresh:  # a new group counts from zero; the old one is gone
        assert fresh() < 0.3


def test_stated_kernel_start_comes_from_the_recorded_measurement():
    """The autograder README's reason for the fork server states bench/results/kernel_start.json's means."""
    record = json.loads((BENCH / "results" / "kernel_start.json").read_text())
    assert len(record["fresh_cpu_s"]) == len(record["forked_cpu_s"]) >= 3

    def mean(values):
        return sum(values) / len(values)

    text = " ".join((BENCH.parent / "autograder" / "README.md").read_text(encoding="utf-8").split())
    stated = (
        f"a kernel started on its own costs {mean(record['fresh_cpu_s']):.2f} CPU-seconds, a forked one "
        f"{mean(record['forked_cpu_s']):.2f}, and the warmed interpreter "
        f"{record['fork_server_warm_up_cpu_s']:.2f} once"
    )
    assert stated in text


def _acct_record(pid: int, ppid: int, comm: str, cpu_ticks: int, forked: bool) -> bytes:
    from bench.cpu_by_process import ACCT_VERSION, AFORK, RECORD

    return RECORD.pack(
        AFORK if forked else 0, ACCT_VERSION, 0, 0, 0, 0, pid, ppid, 0, 0.0, cpu_ticks, 0, 0, 0, 0, 0, 0, 0,
        comm.encode(),
    )  # fmt: skip


def test_cpu_by_process_puts_each_process_of_a_grading_run_in_its_kind():
    """A local run's tree as process accounting records it: the host forks a job, which starts a fork
    server's sandbox (kernels forked, the last one ended by a ZeroMQ thread) and a cross-check's; the
    host also runs the font list's sandbox. Large CPU times check the comp_t decoding (exponent > 0)."""
    from bench.cpu_by_process import FORK_SERVER, HOST, JOB, OTHER_PYTHON, TOOLS, classify, read_records

    tree = [
        (10, 1, "python3", 900, False),  # the host (exec'd)
        (11, 10, "bwrap", 1, False),  # the font list's sandbox
        (12, 11, "python3", 50, False),
        (20, 10, "python3", 150, True),  # a job, forked
        (21, 20, "bwrap", 1, False),
        (22, 21, "python3", 80, False),  # the fork server, exec'd in its sandbox
        (23, 22, "python3", 20, True),  # kernel 1
        (25, 22, "ZMQbg/Reaper", 30, True),  # kernel 2
        (24, 20, "bwrap", 2, False),
        (26, 24, "python3", 15, False),  # the cross-check
        # a long process elsewhere: comp_t 12345 = 0x3039 -> mantissa 0x1039, exponent 1
        (30, 1, "python3", 12345, False),
    ]
    records = read_records(b"".join(_acct_record(*row) for row in tree))
    assert records[30]["cpu"] == (0x1039 << 3) / 100
    kinds = classify(records)
    assert kinds == {
        HOST: 9.0,
        TOOLS: 0.04,
        OTHER_PYTHON: pytest.approx(0.5 + 0.15 + (0x1039 << 3) / 100),
        JOB: 1.5,
        FORK_SERVER: 0.8,
        "kernel 1": 0.2,
        "kernel 2": 0.3,
    }


def test_process_accounting_records_a_grandchild_with_its_cpu_time():
    """The real acct(2) (root): the CPU time of a shell's child that burns 0.4 s is recorded."""
    from bench.cpu_by_process import run_accounted

    if os.geteuid() != 0:
        pytest.skip("process accounting needs root")
    burn = (
        f"{sys.executable} -c 'import time; end = time.process_time() + 0.4\nwhile time.process_time() < end: pass' &"
    )
    status, records = run_accounted(["sh", "-c", burn + " wait"])
    assert status == 0
    shells = {pid for pid, record in records.items() if record["comm"] == "sh"}
    burners = [
        record for record in records.values() if record["ppid"] in shells and record["comm"].startswith("python")
    ]
    assert len(burners) == 1 and 0.35 <= burners[0]["cpu"] <= 0.6, burners


def cpu_by_process_statements() -> dict[str, str]:
    """What the autograder README states from bench/results/cpu_by_process.json, as it writes it."""
    from bench.cpu_by_process import FORK_SERVER, JOB, comparison_rows, mean_by_label

    saved = json.loads((BENCH / "results" / "cpu_by_process.json").read_text())
    means = mean_by_label(saved)
    local, before = means["local this checkout"], means["cluster 507cd58"]
    loads = sorted(run["load_start"] for runs in saved["runs"].values() for run in runs)
    sandboxed = local[FORK_SERVER] + sum(seconds for kind, seconds in local.items() if kind.startswith("kernel "))
    return {
        "ROWS": "\n".join(comparison_rows(saved, "local this checkout", "cluster this checkout")),
        "LOADS": f"{loads[0]:.1f} to {loads[-1]:.1f}",
        "BEFORE_JOB": f"{before[JOB]:.2f}",
        "BEFORE_TOTAL": f"{before['total']:.2f}",
        "SANDBOXED": f"{sandboxed:.2f}",
    }


def test_stated_cpu_by_process_comes_from_the_recorded_accounting():
    """The autograder README's exact table by kind of process, and the figures its prose takes from it,
    are bench/results/cpu_by_process.json's (two runs of each label, the same class of 12)."""
    saved = json.loads((BENCH / "results" / "cpu_by_process.json").read_text())
    assert {label: len(runs) for label, runs in saved["runs"].items()} == {
        "local this checkout": 2, "cluster 507cd58": 2, "cluster this checkout": 2
    }  # fmt: skip
    assert {run["per"] for runs in saved["runs"].values() for run in runs} == {12}
    text = (BENCH.parent / "autograder" / "README.md").read_text(encoding="utf-8")
    flat = " ".join(text.split())
    stated = cpu_by_process_statements()
    for row in stated.pop("ROWS").splitlines():
        assert row in text, f"autograder/README.md does not hold the row {row!r}"
    assert f"starting at load averages of {stated['LOADS']} on 2 cores" in flat
    assert (
        f"spent {stated['BEFORE_JOB']} CPU-seconds per submission in the grading job and {stated['BEFORE_TOTAL']} in all"
        in flat
    )
    assert f"cost {stated['SANDBOXED']} CPU-seconds per submission together" in flat
