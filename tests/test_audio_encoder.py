"""The valid-frames audio encoder gives the stock encoder's outputs, loss and gradients."""

from __future__ import annotations

import numpy as np
import torch

from data.audio_encoder import use_valid_frame_encoder
from data.features import featurize
from data.models import build_tiny_model
from data.prompts import build_conversation, render_prompt
from tests.helpers import TEST_WORDS


def _inputs(processor, seconds):
    rng = np.random.default_rng(0)
    waves = [(0.2 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in seconds]
    text = render_prompt(processor, build_conversation("Is it high or low?", ["high", "low"], "p2"))
    return featurize(processor, [text] * len(waves), waves, padding_side="right")


def test_same_logits_loss_and_gradients():
    model, processor = build_tiny_model(seed=0, words=TEST_WORDS)
    model.train()
    inputs = _inputs(processor, [0.4, 1.1, 0.73])  # all well under the 2 s window: the fast path is taken
    labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)

    def run():
        model.zero_grad()
        out = model(**inputs, labels=labels)
        out.loss.backward()
        return (
            out.logits.detach(),
            out.loss.detach(),
            [p.grad.clone() for p in model.parameters() if p.grad is not None],
        )

    calls = []
    hook = model.model.audio_tower.conv2.register_forward_hook(lambda m, a, o: calls.append(o.shape[-1]))
    ref_logits, ref_loss, ref_grads = run()
    use_valid_frame_encoder(model)
    logits, loss, grads = run()
    hook.remove()
    assert calls[0] == 100 and calls[1] < 100  # the fast encoder really ran on fewer frames
    assert torch.allclose(logits, ref_logits, atol=1e-5, rtol=1e-5)
    assert torch.allclose(loss, ref_loss, atol=1e-6)
    assert len(grads) == len(ref_grads) and all(
        torch.allclose(g, r, atol=1e-5, rtol=1e-4) for g, r in zip(grads, ref_grads, strict=True)
    )
    use_valid_frame_encoder(model, False)
    assert "_stock_forward" not in model.model.audio_tower.__dict__


def test_same_greedy_generation():
    model, processor = build_tiny_model(seed=1, words=TEST_WORDS)
    inputs = featurize(processor, [render_prompt(processor, build_conversation("Q?", ["a", "b"], "p2"))] * 2,
                       [np.ones(8000, np.float32) * 0.1, np.ones(30400, np.float32) * 0.1])  # fmt: skip
    with torch.no_grad():
        ref = model.generate(**inputs, max_new_tokens=8, do_sample=False)
        use_valid_frame_encoder(model)
        fast = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert torch.equal(ref, fast)
