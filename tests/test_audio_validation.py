"""Audio is validated when a data set is loaded, not when its batch comes: data.audio.probe_audio(_files), the
MMAU and AVQA loaders, load_audio's own NaN check, and an evaluation that never starts on a corrupt benchmark.

    .venv/bin/pytest tests/test_audio_validation.py -q
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data.audio import AudioProbe, load_audio, probe_audio, probe_audio_files, write_wav
from data.avqa import load_avqa
from data.benchmark import load_benchmark
from data.io import read_json
from data.schema import DataError
from models.evaluate import PARTIAL_NAME, DecodingConfig, evaluate
from models.qwen2_audio import build_tiny_model
from tests.helpers import TEST_WORDS, tone, write_mmau_benchmark

SR = 16000


def float_wav(path: Path, bad: float | None = None, n: int = 8000, at: int = 4321) -> Path:
    """A float32 wav (a tone), with ``bad`` (NaN, +Inf...) written at sample ``at`` when given."""
    wave = tone(440, n / SR)
    if bad is not None:
        wave[at] = bad
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, SR, subtype="FLOAT")
    return path


def garbage_wav(path: Path) -> Path:
    """A valid RIFF/WAVE start, then garbage: no fmt or data chunk can be found."""
    rng = np.random.default_rng(0)
    path.write_bytes(b"RIFF" + (4000).to_bytes(4, "little") + b"WAVE" + rng.integers(0, 256, 4000, np.uint8).tobytes())
    return path


def truncated_header_wav(path: Path) -> Path:
    good = write_wav(path.with_name("tmp-good.wav"), tone(440, 0.5)).read_bytes()
    path.write_bytes(good[:30])  # stops inside the fmt chunk
    return path


def truncated_data_wav(path: Path) -> Path:
    good = write_wav(path.with_name("tmp-good.wav"), tone(440, 1.0)).read_bytes()
    path.write_bytes(good[: len(good) // 3])  # the header still declares 1 s of data
    return path


CORRUPT = {"garbage": garbage_wav, "truncated_header": truncated_header_wav, "truncated_data": truncated_data_wav}


# --- probe_audio ----------------------------------------------------------------------------------------------------


def test_good_int16_wav_passes_from_its_header(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "good.wav", tone(440, 0.75))
    probe = probe_audio(path)
    assert isinstance(probe, AudioProbe)
    assert probe == AudioProbe(str(path), SR, 12000, 1, 0.75, "PCM_16", "WAV", samples_checked=False)


def test_good_float_wav_passes_with_every_sample_read(tmp_path: Path) -> None:
    path = tmp_path / "good_float.wav"
    sf.write(str(path), np.stack([tone(440, 0.5, sr=8000)] * 2, axis=1), 8000, subtype="FLOAT")
    probe = probe_audio(path)
    assert (probe.sample_rate, probe.frames, probe.channels, probe.subtype) == (8000, 4000, 2, "FLOAT")
    assert probe.duration == pytest.approx(0.5) and probe.samples_checked


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "+inf", "-inf"])
def test_nonfinite_float_wav_is_rejected_by_probe_and_load_audio(tmp_path: Path, bad: float) -> None:
    path = float_wav(tmp_path / "clip.wav", bad)
    with pytest.raises(DataError) as e:
        probe_audio(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: 1 of 8000 samples") and "NaN or infinite" in msg
    assert "16-bit PCM" in msg and "re-extract" in msg
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*NaN or infinite"):
        load_audio(path)


def test_load_audio_checks_only_what_it_reads(tmp_path: Path) -> None:
    # A NaN after the kept window is not read (and not seen by the model); one inside it is an error.
    late = float_wav(tmp_path / "late.wav", float("nan"), n=2 * SR, at=SR + 100)
    assert load_audio(late, max_seconds=0.5).shape == (SR // 2,)
    with pytest.raises(DataError, match="late.wav"):
        load_audio(late, max_seconds=None)


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupt_wav_is_rejected_naming_the_file(tmp_path: Path, kind: str) -> None:
    path = CORRUPT[kind](tmp_path / f"{kind}.wav")
    with pytest.raises(DataError) as e:
        probe_audio(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ")
    assert ("truncated" in msg and "re-extract" in msg) if kind == "truncated_data" else "ffmpeg -i" in msg


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        probe_audio(tmp_path / "gone.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        probe_audio(tmp_path / "empty.wav")
    sf.write(str(tmp_path / "noframes.wav"), np.zeros(0, np.float32), SR, subtype="PCM_16")
    with pytest.raises(DataError, match="no frames"):
        probe_audio(tmp_path / "noframes.wav")


def test_probe_audio_files_splits_good_and_bad_quietly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = [str(write_wav(tmp_path / f"g{i}.wav", tone(300, 0.2))) for i in range(5)]
    nan = str(float_wav(tmp_path / "nan.wav", float("nan")))
    corrupt = str(garbage_wav(tmp_path / "bad.wav"))
    paths = [good[0], nan, *good[1:], corrupt, good[0]]  # a path given twice is probed once
    ok, bad = probe_audio_files(paths, workers=3)
    assert list(ok) == good and list(bad) == [nan, corrupt]
    assert all(p.duration == pytest.approx(0.2) for p in ok.values())
    assert bad[nan].startswith(nan) and "NaN" in bad[nan] and bad[corrupt].startswith(corrupt)
    assert capsys.readouterr().err == ""  # no progress bar for a small set
    assert probe_audio_files(paths, workers=1) == (ok, bad)


# --- loaders --------------------------------------------------------------------------------------------------------


def test_mmau_nan_clip_fails_the_load_naming_id_and_path(tmp_path: Path) -> None:
    bench = write_mmau_benchmark(tmp_path / "b", n=4)
    nan = float_wav(tmp_path / "b" / "test-mini-audios" / "item002.wav", float("nan"))
    with pytest.raises(DataError) as e:
        load_benchmark(bench, version_label="unit")
    msg = str(e.value)
    assert msg.startswith(f"{bench}: 1 of 4 items have an unusable audio clip")
    assert f"id item002: {nan}: 1 of 8000 samples" in msg and "NaN" in msg
    assert "item001" not in msg and "item003" not in msg
    # Without the check the same file loads (the evaluator's load_audio still refuses the clip).
    assert len(load_benchmark(bench, version_label="unit", check_audio=False).items) == 4


def test_mmau_corrupt_clip_among_100_fails_the_load(tmp_path: Path) -> None:
    bench = write_mmau_benchmark(tmp_path / "b", n=100)
    bad = garbage_wav(tmp_path / "b" / "test-mini-audios" / "item073.wav")
    with pytest.raises(DataError) as e:
        load_benchmark(bench, version_label="unit")
    msg = str(e.value)
    assert "1 of 100 items" in msg and f"id item073: {bad}: cannot read the audio header" in msg


def test_mmau_lists_ten_bad_clips_then_counts(tmp_path: Path) -> None:
    bench = write_mmau_benchmark(tmp_path / "b", n=14)
    for i in range(12):
        truncated_data_wav(tmp_path / "b" / "test-mini-audios" / f"item{i:03d}.wav")
    with pytest.raises(DataError) as e:
        load_benchmark(bench, version_label="unit")
    msg = str(e.value)
    assert "12 of 14 items" in msg and "item009" in msg and "item010" not in msg and "... and 2 more" in msg


def test_mmau_missing_clips_keep_their_handling(tmp_path: Path) -> None:
    bench = write_mmau_benchmark(tmp_path / "b", n=4)
    (tmp_path / "b" / "test-mini-audios" / "item001.wav").unlink()
    with pytest.raises(DataError, match="missing"):
        load_benchmark(bench, version_label="unit")
    loaded = load_benchmark(bench, version_label="unit", allow_missing_audio=True)
    assert loaded.missing_audio_ids == ["item001"] and len(loaded.items) == 3


def _avqa(tmp_path: Path, n: int = 5) -> tuple[Path, Path]:
    audio = tmp_path / "audio"
    recs = []
    for i in range(n):
        recs.append({"id": i, "video_name": f"v{i}", "question_text": "What is in the video?",
                     "multi_choice": ["a dog", "a cat"], "answer": 0})  # fmt: skip
        write_wav(audio / f"v{i}.wav", tone(200 + 50 * i, 0.3))
    recs.append({"id": n, "video_name": "v1", "question_text": "Is it loud?", "multi_choice": ["yes", "no"],
                 "answer": 1})  # fmt: skip  # a second question on clip v1
    path = tmp_path / "train_qa.json"
    path.write_text(json.dumps(recs))
    return path, audio


def test_avqa_skips_bad_clips_and_reports_why(tmp_path: Path) -> None:
    path, audio = _avqa(tmp_path)
    nan = float_wav(audio / "v1.wav", float("inf"))
    corrupt = truncated_header_wav(audio / "v3.wav")
    (audio / "v4.wav").unlink()
    split = load_avqa(path, audio, report_path=tmp_path / "report.json")
    assert [it.id for it in split.items] == ["0", "2"]
    assert split.skipped_missing_audio == ["4"]
    assert list(split.skipped_bad_audio) == ["1", "3", "5"]  # 5 asks about the same clip as 1
    why = split.skipped_bad_audio["1"]
    assert why.startswith(f"{nan}: 1 of 8000 samples") and "NaN or infinite" in why
    assert split.skipped_bad_audio["3"].startswith(f"{corrupt}: cannot read the audio header")
    report = read_json(tmp_path / "report.json")
    assert report["n_skipped_bad_audio"] == 3 and report["skipped_bad_audio"] == split.skipped_bad_audio
    assert report["skipped_ids"] == ["4"] and report["n_items"] == 2


def test_avqa_bad_audio_error_mode(tmp_path: Path) -> None:
    path, audio = _avqa(tmp_path)
    bad = garbage_wav(audio / "v2.wav")
    with pytest.raises(DataError) as e:
        load_avqa(path, audio, bad_audio="error")
    msg = str(e.value)
    assert msg.startswith(f"{path}: 1 of 6 records") and f"id 2: {bad}" in msg and "bad_audio='skip'" in msg
    with pytest.raises(ValueError, match="bad_audio"):
        load_avqa(path, audio, bad_audio="ignore")  # type: ignore[arg-type]


# --- an evaluation never starts on a benchmark with a corrupt clip ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(seed=0, words=TEST_WORDS)


class NoGenerate:
    """Wraps a model; any call to generate fails the test."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, **kw):
        self.calls += 1
        raise AssertionError("generate was called: the evaluation started despite a corrupt clip")


