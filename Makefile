# MMSA — the commands a user runs. `make train` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PKG_SRC := packages/envs/src packages/sale/src packages/worldmodel/src packages/marl_core/src
INSTALL_INPUTS := constraints.txt pyproject.toml $(wildcard packages/*/pyproject.toml)

.PHONY: setup train test lint typecheck pytest serve serve-stop bench dist clean

setup: $(STAMP)

# One pip command installs every package editable, with the extras the tests need, through
# constraints.txt (torch is pinned there: without it pip pulls a multi-GB CUDA build).
$(STAMP): $(INSTALL_INPUTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt \
		-e 'packages/envs[all]' -e packages/sale -e packages/worldmodel -e packages/marl_core \
		-e '.[dev]'
	@touch $(STAMP)

train: setup
	$(BIN)/mmsa train

test: setup lint typecheck pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy $(PKG_SRC)

pytest: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: setup
	$(BIN)/python -m flows.serve start

serve-stop:
	$(BIN)/python -m flows.serve stop

-include make/flows.mk
-include make/plots.mk

bench: setup
	$(BIN)/python bench/envs.py

# Wheels and sdists of the five distributions into dist/ (PyPA build, each wheel from its sdist);
# installing one package from there: README.md, "Layout".
dist: setup
	PYTHON=$(BIN)/python make/dist.sh dist

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache dist
