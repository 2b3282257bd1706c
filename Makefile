# streamclf — one command for each thing a person does.
SHELL := /bin/bash
VENV ?= .venv
# examples/ run in their own environment, with only the clients downstream teams use.
EXAMPLES_VENV ?= .venv-examples
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
BIN := $(VENV)/bin
export STREAMCLF_STATE_DIR ?= $(CURDIR)/.streamclf

.PHONY: install examples-env test unit integration lint demo standin bench bench-quick chaos loop clean validate-deploy

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, exactly this spec (a CPU wheel); the project's range is then satisfied.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[local,dev,onnx]'
	touch $@

install: $(VENV)/.installed

$(EXAMPLES_VENV)/.installed: examples/requirements.txt
	python3 -m venv $(EXAMPLES_VENV)
	$(EXAMPLES_VENV)/bin/pip install -q -r examples/requirements.txt
	touch $@

examples-env: $(EXAMPLES_VENV)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install examples-env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	STREAMCLF_EXAMPLES_PYTHON=$(abspath $(EXAMPLES_VENV))/bin/python $(BIN)/pytest -q -p no:cacheprovider tests

unit: install
	$(BIN)/pytest -q tests/unit

integration: install examples-env
	STREAMCLF_EXAMPLES_PYTHON=$(abspath $(EXAMPLES_VENV))/bin/python $(BIN)/pytest -q tests/integration

demo: install
	$(PY) -m admin.demo

# The trained stand-in of roberta-base width the bench's roberta-base rows run on
# (benchmarks/standin.py): trained once (long, resumable), then cached under .streamclf/standin/.
standin: install
	$(PY) -m benchmarks.standin

bench: install standin
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.report --write-readme
	$(PY) -m benchmarks.readme_perf --write

bench-quick: install
	$(PY) -m benchmarks.run --quick
	$(PY) -m benchmarks.report --write-readme
	$(PY) -m benchmarks.readme_perf --write

# 20,000 events, 3 workers killed and restarted, Redis restarted, a hot swap, poison records:
# writes benchmarks/results/chaos.json (the short version runs in `make test`).
chaos: install
	$(PY) -m benchmarks.chaos; status=$$?; $(PY) -m benchmarks.chaos.readme --write; exit $$status

# Drift -> review -> labels back -> candidate -> shadow -> promote, on a real domain shift
# (hotel to book reviews from ../shared/data): writes benchmarks/results/loop.json
# (the short version, on the shipped sample, runs in `make test`).
loop: install
	$(PY) -m benchmarks.loop

clean:
	rm -rf $(VENV) $(EXAMPLES_VENV) .streamclf .pytest_cache

# Compose, Dockerfiles, Kubernetes manifests, Prometheus/Grafana: offline checks (no Docker).
validate-deploy: install
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(BIN)/kubectl kustomize deploy/k8s/overlays/cpu > /dev/null
	$(BIN)/kubectl kustomize deploy/k8s/overlays/gpu > /dev/null
	$(BIN)/pytest -q -p no:cacheprovider tests/unit/test_deploy.py
