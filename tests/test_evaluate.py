"""The batched evaluator: MMAU-format outputs, batching that changes nothing, a killed run that resumes."""

from __future__ import annotations

import json

import pytest

from data.benchmark import load_benchmark, score_records
from data.schema import DataError
from models.evaluate import PARTIAL_NAME, DecodingConfig, evaluate
from models.qwen2_audio import build_tiny_model
from tests.helpers import TEST_WORDS, CountingModel, write_mmau_benchmark


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(seed=0, words=TEST_WORDS)


@pytest.fixture()
def bench(tmp_path):
    return load_benchmark(write_mmau_benchmark(tmp_path / "bench", n=10), version_label="unit")


def test_outputs_in_mmau_format_and_rescorable(tiny, bench, tmp_path):
    model, processor = tiny
    out = tmp_path / "eval"
    metrics = evaluate(model, processor, bench.items, out, decoding=DecodingConfig(batch_size=4, max_new_tokens=8),
                       benchmark={"version": bench.version}, progress=False)  # fmt: skip
    preds = json.loads((out / "predictions.json").read_text())
    assert [p["id"] for p in preds] == [i.id for i in bench.items]  # every item, in benchmark order
    for p in preds:
        assert p["model_output"] == p["model_prediction"]
        assert {"raw_output", "question", "choices", "answer", "task"} <= set(p)
    # The official rule applied to the stored files reproduces the evaluator's own numbers.
    rescored, _ = score_records(preds, key="model_output")
    assert rescored["accuracy"] == metrics["accuracy"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["n"] == 10 and saved["prompt_id"] == "p2" and saved["decoding"]["max_new_tokens"] == 8
    assert saved["benchmark"]["version"] == bench.version


def test_batching_and_padding_do_not_change_answers(tiny, bench, tmp_path):
    model, processor = tiny
    one = evaluate(model, processor, bench.items, tmp_path / "b1",
                   decoding=DecodingConfig(batch_size=1, max_new_tokens=8, prefetch=False), progress=False)  # fmt: skip
    many = evaluate(model, processor, bench.items, tmp_path / "b5",
                    decoding=DecodingConfig(batch_size=5, max_new_tokens=8), progress=False)  # fmt: skip
    raw1 = [p["raw_output"] for p in json.loads((tmp_path / "b1" / "predictions.json").read_text())]
    raw5 = [p["raw_output"] for p in json.loads((tmp_path / "b5" / "predictions.json").read_text())]
    assert raw1 == raw5
    assert one["accuracy"] == many["accuracy"]


def test_killed_evaluation_resumes_without_recomputing(tiny, bench, tmp_path):
    model, processor = tiny
    out = tmp_path / "eval"
    dec = DecodingConfig(batch_size=3, max_new_tokens=8, prefetch=False)
    with pytest.raises(KeyboardInterrupt):
        evaluate(CountingModel(model, fail_after=2), processor, bench.items, out, decoding=dec, progress=False)
    done = [json.loads(line) for line in (out / PARTIAL_NAME).read_text().splitlines()]
    assert len(done) == 6 and not (out / "metrics.json").exists()
    resumed = CountingModel(model)
    metrics = evaluate(resumed, processor, bench.items, out, decoding=dec, progress=False)
    assert resumed.rows == 4  # only the items the killed run had not finished
    assert metrics["n"] == 10 and metrics["n_resumed"] == 6
    fresh = evaluate(model, processor, bench.items, tmp_path / "fresh", decoding=dec, progress=False)
    assert fresh["accuracy"] == metrics["accuracy"]


def test_resume_with_other_settings_is_refused(tiny, bench, tmp_path):
    model, processor = tiny
    out = tmp_path / "eval"
    evaluate(model, processor, bench.items[:3], out, decoding=DecodingConfig(max_new_tokens=4), progress=False)
    with pytest.raises(DataError, match="different settings"):
        evaluate(model, processor, bench.items[:3], out, prompt_id="p3", progress=False)


def test_silent_audio_changes_outputs(tiny, bench, tmp_path):
    model, processor = tiny
    dec = DecodingConfig(batch_size=5, max_new_tokens=8)
    evaluate(model, processor, bench.items, tmp_path / "real", decoding=dec, progress=False)
    m = evaluate(model, processor, bench.items, tmp_path / "silent", decoding=dec, audio_mode="silent", progress=False)
    real = [p["raw_output"] for p in json.loads((tmp_path / "real" / "predictions.json").read_text())]
    silent = [p["raw_output"] for p in json.loads((tmp_path / "silent" / "predictions.json").read_text())]
    assert real != silent and m["audio_mode"] == "silent"


def test_duplicate_or_empty_items_are_errors(tiny, bench, tmp_path):
    model, processor = tiny
    with pytest.raises(DataError, match="duplicate"):
        evaluate(model, processor, bench.items[:2] * 2, tmp_path / "d", progress=False)
    with pytest.raises(DataError, match="no items"):
        evaluate(model, processor, [], tmp_path / "e", progress=False)


def test_feature_cache_featurises_once_and_changes_nothing(tiny, bench, tmp_path, monkeypatch):
    import models.evaluate as ev

    model, processor = tiny
    calls = []
    real = ev.featurize
    monkeypatch.setattr(ev, "featurize", lambda *a, **k: calls.append(1) or real(*a, **k))
    cache = ev.FeatureCache()
    dec = DecodingConfig(batch_size=4, max_new_tokens=6)
    first = evaluate(model, processor, bench.items, tmp_path / "a", decoding=dec, cache=cache, progress=False)
    n_first = len(calls)
    second = evaluate(model, processor, bench.items, tmp_path / "b", decoding=dec, cache=cache, progress=False)
    assert n_first == 3 and len(calls) == n_first  # 10 items in batches of 4; none featurised again
    assert cache.hits == 3 and first["accuracy"] == second["accuracy"]
    assert second["audio"]["n_loaded"] == 10  # audio statistics survive the cache


def test_speed_switches_change_no_answer(tiny, bench, tmp_path):
    model, processor = tiny
    runs = {}
    for name, kw in {"plain": {"valid_frame_encoder": False}, "fast": {"valid_frame_encoder": True},
                     "static": {"static_cache": True}}.items():  # fmt: skip
        evaluate(model, processor, bench.items, tmp_path / name, progress=False,
                 decoding=DecodingConfig(batch_size=4, max_new_tokens=8, **kw))  # fmt: skip
        runs[name] = [p["raw_output"] for p in json.loads((tmp_path / name / "predictions.json").read_text())]
    assert runs["plain"] == runs["fast"] == runs["static"]


def test_a_clip_too_short_for_an_audio_token_is_padded_and_counted_in_metrics(tiny, tmp_path, capsys):
    import numpy as np

    from data.audio import write_wav

    model, processor = tiny
    path = write_mmau_benchmark(tmp_path / "bench", n=4)
    records = json.loads(path.read_text())
    write_wav(tmp_path / "bench" / records[1]["audio_id"], np.zeros(160, dtype=np.float32))  # 0.01 s
    bench = load_benchmark(path, version_label="unit")
    out = tmp_path / "eval"
    metrics = evaluate(model, processor, bench.items, out, decoding=DecodingConfig(batch_size=4, max_new_tokens=4),
                       progress=False)  # fmt: skip
    assert metrics["n"] == 4  # the item is evaluated, not skipped
    saved = json.loads((out / "metrics.json").read_text())["audio"]
    assert saved["n_padded_short"] == 1 and saved["padded_short_paths"][0].endswith(records[1]["audio_id"][2:])
    assert "1 clips shorter than 321 samples" in capsys.readouterr().out
