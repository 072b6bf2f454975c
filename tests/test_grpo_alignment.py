"""GRPO audio rows stay aligned: every log-probability pass scores each row with that row's own clip.

``AudioGRPOTrainer`` featurises a generation batch's audio once and carries ``input_features`` /
``feature_attention_mask`` through TRL's shuffle, its split into accumulation micro-batches and, with
``num_iterations`` 2, its buffered batches reused for a second pass. Counting encoder calls (tests/test_grpo.py)
cannot see a feature tensor shifted by one row: the model would run, only on the wrong audio. So here every pass
(old, reference, policy) is recorded, each row's item is identified from its prompt tokens, and the row's features
are compared with that item's clip featurised independently, the way the trainer does it.

Every item has a different tone and a different question, so both a row's prompt and its audio name one item. All
clips have the same length: the audio placeholder then expands to the same number of tokens in every prompt, so
misaligned features still run through the model (as a real misalignment would) instead of failing on a
token/feature count mismatch. The negative controls show the checker catches rolled rows, both applied to recorded
passes and produced by a deliberately broken trainer.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

import trainers.grpo
from data.audio import load_audio, write_wav
from data.prompts import build_conversation, render_prompt
from data.schema import Item
from experiments.registry import get_experiment
from experiments.spec import GRPOSpec, TrainSpec
from experiments.trainer_arguments import build_trainer
from models.features import featurize
from models.loading import audio_window_seconds, load_model_and_processor
from models.tiny import TINY_MODELS
from tests.helpers import tone
from trainers.grpo import AudioGRPOTrainer

N_ITEMS = 8
CLIP_SECONDS = 1.0  # under the tiny model's 2 s window, the same for every clip (see the module docstring)
# 2 prompts x G=4 per micro-batch, 2 accumulation steps, 2 iterations per rollout: each generation batch of
# 4 prompts (16 rows) is shuffled, split in two and each half used twice, over 2 optimizer steps; 4 steps make
# 2 generation batches, so TRL also replaces its buffer once.
PROMPTS_PER_DEVICE, G, GRAD_ACCUM, NUM_ITERATIONS, MAX_STEPS = 2, 4, 2, 2, 4
# TRL generates every steps_per_generation (= GRAD_ACCUM) x NUM_ITERATIONS micro-steps.
GENERATION_BATCHES = MAX_STEPS // NUM_ITERATIONS


@dataclasses.dataclass(frozen=True)
class PassRecord:
    """One call of ``_get_per_token_logps_and_entropies``: the rows it scored and the audio it scored them with."""

    kind: str  # "old" (sampling policy, no grad), "ref" (reference model) or "policy" (the loss, with grad)
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    logits_to_keep: int
    features: torch.Tensor
    feature_mask: torch.Tensor


@dataclasses.dataclass(frozen=True)
class Clip:
    """An item's own clip, featurised as the trainer featurises it."""

    item_id: str
    features: torch.Tensor
    feature_mask: torch.Tensor


class RecordingTrainer(AudioGRPOTrainer):
    """Records the token rows and audio features of every log-probability pass, then runs it unchanged."""

    records: list[PassRecord]

    def _get_per_token_logps_and_entropies(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                                           logits_to_keep: int, *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        if self._audio is not None:  # without audio the real method raises: nothing to record
            kind = "ref" if model is self.ref_model else "policy" if torch.is_grad_enabled() else "old"
            features, feature_mask = self._audio
            self.records.append(PassRecord(kind, input_ids.detach().clone(), attention_mask.detach().clone(),
                                           logits_to_keep, features.detach().clone(), feature_mask.detach().clone()))  # fmt: skip
        return super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
                                                          *args, **kwargs)  # fmt: skip


class RolledFeaturesTrainer(RecordingTrainer):
    """Deliberately broken: hands TRL the batch's features shifted by one row (the old and reference passes, run
    inside generation, still see the right ones; the policy passes in the loss do not)."""

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        output["input_features"] = output["input_features"].roll(1, dims=0)
        output["feature_attention_mask"] = output["feature_attention_mask"].roll(1, dims=0)
        return output


def _prompt_key(record: PassRecord, row: int) -> tuple[int, ...]:
    """The row's prompt tokens without padding (TRL scores ``[left-padded prompt | completion]`` rows and
    ``logits_to_keep`` is the completion width)."""
    ids = record.input_ids[row, : -record.logits_to_keep]
    mask = record.attention_mask[row, : -record.logits_to_keep]
    return tuple(ids[mask.bool()].tolist())


