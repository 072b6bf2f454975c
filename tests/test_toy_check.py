"""Tests for data/toy/check.py: chance, the text-only oracles, the "text cannot answer" gate, the audio classifier,
and ``python -m data.toy check`` (check.json, exit codes, the world it checks)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from data import toy
from data.toy import check, cli
from data.toy.check import CheckItem

REPO = Path(__file__).resolve().parent.parent
TINY_SIZES = "train=54,val=18,test=18"  # smaller than the smoke profile's, 6 train items per sub-category


def item(choices: Sequence[str], answer: str, sub: str = "note_height") -> CheckItem:
    return CheckItem(sub, toy.SPECS[sub].task if sub in toy.SPECS else "unknown", tuple(choices), answer)


def balanced(sub: str, n: int, pads: Sequence[str] = ()) -> list[CheckItem]:
    """``n`` items of a 2-label sub-category: labels and answer positions exactly balanced; ``pads`` appended."""
    a, b = toy.SPECS[sub].labels
    out = []
    for i in range(n):
        order = (a, b) if (i // 2) % 2 == 0 else (b, a)
        out.append(item((*order, *pads), (a, b)[i % 2], sub))
    return out


# ----------------------------------------------------------------------------------------------- oracles, chance


def test_label_oracle_uses_train_frequencies_and_splits_ties() -> None:
    train = [item(["a", "b", "c"], g, "t") for g in "aaabbcc"]  # a 3, b 2, c 2
    freqs = check.label_frequencies(train)
    cases = [
        (item(["a", "x"], "a", "t"), 1.0),  # the most frequent train answer is offered and right
        (item(["A", "x"], "a", "t"), 1.0),  # the MMAU rule: case does not matter
        (item(["a", "b", "c", "x"], "b", "t"), 0.0),  # a is picked, whatever this split's own answers are
        (item(["b", "c", "x"], "c", "t"), 0.5),  # b and c tie: split evenly
        (item(["x", "y"], "y", "t"), 0.5),  # nothing seen in train: chance
        (item(["a", "b", "c"], "a", "unseen"), 1 / 3),  # a type unknown to train: chance
    ]
    for it, expected in cases:
        assert check.label_oracle(it, freqs) == pytest.approx(expected), it


def test_position_oracle_uses_train_positions_per_number_of_choices() -> None:
    train = [item(["a", "b", "c", "d"], g, "t") for g in "aaab"] + [item(["a", "b"], g, "t") for g in "ab"]
    freqs = check.position_frequencies(train)
    assert freqs == {4: {0: 3, 1: 1}, 2: {0: 1, 1: 1}}
    assert check.position_oracle(item(["p", "q", "r", "s"], "p", "t"), freqs) == 1.0
    assert check.position_oracle(item(["p", "q", "r", "s"], "q", "t"), freqs) == 0.0
    assert check.position_oracle(item(["p", "q"], "q", "t"), freqs) == 0.5  # tie
    assert check.position_oracle(item(["p", "q", "r"], "r", "t"), freqs) == pytest.approx(1 / 3)  # unseen k


def test_chance_is_the_mean_of_one_over_the_number_of_choices() -> None:
    test = [item(["high", "low", "x", "y", "z"][:k], "low") for k in (2, 3, 4, 5)]
    row = check.summarize({"train": balanced("note_height", 4), "test": test})["test"]
    expected = (1 / 2 + 1 / 3 + 1 / 4 + 1 / 5) / 4
    assert row["overall"]["chance"] == pytest.approx(expected, abs=1e-6)
    assert row["sub_category"]["note_height"]["chance"] == pytest.approx(expected, abs=1e-6)
    assert row["overall"]["n"] == 4


def test_summary_reports_per_sub_category_and_overall() -> None:
    train = balanced("note_height", 8, pads=["middle", "rising"]) + balanced("speaker", 8)
    summary = check.summarize({"train": train, "val": train})
    val = summary["val"]
    assert set(val["sub_category"]) == {"note_height", "speaker"}
    assert val["sub_category"]["note_height"]["label_oracle"] == 0.5  # distractors are never right: 1 of 2 left
    assert val["sub_category"]["speaker"]["label_oracle"] == 0.5  # both labels offered, balanced: chance
    assert val["overall"]["label_oracle"] == 0.5 and val["overall"]["chance"] == pytest.approx((0.25 + 0.5) / 2)
    assert val["overall"]["margin_points"] == pytest.approx(12.5)
    assert val["overall"]["audio"] is None  # no audio scores given


def test_val_and_test_are_scored_with_train_frequencies() -> None:
    """The oracle knows train, not the split it is scored on: a prior that flips between them does not help."""
    train = [item(["high", "low"], g) for g in ["high"] * 6 + ["low"] * 2]
    test = [item(["low", "high"], g) for g in ["high"] * 1 + ["low"] * 3]
    summary = check.summarize({"train": train, "test": test})
    assert summary["train"]["overall"]["label_oracle"] == 0.75
    assert summary["test"]["overall"]["label_oracle"] == 0.25  # always "high", right once in four


# ----------------------------------------------------------------------------------------------- the gate


def test_gate_flags_a_world_with_a_text_prior() -> None:
    padded = balanced("note_height", 8, pads=["middle", "rising"])  # the toy v1 prior: never-correct distractors
    summary = check.summarize({"train": padded, "val": padded, "test": padded})
    bad = check.failures(summary)
    assert [line.split(":")[0] for line in bad] == ["train", "val", "test"]
    assert "50.0% vs chance 25.0%" in bad[0] and "(label)" in bad[0]


def test_gate_flags_skewed_answers_and_a_position_bias() -> None:
    skewed = [item(["high", "low"], g) for g in ["high"] * 6 + ["low"] * 2]  # both offered, but "high" is likelier
    assert check.failures(check.summarize({"train": skewed}))
    first = [item(order, order[0]) for order in [("high", "low"), ("low", "high")] * 4]  # always the first choice
    summary = check.summarize({"train": first})
    assert summary["train"]["overall"]["label_oracle"] == 0.5
    assert summary["train"]["overall"]["text_policy"] == "position"
    assert check.failures(summary) == ["train: text-only oracle (position) 100.0% vs chance 50.0% (+50.0 points > 2)"]


def test_gate_passes_a_world_whose_choices_are_the_full_label_set() -> None:
    fair = balanced("note_height", 8) + balanced("speaker", 8)
    summary = check.summarize({"train": fair, "val": fair, "test": fair[:8]})
    for split in ("train", "val", "test"):
        row = summary[split]["overall"]
        assert row["text_oracle"] == row["chance"] == 0.5 and row["margin_points"] == 0.0
    assert check.failures(summary) == []
    # The bound is "at most chance + 2 points": exactly 2 passes, just above fails.
    row = {"overall": {"margin_points": 2.0, "text_policy": "label", "text_oracle": 0.27, "chance": 0.25}}
    assert check.failures({"val": row}) == []
    row["overall"]["margin_points"] = 2.01
    assert len(check.failures({"val": row})) == 1


# ----------------------------------------------------------------------------------------------- audio classifier


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toycheck") / "world"
    toy.generate_world(out, seed=1, sizes=toy.parse_sizes(TINY_SIZES), progress=False)
    return out


def test_audio_classifier_hears_the_answers(tiny_world: Path) -> None:
    splits = {s: check.load_split(tiny_world, s) for s in toy.SPLITS}
    scores = check.audio_scores(splits)
    assert [len(scores[s]) for s in toy.SPLITS] == [54, 18, 18]
    summary = check.summarize(splits, scores)
    for split in toy.SPLITS:
        assert summary[split]["overall"]["audio"] >= summary[split]["overall"]["chance"] + 0.15, summary[split]
    # Train's scores are the two-fold cross-validated ones of nearest_centroid_accuracy, per sub-category.
    for sub, row in summary["train"]["sub_category"].items():
        rows = [it for it in splits["train"] if it.sub_category == sub]
        x = np.array([check._sanity_features(it) for it in rows])
        assert row["audio"] == pytest.approx(check.nearest_centroid_accuracy(x, [it.answer for it in rows]), abs=1e-6)
    # Silence in place of the test clips: the classifier no longer finds the answers.
    silent = tiny_world.parent / "silent.wav"
    from data.audio import write_wav

    write_wav(silent, np.zeros(16000, dtype=np.float32))
    deaf = {**splits, "test": [CheckItem(it.sub_category, it.task, it.choices, it.answer, silent)
                               for it in splits["test"]]}  # fmt: skip
    deaf_summary = check.summarize(deaf, check.audio_scores(deaf))
    assert deaf_summary["test"]["overall"]["audio"] < summary["test"]["overall"]["audio"] - 0.3


# ----------------------------------------------------------------------------------------------- command line


def write_fair_world(root: Path) -> None:
    """A world in the toy's formats whose choices are always both labels, answers and positions balanced."""
    fair = balanced("note_height", 8) + balanced("speaker", 8)
    for split in ("train", "val"):
        recs = [{"id": i, "video_name": f"v{i}", "question_type": it.sub_category, "multi_choice": list(it.choices),
                 "answer": it.choices.index(it.answer)} for i, it in enumerate(fair)]  # fmt: skip
        (root / split).mkdir(parents=True)
        (root / split / f"{split}_qa.json").write_text(json.dumps(recs), encoding="utf-8")
    recs = [{"id": f"t{i}", "audio_id": f"./test-mini-audios/t{i}.wav", "sub-category": it.sub_category,
             "choices": list(it.choices), "answer": it.answer} for i, it in enumerate(fair)]  # fmt: skip
    (root / "test").mkdir()
    (root / "test" / "mmau-test-mini.json").write_text(json.dumps(recs), encoding="utf-8")
    sizes = {"train": len(fair), "val": len(fair), "test": len(fair)}
    (root / "world.json").write_text(json.dumps({"seed": 0, "sizes": sizes}), encoding="utf-8")


