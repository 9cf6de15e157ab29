# The two commands of the README contract: `make study` and `make test`.
# Each creates .venv if absent and installs the pinned dependencies (requirements.lock) and the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.v2gtwin-installed
OUT ?= out

.PHONY: study test lint bench clean lock blast-reference iso15118-venv lock-iso15118 lock-blast browser

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

# The report's browser test (tests/test_report_browser.py) opens the report in headless Chromium over its DevTools
# protocol. Without chromium, root installs Debian's chromium and chromium-driver (the driver for tests that use
# WebDriver); elsewhere the test skips with a message (under CI=true it fails instead).
browser:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "chromium not found: installing Debian's chromium and chromium-driver"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; fi
	@command -v chromium >/dev/null 2>&1 || echo "chromium not found: the report's browser test will be skipped (fails under CI=true)"

# The real ISO 15118 segment's stack: iso15118 0.31.2 (the open EVCC/SECC of SwitchEV/EcoG) in its own venv, as it
# pins pydantic 1.10 and cryptography 44 (v2gtwin's own pins differ; v2gtwin runs it as subprocesses and never
# imports it). It imports aiofile without declaring it. Its EXI codec needs Java 17, its TLS test PKI openssl, and
# the two network namespaces iproute2 (and the real-loss test of the OCPP segment iptables): root installs the
# missing ones from Debian; elsewhere the tests skip with a
# message (under CI=true they fail instead).
ISO15118_VENV := .venv-iso15118
ISO15118 := $(ISO15118_VENV)/.v2gtwin-installed

$(ISO15118): requirements-iso15118.lock
	@missing=""; command -v java >/dev/null 2>&1 || missing="$$missing openjdk-17-jre-headless"; \
	  command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	  command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	  command -v iptables >/dev/null 2>&1 || missing="$$missing iptables"; \
	  if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's$$missing for the ISO 15118 sessions"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
	@test -x $(ISO15118_VENV)/bin/python || $(PYTHON) -m venv $(ISO15118_VENV)
	@if $(ISO15118_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-iso15118.lock; \
	then touch $(ISO15118); else echo "iso15118 not installed: its sessions will be skipped (fail under CI=true)"; fi

iso15118-venv: $(ISO15118)

# Re-pin .venv-iso15118 (a fresh venv with the two top-level packages, then its freeze).
lock-iso15118:
	rm -rf $(ISO15118_VENV) && $(PYTHON) -m venv $(ISO15118_VENV)
	$(ISO15118_VENV)/bin/python -m pip install --quiet --disable-pip-version-check iso15118==0.31.2 aiofile==3.12.3
	@printf '%s\n' '# Fully pinned environment of .venv-iso15118 (make iso15118-venv): iso15118 0.31.2 and what it needs.' \
	  '# Regenerate with `make lock-iso15118`.' > requirements-iso15118.lock
	$(ISO15118_VENV)/bin/python -m pip freeze >> requirements-iso15118.lock
	@touch $(ISO15118)

test: $(STAMP) $(INTEROP) $(ISO15118) browser
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

$(BLAST_VENV)/.installed: requirements-blast.lock
	@test -x $(BLAST_VENV)/bin/python || $(PYTHON) -m venv $(BLAST_VENV)
	$(BLAST_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-blast.lock
	@touch $@

# Re-pin .venv-blast (a fresh venv with the top-level packages, then its freeze).
lock-blast:
	rm -rf $(BLAST_VENV) && $(PYTHON) -m venv $(BLAST_VENV)
	$(BLAST_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "blast-lite==1.1.1" "numpy<2"
	@printf '%s\n' '# Fully pinned environment of .venv-blast (NREL BLAST-Lite 1.1.1, numpy<2). Regenerate with `make lock-blast`.' \
	  > requirements-blast.lock
	$(BLAST_VENV)/bin/python -m pip freeze >> requirements-blast.lock
	@touch $(BLAST_VENV)/.installed

blast-reference: $(BLAST_VENV)/.installed
	$(BLAST_VENV)/bin/python scripts/blast_lite_reference.py write --years 10

lock:
	@printf '%s\n' '# Fully pinned environment for `make study` / `make test` (runtime + dev + the optional acn extra).' \
	  '# Regenerate with `make lock` after changing dependencies in pyproject.toml.' > requirements.lock
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^v2gtwin' >> requirements.lock

clean:
	rm -rf $(VENV) $(ISO15118_VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache tests/interop/node_modules
