"""The toy world's second test, in MMAR's shape: clips that mix two task families, a question about one of them.

MMAU test-mini's stand-in (the world's ``test`` split) shifts every parameter of a clip; this one shifts nothing but
the composition. Each clip is a *target* of one family (sound, music or speech), drawn from the train/val regime
exactly as a training clip would be, overlaid with a *distractor* of another family (another sub-category, its own
random answer and difficulty) at :data:`DISTRACTOR_DB` below the target's level. The question is one of the target
sub-category's held-out test phrasings after :data:`PREFIX`, the choices every answer of it, answers, difficulties and
answer positions balanced per sub-category (as in every split), so text alone scores chance
(``python -m data.toy check`` measures it on this test too). A model that perceives each family alone has to pick
the right component out of a mixture: compositional generalisation, which no training clip shows.

Records follow MMAR's fields (``id``, ``audio_path``, ``question``, ``choices``, ``answer``, ``modality``,
``category``, ``sub-category``; ``data.benchmark_registry.MMAR``), so the whole multi-benchmark path (loader,
scorer, ``eval/mmar/...`` keys, Table 2's MMAR block) runs on it; ``modality`` names the pair
(``mix-sound-music``, ``mix-sound-speech``, ``mix-music-speech``, in MMAR's spelling) and ``target_task`` the family
asked about. Layout: ``mmar.json``, ``audio/<id>.wav`` and ``mix.json`` (the manifest, written last).

    python -m data.toy --out outputs/toy          # the world, with this test under outputs/toy/mix/
    python -c "from data.toy.mix import generate_mix; generate_mix('/tmp/mix', n=60)"

Built by its own module (not :mod:`data.toy.generate`): the toy base's cache key covers the world's generator, and
this test is no part of what the base is taught.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data.audio import SAMPLE_RATE, write_wav
from data.io import build_once, sources_digest, write_text_atomic
from data.toy.generate import WORLD_MODULES, _balanced, _choices, chance_accuracy
from data.toy.synth import make_clip
from data.toy.world import COMMON, DIFFICULTIES, SPECS, SUB_CATEGORIES, TASKS

DEFAULT_MIX_SIZE = 990  # 110 per target sub-category: a run's accuracy has a sampling std of about 1.6 points
MIX_FILE = "mmar.json"
MANIFEST = "mix.json"
DISTRACTOR_DB = (-9.0, -3.0)  # distractor RMS relative to the target's: audible, never the louder source
PREFIX = "The recording mixes two sources. "
MIX_MODULES = (*WORLD_MODULES, "data.toy.mix")
_SEED_CODE = 3  # the world's splits use 0-2 (data.toy.generate._SPLIT_CODE)


@dataclass(frozen=True)
class MixSlot:
    """What one mixed item asks, fixed before any audio is made."""

    sub_category: str  # the target's, asked about
    label: str
    difficulty: str
    position: int
    distractor_task: str


def modality(task_a: str, task_b: str) -> str:
    """MMAR's name of a two-family mix, e.g. ``mix-sound-speech`` (families in the order sound, music, speech)."""
    a, b = sorted((task_a, task_b), key=TASKS.index)
    return f"mix-{a}-{b}"


def mix_plan(seed: int, n: int) -> list[MixSlot]:
    """Balanced targets (family, sub-category, answer, difficulty, answer position) and distractor families."""
    rng = np.random.default_rng([seed, _SEED_CODE])
    tasks = _balanced(rng, TASKS, n)
    subs = [""] * n
    others = [""] * n
    for task in TASKS:
        idx = [i for i in range(n) if tasks[i] == task]
        rest = [t for t in TASKS if t != task]
        for i, s, o in zip(idx, _balanced(rng, SUB_CATEGORIES[task], len(idx)), _balanced(rng, rest, len(idx)),
                           strict=True):  # fmt: skip
            subs[i], others[i] = s, o
    slots: list[MixSlot | None] = [None] * n
    for name, spec in SPECS.items():
        idx = [i for i in range(n) if subs[i] == name]
        labels = _balanced(rng, spec.labels, len(idx))
        diffs = _balanced(rng, DIFFICULTIES, len(idx))
        positions = _balanced(rng, range(len(spec.labels)), len(idx))
        for i, lab, d, pos in zip(idx, labels, diffs, positions, strict=True):
            slots[i] = MixSlot(name, lab, d, pos, others[i])
    return [s for s in slots if s is not None]


def _mix_id(seed: int, index: int) -> str:
    return hashlib.sha256(f"r1-aqa-toy/{seed}/mix/{index}".encode()).hexdigest()[:32]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) + 1e-12


