# The two set-up commands are `make run` and `make test`; both bootstrap .venv from nothing and say
# what they are doing meanwhile (a first install takes about a minute).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# bash for `set -o pipefail` in the install step (a failing pip must fail the target).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test lint bench services browser cc clean mutation

# Packages pyproject.toml names (dependencies + the dev extra); pip installs theirs too.
DECLARED = $(shell $(PYTHON) -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print(len(p['dependencies']) + len(p['optional-dependencies']['dev']))" 2>/dev/null)
# pip's output reduced to one line per package, numbered, so a first install (about a minute) is
# never silent; the whole output is kept in $(VENV)/install.log.
PIP_PROGRESS = awk '/^(Collecting|Processing) /{n++; name = $$2; sub(/.*\//, "", name); \
	  printf "    [%d] %s\n", n, name; fflush()} \
	/^Requirement already satisfied/{k++} \
	/^Installing collected packages: /{sub(/^Installing collected packages: /, ""); \
	  printf "    installing %d packages into $(VENV) ...\n", split($$0, names, ", "); fflush()} \
	/^Successfully installed/{printf "    installed %d packages\n", NF - 2} \
	/^(ERROR|error)/{print} \
	END{if (k) printf "    %d already installed\n", k}'

# While pip writes nothing for 5 s (unpacking and compiling the packages takes a while), say so.
STALL_TICKER = ( seen=0; waited=0; while sleep 5; do waited=$$((waited + 5)); \
	  now=$$(wc -l < $(VENV)/install.log 2>/dev/null || echo 0); \
	  [ "$$now" = "$$seen" ] && echo "    ... still working ($$waited s)"; seen=$$now; done )

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "wecom-sentinel needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1)"; exit 1; }
	@echo "==> creating the Python environment $(VENV) ($$($(PYTHON) --version 2>&1)) ..."
	@$(PYTHON) -m venv $(VENV)
	@echo "==> updating pip ..."
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "==> installing wecom-sentinel, its $(DECLARED) declared packages and what they need (first time: about a minute) ..."
	@set -o pipefail; $(STALL_TICKER) & ticker=$$!; \
	  $(BIN)/python -m pip install --progress-bar off -e '.[dev]' 2>&1 \
	  | tee $(VENV)/install.log | $(PIP_PROGRESS); status=$$?; \
	  kill $$ticker; wait $$ticker 2>/dev/null; \
	  [ $$status -eq 0 ] || { echo "pip failed; its whole output: $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)
	@echo "==> $(VENV) is ready"

venv: $(STAMP)

run: venv
	@echo "==> starting: $(BIN)/python run_bot.py serve (Ctrl-C stops it)"
	@$(BIN)/python run_bot.py serve

# Tests use the real PostgreSQL and Redis; `services` fails loudly, naming what to start.
services: venv
	$(BIN)/python tests/support/services.py

# The review web's browser test drives Debian's chromium through Playwright (Playwright's own
# browser download is not used), with a Chinese font for its screenshots (fonts-wqy-microhei).
# Installed here when missing and we may (root + apt-get); else the browser test is skipped, and
# says so.
CHROMIUM ?= /usr/bin/chromium
BROWSER_PACKAGES := chromium fonts-wqy-microhei
browser: venv
	@if [ -x "$(CHROMIUM)" ] && fc-list 2>/dev/null | grep -qi wenquanyi; then \
	  echo "==> browser test: $$($(CHROMIUM) --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "==> installing $(BROWSER_PACKAGES) for the browser test (apt-get, about a minute) ..."; \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PACKAGES) > $(VENV)/apt.log 2>&1 || \
	    { apt-get update -q >> $(VENV)/apt.log 2>&1 && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PACKAGES) >> $(VENV)/apt.log 2>&1; }; } && \
	  echo "==> browser test: $$($(CHROMIUM) --version 2>/dev/null)" || \
	  echo "==> chromium could not be installed (see $(VENV)/apt.log): the browser test will be skipped"; \
	else \
	  echo "==> no chromium and no root apt-get: the browser test will be skipped (apt-get install chromium)"; \
	fi

# The archive SDK binding's tests build a C test double of the vendor library
# (tests/support/fake_finance_sdk.c); gcc is installed here when no C compiler is found and we may
# (root + apt-get); else those tests are skipped, and say so.
cc: venv
	@if command -v cc >/dev/null || command -v gcc >/dev/null || command -v clang >/dev/null; then \
	  echo "==> C compiler for the archive SDK test double: $$({ cc --version || gcc --version || clang --version; } 2>/dev/null | head -n 1)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "==> installing gcc for the archive SDK test double (apt-get) ..."; \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc > $(VENV)/apt.log 2>&1 || \
	    { apt-get update -q >> $(VENV)/apt.log 2>&1 && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc >> $(VENV)/apt.log 2>&1; }; } && \
	  echo "==> C compiler for the archive SDK test double: $$(gcc --version | head -n 1)" || \
	  echo "==> gcc could not be installed (see $(VENV)/apt.log): the archive SDK binding tests will be skipped"; \
	else \
	  echo "==> no C compiler and no root apt-get: the archive SDK binding tests will be skipped (apt-get install gcc)"; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Four workers on two cores: much of the suite waits on subprocess servers, sockets and timers, and
# four overlap those waits (about 5 min here, against 6 with one worker per core).
TEST_WORKERS ?= 4
test: venv services browser cc lint
	$(BIN)/pytest -q -n $(TEST_WORKERS)

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
