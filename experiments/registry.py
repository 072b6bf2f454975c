"""The named experiments: Table 2 rows and ablations, each derived from its base with only the fields that differ.

python -m experiments list
"""

from __future__ import annotations

from dataclasses import replace

from experiments.spec import EvalSpec, Experiment

REGISTRY: dict[str, Experiment] = {}


def register(exp: Experiment) -> Experiment:
    if exp.name in REGISTRY:
        raise ValueError(f"experiment {exp.name!r} registered twice")
    REGISTRY[exp.name] = exp
    return exp


def get_experiment(name: str) -> Experiment:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown experiment {name!r}; valid: {', '.join(sorted(REGISTRY))}") from None


DIRECT = register(
    Experiment(
        name="direct",
        method="direct",
        prompt="p2",
        description="Zero-shot baseline: the base model with Prompt <2> on the profile's test set.",
        table2_row="Qwen2-Audio-7B-Instruct, direct inference",
    )
)
DIRECT_SILENT = register(
    replace(
        DIRECT,
        name="direct-silent",
        description="Control: the same prompts with silent audio (how much is answerable without listening).",
        eval=replace(EvalSpec(), audio_mode="silent"),
        table2_row=None,
    )
)
