"""A synthetic audio-question-answering "toy world" that a tiny Qwen2-Audio model can learn on CPU in minutes.

Run::

    python -m data.toy --out outputs/toy                      # train 3000, val 300, test 330 items, seed 0
    python -m data.toy --out /tmp/toy --seed 1 --sizes train=300,val=30,test=60 --check
    python -m data.toy check --out outputs/toy                # can text alone answer it? (see data/toy_check.py)

It stands in for the study's data: ``train``/``val`` in the AVQA annotation format (the training set) and ``test``
in the MMAU test-mini format (the out-of-distribution benchmark), so that every loader, trainer and scorer of the
suite runs unchanged on it. Everything is synthesised with numpy from a seed; the same seed and sizes give
byte-identical files (per-item generators seeded from (seed, split, index); JSON with sorted keys and indent 2;
16-bit PCM wav).

Layout written under ``--out DIR``::

    DIR/train/train_qa.json, DIR/train/audio/<video_name>.wav     AVQA format, exactly 4 choices, answer = index
    DIR/val/val_qa.json,     DIR/val/audio/<video_name>.wav
    DIR/test/mmau-test-mini.json, DIR/test/test-mini-audios/<id>.wav   MMAU format, 2-5 choices, answer = text
    DIR/world.json          manifest: seed, sizes, sub-categories, templates, the shift, chance accuracy per split

Clips are mono, 16 kHz, 1.0-2.0 s (the tiny model's 2 s window), peak-normalised (no task depends on the absolute
level). Three task families, three sub-categories each (the AVQA ``question_type`` / MMAU ``sub-category``),
each in three difficulties set by how far apart the classes' parameters are and by added noise:

==============  ================  ===================  ==============================================================
family          sub-category      answers              cue
==============  ================  ===================  ==============================================================
sound           beep_count        one two three four   number of tone beeps (gaps shrink with difficulty)
sound           noise_colour      white brown          spectral slope of the noise (PSD ~ f^-alpha, alpha 0 vs 2)
sound           loudness_trend    louder quieter       level ramp over the clip (25 dB easy, 6.5 dB hard)
music           note_height       high low             pitch of one note (about 200 vs 1300 Hz easy, 380 vs 550 hard)
music           tempo             fast slow            inter-onset interval of a click train (0.11 vs 0.45 s easy)
music           timbre            flute trumpet        pure sine vs rich harmonic series
speech          vowel             ah ee oo             formants of a synthetic voice (pulse train through resonators)
speech          speaker           man woman            voice f0 (about 110 vs 230 Hz easy)
speech          syllable_count    one two three        number of amplitude bursts of a voiced vowel
==============  ================  ===================  ==============================================================

Salient sub-categories (large, easily seen differences in a 128-bin log-mel spectrogram): loudness_trend,
note_height, speaker. AVQA items always have 4 choices: the sub-category's answers, padded with distractors of the
same sub-category that are never correct (e.g. "middle" for note_height). About 20% of train/val questions mention
the "video" ("video", "Video" or "videos"), as in AVQA, whose loader rewrites them.

The test split is OUT OF DISTRIBUTION, like MMAU for a model trained on AVQA (the exact numbers are ``PARAMS`` and
``COMMON``, also written to world.json under "shift"):

* question phrasings: held-out templates, never used in train/val (in any loader rewrite of "video");
* choices: 2 to 5 per item (balanced over 2, 3, 4, 5) instead of always 4; the other answers of the sub-category come
  first, then distractors, so a 2-choice binary question lists both real answers;
* every clip: peak level 0.25-0.5 instead of 0.5-0.9, background noise pink instead of white, at lower SNR
  (easy 25-30 / medium 15-20 / hard 9-12 dB instead of 30-40 / 18-24 / 10-14);
* beep_count: beeps at 1600-2600 Hz with odd harmonics (square-ish) instead of pure 700-1300 Hz tones;
* noise_colour: the noise comes in 2-4 bursts with silences instead of one steady stretch;
* loudness_trend: two-tone carrier (f and 1.5 f, f in 900-1600 Hz) instead of one 300-900 Hz tone, and a sigmoid
  step in level around the middle of the clip instead of a linear ramp over the whole clip;
* note_height: plucked notes (exponential decay, 2nd and 3rd harmonics) instead of sustained sines; low notes
  0.8x and high notes 1.2x the train frequencies (further from the boundary, but outside the train range);
* tempo: noise-burst clicks instead of 1.5-2.5 kHz tone clicks; fast intervals 0.9x, slow intervals 1.15x;
* timbre: f0 500-800 Hz instead of 250-500 Hz, with vibrato (5-6 Hz, 0.5-1.5%) instead of none;
* vowel: vocal tract scaled by 1.12-1.22 (formants up, child-like) and f0 200-300 Hz instead of 100-240 Hz;
* speaker: unseen vowels (eh, oh, uh instead of ah, ee, oo); men's f0 0.9x and women's f0 1.1x the train ranges;
* syllable_count: faster syllables (0.12-0.2 s instead of 0.18-0.3 s) on unseen vowels, f0 170-260 Hz.

Chance level (a uniform random pick among the listed choices): 0.25 on train/val; on test, with choices balanced
over 2-5, about 0.32. :func:`chance_accuracy` computes it for any list of records or items; the generator prints it
and stores it in world.json.

Public API: :func:`generate_world`, :data:`DEFAULT_SIZES`, :data:`SUB_CATEGORIES`, :data:`ANSWER_WORDS`,
:func:`question_texts`, :func:`chance_accuracy`, :func:`make_clip` (one waveform). The checks of a generated world
(text-only oracles, the learnability check :func:`~data.toy_check.separability`) are in :mod:`data.toy_check`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data.audio import SAMPLE_RATE, write_wav
from data.io import write_text_atomic

__all__ = [
    "ANSWER_WORDS",
    "COMMON",
    "DEFAULT_SIZES",
    "DIFFICULTIES",
    "PARAMS",
    "SPECS",
    "SPLITS",
    "SUB_CATEGORIES",
    "TASKS",
    "chance_accuracy",
    "generate_world",
    "make_clip",
    "parse_sizes",
    "question_texts",
]

WORLD_VERSION = 1
MAX_SECONDS = 2.0
SPLITS = ("train", "val", "test")
TASKS = ("sound", "music", "speech")
DIFFICULTIES = ("easy", "medium", "hard")
DEFAULT_SIZES: dict[str, int] = {"train": 3000, "val": 300, "test": 330}
VIDEO_FRACTION = 0.2
AVQA_CHOICES = 4
TEST_CHOICE_COUNTS = (2, 3, 4, 5)
# Fixed codes (not hash(split), which is salted per process) keep per-item seeds stable across runs.
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
# "train" and "val" share one parameter regime; "test" is the shifted one.
_REGIME = {"train": "train_val", "val": "train_val", "test": "test"}


@dataclass(frozen=True)
class SubCategory:
    """One question type: its answers, never-correct distractors, MMAU category and question phrasings.

    ``train`` and ``video`` templates are used for train/val (``video`` ones mention the video, as AVQA does);
    ``test`` templates are held out for the test split only.
    """

    name: str
    task: str
    category: str
    labels: tuple[str, ...]
    distractors: tuple[str, ...]
    train: tuple[str, ...]
    video: tuple[str, ...]
    test: tuple[str, ...]


_SPEC_LIST = [
    SubCategory(
        "beep_count",
        "sound",
        "counting",
        ("one", "two", "three", "four"),
        ("five", "six"),
        train=(
            "How many beeps are there?",
            "Count the beeps. How many do you hear?",
            "How many times does the tone beep?",
            "What is the number of beeps in the clip?",
            "How many short tones can be heard?",
        ),
        video=(
            "How many beeps are heard in the video?",
            "Video: how many beeps sound?",
            "How many beeps occur in the videos?",
        ),
        test=(
            "Listen carefully: what is the total count of beep sounds?",
            "Based on the recording, how many separate beeps occur?",
            "Identify how many distinct tone pulses the recording contains.",
        ),
    ),
    SubCategory(
        "noise_colour",
        "sound",
        "spectral",
        ("white", "brown"),
        ("blue", "grey", "violet"),
        train=(
            "What colour is the noise?",
            "Is this white noise or brown noise?",
            "Which kind of noise is it?",
            "What type of noise is heard?",
            "Which noise colour matches the sound?",
        ),
        video=(
            "What colour is the noise in the video?",
            "Video: is the hiss white or brown noise?",
            "Which noise colour do these videos contain?",
        ),
        test=(
            "Judging by its spectrum, which colour best describes this noise?",
            "The recording contains noise. Which noise colour is it?",
            "Considering how bright or dark the hiss sounds, what noise colour is this?",
        ),
    ),
    SubCategory(
        "loudness_trend",
        "sound",
        "temporal",
        ("louder", "quieter"),
        ("steady", "unchanged", "pulsing"),
        train=(
            "Does the sound get louder or quieter?",
            "How does the volume change over time?",
            "Is the sound growing louder or fading?",
            "What happens to the loudness of the sound?",
            "Over the clip, does the level rise or fall?",
        ),
        video=(
            "Does the sound in the video get louder or quieter?",
            "Video: how does the volume change?",
            "In these videos, does the sound become louder or quieter?",
        ),
        test=(
            "From start to end, which way does the loudness of the recording move?",
            "Listen to the intensity: is the source getting louder or getting quieter?",
            "Describe the volume trend of the recording.",
        ),
    ),
    SubCategory(
        "note_height",
        "music",
        "spectral",
        ("high", "low"),
        ("middle", "rising", "falling"),
        train=(
            "Is the note high or low?",
            "How high is the pitch of the note?",
            "What is the pitch register of the note?",
            "Is the tone high-pitched or low-pitched?",
            "Which describes the note's pitch?",
        ),
        video=(
            "In the video, is the note high or low?",
            "Video: is the played note high or low?",
            "Do the videos play a high or a low note?",
        ),
        test=(
            "Considering the musical register, where does this note sit?",
            "Would a listener call the pitch of this plucked tone high or low?",
            "What register is the played pitch in?",
        ),
    ),
    SubCategory(
        "tempo",
        "music",
        "temporal",
        ("fast", "slow"),
        ("moderate", "irregular", "still"),
        train=(
            "Is the tempo fast or slow?",
            "How fast is the beat?",
            "What is the tempo of the pulse?",
            "Is the rhythm quick or slow?",
            "Describe the speed of the beat.",
        ),
        video=(
            "In the video, is the tempo fast or slow?",
            "Video: how fast are the clicks?",
            "Is the beat in these videos fast or slow?",
        ),
        test=(
            "Judging by the spacing of the hits, what tempo does the music have?",
            "Would you describe this pulse as a fast or a slow tempo?",
            "What pace do the repeated hits follow?",
        ),
    ),
    SubCategory(
        "timbre",
        "music",
        "spectral",
        ("flute", "trumpet"),
        ("violin", "drum", "piano"),
        train=(
            "Which instrument is playing?",
            "Is this a flute or a trumpet?",
            "What instrument makes this sound?",
            "Which instrument does the tone sound like?",
            "Name the instrument heard.",
        ),
        video=(
            "Which instrument is played in the video?",
            "Video: is it a flute or a trumpet?",
            "What instrument is heard in these videos?",
        ),
        test=(
            "Based on its tone colour, what instrument is most likely producing the note?",
            "Does the timbre suggest a pure-toned or a brassy instrument? Pick the instrument.",
            "Identify the instrument from the timbre of the sound.",
        ),
    ),
    SubCategory(
        "vowel",
        "speech",
        "spectral",
        ("ah", "ee", "oo"),
        ("eh", "oh", "uh"),
        train=(
            "Which vowel is the voice singing?",
            "What vowel sound is spoken?",
            "Which vowel does the speaker hold?",
            "What vowel is heard?",
            "Identify the vowel.",
        ),
        video=(
            "Which vowel does the person in the video say?",
            "Video: what vowel is sung?",
            "What vowel is heard in these videos?",
        ),
        test=(
            "Listening to the mouth shape implied by the sound, which vowel is being produced?",
            "The speaker sustains a single vowel. Which one?",
            "Which vowel quality best matches the voice?",
        ),
    ),
    SubCategory(
        "speaker",
        "speech",
        "spectral",
        ("man", "woman"),
        ("child", "robot", "crowd"),
        train=(
            "Is the speaker a man or a woman?",
            "Who is speaking?",
            "What kind of voice is this?",
            "Is the voice male or female?",
            "Who does the voice belong to?",
        ),
        video=(
            "Is the person speaking in the video a man or a woman?",
            "Video: who is speaking?",
            "Who is heard speaking in these videos?",
        ),
        test=(
            "Judging by the pitch of the voice, who is most likely speaking?",
            "The recording contains a sustained vowel. Who produced it?",
            "Which speaker best fits this voice?",
        ),
    ),
    SubCategory(
        "syllable_count",
        "speech",
        "counting",
        ("one", "two", "three"),
        ("four", "five"),
        train=(
            "How many syllables are spoken?",
            "Count the syllables. How many are there?",
            "How many syllables does the word have?",
            "How many vowel sounds does the speaker make?",
            "How many times does the voice sound?",
        ),
        video=(
            "How many syllables are spoken in the video?",
            "Video: how many syllables do you hear?",
            "How many syllables are said in these videos?",
        ),
        test=(
            "Listen to the utterance: what is the total number of syllables?",
            "Based on the rhythm of the voice, how many syllables does it contain?",
            "Identify how many separate vocal bursts the speaker produces.",
        ),
    ),
]

SPECS: dict[str, SubCategory] = {s.name: s for s in _SPEC_LIST}
SUB_CATEGORIES: dict[str, list[str]] = {t: [s.name for s in _SPEC_LIST if s.task == t] for t in TASKS}
ANSWER_WORDS: list[str] = sorted({w for s in _SPEC_LIST for w in (*s.labels, *s.distractors)})

# Per-split parameters shared by every sub-category. Ranges are (low, high) for a uniform draw.
COMMON: dict[str, dict[str, Any]] = {
    "train_val": {
        "duration_s": (1.0, 2.0),
        "peak": (0.5, 0.9),
        "background_noise": "white",
        "snr_db": {"easy": (30.0, 40.0), "medium": (18.0, 24.0), "hard": (10.0, 14.0)},
    },
    "test": {
        "duration_s": (1.0, 2.0),
        "peak": (0.25, 0.5),
        "background_noise": "pink",
        "snr_db": {"easy": (25.0, 30.0), "medium": (15.0, 20.0), "hard": (9.0, 12.0)},
    },
}

# Formants (Hz) of the synthetic vowels: classic adult averages (Peterson and Barney style).
FORMANTS: dict[str, tuple[float, float, float]] = {
    "ah": (730.0, 1090.0, 2440.0),
    "ee": (270.0, 2290.0, 3010.0),
    "oo": (300.0, 870.0, 2240.0),
    "eh": (530.0, 1840.0, 2480.0),
    "oh": (570.0, 840.0, 2410.0),
    "uh": (520.0, 1190.0, 2390.0),
}
_SCHWA = (500.0, 1500.0, 2500.0)


def _scaled(ranges: Mapping[str, Any], factor: float) -> dict[str, tuple[float, float]]:
    return {k: (round(lo * factor, 4), round(hi * factor, 4)) for k, (lo, hi) in ranges.items()}


_NOTE_LOW = {"easy": (150.0, 250.0), "medium": (250.0, 330.0), "hard": (330.0, 420.0)}
_NOTE_HIGH = {"easy": (1000.0, 1600.0), "medium": (650.0, 950.0), "hard": (500.0, 620.0)}
_IOI_FAST = {"easy": (0.10, 0.13), "medium": (0.14, 0.17), "hard": (0.18, 0.205)}
_IOI_SLOW = {"easy": (0.40, 0.50), "medium": (0.30, 0.36), "hard": (0.25, 0.28)}
_F0_MAN = {"easy": (90.0, 125.0), "medium": (120.0, 140.0), "hard": (135.0, 150.0)}
_F0_WOMAN = {"easy": (200.0, 260.0), "medium": (170.0, 200.0), "hard": (160.0, 172.0)}

# Per-sub-category parameters in the train/val regime and the shifted test regime. Keys by difficulty, and by
# answer for parameters that carry the label. Written to world.json so that the shift is documented exactly.
PARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "beep_count": {
        "train_val": {
            "tone_hz": (700.0, 1300.0),
            "harmonics": [1.0],
            "beep_s": {"easy": (0.10, 0.15), "medium": (0.07, 0.10), "hard": (0.05, 0.07)},
            "gap_s": {"easy": (0.15, 0.25), "medium": (0.08, 0.14), "hard": (0.045, 0.07)},
            "beep_level": {"easy": (1.0, 1.0), "medium": (0.7, 1.0), "hard": (0.5, 1.0)},
        },
        "test": {
            "tone_hz": (1600.0, 2600.0),
            "harmonics": [1.0, 0.0, 0.33, 0.0, 0.2],
            "beep_s": {"easy": (0.10, 0.15), "medium": (0.07, 0.10), "hard": (0.05, 0.07)},
            "gap_s": {"easy": (0.15, 0.25), "medium": (0.08, 0.14), "hard": (0.045, 0.07)},
            "beep_level": {"easy": (1.0, 1.0), "medium": (0.7, 1.0), "hard": (0.5, 1.0)},
        },
    },
    "noise_colour": {
        # PSD ~ f^-alpha: white alpha 0, brown alpha 2; the boundary is alpha 1 (pink, never an answer).
        "train_val": {
            "alpha": {
                "white": {"easy": (0.0, 0.2), "medium": (0.3, 0.55), "hard": (0.55, 0.8)},
                "brown": {"easy": (1.8, 2.0), "medium": (1.45, 1.7), "hard": (1.2, 1.45)},
            },
            "bursts": None,
        },
        "test": {
            "alpha": {
                "white": {"easy": (0.0, 0.2), "medium": (0.3, 0.55), "hard": (0.55, 0.8)},
                "brown": {"easy": (1.8, 2.0), "medium": (1.45, 1.7), "hard": (1.2, 1.45)},
            },
            "bursts": {"count": (2, 4), "burst_s": (0.2, 0.4), "min_gap_s": 0.08},
        },
    },
    "loudness_trend": {
        "train_val": {
            "carrier": "tone",
            "carrier_hz": (300.0, 900.0),
            "shape": "linear",
            "change_db": {"easy": (20.0, 30.0), "medium": (10.0, 16.0), "hard": (5.0, 8.0)},
        },
        "test": {
            "carrier": "two_tone",
            "carrier_hz": (900.0, 1600.0),
            "shape": "sigmoid",
            "sigmoid_centre": (0.35, 0.65),
            "sigmoid_width": (0.06, 0.15),
            "change_db": {"easy": (20.0, 30.0), "medium": (10.0, 16.0), "hard": (5.0, 8.0)},
        },
    },
    "note_height": {
        "train_val": {
            "freq_hz": {"low": _NOTE_LOW, "high": _NOTE_HIGH},
            "harmonics": [1.0],
            "envelope": "sustained",
        },
        "test": {
            "freq_hz": {"low": _scaled(_NOTE_LOW, 0.8), "high": _scaled(_NOTE_HIGH, 1.2)},
            "harmonics": [1.0, 0.5, 0.25],
            "envelope": "plucked",
            "decay_s": (0.3, 0.6),
        },
    },
    "tempo": {
        "train_val": {
            "click": "tone",
            "click_hz": (1500.0, 2500.0),
            "ioi_s": {"fast": _IOI_FAST, "slow": _IOI_SLOW},
            "jitter": {"easy": 0.0, "medium": 0.03, "hard": 0.06},
        },
        "test": {
            "click": "noise",
            "ioi_s": {"fast": _scaled(_IOI_FAST, 0.9), "slow": _scaled(_IOI_SLOW, 1.15)},
            "jitter": {"easy": 0.0, "medium": 0.03, "hard": 0.06},
        },
    },
    "timbre": {
        "train_val": {
            "f0_hz": (250.0, 500.0),
            "flute_h2": {"easy": (0.0, 0.0), "medium": (0.03, 0.08), "hard": (0.08, 0.15)},
            "trumpet_harmonics": {"easy": 12, "medium": 7, "hard": 4},
            "trumpet_rolloff": {"easy": (0.7, 0.9), "medium": (1.1, 1.3), "hard": (1.5, 1.7)},
            "vibrato": None,
        },
        "test": {
            "f0_hz": (500.0, 800.0),
            "flute_h2": {"easy": (0.0, 0.0), "medium": (0.03, 0.08), "hard": (0.08, 0.15)},
            "trumpet_harmonics": {"easy": 12, "medium": 7, "hard": 4},
            "trumpet_rolloff": {"easy": (0.7, 0.9), "medium": (1.1, 1.3), "hard": (1.5, 1.7)},
            "vibrato": {"rate_hz": (5.0, 6.0), "depth": (0.005, 0.015)},
        },
    },
    "vowel": {
        "train_val": {
            "f0_hz": (100.0, 240.0),
            "tract_scale": (0.95, 1.05),
            "toward_schwa": {"easy": (0.0, 0.1), "medium": (0.2, 0.35), "hard": (0.4, 0.55)},
            "bandwidth_hz": {"easy": (50.0, 80.0), "medium": (80.0, 120.0), "hard": (120.0, 180.0)},
        },
        "test": {
            "f0_hz": (200.0, 300.0),
            "tract_scale": (1.12, 1.22),
            "toward_schwa": {"easy": (0.0, 0.1), "medium": (0.2, 0.35), "hard": (0.4, 0.55)},
            "bandwidth_hz": {"easy": (50.0, 80.0), "medium": (80.0, 120.0), "hard": (120.0, 180.0)},
        },
    },
    "speaker": {
        "train_val": {
            "f0_hz": {"man": _F0_MAN, "woman": _F0_WOMAN},
            "vowels": ["ah", "ee", "oo"],
            "tract_scale": (0.95, 1.05),
        },
        "test": {
            "f0_hz": {"man": _scaled(_F0_MAN, 0.9), "woman": _scaled(_F0_WOMAN, 1.1)},
            "vowels": ["eh", "oh", "uh"],
            "tract_scale": (0.95, 1.05),
        },
    },
    "syllable_count": {
        "train_val": {
            "f0_hz": (100.0, 240.0),
            "vowels": ["ah", "ee", "oo"],
            "syllable_s": (0.18, 0.3),
            "gap_s": {"easy": (0.12, 0.2), "medium": (0.07, 0.12), "hard": (0.05, 0.08)},
            "floor_db": {"easy": None, "medium": -20.0, "hard": -12.0},
        },
        "test": {
            "f0_hz": (170.0, 260.0),
            "vowels": ["eh", "oh", "uh"],
            "syllable_s": (0.12, 0.2),
            "gap_s": {"easy": (0.12, 0.2), "medium": (0.07, 0.12), "hard": (0.05, 0.08)},
            "floor_db": {"easy": None, "medium": -20.0, "hard": -12.0},
        },
    },
}


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


def _fast_len(m: int) -> int:
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
    size = _fast_len(n)  # shaped circularly at a fast FFT length, then cut: stationary noise does not mind
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
    size = _fast_len(n + _n(0.06))
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
    return [scale * ((1 - toward_schwa) * v + toward_schwa * s) for v, s in zip(FORMANTS[vowel], _SCHWA, strict=True)]


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
    regime = _REGIME[split]
    x = _SYNTH[sub_category](rng, label, difficulty, regime)
    peak = float(np.max(np.abs(x))) or 1.0
    return (x * (_u(rng, COMMON[regime]["peak"]) / peak)).astype(np.float32)


# ------------------------------------------------------------------------------------------------ world generation


@dataclass(frozen=True)
class _Slot:
    """What one item of a split asks, fixed before any audio is made (so the split is balanced by construction)."""

    sub_category: str
    label: str
    difficulty: str
    position: int  # index of the answer among the choices (train/val); test draws it per item
    n_choices: int
    video: bool


def _balanced(rng: np.random.Generator, values: Sequence[Any], n: int) -> list[Any]:
    """``n`` values cycling through ``values`` (counts differ by at most one), in random order."""
    cycled = [values[i % len(values)] for i in range(n)]
    return [cycled[i] for i in rng.permutation(n)]


def _plan(seed: int, split: str, n: int) -> list[_Slot]:
    """Balanced assignment of task, sub-category, answer, difficulty, answer position and phrasing kind."""
    rng = np.random.default_rng([seed, _SPLIT_CODE[split]])
    tasks = _balanced(rng, TASKS, n)
    subs: list[str] = [""] * n
    for task in TASKS:
        idx = [i for i in range(n) if tasks[i] == task]
        for i, s in zip(idx, _balanced(rng, SUB_CATEGORIES[task], len(idx)), strict=True):
            subs[i] = s
    labels: list[str] = [""] * n
    diffs: list[str] = [""] * n
    for name, spec in SPECS.items():
        idx = [i for i in range(n) if subs[i] == name]
        for i, lab, d in zip(
            idx, _balanced(rng, spec.labels, len(idx)), _balanced(rng, DIFFICULTIES, len(idx)), strict=True
        ):
            labels[i], diffs[i] = lab, d
    if split == "test":
        counts = _balanced(rng, TEST_CHOICE_COUNTS, n)
        positions = [-1] * n
        videos = [False] * n
    else:
        counts = [AVQA_CHOICES] * n
        positions = _balanced(rng, range(AVQA_CHOICES), n)
        n_video = int(round(VIDEO_FRACTION * n))
        videos = [bool(v) for v in _balanced(rng, [True] * n_video + [False] * (n - n_video), n)] if n else []
    return [_Slot(subs[i], labels[i], diffs[i], positions[i], counts[i], videos[i]) for i in range(n)]


def _choices(rng: np.random.Generator, spec: SubCategory, label: str, k: int, position: int) -> list[str]:
    """``k`` choices with ``label`` at ``position``: the other real answers first (so a binary question always
    offers both of its answers), then distractors."""
    others = [w for w in spec.labels if w != label]
    rng.shuffle(others)
    pads = list(spec.distractors)
    rng.shuffle(pads)
    wrong = (others + pads)[: k - 1]
    rng.shuffle(wrong)
    return wrong[:position] + [label] + wrong[position:]


def _test_id(seed: int, index: int) -> str:
    return hashlib.sha256(f"r1-aqa-toy/{seed}/test/{index}".encode()).hexdigest()[:32]


def _item(seed: int, split: str, index: int, slot: _Slot) -> tuple[dict[str, Any], np.ndarray, str]:
    """One record, its waveform and the wav path relative to the split directory."""
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], index + 1])
    spec = SPECS[slot.sub_category]
    if split == "test":
        question = spec.test[int(rng.integers(len(spec.test)))]
        position = int(rng.integers(slot.n_choices))
    else:
        pool = spec.video if slot.video else spec.train
        question = pool[int(rng.integers(len(pool)))]
        position = slot.position
    choices = _choices(rng, spec, slot.label, slot.n_choices, position)
    wave = make_clip(slot.sub_category, slot.label, slot.difficulty, rng, split=split)
    if split == "test":
        item_id = _test_id(seed, index)
        rel = f"test-mini-audios/{item_id}.wav"
        record: dict[str, Any] = {
            "id": item_id,
            "audio_id": f"./{rel}",
            "question": question,
            "choices": choices,
            "answer": slot.label,
            "dataset": "toy",
            "task": spec.task,
            "split": "test-mini",
            "category": spec.category,
            "sub-category": spec.name,
            "difficulty": slot.difficulty,
        }
    else:
        video_name = f"toy_{split}_{index:06d}"
        rel = f"audio/{video_name}.wav"
        record = {
            "id": index,
            "video_name": video_name,
            "video_id": index,
            "question_text": question,
            "multi_choice": choices,
            "answer": position,
            "question_relation": "Sound",
            "question_type": spec.name,
        }
    return record, wave, rel


def _annotation_file(split: str) -> str:
    return "test/mmau-test-mini.json" if split == "test" else f"{split}/{split}_qa.json"


def _dumps(obj: Any) -> str:
    # Sorted keys and a fixed indent: the same world must be byte-identical on every run.
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def parse_sizes(text: str | None) -> dict[str, int]:
    """``"train=3000,val=300,test=330"`` -> dict; splits not named keep their default size."""
    sizes = dict(DEFAULT_SIZES)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in SPLITS or not value.strip().isdigit():
            raise ValueError(f"bad size {part!r}: expected SPLIT=N with SPLIT in {SPLITS}, e.g. train=3000")
        sizes[name] = int(value)
    return sizes


def _check_sizes(sizes: Mapping[str, int] | None) -> dict[str, int]:
    merged = dict(DEFAULT_SIZES)
    for name, value in (sizes or {}).items():
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r} in sizes; expected some of {SPLITS}")
        if int(value) < 0:
            raise ValueError(f"size of {name!r} must be >= 0, got {value}")
        merged[name] = int(value)
    return merged


def _remove_stale(audio_dir: Path, keep: set[str]) -> None:
    """Delete wavs left by an earlier, larger world in the same folder, so the folder matches the annotations."""
    if audio_dir.is_dir():
        for path in audio_dir.glob("*.wav"):
            if path.name not in keep:
                path.unlink()


def generate_world(
    out_dir: str | Path, seed: int = 0, sizes: Mapping[str, int] | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Write the toy world (audio, annotation files, world.json) under ``out_dir``; returns the manifest.

    ``sizes`` maps split -> number of items; missing splits keep :data:`DEFAULT_SIZES`. world.json is written last,
    so its presence means the world is complete. Wavs in the world's own audio folders that the new world does not
    use (left by an earlier, larger run) are deleted, so the folders always match the annotation files.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    sizes = _check_sizes(sizes)
    plans = {split: _plan(seed, split, sizes[split]) for split in SPLITS}
    records: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    bar = tqdm(total=sum(sizes.values()), desc="toy world", unit="clip", disable=not progress)
    for split in SPLITS:
        split_dir = out / split
        written: set[str] = set()
        for index, slot in enumerate(plans[split]):
            record, wave, rel = _item(seed, split, index, slot)
            write_wav(split_dir / rel, wave, SAMPLE_RATE)
            written.add(Path(rel).name)
            records[split].append(record)
            bar.update(1)
        _remove_stale(split_dir / ("test-mini-audios" if split == "test" else "audio"), written)
        write_text_atomic(out / _annotation_file(split), _dumps(records[split]))
    bar.close()
    manifest = _manifest(seed, sizes, records)
    write_text_atomic(out / "world.json", _dumps(manifest))
    return manifest


def _manifest(seed: int, sizes: Mapping[str, int], records: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def counts(split: str) -> dict[str, dict[str, int]]:
        key = "sub-category" if split == "test" else "question_type"
        by_sub = Counter(r[key] for r in records[split])
        by_task = Counter(SPECS[r[key]].task for r in records[split])
        return {"task": dict(sorted(by_task.items())), "sub_category": dict(sorted(by_sub.items()))}

    return {
        "name": "r1-aqa toy audio-QA world",
        "version": WORLD_VERSION,
        "generator": "python -m data.toy",
        "seed": seed,
        "sizes": dict(sizes),
        "sample_rate": SAMPLE_RATE,
        "max_seconds": MAX_SECONDS,
        "files": {split: _annotation_file(split) for split in SPLITS},
        "formats": {"train": "avqa", "val": "avqa", "test": "mmau-test-mini"},
        "sub_categories": SUB_CATEGORIES,
        "sub_category_specs": {
            task: {
                name: {
                    "category": SPECS[name].category,
                    "answers": list(SPECS[name].labels),
                    "distractors": list(SPECS[name].distractors),
                    "templates": {
                        "train": list(SPECS[name].train),
                        "video": list(SPECS[name].video),
                        "test": list(SPECS[name].test),
                    },
                }
                for name in SUB_CATEGORIES[task]
            }
            for task in TASKS
        },
        "shift": {
            "summary": (
                "test only: held-out question templates; 2-5 choices (balanced) instead of 4; lower peak level; "
                "pink instead of white background noise at lower SNR; per sub-category parameter shifts below "
                "(train_val = train and val, test = test)"
            ),
            "common": COMMON,
            "per_sub_category": PARAMS,
            "choices": {"train": AVQA_CHOICES, "val": AVQA_CHOICES, "test": list(TEST_CHOICE_COUNTS)},
            "video_phrasing_fraction": {"train": VIDEO_FRACTION, "val": VIDEO_FRACTION, "test": 0.0},
        },
        "counts": {split: counts(split) for split in SPLITS},
        "chance": {split: chance_accuracy(records[split]) for split in SPLITS},
    }


# ------------------------------------------------------------------------------------------------ questions, chance


def question_texts(split: str) -> list[str]:
    """Every question phrasing a split can contain (templates hold no answer), for a tokenizer corpus.

    For train/val this includes the "video" phrasings and their rewrites by the AVQA loader (both the original
    code's and the corrected rule), since the model sees the rewritten text.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "test":
        return [q for s in _SPEC_LIST for q in s.test]
    from data.avqa import rewrite_question

    texts = [q for s in _SPEC_LIST for q in (*s.train, *s.video)]
    texts += [rewrite_question(q, mode) for s in _SPEC_LIST for q in s.video for mode in ("original", "correct")]
    return list(dict.fromkeys(texts))  # de-duplicated, order kept


def _tokens(text: str) -> frozenset[str]:
    import re

    return frozenset(re.findall(r"\b\w+\b", str(text).lower()))


def _choices_answer_task(rec: Any) -> tuple[list[str], str, str]:
    """(choices, gold text, task) of an Item, an MMAU record or an AVQA record."""
    if hasattr(rec, "choices") and hasattr(rec, "answer"):  # data.schema.Item
        sub = getattr(rec, "sub_category", None)
        task = rec.task or (SPECS[sub].task if sub in SPECS else None)
        if task is None:
            qtype = (getattr(rec, "record", None) or {}).get("question_type")
            task = SPECS[qtype].task if qtype in SPECS else "unknown"
        return list(rec.choices), str(rec.answer), task
    if "multi_choice" in rec:  # AVQA: answer is a 0-based index
        choices = list(rec["multi_choice"])
        qtype = rec.get("question_type")
        return choices, str(choices[int(rec["answer"])]), SPECS[qtype].task if qtype in SPECS else "unknown"
    return list(rec["choices"]), str(rec["answer"]), str(rec.get("task") or "unknown")


def chance_accuracy(records_or_items: Iterable[Any]) -> dict[str, Any]:
    """Expected accuracy of a uniform random pick among each item's listed choices, overall and per task.

    An item's chance is the share of its choices that the MMAU rule would score as correct if output verbatim:
    the choices whose lowercase word set equals the gold answer's (normally just the gold, so 1/len(choices);
    duplicated choices, as in a few real MMAU items, count for each copy). Overall is the micro average, like the
    MMAU score. Accepts :class:`~data.schema.Item` s, MMAU records or AVQA records (task from ``question_type``).
    Returns ``{"overall", "n", "per_task": {task: chance}, "n_per_task": {task: n}}``; ``overall`` is None if empty.
    """
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for rec in records_or_items:
        choices, gold, task = _choices_answer_task(rec)
        gold_tokens = _tokens(gold)
        hits = sum(1 for c in choices if _tokens(c) == gold_tokens) if choices else 0
        sums[task] = sums.get(task, 0.0) + (hits / len(choices) if choices else 0.0)
        counts[task] = counts.get(task, 0) + 1
    n = sum(counts.values())
    return {
        "overall": round(sum(sums.values()) / n, 6) if n else None,
        "n": n,
        "per_task": {t: round(sums[t] / counts[t], 6) for t in sorted(counts)},
        "n_per_task": dict(sorted(counts.items())),
    }


# ------------------------------------------------------------------------------------------------ command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data.toy --out DIR ...`` generates a world; ``python -m data.toy check ...`` checks one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # A leading word, not an argparse subparser: the generator's own command line stays exactly as it was.
    if argv[:1] == ["check"]:
        from data import toy_check  # imported here: toy_check imports this module

        return toy_check.main(argv[1:])
    ap = argparse.ArgumentParser(
        prog="python -m data.toy",
        description=__doc__.split("\n")[0],
        epilog="python -m data.toy check --out DIR: chance, text-only oracles and an audio classifier per split",
    )
    ap.add_argument("--out", required=True, help="output directory (created if missing)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", default=None, help="e.g. train=3000,val=300,test=330 (unnamed splits keep defaults)")
    ap.add_argument("--check", action="store_true", help="also print simple-feature separability per sub-category")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        sizes = parse_sizes(args.sizes)
    except ValueError as e:
        ap.error(str(e))
    start = time.perf_counter()
    manifest = generate_world(args.out, seed=args.seed, sizes=sizes, progress=not args.no_progress)
    print(f"wrote {sum(sizes.values())} clips to {args.out} in {time.perf_counter() - start:.1f} s")
    print("chance accuracy (uniform pick among the listed choices):")
    for split in SPLITS:
        c = manifest["chance"][split]
        per = "  ".join(f"{t} {v:.3f}" for t, v in c["per_task"].items())
        overall = "n/a" if c["overall"] is None else f"{c['overall']:.3f}"
        print(f"  {split:5s} overall {overall}  {per}  (n={c['n']})")
    if args.check:
        print("nearest-centroid accuracy of one simple feature per sub-category (train, 2-fold):")
        from data.toy_check import separability

        for name, acc in separability(args.out, "train").items():
            cells = "  ".join(f"{d} {acc[d]:.2f}" for d in DIFFICULTIES if d in acc)
            print(f"  {name:15s} chance {acc['chance']:.2f}  {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
