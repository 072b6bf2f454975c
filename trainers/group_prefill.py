"""Speed switches: run each distinct prompt of a GRPO batch once, not once per completion, when sampling and when
scoring.

TRL samples the G completions of a prompt from G copies of it, and scores them (old, reference and policy
log-probabilities) on G copies too, so the same prompt (text and audio, about 850 tokens for a 10 s clip, against
16 to 512 completion tokens) goes through the model G times in each pass. Here the distinct prompts run once,
without their last token, through the model with a cache; the cache is gathered back to every row (an indexing
step, so gradients from all G rows flow back into the one prompt computation), and the rest runs on top of it:

- **sampling** (``shared_prefill``, ``grpo.shared_prompt_prefill``): ``generate`` gets the cache, feeds only the last
  prompt token and samples exactly as before (same logits processors, same random draws). Measured before this
  switch (notes section 8): prefill 0.14 s for 8 rows against 0.04 s for one, on an H200.
- **scoring** (``shared_prefix_logps``, ``grpo.shared_prompt_scoring``): the last prompt token and the completion go
  through TRL's fused LM head on top of the cache, with the positions the plain pass uses, so log-probabilities,
  entropies and gradients are the plain pass's.

    from trainers.group_prefill import shared_prefill
    with shared_prefill(model):      # model.generate prefills each distinct prompt once inside the block
        model.generate(**inputs)

Both fall back to the plain path where sharing does not apply: no repeated prompt, right padding, a static cache,
gradient checkpointing (scoring: it turns the cache off), and **active dropout** (``active_dropout``: the model in
training mode with any dropout rate above 0, LoRA's default 0.05 included). TRL 1.16 samples with the policy in
training mode (``transformers.Trainer.training_step`` calls ``model.train()`` before ``GRPOTrainer._prepare_inputs``,
and ``GRPOTrainer._generate_single_turn`` generates under ``torch.no_grad()`` without ``eval()``; its
``disable_dropout`` defaults to False), so under dropout G copies of a prompt each draw their own mask where one
shared prompt would draw one: the samples and scores would differ from the plain path's. Each switch that stands
aside says so once per process (``stands_aside``); ``--set lora.dropout=0`` lets LoRA runs share.
``tests/test_group_prefill.py`` checks the same scores and sampled tokens as plain generation (and the same tokens
under dropout, by standing aside), ``tests/test_grpo.py`` the same log-probabilities, entropies and gradients as
the plain pass.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from transformers.integrations.fsdp import is_fsdp_managed_module

from models.audio_encoder import backbone as _base
from models.audio_encoder import distinct_rows, group_rows
from models.registry import family_of
from trainers.console import say


def distinct_prompts(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    input_features: torch.Tensor | None = None,
    feature_attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(first, inverse)`` over rows equal in tokens, padding and audio (see ``models.audio_encoder.distinct_rows``)."""
    if input_features is not None:
        lengths = None if feature_attention_mask is None else feature_attention_mask.sum(-1)
        _, audio_group = distinct_rows(input_features, lengths)
        audio = audio_group.tolist()
    else:
        audio = [0] * input_ids.shape[0]
    tokens = input_ids.masked_fill(attention_mask == 0, -1).tolist()
    return group_rows(list(zip(map(tuple, tokens), audio, strict=True)), input_ids.device)


