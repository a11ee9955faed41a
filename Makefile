# objfs: `make run` mounts a volume, `make test` runs the whole suite.
# Every target installs what it needs first, and only what is missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MOUNT ?= mnt
PYTEST_ARGS ?=

.PHONY: run test install deps lint bench clean

run: install
	$(BIN)/objfs up $(MOUNT)

test: install lint
	$(BIN)/pytest $(PYTEST_ARGS)

install: deps $(VENV)/.installed

deps:
	scripts/install-deps

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/btree.py
	$(BIN)/python bench/ickpt.py
	$(BIN)/python bench/imgr.py
	$(BIN)/python bench/mount.py

clean:
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache .hypothesis
