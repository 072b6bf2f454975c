"""Tests for data/toy/ (generate, world, synth, cli): determinism, the AVQA and MMAU formats, phrasings, chance level,
balance, and learnability (data/toy/check.py's simple-feature check). The text-only oracles are tested in
tests/test_toy_check.py."""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data import toy
from data.schema import Item
from data.toy import check, cli

SEED = 3
# Big enough for 20 easy train items per sub-category (learnability), small enough to generate in about 2 s.
SIZES = {"train": 540, "val": 30, "test": 60}
TINY = {"train": 24, "val": 6, "test": 18}
AVQA_FIELDS = {
    "id",
    "video_name",
    "video_id",
    "question_text",
    "multi_choice",
    "answer",
    "question_relation",
    "question_type",
}
MMAU_FIELDS = {
    "id",
    "audio_id",
    "question",
    "choices",
    "answer",
    "dataset",
    "task",
    "split",
    "category",
    "sub-category",
    "difficulty",
}


def words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"\b\w+\b", text.lower()))


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toy") / "world"
    toy.generate_world(out, seed=SEED, sizes=SIZES, progress=False)
    return out


def avqa(world: Path, split: str) -> list[dict]:
    return json.loads((world / split / f"{split}_qa.json").read_text(encoding="utf-8"))


