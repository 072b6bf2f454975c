"""Compare experiments by what their training did: validation gain over step 0, per seed and as mean ± sd.

The playground's reading of an RL change (docs/toy.md): run the experiment and its ablation on a few seeds, then

    python -m analysis.compare grpo-p2 grpo-p2-nokl                 # toy profile, offline W&B runs
    python -m analysis.compare grpo-p2 grpo-p2-nokl --profile paper --wandb ENTITY/PROJECT

For each experiment (the latest finished, non-ad-hoc run per seed, as Table 2 picks them) it prints the
validation accuracy at step 0 and at the last evaluation, the gain between them (the measure the toy recipe was
chosen on), the gain of the best validation checkpoint, and the test accuracy of the checkpoint ``--select``
picks; each as mean ± sample sd over seeds, with the per-seed values. Every experiment after the first gets its
difference from the first in mean last-evaluation gain. Validation only decides; the test column is there to read,
not to choose by.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from analysis.fmt import num, signed, spread
from analysis.runs import RunTables
from analysis.select import (
    TEST_KEYS,
    VAL_KEY,
    MissingRunsError,
    eval_rows,
    pick_runs,
    run_method,
    run_seed,
    select_step,
)
from analysis.sources import report_parser, run_report
from analysis.stats import mean_std


@dataclass(frozen=True)
class SeedResult:
    """One run's validation curve, reduced: step 0, last, best, and the test accuracy of the selected step."""

    seed: int
    val_start: float
    val_last: float
    val_best: float
    best_step: int
    last_step: int
    test_selected: float
    selected_step: int

    @property
    def gain(self) -> float:
        return self.val_last - self.val_start

    @property
    def best_gain(self) -> float:
        return self.val_best - self.val_start


@dataclass(frozen=True)
class Compared:
    experiment: str
    seeds: list[SeedResult]

    def mean_sd(self, attribute: str) -> tuple[float, float | None]:
        return mean_std([getattr(s, attribute) for s in self.seeds])


class NoValidationError(ValueError):
    """A run logged no validation accuracy at step 0 (``eval.at_start`` off, or no ``eval/val``): no gain to read."""


def seed_result(tables: RunTables, run: dict, rule: str) -> SeedResult:
    if run_method(run) not in ("sft", "grpo"):
        raise NoValidationError(f"run {run['run_id']} ({run.get('name')}) trains nothing ({run_method(run)}): compare "
                                "trained experiments")  # fmt: skip
    rows = eval_rows(tables, run["run_id"])
    val = rows.dropna(subset=[VAL_KEY])
    if val.empty or int(val["step"].iloc[0]) != 0:
        raise NoValidationError(f"run {run['run_id']} ({run.get('name')}): no validation accuracy at step 0, so no "
                                "gain over it; rerun with eval.at_start=true (the default)")  # fmt: skip
    best = max(range(len(val)), key=lambda i: (float(val[VAL_KEY].iloc[i]), -int(val["step"].iloc[i])))
    pos, _, _ = select_step(rows, rule)
    return SeedResult(
        seed=int(run_seed(run) or 0), val_start=float(val[VAL_KEY].iloc[0]), val_last=float(val[VAL_KEY].iloc[-1]),
        val_best=float(val[VAL_KEY].iloc[best]), best_step=int(val["step"].iloc[best]),
        last_step=int(val["step"].iloc[-1]), test_selected=float(rows[TEST_KEYS["avg"]].iloc[pos]),
        selected_step=int(rows["step"].iloc[pos]),
    )  # fmt: skip


def compare(
    tables: RunTables, profile: str, experiments: Sequence[str], *, rule: str = "best-val", model: str | None = None,
    include_adhoc: bool = False,
) -> list[Compared]:  # fmt: skip
    """One :class:`Compared` per experiment, in the order given; a :class:`MissingRunsError` names any without runs."""
    picked, _ = pick_runs(tables, profile, experiments, include_adhoc=include_adhoc, model=model)
    missing = [e for e in experiments if e not in picked]
    if missing:
        from analysis.select import missing_message

        raise MissingRunsError(missing, missing_message(missing, profile, what="comparison", model=model))
    return [Compared(e, [seed_result(tables, run, rule) for run in picked[e]]) for e in experiments]


def _cell(per_seed: list[float], *, with_sign: bool = False) -> str:
    """Mean ± sd over seeds, then the per-seed values."""
    each = ", ".join(signed(v) if with_sign else num(v) for v in per_seed)
    return f"{spread(per_seed, with_sign=with_sign)} ({each})"


def render(rows: list[Compared], rule: str) -> str:
    """The comparison as a Markdown table, then each experiment's difference from the first."""
    lines = [
        f"| experiment | seeds | val, step 0 | val, last | val gain (last - 0) | best val gain | test ({rule}) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row.seeds
        lines.append(
            f"| {row.experiment} | {' '.join(str(x.seed) for x in s)} | {_cell([x.val_start for x in s])} "
            f"| {_cell([x.val_last for x in s])} | {_cell([x.gain for x in s], with_sign=True)} "
            f"| {_cell([x.best_gain for x in s], with_sign=True)} | {_cell([x.test_selected for x in s])} |"
        )
    first = rows[0]
    for row in rows[1:]:
        (mean, sd), (ref_mean, ref_sd) = row.mean_sd("gain"), first.mean_sd("gain")
        note = ""
        if sd is not None and ref_sd is not None:  # seeds are independent runs: the two means' errors add
            note = f" (standard error {num(math.sqrt(sd**2 / len(row.seeds) + ref_sd**2 / len(first.seeds)))})"
        lines.append(f"\n{row.experiment} - {first.experiment}: {signed(mean - ref_mean)} points of mean validation "
                     f"gain{note}")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = report_parser("python -m analysis.compare", __doc__, report=False,
                           select_help="the checkpoint whose test accuracy is shown (default best-val)")  # fmt: skip
    parser.add_argument("experiments", nargs="+", help="registry names, the first one the reference")
    args = parser.parse_args(argv)

    def body(tables: RunTables, source: str) -> int:
        rows = compare(tables, args.profile, args.experiments, rule=args.select, model=args.model,
                       include_adhoc=args.include_adhoc)  # fmt: skip
        print(f"{args.profile} profile, {source}; validation accuracy in %, mean ± sd (per seed)\n")
        print(render(rows, args.select), end="")
        return 0

    return run_report(args, args.experiments, body, what="comparison", errors=(NoValidationError,))


if __name__ == "__main__":
    sys.exit(main())
