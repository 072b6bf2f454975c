"""The tiny twins' tokenizer: a byte-level BPE ``Qwen2Tokenizer`` trained in memory on the toy world's words.

Every family's tiny twin uses it, with the family's own special tokens (Qwen2-Audio's ``<|AUDIO|>``, Qwen3-Omni's
``<|audio_pad|>``, ...), so no tokenizer is ever downloaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

# Qwen2-Audio's chat and audio tokens (``<|endoftext|>`` is the tokenizer's own end/pad token).
QWEN_CHAT_TOKENS = ("<|im_start|>", "<|im_end|>")


def tiny_tokenizer_words() -> list[str]:
    """The words the tiny tokenizer learns as whole tokens: prompts, chat template, toy questions and answers."""
    from data import toy
    from data.prompts import DEFAULT_SYSTEM_PROMPT, PROMPT_TEMPLATES
    from data.toy import instruct

    texts = [*PROMPT_TEMPLATES.values(), DEFAULT_SYSTEM_PROMPT, "system user assistant Audio think answer"]
    texts += instruct.vocabulary()
    texts += toy.question_texts("train") + toy.question_texts("val") + toy.question_texts("test")
    texts += list(toy.ANSWER_WORDS)
    words = sorted({w for t in texts for w in re.findall(r"[A-Za-z]+", t)})
    return words


def build_tiny_tokenizer(
    words: Iterable[str] | None = None,
    *,
    max_merges: int = 4000,
    special_tokens: Sequence[str] = (*QWEN_CHAT_TOKENS, "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"),
    named_tokens: dict[str, str] | None = None,
):
    """A byte-level BPE ``Qwen2Tokenizer`` built in memory.

    Merges are learned from *bare* words (letters only, one per line), never from text with spaces or punctuation
    attached. Hence an answer word is the same single token in the prompt's choice list (``'high'``), after a tag
    (``<answer>high</answer>``) and after a space, which lets a tiny model learn to copy a listed option
    (notes section 9: merges such as ``>high`` made copying impossible).

    ``named_tokens`` (``{"audio_token": "<|audio_pad|>", ...}``) become the tokenizer's named special tokens, saved
    with it, as the Omni processors read them; without it ``audio_token`` is ``<|AUDIO|>`` (Qwen2-Audio's).
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
    tokenizer.add_special_tokens({"additional_special_tokens": list(special_tokens)})
    if named_tokens is None:
        tokenizer.audio_token = "<|AUDIO|>"
    else:
        # transformers' own mechanism for model-specific named tokens (what from_pretrained does with a saved
        # tokenizer's "extra_special_tokens" dict): they are saved with the tokenizer and read back by name.
        tokenizer._set_model_specific_special_tokens(dict(named_tokens))
    tokenizer.padding_side = "left"
    return tokenizer
