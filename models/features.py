"""Turn prompt texts and waveforms into model inputs for any family, fast and identical to the processor.

``featurize(processor, texts, waves)`` returns exactly what
``processor(text=texts, audio=waves, sampling_rate=16000, padding=True, return_tensors="pt")`` returns (minus the
bookkeeping key ``num_audio_tokens``): ``input_ids`` and ``attention_mask`` (text padded on the tokenizer's side),
``input_features`` (log-mel, audio always padded on the right to the window) and ``feature_attention_mask``.
It skips the processor's per-clip Python padding and calls the Whisper log-mel transform once on the whole batch,
which halves featurisation time on CPU. ``tests/test_features.py`` checks equality with the processor for clips
shorter than, equal to and longer than the window, for every family; a family whose processor pads audio to the
longest clip rather than the window (Qwen3-Omni), and any other feature extractor, use the processor itself.

Every consumer (evaluator, SFT collator, GRPO trainer) builds its inputs here, so audio can never be prepared in two
different ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _fast_path_ok(fe: Any, family: Any) -> bool:
    return (
        family.pads_audio_to_window
        and type(fe).__name__ == "WhisperFeatureExtractor"
        and hasattr(fe, "_torch_extract_fbank_features")
        and getattr(fe, "padding_side", "right") == "right"
        and not getattr(fe, "dither", 0.0)
    )


def featurize(
    processor: Any,
    texts: Sequence[str],
    waves: Sequence[np.ndarray],
    *,
    fast: bool = True,
    padding_side: str | None = None,
) -> dict:
    """Model inputs for a batch of prompt texts (each with one audio placeholder, ``processor.audio_token``) and
    16 kHz waveforms.

    Text is padded on ``padding_side`` (default: the tokenizer's own, left for generation; training passes
    "right"); audio is always padded on the right, as the encoders require.
    """
    import torch

    from models.registry import family_of

    if len(texts) != len(waves):
        raise ValueError(f"featurize: {len(texts)} texts but {len(waves)} waveforms")
    fe = processor.feature_extractor
    side = {"padding_side": padding_side} if padding_side else {}
    family = family_of(processor)
    if not (fast and _fast_path_ok(fe, family)):
        out = processor(
            text=list(texts), audio=list(waves), sampling_rate=16000, padding=True, return_tensors="pt", **side
        )
        out.pop("num_audio_tokens", None)
        return dict(out)

    n_samples, hop = fe.n_samples, fe.hop_length
    batch = np.zeros((len(waves), n_samples), dtype=np.float32)
    lengths = []
    for i, wave in enumerate(waves):
        wave = np.asarray(wave, dtype=np.float32)[:n_samples]  # the processor truncates to the window too
        batch[i, : len(wave)] = wave
        lengths.append(len(wave))
    features = fe._torch_extract_fbank_features(batch, "cpu")
    n_frames = features.shape[-1]
    # A frame is valid when its first sample is (the processor subsamples its sample mask every hop samples).
    frame_starts = np.arange(n_frames) * hop
    feature_mask = (frame_starts[None, :] < np.asarray(lengths)[:, None]).astype(np.int32)

    audio_token = processor.audio_token
    expanded = []
    for text, valid in zip(texts, feature_mask.sum(-1).tolist(), strict=True):
        if text.count(audio_token) != 1:
            raise ValueError(f"featurize expects exactly one {audio_token} per prompt, got {text.count(audio_token)}")
        expanded.append(text.replace(audio_token, audio_token * family.audio_token_count(int(valid))))
    tokens = processor.tokenizer(expanded, padding=True, return_tensors="pt", **side)
    return {
        "input_ids": tokens["input_ids"],
        "attention_mask": tokens["attention_mask"],
        "input_features": torch.from_numpy(np.ascontiguousarray(features)),
        "feature_attention_mask": torch.from_numpy(feature_mask),
    }


def placeholder_ids(processor: Any) -> list[int]:
    """The token ids of the processor's audio placeholder and of any image or video placeholder it has."""
    tokens = [getattr(processor, name, None) for name in ("audio_token", "image_token", "video_token")]
    return [processor.tokenizer.convert_tokens_to_ids(t) for t in tokens if t is not None]