def mmau(world: Path) -> list[dict]:
    return json.loads((world / "test" / "mmau-test-mini.json").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    toy.generate_world(tmp_path / "a", seed=5, sizes=TINY, progress=False)
    toy.generate_world(tmp_path / "b", seed=5, sizes=TINY, progress=False)
    a, b = file_hashes(tmp_path / "a"), file_hashes(tmp_path / "b")
    assert len(a) == sum(TINY.values()) + 4  # clips + 3 annotation files + world.json
    assert a == b


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    toy.generate_world(tmp_path / "a", seed=5, sizes=TINY, progress=False)
    toy.generate_world(tmp_path / "b", seed=6, sizes=TINY, progress=False)
    a, b = file_hashes(tmp_path / "a"), file_hashes(tmp_path / "b")
    for name in ("train/train_qa.json", "val/val_qa.json", "world.json"):
        assert a[name] != b[name]
    shared_wavs = [k for k in a if k.endswith(".wav") and k in b]
    assert shared_wavs and all(a[k] != b[k] for k in shared_wavs)


def test_regenerating_smaller_world_removes_stale_clips(tmp_path: Path) -> None:
    toy.generate_world(tmp_path, seed=5, sizes=TINY, progress=False)
    toy.generate_world(tmp_path, seed=5, sizes={"train": 6, "val": 3, "test": 3}, progress=False)
    assert len(list((tmp_path / "train" / "audio").glob("*.wav"))) == 6
    assert len(list((tmp_path / "test" / "test-mini-audios").glob("*.wav"))) == 3


# ----------------------------------------------------------------------------------------------- formats


def check_clip(path: Path) -> None:
    info = sf.info(str(path))
    assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16", path
    assert 1.0 <= info.frames / 16000 <= 2.0, path
    wave, _ = sf.read(str(path))
    assert 0.2 < np.abs(wave).max() < 0.95, path  # peak-normalised, never clipped


@pytest.mark.parametrize("split", ["train", "val"])
def test_avqa_format(world: Path, split: str) -> None:
    records = avqa(world, split)
    assert len(records) == SIZES[split]
    assert [r["id"] for r in records] == list(range(SIZES[split]))
    for r in records:
        assert set(r) == AVQA_FIELDS
        assert isinstance(r["id"], int) and isinstance(r["video_id"], int) and isinstance(r["answer"], int)
        k = len(toy.SPECS[r["question_type"]].labels)
        assert len(r["multi_choice"]) == k and 0 <= r["answer"] < k
        assert len({words(c) for c in r["multi_choice"]}) == k  # the MMAU rule needs distinct word sets
        assert r["question_relation"] == "Sound"
        spec = toy.SPECS[r["question_type"]]
        assert r["multi_choice"][r["answer"]] in spec.labels
        assert sorted(r["multi_choice"]) == sorted(spec.labels)  # every choice plausible: text cannot rule one out
        check_clip(world / split / "audio" / f"{r['video_name']}.wav")


def test_mmau_format(world: Path) -> None:
    records = mmau(world)
    assert len(records) == SIZES["test"]
    assert len({r["id"] for r in records}) == len(records)
    for r in records:
        assert set(r) == MMAU_FIELDS
        assert re.fullmatch(r"[0-9a-f]{32}", r["id"])
        assert r["audio_id"] == f"./test-mini-audios/{r['id']}.wav"
        assert 2 <= len(r["choices"]) <= 5 and r["answer"] in r["choices"]
        assert len({words(c) for c in r["choices"]}) == len(r["choices"])
        assert r["dataset"] == "toy" and r["split"] == "test-mini" and r["difficulty"] in toy.DIFFICULTIES
        spec = toy.SPECS[r["sub-category"]]
        assert r["task"] == spec.task and r["category"] == spec.category and r["answer"] in spec.labels
        assert sorted(r["choices"]) == sorted(spec.labels)  # every choice plausible: text cannot rule one out
        check_clip(world / "test" / r["audio_id"])
    tasks = Counter(r["task"] for r in records)
    assert set(tasks) == set(toy.TASKS) and max(tasks.values()) - min(tasks.values()) <= 1
    assert set(Counter(len(r["choices"]) for r in records)) == {2, 3, 4}


def test_loaders_of_the_suite_read_the_world(world: Path) -> None:
    from data.avqa import load_avqa
    from data.benchmark import load_benchmark

    train = load_avqa(world / "train" / "train_qa.json", world / "train" / "audio")
    assert len(train.items) == SIZES["train"] and not train.skipped_missing_audio
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "matches no known MMAU version": expected for the toy file
        bench = load_benchmark(world / "test" / "mmau-test-mini.json")
    assert len(bench.items) == SIZES["test"]
    assert toy.chance_accuracy(bench.items) == toy.chance_accuracy(mmau(world))
    assert toy.chance_accuracy(train.items) == toy.chance_accuracy(avqa(world, "train"))


def test_manifest(world: Path) -> None:
    manifest = json.loads((world / "world.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == SEED and manifest["sizes"] == SIZES
    assert manifest["chance"]["train"] == toy.chance_accuracy(avqa(world, "train"))
    assert manifest["chance"]["test"] == toy.chance_accuracy(mmau(world))
    assert set(manifest["shift"]["per_sub_category"]) == set(toy.SPECS)
    for params in manifest["shift"]["per_sub_category"].values():
        assert set(params) == {"train_val", "test"} and params["train_val"] != params["test"]
    assert {t: list(subs) for t, subs in manifest["sub_categories"].items()} == toy.SUB_CATEGORIES


def test_public_constants() -> None:
    assert set(toy.SUB_CATEGORIES) == {"sound", "music", "speech"}
    assert all(len(subs) == 3 for subs in toy.SUB_CATEGORIES.values())
    assert toy.ANSWER_WORDS == sorted(toy.ANSWER_WORDS)
    for spec in toy.SPECS.values():
        options = list(spec.labels)
        assert len({words(o) for o in options}) == len(options)  # distinct word sets
        assert len(options) >= 2 and set(options) <= set(toy.ANSWER_WORDS)
        # One caption per answer, in words that are never answers (tests/test_toy_base.py says why).
        assert len(set(spec.captions)) == len(options)
        assert not {w for c in spec.captions for w in c.split()} & set(toy.ANSWER_WORDS)
    assert toy.DEFAULT_SIZES == {"train": 3000, "val": 300, "test": 1980}


# ----------------------------------------------------------------------------------------------- phrasings


def test_video_phrasing_in_train_never_in_test(world: Path) -> None:
    questions = [r["question_text"] for r in avqa(world, "train")]
    video = [q for q in questions if "video" in q.lower()]
    assert 0.15 <= len(video) / len(questions) <= 0.25
    assert any("video" in q for q in video) and any("Video" in q for q in video) and any("videos" in q for q in video)
    assert not any("video" in r["question"].lower() for r in mmau(world))
    assert not any("video" in q.lower() for q in toy.question_texts("test"))


def test_test_phrasings_disjoint_from_train(world: Path) -> None:
    from data.avqa import rewrite_question

    train_forms = set(toy.question_texts("train")) | set(toy.question_texts("val"))
    assert {r["question_text"] for r in avqa(world, "train")} <= train_forms
    # Every form the model could see in training, whichever way the AVQA loader rewrites "video".
    seen = {rewrite_question(q, mode) for q in train_forms for mode in ("none", "original", "correct")}
    test_questions = {r["question"] for r in mmau(world)}
    assert test_questions <= set(toy.question_texts("test"))
    assert not test_questions & seen
    assert not set(toy.question_texts("test")) & seen


def test_question_texts_contain_no_answer_slot() -> None:
    for split in toy.SPLITS:
        texts = toy.question_texts(split)
        assert texts and len(texts) == len(set(texts))
        assert not any("{" in t for t in texts)
    with pytest.raises(ValueError):
        toy.question_texts("dev")


# ----------------------------------------------------------------------------------------------- chance level


def test_chance_accuracy_on_a_hand_made_example() -> None:
    records = [
        {"choices": ["high", "low"], "answer": "low", "task": "music"},  # 1/2
        {"choices": ["a", "b", "c", "d", "e"], "answer": "c", "task": "music"},  # 1/5
        {"choices": ["Man", "man", "Woman"], "answer": "Man", "task": "speech"},  # 2/3: duplicates both score
        {"multi_choice": ["ah", "ee", "oo", "eh"], "answer": 2, "question_type": "vowel"},  # AVQA: 1/4, speech
        Item(id="x", audio_path="x.wav", question="?", choices=("one", "two", "three"), answer="two", task="sound"),
    ]
    chance = toy.chance_accuracy(records)
    assert chance["n"] == 5 and chance["n_per_task"] == {"music": 2, "sound": 1, "speech": 2}
    assert chance["per_task"]["music"] == pytest.approx((1 / 2 + 1 / 5) / 2, abs=1e-6)
    assert chance["per_task"]["speech"] == pytest.approx((2 / 3 + 1 / 4) / 2, abs=1e-6)
    assert chance["per_task"]["sound"] == pytest.approx(1 / 3, abs=1e-6)
    assert chance["overall"] == pytest.approx((1 / 2 + 1 / 5 + 2 / 3 + 1 / 4 + 1 / 3) / 5, abs=1e-6)
    assert toy.chance_accuracy([])["overall"] is None


def test_chance_of_the_generated_splits(world: Path) -> None:
    train = avqa(world, "train")
    expected_train = float(np.mean([1 / len(toy.SPECS[r["question_type"]].labels) for r in train]))
    assert toy.chance_accuracy(train)["overall"] == pytest.approx(expected_train, abs=1e-6)
    assert 0.42 < expected_train < 0.45  # six 2-answer, two 3-answer, one 4-answer sub-category, balanced
    test = mmau(world)
    expected = float(np.mean([1 / len(r["choices"]) for r in test]))
    assert toy.chance_accuracy(test)["overall"] == pytest.approx(expected, abs=1e-6)


# ----------------------------------------------------------------------------------------------- balance


def test_answers_are_balanced(world: Path) -> None:
    records = avqa(world, "train")
    answer_words = Counter(r["multi_choice"][r["answer"]] for r in records)
    assert max(answer_words.values()) / len(records) < 0.1
    for name, spec in toy.SPECS.items():
        labels = Counter(r["multi_choice"][r["answer"]] for r in records if r["question_type"] == name)
        assert set(labels) == set(spec.labels) and max(labels.values()) - min(labels.values()) <= 1
        # The answer's position too: no position is a better guess than another.
        positions = Counter(r["answer"] for r in records if r["question_type"] == name)
        assert (
            set(positions) == set(range(len(spec.labels))) and max(positions.values()) - min(positions.values()) <= 1
        )
    tasks = Counter(toy.SPECS[r["question_type"]].task for r in records)
    assert max(tasks.values()) - min(tasks.values()) <= 1


# ----------------------------------------------------------------------------------------------- learnability


def test_each_family_is_learnable_from_the_audio(world: Path) -> None:
    """One simple numpy feature per sub-category separates the answers of easy train items far above chance."""
    acc = check.separability(world, "train")
    for task, subs in toy.SUB_CATEGORIES.items():
        assert max(acc[s]["easy"] for s in subs) >= 0.95, (task, acc)
        for s in subs:
            assert acc[s]["easy"] >= acc[s]["chance"] + 0.3, (s, acc[s])


def test_shift_keeps_the_labels(world: Path) -> None:
    """Class means of the simple features learned on train still label most shifted test clips correctly."""
    from data.audio import load_audio

    def feats(path: Path, sub: str) -> list[float]:
        f = check.simple_features(load_audio(path))
        return [f[k] for k in check.SANITY_FEATURES[sub]]

    train: dict[str, list[tuple[list[float], str]]] = {}
    for r in avqa(world, "train"):
        sub = r["question_type"]
        path = world / "train" / "audio" / f"{r['video_name']}.wav"
        train.setdefault(sub, []).append((feats(path, sub), r["multi_choice"][r["answer"]]))
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for r in mmau(world):
        sub = r["sub-category"]
        x = np.array([f for f, _ in train[sub]])
        y = np.array([g for _, g in train[sub]])
        mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
        classes = sorted(set(y))
        cents = np.stack([((x[y == c] - mu) / sd).mean(axis=0) for c in classes])
        z = (np.array(feats(world / "test" / r["audio_id"], sub)) - mu) / sd
        hits[r["task"]] += classes[int(((cents - z) ** 2).sum(axis=1).argmin())] == r["answer"]
        totals[r["task"]] += 1
    for task in toy.TASKS:
        assert hits[task] / totals[task] >= 0.75, (task, hits, totals)


def test_make_clip_respects_the_window_and_rejects_bad_labels() -> None:
    rng = np.random.default_rng(0)
    for name, spec in toy.SPECS.items():
        for split in ("train", "test"):
            wave = toy.make_clip(name, spec.labels[-1], "hard", rng, split=split)
            assert wave.dtype == np.float32 and 16000 <= len(wave) <= 32000 and np.abs(wave).max() <= 1.0
    with pytest.raises(ValueError):
        toy.make_clip("note_height", "middle", "easy", rng)  # not an answer of note_height
    with pytest.raises(ValueError):
        toy.make_clip("note_height", "high", "extreme", rng)


# ----------------------------------------------------------------------------------------------- command line


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--out", str(tmp_path), "--seed", "1", "--sizes", "train=6,val=3,test=6", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((tmp_path / "world.json").read_text(encoding="utf-8"))
    assert "chance accuracy" in printed and f"train overall {manifest['chance']['train']['overall']:.3f}" in printed
    assert manifest["sizes"] == {"train": 6, "val": 3, "test": 6} and manifest["seed"] == 1
    assert toy.parse_sizes("test=5") == {"train": 3000, "val": 300, "test": 5}
    for bad in ("dev=3", "train", "train=-1", "train=x"):
        with pytest.raises(ValueError):
            toy.parse_sizes(bad)
