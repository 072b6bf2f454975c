"""Loading a benchmark question file (MMAU test-mini, MMAR), validated, with its version recognised; scoring records.

The benchmarks, their versions and their rules are registered in :mod:`data.benchmark_registry`; a file is matched
to a registered benchmark and version by its sha256, else by its scored content (a re-serialised copy, or one that
carries predictions), else by its shape (with version ``"unknown"`` and a warning). A JSON list and JSON lines
(MMAR's later release) both load.

Usage::

    from data.benchmark import load_benchmark
    bench = load_benchmark("../shared/data/mmau/mmau-test-mini.a5cd89a.json", audio_dir="/data/mmau")
    print(bench.name, bench.version, len(bench.items))

MMAU stores the clip's path in ``audio_id`` (``./test-mini-audios/<id>.wav``), MMAR in ``audio_path``
(``./audio/<id>.wav``); both are relative to ``audio_dir`` (default: the question file's folder). Every version of
MMAU has 13 records whose ``category`` is a one-element list (normalised to its string here) and leading or
trailing spaces inside some choice strings (kept: the answer is matched against the choices verbatim). An MMAR item
is an :class:`~data.schema.Item` whose ``task`` is its modality and ``category`` its layer.

An answer that is not one of its item's choices is refused for MMAU (none of its files has one). MMAR's first
release has 6 (two answers joined by a newline, a choice with a trailing space): the official script scores them
by its rule and the leaderboard counts them, so they are loaded, scored the same way, listed in
``describe()["answer_outside_choices_ids"]`` (and so in every ``metrics.json``) and warned about once.

Audio is validated when the file is loaded: with ``check_audio`` (the default) every clip must exist (or, with
``allow_missing_audio``, is dropped and listed) and every existing clip is probed (:func:`data.audio.probe_audio`:
header, frame count, and finite samples for float or compressed files); one bad clip makes the load fail with a
list of the bad items, so an evaluation never starts on a benchmark it cannot finish.

Scoring a predictions file from the shell: ``python -m data.score PRED.json``.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.audio import probe_audio_files
from data.benchmark_registry import BENCHMARKS, MMAU, UNKNOWN, BenchmarkSpec, get_benchmark, recognise
from data.io import read_json, read_jsonl, sha256_file
from data.schema import DataError, Item
from data.scoring import compute_metrics, mmau_correct

# Bad clips named one by one in a load error; the rest are counted.
MAX_LISTED_BAD_AUDIO = 10


@dataclass
class Benchmark:
    """A loaded benchmark question file: the usable items plus where they came from and what was left out."""

    items: list[Item]
    version: str
    sha256: str
    path: str
    missing_audio_ids: list[str] = field(default_factory=list)
    name: str = MMAU.name  # the registered benchmark (data.benchmark_registry)
    answer_outside_choices_ids: list[str] = field(default_factory=list)

    @property
    def spec(self) -> BenchmarkSpec:
        return get_benchmark(self.name)

    def describe(self) -> dict[str, Any]:
        """What every metrics file records about the benchmark it scored."""
        out = {"path": self.path, "version": self.version, "sha256": self.sha256, "n_items": len(self.items),
               "missing_audio_ids": list(self.missing_audio_ids), "name": self.name}  # fmt: skip
        if self.answer_outside_choices_ids:
            out["answer_outside_choices_ids"] = list(self.answer_outside_choices_ids)
        return out


def read_records(path: str | Path) -> Any:
    """A question or predictions file's records: a JSON list, or JSON lines for a ``.jsonl`` file."""
    path = Path(path)
    if path.suffix == ".jsonl":
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        return read_jsonl(path)
    return read_json(path)


def detect_version(records: Sequence[Mapping[str, Any]], benchmark: BenchmarkSpec | None = None) -> str:
    """The version whose scored content the records match exactly (every item), else ``"unknown"``."""
    if benchmark is not None:
        return benchmark.version_of_records(records)
    return recognise(records)[1]


def _ids_text(ids: Sequence[str]) -> str:
    return ", ".join(ids)


def _record_label(i: int, rec: Any) -> str:
    # Name a record by its id where it has one, else by its position (0-based) in the file.
    if isinstance(rec, Mapping) and isinstance(rec.get("id"), str) and rec["id"]:
        return rec["id"]
    return f"#{i} (no id)"


