# Two commands on a fresh machine: `make demo` and `make test`. Each builds the .venv it needs.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
# Wheels the tests' package builds need, fetched before the sealed run (see scripts/sealed).
WHEELHOUSE := $(VENV)/test-wheelhouse

.PHONY: demo test lint typecheck imports pytest fuzz mutate bench venv browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[export,fastai,dev]'
	touch $(STAMP)

venv: $(STAMP)

# Browser tests drive Debian's Chromium with Playwright (Playwright's own browser download cannot work here).
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi

browser: $(CHROMIUM)

demo: $(STAMP)
	$(PY) scripts/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts benchmarks
	$(VENV)/bin/ruff format --check src tests scripts benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The layer contracts in pyproject.toml ([tool.importlinter]).
imports: $(STAMP)
	$(VENV)/bin/lint-imports

# The suite runs sealed: no socket to anything but loopback, in the pytest process (pytest-socket)
# and, in a network namespace where this machine allows one, in every process it starts.
pytest: $(STAMP) $(CHROMIUM)
	$(PY) -m tests.wheelhouse $(WHEELHOUSE) >/dev/null
	scripts/sealed $(WHEELHOUSE) $(PY) -m pytest -q

test: $(STAMP) $(CHROMIUM)
	$(VENV)/bin/ruff check src tests scripts benchmarks
	$(VENV)/bin/ruff format --check src tests scripts benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m tests.wheelhouse $(WHEELHOUSE) >/dev/null
	scripts/sealed $(WHEELHOUSE) $(PY) -m pytest -q

# Longer fuzzing runs than the test suite's (FUZZ_MINUTES per target, default 10).
fuzz: $(STAMP)
	LAMBDAVISION_FUZZ_MINUTES=$${FUZZ_MINUTES:-10} $(PY) -m pytest -q -p no:cacheprovider tests/fuzz -s

# Mutation testing of the security-bearing core, with the tests that run in-process (pyproject's
# [tool.mutmut]); not part of `make test`. Prints the score and every survivor not yet accepted.
mutate: $(STAMP)
	set -f; LAMBDAVISION_FUZZ_EXAMPLES=30 $(VENV)/bin/mutmut run $$($(PY) scripts/mutation_report.py --globs)
	$(PY) scripts/mutation_report.py

bench: $(STAMP)
	$(PY) benchmarks/compare.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
