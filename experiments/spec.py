"""Experiments as typed data: what to run (method, prompt, optimisation) separate from where (the profile).

An ablation is ``dataclasses.replace`` of its base with only the fields that differ, so two rows of a table differ
in exactly what their names say. The resolved :class:`Experiment` (after the profile's scaling and any ``--set``
overrides) is the object that builds the trainer, the object written to ``experiment.json`` and the object logged
as the W&B config: a table built from the runs can never be labelled by a configuration that was not used.

:func:`check_fields` checks every field of a resolved experiment (type, range, choices, and the rules between
fields) and raises :class:`ExperimentError` naming each bad field, its value and what is accepted. It is pure data;
``experiments.runner.validate`` adds the trainers' own argument checks and runs both before anything is loaded.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from data.schema import DataError

Method = Literal["direct", "sft", "grpo"]


class ExperimentError(DataError):
    """A setting an experiment cannot run with: the message names the field, the value and what is accepted."""


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
    # A training log row (console, train_log.jsonl, W&B) every N optimizer steps: 10 on the paper profile, 5 on the
    # toy one, every step on the smoke one (its tests read per-step rows). Logging changes no weights.
    logging_steps: int = 10
    bf16: bool | None = None  # None: bf16 on GPU, fp32 on CPU
    # torch.use_deterministic_algorithms for the run. None: on for CPU runs (a same-machine rerun is bit-identical,
    # GRPO included: without it, 2-thread CPU GRPO reruns differ), off on GPU (speed; the paper's runs are not
    # bit-reproducible). True on GPU also sets CUBLAS_WORKSPACE_CONFIG=:4096:8 unless it is set.
    deterministic: bool | None = None
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
    # Prompt groups (G completions each) of sampled completions recorded per logging step: completions.jsonl in the
    # run directory, then the W&B table "completions" (trainers/completion_samples.py). 0: none.
    sample_groups: int = 2


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
    # "neutral": greedy with every penalty, n-gram block and forced token off, whatever the checkpoint's
    # generation_config.json says (the suite's default). "checkpoint": the original evaluation's
    # generate(max_new_tokens=256), completed from the checkpoint's own generation config. The paper is silent on
    # decoding; the original code used the checkpoint's config. See data/evaluate.py.
    decoding: Literal["neutral", "checkpoint"] = "neutral"
    # The benchmarks the final model and every checkpoint are evaluated on, comma-separated registered names
    # (data/benchmark_registry.py; mmau-test-mini, Table 2's, always among them), e.g. "mmau-test-mini,mmar".
    # None: every benchmark the profile has data for (paper: MMAU test-mini, plus MMAR when MMAR_JSON is set;
    # toy: both toy tests). Each gets checkpoint-<step>/eval/<set>/ and W&B keys eval/<set>/... (MMAU's set: test).
    benchmarks: str | None = None

    @property
    def benchmark_names(self) -> tuple[str, ...] | None:
        """``benchmarks`` as a tuple of names (None: the profile's default)."""
        return None if self.benchmarks is None else tuple(b.strip() for b in self.benchmarks.split(",") if b.strip())


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
        """The inverse of :meth:`to_dict` (an ``experiment.json`` read back). Unknown fields raise ``TypeError``.

        A field the file lacks (written before the field existed) gets the value those versions used, where that
        differs from today's default (:data:`WRITTEN_BEFORE`), so the configuration read back says what ran.
        """
        fields = dict(data)
        for section, spec_type in _SPEC_TYPES.items():
            if isinstance(fields.get(section), dict):
                fields[section] = spec_type(**{**WRITTEN_BEFORE.get(section, {}), **fields[section]})
        return cls(**fields)


# Fields added later, with the value every earlier version used: it logged every step (logging_steps=1 was
# hard-coded in the trainers).
WRITTEN_BEFORE: dict[str, dict[str, Any]] = {"train": {"logging_steps": 1}}


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


@cache
def _hints(spec_type: type) -> dict[str, Any]:
    """The declared type of each field of a spec class (annotations are strings under ``from __future__``)."""
    return get_type_hints(spec_type)


def _members(hint: Any) -> tuple[Any, ...]:
    """``int | None`` -> ``(int, NoneType)``; a plain type -> ``(type,)``."""
    return get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)


