"""analysis.compare on the fixture's offline W&B runs: validation gains per seed, their means, the difference.

The fixture's validation curves (tests/analysis_fixtures.py): grpo-p2 s0 40 -> 70, 65, 60 (steps 0, 4, 8, 10),
s1 40 -> 60, 75, 70; sft-full s0 40 -> 55, 55, 50; and a later ad hoc grpo-p2 s0 run at 99 that must be ignored.
"""

from __future__ import annotations

import pytest

from analysis.compare import NoValidationError, compare, main, render
from analysis.select import MissingRunsError


def test_gains_per_seed_and_the_latest_non_adhoc_runs(tables):
    grpo, sft = compare(tables, "toy", ["grpo-p2", "sft-full"])
    assert [s.seed for s in grpo.seeds] == [0, 1]
    assert [(s.val_start, s.val_last, s.gain) for s in grpo.seeds] == [(40.0, 60.0, 20.0), (40.0, 70.0, 30.0)]
    assert [(s.best_gain, s.best_step) for s in grpo.seeds] == [(30.0, 4), (35.0, 8)]  # not the ad hoc run's 99
    assert grpo.mean_sd("gain")[0] == 25.0 and grpo.mean_sd("gain")[1] == pytest.approx(7.0711, abs=1e-4)
    assert [s.selected_step for s in grpo.seeds] == [4, 8]  # best-val, as Table 2 selects
    assert [s.test_selected for s in grpo.seeds] == [65.0, 85.0]  # 13 and 17 of the 20 test items
    # sft-full s0's failed later run is not picked; the val tie at 55 keeps the earliest step as best.
    assert [(s.gain, s.best_gain, s.best_step) for s in sft.seeds] == [(10.0, 15.0, 4)]


def test_render_shows_seeds_spread_and_difference(tables):
    text = render(compare(tables, "toy", ["grpo-p2", "sft-full"]), "best-val")
    grpo_line = next(line for line in text.splitlines() if line.startswith("| grpo-p2 "))
    assert "+25.00 ± 7.07 (+20.00, +30.00)" in grpo_line and "| 0 1 |" in grpo_line
    assert "sft-full - grpo-p2: -15.00 points of mean validation gain" in text
    assert "standard error" not in text  # one sft-full seed: no spread, so no error is claimed


def test_missing_experiment_and_untrained_runs_are_named(tables, fx, capsys):
    with pytest.raises(MissingRunsError, match="grpo-p2-nokl"):
        compare(tables, "toy", ["grpo-p2", "grpo-p2-nokl"])
    with pytest.raises(NoValidationError, match="trains nothing"):
        compare(tables, "toy", ["direct"])
    assert main(["grpo-p2", "grpo-p2-nokl", "--wandb-dir", str(fx.wandb_dir)]) == 2
    assert "python -m experiments run grpo-p2-nokl --profile toy" in capsys.readouterr().err
    assert main(["grpo-p2", "sft-full", "--wandb-dir", str(fx.wandb_dir)]) == 0
    assert "| sft-full | 0 |" in capsys.readouterr().out