@torch.no_grad()
def generate_with_shared_prefill(
    generate: Callable[..., Any],
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    generation_config: Any = None,
    **kwargs: Any,
) -> Any:
    """``generate(...)`` with each distinct prompt prefilled once (same arguments, same result)."""
    plain = lambda: generate(input_ids=input_ids, attention_mask=attention_mask,  # noqa: E731
                             generation_config=generation_config, **kwargs)  # fmt: skip
    config = generation_config or model.generation_config
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    audio_token = getattr(_base(model).config, "audio_token_id", None)
    family = family_of(model)
    if (
        input_ids.shape[0] < 2
        or input_ids.shape[1] < 2
        or getattr(config, "cache_implementation", None) is not None
        or kwargs.get("past_key_values") is not None
        or not bool(attention_mask[:, -1].all())  # right padding: the last column is not a real token everywhere
        or bool((input_ids[:, -1] == audio_token).any())  # the audio must lie in the prefilled part
        or not family.allows("shared_prompt_prefill")  # exact for this model family only if declared
        # G copies would each draw their own dropout masks, one shared prompt one (and other random draws after it)
        or stands_aside("shared_prompt_prefill", model)
    ):
        return plain()
    features, feature_mask = kwargs.pop("input_features", None), kwargs.pop("feature_attention_mask", None)
    first, inverse = distinct_prompts(input_ids, attention_mask, features, feature_mask)
    if len(first) == input_ids.shape[0]:
        kwargs.update(input_features=features, feature_attention_mask=feature_mask)
        return plain()
    prefix_ids, prefix_mask = input_ids[first, :-1], attention_mask[first, :-1]
    rope = family.rope_positions(model, input_ids, attention_mask, feature_mask)
    if rope is None:
        # generate() derives positions from the attention mask the same way: left padding keeps real tokens at 0, 1..
        positions = (prefix_mask.long().cumsum(-1) - 1).masked_fill(prefix_mask == 0, 0)
    else:  # multimodal RoPE: the positions the plain prefill computes for these rows
        positions = rope[0][:, first, :-1]
    audio = (
        {} if features is None else {"input_features": features[first], "feature_attention_mask": feature_mask[first]}
    )
    # The whole model, with logits of one position only (the cache is what is needed): FSDP gathers the root's
    # weights, and ZeRO-3 every weight, only through the whole model's forward.
    out = model(
        input_ids=prefix_ids,
        attention_mask=prefix_mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **audio,
    )
    cache = out.past_key_values
    cache.batch_select_indices(inverse)
    if rope is not None:  # every row continues from its own delta, as after the plain prefill
        family.continue_positions(model, rope[1])
    return generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=generation_config,
                    past_key_values=cache, **kwargs)  # fmt: skip


# Rate attributes the forwards read in training mode: nn.Dropout's ``p``; Qwen2Attention's ``attention_dropout``;
# the Whisper-style audio encoder's ``dropout``, ``activation_dropout`` and ``layerdrop`` (a random layer skip).
_RATES = ("dropout", "attention_dropout", "activation_dropout", "layerdrop")


def active_dropout(model: Any) -> list[str]:
    """What makes a forward of ``model`` stochastic, e.g. ``["LoRA dropout 0.05"]``; empty where nothing does (eval
    mode, or every rate 0). Reads the rates the modules themselves use, not the config, so the answer is what the
    forward does."""
    if not model.training:
        return []
    found: dict[tuple[str, float], None] = {}  # an ordered set of (what, rate)
    for name, module in model.named_modules():
        if not module.training:
            continue
        if isinstance(module, torch.nn.Dropout):
            if module.p > 0:
                found["LoRA dropout" if "lora_dropout" in name else "nn.Dropout", module.p] = None
            continue
        for attr in _RATES:
            rate = module.__dict__.get(attr)  # plain attributes only (a submodule named ``dropout`` is seen above)
            if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
                found[f"{type(module).__name__}.{attr}", rate] = None
    return [f"{what} {rate:g}" for what, rate in found]


def has_active_dropout(model: Any) -> bool:
    """Whether a forward of ``model`` is stochastic (training mode with a dropout above 0, LoRA's included)."""
    return bool(active_dropout(model))


_told: set[str] = set()  # switches that have said they stand aside (once per process)


def stands_aside(switch: str, model: Any, when: str = "during sampling") -> bool:
    """Whether the speed switch ``switch`` must leave ``model``'s forwards as they are because dropout is active
    (sharing or merging would change the random draws); the first time per process, says so in one line."""
    # The usual case, not a corner: TRL 1.16 samples in training mode (transformers' Trainer.training_step calls
    # model.train(), then GRPOTrainer._prepare_inputs -> _generate_single_turn runs generate under no_grad only).
    sources = active_dropout(model)
    if sources and switch not in _told:
        _told.add(switch)
        lora = any(s.startswith("LoRA") for s in sources)
        fix = "set --set lora.dropout=0" if lora else "set the model's dropout rates to 0"
        if os.environ.get("RANK", "0") == "0":  # one line per run, not one per process of a multi-GPU launch
            say(f"{switch} stands aside: dropout is active {when} ({', '.join(sources)}); {fix} to use it")
    return bool(sources)


