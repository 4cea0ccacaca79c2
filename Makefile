# tidegate — the two commands a newcomer runs on a fresh machine: `make demo` and `make test`.
# Each creates (or reuses) .venv and installs what it needs; `make sysdeps` installs Debian packages.

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the tests and demo use (added as issues need them).
SYS_PACKAGES ?= mosquitto mosquitto-clients chromium wrk

.PHONY: demo test lint bench bench-quick sysdeps venv clean help

help:
	@echo "make demo   - run the main job end to end on the embedded defaults (ends by itself)"
	@echo "make test   - lint, layer contracts, and the whole test suite (incl. quick benchmark ratios)"
	@echo "make bench  - full benchmarks with a table of medians"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,dev]'
	@touch $(STAMP)

sysdeps:
	@missing=""; for p in $(SYS_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: venv sysdeps
	$(BIN)/tidegate demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: venv sysdeps lint
	$(BIN)/pytest -q

bench: venv sysdeps
	$(PY) -m bench.run

bench-quick: venv
	$(PY) -m bench.run --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .demo
