"""Prefilling each distinct prompt once gives plain generation's scores and tokens, with the audio in the prefill."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data.features import featurize
from data.models import build_tiny_model
from data.prompts import build_conversation, render_prompt
from tests.helpers import TEST_WORDS
from trainers.group_prefill import distinct_prompts, shared_prefill


def _batch(processor, rows, padding_side="left"):
    questions = ["Q?", "Is it a rather long question about the sound?"]
    texts = [render_prompt(processor, build_conversation(q, ["a", "b"], "p2")) for q in questions]
    rng = np.random.default_rng(0)
    waves = [(0.2 * rng.standard_normal(n)).astype(np.float32) for n in (8000, 30400)]
    feats = featurize(processor, texts, waves, padding_side=padding_side)
    return {k: v[torch.tensor(rows)] for k, v in feats.items()}


def _generate(model, inputs, shared, **kw):
    prefill_rows = []
    hook = model.model.language_model.embed_tokens.register_forward_hook(
        lambda m, a, o: prefill_rows.append(tuple(a[0].shape)) if a[0].shape[1] > 1 else None
    )
    torch.manual_seed(0)
    with torch.no_grad(), shared_prefill(model) if shared else torch.enable_grad():
        out = model.generate(**inputs, max_new_tokens=6, output_scores=True, return_dict_in_generate=True, **kw)
    hook.remove()
    return out.sequences, torch.stack(out.scores), prefill_rows


@pytest.mark.parametrize("sampling", [{"do_sample": False}, {"do_sample": True, "top_k": 50, "temperature": 1.0}])
def test_same_scores_and_tokens_as_plain_generation(sampling):
    model, processor = build_tiny_model(seed=1, words=TEST_WORDS)
    inputs = _batch(processor, [0, 1, 0, 1, 1, 0])  # two prompts' groups of 3, interleaved
    ref_tokens, ref_scores, ref_prefill = _generate(model, inputs, False, **sampling)
    tokens, scores, prefill = _generate(model, inputs, True, **sampling)
    width = inputs["input_ids"].shape[1]
    assert ref_prefill == [(6, width)] and prefill == [(2, width - 1)]  # two distinct prompts prefilled, once each
    assert torch.equal(tokens, ref_tokens)
    finite = torch.isfinite(ref_scores)
    assert torch.equal(finite, torch.isfinite(scores))
    assert torch.allclose(scores[finite], ref_scores[finite], atol=1e-4)
    silent = dict(inputs, input_features=torch.zeros_like(inputs["input_features"]))
    _, silent_scores, _ = _generate(model, silent, True, **sampling)
    assert (silent_scores[finite] - ref_scores[finite]).abs().max() > 1e-3  # so the audio is in the shared prefill
    assert "generate" not in model.__dict__  # the switch leaves no trace on the instance


def test_falls_back_to_plain_generation_where_sharing_does_not_apply():
    model, processor = build_tiny_model(seed=1, words=TEST_WORDS)
    distinct = _batch(processor, [0, 1])
    _, _, prefill = _generate(model, distinct, True)
    assert prefill == [(2, distinct["input_ids"].shape[1])]
    right = _batch(processor, [0, 1, 0, 1], padding_side="right")
    _, _, prefill = _generate(model, right, True)
    assert prefill == [(4, right["input_ids"].shape[1])]


def test_distinct_prompts_compare_tokens_padding_and_audio():
    ids = torch.tensor([[0, 5, 6], [0, 5, 6], [5, 5, 6], [0, 5, 6]])
    mask = torch.tensor([[0, 1, 1], [0, 1, 1], [1, 1, 1], [0, 1, 1]])
    features = torch.zeros(4, 2, 8)
    features[3, 0, 0] = 1.0  # same text as rows 0-1, another clip
    first, inverse = distinct_prompts(ids, mask, features, torch.ones(4, 8, dtype=torch.long))
    assert first.tolist() == [0, 2, 3] and inverse.tolist() == [0, 0, 1, 2]
