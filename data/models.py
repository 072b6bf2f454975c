"""Load Qwen2-Audio models and processors, and build the tiny offline "toy" Qwen2-Audio.

Two entry points:

- :func:`load_model_and_processor` loads from a hub id (``Qwen/Qwen2-Audio-7B-Instruct``) or a local directory:
  safetensors only, never ``trust_remote_code``, and a processor that pads text on the left (batched generation)
  but audio on the *right*. (``AutoProcessor.from_pretrained(path, padding_side="left")`` would left-pad the
  waveform too, and Qwen2-Audio then reads padding instead of audio: notes section 6. We never pass it.)
- :func:`build_tiny_model` makes a real ``Qwen2AudioForConditionalGeneration`` + ``Qwen2AudioProcessor`` with no
  download: a byte-level BPE tokenizer trained here on the toy world's words, a 128-mel Whisper feature extractor,
  a 2+2-layer model of hidden size 64, deterministic for a seed. Its audio window is 2 s (``chunk_length=2`` with
  ``max_source_positions=100``; the two must change together) instead of the real model's 30 s: a geometry change
  that makes CPU runs take minutes (notes section 9). Save it with ``save_pretrained`` and reload it with
  :func:`load_model_and_processor` like any hub model.

    python -m data.models --out outputs/cache/tiny   # build and save the tiny model
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from data.io import build_once, sources_digest
from data.schema import DataError

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]
# Frames per second of Whisper features (hop 160 at 16 kHz); the encoder sees 2 * max_source_positions frames.
MEL_FRAMES_PER_SECOND = 100


def tiny_tokenizer_words() -> list[str]:
    """The words the tiny tokenizer learns as whole tokens: prompts, chat template, toy questions and answers."""
    from data import toy, toy_instruct
    from data.prompts import DEFAULT_SYSTEM_PROMPT, PROMPT_TEMPLATES

    texts = [*PROMPT_TEMPLATES.values(), DEFAULT_SYSTEM_PROMPT, "system user assistant Audio think answer"]
    texts += toy_instruct.vocabulary()
    texts += toy.question_texts("train") + toy.question_texts("val") + toy.question_texts("test")
    texts += list(toy.ANSWER_WORDS)
    words = sorted({w for t in texts for w in re.findall(r"[A-Za-z]+", t)})
    return words


def build_tiny_tokenizer(words: Iterable[str] | None = None, *, max_merges: int = 4000):
    """A byte-level BPE ``Qwen2Tokenizer`` built in memory.

    Merges are learned from *bare* words (letters only, one per line), never from text with spaces or punctuation
    attached. Hence an answer word is the same single token in the prompt's choice list (``'high'``), after a tag
    (``<answer>high</answer>``) and after a space, which lets a tiny model learn to copy a listed option
    (notes section 9: merges such as ``>high`` made copying impossible).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    words = sorted(set(words if words is not None else tiny_tokenizer_words()))
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=len(alphabet) + max_merges, initial_alphabet=alphabet, min_frequency=1, show_progress=False
    )
    # Repeating each word makes every word frequent enough to be merged into one token.
    bpe.train_from_iterator([w for w in words for _ in range(2)], trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = dict(sorted(state["vocab"].items(), key=lambda kv: kv[1]))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.audio_token = "<|AUDIO|>"
    tokenizer.padding_side = "left"
    return tokenizer


def build_tiny_processor(*, audio_seconds: int = 2, words: Iterable[str] | None = None):
    from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

    feature_extractor = WhisperFeatureExtractor(
        feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=audio_seconds, n_fft=400,
        padding_side="right", return_attention_mask=True,
    )  # fmt: skip
    tokenizer = build_tiny_tokenizer(words)
    return Qwen2AudioProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)


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
        GenerationConfig,
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
    model.generation_config = GenerationConfig(
        eos_token_id=[tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tok.pad_token_id, do_sample=False,
    )  # fmt: skip
    model.eval()
    return model, processor


def save_model(model: Any, processor: Any, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    return out_dir


def prepare_processor(processor: Any) -> Any:
    """Left-pad text (batched generation) and right-pad audio (Qwen2-Audio assumes valid frames come first)."""
    processor.tokenizer.padding_side = "left"
    fe = processor.feature_extractor
    if getattr(fe, "padding_side", "right") != "right":
        fe.padding_side = "right"
    return processor


ADAPTER_WEIGHTS = "adapter_model.safetensors"


class CheckpointError(DataError):
    """A checkpoint whose weights cannot be loaded exactly: the message names it, what is wrong, and what to do."""


def key_mismatch(
    where: str | Path, missing: list[str], unexpected: list[str], mismatched: list[str]
) -> CheckpointError:
    """The error for a checkpoint whose weight names or shapes do not match the model's (a few of each named)."""

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:5]) + (f", ... ({len(keys)} in all)" if len(keys) > 5 else "")

    parts = [f"{len(missing)} missing ({some(missing)})" if missing else "",
             f"{len(unexpected)} unexpected ({some(unexpected)})" if unexpected else "",
             f"{len(mismatched)} with another shape ({some(mismatched)})" if mismatched else ""]  # fmt: skip
    return CheckpointError(
        f"{where}: its weights do not match the model's ({'; '.join(p for p in parts if p)}), so loading it would "
        "leave weights unloaded. Is it a checkpoint of this model? Start a new run with --output-dir, or evaluate "
        "the right checkpoint by path (python -m experiments eval --model ...)"
    )


