"""Tests for data/audio.py: formats, channel mixing, resampling, the 30 s cut and the errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data.audio import SAMPLE_RATE, AudioStats, load_audio, write_wav
from data.schema import DataError


def sine(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_freq(wave: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sr)[np.argmax(spectrum)])


@pytest.mark.parametrize(("fmt", "subtype"), [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_formats_load_as_float32_mono(tmp_path: Path, fmt: str, subtype: str) -> None:
    src = sine(440, 1.0, SAMPLE_RATE)
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(str(path), src, SAMPLE_RATE, format=fmt, subtype=subtype)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - len(src)) <= 1
    if fmt == "OGG":  # lossy: compare the spectrum, not the samples
        assert abs(dominant_freq(wave, SAMPLE_RATE) - 440) < 3
    else:
        np.testing.assert_allclose(wave, src, atol=1e-3)


def test_stereo_mean_vs_first(tmp_path: Path) -> None:
    left = sine(440, 0.5, SAMPLE_RATE, amp=0.5)
    right = np.full_like(left, 0.25)
    path = tmp_path / "stereo.flac"
    sf.write(str(path), np.stack([left, right], axis=1), SAMPLE_RATE)
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-3)
    np.testing.assert_allclose(load_audio(path, channel="first"), left, atol=1e-3)
    with pytest.raises(ValueError, match="channel"):
        load_audio(path, channel="last")  # type: ignore[arg-type]


@pytest.mark.parametrize("in_rate", [8000, 44100])
def test_resampling_keeps_length_and_frequency(tmp_path: Path, in_rate: int) -> None:
    path = write_wav(tmp_path / f"sr{in_rate}.wav", sine(440, 2.0, in_rate), in_rate)
    stats = AudioStats()
    wave = load_audio(path, stats=stats)
    assert wave.dtype == np.float32
    assert abs(len(wave) - 2 * SAMPLE_RATE) <= 2
    assert abs(dominant_freq(wave, SAMPLE_RATE) - 440) < 2
    assert 0.45 < np.abs(wave[1000:-1000]).max() < 0.55  # amplitude survives the filter
    assert stats.n_resampled == 1 and stats.n_cut == 0


def test_no_resampling_at_16k(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", sine(440, 0.5, SAMPLE_RATE))
    stats = AudioStats()
    load_audio(path, stats=stats)
    assert stats.n_loaded == 1 and stats.n_resampled == 0


def test_long_clip_is_cut_and_counted(tmp_path: Path) -> None:
    long16 = write_wav(tmp_path / "long16k.wav", sine(440, 40.0, SAMPLE_RATE))
    long8 = write_wav(tmp_path / "long8k.wav", sine(440, 40.0, 8000), 8000)
    short = write_wav(tmp_path / "short.wav", sine(440, 1.0, SAMPLE_RATE))
    stats = AudioStats()
    assert len(load_audio(long16, stats=stats)) == 30 * SAMPLE_RATE
    assert len(load_audio(long8, stats=stats)) == 30 * SAMPLE_RATE
    assert len(load_audio(short, stats=stats)) == SAMPLE_RATE
    assert (stats.n_loaded, stats.n_cut, stats.n_resampled) == (3, 2, 1)
    assert stats.cut == [str(long16), str(long8)]
    assert stats.summary() == "2 of 3 clips were cut to 30 s"
    assert stats.as_dict()["cut_paths_truncated"] is False
    assert len(load_audio(long16, max_seconds=None)) == 40 * SAMPLE_RATE
    assert len(load_audio(long16, max_seconds=2.5)) == int(2.5 * SAMPLE_RATE)


def test_clip_exactly_at_limit_is_not_cut(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "two.wav", sine(440, 2.0, SAMPLE_RATE))
    stats = AudioStats()
    assert len(load_audio(path, max_seconds=2.0, stats=stats)) == 2 * SAMPLE_RATE
    assert stats.n_cut == 0


def test_cut_list_is_capped(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "c.wav", sine(440, 0.2, SAMPLE_RATE))
    stats = AudioStats(max_listed=2)
    for _ in range(5):
        load_audio(path, max_seconds=0.1, stats=stats)
    assert stats.n_cut == 5 and len(stats.cut) == 2
    assert stats.as_dict()["cut_paths_truncated"] is True


def test_write_wav_is_pcm16_and_makes_dirs(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "deep" / "er" / "x.wav", np.array([0.0, 2.0, -2.0, 0.5], dtype=np.float32))
    info = sf.info(str(path))
    assert (info.subtype, info.samplerate, info.channels, info.frames) == ("PCM_16", SAMPLE_RATE, 1, 4)
    data, _ = sf.read(str(path), dtype="float32")
    assert data[1] == pytest.approx(1.0, abs=1e-4) and data[2] == pytest.approx(-1.0, abs=1e-4)  # clipped


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(DataError, match="not found") as e:
        load_audio(path)
    assert str(path) in str(e.value) and "ffmpeg" in str(e.value)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="empty") as e:
        load_audio(path)
    assert str(path) in str(e.value)


def test_zero_sample_file(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "nosamples.wav", np.zeros(0, dtype=np.float32))
    with pytest.raises(DataError, match="empty") as e:
        load_audio(path)
    assert str(path) in str(e.value)


def test_garbage_bytes(tmp_path: Path) -> None:
    path = tmp_path / "garbage.flac"
    path.write_bytes(b"this is not audio at all" * 100)
    with pytest.raises(DataError, match="cannot decode") as e:
        load_audio(path)
    msg = str(e.value)
    assert str(path) in msg and "ffmpeg -i" in msg and "-ar 16000 -ac 1" in msg


def test_a_clip_shorter_than_one_audio_token_is_padded_and_counted(tmp_path: Path) -> None:
    """Below MIN_AUDIO_SAMPLES the processor gives no audio token at all; padded, the clip gets exactly one."""
    from data.audio import MIN_AUDIO_SAMPLES
    from models.features import featurize
    from models.qwen2_audio import build_tiny_processor
    from tests.helpers import TEST_WORDS

    processor = build_tiny_processor(words=TEST_WORDS)
    audio_id = processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")

    def tokens(wave: np.ndarray) -> int:
        batch = featurize(processor, ["<|audio_bos|><|AUDIO|><|audio_eos|>"], [wave])
        return int((batch["input_ids"] == audio_id).sum())

    assert tokens(np.zeros(MIN_AUDIO_SAMPLES - 1, dtype=np.float32)) == 0  # why the minimum is what it is
    assert tokens(np.zeros(MIN_AUDIO_SAMPLES, dtype=np.float32)) == 1
    stats = AudioStats()
    short = write_wav(tmp_path / "short.wav", np.full(160, 0.5, dtype=np.float32))  # 0.01 s
    wave = load_audio(short, stats=stats)
    assert wave.shape == (MIN_AUDIO_SAMPLES,) and tokens(wave) == 1
    assert np.allclose(wave[:160], 0.5, atol=1e-4) and not wave[160:].any()  # the clip, then silence
    assert stats.n_padded == 1 and stats.as_dict()["padded_short_paths"] == [str(short)]
    load_audio(write_wav(tmp_path / "ok.wav", np.zeros(MIN_AUDIO_SAMPLES, dtype=np.float32)), stats=stats)
    assert stats.n_padded == 1  # a clip of exactly the minimum is left alone
