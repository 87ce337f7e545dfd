# Two commands on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install demo test lint bench clean web web-test screens

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

demo: install web
	$(BIN)/strata demo

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# Two workers, each test file on one of them (its module fixtures are built once); then
# the web app end to end in headless Chromium (screenshots in web/test-results/screens).
test: lint
	$(BIN)/pytest -n 2 --dist loadfile
	$(MAKE) web-test

# The web app (web/dist, served by `strata serve` at /).
web: web/node_modules/.installed
	cd web && npm run build

web/node_modules/.installed: web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

web-test: install web
	cd web && rm -rf test-results/screens && npx playwright test

# Refresh the README's screenshots (docs/screens) with those of an end-to-end run.
screens: web-test
	mkdir -p docs/screens
	cp web/test-results/screens/*.png docs/screens/

# Customers of the generated business both benches use (e.g. `make bench BENCH_CUSTOMERS=100000`).
BENCH_CUSTOMERS ?= 1000000

bench: install
	$(BIN)/python bench/import_bench.py --customers $(BENCH_CUSTOMERS)
	$(BIN)/python bench/segment_bench.py --customers $(BENCH_CUSTOMERS)
	$(BIN)/python bench/cluster_bench.py --customers $(BENCH_CUSTOMERS)
	$(BIN)/python bench/clv_bench.py --customers $(BENCH_CUSTOMERS)
	$(BIN)/python bench/models_bench.py --customers $(BENCH_CUSTOMERS)
	$(BIN)/python bench/analysis_bench.py --customers $(BENCH_CUSTOMERS)
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/profile_bench.py
	$(BIN)/python bench/actions_bench.py
	$(BIN)/python bench/privacy_bench.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
