"""Tests of data.scoring: answer extraction, the MMAU token-set rule (on strings and on the real MMAU files),
the exact-match reward, Wilson intervals, metrics and the table.

    .venv/bin/pytest tests/test_scoring.py -q
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest

from data.scoring import (
    compute_metrics,
    exact_match,
    extract_answer,
    format_table,
    mmau_correct,
    mmau_tokens,
    wilson_interval,
)

LETTERS = string.ascii_uppercase


def _records(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def _rate(records: list[dict], make_prediction) -> float:
    ok = sum(mmau_correct(make_prediction(r), r["answer"], r["choices"]) for r in records)
    return 100.0 * ok / len(records)


def _letter(r: dict) -> str:
    return LETTERS[r["choices"].index(r["answer"])]


# --- extraction ---------------------------------------------------------------------------------------------------


def test_extract_answer_multiline_think_and_answer() -> None:
    text = "<think>the voice is low\nand steady</think>\n<answer>\n Man \n</answer>"
    assert extract_answer(text) == "Man"


def test_extract_answer_first_match_and_fallback() -> None:
    assert extract_answer("<answer>Dog</answer> then <answer>Cat</answer>") == "Dog"
    assert extract_answer("  Woman \n") == "Woman"
    assert extract_answer("<answer>unclosed Man") == "<answer>unclosed Man"
    assert extract_answer("") == ""


def test_extract_answer_without_dotall_matches_original_reward() -> None:
    # The original GRPO reward had no DOTALL: a multi-line answer fell back to the whole (stripped) completion.
    text = "<answer>\nMan\n</answer>"
    assert extract_answer(text, dotall=False) == text
    assert extract_answer("<answer> Man </answer>", dotall=False) == "Man"


# --- the MMAU rule on strings -------------------------------------------------------------------------------------


def test_mmau_tokens() -> None:
    assert mmau_tokens("The Man's voice, (B)!") == {"the", "man", "s", "voice", "b"}
    assert mmau_tokens(" ... ") == set()
    assert mmau_tokens("light_switch_clicking") == {"light_switch_clicking"}  # \w includes the underscore


CHOICES = ["Man", "Woman", "Child", "Robot"]


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("Man", True),
        ("man.", True),
        ("The answer is Man.", True),
        ("(A) Man", True),
        ("Woman", False),  # 'woman' is a wrong-choice token, and 'man' is missing
        ("Man or Woman", False),  # mentions a wrong choice
        ("A", False),  # bare letter: no gold token
        ("", False),
        ("...", False),  # no tokens at all
        (str(CHOICES), False),  # an echoed choice list contains the wrong choices
    ],
)
def test_mmau_correct_cases(prediction: str, expected: bool) -> None:
    assert mmau_correct(prediction, "Man", CHOICES) is expected


def test_mmau_correct_duplicate_and_token_equal_choices() -> None:
    # A non-gold choice duplicated: it still counts as wrong.
    dup_wrong = ["four", "nine", "fourteen", "fourteen"]
    assert mmau_correct("nine", "nine", dup_wrong)
    assert not mmau_correct("fourteen", "nine", dup_wrong)
    # The gold duplicated: its twin has the gold's token set and is ignored, so the gold still scores.
    dup_gold = ["thirteen", "twenty", "thirteen", "five"]
    assert mmau_correct("thirteen", "thirteen", dup_gold)
    assert not mmau_correct("five", "thirteen", dup_gold)
    # The rule's blind spot: a wrong choice made of the gold's words in another order is ignored too.
    swapped = ["first: neutral, second: frustration", "first: frustration, second: neutral", "both neutral"]
    assert mmau_correct(swapped[1], swapped[0], swapped)
    # A wrong choice whose words are all inside the gold adds no forbidden token; it fails for lacking gold words.
    nested = ["twenty", "twenty-three", "eighteen"]
    assert mmau_correct("twenty-three", "twenty-three", nested)
    assert not mmau_correct("twenty", "twenty-three", nested)


def test_exact_match_is_stripped_and_case_sensitive() -> None:
    assert exact_match(" Man\n", "Man")
    assert exact_match("Man", " Man")
    assert not exact_match("man", "Man")
    assert not exact_match("Man.", "Man")


# --- the MMAU rule on the real files ------------------------------------------------------------------------------


def test_gold_answers_always_correct(mmau_file: Path) -> None:
    assert _rate(_records(mmau_file), lambda r: r["answer"]) == 100.0


def test_letter_only_scores_zero(mmau_file: Path) -> None:
    records = _records(mmau_file)
    hits = [r for r in records if mmau_correct(_letter(r), r["answer"], r["choices"])]
    # A bare letter only "works" where the choices themselves are the letters A-D (2 items in f0a4a97).
    assert all(r["answer"] == _letter(r) for r in hits)
    if "a5cd89a" in mmau_file.name:
        assert hits == []


def test_letter_plus_gold_text_scores_high_but_not_full(mmau_file: Path) -> None:
    rate = _rate(_records(mmau_file), lambda r: f"({_letter(r)}) {r['answer']}")
    # The letter token is forbidden whenever a wrong choice contains it as a word (e.g. "A dog barking").
    assert 90.0 < rate < 100.0


def test_answer_sentence_scores_high_but_not_full(mmau_file: Path) -> None:
    rate = _rate(_records(mmau_file), lambda r: f"The answer is {r['answer']}.")
    assert 85.0 < rate < 100.0


def test_echoed_choice_list_scores_zero(mmau_file: Path) -> None:
    records = _records(mmau_file)
    hits = [r["id"] for r in records if mmau_correct(str(r["choices"]), r["answer"], r["choices"])]
    # The one exception: an item whose four choices are permutations of the same four words.
    assert hits == ["bbabe360-0573-43d4-b2e6-6892150cbdcd"]


def test_duplicate_choice_items_follow_the_rule(mmau_file: Path) -> None:
    dups = [r for r in _records(mmau_file) if len(set(r["choices"])) < len(r["choices"])]
    assert 20 <= len(dups) <= 27
    for r in dups:
        assert mmau_correct(r["answer"], r["answer"], r["choices"])
        for c in r["choices"]:
            if mmau_tokens(c) - mmau_tokens(r["answer"]):
                assert not mmau_correct(c, r["answer"], r["choices"]), r["id"]


# --- intervals, metrics, table ------------------------------------------------------------------------------------


def test_wilson_interval_hand_worked() -> None:
    # k=5, n=10: centre 0.5; half-width 1.96*sqrt(0.025 + 3.8416/400) / (1 + 3.8416/10) = 0.263412.
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(23.6588, abs=1e-3) and hi == pytest.approx(76.3412, abs=1e-3)
    # k=0, n=10: centre = half = 0.19208 / 1.38416, so [0, 2 * 0.138770] = [0, 27.754].
    lo, hi = wilson_interval(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-9) and hi == pytest.approx(27.754, abs=1e-3)
    lo, hi = wilson_interval(10, 10)
    assert lo == pytest.approx(72.246, abs=1e-3) and hi == pytest.approx(100.0)
    with pytest.raises(ValueError):
        wilson_interval(1, 0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_compute_metrics_hand_worked_with_absent_task() -> None:
    rows = [
        {"task": "sound", "difficulty": "easy", "sub_category": "Counting", "correct": True},
        {"task": "sound", "difficulty": "hard", "sub_category": "Counting", "correct": False},
        {"task": "music", "difficulty": "easy", "sub_category": "Instrumentation", "correct": True},
    ]
    m = compute_metrics(rows)
    assert m["n"] == 3 and m["n_correct"] == 2
    assert m["accuracy"] == {"sound": 50.0, "music": 100.0, "speech": None, "avg": 66.67}
    assert m["n_by_task"] == {"sound": 2, "music": 1, "speech": 0}
    assert m["by_difficulty"] == {
        "easy": {"n": 2, "n_correct": 2, "accuracy": 100.0},
        "hard": {"n": 1, "n_correct": 0, "accuracy": 0.0},
    }
    assert m["by_sub_category"]["Counting"] == {"n": 2, "n_correct": 1, "accuracy": 50.0}
    assert m["ci95"]["speech"] is None
    assert m["ci95"]["avg"] == [round(x, 2) for x in wilson_interval(2, 3)]
    json.dumps(m)  # plain JSON types only
    table = format_table(m)
    assert "speech" in table and "n/a" in table and "66.67" in table and "easy" in table


def test_compute_metrics_accepts_objects_and_empty_input() -> None:
    class Row:
        def __init__(self, task: str, correct: bool) -> None:
            self.task, self.correct, self.difficulty, self.sub_category = task, correct, "medium", "x"

    m = compute_metrics([Row("speech", True), Row("speech", False)])
    assert m["accuracy"]["speech"] == 50.0 and m["accuracy"]["avg"] == 50.0
    empty = compute_metrics([])
    assert empty["n"] == 0 and empty["accuracy"]["avg"] is None and empty["ci95"]["avg"] is None
    assert "n/a" in format_table(empty)
