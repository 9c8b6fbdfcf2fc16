# Everything a newcomer runs: `make run` (the relay against a local Svix emulator) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv run test unit integration e2e deploy-checks lint check bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: venv
	$(PY) scripts/run_local.py

# Every kind of test; or one kind: unit (no process, no socket), integration (the emulators),
# e2e (the Pub/Sub emulator and killed processes), deploy-checks (deploy.sh and monitoring/).
test: venv
	$(PY) -m pytest

unit: venv
	$(PY) -m pytest tests/unit

integration: venv
	$(PY) -m pytest tests/integration

e2e: venv
	$(PY) -m pytest tests/e2e

deploy-checks: venv
	$(PY) -m pytest tests/deploy

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

check: lint test

bench: venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
