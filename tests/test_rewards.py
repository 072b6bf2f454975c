"""GRPO rewards: the accuracy reward is the evaluator's rule; the format reward checks the whole completion."""

from __future__ import annotations

import pytest

from data.scoring import extract_answer, mmau_correct
from trainers.rewards import accuracy_score, format_score, make_rewards

CH = ["high", "low", "middle"]


@pytest.mark.parametrize(
    ("completion", "mmau", "exact"),
    [
        ("<answer>high</answer>", 1, 1),
        ("<answer>low</answer>", 0, 0),
        ("<answer> High </answer>", 1, 0),  # MMAU ignores case; the original exact match does not
        ("<answer>\nhigh\n</answer>", 1, 0),  # the original regex had no DOTALL: whole text compared
        ("high", 1, 1),  # no tag: the whole completion
        ("<answer>high or low</answer>", 0, 0),  # names a wrong choice too
        ("The answer is high.", 1, 0),
        ("", 0, 0),
    ],
)
def test_accuracy_rules(completion, mmau, exact):
    assert accuracy_score(completion, "high", CH, rule="mmau") == mmau
    assert accuracy_score(completion, "high", CH, rule="exact") == exact


def test_accuracy_reward_is_the_evaluators_rule():
    completions = [
        "<answer>high</answer>",
        "<think>x</think><answer>low</answer>",
        "blah",
        "<answer>(A) high</answer>",
    ]
    for c in completions:
        assert accuracy_score(c, "high", CH) == float(mmau_correct(extract_answer(c), "high", CH))


@pytest.mark.parametrize(
    ("completion", "p2", "p3", "p2_strict"),
    [
        ("<answer>high</answer>", 1, 0, 1),
        ("  <answer>high</answer>\n", 1, 0, 0),
        ("I think <answer>high</answer>", 0, 0, 0),
        ("<answer>high</answer> because", 0, 0, 0),
        ("<think>it is high</think>\n<answer>high</answer>", 0, 1, 0),
        ("<think>a\nb</think><answer>high</answer>", 0, 1, 0),
        ("<answer>high</answer><think>x</think>", 0, 0, 0),
        ("<think>x</think>", 0, 0, 0),
    ],
)
def test_format_rules(completion, p2, p3, p2_strict):
    assert format_score(completion, "p2") == p2
    assert format_score(completion, "p3") == p3
    assert format_score(completion, "p2", strict=True) == p2_strict


def test_reward_functions_follow_trls_interface_and_names():
    acc, fmt = make_rewards("p2")
    assert (acc.__name__, fmt.__name__) == ("accuracy", "format")
    out = acc(prompts=["p", "p"], completions=["<answer>high</answer>", "x"], completion_ids=[[1], [2]],
              answer=["high", "high"], choices=[CH, CH], id=["a", "b"])  # fmt: skip
    assert out == [1.0, 0.0]
    chat = [[{"role": "assistant", "content": "<answer>high</answer>"}]]
    assert fmt(prompts=["p"], completions=chat, completion_ids=[[1]]) == [1.0]
    assert (
        make_rewards("p2", use_format=False)[0].__name__ == "accuracy"
        and len(make_rewards("p2", use_format=False)) == 1
    )
