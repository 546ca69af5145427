# Single entry point of the course. Every target creates the local virtual
# environment (.venv) on first use and installs the exact pins of requirements.txt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv book test lab exercises grade bench clean

help:
	@echo "make book       build the course website into _build/html (offline, warnings are errors)"
	@echo "make test       run the whole test suite"
	@echo "make lab        open the exercises in JupyterLab"
	@echo "make exercises  regenerate exercises/ from solutions/ with nbgrader"
	@echo "make bench      benchmark one training epoch (see README)"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --keep-going

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab exercises/

exercises: $(STAMP)
	$(BIN)/python scripts/generate_exercises.py

clean:
	rm -rf _build .pytest_cache
