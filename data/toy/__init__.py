"""A synthetic audio-question-answering "toy world" that a tiny Qwen2-Audio model can learn on CPU in minutes.

Its modules, each importing only the ones listed before it:

* :mod:`data.toy.world`: the definition, pure data (question types, answers, phrasings, synthesis parameters);
* :mod:`data.toy.synth`: the waveforms (:func:`make_clip`);
* :mod:`data.toy.generate`: a world laid out on disk (:func:`generate_world`, the cached :func:`ensure_world`),
  chance level (:func:`chance_accuracy`);
* :mod:`data.toy.check`: the checks of a generated world (text-only oracles, the audio classifier, learnability);
* :mod:`data.toy.instruct`: the toy base model's instruct corpus;
* :mod:`data.toy.cli`: the command line, ``python -m data.toy --out DIR`` and ``python -m data.toy check``.

This package re-exports the names the rest of the suite uses (``from data import toy; toy.ensure_world(...)``);
it imports world, synth and generate only, so that ``python -m data.toy.instruct`` runs its module once.
"""

from __future__ import annotations

from data.toy.generate import (
    DEFAULT_SIZES,
    WORLD_MODULES,
    chance_accuracy,
    ensure_world,
    generate_world,
    parse_sizes,
    question_texts,
    world_dir,
)
from data.toy.synth import make_clip
from data.toy.world import (
    ANSWER_WORDS,
    CAPTIONS,
    COMMON,
    DIFFICULTIES,
    MAX_SECONDS,
    PARAMS,
    SPECS,
    SPLITS,
    SUB_CATEGORIES,
    TASKS,
    WORLD_VERSION,
    SubCategory,
)

__all__ = [
    "ANSWER_WORDS",
    "CAPTIONS",
    "COMMON",
    "DEFAULT_SIZES",
    "DIFFICULTIES",
    "MAX_SECONDS",
    "PARAMS",
    "SPECS",
    "SPLITS",
    "SUB_CATEGORIES",
    "TASKS",
    "WORLD_MODULES",
    "WORLD_VERSION",
    "SubCategory",
    "chance_accuracy",
    "ensure_world",
    "generate_world",
    "make_clip",
    "parse_sizes",
    "question_texts",
    "world_dir",
]
