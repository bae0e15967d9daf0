# Two entry points (see README): `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: demo test lint bench install clean

install: $(STAMP)

# Reinstall whenever the dependency lists or the package metadata change.
$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt -r requirements-test.txt -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/benchmark-rc sweep --preset quick --out $(DEMO_OUT)

lint: $(STAMP)
	$(BIN)/ruff check benchmark_rc benchmark_rc_launcher.py data_prep tests bench

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
