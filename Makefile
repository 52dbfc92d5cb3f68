# The README's two commands: `make demo` and `make test`. Both create the virtual environment when missing.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test install lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	DJANGO_DEBUG=1 $(PY) manage.py migrate --no-input
	DJANGO_DEBUG=1 $(PY) manage.py demo
	DJANGO_DEBUG=1 $(PY) manage.py demo_serve --host 127.0.0.1 --port 8000

# The suite runs on SQLite, then on PostgreSQL (see tests/run_suite.py); e.g. SUITE_ARGS="--require-postgres -x".
SUITE_ARGS ?=

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) tests/run_suite.py $(SUITE_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) var
