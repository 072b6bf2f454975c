"""The one reader of W&B runs: offline run files or the W&B service -> pandas tables with one schema.

Usage::

    from analysis.runs import read_offline_runs, read_api_runs, runs_in_group, history_of

    tables = read_offline_runs("outputs/wandb")          # every run-<id>.wandb below that folder
    tables = read_api_runs("ENTITY/PROJECT")             # or the same tables from the W&B service
    tables.problems                                      # damaged files, by name (also raised as warnings)
    grpo = runs_in_group(tables, "grpo-p2")              # a RunTables holding one experiment's runs
    curve = history_of(tables, grpo.runs.run_id[0])      # every logged row of one run, in logging order

From the shell: ``python -m analysis.runs outputs/wandb`` prints the runs table and any problems.

This is the only module of the suite that imports wandb's reading side, and it does so inside functions, so that
importing the analysis package stays cheap.

The tables (:class:`RunTables`):

- ``runs``: one row per run: ``run_id, name, group, tags (tuple), state, config (dict), summary (dict), files
  (tuple), source ("offline" | "api")``, then one ``config.<a>.<b>`` column per scalar leaf of the config.
- ``history``: wide form, one row per logged history row, in logging order: ``run_id, _step``, then one column
  per metric key (nested keys joined with "/"; ``_runtime`` and ``_timestamp`` included), columns sorted.
- ``problems``: one line per damaged or unreadable input, naming the file (or run).

The offline file format and the reading of one session are in :mod:`experiments.wandb_files`.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.wandb_files import Session, read_session, run_files

RUN_COLUMNS: tuple[str, ...] = ("run_id", "name", "group", "tags", "state", "config", "summary", "files", "source")
HISTORY_INDEX: tuple[str, ...] = ("run_id", "_step")

# The W&B public API hides these config keys from ``run.config``; the offline reader hides them too so both
# sources give the same config.
_INTERNAL_CONFIG_KEYS = frozenset({"_wandb", "wandb_version"})


class RunReadWarning(UserWarning):
    """A run file or API run could not be read completely; the message names it (and is also in ``problems``)."""


@dataclass
class RunTables:
    """Runs, their full histories, and what could not be read. See the module docstring for the columns."""

    runs: pd.DataFrame
    history: pd.DataFrame
    problems: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------------
# The file format


# --------------------------------------------------------------------------------------------------------------
# Replaying and merging


def _apply(target: dict[str, Any], ops: Iterable[tuple[bool, tuple[str, ...], Any]]) -> None:
    for is_set, key_path, value in ops:
        node = target
        for part in key_path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                if not is_set:
                    break  # removing below a key that is not there: nothing to do
                child = node[part] = {}
            node = child
        else:
            if is_set:
                node[key_path[-1]] = value
            else:
                node.pop(key_path[-1], None)


def _flat_config(config: Mapping[str, Any], prefix: str = "config.") -> dict[str, Any]:
    """The scalar leaves of a nested config as ``config.a.b`` columns (lists and the like stay in ``config``)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(_flat_config(value, f"{prefix}{key}."))
        elif value is None or isinstance(value, (bool, int, float, str)):
            out[f"{prefix}{key}"] = value
    return out


def _run_row(
    run_id: str,
    name: str | None,
    group: str | None,
    tags: Iterable[str],
    state: str | None,
    config: Mapping[str, Any],
    summary: dict[str, Any],
    files: tuple[str, ...],
    source: str,
) -> dict[str, Any]:
    config = {k: v for k, v in config.items() if k not in _INTERNAL_CONFIG_KEYS}
    row: dict[str, Any] = {
        "run_id": run_id,
        "name": name or None,
        "group": group or None,
        "tags": tuple(tags),
        "state": state,
        "config": config,
        "summary": summary,
        "files": files,
        "source": source,
    }
    row.update(_flat_config(config))
    return row


