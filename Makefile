# Two commands do all the set-up: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
STAMP := $(VENV)/.installed

.PHONY: run test bootstrap migrate lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

bootstrap: $(STAMP)

migrate: bootstrap
	$(BIN)/meterline db upgrade

## Serve the portal (pages + HTTP API) on http://localhost:$(PORT); seeds demo data on first start.
run: migrate
	$(BIN)/meterline demo seed --if-empty
	$(BIN)/streamlit run app/server.py --server.port $(PORT) --server.headless true

## The whole suite (SQLite always; PostgreSQL too when TEST_DATABASE_URL is set).
test: migrate
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)

lint: bootstrap
	$(BIN)/ruff check .

## Benchmarks: prints numbers, asserts nothing.
bench: bootstrap
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var
