# The two commands of the README: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test install migrate seed bench lint fmt clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput -v0

seed: migrate
	HUB_DEMO=1 $(BIN)/python manage.py demo_seed

## Serve the demo on http://127.0.0.1:$(PORT) on the embedded default (SQLite, in-memory layer).
run: seed
	@echo ""
	@echo "  Hub demo:  http://127.0.0.1:$(PORT)/console/   (customer side: http://127.0.0.1:$(PORT)/webchat/)"
	@echo "  Logins:    admin, coordinator, operator1, operator2, contact, inquiry, claimagent, payadmin — password: demo"
	@echo ""
	HUB_DEMO=1 PORT=$(PORT) $(BIN)/python -m hub.demo

## The whole suite: PostgreSQL + Redis (local servers) and the embedded default.
test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m bench.run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var
