"""AVQA loader: annotation records -> :class:`~data.schema.Item` s (audio only), with a report of skipped items.

Usage::

    from data.avqa import load_avqa

    split = load_avqa("avqa/train_qa.json", "avqa/audio", report_path=Path("runs/avqa_train_report.json"))
    split.items                  # list[Item], answer = the choice text
    split.skipped_missing_audio  # ids whose audio file does not exist (about 5% of AVQA's YouTube sources are gone)
    split.skipped_bad_audio      # id -> why its audio file is unusable (corrupt, truncated, NaN samples)

Two input forms are accepted and told apart by the file's content (a JSON list vs JSON lines):

(a) the official annotation files ``train_qa.json`` / ``val_qa.json``: a JSON list of records with ``id,
    video_name, video_id, question_text, multi_choice, answer, question_relation, question_type``. The audio is at
    ``audio_dir / template.format(**record)`` (default template ``"{video_name}.wav"``; ``audio_dir`` defaults to
    the annotation file's directory).
(b) the JSON-lines file read by the original R1-AQA code: the same records plus ``audio_path`` and
    ``dataset_name``. A relative ``audio_path`` is resolved against ``audio_dir`` when given, else against the
    JSONL file's directory.

Required fields: ``id, question_text, multi_choice, answer`` plus, for (a), the fields the template names and,
for (b), ``audio_path``. ``video_id``, ``question_relation`` and ``question_type`` are optional and kept, like every
other field, in ``Item.record``.

Question rewrite (``video_rewrite``), because the model hears the clip but never sees the video:

* ``"original"``: the original code's ``question_text.replace('video', 'audio')``: case-sensitive and substring
  based, so "Video" survives and "videos" becomes "audios".
* ``"correct"`` (default): whole words only (``\\b`` boundaries, so "videogame" or "video_name" are untouched),
  case kept: video->audio, Video->Audio, VIDEO->AUDIO, and the plural, which "audios" would get wrong,
  videos->audio clips, Videos->Audio clips, VIDEOS->AUDIO CLIPS.
* ``"none"``: the question as written.

Audio is validated when the file is loaded: every existing clip is probed (:func:`data.audio.probe_audio`: the
header and frame count, and every sample of float or compressed files for NaN/Inf and decode errors; clips shared
by several questions are probed once). Items whose clip is unusable are skipped like missing ones
(``bad_audio="skip"``, the default: training data gets a report) and listed with their reason in
``skipped_bad_audio``, the report and the log; ``bad_audio="error"`` raises one :class:`~data.schema.DataError`
listing them instead.

Items whose audio file is missing are skipped and counted, never fatal; malformed records raise
:class:`~data.schema.DataError` naming the file, the record and the fix. Duplicate choice texts are allowed (the
answer text is then ambiguous for string-match scoring) and produce one warning per file.
"""

from __future__ import annotations

import json
import logging
import re
import string
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from data.audio import MIN_AUDIO_SAMPLES, SAMPLE_RATE, probe_audio_files
from data.io import write_json_atomic
from data.schema import DataError, Item

__all__ = ["AvqaSplit", "BadAudio", "load_avqa", "rewrite_question", "VideoRewrite"]

log = logging.getLogger(__name__)

VideoRewrite = Literal["correct", "original", "none"]
BadAudio = Literal["skip", "error"]
# Bad clips named one by one in the log line and a bad_audio="error" message; the report lists them all.
MAX_LISTED_BAD_AUDIO = 10

REQUIRED_FIELDS = ("id", "question_text", "multi_choice", "answer")

_VIDEO_WORD = re.compile(r"\b(videos?)\b", re.IGNORECASE)


def _rewrite_word(m: re.Match[str]) -> str:
    word = m.group(1)
    new = "audio clips" if word.lower() == "videos" else "audio"
    if word.isupper():
        return new.upper()
    if word[0].isupper():
        return new[0].upper() + new[1:]
    return new


def rewrite_question(question: str, mode: VideoRewrite = "correct") -> str:
    """Rewrite references to the video as references to the audio; see the module docstring for the modes."""
    if mode == "none":
        return question
    if mode == "original":
        return question.replace("video", "audio")
    if mode == "correct":
        return _VIDEO_WORD.sub(_rewrite_word, question)
    raise ValueError(f"video_rewrite must be 'correct', 'original' or 'none', got {mode!r}")


