"""The registered benchmarks: what each one's files are, how it is scored, broken down and labelled.

Two benchmarks are registered, both multiple-choice audio QA scored with MMAU's token-set string match
(:func:`data.scoring.mmau_correct`):

- ``mmau-test-mini`` (github.com/Sakshi113/MMAU): 1000 items; three file versions circulate (``a5cd89a``, the
  paper's; ``1f675a9``, one answer corrected; ``f0a4a97``, the revised "v05.15.25" set). Columns: task (sound,
  music, speech); breakdowns: difficulty, sub-category.
- ``mmar`` (github.com/ddlBoJack/MMAR): 1000 items from real videos; two file versions (``6249700``, the first
  release, a JSON list, the one the 2025 leaderboard scored; ``a355584``, JSON lines, 6 items changed). Columns:
  modality (sound, music, speech and the four mixes); breakdowns: category layer, sub-category. Its first release
  has 6 items whose answer is none of their choices (two answers joined by a newline, or a choice with a trailing
  space); the official script scores them by the same rule and the leaderboard counts them, so they are scored,
  not refused (:attr:`BenchmarkSpec.answer_outside_choices`).

Each version is recognised by the sha256 of its file and, for copies that were re-serialised or carry
predictions, by a fingerprint of the fields that decide every score (:func:`content_fingerprint`).

Print the registry: ``python -m data.benchmark_registry``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Breakdown:
    """One way a benchmark's accuracy is broken down: metrics key ``by_<name>``, read from an item attribute."""

    name: str  # the metrics key suffix and the Item attribute that holds the value
    record_field: str  # the field of the benchmark's own record
    order: tuple[str, ...] = ()  # known values first, in this order; others after, alphabetically


@dataclass(frozen=True)
class BenchmarkSpec:
    """What the suite knows about one benchmark: its files, its official rule and how its scores are reported."""

    name: str
    title: str
    homepage: str
    rule: str  # the official matching rule (both registered benchmarks: MMAU's token-set match)
    columns: Breakdown  # the table's columns: accuracy per value plus the micro average ("avg")
    breakdowns: tuple[Breakdown, ...]  # further breakdowns written to metrics.json as by_<name>
    audio_field: str  # the record field with the clip's relative path
    content_fields: tuple[str, ...]  # the fields that decide every score (what a content fingerprint hashes)
    # Keys the official scoring scripts read a prediction from; the evaluator writes all of them, the scorer's
    # default is the first.
    prediction_keys: tuple[str, ...]
    file_versions: Mapping[str, str]  # sha256 of the file bytes -> version label
    content_versions: Mapping[str, str]  # content_fingerprint(records) -> version label
    version_notes: Mapping[str, str]
    # Expected accuracy (%) of answering with a listed choice drawn uniformly at random, scored by the official
    # rule (:func:`data.scoring.chance_percent`), per version; the tests recompute it from the files.
    chance: Mapping[str, float]
    # "error": an answer that is not one of its choices is refused (MMAU: none of its versions has one);
    # "score": such items are scored by the official rule, listed and warned about (MMAR's first release).
    answer_outside_choices: Literal["error", "score"] = "error"
    # A run's evaluations of it: checkpoint-<step>/eval/<eval_set>/ and W&B keys eval/<eval_set>/<column>. MMAU's is
    # "test" (the name every run directory and report has used for Table 2's benchmark); others use their name.
    eval_set: str = ""

    @property
    def set_name(self) -> str:
        return self.eval_set or self.name

    @property
    def required_fields(self) -> tuple[str, ...]:
        return ("id", self.audio_field, "question", "choices", "answer")

    def version_of_file(self, sha256: str) -> str | None:
        return self.file_versions.get(sha256)

    def version_of_records(self, records: Sequence[Mapping[str, Any]]) -> str:
        """The version whose scored content the records match exactly (every item), else ``"unknown"``."""
        return self.content_versions.get(content_fingerprint(records, self.content_fields), UNKNOWN)

    def shape_score(self, records: Sequence[Mapping[str, Any]]) -> int:
        """How many records carry this benchmark's audio field or column field (its shape, not its version)."""
        fields = (self.audio_field, self.columns.record_field)
        return sum(isinstance(r, Mapping) and any(f in r for f in fields) for r in records)


