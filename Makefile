# Frontline: `make run` serves the API on an embedded PostgreSQL; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEPS_HASH := $(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
# Two installs in one venv: serving needs the package and its runtime dependencies alone
# (`make run`); the checks need the dev tools too (Playwright, pandas, mypy, schemathesis).
# The dev install includes the runtime one, so it marks both stamps done.
RUN_STAMP := $(VENV)/.installed-run-$(DEPS_HASH)
DEV_STAMP := $(VENV)/.installed-dev-$(DEPS_HASH)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# constraints.txt pins every package, so a new release upstream cannot change a CI run
# (`make lock` refreshes it from the current venv).
$(RUN_STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	@rm -f $(VENV)/.installed-run-* && touch $@

$(DEV_STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $(RUN_STAMP) $@

.PHONY: install-run
install-run: $(RUN_STAMP) ## create .venv and install Frontline with what serving needs (no dev tools)

.PHONY: install
install: $(DEV_STAMP) ## create .venv and install Frontline with its dev tools

DEMO ?= 1
.PHONY: run
run: install-run ## serve the API on 127.0.0.1:8000, embedded PostgreSQL in ./data (DEMO=0: no seed)
	$(BIN)/frontline serve $(if $(filter 1,$(DEMO)),--demo,)

.PHONY: stop-db
stop-db: install-run ## stop the embedded PostgreSQL that `make run` left running
	$(BIN)/frontline stop-db

.PHONY: test
test: install lint typecheck pytest ## every check: ruff, mypy --strict, the test suite

.PHONY: lint
lint: install ## ruff: lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: typecheck
typecheck: install ## mypy --strict
	$(BIN)/mypy

# The inner loop: tests/unit needs no database and no browser (tests/unit/conftest.py refuses
# the PostgreSQL fixture there), so neither chromium nor postgres-amcheck is a prerequisite.
.PHONY: unit
unit: install ## the unit tests alone: no database, no browser (tests/unit)
	$(BIN)/pytest tests/unit -q

.PHONY: check
check: install lint typecheck unit ## the fast loop: ruff, mypy --strict, the unit tests

# The map page's browser tests drive Debian's chromium through Playwright (never a browser
# download): installed here when missing, as root, the way CI's fresh machine needs it.
.PHONY: chromium
chromium: ## Debian's chromium for the browser tests (apt-get install when it is missing)
	@command -v chromium >/dev/null || { \
	  apt-get -o DPkg::Lock::Timeout=600 update && \
	  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y chromium; }

# The PostgreSQL crash check needs pg_amcheck with the amcheck extension, which the embedded
# server lacks: Debian's PostgreSQL (contrib is part of postgresql-15), installed when missing.
.PHONY: postgres-amcheck
postgres-amcheck: ## Debian's PostgreSQL with amcheck for the crash check (apt-get install when missing)
	@ls /usr/share/postgresql/*/extension/amcheck.control >/dev/null 2>&1 || { \
	  apt-get -o DPkg::Lock::Timeout=600 update && \
	  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
	    --no-install-recommends postgresql postgresql-contrib; }

# The pooler test runs the service behind Debian's PgBouncer in transaction mode
# (docs/deployment.md): installed when missing, as chromium is.
.PHONY: pgbouncer
pgbouncer: ## Debian's PgBouncer for the pooler test (apt-get install when it is missing)
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || { \
	  apt-get -o DPkg::Lock::Timeout=600 update && \
	  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
	    --no-install-recommends pgbouncer; }

.PHONY: pytest
pytest: install chromium postgres-amcheck pgbouncer ## the test suite (real PostgreSQL: embedded, or DATABASE_URL)
	$(BIN)/pytest

# The browser tests write their screenshots into pytest's temp folders, so `make test` leaves
# the tracked pictures alone; this runs the three that take the docs' pictures over docs/img/.
.PHONY: screenshots
screenshots: install chromium ## retake the map's pictures in docs/img/ (README.md, docs/map.md)
	FRONTLINE_SCREENSHOTS=docs/img $(BIN)/pytest tests/browser -q \
	  -k "screenshot_of_the_demo or at_390_px or disputed_area_is_hatched"

.PHONY: openapi-examples
openapi-examples: install ## capture the OpenAPI document's example answers again (service/api/examples.json)
	FRONTLINE_WRITE_EXAMPLES=1 $(BIN)/pytest tests/api/test_openapi_examples.py -q \
	  -k what_the_service_answers

.PHONY: lock
lock: install ## re-pin constraints.txt from the venv (after changing dependencies)
	{ head -2 constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e'; } > constraints.new
	mv constraints.new constraints.txt

.PHONY: fmt
fmt: install ## format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: bench
bench: install ## the log's benchmarks at 1,000,000 events, projections off (docs/benchmarks.md)
	$(BIN)/python -m bench.run --service-env FRONTLINE_PROJECTIONS=off

.PHONY: bench-projections
bench-projections: install ## the same as shipped (projections on), at 100,000 events
	$(BIN)/python -m bench.run --scale 100000 --requests 2000 --warmup 200 --rounds 1

.PHONY: reliability
reliability: install ## kill the service 20 times while it writes; count what was lost (docs/reliability.md)
	$(BIN)/python -m reliability.crash_service --rounds 20

.PHONY: crash-postgres
crash-postgres: install postgres-amcheck ## pg_ctl stop -m immediate 20 times while 4 writers post, then pg_amcheck; and the canary, which must lose (docs/reliability.md)
	$(BIN)/python -m reliability.crash_postgres --rounds 20
	$(BIN)/python -m reliability.crash_postgres --canary --rounds 3

.PHONY: faults
faults: install ## latency, resets and blackholes between the service and PostgreSQL: nothing acknowledged lost, /ready 503, recovery
	$(BIN)/python -m reliability.fault_proxy --cycles 3

.PHONY: attack
attack: install ## attacks without a key (slow clients, 10 MB keys, idle streams) vs a legitimate client's p99 and success (docs/reliability.md)
	$(BIN)/python -m reliability.attack

.PHONY: model
model: install ## the stateful model test, long: 200 examples of 50 steps (docs/reliability.md)
	set -o pipefail; FRONTLINE_MODEL_EXAMPLES=200 FRONTLINE_MODEL_STEPS=50 \
	  $(BIN)/pytest tests/api/test_model.py -q -s 2>&1 | grep -v '\[info '

# POST /v1/admin/rebuild is left out of the long run: it refolds the whole log in one request,
# and the thousands of conflicting events fuzzing piles on one place make it outlast the 15 s
# request timeout (the policy's cost; docs/reliability.md). The short run covers it.
.PHONY: fuzz
fuzz: install ## schemathesis, every check and phase, against a served instance (at most 10 minutes; docs/reliability.md)
	$(BIN)/python -m reliability.fuzz --max-time 600 --exclude-path /v1/admin/rebuild

.PHONY: bench-front
bench-front: install ## the projections' benchmarks at 1,000,000 events: ingest on/off, state box, rebuild
	$(BIN)/python -m bench.front

.PHONY: bench-rebuild
bench-rebuild: install ## the rebuild at 100,000 events: speed against a cursor fold, memory, p99 beside it
	$(BIN)/python -m bench.rebuild --scale 100000

.PHONY: bench-map
bench-map: install chromium ## the map at 20,000 places: first view, 20 one-day steps, longest task, areas off/on (docs/map.md)
	$(BIN)/pytest tests/browser/test_map_scale_bench.py -m bench -q -s

.PHONY: docker-check
docker-check: ## build the image with podman and check /ready (installs podman; slow)
	bash scripts/docker-check.sh

.PHONY: clean
clean: ## remove the venv and caches (keeps ./data)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
