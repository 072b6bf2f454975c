"""Tests for data/avqa.py: both input forms, the question rewrite modes, missing audio, and bad records."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from data.audio import write_wav
from data.avqa import load_avqa, rewrite_question
from data.io import read_json
from data.schema import DataError


def record(i: int, **over: Any) -> dict[str, Any]:
    rec = {
        "id": i,
        "video_name": f"yt{i:03d}_000030",
        "video_id": 1000 + i,
        "question_text": "What is the man in the video doing?",
        "multi_choice": ["singing", "dancing", "playing guitar", "talking"],
        "answer": 2,
        "question_relation": "Both",
        "question_type": "Which",
    }
    rec.update(over)
    return rec


def make_audio(audio_dir: Path, name: str, samples: int = 1600) -> Path:
    return write_wav(audio_dir / name, np.zeros(samples, dtype=np.float32))


def write_list(path: Path, records: list[Any]) -> Path:
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path


def write_lines(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_official_json_list(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    recs = [record(i) for i in range(3)]
    for r in recs:
        make_audio(audio, f"{r['video_name']}.wav")
    split = load_avqa(write_list(tmp_path / "train_qa.json", recs), audio)
    assert split.form == "json" and split.n_records == 3 and len(split) == 3
    item = split.items[1]
    assert item.id == "1"
    assert item.audio_path == str(audio / "yt001_000030.wav")
    assert item.question == "What is the man in the audio doing?"
    assert item.choices == ("singing", "dancing", "playing guitar", "talking")
    assert item.answer == "playing guitar"
    assert item.source == "AVQA" and item.task is None and item.category is None
    assert item.record["question_relation"] == "Both" and item.record["question_type"] == "Which"
    assert item.record == recs[1]


def test_template_and_default_audio_dir(tmp_path: Path) -> None:
    recs = [record(7)]
    make_audio(tmp_path / "1007", "yt007_000030.flac.wav")
    split = load_avqa(write_list(tmp_path / "val_qa.json", recs), template="{video_id}/{video_name}.flac.wav")
    assert [i.audio_path for i in split.items] == [str(tmp_path / "1007" / "yt007_000030.flac.wav")]


def test_original_jsonl_form(tmp_path: Path) -> None:
    make_audio(tmp_path / "wavs", "rel.wav")
    absolute = make_audio(tmp_path / "elsewhere", "abs.wav")
    recs = [
        record(1, audio_path="wavs/rel.wav", dataset_name="AVQA"),
        record(2, audio_path=str(absolute), dataset_name="AVQA"),
    ]
    path = tmp_path / "sub" / "train.jsonl"
    make_audio(tmp_path / "sub" / "wavs", "rel.wav")
    split = load_avqa(write_lines(path, recs))
    assert split.form == "jsonl" and split.n_records == 2
    assert [i.audio_path for i in split.items] == [str(tmp_path / "sub" / "wavs" / "rel.wav"), str(absolute)]
    assert split.items[0].record["dataset_name"] == "AVQA"
    # audio_dir overrides the base of relative paths
    split = load_avqa(path, tmp_path)
    assert split.items[0].audio_path == str(tmp_path / "wavs" / "rel.wav")


def test_jsonl_with_blank_lines_and_single_record(tmp_path: Path) -> None:
    make_audio(tmp_path, "a.wav")
    path = tmp_path / "one.jsonl"
    path.write_text("\n" + json.dumps(record(1, audio_path="a.wav")) + "\n\n", encoding="utf-8")
    assert len(load_avqa(path)) == 1


QUESTION = "Video shows videos of a video: VIDEO, Videos, videogame, video_name, video's sound?"


def test_rewrite_modes() -> None:
    assert rewrite_question(QUESTION, "none") == QUESTION
    assert rewrite_question(QUESTION, "original") == (
        "Video shows audios of a audio: VIDEO, Videos, audiogame, audio_name, audio's sound?"
    )
    assert rewrite_question(QUESTION, "correct") == (
        "Audio shows audio clips of a audio: AUDIO, Audio clips, videogame, video_name, audio's sound?"
    )
    assert rewrite_question("VIDEOS here", "correct") == "AUDIO CLIPS here"
    with pytest.raises(ValueError, match="video_rewrite"):
        rewrite_question(QUESTION, "fancy")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["correct", "original", "none"])
def test_rewrite_mode_applied_by_loader(tmp_path: Path, mode: str) -> None:
    make_audio(tmp_path, "yt001_000030.wav")
    path = write_list(tmp_path / "qa.json", [record(1, question_text=QUESTION)])
    split = load_avqa(path, video_rewrite=mode)  # type: ignore[arg-type]
    assert split.items[0].question == rewrite_question(QUESTION, mode)  # type: ignore[arg-type]
    assert split.items[0].record["question_text"] == QUESTION  # the source record is untouched


def test_bad_rewrite_mode_fails_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="video_rewrite"):
        load_avqa(tmp_path / "does_not_exist.json", video_rewrite="bad")  # type: ignore[arg-type]


def test_missing_audio_is_skipped_and_reported(tmp_path: Path) -> None:
    recs = [record(i) for i in range(5)]
    for i in (0, 2, 4):
        make_audio(tmp_path / "audio", f"{recs[i]['video_name']}.wav")
    path = write_list(tmp_path / "train_qa.json", recs)
    report_path = tmp_path / "reports" / "avqa_train.json"
    split = load_avqa(path, tmp_path / "audio", report_path=report_path)
    assert [i.id for i in split.items] == ["0", "2", "4"]
    assert split.skipped_missing_audio == ["1", "3"]
    expected = {
        "file": str(path),
        "n_records": 5,
        "n_items": 3,
        "n_skipped_missing_audio": 2,
        "skipped_ids": ["1", "3"],
        "n_skipped_bad_audio": 0,
        "skipped_bad_audio": {},
        "n_padded_short_audio": 0,
        "padded_short_audio": [],
    }
    assert split.report() == expected
    assert read_json(report_path) == expected


def test_a_clip_shorter_than_one_audio_token_is_kept_and_reported(tmp_path: Path) -> None:
    from data.audio import MIN_AUDIO_SAMPLES

    recs = [record(i) for i in range(3)]
    for i, samples in enumerate((MIN_AUDIO_SAMPLES - 1, MIN_AUDIO_SAMPLES, 160)):
        make_audio(tmp_path / "audio", f"{recs[i]['video_name']}.wav", samples)
    split = load_avqa(write_list(tmp_path / "train_qa.json", recs), tmp_path / "audio")
    assert [i.id for i in split.items] == ["0", "1", "2"]  # nothing skipped
    assert split.padded_short_audio == ["0", "2"] and split.report()["n_padded_short_audio"] == 2


def test_all_audio_missing_does_not_crash(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.jsonl", [record(1, audio_path="gone.wav"), record(2, audio_path="/no/such.wav")])
    split = load_avqa(path, report_path=tmp_path / "r.json")
    assert split.items == [] and split.skipped_missing_audio == ["1", "2"]
    assert read_json(tmp_path / "r.json")["n_items"] == 0


def test_duplicate_choices_warn_but_load(tmp_path: Path) -> None:
    make_audio(tmp_path, "yt001_000030.wav")
    path = write_list(tmp_path / "qa.json", [record(1, multi_choice=["dog", "dog", "cat", "bird"], answer=2)])
    with pytest.warns(UserWarning, match="duplicate choice"):
        split = load_avqa(path)
    assert split.items[0].answer == "cat" and split.duplicate_choice_ids == ["1"]


def test_no_warning_for_clean_file(tmp_path: Path) -> None:
    make_audio(tmp_path, "yt001_000030.wav")
    path = write_list(tmp_path / "qa.json", [record(1)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_avqa(path)


BAD_RECORDS = [
    (record(42, answer=4), "out of range"),
    (record(42, answer=-1), "out of range"),
    (record(42, answer="2"), "0-based integer"),
    (record(42, answer=True), "0-based integer"),
    (record(42, answer=1.0), "0-based integer"),
    (record(42, multi_choice=["only"], answer=0), "at least 2"),
    (record(42, multi_choice="a,b"), "list of strings"),
    (record(42, multi_choice=["a", 3]), "list of strings"),
    ({k: v for k, v in record(42).items() if k != "question_text"}, "missing required field.*question_text"),
    ({k: v for k, v in record(42).items() if k != "answer"}, "missing required field.*answer"),
    ({k: v for k, v in record(42).items() if k != "video_name"}, "missing required field.*video_name"),
    (record(42, question_text=""), "question_text"),
]


@pytest.mark.parametrize(("bad", "pattern"), BAD_RECORDS)
@pytest.mark.parametrize("form", ["json", "jsonl"])
def test_bad_record_names_file_and_record(tmp_path: Path, bad: dict, pattern: str, form: str) -> None:
    good, bad = record(1), dict(bad)  # BAD_RECORDS is shared between parametrized runs: never mutate it
    if form == "json":
        path = write_list(tmp_path / "qa.json", [good, bad])
        where = "record #1"
    else:
        good["audio_path"] = bad["audio_path"] = "x.wav"
        path = write_lines(tmp_path / "qa.jsonl", [good, bad])
        where = "line 2"
        if pattern.endswith("video_name"):  # the JSONL form does not need video_name
            assert len(load_avqa(path).skipped_missing_audio) == 2
            return
    with pytest.raises(DataError, match=pattern) as e:
        load_avqa(path)
    msg = str(e.value)
    assert str(path) in msg and where in msg and "42" in msg


def test_missing_id_and_audio_path(tmp_path: Path) -> None:
    rec = record(1)
    del rec["id"]
    path = write_list(tmp_path / "qa.json", [rec])
    with pytest.raises(DataError, match=r"record #0.*missing required field\(s\) id"):
        load_avqa(path)
    path = write_lines(tmp_path / "qa.jsonl", [record(5)])
    with pytest.raises(DataError, match=r"line 1 \(id 5\).*audio_path"):
        load_avqa(path)


@pytest.mark.parametrize("form", ["json", "jsonl"])
def test_duplicate_ids_name_both(tmp_path: Path, form: str) -> None:
    recs = [record(1, audio_path="a.wav"), record(2, audio_path="b.wav"), record(1, audio_path="c.wav")]
    if form == "json":
        path = write_list(tmp_path / "qa.json", recs)
        both = ("record #0", "record #2")
    else:
        path = write_lines(tmp_path / "qa.jsonl", recs)
        both = ("line 1", "line 3")
    with pytest.raises(DataError, match="duplicate id '1'") as e:
        load_avqa(path)
    assert all(w in str(e.value) for w in both)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_avqa(tmp_path / "nope.json")
    (tmp_path / "empty.json").write_text("  \n")
    with pytest.raises(DataError, match="empty"):
        load_avqa(tmp_path / "empty.json")
    (tmp_path / "trunc.json").write_text('[{"id": 1,')
    with pytest.raises(DataError, match="not valid JSON"):
        load_avqa(tmp_path / "trunc.json")
    (tmp_path / "bad.jsonl").write_text(json.dumps(record(1)) + "\n{oops\n")
    with pytest.raises(DataError, match="line 2"):
        load_avqa(tmp_path / "bad.jsonl")
    write_list(tmp_path / "notobj.json", [record(1), [1, 2]])
    with pytest.raises(DataError, match="record #1.*JSON object"):
        load_avqa(tmp_path / "notobj.json")
    write_list(tmp_path / "t.json", [record(1)])
    with pytest.raises(DataError, match="named fields"):
        load_avqa(tmp_path / "t.json", template="{0}.wav")
