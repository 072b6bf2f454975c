"""Generating from merged LoRA weights: the same outputs, and the base weights restored bit for bit; under LoRA
dropout in training mode (as TRL samples) the switch stands aside and generation runs on the unmerged adapters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model

import trainers.group_prefill as group_prefill
from data.prompts import build_conversation, render_prompt
from experiments.spec import LoraSpec
from models.features import featurize
from models.qwen2_audio import build_tiny_model
from tests.helpers import TEST_WORDS
from trainers.lora_generation import merged_lora


def _lora_model(dropout: float, training: bool):
    """The tiny model with non-zero LoRA adapters (B starts at zero, so merging would change nothing) and inputs."""
    model, processor = build_tiny_model(seed=0, words=TEST_WORDS)
    spec = LoraSpec()
    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=dropout, target_modules=spec.targets)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    peft_model.train(training)
    text = render_prompt(processor, build_conversation("Is it high?", ["high", "low"], "p2"))
    inputs = featurize(processor, [text] * 2, [np.full(16000, 0.1, np.float32), np.full(9000, -0.2, np.float32)])
    return peft_model, inputs


def _generate(model, inputs, **kw):
    torch.manual_seed(0)
    return model.generate(**inputs, max_new_tokens=8, **kw)


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train-dropout-0"])
def test_merged_generation_is_the_same_and_leaves_the_base_exact(training):
    peft_model, inputs = _lora_model(dropout=0.0, training=training)  # no dropout: the switch applies
    before = {k: v.detach().clone() for k, v in peft_model.named_parameters()}
    with torch.no_grad():
        plain = _generate(peft_model, inputs, do_sample=False)
        with merged_lora(peft_model):
            merged_weights_differ = any(
                not torch.equal(before[k], v) for k, v in peft_model.named_parameters() if "base_layer" in k
            )
            merged = _generate(peft_model, inputs, do_sample=False)
    assert merged_weights_differ  # the block really ran on merged weights
    assert torch.equal(plain, merged)
    assert all(torch.equal(before[k], v) for k, v in peft_model.named_parameters())  # restored bit for bit
    assert not any(m.merged for m in peft_model.modules() if hasattr(m, "merged_adapters"))


def test_stands_aside_under_lora_dropout_in_training_mode(capsys, monkeypatch):
    monkeypatch.setattr(group_prefill, "_told", set())  # a fresh process: nothing said yet
    peft_model, inputs = _lora_model(dropout=0.5, training=True)
    before = {k: v.detach().clone() for k, v in peft_model.named_parameters()}
    sampling = {"do_sample": True, "top_k": 50, "temperature": 1.0}
    with torch.no_grad():
        plain = _generate(peft_model, inputs, **sampling)
        for _ in range(2):
            with merged_lora(peft_model):
                unmerged = all(torch.equal(before[k], v) for k, v in peft_model.named_parameters())
                merged = _generate(peft_model, inputs, **sampling)
            assert unmerged  # the adapters stayed unmerged: merged weights cannot drop out the LoRA branch's input
            assert torch.equal(plain, merged)  # the same draws, dropout masks included
    assert all(torch.equal(before[k], v) for k, v in peft_model.named_parameters())
    said = [line for line in capsys.readouterr().out.splitlines() if "stands aside" in line]
    assert said == [
        "merged_lora_generation stands aside: dropout is active during sampling (LoRA dropout 0.5); "
        "set --set lora.dropout=0 to use it"
    ]  # once per process, not once per generation


def test_grpo_trainer_uses_the_switch(tiny_dir, smoke_train_items, tmp_path, monkeypatch):
    import dataclasses

    import trainers.lora_generation as lg
    from experiments.registry import get_experiment
    from experiments.spec import GRPOSpec, TrainSpec
    from experiments.trainer_arguments import build_trainer
    from models.loading import load_model_and_processor

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
    trainer = build_trainer(exp, model, processor, smoke_train_items[:8], output_dir=str(tmp_path / "r"), seed=0)
    trainer.train()
    assert len(calls) == 2  # one merged generation per optimizer step
