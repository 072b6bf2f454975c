"""The names of a run directory's record files and of the W&B step key: one place for their writers and readers.

The trainers write ``train_log.jsonl`` and ``checkpoint_evals.jsonl``; ``experiments`` writes ``wandb_run_id`` and
``wandb_run.json`` and re-logs the record to W&B; ``analysis`` checks W&B against the record. This module imports
nothing, so the readers can use it without loading the training stack.
"""

TRAIN_LOG = "train_log.jsonl"  # one row per trainer log step (train/... keys)
EVAL_LOG = "checkpoint_evals.jsonl"  # one row per evaluated checkpoint (eval/<set>/... keys)
# GRPO: a few sampled completions per logging step (question, choices, completion, each reward, advantage).
COMPLETIONS_LOG = "completions.jsonl"
RUN_ID_FILE = "wandb_run_id"  # the W&B run that wrote the directory
# How that W&B run is filed: mode, project, name, group, tags, the W&B variables that set them, id, local folders.
WANDB_RUN_FILE = "wandb_run.json"
STEP_KEY = "train/global_step"  # the x-axis of every W&B chart, in every row of the record
