# Hello Practice Portal — the two commands a newcomer needs are `make run` and `make test`.
# Without DATABASE_URL / CELERY_BROKER_URL, scripts/services.py starts an embedded PostgreSQL and
# Redis under .local/ for the duration of the command and stops them afterwards.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
WITH_SERVICES := $(BIN)/python scripts/services.py exec --
PYTEST_ARGS ?=
# Two test processes (one per core), each with its own test database; a file's tests stay in
# one process. `PYTEST_PARALLEL= make test` runs them one at a time.
PYTEST_PARALLEL ?= -n 2 --dist loadfile

.PHONY: install browser run test test-fast lint format bench manage clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	touch $@

install: $(VENV)/.installed

browser:
	@scripts/ensure_chromium.sh

# exec: the shell gives way to services.py, so a signal to make's child reaches it directly.
run: install
	DEBUG=true exec $(WITH_SERVICES) $(BIN)/python scripts/run_dev.py

test: install browser lint
	PORTAL_TESTING=1 $(WITH_SERVICES) $(BIN)/python -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The inner loop: everything but the browser and real-worker tests.
test-fast: install lint
	PORTAL_TESTING=1 $(WITH_SERVICES) $(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not browser and not worker" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PORTAL_TESTING=1 $(BIN)/mypy core accounts compliance scheduling ehr booking calls receptionist_api onboarding
	$(BIN)/lint-imports --no-cache  # the layer contracts in pyproject.toml [tool.importlinter]

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	PORTAL_TESTING=1 $(WITH_SERVICES) $(BIN)/python -m benchmarks

# Runs a management command against the services a running `make run` started.
manage:
	@test -f .local/env || { echo "No .local/env: start 'make run' first (or set DATABASE_URL)."; exit 1; }
	@. ./.local/env && { test ! -f .local/run.env || . ./.local/run.env; } && \
		DEBUG=true $(BIN)/python manage.py $(CMD)

clean:
	-$(BIN)/python scripts/services.py down
	rm -rf .local