def _check_records(data: Any, where: str) -> list[Mapping[str, Any]]:
    """The checks every benchmark file gets: a list of objects with unique, non-empty string ids."""
    if not isinstance(data, list):
        raise DataError(
            f"{where}: expected a JSON list (or JSON lines) of benchmark records, got a JSON {type(data).__name__}; "
            "pass the question/prediction file itself (a list of objects with id, question, choices, answer)"
        )
    bad = [f"#{i}" for i, rec in enumerate(data) if not isinstance(rec, Mapping)]
    if bad:
        raise DataError(
            f"{where}: {len(bad)} entries are not JSON objects (0-based positions {_ids_text(bad)}); "
            "every entry must be one benchmark record"
        )
    no_id = [f"#{i}" for i, rec in enumerate(data) if not (isinstance(rec.get("id"), str) and rec["id"])]
    if no_id:
        raise DataError(
            f"{where}: {len(no_id)} records have no string 'id' (0-based positions {_ids_text(no_id)}); "
            "restore the ids from the original benchmark file"
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


def _check_choices(records: Sequence[Mapping[str, Any]], where: str, spec: BenchmarkSpec) -> list[str]:
    """Type checks on choices and answers; returns the ids whose answer is none of their choices (if allowed)."""
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
    if not_in and spec.answer_outside_choices == "error":
        raise DataError(
            f"{where}: {len(not_in)} records have an answer that is not among their choices; the answer must be "
            f"the exact text of one choice (check for edited or re-typed answers); ids: {_ids_text(not_in)}"
        )
    return not_in


def _warn_outside_choices(where: str, spec: BenchmarkSpec, ids: Sequence[str]) -> None:
    if ids:
        warnings.warn(
            f"{where}: {len(ids)} {spec.title} items have an answer that is none of their choices (multi-answer "
            "items, or a choice with a trailing space); they are scored by the official rule, as its leaderboard "
            f"does, and listed in metrics.json (answer_outside_choices_ids): {_ids_text(ids)}",
            stacklevel=3,
        )


def _category(value: Any) -> str | None:
    # 13 records in every MMAU version store the category as a one-element list; a longer list (not seen) is joined.
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) if value else None
    return None if value is None else str(value)


def _audio_path(audio_dir: Path, relative: str) -> Path:
    # The path is relative ("./test-mini-audios/<id>.wav", "./audio/<id>.wav"); drop the "./" so it reads cleanly.
    rel = relative
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


def _spec_for(
    records: Sequence[Mapping[str, Any]], sha: str | None, where: str, benchmark: str | None
) -> tuple[BenchmarkSpec, str]:
    """The registered benchmark and version of a file: the one named, else the one recognised from it."""
    if benchmark is not None:
        spec = get_benchmark(benchmark)
        version = (spec.version_of_file(sha) if sha else None) or spec.version_of_records(records)
        return spec, version
    spec, version = recognise(records, sha)
    if spec is None:
        shapes = "; ".join(f"{s.name}: {', '.join(s.required_fields)} and {s.columns.record_field}"
                           for s in BENCHMARKS.values())  # fmt: skip
        raise DataError(
            f"{where}: the records match no registered benchmark's shape ({shapes}); pass the original question "
            f"file, or name its registered benchmark ({', '.join(BENCHMARKS)}) if it is a copy with other fields"
        )
    return spec, version


def item_from_record(rec: Mapping[str, Any], spec: BenchmarkSpec, audio_path: str) -> Item:
    """An :class:`Item` from a benchmark record: the spec's column field becomes ``task`` (MMAR: the modality)."""
    return Item(
        id=rec["id"],
        audio_path=audio_path,
        question=rec["question"],
        choices=tuple(rec["choices"]),
        answer=rec["answer"],
        task=rec.get(spec.columns.record_field),
        category=_category(rec.get("category")),
        sub_category=rec.get("sub-category"),
        difficulty=rec.get("difficulty"),
        source=rec.get("dataset", rec.get("source")),
        record=rec,
    )


