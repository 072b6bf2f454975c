"""Benchmarks and AVQA read from ``datasets`` datasets in each known Hub copy's schema (data/hub_copies.py), made
here as small local parquet files and saved dataset directories: the same items, clip bytes and predictions as
from a folder, and the registered version recognised through a copy. Nothing downloads.

    .venv/bin/pytest tests/test_hub_copies.py -q
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from data.avqa import load_avqa
from data.benchmark import load_benchmark
from data.hub_copies import is_dataset_source, materialise, recognise_copy
from data.schema import DataError
from tests.helpers import write_mmau_benchmark

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
LETTERS = "ABCDEFGH"


def _dataset(columns: dict[str, list[Any]], audio_column: str, sampling_rate: int | None = None) -> Any:
    """A dataset with an Audio column holding the given bytes (cast from a struct: encoding needs no torchcodec)."""
    from datasets import Audio, Dataset

    return Dataset.from_dict(columns).cast_column(audio_column, Audio(sampling_rate=sampling_rate))


def _save(ds: Any, where: Path, form: str) -> Path:
    if form == "parquet":
        ds.to_parquet(str(where.with_suffix(".parquet")))
        return where.with_suffix(".parquet")
    ds.save_to_disk(str(where))
    return where


def _lmms_columns(records: list[dict], clips: list[bytes]) -> dict[str, list[Any]]:
    fields = ("id", "question", "answer", "dataset", "task", "split", "category", "sub-category", "difficulty")
    cols: dict[str, list[Any]] = {k: [r.get(k) for r in records] for k in fields}
    cols["category"] = [json.dumps(c) if isinstance(c, list) else c for c in cols["category"]]
    cols["choices"] = [json.dumps(r["choices"]) for r in records]
    cols["audio"] = [{"bytes": b, "path": f"{r['id']}.wav"} for r, b in zip(records, clips, strict=True)]
    return cols


def _gamma_columns(records: list[dict], clips: list[bytes]) -> dict[str, list[Any]]:
    meta = ("id", "dataset", "task", "split", "category", "sub-category", "difficulty")
    return {
        "context": [{"bytes": b, "path": None} for b in clips],
        "instruction": [r["question"] for r in records],
        "choices": [r["choices"] for r in records],
        "answer": [f"({LETTERS[r['choices'].index(r['answer'])]}) {r['answer']}" for r in records],
        "other_attributes": [json.dumps({k: r.get(k) for k in meta}) for r in records],
    }


def _mmar_columns(records: list[dict], clips: list[bytes]) -> dict[str, list[Any]]:
    fields = ("id", "question", "choices", "answer", "modality", "category", "language", "source")
    cols: dict[str, list[Any]] = {k: [r.get(k) for r in records] for k in fields}
    cols["subcategory"] = [r["sub-category"] for r in records]  # one copy's spelling; the other keeps the hyphen
    cols["audio"] = [{"bytes": b, "path": f"{r['id']}.wav"} for r, b in zip(records, clips, strict=True)]
    return cols


MMAU_COPIES = {"lmms-lab/mmau": _lmms_columns, "gamma-lab-umd/MMAU-test-mini": _gamma_columns}


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


@pytest.fixture()
def folder(tmp_path: Path) -> tuple[Path, list[dict], list[bytes]]:
    path = write_mmau_benchmark(tmp_path / "folder", n=6)
    records = json.loads(path.read_text())
    clips = [(tmp_path / "folder" / r["audio_id"]).read_bytes() for r in records]
    return path, records, clips


@pytest.mark.parametrize("form", ["parquet", "arrow"])
@pytest.mark.parametrize("copy", sorted(MMAU_COPIES))
def test_an_mmau_copy_gives_the_folder_items_and_clip_bytes(copy, form, folder, tmp_path):
    path, records, clips = folder
    source = _save(_dataset(MMAU_COPIES[copy](records, clips), "context" if "gamma" in copy else "audio",
                            192000 if "lmms" in copy else None), tmp_path / "ds", form)  # fmt: skip
    assert is_dataset_source(source)
    made = materialise(source, split=None, cache_dir=tmp_path / "cache")
    assert made.schema.name == copy and made.n_rows == 6
    from_copy = _quiet(load_benchmark, made.records_path, made.audio_dir)
    from_folder = _quiet(load_benchmark, path)
    fields = ("id", "question", "choices", "answer", "task", "difficulty", "sub_category", "category")
    assert [[getattr(i, f) for f in fields] for i in from_copy.items] == [
        [getattr(i, f) for f in fields] for i in from_folder.items
    ]
    assert [Path(i.audio_path).read_bytes() for i in from_copy.items] == clips  # the bytes unchanged
    assert from_copy.version == from_folder.version == "unknown"


def test_a_rerun_reuses_the_written_clips(folder, tmp_path):
    path, records, clips = folder
    source = _save(_dataset(_lmms_columns(records, clips), "audio"), tmp_path / "ds", "parquet")
    first = materialise(source, split=None, cache_dir=tmp_path / "cache")
    stamps = {p: p.stat().st_mtime_ns for p in (first.audio_dir / "test-mini-audios").iterdir()}
    second = materialise(source, split=None, cache_dir=tmp_path / "cache")
    assert second.records_path == first.records_path
    assert {p: p.stat().st_mtime_ns for p in (second.audio_dir / "test-mini-audios").iterdir()} == stamps


def _real(name: str) -> list[dict]:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"shared file missing: {path}")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("copy", "name", "version"),
    [("lmms-lab/mmau", "mmau/mmau-test-mini.a5cd89a.json", "a5cd89a"),
     ("gamma-lab-umd/MMAU-test-mini", "mmau/mmau-test-mini.f0a4a97.json", "f0a4a97"),
     ("mmar-with-audio", "mmar/MMAR-meta.6249700.json", "6249700")],
)  # fmt: skip
def test_a_copy_of_a_registered_version_is_recognised_by_content(copy, name, version, folder, tmp_path):
    records = _real(name)
    clip = folder[2][0]  # the questions are real, the clips stand-ins
    columns = {"lmms-lab/mmau": _lmms_columns, "gamma-lab-umd/MMAU-test-mini": _gamma_columns,
               "mmar-with-audio": _mmar_columns}[copy](records, [clip] * len(records))  # fmt: skip
    audio = "context" if "gamma" in copy else "audio"
    source = _save(_dataset(columns, audio), tmp_path / "ds", "parquet")
    made = materialise(source, split=None, cache_dir=tmp_path / "cache")
    with pytest.warns(UserWarning, match=rf"match .*{version}"):
        bench = load_benchmark(made.records_path, made.audio_dir, check_audio=False)
    assert bench.version == version and len(bench.items) == len(records)
    if version == "6249700":
        assert len(bench.answer_outside_choices_ids) == 6  # the multi-answer items survive the copy


def test_an_avqa_copy_gives_the_folder_items(folder, tmp_path):
    _, records, clips = folder
    rows = {"id": [], "question": [], "answer": [], "audio": []}
    folder_rows = []
    for i, (r, clip) in enumerate(zip(records, clips, strict=True)):
        listed = "\n".join(f"{LETTERS[k]}. {c}" for k, c in enumerate(r["choices"]))
        rows["id"].append(i)
        rows["question"].append(f"What is in the video? {r['question']}\nChoices:\n{listed}")
        rows["answer"].append(f"{LETTERS[r['choices'].index(r['answer'])]}. {r['answer']}")
        rows["audio"].append({"bytes": clip, "path": f"{i}.wav"})
        folder_rows.append({"id": i, "question_text": f"What is in the video? {r['question']}",
                            "multi_choice": r["choices"], "answer": r["choices"].index(r["answer"]),
                            "audio_path": str(folder[0].parent / r["audio_id"])})  # fmt: skip
    source = _save(_dataset(rows, "audio"), tmp_path / "avqa", "arrow")
    made = materialise(source, split=None, cache_dir=tmp_path / "cache")
    assert made.schema.name == "gijs/avqa-processed"
    plain = tmp_path / "plain.jsonl"
    plain.write_text("".join(json.dumps(r) + "\n" for r in folder_rows))
    from_copy, from_folder = _quiet(load_avqa, made.records_path), _quiet(load_avqa, plain)
    fields = ("id", "question", "choices", "answer")
    assert [[getattr(i, f) for f in fields] for i in from_copy.items] == [
        [getattr(i, f) for f in fields] for i in from_folder.items
    ]
    assert "audio" in from_copy.items[0].question  # the usual video -> audio rewrite applies
    assert [Path(i.audio_path).read_bytes() for i in from_copy.items] == clips


def test_the_same_predictions_from_a_folder_and_from_a_dataset(folder, tmp_path):
    from models.evaluate import DecodingConfig, evaluate
    from models.qwen2_audio import build_tiny_model
    from tests.helpers import TEST_WORDS

    path, records, clips = folder
    source = _save(_dataset(_gamma_columns(records, clips), "context"), tmp_path / "ds", "parquet")
    made = materialise(source, split=None, cache_dir=tmp_path / "cache")
    model, processor = build_tiny_model(seed=0, words=TEST_WORDS)
    decoding = DecodingConfig(batch_size=3, max_new_tokens=6)
    outputs = []
    for name, bench in (("folder", _quiet(load_benchmark, path)),
                        ("copy", _quiet(load_benchmark, made.records_path, made.audio_dir))):  # fmt: skip
        evaluate(model, processor, bench.items, tmp_path / name, decoding=decoding, progress=False)
        preds = json.loads((tmp_path / name / "predictions.json").read_text())
        outputs.append([(p["id"], p["raw_output"]) for p in preds])
    assert outputs[0] == outputs[1] and len(outputs[0]) == 6


def test_unknown_columns_and_bad_rows_are_named(tmp_path, folder):
    ds = _dataset({"clip": [{"bytes": folder[2][0], "path": "a.wav"}], "text": ["q"]}, "clip")
    with pytest.raises(DataError, match=r"other\.parquet.*columns clip, text match no known copy.*lmms-lab/mmau"):
        materialise(_save(ds, tmp_path / "other", "parquet"), split=None, cache_dir=tmp_path / "c")
    with pytest.raises(DataError, match="match no known copy"):
        recognise_copy(["audio", "question"], "x")
    bad = _dataset({"audio": [{"bytes": folder[2][0], "path": "a.wav"}], "question": ["no choices here"],
                    "answer": ["A. x"]}, "audio")  # fmt: skip
    with pytest.raises(DataError, match=r"row 0: the question has no .*Choices"):
        materialise(_save(bad, tmp_path / "bad", "parquet"), split=None, cache_dir=tmp_path / "c")


def test_what_counts_as_a_dataset_source(tmp_path, folder):
    assert is_dataset_source("lmms-lab/mmau") and is_dataset_source(tmp_path / "x.parquet")
    assert not is_dataset_source(folder[0])  # a question file
    assert not is_dataset_source(tmp_path)  # a plain folder
    saved = _save(_dataset(_lmms_columns(folder[1], folder[2]), "audio"), tmp_path / "saved", "arrow")
    assert is_dataset_source(saved)


def test_the_eval_command_takes_a_dataset(folder, tmp_path, capsys):
    from experiments.__main__ import main

    path, records, clips = folder
    source = _save(_dataset(_lmms_columns(records, clips), "audio"), tmp_path / "ds", "arrow")
    args = ["eval", "--model", "tiny", "--benchmark", str(source), "--max-new-tokens", "4"]
    assert main([*args, "--output-dir", str(tmp_path / "e")]) == 0
    assert "read as lmms-lab/mmau (6 rows)" in capsys.readouterr().out
    preds = json.loads((tmp_path / "e" / "predictions.json").read_text())
    assert [p["id"] for p in preds] == [r["id"] for r in records] and all("model_output" in p for p in preds)


def _avqa_rows(records: list[dict], clips: list[bytes]) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {"id": [], "question": [], "answer": [], "audio": []}
    for i, (r, clip) in enumerate(zip(records, clips, strict=True)):
        listed = "\n".join(f"{LETTERS[k]}. {c}" for k, c in enumerate(r["choices"]))
        rows["id"].append(f"q{i}")
        rows["question"].append(f"{r['question']}\nChoices:\n{listed}")
        rows["answer"].append(f"{LETTERS[r['choices'].index(r['answer'])]}. {r['answer']}")
        rows["audio"].append({"bytes": clip, "path": f"q{i}.wav"})
    return rows


def test_the_paper_profile_reads_its_data_from_datasets(folder, tmp_path, monkeypatch):
    """MMAU_JSON and AVQA_TRAIN / AVQA_VAL as ID_OR_PATH[:SPLIT]: a split of a saved DatasetDict included."""
    from datasets import DatasetDict

    from experiments.profiles import get_profile

    path, records, clips = folder
    mmau = _save(_dataset(_lmms_columns(records, clips), "audio"), tmp_path / "mmau", "parquet")
    avqa = tmp_path / "avqa"
    DatasetDict({"train": _dataset(_avqa_rows(records, clips), "audio"),
                 "val": _dataset(_avqa_rows(records[:2], clips[:2]), "audio")}).save_to_disk(str(avqa))  # fmt: skip
    monkeypatch.setenv("R1AQA_OUTPUTS", str(tmp_path / "out"))
    monkeypatch.setenv("MMAU_JSON", str(mmau))
    monkeypatch.setenv("AVQA_TRAIN", f"{avqa}:train")
    monkeypatch.setenv("AVQA_VAL", f"{avqa}:val")
    data = get_profile("paper").data()
    assert str(data.test_json).startswith(str(tmp_path / "out" / "cache" / "hub"))
    bench = _quiet(load_benchmark, data.test_json, data.test_audio_dir)
    assert [i.id for i in bench.items] == [r["id"] for r in records]
    train, val = _quiet(load_avqa, data.train, data.train_audio_dir), _quiet(load_avqa, data.val, data.val_audio_dir)
    assert len(train.items) == 6 and len(val.items) == 2 and train.items[0].answer == records[0]["answer"]
    monkeypatch.setenv("AVQA_VAL", f"{avqa}:test")
    with pytest.raises(DataError, match=r"no split 'test'; it has train, val"):
        get_profile("paper").data()