@dataclass
class AvqaSplit:
    """The items of one AVQA file, plus what was dropped on the way."""

    file: Path
    form: Literal["json", "jsonl"]
    n_records: int
    items: list[Item] = field(default_factory=list)
    skipped_missing_audio: list[str] = field(default_factory=list)
    skipped_bad_audio: dict[str, str] = field(default_factory=dict)  # id -> why its audio file is unusable
    duplicate_choice_ids: list[str] = field(default_factory=list)
    # Clips shorter than one audio token: kept, and padded with silence when loaded (data.audio.MIN_AUDIO_SAMPLES).
    padded_short_audio: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def report(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "n_records": self.n_records,
            "n_items": len(self.items),
            "n_skipped_missing_audio": len(self.skipped_missing_audio),
            "skipped_ids": list(self.skipped_missing_audio),
            "n_skipped_bad_audio": len(self.skipped_bad_audio),
            "skipped_bad_audio": dict(self.skipped_bad_audio),
            "n_padded_short_audio": len(self.padded_short_audio),
            "padded_short_audio": list(self.padded_short_audio),
        }


def _read_records(path: Path) -> tuple[Literal["json", "jsonl"], list[tuple[str, Any]]]:
    """Return the form and ``(where, record)`` pairs; ``where`` names the record's position for error messages."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(
            f"{path}: AVQA annotation file not found; pass the path of train_qa.json / val_qa.json"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the AVQA annotation file ({e})") from None
    if not text.strip():
        raise DataError(f"{path}: file is empty; expected a JSON list or JSON lines of AVQA records")

    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e}); check the file is complete") from None
        return "json", [(f"record #{i} (0-based)", r) for i, r in enumerate(records)]

    rows: list[tuple[str, Any]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((f"line {n}", json.loads(line)))
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path}, line {n}: not valid JSON ({e}); expected one JSON object per line or one JSON list"
            ) from None
    return "jsonl", rows


def _template_fields(template: str) -> list[str]:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as e:
        raise ValueError(f"bad audio path template {template!r}: {e}") from None
    if any(not n or n.isdigit() for n in names):
        raise ValueError(f"audio path template {template!r} must use named fields only, e.g. '{{video_name}}.wav'")
    # "{a.b}" / "{a[0]}" would look up attributes or items: only the base name must be a record field.
    return [re.split(r"[.\[]", n, maxsplit=1)[0] for n in names]


def _validate(path: Path, where: str, rec: Any, extra_required: list[str]) -> tuple[str, str, list[str], int]:
    """Check one record; return (id, question_text, choices, answer index) or raise DataError."""
    if not isinstance(rec, Mapping):
        raise DataError(f"{path}, {where}: expected a JSON object, got {type(rec).__name__}")
    rid = rec.get("id")
    label = f"{path}, {where} (id {rid!r})" if rid is not None else f"{path}, {where}"
    missing = [k for k in (*REQUIRED_FIELDS, *extra_required) if k not in rec or rec[k] is None]
    if missing:
        raise DataError(
            f"{label}: missing required field(s) {', '.join(missing)}; every AVQA record needs "
            f"{', '.join((*REQUIRED_FIELDS, *extra_required))}"
        )
    if not isinstance(rid, (int, str)) or isinstance(rid, bool):
        raise DataError(f"{label}: 'id' must be an integer or a string, got {type(rid).__name__}")
    question = rec["question_text"]
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{label}: 'question_text' must be a non-empty string")
    choices = rec["multi_choice"]
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise DataError(f"{label}: 'multi_choice' must be a list of strings, got {choices!r}")
    if len(choices) < 2:
        raise DataError(f"{label}: 'multi_choice' has {len(choices)} choice(s); a question needs at least 2")
    answer = rec["answer"]
    # bool is an int subclass in Python; True/False as an answer index is a data bug, not index 1/0.
    if not isinstance(answer, int) or isinstance(answer, bool):
        raise DataError(
            f"{label}: 'answer' must be the 0-based integer index of the correct choice, got {answer!r}; "
            f"fix the record (AVQA's official files store an int)"
        )
    if not 0 <= answer < len(choices):
        raise DataError(
            f"{label}: 'answer' index {answer} is out of range for {len(choices)} choices (0-based, "
            f"0..{len(choices) - 1}); fix the record"
        )
    return str(rid), question, choices, answer


def _bad_audio_lines(bad: dict[str, str]) -> str:
    shown = [f"id {rid}: {why}" for rid, why in list(bad.items())[:MAX_LISTED_BAD_AUDIO]]
    more = len(bad) - len(shown)
    return "\n  " + "\n  ".join(shown) + (f"\n  ... and {more} more" if more else "")


def _drop_bad_audio(split: AvqaSplit, bad_audio: BadAudio) -> None:
    """Probe the items' clips; drop (and list) the items whose clip is unusable, or raise for ``"error"``."""
    good, bad = probe_audio_files([it.audio_path for it in split.items])
    short = {
        p for p, probe in good.items() if round(probe.frames * SAMPLE_RATE / probe.sample_rate) < MIN_AUDIO_SAMPLES
    }
    split.padded_short_audio = [it.id for it in split.items if it.audio_path in short]
    if split.padded_short_audio:
        log.warning("%s: %d clips are shorter than one audio token (%d samples at 16 kHz) and will be padded with "
                    "silence (ids in the data report), e.g. id %s", split.file, len(split.padded_short_audio),
                    MIN_AUDIO_SAMPLES, split.padded_short_audio[0])  # fmt: skip
    if not bad:
        return
    found = {it.id: bad[it.audio_path] for it in split.items if it.audio_path in bad}
    if bad_audio == "error":
        raise DataError(
            f"{split.file}: {len(found)} of {len(split.items)} records have an unusable audio clip ({len(bad)} "
            "files); re-extract or convert these clips (each line names the fix), or load with bad_audio='skip' "
            f"to skip and report them:{_bad_audio_lines(found)}"
        )
    split.skipped_bad_audio.update(found)
    split.items = [it for it in split.items if it.id not in found]
    log.warning(
        "%s: %d records skipped because their audio clip is unusable (%d files; all listed in the data report):%s",
        split.file,
        len(found),
        len(bad),
        _bad_audio_lines(found),
    )


