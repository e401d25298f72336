# The commands the README names. The first one that needs it creates the
# virtualenv in .venv and installs the project; the database is the embedded
# PostgreSQL unless DATABASE_URL is set.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test lint format bench clean

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(INSTALLED) ## Create .venv and install the project with its dev tools

demo: $(INSTALLED) ## Migrate, seed 100 000 orders if empty, refresh, show the reports
	$(BIN)/python manage.py demo

test: $(INSTALLED) ## Run the test suite against real PostgreSQL
	$(BIN)/pytest

lint: $(INSTALLED) ## ruff (lint and format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy reporting scheduler tests

format: $(INSTALLED) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove the virtualenv and the embedded database's data
	rm -rf $(VENV) .pgdata