def _coerce(key: str, text: str, hint: Any) -> Any:
    """Parse ``text`` as the field's declared type (``--set train.learning_rate=1e-5``), naming the field if it fails.

    Only the type is checked here; ranges and choices are :func:`check_fields`' (one message for both routes).
    """
    low = text.strip().lower()
    members = _members(hint)
    if low in ("none", "null") and type(None) in members:
        return None
    for kind in members:
        if kind is bool:
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
        elif kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        elif kind is str or get_origin(kind) is Literal:
            return text
    raise ExperimentError(f"--set {key}={text!r}: must be {_accepted(key, hint)}")


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
            exp = dataclasses.replace(exp, **{key: _coerce(key, value, _hints(Experiment)[key])})
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
        spec = dataclasses.replace(spec, **{name: _coerce(key, value, _hints(type(spec))[name])})
        exp = dataclasses.replace(exp, **{section: spec})
    return exp


# --- Validation ---------------------------------------------------------------------------------------------------
Range = tuple[Callable[[Any], bool], str]


def _at_least(low: int, why: str = "") -> Range:
    return (lambda v: v >= low), f">= {low}{why}"


def _above(low: float) -> Range:
    return (lambda v: v > low), f"> {low}"


def _one_of(*choices: str, why: str = "") -> Range:
    return (lambda v: v in choices), f"one of {', '.join(map(repr, choices))}{why}"


def _is_regex(text: str) -> bool:
    try:
        re.compile(text)
    except re.error:
        return False
    return bool(text.strip())


def _benchmark_list_ok(text: str) -> bool:
    from data.benchmark_registry import BENCHMARKS, MMAU

    names = [b.strip() for b in text.split(",") if b.strip()]
    return MMAU.name in names and all(n in BENCHMARKS for n in names) and len(set(names)) == len(names)


# transformers 5.23's SchedulerType values that run with what the suite passes: no lr_scheduler_kwargs (so not
# cosine_with_min_lr, cosine_warmup_with_min_lr, warmup_stable_decay) and no evaluation strategy (so not
# reduce_lr_on_plateau, greedy). tests/test_validation.py checks the list against transformers.
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                 "inverse_sqrt")  # fmt: skip
# TRL 1.16's GRPO losses (GRPOConfig.loss_type; an unknown one fails only at the first loss), less 'luspo', which
# needs sequence-level importance sampling (the suite samples at token level, TRL's default).
GRPO_LOSSES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "vespo")

# What each field accepts beyond its declared type (numbers must also be finite). Literal fields check their choices
# from the type itself; bools and plain strings accept any value of their type.
RANGES: dict[str, Range] = {
    "name": ((lambda v: bool(v.strip())), "(non-empty)"),
    "train.learning_rate": _above(0),
    "train.epochs": _above(0),
    "train.max_steps": _at_least(1),
    "train.per_device_batch": _at_least(1),
    "train.grad_accum": _at_least(1),
    "train.save_every": _at_least(0, " (0: no intermediate checkpoints)"),
    "train.lr_scheduler": _one_of(*LR_SCHEDULERS),
    "train.warmup_steps": _at_least(0, " (steps, or a fraction of the run when below 1)"),
    "train.weight_decay": _at_least(0),
    "train.schedule_steps": _at_least(1),
    "train.max_grad_norm": _at_least(0, " (0: no clipping)"),
    "train.logging_steps": _at_least(1),
    "lora.r": _at_least(1),
    "lora.alpha": _at_least(1),
    "lora.dropout": ((lambda v: 0 <= v < 1), "in [0, 1) (a probability)"),
    "lora.targets": (_is_regex, "(a non-empty regular expression over module names)"),
    "grpo.num_generations": _at_least(2, " (GRPO compares completions within a group)"),
    "grpo.temperature": _above(0),
    "grpo.top_k": _at_least(0, " (0: no top-k filtering)"),
    "grpo.max_completion_length": _at_least(1),
    "grpo.beta": _at_least(0),
    "grpo.loss_type": _one_of(*GRPO_LOSSES),
    "grpo.scale_rewards": _one_of("group", "batch", "none"),
    "grpo.epsilon": ((lambda v: 0 < v < 1), "in (0, 1) (the ratio is clipped to [1 - epsilon, 1 + epsilon])"),
    "grpo.num_iterations": _at_least(1),
    "grpo.sample_groups": _at_least(0, " (0: no sampled completions recorded)"),
    "eval.batch_size": _at_least(1),
    "eval.max_new_tokens": _at_least(1),
    "eval.val_items": _at_least(1),  # none: all validation items
    "eval.benchmarks": (
        _benchmark_list_ok,
        "(comma-separated registered benchmarks, mmau-test-mini among them: python -m data.benchmark_registry)",
    ),
}


def _is_type(value: Any, kind: Any) -> bool:
    """Whether ``value`` is of one declared type (bool is not an int here; numbers must be finite)."""
    if kind is type(None):
        return value is None
    if get_origin(kind) is Literal:
        return isinstance(value, str) and value in get_args(kind)
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, kind)


