"""A killed run, resumed, ends exactly where the uninterrupted run ends: losses, weights and predictions.

Each method (full SFT, LoRA SFT, full GRPO, GRPO-LoRA) runs once uninterrupted on the smoke profile (4 steps, a
checkpoint every 2). A second run of it is SIGKILLed (``tests/kill_at.py``: the whole process group, at an exact
moment) and resumed with ``--resume``; then the training rows after the checkpoint, the final weights, every
prediction and GRPO's sampled completions must equal the uninterrupted run's, bit for bit (one CPU process,
deterministic algorithms). Comparing the state itself is the point: a resume that loaded nothing (the full-parameter runs until issue 20) still counted
the right steps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from experiments.__main__ import main
from tests.helpers import REPO

WEIGHTS = {"sft-full": "model.safetensors", "sft-lora": "adapter_model.safetensors",
           "grpo-p2": "model.safetensors", "grpo-p2-lora": "adapter_model.safetensors"}  # fmt: skip
STEP = "train/global_step"
TIMING = ("step_time", "runtime", "per_second")  # wall-clock keys: the only ones that may differ between runs


@pytest.fixture()
def wandb_dir(tmp_path, monkeypatch):
    d = tmp_path / "wandb"
    monkeypatch.setenv("WANDB_DIR", str(d))
    return d


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, smoke_world, tiny_dir):
    """name -> the run directory of an uninterrupted smoke run (made on first use, once per module)."""
    root = tmp_path_factory.mktemp("uninterrupted")
    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            out = root / name
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("WANDB_DIR", str(root / "wandb"))
                assert main(["run", name, "--profile", "smoke", "--output-dir", str(out)]) == 0
            done[name] = out
        return done[name]

    return get


def killed_run(name: str, out: Path, moment: str) -> None:
    """Start ``name`` in a process of its own and SIGKILL it at ``moment`` (see tests/kill_at.py)."""
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}  # never the pytest process's W&B service
    env["PYTHONPATH"] = str(REPO)
    cmd = [sys.executable, str(REPO / "tests" / "kill_at.py"), moment, "run", name, "--profile", "smoke",
           "--output-dir", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300, start_new_session=True)
    assert proc.returncode == -9, f"expected a SIGKILL at {moment}, got rc {proc.returncode}:\n{proc.stderr[-3000:]}"


def resume(name: str, out: Path) -> int:
    return main(["run", name, "--profile", "smoke", "--output-dir", str(out), "--resume"])


def train_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in rows]


def eval_rows(run_dir: Path) -> list[dict]:
    """The evaluation record, by step, less the directory each evaluation was written to."""
    rows = [json.loads(line) for line in (run_dir / "checkpoint_evals.jsonl").read_text().splitlines()]
    return sorted(({k: v for k, v in r.items() if k != "dir"} for r in rows), key=lambda r: r["step"])


def completion_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "completions.jsonl").read_text().splitlines()]


def weights(run_dir: Path, name: str, step: int = 4) -> dict[str, torch.Tensor]:
    return load_file(run_dir / f"checkpoint-{step}" / WEIGHTS[name])


def outputs(path: Path) -> list[tuple[str, str]]:
    return [(r["id"], r["raw_output"]) for r in json.loads(path.read_text())]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} of {len(a)} tensors differ, e.g. {differ[:3]}"


def assert_same_run(resumed: Path, reference: Path, name: str) -> None:
    """Same training rows, same final weights, same predictions at every checkpoint (on each benchmark and val) and
    at the end, and the same evaluation records (every benchmark's keys included)."""
    assert train_rows(resumed) == train_rows(reference)
    assert_same_weights(weights(resumed, name), weights(reference, name))
    assert eval_rows(resumed) == eval_rows(reference)
    assert any("eval/mmar/avg" in r for r in eval_rows(resumed))  # the second benchmark is in the record
    for step in (2, 4):
        for split in ("test", "mmar", "val"):
            rel = Path(f"checkpoint-{step}") / "eval" / split / "predictions.json"
            assert outputs(resumed / rel) == outputs(reference / rel), f"{rel} differs"
    assert outputs(resumed / "predictions.json") == outputs(reference / "predictions.json")
    if name.startswith("grpo"):  # the sampled completions: what a resume samples again is what the run sampled
        assert completion_rows(resumed) == completion_rows(reference)
        assert sorted({r[STEP] for r in completion_rows(resumed)}) == [1, 2, 3, 4]
    assert (resumed / "run_complete.json").exists()


@pytest.mark.parametrize("name", list(WEIGHTS))
def test_killed_after_a_checkpoint_resumes_exactly(name, uninterrupted, tmp_path, wandb_dir):
    reference = uninterrupted(name)
    # Steps 3-4 changed the weights: a resume that skipped loading checkpoint-2 could not match by accident.
    at_2 = weights(reference, name, step=2)
    assert any(not torch.equal(at_2[k], v) for k, v in weights(reference, name).items())

    out = tmp_path / name
    killed_run(name, out, "saved:2")  # checkpoint-2 saved, not yet evaluated: the resume evaluates it
    assert not (out / "checkpoint-4").exists() and not (out / "run_complete.json").exists()
    assert resume(name, out) == 0
    assert_same_run(out, reference, name)
    assert [r[STEP] for r in train_rows(out)] == [1, 2, 3, 4]


@pytest.mark.parametrize("name", list(WEIGHTS))
def test_killed_after_the_last_checkpoint_evaluates_its_weights(name, uninterrupted, tmp_path, wandb_dir):
    """Killed once the last checkpoint is saved: the resume trains no further and evaluates *that* checkpoint."""
    reference = uninterrupted(name)
    out = tmp_path / name
    killed_run(name, out, "saved:4")
    assert resume(name, out) == 0
    assert_same_run(out, reference, name)
    # Not the base model's answers (what a resume that loaded nothing evaluated as "final").
    assert outputs(out / "predictions.json") != outputs(out / "checkpoint-0" / "eval" / "test" / "predictions.json")


def test_a_deleted_training_log_is_rebuilt_from_the_checkpoint(uninterrupted, tmp_path, wandb_dir, capsys):
    from analysis.runs import history_of, read_offline_runs

    reference = uninterrupted("sft-full")
    out = tmp_path / "sft-full"
    killed_run("sft-full", out, "evaluated:2")
    (out / "train_log.jsonl").unlink()
    assert resume("sft-full", out) == 0
    assert "2 training rows up to step 2 were missing" in capsys.readouterr().out
    assert train_rows(out) == train_rows(reference)
    run_id = (out / "wandb_run_id").read_text().strip()
    hist = history_of(read_offline_runs(wandb_dir), run_id)
    assert sorted(set(hist.dropna(subset=["train/loss"])[STEP].astype(int))) == [1, 2, 3, 4]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_weights_name_the_checkpoint_and_the_previous_one(uninterrupted, tmp_path, wandb_dir, capsys):
    out = tmp_path / "sft-full"
    shutil.copytree(uninterrupted("sft-full"), out)
    (out / "run_complete.json").unlink()  # killed after its last save: a resume loads checkpoint-4
    _truncate(out / "checkpoint-4" / "model.safetensors")
    assert resume("sft-full", out) == 2
    err = capsys.readouterr().err
    assert str(out / "checkpoint-4" / "model.safetensors") in err and "damaged" in err
    assert "checkpoint-2" in err and "keeps its weights only" in err  # the fallback, and why it cannot resume


def test_truncated_adapters_name_the_checkpoint_and_the_previous_one(uninterrupted, tmp_path, wandb_dir, capsys):
    out = tmp_path / "sft-lora"
    shutil.copytree(uninterrupted("sft-lora"), out)
    (out / "run_complete.json").unlink()
    _truncate(out / "checkpoint-4" / "adapter_model.safetensors")
    assert resume("sft-lora", out) == 2
    err = capsys.readouterr().err
    assert str(out / "checkpoint-4" / "adapter_model.safetensors") in err and "damaged" in err
    assert "checkpoint-2" in err and "keeps its weights only" in err


def test_truncated_optimizer_state_names_the_file(tmp_path, wandb_dir, capsys):
    out = tmp_path / "sft-full"
    killed_run("sft-full", out, "saved:2")
    _truncate(out / "checkpoint-2" / "optimizer.pt")
    assert resume("sft-full", out) == 2
    err = capsys.readouterr().err
    assert str(out / "checkpoint-2") in err and "optimizer or scheduler state cannot be read" in err


def test_a_checkpoint_whose_keys_do_not_match_is_refused(tiny_dir, tmp_path):
    """The pre-issue-20 failure itself: weights saved under the in-memory names match none of the model's keys."""
    from safetensors.torch import save_file

    from models.loading import load_model_and_processor
    from trainers.checkpoint_load import CheckpointError, load_full_weights

    model, _ = load_model_and_processor(tiny_dir, device="cpu")
    ckpt = tmp_path / "checkpoint-2"
    ckpt.mkdir()
    state = {k: v.clone() for k, v in model.state_dict().items() if k != "lm_head.weight"}  # tied: saved once
    save_file(state, ckpt / "model.safetensors")
    with pytest.raises(CheckpointError, match="missing") as e:
        load_full_weights(model, ckpt)
    assert "unexpected" in str(e.value) and str(ckpt) in str(e.value)


def test_exact_load_copies_every_saved_weight(tiny_dir, tmp_path):
    from models.loading import load_model_and_processor
    from trainers.checkpoint_load import load_full_weights

    model, _ = load_model_and_processor(tiny_dir, device="cpu")
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    load_full_weights(model, Path(tiny_dir))  # the hub layout, as every checkpoint is saved
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in saved.items())