def check_adapter_keys(model: Any, ckpt: str | Path, adapter_name: str = "default", *, if_damaged: str = "") -> None:
    """Every adapter tensor saved in ``ckpt`` names one of the PEFT ``model``'s adapter weights, with its shape, and
    every one of them is saved; else :class:`CheckpointError` (``if_damaged``: what to do, added when the file
    cannot be read)."""
    from peft import get_peft_model_state_dict
    from safetensors import safe_open

    path = Path(ckpt) / ADAPTER_WEIGHTS
    try:
        with safe_open(str(path), framework="pt") as f:
            saved = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as e:  # safetensors' own SafetensorError, or OSError on a short file
        raise CheckpointError(
            f"{path} cannot be read ({type(e).__name__}: {e}); the file is damaged or incomplete. {if_damaged}".strip()
        ) from None
    expected = {k: tuple(v.shape) for k, v in get_peft_model_state_dict(model, adapter_name=adapter_name).items()}
    missing, unexpected = sorted(expected.keys() - saved.keys()), sorted(saved.keys() - expected.keys())
    mismatched = sorted(k for k in saved.keys() & expected.keys() if saved[k] != expected[k])
    if missing or unexpected or mismatched:
        raise key_mismatch(Path(ckpt), missing, unexpected, mismatched)


def load_model_and_processor(name_or_path: str | Path, *, dtype: Any = None, device: Any = None):
    """Load a Qwen2-Audio model + processor from a hub id or local directory (safetensors, no remote code).

    A directory with ``adapter_config.json`` (a LoRA checkpoint) loads its base model and merges the adapters.
    Any missing, unexpected or mis-shaped weight is a :class:`CheckpointError` (transformers would only warn).
    """
    import torch
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    name = str(name_or_path)
    if dtype is None:
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    adapter = Path(name) / "adapter_config.json"
    base = json.loads(adapter.read_text())["base_model_name_or_path"] if adapter.exists() else name
    # A LoRA checkpoint holds adapters (and the processor): load its base model, then the adapters on top.
    processor = prepare_processor(AutoProcessor.from_pretrained(name, trust_remote_code=False))
    model, info = Qwen2AudioForConditionalGeneration.from_pretrained(
        base, dtype=dtype, use_safetensors=True, trust_remote_code=False, output_loading_info=True
    )
    # transformers only warns about these, and initialises the missing weights at random: refuse instead.
    mismatched = [str(m[0]) if isinstance(m, tuple) else str(m) for m in info.get("mismatched_keys", [])]
    if info.get("missing_keys") or info.get("unexpected_keys") or mismatched:
        raise key_mismatch(base, sorted(info.get("missing_keys", [])), sorted(info.get("unexpected_keys", [])),
                           mismatched)  # fmt: skip
    if adapter.exists():
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(model, name)
        check_adapter_keys(peft_model, name)
        model = peft_model.merge_and_unload()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    model.eval()
    return model, processor


def audio_window_seconds(processor: Any) -> float:
    """The processor's audio window (30 s for the real model, 2 s for the tiny one): longer clips are cut."""
    return float(processor.feature_extractor.chunk_length)


def tiny_model_fingerprint(seed: int = 0, **kwargs: Any) -> str:
    """A content hash of what defines the tiny model (code-level settings + tokenizer words), for caching."""
    spec = {
        "seed": seed,
        "words": tiny_tokenizer_words(),
        "kwargs": sorted(kwargs.items()),
        "source": sources_digest(["data.models"]),  # a change here rebuilds the model
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def ensure_tiny_model(cache_dir: str | Path, seed: int = 0) -> Path:
    """Build and save the tiny model under ``cache_dir/tiny-<hash>`` once; later calls return the saved copy."""
    path = Path(cache_dir) / f"tiny-{tiny_model_fingerprint(seed)}"
    return build_once(path, lambda partial: save_model(*build_tiny_model(seed), partial), done="model.safetensors")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory to save the tiny model into")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model, processor = build_tiny_model(args.seed)
    save_model(model, processor, args.out)
    n = sum(p.numel() for p in model.parameters())
    print(f"tiny Qwen2-Audio ({n:,} parameters, vocab {len(processor.tokenizer)}) saved to {args.out}")


if __name__ == "__main__":
    main()
