# The README's commands. Everything installs itself into .venv (project) and .venv-sam (SAM CLI pins
# its own boto3 and pydantic, so it lives apart).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM_CLI_VERSION := 1.170.0
# sam build checks that the runtime's Python (python3.13) is on PATH.
# (A pyenv shim named python3.13 that does not run is skipped.)
PY313 := $(shell for p in $$HOME/.pyenv/versions/3.13*/bin/python3.13 $$(command -v python3.13); do \
	"$$p" -c "" 2>/dev/null && { echo "$$p"; break; }; done)
PY313_DIR := $(patsubst %/,%,$(dir $(PY313)))
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo demo-wire test lint unit static validate build bench burst clean lambda-image sam-local local-build

demo: $(VENV)/.installed ## run every events/*.json through keyguard against an emulated account
	$(BIN)/keyguard demo

# The same demo against `keyguard emulator` in a process of its own, over HTTP on 127.0.0.1: every event must
# end as it does in process (events/expected/outcomes.json). The emulator is stopped however the demo ends.
demo-wire: $(VENV)/.installed
	@port=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	$(BIN)/keyguard emulator --port $$port > .emulator.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python -m keyguard.local.server wait http://127.0.0.1:$$port && \
	$(BIN)/keyguard demo --endpoint-url http://127.0.0.1:$$port

test: lint unit demo demo-wire static validate build sam-local ## everything CI runs

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

unit: $(VENV)/.installed
	$(BIN)/python -m pytest

static: ## checkov, bandit, parliament, pip-audit (own venv .venv-scan); SKIPPED is printed, not passed
	PYTHON=$(PYTHON) scripts/static_checks.sh

validate: $(VENV)/.installed $(SAM_VENV)/.installed
	$(BIN)/cfn-lint template.yaml templates/*.yaml  # templates/: organization mode's member StackSets (not SAM)
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml

build: $(SAM_VENV)/.installed
	@if [ -z "$(PY313_DIR)" ]; then echo "sam build needs python3.13 on PATH (the functions' runtime)"; exit 1; fi
	PATH="$(PY313_DIR):$$PATH" $(SAM_VENV)/bin/sam build --template template.yaml --build-dir .aws-sam/build

# sam local invoke here: a copy of the template for x86_64 that declares AWS_ENDPOINT_URL (never deployed),
# built as the real one is. Docker, the base image and the emulator are started by scripts/sam_local.sh.
LOCAL := .aws-sam/local

lambda-image: $(VENV)/.installed ## the python3.13 Lambda base image sam local invoke builds FROM (no registry)
	scripts/sam_local.sh image

local-build: $(VENV)/.installed $(SAM_VENV)/.installed
	$(BIN)/python scripts/sam_local.py template --out $(LOCAL)/template.yaml
	@if [ -z "$(PY313_DIR)" ]; then echo "sam build needs python3.13 on PATH (the functions' runtime)"; exit 1; fi
	PATH="$(PY313_DIR):$$PATH" $(SAM_VENV)/bin/sam build --template $(LOCAL)/template.yaml --build-dir $(LOCAL)/build

sam-local: local-build ## every events/*.json through the built functions (sam local invoke, Docker, emulator)
	SAM=$(SAM_VENV)/bin/sam scripts/sam_local.sh

bench: $(VENV)/.installed ## cold start, calls before containment, warm overhead, scale, Cloud Custodian side by side
	$(BIN)/python benchmarks/bench.py --with-custodian $(BENCH_ARGS)
	$(BIN)/python benchmarks/investigation.py

burst: $(VENV)/.installed ## 1,000 findings, 20% of IAM calls throttled: contained, lost, time, calls, retries
	$(BIN)/python benchmarks/burst.py

$(VENV)/.installed: pyproject.toml src/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet "aws-sam-cli==$(SAM_CLI_VERSION)"
	touch $@

clean:
	rm -rf $(VENV) $(SAM_VENV) .venv-scan .aws-sam .bench .cache/lambda-image
