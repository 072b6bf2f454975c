"""The one translation from the suite's specs (``experiments.spec``) to the trainers' arguments, SFT and GRPO alike.

- :func:`trainer_arguments`: an experiment's ``TrainingArguments`` (SFT) or ``GRPOConfig`` (GRPO), as its run
  builds them; the fields both trainers share are made in one place (:func:`_shared`);
- :func:`lora_config`: the PEFT ``LoraConfig`` of a :class:`~experiments.spec.LoraSpec`, on the model family's
  language-model projections;
- :func:`build_trainer`: the trainer of an experiment (``trainers/sft.py`` or ``trainers/grpo.py``, which take
  typed arguments only and never see an experiment);
- :func:`check_trainer_arguments`: builds the arguments at validation, before any model loads, so transformers'
  and TRL's own checks fail early and name the experiment fields behind the refused argument.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import torch

from experiments.compute import run_dtype
from experiments.spec import ExperimentError, field_value

# The experiment fields each trainer argument is made of, to name them in the trainers' own argument errors.
ARGUMENT_FIELDS: dict[str, tuple[str, ...]] = {
    "per_device_train_batch_size": ("train.per_device_batch", "grpo.num_generations"),
    "gradient_accumulation_steps": ("train.grad_accum",),
    "generation_batch_size": ("train.per_device_batch", "grpo.num_generations", "train.grad_accum"),
    "learning_rate": ("train.learning_rate",),
    "num_train_epochs": ("train.epochs",),
    "max_steps": ("train.max_steps",),
    "lr_scheduler_type": ("train.lr_scheduler",),
    "warmup_steps": ("train.warmup_steps",),
    "weight_decay": ("train.weight_decay",),
    "max_grad_norm": ("train.max_grad_norm",),
    "save_steps": ("train.save_every",),
    "logging_steps": ("train.logging_steps",),
    "bf16": ("train.bf16",),
    "activation_checkpointing": ("train.gradient_checkpointing",),
    "num_generations": ("grpo.num_generations",),
    "temperature": ("grpo.temperature",),
    "top_k": ("grpo.top_k",),
    "max_completion_length": ("grpo.max_completion_length",),
    "beta": ("grpo.beta",),
    "loss_type": ("grpo.loss_type",),
    "scale_rewards": ("grpo.scale_rewards",),
    "epsilon": ("grpo.epsilon",),
    "num_iterations": ("grpo.num_iterations",),
}


def _shared(train: Any, *, output_dir: str, seed: int, bf16: bool) -> dict[str, Any]:
    """The arguments SFT and GRPO take alike from a :class:`~experiments.spec.TrainSpec`."""
    return dict(
        output_dir=output_dir,
        gradient_accumulation_steps=train.grad_accum,
        learning_rate=train.learning_rate,
        lr_scheduler_type=train.lr_scheduler,
        warmup_steps=train.warmup_steps,
        weight_decay=train.weight_decay,
        max_grad_norm=train.max_grad_norm,
        logging_steps=train.logging_steps,
        report_to=[],  # the suite's own recorder logs: disk first, then W&B (trainers/log_recorder.py)
        bf16=bf16,
        seed=seed,
        data_seed=seed,
        activation_checkpointing=train.gradient_checkpointing,
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,  # the collators need the items' audio paths and answers
        dataloader_num_workers=0,
    )


def sft_arguments(train: Any, *, output_dir: str, seed: int, bf16: bool = False) -> Any:
    """``TrainingArguments`` of a TrainSpec (also used by the toy base's build, which has no experiment)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        **_shared(train, output_dir=output_dir, seed=seed, bf16=bf16),
        per_device_train_batch_size=train.per_device_batch,
        num_train_epochs=train.epochs or 1.0,
        max_steps=train.max_steps or -1,
        optim="adamw_torch",
        save_strategy="steps" if train.save_every else "no",
        save_steps=train.save_every or 500,
    )


def grpo_arguments(train: Any, grpo: Any, *, output_dir: str, seed: int, bf16: bool = False) -> Any:
    """TRL's ``GRPOConfig`` of a TrainSpec and GRPOSpec (paper defaults; see experiments.spec)."""
    from trl import GRPOConfig

    return GRPOConfig(
        **_shared(train, output_dir=output_dir, seed=seed, bf16=bf16),
        # TRL counts completions per device, not prompts: prompts x G.
        per_device_train_batch_size=train.per_device_batch * grpo.num_generations,
        num_generations=grpo.num_generations,
        temperature=grpo.temperature,
        top_k=grpo.top_k,
        top_p=1.0,
        max_completion_length=grpo.max_completion_length,
        beta=grpo.beta,
        loss_type=grpo.loss_type,
        use_bias_correction_kl=grpo.use_bias_correction_kl,
        scale_rewards=grpo.scale_rewards,
        epsilon=grpo.epsilon,
        num_iterations=grpo.num_iterations,
        max_steps=train.max_steps,
        save_strategy="steps",
        save_steps=train.save_every,
        log_completions=False,  # TRL's own crashes on audio prompts; trainers/completion_samples.py records them
        disable_tqdm=False,
    )


