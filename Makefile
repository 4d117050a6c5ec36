# Two entry points: `make demo` and `make test`; both create/update .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench study clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch pinned in the same command as everything that depends on it (CPU wheel).
	$(PY) -m pip install --quiet torch==2.13.0 -e ".[dev,app]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/emomotion demo --out demo_out

test: $(STAMP)
	bash scripts/ensure_chromium.sh
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

study: $(STAMP)
	$(VENV)/bin/emomotion study run study/bandai.toml --out study_out

bench: $(STAMP)
	$(PY) -m bench.pipeline --dataset-2
	$(PY) -m bench.datasets
	$(PY) -m bench.generation
	$(PY) -m bench.mmm

clean:
	rm -rf $(VENV) demo_out study_out .pytest_cache build *.egg-info src/*.egg-info
