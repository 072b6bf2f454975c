"""The prompt texts are the paper's (the original code's), character for character."""

from __future__ import annotations

import pytest

from data.prompts import build_conversation, prompt_text, sft_target

CHOICES = ["Man", "Woman", "Child", "Robot"]


def test_prompt_2_is_the_original_text():
    assert prompt_text("Who is speaking?", CHOICES, "p2") == (
        "Who is speaking? Please choose the answer from the following options: ['Man', 'Woman', 'Child', 'Robot']. "
        "Output the final answer in <answer> </answer>."
    )


def test_prompt_3_is_the_original_text():
    assert prompt_text("Who is speaking?", CHOICES, "p3") == (
        "Who is speaking? Please choose the answer from the following options: ['Man', 'Woman', 'Child', 'Robot']. "
        "Output the thinking process in <think> </think> and final answer in <answer> </answer>."
    )


def test_prompt_1_reconstruction_has_no_format_instruction():
    text = prompt_text("Who is speaking?", CHOICES, "p1")
    assert (
        text
        == "Who is speaking? Please choose the answer from the following options: ['Man', 'Woman', 'Child', 'Robot']."
    )
    assert sft_target("Man", "p1") == "Man" and sft_target("Man", "p2") == "<answer>Man</answer>"
    with pytest.raises(ValueError):
        sft_target("Man", "p3")


def test_choices_use_python_list_repr_including_quotes():
    assert "[\"It's a dog\", 'cat']" in prompt_text("Q?", ["It's a dog", "cat"], "p2")


def test_conversation_is_audio_then_text_with_default_system_prompt():
    from data.prompts import render_prompt
    from models.qwen2_audio import build_tiny_processor
    from tests.helpers import TEST_WORDS

    conv = build_conversation("Q?", ["a", "b"], "p2")
    assert [b["type"] for b in conv[0]["content"]] == ["audio", "text"] and len(conv) == 1
    text = render_prompt(build_tiny_processor(words=TEST_WORDS), conv)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nAudio 1: ")
    assert text.endswith("<answer> </answer>.<|im_end|>\n<|im_start|>assistant\n")
    assert text.count("<|AUDIO|>") == 1


def test_unknown_prompt_id_fails_listing_valid_ones():
    with pytest.raises(ValueError, match="p1, p2, p3"):
        prompt_text("Q?", ["a"], "p4")