def load_avqa(
    path: str | Path,
    audio_dir: str | Path | None = None,
    *,
    template: str = "{video_name}.wav",
    video_rewrite: VideoRewrite = "correct",
    report_path: Path | None = None,
    bad_audio: BadAudio = "skip",
) -> AvqaSplit:
    """Load one AVQA file (official JSON list or the original code's JSON lines) into an :class:`AvqaSplit`.

    Records whose audio file does not exist are skipped and listed in ``skipped_missing_audio``. Every existing
    clip is probed (:func:`data.audio.probe_audio`); records whose clip is unusable are skipped and listed with the
    reason in ``skipped_bad_audio`` (``bad_audio="skip"``), or make the load fail with one :class:`DataError`
    listing them (``bad_audio="error"``). With ``report_path`` the :meth:`AvqaSplit.report` dict is written there
    as JSON (atomically).
    """
    path = Path(path)
    rewrite_question("", video_rewrite)  # fail on a bad mode before reading 40k records
    if bad_audio not in ("skip", "error"):
        raise ValueError(f"bad_audio must be 'skip' or 'error', got {bad_audio!r}")
    form, rows = _read_records(path)
    base_dir = Path(audio_dir) if audio_dir is not None else path.parent
    if form == "json":
        try:
            extra_required = _template_fields(template)
        except ValueError as e:
            raise DataError(f"{path}: {e}") from None
    else:
        extra_required = ["audio_path"]

    split = AvqaSplit(file=path, form=form, n_records=len(rows))
    seen: dict[str, str] = {}
    for where, rec in rows:
        rid, question, choices, answer = _validate(path, where, rec, extra_required)
        if rid in seen:
            raise DataError(
                f"{path}: duplicate id {rid!r} at {seen[rid]} and {where}; ids must be unique (remove or renumber "
                f"one of them)"
            )
        seen[rid] = where
        if len(set(choices)) < len(choices):
            split.duplicate_choice_ids.append(rid)

        if form == "json":
            try:
                rel = template.format(**rec)
            except (KeyError, IndexError, AttributeError, ValueError, TypeError) as e:
                raise DataError(
                    f"{path}, {where} (id {rid!r}): cannot build the audio path from {template!r} ({e})"
                ) from None
            audio = base_dir / rel
        else:
            audio_field = rec["audio_path"]
            if not isinstance(audio_field, str) or not audio_field:
                raise DataError(f"{path}, {where} (id {rid!r}): 'audio_path' must be a non-empty string")
            audio = Path(audio_field)
            if not audio.is_absolute():
                audio = base_dir / audio

        if not audio.is_file():
            split.skipped_missing_audio.append(rid)
            continue
        split.items.append(
            Item(
                id=rid,
                audio_path=str(audio),
                question=rewrite_question(question, video_rewrite),
                choices=tuple(choices),
                answer=choices[answer],
                source="AVQA",
                record=rec,
            )
        )

    _drop_bad_audio(split, bad_audio)

    if split.duplicate_choice_ids:
        ids = split.duplicate_choice_ids
        shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
        warnings.warn(
            f"{path}: {len(ids)} record(s) have duplicate choice texts (ids {shown}); they are kept, but the answer "
            f"text is ambiguous for string-match scoring",
            stacklevel=2,
        )
    if split.n_records and not split.items:
        log.warning(
            "%s: no usable audio file found for any of %d records (looked under %s); check audio_dir and template",
            path,
            split.n_records,
            base_dir,
        )
    log.info(
        "AVQA %s: %d items of %d records, %d skipped (missing audio), %d skipped (bad audio)",
        path,
        len(split.items),
        split.n_records,
        len(split.skipped_missing_audio),
        len(split.skipped_bad_audio),
    )
    if report_path is not None:
        write_json_atomic(report_path, split.report())
    return split
