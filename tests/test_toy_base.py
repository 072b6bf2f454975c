"""The toy base's instruct corpus and its gated build (experiments/toy_base.py), without training a model.

The build's training is exercised by the slow toy-learning tests and by ``python -m experiments.toy_base``; here the
corpus is checked for what it must and must not teach, and the gate's wiring is checked with the training and the
evaluation replaced by stubs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data.io import sources_digest
from data.prompts import OPEN_PROMPT, check_prompt_id, prompt_text, sft_target
from data.schema import Item
from data.toy import instruct
from data.toy.world import ANSWER_WORDS, CAPTIONS, SPECS
from experiments import toy_base
from models.evaluate import _names_a_choice


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Item]:
    return instruct.instruct_items(tmp_path_factory.mktemp("instruct"), 240, seed=3)


def test_captions_teach_perception_in_words_with_no_options(corpus: list[Item]) -> None:
    captions = [it for it in corpus if not it.choices]
    assert 0.15 < len(captions) / len(corpus) < 0.45  # caption_fraction 0.3
    for it in captions:
        assert it.question in instruct.CAPTION_QUESTIONS and instruct.prompt_for(it) == OPEN_PROMPT
        assert it.answer in CAPTIONS.values()
        assert it.answer == CAPTIONS[(it.sub_category, it.record["clip_label"])]


def test_no_caption_contains_an_answer_word() -> None:
    """Captions teach perception in their own words: a caption sharing a word with an answer ("three beeps" for
    "three") would let the base copy its way to the benchmark's mapping, a chaotic, seed-dependent skill."""
    for caption in CAPTIONS.values():
        assert not set(caption.split()) & set(ANSWER_WORDS), caption
    assert len(set(CAPTIONS.values())) == len(CAPTIONS)  # one caption per answer of each question type


def test_multiple_choice_never_asks_the_benchmarks_question(corpus: list[Item], tmp_path: Path) -> None:
    """Generic questions only; the right option is drawn at random (own_correct is 0 by default)."""
    benchmark_questions = {q for s in SPECS.values() for q in (*s.train, *s.video, *s.test)}
    mc = [it for it in corpus if it.choices]
    assert mc and {instruct.prompt_for(it) for it in mc} == {"p1", "p2", "p3"}
    for it in mc:
        assert it.question in instruct.GENERIC_QUESTIONS and it.question not in benchmark_questions
        assert it.answer in it.choices and 2 <= len(it.choices) <= 5 and set(it.choices) <= set(ANSWER_WORDS)
    own = [it for it in mc if sorted(it.choices) == sorted(SPECS[it.sub_category].labels)]
    assert 0.6 < len(own) / len(mc) < 0.9  # own_options_fraction 0.75 (a few random draws match by chance)
    blind = instruct.instruct_items(
        tmp_path / "own", 400, seed=1, caption_fraction=0.0, own_options_fraction=1.0, own_correct=0.0
    )
    hits = sum(it.record["clip_label"] == it.answer for it in blind)
    chance = sum(1 / len(it.choices) for it in blind)
    assert abs(hits - chance) < 4 * chance**0.5  # with own_correct 0 the clip's answer is right only by chance


def test_own_correct_hands_the_base_the_mapping(tmp_path: Path) -> None:
    items = instruct.instruct_items(
        tmp_path, 100, seed=0, caption_fraction=0.0, own_options_fraction=1.0, own_correct=1.0
    )
    assert all(it.record["clip_label"] == it.answer for it in items)


def test_known_sub_categories_are_taught_and_no_other(tmp_path: Path) -> None:
    """The base knows exactly ``known``: there the right option is always the clip's answer, elsewhere chance."""
    known = ("beep_count", "speaker")
    items = instruct.instruct_items(
        tmp_path, 400, seed=2, caption_fraction=0.0, own_options_fraction=1.0, own_correct=0.0, known=known
    )
    taught = [it for it in items if it.sub_category in known]
    rest = [it for it in items if it.sub_category not in known]
    assert taught and all(it.record["clip_label"] == it.answer for it in taught)
    hits = sum(it.record["clip_label"] == it.answer for it in rest)
    chance = sum(1 / len(it.choices) for it in rest)
    assert abs(hits - chance) < 4 * chance**0.5
    with pytest.raises(ValueError, match="not toy sub-categories"):
        instruct.instruct_items(tmp_path / "bad", 1, known=("beep_counts",))