def _accepted(key: str, hint: Any) -> str:
    """What a field accepts, in words: 'an integer >= 1', "one of 'real', 'silent'", '... or none'."""
    members = _members(hint)
    rule = RANGES.get(key)
    words = []
    for kind in members:
        if get_origin(kind) is Literal:
            words.append(f"one of {', '.join(map(repr, get_args(kind)))}")
        elif rule is not None and rule[1].startswith("one of"):
            words.append(rule[1])
        elif kind is not type(None):
            noun = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(kind, str(kind))
            words.append(noun if rule is None or kind is bool else f"{noun} {rule[1]}")
    if type(None) in members:
        words.append("none")
    return " or ".join(words)


def _field_problem(key: str, value: Any, hint: Any) -> str | None:
    rule = RANGES.get(key)
    ok = any(_is_type(value, kind) for kind in _members(hint))
    if ok and value is not None and rule is not None and not isinstance(value, bool):
        ok = rule[0](value)
    return None if ok else f"{key}={value!r}: must be {_accepted(key, hint)}"


def _rule_problems(exp: Experiment) -> list[str]:
    """The rules between fields (each field's own type and range already hold)."""
    problems = []
    uses = {"direct": (), "sft": ("train", "lora"), "grpo": ("train", "lora", "grpo")}[exp.method]
    for section in ("train", "lora", "grpo"):
        if getattr(exp, section) is not None and section not in uses:
            problems.append(f"{section}: set on a {exp.method} experiment, which does not use it; drop the --set "
                            f"{section}.* settings")  # fmt: skip
    needed = {"sft": ("train",), "grpo": ("train", "grpo")}.get(exp.method, ())
    problems += [f"{section}=None: a {exp.method} experiment needs its {section} settings" for section in needed
                 if getattr(exp, section) is None]  # fmt: skip
    if problems:
        return problems
    if exp.method == "sft" and exp.train.epochs is None and exp.train.max_steps is None:
        problems.append("train.epochs=None and train.max_steps=None: SFT needs one of them (max_steps wins if set)")
    if exp.method == "grpo" and exp.train.max_steps is None:
        problems.append("train.max_steps=None: GRPO runs for train.max_steps optimizer steps; set it (>= 1)")
    if exp.method == "grpo" and exp.prompt == "p3" and exp.eval.max_new_tokens < exp.grpo.max_completion_length:
        need = exp.grpo.max_completion_length
        problems.append(
            f"eval.max_new_tokens={exp.eval.max_new_tokens} < grpo.max_completion_length={need}: Prompt <3> (think, "
            "then answer) must be evaluated with at least the length it is trained to write, or outputs are cut "
            f"before their <answer>; set --set eval.max_new_tokens={need} (or more)"
        )
    return problems


def check_fields(exp: Experiment) -> None:
    """Check every field of a resolved experiment, and the rules between them; raise one error naming them all.

    Each problem reads ``section.field=value: must be <what is accepted>``; the trainers' own argument checks are
    ``experiments.runner.validate``'s.
    """
    problems = []
    for f in dataclasses.fields(Experiment):
        value = getattr(exp, f.name)
        if f.name not in _SPEC_TYPES:
            problems.append(_field_problem(f.name, value, _hints(Experiment)[f.name]))
        elif value is not None:
            spec_type = _SPEC_TYPES[f.name]
            if not isinstance(value, spec_type):
                problems.append(f"{f.name}: must be a {spec_type.__name__} or none, not {type(value).__name__}")
                continue
            hints = _hints(spec_type)
            problems += [_field_problem(f"{f.name}.{g.name}", getattr(value, g.name), hints[g.name])
                         for g in dataclasses.fields(spec_type)]  # fmt: skip
        elif f.name == "eval":
            problems.append("eval=None: every experiment is evaluated and needs its eval settings")
    problems = [p for p in problems if p]
    if not problems:  # the rules between fields compare values of the right types only
        problems = _rule_problems(exp)
    if problems:
        raise ExperimentError(f"experiment {exp.name!r}: {'; '.join(problems)}")


def default_new_tokens(prompt: str) -> int:
    """The evaluation's new-token limit by prompt: the original 256, and for Prompt <3> (think, then answer) at least
    the paper's GRPO completion length (512), so the outputs it trains to write are not cut before their <answer>."""
    tokens = EvalSpec().max_new_tokens
    return max(tokens, GRPOSpec().max_completion_length) if prompt == "p3" else tokens


def parse_set_args(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        k, v = pair.split("=", 1)
        out[k.strip()] = v
    return out
