# Two entry points for a fresh machine:
#   make demo   set up, then push, pull and hand off the fixture patients on a local HAPI server
#   make test   set up, then run lint, types and every test tier
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck unit acceptance clean bench lock

# The exact versions (with hashes) of requirements-dev.lock, then the project itself; `make lock`
# refreshes the lock files from pyproject.toml (docs/deployment.md).
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/fhir-bridge demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# The tiers that need no server: unit (in process) and acceptance (the CLI as a subprocess).
unit: setup
	$(BIN)/pytest tests/unit

acceptance: setup
	$(BIN)/pytest tests/acceptance

# The integration tests talk to the local HAPI sandbox: build and start it first, empty (reset:
# nothing left from earlier runs, such as Subscriptions to callbacks long gone, which HAPI keeps
# retrying), and stop it afterwards unless it was already running (then it is used as it is).
# The storage and sync tests also run on PostgreSQL: unless FHIR_BRIDGE_TEST_POSTGRES_URL names
# a server, a throw-away local cluster is started (sandbox/postgres.sh, port FHIR_BRIDGE_PG_PORT) and stopped after.
test: lint typecheck
	@if $(BIN)/fhir-bridge sandbox status >/dev/null 2>&1; then started=no; else started=yes; \
	  $(BIN)/fhir-bridge sandbox reset || exit 1; fi; \
	pg_started=no; \
	if [ -z "$$FHIR_BRIDGE_TEST_POSTGRES_URL" ]; then \
	  FHIR_BRIDGE_TEST_POSTGRES_URL=$$(sandbox/postgres.sh start) || exit 1; pg_started=yes; \
	  export FHIR_BRIDGE_TEST_POSTGRES_URL; fi; \
	status=0; $(BIN)/pytest || status=$$?; \
	if [ $$pg_started = yes ]; then sandbox/postgres.sh stop; fi; \
	if [ $$started = yes ]; then $(BIN)/fhir-bridge sandbox stop; fi; \
	exit $$status

# The benchmarks (bench/, docs/performance.md): a HAPI sandbox on BENCH_PORT is started (or reset
# when already running), results go to bench/results/. BENCH_ARGS e.g. "--smoke" or "--patients 100".
BENCH_PORT ?= 8080
BENCH_ARGS ?=
bench: setup
	$(BIN)/pip install --quiet -e '.[server,postgres,dev,bench]'
	$(BIN)/python -m bench --port $(BENCH_PORT) $(BENCH_ARGS)

LOCK := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet --upgrade
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv
	$(LOCK) --extra server --extra postgres -o requirements.lock
	$(LOCK) --extra server --extra postgres --extra dev -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
