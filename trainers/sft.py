"""Supervised fine-tuning of Qwen2-Audio, full or LoRA (one code path: ``lora`` is a config field).

A plain ``transformers.Trainer`` with an audio-aware collator, because TRL's ``SFTTrainer`` silently drops the
audio features and trains on ``<|AUDIO|>`` placeholders as labels (notes section 6). The collator renders each
item with the shared prompt builder, appends the target (the choice text for Prompt <1>) and the end-of-turn token,
featurises the audio, and puts labels on the target tokens and ``<|im_end|>`` only: the system prompt, the audio
placeholders and the question never carry loss.

The loss is a token-level mean over the whole optimizer step: the summed cross-entropy of each micro-batch divided
by the number of target tokens in all micro-batches of the step (``num_items_in_batch``). Gradient accumulation of
2 x 2 therefore equals a batch of 4, and the model's own loss, which ignores ``num_items_in_batch``, is never used
(with it, accumulation of 2 doubled the gradient; notes section 6).

LoRA adapts the language model's attention and MLP projections only (the Whisper encoder has layers with the same
names, so a plain name list would adapt it too). The paper gives no LoRA rank, alpha or targets; r=16, alpha=32,
dropout 0.05 are this suite's choice. Full SFT trains every parameter, audio encoder included, as the original did;
``freeze_audio_encoder`` is an option.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from transformers import Trainer, TrainingArguments

from data.audio import load_audio
from data.prompts import build_conversation, render_prompt, sft_target
from data.schema import Item
from models.features import featurize
from models.loading import audio_window_seconds
from trainers.common import SuiteTrainerMixin, freeze_audio_encoder

END_OF_TURN = "<|im_end|>"


class ItemDataset(Dataset):
    """Items as a torch dataset (the collator does all the work)."""

    def __init__(self, items: Sequence[Item]):
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Item:
        return self.items[i]


@dataclass
class AudioSFTCollator:
    """Items -> model inputs with labels on the answer and end-of-turn tokens only.

    ``prompt_id`` is one prompt for every item, or a function of the item (the toy instruct corpus mixes all three;
    ``thought`` then gives the Prompt <3> thought).
    """

    processor: Any
    prompt_id: str | Callable[[Item], str] = "p1"
    audio_channel: str = "mean"
    thought: Callable[[Item], str] | None = None

    def prompt_of(self, item: Item) -> str:
        return self.prompt_id(item) if callable(self.prompt_id) else self.prompt_id

    def target_text(self, item: Item) -> str:
        thought = self.thought(item) if self.thought else None
        return sft_target(item.answer, self.prompt_of(item), thought) + END_OF_TURN

    def __call__(self, items: Sequence[Item]) -> dict[str, torch.Tensor]:
        window = audio_window_seconds(self.processor)
        waves = [load_audio(i.audio_path, max_seconds=window, channel=self.audio_channel) for i in items]  # type: ignore[arg-type]
        targets = [self.target_text(i) for i in items]
        texts = [
            render_prompt(self.processor, build_conversation(i.question, i.choices, self.prompt_of(i))) + t
            for i, t in zip(items, targets, strict=True)
        ]
        batch = featurize(self.processor, texts, waves, padding_side="right")
        labels = torch.full_like(batch["input_ids"], -100)
        tok = self.processor.tokenizer
        for row, target in enumerate(targets):
            target_ids = tok(target, add_special_tokens=False)["input_ids"]
            end = int(batch["attention_mask"][row].sum())
            start = end - len(target_ids)
            # The prompt ends with "assistant\n", a pre-tokenizer boundary: the target must tokenize the same alone.
            if batch["input_ids"][row, start:end].tolist() != target_ids:
                raise RuntimeError(f"item {items[row].id}: the target does not tokenize as a suffix of the prompt")
            labels[row, start:end] = batch["input_ids"][row, start:end]
        batch["labels"] = labels
        return batch


def token_mean_loss(outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
    """Summed next-token cross-entropy over labelled tokens / labelled tokens in the whole optimizer step."""
    logits = outputs.logits[:, :-1].float()
    targets = labels[:, 1:].to(logits.device)
    total = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="sum"
    )
    n = num_items_in_batch if num_items_in_batch is not None else (targets != -100).sum()
    return total / n


class AudioSFTTrainer(SuiteTrainerMixin, Trainer):
    """``Trainer`` with the token-mean loss; nothing else differs."""


def apply_lora(model: Any, peft_config: Any) -> Any:
    """Wrap ``model`` with the adapters of a PEFT ``LoraConfig`` (None: the model unchanged, full SFT); the config of
    a LoraSpec is ``experiments.trainer_arguments.lora_config`` (the family's language-model projections)."""
    if peft_config is None:
        return model
    from peft import get_peft_model

    return get_peft_model(model, peft_config)


def build_sft_trainer(
    model: Any,
    processor: Any,
    items: Sequence[Item],
    *,
    args: TrainingArguments,
    prompt_id: str | Callable[[Item], str] = "p1",
    thought: Callable[[Item], str] | None = None,
    lora: Any = None,  # a PEFT LoraConfig, or None: full SFT
    freeze_audio: bool = False,
    schedule_steps: int | None = None,
    callbacks: list | None = None,
) -> AudioSFTTrainer:
    if freeze_audio:
        freeze_audio_encoder(model)
    model = apply_lora(model, lora)
    model.config.use_cache = False
    trainer = AudioSFTTrainer(
        model=model,
        args=args,
        train_dataset=ItemDataset(items),
        data_collator=AudioSFTCollator(processor, prompt_id, thought=thought),
        compute_loss_func=token_mean_loss,
        processing_class=processor,
        callbacks=callbacks,
    )
    trainer.schedule_steps = schedule_steps
    return trainer
