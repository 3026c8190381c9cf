# dli-exporter: the two commands of the README (`make demo`, `make test`) work on a fresh machine.
# They create .venv when it is missing or older than pyproject.toml.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
APT_PACKAGES := prometheus prometheus-alertmanager
# The image test (tests/test_image.py) builds and runs the Dockerfile with podman; the base image
# is a stand-in made with debootstrap (see tests/image/containers.conf for podman's settings).
IMAGE_PACKAGES := podman runc debootstrap uidmap fuse-overlayfs slirp4netns containernetworking-plugins catatonit

.PHONY: all demo test lint unit tools golden kit bench fuzz mutate clean help

all: test

help:
	@echo "make demo    run the exporter on a built-in simulated DLI API (http://127.0.0.1:9822/metrics)"
	@echo "make test    lint, type-check and run every test (installs what they need)"
	@echo "make golden  rewrite the golden exposition files after a deliberate change"
	@echo "make kit     write the rules, the PrometheusRule and the dashboard ConfigMap from deploy/kit (make test checks them)"
	@echo "make bench   sweep speed, API requests, CPU per job and memory against the targets (a few minutes)"
	@echo "make fuzz    property tests with fresh random examples, ten times as many (make test replays fixed ones)"
	@echo "make mutate  mutation testing of the pure modules against their unit tests; prints the kill rate"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: $(STAMP)
	$(BIN)/dli-exporter --demo

# Debian's promtool, prometheus and alertmanager for the end-to-end tests, and podman for the
# image test; installed only when missing.
tools:
	@if command -v promtool >/dev/null 2>&1 && command -v prometheus-alertmanager >/dev/null 2>&1 \
	    && command -v prometheus >/dev/null 2>&1 && command -v podman >/dev/null 2>&1 \
	    && command -v runc >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	else echo "make tools: not root and no sudo; install: $(APT_PACKAGES) $(IMAGE_PACKAGES)" >&2; exit 0; fi; \
	echo "installing $(APT_PACKAGES) $(IMAGE_PACKAGES) (Debian packages) for the end-to-end and image tests"; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	  $(APT_PACKAGES) $(IMAGE_PACKAGES) >/dev/null

lint: $(STAMP)
	$(BIN)/ruff check exporter tests deploy/alert-receiver deploy/kit
	$(BIN)/python deploy/kit/generate.py --check
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: $(STAMP) tools lint
	$(BIN)/pytest

# Timing targets live here, not in the tests (which only check that the harness runs).
kit: $(STAMP)
	$(BIN)/python deploy/kit/generate.py

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks.rules_bench
	$(BIN)/python -m tests.benchmarks.api_economy
	$(BIN)/python -m tests.benchmarks.probe_bench
	$(BIN)/python -m tests.benchmarks.bench

# Random exploration, kept out of `make test` (whose examples are fixed, so its verdict is the same
# on every run). A failure prints its example: add it to the test as an @example, then fix.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -m hypothesis tests \
	  || { echo "make fuzz: add the failing example above to its test as @example(...), then fix the code" >&2; exit 1; }

# Mutation testing (mutmut, configured in pyproject.toml): a few minutes on two cores.
mutate: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[mutate]'
	rm -rf mutants
	$(BIN)/mutmut run > /dev/null || true
	$(BIN)/python tests/mutation_report.py

golden: $(STAMP)
	UPDATE_GOLDEN=1 $(BIN)/pytest -q tests/test_collector.py -k golden

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache mutants
