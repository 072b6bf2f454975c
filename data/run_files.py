"""The names of a run directory's files and folders and of the W&B step key: one place for their writers and readers.

The evaluator writes ``predictions.json`` and ``metrics.json``; the trainers write ``train_log.jsonl``,
``checkpoint_evals.jsonl`` and ``checkpoint-<step>/``; ``experiments`` writes ``experiment.json``, the data reports,
``compute_settings.json``, ``wandb_run_id``, ``wandb_run.json`` and, last, ``run_complete.json``; ``controls``
writes the silent-audio evaluations; ``analysis`` reads them all. This module imports nothing, so every layer (the
data layer's evaluator included) and every reader can use it without loading the training stack.
"""

TRAIN_LOG = "train_log.jsonl"  # one row per trainer log step (train/... keys)
EVAL_LOG = "checkpoint_evals.jsonl"  # one row per evaluated checkpoint (eval/<set>/... keys)
# GRPO: a few sampled completions per logging step (question, choices, completion, each reward, advantage).
COMPLETIONS_LOG = "completions.jsonl"
RUN_ID_FILE = "wandb_run_id"  # the W&B run that wrote the directory
# How that W&B run is filed: mode, project, name, group, tags, the W&B variables that set them, id, local folders.
WANDB_RUN_FILE = "wandb_run.json"
STEP_KEY = "train/global_step"  # the x-axis of every W&B chart, in every row of the record

EXPERIMENT_FILE = "experiment.json"  # the run's resolved experiment (experiments.runner.ResolvedRun)
COMPLETE_MARKER = "run_complete.json"  # written last: a run directory without it is not finished
COMPUTE_SETTINGS_FILE = "compute_settings.json"  # dtype, determinism, threads of the process that trained
METRICS_FILE = "metrics.json"  # one evaluation's accuracies and settings (models.evaluate)
PREDICTIONS_FILE = "predictions.json"  # one evaluation's per-item outputs (models.evaluate)
FINAL_DIR = "final"  # the final model's evaluations when it is no saved checkpoint
FINAL_ADAPTERS_DIR = "final_adapters"  # a LoRA run's final adapters
MERGED_DIR = "merged"  # a LoRA run's final adapters merged into the base weights
DIRECT_SILENT_DIR = "silent"  # a direct run's silent-audio evaluations: silent/<set>/
SILENT_SUFFIX = "-silent"  # a checkpoint's silent-audio evaluation of <set>: eval/<set>-silent/


def data_report_file(split: str) -> str:
    """The data report of one training split (``train``, ``val``): what was loaded, what was dropped and why."""
    return f"{split}_data_report.json"


def checkpoint_dir(step: int) -> str:
    """The folder of the checkpoint saved at ``step`` (the trainers' naming, also step 0: the base model)."""
    return f"checkpoint-{step}"
