# customer_dal: every task starts here; CI runs the same targets.
# Each target bootstraps .venv/ (and the embedded PostgreSQL, when DATABASE_URL
# is unset) by itself, so a fresh clone needs only Python >= 3.11 and make.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CLI    := $(BIN)/customer-dal
STAMP  := $(VENV)/.installed
STEPS  ?= 1
ROWS   ?= 100000

# squawk lints every migration and no rule is excluded for the whole
# directory: a file that needs an exception says so inline, with its reason
# (-- squawk-ignore-file rule, or -- squawk-ignore rule before one statement).
# Transactional migrations run in one transaction (--assume-in-transaction);
# a "-- transactional: false" one and its rollback run statement by
# statement, and are linted as such.
# 0001-0007 shipped before that rule, and a changed byte reads as "edited" on
# every database that applied them, so their exceptions are listed here, file
# by file: varchar(n) is the design's column type (0002), and rollbacks exist
# to drop what their migration made.
SQUAWK := $(BIN)/squawk --pg-version 15.0
SQUAWK_FROZEN := \
	0001_users.rollback.sql:ban-drop-table,require-concurrent-index-deletion \
	0002_customers.sql:prefer-text-field \
	0002_customers.rollback.sql:ban-drop-function,ban-drop-table \
	0004_text_hygiene.rollback.sql:ban-drop-constraint,ban-drop-function \
	0005_schema_documentation.rollback.sql:ban-drop-constraint \
	0006_locale_independent_search.rollback.sql:ban-drop-column \
	0007_text_lengths.rollback.sql:ban-drop-constraint
FROZEN_FILES := $(foreach e,$(SQUAWK_FROZEN),migrations/$(firstword $(subst :, ,$(e))))
NONTX_UP := $(shell grep -l '^-- transactional: false' $(filter-out %.rollback.sql,$(wildcard migrations/*.sql)))
NONTX := $(NONTX_UP) $(NONTX_UP:.sql=.rollback.sql)
TX := $(filter-out $(NONTX) $(FROZEN_FILES),$(wildcard migrations/*.sql))

.DEFAULT_GOAL := help
.PHONY: help migrate rollback status schema new-migration test lint format generate bench psql db-stop clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The virtualenv is rebuilt when pyproject.toml changes.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "customer_dal needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

migrate: $(STAMP) ## apply pending migrations (DATABASE_URL, else the embedded server); PLAN=1 only shows them
	@$(CLI) migrate $(if $(PLAN),--plan)

rollback: $(STAMP) ## roll back the newest migration (STEPS=n for more)
	@$(CLI) rollback --steps $(STEPS)

status: $(STAMP) ## list applied and pending migrations; fails if any is pending, edited or incomplete
	@$(CLI) status

schema: $(STAMP) ## regenerate sql/schema.sql: the schema pg_dump prints after every migration
	@$(CLI) schema --output sql/schema.sql

new-migration: $(STAMP) ## create the next numbered migration pair: NAME=add_something
	@test -n "$(NAME)" || { echo "usage: make new-migration NAME=lower_snake_case"; exit 2; }
	@$(CLI) new-migration $(NAME)

# Only a machine with pgbouncer runs the code that drives it (local_pgbouncer.py,
# pgbouncer_bench.py): CI installs it and fails those tests without it. Elsewhere
# they skip, and the coverage gate leaves those two modules out.
HAVE_PGBOUNCER = $(CUSTOMER_DAL_REQUIRE_PGBOUNCER)$(CUSTOMER_DAL_PGBOUNCER)$(shell command -v pgbouncer /usr/sbin/pgbouncer /usr/local/sbin/pgbouncer 2>/dev/null)
test: export CUSTOMER_DAL_COVERAGE_OMIT = $(if $(HAVE_PGBOUNCER),,*/customer_dal/*pgbouncer*.py)
test: $(STAMP) ## run the test suite against a real PostgreSQL, with 100% branch coverage
	$(BIN)/pytest --cov --cov-report=term-missing:skip-covered $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, ruff format --check, mypy --strict, squawk on migrations/
	$(BIN)/ruff check src tests tools
	$(BIN)/ruff format --check src tests tools
	$(BIN)/mypy --strict src tools
	$(SQUAWK) --assume-in-transaction $(TX)
	$(if $(NONTX),$(SQUAWK) $(NONTX))
	@$(foreach e,$(SQUAWK_FROZEN),$(SQUAWK) --assume-in-transaction --exclude $(lastword $(subst :, ,$(e))) migrations/$(firstword $(subst :, ,$(e))) &&) true

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests tools
	$(BIN)/ruff format src tests tools

# The sync repositories are generated from the async ones: edit *_async.py, then this.
generate: $(STAMP) ## write the sync modules from their async originals (tools/async_to_sync.py)
	$(BIN)/python tools/async_to_sync.py

bench: $(STAMP) ## print benchmark figures vs baselines (ROWS=n, default 100000)
	@$(CLI) bench --rows $(ROWS)

psql: $(STAMP) ## open psql on the database
	@$(CLI) psql

db-stop: $(STAMP) ## stop the embedded server
	@$(CLI) db-stop

clean: ## stop the embedded server, remove .venv/, .pgdata/ and caches
	-@test -x $(CLI) && $(CLI) db-stop
	rm -rf $(VENV) .pgdata .coverage .coverage.* htmlcov dist build .mypy_cache .ruff_cache .hypothesis
