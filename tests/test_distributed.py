"""Several processes on the CPU (gloo) through `accelerate launch`: the evaluator shards and gathers (identical
results, each item exactly once), and SFT-LoRA and GRPO train with one W&B run and one record per checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.runs import read_offline_runs
from experiments.__main__ import main

REPO = Path(__file__).resolve().parent.parent


def _launch(args: list[str], tmp_path: Path, wandb_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "WANDB_DIR": str(wandb_dir), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "launch" / "cpu.yaml"),
           "-m", "experiments", *args]  # fmt: skip
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture()
def caches(smoke_world, tiny_dir):
    """Build the smoke world and tiny model in this process first (the launched processes reuse them)."""
    return smoke_world, tiny_dir


def test_sharded_evaluation_equals_one_process(caches, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "w1"))
    assert main(["run", "direct", "--profile", "smoke", "--output-dir", str(tmp_path / "one")]) == 0
    _launch(["run", "direct", "--profile", "smoke", "--output-dir", str(tmp_path / "two")], tmp_path, tmp_path / "w2")
    one, two = tmp_path / "one", tmp_path / "two"
    assert json.loads((one / "predictions.json").read_text()) == json.loads((two / "predictions.json").read_text())
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert m1["accuracy"] == m2["accuracy"] and m1["n"] == m2["n"] == 30 and m2["n_processes"] == 2
    shards = [[json.loads(x)["id"] for x in p.read_text().splitlines()] for p in sorted(two.glob("*.rank*.jsonl"))]
    assert len(shards) == 2 and all(shards)
    assert sorted(shards[0] + shards[1]) == sorted(r["id"] for r in json.loads((two / "predictions.json").read_text()))
    assert len(read_offline_runs(tmp_path / "w2").runs) == 1  # one W&B run, from the main process


@pytest.mark.parametrize("name", ["sft-lora", "grpo-p2"])
def test_training_runs_under_two_processes(name, caches, tmp_path):
    out = tmp_path / name
    _launch(["run", name, "--profile", "smoke", "--output-dir", str(out)], tmp_path, tmp_path / "w")
    evals = [json.loads(x) for x in (out / "checkpoint_evals.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [0, 2, 4, 4]  # recorded once per checkpoint, not once per process
    assert (out / "checkpoint-4").exists() and (out / "metrics.json").exists()
    # Data parallel: after 4 steps of 4 items (SFT: batch 4; GRPO: 2 prompts x accumulation 2) per process, the two
    # processes have seen 32 of the 120 training items, not 16 each of the same ones.
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["epoch"] == pytest.approx(2 * 4 * 4 / 120)
    runs = read_offline_runs(tmp_path / "w").runs
    assert len(runs) == 1 and runs.iloc[0]["state"] == "finished"


def test_every_launch_configuration_parses():
    from accelerate.commands.config.config_args import load_config_from_file

    expected = {"cpu": "MULTI_GPU", "ddp": "MULTI_GPU", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED",
                "zero3_offload": "DEEPSPEED", "fsdp": "FSDP", "multinode_zero3": "DEEPSPEED"}  # fmt: skip
    for name, kind in expected.items():
        config = load_config_from_file(str(REPO / "launch" / f"{name}.yaml"))
        assert config.distributed_type.value == kind, name
    assert (
        load_config_from_file(str(REPO / "launch" / "zero3_offload.yaml")).deepspeed_config["offload_param_device"]
        == "cpu"
    )
