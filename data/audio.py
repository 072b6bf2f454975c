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
lets :class:`AudioStats` report how many clips lost audio). Missing, empty or undecodable files, and decoded
waveforms with NaN or infinite samples, raise :class:`~data.schema.DataError` naming the path and a fix.

Validation when a data set is loaded (not when its batch comes): :func:`probe_audio` checks one file and
:func:`probe_audio_files` many (in threads); the MMAU and AVQA loaders run them on every clip, so a corrupt file
fails the load (MMAU) or is skipped and reported (AVQA) before any training or generation starts. What the probe
checks depends on the format (see :func:`probe_audio`): the header always; every sample only where NaN/Inf or a
mid-stream decode error is possible (float data, compressed formats); integer PCM wav is checked from its header,
cheaply, because an integer sample cannot be NaN or infinite. :func:`load_audio` checks the samples it decodes again
(defence in depth, for callers that skip the loaders).

``write_wav`` writes 16-bit PCM files; the tests and the synthetic data generator use it.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
import soxr

from data.schema import DataError

SAMPLE_RATE = 16000
# The shortest clip that gives Qwen2-Audio one audio token: 3 mel frames (the feature extractor counts ceil(n / 160)
# frames), through the encoder's stride-2 convolution and stride-2 pooling (models.qwen2_audio.whisper_token_count); 320
# samples give none (measured through the processor, tests/test_audio.py). A shorter clip would reach the model as no
# audio at all; load_audio pads it with silence to this length and counts it (AudioStats.n_padded).
MIN_AUDIO_SAMPLES = 321

__all__ = [
    "MIN_AUDIO_SAMPLES",
    "SAMPLE_RATE",
    "AudioProbe",
    "AudioStats",
    "load_audio",
    "probe_audio",
    "probe_audio_files",
    "write_wav",
]

# Containers that store samples uncompressed, and the integer PCM subtypes: together, the only files whose samples
# cannot be NaN/Inf and cannot fail to decode halfway once the header is valid (see probe_audio).
_UNCOMPRESSED_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "AIFF", "AU", "CAF"})
_INTEGER_PCM = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32"})
# Formats whose header frame count is only an estimate (not compared with the frames decoded).
_ESTIMATED_LENGTH_FORMATS = frozenset({"MPEG", "MP3"})
# probe_audio_files shows a progress bar (by default) from this many files on.
PROGRESS_FROM = 2000


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
    n_padded: int = 0  # clips shorter than MIN_AUDIO_SAMPLES, padded with silence to it
    padded: list[str] = field(default_factory=list)

    def add(self, path: str | Path, *, cut: bool, resampled: bool, max_seconds: float | None,
            padded: bool = False) -> None:  # fmt: skip
        self.n_loaded += 1
        self.n_resampled += int(resampled)
        if max_seconds is not None:
            self.max_seconds = max_seconds
        if cut:
            self.n_cut += 1
            if len(self.cut) < self.max_listed:
                self.cut.append(str(path))
        if padded:
            self.n_padded += 1
            if len(self.padded) < self.max_listed:
                self.padded.append(str(path))

    def merge(self, other: AudioStats) -> None:
        """Add another counter's totals (a batch's stats into a whole evaluation's)."""
        self.n_loaded += other.n_loaded
        self.n_resampled += other.n_resampled
        self.n_cut += other.n_cut
        self.cut.extend(other.cut[: max(0, self.max_listed - len(self.cut))])
        self.n_padded += other.n_padded
        self.padded.extend(other.padded[: max(0, self.max_listed - len(self.padded))])
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
            "n_padded_short": self.n_padded,
            "padded_short_paths": list(self.padded),
            "min_samples": MIN_AUDIO_SAMPLES,
        }


def _convert_hint(path: Path) -> str:
    # Never suggest writing over the input: ffmpeg cannot convert a file in place.
    out = path.with_name(f"{path.stem}.16k.wav")
    return f"convert it with `ffmpeg -i {shlex.quote(str(path))} -ar 16000 -ac 1 {shlex.quote(str(out))}`"