def trainer_arguments(exp: Any, *, output_dir: str, seed: int) -> Any:
    """The SFT ``TrainingArguments`` or GRPO ``GRPOConfig`` of an experiment, as its run builds them."""
    bf16 = run_dtype(exp.train) == "bfloat16"
    if exp.method == "sft":
        return sft_arguments(exp.train, output_dir=output_dir, seed=seed, bf16=bf16)
    if exp.method == "grpo":
        return grpo_arguments(exp.train, exp.grpo, output_dir=output_dir, seed=seed, bf16=bf16)
    raise ValueError(f"experiment {exp.name!r}: method {exp.method!r} trains nothing")


def lora_config(lora: Any, model: Any) -> Any:
    """The PEFT ``LoraConfig`` of a LoraSpec (None: None, full fine-tuning), on the family's language model."""
    if lora is None:
        return None
    from peft import LoraConfig

    from models.registry import family_of

    targets = family_of(model).lora_target_modules(model, lora.targets)
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
                      task_type="CAUSAL_LM")  # fmt: skip


def build_trainer(
    exp: Any,
    model: Any,
    processor: Any,
    items: Sequence[Any],
    *,
    output_dir: str,
    seed: int,
    callbacks: list | None = None,
    completion_sampler: Callable[[int, list[dict[str, Any]]], None] | None = None,
) -> Any:
    """The SFT or GRPO trainer of ``exp`` over ``items`` (full or LoRA by ``exp.lora``)."""
    args = trainer_arguments(exp, output_dir=output_dir, seed=seed)
    peft = lora_config(exp.lora, model)
    train = exp.train
    if exp.method == "sft":
        from trainers.sft import build_sft_trainer

        return build_sft_trainer(model, processor, items, args=args, prompt_id=exp.prompt, lora=peft,
                                 freeze_audio=train.freeze_audio_encoder, schedule_steps=train.schedule_steps,
                                 callbacks=callbacks)  # fmt: skip
    if exp.method == "grpo":
        import trainers.grpo  # looked up at call time: tests and the console wrap trainers.grpo.build_grpo_trainer
        from trainers.rewards import make_rewards

        grpo = exp.grpo
        rewards = make_rewards(exp.prompt, rule=grpo.accuracy_reward, use_format=grpo.format_reward,
                               strict_format=grpo.strict_format)  # fmt: skip
        options = trainers.grpo.GRPOOptions(
            freeze_audio_encoder=train.freeze_audio_encoder, schedule_steps=train.schedule_steps,
            valid_frame_encoder=train.valid_frame_encoder, distinct_clip_encoder=train.distinct_clip_encoder,
            merged_lora_generation=exp.lora is not None and grpo.merged_lora_generation,
            shared_prompt_prefill=grpo.shared_prompt_prefill, shared_prompt_scoring=grpo.shared_prompt_scoring,
            sample_groups=grpo.sample_groups,
        )  # fmt: skip
        return trainers.grpo.build_grpo_trainer(model, processor, items, args=args, prompt_id=exp.prompt,
                                                rewards=rewards, peft_config=peft, options=options,
                                                callbacks=callbacks, completion_sampler=completion_sampler)  # fmt: skip
    raise ValueError(f"experiment {exp.name!r}: method {exp.method!r} trains nothing")


def check_trainer_arguments(resolved: Any) -> None:
    """Build the trainer's arguments now, so transformers' and TRL's checks fail before step 0, naming the fields.

    The fields are named for each trainer argument the error mentions (e.g. ``bf16`` <- ``train.bf16``).
    """
    exp = resolved.experiment
    try:
        trainer_arguments(exp, output_dir=str(resolved.output_dir), seed=resolved.seed)
    except (ValueError, TypeError) as e:
        named = []
        for arg, keys in ARGUMENT_FIELDS.items():
            if re.search(rf"\b{arg}\b", str(e)):
                values = ", ".join(f"{k}={field_value(exp, k)!r}" for k in keys if getattr(exp, k.split(".")[0]))
                named.append(f"{arg} <- {values}")
        where = "; ".join(named) if named else f"the experiment's train and {exp.method} settings"
        kind = "GRPOConfig" if exp.method == "grpo" else "TrainingArguments"
        raise ExperimentError(f"experiment {exp.name!r}: {kind} refuses these settings ({where}): {e}") from None
