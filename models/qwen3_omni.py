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

Full-size shape (thinker, random weights, ``QWEN3_OMNI.build_random("30b-a3b")``): ``30b-a3b``, numbers below.
"""

from __future__ import annotations

from typing import Any

from models.omni import OmniFamily
from models.qwen2_5_omni import OMNI_ASIDE

# The thinker of Qwen/Qwen3-Omni-30B-A3B-Instruct. Sources: the text numbers as a pinned extract of the checkpoint's
# config.json records them (a public test fixture of the Qwen3-Omni config contract, revision 26291f79: hidden 2048,
# 48 layers, 32 heads, 4 KV heads, 128 experts, 8 per token, expert FFN 768, vocabulary 152,064, RoPE theta 1e6,
# interleaved multimodal RoPE sections [24, 20, 20]; audio 32 layers, d_model 1280, 20 heads, FFN 5120, downsampling
# convolutions of 480 channels, output 2048); the same layer, head and expert counts in the public Hugging Face config
# as other notes quote it; head dim 128 as in Qwen3-30B-A3B, whose language model this is (30,532,122,624 parameters
# with vocabulary 151,936, the figure keras-hub quotes for this thinker; the config's 152,064 adds 0.5M); the audio
# encoder's windows (n_window 50, n_window_infer 800, conv_chunksize 500) from transformers'
# Qwen3OmniMoeAudioEncoderConfig defaults, documented as this checkpoint's. The technical report's module sizes
# (audio encoder 650M, vision 540M) match what these numbers build (648M, and 539M for the real vision tower).
# intermediate_size is unused: every layer is a mixture of experts (mlp_only_layers empty, decoder_sparse_step 1).
# Not verified: max_position_embeddings (65,536; no weight depends on it). The vocabulary: 151,936 in some notes;
# the pinned extract's 152,064 is taken (the difference is 0.5M parameters).
QWEN3_OMNI_SHAPES: dict[str, dict[str, Any]] = {
    "30b-a3b": {
        "hub_id": "Qwen/Qwen3-Omni-30B-A3B-Instruct",
        "audio": dict(num_mel_bins=128, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120,
                      d_model=1280, max_source_positions=1500, n_window=50, n_window_infer=800, conv_chunksize=500,
                      downsample_hidden_size=480, output_dim=2048),
        "text": dict(vocab_size=152064, hidden_size=2048, intermediate_size=768, num_hidden_layers=48,
                     num_attention_heads=32, num_key_value_heads=4, head_dim=128, num_experts=128,
                     num_experts_per_tok=8, moe_intermediate_size=768, norm_topk_prob=True, decoder_sparse_step=1,
                     mlp_only_layers=[], router_aux_loss_coef=0.001, max_position_embeddings=65536, rms_norm_eps=1e-6,
                     rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [24, 20, 20],
                                      "interleaved": True},
                     tie_word_embeddings=False),
        "audio_seconds": 30,
    },
}  # fmt: skip


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
    full_shapes = QWEN3_OMNI_SHAPES

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
