"""Experiments as typed data: what to run (method, prompt, optimisation) separate from where (the profile).

An ablation is ``dataclasses.replace`` of its base with only the fields that differ, so two rows of a table differ
in exactly what their names say. The resolved :class:`Experiment` (after the profile's scaling and any ``--set``
overrides) is the object that builds the trainer, the object written to ``experiment.json`` and the object logged
as the W&B config: a table built from the runs can never be labelled by a configuration that was not used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Method = Literal["direct", "sft", "grpo"]


@dataclass(frozen=True)
class LoraSpec:
    """LoRA on the language model only. The paper gives no rank, alpha or targets: these are this suite's choice."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # Language-model projections only: a bare list of names would also adapt the Whisper encoder (notes section 6).
    targets: str = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
    save_merged: bool = False


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation settings. SFT uses ``epochs``; GRPO uses ``max_steps``."""

    learning_rate: float = 5e-6
    epochs: float | None = 4.0
    max_steps: int | None = None
    per_device_batch: int = 4
    grad_accum: int = 1
    save_every: int = 200
    lr_scheduler: str = "linear"
    warmup_steps: float = 0  # steps, or a fraction of the run when below 1
    weight_decay: float = 0.0
    # The original GRPO code decayed the LR over 1000 steps but reported step 500: set schedule_steps=1000 for that.
    schedule_steps: int | None = None
    freeze_audio_encoder: bool = False
    gradient_checkpointing: bool = False
    max_grad_norm: float = 1.0
    bf16: bool | None = None  # None: bf16 on GPU, fp32 on CPU
    # Speed switch: the audio encoder on valid frames only (exact: same loss and gradients; data/audio_encoder.py).
    valid_frame_encoder: bool = True
    # Speed switch: the audio encoder once per distinct clip of a batch (GRPO's G copies; exact, same file).
    distinct_clip_encoder: bool = True
    # Optimizer and scheduler state in the latest checkpoint only ("latest"), or in every one ("all").
    keep_optimizer: Literal["latest", "all"] = "latest"


@dataclass(frozen=True)
class GRPOSpec:
    """GRPO settings; defaults are the paper's Table 1 (see NOTES section 1 and 6 for TRL's differing defaults)."""

    num_generations: int = 8
    temperature: float = 1.0
    top_k: int = 50
    max_completion_length: int = 512
    beta: float = 0.04
    loss_type: str = "grpo"
    use_bias_correction_kl: bool = False
    scale_rewards: str = "group"
    epsilon: float = 0.2
    num_iterations: int = 1
    accuracy_reward: Literal["mmau", "exact"] = "mmau"
    format_reward: bool = True
    strict_format: bool = False  # True: no whitespace around the tags (the original code's re.fullmatch)
    # Speed switch for LoRA runs: sample from merged adapter weights, base weights restored exactly afterwards.
    merged_lora_generation: bool = False
    # Speed switches (trainers/group_prefill.py): each distinct prompt run once instead of G times, when sampling
    # (same samples) and in the log-probability passes (same log-probabilities and gradients).
    shared_prompt_prefill: bool = True
    shared_prompt_scoring: bool = True


@dataclass(frozen=True)
class EvalSpec:
    """Evaluation settings, for the final model and every checkpoint."""

    batch_size: int = 32
    max_new_tokens: int = 256
    audio_mode: Literal["real", "silent"] = "real"
    # Validation items evaluated at each checkpoint (a fixed, seeded subset of AVQA val's 16,909); None: all.
    val_items: int | None = 1000
    at_start: bool = True  # evaluate the base model at step 0 too (the first point of the convergence curves)
    static_cache: bool = False  # compiled static-cache decoding (GPU speed switch; identical greedy outputs)


@dataclass(frozen=True)
class Experiment:
    name: str
    method: Method
    prompt: Literal["p1", "p2", "p3"]
    description: str
    train: TrainSpec | None = None
    lora: LoraSpec | None = None
    grpo: GRPOSpec | None = None
    eval: EvalSpec = field(default_factory=EvalSpec)
    table2_row: str | None = None  # the row of the paper's Table 2 this experiment reproduces, if any

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        """The inverse of :meth:`to_dict` (an ``experiment.json`` read back). Unknown fields raise ``TypeError``."""
        fields = dict(data)
        for section, spec_type in _SPEC_TYPES.items():
            if isinstance(fields.get(section), dict):
                fields[section] = spec_type(**fields[section])
        return cls(**fields)


def field_value(exp: Experiment, key: str) -> Any:
    """The value of ``section.field`` (or a top-level field) of an experiment; None for a section that is off."""
    section, _, name = key.rpartition(".")
    holder = getattr(exp, section) if section else exp
    return None if holder is None else getattr(holder, name)


def differing_fields(a: Experiment, b: Experiment) -> list[str]:
    """The ``section.field`` keys whose values differ between two experiments."""

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    fa, fb = flat(a.to_dict()), flat(b.to_dict())
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))


_SPEC_TYPES: dict[str, type] = {"train": TrainSpec, "lora": LoraSpec, "grpo": GRPOSpec, "eval": EvalSpec}


def _coerce(text: str, current: Any) -> Any:
    """Parse ``text`` as the type of the field's current value (``--set train.learning_rate=1e-5``)."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if isinstance(current, bool):
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        return float(text)
    if current is None:  # an unset optional field: best effort
        for conv in (int, float):
            try:
                return conv(text)
            except ValueError:
                pass
        if low in ("true", "false"):
            return low == "true"
    return text


def apply_overrides(exp: Experiment, overrides: dict[str, str]) -> Experiment:
    """Apply ``section.field=value`` (or top-level ``field=value``) overrides; unknown keys fail listing valid ones."""
    for key, value in overrides.items():
        parts = key.split(".")
        if len(parts) == 1:
            names = [f.name for f in dataclasses.fields(exp)]
            if key not in names or key in _SPEC_TYPES:
                raise KeyError(
                    f"unknown setting {key!r}; top-level settings: {', '.join(n for n in names if n not in _SPEC_TYPES)}"
                )
            exp = dataclasses.replace(exp, **{key: _coerce(value, getattr(exp, key))})
            continue
        if len(parts) != 2 or parts[0] not in _SPEC_TYPES:
            raise KeyError(f"unknown setting {key!r}; use one of {', '.join(_SPEC_TYPES)} followed by .field")
        section, name = parts
        spec = getattr(exp, section)
        if spec is None:
            if value.strip().lower() in ("none", "null"):
                continue
            spec = _SPEC_TYPES[section]()  # e.g. --set lora.r=8 on a full-SFT experiment turns LoRA on
        valid = [f.name for f in dataclasses.fields(spec)]
        if name not in valid:
            raise KeyError(f"unknown setting {key!r}; {section} has: {', '.join(valid)}")
        spec = dataclasses.replace(spec, **{name: _coerce(value, getattr(spec, name))})
        exp = dataclasses.replace(exp, **{section: spec})
    return exp


def parse_set_args(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        k, v = pair.split("=", 1)
        out[k.strip()] = v
    return out
