# Two entry points (see README): `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: demo test lint bench install clean reference-venv reference-fixtures

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

# bench/attribution_peer.py needs the optional peer libraries (pip install -e '.[bench]')
bench: $(STAMP)
	for b in bench/*.py; do \
	  if [ $$b = bench/attribution_peer.py ] && ! $(BIN)/python -c "import torch, tangermeme" 2>/dev/null; \
	  then echo "$$b not run: pip install -e '.[bench]' (requirements-bench.txt) first"; continue; fi; \
	  $(BIN)/python $$b || exit 1; done

# The original stack (Python 3.7, TensorFlow 1.15, Keras 2.2.4, keras-genomics, deeplift) for
# reference/ and the legacy-import fixtures; on demand only, never part of install or test
# (docs/legacy.md).
# pyenv's interpreter first: its python3.7 shim on PATH fails where 3.7 is not selected.
LEGACY_PYTHON ?= $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.7*/bin/python) \
	$(shell command -v python3.7 2>/dev/null))
LEGACY_VENV   := .venv-legacy
LEGACY_STAMP  := $(LEGACY_VENV)/.installed
LEGACY_DATA   ?= build/legacy-data
LEGACY_OUT    := tests/fixtures/legacy

reference-venv: $(LEGACY_STAMP)

$(LEGACY_STAMP): reference/requirements-legacy.txt
	@test -n "$(LEGACY_PYTHON)" || { echo "no Python 3.7 found; pass LEGACY_PYTHON=/path/to/python3.7"; exit 1; }
	test -x $(LEGACY_VENV)/bin/python || $(LEGACY_PYTHON) -m venv $(LEGACY_VENV)
	$(LEGACY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r reference/requirements-legacy.txt
	touch $(LEGACY_STAMP)

reference-fixtures: $(STAMP) $(LEGACY_STAMP)
	rm -rf $(LEGACY_OUT) $(LEGACY_DATA)
	$(LEGACY_VENV)/bin/python reference/make_fixtures.py --benchmark-rc $(BIN)/benchmark-rc \
		--data $(LEGACY_DATA) --out $(LEGACY_OUT)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
