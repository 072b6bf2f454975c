"""Tests for analysis/crosscheck.py (W&B runs against their run directories), ad hoc runs, reports per profile and
duplicate steps, through Table 2 and the figures, on the analysis fixture (real offline W&B runs and run folders).

Run: ``.venv/bin/python -m pytest -q tests/test_crosscheck.py`` (a few seconds after the fixture is written).

The session's fixture is shared and never modified: a test that damages a run directory copies it first and points
the run's config at the copy; a test that needs a W&B run that lost rows writes one into a folder of its own.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.crosscheck import (
    INCOMPLETE,
    MISSING_ON_DISK,
    OTHER_RUN,
    UNREADABLE,
    VALUES_DIFFER,
    CrossCheck,
    GapsError,
    check_runs,
    read_decoding,
    read_disk_evals,
)
from analysis.figures import FIGURES, _collect, _legend_handles, _series, figure_runs, write_figure
from analysis.figures import main as figures_main
from analysis.runs import RunTables, read_offline_runs
from analysis.select import eval_rows, pick_runs, run_adhoc_reasons, select_checkpoints
from analysis.sources import default_out_dir
from analysis.table2 import MixedDecodingError, build_table2, render_markdown
from analysis.table2 import main as table2_main
from tests.analysis_fixtures import AnalysisFixture, write_runs
from tests.analysis_fixtures import copy_run_dir as _copy_run_dir
from tests.analysis_fixtures import moved as _moved
from tests.analysis_fixtures import with_config as _with_config

REPO = Path(__file__).resolve().parent.parent


def _cli(fx: AnalysisFixture, out: Path, *extra: str) -> int:
    return table2_main(["--wandb-dir", str(fx.wandb_dir), "--profile", "toy", "--out", str(out), *extra])


def _check(tables: RunTables, include_adhoc: bool = False) -> CrossCheck:
    return check_runs(tables, pick_runs(tables, "toy", include_adhoc=include_adhoc)[0])


def _problems_of(check: CrossCheck, run_id: str) -> list[tuple[str, tuple[int, ...]]]:
    return [(p.kind, p.steps) for p in check.problems if p.run_id == run_id]


def _rows(md: str, label: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith(f"| {label} |")]


# --------------------------------------------------------------------------------------------------------------
# The fixture as it is: every run checked, nothing wrong


def test_fixture_runs_check_clean(fx: AnalysisFixture, tables: RunTables) -> None:
    check = _check(tables)
    assert check.problems == []
    assert sorted(r.run_id for r in check.runs) == ["dir0", "grpo2s0", "grpo2s1", "grpo3s0", "sftf0", "sftl0"]
    assert all(r.checked for r in check.runs)
    assert check.status("dir0") == "yes (1 evaluation)"
    assert check.status("grpo2s0") == "yes (4 evaluations)"  # steps 0, 4, 8, 10 (10 twice: checkpoint and final)
    assert check.status("nope") == "no: not checked"
    # The final model's line repeats the last save's step on disk: an identical duplicate, which is fine.
    lines = (fx.run_dirs["grpo2s0"] / "checkpoint_evals.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [0, 4, 8, 10, 10]
    disk, source, unreadable = read_disk_evals(fx.run_dirs["grpo2s0"])
    assert (list(disk["step"]), source, unreadable) == ([0, 4, 8, 10], "checkpoint_evals.jsonl", [])


# --------------------------------------------------------------------------------------------------------------
# A W&B run that lost an evaluation the run directory holds (a kill before W&B flushed)


@pytest.fixture(scope="module")
def lost(fx: AnalysisFixture, tmp_path_factory: pytest.TempPathFactory) -> AnalysisFixture:
    """The fixture's W&B runs, except grpo-p2 seed 1 written again with its step-8 evaluation on disk only."""
    root = tmp_path_factory.mktemp("lost")
    for folder in fx.wandb_dir.glob("offline-run-*"):
        if folder.is_dir() and not folder.name.endswith("-grpo2s1"):
            shutil.copytree(folder, root / "wandb" / folder.name)
    return write_runs(root, [dataclasses.replace(fx.runs["grpo2s1"], lost_in_wandb=(8,))])


