"""The toy world's definition: its question types, their answers and phrasings, and every synthesis parameter.

Pure data, no audio: :mod:`data.toy.synth` turns it into waveforms, :mod:`data.toy.generate` into a dataset on
disk, :mod:`data.toy.instruct` into the toy base model's instruct corpus, and :mod:`data.toy.check` checks a generated
world.

Three task families, three sub-categories each (the AVQA ``question_type`` / MMAU ``sub-category``), each in three
difficulties set by how far apart the classes' parameters are and by added noise:

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

Every offered choice is one of the sub-category's answers (world version 2): a question offers all of its answers,
so text alone cannot rule any out (``python -m data.toy check`` measures this). Each answer also has a caption, the
words the toy base's instruct corpus uses to describe such a clip (perception without the benchmark's questions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

WORLD_VERSION = 2  # 2: every choice is a real answer (v1 padded with never-correct distractors)
MAX_SECONDS = 2.0
SPLITS = ("train", "val", "test")
TASKS = ("sound", "music", "speech")
DIFFICULTIES = ("easy", "medium", "hard")
# "train" and "val" share one parameter regime; "test" is the shifted one.
REGIME = {"train": "train_val", "val": "train_val", "test": "test"}


@dataclass(frozen=True)
class SubCategory:
    """One question type: its answers, their captions, MMAU category and question phrasings.

    ``captions[i]`` describes a clip whose answer is ``labels[i]`` in a few words (used only by the instruct corpus).

    ``train`` and ``video`` templates are used for train/val (``video`` ones mention the video, as AVQA does);
    ``test`` templates are held out for the test split only.
    """

    name: str
    task: str
    category: str
    labels: tuple[str, ...]
    captions: tuple[str, ...]
    train: tuple[str, ...]
    video: tuple[str, ...]
    test: tuple[str, ...]


_SPEC_LIST = [
    SubCategory(
        "beep_count",
        "sound",
        "counting",
        ("one", "two", "three", "four"),
        ("a single beep", "a double beep", "a triple beep", "a quadruple beep"),
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
        ("a bright hiss", "a dull rumble"),
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
        ("a tone swelling", "a tone fading"),
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
        ("a shrill note", "a deep note"),
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
        ("rapid clicks", "sparse clicks"),
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
        ("a pure tone", "a brassy tone"),
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
        ("an open vowel", "a spread vowel", "a rounded vowel"),
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
        ("a male voice", "a female voice"),
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
        ("a single syllable", "a double syllable", "a triple syllable"),
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
ANSWER_WORDS: list[str] = sorted({w for s in _SPEC_LIST for w in s.labels})
CAPTIONS: dict[tuple[str, str], str] = {
    (s.name, lab): cap for s in _SPEC_LIST for lab, cap in zip(s.labels, s.captions, strict=True)
}

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
SCHWA = (500.0, 1500.0, 2500.0)


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
