"""Slow: on the toy profile GRPO learns (reward rises, test accuracy beats the zero-shot base). Minutes on 2 cores.

Run with ``make test-slow``. The toy instruct base is built first (cached per test session).
"""

from __future__ import annotations

import json

import pytest

from experiments.__main__ import main

pytestmark = pytest.mark.slow


def test_grpo_p2_learns_on_the_toy_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    assert main(["run", "direct", "--output-dir", str(tmp_path / "direct")]) == 0
    assert main(["run", "grpo-p2", "--output-dir", str(tmp_path / "grpo")]) == 0
    direct = json.loads((tmp_path / "direct" / "metrics.json").read_text())["accuracy"]["avg"]
    grpo = json.loads((tmp_path / "grpo" / "metrics.json").read_text())["accuracy"]["avg"]
    last = max((tmp_path / "grpo").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    history = json.loads((last / "trainer_state.json").read_text())["log_history"]
    rewards = [h["rewards/accuracy/mean"] for h in history if "rewards/accuracy/mean" in h]
    tenth = len(rewards) // 10
    first, final = sum(rewards[:tenth]) / tenth, sum(rewards[-tenth:]) / tenth
    assert final > first, (first, final)
    assert grpo > direct, (direct, grpo)
