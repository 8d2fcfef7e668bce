# Two commands do everything from a fresh clone: `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# HOST/PORT unset: KZFHIR_HOST/KZFHIR_PORT or 127.0.0.1:8080 (docs/configuration.md)
HOST ?=
PORT ?=

.PHONY: run demo test test-postgres postgres chromium fhir-js peer-medplum bench bench-compare lint typecheck clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/kzfhir serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

# beside a running `make run`: the Kazakhstan sample dataset, and tokens in data/demo-tokens.sh
demo: $(VENV)/.installed
	$(BIN)/kzfhir load --demo --base http://$${KZFHIR_HOST:-$(or $(HOST),127.0.0.1)}:$(or $(PORT),$${KZFHIR_PORT:-8080}) \
		--tokens data/demo-tokens.sh

# The tests start a real PostgreSQL (tests/pg.py): Debian's `postgresql` package, installed when no
# initdb is found on PATH or in /usr/lib/postgresql/*/bin (a no-op when present; apt-get needs root); and
# Debian's `pgbouncer`, which tests/postgres/test_pgbouncer.py and the contract suite put in front of it.
postgres:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	else echo "installing PostgreSQL for the tests (apt-get install postgresql)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; fi
	@if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then :; \
	else echo "installing pgbouncer for the tests (apt-get install pgbouncer)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; \
		(systemctl disable --now pgbouncer || service pgbouncer stop) >/dev/null 2>&1 || true; fi

# The portal's browser tests (tests/portal/test_browser_*.py) drive a real Chromium with Selenium: Debian's
# `chromium` and `chromium-driver` packages, installed when /usr/bin/chromedriver is missing (apt-get needs root).
chromium:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	else echo "installing Chromium for the portal's browser tests (apt-get install chromium chromium-driver)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; fi

# The independent FHIR XML converter (npm `fhir`, pinned by tools/fhir-js/package-lock.json) that
# tests/formats/test_xml_npm_live.py compares our XML with (docs/formats.md). `npm ci --prefer-offline`
# takes it from npm's cache when it was fetched once; without npm or the registry the live test skips and
# the committed comparison is still checked (tests/formats/test_xml_npm_agreement.py).
fhir-js:
	@if ! command -v npm >/dev/null 2>&1; then echo "no npm: tests/formats/test_xml_npm_live.py will skip"; \
	elif [ tools/fhir-js/node_modules/.package-lock.json -nt tools/fhir-js/package-lock.json ]; then :; \
	else (cd tools/fhir-js && npm ci --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error) \
		|| echo "npm ci failed (offline, empty cache?): tests/formats/test_xml_npm_live.py will skip"; fi

# `make test`: the whole suite on SQLite and, at the same time in a third process, the HTTP suites on PostgreSQL
# (interactions and transactions, search, security, bulk export and import; issue 11, docs/postgres.md "Tests").
# The suites wait on live servers and subprocesses for much of their time, so the two runs share the 2 cores
# in about the time of the longer one. Both must pass; the PostgreSQL run's output follows the SQLite run's.
PG_SUITES = tests/integration tests/search tests/security_http tests/bulk

test: $(VENV)/.installed-test postgres chromium fhir-js peer-medplum
	$(BIN)/ruff check fhir_server profiles terminology signing conformance mappings tests bench scripts
	$(BIN)/mypy fhir_server signing terminology profiles conformance mappings
	@pglog=$$(mktemp); pgtmp=$$(mktemp -d); \
	KZFHIR_TEST_BACKEND=postgres $(BIN)/pytest -q -p no:cacheprovider --basetemp=$$pgtmp $(PG_SUITES) \
		>$$pglog 2>&1 & pg=$$!; \
	trap 'kill $$pg 2>/dev/null; rm -rf $$pglog $$pgtmp' INT TERM; \
	echo "$(BIN)/pytest -q -n 2 --dist loadfile  (and the HTTP suites on PostgreSQL beside it)"; \
	$(BIN)/pytest -q -n 2 --dist loadfile; sqlite=$$?; \
	wait $$pg; pgrc=$$?; \
	echo "=== KZFHIR_TEST_BACKEND=postgres pytest $(PG_SUITES)"; \
	if [ $$pgrc -eq 0 ]; then tail -n 3 $$pglog; else cat $$pglog; fi; \
	rm -rf $$pglog $$pgtmp; \
	[ $$sqlite -eq 0 ] && [ $$pgrc -eq 0 ]

# The same HTTP suites on PostgreSQL alone (docs/postgres.md).
test-postgres: $(VENV)/.installed-test postgres
	KZFHIR_TEST_BACKEND=postgres $(BIN)/pytest -q -n 2 --dist loadfile $(PG_SUITES)

# `make bench`: every bench/bench_*.py in turn, PostgreSQL beside SQLite included (bench_postgres starts its own
# durable cluster; `make postgres` installs the binaries). `make bench-compare`: side by side with the Medplum
# peer, kzfhir open and secure and the raw-ASGI ceiling at 1x and 10x (bench/compare.py; COMPARE_ARGS, e.g.
# "--rounds 3" or "--quick", are passed on). docs/performance.md has the figures and the commands.
bench: $(VENV)/.installed-test postgres
	$(BIN)/python -m bench

COMPARE_ARGS ?=
bench-compare: $(VENV)/.installed-test peer-medplum
	$(BIN)/python -m bench compare $(COMPARE_ARGS)

# The peer kzfhir is measured against (issue 20; docs/performance.md): Medplum's
# FhirRouter + MemoryRepository, the npm packages pinned by tools/peer-medplum/package-lock.json (a no-op
# when installed). Node and npm come from Debian's `nodejs` and `npm` packages when missing (apt-get needs
# root). Medplum 5.2 declares Node 22.18+ but runs on Debian's Node 20 with --experimental-websocket
# (bench/targets.py adds it); npm only warns about the engine. `make test` installs it: the kit's run against
# Medplum's router (tests/conformance/test_medplum_router.py) and tests/bench/test_compare_quick.py need it.
peer-medplum:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then :; \
	else echo "installing Node.js for the Medplum peer (apt-get install nodejs npm)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; fi
	@if [ tools/peer-medplum/node_modules/.package-lock.json -nt tools/peer-medplum/package-lock.json ]; then :; \
	else cd tools/peer-medplum && npm ci --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error; fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check fhir_server profiles terminology signing conformance mappings tests bench scripts

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache tools/fhir-js/node_modules \
		tools/peer-medplum/node_modules
