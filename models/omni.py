"""What the two Qwen Omni families share: the thinker alone, an audio-only processor, tiny twins in the hub layout.

**The thinker alone.** A released Omni checkpoint (``Qwen/Qwen2.5-Omni-7B``, ``Qwen/Qwen3-Omni-30B-A3B-Instruct``)
is the whole model: ``thinker.*`` (audio and vision encoders, the language model: text in, text out), ``talker.*``
and ``token2wav.*`` / ``code2wav.*`` (speech out), with one config whose ``thinker_config`` describes the thinker.
The suite answers in text, so it builds the thinker class from ``thinker_config`` and loads ``thinker.*`` only:
transformers skips the talker's and vocoder's tensors without reading them (the thinker class lists them as keys
to ignore), so only the thinker's memory is used. Any other missing or unexpected weight is refused
(``models/loading.py``). A checkpoint the suite saves holds the thinker alone (``model_type`` ``*_thinker``).

**An audio-only processor.** The hub processors also hold an image and a video processor; the video processor
needs torchvision, which a CPU install of the suite does not have. The suite feeds audio and text only, so it builds
the family's processor class from the checkpoint's feature extractor, tokenizer and chat template, without them
(:func:`audio_only_processor`). Its ``__call__`` is the family's own: the placeholder expansion and features are
exactly the hub processor's for audio.

**Tiny twins** (``tiny-qwen2.5-omni``, ``tiny-qwen3-omni``): thinkers of hidden size 64, 2 layers, a one-block
vision tower, built from the config classes with the in-memory tokenizer, saved the way the hub checkpoint is
(thinker weights under ``thinker.``, one talker tensor beside them, the full Omni config), so that every test
loads them through the real loading path. Their chat template follows the Qwen chat layout with the family's audio
block; a hub checkpoint brings its own template, which the suite uses unchanged.

**Full-size shapes** (``family.build_random(shape)``, for benchmarks): a released checkpoint's thinker with random
weights, built from the numbers in the family's ``full_shapes`` with no download: the real audio encoder and
language model, the tiny twin's one-block vision tower (never fed, frozen), and the tiny processor with the real
30 s audio window.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from models.family import ModelFamily, tiny_generation_config, transformers_class

NAMED_TOKEN_KEYS = ("audio_token", "audio_bos_token", "audio_eos_token", "image_token", "video_token",
                    "vision_bos_token", "vision_eos_token")  # fmt: skip


@functools.cache
def audio_only_class(processor_class: type) -> type:
    """The family's processor class, holding only its feature extractor and tokenizer (one class per family)."""
    from transformers.processing_utils import OmniModalProcessorMixin

    class AudioOnlyProcessor(processor_class):  # type: ignore[misc, valid-type]
        # ProcessorMixin reads the parts from __init__'s signature: these two, no image or video processor.
        def __init__(self, feature_extractor: Any = None, tokenizer: Any = None, chat_template: Any = None):
            OmniModalProcessorMixin.__init__(self, feature_extractor, tokenizer, chat_template=chat_template)
            for key in NAMED_TOKEN_KEYS:
                setattr(self, key, getattr(tokenizer, key))
                if key in ("audio_token", "image_token", "video_token"):
                    setattr(self, key + "_id", getattr(tokenizer, key + "_id"))

    AudioOnlyProcessor.__name__ = AudioOnlyProcessor.__qualname__ = f"AudioOnly{processor_class.__name__}"
    return AudioOnlyProcessor


def read_chat_template(name_or_path: str | Path) -> str | None:
    """The processor's chat template of a local directory or hub id (``chat_template.jinja`` or ``.json``)."""
    from transformers.utils import cached_file

    for filename in ("chat_template.jinja", "chat_template.json"):
        path = cached_file(str(name_or_path), filename, _raise_exceptions_for_missing_entries=False)
        if path:
            text = Path(path).read_text()
            return json.loads(text)["chat_template"] if filename.endswith(".json") else text
    return None


