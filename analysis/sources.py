"""The command-line options shared by the analysis reports (:mod:`analysis.table2`, :mod:`analysis.figures`,
:mod:`controls.silent`): where the runs are read from, which profile's, and where a report is written.

    parser = argparse.ArgumentParser(...)
    add_source_arguments(parser)  # --wandb-dir | --wandb, --profile, --model, --include-adhoc, --out, --allow-gaps
    args = parser.parse_args(argv)
    read = read_runs_or_say_why(args, experiments)   # (RunTables, where they came from), or None: exit 2
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from analysis.runs import RunTables
from analysis.select import missing_message

REPORTS_DIR = Path("reports")


def default_out_dir(profile: str, model: str | None = None) -> Path:
    """Where the reports of ``profile`` go without ``--out``: ``reports/<profile>/`` (relative to the working
    directory), so that a smoke run never overwrites the toy reports; on another model than the profile's own
    (``--model``): ``reports/<profile>/<model>/``, as its runs are in ``outputs/<profile>/<model>/``."""
    from analysis.select import model_flag
    from experiments.profiles import model_slug

    return REPORTS_DIR / profile / model_slug(str(model)) if model_flag(profile, model) else REPORTS_DIR / profile


def add_source_arguments(parser: argparse.ArgumentParser, *, report: bool = True) -> None:
    """The options of analysis.table2, analysis.figures and controls.silent: where the runs are (``--wandb-dir`` /
    ``--wandb``), which (``--profile``, ``--include-adhoc``) and, for a report (``report``), the run directory check
    (``--allow-gaps``) and ``--out``."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wandb-dir", default=None,
                        help="folder of offline W&B runs (default: $WANDB_DIR, else <outputs>/wandb)")  # fmt: skip
    source.add_argument("--wandb", default=None, metavar="ENTITY/PROJECT", help="read the runs from the W&B service")
    from experiments.profiles import PROFILES

    parser.add_argument("--profile", default="toy", choices=list(PROFILES),
                        help="the profile whose runs to use (default toy)")  # fmt: skip
    parser.add_argument("--model", default=None,
                        help="the model whose runs to use, as given to `experiments run --model` (default: the "
                        "profile's own)")  # fmt: skip
    parser.add_argument("--include-adhoc", action="store_true",
                        help="let ad hoc runs (--set overrides, non-canonical settings) be selected too; the report "
                        "marks them")  # fmt: skip
    if report:
        parser.add_argument("--out", default=None, help="output folder (default reports/<profile>)")
        parser.add_argument("--allow-gaps", action="store_true",
                            help="write the report even when the W&B runs disagree with their run directories on "
                            "this machine (the problems are listed)")  # fmt: skip


def out_dir(args: argparse.Namespace) -> Path:
    return Path(args.out) if args.out else default_out_dir(args.profile, args.model)


def read_runs(args: argparse.Namespace, experiments: Sequence[str]) -> tuple[RunTables, str]:
    """The runs named by the command line, and a description of where they came from.

    Raises FileNotFoundError when the offline folder does not exist.
    """
    import warnings

    from analysis.runs import RunReadWarning, read_api_runs, read_offline_runs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunReadWarning)  # the problems are reported in the notes instead
        if args.wandb:
            # "group" is a top-level run field, so this filter is reliable (nested config filters are not).
            return read_api_runs(args.wandb, filters={"group": {"$in": list(experiments)}}), f"W&B {args.wandb}"
        if args.wandb_dir is None:
            from experiments.tracking import wandb_dir

            args.wandb_dir = str(wandb_dir())
        return read_offline_runs(args.wandb_dir), "offline W&B runs"


def read_runs_or_say_why(
    args: argparse.Namespace, experiments: Sequence[str], what: str = "Table 2"
) -> tuple[RunTables, str] | None:
    """:func:`read_runs` for the analysis CLIs: None after printing what is missing and the commands that make it
    (their exit 2) when the offline folder does not exist."""
    try:
        return read_runs(args, experiments)
    except FileNotFoundError as exc:
        print(
            f"error: {exc}\n{missing_message(list(experiments), args.profile, what=what, model=args.model)}",
            file=sys.stderr,
        )
        return None
