"""Multi-process training on the CPU: data parallel (launch/cpu.yaml), FSDP2 (launch/cpu_fsdp.yaml) and DeepSpeed
ZeRO-3 (launch/cpu_zero3.yaml), two processes on gloo, for full and LoRA SFT and GRPO on the smoke profile: train
with checkpoint evaluation, save, get SIGKILLed after a checkpoint (tests/kill_at.py) and resume to the
uninterrupted run's losses, weights (within 1e-5) and predictions.

accelerate 1.15 has no CPU path for either; ``data.distributed.allow_cpu_sharding`` (applied by
``python -m experiments`` when launched without a GPU) supplies it. ZeRO-3 needs ``deepspeed`` (skipped without it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import REPO, launch_experiments

# Each process's epoch after the smoke runs' 4 steps of 4 of the 120 training items (SFT: batch 4; GRPO: 2 prompts x
# accumulation 2): with two processes each sees its own half of the data, so the trainer counts twice that.
ONE_PROCESS_EPOCH = 4 * 4 / 120


def _state(ckpt: Path) -> dict:
    return json.loads((ckpt / "trainer_state.json").read_text())


def _steps(run: Path) -> list[int]:
    return [json.loads(x)["step"] for x in (run / "checkpoint_evals.jsonl").read_text().splitlines()]


def _weights(ckpt: Path) -> dict:
    from safetensors.torch import load_file

    for name in ("adapter_model.safetensors", "model.safetensors"):
        if (ckpt / name).exists():
            return load_file(ckpt / name)
    raise AssertionError(f"{ckpt}: no Hugging Face weights (adapter_model / model .safetensors)")


def _rows(run: Path) -> dict[int, dict]:
    return {r["train/global_step"]: r for r in map(json.loads, (run / "train_log.jsonl").read_text().splitlines())}


def _outputs(path: Path) -> list[tuple[str, str]]:
    return [(r["id"], r["raw_output"]) for r in json.loads(path.read_text())]


def _check_sharded_run(config: str, name: str, launch_caches, tmp_path: Path) -> dict[str, float]:
    from safetensors.torch import load_file

    from analysis.runs import read_offline_runs

    wandb_dir = tmp_path / "w"
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    seconds = {"run": launch_experiments(config, ["run", name, "--profile", "smoke", "--output-dir", str(full)],
                                         tmp_path, wandb_dir)}  # fmt: skip

    assert _steps(full) == [0, 2, 4]  # each checkpoint evaluated (all processes) and recorded once
    assert (full / "metrics.json").exists() and (full / "run_complete.json").exists()
    last = _state(full / "checkpoint-4")
    assert last["global_step"] == 4
    assert last["epoch"] == pytest.approx(2 * ONE_PROCESS_EPOCH)  # data parallel: each process its own half
    # The sharded engine saved the checkpoint, and Hugging Face weights were gathered next to its own files.
    engine_files = {"cpu_fsdp": "pytorch_model_fsdp.bin", "cpu_zero3": "global_step4"}
    if config in engine_files:
        assert (full / "checkpoint-4" / engine_files[config]).exists()
    trained = _weights(full / "checkpoint-4")
    if "lora" in name:
        lora_b = [v for k, v in trained.items() if "lora_B" in k]
        assert lora_b and all(bool(v.abs().sum() > 0) for v in lora_b)  # the adapters trained (B starts at zero)
    else:
        base = load_file(Path(launch_caches[1]) / "model.safetensors")
        assert set(trained) == set(base) and all(trained[k].shape == base[k].shape for k in base)
        assert sum(not bool((trained[k] == base[k]).all()) for k in base) > len(base) // 2

    # SIGKILLed once checkpoint-2 is saved (before its evaluation), then --resume: continues at step 3 exactly as
    # the uninterrupted run did, and evaluates checkpoint-2 from the weights it loaded.
    seconds["killed"] = launch_experiments(
        config, ["run", name, "--profile", "smoke", "--output-dir", str(resumed)], tmp_path, wandb_dir,
        kill_at="saved:2",
    )  # fmt: skip
    assert not (resumed / "checkpoint-4").exists()
    seconds["resume"] = launch_experiments(
        config, ["run", name, "--profile", "smoke", "--output-dir", str(resumed), "--resume"], tmp_path, wandb_dir
    )
    again = _state(resumed / "checkpoint-4")
    assert again["global_step"] == 4 and _steps(resumed) == [0, 2, 4]
    logged, relogged = _rows(full), _rows(resumed)
    assert sorted(relogged) == [1, 2, 3, 4]
    for step in (3, 4):
        for key in ("train/loss", "train/grad_norm", "train/learning_rate"):
            assert relogged[step][key] == pytest.approx(logged[step][key], rel=1e-5, abs=1e-8), (step, key)
    resumed_weights = _weights(resumed / "checkpoint-4")
    assert max(float((resumed_weights[k] - trained[k]).abs().max()) for k in trained) < 1e-5
    for rel in ("checkpoint-2/eval/test", "checkpoint-2/eval/val", "checkpoint-4/eval/test", "checkpoint-4/eval/val"):
        assert _outputs(resumed / rel / "predictions.json") == _outputs(full / rel / "predictions.json"), rel
    assert _outputs(resumed / "predictions.json") == _outputs(full / "predictions.json")

    runs = read_offline_runs(wandb_dir).runs
    run_id = (resumed / "wandb_run_id").read_text().strip()
    assert (runs[runs.run_id == run_id]["state"] == "finished").all()  # the resumed session continued that run
    return seconds


LAYOUTS = {"cpu": "DDP", "cpu_fsdp": "FSDP2", "cpu_zero3": "ZeRO-3"}
METHODS = ["sft-full", "sft-lora", "grpo-p2", "grpo-p2-lora"]


@pytest.mark.slow  # each case: three launches, about 40 s on 2 CPU cores
@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("config", list(LAYOUTS))
def test_multi_process_run_killed_and_resumed_ends_as_the_uninterrupted_one(config, name, launch_caches, tmp_path):
    if config == "cpu_zero3":
        pytest.importorskip("deepspeed")
    seconds = _check_sharded_run(config, name, launch_caches, tmp_path)
    print(f"{LAYOUTS[config]} {name}: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))


@pytest.mark.slow  # one launch, about 10 s
@pytest.mark.parametrize("config", ["cpu_fsdp", "cpu_zero3"])
def test_checkpoint_evaluation_with_uneven_shards(config, launch_caches, tmp_path):
    """23 validation items in batches of 11: one process has two batches, the other one. A sharded model gathers
    its weights in every forward, so both processes must still call generate equally often."""
    if config == "cpu_zero3":
        pytest.importorskip("deepspeed")
    out = tmp_path / "run"
    launch_experiments(config, ["run", "sft-full", "--profile", "smoke", "--output-dir", str(out), "--set", "eval.val_items=23",
                     "--set", "eval.batch_size=11"], tmp_path, tmp_path / "w")  # fmt: skip
    assert _steps(out) == [0, 2, 4]
    metrics = json.loads((out / "checkpoint-4" / "eval" / "val" / "metrics.json").read_text())
    assert metrics["n"] == 23 and metrics["n_processes"] == 2


@pytest.fixture()
def toy_caches():
    """The toy world and toy instruct base, built in this process first (minutes, once per test session)."""
    from experiments.profiles import get_profile

    profile = get_profile("toy")
    return profile.data(), profile.resolve_model()


@pytest.mark.slow  # two launches per configuration, about 20 s each (after the toy base is built)
@pytest.mark.parametrize("config", ["cpu", "cpu_zero3"])
def test_shared_prompt_scoring_keeps_the_multi_process_gradient(config, toy_caches, tmp_path):
    """GRPO under DDP and under ZeRO-3 with the shared-prompt scoring pass (its prompt part runs outside the
    engine's forward) and without it: the same first step (same samples, so the same rewards, loss and gradient
    norm after the processes' reduction). The toy base is used because it earns rewards: the smoke profile's
    untrained model earns none, and with zero advantages the gradient is fp32 noise."""
    if config == "cpu_zero3":
        pytest.importorskip("deepspeed")
    logs = {}
    for shared in (True, False):
        out = tmp_path / f"shared-{shared}"
        launch_experiments(config, ["run", "grpo-p2", "--output-dir", str(out), "--set", "train.max_steps=1", "--set",
                         "train.save_every=1", "--set", "eval.at_start=false", "--set", "eval.val_items=8",
                         "--set", "train.logging_steps=1",  # the step's log row (the toy profile logs every 10)
                         "--set", f"grpo.shared_prompt_scoring={str(shared).lower()}"], tmp_path, tmp_path / "w")  # fmt: skip
        logs[shared] = next(h for h in _state(out / "checkpoint-1")["log_history"] if "loss" in h)
    assert logs[False]["reward_std"] > 0 and logs[False]["grad_norm"] > 1e-3  # a real learning signal
    for key in ("reward", "loss", "grad_norm", "kl"):
        assert logs[True][key] == pytest.approx(logs[False][key], rel=1e-4, abs=1e-7), key


def test_cpu_sharding_configurations_parse():
    from accelerate.commands.config.config_args import load_config_from_file

    fsdp = load_config_from_file(str(REPO / "launch" / "cpu_fsdp.yaml"))
    assert fsdp.distributed_type.value == "FSDP" and fsdp.num_processes == 2
    assert fsdp.fsdp_config["fsdp_version"] == 2
    assert fsdp.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # HF weights in every checkpoint
    zero3 = load_config_from_file(str(REPO / "launch" / "cpu_zero3.yaml"))
    assert zero3.distributed_type.value == "DEEPSPEED" and zero3.num_processes == 2
    assert zero3.deepspeed_config["zero_stage"] == 3
