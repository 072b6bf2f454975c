"""Several processes on the CPU (gloo) through `accelerate launch`: the evaluator shards and gathers (identical
results, each item exactly once), and SFT-LoRA and GRPO train with one W&B run and one record per checkpoint."""

from __future__ import annotations

import json

import pytest

from analysis.runs import read_offline_runs
from experiments.__main__ import main
from tests.helpers import REPO, launch_experiments


def test_sharded_evaluation_equals_one_process(launch_caches, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "w1"))
    assert main(["run", "direct", "--profile", "smoke", "--output-dir", str(tmp_path / "one")]) == 0
    launch_experiments(
        "cpu",
        ["run", "direct", "--profile", "smoke", "--output-dir", str(tmp_path / "two")],
        tmp_path,
        tmp_path / "w2",
    )
    one, two = tmp_path / "one", tmp_path / "two"
    assert json.loads((one / "predictions.json").read_text()) == json.loads((two / "predictions.json").read_text())
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert m1["accuracy"] == m2["accuracy"] and m1["n"] == m2["n"] == 30 and m2["n_processes"] == 2
    shards = [[json.loads(x)["id"] for x in p.read_text().splitlines()] for p in sorted(two.glob("*.rank*.jsonl"))]
    assert len(shards) == 2 and all(shards)
    assert sorted(shards[0] + shards[1]) == sorted(r["id"] for r in json.loads((two / "predictions.json").read_text()))
    assert len(read_offline_runs(tmp_path / "w2").runs) == 1  # one W&B run, from the main process


@pytest.mark.parametrize("name", ["sft-lora", "grpo-p2"])
def test_training_runs_under_two_processes(name, launch_caches, tmp_path):
    out = tmp_path / name
    launch_experiments("cpu", ["run", name, "--profile", "smoke", "--output-dir", str(out)], tmp_path, tmp_path / "w")
    evals = [json.loads(x) for x in (out / "checkpoint_evals.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [0, 2, 4]  # recorded once per checkpoint, not once per process
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
