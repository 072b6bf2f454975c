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
    sessions = json.loads((out / "compute_settings.json").read_text())["sessions"]
    assert [s["resumed"] for s in sessions] == [False, True]  # both sessions' settings on record

    tables = read_offline_runs(wandb_dir)
    assert list(tables.runs["run_id"]) == [run_id] and tables.runs.iloc[0]["state"] == "finished"
    hist = history_of(tables, run_id)
    assert sorted(set(hist["train/global_step"].dropna().astype(int))) == [0, 1, 2, 3, 4]


def test_lora_run_can_save_merged_weights(tmp_path, wandb_dir):
    from models.loading import load_model_and_processor

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


def test_cpu_reruns_are_bit_identical_under_deterministic_algorithms(tmp_path, wandb_dir):
    """Two GRPO runs (the one arm that samples) on 2 threads end with the same weights; the record says why.

    16 steps: without the switch, two such runs differed at step 16 on a 2-core machine (4 steps were not enough
    to show it there)."""
    import torch
    from safetensors.torch import load_file

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the thread-order-dependent reductions need more than one thread to show
    try:
        weights = []
        for i in range(2):
            out = tmp_path / f"grpo-{i}"
            steps = ["--set", "train.max_steps=16", "--set", "train.save_every=8"]
            assert main(["run", "grpo-p2", "--profile", "smoke", *steps, "--output-dir", str(out)]) == 0
            weights.append(load_file(out / "checkpoint-16" / "model.safetensors"))
            (settings,) = json.loads((out / "compute_settings.json").read_text())["sessions"]
            assert settings["deterministic_algorithms"] is True and settings["torch_threads"] == 2
    finally:
        torch.set_num_threads(threads)
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not torch.are_deterministic_algorithms_enabled()  # the run's setting does not leak into the process
    runs = read_offline_runs(wandb_dir).runs
    assert len(runs) == 2 and all(c["deterministic_algorithms"] is True for c in runs["config"])


def test_deterministic_setting_defaults_to_cpu_and_can_be_forced():
    import torch

    from experiments.compute import deterministic_algorithms, run_deterministic
    from experiments.spec import TrainSpec

    assert run_deterministic(TrainSpec()) is (not torch.cuda.is_available())
    assert run_deterministic(None) is (not torch.cuda.is_available())
    assert run_deterministic(TrainSpec(deterministic=False)) is False
    with deterministic_algorithms(True):
        assert torch.are_deterministic_algorithms_enabled()
    assert not torch.are_deterministic_algorithms_enabled()
