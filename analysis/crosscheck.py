"""Check the W&B runs behind a report against their run directories on this machine.

Table 2 and the figures are built from W&B (selection included), but a run writes its evaluations to its run
directory first: ``checkpoint_evals.jsonl`` gets each evaluation as it happens (one line, flushed), while W&B offline
buffers about 15 s, so a killed process can lose W&B rows that are on disk. For every selected run whose run
directory (``config.output_dir``) exists here, :func:`check_runs` compares

- the run's evaluation rows in W&B (:func:`analysis.select.eval_rows`: one per step, the last logged) with the
  run directory's ``checkpoint_evals.jsonl`` (one per step, the last written; a ``direct`` run directory without
  one, as older versions wrote them: its ``metrics.json`` at step 0): steps on disk missing from W&B, steps in W&B
  missing on disk, and values of ``eval/test/{sound,music,speech,avg}`` and ``eval/val/avg`` that differ by more
  than :data:`TOLERANCE` (both sides log the same numbers, rounded to 2 decimals by
  :func:`data.scoring.compute_metrics`);
- that the run directory holds ``run_complete.json`` (W&B may say finished for a run that never completed on disk);
- that the directory's ``wandb_run_id`` (when there is one) names this run, not a later run written in its place.

A run whose directory is not on this machine (read from the W&B service, made elsewhere) is not checked, and the
reports say so; that is not a problem. Each :class:`Problem` names the experiment, seed, run id and name, the run
directory and the steps. The reports fail (:class:`GapsError`, exit status 1) while there are problems, unless
``--allow-gaps``, and then list them in their notes.

:func:`read_decoding` reads how a selected evaluation was decoded (compute dtype, decoding source, truncation and
missing-answer rates) from its test ``metrics.json``, only in a run directory this check found here and owned by the
run; any other evaluation's decoding is "unknown", with the reason (run dir not here or another run's, metrics.json
written by an older version). Table 2 refuses to mix decodings (:mod:`analysis.table2`).

Usage::

    from analysis.crosscheck import check_runs
    check = check_runs(tables, selection.runs)      # experiment -> run rows, as analysis.select.pick_runs gives
    check.problems, check.status("grpo2s0")         # [Problem, ...], "yes (4 evaluations)"
    read_decoding(check, "grpo2s0", checkpoint.metrics_path)  # Decoding("float32", "neutral", ...)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.runs import RunTables
from analysis.select import (
    STEP_KEY,
    TEST_KEYS,
    VAL_KEY,
    eval_rows,
    last_per_step,
    read_metrics,
    run_method,
    run_output_dir,
    run_seed,
)
from data.run_files import COMPLETE_MARKER, EVAL_LOG, METRICS_FILE, RUN_ID_FILE

CHECKED_KEYS: tuple[str, ...] = (*TEST_KEYS.values(), VAL_KEY)
# Both sides hold the same number, rounded to 2 decimals; anything beyond float noise is a real difference.
TOLERANCE = 0.006

# Problem kinds
MISSING_IN_WANDB = "missing in W&B"
MISSING_ON_DISK = "missing on disk"
VALUES_DIFFER = "values differ"
INCOMPLETE = "incomplete"
UNREADABLE = "unreadable"
OTHER_RUN = "other run"

NOT_ON_THIS_MACHINE = "run dir not on this machine"  # why a run is not checked (RunCheck.reason)


@dataclass(frozen=True)
class Problem:
    """One disagreement between a W&B run and its run directory."""

    kind: str  # one of the kinds above
    experiment: str
    seed: int | None
    run_id: str
    run_name: str
    run_dir: str
    steps: tuple[int, ...] = ()
    detail: str = ""

    def message(self) -> str:
        steps = ", ".join(str(s) for s in self.steps)
        what = {
            MISSING_IN_WANDB: f"step(s) {steps} on disk ({self.detail}) but missing from W&B",
            MISSING_ON_DISK: f"step(s) {steps} in W&B but missing on disk ({self.detail})",
            VALUES_DIFFER: f"W&B and disk values differ at step(s) {steps} ({self.detail})",
            INCOMPLETE: f"no {COMPLETE_MARKER}: the run never completed on disk, although W&B says finished",
        }.get(self.kind, self.detail)
        return (f"{self.experiment} seed {self.seed}, run {self.run_id} ({self.run_name or 'unnamed'}), run dir "
                f"{self.run_dir}: {what}")  # fmt: skip


@dataclass(frozen=True)
class RunCheck:
    """The outcome for one run: checked against its run directory or not (and why), and the problems found."""

    experiment: str
    seed: int | None
    run_id: str
    run_name: str
    run_dir: str | None
    checked: bool
    n_disk: int = 0  # evaluations (distinct steps) in the run directory
    reason: str = ""  # why not checked
    problems: tuple[Problem, ...] = ()

    @property
    def status(self) -> str:
        """For the reports' provenance: "yes (N evaluations)" or "no: <why>", with the problems counted."""
        if self.checked:
            text = f"yes ({self.n_disk} evaluation{'' if self.n_disk == 1 else 's'})"
        else:
            text = f"no: {self.reason}"
        if self.problems:
            text += f", {len(self.problems)} problem{'' if len(self.problems) == 1 else 's'} (see the notes)"
        return text


