# Two commands do all the set-up: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
STAMP := $(VENV)/.installed
# The FOCUS validator needs pandas<3 and numpy<2: it lives in a venv of its own (tests/focus_validator).
FOCUS_VENV := .venv-focus
FOCUS_STAMP := $(FOCUS_VENV)/.installed
# The PostgreSQL server `make test` also runs the suite against when it answers
# (unless TEST_DATABASE_URL is already set; TEST_DATABASE_URL=none turns it off).
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: run test bootstrap migrate seed lint format e2e bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ needed: make PYTHON=python3.11 ...")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

bootstrap: $(STAMP)

# Not fatal: without a package index to install it from, its test skips and says why.
$(FOCUS_STAMP): tests/focus_validator/requirements.txt $(STAMP)
	-$(BIN)/python -m tests.focus_validator

migrate: bootstrap
	@$(BIN)/meterline db upgrade

seed: migrate
	@$(BIN)/meterline demo seed --if-empty

## Serve the portal (pages + HTTP API) on http://localhost:$(PORT); seeds demo data on first start.
# The demo's support agent (see README); set METERLINE_SUPPORT_EMAILS yourself to change it.
# The server prints one start banner (URL, API token, sign-in, support agents, how to stop)
# in place of Streamlit's own welcome message.
run: export METERLINE_SUPPORT_EMAILS ?= support@meterline.example
run: export METERLINE_SUPPORT_ADMIN_EMAILS ?= support-lead@meterline.example
run: seed
	@$(BIN)/streamlit run app/server.py --server.port $(PORT) --server.headless true --logger.hideWelcomeMessage true

## The whole suite (SQLite always; PostgreSQL too when a server answers or TEST_DATABASE_URL is set).
test: migrate $(FOCUS_STAMP)
	$(BIN)/ruff check .
	@if [ -z "$$TEST_DATABASE_URL" ] && $(BIN)/python -c 'import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=3).close()' '$(PG_TEST_URL)' 2>/dev/null; then \
		export TEST_DATABASE_URL='$(PG_TEST_URL)'; echo "PostgreSQL answers: the suite also runs on $$TEST_DATABASE_URL"; \
	elif [ "$$TEST_DATABASE_URL" = none ]; then unset TEST_DATABASE_URL; \
	elif [ -z "$$TEST_DATABASE_URL" ]; then echo "No PostgreSQL at $(PG_TEST_URL): the PostgreSQL half is skipped"; fi; \
	$(BIN)/python -m pytest -n auto --dist loadscope $(PYTEST_ARGS)

## Only the browser tests (headless Debian chromium).
e2e: migrate
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

lint: bootstrap
	$(BIN)/ruff check .

format: bootstrap
	$(BIN)/ruff format .

## Benchmarks: prints numbers, asserts nothing.
bench: bootstrap
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(FOCUS_VENV) var
