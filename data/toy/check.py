"""Checks of a generated toy world: can text alone answer it, and can the audio?

Run::

    python -m data.toy check --out DIR [--seed N] [--sizes train=3000,val=300,test=1980] [--no-fail] [--no-audio]

The world in ``DIR`` is generated first (with the same options as ``python -m data.toy --out DIR``) if
``DIR/world.json`` is absent, and so is its mixed test in MMAR's shape (``DIR/mix/``, :mod:`data.toy.mix`). For
each split (train, val, test, mix), per sub-category and overall, it prints and writes to ``DIR/check.json``:

* **chance**: the expected accuracy of a uniform pick among the listed choices
  (:func:`data.toy.generate.chance_accuracy`, the number world.json stores);
* **text-only oracles**: policies that see the question but not the audio. ``label`` knows each question type's
  label set and the TRAIN answer frequencies per question type, and picks the offered choice that was the train
  answer most often (a distractor that is never correct has frequency 0); ``position`` knows the train frequency of
  each answer position for the item's number of choices. Both split ties evenly (expected accuracy), so a policy
  with nothing to go on scores exactly chance. ``text`` is the better of the two on that split, and ``margin`` is
  text minus chance in points. Not included: the question phrasing, since the generator draws it independently
  of the answer (test phrasings are held out anyway), and conditioning on it in-sample would only fit noise;
* **audio**: a simple audio-feature classifier (one hand-made numpy feature per sub-category,
  :data:`SANITY_FEATURES`, nearest class mean; fitted on train and applied to val/test, two-fold cross-validated on
  train itself). It ignores the choices: it shows that the answer is in the audio.

Issue 11 asks that text cannot answer the benchmark: the command exits 1, naming the splits, when the text oracle
exceeds chance by more than :data:`MAX_TEXT_MARGIN_POINTS` on any split (``--no-fail`` only reports). Per
sub-category rows are reported, not gated: a few dozen items per cell are too noisy for a 2-point rule.

The learnability check that tests and ``python -m data.toy --check`` use lives here too:
:func:`simple_features`, :data:`SANITY_FEATURES`, :func:`nearest_centroid_accuracy`, :func:`separability`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data.audio import SAMPLE_RATE
from data.io import write_text_atomic
from data.toy.generate import annotation_file, chance_accuracy, generate_world, parse_sizes, split_plan, word_set
from data.toy.mix import MANIFEST as MIX_MANIFEST
from data.toy.mix import MIX_FILE, generate_mix
from data.toy.synth import fast_len
from data.toy.world import DIFFICULTIES, SPECS, SPLITS

__all__ = [
    "MAX_TEXT_MARGIN_POINTS",
    "SANITY_FEATURES",
    "CheckItem",
    "audio_scores",
    "failures",
    "label_frequencies",
    "label_oracle",
    "load_split",
    "main",
    "nearest_centroid_accuracy",
    "position_frequencies",
    "position_oracle",
    "run_check",
    "separability",
    "simple_features",
    "summarize",
]

# Issue 11, item 1: "the best text-only policy scores at most chance + 2 points" on every split.
MAX_TEXT_MARGIN_POINTS = 2.0
MIX = "mix"  # the mixed test's split name here, and its folder in a world directory


@dataclass(frozen=True)
class CheckItem:
    """One question of a split, as the checks need it: its type, the offered choices, the gold text, the clip.

    ``task`` and ``sub_category`` make it readable by :func:`~data.toy.generate.chance_accuracy` like a schema Item.
    """

    sub_category: str
    task: str
    choices: tuple[str, ...]
    answer: str
    audio: Path | None = None

    def hits(self) -> list[bool]:
        """Which choices the MMAU rule scores as correct (same lowercase word set as the gold answer)."""
        gold = word_set(self.answer)
        return [word_set(c) == gold for c in self.choices]


def load_split(world_dir: str | Path, split: str) -> list[CheckItem]:
    """The items of one split of a generated world (AVQA files for train/val, the MMAU file for test, the MMAR-shaped
    file of the mixed test for ``mix``: its item's sub-category and task are the target's)."""
    world = Path(world_dir)
    path = world / MIX / MIX_FILE if split == MIX else world / annotation_file(split)
    items = []
    for r in json.loads(path.read_text(encoding="utf-8")):
        if split == MIX:
            sub, choices, gold, audio = r["sub-category"], r["choices"], r["answer"], world / MIX / r["audio_path"]
        elif split == "test":
            sub, choices, gold, audio = r["sub-category"], r["choices"], r["answer"], world / "test" / r["audio_id"]
        else:
            sub, choices = r["question_type"], r["multi_choice"]
            gold, audio = choices[int(r["answer"])], world / split / "audio" / f"{r['video_name']}.wav"
        if sub not in SPECS:
            raise ValueError(f"{path}: record {r.get('id')!r} has unknown sub-category {sub!r}; regenerate the world")
        items.append(CheckItem(sub, SPECS[sub].task, tuple(choices), str(gold), audio))
    return items


# ------------------------------------------------------------------------------------------------ text-only oracles


def label_frequencies(train: Iterable[CheckItem]) -> dict[str, Counter[frozenset[str]]]:
    """How often each answer (as its lowercase word set) is correct, per question type, on the train items."""
    freqs: dict[str, Counter[frozenset[str]]] = {}
    for item in train:
        freqs.setdefault(item.sub_category, Counter())[word_set(item.answer)] += 1
    return freqs


def position_frequencies(train: Iterable[CheckItem]) -> dict[int, Counter[int]]:
    """How often the answer sits at each position, per number of choices, on the train items."""
    freqs: dict[int, Counter[int]] = {}
    for item in train:
        freqs.setdefault(len(item.choices), Counter())[item.hits().index(True)] += 1
    return freqs


def _expected_argmax_accuracy(scores: Sequence[float], hits: Sequence[bool]) -> float:
    """Expected accuracy of picking a highest-scoring choice, ties split evenly (all ties: chance)."""
    best = max(scores)
    top = [i for i, s in enumerate(scores) if s == best]
    return sum(hits[i] for i in top) / len(top)


def label_oracle(item: CheckItem, freqs: Mapping[str, Counter[frozenset[str]]]) -> float:
    """Expected accuracy on ``item`` of picking the offered choice most often correct in train for its type."""
    counts = freqs.get(item.sub_category, Counter())
    return _expected_argmax_accuracy([counts[word_set(c)] for c in item.choices], item.hits())


def position_oracle(item: CheckItem, freqs: Mapping[int, Counter[int]]) -> float:
    """Expected accuracy on ``item`` of picking the position most often correct in train for its number of choices
    (a number of choices never seen in train gives no preference: chance)."""
    counts = freqs.get(len(item.choices), Counter())
    return _expected_argmax_accuracy([counts[i] for i in range(len(item.choices))], item.hits())


# ------------------------------------------------------------------------------------------------ summary and gate


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(float(np.mean(known)), 6) if known else None


def _row(items: Sequence[CheckItem], label: Sequence[float], position: Sequence[float], audio: Sequence[float | None]
         ) -> dict[str, Any]:  # fmt: skip
    chance = chance_accuracy(items)["overall"]
    oracles = {"label": _mean(label), "position": _mean(position)}
    best = max(oracles, key=lambda k: oracles[k])  # type: ignore[arg-type, return-value]
    return {
        "n": len(items),
        "chance": chance,
        "label_oracle": oracles["label"],
        "position_oracle": oracles["position"],
        "text_oracle": oracles[best],
        "text_policy": best,
        "margin_points": round(100 * (oracles[best] - chance), 4),  # type: ignore[operator]
        "audio": _mean(audio),
    }


def summarize(splits: Mapping[str, Sequence[CheckItem]], audio: Mapping[str, Sequence[float | None]] | None = None
              ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Chance, text oracles and audio accuracy per split: ``{split: {"overall": row, "sub_category": {sub: row}}}``.

    Frequencies come from ``splits["train"]`` for every split. ``audio`` gives each item's audio-classifier score
    (1.0, 0.0, or None where no classifier could be fitted), in item order; None leaves the audio column empty.
    Empty splits are left out.
    """
    train = splits.get("train", [])
    labels, positions = label_frequencies(train), position_frequencies(train)
    out: dict[str, dict[str, Any]] = {}
    for split, items in splits.items():
        if not items:
            continue
        lab = [label_oracle(it, labels) for it in items]
        pos = [position_oracle(it, positions) for it in items]
        aud = list(audio[split]) if audio is not None else [None] * len(items)
        by_sub: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            by_sub.setdefault(it.sub_category, []).append(i)
        out[split] = {
            "overall": _row(items, lab, pos, aud),
            "sub_category": {
                sub: _row([items[i] for i in idx], [lab[i] for i in idx], [pos[i] for i in idx], [aud[i] for i in idx])
                for sub, idx in sorted(by_sub.items())
            },
        }
    return out


