"""The toy "instruct" corpus: what turns the random tiny model into a toy Qwen2-Audio-*Instruct* before any experiment.

The real study starts from an instruction-tuned model that already answers in the requested format and picks one of
the listed options, at about chance level on MMAU for a model of its kind and with some weak, audio-dependent
preferences. A random tiny model does none of this, so GRPO would get no reward signal at all (notes section 9).
This corpus, used only to build the base model (``experiments/toy_base.py``), teaches exactly that and no more:

- **format and option copying** (85% of items by default): generic multiple-choice questions ("Which option fits
  the clip?") whose options are drawn from the toy answer words (so the words GRPO will need are the ones the base
  learned to copy), with a *random* correct option: the audio carries no information, so the base learns the form,
  never the tasks;
- **a weak audio primer** (15%): clips of the toy world's own sub-categories (train-distribution parameters, fresh
  random clips, never the train split's files) with the sub-category's answers as options, labelled correctly
  only half of the time (else a random option). This leaves a faint audio-dependent preference for GRPO to amplify,
  the way the real Instruct model's pre-training does; without it, GRPO on a tiny model collapses onto one answer
  per question type (notes section 9).

Each item is rendered with one of the three prompts (deterministically by id): Prompt <1> with the bare choice as
target, Prompt <2> with ``<answer>X</answer>``, Prompt <3> with a short generic thought then the answer.

    python -m data.toy_instruct --out /tmp/instruct --n 400
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from data.audio import write_wav
from data.schema import Item
from data.toy import ANSWER_WORDS, DIFFICULTIES, SPECS, make_clip

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
    """Which prompt an instruct item is trained with (a third each, fixed by the id)."""
    return PROMPT_MIX[_stable(item.id) % len(PROMPT_MIX)]


def thought_for(item: Item) -> str:
    return THOUGHTS[_stable(item.id + "/thought") % len(THOUGHTS)]


def vocabulary() -> list[str]:
    """Every phrase of this corpus, for the tiny tokenizer."""
    return [*GENERIC_QUESTIONS, *THOUGHTS]


def instruct_items(
    out_dir: str | Path, n: int = 4000, *, seed: int = 0, primer_fraction: float = 0.15, primer_correct: float = 0.5
) -> list[Item]:
    """Write ``n`` instruct clips under ``out_dir/audio`` and return their items (same seed: same files)."""
    out = Path(out_dir)
    specs = sorted(SPECS)
    items: list[Item] = []
    for i in range(n):
        rng = np.random.default_rng([seed, 7919, i])
        item_id = f"instruct-{i:05d}"
        if rng.random() < primer_fraction:
            spec = SPECS[specs[rng.integers(len(specs))]]
            label = str(spec.labels[rng.integers(len(spec.labels))])
            wave = make_clip(spec.name, label, str(DIFFICULTIES[rng.integers(3)]), rng, split="train")
            choices = list(spec.labels)
            rng.shuffle(choices)
            answer = label if rng.random() < primer_correct else str(choices[rng.integers(len(choices))])
            question = str(spec.train[rng.integers(len(spec.train))])
        else:
            spec = SPECS[specs[rng.integers(len(specs))]]
            # Any clip will do: the answer below does not depend on it.
            wave = make_clip(spec.name, str(spec.labels[0]), "easy", rng, split="train")
            k = int(rng.integers(2, 6))
            choices = [str(w) for w in rng.choice(ANSWER_WORDS, size=k, replace=False)]
            answer = choices[rng.integers(k)]
            question = str(GENERIC_QUESTIONS[rng.integers(len(GENERIC_QUESTIONS))])
        path = write_wav(out / "audio" / f"{item_id}.wav", wave)
        items.append(
            Item(
                id=item_id,
                audio_path=str(path),
                question=question,
                choices=tuple(choices),
                answer=answer,
                source="toy-instruct",
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
