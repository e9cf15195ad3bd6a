# The README's commands. A plain-pip virtual environment in .venv; pixi users see pixi.toml.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed
PARAMS ?= params/default.yaml
# Where torch comes from (README, "Installing"). Empty: the default index; on Linux PyPI's torch is the CUDA
# build (about 2.6 GB of nvidia-* wheels), on macOS the CPU/MPS one.
# A laptop: TORCH_INDEX=https://download.pytorch.org/whl/cpu
# A GPU node with an older driver: the CUDA build it supports, e.g. TORCH_INDEX=https://download.pytorch.org/whl/cu126
TORCH_INDEX ?=
RUN ?= runs/jets/default
SAY_TORCH = import torch; print('make venv: torch', torch.__version__, \
            '(CUDA ' + torch.version.cuda + ')' if torch.version.cuda else '(CPU build)')

.PHONY: test test-fast lint browser venv lab logs bench book screenshots scan clean-venv

## venv: create .venv (torch pinned first, from TORCH_INDEX, so nothing can move it); re-runs only when inputs change
##       (to switch between CPU and CUDA torch: make clean-venv, then make venv TORCH_INDEX=...)
venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -c constraints.txt $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[test,book,cluster]'
	$(PY) -c "$(SAY_TORCH)"
	touch $(STAMP)

## test: the linter, then the full test suite (slow end-to-end tests included), as CI runs it
test: lint browser
	$(PY) -m pytest

## test-fast: the linter, then the tests without the slow end-to-end ones
test-fast: lint browser
	$(PY) -m pytest -m "not slow"

## lint: ruff (rules and line length in pyproject.toml): `ruff check --fix . && ruff format .` mends most findings
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

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

## logs: TensorBoard (installed on first use: the `logs` extra) on a run's training logs;
##       make logs RUN=runs/events/default
logs: $(STAMP)
	test -x $(VENV)/bin/tensorboard || $(PIP) install -q -c constraints.txt -e '.[logs]'
	$(VENV)/bin/tensorboard --logdir $(RUN)/artifacts

## bench: run every benchmark; each writes JSON under runs/benchmarks/
bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)

## book: generate the default samples, run both studies (chapters -> runs/), build the book (book/_build/html)
##       with a page for every summarised scan (runs/scans/*/summary.md)
book: $(STAMP)
	$(PY) -m treasure_lib.book.main

## screenshots: the built book's results page and chapters 02, 04, 06 of each study in headless Chromium
##              (PNGs in runs/screenshots/)
screenshots: $(STAMP) browser
	$(PY) -m treasure_lib.book.screenshots --html book/_build/html --out runs/screenshots

## scan: a CPU scan, 2 points at a time, its summary, and the book with its page: params/scans/demo.yaml (4 points),
##       or SCAN=params/scans/tokenizers_cpu.yaml (which tokenizer? 22 points, the tokenizer comparison page)
SCAN ?= params/scans/demo.yaml
scan: $(STAMP)
	$(PY) -m treasure_lib.cli scan run $(SCAN) --jobs 2 --summarize
	$(PY) -m treasure_lib.book.main
