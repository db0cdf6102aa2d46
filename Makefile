# Two commands set everything up on a fresh machine that has Python 3.10+ and make:
#   make run    the main job: the default b2n sweep on the embedded world (ARGS="..." adds `run` options)
#   make test   the whole test suite, slow end-to-end tests included (ARGS="..." adds pytest options)
# Each creates .venv from requirements.lock (the exact versions the committed leaderboards were produced with)
# when it is missing or older than requirements.lock or pyproject.toml, then runs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint

$(STAMP): requirements.lock pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e '.[dev,cluster]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m benchmark run --methods all --protocol b2n $(ARGS)

test: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
