"""The W&B 0.31 offline run file (``run-<id>.wandb``): its format, and reading one session of a run from it.

Used by :mod:`analysis.runs` (tables of every run) and by :mod:`experiments.record` (what a run has already sent,
so that a resumed run re-logs only what W&B lost). Reads files only: no wandb process is started.

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
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_HEADER = struct.Struct("<4sHB")
_MAGIC, _IDENT, _VERSION = b":W&B", 0xBEE1, 0
_BLOCK = 32 * 1024
_CHUNK = struct.Struct("<IHB")
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
RUN_FILE = re.compile(r"^run-(?P<id>.+)\.wandb$")


@dataclass(frozen=True)
class Chunk:
    """One chunk of a run file: the offset of its 7-byte header, its crc and type, and where its payload lies."""

    offset: int
    crc: int
    kind: int
    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length


def scan_chunks(data: bytes) -> tuple[list[Chunk], str | None]:
    """The chunks of a run file in order, by its framing alone (file header, 32 KiB blocks, chunk lengths).

    Returns every chunk up to the first framing damage and a description of that damage (None when the framing is
    intact). Crcs and the order of chunk types are :func:`read_records`' business.
    """
    if len(data) < _HEADER.size:
        return [], f"shorter than the {_HEADER.size}-byte header ({len(data)} bytes)"
    magic, ident, version = _HEADER.unpack_from(data)
    if magic != _MAGIC or ident != _IDENT:
        return [], f"not a W&B run file (header {data[: _HEADER.size]!r})"
    if version != _VERSION:
        return [], f"unknown W&B file format version {version} (this reader knows {_VERSION})"
    chunks: list[Chunk] = []
    pos, end = _HEADER.size, len(data)
    while pos < end:
        room = _BLOCK - pos % _BLOCK
        if room < _CHUNK.size:  # the writer zero-pads a block tail too small for a chunk header
            pos += room
            continue
        if end - pos < _CHUNK.size:
            return chunks, f"truncated: file ends inside a chunk header at byte {pos}"
        crc, length, kind = _CHUNK.unpack_from(data, pos)
        chunk = Chunk(offset=pos, crc=crc, kind=kind, start=pos + _CHUNK.size, length=length)
        if length > room - _CHUNK.size:
            return chunks, f"corrupt chunk at byte {pos}: length {length} runs past its block"
        if chunk.end > end:
            return chunks, f"truncated: chunk at byte {pos} needs {length} bytes, file ends at byte {end}"
        chunks.append(chunk)
        pos = chunk.end
    return chunks, None


def read_records(data: bytes) -> tuple[list[bytes], str | None]:
    """Split the bytes of a ``run-<id>.wandb`` file into record payloads (serialized ``Record`` protos).

    Returns the payloads of every complete, crc-checked record up to the first damage, and a description of that
    damage (None for an intact file). Stops at the first bad chunk: after one, chunk boundaries cannot be trusted.
    """
    chunks, framing_problem = scan_chunks(data)
    payloads: list[bytes] = []
    pending: list[bytes] | None = None  # the pieces of a record split over blocks (FIRST, MIDDLE...)
    for chunk in chunks:
        body = data[chunk.start : chunk.end]
        if zlib.crc32(body, zlib.crc32(bytes((chunk.kind,)))) != chunk.crc:
            return payloads, f"bad crc in chunk at byte {chunk.offset} ({len(payloads)} records kept)"
        if chunk.kind == _FULL and pending is None:
            payloads.append(body)
        elif chunk.kind == _FIRST and pending is None:
            pending = [body]
        elif chunk.kind in (_MIDDLE, _LAST) and pending is not None:
            pending.append(body)
            if chunk.kind == _LAST:
                payloads.append(b"".join(pending))
                pending = None
        else:
            return payloads, (
                f"corrupt chunk sequence at byte {chunk.offset} (type {chunk.kind}; {len(payloads)} records kept)"
            )
    if framing_problem is not None:
        return payloads, f"{framing_problem} ({len(payloads)} records kept)"
    if pending is not None:
        return payloads, f"truncated: the last record is incomplete at byte {len(data)} ({len(payloads)} records kept)"
    return payloads, None


@dataclass
class Session:
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


def read_session(path: Path) -> Session:
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2 as pb  # lazily: wandb is slow to import

    match = RUN_FILE.match(path.name)
    session = Session(path=path, run_id=match["id"] if match else path.stem)
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


def wait_for_exit_record(path: Path, timeout_s: float = 60.0, poll_s: float = 0.2) -> bool:
    """Wait until the session file at ``path`` ends with its ``exit`` record; False if it has not after
    ``timeout_s``. ``run.finish()`` can return before the W&B service has written the session's last records (seen
    under load), and a reader that looks then sees the previous session's name or misses rows."""
    import time

    deadline = time.monotonic() + timeout_s
    parsed_size = -1  # parse again only when the file has grown: a long run's file is megabytes
    while True:
        size = path.stat().st_size if path.is_file() else -1
        if size != parsed_size and size >= 0:
            if read_session(path).exit_code is not None:
                return True
            parsed_size = size
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)


def run_files(root: Path) -> list[Path]:
    """Every ``run-*.wandb`` below root, each real file once (``latest-run`` and other symlinks are not followed)."""
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if RUN_FILE.match(name) and not path.is_symlink():
                found.setdefault(os.path.realpath(path), path)
    return list(found.values())
