# Two commands do all set-up on a fresh clone: `make dev` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
REDOCLY := @redocly/cli@2.77.0
STAMP  := $(VENV)/.installed-$(shell echo $(REDOCLY) | cat requirements.txt requirements-dev.txt - | cksum | cut -d' ' -f1)
PORT   ?= 8000

.PHONY: help dev test unit integration functional browser deploy-tests token lint clean synth package deploy bench openapi

# checkov (the IaC scanner the tests run) pins its own dependency tree: it gets its own virtualenv.
CHECKOV_VERSION := 3.3.30
CHECKOV := .tools/checkov-$(CHECKOV_VERSION)/bin/checkov

$(CHECKOV):
	@echo "installing checkov $(CHECKOV_VERSION) into .tools/ (once) ..." >&2
	@rm -rf .tools/checkov-$(CHECKOV_VERSION)
	@$(PYTHON) -m venv .tools/checkov-$(CHECKOV_VERSION) >&2
	@.tools/checkov-$(CHECKOV_VERSION)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION) >&2

$(STAMP): requirements.txt requirements-dev.txt
	@echo "installing the pinned dependencies into $(VENV) (the first time takes a minute or two) ..." >&2
	@rm -rf $(VENV)
	@$(PYTHON) -m venv $(VENV) >&2
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt >&2
	@npm install --silent --no-audit --no-fund --no-update-notifier --prefix $(VENV)/node $(REDOCLY) >&2
	@touch $(STAMP)

## make help: this list.
help:
	@grep -E '^## make ' $(MAKEFILE_LIST) | sed -e 's/^## //'

## make dev [HOST=0.0.0.0] [PORT=8000] [MOTO_PORT=4566] [DEMO=1]: the API and the console over emulated AWS on this
## machine (DEMO=1: with sample cases); Ctrl-C stops it all.
DEMO ?=
dev: $(STAMP)
	@PORT=$(PORT) DEMO=$(DEMO) $(PY) -m local.devserver

## make test: every test tier: unit, integration, the synthesized stack (deploy), functional, then the
## browser tier when this machine has a Chromium (it says so plainly when not).
test: $(STAMP) $(CHECKOV)
	@CHECKOV=$(CHECKOV) $(PY) -m pytest -q tests/unit tests/integration tests/deploy tests/functional
	@$(MAKE) --no-print-directory browser-if-chromium

CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser)
.PHONY: browser-if-chromium
browser-if-chromium:
	@if [ -n "$(CHROMIUM)" ]; then CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q tests/browser; else \
		echo "make test: NO CHROMIUM on this machine, so the browser tier (tests/browser) DID NOT RUN." >&2; \
		echo "           Install Debian's package (sudo apt-get install chromium) and run make browser." >&2; fi

## make browser: the console in a real headless Chromium (Debian's `chromium` package) against `make dev`.
browser: $(STAMP)
	@CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q tests/browser

## make unit: the domain and the use cases over in-memory fakes (no AWS at all; seconds).
unit: $(STAMP)
	@$(PY) -m pytest -q tests/unit

## make integration: the app, its adapters and the real state machines over moto, in-process.
integration: $(STAMP)
	@$(PY) -m pytest -q tests/integration

## make deploy-tests: synthesize the stack once, then check the bundle, the template and its policies.
deploy-tests: $(STAMP) $(CHECKOV)
	@CHECKOV=$(CHECKOV) $(PY) -m pytest -q tests/deploy

## make functional: `make dev` as a process, driven over real HTTP, then stopped.
functional: $(STAMP)
	@$(PY) -m pytest -q tests/functional

## make token SUB=<user id> [GROUPS=moderators,services] | SUB=<service> SCOPES=orders.write,tracking.write:
## a bearer token `make dev` accepts (a person's ID token, or a service's client-credentials token).
token: $(STAMP)
	@$(PY) -m local.token --sub "$(SUB)" --groups "$(GROUPS)" --scopes "$(SCOPES)"

## make synth [STAGE=dev]: the deployable stack, offline: build/<stage>/sam.json (+ deployment.zip,
## layer.zip beside it), linted by cfn-lint; prints the template's path and nothing else on stdout.
STAGE ?= dev
synth: $(STAMP)
	@$(PY) -m infra.build --stage $(STAGE)
	@$(VENV)/bin/cfn-lint build/$(STAGE)/sam.json >&2 && echo "cfn-lint: build/$(STAGE)/sam.json is clean" >&2

## make package: the same as make synth (kept for habit).
package: synth

## make deploy STAGE=prod [STACK=buyer-protection-prod] [ARTIFACTS=<s3 bucket>]: synth, then a real deployment
## with the AWS CLI (credentials and region from your AWS profile; see docs/DEPLOYMENT.md).
STACK ?= buyer-protection-$(STAGE)
deploy: synth
	@test -n "$(ARTIFACTS)" || { echo "make deploy needs ARTIFACTS=<an S3 bucket for the code archives>" >&2; exit 2; }
	aws cloudformation package --template-file build/$(STAGE)/sam.json --s3-bucket $(ARTIFACTS) \
		--s3-prefix $(STACK) --output-template-file build/$(STAGE)/packaged.yaml >&2
	aws cloudformation deploy --template-file build/$(STAGE)/packaged.yaml --stack-name $(STACK) \
		--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND $(DEPLOY_ARGS)
	aws cloudformation describe-stacks --stack-name $(STACK) --query 'Stacks[0].Outputs' --output table

## make bench: measurements as ratios or counts against a baseline of the same run, written to bench/results/*.json;
## it ends with a soak of make dev (concurrent clients playing whole disputes, SOAK_SECONDS=120, SOAK_CLIENTS=8).
bench: $(STAMP)
	@$(PY) -m bench.timer_transitions
	@$(PY) -m bench.evidence_throughput
	@$(PY) -m bench.evidence_memory
	@$(PY) -m bench.evidence_budget
	@$(PY) -m bench.first_request
	@$(PY) -m bench.bundle_import
	@$(PY) -m bench.local_overhead
	@$(PY) -m bench.standing_read
	@$(PY) -m bench.console_render
	@$(PY) -m bench.sweep_reads
	@$(PY) -m bench.cost
	@$(PY) -m bench.dev_memory
	@$(PY) -m bench.soak
	@$(PY) -m bench.readme

## make openapi: write openapi/components/requests.yaml from chalicelib/api/schemas.py and bundle openapi/ into
## openapi.yaml with the pinned Redocly CLI (offline), and docs/RULES.md's transition table from the domain's
## TRANSITIONS; the tests check all three are up to date.
openapi: $(STAMP)
	@$(PY) openapi/build.py

## make lint: ruff and mypy (files and settings in pyproject.toml), both clean.
lint: $(STAMP)
	@$(PY) -m ruff check app.py chalicelib local infra bench tests openapi
	@$(PY) -m mypy
	@$(PY) -m mypy --strict app.py chalicelib

## make clean: remove the virtualenv and local state.
clean:
	rm -rf $(VENV) .tools build .local .pytest_cache .hypothesis
