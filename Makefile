# Set-up, tests, lint and benchmarks. `make install` builds .venv/ with dupfind in editable mode.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# torch first, pinned: a bare `torch` requirement resolved first pulls a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: install test test-fast lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev,int8,ray]'
	touch $@

test: install
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"

lint: install
	$(BIN)/ruff check dupfind tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