@dataclass
class CrossCheck:
    """Every checked (or not checked) run, in report order."""

    runs: list[RunCheck] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        return [p for run in self.runs for p in run.problems]

    def run(self, run_id: str) -> RunCheck | None:
        return next((r for r in self.runs if r.run_id == run_id), None)

    def status(self, run_id: str) -> str:
        found = self.run(run_id)
        return found.status if found is not None else "no: not checked"

    def notes(self) -> list[str]:
        """One note per problem, for a report's notes."""
        return [f"Run directory check: {p.message()}" for p in self.problems]


class GapsError(Exception):
    """The W&B runs behind a report disagree with their run directories; ``check`` holds the problems."""

    def __init__(self, check: CrossCheck, what: str = "Table 2"):
        super().__init__(failure_message(check, what))
        self.check = check


def failure_message(check: CrossCheck, what: str = "Table 2") -> str:
    """The problems, one per line, what they mean and the two ways on (the message of the exit-1 failure)."""
    problems = check.problems
    lines = [f"the W&B runs behind {what} disagree with their run directories on this machine "
             f"({len(problems)} problem{'' if len(problems) == 1 else 's'}):"]  # fmt: skip
    lines += [f"  - {p.message()}" for p in problems]
    incomplete = {(p.experiment, p.run_dir) for p in problems if p.kind == INCOMPLETE}
    if incomplete:
        lines += ["A run that never completed was killed (and W&B loses the last seconds of a killed run's logging): "
                  "resuming it finishes the run and logs again what W&B lacks:"]  # fmt: skip
        lines += [f"  python -m experiments run {e} --output-dir {d} --resume" for e, d in sorted(incomplete)]
    if any(p.kind == MISSING_IN_WANDB and (p.experiment, p.run_dir) not in incomplete for p in problems):
        lines += ["W&B lacks evaluations of a run that completed on disk (a complete run is left as it is by "
                  "--resume): rerun it to include it."]  # fmt: skip
    lines += ["W&B is the report's source. Pass --allow-gaps to write the report from W&B as it is, with these "
              "problems in its notes."]  # fmt: skip
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Reading the run directory


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def read_disk_evals(run_dir: str | Path, *, direct: bool = False) -> tuple[pd.DataFrame | None, str, list[str]]:
    """The evaluations a run directory holds, in the shape of :func:`analysis.select.eval_rows`.

    ``checkpoint_evals.jsonl``, one row per step (the last written: runs of earlier versions repeat the last save's line for the final model);
    for a ``direct`` run directory without one (written by an older version): ``metrics.json`` (accuracy in percent,
    as logged) at step 0. Returns (rows, the file read, problems reading it); rows is None when the file is absent.
    """
    run_dir = Path(run_dir)
    columns = ["step", *CHECKED_KEYS]
    if direct and not (run_dir / EVAL_LOG).is_file():
        path = run_dir / METRICS_FILE
        if not path.is_file():
            return None, path.name, []
        try:
            accuracy = json.loads(path.read_text(encoding="utf-8"))["accuracy"]
            row = {"step": 0, **{key: _number(accuracy.get(task)) for task, key in TEST_KEYS.items()}}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return None, path.name, [f"{path.name} not readable ({exc})"]
        return pd.DataFrame([{**row, VAL_KEY: math.nan}], columns=columns), path.name, []
    path = run_dir / EVAL_LOG
    if not path.is_file():
        return None, path.name, []
    rows: list[dict[str, Any]] = []
    broken: list[int] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return None, path.name, [f"{path.name} not readable ({exc})"]
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            step = record.get(STEP_KEY, record.get("step"))
            if isinstance(step, bool) or not isinstance(step, (int, float)):
                raise ValueError("no step")
        except (ValueError, AttributeError):
            broken.append(n)  # a line cut by a kill (and whatever was appended to it on resume)
            continue
        rows.append({"step": int(step), **{key: _number(record.get(key)) for key in CHECKED_KEYS}})
    problems = [f"{path.name} line(s) {', '.join(map(str, broken))} not readable"] if broken else []
    frame = pd.DataFrame(rows, columns=columns)
    return last_per_step(frame, "step").reset_index(drop=True), path.name, problems