def test_a_save_that_fills_the_disk_says_so_and_the_partial_checkpoint_is_skipped(
    uninterrupted, tmp_path, wandb_dir, monkeypatch, capsys
):
    import errno

    from transformers import Trainer

    original = Trainer._save_optimizer_and_scheduler

    def full_disk(self, output_dir):
        if self.state.global_step == 4:
            raise OSError(errno.ENOSPC, "No space left on device", str(Path(output_dir) / "optimizer.pt"))
        return original(self, output_dir)

    out = tmp_path / "sft-full"
    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", full_disk)
    assert main(["run", "sft-full", "--profile", "smoke", "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no space left on device" in err and str(out / "checkpoint-4") in err and "--resume" in err
    assert (out / "checkpoint-4" / "model.safetensors").exists()  # the partial checkpoint left behind
    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", original)

    assert resume("sft-full", out) == 0
    assert "checkpoint-4: incomplete" in capsys.readouterr().out
    assert_same_run(out, uninterrupted("sft-full"), "sft-full")


def test_a_torch_write_failure_on_a_nearly_full_disk_counts_as_full(monkeypatch, tmp_path):
    from trainers import checkpoint_storage

    failure = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4736 vs 4624")
    monkeypatch.setattr(checkpoint_storage, "free_bytes", lambda path: 1024)
    assert checkpoint_storage.is_disk_full(failure, tmp_path)
    monkeypatch.setattr(checkpoint_storage, "free_bytes", lambda path: 10 * 2**30)
    assert not checkpoint_storage.is_disk_full(failure, tmp_path)  # plenty of space: some other write error
    assert not checkpoint_storage.is_disk_full(RuntimeError("shape mismatch"), tmp_path)
