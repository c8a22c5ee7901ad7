# The two set-up commands are `make run` and `make test`; both bootstrap .venv from nothing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test lint bench services clean mutation

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: venv
	$(BIN)/python run_bot.py serve

# Tests use the real PostgreSQL and Redis; `services` fails loudly, naming what to start.
services: venv
	$(BIN)/python tests/support/services.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: venv services lint
	$(BIN)/pytest -q -n auto

# Mutation testing (mutmut; settings in pyproject.toml [tool.mutmut]), one run per module group, each
# with the fast tests that cover it (PYTEST_ADDOPTS -k over the configured test files). mutants/ is
# rebuilt per run: the per-function test map depends on the selection. Summaries: mutants-report/.
# Slow: about an hour per module group on two cores; `make mutation MUTATION_RUNS="'crypto|...|...'"`
# runs one group.
MUTATION_RUNS := \
	'crypto|wecom_sdk.crypto*|test_crypto or test_replies' \
	'inbound|bot.inbound.*|(test_callback or test_ack_durability or test_dedupe) and not shared and not postgresql and not redis' \
	'outbox|monitor.alerts.outbox*|test_outbox or (test_alerts_e2e and embedded)'

mutation: venv services
	@mkdir -p mutants-report
	@for run in $(MUTATION_RUNS); do \
	  name=$${run%%|*}; rest=$${run#*|}; glob=$${rest%%|*}; select=$${rest#*|}; \
	  rm -rf mutants; \
	  echo "== mutation: $$name ($$glob; tests: $$select)"; \
	  PYTEST_ADDOPTS="-k '$$select'" $(BIN)/mutmut run --max-children 2 "$$glob" > /dev/null 2>&1; \
	  $(BIN)/mutmut results --all true > mutants-report/$$name.txt 2>&1; \
	  grep "$${glob%\*}" mutants-report/$$name.txt | grep -o ": [a-z ]*$$" | sort | uniq -c; \
	done

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
