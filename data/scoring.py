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

TASKS: tuple[str, ...] = ("sound", "music", "speech")
DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")

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


def compute_metrics(rows: Iterable[Any]) -> dict[str, Any]:
    """Accuracy per task, micro average, per difficulty and per sub-category, with 95% Wilson intervals.

    Each row needs ``task``, ``difficulty``, ``sub_category`` and ``correct`` (dict keys or attributes). Percentages
    are rounded to 2 decimals. ``avg`` is the micro average over all rows (what MMAU reports), not the mean of the
    three task accuracies. A task with no rows is reported as ``None`` with n 0 rather than dropped, so that tables
    keep their columns; rows with an unexpected task count in ``avg`` and get their own entry.
    """
    by_task: dict[str, list[int]] = {t: [0, 0] for t in TASKS}
    by_diff: dict[str, list[int]] = {}
    by_sub: dict[str, list[int]] = {}
    k_all = n_all = 0
    for row in rows:
        ok = int(bool(_get(row, "correct")))
        k_all += ok
        n_all += 1
        task = _get(row, "task")
        for table, key in ((by_task, task), (by_diff, _get(row, "difficulty")), (by_sub, _get(row, "sub_category"))):
            if key is None:
                continue
            cell = table.setdefault(str(key), [0, 0])
            cell[0] += ok
            cell[1] += 1
    # Known difficulties first in their natural order, anything else after, alphabetically.
    diff_order = [d for d in DIFFICULTIES if d in by_diff] + sorted(d for d in by_diff if d not in DIFFICULTIES)
    accuracy = {t: _pct(k, n) for t, (k, n) in by_task.items()}
    accuracy["avg"] = _pct(k_all, n_all)
    ci95 = {t: _ci(k, n) for t, (k, n) in by_task.items()}
    ci95["avg"] = _ci(k_all, n_all)
    return {
        "n": n_all,
        "n_correct": k_all,
        "accuracy": accuracy,
        "n_by_task": {t: n for t, (_, n) in by_task.items()},
        "by_difficulty": _group({d: by_diff[d] for d in diff_order}),
        "by_sub_category": _group({s: by_sub[s] for s in sorted(by_sub)}),
        "ci95": ci95,
    }


def _fmt_acc(acc: float | None) -> str:
    return "   n/a" if acc is None else f"{acc:6.2f}"


def _fmt_ci(ci: Sequence[float] | None) -> str:
    return "" if ci is None else f"[{ci[0]:6.2f}, {ci[1]:6.2f}]"


def format_table(metrics: Mapping[str, Any]) -> str:
    """A plain-text table of :func:`compute_metrics` output: tasks and average with n and 95% CI, then difficulty."""
    acc, ci, n_task = metrics["accuracy"], metrics["ci95"], metrics["n_by_task"]
    lines = [f"{'':<10} {'acc %':>6} {'n':>5}  95% CI (Wilson)", "-" * 45]
    for task in [t for t in acc if t != "avg"]:
        lines.append(f"{task:<10} {_fmt_acc(acc[task])} {n_task.get(task, 0):>5}  {_fmt_ci(ci.get(task))}")
    lines.append(f"{'average':<10} {_fmt_acc(acc['avg'])} {metrics['n']:>5}  {_fmt_ci(ci.get('avg'))}")
    if metrics.get("by_difficulty"):
        lines.append("-" * 45)
        for diff, cell in metrics["by_difficulty"].items():
            lines.append(f"{diff:<10} {_fmt_acc(cell['accuracy'])} {cell['n']:>5}")
    return "\n".join(lines)