def content_fingerprint(records: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> str:
    """sha256 over ``fields`` of every record, independent of record order, key order and extra keys."""
    rows = sorted(json.dumps([r.get(k) for k in fields], ensure_ascii=False, sort_keys=True) for r in records)
    return hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()


MMAU_TASKS: tuple[str, ...] = ("sound", "music", "speech")
MMAU_DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")
MMAR_MODALITIES: tuple[str, ...] = (
    "sound", "music", "speech", "mix-sound-music", "mix-sound-speech", "mix-music-speech", "mix-sound-music-speech",
)  # fmt: skip
MMAR_LAYERS: tuple[str, ...] = ("Signal Layer", "Perception Layer", "Semantic Layer", "Cultural Layer")

MMAU = BenchmarkSpec(
    name="mmau-test-mini",
    title="MMAU test-mini",
    homepage="https://github.com/Sakshi113/MMAU",
    rule="token_set",
    columns=Breakdown("task", "task", MMAU_TASKS),
    breakdowns=(Breakdown("difficulty", "difficulty", MMAU_DIFFICULTIES), Breakdown("sub_category", "sub-category")),
    audio_field="audio_id",
    content_fields=("id", "question", "choices", "answer", "task", "difficulty", "sub-category"),
    # The current script reads model_output; older ones and the original R1-AQA code read model_prediction.
    prediction_keys=("model_output", "model_prediction"),
    file_versions={
        "ed2fd6b6c24ebec1a5a496de5d767e7ebfe79556044d8f0d8bd00ad0cf02d623": "a5cd89a",
        "e8cc09223b497191781756212cb616315690aaa6ea7ac359db1b65d97d1e2433": "1f675a9",
        "9f18fda99f8dbc2bc5ecd6323fb5063309f54969810b5c6f1caeb3b8d904cf1c": "f0a4a97",
    },
    content_versions={
        "48cc697b28c9c8db1abdead6ae4a9488894eee600fd141529d9c0ed5d5405f23": "a5cd89a",
        "436cd758fda9333821a70dd555736b000e1a7c8022696f56e17255f80f175f36": "1f675a9",
        "939d5afc84b4cdb063200d5d5bf5ed4fbfe00c646d404dc00b5c5a83a73148dc": "f0a4a97",
    },
    version_notes={
        "a5cd89a": "2025-01-28, the original set (the R1-AQA paper's)",
        "1f675a9": "2025-03-25, a5cd89a with one answer corrected",
        "f0a4a97": "2025-08-09, the revised benchmark v05.15.25 (not comparable with the two above)",
    },
    chance={"a5cd89a": 25.43, "1f675a9": 25.43, "f0a4a97": 26.15},
    eval_set="test",
)

MMAR = BenchmarkSpec(
    name="mmar",
    title="MMAR",
    homepage="https://github.com/ddlBoJack/MMAR",
    rule="token_set",
    columns=Breakdown("task", "modality", MMAR_MODALITIES),
    breakdowns=(Breakdown("category", "category", MMAR_LAYERS), Breakdown("sub_category", "sub-category")),
    audio_field="audio_path",
    content_fields=("id", "question", "choices", "answer", "modality", "category", "sub-category"),
    prediction_keys=("answer_prediction",),
    file_versions={
        "7240ecca11b252c782ef44d4d19f711dd9b8424656a2bc3f92c548e318d25cee": "6249700",
        "1c9a343e7bebf1037482b935c54eacd43cc63df7b2c668724b5560caf1f84fad": "a355584",
    },
    content_versions={
        "51ebb480d54ad1517cbafa420d5b56c76d0c2b64b59714f95176c009c5d1634d": "6249700",
        "18a76504ccd7cc93bc52f536d1ab50c7e4516ca600784384cdc7b5dd5ec58c63": "a355584",
    },
    version_notes={
        "6249700": "2025-05-11, the first release (JSON list), the version of the 2025 leaderboard numbers",
        "a355584": "2026-02-16, JSON lines with thinking/cue/rubric fields; 6 items changed",
    },
    # The leaderboard's "random guess" (29.3) is the mean of 1 / number of choices; by the rule it is a little
    # higher, since some wrong choices contain every gold token and nothing else (the rule's known blind spot).
    chance={"6249700": 29.89, "a355584": 30.03},
    answer_outside_choices="score",
)

BENCHMARKS: dict[str, BenchmarkSpec] = {spec.name: spec for spec in (MMAU, MMAR)}


def benchmark_of_set(set_name: str) -> BenchmarkSpec:
    """The registered benchmark whose run evaluations are named ``set_name`` (``test`` -> MMAU test-mini)."""
    for spec in BENCHMARKS.values():
        if spec.set_name == set_name:
            return spec
    raise ValueError(f"no registered benchmark is evaluated as {set_name!r}; "
                     f"known: {', '.join(s.set_name for s in BENCHMARKS.values())}")  # fmt: skip


def get_benchmark(name: str) -> BenchmarkSpec:
    """The registered benchmark ``name``; an unknown name is a ValueError listing the registered ones."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; registered: {', '.join(BENCHMARKS)}") from None


def recognise(records: Sequence[Mapping[str, Any]], sha256: str | None = None) -> tuple[BenchmarkSpec | None, str]:
    """The registered benchmark and version the records (or the file with ``sha256``) are.

    A known file or known content gives its benchmark and version; otherwise the benchmark whose fields most
    records carry, with version ``"unknown"`` (ties: the first registered); ``(None, "unknown")`` if none fits.
    """
    for spec in BENCHMARKS.values():
        version = spec.version_of_file(sha256) if sha256 else None
        if version is None and spec.shape_score(records):
            version = spec.version_of_records(records)
            version = None if version == UNKNOWN else version
        if version is not None:
            return spec, version
    # No known version: the benchmark whose fields most records carry (the loader then names what each lacks).
    scores = {spec.name: spec.shape_score(records) for spec in BENCHMARKS.values()}
    best = max(scores, key=lambda name: scores[name])
    return (BENCHMARKS[best], UNKNOWN) if scores[best] else (None, UNKNOWN)


def main() -> int:
    for spec in BENCHMARKS.values():
        print(f"{spec.name}: {spec.title} ({spec.homepage}); rule {spec.rule}; prediction key "
              f"{' or '.join(spec.prediction_keys)}; columns by {spec.columns.record_field}; breakdowns "
              f"{', '.join(b.record_field for b in spec.breakdowns)}")  # fmt: skip
        for version, note in spec.version_notes.items():
            print(f"  {version}: {note}; chance {spec.chance[version]:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
