# The commands the README names. The first one that needs it creates the
# virtualenv in .venv and installs the project; the database is the embedded
# PostgreSQL unless DATABASE_URL is set.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.DEFAULT_GOAL := help
PORT ?= 8000

.PHONY: help install demo serve dev test lint docs format bench clean

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,all]'
	@touch $@

install: $(INSTALLED) ## Create .venv and install the project with every extra and its dev tools

demo: $(INSTALLED) ## Migrate, seed 100 000 orders if empty, refresh, show the reports
	$(BIN)/python manage.py demo

serve: $(INSTALLED) ## Run the dashboard with gunicorn on http://127.0.0.1:$(PORT) (user demo / demo-reports) and the scheduler
	$(BIN)/python manage.py migrate --verbosity 0
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py demo_user
	@echo "Dashboard: http://127.0.0.1:$(PORT)/  (log in as demo / demo-reports; Ctrl-C stops both)"
	@metrics=$$(mktemp -d); \
	trap 'kill $$scheduler 2>/dev/null; wait $$scheduler 2>/dev/null; rm -rf "$$metrics"' EXIT INT TERM; \
	$(BIN)/python manage.py run_scheduler & scheduler=$$!; \
	PROMETHEUS_MULTIPROC_DIR=$$metrics $(BIN)/gunicorn demo_project.wsgi --config demo_project/gunicorn_conf.py --bind 127.0.0.1:$(PORT)

dev: $(INSTALLED) ## Django's development server with DEBUG on, reloading on changes (never in production)
	$(BIN)/python manage.py migrate --verbosity 0
	$(BIN)/python manage.py demo_user
	DJANGO_DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: $(INSTALLED) ## Run the test suite against real PostgreSQL (then the django-oscar example's)
	$(BIN)/pytest
	$(BIN)/pytest --ds=examples.oscar_shop.settings tests/oscar

docs: $(INSTALLED) ## Build the manual (docs/) into site/, strictly: a broken link or a page outside the nav fails
	$(BIN)/mkdocs build --strict --quiet

lint: $(INSTALLED) ## ruff (lint and format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy reporting scheduler demo_project examples tests

format: $(INSTALLED) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(INSTALLED) ## Benchmark every strategy at 1 000 000 orders (BENCH_ARGS="--quick" for 100 000)
	$(BIN)/python manage.py bench $(BENCH_ARGS)

clean: ## Remove the virtualenv and the embedded database's data
	rm -rf $(VENV) .pgdata staticfiles site