def test_cli_generates_checks_and_passes_todays_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every choice is a real answer, answers and positions balanced: text alone scores chance on every split."""
    out = tmp_path / "w"
    sizes = "train=108,val=108,test=108"  # 12 items per sub-category: every label and position count is equal
    args = ["check", "--out", str(out), "--seed", "1", "--sizes", sizes, "--no-progress"]
    assert cli.main(args) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "noise_colour" in captured.out and "check.json" in captured.out
    report = json.loads((out / "check.json").read_text(encoding="utf-8"))
    manifest = json.loads((out / "world.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 1 and report["passed"] is True and report["failures"] == []
    for split in toy.SPLITS:
        row = report["splits"][split]["overall"]
        assert row["chance"] == manifest["chance"][split]["overall"]  # the same chance as world.json
        assert row["margin_points"] == pytest.approx(0.0, abs=1e-9) and row["audio"] >= row["chance"] + 0.3
        for sub in report["splits"][split]["sub_category"].values():
            assert sub["text_oracle"] == pytest.approx(sub["chance"], abs=1e-9)
    # An existing world is checked as it is; --no-fail only reports.
    assert cli.main(["check", "--out", str(out), "--no-progress", "--no-audio", "--no-fail"]) == 0
    assert json.loads((out / "check.json").read_text(encoding="utf-8"))["splits"]["test"]["overall"]["audio"] is None


def test_cli_refuses_to_check_a_different_world_than_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_fair_world(tmp_path)
    assert cli.main(["check", "--out", str(tmp_path), "--seed", "3", "--no-audio"]) == 2
    err = capsys.readouterr().err
    assert "world.json has seed 0, not the requested 3" in err and "another --out" in err
    assert cli.main(["check", "--out", str(tmp_path), "--sizes", "train=5", "--no-audio"]) == 2
    assert not (tmp_path / "check.json").exists()


def test_cli_passes_a_fair_world_as_a_module(tmp_path: Path) -> None:
    write_fair_world(tmp_path)
    cmd = [sys.executable, "-m", "data.toy", "check", "--out", str(tmp_path), "--no-audio", "--no-progress"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "check.json").read_text(encoding="utf-8"))
    assert report["passed"] is True and report["failures"] == []
    assert report["splits"]["test"]["overall"]["text_oracle"] == report["splits"]["test"]["overall"]["chance"] == 0.5


def test_generator_cli_still_prints_separability(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m data.toy --out DIR --check`` (the learnability print) works with the check moved out."""
    assert cli.main(["--out", str(tmp_path), "--sizes", TINY_SIZES, "--no-progress", "--check"]) == 0
    printed = capsys.readouterr().out
    assert "nearest-centroid accuracy" in printed and "beep_count" in printed


def test_the_default_world_passes_the_text_gate(tmp_path: Path) -> None:
    """The toy profile's own world (default sizes, seed 0): the text-only oracle stays within chance + 2 points."""
    out = tmp_path / "default"
    assert cli.main(["check", "--out", str(out), "--no-progress", "--no-audio"]) == 0
    report = json.loads((out / "check.json").read_text(encoding="utf-8"))
    for split in toy.SPLITS:
        assert report["splits"][split]["overall"]["margin_points"] <= 2.0, report["splits"][split]["overall"]