def _nonfinite_message(path: Path, n_bad: int, n_total: int, what: str) -> str:
    return (
        f"{path}: {n_bad} of {n_total} samples in {what} are NaN or infinite (the model would get NaN features); "
        f"re-extract the clip from its source as 16-bit PCM, e.g. `ffmpeg -i SOURCE -vn -ar 16000 -ac 1 "
        f"-c:a pcm_s16le {shlex.quote(str(path.with_name(f'{path.stem}.16k.wav')))}` (16-bit PCM cannot hold "
        "NaN/Inf)"
    )


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise DataError(
            f"{path}: audio file not found; extract the audio (e.g. `ffmpeg -i VIDEO -vn -ar 16000 -ac 1 "
            f"{shlex.quote(str(path))}`) or fix the audio directory / path template"
        )
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: audio file is empty (0 bytes); re-extract it from its source")


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
    keeps the whole clip. Raises :class:`DataError` for a missing, empty or undecodable file, and for NaN or
    infinite samples in the part that is read (they would turn the model's features into NaN). A clip shorter than
    :data:`MIN_AUDIO_SAMPLES` (20 ms) is padded with silence to it and counted in ``stats``.
    """
    if channel not in ("mean", "first"):
        raise ValueError(f"channel must be 'mean' or 'first', got {channel!r}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive or None, got {max_seconds}")
    path = Path(path)
    _check_exists(path)

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
    n_bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if n_bad:
        raise DataError(_nonfinite_message(path, n_bad, data.size, "the decoded part"))
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

    padded = wave.shape[0] < MIN_AUDIO_SAMPLES
    if padded:  # silence after the clip, so that the model gets one audio token instead of none
        wave = np.pad(wave, (0, MIN_AUDIO_SAMPLES - wave.shape[0]))
    if stats is not None:
        stats.add(path, cut=cut, resampled=resampled, max_seconds=max_seconds, padded=padded)
    return wave


@dataclass(frozen=True)
class AudioProbe:
    """What :func:`probe_audio` learnt about one valid file. ``duration`` is in seconds; ``samples_checked`` says
    whether every sample was decoded (and found finite) or only the header was checked."""

    path: str
    sample_rate: int
    frames: int
    channels: int
    duration: float
    subtype: str
    format: str = ""
    samples_checked: bool = False


def _wav_declared_frames(path: Path) -> int | None:
    """Frames the RIFF/WAVE header's ``data`` chunk declares (None when not a plain RIFF wav or not stated).

    libsndfile silently clamps a too-large ``data`` size to the bytes present, so a wav cut short by an interrupted
    copy or extraction looks valid to ``sf.info``: only the declared size tells.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            pos, block_align = 12, 0
            while pos + 8 <= size:
                f.seek(pos)
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, n = chunk[:4], int.from_bytes(chunk[4:], "little")
                if cid == b"fmt ":
                    fmt = f.read(min(n, 16))
                    block_align = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else 0
                elif cid == b"data":
                    # 0 and 0xFFFFFFFF are written by streaming encoders that could not seek back: size unknown.
                    if block_align <= 0 or n in (0, 0xFFFFFFFF):
                        return None
                    return n // block_align
                pos += 8 + n + (n & 1)
    except OSError:
        return None
    return None


def probe_audio(path: str | Path, *, check_samples: bool | None = None) -> AudioProbe:
    """Check that one audio file is usable, without keeping its samples; return what its header says.

    Every file: it exists and is not empty, libsndfile can parse its header (``sf.info``), the header gives a
    positive sample rate, channels and more than 0 frames; for RIFF wav (any subtype), the frame count its ``data``
    chunk declares fits in the file (libsndfile silently shortens a truncated wav, so a clip cut by an interrupted
    copy or extraction would otherwise pass).

    What else, by format (``check_samples=None``, the default):

    - integer PCM (PCM_S8/U8/16/24/32) in an uncompressed container (WAV, AIFF, AU, W64, RF64, CAF): the header,
      and the last frame is read (one seek) so the data is readable to its end. An integer sample cannot be NaN or
      infinite and fixed-size frames cannot fail to decode halfway, so reading every sample would only cost time
      (38k AVQA clips).
    - everything else: float data (FLOAT, DOUBLE), compressed formats (FLAC, VORBIS, OPUS, MPEG, ADPCM, u-law...):
      every sample is decoded, as float32 like :func:`load_audio`, in blocks; a decode error mid-stream, a
      non-finite (NaN/Inf) sample, or fewer frames than the header states (except MPEG, whose header only
      estimates) is an error. For a decoded file ``frames`` and ``duration`` are what was decoded.

    ``check_samples=True`` decodes every sample whatever the format; ``False`` does only the checks every file gets
    (what the evaluator uses to plan batches, at every checkpoint). Raises :class:`DataError` naming the file, what
    is wrong and the fix.
    """
    path = Path(path)
    _check_exists(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise DataError(f"{path}: cannot read the audio header ({e}); {_convert_hint(path)}") from None
    rate, frames, channels = int(info.samplerate), int(info.frames), int(info.channels)
    subtype, fmt = str(info.subtype), str(info.format)
    if rate <= 0:
        raise DataError(f"{path}: the header gives sample rate {rate}; {_convert_hint(path)}")
    if channels <= 0:
        raise DataError(f"{path}: the header gives {channels} channels; {_convert_hint(path)}")
    if frames <= 0:
        raise DataError(f"{path}: audio file has no frames (0 s of audio); re-extract it from its source")

    declared = _wav_declared_frames(path) if fmt in ("WAV", "WAVEX") else None
    if declared is not None and declared > frames:
        raise DataError(
            f"{path}: truncated: its header declares {declared} frames ({declared / rate:.2f} s) but the file "
            f"holds only {frames} ({frames / rate:.2f} s); re-extract it from its source"
        )

    integer_pcm = fmt in _UNCOMPRESSED_FORMATS and subtype in _INTEGER_PCM
    read_all = (not integer_pcm) if check_samples is None else check_samples
    if not read_all:
        if check_samples is None:  # stands in for reading integer PCM: the data is readable to its end
            try:
                with sf.SoundFile(str(path)) as f:
                    f.seek(frames - 1)
                    last = f.read(frames=1, dtype="int16", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as e:
                raise DataError(f"{path}: cannot decode audio ({e}); {_convert_hint(path)}") from None
            if last.shape[0] != 1:
                raise DataError(
                    f"{path}: truncated: the last of the {frames} frames its header states cannot be read; "
                    "re-extract it from its source"
                )
        return AudioProbe(str(path), rate, frames, channels, frames / rate, subtype, fmt, samples_checked=False)

    decoded = n_bad = 0
    try:
        with sf.SoundFile(str(path)) as f:
            while True:
                block = f.read(frames=1 << 16, dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                decoded += block.shape[0]
                n_bad += int(block.size - np.count_nonzero(np.isfinite(block)))
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as e:
        raise DataError(
            f"{path}: cannot decode audio after {decoded} of {frames} frames ({e}); {_convert_hint(path)}"
        ) from None
    if n_bad:
        raise DataError(_nonfinite_message(path, n_bad, decoded * channels, f"this {subtype} file"))
    if decoded == 0:
        raise DataError(f"{path}: audio file is empty (0 samples decoded); re-extract it from its source")
    if decoded < frames and fmt not in _ESTIMATED_LENGTH_FORMATS:
        raise DataError(
            f"{path}: truncated or corrupt: only {decoded} of the {frames} frames its header states could be "
            f"decoded; re-extract it from its source, or {_convert_hint(path)}"
        )
    return AudioProbe(str(path), rate, decoded, channels, decoded / rate, subtype, fmt, samples_checked=True)


def _probe_or_error(path: str | Path) -> tuple[AudioProbe | None, str | None]:
    try:
        return probe_audio(path), None
    except DataError as e:
        return None, str(e)


def probe_audio_files(
    paths: Iterable[str | Path], *, workers: int | None = None, progress: bool | None = None
) -> tuple[dict[str | Path, AudioProbe], dict[str | Path, str]]:
    """:func:`probe_audio` on many files: ``(good, bad)``, ``good`` maps each valid path to its probe and ``bad``
    each invalid one to its error message (naming the file, the problem and the fix). Keys are the paths as given;
    a path given twice is probed once; both dicts follow the order of ``paths``.

    ``workers`` threads probe in parallel (libsndfile releases the GIL while it reads; default: up to 8).
    ``progress=None`` shows a progress bar only from :data:`PROGRESS_FROM` files on (quiet for small sets).
    """
    unique = list(dict.fromkeys(paths))
    if workers is None:
        workers = min(8, (os.cpu_count() or 1) * 2)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    show = len(unique) >= PROGRESS_FROM if progress is None else progress
    good: dict[str | Path, AudioProbe] = {}
    bad: dict[str | Path, str] = {}
    if not unique:
        return good, bad
    from tqdm.auto import tqdm

    with tqdm(total=len(unique), desc="checking audio", unit="clip", disable=not show) as bar:

        def run(p: str | Path) -> tuple[AudioProbe | None, str | None]:
            try:
                return _probe_or_error(p)
            finally:
                bar.update(1)

        if workers == 1 or len(unique) == 1:
            results = [run(p) for p in unique]
        else:
            with ThreadPoolExecutor(max_workers=min(workers, len(unique))) as pool:
                results = list(pool.map(run, unique))
    for p, (probe, err) in zip(unique, results, strict=True):
        if probe is not None:
            good[p] = probe
        else:
            bad[p] = err or f"{p}: invalid audio"
    return good, bad


def write_wav(path: str | Path, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write ``wave`` (shape ``(n,)`` or ``(n, channels)``, floats in [-1, 1]) as 16-bit PCM wav; returns the path.

    Values outside [-1, 1] are clipped rather than wrapped around by the integer conversion.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0)
    sf.write(str(path), data, sample_rate, subtype="PCM_16", format="WAV")
    return path
