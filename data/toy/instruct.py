"""The toy "instruct" corpus: what turns the random tiny model into a toy Qwen2-Audio-*Instruct* before any experiment.

The real study starts from an instruction-tuned model that perceives audio (it can caption a clip) and answers in
the requested format, and answers some of the benchmark's question types well and others near chance: post-training
has something to elicit. A random tiny model does none of this, and on a world where text cannot answer, GRPO would
get no reward signal (notes section 9). This corpus, used only to build the base model
(``experiments/toy_base.py``), teaches perception and the answer format, and the answer mapping of a few question
types only (``known``), never the benchmark's questions:

- **perception: captions** (``caption_fraction``, 30% by default): fresh clips of the toy world's sound kinds
  (never the world's own files) with an open question ("Describe the sound.") answered by the clip's caption in
  words of its own ("a double beep", "a deep note", "a female voice"; ``CAPTIONS`` in :mod:`data.toy.world`). No
  caption shares a word with an answer: the base cannot copy its way from a caption to an answer, a skill that
  earlier recipes showed to be learned or not by the luck of the seed.
- **format: generic multiple choice** (the rest): a generic question ("Which option fits the clip?") with options
  drawn from the toy answer words, 75% of the time (``own_options_fraction``) exactly the answers of the clip's
  own sub-category, as the benchmark offers them. The right option is drawn at random, so these items teach the
  answer format and naming one of the listed options, except for the **known** question types
  (``known``; the base's default: noise colour and note height, two of nine), whose own-option items always have
  the clip's answer as the right option. ``own_correct`` (0 by default) would add a faint share of right answers
  everywhere else; an earlier recipe used it (10%), and whether the base picked it up depended on the seed.
- **both acoustic regimes** (``shifted_fraction``, 50%): half of the clips use the test split's shifted
  parameters (pink background noise, lower level, other timbres; fresh clips, never the test files), because the
  real Instruct model had heard sounds like MMAU's before any post-training.

So the base answers the known question types by listening and the other seven near chance, although it can tell
their clips apart (it captions them): post-training has to map what it hears to those answers. The corpus never
uses the benchmark's question phrasings; no item of it is an item of the world. Measured bases: docs/toy.md.

Each multiple-choice item is rendered with one of the three prompts (deterministically by id): Prompt <1> with the
bare choice as target, Prompt <2> with ``<answer>X</answer>``, Prompt <3> with a short generic thought then the
answer. Captions use the open prompt (the question alone, answered in words; ``data.prompts.OPEN_PROMPT``).

    python -m data.toy.instruct --out /tmp/instruct --n 400
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Collection
from pathlib import Path

import numpy as np

from data.audio import write_wav
from data.prompts import OPEN_PROMPT
from data.schema import Item
from data.toy.synth import make_clip
from data.toy.world import ANSWER_WORDS, CAPTIONS, DIFFICULTIES, SPECS

GENERIC_QUESTIONS = (
    "Which option fits the clip?",
    "Choose one of the options.",
    "Pick the best answer for this sound.",
    "What do you hear? Choose an option.",
    "Select the option that fits the audio.",
    "Which of these describes the recording?",
    "Listen and pick one answer.",
    "Which word goes with this sound?",
)
CAPTION_QUESTIONS = (
    "Describe the sound.",
    "What do you hear?",
    "Describe the clip in a few words.",
    "What is this sound?",
)
THOUGHTS = (
    "I listen to the clip and compare it with the options.",
    "I compare each option with what I hear.",
    "The sound fits one of the listed options.",
    "I think about the audio and choose.",
)
PROMPT_MIX = ("p1", "p2", "p3")


def _stable(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def prompt_for(item: Item) -> str:
    """Which prompt an instruct item is trained with: the open prompt for a caption, else a third each of p1-p3
    (fixed by the id)."""
    if not item.choices:
        return OPEN_PROMPT
    return PROMPT_MIX[_stable(item.id) % len(PROMPT_MIX)]


def thought_for(item: Item) -> str:
    return THOUGHTS[_stable(item.id + "/thought") % len(THOUGHTS)]


def vocabulary() -> list[str]:
    """Every phrase of this corpus, for the tiny tokenizer."""
    return [*GENERIC_QUESTIONS, *CAPTION_QUESTIONS, *THOUGHTS, *CAPTIONS.values()]


def instruct_items(
    out_dir: str | Path,
    n: int = 4000,
    *,
    seed: int = 0,
    caption_fraction: float = 0.3,
    own_options_fraction: float = 0.75,
    own_correct: float = 0.0,
    shifted_fraction: float = 0.5,
    known: Collection[str] = (),
) -> list[Item]:
    """Write ``n`` instruct clips under ``out_dir/audio`` and return their items (same seed: same files).

    ``known``: sub-categories whose own-option items always have the clip's answer as the right option (the
    base is taught them); elsewhere the right option is the clip's answer only with probability ``own_correct``.
    """
    out = Path(out_dir)
    names = sorted(SPECS)
    unknown_names = sorted(set(known) - set(names))
    if unknown_names:
        raise ValueError(f"known sub-categories {unknown_names} are not toy sub-categories (one of {names})")
    items: list[Item] = []
    for i in range(n):
        rng = np.random.default_rng([seed, 7919, i])
        item_id = f"instruct-{i:05d}"
        spec = SPECS[names[rng.integers(len(names))]]
        label = str(spec.labels[rng.integers(len(spec.labels))])
        # Clips in both acoustic regimes: the base has heard sounds like the benchmark's, as the real model has.
        regime = "test" if rng.random() < shifted_fraction else "train"
        wave = make_clip(spec.name, label, str(DIFFICULTIES[rng.integers(3)]), rng, split=regime)
        if rng.random() < caption_fraction:
            question = str(CAPTION_QUESTIONS[rng.integers(len(CAPTION_QUESTIONS))])
            choices: list[str] = []
            answer = CAPTIONS[(spec.name, label)]
        else:
            question = str(GENERIC_QUESTIONS[rng.integers(len(GENERIC_QUESTIONS))])
            if rng.random() < own_options_fraction:  # the clip's own answers as options, in random order
                choices = [str(w) for w in rng.permutation(spec.labels)]
                right = rng.random() < own_correct or spec.name in known
            else:  # 2-5 answer words of any sub-category
                choices = [str(w) for w in rng.choice(ANSWER_WORDS, size=int(rng.integers(2, 6)), replace=False)]
                right = False
            # Format only, unless ``right``: the answer is drawn at random, the audio says nothing about it.
            answer = label if right else choices[rng.integers(len(choices))]
        path = write_wav(out / "audio" / f"{item_id}.wav", wave)
        items.append(
            Item(
                id=item_id,
                audio_path=str(path),
                question=question,
                choices=tuple(choices),
                answer=answer,
                source="toy-instruct",
                task=spec.task,
                sub_category=spec.name,
                record={
                    "clip_label": label,
                    "regime": regime,
                },  # what the clip is; the answer may not be (format-only items)
            )  # fmt: skip
        )
    return items


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    items = instruct_items(args.out, args.n, seed=args.seed)
    print(f"{len(items)} instruct items written under {args.out}")


if __name__ == "__main__":
    main()