def chat_template(audio_block: str, default_system: str | None) -> str:
    """A Qwen chat template: optional default system turn, one audio block per audio item, then the text."""
    system = (
        "{% if messages[0]['role'] != 'system' %}<|im_start|>system\n" + default_system + "<|im_end|>\n{% endif %}"
        if default_system
        else ""
    )
    return (
        system + "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for c in message['content'] %}"
        "{% if c['type'] == 'audio' %}" + audio_block + "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
        "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
        "{% endif %}"
    )


class OmniFamily(ModelFamily):
    """The shared part of Qwen2.5-Omni and Qwen3-Omni; subclasses name their classes and tokens."""

    unused_parts = ("visual",)
    named_tokens: dict[str, str] = {}
    default_system: str | None = None
    full_model_types: tuple[str, ...] = ()  # the whole model's config (thinker + talker + vocoder)
    speech_prefixes: tuple[str, ...] = ()  # checkpoint weights of the speech-out parts (skipped when loading)
    thinker_config_name: str = ""  # transformers class names of the thinker's and the whole model's configs
    full_config_name: str = ""

    def model_config(self, config: Any) -> Any:
        return config.thinker_config if config.model_type in self.full_model_types else config

    def audio_only_processor(self, feature_extractor: Any, tokenizer: Any, chat_template: str | None) -> Any:
        cls = audio_only_class(transformers_class(self.processor_class_name))
        return cls(feature_extractor=feature_extractor, tokenizer=tokenizer, chat_template=chat_template)

    def load_processor(self, name_or_path: str | Path) -> Any:
        from transformers import AutoTokenizer, WhisperFeatureExtractor

        name = str(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=False)
        feature_extractor = WhisperFeatureExtractor.from_pretrained(name)
        template = read_chat_template(name) or getattr(tokenizer, "chat_template", None)
        return self.audio_only_processor(feature_extractor, tokenizer, template)

    def tiny_text_config(self, vocab: int, tok: Any) -> dict[str, Any]:
        h = 64
        return dict(vocab_size=vocab, hidden_size=h, intermediate_size=4 * h, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=1024,
                    rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
                    pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)  # fmt: skip

    def tiny_audio_config(self) -> dict[str, Any]:
        # 2 s window (the toy's): 200 mel frames; output_dim must equal the text hidden size.
        return dict(num_mel_bins=128, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=128, d_model=32,
                    output_dim=64, max_source_positions=100, n_window=50)  # fmt: skip

    def tiny_vision_config(self) -> dict[str, Any]:
        return dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64)

    def offline_processor(self, audio_seconds: int, words: Iterable[str] | None = None) -> Any:
        """The audio-only processor of the in-memory tokenizer, with an audio window of ``audio_seconds``."""
        from models.qwen2_audio import tiny_feature_extractor
        from models.tokenizer import QWEN_CHAT_TOKENS, build_tiny_tokenizer

        named = self.named_tokens
        tok = build_tiny_tokenizer(words, special_tokens=[*QWEN_CHAT_TOKENS, *(named[k] for k in NAMED_TOKEN_KEYS)],
                                   named_tokens=named)  # fmt: skip
        audio_block = named["audio_bos_token"] + named["audio_token"] + named["audio_eos_token"]
        return self.audio_only_processor(tiny_feature_extractor(audio_seconds), tok,
                                         chat_template(audio_block, self.default_system))  # fmt: skip

    def make_thinker_config(
        self, tok: Any, *, audio: dict, vision: dict, text: dict, tie_word_embeddings: bool
    ) -> Any:
        """The thinker's config from its parts' keyword arguments, the special token ids from ``tok``."""
        ids = {k: tok.convert_tokens_to_ids(v) for k, v in self.named_tokens.items()}
        config = transformers_class(self.thinker_config_name)(
            audio_config=audio, vision_config=vision, text_config=text, audio_token_id=ids["audio_token"],
            image_token_id=ids["image_token"], video_token_id=ids["video_token"],
            audio_start_token_id=ids["audio_bos_token"], audio_end_token_id=ids["audio_eos_token"],
            vision_start_token_id=ids["vision_bos_token"], vision_end_token_id=ids["vision_eos_token"],
            tie_word_embeddings=tie_word_embeddings,
        )  # fmt: skip
        config.pad_token_id = tok.pad_token_id
        return config

    def rope_positions(self, model: Any, input_ids: Any, attention_mask: Any, feature_attention_mask: Any) -> Any:
        # The thinker's own index function, as its plain forward calls it (compute_3d_position_ids): 3-D positions
        # (time, height, width) and the per-row delta that cached decoding adds to the mask's 1-D positions. For
        # audio and text alone the three rows are the mask's positions, but this is what the forward does.
        lengths = None if feature_attention_mask is None else feature_attention_mask.sum(-1)
        return self.backbone(model).get_rope_index(input_ids, attention_mask=attention_mask, audio_seqlens=lengths)

    def continue_positions(self, model: Any, rope_deltas: Any) -> None:
        # generate() continues from a given cache with the mask's positions plus the backbone's stored rope_deltas
        # (_prepare_position_ids_for_generation); left from an earlier call, they would belong to another batch.
        self.backbone(model).rope_deltas = rope_deltas

    def build_tiny(self, seed: int = 0, *, words: Iterable[str] | None = None) -> tuple[Any, Any]:
        import torch

        processor = self.offline_processor(2, words)
        tok = processor.tokenizer
        config = self.make_thinker_config(tok, audio=self.tiny_audio_config(), vision=self.tiny_vision_config(),
                                     text=self.tiny_text_config(len(tok), tok), tie_word_embeddings=True)  # fmt: skip
        torch.manual_seed(seed)
        model = self.model_class()(config)
        model.generation_config = tiny_generation_config(tok)
        model.eval()
        return model, processor

    # -- full-size shapes: the thinker of a released checkpoint, random weights -----------------------------------
    def random_processor(self, shape: str) -> Any:
        return self.offline_processor(self.full_shape(shape)["audio_seconds"])

    def random_config(self, shape: str, processor: Any) -> Any:
        # The vision tower is never fed and is frozen (unused_parts): the tiny twin's one block stands in for it, so
        # its weights are not in the memory measured (the real ones: about 0.67B parameters for Qwen2.5-Omni, 0.54B
        # for Qwen3-Omni, 1.3 / 1.1 GB in bf16). Its output size must still be the language model's hidden size.
        spec = self.full_shape(shape)
        tok = processor.tokenizer
        text = {**spec["text"], "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id}
        vision = {**self.tiny_vision_config(), "out_hidden_size": text["hidden_size"]}
        return self.make_thinker_config(tok, audio=spec["audio"], vision=vision, text=text,
                                   tie_word_embeddings=text["tie_word_embeddings"])  # fmt: skip

    def save_tiny(self, model: Any, processor: Any, out_dir: Path) -> Path:
        """The hub layout: the full Omni config, ``thinker.*`` weights and a talker tensor the loader must skip."""
        import torch
        from safetensors.torch import load_file, save_file

        from models.saving import save_model

        save_model(model, processor, out_dir)
        weights = Path(out_dir) / "model.safetensors"
        # The hub names every thinker weight thinker.*; transformers' save does for most, not for all.
        tensors = {k if k.startswith("thinker.") else f"thinker.{k}": v for k, v in load_file(str(weights)).items()}
        for prefix in self.speech_prefixes:
            tensors[f"{prefix}.placeholder.weight"] = torch.zeros(2, 2)
        save_file(tensors, str(weights), metadata={"format": "pt"})
        full = transformers_class(self.full_config_name)(thinker_config=model.config.to_dict())
        full.save_pretrained(out_dir)  # replaces the thinker's config.json, as on the hub
        return Path(out_dir)

    def tiny_sources(self) -> list[str]:
        return ["models.tokenizer", "models.omni", "models.qwen2_audio", type(self).__module__]