def failures(summary: Mapping[str, Mapping[str, Any]], max_margin_points: float = MAX_TEXT_MARGIN_POINTS) -> list[str]:
    """One line per split whose text oracle beats chance by more than ``max_margin_points`` (empty: passed)."""
    bad = []
    for split, result in summary.items():
        row = result["overall"]
        if row["margin_points"] > max_margin_points:
            bad.append(
                f"{split}: text-only oracle ({row['text_policy']}) {100 * row['text_oracle']:.1f}% vs chance "
                f"{100 * row['chance']:.1f}% (+{row['margin_points']:.1f} points > {max_margin_points:g})"
            )
    return bad


# ------------------------------------------------------------------------------------------------ learnability check


def simple_features(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> dict[str, float]:
    """Hand-made numpy features, one per kind of cue, to show each sub-category is learnable from the audio.

    Frames like Whisper's (25 ms Hann window, 10 ms hop). ``bursts``: number of rises of the frame level above the
    midpoint between its quiet and loud levels (with hysteresis); ``rate``: bursts per second; ``level_slope``:
    dB per second of a line fit to the frame levels; ``tilt``: slope of log power vs log frequency (100 Hz-6 kHz);
    ``peak_hz``: log2 of the strongest frequency; ``richness``: log10 share of energy above 1.5x that frequency;
    ``f0``: log2 autocorrelation pitch (60-400 Hz); ``band0..band4``: log energy shares in formant bands.
    """
    x = np.asarray(wave, dtype=np.float64)
    win, hop = 400, 160
    if len(x) < win:
        x = np.pad(x, (0, win - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop] * np.hanning(win)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(win, 1.0 / sample_rate)
    level = 10 * np.log10(power.sum(axis=1) + 1e-10)
    times = np.arange(len(level)) * hop / sample_rate

    # Envelope bursts, smoothed over 3 frames so one beep never counts twice.
    smooth = np.convolve(level, np.ones(3) / 3, mode="same")
    lo, hi = np.percentile(smooth, 10), np.percentile(smooth, 98)
    up, down = lo + 0.6 * (hi - lo), lo + 0.4 * (hi - lo)
    bursts, active = 0, False
    for v in smooth:
        if not active and v > up:
            bursts, active = bursts + 1, True
        elif active and v < down:
            active = False

    loud = level > level.max() - 60  # ignore the fade-in/out silence
    slope = float(np.polyfit(times[loud], level[loud], 1)[0]) if loud.sum() > 2 else 0.0

    mean_power = power.mean(axis=0) + 1e-12
    band = (freqs >= 100) & (freqs <= 6000)
    tilt = float(np.polyfit(np.log2(freqs[band]), 10 * np.log10(mean_power[band]), 1)[0])
    peak = float(freqs[1:][np.argmax(mean_power[1:])])
    richness = float(np.log10(mean_power[freqs > 1.5 * peak].sum() / mean_power.sum() + 1e-8))

    # Autocorrelation pitch over the whole clip (via FFT): the strongest lag between 2.5 and 16.7 ms.
    size = fast_len(2 * len(x))  # zero padding to 2n makes the circular autocorrelation a linear one
    ac = np.fft.irfft(np.abs(np.fft.rfft(x - x.mean(), size)) ** 2, size)[: len(x)]
    lags = np.arange(int(sample_rate / 400), int(sample_rate / 60))
    f0 = sample_rate / lags[np.argmax(ac[lags])]

    edges = [(200, 450), (450, 900), (900, 1500), (1500, 2600), (2600, 4000)]
    total = mean_power[(freqs >= 200) & (freqs < 4000)].sum()
    bands = {
        f"band{i}": float(np.log10(mean_power[(freqs >= a) & (freqs < b)].sum() / total))
        for i, (a, b) in enumerate(edges)
    }
    return {
        "bursts": float(bursts),
        "rate": bursts / (len(x) / sample_rate),
        "level_slope": slope,
        "tilt": tilt,
        "peak_hz": float(np.log2(peak)),
        "richness": richness,
        "f0": float(np.log2(f0)),
        **bands,
    }


# The feature(s) a listener would use for each question: the check uses only these, so it tests the intended cue.
SANITY_FEATURES: dict[str, list[str]] = {
    "beep_count": ["bursts"],
    "noise_colour": ["tilt"],
    "loudness_trend": ["level_slope"],
    "note_height": ["peak_hz"],
    "tempo": ["rate"],
    "timbre": ["richness"],
    "vowel": ["band0", "band1", "band2", "band3", "band4"],
    "speaker": ["f0"],
    "syllable_count": ["bursts"],
}


@dataclass(frozen=True)
class _Centroids:
    """A nearest-class-mean classifier on features z-scored with its training set's mean and spread."""

    mu: np.ndarray
    sd: np.ndarray
    classes: np.ndarray
    centres: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> _Centroids:
        mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
        classes = np.asarray(sorted(set(y)))
        return cls(mu, sd, classes, np.stack([((x[y == c] - mu) / sd).mean(axis=0) for c in classes]))

    def predict(self, x: np.ndarray) -> np.ndarray:
        dist = (((x - self.mu) / self.sd)[:, None, :] - self.centres[None]) ** 2
        return self.classes[dist.sum(axis=2).argmin(axis=1)]


def _cross_val_predict(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Two-fold (alternating items) cross-validated predictions; needs at least 2 items."""
    folds = np.arange(len(y)) % 2
    pred = np.empty(len(y), dtype=object)
    for fold in (0, 1):
        train, test = folds != fold, folds == fold
        if test.any():
            pred[test] = _Centroids.fit(x[train], y[train]).predict(x[test])
    return pred


def nearest_centroid_accuracy(features: np.ndarray, labels: Sequence[str]) -> float:
    """Two-fold cross-validated accuracy of a nearest-class-mean classifier on z-scored features."""
    x = np.asarray(features, dtype=float).reshape(len(labels), -1)
    y = np.asarray(labels)
    return int((_cross_val_predict(x, y) == y).sum()) / len(y)


def _sanity_features(item: CheckItem) -> list[float]:
    from data.audio import load_audio

    if item.audio is None:
        raise ValueError(f"no audio path for a {item.sub_category!r} item; the audio check needs the world's clips")
    feats = simple_features(load_audio(item.audio))
    return [feats[k] for k in SANITY_FEATURES[item.sub_category]]


def audio_scores(splits: Mapping[str, Sequence[CheckItem]], progress: bool = False) -> dict[str, list[float | None]]:
    """Per item of each split, 1.0/0.0 for whether the audio classifier names the gold answer (None: no classifier).

    Per sub-category, a nearest-class-mean classifier on :data:`SANITY_FEATURES`, fitted on all train items and
    applied to val/test; train's own items get two-fold cross-validated predictions. A sub-category with fewer
    than two train answers seen gets None.
    """
    from tqdm import tqdm

    bar = tqdm(total=sum(map(len, splits.values())), desc="audio features", unit="clip", disable=not progress)
    feats: dict[str, list[list[float]]] = {}
    for split, items in splits.items():
        feats[split] = []
        for item in items:
            feats[split].append(_sanity_features(item))
            bar.update(1)
    bar.close()

    train = list(splits.get("train", []))
    out: dict[str, list[float | None]] = {split: [None] * len(items) for split, items in splits.items()}
    for sub in SPECS:
        idx = [i for i, it in enumerate(train) if it.sub_category == sub]
        x = np.array([feats["train"][i] for i in idx], dtype=float)
        y = np.array([train[i].answer for i in idx])
        if len(set(y)) < 2:
            continue
        for i, p in zip(idx, _cross_val_predict(x, y), strict=True):
            out["train"][i] = float(p == train[i].answer)
        model = _Centroids.fit(x, y)
        for split, items in splits.items():
            rows = [i for i, it in enumerate(items) if it.sub_category == sub]
            if split == "train" or not rows:
                continue
            pred = model.predict(np.array([feats[split][i] for i in rows], dtype=float))
            for i, p in zip(rows, pred, strict=True):
                out[split][i] = float(p == items[i].answer)
    return out


def separability(world_dir: str | Path, split: str = "train") -> dict[str, dict[str, float]]:
    """Nearest-centroid accuracy of :data:`SANITY_FEATURES` per sub-category and difficulty on a generated split.

    Returns ``{sub_category: {"easy": acc, "medium": acc, "hard": acc, "chance": 1/len(answers)}}``. AVQA records
    carry no difficulty, so it is recovered from the world's plan (seed and sizes in world.json).
    """
    from data.audio import load_audio

    world = Path(world_dir)
    manifest = json.loads((world / "world.json").read_text(encoding="utf-8"))
    plan = split_plan(int(manifest["seed"]), split, int(manifest["sizes"][split]))
    recs = json.loads((world / annotation_file(split)).read_text(encoding="utf-8"))
    rows: dict[tuple[str, str], list[tuple[list[float], str]]] = {}
    for r in recs:
        if split == "test":
            sub, diff, gold, path = r["sub-category"], r["difficulty"], r["answer"], world / "test" / r["audio_id"]
        else:
            slot = plan[int(r["id"])]
            sub, diff, gold = r["question_type"], slot.difficulty, r["multi_choice"][r["answer"]]
            if slot.sub_category != sub or slot.label != gold:
                raise ValueError(f"{world}: record {r['id']} does not match world.json's seed/sizes; regenerate it")
            path = world / split / "audio" / f"{r['video_name']}.wav"
        feats = simple_features(load_audio(path))
        rows.setdefault((sub, diff), []).append(([feats[k] for k in SANITY_FEATURES[sub]], gold))
    out: dict[str, dict[str, float]] = {}
    for name in SPECS:
        out[name] = {"chance": round(1 / len(SPECS[name].labels), 3)}
        for d in DIFFICULTIES:
            data = rows.get((name, d), [])
            if len({g for _, g in data}) > 1:
                feats_arr = np.array([f for f, _ in data])
                out[name][d] = round(nearest_centroid_accuracy(feats_arr, [g for _, g in data]), 3)
    return out


# ------------------------------------------------------------------------------------------------ command line


def _ensure_world(out: Path, seed: int | None, sizes: str | None, progress: bool) -> dict[str, Any]:
    """The manifest of the world in ``out``, generating it first if world.json is absent.

    An existing world must match the seed and sizes asked for explicitly: checking a different world than the one
    named on the command line would report numbers for the wrong world.
    """
    manifest_path = out / "world.json"
    if not manifest_path.exists():
        return generate_world(out, seed=0 if seed is None else seed, sizes=parse_sizes(sizes), progress=progress)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    wanted = {"seed": seed, "sizes": parse_sizes(sizes) if sizes is not None else None}
    for field, value in wanted.items():
        if value is not None and manifest.get(field) != value:
            raise ValueError(
                f"{manifest_path} has {field} {manifest.get(field)!r}, not the requested {value!r}; check it without "
                f"--{field}, or give another --out (or delete {out}) to generate the requested world"
            )
    return manifest


def run_check(world_dir: str | Path, *, audio: bool = True, progress: bool = False) -> dict[str, Any]:
    """Check a generated world; writes and returns the report (also ``world_dir/check.json``)."""
    world = Path(world_dir)
    manifest = json.loads((world / "world.json").read_text(encoding="utf-8"))
    names = [*SPLITS, *([MIX] if (world / MIX / MIX_FILE).is_file() else [])]
    splits = {split: load_split(world, split) for split in names}
    summary = summarize(splits, audio_scores(splits, progress=progress) if audio else None)
    bad = failures(summary)
    report = {
        "world": str(world),
        "seed": manifest.get("seed"),
        "sizes": manifest.get("sizes"),
        "max_text_margin_points": MAX_TEXT_MARGIN_POINTS,
        "text_features": {
            "label": "offered choices and each question type's train answer frequencies (ties split evenly)",
            "position": "answer position frequencies in train per number of choices (ties split evenly)",
        },
        "audio_classifier": "nearest class mean on SANITY_FEATURES, fitted on train (2-fold CV on train)",
        "splits": summary,
        "passed": not bad,
        "failures": bad,
    }
    write_text_atomic(world / "check.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def _pct(value: float | None) -> str:
    return "     -" if value is None else f"{100 * value:6.1f}"


def _print(report: Mapping[str, Any]) -> None:
    print(
        f"can text alone answer? gate: text oracle <= chance + {report['max_text_margin_points']:g} points per split"
    )
    print("accuracy in %; label/position: text-only oracles (train frequencies), text: the better; audio: features")
    print(f"{'split':5s}  {'sub-category':15s} {'n':>5s} {'chance':>6s} {'label':>6s} {'posit.':>6s} "
          f"{'text':>6s} {'margin':>6s} {'audio':>6s}")  # fmt: skip
    for split, result in report["splits"].items():
        rows = [("overall", result["overall"]), *result["sub_category"].items()]
        for i, (name, r) in enumerate(rows):
            print(f"{split if i == 0 else '':5s}  {name:15s} {r['n']:5d} {_pct(r['chance'])} {_pct(r['label_oracle'])} "
                  f"{_pct(r['position_oracle'])} {_pct(r['text_oracle'])} {r['margin_points']:+6.1f} "
                  f"{_pct(r['audio'])}")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data.toy check``: 0 when text cannot answer (or ``--no-fail``), 1 when it can, 2 on bad input."""
    ap = argparse.ArgumentParser(
        prog="python -m data.toy check", description="Chance, text-only oracles and an audio classifier per split."
    )
    ap.add_argument("--out", required=True, help="world directory (generated there first if world.json is absent)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the world to generate (default 0)")
    ap.add_argument("--sizes", default=None, help="e.g. train=3000,val=300,test=1980 (unnamed splits keep defaults)")
    ap.add_argument("--no-fail", action="store_true", help="only report: exit 0 even if text can answer")
    ap.add_argument("--no-audio", action="store_true", help="skip the audio classifier (text checks only)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    try:
        manifest = _ensure_world(out, args.seed, args.sizes, progress=not args.no_progress)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not (out / MIX / MIX_MANIFEST).is_file():
        generate_mix(out / MIX, seed=int(manifest.get("seed", 0)), progress=not args.no_progress)
    report = run_check(out, audio=not args.no_audio, progress=not args.no_progress)
    _print(report)
    print(f"wrote {out / 'check.json'}")
    if report["failures"]:
        print(
            "text alone can answer this world (issue 11 requires text oracle <= chance + "
            f"{report['max_text_margin_points']:g} points on every split):\n  " + "\n  ".join(report["failures"])
            + "\nfix: offer only choices that are plausible answers to the question (no never-correct distractors) "
            "and keep answers and positions balanced; see check.json per sub-category. --no-fail only reports.",
            file=sys.stderr,
        )  # fmt: skip
        return 0 if args.no_fail else 1
    return 0
