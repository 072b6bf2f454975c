"""Sampled GRPO completions (trainers/completion_samples.py): whole prompt groups, each completion beside its own
question, choices, answer and rewards, on disk before W&B, and the same after a resume (tests/test_resume_exact.py).

Run: ``.venv/bin/python -m pytest -q tests/test_completion_samples.py`` (about a minute).
"""

from __future__ import annotations

import dataclasses
import json
from collections import deque

import pytest

from data.io import append_jsonl
from data.run_files import RUN_ID_FILE, STEP_KEY
from experiments.record import wandb_logged_rows
from experiments.registry import get_experiment
from experiments.spec import GRPOSpec, TrainSpec
from trainers.completion_samples import COMPLETIONS_LOG, drop_rows_after, sample_rows, table_columns
from trainers.rewards import format_score


def _buffers(n: int) -> dict:
    return {
        "completion": deque(f"c{i}" for i in range(n)),
        "rewards": {"accuracy": deque(float(i % 2) for i in range(n)), "format": deque(1.0 for _ in range(n))},
        "advantages": deque(float(i) for i in range(n)),
        "extra": {"id": deque(f"q{i // 4}" for i in range(n)), "question": deque(f"Q{i // 4}?" for i in range(n)),
                  "choices": deque(["a", "b"] for _ in range(n)), "answer": deque("a" for _ in range(n))},
    }  # fmt: skip


def test_rows_are_whole_groups_with_each_rows_own_values():
    rows = sample_rows(_buffers(16), 30, groups=2, group_size=4)
    assert len(rows) == 8 and {r["id"] for r in rows} == {"q0", "q1"}
    assert [r["completion"] for r in rows] == [f"c{i}" for i in range(8)]
    assert [r["reward/accuracy"] for r in rows] == [float(i % 2) for i in range(8)]
    assert [r["advantage"] for r in rows] == [float(i) for i in range(8)]
    assert all(r[STEP_KEY] == 30 for r in rows)
    assert len(sample_rows(_buffers(4), 30, groups=2, group_size=4)) == 4  # fewer buffered than asked: all of them


def test_a_column_not_carried_beside_every_completion_is_an_error():
    buffers = _buffers(8)
    buffers["extra"]["question"].pop()
    with pytest.raises(RuntimeError, match="question"):
        sample_rows(buffers, 1, groups=1, group_size=4)


def test_table_cells_hold_no_lists():
    columns, data = table_columns(sample_rows(_buffers(4), 1, groups=1, group_size=4))
    assert columns[:6] == [STEP_KEY, "id", "question", "choices", "answer", "completion"]
    assert data[0][3] == "a | b"


def test_a_resume_drops_the_rows_after_its_checkpoint(tmp_path):
    append_jsonl(tmp_path / COMPLETIONS_LOG, [{STEP_KEY: s, "completion": "x"} for s in (10, 20, 30)])
    assert drop_rows_after(tmp_path, 20) == 1
    assert [json.loads(line)[STEP_KEY] for line in (tmp_path / COMPLETIONS_LOG).open()] == [10, 20]
    assert drop_rows_after(tmp_path / "none", 0) == 0


def test_trained_rows_match_their_prompts_and_rewards(tiny_dir, smoke_train_items, tmp_path, monkeypatch):
    """After two real steps, every recorded completion sits beside the question of the prompt TRL sampled it for,
    and its rewards are the reward functions' values for that completion."""
    import torch

    import trainers.rewards
    from experiments.trainer_arguments import build_trainer
    from models.loading import load_model_and_processor

    # An untrained model names no option (every accuracy reward 0): score by length parity, so rows differ.
    monkeypatch.setattr(trainers.rewards, "accuracy_score", lambda c, a, ch, rule="mmau": float(len(c) % 2))
    train = TrainSpec(learning_rate=1e-3, epochs=None, max_steps=2, per_device_batch=2, grad_accum=2, save_every=0,
                      logging_steps=1)  # fmt: skip
    exp = dataclasses.replace(get_experiment("grpo-p2"), train=train,
                              grpo=GRPOSpec(num_generations=4, max_completion_length=6, sample_groups=2))  # fmt: skip
    model, processor = load_model_and_processor(tiny_dir, device="cpu", dtype=torch.float32)
    recorded: list[tuple[int, list[dict]]] = []
    trainer = build_trainer(exp, model, processor, smoke_train_items[:16], output_dir=str(tmp_path), seed=0,
                            completion_sampler=lambda s, r: recorded.append((s, r)))  # fmt: skip
    trainer.train()
    assert [s for s, _ in recorded] == [1, 2]
    items = {i.id: i for i in smoke_train_items}
    step, rows = recorded[-1]
    assert len(rows) == 8 and len({r["id"] for r in rows}) == 2  # two whole groups of G = 4
    for i, row in enumerate(rows):  # the last step's rows are the buffers' first rows
        item = items[row["id"]]
        assert (row["question"], row["choices"], row["answer"]) == (item.question, list(item.choices), item.answer)
        assert item.question in trainer._logs["prompt"][i]  # the prompt this completion was sampled for
        assert row["completion"] == trainer._logs["completion"][i]
        assert row["reward/accuracy"] == float(len(row["completion"]) % 2)
        assert row["reward/format"] == format_score(row["completion"], "p2")
    for g in (rows[:4], rows[4:]):  # group-relative advantages: a higher reward never gets a lower advantage
        by_reward = sorted(g, key=lambda r: r["reward/accuracy"] + r["reward/format"])
        assert [r["advantage"] for r in by_reward] == sorted(r["advantage"] for r in by_reward)


def test_a_smoke_run_records_completions_then_logs_them_to_wandb(tmp_path, monkeypatch, smoke_world, tiny_dir):
    from experiments.__main__ import main

    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "run"
    assert main(["run", "grpo-p2", "--profile", "smoke", "--output-dir", str(out)]) == 0
    rows = [json.loads(line) for line in (out / COMPLETIONS_LOG).open()]
    steps = sorted({r[STEP_KEY] for r in rows})
    assert steps == [1, 2, 3, 4]  # the smoke profile logs every step
    assert all(sum(r[STEP_KEY] == s for r in rows) == 2 * 4 for s in steps)  # 2 groups of G = 4
    history = wandb_logged_rows((out / RUN_ID_FILE).read_text().strip(), tmp_path / "wandb")
    tables = [h for h in history if h.get("completions/_type") == "table-file"]  # W&B files nested keys flat
    assert sorted(h[STEP_KEY] for h in tables) == steps
    assert all(h["completions/nrows"] == 8 for h in tables)

    off = tmp_path / "off"
    assert (
        main(["run", "grpo-p2", "--profile", "smoke", "--output-dir", str(off), "--set", "grpo.sample_groups=0"]) == 0
    )
    assert not (off / COMPLETIONS_LOG).exists()
