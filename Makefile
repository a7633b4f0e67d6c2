# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test lint typecheck unit browser-deps test-ceph bench shortener sim docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

$(DOCS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[docs]'
	touch $@

demo: $(STAMP)
	$(BIN)/python examples/bookmarks.py

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples

typecheck: $(TEST_STAMP)
	$(BIN)/mypy src

unit: $(TEST_STAMP)
	$(BIN)/pytest -q -p no:cacheprovider --cov --cov-branch --cov-report=term --cov-fail-under=90

test: lint typecheck browser-deps unit

# Debian's chromium for the browser test (Playwright's own download does not work here).
browser-deps: $(TEST_STAMP)
	@if [ -f scripts/install-browser.sh ]; then bash scripts/install-browser.sh; fi

# The suite against a single-node Ceph RADOS Gateway on loopback (installs it as root).
test-ceph: $(TEST_STAMP)
	bash scripts/ceph/test-ceph.sh

# Side-by-side benchmarks; writes BENCHMARKS.md.  Not part of `make test`.
bench: $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.run

# Seeded simulation of concurrent managers (docs/simulation.md): SIM_SEEDS schedules
# from seed SIM_SEED_START; the last line is "sim: N schedules, K violations".
SIM_SEEDS ?= 2000
SIM_SEED_START ?= 0
SIM_PROFILE ?= random
SIM_JOBS ?= 2
sim: $(STAMP)
	$(BIN)/python -m ssshelf.testing.sim --seeds $(SIM_SEEDS) --start $(SIM_SEED_START) \
		--profile $(SIM_PROFILE) --jobs $(SIM_JOBS)

# The URL shortener on the embedded default (SSSHELF_URL to use S3).
shortener: $(STAMP)
	$(BIN)/pip install --quiet -e '.[web]'
	$(BIN)/python -m examples.url_shortener

# The documentation site (docs/conf.py): HTML in build/docs, every warning an error.
docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -c docs -d build/docs-doctrees . build/docs
	@echo "built build/docs/index.html"

clean:
	rm -rf $(VENV) .coverage htmlcov .mypy_cache .ruff_cache .pytest_cache build/docs build/docs-doctrees
