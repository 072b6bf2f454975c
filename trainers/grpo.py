"""GRPO for Qwen2-Audio on TRL 1.16, with the audio in every log-probability pass.

TRL's ``GRPOTrainer`` has no audio support. With a Qwen2-Audio processor it crashes in ``__init__`` (it reads
``model.config.image_token_id``), and once that is worked around it trains *silently wrong*: generation sees the
audio, but the old, reference and policy log-probabilities in the loss are computed from text alone
(notes section 6). :class:`AudioGRPOTrainer` fixes both while keeping TRL's sampling, advantages, loss, logging and
distributed machinery:

- each generation batch's audio is loaded and featurised once per distinct clip (the G completions of a prompt
  share it), and carried row-aligned through TRL's shuffling and splitting as ``input_features`` and
  ``feature_attention_mask``;
- every forward that scores completions (old, reference, policy) receives those features; a pass without them
  raises instead of quietly scoring text only;
- the ``<|AUDIO|>`` placeholder token is suppressed during sampling (a sampled one would not match any features).

Speed switches (each exact, each tested against the plain path): each distinct prompt prefilled once per generation
batch (``trainers/group_prefill.py``), each distinct clip encoded once per pass (``data/audio_encoder.py``), and
for LoRA, sampling from merged adapter weights (``trainers/lora_generation.py``).

The dataset rows carry ``prompt`` (the chat-rendered prompt text with one ``<|AUDIO|>``), ``audio_path``,
``answer`` and ``choices`` (for the rewards).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import PartialState
from trl import GRPOConfig, GRPOTrainer

from data.audio import load_audio
from models.features import featurize, placeholder_ids
from models.loading import audio_window_seconds, load_model
from models.registry import family_of
from trainers.common import SuiteTrainerMixin, freeze_audio_encoder
from trainers.completion_samples import ITEM_COLUMNS, sample_rows
from trainers.group_prefill import shared_prefix_logps


@contextlib.contextmanager
def reference_loaded_by_the_family() -> Iterator[None]:
    """TRL builds GRPO's reference model (beta > 0, no PEFT) from the policy's checkpoint path, with the class named
    in ``config.architectures``: for an Omni checkpoint that is the whole model (thinker, talker, vocoder), or
    nothing when the config names none. Within this block it is built as the policy was: the family's class,
    strictly loaded (``models.loading.load_model``), with TRL's dtype, device map and attention kwargs."""
    import trl.trainer.grpo_trainer as grpo_module

    def build(model_id: str, architecture: Any = None, **kwargs: Any) -> Any:
        kwargs.pop("trust_remote_code", None)  # never: the suite loads transformers' own classes only
        kwargs.setdefault("device_map", None if PartialState().device.type in ("cpu", "mps") else "auto")
        dtype = kwargs.pop("dtype", torch.float32)
        dtype = getattr(torch, dtype) if isinstance(dtype, str) and dtype != "auto" else dtype
        return load_model(model_id, dtype=dtype, **kwargs)

    original = grpo_module.create_model_from_path
    grpo_module.create_model_from_path = build
    try:
        yield
    finally:
        grpo_module.create_model_from_path = original


