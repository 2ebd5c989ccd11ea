# aqsha — every target bootstraps what it needs from nothing (python3 + PyPI).
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(VENV)/bin/python -m
PYTEST_ARGS ?=

.PHONY: help setup test unit integration lint fmt types run schemas docs bench chaos trust clean

help:
	@echo "make run    - start the platform and drive the demo (ONCE=1: stop after it; NO_DEMO=1: no demo)"
	@echo "make test   - set up from nothing, then lint, types and the whole suite"
	@echo "make bench  - the end-to-end benchmark (SMOKE=1: short)"
	@echo "make chaos  - the fault-injection suite and its auditor (SEED=N to replay)"
	@echo "make trust  - the hostile-producer suite and its mutation check (verification off must fail)"
	@echo "make mutation - mutation testing of the pure modules, report in reports/mutation/ (long)"
	@echo "make lint / fmt / types / schemas / docs / clean"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	@touch $@

setup: $(VENV)/.synced

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .

fmt: setup
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

types: setup
	$(RUN) mypy

# The chaos mutation checks (minutes each) run in make chaos, not here; the quick chaos run does.
test: setup lint types
	$(RUN) pytest -m "not mutation" --durations=15 $(PYTEST_ARGS)

unit: setup
	$(RUN) pytest -m unit $(PYTEST_ARGS)

integration: setup
	$(RUN) pytest -m "integration or e2e" $(PYTEST_ARGS)

# Regenerate the committed JSON Schemas of every contract (docs/contracts/).
schemas: setup
	$(RUN) shared.contracts.export

# Regenerate every generated document: contract schemas, docs/topics.md, per-service AsyncAPI
# (docs/asyncapi/), the Strimzi topics and users (deploy/k8s/topics.yaml, users.yaml) and the compose
# broker's users and ACLs (deploy/kafka/kafka-init.sh), and the PrometheusRule (deploy/k8s/prometheusrule.yaml,
# from deploy/observability/aqsha-rules.yaml). Drift tests fail in make test until this is run and committed.
docs: schemas
	$(RUN) shared.topics_doc
	$(RUN) shared.ops.asyncapi
	$(RUN) shared.ops.strimzi
	$(RUN) shared.ops.monitoring

# The platform (broker, PostgreSQL, Redis, four service processes) and the demo; Ctrl-C stops it.
# ONCE=1: demo, summary, clean stop, exit code of the demo's checks. NO_DEMO=1: the platform only.
run: setup
	$(RUN) shared.ops.platform $(if $(ONCE),--once) $(if $(NO_DEMO),--no-demo) $(RUN_ARGS)

# The end-to-end benchmark (tests/bench, docs/performance.md): reports/bench/latest.json and a PNG.
# SMOKE=1: a short run (make test runs it too, asserting only that it produces results).
bench: setup
	$(RUN) tests.bench $(if $(SMOKE),--smoke) $(BENCH_ARGS)

# The seeded fault-injection suite (tests/chaos, docs/chaos.md): at least 2,000 commands and 30
# faults, the invariant auditor, reports/chaos/latest.json; then the mutation checks that show the
# auditor fails when the inbox or the idempotency guard is switched off. SEED=N replays a seed.
chaos: setup
	$(RUN) tests.chaos $(if $(SEED),--seed $(SEED)) $(CHAOS_ARGS)
	$(RUN) pytest -m mutation -p no:cacheprovider tests/chaos tests/integration/test_trust.py

# The hostile-producer suite (docs/security.md) against the running platform, then its mutation check:
# the same suite with the kernel's verification switched off (test-only) must fail.
trust: setup
	$(RUN) pytest -p no:cacheprovider tests/integration/test_trust.py tests/unit/test_trust.py

# Mutation testing of the pure modules (docs/testing.md): mutmut ([tool.mutmut] in pyproject.toml)
# mutates services/*/domain, shared/money, calendar, clock and the contracts' validators, and runs the
# unit tests that reach each mutant. Takes long (not in make test); fails if a domain package scores
# under 90 %. Report: reports/mutation/latest.json and latest.md. MUTATION_JOBS=N workers (default 2);
# KEEP=1 reuses mutmut's cache in mutants/ (survivors re-tested) instead of starting over.
.PHONY: mutation
mutation: setup
	$(RUN) tests.mutation --jobs $(or $(MUTATION_JOBS),2) $(if $(KEEP),--keep) $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .hypothesis mutants
