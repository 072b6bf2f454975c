"""Sampled GRPO completions, a few prompt groups per logging step: written to the run directory, then a W&B table.

Reading an RL run means reading what it samples. TRL's own ``log_completions`` crashes on the suite's audio prompts
(notes section 6) and stores chat-rendered prompt text; this keeps what a reader needs instead. Every logging step,
the first ``grpo.sample_groups`` prompt groups (all G completions of each) of the latest generation batch are
appended to ``<run dir>/completions.jsonl`` (fsynced) and only then logged to W&B as the table ``completions``, at
the row's ``train/global_step``. Columns: step, id, question, choices, answer, completion, ``reward/<name>`` for each
reward function, advantage.

A resumed run drops the rows after its checkpoint and samples those steps again (``drop_rows_after``): a resume that
is exact gives the same rows as the uninterrupted run (``tests/test_completion_samples.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from data.io import append_jsonl, read_jsonl, write_jsonl_atomic
from data.run_files import COMPLETIONS_LOG, STEP_KEY

# Dataset columns the prompt text does not show plainly; carried beside each completion (trainers/grpo.py).
ITEM_COLUMNS = ("id", "question", "choices", "answer")
TABLE_KEY = "completions"  # the W&B key of the table (TRL's name for it)


def sample_rows(buffers: Mapping[str, Any], step: int, *, groups: int, group_size: int) -> list[dict[str, Any]]:
    """The first ``groups`` prompt groups of TRL's completion buffers (``GRPOTrainer._logs``) as table rows.

    TRL samples each prompt's G completions as consecutive rows, so rows ``[0, groups * G)`` are whole groups."""
    completions = list(buffers["completion"])
    extra = buffers["extra"]
    missing = [c for c in ITEM_COLUMNS if len(extra.get(c, ())) != len(completions)]
    if missing:
        raise RuntimeError(f"completion samples: the columns {missing} are not carried beside every completion")
    rows = []
    for i in range(min(len(completions), groups * group_size)):
        row: dict[str, Any] = {STEP_KEY: step, "id": extra["id"][i], "question": extra["question"][i],
                               "choices": list(extra["choices"][i]), "answer": extra["answer"][i],
                               "completion": completions[i]}  # fmt: skip
        for name, values in buffers["rewards"].items():
            row[f"reward/{name}"] = values[i]
        row["advantage"] = buffers["advantages"][i]
        rows.append(row)
    return rows


def table_columns(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Columns and data of a W&B table of ``rows`` (choices joined by `` | ``: a table cell holds no list)."""
    columns = list(rows[0])
    data = [[" | ".join(r[c]) if c == "choices" else r[c] for c in columns] for r in rows]
    return columns, data


def drop_rows_after(run_dir: str | Path, step: int) -> int:
    """Keep only the rows up to ``step`` (the checkpoint a run resumes from); returns how many were dropped."""
    path = Path(run_dir) / COMPLETIONS_LOG
    if not path.exists():
        return 0
    rows = read_jsonl(path, tolerate_truncated_tail=True)
    kept = [r for r in rows if r.get(STEP_KEY, 0) <= step]
    if len(kept) != len(rows):
        write_jsonl_atomic(path, kept)
    return len(rows) - len(kept)


class CompletionSampleRecorder:
    """``recorder(step, rows)``: append to ``completions.jsonl``, then hand the rows to ``log_table`` (W&B)."""

    def __init__(self, run_dir: str | Path, log_table: Callable[[str, list[dict[str, Any]], int], None] | None = None):
        self.path, self.log_table = Path(run_dir) / COMPLETIONS_LOG, log_table

    def __call__(self, step: int, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        append_jsonl(self.path, rows)
        if self.log_table is not None:
            self.log_table(TABLE_KEY, rows, step)