def misaligned_rows(records: list[PassRecord], expected: dict[tuple[int, ...], Clip]) -> list[tuple[int, int]]:
    """``(record index, row)`` of every recorded row whose features are not its own item's clip.

    The item is found from the row's prompt tokens (``expected`` maps each item's prompt tokens to its clip); a row
    whose prompt is no item's counts as misaligned too. Features must match to float rounding (the trainer
    featurises a batch of clips at once, this reference one clip at a time) and the frame mask exactly.
    """
    bad = []
    for i, record in enumerate(records):
        for row in range(record.input_ids.shape[0]):
            clip = expected.get(_prompt_key(record, row))
            same = (
                clip is not None
                and torch.equal(record.feature_mask[row].cpu(), clip.feature_mask)
                and torch.allclose(record.features[row].float().cpu(), clip.features, rtol=0, atol=1e-5)
            )
            if not same:
                bad.append((i, row))
    return bad


def _items(root: Path) -> list[Item]:
    """Items with a different tone and a different question each, so a row's prompt and its audio name one item."""
    items = []
    for i in range(N_ITEMS):
        path = write_wav(root / f"clip{i}.wav", tone(200.0 + 170.0 * i, CLIP_SECONDS))
        answer = "high" if i % 2 else "low"
        items.append(Item(id=f"item{i}", audio_path=str(path), question=f"Is note number {i} high or low?",
                          choices=("high", "low"), answer=answer))  # fmt: skip
    return items


def _expected_clips(items: list[Item], processor: Any, prompt_id: str) -> dict[tuple[int, ...], Clip]:
    """Each item's prompt tokens -> its own clip's features, built one item at a time as the trainer builds them."""
    expected = {}
    for item in items:
        text = render_prompt(processor, build_conversation(item.question, item.choices, prompt_id))
        wave = load_audio(item.audio_path, max_seconds=audio_window_seconds(processor), channel="mean")
        feats = featurize(processor, [text], [wave])
        key = tuple(feats["input_ids"][0][feats["attention_mask"][0].bool()].tolist())
        expected[key] = Clip(item.id, feats["input_features"][0].float(), feats["feature_attention_mask"][0])
    assert len(expected) == len(items), "two items share a prompt: rows could not be told apart"
    return expected


def _run(trainer_cls: type[RecordingTrainer], tiny_dir: Path, root: Path, monkeypatch: pytest.MonkeyPatch):
    """A short GRPO run with ``trainer_cls``, built the suite's way; its recorded passes and the expected clips."""
    exp = dataclasses.replace(
        get_experiment("grpo-p2"),
        train=TrainSpec(learning_rate=1e-3, epochs=None, max_steps=MAX_STEPS, per_device_batch=PROMPTS_PER_DEVICE,
                        grad_accum=GRAD_ACCUM, save_every=0),
        grpo=GRPOSpec(num_generations=G, max_completion_length=4, num_iterations=NUM_ITERATIONS),
    )  # fmt: skip
    items = _items(root / "audio")
    model, processor = load_model_and_processor(tiny_dir, device="cpu", dtype=torch.float32)
    monkeypatch.setattr(trainers.grpo, "AudioGRPOTrainer", trainer_cls)  # build_grpo_trainer builds this class
    trainer = build_trainer(exp, model, processor, items, output_dir=str(root / "run"), seed=0)
    assert isinstance(trainer, trainer_cls) and trainer.ref_model is not None  # full GRPO, beta > 0: a reference
    # ... of the policy's class (an Omni thinker, not the whole Omni model) holding the policy's weights.
    assert type(trainer.ref_model) is type(trainer.model)
    ref, policy = trainer.ref_model.state_dict(), trainer.model.state_dict()
    assert ref.keys() == policy.keys() and all(torch.equal(ref[k], policy[k]) for k in policy)
    trainer.records = []
    trainer.train()
    # A mixture of experts (Qwen3-Omni) trains with its load-balancing loss, as TRL gives a text MoE.
    moe = hasattr(model.config.get_text_config(), "output_router_logits")
    logged = [h["aux_loss"] for h in trainer.state.log_history if "aux_loss" in h]
    assert trainer.aux_loss_enabled == moe and bool(logged) == moe and all(v > 0 for v in logged)
    return trainer.records, _expected_clips(items, processor, exp.prompt)


