"""A run directory as the durable record of a run, and W&B made to agree with it.

Every row a run sends to W&B is first appended to a JSON-lines file in its run directory (flushed and fsynced):
``train_log.jsonl`` (the trainer's logs, ``train/...`` keys) and ``checkpoint_evals.jsonl`` (one row per
evaluation, ``eval/<set>/...`` keys). Both rows carry ``train/global_step``, the x-axis of every W&B chart.

W&B buffers what it is given (an offline run flushes about every 15 s), so a hard kill can lose rows that are
already on disk. :func:`missing_in_wandb` compares the record with what the run's W&B files hold;
``experiments.tracking`` re-logs the missing rows, each at its own step, when a run resumes and again after it
finishes, and refuses to mark a run complete while W&B still lacks any of them.

:class:`RunDirLock` makes one process the only writer of a run directory: a second one gets an error naming the
holder's pid. The lock is an advisory ``flock`` (``filelock``), which the kernel drops when its holder dies, so a
killed run never blocks its own resume.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from data.io import OwnedLock, read_json, read_jsonl, write_jsonl_atomic
from data.run_files import EVAL_LOG, STEP_KEY, TRAIN_LOG

# Keys of the evaluation rows that are bookkeeping of the record, not W&B metrics.
_RECORD_ONLY_KEYS = ("step", "dir")


def record_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every row of the record as W&B would get it: training rows, then evaluation rows, without bookkeeping keys."""
    rows: list[dict[str, Any]] = []
    for name in (TRAIN_LOG, EVAL_LOG):
        path = Path(run_dir) / name
        if path.exists():
            for row in read_jsonl(path, tolerate_truncated_tail=True):
                rows.append({k: v for k, v in row.items() if k not in _RECORD_ONLY_KEYS})
    return rows


def restore_train_log(run_dir: str | Path, checkpoint: Path | None) -> tuple[int, int]:
    """Make ``train_log.jsonl`` hold exactly the training rows up to the checkpoint a run resumes from.

    Rows after it are dropped: the resume logs those steps again. Rows up to it that the file lacks (a deleted or
    damaged file) are rebuilt from the checkpoint's ``trainer_state.json``, whose ``log_history`` holds every row the
    trainer logged (``trainers.log_recorder.record_row`` makes both). Returns (rows dropped, rows rebuilt).
    """
    from trainers.log_recorder import record_row

    path = Path(run_dir) / TRAIN_LOG
    rows = read_jsonl(path, tolerate_truncated_tail=True) if path.exists() else []
    step = int(checkpoint.name.split("-")[1]) if checkpoint is not None else 0
    kept = [r for r in rows if r.get(STEP_KEY, 0) <= step]
    rebuilt: list[dict[str, Any]] = []
    if checkpoint is not None:
        history = read_json(checkpoint / "trainer_state.json").get("log_history", [])
        have = {r.get(STEP_KEY) for r in kept}
        for entry in history:
            row = record_row({k: v for k, v in entry.items() if k != "step"}, entry.get("step", 0))
            if row is not None and row[STEP_KEY] <= step and row[STEP_KEY] not in have:
                rebuilt.append(row)
    if rebuilt or len(kept) != len(rows):
        write_jsonl_atomic(path, sorted(kept + rebuilt, key=lambda r: r.get(STEP_KEY, 0)))
    if rebuilt:
        print(f"{path}: {len(rebuilt)} training rows up to step {step} were missing (steps {steps_of(rebuilt)}); "
              f"rebuilt them from {checkpoint / 'trainer_state.json'}")  # fmt: skip
    return len(rows) - len(kept), len(rebuilt)


def wandb_logged_rows(run_id: str, wandb_dir: str | Path) -> list[dict[str, Any]]:
    """The history rows W&B holds for ``run_id``, read from its local run files under ``wandb_dir``.

    W&B writes these files in online and offline mode alike; after ``finish()`` they hold everything the run sent.
    """
    from experiments.wandb_files import RUN_FILE, read_session, run_files

    rows: list[dict[str, Any]] = []
    root = Path(wandb_dir)
    if not root.is_dir():
        return rows
    for path in run_files(root):
        match = RUN_FILE.match(path.name)
        if match and match["id"] == run_id:
            rows += read_session(path).history
    return rows


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        a, b = float(a), float(b)
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def missing_in_wandb(record: list[dict[str, Any]], logged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The record's rows that no logged row holds (same step, every key present with the same value)."""
    by_step: dict[Any, list[dict[str, Any]]] = {}
    for row in logged:
        by_step.setdefault(row.get(STEP_KEY), []).append(row)
    missing = []
    for row in record:
        candidates = by_step.get(row.get(STEP_KEY), [])
        wanted = {k: v for k, v in row.items() if v is not None}
        if not any(all(k in c and _same(c[k], v) for k, v in wanted.items()) for c in candidates):
            missing.append(row)
    return missing


def steps_of(rows: list[dict[str, Any]]) -> str:
    steps = sorted({int(r.get(STEP_KEY, -1)) for r in rows})
    return ", ".join(map(str, steps[:20])) + (", ..." if len(steps) > 20 else "")


class RunDirLock(OwnedLock):
    """Exclusive writer lock on a run directory (``<dir>/.lock``): a second writer gets :class:`LockBusy`."""

    def __init__(self, run_dir: str | Path):
        super().__init__(
            Path(run_dir) / ".lock", wait=False,
            busy_message=f"{run_dir} is being written by another process; wait for it to finish, stop it, or write "
            "this run elsewhere with --output-dir",
        )  # fmt: skip