# --------------------------------------------------------------------------------------------------------------
# Comparing


def _same(a: float, b: float) -> bool:
    if a != a or b != b:
        return a != a and b != b  # absent on both sides
    return abs(a - b) <= TOLERANCE


def _fmt(x: float) -> str:
    return "absent" if x != x else f"{x:.2f}"


def check_run(tables: RunTables, run: Mapping[str, Any], experiment: str) -> RunCheck:
    """Check one run (a row of ``tables.runs``) against its run directory, if that directory is on this machine."""
    run_id, name, seed = str(run["run_id"]), str(run.get("name") or ""), run_seed(run)
    output_dir = run_output_dir(run)
    head = {"experiment": experiment, "seed": seed, "run_id": run_id, "run_name": name, "run_dir": output_dir}
    if output_dir is None:
        return RunCheck(**head, checked=False, reason="no run dir in its W&B config")
    run_dir = Path(output_dir)
    if not run_dir.is_dir():
        return RunCheck(**head, checked=False, reason=NOT_ON_THIS_MACHINE)

    def problem(kind: str, steps: Sequence[int] = (), detail: str = "") -> Problem:
        return Problem(kind, experiment, seed, run_id, name, output_dir, tuple(steps), detail)

    owner_file = run_dir / RUN_ID_FILE
    owner = owner_file.read_text(encoding="utf-8").strip() if owner_file.is_file() else ""
    if owner and owner != run_id:
        detail = (f"its {RUN_ID_FILE} names W&B run {owner}: another run (a rerun, or another machine's run at the "
                  "same path) wrote this directory, so its files are not this run's")  # fmt: skip
        return RunCheck(**head, checked=False, reason=f"run dir holds W&B run {owner}",
                        problems=(problem(OTHER_RUN, detail=detail),))  # fmt: skip

    problems: list[Problem] = []
    if not (run_dir / COMPLETE_MARKER).is_file():
        problems.append(problem(INCOMPLETE))
    direct = run_method(run) == "direct" or experiment == "direct"
    disk, source, unreadable = read_disk_evals(run_dir, direct=direct)
    problems += [problem(UNREADABLE, detail=text) for text in unreadable]
    logged = eval_rows(tables, run_id)
    on_disk = {int(s): row for s, row in zip(disk["step"], disk.to_dict("records"), strict=True)} if disk is not None \
        else {}  # fmt: skip
    in_wandb = {int(s): row for s, row in zip(logged["step"], logged.to_dict("records"), strict=True)}
    lost = sorted(on_disk.keys() - in_wandb.keys())
    if lost:
        problems.append(problem(MISSING_IN_WANDB, lost, source))
    absent = sorted(in_wandb.keys() - on_disk.keys())
    if absent:
        where = source if disk is not None else f"no {source}"
        problems.append(problem(MISSING_ON_DISK, absent, where))
    differing: list[int] = []
    details: list[str] = []
    for step in sorted(on_disk.keys() & in_wandb.keys()):
        keys = [k for k in CHECKED_KEYS if not _same(_number(in_wandb[step].get(k)), on_disk[step][k])]
        if keys:
            differing.append(step)
            details += [f"step {step} {k}: W&B {_fmt(_number(in_wandb[step].get(k)))}, disk {_fmt(on_disk[step][k])}"
                        for k in keys]  # fmt: skip
    if differing:
        problems.append(problem(VALUES_DIFFER, differing, "; ".join(details)))
    return RunCheck(**head, checked=True, n_disk=len(on_disk), problems=tuple(problems))


