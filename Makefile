# The README's commands. A plain-pip virtual environment in .venv; pixi users see pixi.toml.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed
PARAMS ?= params/default.yaml

.PHONY: test test-fast browser venv lab bench book scan clean-venv

## venv: create .venv (torch pinned first so nothing can move it); re-runs only when inputs change
venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[test,book,cluster]'
	touch $(STAMP)

## test: the full test suite (slow end-to-end tests included), as CI runs it
test: $(STAMP) browser
	$(PY) -m pytest

## test-fast: skip the slow end-to-end tests
test-fast: $(STAMP) browser
	$(PY) -m pytest -m "not slow"

## browser: headless Chromium for the book tests (Debian's package, installed with apt when missing)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "make: chromium is not installed and apt-get could not install it: the book's browser tests will skip (CI: fail)" >&2

## lab: JupyterLab (installed on first use); jupytext serves the .py chapters as notebooks
lab: $(STAMP)
	test -x $(VENV)/bin/jupyter-lab || $(PIP) install -q -c constraints.txt -e '.[lab]'
	$(VENV)/bin/jupyter lab --allow-root --no-browser

## bench: run every benchmark; each writes JSON under runs/benchmarks/
bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)

## book: generate the default samples, run both studies (chapters -> runs/), build the book (book/_build/html)
##       with a page for every summarised scan (runs/scans/*/summary.md)
book: $(STAMP)
	$(PY) -m treasure_lib.book.main

## scan: the CPU demo scan (params/scans/demo.yaml: 4 points, 2 at a time), its summary, and the book with its page
SCAN ?= params/scans/demo.yaml
scan: $(STAMP)
	$(PY) -m treasure_lib.cli scan run $(SCAN) --jobs 2 --summarize
	$(PY) -m treasure_lib.book.main
