"""Load a checkpoint's weights into the live model exactly, or fail naming the checkpoint and the fix.

transformers 5.23 saves a Qwen2-Audio checkpoint in the hub layout (``audio_tower.*``, ``language_model.model.*``)
while the model in memory names its weights ``model.audio_tower.*``, ``model.language_model.*``: ``save_pretrained``
reverts the renaming that ``from_pretrained`` applies. ``Trainer._load_from_checkpoint`` loads that file with
``load_state_dict(strict=False)`` and no renaming, so on a resume not one key matched, nothing was loaded, and a
"resumed" full-parameter run went on from the base weights with only a logged warning (issue 20).

:func:`load_full_weights` maps the file's names to the model's through transformers' own saving rule
(``revert_weight_conversion``, the function ``save_pretrained`` uses), copies every tensor in place, and raises
:class:`~models.loading.CheckpointError` on any missing, unexpected or mis-shaped key; LoRA adapters get the same check
(:func:`models.loading.check_adapter_keys`, which evaluation by path uses too). :class:`StrictCheckpointLoadMixin`
puts both under the SFT and GRPO trainers' resume, and names the damaged file (with the previous checkpoint to fall
back on) when weights or optimizer state cannot be read.
FSDP and DeepSpeed checkpoints keep their own loaders (``load_fsdp_model``; ``deepspeed_load_checkpoint``, strict
for full weights), which read their own sharded files, not ``model.safetensors``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.loading import ADAPTER_WEIGHTS, CheckpointError, check_adapter_keys, key_mismatch
from trainers.checkpoint_storage import fallback_advice

WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"


def _damaged(path: Path, error: Exception) -> CheckpointError:
    return CheckpointError(f"{path} cannot be read ({type(error).__name__}: {error}); the file is damaged or "
                           f"incomplete. {fallback_advice(path.parent)}")  # fmt: skip


def read_tensors(path: Path) -> dict[str, Any]:
    """Every tensor of one safetensors file, on the CPU; a damaged file is a :class:`CheckpointError`."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises its own SafetensorError, or OSError on a short file
        raise _damaged(path, e) from None


def read_full_weights(ckpt: Path) -> dict[str, Any]:
    """The weights of a full-parameter checkpoint, one file or an index of shards, in the saved (hub) layout."""
    if (ckpt / WEIGHTS).exists():
        return read_tensors(ckpt / WEIGHTS)
    try:
        shards = sorted(set(json.loads((ckpt / WEIGHTS_INDEX).read_text())["weight_map"].values()))
    except (OSError, ValueError, KeyError) as e:
        raise _damaged(ckpt / WEIGHTS_INDEX, e) from None
    tensors: dict[str, Any] = {}
    for shard in shards:
        tensors.update(read_tensors(ckpt / shard))
    return tensors


def load_full_weights(model: Any, ckpt: str | Path) -> None:
    """Copy a full-parameter checkpoint into ``model`` in place; every key must match, or :class:`CheckpointError`.

    The saved names are mapped to the model's by applying ``save_pretrained``'s own rule to the model's state dict.
    A rule that transforms tensors (not only renames them) cannot be inverted in place: that is refused, not
    approximated.
    """
    import torch
    from transformers.core_model_loading import revert_weight_conversion

    ckpt = Path(ckpt)
    saved = read_full_weights(ckpt)
    live = model.state_dict()
    in_saved_layout = revert_weight_conversion(model, live)  # saved name -> the live tensor itself (a renaming)
    live_ids = {id(t) for t in live.values()}
    if any(id(t) not in live_ids for t in in_saved_layout.values()):
        raise NotImplementedError(
            f"{ckpt}: {type(model).__name__} saves some weights through a tensor conversion, which this loader "
            "cannot invert in place; resume support for this model family needs a loader of its own"
        )
    # A tied weight (lm_head = embed_tokens) may be saved once: it is loaded when its twin is.
    loaded_storage = {in_saved_layout[k].data_ptr() for k in saved.keys() & in_saved_layout.keys()}
    missing = sorted(k for k in in_saved_layout.keys() - saved.keys()
                     if in_saved_layout[k].data_ptr() not in loaded_storage)  # fmt: skip
    unexpected = sorted(saved.keys() - in_saved_layout.keys())
    common = saved.keys() & in_saved_layout.keys()
    mismatched = sorted(k for k in common if tuple(saved[k].shape) != tuple(in_saved_layout[k].shape))
    if missing or unexpected or mismatched:
        raise key_mismatch(ckpt, missing, unexpected, mismatched)
    with torch.no_grad():
        for key in sorted(common):
            in_saved_layout[key].copy_(saved[key])


class StrictCheckpointLoadMixin:
    """The resume of ``Trainer`` with exact weight loading (see the module docstring)."""

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        from transformers.trainer import _is_peft_model

        model = self.model if model is None else model  # type: ignore[attr-defined]
        ckpt = Path(resume_from_checkpoint)
        if getattr(self, "is_fsdp_enabled", False):  # FSDP reads its own sharded files (module docstring)
            return super()._load_from_checkpoint(resume_from_checkpoint, model)  # type: ignore[misc]
        if _is_peft_model(model):
            if not (ckpt / ADAPTER_WEIGHTS).exists():
                raise CheckpointError(f"{ckpt}: no {ADAPTER_WEIGHTS}, so this LoRA run cannot resume from it. "
                                      f"{fallback_advice(ckpt)}")  # fmt: skip
            # Before loading, so that a bad file changes nothing; a damaged one is named with the fallback.
            check_adapter_keys(model, ckpt, model.active_adapters[0], if_damaged=fallback_advice(ckpt))
            result = model.load_adapter(str(ckpt), model.active_adapters[0], is_trainable=True)
            if result is not None and (result.missing_keys or result.unexpected_keys):
                raise key_mismatch(ckpt, list(result.missing_keys), list(result.unexpected_keys), [])
            return None
        if not ((ckpt / WEIGHTS).exists() or (ckpt / WEIGHTS_INDEX).exists()):
            raise CheckpointError(f"{ckpt}: no {WEIGHTS} (nor {WEIGHTS_INDEX}), so training cannot resume from it. "
                                  f"{fallback_advice(ckpt)}")  # fmt: skip
        load_full_weights(model, ckpt)
        return None

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        try:
            super()._load_optimizer_and_scheduler(checkpoint)  # type: ignore[misc]
        except (RuntimeError, OSError, EOFError, ValueError) as e:  # e.g. a truncated optimizer.pt
            if checkpoint is None:
                raise
            raise CheckpointError(f"{checkpoint}: its optimizer or scheduler state cannot be read "
                                  f"({type(e).__name__}: {e}). {fallback_advice(Path(checkpoint))}") from None  # fmt: skip
