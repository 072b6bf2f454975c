"""A synthetic audio-question-answering "toy world" that a tiny Qwen2-Audio model can learn on CPU in minutes.

Run::

    python -m data.toy --out outputs/toy                      # train 3000, val 300, test 1980 items, seed 0
    python -m data.toy --out /tmp/toy --seed 1 --sizes train=300,val=30,test=60 --check
    python -m data.toy check --out outputs/toy                # can text alone answer it? (see data/toy/check.py)

It stands in for the study's data: ``train``/``val`` in the AVQA annotation format (the training set) and ``test``
in the MMAU test-mini format (the out-of-distribution benchmark), so that every loader, trainer and scorer of the
suite runs unchanged on it. Everything is synthesised with numpy from a seed; the same seed and sizes give
byte-identical files (per-item generators seeded from (seed, split, index); JSON with sorted keys and indent 2;
16-bit PCM wav).

Layout written under ``--out DIR``::

    DIR/train/train_qa.json, DIR/train/audio/<video_name>.wav     AVQA format, answer = index
    DIR/val/val_qa.json,     DIR/val/audio/<video_name>.wav
    DIR/test/mmau-test-mini.json, DIR/test/test-mini-audios/<id>.wav   MMAU format, answer = text
    DIR/world.json          manifest: seed, sizes, sub-categories, templates, the shift, chance accuracy per split

The world is defined in :mod:`data.toy.world` (question types, answers, phrasings, parameters) and its clips are
made by :mod:`data.toy.synth`. This module lays a world out on disk; the command line is :mod:`data.toy.cli`.

**Text cannot answer** (world version 2). Every item offers exactly its sub-category's answers (2, 3 or 4 choices),
in an order drawn so that each answer and each answer position is balanced within every split and sub-category:
a text-only policy that knows the label sets, the train label frequencies and the answer positions scores chance.
(Version 1 padded 2-label questions to 4 choices with never-correct distractors, which text alone could rule out:
46% on test against 32% chance.) About 20% of train/val questions mention the "video" ("video", "Video" or
"videos"), as in AVQA, whose loader rewrites them.

The test split is OUT OF DISTRIBUTION, like MMAU for a model trained on AVQA (the exact numbers are ``PARAMS`` and
``COMMON`` in :mod:`data.toy.world`, also written to world.json under "shift"):

* question phrasings: held-out templates, never used in train/val (in any loader rewrite of "video");
* every clip: peak level 0.25-0.5 instead of 0.5-0.9, background noise pink instead of white, at lower SNR
  (easy 25-30 / medium 15-20 / hard 9-12 dB instead of 30-40 / 18-24 / 10-14);
* beep_count: beeps at 1600-2600 Hz with odd harmonics (square-ish) instead of pure 700-1300 Hz tones;
* noise_colour: the noise comes in 2-4 bursts with silences instead of one steady stretch;
* loudness_trend: two-tone carrier (f and 1.5 f, f in 900-1600 Hz) instead of one 300-900 Hz tone, and a sigmoid
  step in level around the middle of the clip instead of a linear ramp over the whole clip;
* note_height: plucked notes (exponential decay, 2nd and 3rd harmonics) instead of sustained sines; low notes
  0.8x and high notes 1.2x the train frequencies (further from the boundary, but outside the train range);
* tempo: noise-burst clicks instead of 1.5-2.5 kHz tone clicks; fast intervals 0.9x, slow intervals 1.15x;
* timbre: f0 500-800 Hz instead of 250-500 Hz, with vibrato (5-6 Hz, 0.5-1.5%) instead of none;
* vowel: vocal tract scaled by 1.12-1.22 (formants up, child-like) and f0 200-300 Hz instead of 100-240 Hz;
* speaker: unseen vowels (eh, oh, uh instead of ah, ee, oo); men's f0 0.9x and women's f0 1.1x the train ranges;
* syllable_count: faster syllables (0.12-0.2 s instead of 0.18-0.3 s) on unseen vowels, f0 170-260 Hz.

Chance level (a uniform random pick among the listed choices): the mean of 1/(number of answers) over the items,
about 0.435 on every split (six 2-answer, two 3-answer and one 4-answer sub-category, balanced).
:func:`chance_accuracy` computes it for any list of records or items; the generator prints it and stores it in
world.json.

Public API (also as ``data.toy.X``): :func:`generate_world`, :func:`ensure_world`, :func:`world_dir`,
:data:`DEFAULT_SIZES`, :func:`question_texts`, :func:`chance_accuracy`; the world's data (:data:`SUB_CATEGORIES`,
:data:`ANSWER_WORDS`, ...) is :mod:`data.toy.world`'s and :func:`make_clip` (one waveform) :mod:`data.toy.synth`'s.
:func:`split_plan`, :func:`annotation_file` and :func:`word_set` are shared with the checks of a generated world
(text-only oracles, the learnability check :func:`~data.toy.check.separability`), which are in :mod:`data.toy.check`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data.audio import SAMPLE_RATE, write_wav
from data.io import build_once, sources_digest, write_text_atomic
from data.toy.synth import make_clip
from data.toy.world import (
    COMMON,
    DIFFICULTIES,
    MAX_SECONDS,
    PARAMS,
    SPECS,
    SPLITS,
    SUB_CATEGORIES,
    TASKS,
    WORLD_VERSION,
    SubCategory,
)

__all__ = [
    "DEFAULT_SIZES",
    "WORLD_MODULES",
    "Slot",
    "annotation_file",
    "chance_accuracy",
    "ensure_world",
    "generate_world",
    "parse_sizes",
    "question_texts",
    "split_plan",
    "word_set",
    "world_dir",
]

# Test: 1980 items (MMAU test-mini has 1000), so that one run's accuracy has a sampling std of about 1.1 points
# instead of 2.7 at 330 (which alone moved `direct` by a few points between base builds of equal ability). Val stays
# at 300: it only selects checkpoints, and every item of it is evaluated at every checkpoint of every run (a larger
# val made `make paper SEEDS="0 1 2"` overrun its 30 minutes).
DEFAULT_SIZES: dict[str, int] = {"train": 3000, "val": 300, "test": 1980}
VIDEO_FRACTION = 0.2
# Fixed codes (not hash(split), which is salted per process) keep per-item seeds stable across runs.
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}

# ------------------------------------------------------------------------------------------------ world generation


@dataclass(frozen=True)
class Slot:
    """What one item of a split asks, fixed before any audio is made (so the split is balanced by construction)."""

    sub_category: str
    label: str
    difficulty: str
    position: int  # index of the answer among the choices
    video: bool


def _balanced(rng: np.random.Generator, values: Sequence[Any], n: int) -> list[Any]:
    """``n`` values cycling through ``values`` (counts differ by at most one), in random order."""
    cycled = [values[i % len(values)] for i in range(n)]
    return [cycled[i] for i in rng.permutation(n)]


def split_plan(seed: int, split: str, n: int) -> list[Slot]:
    """Balanced assignment of task, sub-category, answer, difficulty, answer position and phrasing kind.

    Within each sub-category the answers, the difficulties and the answer positions are each balanced (counts
    differ by at most one): no answer and no position is more likely than another, which is what leaves a
    text-only policy at chance.
    """
    rng = np.random.default_rng([seed, _SPLIT_CODE[split]])
    tasks = _balanced(rng, TASKS, n)
    subs: list[str] = [""] * n
    for task in TASKS:
        idx = [i for i in range(n) if tasks[i] == task]
        for i, s in zip(idx, _balanced(rng, SUB_CATEGORIES[task], len(idx)), strict=True):
            subs[i] = s
    labels: list[str] = [""] * n
    diffs: list[str] = [""] * n
    positions: list[int] = [0] * n
    for name, spec in SPECS.items():
        idx = [i for i in range(n) if subs[i] == name]
        k = len(spec.labels)
        for i, lab, d, pos in zip(
            idx,
            _balanced(rng, spec.labels, len(idx)),
            _balanced(rng, DIFFICULTIES, len(idx)),
            _balanced(rng, range(k), len(idx)),
            strict=True,
        ):
            labels[i], diffs[i], positions[i] = lab, d, pos
    if split == "test":
        videos = [False] * n
    else:
        n_video = int(round(VIDEO_FRACTION * n))
        videos = [bool(v) for v in _balanced(rng, [True] * n_video + [False] * (n - n_video), n)] if n else []
    return [Slot(subs[i], labels[i], diffs[i], positions[i], videos[i]) for i in range(n)]


def _choices(rng: np.random.Generator, spec: SubCategory, label: str, position: int) -> list[str]:
    """Every answer of the sub-category, ``label`` at ``position`` and the others in random order."""
    others = [w for w in spec.labels if w != label]
    rng.shuffle(others)
    return others[:position] + [label] + others[position:]


def _test_id(seed: int, index: int) -> str:
    return hashlib.sha256(f"r1-aqa-toy/{seed}/test/{index}".encode()).hexdigest()[:32]


def _item(seed: int, split: str, index: int, slot: Slot) -> tuple[dict[str, Any], np.ndarray, str]:
    """One record, its waveform and the wav path relative to the split directory."""
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], index + 1])
    spec = SPECS[slot.sub_category]
    pool = spec.test if split == "test" else spec.video if slot.video else spec.train
    question = pool[int(rng.integers(len(pool)))]
    position = slot.position
    choices = _choices(rng, spec, slot.label, position)
    wave = make_clip(slot.sub_category, slot.label, slot.difficulty, rng, split=split)
    if split == "test":
        item_id = _test_id(seed, index)
        rel = f"test-mini-audios/{item_id}.wav"
        record: dict[str, Any] = {
            "id": item_id,
            "audio_id": f"./{rel}",
            "question": question,
            "choices": choices,
            "answer": slot.label,
            "dataset": "toy",
            "task": spec.task,
            "split": "test-mini",
            "category": spec.category,
            "sub-category": spec.name,
            "difficulty": slot.difficulty,
        }
    else:
        video_name = f"toy_{split}_{index:06d}"
        rel = f"audio/{video_name}.wav"
        record = {
            "id": index,
            "video_name": video_name,
            "video_id": index,
            "question_text": question,
            "multi_choice": choices,
            "answer": position,
            "question_relation": "Sound",
            "question_type": spec.name,
        }
    return record, wave, rel


def annotation_file(split: str) -> str:
    return "test/mmau-test-mini.json" if split == "test" else f"{split}/{split}_qa.json"


def _dumps(obj: Any) -> str:
    # Sorted keys and a fixed indent: the same world must be byte-identical on every run.
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# Every module whose code shapes a generated world: a change to any of them must regenerate cached worlds.
WORLD_MODULES = ("data.toy.generate", "data.toy.world", "data.toy.synth", "data.audio")


def world_dir(cache_root: str | Path, seed: int = 0, sizes: Mapping[str, int] | None = None) -> Path:
    """Where the world of ``seed`` and ``sizes`` is cached under ``cache_root``: keyed by the code of
    :data:`WORLD_MODULES` and the sizes, so that a change to the generator regenerates it."""
    key = sources_digest(WORLD_MODULES, extra=repr(sorted((sizes or {}).items())))
    return Path(cache_root) / f"toy-world-s{seed}-{key[:10]}"


def ensure_world(cache_root: str | Path, seed: int = 0, sizes: Mapping[str, int] | None = None) -> Path:
    """The cached world of ``seed`` and ``sizes``, generated first if missing (safe under concurrent callers)."""
    return build_once(world_dir(cache_root, seed, sizes), lambda d: generate_world(d, seed=seed, sizes=sizes),
                      done="world.json")  # fmt: skip


def parse_sizes(text: str | None) -> dict[str, int]:
    """``"train=3000,val=300,test=1980"`` -> dict; splits not named keep their default size."""
    sizes = dict(DEFAULT_SIZES)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in SPLITS or not value.strip().isdigit():
            raise ValueError(f"bad size {part!r}: expected SPLIT=N with SPLIT in {SPLITS}, e.g. train=3000")
        sizes[name] = int(value)
    return sizes


def _check_sizes(sizes: Mapping[str, int] | None) -> dict[str, int]:
    merged = dict(DEFAULT_SIZES)
    for name, value in (sizes or {}).items():
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r} in sizes; expected some of {SPLITS}")
        if int(value) < 0:
            raise ValueError(f"size of {name!r} must be >= 0, got {value}")
        merged[name] = int(value)
    return merged


def _remove_stale(audio_dir: Path, keep: set[str]) -> None:
    """Delete wavs left by an earlier, larger world in the same folder, so the folder matches the annotations."""
    if audio_dir.is_dir():
        for path in audio_dir.glob("*.wav"):
            if path.name not in keep:
                path.unlink()


def generate_world(
    out_dir: str | Path, seed: int = 0, sizes: Mapping[str, int] | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Write the toy world (audio, annotation files, world.json) under ``out_dir``; returns the manifest.

    ``sizes`` maps split -> number of items; missing splits keep :data:`DEFAULT_SIZES`. world.json is written last,
    so its presence means the world is complete. Wavs in the world's own audio folders that the new world does not
    use (left by an earlier, larger run) are deleted, so the folders always match the annotation files.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    sizes = _check_sizes(sizes)
    plans = {split: split_plan(seed, split, sizes[split]) for split in SPLITS}
    records: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    bar = tqdm(total=sum(sizes.values()), desc="toy world", unit="clip", disable=not progress)
    for split in SPLITS:
        split_dir = out / split
        written: set[str] = set()
        for index, slot in enumerate(plans[split]):
            record, wave, rel = _item(seed, split, index, slot)
            write_wav(split_dir / rel, wave, SAMPLE_RATE)
            written.add(Path(rel).name)
            records[split].append(record)
            bar.update(1)
        _remove_stale(split_dir / ("test-mini-audios" if split == "test" else "audio"), written)
        write_text_atomic(out / annotation_file(split), _dumps(records[split]))
    bar.close()
    manifest = _manifest(seed, sizes, records)
    write_text_atomic(out / "world.json", _dumps(manifest))
    return manifest


def _manifest(seed: int, sizes: Mapping[str, int], records: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def counts(split: str) -> dict[str, dict[str, int]]:
        key = "sub-category" if split == "test" else "question_type"
        by_sub = Counter(r[key] for r in records[split])
        by_task = Counter(SPECS[r[key]].task for r in records[split])
        return {"task": dict(sorted(by_task.items())), "sub_category": dict(sorted(by_sub.items()))}

    return {
        "name": "r1-aqa toy audio-QA world",
        "version": WORLD_VERSION,
        "generator": "python -m data.toy",
        "seed": seed,
        "sizes": dict(sizes),
        "sample_rate": SAMPLE_RATE,
        "max_seconds": MAX_SECONDS,
        "files": {split: annotation_file(split) for split in SPLITS},
        "formats": {"train": "avqa", "val": "avqa", "test": "mmau-test-mini"},
        "sub_categories": SUB_CATEGORIES,
        "sub_category_specs": {
            task: {
                name: {
                    "category": SPECS[name].category,
                    "answers": list(SPECS[name].labels),
                    "captions": list(SPECS[name].captions),
                    "templates": {
                        "train": list(SPECS[name].train),
                        "video": list(SPECS[name].video),
                        "test": list(SPECS[name].test),
                    },
                }
                for name in SUB_CATEGORIES[task]
            }
            for task in TASKS
        },
        "shift": {
            "summary": (
                "test only: held-out question templates; lower peak level; "
                "pink instead of white background noise at lower SNR; per sub-category parameter shifts below "
                "(train_val = train and val, test = test)"
            ),
            "common": COMMON,
            "per_sub_category": PARAMS,
            "video_phrasing_fraction": {"train": VIDEO_FRACTION, "val": VIDEO_FRACTION, "test": 0.0},
        },
        "choices": "every answer of the sub-category, answers and answer positions balanced per split",
        "counts": {split: counts(split) for split in SPLITS},
        "chance": {split: chance_accuracy(records[split]) for split in SPLITS},
    }


# ------------------------------------------------------------------------------------------------ questions, chance


def question_texts(split: str) -> list[str]:
    """Every question phrasing a split can contain (templates hold no answer), for a tokenizer corpus.

    For train/val this includes the "video" phrasings and their rewrites by the AVQA loader (both the original
    code's and the corrected rule), since the model sees the rewritten text.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "test":
        return [q for s in SPECS.values() for q in s.test]
    from data.avqa import rewrite_question

    texts = [q for s in SPECS.values() for q in (*s.train, *s.video)]
    texts += [rewrite_question(q, mode) for s in SPECS.values() for q in s.video for mode in ("original", "correct")]
    return list(dict.fromkeys(texts))  # de-duplicated, order kept


def word_set(text: str) -> frozenset[str]:
    """The lowercase word set of ``text``: two texts the MMAU rule takes for the same answer have the same one."""
    import re

    return frozenset(re.findall(r"\b\w+\b", str(text).lower()))


def _choices_answer_task(rec: Any) -> tuple[list[str], str, str]:
    """(choices, gold text, task) of an Item, an MMAU record or an AVQA record."""
    if hasattr(rec, "choices") and hasattr(rec, "answer"):  # data.schema.Item
        sub = getattr(rec, "sub_category", None)
        task = rec.task or (SPECS[sub].task if sub in SPECS else None)
        if task is None:
            qtype = (getattr(rec, "record", None) or {}).get("question_type")
            task = SPECS[qtype].task if qtype in SPECS else "unknown"
        return list(rec.choices), str(rec.answer), task
    if "multi_choice" in rec:  # AVQA: answer is a 0-based index
        choices = list(rec["multi_choice"])
        qtype = rec.get("question_type")
        return choices, str(choices[int(rec["answer"])]), SPECS[qtype].task if qtype in SPECS else "unknown"
    return list(rec["choices"]), str(rec["answer"]), str(rec.get("task") or "unknown")


def chance_accuracy(records_or_items: Iterable[Any]) -> dict[str, Any]:
    """Expected accuracy of a uniform random pick among each item's listed choices, overall and per task.

    An item's chance is the share of its choices that the MMAU rule would score as correct if output verbatim:
    the choices whose lowercase word set equals the gold answer's (normally just the gold, so 1/len(choices);
    duplicated choices, as in a few real MMAU items, count for each copy). Overall is the micro average, like the
    MMAU score. Accepts :class:`~data.schema.Item` s, MMAU records or AVQA records (task from ``question_type``).
    Returns ``{"overall", "n", "per_task": {task: chance}, "n_per_task": {task: n}}``; ``overall`` is None if empty.
    """
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for rec in records_or_items:
        choices, gold, task = _choices_answer_task(rec)
        gold_tokens = word_set(gold)
        hits = sum(1 for c in choices if word_set(c) == gold_tokens) if choices else 0
        sums[task] = sums.get(task, 0.0) + (hits / len(choices) if choices else 0.0)
        counts[task] = counts.get(task, 0) + 1
    n = sum(counts.values())
    return {
        "overall": round(sum(sums.values()) / n, 6) if n else None,
        "n": n,
        "per_task": {t: round(sums[t] / counts[t], 6) for t in sorted(counts)},
        "n_per_task": dict(sorted(counts.items())),
    }
