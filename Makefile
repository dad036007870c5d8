# djjobs: demo, tests and housekeeping.
#
#   make demo                      # venv, migrate, sample data, web server + workers (Ctrl-C stops both)
#   make test                      # the whole suite on SQLite, then on PostgreSQL
#   make test DBS=sqlite           # one database only (DBS=postgres for the other)
#   make test DBS=mariadb          # MariaDB (starts it if need be; installs mysqlclient into the VENV)
#   make test DBS=postgres-public-apis   # unit + integration on PostgreSQL, DJJOBS["FAST_PATHS"] off
#   make test PYTEST_ARGS='-x -k retry'
#   make test-fast                 # the edit loop: unit + integration tests, SQLite only
#   make lint                      # what CI checks before the tests: ruff (lint + format), import contract, makemigrations --check, mypy
#   make docs                      # the documentation site (docs/, Sphinx) into docs/_build/html, warnings as errors
#   make docs-serve                # build it and serve it on http://127.0.0.1:8001/
#   make test PYTHON=python3.12 DJANGO=6 VENV=.venv-py312-dj6
#   make clean
#
# DJANGO is 5.2 (Django 5.2 + the django-tasks backport) or 6 (built-in django.tasks).
# It defaults to 5.2 on Python 3.11 (Django 6 needs Python >= 3.12) and to 6 otherwise.
# Each VENV tests on its own databases (.test-db/<venv>.sqlite3, test_djjobs_<venv>_<hash>),
# so runs with different VENVs may run at the same time (MariaDB: test_djjobs_<venv>_<hash> too).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
DJANGO ?= $(if $(filter 3.11,$(PY_VERSION)),5.2,6)
DBS ?= sqlite postgres
PG_URL ?= postgres://postgres@127.0.0.1:5432/djjobs
MARIADB_URL ?= mysql://root@127.0.0.1:3306/djjobs
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000

VENV_PY := $(VENV)/bin/python

# Test databases of this VENV (tests/settings.py reads them): two runs with the same databases
# at once would wipe each other's. The SQLite file lives in this checkout; the PostgreSQL server
# is shared by every checkout on the machine, so its name also carries a hash of the VENV's
# absolute path. <venv> is the VENV's last component, lower case, other than [a-z0-9] -> _.
VENV_SLUG := $(shell printf '%s' '$(notdir $(abspath $(VENV)))' | tr 'A-Z' 'a-z' | tr -c 'a-z0-9' '_' | sed 's/^_*//' | cut -c1-32)
VENV_HASH := $(shell printf '%s' '$(abspath $(VENV))' | sha256sum | cut -c1-8)
DJJOBS_TEST_SQLITE ?= $(CURDIR)/.test-db/$(or $(VENV_SLUG),venv).sqlite3
DJJOBS_TEST_PG_NAME ?= test_djjobs_$(or $(VENV_SLUG),venv)_$(VENV_HASH)
DJJOBS_TEST_MYSQL_NAME ?= test_djjobs_$(or $(VENV_SLUG),venv)_$(VENV_HASH)

# dev: tests, benchmarks and ruff; demo: the demo project's settings (django-environ).
ifeq ($(DJANGO),5.2)
  INSTALL_ARGS := -e '.[dev,demo,docs,django52]'
else ifeq ($(DJANGO),6)
  INSTALL_ARGS := -e '.[dev,demo,docs]' 'Django>=6.0,<7'
else
  $(error DJANGO must be 5.2 or 6, not '$(DJANGO)')
endif

# The stamp's name carries everything the installation depends on, so a change of any of
# them (pyproject.toml, DJANGO, the Python version) re-installs, and nothing else does.
PYPROJECT_HASH := $(shell sha256sum pyproject.toml 2>/dev/null | cut -c1-12)
STAMP := $(VENV)/.djjobs-installed-py$(PY_VERSION)-dj$(DJANGO)-$(PYPROJECT_HASH)

