"""Tests of MMAR in the benchmark registry, loader and scorer, on the two real MMAR question files.

The files live in ``../shared/data/mmar/`` (no license stated: read from there, never copied into the project).

    .venv/bin/pytest tests/test_mmar.py -q
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from data.audio import write_wav
from data.benchmark import detect_version, load_benchmark, score_records
from data.benchmark_registry import BENCHMARKS, MMAR, MMAR_MODALITIES, get_benchmark, recognise
from data.schema import DataError
from data.scoring import chance_percent, compute_metrics

REPO = Path(__file__).resolve().parent.parent
MMAR_DIR = REPO.parent / "shared" / "data" / "mmar"
FILES = {"6249700": MMAR_DIR / "MMAR-meta.6249700.json", "a355584": MMAR_DIR / "MMAR-meta.a355584.jsonl"}
# The first release's items whose answer is none of their choices (two answers joined by a newline, a choice with
# a trailing space, a shortened choice): found by reading the file, listed here so that the loader is checked.
OUTSIDE_6249700 = {
    "BV1NtQuYTELJ_00-00-00_00-00-26", "BV1NX4y1p7Xq_00-33-16_00-33-45", "Txj3Qv1lJgs_00-00-00_00-00-16",
    "BV16j411E7Z9_00-00-13_00-00-34", "BV1mifMY4Ebq_00-02-41_00-03-10", "BV1P4411677K_0-00_0-20",
}  # fmt: skip


@pytest.fixture(params=sorted(FILES), ids=lambda v: f"mmar-{v}")
def mmar_file(request: pytest.FixtureRequest) -> Path:
    path = FILES[request.param]
    if not path.exists():
        pytest.skip(f"shared MMAR file missing: {path}")
    return path


def _records(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return json.loads(path.read_text(encoding="utf-8"))


def _version(path: Path) -> str:
    return path.name.split(".")[1]


def _load(path: Path, **kw: object):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bench = load_benchmark(path, check_audio=False, **kw)
    return bench, [str(w.message) for w in caught]


def _official(answer: str, prediction: str, choices: list[str]) -> bool:
    """The official MMAR/MMAU string match, restated here independently of data.scoring (from its description)."""

    def words(text: str) -> set[str]:
        return set(re.findall(r"\b\w+\b", text.lower()))

    pred, gold = words(prediction), words(answer)
    if not pred:
        return False
    others: set[str] = set()
    for choice in choices:
        if words(choice) != gold:
            others.update(words(choice) - gold)
    return gold.issubset(pred) and not (pred & others)


# --- the real files -----------------------------------------------------------------------------------------------


def test_each_release_is_recognised_with_its_facts(mmar_file: Path) -> None:
    bench, messages = _load(mmar_file)
    version = _version(mmar_file)
    assert bench.name == "mmar" and bench.version == version and MMAR.file_versions[bench.sha256] == version
    assert len(bench.items) == 1000 and not any("not a known" in m or "unknown" in m for m in messages)
    # NOTES section 11: modalities, layers and choice counts of MMAR.
    assert Counter(it.task for it in bench.items) == {
        "speech": 294, "mix-sound-speech": 218, "music": 206, "sound": 165, "mix-music-speech": 82,
        "mix-sound-music-speech": 24, "mix-sound-music": 11,
    }  # fmt: skip
    assert Counter(it.category for it in bench.items) == {
        "Semantic Layer": 412, "Perception Layer": 404, "Cultural Layer": 141, "Signal Layer": 43,
    }  # fmt: skip
    assert Counter(len(it.choices) for it in bench.items)[4] == 815
    assert Counter(len(it.choices) for it in bench.items)[2] == 171
    assert bench.items[0].audio_path.endswith(f"audio/{bench.items[0].id}.wav")
    assert all(it.sub_category for it in bench.items)


def test_first_release_answers_outside_their_choices_are_kept_listed_and_warned_once(mmar_file: Path) -> None:
    bench, messages = _load(mmar_file)
    expected = OUTSIDE_6249700 if _version(mmar_file) == "6249700" else set()
    assert set(bench.answer_outside_choices_ids) == expected
    assert set(bench.describe().get("answer_outside_choices_ids", [])) == expected
    outside_warnings = [m for m in messages if "none of their choices" in m]
    assert len(outside_warnings) == (1 if expected else 0)
    assert all(i in outside_warnings[0] for i in expected)
    assert {it.id for it in bench.items} >= expected  # scored, never dropped


def test_content_recognises_a_reserialised_or_predicted_copy(mmar_file: Path, tmp_path: Path) -> None:
    records = _records(mmar_file)
    for r in records:
        r["answer_prediction"] = "anything"
    version = _version(mmar_file)
    assert detect_version(records[::-1]) == version
    assert detect_version(records[:-1]) == "unknown"
    assert recognise(records)[0] is MMAR
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps(records), encoding="utf-8")
    bench, messages = _load(copy)
    assert bench.version == version and any("re-serialised" in m for m in messages)


def test_chance_is_the_registered_one_and_the_leaderboard_random_guess(mmar_file: Path) -> None:
    records = _records(mmar_file)
    assert chance_percent(records) == MMAR.chance[_version(mmar_file)]
    # The leaderboard's "random guess" 29.3 is one over the number of choices, averaged.
    assert round(100 * sum(1 / len(r["choices"]) for r in records) / len(records), 1) == 29.3


def _prediction_formats(r: dict, rng: random.Random) -> dict[str, str]:
    choices = r["choices"]
    wrong = [c for c in choices if c != r["answer"]] or choices
    letter = "ABCDEFGH"[choices.index(r["answer"])] if r["answer"] in choices else "A"
    return {
        "gold": r["answer"],
        "letter+gold": f"({letter}) {r['answer']}",
        "sentence": f"The answer is {r['answer']}.",
        "lower": r["answer"].lower(),
        "letter": letter,
        "echo all": " ".join(choices),
        "wrong": rng.choice(wrong),
        "gold+wrong": f"{r['answer']} or {rng.choice(wrong)}",
        "empty": "",
        "punctuation": f"**{r['answer']}**!",
        "random": rng.choice(choices),
    }


def test_scorer_matches_the_official_rule_item_by_item(mmar_file: Path) -> None:
    records = _records(mmar_file)
    rng = random.Random(0)
    formats = [_prediction_formats(r, rng) for r in records]
    for name in formats[0]:
        preds = [dict(r, answer_prediction=f[name]) for r, f in zip(records, formats, strict=True)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metrics, rows = score_records(preds, source=str(mmar_file))
        expected = [_official(r["answer"], r["answer_prediction"], r["choices"]) for r in preds]
        assert [row["correct"] for row in rows] == expected, name
        assert metrics["n"] == 1000 and metrics["n_correct"] == sum(expected), name
        assert metrics["benchmark"] == "mmar" and metrics["key"] == "answer_prediction"
        assert set(metrics["accuracy"]) == {*MMAR_MODALITIES, "avg"}
        assert sum(cell["n"] for cell in metrics["by_category"].values()) == 1000
        assert list(metrics["by_category"]) == ["Signal Layer", "Perception Layer", "Semantic Layer", "Cultural Layer"]
        if name == "gold":  # the multi-answer items are right when both answers are given, as the rule says
            assert metrics["accuracy"]["avg"] == 100.0
        if name in ("letter", "empty", "echo all"):
            assert metrics["n_correct"] < 20, name  # a bare letter or every choice at once almost never matches


def test_breakdowns_add_up(mmar_file: Path) -> None:
    records = _records(mmar_file)
    rows = [{"task": r["modality"], "category": r["category"], "sub_category": r["sub-category"],
             "correct": i % 3 == 0} for i, r in enumerate(records)]  # fmt: skip
    metrics = compute_metrics(rows, MMAR)
    assert sum(metrics["n_by_task"].values()) == 1000
    k = sum(round(metrics["accuracy"][m] * metrics["n_by_task"][m] / 100) for m in MMAR_MODALITIES)
    assert k == metrics["n_correct"] == sum(r["correct"] for r in rows)
    assert sum(c["n"] for c in metrics["by_sub_category"].values()) == 1000
    assert "by_difficulty" not in metrics


# --- small files the tests make -----------------------------------------------------------------------------------


def _rec(i: int, **over: object) -> dict:
    rec = {"id": f"m-{i}", "audio_path": f"./audio/m-{i}.wav", "question": "Which?", "choices": ["Owl", "Parrot"],
           "answer": "Parrot", "modality": MMAR_MODALITIES[i % 7], "category": "Semantic Layer",
           "sub-category": "Speaker Analysis"}  # fmt: skip
    rec.update(over)
    return rec


def test_audio_is_read_from_the_audio_folder(tmp_path: Path) -> None:
    (tmp_path / "audio").mkdir()
    for i in range(3):
        write_wav(tmp_path / "audio" / f"m-{i}.wav", np.zeros(1600, dtype=np.float32), 16000)
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(_rec(i)) + "\n" for i in range(4)), encoding="utf-8")
    with pytest.warns(UserWarning, match="no known MMAR version"):
        with pytest.raises(DataError, match=r"1 of the 4 audio clips missing.*folder that contains audio/.*m-3"):
            load_benchmark(path, tmp_path)
    with pytest.warns(UserWarning, match="no known MMAR version"):
        bench = load_benchmark(path, tmp_path, allow_missing_audio=True)
    assert [it.id for it in bench.items] == ["m-0", "m-1", "m-2"] and bench.missing_audio_ids == ["m-3"]
    assert bench.name == "mmar" and bench.version == "unknown" and bench.describe()["name"] == "mmar"


def test_a_file_of_no_registered_shape_names_the_shapes(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps([{"id": "x", "question": "q", "choices": ["a"], "answer": "a"}]), encoding="utf-8")
    with pytest.raises(DataError, match=r"other\.json.*no registered benchmark.*mmau-test-mini.*mmar"):
        load_benchmark(path, check_audio=False)
    # Naming the benchmark skips recognition, not validation: the record still needs MMAR's fields.
    with pytest.raises(DataError, match=r"other\.json.*x \(missing audio_path\)"):
        load_benchmark(path, check_audio=False, benchmark="mmar")


def test_registry_names_and_errors() -> None:
    assert set(BENCHMARKS) == {"mmau-test-mini", "mmar"}
    assert get_benchmark("mmar") is MMAR and MMAR.prediction_keys[0] == "answer_prediction"
    with pytest.raises(ValueError, match="mmau-test-mini, mmar"):
        get_benchmark("mmsu")
    res = subprocess.run([sys.executable, "-m", "data.benchmark_registry"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0 and "answer_prediction" in res.stdout and "6249700" in res.stdout


def test_the_evaluator_writes_the_official_key() -> None:
    from data.schema import Item
    from models.evaluate import _output_record

    item = Item("m-0", "/x.wav", "Which?", ("Owl", "Parrot"), "Parrot", task="sound", record=_rec(0))
    row = {"prediction": "Parrot", "raw_output": "<answer>Parrot</answer>"}
    rec = _output_record(item, row, MMAR)
    assert rec["answer_prediction"] == "Parrot" and "model_output" not in rec and rec["modality"] == "sound"
    mmau = _output_record(item, row, get_benchmark("mmau-test-mini"))
    assert mmau["model_output"] == mmau["model_prediction"] == "Parrot"


# --- the command line ---------------------------------------------------------------------------------------------


def test_cli_scores_mmar_jsonl_with_breakdowns(tmp_path: Path, mmar_file: Path) -> None:
    records = _records(mmar_file)
    for i, r in enumerate(records):
        r["answer_prediction"] = r["answer"] if i % 2 else r["choices"][-1]
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "m.json"
    res = subprocess.run([sys.executable, "-m", "data.score", str(pred), "--out", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    metrics = json.loads(out.read_text(encoding="utf-8"))
    assert metrics["benchmark"] == "mmar" and metrics["version"] == _version(mmar_file)
    assert metrics["key"] == "answer_prediction" and metrics["n"] == 1000
    assert "Cultural Layer" in res.stdout and "mix-sound-music-speech" in res.stdout
    expected = sum(_official(r["answer"], r["answer_prediction"], r["choices"]) for r in records)
    assert metrics["n_correct"] == expected
    outside = _version(mmar_file) == "6249700"
    assert (res.stderr.count("none of their choices") == 1) is outside
    assert set(metrics.get("answer_outside_choices_ids", [])) == (OUTSIDE_6249700 if outside else set())

    for r in records:
        r["model_output"] = r.pop("answer_prediction")
    pred.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "data.score", str(pred)], cwd=REPO, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert res.returncode == 2 and "answer_prediction" in res.stderr and "--key model_output" in res.stderr
