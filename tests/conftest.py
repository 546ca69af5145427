"""Data fixtures shared by the test suite.

* ``full_data_dir``: the directory of the full official datasets (``mnist/``,
  ``fashion-mnist/``), from ``DNN_COURSE_FULL_DATA`` or ``../shared/data`` next to
  the repository; tests that use it are skipped, with the reason, when it is absent.
* ``isolated_data_env``: no ``DNN_COURSE_DATA``, an empty cache in a temporary
  directory, no system package directories, and mirrors that point at a closed
  port on 127.0.0.1, so a test can never read the user's data or reach the internet.
* ``fake_official``: tiny stand-ins for the official files, accepted as official
  (their checksums are patched in for the test), to test the loading order fast.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def full_data_path() -> Path:
    """Where the full official datasets are expected (they may be absent)."""
    return Path(os.environ.get("DNN_COURSE_FULL_DATA") or REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def full_data_dir() -> Path:
    path = full_data_path()
    missing = [name for name in ("mnist", "fashion-mnist") if not (path / name).is_dir()]
    if missing:
        pytest.skip(
            f"the full datasets are not at {path} (missing {', '.join(m + '/' for m in missing)}): "
            "set DNN_COURSE_FULL_DATA to a directory holding mnist/ and fashion-mnist/"
        )
    return path


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def unreachable_url() -> str:
    return closed_port_url()


@pytest.fixture
def isolated_data_env(tmp_path, monkeypatch):
    from dnn_course import dataset_files, download

    cache = tmp_path / "cache"
    monkeypatch.delenv("DNN_COURSE_DATA", raising=False)
    monkeypatch.setenv("DNN_COURSE_CACHE", str(cache))
    for variable in download.MIRRORS_ENV.values():
        monkeypatch.setenv(variable, closed_port_url())
    monkeypatch.setattr(dataset_files, "SYSTEM_DIRS", {name: () for name in dataset_files.DATASET_NAMES})
    monkeypatch.setattr(download, "DEFAULT_BACKOFF", 0.0)
    monkeypatch.setattr(download, "DEFAULT_TIMEOUT", 5.0)
    return SimpleNamespace(cache=cache)


@pytest.fixture
def fake_official(tmp_path, monkeypatch):
    """Factory ``make(name, n_train=30, n_test=20)``: writes four small official-looking files.

    Returns a namespace with ``dir`` (the files, gzipped, flat), ``arrays`` (role ->
    uint8 array: images ``(n, 28, 28)``, labels ``(n,)``) and ``sha256`` (role -> digest,
    also patched into ``datasets.OFFICIAL_SHA256[name]``).
    """
    from dnn_course import datasets, idx

    def make(name: str, *, n_train: int = 30, n_test: int = 20) -> SimpleNamespace:
        rng = np.random.default_rng(list(datasets.DATASET_NAMES).index(name))
        arrays = {}
        for split, n in (("train", n_train), ("test", n_test)):
            arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            arrays[f"{split}_labels"] = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        directory = tmp_path / f"official-{name}"
        sha256 = {}
        for role, array in arrays.items():
            idx.write_idx(directory / f"{datasets.FILE_NAMES[role]}.gz", array)
            sha256[role] = idx.sha256_hex(idx.encode_idx(array))
            monkeypatch.setitem(datasets.OFFICIAL_SHA256[name], role, sha256[role])
        return SimpleNamespace(name=name, dir=directory, arrays=arrays, sha256=sha256)

    return make


@pytest.fixture(scope="module")
def reference():
    """The reference implementation from solutions/ (skipped where solutions/ is absent, as in students' copies)."""
    from dnn_course.reference import load_reference

    try:
        return load_reference()
    except FileNotFoundError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def skip_or_fail():
    """``skip_or_fail(message)``: skip the test here, but fail it when ``CI`` is set (CI installs what the suite needs)."""

    def skip(message: str) -> None:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{message}. CI is set, so this test must run: install what it needs in .ci/run.")
        pytest.skip(message)

    return skip


@pytest.fixture(scope="session")
def bubblewrap(skip_or_fail) -> None:
    """Tests that need the bubblewrap sandbox (the autograder's expected grades assume it)."""
    from autograder import sandbox

    level, why = sandbox.detect_isolation()
    if level != sandbox.ISOLATION_BWRAP:
        skip_or_fail(f"needs bubblewrap (apt-get install bubblewrap) and user namespaces or root; here: {why}")


# ---------------------------------------------------------------------------------------------------
# Test tiers. Every test has exactly one of three markers, given here, in one place:
#
# * ``unit``: pure functions in this process (no kernel, subprocess, sandbox, notebook run or book
#   build). ``make test-fast`` runs this tier in parallel (pytest-xdist): the edit loop.
# * ``integration``: one kernel, notebook, subprocess or sandbox run for one thing.
# * ``e2e``: whole flows: the book build and browser check, the benchmark, the term rehearsal, the
#   sample and hostile classes, the kit's offline install.
#
# A unit test also takes at most a few seconds of CPU: a slower in-process check (a training run, a
# scan of the whole site) is integration, so the fast tier stays under a minute.
#
# ``make test`` runs all three. A test's tier: its entry in TEST_TIERS (module::function, for the few
# tests that differ from their module), else ``e2e`` if it is marked ``slow`` (minutes), else
# ``integration`` if it is marked ``fulldata`` (reads the full datasets), else its module's entry in
# MODULE_TIERS. A module missing from MODULE_TIERS stops the collection, so a new
# test file must be given a tier here. A ``unit`` test that starts a process (subprocess, fork, exec,
# so also a kernel or the sandbox) fails with the name of what it started (see _guard_unit_tier).
# ---------------------------------------------------------------------------------------------------
TIERS = ("unit", "integration", "e2e")

MODULE_TIERS = {
    "test_assignment.py": "unit",  # the seventh notebook's grading run is slow (e2e)
    "test_autograder_corpus.py": "e2e",
    "test_autograder_fuzz.py": "integration",
    "test_autograder_hostile.py": "unit",  # the hostile class is graded by its slow (e2e) tests
    "test_autograder_units.py": "unit",
    "test_bench.py": "e2e",
    "test_book_backprop_and_extras.py": "unit",
    "test_book_prose.py": "unit",
    "test_book_site.py": "e2e",
    "test_book_without_solutions.py": "e2e",
    "test_crosscheck.py": "integration",
    "test_datasets.py": "unit",
    "test_distributed.py": "unit",  # the cluster grading the rehearsal cohort is its slow (e2e) test
    "test_download.py": "unit",
    "test_environment.py": "unit",
    "test_exercise_checks.py": "integration",
    "test_experiment.py": "unit",
    "test_experiment_grading.py": "integration",
    "test_feedback_exporter.py": "unit",
    "test_feedback_pages.py": "unit",
    "test_gradcheck.py": "unit",
    "test_grading_records.py": "unit",
    "test_idx.py": "unit",
    "test_import_graph.py": "unit",
    "test_leak_policy.py": "unit",
    "test_model_builder.py": "unit",
    "test_nbgrader_cells.py": "unit",
    "test_nbgrader_exchange.py": "e2e",
    "test_nbgrader_regions.py": "unit",
    "test_notebook_import.py": "unit",
    "test_notebooks.py": "integration",
    "test_plotting.py": "unit",
    "test_readme_commands.py": "e2e",
    "test_reference_experiments_script.py": "integration",
    "test_regrade.py": "unit",  # the class graded twice is its slow (e2e) test
    "test_release.py": "integration",
    "test_similarity.py": "unit",
    "test_site_checks.py": "unit",
    "test_student_check.py": "integration",
    "test_tamper_probe.py": "integration",
    "test_warm_kernels.py": "integration",
    "test_term_rehearsal.py": "e2e",
    "test_tiers.py": "unit",
    "test_training.py": "unit",
}

TEST_TIERS = {
    "test_autograder_fuzz.py::test_mutated_notebooks_are_read_or_unreadable_never_an_error": "unit",
    "test_autograder_fuzz.py::test_mutated_crosscheck_values_are_disagreements_never_errors": "unit",
    # the benchmark's recorded figures against the prose, and its table: no benchmark run
    "test_bench.py::test_stated_grading_cpu_comes_from_the_recorded_comparisons": "unit",
    "test_bench.py::test_a_comparison_table_says_each_graders_runs_and_the_ratio_of_their_means": "unit",
    "test_bench.py::test_a_runs_control_group_counts_the_cpu_of_every_process_it_starts": "integration",
    "test_bench.py::test_stated_kernel_start_comes_from_the_recorded_measurement": "unit",
    "test_bench.py::test_stated_cost_of_a_class_comes_from_the_recorded_run": "integration",
    "test_bench.py::test_cpu_by_process_puts_each_process_of_a_grading_run_in_its_kind": "unit",
    "test_distributed.py::test_a_launcher_that_cannot_start_a_job_says_so_and_the_task_grades_without_it": "integration",
    "test_distributed.py::test_a_launcher_grades_a_job_as_a_local_run_does_and_kills_it_at_its_time_limit": "integration",
    "test_bench.py::test_process_accounting_records_a_grandchild_with_its_cpu_time": "integration",
    "test_feedback_exporter.py::test_gradebook_openings_share_an_engine_and_read_what_is_on_disk": "integration",
    "test_feedback_exporter.py::test_a_new_gradebook_records_the_migration_alembics_own_command_names": "integration",
    "test_autograder_units.py::test_bubblewrap_sandbox_blocks_network_files_memory_and_fork_bombs": "integration",
    "test_autograder_units.py::test_process_isolation_refuses_sockets_and_kills_detached_children": "integration",
    "test_autograder_units.py::test_detect_isolation_names_what_is_in_force": "integration",
    "test_autograder_units.py::test_matplotlib_in_the_bubblewrap_sandbox_prints_no_fontconfig_error": "integration",
    "test_autograder_units.py::test_notebook_validation_still_works_with_the_slow_iri_checker_blocked": "integration",
    # headless Chromium opens the pages (a process): integration, the rest of the module is unit
    "test_autograder_hostile.py::test_the_sandbox_sees_copies_and_the_host_folder_is_never_mounted": "integration",
    "test_autograder_hostile.py::test_a_sandboxed_process_holds_only_the_descriptors_it_is_given": "integration",
    "test_autograder_hostile.py::test_the_watchdog_stops_a_submission_whose_processes_together_pass_the_cap": "integration",
    "test_autograder_hostile.py::test_the_memory_cap_is_decided_in_one_place_and_reported": "integration",
    # the table of contents, the configuration and the checkers' constants and leak finder: no build, no browser
    "test_book_site.py::test_toc_lists_the_course_pages_in_order": "unit",
    "test_book_site.py::test_every_toc_page_has_its_source_file": "unit",
    "test_book_site.py::test_repository_url_is_written_once_in_the_config": "unit",
    "test_book_site.py::test_leak_finder_reports_published_solution_code": "unit",
    "test_book_site.py::test_layout_constants_follow_the_figure_style": "unit",
    "test_feedback_pages.py::test_feedback_page_typesets_its_math_offline_in_a_browser": "integration",
    "test_feedback_pages.py::test_class_report_table_sorts_by_a_click_offline": "integration",
    "test_leak_policy.py::test_default_site_gives_no_graded_answer": "integration",  # every page of the site: 10-20 s
    "test_similarity.py::test_scores_do_not_depend_on_the_process": "integration",
    "test_readme_commands.py::test_readme_names_the_commands_tested_here": "unit",
    "test_readme_commands.py::test_make_help_lists_the_instructors_targets_and_each_is_a_target": "unit",
}


def tier_of(item) -> str:
    """The tier of a collected test (see MODULE_TIERS); KeyError when its module has none."""
    module = Path(str(item.path)).name
    function = getattr(item, "originalname", None) or item.name.split("[")[0]
    tier = TEST_TIERS.get(f"{module}::{function}")
    if tier is None:
        if item.get_closest_marker("slow"):
            tier = "e2e"
        elif item.get_closest_marker("fulldata"):
            tier = "integration"
        else:
            tier = MODULE_TIERS[module]
    return tier


def _has_unit_tests(module: str) -> bool:
    return MODULE_TIERS.get(module, "unit") == "unit" or any(
        key.startswith(f"{module}::") and tier == "unit" for key, tier in TEST_TIERS.items()
    )


def pytest_ignore_collect(collection_path, config):
    """With ``-m unit`` (make test-fast), modules without a unit test are not even imported (each xdist worker
    collects on its own: this saves each a few seconds of imports)."""
    if (
        (config.getoption("markexpr", "") or "").strip() == "unit"
        and collection_path.name.startswith("test_")
        and collection_path.suffix == ".py"
        and not _has_unit_tests(collection_path.name)
    ):
        return True
    return None


_collected_key = pytest.StashKey[list]()


@pytest.hookimpl(tryfirst=True)  # before -m and -k deselect: tests/test_tiers.py checks every collected test
def pytest_collection_modifyitems(config, items):
    missing = sorted({Path(str(item.path)).name for item in items if Path(str(item.path)).name not in MODULE_TIERS})
    if missing:
        raise pytest.UsageError(
            f"{', '.join(missing)}: no test tier. Give each test module one in MODULE_TIERS of tests/conftest.py "
            f"({' / '.join(TIERS)}; see the comment above it)."
        )
    for item in items:
        item.add_marker(getattr(pytest.mark, tier_of(item)))
    config.stash[_collected_key] = list(items)


# Audit events of starting a process (https://docs.python.org/3/library/audit_events.html).
_SPAWN_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork", "os.forkpty"}
)
_unit_test_running = None


class UnitTierError(RuntimeError):
    """A ``unit`` test started a process: it belongs to the ``integration`` tier."""


def _guard_unit_tier(event: str, args: tuple) -> None:
    item = _unit_test_running
    if item is not None and event in _SPAWN_EVENTS:
        what = f"{event} {args[0] if args else ''}".strip()
        item.stash.setdefault(_spawned_key, []).append(what)
        raise UnitTierError(
            f"{item.nodeid} is a unit test but started a process ({what}): "
            "give it the integration tier in tests/conftest.py"
        )


_spawned_key = pytest.StashKey[list]()


def pytest_configure(config):
    sys.addaudithook(_guard_unit_tier)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    global _unit_test_running
    _unit_test_running = item if item.get_closest_marker("unit") else None
    try:
        return (yield)
    finally:
        _unit_test_running = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield
    spawned = item.stash.get(_spawned_key, [])
    if spawned:  # in case the code under test caught UnitTierError
        pytest.fail(
            f"a unit test started a process ({'; '.join(spawned)}): give it the integration tier in tests/conftest.py",
            pytrace=False,
        )
    return result
