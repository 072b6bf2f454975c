"""Qwen2-Audio (``Qwen/Qwen2-Audio-7B-Instruct``, the paper's model) behind the family seam, and its tiny twin.

The tiny twin (``--model tiny``) is a real ``Qwen2AudioForConditionalGeneration`` + ``Qwen2AudioProcessor`` built
with no download: the in-memory tokenizer (``models/tokenizer.py``), a 128-mel Whisper feature extractor, a
2+2-layer model of hidden size 64, deterministic for a seed. Its audio window is 2 s (``chunk_length=2`` with
``max_source_positions=100``; the two must change together) instead of the real model's 30 s: a geometry change
that makes CPU runs take minutes (notes section 9).

Every speed switch is exact here (the tests compare each with the plain path).

Full-size shape with random weights (``QWEN2_AUDIO.build_random("7b")``, for benchmarks): the 7B model's geometry,
a Whisper-large-style audio encoder (32 layers, d_model 1280, 20 heads, FFN 5120, 30 s window of 3000 mel frames)
and a Qwen-7B language model (32 layers, hidden 4096, 32 heads, FFN 11008, vocabulary 156,032): about 8.4B
parameters, with the tiny tokenizer (its ids are a subset of the vocabulary).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from models.family import ModelFamily, tiny_generation_config

# Frames per second of Whisper features (hop 160 at 16 kHz); the encoder sees 2 * max_source_positions frames.
MEL_FRAMES_PER_SECOND = 100


def whisper_token_count(n_frames: int) -> int:
    """Audio tokens for ``n_frames`` valid mel frames through a stride-2 convolution, then stride-2 pooling
    (Qwen2-Audio; Qwen2.5-Omni's encoder gives the same count)."""
    return (((n_frames - 1) // 2 + 1) - 2) // 2 + 1


def tiny_feature_extractor(audio_seconds: int = 2) -> Any:
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(
        feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=audio_seconds, n_fft=400,
        padding_side="right", return_attention_mask=True,
    )  # fmt: skip


def build_tiny_processor(*, audio_seconds: int = 2, words: Iterable[str] | None = None):
    from transformers import Qwen2AudioProcessor

    from models.tokenizer import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(words)
    return Qwen2AudioProcessor(feature_extractor=tiny_feature_extractor(audio_seconds), tokenizer=tokenizer)


def build_tiny_model(
    seed: int = 0,
    *,
    audio_seconds: int = 2,
    hidden_size: int = 64,
    layers: int = 2,
    words: Iterable[str] | None = None,
):
    """A randomly initialised tiny Qwen2-Audio and its processor. Same seed and words: identical weights."""
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2Config,
    )

    processor = build_tiny_processor(audio_seconds=audio_seconds, words=words)
    tok = processor.tokenizer
    audio_config = Qwen2AudioEncoderConfig(
        num_mel_bins=128, encoder_layers=layers, encoder_attention_heads=4, encoder_ffn_dim=4 * hidden_size,
        d_model=hidden_size, max_source_positions=audio_seconds * MEL_FRAMES_PER_SECOND // 2,
    )  # fmt: skip
    text_config = Qwen2Config(
        vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=4 * hidden_size, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    config = Qwen2AudioConfig(
        audio_config=audio_config.to_dict(), text_config=text_config.to_dict(),
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )  # fmt: skip
    config.pad_token_id = tok.pad_token_id
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config)
    model.generation_config = tiny_generation_config(tok)
    model.eval()
    return model, processor


# Qwen/Qwen2-Audio-7B-Instruct's config.json (the numbers bench/shapes.py used since the first GPU check).
QWEN2_AUDIO_7B: dict[str, Any] = {
    "hub_id": "Qwen/Qwen2-Audio-7B-Instruct",
    "audio": dict(num_mel_bins=128, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120, d_model=1280,
                  max_source_positions=1500),
    "text": dict(vocab_size=156032, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=8192, rope_theta=10000.0,
                 tie_word_embeddings=False),
    "audio_seconds": 30,
}  # fmt: skip


def qwen2_audio_7b_config(audio_token_index: int, pad_token_id: int, eos_token_id: int) -> Any:
    """The config of Qwen2-Audio-7B's shape, with the given special token ids."""
    from transformers import Qwen2AudioConfig, Qwen2AudioEncoderConfig, Qwen2Config

    audio = Qwen2AudioEncoderConfig(**QWEN2_AUDIO_7B["audio"])
    text = Qwen2Config(**QWEN2_AUDIO_7B["text"], pad_token_id=pad_token_id, eos_token_id=eos_token_id)
    config = Qwen2AudioConfig(audio_config=audio.to_dict(), text_config=text.to_dict(),
                              audio_token_index=audio_token_index)  # fmt: skip
    config.pad_token_id = pad_token_id
    return config


class Qwen2AudioFamily(ModelFamily):
    name = "qwen2-audio"
    title = "Qwen2-Audio"
    model_types = ("qwen2_audio",)
    hub_ids = ("Qwen/Qwen2-Audio-7B-Instruct", "Qwen/Qwen2-Audio-7B")
    tiny_name = "tiny"
    model_class_name = "Qwen2AudioForConditionalGeneration"
    processor_class_name = "Qwen2AudioProcessor"
    inexact_switches: dict[str, str] = {}

    def audio_token_count(self, n_frames: int) -> int:
        return whisper_token_count(n_frames)

    def build_tiny(self, seed: int = 0, *, words: Iterable[str] | None = None) -> tuple[Any, Any]:
        return build_tiny_model(seed, words=words)

    full_shapes = {"7b": QWEN2_AUDIO_7B}

    def random_processor(self, shape: str) -> Any:
        return build_tiny_processor(audio_seconds=self.full_shape(shape)["audio_seconds"])

    def random_config(self, shape: str, processor: Any) -> Any:
        self.full_shape(shape)
        tok = processor.tokenizer
        return qwen2_audio_7b_config(tok.convert_tokens_to_ids("<|AUDIO|>"), tok.pad_token_id, tok.eos_token_id)


QWEN2_AUDIO = Qwen2AudioFamily()
