"""Slow: on the toy profile, SFT learns to listen and GRPO's reward rises. Minutes on 2 cores.

Run with ``make test-slow``. The toy instruct base is built first (cached per test session).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.__main__ import main

pytestmark = pytest.mark.slow


def _test_accuracy(run_dir: Path) -> float:
    return json.loads((run_dir / "metrics.json").read_text())["accuracy"]["avg"]


def test_toy_training_learns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Full SFT beats the zero-shot base on the out-of-distribution test split by a margin, and GRPO's accuracy
    reward rises over its run (on the toy world GRPO's test accuracy stays near the base's: see the README)."""
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    for name in ("direct", "sft-full", "grpo-p2"):
        assert main(["run", name, "--output-dir", str(tmp_path / name)]) == 0
    direct, sft = _test_accuracy(tmp_path / "direct"), _test_accuracy(tmp_path / "sft-full")
    # 3 points on 1980 items is about 2.5 standard errors of a paired difference. Seed 0 on the machine that made the
    # README's table: 51.21 -> 56.52 (final checkpoint); other machines build another base (docs/toy.md), so the
    # margin asked here is smaller than the one measured there.
    assert sft > direct + 3, (direct, sft)
    last = max((tmp_path / "grpo-p2").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    history = json.loads((last / "trainer_state.json").read_text())["log_history"]
    rewards = [h["rewards/accuracy/mean"] for h in history if "rewards/accuracy/mean" in h]
    tenth = max(1, len(rewards) // 10)
    first, final = sum(rewards[:tenth]) / tenth, sum(rewards[-tenth:]) / tenth
    assert final > first, (first, final)
