"""Number formatting shared by the reports: fixed precision, so that rerunning on the same runs gives identical files.

from analysis.fmt import num, signed, spread; spread([51.2, 52.0])  # '51.60 ± 0.57'
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from analysis.stats import mean_std


def round2(x: float) -> float:
    """Round half up to 2 decimals, as a reader would: (33.33 + 100.00) / 2 -> 66.67.

    The float noise below 1e-9 is dropped first (that mean is 66.66499999999999 in binary floating point).
    """
    return float(Decimal(repr(round(float(x), 9))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def num(x: float | None) -> str:
    return "n/a" if x is None else f"{round2(x):.2f}"


def signed(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{round2(x) + 0.0:+.2f}"  # + 0.0 turns -0.0 into 0.0, so a zero difference prints as +0.00


def spread(values: Sequence[float] | None, pm: str = "±", *, with_sign: bool = False) -> str:
    """Mean (± std over seeds when there are several) of per-seed values; "n/a" for None."""
    if values is None:
        return "n/a"
    mean, std = mean_std(list(values))
    return (signed(mean) if with_sign else num(mean)) + (f" {pm} {num(std)}" if std is not None else "")


_TEX_ESCAPES = {"&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$", "{": r"\{", "}": r"\}",
                "<": r"$\langle$", ">": r"$\rangle$", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}  # fmt: skip
TEX_PM = "$\\pm$"


def tex(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)


def tex_minus(text: str) -> str:
    """A leading minus sign as a math minus (a bare "-" prints as a hyphen)."""
    return "$-$" + text[1:] if text.startswith("-") else text
