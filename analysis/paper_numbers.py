"""The paper's Table 2 as data: the five rows it measured and the leaderboard baselines it quoted.

Source: "Reinforcement Learning Outperforms Supervised Fine-Tuning: A Case Study on Audio Question Answering"
(arXiv 2503.11197), Table 2, MMAU test-mini accuracy in percent. Every number here is on the *original* MMAU
test-mini (commit a5cd89a); the revised benchmark (v05.15.25, e.g. f0a4a97) moves scores by up to 10 points, so a
comparison with these numbers is only meaningful for runs evaluated on a5cd89a.

Nothing is computed here; ``python -c "from analysis.paper_numbers import *; print(PAPER_ROWS)"`` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

# The benchmark the paper's numbers were measured on (the original MMAU test-mini file).
PAPER_BENCHMARK_VERSION = "a5cd89a"
PAPER_BASE_MODEL = "Qwen2-Audio-7B-Instruct"  # the model the paper post-trained; its direct row is named after it

TASK_COLUMNS: tuple[str, ...] = ("sound", "music", "speech", "avg")


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's Table 2 (accuracy in percent, MMAU test-mini a5cd89a).

    ``experiment`` is the suite's experiment that reproduces the row (None for quoted baselines).
    """

    label: str
    sound: float
    music: float
    speech: float
    avg: float
    experiment: str | None = None
    benchmark_version: str = PAPER_BENCHMARK_VERSION
    note: str = ""

    def value(self, column: str) -> float:
        """The number in one of :data:`TASK_COLUMNS`."""
        if column not in TASK_COLUMNS:
            raise KeyError(f"unknown column {column!r}; valid: {', '.join(TASK_COLUMNS)}")
        return float(getattr(self, column))


# The rows the paper measured, in the paper's order, keyed by the experiment that reproduces each.
# The labels are the registry's ``table2_row`` strings (experiments/registry.py), so a run's config names its row.
PAPER_ROWS: dict[str, PaperRow] = {
    "direct": PaperRow(
        f"{PAPER_BASE_MODEL}, direct inference", 54.95, 50.98, 42.04, 49.20, "direct",
        note="the paper quotes the MMAU leaderboard value for this row rather than measuring it",
    ),
    "sft-full": PaperRow("Full SFT + Prompt <1>", 60.96, 49.19, 45.35, 51.80, "sft-full"),
    "sft-lora": PaperRow("LoRA SFT + Prompt <1>", 58.26, 58.08, 52.58, 56.40, "sft-lora"),
    "grpo-p2": PaperRow("GRPO + Prompt <2>", 69.37, 66.77, 57.36, 64.50, "grpo-p2"),
    "grpo-p3": PaperRow("GRPO + Prompt <3>", 66.67, 62.87, 53.75, 61.10, "grpo-p3"),
}  # fmt: skip

# The experiments that make up Table 2, in the table's row order.
TABLE2_EXPERIMENTS: tuple[str, ...] = tuple(PAPER_ROWS)

# Baselines the paper quotes from the MMAU leaderboard (not measured by the paper, never measured by this suite).
QUOTED_BASELINES: tuple[PaperRow, ...] = (
    PaperRow("Human", 86.31, 78.22, 82.17, 82.23),
    PaperRow("Gemini Pro 2.0 Flash", 56.46, 58.68, 51.65, 55.60),
    PaperRow("Audio Flamingo 2", 61.56, 73.95, 30.93, 55.48),
    PaperRow("GPT4o + Strong Cap.", 57.35, 49.70, 64.86, 57.30),
    PaperRow("Llama-3-8B-Instruct + Strong Cap.", 50.75, 48.93, 55.25, 52.10),
    PaperRow("Gemini Pro v1.5", 56.75, 49.40, 58.55, 54.90),
    PaperRow("Qwen2-Audio + CoTA", 60.06, 64.30, 60.70, 61.71, note="Audio-Reasoner"),
    PaperRow("Qwen2-Audio + Zero-Shot-CoT", 61.86, 56.29, 55.26, 57.80, note="Audio-CoT"),
)

# The pairs the McNemar section tests: the paper's headline claim is GRPO + Prompt <2> against each SFT row.
MCNEMAR_PAIRS: tuple[tuple[str, str], ...] = (("grpo-p2", "sft-full"), ("grpo-p2", "sft-lora"))


@dataclass(frozen=True)
class QuotedScore:
    """A benchmark average quoted from a leaderboard (never measured here), with the file version it was scored on."""

    label: str
    avg: float
    benchmark_version: str
    source: str
    note: str = ""


# MMAR's leaderboard (github.com/ddlBoJack/MMAR, scored on its first release, 6249700), the rows of the paper's
# models and of the other families the suite supports. Averages only: the leaderboard's per-modality cells are not
# quoted here. "Random guess" is the mean of 1 / number of choices (data.benchmark_registry: by the rule, 29.89).
MMAR_QUOTED: tuple[QuotedScore, ...] = (
    QuotedScore("Random guess", 29.3, "6249700", "MMAR leaderboard"),
    QuotedScore(PAPER_BASE_MODEL, 30.0, "6249700", "MMAR leaderboard", "the paper's base model"),
    QuotedScore(
        "R1-AQA (Qwen2-Audio-7B-Instruct + GRPO)",
        47.6,
        "6249700",
        "MMAR leaderboard",
        "the paper's released GRPO + Prompt <2> model",
    ),  # fmt: skip
    QuotedScore("Qwen2.5-Omni-7B", 56.7, "6249700", "MMAR leaderboard"),
    QuotedScore("Qwen3-Omni Thinking", 66.4, "6249700", "MMAR leaderboard"),
)
# The quoted rows of each benchmark beside MMAU test-mini, by its evaluation set (data.benchmark_registry).
QUOTED_BY_SET: dict[str, tuple[QuotedScore, ...]] = {"mmar": MMAR_QUOTED}
