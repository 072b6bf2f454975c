"""The three prompt templates of the study and the one function that builds a conversation from an item.

Prompt <2> and <3> are the exact user-turn texts of the original R1-AQA code (choices rendered as the Python list
repr, e.g. ``['Man', 'Woman']``, no letters). Prompt <1> (SFT) is not in the published code and the paper's figure
text is unavailable; the paper says SFT used "the simplest" prompt and that the ``<answer>`` wrapper is only a
formatting choice, so ``p1`` is a *reconstruction*: the question plus the choices sentence, no format instruction,
target = the choice text. Every trainer and the evaluator build their inputs through :func:`build_conversation`,
so a prompt can never silently differ between training and evaluation.

    >>> from data.prompts import prompt_text
    >>> prompt_text("What is heard?", ["Man", "Woman"], "p2")
    "What is heard? Please choose the answer from the following options: ['Man', 'Woman']. Output the final answer in <answer> </answer>."
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

PromptId = Literal["p1", "p2", "p3"]

_CHOICES_SENTENCE = "{question} Please choose the answer from the following options: {choices}."
PROMPT_TEMPLATES: dict[str, str] = {
    # Reconstruction (see module docstring): no format instruction, the SFT target is the bare choice text.
    "p1": _CHOICES_SENTENCE,
    # Exact text of the original code (Prompt <2>, answer only).
    "p2": _CHOICES_SENTENCE + " Output the final answer in <answer> </answer>.",
    # Exact text of the original code (Prompt <3>, think then answer).
    "p3": _CHOICES_SENTENCE
    + " Output the thinking process in <think> </think> and final answer in <answer> </answer>.",
}
PROMPT_NAMES = {"p1": "Prompt <1> (SFT, reconstructed)", "p2": "Prompt <2> (answer only)", "p3": "Prompt <3> (think)"}
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
# Not one of the study's prompts: an open question with no options, answered in plain words. Only the toy base's
# instruct corpus uses it (clip captions, data/toy/instruct.py); experiments accept p1-p3 only (check_prompt_id).
OPEN_PROMPT = "open"


def check_prompt_id(prompt_id: str) -> PromptId:
    if prompt_id not in PROMPT_TEMPLATES:
        raise ValueError(f"unknown prompt id {prompt_id!r}; valid: {', '.join(PROMPT_TEMPLATES)}")
    return prompt_id  # type: ignore[return-value]


def prompt_text(question: str, choices: Sequence[str], prompt_id: str) -> str:
    """The user-turn text for one question. ``choices`` is rendered as ``str(list(choices))`` like the original.

    ``prompt_id`` :data:`OPEN_PROMPT` gives the question alone (it must come without choices)."""
    if prompt_id == OPEN_PROMPT:
        if choices:
            raise ValueError(f"an open question has no options, got {list(choices)!r}")
        return question
    return PROMPT_TEMPLATES[check_prompt_id(prompt_id)].format(question=question, choices=str(list(choices)))


def sft_target(answer: str, prompt_id: str, thought: str | None = None) -> str:
    """The assistant text SFT trains on: the bare choice for p1, ``<answer>X</answer>`` for p2, and for p3
    ``<think>thought</think><answer>X</answer>`` (only with a ``thought``: the study's SFT never writes one).
    An :data:`OPEN_PROMPT` question is answered in plain words, like p1."""
    if prompt_id == OPEN_PROMPT:
        return answer
    check_prompt_id(prompt_id)
    if prompt_id == "p1":
        return answer
    if prompt_id == "p2":
        return f"<answer>{answer}</answer>"
    if thought is None:
        raise ValueError("an SFT target for Prompt <3> needs a thought")
    return f"<think>{thought}</think><answer>{answer}</answer>"


def build_conversation(
    question: str, choices: Sequence[str], prompt_id: str, *, audio: Any = "<audio>", system_prompt: str | None = None
) -> list[dict]:
    """One user message: an audio block, then the prompt text (the original code's layout).

    The default Qwen2-Audio system prompt is added by the chat template when ``system_prompt`` is None, exactly as in
    the original code; pass a string to override it. ``audio`` is only a placeholder for the template (audio
    features are passed to the processor separately), so any value works.
    """
    messages: list[dict] = []
    if system_prompt is not None:
        messages.append({"role": "system", "content": system_prompt})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "audio", "audio_url": str(audio)},
                {"type": "text", "text": prompt_text(question, choices, prompt_id)},
            ],
        }
    )
    return messages


def render_prompt(processor: Any, conversation: list[dict]) -> str:
    """The conversation as model input text, ending with the assistant header (generation prompt)."""
    return processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
