"""Qwen2.5-Omni (``Qwen/Qwen2.5-Omni-7B``, ``-3B``) behind the family seam: its thinker, text out.

Layout shared with Qwen3-Omni (thinker only, audio-only processor, tiny twin ``tiny-qwen2.5-omni``):
``models/omni.py``. Audio: Whisper features padded to the 30 s window, the same token count per frame as
Qwen2-Audio; the encoder attends in windows of ``n_window`` frames and reads only the valid frames itself.

Speed switches: see :attr:`Qwen25OmniFamily.inexact_switches` for those that stand aside, and why.

Full-size shapes (thinker, random weights, ``QWEN2_5_OMNI.build_random("7b")``): ``7b`` and ``3b``, numbers below.
"""

from __future__ import annotations

from typing import Any

from models.omni import OmniFamily
from models.qwen2_audio import whisper_token_count

OMNI_ASIDE = {
    "valid_frame_encoder": "the Omni audio encoder already runs on the valid frames only (it packs them by "
    "feature_attention_mask), so there is nothing to cut",
    "distinct_clip_encoder": "written for Qwen2-Audio's encoder call (one padded row per clip); the Omni encoder "
    "takes the clips' valid frames packed into one sequence",
    "static_cache": "not tested against the dynamic cache for this family's multimodal RoPE",
}


# The thinkers of the released checkpoints. Sources: transformers' Qwen2_5Omni{Text,AudioEncoder}Config defaults, which
# are documented as Qwen/Qwen2.5-Omni-7B's (configuration_qwen2_5_omni.py: text 3584 hidden, 28 layers, 28 heads,
# 4 KV heads, FFN 18944, vocabulary 152,064, untied head; audio 32 layers, d_model 1280, 20 heads, FFN 5120,
# n_window 100, output 3584); the 3B text numbers from its config.json as a public port records them (cpehle/tyr,
# Tyr/Model/Qwen25Omni/Config.lean: hidden 2048, 36 layers, 16 heads, 2 KV heads, FFN 11008, vocabulary 151,936,
# RoPE theta 1e6, 32,768 positions; that file agrees with the transformers defaults for the 7B). The 3B's audio
# encoder is the 7B's with its output projected to the 3B's hidden size (2048), as the thinker requires. Both:
# head dim 128 (hidden / heads), multimodal RoPE sections [16, 24, 24] (their sum, 64, is half the head dim).
# Not verified against the 3B's own config.json: whether its thinker ties the output head to the embeddings (taken
# untied, as the 7B's; tied would be 0.31B parameters fewer).
_OMNI_AUDIO = dict(num_mel_bins=128, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120, d_model=1280,
                   max_source_positions=1500, n_window=100)  # fmt: skip
_ROPE = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]}
QWEN2_5_OMNI_SHAPES: dict[str, dict[str, Any]] = {
    "7b": {
        "hub_id": "Qwen/Qwen2.5-Omni-7B",
        "audio": {**_OMNI_AUDIO, "output_dim": 3584},
        "text": dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                     num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768, rms_norm_eps=1e-6,
                     rope_parameters=_ROPE, tie_word_embeddings=False),
        "audio_seconds": 30,
    },
    "3b": {
        "hub_id": "Qwen/Qwen2.5-Omni-3B",
        "audio": {**_OMNI_AUDIO, "output_dim": 2048},
        "text": dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                     num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6,
                     rope_parameters=_ROPE, tie_word_embeddings=False),
        "audio_seconds": 30,
    },
}  # fmt: skip


class Qwen25OmniFamily(OmniFamily):
    name = "qwen2.5-omni"
    title = "Qwen2.5-Omni"
    model_types = ("qwen2_5_omni", "qwen2_5_omni_thinker")
    full_model_types = ("qwen2_5_omni",)
    hub_ids = ("Qwen/Qwen2.5-Omni-7B", "Qwen/Qwen2.5-Omni-3B")
    tiny_name = "tiny-qwen2.5-omni"
    model_class_name = "Qwen2_5OmniThinkerForConditionalGeneration"
    processor_class_name = "Qwen2_5OmniProcessor"
    thinker_config_name = "Qwen2_5OmniThinkerConfig"
    full_config_name = "Qwen2_5OmniConfig"
    named_tokens = {"audio_token": "<|AUDIO|>", "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
                    "image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>", "vision_bos_token": "<|vision_bos|>",
                    "vision_eos_token": "<|vision_eos|>"}  # fmt: skip
    default_system = "You are a helpful assistant."
    speech_prefixes = ("talker", "token2wav")
    inexact_switches = OMNI_ASIDE
    full_shapes = QWEN2_5_OMNI_SHAPES

    def audio_token_count(self, n_frames: int) -> int:
        return whisper_token_count(n_frames)


QWEN2_5_OMNI = Qwen25OmniFamily()