def _late_corrupt_benchmark(tmp_path: Path) -> tuple[Path, Path]:
    bench = write_mmau_benchmark(tmp_path / "b", n=100)
    # Its header cannot be read: the old length probe gave it 0 s, so it was sorted into the very last batch.
    return bench, garbage_wav(tmp_path / "b" / "test-mini-audios" / "item099.wav")


def _partial_lines(out: Path) -> int:
    partial = out / PARTIAL_NAME
    return len(partial.read_text().splitlines()) if partial.exists() else 0


def test_evaluate_checkpoint_fails_before_generating(tiny, tmp_path: Path) -> None:
    from experiments.runner import evaluate_checkpoint
    from experiments.spec import EvalSpec

    model, processor = tiny
    bench, bad = _late_corrupt_benchmark(tmp_path)
    wrapped, out = NoGenerate(model), tmp_path / "eval"
    with pytest.raises(DataError) as e:
        evaluate_checkpoint("tiny", bench, None, out, eval_spec=EvalSpec(batch_size=4, max_new_tokens=4),
                            version_label="unit", progress=False, loaded=(wrapped, processor))  # fmt: skip
    assert f"id item099: {bad}" in str(e.value)
    assert wrapped.calls == 0 and _partial_lines(out) == 0


def test_evaluate_refuses_a_corrupt_clip_while_planning(tiny, tmp_path: Path) -> None:
    # Items that bypassed the loader's check: the evaluator's length probe no longer swallows the decode error.
    model, processor = tiny
    bench, bad = _late_corrupt_benchmark(tmp_path)
    items = load_benchmark(bench, version_label="unit", check_audio=False).items
    wrapped, out = NoGenerate(model), tmp_path / "eval"
    with pytest.raises(DataError, match=re.escape(str(bad))):
        evaluate(wrapped, processor, items, out, decoding=DecodingConfig(batch_size=4, max_new_tokens=4),
                 progress=False)  # fmt: skip
    assert wrapped.calls == 0 and _partial_lines(out) == 0
