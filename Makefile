# Single entry point of the course. Every target creates the local virtual
# environment (.venv) on first use and installs the exact pins of requirements.txt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv book lint format test test-fast lab regenerate-exercises exercises fixtures book-results \
        reference-experiments bench clean release students-requirements

help:
	@echo "make book       build the course website into _build/html (offline, warnings are errors)"
	@echo "                ANSWERS=1: with the model answers, after the deadline (_build/answers/_build/html)"
	@echo "make test       lint, then run the whole test suite (before a commit; what CI runs)"
	@echo "make lint       ruff: the lint rules and the format of pyproject.toml (make format rewrites)"
	@echo "make test-fast  the unit tests only, in parallel: the edit loop (under a minute)"
	@echo "make lab        copy the exercises to my-work/ (once) and open them in JupyterLab"
	@echo "make regenerate-exercises"
	@echo "                rewrite exercises/ from solutions/ with nbgrader (instructors; alias: make exercises)"
	@echo "make fixtures   regenerate the tests' reference values from solutions/ (instructors)"
	@echo "make book-results"
	@echo "                rewrite book/results/0[1-6]_*.json, the numbers the chapters show, from solutions/"
	@echo "                (about 40 s; BOOK_RESULTS_ARGS=--check compares instead of writing)"
	@echo "make reference-experiments"
	@echo "                rerun chapter 6's reference experiments into book/results/ (hours of CPU;"
	@echo "                REFERENCE_ARGS='--only mnist --data embedded' runs a part, --quick a test in seconds)"
	@echo "make release    write the students' kit to release/ (folder and zip), checked for answers"
	@echo "make students-requirements"
	@echo "                rewrite requirements-students.txt (the kit's pins) from requirements-students.in"
	@echo "                and requirements.txt (STUDENTS_ARGS=--check compares instead of writing)"
	@echo "make bench      benchmark one training epoch against PyTorch and the matmul peak, then notebooks"
	@echo "                05 and 06 as a student runs them, idle and with two competing processes"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "This course needs Python 3.11 or newer, but $(PYTHON) is Python " + sys.version.split()[0] + ". Install Python 3.11 or newer and run make again with PYTHON=python3.11 (or python3.12, ...).")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# ANSWERS=1 builds the site with the answers (book/answers/: model answers of the written
# questions, the reference's tuned configuration) for after the deadline, into
# _build/answers/_build/html; the default site never holds them.
ANSWERS ?=
book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --keep-going $(if $(ANSWERS),--toc _toc_answers.yml --path-output _build/answers)

# Every test has a tier (tests/conftest.py): unit (pure functions, seconds), integration (one kernel,
# notebook, subprocess or sandbox run), e2e (book build, browser check, benchmark, rehearsal, classes).
# `make test` runs them all; `make test-fast` runs the unit tier on every core (pytest-xdist).
# ruff's rules and line length are in pyproject.toml; `make format` applies the formatter and the safe fixes.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest

PYTEST_ARGS ?=
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m unit -n auto -q $(PYTEST_ARGS)

# Students work on a copy, so exercises/ stays as released and `git pull` never conflicts.
# Served from the repository's root (not from $(WORK)/dnn_hw) so that the notebooks' Read-first
# links, ../../book/*.md, stay inside the server's root; it opens on the copy of the notebooks.
WORK     ?= my-work
LAB_ARGS ?=
lab: $(STAMP)
	test -d $(WORK)/dnn_hw || (mkdir -p $(WORK) && cp -r exercises/dnn_hw $(WORK)/dnn_hw)
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/$(WORK)/dnn_hw $(LAB_ARGS)

# It regenerates: exercises/ is nbgrader's output from solutions/, never edited by hand.
regenerate-exercises: $(STAMP)
	$(BIN)/python scripts/generate_exercises.py

exercises: regenerate-exercises

fixtures: $(STAMP)
	$(BIN)/python scripts/make_fixtures.py

# What the chapters show from the reference (printed outputs, gradient checks, curves of small
# networks): the book builds without solutions/, from these files.
BOOK_RESULTS_ARGS ?=
book-results: $(STAMP)
	$(BIN)/python scripts/make_book_results.py $(BOOK_RESULTS_ARGS)

# Chapter 6's experiments with the reference (the brief's activations on MNIST, the Fashion-MNIST
# search). The full runs take hours; the script's docstring shows how to split them over processes.
REFERENCE_ARGS ?=
reference-experiments: $(STAMP)
	$(BIN)/python scripts/run_reference_experiments.py $(REFERENCE_ARGS)

# The students' kit: release/dnn-course-kit/ (push it to the students' repository, repository.url
# in _config.yml) and release/dnn-course-kit.zip (for a learning platform). It stops if it finds an answer.
release: $(STAMP)
	$(BIN)/python scripts/make_release.py

# The kit's requirements.txt: what requirements-students.in needs, pinned as requirements.txt pins it,
# read from the installed packages' metadata (so after `make venv`). Run it when either file changes.
STUDENTS_ARGS ?=
students-requirements: $(STAMP)
	$(BIN)/python scripts/students_requirements.py $(STUDENTS_ARGS)

# The benchmark runs with OpenBLAS's own kernel choice (some machines set OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE to force an older one); it reports which kernel ran. PyTorch is optional:
# `.venv/bin/pip install torch==2.13.0` (CPU build) adds it to the comparison.
# On a shared machine: make bench BENCH_ARGS="--threads 1 --clock cpu"
# Then the experiment workload (bench/bench_experiment.py): notebook 05's three 100-epoch runs (and the
# same networks in PyTorch) and notebook 06's default search, once as the machine is and once with two
# competing CPU-bound processes (about 15 minutes on 2 cores). EXPERIMENT_ARGS="--save
# bench/results/experiments.json" re-records the times the notebooks, the guide and README state.
BENCH_ARGS ?=
EXPERIMENT_ARGS ?=
bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/bench_epoch.py $(BENCH_ARGS)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/bench_experiment.py --under-load $(EXPERIMENT_ARGS)

clean:
	rm -rf _build .pytest_cache
