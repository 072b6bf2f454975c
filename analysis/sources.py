"""The one skeleton of the three command lines over the runs (:mod:`analysis.table2`, :mod:`analysis.figures`,
:mod:`controls.silent`): their shared options (where the runs are read from, which profile's, which checkpoint
selection, where a report is written), the reading of the runs and the exit statuses.

    parser = report_parser("python -m analysis.table2", __doc__, select_help="...")
    # --wandb-dir | --wandb, --profile, --model, --include-adhoc, --select, and for a report --out, --allow-gaps
    args = parser.parse_args(argv)
    return run_report(args, experiments, lambda tables, source: ...)   # the command's own work: its exit status

Exit statuses, the same for all three: 0 done; 2 no runs to use (the message names the commands that make them);
1 anything else wrong in the inputs, printed as one ``error:`` line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from analysis.crosscheck import GapsError
from analysis.runs import RunTables
from analysis.select import DEFAULT_RULE, SELECTION_RULES, MissingRunsError, missing_message
from data.schema import DataError

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


def report_parser(prog: str, doc: str | None, *, select_help: str, report: bool = True) -> argparse.ArgumentParser:
    """The parser of one of the three command lines, with the shared options (:func:`add_source_arguments`) and
    ``--select``, the checkpoint of each run as Table 2 selects it; ``select_help`` says what the command does with
    it. The command adds its own options."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(parser, report=report)
    parser.add_argument("--select", default=DEFAULT_RULE, choices=list(SELECTION_RULES), help=select_help)
    return parser


def run_report(
    args: argparse.Namespace,
    experiments: Sequence[str],
    body: Callable[[RunTables, str], int],
    *,
    what: str = "Table 2",
    errors: tuple[type[Exception], ...] = (),
) -> int:
    """Read the runs the command line names and run ``body(tables, source)``, the command's own work, which returns
    its exit status. No runs (the offline folder missing, or a :class:`~analysis.select.MissingRunsError`): exit 2,
    naming the commands that make them. A :class:`~analysis.crosscheck.GapsError`, a ``DataError`` (a run file that
    cannot be read; its name is in the message) or one of the command's own ``errors``: exit 1."""
    read = read_runs_or_say_why(args, experiments, what=what)
    if read is None:
        return 2
    try:
        return body(*read)
    except MissingRunsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (GapsError, DataError, *errors) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
