"""The model families the suite supports, and which one a checkpoint, model or processor belongs to.

    >>> from models.registry import family_of_checkpoint
    >>> family_of_checkpoint("Qwen/Qwen2.5-Omni-7B").name      # reads config.json's model_type
    'qwen2.5-omni'

A checkpoint of an unknown ``model_type`` is refused with the list of supported families.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data.schema import DataError
from models.family import ModelFamily
from models.qwen2_5_omni import QWEN2_5_OMNI
from models.qwen2_audio import QWEN2_AUDIO
from models.qwen3_omni import QWEN3_OMNI

FAMILIES: dict[str, ModelFamily] = {f.name: f for f in (QWEN2_AUDIO, QWEN2_5_OMNI, QWEN3_OMNI)}


def supported() -> str:
    """One line per family: name, model_type values, released checkpoints (for error messages and docs)."""
    return "\n".join(
        f"  {f.name}: model_type {' / '.join(f.model_types)} (e.g. {', '.join(f.hub_ids)}; tiny twin: {f.tiny_name})"
        for f in FAMILIES.values()
    )


def family_for_model_type(model_type: str | None, where: str | Path = "the checkpoint") -> ModelFamily:
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    raise DataError(f"{where}: model_type {model_type!r} is not a supported model family. Supported:\n{supported()}")


def base_model_of(name_or_path: str | Path) -> str:
    """The model a checkpoint's weights load into: a LoRA checkpoint's base model, else the checkpoint itself."""
    import json

    adapter = Path(str(name_or_path)) / "adapter_config.json"
    return json.loads(adapter.read_text())["base_model_name_or_path"] if adapter.exists() else str(name_or_path)


def read_config(name_or_path: str | Path) -> Any:
    """A checkpoint's config (a LoRA checkpoint's: its base model's), from a directory or the hub."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(base_model_of(name_or_path), trust_remote_code=False)


def family_of_checkpoint(name_or_path: str | Path) -> ModelFamily:
    config = read_config(name_or_path)
    return family_for_model_type(getattr(config, "model_type", None), name_or_path)


def family_of(obj: Any) -> ModelFamily:
    """The family of a loaded model (plain, PEFT- or accelerate-wrapped) or of a processor."""
    if hasattr(obj, "tokenizer") and hasattr(obj, "feature_extractor"):  # a processor
        name = type(obj).__name__.removeprefix("AudioOnly")  # models/omni.py's audio-only processors
        for family in FAMILIES.values():
            if name == family.processor_class_name:
                return family
        raise DataError(f"processor {type(obj).__name__} belongs to no supported model family. Supported:\n"
                        f"{supported()}")  # fmt: skip
    model = obj
    for _ in range(4):  # PEFT, DDP, FSDP or DeepSpeed wrappers (a DeepSpeedEngine's own ``config`` is its ds config)
        if getattr(getattr(model, "config", None), "model_type", None) is not None:
            break
        if hasattr(model, "get_base_model"):
            model = model.get_base_model()
        elif hasattr(model, "module"):
            model = model.module
    config = getattr(model, "config", None)
    return family_for_model_type(getattr(config, "model_type", None), type(obj).__name__)
