# Workflow targets: the DVC pipeline and reports (included by the root Makefile, which also has
# `serve` / `serve-stop`: python -m flows.serve start|stop).
#
# DVC runs each stage's `python -m flows.stages ...` through the shell, so .venv/bin goes first
# on PATH: the stages then run with the project's interpreter without activating the venv.
VENV_PATH := PATH="$(CURDIR)/$(BIN):$$PATH"
PROFILE ?= smoke

.PHONY: repro repro-profile repro-paper report-runs test-flows

repro: setup  ## regenerate the results of params.yaml (the smoke profile unless switched)
	$(VENV_PATH) $(BIN)/dvc repro

repro-profile: setup  ## switch params.yaml to PROFILE (smoke|paper|ci) and reproduce
	$(BIN)/python -m flows.stages profile $(PROFILE)
	$(VENV_PATH) $(BIN)/dvc repro

repro-paper: setup  ## the paper profile as a DVC experiment (docs/design.md §5 budgets)
	$(VENV_PATH) $(BIN)/dvc exp run -S profile=paper

report-runs: setup  ## report of every run under runs/ into runs/report/ (no Prefect, no DVC)
	$(BIN)/python -m flows.report runs --out runs/report

test-flows: setup  ## the workflow tests only (Prefect server, DVC, Dask, reports)
	$(BIN)/python -m pytest tests/test_flows_units.py tests/test_report_stats.py \
		tests/test_report_runs.py tests/test_prefect_server.py tests/test_dvc_pipeline.py \
		tests/test_dask_runner.py
