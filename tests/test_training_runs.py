"""Whole runs on the smoke profile: checkpoints evaluated, final results, an offline W&B run, and resume."""

from __future__ import annotations

import json

import pytest

from analysis.runs import history_of, read_offline_runs
from experiments.__main__ import main


@pytest.fixture()
def wandb_dir(tmp_path, monkeypatch):
    d = tmp_path / "wandb"
    monkeypatch.setenv("WANDB_DIR", str(d))
    return d


def _evals(out):
    return [json.loads(line) for line in (out / "checkpoint_evals.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", ["grpo-p2", "grpo-p3", "sft-full", "sft-lora"])
def test_run_evaluates_every_checkpoint_and_writes_a_wandb_run(name, tmp_path, wandb_dir):
    out = tmp_path / name
    assert main(["run", name, "--profile", "smoke", "--output-dir", str(out)]) == 0
    steps = [e["step"] for e in _evals(out)]
    assert steps == [0, 2, 4]  # the base and each checkpoint (the final model is the last one, recorded once)
    for step in (2, 4):
        for split in ("test", "val"):
            m = json.loads((out / f"checkpoint-{step}" / "eval" / split / "metrics.json").read_text())
            assert m["n"] == {"test": 30, "val": 24}[split]
    final = json.loads((out / "metrics.json").read_text())
    assert final["n"] == 30 and len(json.loads((out / "predictions.json").read_text())) == 30
    assert (out / "checkpoint-4" / ("adapter_model.safetensors" if "lora" in name else "model.safetensors")).exists()

    tables = read_offline_runs(wandb_dir)
    assert not tables.problems and len(tables.runs) == 1
    run = tables.runs.iloc[0]
    assert run["group"] == name and run["name"] == f"{name}-smoke-s0" and run["state"] == "finished"
    assert {"smoke", run["config"]["experiment"]["method"]} <= set(run["tags"])
    assert run["config"]["experiment"]["name"] == name
    hist = history_of(tables, run["run_id"])
    evals = hist.dropna(subset=["eval/test/avg"])
    assert sorted(evals["train/global_step"].tolist()) == [0, 2, 4]
    assert "eval/val/avg" in hist and "train/loss" in hist


def test_killed_run_resumes_from_its_last_checkpoint_into_the_same_wandb_run(tmp_path, wandb_dir, monkeypatch):
    from trainers.checkpoint_eval import CheckpointEvaluator

    out = tmp_path / "sft"
    original = CheckpointEvaluator.on_save

    def kill_after_first_checkpoint(self, args, state, control, **kw):
        original(self, args, state, control, **kw)
        raise KeyboardInterrupt("simulated kill after checkpoint-2")

    monkeypatch.setattr(CheckpointEvaluator, "on_save", kill_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        main(["run", "sft-full", "--profile", "smoke", "--output-dir", str(out)])
    assert (out / "checkpoint-2").exists() and not (out / "checkpoint-4").exists()
    run_id = (out / "wandb_run_id").read_text().strip()
    monkeypatch.setattr(CheckpointEvaluator, "on_save", original)

    # Without --resume the directory is protected; with it the run continues from step 2.
    assert main(["run", "sft-full", "--profile", "smoke", "--output-dir", str(out)]) == 2
    assert main(["run", "sft-full", "--profile", "smoke", "--output-dir", str(out), "--resume"]) == 0
    assert (out / "wandb_run_id").read_text().strip() == run_id
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3, 4]
    assert [e["step"] for e in _evals(out)] == [0, 2, 4]  # nothing re-evaluated, nothing missing

    tables = read_offline_runs(wandb_dir)
    assert list(tables.runs["run_id"]) == [run_id] and tables.runs.iloc[0]["state"] == "finished"
    hist = history_of(tables, run_id)
    assert sorted(set(hist["train/global_step"].dropna().astype(int))) == [0, 1, 2, 3, 4]


def test_lora_run_can_save_merged_weights(tmp_path, wandb_dir):
    from data.models import load_model_and_processor

    out = tmp_path / "lora"
    assert (
        main(["run", "sft-lora", "--profile", "smoke", "--output-dir", str(out), "--set", "lora.save_merged=true"])
        == 0
    )
    model, _ = load_model_and_processor(out / "merged", device="cpu")
    assert not any("lora_" in k for k, _ in model.named_parameters())
    assert "adhoc" in read_offline_runs(wandb_dir).runs.iloc[0]["tags"]  # --set marks the run ad hoc


def test_a_lora_checkpoint_can_be_evaluated_by_path(tmp_path, wandb_dir, smoke_world):
    out = tmp_path / "lora"
    assert main(["run", "sft-lora", "--profile", "smoke", "--output-dir", str(out)]) == 0
    bench = smoke_world / "test" / "mmau-test-mini.json"
    args = ["eval", "--model", str(out / "checkpoint-4"), "--benchmark", str(bench), "--prompt", "p1",
            "--max-new-tokens", "8", "--output-dir", str(tmp_path / "eval")]  # fmt: skip
    assert main(args) == 0
    # Same predictions as the run's own evaluation of that checkpoint (adapters merged vs applied: same greedy path).
    own = json.loads((out / "checkpoint-4" / "eval" / "test" / "predictions.json").read_text())
    again = json.loads((tmp_path / "eval" / "predictions.json").read_text())
    assert [r["raw_output"] for r in own] == [r["raw_output"] for r in again]
