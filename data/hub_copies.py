"""Benchmarks and AVQA from a ``datasets`` dataset (a Hub id, a local parquet file or a saved dataset directory).

The copies that circulate on the Hub differ in schema, so each known copy has a named column mapping, recognised
from the dataset's columns (:data:`COPIES`):

- ``lmms-lab/mmau`` (MMAU): the MMAU fields, ``audio`` an Audio column at 192 kHz, ``choices`` a JSON string;
  splits ``test_mini`` and ``test``.
- ``gamma-lab-umd/MMAU-test-mini`` (MMAU): the clip's bytes in ``context``, the question in ``instruction``, the
  answer written ``(A) Man``, the other fields (id, task, difficulty, ...) in the JSON string ``other_attributes``.
- MMAR with an audio column (``gijs/mmar-processed``, and copies that write ``subcategory``): the MMAR fields plus
  ``audio``. ``BoJack/MMAR`` itself is the question file plus a tar of wavs: extract it and pass the file and folder.
- ``gijs/avqa-processed`` (AVQA train and val): ``audio``, ``question`` with the choices folded in
  (``"...?\\nChoices:\\nA. 3\\nB. One"``) and ``answer`` as ``"B. One"``.

Nothing is decoded here (no torchcodec): the audio column is cast to ``Audio(decode=False)`` and every clip's bytes
are written unchanged under a cache folder, beside a question file in the data set's own format (MMAU's JSON list,
MMAR's, AVQA's JSON lines). The suite's loaders then read that folder like any other: the benchmark version is
recognised from the content (a copy that matches no registered version says so), and every clip is probed with
soundfile. The question file is written last, atomically, in a folder named by the dataset's fingerprint, so a
rerun finds it and reads nothing again; a run cut short reuses the clips it wrote.

    from data.hub_copies import materialise
    copy = materialise("lmms-lab/mmau", split="test_mini", cache_dir=Path("outputs/cache/hub"))
    bench = load_benchmark(copy.records_path, copy.audio_dir)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from data.io import write_bytes_atomic, write_json_atomic, write_jsonl_atomic
from data.schema import DataError

Kind = Literal["mmau", "mmar", "avqa"]
_LETTER_PREFIX = re.compile(r"^\(?([A-Z])[\)\.]\s*")
_LETTER_PREFIX_ONE_SPACE = re.compile(r"^\(?([A-Z])[\)\.] ?")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


@dataclass(frozen=True)
class CopySchema:
    """One known copy's layout: which columns it has, where the audio is, and how a row becomes a record."""

    name: str
    kind: Kind
    audio_column: str
    required: tuple[str, ...]  # columns that must all be present for the copy to be recognised
    to_record: Callable[[Mapping[str, Any], int], dict[str, Any]]  # row, row index -> record (without audio path)
    note: str


