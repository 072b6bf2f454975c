"""The fast featuriser must give exactly what the Qwen2-Audio processor gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data.prompts import build_conversation, render_prompt
from models.features import featurize
from models.qwen2_audio import build_tiny_processor
from tests.helpers import TEST_WORDS


@pytest.mark.parametrize("seconds", [[0.3, 1.0, 2.0], [2.0, 2.5], [1.234, 0.0101, 1.99999]])
def test_fast_path_equals_processor(seconds):
    processor = build_tiny_processor(words=TEST_WORDS)
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in seconds]
    texts = [render_prompt(processor, build_conversation(f"Is it high {'or low ' * i}?", ["high", "low"], "p2"))
             for i in range(len(waves))]  # fmt: skip
    fast = featurize(processor, texts, waves)
    slow = featurize(processor, texts, waves, fast=False)
    assert set(fast) == set(slow)
    for key in slow:
        assert fast[key].shape == slow[key].shape, key
        assert fast[key].dtype == slow[key].dtype, key
        assert torch.equal(fast[key], slow[key]), key


def test_one_audio_placeholder_per_prompt():
    processor = build_tiny_processor(words=TEST_WORDS)
    with pytest.raises(ValueError, match="exactly one"):
        featurize(processor, ["no audio here"], [np.zeros(1600, dtype=np.float32)])
