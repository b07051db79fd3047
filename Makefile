# Both targets work on a fresh clone with only python3.11+ and make present.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gate validate
	$(BIN)/gate smoke --out runs/demo-smoke
	$(BIN)/gate sweep --candidate mock/expert@0.8 --baseline mock/expert --out runs/demo-sweep; \
	  code=$$?; echo "gate sweep exit code: $$code (0 no regression, 1 regression, 2 halted, 3 inconclusive)"; \
	  test $$code -le 3

test: $(STAMP)
	$(BIN)/ruff check gate tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/smoke_time.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
