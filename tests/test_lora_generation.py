"""Generating from merged LoRA weights: the same greedy outputs, and the base weights restored bit for bit."""

from __future__ import annotations

import numpy as np
import torch
from peft import LoraConfig, get_peft_model

from data.features import featurize
from data.models import build_tiny_model
from data.prompts import build_conversation, render_prompt
from experiments.spec import LoraSpec
from tests.helpers import TEST_WORDS
from trainers.lora_generation import merged_lora


def test_merged_generation_is_the_same_and_leaves_the_base_exact():
    model, processor = build_tiny_model(seed=0, words=TEST_WORDS)
    spec = LoraSpec()
    peft_model = get_peft_model(model, LoraConfig(r=spec.r, lora_alpha=spec.alpha, target_modules=spec.targets))
    with torch.no_grad():  # non-zero adapters (B starts at zero), so merging changes the weights
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    peft_model.eval()
    text = render_prompt(processor, build_conversation("Is it high?", ["high", "low"], "p2"))
    inputs = featurize(processor, [text] * 2, [np.full(16000, 0.1, np.float32), np.full(9000, -0.2, np.float32)])
    before = {k: v.detach().clone() for k, v in peft_model.named_parameters()}
    with torch.no_grad():
        plain = peft_model.generate(**inputs, max_new_tokens=8, do_sample=False)
        with merged_lora(peft_model):
            merged_weights_differ = any(
                not torch.equal(before[k], v) for k, v in peft_model.named_parameters() if "base_layer" in k
            )
            merged = peft_model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert merged_weights_differ  # the block really ran on merged weights
    assert torch.equal(plain, merged)
    assert all(torch.equal(before[k], v) for k, v in peft_model.named_parameters())  # restored bit for bit
    assert not any(m.merged for m in peft_model.modules() if hasattr(m, "merged_adapters"))


def test_grpo_trainer_uses_the_switch(tiny_dir, smoke_train_items, tmp_path, monkeypatch):
    import dataclasses

    import trainers.lora_generation as lg
    from data.models import load_model_and_processor
    from experiments.registry import get_experiment
    from experiments.spec import GRPOSpec, TrainSpec
    from trainers.grpo import build_grpo_trainer

    calls = []
    original = lg.merged_lora

    def spy(model):
        calls.append(1)
        return original(model)

    monkeypatch.setattr(lg, "merged_lora", spy)
    exp = dataclasses.replace(
        get_experiment("grpo-p2-lora"),
        train=TrainSpec(learning_rate=1e-3, epochs=None, max_steps=2, per_device_batch=2, grad_accum=1, save_every=0),
        grpo=GRPOSpec(num_generations=4, max_completion_length=4, merged_lora_generation=True),
    )
    model, processor = load_model_and_processor(tiny_dir, device="cpu", dtype=torch.float32)
    trainer = build_grpo_trainer(model, processor, smoke_train_items[:8], exp=exp, output_dir=str(tmp_path / "r"),
                                 seed=0, report_to=[], bf16=False)  # fmt: skip
    trainer.train()
    assert len(calls) == 2  # one merged generation per optimizer step
