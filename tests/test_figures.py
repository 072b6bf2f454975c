"""Tests for analysis/figures.py on the fixture's real offline W&B runs: files written, reruns identical, exit 2.

Run: ``.venv/bin/python -m pytest -q tests/test_figures.py`` (a few seconds: each figure renders in about 1 s).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from analysis.figures import FIGURES, ema, ema_time_constant, main, write_figure
from analysis.runs import RunTables
from analysis.select import MissingRunsError
from tests.analysis_fixtures import AnalysisFixture


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_written_and_rerun_identical(fx: AnalysisFixture, tmp_path: Path, name: str) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    argv = [name, "--wandb-dir", str(fx.wandb_dir), "--profile", "toy"]
    assert main([*argv, "--out", str(first)]) == 0
    assert main([*argv, "--out", str(second)]) == 0
    png, pdf = (first / f"{name}.png").read_bytes(), (first / f"{name}.pdf").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 30_000  # a 200-dpi figure with several panels
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    assert b"CreationDate" not in pdf  # no timestamp: reruns are byte-identical
    assert pdf == (second / f"{name}.pdf").read_bytes()
    assert png == (second / f"{name}.png").read_bytes()
    assert sorted(p.name for p in first.iterdir()) == [f"{name}.pdf", f"{name}.png"]  # no temporary files left


def test_figure_uses_the_table2_runs(tables: RunTables, tmp_path: Path) -> None:
    """The ad hoc grpo-p2 run (accuracy reward near 1, test 100%) must not enter the figure: drop it and compare."""
    with_adhoc = write_figure(tables, "fig3", "toy", tmp_path / "all")
    runs = tables.runs[tables.runs["run_id"] != "grpo2s0adhoc"].reset_index(drop=True)
    history = tables.history[tables.history["run_id"] != "grpo2s0adhoc"]
    without = write_figure(RunTables(runs, history, []), "fig3", "toy", tmp_path / "clean")
    assert with_adhoc["pdf"].read_bytes() == without["pdf"].read_bytes()


def test_missing_runs_exit_2(fx: AnalysisFixture, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["fig3", "--wandb-dir", str(fx.wandb_dir), "--profile", "paper", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "grpo-p2, grpo-p3" in err and "make paper PROFILE=paper" in err
    assert "python -m experiments run grpo-p3 --profile paper --seed 0" in err
    assert not list(tmp_path.iterdir())
    assert main(["fig4", "--wandb-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert "sft-full, sft-lora" in capsys.readouterr().err


def test_missing_runs_error_names_experiments(tables: RunTables, tmp_path: Path) -> None:
    runs = tables.runs[tables.runs["group"] != "sft-lora"].reset_index(drop=True)
    with pytest.raises(MissingRunsError) as info:
        write_figure(RunTables(runs, tables.history, []), "fig4", "toy", tmp_path)
    assert info.value.missing == ["sft-lora"] and "python -m experiments run sft-lora" in str(info.value)


def test_ema() -> None:
    assert ema([1.0, 1.0, 1.0], 2.0) == [1.0, 1.0, 1.0]  # debiased: a constant stays constant from the start
    assert ema([0.0, 1.0], 2.0) == pytest.approx([0.0, 0.5 / 0.75])  # weight 0.5: (0.5*0 + 0.5*1) / 0.75
    out = ema([math.nan, 2.0, math.nan, 4.0], 2.0)
    assert math.isnan(out[0]) and out[1:3] == [2.0, 2.0] and out[3] == pytest.approx((0.25 * 2 + 0.5 * 4) / 0.75)
    assert ema_time_constant(10) == 2.0 and ema_time_constant(500) == 10.0