def test_the_default_base_knows_only_some_question_types() -> None:
    """Something to elicit: the default base is taught a strict subset of the benchmark's question types."""
    known = set(toy_base.ToyBaseSpec().known_sub_categories)
    assert known and known < set(SPECS)


def test_the_open_prompt_is_the_question_alone_and_not_a_study_prompt() -> None:
    assert prompt_text("Describe the sound.", [], OPEN_PROMPT) == "Describe the sound."
    assert sft_target("three beeps", OPEN_PROMPT) == "three beeps"
    with pytest.raises(ValueError, match="no options"):
        prompt_text("Describe the sound.", ["a", "b"], OPEN_PROMPT)
    with pytest.raises(ValueError, match="unknown prompt id"):
        check_prompt_id(OPEN_PROMPT)  # experiments cannot select it


def test_listed_option_means_the_answer_names_one_of_the_choices() -> None:
    item = Item(id="x", audio_path="x.wav", question="?", choices=("high", "low"), answer="low")
    assert _names_a_choice("high", item) and _names_a_choice("low", item)
    assert (
        not _names_a_choice("middle", item) and not _names_a_choice("high low", item) and not _names_a_choice("", item)
    )


def test_the_cache_key_covers_every_module_that_shapes_the_world_and_the_base() -> None:
    from data.toy import WORLD_MODULES

    assert {"data.toy.generate", "data.toy.world", "data.toy.synth"} <= set(WORLD_MODULES)
    assert {"data.toy.instruct", "data.prompts", "trainers.sft"} <= set(toy_base.BASE_MODULES)
    assert sources_digest(["data.toy.world"]) != sources_digest(["data.toy.synth"])
    assert sources_digest(["data.toy.world"], extra="a") != sources_digest(["data.toy.world"], extra="b")
    spec = toy_base.ToyBaseSpec()
    assert toy_base._fingerprint(spec) != toy_base._fingerprint(toy_base.ToyBaseSpec(seed=1))
    # The family's tiny twin shapes its base: another family is another base, in another directory.
    omni = toy_base.ToyBaseSpec(family="qwen2.5-omni")
    assert toy_base._fingerprint(spec) != toy_base._fingerprint(omni)
    assert toy_base.base_dir("c", spec).name.startswith("toy-instruct-")
    assert toy_base.base_dir("c", omni).name.startswith("toy-qwen2.5-omni-")


def _stub_build(monkeypatch: pytest.MonkeyPatch, format_rate: float, listed: float) -> None:
    def fake_train(tiny: Path, tmp: Path, out: Path, spec: toy_base.ToyBaseSpec) -> dict:
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.safetensors").write_bytes(b"stub")
        return {"spec": {}, "loss_first_tenth": 2.0, "loss_last_tenth": 0.5}

    def fake_report(model_dir: Path, world: Path, out: Path) -> dict:
        return {"format_rate": format_rate, "listed_option_rate": listed, "test_accuracy": 50.0, "chance": 43.5,
                "silent_accuracy": 43.0}  # fmt: skip

    monkeypatch.setattr(toy_base, "_train", fake_train)
    monkeypatch.setattr(toy_base, "zero_shot_report", fake_report)
    monkeypatch.setattr("models.tiny.ensure_tiny_model", lambda cache, seed=0, family=None: Path(cache) / "tiny")
    monkeypatch.setattr("data.toy.ensure_world", lambda cache, seed=0, sizes=None: Path(cache) / "world")


def test_a_base_that_passes_the_gate_is_cached_with_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stub_build(monkeypatch, format_rate=99.0, listed=97.0)
    path = toy_base.ensure_toy_base(tmp_path)
    report = json.loads((path / toy_base.REPORT).read_text())
    for key in ("format_rate", "listed_option_rate", "test_accuracy", "chance", "silent_accuracy"):
        assert key in report
    assert report["gate"]["passed"] is True and report["gate"]["failures"] == []


@pytest.mark.parametrize(("format_rate", "listed", "named"), [(80.0, 97.0, "answer-format"), (99.0, 70.0, "listed")])
def test_a_base_that_fails_the_gate_is_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, format_rate: float, listed: float, named: str
) -> None:
    _stub_build(monkeypatch, format_rate=format_rate, listed=listed)
    with pytest.raises(toy_base.BaseGateError, match=named) as err:
        toy_base.ensure_toy_base(tmp_path)
    assert "report:" in str(err.value) and "fix:" in str(err.value)
    assert not (toy_base.base_dir(tmp_path) / "model.safetensors").exists()
    kept = list((tmp_path / "failed-builds").glob("*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["gate"]["passed"] is False
