"""Waveform synthesis for the toy world: :func:`make_clip` makes one clip of a sub-category with a given answer.

Everything is numpy, seeded by the caller's generator; the parameters (and the train/test shift) are the data in
:mod:`data.toy.world`. Clips are mono, 16 kHz, 1.0-2.0 s (the tiny model's 2 s window), peak-normalised (no task
depends on the absolute level).

    python -c "import numpy as np; from data.toy.synth import make_clip; print(make_clip('tempo', 'fast', 'easy', np.random.default_rng(0)).shape)"
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data.audio import SAMPLE_RATE
from data.toy.world import COMMON, DIFFICULTIES, FORMANTS, MAX_SECONDS, PARAMS, REGIME, SCHWA, SPECS

__all__ = ["fast_len", "make_clip"]

# ------------------------------------------------------------------------------------------------ synthesis helpers


def _u(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    lo, hi = bounds
    return float(lo) if lo == hi else float(rng.uniform(lo, hi))


def _n(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


def _duration(rng: np.random.Generator, regime: str, minimum: float = 0.0) -> int:
    lo, hi = COMMON[regime]["duration_s"]
    # Content that needs more time than the lower bound shortens the range; never past the 2 s window.
    return min(_n(_u(rng, (max(lo, minimum), hi))), _n(MAX_SECONDS))


def _fades(n: int, attack_s: float, release_s: float) -> np.ndarray:
    """Raised-cosine attack and release: hard edges would splash energy over the whole spectrum (clicks)."""
    env = np.ones(n)
    a, r = min(_n(attack_s), n // 2), min(_n(release_s), n // 2)
    if a > 0:
        env[:a] = 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / a)
    if r > 0:
        env[n - r :] = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, r + 1) / r)
    return env


def _harmonic_tone(freq: np.ndarray | float, n: int, amps: Sequence[float], phase0: float = 0.0) -> np.ndarray:
    """A sum of harmonics of ``freq`` (constant or a per-sample contour), dropping those above 7.5 kHz (aliasing)."""
    f = np.broadcast_to(np.asarray(freq, dtype=float), (n,))
    phase = 2 * np.pi * np.cumsum(f) / SAMPLE_RATE + phase0
    top = float(f.max())
    out = np.zeros(n)
    for k, a in enumerate(amps, start=1):
        if a and k * top < 7500.0:
            out += a * np.sin(k * phase)
    return out


def fast_len(m: int) -> int:
    """Smallest 2^a * 3^b * 5^c >= m: FFTs of arbitrary (e.g. prime) lengths are up to 50x slower."""
    best = 1 << max(m - 1, 1).bit_length()
    p3 = 1
    while p3 < best:
        p35 = p3
        while p35 < best:
            size = p35 * (1 << max(0, (m - 1) // p35).bit_length())
            best = min(best, size)
            p35 *= 5
        p3 *= 3
    return best


def _coloured_noise(rng: np.random.Generator, n: int, alpha: float) -> np.ndarray:
    """Gaussian noise with power spectral density ~ f^-alpha (0 white, 1 pink, 2 brown), unit RMS, no DC."""
    size = fast_len(n)  # shaped circularly at a fast FFT length, then cut: stationary noise does not mind
    spec = np.fft.rfft(rng.standard_normal(size))
    freqs = np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE)
    # Below 20 Hz the slope is held flat: a true 1/f^2 would put almost all energy in inaudible drift.
    gain = (np.maximum(freqs, 20.0) / 1000.0) ** (-alpha / 2.0)
    gain[0] = 0.0
    x = np.fft.irfft(spec * gain, size)[:n]
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _add_noise(rng: np.random.Generator, x: np.ndarray, regime: str, difficulty: str) -> np.ndarray:
    common = COMMON[regime]
    snr_db = _u(rng, common["snr_db"][difficulty])
    alpha = 0.0 if common["background_noise"] == "white" else 1.0
    rms = np.sqrt(np.mean(x**2)) + 1e-12
    return x + _coloured_noise(rng, len(x), alpha) * rms * 10 ** (-snr_db / 20.0)


def _resonator_response(freqs: np.ndarray, centre: float, bandwidth: float) -> np.ndarray:
    """Frequency response of a two-pole (Klatt) resonator, unit gain at DC."""
    r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
    c = 2 * r * np.cos(2 * np.pi * centre / SAMPLE_RATE)
    z1 = np.exp(-2j * np.pi * freqs / SAMPLE_RATE)
    return (1 - c + r * r) / (1 - c * z1 + r * r * z1 * z1)


def _voice(n: int, f0: np.ndarray, formants: Sequence[float], bandwidths: Sequence[float]) -> np.ndarray:
    """A source-filter vowel: glottal pulse train at the f0 contour through cascaded formant resonators.

    Filtering is done in the frequency domain (numpy has no IIR filter and a Python sample loop would be ~100x
    slower); the 60 ms of zero padding absorbs the resonators' ring-out so nothing wraps around.
    """
    size = fast_len(n + _n(0.06))
    phase = np.cumsum(f0) / SAMPLE_RATE
    pulses = np.zeros(size)
    pulses[1:n][np.diff(np.floor(phase)) > 0] = 1.0
    spec = np.fft.rfft(pulses)
    freqs = np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE)
    # Glottal roll-off (-12 dB/octave) plus lip radiation (+6 dB/octave): -6 dB/octave above about 150 Hz.
    shape = 1.0 / np.sqrt(1.0 + (freqs / 150.0) ** 2)
    for fc, bw in zip(formants, bandwidths, strict=True):
        shape = shape * _resonator_response(freqs, fc, bw)
    shape[freqs < 50.0] = 0.0  # the pulse train's DC and sub-audio drift carry no speech information
    return np.fft.irfft(spec * shape, size)[:n]


def _formants(vowel: str, toward_schwa: float, scale: float) -> list[float]:
    return [scale * ((1 - toward_schwa) * v + toward_schwa * s) for v, s in zip(FORMANTS[vowel], SCHWA, strict=True)]


def _f0_contour(rng: np.random.Generator, n: int, f0: float, declination: float = 0.08) -> np.ndarray:
    """A speech-like f0 track: a slow fall over the utterance plus a small random wobble."""
    t = np.arange(n) / SAMPLE_RATE
    fall = 1.0 - _u(rng, (0.0, declination)) * t / max(t[-1], 1e-9)
    wobble = 1.0 + 0.01 * np.sin(2 * np.pi * _u(rng, (3.0, 6.0)) * t + _u(rng, (0.0, 2 * np.pi)))
    return f0 * fall * wobble


# ------------------------------------------------------------------------------------------------ the nine sub-tasks


def _beep_count(rng: np.random.Generator, label: str, difficulty: str, regime: str) -> np.ndarray:
    p = PARAMS["beep_count"][regime]
    count = SPECS["beep_count"].labels.index(label) + 1
    beeps = [_u(rng, p["beep_s"][difficulty]) for _ in range(count)]
    gaps = [_u(rng, p["gap_s"][difficulty]) for _ in range(count - 1)]
    total = sum(beeps) + sum(gaps)
    n = _duration(rng, regime, minimum=total + 0.15)
    x = np.zeros(n)
    freq = _u(rng, p["tone_hz"])
    t = _n(_u(rng, (0.05, n / SAMPLE_RATE - total - 0.05)))
    for i, b in enumerate(beeps):
        m = _n(b)
        level = _u(rng, p["beep_level"][difficulty])
        x[t : t + m] += level * _harmonic_tone(freq, m, p["harmonics"]) * _fades(m, 0.005, 0.005)
        t += m + (_n(gaps[i]) if i < len(gaps) else 0)
    return _add_noise(rng, x, regime, difficulty)


def _noise_colour(rng: np.random.Generator, label: str, difficulty: str, regime: str) -> np.ndarray:
    p = PARAMS["noise_colour"][regime]
    n = _duration(rng, regime)
    x = _coloured_noise(rng, n, _u(rng, p["alpha"][label][difficulty]))
    bursts = p["bursts"]
    if bursts is None:
        return x * _fades(n, 0.02, 0.02)
    # Bursts separated by silence: place them one after another with random gaps that fit the clip.
    k = int(rng.integers(bursts["count"][0], bursts["count"][1] + 1))
    lengths = [_u(rng, bursts["burst_s"]) for _ in range(k)]
    while sum(lengths) + (k + 1) * bursts["min_gap_s"] > n / SAMPLE_RATE:
        lengths = [0.85 * s for s in lengths]
    slack = n / SAMPLE_RATE - sum(lengths) - (k + 1) * bursts["min_gap_s"]
    extra = rng.dirichlet(np.ones(k + 1)) * slack
    env = np.zeros(n)
    t = 0.0
    for i, s in enumerate(lengths):
        t += bursts["min_gap_s"] + float(extra[i])
        a, m = _n(t), _n(s)
        env[a : a + m] = _fades(m, 0.02, 0.02)[: len(env[a : a + m])]
        t += s
    return x * env


def _loudness_trend(rng: np.random.Generator, label: str, difficulty: str, regime: str) -> np.ndarray:
    p = PARAMS["loudness_trend"][regime]
    n = _duration(rng, regime)
    f = _u(rng, p["carrier_hz"])
    phase = _u(rng, (0.0, 2 * np.pi))
    carrier = _harmonic_tone(f, n, [1.0], phase)
    if p["carrier"] == "two_tone":
        carrier = carrier + 0.7 * _harmonic_tone(1.5 * f, n, [1.0], phase)
    sign = 1.0 if label == "louder" else -1.0
    change = _u(rng, p["change_db"][difficulty])
    s = np.arange(n) / n
    if p["shape"] == "linear":
        level_db = sign * change * (s - 0.5)
    else:
        centre, width = _u(rng, p["sigmoid_centre"]), _u(rng, p["sigmoid_width"])
        level_db = sign * change * (1.0 / (1.0 + np.exp(-(s - centre) / width)) - 0.5)
    x = carrier * 10 ** (level_db / 20.0) * _fades(n, 0.01, 0.01)
    return _add_noise(rng, x, regime, difficulty)


def _note_height(rng: np.random.Generator, label: str, difficulty: str, regime: str) -> np.ndarray:
    p = PARAMS["note_height"][regime]
    n = _duration(rng, regime)
    f = _u(rng, p["freq_hz"][label][difficulty])
    start, stop = _n(_u(rng, (0.02, 0.12))), n - _n(_u(rng, (0.02, 0.12)))
    m = stop - start
    note = _harmonic_tone(f, m, p["harmonics"], _u(rng, (0.0, 2 * np.pi)))
    if p["envelope"] == "sustained":
        env = _fades(m, 0.02, 0.05)
    else:
        env = np.exp(-np.arange(m) / SAMPLE_RATE / _u(rng, p["decay_s"])) * _fades(m, 0.005, 0.02)
    x = np.zeros(n)
    x[start:stop] = note * env
    return _add_noise(rng, x, regime, difficulty)


def _tempo(rng: np.random.Generator, label: str, difficulty: str, regime: str) -> np.ndarray:
    p = PARAMS["tempo"][regime]
    n = _duration(rng, regime)
    ioi = _u(rng, p["ioi_s"][label][difficulty])
    jitter = p["jitter"][difficulty]
    m = _n(0.06)
    decay = np.exp(-np.arange(m) / SAMPLE_RATE / (0.025 if p["click"] == "tone" else 0.015))
    click_hz = _u(rng, p["click_hz"]) if p["click"] == "tone" else 0.0
    x = np.zeros(n)
    t = _u(rng, (0.02, min(0.1, ioi / 2)))
    while _n(t) + m <= n:
        if p["click"] == "tone":
            click = _harmonic_tone(click_hz, m, [1.0])
        else:
            click = rng.standard_normal(m) * 0.5
        x[_n(t) : _n(t) + m] += click * decay * _fades(m, 0.002, 0.005)
        t += ioi * (1.0 + jitter * float(rng.standard_normal()))
    return _add_noise(rng, x, regime, difficulty)


def _timbre(rng: np.random.Generator, label: str, difficulty: str, regime: str) -> np.ndarray:
    p = PARAMS["timbre"][regime]
    n = _duration(rng, regime)
    f0 = _u(rng, p["f0_hz"])
    if label == "flute":
        amps = [1.0, _u(rng, p["flute_h2"][difficulty])]
    else:
        rolloff = _u(rng, p["trumpet_rolloff"][difficulty])
        amps = [k ** (-rolloff) for k in range(1, p["trumpet_harmonics"][difficulty] + 1)]
    freq: np.ndarray | float = f0
    if p["vibrato"] is not None:
        t = np.arange(n) / SAMPLE_RATE
        rate, depth = _u(rng, p["vibrato"]["rate_hz"]), _u(rng, p["vibrato"]["depth"])
        freq = f0 * (1.0 + depth * np.sin(2 * np.pi * rate * t))
    x = _harmonic_tone(freq, n, amps, _u(rng, (0.0, 2 * np.pi))) * _fades(n, 0.04, 0.06)
    return _add_noise(rng, x, regime, difficulty)


def _vowel(rng: np.random.Generator, label: str, difficulty: str, regime: str) -> np.ndarray:
    p = PARAMS["vowel"][regime]
    n = _duration(rng, regime)
    formants = _formants(label, _u(rng, p["toward_schwa"][difficulty]), _u(rng, p["tract_scale"]))
    bw = _u(rng, p["bandwidth_hz"][difficulty])
    x = _voice(n, _f0_contour(rng, n, _u(rng, p["f0_hz"])), formants, [bw, 1.3 * bw, 1.8 * bw])
    return _add_noise(rng, x * _fades(n, 0.04, 0.08), regime, difficulty)


def _speaker(rng: np.random.Generator, label: str, difficulty: str, regime: str) -> np.ndarray:
    p = PARAMS["speaker"][regime]
    n = _duration(rng, regime)
    vowel = p["vowels"][int(rng.integers(len(p["vowels"])))]
    formants = _formants(vowel, 0.0, _u(rng, p["tract_scale"]))
    f0 = _f0_contour(rng, n, _u(rng, p["f0_hz"][label][difficulty]), declination=0.05)
    x = _voice(n, f0, formants, [80.0, 100.0, 150.0])
    return _add_noise(rng, x * _fades(n, 0.04, 0.08), regime, difficulty)


def _syllable_count(rng: np.random.Generator, label: str, difficulty: str, regime: str) -> np.ndarray:
    p = PARAMS["syllable_count"][regime]
    count = SPECS["syllable_count"].labels.index(label) + 1
    sylls = [_u(rng, p["syllable_s"]) for _ in range(count)]
    gaps = [_u(rng, p["gap_s"][difficulty]) for _ in range(count - 1)]
    total = sum(sylls) + sum(gaps)
    n = _duration(rng, regime, minimum=total + 0.15)
    vowel = p["vowels"][int(rng.integers(len(p["vowels"])))]
    x = _voice(n, _f0_contour(rng, n, _u(rng, p["f0_hz"])), _formants(vowel, 0.0, 1.0), [80.0, 100.0, 150.0])
    start = _n(_u(rng, (0.05, n / SAMPLE_RATE - total - 0.05)))
    env = np.zeros(n)
    # Between syllables the voice dips to the floor level (medium/hard) or stops (easy): the dip is the cue.
    floor = 0.0 if p["floor_db"][difficulty] is None else 10 ** (p["floor_db"][difficulty] / 20.0)
    env[start : start + _n(total)] = floor
    t = start
    for i, s in enumerate(sylls):
        m = _n(s)
        bump = np.sin(np.pi * (np.arange(m) + 0.5) / m) ** 0.7  # a rounded syllable nucleus
        env[t : t + m] = np.maximum(env[t : t + m], bump[: len(env[t : t + m])])
        t += m + (_n(gaps[i]) if i < len(gaps) else 0)
    return _add_noise(rng, x * env, regime, difficulty)


_SYNTH = {
    "beep_count": _beep_count,
    "noise_colour": _noise_colour,
    "loudness_trend": _loudness_trend,
    "note_height": _note_height,
    "tempo": _tempo,
    "timbre": _timbre,
    "vowel": _vowel,
    "speaker": _speaker,
    "syllable_count": _syllable_count,
}


def make_clip(
    sub_category: str, label: str, difficulty: str, rng: np.random.Generator, *, split: str = "train"
) -> np.ndarray:
    """Synthesise one clip (float32, 16 kHz, at most 2 s) whose correct answer is ``label``.

    ``split="test"`` uses the shifted (out-of-distribution) parameters; "train" and "val" share the same ones.
    """
    if label not in SPECS[sub_category].labels:
        raise ValueError(f"{label!r} is not an answer of {sub_category!r}: {SPECS[sub_category].labels}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    regime = REGIME[split]
    x = _SYNTH[sub_category](rng, label, difficulty, regime)
    peak = float(np.max(np.abs(x))) or 1.0
    return (x * (_u(rng, COMMON[regime]["peak"]) / peak)).astype(np.float32)