.PHONY: help install demo demo-setup test test-fast test-sqlite test-postgres test-postgres-public-apis test-mariadb lint clean

help:
	@sed -n '3,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PY_VERSION)" || { echo "error: '$(PYTHON)' is not a working Python" >&2; exit 1; }
	@if [ -x "$(VENV_PY)" ] && [ "$$($(VENV_PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PY_VERSION)" ]; then \
		echo "$(VENV) was made with another Python: recreating it"; rm -rf "$(VENV)"; fi
	@[ -x "$(VENV_PY)" ] || { echo "creating $(VENV) with $(PYTHON) ($(PY_VERSION))"; $(PYTHON) -m venv "$(VENV)"; }
	@rm -f $(VENV)/.djjobs-installed-*
	@echo "$(VENV_PY) -m pip install $(INSTALL_ARGS)"
	@set -o pipefail; $(VENV_PY) -m pip install --quiet $(INSTALL_ARGS) 2>&1 \
		| { grep -v 'is ignored: it is neither a file nor a directory' || true; }
	@$(VENV_PY) -c 'import django, sys; print("installed: Python %d.%d, Django %s" % (sys.version_info[:2] + (django.get_version(),)))'
	@touch "$@"

# -- the demo ------------------------------------------------------------------------------

demo-setup: install
	$(VENV_PY) manage.py migrate --noinput
	$(VENV_PY) manage.py demo_setup --url http://$(HOST):$(PORT)/

demo: demo-setup
	$(VENV_PY) demo_project/launch.py --host $(HOST) --port $(PORT)

# -- tests ---------------------------------------------------------------------------------

# pytest's exit code 5 (no test collected) is reported, not failed: test files may not exist yet.
# $(1): the database's name in messages, $(2): its test database, $(3): the environment,
# $(4): the test paths (empty: pyproject's testpaths, the whole suite).
define run_pytest
	@echo "==> pytest on $(1) (Python $(PY_VERSION), Django $(DJANGO), $(VENV), test database $(2))"
	@$(3) $(VENV_PY) -m pytest $(4) $(PYTEST_ARGS); code=$$?; \
	if [ $$code -eq 5 ]; then echo "==> $(1): no test collected"; exit 0; fi; \
	if [ $$code -ne 0 ]; then echo "==> $(1): FAILED (pytest exit code $$code)"; fi; exit $$code
endef

test: install
	@failed=""; \
	for db in $(DBS); do \
		case $$db in sqlite|postgres|postgres-public-apis|mariadb) ;; *) echo "unknown database '$$db' in DBS (sqlite, postgres, postgres-public-apis, mariadb)" >&2; exit 2;; esac; \
		$(MAKE) --no-print-directory test-$$db || failed="$$failed $$db"; \
	done; \
	if [ -n "$$failed" ]; then echo "==> test runs failed:$$failed"; exit 1; fi; \
	echo "==> test runs passed: $(DBS)"

test-sqlite: install
	$(call run_pytest,SQLite,$(DJJOBS_TEST_SQLITE),env -u DATABASE_URL DJJOBS_TEST_SQLITE='$(DJJOBS_TEST_SQLITE)')

test-postgres: install
	@bash .ci/ensure-postgres
	$(call run_pytest,PostgreSQL,$(DJJOBS_TEST_PG_NAME),env DATABASE_URL='$(PG_URL)' DJJOBS_TEST_PG_NAME='$(DJJOBS_TEST_PG_NAME)')

# Unit and integration tests on PostgreSQL with DJJOBS["FAST_PATHS"] off (djjobs/db/fast.py): the
# code paths that use only public APIs of Django and psycopg. CI runs it once (DBS=postgres-public-apis).
test-postgres-public-apis: install
	@bash .ci/ensure-postgres
	$(call run_pytest,PostgreSQL (FAST_PATHS off),$(DJJOBS_TEST_PG_NAME)_pub,env DATABASE_URL='$(PG_URL)' DJJOBS_TEST_PG_NAME='$(DJJOBS_TEST_PG_NAME)_pub' DJJOBS_TEST_FAST_PATHS=0,tests/unit tests/integration)

