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

How W&B 0.31 writes an offline run (read from the files it writes; the Python-side reader is gone, the writer is
the Go ``wandb-core``): ``<dir>/wandb/offline-run-<date>_<time>-<id>[-N]/run-<id>.wandb`` (``-N`` when a resumed
session starts in the same second; ``latest-run`` is a symlink to the newest, so symlinks are not followed). The
file is a 7-byte header ``:W&B``, uint16 LE 0xBEE1, version byte 0, then LevelDB log framing continuing from file
offset 7: 32 KiB blocks counted from the start of the file, each chunk a 7-byte header (uint32 LE crc, uint16 LE
length, type byte 1 FULL / 2 FIRST / 3 MIDDLE / 4 LAST) and its payload; the crc is plain zlib CRC-32 (not masked,
not CRC-32C) of the type byte followed by the payload; a block tail shorter than 7 bytes is zero padding. Each
record is a ``wandb_internal_pb2.Record``; in order: ``header``, ``run`` (run_id, display_name, run_group, tags,
config items ``key`` + ``value_json`` including ``_wandb``, start_time, resume), ``telemetry``, then per
``wandb.log`` call a ``summary`` update followed by the ``history`` record (items ``nested_key`` + ``value_json``;
nested dicts become multi-part ``nested_key``; NaN/inf as ``NaN``/``Infinity``; ``_step``, ``_runtime``,
``_timestamp`` as items; item order within a row is arbitrary), ``config`` records for ``config.update``,
``summary`` records for ``run.summary[...]`` (top-level ``key`` with the whole value), and finally ``exit``
(``exit_code``). A resumed offline session starts its ``_step`` at 0 again (no server tells it where to go on).
"""

from __future__ import annotations

import json
import os
import re
import struct
import sys
import warnings
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

RUN_COLUMNS: tuple[str, ...] = ("run_id", "name", "group", "tags", "state", "config", "summary", "files", "source")
HISTORY_INDEX: tuple[str, ...] = ("run_id", "_step")

# The W&B public API hides these config keys from ``run.config``; the offline reader hides them too so both
# sources give the same config.
_INTERNAL_CONFIG_KEYS = frozenset({"_wandb", "wandb_version"})

_HEADER = struct.Struct("<4sHB")
_MAGIC, _IDENT, _VERSION = b":W&B", 0xBEE1, 0
_BLOCK = 32 * 1024
_CHUNK = struct.Struct("<IHB")
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_RUN_FILE = re.compile(r"^run-(?P<id>.+)\.wandb$")


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


def read_records(data: bytes) -> tuple[list[bytes], str | None]:
    """Split the bytes of a ``run-<id>.wandb`` file into record payloads (serialized ``Record`` protos).

    Returns the payloads of every complete, crc-checked record up to the first damage, and a description of that
    damage (None for an intact file). Stops at the first bad chunk: after one, chunk boundaries cannot be trusted.
    """
    if len(data) < _HEADER.size:
        return [], f"shorter than the {_HEADER.size}-byte header ({len(data)} bytes)"
    magic, ident, version = _HEADER.unpack_from(data)
    if magic != _MAGIC or ident != _IDENT:
        return [], f"not a W&B run file (header {data[: _HEADER.size]!r})"
    if version != _VERSION:
        return [], f"unknown W&B file format version {version} (this reader knows {_VERSION})"
    payloads: list[bytes] = []
    pending: list[bytes] | None = None  # the pieces of a record split over blocks (FIRST, MIDDLE...)
    pos, end = _HEADER.size, len(data)
    while pos < end:
        room = _BLOCK - pos % _BLOCK
        if room < _CHUNK.size:  # the writer zero-pads a block tail too small for a chunk header
            pos += room
            continue
        if end - pos < _CHUNK.size:
            return payloads, f"truncated: file ends inside a chunk header at byte {pos} ({len(payloads)} records kept)"
        crc, length, kind = _CHUNK.unpack_from(data, pos)
        start = pos + _CHUNK.size
        if length > room - _CHUNK.size:
            return payloads, f"corrupt chunk at byte {pos}: length {length} runs past its block"
        if start + length > end:
            return payloads, (
                f"truncated: chunk at byte {pos} needs {length} bytes, file ends at byte {end} "
                f"({len(payloads)} records kept)"
            )
        body = data[start : start + length]
        if zlib.crc32(body, zlib.crc32(bytes((kind,)))) != crc:
            return payloads, f"bad crc in chunk at byte {pos} ({len(payloads)} records kept)"
        if kind == _FULL and pending is None:
            payloads.append(body)
        elif kind == _FIRST and pending is None:
            pending = [body]
        elif kind in (_MIDDLE, _LAST) and pending is not None:
            pending.append(body)
            if kind == _LAST:
                payloads.append(b"".join(pending))
                pending = None
        else:
            return payloads, f"corrupt chunk sequence at byte {pos} (type {kind}; {len(payloads)} records kept)"
        pos = start + length
    if pending is not None:
        return payloads, f"truncated: the last record is incomplete at byte {end} ({len(payloads)} records kept)"
    return payloads, None


@dataclass
class _Session:
    """What one run file holds: one ``wandb.init`` ... ``finish`` session of a run."""

    path: Path
    run_id: str
    start_time: float | None = None
    name: str | None = None
    group: str | None = None
    tags: tuple[str, ...] | None = None
    # Config and summary changes as (set?, key path, value), replayed in order across a run's sessions.
    config_ops: list[tuple[bool, tuple[str, ...], Any]] = field(default_factory=list)
    summary_ops: list[tuple[bool, tuple[str, ...], Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    n_records: int = 0
    problem: str | None = None


def _loads(text: str) -> Any:
    """Decode a ``value_json``; a value that is not JSON (never seen, but cheap to survive) is kept as text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _item_path(item: Any) -> tuple[str, ...]:
    return tuple(item.nested_key) if len(item.nested_key) else (item.key,)


