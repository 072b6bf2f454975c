"""Answer extraction, the official MMAU matching rule, the original code's exact-match reward, and metric tables.

Pure functions on strings and plain rows: no torch, no files. The evaluator, the rewards and ``python -m data.score``
all go through this module, so that "what counts as correct" is defined in exactly one place.

Extraction and matching are kept apart (as the original R1-AQA evaluation does): first ``extract_answer`` pulls the
text out of ``<answer>...</answer>``, then ``mmau_correct`` applies MMAU's token-set rule to that string as given.

Quick check::

    python -c "from data.scoring import *; print(mmau_correct(extract_answer('<answer>Man</answer>'), 'Man', ['Man', 'Woman']))"
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from data.benchmark_registry import MMAU, MMAU_DIFFICULTIES, MMAU_TASKS, BenchmarkSpec

TASKS: tuple[str, ...] = MMAU_TASKS
DIFFICULTIES: tuple[str, ...] = MMAU_DIFFICULTIES

_ANSWER_DOTALL = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
# The original GRPO accuracy reward searched without DOTALL: an answer spanning lines fell back to the whole output.
_ANSWER_LINE = re.compile(r"<answer>(.*?)</answer>")
_WORD = re.compile(r"\b\w+\b")


def extract_answer(text: str, *, dotall: bool = True) -> str:
    """The stripped text inside the first ``<answer>...</answer>``; without a tag, the whole output stripped.

    ``dotall=True`` (the default, used for evaluation) lets the answer span newlines; ``dotall=False`` reproduces the
    original code's training reward, where ``<answer>\\nMan\\n</answer>`` has no match and the whole text is used.
    """
    m = (_ANSWER_DOTALL if dotall else _ANSWER_LINE).search(text)
    return (m.group(1) if m else text).strip()


def has_answer(text: str) -> bool:
    """Whether ``text`` holds a complete ``<answer>...</answer>``: the match :func:`extract_answer` takes (DOTALL).

    Without one, extraction falls back to the whole output (a truncated think-then-answer output, for instance).
    """
    return _ANSWER_DOTALL.search(text) is not None


def mmau_tokens(s: str) -> set[str]:
    """MMAU's tokenizer: lowercase, then the set of ``\\b\\w+\\b`` words (Unicode word characters, punctuation dropped)."""
    return set(_WORD.findall(s.lower()))


def mmau_correct(prediction: str, answer: str, choices: Sequence[str]) -> bool:
    """The official MMAU string-match rule, applied to ``prediction`` exactly as given (no extraction here).

    Correct iff the prediction has at least one token, contains every token of the gold answer, and contains no
    token that belongs to a non-gold choice but not to the gold answer. A choice whose token set equals the gold's
    (a duplicated choice, or one differing only in case or punctuation) contributes nothing.

    A known blind spot, kept because it is the official rule: a *wrong* choice made of the same words as the gold in
    another order ("first: frustration, second: neutral" vs "first: neutral, second: frustration") also scores as
    correct. 4 items of a5cd89a and 9 of f0a4a97 have such a choice.
    """
    pred = mmau_tokens(prediction)
    if not pred:
        return False
    gold = mmau_tokens(answer)
    if not gold <= pred:
        return False
    wrong: set[str] = set()
    for choice in choices:
        toks = mmau_tokens(choice)
        if toks != gold:
            wrong |= toks - gold
    return pred.isdisjoint(wrong)