@pytest.fixture(scope="module", params=sorted(TINY_MODELS))
def family_dir(request: pytest.FixtureRequest) -> Path:
    """Each model family's tiny twin (the guarantee holds per family)."""
    from experiments.profiles import resolve_model_name

    return Path(resolve_model_name(request.param))


@pytest.fixture(scope="module")
def real_run(family_dir, tmp_path_factory):
    """The passes of one real run (shared by the alignment test and the first negative control)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _run(RecordingTrainer, family_dir, tmp_path_factory.mktemp("aligned"), monkeypatch)


def _rows_by_kind(records: list[PassRecord]) -> Counter:
    rows: Counter = Counter()
    for r in records:
        rows[r.kind] += r.input_ids.shape[0]
    return rows


def _boundary_rows(record: PassRecord, expected: dict[tuple[int, ...], Clip]) -> list[int]:
    """Rows whose item differs from the previous row's (cyclically): the rows a roll by one row puts wrong audio in."""
    ids = [expected[_prompt_key(record, row)].item_id for row in range(record.input_ids.shape[0])]
    return [row for row in range(len(ids)) if ids[row] != ids[row - 1]]


def test_every_log_prob_pass_scores_each_row_with_its_own_clip(real_run):
    records, expected = real_run
    clips = [c.features for c in expected.values()]
    # The check has teeth: any two items' features differ far beyond its tolerance.
    assert min((a - b).abs().max() for i, a in enumerate(clips) for b in clips[i + 1 :]) > 0.1
    # Every pass is checked. Each generation batch of PROMPTS_PER_DEVICE * G * GRAD_ACCUM = 16 rows is scored once
    # by the sampling policy (old log-probs: num_iterations 2) and once by the reference, then as 2 micro-batches
    # of 8 rows, each used NUM_ITERATIONS times in the loss.
    rows = GENERATION_BATCHES * PROMPTS_PER_DEVICE * G * GRAD_ACCUM
    assert _rows_by_kind(records) == {"old": rows, "ref": rows, "policy": rows * NUM_ITERATIONS}
    micro_batches = [r.input_ids.shape[0] for r in records if r.kind == "policy"]
    assert micro_batches == [PROMPTS_PER_DEVICE * G] * MAX_STEPS * GRAD_ACCUM
    # TRL's shuffle mixed the prompts into the micro-batches, so rows of different clips really were reordered.
    assert all(len({_prompt_key(r, row) for row in range(r.input_ids.shape[0])}) > 1 for r in records)
    assert misaligned_rows(records, expected) == []


def test_checker_catches_recorded_features_rolled_by_one_row(real_run):
    """Negative control (a): the recorded passes with their features rolled by one row."""
    records, expected = real_run
    rolled = [dataclasses.replace(r, features=r.features.roll(1, dims=0), feature_mask=r.feature_mask.roll(1, dims=0))
              for r in records]  # fmt: skip
    wrong = [(i, row) for i, r in enumerate(records) for row in _boundary_rows(r, expected)]
    # Every pass holds more than one clip, so each has wrong rows; the checker names exactly them.
    assert {i for i, _ in wrong} == set(range(len(records)))
    assert misaligned_rows(rolled, expected) == wrong


def test_checker_catches_a_trainer_that_rolls_the_features(family_dir, tmp_path, monkeypatch):
    """Negative control (b): a trainer that shifts the generation batch's features by one row before TRL's shuffle."""
    records, expected = _run(RolledFeaturesTrainer, family_dir, tmp_path, monkeypatch)
    bad = misaligned_rows(records, expected)
    # Old and reference passes ran inside generation on the right features; every policy pass reuses the shifted
    # batch. The rows made wrong are each prompt group's first row (the generation batch holds G rows per prompt in
    # order, as the old pass shows), and each is scored NUM_ITERATIONS times in the loss.
    assert {records[i].kind for i, _ in bad} == {"policy"}
    shifted = sum(len(_boundary_rows(r, expected)) for r in records if r.kind == "old")
    assert shifted == GENERATION_BATCHES * PROMPTS_PER_DEVICE * GRAD_ACCUM
    assert len(bad) == shifted * NUM_ITERATIONS
