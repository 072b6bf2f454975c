"""Tests for analysis/table2.py, analysis/select.py and analysis/stats.py on real offline W&B runs (the fixture).

Run: ``.venv/bin/python -m pytest -q tests/test_table2.py`` (a few seconds; the fixture runs are written once).

The golden files ``tests/golden/table2_fixture.{md,csv,tex}`` are the reports of the fixture. After a deliberate
change of the report, regenerate them with ``UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_table2.py``
and read the diff (and the Markdown) before committing.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analysis.paper_numbers import PAPER_ROWS, QUOTED_BASELINES, TABLE2_EXPERIMENTS
from analysis.runs import RunTables, read_offline_runs
from analysis.select import MissingRunsError, eval_rows, select_checkpoints, select_step
from analysis.stats import mcnemar_exact, mean_std, paired_counts, t_interval, t_quantile, wilson_interval
from analysis.table2 import (
    MixedDecodingError,
    MixedVersionsError,
    build_table2,
    main,
    render_csv,
    render_latex,
    render_markdown,
)
from data.scoring import mmau_correct
from tests.analysis_fixtures import EXPECTED_STEPS, IGNORED_RUNS, AnalysisFixture, copy_run_dir, moved

GOLDEN = Path(__file__).resolve().parent / "golden"


def _cli(fx: AnalysisFixture, out: Path, *extra: str) -> int:
    return main(["--wandb-dir", str(fx.wandb_dir), "--profile", "toy", "--out", str(out), *extra])


# --------------------------------------------------------------------------------------------------------------
# The report


def test_report_matches_golden_files(fx: AnalysisFixture, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert _cli(fx, tmp_path) == 0
    printed = capsys.readouterr().out
    for ext in ("md", "csv", "tex"):
        text = (tmp_path / "table2" / f"table2.{ext}").read_text(encoding="utf-8")
        golden = GOLDEN / f"table2_fixture.{ext}"
        if os.environ.get("UPDATE_GOLDEN"):
            golden.parent.mkdir(exist_ok=True)
            golden.write_text(text, encoding="utf-8")
        assert text == golden.read_text(encoding="utf-8"), f"{ext} differs from {golden} (UPDATE_GOLDEN=1 to renew)"
    assert printed == (tmp_path / "table2" / "table2.md").read_text(encoding="utf-8")


def test_rerun_gives_byte_identical_files(fx: AnalysisFixture, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert _cli(fx, first) == 0 and _cli(fx, second) == 0 and _cli(fx, second) == 0
    for ext in ("md", "csv", "tex"):
        assert (first / "table2" / f"table2.{ext}").read_bytes() == (second / "table2" / f"table2.{ext}").read_bytes()
    assert not [p for p in second.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_report_content(tables: RunTables) -> None:
    table = build_table2(tables, "toy")
    from analysis.table2 import render_markdown

    md = render_markdown(table)
    for base in QUOTED_BASELINES:
        assert f"| {base.label}" in md
    assert md.count("quoted from the paper, a5cd89a") == len(QUOTED_BASELINES)
    assert "Not comparable with the paper" in md  # toy benchmark vs the paper's a5cd89a
    for run_id in IGNORED_RUNS:  # every run left out is named, none is used
        assert f"ignored run {run_id} " in md
        assert all(c.run_id != run_id for row in table.rows for c in row.checkpoints)
    grpo = {row.experiment: row for row in table.rows}["grpo-p2"]
    assert [c.seed for c in grpo.checkpoints] == [0, 1]
    assert "75.00 ± 14.14 (64.50, +10.50)" in md  # mean ± std over seeds (65, 85), the paper's value, the difference
    assert "66.67 ± 47.14 (57.36, +9.31)" in md  # speech (33.33, 100.00): 66.665 rounds half up, Δ from 66.67


def test_csv_traces_every_number_to_runs(fx: AnalysisFixture, tables: RunTables, tmp_path: Path) -> None:
    assert _cli(fx, tmp_path, "--select", "best-test") == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "table2" / "table2.csv").read_text(encoding="utf-8"))))
    assert [r["experiment"] for r in rows] == list(TABLE2_EXPERIMENTS)
    known = set(tables.runs["run_id"])
    for row in rows:
        run_ids, steps, seeds = row["run_ids"].split(";"), row["steps"].split(";"), row["seeds"].split(";")
        assert set(run_ids) <= known and len(run_ids) == len(steps) == len(seeds) == int(row["n_seeds"])
        logged = []
        for run_id, step in zip(run_ids, steps, strict=True):
            evals = eval_rows(tables, run_id)
            logged.append(float(evals[evals["step"] == int(step)]["eval/test/avg"].iloc[0]))
            expected = EXPECTED_STEPS["best-test"][(row["experiment"], int(seeds[run_ids.index(run_id)]))]
            assert int(step) == expected
        assert float(row["avg"]) == pytest.approx(sum(logged) / len(logged), abs=0.005)
        assert float(row["paper_avg"]) == PAPER_ROWS[row["experiment"]].avg
        assert float(row["diff_avg"]) == pytest.approx(float(row["avg"]) - float(row["paper_avg"]), abs=0.011)


# --------------------------------------------------------------------------------------------------------------
# Selection


@pytest.mark.parametrize("rule", ["best-val", "final", "best-test"])
def test_selection_rules_pick_the_expected_steps(tables: RunTables, rule: str) -> None:
    selection = select_checkpoints(tables, "toy", rule)
    got = {(e, c.seed): c.step for e, runs in selection.chosen.items() for c in runs}
    assert got == EXPECTED_STEPS[rule]
    assert selection.missing == []
    assert sorted(c.run_id for runs in selection.chosen.values() for c in runs) == sorted(
        ["dir0", "sftf0", "sftl0", "grpo2s0", "grpo2s1", "grpo3s0"]
    )
    notes = "\n".join(selection.notes)
    assert "dir0old" in notes and "superseded" in notes
    assert "sftf0x" in notes and "failed" in notes
    assert "grpo2s0adhoc" in notes and "ad hoc" in notes


def test_selected_prediction_paths(tables: RunTables, fx: AnalysisFixture) -> None:
    chosen = select_checkpoints(tables, "toy", "best-val").chosen
    by_key = {(e, c.seed): c for e, runs in chosen.items() for c in runs}
    assert by_key["direct", 0].predictions == fx.run_dirs["dir0"] / "predictions.json"
    assert by_key["grpo-p2", 0].predictions == fx.run_dirs["grpo2s0"] / "checkpoint-4/eval/test/predictions.json"
    # sft-lora's last checkpoint was not saved: its final model's predictions are the run's predictions.json.
    assert by_key["sft-lora", 0].predictions == fx.run_dirs["sftl0"] / "predictions.json"
    assert all(c.predictions is not None and c.predictions.is_file() for c in by_key.values())
    assert {c.benchmark_version for c in by_key.values()} == {"toy-1a2b3c4d"}
    assert by_key["direct", 0].rule == "only evaluation" and by_key["grpo-p2", 1].rule == "best-val"


def test_select_step_ties_and_fallback() -> None:
    rows = pd.DataFrame({
        "step": [0, 4, 8, 10, 10], "eval/test/avg": [40.0, 60.0, 60.0, 55.0, 55.0],
        "eval/val/avg": [30.0, 50.0, 50.0, 50.0, 50.0],
    })  # fmt: skip
    for key in ("sound", "music", "speech"):
        rows[f"eval/test/{key}"] = math.nan
    assert select_step(rows, "best-val")[:2] == (1, "best-val")  # three-way tie at 50 -> earliest step
    assert select_step(rows, "best-test")[:2] == (1, "best-test")  # tie 4 / 8 -> 4
    assert select_step(rows, "final")[:2] == (4, "final")  # the last row: the final model
    no_val = rows.assign(**{"eval/val/avg": math.nan})
    pos, rule, note = select_step(no_val, "best-val")
    assert (pos, rule) == (4, "final") and "fell back" in note
    with pytest.raises(ValueError, match="valid: best-val"):
        select_step(rows, "best")


# --------------------------------------------------------------------------------------------------------------
# Statistics


def test_mcnemar_exact_hand_cases() -> None:
    assert mcnemar_exact(8, 2) == 0.109375  # 2 * (1 + 10 + 45) / 1024
    assert mcnemar_exact(2, 8) == 0.109375
    assert mcnemar_exact(10, 0) == 2 / 1024
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(3, 3) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_mcnemar_exact_with_thousands_of_discordant_pairs() -> None:
    """Three seeds of a 1,980-item test pool thousands of pairs: 2**n no longer fits a float (it once overflowed)."""
    assert mcnemar_exact(1500, 1500) == 1.0
    z = (1500 - 1300 - 1) / math.sqrt(2800)  # normal approximation with continuity correction: p about 1.7e-4
    assert mcnemar_exact(1300, 1500) == pytest.approx(math.erfc(z / math.sqrt(2)), rel=0.05)
    assert mcnemar_exact(0, 2000) == 0.0  # 2 / 2**2000 is below the smallest float


def test_paired_counts() -> None:
    a = {"1": True, "2": True, "3": False, "4": False, "5": True, "x": True}
    b = {"1": True, "2": False, "3": True, "4": False, "5": False, "y": False}
    k = paired_counts(a, b)
    assert (k.n_paired, k.both_right, k.b, k.c, k.both_wrong, k.only_a, k.only_b) == (5, 1, 2, 1, 1, 1, 1)
    assert (k + k).b == 4 and k.p_value == 1.0


def test_intervals_hand_cases() -> None:
    # Wilson, 8 of 20 at z=1.96: centre (0.4 + 0.09604) / 1.19208, half-width 1.96 * 0.120004 / 1.19208.
    lo, hi = wilson_interval(8, 20)
    assert (round(lo, 2), round(hi, 2)) == (21.88, 61.34)
    for df, t in {1: 12.706, 2: 4.303, 3: 3.182, 10: 2.228, 29: 2.045, 30: 2.042, 120: 1.980}.items():
        assert t_quantile(df) == pytest.approx(t, abs=6e-4)
    assert t_quantile(10_000) == pytest.approx(1.960, abs=1e-3)
    assert t_quantile(4, 0.99) == pytest.approx(4.604, abs=1e-3)
    # Two seeds at 65 and 80: mean 72.5, s = 10.6066, half-width 12.7062 * 10.6066 / sqrt(2) = 95.30.
    assert mean_std([65.0, 80.0]) == pytest.approx((72.5, 10.6066), abs=1e-4)
    lo, hi = t_interval([65.0, 80.0])
    assert (lo, hi) == pytest.approx((72.5 - 95.297, 72.5 + 95.297), abs=1e-2)
    assert mean_std([61.0]) == (61.0, None)


def test_mcnemar_section_matches_the_prediction_files(tables: RunTables) -> None:
    """b and c recounted straight from the selected prediction files, with the MMAU rule."""
    table = build_table2(tables, "toy")
    chosen = select_checkpoints(tables, "toy").chosen

    def correct(path: Path) -> dict[str, bool]:
        return {
            r["id"]: mmau_correct(r["model_output"], r["answer"], r["choices"]) for r in json.loads(path.read_text())
        }

    for test in table.mcnemar:
        assert test.seeds == [0]  # the SFT rows have seed 0 only: grpo-p2's seed 1 has nothing to pair with
        grpo = correct(next(c for c in chosen[test.a] if c.seed == 0).predictions)
        sft = correct(next(c for c in chosen[test.b] if c.seed == 0).predictions)
        b = sum(grpo[i] and not sft[i] for i in grpo)
        c = sum(sft[i] and not grpo[i] for i in grpo)
        assert test.counts is not None and (test.counts.b, test.counts.c, test.counts.n_paired) == (b, c, 20)
        assert test.counts.p_value == mcnemar_exact(b, c)


# --------------------------------------------------------------------------------------------------------------
# Failures


def _with_version(tables: RunTables, run_id: str, version: str) -> RunTables:
    runs = tables.runs.copy()
    runs["summary"] = [
        {**copy.deepcopy(s), "benchmark_version": version} if rid == run_id else s
        for rid, s in zip(runs["run_id"], runs["summary"], strict=True)
    ]
    return RunTables(runs, tables.history, list(tables.problems))


def test_mixed_versions_fail_unless_allowed(
    tables: RunTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    mixed = _with_version(tables, "grpo3s0", "f0a4a97")
    with pytest.raises(MixedVersionsError, match="f0a4a97.*grpo-p3 s0.*toy-1a2b3c4d"):
        build_table2(mixed, "toy")
    table = build_table2(mixed, "toy", allow_mixed_versions=True)
    from analysis.table2 import render_csv, render_markdown

    md = render_markdown(table)
    assert "| GRPO + Prompt <3> | measured, f0a4a97 |" in md and "measured, toy-1a2b3c4d" in md
    assert "Mixed benchmark versions" in md
    assert ",grpo-p3,f0a4a97," in render_csv(table)

    monkeypatch.setattr("analysis.sources.read_runs", lambda args, experiments: (mixed, "offline W&B runs"))
    assert main(["--profile", "toy", "--out", str(tmp_path / "refused")]) == 1
    assert "--allow-mixed-versions" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
    assert main(["--profile", "toy", "--out", str(tmp_path / "ok"), "--allow-mixed-versions"]) == 0


def test_missing_experiments_exit_2_naming_them(
    fx: AnalysisFixture, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    assert main(["--wandb-dir", str(fx.wandb_dir), "--profile", "paper", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "direct, sft-full, sft-lora, grpo-p2, grpo-p3" in err
    assert "make paper PROFILE=paper" in err and "python -m experiments run grpo-p3 --profile paper --seed 0" in err
    assert not list(tmp_path.iterdir())

    # Only the direct runs' folders: the four trained experiments are missing.
    direct_only = tmp_path / "direct_only"
    for folder in fx.wandb_dir.glob("offline-run-*-dir0*"):
        (direct_only / folder.name).mkdir(parents=True)
        for f in folder.glob("*.wandb"):
            (direct_only / folder.name / f.name).write_bytes(f.read_bytes())
    assert main(["--wandb-dir", str(direct_only), "--profile", "toy", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "experiment(s): sft-full, sft-lora, grpo-p2, grpo-p3." in err
    assert "python -m experiments run sft-lora --profile toy --seed 0" in err
    assert "run direct " not in err

    with pytest.raises(MissingRunsError) as info:
        build_table2(read_offline_runs(direct_only), "toy")
    assert info.value.missing == ["sft-full", "sft-lora", "grpo-p2", "grpo-p3"]

    assert main(["--wandb-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "make paper PROFILE=toy" in capsys.readouterr().err


def test_registry_rows_match_the_paper_rows() -> None:
    from experiments.registry import REGISTRY

    rows = {name: exp.table2_row for name, exp in REGISTRY.items() if exp.table2_row}
    assert list(rows) == list(TABLE2_EXPERIMENTS)
    assert rows == {name: PAPER_ROWS[name].label for name in TABLE2_EXPERIMENTS}


def test_logged_value_that_disagrees_with_the_predictions_is_flagged(tables: RunTables) -> None:
    history = tables.history.copy()
    at = (history["run_id"] == "sftf0") & (history["train/global_step"] == 4) & history["eval/test/avg"].notna()
    history.loc[at, "eval/test/avg"] = 55.0  # the predictions at step 4 say 50.00
    # The run directory's checkpoint_evals.jsonl says 50.00 too: the run dir check refuses, unless allowed.
    table = build_table2(RunTables(tables.runs, history, []), "toy", allow_gaps=True)
    assert any("logged average 55.00 at step 4 differs from its saved predictions (50.00)" in n for n in table.notes)
    assert any("step 4 eval/test/avg: W&B 55.00, disk 50.00" in n for n in table.notes)


# --------------------------------------------------------------------------------------------------------------
# Decoding: one compute dtype and one decoding source per table; truncation and missing answers in the provenance


def _provenance(md: str, label: str) -> str:
    (row,) = [
        line for line in md.split("## Measured rows: provenance")[1].splitlines() if line.startswith(f"| {label} |")
    ]
    return row


def _with_metrics(
    fx: AnalysisFixture, tables: RunTables, tmp_path: Path, run_id: str, metrics_file: str,
    change: Callable[[dict[str, Any]], None],
) -> RunTables:  # fmt: skip
    """``tables`` with run ``run_id`` pointing at a copy of its run directory whose ``metrics_file`` (relative to
    it) is changed by ``change``, as another version or setting of the evaluator would have written it."""
    run_dir = copy_run_dir(fx, run_id, tmp_path)
    path = run_dir / metrics_file
    metrics = json.loads(path.read_text(encoding="utf-8"))
    change(metrics)
    path.write_text(json.dumps(metrics), encoding="utf-8")
    return moved(tables, run_id, run_dir)


def test_provenance_shows_truncation_and_missing_answer_rates(tables: RunTables) -> None:
    """Each row's rates are those of its selected evaluation, recounted here from the saved prediction records."""
    table = build_table2(tables, "toy")
    md, rows = render_markdown(table), {r["experiment"]: r for r in csv.DictReader(io.StringIO(render_csv(table)))}
    seen = set()
    for row in table.rows:
        truncated, missing = [], []
        for c in row.checkpoints:
            records = json.loads(c.predictions.read_text(encoding="utf-8"))
            truncated.append(100 * sum(r["hit_limit"] for r in records) / len(records))
            missing.append(
                100
                * sum(re.search(r"<answer>.*?</answer>", r["raw_output"], re.S) is None for r in records)
                / len(records)
            )
        assert rows[row.experiment]["truncation_rate_per_seed"] == ";".join(f"{v:.2f}" for v in truncated)
        assert rows[row.experiment]["missing_answer_rate_per_seed"] == ";".join(f"{v:.2f}" for v in missing)
        assert float(rows[row.experiment]["truncation_rate"]) == pytest.approx(sum(truncated) / len(truncated))
        assert float(rows[row.experiment]["missing_answer_rate"]) == pytest.approx(sum(missing) / len(missing))
        assert rows[row.experiment]["compute_dtype"] == ";".join(["float32"] * len(row.checkpoints))
        assert rows[row.experiment]["decoding_source"] == ";".join(["neutral"] * len(row.checkpoints))
        seen.add((tuple(truncated), tuple(missing)))
    assert len(seen) > 2 and any(t != m for t, m in seen)  # the fixture's rates differ by row and from each other
    # Markdown: one seed, the value; several, the mean and each seed's value.
    assert _provenance(md, "GRPO + Prompt <3>").endswith(
        "| 20 | float32 | neutral | 10.00 | 15.00 | yes (4 evaluations) |"
    )
    assert "| float32 | neutral | 2.50 (s0: 5.00, s1: 0.00) | 2.50 (s0: 5.00, s1: 0.00) |" in _provenance(
        md, "GRPO + Prompt <2>"
    )
    assert "every measured row decoded in compute dtype float32, decoding neutral" in md.split("| Method |")[0]