def check_runs(tables: RunTables, runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> CrossCheck:
    """Check every run of ``runs`` (experiment -> run rows, as :func:`analysis.select.pick_runs` returns them)."""
    return CrossCheck([check_run(tables, run, experiment) for experiment, rows in runs.items() for run in rows])


# --------------------------------------------------------------------------------------------------------------
# How a selected evaluation was decoded

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Decoding:
    """How one selected evaluation was decoded, as its test ``metrics.json`` (data/evaluate.py) records it.

    ``compute_dtype`` ("float32", "bfloat16") and ``source`` ("neutral": greedy with neutral settings; "checkpoint":
    the checkpoint's own generation config) are "unknown" when that file is not the run's own on this machine or was
    written by an older version of the evaluator; ``reason`` then says which. The rates are percentages of the test
    items (None: not recorded, as by older versions).
    """

    compute_dtype: str = UNKNOWN
    source: str = UNKNOWN
    greedy: bool | None = None
    truncation_rate: float | None = None
    missing_answer_rate: float | None = None
    reason: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """What must be the same for every row of one table: (compute dtype, decoding source)."""
        return self.compute_dtype, self.source


def _rate(value: Any) -> float | None:
    number = _number(value)
    return None if number != number else number


def read_decoding(check: CrossCheck, run_id: str, metrics_path: Path | None) -> Decoding:
    """The decoding of run ``run_id``'s selected evaluation, from ``metrics_path`` (its test metrics.json).

    Read only from a run directory that ``check`` found on this machine and owned by this run (otherwise the file,
    if any, is not this run's): every other case is "unknown" with the check's reason.
    """
    run = check.run(run_id)
    if run is None or not run.checked:
        return Decoding(reason=run.reason if run is not None else "run not checked")
    if metrics_path is None:
        return Decoding(reason="no saved evaluation")
    metrics = read_metrics(metrics_path)
    if isinstance(metrics, str):
        return Decoding(reason=metrics)
    dtype, decoding = metrics.get("dtype"), metrics.get("decoding")
    compute = dtype.get("compute") if isinstance(dtype, dict) else None
    source = decoding.get("source") if isinstance(decoding, dict) else None
    greedy = decoding.get("greedy") if isinstance(decoding, dict) else None
    absent = [key for key, value in (("dtype.compute", compute), ("decoding.source", source))
              if not isinstance(value, str) or not value]  # fmt: skip
    try:
        where = metrics_path.relative_to(run.run_dir or "")
    except ValueError:
        where = metrics_path
    reason = f"{where} has no {' or '.join(absent)} (written by an older version)" if absent else ""
    return Decoding(
        compute_dtype=compute if isinstance(compute, str) and compute else UNKNOWN,
        source=source if isinstance(source, str) and source else UNKNOWN,
        greedy=greedy if isinstance(greedy, bool) else None,
        truncation_rate=_rate(metrics.get("truncation_rate")),
        missing_answer_rate=_rate(metrics.get("missing_answer_rate")),
        reason=reason,
    )
