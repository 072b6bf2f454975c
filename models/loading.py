"""Load any supported model family's model and processor from a hub id or a local directory, strictly.

:func:`load_model_and_processor` detects the family from the checkpoint's ``model_type`` (``models/registry.py``),
loads safetensors only, never ``trust_remote_code``, and gives a processor that pads text on the left (batched
generation) but audio on the *right*. (``AutoProcessor.from_pretrained(path, padding_side="left")`` would left-pad
the waveform too, and Qwen2-Audio then reads padding instead of audio: notes section 6. We never pass it.)
An Omni checkpoint loads its thinker only (``models/omni.py``).

Any missing, unexpected or mis-shaped weight is a :class:`CheckpointError` (transformers would only warn, and
initialise the missing weights at random); so is a LoRA adapter file whose names or shapes do not match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data.schema import DataError
from models.saving import prepare_processor

ADAPTER_WEIGHTS = "adapter_model.safetensors"


class CheckpointError(DataError):
    """A checkpoint whose weights cannot be loaded exactly: the message names it, what is wrong, and what to do."""


def key_mismatch(
    where: str | Path, missing: list[str], unexpected: list[str], mismatched: list[str]
) -> CheckpointError:
    """The error for a checkpoint whose weight names or shapes do not match the model's (a few of each named)."""

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:5]) + (f", ... ({len(keys)} in all)" if len(keys) > 5 else "")

    parts = [f"{len(missing)} missing ({some(missing)})" if missing else "",
             f"{len(unexpected)} unexpected ({some(unexpected)})" if unexpected else "",
             f"{len(mismatched)} with another shape ({some(mismatched)})" if mismatched else ""]  # fmt: skip
    return CheckpointError(
        f"{where}: its weights do not match the model's ({'; '.join(p for p in parts if p)}), so loading it would "
        "leave weights unloaded. Is it a checkpoint of this model? Start a new run with --output-dir, or evaluate "
        "the right checkpoint by path (python -m experiments eval --model ...)"
    )


def check_adapter_keys(model: Any, ckpt: str | Path, adapter_name: str = "default", *, if_damaged: str = "") -> None:
    """Every adapter tensor saved in ``ckpt`` names one of the PEFT ``model``'s adapter weights, with its shape, and
    every one of them is saved; else :class:`CheckpointError` (``if_damaged``: what to do, added when the file
    cannot be read)."""
    from peft import get_peft_model_state_dict
    from safetensors import safe_open

    path = Path(ckpt) / ADAPTER_WEIGHTS
    try:
        with safe_open(str(path), framework="pt") as f:
            saved = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as e:  # safetensors' own SafetensorError, or OSError on a short file
        raise CheckpointError(
            f"{path} cannot be read ({type(e).__name__}: {e}); the file is damaged or incomplete. {if_damaged}".strip()
        ) from None
    expected = {k: tuple(v.shape) for k, v in get_peft_model_state_dict(model, adapter_name=adapter_name).items()}
    missing, unexpected = sorted(expected.keys() - saved.keys()), sorted(saved.keys() - expected.keys())
    mismatched = sorted(k for k in saved.keys() & expected.keys() if saved[k] != expected[k])
    if missing or unexpected or mismatched:
        raise key_mismatch(Path(ckpt), missing, unexpected, mismatched)


def load_model(base: str | Path, *, dtype: Any, **from_pretrained: Any) -> Any:
    """A full checkpoint's model of its family's class (an Omni checkpoint's thinker), every weight loaded: a missing,
    stray or mis-shaped weight is refused (transformers only warns and initialises it at random). ``from_pretrained``
    passes on, e.g. ``device_map`` or ``attn_implementation`` (how TRL builds GRPO's reference model)."""
    from models.registry import family_for_model_type, read_config

    config = read_config(base)
    family = family_for_model_type(getattr(config, "model_type", None), base)
    model, info = family.model_class().from_pretrained(
        str(base), config=family.model_config(config), dtype=dtype, use_safetensors=True, trust_remote_code=False,
        output_loading_info=True, **from_pretrained,
    )  # fmt: skip
    mismatched = [str(m[0]) if isinstance(m, tuple) else str(m) for m in info.get("mismatched_keys", [])]
    if info.get("missing_keys") or info.get("unexpected_keys") or mismatched:
        raise key_mismatch(base, sorted(info.get("missing_keys", [])), sorted(info.get("unexpected_keys", [])),
                           mismatched)  # fmt: skip
    return model


def load_model_and_processor(name_or_path: str | Path, *, dtype: Any = None, device: Any = None):
    """Load a model + processor of any supported family from a hub id or local directory (see module docstring).

    A directory with ``adapter_config.json`` (a LoRA checkpoint) loads its base model and merges the adapters.
    """
    import torch

    from models.registry import base_model_of, family_of

    name = str(name_or_path)
    if dtype is None:
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    adapter = Path(name) / "adapter_config.json"
    # A LoRA checkpoint holds adapters (and the processor): load its base model, then the adapters on top.
    model = load_model(base_model_of(name), dtype=dtype)
    processor = prepare_processor(family_of(model).load_processor(name))  # the family from the loaded config
    if adapter.exists():
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(model, name)
        check_adapter_keys(peft_model, name)
        model = peft_model.merge_and_unload()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    model.eval()
    return model, processor


def audio_window_seconds(processor: Any) -> float:
    """The processor's audio window (30 s for the real models, 2 s for the tiny ones): longer clips are cut."""
    return float(processor.feature_extractor.chunk_length)
