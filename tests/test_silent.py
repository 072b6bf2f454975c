"""Tests for controls/silent.py: the silent-audio control of each Table 2 row's selected checkpoint.

Real evaluations with the untrained tiny model on the smoke profile's test set (30 items, 8 new tokens): a set of
offline W&B runs written like the suite's (tests/analysis_fixtures.py), whose run directories hold what real runs
hold: ``experiment.json``, a full checkpoint, a LoRA checkpoint saved without its processor, the base model for
``direct`` and for a run whose best validation step is 0, and one run whose directory is not on this machine.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_silent.py`` (about a minute).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from analysis.runs import read_offline_runs
from controls.silent import main, silent_controls
from tests.analysis_fixtures import AnalysisFixture, Eval, RunSpec, _trained, copy_run_dir, moved, write_runs

SILENT_DIRS = {  # run id -> where its best-val checkpoint's silent evaluation goes, and the model it must load
    "sdir0": ("silent/test", "base"),
    "ssftf0": ("checkpoint-4/eval/test-silent", "checkpoint-4"),
    "ssftl0": ("checkpoint-8/eval/test-silent", "checkpoint-8"),
    "sgrpo2s0": ("checkpoint-0/eval/test-silent", "base"),  # best validation at step 0: the base model
}


def _specs(base: str) -> tuple[RunSpec, ...]:
    def spec(*args: Any, **kwargs: Any) -> RunSpec:
        return RunSpec(*args, profile="smoke", base_model=base, **kwargs)

    return (
        spec("sdir0", "direct", "direct", "p2", 0, (Eval(0, 8),)),
        spec("ssftf0", "sft-full", "sft", "p1", 0, _trained([(0, 8, 40.0), (4, 10, 55.0), (8, 12, 50.0), (10, 11, 45.0)])),
        spec("ssftl0", "sft-lora", "sft", "p1", 0,
             _trained([(0, 8, 40.0), (4, 11, 50.0), (8, 13, 60.0), (10, 12, 55.0)], final_checkpoint=False), lora=True),
        spec("sgrpo2s0", "grpo-p2", "grpo", "p2", 0, _trained([(0, 8, 70.0), (4, 13, 60.0), (8, 15, 65.0), (10, 16, 60.0)])),
        spec("sgrpo3s0", "grpo-p3", "grpo", "p3", 0, _trained([(0, 8, 40.0), (4, 12, 60.0), (8, 14, 65.0), (10, 13, 55.0)])),
    )  # fmt: skip


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory, tiny_dir: str, smoke_world: Path) -> AnalysisFixture:
    """The runs, their run directories completed as a real run leaves them, and grpo-p3's directory removed."""
    import torch
    from peft import LoraConfig, get_peft_model

    from data.benchmark import load_benchmark
    from experiments.profiles import get_profile
    from experiments.runner import resolve
    from experiments.spec import LoraSpec
    from models.loading import load_model_and_processor

    fx = write_runs(tmp_path_factory.mktemp("silent_runs"), _specs(str(tiny_dir)))
    data = get_profile("smoke").data()
    benchmark = load_benchmark(data.test_json, data.test_audio_dir, version_label="toy").describe()
    for run_id, run_dir in fx.run_dirs.items():
        spec = fx.runs[run_id]
        resolved = resolve(spec.experiment, "smoke", spec.seed, output_dir=run_dir)
        (run_dir / "experiment.json").write_text(json.dumps(resolved.to_dict()), encoding="utf-8")
        for path in run_dir.rglob("metrics.json"):  # the fixture's evaluations, as if made on the smoke test set
            metrics = json.loads(path.read_text(encoding="utf-8"))
            path.write_text(json.dumps({**metrics, "benchmark": benchmark}), encoding="utf-8")
    for name in ("config.json", "model.safetensors", "generation_config.json", "processor_config.json",
                 "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):  # fmt: skip
        if (Path(tiny_dir) / name).exists():  # a full checkpoint holds weights and processor
            shutil.copy(Path(tiny_dir) / name, fx.run_dirs["ssftf0"] / "checkpoint-4" / name)
    model, _ = load_model_and_processor(tiny_dir, device="cpu")
    spec = LoraSpec()
    lora = get_peft_model(model, LoraConfig(r=spec.r, lora_alpha=spec.alpha, target_modules=spec.targets))
    with torch.no_grad():  # non-zero adapters (B starts at 0)
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    lora.save_pretrained(fx.run_dirs["ssftl0"] / "checkpoint-8")  # adapters only: no processor files
    shutil.rmtree(fx.run_dirs["sgrpo3s0"])  # a run made on another machine
    return fx


def test_silent_evaluations_at_the_selected_checkpoints(
    smoke_runs: AnalysisFixture, tiny_dir: str, capsys: pytest.CaptureFixture
) -> None:
    fx = smoke_runs
    assert not (fx.run_dirs["ssftl0"] / "checkpoint-8" / "processor_config.json").exists()
    argv = ["--wandb-dir", str(fx.wandb_dir), "--profile", "smoke"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    from experiments.runner import stored_run

    written = {}
    for run_id, (where, model) in SILENT_DIRS.items():
        run_dir = fx.run_dirs[run_id]
        metrics = json.loads((run_dir / where / "metrics.json").read_text(encoding="utf-8"))
        exp = stored_run(run_dir).experiment
        assert metrics["audio_mode"] == "silent"
        # The run's own decoding, from its experiment.json: prompt, token limit, source, greedy, compute dtype.
        assert metrics["prompt_id"] == exp.prompt
        assert metrics["decoding"]["max_new_tokens"] == exp.eval.max_new_tokens == 8
        assert metrics["decoding"]["source"] == exp.eval.decoding and metrics["decoding"]["greedy"] is True
        assert metrics["dtype"]["compute"] == "float32"
        assert metrics["model"] == (str(tiny_dir) if model == "base" else str(run_dir / model))
        assert metrics["benchmark"]["n_items"] == 30
        records = json.loads((run_dir / where / "predictions.json").read_text(encoding="utf-8"))
        assert len(records) == 30
        written[run_id] = (run_dir / where / "metrics.json").stat().st_mtime_ns
        assert f"(run {run_id}, step " in out and "silent audio " in out
    # Nothing else was evaluated: no silent evaluation at a step that was not selected.
    for run_id in SILENT_DIRS:
        found = {str(p.parent.relative_to(fx.run_dirs[run_id])) for p in fx.run_dirs[run_id].rglob("metrics.json")
                 if "silent" in str(p.relative_to(fx.run_dirs[run_id]))}  # fmt: skip
        assert found == {SILENT_DIRS[run_id][0]}
    assert "skipped: GRPO + Prompt <3>, seed 0 (run sgrpo3s0, step 8): run dir not on this machine" in err
    assert out.strip().endswith("4 evaluated, 0 already there, 1 skipped (not on this machine)")

    # A second run finds them complete: nothing is evaluated again, nothing rewritten.
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("already evaluated") == 4 and out.strip().endswith("0 evaluated, 4 already there, 1 skipped "
                                                                        "(not on this machine)")  # fmt: skip
    for run_id, (where, _) in SILENT_DIRS.items():
        assert (fx.run_dirs[run_id] / where / "metrics.json").stat().st_mtime_ns == written[run_id]


def test_unevaluable_checkpoints_stop_before_any_load(
    smoke_runs: AnalysisFixture, capsys: pytest.CaptureFixture
) -> None:
    """``--select final``: sft-full's checkpoint-10 holds no weights, sft-lora's final model was never saved."""
    fx = smoke_runs
    before = sorted(p for p in fx.root.rglob("*") if p.is_file())
    assert main(["--wandb-dir", str(fx.wandb_dir), "--profile", "smoke", "--select", "final"]) == 1
    err = capsys.readouterr().err
    assert "silent evaluation(s) cannot run; nothing was evaluated" in err
    assert f"Full SFT + Prompt <1>, seed 0 (run ssftf0, step 10): the weights of step 10 are not in " \
           f"{fx.run_dirs['ssftf0']} (looked for model.safetensors" in err  # fmt: skip
    assert "(run ssftl0, step 10): the weights of step 10 are not in" in err
    assert "checkpoint-10/, final_adapters/, merged/" in err  # a final model evaluated in final/: its other homes
    assert "Select another checkpoint (--select) or rerun the run" in err
    assert sorted(p for p in fx.root.rglob("*") if p.is_file()) == before  # nothing written


def test_other_test_set_and_missing_experiment_json_refused(smoke_runs: AnalysisFixture, tmp_path: Path) -> None:
    fx = smoke_runs
    tables = read_offline_runs(fx.wandb_dir)
    # direct evaluated on another test set (another sha256): its silent control would score other items.
    other = copy_run_dir(fx, "sdir0", tmp_path)
    shutil.rmtree(other / "silent", ignore_errors=True)
    metrics = json.loads((other / "metrics.json").read_text(encoding="utf-8"))
    metrics["benchmark"] = {**metrics["benchmark"], "sha256": "0" * 64, "version": "toy-00000000"}
    (other / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    # grpo-p2's run directory without experiment.json (written by an older version).
    older = copy_run_dir(fx, "sgrpo2s0", tmp_path)
    (older / "experiment.json").unlink()
    changed = moved(moved(tables, "sdir0", other), "sgrpo2s0", older)
    _, plan = silent_controls(changed, "smoke")
    problems = "\n".join(plan.problems)
    assert f"(run sgrpo2s0, step 0): {older} has no experiment.json" in problems
    assert "python -m experiments run grpo-p2 --profile smoke --seed 0" in problems
    _, plan = silent_controls(moved(tables, "sdir0", other), "smoke")
    (problem,) = plan.problems
    assert "(run sdir0, step 0): the run was evaluated on test set toy-00000000 (sha256 0000" in problem
    assert "a silent control on other items controls nothing" in problem


def test_analysis_fixture_runs_without_experiment_json(fx: AnalysisFixture, capsys: pytest.CaptureFixture) -> None:
    """The analysis fixture's run directories hold no experiment.json: every run is named, nothing evaluated."""
    assert main(["--wandb-dir", str(fx.wandb_dir), "--profile", "toy"]) == 1
    err = capsys.readouterr().err
    for run_id in ("dir0", "sftf0", "sftl0", "grpo2s0", "grpo2s1", "grpo3s0"):
        assert f"(run {run_id}, step " in err
    assert err.count("has no experiment.json") == 6
    assert not (fx.run_dirs["grpo3s0"] / "checkpoint-8" / "eval" / "test-silent").exists()
    assert main(["--wandb-dir", str(fx.wandb_dir), "--profile", "paper"]) == 2
    assert "make paper PROFILE=paper" in capsys.readouterr().err
