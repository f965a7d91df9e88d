# Two commands set up a fresh machine (Python 3.11+, make, git):
#   make run   — virtualenv, install, migrate the SQLite database in ./data, serve on :8000
#                (127.0.0.1 only; `make run HOST=0.0.0.0` for phones on the local network)
#   make test  — install test dependencies, then ruff, mypy and pytest (SQLite and PostgreSQL)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck pytest bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.run-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.test-deps: pyproject.toml package-lock.json $(VENV)/.run-deps
	$(BIN)/python -m pip install -q -e '.[test]'
	@# axe-core for the accessibility tests (node_modules/, git-ignored); skipped without npm.
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the axe-core accessibility tests will be skipped"; fi
	@touch $@

run: $(VENV)/.run-deps
	$(BIN)/suggestbox serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.test-deps
	$(BIN)/ruff check suggestbox tests $(wildcard bench)

typecheck: $(VENV)/.test-deps
	$(BIN)/mypy

pytest: $(VENV)/.test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(VENV)/.test-deps
	$(BIN)/python bench/run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
