"""Qwen2.5-Omni (``Qwen/Qwen2.5-Omni-7B``, ``-3B``) behind the family seam: its thinker, text out.

Layout shared with Qwen3-Omni (thinker only, audio-only processor, tiny twin ``tiny-qwen2.5-omni``):
``models/omni.py``. Audio: Whisper features padded to the 30 s window, the same token count per frame as
Qwen2-Audio; the encoder attends in windows of ``n_window`` frames and reads only the valid frames itself.

Speed switches: see :attr:`Qwen25OmniFamily.inexact_switches` for those that stand aside, and why.
"""

from __future__ import annotations

from models.omni import OmniFamily
from models.qwen2_audio import whisper_token_count

OMNI_ASIDE = {
    "valid_frame_encoder": "the Omni audio encoder already runs on the valid frames only (it packs them by "
    "feature_attention_mask), so there is nothing to cut",
    "distinct_clip_encoder": "written for Qwen2-Audio's encoder call (one padded row per clip); the Omni encoder "
    "takes the clips' valid frames packed into one sequence",
    "shared_prompt_prefill": "multimodal RoPE: positions depend on the audio length, and the shared cache is built "
    "with Qwen2-Audio's 1-D positions",
    "shared_prompt_scoring": "multimodal RoPE: positions depend on the audio length, and the shared pass uses "
    "Qwen2-Audio's 1-D positions",
    "static_cache": "not tested against the dynamic cache for this family's multimodal RoPE",
}


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

    def audio_token_count(self, n_frames: int) -> int:
        return whisper_token_count(n_frames)


QWEN2_5_OMNI = Qwen25OmniFamily()
