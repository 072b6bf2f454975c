"""Random-weight models for benchmarks: the tiny toy model, or one shaped like Qwen2-Audio-7B (no download).

The 7B shape: Whisper-large-style audio encoder (32 layers, d_model 1280, 20 heads, FFN 5120, 30 s window of
3000 mel frames) and a Qwen-7B language model (32 layers, hidden 4096, 32 heads, FFN 11008, vocabulary 156,032):
about 8.4B parameters. Weights are random and the tokenizer is the tiny one (its ids are a subset of the vocabulary),
so the model's outputs mean nothing, but every matrix has the real size: timings and memory are the real model's.
"""

from __future__ import annotations

from typing import Any


def qwen2_audio_7b_config(audio_token_index: int, pad_token_id: int, eos_token_id: int) -> Any:
    from transformers import Qwen2AudioConfig, Qwen2AudioEncoderConfig, Qwen2Config

    audio = Qwen2AudioEncoderConfig(num_mel_bins=128, encoder_layers=32, encoder_attention_heads=20,
                                    encoder_ffn_dim=5120, d_model=1280, max_source_positions=1500)  # fmt: skip
    text = Qwen2Config(vocab_size=156032, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=8192,
                       rope_theta=10000.0, tie_word_embeddings=False, pad_token_id=pad_token_id,
                       eos_token_id=eos_token_id)  # fmt: skip
    config = Qwen2AudioConfig(audio_config=audio.to_dict(), text_config=text.to_dict(),
                              audio_token_index=audio_token_index)  # fmt: skip
    config.pad_token_id = pad_token_id
    return config


def random_model(shape: str, *, device: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
    """(model, processor) with random weights. ``shape``: "tiny" (2 s window) or "7b" (30 s window)."""
    import torch
    from transformers import GenerationConfig, Qwen2AudioForConditionalGeneration

    from models.loading import prepare_processor
    from models.qwen2_audio import build_tiny_model, build_tiny_processor

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if shape == "tiny":
        model, processor = build_tiny_model(seed=0)
        return model.to(device=device, dtype=dtype or torch.float32).eval(), processor
    if shape != "7b":
        raise ValueError(f"unknown shape {shape!r}; valid: tiny, 7b")
    processor = prepare_processor(build_tiny_processor(audio_seconds=30))
    tok = processor.tokenizer
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    config = qwen2_audio_7b_config(tok.convert_tokens_to_ids("<|AUDIO|>"), tok.pad_token_id, tok.eos_token_id)
    config._attn_implementation = "sdpa"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype or torch.bfloat16)
    try:
        with torch.device(device):
            model = Qwen2AudioForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    model.generation_config = GenerationConfig(eos_token_id=[im_end, tok.eos_token_id], pad_token_id=tok.pad_token_id)
    return model.eval(), processor


def synthetic_benchmark(root: Any, n: int, seconds: float, *, seed: int = 0) -> Any:
    """An MMAU-format file of ``n`` items with ``seconds``-long random tone clips (2 choices each)."""
    import json
    from pathlib import Path

    import numpy as np

    from data.audio import write_wav

    root = Path(root)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    records = []
    for i in range(n):
        wave = (0.3 * np.sin(2 * np.pi * rng.uniform(150, 1500) * t)).astype(np.float32)
        item_id = f"bench{i:05d}"
        write_wav(root / "test-mini-audios" / f"{item_id}.wav", wave)
        records.append({"id": item_id, "audio_id": f"./test-mini-audios/{item_id}.wav",
                        "question": "Is the note high or low?", "choices": ["high", "low"], "answer": "high",
                        "task": ["sound", "music", "speech"][i % 3], "difficulty": "easy",
                        "sub-category": "pitch", "category": "pitch", "dataset": "bench", "split": "test-mini"})  # fmt: skip
    path = root / "bench.json"
    path.write_text(json.dumps(records))
    return path