def _merge(run_id: str, sessions: list[Session], problems: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One run from its sessions (a resumed run has one file per ``wandb.init``): a runs row and its history rows."""
    # Sessions in the order they ran; files without a run record (nothing readable) go last.
    sessions = sorted(sessions, key=lambda s: (s.start_time is None, s.start_time or 0.0, str(s.path)))
    # A copied run folder holds the same session twice (same start time); counting both would double its history.
    kept: list[Session] = []
    for s in sessions:
        twin = next((k for k in kept if s.start_time is not None and k.start_time == s.start_time), None)
        if twin is None:
            kept.append(s)
            continue
        keep, drop = (
            (s, twin) if (s.problem is None, s.n_records) > (twin.problem is None, twin.n_records) else (twin, s)
        )
        kept[kept.index(twin)] = keep
        problems.append(f"{drop.path}: duplicate of session {keep.path} of run {run_id}; ignored")
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    name = group = None
    tags: tuple[str, ...] = ()
    last_step: int | None = None
    shifted = False
    for s in kept:
        _apply(config, s.config_ops)
        _apply(summary, s.summary_ops)
        name, group = s.name or name, s.group or group
        tags = s.tags if s.tags is not None else tags
        rows = s.history
        # An offline resumed session restarts _step at 0; continue after the previous session, as the service
        # does online, so that (run_id, _step) stays a key. Logging order is kept either way.
        if rows and last_step is not None and rows[0]["_step"] <= last_step:
            offset = last_step + 1 - rows[0]["_step"]
            rows = [{**row, "_step": row["_step"] + offset} for row in rows]
            shifted = True
        for row in rows:
            history.append({**row, "run_id": run_id})  # our id wins over a metric named run_id
        if rows:
            last_step = max([r["_step"] for r in rows] + ([] if last_step is None else [last_step]))
    if shifted and "_step" in summary:
        summary["_step"] = last_step
    last = next((s for s in reversed(kept) if s.n_records), kept[-1])  # an empty file says nothing of the end
    # "unfinished": no exit record, so the process is still running, was killed, or its file is damaged.
    state = "unfinished" if last.exit_code is None else ("finished" if last.exit_code == 0 else "failed")
    files = tuple(str(s.path) for s in kept)
    return _run_row(run_id, name, group, tags, state, config, summary, files, "offline"), history


def _tables(run_rows: list[dict[str, Any]], history_rows: list[dict[str, Any]], problems: list[str]) -> RunTables:
    config_cols = sorted({c for row in run_rows for c in row if c not in RUN_COLUMNS})
    runs = pd.DataFrame(run_rows, columns=[*RUN_COLUMNS, *config_cols])
    metric_cols = sorted({c for row in history_rows for c in row if c not in HISTORY_INDEX})
    history = pd.DataFrame(history_rows, columns=[*HISTORY_INDEX, *metric_cols])
    for problem in problems:
        warnings.warn(problem, RunReadWarning, stacklevel=3)
    return RunTables(runs=runs, history=history, problems=list(problems))


def read_offline_runs(wandb_dir: str | os.PathLike[str] = "outputs/wandb") -> RunTables:
    """Read every offline run under ``wandb_dir`` (searched recursively) straight from its ``run-<id>.wandb`` files.

    Files sharing a run id (``resume="allow"`` sessions) are merged into one run: history concatenated in session
    order with ``_step`` continued across sessions, config and summary replayed in order, ``files`` listing them. A
    damaged file is named in ``problems`` (and warned about as :class:`RunReadWarning`); what precedes the damage
    is still used. A file being written right now may show up as truncated, since wandb flushes in 32 KiB pieces.

    Raises:
        FileNotFoundError: ``wandb_dir`` does not exist.
    """
    root = Path(wandb_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no W&B directory at {root}: pass the folder given to wandb.init(dir=...) or below")
    problems: list[str] = []
    by_run: dict[str, list[Session]] = {}
    for path in run_files(root):
        session = read_session(path)
        if session.problem:
            problems.append(f"{path}: {session.problem}")
        by_run.setdefault(session.run_id, []).append(session)
    if not by_run:
        problems.append(f"{root}: no run-*.wandb files found")
    merged = [_merge(run_id, sessions, problems) for run_id, sessions in by_run.items()]
    # Runs in the order they started; runs never started (unreadable files) last.
    starts = {
        run_id: min((s.start_time for s in sessions if s.start_time is not None), default=float("inf"))
        for run_id, sessions in by_run.items()
    }
    merged.sort(key=lambda m: (starts[m[0]["run_id"]], m[0]["run_id"]))
    return _tables([row for row, _ in merged], [h for _, rows in merged for h in rows], problems)


# --------------------------------------------------------------------------------------------------------------
# The W&B service


def _plain(value: Any) -> Any:
    """Plain dicts and lists from the API's summary objects (``HTTPSummary``/``SummarySubDict`` are not dicts)."""
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Mapping) or (hasattr(value, "keys") and hasattr(value, "__getitem__")):
        return {k: _plain(value[k]) for k in value.keys()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _flat_row(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A history row with nested dicts joined by "/", as the offline reader joins ``nested_key``.

    Media values (dicts with ``_type``) stay whole, as they do offline.
    """
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Mapping) and "_type" not in value:
            out.update(_flat_row(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def read_api_runs(path: str, filters: dict[str, Any] | None = None) -> RunTables:
    """Read the runs of ``"ENTITY/PROJECT"`` from the W&B service into the same tables as :func:`read_offline_runs`.

    ``filters`` is passed to ``wandb.Api().runs`` (MongoDB-style; keep filtered config keys flat, nested ones are
    unreliable there). Histories come from ``scan_history()``, which returns every row; ``history()`` would return a
    500-point sample. A run whose history cannot be fetched is kept with no history rows and named in ``problems``.
    """
    import wandb  # lazily: wandb is slow to import

    api = wandb.Api()
    run_rows: list[dict[str, Any]] = []
    history_rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for run in api.runs(path, filters=filters):
        config, summary = _plain(run.config), _plain(run.summary)
        run_rows.append(_run_row(run.id, run.name, run.group, run.tags or (), run.state, config, summary, (), "api"))
        try:
            rows = [_flat_row(row) for row in run.scan_history()]
        except Exception as exc:  # one unreachable history must not lose every other run
            problems.append(f"{path}/{run.id}: history not read: {exc!r}")
            continue
        history_rows += [{**row, "run_id": run.id} for row in rows]
    return _tables(run_rows, history_rows, problems)


# --------------------------------------------------------------------------------------------------------------
# Helpers on the tables


def _drop_empty_metrics(history: pd.DataFrame) -> pd.DataFrame:
    metrics = [c for c in history.columns if c not in HISTORY_INDEX]
    empty = [c for c in metrics if history[c].isna().all()]
    return history.drop(columns=empty).reset_index(drop=True)


def runs_in_group(tables: RunTables, group: str) -> RunTables:
    """The runs of one group (an experiment) with their history; empty tables if the group has no runs.

    Metric columns that no run of the group logged are dropped; ``problems`` is passed on whole.
    """
    runs = tables.runs[tables.runs["group"] == group].reset_index(drop=True)
    history = tables.history[tables.history["run_id"].isin(runs["run_id"])]
    return RunTables(runs=runs, history=_drop_empty_metrics(history), problems=list(tables.problems))


def history_of(tables: RunTables, run_id: str) -> pd.DataFrame:
    """Every history row of one run, in logging order, with only the metric columns that run logged.

    (Wide form cannot tell a metric never logged from one logged only as NaN: both columns are dropped.)

    Raises:
        KeyError: no run has this id (the message lists the ids there are).
    """
    if run_id not in set(tables.runs["run_id"]):
        raise KeyError(f"no run {run_id!r}; runs: {', '.join(map(str, tables.runs['run_id'])) or '(none)'}")
    return _drop_empty_metrics(tables.history[tables.history["run_id"] == run_id])


def main(argv: list[str] | None = None) -> None:
    """Print the runs found under a W&B directory (default ``outputs/wandb``) and any problems."""
    args = sys.argv[1:] if argv is None else argv
    tables = read_offline_runs(args[0] if args else "outputs/wandb")
    with pd.option_context("display.width", 200, "display.max_columns", 12):
        print(tables.runs[["run_id", "name", "group", "state", "tags", "files"]].to_string(index=False))
        print(f"{len(tables.history)} history rows")
    for problem in tables.problems:
        print(f"problem: {problem}")


if __name__ == "__main__":
    main()
