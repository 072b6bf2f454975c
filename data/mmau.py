"""MMAU test-mini: a validating loader that recognises the benchmark version, and scoring of MMAU-format predictions.

Three versions of ``mmau-test-mini.json`` circulate (github.com/Sakshi113/MMAU), recognised here by sha256:

- ``a5cd89a`` (2025-01-28): the original set, the one the R1-AQA paper (2025-03-14) evaluated on.
- ``1f675a9`` (2025-03-25): the same 1000 items with one answer corrected (id ``1a5dd76a...``, "A bird chirping"
  became "A cat meowing"): scores differ from a5cd89a by at most 0.1 point overall (0.3 on sound).
- ``f0a4a97`` (2025-08-09): the revised benchmark "v05.15.25": 106 items replaced and 258 of the other 894 changed
  (questions, answers, choices), now with 2, 4, 5 or 8 choices. Scores move by up to 10 points, so numbers on it
  must never share a table with the two above without a label.

All three have 13 records whose ``category`` is a one-element list (normalised to its string here) and leading or
trailing spaces inside some choice strings (kept: the answer is matched against the choices verbatim).

Usage::

    from data.mmau import load_mmau
    bench = load_mmau("../shared/data/mmau/mmau-test-mini.a5cd89a.json", audio_dir="/data/mmau")
    print(bench.version, len(bench.items))

Audio is validated when the file is loaded: with ``check_audio`` (the default) every clip must exist (or, with
``allow_missing_audio``, is dropped and listed) and every existing clip is probed (:func:`data.audio.probe_audio`:
header, frame count, and finite samples for float or compressed files); one bad clip makes the load fail with a
list of the bad items, so an evaluation never starts on a benchmark it cannot finish.

Scoring an MMAU-format predictions file from the shell: ``python -m data.score PRED.json``.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.audio import probe_audio_files
from data.io import read_json, sha256_file
from data.schema import DataError, Item
from data.scoring import compute_metrics, mmau_correct

# sha256 of the file bytes -> version label (the MMAU commit that last changed the file).
MMAU_VERSIONS: dict[str, str] = {
    "ed2fd6b6c24ebec1a5a496de5d767e7ebfe79556044d8f0d8bd00ad0cf02d623": "a5cd89a",
    "e8cc09223b497191781756212cb616315690aaa6ea7ac359db1b65d97d1e2433": "1f675a9",
    "9f18fda99f8dbc2bc5ecd6323fb5063309f54969810b5c6f1caeb3b8d904cf1c": "f0a4a97",
}

# The fields that decide every number a scorer reports. A predictions file is usually the question file plus a
# prediction key (and sometimes a re-serialised or normalised ``category``), so versions are recognised from these
# fields alone: its bytes never match the sha256 above.
CONTENT_FIELDS: tuple[str, ...] = ("id", "question", "choices", "answer", "task", "difficulty", "sub-category")

# content_fingerprint(records) of each known version -> version label (checked against the files by the tests).
MMAU_CONTENT_FINGERPRINTS: dict[str, str] = {
    "48cc697b28c9c8db1abdead6ae4a9488894eee600fd141529d9c0ed5d5405f23": "a5cd89a",
    "436cd758fda9333821a70dd555736b000e1a7c8022696f56e17255f80f175f36": "1f675a9",
    "939d5afc84b4cdb063200d5d5bf5ed4fbfe00c646d404dc00b5c5a83a73148dc": "f0a4a97",
}

REQUIRED_FIELDS: tuple[str, ...] = ("id", "audio_id", "question", "choices", "answer")
UNKNOWN = "unknown"
# Bad clips named one by one in a load error; the rest are counted.
MAX_LISTED_BAD_AUDIO = 10


@dataclass
class Benchmark:
    """A loaded MMAU question file: the usable items plus where they came from and what was left out."""

    items: list[Item]
    version: str
    sha256: str
    path: str
    missing_audio_ids: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """What every metrics file records about the benchmark it scored."""
        return {"path": self.path, "version": self.version, "sha256": self.sha256, "n_items": len(self.items),
                "missing_audio_ids": list(self.missing_audio_ids)}  # fmt: skip


def content_fingerprint(records: Sequence[Mapping[str, Any]]) -> str:
    """sha256 over :data:`CONTENT_FIELDS` of every record, independent of record order, key order and extra keys."""
    rows = sorted(
        (json.dumps([r.get(k) for k in CONTENT_FIELDS], ensure_ascii=False, sort_keys=True) for r in records),
    )
    return hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()


def detect_version(records: Sequence[Mapping[str, Any]]) -> str:
    """The version label whose question content the records match exactly (all 1000 items), else ``"unknown"``."""
    return MMAU_CONTENT_FINGERPRINTS.get(content_fingerprint(records), UNKNOWN)


def _ids_text(ids: Sequence[str]) -> str:
    return ", ".join(ids)


def _record_label(i: int, rec: Any) -> str:
    # Name a record by its id where it has one, else by its position (0-based) in the file.
    if isinstance(rec, Mapping) and isinstance(rec.get("id"), str) and rec["id"]:
        return rec["id"]
    return f"#{i} (no id)"


def _check_records(data: Any, where: str) -> list[Mapping[str, Any]]:
    """The checks every MMAU-format file gets: a JSON list of objects with unique, non-empty string ids."""
    if not isinstance(data, list):
        raise DataError(
            f"{where}: expected a JSON list of MMAU records, got a JSON {type(data).__name__}; "
            "pass the question/prediction file itself (a list of objects with id, question, choices, answer)"
        )
    bad = [f"#{i}" for i, rec in enumerate(data) if not isinstance(rec, Mapping)]
    if bad:
        raise DataError(
            f"{where}: {len(bad)} entries are not JSON objects (0-based positions {_ids_text(bad)}); "
            "every entry must be one MMAU record"
        )
    no_id = [f"#{i}" for i, rec in enumerate(data) if not (isinstance(rec.get("id"), str) and rec["id"])]
    if no_id:
        raise DataError(
            f"{where}: {len(no_id)} records have no string 'id' (0-based positions {_ids_text(no_id)}); "
            "restore the ids from the original MMAU file"
        )
    dup = sorted(i for i, c in Counter(rec["id"] for rec in data).items() if c > 1)
    if dup:
        raise DataError(
            f"{where}: {len(dup)} ids appear more than once; each item must appear once (a resumed or "
            f"concatenated run may have written it twice: keep one record per id); duplicate ids: {_ids_text(dup)}"
        )
    return data


def _check_fields(records: Sequence[Mapping[str, Any]], fields: Sequence[str], where: str, fix: str) -> None:
    bad = []
    for i, rec in enumerate(records):
        missing = [f for f in fields if f not in rec]
        if missing:
            bad.append(f"{_record_label(i, rec)} (missing {', '.join(missing)})")
    if bad:
        raise DataError(f"{where}: {len(bad)} records lack required fields ({fix}): {'; '.join(bad)}")


def _check_choices(records: Sequence[Mapping[str, Any]], where: str) -> None:
    bad_types = [
        rec["id"]
        for rec in records
        if not (
            isinstance(rec["choices"], list)
            and rec["choices"]
            and all(isinstance(c, str) for c in rec["choices"])
            and isinstance(rec["answer"], str)
        )
    ]
    if bad_types:
        raise DataError(
            f"{where}: {len(bad_types)} records need 'choices' as a non-empty list of strings and 'answer' as a "
            f"string (the choice text, not an index); ids: {_ids_text(bad_types)}"
        )
    not_in = [rec["id"] for rec in records if rec["answer"] not in rec["choices"]]
    if not_in:
        raise DataError(
            f"{where}: {len(not_in)} records have an answer that is not among their choices; the answer must be "
            f"the exact text of one choice (check for edited or re-typed answers); ids: {_ids_text(not_in)}"
        )


def _category(value: Any) -> str | None:
    # 13 records in every version store the category as a one-element list; a longer list (not seen) is joined.
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) if value else None
    return None if value is None else str(value)


def _audio_path(audio_dir: Path, audio_id: str) -> Path:
    # audio_id is relative ("./test-mini-audios/<id>.wav"); drop the "./" so the path reads cleanly in messages.
    rel = audio_id
    while rel.startswith("./"):
        rel = rel[2:]
    return audio_dir / rel


def _check_clips(items: Sequence[Item], where: str) -> None:
    """Probe every clip (:func:`data.audio.probe_audio_files`); one DataError lists the items whose clip is bad."""
    _, bad = probe_audio_files([it.audio_path for it in items])
    if not bad:
        return
    bad_items = [it for it in items if it.audio_path in bad]
    shown = [f"id {it.id}: {bad[it.audio_path]}" for it in bad_items[:MAX_LISTED_BAD_AUDIO]]
    more = len(bad_items) - len(shown)
    raise DataError(
        f"{where}: {len(bad_items)} of {len(items)} items have an unusable audio clip ({len(bad)} files); "
        "re-extract or convert these clips (each line names the fix) before evaluating (an evaluation never drops "
        "items silently):\n  " + "\n  ".join(shown) + (f"\n  ... and {more} more" if more else "")
    )


def load_mmau(
    json_path: str | Path,
    audio_dir: str | Path | None = None,
    *,
    allow_missing_audio: bool = False,
    check_audio: bool = True,
    version_label: str | None = None,
) -> Benchmark:
    """Load and validate an MMAU test-mini question file.

    ``audio_dir`` is the folder that contains ``test-mini-audios/`` (default: the JSON file's folder). With
    ``check_audio`` every clip must exist, unless ``allow_missing_audio``, which drops the items whose clip is
    missing and lists their ids in ``missing_audio_ids`` (report them with the metrics: the scores then cover fewer
    than 1000 items). ``check_audio`` also probes every existing clip (:func:`data.audio.probe_audio`: the header,
    and every sample of float or compressed files for NaN/Inf and decode errors), so that a corrupt clip fails the
    load, before anything is generated, not when its batch comes; the error lists the bad items' ids, paths and
    reasons. ``version_label`` names a benchmark that is not MMAU (the toy world's test split): it is used
    without the unknown-version warning, but never overrides a recognised MMAU version. Raises
    :class:`DataError` naming the file, the offending ids and the fix.
    """
    path = Path(json_path)
    where = str(path)
    records = _check_records(read_json(path), where)
    _check_fields(
        records,
        REQUIRED_FIELDS,
        where,
        "every MMAU record needs id, audio_id, question, choices and answer (use the original MMAU file)",
    )
    _check_choices(records, where)

    sha = sha256_file(path)
    version = MMAU_VERSIONS.get(sha)
    if version is None:
        by_content = detect_version(records)
        if by_content != UNKNOWN:
            version = by_content
            warnings.warn(
                f"{where}: sha256 {sha[:12]}... is not a known MMAU file, but its questions match MMAU {version} "
                "(re-serialised copy?); using that version label",
                stacklevel=2,
            )
        elif version_label is not None:
            version = f"{version_label}-{sha[:8]}"
        else:
            version = UNKNOWN
            warnings.warn(
                f"{where}: sha256 {sha[:12]}... matches no known MMAU test-mini version "
                f"({', '.join(sorted(MMAU_VERSIONS.values()))}); loading it with version 'unknown'. "
                "Scores on it are not comparable with published numbers",
                stacklevel=2,
            )

    adir = Path(audio_dir) if audio_dir is not None else path.parent
    items: list[Item] = []
    missing: list[str] = []
    for rec in records:
        audio_path = _audio_path(adir, str(rec["audio_id"]))
        if check_audio and not audio_path.is_file():
            missing.append(rec["id"])
            continue
        items.append(
            Item(
                id=rec["id"],
                audio_path=str(audio_path),
                question=rec["question"],
                choices=tuple(rec["choices"]),
                answer=rec["answer"],
                task=rec.get("task"),
                category=_category(rec.get("category")),
                sub_category=rec.get("sub-category"),
                difficulty=rec.get("difficulty"),
                source=rec.get("dataset"),
                record=rec,
            )
        )
    if missing and (not allow_missing_audio or not items):
        what = "all" if not items else f"{len(missing)} of the"
        raise DataError(
            f"{where}: {what} {len(records)} audio clips missing under {adir}; pass the folder that contains "
            "test-mini-audios/ as the audio dir"
            + ("" if not items else ", or use --allow-missing-audio to evaluate the rest and record the missing ids")
            + f"; missing ids: {_ids_text(missing)}"
        )
    if check_audio:
        _check_clips(items, where)
    return Benchmark(items=items, version=version, sha256=sha, path=where, missing_audio_ids=missing)


def score_records(
    records: Any, key: str = "model_output", *, source: str = "predictions"
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score MMAU-format records whose predictions are stored under ``key``, the way the official script does.

    The MMAU rule is applied to the stored string as is (no ``<answer>`` extraction: the evaluator stores the
    extracted answer). Unlike the official script, which silently skips records without the key, a missing or
    non-string prediction is a :class:`DataError` listing the ids. ``source`` names the file in error messages.
    Returns ``(compute_metrics(...), per_item_rows)`` with rows ``{"id", "task", "correct", "prediction"}``.
    """
    recs = _check_records(records, source)
    hint = ""
    if any(key not in r for r in recs):
        others = sorted({k for r in recs for k in ("model_output", "model_prediction") if k in r and k != key})
        hint = f" (the file has {', '.join(others)}: pass --key {others[0]})" if others else ""
    _check_fields(recs, ("choices", "answer"), source, "use records from the original MMAU question file")
    missing = [r["id"] for r in recs if key not in r]
    if missing:
        raise DataError(
            f"{source}: {len(missing)} of {len(recs)} records have no prediction under key {key!r}{hint}; rerun the "
            "evaluation for them (the official script would silently skip them and inflate the score); "
            f"ids: {_ids_text(missing)}"
        )
    not_str = [r["id"] for r in recs if not isinstance(r[key], str)]
    if not_str:
        raise DataError(
            f"{source}: {len(not_str)} records have a non-string prediction under {key!r}; store the generated "
            f"text (an empty string for a failed generation); ids: {_ids_text(not_str)}"
        )
    _check_choices(recs, source)

    internal: list[dict[str, Any]] = []
    for r in recs:
        internal.append(
            {
                "id": r["id"],
                "task": r.get("task"),
                "difficulty": r.get("difficulty"),
                "sub_category": r.get("sub-category"),
                "correct": mmau_correct(r[key], r["answer"], r["choices"]),
                "prediction": r[key],
            }
        )
    metrics = compute_metrics(internal)
    rows = [{k: row[k] for k in ("id", "task", "correct", "prediction")} for row in internal]
    return metrics, rows
