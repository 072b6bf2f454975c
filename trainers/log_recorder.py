"""The trainer's log rows, written to the run directory before they go to W&B.

Replaces transformers' ``WandbCallback`` (the trainers run with ``report_to=[]``): each ``on_log`` row is renamed
the way that callback names it (``loss`` -> ``train/loss``, ``eval_x`` -> ``eval/x``, plus ``train/global_step``),
appended to ``<run dir>/train_log.jsonl`` (fsynced), and only then handed to ``log`` (the W&B run). The end-of-run
totals (``train_runtime``, ``train_loss``, ...) go to ``summary`` instead of the history, as that callback does.
The console shows only a short line of each row (``trainers/console.py``); the whole row is here and in W&B.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from data.io import append_jsonl
from data.run_files import STEP_KEY, TRAIN_LOG

RUN_TOTALS = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss")


def wandb_keys(logs: dict[str, Any]) -> dict[str, Any]:
    """``{"loss": x, "eval_acc": y}`` -> ``{"train/loss": x, "eval/acc": y}`` (transformers' W&B naming)."""
    out = {}
    for key, value in logs.items():
        if key.startswith("eval_"):
            out["eval/" + key.removeprefix("eval_")] = value
        elif key.startswith("test_"):
            out["test/" + key.removeprefix("test_")] = value
        else:
            out["train/" + key] = value
    return out


def record_row(logs: dict[str, Any], step: int) -> dict[str, Any] | None:
    """The ``train_log.jsonl`` row of one trainer log call (None for the end-of-run totals or a row of no scalars).

    The trainer keeps the same ``logs`` (plus ``step``) in ``trainer_state.json``'s ``log_history``, so a lost row
    is rebuilt exactly from a checkpoint (``experiments.record.restore_train_log``)."""
    if any(k in RUN_TOTALS for k in logs):
        return None
    scalars = {k: v for k, v in logs.items() if isinstance(v, (int, float, bool))}
    return {**wandb_keys(scalars), STEP_KEY: step} if scalars else None


class TrainLogRecorder(TrainerCallback):
    def __init__(
        self,
        run_dir: str | Path,
        log: Callable[[dict[str, Any]], None] | None = None,
        summary: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.path, self.log, self.summary = Path(run_dir) / TRAIN_LOG, log, summary

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        totals = {k: v for k, v in logs.items() if k in RUN_TOTALS}
        if totals:  # the end-of-training row (with only the epoch besides): run totals, not a step of the history
            if self.summary is not None:
                self.summary(wandb_keys(totals))
            return
        row = record_row(logs, state.global_step)
        if row is None:
            return
        append_jsonl(self.path, [row])
        if self.log is not None:
            self.log(row)
