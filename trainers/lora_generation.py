"""Speed switch: sample GRPO completions from merged LoRA weights, then restore the base weights exactly.

PEFT's unmerged LoRA layers add two small matrix products to every adapted projection of every decoding step; on
the 7B shape that doubles the time of a GRPO group's generation (0.83 s against 0.40 s for 8 x 16 tokens,
``bench/results/group_generation-7b-*.json``). Merging the adapters into the base weights before generation and
unmerging afterwards removes that cost, but an unmerge in bf16 does not give the old weights back bit for bit, and
the error would accumulate over thousands of steps. So the adapted base weights are copied before the merge and
copied back after the unmerge: the frozen base stays exactly what it was (``tests/test_lora_generation.py``). The
copy costs the memory of the adapted weights (about 13 GB in bf16 for the 7B language model).

It applies only where no dropout is active: in eval mode, or in training mode with every dropout rate 0
(``trainers.group_prefill.active_dropout``, the predicate the shared-prompt switches use). TRL samples with the
policy in training mode (see ``trainers/group_prefill.py``), where PEFT applies LoRA dropout to the adapter branch's
input and merged weights cannot: with LoRA dropout above 0 (0.05 by default) the block leaves the adapters unmerged
and says so once per process (``--set lora.dropout=0`` lets it merge).

    with merged_lora(peft_model):
        peft_model.generate(...)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from trainers.group_prefill import stands_aside


def _lora_layers(model: Any) -> list[Any]:
    from peft.tuners.lora import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer)]


@contextmanager
def merged_lora(model: Any) -> Iterator[None]:
    """Merge the active LoRA adapters into the base weights inside the block; restore them exactly after it.
    Under active dropout the block runs on the unmerged adapters (merging would drop LoRA's dropout)."""
    layers = _lora_layers(model)
    if not layers or any(layer.merged for layer in layers) or stands_aside("merged_lora_generation", model):
        yield  # nothing to merge, already merged by someone else, or dropout is active: leave it alone
        return
    saved = [layer.get_base_layer().weight.detach().clone() for layer in layers]
    with torch.no_grad():
        for layer in layers:
            layer.merge()
    try:
        yield
    finally:
        with torch.no_grad():
            for layer, weight in zip(layers, saved, strict=True):
                layer.unmerge()  # keeps PEFT's bookkeeping right ...
                layer.get_base_layer().weight.copy_(weight)  # ... and this makes the weights exact again
