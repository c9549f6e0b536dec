# Every CI step (GitHub Actions, Jenkins) is one of these targets: keep logic in `slipway`, not here.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# INSTALLER=pip installs with pip (>= 24) instead of uv; both read the same lock file.
INSTALLER ?= uv
LOCK ?= requirements/dev.txt
PORT ?= 8080
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv data pipeline run serve test test-unit lint lock bench bench-serve clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/.installed-$(INSTALLER): $(LOCK) requirements/bootstrap.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/bootstrap.txt
ifeq ($(INSTALLER),uv)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r $(LOCK)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
else
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
endif
	touch $@

venv: $(BIN)/.installed-$(INSTALLER) ## Create .venv and install the locked dependencies

lock: ## Re-resolve the lock files from pyproject.toml (after changing a dependency)
	$(BIN)/uv pip compile pyproject.toml --quiet --python-version 3.11 --python-platform linux \
		--extra serving --extra pipeline --extra dev -o requirements/dev.txt
	$(BIN)/uv pip compile pyproject.toml --quiet --python-version 3.11 --python-platform linux \
		--extra serving -c requirements/dev.txt -o requirements/serving.txt

data: venv ## Generate the example churn batches into data/raw if absent, and track them with DVC
	$(BIN)/slipway example-data --if-absent
	$(BIN)/dvc add --quiet data/raw

pipeline: venv ## Run the DVC pipeline (dvc repro)
	$(BIN)/dvc repro

run: data pipeline ## Set up, prepare the example data, run the pipeline, then serve the model
	@echo "Pipeline done: bundle in models/, metrics in reports/metrics.json, gate in reports/gate.md."
	@$(MAKE) --no-print-directory serve

# The image runs the same command with the same config module (see Dockerfile).
serve: venv ## Serve models/ on 127.0.0.1:$PORT (default 8080) with the image's gunicorn settings
	@echo "Serving on http://127.0.0.1:$(PORT)/ (model card), /predict, /v2/models/slipway/infer, /metrics"
	SLIPWAY_BIND=127.0.0.1:$(PORT) SLIPWAY_MODEL_DIR=models SLIPWAY_REPORTS_DIR=reports \
		$(BIN)/gunicorn -c python:slipway.serving.gunicorn_conf slipway.serving.wsgi:app

test: venv ## Run the whole test suite (unit and integration)
	$(BIN)/pytest

test-unit: venv ## Run only the unit tests
	$(BIN)/pytest -m "not integration"

lint: venv ## Lint the Python code
	$(BIN)/ruff check src tests bench

bench: venv ## Run the pipeline benchmark (100k and 1M rows)
	$(BIN)/python bench/pipeline.py

bench-serve: venv ## Serving benchmark: our server vs MLServer vs a constant-response floor (wrk)
	bench/serve.sh

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache
