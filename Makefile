# Two commands do all set-up on a fresh clone: `make dev` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PORT   ?= 8000

.PHONY: help dev test unit integration functional token lint clean package bench

$(STAMP): requirements.txt requirements-dev.txt
	@echo "installing the pinned dependencies into $(VENV) (the first time takes a minute or two) ..." >&2
	@rm -rf $(VENV)
	@$(PYTHON) -m venv $(VENV) >&2
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt >&2
	@touch $(STAMP)

## make help: this list.
help:
	@grep -E '^## make ' $(MAKEFILE_LIST) | sed -e 's/^## //'

## make dev [HOST=0.0.0.0] [PORT=8000] [MOTO_PORT=4566]: the API over emulated AWS on this machine; Ctrl-C stops it all.
dev: $(STAMP)
	@PORT=$(PORT) $(PY) -m local.devserver

## make test: every test tier: unit, then integration, then functional.
test: $(STAMP)
	@$(PY) -m pytest -q tests/unit tests/integration tests/functional

## make unit: the domain and the use cases over in-memory fakes (no AWS at all; seconds).
unit: $(STAMP)
	@$(PY) -m pytest -q tests/unit

## make integration: the app, its adapters and the real state machines over moto, in-process.
integration: $(STAMP)
	@$(PY) -m pytest -q tests/integration

## make functional: `make dev` as a process, driven over real HTTP, then stopped.
functional: $(STAMP)
	@$(PY) -m pytest -q tests/functional

## make token SUB=<user id> [GROUPS=moderators,services]: a bearer token `make dev` accepts.
token: $(STAMP)
	@$(PY) -m local.token --sub "$(SUB)" --groups "$(GROUPS)"

## make package STAGE=dev: synthesize the stack offline (build/<stage>/sam.json + deployment.zip), lint it.
STAGE ?= dev
package: $(STAMP)
	@$(PY) -m pip install --quiet --disable-pip-version-check cfn-lint==1.58.0 >&2
	@$(PY) -m infra.build --stage $(STAGE)
	@$(VENV)/bin/cfn-lint build/$(STAGE)/sam.json && echo "cfn-lint: build/$(STAGE)/sam.json is clean"

## make bench: measurements, reported as ratios or counts (never timed tests).
bench: $(STAMP)
	@$(PY) -m bench.timer_transitions
	@$(PY) -m bench.evidence_throughput
	@$(PY) -m bench.evidence_memory
	@$(PY) -m bench.first_request

## make lint: ruff and mypy (files and settings in pyproject.toml), both clean.
lint: $(STAMP)
	@$(PY) -m ruff check app.py chalicelib local infra bench tests
	@$(PY) -m mypy

## make clean: remove the virtualenv and local state.
clean:
	rm -rf $(VENV) .local .pytest_cache .hypothesis
