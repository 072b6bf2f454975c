"""The tiny Qwen2-Audio: deterministic, saved and reloaded like a hub model, audio padded correctly, words atomic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data.prompts import build_conversation, render_prompt
from models.loading import load_model_and_processor
from models.qwen2_audio import build_tiny_model
from models.saving import save_model
from models.tokenizer import build_tiny_tokenizer
from tests.helpers import TEST_WORDS, tone


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(seed=0, words=TEST_WORDS)


def _inputs(processor, waves):
    text = render_prompt(processor, build_conversation("Is the note high or low?", ["high", "low"], "p2"))
    return processor(text=[text] * len(waves), audio=waves, sampling_rate=16000, padding=True, return_tensors="pt")


def test_same_seed_same_weights_other_seed_differs(tiny):
    model, _ = tiny
    again, _ = build_tiny_model(seed=0, words=TEST_WORDS)
    other, _ = build_tiny_model(seed=1, words=TEST_WORDS)
    a, b, c = (dict(m.named_parameters()) for m in (model, again, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_round_trip_through_save_and_load(tiny, tmp_path):
    model, processor = tiny
    save_model(model, processor, tmp_path / "tiny")
    assert (tmp_path / "tiny" / "model.safetensors").exists()
    loaded, proc2 = load_model_and_processor(tmp_path / "tiny", device="cpu")
    waves = [tone(300, 1.5), tone(900, 0.7)]
    x1, x2 = _inputs(processor, waves), _inputs(proc2, waves)
    assert torch.equal(x1["input_ids"], x2["input_ids"])
    assert torch.allclose(x1["input_features"], x2["input_features"])
    x1.pop("num_audio_tokens", None), x2.pop("num_audio_tokens", None)
    with torch.no_grad():
        assert torch.allclose(model(**x1).logits, loaded(**x2).logits, atol=1e-6)
    assert proc2.tokenizer.padding_side == "left"
    assert proc2.feature_extractor.padding_side == "right"
    assert proc2.feature_extractor.chunk_length == processor.feature_extractor.chunk_length == 2
    assert loaded.config.audio_config.max_source_positions == 100


def test_audio_is_right_padded_and_tokens_follow_length(tiny):
    _, processor = tiny
    x = _inputs(processor, [tone(300, 2.0), tone(300, 0.5)])
    mask = x["feature_attention_mask"]
    # Valid frames first: a left-padded waveform would make the model read padding instead of audio.
    assert mask[1, :50].all() and not mask[1, 60:].any()
    n_audio = (x["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")).sum(-1)
    # 200 and 50 mel frames -> the encoder's stride-2 conv and stride-2 pooling: ((L - 1) // 2 + 1 - 2) // 2 + 1.
    assert n_audio.tolist() == [50, 12]


def test_logits_depend_on_audio(tiny):
    model, processor = tiny
    x_tone = _inputs(processor, [tone(300, 1.5)])
    x_silent = _inputs(processor, [np.zeros(24000, dtype=np.float32)])
    x_tone.pop("num_audio_tokens", None), x_silent.pop("num_audio_tokens", None)
    with torch.no_grad():
        diff = (model(**x_tone).logits[0, -1] - model(**x_silent).logits[0, -1]).abs().max()
    assert diff > 1e-4


def test_answer_words_are_single_tokens_in_every_context():
    tok = build_tiny_tokenizer(["high", "low", "quieter", "answer"])
    for word in ("high", "low", "quieter"):
        (wid,) = tok.convert_tokens_to_ids([word])
        for text in (f"['{word}', 'x']", f"<answer>{word}</answer>", f" {word}"):
            assert wid in tok(text)["input_ids"], (word, text, tok.tokenize(text))


def test_default_tokenizer_covers_toy_answer_words():
    from data import toy

    tok = build_tiny_tokenizer()
    for word in toy.ANSWER_WORDS:
        for piece in word.split():
            assert len(tok.tokenize(piece)) == 1, (piece, tok.tokenize(piece))


def test_a_checkpoint_missing_a_weight_is_refused_not_filled_at_random(tiny_dir, tmp_path):
    """transformers would warn and initialise the missing weight at random; evaluation by path must refuse."""
    import shutil

    from safetensors.torch import load_file, save_file

    from models.loading import CheckpointError, load_model_and_processor

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_dir, ckpt)
    weights = load_file(ckpt / "model.safetensors")
    dropped = sorted(weights)[0]
    save_file(
        {k: v for k, v in weights.items() if k != dropped}, ckpt / "model.safetensors", metadata={"format": "pt"}
    )
    with pytest.raises(CheckpointError, match="1 missing") as e:
        load_model_and_processor(ckpt, device="cpu")
    assert str(ckpt) in str(e.value)


def test_a_lora_checkpoint_whose_adapters_match_nothing_is_refused(tiny_dir, tmp_path):
    import json

    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file

    from models.loading import CheckpointError, load_model_and_processor

    model, processor = load_model_and_processor(tiny_dir, device="cpu")
    lora = get_peft_model(model, LoraConfig(r=2, target_modules=r".*language_model.*\.(q_proj|v_proj)"))
    ckpt = tmp_path / "lora"
    lora.save_pretrained(ckpt)
    config = json.loads((ckpt / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_dir)
    processor.save_pretrained(ckpt)
    load_model_and_processor(ckpt, device="cpu")  # as saved: loads
    adapters = load_file(ckpt / "adapter_model.safetensors")
    save_file({k.replace("q_proj", "k_proj"): v for k, v in adapters.items()}, ckpt / "adapter_model.safetensors")
    with pytest.raises(CheckpointError, match="missing"):
        load_model_and_processor(ckpt, device="cpu")
