"""Checkpoint storage policy: every checkpoint keeps its weights; only the latest keeps optimizer state.

At paper scale a full-SFT checkpoint is about 34 GB of fp32 weights plus 67 GB of AdamW moments (8.4B parameters),
and the paper saves one every 200 steps. Evaluating a checkpoint needs its weights only; resuming needs the optimizer,
scheduler and RNG state of the *latest* one. :class:`OptimizerStatePruner` therefore removes the optimizer and
scheduler state of every earlier checkpoint right after a new one is completely saved (``on_save`` runs after the
trainer wrote ``trainer_state.json``, its last file), so a kill at any moment leaves a resumable latest checkpoint.
``keep="all"`` (``--set train.keep_optimizer=all``) keeps everything.

What goes, per layout: ``optimizer.pt``, ``scheduler.pt`` and ``scaler.pt`` (one process, DDP); FSDP's
``optimizer.bin`` or ``optimizer_*`` folders; DeepSpeed's ``global_step*`` folders, only where the checkpoint also holds Hugging Face
weights (``model.safetensors*`` or ``adapter_model.safetensors``), since there they may be the only copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

OPTIMIZER_FILES = ("optimizer.pt", "optimizer.bin", "scheduler.pt", "scaler.pt")
KEEP_POLICIES = ("latest", "all")


def checkpoint_step(path: Path) -> int | None:
    name = path.name
    if not name.startswith("checkpoint-") or not name.removeprefix("checkpoint-").isdigit():
        return None
    return int(name.removeprefix("checkpoint-"))


def has_hf_weights(ckpt: Path) -> bool:
    return any(ckpt.glob("model*.safetensors*")) or (ckpt / "adapter_model.safetensors").exists()


def has_optimizer_state(ckpt: Path) -> bool:
    """Whether a checkpoint can resume training (optimizer state in any of the layouts above)."""
    return any(ckpt.glob("optimizer*")) or any(ckpt.glob("global_step*"))


def prune_optimizer_state(ckpt: Path) -> list[str]:
    """Remove a checkpoint's optimizer and scheduler state; returns what was removed."""
    removed = []
    for name in OPTIMIZER_FILES:
        if (ckpt / name).exists():
            (ckpt / name).unlink()
            removed.append(name)
    folders = list(ckpt.glob("optimizer_*")) + (list(ckpt.glob("global_step*")) if has_hf_weights(ckpt) else [])
    for folder in folders:
        if folder.is_dir():
            shutil.rmtree(folder)
            removed.append(folder.name + "/")
    return removed


class OptimizerStatePruner(TrainerCallback):
    def __init__(self, keep: str = "latest"):
        if keep not in KEEP_POLICIES:
            raise ValueError(f"train.keep_optimizer must be one of {', '.join(KEEP_POLICIES)}, got {keep!r}")
        self.keep = keep

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.keep == "all" or not state.is_world_process_zero:
            return
        for ckpt in Path(args.output_dir).glob("checkpoint-*"):
            step = checkpoint_step(ckpt)
            if step is not None and step < state.global_step:
                prune_optimizer_state(ckpt)