def load_benchmark(
    json_path: str | Path,
    audio_dir: str | Path | None = None,
    *,
    allow_missing_audio: bool = False,
    check_audio: bool = True,
    version_label: str | None = None,
    benchmark: str | None = None,
) -> Benchmark:
    """Load and validate a benchmark question file (MMAU test-mini or MMAR; JSON list or JSON lines).

    ``audio_dir`` is the folder the records' relative clip paths start from (MMAU: the one that contains
    ``test-mini-audios/``; MMAR: the one that contains ``audio/``; default: the file's folder). With
    ``check_audio`` every clip must exist, unless ``allow_missing_audio``, which drops the items whose clip is
    missing and lists their ids in ``missing_audio_ids`` (report them with the metrics: the scores then cover fewer
    items). ``check_audio`` also probes every existing clip (:func:`data.audio.probe_audio`: the header, and every
    sample of float or compressed files for NaN/Inf and decode errors), so that a corrupt clip fails the load,
    before anything is generated, not when its batch comes; the error lists the bad items' ids, paths and reasons.
    ``benchmark`` names the registered benchmark (default: recognised from the file). ``version_label`` names a
    benchmark that is no registered version (the toy world's test sets): it is used without the unknown-version
    warning, but never overrides a recognised version. Raises :class:`DataError` naming the file, the offending
    ids and the fix.
    """
    path = Path(json_path)
    where = str(path)
    records = _check_records(read_records(path), where)
    sha = sha256_file(path)
    spec, version = _spec_for(records, sha, where, benchmark)
    _check_fields(
        records,
        spec.required_fields,
        where,
        f"every {spec.title} record needs {', '.join(spec.required_fields)} (use the original {spec.title} file)",
    )
    outside = _check_choices(records, where, spec)

    if spec.version_of_file(sha) is None:
        if version != UNKNOWN:
            warnings.warn(
                f"{where}: sha256 {sha[:12]}... is not a known {spec.title} file, but its questions match "
                f"{spec.title} {version} (re-serialised copy?); using that version label",
                stacklevel=2,
            )
        elif version_label is not None:
            version = f"{version_label}-{sha[:8]}"
        else:
            warnings.warn(
                f"{where}: sha256 {sha[:12]}... matches no known {spec.title} version "
                f"({', '.join(sorted(spec.file_versions.values()))}); loading it with version 'unknown'. "
                "Scores on it are not comparable with published numbers",
                stacklevel=2,
            )
    _warn_outside_choices(where, spec, outside)

    adir = Path(audio_dir) if audio_dir is not None else path.parent
    items: list[Item] = []
    missing: list[str] = []
    for rec in records:
        audio_path = _audio_path(adir, str(rec[spec.audio_field]))
        if check_audio and not audio_path.is_file():
            missing.append(rec["id"])
            continue
        items.append(item_from_record(rec, spec, str(audio_path)))
    if missing and (not allow_missing_audio or not items):
        what = "all" if not items else f"{len(missing)} of the"
        first = str(records[0][spec.audio_field]).lstrip("./").split("/")[0]
        raise DataError(
            f"{where}: {what} {len(records)} audio clips missing under {adir}; pass the folder that contains "
            f"{first}/ as the audio dir"
            + ("" if not items else ", or use --allow-missing-audio to evaluate the rest and record the missing ids")
            + f"; missing ids: {_ids_text(missing)}"
        )
    if check_audio:
        _check_clips(items, where)
    kept = {it.id for it in items}
    return Benchmark(items=items, version=version, sha256=sha, path=where, missing_audio_ids=missing, name=spec.name,
                     answer_outside_choices_ids=[i for i in outside if i in kept])  # fmt: skip


def score_records(
    records: Any, key: str | None = None, *, source: str = "predictions", benchmark: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score benchmark records whose predictions are stored under ``key``, the way the official script does.

    The benchmark is the one named, else the one recognised from the records; ``key`` defaults to the first key its
    official script reads (MMAU ``model_output``, MMAR ``answer_prediction``). The rule is applied to the stored
    string as is (no ``<answer>`` extraction: the evaluator stores the extracted answer). Unlike the official
    scripts, which silently skip records without the key, a missing or non-string prediction is a
    :class:`DataError` listing the ids. ``source`` names the file in error messages. Returns
    ``(compute_metrics(...) plus benchmark, version, key and answer_outside_choices_ids, per_item_rows)`` with rows
    ``{"id", "task", "correct", "prediction"}``.
    """
    recs = _check_records(records, source)
    spec, version = _spec_for(recs, None, source, benchmark)
    key = key or spec.prediction_keys[0]
    hint = ""
    if any(key not in r for r in recs):
        known = {k for s in BENCHMARKS.values() for k in s.prediction_keys}
        others = sorted({k for r in recs for k in known if k in r and k != key})
        hint = f" (the file has {', '.join(others)}: pass --key {others[0]})" if others else ""
    _check_fields(recs, ("choices", "answer"), source, f"use records from the original {spec.title} question file")
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
    outside = _check_choices(recs, source, spec)
    _warn_outside_choices(source, spec, outside)

    internal: list[dict[str, Any]] = []
    for r in recs:
        item = item_from_record(r, spec, "")
        internal.append(
            {
                "id": item.id,
                "task": item.task,
                "difficulty": item.difficulty,
                "category": item.category,
                "sub_category": item.sub_category,
                "correct": mmau_correct(r[key], r["answer"], r["choices"]),
                "prediction": r[key],
            }
        )
    metrics = {"benchmark": spec.name, "version": version, "key": key, "rule": spec.rule,
               **compute_metrics(internal, spec)}  # fmt: skip
    if outside:
        metrics["answer_outside_choices_ids"] = outside
    rows = [{k: row[k] for k in ("id", "task", "correct", "prediction")} for row in internal]
    return metrics, rows