def exact_match(prediction: str, answer: str) -> bool:
    """The original R1-AQA accuracy reward: stripped, case-sensitive string equality with the gold choice text."""
    return prediction.strip() == answer.strip()


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n``, in percent (z=1.96: 95%).

    Chosen over the normal approximation because it stays inside [0, 100] and is sensible at 0% or 100% accuracy.
    """
    if n <= 0:
        raise ValueError(f"wilson_interval needs n > 0, got n={n}")
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval needs 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return 100.0 * max(0.0, center - half), 100.0 * min(1.0, center + half)


def _get(row: Any, key: str) -> Any:
    # Rows may be dicts (per-item JSON) or objects (dataclasses, namedtuples); a missing field reads as None.
    if isinstance(row, Mapping):
        return row.get(key)
    return getattr(row, key, None)


def _pct(k: int, n: int) -> float | None:
    return round(100.0 * k / n, 2) if n else None


def _ci(k: int, n: int) -> list[float] | None:
    if not n:
        return None
    lo, hi = wilson_interval(k, n)
    return [round(lo, 2), round(hi, 2)]


def _group(counts: Mapping[str, list[int]]) -> dict[str, dict[str, Any]]:
    return {key: {"n": n, "n_correct": k, "accuracy": _pct(k, n)} for key, (k, n) in counts.items()}


def _ordered(values: Iterable[str], order: Sequence[str]) -> list[str]:
    # Known values first in their natural order, anything else after, alphabetically.
    values = set(values)
    return [v for v in order if v in values] + sorted(v for v in values if v not in order)


def compute_metrics(rows: Iterable[Any], benchmark: BenchmarkSpec = MMAU) -> dict[str, Any]:
    """Accuracy per column value (MMAU: task; MMAR: modality), micro average, and per breakdown, with 95% intervals.

    Each row needs ``correct`` and the item attributes the benchmark breaks down by (dict keys or attributes):
    ``task`` (the column value), and MMAU's ``difficulty`` and ``sub_category`` or MMAR's ``category`` and
    ``sub_category``. Percentages are rounded to 2 decimals. ``avg`` is the micro average over all rows (what both
    benchmarks report), not the mean of the column accuracies. A known column value with no rows is reported as
    ``None`` with n 0 rather than dropped, so that tables keep their columns; rows with an unexpected value count in
    ``avg`` and get their own entry.
    """
    columns = benchmark.columns
    by_column: dict[str, list[int]] = {t: [0, 0] for t in columns.order}
    by_breakdown: dict[str, dict[str, list[int]]] = {b.name: {} for b in benchmark.breakdowns}
    k_all = n_all = 0
    for row in rows:
        ok = int(bool(_get(row, "correct")))
        k_all += ok
        n_all += 1
        cells = [(by_column, _get(row, columns.name))]
        cells += [(by_breakdown[b.name], _get(row, b.name)) for b in benchmark.breakdowns]
        for table, key in cells:
            if key is None:
                continue
            cell = table.setdefault(str(key), [0, 0])
            cell[0] += ok
            cell[1] += 1
    accuracy = {t: _pct(k, n) for t, (k, n) in by_column.items()}
    accuracy["avg"] = _pct(k_all, n_all)
    ci95 = {t: _ci(k, n) for t, (k, n) in by_column.items()}
    ci95["avg"] = _ci(k_all, n_all)
    out: dict[str, Any] = {
        "n": n_all,
        "n_correct": k_all,
        "accuracy": accuracy,
        f"n_by_{columns.name}": {t: n for t, (_, n) in by_column.items()},
    }
    for b in benchmark.breakdowns:
        counts = by_breakdown[b.name]
        out[f"by_{b.name}"] = _group({v: counts[v] for v in _ordered(counts, b.order)})
    out["ci95"] = ci95
    return out


def chance_percent(records: Sequence[Mapping[str, Any]]) -> float:
    """Expected accuracy (%) of answering each item with one of its choices drawn uniformly, by the official rule.

    A duplicated gold choice counts twice (either copy is right); an answer that is none of its choices (MMAR's
    multi-answer items) is right only for a choice the rule accepts (a trailing-space twin, say).
    """
    if not records:
        raise ValueError("chance_percent needs at least one record")
    total = 0.0
    for r in records:
        choices = list(r["choices"])
        total += sum(mmau_correct(c, r["answer"], choices) for c in choices) / len(choices)
    return round(100.0 * total / len(records), 2)


def _fmt_acc(acc: float | None) -> str:
    return "   n/a" if acc is None else f"{acc:6.2f}"


def _fmt_ci(ci: Sequence[float] | None) -> str:
    return "" if ci is None else f"[{ci[0]:6.2f}, {ci[1]:6.2f}]"


def format_table(metrics: Mapping[str, Any]) -> str:
    """A plain-text table of :func:`compute_metrics` output: columns and average with n and 95% CI, then difficulty
    (MMAU) or category layer (MMAR)."""
    acc, ci, n_task = metrics["accuracy"], metrics["ci95"], metrics["n_by_task"]
    width = max([10] + [len(t) for t in acc])
    lines = [f"{'':<{width}} {'acc %':>6} {'n':>5}  95% CI (Wilson)", "-" * (width + 35)]
    for task in [t for t in acc if t != "avg"]:
        lines.append(f"{task:<{width}} {_fmt_acc(acc[task])} {n_task.get(task, 0):>5}  {_fmt_ci(ci.get(task))}")
    lines.append(f"{'average':<{width}} {_fmt_acc(acc['avg'])} {metrics['n']:>5}  {_fmt_ci(ci.get('avg'))}")
    # The benchmark's first breakdown (compute_metrics writes them in the registry's order): MMAU's difficulty,
    # MMAR's category layer.
    first = next((k for k in metrics if k.startswith("by_")), None)
    if first and metrics[first]:
        lines.append("-" * (width + 35))
        for value, cell in metrics[first].items():
            lines.append(f"{value:<{width}} {_fmt_acc(cell['accuracy'])} {cell['n']:>5}")
    return "\n".join(lines)