def test_mixed_compute_dtypes_refused_unless_allowed(
    fx: AnalysisFixture, tables: RunTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:  # fmt: skip
    """Full SFT's selected evaluation (step 4) decoded in bfloat16, every other row in float32."""
    mixed = _with_metrics(fx, tables, tmp_path, "sftf0", "checkpoint-4/eval/test/metrics.json",
                          lambda m: m.update(dtype={"compute": "bfloat16", "weights": "float32"}))  # fmt: skip
    with pytest.raises(MixedDecodingError) as info:
        build_table2(mixed, "toy")
    message = str(info.value)
    assert message.startswith(
        "the measured rows were not all decoded the same way (compute dtypes bfloat16, float32):"
    )
    assert (
        "  - Full SFT + Prompt <1>, seed 0 (run sftf0, step 4): compute dtype bfloat16, decoding neutral\n" in message
    )
    assert "  - GRPO + Prompt <2>, seed 1 (run grpo2s1, step 8): compute dtype float32, decoding neutral\n" in message
    assert "most share compute dtype float32, decoding neutral" in message
    assert "      python -m experiments run sft-full --profile toy --seed 0 --output-dir <new run dir>\n" in message
    assert message.count("python -m experiments run") == 1  # only the odd run
    assert "--allow-mixed-decoding" in message

    monkeypatch.setattr("analysis.sources.read_runs", lambda args, experiments: (mixed, "offline W&B runs"))
    assert main(["--profile", "toy", "--out", str(tmp_path / "refused")]) == 1
    assert "compute dtype bfloat16" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()

    assert main(["--profile", "toy", "--out", str(tmp_path / "ok"), "--allow-mixed-decoding"]) == 0
    md = (tmp_path / "ok" / "table2" / "table2.md").read_text(encoding="utf-8")
    head = md.split("| Method |")[0]
    assert "- **Mixed decoding** (allowed with `--allow-mixed-decoding`): rows decoded in different" in head
    assert ("- Decoding (each selected evaluation's metrics.json): measured rows decoded differently: compute dtypes "
            "bfloat16, float32; decoding sources neutral;") in head  # fmt: skip
    assert "| 20 | bfloat16 | neutral | 5.00 | 5.00 |" in _provenance(md, "Full SFT + Prompt <1>")
    assert "| 20 | float32 | neutral |" in _provenance(md, "LoRA SFT + Prompt <1>")
    csv_rows = list(
        csv.DictReader(io.StringIO((tmp_path / "ok" / "table2" / "table2.csv").read_text(encoding="utf-8")))
    )
    assert [r["compute_dtype"] for r in csv_rows] == ["float32", "bfloat16", "float32", "float32;float32", "float32"]
    assert "allow-mixed-decoding" in (tmp_path / "ok" / "table2" / "table2.tex").read_text(encoding="utf-8")


def test_mixed_decoding_sources_refused(fx: AnalysisFixture, tables: RunTables, tmp_path: Path) -> None:
    """direct decoded with the checkpoint's own (sampling) generation config, the trained rows neutral."""
    mixed = _with_metrics(fx, tables, tmp_path, "dir0", "metrics.json",
                          lambda m: m["decoding"].update(source="checkpoint", greedy=False))  # fmt: skip
    with pytest.raises(MixedDecodingError, match=r"same way \(decoding sources checkpoint, neutral\):") as info:
        build_table2(mixed, "toy")
    assert "(run dir0, step 0): compute dtype float32, decoding checkpoint, sampled\n" in str(info.value)
    md = render_markdown(build_table2(mixed, "toy", allow_mixed_decoding=True))
    assert "| 20 | float32 | checkpoint (sampled) | 0.00 | 0.00 |" in _provenance(
        md, "Qwen2-Audio-7B-Instruct, direct inference"
    )


def test_older_evaluation_counts_as_unknown(fx: AnalysisFixture, tables: RunTables, tmp_path: Path) -> None:
    """A metrics.json written before dtype, decoding source and the rates were recorded: unknown, refused in a mix."""

    def older(metrics: dict[str, Any]) -> None:
        for key in ("dtype", "truncation_rate", "missing_answer_rate"):
            del metrics[key]
        metrics["decoding"] = {"greedy": True, "max_new_tokens": 32, "batch_size": 64}

    mixed = _with_metrics(fx, tables, tmp_path, "grpo3s0", "checkpoint-8/eval/test/metrics.json", older)
    with pytest.raises(
        MixedDecodingError, match="compute dtypes float32, unknown; decoding sources neutral, unknown"
    ) as info:
        build_table2(mixed, "toy")
    assert ("GRPO + Prompt <3>, seed 0 (run grpo3s0, step 8): compute dtype unknown, decoding unknown "
            "(checkpoint-8/eval/test/metrics.json has no dtype.compute or decoding.source (written by an older "
            "version))") in str(info.value)  # fmt: skip
    assert "python -m experiments run grpo-p3 --profile toy --seed 0" in str(info.value)
    assert "machine that holds it" not in str(info.value)  # the file is here: only a rerun helps
    md = render_markdown(build_table2(mixed, "toy", allow_mixed_decoding=True))
    assert _provenance(md, "GRPO + Prompt <3>").endswith(
        "| unknown (checkpoint-8/eval/test/metrics.json has no dtype.compute or decoding.source (written by an older "
        "version)) | unknown | n/a | n/a | yes (4 evaluations) |"
    )


def test_every_row_unknown_is_written_and_says_so(tables: RunTables, tmp_path: Path) -> None:
    """Runs whose directories are all elsewhere (read from the W&B service): no mix, but no dtype to confirm."""
    elsewhere = tables
    for run_id in tables.runs["run_id"]:
        elsewhere = moved(elsewhere, run_id, tmp_path / "elsewhere" / run_id)
    table = build_table2(elsewhere, "toy")
    assert table.compute_dtypes == ["unknown"] and not table.mixed_decoding
    md = render_markdown(table)
    assert "decoding of the measured rows unknown" in md.split("| Method |")[0]
    assert "one compute dtype across the rows cannot be confirmed" in md
    assert "| unknown (run dir not on this machine) | unknown | n/a (s0: n/a, s1: n/a) | n/a (s0: n/a, s1: n/a) |" in (
        _provenance(md, "GRPO + Prompt <2>")
    )


# --------------------------------------------------------------------------------------------------------------
# Listening: the silent-audio control of each selected checkpoint, the listening gain and the chance level


def _silent_avg(fx: AnalysisFixture, run_id: str, where: str) -> float:
    path = fx.run_dirs[run_id] / where / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8"))["accuracy"]["avg"]


def _main_row(md: str, label: str) -> str:
    (row,) = [line for line in md.split("## Measured rows")[0].splitlines() if line.startswith(f"| {label} |")]
    return row


def test_silent_columns_and_listening_gain(fx: AnalysisFixture, tables: RunTables) -> None:
    """Silent accuracy and gain (with audio minus silent, per seed) recomputed from the metrics files on disk."""
    table = build_table2(tables, "toy")
    md, rows = render_markdown(table), {r["experiment"]: r for r in csv.DictReader(io.StringIO(render_csv(table)))}
    assert "| Average, 95% CI | Silent audio | Listening gain |" in md
    # The selected (best-val) evaluations and their silent controls, beside them in each run directory.
    expected = {
        "direct": [("dir0", "metrics.json", "silent/test")],
        "sft-full": [("sftf0", "checkpoint-4/eval/test/metrics.json", "checkpoint-4/eval/test-silent")],
        "sft-lora": [("sftl0", "metrics.json", "final/test-silent")],  # the final model, evaluated in final/
        "grpo-p2": [("grpo2s0", "checkpoint-4/eval/test/metrics.json", "checkpoint-4/eval/test-silent"),
                    ("grpo2s1", "checkpoint-8/eval/test/metrics.json", "checkpoint-8/eval/test-silent")],
    }  # fmt: skip
    for experiment, runs in expected.items():
        real = [json.loads((fx.run_dirs[r] / m).read_text(encoding="utf-8"))["accuracy"]["avg"] for r, m, _ in runs]
        silent = [_silent_avg(fx, r, where) for r, _, where in runs]
        gains = [a - b for a, b in zip(real, silent, strict=True)]
        row = rows[experiment]
        assert row["silent_avg_per_seed"] == ";".join(f"{v:.2f}" for v in silent)
        assert float(row["silent_avg"]) == pytest.approx(mean_std(silent)[0], abs=0.005)
        assert float(row["listening_gain"]) == pytest.approx(mean_std(gains)[0], abs=0.005)
        assert row["listening_gain"].startswith("+") and row["silent_status"] == ";".join(["ok"] * len(runs))
        if len(runs) > 1:
            assert float(row["listening_gain_std"]) == pytest.approx(mean_std(gains)[1], abs=0.005)
    # The fixture's numbers, by hand: grpo-p2 65 - 45 and 85 - 60; sft-lora 60 - 45; direct 40 - 35.
    assert _main_row(md, "GRPO + Prompt <2>").endswith("| 52.50 ± 10.61 | +22.50 ± 3.54 |")
    assert _main_row(md, "LoRA SFT + Prompt <1>").endswith("| 45.00 | +15.00 |")
    assert _main_row(md, "Qwen2-Audio-7B-Instruct, direct inference").endswith("| 35.00 | +5.00 |")
    assert _main_row(md, "Human").endswith("| 82.23 | | | |")  # quoted rows: nothing measured
    tex = render_latex(table)
    assert "& Silent & Gain \\\\" in tex and "& 52.50 $\\pm$ 10.61 & +22.50 $\\pm$ 3.54 \\\\" in tex


def test_missing_silent_evaluation_is_na_with_the_command(
    fx: AnalysisFixture, tables: RunTables, tmp_path: Path
) -> None:
    """grpo-p3 has no silent evaluation; then one seed of grpo-p2 loses its own: n/a, never a 0 or a partial mean."""
    table = build_table2(tables, "toy")
    md = render_markdown(table)
    assert _main_row(md, "GRPO + Prompt <3>").endswith("| n/a | n/a |")
    assert ("- GRPO + Prompt <3>, seed 0 (run grpo3s0, step 8): no silent-audio evaluation (checkpoint-8/eval/"
            "test-silent/metrics.json not found); the silent audio and listening gain cells say n/a. Run "
            "`python -m controls.silent --profile toy`.") in md  # fmt: skip
    row = {r["experiment"]: r for r in csv.DictReader(io.StringIO(render_csv(table)))}["grpo-p3"]
    assert (row["silent_avg"], row["listening_gain"], row["silent_status"]) == ("", "", "missing")
    assert "& n/a & n/a \\\\" in render_latex(table)
    # The command names a rule other than the default.
    assert "`python -m controls.silent --profile toy --select best-test`" in render_markdown(
        build_table2(tables, "toy", "best-test")
    )
    run_dir = copy_run_dir(fx, "grpo2s1", tmp_path)
    shutil.rmtree(run_dir / "checkpoint-8" / "eval" / "test-silent")
    md = render_markdown(build_table2(moved(tables, "grpo2s1", run_dir), "toy"))
    assert _main_row(md, "GRPO + Prompt <2>").endswith("| n/a | n/a |")
    assert "GRPO + Prompt <2>, seed 1 (run grpo2s1, step 8): no silent-audio evaluation" in md


def test_chance_level_of_the_test_set(fx: AnalysisFixture, tables: RunTables) -> None:
    """Mean over the items of 1 / number of choices (the fixture mixes 2- and 4-choice items), in every format."""
    records = json.loads((fx.run_dirs["dir0"] / "predictions.json").read_text(encoding="utf-8"))
    chance = 100 * sum(1 / len(r["choices"]) for r in records) / len(records)
    assert {len(r["choices"]) for r in records} == {2, 4} and chance == pytest.approx(30.0)
    table = build_table2(tables, "toy")
    assert table.chance == {"toy-1a2b3c4d": pytest.approx(chance)}
    assert "- Chance level of the test set (the mean over its items of 1 / the number of choices): 30.00%." in (
        render_markdown(table)
    )
    assert "Chance level of the test set (mean of 1/number of choices): 30.00\\%." in render_latex(table)
    assert {r["chance"] for r in csv.DictReader(io.StringIO(render_csv(table)))} == {"30.00"}


@pytest.mark.parametrize(
    ("change", "difference"),
    [
        (lambda m: m.update(dtype={"compute": "bfloat16", "weights": "float32"}),
         "dtype.compute: real 'float32', silent 'bfloat16'"),
        (lambda m: m["decoding"].update(source="checkpoint"), "decoding.source: real 'neutral', silent 'checkpoint'"),
        (lambda m: m["decoding"].update(max_new_tokens=8), "decoding.max_new_tokens: real 32, silent 8"),
        (lambda m: m.update(audio_mode="real"), "audio_mode: 'real' where 'silent' was expected"),
    ],
    ids=["dtype", "source", "tokens", "not-silent"],
)  # fmt: skip
def test_silent_decoded_unlike_its_real_evaluation_refused_unless_allowed(
    fx: AnalysisFixture, tables: RunTables, tmp_path: Path, change: Callable[[dict[str, Any]], None], difference: str
) -> None:
    mixed = _with_metrics(fx, tables, tmp_path, "sftf0", "checkpoint-4/eval/test-silent/metrics.json", change)
    with pytest.raises(MixedDecodingError) as info:
        build_table2(mixed, "toy")
    message = str(info.value)
    assert "some silent-audio evaluations were not decoded like the real evaluations they control" in message
    assert f"  - Full SFT + Prompt <1>, seed 0 (run sftf0, step 4), {tmp_path}/copy-sftf0/checkpoint-4/eval/" \
           f"test-silent/metrics.json: {difference}" in message  # fmt: skip
    assert f"rm -r {tmp_path}/copy-sftf0/checkpoint-4/eval/test-silent" in message
    assert "python -m controls.silent --profile toy" in message and "--allow-mixed-decoding" in message
    md = render_markdown(build_table2(mixed, "toy", allow_mixed_decoding=True))
    assert _main_row(md, "Full SFT + Prompt <1>").endswith("| 30.00 (decoded differently) | +20.00 |")
    assert "**Silent-audio controls decoded unlike their real evaluations**" in md.split("| Method |")[0]
    assert f"**the silent-audio evaluation was decoded unlike the real one** ({difference})" in md


def test_silent_not_read_from_run_dirs_elsewhere(tables: RunTables, tmp_path: Path) -> None:
    elsewhere = tables
    for run_id in tables.runs["run_id"]:
        elsewhere = moved(elsewhere, run_id, tmp_path / "elsewhere" / run_id)
    md = render_markdown(build_table2(elsewhere, "toy"))
    assert _main_row(md, "GRPO + Prompt <2>").endswith("| n/a | n/a |")
    assert "(run dir0, step 0): silent-audio evaluation not read (run dir not on this machine)" in md
    assert "Chance level of the test set (the mean over its items of 1 / the number of choices): n/a" in md


def test_a_run_directory_without_a_w_and_b_run_is_named(tables: RunTables, tmp_path: Path) -> None:
    """A seed killed before W&B flushed anything has no W&B run to read: the table names its directory anyway."""
    killed = tmp_path / "toy" / "grpo-p2" / "seed2"
    chosen = tmp_path / "toy" / "grpo-p2" / "seed0"  # a seed the table uses: nothing to say
    never_started = tmp_path / "toy" / "sft-full" / "seed3"
    for d in (killed, chosen, never_started):
        d.mkdir(parents=True)
        (d / "experiment.json").write_text("{}")
    (killed / "wandb_run_id").write_text("deadbeef\n")
    md = render_markdown(build_table2(tables, "toy", run_dirs=tmp_path))
    assert f"grpo-p2 seed 2: left out: the run directory {killed} is not complete" in md
    assert "W&B run deadbeef is not among the runs read" in md
    assert "python -m experiments run grpo-p2 --profile toy --seed 2 --resume" in md
    assert f"sft-full seed 3: left out: the run directory {never_started}" in md and "has no W&B run" in md
    assert str(chosen) not in md
    assert str(killed) not in render_markdown(build_table2(tables, "toy"))  # without run_dirs: no scan


def test_runs_of_another_model_never_share_a_row(tables: RunTables) -> None:
    """A run's model (config.profile_model) is part of its identity: the default table leaves a run of another
    model out, and that model's table (``--model``) takes only its runs, labelled with the model."""
    runs = tables.runs.copy()
    configs = [copy.deepcopy(c) for c in runs["config"]]
    moved = next(i for i, c in enumerate(configs) if c["experiment"]["name"] == "grpo-p2")
    configs[moved]["profile_model"] = "toy-qwen2.5-omni"
    runs["config"] = configs
    other = RunTables(runs=runs, history=tables.history, problems=list(tables.problems))
    default = select_checkpoints(other, "toy")
    moved_id = str(runs["run_id"].iloc[moved])
    assert moved_id not in {c.run_id for cs in default.chosen.values() for c in cs}
    omni = select_checkpoints(other, "toy", model="toy-qwen2.5-omni")
    assert [c.run_id for cs in omni.chosen.values() for c in cs] == [moved_id]
    assert "grpo-p2" in omni.chosen and "direct" in omni.missing and omni.model == "toy-qwen2.5-omni"
    with pytest.raises(MissingRunsError, match="MODEL=toy-qwen2.5-omni"):
        build_table2(other, "toy", model="toy-qwen2.5-omni")


def test_a_row_on_another_model_is_named_after_that_model() -> None:
    """The paper's direct row names Qwen2-Audio-7B-Instruct; on another model the label must not."""
    from analysis.table2 import MeasuredRow

    def row(experiment: str, model_label: str | None) -> MeasuredRow:
        return MeasuredRow(experiment, PAPER_ROWS[experiment], [], {}, {}, None, "", [], model_label=model_label)

    assert row("direct", None).label == "Qwen2-Audio-7B-Instruct, direct inference"
    assert row("direct", "toy-qwen2.5-omni").label == "direct inference [toy-qwen2.5-omni]"
    assert row("sft-full", "toy-qwen2.5-omni").label == f"{PAPER_ROWS['sft-full'].label} [toy-qwen2.5-omni]"