def test_step_lost_in_wandb_fails_table2_unless_allowed(
    lost: AnalysisFixture, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert list(eval_rows(read_offline_runs(lost.wandb_dir), "grpo2s1")["step"]) == [0, 4, 10]  # W&B lacks step 8
    argv = ["--wandb-dir", str(lost.wandb_dir), "--profile", "toy"]
    assert table2_main([*argv, "--out", str(tmp_path / "refused")]) == 1
    err = capsys.readouterr().err
    run_dir = lost.run_dirs["grpo2s1"]
    expected = (f"grpo-p2 seed 1, run grpo2s1 (grpo-p2-toy-s1), run dir {run_dir}: step(s) 8 on disk "
                "(checkpoint_evals.jsonl) but missing from W&B")  # fmt: skip
    assert "disagree with their run directories on this machine (1 problem):" in err
    assert f"  - {expected}\n" in err
    assert "W&B lacks evaluations of a run that completed on disk" in err and "--allow-gaps" in err
    assert "--resume\n" not in err  # the run completed: resuming would leave it as it is
    assert not (tmp_path / "refused").exists()

    assert table2_main([*argv, "--out", str(tmp_path / "allowed"), "--allow-gaps"]) == 0
    assert f"warning (--allow-gaps): {expected}" in capsys.readouterr().err
    md = (tmp_path / "allowed" / "table2" / "table2.md").read_text(encoding="utf-8")
    assert "- **The W&B runs disagree with their run directories** (1 problem, allowed with `--allow-gaps`)" in md
    assert md.index("disagree with their run directories") < md.index("| Method | Source |")  # above the table
    assert f"- Run directory check: {expected}\n" in md.split("## Notes")[1]
    (grpo,) = _rows(md.split("## Measured rows: provenance")[1], "GRPO + Prompt <2>")
    assert grpo.endswith("| s0: yes (4 evaluations); s1: yes (4 evaluations), 1 problem (see the notes) |")
    csv_rows = list(
        csv.DictReader(io.StringIO((tmp_path / "allowed" / "table2" / "table2.csv").read_text(encoding="utf-8")))
    )
    assert csv_rows[3]["run_dir_checked"] == "yes (4 evaluations);yes (4 evaluations), 1 problem (see the notes)"
    assert "disagree with their run directories" in (tmp_path / "allowed" / "table2" / "table2.tex").read_text()


def test_figures_apply_the_same_check(lost: AnalysisFixture, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["--wandb-dir", str(lost.wandb_dir), "--profile", "toy"]
    assert figures_main(["fig3", *argv, "--out", str(tmp_path / "refused")]) == 1
    err = capsys.readouterr().err
    assert "the W&B runs behind Fig. 3 disagree" in err and "run grpo2s1 (grpo-p2-toy-s1)" in err
    assert "step(s) 8 on disk (checkpoint_evals.jsonl) but missing from W&B" in err
    assert not (tmp_path / "refused").exists()
    assert figures_main(["fig3", *argv, "--out", str(tmp_path / "allowed"), "--allow-gaps"]) == 0
    assert "warning (--allow-gaps): grpo-p2 seed 1, run grpo2s1" in capsys.readouterr().err
    assert (tmp_path / "allowed" / "fig3.pdf").is_file()
    # fig4 draws the SFT runs only, whose run directories agree with W&B.
    assert figures_main(["fig4", *argv, "--out", str(tmp_path / "fig4")]) == 0


# --------------------------------------------------------------------------------------------------------------
# Other problems


def test_differing_values_are_reported(tables: RunTables) -> None:
    history = tables.history.copy()
    at = (history["run_id"] == "grpo3s0") & (history["train/global_step"] == 8) & history["eval/val/avg"].notna()
    assert at.sum() == 1
    history.loc[at, "eval/val/avg"] = 65.005  # disk: 65.00; within the rounding of 2 decimals
    assert _check(RunTables(tables.runs, history, [])).problems == []
    history.loc[at, "eval/val/avg"] = 65.01
    history.loc[at, "eval/test/sound"] = 50.0  # disk: 71.43
    check = _check(RunTables(tables.runs, history, []))
    assert _problems_of(check, "grpo3s0") == [(VALUES_DIFFER, (8,))]
    (problem,) = check.problems
    assert problem.detail == ("step 8 eval/test/sound: W&B 50.00, disk 71.43; step 8 eval/val/avg: W&B 65.01, "
                              "disk 65.00")  # fmt: skip
    with pytest.raises(GapsError, match="grpo-p3 seed 0, run grpo3s0 .*differ at step\\(s\\) 8") as info:
        build_table2(RunTables(tables.runs, history, []), "toy")
    assert info.value.check.problems == [problem]


def test_run_dir_not_on_this_machine_is_not_a_failure(tables: RunTables, tmp_path: Path) -> None:
    """Not a gap in the record; but the decoding of those rows is unknown next to known rows: a mix (see
    tests/test_table2.py), refused unless allowed."""
    elsewhere = _moved(tables, "grpo3s0", tmp_path / "elsewhere" / "seed0")
    unrecorded = _moved(elsewhere, "dir0", None)
    with pytest.raises(MixedDecodingError, match="compute dtypes float32, unknown") as info:
        build_table2(unrecorded, "toy")  # no GapsError
    message = str(info.value)
    assert ("GRPO + Prompt <3>, seed 0 (run grpo3s0, step 8): compute dtype unknown, decoding unknown (run dir not "
            "on this machine)") in message  # fmt: skip
    assert "(run dir0, step 0): compute dtype unknown, decoding unknown (no run dir in its W&B config)" in message
    assert "run the report on the machine that holds it" in message
    table = build_table2(unrecorded, "toy", allow_mixed_decoding=True)
    assert table.check.problems == []
    md = render_markdown(table)
    provenance = md.split("## Measured rows: provenance")[1]
    assert _rows(provenance, "GRPO + Prompt <3>")[0].endswith(
        "| unknown (run dir not on this machine) | unknown | n/a | n/a | no: run dir not on this machine |"
    )
    assert _rows(provenance, "Qwen2-Audio-7B-Instruct, direct inference")[0].endswith(
        "| no: no run dir in its W&B config |"
    )
    assert _rows(provenance, "Full SFT + Prompt <1>")[0].endswith("| yes (4 evaluations) |")
    assert "disagree with their run directories" not in md


def test_run_dir_without_complete_marker_is_reported(
    fx: AnalysisFixture, tables: RunTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:  # fmt: skip
    run_dir = _copy_run_dir(fx, "grpo3s0", tmp_path)
    (run_dir / "run_complete.json").unlink()
    moved = _moved(tables, "grpo3s0", run_dir)
    assert _problems_of(_check(moved), "grpo3s0") == [(INCOMPLETE, ())]
    monkeypatch.setattr("analysis.sources.read_runs", lambda args, experiments: (moved, "offline W&B runs"))
    assert table2_main(["--profile", "toy", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert (f"grpo-p3 seed 0, run grpo3s0 (grpo-p3-toy-s0), run dir {run_dir}: no run_complete.json: the run never "
            "completed on disk") in err  # fmt: skip
    assert f"  python -m experiments run grpo-p3 --output-dir {run_dir} --resume\n" in err
    assert not (tmp_path / "out").exists()


def test_run_dir_of_another_run_is_reported(fx: AnalysisFixture, tables: RunTables, tmp_path: Path) -> None:
    run_dir = _copy_run_dir(fx, "sftl0", tmp_path)
    (run_dir / "wandb_run_id").write_text("cafe0001\n")
    check = _check(_moved(tables, "sftl0", run_dir))
    assert _problems_of(check, "sftl0") == [(OTHER_RUN, ())]
    assert check.status("sftl0") == "no: run dir holds W&B run cafe0001, 1 problem (see the notes)"
    assert "names W&B run cafe0001" in check.problems[0].message()
    # Its metrics.json files are another run's: the decoding of its evaluations is unknown, not read from them.
    decoding = read_decoding(check, "sftl0", run_dir / "metrics.json")
    assert (decoding.compute_dtype, decoding.reason) == ("unknown", "run dir holds W&B run cafe0001")


def test_disk_side_problems(fx: AnalysisFixture, tables: RunTables, tmp_path: Path) -> None:
    run_dir = _copy_run_dir(fx, "sftf0", tmp_path)
    evals = run_dir / "checkpoint_evals.jsonl"
    lines = evals.read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["step"] != 4]
    # A line cut by a kill, then the resumed run's line appended to it; then an identical duplicate of a step.
    evals.write_text("\n".join([*kept[:2], kept[2][:40] + kept[2], kept[2], *kept[3:]]) + "\n")
    moved = _moved(tables, "sftf0", run_dir)
    check = _check(moved)
    assert _problems_of(check, "sftf0") == [(UNREADABLE, ()), (MISSING_ON_DISK, (4,))]
    assert "checkpoint_evals.jsonl line(s) 3 not readable" in check.problems[0].message()
    assert "step(s) 4 in W&B but missing on disk (checkpoint_evals.jsonl)" in check.problems[1].message()

    evals.unlink()
    check = _check(moved)
    assert _problems_of(check, "sftf0") == [(MISSING_ON_DISK, (0, 4, 8, 10))]
    assert "missing on disk (no checkpoint_evals.jsonl)" in check.problems[0].message()
    assert check.status("sftf0") == "yes (0 evaluations), 1 problem (see the notes)"

    # direct: checkpoint_evals.jsonl, or in an older run directory without one, its metrics.json (accuracy in
    # percent, as logged) is its evaluation at step 0.
    direct_dir = _copy_run_dir(fx, "dir0", tmp_path)
    assert read_disk_evals(direct_dir, direct=True)[1] == "checkpoint_evals.jsonl"
    (direct_dir / "checkpoint_evals.jsonl").unlink()
    disk, source, _ = read_disk_evals(direct_dir, direct=True)
    assert source == "metrics.json" and list(disk["step"]) == [0] and disk["eval/test/avg"].item() == 40.0
    assert _check(_moved(tables, "dir0", direct_dir)).problems == []
    metrics = json.loads((direct_dir / "metrics.json").read_text())
    metrics["accuracy"]["avg"] = 45.0
    (direct_dir / "metrics.json").write_text(json.dumps(metrics))
    check = _check(_moved(tables, "dir0", direct_dir))
    assert _problems_of(check, "dir0") == [(VALUES_DIFFER, (0,))]
    assert check.problems[0].detail == "step 0 eval/test/avg: W&B 40.00, disk 45.00"
    (direct_dir / "metrics.json").unlink()
    assert _problems_of(_check(_moved(tables, "dir0", direct_dir)), "dir0") == [(MISSING_ON_DISK, (0,))]


# --------------------------------------------------------------------------------------------------------------
# Ad hoc runs


def test_adhoc_reasons() -> None:
    assert run_adhoc_reasons({"config": {"adhoc": False, "canonical": True}, "tags": ("grpo", "toy")}) == []
    assert run_adhoc_reasons({"config": {"adhoc": True}}) == ["--set overrides"]
    assert run_adhoc_reasons({"config": {"adhoc": True, "adhoc_reasons": ["--set train.learning_rate=1e-5"]}}) == [
        "--set train.learning_rate=1e-5"
    ]
    assert run_adhoc_reasons({"config": {"canonical": False}}) == ["not canonical"]
    assert run_adhoc_reasons({"config": {}, "tags": ("grpo", "toy", "p2", "adhoc")}) == ["tagged adhoc"]


def test_adhoc_latest_run_excluded_by_default_included_with_flag(
    fx: AnalysisFixture, tables: RunTables, tmp_path: Path
) -> None:
    assert _cli(fx, tmp_path / "default") == 0
    md = (tmp_path / "default" / "table2" / "table2.md").read_text(encoding="utf-8")
    assert "grpo2s0adhoc" not in md.split("## Notes")[0]
    assert "ignored run grpo2s0adhoc (grpo-p2-toy-s0): ad hoc settings (--set overrides)" in md
    assert "Ad hoc runs allowed" not in md and ", ad hoc" not in md

    assert _cli(fx, tmp_path / "adhoc", "--include-adhoc") == 0
    md = (tmp_path / "adhoc" / "table2" / "table2.md").read_text(encoding="utf-8")
    head = md.split("| Method | Source |")[0]
    assert "- **Ad hoc runs allowed** (`--include-adhoc`)" in head
    assert "ad hoc runs used: grpo-p2 s0 (run grpo2s0adhoc: --set overrides)." in head
    (row,) = _rows(md, "GRPO + Prompt <2>")[:1]
    assert "| measured, toy-1a2b3c4d, ad hoc |" in row
    (provenance,) = _rows(md.split("## Measured rows: provenance")[1], "GRPO + Prompt <2>")
    assert "| grpo2s0adhoc (ad hoc), grpo2s1 |" in provenance
    assert _rows(md.split("## Measured rows: provenance")[1], "GRPO + Prompt <3>")[0].count("ad hoc") == 0
    assert "grpo-p2 seed 0: ignored run grpo2s0 (grpo-p2-toy-s0): superseded by the later run grpo2s0adhoc" in md
    csv_rows = list(
        csv.DictReader(io.StringIO((tmp_path / "adhoc" / "table2" / "table2.csv").read_text(encoding="utf-8")))
    )
    assert [r["adhoc"] for r in csv_rows] == ["no", "no", "no", "yes;no", "no"]
    assert "Ad hoc runs allowed" in (tmp_path / "adhoc" / "table2" / "table2.tex").read_text(encoding="utf-8")
    selection = select_checkpoints(tables, "toy", include_adhoc=True)
    assert [c.run_id for c in selection.chosen["grpo-p2"]] == ["grpo2s0adhoc", "grpo2s1"]
    assert selection.chosen["grpo-p2"][0].adhoc and not selection.chosen["grpo-p2"][1].adhoc

    # The figure too: the ad hoc run is drawn only with the flag, and its legend entry says so.
    default = write_figure(tables, "fig3", "toy", tmp_path / "fig-default")
    with_adhoc = write_figure(tables, "fig3", "toy", tmp_path / "fig-adhoc", include_adhoc=True)
    assert default["pdf"].read_bytes() != with_adhoc["pdf"].read_bytes()
    for include, marked in ((False, []), (True, ["GRPO + Prompt <2> (2 seeds, ad hoc)"])):
        runs = figure_runs(tables, FIGURES["fig3"], "toy", include_adhoc=include)
        data = [_collect(tables, runs.picked[e], e) for e in FIGURES["fig3"].experiments]
        labels = [h.get_label() for h in _legend_handles(FIGURES["fig3"], data, True, 2.0, False)[0]]
        assert [label for label in labels if "ad hoc" in label] == marked


# --------------------------------------------------------------------------------------------------------------
# Reports per profile


def test_reports_go_to_a_folder_per_profile(
    tables: RunTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert default_out_dir("smoke") == Path("reports/smoke") and default_out_dir("toy") == Path("reports/toy")
    smoke = tables
    for run_id in tables.runs["run_id"]:
        smoke = _with_config(smoke, run_id, lambda config: config.update(profile="smoke", profile_model="tiny"))
    monkeypatch.setattr("analysis.sources.read_runs", lambda args, experiments: (smoke, "offline W&B runs"))
    monkeypatch.chdir(tmp_path)  # the default is relative to the working directory: never the repository's here
    assert table2_main(["--profile", "smoke"]) == 0
    assert figures_main(["fig4", "--profile", "smoke"]) == 0
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == [f"reports/smoke/{name}" for name in
                       ("fig4.pdf", "fig4.png", "table2/table2.csv", "table2/table2.md", "table2/table2.tex")]  # fmt: skip
    assert table2_main(["--profile", "smoke", "--out", "elsewhere"]) == 0  # --out still overrides
    assert (tmp_path / "elsewhere" / "table2" / "table2.md").is_file()


def test_make_targets_use_the_per_profile_default() -> None:
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    out = subprocess.run(["make", "-n", "paper", "table2", "fig3", "fig4", "PROFILE=smoke"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    commands = [line for line in out.splitlines() if "-m analysis." in line or "-m controls." in line]
    # paper: silent controls, fig3, fig4, table2; then table2, fig3, fig4 on their own
    assert len(commands) == 7 and all("--profile smoke" in c and "--out" not in c for c in commands)
    assert "reports: reports/smoke/table2/table2.{md,tex,csv}, reports/smoke/fig3.{png,pdf}" in out


# --------------------------------------------------------------------------------------------------------------
# Duplicate steps (a resumed run logs steps again)


def test_duplicate_steps_keep_the_last_logged(fx: AnalysisFixture, tables: RunTables, tmp_path: Path) -> None:
    """A resume from checkpoint-4 logs steps 5-10 again (training and evaluations), with new values."""
    history = tables.history
    mine = history[history["run_id"] == "grpo3s0"].sort_values("_step")
    again = mine[mine["train/global_step"] >= 5].copy()
    again["_step"] = mine["_step"].max() + 1 + np.arange(len(again))
    is_eval8 = (again["train/global_step"] == 8) & again["eval/test/avg"].notna()
    new_eval = {"eval/test/sound": 10.0, "eval/test/music": 20.0, "eval/test/speech": 30.0, "eval/test/avg": 19.5,
                "eval/val/avg": 50.0}  # fmt: skip
    for key, value in new_eval.items():
        again.loc[is_eval8, key] = value
    is_train = again["train/reward"].notna()
    again.loc[is_train, "train/reward"] = again.loc[is_train, "train/reward"] + 0.5
    resumed = RunTables(tables.runs, pd.concat([history, again], ignore_index=True), [])

    rows = eval_rows(resumed, "grpo3s0")
    assert list(rows["step"]) == [0, 4, 8, 10]  # one per step
    assert rows.loc[rows["step"] == 8, "eval/test/avg"].item() == 19.5  # the last logged
    assert select_checkpoints(resumed, "toy").chosen["grpo-p3"][0].n_evals == 4

    series = _series(resumed.history[resumed.history["run_id"] == "grpo3s0"].sort_values("_step"), "train/reward")
    assert list(series.index) == list(range(1, 11))  # no zig-zag: each step once, in order
    first = _series(mine, "train/reward")
    assert np.allclose(series.loc[5:].to_numpy(), first.loc[5:].to_numpy() + 0.5)  # the resumed values
    assert np.allclose(series.loc[:4].to_numpy(), first.loc[:4].to_numpy())

    # The run directory got the resumed evaluations appended too; comparing the last of each side agrees.
    run_dir = _copy_run_dir(fx, "grpo3s0", tmp_path)
    evals = run_dir / "checkpoint_evals.jsonl"
    records = [json.loads(line) for line in evals.read_text().splitlines()]
    appended = [{**r, **(new_eval if r["step"] == 8 else {})} for r in records if r["step"] >= 5]
    evals.write_text("".join(json.dumps(r) + "\n" for r in [*records, *appended]))
    moved = RunTables(_moved(tables, "grpo3s0", run_dir).runs, resumed.history, [])
    assert _check(moved).problems == []
    assert _check(moved).status("grpo3s0") == "yes (4 evaluations)"
    # ... and a disk that kept the first measurement at step 8 is reported.
    evals.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert _problems_of(_check(moved), "grpo3s0") == [(VALUES_DIFFER, (8,))]
