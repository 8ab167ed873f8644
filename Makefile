# The two commands in the README are `make demo` and `make test`; both set up
# a local virtual environment first, so a fresh machine needs only Python 3.11+
# and make.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test check lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mlgate demo

## The whole suite: lint, format check, strict types, then every test.
test: lint typecheck pytest

check: test

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadgroup

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.ledger --write BENCHMARKS.md
	$(BIN)/python -m bench.serving --write BENCHMARKS.md
	$(BIN)/python -m bench.drift --write BENCHMARKS.md
	$(BIN)/python -m bench.detectors --write BENCHMARKS.md --calibration-streams 1000
	$(BIN)/python -m bench.stream --write BENCHMARKS.md
	$(BIN)/python -m bench.experiments --write BENCHMARKS.md
	$(BIN)/python -m bench.optimize --write BENCHMARKS.md
	$(BIN)/python -m bench.loop --write BENCHMARKS.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache mlgate-demo