def mix_clip(slot: MixSlot, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """The mixed waveform of ``slot`` (float32, 16 kHz, at most 2 s) and what its distractor is."""
    target = make_clip(slot.sub_category, slot.label, slot.difficulty, rng, split="train").astype(np.float64)
    d_sub = SUB_CATEGORIES[slot.distractor_task][int(rng.integers(3))]
    d_label = SPECS[d_sub].labels[int(rng.integers(len(SPECS[d_sub].labels)))]
    d_diff = DIFFICULTIES[int(rng.integers(len(DIFFICULTIES)))]
    distractor = make_clip(d_sub, d_label, d_diff, rng, split="train").astype(np.float64)
    level_db = float(rng.uniform(*DISTRACTOR_DB))
    n = max(len(target), len(distractor))
    out = np.zeros(n)
    # The shorter clip starts at a random offset inside the longer one; both keep their own timing cues.
    for x, gain in ((target, 1.0), (distractor, 10 ** (level_db / 20.0) * _rms(target) / _rms(distractor))):
        start = int(rng.integers(n - len(x) + 1))
        out[start : start + len(x)] += gain * x
    peak = float(np.max(np.abs(out))) or 1.0
    wave = (out * (float(rng.uniform(*COMMON["train_val"]["peak"])) / peak)).astype(np.float32)
    return wave, {"sub-category": d_sub, "answer": d_label, "difficulty": d_diff, "level_db": round(level_db, 3)}


def _item(seed: int, index: int, slot: MixSlot) -> tuple[dict[str, Any], np.ndarray]:
    rng = np.random.default_rng([seed, _SEED_CODE, index + 1])
    spec = SPECS[slot.sub_category]
    question = PREFIX + spec.test[int(rng.integers(len(spec.test)))]
    choices = _choices(rng, spec, slot.label, slot.position)
    wave, distractor = mix_clip(slot, rng)
    item_id = _mix_id(seed, index)
    record = {
        "id": item_id,
        "audio_path": f"./audio/{item_id}.wav",
        "question": question,
        "choices": choices,
        "answer": slot.label,
        "modality": modality(spec.task, slot.distractor_task),
        "category": spec.category,
        "sub-category": spec.name,
        "difficulty": slot.difficulty,
        "target_task": spec.task,
        "distractor": distractor,
        "dataset": "toy-mix",
    }
    return record, wave


def generate_mix(out_dir: str | Path, seed: int = 0, n: int = DEFAULT_MIX_SIZE, *, progress: bool = True) -> Path:
    """Write the mixed test (``mmar.json``, ``audio/``, then ``mix.json``) under ``out_dir``; returns the question
    file. Byte-identical for the same seed, size and code."""
    from tqdm import tqdm

    if n < 0:
        raise ValueError(f"mix size must be >= 0, got {n}")
    out = Path(out_dir)
    records = []
    for index, slot in enumerate(tqdm(mix_plan(seed, n), desc="toy mix test", unit="clip", disable=not progress)):
        record, wave = _item(seed, index, slot)
        write_wav(out / record["audio_path"], wave, SAMPLE_RATE)
        records.append(record)
    keep = {Path(r["audio_path"]).name for r in records}
    for stale in (out / "audio").glob("*.wav") if (out / "audio").is_dir() else []:
        if stale.name not in keep:  # left by an earlier, larger mix in the same folder
            stale.unlink()
    path = out / MIX_FILE
    write_text_atomic(path, json.dumps(records, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    manifest = {
        "name": "r1-aqa toy mixed test (MMAR's shape)", "seed": seed, "n": n, "shape": "mmar",
        "distractor_db": list(DISTRACTOR_DB), "prefix": PREFIX, "regime": "train_val (only the composition is new)",
        "counts": {m: sum(r["modality"] == m for r in records) for m in sorted({r["modality"] for r in records})},
        "chance": chance_accuracy([{**r, "task": r["target_task"]} for r in records]),
    }  # fmt: skip
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def mix_dir(cache_root: str | Path, seed: int = 0, n: int = DEFAULT_MIX_SIZE) -> Path:
    """Where the mixed test of ``seed`` and ``n`` is cached: keyed by the code that makes it."""
    key = sources_digest(MIX_MODULES, extra=str(n))
    return Path(cache_root) / f"toy-mix-s{seed}-{key[:10]}"


def ensure_mix(cache_root: str | Path, seed: int = 0, n: int = DEFAULT_MIX_SIZE) -> Path:
    """The cached mixed test's directory, generated first if missing (safe under concurrent callers)."""
    return build_once(mix_dir(cache_root, seed, n), lambda d: generate_mix(d, seed, n), done=MANIFEST)


def read_mix(out_dir: str | Path) -> Sequence[dict[str, Any]]:
    """The records of a generated mixed test."""
    return json.loads((Path(out_dir) / MIX_FILE).read_text(encoding="utf-8"))
