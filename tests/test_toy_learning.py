"""Slow: on the toy profile, SFT learns to listen and GRPO learns from its reward. Minutes on 2 cores.

Run with ``make test-slow``. The toy instruct base is built first (cached per test session).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.__main__ import main

pytestmark = pytest.mark.slow
GRPO_SEED = 2  # the seed that collapsed at the earlier learning rate


def _test_accuracy(run_dir: Path) -> float:
    return json.loads((run_dir / "metrics.json").read_text())["accuracy"]["avg"]


def test_toy_training_learns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Full SFT beats the zero-shot base on the out-of-distribution test split by a margin; GRPO + Prompt <2> moves
    its policy away from the base (KL > 0), gains on validation over its step 0 (the toy recipe's target: 10
    points, mean over seeds; docs/toy.md) and does not collapse on the test split."""
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    for name, seed in (("direct", 0), ("sft-full", 0), ("grpo-p2", GRPO_SEED)):
        assert main(["run", name, "--seed", str(seed), "--output-dir", str(tmp_path / name)]) == 0
    direct, sft = _test_accuracy(tmp_path / "direct"), _test_accuracy(tmp_path / "sft-full")
    # 5 points on 1980 items is about 4 standard errors of a paired difference. Seed 0 on the machine that made the
    # README's table: 51.21 -> 62.32 (final checkpoint; seeds 0-2: 58.5-62.3); other machines build another base
    # (docs/toy.md), so the margin asked here is smaller than the one measured there.
    assert sft > direct + 5, (direct, sft)
    last = max((tmp_path / "grpo-p2").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    history = json.loads((last / "trainer_state.json").read_text())["log_history"]
    kls = [h["kl"] for h in history if "kl" in h]
    assert kls and sum(kls) / len(kls) > 1e-3, kls  # the policy left the base
    # At the earlier toy learning rate (1.5e-3) this seed fell to chance (43.3, nearly every question type answered
    # with one option) from step 40 on; a collapse costs about 8 points, the guard allows 3.
    grpo = _test_accuracy(tmp_path / "grpo-p2")
    assert grpo > direct - 3, (direct, grpo)
    # Validation at each checkpoint (step 0: the base). Seeds 0-2 on the machine that made the README's table gained
    # 12-14 points by the last step (300 items: a standard error of about 2.9 each); 5 asked here.
    rows = [json.loads(line) for line in (tmp_path / "grpo-p2" / "checkpoint_evals.jsonl").read_text().splitlines()]
    val = {row["step"]: row["eval/val/avg"] for row in rows}
    assert min(val) == 0 and val[max(val)] > val[0] + 5, val
