# GeoSentinel — the commands a newcomer needs. `make` alone runs the tests and the linters, as CI does.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP   := $(VENV)/.installed

.PHONY: default install demo test lint typecheck bench lock clean services-up services-down web

default: test lint

## install: create .venv with the project and its dev tools (idempotent; instant when nothing changed)
install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

## lock: re-resolve the pinned dependencies after editing pyproject.toml
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock --quiet

## demo: seed a demo organisation and run the service with ~50 simulated bracelets (SQLite under ./var/)
demo: install
	$(BIN)/geosentinel demo --data-dir var

## test: install what the suite needs, start its servers in a throwaway folder, run every test, stop them
test: install
	bash scripts/test.sh

## bench: run the benchmarks and write docs/benchmarks.md
bench: install
	bash scripts/bench.sh

## web: rebuild the dashboard's bundle (src/geosentinel/dashboard/static/, committed) from web/ and its lock file
web:
	cd web && npm ci --no-audit --no-fund && npm run build

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
