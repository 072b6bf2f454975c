# The suite's user surface. `make help` lists the targets. Every target creates and fills .venv when it is
# missing or stale (a stamp keyed on pyproject.toml), so a fresh clone needs nothing else.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-$(shell sha256sum pyproject.toml 2>/dev/null | cut -c1-16)
PROFILE ?= toy
SEEDS ?= 0
EXP ?= direct
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help paper test test-slow run lint bench clean venv

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# torch is unpinned in pyproject; take the CPU build from local disk unless some torch is already there.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	@rm -f $(VENV)/.stamp-*
	@touch $@

venv: $(STAMP)  ## create or refresh .venv

paper: $(STAMP)  ## the main job: run the profile's experiments (PROFILE=toy|paper, SEEDS="0 1 2")
	@for s in $(SEEDS); do $(PY) -m experiments run direct --profile $(PROFILE) --seed $$s || exit 1; done
	@echo "results: outputs/$(PROFILE)/direct/seed*/metrics.json"

run: $(STAMP)  ## run one experiment: make run EXP=direct [PROFILE=toy] [SEEDS=0]
	@for s in $(SEEDS); do $(PY) -m experiments run $(EXP) --profile $(PROFILE) --seed $$s || exit 1; done

test: $(STAMP)  ## the default test suite (offline, CPU, under 15 minutes)
	HF_HUB_OFFLINE=1 WANDB_MODE=offline $(PY) -m pytest -q

test-slow: $(STAMP)  ## the slow tests too (longer toy runs)
	HF_HUB_OFFLINE=1 WANDB_MODE=offline $(PY) -m pytest -q -m "slow or not slow"

bench: $(STAMP)  ## evaluator throughput benchmark -> bench/results/
	$(PY) -m bench.eval_throughput

lint: $(STAMP)  ## ruff
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:  ## remove outputs and caches (keeps .venv)
	rm -rf outputs .pytest_cache .ruff_cache