class AudioGRPOTrainer(SuiteTrainerMixin, GRPOTrainer):
    """``GRPOTrainer`` whose generation *and* log-probability passes all see the audio."""

    def __init__(self, *args: Any, processing_class: Any, audio_channel: str = "mean", **kwargs: Any):
        model = kwargs.get("model", args[0] if args else None)
        config = getattr(model, "config", None)
        # TRL reads config.image_token_id in __init__ (to suppress it when sampling); Qwen2-Audio has none.
        added = config is not None and not hasattr(config, "image_token_id")
        if added:
            config.image_token_id = processing_class.audio_token_id
        try:
            with reference_loaded_by_the_family():
                super().__init__(*args, processing_class=processing_class, **kwargs)
        finally:
            if added and "image_token_id" in config.__dict__:
                del config.image_token_id  # keep saved checkpoints' config.json clean
        # A sampled placeholder has no features behind it: suppress the family's audio (and any image or video)
        # placeholder, whatever TRL picked.
        suppress = placeholder_ids(processing_class)
        self.generation_config.suppress_tokens = suppress
        self.generation_kwargs["suppress_tokens"] = suppress
        self.audio_channel = audio_channel
        self.merged_lora_generation = False  # speed switch, see trainers/lora_generation.py
        self.shared_prompt_prefill = False  # speed switches, see trainers/group_prefill.py
        self.shared_prompt_scoring = False
        # Sampled completions per logging step (trainers/completion_samples.py): groups recorded, and where to.
        self.sample_groups = 0
        self.completion_sampler: Callable[[int, list[dict[str, Any]]], None] | None = None
        self._window = audio_window_seconds(processing_class)
        self._batch_audio_paths: list[str] | None = None
        self._audio: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- generation: featurise the audio once per distinct clip ----------------------------------------------------
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        self._batch_audio_paths = [x["audio_path"] for x in inputs]
        if self.completion_sampler is not None:  # carried beside each completion into TRL's buffers (its _logs)
            for column in ITEM_COLUMNS:
                self._log_completion_extra(column, [x[column] for x in inputs])
        try:
            output = super()._generate_and_score_completions(inputs)
            if self._audio is None:
                raise RuntimeError("AudioGRPOTrainer: no audio features were built for this batch")
            output["input_features"], output["feature_attention_mask"] = self._audio
        finally:
            self._batch_audio_paths = None
            self._audio = None
        return output

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        super().log(logs, start_time)  # the scalar row first: train_log.jsonl, then W&B (trainers/log_recorder.py)
        if self.completion_sampler is not None and self.model.training and "loss" in logs:
            rows = sample_rows(self._logs, self.state.global_step, groups=self.sample_groups,
                               group_size=self.num_generations)  # fmt: skip
            if self.accelerator.is_main_process:
                self.completion_sampler(self.state.global_step, rows)

    def _audio_dtype(self) -> torch.dtype:
        model = self.accelerator.unwrap_model(self.model)
        return next(family_of(model).audio_encoder(model).parameters()).dtype

    def _tokenize_prompts(self, prompts: list) -> tuple[list[list[int]], None, dict[str, torch.Tensor]]:
        paths = self._batch_audio_paths
        if paths is None or len(paths) != len(prompts):
            raise RuntimeError("AudioGRPOTrainer: prompts and audio paths are out of step")
        if not isinstance(prompts[0], str):
            raise TypeError("AudioGRPOTrainer expects chat-rendered prompt strings (see trainers.grpo.build_dataset)")
        distinct: dict[tuple[str, str], int] = {}
        rows = [distinct.setdefault((p, a), len(distinct)) for p, a in zip(prompts, paths, strict=True)]
        keys = list(distinct)
        waves = [load_audio(a, max_seconds=self._window, channel=self.audio_channel) for _, a in keys]  # type: ignore[arg-type]
        feats = featurize(self.processing_class, [p for p, _ in keys], waves)
        index = torch.tensor(rows)
        ids, mask = feats["input_ids"][index], feats["attention_mask"][index]
        prompt_ids = [row[m.bool()].tolist() for row, m in zip(ids, mask, strict=True)]
        device = self.accelerator.device
        features = feats["input_features"][index].to(device=device, dtype=self._audio_dtype())
        feature_mask = feats["feature_attention_mask"][index].to(device)
        self._audio = (features, feature_mask)
        return prompt_ids, None, {"input_features": features, "feature_attention_mask": feature_mask}

    def _generate_single_turn(self, *args: Any, **kwargs: Any) -> Any:
        from trainers.group_prefill import shared_prefill
        from trainers.lora_generation import merged_lora

        model = self.accelerator.unwrap_model(self.model)
        with contextlib.ExitStack() as switches:
            if self.merged_lora_generation:
                switches.enter_context(merged_lora(model))
            if self.shared_prompt_prefill:
                switches.enter_context(shared_prefill(model))
            return super()._generate_single_turn(*args, **kwargs)

    # -- scoring: every log-probability pass gets the audio ---------------------------------------------------------
    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        self._audio = (inputs["input_features"], inputs["feature_attention_mask"])
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._audio = None

    def _get_per_token_logps_and_entropies(
        self,
        model: Any,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        logits_to_keep: int,
        batch_size: int | None = None,
        compute_entropy: bool = False,
        compute_aux_loss: bool = False,
        **image_kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        if any(v is not None for k, v in image_kwargs.items() if k != "num_images"):
            raise ValueError(f"AudioGRPOTrainer got image inputs {sorted(image_kwargs)}; this trainer is audio-only")
        if self._audio is None:
            raise RuntimeError("a log-probability pass without audio features: the loss would score text only")
        features, feature_mask = self._audio
        if features.shape[0] != input_ids.shape[0]:
            raise RuntimeError(f"audio rows ({features.shape[0]}) and token rows ({input_ids.shape[0]}) differ")
        batch_size = batch_size or input_ids.size(0)
        logps, entropies, aux_losses = [], [], []
        # A mixture of experts (Qwen3-Omni) adds its own load-balancing loss when TRL asks (its config's
        # router_aux_loss_coef), as TRL does for a text model; the shared pass returns no router logits.
        router = {"output_router_logits": True} if compute_aux_loss else {}
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            ids, mask = input_ids[start:end], attention_mask[start:end]
            if self.shared_prompt_scoring and not compute_aux_loss:
                with self.accelerator.autocast():
                    shared = shared_prefix_logps(
                        model, ids, mask, logits_to_keep, features[start:end], feature_mask[start:end],
                        compute_entropy=compute_entropy, unwrapped=self.accelerator.unwrap_model(model),
                    )  # fmt: skip
                if shared is not None:
                    logps.append(shared[0])
                    if compute_entropy:
                        entropies.append(shared[1])
                    continue
            labels = ids.masked_fill(mask == 0, -100)
            labels[:, :-logits_to_keep] = -100  # only completion tokens are scored
            with self.accelerator.autocast():
                out = model(
                    input_ids=ids,
                    attention_mask=mask,
                    input_features=features[start:end],
                    feature_attention_mask=feature_mask[start:end],
                    labels=labels,
                    fused_lm_head=True,
                    **router,
                )
            logps.append(out.log_probs[:, -logits_to_keep:])
            if compute_entropy:
                entropies.append(out.entropy[:, -logits_to_keep:])
            if compute_aux_loss:
                aux_losses.append(out.aux_loss)
        entropy = torch.cat(entropies) if compute_entropy else None
        return torch.cat(logps), entropy, (torch.stack(aux_losses).mean() if compute_aux_loss else None)


def build_dataset(items: Any, processor: Any, prompt_id: str):
    """A ``datasets.Dataset`` of chat-rendered prompts (strings: Arrow would mangle mixed content blocks)."""
    from datasets import Dataset

    from data.prompts import build_conversation, render_prompt

    rows = [
        {
            "prompt": render_prompt(processor, build_conversation(i.question, i.choices, prompt_id)),
            "question": i.question,
            "audio_path": i.audio_path,
            "answer": i.answer,
            "choices": list(i.choices),
            "id": i.id,
        }
        for i in items
    ]
    return Dataset.from_list(rows)


@dataclass(frozen=True)
class GRPOOptions:
    """What a GRPO trainer needs beyond TRL's ``GRPOConfig``: the LR schedule length, encoder freezing and switches
    (the reference model gets the policy's), the exact speed switches, and sampled completions per logging step."""

    freeze_audio_encoder: bool = False
    schedule_steps: int | None = None
    valid_frame_encoder: bool = True
    distinct_clip_encoder: bool = True
    merged_lora_generation: bool = False  # only with LoRA: sample from merged adapter weights
    shared_prompt_prefill: bool = True
    shared_prompt_scoring: bool = True
    sample_groups: int = 0  # prompt groups recorded per logging step (needs a completion_sampler)


def build_grpo_trainer(
    model: Any,
    processor: Any,
    items: Any,
    *,
    args: GRPOConfig,
    prompt_id: str,
    rewards: list[Callable[..., list[float]]],
    peft_config: Any = None,
    options: GRPOOptions = GRPOOptions(),
    callbacks: list | None = None,
    completion_sampler: Callable[[int, list[dict[str, Any]]], None] | None = None,
) -> AudioGRPOTrainer:
    """A GRPO trainer over ``items`` with prompt ``prompt_id`` (full, or LoRA by ``peft_config``); an experiment's
    arguments come from ``experiments.trainer_arguments.build_trainer``."""
    if options.freeze_audio_encoder:
        freeze_audio_encoder(model)
    trainer = AudioGRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=args,
        train_dataset=build_dataset(items, processor, prompt_id),
        processing_class=processor,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    trainer.schedule_steps = options.schedule_steps
    trainer.merged_lora_generation = peft_config is not None and options.merged_lora_generation
    trainer.shared_prompt_prefill = options.shared_prompt_prefill
    trainer.shared_prompt_scoring = options.shared_prompt_scoring
    if options.sample_groups > 0:
        trainer.sample_groups, trainer.completion_sampler = options.sample_groups, completion_sampler
    if trainer.ref_model is not None:  # TRL loads the reference itself: give it the same (exact) encoder switches
        from models.audio_encoder import use_encoder_switches

        use_encoder_switches(trainer.ref_model, valid_frames=options.valid_frame_encoder,
                             distinct_clips=options.distinct_clip_encoder)  # fmt: skip
    return trainer