# MariaDB (>= 10.6; MySQL 8 uses the same code): .ci/ensure-mariadb starts it and installs the
# client headers if need be; the driver (the `mysql` extra, mysqlclient) goes into this VENV on
# first use only, so that the other runs need neither.
test-mariadb: install
	@bash .ci/ensure-mariadb
	@$(VENV_PY) -c 'import MySQLdb' 2>/dev/null || $(VENV_PY) -m pip install --quiet 'mysqlclient>=2.2.1'
	$(call run_pytest,MariaDB,$(DJJOBS_TEST_MYSQL_NAME),env DATABASE_URL='$(MARIADB_URL)' DJJOBS_TEST_MYSQL_NAME='$(DJJOBS_TEST_MYSQL_NAME)')

# No worker processes, no browser, no PostgreSQL: what an edit is first checked with.
test-fast: install
	$(call run_pytest,SQLite,$(DJJOBS_TEST_SQLITE),env -u DATABASE_URL DJJOBS_TEST_SQLITE='$(DJJOBS_TEST_SQLITE)',tests/unit tests/integration)

# -- lint ----------------------------------------------------------------------------------

# What .ci/run checks before the tests: ruff (configured in pyproject.toml), the import contract
# (lint-imports: imports point down, [tool.importlinter] in pyproject.toml), and that no model
# change lacks its migration (on the demo's settings, which install djjobs and the demo shop,
# with an in-memory database: the check reads no data and leaves no file), and mypy over djjobs/
# ([tool.mypy] in pyproject.toml; on both Django series, typed against the pinned django-stubs,
# which describe Django 6.1). All run, then fail.
LINT_PATHS := djjobs tests benchmarks demo_project manage.py

lint: install
	@failed=""; \
	echo "==> ruff check $(LINT_PATHS)"; \
	$(VENV_PY) -m ruff check --output-format=concise $(LINT_PATHS) || failed="$$failed ruff"; \
	echo "==> ruff format --check $(LINT_PATHS)"; \
	$(VENV_PY) -m ruff format --check $(LINT_PATHS) || failed="$$failed ruff-format"; \
	echo "==> lint-imports (the floors contract in pyproject.toml)"; \
	$(VENV)/bin/lint-imports --no-cache || failed="$$failed lint-imports"; \
	echo "==> makemigrations --check (Python $(PY_VERSION), Django $(DJANGO))"; \
	env DATABASE_URL='sqlite://:memory:' $(VENV_PY) manage.py makemigrations --check --dry-run \
		--settings=demo_project.settings </dev/null || failed="$$failed makemigrations"; \
	echo "==> mypy djjobs (Python $(PY_VERSION), Django $(DJANGO))"; \
	$(VENV_PY) -m mypy || failed="$$failed mypy"; \
	if [ -n "$$failed" ]; then echo "==> lint failed:$$failed"; exit 1; fi; \
	echo "==> lint passed"

# -- documentation -------------------------------------------------------------------------

# The site in docs/ (Sphinx + MyST + Furo, the `docs` extra), warnings as errors: a broken link or
# reference fails. --keep-going reports every warning before failing. docs-serve serves the build.
DOCS_PORT ?= 8001

.PHONY: docs docs-serve

docs: install
	$(VENV_PY) -m sphinx -W --keep-going -b html docs docs/_build/html

docs-serve: docs
	$(VENV_PY) -m http.server --bind $(HOST) --directory docs/_build/html $(DOCS_PORT)

# -- housekeeping --------------------------------------------------------------------------

clean:
	rm -rf .venv .venv-* .test-db build dist *.egg-info .pytest_cache
	rm -f demo_project/db.sqlite3 demo_project/db.sqlite3-wal demo_project/db.sqlite3-shm
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
