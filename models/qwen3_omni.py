"""Qwen3-Omni (``Qwen/Qwen3-Omni-30B-A3B-Instruct``) behind the family seam: its thinker, text out.

Layout shared with Qwen2.5-Omni (thinker only, audio-only processor, tiny twin ``tiny-qwen3-omni``):
``models/omni.py``. Audio: Whisper features padded to the longest clip of the batch (not to a window, so the suite
featurises through the processor), about 13 tokens per second. The language model is a mixture of experts whose
experts are fused 3-D parameters (``mlp.experts.gate_up_proj``, ``mlp.experts.down_proj``), not ``nn.Linear``
modules.

**LoRA on Qwen3-Omni adapts the attention projections of the language model only** (q, k, v, o in every layer).
The default targets name Linear modules; the experts are not Linear modules, and the router (``mlp.gate``) is not
named. So the experts and the router stay frozen: adapting fused experts needs PEFT's parameter targeting, which
adds one low-rank update shared by all experts of a layer, a different method from the paper's LoRA. The test
``tests/test_families.py`` checks exactly which weights are adapted.
"""

from __future__ import annotations

from models.omni import OmniFamily
from models.qwen2_5_omni import OMNI_ASIDE


class Qwen3OmniFamily(OmniFamily):
    name = "qwen3-omni"
    title = "Qwen3-Omni"
    model_types = ("qwen3_omni_moe", "qwen3_omni_moe_thinker")
    full_model_types = ("qwen3_omni_moe",)
    hub_ids = ("Qwen/Qwen3-Omni-30B-A3B-Instruct",)
    tiny_name = "tiny-qwen3-omni"
    model_class_name = "Qwen3OmniMoeThinkerForConditionalGeneration"
    processor_class_name = "Qwen3OmniMoeProcessor"
    thinker_config_name = "Qwen3OmniMoeThinkerConfig"
    full_config_name = "Qwen3OmniMoeConfig"
    named_tokens = {"audio_token": "<|audio_pad|>", "audio_bos_token": "<|audio_start|>",
                    "audio_eos_token": "<|audio_end|>", "image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                    "vision_bos_token": "<|vision_start|>", "vision_eos_token": "<|vision_end|>"}  # fmt: skip
    default_system = None  # Qwen3 chat templates add no system turn of their own
    speech_prefixes = ("talker", "code2wav")
    inexact_switches = OMNI_ASIDE
    pads_audio_to_window = False
    audio_tokens_per_second = 13.0

    def lora_target_modules(self, model: object, targets: str) -> list[str]:
        # Given the regex, PEFT 0.21 also wraps modules it does not match here (the audio encoder's attention, the
        # fused experts' down_proj parameter): name the matching Linear modules one by one instead.
        import re

        import torch

        return [
            name
            for name, module in model.named_modules()  # type: ignore[attr-defined]
            if isinstance(module, torch.nn.Linear) and re.fullmatch(targets, name) and ".experts" not in name
        ]

    def tiny_text_config(self, vocab: int, tok: object) -> dict:
        return {**super().tiny_text_config(vocab, tok), "num_experts": 4, "num_experts_per_tok": 2,
                "moe_intermediate_size": 32}  # fmt: skip

    def tiny_audio_config(self) -> dict:
        return {**super().tiny_audio_config(), "downsample_hidden_size": 16, "conv_chunksize": 50,
                "n_window_infer": 100}  # fmt: skip

    def tiny_vision_config(self) -> dict:
        return {**super().tiny_vision_config(), "deepstack_visual_indexes": [0], "num_position_embeddings": 64,
                "patch_size": 14}  # fmt: skip

    def audio_token_count(self, n_frames: int) -> int:
        # The processor's rule (transformers' qwen3_omni_moe processing), for the hub's n_window of 50.
        chunk = 100
        rest = n_frames % chunk
        feat = (rest - 1) // 2 + 1
        return ((feat - 1) // 2 + 1 - 1) // 2 + 1 + (n_frames // chunk) * 13


QWEN3_OMNI = Qwen3OmniFamily()
