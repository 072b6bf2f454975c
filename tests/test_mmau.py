"""Tests of data.benchmark on MMAU test-mini (loader, version recognition, validation errors, scoring of prediction records) and the
``python -m data.score`` command line.

    .venv/bin/pytest tests/test_mmau.py -q
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from data.audio import write_wav
from data.benchmark import detect_version, load_benchmark, score_records
from data.benchmark_registry import MMAU, content_fingerprint
from data.schema import DataError

REPO = Path(__file__).resolve().parent.parent


def _label(mmau_file: Path) -> str:
    return mmau_file.name.split(".")[1]  # mmau-test-mini.<label>.json


def _rec(i: int, **over: object) -> dict:
    rec = {
        "id": f"id-{i}",
        "audio_id": f"./test-mini-audios/id-{i}.wav",
        "question": f"Question {i}?",
        "choices": ["Man", "Woman", "Child", "Robot"],
        "answer": "Man",
        "dataset": "AudioSet",
        "task": ["sound", "music", "speech"][i % 3],
        "split": "test-mini",
        "category": "Reasoning",
        "sub-category": "Acoustic Source Inference",
        "difficulty": "medium",
    }
    rec.update(over)
    return rec


def _write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def _load_quiet(path: Path, **kw: object):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_benchmark(path, **kw)


# --- the real files -----------------------------------------------------------------------------------------------


def test_version_detected(mmau_file: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a known file must not warn
        bench = load_benchmark(mmau_file, check_audio=False)
    assert bench.version == _label(mmau_file)
    assert MMAU.file_versions[bench.sha256] == bench.version
    assert len(bench.items) == 1000 and bench.missing_audio_ids == []
    assert bench.path == str(mmau_file)


def test_content_fingerprint_identifies_each_version(mmau_file: Path) -> None:
    records = json.loads(mmau_file.read_text(encoding="utf-8"))
    # Predictions files carry extra keys and may be reordered: the fingerprint must ignore both.
    for r in records:
        r["model_output"] = "anything"
    assert detect_version(records[::-1]) == _label(mmau_file)
    assert detect_version(records[:-1]) == "unknown"


def test_items_are_filled_and_categories_normalised(mmau_file: Path) -> None:
    bench = load_benchmark(mmau_file, check_audio=False)
    raw_lists = [it for it in bench.items if isinstance(it.record["category"], list)]
    assert len(raw_lists) == 13  # the quirk, kept untouched in the record
    assert all(isinstance(it.category, str) for it in bench.items)
    assert {it.category for it in raw_lists} == {"Reasoning"}
    it = bench.items[0]
    assert it.source == it.record["dataset"] and it.sub_category == it.record["sub-category"]
    assert it.task in {"sound", "music", "speech"} and it.difficulty in {"easy", "medium", "hard"}
    assert it.answer in it.choices
    # "./test-mini-audios/<id>.wav" resolved against the JSON's folder, without the "./".
    assert it.audio_path == str(mmau_file.parent / "test-mini-audios" / f"{it.id}.wav")
    assert [i.task for i in bench.items].count("music") == 334


def test_gold_answers_score_100(mmau_file: Path) -> None:
    records = json.loads(mmau_file.read_text(encoding="utf-8"))
    for r in records:
        r["model_output"] = r["answer"]
    metrics, rows = score_records(records)
    assert metrics["accuracy"] == {"sound": 100.0, "music": 100.0, "speech": 100.0, "avg": 100.0}
    assert metrics["n"] == 1000 and metrics["n_by_task"] == {"sound": 333, "music": 334, "speech": 333}
    assert len(rows) == 1000 and set(rows[0]) == {"id", "task", "correct", "prediction"}


def test_score_records_applies_rule_without_extraction() -> None:
    records = [_rec(0, model_output="<answer>Man</answer>"), _rec(1, model_output="Woman")]
    metrics, rows = score_records(records)
    # The tag words are not choice tokens, so "<answer>Man</answer>" still matches, as in the official script.
    assert [r["correct"] for r in rows] == [True, False]
    assert rows[0]["prediction"] == "<answer>Man</answer>"
    assert metrics["n_correct"] == 1


# --- validation errors --------------------------------------------------------------------------------------------


def test_not_a_list(tmp_path: Path) -> None:
    path = _write(tmp_path / "dict.json", {"id": "x"})
    with pytest.raises(DataError, match=r"dict\.json.*JSON list"):
        load_benchmark(path, check_audio=False)
    path = _write(tmp_path / "ints.json", [_rec(0), 3])
    with pytest.raises(DataError, match=r"ints\.json.*#1"):
        load_benchmark(path, check_audio=False)


def test_missing_required_fields_lists_every_record(tmp_path: Path) -> None:
    a, b = _rec(0), _rec(1)
    del a["answer"]
    del b["audio_id"], b["choices"]
    path = _write(tmp_path / "fields.json", [a, b, _rec(2)])
    with pytest.raises(DataError) as e:
        load_benchmark(path, check_audio=False)
    msg = str(e.value)
    assert "fields.json" in msg and "id-0 (missing answer)" in msg and "id-1 (missing audio_id, choices)" in msg
    assert "id-2" not in msg


def test_missing_id_named_by_position(tmp_path: Path) -> None:
    rec = _rec(1)
    del rec["id"]
    path = _write(tmp_path / "noid.json", [_rec(0), rec])
    with pytest.raises(DataError, match=r"noid\.json.*#1"):
        load_benchmark(path, check_audio=False)


def test_answer_not_in_choices_lists_all_ids(tmp_path: Path) -> None:
    path = _write(tmp_path / "ans.json", [_rec(0, answer="Dog"), _rec(1), _rec(2, answer="man")])
    with pytest.raises(DataError) as e:
        load_benchmark(path, check_audio=False)
    msg = str(e.value)
    assert "ans.json" in msg and "id-0" in msg and "id-2" in msg and "id-1" not in msg


def test_duplicate_ids(tmp_path: Path) -> None:
    path = _write(tmp_path / "dup.json", [_rec(0), _rec(1), _rec(0), _rec(2)])
    with pytest.raises(DataError, match=r"dup\.json.*duplicate ids: id-0$"):
        load_benchmark(path, check_audio=False)


def _audio_tree(tmp_path: Path, present: list[int], n: int = 4) -> Path:
    path = _write(tmp_path / "mini.json", [_rec(i) for i in range(n)])
    (tmp_path / "test-mini-audios").mkdir()
    for i in present:  # real (tiny) wavs: load_benchmark probes every clip that exists
        write_wav(tmp_path / "test-mini-audios" / f"id-{i}.wav", np.zeros(160, dtype=np.float32))
    return path


def test_missing_audio_lists_ids(tmp_path: Path) -> None:
    path = _audio_tree(tmp_path, present=[0, 2])
    with pytest.raises(DataError) as e:
        _load_quiet(path)
    msg = str(e.value)
    assert "mini.json" in msg and "2 of the 4" in msg and "--allow-missing-audio" in msg
    assert "id-1, id-3" in msg and "id-0" not in msg


def test_allow_missing_audio_records_ids(tmp_path: Path) -> None:
    path = _audio_tree(tmp_path, present=[0, 2])
    bench = _load_quiet(path, allow_missing_audio=True)
    assert [it.id for it in bench.items] == ["id-0", "id-2"]
    assert bench.missing_audio_ids == ["id-1", "id-3"]
    assert Path(bench.items[0].audio_path).is_file()
    # An explicit audio dir is used instead of the JSON's folder.
    other = tmp_path / "elsewhere"
    (other / "test-mini-audios").mkdir(parents=True)
    write_wav(other / "test-mini-audios" / "id-3.wav", np.zeros(160, dtype=np.float32))
    bench = _load_quiet(path, audio_dir=other, allow_missing_audio=True)
    assert [it.id for it in bench.items] == ["id-3"] and bench.missing_audio_ids == ["id-0", "id-1", "id-2"]


def test_all_audio_missing_is_an_error_even_when_allowed(tmp_path: Path) -> None:
    path = _audio_tree(tmp_path, present=[])
    with pytest.raises(DataError, match=r"mini\.json: all 4 audio clips missing"):
        _load_quiet(path, allow_missing_audio=True)


def test_unknown_file_warns(tmp_path: Path) -> None:
    path = _write(tmp_path / "custom.json", [_rec(0), _rec(1, category=["Reasoning"])])
    with pytest.warns(UserWarning, match=r"custom\.json.*unknown"):
        bench = load_benchmark(path, check_audio=False)
    assert bench.version == "unknown" and len(bench.sha256) == 64
    assert bench.items[1].category == "Reasoning"


def test_reserialised_known_file_keeps_its_version(tmp_path: Path, mmau_file: Path) -> None:
    copy = _write(tmp_path / "copy.json", json.loads(mmau_file.read_text(encoding="utf-8")))
    with pytest.warns(UserWarning, match="match"):
        bench = load_benchmark(copy, check_audio=False)
    assert bench.version == _label(mmau_file)


def test_score_records_errors() -> None:
    with pytest.raises(DataError, match=r"preds\.json.*JSON list"):
        score_records({"a": 1}, source="preds.json")
    records = [_rec(0, model_output="Man"), _rec(1), _rec(2)]
    with pytest.raises(DataError) as e:
        score_records(records, source="preds.json")
    msg = str(e.value)
    assert "preds.json" in msg and "2 of 3" in msg and "id-1, id-2" in msg
    with pytest.raises(DataError, match="--key model_output"):
        score_records(records, key="model_prediction", source="preds.json")
    with pytest.raises(DataError, match=r"non-string.*id-0"):
        score_records([_rec(0, model_output=None)], source="preds.json")


# --- the command line ---------------------------------------------------------------------------------------------


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "data.score", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_cli_writes_metrics_and_items(tmp_path: Path) -> None:
    original = REPO.parent / "shared" / "data" / "mmau" / "mmau-test-mini.a5cd89a.json"
    if not original.exists():
        pytest.skip(f"shared MMAU file missing: {original}")
    records = json.loads(original.read_text(encoding="utf-8"))
    for i, r in enumerate(records):
        r["model_prediction"] = r["answer"] if i % 2 else "(A) " + r["choices"][0]
    pred = _write(tmp_path / "pred.json", records)
    out, items = tmp_path / "out" / "METRICS.json", tmp_path / "ITEMS.jsonl"
    res = _run_cli(str(pred), "--key", "model_prediction", "--out", str(out), "--per-item", str(items))
    assert res.returncode == 0, res.stderr
    assert "average" in res.stdout and "a5cd89a" in res.stdout
    metrics = json.loads(out.read_text(encoding="utf-8"))
    for key in ("version", "n", "n_correct", "accuracy", "n_by_task", "by_difficulty", "by_sub_category", "ci95"):
        assert key in metrics
    assert metrics["version"] == "a5cd89a" and metrics["n"] == 1000 and metrics["key"] == "model_prediction"
    assert set(metrics["accuracy"]) == {"sound", "music", "speech", "avg"}
    lines = items.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1000
    assert set(json.loads(lines[0])) == {"id", "task", "correct", "prediction"}
    assert sum(json.loads(line)["correct"] for line in lines) == metrics["n_correct"]


def test_cli_unknown_version_and_missing_key(tmp_path: Path) -> None:
    pred = _write(tmp_path / "small.json", [_rec(0, model_output="Man"), _rec(1, model_output="Robot")])
    out = tmp_path / "m.json"
    res = _run_cli(str(pred), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert json.loads(out.read_text())["version"] == "unknown"

    bad = _write(tmp_path / "bad.json", [_rec(0, model_output="Man"), _rec(1)])
    res = _run_cli(str(bad), "--out", str(tmp_path / "never.json"))
    assert res.returncode == 2
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "bad.json" in err and "id-1" in err and "model_output" in err
    assert not (tmp_path / "never.json").exists()


def test_content_fingerprint_ignores_key_order() -> None:
    a = _rec(0)
    b = dict(reversed(list(a.items())))
    assert content_fingerprint([a], MMAU.content_fields) == content_fingerprint([b], MMAU.content_fields)
    assert content_fingerprint([a], MMAU.content_fields) != content_fingerprint(
        [_rec(0, answer="Woman")], MMAU.content_fields
    )
