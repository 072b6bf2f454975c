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
DEEPSPEED_VERSION := 0.19.8
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help paper table2 silent fig3 fig4 launch test test-slow run lint bench clean venv

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# torch is unpinned in pyproject; take the CPU build from local disk unless some torch is already there.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	@# DeepSpeed builds from source and imports torch while building: build it against the torch just installed.
	$(PY) -m pip install -q wheel
	DS_BUILD_OPS=0 $(PY) -m pip install -q --no-build-isolation deepspeed==$(DEEPSPEED_VERSION)
	@rm -f $(VENV)/.stamp-*
	@touch $@

venv: $(STAMP)  ## create or refresh .venv

SELECT ?= best-val
# Another model than the profile's own (hub id, checkpoint directory, or toy-qwen2.5-omni, tiny-qwen3-omni, ...):
# its runs go to outputs/<PROFILE>/<MODEL>/ and its reports to reports/<PROFILE>/<MODEL>/ ('/' in MODEL as '--').
MODEL ?=
MODEL_ARG := $(if $(MODEL),--model $(MODEL))
STUDY := $(PROFILE)$(if $(MODEL),/$(subst /,--,$(MODEL)))
# Extra flags for analysis.table2, e.g. TABLE2_ARGS=--allow-mixed-decoding (see README, Outputs).
TABLE2_ARGS ?=

paper: $(STAMP)  ## the main job: every Table 2 run of the profile, their silent-audio controls, the table and figures (PROFILE, MODEL, SEEDS)
	$(PY) -m experiments paper --profile $(PROFILE) $(MODEL_ARG) --seeds $(SEEDS)
	$(PY) -m controls.silent --profile $(PROFILE) $(MODEL_ARG) --select $(SELECT)
	$(PY) -m analysis.figures fig3 --profile $(PROFILE) $(MODEL_ARG) --select $(SELECT)
	$(PY) -m analysis.figures fig4 --profile $(PROFILE) $(MODEL_ARG) --select $(SELECT)
	$(PY) -m analysis.table2 --profile $(PROFILE) $(MODEL_ARG) --select $(SELECT) $(TABLE2_ARGS)
	@echo "runs: outputs/$(STUDY)/; W&B runs: outputs/wandb; reports: reports/$(STUDY)/table2/table2.{md,tex,csv}, reports/$(STUDY)/fig3.{png,pdf}, reports/$(STUDY)/fig4.{png,pdf}"

table2: $(STAMP)  ## Table 2 from the W&B runs -> reports/<PROFILE>[/<MODEL>]/table2/table2.{md,tex,csv} (PROFILE, MODEL, SELECT=best-val|final|best-test, TABLE2_ARGS)
	$(PY) -m analysis.table2 --profile $(PROFILE) $(MODEL_ARG) --select $(SELECT) $(TABLE2_ARGS)

silent: $(STAMP)  ## silent-audio control of each Table 2 row's selected checkpoint, in its run dir (PROFILE, MODEL, SELECT)
	$(PY) -m controls.silent --profile $(PROFILE) $(MODEL_ARG) --select $(SELECT)

fig3: $(STAMP)  ## GRPO convergence figure -> reports/<PROFILE>[/<MODEL>]/fig3.{png,pdf}
	$(PY) -m analysis.figures fig3 --profile $(PROFILE) $(MODEL_ARG) --select $(SELECT)

fig4: $(STAMP)  ## SFT convergence figure -> reports/<PROFILE>[/<MODEL>]/fig4.{png,pdf}
	$(PY) -m analysis.figures fig4 --profile $(PROFILE) $(MODEL_ARG) --select $(SELECT)

run: $(STAMP)  ## run one experiment: make run EXP=grpo-p2 [PROFILE=toy] [MODEL=...] [SEEDS=0]
	@for s in $(SEEDS); do $(PY) -m experiments run $(EXP) --profile $(PROFILE) $(MODEL_ARG) --seed $$s || exit 1; done

NPROC ?= 8
ACCEL ?= zero3
launch: $(STAMP)  ## multi-process run: make launch EXP=grpo-p2 NPROC=8 ACCEL=ddp|zero2|zero3|zero3_offload|fsdp|cpu
	$(VENV)/bin/accelerate launch --config_file launch/$(ACCEL).yaml --num_processes $(NPROC) \
	  -m experiments run $(EXP) --profile $(PROFILE) $(MODEL_ARG) --seed $(firstword $(SEEDS))

test: $(STAMP)  ## the default test suite (offline, CPU, under 15 minutes)
	HF_HUB_OFFLINE=1 WANDB_MODE=offline $(PY) -m pytest -q

test-slow: $(STAMP)  ## the slow tests (toy SFT and GRPO learning, DDP / FSDP2 / ZeRO-3 kill-and-resume CPU launches; about 35 minutes on 2 cores)
	HF_HUB_OFFLINE=1 WANDB_MODE=offline $(PY) -m pytest -q -m slow

bench: $(STAMP)  ## evaluator throughput benchmark -> bench/results/
	$(PY) -m bench.eval_throughput

lint: $(STAMP)  ## ruff
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:  ## remove outputs, reports and caches (keeps .venv)
	rm -rf outputs reports .pytest_cache .ruff_cache
