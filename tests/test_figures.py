"""Tests for analysis/figures.py on the fixture's real offline W&B runs: files written, reruns identical, exit 2.

Run: ``.venv/bin/python -m pytest -q tests/test_figures.py`` (a few seconds: each figure renders in about 1 s).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from analysis.figures import FIGURES, STYLES, draw, ema, ema_time_constant, figure_runs, main, write_figure
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


def _levels(fig: Any, panel: int) -> dict[str, float]:
    """The horizontal reference lines of one panel: gid -> y (chance, silent:<experiment>)."""
    return {line.get_gid(): float(line.get_ydata()[0]) for line in fig.axes[panel].get_lines() if line.get_gid()}


def _legend_texts(fig: Any) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_accuracy_panels_draw_chance_and_silent_levels(tables: RunTables) -> None:
    """Fig. 3(d) and 4(b): chance (30%: the fixture mixes 2- and 4-choice items) and the silent-audio accuracy of the
    selected checkpoints (mean over seeds); grpo-p3 has no silent evaluation: no line, a note naming the command."""
    fig3 = draw(tables, FIGURES["fig3"], "toy")
    assert _levels(fig3, 3) == {"chance": pytest.approx(30.0), "silent:grpo-p2": pytest.approx((45.0 + 60.0) / 2)}
    assert all(not _levels(fig3, panel) for panel in (0, 1, 2))  # the training panels have no levels
    lines = {line.get_gid(): line for line in fig3.axes[3].get_lines() if line.get_gid()}
    assert lines["chance"].get_linestyle() == lines["silent:grpo-p2"].get_linestyle() == "--"  # both dashed
    assert lines["silent:grpo-p2"].get_color() == STYLES["grpo-p2"]["color"]
    texts = [t.get_text() for t in fig3.axes[3].texts]
    assert "chance 30.0" in texts and "silent 52.5" in texts
    legend = _legend_texts(fig3)
    assert "chance level (mean 1/choices): 30.0%" in legend
    assert "silent audio at the selected checkpoint" in legend
    assert "silent audio, GRPO + Prompt <3>: not measured" in legend
    assert "(measure it: python -m controls.silent --profile toy)" in legend

    fig4 = draw(tables, FIGURES["fig4"], "toy")
    assert _levels(fig4, 1) == {"chance": 30.0, "silent:sft-full": 30.0, "silent:sft-lora": 45.0}
    assert not any("not measured" in t for t in _legend_texts(fig4))
    # The levels follow the selection rule: best-test picks step 8 of both SFT runs (7 and 8 of 20 with silence).
    assert _levels(draw(tables, FIGURES["fig4"], "toy", rule="best-test"), 1) == {
        "chance": 30.0, "silent:sft-full": 35.0, "silent:sft-lora": 40.0,
    }  # fmt: skip


def test_levels_omitted_when_not_readable(tables: RunTables, tmp_path: Path) -> None:
    """Run directories elsewhere: no prediction or silent file to read, so no line, and the legend says so."""
    from tests.analysis_fixtures import moved

    elsewhere = tables
    for run_id in tables.runs["run_id"]:
        elsewhere = moved(elsewhere, run_id, tmp_path / "elsewhere" / run_id)
    fig = draw(elsewhere, FIGURES["fig4"], "toy")
    assert _levels(fig, 1) == {}
    legend = _legend_texts(fig)
    assert "chance level: n/a (no saved predictions here)" in legend
    assert "silent audio, Full SFT + Prompt <1>: not measured" in legend


def test_a_figure_of_another_model_names_it_in_the_title(tables: RunTables) -> None:
    """The figures of ``--model M`` draw M's runs only and say so; the profile's own model's figure does not."""
    import copy

    assert "model" not in draw(tables, FIGURES["fig3"], "toy")._suptitle.get_text()
    runs = tables.runs.copy()
    runs["config"] = [dict(copy.deepcopy(c), profile_model="toy-qwen2.5-omni") for c in runs["config"]]
    other = RunTables(runs, tables.history, list(tables.problems))
    picked = figure_runs(other, FIGURES["fig3"], "toy", model="toy-qwen2.5-omni")
    title = draw(other, FIGURES["fig3"], "toy", runs=picked)._suptitle.get_text()
    assert "profile toy; model toy-qwen2.5-omni;" in title
    with pytest.raises(MissingRunsError, match="MODEL=toy-qwen2.5-omni"):
        figure_runs(tables, FIGURES["fig3"], "toy", model="toy-qwen2.5-omni")
