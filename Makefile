# aqsha — every target bootstraps what it needs from nothing (python3 + PyPI).
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(VENV)/bin/python -m
PYTEST_ARGS ?=

.PHONY: help setup test unit integration lint fmt types run schemas clean

help:
	@echo "make run    - start the platform and drive the demo"
	@echo "make test   - set up from nothing, then lint, types and the whole suite"
	@echo "make lint / fmt / types / schemas / clean"

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

test: setup lint types
	$(RUN) pytest $(PYTEST_ARGS)

unit: setup
	$(RUN) pytest -m unit $(PYTEST_ARGS)

integration: setup
	$(RUN) pytest -m "integration or e2e" $(PYTEST_ARGS)

# Regenerate the committed JSON Schemas of every contract (docs/contracts/).
schemas: setup
	$(RUN) shared.contracts.export

run: setup
	@echo "make run will: start Tansu (or compose with Apache Kafka where Docker exists),"
	@echo "apply topics and migrations, start payments, bonus, billing and notify as separate"
	@echo "FastStream processes, and drive the demo. It lands with the platform issue."

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .hypothesis