def _history_value(item: Any) -> Any:
    """A history item's value: wandb 0.31 writes ``value_json``; the typed fields are read in case a writer uses them."""
    if item.value_json:
        return _loads(item.value_json)
    for name in ("number", "integer", "boolean", "text"):
        if item.HasField(name):
            return getattr(item, name)
    if item.HasField("json"):
        return _loads(item.json)
    return None


def _read_session(path: Path) -> _Session:
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2 as pb  # lazily: wandb is slow to import

    match = _RUN_FILE.match(path.name)
    session = _Session(path=path, run_id=match["id"] if match else path.stem)
    try:
        data = path.read_bytes()
    except OSError as exc:
        session.problem = f"unreadable: {exc}"
        return session
    payloads, session.problem = read_records(data)
    for i, payload in enumerate(payloads):
        record = pb.Record()
        try:
            record.ParseFromString(payload)
        except DecodeError as exc:
            session.problem = f"record {i} is not a Record proto ({exc}); {i} records kept"
            break
        session.n_records += 1
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row = {"/".join(_item_path(item)): _history_value(item) for item in record.history.item}
            row.setdefault("_step", record.history.step.num)
            session.history.append(row)
        elif kind == "summary":
            session.summary_ops += [(True, _item_path(u), _loads(u.value_json)) for u in record.summary.update]
            session.summary_ops += [(False, _item_path(u), None) for u in record.summary.remove]
        elif kind == "config":
            session.config_ops += [(True, _item_path(u), _loads(u.value_json)) for u in record.config.update]
            session.config_ops += [(False, _item_path(u), None) for u in record.config.remove]
        elif kind == "run":
            run = record.run
            session.run_id = run.run_id or session.run_id
            session.name = run.display_name or None
            session.group = run.run_group or None
            session.tags = tuple(run.tags)
            if run.HasField("start_time"):
                session.start_time = run.start_time.seconds + run.start_time.nanos * 1e-9
            session.config_ops += [(True, _item_path(u), _loads(u.value_json)) for u in run.config.update]
            session.summary_ops += [(True, _item_path(u), _loads(u.value_json)) for u in run.summary.update]
        elif kind == "exit":
            session.exit_code = record.exit.exit_code
    if session.problem is None and session.n_records == 0:
        session.problem = "no records after the header (the process probably died before its first flush)"
    return session


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


def _merge(run_id: str, sessions: list[_Session], problems: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One run from its sessions (a resumed run has one file per ``wandb.init``): a runs row and its history rows."""
    # Sessions in the order they ran; files without a run record (nothing readable) go last.
    sessions = sorted(sessions, key=lambda s: (s.start_time is None, s.start_time or 0.0, str(s.path)))
    # A copied run folder holds the same session twice (same start time); counting both would double its history.
    kept: list[_Session] = []
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


def _run_files(root: Path) -> list[Path]:
    """Every ``run-*.wandb`` below root, each real file once (``latest-run`` and other symlinks are not followed)."""
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if _RUN_FILE.match(name) and not path.is_symlink():
                found.setdefault(os.path.realpath(path), path)
    return list(found.values())


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
    by_run: dict[str, list[_Session]] = {}
    for path in _run_files(root):
        session = _read_session(path)
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
