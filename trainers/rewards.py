"""GRPO rewards: accuracy (+1 when the extracted answer is correct) and format (+1 for the prompt's tag layout).

The accuracy reward calls the *same* extraction and MMAU matcher as the evaluator (``data.scoring``), so the
training signal and the reported metric cannot drift apart. ``accuracy_reward="exact"`` reproduces the original
code instead: the first single-line ``<answer>(.*?)</answer>`` (no DOTALL), stripped, compared case-sensitively
with the gold choice text.

The format reward looks at the whole completion: Prompt <2> wants ``<answer>...</answer>``, Prompt <3> wants
``<think>...</think>`` then ``<answer>...</answer>``. Surrounding whitespace is allowed by default; the original
code's ``re.fullmatch`` allowed none (``strict_format=True``).

Each function follows TRL's reward interface: ``f(prompts=..., completions=..., completion_ids=..., **columns)``
returning one float per completion; ``answer`` and ``choices`` come from the dataset's columns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from data.scoring import exact_match, extract_answer, mmau_correct

RewardFunc = Callable[..., list[float]]

_FORMATS = {
    "p2": r"<answer>.*?</answer>",
    "p3": r"<think>.*?</think>\s*<answer>.*?</answer>",
}


def _text(completion: Any) -> str:
    # TRL passes plain strings for text prompts and [{"role": "assistant", "content": ...}] for chat prompts.
    if isinstance(completion, list):
        return completion[0]["content"] if completion else ""
    return str(completion)


def accuracy_score(completion: str, answer: str, choices: Sequence[str], *, rule: str = "mmau") -> float:
    if rule == "mmau":
        return float(mmau_correct(extract_answer(completion), answer, choices))
    if rule == "exact":
        return float(exact_match(extract_answer(completion, dotall=False), answer))
    raise ValueError(f"unknown accuracy rule {rule!r}; valid: mmau, exact")


def format_score(completion: str, prompt_id: str, *, strict: bool = False) -> float:
    if prompt_id not in _FORMATS:
        raise ValueError(f"no format reward for prompt {prompt_id!r}; valid: {', '.join(_FORMATS)}")
    pattern = _FORMATS[prompt_id] if strict else r"\s*" + _FORMATS[prompt_id] + r"\s*"
    return float(re.fullmatch(pattern, completion, re.DOTALL) is not None)


def make_rewards(prompt_id: str, *, rule: str = "mmau", use_format: bool = True, strict_format: bool = False):
    """The reward functions of one experiment, named ``accuracy`` and ``format`` (TRL logs them by name)."""

    def accuracy(completions: list, answer: list[str], choices: list[Sequence[str]], **_: Any) -> list[float]:
        return [
            accuracy_score(_text(c), a, ch, rule=rule) for c, a, ch in zip(completions, answer, choices, strict=True)
        ]

    def format(completions: list, **_: Any) -> list[float]:  # noqa: A001 - the name is the logged metric name
        return [format_score(_text(c), prompt_id, strict=strict_format) for c in completions]

    return [accuracy, format] if use_format else [accuracy]
