"""Checkpoint storage: which checkpoints are complete, and the policy that only the latest keeps optimizer state.

A checkpoint is complete once its ``trainer_state.json`` (the trainer's last file) is written and parses: a save
cut short (a kill, a full disk) leaves a folder without it, which a resume skips, saying so
(:func:`resumable_checkpoint`). Every checkpoint keeps its weights; only the latest keeps optimizer state.

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

import errno
import json
import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from data.run_files import checkpoint_dir
from data.schema import DataError

# torch's zip writer reports a failed write without errno ("unexpected pos"): below this much free space, a failed
# save is taken to be a full disk.
LOW_DISK_BYTES = 64 * 2**20
OPTIMIZER_FILES = ("optimizer.pt", "optimizer.bin", "scheduler.pt", "scaler.pt")
KEEP_POLICIES = ("latest", "all")


def checkpoint_step(path: Path) -> int | None:
    name = path.name
    if not name.startswith("checkpoint-") or not name.removeprefix("checkpoint-").isdigit():
        return None
    return int(name.removeprefix("checkpoint-"))


TRAINER_STATE = "trainer_state.json"


def is_complete(ckpt: Path) -> bool:
    """Whether the trainer finished saving ``ckpt``: its last file, ``trainer_state.json``, is there and whole."""
    try:
        json.loads((ckpt / TRAINER_STATE).read_text())
    except (OSError, ValueError):
        return False
    return True


def checkpoints(run_dir: Path) -> list[Path]:
    """The ``checkpoint-<step>`` folders of a run directory, by step (complete or not)."""
    found = [p for p in Path(run_dir).glob("checkpoint-*") if p.is_dir() and checkpoint_step(p) is not None]
    return sorted(found, key=lambda p: checkpoint_step(p) or 0)


def resumable_checkpoint(run_dir: Path) -> tuple[Path | None, list[Path]]:
    """The latest complete checkpoint (None: there is none), and the incomplete ones after it, which a resume skips
    (a later save overwrites them)."""
    found = checkpoints(run_dir)
    complete = [p for p in found if is_complete(p)]
    latest = complete[-1] if complete else None
    after = (checkpoint_step(latest) or 0) if latest is not None else 0  # checkpoint-0 only holds step 0's eval
    return latest, [p for p in found if (checkpoint_step(p) or 0) > after and not is_complete(p)]


def fallback_advice(ckpt: Path) -> str:
    """What to do when ``ckpt`` cannot be loaded: the previous complete checkpoint, if any, and whether it resumes."""
    step = checkpoint_step(ckpt) or 0
    earlier = [p for p in checkpoints(ckpt.parent) if (checkpoint_step(p) or 0) < step and is_complete(p)]
    if not earlier:
        return "No earlier checkpoint is complete: start a new run with --output-dir."
    prev = earlier[-1]
    if has_optimizer_state(prev):
        return f"To resume from {prev.name} instead, move {ckpt} out of the run directory and rerun with --resume."
    return (
        f"The previous checkpoint, {prev}, keeps its weights only (train.keep_optimizer=latest), so the run "
        f"cannot resume exactly from it: evaluate it by path (python -m experiments eval --model {prev} ...) or "
        "start a new run with --output-dir (--set train.keep_optimizer=all keeps every checkpoint resumable)."
    )


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


def free_bytes(path: Path) -> int | None:
    """Free space on the file system holding ``path`` (its nearest existing parent); None if it cannot be read."""
    for p in (path, *path.parents):
        if p.exists():
            try:
                return shutil.disk_usage(p).free
            except OSError:
                return None
    return None


def is_disk_full(error: BaseException, where: Path) -> bool:
    """Whether a failed write was a full disk: ENOSPC anywhere in the exception chain, or a write error from torch's
    zip writer while the disk is (nearly) full."""
    seen: BaseException | None = error
    while seen is not None:
        if (isinstance(seen, OSError) and seen.errno == errno.ENOSPC) or "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    free = free_bytes(where)
    return "unexpected pos" in str(error) and free is not None and free < LOW_DISK_BYTES


class SaveFailureMixin:
    """A checkpoint save that fails on a full disk says so, names the partial checkpoint (which a resume skips) and
    the fix, instead of torch's ``[enforce fail at inline_container.cc] unexpected pos``."""

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        try:
            super()._save_checkpoint(model, trial)  # type: ignore[misc]
        except (OSError, RuntimeError) as e:
            folder = Path(self._get_output_dir(trial=trial)) / checkpoint_dir(self.state.global_step)  # type: ignore[attr-defined]
            if not is_disk_full(e, folder):
                raise
            free = free_bytes(folder)
            raise DataError(
                f"{folder}: no space left on device while saving this checkpoint ({free} bytes free). Everything "
                f"before it is kept, and a resume skips this partial {folder.name}: free space, then rerun with "
                "--resume (train.keep_optimizer=latest keeps optimizer state for the latest checkpoint only)"
            ) from e
