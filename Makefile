# The two commands of the README contract: `make study` and `make test`.
# Each creates .venv if absent and installs the pinned dependencies (requirements.lock) and the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.v2gtwin-installed
OUT ?= out

.PHONY: study test lint bench clean lock blast-reference

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

study: $(STAMP)
	$(BIN)/v2gtwin study --out $(OUT)

# The interop test's third-party OCPP peer (ocpp-rpc, Node.js). Without npm, root installs Debian's nodejs + npm;
# elsewhere the test skips with a message (under CI=true it fails instead).
INTEROP := tests/interop/node_modules/.v2gtwin-installed

$(INTEROP): tests/interop/package-lock.json
	@if ! command -v npm >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "npm not found: installing Debian's nodejs and npm"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; fi
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/interop --no-audit --no-fund --silent && touch $(INTEROP); \
	else echo "npm not found: the OCPP interop test will be skipped (fails under CI=true)"; fi

test: $(STAMP) $(INTEROP)
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do $(BIN)/python $$b; done

# Reference outputs of NREL's BLAST-Lite for tests/battery/test_degradation.py. BLAST-Lite declares numpy<2, so it gets
# its own virtual environment (.venv-blast); benchmarks/bench_battery.py times it from there too.
BLAST_VENV := .venv-blast

$(BLAST_VENV)/.installed:
	@test -x $(BLAST_VENV)/bin/python || $(PYTHON) -m venv $(BLAST_VENV)
	$(BLAST_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "blast-lite==1.1.1" "numpy<2"
	@touch $@

blast-reference: $(BLAST_VENV)/.installed
	$(BLAST_VENV)/bin/python scripts/blast_lite_reference.py write --years 10

lock:
	@printf '%s\n' '# Fully pinned environment for `make study` / `make test` (runtime + dev + the optional acn extra).' \
	  '# Regenerate with `make lock` after changing dependencies in pyproject.toml.' > requirements.lock
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^v2gtwin' >> requirements.lock

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache tests/interop/node_modules
