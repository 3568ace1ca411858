# Fanout: every command the README and CI use, run the same way by hand and in CI.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export FANOUT_VAR_DIR ?= $(CURDIR)/var

.PHONY: run test install install-dev migrate lint format types migrations-check pytest pytest-scaleout clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The project's bytecode, compiled once as pip does for packages: with PYTHONDONTWRITEBYTECODE set, every
# process would otherwise recompile search/ and project/ at start (about 0.25 s of a runsearch client's start-up).
# Quiet unless a file does not compile, which fails the install with its error.
COMPILE = $(BIN)/python -m compileall -q project search client

install: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(COMPILE)

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(COMPILE)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

var/secret_key:
	@mkdir -p var
	@$(BIN)/python -c "import secrets; print(secrets.token_urlsafe(50))" > $@
	@chmod 600 $@

migrate: install var/secret_key
	DJANGO_SECRET_KEY=$$(cat var/secret_key) $(BIN)/python manage.py migrate --no-input

# The app on the embedded default (SQLite + ORM broker): web server and one qcluster, stopped together.
run: migrate
	@echo "Fanout on http://$(HOST):$(PORT)/  (Ctrl+C stops the web server and the cluster)"
	@echo "First time? In another terminal: bin/fanout createsuperuser"
	@DJANGO_SECRET_KEY=$$(cat var/secret_key) exec $(BIN)/python manage.py serve $(HOST):$(PORT)

# The whole test suite, as CI runs it: lint, format, types, migrations, tests on the embedded default,
# then the execution, cluster and fault tests again on PostgreSQL + Redis (the scale-out set-up).
test: install-dev lint types migrations-check pytest pytest-scaleout

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

types:
	DJANGO_SECRET_KEY=types $(BIN)/mypy .

migrations-check:
	DJANGO_SECRET_KEY=check FANOUT_VAR_DIR=$(CURDIR)/var/check $(BIN)/python manage.py makemigrations --check --dry-run

# --durations: the slowest tests named in every run, so CI's time can be read where it goes.
pytest:
	$(BIN)/pytest --durations=30 $(PYTEST_ARGS)

SCALEOUT_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/fanout
SCALEOUT_REDIS_URL ?= redis://127.0.0.1:6379/15
pytest-scaleout:
	DATABASE_URL=$(SCALEOUT_DATABASE_URL) REDIS_URL=$(SCALEOUT_REDIS_URL) $(BIN)/pytest -p no:cacheprovider \
		tests/system/test_scaleout.py tests/system/test_worker_faults.py tests/system/test_cluster.py tests/services/test_units.py \
		tests/services/test_inserts.py tests/system/test_oracle.py tests/services/test_scaling.py tests/system/test_machine_scaling.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
