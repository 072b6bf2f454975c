"""Audio loading for every source: one float32 mono 16 kHz waveform per clip, cut to the model's 30 s window.

Usage::

    from data.audio import AudioStats, load_audio

    stats = AudioStats()
    wave = load_audio("clip.flac", stats=stats)  # np.float32, shape (n,), 16 kHz, at most 30 s
    print(stats.summary())  # "1 of 1 clips were cut to 30 s" (or "0 of 1 ...")

Files are read with soundfile (wav, flac, ogg and whatever else libsndfile decodes) and resampled with soxr when
they are not already at 16 kHz. Differences from the original R1-AQA code, which used torchaudio and kept channel 0:
channels are averaged by default (``channel="first"`` reproduces the original), and clips are cut here to
``max_seconds`` (the Qwen2-Audio processor would cut them to 30 s anyway; cutting early saves resampling work and
lets :class:`AudioStats` report how many clips lost audio). Missing, empty or undecodable files raise
:class:`~data.schema.DataError` naming the path and a fix.

``write_wav`` writes 16-bit PCM files; the tests and the synthetic data generator use it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
import soxr

from data.schema import DataError

SAMPLE_RATE = 16000

__all__ = ["SAMPLE_RATE", "AudioStats", "load_audio", "write_wav"]


@dataclass
class AudioStats:
    """Counters a caller passes to :func:`load_audio` to report what happened to a whole data set.

    ``cut`` lists the paths of cut clips, at most ``max_listed`` of them (a 40k-item data set must not grow an
    unbounded list); ``n_cut`` is always the full count.
    """

    n_loaded: int = 0
    n_resampled: int = 0
    n_cut: int = 0
    cut: list[str] = field(default_factory=list)
    max_listed: int = 50
    max_seconds: float | None = None

    def add(self, path: str | Path, *, cut: bool, resampled: bool, max_seconds: float | None) -> None:
        self.n_loaded += 1
        self.n_resampled += int(resampled)
        if max_seconds is not None:
            self.max_seconds = max_seconds
        if cut:
            self.n_cut += 1
            if len(self.cut) < self.max_listed:
                self.cut.append(str(path))

    def merge(self, other: AudioStats) -> None:
        """Add another counter's totals (a batch's stats into a whole evaluation's)."""
        self.n_loaded += other.n_loaded
        self.n_resampled += other.n_resampled
        self.n_cut += other.n_cut
        self.cut.extend(other.cut[: max(0, self.max_listed - len(self.cut))])
        if other.max_seconds is not None:
            self.max_seconds = other.max_seconds

    def summary(self) -> str:
        limit = f"{self.max_seconds:g} s" if self.max_seconds is not None else "the limit"
        return f"{self.n_cut} of {self.n_loaded} clips were cut to {limit}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_loaded": self.n_loaded,
            "n_resampled": self.n_resampled,
            "n_cut": self.n_cut,
            "max_seconds": self.max_seconds,
            "cut_paths": list(self.cut),
            "cut_paths_truncated": self.n_cut > len(self.cut),
        }


def _convert_hint(path: Path) -> str:
    # Never suggest writing over the input: ffmpeg cannot convert a file in place.
    out = path.with_name(f"{path.stem}.16k.wav")
    return f"convert it with `ffmpeg -i {shlex.quote(str(path))} -ar 16000 -ac 1 {shlex.quote(str(out))}`"


def load_audio(
    path: str | Path,
    *,
    sample_rate: int = SAMPLE_RATE,
    max_seconds: float | None = 30.0,
    channel: Literal["mean", "first"] = "mean",
    stats: AudioStats | None = None,
) -> np.ndarray:
    """Read an audio file as a 1-D float32 waveform at ``sample_rate`` Hz, at most ``max_seconds`` long.

    ``channel="mean"`` averages the channels; ``"first"`` keeps channel 0 like the original code. ``max_seconds=None``
    keeps the whole clip. Raises :class:`DataError` for a missing, empty or undecodable file.
    """
    if channel not in ("mean", "first"):
        raise ValueError(f"channel must be 'mean' or 'first', got {channel!r}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive or None, got {max_seconds}")
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"{path}: audio file not found; extract the audio (e.g. `ffmpeg -i VIDEO -vn -ar 16000 -ac 1 "
            f"{shlex.quote(str(path))}`) or fix the audio directory / path template"
        )
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: audio file is empty (0 bytes); re-extract it from its source")

    try:
        with sf.SoundFile(str(path)) as f:
            in_rate = int(f.samplerate)
            # Read only what is kept (+1 frame to know whether anything was cut): a long file costs no more than
            # 30 s, and this does not rely on the header's frame count, which some formats only estimate.
            limit = None if max_seconds is None else int(round(max_seconds * in_rate))
            frames = -1 if limit is None else limit + 1
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as e:
        raise DataError(f"{path}: cannot decode audio ({e}); {_convert_hint(path)}") from None

    if data.shape[0] == 0:
        raise DataError(f"{path}: audio file is empty (0 samples); re-extract it from its source")
    cut = limit is not None and data.shape[0] > limit
    if cut:
        data = data[:limit]

    wave = data.mean(axis=1) if channel == "mean" else data[:, 0]
    wave = np.ascontiguousarray(wave, dtype=np.float32)

    resampled = in_rate != sample_rate
    if resampled:
        wave = np.asarray(soxr.resample(wave, in_rate, sample_rate, quality="HQ"), dtype=np.float32)
        if max_seconds is not None:
            # soxr rounds the output length; keep the hard limit exact in output samples.
            wave = wave[: int(round(max_seconds * sample_rate))]

    if stats is not None:
        stats.add(path, cut=cut, resampled=resampled, max_seconds=max_seconds)
    return wave


def write_wav(path: str | Path, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write ``wave`` (shape ``(n,)`` or ``(n, channels)``, floats in [-1, 1]) as 16-bit PCM wav; returns the path.

    Values outside [-1, 1] are clipped rather than wrapped around by the integer conversion.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0)
    sf.write(str(path), data, sample_rate, subtype="PCM_16", format="WAV")
    return path
