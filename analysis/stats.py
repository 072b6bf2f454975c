"""Small statistics for Table 2: mean and spread over seeds, 95% intervals, and the exact McNemar test.

No scipy: the Student t quantile is computed from the closed-form t distribution function for integer degrees of
freedom (Abramowitz & Stegun 26.7.3-4) and bisection, which is exact to float precision for any number of seeds.

- one seed: a Wilson interval over the items (``data.scoring.wilson_interval``), k and n from the predictions;
- several seeds: a t interval over the seed means (the seeds are the unit of replication; item noise is inside);
- two models on the same items: an exact two-sided McNemar test, i.e. a binomial test on the discordant pairs.

Quick check::

    python -c "from analysis.stats import *; print(mcnemar_exact(8, 2), t_quantile(1))"   # 0.109375 12.706...
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.io import read_json
from data.schema import DataError
from data.scoring import mmau_correct, wilson_interval

__all__ = [
    "PairedCounts",
    "load_correctness",
    "mcnemar_exact",
    "mean_std",
    "paired_counts",
    "t_interval",
    "t_quantile",
    "wilson_interval",
]


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1 in the denominator); the std is None for a single value."""
    if not values:
        raise ValueError("mean_std needs at least one value")
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def _t_central_probability(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer ``df`` (Abramowitz & Stegun 26.7.3 for odd, 26.7.4 for even df)."""
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    total, term = 1.0, 1.0
    if df % 2:  # odd: (2/pi) * (theta + sin cos * [1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ... up to cos^(df-3)])
        if df == 1:
            return 2.0 * theta / math.pi
        for k in range(1, (df - 3) // 2 + 1):
            term *= (2 * k) / (2 * k + 1) * cos2
            total += term
        return 2.0 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    # even: sin * [1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ... up to cos^(df-2)]
    for k in range(1, (df - 2) // 2 + 1):
        term *= (2 * k - 1) / (2 * k) * cos2
        total += term
    return math.sin(theta) * total


def t_quantile(df: int, level: float = 0.95) -> float:
    """The two-sided ``level`` quantile of Student's t (``t_quantile(1) = 12.706...``, ``t_quantile(29) = 2.045...``).

    Solved by bisection on the exact distribution function, to about 1e-12.
    """
    if int(df) != df or df < 1:
        raise ValueError(f"t_quantile needs an integer df >= 1, got {df!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    df = int(df)
    lo, hi = 0.0, 1.0
    while _t_central_probability(hi, df) < level:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if _t_central_probability(mid, df) < level:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """A t interval for the mean of ``values`` (at least two): mean +- t(n-1) * s / sqrt(n)."""
    if len(values) < 2:
        raise ValueError(f"t_interval needs at least two values (one per seed), got {len(values)}")
    mean, std = mean_std(values)
    assert std is not None
    half = t_quantile(len(values) - 1, level) * std / math.sqrt(len(values))
    return mean - half, mean + half


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: under H0 the b + c discordant pairs split Binomial(b + c, 1/2).

    p = min(1, 2 * P(X <= min(b, c))); with no discordant pairs p = 1. E.g. b=8, c=2: 2 * 56/1024 = 0.109375.
    """
    if b < 0 or c < 0 or int(b) != b or int(c) != c:
        raise ValueError(f"mcnemar_exact needs non-negative integer counts, got b={b!r}, c={c!r}")
    n = int(b + c)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))  # exact integers: no rounding until the division
    # int / int: Python rounds the exact quotient once, so n in the thousands (pooled seeds of a 2,000-item test)
    # neither overflows (a float of 2**n above n = 1023 would) nor loses a tiny p to 0 before it underflows.
    return min(1.0, 2 * tail / 2**n)


@dataclass(frozen=True)
class PairedCounts:
    """Per-item agreement of model A and model B on the items both answered (paired by item id).

    ``b``: A right, B wrong; ``c``: A wrong, B right (the discordant pairs McNemar tests). ``only_a``/``only_b``:
    items present in one prediction file only (not tested; a non-zero count means the files do not match).
    """

    n_paired: int
    both_right: int
    b: int
    c: int
    both_wrong: int
    only_a: int = 0
    only_b: int = 0

    def __add__(self, other: PairedCounts) -> PairedCounts:
        return PairedCounts(
            self.n_paired + other.n_paired, self.both_right + other.both_right, self.b + other.b,
            self.c + other.c, self.both_wrong + other.both_wrong, self.only_a + other.only_a,
            self.only_b + other.only_b,
        )  # fmt: skip

    @property
    def p_value(self) -> float:
        return mcnemar_exact(self.b, self.c)


def paired_counts(correct_a: Mapping[str, bool], correct_b: Mapping[str, bool]) -> PairedCounts:
    """Pair two per-item correctness maps by item id and count the four agreement cells."""
    shared = correct_a.keys() & correct_b.keys()
    cells = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    for item in shared:
        cells[bool(correct_a[item]), bool(correct_b[item])] += 1
    return PairedCounts(
        n_paired=len(shared), both_right=cells[True, True], b=cells[True, False], c=cells[False, True],
        both_wrong=cells[False, False], only_a=len(correct_a.keys() - shared), only_b=len(correct_b.keys() - shared),
    )  # fmt: skip


def item_correctness(records: Iterable[Mapping[str, Any]], *, where: str = "predictions") -> dict[str, bool]:
    """Item id -> correct, scoring each MMAU-format record's ``model_output`` with the official MMAU rule.

    Older files name the field ``model_prediction``; a record with neither, or a repeated id, is an error (the
    MMAU script would silently skip the first and a duplicate would count twice).
    """
    out: dict[str, bool] = {}
    for i, rec in enumerate(records):
        output = rec.get("model_output", rec.get("model_prediction"))
        if output is None:
            raise DataError(f"{where}: record {i} (id {rec.get('id')!r}) has no model_output")
        item = str(rec["id"])
        if item in out:
            raise DataError(f"{where}: item id {item!r} appears twice")
        out[item] = mmau_correct(str(output), str(rec["answer"]), list(rec["choices"]))
    return out


def load_correctness(path: str | Path) -> dict[str, bool]:
    """Per-item correctness of one saved ``predictions.json`` (a JSON list of MMAU-format records)."""
    records = read_json(path)
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON list of prediction records")
    return item_correctness(records, where=str(path))
