"""The valid-frames audio encoder gives the stock encoder's outputs, loss and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data.prompts import build_conversation, render_prompt
from models.audio_encoder import use_valid_frame_encoder
from models.features import featurize
from models.qwen2_audio import build_tiny_model
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


def _encoder_batch_sizes(model):
    sizes = []
    hook = model.model.audio_tower.conv1.register_forward_hook(lambda m, a, o: sizes.append(o.shape[0]))
    return sizes, hook


def _loss_logits_grads(model, inputs, dtype=torch.float32):
    labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        out = model(**inputs, labels=labels)
    out.loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    return out.logits.detach().float(), out.loss.detach().float(), grads


def test_distinct_rows_groups_exact_copies_only(monkeypatch):
    import models.audio_encoder
    from models.audio_encoder import distinct_rows

    a, b = torch.randn(2, 4, 10)
    feats = torch.stack([a, a, b, a, b, b])
    lengths = torch.tensor([10, 10, 10, 10, 10, 7])  # the last row: b's features with another valid length
    first, inverse = distinct_rows(feats, lengths)
    assert first.tolist() == [0, 2, 5] and inverse.tolist() == [0, 0, 1, 0, 1, 2]
    assert torch.equal(feats[first][inverse], feats)
    # Two different rows whose hashes collide (mocked): the element-wise check keeps them apart.
    monkeypatch.setattr(models.audio_encoder, "_row_keys", lambda flat: [0] * flat.shape[0])
    assert distinct_rows(torch.stack([a, b, a]), None)[0].tolist() == [0, 1, 2]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("valid_frames", [False, True])
def test_distinct_clips_give_the_same_loss_and_gradients(dtype, valid_frames):
    """G copies of a clip encoded once: same logits, loss and gradients (audio encoder included) as per-row."""
    from models.audio_encoder import use_encoder_switches

    model, processor = build_tiny_model(seed=0, words=TEST_WORDS)
    model.train()
    clips = _inputs(processor, [0.4, 1.1])
    rows = torch.tensor([0, 0, 1, 0, 1, 1])  # two prompts' groups, shuffled as TRL shuffles them
    inputs = {k: v[rows] for k, v in clips.items()}
    use_encoder_switches(model, valid_frames=valid_frames, distinct_clips=False)
    ref_logits, ref_loss, ref_grads = _loss_logits_grads(model, inputs, dtype)
    sizes, hook = _encoder_batch_sizes(model)
    use_encoder_switches(model, valid_frames=valid_frames, distinct_clips=True)
    logits, loss, grads = _loss_logits_grads(model, inputs, dtype)
    hook.remove()
    assert sizes == [2]  # one encoder pass over the two distinct clips, not six
    tol = {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 2e-2, "rtol": 2e-2}
    assert torch.allclose(logits, ref_logits, **tol)
    assert torch.allclose(loss, ref_loss, **tol)
    assert grads.keys() == ref_grads.keys() and any("audio_tower" in k for k in grads)
    for k, g in grads.items():
        scale = ref_grads[k].abs().max().clamp_min(1e-6)
        assert ((g - ref_grads[k]).abs().max() / scale) < (1e-4 if dtype == torch.float32 else 5e-2), k
    use_encoder_switches(model, valid_frames=False, distinct_clips=False)
    assert "_stock_forward" not in model.model.audio_tower.__dict__


def test_distinct_clips_are_skipped_when_dropout_is_on():
    from models.audio_encoder import use_distinct_clip_encoder

    model, processor = build_tiny_model(seed=0, words=TEST_WORDS)
    model.config.audio_config.dropout = model.model.audio_tower.config.dropout = 0.1
    inputs = {k: v[[0, 0, 0]] for k, v in _inputs(processor, [0.4]).items()}
    use_distinct_clip_encoder(model)
    sizes, hook = _encoder_batch_sizes(model)
    model.train()
    model(**inputs)
    model.eval()
    model(**inputs)
    hook.remove()
    assert sizes == [3, 1]  # copies would differ under dropout in training; in eval mode they are shared


def test_valid_frames_under_bf16_autocast():
    """The same check under bf16 autocast (as trainers run on GPU): equal within bf16 rounding."""
    model, processor = build_tiny_model(seed=0, words=TEST_WORDS)
    model.train()
    inputs = _inputs(processor, [0.4, 1.1, 0.73])
    ref_logits, ref_loss, ref_grads = _loss_logits_grads(model, inputs, torch.bfloat16)
    sizes = []
    hook = model.model.audio_tower.conv2.register_forward_hook(lambda m, a, o: sizes.append(o.shape[-1]))
    use_valid_frame_encoder(model)
    logits, loss, grads = _loss_logits_grads(model, inputs, torch.bfloat16)
    hook.remove()
    assert sizes[0] < 100
    assert torch.allclose(logits, ref_logits, atol=2e-2, rtol=2e-2) and torch.allclose(loss, ref_loss, atol=2e-2)
    assert grads.keys() == ref_grads.keys()
    for k, g in grads.items():
        assert (g - ref_grads[k]).abs().max() / ref_grads[k].abs().max().clamp_min(1e-6) < 5e-2, k
