"""Sharded training on the CPU: FSDP2 (launch/cpu_fsdp.yaml) and DeepSpeed ZeRO-3 (launch/cpu_zero3.yaml), two
processes on gloo, for sft-lora, sft-full and grpo-p2 on the smoke profile: train with checkpoint evaluation, save,
and resume from a checkpoint to exactly the uninterrupted run.

accelerate 1.15 has no CPU path for either; ``data.distributed.allow_cpu_sharding`` (applied by
``python -m experiments`` when launched without a GPU) supplies it. ZeRO-3 needs ``deepspeed`` (skipped without it).
"""

from __future__ import annotations

import json
import shutil
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


def _cut_back_to(run: Path, copy: Path, step: int) -> None:
    """``copy`` = ``run`` as it was right after saving checkpoint-``step`` (an interrupted run)."""
    shutil.copytree(run, copy)
    for p in copy.glob("checkpoint-*"):
        if int(p.name.split("-")[1]) > step:
            shutil.rmtree(p)
    for name in ("run_complete.json", "predictions.json", "metrics.json"):
        (copy / name).unlink(missing_ok=True)
    shutil.rmtree(copy / "final", ignore_errors=True)
    rows = [json.loads(x) for x in (copy / "checkpoint_evals.jsonl").read_text().splitlines()]
    kept = [{**r, "dir": r["dir"].replace(str(run), str(copy))} for r in rows if r["step"] <= step]
    (copy / "checkpoint_evals.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))


def _check_sharded_run(config: str, name: str, launch_caches, tmp_path: Path) -> dict[str, float]:
    from safetensors.torch import load_file

    from analysis.runs import read_offline_runs

    wandb_dir = tmp_path / "w"
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    # keep_optimizer=all: the test cuts the run back to checkpoint-2, which by default keeps no optimizer state.
    seconds = {"run": launch_experiments(config, ["run", name, "--profile", "smoke", "--output-dir", str(full),
                                                  "--set", "train.keep_optimizer=all"], tmp_path, wandb_dir)}  # fmt: skip

    assert _steps(full) == [0, 2, 4]  # each checkpoint evaluated (all processes) and recorded once
    assert (full / "metrics.json").exists() and (full / "run_complete.json").exists()
    last = _state(full / "checkpoint-4")
    assert last["global_step"] == 4
    assert last["epoch"] == pytest.approx(2 * ONE_PROCESS_EPOCH)  # data parallel: each process its own half
    # The sharded engine saved the checkpoint, and Hugging Face weights were gathered next to its own files.
    engine_files = {"cpu_fsdp": "pytorch_model_fsdp.bin", "cpu_zero3": "global_step4"}
    assert (full / "checkpoint-4" / engine_files[config]).exists()
    trained = _weights(full / "checkpoint-4")
    if name == "sft-lora":
        lora_b = [v for k, v in trained.items() if "lora_B" in k]
        assert lora_b and all(bool(v.abs().sum() > 0) for v in lora_b)  # the adapters trained (B starts at zero)
    else:
        base = load_file(Path(launch_caches[1]) / "model.safetensors")
        assert set(trained) == set(base) and all(trained[k].shape == base[k].shape for k in base)
        assert sum(not bool((trained[k] == base[k]).all()) for k in base) > len(base) // 2

    # Interrupted after checkpoint-2, then --resume: continues at step 3 exactly as the uninterrupted run did.
    _cut_back_to(full, resumed, 2)
    seconds["resume"] = launch_experiments(
        config, ["run", name, "--profile", "smoke", "--output-dir", str(resumed), "--resume"], tmp_path, wandb_dir
    )
    again = _state(resumed / "checkpoint-4")
    assert again["global_step"] == 4 and _steps(resumed) == [0, 2, 4]
    logged = {h["step"]: h for h in last["log_history"] if "loss" in h}
    relogged = {h["step"]: h for h in again["log_history"] if "loss" in h}
    assert sorted(relogged) == [1, 2, 3, 4]  # steps 1-2 come from checkpoint-2's state, 3-4 were trained again
    for step in (3, 4):
        for key in ("loss", "grad_norm", "learning_rate"):
            assert relogged[step][key] == pytest.approx(logged[step][key], rel=1e-3, abs=1e-8), (step, key)
    resumed_weights = _weights(resumed / "checkpoint-4")
    assert max(float((resumed_weights[k] - trained[k]).abs().max()) for k in trained) < 1e-5

    runs = read_offline_runs(wandb_dir).runs  # the resumed session continues the same W&B run
    assert len(runs) == 1 and runs.iloc[0]["state"] == "finished"
    assert runs.iloc[0]["run_id"] == (resumed / "wandb_run_id").read_text().strip()
    return seconds


@pytest.mark.slow  # each case: two launches, about 25 s on 2 CPU cores
@pytest.mark.parametrize("name", ["sft-lora", "sft-full", "grpo-p2"])
def test_fsdp2_on_cpu_trains_saves_and_resumes(name, launch_caches, tmp_path):
    seconds = _check_sharded_run("cpu_fsdp", name, launch_caches, tmp_path)
    print(f"FSDP2 {name}: run {seconds['run']:.1f} s, resume {seconds['resume']:.1f} s")


@pytest.mark.slow  # each case: two launches, about 25 s on 2 CPU cores
@pytest.mark.parametrize("name", ["sft-lora", "sft-full", "grpo-p2"])
def test_zero3_on_cpu_trains_saves_and_resumes(name, launch_caches, tmp_path):
    pytest.importorskip("deepspeed")
    seconds = _check_sharded_run("cpu_zero3", name, launch_caches, tmp_path)
    print(f"ZeRO-3 {name}: run {seconds['run']:.1f} s, resume {seconds['resume']:.1f} s")


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