def _json_field(value: Any, where: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: not valid JSON ({e}): {value[:80]!r}") from None
    return value


def _answer_text(answer: str, choices: Sequence[str]) -> str:
    """The answer as its choice's text: as written, else without a letter prefix ("(A) Man", "B. One")."""
    if answer in choices:
        return answer
    # One space after the letter first: some MMAU choices begin with a space of their own, which must survive.
    for prefix in (_LETTER_PREFIX_ONE_SPACE, _LETTER_PREFIX):
        stripped = prefix.sub("", answer, count=1)
        if stripped in choices:
            return stripped
    return answer


def _lmms_mmau(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    choices = _json_field(row["choices"], f"row {index} ({row.get('id')}), column choices")
    fields = ("id", "question", "answer", "dataset", "task", "split", "category", "sub-category", "difficulty")
    return {**{k: row.get(k) for k in fields}, "choices": list(choices)}


def _gamma_mmau(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    meta = _json_field(row["other_attributes"], f"row {index}, column other_attributes")
    choices = list(_json_field(row["choices"], f"row {index}, column choices"))
    rec = {k: meta.get(k) for k in ("id", "dataset", "task", "split", "category", "sub-category", "difficulty")}
    return {**rec, "question": row["instruction"], "choices": choices,
            "answer": _answer_text(str(row["answer"]), choices)}  # fmt: skip


def _mmar(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    fields = ("id", "question", "answer", "modality", "category", "language", "source", "url", "timestamp")
    rec = {k: row.get(k) for k in fields if k in row}
    sub = row["sub-category"] if "sub-category" in row else row.get("subcategory")
    return {**rec, "choices": list(_json_field(row["choices"], f"row {index}, column choices")), "sub-category": sub}


def _avqa(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    text = str(row["question"])
    question, sep, listed = text.partition("\nChoices:\n")
    if not sep:
        raise DataError(f"row {index}: the question has no '\\nChoices:\\n' block, so its choices cannot be read: "
                        f"{text[:80]!r}")  # fmt: skip
    choices = [_LETTER_PREFIX.sub("", line.strip(), count=1) for line in listed.split("\n") if line.strip()]
    answer = _answer_text(str(row["answer"]).strip(), choices)
    if answer not in choices:
        raise DataError(f"row {index}: answer {row['answer']!r} is none of its choices {choices}")
    rec = {"id": row.get("id", index), "question_text": question, "multi_choice": choices,
           "answer": choices.index(answer)}  # fmt: skip
    return {**rec, **{k: row[k] for k in ("video_id", "question_type") if row.get(k) is not None}}


COPIES: tuple[CopySchema, ...] = (
    CopySchema("gamma-lab-umd/MMAU-test-mini", "mmau", "context",
               ("context", "instruction", "answer", "choices", "other_attributes"), _gamma_mmau,
               "audio in context, metadata in other_attributes, answers '(A) ...'"),
    CopySchema("lmms-lab/mmau", "mmau", "audio",
               ("id", "audio", "question", "choices", "answer", "task", "difficulty", "sub-category"), _lmms_mmau,
               "the MMAU fields, choices a JSON string"),
    CopySchema("mmar-with-audio", "mmar", "audio",
               ("id", "audio", "question", "choices", "answer", "modality", "category"), _mmar,
               "the MMAR fields plus audio (gijs/mmar-processed; sub-category or subcategory)"),
    CopySchema("gijs/avqa-processed", "avqa", "audio", ("audio", "question", "answer"), _avqa,
               "choices folded into the question ('\\nChoices:\\nA. ...'), answers 'B. ...'"),
)  # fmt: skip


def recognise_copy(columns: Sequence[str], where: str) -> CopySchema:
    """The first known copy whose columns are all present; a DataError listing the known copies otherwise."""
    for schema in COPIES:
        if all(c in columns for c in schema.required):
            return schema
    known = "; ".join(f"{s.name}: {', '.join(s.required)}" for s in COPIES)
    raise DataError(f"{where}: columns {', '.join(columns)} match no known copy ({known}); convert it to a question "
                    "file plus an audio folder, or add its column mapping to data/hub_copies.py")  # fmt: skip


def is_dataset_source(source: str | Path) -> bool:
    """Whether ``source`` names a ``datasets`` dataset: a parquet file, a saved dataset directory, or a Hub id
    (``owner/name`` that is not a path here)."""
    path = Path(source)
    if path.suffix == ".parquet" or (
        path.is_dir() and any((path / f).is_file() for f in ("dataset_info.json", "state.json", "dataset_dict.json"))
    ):
        return True  # fmt: skip
    return not path.exists() and bool(_HUB_ID.match(str(source)))


def open_dataset(source: str | Path, split: str | None) -> Any:
    """The dataset ``source`` names (see :func:`is_dataset_source`), one split of it."""
    import datasets

    path = Path(source)
    try:
        if path.suffix == ".parquet":
            return datasets.Dataset.from_parquet(str(path))
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(str(source), split=split)
    except (FileNotFoundError, ConnectionError, ValueError) as e:
        raise DataError(f"{source}: cannot open the dataset ({type(e).__name__}: {e}); check the id or path (offline, "
                        "a Hub id must already be in the cache)") from None  # fmt: skip
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"{source}: no split {split!r}; it has {', '.join(loaded)}")
        return loaded[split]
    return loaded


def _extension(audio: Mapping[str, Any]) -> str:
    """The clip's file extension: from its stored path, else from its first bytes."""
    suffix = Path(str(audio.get("path") or "")).suffix.lower()
    if suffix in (".wav", ".flac", ".mp3", ".ogg", ".opus"):
        return suffix
    head = bytes(audio["bytes"][:4])
    return {b"RIFF": ".wav", b"fLaC": ".flac", b"OggS": ".ogg"}.get(head, ".mp3" if head[:3] == b"ID3" else ".wav")


@dataclass(frozen=True)
class MaterialisedCopy:
    """A dataset written out as the suite's own files: the question file, the folder its paths start from."""

    records_path: Path
    audio_dir: Path
    schema: CopySchema
    n_rows: int


def _cache_key(source: str | Path, split: str | None, fingerprint: str) -> str:
    return hashlib.sha256(json.dumps([str(source), split, fingerprint]).encode()).hexdigest()[:16]


def materialise(
    source: str | Path, *, split: str | None, cache_dir: str | Path, progress: bool = False
) -> MaterialisedCopy:
    """Write dataset ``source`` (one split) as a question file plus audio folder under ``cache_dir``.

    MMAU copies give ``<dir>/mmau.json`` with clips under ``test-mini-audios/``, MMAR copies ``<dir>/mmar.json``
    with clips under ``audio/``, AVQA copies ``<dir>/avqa.jsonl`` with clips under ``audio/``, each record pointing
    at its clip. The clips' bytes are the dataset's own (never decoded or re-encoded).
    """
    from datasets import Audio

    where = f"{source}" + (f" (split {split})" if split else "")
    ds = open_dataset(source, split)
    schema = recognise_copy(list(ds.column_names), where)
    ds = ds.cast_column(schema.audio_column, Audio(decode=False))
    out = Path(cache_dir) / f"{schema.name.replace('/', '--')}-{_cache_key(source, split, ds._fingerprint)}"
    clips = {"mmau": "test-mini-audios", "mmar": "audio", "avqa": "audio"}[schema.kind]
    path_field = {"mmau": "audio_id", "mmar": "audio_path", "avqa": "audio_path"}[schema.kind]
    records_path = out / ("avqa.jsonl" if schema.kind == "avqa" else f"{schema.kind}.json")
    if records_path.is_file():  # written last, in a folder named by the dataset's fingerprint: complete
        return MaterialisedCopy(records_path, out, schema, len(ds))
    records: list[dict[str, Any]] = []
    rows = ds
    if progress:
        from tqdm import tqdm

        rows = tqdm(ds, desc=f"writing {schema.name} clips", unit="clip")
    for index, row in enumerate(rows):
        audio = row[schema.audio_column]
        if not isinstance(audio, Mapping) or not audio.get("bytes"):
            raise DataError(f"{where}: row {index} has no audio bytes in column {schema.audio_column!r}")
        rec = schema.to_record(row, index)
        name = re.sub(r"[^\w.-]", "_", str(rec["id"])) + _extension(audio)  # an id is no path
        clip = out / clips / name
        if not (clip.is_file() and clip.stat().st_size == len(audio["bytes"])):
            write_bytes_atomic(clip, bytes(audio["bytes"]))
        rec[path_field] = f"./{clips}/{name}" if schema.kind != "avqa" else f"{clips}/{name}"
        records.append(rec)
    if schema.kind == "avqa":
        write_jsonl_atomic(records_path, records)
    else:
        write_json_atomic(records_path, records)
    return MaterialisedCopy(records_path, out, schema, len(records))
