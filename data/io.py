"""Small file helpers used across the suite: atomic JSON writes, sets of files replaced as one, and append-only
JSON-lines files.

Atomic writes (temporary file, then rename) mean a killed process never leaves a half-written metrics or report
file behind; JSON-lines appends with a flush per record are what make evaluations and reports resumable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from data.schema import DataError


def write_json_atomic(path: str | Path, obj: Any, *, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON to ``path`` via a temporary file in the same directory, then rename."""
    write_text_atomic(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory, then rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600 files; give the result the usual permissions (0666 less the umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is unsupported."""
    import ctypes
    import errno

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system or kernel without it
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file_set(target: str | Path, files: dict[str, bytes]) -> dict[str, Path]:
    """Make the directory ``target`` hold exactly ``files`` (name -> bytes), replaced as one set: whenever a reader
    looks, or this process is killed, ``target`` holds the old set or the new one, never a mix.

    The new set is written into a temporary sibling ``.<name>.<token>.tmp`` and swapped in with one atomic
    directory exchange (the old set, now in the sibling, is then removed). Where the exchange is unsupported, two
    renames with a moment between them in which ``target`` is absent; a later call restores the old set from its
    ``.old.tmp`` sibling if a kill fell there. Each call first removes the temporaries a killed call left.
    Returns each file's final path.
    """
    target = Path(target)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    for stale in sorted(parent.glob(f".{target.name}.*.tmp")):
        if stale.name.endswith(".old.tmp") and not target.exists():
            stale.rename(target)  # killed between the fallback's two renames: the old set comes back
        elif stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:  # a file-by-file writer's leftover (write_bytes_atomic's ".<name>.<random>.tmp")
            stale.unlink(missing_ok=True)
    token = f"{os.getpid()}-{time.monotonic_ns()}"
    new = parent / f".{target.name}.{token}.tmp"
    new.mkdir()
    try:
        for name, data in files.items():
            with open(new / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        _fsync_dir(new)
        if not target.exists():
            new.rename(target)
        elif _exchange(new, target):
            shutil.rmtree(new)  # now the old set
        else:
            old = parent / f".{target.name}.{token}.old.tmp"
            target.rename(old)
            new.rename(target)
            shutil.rmtree(old)
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return {name: target / name for name in files}


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e}); check the file is complete and not JSON-lines") from None


def read_jsonl(path: str | Path, *, tolerate_truncated_tail: bool = False) -> list[dict]:
    """Read a JSON-lines file. With ``tolerate_truncated_tail`` a broken *last* line (a killed writer) is dropped."""
    path = Path(path)
    rows: list[dict] = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if tolerate_truncated_tail and n == len(lines):
                break
            raise DataError(f"{path}, line {n}: not valid JSON ({e})") from None
    return rows


def append_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Append rows to a JSON-lines file, fsynced before returning (a durable record for what is logged next)."""
    with JsonlAppender(path) as sink:
        sink.write_many(rows)


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict]) -> None:
    """Replace a JSON-lines file with ``rows`` (temporary file, then rename)."""
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


class JsonlAppender:
    """Append records to a JSON-lines file, flushing each one so that a kill loses at most the record in flight."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()

    def write_many(self, records: Iterable[dict]) -> None:
        for r in records:
            self._f.write(json.dumps(r, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def iter_chunks(seq: list, size: int) -> Iterator[list]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class LockBusy(DataError):
    """Another live process holds the lock; the message names it."""


class OwnedLock:
    """An exclusive inter-process lock (``filelock``'s ``flock``) that says who holds it.

    ``<lock>.owner`` records the holder's pid, host and start time, so a second process can be told whom it waits
    for. The kernel drops a ``flock`` when its holder dies, so a killed process never leaves a lock that blocks.
    ``wait=False`` raises :class:`LockBusy` (message ``busy_message`` + the holder) instead of waiting.
    """

    def __init__(self, lock_path: str | Path, *, wait: bool, busy_message: str = ""):
        from filelock import FileLock

        self.path = Path(lock_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.owner = self.path.with_name(self.path.name + ".owner")
        self.wait, self.busy_message = wait, busy_message
        self._lock = FileLock(str(self.path))

    def holder(self) -> str:
        try:
            owner = json.loads(self.owner.read_text())
        except (OSError, ValueError):
            return "holder unknown"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("since", 0)))
        return f"pid {owner.get('pid')} on {owner.get('host')}, since {since}"

    def __enter__(self) -> OwnedLock:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            if not self.wait:
                raise LockBusy(f"{self.busy_message} ({self.holder()})") from None
            print(f"waiting for another process ({self.holder()}) that holds {self.path}", flush=True)
            self._lock.acquire()
        write_json_atomic(self.owner, {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        return self

    def __exit__(self, *exc: object) -> None:
        self.owner.unlink(missing_ok=True)
        self._lock.release()


def build_once(path: str | Path, build: Callable[[Path], object], *, done: str) -> Path:
    """A cached directory, built on first use: ``build(partial)`` fills ``<path>.partial``, which is then renamed.

    ``path/done`` marks a finished build, so a killed build (a leftover ``.partial``, cleared before building
    again) never looks finished. One process builds at a time (``<path>.lock``): another one waits for it and then
    uses its result.
    """
    path = Path(path)
    if (path / done).exists():
        return path
    with OwnedLock(path.with_name(path.name + ".lock"), wait=True):
        if (path / done).exists():  # built by the process we waited for
            return path
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        build(partial)
        shutil.rmtree(path, ignore_errors=True)  # an unfinished leftover (no done marker) of an older version
        partial.rename(path)
    return path


def sources_digest(modules: Sequence[str], *, extra: str = "") -> str:
    """sha256 (hex) over the source files of ``modules`` (dotted names, in order) and ``extra``: the key of a cache
    built by that code, so that editing any of them rebuilds it instead of reusing a stale build."""
    import importlib

    h = hashlib.sha256()
    for name in modules:
        h.update(name.encode() + b"\0" + Path(importlib.import_module(name).__file__ or "").read_bytes())
    h.update(extra.encode())
    return h.hexdigest()
