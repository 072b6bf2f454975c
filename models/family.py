"""The one interface every model family implements, and the speed switches each one declares exact.

A family (``models/qwen2_audio.py``, ``models/qwen2_5_omni.py``, ``models/qwen3_omni.py``) is one
:class:`ModelFamily` instance: how to load its model and processor, how many audio tokens a clip becomes, its
placeholder and chat convention, where its audio encoder and language model live, its tiny offline twin, its released
checkpoints' shapes with random weights (for benchmarks), and which of the suite's speed switches are exact for it. Nothing outside ``models/`` names a family's classes: the rest of
the suite asks :func:`models.registry.family_of` for the family of a model, processor or checkpoint and calls it.
``docs/models.md`` says how to add a family.

A switch that is not exact for a family *stands aside* (the plain path runs) and says so once per process
(:meth:`ModelFamily.allows`), so a run never silently takes a shortcut that changes its numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

# The suite's speed switches (experiments.spec names them; each has a test against the plain path).
SWITCHES = {
    "valid_frame_encoder": "the audio encoder on valid frames only (models/audio_encoder.py)",
    "distinct_clip_encoder": "each distinct clip of a batch encoded once (models/audio_encoder.py)",
    "shared_prompt_prefill": "each distinct GRPO prompt prefilled once when sampling (trainers/group_prefill.py)",
    "shared_prompt_scoring": "each distinct GRPO prompt run once when scoring (trainers/group_prefill.py)",
    "merged_lora_generation": "GRPO-LoRA sampling from merged adapter weights (trainers/lora_generation.py)",
    "static_cache": "static-cache decoding in the evaluator (models/evaluate.py)",
}
_SAID: set[tuple[str, str]] = set()


class ModelFamily:
    """One model family behind the suite's seam. Subclasses fill in the class attributes and the methods."""

    name: str = ""  # the suite's name: "qwen2-audio"
    title: str = ""  # for people: "Qwen2-Audio"
    model_types: tuple[str, ...] = ()  # config.json "model_type" values this family loads
    hub_ids: tuple[str, ...] = ()  # released checkpoints, for the docs and the error that lists families
    tiny_name: str = ""  # the name of its tiny offline twin (``--model tiny-...``)
    # transformers class names (imported on first use): the model class this suite loads, and its processor's.
    model_class_name: str = ""
    processor_class_name: str = ""
    # Parts of the model the suite never feeds (a vision tower): frozen for training, so that data parallel runs
    # see no unused trainable parameter and the optimizer holds no state for them.
    unused_parts: tuple[str, ...] = ()
    # switch name -> why it is not exact for this family (absent: exact, tested against the plain path).
    inexact_switches: dict[str, str] = {}

    def lora_target_modules(self, model: Any, targets: str) -> str | list[str]:
        """What PEFT's ``target_modules`` gets for the experiment's ``lora.targets`` regex (by default: the regex)."""
        return targets

    # -- loading ---------------------------------------------------------------------------------------------------
    def model_class(self) -> type:
        return transformers_class(self.model_class_name)

    def model_config(self, config: Any) -> Any:
        """The config the model class takes, from a checkpoint's config (an Omni checkpoint's: its thinker's)."""
        return config

    def load_processor(self, name_or_path: str | Path) -> Any:
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(str(name_or_path), trust_remote_code=False)

    # -- audio -----------------------------------------------------------------------------------------------------
    def audio_token_count(self, n_frames: int) -> int:
        """Audio tokens for ``n_frames`` valid mel frames."""
        raise NotImplementedError

    audio_tokens_per_second: float = 25.0  # for planning batches of similar length only
    # True when the processor pads every clip to the window (Qwen2-Audio's Whisper layout): featurize's fast path
    # reproduces exactly that; a family that pads to the longest clip uses its processor.
    pads_audio_to_window: bool = True

    # -- parts -----------------------------------------------------------------------------------------------------
    def backbone(self, model: Any) -> Any:
        """The module holding ``audio_tower`` and ``language_model`` (through PEFT or other thin wrappers)."""
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        for _ in range(4):
            if hasattr(base, "audio_tower"):
                return base
            base = getattr(base, "model", None)
            if base is None:
                break
        raise TypeError(f"no audio_tower found in {type(model).__name__} ({self.title})")

    def audio_encoder(self, model: Any) -> Any:
        return self.backbone(model).audio_tower

    def language_model(self, model: Any) -> Any:
        return self.backbone(model).language_model

    def freeze_unused_parts(self, model: Any) -> list[str]:
        """Freeze :attr:`unused_parts`; returns their names (for the run's record)."""
        frozen = []
        for part in self.unused_parts:
            module = getattr(self.backbone(model), part, None)
            if module is not None:
                module.requires_grad_(False)
                frozen.append(part)
        return frozen

    # -- tiny twin -------------------------------------------------------------------------------------------------
    def build_tiny(self, seed: int = 0, *, words: Iterable[str] | None = None) -> tuple[Any, Any]:
        """A randomly initialised tiny model and its processor, built offline; same seed and words: same weights."""
        raise NotImplementedError

    def save_tiny(self, model: Any, processor: Any, out_dir: Path) -> Path:
        """Save a tiny twin in its hub checkpoint's layout, so that loading it runs the real loading path."""
        from models.saving import save_model

        return save_model(model, processor, out_dir)

    def tiny_sources(self) -> list[str]:
        """The modules whose code defines the tiny twin (a change rebuilds it)."""
        return ["models.tokenizer", type(self).__module__]

    # -- full-size shapes, random weights (benchmarks: bench/shapes.py) ---------------------------------------------
    # shape name ("7b") -> the released checkpoint's numbers: "hub_id", "audio" and "text" (config keyword arguments,
    # each number's source in a comment beside it), "audio_seconds" (the processor's audio window).
    full_shapes: dict[str, dict[str, Any]] = {}

    def random_processor(self, shape: str) -> Any:
        """The tiny offline processor with the real model's audio window (its token ids are a subset of the real
        vocabulary): no download, and featurisation of the real geometry."""
        raise NotImplementedError

    def random_config(self, shape: str, processor: Any) -> Any:
        """The config :meth:`model_class` takes for ``shape``, its special token ids from ``processor``."""
        raise NotImplementedError

    def full_shape(self, shape: str) -> dict[str, Any]:
        if shape not in self.full_shapes:
            raise KeyError(f"{self.title} has no full-size shape {shape!r}; valid: {', '.join(self.full_shapes)}")
        return self.full_shapes[shape]

    def build_random(self, shape: str, device: Any = None, dtype: Any = None) -> tuple[Any, Any]:
        """``(model, processor)`` of a released checkpoint's shape with random weights (``dtype``, default bf16),
        built directly on ``device`` (default: torch's current default device, so ``with torch.device("meta")``
        builds it without memory). Every matrix has the real size; the outputs mean nothing. No download."""
        import torch

        self.full_shape(shape)  # an unknown shape is refused before anything is built
        processor = self.random_processor(shape)
        config = self.random_config(shape, processor)
        config._attn_implementation = "sdpa"
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype or torch.bfloat16)
        try:
            with torch.device(device if device is not None else torch.get_default_device()):
                model = self.model_class()(config)
        finally:
            torch.set_default_dtype(previous)
        model.generation_config = tiny_generation_config(processor.tokenizer)
        return model.eval(), processor

    # -- positions for the shared-prompt switches ---------------------------------------------------------------------
    def rope_positions(self, model: Any, input_ids: Any, attention_mask: Any, feature_attention_mask: Any) -> Any:
        """``(position_ids, rope_deltas)`` exactly as the model's plain forward computes them for this batch, for a
        family whose positions are not the 1-D ones the attention mask gives (multimodal RoPE); ``None`` for a
        1-D family (the shared-prompt switches then use the mask's positions, as the plain pass does)."""
        return None

    def continue_positions(self, model: Any, rope_deltas: Any) -> None:
        """Set the state the model's cached decoding continues its positions from (a no-op for a 1-D family)."""

    # -- switches --------------------------------------------------------------------------------------------------
    def allows(self, switch: str, requested: bool = True) -> bool:
        """Whether ``switch`` may run for this family: requested and exact. Standing aside is said once."""
        if switch not in SWITCHES:
            raise KeyError(f"unknown speed switch {switch!r}; known: {', '.join(SWITCHES)}")
        if not requested:
            return False
        why = self.inexact_switches.get(switch)
        if why is None:
            return True
        if (self.name, switch) not in _SAID:
            _SAID.add((self.name, switch))
            say(f"speed switch {switch} stands aside for {self.title} (the plain path runs): {why}")
        return False

    def __repr__(self) -> str:
        return f"<model family {self.name}>"


def tiny_generation_config(tok: Any) -> Any:
    """Greedy by default, ending at the end of the assistant turn or of the text (every family's offline models)."""
    from transformers import GenerationConfig

    return GenerationConfig(
        eos_token_id=[tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tok.pad_token_id, do_sample=False,
    )  # fmt: skip


def transformers_class(name: str) -> type:
    """A class of the installed transformers by name (imported on first use, so importing a family stays cheap)."""
    import transformers

    return getattr(transformers, name)


def say(line: str) -> None:
    """Print ``line`` on its own line above any live progress bar (which is redrawn below it), flushed at once."""
    from tqdm.auto import tqdm

    with tqdm.external_write_mode():
        print(line, flush=True)