def shared_prefix_logps(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    input_features: torch.Tensor,
    feature_attention_mask: torch.Tensor,
    *,
    compute_entropy: bool = False,
    unwrapped: Any = None,
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """Per-token log-probabilities (and entropies) of the last ``logits_to_keep`` tokens, as TRL's scoring pass
    computes them (``model(..., labels=..., fused_lm_head=True)``), with each distinct prompt run once; ``None``
    where sharing does not apply (the caller then runs the plain pass).

    ``model`` is what TRL passes (possibly a DDP or DeepSpeed wrapper: the completion part runs through it, so the
    wrapper sees one forward per backward); ``unwrapped`` is the bare model, through which the prompts run.
    """
    unwrapped = unwrapped if unwrapped is not None else model
    split = input_ids.shape[1] - logits_to_keep - 1  # the prompt without its last token
    base = _base(unwrapped)
    family = family_of(unwrapped)
    if (
        split < 1
        or input_ids.shape[0] < 2
        or not family.allows("shared_prompt_scoring")  # exact for this model family only if declared
        or getattr(base.language_model, "gradient_checkpointing", False)
        # G copies would each draw their own mask; one shared prompt would not
        or stands_aside("shared_prompt_scoring", unwrapped, "in the log-probability passes")
        # FSDP gathers the root's weights only in the whole model's forward, and frees them before a second
        # forward's backward: the prompt pass cannot run separately.
        or is_fsdp_managed_module(unwrapped)
    ):
        return None
    first, inverse = distinct_prompts(input_ids[:, :split], attention_mask[:, :split], input_features,
                                      feature_attention_mask)  # fmt: skip
    if len(first) == input_ids.shape[0]:
        return None
    # 1-D families: no position ids are passed, as in the plain pass: positions run 0..width-1 over the padded rows
    # (RoPE only sees differences, so this is the plain pass's arithmetic), and the completion part continues after
    # the cache. Multimodal RoPE: the positions the plain pass computes for the whole rows, split at the same place.
    rope = family.rope_positions(unwrapped, input_ids, attention_mask, feature_attention_mask)
    prefix_positions = {} if rope is None else {"position_ids": rope[0][:, first, :split]}
    tail_positions = {} if rope is None else {"position_ids": rope[0][:, :, split:]}
    # Through the whole model (logits of one position only), so that ZeRO-3's hooks gather every weight it reads.
    prefix = unwrapped(input_ids=input_ids[first, :split], attention_mask=attention_mask[first, :split],
                       input_features=input_features[first], feature_attention_mask=feature_attention_mask[first],
                       use_cache=True, logits_to_keep=1, **prefix_positions)  # fmt: skip
    cache = prefix.past_key_values
    cache.batch_select_indices(inverse)
    ids = input_ids[:, split:]
    labels = ids.masked_fill(attention_mask[:, split:] == 0, -100)
    out = model(input_ids=ids, attention_mask=attention_mask, past_key_values=cache, labels=labels, fused_lm_head=True,
                **tail_positions)  # fmt: skip
    logps = out.log_probs[:, -logits_to_keep:]
    return logps, (out.entropy[:, -logits_to_keep:] if compute_entropy else None)


@contextlib.contextmanager
def shared_prefill(model: Any) -> Iterator[Any]:
    """Within the block, ``model.generate`` prefills each distinct prompt once (this instance only)."""
    original = model.generate

    def generate(*args: Any, **kwargs: Any) -> Any:
        if args:  # input_ids given positionally
            kwargs["input_ids"], args = args[0], args[1:]
        if args or "input_ids" not in kwargs:
            return original(*args, **kwargs)
        return generate_with_shared_prefill(original, model, **kwargs)

    # FSDP2 registers its own wrapper of generate on the instance (register_fsdp_forward_method, so that generation
    # unshards the weights): restore exactly what was there, or the next generate would see sharded weights.
    own = vars(model).get("generate")
    model.generate = generate
    try:
        yield model
    finally:
        if own is not None:
            model.generate = own
        else:
            del model.generate  # the instance attribute: the class's method shows through again
