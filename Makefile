# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dev]'
	touch $(STAMP)

demo: $(STAMP)  ## run the main job once on embedded defaults (SQLite + outbox)
	$(BIN)/newsletter --config subscribers.example.yaml send

test: $(STAMP)  ## run the whole test suite
	$(BIN)/python -m pytest -q

bench: $(STAMP)  ## run the benchmarks (not part of `make test`)
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check newsletter tests benchmarks
	$(BIN)/ruff format --check newsletter tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var outbox preview .pytest_cache
