# Canvas Events: two commands set everything up on a fresh machine.
#   make run   serve the app with demo data on http://127.0.0.1:8000 (SQLite under var/ unless DATABASE_URL is set),
#              with the warehouse sync beside it (Procfile.dev, through honcho)
#   make test  the checks (ruff, mypy), then the whole suite against PostgreSQL (and Redis)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/canvas
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench bench-publish bench-warehouse bench-warehouse-publish compare chaos vendor clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

$(VENV)/.bench: requirements-bench.txt $(VENV)/.dev
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-bench.txt
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --silent
	touch $@

run: $(VENV)/.runtime
	mkdir -p var
	DEBUG=1 $(PY) manage.py migrate --noinput -v0
	DEBUG=1 $(PY) manage.py seed_demo
	@echo "Serving on http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/), the warehouse sync beside it"
	DEBUG=1 HOST=$(HOST) PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start -f Procfile.dev -p $(PORT)

# Test environment: production-like settings (DEBUG off) with HTTPS redirects off, since the test servers
# speak plain HTTP on loopback.
TEST_ENV := DEBUG=0 SECRET_KEY=test-only-secret-key-not-for-production \
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	CONN_MAX_AGE=0 ALLOWED_HOSTS=127.0.0.1,localhost,testserver SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0

test: $(VENV)/.dev node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(TEST_ENV) $(BIN)/mypy
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run -v1
	$(TEST_ENV) $(PY) manage.py collectstatic --noinput -v0
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(TEST_ENV) $(BIN)/mypy

# Benchmark, not part of `make test` (~10 minutes): its own database (canvas_bench) and Redis db (14), the
# production server pinned to one core and wrk to the other (and /v1/batch once more with the server on both,
# in rounds with the COPY baseline). Writes var/bench/benchmarks.md and .png; `make bench-publish` copies them to
# docs/, for a change that moves the figures (not after every run).
bench: $(VENV)/.bench
	command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(PY) -m bench.run $(BENCH_ARGS)

bench-publish:
	test -f var/bench/benchmarks.md || (echo "No report in var/bench/: run make bench first." >&2 && exit 1)
	cp var/bench/benchmarks.md var/bench/benchmarks.png docs/

# The warehouse at scale (issue 26), not part of `make bench`: 5 M events per team for two teams loaded through the
# ingest code into its own database (canvas_bench_warehouse, kept: a re-run with the same load and migrations
# skips the load, ~10 minutes, and the sync), then the sync, BI queries against native twins, ingest on the loaded
# table against an empty one, the CSV export. Writes var/bench/warehouse.md; exits 2 if a target is missed.
# bench/warehouse.py --help lists BENCH_WAREHOUSE_ARGS, e.g. "--events 1000000".
bench-warehouse: $(VENV)/.bench
	command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(PY) -m bench.warehouse $(BENCH_WAREHOUSE_ARGS)

bench-warehouse-publish:
	$(PY) -m bench.warehouse --publish

# Server CPU per request of the working tree against BASELINE (a git revision), by turns on one core (~5 min);
# bench/compare.py --help lists COMPARE_ARGS.
compare: $(VENV)/.bench
	test -n "$(BASELINE)" || (echo "Usage: make compare BASELINE=<git revision>" >&2 && exit 1)
	command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(PY) -m bench.compare $(BASELINE) $(COMPARE_ARGS)

# Fault injection: ~60 s of load on gunicorn (2 workers) while a worker is SIGKILLed every few seconds and a
# throwaway PostgreSQL cluster (never the shared one) crashes twice; exits 1 if an acknowledged event is lost,
# stored twice, or any request got a 500. chaos/run.py --help lists CHAOS_ARGS, e.g. CHAOS_ARGS="--duration 120".
chaos: $(VENV)/.dev
	$(PY) -m chaos.run $(CHAOS_ARGS)

vendor: node_modules/.installed
	mkdir -p static/vendor
	cp node_modules/@picocss/pico/css/pico.min.css static/vendor/
	cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/dist/chart.umd.min.js.map static/vendor/

clean:
	rm -rf $(VENV) var node_modules .pytest_cache .ruff_cache .mypy_cache
